//! Federation's SQL on PostgreSQL (issue 20): new tables only (schema 3),
//! the same rules as `sqlite_fed.rs`.

use isac_core::membership::{MemberStatus, Role, StatusChange};
use tokio_postgres::Row;

use super::fed_types::{FederatedItem, OriginDirectoryRow, PeerLinkRow};
use super::postgres::{audit, lock_writes, member, set_member_status, Conn};
use super::StoreError;

/// Schema 3 (SQLite schema 11): the `peer` role, the links this hub
/// follows and the items they forwarded.
pub(super) const SCHEMA_3: &str = "
ALTER TABLE members DROP CONSTRAINT members_role_check;
ALTER TABLE members ADD CONSTRAINT members_role_check
    CHECK (role IN ('member','coordinator','admin','peer'));
CREATE TABLE peer_links (
    hub_id            TEXT PRIMARY KEY,
    url               TEXT NOT NULL,
    status            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    cursor            BYTEA NOT NULL,
    directory         TEXT,
    directory_version BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE federated_items (
    origin_hub  TEXT NOT NULL,
    id          TEXT NOT NULL,
    revision    BIGINT NOT NULL,
    from_peer   TEXT NOT NULL,
    tlp         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    envelope    TEXT NOT NULL,
    provenance  BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (origin_hub, id, revision)
);
CREATE INDEX federated_items_by_peer ON federated_items (from_peer);
";

/// Schema 4 (SQLite schema 12): items received from peers join this hub's
/// own order, with their provenance (NULL for local items).
pub(super) const SCHEMA_4: &str = "
ALTER TABLE statements ADD COLUMN provenance BYTEA;
";

/// Schema 6 (SQLite schema 14): directories of origin hubs this hub takes
/// items of through a peer, and of removed links whose items remain.
pub(super) const SCHEMA_6: &str = "
CREATE TABLE origin_directories (
    hub_id            TEXT PRIMARY KEY,
    via_peer          TEXT NOT NULL,
    public_key        BYTEA NOT NULL,
    directory         TEXT NOT NULL,
    directory_version BIGINT NOT NULL,
    retired           BOOLEAN NOT NULL DEFAULT FALSE
);
ALTER TABLE peer_links ADD COLUMN directory_key BYTEA;
";

pub(super) async fn origin_directories(c: &Conn) -> Result<Vec<OriginDirectoryRow>, StoreError> {
    let rows = c
        .query(
            "SELECT hub_id, via_peer, public_key, directory, directory_version, retired
             FROM origin_directories ORDER BY hub_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| OriginDirectoryRow {
            hub_id: r.get(0),
            via_peer: r.get(1),
            public_key: r.get(2),
            directory: r.get(3),
            directory_version: r.get::<_, i64>(4) as u64,
            retired: r.get(5),
        })
        .collect())
}

/// As `sqlite_fed::pin_origin_directory`.
pub(super) async fn pin_origin_directory(
    c: &Conn,
    row: &OriginDirectoryRow,
) -> Result<(), StoreError> {
    lock_writes(c).await?;
    let held = c
        .query_opt(
            "SELECT public_key, directory_version, retired FROM origin_directories
             WHERE hub_id = $1 FOR UPDATE",
            &[&row.hub_id],
        )
        .await?
        .map(|r| {
            (
                r.get::<_, Vec<u8>>(0),
                r.get::<_, i64>(1),
                r.get::<_, bool>(2),
            )
        });
    if let Some((key, version, _)) = &held {
        if key == &row.public_key && (*version as u64) > row.directory_version {
            return Err(StoreError::Refused(format!(
                "origin `{}`: version {} is below the pinned {version}",
                row.hub_id, row.directory_version
            )));
        }
    }
    c.execute(
        "INSERT INTO origin_directories (hub_id, via_peer, public_key, directory, directory_version, retired)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (hub_id) DO UPDATE SET via_peer = excluded.via_peer,
           public_key = excluded.public_key, directory = excluded.directory,
           directory_version = excluded.directory_version, retired = excluded.retired",
        &[
            &row.hub_id,
            &row.via_peer,
            &row.public_key,
            &row.directory,
            &(row.directory_version as i64),
            &row.retired,
        ],
    )
    .await?;
    let listed_changed = match &held {
        None => true,
        Some((key, _, retired)) => key != &row.public_key || *retired != row.retired,
    };
    if listed_changed {
        super::postgres::bump_epoch(c).await?;
    }
    Ok(())
}

