//! The runtime of signoff: command handling over the event log, the directory of people,
//! durable timers, linked and triggered workflows, cron schedules and the notification outbox.
//!
//! It knows no HTTP, Discord or SMTP: adapters call [`Runtime::start`] and [`Runtime::execute`]
//! and read [`queries`]. Start with [`open`], then [`runtime::Runtime::execute`].
#![forbid(unsafe_code)]

pub mod access;
pub mod chat;
pub mod clock;
pub mod definitions;
mod error;
pub mod events;
pub mod idempotency;
pub mod links;
pub mod outbox;
pub mod projections;
pub mod queries;
pub mod reactions;
pub mod reactor;
pub mod runtime;
pub mod schedule;
pub mod timeline;

use std::path::PathBuf;
use std::sync::Arc;

pub use definitions::Definitions;
pub use error::RuntimeError;
pub use runtime::{Applied, Entry, Runtime, event_types};
use signoff_store::{Clock, DatabaseUrl, EventLog, OpenOptions, SystemClock};

/// Where a runtime finds its log, definitions and directory.
#[derive(Clone)]
pub struct Config {
    /// The event log.
    pub database: DatabaseUrl,
    /// The folder of workflow definitions.
    pub workflows: PathBuf,
    /// The directory file (`people.yaml`); synced into the log at open when it exists.
    pub people: PathBuf,
    /// Where evidence content is stored, by hash.
    pub evidence: PathBuf,
    /// The clock (the system clock, or a manual one in tests).
    pub clock: Arc<dyn Clock>,
}

impl Config {
    /// The embedded default: `signoff.db`, `workflows/`, `people.yaml`, `evidence/` in the
    /// working directory.
    #[must_use]
    pub fn embedded(database: DatabaseUrl) -> Self {
        Self {
            database,
            workflows: PathBuf::from("workflows"),
            people: PathBuf::from("people.yaml"),
            evidence: PathBuf::from("evidence"),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Opens the log, loads the definitions, starts from the read models, catches up with the log
/// after them, syncs the directory file, and writes what changed back to the read models.
/// A definition file with a problem is left out, and the others loaded: one broken file must
/// not stop every workflow ([`Runtime::skipped_definitions`] says which and why).
///
/// # Errors
/// An invalid directory file; a store error.
pub async fn open(config: &Config) -> Result<Runtime, RuntimeError> {
    let definitions = Definitions::load_dir_skipping(&config.workflows)?;
    let options = OpenOptions {
        clock: config.clock.clone(),
        ..OpenOptions::new(event_types())
    };
    let log = signoff_store::open(&config.database, options).await?;
    open_on(log, config, definitions).await
}

/// Like [`open`], over a log the caller opened (a PostgreSQL schema of its own, for example).
///
/// # Errors
/// An invalid directory file; a store error.
pub async fn open_on(
    log: Arc<dyn EventLog>,
    config: &Config,
    definitions: Definitions,
) -> Result<Runtime, RuntimeError> {
    let runtime = Runtime::new(
        log,
        config.clock.clone(),
        definitions,
        config.evidence.clone(),
    );
    runtime.restore_projections().await?;
    runtime.catch_up().await?;
    if let Some(text) = runtime::read_optional(&config.people)? {
        runtime
            .sync_directory(&config.people.display().to_string(), &text)
            .await?;
    }
    runtime.save_projections().await?;
    Ok(runtime)
}
