//! The conformance suite: every case runs, unchanged, against SQLite and PostgreSQL.
//!
//! PostgreSQL cases use `SIGNOFF_TEST_DATABASE_URL`, each in a schema of its own; without the
//! variable they print that they were skipped (`.ci/run` always sets it).
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

mod cases;
mod harness;

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::cases::$case(crate::harness::TestLog::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(log) = crate::harness::TestLog::postgres().await {
                        crate::cases::$case(log).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    appended_events_read_back_exactly,
    a_conflict_names_the_stream_and_both_versions,
    concurrent_writers_to_one_stream_exactly_one_wins_each_version,
    concurrent_writers_to_many_streams_keep_the_order_gap_free_and_chained,
    two_writers_on_one_database_keep_the_order_gap_free_and_chained,
    subscribers_see_every_event_once_during_heavy_writes,
    a_repeated_idempotency_key_returns_the_first_result_and_writes_nothing,
    a_key_is_bound_to_its_request_and_expired_keys_of_a_prefix_can_be_forgotten,
    the_database_refuses_update_and_delete,
    verify_finds_a_tampered_row_at_its_sequence,
    verify_finds_removed_trailing_events,
    verify_can_start_mid_log,
    bad_input_is_refused_and_writes_nothing,
    a_reopened_log_continues_the_chain,
    reading_by_type_returns_only_that_type_in_order,
    commit_hooks_run_in_sequence_order_before_anyone_is_answered,
    read_models_move_forward_together_and_a_reset_empties_them,
);

/// What only the server backend does.
mod postgres_only {
    use signoff_core::StreamId;
    use signoff_store::{AppendRequest, ExpectedVersion, verify};
    use sqlx::Connection;

    use crate::harness::{TestLog, events};

    /// A database restart, a failover or `pg_terminate_backend` kills the writer's connection:
    /// the writer reconnects, the next appends succeed, and every acknowledged event is there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_reconnects_after_its_connection_is_killed_and_loses_nothing() {
        let Some(t) = TestLog::postgres().await else {
            return;
        };
        let stream = StreamId::parse("s").unwrap();
        let append = |n| AppendRequest::new(stream.clone(), ExpectedVersion::Any, events(n));
        t.log.append(append(3)).await.unwrap();

        let url = std::env::var("SIGNOFF_TEST_DATABASE_URL").unwrap();
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        let name = format!(
            "{} {}",
            signoff_store::WRITER_APPLICATION,
            t.schema().unwrap()
        );
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&name)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert_eq!(killed, [true], "the writer's connection is named {name:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;

        for _ in 0..5 {
            t.log
                .append(append(2))
                .await
                .expect("an append after the connection was killed");
        }
        let all = t.log.read_all(0, 100).await.unwrap();
        assert_eq!(all.len(), 13, "every acknowledged event is in the log");
        let report = verify(t.log.clone(), 1).await.unwrap();
        assert!(report.is_intact(), "{:?}", report.broken);
        t.cleanup().await;
    }
}

/// What only the embedded backend does.
mod sqlite_only {
    use std::sync::Arc;
    use std::time::Duration;

    use signoff_core::StreamId;
    use signoff_store::{AppendRequest, EventLog, ExpectedVersion, OpenOptions, SqliteLog};

    use crate::harness::{events, types};

    /// The read models live in `<log>-models`; beside another log (a new one, or the log put
    /// back from a backup) they are forgotten, not trusted; beside their own they are kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_models_written_from_another_log_are_forgotten() {
        use signoff_store::{ModelRow, ModelWrite};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let open = || async {
            SqliteLog::open(&path, OpenOptions::new(types()))
                .await
                .unwrap()
        };
        let written = |log: SqliteLog| async move {
            let stream = StreamId::parse("s").unwrap();
            log.append(AppendRequest::new(stream, ExpectedVersion::Any, events(3)))
                .await
                .unwrap();
            let write = ModelWrite {
                group: "g".into(),
                since: 0,
                position: 3,
                clear: Vec::new(),
                upserts: vec![ModelRow {
                    model: "m".into(),
                    key: "k".into(),
                    tag: None,
                    sort: None,
                    body: "{}".into(),
                }],
            };
            log.write_models(write).await.unwrap();
            log.close().await;
        };
        written(open().await).await;
        assert!(dir.path().join("log.db-models").exists());
        assert!(
            !dir.path().join("log.db-models-wal").exists(),
            "closed, the models' file is left whole, without its WAL"
        );
        let reopened = open().await;
        assert_eq!(reopened.model_checkpoint("g").await.unwrap(), 3, "kept");
        assert!(reopened.model_row("m", "k").await.unwrap().is_some());
        reopened.close().await;
        drop(reopened);

