//! A signal: who may send it, and which waits it ends.
//!
//! A wait step names who may send its signal (`by:`); without it, the requester and whoever
//! filled in one of the instance's forms may, since they are the people the instance is about.
//! The engine itself always may. A signal no step waits for decides nothing: it is recorded as
//! a comment would be, so only those who may comment may send it.

use super::command::{Rejection, SYSTEM};
use super::event::InstanceEvent;
use super::machine::Machine;
use crate::access;
use crate::workflow::Wait;

/// Sends the signal `name`: ends every open wait for it whose `by` admits the actor.
pub(super) fn signal(m: &mut Machine<'_>, name: &str) -> Result<(), Rejection> {
    let actor = m.ctx.actor.id.clone();
    let waiting: Vec<(String, &Wait)> = m
        .state
        .active
        .keys()
        .filter_map(|s| {
            // A stopped wait is not passed by a signal: it waits for an operator.
            if m.state.is_stopped(s) {
                return None;
            }
            let wait = m.definition().step(s)?.wait.as_ref()?;
            let signal = wait.signal.as_ref()?;
            (signal.as_str() == name).then(|| (s.clone(), wait))
        })
        .collect();
    if waiting.is_empty() && !access::may_annotate(m.definition(), &m.state, m.ctx.actor) {
        return Err(Rejection::forbidden(format!(
            "no step of instance {} waits for the signal {name:?}, and {actor} takes no part in \
             it: such a signal is sent by its requester, those who take part in it and holders \
             of a role of workflow {}",
            m.state.id,
            m.definition().id
        )));
    }
    let admitted: Vec<String> = waiting
        .iter()
        .filter(|(_, wait)| admits(m, wait))
        .map(|(step, _)| step.clone())
        .collect();
    if let (Some((step, wait)), true) = (waiting.first(), admitted.is_empty()) {
        return Err(Rejection::forbidden(format!(
            "the signal {name:?} that step {step:?} waits for is sent by {}; {actor} is not",
            senders(m, wait)
        )));
    }
    m.emit(InstanceEvent::SignalReceived {
        name: name.to_owned(),
        by: actor,
        at: m.now(),
    });
    for step in admitted {
        let next = m.step(&step)?.next.as_ref().map(|n| n.value.clone());
        m.complete(&step, "signalled", next.as_deref())?;
    }
    Ok(())
}

/// Whether the actor may send the signal `wait` waits for.
fn admits(m: &Machine<'_>, wait: &Wait) -> bool {
    let me = m.ctx.actor.id.as_str();
    match &wait.by {
        _ if me == SYSTEM => true,
        Some(parties) => parties.iter().any(|party| m.actor_is(party)),
        None => m.state.requester == me || m.state.submitted_by.values().any(|p| p == me),
    }
}

/// Who may send the signal `wait` waits for, for a sentence.
fn senders(m: &Machine<'_>, wait: &Wait) -> String {
    match &wait.by {
        Some(parties) => parties
            .iter()
            .map(Machine::describe)
            .collect::<Vec<_>>()
            .join(" or "),
        None => format!(
            "the requester ({}) or whoever filled in one of its forms",
            m.state.requester
        ),
    }
}
