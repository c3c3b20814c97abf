//! Reactions: what follows from committed events (a child a step asked for, a triggered
//! workflow, a cron run), carried out after the commit that caused them.
//!
//! A reaction that fails never turns the command that caused it into an error: that command is
//! committed. The failure is recorded in the log (`signoff.reaction.failed` in the `reactions`
//! stream: which start, the error, the attempt, when it is tried again), logged, and tried again
//! with backoff, up to [`MAX_ATTEMPTS`] attempts. When it is tried again is read from that
//! event, so any process (a restarted one, a `signoff worker starts`) retries it at its time;
//! one given up is not attempted again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use signoff_core::Timestamp;
use signoff_core::engine::{Command, SYSTEM};
use signoff_store::{AppendRequest, ExpectedVersion};

use crate::error::RuntimeError;
use crate::events::{REACTION_FAILED, REACTIONS_STREAM, corrupt, new_event, to_idempotency_key};
use crate::runtime::{Reaction, Runtime};

/// Attempts of one reaction before it is given up (each failure is recorded).
pub const MAX_ATTEMPTS: u32 = 10;

/// The first pause after a failure; each further failure doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the log says of a reaction that failed and is tried again: its attempts so far, and
/// when (one given up is no longer pending at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Failed {
    pub attempts: u32,
    pub retry_at: Timestamp,
}

/// The fields of a `signoff.reaction.failed` event the fold reads.
#[derive(Deserialize)]
pub(crate) struct FailedEvent {
    pub instance: String,
    pub attempt: u32,
    pub retry_at: Option<i64>,
}

/// The pause before attempt `attempts + 1`.
fn backoff(attempts: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

impl Runtime {
    /// Carries out the pending reactions, and the failed ones whose next attempt is due;
    /// returns how many it attempted.
    ///
    /// # Errors
    /// A store error while recording a failure.
    pub(crate) async fn react(&self) -> Result<usize, RuntimeError> {
        let mut attempted = 0;
        loop {
            // Taken off the list before acting, so the commands below cannot meet it again.
            let next = {
                let mut view = self.view();
                (!view.reactions.is_empty()).then(|| view.reactions.remove(0))
            };
            let Some(reaction) = next else { break };
            attempted += 1;
            self.attempt_reaction(reaction, 0).await?;
        }
        let now = self.now();
        // Taken off the view until the fold brings their next failure (or their start) back.
        let due: Vec<(Reaction, u32)> = {
            let mut view = self.view();
            let ids: Vec<String> = view
                .failed
                .iter()
                .filter(|(_, f)| f.retry_at <= now)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| {
                    let failed = view.failed.remove(&id)?;
                    let reaction = view.pending.iter().find(|r| r.id == id)?.clone();
                    Some((reaction, failed.attempts))
                })
                .collect()
        };
        for (reaction, attempts) in due {
            attempted += 1;
            self.attempt_reaction(reaction, attempts).await?;
        }
        Ok(attempted)
    }

    /// Reacts to a command just committed. Whatever a reaction does, the command stands: a
    /// failure is recorded and retried, and only logged here.
    pub(crate) async fn react_after_commit(&self) {
        if !self
            .reacts_after_commit
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        if let Err(error) = Box::pin(self.react()).await {
            tracing::error!(%error, "reactions could not be carried out; the clock tries again");
        }
    }

    /// How many failed reactions wait for their next attempt (a gauge for operators).
    #[must_use]
    pub fn reactions_retrying(&self) -> usize {
        self.view().failed.len()
    }

    /// The earliest next attempt of a failed reaction, for the clock.
    #[must_use]
    pub fn next_reaction_retry(&self) -> Option<Timestamp> {
        self.view().failed.values().map(|f| f.retry_at).min()
    }

    /// One attempt at a reaction that failed `attempts` times before.
    async fn attempt_reaction(
        &self,
        reaction: Reaction,
        attempts: u32,
    ) -> Result<(), RuntimeError> {
        let Err(error) = self.carry_out_reaction(&reaction).await else {
            return Ok(());
        };
        let attempts = attempts + 1;
        // A refusal (the requester may not start that workflow) is not tried again: it would
        // be refused again. Anything else may pass later (a database back, a definition loaded).
        let retryable = !matches!(error, RuntimeError::Rejected(_));
        let retry_at = (retryable && attempts < MAX_ATTEMPTS).then(|| {
            let pause = i64::try_from(backoff(attempts).as_micros()).unwrap_or(i64::MAX);
            Timestamp(self.now().0.saturating_add(pause))
        });
        tracing::error!(
            instance = %reaction.id,
            workflow = %reaction.workflow,
            attempts,
            %error,
            "a reaction failed; the command that caused it stands"
        );
        let data = json!({
            "instance": reaction.id,
            "workflow": reaction.workflow,
            "source": reaction.source.as_ref().map(|s| json!({
                "instance": s.instance,
                "workflow": s.workflow,
                "relation": s.relation,
            })),
            "attempt": attempts,
            "error": error.to_string(),
            "retry_at": retry_at.map(|t| t.0),
        });
        let event = new_event(REACTION_FAILED, &data, SYSTEM, "runtime", None)?;
        let key = to_idempotency_key(&format!("reaction:{}:failed#{attempts}", reaction.id))?;
        let stream = signoff_core::StreamId::parse(REACTIONS_STREAM).map_err(|e| corrupt(&e))?;
        let appended = self
            .log()
            .append(AppendRequest::new(stream, ExpectedVersion::Any, vec![event]).idempotent(key))
            .await?;
        // Folded now, so the retry waits for its time rather than the next catch-up.
        self.catch_up_to(appended.last_sequence).await
    }

    /// Starts the instance a reaction asks for and links it both ways to its source.
    async fn carry_out_reaction(&self, reaction: &Reaction) -> Result<(), RuntimeError> {
        let Reaction {
            id,
            workflow,
            input,
            requester,
            channel,
            source,
            roles,
            refused,
        } = reaction;
        if let Some(why) = refused {
            // Not retried: the source instance will name nobody again.
            return Err(signoff_core::engine::Rejection::invalid(why.clone()).into());
        }
        let requester = if self.actor(requester).is_ok() {
            requester.clone()
        } else {
            tracing::warn!(%workflow, %requester, "a requester is not in the directory; started as system");
            SYSTEM.to_owned()
        };
        Box::pin(self.start_handing_on(
            id,
            workflow,
            input.clone(),
            roles.clone(),
            &requester,
            channel,
        ))
        .await?;
        let Some(source) = source else {
            return Ok(());
        };
        let (back, forth) = match source.relation.as_str() {
            "child" => ("parent", "child"),
            _ => ("triggered_by", "triggered"),
        };
        for (on, other, other_workflow, rel) in [
            (id, &source.instance, &source.workflow, back),
            (&source.instance, id, workflow, forth),
        ] {
            let key = format!("link:{on}:{other}");
            let link = Command::Link {
                instance: other.clone(),
                workflow: other_workflow.clone(),
                relation: rel.to_owned(),
            };
            match Box::pin(self.execute_as_engine(on, link, "runtime", &key)).await {
                // Linked already (by another process, or before a restart).
                Ok(_) | Err(RuntimeError::Rejected(_) | RuntimeError::UnknownInstance(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_from_a_second_up_to_five_minutes() {
        let pauses: Vec<u64> = (1..=12).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }
}
