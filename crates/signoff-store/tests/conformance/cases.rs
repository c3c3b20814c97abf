//! The cases. Each takes a fresh log and says, in its name, the behaviour it holds the backend to.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use signoff_core::{BreakKind, EventData, EventType, IdempotencyKey, StreamId};
use signoff_store::{
    AppendRequest, Appended, EventLog, ExpectedVersion, MAX_BATCH_EVENTS, ModelQuery, ModelRow,
    ModelWrite, ModelWritten, Page, StoreError, read_all_stream, subscribe, verify,
};
use tokio::sync::Barrier;

use crate::harness::{TestLog, event, events};

fn stream(name: &str) -> StreamId {
    StreamId::parse(name).expect("valid stream id")
}

async fn append(
    log: &Arc<dyn EventLog>,
    s: &str,
    expected: ExpectedVersion,
    n: usize,
) -> Result<Appended, StoreError> {
    log.append(AppendRequest::new(stream(s), expected, events(n)))
        .await
}

async fn all_events(log: &Arc<dyn EventLog>) -> Vec<signoff_core::RecordedEvent> {
    read_all_stream(log.clone(), 0)
        .map(|e| e.expect("readable"))
        .collect()
        .await
}

/// Asserts the log holds sequences 1..=n exactly, each stream's versions 1.. in log order,
/// recorded times non-decreasing, and an intact chain.
async fn assert_log_consistent(log: &Arc<dyn EventLog>, n: u64) {
    let all = all_events(log).await;
    let seqs: Vec<u64> = all.iter().map(|e| e.sequence).collect();
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "global order must be 1..=n without gaps"
    );
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for e in &all {
        let v = versions.entry(e.stream.as_str()).or_insert(0);
        assert_eq!(
            e.version,
            *v + 1,
            "stream {} out of order at sequence {}",
            e.stream,
            e.sequence
        );
        *v = e.version;
    }
    assert!(
        all.windows(2).all(|w| w[0].time <= w[1].time),
        "recorded time went backwards"
    );
    let report = verify(log.clone(), 1).await.expect("verify runs");
    assert!(report.is_intact(), "chain broken: {:?}", report.broken);
    assert_eq!(report.checked, n);
}

pub async fn appended_events_read_back_exactly(t: TestLog) {
    let log = &t.log;
    let mut sent = events(3);
    sent[1] = event("{ \"spaced\" : [1, 2.50, \"é\"] }");
    sent[2].metadata.correlation_id = Some("corr-1".into());
    sent[2].metadata.causation_id = Some("cause-1".into());
    let appended = log
        .append(AppendRequest::new(
            stream("dpia/1"),
            ExpectedVersion::NoStream,
            sent.clone(),
        ))
        .await;
    assert_eq!(
        appended.expect("append"),
        Appended {
            first_sequence: 1,
            last_sequence: 3,
            stream_version: 3,
            deduplicated: false
        }
    );
    append(log, "other", ExpectedVersion::Any, 1)
        .await
        .expect("append");

    let read = log
        .read_stream(&stream("dpia/1"), 2, 10)
        .await
        .expect("read stream");
    assert_eq!(
        read.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![2, 3]
    );
    for (got, want) in read.iter().zip(&sent[1..]) {
        assert_eq!(got.id, want.id);
        assert_eq!(got.ty, want.ty);
        assert_eq!(got.data, want.data, "data must come back byte for byte");
        assert_eq!(got.metadata, want.metadata);
    }
    let page = log.read_all(1, 2).await.expect("read all");
    assert_eq!(
        page.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(log.tail().await.expect("tail").sequence, 4);
    let json: serde_json::Value =
        serde_json::from_str(&read[1].to_cloudevent_json()).expect("CloudEvents JSON");
    assert_eq!(json["specversion"], "1.0");
    assert_eq!(json["type"], "test.happened");
    assert_eq!(json["streamid"], "dpia/1");
    assert_eq!(json["correlationid"], "corr-1");
    assert_eq!(json["data"], serde_json::json!({"n": 2}));
    assert_log_consistent(log, 4).await;
    t.cleanup().await;
}

pub async fn a_conflict_names_the_stream_and_both_versions(t: TestLog) {
    let log = &t.log;
    append(log, "s", ExpectedVersion::NoStream, 2)
        .await
        .expect("first append");
    let err = append(log, "s", ExpectedVersion::NoStream, 1)
        .await
        .expect_err("stream exists");
    assert_eq!(
        err.to_string(),
        "stream s is at version 2, but the append expected no stream (version 0)"
    );
    let err = append(log, "s", ExpectedVersion::Exact(5), 1)
        .await
        .expect_err("wrong version");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: ExpectedVersion::Exact(5),
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    append(log, "s", ExpectedVersion::Exact(2), 1)
        .await
        .expect("right version");
    assert_log_consistent(log, 3).await;
    t.cleanup().await;
}

pub async fn concurrent_writers_to_one_stream_exactly_one_wins_each_version(t: TestLog) {
    const WRITERS: usize = 8;
    const ROUNDS: u64 = 15;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (log, barrier) = (t.log.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut won = Vec::new();
                for round in 0..ROUNDS {
                    barrier.wait().await;
                    match append(&log, "contended", ExpectedVersion::Exact(round), 1).await {
                        Ok(a) => won.push(a.stream_version),
                        Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, round + 1),
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                won
            })
        })
        .collect();
    let mut winners: Vec<u64> = Vec::new();
    for task in tasks {
        winners.extend(task.await.expect("writer"));
    }
    winners.sort_unstable();
    assert_eq!(
        winners,
        (1..=ROUNDS).collect::<Vec<_>>(),
        "exactly one writer wins each version"
    );
    assert_log_consistent(&t.log, ROUNDS).await;
    t.cleanup().await;
}

