//! The decisions of one group commit, as a pure function shared by every backend.
//!
//! A backend locks the log's head, reads the current versions of the streams involved and the
//! idempotency keys already used, and hands them to [`plan_group`]. The plan says which appends
//! succeed, which conflict, which are repeats, and gives the rows to insert with their sequence
//! numbers and hashes. The backend then writes the rows and commits. Because the head stays locked
//! from the read to the commit, the plan is exactly what lands.

use std::collections::HashMap;

use signoff_core::{EventTypes, RecordedEvent, chain};

use crate::error::StoreError;
use crate::log::{AppendRequest, Appended, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, Tail};
use crate::row::from_db_int;

/// An idempotency key as stored: which append it belongs to and where that append landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key.
    pub key: String,
    /// The stream of the first append with this key.
    pub stream: String,
    /// Where that append landed.
    pub first_sequence: u64,
    /// Where that append ended.
    pub last_sequence: u64,
    /// The stream's version after that append.
    pub last_version: u64,
    /// The fingerprint of the request that first used the key, when it gave one.
    pub fingerprint: Option<String>,
    /// When the key was first used (microseconds; 0 for keys stored before this was kept).
    pub recorded_at: i64,
}

/// A stored key as both backends select it ([`KEY_COLUMNS`]).
pub type KeyRow = (String, String, i64, i64, i64, Option<String>, i64);

/// The columns of a [`KeyRow`], in order.
pub const KEY_COLUMNS: &str =
    "key, stream, first_sequence, last_sequence, last_version, fingerprint, recorded_at";

impl KeyRecord {
    /// A record as both backends select it ([`KEY_COLUMNS`]).
    #[must_use]
    pub fn from_row(
        (key, stream, first, last, version, fingerprint, recorded_at): KeyRow,
    ) -> (String, Self) {
        let record = Self {
            key: key.clone(),
            stream,
            first_sequence: from_db_int(first),
            last_sequence: from_db_int(last),
            last_version: from_db_int(version),
            fingerprint,
            recorded_at,
        };
        (key, record)
    }
}

impl KeyRecord {
    /// The first append's result, answered to a repeat.
    #[must_use]
    pub fn appended(&self) -> Appended {
        Appended {
            first_sequence: self.first_sequence,
            last_sequence: self.last_sequence,
            stream_version: self.last_version,
            deduplicated: true,
        }
    }
}

/// What one group commit writes and answers.
#[derive(Debug, Default)]
pub struct GroupPlan {
    /// Events to insert, in sequence order.
    pub rows: Vec<RecordedEvent>,
    /// Idempotency keys to insert.
    pub keys: Vec<KeyRecord>,
    /// One answer per request, in request order.
    pub outcomes: Vec<Result<Appended, StoreError>>,
    /// The head of the log after the commit.
    pub tail: Tail,
}

/// Checks everything about a request that needs no database: sizes, metadata, event types.
///
/// # Errors
/// [`StoreError::InvalidBatch`] or [`StoreError::Invalid`] naming the event at fault.
pub fn validate_request(request: &AppendRequest, types: &EventTypes) -> Result<(), StoreError> {
    if request.events.is_empty() {
        return Err(StoreError::InvalidBatch(
            "an append must carry at least one event".into(),
        ));
    }
    if request.events.len() > MAX_BATCH_EVENTS {
        return Err(StoreError::InvalidBatch(format!(
            "{} events in one append; the limit is {MAX_BATCH_EVENTS}",
            request.events.len()
        )));
    }
    let bytes: usize = request.events.iter().map(|e| e.data.as_str().len()).sum();
    if bytes > MAX_BATCH_BYTES {
        return Err(StoreError::InvalidBatch(format!(
            "{bytes} bytes of event data in one append; the limit is {MAX_BATCH_BYTES}"
        )));
    }
    for (i, event) in request.events.iter().enumerate() {
        let at = |source| StoreError::Invalid {
            event_index: Some(i),
            source,
        };
        types
            .check(event.ty.as_str(), event.schema_version)
            .map_err(at)?;
        event.metadata.validate().map_err(at)?;
    }
    Ok(())
}

