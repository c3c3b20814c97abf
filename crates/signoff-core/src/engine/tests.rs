//! The engine's rules, one behaviour per test, on small inline definitions.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::*;
use crate::event::Timestamp;
use crate::workflow::{Loaded, load};

/// A directory in memory: person -> (roles, team).
struct Dir(BTreeMap<&'static str, (Vec<&'static str>, &'static str)>);

impl People for Dir {
    fn holders(&self, role: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, (roles, _))| roles.contains(&role))
            .map(|(p, _)| (*p).to_owned())
            .collect()
    }
    fn holds(&self, person: &str, role: &str) -> bool {
        self.0.get(person).is_some_and(|(r, _)| r.contains(&role))
    }
    fn exists(&self, person: &str) -> bool {
        self.0.contains_key(person)
    }
    fn name(&self, person: &str) -> Option<String> {
        // Names the tests can tell from ids: "lea" is "Lea Lastname".
        self.0
            .contains_key(person)
            .then(|| format!("{} Lastname", crate::workflow::humanize(person)))
    }
    fn profile(&self, person: &str) -> Option<Actor> {
        self.0.get(person).map(|(roles, team)| Actor {
            id: person.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            team: Some((*team).to_owned()),
            workflows: None,
        })
    }
}

fn dir() -> Dir {
    Dir(BTreeMap::from([
        ("rita", (vec!["engineer"], "payments")),
        ("tom", (vec!["team-lead"], "payments")),
        ("tess", (vec!["team-lead"], "search")),
        ("bea", (vec!["change-board"], "ops")),
        ("ben", (vec!["change-board"], "ops")),
        ("bo", (vec!["change-board", "legal"], "ops")),
        ("lea", (vec!["legal"], "legal")),
        ("cto", (vec!["cto"], "exec")),
        ("ruth", (vec!["auditor"], "audit")),
        ("mia", (vec!["operator"], "operations")),
    ]))
}

const DEPLOY: &str = r#"
id: deploy
title: Deployment
roles:
  team-lead: {}
  change-board: {}
  legal: {}
  cto: {}
steps:
  - id: request
    form:
      fields:
        - id: service
          type: text
          required: true
        - id: team
          type: text
          required: true
        - id: risk
          type: choice
          options: [low, high]
          required: true
    next: route
  - id: route
    branch:
      - when: data.request.risk == "high"
        next: board
    next: team-review
  - id: team-review
    approval:
      approvers:
        - role: team-lead
          when: approver.team == data.request.team
      justification:
        reject:
          min_length: 10
      deadline:
        after: 3d
        reminders: [1d]
        escalate:
          after: 2d
          to: { role: cto }
        on_expiry: expire
    next: approved
    on_reject: rejected
    on_expire: expired
  - id: board
    parallel:
      branches: [cab, legal-review]
      join: together
  - id: cab
    approval:
      approvers:
        - role: change-board
          count: 2
      revocable: true
      delegation: true
    next: together
    on_reject: rejected
  - id: legal-review
    approval:
      approvers:
        - role: legal
    next: together
    on_reject: rejected
  - id: together
    join: all
    next: approved
  - id: approved
    end: { outcome: approved }
  - id: rejected
    end: { outcome: rejected }
  - id: expired
    end: { outcome: expired }
"#;

fn loaded(text: &str) -> Loaded {
    match load("test.yaml", text) {
        Ok(l) => l,
        Err(problems) => panic!(
            "{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// An instance driven command by command, keeping every event (the log, in miniature).
struct Run {
    loaded: Loaded,
    dir: Dir,
    state: Instance,
    log: Vec<InstanceEvent>,
    now: Timestamp,
}

impl Run {
    fn start(text: &str, requester: &str) -> Self {
        let mut run = Self {
            loaded: loaded(text),
            dir: dir(),
            state: Instance::new("i-1"),
            log: Vec::new(),
            now: Timestamp::parse_rfc3339("2026-11-23T09:00:00Z").unwrap(),
        };
        run.act(
            requester,
            Command::Start {
                input: json!({}),
                roles: BTreeMap::new(),
            },
        )
        .unwrap();
        run
    }

    fn act(&mut self, who: &str, command: Command) -> Result<Vec<InstanceEvent>, Rejection> {
        let actor = if who == SYSTEM {
            Actor::system()
        } else {
            self.dir.profile(who).unwrap_or(Actor {
                id: who.to_owned(),
                roles: BTreeSet::new(),
                team: None,
                workflows: None,
            })
        };
        let ctx = Context {
            now: self.now,
            actor: &actor,
            people: &self.dir,
        };
        let events = decide(&self.loaded, &self.state, &command, &ctx)?;
        for e in &events {
            self.state.evolve(e);
        }
        self.log.extend(events.clone());
        Ok(events)
    }

    fn submit(&mut self, who: &str, values: Value) -> Result<Vec<InstanceEvent>, Rejection> {
        let Value::Object(values) = values else {
            panic!("values must be an object")
        };
        self.act(
            who,
            Command::Submit {
                step: "request".into(),
                values,
            },
        )
    }

    fn decide(
        &mut self,
        who: &str,
        step: &str,
        verdict: Verdict,
        why: &str,
    ) -> Result<Vec<InstanceEvent>, Rejection> {
        self.act(
            who,
            Command::Decide {
                step: step.into(),
                verdict,
                justification: why.into(),
                shown: None,
            },
        )
    }

    fn outcome(&self) -> Option<String> {
        match &self.state.status {
            Status::Ended { outcome, .. } => Some(outcome.clone()),
            _ => None,
        }
    }

    fn fire_due(&mut self) -> usize {
        let due: Vec<String> = self
            .state
            .timers
            .iter()
            .filter(|(_, t)| t.due <= self.now)
            .map(|(id, _)| id.clone())
            .collect();
        // A timer voided by an earlier one in this batch is refused; only those that fired count.
        due.iter()
            .filter(|id| {
                self.act(SYSTEM, Command::FireTimer { id: (*id).clone() })
                    .is_ok()
            })
            .count()
    }
}

fn low_risk(team: &str) -> Value {
    json!({"service": "api", "team": team, "risk": "low"})
}

/// A high-risk change of the payments team: the board (two) and legal, in parallel.
fn high_risk() -> Value {
    json!({"service": "db", "team": "payments", "risk": "high"})
}

#[test]
fn low_risk_change_is_approved_by_a_lead_of_the_owning_team() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", low_risk("payments")).unwrap();
    assert!(run.state.active.contains_key("team-review"));
    // tess is a team lead, but of another team: her approval would not count.
    let err = run
        .decide("tess", "team-review", Verdict::Approve, "")
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    assert!(
        err.message.contains("approver.team == data.request.team"),
        "{err}"
    );
    run.decide("tom", "team-review", Verdict::Approve, "ok")
        .unwrap();
    assert_eq!(run.outcome().as_deref(), Some("approved"));
}

#[test]
fn requester_cannot_approve_own_deployment() {
    let mut run = Run::start(DEPLOY, "tom");
    run.submit("tom", low_risk("payments")).unwrap();
    let err = run
        .decide("tom", "team-review", Verdict::Approve, "mine")
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    assert!(err.message.contains("second person"), "{err}");
    assert!(run.state.is_running());
}

#[test]
fn a_refusal_names_the_first_reason_in_order() {
    // Not open: the low-risk review is not on a high-risk change's path.
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", high_risk()).unwrap();
    let err = run
        .decide("tom", "team-review", Verdict::Approve, "")
        .unwrap_err();
    assert_ne!(err.kind, RejectionKind::Forbidden, "{err}");
    // Not a holder of the role: the requester who holds no legal role is told that, not that
    // she requested it.
    let err = run
        .decide("rita", "legal-review", Verdict::Approve, "")
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    assert!(
        err.message.contains("not an approver") && err.message.contains("legal role"),
        "{err}"
    );
    // Separation of duties: a requester who holds the role.
    let mut run = Run::start(DEPLOY, "bo");
    run.submit("bo", high_risk()).unwrap();
    let err = run.decide("bo", "cab", Verdict::Approve, "").unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    assert!(err.message.contains("separation of duties"), "{err}");
    // Already decided: after the rest.
    run.decide("bea", "cab", Verdict::Approve, "").unwrap();
    let err = run.decide("bea", "cab", Verdict::Approve, "").unwrap_err();
    assert!(err.message.contains("you already"), "{err}");
}

#[test]
fn rejection_needs_a_justification_long_enough() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", low_risk("payments")).unwrap();
    let err = run
        .decide("tom", "team-review", Verdict::Reject, "no")
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Invalid);
    assert_eq!(err.field.as_deref(), Some("justification"));
    assert!(err.message.contains("at least 10"), "{err}");
    run.decide(
        "tom",
        "team-review",
        Verdict::Reject,
        "no rollback plan given",
    )
    .unwrap();
    assert_eq!(run.outcome().as_deref(), Some("rejected"));
}

