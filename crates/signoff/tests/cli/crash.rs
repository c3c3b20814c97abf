//! The server killed mid-run: clients that retry with their idempotency keys lose nothing and
//! record nothing twice, and the log still verifies.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use signoff_store::{EventLog, OpenOptions, SqliteLog};

const INSTANCES: usize = 2_000;
const CLIENTS: usize = 32;

const WORKFLOW: &str = "id: crash
title: One approval
roles:
  change-board: {}
steps:
  - id: ok
    approval:
      approvers:
        - role: change-board
    next: approved
    on_reject: rejected
  - id: approved
    end:
      outcome: approved
      success: true
  - id: rejected
    end:
      outcome: rejected
      success: false
";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn signoff(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_signoff"));
    command
        .current_dir(dir)
        .env_remove("SIGNOFF_DATABASE_URL")
        .env_remove("SIGNOFF_CONFIG")
        .arg("--database")
        .arg(format!("sqlite://{}", dir.join("signoff.db").display()));
    command
}

fn token(dir: &Path, person: &str) -> String {
    let out = signoff(dir)
        .args(["token", "issue", person])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn serve(dir: &Path, port: u16) -> Child {
    signoff(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn until_up(client: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while client.get(format!("{base}/signin")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one request until it is answered (any status), retrying through connection errors
/// with the same idempotency key.
async fn until_answered(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    key: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let started = Instant::now();
    loop {
        let sent = client
            .post(url)
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status().as_u16();
            if let Ok(body) = response.json::<serde_json::Value>().await {
                return (status, body);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never answered: {url}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_decisions_survive_a_killed_server_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("workflows")).unwrap();
    std::fs::write(root.join("workflows/crash.yaml"), WORKFLOW).unwrap();
    let people = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../people.yaml");
    std::fs::copy(people, root.join("people.yaml")).unwrap();
    let carol = token(root, "carol");
    let bob = token(root, "bob");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = serve(root, port);
    until_up(&client, &base).await;

    // The instances to decide, started with keys too.
    let mut ids = Vec::with_capacity(INSTANCES);
    for i in 0..INSTANCES {
        let (status, body) = until_answered(
            &client,
            &format!("{base}/api/v1/instances"),
            &carol,
            &format!("start-{i}"),
            &serde_json::json!({"workflow": "crash"}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["instance"].as_str().unwrap().to_owned());
    }

    // 32 clients decide them, retrying with their keys, while the server is killed.
    let ids = Arc::new(ids);
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (ids, answered, client, base, bob) = (
                ids.clone(),
                answered.clone(),
                client.clone(),
                base.clone(),
                bob.clone(),
            );
            tokio::spawn(async move {
                let mut statuses = HashMap::new();
                for i in (c..INSTANCES).step_by(CLIENTS) {
                    let id = &ids[i];
                    let (status, body) = until_answered(
                        &client,
                        &format!("{base}/api/v1/instances/{id}/decide"),
                        &bob,
                        &format!("decide-{id}"),
                        &serde_json::json!({"step": "ok", "verdict": "approve",
                                            "justification": "fine by me"}),
                    )
                    .await;
                    assert_eq!(status, 200, "{body}");
                    answered.fetch_add(1, Ordering::Relaxed);
                    statuses.insert(id.clone(), body);
                }
                statuses
            })
        })
        .collect();
    while answered.load(Ordering::Relaxed) < INSTANCES / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let killed_at = answered.load(Ordering::Relaxed);
    let mut server = serve(root, port);
    let mut answers = HashMap::new();
    for c in clients {
        answers.extend(c.await.unwrap());
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(killed_at < INSTANCES, "the kill came mid-run ({killed_at})");
    assert_eq!(answers.len(), INSTANCES);
    for (id, body) in &answers {
        assert_eq!(
            body["events"][0]["type"], "signoff.approval.decided",
            "{id}: {body}"
        );
    }

    // Every answered decision is in the log exactly once, and the chain is intact.
    let log = SqliteLog::open(
        &root.join("signoff.db"),
        OpenOptions::new(signoff_runtime::event_types()),
    )
    .await
    .unwrap();
    let mut decided: HashMap<String, usize> = HashMap::new();
    let mut after = 0;
    loop {
        let page = log.read_all(after, 4_096).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.sequence;
        for event in page
            .iter()
            .filter(|e| e.ty.as_str() == "signoff.approval.decided")
        {
            *decided.entry(event.stream.as_str().to_owned()).or_default() += 1;
        }
    }
    assert_eq!(decided.len(), INSTANCES);
    for id in ids.iter() {
        assert_eq!(decided.get(&format!("instance/{id}")), Some(&1), "{id}");
    }
    drop(log);
    let out = signoff(root).arg("verify").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