/// Plans one group commit. `heads` holds the current version of every stream in `requests` that
/// has events; `known` the stored records of their idempotency keys. The events of successful
/// requests are moved out of `requests` into the plan's rows.
#[must_use]
pub fn plan_group(
    tail: Tail,
    heads: &HashMap<String, u64>,
    known: &HashMap<String, KeyRecord>,
    requests: &mut [AppendRequest],
    now: i64,
) -> GroupPlan {
    // Recorded time never goes backwards along the log, whatever the clocks of the writers do.
    let time = now.max(tail.time);
    let mut plan = GroupPlan {
        tail,
        ..GroupPlan::default()
    };
    let mut group_heads: HashMap<&str, u64> = HashMap::new();
    let mut group_keys: HashMap<String, usize> = HashMap::new();

    for request in requests.iter_mut() {
        let stream = request.stream.as_str();
        if let Some(key) = &request.idempotency_key {
            let seen = known
                .get(key.as_str())
                .or_else(|| group_keys.get(key.as_str()).map(|&i| &plan.keys[i]));
            if let Some(record) = seen {
                plan.outcomes.push(repeat_of(record, request));
                continue;
            }
        }
        let actual = group_heads
            .get(stream)
            .copied()
            .unwrap_or_else(|| heads.get(stream).copied().unwrap_or(0));
        if !request.expected.admits(actual) {
            plan.outcomes.push(Err(StoreError::Conflict {
                stream: request.stream.clone(),
                expected: request.expected,
                actual,
            }));
            continue;
        }
        let first_sequence = plan.tail.sequence + 1;
        let mut version = actual;
        for event in std::mem::take(&mut request.events) {
            version += 1;
            plan.tail.sequence += 1;
            let mut row = RecordedEvent {
                sequence: plan.tail.sequence,
                stream: request.stream.clone(),
                version,
                id: event.id,
                ty: event.ty,
                schema_version: event.schema_version,
                time: signoff_core::Timestamp(time),
                data: event.data,
                metadata: event.metadata,
                prev_hash: plan.tail.hash,
                hash: signoff_core::Hash::GENESIS,
            };
            row.hash = chain::compute_hash(&row.prev_hash, &row);
            plan.tail.hash = row.hash;
            plan.tail.time = time;
            plan.rows.push(row);
        }
        group_heads.insert(stream, version);
        let appended = Appended {
            first_sequence,
            last_sequence: plan.tail.sequence,
            stream_version: version,
            deduplicated: false,
        };
        if let Some(key) = &request.idempotency_key {
            group_keys.insert(key.as_str().to_owned(), plan.keys.len());
            plan.keys.push(KeyRecord {
                key: key.as_str().to_owned(),
                stream: stream.to_owned(),
                first_sequence,
                last_sequence: appended.last_sequence,
                last_version: version,
                fingerprint: request.fingerprint.clone(),
                recorded_at: time,
            });
        }
        plan.outcomes.push(Ok(appended));
    }
    plan
}