async fn hammer(
    logs: Vec<Arc<dyn EventLog>>,
    writers_per_log: usize,
    appends: usize,
) -> Vec<Vec<u64>> {
    let mut tasks = Vec::new();
    for (l, log) in logs.into_iter().enumerate() {
        for w in 0..writers_per_log {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::with_capacity(appends);
                for i in 0..appends {
                    let name = format!("s{}", (l * 7919 + w * 31 + i * 17) % 40);
                    let a = append(&log, &name, ExpectedVersion::Any, 1 + i % 3)
                        .await
                        .expect("append");
                    seqs.extend(a.first_sequence..=a.last_sequence);
                }
                seqs
            }));
        }
    }
    let mut per_writer = Vec::new();
    for task in tasks {
        per_writer.push(task.await.expect("writer"));
    }
    per_writer
}

fn assert_commit_order(per_writer: &[Vec<u64>]) -> u64 {
    for seqs in per_writer {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one writer's appends must commit in order"
        );
    }
    let all: BTreeSet<u64> = per_writer.iter().flatten().copied().collect();
    let total = per_writer.iter().map(Vec::len).sum::<usize>() as u64;
    assert_eq!(all.len() as u64, total, "a sequence was handed out twice");
    assert_eq!(
        all.iter().copied().collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    total
}

pub async fn concurrent_writers_to_many_streams_keep_the_order_gap_free_and_chained(t: TestLog) {
    let per_writer = hammer(vec![t.log.clone()], 24, 40).await;
    let total = assert_commit_order(&per_writer);
    assert_log_consistent(&t.log, total).await;
    t.cleanup().await;
}

pub async fn two_writers_on_one_database_keep_the_order_gap_free_and_chained(t: TestLog) {
    let second = t.open_again().await;
    let per_writer = hammer(vec![t.log.clone(), second.clone()], 12, 40).await;
    let total = assert_commit_order(&per_writer);
    assert_log_consistent(&t.log, total).await;
    assert_log_consistent(&second, total).await;
    t.cleanup().await;
}