#[test]
fn a_form_value_of_the_wrong_type_names_the_field() {
    let mut run = Run::start(DEPLOY, "rita");
    let err = run
        .submit(
            "rita",
            json!({"service": "api", "team": "payments", "risk": "extreme"}),
        )
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("risk"));
    assert!(err.message.contains("one of low, high"), "{err}");
    let err = run
        .submit("rita", json!({"service": 3, "team": "x", "risk": "low"}))
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("service"));
}

#[test]
fn high_risk_needs_two_board_members_and_legal_each_counted_once() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", high_risk()).unwrap();
    assert!(run.state.active.contains_key("cab"));
    assert!(run.state.active.contains_key("legal-review"));
    run.decide("bo", "cab", Verdict::Approve, "").unwrap();
    run.decide("bea", "cab", Verdict::Approve, "").unwrap();
    // The board is done; legal is still open and the instance waits at the join.
    assert!(!run.state.active.contains_key("cab"));
    assert!(run.state.active.contains_key("legal-review"));
    assert!(run.state.is_running());
    // Resolving the board's gate did not touch legal's gate.
    run.decide("lea", "legal-review", Verdict::Approve, "fine")
        .unwrap();
    assert_eq!(run.outcome().as_deref(), Some("approved"));
}

#[test]
fn who_decided_is_no_longer_waited_for() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", high_risk()).unwrap();
    assert_eq!(run.state.active["cab"].waiting_for(), ["bea", "ben", "bo"]);
    run.decide("bea", "cab", Verdict::Approve, "").unwrap();
    let cab = &run.state.active["cab"];
    assert!(!cab.waits_for("bea"));
    assert_eq!(cab.waiting_for(), ["ben", "bo"]);
    // The requester is never waited for on her own change.
    assert!(!run.state.active["legal-review"].waits_for("rita"));
}

#[test]
fn an_instance_is_called_by_its_title_template_once_its_fields_are_in() {
    let titled = DEPLOY.replacen(
        "title: Deployment\n",
        "title: Deployment\ninstance_title: \"{{ data.request.service }} ({{ data.request.risk }} risk)\"\n",
        1,
    );
    let mut run = Run::start(&titled, "rita");
    let definition = &run.loaded.definition;
    assert_eq!(
        run.state.title(definition),
        "Deployment",
        "nothing filled in yet"
    );
    run.submit("rita", high_risk()).unwrap();
    assert_eq!(run.state.title(&run.loaded.definition), "db (high risk)");
    // A misspelt field is caught when the definition loads, with its place.
    let misspelt = titled.replace("data.request.risk", "data.request.rsik");
    let Err(problems) = load("test.yaml", &misspelt) else {
        panic!("a title that reads a field that does not exist loads");
    };
    assert!(
        problems.iter().any(|p| p.message.contains("rsik")),
        "{problems:?}"
    );
}

#[test]
fn one_person_counts_once_within_a_group() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", high_risk()).unwrap();
    run.decide("bea", "cab", Verdict::Approve, "").unwrap();
    let err = run.decide("bea", "cab", Verdict::Approve, "").unwrap_err();
    assert_eq!(err.kind, RejectionKind::Closed);
    assert!(err.message.contains("never changed"), "{err}");
    assert!(run.state.active.contains_key("cab"));
}

#[test]
fn a_revoked_decision_no_longer_counts_and_may_be_made_again() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", high_risk()).unwrap();
    run.decide("bea", "cab", Verdict::Approve, "").unwrap();
    run.act(
        "bea",
        Command::Revoke {
            step: "cab".into(),
            reason: "saw the incident".into(),
        },
    )
    .unwrap();
    run.decide("ben", "cab", Verdict::Approve, "").unwrap();
    assert!(run.state.active.contains_key("cab"), "one approval left");
    run.decide("bea", "cab", Verdict::Reject, "").unwrap();
    assert_eq!(run.outcome().as_deref(), Some("rejected"));
    // bea's first decision was followed by her revocation, not changed; replay agrees.
    let bea: Vec<&str> = run
        .log
        .iter()
        .filter_map(|e| match e {
            InstanceEvent::Decided { by, verdict, .. } if by == "bea" => Some(match verdict {
                Verdict::Approve => "approve",
                Verdict::Reject => "reject",
            }),
            InstanceEvent::Revoked { by, .. } if by == "bea" => Some("revoke"),
            _ => None,
        })
        .collect();
    assert_eq!(bea, ["approve", "revoke", "reject"]);
    assert_eq!(replay("i-1", &run.log), run.state);
}

#[test]
fn delegation_goes_to_another_holder_of_the_role_and_is_recorded() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", high_risk()).unwrap();
    let err = run
        .act(
            "bea",
            Command::Delegate {
                step: "cab".into(),
                to: "lea".into(),
                reason: String::new(),
            },
        )
        .unwrap_err();
    assert!(err.message.contains("does not hold"), "{err}");
    run.act(
        "bea",
        Command::Delegate {
            step: "cab".into(),
            to: "ben".into(),
            reason: "on leave".into(),
        },
    )
    .unwrap();
    let err = run.decide("bea", "cab", Verdict::Approve, "").unwrap_err();
    assert!(err.message.contains("delegated"), "{err}");
    run.decide("ben", "cab", Verdict::Approve, "").unwrap();
    let on_behalf = run.log.iter().find_map(|e| match e {
        InstanceEvent::Decided { on_behalf_of, .. } => on_behalf_of.clone(),
        _ => None,
    });
    assert_eq!(on_behalf.as_deref(), Some("bea"));
}

#[test]
fn an_unanswered_gate_reminds_escalates_and_expires_each_timer_once() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", low_risk("payments")).unwrap();
    assert_eq!(run.fire_due(), 0);
    // Two days: the reminder (1 day before the 3-day deadline) and the escalation to the CTO.
    run.now = Timestamp(run.now.0 + 2 * 86_400 * 1_000_000);
    assert_eq!(run.fire_due(), 2);
    assert_eq!(run.fire_due(), 0, "each timer fires once");
    let told: Vec<&str> = run
        .log
        .iter()
        .filter_map(|e| match e {
            InstanceEvent::NotificationRequested { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        told.contains(&"reminder") && told.contains(&"escalation"),
        "{told:?}"
    );
    // The CTO may now decide for the whole gate.
    assert!(
        run.state.active["team-review"]
            .gate
            .as_ref()
            .is_some_and(|g| g.escalated == ["cto"])
    );
    run.now = Timestamp(run.now.0 + 86_400 * 1_000_000);
    assert_eq!(run.fire_due(), 1);
    assert_eq!(run.outcome().as_deref(), Some("expired"));
    let err = run
        .decide("tom", "team-review", Verdict::Approve, "")
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Closed);
}

