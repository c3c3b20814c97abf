//! `signoff bench workflows`: deployment approvals through the engine, end to end.
//!
//! Each instance of the shipped deployment approval is started by its requester, its request
//! form submitted (a low-risk normal change), approved by an engineer of the owning team, and so
//! completed; every command is decided by the pure core, appended to a scratch log (beside the
//! `--database` file, or in a scratch PostgreSQL schema) and folded back. The runtime keeps only
//! running instances, so memory must stay flat as finished ones pile up: the line reports the
//! resident memory after the first tenth of the instances and at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use signoff_core::engine::{Command, Status, Verdict};
use signoff_core::workflow::load;
use signoff_runtime::{Definitions, Runtime, event_types};
use signoff_store::{DatabaseUrl, OpenOptions, SystemClock};

use super::{Memory, cpu_by_thread, cpu_per, memory, per_sec, scratch};

/// The shipped definition and directory, built in so the benchmark runs from any folder.
const DEFINITION: &str = include_str!("../../../../workflows/deployment-approval.yaml");
const PEOPLE: &str = include_str!("../../../../people.yaml");

#[derive(clap::Args)]
pub struct Args {
    /// Instances started, decided and completed.
    #[arg(long, default_value_t = 10_000)]
    instances: u64,
    /// Instances in flight at once (each one's commands run in order).
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
}

/// A low-risk normal change of the payments team: Bob (an engineer of the team) approves it.
pub(super) fn request() -> serde_json::Map<String, Value> {
    let Value::Object(values) = json!({
        "service": "payments-api",
        "team": "payments",
        "environment": "production",
        "version": "v1.2.3",
        "change_type": "normal",
        "risk": "low",
        "description": "Raise the connection pool size to 50",
        "rollback_plan": "Redeploy v1.2.2 from the pipeline, 5 minutes",
        "ticket": "https://tracker.example.com/browse/CHG-1234",
    }) else {
        unreachable!("an object literal")
    };
    values
}

/// One instance from start to its end; returns how long it took.
async fn one(rt: &Runtime) -> anyhow::Result<Duration> {
    let began = Instant::now();
    let id = rt
        .start("deployment-approval", json!({}), "carol", "bench")
        .await?
        .instance;
    let submit = Command::Submit {
        step: "request".into(),
        values: request(),
    };
    rt.execute(&id, submit, "carol", "bench", None).await?;
    let decide = Command::Decide {
        step: "team_review".into(),
        verdict: Verdict::Approve,
        justification: "pool size is fine".into(),
        shown: None,
    };
    let applied = rt.execute(&id, decide, "bob", "bench", None).await?;
    let ended = applied.events.iter().any(|e| {
        matches!(e, signoff_core::engine::InstanceEvent::Ended { outcome, .. } if outcome == "approved")
    });
    ensure!(ended, "instance {id} did not end approved");
    Ok(began.elapsed())
}

pub async fn run(url: &DatabaseUrl, args: Args) -> anyhow::Result<()> {
    if args.instances == 0 || args.concurrency == 0 {
        bail!("--instances and --concurrency must be at least 1");
    }
    let scratch = scratch(url, OpenOptions::new(event_types())).await?;
    let result = measure(&scratch.log, &args).await;
    scratch.remove().await?;
    let line = result?;
    outln!("{line}")?;
    Ok(())
}

/// A runtime over `log` with the shipped deployment approval and directory, built in.
pub(super) async fn deployment_runtime(
    log: &Arc<dyn signoff_store::EventLog>,
) -> anyhow::Result<Arc<Runtime>> {
    let mut definitions = Definitions::default();
    let loaded = load("workflows/deployment-approval.yaml", DEFINITION)
        .map_err(|p| anyhow::anyhow!("the built-in definition does not load: {p:?}"))?;
    definitions.insert(Arc::new(loaded), true);
    let scratch_evidence = std::env::temp_dir().join("signoff-bench-evidence");
    let rt = Arc::new(Runtime::new(
        log.clone(),
        Arc::new(SystemClock),
        definitions,
        scratch_evidence,
    ));
    rt.catch_up().await?;
    rt.sync_directory("people.yaml", PEOPLE).await?;
    Ok(rt)
}

async fn measure(log: &Arc<dyn signoff_store::EventLog>, args: &Args) -> anyhow::Result<Value> {
    let rt = deployment_runtime(log).await?;

    let next = Arc::new(AtomicU64::new(0));
    let tenth = (args.instances / 10).max(1);
    let at_tenth = Arc::new(std::sync::Mutex::new(Memory::default()));
    let cpu_before = cpu_by_thread();
    let started = Instant::now();
    // One histogram, not a list per task: its size does not grow with the instances, so the
    // bench's own bookkeeping does not show up in the memory it reports.
    let latencies = Arc::new(std::sync::Mutex::new(latency_histogram()?));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.min(args.instances) {
        let (rt, next, at_tenth) = (rt.clone(), next.clone(), at_tenth.clone());
        let latencies = latencies.clone();
        let total = args.instances;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let took = micros(one(&rt).await?);
                latencies
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .saturating_record(took);
                if i + 1 == tenth {
                    *at_tenth
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = memory();
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a bench task panicked")??;
    }
    let latencies = latencies
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let elapsed = started.elapsed();
    let cpu_after = cpu_by_thread();
    let running = rt.running().len();
    ensure!(
        running == 0,
        "{running} instances still running after the bench"
    );
    let completed = latencies.len();
    let end = memory();
    let tenth = *at_tenth
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let status = rt.load(&last_instance(&rt).await?).await?.state.status;
    ensure!(
        matches!(status, Status::Ended { .. }),
        "the last instance has not ended"
    );
    Ok(json!({
        "scenario": "workflows",
        "backend": log.backend(),
        "workflow": "deployment-approval",
        "instances": completed,
        "commands": completed * 3,
        "concurrency": args.concurrency,
        "seconds": elapsed.as_secs_f64(),
        "completed_per_sec": per_sec(completed, elapsed),
        "p50_ms": ms(latencies.value_at_quantile(0.50)),
        "p99_ms": ms(latencies.value_at_quantile(0.99)),
        "latency_of": "one instance: start, submit, decide",
        "cpu_us_per_instance": cpu_per(&cpu_before, &cpu_after, completed),
        "events": log.tail().await?.sequence,
        "peak_rss_mib": end.peak,
        "rss_mib_after_first_tenth": tenth.rss,
        "rss_mib_at_end": end.rss,
        "heap_mib_after_first_tenth": tenth.anon,
        "heap_mib_at_end": end.anon,
    }))
}

/// Latencies in microseconds, from 1 µs to a minute, to three significant digits (~400 KiB).
fn latency_histogram() -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    Ok(hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

fn micros(took: Duration) -> u64 {
    u64::try_from(took.as_micros()).unwrap_or(u64::MAX)
}

#[allow(clippy::cast_precision_loss)]
fn ms(micros: u64) -> f64 {
    micros as f64 / 1_000.0
}

/// The id of the last instance recorded, to check it was read back as ended.
async fn last_instance(rt: &Runtime) -> anyhow::Result<String> {
    let tail = rt.log().tail().await?;
    let last = rt
        .log()
        .read_all(tail.sequence.saturating_sub(1), 1)
        .await?;
    let record = last.first().context("the last event")?;
    Ok(record
        .stream
        .as_str()
        .strip_prefix("instance/")
        .context("the last event is an instance's")?
        .to_owned())
}
