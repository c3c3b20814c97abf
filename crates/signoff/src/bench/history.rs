//! `signoff bench history`: what a long history costs a command and a server start.
//!
//! Two logs are filled through the HTTP API of a server started in this process (as `bench
//! approvals` does): one with `--small` ended approvals, one with `--large`. On each, this binary
//! is then run as a person would run it: `signoff status ID` of an ended instance (wall time and
//! peak resident memory, the median and the highest of `--runs`), and `signoff serve` (time from
//! its start until `/signin` answers, and its resident memory then). Nothing is running in either
//! log, so every figure should be the same for both: the last line gives the large/small ratio
//! of each.
//!
//! SQLite only (the embedded default): the logs are files in a scratch folder beside the
//! `--database` file, removed at the end.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use signoff_store::DatabaseUrl;

/// The environment variable that makes `signoff` print its peak resident memory (MiB) on its
/// last line of stderr, for this benchmark.
pub const PEAK_RSS_ENV: &str = "SIGNOFF_BENCH_PEAK_RSS";
const PEAK_RSS_PREFIX: &str = "signoff-peak-rss-mib: ";

/// The options of `signoff bench history`.
#[derive(clap::Args)]
pub struct Args {
    /// Ended approvals in the small log.
    #[arg(long, default_value_t = 1_000)]
    small: usize,
    /// Ended approvals in the large log.
    #[arg(long, default_value_t = 100_000)]
    large: usize,
    /// Times each command is run on each log.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Concurrent HTTP clients filling the logs.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Keep the two logs (their folders are printed) instead of removing them, to look into.
    #[arg(long)]
    keep: bool,
}

/// Prints its peak resident memory if [`PEAK_RSS_ENV`] asks for it (called at the end of
/// `main`).
pub fn report_peak_rss() {
    if std::env::var_os(PEAK_RSS_ENV).is_some() {
        eprintln!("{PEAK_RSS_PREFIX}{}", super::memory().peak);
    }
}

pub async fn run(url: &DatabaseUrl, args: Args) -> anyhow::Result<()> {
    if !matches!(url, DatabaseUrl::Sqlite(_)) {
        bail!("bench history runs on the embedded SQLite log only (--database sqlite://…)");
    }
    if args.small == 0 || args.large == 0 || args.runs == 0 || args.clients == 0 {
        bail!("--small, --large, --runs and --clients must be at least 1");
    }
    let mut lines = Vec::new();
    for ended in [args.small, args.large] {
        let filling = Instant::now();
        let (log, ids) = super::approvals::fill(url, ended, args.clients).await?;
        let filled = filling.elapsed();
        let folder = log
            .folder()
            .context("the scratch log has no folder")?
            .to_path_buf();
        let events = log.log.tail().await?.sequence;
        let line = measure(&folder, &ids[0], args.runs, ended, events, filled).await;
        if args.keep {
            eprintln!("kept: {} (an ended instance: {})", folder.display(), ids[0]);
            log.keep();
        } else {
            log.remove().await?;
        }
        let line = line?;
        outln!("{line}")?;
        lines.push(line);
    }
    let ratio = |key: &str| {
        let of = |line: &Value| line[key].as_f64().unwrap_or(0.0);
        let small = of(&lines[0]).max(1e-9);
        (of(&lines[1]) / small * 100.0).round() / 100.0
    };
    let ratios = json!({
        "scenario": "history-ratio",
        "large_over_small": {
            "status_ms": ratio("status_ms"),
            "status_peak_rss_mib": ratio("status_peak_rss_mib"),
            "serve_ready_ms": ratio("serve_ready_ms"),
            "serve_rss_mib": ratio("serve_rss_mib"),
        },
    });
    outln!("{ratios}")?;
    Ok(())
}

/// Runs the commands on one filled log; its JSON line.
async fn measure(
    folder: &Path,
    ended_id: &str,
    runs: usize,
    ended: usize,
    events: u64,
    filled: Duration,
) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("cannot find this signoff binary")?;
    let command = |args: &[&str]| {
        let mut c = Command::new(&exe);
        c.current_dir(folder)
            .arg("--database")
            .arg(format!("sqlite://{}", folder.join("bench.db").display()))
            .args(args)
            .env(PEAK_RSS_ENV, "1")
            .env_remove("SIGNOFF_CONFIG")
            .env_remove("SIGNOFF_USER");
        c
    };
    let mut status_times = Vec::new();
    let mut status_peak: f64 = 0.0;
    for _ in 0..runs {
        let began = Instant::now();
        let out = command(&["status", ended_id, "--json"])
            .output()
            .context("cannot run signoff status")?;
        status_times.push(began.elapsed());
        if !out.status.success() {
            bail!(
                "signoff status failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let answer: Value = serde_json::from_slice(&out.stdout).context("status --json")?;
        if answer["status"] != "ended" {
            bail!("signoff status says {answer}, not ended");
        }
        status_peak = status_peak.max(peak_rss(&out.stderr)?);
    }
    let mut ready_times = Vec::new();
    let mut serve_rss: f64 = 0.0;
    for _ in 0..runs {
        let (ready, rss) = serve_until_ready(command(&[])).await?;
        ready_times.push(ready);
        serve_rss = serve_rss.max(rss);
    }
    status_times.sort_unstable();
    ready_times.sort_unstable();
    Ok(json!({
        "scenario": "history",
        "backend": "sqlite",
        "ended_instances": ended,
        "events": events,
        "database_mib": megabytes(std::fs::metadata(folder.join("bench.db"))?.len()),
        "fill_seconds": (filled.as_secs_f64() * 10.0).round() / 10.0,
        "runs": runs,
        "status_ms": tenth(super::quantile_ms(&status_times, 0.5)),
        "status_peak_rss_mib": status_peak,
        "serve_ready_ms": tenth(super::quantile_ms(&ready_times, 0.5)),
        "serve_rss_mib": serve_rss,
    }))
}

fn tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[allow(clippy::cast_precision_loss)]
fn megabytes(bytes: u64) -> f64 {
    (bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0
}

/// The peak the child printed as its last words.
fn peak_rss(stderr: &[u8]) -> anyhow::Result<f64> {
    String::from_utf8_lossy(stderr)
        .lines()
        .find_map(|l| l.strip_prefix(PEAK_RSS_PREFIX)?.trim().parse().ok())
        .context("signoff did not report its peak memory")
}

/// Starts `signoff serve` on a free port; how long until `/signin` answers 200, and its
/// resident memory then (MiB). The server is stopped after.
async fn serve_until_ready(mut command: Command) -> anyhow::Result<(Duration, f64)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    let began = Instant::now();
    let mut child = command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start signoff serve")?;
    let answered = loop {
        if let Ok(response) = http
            .get(format!("http://127.0.0.1:{port}/signin"))
            .send()
            .await
            && response.status().is_success()
        {
            break Ok(began.elapsed());
        }
        if let Some(exit) = child.try_wait()? {
            break Err(anyhow::anyhow!("signoff serve exited first: {exit}"));
        }
        if began.elapsed() > Duration::from_secs(600) {
            break Err(anyhow::anyhow!(
                "signoff serve did not answer within 10 minutes"
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let rss = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| (kib / 1024.0 * 10.0).round() / 10.0);
    let _ = child.kill();
    let _ = child.wait();
    Ok((answered?, rss))
}
