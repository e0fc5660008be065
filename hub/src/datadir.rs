//! The hub's data directory: created on first start with a development CA,
//! the hub's server certificate, its own Ed25519 signing key and the SQLite
//! database. Private key files are written with mode 0600.
//!
//! Layout: `ca.crt ca.key server.crt server.key hub-signing.key hub-anon.key hub-attest.key hub-log.key hub.db [hub.toml] [hub.run]`.
//! `hub.run` exists while a `hub serve` runs: the addresses it bound.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::pki;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Crypto { path: PathBuf, message: String },
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The operator pointed at the wrong place (not a backup, a data dir
    /// already in use, a backup destination that is not empty): exit 64.
    #[error("{path}: {message}")]
    BadInput {
        path: PathBuf,
        message: &'static str,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_owned(),
        source,
    }
}

fn crypto(path: &Path) -> impl FnOnce(openssl::error::ErrorStack) -> DataDirError + '_ {
    move |e| DataDirError::Crypto {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Writes a file readable by the owner only, atomically (temp file + rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    write_with_mode(path, bytes, 0o600)
}

pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    write_with_mode(path, bytes, 0o644)
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), DataDirError> {
    isac_client::files::write_atomic(path, bytes, mode).map_err(|e| io(&e.path)(e.source))
}

/// Everything the hub loads from its data directory.
pub struct HubMaterial {
    pub ca_cert: X509,
    pub ca_key: PKey<Private>,
    pub server_cert: X509,
    pub server_key: PKey<Private>,
    pub hub_signing_key: isac_core::SigningKey,
    /// Signs anonymous submissions; listed in the key directory as `anonymous`.
    pub anon_key: isac_core::SigningKey,
    /// Seals the positions members see (stream cursors, TAXII `next`).
    pub cursors: crate::cursor::CursorSealer,
    /// Signs what members submit over TAXII, for them; listed in the key
    /// directory under `isac-hub` (`HUB_ATTESTATION_ORG`).
    pub attest_key: isac_core::SigningKey,
    /// Signs the transparency log's checkpoints (C2SP signed notes); listed
    /// in the key directory under `isac-log` (`LOG_ORG`).
    pub log_key: isac_core::SigningKey,
    pub ca_fingerprint: String,
}

impl HubMaterial {
    pub fn ca_pem(&self) -> String {
        String::from_utf8(self.ca_cert.to_pem().unwrap_or_default()).unwrap_or_default()
    }
}

/// Loads an Ed25519 key of the hub, creating it (mode 0600) when missing.
fn signing_key(path: &Path) -> Result<isac_core::SigningKey, DataDirError> {
    let crypto_err = |e: &dyn std::fmt::Display| DataDirError::Crypto {
        path: path.to_owned(),
        message: e.to_string(),
    };
    if !path.exists() {
        let k = isac_core::SigningKey::generate().map_err(|e| crypto_err(&e))?;
        let pem = k.to_pkcs8_pem().map_err(|e| crypto_err(&e))?;
        write_private(path, &pem)?;
    }
    isac_core::SigningKey::from_pkcs8_pem(&fs::read(path).map_err(io(path))?)
        .map_err(|e| crypto_err(&e))
}

