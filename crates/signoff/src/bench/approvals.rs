//! `signoff bench approvals`: approvals over the HTTP API, as a CI pipeline's calls would arrive.
//!
//! N instances of a one-gate workflow ([`WORKFLOW`]) are started by C concurrent HTTP clients
//! (`POST /api/v1/instances`, as the requester), then approved by C concurrent clients
//! (`POST /api/v1/instances/{id}/decide`, as the approver). The latency measured is that of one
//! approval: the server answers once the decision's events are durably appended and the instance
//! has ended, which the bench checks (the answer must hold `signoff.instance.ended`; anything
//! else counts as an error).
//!
//! Without `--url` the server runs in this process, as `signoff serve` would, over a scratch log
//! (a SQLite file in a folder beside the `--database` file, or a scratch PostgreSQL schema), a
//! `workflows/` folder holding only the bench workflow and a `people.yaml` of two people; all
//! of it is removed at the end. With `--url` it measures a server of your own, which must have
//! loaded the bench workflow (`--print-workflow` prints it) and know the two people whose tokens
//! are given.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use signoff_runtime::access::Scope;
use signoff_runtime::{Config, Definitions, Runtime, event_types};
use signoff_server::AppState;
use signoff_store::{DatabaseUrl, OpenOptions, SystemClock};

use super::{Memory, Scratch, memory, per_sec, quantile_ms, scratch};

/// The workflow the benchmark runs: one approval gate, nothing else.
pub const WORKFLOW: &str = r"# The workflow of `signoff bench approvals`: one approval gate, nothing else. The requester starts
# an instance, which waits at the gate; one holder of the role `bench-approver` approves it (the
# requester may not, even holding the role: separation of duties), and the instance ends
# `approved`.
#
# To run the benchmark against a server of your own (`signoff bench approvals --url URL`), put this
# file in the server's workflows folder and give its people.yaml two people: the requester (anyone)
# and an approver holding the role `bench-approver`; then issue a token for each
# (`signoff token issue PERSON`) and pass them as --requester-token and --approver-token.
id: bench-approval
title: Benchmark approval
description: >-
  A request that one approver must approve: the smallest workflow with an approval gate, used to
  measure starts and approvals over the HTTP API.

roles:
  bench-approver:
    description: Approves benchmark requests.

steps:
  - id: review
    title: Review
    approval:
      approvers:
        - role: bench-approver
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

/// The workflow's id, and the gate its instances wait at.
const WORKFLOW_ID: &str = "bench-approval";
const GATE: &str = "review";
/// The role the gate asks for.
const ROLE: &str = "bench-approver";

/// The directory of the embedded server: both people hold the role, so it is separation of
/// duties that keeps the requester from approving.
const PEOPLE: &str = "people:
  - id: requester
    name: Bench Requester
    email: requester@bench.invalid
    roles: [bench-approver]
  - id: approver
    name: Bench Approver
    email: approver@bench.invalid
    roles: [bench-approver]
";

/// The event an approval's answer must hold.
const ENDED: &str = "signoff.instance.ended";

/// The options of `signoff bench approvals`.
#[derive(clap::Args)]
pub struct Args {
    /// Instances started, then approved.
    #[arg(long, default_value_t = 10_000)]
    instances: usize,
    /// Concurrent HTTP clients (one connection each, kept alive).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// A running server to measure, e.g. http://127.0.0.1:8080, instead of one started in this
    /// process. It must have loaded the bench workflow (see --print-workflow).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// With --url: an API token of the person who starts the instances.
    #[arg(
        long,
        env = "SIGNOFF_BENCH_REQUESTER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    requester_token: Option<String>,
    /// With --url: an API token of a person holding the role `bench-approver` (not the
    /// requester).
    #[arg(
        long,
        env = "SIGNOFF_BENCH_APPROVER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    approver_token: Option<String>,
    /// Print the bench workflow (YAML) and exit: put it in a server's workflows folder to
    /// measure that server with --url.
    #[arg(long)]
    print_workflow: bool,
}

