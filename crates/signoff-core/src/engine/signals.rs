//! A signal: who may send it, and which waits it ends.
//!
//! A wait step names who may send its signal (`by:`); without it, the requester and whoever
//! filled in one of the instance's forms may, since they are the people the instance is about.
//! The engine itself always may. A signal no open step waits for is refused (after the rights:
//! those who may comment are told that nothing waits for it, others that they may not send
//! it), so a signal sent too early or misspelt is never taken silently.

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
    if waiting.is_empty() {
        let takers: Vec<String> = m
            .definition()
            .steps
            .iter()
            .filter(|s| {
                s.wait
                    .as_ref()
                    .and_then(|w| w.signal.as_ref())
                    .is_some_and(|sig| sig.as_str() == name)
            })
            .map(|s| format!("{:?}", s.id.value))
            .collect();
        if takers.is_empty() {
            let known: Vec<String> = m
                .definition()
                .steps
                .iter()
                .filter_map(|s| s.wait.as_ref()?.signal.as_ref())
                .map(|sig| format!("{:?}", sig.as_str()))
                .collect();
            return Err(Rejection::invalid(format!(
                "workflow {} takes no signal {name:?}{}",
                m.definition().id,
                if known.is_empty() {
                    String::from(" (it takes none)")
                } else {
                    format!("; it takes {}", known.join(", "))
                }
            ))
            .at_field("name"));
        }
        return Err(Rejection::closed(format!(
            "no step of instance {} waits for the signal {name:?} now: step {} takes it once \
             it is reached",
            m.state.id,
            takers.join(" or ")
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
