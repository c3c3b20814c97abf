//! `signoff verify`: prove the log was not altered.

use std::process::ExitCode;

use signoff_core::EventTypes;
use signoff_store::{DatabaseUrl, OpenOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Start at this sequence number (the event before it is trusted as the anchor).
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(url: &DatabaseUrl, args: Args) -> anyhow::Result<ExitCode> {
    let options = OpenOptions {
        create_if_missing: false,
        ..OpenOptions::new(EventTypes::new())
    };
    let log = signoff_store::open(url, options).await?;
    let report = signoff_store::verify(log, args.from).await?;
    if args.json {
        outln!("{}", serde_json::to_string(&report)?)?;
    } else if let Some(broken) = &report.broken {
        outln!("BROKEN at sequence {}: {broken}", broken.sequence)?;
        outln!("{} events before it verified.", report.checked)?;
    } else if let (Some(last), Some(hash)) = (report.last_sequence, report.last_hash) {
        outln!(
            "intact: {} events verified ({} to {last}); head hash {hash}",
            report.checked,
            report.from
        )?;
    } else {
        outln!("intact: no events from sequence {}", report.from)?;
    }
    Ok(if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_NO)
    })
}
