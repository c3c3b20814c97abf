use std::sync::Arc;

use signoff_core::{InvalidEvent, StreamId};

use crate::log::ExpectedVersion;

/// Everything that can go wrong in the store, with variants a caller can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the version the append expected. Reload the stream and retry.
    #[error("stream {stream} is at version {actual}, but the append expected {expected}")]
    Conflict {
        /// The stream appended to.
        stream: StreamId,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's current version (0 when it has no events).
        actual: u64,
    },
    /// The append was refused before anything was written.
    #[error("append refused{}: {source}", event_index.map(|i| format!(" (event {i} of the batch)")).unwrap_or_default())]
    Invalid {
        /// Which event of the batch, counted from 0, when one event is at fault.
        event_index: Option<usize>,
        /// What is wrong.
        #[source]
        source: InvalidEvent,
    },
    /// The batch as a whole is refused (empty, too many events, too many bytes).
    #[error("append refused: {0}")]
    InvalidBatch(String),
    /// An idempotency key was used again for another request (another stream, or another
    /// fingerprint on the same stream). Nothing was written.
    #[error(
        "idempotency key {key:?} was first used for another request (on stream {first_stream}; this one is on {stream})"
    )]
    IdempotencyKeyReused {
        /// The key.
        key: String,
        /// The stream of its first use.
        first_stream: String,
        /// The stream of this use.
        stream: StreamId,
    },
    /// A stored row cannot be read back as an event (the database was edited by hand).
    #[error("event {sequence} cannot be read: {reason}")]
    Corrupt {
        /// Sequence of the row.
        sequence: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// The database URL is not one signoff understands.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// The database file does not exist (and this command does not create one).
    #[error("no signoff database at {0}")]
    NotFound(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(Arc<sqlx::Error>),
    /// The embedded database's writer failed.
    #[error("database error: {0}")]
    Sqlite(Arc<rusqlite::Error>),
    /// The log's writer thread could not be started.
    #[error("cannot start the event log's writer thread: {0}")]
    Thread(Arc<std::io::Error>),
    /// The schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(Arc<sqlx::migrate::MigrateError>),
    /// The log's writer has stopped (the process is shutting down).
    #[error("the event log is closed")]
    Closed,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(Arc::new(e))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(Arc::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(Arc::new(e))
    }
}
