//! `/metrics`: Prometheus text for operators. Commands and their outcomes, refusals, command
//! latency (which is dominated by the durable append), what the runtime holds (running
//! instances, pending timers, queued reactions), and live-stream subscribers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    /// By (command, outcome).
    commands: Mutex<BTreeMap<(String, String), u64>>,
    /// By reason.
    refusals: Mutex<BTreeMap<String, u64>>,
    latency: Mutex<Histogram>,
    /// Live-stream subscribers now.
    pub subscribers: AtomicI64,
}

impl Metrics {
    /// Counts a command with its outcome (`ok`, `deduplicated`, or a problem slug) and latency.
    pub fn command(&self, name: &str, outcome: &str, took: Duration) {
        *self
            .commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((name.to_owned(), outcome.to_owned()))
            .or_default() += 1;
        let seconds = took.as_secs_f64();
        let mut h = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        h.count += 1;
        h.sum += seconds;
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
    }

    /// Counts a refused request (`unauthenticated`, `forbidden`…).
    pub fn refused(&self, reason: &str) {
        *self
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(reason.to_owned())
            .or_default() += 1;
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(
        &self,
        gauges: signoff_runtime::clock::Gauges,
        delivered: &BTreeMap<String, signoff_runtime::outbox::Counters>,
    ) -> String {
        let mut out = String::new();
        outbox(&mut out, delivered);
        let _ = writeln!(
            out,
            "# HELP signoff_commands_total Commands handled, by command and outcome.\n\
             # TYPE signoff_commands_total counter"
        );
        for ((name, outcome), n) in self
            .commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "signoff_commands_total{{command=\"{name}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP signoff_refusals_total Requests refused, by reason.\n\
             # TYPE signoff_refusals_total counter"
        );
        for (reason, n) in self
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(out, "signoff_refusals_total{{reason=\"{reason}\"}} {n}");
        }
        {
            let h = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = writeln!(
                out,
                "# HELP signoff_command_seconds Time to decide and durably append a command.\n\
                 # TYPE signoff_command_seconds histogram"
            );
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "signoff_command_seconds_bucket{{le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "signoff_command_seconds_bucket{{le=\"+Inf\"}} {}\n\
                 signoff_command_seconds_sum {}\nsignoff_command_seconds_count {}",
                h.count, h.sum, h.count
            );
        }
        for (name, help, value) in [
            (
                "signoff_instances_running",
                "Instances running.",
                gauges.running as u64,
            ),
            (
                "signoff_timers_pending",
                "Timers pending in running instances.",
                gauges.timers_pending as u64,
            ),
            (
                "signoff_reactions_queued",
                "Child, triggered and cron starts waiting to be carried out.",
                gauges.reactions_queued as u64,
            ),
            (
                "signoff_reactions_retrying",
                "Child, triggered and cron starts that failed and wait for their next attempt \
                 (each failure is a signoff.reaction.failed event).",
                gauges.reactions_retrying as u64,
            ),
            (
                "signoff_log_position",
                "Last sequence of the log the runtime has folded.",
                gauges.position,
            ),
            (
                "signoff_stream_subscribers",
                "Clients following the live event stream.",
                u64::try_from(self.subscribers.load(Ordering::Relaxed)).unwrap_or(0),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state
            .metrics
            .render(state.runtime.gauges(), &state.runtime.delivery_counters()),
    )
}

/// `/metrics`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// The outbox's counters by channel: messages by outcome, retries, delivery latency.
fn outbox(out: &mut String, delivered: &BTreeMap<String, signoff_runtime::outbox::Counters>) {
    use signoff_runtime::outbox::LATENCY_BUCKETS;
    let _ = writeln!(
        out,
        "# HELP signoff_outbox_messages_total Messages by channel and outcome: delivered, failed \
         (an attempt that failed), given_up (a permanent failure, or the last attempt).\n\
         # TYPE signoff_outbox_messages_total counter"
    );
    for (channel, c) in delivered {
        for (outcome, n) in [
            ("delivered", c.delivered),
            ("failed", c.failed),
            ("given_up", c.given_up),
        ] {
            let _ = writeln!(
                out,
                "signoff_outbox_messages_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP signoff_outbox_retries_total Attempts after a failed first, by channel.\n\
         # TYPE signoff_outbox_retries_total counter"
    );
    for (channel, c) in delivered {
        let _ = writeln!(
            out,
            "signoff_outbox_retries_total{{channel=\"{channel}\"}} {}",
            c.retried
        );
    }
    let _ = writeln!(
        out,
        "# HELP signoff_outbox_delivery_seconds From a notification's commit to its acceptance \
         by the channel (the SMTP server), by channel.\n\
         # TYPE signoff_outbox_delivery_seconds histogram"
    );
    for (channel, c) in delivered {
        for (bound, count) in LATENCY_BUCKETS.iter().zip(c.latency_buckets.iter()) {
            let _ = writeln!(
                out,
                "signoff_outbox_delivery_seconds_bucket{{channel=\"{channel}\",le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "signoff_outbox_delivery_seconds_bucket{{channel=\"{channel}\",le=\"+Inf\"}} {d}\n\
             signoff_outbox_delivery_seconds_sum{{channel=\"{channel}\"}} {}\n\
             signoff_outbox_delivery_seconds_count{{channel=\"{channel}\"}} {d}",
            c.latency_sum,
            d = c.latency_count
        );
    }
}
