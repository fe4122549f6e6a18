//! Accounts and sessions (migration 0006) on SQLite, and on a real PostgreSQL server started on
//! loopback in a temporary directory when its binaries are installed (skipped with a message
//! otherwise): the same checks on both engines.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use veertien_store::{NewAccount, SessionPolicy, Store, StoreError};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";
const HASH2: &str = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0b3RoZXI$b3RoZXJoYXNob3RoZXJoYXNob3RoZXJoYXNo";
const LONG: SessionPolicy = SessionPolicy { idle_ms: 3_600_000, max_ms: 86_400_000 };

fn admin(email: &str) -> NewAccount<'_> {
    NewAccount { email, role: "admin", municipality_cbs: Some("GM0664"), password_hash: HASH }
}

async fn check_accounts(s: &Store) {
    // Create, read, replace.
    assert!(s.upsert_account(&admin("beheer@goes.nl")).await.unwrap());
    let a = s.account("beheer@goes.nl").await.unwrap().unwrap();
    assert_eq!((a.role.as_str(), a.municipality_cbs.as_deref(), a.disabled), ("admin", Some("GM0664"), false));
    assert!(s.upsert_account(&NewAccount { email: "operator@veertien.nl", role: "operator", municipality_cbs: None, password_hash: HASH }).await.unwrap());
    assert_eq!(s.count_accounts().await.unwrap(), 2);
    assert_eq!(s.accounts().await.unwrap().iter().map(|a| a.email.as_str()).collect::<Vec<_>>(), ["beheer@goes.nl", "operator@veertien.nl"]);
    // Refused before the database: unknown role, admin without municipality, plain password.
    for bad in [
        NewAccount { email: "x@y.nl", role: "root", municipality_cbs: None, password_hash: HASH },
        NewAccount { email: "x@y.nl", role: "admin", municipality_cbs: None, password_hash: HASH },
        NewAccount { email: "x@y.nl", role: "viewer", municipality_cbs: None, password_hash: "hunter2hunter2" },
        NewAccount { email: "X@Y.nl", role: "viewer", municipality_cbs: None, password_hash: HASH },
    ] {
        assert!(matches!(s.upsert_account(&bad).await, Err(StoreError::InvalidInput(_))), "{bad:?}");
    }
    // Import never overwrites.
    assert!(!s.insert_account_if_absent(&NewAccount { password_hash: HASH2, ..admin("beheer@goes.nl") }).await.unwrap());
    assert_eq!(s.account("beheer@goes.nl").await.unwrap().unwrap().password_hash, HASH);

    // Sessions: found with their account, ended by logout, password change, disabling.
    s.create_session("h-a", "beheer@goes.nl", "csrf-a").await.unwrap();
    s.create_session("h-b", "beheer@goes.nl", "csrf-b").await.unwrap();
    s.create_session("h-op", "operator@veertien.nl", "csrf-op").await.unwrap();
    let info = s.session("h-a", LONG).await.unwrap().unwrap();
    assert_eq!((info.account.email.as_str(), info.csrf.as_str()), ("beheer@goes.nl", "csrf-a"));
    assert!(s.session("unknown", LONG).await.unwrap().is_none());
    s.end_session("h-a").await.unwrap();
    assert!(s.session("h-a", LONG).await.unwrap().is_none());
    assert!(s.set_password("beheer@goes.nl", HASH2).await.unwrap());
    assert!(s.session("h-b", LONG).await.unwrap().is_none(), "password change ends every session");
    assert!(s.session("h-op", LONG).await.unwrap().is_some(), "other accounts keep theirs");
    assert!(!s.set_password("niemand@goes.nl", HASH2).await.unwrap());
    s.create_session("h-c", "beheer@goes.nl", "csrf-c").await.unwrap();
    assert!(s.set_account_disabled("beheer@goes.nl", true).await.unwrap());
    assert_eq!(s.count_sessions_of("beheer@goes.nl").await.unwrap(), 0);
    s.create_session("h-d", "beheer@goes.nl", "csrf-d").await.unwrap();
    assert!(s.session("h-d", LONG).await.unwrap().is_none(), "a disabled account has no session");
    assert!(s.set_account_disabled("beheer@goes.nl", false).await.unwrap());
    // A changed role ends sessions too (their rights were issued for the old role).
    s.create_session("h-e", "beheer@goes.nl", "csrf-e").await.unwrap();
    assert!(!s.upsert_account(&NewAccount { role: "viewer", password_hash: HASH2, ..admin("beheer@goes.nl") }).await.unwrap());
    assert_eq!(s.count_sessions_of("beheer@goes.nl").await.unwrap(), 0);

    // Expiry: idle and absolute.
    s.create_session("h-f", "operator@veertien.nl", "csrf-f").await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let idle = SessionPolicy { idle_ms: 10, max_ms: 86_400_000 };
    assert!(s.session("h-f", idle).await.unwrap().is_none(), "idle session expired");
    assert_eq!(s.count_sessions_of("operator@veertien.nl").await.unwrap(), 1, "expired session deleted on sight; h-op left");
    let short = SessionPolicy { idle_ms: 3_600_000, max_ms: 10 };
    assert_eq!(s.prune_sessions(short).await.unwrap(), 1);
    assert_eq!(s.count_sessions_of("operator@veertien.nl").await.unwrap(), 0);
    // Deleting is impossible through the API, and sessions of a removed row cascade: the
    // foreign key refuses a session for an unknown account.
    assert!(s.create_session("h-x", "niemand@goes.nl", "c").await.is_err());
}

