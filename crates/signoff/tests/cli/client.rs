//! The CLI as a client of a running server (`--server`, `--token`): the README's tour through
//! the API with tokens only, compared with the same tour on the database directly; a read-only
//! token follows and is refused every change; `wait` outlives a restart of the server.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::workflows::{LOW_RISK_REQUEST, Project, Run};

/// A `signoff serve` of a project, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves the project on `port` (0: any), once it answers.
fn serve(p: &Project, port: u16) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signoff"))
        .current_dir(p.dir.path())
        .env_remove("SIGNOFF_DATABASE_URL")
        .env_remove("SIGNOFF_SERVER")
        .env_remove("SIGNOFF_TOKEN")
        .env_remove("SIGNOFF_USER")
        .env("XDG_CONFIG_HOME", p.dir.path().join(".config"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let url = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve stopped before it listened"
        );
        if let Some(rest) = line.trim().strip_prefix("open:") {
            let rest = rest.trim();
            break rest[..rest[7..].find('/').map_or(rest.len(), |i| i + 7)].to_owned();
        }
    };
    // Keep reading its standard error, so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stderr.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    Server { child, url }
}

/// A secret for a new token of `person` (issued directly, as an operator does).
fn token(p: &Project, person: &str, extra: &[&str]) -> String {
    let mut args = vec!["token", "issue", person];
    args.extend(extra);
    p.ok(&args).trim().to_owned()
}

/// Runs through the server with a token and nothing else: no database, no `--as`.
fn remote(p: &Project, server: &str, token: &str, args: &[&str]) -> Run {
    p.run_with(
        args,
        &[("SIGNOFF_SERVER", server), ("SIGNOFF_TOKEN", token)],
    )
}

/// Bob's approval of the low-risk request, as the README gives it.
fn approval(id: &str) -> [&str; 6] {
    [
        "decide",
        id,
        "team_review",
        "approve",
        "-j",
        "pool size is fine",
    ]
}

/// Asserts that a run failed with `code` and said `what` on standard error.
fn assert_failed(run: &Run, code: i32, what: &str) {
    assert_eq!(run.code, code, "{}{}", run.out, run.err);
    assert!(run.err.contains(what), "{what:?} not in {}", run.err);
}

/// What differs between two runs of the same story: ids, times, hashes, and the channel a
/// command came through (`cli-direct:<os user>` directly, `api` through the server).
fn normalized(text: &str) -> String {
    const SEPARATORS: [char; 6] = [' ', '\n', '(', ')', ',', '"'];
    let mut out = String::new();
    for word in text.split_inclusive(SEPARATORS) {
        let word_core = word.trim_end_matches(SEPARATORS);
        let (core, sep) = word.split_at(word_core.len());
        let bare = core.trim_end_matches([':', '.', ';']);
        let tail = &core[bare.len()..];
        let hex = bare.strip_prefix("sha256:").unwrap_or(bare);
        let replaced = if bare.len() == 36 && bare.matches('-').count() == 4 {
            "ID"
        } else if bare.len() >= 20 && bare.starts_with("20") && bare.ends_with('Z') {
            "TIME"
        } else if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            "HASH"
        } else if bare == "api" || bare.starts_with("cli-direct:") {
            "CHANNEL"
        } else {
            bare
        };
        out.push_str(replaced);
        out.push_str(tail);
        // Columns are padded to the widest value; a channel's name is not the same width.
        if !(sep == " " && out.ends_with(' ')) {
            out.push_str(sep);
        }
    }
    out
}