const LINK_COLUMNS: &str =
    "l.hub_id, l.url, l.status, l.created_at, l.cursor, l.directory, l.directory_version,
    (SELECT count(*) FROM federated_items f WHERE f.from_peer = l.hub_id)";

fn link_from_row(r: &Row) -> Result<PeerLinkRow, StoreError> {
    let status: &str = r.get(2);
    Ok(PeerLinkRow {
        hub_id: r.get(0),
        url: r.get(1),
        status: status
            .parse()
            .map_err(|e| StoreError::Postgres(format!("stored peer status `{status}`: {e}")))?,
        created_at: r.get(3),
        cursor: r.get(4),
        directory: r.get(5),
        directory_version: r.get::<_, i64>(6) as u64,
        received: r.get::<_, i64>(7) as u64,
    })
}

pub(super) async fn peer_link(c: &Conn, hub_id: &str) -> Result<Option<PeerLinkRow>, StoreError> {
    c.query_opt(
        &format!("SELECT {LINK_COLUMNS} FROM peer_links l WHERE l.hub_id = $1"),
        &[&hub_id],
    )
    .await?
    .as_ref()
    .map(link_from_row)
    .transpose()
}

pub(super) async fn peer_links(c: &Conn) -> Result<Vec<PeerLinkRow>, StoreError> {
    c.query(
        &format!("SELECT {LINK_COLUMNS} FROM peer_links l ORDER BY l.hub_id"),
        &[],
    )
    .await?
    .iter()
    .map(link_from_row)
    .collect()
}

pub(super) async fn add_peer_link(
    c: &Conn,
    link: &PeerLinkRow,
    actor: &str,
) -> Result<(), StoreError> {
    lock_writes(c).await?;
    if let Some(old) = peer_link(c, &link.hub_id).await? {
        return Err(StoreError::Conflict(format!(
            "this hub already follows `{}` ({}); `hub peer remove {}` first",
            old.hub_id, old.status, old.hub_id
        )));
    }
    c.execute(
        "INSERT INTO peer_links (hub_id, url, status, created_at, cursor, directory, directory_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &link.hub_id,
            &link.url,
            &link.status.as_str(),
            &link.created_at,
            &link.cursor,
            &link.directory,
            &(link.directory_version as i64),
        ],
    )
    .await?;
    // The signed directory lists the origins this hub delivers.
    super::postgres::bump_epoch(c).await?;
    audit(
        c,
        link.created_at,
        actor,
        "peer.add",
        &link.hub_id,
        &format!("follows {}", link.url),
    )
    .await
}

pub(super) async fn set_peer_status(
    c: &Conn,
    hub_id: &str,
    change: StatusChange,
    actor: &str,
    now: i64,
) -> Result<Option<PeerLinkRow>, StoreError> {
    lock_writes(c).await?;
    let link = peer_link(c, hub_id).await?;
    let peer_member = member(c, hub_id).await?.filter(|m| m.role == Role::Peer);
    if link.is_none() && peer_member.is_none() {
        return Err(StoreError::NotFound(format!(
            "no peer `{hub_id}`: this hub neither follows it nor has it as a member with role peer"
        )));
    }
    if let Some(m) = peer_member {
        if m.status != MemberStatus::Removed {
            set_member_status(c, hub_id, change, actor, now).await?;
        }
    }
    let Some(link) = link else {
        return Ok(None);
    };
    let Some(status) = change.apply(link.status) else {
        return Ok(Some(link));
    };
    if status == MemberStatus::Removed {
        // As in `sqlite_fed::set_peer_status`: the last directory retired.
        c.execute(
            "INSERT INTO origin_directories (hub_id, via_peer, public_key, directory, directory_version, retired)
             SELECT hub_id, hub_id, directory_key, directory, directory_version, TRUE FROM peer_links
             WHERE hub_id = $1 AND directory IS NOT NULL AND directory_key IS NOT NULL
             ON CONFLICT (hub_id) DO NOTHING",
            &[&hub_id],
        )
        .await?;
        c.execute("DELETE FROM peer_links WHERE hub_id = $1", &[&hub_id])
            .await?;
        super::postgres::bump_epoch(c).await?;
    } else {
        c.execute(
            "UPDATE peer_links SET status = $2 WHERE hub_id = $1",
            &[&hub_id, &status.as_str()],
        )
        .await?;
    }
    audit(
        c,
        now,
        actor,
        &format!("peer.{change}"),
        hub_id,
        &format!("{} -> {status}", link.status),
    )
    .await?;
    Ok(Some(PeerLinkRow { status, ..link }))
}