/// Creates whatever is missing in `dir` and loads it all.
pub fn init(dir: &Path, server_names: &[String]) -> Result<(HubMaterial, bool), DataDirError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    let ca_crt = dir.join("ca.crt");
    let ca_key_path = dir.join("ca.key");
    let mut created = false;
    if !ca_crt.exists() {
        let (ca, key) = pki::create_ca("ISAC hub development CA").map_err(crypto(&ca_crt))?;
        write_private(
            &ca_key_path,
            &key.private_key_to_pem_pkcs8()
                .map_err(crypto(&ca_key_path))?,
        )?;
        write_public(&ca_crt, &ca.to_pem().map_err(crypto(&ca_crt))?)?;
        created = true;
    }
    let ca_cert =
        X509::from_pem(&fs::read(&ca_crt).map_err(io(&ca_crt))?).map_err(crypto(&ca_crt))?;
    let ca_key = PKey::private_key_from_pem(&fs::read(&ca_key_path).map_err(io(&ca_key_path))?)
        .map_err(crypto(&ca_key_path))?;

    let server_crt = dir.join("server.crt");
    let server_key_path = dir.join("server.key");
    if !server_crt.exists() {
        let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        for n in server_names {
            if !hosts.contains(n) {
                hosts.push(n.clone());
            }
        }
        let (cert, key) =
            pki::issue_server_cert(&ca_cert, &ca_key, &hosts).map_err(crypto(&server_crt))?;
        write_private(
            &server_key_path,
            &key.private_key_to_pem_pkcs8()
                .map_err(crypto(&server_key_path))?,
        )?;
        write_public(&server_crt, &cert.to_pem().map_err(crypto(&server_crt))?)?;
    }
    let server_cert = X509::from_pem(&fs::read(&server_crt).map_err(io(&server_crt))?)
        .map_err(crypto(&server_crt))?;
    let server_key =
        PKey::private_key_from_pem(&fs::read(&server_key_path).map_err(io(&server_key_path))?)
            .map_err(crypto(&server_key_path))?;

    let hub_signing_key = signing_key(&dir.join("hub-signing.key"))?;
    // Derived from a key file every backup already carries, so a restored
    // hub (or a replica) opens the cursors its members hold.
    let signing_key_path = dir.join("hub-signing.key");
    let cursors = crate::cursor::CursorSealer::derive(
        &fs::read(&signing_key_path).map_err(io(&signing_key_path))?,
    );
    let anon_key = signing_key(&dir.join("hub-anon.key"))?;
    let attest_key = signing_key(&dir.join("hub-attest.key"))?;
    let log_key = signing_key(&dir.join("hub-log.key"))?;

    let ca_fingerprint = pki::cert_fingerprint(&ca_cert);
    Ok((
        HubMaterial {
            ca_cert,
            ca_key,
            server_cert,
            server_key,
            hub_signing_key,
            anon_key,
            cursors,
            attest_key,
            log_key,
            ca_fingerprint,
        },
        created,
    ))
}

pub fn open_store(dir: &Path) -> Result<Store, DataDirError> {
    Ok(Store::open(&dir.join("hub.db"))?)
}

/// Files besides the database that a restored hub needs: its CA, server
/// identity, signing keys and config.
const KEY_FILES: [&str; 11] = [
    "ca.crt",
    "ca.key",
    "server.crt",
    "server.key",
    "hub-signing.key",
    "hub-anon.key",
    "hub-attest.key",
    "hub-log.key",
    "hub.json",
    "hub.toml",
    "hub.db",
];

/// Writes a consistent copy of a (possibly running) hub's data dir into
/// `dest` (a new directory): an online SQLite backup of the database plus
/// the key files. Returns the number of statements in the copy.
pub fn backup(data_dir: &Path, dest: &Path) -> Result<u64, DataDirError> {
    if dest.exists() && fs::read_dir(dest).map_err(io(dest))?.next().is_some() {
        return Err(DataDirError::BadInput {
            path: dest.to_owned(),
            message: "backup destination exists and is not empty",
        });
    }
    fs::create_dir_all(dest).map_err(io(dest))?;
    fs::set_permissions(dest, fs::Permissions::from_mode(0o700)).map_err(io(dest))?;
    let count = crate::store::backup_database(&data_dir.join("hub.db"), &dest.join("hub.db"))?;
    fs::set_permissions(dest.join("hub.db"), fs::Permissions::from_mode(0o600))
        .map_err(io(dest))?;
    for name in KEY_FILES.iter().filter(|n| **n != "hub.db") {
        let from = data_dir.join(name);
        if from.exists() {
            let bytes = fs::read(&from).map_err(io(&from))?;
            write_private(&dest.join(name), &bytes)?;
        }
    }
    Ok(count)
}

/// Restores a backup made by [`backup`] into an empty (or absent) data dir.
/// The hub must not be running on `data_dir`.
pub fn restore(backup_dir: &Path, data_dir: &Path) -> Result<u64, DataDirError> {
    for required in ["hub.db", "ca.crt", "ca.key", "hub-signing.key"] {
        if !backup_dir.join(required).exists() {
            return Err(DataDirError::BadInput {
                path: backup_dir.join(required),
                message: "not a hub backup: missing file",
            });
        }
    }
    if data_dir.join("hub.db").exists() {
        return Err(DataDirError::BadInput {
            path: data_dir.to_owned(),
            message: "data dir already holds a database; restore into a new one",
        });
    }
    fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700)).map_err(io(data_dir))?;
    for name in KEY_FILES {
        let from = backup_dir.join(name);
        if from.exists() {
            let bytes = fs::read(&from).map_err(io(&from))?;
            write_private(&data_dir.join(name), &bytes)?;
        }
    }
    // Opening it checks it is a database this hub understands.
    let store = open_store(data_dir)?;
    store.close();
    Ok(crate::store::count_statements(&data_dir.join("hub.db"))?)
}

// === the running hub's addresses ===

