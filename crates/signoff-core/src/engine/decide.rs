//! `decide`: a command, the state and the definition in; the events it causes, or a typed
//! refusal, out. Pure: the time and the directory are given, nothing is read or written.

use super::command::{Command, Context, OPERATOR, Rejection, SYSTEM};
use super::event::InstanceEvent;
use super::machine::{Machine, Memo};
use super::state::{Instance, Status};
use super::{forms, gate, signals, tasks};
use crate::access;
use crate::workflow::{Loaded, StepKind};

/// Decides what `command` does to `state` under the definition `loaded`.
///
/// A refused command changes nothing. `state` must have been folded from the instance's events
/// (or be [`Instance::new`] for `Start`).
///
/// # Errors
/// A [`Rejection`] saying what was refused and why, for the person who tried.
pub fn decide(
    loaded: &Loaded,
    state: &Instance,
    command: &Command,
    ctx: &Context<'_>,
) -> Result<Vec<InstanceEvent>, Rejection> {
    decide_in(loaded, state, command, ctx, None)
}

/// [`decide`], keeping what spares work on the instance's next command in `memo` (one per
/// instance; the events are the same with or without it).
///
/// # Errors
/// As [`decide`].
pub fn decide_with(
    loaded: &Loaded,
    state: &Instance,
    command: &Command,
    ctx: &Context<'_>,
    memo: &Memo,
) -> Result<Vec<InstanceEvent>, Rejection> {
    decide_in(loaded, state, command, ctx, Some(memo))
}

fn decide_in(
    loaded: &Loaded,
    state: &Instance,
    command: &Command,
    ctx: &Context<'_>,
    memo: Option<&Memo>,
) -> Result<Vec<InstanceEvent>, Rejection> {
    let workflow = loaded.definition.id.value.as_str();
    if !ctx.actor.may_touch(workflow) {
        return Err(Rejection::forbidden(ctx.actor.out_of_scope(workflow)));
    }
    let mut m = Machine::new(loaded, ctx, state, memo);
    if let Command::Start { input, roles } = command {
        if state.status != Status::New {
            return Err(Rejection::closed(format!(
                "instance {} already exists",
                state.id
            )));
        }
        let first = loaded
            .definition
            .steps
            .first()
            .ok_or_else(|| Rejection::invalid("the workflow has no steps"))?;
        m.emit(InstanceEvent::Started {
            workflow: loaded.definition.id.value.clone(),
            definition: loaded.hash.clone(),
            requester: ctx.actor.id.clone(),
            input: input.clone(),
            roles: roles.clone(),
            at: ctx.now,
        });
        m.go(first.id.as_str(), None)?;
        return Ok(m.events);
    }
    match &state.status {
        Status::New => {
            return Err(Rejection::not_found(format!(
                "there is no instance {}",
                state.id
            )));
        }
        Status::Running => {}
        Status::Ended { outcome, at, .. } if !annotates(command) => {
            return Err(Rejection::closed(format!(
                "instance {} ended with the outcome {outcome:?} at {}; nothing more can be \
                 decided on it",
                state.id,
                at.to_rfc3339()
            )));
        }
        Status::Cancelled { reason, .. } if !annotates(command) => {
            return Err(Rejection::closed(format!(
                "instance {} was cancelled ({reason}); nothing more can be decided on it",
                state.id
            )));
        }
        Status::Ended { .. } | Status::Cancelled { .. } => {}
    }
    apply(&mut m, command)?;
    Ok(m.events)
}

/// Commands that annotate an instance without deciding anything: still accepted once it closed
/// (a comment after the fact; the link to a post-mortem its outcome triggered).
fn annotates(command: &Command) -> bool {
    matches!(command, Command::Comment { .. } | Command::Link { .. })
}

