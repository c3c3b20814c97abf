//! Every card about a gate kept true: after a decision, a revocation, an escalation, the gate's
//! close or the instance's cancellation, through whatever channel (Discord, email, the web, the
//! API, the CLI), each Discord message about that gate is drawn again: who decided, when, with
//! which justification, and, once closed, without buttons.
//!
//! [`Cards`] is a reactor (`discord-cards`). It follows the log from its own checkpoint: a
//! delivery recorded in `outbox/discord` adds a card (its instance, gate, round and message
//! ids); an instance event about a gate with cards marks that gate to redraw. Its cards are
//! read-model rows, one per instance, tagged `open` while any of its cards may still change
//! and written with the checkpoint in one transaction; a card whose round has closed and been
//! drawn so is dropped. So it holds the running work only, and a restart takes up where it
//! stood. Each edit (or failed edit) is recorded in `chat/discord`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serenity::http::Http;
use serenity::model::id::{ChannelId, MessageId};
use signoff_core::engine::{InstanceEvent, Verdict};
use signoff_core::{RecordedEvent, Timestamp};
use signoff_runtime::RuntimeError;
use signoff_runtime::chat::{CardEdit, GateStory};
use signoff_runtime::events::{
    CHAT_STREAM_PREFIX, CHAT_THREAD, OUTBOX_DELIVERED, OUTBOX_STREAM_PREFIX,
};
use signoff_runtime::reactor::{Reactor, Turn, Turned};
use signoff_runtime::runtime::Runtime;
use signoff_store::{ModelQuery, ModelRow, ModelWrite, ModelWritten, Page};

use crate::Threads;
use crate::channel::failure;
use crate::interaction::CHANNEL;
use crate::payload::{self, Card};

/// The checkpoint of the cards' rows.
pub const GROUP: &str = "discord/cards";
/// The rows: one per instance with cards.
pub const MODEL: &str = "discord_cards";
const OPEN: &str = "open";
const DONE: &str = "done";
/// Events read per page.
const PAGE: usize = 1_000;
/// How often a checkpoint that moved without any card changing is written.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Or after how many events.
const CHECKPOINT_EVENTS: u64 = 10_000;
/// Failed edits of one card before it is given up.
const ATTEMPTS: u32 = 5;

/// One message about one round of a gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Posted {
    step: String,
    activation: u32,
    channel: u64,
    message: u64,
    /// To whom, for a direct message (their buttons are their own verdicts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    person: Option<String>,
    subject: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    failures: u32,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the reactor holds: the cards of running gates, and how far it has read.
#[derive(Default)]
struct Held {
    loaded: bool,
    /// The checkpoint stored (0 before the first write), what a write continues.
    stored: u64,
    position: u64,
    cards: BTreeMap<String, Vec<Posted>>,
    /// Gates to draw again: (instance, step).
    dirty: BTreeSet<(String, String)>,
    /// When the checkpoint was last written.
    written_at: Option<std::time::Instant>,
}

/// The reactor that keeps Discord cards true (and incidents' threads known).
pub struct Cards {
    http: Arc<Http>,
    public_url: Option<String>,
    threads: Arc<Threads>,
    held: tokio::sync::Mutex<Held>,
}

/// One instance's row: its cards, and its thread while it runs.
#[derive(Default, Serialize, Deserialize)]
struct Row {
    #[serde(default)]
    cards: Vec<Posted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thread: Option<u64>,
}

impl Cards {
    /// Cards edited through `http`, linking to `public_url`'s pages; the threads it reads back
    /// at start and follows in the log are kept in `threads`.
    #[must_use]
    pub fn new(http: Arc<Http>, public_url: Option<String>, threads: Arc<Threads>) -> Self {
        Self {
            http,
            public_url,
            threads,
            held: tokio::sync::Mutex::new(Held::default()),
        }
    }