/// The tour of README's "A deployment approval from the command line", with `act` running
/// each step as the person named; returns what each step printed, normalized.
fn tour(act: &dyn Fn(&str, &[&str]) -> Run) -> Vec<(String, i32, String)> {
    let seen = std::cell::RefCell::new(Vec::new());
    let step = |name: &str, who: &str, args: &[&str]| -> Run {
        let run = act(who, args);
        seen.borrow_mut().push((
            name.to_owned(),
            run.code,
            normalized(&format!("{}{}", run.out, run.err)),
        ));
        run
    };
    let id = step("start", "carol", &["start", "deployment-approval"]);
    assert_eq!(id.code, 0, "{}", id.err);
    let id = id.out.lines().next().unwrap().trim().to_owned();
    let mut submit = vec!["submit", id.as_str(), "request"];
    submit.extend(LOW_RISK_REQUEST);
    step("submit", "carol", &submit);
    // What is running, as JSON: the same row shape both ways (one row, its fields).
    let running = act("pipeline", &["status", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&running.out).unwrap_or_default();
    let fields: Vec<&String> = rows[0]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    let count = rows.as_array().map_or(0, Vec::len);
    seen.borrow_mut().push((
        "running".into(),
        running.code,
        format!("{count} {fields:?}"),
    ));
    let evidence = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(evidence.path(), "Plan: 1 to change, 0 to destroy.\n").unwrap();
    let file = evidence.path().to_str().unwrap();
    step(
        "attach",
        "carol",
        &[
            "attach",
            &id,
            file,
            "--name",
            "plan.txt",
            "--media-type",
            "text/plain",
        ],
    );
    step("inbox", "bob", &["inbox", "bob"]);
    step(
        "self-approval",
        "carol",
        &["decide", &id, "team_review", "approve"],
    );
    step("decide", "bob", &approval(&id));
    step("wait", "pipeline", &["wait", &id]);
    step("timeline", "pipeline", &["timeline", &id]);
    step("status", "pipeline", &["status", &id]);
    step(
        "unknown",
        "pipeline",
        &["status", "01000000-0000-7000-8000-000000000000"],
    );
    step(
        "notifications",
        "pipeline",
        &["notifications", "--instance", &id],
    );
    let now = "2999-01-01T00:00:00Z";
    step("replay", "pipeline", &["replay", &id, "--at", now]);
    step(
        "nobody's notifications",
        "ruth",
        &["notifications", "--person", "nobody"],
    );
    let export = act("pipeline", &["export", "--instance", &id]);
    let types: Vec<String> = export
        .out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["type"].to_string())
        .collect();
    seen.borrow_mut()
        .push(("export".into(), export.code, types.join("\n")));
    // The logs hold different numbers of events (tokens were issued for the server's): what
    // must agree is the verdict.
    let verify = act("ruth", &["verify"]);
    let verdict = verify.out.split(':').next().unwrap_or_default().to_owned();
    seen.borrow_mut()
        .push(("verify".into(), verify.code, verdict));
    seen.into_inner()
}

#[test]
fn the_readme_tour_through_a_server_with_tokens_prints_what_it_prints_directly() {
    let direct = Project::new();
    let expected = tour(&|who, args| {
        let who = if who == "pipeline" { "carol" } else { who };
        let mut args = args.to_vec();
        args.extend(["--as", who]);
        direct.run(&args)
    });

    let p = Project::new();
    let carol = token(&p, "carol", &[]);
    let bob = token(&p, "bob", &[]);
    let pipeline = token(&p, "carol", &["--name", "pipeline", "--read-only"]);
    let auditor = token(&p, "ruth", &["--read-only"]);
    let server = serve(&p, 0);
    let through = tour(&|who, args| {
        let secret = match who {
            "carol" => &carol,
            "bob" => &bob,
            "ruth" => &auditor,
            _ => &pipeline,
        };
        remote(&p, &server.url, secret, args)
    });
    assert_eq!(expected.len(), through.len());
    for ((step, code, out), (_, code_through, out_through)) in expected.iter().zip(&through) {
        assert_eq!(
            (code, out),
            (code_through, out_through),
            "{step}: direct, then through the server"
        );
    }
    assert_eq!(through.last().unwrap().2, "intact", "{through:?}");
    // The refusal is the engine's, in both modes.
    let refused = &through[5];
    assert_eq!((refused.0.as_str(), refused.1), ("self-approval", 2));
    assert!(refused.2.contains("separation of duties"), "{}", refused.2);
    assert!(
        through[2].2.starts_with("1 [\"current_steps\""),
        "{:?}",
        through[2]
    );
    let attached = &through[3];
    assert!(attached.2.contains("plan.txt"), "{attached:?}");
    let told = through.iter().find(|s| s.0 == "notifications").unwrap();
    assert!(told.2.contains("to bob"), "{told:?}");
    let nobody = through.iter().find(|s| s.0.starts_with("nobody")).unwrap();
    assert_eq!(nobody.1, 2, "{nobody:?}");
    assert!(
        nobody.2.contains("not a person of the directory"),
        "{nobody:?}"
    );
}

