//! The outbox: notifications the instances recorded, delivered through channels (email, chat).
//!
//! A channel says which people it can reach and delivers one message. [`Runtime::deliver`] walks
//! the notifications recorded since the channel's last run, in log order, and records each
//! outcome in the channel's stream `outbox/<channel>`: `delivered`, or `failed` with the reason
//! and the attempt. A failure the channel calls permanent (a mail server's 5xx) is given up at
//! once; any other (4xx, a timeout, the server away) is retried with backoff ([`retry_after`]),
//! up to [`MAX_ATTEMPTS`] in all.
//! First attempts go in windows: the messages of up to [`WINDOW`] notifications' worth of
//! recipients (whole notifications) are sent at once, [`PARALLEL`] in flight, and their outcomes
//! recorded in one append, so a burst costs one durable write per window, not per message.
//! Retries are recorded one by one, with idempotency keys per notification, person and attempt.
//! While the process is taking commands, each window waits (at most [`YIELD_AT_MOST`]): a
//! burst of decisions goes first, its emails right after.
//! A message whose delivery is recorded is not sent again. Delivery is at least once, never
//! lost: a process that stops between sending and recording sends that window again when it
//! restarts, and two processes delivering through the same channel at once may both send one;
//! run one deliverer per channel (a runtime serialises its own calls per channel).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use signoff_core::directory::Person;
use signoff_core::engine::SYSTEM;
use signoff_core::{RecordedEvent, StreamId, Timestamp};
use signoff_store::{AppendRequest, ExpectedVersion, StoreError};

use crate::error::RuntimeError;
pub use crate::events::{
    OUTBOX_DELIVERED as DELIVERED, OUTBOX_FAILED as FAILED, OUTBOX_STREAM_PREFIX as STREAM_PREFIX,
};
use crate::events::{corrupt, new_event, to_idempotency_key};
use crate::queries::Notification;
use crate::runtime::Runtime;
/// Attempts per message before the outbox gives up on it (the last failure says so): with
/// [`retry_after`], the last is about ten minutes after the first.
pub const MAX_ATTEMPTS: u32 = 8;

/// Messages sent at once.
pub const PARALLEL: usize = 16;

/// How long the outbox holds a window back while this process is taking commands: people
/// deciding come first, their emails right after (a window waits at most this long).
pub const YIELD_AT_MOST: std::time::Duration = std::time::Duration::from_secs(2);

/// Commands this recent mean people are deciding now.
const QUIET: std::time::Duration = std::time::Duration::from_millis(50);

/// Messages whose first attempts are recorded together (a notification to more people is
/// one window of its own).
pub const WINDOW: usize = 64;

/// How long after its `attempt`-th failure a message is tried again: 5 s, doubling, at most
/// 15 minutes.
#[must_use]
pub fn retry_after(attempt: u32) -> std::time::Duration {
    let seconds = 5u64.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    std::time::Duration::from_secs(seconds.min(15 * 60))
}

/// Upper bounds (seconds) of the delivery latency histogram: from the notification's commit to
/// the channel's acceptance.
pub const LATENCY_BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// What one process's deliveries through one channel did since it started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    /// Messages the channel accepted.
    pub delivered: u64,
    /// Attempts that failed (each retried, or given up).
    pub failed: u64,
    /// Messages given up (a permanent failure, or the last attempt).
    pub given_up: u64,
    /// Attempts after a first that failed.
    pub retried: u64,
    /// Delivered messages by latency bucket ([`LATENCY_BUCKETS`], cumulative as Prometheus
    /// counts them).
    pub latency_buckets: [u64; LATENCY_BUCKETS.len()],
    /// Their latencies summed, in seconds.
    pub latency_sum: f64,
    /// How many latencies were counted.
    pub latency_count: u64,
}

