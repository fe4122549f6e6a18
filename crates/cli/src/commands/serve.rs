//! `veertien serve [--config FILE]`: run the SIP service and the portal (`[http] listen`,
//! default http://127.0.0.1:8080).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use veertien_server::Config;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Configuratiebestand (TOML) / config file (TOML) [default: built-in defaults, SIP on 127.0.0.1:5060]
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Configuratie controleren en tonen, niet starten / check and print the effective config, do not start
    #[arg(long)]
    pub check: bool,
}

pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = match &a.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if a.check {
        outln!("{config:#?}");
        return Ok(ExitCode::SUCCESS);
    }
    // RUST_LOG overrides; default keeps per-call noise out of the log.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the tokio runtime")?;
    let report = runtime.block_on(veertien_server::serve(config, Some(Box::new(veertien_web::Portal::default()))))?;
    if let Some(r) = &report.records
        && r.dropped > 0
    {
        eprintln!(
            "veertien: {} gespreksregistratie(s) niet opgeslagen / call record(s) not stored (see log)",
            r.dropped
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
