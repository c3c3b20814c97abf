//! The runtime's read models: what it knows of the log, kept in the database with a checkpoint,
//! so that opening the log costs what is running, not what happened.
//!
//! - `instances`: one row per instance (workflow, definition, status, requester, current
//!   steps, outcome), tagged with its status. A running instance's state is loaded from its own
//!   stream; an ended one costs nothing until it is read.
//! - `directory` and `tokens`: the people and the API tokens as their streams leave them.
//! - `undelivered`: the messages the outbox gave up on, tagged with their instance.
//! - `runtime`: one row of what else the view holds (definitions recorded, reactions not yet
//!   carried out, schedules, outboxes).
//!
//! The view marks what changes as it folds ([`Changed`]); [`Runtime::save_projections`] writes
//! the changed rows and the view's position in one transaction. [`Runtime::restore_projections`]
//! starts a view from them, and the log's tail is folded on top. Every row is a function of the
//! log up to the checkpoint: [`check`] folds the log again and compares.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use signoff_core::access::{Token, Tokens};
use signoff_core::directory::{Directory, Person};
use signoff_core::engine::{Instance, InstanceEvent, Status};
use signoff_core::{StreamId, Timestamp};
use signoff_store::{EventLog, ModelQuery, ModelRow, ModelWrite, ModelWritten, Page};

use crate::error::RuntimeError;
use crate::events::{corrupt, definition_stream};
use crate::outbox::ChannelState;
use crate::reactions::Failed;
use crate::runtime::{Entry, Reaction, Runtime, View};
use crate::schedule::Runs;

/// The checkpoint of the runtime's read models.
pub const GROUP: &str = "runtime";
/// One row per instance, tagged with its status.
pub const INSTANCES: &str = "instances";
/// One row per person of the directory.
pub const PEOPLE: &str = "directory";
/// One row per API token.
pub const TOKENS: &str = "tokens";
/// One row per message the outbox gave up on, tagged with its instance.
pub const UNDELIVERED: &str = "undelivered";
/// The one row of everything else the view holds.
const STATE: &str = "runtime";
const STATE_KEY: &str = "view";
/// Every model of the group.
pub const MODELS: [&str; 5] = [INSTANCES, PEOPLE, TOKENS, UNDELIVERED, STATE];

/// How many changed instances the view keeps before it writes them, while it folds a long
/// stretch of the log (a first start over an old log, a rebuild).
pub(crate) const SAVE_EVERY: usize = 8_192;

/// The saved position of a process that stopped writing read models (they were reset under
/// it).
const STOPPED: u64 = u64::MAX;

/// Rows read per page.
const PAGE: usize = 1_000;

/// An instance as its read model row holds it. Its id is the row's key and its status the
/// row's tag; the body holds the rest (a second of approvals rewrites thousands of rows, and
/// the bytes written are most of their cost).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRow {
    /// Its id (the row's key).
    #[serde(skip)]
    pub id: String,
    /// Its workflow.
    pub workflow: String,
    /// The definition it pins.
    pub definition: String,
    /// Who started it.
    pub requester: String,
    /// When it started.
    pub started_at: Timestamp,
    /// `running`, `ended` or `cancelled` (the row's tag).
    #[serde(skip)]
    pub status: String,
    /// Its outcome, once ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// When it ended or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// The steps it is at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub current_steps: Vec<String>,
    /// The steps stopped by a rule that could not be evaluated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<String>,
    /// Escalations so far (missed deadlines).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub escalations: u32,
    /// Its stream's version.
    pub version: u64,
    /// The log sequence of its last event.
    pub updated: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl InstanceRow {
    /// The row of an instance whose last event is at `sequence`.
    #[must_use]
    pub fn of(state: &Instance, sequence: u64) -> Self {
        let (status, outcome, ended_at) = match &state.status {
            Status::Ended { outcome, at, .. } => ("ended", Some(outcome.clone()), Some(*at)),
            Status::Cancelled { at, .. } => ("cancelled", None, Some(*at)),
            Status::New | Status::Running => ("running", None, None),
        };
        Self {
            id: state.id.clone(),
            workflow: state.workflow.clone(),
            definition: state.definition.clone(),
            requester: state.requester.clone(),
            started_at: state.started_at,
            status: status.to_owned(),
            outcome,
            ended_at,
            current_steps: state.active.keys().cloned().collect(),
            stopped: state.failures().map(|(step, _)| step.to_owned()).collect(),
            escalations: state.escalations,
            version: state.version,
            updated: sequence,
        }
    }

    /// The instance a row of the `instances` model holds.
    ///
    /// # Errors
    /// [`RuntimeError::Corrupt`] when the row is not one this code wrote.
    pub fn from_row(row: &ModelRow) -> Result<Self, RuntimeError> {
        let mut instance: Self = parse(row)?;
        instance.id.clone_from(&row.key);
        instance.status = row.tag.clone().unwrap_or_default();
        Ok(instance)
    }

    fn to_row(&self) -> Result<ModelRow, RuntimeError> {
        Ok(ModelRow {
            model: INSTANCES.to_owned(),
            key: self.id.clone(),
            tag: Some(self.status.clone()),
            sort: Some(self.started_at.0),
            body: serde_json::to_string(self).map_err(|e| corrupt(&e))?,
        })
    }
}

