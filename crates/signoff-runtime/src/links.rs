//! Decision links: an email's Approve and Reject links, offered, opened and used.
//!
//! The outbox offers a link for each verdict a message's recipient may give at the gate the
//! message is about ([`Runtime::offered_decisions`]); the channel signs them with the
//! deployment's [`LinkKey`]. Opening a link ([`Runtime::open_link`]) reads and records nothing:
//! mail scanners fetch every link of every email. Only using it ([`Runtime::use_link`]) with a
//! justification the person typed decides, as the person the link was made for, through the
//! engine's rights checks like every channel, on channel `email`, caused by `link:<id>`. A
//! link is used once (an engine idempotency key per link); every refused use is recorded in
//! the security stream, with why.

use std::fmt;

use signoff_core::Timestamp;
use signoff_core::engine::{Command, InstanceEvent, Verdict, View};
use signoff_core::link::{Forged, LinkClaims, LinkKey};

use crate::error::RuntimeError;
use crate::idempotency::Keyed;
use crate::runtime::{Applied, Entry, Runtime, corrupt};

/// The channel decisions through links are recorded with.
pub const CHANNEL: &str = "email";

/// How long a link lives when its gate has no deadline.
pub const LIFETIME: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);

/// Why a link does not decide, said to the person who followed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Not a link of this deployment.
    Forged(Forged),
    /// Past its time.
    Expired {
        /// When it expired.
        at: Timestamp,
    },
    /// Used already: its decision stands.
    Used,
    /// The gate is not open any more.
    Closed {
        /// How it closed, and by whom.
        how: String,
    },
    /// The gate was entered again since the email: this link is for an earlier round.
    Superseded {
        /// The link's round.
        link: u32,
        /// The gate's round now.
        now: u32,
    },
    /// The form posted another verdict than the link's.
    OtherVerdict {
        /// The link's.
        link: Verdict,
        /// The one posted.
        posted: Verdict,
    },
    /// The engine refuses the person (no longer in the directory, no longer holding the role).
    NotAllowed(String),
}

impl LinkRefusal {
    /// A short name for the page's heading and the metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Forged(_) => "forged",
            Self::Expired { .. } => "expired",
            Self::Used => "used",
            Self::Closed { .. } => "closed",
            Self::Superseded { .. } => "superseded",
            Self::OtherVerdict { .. } => "other verdict",
            Self::NotAllowed(_) => "not allowed",
        }
    }
}

impl fmt::Display for LinkRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forged(why) => write!(f, "{why}"),
            Self::Expired { at } => write!(
                f,
                "this link expired at {} (the gate's deadline); open the request in signoff to see where it stands",
                at.to_rfc3339()
            ),
            Self::Used => write!(
                f,
                "this link was used already; the decision it gave stands (a link decides once)"
            ),
            Self::Closed { how } => write!(f, "this gate is no longer open: {how}"),
            Self::Superseded { link, now } => write!(
                f,
                "this link is for round {link} of this gate, which was entered again since (round {now}); use the newest email"
            ),
            Self::OtherVerdict { link, posted } => write!(
                f,
                "this link is to {}, not to {}; nothing was decided",
                link.as_str(),
                posted.as_str()
            ),
            Self::NotAllowed(why) => write!(f, "you may not decide here: {why}"),
        }
    }
}

/// An open link: what its confirmation page shows.
#[derive(Clone, Debug)]
pub struct OpenLink {
    /// What it says.
    pub claims: LinkClaims,
    /// The person's name.
    pub name: String,
    /// The instance as it is now.
    pub view: View,
    /// Lines of the instance as shown in the email that are not so any more (`-`) and what
    /// replaced them (`+`); empty when nothing changed.
    pub changes: Vec<(char, String)>,
    /// The fewest characters of justification the gate asks for this verdict (at least 1).
    pub min_justification: u32,
    /// What the gate asks the justification to say, if it says.
    pub prompt: String,
    /// The gate: its title, instructions, deadline, who asks.
    pub about: crate::outbox::About,
}

/// What a link's form posts.
#[derive(Clone, Debug, Default)]
pub struct LinkUse {
    /// The verdict the form shows (it must be the link's).
    pub verdict: Option<Verdict>,
    /// Typed by the person.
    pub justification: String,
    /// The view hash of the confirmation page the person read.
    pub shown: Option<String>,
}

