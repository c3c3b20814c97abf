//! The events this process committed last, kept in memory for the readers that follow the log.
//!
//! A subscriber woken by a commit used to read the events back through SQL: a hop to a reader
//! connection's thread and back through the runtime's queue, behind every appending task. Under
//! 64 appending writers that put its p99 past 5 ms. The writer now leaves each group's rows here,
//! as committed, before it tells anyone of the commit; [`crate::EventLog::read_recent`] answers
//! from them while it can and from the database otherwise.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use signoff_core::RecordedEvent;

/// The most events kept (a few MiB).
pub(crate) const CAPACITY: usize = 8_192;

/// The last [`CAPACITY`] events this process committed, in sequence order (with gaps where
/// other processes committed).
#[derive(Default)]
pub(crate) struct Recent(Mutex<VecDeque<RecordedEvent>>);

impl Recent {
    /// Keeps a group's rows, just committed, in sequence order.
    pub(crate) fn push(&self, rows: Vec<RecordedEvent>) {
        let mut events = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        events.extend(rows);
        let over = events.len().saturating_sub(CAPACITY);
        events.drain(..over);
    }

    /// Events from `after + 1` on, as long as they follow each other, at most `limit`; `None`
    /// when `after + 1` is not here (too old, not committed yet, or another process's).
    pub(crate) fn read(&self, after: u64, limit: usize) -> Option<Vec<RecordedEvent>> {
        let events = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let start = events
            .binary_search_by_key(&(after + 1), |e| e.sequence)
            .ok()?;
        let mut next = after + 1;
        let run: Vec<RecordedEvent> = events
            .range(start..)
            .take(limit)
            .take_while(|e| {
                let follows = e.sequence == next;
                next += 1;
                follows
            })
            .cloned()
            .collect();
        Some(run)
    }
}

#[cfg(test)]
mod tests {
    use signoff_core::{
        EventData, EventId, EventType, Hash, Metadata, RecordedEvent, StreamId, Timestamp,
    };

    use super::{CAPACITY, Recent};

    fn at(sequence: u64) -> RecordedEvent {
        RecordedEvent {
            sequence,
            stream: StreamId::parse("s").unwrap_or_else(|e| panic!("{e}")),
            version: sequence,
            id: EventId(uuid::Uuid::nil()),
            ty: EventType::parse("test.happened").unwrap_or_else(|e| panic!("{e}")),
            schema_version: 1,
            time: Timestamp(0),
            data: EventData::from_json_text("{}").unwrap_or_else(|e| panic!("{e}")),
            metadata: Metadata::new("alice", "cli"),
            prev_hash: Hash::GENESIS,
            hash: Hash::GENESIS,
        }
    }

    fn sequences(events: Option<Vec<RecordedEvent>>) -> Option<Vec<u64>> {
        events.map(|e| e.iter().map(|e| e.sequence).collect())
    }

    #[test]
    fn a_read_stops_at_another_process_s_events_and_at_what_is_not_kept() {
        let recent = Recent::default();
        // 4 and 5 were committed by another process.
        recent.push(vec![at(1), at(2), at(3)]);
        recent.push(vec![at(6), at(7)]);
        assert_eq!(sequences(recent.read(0, 10)), Some(vec![1, 2, 3]));
        assert_eq!(sequences(recent.read(1, 1)), Some(vec![2]));
        assert_eq!(sequences(recent.read(3, 10)), None, "4 is not ours");
        assert_eq!(sequences(recent.read(5, 10)), Some(vec![6, 7]));
        assert_eq!(sequences(recent.read(7, 10)), None, "nothing after 7 yet");
    }

    #[test]
    fn only_the_last_events_are_kept() {
        let recent = Recent::default();
        let total = CAPACITY as u64 + 100;
        for sequence in 1..=total {
            recent.push(vec![at(sequence)]);
        }
        assert_eq!(sequences(recent.read(0, 10)), None, "the first were let go");
        assert_eq!(
            sequences(recent.read(total - 2, 10)),
            Some(vec![total - 1, total])
        );
        assert_eq!(sequences(recent.read(100, 1)), Some(vec![101]));
    }
}