fn apply(m: &mut Machine<'_>, command: &Command) -> Result<(), Rejection> {
    let actor = m.ctx.actor.id.clone();
    let now = m.now();
    match command {
        Command::Start { .. } => Err(Rejection::closed("the instance already exists")),
        Command::Submit { step, values } => {
            let def_step = m.step(step)?;
            let Some(form) = &def_step.form else {
                return Err(Rejection::invalid(format!("step {step:?} is not a form")));
            };
            if !m.state.active.contains_key(step) {
                return Err(Rejection::closed(format!(
                    "the form {step:?} is not open (it is done, or not reached yet)"
                )));
            }
            let by = form
                .by
                .clone()
                .unwrap_or_else(super::machine::requester_party);
            if !m.actor_is(&by) {
                return Err(Rejection::forbidden(format!(
                    "the form {step:?} is filled in by {}; {actor} is not",
                    Machine::describe(&by)
                )));
            }
            let values = forms::check_values(form, values, m.ctx.people)?;
            m.emit(InstanceEvent::FormSubmitted {
                step: step.clone(),
                values,
                by: actor,
                at: now,
            });
            let next = def_step.next.as_ref().map(|n| n.value.clone());
            m.complete(step, "submitted", next.as_deref())
        }
        Command::Decide {
            step,
            verdict,
            justification,
            shown,
        } => gate::decide(m, step, *verdict, justification, shown.as_deref()),
        Command::Revoke { step, reason } => gate::revoke(m, step, reason),
        Command::Delegate { step, to, reason } => gate::delegate(m, step, to, reason),
        Command::Complete {
            step,
            item,
            status,
            note,
        } => tasks::complete(m, step, item, *status, note),
        Command::PostStatus { step, text } => tasks::post_status(m, step.as_deref(), text),
        Command::Comment { text } => {
            if !access::may_annotate(m.definition(), &m.state, m.ctx.actor) {
                return Err(Rejection::forbidden(format!(
                    "{actor} may not comment on instance {}: comments are by its requester, \
                     those who take part in it and holders of a role of workflow {}; an auditor \
                     reads and changes nothing",
                    m.state.id,
                    m.definition().id
                )));
            }
            if text.trim().is_empty() {
                return Err(Rejection::invalid("a comment needs text").at_field("text"));
            }
            m.emit(InstanceEvent::Commented {
                text: text.trim().to_owned(),
                by: actor,
                at: now,
            });
            Ok(())
        }
        Command::Signal { name } => signals::signal(m, name),
        Command::Attach {
            name,
            hash,
            media_type,
            size,
        } => {
            if !crate::access::may_attach(&m.state, &actor) {
                return Err(Rejection::forbidden(
                    "only the requester or someone an open step waits for may attach evidence",
                ));
            }
            if !hash.starts_with("sha256:") || name.trim().is_empty() {
                return Err(Rejection::invalid(
                    "evidence needs a name and a sha256: content hash",
                ));
            }
            m.emit(InstanceEvent::EvidenceAttached {
                name: name.trim().to_owned(),
                hash: hash.clone(),
                media_type: media_type.clone(),
                size: *size,
                by: actor,
                at: now,
            });
            Ok(())
        }
        Command::Link {
            instance,
            workflow,
            relation,
        } => {
            if actor != SYSTEM {
                return Err(Rejection::forbidden(
                    "instances are linked by the engine only",
                ));
            }
            m.emit(InstanceEvent::Linked {
                link: super::event::Link {
                    instance: instance.clone(),
                    workflow: workflow.clone(),
                    relation: relation.clone(),
                },
                at: now,
            });
            Ok(())
        }
        Command::Cancel { reason } => {
            // An operator may end what a rule stopped rather than fix it.
            let operator_on_stopped =
                m.ctx.actor.roles.contains(OPERATOR) && m.state.failures().next().is_some();
            if actor != m.state.requester && actor != SYSTEM && !operator_on_stopped {
                return Err(Rejection::forbidden(format!(
                    "only the requester ({}) may cancel this instance (or an operator, once a \
                     rule has stopped one of its steps)",
                    m.state.requester
                )));
            }
            if reason.trim().is_empty() {
                return Err(
                    Rejection::invalid("say why the instance is cancelled").at_field("reason")
                );
            }
            m.emit(InstanceEvent::Cancelled {
                reason: reason.trim().to_owned(),
                by: actor,
                at: now,
            });
            Ok(())
        }
        Command::Retry { step } => retry(m, step),
        Command::FireTimer { id } => {
            if actor != SYSTEM {
                return Err(Rejection::forbidden("timers are fired by the engine only"));
            }
            let timer = m.state.timers.get(id).cloned().ok_or_else(|| {
                Rejection::not_found(format!("timer {id} has already fired or no longer applies"))
            })?;
            if timer.due > now {
                return Err(Rejection::closed(format!(
                    "timer {id} is due at {}, not yet",
                    timer.due.to_rfc3339()
                )));
            }
            m.emit(InstanceEvent::TimerFired {
                id: id.clone(),
                at: now,
            });
            match m.step(&timer.step)?.kind() {
                Some(StepKind::Approval)
                    if !matches!(timer.purpose, super::event::TimerPurpose::StatusUpdate) =>
                {
                    gate::on_timer(m, &timer.step, &timer.purpose)
                }
                _ => tasks::on_timer(m, &timer.step, &timer.purpose, timer.due),
            }
        }
    }
}

