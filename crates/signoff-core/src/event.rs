//! The event envelope: what a caller hands to the log ([`NewEvent`]) and what the log gives back
//! ([`RecordedEvent`]), in the shape of CloudEvents 1.0 JSON plus signoff's extension attributes.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use crate::chain::Hash;
use crate::ids::{EventId, EventType, StreamId, shorten};

/// Largest `data` of one event, in bytes. Evidence larger than this (a plan output, a report) is
/// stored content-addressed and only its hash goes into the log.
pub const MAX_EVENT_DATA_BYTES: usize = 1024 * 1024;
/// Longest accepted actor, channel, correlation or causation id, in bytes.
pub const MAX_METADATA_BYTES: usize = 256;

/// Why an event (or a part of it) was refused before anything was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    /// An identifier (stream id, event type, key…) is malformed.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidId {
        /// Which kind of identifier.
        what: &'static str,
        /// The offending value, shortened.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The `data` of an event is not one JSON value.
    #[error("event data is not valid JSON: {0}")]
    DataNotJson(String),
    /// The `data` of an event is over [`MAX_EVENT_DATA_BYTES`].
    #[error(
        "event data is {size} bytes; the limit is {limit} bytes (attach large content as evidence instead)"
    )]
    DataTooLarge {
        /// Size of the refused data.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The event type is not registered at all.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// The event type is known but not in this schema version.
    #[error("event type {ty:?} has no schema version {version} (known: 1 to {latest})")]
    UnknownSchemaVersion {
        /// The event type.
        ty: String,
        /// The refused version.
        version: u32,
        /// The newest version the registry knows.
        latest: u32,
    },
    /// A metadata field (actor, channel, correlation or causation id) is malformed.
    #[error("invalid {field}: {reason}")]
    InvalidMetadata {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A point in time: microseconds since the Unix epoch, UTC. The log stores this integer, so a
/// timestamp survives both backends bit for bit.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// RFC 3339 text with microseconds, e.g. `2026-11-22T13:01:02.123456Z`.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        chrono::DateTime::from_timestamp_micros(self.0).map_or_else(
            || format!("invalid-time({})", self.0),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        )
    }

    /// Parses RFC 3339 text.
    ///
    /// # Errors
    /// The parser's message when `text` is not RFC 3339.
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| Self(t.timestamp_micros()))
            .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
    }

    /// A moment as people write one: an RFC 3339 time, or a `YYYY-MM-DD` date (midnight UTC).
    /// A date that is not in the calendar (2026-02-30) is none.
    #[must_use]
    pub fn parse_moment(text: &str) -> Option<Self> {
        Self::parse_rfc3339(text).ok().or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| Self(t.and_utc().timestamp_micros()))
        })
    }
}

/// The `data` of an event: one JSON value, kept as the exact text that is stored and hashed.
///
/// The text is never re-normalised after it is accepted: the hash covers these bytes, so an
/// auditor can check the chain against a plain export without knowing any JSON canonicalisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventData(String);

impl EventData {
    /// Serialises a value (compact JSON, keys in the value's own order).
    ///
    /// # Errors
    /// [`InvalidEvent::DataNotJson`] if the value cannot be serialised (e.g. a map with non-string
    /// keys), or [`InvalidEvent::DataTooLarge`].
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Self, InvalidEvent> {
        let text =
            serde_json::to_string(value).map_err(|e| InvalidEvent::DataNotJson(e.to_string()))?;
        Self::checked_size(text)
    }

    /// Accepts JSON text as it is, after checking that it is exactly one JSON value.
    ///
    /// # Errors
    /// [`InvalidEvent::DataNotJson`] with the line and column of the first problem, or
    /// [`InvalidEvent::DataTooLarge`].
    pub fn from_json_text(text: impl Into<String>) -> Result<Self, InvalidEvent> {
        let text = Self::checked_size(text.into())?;
        serde_json::from_str::<serde::de::IgnoredAny>(&text.0)
            .map_err(|e| InvalidEvent::DataNotJson(e.to_string()))?;
        Ok(text)
    }

    /// Wraps JSON text that serde_json wrote from a value: valid by construction, so only its
    /// size is checked.
    pub(crate) fn from_written(text: String) -> Result<Self, InvalidEvent> {
        Self::checked_size(text)
    }

