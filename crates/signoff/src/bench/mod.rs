//! `signoff bench`: the benchmarks whose figures README.md reports.

mod approvals;
mod discord;
pub mod history;
mod log;
mod workflows;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use signoff_store::{DatabaseUrl, EventLog, OpenOptions, PgLog, SqliteLog};

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Approvals over the HTTP API: one-gate instances started, then approved, by concurrent
    /// clients of a server (started in this process, or --url).
    Approvals(approvals::Args),
    /// Decisions in Discord: justification submits sent at once through a stand-in for
    /// Discord to the real bot, timed until the redrawn card reaches it.
    Discord(discord::Args),
    /// What history costs: `signoff status` and `signoff serve`'s start on a log of 1,000 and
    /// one of 100,000 ended approvals (SQLite).
    History(history::Args),
    /// The event log: durable appends, verified replay, commit-to-subscriber lag.
    Log(log::Args),
    /// Workflows through the engine: deployment approvals started, decided and completed.
    Workflows(workflows::Args),
}

pub async fn run(g: &crate::Global, bench: Bench) -> anyhow::Result<ExitCode> {
    match bench {
        Bench::Approvals(args) => return approvals::run(g, args).await,
        Bench::Discord(args) => discord::run(&g.url()?, args).await?,
        Bench::History(args) => history::run(&g.url()?, args).await?,
        Bench::Log(args) => log::run(&g.url()?, args).await?,
        Bench::Workflows(args) => workflows::run(&g.url()?, args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The value at quantile `q` (0..=1) of sorted `values`, in milliseconds.
pub fn quantile_ms(sorted: &[std::time::Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1_000.0
}

/// Events (or operations) per second.
#[allow(clippy::cast_precision_loss)]
pub fn per_sec(count: u64, elapsed: std::time::Duration) -> f64 {
    (count as f64 / elapsed.as_secs_f64().max(1e-9)).round()
}

/// A log a benchmark may fill and throw away: a SQLite file in a new folder beside the
/// `--database` file (same disk, same fsync cost), or a PostgreSQL schema of its own.
pub struct Scratch {
    pub log: Arc<dyn EventLog>,
    pub cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Scratch {
    /// The scratch folder holding the SQLite file (none for a PostgreSQL schema).
    pub fn folder(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Leaves the scratch folder or schema in place.
    pub fn keep(self) {
        if let Some(dir) = self._dir {
            let _ = dir.keep();
        }
    }

    /// Removes the scratch schema (the scratch folder goes when dropped).
    pub async fn remove(self) -> anyhow::Result<()> {
        drop(self.log);
        if let Some((url, schema)) = self.cleanup {
            PgLog::drop_schema(&url, &schema).await?;
        }
        Ok(())
    }
}

pub async fn scratch(url: &DatabaseUrl, options: OpenOptions) -> anyhow::Result<Scratch> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let beside = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let dir = tempfile::Builder::new()
                .prefix(".signoff-bench-")
                .tempdir_in(beside)
                .context("scratch folder")?;
            let log = SqliteLog::open(&dir.path().join("bench.db"), options).await?;
            Ok(Scratch {
                log: Arc::new(log),
                cleanup: None,
                _dir: Some(dir),
            })
        }
        DatabaseUrl::Postgres(url) => {
            let schema = format!("signoff_bench_{}", uuid::Uuid::now_v7().simple());
            let log = PgLog::connect_in_schema(url, &schema, options).await?;
            Ok(Scratch {
                log: Arc::new(log),
                cleanup: Some((url.clone(), schema)),
                _dir: None,
            })
        }
    }
}

/// This process's memory in MiB (Linux; zeros elsewhere).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// Resident now.
    pub rss: f64,
    /// Resident at the peak so far.
    pub peak: f64,
    /// Resident and anonymous now: the heap, without the pages of files mapped in (SQLite's
    /// memory-mapped reads grow with the database file, not with what the process holds).
    pub anon: f64,
}

pub fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| (kib / 1024.0 * 10.0).round() / 10.0)
    };
    Memory {
        rss: field("VmRSS:"),
        peak: field("VmHWM:"),
        anon: field("RssAnon:"),
    }
}

/// CPU time this process's threads have spent so far, in microseconds, by what they do: the
/// log's writer and checkpointer threads, and everything else (the runtime's workers). Unlike
/// throughput, it hardly moves when the machine's other tenants are busy, so it is what to
/// compare between two builds (Linux; empty elsewhere).
pub fn cpu_by_thread() -> std::collections::BTreeMap<&'static str, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        // The first field of schedstat: nanoseconds on a CPU.
        let Some(nanos) = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        else {
            continue;
        };
        let role = match comm.trim() {
            "signoff-writer" => "writer",
            "signoff-checkpo" => "checkpointer",
            _ => "engine",
        };
        *out.entry(role).or_default() += nanos / 1_000.0;
    }
    out
}

/// CPU microseconds per unit of work between two readings of [`cpu_by_thread`], by role and
/// in total.
#[allow(clippy::cast_precision_loss)]
pub fn cpu_per(
    before: &std::collections::BTreeMap<&'static str, f64>,
    after: &std::collections::BTreeMap<&'static str, f64>,
    units: u64,
) -> serde_json::Value {
    let units = units.max(1) as f64;
    let mut out = serde_json::Map::new();
    let mut total = 0.0;
    for (role, end) in after {
        let used = end - before.get(role).copied().unwrap_or(0.0);
        total += used;
        out.insert((*role).to_owned(), (used / units).round().into());
    }
    out.insert("total".to_owned(), (total / units).round().into());
    serde_json::Value::Object(out)
}