#[test]
fn a_read_only_token_follows_and_is_refused_every_change_and_as_is_refused() {
    let p = Project::new();
    let id = p.low_risk_deployment("carol");
    let reader = token(&p, "bob", &["--read-only"]);
    let server = serve(&p, 0);
    for args in [
        vec!["status", id.as_str()],
        vec!["timeline", id.as_str()],
        vec!["inbox"],
        vec!["wait", id.as_str(), "--timeout", "1"],
    ] {
        let run = remote(&p, &server.url, &reader, &args);
        let code = if args[0] == "wait" { 4 } else { 0 };
        assert_eq!(run.code, code, "{args:?}: {}{}", run.out, run.err);
    }
    let run = remote(&p, &server.url, &reader, &approval(&id));
    assert_eq!(run.code, 2, "{}", run.out);
    assert!(run.err.starts_with("refused: "), "{}", run.err);
    assert!(run.err.contains("read"), "{}", run.err);
    // Recorded in the security stream, with the person and what was tried.
    let exported = p.ok(&["export"]);
    let refusal = exported
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["type"] == "signoff.security.refused")
        .expect("the refusal is recorded");
    assert_eq!(refusal["data"]["person"], "bob", "{refusal}");
    // Its use is in `token list`, recorded once for all these requests (once an hour).
    let list: serde_json::Value =
        serde_json::from_str(&p.ok(&["token", "list", "--json"])).unwrap();
    let used = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["owner"] == "bob")
        .unwrap();
    assert!(used["last_used"].is_i64(), "{used}");
    let uses = exported
        .lines()
        .filter(|l| l.contains("signoff.token.used") && l.contains(used["id"].as_str().unwrap()))
        .count();
    assert_eq!(uses, 1, "{exported}");
    assert!(p.ok(&["token", "list"]).contains("last used"));
    // Nothing was decided.
    let status = remote(&p, &server.url, &reader, &["status", &id, "--json"]);
    let state: serde_json::Value = serde_json::from_str(&status.out).unwrap();
    assert_eq!(state["status"], "running", "{state}");

    // The token says who acts: --as is refused, a missing token named, plain http refused
    // beyond this machine.
    let run = remote(&p, &server.url, &reader, &["status", "--as", "carol"]);
    assert_failed(&run, 2, "--as");
    let run = p.run_with(&["status"], &[("SIGNOFF_SERVER", &server.url)]);
    assert_failed(&run, 2, "needs a token");
    let run = remote(&p, "http://signoff.example.com", &reader, &["status"]);
    assert_failed(&run, 2, "in clear");
    // A token is for a server; a server and a database at once are one too many.
    let run = p.run_with(&["status"], &[("SIGNOFF_TOKEN", &reader)]);
    assert_failed(
        &run,
        2,
        "a token (--token or SIGNOFF_TOKEN) is for a server",
    );
    let run = remote(
        &p,
        &server.url,
        &reader,
        &["--database", "sqlite://signoff.db", "status"],
    );
    assert_failed(&run, 2, "both a server");
    let run = remote(&p, &server.url, "signoff_not-a-token", &["status"]);
    assert_failed(&run, 2, "refused the token");
    // A wait on an address where no server ever answered is a mistake, said at once.
    let run = remote(&p, "http://127.0.0.1:9", &reader, &["wait", &id]);
    assert_failed(&run, 2, "could not reach the signoff server");
}