/// What using a link came to.
#[derive(Debug)]
pub enum Used {
    /// Decided, by the link of these claims.
    Decided(Applied, LinkClaims),
    /// The form is to be filled in again: the reason (a justification too short, the request
    /// changed since the page was read). Nothing is recorded.
    Again(String),
    /// Refused, and recorded.
    Refused(LinkRefusal),
}

impl Runtime {
    /// The links the outbox offers `person` in a message about `step`: one per verdict the
    /// engine would take from them now, expiring with the gate's deadline (or after
    /// [`LIFETIME`]).
    #[must_use]
    pub fn offered_decisions(
        &self,
        entry: &Entry,
        person: &str,
        step: Option<&str>,
        shown: &str,
    ) -> Vec<LinkClaims> {
        let Some(step) = step else {
            return Vec::new();
        };
        let Some(active) = entry.state.active.get(step) else {
            return Vec::new();
        };
        if active.gate.is_none() || active.failure.is_some() {
            return Vec::new();
        }
        let Ok(actor) = self.actor(person) else {
            return Vec::new();
        };
        let now = self.now();
        let lifetime = i64::try_from(LIFETIME.as_micros()).unwrap_or(i64::MAX);
        let expires = active
            .gate
            .as_ref()
            .and_then(|g| g.opened.deadline)
            .unwrap_or(Timestamp(now.0.saturating_add(lifetime)));
        [Verdict::Approve, Verdict::Reject]
            .into_iter()
            .filter(|verdict| {
                let command = Command::Decide {
                    step: step.to_owned(),
                    verdict: *verdict,
                    justification: String::new(),
                    shown: None,
                };
                self.permits(entry, &actor, &command)
            })
            .map(|verdict| LinkClaims {
                id: LinkClaims::id_for(&entry.state.id, step, active.activation, person, verdict),
                person: person.to_owned(),
                instance: entry.state.id.clone(),
                step: step.to_owned(),
                activation: active.activation,
                verdict,
                shown: shown.to_owned(),
                issued: now,
                expires,
            })
            .collect()
    }

    /// What the link `token` would do, for its confirmation page. Reads only: nothing is
    /// recorded, whoever fetches it how often.
    ///
    /// # Errors
    /// A store error; a refusal is the inner `Err`.
    pub async fn open_link(
        &self,
        key: &LinkKey,
        token: &str,
    ) -> Result<Result<OpenLink, LinkRefusal>, RuntimeError> {
        let claims = match signoff_core::link::verify(token, key) {
            Ok(claims) => claims,
            Err(forged) => return Ok(Err(LinkRefusal::Forged(forged))),
        };
        let entry = match self.check_link(&claims).await? {
            Ok(entry) => entry,
            Err(refusal) => return Ok(Err(refusal)),
        };
        // Said before the form is filled in: the engine would refuse the person now (no longer
        // in the directory, no longer holding the role). Using it records the refusal.
        let command = Command::Decide {
            step: claims.step.clone(),
            verdict: claims.verdict,
            justification: String::new(),
            shown: None,
        };
        let actor = match self.actor(&claims.person) {
            Ok(actor) => actor,
            Err(e) => return Ok(Err(LinkRefusal::NotAllowed(e.to_string()))),
        };
        // The gate is open (checked above): what the engine refuses is the person's (no
        // right, or already decided here), said in the engine's words.
        if let Some(refusal) = self.would_refuse(&entry, &actor, &command) {
            return Ok(Err(LinkRefusal::NotAllowed(refusal.message)));
        }
        let view = self.view_of(&entry);
        let changes = if view.hash() == claims.shown {
            Vec::new()
        } else {
            self.changes_since(&claims, &view).await?
        };
        let (min_justification, prompt) = justification_rule(&entry, &claims.step, claims.verdict);
        let name = self.name_of(&claims.person);
        let about = crate::outbox::About::of(
            &entry,
            Some(&claims.step),
            self.name_of(&entry.state.requester),
        );
        Ok(Ok(OpenLink {
            about,
            claims,
            name,
            view,
            changes,
            min_justification,
            prompt,
        }))
    }

