//! `veertien user add|list|passwd|disable|enable`: portal accounts in the store (the database of
//! `veertien serve`, SQLite or PostgreSQL), so they work while the server runs. Passwords come
//! from stdin (one line) or an interactive prompt, never from the command line, where they would
//! end up in shell history and `ps`. A `users.json` from an older version is imported once.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use veertien_server::Config;
use veertien_store::Store;
use veertien_web::users::{self, Role};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Account aanmaken of wijzigen / create or update an account
    Add(AddArgs),
    /// Accounts tonen / list accounts
    List(StoreArgs),
    /// Nieuw wachtwoord; beëindigt alle sessies / new password; ends every session
    Passwd(EmailArgs),
    /// Account blokkeren; beëindigt alle sessies / disable an account; ends every session
    Disable(EmailArgs),
    /// Geblokkeerd account weer toestaan / enable a disabled account
    Enable(EmailArgs),
}

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// Configuratiebestand van `serve` (de accounts staan in zijn database) / `serve` config (accounts live in its store)
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database (pad, sqlite:PAD of postgres://…), gaat voor --config / store location, overrides --config
    #[arg(long, value_name = "LOCATION")]
    pub store: Option<String>,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Rol / role: operator (alles), admin (eigen gemeente), viewer (alleen lezen)
    #[arg(long, value_parser = ["operator", "admin", "viewer"])]
    pub role: String,
    /// CBS-code van de gemeente (verplicht voor admin) / municipality CBS code (required for admin)
    #[arg(long, value_name = "GMxxxx")]
    pub municipality: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// E-mailadres (inlognaam) / e-mail address (login name)
    pub email: String,
}

#[derive(Args, Debug)]
pub struct EmailArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// E-mailadres (inlognaam) / e-mail address (login name)
    pub email: String,
}

pub fn run(c: UserCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the tokio runtime")?;
    runtime.block_on(run_async(c))
}

async fn open(a: &StoreArgs) -> anyhow::Result<Store> {
    let (location, legacy) = match (&a.store, &a.config) {
        (Some(s), _) => (s.clone(), None),
        (None, cfg) => {
            let config = match cfg {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            let path = config.store.path;
            (path.to_string_lossy().into_owned(), Some(users::users_path_for_store(&path)))
        }
    };
    let store = Store::open(&location).await.with_context(|| format!("cannot open the store {location}"))?;
    if let Some(file) = legacy
        && let Some(n) = users::import_users_file(&store, &file).await?
    {
        outln!("{n} account(s) uit / from {} overgenomen / imported", file.display());
    }
    Ok(store)
}

async fn run_async(c: UserCommand) -> anyhow::Result<ExitCode> {
    match c {
        UserCommand::Add(a) => {
            let role = Role::parse(&a.role).context("role")?;
            let store = open(&a.store).await?;
            let password = read_password()?;
            let new = users::add_user(&store, &a.email, role, a.municipality.as_deref(), &password).await?;
            outln!(
                "{} {} ({})",
                if new { "Account aangemaakt / account created:" } else { "Account bijgewerkt, sessies beëindigd / account updated, sessions ended:" },
                a.email.trim().to_lowercase(),
                a.role,
            );
        }
        UserCommand::List(a) => {
            let store = open(&a).await?;
            let all = users::list_users(&store).await?;
            if all.is_empty() {
                outln!("Geen accounts / no accounts. Eerste operator / first operator: veertien user add --role operator EMAIL");
            }
            for (u, disabled) in all {
                outln!(
                    "{}\t{}\t{}{}",
                    u.email,
                    u.role.as_str(),
                    u.municipality.as_deref().unwrap_or("-"),
                    if disabled { "\tgeblokkeerd / disabled" } else { "" }
                );
            }
        }
        UserCommand::Passwd(a) => {
            let store = open(&a.store).await?;
            let password = read_password()?;
            users::set_password(&store, &a.email, &password).await?;
            outln!("Wachtwoord gewijzigd, alle sessies beëindigd / password changed, every session ended: {}", a.email.trim().to_lowercase());
        }
        UserCommand::Disable(a) => {
            let store = open(&a.store).await?;
            users::set_disabled(&store, &a.email, true).await?;
            outln!("Account geblokkeerd, alle sessies beëindigd / account disabled, every session ended: {}", a.email.trim().to_lowercase());
        }
        UserCommand::Enable(a) => {
            let store = open(&a.store).await?;
            users::set_disabled(&store, &a.email, false).await?;
            outln!("Account weer toegestaan / account enabled: {}", a.email.trim().to_lowercase());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let pw = if stdin.is_terminal() {
        let pw = rpassword::prompt_password("Wachtwoord / password (min. 12): ").context("cannot read the password")?;
        let again = rpassword::prompt_password("Nogmaals / again: ").context("cannot read the password")?;
        if pw != again {
            bail!("de wachtwoorden verschillen / the passwords differ");
        }
        pw
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if pw.is_empty() {
        bail!("geen wachtwoord op stdin / no password on stdin");
    }
    Ok(pw)
}
