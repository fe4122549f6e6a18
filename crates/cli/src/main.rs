//! `veertien`: the command-line interface. This file holds the command list and dispatch only;
//! each subcommand lives in `commands/<name>.rs`.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "veertien", version, about = "Het 14+ netnummer-platform / the Dutch 14+ area-code platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Waar gaat een oproep naartoe? / Where does a call to this number go?
    Route(commands::route::RouteArgs),
    /// Het nummerplan controleren of tonen / Check or show the number plan
    #[command(subcommand)]
    Plan(commands::plan::PlanCommand),
    /// Instellingen per gemeente / Per-municipality settings
    #[command(subcommand)]
    Settings(commands::settings::SettingsCommand),
    /// Spraakmodel installeren of controleren / install or check the speech model
    #[command(subcommand)]
    Model(commands::model::ModelCommand),
    /// Spraakherkenning meten / evaluate speech recognition
    #[command(subcommand)]
    Speech(commands::speech::SpeechCommand),
    /// Het platform starten (SIP-dienst en portal) / run the platform (SIP service and portal)
    Serve(commands::serve::ServeArgs),
    /// Recente oproepen / recent calls
    Calls(commands::calls::CallsArgs),
    /// Portal-accounts beheren / manage portal accounts
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Gesproken prompts van het keuzemenu / the IVR's spoken prompts
    #[command(subcommand)]
    Prompts(commands::prompts::PromptsCommand),
}

fn main() -> ExitCode {
    // SAFETY: the first statement of main, before any thread exists (see init_process).
    unsafe { veertien_speech::init_process() };
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Route(a) => commands::route::run(a),
        Command::Plan(c) => commands::plan::run(c),
        Command::Settings(c) => commands::settings::run(c),
        Command::Model(c) => commands::model::run(c),
        Command::Speech(c) => commands::speech::run(c),
        Command::Serve(a) => commands::serve::run(a),
        Command::Calls(a) => commands::calls::run(a),
        Command::User(c) => commands::user::run(c),
        Command::Prompts(c) => commands::prompts::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("veertien: {e:#}");
            ExitCode::from(2)
        }
    }
}
