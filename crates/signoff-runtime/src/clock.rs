//! The engine's clock: firing due timers and cron runs, turn after turn, for `signoff run` and
//! the server alike.

use std::sync::atomic::Ordering;

use crate::error::RuntimeError;
use crate::idempotency;
use crate::runtime::Runtime;

/// What one turn of the clock did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Timers fired (reminders, deadlines, escalations, waits).
    pub timers: usize,
    /// Scheduled (cron) runs started.
    pub runs: usize,
    /// Clients' idempotency keys forgotten after their retention.
    pub keys_forgotten: u64,
}

impl Runtime {
    /// Fires every timer and cron run due now, and writes the read models.
    ///
    /// # Errors
    /// A store error.
    pub async fn tick(&self) -> Result<Tick, RuntimeError> {
        // Children and triggered starts, and the failed ones due again (also when this
        // process leaves them to a `starts` worker: a turn of the clock runs every reactor).
        self.react().await?;
        let tick = Tick {
            timers: self.fire_due_timers().await?,
            runs: self.fire_due_schedules().await?,
            keys_forgotten: self.forget_expired_client_keys().await?,
        };
        // At most once a turn (a second), whatever the load: what changed since the last turn.
        self.save_projections().await?;
        Ok(tick)
    }

    /// Forgets the clients' idempotency keys older than their retention (24 hours), at most
    /// once an hour. The engine's keys are never forgotten: they make timers fire once.
    ///
    /// # Errors
    /// A store error.
    pub async fn forget_expired_client_keys(&self) -> Result<u64, RuntimeError> {
        let now = self.now().0;
        let last = self.keys_forgotten_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) < idempotency::FORGET_EVERY_MICROS {
            return Ok(0);
        }
        self.keys_forgotten_at.store(now, Ordering::Relaxed);
        let before = now.saturating_sub(idempotency::CLIENT_KEY_RETENTION_MICROS);
        Ok(self
            .log()
            .forget_idempotency_keys(idempotency::CLIENT_PREFIX, before)
            .await?)
    }

    /// Runs every built-in reactor (timers, cron runs, starts, keys, read models) until `stop`
    /// completes; see [`crate::reactor`].
    pub async fn run_clock(&self, stop: impl Future<Output = ()>) {
        self.run_reactors(&crate::reactor::built_in(), stop).await;
    }
}

/// What the runtime holds now, for operators' gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Instances running.
    pub running: usize,
    /// Timers pending in them.
    pub timers_pending: usize,
    /// Reactions (child, triggered and cron starts) waiting to be carried out.
    pub reactions_queued: usize,
    /// Reactions that failed and wait for their next attempt.
    pub reactions_retrying: usize,
    /// The last sequence of the log folded into the view.
    pub position: u64,
}

impl Runtime {
    /// The gauges, now.
    #[must_use]
    pub fn gauges(&self) -> Gauges {
        let reactions_retrying = self.reactions_retrying();
        let view = self.view();
        Gauges {
            running: view.running.len(),
            timers_pending: view.running.values().map(|e| e.state.timers.len()).sum(),
            reactions_queued: view.reactions.len(),
            reactions_retrying,
            position: view.position,
        }
    }
}