/// `DATA_DIR/hub.run`: what a running `hub serve` bound (after `--listen`
/// and the other overrides, with port 0 resolved), written once it
/// listens and removed when it stops cleanly. `hub status` prints it. Not
/// in backups: it describes a process, not the hub's data.
pub const RUN_FILE: &str = "hub.run";

/// The content of [`RUN_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat`
    /// field 22), so that a later process reusing the pid is not taken for
    /// this hub.
    pub start_ticks: Option<u64>,
    /// RFC 3339, when it started listening.
    pub started: String,
    pub listen: String,
    pub taxii_listen: Option<String>,
    pub metrics_listen: Option<String>,
}

/// Field 22 (`starttime`) of `/proc/PID/stat`, if there is such a process.
fn proc_start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl RunInfo {
    /// This process, bound to these addresses, now.
    pub fn this_process(
        listen: String,
        taxii_listen: Option<String>,
        metrics_listen: Option<String>,
        now: i64,
    ) -> RunInfo {
        let pid = std::process::id();
        RunInfo {
            pid,
            start_ticks: proc_start_ticks(pid),
            started: isac_core::time::format_rfc3339(now),
            listen,
            taxii_listen,
            metrics_listen,
        }
    }

    /// Whether the process that wrote this is still running.
    pub fn is_alive(&self) -> bool {
        match (proc_start_ticks(self.pid), self.start_ticks) {
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// Records what this hub bound (see [`RUN_FILE`]).
pub fn write_run_info(data_dir: &Path, info: &RunInfo) -> Result<(), DataDirError> {
    let json = serde_json::to_vec_pretty(info).unwrap_or_default();
    write_public(&data_dir.join(RUN_FILE), &json)
}

/// Removes [`RUN_FILE`] at a clean stop, if it is still this process's.
pub fn remove_run_info(data_dir: &Path, pid: u32) {
    let path = data_dir.join(RUN_FILE);
    let ours = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<RunInfo>(&b).ok())
        .is_some_and(|i| i.pid == pid);
    if ours {
        let _ = fs::remove_file(&path);
    }
}

/// Whether a hub runs on a data directory, from its [`RUN_FILE`].
#[derive(Debug, PartialEq, Eq)]
pub enum Running {
    /// No `hub.run`: no hub runs, or the last one stopped cleanly.
    No,
    Yes(RunInfo),
    /// A `hub.run` whose process is gone: the hub was killed or crashed.
    Stale(RunInfo),
    /// A `hub.run` that cannot be read.
    Unreadable(String),
}

pub fn running(data_dir: &Path) -> Running {
    let path = data_dir.join(RUN_FILE);
    match fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Running::No,
        Err(e) => Running::Unreadable(format!("{}: {e}", path.display())),
        Ok(b) => match serde_json::from_slice::<RunInfo>(&b) {
            Ok(info) if info.is_alive() => Running::Yes(info),
            Ok(info) => Running::Stale(info),
            Err(e) => Running::Unreadable(format!("{}: {e}", path.display())),
        },
    }
}

#[cfg(test)]
mod run_file_tests {
    use super::*;

    #[test]
    fn the_run_file_tells_running_from_stale_and_is_removed_only_by_its_writer() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(running(dir.path()), Running::No);
        let me = RunInfo::this_process(
            "127.0.0.1:40001".into(),
            Some("127.0.0.1:40002".into()),
            None,
            0,
        );
        assert!(me.start_ticks.is_some(), "/proc/self/stat is readable");
        write_run_info(dir.path(), &me).unwrap();
        assert_eq!(running(dir.path()), Running::Yes(me.clone()));
        // Another process's file is left alone.
        remove_run_info(dir.path(), me.pid + 1);
        assert_eq!(running(dir.path()), Running::Yes(me.clone()));
        // The same pid with another start time is a process that reused it.
        let reused = RunInfo {
            start_ticks: me.start_ticks.map(|t| t + 1),
            ..me.clone()
        };
        write_run_info(dir.path(), &reused).unwrap();
        assert_eq!(running(dir.path()), Running::Stale(reused));
        // A process that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = RunInfo { pid, ..me.clone() };
        write_run_info(dir.path(), &gone).unwrap();
        assert_eq!(running(dir.path()), Running::Stale(gone));
        write_run_info(dir.path(), &me).unwrap();
        remove_run_info(dir.path(), me.pid);
        assert_eq!(running(dir.path()), Running::No);
        fs::write(dir.path().join(RUN_FILE), "{").unwrap();
        assert!(matches!(running(dir.path()), Running::Unreadable(_)));
    }
}
