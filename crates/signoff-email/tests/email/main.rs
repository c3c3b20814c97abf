//! The email channel against a real SMTP server on loopback (aiosmtpd, `smtp_sink.py`), over
//! the shipped workflows and directory: who gets which message with which headers, and what a
//! server that is busy (451) or refuses one mailbox (550) does to delivery.
//!
//! The sink needs Python with aiosmtpd ([`signoff_email::sink`]). Without it the cases print
//! that they were skipped, and fail when `CI` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use signoff_email::sink::{Sink, python};
use signoff_email::{EmailChannel, Settings};
use signoff_runtime::{Config, Runtime};
use signoff_store::{DatabaseUrl, ManualClock};

/// 2026-11-23T09:00:00Z, a Monday.
const T0: i64 = 1_795_424_400_000_000;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn settings(sink: &Sink) -> Settings {
    Settings {
        url: sink.url(),
        user: None,
        password: None,
        from: "signoff <signoff@example.com>".to_owned(),
        public_url: "https://signoff.example.com".to_owned(),
        timeout: Duration::from_secs(10),
        link_key: None,
        templates: None,
    }
}

struct Env {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    rt: Runtime,
}

async fn open() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(T0));
    let config = Config {
        database: DatabaseUrl::Sqlite(dir.path().join("signoff.db")),
        workflows: repository().join("workflows"),
        people: repository().join("people.yaml"),
        evidence: dir.path().join("evidence"),
        clock: clock.clone(),
    };
    let rt = signoff_runtime::open(&config).await.unwrap();
    Env {
        _dir: dir,
        clock,
        rt,
    }
}

/// A second runtime over the same log that has folded nothing, to check the read models.
fn reopen(env: &Env) -> Runtime {
    Runtime::new(
        env.rt.log().clone(),
        env.clock.clone(),
        signoff_runtime::Definitions::load_dir(&repository().join("workflows")).unwrap(),
        env._dir.path().join("evidence"),
    )
}