#[test]
fn a_decision_records_what_was_shown_and_refuses_a_stale_view() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", low_risk("payments")).unwrap();
    let err = run
        .act(
            "tom",
            Command::Decide {
                step: "team-review".into(),
                verdict: Verdict::Approve,
                justification: String::new(),
                shown: Some("sha256:old".into()),
            },
        )
        .unwrap_err();
    assert!(err.message.contains("changed since"), "{err}");
    let shown = View::of(&run.loaded.definition, &run.state, &dir()).hash();
    let events = run
        .act(
            "tom",
            Command::Decide {
                step: "team-review".into(),
                verdict: Verdict::Approve,
                justification: String::new(),
                shown: Some(shown.clone()),
            },
        )
        .unwrap();
    assert!(events.iter().any(|e| matches!(e,
        InstanceEvent::Decided { shown: s, roles, .. } if *s == shown && roles == &["team-lead"])));
}

/// Clients of the API (the CLI with `--server`) read an instance back from its JSON: nothing
/// may be lost or changed on the way, open gates, decisions and timers included.
#[test]
fn an_instance_reads_back_from_its_json_as_it_was() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", high_risk()).unwrap();
    run.decide("bea", "cab", Verdict::Approve, "fine by me")
        .unwrap();
    assert!(run.state.active.values().any(|a| a.gate.is_some()));
    let text = serde_json::to_string(&run.state).unwrap();
    let back: Instance = serde_json::from_str(&text).unwrap();
    assert_eq!(back, run.state);
    let started = Run::start(DEPLOY, "rita");
    let text = serde_json::to_string(&started.state).unwrap();
    assert_eq!(
        serde_json::from_str::<Instance>(&text).unwrap(),
        started.state
    );
}

#[test]
fn replaying_the_events_gives_the_live_state() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", high_risk()).unwrap();
    run.decide("bea", "cab", Verdict::Approve, "").unwrap();
    assert_eq!(replay("i-1", &run.log), run.state);
}

#[test]
fn a_gate_records_its_timers_with_its_entry_and_a_branch_is_one_event() {
    let mut run = Run::start(DEPLOY, "rita");
    let events = run.submit("rita", low_risk("payments")).unwrap();
    let types: Vec<String> = events.iter().map(|e| e.to_parts().unwrap().0).collect();
    assert_eq!(
        types,
        [
            "signoff.form.submitted",
            "signoff.step.completed",
            "signoff.step.passed",
            "signoff.step.entered",
            "signoff.notification.requested",
        ]
    );
    assert!(
        matches!(&events[2], InstanceEvent::StepPassed { step, outcome, next: Some(next), .. }
        if step == "route" && outcome == "default" && next == "team-review")
    );
    let InstanceEvent::StepEntered { timers, .. } = &events[3] else {
        panic!("{:?}", events[3]);
    };
    let ids: Vec<&str> = timers.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "team-review#1:deadline",
            "team-review#1:reminder-1",
            "team-review#1:escalation-1"
        ]
    );
    // Pending, as if each had been scheduled by an event of its own.
    let pending: Vec<&str> = run.state.timers.keys().map(String::as_str).collect();
    assert_eq!(
        pending,
        [
            "team-review#1:deadline",
            "team-review#1:escalation-1",
            "team-review#1:reminder-1"
        ]
    );
    assert_eq!(run.state.activations.get("route"), Some(&1));
    assert!(!run.state.active.contains_key("route"));
}

/// The log as the engine wrote it before a step's timers went into its entry and a step that
/// needs nobody became one event: each timer its own event, each passed step entered then
/// completed.
fn as_written_before(log: &[InstanceEvent]) -> Vec<InstanceEvent> {
    let mut old = Vec::new();
    for event in log {
        match event.clone() {
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
                old.push(InstanceEvent::StepEntered {
                    step: step.clone(),
                    activation,
                    branch,
                    at,
                    gate,
                    tasks,
                    assignees,
                    timers: Vec::new(),
                });
                old.extend(timers.into_iter().map(|t| InstanceEvent::TimerScheduled {
                    id: t.id,
                    step: step.clone(),
                    purpose: t.purpose,
                    due: t.due,
                }));
            }
            InstanceEvent::StepPassed {
                step,
                activation,
                branch,
                outcome,
                next,
                at,
                ..
            } => {
                old.push(InstanceEvent::StepEntered {
                    step: step.clone(),
                    activation,
                    branch,
                    at,
                    gate: None,
                    tasks: None,
                    assignees: Vec::new(),
                    timers: Vec::new(),
                });
                old.push(InstanceEvent::StepCompleted {
                    step,
                    outcome,
                    next,
                    at,
                });
            }
            other => old.push(other),
        }
    }
    old
}

#[test]
fn logs_written_before_steps_passed_replay_to_the_same_state() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", high_risk()).unwrap();
    run.decide("bea", "cab", Verdict::Approve, "").unwrap();
    let mut checked = 0;
    let mut check = |log: &[InstanceEvent]| {
        let old = as_written_before(log);
        let mut was = replay("i-1", &old);
        let now = replay("i-1", log);
        assert!(old.len() > log.len(), "the old form has more events");
        was.version = now.version;
        assert_eq!(was, now);
        checked += 1;
    };
    check(&run.log);
    run.decide("ben", "cab", Verdict::Approve, "").unwrap();
    check(&run.log);
    run.decide("lea", "legal-review", Verdict::Approve, "")
        .unwrap();
    assert_eq!(run.outcome().as_deref(), Some("approved"));
    check(&run.log);
    assert_eq!(checked, 3);
}

#[test]
fn events_round_trip_through_their_log_form() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", low_risk("payments")).unwrap();
    for event in &run.log {
        let (ty, data) = event.to_parts().unwrap();
        assert_eq!(
            &InstanceEvent::from_parts(&ty, &data.to_string()).unwrap(),
            event
        );
        assert!(
            event::TYPES.contains(&ty.as_str()),
            "{ty} is not registered"
        );
    }
}

const CHECKLIST: &str = r#"
id: checklist
title: Checklist
roles:
  commander:
    field: declare.commander
steps:
  - id: declare
    form:
      fields:
        - id: commander
          type: person
          required: true
    next: respond
  - id: respond
    tasks:
      items:
        - id: mitigate
          title: Mitigate
          owner: { role: commander }
          due: 1h
        - id: comms
          title: Tell customers
          owner: { role: commander }
    status_updates:
      every: 30m
      by: { role: commander }
    next: done
  - id: done
    end: { outcome: resolved }
"#;

#[test]
fn tasks_close_the_step_when_done_or_explicitly_not_done() {
    let mut run = Run::start(CHECKLIST, "rita");
    run.act(
        "rita",
        Command::Submit {
            step: "declare".into(),
            values: Map::from_iter([("commander".to_owned(), json!("tom"))]),
        },
    )
    .unwrap();
    let complete = |item: &str, status, note: &str| Command::Complete {
        step: "respond".into(),
        item: item.into(),
        status,
        note: note.into(),
    };
    let err = run
        .act("rita", complete("mitigate", TaskStatus::Done, ""))
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    run.act("tom", complete("mitigate", TaskStatus::Done, ""))
        .unwrap();
    for reason in [" ", "x", "n/a      "] {
        let err = run
            .act("tom", complete("comms", TaskStatus::NotDoing, reason))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("note"));
        assert!(err.message.contains("at least 10 characters"), "{err}");
    }
    run.act(
        "tom",
        complete("comms", TaskStatus::NotDoing, "no customer impact"),
    )
    .unwrap();
    assert_eq!(run.outcome().as_deref(), Some("resolved"));
}

