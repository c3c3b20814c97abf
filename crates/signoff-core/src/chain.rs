//! The hash chain: how each event is bound to everything recorded before it.
//!
//! # Canonical encoding (version 1)
//!
//! This is the one place the encoding is defined; `signoff verify` and any third-party checker
//! must follow it exactly. For event *n*:
//!
//! ```text
//! hash(n) = SHA-256( prev_hash(n) || canonical(n) )
//! prev_hash(1) = 32 zero bytes,  prev_hash(n) = hash(n - 1)
//!
//! canonical(n) =
//!     "signoff.event.v1"               16 ASCII bytes, a domain tag
//!     sequence                         u64, big-endian
//!     stream version                   u64, big-endian
//!     recorded time                    i64, big-endian, microseconds since 1970-01-01T00:00:00Z
//!     schema version                   u32, big-endian
//!     field(stream id)
//!     field(event id)                  lowercase hyphenated UUID, 36 bytes
//!     field(event type)
//!     field(actor)
//!     field(channel)
//!     optional(correlation id)
//!     optional(causation id)
//!     field(data)                      the JSON text exactly as stored, UTF-8
//!
//! field(x)          = u32 big-endian byte length of x || bytes of x
//! optional(absent)  = 0x00
//! optional(x)       = 0x01 || field(x)
//! ```
//!
//! Every variable-length part is length-prefixed, so no two different events share an encoding.
//! The sequence number is inside the hash, so moving an event to another position breaks it.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::RecordedEvent;

const DOMAIN_TAG: &[u8; 16] = b"signoff.event.v1";

/// A SHA-256 digest. Shown and serialised as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The `prev_hash` of the first event in the log.
    pub const GENESIS: Self = Self([0; 32]);

    /// Builds a hash from stored bytes.
    ///
    /// # Errors
    /// A message when `bytes` is not exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, String> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| format!("a hash is 32 bytes, found {}", bytes.len()))
    }

    /// Parses 64 hex digits.
    ///
    /// # Errors
    /// A message when `text` is not 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text).map_err(|e| format!("{text:?} is not hex: {e}"))?;
        Self::from_slice(&bytes)
    }

    /// The first 12 hex digits, for messages a person reads.
    #[must_use]
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// Feeds the canonical encoding of `event` to `sink`, piece by piece (no allocation).
pub fn write_canonical(event: &RecordedEvent, sink: &mut impl FnMut(&[u8])) {
    fn field(sink: &mut impl FnMut(&[u8]), bytes: &[u8]) {
        // Every field is bounded far below 4 GiB (1 MiB of data at most), so this never truncates.
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        sink(&len.to_be_bytes());
        sink(bytes);
    }
    fn optional(sink: &mut impl FnMut(&[u8]), value: Option<&String>) {
        match value {
            None => sink(&[0]),
            Some(v) => {
                sink(&[1]);
                field(sink, v.as_bytes());
            }
        }
    }
    sink(DOMAIN_TAG);
    sink(&event.sequence.to_be_bytes());
    sink(&event.version.to_be_bytes());
    sink(&event.time.0.to_be_bytes());
    sink(&event.schema_version.to_be_bytes());
    field(sink, event.stream.as_str().as_bytes());
    let mut id = [0u8; 36];
    field(
        sink,
        event.id.0.hyphenated().encode_lower(&mut id).as_bytes(),
    );
    field(sink, event.ty.as_str().as_bytes());
    field(sink, event.metadata.actor.as_bytes());
    field(sink, event.metadata.channel.as_bytes());
    optional(sink, event.metadata.correlation_id.as_ref());
    optional(sink, event.metadata.causation_id.as_ref());
    field(sink, event.data.as_str().as_bytes());
}

/// The canonical bytes of `event`, as one buffer (for documentation, tests and outside tools).
#[must_use]
pub fn canonical_bytes(event: &RecordedEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + event.data.as_str().len());
    write_canonical(event, &mut |b| out.extend_from_slice(b));
    out
}

/// `SHA-256(prev || canonical(event))`, using `prev` rather than `event.prev_hash`.
#[must_use]
pub fn compute_hash(prev: &Hash, event: &RecordedEvent) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(prev.0);
    write_canonical(event, &mut |b| hasher.update(b));
    Hash(hasher.finalize().into())
}

