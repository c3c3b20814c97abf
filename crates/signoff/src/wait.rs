//! `signoff wait` (a CI pipeline gates on an instance's outcome) and `signoff run` (the engine's
//! clock: timers and cron schedules).

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
    let rt = g.open().await?;
    // Fires due timers while waiting, so a deadline ends the instance even when nothing else
    // runs the engine's clock; each fires once whoever fires it.
    let status = rt
        .wait_for_end(&args.instance, args.timeout.map(Duration::from_secs), true)
        .await?;
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

#[derive(clap::Args)]
pub struct RunArgs {
    /// Fire what is due now and exit (for a system cron job), instead of running until stopped.
    #[arg(long)]
    once: bool,
}

pub async fn run(g: &Global, args: RunArgs) -> anyhow::Result<ExitCode> {
    let rt = g.open().await?;
    let mut stop = std::pin::pin!(crate::serve::stop_signal()?);
    if !args.once {
        eprintln!(
            "signoff run: {} workflow(s) from {}, {} people from {}, log {}; firing timers and \
             cron runs until Ctrl-C or SIGTERM",
            rt.definitions().len(),
            g.workflows.display(),
            rt.directory().people().count(),
            g.people.display(),
            g.url()?
        );
    }
    loop {
        let tick = rt.tick().await?;
        if tick.timers + tick.runs > 0 || args.once {
            if g.json {
                outln!(
                    "{}",
                    json!({"timers_fired": tick.timers, "schedules_started": tick.runs})
                )?;
            } else {
                outln!(
                    "fired {} timer(s), started {} scheduled run(s)",
                    tick.timers,
                    tick.runs
                )?;
            }
        }
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            () = tokio::time::sleep(rt.until_next_tick()) => {}
            () = &mut stop => {
                // Stopped between turns: what a turn appended is answered; close the writer.
                rt.log().close().await;
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}