#[test]
fn a_late_status_update_reminds_the_commander_and_an_update_resets_the_cadence() {
    let mut run = Run::start(CHECKLIST, "rita");
    run.act(
        "rita",
        Command::Submit {
            step: "declare".into(),
            values: Map::from_iter([("commander".to_owned(), json!("tom"))]),
        },
    )
    .unwrap();
    run.now = Timestamp(run.now.0 + 20 * 60 * 1_000_000);
    run.act(
        "tom",
        Command::PostStatus {
            step: None,
            text: "mitigating".into(),
        },
    )
    .unwrap();
    // At 30 minutes the first timer fires, but an update came after it was set: no reminder.
    run.now = Timestamp(run.now.0 + 10 * 60 * 1_000_000);
    run.fire_due();
    let reminders = |run: &Run| {
        run.log
            .iter()
            .filter(|e| matches!(e, InstanceEvent::NotificationRequested { reason, .. } if reason == "status_update_due"))
            .count()
    };
    assert_eq!(reminders(&run), 0);
    // At 50 minutes the update is due (20 + 30) and late: one reminder to tom.
    run.now = Timestamp(run.now.0 + 20 * 60 * 1_000_000);
    run.fire_due();
    assert_eq!(reminders(&run), 1);
}

#[test]
fn commands_on_an_ended_instance_are_refused() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", low_risk("payments")).unwrap();
    run.decide("tom", "team-review", Verdict::Approve, "")
        .unwrap();
    let err = run.submit("rita", low_risk("payments")).unwrap_err();
    assert_eq!(err.kind, RejectionKind::Closed);
    assert!(err.message.contains("ended with the outcome"), "{err}");
}

/// A memo reviewed by one named person: a workflow that names no role, so only a part in the
/// instance lets someone in.
const MEMO: &str = "
id: memo
title: Memo
steps:
  - id: request
    form: {fields: [{id: text, type: text}]}
    next: review
  - id: review
    approval: {approvers: [{people: [tom]}]}
    next: done
    on_reject: done
  - id: done
    end: {outcome: done}
";

fn comment(run: &mut Run, who: &str) -> Result<Vec<InstanceEvent>, Rejection> {
    run.act(
        who,
        Command::Comment {
            text: "looks fine".into(),
        },
    )
}

#[test]
fn a_comment_is_by_those_who_may_read_the_instance_and_not_by_an_auditor() {
    let mut run = Run::start(MEMO, "rita");
    let err = comment(&mut run, "tom").unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    assert!(
        err.message.contains("comments are by its requester"),
        "{err}"
    );
    run.submit("rita", json!({"text": "hello"})).unwrap();
    // Now the gate waits for tom: he takes part, and may comment.
    assert_eq!(comment(&mut run, "tom").unwrap().len(), 1);
    assert_eq!(comment(&mut run, "rita").unwrap().len(), 1);
    assert_eq!(comment(&mut run, SYSTEM).unwrap().len(), 1);
    for outsider in ["mallory", "lea", "ruth"] {
        let err = comment(&mut run, outsider).unwrap_err();
        assert_eq!(err.kind, RejectionKind::Forbidden, "{outsider}");
    }
    let err = comment(&mut run, "ruth").unwrap_err();
    assert!(
        err.message.contains("an auditor reads and changes nothing"),
        "{err}"
    );
    // A role the workflow names lets its holders in.
    let mut run = Run::start(DEPLOY, "rita");
    assert_eq!(comment(&mut run, "lea").unwrap().len(), 1);
    assert!(comment(&mut run, "ruth").is_err());
}

/// A release: the build is signalled by whom the default admits; the deployment by a team lead
/// or bea only. lea fills in the request for rita.
const RELEASE: &str = "
id: release
title: Release
roles:
  team-lead: {}
steps:
  - id: request
    form: {by: {person: lea}, fields: [{id: service, type: text}]}
    next: built
  - id: built
    wait: {signal: built}
    next: deployed
  - id: deployed
    wait: {signal: deployed, by: [{role: team-lead}, {person: bea}]}
    next: done
  - id: done
    end: {outcome: released}
";

fn signal(run: &mut Run, who: &str, name: &str) -> Result<Vec<InstanceEvent>, Rejection> {
    run.act(who, Command::Signal { name: name.into() })
}

#[test]
fn a_signal_without_by_is_sent_by_the_requester_or_whoever_filled_in_a_form() {
    let mut run = Run::start(RELEASE, "rita");
    run.submit("lea", json!({"service": "api"})).unwrap();
    for outsider in ["tom", "mallory", "ruth"] {
        let err = signal(&mut run, outsider, "built").unwrap_err();
        assert_eq!(err.kind, RejectionKind::Forbidden, "{outsider}");
        assert!(
            err.message
                .contains("sent by the requester (rita) or whoever filled in"),
            "{err}"
        );
    }
    assert!(run.state.active.contains_key("built"));
    signal(&mut run, "lea", "built").unwrap();
    assert!(run.state.active.contains_key("deployed"));

    let mut run = Run::start(RELEASE, "rita");
    run.submit("lea", json!({"service": "api"})).unwrap();
    signal(&mut run, "rita", "built").unwrap();
    assert!(run.state.active.contains_key("deployed"));
}

