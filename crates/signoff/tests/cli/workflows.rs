//! The workflow commands as a person or a CI pipeline uses them, in a project folder holding
//! the shipped `workflows/` and `people.yaml`, on the embedded default (`./signoff.db`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) struct Project {
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) out: String,
    pub(crate) err: String,
}

impl Project {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let workflows = dir.path().join("workflows");
        std::fs::create_dir(&workflows).unwrap();
        for entry in std::fs::read_dir(repo().join("workflows")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, workflows.join(path.file_name().unwrap())).unwrap();
        }
        std::fs::copy(repo().join("people.yaml"), dir.path().join("people.yaml")).unwrap();
        Self { dir }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// Runs with these environment variables set (and none of signoff's others).
    pub(crate) fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_signoff"))
            .current_dir(self.dir.path())
            .env_remove("SIGNOFF_DATABASE_URL")
            .env_remove("SIGNOFF_USER")
            .env_remove("SIGNOFF_SERVER")
            .env_remove("SIGNOFF_TOKEN")
            // A login saved on this machine must not turn the tests into its clients.
            .env("XDG_CONFIG_HOME", self.dir.path().join(".config"))
            .envs(env.iter().copied())
            .args(args)
            .output()
            .expect("run signoff");
        Run {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8(out.stdout).unwrap(),
            err: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Runs and expects success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "signoff {args:?}: {}{}", run.out, run.err);
        run.out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).expect("JSON output")
    }

    /// Starts a low-risk deployment request as `who` and submits its form.
    pub(crate) fn low_risk_deployment(&self, who: &str) -> String {
        let id = self.ok(&["start", "deployment-approval", "--as", who]);
        let id = id.lines().next().unwrap().trim().to_owned();
        let mut submit = vec!["submit", id.as_str(), "request", "--as", who];
        submit.extend(LOW_RISK_REQUEST);
        self.ok(&submit);
        id
    }
}

/// The request form of a low-risk change to the payments service, as `--set` arguments.
pub(crate) const LOW_RISK_REQUEST: [&str; 18] = [
    "--set",
    "service=payments-api",
    "--set",
    "team=payments",
    "--set",
    "environment=production",
    "--set",
    "version=v1.2.3",
    "--set",
    "change_type=normal",
    "--set",
    "risk=low",
    "--set",
    "description=Raise the connection pool size to 50",
    "--set",
    "rollback_plan=Redeploy v1.2.2 from the pipeline, 5 minutes",
    "--set",
    "ticket=https://tracker.example.com/browse/CHG-1234",
];

#[test]
fn validate_passes_the_shipped_workflows_and_names_each_problem_with_its_position() {
    let out = Command::new(env!("CARGO_BIN_EXE_signoff"))
        .current_dir(repo())
        .args(["validate", "workflows/"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let p = Project::new();
    let broken = p.dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "id: broken\ntitle: Broken\nsteps:\n  - id: ask\n    form: {fields: [{id: x, type: text}]}\n    next: nowhere\n  - id: done\n    end: {outcome: ok}\n",
    )
    .unwrap();
    let run = p.run(&["validate", "broken.yaml"]);
    assert_eq!(run.code, 1, "{}", run.err);
    assert!(run.err.contains("broken.yaml:6:11: "), "{}", run.err);
    assert!(run.err.contains("nowhere"), "{}", run.err);
    assert!(
        run.err.contains("broken.yaml:7:9: "),
        "unreachable `done`: {}",
        run.err
    );
    let run = p.run(&["validate", "broken.yaml", "--json"]);
    let report: Value = serde_json::from_str(&run.out).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["problems"][0]["line"], 6);
    // A folder is also checked as a whole: the post-mortem waits for the incident workflow.
    std::fs::remove_file(p.dir.path().join("workflows/incident.yaml")).unwrap();
    let run = p.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(
        run.err.contains("post-mortem.yaml") && run.err.contains("\"incident\""),
        "{}",
        run.err
    );
}

