//! The state of one instance, and `evolve`: how each event changes it. State is only ever made
//! by folding events, live and on replay alike, so the two cannot differ.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event::{
    GateOpened, InstanceEvent, Link, Rule, TaskOpened, TaskStatus, TimerPurpose, Verdict,
};
use crate::event::Timestamp;

/// Where an instance is in its life.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    /// Not started (no events yet).
    #[default]
    New,
    /// Running.
    Running,
    /// Ended with an outcome.
    Ended {
        /// The outcome.
        outcome: String,
        /// Whether it is a success.
        success: bool,
        /// When.
        at: Timestamp,
    },
    /// Cancelled.
    Cancelled {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
}

/// One decision standing on a gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Approve or reject.
    pub verdict: Verdict,
    /// Justification.
    pub justification: String,
    /// The groups it counts for.
    pub groups: Vec<String>,
    /// Made by an escalation target.
    pub escalated: bool,
    /// When.
    pub at: Timestamp,
}

/// An open gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    /// As it opened.
    pub opened: GateOpened,
    /// Standing decisions by person (one person, one decision).
    pub decisions: BTreeMap<String, Decision>,
    /// Delegations: who handed their decision to whom.
    pub delegations: BTreeMap<String, String>,
    /// People escalated to, who may decide for the whole gate.
    pub escalated: Vec<String>,
}

/// One task of an open checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// As it opened.
    pub opened: TaskOpened,
    /// How it ended, with the note and who, once it has.
    pub closed: Option<(TaskStatus, String, String)>,
}

/// A step that is active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Active {
    /// Which time it was entered.
    pub activation: u32,
    /// The parallel branch it runs in.
    pub branch: Option<String>,
    /// When it was entered.
    pub entered_at: Timestamp,
    /// Who it waits for.
    pub assignees: Vec<String>,
    /// For a gate.
    pub gate: Option<Gate>,
    /// For a checklist.
    pub tasks: Vec<Task>,
    /// Escalations so far.
    pub escalations: u32,
    /// People the step was escalated to: they may act on it in its owners' place.
    pub escalated: Vec<String>,
    /// Last status update (or the step's entry) for a cadence.
    pub last_update: Timestamp,
    /// Set when a rule of the step could not be evaluated: the step is stopped, open to nobody,
    /// until an operator retries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl Gate {
    /// How far each group of approvers is: "1 of 2 from change-board".
    #[must_use]
    pub fn progress(&self) -> Vec<String> {
        self.opened
            .groups
            .iter()
            .map(|g| {
                let approvals = self
                    .decisions
                    .values()
                    .filter(|d| d.verdict == Verdict::Approve && d.groups.contains(&g.name))
                    .count();
                format!("{approvals} of {} from {}", g.needed, g.name)
            })
            .collect()
    }
}

impl Active {
    /// Whether the step still waits for `person`: one of its assignees who, on a gate, has not
    /// decided, handed their decision on, or been excluded from it.
    #[must_use]
    pub fn waits_for(&self, person: &str) -> bool {
        self.assignees.iter().any(|a| a == person)
            && self.gate.as_ref().is_none_or(|gate| {
                !gate.decisions.contains_key(person)
                    && !gate.delegations.contains_key(person)
                    && !gate.opened.excluded.iter().any(|x| x == person)
            })
    }

    /// Those the step still waits for ([`Active::waits_for`]), in order.
    #[must_use]
    pub fn waiting_for(&self) -> Vec<&str> {
        self.assignees
            .iter()
            .map(String::as_str)
            .filter(|p| self.waits_for(p))
            .collect()
    }
}

/// Why a step stopped: the rule that could not be evaluated, as `signoff.step.failed` recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of rule.
    pub rule: Rule,
    /// The expression or template, as written.
    pub expression: String,
    /// Why it could not be evaluated.
    pub error: String,
    /// The instance version whose data it read.
    pub version: u64,
    /// The definition it was evaluated under.
    pub definition: String,
    /// When.
    pub at: Timestamp,
}

