//! The runtime: loads an instance from its events, resolves the actor from the directory, asks
//! the pure core to decide, appends the result with optimistic concurrency, and reacts to what
//! was committed (child workflows, triggers, timers).
//!
//! The runtime's view of the log ([`View`]) starts from the read models at their checkpoint
//! ([`crate::projections`]) and folds every event committed after it in order, its own and other
//! processes' alike, through one path ([`Runtime::catch_up`]), so what it knows is always a
//! prefix of the log. It keeps only what is still running: finished instances are read back from
//! their streams when asked for, so neither memory nor a start grows with history.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};
use signoff_core::access::{AccessEvent, TOKENS_STREAM, Tokens};
use signoff_core::directory::{Directory, DirectoryEvent, DirectoryFile};
use signoff_core::engine::event::{SECURITY_REFUSED, SecurityRefusal};
use signoff_core::engine::{
    Actor, Command, Context, Instance, InstanceEvent, Memo, Rejection, RejectionKind, SYSTEM,
    decide, decide_with, replay,
};
use signoff_core::workflow::Loaded;
use signoff_core::{RecordedEvent, StreamId, Timestamp};
use signoff_store::{
    AppendRequest, Appended, Clock, EventLog, ExpectedVersion, OnCommit, StoreError,
};

use crate::definitions::Definitions;
use crate::error::RuntimeError;
pub use crate::events::{
    DEFINITION_RECORDED, DIRECTORY_STREAM, SCHEDULE_ARMED, SCHEDULE_FIRED, SECURITY_STREAM,
    derived_instance_id, event_types, instance_stream, new_instance_id,
};
use crate::events::{REACTION_FAILED, REACTIONS_STREAM};
pub(crate) use crate::events::{corrupt, definition_stream, new_event, to_new_events};
use crate::idempotency::{self, Keyed};

/// How often a command is retried when another writer changed its instance first.
const MAX_CONFLICT_RETRIES: usize = 16;

/// A running instance as the runtime holds it.
#[derive(Clone)]
pub struct Entry {
    /// Its state.
    pub state: Instance,
    /// The definition it pins.
    pub loaded: Arc<Loaded>,
    /// What deciding its last command kept to spare work on the next.
    pub memo: Arc<Memo>,
}

/// Something the runtime must do because of what was committed: start an instance (a child a
/// step asked for, a triggered workflow, a cron run), and link it to what caused it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Reaction {
    /// The instance to start (its id derived from the cause, so it starts once).
    pub id: String,
    /// Its workflow.
    pub workflow: String,
    /// Its input.
    pub input: Value,
    /// Who is recorded as its requester (system when not in the directory).
    pub requester: String,
    /// The channel its start is recorded with.
    pub channel: String,
    /// The instance that caused it, to link both ways (none for a cron run).
    pub source: Option<Source>,
    /// Roles handed on from the instance that caused it (a trigger's `roles`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, Vec<String>>,
    /// Why it must not be carried out (a trigger's requester or roles named nobody): its
    /// attempt fails with this reason, is recorded, and is not tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// The instance a started one is linked to.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Source {
    /// Its id.
    pub instance: String,
    /// Its workflow.
    pub workflow: String,
    /// `child` (a start_workflow step) or `triggered` (a trigger).
    pub relation: String,
}

/// What the runtime knows of the log, up to `position`.
#[derive(Default)]
pub(crate) struct View {
    pub position: u64,
    pub definitions: Definitions,
    pub recorded: HashSet<String>,
    /// Shared with the commands being decided; changed copy-on-write.
    pub directory: Arc<Directory>,
    pub directory_version: u64,
    pub running: HashMap<String, Entry>,
    /// Reactions to carry out (taken off as they are attempted).
    pub reactions: Vec<Reaction>,
    /// Reactions the log asks for whose instance has not started yet, as the log up to
    /// `position` says (whether or not this process has attempted them): what a process
    /// starting from the read models must carry out.
    pub pending: Vec<Reaction>,
    /// Pending reactions that failed, by instance id, as their last failure recorded it.
    pub failed: BTreeMap<String, crate::reactions::Failed>,
    /// Per workflow: the version of its `schedule/` stream and, per trigger, the last run.
    pub schedules: HashMap<String, crate::schedule::Runs>,
    /// This process's own committed instance events not folded yet, by first sequence: folded
    /// from memory when they continue the view, instead of being read back from the log.
    pub own: BTreeMap<u64, Own>,
    /// Per channel: how far its outbox has come and what to retry.
    pub outboxes: HashMap<String, crate::outbox::ChannelState>,
    /// API tokens issued and revoked.
    pub tokens: Tokens,
    /// What changed since the read models were last written (see [`crate::projections`]).
    pub changed: crate::projections::Changed,
}

/// How a fold stopped.
#[derive(Debug, PartialEq, Eq)]
enum Folded {
    /// At the sequence asked for, or at the end of the log.
    Done,
    /// With enough changes waiting that they must be written first.
    SaveDue,
}

/// Events this process committed to one instance, as decided (not yet folded into the view).
pub(crate) struct Own {
    instance: String,
    first_version: u64,
    events: Vec<InstanceEvent>,
}

/// The runtime over one log.
pub struct Runtime {
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    /// Shared with the log's writer, which hands it this process's own commits (see
    /// [`Runtime::remember_own`]).
    view: Arc<Mutex<View>>,
    catching_up: tokio::sync::Mutex<()>,
    /// Held while the outbox delivers, so a process sends each message once.
    pub(crate) delivering: tokio::sync::Mutex<()>,
    /// What this process's deliveries did, by channel (for `/metrics`).
    pub(crate) delivered: Mutex<BTreeMap<String, crate::outbox::Counters>>,
    /// Where evidence content is stored, by hash.
    pub evidence_dir: PathBuf,
    /// When the clock last forgot expired client idempotency keys (microseconds).
    pub(crate) keys_forgotten_at: AtomicI64,
    /// The view's position when its read models were last written (or restored); held while
    /// they are written.
    pub(crate) projections_saved_at: tokio::sync::Mutex<u64>,
    /// Whether a command's reactions are carried out right after it commits (the default), or
    /// left to the `starts` reactor (a `signoff worker starts` elsewhere).
    pub(crate) reacts_after_commit: std::sync::atomic::AtomicBool,
    /// Tokens whose use is being recorded now, so that concurrent requests record it once.
    pub(crate) recording_use: Mutex<HashSet<String>>,
    /// When this process last took a command (microseconds since `born`, real time): the
    /// outbox holds its sending back while people are deciding.
    pub(crate) last_command: std::sync::atomic::AtomicU64,
    pub(crate) born: std::time::Instant,
}