pub async fn subscribers_see_every_event_once_during_heavy_writes(t: TestLog) {
    const WRITERS: usize = 16;
    const APPENDS: usize = 150;
    let total = (WRITERS * APPENDS) as u64;
    let collect = |after: u64| {
        let log = t.log.clone();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(subscribe(log, after));
            let mut seen = Vec::new();
            while seen.last().copied().unwrap_or(after) < total {
                let next =
                    tokio::time::timeout(std::time::Duration::from_secs(30), stream.next()).await;
                let event = next
                    .expect("subscriber stalled")
                    .expect("stream ended")
                    .expect("event");
                seen.push(event.sequence);
            }
            seen
        })
    };
    let from_start = collect(0);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = t.log.clone();
            tokio::spawn(async move {
                for i in 0..APPENDS {
                    append(&log, &format!("w{w}-{}", i % 5), ExpectedVersion::Any, 1)
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    // A late subscriber catches up from a checkpoint while the writes go on.
    while t.log.tail().await.expect("tail").sequence < total / 3 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let from_checkpoint = collect(500);
    for w in writers {
        w.await.expect("writer");
    }
    assert_eq!(
        from_start.await.expect("subscriber"),
        (1..=total).collect::<Vec<_>>()
    );
    assert_eq!(
        from_checkpoint.await.expect("subscriber"),
        (501..=total).collect::<Vec<_>>()
    );
    t.cleanup().await;
}

pub async fn a_repeated_idempotency_key_returns_the_first_result_and_writes_nothing(t: TestLog) {
    let log = &t.log;
    let key = IdempotencyKey::parse("cmd-7f3a").expect("key");
    let request =
        AppendRequest::new(stream("a"), ExpectedVersion::Any, events(2)).idempotent(key.clone());
    let first = log.append(request.clone()).await.expect("first");
    assert!(!first.deduplicated);
    let again = log.append(request).await.expect("retry");
    assert_eq!(
        again,
        Appended {
            deduplicated: true,
            ..first.clone()
        }
    );

    // Many retries racing each other: one writes, all get the same answer.
    let key2 = IdempotencyKey::parse("cmd-race").expect("key");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let log = log.clone();
            let request = AppendRequest::new(stream("b"), ExpectedVersion::Any, events(1))
                .idempotent(key2.clone());
            tokio::spawn(async move { log.append(request).await.expect("append") })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    assert_eq!(answers.iter().filter(|a| !a.deduplicated).count(), 1);
    assert!(
        answers
            .iter()
            .all(|a| a.first_sequence == answers[0].first_sequence)
    );

    let err = log
        .append(AppendRequest::new(stream("c"), ExpectedVersion::Any, events(1)).idempotent(key))
        .await;
    assert!(
        matches!(err, Err(StoreError::IdempotencyKeyReused { .. })),
        "{err:?}"
    );
    assert_log_consistent(log, 3).await;
    t.cleanup().await;
}

pub async fn a_key_is_bound_to_its_request_and_expired_keys_of_a_prefix_can_be_forgotten(
    t: TestLog,
) {
    let log = &t.log;
    let keyed = |name: &str, key: &str, fingerprint: &str| {
        let mut request = AppendRequest::new(stream(name), ExpectedVersion::Any, events(1))
            .idempotent(IdempotencyKey::parse(key).expect("key"));
        request.fingerprint = Some(fingerprint.to_owned());
        request
    };
    let first = log
        .append(keyed("a", "client:k1", "f1"))
        .await
        .expect("first");
    let stored = log
        .idempotent_result(&IdempotencyKey::parse("client:k1").expect("key"))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.fingerprint.as_deref(), Some("f1"));
    assert_eq!(
        stored.appended(),
        Appended {
            deduplicated: true,
            ..first
        }
    );
    assert!(stored.recorded_at > 0);
    let other = log.append(keyed("a", "client:k1", "f2")).await;
    assert!(
        matches!(other, Err(StoreError::IdempotencyKeyReused { .. })),
        "{other:?}"
    );
    assert!(
        log.append(keyed("a", "client:k1", "f1"))
            .await
            .expect("retry")
            .deduplicated
    );
    log.append(keyed("b", "engine:k1", "e"))
        .await
        .expect("engine key");
    assert_log_consistent(log, 2).await;

    // Only keys of the prefix, and only those recorded before the moment, are forgotten.
    assert_eq!(
        log.forget_idempotency_keys("client:", stored.recorded_at)
            .await
            .expect("forget"),
        0
    );
    assert_eq!(
        log.forget_idempotency_keys("client:", i64::MAX)
            .await
            .expect("forget"),
        1
    );
    let again = log
        .append(keyed("a", "client:k1", "f2"))
        .await
        .expect("free again");
    assert!(!again.deduplicated);
    assert!(
        log.idempotent_result(&IdempotencyKey::parse("engine:k1").expect("key"))
            .await
            .expect("read")
            .is_some()
    );
    assert_log_consistent(log, 3).await;
    t.cleanup().await;
}

pub async fn the_database_refuses_update_and_delete(t: TestLog) {
    append(&t.log, "a", ExpectedVersion::Any, 3)
        .await
        .expect("append");
    let update = t
        .raw("UPDATE events SET data = '{}' WHERE sequence = 2")
        .await;
    assert!(
        update.as_ref().is_err_and(|e| e.contains("append-only")),
        "{update:?}"
    );
    let delete = t.raw("DELETE FROM events WHERE sequence = 3").await;
    assert!(
        delete.as_ref().is_err_and(|e| e.contains("append-only")),
        "{delete:?}"
    );
    assert_log_consistent(&t.log, 3).await;
    t.cleanup().await;
}

pub async fn verify_finds_a_tampered_row_at_its_sequence(t: TestLog) {
    append(&t.log, "a", ExpectedVersion::Any, 30)
        .await
        .expect("append");
    append(&t.log, "b", ExpectedVersion::Any, 20)
        .await
        .expect("append");
    t.drop_protection().await;
    // One byte: {"n":2} becomes {"n":3}.
    let changed = t
        .raw("UPDATE events SET data = replace(data, '2', '3') WHERE sequence = 23")
        .await;
    assert_eq!(changed, Ok(1));
    let report = verify(t.log.clone(), 1).await.expect("verify runs");
    let broken = report.broken.expect("tampering must be found");
    assert_eq!(broken.sequence, 23);
    assert!(
        matches!(broken.kind, BreakKind::HashMismatch { .. }),
        "{broken:?}"
    );
    assert_eq!(report.checked, 22);
    t.cleanup().await;
}

pub async fn verify_finds_removed_trailing_events(t: TestLog) {
    append(&t.log, "a", ExpectedVersion::Any, 10)
        .await
        .expect("append");
    t.drop_protection().await;
    assert_eq!(t.raw("DELETE FROM events WHERE sequence > 8").await, Ok(2));
    let broken = verify(t.log.clone(), 1)
        .await
        .expect("verify")
        .broken
        .expect("truncation must be found");
    assert_eq!(broken.kind, BreakKind::HeadMismatch { head: 10, last: 8 });
    t.cleanup().await;
}

pub async fn verify_can_start_mid_log(t: TestLog) {
    append(&t.log, "a", ExpectedVersion::Any, 10)
        .await
        .expect("append");
    let report = verify(t.log.clone(), 6).await.expect("verify");
    assert!(report.is_intact(), "{:?}", report.broken);
    assert_eq!((report.checked, report.last_sequence), (5, Some(10)));
    t.cleanup().await;
}

pub async fn bad_input_is_refused_and_writes_nothing(t: TestLog) {
    let log = &t.log;
    append(log, "a", ExpectedVersion::Any, 1)
        .await
        .expect("append");
    let before = log.tail().await.expect("tail");

    let empty = append(log, "a", ExpectedVersion::Any, 0).await;
    assert!(
        matches!(empty, Err(StoreError::InvalidBatch(_))),
        "{empty:?}"
    );

    let mut unknown = events(3);
    unknown[1].ty = EventType::parse("test.unheard_of").expect("well-formed");
    let err = log
        .append(AppendRequest::new(
            stream("a"),
            ExpectedVersion::Any,
            unknown,
        ))
        .await
        .expect_err("unknown type");
    assert_eq!(
        err.to_string(),
        "append refused (event 1 of the batch): unknown event type \"test.unheard_of\""
    );

    let mut future = events(2);
    future[0].schema_version = 9;
    let err = log
        .append(AppendRequest::new(
            stream("a"),
            ExpectedVersion::Any,
            future,
        ))
        .await
        .expect_err("version");
    assert!(err.to_string().contains("no schema version 9"), "{err}");

    let too_many = append(log, "a", ExpectedVersion::Any, MAX_BATCH_EVENTS + 1).await;
    assert!(
        matches!(too_many, Err(StoreError::InvalidBatch(ref m)) if m.contains("1001 events")),
        "{too_many:?}"
    );

    let mut anonymous = events(1);
    anonymous[0].metadata.actor = String::new();
    let err = log
        .append(AppendRequest::new(
            stream("a"),
            ExpectedVersion::Any,
            anonymous,
        ))
        .await
        .expect_err("actor");
    assert!(err.to_string().contains("invalid actor"), "{err}");

    assert!(StreamId::parse("").is_err() && StreamId::parse("x".repeat(201)).is_err());
    assert!(EventData::from_json_text("{not json").is_err());

    assert_eq!(
        log.tail().await.expect("tail"),
        before,
        "a refused append must write nothing"
    );
    assert_log_consistent(log, 1).await;
    t.cleanup().await;
}

pub async fn a_reopened_log_continues_the_chain(t: TestLog) {
    append(&t.log, "a", ExpectedVersion::Any, 5)
        .await
        .expect("append");
    let reopened = t.open_again().await;
    assert_eq!(reopened.tail().await.expect("tail").sequence, 5);
    let a = append(&reopened, "a", ExpectedVersion::Exact(5), 2)
        .await
        .expect("append after reopen");
    assert_eq!((a.first_sequence, a.stream_version), (6, 7));
    assert_log_consistent(&reopened, 7).await;
    t.cleanup().await;
}

pub async fn reading_by_type_returns_only_that_type_in_order(t: TestLog) {
    // One type the store indexes, one it finds by reading the log: both answer the same way.
    let log = &t.log;
    let other = EventType::parse(crate::harness::OTHER_TYPE).expect("valid type");
    let indexed = EventType::parse(crate::harness::INDEXED_TYPE).expect("valid type");
    for i in 0..5 {
        let mut batch = events(3);
        batch[1].ty = other.clone();
        batch[2].ty = indexed.clone();
        log.append(AppendRequest::new(
            stream(&format!("s/{i}")),
            ExpectedVersion::NoStream,
            batch,
        ))
        .await
        .expect("append");
    }
    for (ty, sequences) in [(&other, [2, 5, 8, 11, 14]), (&indexed, [3, 6, 9, 12, 15])] {
        let all = log.read_type(ty, 0, 100).await.expect("read by type");
        assert_eq!(
            all.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            sequences,
            "{ty}"
        );
        assert!(all.iter().all(|e| &e.ty == ty));
        let page = log
            .read_type(ty, sequences[1], 2)
            .await
            .expect("read a page");
        assert_eq!(
            page.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            sequences[2..4],
            "{ty}"
        );
    }
    t.cleanup().await;
}

pub async fn commit_hooks_run_in_sequence_order_before_anyone_is_answered(t: TestLog) {
    // Each hook notes where its append landed. Whoever is answered must find every earlier
    // append already noted: that is what lets a process fold its own writes in order, from
    // memory, instead of reading back what another waiter was told but has not noted yet.
    let told = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let mut tasks = Vec::new();
    for w in 0..24_usize {
        let log = t.log.clone();
        let told = told.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20_usize {
                let noted = told.clone();
                let request = AppendRequest::new(
                    stream(&format!("h{}", (w * 31 + i) % 16)),
                    ExpectedVersion::Any,
                    events(1 + i % 3),
                );
                let appended = log
                    .append_then(
                        request,
                        Box::new(move |a: &Appended| {
                            // A slow hook: a writer that answered without waiting for the
                            // hooks would be caught answering before this one is noted.
                            std::thread::sleep(std::time::Duration::from_millis(1));
                            noted.lock().unwrap().push(a.first_sequence);
                        }),
                    )
                    .await
                    .expect("append");
                let told = told.lock().unwrap();
                assert!(
                    told.contains(&appended.first_sequence),
                    "answered before its own hook ran"
                );
                let earlier = told
                    .iter()
                    .filter(|s| **s < appended.first_sequence)
                    .count();
                let before_me = appended.first_sequence - 1;
                // Every sequence before mine belongs to an append of this test; those appends
                // hold 1 to 3 events each, so at least before_me / 3 of them were noted.
                assert!(
                    earlier as u64 * 3 >= before_me,
                    "answered at {} while only {earlier} earlier appends were told",
                    appended.first_sequence
                );
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let told = told.lock().unwrap().clone();
    assert_eq!(told.len(), 24 * 20, "every hook ran once");
    assert!(
        told.windows(2).all(|w| w[0] < w[1]),
        "hooks ran out of sequence order: {told:?}"
    );
    t.cleanup().await;
}

fn model_row(model: &str, key: &str, tag: Option<&str>, body: &str) -> ModelRow {
    ModelRow {
        model: model.into(),
        key: key.into(),
        tag: tag.map(Into::into),
        sort: Some(7),
        body: body.into(),
    }
}

fn model_write(since: u64, position: u64, clear: &[&str], rows: Vec<ModelRow>) -> ModelWrite {
    ModelWrite {
        group: "g".into(),
        since,
        position,
        clear: clear.iter().map(|m| (*m).to_owned()).collect(),
        upserts: rows,
    }
}

async fn model_keys(log: &Arc<dyn EventLog>, model: &str, tag: Option<&str>) -> Vec<String> {
    let query = ModelQuery {
        model,
        tag,
        from: if tag.is_some() {
            Page::NewestBefore(None)
        } else {
            Page::KeysAfter("")
        },
        limit: 100,
    };
    let rows = log.model_rows(query).await.expect("rows");
    let mut keys: Vec<String> = rows.into_iter().map(|r| r.key).collect();
    keys.sort();
    keys
}

pub async fn read_models_move_forward_together_and_a_reset_empties_them(t: TestLog) {
    let log = &t.log;
    assert_eq!(log.model_checkpoint("g").await.unwrap(), 0);
    let first = vec![
        model_row("instances", "b", Some("running"), "{\"v\":1}"),
        model_row("instances", "a", Some("ended"), "{}"),
        model_row("people", "x", None, "{}"),
        // The same key twice in one write: the last one counts.
        model_row("instances", "b", Some("running"), "{\"v\":2}"),
    ];
    let written = log.write_models(model_write(0, 10, &[], first)).await;
    assert_eq!(written.unwrap(), ModelWritten::Written);
    assert_eq!(log.model_checkpoint("g").await.unwrap(), 10);
    assert_eq!(model_keys(log, "instances", None).await, ["a", "b"]);
    assert_eq!(model_keys(log, "instances", Some("running")).await, ["b"]);
    // One tag in key order would walk the whole model: refused.
    let by_key = ModelQuery {
        model: "instances",
        tag: Some("running"),
        from: Page::KeysAfter(""),
        limit: 10,
    };
    assert!(log.model_rows(by_key).await.is_err());
    let b = log
        .model_row("instances", "b")
        .await
        .unwrap()
        .expect("row b");
    assert_eq!(b.body, "{\"v\":2}");
    assert_eq!(b.sort, Some(7));

    // Another writer already past this position: nothing is written.
    let behind = model_write(0, 8, &[], vec![model_row("instances", "c", None, "{}")]);
    assert_eq!(
        log.write_models(behind).await.unwrap(),
        ModelWritten::Behind { stored: 10 }
    );
    // A writer whose changes count from past the stored rows would leave a gap.
    let gap = model_write(12, 20, &[], vec![model_row("instances", "c", None, "{}")]);
    assert_eq!(
        log.write_models(gap).await.unwrap(),
        ModelWritten::Stale { stored: 10 }
    );
    assert_eq!(model_keys(log, "instances", None).await, ["a", "b"]);

    // A model rewritten whole; a row moved to another tag.
    let next = vec![
        model_row("people", "y", None, "{}"),
        model_row("instances", "b", Some("ended"), "{}"),
    ];
    let written = log
        .write_models(model_write(10, 15, &["people"], next))
        .await;
    assert_eq!(written.unwrap(), ModelWritten::Written);
    assert_eq!(model_keys(log, "people", None).await, ["y"]);
    assert_eq!(
        model_keys(log, "instances", Some("ended")).await,
        ["a", "b"]
    );
    let page = ModelQuery {
        model: "instances",
        tag: None,
        from: Page::KeysAfter("a"),
        limit: 1,
    };
    let page: Vec<String> = log
        .model_rows(page)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(page, ["b"]);
    // Newest first: by sort, highest first, then key; paged after the last one seen.
    let dated = vec![
        ModelRow {
            sort: Some(30),
            ..model_row("dated", "x", Some("t"), "{}")
        },
        ModelRow {
            sort: Some(10),
            ..model_row("dated", "y", Some("t"), "{}")
        },
        ModelRow {
            sort: Some(30),
            ..model_row("dated", "z", Some("u"), "{}")
        },
    ];
    let written = log.write_models(model_write(15, 16, &[], dated)).await;
    assert_eq!(written.unwrap(), ModelWritten::Written);
    let newest = |tag: Option<&'static str>, before: Option<(i64, &'static str)>| {
        let log = log.clone();
        async move {
            let query = ModelQuery {
                model: "dated",
                tag,
                from: Page::NewestBefore(before),
                limit: 2,
            };
            let rows = log.model_rows(query).await.unwrap();
            rows.into_iter().map(|r| r.key).collect::<Vec<_>>()
        }
    };
    assert_eq!(newest(None, None).await, ["z", "x"]);
    assert_eq!(newest(None, Some((30, "x"))).await, ["y"]);
    assert_eq!(newest(Some("t"), None).await, ["x", "y"]);

    log.reset_models("g", &["instances", "people"])
        .await
        .unwrap();
    assert_eq!(log.model_checkpoint("g").await.unwrap(), 0);
    assert!(model_keys(log, "instances", None).await.is_empty());
    assert!(log.model_row("people", "y").await.unwrap().is_none());
}