/// What changed in the view since its read models were last written.
#[derive(Debug, Default)]
pub struct Changed {
    /// Running instances touched, with the sequence of their last event.
    pub instances: HashMap<String, u64>,
    /// Instances that ended, as they ended.
    pub finished: HashMap<String, InstanceRow>,
    /// The directory changed.
    pub people: bool,
    /// The tokens changed.
    pub tokens: bool,
    /// Messages the outbox gave up on since.
    pub undelivered: Vec<crate::outbox::Undelivered>,
}

impl Changed {
    pub(crate) fn len(&self) -> usize {
        self.instances.len() + self.finished.len() + self.undelivered.len()
    }

    /// Puts back changes whose write failed, under those made since.
    fn give_back(&mut self, earlier: Self) {
        for (id, sequence) in earlier.instances {
            self.instances.entry(id).or_insert(sequence);
        }
        for (id, row) in earlier.finished {
            self.finished.entry(id).or_insert(row);
        }
        self.people |= earlier.people;
        self.tokens |= earlier.tokens;
        let mut undelivered = earlier.undelivered;
        undelivered.append(&mut self.undelivered);
        self.undelivered = undelivered;
    }
}

/// Changes taken from the view to be written.
struct Taken {
    write: ModelWrite,
    instances: Vec<InstanceRow>,
    changed: Changed,
}

impl Taken {
    /// The write, with the instance rows; and the changes, to give back should it fail.
    fn into_write(self) -> Result<(ModelWrite, Changed), RuntimeError> {
        let mut write = self.write;
        for row in self.instances.iter().chain(self.changed.finished.values()) {
            write.upserts.push(row.to_row()?);
        }
        Ok((write, self.changed))
    }
}

/// The token row: the token and the hash of its secret.
#[derive(Serialize, Deserialize)]
struct TokenRow {
    hash: String,
    #[serde(flatten)]
    token: Token,
}

/// The shape of the rows this code writes. Rows of another shape (written by an older
/// signoff) are dropped at start and made again from the log.
const FORMAT: u32 = 3;

/// Everything else the view holds.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Saved {
    /// [`FORMAT`] when written (absent: the first).
    #[serde(default)]
    format: u32,
    /// Hashes of the definitions recorded in the log.
    definitions: Vec<String>,
    directory_version: u64,
    reactions: Vec<Reaction>,
    /// Of those, the ones that failed: attempts and next attempt.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    failed: BTreeMap<String, Failed>,
    schedules: BTreeMap<String, Runs>,
    outboxes: BTreeMap<String, ChannelState>,
}

fn json<T: Serialize>(value: &T) -> Result<String, RuntimeError> {
    serde_json::to_string(value).map_err(|e| corrupt(&e))
}

pub(crate) fn parse<'a, T: Deserialize<'a>>(row: &'a ModelRow) -> Result<T, RuntimeError> {
    serde_json::from_str(&row.body).map_err(|e| RuntimeError::Corrupt {
        sequence: 0,
        reason: format!(
            "read model {} row {}: {e} (signoff projections rebuild builds it again from the log)",
            row.model, row.key
        ),
    })
}

fn row(model: &str, key: &str, body: String) -> ModelRow {
    ModelRow {
        model: model.to_owned(),
        key: key.to_owned(),
        tag: None,
        sort: None,
        body,
    }
}