#[test]
fn a_signal_with_by_is_sent_only_by_those_it_names_and_the_engine() {
    let mut run = Run::start(RELEASE, "rita");
    run.submit("lea", json!({"service": "api"})).unwrap();
    signal(&mut run, "rita", "built").unwrap();
    for refused in ["rita", "lea", "ruth"] {
        let err = signal(&mut run, refused, "deployed").unwrap_err();
        assert_eq!(err.kind, RejectionKind::Forbidden, "{refused}");
        assert!(
            err.message
                .contains(r#"the signal "deployed" that step "deployed" waits for is sent by the team-lead role or bea"#),
            "{err}"
        );
    }
    assert!(run.state.active.contains_key("deployed"));
    signal(&mut run, "tess", "deployed").unwrap();
    assert_eq!(run.outcome().as_deref(), Some("released"));

    for sender in ["bea", SYSTEM] {
        let mut run = Run::start(RELEASE, "rita");
        run.submit("lea", json!({"service": "api"})).unwrap();
        signal(&mut run, SYSTEM, "built").unwrap();
        signal(&mut run, sender, "deployed").unwrap();
        assert_eq!(run.outcome().as_deref(), Some("released"), "{sender}");
    }
}

#[test]
fn a_signal_no_open_step_waits_for_is_refused_after_the_rights() {
    let mut run = Run::start(RELEASE, "rita");
    let err = signal(&mut run, "mallory", "deployed").unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    assert!(signal(&mut run, "ruth", "deployed").is_err());
    // tom may comment: he is told that nothing waits for it yet, and nothing is recorded.
    let err = signal(&mut run, "tom", "deployed").unwrap_err();
    assert_eq!(err.kind, RejectionKind::Closed, "{err}");
    assert!(
        err.message
            .contains("step \"deployed\" takes it once it is reached"),
        "{err}"
    );
    let err = signal(&mut run, "tom", "deploy").unwrap_err();
    assert_eq!(err.kind, RejectionKind::Invalid, "{err}");
    assert!(
        err.message
            .contains("takes no signal \"deploy\"; it takes \"built\", \"deployed\""),
        "{err}"
    );
    assert!(run.state.active.contains_key("request"));
    assert!(
        !run.log
            .iter()
            .any(|e| matches!(e, InstanceEvent::SignalReceived { .. })),
        "nothing recorded"
    );
}

#[test]
fn approvers_the_predicate_leaves_out_are_neither_asked_nor_reminded() {
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", low_risk("payments")).unwrap();
    // tess leads another team: her approval would not count, so she is not asked.
    let gate = run.state.active["team-review"].gate.clone().unwrap();
    assert_eq!(gate.opened.groups[0].eligible, ["tom"]);
    assert_eq!(run.state.active["team-review"].assignees, ["tom"]);
    let asked: Vec<Vec<String>> = run
        .log
        .iter()
        .filter_map(|e| match e {
            InstanceEvent::NotificationRequested { to, reason, .. }
                if reason == "approval_requested" =>
            {
                Some(to.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(asked, [vec!["tom".to_owned()]]);
    // Nor reminded.
    run.now = Timestamp(run.now.0 + 2 * 86_400 * 1_000_000);
    run.fire_due();
    assert!(run.log.iter().all(|e| !matches!(e,
        InstanceEvent::NotificationRequested { to, .. } if to.contains(&"tess".to_owned()))));
    // Asked anyway, she is told why her decision would not count.
    let err = run
        .decide("tess", "team-review", Verdict::Approve, "")
        .unwrap_err();
    assert!(
        err.message.contains("approver.team == data.request.team"),
        "{err}"
    );
    // A team without a lead: the requester (and the operators) are told at once that the gate
    // cannot be approved.
    let mut run = Run::start(DEPLOY, "rita");
    run.submit("rita", low_risk("ops")).unwrap();
    assert!(run.log.iter().any(|e| matches!(e,
        InstanceEvent::NotificationRequested { reason, to, .. }
            if reason == "gate_unsatisfiable" && to == &["rita", "mia"])));
}

const TWO_OWNERS: &str = r#"
id: two-owners
title: Two owners
roles:
  commander:
    field: declare.commander
  scribe:
    field: declare.scribe
  cto: {}
steps:
  - id: declare
    form:
      fields:
        - id: commander
          type: person
          required: true
        - id: scribe
          type: person
          required: true
    next: respond
  - id: respond
    tasks:
      items:
        - id: mitigate
          title: Mitigate
          owner: { role: commander }
        - id: timeline
          title: Keep the timeline
          owner: { role: scribe }
      escalate:
        after: 1h
        to: { role: cto }
    next: done
  - id: done
    end: { outcome: resolved }
"#;

#[test]
fn a_task_is_closed_by_its_owner_or_whom_it_was_escalated_to_not_by_another_owner() {
    let mut run = Run::start(TWO_OWNERS, "rita");
    run.act(
        "rita",
        Command::Submit {
            step: "declare".into(),
            values: Map::from_iter([
                ("commander".to_owned(), json!("tom")),
                ("scribe".to_owned(), json!("bea")),
            ]),
        },
    )
    .unwrap();
    let complete = |item: &str| Command::Complete {
        step: "respond".into(),
        item: item.into(),
        status: TaskStatus::Done,
        note: String::new(),
    };
    // bea owns a task on this checklist, but not this one.
    let err = run.act("bea", complete("mitigate")).unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    assert!(err.message.contains("belongs to tom"), "{err}");
    let err = run.act("cto", complete("mitigate")).unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    // Escalated to, the CTO may close it in the owner's place.
    run.now = Timestamp(run.now.0 + 3_600 * 1_000_000);
    assert_eq!(run.fire_due(), 1);
    run.act("cto", complete("mitigate")).unwrap();
    run.act("bea", complete("timeline")).unwrap();
    assert_eq!(run.outcome().as_deref(), Some("resolved"));
}

const WRITE_UP: &str = r#"
id: write-up
title: Write-up
roles:
  change-board: {}
steps:
  - id: write
    form:
      by: { role: change-board }
      fields:
        - id: author
          type: person
          required: true
    next: review
  - id: review
    approval:
      approvers:
        - role: change-board
      separation:
        exclude: "[data.write.author, submitted_by.write]"
    next: done
    on_reject: done
  - id: done
    end: { outcome: published }
"#;

#[test]
fn whoever_submitted_a_form_can_be_kept_from_approving_it() {
    let mut run = Run::start(WRITE_UP, "rita");
    let Value::Object(values) = json!({"author": "ben"}) else {
        unreachable!()
    };
    // bea writes it naming ben as the author; neither may review it, bo may.
    run.act(
        "bea",
        Command::Submit {
            step: "write".into(),
            values,
        },
    )
    .unwrap();
    assert_eq!(run.state.submitted_by["write"], "bea");
    for who in ["bea", "ben"] {
        let err = run.decide(who, "review", Verdict::Approve, "").unwrap_err();
        assert_eq!(err.kind, RejectionKind::Forbidden, "{who}: {err}");
    }
    run.decide("bo", "review", Verdict::Approve, "").unwrap();
    assert!(matches!(run.state.status, Status::Ended { .. }));
}

#[test]
fn conditions_see_the_data_as_it_is_now_not_as_first_converted() {
    // The machine keeps the variables converted to CEL while they do not change; once they do,
    // a condition must see the new values.
    let loaded = loaded(DEPLOY);
    let people = dir();
    let actor = Actor::system();
    let ctx = Context {
        now: Timestamp(0),
        actor: &actor,
        people: &people,
    };
    let memo = Memo::default();
    let mut m = super::machine::Machine::new(&loaded, &ctx, &Instance::new("i-1"), Some(&memo));
    let high = loaded
        .expression(r#"data.request.risk == "high""#)
        .expect("the deployment definition routes on risk");
    let is_high = |m: &super::machine::Machine<'_>| {
        let vars = m.cel_vars().expect("variables convert");
        high.eval_bool_in(&vars, None).unwrap_or(false)
    };
    m.state
        .data
        .insert("request".into(), json!({"risk": "low", "team": "payments"}));
    m.state.version += 1;
    assert!(!is_high(&m));
    m.state.version += 1;
    assert!(!is_high(&m), "same data under a new version: still low");
    m.state.data.insert(
        "request".into(),
        json!({"risk": "high", "team": "payments"}),
    );
    m.state.version += 1;
    assert!(is_high(&m), "the data changed: the condition sees it");

    // The next command starts from the memo: it must still check it against its own state,
    // whichever instance or version the memo was last filled for.
    let mut state = m.state.clone();
    state
        .data
        .insert("request".into(), json!({"risk": "low", "team": "payments"}));
    let next = super::machine::Machine::new(&loaded, &ctx, &state, Some(&memo));
    assert!(!is_high(&next), "a memo of other data is not used");
    let again = super::machine::Machine::new(&loaded, &ctx, &state, Some(&memo));
    let kept = memo_vars(&memo);
    assert!(!is_high(&again));
    assert!(
        Arc::ptr_eq(&kept, &memo_vars(&memo)),
        "the same data: the memo's conversion is used, not redone"
    );
    // reads_as compares these parts one by one: a variable added to `vars` must be added there.
    let names: Vec<String> = again
        .vars()
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        ["data", "input", "instance", "requester", "submitted_by"],
        "Machine::reads_as must compare every variable"
    );
    let mut other = state.clone();
    other.id = "i-2".into();
    let foreign = super::machine::Machine::new(&loaded, &ctx, &other, Some(&memo));
    assert!(
        !foreign.reads_as(&kept),
        "another instance's variables differ"
    );
    for change in [
        |s: &mut Instance| s.requester = "bob".into(),
        |s: &mut Instance| s.input = json!({"x": 1}),
        |s: &mut Instance| {
            s.submitted_by.insert("request".into(), "tom".into());
        },
        |s: &mut Instance| s.workflow = "other".into(),
    ] {
        let mut changed = state.clone();
        change(&mut changed);
        let m = super::machine::Machine::new(&loaded, &ctx, &changed, None);
        assert!(!m.reads_as(&kept), "each part of the variables is compared");
    }
}

/// What a memo holds now.
fn memo_vars(memo: &Memo) -> Arc<crate::workflow::expr::Variables> {
    memo.get().expect("the memo holds variables")
}

/// A request form (an optional `note` and `reviewer`), then the step `check` under test, then
/// two ends.
fn with_check(check: &str) -> String {
    let other = if check.contains("other") {
        "  - id: other\n    end: { outcome: other }"
    } else {
        ""
    };
    format!(
        r#"
id: rules
title: Rules
roles:
  team-lead: {{}}
steps:
  - id: request
    form:
      fields:
        - id: team
          type: text
          required: true
        - id: note
          type: text
        - id: reviewer
          type: person
    next: check
{check}
  - id: done
    end: {{ outcome: done }}
{other}
"#
    )
}

const EXCLUSION: &str = r#"
  - id: check
    approval:
      approvers:
        - role: team-lead
      separation:
        exclude: "[data.request.reviewer]"
    next: done
    on_reject: other"#;

const PREDICATE: &str = r#"
  - id: check
    approval:
      approvers:
        - role: team-lead
          when: approver.team == data.request.note
      deadline:
        after: 1d
        on_expiry: approve
    next: done
    on_reject: other"#;

const BRANCH: &str = r#"
  - id: check
    branch:
      - when: data.request.note == "urgent"
        next: other
    next: done"#;

const CHILD: &str = r#"
  - id: check
    start_workflow:
      workflow: post-mortem
      input:
        note: data.request.note
    next: done"#;

const WAIT: &str = r#"
  - id: check
    wait:
      until: data.request.note
    next: done"#;

const TEMPLATE: &str = r#"
  - id: check
    notify:
      to: [{ role: requester }]
      subject: "About {{ data.request.note.text }}"
    next: done"#;

/// Runs `check` with a request that leaves `note` out, and checks that the step stopped with a
/// `signoff.step.failed` of `rule` and that nothing went past it.
fn stops_at_check(check: &str, rule: Rule) -> Run {
    let mut run = Run::start(&with_check(check), "rita");
    let events = run.submit("rita", json!({"team": "payments"})).unwrap();
    let failed: Vec<&InstanceEvent> = events
        .iter()
        .filter(|e| matches!(e, InstanceEvent::StepFailed { .. }))
        .collect();
    let [
        InstanceEvent::StepFailed {
            step,
            rule: recorded,
            expression,
            error,
            version,
            definition,
            ..
        },
    ] = failed.as_slice()
    else {
        panic!("one step.failed expected: {events:#?}");
    };
    assert_eq!((step.as_str(), *recorded), ("check", rule));
    assert!(!expression.is_empty() && !error.is_empty());
    assert!(
        expression.contains("data.request.note") || expression.contains("data.request.reviewer"),
        "{expression}"
    );
    assert_eq!(definition, &run.loaded.hash);
    // The data it read: the request just submitted, before the failure itself.
    assert_eq!(*version, run.state.version - 1);
    // Nothing past it: no gate opened, no path taken, nobody told, no workflow asked for.
    assert!(
        events.iter().all(|e| !matches!(
            e,
            InstanceEvent::StepEntered { step, .. } | InstanceEvent::StepPassed { step, .. }
                if step == "check"
        ) && !matches!(
            e,
            InstanceEvent::WorkflowRequested { .. } | InstanceEvent::Ended { .. }
        ) && !matches!(e, InstanceEvent::NotificationRequested { step: Some(s), .. } if s == "check")),
        "{events:#?}"
    );
    assert!(run.state.is_stopped("check"));
    assert!(run.state.is_running());
    assert!(run.state.timers.is_empty(), "a stopped step has no timers");
    assert_eq!(run.outcome(), None);
    assert_eq!(replay("i-1", &run.log), run.state, "replay equals live");
    run
}

#[test]
fn an_exclusion_that_errors_opens_no_gate() {
    let mut run = stops_at_check(EXCLUSION, Rule::Exclusion);
    let err = run
        .decide("tom", "check", Verdict::Approve, "")
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Closed);
    assert!(err.message.contains("stopped"), "{err}");
    assert!(err.message.contains("signoff retry i-1 check"), "{err}");
}

#[test]
fn an_exclusion_that_gives_no_list_of_people_opens_no_gate() {
    let text = with_check(&EXCLUSION.replace("[data.request.reviewer]", "data.request.team"));
    let mut run = Run::start(&text, "rita");
    run.submit("rita", json!({"team": "payments"})).unwrap();
    assert!(run.state.is_stopped("check"));
    let (_, failure) = run.state.failures().next().unwrap();
    assert!(
        failure.error.contains("not a list of person ids"),
        "{failure:?}"
    );
}

#[test]
fn an_approver_predicate_that_errors_admits_nobody() {
    let mut run = stops_at_check(PREDICATE, Rule::ApproverPredicate);
    for who in ["tom", "tess"] {
        let err = run.decide(who, "check", Verdict::Approve, "").unwrap_err();
        assert_eq!(err.kind, RejectionKind::Closed, "{who}: {err}");
    }
    // The deadline that would have approved it on expiry was never set.
    run.now = Timestamp(run.now.0 + 2 * 86_400_000_000);
    assert_eq!(run.fire_due(), 0);
    assert_eq!(run.outcome(), None);
}

#[test]
fn an_approver_predicate_that_errors_when_someone_decides_stops_the_gate() {
    // Admits by team when the note names none; tia, made a lead after the gate opened, is
    // checked only when she decides, and the note then cannot be read.
    let check = PREDICATE.replace(
        "approver.team == data.request.note",
        r#"'approver.id == "tia" ? data.request.note == "x" : approver.team == data.request.team'"#,
    );
    let mut run = Run::start(&with_check(&check), "rita");
    run.submit("rita", json!({"team": "payments"})).unwrap();
    assert!(run.state.active["check"].gate.is_some());
    run.dir.0.insert("tia", (vec!["team-lead"], "payments"));
    // A stranger is refused without the predicate being evaluated: she cannot stop the gate.
    let err = run
        .decide("lea", "check", Verdict::Approve, "")
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    assert!(!run.state.is_stopped("check"));
    let events = run.decide("tia", "check", Verdict::Approve, "").unwrap();
    assert!(
        matches!(
            events.as_slice(),
            [InstanceEvent::StepFailed { step, rule: Rule::ApproverPredicate, activation: 1, .. }]
                if step == "check"
        ),
        "{events:#?}"
    );
    // Not recorded, and the gate is closed to everyone, its deadline void.
    assert!(run.state.timers.is_empty());
    let err = run
        .decide("tom", "check", Verdict::Approve, "")
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Closed);
    assert_eq!(replay("i-1", &run.log), run.state);
}

#[test]
fn a_branch_condition_that_errors_takes_no_path() {
    stops_at_check(BRANCH, Rule::BranchCondition);
}

#[test]
fn a_child_input_that_errors_starts_no_workflow() {
    stops_at_check(CHILD, Rule::WorkflowInput);
}

#[test]
fn a_wait_until_that_errors_or_is_no_time_does_not_pass() {
    stops_at_check(WAIT, Rule::WaitUntil);
    let mut run = Run::start(&with_check(WAIT), "rita");
    run.submit("rita", json!({"team": "payments", "note": "soon"}))
        .unwrap();
    let (_, failure) = run.state.failures().next().unwrap();
    assert!(
        failure.error.contains("not an RFC 3339 time"),
        "{failure:?}"
    );
}

#[test]
fn a_template_that_errors_sends_nothing() {
    stops_at_check(TEMPLATE, Rule::Template);
}

#[test]
fn a_stopped_step_is_retried_by_an_operator_under_the_fixed_definition() {
    let mut run = stops_at_check(BRANCH, Rule::BranchCondition);
    let broken = run.loaded.hash.clone();
    // Nobody but an operator may retry; the requester may cancel.
    let err = run
        .act(
            "rita",
            Command::Retry {
                step: "check".into(),
            },
        )
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    assert!(err.message.contains("operator"), "{err}");
    // Retried as it stands, it stops again, recorded again.
    let events = run
        .act(
            "mia",
            Command::Retry {
                step: "check".into(),
            },
        )
        .unwrap();
    assert!(
        matches!(
            events.as_slice(),
            [
                InstanceEvent::StepRetried { by, .. },
                InstanceEvent::StepFailed { activation: 2, .. }
            ] if by == "mia"
        ),
        "{events:#?}"
    );
    // Fixed, it goes on, and the instance pins the fixed definition.
    run.loaded = loaded(&with_check(&BRANCH.replace(
        r#"data.request.note == "urgent""#,
        r#"has(data.request.note) && data.request.note == "urgent""#,
    )));
    let events = run
        .act(
            "mia",
            Command::Retry {
                step: "check".into(),
            },
        )
        .unwrap();
    assert!(
        matches!(
            &events[0],
            InstanceEvent::StepRetried { definition, previous, .. }
                if definition == &run.loaded.hash && previous == &broken
        ),
        "{events:#?}"
    );
    assert_eq!(run.state.definition, run.loaded.hash);
    assert_eq!(run.outcome().as_deref(), Some("done"));
    assert_eq!(replay("i-1", &run.log), run.state);
    let err = run
        .act(
            "mia",
            Command::Retry {
                step: "check".into(),
            },
        )
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Closed);
}

#[test]
fn only_a_stopped_step_is_retried() {
    let mut run = stops_at_check(EXCLUSION, Rule::Exclusion);
    let err = run
        .act(
            "mia",
            Command::Retry {
                step: "request".into(),
            },
        )
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Closed);
    assert!(err.message.contains("check has"), "{err}");
    // The operators it waits for may read it while it is stopped, and only then.
    let mia = run.dir.profile("mia").unwrap();
    assert!(crate::access::may_read(
        &run.loaded.definition,
        &run.state,
        &mia
    ));
    // An operator may cancel it as well as its requester, while it is stopped.
    let err = run
        .act(
            "tom",
            Command::Cancel {
                reason: "not mine".into(),
            },
        )
        .unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    run.act(
        "mia",
        Command::Cancel {
            reason: "the definition is being fixed".into(),
        },
    )
    .unwrap();
    assert!(run.state.failures().next().is_none());
    assert!(!crate::access::may_read(
        &run.loaded.definition,
        &run.state,
        &mia
    ));
}

