//! Federation's SQL on SQLite (issue 20): new tables only (schema 11).

use isac_core::membership::{MemberStatus, Role, StatusChange};
use rusqlite::{params, Connection, OptionalExtension};

use super::fed_types::{FederatedItem, OriginDirectoryRow, PeerLinkRow};
use super::sqlite::{audit, member, set_member_status};
use super::NewStatement;
use super::StoreError;

/// Schema 11: the `peer` role, the links this hub follows and the items
/// they forwarded. Widening a CHECK constraint is the one schema change
/// SQLite documents through `writable_schema` (every existing row passes
/// the wider check), so `members` keeps its rows and foreign keys.
pub(super) fn migrate_11(conn: &Connection) -> Result<(), StoreError> {
    let schema_version: i64 = conn.pragma_query_value(None, "schema_version", |r| r.get(0))?;
    conn.execute_batch("PRAGMA writable_schema = ON;")?;
    let changed = conn.execute(
        "UPDATE sqlite_master SET sql = replace(sql, '''member'',''coordinator'',''admin'')', '''member'',''coordinator'',''admin'',''peer'')')
         WHERE type = 'table' AND name = 'members'",
        [],
    );
    let bumped = conn.execute_batch(&format!("PRAGMA schema_version = {};", schema_version + 1));
    conn.execute_batch("PRAGMA writable_schema = OFF;")?;
    changed?;
    bumped?;
    conn.execute_batch(
        "CREATE TABLE peer_links (
            hub_id            TEXT PRIMARY KEY,
            url               TEXT NOT NULL,
            status            TEXT NOT NULL,
            created_at        INTEGER NOT NULL,
            cursor            BLOB NOT NULL,
            directory         TEXT,
            directory_version INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE federated_items (
            origin_hub  TEXT NOT NULL,
            id          TEXT NOT NULL,
            revision    INTEGER NOT NULL,
            from_peer   TEXT NOT NULL,
            tlp         TEXT NOT NULL,
            kind        TEXT NOT NULL,
            envelope    TEXT NOT NULL,
            provenance  BLOB NOT NULL,
            received_at INTEGER NOT NULL,
            PRIMARY KEY (origin_hub, id, revision)
        );
        CREATE INDEX federated_items_by_peer ON federated_items (from_peer);
        PRAGMA user_version = 11;",
    )?;
    Ok(())
}

/// Schema 12: items received from peers join this hub's own order, with
/// their provenance (NULL for local items).
pub(super) fn migrate_12(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "ALTER TABLE statements ADD COLUMN provenance BLOB;
        PRAGMA user_version = 12;",
    )?;
    Ok(())
}

/// Schema 14: directories of origin hubs this hub takes items of through
/// a peer, and of removed links whose items remain.
pub(super) fn migrate_14(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE origin_directories (
            hub_id            TEXT PRIMARY KEY,
            via_peer          TEXT NOT NULL,
            public_key        BLOB NOT NULL,
            directory         TEXT NOT NULL,
            directory_version INTEGER NOT NULL,
            retired           INTEGER NOT NULL DEFAULT 0
        );
        ALTER TABLE peer_links ADD COLUMN directory_key BLOB;
        PRAGMA user_version = 14;",
    )?;
    Ok(())
}

