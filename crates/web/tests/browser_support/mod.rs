//! Shared by the browser tests (this crate's `browser.rs` and the CLI's `portal_e2e.rs`,
//! which includes it with `#[path]`).

/// Where the browser's screenshots go: the documentation's own (`docs/screenshots`) only when
/// they are refreshed on purpose with `VEERTIEN_UPDATE_SCREENSHOTS=1`; an ordinary test run
/// writes them under `target/screenshots` instead of changing tracked files.
pub fn screenshot_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if std::env::var_os("VEERTIEN_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    }
}