#[test]
fn a_broken_workflow_file_is_reported_and_left_out_and_the_others_still_work() {
    let p = Project::new();
    let id = p.low_risk_deployment("carol");
    std::fs::write(
        p.dir.path().join("workflows/broken.yaml"),
        "id: broken\ntitle: Broken\nsteps:\n  - id: ask\n    form: {fields: [{id: x, type: text}]}\n    next: nowhere\n",
    )
    .unwrap();
    // Its problem is said, where it is; the instance of another workflow is there as ever.
    let run = p.run(&["status", &id]);
    assert_eq!(run.code, 0, "{}", run.err);
    assert!(run.out.contains("team_review"), "{}", run.out);
    assert!(
        run.err.contains("broken.yaml:6:11: ") && run.err.contains("not loaded"),
        "{}",
        run.err
    );
    // A new one of the workflows that are fine starts; of the broken one, none does.
    let run = p.run(&["start", "deployment-approval", "--as", "carol"]);
    assert_eq!(run.code, 0, "{}", run.err);
    let run = p.run(&["start", "broken", "--as", "carol"]);
    assert_eq!(run.code, 2, "{}", run.err);
    // A workflow that others depend on, left out, leaves them out too (fail closed).
    std::fs::remove_file(p.dir.path().join("workflows/broken.yaml")).unwrap();
    std::fs::write(
        p.dir.path().join("workflows/incident.yaml"),
        "id: incident\n",
    )
    .unwrap();
    let run = p.run(&["start", "post-mortem", "--as", "carol"]);
    assert_eq!(run.code, 2, "{}", run.err);
    assert!(run.err.contains("post-mortem.yaml"), "{}", run.err);
    p.ok(&["status", &id]);
}

#[test]
fn schema_prints_the_committed_schema() {
    let p = Project::new();
    let printed: Value = serde_json::from_str(&p.ok(&["schema"])).unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("workflows/schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        printed, committed,
        "workflows/schema.json is stale: cargo run -p signoff -- schema > workflows/schema.json"
    );
}

#[test]
fn a_pipeline_gates_on_wait_and_refusals_say_why() {
    let p = Project::new();
    let id = p.low_risk_deployment("carol");
    let inbox = p.json(&["inbox", "bob"]);
    assert_eq!(inbox[0]["instance"], id.as_str());
    assert_eq!(inbox[0]["step"], "team_review");

    let run = p.run(&["decide", &id, "team_review", "approve", "--as", "carol"]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("separation of duties"), "{}", run.err);
    let run = p.run(&[
        "decide",
        &id,
        "team_review",
        "reject",
        "-j",
        "no",
        "--as",
        "bob",
    ]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("at least 10"), "{}", run.err);
    // Asked for JSON, a refusal is JSON too, with the field at fault.
    let run = p.run(&[
        "--json",
        "decide",
        &id,
        "team_review",
        "reject",
        "-j",
        "no",
        "--as",
        "bob",
    ]);
    assert_eq!(run.code, 2);
    let refusal: Value = serde_json::from_str(run.err.trim()).unwrap();
    assert_eq!(refusal["error"], "refused", "{refusal}");
    assert_eq!(refusal["field"], "justification", "{refusal}");
    assert!(run.out.is_empty(), "{}", run.out);
    let run = p.run(&["decide", &id, "team_review", "approve"]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("--as PERSON"), "{}", run.err);
    let run = p.run(&[
        "decide",
        "no-such-instance",
        "team_review",
        "approve",
        "--as",
        "bob",
    ]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("no instance"), "{}", run.err);

    p.ok(&[
        "decide",
        &id,
        "team_review",
        "approve",
        "-j",
        "pool size is fine",
        "--as",
        "bob",
    ]);
    let run = p.run(&["wait", &id]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    assert!(run.out.contains("approved"), "{}", run.out);
    let timeline = p.ok(&["timeline", &id]);
    let decision = timeline
        .lines()
        .find(|l| l.contains("approved team_review"))
        .expect("the decision is in the timeline");
    assert!(
        decision.contains("bob") && decision.contains(" cli-direct:"),
        "{decision}"
    );
    assert!(decision.contains("pool size is fine"), "{decision}");
    // The self-approval attempt is in the security stream, and nothing else of it was written.
    let exported = p.ok(&["export"]);
    let refused: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "signoff.security.refused")
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "only the self-approval is a rights matter"
    );
    assert_eq!(refused[0]["data"]["person"], "carol");

    // Rejected: exit 1. Cancelled: exit 3. Still running at the timeout: exit 4.
    let rejected = p.low_risk_deployment("carol");
    p.ok(&[
        "decide",
        &rejected,
        "team_review",
        "reject",
        "-j",
        "no rollback tested",
        "--as",
        "oscar",
    ]);
    assert_eq!(p.run(&["wait", &rejected]).code, 1);
    let cancelled = p.low_risk_deployment("carol");
    p.ok(&[
        "cancel",
        &cancelled,
        "--reason",
        "superseded",
        "--as",
        "carol",
    ]);
    assert_eq!(p.run(&["wait", &cancelled]).code, 3);
    let pending = p.low_risk_deployment("carol");
    let run = p.run(&["wait", &pending, "--timeout", "1"]);
    assert_eq!(run.code, 4, "{}", run.out);
    assert!(p.ok(&["status"]).contains(&pending), "listed as running");
}

