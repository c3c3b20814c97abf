//! The pure core of signoff.
//!
//! This crate owns the types every other crate speaks: the event envelope ([`event`]), the
//! identifiers that may cross its edge only once validated ([`ids`]), the hash chain that makes
//! the log tamper-evident ([`chain`]) and the registry of event types the log accepts ([`schema`]).
//!
//! It must stay pure: no IO, no clock, no randomness, no async runtime. Times and ids are passed
//! in by the caller, so every rule is a fast unit test and replaying the log is exact.
//!
//! Start with [`event::RecordedEvent`], then [`chain`].
#![forbid(unsafe_code)]

pub mod access;
pub mod chain;
pub mod directory;
pub mod engine;
pub mod event;
pub mod ids;
pub mod link;
pub mod schema;
pub mod secret;
pub mod workflow;

pub use chain::{BreakKind, ChainBreak, ChainVerifier, Hash};
pub use event::{EventData, InvalidEvent, Metadata, NewEvent, RecordedEvent, Timestamp};
pub use ids::{EventId, EventType, IdempotencyKey, StreamId};
pub use schema::EventTypes;
pub use secret::{Secret, redact_url};
