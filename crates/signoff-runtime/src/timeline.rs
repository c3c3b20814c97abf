//! The timeline of an instance as people read it: one line per event saying who did what, when,
//! and through which channel. The CLI, the web pages and the chat adapters all print this.

use serde::{Deserialize, Serialize};
use signoff_core::engine::{InstanceEvent, TaskStatus, TimerPurpose};
use signoff_core::{RecordedEvent, Timestamp};

/// One line of a timeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Line {
    /// The event's global sequence.
    pub sequence: u64,
    /// Its version in the instance's stream.
    pub version: u64,
    /// When it was recorded.
    pub time: Timestamp,
    /// Who caused it (a person id, or `system`).
    pub actor: String,
    /// Through which channel (`cli`, `web`, `discord`, `email`, `timer`…).
    pub channel: String,
    /// What on that channel caused it, where it says (`link:<id>` for an email's decision
    /// link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The event type.
    #[serde(rename = "type")]
    pub ty: String,
    /// What happened, as a sentence.
    pub summary: String,
}

impl Line {
    /// The line of one recorded event.
    #[must_use]
    pub fn new(record: &RecordedEvent, event: &InstanceEvent) -> Self {
        Self {
            sequence: record.sequence,
            version: record.version,
            time: record.time,
            actor: record.metadata.actor.clone(),
            channel: record.metadata.channel.clone(),
            cause: record.metadata.causation_id.clone(),
            ty: record.ty.as_str().to_owned(),
            summary: summary(event),
        }
    }
}

fn quoted(text: &str) -> String {
    const MAX: usize = 120;
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    format!("{out:?}")
}

/// At most 120 characters of `text` (an expression, an error), on one line.
fn cut(text: &str) -> String {
    const MAX: usize = 120;
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(MAX).collect();
    if one_line.chars().count() > MAX {
        out.push('…');
    }
    out
}

/// What an event says, as a sentence.
#[must_use]
pub fn summary(event: &InstanceEvent) -> String {
    match event {
        InstanceEvent::Started {
            workflow,
            requester,
            definition,
            ..
        } => format!("{requester} started {workflow} (definition {definition})"),
        InstanceEvent::StepEntered {
            step,
            assignees,
            timers,
            ..
        } => {
            let mut s = format!("step {step} entered");
            if !assignees.is_empty() {
                s.push_str(&format!("; waiting for {}", assignees.join(", ")));
            }
            if !timers.is_empty() {
                let set: Vec<String> = timers
                    .iter()
                    .map(|t| format!("{} {}", purpose_name(&t.purpose), t.due.to_rfc3339()))
                    .collect();
                s.push_str(&format!("; timers: {}", set.join(", ")));
            }
            s
        }
        InstanceEvent::StepPassed {
            step,
            outcome,
            next,
            superseded,
            ..
        } => {
            let mut s = went_on(step, "passed", outcome, next.as_deref());
            if !superseded.is_empty() {
                s.push_str(&format!(
                    "; answers of {} superseded (a path no longer taken)",
                    superseded.join(", ")
                ));
            }
            s
        }
        InstanceEvent::StepCompleted {
            step,
            outcome,
            next,
            ..
        } => went_on(step, "completed", outcome, next.as_deref()),
        InstanceEvent::StepFailed {
            step,
            rule,
            expression,
            error,
            version,
            ..
        } => format!(
            "step {step} stopped: {} `{}` could not be evaluated at version {version}: {}; an \
             operator may retry it once the definition is fixed, or the instance be cancelled",
            rule.describe(),
            cut(expression),
            cut(error)
        ),
        InstanceEvent::StepRetried {
            step,
            by,
            definition,
            previous,
            ..
        } => {
            if definition == previous {
                format!("{by} retried step {step} (same definition)")
            } else {
                format!("{by} retried step {step} under definition {definition}")
            }
        }
        InstanceEvent::JoinArrived { step, branch, .. } => {
            format!("branch {branch} arrived at {step}")
        }
        InstanceEvent::FormSubmitted {
            step, by, values, ..
        } => format!(
            "{by} submitted {step} ({} field{})",
            values.len(),
            if values.len() == 1 { "" } else { "s" }
        ),
        InstanceEvent::Decided {
            step,
            by,
            verdict: v,
            justification,
            roles,
            groups,
            on_behalf_of,
            escalated,
            ..
        } => {
            let mut s = format!("{by} {} {step}", v.past());
            // The groups it counted for say more than every role the person holds.
            if !groups.is_empty() {
                s.push_str(&format!(" for {}", groups.join(", ")));
            } else if !roles.is_empty() {
                s.push_str(&format!(" as {}", roles.join(", ")));
            }
            if let Some(other) = on_behalf_of {
                s.push_str(&format!(" on behalf of {other}"));
            }
            if *escalated {
                s.push_str(" (escalation)");
            }
            if !justification.is_empty() {
                s.push_str(&format!(": {}", quoted(justification)));
            }
            s
        }
        InstanceEvent::Revoked {
            step, by, reason, ..
        } => format!("{by} revoked their decision on {step}: {}", quoted(reason)),
        InstanceEvent::Delegated { step, from, to, .. } => {
            format!("{from} delegated their decision on {step} to {to}")
        }
        InstanceEvent::Escalated { step, to, n, .. } => {
            format!("{step} escalated (#{n}) to {}", to.join(", "))
        }
        InstanceEvent::TaskCompleted {
            step,
            item,
            status,
            note,
            by,
            ..
        } => {
            let what = match status {
                TaskStatus::Done => "done",
                TaskStatus::NotDoing => "not doing",
            };
            let mut s = format!("{by} marked {step}/{item} {what}");
            if !note.is_empty() {
                s.push_str(&format!(": {}", quoted(note)));
            }
            s
        }
        InstanceEvent::StatusPosted { by, text, .. } => {
            format!("{by} posted a status update: {}", quoted(text))
        }
        InstanceEvent::Commented { by, text, .. } => format!("{by} commented: {}", quoted(text)),
        InstanceEvent::TimerScheduled {
            step, purpose, due, ..
        } => format!(
            "{} for {step} set for {}",
            purpose_name(purpose),
            due.to_rfc3339()
        ),
        InstanceEvent::TimerFired { id, .. } => format!("timer {id} fired"),
        InstanceEvent::NotificationRequested {
            to,
            subject,
            reason,
            ..
        } => format!("{} told ({reason}): {}", to.join(", "), quoted(subject)),
        InstanceEvent::WorkflowRequested { step, workflow, .. } => {
            format!("{step} asked to start {workflow}")
        }
        InstanceEvent::Linked { link, .. } => format!(
            "linked to {} {} ({})",
            link.workflow, link.instance, link.relation
        ),
        InstanceEvent::EvidenceAttached {
            name,
            hash,
            size,
            by,
            ..
        } => format!("{by} attached {name} ({size} bytes, {hash})"),
        InstanceEvent::SignalReceived { name, by, .. } => format!("{by} sent signal {name}"),
        InstanceEvent::Ended {
            outcome, success, ..
        } => format!(
            "ended: {outcome}{}",
            if *success { "" } else { " (not a success)" }
        ),
        InstanceEvent::Cancelled { reason, by, .. } => {
            format!("{by} cancelled it: {}", quoted(reason))
        }
    }
}