        // Another log in the same place, with as many events: other ids.
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("log.db{suffix}")));
        }
        let other = open().await;
        other
            .append(AppendRequest::new(
                StreamId::parse("t").unwrap(),
                ExpectedVersion::Any,
                events(3),
            ))
            .await
            .unwrap();
        other.close().await;
        drop(other);
        let beside_another = open().await;
        assert_eq!(beside_another.model_checkpoint("g").await.unwrap(), 0);
        assert!(beside_another.model_row("m", "k").await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_copied_back_into_the_database_file_while_the_log_is_open() {
        // The writer never checkpoints inside a commit; a thread beside it does. Without it
        // every event would stay in the WAL until the last connection closed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let log: Arc<dyn EventLog> = Arc::new(
            SqliteLog::open(&path, OpenOptions::new(types()))
                .await
                .unwrap(),
        );
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        for i in 0..100 {
            let stream = StreamId::parse(format!("s{}", i % 7)).unwrap();
            log.append(AppendRequest::new(stream, ExpectedVersion::Any, events(50)))
                .await
                .unwrap();
        }
        // 5,000 events: at least two checkpoints were asked for.
        let mut grown = size();
        for _ in 0..100 {
            if grown > before + 256 * 1024 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            grown = size();
        }
        assert!(
            grown > before + 256 * 1024,
            "the database file stayed at {grown} bytes (was {before}): nothing was checkpointed"
        );
        let all = log.read_all(0, 10_000).await.unwrap();
        assert_eq!(all.len(), 5_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_instead_of_growing_with_the_log() {
        // Under steady writing SQLite never finds the WAL fully copied at a commit, so without
        // the writer's periodic restart the file would keep every frame ever written.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let wal = dir.path().join("log.db-wal");
        let log: Arc<dyn EventLog> = Arc::new(
            SqliteLog::open(&path, OpenOptions::new(types()))
                .await
                .unwrap(),
        );
        let write = |from: usize, to: usize| {
            let log = log.clone();
            async move {
                for i in from..to {
                    let stream = StreamId::parse(format!("s{}", i % 50)).unwrap();
                    log.append(AppendRequest::new(
                        stream,
                        ExpectedVersion::Any,
                        events(100),
                    ))
                    .await
                    .unwrap();
                }
            }
        };
        // 16,000 events: the first restart is due at the end of them.
        write(0, 160).await;
        let first = std::fs::metadata(&wal).unwrap().len();
        // 48,000 more: without a restart the WAL would be about four times as large. Three
        // more restarts are due; on a loaded machine one that finds the checkpointer at work is
        // tried again a little later (CI once saw 2.3 times), so a start over is asserted, not
        // its timing.
        write(160, 640).await;
        let last = std::fs::metadata(&wal).unwrap().len();
        assert!(
            last < 3 * first,
            "the WAL grew from {first} to {last} bytes: it never started over"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_follower_sees_its_own_and_another_process_s_commits_once_in_order() {
        // Its own commits come from memory, the other process's from the file: the follower
        // must stitch them together without a gap or a repeat, and give what is stored.
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let ours: Arc<dyn EventLog> = Arc::new(
            SqliteLog::open(&path, OpenOptions::new(types()))
                .await
                .unwrap(),
        );
        let theirs: Arc<dyn EventLog> = Arc::new(
            SqliteLog::open(&path, OpenOptions::new(types()))
                .await
                .unwrap(),
        );
        let follower = tokio::spawn(
            signoff_store::subscribe(ours.clone(), 0)
                .take(600)
                .map(Result::unwrap)
                .collect::<Vec<_>>(),
        );
        let mut writers = Vec::new();
        for (w, log) in [ours.clone(), theirs.clone(), ours.clone(), theirs]
            .into_iter()
            .enumerate()
        {
            writers.push(tokio::spawn(async move {
                for i in 0..50 {
                    let stream = StreamId::parse(format!("w{w}-{}", i % 5)).unwrap();
                    log.append(AppendRequest::new(stream, ExpectedVersion::Any, events(3)))
                        .await
                        .unwrap();
                }
            }));
        }
        for writer in writers {
            writer.await.unwrap();
        }
        let seen = tokio::time::timeout(Duration::from_secs(30), follower)
            .await
            .expect("the follower saw all 600 events")
            .unwrap();
        let sequences: Vec<u64> = seen.iter().map(|e| e.sequence).collect();
        assert_eq!(sequences, (1..=600).collect::<Vec<_>>());
        assert_eq!(seen, ours.read_all(0, 1_000).await.unwrap(), "as stored");
    }
}
