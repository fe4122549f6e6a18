//! Portal accounts: roles, argon2 password hashes, validation, and the accounts in the store.
//!
//! Accounts live in the store (`users` table, SQLite or PostgreSQL), so several portal processes
//! share them and `veertien user …` works against a running server. Hashes are argon2id PHC
//! strings; nothing ever holds a plain password. A `users.json` from before the move is imported
//! once ([`import_users_file`]) and then renamed, so it is not used again.

use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use veertien_store::{NewAccount, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, every municipality.
    Operator,
    /// Reads and changes its own municipality only.
    Admin,
    /// Reads its own municipality only (or, without a municipality, every municipality).
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Lower-cased; the login name.
    pub email: String,
    pub role: Role,
    /// CBS code ("GM0664"); required for admins.
    pub municipality: Option<String>,
    pub password_hash: String,
}

impl User {
    pub fn can_read(&self, cbs: &str) -> bool {
        match (self.role, &self.municipality) {
            (Role::Operator, _) | (Role::Viewer, None) => true,
            (_, Some(m)) => m.eq_ignore_ascii_case(cbs),
            (Role::Admin, None) => false,
        }
    }

    pub fn can_write(&self, cbs: &str) -> bool {
        match self.role {
            Role::Operator => true,
            Role::Admin => self.municipality.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(cbs)),
            Role::Viewer => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("users file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("users file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("'{0}' is not an e-mail address")]
    BadEmail(String),
    #[error("the password must be at least 12 characters long")]
    WeakPassword,
    #[error("role {0:?} needs --municipality GMxxxx")]
    NeedsMunicipality(Role),
    #[error("'{0}' is not a CBS municipality code (GMxxxx)")]
    BadMunicipality(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("no account '{0}'")]
    NoSuchAccount(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("stored account is not valid: {0}")]
    Corrupt(String),
}

pub fn hash_password(password: &str) -> Result<String, UserError> {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    let salt = SaltString::encode_b64(&raw).map_err(|e| UserError::Hash(e.to_string()))?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| UserError::Hash(e.to_string()))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the account does not exist, so a login for an unknown address
/// costs as much time as one for a known address (no account enumeration by timing).
pub(crate) fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default())
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UsersFile {
    users: Vec<User>,
}

/// Reads the accounts of a legacy `users.json` (before accounts moved into the store); a missing
/// file means no accounts.
pub fn load_users(path: &Path) -> Result<Vec<User>, UserError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str::<UsersFile>(&text)
            .map(|f| f.users)
            .map_err(|e| UserError::Parse { path: path.to_owned(), message: format!("line {}: {e}", e.line()) }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(UserError::Io { path: path.to_owned(), source }),
    }
}

fn normalise_email(email: &str) -> Result<String, UserError> {
    let email = email.trim().to_lowercase();
    if !email.contains('@') || email.starts_with('@') || email.ends_with('@') || email.chars().any(char::is_whitespace) || email.len() > 254 {
        return Err(UserError::BadEmail(email));
    }
    Ok(email)
}

fn check_password(password: &str) -> Result<(), UserError> {
    if password.chars().count() < 12 { Err(UserError::WeakPassword) } else { Ok(()) }
}

fn normalise_municipality(role: Role, municipality: Option<&str>) -> Result<Option<String>, UserError> {
    match municipality {
        Some(m) => {
            let m = m.trim().to_uppercase();
            if !(m.len() == 6 && m.starts_with("GM") && m[2..].bytes().all(|b| b.is_ascii_digit())) {
                return Err(UserError::BadMunicipality(m));
            }
            Ok(Some(m))
        }
        None if role == Role::Admin => Err(UserError::NeedsMunicipality(role)),
        None => Ok(None),
    }
}

/// Adds an account to the store or replaces role, municipality and password of an existing one
/// (which ends its sessions). Returns true when the account is new.
pub async fn add_user(store: &Store, email: &str, role: Role, municipality: Option<&str>, password: &str) -> Result<bool, UserError> {
    let email = normalise_email(email)?;
    check_password(password)?;
    let municipality = normalise_municipality(role, municipality)?;
    let hash = hash_password(password)?;
    let a = NewAccount { email: &email, role: role.as_str(), municipality_cbs: municipality.as_deref(), password_hash: &hash };
    Ok(store.upsert_account(&a).await?)
}

/// Sets a new password and ends every session of the account (logout everywhere).
pub async fn set_password(store: &Store, email: &str, password: &str) -> Result<(), UserError> {
    let email = normalise_email(email)?;
    check_password(password)?;
    let hash = hash_password(password)?;
    if store.set_password(&email, &hash).await? { Ok(()) } else { Err(UserError::NoSuchAccount(email)) }
}

/// Disables (ending every session) or re-enables an account.
pub async fn set_disabled(store: &Store, email: &str, disabled: bool) -> Result<(), UserError> {
    let email = normalise_email(email)?;
    if store.set_account_disabled(&email, disabled).await? { Ok(()) } else { Err(UserError::NoSuchAccount(email)) }
}

/// Every account in the store (password hashes included: callers must not print them).
pub async fn list_users(store: &Store) -> Result<Vec<(User, bool)>, UserError> {
    let mut out = Vec::new();
    for a in store.accounts().await? {
        let disabled = a.disabled;
        out.push((User::try_from(a)?, disabled));
    }
    Ok(out)
}

/// The enabled account with this e-mail, if any.
pub async fn find_user(store: &Store, email: &str) -> Result<Option<User>, UserError> {
    match store.account(email).await? {
        Some(a) if !a.disabled => Ok(Some(User::try_from(a)?)),
        _ => Ok(None),
    }
}

