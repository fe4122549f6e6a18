//! `veertien user add|list|passwd|disable|enable` against the store: the password comes from
//! stdin, only an argon2 hash is stored, a legacy users.json is imported once, and a password
//! change or a disabled account ends the account's sessions.

use assert_cmd::Command;
use predicates::str::contains;

const PW: &str = "een lang genoeg wachtwoord";

fn veertien(store: &str, args: &[&str]) -> assert_cmd::assert::Assert {
    veertien_stdin(store, args, "")
}

fn veertien_stdin(store: &str, args: &[&str], stdin: &str) -> assert_cmd::assert::Assert {
    Command::cargo_bin("veertien").unwrap().arg("user").args(args).args(["--store", store]).write_stdin(stdin).assert()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

#[test]
fn accounts_live_in_the_store_with_hashes_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("veertien.db");
    let store = db.to_str().unwrap();
    veertien_stdin(store, &["add", "--role", "admin", "--municipality", "GM0664", "Beheer@Goes.nl"], &format!("{PW}\n"))
        .success()
        .stdout(contains("beheer@goes.nl"));
    let s = block_on(veertien_store::Store::open(store)).unwrap();
    let a = block_on(s.account("beheer@goes.nl")).unwrap().unwrap();
    assert_eq!(a.municipality_cbs.as_deref(), Some("GM0664"));
    assert!(veertien_web::users::verify_password(PW, &a.password_hash));
    let raw = std::fs::read(&db).unwrap();
    assert!(!raw.windows(PW.len()).any(|w| w == PW.as_bytes()), "plain password in the database file");
    // An admin without a municipality is refused with a clear message.
    veertien_stdin(store, &["add", "--role", "admin", "x@y.nl"], &format!("{PW}\n")).failure().stderr(contains("--municipality"));
    veertien(store, &["list"]).success().stdout(contains("beheer@goes.nl\tadmin\tGM0664"));

    // A session exists; changing the password ends it.
    block_on(s.create_session("h1", "beheer@goes.nl", "csrf")).unwrap();
    veertien_stdin(store, &["passwd", "beheer@goes.nl"], "een nieuw lang wachtwoord\n").success().stdout(contains("every session ended"));
    assert_eq!(block_on(s.count_sessions_of("beheer@goes.nl")).unwrap(), 0);
    let a = block_on(s.account("beheer@goes.nl")).unwrap().unwrap();
    assert!(veertien_web::users::verify_password("een nieuw lang wachtwoord", &a.password_hash));
    veertien_stdin(store, &["passwd", "kort@goes.nl"], "kort\n").failure().stderr(contains("12 characters"));
    veertien_stdin(store, &["passwd", "niemand@goes.nl"], "een nieuw lang wachtwoord\n").failure().stderr(contains("no account"));

    // Disabling ends sessions and shows in the list; enabling restores the account.
    block_on(s.create_session("h2", "beheer@goes.nl", "csrf")).unwrap();
    veertien(store, &["disable", "beheer@goes.nl"]).success();
    assert_eq!(block_on(s.count_sessions_of("beheer@goes.nl")).unwrap(), 0);
    veertien(store, &["list"]).success().stdout(contains("disabled"));
    veertien(store, &["enable", "beheer@goes.nl"]).success();
    assert!(!block_on(s.account("beheer@goes.nl")).unwrap().unwrap().disabled);
}

#[test]
fn a_legacy_users_file_next_to_the_store_is_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("var/veertien.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let hash = veertien_web::users::hash_password(PW).unwrap();
    let legacy = db.with_file_name("users.json");
    let file = serde_json::json!({ "users": [{ "email": "operator@veertien.nl", "role": "operator", "municipality": null, "password_hash": hash }] });
    std::fs::write(&legacy, file.to_string()).unwrap();
    let config = dir.path().join("veertien.toml");
    std::fs::write(&config, format!("[store]\npath = \"{}\"\n", db.display())).unwrap();
    Command::cargo_bin("veertien")
        .unwrap()
        .args(["user", "list", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout(contains("imported"))
        .stdout(contains("operator@veertien.nl\toperator\t-"));
    assert!(!legacy.exists() && legacy.with_extension("json.imported").exists());
    Command::cargo_bin("veertien")
        .unwrap()
        .args(["user", "list", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout(contains("imported").not());
}

use predicates::prelude::PredicateBooleanExt;
