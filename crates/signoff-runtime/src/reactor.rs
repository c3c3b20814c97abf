//! Reactors: what follows committed events, each on its own, in any process.
//!
//! A reactor has one job: read what was committed since its checkpoint, do an effect that is
//! idempotent (fire a timer once, start a child once, send a message once), record the outcome
//! as events, and advance its checkpoint (`reactor/<name>` among the read models' checkpoints,
//! so operators see how far each has come). A turn that fails is logged and tried again with
//! backoff; what it failed at is recorded in the log by the reactor itself
//! (`signoff.reaction.failed`, `outbox/<channel>` failures), never returned to the command that
//! caused it.
//!
//! `signoff serve` and `signoff run` run every built-in reactor; `signoff worker NAME` runs one
//! alone. Two processes may run the same reactor: each effect is keyed in the log, so it is
//! recorded once (a channel may send a message twice then; run one deliverer per channel).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use signoff_core::Timestamp;
use signoff_store::ModelWrite;

use crate::error::RuntimeError;
use crate::outbox::Channel;
use crate::runtime::Runtime;

/// What one turn of a reactor gives: how much it did, and when it wants the next turn.
pub type Turn<'a> = Pin<Box<dyn Future<Output = Result<Turned, RuntimeError>> + Send + 'a>>;

/// What a turn did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Turned {
    /// Effects carried out (timers fired, runs started, messages delivered, rows written…).
    pub done: usize,
    /// When the reactor next has something due, if it knows (a timer, a retry).
    pub next: Option<Timestamp>,
}

/// One reactor: follows the log from its checkpoint and does one kind of effect.
pub trait Reactor: Send + Sync {
    /// Its name, for `signoff worker NAME`, its checkpoint and the logs.
    fn name(&self) -> &str;
    /// Does what is due now, from what the runtime folded.
    fn turn<'a>(&'a self, runtime: &'a Runtime) -> Turn<'a>;
    /// Turns as soon as something is committed, not only on its own schedule (at most a
    /// second apart): a chat bot whose messages people watch change.
    fn follows_commits(&self) -> bool {
        false
    }
}

/// Fires due timers: reminders, deadlines, escalations, waits.
pub struct Timers;

impl Reactor for Timers {
    fn name(&self) -> &'static str {
        "timers"
    }
    fn turn<'a>(&'a self, runtime: &'a Runtime) -> Turn<'a> {
        Box::pin(async move {
            Ok(Turned {
                done: runtime.fire_due_timers().await?,
                next: runtime.next_timer(),
            })
        })
    }
}

/// Starts the cron runs that are due.
pub struct Schedules;

impl Reactor for Schedules {
    fn name(&self) -> &'static str {
        "schedules"
    }
    fn turn<'a>(&'a self, runtime: &'a Runtime) -> Turn<'a> {
        Box::pin(async move {
            Ok(Turned {
                done: runtime.fire_due_schedules().await?,
                next: runtime.next_schedule(),
            })
        })
    }
}

/// Starts the children steps ask for and the workflows events trigger, and retries the ones
/// that failed (see [`crate::reactions`]).
pub struct Starts;

impl Reactor for Starts {
    fn name(&self) -> &'static str {
        "starts"
    }
    fn turn<'a>(&'a self, runtime: &'a Runtime) -> Turn<'a> {
        Box::pin(async move {
            Ok(Turned {
                done: runtime.react().await?,
                next: runtime.next_reaction_retry(),
            })
        })
    }
}

/// Forgets clients' idempotency keys past their retention.
pub struct Keys;

impl Reactor for Keys {
    fn name(&self) -> &'static str {
        "keys"
    }
    fn turn<'a>(&'a self, runtime: &'a Runtime) -> Turn<'a> {
        Box::pin(async move {
            let forgotten = runtime.forget_expired_client_keys().await?;
            Ok(Turned {
                done: usize::try_from(forgotten).unwrap_or(usize::MAX),
                next: None,
            })
        })
    }
}

/// Writes what changed to the read models (see [`crate::projections`]).
pub struct Projector;

impl Reactor for Projector {
    fn name(&self) -> &'static str {
        "projections"
    }
    fn turn<'a>(&'a self, runtime: &'a Runtime) -> Turn<'a> {
        Box::pin(async move {
            runtime.save_projections().await?;
            Ok(Turned::default())
        })
    }
}

/// Delivers the notifications recorded for a channel's people (see [`crate::outbox`]).
pub struct Outbox(pub Arc<dyn Channel>);

