//! The runtime's own event types, stream names, ids and idempotency keys: a leaf module that
//! imports nothing of the runtime, so that every part (the engine's commands, the outbox, the
//! schedules, and later projections and reactors) names them from one place.

use serde_json::Value;
use sha2::{Digest, Sha256};
use signoff_core::engine::InstanceEvent;
use signoff_core::{
    EventData, EventId, EventType, EventTypes, IdempotencyKey, Metadata, NewEvent, StreamId,
};

use crate::error::RuntimeError;
use crate::idempotency::Keyed;

/// Type of the event that records a definition's text, once per content hash.
pub const DEFINITION_RECORDED: &str = "signoff.definition.recorded";
/// Type of the event that records a cron trigger's run.
pub const SCHEDULE_FIRED: &str = "signoff.schedule.fired";
/// Type of the event that records when the runtime first saw a cron trigger: its runs count
/// from then, so a new schedule does not start every run since the epoch.
pub const SCHEDULE_ARMED: &str = "signoff.schedule.armed";

/// The stream of the directory.
pub const DIRECTORY_STREAM: &str = "directory";
/// The stream of refusals for lack of rights.
pub const SECURITY_STREAM: &str = "security";

/// Type of the event that records a delivery (`outbox/<channel>`).
pub const OUTBOX_DELIVERED: &str = "signoff.outbox.delivered";
/// Type of the event that records a failed delivery attempt, with its reason.
pub const OUTBOX_FAILED: &str = "signoff.outbox.failed";
/// The prefix of a channel's outbox stream.
pub const OUTBOX_STREAM_PREFIX: &str = "outbox/";
/// Type of the event that records a reaction (a child, triggered or scheduled start) that
/// failed: which, why, the attempt, and when it is tried again.
pub const REACTION_FAILED: &str = "signoff.reaction.failed";
/// The stream of reactions' failures.
pub const REACTIONS_STREAM: &str = "reactions";
/// Type of the event that records a chat message about a gate edited to show the gate as it
/// stands (`chat/<channel>`).
pub const CHAT_EDITED: &str = "signoff.chat.edited";
/// Type of the event that records an edit of a chat message that failed.
pub const CHAT_EDIT_FAILED: &str = "signoff.chat.edit_failed";
/// Type of the event that records the chat thread an instance's messages go to (an
/// incident's), in `chat/<channel>`.
pub const CHAT_THREAD: &str = "signoff.chat.thread";
/// The prefix of a chat channel's stream of edits.
pub const CHAT_STREAM_PREFIX: &str = "chat/";
/// The prefix of a workflow's cron schedule stream.
pub const SCHEDULE_STREAM_PREFIX: &str = "schedule/";

/// Every event type the runtime writes, for opening the log.
#[must_use]
pub fn event_types() -> EventTypes {
    let mut types = EventTypes::new()
        .with(DEFINITION_RECORDED, 1)
        .with(SCHEDULE_FIRED, 1)
        .with(SCHEDULE_ARMED, 1)
        .with(OUTBOX_DELIVERED, 1)
        .with(OUTBOX_FAILED, 1)
        .with(REACTION_FAILED, 1)
        .with(CHAT_EDITED, 1)
        .with(CHAT_EDIT_FAILED, 1)
        .with(CHAT_THREAD, 1);
    for ty in signoff_core::engine::event::TYPES
        .iter()
        .chain(signoff_core::directory::TYPES.iter())
        .chain(signoff_core::access::TYPES.iter())
    {
        types = types.with(ty, 1);
    }
    types
}

/// The stream of an instance.
///
/// # Errors
/// When `id` cannot be part of a stream id.
pub fn instance_stream(id: &str) -> Result<StreamId, RuntimeError> {
    StreamId::parse(format!("instance/{id}"))
        .map_err(|_| RuntimeError::UnknownInstance(id.to_owned()))
}

pub(crate) fn definition_stream(hash: &str) -> Result<StreamId, RuntimeError> {
    StreamId::parse(format!("definition/{hash}")).map_err(|e| RuntimeError::Corrupt {
        sequence: 0,
        reason: e.to_string(),
    })
}

/// A new UUIDv7 instance id.
#[must_use]
pub fn new_instance_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An instance id derived from a key (a parent and its step, a trigger and its source), so
/// that starting it twice, from two processes or after a restart, lands on the same stream.
#[must_use]
pub fn derived_instance_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// One of the engine's idempotency keys for `text` (see [`Keyed::engine`]).
pub(crate) fn to_idempotency_key(text: &str) -> Result<IdempotencyKey, RuntimeError> {
    Keyed::engine(text)
        .map(|keyed| keyed.key)
        .map_err(|e| corrupt(&e))
}

pub(crate) fn corrupt(e: &impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Corrupt {
        sequence: 0,
        reason: e.to_string(),
    }
}

pub(crate) fn new_event(
    ty: &str,
    data: &Value,
    actor: &str,
    channel: &str,
    correlation: Option<&str>,
) -> Result<NewEvent, RuntimeError> {
    let data = EventData::from_value(data).map_err(|e| corrupt(&e))?;
    event_with(ty, data, actor, channel, correlation)
}

/// An event to append, its data already JSON text.
pub(crate) fn event_with(
    ty: &str,
    data: EventData,
    actor: &str,
    channel: &str,
    correlation: Option<&str>,
) -> Result<NewEvent, RuntimeError> {
    let mut metadata = Metadata::new(actor, channel);
    metadata.correlation_id = correlation.map(str::to_owned);
    Ok(NewEvent {
        id: EventId(uuid::Uuid::now_v7()),
        ty: EventType::parse(ty).map_err(|e| corrupt(&e))?,
        schema_version: 1,
        data,
        metadata,
    })
}

/// The events as the log stores them, and whether they read back exactly as they are: a
/// fractional number may come back a last digit apart from the one computed, so events with
/// one are folded as read back from the log, never as decided (see `remember_own`).
pub(crate) fn to_new_events(
    events: &[InstanceEvent],
    actor: &str,
    channel: &str,
    instance: &str,
) -> Result<(Vec<NewEvent>, bool), RuntimeError> {
    let mut exact = true;
    let encoded = events
        .iter()
        .map(|e| {
            let (ty, data) = e.to_log_parts().map_err(|r| corrupt(&r))?;
            exact &= !e.holds_float();
            event_with(&ty, data, actor, channel, Some(instance))
        })
        .collect::<Result<_, RuntimeError>>()?;
    Ok((encoded, exact))
}
