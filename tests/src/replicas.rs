//! Hub replicas as operators run them: `hub serve` processes on one
//! throwaway PostgreSQL database, each with its own data dir holding a copy
//! of the first one's key material (CA, hub keys, server certificate,
//! hub.toml naming the database).

use std::path::{Path, PathBuf};

use crate::pg::PgCluster;
use crate::HubProcess;

/// `n` replicas on database `isac` of their own cluster. Field order is
/// drop order: the hubs stop before the database does.
pub struct Replicas {
    pub hubs: Vec<HubProcess>,
    pub dirs: Vec<PathBuf>,
    pub cluster: PgCluster,
}

impl Replicas {
    /// Starts the cluster and `n` replicas in `root/hub-0`, `root/hub-1`, ...
    /// (the first creates the key material, the others copy it).
    pub fn start(root: &Path, n: usize) -> Replicas {
        let cluster = PgCluster::start();
        cluster.create_db("isac");
        let first = root.join("hub-0");
        std::fs::create_dir(&first).unwrap();
        std::fs::write(
            first.join("hub.toml"),
            format!("store = \"{}\"\n", cluster.url("isac")),
        )
        .unwrap();
        let mut hubs = vec![HubProcess::start(&first, "127.0.0.1:0")];
        let mut dirs = vec![first];
        for i in 1..n {
            let dir = root.join(format!("hub-{i}"));
            replica_dir(&dirs[0], &dir);
            hubs.push(HubProcess::start(&dir, "127.0.0.1:0"));
            dirs.push(dir);
        }
        Replicas {
            hubs,
            dirs,
            cluster,
        }
    }

    pub fn url(&self, i: usize) -> String {
        self.hubs[i].url()
    }

    /// SIGKILL of replica `i` (no shutdown: what it acknowledged must
    /// already be in the database).
    pub fn sigkill(&mut self, i: usize) {
        let hub = &mut self.hubs[i];
        hub.child.kill().unwrap();
        hub.child.wait().unwrap();
    }

    /// Whether replica `i` is still the process the test started.
    pub fn running(&mut self, i: usize) -> bool {
        matches!(self.hubs[i].child.try_wait(), Ok(None))
    }
}

/// A copy of a hub's data dir (its CA, keys, certificate and hub.toml):
/// a replica with the same key material.
pub fn replica_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "hub.run" && entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
