//! Deciding in chat: an Approve or Reject button under a message, pressed by someone.
//!
//! A button carries an opaque id ([`button_id`]): the instance to read, and a hash of the gate,
//! its round and the verdict. It carries no decision and is trusted for nothing else: a press
//! ([`Runtime::press`]) reads the instance as it is now and looks for an open gate whose
//! button has that id; the person is whoever the chat service says pressed, found in the
//! directory by their chat user id; the engine checks their right as for every channel. A
//! decision ([`Runtime::decide_in_chat`]) always carries the justification the person typed
//! (the chat's form), is recorded on the chat's channel (`discord`) and caused by where the
//! press came from (`discord:guild/…/channel/…/message/…/user/…`), under an engine key per
//! interaction, so a press delivered twice decides once. Every refused press (someone the
//! directory does not know, someone without the right, a gate closed) is said to the person
//! and recorded in the security stream.

use std::fmt;

use sha2::{Digest, Sha256};
use signoff_core::Timestamp;
use signoff_core::engine::{Command, InstanceEvent, RejectionKind, Verdict};

use crate::error::RuntimeError;
use crate::idempotency::Keyed;
use crate::links::justification_rule;
use crate::runtime::{Applied, Entry, Runtime, corrupt};

/// The id of the button that gives `verdict` at round `activation` of gate `step` of
/// `instance`: `INSTANCE.HASH`, where the hash (32 hex digits) covers the rest.
#[must_use]
pub fn button_id(instance: &str, step: &str, activation: u32, verdict: Verdict) -> String {
    let mut hasher = Sha256::new();
    let activation = activation.to_string();
    for part in ["chat-button", instance, step, &activation, verdict.as_str()] {
        // Each part with its length, so that ("ab", "c") and ("a", "bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("{instance}.{}", hex::encode(&hasher.finalize()[..16]))
}

/// Who pressed, as the chat service says, and where.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presser {
    /// The channel's name (`discord`): the decision's channel and the directory's key.
    pub channel: String,
    /// Their user id on the chat service.
    pub user: String,
    /// Where the press came from, recorded as the decision's cause
    /// (`discord:guild/1/channel/2/message/3/user/4`).
    pub origin: String,
    /// The interaction's own id: a press delivered twice decides once.
    pub interaction: String,
}

/// A press, as the instance is now: what the button stands for and who pressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Press {
    /// The instance.
    pub instance: String,
    /// Its title, as people read it.
    pub title: String,
    /// The gate.
    pub step: String,
    /// The gate's title.
    pub step_title: String,
    /// Its round.
    pub activation: u32,
    /// The verdict of the button.
    pub verdict: Verdict,
    /// The person who pressed.
    pub person: String,
    /// Their name.
    pub name: String,
    /// The fewest characters of justification the gate asks for (at least 1).
    pub min_justification: u32,
    /// What the justification is to say, if the gate says.
    pub prompt: String,
    /// The hash of the instance as it reads now (what the person decides on).
    pub shown: String,
}

/// Why a press does not decide, said to the person (only to them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatRefusal {
    /// No open or closed gate of a known instance has a button with this id.
    Unknown,
    /// The chat user is nobody in the directory.
    Unmapped {
        /// Their user id.
        user: String,
    },
    /// The gate is not open any more, or is in a later round.
    Closed {
        /// How it closed, and by whom.
        how: String,
    },
    /// The engine refuses the person: no right here, or they decided here already.
    NotAllowed(String),
    /// The gate is decided on its web page only (`chat: link`).
    LinkOnly,
}

impl fmt::Display for ChatRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => write!(
                f,
                "this button is not one of signoff's open requests; nothing was decided"
            ),
            Self::Unmapped { user } => write!(
                f,
                "your chat account ({user}) is not linked to a person in signoff's directory; \
                 ask an administrator to add it to people.yaml. Nothing was decided"
            ),
            Self::Closed { how } => write!(f, "this request is no longer open: {how}"),
            Self::NotAllowed(why) => write!(f, "you may not decide here: {why}"),
            Self::LinkOnly => write!(
                f,
                "this gate is decided on its web page only, not in chat; open the request's link. \
                 Nothing was decided"
            ),
        }
    }
}

/// What a chat decision came to.
#[derive(Debug)]
pub enum ChatDecision {
    /// Decided.
    Decided(Box<(Applied, Press)>),
    /// Nothing recorded; the form is to be filled in again (a justification too short).
    Again(String),
    /// Refused, and recorded.
    Refused(ChatRefusal),
}

