//! The SIP service without the rest of the CLI (no speech model, no portal), for load
//! benchmarks: `cargo run --release -p veertien-server --example serve -- CONFIG.toml`.
//! Prints the bound UDP address on stdout once ready; stops cleanly on SIGTERM.

use veertien_server::{Config, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let config = match std::env::args().nth(1) {
        Some(path) => Config::load(path.as_ref())?,
        None => Config::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(async {
        let server = Server::start(config, true, None).await?;
        println!("ready udp={}", server.udp_addr().map(|a| a.to_string()).unwrap_or_default());
        server.run_until_signal().await
    })?;
    eprintln!("{}", serde_json::to_string(&report)?);
    Ok(())
}
