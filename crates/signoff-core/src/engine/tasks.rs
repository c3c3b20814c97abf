//! Checklists, waits, escalations and status-update cadences: the steps that run on time.

use serde_json::Value;

use super::command::Rejection;
use super::event::{InstanceEvent, Rule, TaskOpened, TaskStatus, TimerPurpose};
use super::machine::{Broken, Machine, NewTimer, requester_party};
use crate::event::Timestamp;
use crate::workflow::{Escalation, Span, Step};

/// The shortest reason taken for not doing a task: "x" explains nothing to an auditor.
pub const NOT_DOING_MIN_CHARS: usize = 10;

/// Opens a checklist: static items and items taken from a form's group field.
pub(crate) fn open(
    m: &mut Machine<'_>,
    step: &Step,
    branch: Option<String>,
) -> Result<(), Rejection> {
    let Some(tasks) = &step.tasks else {
        return Err(Rejection::invalid("not a tasks step"));
    };
    let now = m.now();
    let mut items = Vec::new();
    for item in &tasks.items {
        let owner = item.owner.clone().unwrap_or_else(requester_party);
        items.push(TaskOpened {
            id: item.id.value.clone(),
            title: item.title.clone(),
            owners: m.people_of(&owner),
            due: item.due.as_ref().map(|d| d.value.after(now)),
            required: item.required,
        });
    }
    if let Some(from) = &tasks.items_from {
        let (form, field) = from.as_str().split_once('.').unwrap_or((from.as_str(), ""));
        let listed = m
            .state
            .data
            .get(form)
            .and_then(|v| v.get(field))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, entry) in listed.iter().enumerate() {
            let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
            let due = text("due").and_then(|d| {
                chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(17, 0, 0))
                    .map(|t| Timestamp(t.and_utc().timestamp_micros()))
            });
            items.push(TaskOpened {
                id: format!("{field}-{}", i + 1),
                title: text("title").unwrap_or_else(|| format!("{field} {}", i + 1)),
                owners: text("owner").map_or_else(|| vec![m.state.requester.clone()], |o| vec![o]),
                due,
                required: true,
            });
        }
    }
    let mut assignees: Vec<String> = Vec::new();
    for item in &items {
        for o in &item.owners {
            if !assignees.contains(o) {
                assignees.push(o.clone());
            }
        }
    }
    let id = step.id.as_str();
    if !items.iter().any(|t| t.required) {
        // Nothing to wait for: the checklist is recorded as opened and closes at once.
        m.entered_with(step, branch, assignees, None, Some(items), Vec::new());
        let next = step.next.as_ref().map(|n| n.value.clone());
        return m.complete(id, "done", next.as_deref());
    }
    let mut timers = Vec::new();
    for item in &items {
        if let Some(due) = item.due {
            timers.push(NewTimer::new(
                TimerPurpose::TaskDue {
                    item: item.id.clone(),
                },
                due,
                format!("due-{}", item.id),
            ));
        }
    }
    if let Some(every) = &tasks.remind_every {
        let tag = format!("remind@{}", m.state.version + 1);
        timers.push(NewTimer::new(
            TimerPurpose::TaskReminder,
            every.value.after(now),
            tag,
        ));
    }
    if let Some(esc) = &tasks.escalate {
        timers.push(NewTimer::new(
            TimerPurpose::Escalation { n: 1 },
            esc.after.value.after(now),
            "escalation-1",
        ));
    }
    timers.extend(m.cadence_timer(step));
    m.entered_with(step, branch, assignees.clone(), None, Some(items), timers);
    m.ask(step, assignees, "task_assigned", "Tasks for you");
    Ok(())
}

