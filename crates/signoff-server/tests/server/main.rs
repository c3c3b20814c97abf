//! The server over real HTTP: a server started by each test on a port of its own, with the
//! shipped workflows and directory, on SQLite and on PostgreSQL (a schema of its own per test).
//!
//! PostgreSQL cases use `SIGNOFF_TEST_DATABASE_URL`; without it they print that they were
//! skipped, and fail when `CI` is set.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

mod api;
mod browser;
mod links;
mod pages;
mod stream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use signoff_runtime::access::Scope;
use signoff_runtime::{Config, Definitions, Runtime, event_types};
use signoff_server::AppState;
use signoff_store::{DatabaseUrl, OpenOptions, PgLog, SystemClock};
use tokio::sync::oneshot;

/// Everyone the tests act as, each with a token.
pub const PEOPLE: [&str; 7] = ["alice", "bob", "carol", "grace", "mia", "nina", "ruth"];

pub struct Server {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub runtime: Arc<Runtime>,
    pub tokens: HashMap<&'static str, String>,
    pub http: reqwest::Client,
    /// The key its decision links are signed with.
    pub link_key: signoff_core::link::LinkKey,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pg: Option<(String, String)>,
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A copy of the shipped workflows and directory in a fresh folder.
fn shipped_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).unwrap();
    for entry in std::fs::read_dir(repository().join("workflows")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, workflows.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(
        repository().join("people.yaml"),
        dir.path().join("people.yaml"),
    )
    .unwrap();
    dir
}

impl Server {
    pub async fn sqlite() -> Self {
        Self::start(None).await
    }

