//! Portal accounts: roles, argon2 password hashes, and the users file.
//!
//! Accounts live in a small JSON file (default: `users.json` next to the SQLite database) written
//! atomically (temp file + rename, mode 0600), so `veertien user add` works without a running
//! server and without a schema change in the store. Hashes are argon2id PHC strings; the file never
//! holds a plain password.

use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use argon2::Argon2;
use serde::{Deserialize, Serialize};

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

/// Reads all users; a missing file means no users yet.
pub fn load_users(path: &Path) -> Result<Vec<User>, UserError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str::<UsersFile>(&text)
            .map(|f| f.users)
            .map_err(|e| UserError::Parse { path: path.to_owned(), message: format!("line {}: {e}", e.line()) }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(UserError::Io { path: path.to_owned(), source }),
    }
}

fn save_users(path: &Path, users: &[User]) -> Result<(), UserError> {
    let io = |source| UserError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(&UsersFile { users: users.to_vec() }).expect("users serialise");
    {
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// Adds a user or replaces the role/municipality/password of an existing one. Returns true when
/// the account is new.
pub fn add_user(path: &Path, email: &str, role: Role, municipality: Option<&str>, password: &str) -> Result<bool, UserError> {
    let email = email.trim().to_lowercase();
    if !email.contains('@') || email.starts_with('@') || email.ends_with('@') || email.chars().any(char::is_whitespace) {
        return Err(UserError::BadEmail(email));
    }
    if password.chars().count() < 12 {
        return Err(UserError::WeakPassword);
    }
    let municipality = match municipality {
        Some(m) => {
            let m = m.trim().to_uppercase();
            if !(m.len() == 6 && m.starts_with("GM") && m[2..].bytes().all(|b| b.is_ascii_digit())) {
                return Err(UserError::BadMunicipality(m));
            }
            Some(m)
        }
        None if role == Role::Admin => return Err(UserError::NeedsMunicipality(role)),
        None => None,
    };
    let user = User { email: email.clone(), role, municipality, password_hash: hash_password(password)? };
    let mut users = load_users(path)?;
    let new = match users.iter_mut().find(|u| u.email == email) {
        Some(u) => {
            *u = user;
            false
        }
        None => {
            users.push(user);
            true
        }
    };
    save_users(path, &users)?;
    Ok(new)
}

/// Where `veertien serve` and `veertien user add` keep accounts for a given store location.
pub fn users_path_for_store(store_path: &Path) -> PathBuf {
    store_path.with_file_name("users.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u/users.json");
        assert!(add_user(&p, "Beheer@Goes.nl", Role::Admin, Some("gm0664"), "correct horse battery").unwrap());
        let users = load_users(&p).unwrap();
        assert_eq!(users[0].email, "beheer@goes.nl");
        assert_eq!(users[0].municipality.as_deref(), Some("GM0664"));
        assert!(verify_password("correct horse battery", &users[0].password_hash));
        assert!(!verify_password("correct horse batterY", &users[0].password_hash));
        assert!(!std::fs::read_to_string(&p).unwrap().contains("correct horse"));
        assert!(!add_user(&p, "beheer@goes.nl", Role::Viewer, Some("GM0664"), "another long password").unwrap());
        assert_eq!(load_users(&p).unwrap().len(), 1);
        assert_eq!(load_users(&p).unwrap()[0].role, Role::Viewer);
    }

    #[test]
    fn refuses_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("users.json");
        assert!(matches!(add_user(&p, "nobody", Role::Operator, None, "long enough password"), Err(UserError::BadEmail(_))));
        assert!(matches!(add_user(&p, "a@b.nl", Role::Operator, None, "short"), Err(UserError::WeakPassword)));
        assert!(matches!(add_user(&p, "a@b.nl", Role::Admin, None, "long enough password"), Err(UserError::NeedsMunicipality(_))));
        assert!(matches!(add_user(&p, "a@b.nl", Role::Admin, Some("0664"), "long enough password"), Err(UserError::BadMunicipality(_))));
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
