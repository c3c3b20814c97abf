//! `signoff`, the command-line tool: runs and inspects the engine. It translates arguments into
//! calls on the store and the runtime and prints the answers; it holds no business rules.
#![forbid(unsafe_code)]

mod bench;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use signoff_store::DatabaseUrl;

/// Exit code when a command ran and its answer is "no" (e.g. the chain is broken).
pub const EXIT_NO: u8 = 1;
/// Exit code when a command could not run (bad arguments, unreachable database…).
pub const EXIT_ERROR: u8 = 2;

/// signoff: event-sourced workflows with approval bots, on a tamper-evident log.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The event log: sqlite://PATH (embedded, created on first use) or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_DATABASE_URL",
        default_value = "sqlite://signoff.db"
    )]
    database: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk the hash chain and report the first broken link (exit 0 intact, 1 broken, 2 error).
    Verify(verify::Args),
    /// Measure signoff on this machine; prints one JSON line per scenario.
    #[command(subcommand)]
    Bench(bench::Bench),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIGNOFF_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match DatabaseUrl::parse(&cli.database) {
        Err(e) => Err(e.into()),
        Ok(url) => match cli.command {
            Command::Verify(args) => verify::run(&url, args).await,
            Command::Bench(b) => bench::run(&url, b).await,
        },
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