pub(super) fn origin_directories(conn: &Connection) -> Result<Vec<OriginDirectoryRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT hub_id, via_peer, public_key, directory, directory_version, retired
         FROM origin_directories ORDER BY hub_id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(OriginDirectoryRow {
                hub_id: r.get(0)?,
                via_peer: r.get(1)?,
                public_key: r.get(2)?,
                directory: r.get(3)?,
                directory_version: r.get::<_, i64>(4)? as u64,
                retired: r.get::<_, i64>(5)? != 0,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Pins an origin's directory (the caller verified it): a new origin, a
/// version not below the one held, or a new key. A new origin bumps the
/// epoch: this hub's signed directory lists it under `federated`.
pub(super) fn pin_origin_directory(
    conn: &Connection,
    row: &OriginDirectoryRow,
) -> Result<(), StoreError> {
    let held: Option<(Vec<u8>, i64, i64)> = conn
        .query_row(
            "SELECT public_key, directory_version, retired FROM origin_directories WHERE hub_id = ?1",
            [&row.hub_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((key, version, _)) = &held {
        if key == &row.public_key && (*version as u64) > row.directory_version {
            return Err(StoreError::Refused(format!(
                "origin `{}`: version {} is below the pinned {version}",
                row.hub_id, row.directory_version
            )));
        }
    }
    conn.execute(
        "INSERT INTO origin_directories (hub_id, via_peer, public_key, directory, directory_version, retired)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (hub_id) DO UPDATE SET via_peer = excluded.via_peer,
           public_key = excluded.public_key, directory = excluded.directory,
           directory_version = excluded.directory_version, retired = excluded.retired",
        params![
            row.hub_id,
            row.via_peer,
            row.public_key,
            row.directory,
            row.directory_version as i64,
            row.retired as i64
        ],
    )?;
    let listed_changed = match &held {
        None => true,
        Some((key, _, retired)) => key != &row.public_key || (*retired != 0) != row.retired,
    };
    if listed_changed {
        super::sqlite::bump_epoch(conn)?;
    }
    Ok(())
}

fn link_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(PeerLinkRow, String)> {
    Ok((
        PeerLinkRow {
            hub_id: r.get(0)?,
            url: r.get(1)?,
            status: MemberStatus::Active,
            created_at: r.get(3)?,
            cursor: r.get(4)?,
            directory: r.get(5)?,
            directory_version: r.get::<_, i64>(6)? as u64,
            received: r.get::<_, i64>(7)? as u64,
        },
        r.get(2)?,
    ))
}

const LINK_COLUMNS: &str =
    "l.hub_id, l.url, l.status, l.created_at, l.cursor, l.directory, l.directory_version,
    (SELECT count(*) FROM federated_items f WHERE f.from_peer = l.hub_id)";

fn with_status((mut row, status): (PeerLinkRow, String)) -> Result<PeerLinkRow, StoreError> {
    row.status = status
        .parse()
        .map_err(|e| StoreError::Sqlite(format!("stored peer status `{status}`: {e}")))?;
    Ok(row)
}

pub(super) fn peer_link(
    conn: &Connection,
    hub_id: &str,
) -> Result<Option<PeerLinkRow>, StoreError> {
    conn.query_row(
        &format!("SELECT {LINK_COLUMNS} FROM peer_links l WHERE l.hub_id = ?1"),
        [hub_id],
        link_from_row,
    )
    .optional()?
    .map(with_status)
    .transpose()
}

pub(super) fn peer_links(conn: &Connection) -> Result<Vec<PeerLinkRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {LINK_COLUMNS} FROM peer_links l ORDER BY l.hub_id"
    ))?;
    let rows = stmt
        .query_map([], link_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(with_status).collect()
}

pub(super) fn add_peer_link(
    conn: &Connection,
    link: &PeerLinkRow,
    actor: &str,
) -> Result<(), StoreError> {
    if let Some(old) = peer_link(conn, &link.hub_id)? {
        return Err(StoreError::Conflict(format!(
            "this hub already follows `{}` ({}); `hub peer remove {}` first",
            old.hub_id, old.status, old.hub_id
        )));
    }
    conn.execute(
        "INSERT INTO peer_links (hub_id, url, status, created_at, cursor, directory, directory_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            link.hub_id,
            link.url,
            link.status.as_str(),
            link.created_at,
            link.cursor,
            link.directory,
            link.directory_version as i64
        ],
    )?;
    // The signed directory lists the origins this hub delivers.
    super::sqlite::bump_epoch(conn)?;
    audit(
        conn,
        link.created_at,
        actor,
        "peer.add",
        &link.hub_id,
        &format!("follows {}", link.url),
    )
}

/// Suspends, resumes or removes the link to `hub_id`, and the same for the
/// peer membership `hub_id` holds here (role `peer`), if any, in one
/// transaction: the flow stops in both directions at once. A removed link
/// is deleted (with its cursor and pinned directory); items already
/// received stay.
pub(super) fn set_peer_status(
    conn: &Connection,
    hub_id: &str,
    change: StatusChange,
    actor: &str,
    now: i64,
) -> Result<Option<PeerLinkRow>, StoreError> {
    let link = peer_link(conn, hub_id)?;
    let peer_member = member(conn, hub_id)?.filter(|m| m.role == Role::Peer);
    if link.is_none() && peer_member.is_none() {
        return Err(StoreError::NotFound(format!(
            "no peer `{hub_id}`: this hub neither follows it nor has it as a member with role peer"
        )));
    }
    if let Some(m) = peer_member {
        if m.status != MemberStatus::Removed {
            set_member_status(conn, hub_id, change, actor, now)?;
        }
    }
    let Some(link) = link else {
        return Ok(None);
    };
    let Some(status) = change.apply(link.status) else {
        return Ok(Some(link));
    };
    if status == MemberStatus::Removed {
        // Its items stay in the order: its last pinned directory stays
        // too, retired, so members can still verify them (unless another
        // peer relays that origin, whose copy is kept).
        conn.execute(
            "INSERT INTO origin_directories (hub_id, via_peer, public_key, directory, directory_version, retired)
             SELECT hub_id, hub_id, directory_key, directory, directory_version, 1 FROM peer_links
             WHERE hub_id = ?1 AND directory IS NOT NULL AND directory_key IS NOT NULL
             ON CONFLICT (hub_id) DO NOTHING",
            [hub_id],
        )?;
        conn.execute("DELETE FROM peer_links WHERE hub_id = ?1", [hub_id])?;
        super::sqlite::bump_epoch(conn)?;
    } else {
        conn.execute(
            "UPDATE peer_links SET status = ?2 WHERE hub_id = ?1",
            params![hub_id, status.as_str()],
        )?;
    }
    audit(
        conn,
        now,
        actor,
        &format!("peer.{change}"),
        hub_id,
        &format!("{} -> {status}", link.status),
    )?;
    Ok(Some(PeerLinkRow { status, ..link }))
}

/// Records the key the peer's directory is pinned with (`hub peer add`),
/// kept so the last directory can be retired on removal.
pub(super) fn pin_peer_directory_key(
    conn: &Connection,
    hub_id: &str,
    key: &[u8],
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE peer_links SET directory_key = ?2 WHERE hub_id = ?1",
        params![hub_id, key],
    )?;
    Ok(())
}

