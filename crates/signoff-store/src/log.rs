use std::fmt;

use async_trait::async_trait;
use signoff_core::{EventType, Hash, IdempotencyKey, NewEvent, RecordedEvent, StreamId};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::models::{ModelQuery, ModelRow, ModelWrite, ModelWritten};
use crate::plan::KeyRecord;

/// Most events one append may carry.
pub const MAX_BATCH_EVENTS: usize = 1_000;
/// Most bytes of event data one append may carry.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// What an append expects of its stream's current version (optimistic concurrency).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version (for streams with a single writer, like the security stream).
    Any,
    /// The stream must have no events yet.
    NoStream,
    /// The stream's last event must have exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    #[must_use]
    pub fn admits(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exact(v) => actual == v,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream (version 0)"),
            Self::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// One atomic append: all of `events` land in `stream`, consecutively, or none do.
#[derive(Clone, Debug)]
pub struct AppendRequest {
    /// The stream appended to.
    pub stream: StreamId,
    /// What the stream's version must be.
    pub expected: ExpectedVersion,
    /// The events, in order. At least one, at most [`MAX_BATCH_EVENTS`].
    pub events: Vec<NewEvent>,
    /// Makes the append safe to retry: a key seen before returns the first result.
    pub idempotency_key: Option<IdempotencyKey>,
    /// What the request was, bound to its key: a later append with the same key and another
    /// fingerprint is refused ([`StoreError::IdempotencyKeyReused`]) instead of answered.
    pub fingerprint: Option<String>,
}

impl AppendRequest {
    /// An append without an idempotency key.
    #[must_use]
    pub fn new(stream: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self {
            stream,
            expected,
            events,
            idempotency_key: None,
            fingerprint: None,
        }
    }

    /// Sets the idempotency key.
    #[must_use]
    pub fn idempotent(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }
}

/// Where an append landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Global sequence of the first event.
    pub first_sequence: u64,
    /// Global sequence of the last event.
    pub last_sequence: u64,
    /// The stream's version after the append (the version of its last event).
    pub stream_version: u64,
    /// True when the idempotency key was seen before and nothing was written now.
    pub deduplicated: bool,
}

/// Told where an append landed, right after its commit and before anyone waiting on the log is
/// answered. Hooks of one group commit run in sequence order, so a process can fold what it wrote
/// itself, in order, without reading it back. Must be quick: the writer waits for it.
pub type OnCommit = Box<dyn FnOnce(&Appended) + Send>;

/// The head of the log as the log itself records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tail {
    /// Last sequence (0 for an empty log).
    pub sequence: u64,
    /// Hash of the last event ([`Hash::GENESIS`] for an empty log).
    pub hash: Hash,
    /// Recorded time of the last event, microseconds.
    pub time: i64,
}

impl Tail {
    /// The tail of an empty log.
    pub const EMPTY: Self = Self {
        sequence: 0,
        hash: Hash::GENESIS,
        time: 0,
    };
}

