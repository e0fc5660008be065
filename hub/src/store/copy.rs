//! `hub store copy`: the embedded SQLite database into an empty PostgreSQL
//! one, in one transaction on the target, verified by counts and content
//! hashes per table before it commits.
//!
//! The source is read in one read transaction (a consistent snapshot even
//! if something writes meanwhile), on its own thread, in chunks through a
//! bounded channel, so memory stays flat whatever the size. The target is
//! written with binary `COPY`. Both sides are then hashed the same way: the
//! rows in a total order (every column, bytes for text, nulls first),
//! each value tagged and length-prefixed, through SHA-256.

use std::path::{Path, PathBuf};

use rusqlite::OpenFlags;
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_stream::StreamExt;

use super::{postgres, postgres_store, StoreError};

/// Every table the hub stores, parents before children (foreign keys).
/// A SQLite table not named here refuses the copy rather than drop it.
pub const TABLES: &[&str] = &[
    "members",
    "enrollment_tokens",
    "agents",
    "signing_keys",
    "statements",
    "people",
    "audit",
    "counters",
    "sharing_groups",
    "group_members",
    "api_keys",
    "stix_ids",
    "taxii_writes",
    "taxii_status",
    "pruned",
    "statement_refs",
    "log_leaves",
    "log_nodes",
    "log_checkpoints",
    "log_cosignatures",
    "peer_links",
    "federated_items",
    "group_remote_members",
    "peer_groups",
    "origin_directories",
];

/// One table's verification: what the source held and what the target
/// holds after the copy (equal, or the copy was rolled back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    pub table: &'static str,
    pub rows: u64,
    /// Hex SHA-256 of the canonical row dump, source side.
    pub source_sha256: String,
    /// The same over the target's rows, read back inside the transaction.
    pub target_sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Blob,
    Bool,
}