/// Pins a newer verified directory of the peer (the caller checked it
/// against the one held).
pub(super) fn pin_peer_directory(
    conn: &Connection,
    hub_id: &str,
    version: u64,
    directory: &str,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE peer_links SET directory = ?2, directory_version = ?3
         WHERE hub_id = ?1 AND directory_version <= ?3",
        params![hub_id, directory, version as i64],
    )?;
    if n == 0 {
        return Err(StoreError::Refused(format!(
            "peer `{hub_id}` is gone or holds a newer directory than version {version}"
        )));
    }
    Ok(())
}

/// Stores what a peer forwarded (each `ItemKey` once: an item that came
/// another way first is skipped) and moves the peer's cursor, in one
/// transaction, only while the link is active. Returns how many were new.
pub(super) fn receive_from_peer(
    conn: &Connection,
    hub_id: &str,
    items: &[FederatedItem],
    cursor: &[u8],
    append: &dyn Fn(&Connection, &NewStatement) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let status: Option<String> = conn
        .query_row(
            "SELECT status FROM peer_links WHERE hub_id = ?1",
            [hub_id],
            |r| r.get(0),
        )
        .optional()?;
    if status.as_deref() != Some(MemberStatus::Active.as_str()) {
        return Err(StoreError::Refused(format!(
            "peer `{hub_id}` is not followed now; nothing stored"
        )));
    }
    let mut stored = 0;
    for i in items {
        let held: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM federated_items
                   WHERE origin_hub = ?1 AND id = ?2 AND revision = ?3)",
            )?
            .query_row(params![i.origin_hub, i.id, i.revision], |r| r.get(0))?;
        if held {
            continue;
        }
        if let Some(order) = &i.order {
            match append(conn, order) {
                Ok(()) => {}
                Err(e @ (StoreError::Conflict(_) | StoreError::Refused(_))) => {
                    tracing::warn!(peer = %hub_id, origin = %i.origin_hub, id = %i.id,
                        revision = i.revision, error = %e,
                        "a received item cannot join this hub's order; not stored");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        stored += conn
            .prepare_cached(
                "INSERT INTO federated_items
                   (origin_hub, id, revision, from_peer, tlp, kind, envelope, provenance, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (origin_hub, id, revision) DO NOTHING",
            )?
            .execute(params![
                i.origin_hub,
                i.id,
                i.revision,
                i.from_peer,
                i.tlp,
                i.kind,
                i.envelope_json,
                i.provenance,
                i.received_at
            ])? as u64;
    }
    conn.execute(
        "UPDATE peer_links SET cursor = ?2 WHERE hub_id = ?1",
        params![hub_id, cursor],
    )?;
    Ok(stored)
}

/// Items received from peers, oldest first (`origin` narrows to one hub).
pub(super) fn federated_items(
    conn: &Connection,
    origin: Option<&str>,
) -> Result<Vec<FederatedItem>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT origin_hub, id, revision, from_peer, tlp, kind, envelope, provenance, received_at
         FROM federated_items WHERE ?1 IS NULL OR origin_hub = ?1
         ORDER BY received_at, origin_hub, id, revision",
    )?;
    let rows = stmt
        .query_map([origin], |r| {
            Ok(FederatedItem {
                origin_hub: r.get(0)?,
                id: r.get(1)?,
                revision: r.get(2)?,
                from_peer: r.get(3)?,
                tlp: r.get(4)?,
                kind: r.get(5)?,
                envelope_json: r.get(6)?,
                provenance: r.get(7)?,
                received_at: r.get(8)?,
                order: None,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
