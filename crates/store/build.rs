// sqlx::migrate! embeds the migration files at compile time; without this, adding a migration
// file changes no Rust source and cargo would keep a build with the old set (a stale schema
// version in tests, the new step never applied).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