/// What is wrong at the first broken place of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BreakKind {
    /// The event's content does not produce its stored hash: it was altered after it was written.
    HashMismatch {
        /// The hash stored with the event.
        stored: Hash,
        /// The hash its content produces.
        computed: Hash,
    },
    /// The event's `prev_hash` is not the hash of the event before it.
    BrokenLink {
        /// The `prev_hash` stored with the event.
        stored_prev: Hash,
        /// The hash of the event before it.
        actual_prev: Hash,
    },
    /// Sequence numbers (or a stream's versions) skip: events are missing.
    Gap {
        /// What came next in a gap-free log.
        expected: u64,
        /// What came instead.
        found: u64,
        /// The stream, when the gap is in a stream's versions.
        stream: Option<String>,
    },
    /// Something goes backwards: a sequence number, a stream version, or the recorded time.
    Reordered {
        /// Which order is violated.
        what: String,
    },
    /// The log's head (the last sequence recorded by the last commit) disagrees with the last
    /// event present: trailing events were removed, or rows were added behind signoff's back.
    HeadMismatch {
        /// The last sequence the log's head records.
        head: u64,
        /// The last sequence actually present.
        last: u64,
    },
}

/// The first broken place of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    /// Sequence number of the first event that fails.
    pub sequence: u64,
    /// What fails.
    #[serde(flatten)]
    pub kind: BreakKind,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.sequence;
        match &self.kind {
            BreakKind::HashMismatch { stored, computed } => write!(
                f,
                "event {n} was altered: its content hashes to {} but {} is stored",
                computed.short(),
                stored.short()
            ),
            BreakKind::BrokenLink {
                stored_prev,
                actual_prev,
            } => write!(
                f,
                "event {n} is not linked to event {}: it names {} as previous hash, the previous event's hash is {}",
                n.saturating_sub(1),
                stored_prev.short(),
                actual_prev.short()
            ),
            BreakKind::Gap {
                expected,
                found,
                stream: None,
            } => {
                write!(
                    f,
                    "events are missing before sequence {n}: expected sequence {expected}, found {found}"
                )
            }
            BreakKind::Gap {
                expected,
                found,
                stream: Some(s),
            } => write!(
                f,
                "event {n} skips versions of stream {s}: expected version {expected}, found {found}"
            ),
            BreakKind::Reordered { what } => write!(f, "event {n} is out of order: {what}"),
            BreakKind::HeadMismatch { head, last } if head > last => write!(
                f,
                "events after sequence {last} are missing: the log's head records sequence {head}"
            ),
            BreakKind::HeadMismatch { head, last } => write!(
                f,
                "events {} to {last} were added outside signoff: the log's head records sequence {head}",
                head + 1
            ),
        }
    }
}

/// Checks events one by one, in log order, and reports the first broken place.
///
/// Pure and incremental: feed it events from a database, an export file or a subscription.
/// Started mid-log, it anchors on the first event it sees (whose own hash is still checked).
#[derive(Debug, Default)]
pub struct ChainVerifier {
    last: Option<(u64, Hash, i64)>,
    stream_versions: HashMap<Box<str>, u64>,
    checked: u64,
}

impl ChainVerifier {
    /// A verifier for a log read from its first event.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier that continues after `event`, which is trusted as the anchor.
    #[must_use]
    pub fn after(event: &RecordedEvent) -> Self {
        Self {
            last: Some((event.sequence, event.hash, event.time.0)),
            ..Self::default()
        }
    }

    /// How many events passed so far.
    #[must_use]
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The sequence and hash of the last event that passed.
    #[must_use]
    pub fn last(&self) -> Option<(u64, Hash)> {
        self.last.map(|(s, h, _)| (s, h))
    }

    /// Checks the next event.
    ///
    /// # Errors
    /// The first [`ChainBreak`]; the verifier should not be fed further after one.
    pub fn check(&mut self, event: &RecordedEvent) -> Result<(), ChainBreak> {
        let n = event.sequence;
        let brk = |kind| Err(ChainBreak { sequence: n, kind });
        let (expected_seq, expected_prev) = match self.last {
            Some((seq, hash, time)) => {
                if n <= seq {
                    return brk(BreakKind::Reordered {
                        what: format!("sequence {n} comes after {seq}"),
                    });
                }
                if event.time.0 < time {
                    return brk(BreakKind::Reordered {
                        what: "it was recorded earlier than the event before it".to_owned(),
                    });
                }
                (seq + 1, Some(hash))
            }
            // Read from the start: the log begins at 1 with the genesis hash.
            None => (1, Some(Hash::GENESIS)),
        };
        if n != expected_seq {
            return brk(BreakKind::Gap {
                expected: expected_seq,
                found: n,
                stream: None,
            });
        }
        if let Some(v) = self.stream_versions.get(event.stream.as_str()) {
            if event.version <= *v {
                return brk(BreakKind::Reordered {
                    what: format!(
                        "version {} of stream {} comes after version {v}",
                        event.version, event.stream
                    ),
                });
            }
            if event.version != v + 1 {
                return brk(BreakKind::Gap {
                    expected: v + 1,
                    found: event.version,
                    stream: Some(event.stream.to_string()),
                });
            }
        }
        let computed = compute_hash(&event.prev_hash, event);
        if computed != event.hash {
            return brk(BreakKind::HashMismatch {
                stored: event.hash,
                computed,
            });
        }
        if let Some(prev) = expected_prev
            && prev != event.prev_hash
        {
            return brk(BreakKind::BrokenLink {
                stored_prev: event.prev_hash,
                actual_prev: prev,
            });
        }
        match self.stream_versions.get_mut(event.stream.as_str()) {
            Some(v) => *v = event.version,
            None => {
                self.stream_versions
                    .insert(event.stream.as_str().into(), event.version);
            }
        }
        self.last = Some((n, event.hash, event.time.0));
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventData, Metadata, Timestamp};
    use crate::ids::{EventId, EventType, StreamId};