impl Counters {
    fn count(&mut self, attempt: u32, outcome: &Outcome, latency: Option<f64>) {
        if attempt > 1 {
            self.retried += 1;
        }
        if outcome.error.is_none() {
            self.delivered += 1;
            if let Some(seconds) = latency {
                self.latency_sum += seconds;
                self.latency_count += 1;
                for (bound, count) in LATENCY_BUCKETS.iter().zip(self.latency_buckets.iter_mut()) {
                    if seconds <= *bound {
                        *count += 1;
                    }
                }
            }
        } else {
            self.failed += 1;
            if outcome.given_up {
                self.given_up += 1;
            }
        }
    }
}

/// Why a message was not delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What the channel said (an SMTP reply, an HTTP status).
    pub reason: String,
    /// Trying again will not help (a mailbox that does not exist): given up at once.
    pub permanent: bool,
}

impl Failure {
    /// A failure that may pass (a 4xx reply, a timeout, a server away): retried.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: false,
        }
    }

    /// A failure that will not pass: recorded and given up.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: true,
        }
    }
}

/// What delivering one message gives: done, with where the channel put it if it says (a
/// chat message's `channel/message` ids, recorded with the outcome so that the message can be
/// edited later), or why not.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<Option<String>, Failure>> + Send + 'a>>;

/// A way to reach people: email, a chat service.
pub trait Channel: Send + Sync {
    /// Its name, as in `outbox/<name>` and in the log (`email`, `discord`).
    fn name(&self) -> &str;
    /// The person's address on this channel, if they have one.
    fn address(&self, person: &Person) -> Option<String>;
    /// Delivers one message.
    fn deliver<'a>(&'a self, message: &'a Message) -> Delivery<'a>;
    /// Delivers as soon as a notification is committed (chat), not on the outbox's own
    /// schedule (at most a second later: email).
    fn follows_commits(&self) -> bool {
        false
    }
}

/// One notification for one person on one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The notification's id within its instance.
    pub notification: String,
    /// The log sequence of the notification.
    pub sequence: u64,
    /// The instance.
    pub instance: String,
    /// The person.
    pub person: String,
    /// Their name.
    pub name: String,
    /// Their address on the channel.
    pub address: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Why they are told (`approval_requested`, `reminder`, `outcome`…).
    pub reason: String,
    /// The step it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The round of that step when the message was sent, if it was open (a chat card shows
    /// that round's decisions when it is edited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<u32>,
    /// When the notification was committed (for the delivery latency); 0 in outcomes
    /// recorded before it was kept.
    #[serde(default)]
    pub noted_at: Timestamp,
    /// The instance as people read it when the message is sent (its title, its answers, and
    /// the hash a decision proves it was shown); not recorded with the outcome.
    #[serde(skip)]
    pub view: Option<signoff_core::engine::View>,
    /// What the message is about, read from the instance when it is sent: its workflow, who
    /// asked, the step's instructions and deadline; not recorded.
    #[serde(skip)]
    pub about: Option<About>,
    /// The decisions the recipient may give at the gate the message is about, when it is sent
    /// (see [`Runtime::offered_decisions`]), for the channel to sign as links; not recorded.
    #[serde(skip)]
    pub decisions: Vec<signoff_core::link::LinkClaims>,
    /// The addresses on this channel of everyone the notification is for (a message posted
    /// once for all of them mentions each); not recorded.
    #[serde(skip)]
    pub recipients: Vec<String>,
}

/// What a message is about, for its channel to say by reason (who asks what of whom, by
/// when, and what they must write).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct About {
    /// The workflow's id (templates are overridden per workflow and step by it).
    pub workflow: String,
    /// The workflow's title.
    pub workflow_title: String,
    /// Who started the instance, by name.
    pub requester: String,
    /// The step's title, if the message is about a step.
    pub step_title: Option<String>,
    /// What the step asks of people: the gate's instructions, or the step's description.
    pub instructions: Option<String>,
    /// The gate's deadline, while it is open.
    pub deadline: Option<Timestamp>,
    /// What a justification must say, per verdict ("To reject: why … (at least 10
    /// characters)").
    pub asks: Vec<String>,
    /// The gate is decided on its web page only (`chat: link`): a chat message carries a link,
    /// no buttons.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link_only: bool,
    /// The chat channel messages about this step (or workflow) go to, instead of direct
    /// messages (a Discord channel's id: `discord_channel` in the definition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_channel: Option<String>,
}

