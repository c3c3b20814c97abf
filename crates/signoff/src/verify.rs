//! `signoff verify`: prove the log was not altered.

use std::process::ExitCode;

use signoff_core::EventTypes;
use signoff_store::{OpenOptions, VerifyReport};

#[derive(clap::Args)]
pub struct Args {
    /// Start at this sequence number (the event before it is trusted as the anchor).
    #[arg(long, default_value_t = 1)]
    from: u64,
}

/// Walks the chain of the database named, or asks the server to (`--server`: auditors).
pub async fn run(g: &crate::Global, args: Args) -> anyhow::Result<ExitCode> {
    let report = if let Some(client) = crate::client::Client::of(g)? {
        if args.from != 1 {
            anyhow::bail!("--from is not taken with --server: the server verifies the whole log");
        }
        let answer: serde_json::Value = client.get("/api/v1/verify", &[]).await?;
        serde_json::from_value::<VerifyReport>(answer["report"].clone()).map_err(|e| {
            anyhow::anyhow!("the server's verification is not one this CLI reads: {e}")
        })?
    } else {
        let options = OpenOptions {
            create_if_missing: false,
            ..OpenOptions::new(EventTypes::new())
        };
        let log = signoff_store::open(&g.url()?, options).await?;
        // A start past the head is a typo, not events added outside signoff.
        let head = log.tail().await?.sequence;
        if args.from > head + 1 {
            anyhow::bail!(
                "--from {}: the log's last event is {head}, so there is nothing to verify from \
                 there",
                args.from
            );
        }
        signoff_store::verify(log, args.from).await?
    };
    if g.json {
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
