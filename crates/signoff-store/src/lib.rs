//! The event log of signoff: append-only, hash-chained, on SQLite (embedded default) or PostgreSQL.
//!
//! Start at [`EventLog`], the one trait both backends implement. Appends from every task of a
//! process go through one writer per database ([`writer`]), which batches concurrent appends
//! into one transaction (group commit); the batching decisions (versions, idempotency, sequence
//! numbers, hashes) are made by one pure function, [`plan::plan_group`], shared by both backends.
//!
//! This crate knows events, streams and the chain; it must not know what a workflow is.
#![forbid(unsafe_code)]

mod error;
mod log;
mod models;
mod open;
pub mod plan;
mod postgres;
mod recent;
mod row;
mod sqlite;
mod subscribe;
mod verify;
pub mod writer;

pub use error::StoreError;
pub use log::{
    AppendRequest, Appended, EventLog, ExpectedVersion, MAX_BATCH_BYTES, MAX_BATCH_EVENTS,
    OnCommit, TYPES_INDEXED, Tail,
};
pub use models::{ModelQuery, ModelRow, ModelWrite, ModelWritten, Page};
pub use open::{DatabaseUrl, OpenOptions, open};
pub use postgres::{PgLog, WRITER_APPLICATION};
pub use sqlite::SqliteLog;
pub use subscribe::{read_all_stream, subscribe};
pub use verify::{VerifyReport, verify};
pub use writer::{Clock, ManualClock, SystemClock};