/// Runs the benchmark (or prints its workflow) and prints its JSON line; exits 1 when any
/// request failed.
pub async fn run(g: &crate::Global, args: Args) -> anyhow::Result<ExitCode> {
    if args.print_workflow {
        outln!("{}", WORKFLOW.trim_end())?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.instances == 0 || args.clients == 0 {
        bail!("--instances and --clients must be at least 1");
    }
    let report = if let Some(url) = &args.url {
        let (Some(requester), Some(approver)) = (&args.requester_token, &args.approver_token)
        else {
            bail!(
                "--url needs the tokens of two people of that server: --requester-token (or \
                 SIGNOFF_BENCH_REQUESTER_TOKEN) and --approver-token (or \
                 SIGNOFF_BENCH_APPROVER_TOKEN), the approver holding the role `{ROLE}`"
            );
        };
        let api = Api::new(url.trim_end_matches('/'), requester, approver, false)?;
        let mut report = measure(&api, &args, None).await?;
        report.extend([
            ("server".to_owned(), json!(&*api.base)),
            ("backend".to_owned(), Value::Null),
            ("server_peak_rss_mib".to_owned(), Value::Null),
        ]);
        report
    } else {
        // With an SMTP server named (--smtp-url), the server emails as `signoff serve` would.
        let reactors = g.reactors()?;
        let emailing = reactors.iter().any(|r| r.name() == "email");
        let embedded = Embedded::start(&g.url()?, reactors).await?;
        let server = &embedded.server;
        let api = Api::new(
            &format!("http://{}", server.addr),
            &server.tokens.0,
            &server.tokens.1,
            true,
        );
        let measured = match api {
            Ok(api) => measure(&api, &args, Some(&server.runtime)).await,
            Err(e) => Err(e),
        };
        let backend = server.runtime.log().backend();
        let events = server.runtime.log().tail().await.map(|t| t.sequence);
        let running = server.runtime.running().len();
        let emailed = server
            .runtime
            .delivery_counters()
            .get("email")
            .map(|c| c.delivered);
        embedded.stop().await?;
        let mut report = measured?;
        report.extend([
            ("email".to_owned(), json!(emailing)),
            ("emails_delivered_by_end".to_owned(), json!(emailed)),
            ("server".to_owned(), json!("embedded")),
            ("backend".to_owned(), json!(backend)),
            ("events".to_owned(), json!(events?)),
            ("running_at_end".to_owned(), json!(running)),
        ]);
        report
    };
    let errors = report.get("errors").and_then(Value::as_u64).unwrap_or(0);
    outln!("{}", Value::Object(report))?;
    if errors > 0 {
        eprintln!("signoff bench approvals: {errors} request(s) failed (see first_error)");
        return Ok(ExitCode::from(crate::EXIT_NO));
    }
    Ok(ExitCode::SUCCESS)
}

/// Fills a scratch log (beside `url`'s file) with `count` approvals made through the HTTP API of
/// a server started in this process, started and approved by `clients` clients; stops the
/// server as `signoff serve` stops and keeps the log and its files. Returns the log and the
/// instances' ids.
pub(super) async fn fill(
    url: &DatabaseUrl,
    count: usize,
    clients: usize,
) -> anyhow::Result<(Scratch, Vec<String>)> {
    let embedded = Embedded::start(url, signoff_runtime::reactor::built_in()).await?;
    let server = &embedded.server;
    let api = Api::new(
        &format!("http://{}", server.addr),
        &server.tokens.0,
        &server.tokens.1,
        true,
    )?;
    let phase = drive(count, clients, move |_| {
        let api = api.clone();
        async move {
            let id = api.start().await?;
            api.approve(&id).await?;
            Ok(id)
        }
    })
    .await?;
    let Embedded { server, log } = embedded;
    server.stop().await?;
    if let Some(error) = phase.errors.first {
        bail!(
            "{} approval(s) failed while filling the log: {error}",
            phase.errors.count
        );
    }
    Ok((log, phase.ok.into_iter().map(|(_, id)| id).collect()))
}

/// A server started in this process, on scratch files and a scratch log.
struct Embedded {
    server: Server,
    log: Scratch,
}

/// The running server of [`Embedded`].
struct Server {
    runtime: Arc<Runtime>,
    addr: SocketAddr,
    /// Secrets of the requester's and the approver's tokens.
    tokens: (String, String),
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The workflow and directory files, when they are not in the scratch log's folder.
    files: Option<tempfile::TempDir>,
}

impl Embedded {
    /// Opens a scratch log beside `url`'s file (or in a scratch PostgreSQL schema) and serves
    /// the bench workflow on it; nothing is left behind when this fails.
    async fn start(
        url: &DatabaseUrl,
        reactors: Vec<Arc<dyn signoff_runtime::reactor::Reactor>>,
    ) -> anyhow::Result<Self> {
        let log = scratch(url, OpenOptions::new(event_types())).await?;
        match Server::start(&log, url, reactors).await {
            Ok(server) => Ok(Self { server, log }),
            Err(e) => {
                log.remove().await?;
                Err(e)
            }
        }
    }

    /// Stops serving and removes the scratch log and files.
    async fn stop(self) -> anyhow::Result<()> {
        let stopped = self.server.stop().await;
        self.log.remove().await?;
        stopped
    }
}

impl Server {
    /// Stops serving, as `signoff serve` stops (the clock writes the read models last).
    async fn stop(self) -> anyhow::Result<()> {
        let Self {
            runtime,
            stop,
            served,
            files,
            ..
        } = self;
        let _ = stop.send(());
        let served = served.await.context("the bench server panicked");
        drop(runtime);
        drop(files);
        served?.context("the bench server failed")?;
        Ok(())
    }

    /// Writes the workflow and the directory, opens the runtime on `log`, issues the two
    /// tokens and serves on a free port of 127.0.0.1, as `signoff serve` does.
    async fn start(
        log: &Scratch,
        url: &DatabaseUrl,
        reactors: Vec<Arc<dyn signoff_runtime::reactor::Reactor>>,
    ) -> anyhow::Result<Self> {
        // The files go into the scratch log's folder; a PostgreSQL log has none, so they get
        // a folder of their own.
        let files = match log.folder() {
            Some(_) => None,
            None => Some(
                tempfile::Builder::new()
                    .prefix(".signoff-bench-")
                    .tempdir()
                    .context("cannot create a scratch folder for the bench workflow")?,
            ),
        };
        let root = files
            .as_ref()
            .map(tempfile::TempDir::path)
            .or_else(|| log.folder())
            .context("no scratch folder for the bench workflow")?
            .to_path_buf();
        let workflows = root.join("workflows");
        std::fs::create_dir(&workflows)
            .with_context(|| format!("cannot create {}", workflows.display()))?;
        std::fs::write(workflows.join("bench-approval.yaml"), WORKFLOW)
            .context("cannot write the bench workflow")?;
        std::fs::write(root.join("people.yaml"), PEOPLE)
            .context("cannot write the bench people.yaml")?;
        let config = Config {
            database: url.clone(),
            workflows: workflows.clone(),
            people: root.join("people.yaml"),
            evidence: root.join("evidence"),
            clock: Arc::new(SystemClock),
        };
        let definitions = Definitions::load_dir(&workflows)?;
        let runtime =
            Arc::new(signoff_runtime::open_on(log.log.clone(), &config, definitions).await?);
        let requester = runtime
            .issue_token("requester", "bench", None, &Scope::default(), "system")
            .await?
            .secret
            .expose()
            .to_owned();
        let approver = runtime
            .issue_token("approver", "bench", None, &Scope::default(), "system")
            .await?
            .secret
            .expose()
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(signoff_server::serve_with(
            listener,
            AppState::new(runtime.clone()),
            reactors,
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            runtime,
            addr,
            tokens: (requester, approver),
            stop,
            served,
            files,
        })
    }
}

/// The two people's calls on a server.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: Arc<str>,
    requester: Arc<str>,
    approver: Arc<str>,
}