impl View {
    /// The rows changed since the last write, and the changes themselves (to give back should
    /// the write fail). Instance rows are made into JSON by [`Taken::into_write`], after the
    /// view is let go.
    fn take_changes(&mut self, since: u64) -> Result<Taken, RuntimeError> {
        let mut write = ModelWrite {
            group: GROUP.to_owned(),
            since,
            position: self.position,
            ..ModelWrite::default()
        };
        if self.changed.people {
            write.clear.push(PEOPLE.to_owned());
            for person in self.directory.people() {
                write.upserts.push(row(PEOPLE, &person.id, json(person)?));
            }
        }
        if self.changed.tokens {
            write.clear.push(TOKENS.to_owned());
            for (hash, token) in self.tokens.with_secrets() {
                let body = json(&TokenRow {
                    hash: hash.to_owned(),
                    token: token.clone(),
                })?;
                write.upserts.push(row(TOKENS, &token.id, body));
            }
        }
        for undelivered in &self.changed.undelivered {
            write.upserts.push(ModelRow {
                model: UNDELIVERED.to_owned(),
                key: undelivered.key.clone(),
                tag: Some(undelivered.instance.clone()),
                sort: Some(i64::try_from(undelivered.sequence).unwrap_or(i64::MAX)),
                body: json(undelivered)?,
            });
        }
        write
            .upserts
            .push(row(STATE, STATE_KEY, json(&self.saved())?));
        let changed = std::mem::take(&mut self.changed);
        // Built here, under the view's lock, only for the running ones; those that ended are
        // kept as they ended and encoded once the lock is let go.
        let instances: Vec<InstanceRow> = changed
            .instances
            .iter()
            .filter_map(|(id, sequence)| {
                let entry = self.running.get(id)?;
                Some(InstanceRow::of(&entry.state, *sequence))
            })
            .collect();
        Ok(Taken {
            write,
            instances,
            changed,
        })
    }

    fn saved(&self) -> Saved {
        let mut definitions: Vec<String> = self.recorded.iter().cloned().collect();
        definitions.sort();
        Saved {
            format: FORMAT,
            definitions,
            directory_version: self.directory_version,
            reactions: self.pending.clone(),
            failed: self.failed.clone(),
            schedules: self
                .schedules
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            outboxes: self
                .outboxes
                .iter()
                .map(|(k, v)| (k.clone(), v.saved()))
                .collect(),
        }
    }
}

/// Every row of a model, page by page (for the models that stay small, and for checks).
async fn all_rows(
    log: &dyn EventLog,
    model: &str,
    tag: Option<&str>,
    mut each: impl FnMut(ModelRow) -> Result<(), RuntimeError>,
) -> Result<(), RuntimeError> {
    // A whole model in key order; one tag newest first (the order its index keeps).
    let mut after = String::new();
    let mut before: Option<(i64, String)> = None;
    loop {
        let from = match (tag, &before) {
            (None, _) => Page::KeysAfter(&after),
            (Some(_), before) => Page::NewestBefore(before.as_ref().map(|(s, k)| (*s, k.as_str()))),
        };
        let page = log
            .model_rows(ModelQuery {
                model,
                tag,
                from,
                limit: PAGE,
            })
            .await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after.clone_from(&last.key);
        before = Some((last.sort.unwrap_or_default(), last.key.clone()));
        let full = page.len() == PAGE;
        for row in page {
            each(row)?;
        }
        if !full {
            return Ok(());
        }
    }
}