/// As `sqlite_fed::pin_peer_directory_key`.
pub(super) async fn pin_peer_directory_key(
    c: &Conn,
    hub_id: &str,
    key: &[u8],
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE peer_links SET directory_key = $2 WHERE hub_id = $1",
        &[&hub_id, &key],
    )
    .await?;
    Ok(())
}

pub(super) async fn pin_peer_directory(
    c: &Conn,
    hub_id: &str,
    version: u64,
    directory: &str,
) -> Result<(), StoreError> {
    let n = c
        .execute(
            "UPDATE peer_links SET directory = $2, directory_version = $3
             WHERE hub_id = $1 AND directory_version <= $3",
            &[&hub_id, &directory, &(version as i64)],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::Refused(format!(
            "peer `{hub_id}` is gone or holds a newer directory than version {version}"
        )));
    }
    Ok(())
}

pub(super) async fn receive_from_peer(
    c: &Conn,
    hub_id: &str,
    items: &[FederatedItem],
    cursor: &[u8],
) -> Result<u64, StoreError> {
    let status: Option<String> = c
        .query_opt(
            "SELECT status FROM peer_links WHERE hub_id = $1 FOR UPDATE",
            &[&hub_id],
        )
        .await?
        .map(|r| r.get(0));
    if status.as_deref() != Some(MemberStatus::Active.as_str()) {
        return Err(StoreError::Refused(format!(
            "peer `{hub_id}` is not followed now; nothing stored"
        )));
    }
    // The order row is taken only when something joins the order, and
    // then held to commit like a publishing batch's.
    let mut order: Option<(super::postgres::AppendSql, super::postgres::Order)> = None;
    let mut stored = 0;
    for i in items {
        let held: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM federated_items
                   WHERE origin_hub = $1 AND id = $2 AND revision = $3)",
                &[&i.origin_hub, &i.id, &i64::from(i.revision)],
            )
            .await?
            .get(0);
        if held {
            continue;
        }
        if let Some(statement) = &i.order {
            if order.is_none() {
                let sql = super::postgres::AppendSql::prepare(c).await?;
                let locked = super::postgres::lock_order(c, &sql).await?;
                order = Some((sql, locked));
            }
            let (sql, locked) = order.as_mut().expect("taken above");
            match super::postgres::append_statement(c, sql, locked, statement).await {
                Ok(_) => {}
                Err(e @ (StoreError::Conflict(_) | StoreError::Refused(_))) => {
                    tracing::warn!(peer = %hub_id, origin = %i.origin_hub, id = %i.id,
                        revision = i.revision, error = %e,
                        "a received item cannot join this hub's order; not stored");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        stored += c
            .execute(
                "INSERT INTO federated_items
                   (origin_hub, id, revision, from_peer, tlp, kind, envelope, provenance, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (origin_hub, id, revision) DO NOTHING",
                &[
                    &i.origin_hub,
                    &i.id,
                    &i64::from(i.revision),
                    &i.from_peer,
                    &i.tlp,
                    &i.kind,
                    &i.envelope_json,
                    &i.provenance,
                    &i.received_at,
                ],
            )
            .await?;
    }
    c.execute(
        "UPDATE peer_links SET cursor = $2 WHERE hub_id = $1",
        &[&hub_id, &cursor],
    )
    .await?;
    if let Some((sql, locked)) = &order {
        super::postgres::store_order(c, sql, locked).await?;
    }
    Ok(stored)
}

pub(super) async fn federated_items(
    c: &Conn,
    origin: Option<&str>,
) -> Result<Vec<FederatedItem>, StoreError> {
    c.query(
        "SELECT origin_hub, id, revision, from_peer, tlp, kind, envelope, provenance, received_at
         FROM federated_items WHERE $1::TEXT IS NULL OR origin_hub = $1
         ORDER BY received_at, origin_hub, id, revision",
        &[&origin],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(FederatedItem {
            origin_hub: r.get(0),
            id: r.get(1),
            revision: r.get::<_, i64>(2) as u32,
            from_peer: r.get(3),
            tlp: r.get(4),
            kind: r.get(5),
            envelope_json: r.get(6),
            provenance: r.get(7),
            received_at: r.get(8),
            order: None,
        })
    })
    .collect()
}
