//! `signoff wait`: a CI pipeline gates on an instance's outcome.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use signoff_core::engine::Status;

use crate::Global;

/// `wait`: the instance ended, but not with a success (rejected, expired…).
pub const EXIT_NOT_SUCCESS: u8 = crate::EXIT_NO;
/// `wait`: the instance was cancelled.
pub const EXIT_CANCELLED: u8 = 3;
/// `wait`: `--timeout` passed first.
pub const EXIT_TIMEOUT: u8 = 4;

#[derive(clap::Args)]
pub struct Args {
    /// The instance id.
    instance: String,
    /// Give up after this many seconds (exit 4).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
}

pub async fn wait(g: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let timeout = args.timeout.map(Duration::from_secs);
    let status = if let Some(client) = crate::client::Client::of(g)? {
        // The server's clock fires the timers; a read-only token is enough to follow.
        client.wait_for_end(&args.instance, timeout).await?
    } else {
        let rt = g.open().await?;
        // Fires due timers while waiting, so a deadline ends the instance even when nothing
        // else runs the engine's clock; each fires once whoever fires it.
        rt.wait_for_end(&args.instance, timeout, true).await?
    };
    let (code, word) = match &status {
        Status::Ended { success: true, .. } => (0, "success"),
        Status::Ended { success: false, .. } => (EXIT_NOT_SUCCESS, "not a success"),
        Status::Cancelled { .. } => (EXIT_CANCELLED, "cancelled"),
        Status::New | Status::Running => (EXIT_TIMEOUT, "timed out"),
    };
    if g.json {
        outln!(
            "{}",
            json!({"instance": args.instance, "status": status, "exit": code})
        )?;
    } else {
        match &status {
            Status::Ended { outcome, .. } => outln!("{}: {outcome} ({word})", args.instance)?,
            Status::Cancelled { reason, .. } => {
                outln!("{}: cancelled ({reason})", args.instance)?;
            }
            _ => outln!("{}: still running ({word})", args.instance)?,
        }
    }
    Ok(ExitCode::from(code))
}
