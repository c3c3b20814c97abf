//! Walking the whole chain: what `signoff verify` runs.

use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use signoff_core::{BreakKind, ChainBreak, ChainVerifier, Hash};

use crate::error::StoreError;
use crate::log::EventLog;
use crate::subscribe::read_all_stream;

/// What a verification found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Events that passed.
    pub checked: u64,
    /// Sequence verification started at.
    pub from: u64,
    /// Sequence and hash of the last event that passed.
    pub last_sequence: Option<u64>,
    /// Hash of the last event that passed.
    pub last_hash: Option<Hash>,
    /// The first broken place, if any.
    pub broken: Option<ChainBreak>,
}

impl VerifyReport {
    /// Whether the chain is intact.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Verifies the chain from sequence `from` (1 for the whole log) to the log's head.
///
/// Verification from the middle anchors on the event before `from`, whose hash is trusted.
///
/// # Errors
/// A database error, or [`StoreError::Corrupt`] for a row that cannot be read as an event.
pub async fn verify(log: Arc<dyn EventLog>, from: u64) -> Result<VerifyReport, StoreError> {
    let from = from.max(1);
    let mut verifier = ChainVerifier::new();
    if from > 1 {
        let anchor = log.read_all(from - 2, 1).await?;
        if let Some(event) = anchor.first().filter(|e| e.sequence == from - 1) {
            verifier = ChainVerifier::after(event);
        }
    }
    let mut report = VerifyReport {
        checked: 0,
        from,
        last_sequence: None,
        last_hash: None,
        broken: None,
    };
    let mut events = std::pin::pin!(read_all_stream(log.clone(), from - 1));
    while let Some(event) = events.next().await {
        let event = event?;
        if let Err(broken) = verifier.check(&event) {
            report.broken = Some(broken);
            break;
        }
    }
    report.checked = verifier.checked();
    report.last_sequence = verifier.last().map(|(s, _)| s);
    report.last_hash = verifier.last().map(|(_, h)| h);
    if report.broken.is_none() {
        let head = log.tail().await?;
        let last = verifier.last().map_or(from - 1, |(s, _)| s);
        if head.sequence != last {
            report.broken = Some(ChainBreak {
                sequence: last + 1,
                kind: BreakKind::HeadMismatch {
                    head: head.sequence,
                    last,
                },
            });
        }
    }
    Ok(report)
}