    /// Uses the link `token`: decides as its person, through channel `email`, if it still
    /// may; records a refused use in the security stream.
    ///
    /// # Errors
    /// A store error.
    pub async fn use_link(
        &self,
        key: &LinkKey,
        token: &str,
        form: &LinkUse,
    ) -> Result<Used, RuntimeError> {
        let claims = match signoff_core::link::verify(token, key) {
            Ok(claims) => claims,
            Err(forged) => {
                let refusal = LinkRefusal::Forged(forged);
                self.record_global_refusal(
                    "decide",
                    "unknown",
                    CHANNEL,
                    &format!("a decision link: {refusal}"),
                )
                .await?;
                return Ok(Used::Refused(refusal));
            }
        };
        if let Some(posted) = form.verdict
            && posted != claims.verdict
        {
            return self
                .refuse_link(
                    &claims,
                    LinkRefusal::OtherVerdict {
                        link: claims.verdict,
                        posted,
                    },
                )
                .await;
        }
        if let Err(refusal) = self.check_link(&claims).await? {
            return self.refuse_link(&claims, refusal).await;
        }
        if form.justification.trim().is_empty() {
            return Ok(Used::Again(
                "type why you decide so: a decision through a link always carries a justification"
                    .to_owned(),
            ));
        }
        let actor = match self.actor(&claims.person) {
            Ok(actor) => actor,
            Err(e) => {
                return self
                    .refuse_link(&claims, LinkRefusal::NotAllowed(e.to_string()))
                    .await;
            }
        };
        let command = Command::Decide {
            step: claims.step.clone(),
            verdict: claims.verdict,
            justification: form.justification.trim().to_owned(),
            shown: form.shown.clone(),
        };
        let keyed = link_key(&claims)?;
        let cause = format!("link:{}", claims.id);
        match self
            .execute_keyed(
                &claims.instance,
                command,
                &actor,
                CHANNEL,
                Some(&keyed),
                Some(&cause),
            )
            .await
        {
            // The same link posted twice at once: the second finds the first's decision.
            Ok(applied) if applied.deduplicated => {
                self.refuse_link(&claims, LinkRefusal::Used).await
            }
            Ok(applied) => Ok(Used::Decided(applied, claims)),
            Err(RuntimeError::Rejected(rejection)) => match rejection.kind {
                // Recorded by the engine's own check already.
                signoff_core::engine::RejectionKind::Forbidden => {
                    Ok(Used::Refused(LinkRefusal::NotAllowed(rejection.message)))
                }
                // The gate closed meanwhile, or it is open and the person already decided.
                signoff_core::engine::RejectionKind::Closed => {
                    let refusal = match self.check_link(&claims).await? {
                        Err(closed) => closed,
                        Ok(_) => LinkRefusal::NotAllowed(rejection.message),
                    };
                    self.refuse_link(&claims, refusal).await
                }
                _ => Ok(Used::Again(rejection.message)),
            },
            Err(e) => Err(e),
        }
    }

    /// Records a refused use of a verified link in the security stream; the refusal.
    async fn refuse_link(
        &self,
        claims: &LinkClaims,
        refusal: LinkRefusal,
    ) -> Result<Used, RuntimeError> {
        let reason = format!("decision link {}: {refusal}", claims.id);
        match self.load(&claims.instance).await {
            Ok(entry) => {
                self.record_refusal_of(
                    &entry,
                    "decide",
                    Some(&claims.step),
                    &claims.person,
                    CHANNEL,
                    &reason,
                )
                .await?;
            }
            Err(_) => {
                self.record_global_refusal("decide", &claims.person, CHANNEL, &reason)
                    .await?;
            }
        }
        Ok(Used::Refused(refusal))
    }

    /// The instance a verified link is about, if the link may still be used.
    async fn check_link(
        &self,
        claims: &LinkClaims,
    ) -> Result<Result<Entry, LinkRefusal>, RuntimeError> {
        if self.now() > claims.expires {
            return Ok(Err(LinkRefusal::Expired { at: claims.expires }));
        }
        if self
            .log()
            .idempotent_result(&link_key(claims)?.key)
            .await?
            .is_some()
        {
            return Ok(Err(LinkRefusal::Used));
        }
        let entry = match self.load(&claims.instance).await {
            Ok(entry) => entry,
            Err(RuntimeError::UnknownInstance(_)) => {
                return Ok(Err(LinkRefusal::Closed {
                    how: "the instance it is about does not exist here".to_owned(),
                }));
            }
            Err(e) => return Err(e),
        };
        match entry.state.active.get(&claims.step) {
            Some(active) if active.gate.is_some() => {
                if active.activation == claims.activation {
                    Ok(Ok(entry))
                } else {
                    Ok(Err(LinkRefusal::Superseded {
                        link: claims.activation,
                        now: active.activation,
                    }))
                }
            }
            _ => Ok(Err(LinkRefusal::Closed {
                how: self.how_closed(&claims.instance, &claims.step).await?,
            })),
        }
    }