/// What the bench reads of a command's answer.
#[derive(Deserialize)]
struct Answer {
    instance: String,
    events: Vec<Typed>,
}

#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    ty: String,
}

impl Api {
    fn new(base: &str, requester: &str, approver: &str, local: bool) -> anyhow::Result<Self> {
        if !base.starts_with("http://") && !base.starts_with("https://") {
            bail!("--url {base:?} is not an http:// address (e.g. http://127.0.0.1:8080)");
        }
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
        if local {
            // A proxy from the environment must not sit between the bench and its own server.
            builder = builder.no_proxy();
        }
        Ok(Self {
            http: builder.build().context("cannot build the HTTP client")?,
            base: base.into(),
            requester: requester.into(),
            approver: approver.into(),
        })
    }

    /// GET as `token`; the JSON answer, or what was wrong.
    async fn get(&self, token: &str, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !status.is_success() {
            bail!("GET {url}: {}", problem(status, &body));
        }
        serde_json::from_slice(&body).with_context(|| format!("GET {url}: the answer is not JSON"))
    }

    /// Checks, before any load, that the server has the workflow and the two people can play
    /// their parts; the error says what to fix.
    async fn preflight(&self) -> anyhow::Result<()> {
        let name = |who: &Value| who["id"].as_str().unwrap_or("?").to_owned();
        let requester = self
            .get(&self.requester, "/api/v1/me")
            .await
            .context("the requester token does not work")?;
        let approver = self
            .get(&self.approver, "/api/v1/me")
            .await
            .context("the approver token does not work")?;
        if requester["id"] == approver["id"] {
            bail!(
                "the requester and approver tokens are both {}'s: separation of duties needs two \
                 people",
                name(&approver)
            );
        }
        let holds_role = approver["roles"]
            .as_array()
            .is_some_and(|roles| roles.iter().any(|r| r == ROLE));
        if !holds_role {
            bail!(
                "the approver token is {}'s, who does not hold the role `{ROLE}` the bench \
                 workflow's gate asks for",
                name(&approver)
            );
        }
        self.get(
            &self.requester,
            &format!("/api/v1/definitions/{WORKFLOW_ID}"),
        )
        .await
        .with_context(|| {
            format!(
                "the server has no usable workflow {WORKFLOW_ID:?}: put the output of \
                     `signoff bench approvals --print-workflow` in its workflows folder and \
                     restart it"
            )
        })?;
        Ok(())
    }