#[test]
fn an_operator_cancels_only_an_instance_a_rule_stopped() {
    let mut run = Run::start(DEPLOY, "rita");
    let cancel = || Command::Cancel {
        reason: "tidying up".into(),
    };
    let err = run.act("mia", cancel()).unwrap_err();
    assert_eq!(err.kind, RejectionKind::Forbidden);
    let mut run = stops_at_check(BRANCH, Rule::BranchCondition);
    run.act("mia", cancel()).unwrap();
    assert!(matches!(run.state.status, Status::Cancelled { .. }));
}

#[test]
fn each_kind_of_rule_stopped_is_retried_once_fixed() {
    for (check, rule, broken, fixed) in [
        (
            EXCLUSION,
            Rule::Exclusion,
            "[data.request.reviewer]",
            "has(data.request.reviewer) ? [data.request.reviewer] : []",
        ),
        (
            PREDICATE,
            Rule::ApproverPredicate,
            "approver.team == data.request.note",
            "approver.team == data.request.team",
        ),
        (
            CHILD,
            Rule::WorkflowInput,
            "data.request.note",
            r#"has(data.request.note) ? data.request.note : """#,
        ),
        (
            WAIT,
            Rule::WaitUntil,
            "data.request.note",
            r#"has(data.request.note) ? data.request.note : """#,
        ),
        (
            TEMPLATE,
            Rule::Template,
            "{{ data.request.note.text }}",
            "{{ data.request.note }}",
        ),
    ] {
        let mut run = stops_at_check(check, rule);
        let quoted = |text: &str| format!("'{text}'");
        let fixed_check =
            if check.contains(&quoted(broken)) || check.contains(&format!("\"{broken}\"")) {
                check.replace(broken, fixed)
            } else {
                check.replace(broken, &quoted(fixed))
            };
        run.loaded = loaded(&with_check(&fixed_check));
        let events = run
            .act(
                "mia",
                Command::Retry {
                    step: "check".into(),
                },
            )
            .unwrap();
        assert!(!run.state.is_stopped("check"), "{rule:?}: {events:#?}");
        let went_on = events.iter().any(|e| match e {
            InstanceEvent::StepEntered { step, gate, .. } => step == "check" && gate.is_some(),
            InstanceEvent::WorkflowRequested { input, .. } => input == &json!({"note": ""}),
            InstanceEvent::StepPassed { step, outcome, .. } => {
                step == "check" && (outcome == "waited" || outcome == "sent")
            }
            _ => false,
        });
        assert!(went_on, "{rule:?}: {events:#?}");
        assert_eq!(replay("i-1", &run.log), run.state, "{rule:?}");
    }
}

