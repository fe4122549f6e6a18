//! `veertien user add`: the password comes from stdin, is stored only as an argon2 hash, and the
//! account can log in (verified with the portal's own check).

use assert_cmd::Command;

#[test]
fn user_add_reads_the_password_from_stdin_and_stores_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.json");
    Command::cargo_bin("veertien")
        .unwrap()
        .args(["user", "add", "--role", "admin", "--municipality", "GM0664", "--users"])
        .arg(&users)
        .arg("Beheer@Goes.nl")
        .write_stdin("een lang genoeg wachtwoord\n")
        .assert()
        .success()
        .stdout(predicates::str::contains("beheer@goes.nl"));
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(!text.contains("een lang genoeg wachtwoord"));
    let u = &veertien_web::load_users(&users).unwrap()[0];
    assert_eq!(u.municipality.as_deref(), Some("GM0664"));
    assert!(veertien_web::users::verify_password("een lang genoeg wachtwoord", &u.password_hash));
    // An admin without a municipality is refused with a clear message.
    Command::cargo_bin("veertien")
        .unwrap()
        .args(["user", "add", "--role", "admin", "--users"])
        .arg(&users)
        .arg("x@y.nl")
        .write_stdin("een lang genoeg wachtwoord\n")
        .assert()
        .failure()
        .stderr(predicates::str::contains("--municipality"));
}