    /// Starts an instance as the requester; its id.
    async fn start(&self) -> Result<String, String> {
        let response = self
            .http
            .post(format!("{}/api/v1/instances", self.base))
            .bearer_auth(&*self.requester)
            .json(&json!({ "workflow": WORKFLOW_ID }))
            .send()
            .await
            .map_err(|e| format!("start: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("start: {e}"))?;
        if status != reqwest::StatusCode::CREATED {
            return Err(format!("start: {}", problem(status, &body)));
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| format!("start: the answer is not a command result: {e}"))?;
        Ok(answer.instance)
    }

    /// Approves an instance as the approver; an error unless the answer says it ended.
    async fn approve(&self, id: &str) -> Result<(), String> {
        let response = self
            .http
            .post(format!("{}/api/v1/instances/{id}/decide", self.base))
            .bearer_auth(&*self.approver)
            .json(&json!({
                "step": GATE,
                "verdict": "approve",
                "justification": "benchmark approval",
            }))
            .send()
            .await
            .map_err(|e| format!("decide {id}: {e}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("decide {id}: {e}"))?;
        if !status.is_success() {
            return Err(format!("decide {id}: {}", problem(status, &body)));
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| format!("decide {id}: the answer is not a command result: {e}"))?;
        if !answer.events.iter().any(|e| e.ty == ENDED) {
            return Err(format!(
                "decide {id}: the answer records no {ENDED} event, so the instance did not end"
            ));
        }
        Ok(())
    }
}

/// An error answer in a few words: the status and the problem document's detail (or the body).
fn problem(status: reqwest::StatusCode, body: &[u8]) -> String {
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    format!("HTTP {status}: {detail}")
}

/// Failed requests of a phase: how many, and the first one's reason.
#[derive(Default)]
struct Errors {
    count: usize,
    first: Option<String>,
}

impl Errors {
    fn add(&mut self, reason: String) {
        self.count += 1;
        self.first.get_or_insert(reason);
    }
}

/// One phase's results.
struct Phase<O> {
    elapsed: Duration,
    /// Successful requests: their latency and what they returned.
    ok: Vec<(Duration, O)>,
    errors: Errors,
    /// CPU cores this process kept busy, on average.
    cores: f64,
}

impl<O> Phase<O> {
    fn latencies(&self) -> Vec<Duration> {
        let mut latencies: Vec<Duration> = self.ok.iter().map(|(took, _)| *took).collect();
        latencies.sort_unstable();
        latencies
    }
}

/// Runs `op(0)` … `op(count - 1)` from `clients` tasks, each taking the next index as it is
/// done with its last, and times each call.
async fn drive<O, F, Fut>(count: usize, clients: usize, op: F) -> anyhow::Result<Phase<O>>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, String>> + Send + 'static,
    O: Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = cpu_seconds();
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients.min(count) {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let sent = Instant::now();
                let result = op(i).await;
                done.push((sent.elapsed(), result));
            }
            done
        }));
    }
    let mut ok = Vec::with_capacity(count);
    let mut errors = Errors::default();
    for task in tasks {
        for (took, result) in task.await.context("a bench client panicked")? {
            match result {
                Ok(out) => ok.push((took, out)),
                Err(reason) => errors.add(reason),
            }
        }
    }
    let elapsed = began.elapsed();
    let cores = ((cpu_seconds() - cpu) / elapsed.as_secs_f64().max(1e-9) * 100.0).round() / 100.0;
    Ok(Phase {
        elapsed,
        ok,
        errors,
        cores,
    })
}