    pub async fn postgres() -> Option<Self> {
        let Ok(url) = std::env::var("SIGNOFF_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set SIGNOFF_TEST_DATABASE_URL"
            );
            eprintln!("SKIPPED: SIGNOFF_TEST_DATABASE_URL is not set, PostgreSQL case not run");
            return None;
        };
        let schema = format!("signoff_srv_{}", uuid::Uuid::now_v7().simple());
        Some(Self::start(Some((url, schema))).await)
    }

    async fn start(pg: Option<(String, String)>) -> Self {
        let dir = shipped_files();
        let root = dir.path();
        let config = Config {
            database: DatabaseUrl::Sqlite(root.join("signoff.db")),
            workflows: root.join("workflows"),
            people: root.join("people.yaml"),
            evidence: root.join("evidence"),
            clock: Arc::new(SystemClock),
        };
        let runtime = match &pg {
            None => signoff_runtime::open(&config).await.expect("open runtime"),
            Some((url, schema)) => {
                let log = PgLog::connect_in_schema(url, schema, OpenOptions::new(event_types()))
                    .await
                    .expect("connect to SIGNOFF_TEST_DATABASE_URL");
                let definitions = Definitions::load_dir(&config.workflows).expect("definitions");
                signoff_runtime::open_on(Arc::new(log), &config, definitions)
                    .await
                    .expect("open runtime")
            }
        };
        let runtime = Arc::new(runtime);
        // The clock's first turn arms the cron triggers (a write to the log); turn it here, so
        // the clock the server starts has nothing of its own to write while a case counts the
        // events its requests wrote (a case on PostgreSQL once saw the arming land mid-count).
        runtime.tick().await.expect("the clock's first turn");
        let mut tokens = HashMap::new();
        for person in PEOPLE {
            let issued = runtime
                .issue_token(person, "tests", None, &Scope::default(), "system")
                .await
                .expect("issue token");
            tokens.insert(person, issued.secret.expose().to_owned());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let link_key = signoff_core::link::LinkKey::new([7; 32]);
        let served = tokio::spawn(signoff_server::serve(
            listener,
            AppState::new(runtime.clone()).with_link_key(Some(link_key.clone())),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            dir,
            addr,
            runtime,
            tokens,
            http: reqwest::Client::new(),
            link_key,
            stop: Some(stop),
            served: Some(served),
            pg,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request as `who` (a person of [`PEOPLE`]).
    pub fn request(&self, who: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.tokens[who])
    }

    /// GET as `who`; the status and the JSON body.
    pub async fn get(&self, who: &str, path: &str) -> (StatusCode, Value) {
        answer(self.request(who, Method::GET, path).send().await.unwrap()).await
    }

    /// POST JSON as `who`; the status and the JSON body.
    pub async fn post(&self, who: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        answer(
            self.request(who, Method::POST, path)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Starts a low-risk deployment request as `who` and submits its form; its id.
    pub async fn low_risk_deployment(&self, who: &str) -> String {
        self.deployment_of_risk(who, "low").await
    }

    /// Starts a deployment request of this `risk` as `who` and submits its form; its id.
    pub async fn deployment_of_risk(&self, who: &str, risk: &str) -> String {
        let (status, body) = self
            .post(
                who,
                "/api/v1/instances",
                &json!({"workflow": "deployment-approval"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["instance"].as_str().unwrap().to_owned();
        let (status, body) = self
            .post(
                who,
                &format!("/api/v1/instances/{id}/submit"),
                &json!({"step": "request", "values": {
                    "service": "payments-api",
                    "team": "payments",
                    "environment": "production",
                    "version": "v1.2.3",
                    "change_type": "normal",
                    "risk": risk,
                    "description": "Raise the connection pool size to 50",
                    "rollback_plan": "Redeploy v1.2.2 from the pipeline, 5 minutes",
                    "ticket": "https://tracker.example.com/browse/CHG-1234",
                }}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        id
    }

    /// A DPIA taken through the API from its opening to the controller's validation gate, as
    /// `tests/fixtures/dpia-to-validation.json` says (who submits which step); its id.
    pub async fn dpia_at_validation(&self) -> String {
        let text =
            std::fs::read_to_string(repository().join("tests/fixtures/dpia-to-validation.json"))
                .expect("the DPIA fixture");
        let fixture: Value = serde_json::from_str(&text).expect("the DPIA fixture is JSON");
        let steps = fixture["steps"].as_array().expect("steps");
        let requester = steps[0]["by"].as_str().unwrap();
        let (status, body) = self
            .post(requester, "/api/v1/instances", &json!({"workflow": "dpia"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["instance"].as_str().unwrap().to_owned();
        for step in steps {
            let (status, body) = self
                .post(
                    step["by"].as_str().unwrap(),
                    &format!("/api/v1/instances/{id}/submit"),
                    &json!({"step": step["step"], "values": step["values"]}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{}: {body}", step["step"]);
        }
        id
    }

    /// The last sequence of the log.
    pub async fn tail(&self) -> u64 {
        self.runtime.log().tail().await.unwrap().sequence
    }

    /// Every event type of the log, in order.
    pub async fn types(&self) -> Vec<String> {
        use futures::StreamExt;
        signoff_store::read_all_stream(self.runtime.log().clone(), 0)
            .map(|r| r.unwrap().ty.as_str().to_owned())
            .collect()
            .await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.unwrap().unwrap();
        }
        if let Some((url, schema)) = &self.pg {
            PgLog::drop_schema(url, schema).await.expect("drop schema");
        }
    }
}

/// The status and the JSON body of a response (`null` for a body that is not JSON).
pub async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs each case on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($module:ident: $($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = crate::Server::sqlite().await;
                    crate::$module::$case(&server).await;
                    server.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(server) = crate::Server::postgres().await else { return };
                    crate::$module::$case(&server).await;
                    server.stop().await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

mod api_cases {
    crate::on_both_backends!(api:
        a_deployment_is_requested_decided_and_ended_over_http,
        bad_input_gets_the_right_problem_and_writes_nothing,
        auditors_read_everything_and_change_nothing_others_see_their_part,
        the_state_at_a_past_moment_is_what_was_live_then,
        the_api_describes_itself_and_counts_for_operators,
        an_idempotency_key_belongs_to_its_caller_and_its_request,
        a_retry_is_for_operators_and_only_of_a_stopped_step,
        a_read_only_token_reads_and_is_refused_every_change,
        a_token_for_one_workflow_reaches_no_other,
        evidence_and_notifications_through_the_api,
    );
}

mod stream_cases {
    crate::on_both_backends!(stream:
        the_live_stream_resumes_after_last_event_id_without_gaps,
        a_participant_follows_one_instance_and_sees_nothing_else,
    );
}

mod link_cases {
    crate::on_both_backends!(links:
        email_links_decide_only_when_posted_with_a_justification_and_once,
    );
}

mod page_cases {
    /// On SQLite: the pages do not depend on the backend.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_door_of_the_instance_page_goes_through_the_engine() {
        let server = crate::Server::sqlite().await;
        crate::pages::every_door_of_the_instance_page_goes_through_the_engine(&server).await;
        server.stop().await;
    }
}

/// The pages in a real browser (on SQLite: the pages do not depend on the backend).
mod browser_cases {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_person_signs_in_fills_decides_and_an_auditor_looks_back() {
        let server = crate::Server::sqlite().await;
        crate::browser::a_person_signs_in_fills_decides_and_an_auditor_looks_back(&server).await;
        server.stop().await;
    }
}
