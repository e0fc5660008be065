//! Cross-hub sharing groups' SQL on SQLite (issue 20): new tables only
//! (schema 13). The rules are `isac_core::fed_groups`; `app/fed_groups.rs`
//! applies them.

use isac_core::membership::Role;
use rusqlite::{params, Connection, OptionalExtension};

use super::fed_groups_ops::PeerGroupRow;
use super::sqlite::{audit, member};
use super::StoreError;

/// Schema 13: members of a group at peer hubs (`ORG@HUB`), and the groups
/// shared with each peer with the member set the peer's last verified
/// manifest listed (NULL: not in it, or none fetched yet).
pub(super) fn migrate_13(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE group_remote_members (
            group_name  TEXT NOT NULL REFERENCES sharing_groups(name) ON DELETE CASCADE,
            member      TEXT NOT NULL,
            PRIMARY KEY (group_name, member)
        );
        CREATE TABLE peer_groups (
            hub_id          TEXT NOT NULL,
            group_name      TEXT NOT NULL,
            created_at      INTEGER NOT NULL,
            remote_members  TEXT,
            checked_at      INTEGER,
            PRIMARY KEY (hub_id, group_name)
        );
        PRAGMA user_version = 13;",
    )?;
    Ok(())
}

fn is_peer(conn: &Connection, hub_id: &str) -> Result<bool, StoreError> {
    let linked: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM peer_links WHERE hub_id = ?1",
            [hub_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(linked.is_some() || member(conn, hub_id)?.is_some_and(|m| m.role == Role::Peer))
}

pub(super) fn share_group(
    conn: &Connection,
    hub_id: &str,
    group: &str,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    if !is_peer(conn, hub_id)? {
        return Err(StoreError::NotFound(format!(
            "no peer `{hub_id}`: `hub peer list` shows the peers"
        )));
    }
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sharing_groups WHERE name = ?1",
            [group],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound(format!(
            "no group `{group}`: create it with `hub group add {group} --members ORG,ORG@{hub_id}`"
        )));
    }
    let n = conn.execute(
        "INSERT INTO peer_groups (hub_id, group_name, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        params![hub_id, group, now],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "group `{group}` is already shared with `{hub_id}`"
        )));
    }
    audit(conn, now, actor, "peer.share", hub_id, group)
}

pub(super) fn unshare_group(
    conn: &Connection,
    hub_id: &str,
    group: &str,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "DELETE FROM peer_groups WHERE hub_id = ?1 AND group_name = ?2",
        params![hub_id, group],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "group `{group}` is not shared with `{hub_id}`"
        )));
    }
    audit(conn, now, actor, "peer.unshare", hub_id, group)
}

pub(super) fn peer_groups(conn: &Connection) -> Result<Vec<PeerGroupRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT hub_id, group_name, created_at, remote_members, checked_at
         FROM peer_groups ORDER BY hub_id, group_name",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(hub_id, group, created_at, remote, checked_at)| {
            PeerGroupRow::from_columns(hub_id, group, created_at, remote, checked_at)
        })
        .collect()
}

/// Records what `hub_id`'s verified manifest says of each group shared
/// with it (`None`: not listed).
pub(super) fn set_peer_manifest(
    conn: &Connection,
    hub_id: &str,
    groups: &[(String, Option<String>)],
    now: i64,
) -> Result<(), StoreError> {
    for (group, members) in groups {
        conn.execute(
            "UPDATE peer_groups SET remote_members = ?3, checked_at = ?4
             WHERE hub_id = ?1 AND group_name = ?2",
            params![hub_id, group, members, now],
        )?;
    }
    Ok(())
}
