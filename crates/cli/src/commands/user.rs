//! `veertien user add --role operator|admin|viewer [--municipality GMxxxx] EMAIL`: create or update
//! a portal account. The password comes from stdin (one line) or an interactive prompt, never from
//! the command line, where it would end up in shell history and `ps`.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use veertien_server::Config;
use veertien_web::{Role, add_user, users_path_for_store};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Account aanmaken of wijzigen / create or update an account
    Add(AddArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Rol / role: operator (alles), admin (eigen gemeente), viewer (alleen lezen)
    #[arg(long, value_parser = ["operator", "admin", "viewer"])]
    pub role: String,
    /// CBS-code van de gemeente (verplicht voor admin) / municipality CBS code (required for admin)
    #[arg(long, value_name = "GMxxxx")]
    pub municipality: Option<String>,
    /// Configuratiebestand van `serve` (accounts staan naast de database) / `serve` config (accounts live next to the store)
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Accountbestand, gaat voor --config / accounts file, overrides --config
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// E-mailadres (inlognaam) / e-mail address (login name)
    pub email: String,
}

pub fn run(c: UserCommand) -> anyhow::Result<ExitCode> {
    let UserCommand::Add(a) = c;
    let role = Role::parse(&a.role).context("role")?;
    let path = match (&a.users, &a.config) {
        (Some(p), _) => p.clone(),
        (None, Some(cfg)) => users_path_for_store(&Config::load(cfg)?.store.path),
        (None, None) => users_path_for_store(&Config::default().store.path),
    };
    let password = read_password()?;
    let new = add_user(&path, &a.email, role, a.municipality.as_deref(), &password)?;
    outln!(
        "{} {} ({}) in {}",
        if new { "Account aangemaakt / account created:" } else { "Account bijgewerkt / account updated:" },
        a.email.trim().to_lowercase(),
        a.role,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let pw = if stdin.is_terminal() {
        rpassword::prompt_password("Wachtwoord / password (min. 12): ").context("cannot read the password")?
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
