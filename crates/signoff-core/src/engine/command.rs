//! What people (and the runtime's timers) ask of an instance, who asks, and why it may be refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event::{TaskStatus, Verdict};
use crate::event::Timestamp;

/// A request to change an instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum Command {
    /// Start a new instance (the instance id is made by the runtime).
    Start {
        /// Input values, available to expressions as `input`.
        #[serde(default)]
        input: Value,
        /// Roles the engine hands on to this instance from the one whose event started it
        /// (a trigger's `roles`): each held, in this instance, by exactly these people. Set by
        /// the engine only; no client request carries it.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        roles: BTreeMap<String, Vec<String>>,
    },
    /// Fill in a form step.
    Submit {
        /// The form step.
        step: String,
        /// Field values.
        values: Map<String, Value>,
    },
    /// Approve or reject at a gate.
    Decide {
        /// The gate.
        step: String,
        /// Approve or reject.
        verdict: Verdict,
        /// Why.
        #[serde(default)]
        justification: String,
        /// The view hash the person was shown; refused if the instance changed since.
        #[serde(default)]
        shown: Option<String>,
    },
    /// Take back one's decision while the gate is open.
    Revoke {
        /// The gate.
        step: String,
        /// Why.
        reason: String,
    },
    /// Hand one's decision to another holder of the role.
    Delegate {
        /// The gate.
        step: String,
        /// To whom.
        to: String,
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// Complete a task, or mark it as not being done.
    Complete {
        /// The checklist step.
        step: String,
        /// The task.
        item: String,
        /// Done or not doing.
        status: TaskStatus,
        /// A note; the reason, for not doing.
        #[serde(default)]
        note: String,
    },
    /// Post a status update.
    PostStatus {
        /// The step whose cadence it serves (default: the one active step with a cadence).
        #[serde(default)]
        step: Option<String>,
        /// The update.
        text: String,
    },
    /// Add a comment.
    Comment {
        /// The text.
        text: String,
    },
    /// Send a signal a wait step may be waiting for.
    Signal {
        /// Its name.
        name: String,
    },
    /// Attach evidence (its content is stored by the runtime, by hash).
    Attach {
        /// Name.
        name: String,
        /// Content hash.
        hash: String,
        /// Media type.
        media_type: String,
        /// Size.
        size: u64,
    },
    /// Link this instance to another (done by the runtime for started and triggered workflows).
    Link {
        /// The other instance.
        instance: String,
        /// Its workflow.
        workflow: String,
        /// What it is to this one.
        relation: String,
    },
    /// Cancel the instance.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Enter again a step a rule stopped (`signoff.step.failed`), under the workflow's current
    /// definition: an operator's answer once the definition is fixed.
    Retry {
        /// The stopped step.
        step: String,
    },
    /// Fire a due timer (the runtime's timer reactor only).
    FireTimer {
        /// The timer.
        id: String,
    },
}

impl Command {
    /// The command's name as people see it (`decide`, `submit`…).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Start { .. } => "start",
            Self::Submit { .. } => "submit",
            Self::Decide { .. } => "decide",
            Self::Revoke { .. } => "revoke",
            Self::Delegate { .. } => "delegate",
            Self::Complete { .. } => "complete",
            Self::PostStatus { .. } => "post-status",
            Self::Comment { .. } => "comment",
            Self::Signal { .. } => "signal",
            Self::Attach { .. } => "attach",
            Self::Link { .. } => "link",
            Self::Cancel { .. } => "cancel",
            Self::Retry { .. } => "retry",
            Self::FireTimer { .. } => "fire-timer",
        }
    }

    /// The step it is about, if any.
    #[must_use]
    pub fn step(&self) -> Option<&str> {
        match self {
            Self::Submit { step, .. }
            | Self::Decide { step, .. }
            | Self::Revoke { step, .. }
            | Self::Delegate { step, .. }
            | Self::Complete { step, .. }
            | Self::Retry { step } => Some(step),
            Self::PostStatus { step, .. } => step.as_deref(),
            _ => None,
        }
    }
}

/// The verified person (or service) acting, as the directory knows them now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Person id (`system` for the engine itself).
    pub id: String,
    /// Directory roles held now.
    pub roles: BTreeSet<String>,
    /// Team, if any.
    pub team: Option<String>,
    /// The workflows the credential they act through may touch (a token issued with
    /// `--workflow`); none named: every workflow. Outside it nothing is read or changed,
    /// whatever the person's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflows: Option<BTreeSet<String>>,
}