#[test]
fn wait_through_the_server_outlives_its_restart_and_exits_with_the_outcome() {
    let p = Project::new();
    let id = p.low_risk_deployment("carol");
    let reader = token(&p, "carol", &["--read-only"]);
    let bob = token(&p, "bob", &[]);
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = serve(&p, port);
    let url = server.url.clone();
    let mut waiting = Command::new(env!("CARGO_BIN_EXE_signoff"))
        .current_dir(p.dir.path())
        .env_remove("SIGNOFF_DATABASE_URL")
        .env_remove("SIGNOFF_USER")
        .env("XDG_CONFIG_HOME", p.dir.path().join(".config"))
        .env("SIGNOFF_SERVER", &url)
        .env("SIGNOFF_TOKEN", &reader)
        .args(["wait", &id, "--timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Following the stream before the server goes.
    let started = Instant::now();
    while !metrics(&url).contains("signoff_stream_subscribers 1") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "wait never subscribed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
    // Down for a while: the wait keeps trying.
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(waiting.try_wait().unwrap().is_none(), "wait gave up");
    let server = serve(&p, port);
    let run = remote(&p, &server.url, &bob, &approval(&id));
    assert_eq!(run.code, 0, "{}", run.err);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = waiting.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "wait did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("approved"));
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.matches("is not answering").count(), 1, "{said}");
}

/// The server's metrics page (it needs no token).
fn metrics(url: &str) -> String {
    use std::io::{Read as _, Write as _};
    let address = url.trim_start_matches("http://");
    let Ok(mut tcp) = std::net::TcpStream::connect(address) else {
        return String::new();
    };
    let _ = tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    answer
}

#[test]
fn login_keeps_the_token_for_the_commands_that_follow_until_a_database_is_named() {
    use std::os::unix::fs::PermissionsExt as _;
    let p = Project::new();
    let id = p.low_risk_deployment("carol");
    let bob = token(&p, "bob", &[]);
    let server = serve(&p, 0);
    let run = p.run_with(&["login", &server.url], &[("SIGNOFF_TOKEN", &bob)]);
    assert_eq!(run.code, 0, "{}", run.err);
    assert!(run.out.contains("as bob"), "{}", run.out);
    let file = p.dir.path().join(".config/signoff/login.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // No server, no token, no --as: bob's inbox, through the server.
    let inbox = p.ok(&["inbox"]);
    // Each row says which request it is, and which step waits.
    assert!(
        inbox.contains(&id)
            && inbox.contains("payments-api v1.2.3 to production: Review by the owning team"),
        "{inbox}"
    );
    // bob's notifications, through the server; another person's are for auditors.
    let told = p.ok(&["notifications"]);
    assert!(told.contains(&id) && told.contains("to bob"), "{told}");
    assert_failed(
        &p.run(&["notifications", "--person", "carol"]),
        2,
        "auditor",
    );
    // A database named: direct, as --as says.
    let direct = p.ok(&[
        "--database",
        "sqlite://signoff.db",
        "inbox",
        "--as",
        "carol",
    ]);
    assert!(direct.contains("nothing waits for carol"), "{direct}");
    // A login others may read is refused, not used.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_failed(&p.run(&["inbox"]), 2, "others may read it");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A wrong token is not kept.
    let run = p.run_with(
        &["login", &server.url],
        &[("SIGNOFF_TOKEN", "signoff_nope")],
    );
    assert_failed(&run, 2, "refused the token");
    assert!(
        p.ok(&["inbox"]).contains(&id),
        "the first login still holds"
    );

    assert!(p.ok(&["logout"]).contains("logged out"));
    assert!(!file.exists());
    assert_failed(&p.run(&["inbox"]), 2, "--as PERSON");
}