/// A pending timer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// The step it belongs to.
    pub step: String,
    /// Why.
    pub purpose: TimerPurpose,
    /// When it fires.
    pub due: Timestamp,
}

/// A piece of evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Name.
    pub name: String,
    /// Content hash.
    pub hash: String,
    /// Media type.
    pub media_type: String,
    /// Size.
    pub size: u64,
}

/// The state of one instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Its id.
    pub id: String,
    /// The workflow id.
    pub workflow: String,
    /// The pinned definition hash.
    pub definition: String,
    /// Who started it.
    pub requester: String,
    /// Its input.
    pub input: Value,
    /// When it started.
    pub started_at: Timestamp,
    /// Life status.
    #[serde(flatten)]
    pub status: Status,
    /// Form values by step id, of the path the instance is on.
    pub data: Map<String, Value>,
    /// Roles handed on by the instance whose event started this one, with who holds each here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, Vec<String>>,
    /// Form values of steps on a path a branch no longer takes, by step id: kept for the
    /// record, never read as current answers.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub superseded: Map<String, Value>,
    /// Who submitted each form, by step id (the last submission), for separation of duties.
    pub submitted_by: BTreeMap<String, String>,
    /// Active steps by id. Boxed: a map's node holds room for eleven values, and an instance
    /// usually has one step open (unboxed, 4 KiB of each running instance's memory).
    pub active: BTreeMap<String, Box<Active>>,
    /// Activations so far, by step id.
    pub activations: BTreeMap<String, u32>,
    /// Branches that reached each join step (for the join's current round).
    pub arrivals: BTreeMap<String, Vec<String>>,
    /// Pending timers by id.
    pub timers: BTreeMap<String, Timer>,
    /// Evidence.
    pub evidence: Vec<Evidence>,
    /// Links to other instances.
    pub links: Vec<Link>,
    /// Notifications requested so far (for unique ids).
    pub notifications: u32,
    /// Escalations so far, over all its steps (a missed deadline, for the charts).
    pub escalations: u32,
    /// Events applied (equals the stream version once loaded from the log).
    pub version: u64,
}

impl Instance {
    /// The variables every expression and template of its workflow (titled `title`) sees.
    #[must_use]
    pub fn vars(&self, title: &str) -> Value {
        serde_json::json!({
            "data": self.data,
            "input": self.input,
            "requester": self.requester,
            "submitted_by": self.submitted_by,
            "instance": {
                "id": self.id,
                "workflow": self.workflow,
                "title": title,
            },
        })
    }