impl Kind {
    fn of(pg_type: &str) -> Option<Kind> {
        match pg_type {
            "bigint" => Some(Kind::Int),
            "text" => Some(Kind::Text),
            "bytea" => Some(Kind::Blob),
            "boolean" => Some(Kind::Bool),
            _ => None,
        }
    }
    fn pg(self) -> Type {
        match self {
            Kind::Int => Type::INT8,
            Kind::Text => Type::TEXT,
            Kind::Blob => Type::BYTEA,
            Kind::Bool => Type::BOOL,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Val {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    Bool(bool),
}

/// The canonical row dump both sides hash.
fn feed(h: &mut openssl::sha::Sha256, row: &[Val]) {
    for v in row {
        match v {
            Val::Null => h.update(&[0]),
            Val::Int(i) => {
                h.update(&[1]);
                h.update(&i.to_be_bytes());
            }
            Val::Text(s) => {
                h.update(&[2]);
                h.update(&(s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
            Val::Blob(b) => {
                h.update(&[3]);
                h.update(&(b.len() as u64).to_be_bytes());
                h.update(b);
            }
            Val::Bool(b) => h.update(&[4, u8::from(*b)]),
        }
    }
}

fn hex(d: [u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

struct Table {
    name: &'static str,
    columns: Vec<(String, Kind)>,
}

impl Table {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

enum Msg {
    Rows(Vec<Vec<Val>>),
    /// A table ended: rows read and their hash.
    Done(u64, String),
    /// The order the target's `hub_order` row takes: last seq, next leaf,
    /// last `added_us`.
    Order(i64, i64, i64),
    Failed(StoreError),
}

const CHUNK: usize = 512;

/// Copies the SQLite database at `sqlite_path` into the (empty) PostgreSQL
/// database `target`, verifies it, and commits only if every table's count
/// and hash agree. The caller makes sure no hub serves from the file.
pub async fn copy_sqlite_to_postgres(
    sqlite_path: &Path,
    target: super::PgTarget,
) -> Result<Vec<TableCheck>, StoreError> {
    if !sqlite_path.exists() {
        return Err(StoreError::NotFound(format!(
            "no hub database at {}",
            sqlite_path.display()
        )));
    }
    let c = postgres_store::connect(&super::pg_tls::Dial::new(target)?).await?;
    postgres::migrate(&c).await?;
    c.raw().batch_execute("BEGIN").await?;
    let result = copy_in_transaction(&c, sqlite_path.to_owned()).await;
    match result {
        Ok(checks) => {
            c.raw().batch_execute("COMMIT").await?;
            Ok(checks)
        }
        Err(e) => {
            let _ = c.raw().batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn copy_in_transaction(
    c: &postgres::Conn,
    sqlite_path: PathBuf,
) -> Result<Vec<TableCheck>, StoreError> {
    let pg = c.raw();
    // Another copy or a hub writing waits here; the emptiness check below
    // then sees everything committed before.
    postgres::lock_writes(c).await?;
    for t in TABLES {
        if *t == "counters" {
            continue;
        }
        let n: i64 = pg
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .await?
            .get(0);
        if n > 0 {
            return Err(StoreError::Refused(format!(
                "the target database is not empty ({t} has {n} rows): `hub store copy` copies only into an empty database; create a new one (createdb) and copy into that"
            )));
        }
    }
    let mut tables = Vec::new();
    for name in TABLES {
        let rows = pg
            .query(
                "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1
                 ORDER BY ordinal_position",
                &[name],
            )
            .await?;
        let mut columns = Vec::new();
        for r in rows {
            let (col, ty): (String, String) = (r.get(0), r.get(1));
            let kind = Kind::of(&ty).ok_or_else(|| {
                StoreError::Refused(format!(
                    "column {name}.{col} has type {ty}, which the copy does not know"
                ))
            })?;
            columns.push((col, kind));
        }
        tables.push(Table { name, columns });
    }
    // The migration's defaults give way to the source's values.
    pg.batch_execute("DELETE FROM counters").await?;

    let (tx, mut rx) = mpsc::channel::<Msg>(4);
    let plan: Vec<(String, Vec<(String, Kind)>)> = tables
        .iter()
        .map(|t| (t.name.to_owned(), t.columns.clone()))
        .collect();
    let reader = tokio::task::spawn_blocking(move || {
        if let Err(e) = read_source(&sqlite_path, &plan, &tx) {
            let _ = tx.blocking_send(Msg::Failed(e));
        }
    });

    let mut checks = Vec::new();
    let result = async {
        for t in &tables {
            let types: Vec<Type> = t.columns.iter().map(|(_, k)| k.pg()).collect();
            let sink = pg
                .copy_in(&format!(
                    "COPY {} ({}) FROM STDIN (FORMAT binary)",
                    t.name,
                    t.column_list()
                ))
                .await?;
            let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
            let (rows, source_sha256) = loop {
                match rx.recv().await {
                    Some(Msg::Rows(chunk)) => {
                        for row in chunk {
                            let params = to_params(&t.columns, row)?;
                            let refs: Vec<&(dyn ToSql + Sync)> =
                                params.iter().map(|p| p.as_ref() as _).collect();
                            writer.as_mut().write(&refs).await?;
                        }
                    }
                    Some(Msg::Done(n, h)) => break (n, h),
                    Some(Msg::Failed(e)) => return Err(e),
                    Some(Msg::Order(..)) | None => {
                        return Err(StoreError::Sqlite("the SQLite reader stopped early".into()))
                    }
                }
            };
            let written = writer.as_mut().finish().await?;
            if written != rows {
                return Err(StoreError::Refused(format!(
                    "{}: read {rows} rows, PostgreSQL took {written}",
                    t.name
                )));
            }
            checks.push(TableCheck {
                table: t.name,
                rows,
                source_sha256,
                target_sha256: String::new(),
            });
        }
        match rx.recv().await {
            Some(Msg::Order(seq, leaf, added_us)) => {
                pg.execute(
                    "UPDATE hub_order SET seq = $1, leaf = $2, added_us = $3",
                    &[&seq, &leaf, &added_us],
                )
                .await?;
            }
            Some(Msg::Failed(e)) => return Err(e),
            _ => return Err(StoreError::Sqlite("the SQLite reader stopped early".into())),
        }
        Ok::<(), StoreError>(())
    }
    .await;
    drop(rx);
    let _ = reader.await;
    result?;

    // Audit numbers continue after the copied ones.
    pg.execute(
        "SELECT setval(pg_get_serial_sequence('audit', 'seq'),
                       COALESCE((SELECT max(seq) FROM audit), 1),
                       (SELECT max(seq) FROM audit) IS NOT NULL)",
        &[],
    )
    .await?;

    for (t, check) in tables.iter().zip(checks.iter_mut()) {
        let order = t
            .columns
            .iter()
            .map(|(c, k)| match k {
                Kind::Text => format!("{c} COLLATE \"C\" NULLS FIRST"),
                _ => format!("{c} NULLS FIRST"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        // Streamed, not collected: a large table need not fit in memory.
        let rows = pg
            .query_raw(
                &format!(
                    "SELECT {} FROM {} ORDER BY {order}",
                    t.column_list(),
                    t.name
                ),
                std::iter::empty::<i64>(),
            )
            .await?;
        let mut rows = std::pin::pin!(rows);
        let mut h = openssl::sha::Sha256::new();
        let mut n = 0u64;
        while let Some(r) = rows.next().await {
            let r = r?;
            n += 1;
            let mut vals = Vec::with_capacity(t.columns.len());
            for (i, (_, k)) in t.columns.iter().enumerate() {
                vals.push(match k {
                    Kind::Int => r.get::<_, Option<i64>>(i).map_or(Val::Null, Val::Int),
                    Kind::Text => r.get::<_, Option<String>>(i).map_or(Val::Null, Val::Text),
                    Kind::Blob => r.get::<_, Option<Vec<u8>>>(i).map_or(Val::Null, Val::Blob),
                    Kind::Bool => r.get::<_, Option<bool>>(i).map_or(Val::Null, Val::Bool),
                });
            }
            feed(&mut h, &vals);
        }
        check.target_sha256 = hex(h.finish());
        if n != check.rows || check.target_sha256 != check.source_sha256 {
            return Err(StoreError::Refused(format!(
                "verification failed for {}: source {} rows sha256 {}, target {} rows sha256 {}; nothing was kept",
                t.name,
                check.rows,
                check.source_sha256,
                n,
                check.target_sha256
            )));
        }
    }
    Ok(checks)
}

fn to_params(
    columns: &[(String, Kind)],
    row: Vec<Val>,
) -> Result<Vec<Box<dyn ToSql + Sync + Send>>, StoreError> {
    columns
        .iter()
        .zip(row)
        .map(
            |((c, k), v)| -> Result<Box<dyn ToSql + Sync + Send>, StoreError> {
                Ok(match (k, v) {
                    (Kind::Int, Val::Int(i)) => Box::new(i),
                    (Kind::Int, Val::Null) => Box::new(None::<i64>),
                    (Kind::Text, Val::Text(s)) => Box::new(s),
                    (Kind::Text, Val::Null) => Box::new(None::<String>),
                    (Kind::Blob, Val::Blob(b)) => Box::new(b),
                    (Kind::Blob, Val::Null) => Box::new(None::<Vec<u8>>),
                    (Kind::Bool, Val::Bool(b)) => Box::new(b),
                    (Kind::Bool, Val::Null) => Box::new(None::<bool>),
                    (k, v) => {
                        return Err(StoreError::Refused(format!(
                            "column {c}: a {k:?} column read {v:?}"
                        )))
                    }
                })
            },
        )
        .collect()
}

/// The reader thread: one read transaction over every table.
fn read_source(
    path: &Path,
    plan: &[(String, Vec<(String, Kind)>)],
    tx: &mpsc::Sender<Msg>,
) -> Result<(), StoreError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("BEGIN")?;
    // Nothing stored is left behind: every table and column must be known.
    let mut known = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let names: Vec<String> = known
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for n in &names {
        if !plan.iter().any(|(t, _)| t == n) {
            return Err(StoreError::Refused(format!(
                "the SQLite database has a table `{n}` this hub does not copy; use the hub version that wrote it"
            )));
        }
    }
    for (t, cols) in plan {
        let mut info = conn.prepare(&format!("PRAGMA table_info({t})"))?;
        let have: Vec<String> = info
            .query_map([], |r| r.get(1))?
            .collect::<Result<_, _>>()?;
        if have.is_empty() {
            return Err(StoreError::Refused(format!(
                "the SQLite database has no table `{t}`: start this hub version on it once (`hub status`) so it migrates, then copy"
            )));
        }
        let mut want: Vec<&str> = cols.iter().map(|(c, _)| c.as_str()).collect();
        let mut have_sorted: Vec<&str> = have.iter().map(String::as_str).collect();
        want.sort_unstable();
        have_sorted.sort_unstable();
        if want != have_sorted {
            return Err(StoreError::Refused(format!(
                "table {t} has columns {have_sorted:?} in SQLite but {want:?} in PostgreSQL; use a hub version whose schemas match"
            )));
        }
    }
    for (t, cols) in plan {
        let list = cols
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let order = cols
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare(&format!("SELECT {list} FROM {t} ORDER BY {order}"))?;
        let mut rows = stmt.query([])?;
        let mut h = openssl::sha::Sha256::new();
        let mut n = 0u64;
        let mut chunk = Vec::with_capacity(CHUNK);
        while let Some(r) = rows.next()? {
            let mut vals = Vec::with_capacity(cols.len());
            for (i, (c, k)) in cols.iter().enumerate() {
                vals.push(match k {
                    Kind::Int => r.get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::Int),
                    Kind::Text => r.get::<_, Option<String>>(i)?.map_or(Val::Null, Val::Text),
                    Kind::Blob => r.get::<_, Option<Vec<u8>>>(i)?.map_or(Val::Null, Val::Blob),
                    Kind::Bool => match r.get::<_, Option<i64>>(i)? {
                        None => Val::Null,
                        Some(0) => Val::Bool(false),
                        Some(1) => Val::Bool(true),
                        Some(x) => {
                            return Err(StoreError::Refused(format!(
                                "{t}.{c} holds {x}, not a boolean"
                            )))
                        }
                    },
                });
            }
            feed(&mut h, &vals);
            n += 1;
            chunk.push(vals);
            if chunk.len() == CHUNK
                && tx
                    .blocking_send(Msg::Rows(std::mem::take(&mut chunk)))
                    .is_err()
            {
                return Ok(());
            }
        }
        if (!chunk.is_empty() && tx.blocking_send(Msg::Rows(chunk)).is_err())
            || tx.blocking_send(Msg::Done(n, hex(h.finish()))).is_err()
        {
            return Ok(());
        }
    }
    // AUTOINCREMENT keeps the highest seq ever handed out, also of pruned
    // statements: the target continues after it.
    let seq: i64 = conn.query_row(
        "SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'statements'), 0),
                    COALESCE((SELECT max(seq) FROM statements), 0))",
        [],
        |r| r.get(0),
    )?;
    let leaf: i64 = conn.query_row(
        "SELECT COALESCE(max(leaf_index) + 1, 0) FROM log_leaves",
        [],
        |r| r.get(0),
    )?;
    let added_us: i64 = conn.query_row(
        "SELECT COALESCE(max(added_us), 0) FROM statements",
        [],
        |r| r.get(0),
    )?;
    let _ = tx.blocking_send(Msg::Order(seq, leaf, added_us));
    Ok(())
}
