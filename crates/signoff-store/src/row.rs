//! Rows of the `events` table, shared by both backends.

use signoff_core::{
    EventData, EventId, EventType, Hash, Metadata, RecordedEvent, StreamId, Timestamp,
};

use crate::error::StoreError;

/// The columns of `events`, in the order [`EventRow`] and the inserts use.
macro_rules! event_columns {
    () => {
        "sequence, stream, version, id, type, schema_version, recorded_at, actor, channel, \
         correlation_id, causation_id, data, prev_hash, hash"
    };
}
pub(crate) use event_columns;

/// One stored event, as the database returns it.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    sequence: i64,
    stream: String,
    version: i64,
    id: String,
    #[sqlx(rename = "type")]
    ty: String,
    schema_version: i64,
    recorded_at: i64,
    actor: String,
    channel: String,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    data: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl EventRow {
    /// Decodes and validates the row. A row that fails was edited outside signoff.
    pub(crate) fn into_event(self) -> Result<RecordedEvent, StoreError> {
        let sequence = self.sequence;
        let corrupt = |reason: String| StoreError::Corrupt { sequence, reason };
        let unsigned = |what: &str, v: i64| {
            u64::try_from(v).map_err(|_| corrupt(format!("{what} {v} is negative")))
        };
        Ok(RecordedEvent {
            sequence: unsigned("sequence", self.sequence)?,
            stream: StreamId::parse(self.stream).map_err(|e| corrupt(e.to_string()))?,
            version: unsigned("version", self.version)?,
            id: EventId::parse(&self.id).map_err(|e| corrupt(e.to_string()))?,
            ty: EventType::parse(self.ty).map_err(|e| corrupt(e.to_string()))?,
            schema_version: u32::try_from(self.schema_version).map_err(|_| {
                corrupt(format!(
                    "schema version {} is out of range",
                    self.schema_version
                ))
            })?,
            time: Timestamp(self.recorded_at),
            data: EventData::from_stored(self.data),
            metadata: Metadata {
                actor: self.actor,
                channel: self.channel,
                correlation_id: self.correlation_id,
                causation_id: self.causation_id,
            },
            prev_hash: Hash::from_slice(&self.prev_hash)
                .map_err(|e| corrupt(format!("prev_hash: {e}")))?,
            hash: Hash::from_slice(&self.hash).map_err(|e| corrupt(format!("hash: {e}")))?,
        })
    }
}

/// Decodes a page of rows.
pub(crate) fn into_events(rows: Vec<EventRow>) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.into_iter().map(EventRow::into_event).collect()
}

/// A sequence, version or count as the databases store it (signed 64-bit). Values beyond
/// `i64::MAX` cannot be reached by a log that counts from 1.
pub(crate) fn db_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The inverse of [`db_int`] for values the store itself wrote.
pub(crate) fn from_db_int(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A page size as a SQL `LIMIT`.
pub(crate) fn db_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