/// One round of a gate as the messages about it show it: who decided what so far, and how it
/// ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GateStory {
    /// The instance.
    pub instance: String,
    /// The gate.
    pub step: String,
    /// Its round.
    pub activation: u32,
    /// The decisions of this round still standing, in order.
    pub decisions: Vec<Said>,
    /// How the round ended (`approved`, `rejected`, `expired`, `cancelled`…); none while open.
    pub outcome: Option<String>,
    /// When it ended.
    pub closed_at: Option<Timestamp>,
    /// What else people are to read: who it was escalated to, why it was cancelled.
    pub notes: Vec<String>,
}

impl GateStory {
    /// Whether the round is still open.
    #[must_use]
    pub fn open(&self) -> bool {
        self.outcome.is_none()
    }
}

/// A decision as a message shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Said {
    /// The person.
    pub person: String,
    /// Their name.
    pub name: String,
    /// Their verdict.
    pub verdict: Verdict,
    /// Their justification.
    pub justification: String,
    /// When.
    pub at: Timestamp,
    /// Through which channel (`discord`, `web`, `email`, `api`, `cli`).
    pub channel: String,
}

/// A chat message about a gate, edited (or not) to show the gate as it stands: recorded in
/// `chat/<channel>`, so auditors see who was shown what, and when.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CardEdit {
    /// The instance.
    pub instance: String,
    /// The gate.
    pub step: String,
    /// Its round.
    pub activation: u32,
    /// Where the message is (the channel's reference: `CHANNEL/MESSAGE` for Discord).
    pub reference: String,
    /// To whom it was sent, for a direct message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// The decisions it shows.
    pub decisions: usize,
    /// How the round ended, as it shows; none while open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Why the edit failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Runtime {
    /// The round gate `step` of `instance` is open in, if this process holds the instance
    /// running and the gate open (no read of the log).
    #[must_use]
    pub fn gate_round(&self, instance: &str, step: &str) -> Option<u32> {
        self.view()
            .running
            .get(instance)
            .and_then(|entry| entry.state.active.get(step))
            .filter(|active| active.gate.is_some())
            .map(|active| active.activation)
    }

    /// The person of the directory with chat user id `user` on `channel`, if exactly one.
    #[must_use]
    pub fn chat_person(&self, channel: &str, user: &str) -> Option<String> {
        let directory = self.directory();
        match channel {
            "discord" => directory.find_by_discord(user).map(|p| p.id.clone()),
            _ => None,
        }
    }

    /// Records in the security stream that a chat user was refused `what` (a command from
    /// someone the directory does not know).
    ///
    /// # Errors
    /// A store error.
    pub async fn refuse_in_chat(
        &self,
        presser: &Presser,
        what: &str,
        reason: &str,
    ) -> Result<(), RuntimeError> {
        let person = self
            .chat_person(&presser.channel, &presser.user)
            .unwrap_or_else(|| format!("{}:{}", presser.channel, presser.user));
        let reason = format!("{} ({}): {reason}", presser.channel, presser.origin);
        self.record_global_refusal(what, &person, &presser.channel, &reason)
            .await
    }

    /// Records that `instance`'s messages on `channel` go to the chat thread `thread`.
    ///
    /// # Errors
    /// A store error.
    pub async fn record_chat_thread(
        &self,
        channel: &str,
        instance: &str,
        thread: &str,
        by: &str,
    ) -> Result<(), RuntimeError> {
        use crate::events::{CHAT_STREAM_PREFIX, CHAT_THREAD};
        let data = serde_json::json!({ "instance": instance, "thread": thread });
        let event = crate::events::new_event(CHAT_THREAD, &data, by, channel, Some(instance))?;
        let stream = signoff_core::StreamId::parse(format!("{CHAT_STREAM_PREFIX}{channel}"))
            .map_err(|e| corrupt(&e))?;
        let key = crate::events::to_idempotency_key(&format!("chat:{channel}:thread:{instance}"))?;
        let request = signoff_store::AppendRequest::new(
            stream,
            signoff_store::ExpectedVersion::Any,
            vec![event],
        )
        .idempotent(key);
        self.log().append(request).await?;
        Ok(())
    }

    /// Records the edits (and failed edits) of one turn of a chat channel's cards, once per
    /// `key`.
    ///
    /// # Errors
    /// A store error.
    pub async fn record_card_edits(
        &self,
        channel: &str,
        edits: &[CardEdit],
        key: &str,
    ) -> Result<(), RuntimeError> {
        use crate::events::{CHAT_EDIT_FAILED, CHAT_EDITED, CHAT_STREAM_PREFIX};
        if edits.is_empty() {
            return Ok(());
        }
        let mut events = Vec::with_capacity(edits.len());
        for edit in edits {
            let ty = if edit.error.is_some() {
                CHAT_EDIT_FAILED
            } else {
                CHAT_EDITED
            };
            let data = serde_json::to_value(edit).map_err(|e| corrupt(&e))?;
            events.push(crate::events::new_event(
                ty,
                &data,
                signoff_core::engine::SYSTEM,
                channel,
                Some(&edit.instance),
            )?);
        }
        let stream = signoff_core::StreamId::parse(format!("{CHAT_STREAM_PREFIX}{channel}"))
            .map_err(|e| corrupt(&e))?;
        let key = crate::events::to_idempotency_key(&format!("chat:{channel}:{key}"))?;
        let request =
            signoff_store::AppendRequest::new(stream, signoff_store::ExpectedVersion::Any, events)
                .idempotent(key);
        self.log().append(request).await?;
        Ok(())
    }

    /// The instance as it stands, and the rounds `activations` of its gate `step` (in that
    /// order), from one read of its stream: what the cards about the gate show.
    ///
    /// # Errors
    /// An unknown instance; a store error.
    pub async fn gate_cards(
        &self,
        instance: &str,
        step: &str,
        activations: &[u32],
    ) -> Result<(Entry, Vec<GateStory>), RuntimeError> {
        let events = self.instance_events(instance).await?;
        let running = self.view().running.get(instance).cloned();
        let entry = match running {
            Some(entry) => entry,
            None => self.entry_from(instance, events.iter().map(|(_, e)| e))?,
        };
        let stories = activations
            .iter()
            .map(|a| self.story_of(instance, step, *a, &events))
            .collect();
        Ok((entry, stories))
    }

    fn story_of(
        &self,
        instance: &str,
        step: &str,
        activation: u32,
        events: &[(signoff_core::RecordedEvent, InstanceEvent)],
    ) -> GateStory {
        let mut story = GateStory {
            instance: instance.to_owned(),
            step: step.to_owned(),
            activation,
            ..GateStory::default()
        };
        let mut inside = false;
        for (record, event) in events {
            match event {
                InstanceEvent::StepEntered {
                    step: s,
                    activation: a,
                    ..
                } if s == step => {
                    if inside {
                        break;
                    }
                    inside = *a == activation;
                }
                _ if !inside => {}
                InstanceEvent::Decided {
                    step: s,
                    by,
                    verdict,
                    justification,
                    at,
                    ..
                } if s == step => story.decisions.push(Said {
                    person: by.clone(),
                    name: self.name_of(by),
                    verdict: *verdict,
                    justification: justification.clone(),
                    at: *at,
                    channel: record.metadata.channel.clone(),
                }),
                InstanceEvent::Revoked { step: s, by, .. } if s == step => {
                    story.decisions.retain(|d| d.person != *by);
                }
                InstanceEvent::Escalated { step: s, to, .. } if s == step => {
                    let names: Vec<String> = to.iter().map(|p| self.name_of(p)).collect();
                    story
                        .notes
                        .push(format!("Escalated to {}", names.join(", ")));
                }
                InstanceEvent::StepCompleted {
                    step: s,
                    outcome,
                    at,
                    ..
                } if s == step => {
                    story.outcome = Some(outcome.clone());
                    story.closed_at = Some(*at);
                    break;
                }
                InstanceEvent::Cancelled { reason, by, at } => {
                    story.outcome = Some("cancelled".to_owned());
                    story.closed_at = Some(*at);
                    story
                        .notes
                        .push(format!("Cancelled by {}: {reason}", self.name_of(by)));
                    break;
                }
                InstanceEvent::Ended { outcome, at, .. } => {
                    story.outcome = Some(format!("closed (the instance ended {outcome})"));
                    story.closed_at = Some(*at);
                    break;
                }
                _ => {}
            }
        }
        story
    }

    /// What pressing `button` means now for the person `presser` is. A refusal is recorded in
    /// the security stream.
    ///
    /// # Errors
    /// A store error; a refusal is the inner `Err`.
    pub async fn press(
        &self,
        button: &str,
        presser: &Presser,
    ) -> Result<Result<Press, ChatRefusal>, RuntimeError> {
        let (entry, found) = match self.resolve_button(button).await? {
            Ok(resolved) => resolved,
            Err(refusal) => {
                return Ok(Err(self.refuse_press(None, None, presser, refusal).await?));
            }
        };
        let (step, activation, verdict) = found;
        let link_only = entry
            .loaded
            .definition
            .step(&step)
            .and_then(|s| s.approval.as_ref())
            .is_some_and(|a| a.chat == signoff_core::workflow::ChatMode::Link);
        if link_only {
            let refusal = ChatRefusal::LinkOnly;
            return Ok(Err(self
                .refuse_press(Some(&entry), Some(&step), presser, refusal)
                .await?));
        }
        let Some(person) = self.person_in_chat(presser) else {
            let refusal = ChatRefusal::Unmapped {
                user: presser.user.clone(),
            };
            return Ok(Err(self
                .refuse_press(Some(&entry), Some(&step), presser, refusal)
                .await?));
        };
        let open = entry
            .state
            .active
            .get(&step)
            .is_some_and(|a| a.gate.is_some() && a.activation == activation);
        if !open {
            let how = self.how_closed(&entry.state.id, &step).await?;
            let refusal = ChatRefusal::Closed { how };
            return Ok(Err(self
                .refuse_press(Some(&entry), Some(&step), presser, refusal)
                .await?));
        }
        let command = Command::Decide {
            step: step.clone(),
            verdict,
            justification: String::new(),
            shown: None,
        };
        let refused = match self.actor(&person) {
            Ok(actor) => self
                .would_refuse(&entry, &actor, &command)
                .map(|r| r.message),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = refused {
            let refusal = ChatRefusal::NotAllowed(why);
            return Ok(Err(self
                .refuse_press(Some(&entry), Some(&step), presser, refusal)
                .await?));
        }
        let view = self.view_of(&entry);
        let (min_justification, prompt) = justification_rule(&entry, &step, verdict);
        let step_title = entry
            .loaded
            .definition
            .step(&step)
            .map_or_else(|| step.clone(), |s| s.title_or_id().to_owned());
        Ok(Ok(Press {
            instance: entry.state.id.clone(),
            title: view.title.clone(),
            step,
            step_title,
            activation,
            verdict,
            name: self.name_of(&person),
            person,
            min_justification,
            prompt,
            shown: view.hash(),
        }))
    }

    /// Decides what `button` stands for, as the person `presser` is, with `justification`:
    /// the press is checked again (the gate may have closed since the form opened), then the
    /// engine decides on channel `presser.channel`, caused by `presser.origin`.
    ///
    /// # Errors
    /// A store error.
    pub async fn decide_in_chat(
        &self,
        button: &str,
        presser: &Presser,
        justification: &str,
    ) -> Result<ChatDecision, RuntimeError> {
        let keyed = Keyed::engine(&format!("{}:{}", presser.channel, presser.interaction))
            .map_err(|e| corrupt(&e))?;
        let press = match self.press(button, presser).await? {
            Ok(press) => press,
            Err(refusal) => return Ok(ChatDecision::Refused(refusal)),
        };
        let justification = justification.trim();
        if justification.is_empty() {
            return Ok(ChatDecision::Again(
                "type why you decide so: a decision in chat always carries a justification"
                    .to_owned(),
            ));
        }
        let actor = self.actor(&press.person)?;
        let command = Command::Decide {
            step: press.step.clone(),
            verdict: press.verdict,
            justification: justification.to_owned(),
            shown: Some(press.shown.clone()),
        };
        match self
            .execute_keyed(
                &press.instance,
                command,
                &actor,
                &presser.channel,
                Some(&keyed),
                Some(&presser.origin),
            )
            .await
        {
            Ok(applied) => Ok(ChatDecision::Decided(Box::new((applied, press)))),
            Err(RuntimeError::Rejected(rejection)) => match rejection.kind {
                // Recorded by the engine's own check already.
                RejectionKind::Forbidden => Ok(ChatDecision::Refused(ChatRefusal::NotAllowed(
                    rejection.message,
                ))),
                // Another press (or another channel) closed the gate first, or this person
                // decided here meanwhile.
                RejectionKind::Closed => {
                    let entry = self.load(&press.instance).await?;
                    let still_open = entry
                        .state
                        .active
                        .get(&press.step)
                        .is_some_and(|a| a.gate.is_some() && a.activation == press.activation);
                    let refusal = if still_open {
                        ChatRefusal::NotAllowed(rejection.message)
                    } else {
                        ChatRefusal::Closed {
                            how: self.how_closed(&press.instance, &press.step).await?,
                        }
                    };
                    let refusal = self
                        .refuse_press(Some(&entry), Some(&press.step), presser, refusal)
                        .await?;
                    Ok(ChatDecision::Refused(refusal))
                }
                _ => Ok(ChatDecision::Again(rejection.message)),
            },
            Err(e) => Err(e),
        }
    }

    /// The directory's person with the presser's chat user id.
    fn person_in_chat(&self, presser: &Presser) -> Option<String> {
        let directory = self.directory();
        match presser.channel.as_str() {
            "discord" => directory
                .find_by_discord(&presser.user)
                .map(|p| p.id.clone()),
            _ => None,
        }
    }

    /// The instance a button names, and the gate, round and verdict its hash stands for: an
    /// open gate's first, else any round of a gate the instance entered.
    async fn resolve_button(
        &self,
        button: &str,
    ) -> Result<Result<(Entry, (String, u32, Verdict)), ChatRefusal>, RuntimeError> {
        let Some((instance, _)) = button.split_once('.') else {
            return Ok(Err(ChatRefusal::Unknown));
        };
        let entry = match self.load(instance).await {
            Ok(entry) => entry,
            Err(RuntimeError::UnknownInstance(_)) => {
                return Ok(Err(ChatRefusal::Unknown));
            }
            Err(e) => return Err(e),
        };
        let matches = |step: &str, activation: u32| {
            [Verdict::Approve, Verdict::Reject]
                .into_iter()
                .find(|v| button_id(instance, step, activation, *v) == button)
        };
        for (step, active) in &entry.state.active {
            if active.gate.is_some()
                && let Some(verdict) = matches(step, active.activation)
            {
                let found = (step.clone(), active.activation, verdict);
                return Ok(Ok((entry, found)));
            }
        }
        // A button of a gate that closed, or of an earlier round: said as closed.
        let events = self.instance_events(instance).await?;
        for (_, event) in events.iter().rev() {
            if let InstanceEvent::StepEntered {
                step,
                activation,
                gate: Some(_),
                ..
            } = event
                && let Some(verdict) = matches(step, *activation)
            {
                let found = (step.clone(), *activation, verdict);
                return Ok(Ok((entry, found)));
            }
        }
        Ok(Err(ChatRefusal::Unknown))
    }

    /// Records a refused press in the security stream; the refusal.
    async fn refuse_press(
        &self,
        entry: Option<&Entry>,
        step: Option<&str>,
        presser: &Presser,
        refusal: ChatRefusal,
    ) -> Result<ChatRefusal, RuntimeError> {
        let person = self
            .person_in_chat(presser)
            .unwrap_or_else(|| format!("{}:{}", presser.channel, presser.user));
        let reason = format!(
            "a {} button ({}): {refusal}",
            presser.channel, presser.origin
        );
        match entry {
            Some(entry) => {
                self.record_refusal_of(entry, "decide", step, &person, &presser.channel, &reason)
                    .await?;
            }
            None => {
                self.record_global_refusal("decide", &person, &presser.channel, &reason)
                    .await?;
            }
        }
        Ok(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_button_id_names_its_instance_and_hides_the_rest() {
        let approve = button_id("i-1", "approve", 1, Verdict::Approve);
        let reject = button_id("i-1", "approve", 1, Verdict::Reject);
        let later = button_id("i-1", "approve", 2, Verdict::Approve);
        assert!(approve.starts_with("i-1."));
        assert!(!approve.contains("approve"), "{approve}");
        assert_ne!(approve, reject);
        assert_ne!(approve, later);
        assert_eq!(approve, button_id("i-1", "approve", 1, Verdict::Approve));
        // Discord's limit for a custom id is 100 characters.
        let long = button_id(&"x".repeat(64), "gate", 1, Verdict::Approve);
        assert!(long.len() <= 100, "{}", long.len());
    }
}