/// A high-risk deployment request by carol: two of the change board and legal are asked.
async fn high_risk_request(rt: &Runtime) -> String {
    let id = rt
        .start("deployment-approval", json!({}), "carol", "cli")
        .await
        .unwrap()
        .instance;
    let values = json!({
        "service": "payments-api", "team": "payments", "environment": "production",
        "version": "v1.2.3", "change_type": "normal", "risk": "high",
        "description": "Raise the connection pool size to 50",
        "rollback_plan": "Redeploy v1.2.2 from the pipeline, 5 minutes",
        "ticket": "https://tracker.example.com/browse/CHG-1234",
    });
    let serde_json::Value::Object(values) = values else {
        unreachable!()
    };
    rt.execute(
        &id,
        signoff_core::engine::Command::Submit {
            step: "request".into(),
            values,
        },
        "carol",
        "cli",
        None,
    )
    .await
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_reaches_each_approver_alone_threaded_with_both_bodies() {
    let Some(python) = python() else { return };
    let sink = Sink::start(&python);
    let env = open().await;
    let channel = EmailChannel::new(&settings(&sink)).unwrap();
    let id = high_risk_request(&env.rt).await;
    let report = env.rt.deliver(&channel).await.unwrap();
    let received = sink.received();
    let to: Vec<&str> = received.iter().map(|(to, ..)| to.as_str()).collect();
    assert_eq!(report.delivered, received.len(), "{to:?}");
    for approver in ["bob@example.com", "nina@example.com", "frank@example.com"] {
        assert!(to.contains(&approver), "{approver} not in {to:?}");
    }
    for (to, text, read) in &received {
        for header in [
            format!("In-Reply-To: <instance.{id}@example.com>"),
            format!("References: <instance.{id}@example.com>"),
            "From: signoff <signoff@example.com>".to_owned(),
            "Content-Type: multipart/alternative".to_owned(),
            "Content-Type: text/plain".to_owned(),
            "Content-Type: text/html".to_owned(),
        ] {
            assert!(
                text.contains(&header),
                "{header:?} not in the message to {to}:\n{text}"
            );
        }
        let link = format!("https://signoff.example.com/instances/{id}");
        let plain = read["plain"].as_str().unwrap_or_default();
        let html = read["html"].as_str().unwrap_or_default();
        assert!(plain.contains(&link), "{plain}");
        assert!(html.contains(&link.replace('/', "&#x2f;")), "{html}");
        // What the approver will be shown: the request under its labels, and its hash.
        for shown in [
            "Service: payments-api",
            "Rollback plan: Redeploy v1.2.2",
            "Risk: High",
        ] {
            assert!(plain.contains(shown), "{shown:?} not in:\n{plain}");
        }
        for shown in [
            "<dt>Service</dt>",
            "Redeploy v1.2.2",
            "answered by Carol Dubois",
        ] {
            assert!(html.contains(shown), "{shown:?} not in:\n{html}");
        }
        assert!(plain.contains("fingerprint sha256:"), "{plain}");
        let subject = read["headers"]["Subject"].as_str().unwrap();
        assert!(
            subject.starts_with("payments-api v1.2.3 to production: "),
            "{subject}"
        );
        assert_eq!(
            read["headers"]["To"].as_str().unwrap().matches('@').count(),
            1,
            "{read}"
        );
        let message_id = text
            .lines()
            .find(|l| l.starts_with("Message-ID: <"))
            .unwrap_or_else(|| panic!("no Message-ID:\n{text}"));
        let person = to.split('@').next().unwrap();
        assert!(
            message_id.contains(&format!(".{person}.{id}@example.com>")),
            "{message_id}"
        );
    }
    // Delivered once: another run sends nothing.
    assert_eq!(env.rt.deliver(&channel).await.unwrap().delivered, 0);
    assert_eq!(sink.received().len(), received.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_server_is_retried_with_backoff_and_a_refused_mailbox_is_given_up() {
    let Some(python) = python() else { return };
    let sink = Sink::start(&python);
    let env = open().await;
    let channel = EmailChannel::new(&settings(&sink)).unwrap();
    // nina's mailbox does not exist; the server is busy for a while.
    sink.refuse("nina@example.com");
    sink.busy(true);
    let id = high_risk_request(&env.rt).await;
    let first = env.rt.deliver(&channel).await.unwrap();
    assert_eq!(first.delivered, 0);
    assert!(first.failed >= 3, "{first:?}");
    assert!(sink.received().is_empty());
    // Nothing is tried again before its backoff.
    let early = env.rt.deliver(&channel).await.unwrap();
    assert_eq!((early.delivered, early.failed), (0, 0));
    let due = early.next_retry.expect("a retry waits");
    // Still busy at the first retry; then it accepts.
    env.clock.set(due.0);
    let second = env.rt.deliver(&channel).await.unwrap();
    assert_eq!(second.delivered, 0);
    sink.busy(false);
    env.clock.set(due.0 + 3_600_000_000);
    let third = env.rt.deliver(&channel).await.unwrap();
    let to: Vec<String> = sink.received().into_iter().map(|(to, ..)| to).collect();
    assert_eq!(third.delivered, to.len());
    assert!(to.contains(&"bob@example.com".to_owned()), "{to:?}");
    assert!(!to.contains(&"nina@example.com".to_owned()), "{to:?}");
    // nina's is recorded as failed for good, with the server's answer, and not tried again.
    let outcomes = env
        .rt
        .log()
        .read_stream(
            &signoff_core::StreamId::parse("outbox/email").unwrap(),
            1,
            1_000,
        )
        .await
        .unwrap();
    let nina: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(e.data.as_str()).unwrap())
        .filter(|o| o["person"] == "nina")
        .collect();
    let last = nina.last().expect("nina's outcome is recorded");
    assert_eq!(last["given_up"], true, "{last}");
    assert!(last["error"].as_str().unwrap().contains("550"), "{last}");
    env.clock.set(due.0 + 7_200_000_000);
    assert_eq!(env.rt.deliver(&channel).await.unwrap().failed, 0);
    // The instance's read model says who was not told, and what the server answered.
    env.rt.save_projections().await.unwrap();
    let undelivered = env.rt.undelivered(&id).await.unwrap();
    assert_eq!(undelivered.len(), 1, "{undelivered:?}");
    assert_eq!(
        (
            undelivered[0].person.as_str(),
            undelivered[0].address.as_str()
        ),
        ("nina", "nina@example.com")
    );
    assert!(undelivered[0].error.contains("550"), "{undelivered:?}");
    // And a rebuild from the log makes the same rows.
    let check = signoff_runtime::projections::check(&reopen(&env))
        .await
        .unwrap();
    assert!(check.differences.is_empty(), "{:?}", check.differences);
    // What operators see in /metrics.
    let counted = &env.rt.delivery_counters()["email"];
    assert_eq!(counted.delivered, to.len() as u64, "{counted:?}");
    assert_eq!(counted.given_up, 1, "nina's: {counted:?}");
    assert!(
        counted.retried >= counted.delivered && counted.failed > counted.given_up,
        "{counted:?}"
    );
    assert_eq!(counted.latency_count, counted.delivered, "{counted:?}");
    assert!(
        counted.latency_sum >= 3_600.0 * counted.delivered as f64,
        "an hour late: {counted:?}"
    );
}
