//! `signoff bench log`: the event log's three figures.
//!
//! It never writes into a real log: on SQLite it uses a scratch file in a new folder beside the
//! `--database` file (same disk, same fsync cost), on PostgreSQL a scratch schema; both are
//! removed at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::json;
use signoff_core::{
    ChainVerifier, EventData, EventId, EventType, EventTypes, IdempotencyKey, Metadata, NewEvent,
    StreamId,
};
use signoff_store::{AppendRequest, DatabaseUrl, EventLog, ExpectedVersion, OpenOptions};

use super::{per_sec, quantile_ms, scratch};

const BENCH_TYPE: &str = "signoff.bench.payload";

#[derive(clap::Args)]
pub struct Args {
    /// Events appended (one event per append) in the append and lag scenarios.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Concurrent writers.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Streams the appends are spread over.
    #[arg(long, default_value_t = 10_000)]
    streams: u64,
    /// Size of each event's JSON data, in bytes.
    #[arg(long, default_value_t = 1024)]
    event_bytes: usize,
}

pub async fn run(url: &DatabaseUrl, args: Args) -> anyhow::Result<()> {
    if args.writers == 0 || args.events == 0 || args.streams == 0 {
        bail!("--events, --writers and --streams must be at least 1");
    }
    let scratch = scratch(url, OpenOptions::new(EventTypes::new().with(BENCH_TYPE, 1))).await?;
    let result = scenarios(&scratch.log, &args).await;
    scratch.remove().await?;
    result
}

async fn scenarios(log: &Arc<dyn EventLog>, args: &Args) -> anyhow::Result<()> {
    let backend = log.backend();
    let (elapsed, mut latencies) = append_phase(log, args, None).await?;
    latencies.sort_unstable();
    print(&json!({
        "scenario": "append", "backend": backend, "events": args.events, "writers": args.writers,
        "streams": args.streams, "event_bytes": args.event_bytes, "seconds": elapsed.as_secs_f64(),
        "events_per_sec": per_sec(args.events, elapsed),
        "p50_ms": quantile_ms(&latencies, 0.50), "p99_ms": quantile_ms(&latencies, 0.99),
        "max_ms": quantile_ms(&latencies, 1.0),
    }))?;

    replay(log).await?; // warm the cache
    let mut run = replay(log).await?;
    run.pages.sort_unstable();
    let (events, elapsed, pages) = (run.events, run.elapsed, &run.pages);
    print(&json!({
        "scenario": "replay", "backend": backend, "events": events, "seconds": elapsed.as_secs_f64(),
        "events_per_sec": per_sec(events, elapsed), "verified": true,
        "p50_ms": quantile_ms(pages, 0.50), "p99_ms": quantile_ms(pages, 0.99), "latency_of": "page of 4096 events",
        "fetch_seconds": run.fetching.as_secs_f64(), "verify_seconds": run.verifying.as_secs_f64(),
    }))?;

    lag(log, args).await
}

fn print(line: &serde_json::Value) -> std::io::Result<()> {
    outln!("{line}")
}