/// A choice of path, a form on each path, and a review that sends it back to the choice.
const TWO_PATHS: &str = "
id: two-paths
title: Two paths
roles:
  legal: {}
steps:
  - id: choose
    form: {fields: [{id: sought, type: choice, options: [yes, no], required: true}]}
    next: route
  - id: route
    branch:
      - when: data.choose.sought == \"yes\"
        next: sought
    next: not_sought
  - id: sought
    form: {fields: [{id: opinion, type: text, required: true}]}
    next: review
  - id: not_sought
    form: {fields: [{id: reason, type: text, required: true}]}
    next: review
  - id: review
    approval: {approvers: [{role: legal}]}
    next: done
    on_reject: choose
  - id: done
    end: {outcome: done}
";

/// Rita fills the form `step` of `run` with `values`.
fn fill_as_rita(run: &mut Run, step: &str, values: Value) {
    let Value::Object(values) = values else {
        panic!("values must be an object")
    };
    run.act(
        "rita",
        Command::Submit {
            step: step.into(),
            values,
        },
    )
    .unwrap();
}

#[test]
fn answers_of_a_path_no_longer_taken_are_superseded_not_current() {
    let mut run = Run::start(TWO_PATHS, "rita");
    let submit = fill_as_rita;
    submit(&mut run, "choose", json!({"sought": "no"}));
    submit(
        &mut run,
        "not_sought",
        json!({"reason": "no representative body"}),
    );
    run.decide("lea", "review", Verdict::Reject, "ask them after all")
        .unwrap();
    submit(&mut run, "choose", json!({"sought": "yes"}));
    assert!(
        !run.state.data.contains_key("not_sought"),
        "{:?}",
        run.state.data
    );
    assert_eq!(
        run.state.superseded["not_sought"]["reason"],
        "no representative body"
    );
    submit(
        &mut run,
        "sought",
        json!({"opinion": "the works council agrees"}),
    );
    assert!(run.state.data.contains_key("sought"));
    // Replayed from its events, the instance reads the same.
    assert_eq!(replay("i-1", &run.log), run.state);
}

