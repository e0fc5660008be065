//! Cross-hub sharing groups' SQL on PostgreSQL (issue 20): new tables only
//! (schema 5), the same rules as `sqlite_groups.rs`.

use isac_core::membership::Role;

use super::fed_groups_ops::PeerGroupRow;
use super::postgres::{audit, lock_writes, member, Conn};
use super::StoreError;

/// Schema 5 (SQLite schema 13).
pub(super) const SCHEMA_5: &str = "
CREATE TABLE group_remote_members (
    group_name  TEXT NOT NULL REFERENCES sharing_groups(name) ON DELETE CASCADE,
    member      TEXT NOT NULL,
    PRIMARY KEY (group_name, member)
);
CREATE TABLE peer_groups (
    hub_id          TEXT NOT NULL,
    group_name      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    remote_members  TEXT,
    checked_at      BIGINT,
    PRIMARY KEY (hub_id, group_name)
);
";

async fn is_peer(c: &Conn, hub_id: &str) -> Result<bool, StoreError> {
    let linked = c
        .query_opt("SELECT 1 FROM peer_links WHERE hub_id = $1", &[&hub_id])
        .await?
        .is_some();
    Ok(linked
        || member(c, hub_id)
            .await?
            .is_some_and(|m| m.role == Role::Peer))
}

pub(super) async fn share_group(
    c: &Conn,
    hub_id: &str,
    group: &str,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    lock_writes(c).await?;
    if !is_peer(c, hub_id).await? {
        return Err(StoreError::NotFound(format!(
            "no peer `{hub_id}`: `hub peer list` shows the peers"
        )));
    }
    if c.query_opt("SELECT 1 FROM sharing_groups WHERE name = $1", &[&group])
        .await?
        .is_none()
    {
        return Err(StoreError::NotFound(format!(
            "no group `{group}`: create it with `hub group add {group} --members ORG,ORG@{hub_id}`"
        )));
    }
    let n = c
        .execute(
            "INSERT INTO peer_groups (hub_id, group_name, created_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&hub_id, &group, &now],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "group `{group}` is already shared with `{hub_id}`"
        )));
    }
    audit(c, now, actor, "peer.share", hub_id, group).await
}

pub(super) async fn unshare_group(
    c: &Conn,
    hub_id: &str,
    group: &str,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    lock_writes(c).await?;
    let n = c
        .execute(
            "DELETE FROM peer_groups WHERE hub_id = $1 AND group_name = $2",
            &[&hub_id, &group],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "group `{group}` is not shared with `{hub_id}`"
        )));
    }
    audit(c, now, actor, "peer.unshare", hub_id, group).await
}

pub(super) async fn peer_groups(c: &Conn) -> Result<Vec<PeerGroupRow>, StoreError> {
    c.query(
        "SELECT hub_id, group_name, created_at, remote_members, checked_at
         FROM peer_groups ORDER BY hub_id, group_name",
        &[],
    )
    .await?
    .iter()
    .map(|r| PeerGroupRow::from_columns(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

pub(super) async fn set_peer_manifest(
    c: &Conn,
    hub_id: &str,
    groups: &[(String, Option<String>)],
    now: i64,
) -> Result<(), StoreError> {
    for (group, members) in groups {
        c.execute(
            "UPDATE peer_groups SET remote_members = $3, checked_at = $4
             WHERE hub_id = $1 AND group_name = $2",
            &[&hub_id, group, members, &now],
        )
        .await?;
    }
    Ok(())
}
