//! The one writer per database: group commit.
//!
//! Every append of a process is sent to one task, which takes all appends waiting at that moment
//! (up to [`MAX_GROUP`]) and commits them in one transaction, then answers each. While one
//! transaction is being made durable, the next group is gathering, so the cost of a sync is shared
//! by everyone who arrived during it: throughput grows with concurrency instead of queueing behind
//! one fsync per append.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use signoff_core::EventTypes;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::error::StoreError;
use crate::log::{AppendRequest, Appended, Tail};
use crate::plan::validate_request;

/// Most appends committed in one transaction.
pub const MAX_GROUP: usize = 256;

/// Where recorded time comes from. The store reads the clock; the core never does.
pub trait Clock: Send + Sync + 'static {
    /// Now, in microseconds since the Unix epoch.
    fn now_micros(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to: for tests of timers and of `replay --at`.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `micros`.
    #[must_use]
    pub fn at(micros: i64) -> Self {
        Self(AtomicI64::new(micros))
    }

    /// Moves the clock to `micros`.
    pub fn set(&self, micros: i64) {
        self.0.store(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a backend does inside one group-commit transaction.
#[async_trait]
pub trait GroupCommit: Send + 'static {
    /// Locks the head, reads what [`crate::plan::plan_group`] needs, writes the plan, commits.
    /// Returns one outcome per request and the new tail. An `Err` means nothing was written.
    async fn commit_group(
        &mut self,
        requests: &mut [AppendRequest],
        now: i64,
    ) -> Result<(Vec<Result<Appended, StoreError>>, Tail), StoreError>;
}

struct Pending {
    request: AppendRequest,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// The sending side of a log's writer task.
pub struct Writer {
    tx: mpsc::Sender<Pending>,
    types: Arc<EventTypes>,
}

impl Writer {
    /// Starts the writer task for `backend`. `committed` is told the last sequence after each commit.
    pub fn spawn<B: GroupCommit>(
        backend: B,
        types: Arc<EventTypes>,
        clock: Arc<dyn Clock>,
        committed: Arc<watch::Sender<u64>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(run(backend, rx, clock, committed));
        Self { tx, types }
    }

    /// Validates `request`, queues it for the next group, and waits for its commit.
    ///
    /// # Errors
    /// See [`crate::EventLog::append`].
    pub async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        validate_request(&request, &self.types)?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { request, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run<B: GroupCommit>(
    mut backend: B,
    mut rx: mpsc::Receiver<Pending>,
    clock: Arc<dyn Clock>,
    committed: Arc<watch::Sender<u64>>,
) {
    let mut pending = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut pending, MAX_GROUP).await > 0 {
        let (mut requests, replies): (Vec<_>, Vec<_>) =
            pending.drain(..).map(|p| (p.request, p.reply)).unzip();
        let span = tracing::debug_span!("group_commit", appends = requests.len());
        let result = backend
            .commit_group(&mut requests, clock.now_micros())
            .instrument(span)
            .await;
        match result {
            Ok((outcomes, tail)) => {
                committed.send_if_modified(|last| {
                    let newer = tail.sequence > *last;
                    if newer {
                        *last = tail.sequence;
                    }
                    newer
                });
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(error) => {
                tracing::error!(%error, appends = replies.len(), "group commit failed; nothing of it was written");
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
