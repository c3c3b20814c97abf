//! Identifiers that are validated once, at the edge, so an invalid one cannot exist inside.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::InvalidEvent;

/// Longest accepted stream id, in bytes. Long enough for `workflow/instance-uuid/sub`, short
/// enough to keep the `(stream, version)` index compact.
pub const MAX_STREAM_ID_BYTES: usize = 200;
/// Longest accepted event type name, in bytes.
pub const MAX_EVENT_TYPE_BYTES: usize = 120;
/// Longest accepted idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 200;

/// Checks that `value` is 1..=`max` bytes of printable ASCII without spaces: safe to show in a
/// terminal, in a URL path segment (after escaping `/`), and in an error message.
fn check_token(what: &'static str, value: &str, max: usize) -> Result<(), InvalidEvent> {
    let problem = if value.is_empty() {
        Some("it is empty".to_owned())
    } else if value.len() > max {
        Some(format!(
            "it is {} bytes long; the limit is {max}",
            value.len()
        ))
    } else {
        value
            .char_indices()
            .find(|(_, c)| !c.is_ascii_graphic())
            .map(|(i, c)| {
                format!("character {c:?} at byte {i} is not printable ASCII without spaces")
            })
    };
    match problem {
        None => Ok(()),
        Some(reason) => Err(InvalidEvent::InvalidId {
            what,
            value: shorten(value),
            reason,
        }),
    }
}

/// Shortens a value for an error message so a megabyte of garbage never ends up in a log line.
pub(crate) fn shorten(value: &str) -> String {
    const KEEP: usize = 60;
    if value.len() <= KEEP {
        return value.to_owned();
    }
    let mut end = KEEP;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

macro_rules! token_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `value` and wraps it.
            ///
            /// # Errors
            /// [`InvalidEvent::InvalidId`] naming what is wrong with the value.
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidEvent> {
                let value = value.into();
                check_token($what, &value, $max)?;
                Ok(Self(value))
            }

            /// The id as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

token_newtype!(
    /// The id of one stream in the log: one workflow instance, one person, the security stream…
    /// Printable ASCII, no spaces, at most [`MAX_STREAM_ID_BYTES`] bytes.
    StreamId,
    "stream id",
    MAX_STREAM_ID_BYTES
);
token_newtype!(
    /// The CloudEvents `type` of an event, e.g. `signoff.approval.decided`.
    EventType,
    "event type",
    MAX_EVENT_TYPE_BYTES
);
token_newtype!(
    /// A caller-chosen key that makes an append safe to retry: the same key returns the first
    /// result and writes nothing.
    IdempotencyKey,
    "idempotency key",
    MAX_IDEMPOTENCY_KEY_BYTES
);

/// The CloudEvents `id` of an event: a UUID (v7 when made by the runtime, so ids sort by time).
/// The core never makes one; the caller passes it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    /// Parses the hyphenated text form.
    ///
    /// # Errors
    /// [`InvalidEvent::InvalidId`] when `value` is not a UUID.
    pub fn parse(value: &str) -> Result<Self, InvalidEvent> {
        Uuid::try_parse(value)
            .map(Self)
            .map_err(|e| InvalidEvent::InvalidId {
                what: "event id",
                value: shorten(value),
                reason: e.to_string(),
            })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_accepts_printable_ascii() {
        assert_eq!(
            StreamId::parse("dpia/7f3a-01").map(|s| s.to_string()).ok(),
            Some("dpia/7f3a-01".into())
        );
    }

    #[test]
    fn stream_id_refuses_empty_long_and_spaces() {
        for (value, needle) in [
            (String::new(), "empty"),
            ("x".repeat(MAX_STREAM_ID_BYTES + 1), "limit is 200"),
            ("a b".to_owned(), "at byte 1"),
            ("é".to_owned(), "not printable ASCII"),
        ] {
            let err = StreamId::parse(value)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
    }

    #[test]
    fn error_messages_never_carry_huge_values() {
        let err = StreamId::parse("y".repeat(10_000))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.len() < 300, "{} bytes", err.len());
    }

    #[test]
    fn event_id_round_trips() {
        let text = "01937a7e-7c1a-7000-8000-000000000001";
        assert_eq!(
            EventId::parse(text)
                .map(|id| id.to_string())
                .ok()
                .as_deref(),
            Some(text)
        );
        assert!(EventId::parse("nope").is_err());
    }
}