/// The two phases against `api`; the figures of the JSON line. `server` is the runtime when it
/// runs in this process.
async fn measure(
    api: &Api,
    args: &Args,
    server: Option<&Arc<Runtime>>,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    api.preflight().await?;
    let before = memory();

    let starter = api.clone();
    let starts = drive(args.instances, args.clients, move |_| {
        let api = starter.clone();
        async move { api.start().await }
    })
    .await?;
    let after_starts = memory();
    let running_after_starts = server.map(|rt| rt.running().len());

    let ids: Arc<Vec<String>> = Arc::new(starts.ok.iter().map(|(_, id)| id.clone()).collect());
    let approver = api.clone();
    let approve_ids = ids.clone();
    let approvals = drive(ids.len(), args.clients, move |i| {
        let (api, id) = (approver.clone(), approve_ids[i].clone());
        async move { api.approve(&id).await }
    })
    .await?;
    let end = memory();

    let start_latencies = starts.latencies();
    let latencies = approvals.latencies();
    let errors = starts.errors.count + approvals.errors.count;
    let first_error = starts.errors.first.or(approvals.errors.first);
    let in_process = server.is_some();
    let mib = |m: Memory, f: fn(&Memory) -> f64| in_process.then(|| f(&m));
    let json = json!({
        "scenario": "approvals",
        "workflow": WORKFLOW_ID,
        "instances": args.instances,
        "clients": args.clients,
        "starts": starts.ok.len(),
        "approvals": approvals.ok.len(),
        "errors": errors,
        "start_errors": starts.errors.count,
        "approval_errors": approvals.errors.count,
        "first_error": first_error,
        "starts_seconds": starts.elapsed.as_secs_f64(),
        "starts_per_sec": per_sec(starts.ok.len() as u64, starts.elapsed),
        "start_p50_ms": quantile_ms(&start_latencies, 0.50),
        "start_p99_ms": quantile_ms(&start_latencies, 0.99),
        "approvals_seconds": approvals.elapsed.as_secs_f64(),
        "approvals_per_sec": per_sec(approvals.ok.len() as u64, approvals.elapsed),
        "p50_ms": quantile_ms(&latencies, 0.50),
        "p95_ms": quantile_ms(&latencies, 0.95),
        "p99_ms": quantile_ms(&latencies, 0.99),
        "max_ms": quantile_ms(&latencies, 1.0),
        "latency_of": "one approval: from sending POST .../decide to its answer, given once the \
                       events are durably appended and the instance has ended",
        "server_peak_rss_mib": mib(end, |m| m.peak),
        "rss_mib_before_load": mib(before, |m| m.rss),
        "peak_rss_mib_before_load": mib(before, |m| m.peak),
        "rss_mib_after_starts": mib(after_starts, |m| m.rss),
        "heap_mib_after_starts": mib(after_starts, |m| m.anon),
        "running_after_starts": running_after_starts,
        "rss_of": if in_process {
            "this process: the server (runtime, store, HTTP) and the bench's HTTP clients"
        } else {
            "the server's memory is not measured with --url"
        },
        "cpu_cores_starts": starts.cores,
        "cpu_cores_approvals": approvals.cores,
        "cpu_of": if in_process { "this process: server and clients" } else { "the bench's clients" },
    });
    match json {
        Value::Object(map) => Ok(map),
        _ => bail!("the report is not a JSON object"),
    }
}

/// CPU time this process has used (user and system), in seconds; 0 where /proc is missing.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start with the state (field 3);
    // utime and stime are fields 14 and 15, in clock ticks of 1/100 s on Linux.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => 0.0,
    }
}