/// The append-only, hash-chained log of every fact signoff records.
///
/// Guarantees, on every backend (checked by the same conformance suite):
/// - an append is atomic and checked against its expected version;
/// - sequences are 1, 2, 3… without gaps, in commit order, even with several processes;
/// - every event is chained to the one before it ([`signoff_core::chain`]);
/// - the database refuses UPDATE and DELETE on events.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Appends a batch of events to one stream, atomically.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the stream is not at the expected version,
    /// [`StoreError::Invalid`] / [`StoreError::InvalidBatch`] when the request is malformed
    /// (nothing is written), or a database error.
    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError>;

    /// As [`EventLog::append`], and `on_commit` is told where it landed (also when the idempotency
    /// key was seen before) as soon as it is committed, in commit order with the other appends
    /// of its group. Not called when the append fails.
    ///
    /// # Errors
    /// As [`EventLog::append`].
    async fn append_then(
        &self,
        request: AppendRequest,
        on_commit: OnCommit,
    ) -> Result<Appended, StoreError> {
        let appended = self.append(request).await?;
        on_commit(&appended);
        Ok(appended)
    }

    /// Events of one stream with version `>= from_version`, in order, at most `limit`.
    ///
    /// # Errors
    /// A database error, or [`StoreError::Corrupt`] for a row that is no longer an event.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events of the whole log with sequence `> after`, in order, at most `limit`.
    ///
    /// # Errors
    /// As [`EventLog::read_stream`].
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// As [`EventLog::read_all`] for a reader that follows the log: the events this process has
    /// just committed may come from memory, as they were committed, instead of from the
    /// database (a page may then be shorter than `limit`; read on from its end). Auditing
    /// reads (verification, export) use [`EventLog::read_all`], which always reads what is stored.
    ///
    /// # Errors
    /// As [`EventLog::read_all`].
    async fn read_recent(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all(after, limit).await
    }

    /// Events of one type with sequence `> after`, in order, at most `limit`. For the types of
    /// [`TYPES_INDEXED`] an index keeps this from reading the rest of the log; any other type
    /// is found by reading the whole log.
    ///
    /// # Errors
    /// As [`EventLog::read_stream`].
    async fn read_type(
        &self,
        ty: &EventType,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The stored record of an idempotency key, if an append used it: where it landed and the
    /// fingerprint of its request. Lets a retried command be answered with its first result
    /// before it is decided again.
    ///
    /// # Errors
    /// A database error.
    async fn idempotent_result(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<KeyRecord>, StoreError>;

    /// Forgets the idempotency keys starting with `prefix` first used before `recorded_before`
    /// (microseconds): the retention of clients' keys. Returns how many were forgotten. The
    /// log itself is untouched.
    ///
    /// # Errors
    /// A database error.
    async fn forget_idempotency_keys(
        &self,
        prefix: &str,
        recorded_before: i64,
    ) -> Result<u64, StoreError>;

    /// How far the read models of `group` have been brought (0 when never).
    ///
    /// # Errors
    /// A database error.
    async fn model_checkpoint(&self, group: &str) -> Result<u64, StoreError>;

    /// Writes the rows of a group of read models as of a log position, if the write continues
    /// what is stored (see [`ModelWritten`]); rows and checkpoint change in one transaction.
    ///
    /// # Errors
    /// A database error.
    async fn write_models(&self, write: ModelWrite) -> Result<ModelWritten, StoreError>;

    /// Empties `models` and forgets `group`'s checkpoint, so they are built again from the
    /// first event. The log itself is untouched.
    ///
    /// # Errors
    /// A database error.
    async fn reset_models(&self, group: &str, models: &[&str]) -> Result<(), StoreError>;

    /// One row of a read model.
    ///
    /// # Errors
    /// A database error.
    async fn model_row(&self, model: &str, key: &str) -> Result<Option<ModelRow>, StoreError>;

    /// A page of a read model's rows, in key order.
    ///
    /// # Errors
    /// A database error.
    async fn model_rows(&self, query: ModelQuery<'_>) -> Result<Vec<ModelRow>, StoreError>;

    /// The head of the log as recorded by the last commit.
    ///
    /// # Errors
    /// A database error.
    async fn tail(&self) -> Result<Tail, StoreError>;

    /// The last sequence committed, updated on every commit this process sees (its own, and on
    /// PostgreSQL other processes' through LISTEN/NOTIFY). Subscribers wait on it.
    fn committed(&self) -> watch::Receiver<u64>;

    /// Stops taking appends (later ones fail with [`StoreError::Closed`]) and returns once every
    /// append queued before is committed or refused, and answered. A process that is asked to
    /// stop calls it last, so that nothing it accepted is cut off in the writer's queue.
    async fn close(&self) {}
}

/// How many idempotency keys one statement of [`EventLog::forget_idempotency_keys`] deletes
/// (as a literal for the SQL text: [`forget_batch`]).
pub(crate) const FORGET_BATCH: u64 = 500;

/// [`FORGET_BATCH`] as a literal, for `concat!`.
macro_rules! forget_batch {
    () => {
        "500"
    };
}
pub(crate) use forget_batch;

/// The exclusive upper bound of the keys starting with `prefix`, for a range scan of the
/// primary key (`key >= prefix AND key < bound`); `None` when every longer key is above it.
pub(crate) fn prefix_bound(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

/// The types [`EventLog::read_type`] finds through an index: those that mark the life of an
/// instance. An index over every type would cost each commit a page written per type it holds.
/// Equal to the list in the migrations' `events_by_lifecycle_type` index (a test checks).
pub const TYPES_INDEXED: [&str; 4] = [
    "signoff.instance.started",
    "signoff.instance.ended",
    "signoff.instance.cancelled",
    "signoff.step.escalated",
];

/// The query of [`EventLog::read_type`], with the backend's parameter marker (`?` or `$`): the
/// type is parameter 1, `after` 2, the limit 3.
pub(crate) fn read_type_sql(ty: &EventType, marker: char) -> String {
    format!(
        "SELECT {} FROM events WHERE {} AND sequence > {marker}2 ORDER BY sequence LIMIT {marker}3",
        crate::row::event_columns!(),
        by_type_condition(ty, &format!("{marker}1")),
    )
}

/// The `WHERE` clause of a read by type: with the index's own condition written out when `ty`
/// is indexed (as migration 0004 writes it), since a database uses a partial index only for a
/// query that repeats it.
fn by_type_condition(ty: &EventType, param: &str) -> String {
    if TYPES_INDEXED.contains(&ty.as_str()) {
        let listed: Vec<String> = TYPES_INDEXED
            .iter()
            .map(|t| format!("type = '{t}'"))
            .collect();
        format!("type = {param} AND ({})", listed.join(" OR "))
    } else {
        format!("type = {param}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migrations_index_exactly_the_listed_types() {
        for backend in ["sqlite", "postgres"] {
            let path = format!(
                "{}/../../migrations/{backend}/0004_lifecycle_index_without_in_list.sql",
                env!("CARGO_MANIFEST_DIR")
            );
            let sql = std::fs::read_to_string(&path).expect("migration");
            let (_, index) = sql.split_once("CREATE INDEX").expect("the index");
            let listed: Vec<&str> = index
                .split('\'')
                .skip(1)
                .step_by(2)
                .filter(|s| s.starts_with("signoff."))
                .collect();
            assert_eq!(listed, TYPES_INDEXED, "{path}");
        }
    }
}
