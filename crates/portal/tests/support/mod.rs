//! The two databases the store tests run against: an SQLite file in a
//! temporary directory, and a throwaway PostgreSQL cluster from Debian's
//! package, started here and stopped on drop.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corral_portal::db::Database;

/// Debian's PostgreSQL 15 binaries.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL server on a private Unix socket directory (no TCP port),
/// with its data in a temporary directory, run as the `postgres` user
/// (initdb refuses root). Stopped and removed on drop.
pub struct PgCluster {
    dir: tempfile::TempDir,
    server: Option<Child>,
    uid: u32,
    gid: u32,
}

fn user_ids(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("reading /etc/passwd");
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == name {
            return (f[2].parse().unwrap(), f[3].parse().unwrap());
        }
    }
    panic!("no user {name}: install postgresql-15 (Debian's package makes the postgres user)");
}

impl PgCluster {
    pub fn start() -> PgCluster {
        assert!(
            Path::new(PG_BIN).join("postgres").exists(),
            "PostgreSQL 15 is missing: apt-get install postgresql-15"
        );
        let (uid, gid) = user_ids("postgres");
        let dir = tempfile::Builder::new()
            .prefix("portal-pg-")
            .tempdir()
            .unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let out = Command::new(Path::new(PG_BIN).join("initdb"))
            .args(["-D"])
            .arg(dir.path().join("data"))
            .args([
                "-A",
                "trust",
                "-U",
                "portal",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .uid(uid)
            .gid(gid)
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::create_dir(dir.path().join("sock")).unwrap();
        std::os::unix::fs::chown(dir.path().join("sock"), Some(uid), Some(gid)).unwrap();
        let mut c = PgCluster {
            dir,
            server: None,
            uid,
            gid,
        };
        c.run_server();
        c
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn run_server(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let child = Command::new(Path::new(PG_BIN).join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.socket_dir())
            .args([
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=20",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .uid(self.uid)
            .gid(self.gid)
            .spawn()
            .expect("starting postgres");
        self.server = Some(child);
        let start = Instant::now();
        loop {
            let ready = Command::new(Path::new(PG_BIN).join("pg_isready"))
                .arg("-h")
                .arg(self.socket_dir())
                .stdout(Stdio::null())
                .status()
                .unwrap();
            if ready.success() {
                return;
            }
            if let Some(status) = self.server.as_mut().unwrap().try_wait().unwrap() {
                panic!("postgres exited ({status}): {}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "postgres not ready in 60 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server (a fast shutdown: SIGINT) and waits for it.
    fn stop_server(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Stops and starts the server: what a database restart looks like.
    pub fn restart(&mut self) {
        self.stop_server();
        self.run_server();
    }

    /// A connection string for database `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "host={} user=portal dbname={name}",
            self.socket_dir().display()
        )
    }

    /// Creates an empty database.
    pub fn create_db(&self, name: &str) -> Database {
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap();
        // A name from the test itself, not input: CREATE DATABASE takes no
        // parameters.
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        Database::Postgres(self.url(name))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop_server();
    }
}

/// Which database a test body runs on, and how to restart it.
pub enum Backend<'a> {
    Sqlite(PathBuf),
    Postgres(&'a mut PgCluster, Database),
}

impl Backend<'_> {
    pub fn database(&self) -> Database {
        match self {
            Backend::Sqlite(p) => Database::Sqlite(p.clone()),
            Backend::Postgres(_, db) => db.clone(),
        }
    }

    /// Restarts the database server (SQLite has none: the file is
    /// reopened).
    pub fn restart(&mut self) {
        if let Backend::Postgres(pg, _) = self {
            pg.restart();
        }
    }
}

/// A test body, run once per backend.
pub type Body = fn(&mut Backend<'_>);

/// Runs every body on SQLite, each on a fresh file.
pub fn on_sqlite(bodies: &[(&str, Body)]) {
    for (name, body) in bodies {
        eprintln!("-- {name} on sqlite");
        let dir = tempfile::tempdir().unwrap();
        body(&mut Backend::Sqlite(dir.path().join("portal.db")));
    }
}

/// Runs every body on one PostgreSQL cluster, each in a fresh database.
pub fn on_postgres(bodies: &[(&str, Body)]) {
    let mut pg = PgCluster::start();
    for (name, body) in bodies {
        eprintln!("-- {name} on postgres");
        let db = pg.create_db(name);
        body(&mut Backend::Postgres(&mut pg, db));
    }
}
