//! The same behaviour checks as tests/sqlite.rs, against a real PostgreSQL server that
//! this test starts on loopback in a temporary directory (Debian package `postgresql`).
//! Skipped with a visible message when PostgreSQL is not installed.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use veertien_store::*;

struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// initdb/postgres refuse to run as root; run them as this uid/gid when we are root.
    run_as: Option<(u32, u32)>,
    server: Option<Child>,
    _dir: tempfile::TempDir,
}

fn find_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    candidates.sort();
    candidates.reverse();
    candidates.into_iter().find(|b| b.join("initdb").exists() && b.join("postgres").exists())
}

fn ids_of(user: &str) -> Option<(u32, u32)> {
    let out = Command::new("id").args(["-u", user]).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").args(["-g", user]).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

fn cmd(c: &Cluster, prog: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(c.bin.join(prog));
    if let Some((u, g)) = c.run_as {
        cmd.uid(u).gid(g);
    }
    cmd
}

impl Cluster {
    fn create() -> Option<Cluster> {
        let bin = find_bin()?;
        let dir = tempfile::tempdir().unwrap();
        let is_root =
            String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0";
        let run_as = if is_root { Some(ids_of("postgres").unwrap_or((65534, 65534))) } else { None };
        if let Some((u, g)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(u), Some(g)).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut c = Cluster { bin, data: dir.path().join("data"), port, run_as, server: None, _dir: dir };
        let st = cmd(&c, "initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "-D"])
            .arg(&c.data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "initdb failed");
        c.start();
        Some(c)
    }

    fn start(&mut self) {
        let child = cmd(self, "postgres")
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories=", "-c", "fsync=on"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.server = Some(child);
    }

    /// Fast shutdown (SIGINT) and wait for exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    async fn fresh_db(&self, name: &str) -> Store {
        let admin = wait_open(&self.url("postgres")).await;
        drop(admin);
        let mut c: sqlx::PgConnection =
            sqlx::Connection::connect(&self.url("postgres")).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await.unwrap();
        Store::open(&self.url(name)).await.unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn wait_open(url: &str) -> Store {
    let mut last = None;
    for _ in 0..300 {
        match Store::open(url).await {
            Ok(s) => return s,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("PostgreSQL did not come up: {last:?}");
}

fn skip() {
    eprintln!("SKIPPED postgres tests: PostgreSQL server binaries not installed (apt-get install postgresql)");
}

async fn wait_for(w: &RecordWriter, what: &str, cond: impl Fn(&WriterMetrics) -> bool) -> WriterMetrics {
    for _ in 0..3000 {
        let m = w.metrics();
        if cond(&m) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}: {:?}", w.metrics());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_engine_behaves_like_sqlite() {
    let Some(mut cluster) = Cluster::create() else { return skip() };

    let s = cluster.fresh_db("roundtrip").await;
    assert_eq!(s.engine_name(), "postgres");
    let h = s.health().await;
    assert!(h.ok(), "{h:?}");
    assert!(!h.location.contains("password"));
    common::roundtrip_and_upsert(&s).await;
    common::list_filters(&cluster.fresh_db("lists").await).await;
    common::stats_figures(&cluster.fresh_db("stats").await).await;
    let settings = cluster.fresh_db("settings").await;
    common::settings_and_audit(&settings).await;
    common::notifications(&cluster.fresh_db("notifications").await).await;

    // Append-only enforced by the server, even for raw SQL.
    let mut c: sqlx::PgConnection =
        sqlx::Connection::connect(&cluster.url("settings")).await.unwrap();
    for stmt in [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "UPDATE settings_versions SET document = '{}'",
        "DELETE FROM settings_versions",
    ] {
        let err = sqlx::query(stmt).execute(&mut c).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{stmt}: {err}");
    }
    drop(c);

    // Writer through a server outage: stop the server, keep submitting, restart it.
    let store = cluster.fresh_db("writer").await;
    let w = store.writer(WriterConfig {
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        ..WriterConfig::default()
    });
    let rec = |i: i64| common::call(&format!("pg-{i:04}"), common::MON_2025_06_02 + i * 1000);
    w.try_submit_durable(rec(0)).unwrap().wait().await.unwrap();
    store.close().await;
    cluster.stop();
    let acks: Vec<_> = (1..=100).map(|i| w.try_submit_durable(rec(i)).unwrap()).collect();
    let m = wait_for(&w, "the outage to be noticed", |m| !m.healthy).await;
    assert_eq!((m.written, m.dropped), (1, 0));
    cluster.start();
    for a in acks {
        a.wait().await.unwrap();
    }
    let m = w.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!((m.written, m.dropped), (101, 0));
    let store = wait_open(&cluster.url("writer")).await;
    assert_eq!(store.count_calls().await.unwrap(), 101);
    assert_eq!(store.get_call("pg-0050").await.unwrap().unwrap(), rec(50));
}