/// What a command did.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The instance.
    pub instance: String,
    /// The events recorded (empty when an idempotency key was seen before).
    pub events: Vec<InstanceEvent>,
    /// The stream version after the command.
    pub version: u64,
    /// True when the idempotency key was seen before and nothing new was written.
    pub deduplicated: bool,
}

fn lock(view: &Mutex<View>) -> MutexGuard<'_, View> {
    view.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Runtime {
    /// A runtime over `log` with the definitions given. Call [`Runtime::catch_up`] before use
    /// (the `open` helpers do).
    #[must_use]
    pub fn new(
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        definitions: Definitions,
        evidence_dir: PathBuf,
    ) -> Self {
        Self {
            log,
            clock,
            view: Arc::new(Mutex::new(View {
                definitions,
                ..View::default()
            })),
            catching_up: tokio::sync::Mutex::new(()),
            delivering: tokio::sync::Mutex::new(()),
            delivered: Mutex::default(),
            last_command: std::sync::atomic::AtomicU64::new(0),
            born: std::time::Instant::now(),
            evidence_dir,
            keys_forgotten_at: AtomicI64::new(0),
            projections_saved_at: tokio::sync::Mutex::new(0),
            reacts_after_commit: std::sync::atomic::AtomicBool::new(true),
            recording_use: Mutex::default(),
        }
    }

    /// Leaves the reactions of this process's commands (children, triggered starts) to the
    /// `starts` reactor, which may run in another process, instead of carrying them out right
    /// after each commit.
    pub fn leave_reactions_to_starts(&self) {
        self.reacts_after_commit
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// The log.
    #[must_use]
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Now, from the runtime's clock.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        Timestamp(self.clock.now_micros())
    }

    pub(crate) fn view(&self) -> MutexGuard<'_, View> {
        lock(&self.view)
    }

    /// The current definition of a workflow.
    #[must_use]
    pub fn definition(&self, workflow: &str) -> Option<Arc<Loaded>> {
        self.view().definitions.get(workflow)
    }

    /// Every current definition.
    #[must_use]
    pub fn definitions(&self) -> Vec<Arc<Loaded>> {
        self.view().definitions.list()
    }

    /// The problems of the definition files left out when the runtime opened (each file with
    /// one is not loaded; the others are).
    #[must_use]
    pub fn skipped_definitions(&self) -> Vec<signoff_core::workflow::Problem> {
        self.view().definitions.skipped().to_vec()
    }

    /// The directory as the log records it now.
    #[must_use]
    pub fn directory(&self) -> Arc<Directory> {
        self.view().directory.clone()
    }

    /// What a person is shown of `entry`: its answers under its definition's labels, with
    /// names from the directory as it is now (its [`View::hash`](signoff_core::engine::View::hash)
    /// is the `view_hash` a decision passes back as `shown`).
    #[must_use]
    pub fn view_of(&self, entry: &Entry) -> signoff_core::engine::View {
        signoff_core::engine::View::of(&entry.loaded.definition, &entry.state, &*self.directory())
    }

    /// What people call `person`: their name in the directory, or their id.
    #[must_use]
    pub fn name_of(&self, person: &str) -> String {
        signoff_core::engine::People::name(&*self.directory(), person)
            .unwrap_or_else(|| person.to_owned())
    }

    /// Whether the engine would let `actor` give `command` on `entry` now, by rights and by
    /// what is open: a refusal only of what the command says (a short text, a person who
    /// cannot receive a delegation) still permits the form that asks for it. A dry run of the
    /// pure core, so a page offers only what the engine would take; nothing is recorded.
    #[must_use]
    pub fn permits(&self, entry: &Entry, actor: &Actor, command: &Command) -> bool {
        self.would_refuse(entry, actor, command).is_none()
    }

    /// Why the engine would refuse `actor` `command` on `entry` now, if it would, by rights
    /// and by what is open (as [`Runtime::permits`]: what the command says is not judged).
    #[must_use]
    pub fn would_refuse(
        &self,
        entry: &Entry,
        actor: &Actor,
        command: &Command,
    ) -> Option<Rejection> {
        if !actor.may_touch(&entry.state.workflow) {
            return Some(Rejection::forbidden(format!(
                "the credential {} acts through does not reach workflow {}",
                actor.id, entry.state.workflow
            )));
        }
        let people = self.directory();
        let ctx = Context {
            now: self.now(),
            actor,
            people: &*people,
        };
        match decide(&entry.loaded, &entry.state, command, &ctx) {
            Ok(_) => None,
            Err(refusal) if refusal.kind == RejectionKind::Invalid => None,
            Err(refusal) => Some(refusal),
        }
    }

    /// Running instances (a snapshot).
    #[must_use]
    pub fn running(&self) -> Vec<Entry> {
        self.view().running.values().cloned().collect()
    }

    /// Folds every event committed since the last call into the view, then carries out the
    /// reactions they call for (unless they are left to the `starts` reactor).
    ///
    /// # Errors
    /// A store error, or an event that cannot be read.
    pub async fn catch_up(&self) -> Result<(), RuntimeError> {
        self.catch_up_to(u64::MAX).await?;
        if self
            .reacts_after_commit
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.react().await?;
        }
        Ok(())
    }

    /// Folds events until the view has at least `sequence` (or the end of the log).
    pub(crate) async fn catch_up_to(&self, sequence: u64) -> Result<(), RuntimeError> {
        // Changes pile up between two turns of the projector, or for good in a process without
        // one (a bench, a long script): past a bound, they are written out here, once the fold
        // is let go, so that other commands fold on while the rows are written.
        // A write that fails is the projector's to retry, never an error of the command that
        // was folding (it is committed).
        while self.fold_to(sequence, true).await? == Folded::SaveDue {
            if let Err(error) = self.save_projections().await {
                tracing::warn!(%error, "the read models could not be written; the changes are kept for the next write");
                self.fold_to(sequence, false).await?;
                break;
            }
        }
        Ok(())
    }

    /// Folds events until the view has at least `sequence` (or the end of the log), or, when
    /// `bounded`, until enough changes wait to be written.
    async fn fold_to(&self, sequence: u64, bounded: bool) -> Result<Folded, RuntimeError> {
        let _one_reader = self.catching_up.lock().await;
        loop {
            let position = {
                let mut view = self.view();
                view.fold_own();
                if bounded && view.changed.len() >= crate::projections::SAVE_EVERY {
                    return Ok(Folded::SaveDue);
                }
                view.position
            };
            if position >= sequence {
                return Ok(Folded::Done);
            }
            let page = self.log.read_recent(position, 4_096).await?;
            if page.is_empty() {
                return Ok(Folded::Done);
            }
            {
                let mut view = self.view();
                for event in &page {
                    view.apply(event)?;
                }
                let folded = view.position;
                view.own.retain(|first, _| *first > folded);
            }
        }
    }

    /// Syncs the directory file into the log: appends the differences as events.
    ///
    /// # Errors
    /// [`RuntimeError::Invalid`] for a broken file; a store error.
    pub async fn sync_directory(&self, file: &str, text: &str) -> Result<usize, RuntimeError> {
        let parsed = DirectoryFile::parse(file, text).map_err(RuntimeError::Invalid)?;
        for _ in 0..MAX_CONFLICT_RETRIES {
            self.catch_up_to(u64::MAX).await?;
            let (changes, version) = {
                let view = self.view();
                (view.directory.diff(&parsed), view.directory_version)
            };
            if changes.is_empty() {
                return Ok(0);
            }
            let events = changes
                .iter()
                .map(|c| new_event(c.event_type(), &c.data(), SYSTEM, "directory", None))
                .collect::<Result<Vec<_>, _>>()?;
            let stream = StreamId::parse(DIRECTORY_STREAM).map_err(|e| corrupt(&e))?;
            match self
                .log
                .append(AppendRequest::new(
                    stream,
                    ExpectedVersion::Exact(version),
                    events,
                ))
                .await
            {
                Ok(appended) => {
                    self.catch_up_to(appended.last_sequence).await?;
                    return Ok(changes.len());
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(RuntimeError::Contended(DIRECTORY_STREAM.into()))
    }

    /// The actor for a person id (or `system`), with the roles the directory gives them now.
    ///
    /// # Errors
    /// [`RuntimeError::UnknownPerson`].
    pub fn actor(&self, person: &str) -> Result<Actor, RuntimeError> {
        if person == SYSTEM {
            return Ok(Actor::system());
        }
        signoff_core::engine::People::profile(&*self.view().directory, person)
            .ok_or_else(|| RuntimeError::UnknownPerson(person.to_owned()))
    }

    /// Starts an instance of `workflow` as `person`, through `channel`.
    ///
    /// # Errors
    /// Unknown workflow or person, a refusal, or a store error.
    pub async fn start(
        &self,
        workflow: &str,
        input: Value,
        person: &str,
        channel: &str,
    ) -> Result<Applied, RuntimeError> {
        self.start_with_id(&new_instance_id(), workflow, input, person, channel)
            .await
    }

    /// Starts an instance with a given id; starting the same id twice starts it once.
    ///
    /// # Errors
    /// As [`Runtime::start`].
    pub async fn start_with_id(
        &self,
        id: &str,
        workflow: &str,
        input: Value,
        person: &str,
        channel: &str,
    ) -> Result<Applied, RuntimeError> {
        self.start_handing_on(id, workflow, input, BTreeMap::new(), person, channel)
            .await
    }

    /// As [`Runtime::start_with_id`], with roles handed on from the instance that caused it.
    pub(crate) async fn start_handing_on(
        &self,
        id: &str,
        workflow: &str,
        input: Value,
        roles: BTreeMap<String, Vec<String>>,
        person: &str,
        channel: &str,
    ) -> Result<Applied, RuntimeError> {
        let actor = self.actor(person)?;
        self.start_keyed(id, workflow, input, roles, &actor, channel, None)
            .await
    }

    /// Starts an instance for a client: with the client's idempotency `key`, the instance's id
    /// is derived from the key (scoped to `person` and `channel`), a retry of the same start is
    /// answered with the first answer, and the same key with another workflow or input is
    /// refused ([`RuntimeError::IdempotencyKeyReused`]).
    ///
    /// # Errors
    /// As [`Runtime::start`].
    pub async fn start_for_client(
        &self,
        workflow: &str,
        input: Value,
        person: &str,
        channel: &str,
        key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        let actor = self.actor(person)?;
        self.start_as(workflow, input, &actor, channel, key).await
    }

    /// As [`Runtime::start_for_client`], for an actor already resolved (and perhaps limited
    /// by the token it acts through: [`Actor::workflows`]).
    ///
    /// # Errors
    /// As [`Runtime::start`].
    pub async fn start_as(
        &self,
        workflow: &str,
        input: Value,
        actor: &Actor,
        channel: &str,
        key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.note_command();
        // What a person starts with must be something the workflow reads (a start caused by
        // another instance carries what its trigger or parent gives).
        // Checked after the token's scope, which names no field.
        if let (Some(loaded), Value::Object(given), true) =
            (self.definition(workflow), &input, actor.may_touch(workflow))
        {
            loaded
                .check_input(given)
                .map_err(|e| RuntimeError::Rejected(Rejection::invalid(e)))?;
        }
        let Some(key) = key else {
            return self
                .start_keyed(
                    &new_instance_id(),
                    workflow,
                    input,
                    BTreeMap::new(),
                    actor,
                    channel,
                    None,
                )
                .await;
        };
        let print = idempotency::fingerprint("start", workflow, &input).map_err(|e| corrupt(&e))?;
        let keyed = Keyed::client(&actor.id, channel, key, print).map_err(|e| corrupt(&e))?;
        // The id comes from the key and the request: another request under a key forgotten
        // after its retention starts an instance of its own, never meets the old one.
        let id = derived_instance_id(&format!(
            "{}:{}",
            keyed.key.as_str(),
            keyed.fingerprint.as_deref().unwrap_or_default()
        ));
        if let Some(first) = self.replayed(&id, &keyed).await? {
            return Ok(first);
        }
        self.start_keyed(
            &id,
            workflow,
            input,
            BTreeMap::new(),
            actor,
            channel,
            Some(&keyed),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)] // each is one thing a start is made of
    async fn start_keyed(
        &self,
        id: &str,
        workflow: &str,
        input: Value,
        roles: BTreeMap<String, Vec<String>>,
        actor: &Actor,
        channel: &str,
        keyed: Option<&Keyed>,
    ) -> Result<Applied, RuntimeError> {
        let loaded = self
            .definition(workflow)
            .ok_or_else(|| RuntimeError::UnknownWorkflow(workflow.to_owned()))?;
        let person = actor.id.as_str();
        let state = Instance::new(id);
        let events = {
            let directory = self.directory();
            let ctx = Context {
                now: self.now(),
                actor,
                people: &*directory,
            };
            decide(&loaded, &state, &Command::Start { input, roles }, &ctx)
        };
        let events = match events {
            Ok(events) => events,
            Err(rejection) => {
                if rejection.kind == RejectionKind::Forbidden {
                    let refusal = SecurityRefusal {
                        instance: String::new(),
                        workflow: workflow.to_owned(),
                        step: None,
                        command: "start".to_owned(),
                        person: person.to_owned(),
                        channel: channel.to_owned(),
                        reason: rejection.message.clone(),
                        at: self.now(),
                    };
                    self.append_refusal(&refusal, None).await?;
                }
                return Err(rejection.into());
            }
        };
        self.record_definition(&loaded).await?;
        let stream = instance_stream(id)?;
        let (encoded, exact) = to_new_events(&events, person, channel, id)?;
        let mut request = AppendRequest::new(stream, ExpectedVersion::NoStream, encoded);
        if let Some(keyed) = keyed {
            request.idempotency_key = Some(keyed.key.clone());
            request.fingerprint.clone_from(&keyed.fingerprint);
        }
        match self
            .log
            .append_then(request, self.remember_own(id, &events, exact))
            .await
        {
            Ok(appended) if appended.deduplicated => self.first_answer(id, &appended).await,
            Ok(appended) => {
                self.catch_up_to(appended.last_sequence).await?;
                self.react_after_commit().await;
                Ok(Applied {
                    instance: id.to_owned(),
                    version: appended.stream_version,
                    events,
                    deduplicated: false,
                })
            }
            Err(StoreError::Conflict { actual, .. }) => Ok(Applied {
                instance: id.to_owned(),
                events: Vec::new(),
                version: actual,
                deduplicated: true,
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn record_definition(&self, loaded: &Loaded) -> Result<(), RuntimeError> {
        if self.view().recorded.contains(&loaded.hash) {
            return Ok(());
        }
        let data = json!({
            "workflow": loaded.definition.id.value,
            "hash": loaded.hash,
            "source": loaded.source,
        });
        let event = new_event(DEFINITION_RECORDED, &data, SYSTEM, "runtime", None)?;
        let stream = definition_stream(&loaded.hash)?;
        match self
            .log
            .append(AppendRequest::new(
                stream,
                ExpectedVersion::NoStream,
                vec![event],
            ))
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. }) => {
                self.view().recorded.insert(loaded.hash.clone());
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Loads an instance: from the running set, else by replaying its stream.
    ///
    /// # Errors
    /// [`RuntimeError::UnknownInstance`], or a store error.
    pub async fn load(&self, id: &str) -> Result<Entry, RuntimeError> {
        if let Some(entry) = self.view().running.get(id) {
            return Ok(entry.clone());
        }
        let events = self.instance_events(id).await?;
        self.entry_from(id, events.iter().map(|(_, e)| e))
    }

    pub(crate) fn entry_from<'a>(
        &self,
        id: &str,
        events: impl IntoIterator<Item = &'a InstanceEvent>,
    ) -> Result<Entry, RuntimeError> {
        let state = replay(id, events);
        if state.definition.is_empty() {
            return Err(RuntimeError::UnknownInstance(id.to_owned()));
        }
        let loaded = self
            .view()
            .definitions
            .by_hash(&state.definition)
            .ok_or_else(|| RuntimeError::Corrupt {
                sequence: 0,
                reason: format!(
                    "instance {id} pins definition {} which the log does not hold",
                    state.definition
                ),
            })?;
        Ok(Entry {
            state,
            loaded,
            memo: Arc::default(),
        })
    }

    /// Every event of an instance, with its record (time, actor, channel, sequence).
    ///
    /// # Errors
    /// [`RuntimeError::UnknownInstance`] when it has none; a store error.
    pub async fn instance_events(
        &self,
        id: &str,
    ) -> Result<Vec<(RecordedEvent, InstanceEvent)>, RuntimeError> {
        let stream = instance_stream(id)?;
        let mut out = Vec::new();
        loop {
            let page = self
                .log
                .read_stream(&stream, out.len() as u64 + 1, 4_096)
                .await?;
            if page.is_empty() {
                break;
            }
            for record in page {
                let event = InstanceEvent::from_parts(record.ty.as_str(), record.data.as_str())
                    .map_err(|reason| RuntimeError::Corrupt {
                        sequence: record.sequence,
                        reason,
                    })?;
                out.push((record, event));
            }
        }
        if out.is_empty() {
            return Err(RuntimeError::UnknownInstance(id.to_owned()));
        }
        Ok(out)
    }

    /// The state of an instance as it was at `at`: its events recorded up to then, folded.
    ///
    /// # Errors
    /// As [`Runtime::instance_events`]; [`RuntimeError::NotYet`] when it was started after
    /// `at`.
    pub async fn state_at(&self, id: &str, at: Timestamp) -> Result<Entry, RuntimeError> {
        let events = self.instance_events(id).await?;
        if events.first().is_none_or(|(r, _)| r.time > at) {
            return Err(RuntimeError::NotYet(id.to_owned(), at));
        }
        self.entry_from(
            id,
            events
                .iter()
                .take_while(|(r, _)| r.time <= at)
                .map(|(_, e)| e),
        )
    }

    /// Notes that a command is being taken now (see [`Runtime::deciding_within`]).
    pub(crate) fn note_command(&self) {
        let micros = u64::try_from(self.born.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_command
            .store(micros.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether this process took a command within `window` (real time).
    #[must_use]
    pub fn deciding_within(&self, window: std::time::Duration) -> bool {
        let last = self.last_command.load(std::sync::atomic::Ordering::Relaxed);
        if last == 0 {
            return false;
        }
        let now = u64::try_from(self.born.elapsed().as_micros()).unwrap_or(u64::MAX);
        now.saturating_sub(last) < u64::try_from(window.as_micros()).unwrap_or(u64::MAX)
    }

    /// Executes a command on an instance as `person`, through `channel`.
    ///
    /// A refusal for lack of rights is recorded in the security stream. An `idempotency_key`
    /// makes the command safe to retry: the second time it writes nothing.
    ///
    /// # Errors
    /// [`RuntimeError::Rejected`] with the reason; unknown instance or person; a store error.
    pub async fn execute(
        &self,
        id: &str,
        command: Command,
        person: &str,
        channel: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        let actor = match self.actor(person) {
            Ok(actor) => actor,
            Err(unknown) => {
                // Someone the directory does not know tried to act: a matter for the auditor.
                if let Ok(entry) = self.load(id).await {
                    let reason = format!("{person:?} is not a person of the directory");
                    self.record_refusal(&entry, &command, person, channel, &reason)
                        .await?;
                }
                return Err(unknown);
            }
        };
        self.execute_as(id, command, &actor, channel, idempotency_key)
            .await
    }

    /// As [`Runtime::execute`], for an actor already resolved (and perhaps limited by the
    /// token it acts through: [`Actor::workflows`]).
    ///
    /// # Errors
    /// As [`Runtime::execute`].
    pub async fn execute_as(
        &self,
        id: &str,
        command: Command,
        actor: &Actor,
        channel: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        let keyed = idempotency_key
            .map(|key| {
                let print = idempotency::fingerprint(command.name(), id, &command)
                    .map_err(|e| corrupt(&e))?;
                Keyed::client(&actor.id, channel, key, print).map_err(|e| corrupt(&e))
            })
            .transpose()?;
        self.execute_keyed(id, command, actor, channel, keyed.as_ref(), None)
            .await
    }

    /// Executes a command of the engine's own (a timer firing, a link), under one of the
    /// engine's keys, which no client key can equal.
    pub(crate) async fn execute_as_engine(
        &self,
        id: &str,
        command: Command,
        channel: &str,
        key: &str,
    ) -> Result<Applied, RuntimeError> {
        let keyed = Keyed::engine(key).map_err(|e| corrupt(&e))?;
        self.execute_keyed(id, command, &Actor::system(), channel, Some(&keyed), None)
            .await
    }

    /// The first answer to a request whose key was used before, if it was: the events it
    /// recorded and the version it left, read back from the log. A key first used for another
    /// request (another instance, command or content) is refused.
    async fn replayed(&self, id: &str, keyed: &Keyed) -> Result<Option<Applied>, RuntimeError> {
        let Some(first) = self.log.idempotent_result(&keyed.key).await? else {
            return Ok(None);
        };
        if first.stream != instance_stream(id)?.as_str() || first.fingerprint != keyed.fingerprint {
            return Err(RuntimeError::IdempotencyKeyReused);
        }
        self.first_answer(id, &first.appended()).await.map(Some)
    }

    /// What an append answered the first time, rebuilt from the events it recorded.
    async fn first_answer(&self, id: &str, first: &Appended) -> Result<Applied, RuntimeError> {
        let count = usize::try_from(first.last_sequence + 1 - first.first_sequence)
            .map_err(|e| corrupt(&e))?;
        let mut events = Vec::with_capacity(count);
        let mut after = first.first_sequence - 1;
        while after < first.last_sequence {
            let page = self.log.read_all(after, count - events.len()).await?;
            let Some(last) = page.last() else { break };
            after = last.sequence;
            for record in page.iter().filter(|r| r.sequence <= first.last_sequence) {
                let event = InstanceEvent::from_parts(record.ty.as_str(), record.data.as_str())
                    .map_err(|reason| RuntimeError::Corrupt {
                        sequence: record.sequence,
                        reason,
                    })?;
                events.push(event);
            }
        }
        // The key's record names events the log must hold; an answer missing some would tell
        // the caller less than was recorded.
        if events.len() != count {
            return Err(RuntimeError::Corrupt {
                sequence: first.first_sequence,
                reason: format!(
                    "an idempotency key names events {} to {}, but {} of them can be read",
                    first.first_sequence,
                    first.last_sequence,
                    events.len()
                ),
            });
        }
        Ok(Applied {
            instance: id.to_owned(),
            events,
            version: first.stream_version,
            deduplicated: true,
        })
    }

    /// Executes `command` as `actor` through `channel`, under an idempotency key if given,
    /// its events caused by `cause` (a decision link's id) if given.
    pub(crate) async fn execute_keyed(
        &self,
        id: &str,
        command: Command,
        actor: &Actor,
        channel: &str,
        keyed: Option<&Keyed>,
        cause: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.note_command();
        let person = actor.id.as_str();
        if let Some(keyed) = keyed
            && let Some(first) = self.replayed(id, keyed).await?
        {
            // A retry of a command already recorded: its first answer, nothing decided again.
            return Ok(first);
        }
        // A retry is decided under the workflow's current definition (fixed, presumably), which
        // the instance pins from then on: recorded in the log before the retry, so replay
        // finds it.
        let current = match &command {
            Command::Retry { .. } => {
                let workflow = self.load(id).await?.state.workflow;
                let loaded = self
                    .definition(&workflow)
                    .ok_or(RuntimeError::UnknownWorkflow(workflow))?;
                Some(loaded)
            }
            _ => None,
        };
        for _ in 0..MAX_CONFLICT_RETRIES {
            let entry = self.load(id).await?;
            // Decided in a block of its own: the context borrows the directory, which must not
            // live across an await for the future to be `Send`.
            let decided = {
                let directory = self.directory();
                let ctx = Context {
                    now: self.now(),
                    actor,
                    people: &*directory,
                };
                let loaded = current.as_ref().unwrap_or(&entry.loaded);
                decide_with(loaded, &entry.state, &command, &ctx, &entry.memo)
            };
            let events = match decided {
                Ok(events) => events,
                Err(rejection) => {
                    // A retry that lost the race to its own first attempt (committed since the
                    // check above) is answered with that attempt's answer, not refused.
                    if let Some(keyed) = keyed
                        && let Some(first) = self.replayed(id, keyed).await?
                    {
                        return Ok(first);
                    }
                    if rejection.kind == RejectionKind::Forbidden {
                        self.record_refusal(&entry, &command, person, channel, &rejection.message)
                            .await?;
                    }
                    return Err(rejection.into());
                }
            };
            if events.is_empty() {
                return Ok(Applied {
                    instance: id.to_owned(),
                    events,
                    version: entry.state.version,
                    deduplicated: false,
                });
            }
            if let Some(loaded) = &current {
                // Recorded only once the retry is accepted: a refusal writes nothing.
                self.record_definition(loaded).await?;
            }
            let (mut encoded, exact) = to_new_events(&events, person, channel, id)?;
            for event in &mut encoded {
                event.metadata.causation_id = cause.map(str::to_owned);
            }
            let mut request = AppendRequest::new(
                instance_stream(id)?,
                ExpectedVersion::Exact(entry.state.version),
                encoded,
            );
            if let Some(keyed) = keyed {
                request.idempotency_key = Some(keyed.key.clone());
                request.fingerprint.clone_from(&keyed.fingerprint);
            }
            match self
                .log
                .append_then(request, self.remember_own(id, &events, exact))
                .await
            {
                // A retry that raced its first attempt: the first attempt's answer.
                Ok(appended) if appended.deduplicated => {
                    return self.first_answer(id, &appended).await;
                }
                Ok(appended) => {
                    self.catch_up_to(appended.last_sequence).await?;
                    self.react_after_commit().await;
                    return Ok(Applied {
                        instance: id.to_owned(),
                        events,
                        version: appended.stream_version,
                        deduplicated: false,
                    });
                }
                Err(StoreError::Conflict { .. }) => {
                    self.catch_up_to(u64::MAX).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(RuntimeError::Contended(id.to_owned()))
    }

    /// What the log's writer is to do once this process's events for instance `id` are
    /// committed: keep them, as decided, to be folded without reading them back (unless the view
    /// has already passed them). The writer calls it in sequence order before answering anyone,
    /// so whoever catches up first finds the whole group to fold from memory. Events that do not
    /// read back exactly as decided (`exact` false) are left to be read back.
    fn remember_own(&self, id: &str, events: &[InstanceEvent], exact: bool) -> OnCommit {
        if !exact {
            return Box::new(|_| {});
        }
        let view = Arc::clone(&self.view);
        let instance = id.to_owned();
        let events = events.to_vec();
        Box::new(move |appended: &Appended| {
            let count = appended.last_sequence + 1 - appended.first_sequence;
            if appended.deduplicated || count != events.len() as u64 {
                return;
            }
            let mut view = lock(&view);
            if view.position < appended.first_sequence {
                view.own.insert(
                    appended.first_sequence,
                    Own {
                        instance,
                        first_version: appended.stream_version + 1 - count,
                        events,
                    },
                );
            }
        })
    }

    async fn record_refusal(
        &self,
        entry: &Entry,
        command: &Command,
        person: &str,
        channel: &str,
        reason: &str,
    ) -> Result<(), RuntimeError> {
        self.record_refusal_of(
            entry,
            command.name(),
            command.step(),
            person,
            channel,
            reason,
        )
        .await
    }

    /// Records in the security stream that `person` was refused `what` on an instance.
    pub(crate) async fn record_refusal_of(
        &self,
        entry: &Entry,
        what: &str,
        step: Option<&str>,
        person: &str,
        channel: &str,
        reason: &str,
    ) -> Result<(), RuntimeError> {
        let refusal = SecurityRefusal {
            instance: entry.state.id.clone(),
            workflow: entry.state.workflow.clone(),
            step: step.map(str::to_owned),
            command: what.to_owned(),
            person: person.to_owned(),
            channel: channel.to_owned(),
            reason: reason.to_owned(),
            at: self.now(),
        };
        self.append_refusal(&refusal, Some(&entry.state.id)).await
    }

    /// Records in the security stream that `person` was refused `what` on the whole log.
    pub(crate) async fn record_global_refusal(
        &self,
        what: &str,
        person: &str,
        channel: &str,
        reason: &str,
    ) -> Result<(), RuntimeError> {
        let refusal = SecurityRefusal {
            instance: String::new(),
            workflow: String::new(),
            step: None,
            command: what.to_owned(),
            person: person.to_owned(),
            channel: channel.to_owned(),
            reason: reason.to_owned(),
            at: self.now(),
        };
        self.append_refusal(&refusal, None).await
    }

    async fn append_refusal(
        &self,
        refusal: &SecurityRefusal,
        instance: Option<&str>,
    ) -> Result<(), RuntimeError> {
        let data = serde_json::to_value(refusal).map_err(|e| corrupt(&e))?;
        let event = new_event(
            SECURITY_REFUSED,
            &data,
            &refusal.person,
            &refusal.channel,
            instance,
        )?;
        let stream = StreamId::parse(SECURITY_STREAM).map_err(|e| corrupt(&e))?;
        self.log
            .append(AppendRequest::new(
                stream,
                ExpectedVersion::Any,
                vec![event],
            ))
            .await?;
        Ok(())
    }

    /// Fires every timer due now, each once; returns how many fired.
    ///
    /// # Errors
    /// A store error.
    pub async fn fire_due_timers(&self) -> Result<usize, RuntimeError> {
        self.catch_up().await?;
        let now = self.now();
        let mut due: Vec<(Timestamp, String, String)> = self
            .view()
            .running
            .values()
            .flat_map(|e| {
                e.state
                    .timers
                    .iter()
                    .filter(|(_, t)| t.due <= now)
                    .map(|(id, t)| (t.due, e.state.id.clone(), id.clone()))
            })
            .collect();
        due.sort();
        let mut fired = 0;
        for (_, instance, timer) in due {
            let key = format!("timer:{instance}:{timer}");
            match self
                .execute_as_engine(&instance, Command::FireTimer { id: timer }, "timer", &key)
                .await
            {
                Ok(applied) if !applied.deduplicated => fired += 1,
                // Voided by an earlier timer, fired by another process, or the instance ended.
                Ok(_) | Err(RuntimeError::Rejected(_)) => {}
                // Its key was taken before keys had owners (a log older than migration 0005):
                // this timer cannot fire, the others must.
                Err(RuntimeError::IdempotencyKeyReused) => {
                    tracing::error!(%instance, %key, "a timer's key is held by another request; it does not fire");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(fired)
    }

    /// The earliest pending timer, if any.
    #[must_use]
    pub fn next_timer(&self) -> Option<Timestamp> {
        self.view()
            .running
            .values()
            .flat_map(|e| e.state.timers.values().map(|t| t.due))
            .min()
    }
}

impl View {
    /// Folds this process's own committed batches that continue the view, in order.
    fn fold_own(&mut self) {
        while let Some(own) = self.own.remove(&(self.position + 1)) {
            for (i, event) in own.events.iter().enumerate() {
                self.position += 1;
                let position = self.position;
                self.apply_instance(&own.instance, own.first_version + i as u64, event, position);
            }
        }
    }

    /// Folds one committed event.
    pub(crate) fn apply(&mut self, record: &RecordedEvent) -> Result<(), RuntimeError> {
        let stream = record.stream.as_str();
        let bad = |reason: String| RuntimeError::Corrupt {
            sequence: record.sequence,
            reason,
        };
        if let Some(id) = stream.strip_prefix("instance/") {
            let event =
                InstanceEvent::from_parts(record.ty.as_str(), record.data.as_str()).map_err(bad)?;
            self.apply_instance(id, record.version, &event, record.sequence);
        } else if stream == DIRECTORY_STREAM {
            let event =
                DirectoryEvent::decode(record.ty.as_str(), record.data.as_str()).map_err(bad)?;
            Arc::make_mut(&mut self.directory).apply(&event);
            self.directory_version = record.version;
            self.changed.people = true;
        } else if let Some(workflow) = stream.strip_prefix(crate::schedule::STREAM_PREFIX) {
            if let Some(reaction) = self
                .schedules
                .entry(workflow.to_owned())
                .or_default()
                .apply(record)
                .map_err(bad)?
            {
                self.want(reaction);
            }
        } else if let Some(channel) = stream.strip_prefix(crate::outbox::STREAM_PREFIX) {
            if let Some(undelivered) = self
                .outboxes
                .entry(channel.to_owned())
                .or_default()
                .apply(record)
                .map_err(bad)?
            {
                self.changed.undelivered.push(undelivered);
            }
        } else if stream == REACTIONS_STREAM && record.ty.as_str() == REACTION_FAILED {
            let failed: crate::reactions::FailedEvent =
                serde_json::from_str(record.data.as_str()).map_err(|e| bad(e.to_string()))?;
            let id = failed.instance;
            // Not attempted again before its time, nor at all once given up.
            self.reactions.retain(|r| r.id != id);
            match failed.retry_at {
                Some(at) => {
                    self.failed.insert(
                        id,
                        crate::reactions::Failed {
                            attempts: failed.attempt,
                            retry_at: Timestamp(at),
                        },
                    );
                }
                None => {
                    self.failed.remove(&id);
                    self.pending.retain(|r| r.id != id);
                }
            }
        } else if stream == TOKENS_STREAM {
            let event =
                AccessEvent::decode(record.ty.as_str(), record.data.as_str()).map_err(bad)?;
            self.tokens.apply(&event, record.time);
            self.changed.tokens = true;
        } else if stream.starts_with("definition/") {
            let data: Value =
                serde_json::from_str(record.data.as_str()).map_err(|e| bad(e.to_string()))?;
            let source = data
                .get("source")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let loaded = self.definitions.insert_recorded(source)?;
            self.recorded.insert(loaded.hash.clone());
        }
        // Only once folded: an event that cannot be read stops the view there, loudly, every
        // time, instead of being passed over on the next try.
        self.position = record.sequence;
        Ok(())
    }

    fn apply_instance(&mut self, id: &str, version: u64, event: &InstanceEvent, sequence: u64) {
        if let InstanceEvent::Started { definition, .. } = event {
            self.reactions.retain(|r| r.id != id);
            self.pending.retain(|r| r.id != id);
            self.failed.remove(id);
            let Some(loaded) = self.definitions.by_hash(definition) else {
                tracing::error!(instance = id, %definition, "started with a definition the log does not hold");
                return;
            };
            self.running.insert(
                id.to_owned(),
                Entry {
                    state: Instance::new(id),
                    loaded,
                    memo: Arc::default(),
                },
            );
        }
        let Some(entry) = self.running.get_mut(id) else {
            return;
        };
        if entry.state.version + 1 != version {
            return;
        }
        entry.state.evolve(event);
        match self.changed.instances.get_mut(id) {
            Some(last) => *last = sequence,
            None => {
                self.changed.instances.insert(id.to_owned(), sequence);
            }
        }
        let workflow = entry.state.workflow.clone();
        match event {
            InstanceEvent::WorkflowRequested {
                step,
                workflow: target,
                input,
                ..
            } => {
                let activation = entry.state.activations.get(step).copied().unwrap_or(0);
                let reaction = Reaction {
                    id: derived_instance_id(&format!("child:{id}:{step}#{activation}")),
                    workflow: target.clone(),
                    input: input.clone(),
                    requester: entry.state.requester.clone(),
                    channel: "runtime".to_owned(),
                    source: Some(Source {
                        instance: id.to_owned(),
                        workflow,
                        relation: "child".to_owned(),
                    }),
                    roles: BTreeMap::new(),
                    refused: None,
                };
                self.want(reaction);
            }
            InstanceEvent::StepEntered { step, .. } | InstanceEvent::StepPassed { step, .. } => {
                self.trigger(id, &workflow, Some(step), None);
            }
            InstanceEvent::StepRetried { definition, .. } => {
                // From now on the instance runs the definition it was retried under.
                match self.definitions.by_hash(definition) {
                    Some(loaded) => entry.loaded = loaded,
                    None => {
                        tracing::error!(instance = id, %definition, "retried under a definition the log does not hold");
                    }
                }
            }
            InstanceEvent::Ended { outcome, .. } => {
                self.trigger(id, &workflow, None, Some(outcome));
                self.finish(id, sequence);
            }
            InstanceEvent::Cancelled { .. } => {
                self.finish(id, sequence);
            }
            _ => {}
        }
    }

    /// Asks for a reaction: to carry out, and pending until its instance starts.
    fn want(&mut self, reaction: Reaction) {
        self.pending.push(reaction.clone());
        self.reactions.push(reaction);
    }

    /// Forgets an instance that ended; its read model row keeps what it ended as.
    fn finish(&mut self, id: &str, sequence: u64) {
        if let Some(entry) = self.running.remove(id) {
            self.changed.instances.remove(id);
            self.changed.finished.insert(
                id.to_owned(),
                crate::projections::InstanceRow::of(&entry.state, sequence),
            );
        }
    }

    fn trigger(&mut self, id: &str, workflow: &str, step: Option<&str>, outcome: Option<&str>) {
        let targets = self.definitions.triggered_by(workflow, step, outcome);
        if targets.is_empty() {
            // Nearly every step entered: nothing to start, so no input to build.
            return;
        }
        let source = self.running.get(id);
        let input = source.map_or(Value::Null, |e| {
            json!({"source": {"instance": id, "workflow": workflow, "data": e.state.data, "input": e.state.input}})
        });
        let vars = source.map(|e| e.state.vars(&e.loaded.definition.title));
        let source_requester =
            source.map_or_else(|| SYSTEM.to_owned(), |e| e.state.requester.clone());
        for (target, trigger) in targets {
            let (requester, roles, refused) =
                match handed_on(&trigger, vars.as_ref(), &source_requester) {
                    Ok((requester, roles)) => (requester, roles, None),
                    Err(why) => (source_requester.clone(), BTreeMap::new(), Some(why)),
                };
            self.want(Reaction {
                id: derived_instance_id(&format!("trigger:{id}:{target}")),
                workflow: target,
                input: input.clone(),
                requester,
                channel: "runtime".to_owned(),
                source: Some(Source {
                    instance: id.to_owned(),
                    workflow: workflow.to_owned(),
                    relation: "triggered".to_owned(),
                }),
                roles,
                refused,
            });
        }
    }
}

/// Who a trigger makes the requester of the instance it starts, and the roles it hands on,
/// read from the instance whose event it is (`vars`).
///
/// # Errors
/// An expression that cannot say, or that names no person (or, for the requester, not exactly
/// one): the instance is then not started, and the failure is recorded (never a guess such as
/// every holder of the role in the directory, or another requester).
fn handed_on(
    trigger: &signoff_core::workflow::Trigger,
    vars: Option<&Value>,
    source_requester: &str,
) -> Result<(String, BTreeMap<String, Vec<String>>), String> {
    let people = |source: &str| -> Result<Vec<String>, String> {
        let vars = vars.ok_or("the instance it reads is not running here")?;
        let value = signoff_core::workflow::expr::Expression::compile(source)?.eval(vars)?;
        let items = match value {
            Value::Array(items) => items,
            one => vec![one],
        };
        let mut out: Vec<String> = Vec::new();
        for item in items {
            match item {
                Value::String(id) if !id.trim().is_empty() => {
                    if !out.contains(&id) {
                        out.push(id);
                    }
                }
                other => return Err(format!("it gives {other}, not a person id")),
            }
        }
        Ok(out)
    };
    let why = |what: &str, source: &str, error: &str| {
        format!("the trigger's {what} `{source}` names nobody: {error}")
    };
    let requester = match &trigger.requester {
        None => source_requester.to_owned(),
        Some(source) => match people(source.as_str()) {
            Ok(one) if one.len() == 1 => one[0].clone(),
            Ok(many) => {
                let error = format!("it gives {} people, not one", many.len());
                return Err(why("requester", source.as_str(), &error));
            }
            Err(error) => return Err(why("requester", source.as_str(), &error)),
        },
    };
    let mut roles = BTreeMap::new();
    for (role, sources) in &trigger.roles {
        let mut holders: Vec<String> = Vec::new();
        for source in sources {
            let found = people(source.as_str())
                .map_err(|error| why(&format!("role {role:?}"), source.as_str(), &error))?;
            for p in found {
                if !holders.contains(&p) {
                    holders.push(p);
                }
            }
        }
        if holders.is_empty() {
            return Err(format!("the trigger hands the role {role:?} to nobody"));
        }
        roles.insert(role.clone(), holders);
    }
    Ok((requester, roles))
}

/// Reads the directory file, if it exists.
///
/// # Errors
/// An IO error other than "not found".
pub fn read_optional(path: &std::path::Path) -> Result<Option<String>, RuntimeError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RuntimeError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The trigger of a post-mortem-like workflow: requester and author from the incident.
    fn trigger() -> signoff_core::workflow::Trigger {
        let yaml = "
id: pm
title: PM
roles:
  author: {}
triggers:
  - on: {workflow: incident, outcome: resolved}
    requester: data.declare.commander
    roles:
      author: [data.declare.commander, data.declare.scribe]
steps:
  - id: write
    tasks: {items: [{id: w, title: Write, owner: {role: author}}]}
    next: done
  - id: done
    end: {outcome: ok}
";
        let loaded = signoff_core::workflow::load("pm.yaml", yaml).unwrap();
        loaded.definition.triggers[0].clone()
    }

    #[test]
    fn a_trigger_hands_on_who_the_source_names_and_starts_nothing_when_it_names_nobody() {
        let vars = json!({"data": {"declare": {"commander": "laura", "scribe": "priya"}}});
        let (requester, roles) = handed_on(&trigger(), Some(&vars), "dave").unwrap();
        assert_eq!(requester, "laura");
        assert_eq!(roles["author"], ["laura", "priya"]);
        // A field missing, or not a person: no guess (not dave, not every author).
        let vars = json!({"data": {"declare": {"commander": "laura"}}});
        let err = handed_on(&trigger(), Some(&vars), "dave").unwrap_err();
        assert!(err.contains("role \"author\""), "{err}");
        let vars = json!({"data": {"declare": {"commander": 7, "scribe": "priya"}}});
        let err = handed_on(&trigger(), Some(&vars), "dave").unwrap_err();
        assert!(err.contains("requester"), "{err}");
        assert!(handed_on(&trigger(), None, "dave").is_err());
    }
}