#[tokio::test]
async fn accounts_and_sessions_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("v.db").to_str().unwrap()).await.unwrap();
    check_accounts(&s).await;
    // Accounts survive reopening (the portal restarts without logging everyone out).
    s.create_session("h-keep", "operator@veertien.nl", "c").await.unwrap();
    s.close().await;
    let s = Store::open(dir.path().join("v.db").to_str().unwrap()).await.unwrap();
    assert!(s.session("h-keep", LONG).await.unwrap().is_some());
}

struct Pg {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn pg_bin() -> Option<PathBuf> {
    let mut c: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten().map(|e| e.path().join("bin")).collect();
    c.sort();
    c.into_iter().rev().find(|b| b.join("initdb").exists() && b.join("postgres").exists())
}

fn start_pg() -> Option<Pg> {
    use std::os::unix::process::CommandExt;
    let bin = pg_bin()?;
    let dir = tempfile::tempdir().unwrap();
    let root = String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0";
    // initdb/postgres refuse to run as root.
    let ids = |u: &str| -> Option<(u32, u32)> {
        let id = |f: &str| String::from_utf8_lossy(&Command::new("id").args([f, u]).output().ok()?.stdout).trim().parse().ok();
        Some((id("-u")?, id("-g")?))
    };
    let run_as = if root { Some(ids("postgres").unwrap_or((65534, 65534))) } else { None };
    if let Some((u, g)) = run_as {
        std::os::unix::fs::chown(dir.path(), Some(u), Some(g)).unwrap();
    }
    let cmd = |prog: &str| {
        let mut c = Command::new(bin.join(prog));
        if let Some((u, g)) = run_as {
            c.uid(u).gid(g);
        }
        c
    };
    let data = dir.path().join("data");
    let ok = cmd("initdb").args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "-D"]).arg(&data).stdout(Stdio::null()).status().unwrap();
    assert!(ok.success(), "initdb failed");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = cmd("postgres")
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(Pg { child, port, _dir: dir })
}

#[tokio::test]
async fn accounts_and_sessions_on_postgres() {
    let Some(pg) = start_pg() else {
        eprintln!("SKIPPED postgres accounts test: PostgreSQL server binaries not installed (apt-get install postgresql)");
        return;
    };
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port);
    let mut store = None;
    for _ in 0..300 {
        match Store::open(&url).await {
            Ok(s) => {
                store = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let s = store.expect("PostgreSQL did not come up");
    assert_eq!(s.engine_name(), "postgres");
    check_accounts(&s).await;
}