impl Runtime {
    /// The messages about instance `id` that the outbox gave up on, newest first.
    ///
    /// # Errors
    /// A store error; a row that cannot be read.
    pub async fn undelivered(
        &self,
        id: &str,
    ) -> Result<Vec<crate::outbox::Undelivered>, RuntimeError> {
        let mut out = Vec::new();
        all_rows(&**self.log(), UNDELIVERED, Some(id), |r| {
            let mut undelivered: crate::outbox::Undelivered = parse(&r)?;
            undelivered.key.clone_from(&r.key);
            undelivered.instance.clone_from(&id.to_owned());
            out.push(undelivered);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Writes what changed in the view since the last write, as of the view's position. Safe
    /// to call any time and from several processes: rows only move forward.
    ///
    /// # Errors
    /// A store error (the changes are kept for the next call).
    pub async fn save_projections(&self) -> Result<(), RuntimeError> {
        let mut since = self.projections_saved_at.lock().await;
        if *since == STOPPED {
            // Changes are still dropped, so that they do not pile up in memory.
            self.view().changed = Changed::default();
            return Ok(());
        }
        let (write, taken) = {
            let mut view = self.view();
            if view.position == *since && view.changed.len() == 0 {
                return Ok(());
            }
            view.take_changes(*since)?
        }
        .into_write()?;
        let position = write.position;
        match self.log().write_models(write).await {
            Ok(ModelWritten::Written | ModelWritten::Behind { .. }) => {
                *since = position;
                Ok(())
            }
            Ok(ModelWritten::Stale { stored }) => {
                // Rebuilt (or reset) under this process: its changes alone would leave holes.
                tracing::error!(
                    stored,
                    since = *since,
                    "the read models were reset while this process ran; it no longer writes them \
                     (restart it once `signoff projections rebuild` is done)"
                );
                *since = STOPPED;
                Ok(())
            }
            Err(e) => {
                self.view().changed.give_back(taken);
                Err(e.into())
            }
        }
    }

    /// Starts the view from the read models, if any were written: the definitions, the
    /// directory, the tokens, what else the view keeps, and each running instance from its own
    /// stream up to the checkpoint. The log after the checkpoint is folded on top by
    /// [`Runtime::catch_up`]. Returns the checkpoint (0: nothing written; fold from the start).
    ///
    /// # Errors
    /// A store error; a row or a stream that cannot be read.
    pub async fn restore_projections(&self) -> Result<u64, RuntimeError> {
        let log = self.log().clone();
        let position = log.model_checkpoint(GROUP).await?;
        if position == 0 {
            return Ok(0);
        }
        // Written in the same transaction as the checkpoint: without it the rows are not what
        // this code wrote, and starting from them would drop pending reactions and schedules.
        let Some(state) = log.model_row(STATE, STATE_KEY).await? else {
            return Err(RuntimeError::Corrupt {
                sequence: position,
                reason: format!(
                    "the read models are at sequence {position} but hold no runtime state row \
                     (signoff projections rebuild builds them again from the log)"
                ),
            });
        };
        let saved: Saved = parse(&state)?;
        if saved.format != FORMAT {
            tracing::warn!(
                stored = saved.format,
                current = FORMAT,
                "the read models were written by another version of signoff; they are made again \
                 from the log"
            );
            log.reset_models(GROUP, &MODELS).await?;
            return Ok(0);
        }
        let mut definitions = Vec::new();
        for hash in &saved.definitions {
            let stream = definition_stream(hash)?;
            let first = log.read_stream(&stream, 1, 1).await?;
            let record = first.first().ok_or_else(|| RuntimeError::Corrupt {
                sequence: 0,
                reason: format!("the read models name definition {hash}, which the log lacks"),
            })?;
            let data: serde_json::Value =
                serde_json::from_str(record.data.as_str()).map_err(|e| corrupt(&e))?;
            let source = data["source"].as_str().unwrap_or_default().to_owned();
            definitions.push((hash.clone(), source));
        }
        let mut people: Vec<Person> = Vec::new();
        all_rows(&*log, PEOPLE, None, |r| {
            people.push(parse(&r)?);
            Ok(())
        })
        .await?;
        let mut tokens = Vec::new();
        all_rows(&*log, TOKENS, None, |r| {
            let t: TokenRow = parse(&r)?;
            tokens.push((t.hash, t.token));
            Ok(())
        })
        .await?;
        let mut running = Vec::new();
        all_rows(&*log, INSTANCES, Some("running"), |r| {
            running.push(r.key);
            Ok(())
        })
        .await?;
        {
            let mut view = self.view();
            for (hash, source) in definitions {
                view.definitions.insert_recorded(&source)?;
                view.recorded.insert(hash);
            }
            view.directory = Arc::new(Directory::from_people(people));
            view.directory_version = saved.directory_version;
            view.tokens = Tokens::from_secrets(tokens);
            // Carried out now, but for the failed ones: they wait for their time.
            view.reactions = saved
                .reactions
                .iter()
                .filter(|r| !saved.failed.contains_key(&r.id))
                .cloned()
                .collect();
            view.pending = saved.reactions;
            view.failed = saved.failed;
            view.schedules = saved.schedules.into_iter().collect();
            view.outboxes = saved.outboxes.into_iter().collect();
        }
        for id in running {
            let entry = self.entry_up_to(&id, position).await?;
            self.view().running.insert(id, entry);
        }
        {
            let mut view = self.view();
            view.position = position;
            view.changed = Changed::default();
        }
        *self.projections_saved_at.lock().await = position;
        Ok(position)
    }

    /// An instance as its events up to `position` leave it.
    async fn entry_up_to(&self, id: &str, position: u64) -> Result<Entry, RuntimeError> {
        let stream = StreamId::parse(format!("instance/{id}")).map_err(|e| corrupt(&e))?;
        let mut events: Vec<InstanceEvent> = Vec::new();
        'pages: loop {
            let page = self
                .log()
                .read_stream(&stream, events.len() as u64 + 1, 4_096)
                .await?;
            if page.is_empty() {
                break;
            }
            for record in page {
                if record.sequence > position {
                    break 'pages;
                }
                events.push(
                    InstanceEvent::from_parts(record.ty.as_str(), record.data.as_str()).map_err(
                        |reason| RuntimeError::Corrupt {
                            sequence: record.sequence,
                            reason,
                        },
                    )?,
                );
            }
        }
        self.entry_from(id, &events)
    }
}

/// Where the stored read models differ from the log folded again.
#[derive(Debug, Default, Serialize)]
pub struct Check {
    /// The checkpoint compared at.
    pub position: u64,
    /// Rows compared.
    pub rows: u64,
    /// What differs, at most [`Check::SHOWN`] of them.
    pub differences: Vec<String>,
    /// How many differ in all.
    pub count: u64,
}

impl Check {
    /// Most differences listed.
    pub const SHOWN: usize = 20;

    fn differ(&mut self, what: String) {
        self.count += 1;
        if self.differences.len() < Self::SHOWN {
            self.differences.push(what);
        }
    }

    async fn compare(
        &mut self,
        log: &dyn EventLog,
        rows: Vec<ModelRow>,
    ) -> Result<(), RuntimeError> {
        for want in rows {
            self.rows += 1;
            let have = log.model_row(&want.model, &want.key).await?;
            let same = have.as_ref().is_some_and(|have| {
                have.tag == want.tag
                    && have.sort == want.sort
                    && serde_json::from_str::<serde_json::Value>(&have.body).ok()
                        == serde_json::from_str::<serde_json::Value>(&want.body).ok()
            });
            if !same {
                let have = have.map_or_else(|| "(missing)".to_owned(), |r| r.body);
                self.differ(format!(
                    "{} {}: stored {have}, the log says {}",
                    want.model, want.key, want.body
                ));
            }
        }
        Ok(())
    }
}

/// Folds the log again, in a fresh runtime over the same log (one that restored nothing), up to
/// the stored checkpoint, and compares every row it makes with the stored one; stored rows the
/// log does not make are counted too. Memory stays bounded by what runs: ended instances are
/// compared as they end.
///
/// # Errors
/// A store error; an event that cannot be read.
pub async fn check(fresh: &Runtime) -> Result<Check, RuntimeError> {
    let log = fresh.log().clone();
    let position = log.model_checkpoint(GROUP).await?;
    let mut check = Check {
        position,
        ..Check::default()
    };
    let mut made: HashMap<String, u64> = HashMap::new();
    loop {
        let done = fresh.fold_until(position).await?;
        let rows = {
            let mut view = fresh.view();
            if done {
                view.take_changes(0)?.into_write()?.0.upserts
            } else {
                // Instances still running are compared once, as the checkpoint has them.
                let finished = std::mem::take(&mut view.changed.finished);
                finished
                    .values()
                    .map(InstanceRow::to_row)
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        for row in &rows {
            *made.entry(row.model.clone()).or_default() += 1;
        }
        check.compare(&*log, rows).await?;
        if done {
            break;
        }
    }
    for model in MODELS {
        let mut stored = 0u64;
        all_rows(&*log, model, None, |_| {
            stored += 1;
            Ok(())
        })
        .await?;
        let want = made.get(model).copied().unwrap_or(0);
        if stored != want {
            check.differ(format!(
                "{model}: {stored} rows stored, the log makes {want}"
            ));
        }
    }
    Ok(check)
}

impl Runtime {
    /// Folds the log up to `position` and no further, stopping early (false) once
    /// [`SAVE_EVERY`] instances ended unwritten.
    async fn fold_until(&self, position: u64) -> Result<bool, RuntimeError> {
        loop {
            let at = self.view().position;
            if at >= position {
                return Ok(true);
            }
            if self.view().changed.finished.len() >= SAVE_EVERY {
                return Ok(false);
            }
            let limit = usize::try_from(position - at)
                .unwrap_or(usize::MAX)
                .min(4_096);
            let page = self.log().read_all(at, limit).await?;
            if page.is_empty() {
                return Ok(true);
            }
            let mut view = self.view();
            for event in &page {
                view.apply(event)?;
            }
        }
    }
}
