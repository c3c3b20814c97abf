//! The runtime over a real log: SQLite files and PostgreSQL schemas, a manual clock, restarts.
//!
//! PostgreSQL cases use `SIGNOFF_TEST_DATABASE_URL`, each in a schema of its own; without the
//! variable they print that they were skipped, and fail when `CI` is set.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

mod cases;
mod idempotency;
mod projections;
mod property;
mod reactions;
mod workflows;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use signoff_runtime::access::Scope;
use signoff_runtime::{Config, Definitions, Runtime, event_types};
use signoff_store::{DatabaseUrl, EventLog, ManualClock, OpenOptions, PgLog, SqliteLog};

/// 2026-11-23T09:00:00Z, a Monday.
pub const T0: i64 = 1_795_424_400_000_000;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pg: Option<(String, String)>,
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtime/fixtures")
}

impl Env {
    fn new(pg: Option<(String, String)>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let workflows = dir.path().join("workflows");
        std::fs::create_dir(&workflows).unwrap();
        for file in ["deploy.yaml", "outage.yaml", "review.yaml", "nightly.yaml"] {
            std::fs::copy(fixtures().join(file), workflows.join(file)).unwrap();
        }
        std::fs::copy(
            fixtures().join("people.yaml"),
            dir.path().join("people.yaml"),
        )
        .unwrap();
        Self {
            dir,
            clock: Arc::new(ManualClock::at(T0)),
            pg,
        }
    }

    pub fn sqlite() -> Self {
        Self::new(None)
    }

    pub fn postgres() -> Option<Self> {
        let Ok(url) = std::env::var("SIGNOFF_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set SIGNOFF_TEST_DATABASE_URL"
            );
            eprintln!("SKIPPED: SIGNOFF_TEST_DATABASE_URL is not set, PostgreSQL case not run");
            return None;
        };
        let schema = format!("signoff_rt_{}", uuid::Uuid::now_v7().simple());
        Some(Self::new(Some((url, schema))))
    }

    pub fn config(&self) -> Config {
        let root = self.dir.path();
        Config {
            database: DatabaseUrl::Sqlite(root.join("signoff.db")),
            workflows: root.join("workflows"),
            people: root.join("people.yaml"),
            evidence: root.join("evidence"),
            clock: self.clock.clone(),
        }
    }

    /// Opens a runtime, as a process starting would (again after a restart).
    pub async fn open(&self) -> Runtime {
        let config = self.config();
        let definitions = Definitions::load_dir(&config.workflows).expect("definitions");
        signoff_runtime::open_on(self.log().await, &config, definitions)
            .await
            .expect("open runtime")
    }

    /// The log, opened anew.
    pub async fn log(&self) -> Arc<dyn EventLog> {
        let options = OpenOptions {
            clock: self.clock.clone(),
            ..OpenOptions::new(event_types())
        };
        match &self.pg {
            None => Arc::new(
                SqliteLog::open(&self.dir.path().join("signoff.db"), options)
                    .await
                    .expect("open the SQLite log"),
            ),
            Some((url, schema)) => Arc::new(
                PgLog::connect_in_schema(url, schema, options)
                    .await
                    .expect("connect to SIGNOFF_TEST_DATABASE_URL"),
            ),
        }
    }

    /// A runtime over the log that has folded nothing and restored nothing.
    pub async fn fresh(&self) -> Runtime {
        let config = self.config();
        let definitions = Definitions::load_dir(&config.workflows).expect("definitions");
        Runtime::new(
            self.log().await,
            self.clock.clone(),
            definitions,
            config.evidence,
        )
    }

    pub fn advance(&self, seconds: i64) {
        use signoff_store::Clock;
        self.clock
            .set(self.clock.now_micros() + seconds * 1_000_000);
    }

    pub async fn cleanup(self) {
        if let Some((url, schema)) = &self.pg {
            PgLog::drop_schema(url, schema).await.expect("drop schema");
        }
    }
}

