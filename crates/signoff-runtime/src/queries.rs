//! What people ask of the runtime besides commands: their inbox, the notifications recorded for
//! them, evidence, and waiting for an instance to end.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use signoff_core::Timestamp;
use signoff_core::engine::{Actor, Command, InstanceEvent, OPERATOR, Status};
use signoff_core::workflow::StepKind;

use crate::error::RuntimeError;
use crate::runtime::{Applied, Runtime};

/// Something waiting for a person.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InboxItem {
    /// The instance.
    pub instance: String,
    /// Its workflow.
    pub workflow: String,
    /// The step.
    pub step: String,
    /// `form`, `approval`, `tasks`…, or `stopped` for a step a rule stopped (in operators'
    /// inboxes).
    pub kind: String,
    /// The step's title.
    pub title: String,
    /// What people call the instance (its definition's `instance_title`, or the workflow's
    /// title).
    #[serde(default)]
    pub instance_title: String,
    /// For a checklist: the open tasks that are theirs (all of them once it was escalated to them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<String>,
    /// Since when.
    pub since: Timestamp,
    /// The deadline, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
}

/// The type of the event that records a notification.
const NOTIFICATION_REQUESTED: &str = "signoff.notification.requested";

/// A notification as recorded in the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Notification {
    /// Its id.
    pub id: String,
    /// The instance.
    pub instance: String,
    /// Who is told.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Why.
    pub reason: String,
    /// The step it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// When it was requested.
    pub at: Timestamp,
}

impl Notification {
    /// The notification a recorded event requests, if it is one.
    #[must_use]
    pub fn from_record(record: &signoff_core::RecordedEvent) -> Option<Self> {
        if record.ty.as_str() != NOTIFICATION_REQUESTED {
            return None;
        }
        let Ok(InstanceEvent::NotificationRequested {
            id,
            to,
            subject,
            body,
            reason,
            step,
            at,
        }) = InstanceEvent::from_parts(record.ty.as_str(), record.data.as_str())
        else {
            return None;
        };
        Some(Self {
            id,
            instance: record
                .stream
                .as_str()
                .strip_prefix("instance/")
                .unwrap_or_default()
                .to_owned(),
            to,
            subject,
            body,
            reason,
            step,
            at,
        })
    }
}

impl Runtime {
    /// What waits for `actor` now, in the workflows their credential reaches
    /// ([`Actor::workflows`]).
    #[must_use]
    pub fn inbox_of(&self, actor: &Actor) -> Vec<InboxItem> {
        let mut items = self.inbox(&actor.id);
        items.retain(|item| actor.may_touch(&item.workflow));
        items
    }

    /// What waits for `person` now: forms to fill, gates to decide, tasks to do, and for an
    /// operator, steps a rule stopped.
    #[must_use]
    pub fn inbox(&self, person: &str) -> Vec<InboxItem> {
        let mut items = Vec::new();
        // Read in place: cloning every running instance per call would cost more than the answer.
        let view = self.view();
        let operator = view.directory.holds(person, OPERATOR);
        for entry in view.running.values() {
            for (step, active) in &entry.state.active {
                if active.failure.is_some() {
                    // A stopped step waits for an operator, and for nobody else.
                    if operator {
                        items.push(InboxItem {
                            instance: entry.state.id.clone(),
                            workflow: entry.state.workflow.clone(),
                            step: step.clone(),
                            kind: "stopped".to_owned(),
                            title: format!(
                                "Stopped: {}",
                                entry.loaded.definition.step(step).map_or(
                                    step.as_str(),
                                    signoff_core::workflow::Step::title_or_id
                                )
                            ),
                            instance_title: entry.state.title(&entry.loaded.definition),
                            tasks: Vec::new(),
                            since: active.entered_at,
                            deadline: None,
                        });
                    }
                    continue;
                }
                if !active.waits_for(person) {
                    continue;
                }
                let def = entry.loaded.definition.step(step);
                let kind = def.and_then(|d| d.kind());
                let mut tasks = Vec::new();
                let mut deadline = active.gate.as_ref().and_then(|g| g.opened.deadline);
                if kind == Some(StepKind::Tasks) {
                    // Their own tasks; every open task once the checklist was escalated to them.
                    let escalated = active.escalated.iter().any(|e| e == person);
                    tasks = active
                        .tasks
                        .iter()
                        .filter(|t| {
                            t.closed.is_none()
                                && (escalated || t.opened.owners.iter().any(|o| o == person))
                        })
                        .map(|t| t.opened.id.clone())
                        .collect();
                    if tasks.is_empty() {
                        continue;
                    }
                    // The soonest due time of the tasks that are theirs.
                    deadline = active
                        .tasks
                        .iter()
                        .filter(|t| tasks.contains(&t.opened.id))
                        .filter_map(|t| t.opened.due)
                        .min();
                }
                items.push(InboxItem {
                    instance: entry.state.id.clone(),
                    workflow: entry.state.workflow.clone(),
                    step: step.clone(),
                    kind: kind.map_or_else(String::new, |k| {
                        serde_json::to_value(k)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    }),
                    title: def.map(|d| d.title.clone()).unwrap_or_default(),
                    instance_title: entry.state.title(&entry.loaded.definition),
                    tasks,
                    since: active.entered_at,
                    deadline,
                });
            }
        }
        items.sort_by(|a, b| (a.since, &a.instance).cmp(&(b.since, &b.instance)));
        items
    }

