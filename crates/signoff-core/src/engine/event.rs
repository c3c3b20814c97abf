//! The facts an instance's stream records. Each variant is one CloudEvents `type`; its payload is
//! the event's `data`. Everything the state needs is in the payload (times included), so
//! replaying the events gives exactly the state that was live.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::{EventData, Timestamp};

/// A link from one instance to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The other instance.
    pub instance: String,
    /// Its workflow.
    pub workflow: String,
    /// What the other instance is to this one: `parent`, `child`, `triggered_by`, `triggered`.
    pub relation: String,
}

/// One approver group as the gate opened it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOpened {
    /// Name shown in the gate's progress.
    pub name: String,
    /// The role the group stands for, if any (delegation stays within it).
    pub role: Option<String>,
    /// Who may approve for this group, resolved when the gate opened.
    pub eligible: Vec<String>,
    /// Approvals needed.
    pub needed: u32,
}

/// A gate as it opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateOpened {
    /// The groups.
    pub groups: Vec<GroupOpened>,
    /// People who may not decide (separation of duties), with the requester unless allowed.
    pub excluded: Vec<String>,
    /// When it expires, if it has a deadline.
    pub deadline: Option<Timestamp>,
}

impl GateOpened {
    /// The groups that cannot gather the approvals they need from the people eligible when the
    /// gate opened ("change board needs 2 but has 1 eligible"): empty for a gate that can close.
    #[must_use]
    pub fn short(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.eligible.len() < g.needed as usize)
            .map(|g| {
                format!(
                    "{} needs {} but has {} eligible",
                    g.name,
                    g.needed,
                    g.eligible.len()
                )
            })
            .collect()
    }
}

/// One task as the checklist opened it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOpened {
    /// Identifier in the step.
    pub id: String,
    /// What to do.
    pub title: String,
    /// Who may complete it.
    pub owners: Vec<String>,
    /// When it is due.
    pub due: Option<Timestamp>,
    /// Whether the step waits for it.
    pub required: bool,
}

/// Why a timer exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TimerPurpose {
    /// The gate's deadline.
    Deadline,
    /// A reminder to undecided approvers.
    Reminder,
    /// The n-th escalation (from 1).
    Escalation {
        /// Which one.
        n: u32,
    },
    /// The end of a wait.
    Wait,
    /// A signal wait's timeout.
    Timeout,
    /// A task's due time.
    TaskDue {
        /// The task.
        item: String,
    },
    /// The recurring reminder of open tasks.
    TaskReminder,
    /// A status update is due.
    StatusUpdate,
}

/// A timer set as its step was entered (recorded in the `signoff.step.entered` event, so a gate's
/// deadline and reminders are one fact with its opening, not one event each).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerSet {
    /// Unique in the instance.
    pub id: String,
    /// Why.
    pub purpose: TimerPurpose,
    /// When it fires.
    pub due: Timestamp,
}

/// The kind of rule of a definition that could not be evaluated, stopping its step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A gate's separation of duties: `separation.exclude`.
    Exclusion,
    /// An approver group's `when` predicate.
    ApproverPredicate,
    /// A branch case's `when` condition.
    BranchCondition,
    /// A wait's `until` time.
    WaitUntil,
    /// A notification's subject or body template.
    Template,
    /// An input of a workflow a `start_workflow` step starts.
    WorkflowInput,
}

impl Rule {
    /// The rule as a person reads it: "the separation-of-duties exclusion".
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Exclusion => "the separation-of-duties exclusion",
            Self::ApproverPredicate => "an approver predicate",
            Self::BranchCondition => "a branch condition",
            Self::WaitUntil => "the wait's until time",
            Self::Template => "a notification template",
            Self::WorkflowInput => "an input of the workflow to start",
        }
    }
}

/// A decision on a gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Approve.
    Approve,
    /// Reject.
    Reject,
}

impl Verdict {
    /// The verdict as written in commands and the log: `approve` or `reject`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }

    /// The verdict as a person reads it after the fact: "approved" or "rejected".
    #[must_use]
    pub fn past(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject => "rejected",
        }
    }
}

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Done.
    Done,
    /// Explicitly not done, with a reason.
    NotDoing,
}

