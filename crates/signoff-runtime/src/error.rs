use signoff_core::engine::Rejection;
use signoff_core::workflow::Problem;
use signoff_store::StoreError;

/// Everything the runtime can refuse or fail at, with variants a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine refused the command; nothing was recorded (but a refusal for lack of rights
    /// is recorded in the security stream).
    #[error("{0}")]
    Rejected(#[from] Rejection),
    /// No workflow of that id is loaded.
    #[error("there is no workflow {0:?}; `signoff workflows` lists them")]
    UnknownWorkflow(String),
    /// No instance of that id exists.
    #[error("there is no instance {0:?}")]
    UnknownInstance(String),
    /// The instance exists, but was started after the moment asked about.
    #[error("instance {0} did not exist yet at {at}", at = .1.to_rfc3339())]
    NotYet(String, signoff_core::Timestamp),
    /// A person the command names is not in the directory.
    #[error("{0:?} is not a person of the directory")]
    UnknownPerson(String),
    /// Definitions or the directory file have problems.
    #[error("{} problem(s):\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// The log failed.
    #[error(transparent)]
    Store(StoreError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        #[source]
        source: std::io::Error,
    },
    /// A recorded event cannot be read back.
    #[error("event {sequence} cannot be read: {reason}")]
    Corrupt {
        /// Its sequence.
        sequence: u64,
        /// Why.
        reason: String,
    },
    /// The same instance was changed concurrently too often to get a command through.
    #[error("instance {0} is changing too fast; try again")]
    Contended(String),
    /// The caller's idempotency key was first used for another request (another command,
    /// instance or content). Nothing was recorded.
    #[error(
        "this Idempotency-Key was already used for another request; use a new key for a new request"
    )]
    IdempotencyKeyReused,
    /// No token has that id.
    #[error("there is no token {0:?}; `signoff token list` lists them")]
    UnknownToken(String),
}

impl From<StoreError> for RuntimeError {
    /// A key reused for another request is the caller's mistake, not the log's failure.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::IdempotencyKeyReused { .. } => Self::IdempotencyKeyReused,
            other => Self::Store(other),
        }
    }
}