    /// Every notification recorded in the log, oldest first, optionally only those to `person`
    /// (read through the log's index by type: the notifications, not the whole log).
    ///
    /// # Errors
    /// A store error or an unreadable event.
    pub async fn notifications(
        &self,
        person: Option<&str>,
    ) -> Result<Vec<Notification>, RuntimeError> {
        Ok(self
            .events_of_type(NOTIFICATION_REQUESTED)
            .await?
            .iter()
            .filter_map(Notification::from_record)
            .filter(|n| person.is_none_or(|p| n.to.iter().any(|t| t == p)))
            .collect())
    }

    /// The notifications of one instance, oldest first (from its own stream).
    ///
    /// # Errors
    /// Unknown instance; a store error.
    pub async fn notifications_of(&self, id: &str) -> Result<Vec<Notification>, RuntimeError> {
        Ok(self
            .instance_events(id)
            .await?
            .iter()
            .filter_map(|(record, _)| Notification::from_record(record))
            .collect())
    }

    /// Waits until the instance has ended or been cancelled, following the log (timers fired by
    /// this process run meanwhile when `fire_timers` is set). Returns its final status.
    ///
    /// # Errors
    /// Unknown instance; a store error; none on timeout (the status is then `Running`).
    pub async fn wait_for_end(
        &self,
        id: &str,
        timeout: Option<Duration>,
        fire_timers: bool,
    ) -> Result<Status, RuntimeError> {
        let started = tokio::time::Instant::now();
        let mut commits = self.log().committed();
        loop {
            // Other processes write to the log too: follow it before looking.
            self.catch_up().await?;
            let entry = self.load(id).await?;
            if !entry.state.is_running() {
                return Ok(entry.state.status);
            }
            if timeout.is_some_and(|t| started.elapsed() >= t) {
                return Ok(entry.state.status);
            }
            if fire_timers {
                self.fire_due_timers().await?;
            }
            let _ = tokio::time::timeout(Duration::from_millis(250), commits.changed()).await;
        }
    }

    /// Stores `content` by its hash and attaches it to the instance as evidence, as `actor`.
    /// Someone who may not attach to it is refused (and the attempt recorded) before anything
    /// is stored.
    ///
    /// # Errors
    /// An IO error storing it, or the command's refusal.
    pub async fn attach(
        &self,
        id: &str,
        name: &str,
        media_type: &str,
        content: &[u8],
        actor: &Actor,
        channel: &str,
    ) -> Result<Applied, RuntimeError> {
        let hex = hex::encode(Sha256::digest(content));
        let command = Command::Attach {
            name: name.to_owned(),
            hash: format!("sha256:{hex}"),
            media_type: media_type.to_owned(),
            size: content.len() as u64,
        };
        let entry = self.load(id).await?;
        if actor.may_touch(&entry.state.workflow)
            && signoff_core::access::may_attach(&entry.state, &actor.id)
        {
            let dir = self.evidence_dir.join("sha256");
            let io = |source| RuntimeError::Io {
                path: dir.display().to_string(),
                source,
            };
            let (into, name_of, owned) = (dir.clone(), hex, content.to_vec());
            tokio::task::spawn_blocking(move || store_evidence(&into, &name_of, &owned))
                .await
                .map_err(|e| io(std::io::Error::other(e)))?
                .map_err(io)?;
        }
        // Decided by the engine either way: a refusal is its own, and recorded.
        self.execute_as(id, command, actor, channel, None).await
    }
}

/// Stores `content` as `dir/<hex>` so that the file is either absent or whole: written to a
/// temporary file in the same folder, synced, renamed over, and the folder synced. A file already
/// there is kept only when its content has that hash: one left partial (a crash, a full disk,
/// before this was atomic) is written again rather than trusted forever.
fn store_evidence(dir: &std::path::Path, hex: &str, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(hex);
    if let Ok(existing) = std::fs::read(&path)
        && existing.len() == content.len()
        && hex::encode(Sha256::digest(&existing)) == hex
    {
        return Ok(());
    }
    let temporary = dir.join(format!(".{hex}.{}.tmp", uuid::Uuid::now_v7().simple()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)
    };
    let written = write();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    // The rename is durable once the folder's entry is: sync the folder too (where the platform
    // lets a folder be opened, as Unix does).
    if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(())
}