/// Completes a task, and the checklist once every required task is closed.
pub(crate) fn complete(
    m: &mut Machine<'_>,
    step: &str,
    item: &str,
    status: TaskStatus,
    note: &str,
) -> Result<(), Rejection> {
    let def_step = m.step(step)?;
    if def_step.tasks.is_none() {
        return Err(Rejection::invalid(format!(
            "step {step:?} is not a checklist"
        )));
    }
    let active = m
        .state
        .active
        .get(step)
        .ok_or_else(|| Rejection::closed(format!("the checklist {step:?} is not open")))?;
    let task = active
        .tasks
        .iter()
        .find(|t| t.opened.id == item)
        .ok_or_else(|| {
            let ids: Vec<&str> = active.tasks.iter().map(|t| t.opened.id.as_str()).collect();
            Rejection::not_found(format!(
                "the checklist {step:?} has no task {item:?}; it has {}",
                ids.join(", ")
            ))
        })?;
    if task.closed.is_some() {
        return Err(Rejection::closed(format!(
            "the task {item:?} is already closed"
        )));
    }
    let actor = &m.ctx.actor.id;
    // A task is its owners'; the owner of another task on the same checklist may not close it
    // (the scribe does not mark the commander's mitigation done). Someone the step was
    // escalated to may, in the owners' place.
    if !task.opened.owners.contains(actor) && !active.escalated.contains(actor) {
        return Err(Rejection::forbidden(format!(
            "the task {item:?} belongs to {}; you cannot complete it",
            task.opened.owners.join(", ")
        )));
    }
    if status == TaskStatus::NotDoing && note.trim().chars().count() < NOT_DOING_MIN_CHARS {
        return Err(Rejection::invalid(format!(
            "say why the task is not being done, in at least {NOT_DOING_MIN_CHARS} characters \
             (those who read the record later need the reason)"
        ))
        .at_field("note"));
    }
    m.emit(InstanceEvent::TaskCompleted {
        step: step.to_owned(),
        item: item.to_owned(),
        status,
        note: note.trim().to_owned(),
        by: actor.clone(),
        at: m.now(),
    });
    let all_closed = m.state.active.get(step).is_some_and(|a| {
        a.tasks
            .iter()
            .all(|t| !t.opened.required || t.closed.is_some())
    });
    if all_closed {
        let next = def_step.next.as_ref().map(|n| n.value.clone());
        m.complete(step, "done", next.as_deref())
    } else {
        Ok(())
    }
}

/// Opens a wait: a timer for a duration or a time, or nothing but a signal (and its timeout).
pub(crate) fn open_wait(
    m: &mut Machine<'_>,
    step: &Step,
    branch: Option<String>,
) -> Result<(), Rejection> {
    let Some(wait) = &step.wait else {
        return Err(Rejection::invalid("not a wait step"));
    };
    let now = m.now();
    let next = step.next.as_ref().map(|n| n.value.clone());
    let mut timers = Vec::new();
    if let Some(duration) = &wait.duration {
        timers.push(NewTimer::new(
            TimerPurpose::Wait,
            duration.value.after(now),
            "wait",
        ));
    } else if let Some(until) = &wait.until {
        // No time given (null or empty) means nothing to wait for; a time that cannot be read
        // or computed stops the step rather than let it pass.
        let at = match m.eval(until.as_str(), None) {
            Ok(Value::Null) => None,
            Ok(Value::String(text)) if text.trim().is_empty() => None,
            Ok(Value::String(text)) => match Timestamp::parse_moment(&text) {
                Some(at) => Some(at),
                None => {
                    let error =
                        format!("it gives {text:?}, not an RFC 3339 time or a YYYY-MM-DD date");
                    m.fail(
                        step,
                        branch,
                        Broken::new(Rule::WaitUntil, until.as_str(), error),
                    );
                    return Ok(());
                }
            },
            Ok(other) => {
                let error = format!("it gives {other}, not a time");
                m.fail(
                    step,
                    branch,
                    Broken::new(Rule::WaitUntil, until.as_str(), error),
                );
                return Ok(());
            }
            Err(error) => {
                m.fail(
                    step,
                    branch,
                    Broken::new(Rule::WaitUntil, until.as_str(), error),
                );
                return Ok(());
            }
        };
        match at {
            Some(at) if at > now => timers.push(NewTimer::new(TimerPurpose::Wait, at, "wait")),
            // A time already past, or no time given: nothing to wait for.
            _ => return m.pass_on(step, branch, "waited", next.as_deref()),
        }
    } else if let Some(timeout) = &wait.timeout {
        timers.push(NewTimer::new(
            TimerPurpose::Timeout,
            timeout.value.after(now),
            "timeout",
        ));
    }
    timers.extend(m.cadence_timer(step));
    m.entered_with(step, branch, Vec::new(), None, None, timers);
    Ok(())
}

/// Escalates `step` the `n`-th time and schedules the next escalation if there is one.
pub(crate) fn escalate(m: &mut Machine<'_>, step: &Step, esc: &Escalation, n: u32) {
    let to = m.people_of(&esc.to);
    m.emit(InstanceEvent::Escalated {
        step: step.id.value.clone(),
        to: to.clone(),
        n,
        at: m.now(),
    });
    m.ask(
        step,
        to,
        "escalation",
        &format!("Escalated to you ({} of {})", n, esc.times),
    );
    if n < esc.times {
        let due = esc.after.value.after(m.now());
        m.schedule(
            step.id.as_str(),
            TimerPurpose::Escalation { n: n + 1 },
            due,
            &format!("escalation-{}", n + 1),
        );
    }
}

