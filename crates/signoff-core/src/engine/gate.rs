//! Approval gates: one model for every workflow. Groups of approvers (by role or by person), each
//! needing a count; thresholds counted only from approvers a predicate admits; rejections with
//! their own threshold; separation of duties; one person counts once; delegation; escalation;
//! deadlines with an outcome on expiry.

use serde_json::Value;

use super::command::Rejection;
use super::event::{GateOpened, GroupOpened, InstanceEvent, Rule, TimerPurpose, Verdict};
use super::machine::{Broken, Machine, NewTimer};
use super::state::Gate;
use crate::workflow::expr::Approver;
use crate::workflow::{Approval, Count, ExpiryOutcome, Step};

/// Opens the gate of `step`: resolves who may approve now, schedules its timers, asks approvers.
pub(crate) fn open(
    m: &mut Machine<'_>,
    step: &Step,
    branch: Option<String>,
) -> Result<(), Rejection> {
    let Some(approval) = &step.approval else {
        return Err(Rejection::invalid("not an approval step"));
    };
    let mut excluded = Vec::new();
    if !approval.separation.requester_may_approve {
        excluded.push(m.state.requester.clone());
    }
    if let Some(expr) = &approval.separation.exclude {
        // An exclusion that cannot say whom it excludes opens no gate: excluding nobody would
        // let the very person it names decide.
        match m.eval(expr.as_str(), None).and_then(person_ids) {
            Ok(people) => {
                for p in people {
                    if !excluded.contains(&p) {
                        excluded.push(p);
                    }
                }
            }
            Err(error) => {
                m.fail(
                    step,
                    branch,
                    Broken::new(Rule::Exclusion, expr.as_str(), error),
                );
                return Ok(());
            }
        }
    }
    let mut groups = Vec::new();
    let mut assignees: Vec<String> = Vec::new();
    for group in &approval.approvers {
        let mut eligible: Vec<String> = group.people.iter().map(|p| p.value.clone()).collect();
        if let Some(role) = &group.role {
            for p in m.role_holders(role.as_str()) {
                if !eligible.contains(&p) {
                    eligible.push(p);
                }
            }
        }
        eligible.retain(|p| !excluded.contains(p));
        // Only those whose decision would count are asked, reminded and counted as eligible:
        // an engineer of another team is not asked to review this team's change. The
        // predicate is checked again when they decide (teams and roles change).
        if let Some(when) = &group.when {
            let mut admitted = Vec::new();
            for p in eligible {
                let Some(profile) = m.ctx.people.profile(&p) else {
                    continue;
                };
                match admits(m, when.as_str(), &profile) {
                    Ok(true) => admitted.push(p),
                    Ok(false) => {}
                    Err(error) => {
                        let broken = Broken::new(Rule::ApproverPredicate, when.as_str(), error);
                        m.fail(step, branch, broken);
                        return Ok(());
                    }
                }
            }
            eligible = admitted;
        }
        let needed = match group.count {
            Count::Number(n) => n.max(1),
            Count::All(_) => u32::try_from(eligible.len()).unwrap_or(u32::MAX).max(1),
        };
        for p in &eligible {
            if !assignees.contains(p) {
                assignees.push(p.clone());
            }
        }
        groups.push(GroupOpened {
            name: group
                .name
                .clone()
                .or_else(|| group.role.as_ref().map(|r| r.value.clone()))
                .unwrap_or_else(|| "approvers".into()),
            role: group.role.as_ref().map(|r| r.value.clone()),
            eligible,
            needed,
        });
    }
    let now = m.now();
    let deadline = approval.deadline.as_ref().map(|d| d.after.value.after(now));
    let opened = GateOpened {
        groups,
        excluded,
        deadline,
    };
    let short = opened.short();
    let id = step.id.as_str();
    let mut timers = Vec::new();
    if let (Some(d), Some(due)) = (&approval.deadline, deadline) {
        timers.push(NewTimer::new(TimerPurpose::Deadline, due, "deadline"));
        for (i, before) in d.reminders.iter().enumerate() {
            let at = before.value.before(due);
            if at > now {
                timers.push(NewTimer::new(
                    TimerPurpose::Reminder,
                    at,
                    format!("reminder-{}", i + 1),
                ));
            }
        }
        if let Some(esc) = &d.escalate {
            // A gate that cannot close as it stands is escalated at once: waiting out the
            // delay would only wait for nobody.
            let due = if short.is_empty() {
                esc.after.value.after(now)
            } else {
                now
            };
            timers.push(NewTimer::new(
                TimerPurpose::Escalation { n: 1 },
                due,
                "escalation-1",
            ));
        }
    }
    timers.extend(m.cadence_timer(step));
    m.entered_with(step, branch, assignees.clone(), Some(opened), None, timers);
    m.ask(
        step,
        assignees,
        "approval_requested",
        "Your decision is requested",
    );
    if !short.is_empty() {
        // Told to the requester and to the operators, who can fix the directory (the
        // approvers were asked above, and see the gate blocked on its page).
        let mut to = vec![m.state.requester.clone()];
        for p in m.ctx.people.holders(super::command::OPERATOR) {
            if !to.contains(&p) {
                to.push(p);
            }
        }
        m.notify(
            to,
            format!("Gate {id} cannot be approved as it stands"),
            format!(
                "The gate {id} cannot gather enough approvals: {}. Update the directory or wait \
                 for escalation.",
                short.join("; ")
            ),
            Some(id),
            "gate_unsatisfiable",
        );
    }
    Ok(())
}