/// The answer to an append whose key was used before: the first result when it is the same
/// request (same stream, same fingerprint), a refusal otherwise.
fn repeat_of(record: &KeyRecord, request: &AppendRequest) -> Result<Appended, StoreError> {
    if record.stream != request.stream.as_str() || record.fingerprint != request.fingerprint {
        return Err(StoreError::IdempotencyKeyReused {
            key: record.key.clone(),
            first_stream: record.stream.clone(),
            stream: request.stream.clone(),
        });
    }
    Ok(record.appended())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::ExpectedVersion;
    use signoff_core::{
        EventData, EventId, EventType, IdempotencyKey, Metadata, NewEvent, StreamId,
    };

    fn request(stream: &str, expected: ExpectedVersion, n: usize) -> AppendRequest {
        let events = (0..n)
            .map(|i| NewEvent {
                id: EventId(uuid::Uuid::from_u128(i as u128)),
                ty: EventType::parse("t.x").unwrap_or_else(|e| panic!("{e}")),
                schema_version: 1,
                data: EventData::from_stored("{}".into()),
                metadata: Metadata::new("a", "cli"),
            })
            .collect();
        AppendRequest::new(
            StreamId::parse(stream).unwrap_or_else(|e| panic!("{e}")),
            expected,
            events,
        )
    }

    #[test]
    fn appends_in_one_group_chain_and_number_consecutively() {
        let mut reqs = vec![
            request("a", ExpectedVersion::NoStream, 2),
            request("b", ExpectedVersion::Any, 1),
        ];
        let plan = plan_group(Tail::EMPTY, &HashMap::new(), &HashMap::new(), &mut reqs, 5);
        let seqs: Vec<_> = plan
            .rows
            .iter()
            .map(|r| (r.sequence, r.stream.to_string(), r.version))
            .collect();
        assert_eq!(
            seqs,
            vec![(1, "a".into(), 1), (2, "a".into(), 2), (3, "b".into(), 1)]
        );
        let mut v = signoff_core::ChainVerifier::new();
        assert!(plan.rows.iter().all(|r| v.check(r).is_ok()));
        assert_eq!(plan.tail.sequence, 3);
    }

    #[test]
    fn second_writer_of_the_same_version_in_a_group_conflicts() {
        let mut reqs = vec![
            request("a", ExpectedVersion::Exact(4), 1),
            request("a", ExpectedVersion::Exact(4), 1),
        ];
        let heads = HashMap::from([("a".to_owned(), 4)]);
        let plan = plan_group(Tail::EMPTY, &heads, &HashMap::new(), &mut reqs, 0);
        assert!(plan.outcomes[0].is_ok());
        assert!(matches!(
            &plan.outcomes[1],
            Err(StoreError::Conflict { actual: 5, .. })
        ));
        assert_eq!(plan.rows.len(), 1);
    }

    #[test]
    fn a_repeated_key_in_the_same_group_returns_the_first_result() {
        let key = IdempotencyKey::parse("k1").unwrap_or_else(|e| panic!("{e}"));
        let mut reqs = vec![
            request("a", ExpectedVersion::Any, 1).idempotent(key.clone()),
            request("a", ExpectedVersion::Any, 1).idempotent(key),
        ];
        let plan = plan_group(Tail::EMPTY, &HashMap::new(), &HashMap::new(), &mut reqs, 0);
        let first = plan.outcomes[0].clone().ok();
        let second = plan.outcomes[1].clone().ok();
        assert_eq!(
            second.map(|a| (a.first_sequence, a.deduplicated)),
            Some((1, true))
        );
        assert_eq!(first.map(|a| a.deduplicated), Some(false));
        assert_eq!(plan.rows.len(), 1);
    }

    #[test]
    fn a_key_reused_for_another_request_is_refused_and_writes_nothing() {
        let key = IdempotencyKey::parse("k1").unwrap_or_else(|e| panic!("{e}"));
        let mut first = request("a", ExpectedVersion::Any, 1).idempotent(key.clone());
        first.fingerprint = Some("f1".into());
        let mut other = request("a", ExpectedVersion::Any, 1).idempotent(key.clone());
        other.fingerprint = Some("f2".into());
        let mut same = request("a", ExpectedVersion::Any, 1).idempotent(key);
        same.fingerprint = Some("f1".into());
        let mut reqs = vec![first, other, same];
        let plan = plan_group(Tail::EMPTY, &HashMap::new(), &HashMap::new(), &mut reqs, 0);
        assert!(matches!(
            plan.outcomes[1],
            Err(StoreError::IdempotencyKeyReused { .. })
        ));
        assert!(matches!(&plan.outcomes[2], Ok(a) if a.deduplicated));
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.keys[0].fingerprint.as_deref(), Some("f1"));
    }

    #[test]
    fn recorded_time_never_goes_backwards() {
        let tail = Tail {
            sequence: 7,
            hash: signoff_core::Hash::GENESIS,
            time: 1_000,
        };
        let mut reqs = vec![request("a", ExpectedVersion::Any, 1)];
        let plan = plan_group(tail, &HashMap::new(), &HashMap::new(), &mut reqs, 10);
        assert_eq!(plan.rows[0].time.0, 1_000);
        assert_eq!(plan.rows[0].sequence, 8);
    }

    #[test]
    fn empty_and_oversized_batches_are_refused() {
        let types = EventTypes::new().with("t.x", 1);
        assert!(matches!(
            validate_request(&request("a", ExpectedVersion::Any, 0), &types),
            Err(StoreError::InvalidBatch(_))
        ));
        let too_many = request("a", ExpectedVersion::Any, MAX_BATCH_EVENTS + 1);
        assert!(matches!(
            validate_request(&too_many, &types),
            Err(StoreError::InvalidBatch(_))
        ));
        let unknown = validate_request(&request("a", ExpectedVersion::Any, 2), &EventTypes::new());
        assert!(matches!(
            unknown,
            Err(StoreError::Invalid {
                event_index: Some(0),
                ..
            })
        ));
    }
}
