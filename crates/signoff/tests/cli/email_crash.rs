//! `signoff worker email` killed with SIGKILL during a burst of 1,000 notifications, then
//! restarted: every message reaches the SMTP server at least once, none whose delivery was
//! recorded before the kill is sent again, and at most the window in flight is sent twice
//! (counted at the server).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use signoff_email::sink::{Sink, python};

/// 500 instances, each telling the ten people of the `staff` role, then its requester that it
/// ended: 1,000 notifications, 5,500 messages.
const INSTANCES: usize = 500;
const STAFF: usize = 10;

const WORKFLOW: &str = "id: notice
title: A notice to the staff
roles:
  staff: {}
steps:
  - id: tell
    notify:
      to:
        - role: staff
      subject: 'Notice {{ instance.id }}'
      body: 'The office is closed on Friday.'
    next: done
  - id: done
    end:
      outcome: told
";

fn people() -> String {
    let mut text = String::from("people:\n");
    for n in 0..STAFF {
        text.push_str(&format!(
            "  - id: p{n}\n    name: Person {n}\n    email: p{n}@example.com\n    roles: [staff]\n"
        ));
    }
    text
}

fn worker(dir: &Path, sink: &Sink) -> Child {
    Command::new(env!("CARGO_BIN_EXE_signoff"))
        .current_dir(dir)
        .env_remove("SIGNOFF_DATABASE_URL")
        .env_remove("SIGNOFF_CONFIG")
        .args(["worker", "email", "--smtp-url", &sink.url()])
        .args(["--email-from", "signoff <signoff@example.com>"])
        .arg("--database")
        .arg(format!("sqlite://{}", dir.join("signoff.db").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Message-ID -> how many times the server accepted it.
fn counted(sink: &Sink) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, _, read) in sink.received() {
        let id = read["headers"]["Message-ID"].as_str().unwrap().to_owned();
        *counts.entry(id).or_default() += 1;
    }
    counts
}

/// The Message-IDs whose delivery the log records.
async fn recorded(dir: &Path) -> BTreeSet<String> {
    use signoff_store::EventLog as _;
    let log = signoff_store::SqliteLog::open(
        &dir.join("signoff.db"),
        signoff_store::OpenOptions::new(signoff_runtime::event_types()),
    )
    .await
    .unwrap();
    let stream = signoff_core::StreamId::parse("outbox/email").unwrap();
    let events = log.read_stream(&stream, 1, 100_000).await.unwrap();
    log.close().await;
    events
        .iter()
        .filter(|e| e.ty.as_str() == signoff_runtime::outbox::DELIVERED)
        .map(|e| {
            let m: serde_json::Value = serde_json::from_str(e.data.as_str()).unwrap();
            let part = |k: &str| m[k].as_str().unwrap().to_owned();
            format!(
                "<{}.{}.{}@example.com>",
                part("notification"),
                part("person"),
                part("instance")
            )
        })
        .collect()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_email_worker_sends_everything_and_nothing_recorded_twice() {
    let Some(python) = python() else { return };
    let sink = Sink::start(&python);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("workflows")).unwrap();
    std::fs::write(root.join("workflows/notice.yaml"), WORKFLOW).unwrap();
    std::fs::write(root.join("people.yaml"), people()).unwrap();
    {
        let mut config = signoff_runtime::Config::embedded(signoff_store::DatabaseUrl::Sqlite(
            root.join("signoff.db"),
        ));
        config.workflows = root.join("workflows");
        config.people = root.join("people.yaml");
        config.clock = Arc::new(signoff_store::SystemClock);
        let rt = signoff_runtime::open(&config).await.unwrap();
        for _ in 0..INSTANCES {
            rt.start("notice", json!({}), "p0", "cli").await.unwrap();
        }
        rt.log().close().await;
    }
    // Each instance tells the staff, then tells its requester it ended.
    let all = INSTANCES * (STAFF + 1);

    let mut first = worker(root, &sink);
    until("a third sent", || sink.received().len() >= all / 3).await;
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let before = recorded(root).await;
    assert!(
        !before.is_empty() && before.len() < all,
        "{} recorded",
        before.len()
    );

    let mut second = worker(root, &sink);
    until("every message sent", || counted(&sink).len() >= all).await;
    // What the second worker sends beyond that would be a resend: let it finish its turn.
    let started = Instant::now();
    while recorded(root).await.len() < all {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never: every delivery recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();

    let counts = counted(&sink);
    assert_eq!(counts.len(), all, "each message at least once");
    let resent: Vec<&String> = before.iter().filter(|id| counts[*id] > 1).collect();
    assert!(
        resent.is_empty(),
        "recorded as delivered, then sent again: {resent:?}"
    );
    // At most the window in flight at the kill was sent twice: sent, not yet recorded (a
    // window closes at the first notification that brings it to WINDOW messages or more).
    let twice = counts.values().filter(|n| **n > 1).count();
    let window = signoff_runtime::outbox::WINDOW + STAFF;
    assert!(
        twice <= window,
        "{twice} sent twice, more than a window ({window})"
    );
}