impl About {
    /// What `entry` says of the step `step` (if any).
    #[must_use]
    pub fn of(entry: &crate::Entry, step: Option<&str>, requester: String) -> Self {
        let definition = &entry.loaded.definition;
        let def = step.and_then(|s| definition.step(s));
        let approval = def.and_then(|d| d.approval.as_ref());
        let instructions = approval
            .map(|a| a.instructions.trim().to_owned())
            .filter(|i| !i.is_empty())
            .or_else(|| {
                def.map(|d| d.description.trim().to_owned())
                    .filter(|d| !d.is_empty())
            });
        let asks = approval.map(|a| a.asks()).unwrap_or_default();
        let link_only =
            approval.is_some_and(|a| a.chat == signoff_core::workflow::model::ChatMode::Link);
        Self {
            workflow: entry.state.workflow.clone(),
            workflow_title: definition.title.clone(),
            requester,
            step_title: def.map(|d| d.title_or_id().to_owned()),
            instructions,
            deadline: step
                .and_then(|s| entry.state.active.get(s))
                .and_then(|a| a.gate.as_ref())
                .and_then(|g| g.opened.deadline),
            asks,
            link_only,
            chat_channel: def
                .and_then(|d| d.discord_channel.as_ref())
                .or(definition.discord_channel.as_ref())
                .map(|c| c.as_str().to_owned()),
        }
    }
}

impl Message {
    fn key(&self, channel: &str) -> String {
        format!(
            "outbox:{channel}:{}:{}:{}",
            self.instance, self.notification, self.person
        )
    }
}

/// A recorded outcome.
#[derive(Debug, Serialize, Deserialize)]
struct Outcome {
    #[serde(flatten)]
    message: Message,
    attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default)]
    given_up: bool,
    /// The channel said trying again will not help.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    permanent: bool,
    /// Where the channel put the message, if it said (a chat message's ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
}

/// What the log says of one channel's outbox.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelState {
    version: u64,
    /// Every notification before this sequence has had a first attempt (the one at it may
    /// have more recipients to go).
    checkpoint: u64,
    /// How far this process has looked (not recorded: notifications for nobody on this
    /// channel leave no outcome, and need not be looked at again).
    scanned: u64,
    /// Failed messages to try again, by key, with their attempts so far and when the last
    /// one failed.
    retry: BTreeMap<String, (Message, u32, Timestamp)>,
    /// Keys of the messages recorded for the notification at `checkpoint`: that one is looked
    /// at again after a restart (it may have been cut short), and these are not sent again.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    last: std::collections::BTreeSet<String>,
}

impl ChannelState {
    /// What the log says, without how far this process has looked.
    pub(crate) fn saved(&self) -> Self {
        Self {
            version: self.version,
            checkpoint: self.checkpoint,
            scanned: 0,
            retry: self.retry.clone(),
            last: self.last.clone(),
        }
    }

    /// Folds one event of the channel's stream; a message given up is returned, for the
    /// instance's read model of what was not delivered.
    pub(crate) fn apply(&mut self, record: &RecordedEvent) -> Result<Option<Undelivered>, String> {
        self.version = record.version;
        let outcome: Outcome =
            serde_json::from_str(record.data.as_str()).map_err(|e| e.to_string())?;
        let channel = record
            .stream
            .as_str()
            .strip_prefix(STREAM_PREFIX)
            .unwrap_or_default();
        let key = outcome.message.key(channel);
        if outcome.message.sequence > self.checkpoint {
            self.checkpoint = outcome.message.sequence;
            self.last.clear();
        }
        if outcome.message.sequence == self.checkpoint && outcome.attempt == 1 {
            self.last.insert(key.clone());
        }
        if record.ty.as_str() == FAILED && !outcome.given_up {
            // A retry already delivered by another process is found out before it is sent.
            self.retry
                .insert(key, (outcome.message, outcome.attempt, record.time));
            return Ok(None);
        }
        self.retry.remove(&key);
        if record.ty.as_str() != FAILED {
            return Ok(None);
        }
        let m = outcome.message;
        Ok(Some(Undelivered {
            key,
            channel: channel.to_owned(),
            instance: m.instance,
            notification: m.notification,
            person: m.person,
            name: m.name,
            address: m.address,
            subject: m.subject,
            error: outcome.error.unwrap_or_default(),
            attempts: outcome.attempt,
            at: record.time,
            sequence: record.sequence,
        }))
    }
}