    /// What people call this instance: its definition's `instance_title` rendered (one line),
    /// or the workflow's title while the fields it reads are not filled in (or it cannot be
    /// rendered: a title is for reading, and must never stop anything).
    #[must_use]
    pub fn title(&self, definition: &crate::workflow::Definition) -> String {
        definition
            .instance_title
            .as_ref()
            .and_then(|t| {
                super::compiled::render_strict(t.as_str(), &self.vars(&definition.title)).ok()
            })
            .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| definition.title.clone())
    }

    /// A blank instance with this id, before its first event.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// The person a form field names, for a role given by `step.field`.
    #[must_use]
    pub fn person_in_field(&self, field: &str) -> Option<&str> {
        let (step, name) = field.split_once('.').unwrap_or((field, ""));
        self.data
            .get(step)
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
    }

    /// The steps stopped by a rule that could not be evaluated, with why.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &Failure)> {
        self.active
            .iter()
            .filter_map(|(step, a)| a.failure.as_ref().map(|f| (step.as_str(), f)))
    }

    /// Whether `step` is stopped by a rule that could not be evaluated.
    #[must_use]
    pub fn is_stopped(&self, step: &str) -> bool {
        self.active.get(step).is_some_and(|a| a.failure.is_some())
    }

    /// Whether it still runs.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.status == Status::Running
    }

    /// Applies one event.
    pub fn evolve(&mut self, event: &InstanceEvent) {
        self.version += 1;
        match event {
            InstanceEvent::Started {
                workflow,
                definition,
                requester,
                input,
                roles,
                at,
            } => {
                self.workflow.clone_from(workflow);
                self.definition.clone_from(definition);
                self.requester.clone_from(requester);
                self.input = input.clone();
                self.roles.clone_from(roles);
                self.started_at = *at;
                self.status = Status::Running;
            }
            InstanceEvent::StepEntered {
                step,
                activation,
                branch,
                at,
                gate,
                tasks,
                assignees,
                timers,
            } => {
                self.activations.insert(step.clone(), *activation);
                for timer in timers {
                    self.set_timer(&timer.id, step, &timer.purpose, timer.due);
                }
                self.active.insert(
                    step.clone(),
                    Box::new(Active {
                        activation: *activation,
                        branch: branch.clone(),
                        entered_at: *at,
                        assignees: assignees.clone(),
                        gate: gate.clone().map(|opened| Gate {
                            opened,
                            decisions: BTreeMap::new(),
                            delegations: BTreeMap::new(),
                            escalated: Vec::new(),
                        }),
                        tasks: tasks
                            .iter()
                            .flatten()
                            .map(|t| Task {
                                opened: t.clone(),
                                closed: None,
                            })
                            .collect(),
                        escalations: 0,
                        escalated: Vec::new(),
                        last_update: *at,
                        failure: None,
                    }),
                );
            }
            InstanceEvent::StepFailed {
                step,
                activation,
                branch,
                rule,
                expression,
                error,
                version,
                definition,
                at,
            } => {
                // Whatever the step had open (a gate and its decisions, its timers) is void: it
                // waits for an operator now, for nobody else.
                self.close(step);
                self.activations.insert(step.clone(), *activation);
                self.active.insert(
                    step.clone(),
                    Box::new(Active {
                        activation: *activation,
                        branch: branch.clone(),
                        entered_at: *at,
                        assignees: Vec::new(),
                        gate: None,
                        tasks: Vec::new(),
                        escalations: 0,
                        escalated: Vec::new(),
                        last_update: *at,
                        failure: Some(Failure {
                            rule: *rule,
                            expression: expression.clone(),
                            error: error.clone(),
                            version: *version,
                            definition: definition.clone(),
                            at: *at,
                        }),
                    }),
                );
            }
            InstanceEvent::StepRetried {
                step, definition, ..
            } => {
                // The step is entered again, under the definition pinned from now on.
                self.definition.clone_from(definition);
                self.close(step);
            }
            InstanceEvent::StepCompleted { step, .. } => self.close(step),
            // As a step entered (with nothing open) and completed at once.
            InstanceEvent::StepPassed {
                step,
                activation,
                superseded,
                ..
            } => {
                self.activations.insert(step.clone(), *activation);
                self.close(step);
                for aside in superseded {
                    if let Some(values) = self.data.remove(aside) {
                        self.superseded.insert(aside.clone(), values);
                    }
                }
            }
            InstanceEvent::JoinArrived { step, branch, .. } => {
                let list = self.arrivals.entry(step.clone()).or_default();
                if !list.contains(branch) {
                    list.push(branch.clone());
                }
            }
            InstanceEvent::FormSubmitted {
                step, values, by, ..
            } => {
                self.data
                    .insert(step.clone(), Value::Object(values.clone()));
                self.superseded.remove(step);
                self.submitted_by.insert(step.clone(), by.clone());
            }
            InstanceEvent::Decided {
                step,
                by,
                verdict,
                justification,
                groups,
                escalated,
                at,
                ..
            } => {
                if let Some(gate) = self.gate_mut(step) {
                    gate.decisions.insert(
                        by.clone(),
                        Decision {
                            verdict: *verdict,
                            justification: justification.clone(),
                            groups: groups.clone(),
                            escalated: *escalated,
                            at: *at,
                        },
                    );
                }
            }
            InstanceEvent::Revoked { step, by, .. } => {
                if let Some(gate) = self.gate_mut(step) {
                    gate.decisions.remove(by);
                }
            }
            InstanceEvent::Delegated { step, from, to, .. } => {
                if let Some(gate) = self.gate_mut(step) {
                    gate.delegations.insert(from.clone(), to.clone());
                }
                if let Some(active) = self.active.get_mut(step)
                    && !active.assignees.contains(to)
                {
                    active.assignees.push(to.clone());
                }
            }
            InstanceEvent::Escalated { step, to, n, .. } => {
                self.escalations += 1;
                if let Some(active) = self.active.get_mut(step) {
                    active.escalations = *n;
                    for person in to {
                        if !active.assignees.contains(person) {
                            active.assignees.push(person.clone());
                        }
                        if !active.escalated.contains(person) {
                            active.escalated.push(person.clone());
                        }
                    }
                    if let Some(gate) = &mut active.gate {
                        for person in to {
                            if !gate.escalated.contains(person) {
                                gate.escalated.push(person.clone());
                            }
                        }
                    }
                }
            }
            InstanceEvent::TaskCompleted {
                step,
                item,
                status,
                note,
                by,
                ..
            } => {
                if let Some(task) = self
                    .active
                    .get_mut(step)
                    .and_then(|a| a.tasks.iter_mut().find(|t| &t.opened.id == item))
                {
                    task.closed = Some((*status, note.clone(), by.clone()));
                }
            }
            InstanceEvent::StatusPosted { step, at, .. } => {
                if let Some(active) = self.active.get_mut(step) {
                    active.last_update = *at;
                }
            }
            InstanceEvent::TimerScheduled {
                id,
                step,
                purpose,
                due,
            } => self.set_timer(id, step, purpose, *due),
            InstanceEvent::TimerFired { id, .. } => {
                self.timers.remove(id);
            }
            InstanceEvent::NotificationRequested { .. } => {
                self.notifications += 1;
            }
            InstanceEvent::Linked { link, .. } => {
                if !self.links.contains(link) {
                    self.links.push(link.clone());
                }
            }
            InstanceEvent::EvidenceAttached {
                name,
                hash,
                media_type,
                size,
                ..
            } => self.evidence.push(Evidence {
                name: name.clone(),
                hash: hash.clone(),
                media_type: media_type.clone(),
                size: *size,
            }),
            InstanceEvent::Ended {
                outcome,
                success,
                at,
            } => {
                self.status = Status::Ended {
                    outcome: outcome.clone(),
                    success: *success,
                    at: *at,
                };
                self.active.clear();
                self.timers.clear();
            }
            InstanceEvent::Cancelled { reason, at, .. } => {
                self.status = Status::Cancelled {
                    reason: reason.clone(),
                    at: *at,
                };
                self.active.clear();
                self.timers.clear();
            }
            InstanceEvent::Commented { .. }
            | InstanceEvent::WorkflowRequested { .. }
            | InstanceEvent::SignalReceived { .. } => {}
        }
    }

    /// A timer is pending, for `step`'s current activation.
    fn set_timer(&mut self, id: &str, step: &str, purpose: &TimerPurpose, due: Timestamp) {
        self.timers.insert(
            id.to_owned(),
            Timer {
                step: step.to_owned(),
                purpose: purpose.clone(),
                due,
            },
        );
    }

    /// A step's activation ended: it is no longer active, its timers are void, its join round
    /// is over.
    fn close(&mut self, step: &str) {
        self.active.remove(step);
        self.timers.retain(|_, t| t.step != step);
        self.arrivals.remove(step);
    }

    fn gate_mut(&mut self, step: &str) -> Option<&mut Gate> {
        self.active.get_mut(step).and_then(|a| a.gate.as_mut())
    }
}