/// "step review completed (approved); next: window".
fn went_on(step: &str, verb: &str, outcome: &str, next: Option<&str>) -> String {
    match next {
        Some(next) => format!("step {step} {verb} ({outcome}); next: {next}"),
        None => format!("step {step} {verb} ({outcome})"),
    }
}

fn purpose_name(purpose: &TimerPurpose) -> String {
    match purpose {
        TimerPurpose::Escalation { n } => format!("escalation #{n}"),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "timer".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signoff_core::engine::{TimerSet, Verdict};

    #[test]
    fn a_decision_says_who_as_what_and_why() {
        let event = InstanceEvent::Decided {
            step: "cab".into(),
            by: "bea".into(),
            verdict: Verdict::Reject,
            justification: "no rollback plan".into(),
            roles: vec!["change-board".into(), "legal".into()],
            groups: vec!["board".into()],
            escalated: false,
            on_behalf_of: Some("ben".into()),
            shown: "sha256:00".into(),
            at: Timestamp(0),
        };
        assert_eq!(
            summary(&event),
            "bea rejected cab for board on behalf of ben: \"no rollback plan\""
        );
    }

    #[test]
    fn an_entry_names_its_timers_and_a_passed_step_its_way_on() {
        let event = InstanceEvent::StepEntered {
            step: "review".into(),
            activation: 1,
            branch: None,
            at: Timestamp(0),
            gate: None,
            tasks: None,
            assignees: vec!["bob".into(), "bea".into()],
            timers: vec![
                TimerSet {
                    id: "review#1:deadline".into(),
                    purpose: TimerPurpose::Deadline,
                    due: Timestamp(86_400_000_000),
                },
                TimerSet {
                    id: "review#1:escalation-1".into(),
                    purpose: TimerPurpose::Escalation { n: 1 },
                    due: Timestamp(3_600_000_000),
                },
            ],
        };
        assert_eq!(
            summary(&event),
            "step review entered; waiting for bob, bea; timers: deadline \
             1970-01-02T00:00:00.000000Z, escalation #1 1970-01-01T01:00:00.000000Z"
        );
        let event = InstanceEvent::StepPassed {
            step: "route".into(),
            activation: 1,
            branch: None,
            outcome: "case 3".into(),
            next: Some("review".into()),
            superseded: Vec::new(),
            at: Timestamp(0),
        };
        assert_eq!(summary(&event), "step route passed (case 3); next: review");
    }

    #[test]
    fn a_stopped_step_says_which_rule_why_and_what_to_do() {
        let event = InstanceEvent::StepFailed {
            step: "route".into(),
            activation: 1,
            branch: None,
            rule: signoff_core::engine::Rule::BranchCondition,
            expression: "data.request.risk == 1".into(),
            error: "no such overload".into(),
            version: 7,
            definition: "sha256:01".into(),
            at: Timestamp(0),
        };
        assert_eq!(
            summary(&event),
            "step route stopped: a branch condition `data.request.risk == 1` could not be \
             evaluated at version 7: no such overload; an operator may retry it once the \
             definition is fixed, or the instance be cancelled"
        );
        let event = InstanceEvent::StepRetried {
            step: "route".into(),
            definition: "sha256:02".into(),
            previous: "sha256:01".into(),
            by: "mia".into(),
            at: Timestamp(0),
        };
        assert_eq!(
            summary(&event),
            "mia retried step route under definition sha256:02"
        );
    }

    #[test]
    fn long_texts_are_cut_and_timers_named() {
        let event = InstanceEvent::Commented {
            text: "x".repeat(500),
            by: "rita".into(),
            at: Timestamp(0),
        };
        assert!(summary(&event).ends_with("…\""));
        assert!(summary(&event).chars().count() < 150);
        let event = InstanceEvent::TimerScheduled {
            id: "t1".into(),
            step: "review".into(),
            purpose: TimerPurpose::Escalation { n: 2 },
            due: Timestamp(0),
        };
        assert_eq!(
            summary(&event),
            "escalation #2 for review set for 1970-01-01T00:00:00.000000Z"
        );
    }
}