/// A message the outbox gave up on: a permanent refusal (an SMTP 5xx: no such mailbox), or
/// the last of its attempts. Kept in the `undelivered` read model, by instance, for its page
/// and for operators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undelivered {
    /// The outbox's key of the message (the row's key).
    #[serde(skip)]
    pub key: String,
    /// The channel (`email`).
    pub channel: String,
    /// The instance (the row's tag).
    #[serde(skip)]
    pub instance: String,
    /// The notification's id within its instance.
    pub notification: String,
    /// To whom.
    pub person: String,
    /// Their name.
    pub name: String,
    /// Their address on the channel.
    pub address: String,
    /// What it said.
    pub subject: String,
    /// What the channel answered last (the SMTP reply).
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it was given up.
    pub at: Timestamp,
    /// The log sequence of that outcome.
    #[serde(skip)]
    pub sequence: u64,
}

/// What one run of a channel's outbox did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Messages delivered.
    pub delivered: usize,
    /// Attempts that failed (to be retried, or given up).
    pub failed: usize,
    /// When the next retry is due, if one waits.
    pub next_retry: Option<Timestamp>,
}

impl Runtime {
    /// What this process's deliveries did since it started, by channel.
    #[must_use]
    pub fn delivery_counters(&self) -> BTreeMap<String, Counters> {
        self.delivered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Delivers the notifications recorded since the channel's last run, and retries the failed
    /// ones, recording each outcome in `outbox/<channel>`.
    ///
    /// # Errors
    /// A store error; a delivery failure is recorded, not returned.
    pub async fn deliver(&self, channel: &dyn Channel) -> Result<Report, RuntimeError> {
        let _one_at_a_time = self.delivering.lock().await;
        self.catch_up().await?;
        let name = channel.name().to_owned();
        let (from, retry, recorded) = {
            let view = self.view();
            view.outboxes
                .get(&name)
                .map_or((0, Vec::new(), Default::default()), |s| {
                    (
                        s.checkpoint.saturating_sub(1).max(s.scanned),
                        s.retry.values().cloned().collect::<Vec<_>>(),
                        s.last.clone(),
                    )
                })
        };
        let mut report = Report::default();
        let now = self.now();
        for (message, attempts, failed_at) in retry {
            let wait = i64::try_from(retry_after(attempts).as_micros()).unwrap_or(i64::MAX);
            let due = Timestamp(failed_at.0.saturating_add(wait));
            if due > now {
                report.next_retry = Some(report.next_retry.map_or(due, |next| next.min(due)));
                continue;
            }
            let mut message = [message];
            self.prepare(&mut message).await;
            let [message] = message;
            report.add(self.attempt(channel, message, attempts + 1).await?);
        }
        let head = self.log().tail().await?.sequence;
        let mut events = std::pin::pin!(signoff_store::read_all_stream(self.log().clone(), from));
        let mut window: Vec<Message> = Vec::new();
        while let Some(record) = events.next().await {
            let record = record?;
            if record.sequence > head {
                break;
            }
            let mut messages = self.messages(channel, &record);
            // The notification at the checkpoint is looked at again (it may have been cut
            // short); those of its messages recorded are not sent again.
            messages.retain(|m| !recorded.contains(&m.key(&name)));
            if messages.is_empty() {
                continue;
            }
            if window.is_empty() {
                self.yield_to_commands().await;
            }
            self.prepare(&mut messages).await;
            window.extend(messages);
            if window.len() >= WINDOW {
                self.send_window(channel, std::mem::take(&mut window), &mut report)
                    .await?;
            }
        }
        if !window.is_empty() {
            self.send_window(channel, window, &mut report).await?;
        }
        self.view().outboxes.entry(name).or_default().scanned = head;
        Ok(report)
    }

    /// The messages a recorded event asks this channel to send.
    fn messages(&self, channel: &dyn Channel, record: &RecordedEvent) -> Vec<Message> {
        let Some(notification) = Notification::from_record(record) else {
            return Vec::new();
        };
        let directory = self.directory();
        let n = &notification;
        let recipients: Vec<String> =
            n.to.iter()
                .filter_map(|person| directory.person(person))
                .filter_map(|person| channel.address(person))
                .collect();
        n.to.iter()
            .filter_map(|person| directory.person(person))
            .filter_map(|person| {
                Some(Message {
                    notification: n.id.clone(),
                    sequence: record.sequence,
                    instance: n.instance.clone(),
                    person: person.id.clone(),
                    name: person.name.clone(),
                    address: channel.address(person)?,
                    subject: n.subject.clone(),
                    body: n.body.clone(),
                    reason: n.reason.clone(),
                    step: n.step.clone(),
                    activation: None,
                    noted_at: record.time,
                    view: None,
                    about: None,
                    decisions: Vec::new(),
                    recipients: recipients.clone(),
                })
            })
            .collect()
    }

    /// Fills in what the messages of one notification show as they are sent: the instance as
    /// people read it now (loaded once), and the decisions each recipient may give. A channel
    /// without them still sends the notification's own words.
    async fn prepare(&self, messages: &mut [Message]) {
        let Some(first) = messages.first() else {
            return;
        };
        let entry = match self.load(&first.instance).await {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(instance = %first.instance, error = %e, "messages go without their instance's view");
                return;
            }
        };
        let view = self.view_of(&entry);
        let shown = view.hash();
        let requester = self.name_of(&entry.state.requester);
        for message in messages {
            message.about = Some(About::of(
                &entry,
                message.step.as_deref(),
                requester.clone(),
            ));
            message.decisions =
                self.offered_decisions(&entry, &message.person, message.step.as_deref(), &shown);
            message.activation = message
                .step
                .as_deref()
                .and_then(|s| entry.state.active.get(s))
                .map(|a| a.activation);
            message.view = Some(view.clone());
        }
    }