/// A checklist, wait or cadence timer fired.
pub(crate) fn on_timer(
    m: &mut Machine<'_>,
    step: &str,
    purpose: &TimerPurpose,
    due: Timestamp,
) -> Result<(), Rejection> {
    let def_step = m.step(step)?;
    let next = def_step.next.as_ref().map(|n| n.value.clone());
    match purpose {
        TimerPurpose::Wait => m.complete(step, "waited", next.as_deref()),
        TimerPurpose::Timeout => {
            let next = def_step.on_expire.as_ref().map(|n| n.value.clone());
            m.complete(step, "expired", next.as_deref())
        }
        TimerPurpose::TaskDue { item } => {
            let owners = m
                .state
                .active
                .get(step)
                .and_then(|a| a.tasks.iter().find(|t| &t.opened.id == item))
                .filter(|t| t.closed.is_none())
                .map(|t| t.opened.owners.clone())
                .unwrap_or_default();
            m.ask(
                def_step,
                owners,
                "task_overdue",
                &format!("Overdue: task {item}"),
            );
            Ok(())
        }
        TimerPurpose::TaskReminder => {
            let owners: Vec<String> = m
                .state
                .active
                .get(step)
                .map(|a| {
                    a.tasks
                        .iter()
                        .filter(|t| t.closed.is_none())
                        .flat_map(|t| t.opened.owners.clone())
                        .fold(Vec::new(), |mut acc, o| {
                            if !acc.contains(&o) {
                                acc.push(o);
                            }
                            acc
                        })
                })
                .unwrap_or_default();
            m.ask(def_step, owners, "reminder", "Reminder: tasks still open");
            if let Some(every) = def_step
                .tasks
                .as_ref()
                .and_then(|t| t.remind_every.as_ref())
            {
                let tag = format!("remind@{}", m.state.version + 1);
                m.schedule(
                    step,
                    TimerPurpose::TaskReminder,
                    every.value.after(m.now()),
                    &tag,
                );
            }
            Ok(())
        }
        TimerPurpose::Escalation { n } => {
            if let Some(esc) = def_step.tasks.as_ref().and_then(|t| t.escalate.as_ref()) {
                escalate(m, def_step, esc, *n);
            }
            Ok(())
        }
        TimerPurpose::StatusUpdate => {
            status_due(m, def_step, due);
            Ok(())
        }
        TimerPurpose::Deadline | TimerPurpose::Reminder => Ok(()),
    }
}

/// A status update fell due: unless one was posted since the timer was set, remind (and, a
/// whole cadence late, escalate); then wait for the next one.
fn status_due(m: &mut Machine<'_>, step: &Step, due: Timestamp) {
    let Some(cadence) = &step.status_updates else {
        return;
    };
    let every: Span = cadence.every.value;
    let last = m
        .state
        .active
        .get(step.id.as_str())
        .map_or(due, |a| a.last_update);
    if last > every.before(due) {
        // An update came after this timer was set; the update scheduled the next one.
        return;
    }
    let by = m.people_of(&cadence.by);
    m.ask(step, by, "status_update_due", "A status update is due");
    if let Some(escalate) = &cadence.escalate
        && every.before(every.before(m.now())) >= last
    {
        let to = m.people_of(escalate);
        m.ask(
            step,
            to,
            "escalation",
            "A status update is a whole cadence late",
        );
    }
    m.start_cadence(step);
}

/// Records a status update and restarts the cadence.
pub(crate) fn post_status(
    m: &mut Machine<'_>,
    step: Option<&str>,
    text: &str,
) -> Result<(), Rejection> {
    let with_cadence: Vec<String> = m
        .state
        .active
        .keys()
        .filter(|s| {
            !m.state.is_stopped(s)
                && m.definition()
                    .step(s)
                    .is_some_and(|d| d.status_updates.is_some())
        })
        .cloned()
        .collect();
    let step = match step {
        Some(s) if with_cadence.iter().any(|c| c == s) => s.to_owned(),
        Some(s) => {
            return Err(Rejection::closed(format!(
                "the step {s:?} is not open or takes no status updates"
            )));
        }
        None => match with_cadence.as_slice() {
            [one] => one.clone(),
            [] => return Err(Rejection::closed("no open step takes status updates now")),
            _ => {
                return Err(Rejection::invalid(format!(
                    "several steps take status updates ({}); name one",
                    with_cadence.join(", ")
                )));
            }
        },
    };
    let def_step = m.step(&step)?;
    let Some(cadence) = &def_step.status_updates else {
        return Err(Rejection::closed("this step takes no status updates"));
    };
    if !m.actor_is(&cadence.by) && m.ctx.actor.id != m.state.requester {
        return Err(Rejection::forbidden(format!(
            "status updates on {step:?} are posted by {}",
            Machine::describe(&cadence.by)
        )));
    }
    if text.trim().is_empty() {
        return Err(Rejection::invalid("a status update needs text").at_field("text"));
    }
    m.emit(InstanceEvent::StatusPosted {
        step: step.clone(),
        text: text.trim().to_owned(),
        by: m.ctx.actor.id.clone(),
        at: m.now(),
    });
    m.start_cadence(def_step);
    Ok(())
}