/// The people an exclusion gives: a list of person ids, nothing else.
fn person_ids(value: Value) -> Result<Vec<String>, String> {
    let Value::Array(items) = value else {
        return Err(format!("it gives {value}, not a list of person ids"));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(id) if !id.trim().is_empty() => Ok(id),
            other => Err(format!(
                "it gives {other} among the people, not a person id"
            )),
        })
        .collect()
}

fn open_gate<'s>(m: &'s Machine<'_>, step: &str) -> Result<&'s Gate, Rejection> {
    if let Some(stopped) = m.stopped(step) {
        return Err(stopped);
    }
    let closed = || {
        Rejection::closed(format!(
            "the gate {step:?} is not open: {}",
            if m.state.is_running() {
                "it is already decided or not reached yet"
            } else {
                "the instance has ended"
            }
        ))
    };
    m.state
        .active
        .get(step)
        .and_then(|a| a.gate.as_ref())
        .ok_or_else(closed)
}

fn approval_of<'a>(m: &Machine<'a>, step: &str) -> Result<&'a Approval, Rejection> {
    m.step(step)?
        .approval
        .as_ref()
        .ok_or_else(|| Rejection::invalid(format!("step {step:?} is not an approval gate")))
}

/// Where an actor stands on a gate: the groups they count for, on whose behalf, whether as an
/// escalation target.
type Standing = (Vec<String>, Option<String>, bool);

/// The actor's standing, or why they may not decide (the outer error), or the predicate that
/// could not say whether their decision counts (the inner one: the gate stops).
fn standing(
    m: &Machine<'_>,
    step: &str,
    gate: &Gate,
    approval: &Approval,
) -> Result<Result<Standing, Broken>, Rejection> {
    let actor = &m.ctx.actor.id;
    if gate.opened.excluded.contains(actor) {
        // Refusals name the first reason in order: not an approver at all, then separation of
        // duties (a requester who holds no role of the gate is told the former).
        let would_be = gate.escalated.contains(actor)
            || approval.approvers.iter().any(|spec| {
                spec.people.iter().any(|p| p.as_str() == actor)
                    || spec
                        .role
                        .as_ref()
                        .is_some_and(|r| m.role_holders(r.as_str()).contains(actor))
            });
        if !would_be {
            return Err(Rejection::forbidden(not_an_approver(gate, step)));
        }
        return Err(Rejection::forbidden(if actor == &m.state.requester {
            format!(
                "you requested this, so you cannot decide the gate {step:?}: a second person \
                 must (separation of duties)"
            )
        } else {
            format!("you are excluded from deciding the gate {step:?} (separation of duties)")
        }));
    }
    if let Some(to) = gate.delegations.get(actor) {
        return Err(Rejection::forbidden(format!(
            "you delegated your decision on {step:?} to {to}; they decide now"
        )));
    }
    let escalated = gate.escalated.contains(actor);
    let on_behalf_of = gate
        .delegations
        .iter()
        .find(|(_, to)| *to == actor)
        .map(|(from, _)| from.clone());
    let as_person = on_behalf_of.as_ref().unwrap_or(actor);
    let profile = m
        .ctx
        .people
        .profile(actor)
        .unwrap_or_else(|| m.ctx.actor.clone());
    let mut groups = Vec::new();
    let mut filtered = Vec::new();
    for (opened, spec) in gate.opened.groups.iter().zip(&approval.approvers) {
        let eligible = opened.eligible.contains(as_person);
        // A holder of the role the predicate left out is told why, not just "not an approver".
        let holds_role = spec
            .role
            .as_ref()
            .is_some_and(|r| profile.roles.contains(r.as_str()));
        // Checked only for those it concerns: anyone else is refused without evaluating it, so
        // a stranger cannot stop the gate by trying to decide.
        let admitted = match &spec.when {
            None => true,
            Some(_) if !(eligible || holds_role) => false,
            Some(w) => match admits(m, w.as_str(), &profile) {
                Ok(admitted) => admitted,
                Err(error) => {
                    return Ok(Err(Broken::new(Rule::ApproverPredicate, w.as_str(), error)));
                }
            },
        };
        if eligible && admitted {
            groups.push(opened.name.clone());
        } else if let Some(w) = &spec.when
            && !admitted
            && (eligible || holds_role)
        {
            filtered.push(format!(
                "{} only counts approvers for whom `{}` holds",
                opened.name,
                w.as_str()
            ));
        }
    }
    if groups.is_empty() && !escalated {
        return Err(Rejection::forbidden(if filtered.is_empty() {
            not_an_approver(gate, step)
        } else {
            format!(
                "your decision would not count on {step:?}: {}",
                filtered.join("; ")
            )
        }));
    }
    Ok(Ok((groups, on_behalf_of, escalated)))
}