    /// Waits while this process is taking commands, at most [`YIELD_AT_MOST`]: sending (and
    /// the SMTP server's work, when it runs on this machine) never slows deciding.
    async fn yield_to_commands(&self) {
        let started = std::time::Instant::now();
        while self.deciding_within(QUIET) && started.elapsed() < YIELD_AT_MOST {
            tokio::time::sleep(QUIET / 2).await;
        }
    }

    /// Sends the first attempts of `window` (whole notifications, in log order), [`PARALLEL`]
    /// at once, and records their outcomes in one append.
    async fn send_window(
        &self,
        channel: &dyn Channel,
        window: Vec<Message>,
        report: &mut Report,
    ) -> Result<(), RuntimeError> {
        let name = channel.name();
        let first = window.first().map_or(0, |m| m.sequence);
        let last = window.last().map_or(0, |m| m.sequence);
        let mut sent: Vec<(Message, Result<Option<String>, Failure>)> =
            futures::stream::iter(window.into_iter().map(|message| async move {
                let result = channel.deliver(&message).await;
                (message, result)
            }))
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        // Recorded in log order of their notifications, so the checkpoint is the last one.
        sent.sort_by_key(|(m, _)| m.sequence);
        let mut events = Vec::with_capacity(sent.len());
        for (message, result) in sent {
            let (ty, outcome) = self.outcome(name, message, 1, result);
            report.add(Some(outcome.error.is_none()));
            let data = serde_json::to_value(&outcome).map_err(|e| corrupt(&e))?;
            events.push(new_event(
                ty,
                &data,
                SYSTEM,
                name,
                Some(&outcome.message.instance),
            )?);
        }
        let key = to_idempotency_key(&format!("outbox:{name}:window:{first}-{last}"))?;
        let stream = StreamId::parse(format!("{STREAM_PREFIX}{name}")).map_err(|e| corrupt(&e))?;
        let request = AppendRequest::new(stream, ExpectedVersion::Any, events).idempotent(key);
        let appended = self.log().append(request).await?;
        self.catch_up_to(appended.last_sequence).await
    }

