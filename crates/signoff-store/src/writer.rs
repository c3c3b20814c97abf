//! The one writer per database: group commit.
//!
//! Every append of a process is sent to one writer, which takes all appends waiting at that moment
//! (up to [`MAX_GROUP`]) and commits them in one transaction, then answers each. While one
//! transaction is being made durable, the next group is gathering, so the cost of a sync is shared
//! by everyone who arrived during it: throughput grows with concurrency instead of queueing behind
//! one fsync per append.
//!
//! PostgreSQL's writer is a task ([`Writer::spawn`]): its work is waiting on the server. SQLite's
//! is a thread of its own ([`Writer::spawn_thread`]) that runs the whole transaction without
//! yielding: as a task it waited in the runtime's queue, behind every HTTP request, between each
//! of its statements, and every appender waits for the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use signoff_core::EventTypes;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::error::StoreError;
use crate::log::{AppendRequest, Appended, OnCommit, Tail};
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

/// What the SQLite backend does inside one group-commit transaction, on the writer's thread.
pub trait BlockingGroupCommit: Send + 'static {
    /// As [`GroupCommit::commit_group`], without yielding.
    ///
    /// # Errors
    /// As [`GroupCommit::commit_group`].
    fn commit_group(
        &mut self,
        requests: &mut [AppendRequest],
        now: i64,
    ) -> Result<(Vec<Result<Appended, StoreError>>, Tail), StoreError>;
}

struct Pending {
    request: AppendRequest,
    on_commit: Option<OnCommit>,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// What the writer is sent: an append, or the request to stop taking appends.
enum Message {
    Append(Pending),
    /// Refuse appends from now on, commit and answer those already queued, then say so.
    Close(oneshot::Sender<()>),
}

/// The sending side of a log's writer (a task, or a thread of its own).
pub struct Writer {
    tx: mpsc::Sender<Message>,
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

    /// Starts the writer thread for `backend` (see the module's documentation).
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn spawn_thread<B: BlockingGroupCommit>(
        backend: B,
        types: Arc<EventTypes>,
        clock: Arc<dyn Clock>,
        committed: Arc<watch::Sender<u64>>,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
        std::thread::Builder::new()
            .name("signoff-writer".to_owned())
            .spawn(move || run_thread(backend, rx, &*clock, &committed))
            .map_err(|e| StoreError::Thread(Arc::new(e)))?;
        Ok(Self { tx, types })
    }

    /// Validates `request`, queues it for the next group, and waits for its commit.
    ///
    /// # Errors
    /// See [`crate::EventLog::append`].
    pub async fn append(
        &self,
        request: AppendRequest,
        on_commit: Option<OnCommit>,
    ) -> Result<Appended, StoreError> {
        validate_request(&request, &self.types)?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Message::Append(Pending {
                request,
                on_commit,
                reply,
            }))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops taking appends (later ones fail with [`StoreError::Closed`]) and returns once every
    /// append queued before has been committed or refused, and answered: what a process that is
    /// asked to stop (SIGTERM) waits for, so that no accepted command is cut off mid-queue.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.tx.send(Message::Close(done)).await.is_ok() {
            // An error means the writer is gone already: nothing is left to wait for.
            let _ = closed.await;
        }
    }
}

async fn run<B: GroupCommit>(
    mut backend: B,
    mut rx: mpsc::Receiver<Message>,
    clock: Arc<dyn Clock>,
    committed: Arc<watch::Sender<u64>>,
) {
    let mut messages = Vec::with_capacity(MAX_GROUP);
    let mut closers = Vec::new();
    // Ends once closed (or the log dropped) and everything queued before is answered.
    while rx.recv_many(&mut messages, MAX_GROUP).await > 0 {
        let (mut requests, waiting) = split(&mut messages, &mut rx, &mut closers);
        if requests.is_empty() {
            continue;
        }
        let span = tracing::debug_span!("group_commit", appends = requests.len());
        let result = backend
            .commit_group(&mut requests, clock.now_micros())
            .instrument(span)
            .await;
        answer(waiting, result, &committed);
    }
    for closer in closers {
        let _ = closer.send(());
    }
}

fn run_thread<B: BlockingGroupCommit>(
    mut backend: B,
    mut rx: mpsc::Receiver<Message>,
    clock: &dyn Clock,
    committed: &watch::Sender<u64>,
) {
    let mut messages = Vec::with_capacity(MAX_GROUP);
    let mut closers = Vec::new();
    // Ends when the log, and with it the sending side, is dropped, or once closed and drained.
    while let Some(first) = rx.blocking_recv() {
        messages.push(first);
        while messages.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => messages.push(next),
                Err(_) => break,
            }
        }
        let (mut requests, waiting) = split(&mut messages, &mut rx, &mut closers);
        if requests.is_empty() {
            continue;
        }
        let span = tracing::debug_span!("group_commit", appends = requests.len());
        let result = span.in_scope(|| backend.commit_group(&mut requests, clock.now_micros()));
        answer(waiting, result, committed);
    }
    for closer in closers {
        let _ = closer.send(());
    }
}

type Waiting = (
    Option<OnCommit>,
    oneshot::Sender<Result<Appended, StoreError>>,
);

/// Takes the appends of a batch; a close request closes the queue (appends already in it are
/// still received and committed) and is answered once the writer has drained it.
fn split(
    messages: &mut Vec<Message>,
    rx: &mut mpsc::Receiver<Message>,
    closers: &mut Vec<oneshot::Sender<()>>,
) -> (Vec<AppendRequest>, Vec<Waiting>) {
    let mut requests = Vec::with_capacity(messages.len());
    let mut waiting = Vec::with_capacity(messages.len());
    for message in messages.drain(..) {
        match message {
            Message::Append(Pending {
                request,
                on_commit,
                reply,
            }) => {
                requests.push(request);
                waiting.push((on_commit, reply));
            }
            Message::Close(done) => {
                rx.close();
                closers.push(done);
            }
        }
    }
    (requests, waiting)
}

/// Tells everyone of a group how it went: every hook in sequence order, then the committed
/// sequence to subscribers, then the answers, so whoever wakes first finds the whole group told.
fn answer(
    waiting: Vec<Waiting>,
    result: Result<(Vec<Result<Appended, StoreError>>, Tail), StoreError>,
    committed: &watch::Sender<u64>,
) {
    match result {
        Ok((outcomes, tail)) => {
            let (hooks, replies): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
            for (on_commit, outcome) in hooks.into_iter().zip(&outcomes) {
                if let (Some(on_commit), Ok(appended)) = (on_commit, outcome) {
                    on_commit(appended);
                }
            }
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
            tracing::error!(%error, appends = waiting.len(), "group commit failed; nothing of it was written");
            for (_, reply) in waiting {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