/// The refusal for someone who is no approver of the gate, with who it needs.
fn not_an_approver(gate: &Gate, step: &str) -> String {
    let needs: Vec<String> = gate
        .opened
        .groups
        .iter()
        .map(|g| match &g.role {
            Some(role) => format!("{} from the {role} role", g.needed),
            None => format!("{} of {}", g.needed, g.eligible.join(", ")),
        })
        .collect();
    format!(
        "you are not an approver of the gate {step:?}; it needs {}",
        needs.join(" and ")
    )
}

/// Whether an approver predicate holds for `approver`, with the instance's variables.
///
/// # Errors
/// Why the predicate could not say: never read as "no" (it would silently drop the approver)
/// nor as "yes".
fn admits(m: &Machine<'_>, when: &str, approver: &super::command::Actor) -> Result<bool, String> {
    let approver = Approver::new(
        &approver.id,
        approver.roles.iter().map(String::as_str),
        approver.team.as_deref(),
    );
    m.eval_bool(when, Some(&approver))
}

fn check_justification(approval: &Approval, verdict: Verdict, text: &str) -> Result<(), Rejection> {
    let Some(rule) = approval.rule(verdict) else {
        return Ok(());
    };
    let word = match verdict {
        Verdict::Approve => "approving",
        Verdict::Reject => "rejecting",
    };
    let prompt = if rule.prompt.is_empty() {
        String::new()
    } else {
        format!(" ({})", rule.prompt)
    };
    let length = text.trim().chars().count();
    if length < rule.min_length as usize {
        return Err(Rejection::invalid(if length == 0 {
            format!("a justification is required when {word}{prompt}")
        } else {
            format!(
                "the justification is {length} characters; at least {} are required when {word}{prompt}",
                rule.min_length
            )
        })
        .at_field("justification"));
    }
    if let Some(pattern) = &rule.pattern
        && !super::compiled::matches(pattern.as_str(), text)
    {
        return Err(Rejection::invalid(format!(
            "the justification must match {}{prompt}",
            pattern.as_str()
        ))
        .at_field("justification"));
    }
    Ok(())
}

/// Records a decision and closes the gate if it is now approved or rejected.
pub(crate) fn decide(
    m: &mut Machine<'_>,
    step: &str,
    verdict: Verdict,
    justification: &str,
    shown: Option<&str>,
) -> Result<(), Rejection> {
    let approval = approval_of(m, step)?;
    let gate = open_gate(m, step)?;
    let (groups, on_behalf_of, escalated) = match standing(m, step, gate, approval)? {
        Ok(standing) => standing,
        Err(broken) => {
            // Their decision is not recorded: whether it would count cannot be said.
            let def_step = m.step(step)?;
            m.fail(def_step, None, broken);
            return Ok(());
        }
    };
    let actor = m.ctx.actor.id.clone();
    if let Some(previous) = gate.decisions.get(&actor) {
        return Err(Rejection::closed(format!(
            "you already {} the gate {step:?} at {}; a decision is never changed{}",
            previous.verdict.past(),
            previous.at.to_rfc3339(),
            if approval.revocable {
                " (revoke it first to decide again)"
            } else {
                ""
            }
        )));
    }
    check_justification(approval, verdict, justification)?;
    let current = super::View::of(&m.loaded.definition, &m.state, m.ctx.people).hash();
    if let Some(shown) = shown
        && shown != current
    {
        return Err(Rejection::closed(format!(
            "the request changed since it was shown to you (you saw {shown}, it is now {current}); \
             look at it again before deciding"
        )));
    }
    m.emit(InstanceEvent::Decided {
        step: step.to_owned(),
        by: actor,
        verdict,
        justification: justification.trim().to_owned(),
        roles: m.ctx.actor.roles.iter().cloned().collect(),
        groups,
        escalated,
        on_behalf_of,
        shown: current,
        at: m.now(),
    });
    settle(m, step, approval)
}