    /// Wraps text read back from the log. Its integrity is the hash chain's job, not this type's.
    #[must_use]
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    fn checked_size(text: String) -> Result<Self, InvalidEvent> {
        if text.len() > MAX_EVENT_DATA_BYTES {
            return Err(InvalidEvent::DataTooLarge {
                size: text.len(),
                limit: MAX_EVENT_DATA_BYTES,
            });
        }
        Ok(Self(text))
    }

    /// The stored JSON text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the data into a typed value.
    ///
    /// # Errors
    /// serde's error when the data does not have the shape of `T`.
    pub fn decode<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

/// Who did it, through what, and why it happened: the audit part of an event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The verified person or service that caused the event (`system` for the engine itself).
    pub actor: String,
    /// The channel it came through: `cli`, `api`, `web`, `discord`, `email`, `timer`…
    pub channel: String,
    /// Groups every event caused by one original request.
    pub correlation_id: Option<String>,
    /// The event or command that directly caused this one.
    pub causation_id: Option<String>,
}

impl Metadata {
    /// Metadata for an actor on a channel, without correlation.
    #[must_use]
    pub fn new(actor: impl Into<String>, channel: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            channel: channel.into(),
            correlation_id: None,
            causation_id: None,
        }
    }

    /// Checks every field is present where required, short, and free of control characters.
    ///
    /// # Errors
    /// [`InvalidEvent::InvalidMetadata`] naming the field.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        let fields = [
            ("actor", Some(&self.actor), true),
            ("channel", Some(&self.channel), true),
            ("correlation id", self.correlation_id.as_ref(), false),
            ("causation id", self.causation_id.as_ref(), false),
        ];
        for (field, value, required) in fields {
            let Some(value) = value else { continue };
            let reason = if value.is_empty() && required {
                Some("it is empty".to_owned())
            } else if value.len() > MAX_METADATA_BYTES {
                Some(format!(
                    "it is {} bytes long; the limit is {MAX_METADATA_BYTES}",
                    value.len()
                ))
            } else if value.chars().any(char::is_control) {
                Some(format!("{:?} contains a control character", shorten(value)))
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(InvalidEvent::InvalidMetadata { field, reason });
            }
        }
        Ok(())
    }
}

/// An event as a caller proposes it: the log assigns sequence, stream version, time and hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// CloudEvents `id`, made by the caller (UUIDv7 in the runtime).
    pub id: EventId,
    /// CloudEvents `type`.
    pub ty: EventType,
    /// Version of the `data` schema of `ty`; readers upcast old versions.
    pub schema_version: u32,
    /// The payload.
    pub data: EventData,
    /// Actor, channel and correlation.
    pub metadata: Metadata,
}

/// An event as the log holds it. Serialises as a CloudEvents 1.0 JSON object (see
/// [`RecordedEvent::to_cloudevent_json`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Position in the whole log: 1, 2, 3… with no gaps, in commit order.
    pub sequence: u64,
    /// The stream the event belongs to.
    pub stream: StreamId,
    /// Position in its stream: 1, 2, 3… with no gaps.
    pub version: u64,
    /// CloudEvents `id`.
    pub id: EventId,
    /// CloudEvents `type`.
    pub ty: EventType,
    /// Version of the `data` schema.
    pub schema_version: u32,
    /// When the log recorded it (never earlier than the event before it).
    pub time: Timestamp,
    /// The payload, as stored.
    pub data: EventData,
    /// Actor, channel and correlation.
    pub metadata: Metadata,
    /// Hash of the previous event in the log (all zeros for the first).
    pub prev_hash: Hash,
    /// `SHA-256(prev_hash || canonical bytes of this event)`, see [`crate::chain`].
    pub hash: Hash,
}

/// CloudEvents `source` of every event signoff records.
pub const CLOUDEVENTS_SOURCE: &str = "urn:signoff";