impl Reactor for Outbox {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn follows_commits(&self) -> bool {
        self.0.follows_commits()
    }
    fn turn<'a>(&'a self, runtime: &'a Runtime) -> Turn<'a> {
        Box::pin(async move {
            let report = runtime.deliver(&*self.0).await?;
            Ok(Turned {
                done: report.delivered,
                next: report.next_retry,
            })
        })
    }
}

/// The reactors every engine process needs, in the order a turn of the clock runs them.
#[must_use]
pub fn built_in() -> Vec<Arc<dyn Reactor>> {
    vec![
        Arc::new(Timers),
        Arc::new(Schedules),
        Arc::new(Starts),
        Arc::new(Keys),
        Arc::new(Projector),
    ]
}

/// The built-in reactor of that name.
#[must_use]
pub fn named(name: &str) -> Option<Arc<dyn Reactor>> {
    built_in().into_iter().find(|r| r.name() == name)
}

/// The names of the built-in reactors.
#[must_use]
pub fn names() -> Vec<String> {
    built_in().iter().map(|r| r.name().to_owned()).collect()
}

/// The checkpoint group of a reactor.
#[must_use]
pub fn checkpoint_name(reactor: &str) -> String {
    format!("reactor/{reactor}")
}

/// The longest pause between two turns: other processes append to the log too.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// The shortest pause, so a reactor with something always due cannot spin.
const MIN_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause after failed turns (a database away for a while).
const MAX_FAILED_PAUSE: Duration = Duration::from_secs(30);

impl Runtime {
    /// One turn of `reactor`: catches up with the log, does what is due, and advances the
    /// reactor's checkpoint to the position it acted on.
    ///
    /// # Errors
    /// A store error.
    pub async fn turn(&self, reactor: &dyn Reactor) -> Result<Turned, RuntimeError> {
        self.catch_up_to(u64::MAX).await?;
        let position = self.gauges().position;
        let turned = reactor.turn(self).await?;
        let group = checkpoint_name(reactor.name());
        if self.log().model_checkpoint(&group).await? < position {
            // `since` 0: a reactor's checkpoint only says how far it came; nothing is stale.
            self.log()
                .write_models(ModelWrite {
                    group,
                    since: 0,
                    position,
                    clear: Vec::new(),
                    upserts: Vec::new(),
                })
                .await?;
        }
        Ok(turned)
    }

    /// How long to wait before the next turn, given what the last one said.
    fn pause_after(&self, turned: Turned) -> Duration {
        let Some(next) = turned.next else {
            return MAX_PAUSE;
        };
        let micros = next.0.saturating_sub(self.now().0).max(0);
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX)).clamp(MIN_PAUSE, MAX_PAUSE)
    }

    /// Runs `reactors`, each turning on its own, until `stop` completes; then the read models
    /// are written once more, so the next start folds only what comes after this process.
    pub async fn run_reactors(
        &self,
        reactors: &[Arc<dyn Reactor>],
        stop: impl Future<Output = ()>,
    ) {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let loops = futures::future::join_all(reactors.iter().map(|reactor| {
            let mut stop_rx = stop_rx.clone();
            let mut committed = self.log().committed();
            let follows = reactor.follows_commits();
            async move {
                let mut failures = 0u32;
                loop {
                    let pause = match self.turn(&**reactor).await {
                        Ok(turned) => {
                            failures = 0;
                            if turned.done > 0 {
                                tracing::info!(reactor = reactor.name(), done = turned.done, "turned");
                            }
                            self.pause_after(turned)
                        }
                        Err(error) => {
                            failures = failures.saturating_add(1);
                            tracing::error!(reactor = reactor.name(), %error, failures, "a reactor's turn failed; trying again");
                            MAX_PAUSE
                                .saturating_mul(1 << failures.min(5))
                                .min(MAX_FAILED_PAUSE)
                        }
                    };
                    let woken = async {
                        if !follows || committed.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    };
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = woken => {}
                        _ = stop_rx.wait_for(|stop| *stop) => break,
                    }
                }
            }
        }));
        let mut loops = std::pin::pin!(loops);
        tokio::select! {
            _ = &mut loops => {}
            () = stop => {
                // Each reactor ends the turn it is in: an effect done is recorded before this
                // returns.
                let _ = stop_tx.send(true);
                loops.await;
            }
        }
        if let Err(e) = self.save_projections().await {
            tracing::error!(error = %e, "the read models could not be written at stop");
        }
    }
}