#[test]
fn replay_shows_the_state_that_was_live_and_export_is_cloudevents() {
    let p = Project::new();
    let id = p.low_risk_deployment("carol");
    let before = p.json(&["status", &id]);
    // The moment between the submission and the decision.
    let timeline: Vec<Value> = p
        .ok(&["timeline", &id, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = timeline.last().unwrap()["time"].as_i64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    p.ok(&[
        "decide",
        &id,
        "team_review",
        "approve",
        "-j",
        "fine",
        "--as",
        "bob",
    ]);
    let at = chrono_like_rfc3339(at);
    let past = p.json(&["replay", &id, "--at", &at]);
    assert_eq!(past["status"], "running");
    assert!(past["active"]["team_review"].is_object(), "{past}");
    assert_eq!(
        past, before,
        "the state then is the state that was live then"
    );
    let now = p.json(&["status", &id]);
    assert_eq!(now["status"], "ended");
    let run = p.run(&["replay", &id, "--at", "2001-01-01T00:00:00Z"]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("did not exist yet"), "{}", run.err);
    let run = p.run(&["replay", &id, "--at", "yesterday"]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("RFC 3339"), "{}", run.err);
    // An id that names nothing is not an instance of the future.
    let run = p.run(&["replay", "nope", "--at", "2001-01-01T00:00:00Z"]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("no instance \"nope\""), "{}", run.err);
    // An auditor's typo in --from is not tampering.
    let run = p.run(&["verify", "--from", "999999"]);
    assert_eq!(run.code, 2, "{}{}", run.out, run.err);
    assert!(run.err.contains("nothing to verify"), "{}", run.err);
    assert!(!run.out.contains("BROKEN"), "{}", run.out);

    let lines: Vec<Value> = p
        .ok(&["export", "--instance", &id])
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(
        json!(lines.len()),
        now["version"],
        "every event of the instance"
    );
    for event in &lines {
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["streamid"], format!("instance/{id}"));
        assert!(event["hash"].as_str().unwrap().len() == 64, "{event}");
    }
    let verify = p.ok(&["verify"]);
    assert!(verify.starts_with("intact"), "{verify}");
    let all = p.ok(&["export"]);
    assert!(
        all.contains("signoff.definition.recorded"),
        "the definition is pinned in the log"
    );
}

/// Microseconds since the epoch as RFC 3339, the way `--at` takes it.
fn chrono_like_rfc3339(micros: i64) -> String {
    signoff_core::Timestamp(micros).to_rfc3339()
}

#[test]
fn bench_workflows_completes_every_instance_and_reports_its_figures() {
    let p = Project::new();
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(p.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let out = p.ok(&[
        "bench",
        "workflows",
        "--instances",
        "40",
        "--concurrency",
        "8",
    ]);
    let line: Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(line["scenario"], "workflows");
    assert_eq!(line["instances"], 40);
    assert_eq!(line["commands"], 120);
    assert_eq!(
        listing(),
        before,
        "the scratch log is removed, the real one untouched"
    );
    for key in [
        "completed_per_sec",
        "peak_rss_mib",
        "p50_ms",
        "p99_ms",
        "heap_mib_at_end",
    ] {
        assert!(
            line[key].as_f64().is_some_and(|v| v > 0.0),
            "{key} in {line}"
        );
    }
}

#[test]
fn a_configuration_file_fills_what_flags_and_environment_leave_unset() {
    let p = Project::new();
    std::fs::rename(
        p.dir.path().join("people.yaml"),
        p.dir.path().join("staff.yaml"),
    )
    .unwrap();
    std::fs::write(
        p.dir.path().join("signoff.yaml"),
        "people: staff.yaml\ndatabase: sqlite://configured.db\n",
    )
    .unwrap();
    // Without the file, nobody is known; with it, carol is.
    assert_eq!(
        p.run(&["start", "deployment-approval", "--as", "carol"])
            .code,
        2
    );
    p.ok(&[
        "--config",
        "signoff.yaml",
        "start",
        "deployment-approval",
        "--as",
        "carol",
    ]);
    assert!(p.dir.path().join("configured.db").exists());
    // A flag wins over the file.
    p.ok(&[
        "--config",
        "signoff.yaml",
        "--database",
        "sqlite://flagged.db",
        "start",
        "deployment-approval",
        "--as",
        "carol",
    ]);
    assert!(p.dir.path().join("flagged.db").exists());

    // Token management: issue, list, revoke; the secret is printed once and not listed.
    let secret = p.ok(&[
        "--config",
        "signoff.yaml",
        "token",
        "issue",
        "carol",
        "--name",
        "ci",
    ]);
    let secret = secret.trim();
    assert!(secret.starts_with("signoff_"), "{secret}");
    let list = p.json(&["--config", "signoff.yaml", "token", "list"]);
    assert_eq!(list[0]["owner"], "carol");
    assert!(!list.to_string().contains(secret));
    let id = list[0]["id"].as_str().unwrap();
    p.ok(&[
        "--config",
        "signoff.yaml",
        "token",
        "revoke",
        id,
        "--reason",
        "rotated",
    ]);
    let list = p.json(&["--config", "signoff.yaml", "token", "list"]);
    assert!(list[0]["revoked_at"].is_number(), "{list}");
    // A pipeline's token reads and changes nothing, and says so in the list.
    p.ok(&[
        "--config",
        "signoff.yaml",
        "token",
        "issue",
        "carol",
        "--name",
        "pipeline",
        "--read-only",
        "--workflow",
        "deployment-approval",
    ]);
    let list = p.json(&["--config", "signoff.yaml", "token", "list"]);
    assert_eq!(list[1]["read_only"], true, "{list}");
    assert_eq!(
        list[1]["workflows"],
        json!(["deployment-approval"]),
        "{list}"
    );
    assert!(list[0].get("read_only").is_none(), "{list}");
    let text = p.ok(&["--config", "signoff.yaml", "token", "list"]);
    assert!(
        text.contains("pipeline")
            && text.contains("read-only")
            && text.contains("deployment-approval only"),
        "{text}"
    );
    // A workflow signoff does not know is a typo, not a token that reaches nothing.
    let run = p.run(&[
        "--config",
        "signoff.yaml",
        "token",
        "issue",
        "carol",
        "--workflow",
        "deployment-aproval",
    ]);
    assert_eq!(run.code, 2, "{}", run.err);
    assert!(run.err.contains("deployment-aproval"), "{}", run.err);

    std::fs::write(p.dir.path().join("bad.yaml"), "lisen: 1\n").unwrap();
    let run = p.run(&["--config", "bad.yaml", "workflows"]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("unknown field `lisen`"), "{}", run.err);
}

#[test]
fn projections_match_the_log_and_a_rebuild_makes_the_same_rows() {
    let project = Project::new();
    let running = project.low_risk_deployment("dave");
    let ended = project.low_risk_deployment("dave");
    project.ok(&["cancel", &ended, "--as", "dave", "--reason", "not needed"]);

    let out = project.ok(&["projections", "rebuild", "--check"]);
    assert!(out.starts_with("the read models match the log: "), "{out}");
    let report = project.json(&["projections", "rebuild", "--check"]);
    assert_eq!(report["count"], 0, "{report}");
    assert!(report["rows"].as_u64().unwrap() >= 4, "{report}");

    let out = project.ok(&["projections", "rebuild"]);
    assert!(
        out.starts_with("read models built again from the log up to sequence "),
        "{out}"
    );
    let report = project.json(&["projections", "rebuild", "--check"]);
    assert_eq!(report["count"], 0, "{report}");
    // What reads them still answers.
    let status = project.json(&["status", &running]);
    assert_eq!(status["status"], "running", "{status}");
    let status = project.json(&["status", &ended]);
    assert_eq!(status["status"], "cancelled", "{status}");

    // Without a log there is nothing to compare: an error, not a pass.
    let empty = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_signoff"))
        .current_dir(empty.path())
        .env_remove("SIGNOFF_DATABASE_URL")
        .args(["projections", "rebuild", "--check"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
}