/// Enters again a step a rule stopped, under the definition `m` decides with: the workflow's
/// current one, which the runtime gives for a retry and which the instance pins from now on.
fn retry(m: &mut Machine<'_>, step: &str) -> Result<(), Rejection> {
    let actor = m.ctx.actor;
    if actor.id != SYSTEM && !actor.roles.contains(OPERATOR) {
        return Err(Rejection::forbidden(format!(
            "only an operator (a holder of the {OPERATOR} role) may retry a stopped step; {} \
             is not one. Ask an operator, or have the requester cancel the instance",
            actor.id
        )));
    }
    let Some(failed) = m.state.active.get(step).filter(|a| a.failure.is_some()) else {
        let stopped: Vec<&str> = m.state.failures().map(|(s, _)| s).collect();
        return Err(Rejection::closed(if stopped.is_empty() {
            format!(
                "the step {step:?} has not stopped, and no step of instance {} has; there is \
                 nothing to retry",
                m.state.id
            )
        } else {
            format!(
                "the step {step:?} has not stopped; {} has: retry that",
                stopped.join(", ")
            )
        }));
    };
    let branch = failed.branch.clone();
    if m.definition().id.value != m.state.workflow {
        return Err(Rejection::invalid(format!(
            "instance {} runs workflow {}, not {}",
            m.state.id,
            m.state.workflow,
            m.definition().id.value
        )));
    }
    // Every step the instance still has open, or a timer for, must be in the definition it
    // will pin: a fix that drops one would strand the instance.
    let missing: Vec<&str> = m
        .state
        .active
        .keys()
        .map(String::as_str)
        .chain(m.state.timers.values().map(|t| t.step.as_str()))
        .filter(|s| m.definition().step(s).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(Rejection::invalid(format!(
            "the current definition of {} has no step {}, which instance {} has open; restore \
             it, or cancel the instance",
            m.state.workflow,
            missing.join(", "),
            m.state.id
        )));
    }
    m.emit(InstanceEvent::StepRetried {
        step: step.to_owned(),
        definition: m.loaded.hash.clone(),
        previous: m.state.definition.clone(),
        by: actor.id.clone(),
        at: m.now(),
    });
    m.enter(step, branch)
}

/// Folds events into the state they make.
#[must_use]
pub fn replay<'a>(id: &str, events: impl IntoIterator<Item = &'a InstanceEvent>) -> Instance {
    let mut state = Instance::new(id);
    for event in events {
        state.evolve(event);
    }
    state
}