    /// How the gate `step` of `instance` closed, from the instance's own events: "approved at
    /// … (by Alice Smith through web)".
    pub(crate) async fn how_closed(
        &self,
        instance: &str,
        step: &str,
    ) -> Result<String, RuntimeError> {
        let events = self.instance_events(instance).await?;
        let name = |id: &str| self.name_of(id);
        let gate = step;
        let mut deciders = Vec::new();
        let mut how = String::new();
        for (record, event) in &events {
            match event {
                InstanceEvent::Decided {
                    step, by, verdict, ..
                } if step == gate => {
                    deciders.push(format!(
                        "{} by {} through {}",
                        verdict.past(),
                        name(by),
                        record.metadata.channel
                    ));
                }
                InstanceEvent::StepEntered { step, .. } if step == gate => {
                    deciders.clear();
                }
                InstanceEvent::StepCompleted {
                    step, outcome, at, ..
                } if step == gate => {
                    how = format!("it closed {outcome} at {}", at.to_rfc3339());
                }
                InstanceEvent::Cancelled { by, reason, at } => {
                    how = format!(
                        "the instance was cancelled at {} by {}: {reason}",
                        at.to_rfc3339(),
                        name(by)
                    );
                }
                _ => {}
            }
        }
        if !deciders.is_empty() && !how.starts_with("the instance") {
            how = format!("{how} ({})", deciders.join("; "));
        }
        Ok(how.trim().to_owned())
    }

    /// What changed between the instance as the email showed it and `now`: the lines of each
    /// reading that the other lacks.
    async fn changes_since(
        &self,
        claims: &LinkClaims,
        now: &View,
    ) -> Result<Vec<(char, String)>, RuntimeError> {
        let then = match self.state_at(&claims.instance, claims.issued).await {
            Ok(entry) => self.view_of(&entry),
            Err(RuntimeError::NotYet(..)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(line_changes(&then.text("  "), &now.text("  ")))
    }
}

/// The engine's idempotency key of a link: one decision per link, whoever posts it how often.
fn link_key(claims: &LinkClaims) -> Result<Keyed, RuntimeError> {
    Keyed::engine(&format!("link:{}", claims.id)).map_err(|e| corrupt(&e))
}

/// The gate's rule for a justification of `verdict` at `step`: at least one character, always
/// (a decision through a link or a chat button is always explained).
pub(crate) fn justification_rule(entry: &Entry, step: &str, verdict: Verdict) -> (u32, String) {
    entry
        .loaded
        .definition
        .step(step)
        .and_then(|step| step.approval.as_ref())
        .and_then(|approval| approval.rule(verdict))
        .map_or((1, String::new()), |r| {
            (r.min_length.max(1), r.prompt.clone())
        })
}

/// The lines of `before` missing from `after` (`-`), then those of `after` missing from
/// `before` (`+`), each in its own order.
fn line_changes(before: &str, after: &str) -> Vec<(char, String)> {
    let old: std::collections::BTreeSet<&str> = before.lines().collect();
    let new: std::collections::BTreeSet<&str> = after.lines().collect();
    before
        .lines()
        .filter(|l| !new.contains(l) && !l.trim().is_empty())
        .map(|l| ('-', l.to_owned()))
        .chain(
            after
                .lines()
                .filter(|l| !old.contains(l) && !l.trim().is_empty())
                .map(|l| ('+', l.to_owned())),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_list_what_went_and_what_came() {
        let before = "Title\n  Amount: 10\n  Owner: Ann\n";
        let after = "Title\n  Amount: 12\n  Owner: Ann\n  Note: rushed\n";
        assert_eq!(
            line_changes(before, after),
            vec![
                ('-', "  Amount: 10".to_owned()),
                ('+', "  Amount: 12".to_owned()),
                ('+', "  Note: rushed".to_owned()),
            ]
        );
        assert!(line_changes(before, before).is_empty());
    }
}
