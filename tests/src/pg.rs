//! A throwaway PostgreSQL cluster per test: `initdb` into a temp dir,
//! `postgres` on a free loopback port (and a Unix socket in the same dir),
//! stopped and removed on drop. Runs the server as `nobody` when the tests
//! run as root (PostgreSQL refuses to run as root). No system service is
//! used or needed; `scripts/install-deps` installs the binaries.
//! [`PgCluster::start_tls`] also turns on `ssl` with a server certificate
//! for `localhost` and `127.0.0.1` from a test CA made with `openssl`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user the cluster is created for (trust authentication on loopback).
pub const PG_USER: &str = "isac";

pub struct PgCluster {
    pub port: u16,
    dir: Option<tempfile::TempDir>,
    server: Child,
    bin: PathBuf,
    as_nobody: bool,
}

/// The PEM files of a TLS cluster's test PKI.
pub struct PgTlsFiles {
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// Another CA, which signed nothing the server holds.
    pub other_ca: PathBuf,
}

/// Where the PostgreSQL server binaries are: `ISAC_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`, else `PATH`.
pub fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ISAC_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // `id -u` rather than libc: the tests crate links no libc bindings.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args...`, as `nobody` when we are root.
fn command(bin: &Path, program: &str, as_nobody: bool) -> Command {
    let exe = bin.join(program);
    if as_nobody {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl PgCluster {
    /// Creates and starts a cluster; panics with the server's log if it
    /// cannot (the test cannot run without it).
    pub fn start() -> PgCluster {
        Self::start_with(false)
    }

    /// [`PgCluster::start`] with `ssl = on`: TLS on the loopback port
    /// (plain connections are still accepted); the CA files are in
    /// [`PgCluster::tls_files`].
    pub fn start_tls() -> PgCluster {
        Self::start_with(true)
    }

    /// The CA files of a cluster from [`PgCluster::start_tls`].
    pub fn tls_files(&self) -> PgTlsFiles {
        let dir = self.dir.as_ref().expect("cluster dir").path();
        PgTlsFiles {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
        }
    }

    fn start_with(tls: bool) -> PgCluster {
        let bin = pg_bin_dir().expect(
            "PostgreSQL server binaries not found: run scripts/install-deps (or set ISAC_PG_BIN)",
        );
        let dir = tempfile::Builder::new()
            .prefix("isac-pg-")
            .tempdir()
            .expect("temp dir");
        let as_nobody = is_root();
        if as_nobody {
            let status = Command::new("chown")
                .args(["-R", "nobody"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster dir to nobody");
        }
        let data = dir.path().join("data");
        let out = command(&bin, "initdb", as_nobody)
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", PG_USER, "-E", "UTF8", "--no-sync"])
            .arg("--locale=C")
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if tls {
            make_server_pki(dir.path(), &data, as_nobody);
        }
        let port = free_port();
        let server = spawn_server(&bin, dir.path(), port, as_nobody);
        let mut cluster = PgCluster {
            port,
            dir: Some(dir),
            server,
            bin,
            as_nobody,
        };
        cluster.wait_ready();
        cluster
    }

    /// Stops the server ("fast" shutdown: sessions are ended), keeping its data.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.server.try_wait() {
            return; // already stopped (and reaped: its pid is not ours any more)
        }
        let postmaster = self
            .dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.path().join("data/postmaster.pid")).ok())
            .and_then(|s| s.lines().next().map(str::to_owned))
            .unwrap_or_else(|| self.server.id().to_string());
        let _ = Command::new("kill").args(["-INT", &postmaster]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.server.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }

    /// Starts the stopped server again on the same port and data.
    pub fn start_again(&mut self) {
        let dir = self.dir.as_ref().expect("cluster dir").path().to_owned();
        self.server = spawn_server(&self.bin, &dir, self.port, self.as_nobody);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    PG_USER,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return;
            }
            if let Ok(Some(status)) = self.server.try_wait() {
                panic!("postgres exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready after 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.path().join("server.log")).ok())
            .unwrap_or_default()
    }

    /// `postgres://isac@127.0.0.1:PORT/DB` (no password: trust on loopback).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` (one per test or per hub).
    pub fn create_db(&self, name: &str) {
        let bin = pg_bin_dir().expect("PostgreSQL binaries");
        let out = Command::new(bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                PG_USER,
                name,
            ])
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`dir/ca.pem`), a server key and certificate for `localhost` and
/// `127.0.0.1` signed by it in the data dir (`server.key`, `server.crt`,
/// owned by the server's user, mode 0600 as PostgreSQL demands), another
/// CA (`dir/other-ca.pem`), and `ssl = on` in `postgresql.conf`.
fn make_server_pki(dir: &Path, data: &Path, as_nobody: bool) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    for (name, cn) in [
        ("ca", "isac test pg ca"),
        ("other-ca", "isac test other ca"),
    ] {
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
        openssl(dir, &args);
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("extensions file");
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    for f in ["server.key", "server.crt"] {
        std::fs::rename(dir.join(f), data.join(f)).expect("move into the data dir");
        if as_nobody {
            let _ = Command::new("chown")
                .arg("nobody")
                .arg(data.join(f))
                .status();
        }
    }
    let _ = Command::new("chmod")
        .arg("600")
        .arg(data.join("server.key"))
        .status();
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
    text.push_str("\nssl = on\n");
    std::fs::write(&conf, text).expect("postgresql.conf");
}

/// Runs `sql` in `db` through `psql` (plain TCP) and returns its
/// unaligned, tuples-only output.
pub fn psql(cluster: &PgCluster, db: &str, sql: &str) -> String {
    let bin = pg_bin_dir().expect("PostgreSQL binaries");
    let psql = if bin.join("psql").exists() {
        bin.join("psql")
    } else {
        PathBuf::from("psql")
    };
    let out = Command::new(psql)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            PG_USER,
        ])
        .args(["-d", db, "-X", "-A", "-t", "-c", sql])
        .env("PGSSLMODE", "disable")
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `postgres` on `port` (loopback) and a Unix socket in `dir`, logging to
/// `dir/server.log` (appended across restarts).
fn spawn_server(bin: &Path, dir: &Path, port: u16, as_nobody: bool) -> Child {
    let log_path = dir.join("server.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("log file");
    if as_nobody {
        let _ = Command::new("chown").arg("nobody").arg(&log_path).status();
    }
    command(bin, "postgres", as_nobody)
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-k")
        .arg(dir)
        .args(["-p", &port.to_string(), "-h", "127.0.0.1"])
        .args(["-c", "max_connections=200"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start postgres")
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
        drop(self.dir.take());
    }
}
