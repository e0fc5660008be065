//! Key, certificate and identity files, as hub and agent keep them: each
//! written whole or not at all, with its mode from the first byte.
//!
//! A crash or power cut must never leave a truncated private key or an
//! identity half-written (an agent that cannot read its own key has to be
//! enrolled again). So: write a temporary file beside the target created
//! with the final mode (a private key is never readable by others, not even
//! for an instant), fsync it, rename it over the target, then fsync the
//! directory so that the rename itself survives.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Owner read and write only: private keys, secrets.
pub const PRIVATE: u32 = 0o600;
/// Readable by all: certificates, public keys, identity.
pub const PUBLIC: u32 = 0o644;

/// An I/O failure and the file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError {
        path: path.to_owned(),
        source,
    }
}

/// Replaces `path` with `bytes` atomically, the file having `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(at(&tmp))?;
    f.write_all(bytes).map_err(at(&tmp))?;
    f.sync_all().map_err(at(&tmp))?;
    // `mode` at creation is masked by the umask, and a leftover temporary
    // file keeps its old mode: set it exactly.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(at(&tmp))?;
    fs::rename(&tmp, path).map_err(at(path))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(at(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_get_their_mode_whatever_the_umask_and_replace_whole() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("signing.key");
        write_atomic(&key, b"first", PRIVATE).unwrap();
        write_atomic(&key, b"second", PRIVATE).unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"second");
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let crt = dir.path().join("tls.crt");
        write_atomic(&crt, b"cert", PUBLIC).unwrap();
        assert_eq!(
            fs::metadata(&crt).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert!(!dir.path().join("signing.tmp").exists());
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_atomic(&dir.path().join("nope/ca.crt"), b"x", PUBLIC).unwrap_err();
        assert!(e.to_string().contains("nope/ca.tmp"), "{e}");
    }
}
