//! `signoff projections`: compare the read models with the log, or build them again from it.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use signoff_runtime::projections::{self, GROUP, MODELS};
use signoff_runtime::{Definitions, Runtime};
use signoff_store::{OpenOptions, SystemClock};

#[derive(clap::Subcommand)]
pub enum Projections {
    /// Build the read models (instances, directory, tokens) again from the first event; stop
    /// the server and workers first. With --check, only compare them with the log (exit 0 the
    /// same, 1 different, 2 error).
    Rebuild {
        /// Compare instead of rebuilding; changes nothing.
        #[arg(long)]
        check: bool,
    },
}

pub async fn run(g: &crate::Global, command: Projections) -> anyhow::Result<ExitCode> {
    let Projections::Rebuild { check } = command;
    let options = OpenOptions {
        create_if_missing: false,
        ..OpenOptions::new(signoff_runtime::event_types())
    };
    let log = signoff_store::open(&g.url()?, options).await?;
    let started = Instant::now();
    if check {
        let definitions = Definitions::load_dir(&g.workflows)?;
        let fresh = Runtime::new(log, Arc::new(SystemClock), definitions, g.evidence.clone());
        let report = projections::check(&fresh).await?;
        if g.json {
            outln!("{}", serde_json::to_string(&report)?)?;
        } else if report.count == 0 {
            outln!(
                "the read models match the log: {} rows compared at sequence {} in {:.1} s",
                report.rows,
                report.position,
                started.elapsed().as_secs_f64()
            )?;
        } else {
            outln!(
                "the read models differ from the log at sequence {} ({} of {} rows):",
                report.position,
                report.count,
                report.rows
            )?;
            for difference in &report.differences {
                outln!("  {difference}")?;
            }
            outln!("`signoff projections rebuild` builds them again from the log.")?;
        }
        return Ok(if report.count == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    log.reset_models(GROUP, &MODELS).await?;
    log.close().await;
    let runtime = g.open().await?;
    let position = runtime.gauges().position;
    if g.json {
        outln!(
            "{}",
            serde_json::json!({"position": position, "seconds": started.elapsed().as_secs_f64()})
        )?;
    } else {
        outln!(
            "read models built again from the log up to sequence {position} in {:.1} s",
            started.elapsed().as_secs_f64()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