#[test]
fn a_gate_nobody_can_close_is_flagged_told_and_escalated_at_once() {
    let solo = "
id: solo
title: Solo
roles:
  cto: {}
  team-lead: {}
steps:
  - id: sign
    approval:
      approvers: [{role: cto}]
      deadline: {after: 3d, escalate: {after: 2d, to: {role: team-lead}}, on_expiry: expire}
    next: done
    on_reject: done
    on_expire: done
  - id: done
    end: {outcome: ok}
";
    // The only cto asks: separation of duties leaves nobody who may approve.
    let run = Run::start(solo, "cto");
    let gate = run.state.active["sign"].gate.as_ref().unwrap();
    assert_eq!(gate.opened.short(), ["cto needs 1 but has 0 eligible"]);
    let told = run
        .log
        .iter()
        .find_map(|e| match e {
            InstanceEvent::NotificationRequested { to, reason, .. }
                if reason == "gate_unsatisfiable" =>
            {
                Some(to.clone())
            }
            _ => None,
        })
        .expect("the requester and the operators are told");
    assert_eq!(told, ["cto", "mia"]);
    let escalation = run
        .log
        .iter()
        .find_map(|e| match e {
            InstanceEvent::StepEntered { timers, .. } => timers
                .iter()
                .find(|t| matches!(t.purpose, TimerPurpose::Escalation { .. }))
                .map(|t| t.due),
            _ => None,
        })
        .unwrap();
    assert_eq!(escalation, run.now, "escalated at once, not after two days");
    // A gate that can close is escalated after its delay, and flags nothing.
    let run = Run::start(solo, "rita");
    assert!(
        run.state.active["sign"]
            .gate
            .as_ref()
            .unwrap()
            .opened
            .short()
            .is_empty()
    );
}

/// An assessment with every kind of field, in sections, as a controller reads it.
const ASSESSMENT: &str = r#"
id: assessment
title: Assessment
roles:
  legal: {}
steps:
  - id: request
    title: Describe the processing
    form:
      fields:
        - id: processing
          type: text
          label: Processing under assessment
          required: true
        - id: author
          type: person
          label: Author
      sections:
        - title: Principles
          fields:
            - id: legal_basis
              type: choice
              label: Legal basis (art. 6)
              options: [legitimate_interests, consent]
              labels: { consent: "Consent of the data subject (art. 6(1)(a))" }
            - id: categories
              type: multi_choice
              label: Categories of personal data
              options: [contact, online_identifiers]
            - id: transfers_outside_eu
              type: boolean
              label: Are data transferred outside the EU?
            - id: notes
              type: long_text
              label: Notes
        - title: Risks
          fields:
            - id: risks
              type: group
              label: Risks
              fields:
                - { id: threat, type: text, label: Threat }
                - { id: severity, type: choice, label: Severity, options: [limited, maximum] }
    next: review
  - id: review
    approval: {approvers: [{role: legal}]}
    next: done
    on_reject: done
  - id: done
    end: {outcome: done}
"#;

#[test]
fn the_view_reads_answers_under_the_definitions_labels_and_sections() {
    let mut run = Run::start(ASSESSMENT, "rita");
    run.submit(
        "rita",
        json!({
            "processing": "Customer newsletter",
            "author": "lea",
            "legal_basis": "consent",
            "categories": ["contact", "online_identifiers"],
            "transfers_outside_eu": false,
            "notes": "first line\nsecond line",
            "risks": [{"threat": "Illegitimate access", "severity": "maximum"}],
        }),
    )
    .unwrap();
    let view = View::of(&run.loaded.definition, &run.state, &run.dir);
    let part = &view.parts[0];
    assert_eq!(part.title, "Describe the processing");
    assert_eq!(part.by.as_deref(), Some("Rita Lastname"));
    let titles: Vec<Option<&str>> = part.sections.iter().map(|s| s.title.as_deref()).collect();
    assert_eq!(titles, [None, Some("Principles"), Some("Risks")]);
    let text = view.text("");
    for line in [
        "Processing under assessment: Customer newsletter",
        "Author: Lea Lastname (lea)",
        "Legal basis (art. 6): Consent of the data subject (art. 6(1)(a))",
        "Categories of personal data: Contact, Online identifiers",
        "Are data transferred outside the EU?: No",
        "Notes:\n      first line\n      second line",
        "Risks:\n      1. Threat: Illegitimate access; Severity: Maximum",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    // People read words, never the record's JSON or its field ids.
    for raw in [
        "{",
        "\"",
        "transfers_outside_eu",
        "online_identifiers",
        "false",
    ] {
        assert!(!text.contains(raw), "{raw:?} in:\n{text}");
    }
    // Sections keep the form's order, not the alphabet's.
    let principles: Vec<&str> = part.sections[1]
        .answers
        .iter()
        .map(|a| a.field.as_str())
        .collect();
    assert_eq!(
        principles,
        ["legal_basis", "categories", "transfers_outside_eu", "notes"]
    );
}

#[test]
fn the_view_shows_superseded_answers_apart_and_its_hash_follows_what_it_shows() {
    let mut run = Run::start(TWO_PATHS, "rita");
    let submit = fill_as_rita;
    submit(&mut run, "choose", json!({"sought": "no"}));
    submit(
        &mut run,
        "not_sought",
        json!({"reason": "no representative body"}),
    );
    let before = View::of(&run.loaded.definition, &run.state, &run.dir);
    assert_eq!(
        before,
        View::of(&run.loaded.definition, &run.state, &run.dir)
    );
    run.decide("lea", "review", Verdict::Reject, "ask them after all")
        .unwrap();
    submit(&mut run, "choose", json!({"sought": "yes"}));
    let after = View::of(&run.loaded.definition, &run.state, &run.dir);
    let current: Vec<&str> = after.parts.iter().map(|p| p.step.as_str()).collect();
    let aside: Vec<&str> = after.superseded.iter().map(|p| p.step.as_str()).collect();
    assert_eq!((current, aside), (vec!["choose"], vec!["not_sought"]));
    assert!(
        after
            .text("")
            .contains("Superseded (answers of a path no longer taken)\n  Not sought")
    );
    assert_ne!(before.hash(), after.hash());
    // A decision proves what was shown: the hash of this view, not of the record.
    submit(&mut run, "sought", json!({"opinion": "agrees"}));
    let shown = View::of(&run.loaded.definition, &run.state, &run.dir).hash();
    let events = run
        .act(
            "lea",
            Command::Decide {
                step: "review".into(),
                verdict: Verdict::Approve,
                justification: String::new(),
                shown: Some(shown.clone()),
            },
        )
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, InstanceEvent::Decided { shown: s, .. } if *s == shown))
    );
}

#[test]
fn a_choice_is_stored_by_its_value_and_refused_by_its_values() {
    let mut run = Run::start(ASSESSMENT, "rita");
    let err = run
        .submit(
            "rita",
            json!({"processing": "x", "legal_basis": "Consent of the data subject (art. 6(1)(a))"}),
        )
        .unwrap_err();
    assert!(
        err.message
            .contains("must be one of legitimate_interests, consent"),
        "{err}"
    );
    run.submit("rita", json!({"processing": "x", "legal_basis": "consent"}))
        .unwrap();
    assert_eq!(run.state.data["request"]["legal_basis"], "consent");
}