/// The read models a restart starts from equal the log folded again from its first event, and
/// the runtime started from them holds what a full fold holds.
pub async fn assert_projections_match_the_log(env: &Env) {
    // A restart: restores, folds the tail, writes the rows up to the head.
    let restored = env.open().await;
    let fresh = env.fresh().await;
    let check = signoff_runtime::projections::check(&fresh).await.unwrap();
    assert!(check.rows > 0, "nothing compared");
    assert_eq!(check.count, 0, "{:#?}", check.differences);
    assert_eq!(check.position, restored.gauges().position);
    let by_id = |rt: &Runtime| {
        let mut all: Vec<_> = rt
            .running()
            .into_iter()
            .map(|e| (e.state, e.loaded.hash.clone()))
            .collect();
        all.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        all
    };
    assert_eq!(by_id(&restored), by_id(&fresh));
    assert_eq!(restored.directory(), fresh.directory());
    assert_eq!(restored.tokens(), fresh.tokens());
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let env = crate::Env::sqlite();
                    crate::cases::$case(&env).await;
                    env.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(env) = crate::Env::postgres() {
                        crate::cases::$case(&env).await;
                        env.cleanup().await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    a_deployment_runs_through_the_runtime_and_its_timeline_says_who_did_what,
    refusals_for_lack_of_rights_are_recorded_in_the_security_stream,
    reminders_pending_at_a_stop_fire_once_after_the_restart,
    a_started_workflow_and_a_triggered_one_are_linked_both_ways,
    the_state_at_a_past_moment_is_the_state_that_was_live_then,
    a_retried_command_with_the_same_key_is_recorded_once,
    directory_changes_are_recorded_as_grants_and_revocations,
    a_cron_trigger_starts_each_run_once_in_its_time_zone,
    the_outbox_delivers_each_notification_once_and_retries_failures,
    two_triggers_of_one_workflow_both_arm_and_fire_in_one_round,
    computed_numbers_give_the_same_state_live_and_replayed,
    two_callers_with_one_key_are_both_recorded,
    a_key_reused_for_another_request_is_refused_and_a_retry_gets_the_first_answer,
    a_start_retried_with_its_key_starts_once,
    a_start_with_input_the_workflow_never_reads_is_refused,
    a_client_key_shaped_like_an_engine_key_stops_no_timer,
    client_keys_are_forgotten_after_a_day_and_the_engines_are_kept,
    a_triggered_start_that_fails_is_recorded_and_retried_and_its_cause_stands,
    a_worker_carries_out_the_starts_another_process_left_to_it,
    a_rule_that_errors_stops_the_instance_until_an_operator_retries_it_fixed,
    a_restart_starts_from_the_read_models_and_folds_only_what_came_after,
    a_row_the_log_does_not_make_is_found_and_a_rebuild_makes_it_right,
    a_process_whose_read_models_were_reset_under_it_stops_writing_them,
    read_models_of_an_older_shape_are_made_again_at_start,
);

/// A token's secret is shown once, to whoever issued it (the serialised answer), and never in
/// `Debug`, which is what logs and error messages print.
#[tokio::test]
async fn an_issued_token_s_secret_is_in_its_answer_but_never_in_its_debug_text() {
    let env = Env::sqlite();
    let rt = env.open().await;
    let issued = rt
        .issue_token("rita", "laptop", None, &Scope::default(), "system")
        .await
        .unwrap();
    let secret = issued.secret.expose().to_owned();
    assert!(secret.starts_with("signoff_"), "{secret}");
    assert!(!format!("{issued:?}").contains(&secret), "{issued:?}");
    assert!(
        serde_json::to_string(&issued).unwrap().contains(&secret),
        "the one who issued it must see it once"
    );
    env.cleanup().await;
}

/// An evidence file left partial (a crash mid-write, a full disk) is written again by the next
/// attach of the same content instead of being trusted because a file of that name exists.
#[tokio::test]
async fn a_truncated_evidence_file_is_repaired_by_attaching_it_again() {
    let env = Env::sqlite();
    let rt = env.open().await;
    let id = rt
        .start("deploy", serde_json::json!({}), "rita", "cli")
        .await
        .unwrap()
        .instance;
    let content = b"the change plan, as signed\n".repeat(1_000);
    let rita = rt.actor("rita").unwrap();
    let attach = || rt.attach(&id, "plan.txt", "text/plain", &content, &rita, "cli");
    attach().await.unwrap();
    let folder = env.dir.path().join("evidence").join("sha256");
    let files = || -> Vec<_> {
        std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    };
    let [path] = files().try_into().expect("one file, no temporary left");
    assert_eq!(std::fs::read(&path).unwrap(), content);

    std::fs::write(&path, &content[..100]).unwrap();
    attach().await.unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        content,
        "the file was repaired"
    );
    assert_eq!(files(), [path]);
    env.cleanup().await;
}