/// Every fact of an instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum InstanceEvent {
    /// The instance began.
    #[serde(rename = "signoff.instance.started")]
    Started {
        /// The workflow id.
        workflow: String,
        /// The content hash of the definition it runs (pinned).
        definition: String,
        /// Who asked for it.
        requester: String,
        /// Input given at start.
        input: Value,
        /// Roles handed on by the instance whose event started this one: each held here by
        /// exactly these people, not by the directory's holders.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        roles: BTreeMap<String, Vec<String>>,
        /// When.
        at: Timestamp,
    },
    /// A step became active.
    #[serde(rename = "signoff.step.entered")]
    StepEntered {
        /// The step.
        step: String,
        /// How many times it has been entered, from 1 (loops enter again).
        activation: u32,
        /// The parallel branch it runs in: `parallel-step#index`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
        /// When.
        at: Timestamp,
        /// For a gate: its approvers as resolved now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gate: Option<GateOpened>,
        /// For a checklist: its tasks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tasks: Option<Vec<TaskOpened>>,
        /// Who the step waits for (form fillers, approvers, owners), for inboxes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        assignees: Vec<String>,
        /// The timers its entry set: deadline, reminders, escalation, wait, due times. Each is
        /// void once this activation ends, like one set by `signoff.timer.scheduled`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        timers: Vec<TimerSet>,
    },
    /// A step that waits for nobody (a branch, a notification, a fork or join, a start, an end,
    /// a wait already over) was entered and completed at once: one fact, where a step that
    /// waits records `signoff.step.entered` and later `signoff.step.completed`.
    #[serde(rename = "signoff.step.passed")]
    StepPassed {
        /// The step.
        step: String,
        /// How many times it has been entered, from 1 (loops enter again).
        activation: u32,
        /// The parallel branch it runs in: `parallel-step#index`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
        /// How it ended: `case 1`, `default`, `sent`, `forked`, `joined`, `started`, `waited`,
        /// `done`, or an end step's outcome.
        outcome: String,
        /// The step taken next, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
        /// For a branch: the steps of the paths not taken whose answers are set aside (kept as
        /// superseded, no longer current: an expression or a reader never takes them for
        /// answers of the path the instance is on).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        superseded: Vec<String>,
        /// When.
        at: Timestamp,
    },
    /// A step is done.
    #[serde(rename = "signoff.step.completed")]
    StepCompleted {
        /// The step.
        step: String,
        /// How it ended: `submitted`, `approved`, `rejected`, `expired`, `done`, `waited`,
        /// `signalled`, `case 1`, `default`, `sent`, `started`, `joined`, `closed`…
        outcome: String,
        /// The step taken next, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// A rule of the step could not be evaluated: the step stopped there, taking no path,
    /// opening nothing and admitting nobody, until an operator retries it or the instance is
    /// cancelled. An error in an approval engine must never open a door.
    #[serde(rename = "signoff.step.failed")]
    StepFailed {
        /// The step.
        step: String,
        /// The activation that failed (entering the step counts as one).
        activation: u32,
        /// The parallel branch it runs in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
        /// What kind of rule.
        rule: Rule,
        /// The expression or template, as written in the definition.
        expression: String,
        /// Why it could not be evaluated.
        error: String,
        /// The instance's version (events applied) whose data the rule read.
        version: u64,
        /// The definition it was evaluated under.
        definition: String,
        /// When.
        at: Timestamp,
    },
    /// An operator retried a failed step: the instance pins `definition` from now on (the
    /// definition as fixed), and the step is entered again under it.
    #[serde(rename = "signoff.step.retried")]
    StepRetried {
        /// The step.
        step: String,
        /// The definition pinned from now on.
        definition: String,
        /// The definition pinned until now.
        previous: String,
        /// Who retried.
        by: String,
        /// When.
        at: Timestamp,
    },
    /// A parallel branch reached its join.
    #[serde(rename = "signoff.join.arrived")]
    JoinArrived {
        /// The join step.
        step: String,
        /// The branch that arrived.
        branch: String,
        /// When.
        at: Timestamp,
    },
    /// A form was filled in.
    #[serde(rename = "signoff.form.submitted")]
    FormSubmitted {
        /// The step.
        step: String,
        /// The values, checked against the form.
        values: Map<String, Value>,
        /// Who.
        by: String,
        /// When.
        at: Timestamp,
    },
    /// An approver decided.
    #[serde(rename = "signoff.approval.decided")]
    Decided {
        /// The gate.
        step: String,
        /// The verified person.
        by: String,
        /// Approve or reject.
        verdict: Verdict,
        /// Their justification.
        justification: String,
        /// The roles they held when deciding.
        roles: Vec<String>,
        /// The groups they count for.
        groups: Vec<String>,
        /// Decided as an escalation target (counts for the whole gate).
        #[serde(default)]
        escalated: bool,
        /// The person who delegated to them, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<String>,
        /// Hash of exactly what they were shown: the instance's data and evidence at this version.
        shown: String,
        /// When.
        at: Timestamp,
    },
    /// An approver took back their decision before the gate closed.
    #[serde(rename = "signoff.approval.revoked")]
    Revoked {
        /// The gate.
        step: String,
        /// Who.
        by: String,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// An approver handed their decision to another holder of the role.
    #[serde(rename = "signoff.approval.delegated")]
    Delegated {
        /// The gate.
        step: String,
        /// Who delegated.
        from: String,
        /// To whom.
        to: String,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// A step was escalated to more people.
    #[serde(rename = "signoff.step.escalated")]
    Escalated {
        /// The step.
        step: String,
        /// Who it was escalated to.
        to: Vec<String>,
        /// Which escalation (from 1).
        n: u32,
        /// When.
        at: Timestamp,
    },
    /// A task was completed or marked as not being done.
    #[serde(rename = "signoff.task.completed")]
    TaskCompleted {
        /// The checklist step.
        step: String,
        /// The task.
        item: String,
        /// Done or not doing.
        status: TaskStatus,
        /// A note (the reason, for not doing).
        note: String,
        /// Who.
        by: String,
        /// When.
        at: Timestamp,
    },
    /// A status update was posted.
    #[serde(rename = "signoff.status.posted")]
    StatusPosted {
        /// The step whose cadence it serves.
        step: String,
        /// The update.
        text: String,
        /// Who.
        by: String,
        /// When.
        at: Timestamp,
    },
    /// A comment.
    #[serde(rename = "signoff.comment.added")]
    Commented {
        /// The text.
        text: String,
        /// Who.
        by: String,
        /// When.
        at: Timestamp,
    },
    /// A timer was set after its step's entry (a reminder re-armed, the next escalation, a status
    /// update due). Timers set on entry are in `signoff.step.entered`.
    #[serde(rename = "signoff.timer.scheduled")]
    TimerScheduled {
        /// Unique in the instance.
        id: String,
        /// The step it belongs to (it is void once that activation ends).
        step: String,
        /// Why.
        purpose: TimerPurpose,
        /// When it fires.
        due: Timestamp,
    },
    /// A timer fired (exactly once).
    #[serde(rename = "signoff.timer.fired")]
    TimerFired {
        /// The timer.
        id: String,
        /// When.
        at: Timestamp,
    },
    /// Someone is to be told something. The outbox delivers it through their channels.
    #[serde(rename = "signoff.notification.requested")]
    NotificationRequested {
        /// Unique in the instance.
        id: String,
        /// Person ids.
        to: Vec<String>,
        /// Subject.
        subject: String,
        /// Body.
        body: String,
        /// The step it concerns, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        /// Why: `notify`, `approval_requested`, `form_requested`, `task_assigned`, `reminder`,
        /// `escalation`, `outcome`, `status_update_due`…
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// Another workflow is to be started, linked to this one.
    #[serde(rename = "signoff.workflow.requested")]
    WorkflowRequested {
        /// The step that asked.
        step: String,
        /// The workflow to start.
        workflow: String,
        /// Its input.
        input: Value,
        /// When.
        at: Timestamp,
    },
    /// This instance was linked to another.
    #[serde(rename = "signoff.instance.linked")]
    Linked {
        /// The link.
        link: Link,
        /// When.
        at: Timestamp,
    },
    /// Evidence was attached: its content is stored by hash, the hash is here.
    #[serde(rename = "signoff.evidence.attached")]
    EvidenceAttached {
        /// Name shown to people (`plan.txt`, `risk report`).
        name: String,
        /// `sha256:<hex>` of the content.
        hash: String,
        /// Media type.
        media_type: String,
        /// Size in bytes.
        size: u64,
        /// Who.
        by: String,
        /// When.
        at: Timestamp,
    },
    /// A signal arrived.
    #[serde(rename = "signoff.signal.received")]
    SignalReceived {
        /// Its name.
        name: String,
        /// Who sent it.
        by: String,
        /// When.
        at: Timestamp,
    },
    /// The instance ended.
    #[serde(rename = "signoff.instance.ended")]
    Ended {
        /// The outcome.
        outcome: String,
        /// Whether it is a success.
        success: bool,
        /// When.
        at: Timestamp,
    },
    /// The instance was cancelled.
    #[serde(rename = "signoff.instance.cancelled")]
    Cancelled {
        /// Why.
        reason: String,
        /// Who.
        by: String,
        /// When.
        at: Timestamp,
    },
}

/// Every instance event type, with its schema version (all 1 so far).
pub const TYPES: [&str; 25] = [
    "signoff.instance.started",
    "signoff.step.entered",
    "signoff.step.passed",
    "signoff.step.completed",
    "signoff.join.arrived",
    "signoff.form.submitted",
    "signoff.approval.decided",
    "signoff.approval.revoked",
    "signoff.approval.delegated",
    "signoff.step.escalated",
    "signoff.task.completed",
    "signoff.status.posted",
    "signoff.comment.added",
    "signoff.timer.scheduled",
    "signoff.timer.fired",
    "signoff.notification.requested",
    "signoff.workflow.requested",
    "signoff.instance.linked",
    "signoff.evidence.attached",
    "signoff.signal.received",
    "signoff.instance.ended",
    "signoff.instance.cancelled",
    "signoff.security.refused",
    "signoff.step.failed",
    "signoff.step.retried",
];

impl InstanceEvent {
    /// Splits the event into its CloudEvents `type` and `data`.
    ///
    /// # Errors
    /// Never in practice: every payload is plain data.
    pub fn to_parts(&self) -> Result<(String, Value), String> {
        let value = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let Value::Object(mut map) = value else {
            return Err("event did not serialise to an object".into());
        };
        let ty = match map.remove("type") {
            Some(Value::String(ty)) => ty,
            _ => return Err("event has no type".into()),
        };
        Ok((ty, map.remove("data").unwrap_or(Value::Null)))
    }

    /// The event's type and its data as JSON text, as the log stores them: what
    /// [`InstanceEvent::to_parts`] gives, written straight to text instead of through a tree of
    /// JSON values (that detour was a twentieth of the CPU of `signoff bench workflows`).
    ///
    /// # Errors
    /// Never in practice: every payload is plain data.
    pub fn to_text_parts(&self) -> Result<(String, String), String> {
        // Adjacently tagged, so serde_json writes `{"type":"<type>","data":<data>}`, or
        // `{"type":"<type>"}` for an event without data; type names need no escaping.
        let text = serde_json::to_string(self).map_err(|e| e.to_string())?;
        let rest = text
            .strip_prefix(r#"{"type":""#)
            .ok_or("event did not serialise as type and data")?;
        let (ty, rest) = rest
            .split_once('"')
            .ok_or("event did not serialise as type and data")?;
        let data = match rest.strip_prefix(r#","data":"#) {
            Some(data) => data
                .strip_suffix('}')
                .ok_or("event did not serialise as type and data")?,
            None if rest == "}" => "null",
            None => return Err("event did not serialise as type and data".into()),
        };
        let parts = (ty.to_owned(), data.to_owned());
        // Both read back through text, so a computed float is parsed from the same digits.
        debug_assert_eq!(
            self.to_parts().ok().and_then(|(ty, data)| Some((
                ty,
                serde_json::from_str::<Value>(&data.to_string()).ok()?
            ))),
            serde_json::from_str::<Value>(&parts.1)
                .ok()
                .map(|data| (parts.0.clone(), data)),
            "the text form of an event must say what its value form says"
        );
        Ok(parts)
    }

    /// The event as the log stores it: its type, and its data as JSON text. serde_json wrote
    /// the text from a typed value, so it is not parsed again to be checked (that was a
    /// fiftieth of the CPU of `signoff bench workflows`); only its size is.
    ///
    /// # Errors
    /// When the data is larger than an event may be.
    pub fn to_log_parts(&self) -> Result<(String, EventData), String> {
        let (ty, data) = self.to_text_parts()?;
        let data = EventData::from_written(data).map_err(|e| e.to_string())?;
        Ok((ty, data))
    }

    /// Whether the event holds a floating-point number (in form values or an input). Such a
    /// number may not read back from its JSON text bit for bit; every other number is an
    /// integer and does.
    #[must_use]
    pub fn holds_float(&self) -> bool {
        fn float_in(value: &Value) -> bool {
            match value {
                Value::Number(n) => n.is_f64(),
                Value::Array(items) => items.iter().any(float_in),
                Value::Object(map) => map.values().any(float_in),
                Value::Null | Value::Bool(_) | Value::String(_) => false,
            }
        }
        // Every variant named: one added with a JSON value must be looked at here.
        match self {
            Self::FormSubmitted { values, .. } => values.values().any(float_in),
            Self::Started { input, .. } | Self::WorkflowRequested { input, .. } => float_in(input),
            Self::StepEntered { .. }
            | Self::StepPassed { .. }
            | Self::StepCompleted { .. }
            | Self::StepFailed { .. }
            | Self::StepRetried { .. }
            | Self::JoinArrived { .. }
            | Self::Decided { .. }
            | Self::Revoked { .. }
            | Self::Delegated { .. }
            | Self::Escalated { .. }
            | Self::TaskCompleted { .. }
            | Self::StatusPosted { .. }
            | Self::Commented { .. }
            | Self::TimerScheduled { .. }
            | Self::TimerFired { .. }
            | Self::NotificationRequested { .. }
            | Self::Linked { .. }
            | Self::EvidenceAttached { .. }
            | Self::SignalReceived { .. }
            | Self::Ended { .. }
            | Self::Cancelled { .. } => false,
        }
    }

    /// Reads an event back from its `type` and `data` text.
    ///
    /// # Errors
    /// When the type is not an instance event or the data does not fit it.
    pub fn from_parts(ty: &str, data: &str) -> Result<Self, String> {
        let data: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
        let mut map = Map::new();
        map.insert("type".into(), Value::String(ty.to_owned()));
        map.insert("data".into(), data);
        serde_json::from_value(Value::Object(map)).map_err(|e| format!("{ty}: {e}"))
    }
}

/// A refused command recorded for auditors: someone tried to act without the right to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityRefusal {
    /// The instance concerned.
    pub instance: String,
    /// Its workflow.
    pub workflow: String,
    /// The step, if any.
    pub step: Option<String>,
    /// The command, e.g. `decide`.
    pub command: String,
    /// Who tried.
    pub person: String,
    /// Through which channel.
    pub channel: String,
    /// The refusal as the person read it.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// Type of [`SecurityRefusal`] events, in the `security` stream.
pub const SECURITY_REFUSED: &str = "signoff.security.refused";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_into_type_and_data_and_back() {
        let event = InstanceEvent::Commented {
            text: "looks fine".into(),
            by: "alice".into(),
            at: Timestamp(5),
        };
        let (ty, data) = event.to_parts().unwrap_or_default();
        assert_eq!(ty, "signoff.comment.added");
        assert_eq!(
            data,
            serde_json::json!({"text": "looks fine", "by": "alice", "at": 5})
        );
        assert_eq!(
            InstanceEvent::from_parts(&ty, &data.to_string()),
            Ok(event.clone())
        );
        assert!(InstanceEvent::from_parts("signoff.nope", "{}").is_err());
        let (ty, text) = event.to_log_parts().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ty, "signoff.comment.added");
        assert_eq!(
            text.as_str(),
            r#"{"text":"looks fine","by":"alice","at":5}"#
        );
    }

    #[test]
    fn floats_are_found_in_form_values_and_inputs_only() {
        let submitted = |values: serde_json::Value| InstanceEvent::FormSubmitted {
            step: "request".into(),
            values: values.as_object().cloned().unwrap_or_default(),
            by: "rita".into(),
            at: Timestamp(1_500),
        };
        for (values, float) in [
            (
                serde_json::json!({"a": 1, "b": [2, -3], "c": true, "d": null}),
                false,
            ),
            (serde_json::json!({"a": 1.5}), true),
            (
                serde_json::json!({"risks": [{"score": 3}, {"score": 2.5}]}),
                true,
            ),
            (serde_json::json!({"n": -0.0}), true),
            (
                serde_json::json!({"text": "1.5 and 2e3", "version": "v1.2.3"}),
                false,
            ),
        ] {
            assert_eq!(submitted(values.clone()).holds_float(), float, "{values}");
        }
        let started = |input| InstanceEvent::Started {
            workflow: "w".into(),
            definition: "sha256:00".into(),
            requester: "rita".into(),
            input,
            roles: BTreeMap::new(),
            at: Timestamp(0),
        };
        assert!(started(serde_json::json!({"confidence": 0.93})).holds_float());
        assert!(!started(serde_json::json!({"confidence": 93})).holds_float());
    }
}
