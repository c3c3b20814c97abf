//! Reading the whole log as a stream, and following it live.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use signoff_core::RecordedEvent;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::log::EventLog;

/// Events fetched per query.
const PAGE: usize = 4_096;
/// How often a subscriber looks for commits it was not told about (other processes on SQLite).
const POLL: Duration = Duration::from_millis(200);
/// How long a subscriber waits for a missing sequence to become visible before it gives up.
const GAP_PATIENCE: u32 = 50;

struct Cursor {
    log: Arc<dyn EventLog>,
    after: u64,
    buffer: VecDeque<RecordedEvent>,
    commits: Option<watch::Receiver<u64>>,
    gap_waits: u32,
    failed: bool,
}

impl Cursor {
    fn new(log: Arc<dyn EventLog>, after: u64, follow: bool) -> Self {
        let commits = follow.then(|| log.committed());
        Self {
            log,
            after,
            buffer: VecDeque::new(),
            commits,
            gap_waits: 0,
            failed: false,
        }
    }

    /// The next event, or `None` at the end of the log when not following.
    async fn next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.after = event.sequence;
                return Some(Ok(event));
            }
            // Mark the current commit as seen *before* reading, so a commit that lands after the
            // read wakes the wait below instead of being missed.
            if let Some(commits) = &mut self.commits {
                commits.borrow_and_update();
            }
            let read = if self.commits.is_some() {
                self.log.read_recent(self.after, PAGE).await
            } else {
                self.log.read_all(self.after, PAGE).await
            };
            let page = match read {
                Ok(page) => page,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            if let Some(first) = page.first()
                && first.sequence != self.after + 1
            {
                // Sequences are gap-free in commit order, so this can only be a commit not yet
                // visible to this connection. Wait for it rather than skip it.
                self.gap_waits += 1;
                if self.gap_waits > GAP_PATIENCE {
                    self.failed = true;
                    return Some(Err(StoreError::Corrupt {
                        sequence: i64::try_from(self.after + 1).unwrap_or(i64::MAX),
                        reason: format!(
                            "missing from the log (the next event present is {})",
                            first.sequence
                        ),
                    }));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            self.gap_waits = 0;
            if page.is_empty() {
                let commits = self.commits.as_mut()?;
                let _ = tokio::time::timeout(POLL, commits.changed()).await;
                continue;
            }
            self.buffer.extend(page);
        }
    }
}

fn into_stream(
    cursor: Cursor,
) -> impl Stream<Item = Result<RecordedEvent, StoreError>> + Send + 'static {
    futures::stream::unfold(cursor, |mut cursor| async move {
        cursor.next().await.map(|item| (item, cursor))
    })
}

/// Every event with sequence `> after`, in order, up to the end of the log as it is when each
/// page is read; then the stream ends.
pub fn read_all_stream(
    log: Arc<dyn EventLog>,
    after: u64,
) -> impl Stream<Item = Result<RecordedEvent, StoreError>> + Send + 'static {
    into_stream(Cursor::new(log, after, false))
}

/// Catches up from checkpoint `after`, then follows live commits, forever: every event with a
/// sequence above `after` is yielded exactly once, in order, with none skipped.
pub fn subscribe(
    log: Arc<dyn EventLog>,
    after: u64,
) -> impl Stream<Item = Result<RecordedEvent, StoreError>> + Send + 'static {
    into_stream(Cursor::new(log, after, true))
}