impl Actor {
    /// Whether the credential they act through reaches `workflow` (see [`Actor::workflows`]).
    #[must_use]
    pub fn may_touch(&self, workflow: &str) -> bool {
        self.workflows
            .as_ref()
            .is_none_or(|scope| scope.contains(workflow))
    }

    /// The refusal for a workflow outside [`Actor::workflows`].
    #[must_use]
    pub fn out_of_scope(&self, workflow: &str) -> String {
        let named = self
            .workflows
            .iter()
            .flatten()
            .map(|w| format!("{w:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "the token {} acts through is for workflow {named} only, not {workflow:?}",
            self.id
        )
    }

    /// The engine itself (timers, triggers).
    #[must_use]
    pub fn system() -> Self {
        Self {
            id: SYSTEM.to_owned(),
            ..Self::default()
        }
    }
}

/// The actor id of the engine itself.
pub const SYSTEM: &str = "system";

/// The directory role of the people who run signoff: they may retry a step a rule stopped (and
/// so re-pin its instance to the current definition), which its participants may not.
pub const OPERATOR: &str = "operator";

/// What the core may ask of the directory: pure lookups on a snapshot the runtime holds.
pub trait People {
    /// Ids of the people who hold `role`, sorted.
    fn holders(&self, role: &str) -> Vec<String>;
    /// Whether `person` holds `role`.
    fn holds(&self, person: &str, role: &str) -> bool;
    /// Whether `person` exists.
    fn exists(&self, person: &str) -> bool;
    /// The person's roles and team, for approver predicates.
    fn profile(&self, person: &str) -> Option<Actor>;
    /// The person's name as people read it, if the directory gives one.
    fn name(&self, _person: &str) -> Option<String> {
        None
    }
}

/// Everything a decision may depend on besides the state and the command.
pub struct Context<'a> {
    /// Now (the core never reads the clock).
    pub now: Timestamp,
    /// Who acts.
    pub actor: &'a Actor,
    /// The directory as it is now.
    pub people: &'a dyn People,
}

/// Why a command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionKind {
    /// The actor may not do this (recorded in the security stream).
    Forbidden,
    /// The input is wrong (a form value, a missing justification…).
    Invalid,
    /// The step or instance is not in a state that allows it (closed gate, ended instance).
    Closed,
    /// Something named does not exist (a step, a task, a timer).
    NotFound,
}

/// A refused command: the kind, and a sentence for the person who tried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    /// What kind of refusal.
    pub kind: RejectionKind,
    /// What was refused, why, and what to do.
    pub message: String,
    /// The form field at fault, for invalid values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Rejection {
    /// The actor may not do this.
    pub fn forbidden(message: impl fmt::Display) -> Self {
        Self::of(RejectionKind::Forbidden, message)
    }

    /// The input is wrong.
    pub fn invalid(message: impl fmt::Display) -> Self {
        Self::of(RejectionKind::Invalid, message)
    }

    /// Not now.
    pub fn closed(message: impl fmt::Display) -> Self {
        Self::of(RejectionKind::Closed, message)
    }

    /// No such thing.
    pub fn not_found(message: impl fmt::Display) -> Self {
        Self::of(RejectionKind::NotFound, message)
    }

    fn of(kind: RejectionKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
            field: None,
        }
    }

    /// Names the form field at fault.
    #[must_use]
    pub fn at_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl People for crate::directory::Directory {
    fn holders(&self, role: &str) -> Vec<String> {
        crate::directory::Directory::holders(self, role)
    }

    fn holds(&self, person: &str, role: &str) -> bool {
        crate::directory::Directory::holds(self, person, role)
    }

    fn exists(&self, person: &str) -> bool {
        self.person(person).is_some()
    }

    fn profile(&self, person: &str) -> Option<Actor> {
        self.person(person).map(|p| Actor {
            id: p.id.clone(),
            roles: p.roles.clone(),
            team: p.team.clone(),
            workflows: None,
        })
    }

    fn name(&self, person: &str) -> Option<String> {
        self.person(person)
            .map(|p| p.name.clone())
            .filter(|name| !name.trim().is_empty())
    }
}