impl TryFrom<veertien_store::Account> for User {
    type Error = UserError;
    fn try_from(a: veertien_store::Account) -> Result<User, UserError> {
        let role = Role::parse(&a.role).ok_or_else(|| UserError::Corrupt(format!("account {} has unknown role '{}'", a.email, a.role)))?;
        Ok(User { email: a.email, role, municipality: a.municipality_cbs, password_hash: a.password_hash })
    }
}

/// One-time move of a legacy `users.json` into the store: accounts not yet in the store are
/// inserted (accounts already there are left alone, they may have changed since), then the file
/// is renamed to `users.json.imported` so it is never read again. Returns the number inserted,
/// or None when there was no file.
pub async fn import_users_file(store: &Store, path: &Path) -> Result<Option<usize>, UserError> {
    if !path.exists() {
        return Ok(None);
    }
    let users = load_users(path)?;
    let mut n = 0;
    for u in &users {
        let a = NewAccount { email: &u.email, role: u.role.as_str(), municipality_cbs: u.municipality.as_deref(), password_hash: &u.password_hash };
        if store.insert_account_if_absent(&a).await? {
            n += 1;
        }
    }
    let done = path.with_extension("json.imported");
    std::fs::rename(path, &done).map_err(|source| UserError::Io { path: path.to_owned(), source })?;
    tracing::info!(file = %path.display(), imported = n, total = users.len(), moved_to = %done.display(), "legacy users file imported into the store");
    Ok(Some(n))
}

/// Where the legacy accounts file was kept for a given store location (next to the database).
pub fn users_path_for_store(store_path: &Path) -> PathBuf {
    store_path.with_file_name("users.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("v.db").to_str().unwrap()).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn add_verify_and_replace() {
        let (_d, store) = store().await;
        assert!(add_user(&store, "Beheer@Goes.nl", Role::Admin, Some("gm0664"), "correct horse battery").await.unwrap());
        let u = find_user(&store, "beheer@goes.nl").await.unwrap().unwrap();
        assert_eq!(u.municipality.as_deref(), Some("GM0664"));
        assert!(verify_password("correct horse battery", &u.password_hash));
        assert!(!verify_password("correct horse batterY", &u.password_hash));
        assert!(!add_user(&store, "beheer@goes.nl", Role::Viewer, Some("GM0664"), "another long password").await.unwrap());
        let all = list_users(&store).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0.role, Role::Viewer);
        set_disabled(&store, "beheer@goes.nl", true).await.unwrap();
        assert!(find_user(&store, "beheer@goes.nl").await.unwrap().is_none(), "a disabled account cannot be used");
        assert!(matches!(set_password(&store, "niemand@goes.nl", "long enough password").await, Err(UserError::NoSuchAccount(_))));
    }

    #[tokio::test]
    async fn refuses_bad_input() {
        let (_d, store) = store().await;
        assert!(matches!(add_user(&store, "nobody", Role::Operator, None, "long enough password").await, Err(UserError::BadEmail(_))));
        assert!(matches!(add_user(&store, "a@b.nl", Role::Operator, None, "short").await, Err(UserError::WeakPassword)));
        assert!(matches!(add_user(&store, "a@b.nl", Role::Admin, None, "long enough password").await, Err(UserError::NeedsMunicipality(_))));
        assert!(matches!(add_user(&store, "a@b.nl", Role::Admin, Some("0664"), "long enough password").await, Err(UserError::BadMunicipality(_))));
        assert_eq!(store.count_accounts().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn legacy_users_file_is_imported_once() {
        let (dir, store) = store().await;
        let path = dir.path().join("users.json");
        let hash = hash_password("legacy password 123").unwrap();
        let file = serde_json::json!({ "users": [
            { "email": "beheer@goes.nl", "role": "admin", "municipality": "GM0664", "password_hash": hash },
            { "email": "operator@veertien.nl", "role": "operator", "municipality": null, "password_hash": hash },
        ]});
        std::fs::write(&path, file.to_string()).unwrap();
        // An account already in the store keeps what it has now.
        add_user(&store, "operator@veertien.nl", Role::Operator, None, "the newer password").await.unwrap();
        assert_eq!(import_users_file(&store, &path).await.unwrap(), Some(1));
        assert!(!path.exists() && dir.path().join("users.json.imported").exists());
        assert_eq!(import_users_file(&store, &path).await.unwrap(), None, "never read again");
        let goes = find_user(&store, "beheer@goes.nl").await.unwrap().unwrap();
        assert!(verify_password("legacy password 123", &goes.password_hash));
        let op = find_user(&store, "operator@veertien.nl").await.unwrap().unwrap();
        assert!(verify_password("the newer password", &op.password_hash));
    }

    #[test]
    fn roles() {
        let u = |role, m: Option<&str>| User { email: "x@y.nl".into(), role, municipality: m.map(Into::into), password_hash: String::new() };
        assert!(u(Role::Operator, None).can_write("GM0664"));
        assert!(u(Role::Admin, Some("GM0664")).can_write("GM0664"));
        assert!(!u(Role::Admin, Some("GM0664")).can_read("GM0678"));
        assert!(u(Role::Viewer, Some("GM0664")).can_read("GM0664"));
        assert!(!u(Role::Viewer, Some("GM0664")).can_write("GM0664"));
        assert!(u(Role::Viewer, None).can_read("GM0678"));
    }
}
