//! `signoff bench`: the benchmarks whose figures README.md reports.

mod log;

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// The event log: durable appends, verified replay, commit-to-subscriber lag.
    Log(log::Args),
}

pub async fn run(g: &crate::Global, bench: Bench) -> anyhow::Result<ExitCode> {
    match bench {
        Bench::Log(args) => log::run(&g.url()?, args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The value at quantile `q` (0..=1) of sorted `values`, in milliseconds.
pub fn quantile_ms(sorted: &[std::time::Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1_000.0
}

/// Events (or operations) per second.
#[allow(clippy::cast_precision_loss)]
pub fn per_sec(count: u64, elapsed: std::time::Duration) -> f64 {
    (count as f64 / elapsed.as_secs_f64().max(1e-9)).round()
}