impl RecordedEvent {
    /// The event as one line of CloudEvents JSON (the export format). Data that is not JSON
    /// (a row altered in the database) is passed through as a string `data`, with
    /// `datacontenttype: text/plain` and a `signoffdataerror` attribute saying what is wrong.
    #[must_use]
    pub fn to_cloudevent_json(&self) -> String {
        // Serialising strings, numbers and valid JSON into a String cannot fail; the fallback
        // keeps the signature infallible all the same.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

impl Serialize for RecordedEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Stored data is JSON when it was appended; a row altered in the database may not be.
        // That row is exactly what an auditor must see, so its text is passed through as a
        // string, flagged, rather than the whole event being lost.
        let data: Result<&serde_json::value::RawValue, _> =
            serde_json::from_str(self.data.as_str());
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("specversion", "1.0")?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("source", CLOUDEVENTS_SOURCE)?;
        m.serialize_entry("type", &self.ty)?;
        m.serialize_entry("subject", &self.stream)?;
        m.serialize_entry("time", &self.time.to_rfc3339())?;
        match data {
            Ok(data) => {
                m.serialize_entry("datacontenttype", "application/json")?;
                m.serialize_entry("data", data)?;
            }
            Err(error) => {
                m.serialize_entry("datacontenttype", "text/plain")?;
                m.serialize_entry("data", self.data.as_str())?;
                m.serialize_entry(
                    "signoffdataerror",
                    &format!("the stored data is not JSON: {error}"),
                )?;
            }
        }
        m.serialize_entry("streamid", &self.stream)?;
        m.serialize_entry("streamversion", &self.version)?;
        m.serialize_entry("sequence", &self.sequence)?;
        m.serialize_entry("schemaversion", &self.schema_version)?;
        m.serialize_entry("timemicros", &self.time.0)?;
        m.serialize_entry("actor", &self.metadata.actor)?;
        m.serialize_entry("channel", &self.metadata.channel)?;
        m.serialize_entry("correlationid", &self.metadata.correlation_id)?;
        m.serialize_entry("causationid", &self.metadata.causation_id)?;
        m.serialize_entry("prevhash", &self.prev_hash)?;
        m.serialize_entry("hash", &self.hash)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(data: &str) -> RecordedEvent {
        RecordedEvent {
            sequence: 7,
            stream: StreamId::parse("instance/x").unwrap_or_else(|e| panic!("{e}")),
            version: 2,
            id: EventId(uuid::Uuid::from_u128(7)),
            ty: EventType::parse("test.happened").unwrap_or_else(|e| panic!("{e}")),
            schema_version: 1,
            time: Timestamp(1_000),
            data: EventData::from_stored(data.to_owned()),
            metadata: Metadata::new("alice", "cli"),
            prev_hash: crate::Hash::GENESIS,
            hash: crate::Hash::GENESIS,
        }
    }

    #[test]
    fn stored_data_that_is_not_json_is_exported_as_it_is_and_flagged() {
        let line = recorded(r#"{"amount": 10"#).to_cloudevent_json();
        let event: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(event["data"], r#"{"amount": 10"#, "{line}");
        assert_eq!(event["datacontenttype"], "text/plain", "{line}");
        assert!(
            event["signoffdataerror"]
                .as_str()
                .is_some_and(|e| e.contains("not JSON")),
            "{line}"
        );
        assert_eq!(event["sequence"], 7, "{line}");

        let line = recorded(r#"{"amount":10}"#).to_cloudevent_json();
        let event: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(event["data"]["amount"], 10, "{line}");
        assert!(event.get("signoffdataerror").is_none(), "{line}");
    }

    #[test]
    fn data_must_be_one_json_value() {
        assert!(EventData::from_json_text(r#"{"a": [1, 2]}"#).is_ok());
        for bad in ["", "{", "{} {}", "nope", "{'a': 1}"] {
            assert!(
                matches!(
                    EventData::from_json_text(bad),
                    Err(InvalidEvent::DataNotJson(_))
                ),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn data_over_the_limit_is_refused() {
        let big = format!("\"{}\"", "x".repeat(MAX_EVENT_DATA_BYTES));
        assert!(matches!(
            EventData::from_json_text(big),
            Err(InvalidEvent::DataTooLarge { .. })
        ));
    }

    #[test]
    fn data_text_is_kept_byte_for_byte() {
        let text = "{ \"b\":1,\n \"a\":2 }";
        assert_eq!(
            EventData::from_json_text(text)
                .map(|d| d.as_str().to_owned())
                .ok()
                .as_deref(),
            Some(text)
        );
    }

    #[test]
    fn metadata_requires_actor_and_channel() {
        assert!(Metadata::new("alice", "cli").validate().is_ok());
        let err = Metadata::new("", "cli")
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(err, "invalid actor: it is empty");
        let err = Metadata::new("a\u{7}", "cli")
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("control character"), "{err}");
    }

    #[test]
    fn timestamps_print_as_rfc3339_micros() {
        assert_eq!(
            Timestamp(1_700_000_000_123_456).to_rfc3339(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2023-11-14T22:13:20.123456Z"),
            Ok(Timestamp(1_700_000_000_123_456))
        );
    }
}