    /// The outcome of attempt `attempt` of `message`, counted for the metrics, as the event
    /// type and data to record.
    fn outcome(
        &self,
        name: &str,
        message: Message,
        attempt: u32,
        result: Result<Option<String>, Failure>,
    ) -> (&'static str, Outcome) {
        let (ty, outcome) = match result {
            Ok(reference) => (
                DELIVERED,
                Outcome {
                    message,
                    attempt,
                    error: None,
                    given_up: false,
                    permanent: false,
                    reference,
                },
            ),
            Err(failure) => {
                tracing::warn!(
                    channel = name,
                    error = %failure.reason,
                    permanent = failure.permanent,
                    attempt,
                    "a delivery failed"
                );
                (
                    FAILED,
                    Outcome {
                        message,
                        attempt,
                        error: Some(failure.reason),
                        given_up: failure.permanent || attempt >= MAX_ATTEMPTS,
                        permanent: failure.permanent,
                        reference: None,
                    },
                )
            }
        };
        let latency = (outcome.message.noted_at.0 > 0)
            .then(|| (self.now().0 - outcome.message.noted_at.0).max(0) as f64 / 1e6);
        self.delivered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default()
            .count(attempt, &outcome, latency);
        (ty, outcome)
    }

    /// Sends `message` again unless its delivery (or this attempt) is recorded, and records the
    /// outcome: `Some(true)` delivered, `Some(false)` failed, `None` nothing to do.
    async fn attempt(
        &self,
        channel: &dyn Channel,
        message: Message,
        attempt: u32,
    ) -> Result<Option<bool>, RuntimeError> {
        let name = channel.name();
        let key = message.key(name);
        let delivered_key = to_idempotency_key(&format!("{key}#delivered"))?;
        let attempt_key = to_idempotency_key(&format!("{key}#failed#{attempt}"))?;
        // Delivered already, or this attempt recorded (by another process, or before a restart).
        if self
            .log()
            .idempotent_result(&delivered_key)
            .await?
            .is_some()
        {
            if let Some(state) = self.view().outboxes.get_mut(name) {
                state.retry.remove(&key);
            }
            return Ok(None);
        }
        if self.log().idempotent_result(&attempt_key).await?.is_some() {
            return Ok(None);
        }
        let result = channel.deliver(&message).await;
        let delivered = result.is_ok();
        let key_id = if result.is_ok() {
            delivered_key
        } else {
            attempt_key
        };
        let (ty, outcome) = self.outcome(name, message, attempt, result);
        let data = serde_json::to_value(&outcome).map_err(|e| corrupt(&e))?;
        let event = new_event(ty, &data, SYSTEM, name, Some(&outcome.message.instance))?;
        let stream = StreamId::parse(format!("{STREAM_PREFIX}{name}")).map_err(|e| corrupt(&e))?;
        let request =
            AppendRequest::new(stream, ExpectedVersion::Any, vec![event]).idempotent(key_id);
        match self.log().append(request).await {
            Ok(appended) => {
                self.catch_up_to(appended.last_sequence).await?;
                Ok(Some(delivered))
            }
            Err(StoreError::Conflict { .. }) => Ok(Some(delivered)),
            Err(e) => Err(e.into()),
        }
    }
}

impl Report {
    fn add(&mut self, attempted: Option<bool>) {
        match attempted {
            Some(true) => self.delivered += 1,
            Some(false) => self.failed += 1,
            None => {}
        }
    }
}
