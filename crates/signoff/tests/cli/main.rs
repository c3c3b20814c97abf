//! The `signoff` binary as a person or a CI job runs it.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

use std::path::Path;
use std::process::Command;

use signoff_core::{EventData, EventId, EventType, EventTypes, Metadata, NewEvent, StreamId};
use signoff_store::{AppendRequest, EventLog, ExpectedVersion, OpenOptions, SqliteLog};

fn signoff(db: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_signoff"))
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .args(args)
        .output()
        .expect("run signoff");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8 output");
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

async fn log_with_events(db: &Path, n: usize) -> SqliteLog {
    let log = SqliteLog::open(
        db,
        OpenOptions::new(EventTypes::new().with("test.happened", 1)),
    )
    .await
    .expect("open");
    let events = (0..n)
        .map(|i| NewEvent {
            id: EventId(uuid::Uuid::now_v7()),
            ty: EventType::parse("test.happened").unwrap(),
            schema_version: 1,
            data: EventData::from_json_text(format!("{{\"n\":{i}}}")).unwrap(),
            metadata: Metadata::new("alice", "cli"),
        })
        .collect();
    log.append(AppendRequest::new(
        StreamId::parse("s").unwrap(),
        ExpectedVersion::Any,
        events,
    ))
    .await
    .expect("append");
    log
}

#[tokio::test]
async fn verify_passes_an_intact_log_and_names_the_first_tampered_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.db");
    let log = log_with_events(&db, 12).await;

    let (code, out, _) = signoff(&db, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("intact: 12 events verified (1 to 12)"),
        "{out}"
    );

    sqlx::query("DROP TRIGGER events_refuse_update")
        .execute(log.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE events SET data = '{\"n\":70}' WHERE sequence = 8")
        .execute(log.pool())
        .await
        .unwrap();
    let (code, out, _) = signoff(&db, &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("BROKEN at sequence 8: event 8 was altered"),
        "{out}"
    );

    let (code, out, _) = signoff(&db, &["verify", "--json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["broken"]["sequence"], 8);
    assert_eq!(report["broken"]["kind"], "hash_mismatch");
}

#[test]
fn verify_refuses_a_missing_database_and_a_bad_url() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = signoff(&dir.path().join("nope.db"), &["verify"]);
    assert_eq!(code, 2);
    assert!(err.contains("no signoff database at"), "{err}");
    assert!(
        !dir.path().join("nope.db").exists(),
        "verify must not create a database"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_signoff"))
        .args(["--database", "mysql://x", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}

#[test]
fn bench_log_prints_one_json_line_per_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = signoff(
        &dir.path().join("signoff.db"),
        &["bench", "log", "--events", "300", "--writers", "4"],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let scenarios: Vec<&str> = lines
        .iter()
        .map(|l| l["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(scenarios, ["append", "replay", "lag"]);
    for line in &lines {
        for key in ["backend", "events", "events_per_sec", "p50_ms", "p99_ms"] {
            assert!(!line[key].is_null(), "{key} missing in {line}");
        }
    }
    assert_eq!(
        lines[1]["events"], 300,
        "replay reads back exactly what was appended"
    );
    assert_eq!(lines[2]["skipped"], 0);
    assert!(
        !dir.path().join("signoff.db").exists(),
        "the benchmark must not touch the real log"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "scratch files are removed"
    );
}

#[test]
fn bench_approvals_approves_every_instance_over_http_and_reports_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = signoff(
        &dir.path().join("signoff.db"),
        &["bench", "approvals", "--instances", "50", "--clients", "4"],
    );
    assert_eq!(code, 0, "{err}");
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(line["scenario"], "approvals");
    assert_eq!(line["backend"], "sqlite");
    assert_eq!(line["instances"], 50);
    assert_eq!(line["clients"], 4);
    assert_eq!(line["starts"], 50);
    assert_eq!(line["approvals"], 50, "{line}");
    assert_eq!(line["errors"], 0, "{line}");
    assert_eq!(line["running_at_end"], 0, "every instance ended");
    for key in [
        "starts_per_sec",
        "approvals_per_sec",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "server_peak_rss_mib",
    ] {
        assert!(
            line[key].as_f64().is_some_and(|v| v > 0.0),
            "{key} in {line}"
        );
    }
    assert!(line["p50_ms"].as_f64() <= line["p99_ms"].as_f64(), "{line}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "scratch files are removed, the real log untouched"
    );

    // The workflow an operator puts on a server of their own is one `validate` accepts.
    let (code, workflow, err) = signoff(
        &dir.path().join("signoff.db"),
        &["bench", "approvals", "--print-workflow"],
    );
    assert_eq!(code, 0, "{err}");
    std::fs::write(dir.path().join("bench-approval.yaml"), &workflow).unwrap();
    let path = dir.path().join("bench-approval.yaml");
    let (code, out, _) = signoff(
        &dir.path().join("signoff.db"),
        &["validate", path.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
}

/// `signoff … | head -1` is the README's own idiom: when the reader has gone, signoff stops
/// quietly with 141 (128 + SIGPIPE) instead of panicking with a backtrace.
#[tokio::test]
async fn a_closed_stdout_stops_quietly_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.db");
    log_with_events(&db, 3).await;
    for args in [&["schema"][..], &["export"], &["verify"]] {
        // A pipe whose reader is closed before signoff writes: every write meets EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_signoff"))
            .arg("--database")
            .arg(format!("sqlite://{}", db.display()))
            .args(args)
            .stdout(writer)
            .output()
            .expect("run signoff");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// Sends SIGTERM to `child` and waits (15 s at most) for it to exit.
fn stopped_by_sigterm(child: &mut std::process::Child) -> std::process::ExitStatus {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > std::time::Duration::from_secs(15) {
            child.kill().unwrap();
            panic!("signoff did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Starts `signoff ARGS` in `dir`, waits for its first line on stderr (which must hold
/// `banner`), stops it with SIGTERM and checks it exits 0.
fn stops_on_sigterm_after_its_banner(dir: &Path, db: &Path, args: &[&str], banner: &str) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_signoff"))
        .current_dir(dir)
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains(banner), "{first}");
    let status = stopped_by_sigterm(&mut child);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// `signoff run` (the clock without the server) stops on SIGTERM too, with exit 0.
#[test]
fn run_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.db");
    stops_on_sigterm_after_its_banner(dir.path(), &db, &["run"], "SIGTERM");
    let (code, out, err) = signoff(&db, &["verify"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// `signoff worker NAME` runs one reactor: an unknown name is refused with the names there are;
/// a turn advances the reactor's checkpoint; run until stopped, it stops on SIGTERM with exit 0.
#[test]
fn a_worker_runs_one_reactor_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.db");
    let signoff = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_signoff"))
            .current_dir(dir.path())
            .arg("--database")
            .arg(format!("sqlite://{}", db.display()))
            .args(args)
            .output()
            .unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (out.status.code(), text(out.stdout), text(out.stderr))
    };
    let (code, out, err) = signoff(&["worker", "emial"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("\"emial\"") && err.contains("timers, schedules, starts, keys, projections"),
        "{err}"
    );
    // The directory file gives the log its first events.
    let people = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../people.yaml");
    std::fs::copy(people, dir.path().join("people.yaml")).unwrap();
    let (code, out, err) = signoff(&["--json", "worker", "timers", "--once"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let turn: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(turn["reactor"], "timers", "{turn}");
    assert!(turn["checkpoint"].as_u64().unwrap() > 0, "{turn}");

    stops_on_sigterm_after_its_banner(
        dir.path(),
        &db,
        &["worker", "starts"],
        "signoff worker starts",
    );
}

/// systemd and Kubernetes stop a service with SIGTERM: `serve` drains and exits 0, and the log
/// it leaves verifies.
#[test]
fn serve_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_signoff"))
        .current_dir(dir.path())
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut address = None;
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.trim().strip_prefix("open:") {
            address = rest
                .trim()
                .strip_prefix("http://")
                .and_then(|a| a.split('/').next())
                .map(str::to_owned);
            break;
        }
        line.clear();
    }
    let address = address.expect("serve prints its address");
    // A request answered, so the server is up and the engine has written to the log.
    let mut tcp = std::net::TcpStream::connect(&address).unwrap();
    std::io::Write::write_all(
        &mut tcp,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut tcp, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let status = stopped_by_sigterm(&mut child);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}: {rest}");
    assert!(!rest.contains("panicked"), "{rest}");
    let (code, out, err) = signoff(&db, &["verify"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn keys_init_makes_a_private_link_key_and_replaces_one_only_when_forced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("signoff.db");
    let file = dir.path().join("keys/link.key");
    let file_arg = file.to_str().unwrap();
    let (code, out, err) = signoff(&db, &["keys", "init", "--link-key-file", file_arg]);
    assert_eq!(code, 0, "{out}{err}");
    let first = std::fs::read_to_string(&file).unwrap();
    assert_eq!(first.trim().len(), 64, "{first}");
    assert!(
        first.trim().chars().all(|c| c.is_ascii_hexdigit()),
        "{first}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // Not replaced unasked: every link already emailed would stop working.
    let (code, _, err) = signoff(&db, &["keys", "init", "--link-key-file", file_arg]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), first);
    let (code, out, err) = signoff(
        &db,
        &["keys", "init", "--force", "--link-key-file", file_arg],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_ne!(std::fs::read_to_string(&file).unwrap(), first);
    // A key file that is not one is refused with what is wrong, never its content.
    std::fs::write(&file, "not-a-key-secret-words").unwrap();
    let (code, _, err) = signoff(
        &db,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--link-key-file",
            file_arg,
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("64 hex digits") && !err.contains("secret-words"),
        "{err}"
    );
}

mod client;
mod crash;
mod email_crash;
mod workflows;

/// `signoff worker discord` needs the bot's token, and says so; with one, and the REST base at
/// a stand-in for Discord, `--once` delivers the approval requests as direct messages and
/// exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discord_worker_needs_its_token_and_delivers_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.db");
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = signoff_runtime::Config {
        database: signoff_store::DatabaseUrl::Sqlite(db.clone()),
        workflows: repository.join("workflows"),
        people: repository.join("people.yaml"),
        evidence: dir.path().join("evidence"),
        clock: std::sync::Arc::new(signoff_store::SystemClock),
    };
    let rt = signoff_runtime::open(&config).await.unwrap();
    let id = rt
        .start("deployment-approval", serde_json::json!({}), "carol", "cli")
        .await
        .unwrap()
        .instance;
    let serde_json::Value::Object(values) = serde_json::json!({
        "service": "payments-api", "team": "payments", "environment": "production",
        "version": "v1.2.3", "change_type": "normal", "risk": "low",
        "description": "Raise the connection pool size to 50",
        "rollback_plan": "Redeploy v1.2.2 from the pipeline, 5 minutes",
        "ticket": "https://tracker.example.com/browse/CHG-1",
    }) else {
        unreachable!()
    };
    let submit = signoff_core::engine::Command::Submit {
        step: "request".into(),
        values,
    };
    rt.execute(&id, submit, "carol", "cli", None).await.unwrap();
    rt.log().close().await;
    drop(rt);

    let standin = signoff_discord::standin::StandIn::start().await;
    let run = |token: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_signoff"));
        command
            .current_dir(dir.path())
            .env_remove("SIGNOFF_DISCORD_TOKEN")
            .arg("--database")
            .arg(format!("sqlite://{}", db.display()))
            .arg("--workflows")
            .arg(repository.join("workflows"))
            .arg("--people")
            .arg(repository.join("people.yaml"))
            .args(["worker", "discord", "--once"])
            .env("SIGNOFF_DISCORD_API_URL", &standin.url);
        if let Some(token) = token {
            command.env("SIGNOFF_DISCORD_TOKEN", token);
        }
        tokio::task::spawn_blocking(move || {
            let out = command.output().unwrap();
            let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
            (out.status.code(), text(out.stdout), text(out.stderr))
        })
    };
    let (code, out, err) = run(None).await.unwrap();
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(err.contains("SIGNOFF_DISCORD_TOKEN"), "{err}");

    let (code, out, err) = run(Some("stand-in-token")).await.unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("discord: "), "{out}");
    // The owning team's engineers with a Discord id (Bob) get the request; Carol asked for it.
    let bob = "198345620017348608";
    let requests = standin.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/users/@me/channels" && r.body["recipient_id"] == bob),
        "{requests:#?}"
    );
    let posted = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .count();
    assert!(posted >= 1, "{requests:#?}");
    // Its delivery is recorded: a second run sends nothing again.
    let (code, _, err) = run(Some("stand-in-token")).await.unwrap();
    assert_eq!(code, Some(0), "{err}");
    let again = standin
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .count();
    assert_eq!(again, posted);
}
