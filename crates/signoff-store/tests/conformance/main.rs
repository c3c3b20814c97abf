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
    the_database_refuses_update_and_delete,
    verify_finds_a_tampered_row_at_its_sequence,
    verify_finds_removed_trailing_events,
    verify_can_start_mid_log,
    bad_input_is_refused_and_writes_nothing,
    a_reopened_log_continues_the_chain,
    reading_by_type_returns_only_that_type_in_order,
    commit_hooks_run_in_sequence_order_before_anyone_is_answered,
);