/// Closes the gate if its decisions now approve or reject it.
fn settle(m: &mut Machine<'_>, step: &str, approval: &Approval) -> Result<(), Rejection> {
    let gate = open_gate(m, step)?;
    let def_step = m.step(step)?;
    let escalated_verdict = gate
        .decisions
        .values()
        .find(|d| d.escalated)
        .map(|d| d.verdict);
    let rejections = gate
        .decisions
        .values()
        .filter(|d| d.verdict == Verdict::Reject)
        .count();
    let approved = escalated_verdict == Some(Verdict::Approve)
        || satisfied(
            &gate
                .opened
                .groups
                .iter()
                .map(|g| g.needed)
                .collect::<Vec<_>>(),
            &gate
                .decisions
                .values()
                .filter(|d| d.verdict == Verdict::Approve)
                .map(|d| {
                    d.groups
                        .iter()
                        .filter_map(|name| gate.opened.groups.iter().position(|g| &g.name == name))
                        .collect()
                })
                .collect::<Vec<_>>(),
        );
    let rejected = escalated_verdict == Some(Verdict::Reject)
        || rejections >= approval.rejections.max(1) as usize;
    if approved {
        let next = def_step.next.as_ref().map(|n| n.value.clone());
        m.complete(step, "approved", next.as_deref())
    } else if rejected {
        let next = def_step.on_reject.as_ref().map(|n| n.value.clone());
        m.complete(step, "rejected", next.as_deref())
    } else {
        Ok(())
    }
}

/// Whether approvals (each the list of groups its approver may count for) can fill every group's
/// need with each approver counted once: a small bipartite matching.
#[must_use]
pub fn satisfied(needs: &[u32], approvals: &[Vec<usize>]) -> bool {
    let slots: Vec<usize> = needs
        .iter()
        .enumerate()
        .flat_map(|(g, &n)| std::iter::repeat_n(g, n as usize))
        .collect();
    if slots.len() > approvals.len() {
        return false;
    }
    let mut owner: Vec<Option<usize>> = vec![None; slots.len()];
    for slot in 0..slots.len() {
        let mut seen = vec![false; approvals.len()];
        if !augment(slot, &slots, approvals, &mut owner, &mut seen) {
            return false;
        }
    }
    true
}

/// Kuhn's augmenting path from a slot to a free approver. `owner[slot]` is its approver.
fn augment(
    slot: usize,
    slots: &[usize],
    approvals: &[Vec<usize>],
    owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for (a, groups) in approvals.iter().enumerate() {
        if seen[a] || !groups.contains(&slots[slot]) {
            continue;
        }
        seen[a] = true;
        match owner.iter().position(|o| *o == Some(a)) {
            None => {
                owner[slot] = Some(a);
                return true;
            }
            Some(other) => {
                owner[other] = None;
                if augment(other, slots, approvals, owner, seen) {
                    owner[slot] = Some(a);
                    return true;
                }
                owner[other] = Some(a);
            }
        }
    }
    false
}

/// Takes back the actor's decision.
pub(crate) fn revoke(m: &mut Machine<'_>, step: &str, reason: &str) -> Result<(), Rejection> {
    let approval = approval_of(m, step)?;
    let gate = open_gate(m, step)?;
    if !approval.revocable {
        return Err(Rejection::invalid(format!(
            "the gate {step:?} does not allow taking a decision back"
        )));
    }
    if !gate.decisions.contains_key(&m.ctx.actor.id) {
        return Err(Rejection::not_found(format!(
            "you have no decision on the gate {step:?} to take back"
        )));
    }
    if reason.trim().is_empty() {
        return Err(Rejection::invalid("say why you take your decision back").at_field("reason"));
    }
    m.emit(InstanceEvent::Revoked {
        step: step.to_owned(),
        by: m.ctx.actor.id.clone(),
        reason: reason.trim().to_owned(),
        at: m.now(),
    });
    Ok(())
}