    async fn run(&self, rt: &Runtime) -> Result<Turned, RuntimeError> {
        let mut held = self.held.lock().await;
        if !held.loaded {
            load(rt, &mut held, &self.threads).await?;
        }
        let since = held.position;
        let head = rt.log().tail().await?.sequence;
        let mut changed: BTreeSet<String> = BTreeSet::new();
        while held.position < head {
            let page = rt.log().read_all(held.position, PAGE).await?;
            let Some(last) = page.last() else { break };
            let last = last.sequence;
            for record in page.iter().filter(|r| r.sequence <= head) {
                follow(rt, &mut held, &self.threads, record, &mut changed);
            }
            held.position = last.min(head);
        }
        let dirty = std::mem::take(&mut held.dirty);
        let mut edits = Vec::new();
        for (instance, step) in dirty {
            self.redraw(rt, &mut held, &instance, &step, &mut edits)
                .await?;
            changed.insert(instance);
        }
        let retry = !held.dirty.is_empty();
        let key = format!("{since}-{}-{}", held.position, rt.now().0);
        rt.record_card_edits(CHANNEL, &edits, &key).await?;
        let upserts = changed
            .iter()
            .map(|instance| {
                row(
                    instance,
                    held.cards.get(instance),
                    self.threads.thread_of(instance),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Rows that changed are written at once; a checkpoint that only moved past events of
        // no concern is written at most every few seconds (the reactor turns at every commit:
        // reading those events again after a restart costs less than a write per commit).
        let due = held
            .written_at
            .is_none_or(|at| at.elapsed() >= CHECKPOINT_EVERY)
            || held.position - held.stored >= CHECKPOINT_EVENTS;
        if held.position > held.stored && (!upserts.is_empty() || due) {
            let written = rt
                .log()
                .write_models(ModelWrite {
                    group: GROUP.to_owned(),
                    since: held.stored,
                    position: held.position,
                    clear: Vec::new(),
                    upserts,
                })
                .await?;
            if written != ModelWritten::Written {
                // Another process keeps these cards too (or they were reset): read them again.
                tracing::warn!(
                    ?written,
                    "the Discord cards were written by another process; reading them again"
                );
                *held = Held::default();
                return Ok(Turned::default());
            }
            held.stored = held.position;
            held.written_at = Some(std::time::Instant::now());
        }
        held.cards.retain(|_, cards| !cards.is_empty());
        let next = retry.then(|| Timestamp(rt.now().0.saturating_add(5_000_000)));
        Ok(Turned {
            done: edits.iter().filter(|e| e.error.is_none()).count(),
            next,
        })
    }

    /// Draws every card about `step` of `instance` again, as the gate stands now.
    async fn redraw(
        &self,
        rt: &Runtime,
        held: &mut Held,
        instance: &str,
        step: &str,
        edits: &mut Vec<CardEdit>,
    ) -> Result<(), RuntimeError> {
        let Some(cards) = held.cards.get(instance).cloned() else {
            return Ok(());
        };
        let mut rounds: Vec<u32> = cards
            .iter()
            .filter(|c| c.step == step)
            .map(|c| c.activation)
            .collect();
        rounds.sort_unstable();
        rounds.dedup();
        let (entry, told) = rt.gate_cards(instance, step, &rounds).await?;
        let stories: BTreeMap<u32, GateStory> = rounds.into_iter().zip(told).collect();
        let view = rt.view_of(&entry);
        let request = view.text("  ");
        let shown = view.hash();
        let about = signoff_runtime::outbox::About::of(
            &entry,
            Some(step),
            rt.name_of(&entry.state.requester),
        );
        let page = self
            .public_url
            .as_deref()
            .map(|url| payload::page(url, instance));
        let mut kept = Vec::with_capacity(cards.len());
        for mut card in cards {
            let Some(story) = stories.get(&card.activation).filter(|_| card.step == step) else {
                kept.push(card);
                continue;
            };
            let verdicts: Vec<(&str, u32, Verdict)> = if story.open() {
                match &card.person {
                    Some(person) => rt
                        .offered_decisions(&entry, person, Some(step), &shown)
                        .iter()
                        .filter(|d| d.activation == card.activation)
                        .map(|d| (step, d.activation, d.verdict))
                        .collect(),
                    None => vec![
                        (step, card.activation, Verdict::Approve),
                        (step, card.activation, Verdict::Reject),
                    ],
                }
            } else {
                Vec::new()
            };
            let body = payload::card(&Card {
                instance,
                subject: &card.subject,
                body: "",
                about: Some(&about),
                request: Some(&request),
                story: Some(story),
                verdicts,
                link_only: about.link_only,
                page: page.clone(),
            });
            let result = self
                .http
                .edit_message(
                    ChannelId::new(card.channel),
                    MessageId::new(card.message),
                    &body,
                    Vec::new(),
                )
                .await;
            let mut edit = CardEdit {
                instance: instance.to_owned(),
                step: step.to_owned(),
                activation: card.activation,
                reference: crate::reference(card.channel, card.message),
                person: card.person.clone(),
                decisions: story.decisions.len(),
                outcome: story.outcome.clone(),
                error: None,
            };
            match result {
                Ok(_) => {
                    // A card whose round closed shows its end: nothing more will change it.
                    if story.open() {
                        card.failures = 0;
                        kept.push(card);
                    }
                }
                Err(e) => {
                    let failed = failure(&e);
                    tracing::warn!(error = %failed.reason, instance, step, "a Discord card could not be edited");
                    edit.error = Some(failed.reason);
                    card.failures += 1;
                    if !failed.permanent && card.failures < ATTEMPTS {
                        held.dirty.insert((instance.to_owned(), step.to_owned()));
                        kept.push(card);
                    }
                }
            }
            edits.push(edit);
        }
        held.cards.insert(instance.to_owned(), kept);
        Ok(())
    }
}

impl Reactor for Cards {
    fn name(&self) -> &'static str {
        "discord-cards"
    }

    fn turn<'a>(&'a self, runtime: &'a Runtime) -> Turn<'a> {
        Box::pin(self.run(runtime))
    }

    fn follows_commits(&self) -> bool {
        true
    }
}

/// Reads the cards and threads of open rows and the checkpoint: where the last process stood.
async fn load(rt: &Runtime, held: &mut Held, threads: &Threads) -> Result<(), RuntimeError> {
    held.stored = rt.log().model_checkpoint(GROUP).await?;
    held.position = held.stored;
    if held.position == 0 {
        held.position = first_run(rt).await?;
    }
    let mut before: Option<(i64, String)> = None;
    loop {
        let rows = rt
            .log()
            .model_rows(ModelQuery {
                model: MODEL,
                tag: Some(OPEN),
                from: Page::NewestBefore(before.as_ref().map(|(s, k)| (*s, k.as_str()))),
                limit: PAGE,
            })
            .await?;
        let Some(last) = rows.last() else { break };
        before = Some((last.sort.unwrap_or(0), last.key.clone()));
        let full = rows.len() == PAGE;
        for row in rows {
            let stored: Row =
                serde_json::from_str(&row.body).map_err(|e| RuntimeError::Corrupt {
                    sequence: 0,
                    reason: format!("discord card row {}: {e}", row.key),
                })?;
            if let Some(thread) = stored.thread {
                threads.set(&row.key, thread);
            }
            held.cards.insert(row.key, stored.cards);
        }
        if !full {
            break;
        }
    }
    held.loaded = true;
    Ok(())
}

/// Where a first run starts: before the first message or thread the bot ever recorded, or at
/// the log's head when there is none (years of history before the bot cost nothing).
async fn first_run(rt: &Runtime) -> Result<u64, RuntimeError> {
    let mut first = None;
    for stream in [
        format!("{OUTBOX_STREAM_PREFIX}{CHANNEL}"),
        format!("{CHAT_STREAM_PREFIX}{CHANNEL}"),
    ] {
        let stream = signoff_core::StreamId::parse(stream).map_err(|e| RuntimeError::Corrupt {
            sequence: 0,
            reason: e.to_string(),
        })?;
        if let Some(event) = rt.log().read_stream(&stream, 1, 1).await?.first() {
            first = Some(first.map_or(event.sequence, |f: u64| f.min(event.sequence)));
        }
    }
    match first {
        Some(sequence) => Ok(sequence - 1),
        None => Ok(rt.log().tail().await?.sequence),
    }
}

/// One event: a card posted, a thread opened, or a gate with cards changed.
fn follow(
    rt: &Runtime,
    held: &mut Held,
    threads: &Threads,
    record: &RecordedEvent,
    changed: &mut BTreeSet<String>,
) {
    let stream = record.stream.as_str();
    if stream == format!("{CHAT_STREAM_PREFIX}{CHANNEL}") && record.ty.as_str() == CHAT_THREAD {
        #[derive(Deserialize)]
        struct Opened {
            instance: String,
            thread: String,
        }
        if let Ok(opened) = serde_json::from_str::<Opened>(record.data.as_str())
            && let Ok(thread) = opened.thread.parse()
        {
            threads.set(&opened.instance, thread);
            changed.insert(opened.instance);
        }
        return;
    }
    if stream == format!("{OUTBOX_STREAM_PREFIX}{CHANNEL}") {
        if record.ty.as_str() != OUTBOX_DELIVERED {
            return;
        }
        let Ok(delivered) = serde_json::from_str::<Delivered>(record.data.as_str()) else {
            return;
        };
        let (Some(step), Some(activation), Some((channel, message))) = (
            delivered.step,
            delivered.activation,
            delivered
                .reference
                .as_deref()
                .and_then(crate::parse_reference),
        ) else {
            return;
        };
        let card = Posted {
            step: step.clone(),
            activation,
            channel,
            message,
            person: Some(delivered.person),
            subject: delivered.subject,
            failures: 0,
        };
        // One message for several people (a workflow's channel): one card, anyone's buttons.
        let cards = held.cards.entry(delivered.instance.clone()).or_default();
        if let Some(same) = cards
            .iter_mut()
            .find(|c| c.channel == channel && c.message == message)
        {
            same.person = None;
            changed.insert(delivered.instance);
            return;
        }
        // Posted after its round moved on (a slow delivery): drawn as it stands at once.
        let moved_on = rt.gate_round(&delivered.instance, &step) != Some(activation);
        if moved_on {
            held.dirty.insert((delivered.instance.clone(), step));
        }
        held.cards
            .entry(delivered.instance.clone())
            .or_default()
            .push(card);
        changed.insert(delivered.instance);
        return;
    }
    let Some(instance) = stream.strip_prefix("instance/") else {
        return;
    };
    let ended = matches!(
        record.ty.as_str(),
        "signoff.instance.ended" | "signoff.instance.cancelled"
    );
    if ended && threads.thread_of(instance).is_some() {
        threads.forget(instance);
        changed.insert(instance.to_owned());
    }
    let Some(cards) = held.cards.get(instance) else {
        return;
    };
    let Ok(event) = InstanceEvent::from_parts(record.ty.as_str(), record.data.as_str()) else {
        return;
    };
    let steps: Vec<String> = match &event {
        InstanceEvent::Decided { step, .. }
        | InstanceEvent::Revoked { step, .. }
        | InstanceEvent::Delegated { step, .. }
        | InstanceEvent::Escalated { step, .. }
        | InstanceEvent::StepCompleted { step, .. } => vec![step.clone()],
        InstanceEvent::Cancelled { .. } | InstanceEvent::Ended { .. } => {
            cards.iter().map(|c| c.step.clone()).collect()
        }
        _ => return,
    };
    for step in steps {
        if cards.iter().any(|c| c.step == step) {
            held.dirty.insert((instance.to_owned(), step));
        }
    }
}

/// What a Discord delivery records that a card needs.
#[derive(Deserialize)]
struct Delivered {
    instance: String,
    person: String,
    subject: String,
    #[serde(default)]
    step: Option<String>,
    #[serde(default)]
    activation: Option<u32>,
    #[serde(default)]
    reference: Option<String>,
}

fn row(
    instance: &str,
    cards: Option<&Vec<Posted>>,
    thread: Option<u64>,
) -> Result<ModelRow, RuntimeError> {
    let stored = Row {
        cards: cards.cloned().unwrap_or_default(),
        thread,
    };
    let open = !stored.cards.is_empty() || stored.thread.is_some();
    let body = serde_json::to_string(&stored).map_err(|e| RuntimeError::Corrupt {
        sequence: 0,
        reason: e.to_string(),
    })?;
    Ok(ModelRow {
        model: MODEL.to_owned(),
        key: instance.to_owned(),
        tag: Some(if open { OPEN } else { DONE }.to_owned()),
        sort: Some(0),
        body,
    })
}