/// Appends `args.events` single-event appends from `args.writers` tasks. With `acks`, records for
/// each sequence (relative to `base`) the moment its append was acknowledged.
async fn append_phase(
    log: &Arc<dyn EventLog>,
    args: &Args,
    acks: Option<(Arc<Vec<AtomicU64>>, u64, Instant)>,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let next = Arc::new(AtomicU64::new(0));
    let padding = "x".repeat(args.event_bytes.saturating_sub(40));
    let ty = EventType::parse(BENCH_TYPE)?;
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.writers)
        .map(|_| {
            let (log, next, padding, ty, acks) = (
                log.clone(),
                next.clone(),
                padding.clone(),
                ty.clone(),
                acks.clone(),
            );
            let (total, streams) = (args.events, args.streams);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let stream = StreamId::parse(format!(
                        "bench-{}",
                        i.wrapping_mul(2_654_435_761) % streams
                    ))?;
                    let event = NewEvent {
                        id: EventId(uuid::Uuid::now_v7()),
                        ty: ty.clone(),
                        schema_version: 1,
                        data: EventData::from_json_text(format!(
                            r#"{{"i":{i:>12},"payload":"{padding}"}}"#
                        ))?,
                        metadata: Metadata::new("bench", "cli"),
                    };
                    let request = AppendRequest::new(stream, ExpectedVersion::Any, vec![event])
                        .idempotent(IdempotencyKey::parse(uuid::Uuid::now_v7().to_string())?);
                    let sent = Instant::now();
                    let appended = log.append(request).await?;
                    latencies.push(sent.elapsed());
                    if let Some((acks, base, origin)) = &acks {
                        let at = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        let slot =
                            usize::try_from(appended.last_sequence - base).unwrap_or(usize::MAX);
                        if let Some(a) = acks.get(slot) {
                            a.store(at, Ordering::Relaxed);
                        }
                    }
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok((started.elapsed(), latencies))
}

/// What one verified replay of the log took.
#[derive(Default)]
struct Replay {
    events: u64,
    elapsed: Duration,
    /// Time of each page: fetch and decode, then verify.
    pages: Vec<Duration>,
    /// Summed time spent fetching and decoding (overlaps with verifying).
    fetching: Duration,
    /// Summed time spent verifying the chain.
    verifying: Duration,
}

/// Reads the whole log, decoding every event and verifying the chain. The next page is fetched
/// while the current one is verified, so the database and the hashing use both cores.
async fn replay(log: &Arc<dyn EventLog>) -> anyhow::Result<Replay> {
    const PAGE: usize = 4_096;
    let fetch = |after: u64| {
        let log = log.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let page = log.read_all(after, PAGE).await;
            (page, started.elapsed())
        })
    };
    let mut verifier = ChainVerifier::new();
    let mut run = Replay::default();
    let started = Instant::now();
    let mut next = Some(fetch(0));
    while let Some(pending) = next.take() {
        let (page, fetched) = pending.await?;
        let page = page?;
        let Some(last) = page.last() else { break };
        next = Some(fetch(last.sequence));
        let verify_started = Instant::now();
        for event in &page {
            verifier
                .check(event)
                .map_err(|b| anyhow::anyhow!("chain broken: {b}"))?;
        }
        let verified = verify_started.elapsed();
        run.fetching += fetched;
        run.verifying += verified;
        run.pages.push(fetched + verified);
    }
    run.events = verifier.checked();
    run.elapsed = started.elapsed();
    Ok(run)
}

/// A subscriber follows the log while the writers append; measures, for each event, the time
/// from its append being acknowledged to the subscriber receiving it (0 when it arrives first).
async fn lag(log: &Arc<dyn EventLog>, args: &Args) -> anyhow::Result<()> {
    let base = log.tail().await?.sequence + 1;
    let total = args.events;
    let slots = usize::try_from(total)?;
    let acks: Arc<Vec<AtomicU64>> = Arc::new((0..slots).map(|_| AtomicU64::new(0)).collect());
    let origin = Instant::now();
    let subscriber = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut received = Vec::with_capacity(slots);
            let mut events = std::pin::pin!(signoff_store::subscribe(log, base - 1));
            while (received.len() as u64) < total {
                let event = events.next().await.context("subscription ended")??;
                received.push((event.sequence, origin.elapsed()));
            }
            anyhow::Ok(received)
        })
    };
    append_phase(log, args, Some((acks.clone(), base, origin))).await?;
    let received = subscriber.await??;
    let skipped = received
        .iter()
        .enumerate()
        .filter(|(i, (seq, _))| *seq != base + *i as u64)
        .count();
    let mut lags: Vec<Duration> = received
        .iter()
        .map(|(seq, at)| {
            let ack = acks[usize::try_from(seq - base).unwrap_or(0)].load(Ordering::Relaxed);
            at.saturating_sub(Duration::from_nanos(ack))
        })
        .collect();
    lags.sort_unstable();
    print(&json!({
        "scenario": "lag", "backend": log.backend(), "events": total, "writers": args.writers,
        "events_per_sec": per_sec(total, origin.elapsed()),
        "p50_ms": quantile_ms(&lags, 0.50), "p99_ms": quantile_ms(&lags, 0.99), "max_ms": quantile_ms(&lags, 1.0),
        "skipped": skipped,
    }))?;
    if skipped > 0 {
        bail!("the subscriber skipped or repeated {skipped} events");
    }
    Ok(())
}