/// Hands the actor's decision to another holder of the same role.
pub(crate) fn delegate(
    m: &mut Machine<'_>,
    step: &str,
    to: &str,
    reason: &str,
) -> Result<(), Rejection> {
    let approval = approval_of(m, step)?;
    let gate = open_gate(m, step)?;
    if !approval.delegation {
        return Err(Rejection::invalid(format!(
            "the gate {step:?} does not allow delegation"
        )));
    }
    let actor = m.ctx.actor.id.clone();
    let roles: Vec<&str> = gate
        .opened
        .groups
        .iter()
        .filter(|g| g.eligible.contains(&actor))
        .filter_map(|g| g.role.as_deref())
        .collect();
    if roles.is_empty() {
        return Err(Rejection::forbidden(format!(
            "only an approver of the gate {step:?} by role may delegate their decision"
        )));
    }
    if gate.decisions.contains_key(&actor) {
        return Err(Rejection::closed(
            "you have already decided; there is nothing to delegate",
        ));
    }
    if to == actor || gate.opened.excluded.iter().any(|x| x == to) {
        return Err(Rejection::invalid(format!(
            "{to} cannot receive this delegation"
        )));
    }
    if !roles.iter().any(|r| m.ctx.people.holds(to, r)) {
        return Err(Rejection::invalid(format!(
            "{to} does not hold the {} role; delegate to another holder of it",
            roles.join(" or ")
        )));
    }
    m.emit(InstanceEvent::Delegated {
        step: step.to_owned(),
        from: actor.clone(),
        to: to.to_owned(),
        reason: reason.trim().to_owned(),
        at: m.now(),
    });
    let def_step = m.step(step)?;
    m.ask(
        def_step,
        vec![to.to_owned()],
        "approval_delegated",
        &format!("{actor} delegated a decision to you"),
    );
    Ok(())
}

/// A gate timer fired: deadline, reminder or escalation.
pub(crate) fn on_timer(
    m: &mut Machine<'_>,
    step: &str,
    purpose: &TimerPurpose,
) -> Result<(), Rejection> {
    let approval = approval_of(m, step)?;
    let def_step = m.step(step)?;
    let Some(deadline) = &approval.deadline else {
        return Ok(());
    };
    match purpose {
        TimerPurpose::Deadline => {
            let (outcome, next) = match deadline.on_expiry {
                ExpiryOutcome::Expire => (
                    "expired",
                    def_step.on_expire.as_ref().or(def_step.on_reject.as_ref()),
                ),
                ExpiryOutcome::Reject => ("rejected", def_step.on_reject.as_ref()),
                ExpiryOutcome::Approve => ("approved", def_step.next.as_ref()),
            };
            let next = next.map(|n| n.value.clone());
            m.complete(step, outcome, next.as_deref())
        }
        TimerPurpose::Reminder => {
            let gate = open_gate(m, step)?;
            let waiting: Vec<String> = gate
                .opened
                .groups
                .iter()
                .flat_map(|g| g.eligible.iter())
                .map(|p| gate.delegations.get(p).unwrap_or(p).clone())
                .filter(|p| !gate.decisions.contains_key(p))
                .fold(Vec::new(), |mut acc, p| {
                    if !acc.contains(&p) {
                        acc.push(p);
                    }
                    acc
                });
            m.ask(
                def_step,
                waiting,
                "reminder",
                "Reminder: your decision is still awaited",
            );
            Ok(())
        }
        TimerPurpose::Escalation { n } => {
            if let Some(esc) = &deadline.escalate {
                super::tasks::escalate(m, def_step, esc, *n);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::satisfied;

    #[test]
    fn one_person_counts_once_across_groups() {
        // One DPO and one legal needed; a single person in both groups is not enough.
        assert!(!satisfied(&[1, 1], &[vec![0, 1]]));
        assert!(satisfied(&[1, 1], &[vec![0, 1], vec![1]]));
        // Order of arrival does not matter: the matching reassigns.
        assert!(satisfied(&[1, 1], &[vec![1], vec![0, 1]]));
    }

    #[test]
    fn n_of_m_needs_n_distinct_approvers() {
        assert!(!satisfied(&[2], &[vec![0]]));
        assert!(satisfied(&[2], &[vec![0], vec![0]]));
        assert!(!satisfied(&[2, 1], &[vec![0], vec![0]]));
        assert!(satisfied(&[2, 1], &[vec![0, 1], vec![0], vec![0]]));
    }
}