    fn chain(n: u64) -> Vec<RecordedEvent> {
        let mut prev = Hash::GENESIS;
        (1..=n)
            .map(|seq| {
                let mut e = RecordedEvent {
                    sequence: seq,
                    stream: StreamId::parse(format!("s{}", seq % 2))
                        .unwrap_or_else(|e| panic!("{e}")),
                    version: seq.div_ceil(2),
                    id: EventId(uuid::Uuid::from_u128(u128::from(seq))),
                    ty: EventType::parse("test.happened").unwrap_or_else(|e| panic!("{e}")),
                    schema_version: 1,
                    time: Timestamp(1_000 + i64::try_from(seq).unwrap_or(0)),
                    data: EventData::from_stored(format!("{{\"n\":{seq}}}")),
                    metadata: Metadata::new("alice", "cli"),
                    prev_hash: prev,
                    hash: Hash::GENESIS,
                };
                e.hash = compute_hash(&prev, &e);
                prev = e.hash;
                e
            })
            .collect()
    }

    fn first_break(events: &[RecordedEvent]) -> Option<ChainBreak> {
        let mut v = ChainVerifier::new();
        events.iter().find_map(|e| v.check(e).err())
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert_eq!(first_break(&chain(20)), None);
    }

    #[test]
    fn one_changed_byte_of_data_is_found_at_its_sequence() {
        let mut events = chain(10);
        events[6].data = EventData::from_stored("{\"n\":8}".into());
        let found = first_break(&events);
        assert_eq!(found.as_ref().map(|b| b.sequence), Some(7));
        assert!(matches!(
            found.map(|b| b.kind),
            Some(BreakKind::HashMismatch { .. })
        ));
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let base = chain(1).remove(0);
        let mut variants = vec![base.clone(); 8];
        variants[0].sequence = 2;
        variants[1].version = 9;
        variants[2].time = Timestamp(0);
        variants[3].schema_version = 2;
        variants[4].metadata.actor = "mallory".into();
        variants[5].metadata.channel = "web".into();
        variants[6].metadata.correlation_id = Some(String::new());
        variants[7].ty = EventType::parse("test.other").unwrap_or_else(|e| panic!("{e}"));
        for v in variants {
            assert_ne!(compute_hash(&Hash::GENESIS, &v), base.hash, "{v:?}");
        }
    }

    #[test]
    fn a_removed_event_is_a_gap() {
        let mut events = chain(10);
        events.remove(4);
        let found = first_break(&events);
        assert_eq!(
            found.map(|b| (b.sequence, b.kind)),
            Some((
                6,
                BreakKind::Gap {
                    expected: 5,
                    found: 6,
                    stream: None
                }
            ))
        );
    }

    #[test]
    fn swapped_events_are_reported_as_reordered() {
        let mut events = chain(10);
        events.swap(3, 5);
        let found = first_break(&events);
        assert_eq!(found.as_ref().map(|b| b.sequence), Some(6));
        assert!(matches!(
            found.map(|b| b.kind),
            Some(BreakKind::Gap { .. } | BreakKind::Reordered { .. })
        ));
    }

    #[test]
    fn a_rehashed_forgery_breaks_the_link() {
        let mut events = chain(10);
        events[2].data = EventData::from_stored("{\"n\":99}".into());
        events[2].hash = compute_hash(&events[2].prev_hash, &events[2]);
        let found = first_break(&events);
        assert_eq!(found.as_ref().map(|b| b.sequence), Some(4));
        assert!(matches!(
            found.map(|b| b.kind),
            Some(BreakKind::BrokenLink { .. })
        ));
    }

    #[test]
    fn verification_can_start_mid_log() {
        let events = chain(10);
        let mut v = ChainVerifier::after(&events[4]);
        assert!(events[5..].iter().all(|e| v.check(e).is_ok()));
        assert_eq!(v.checked(), 5);
    }

    #[test]
    fn canonical_bytes_start_with_the_domain_tag_and_sequence() {
        let e = chain(1).remove(0);
        let bytes = canonical_bytes(&e);
        assert_eq!(&bytes[..16], b"signoff.event.v1");
        assert_eq!(&bytes[16..24], &1u64.to_be_bytes());
    }
}
