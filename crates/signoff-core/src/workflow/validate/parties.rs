//! Who takes part: every party names exactly one of a role or a person, every role is defined,
//! every approver group names someone, and a role taken from a form names a person field.

use super::super::model::{Count, FieldType, Party, RoleSpec, Step};
use super::{Checker, closest};

/// The role every workflow has: the person who started the instance.
const REQUESTER: &str = "requester";

pub(super) fn check(c: &mut Checker<'_>) {
    let definition = c.definition;
    for (name, spec) in &definition.roles {
        c.role_field(name, spec);
    }
    for step in &definition.steps {
        let id = step.id.as_str();
        if let Some(by) = step.form.as_ref().and_then(|f| f.by.as_ref()) {
            c.party(step, by, &format!("`by` of form step {id:?}"));
        }
        if let Some(tasks) = &step.tasks {
            for item in &tasks.items {
                if let Some(owner) = &item.owner {
                    let what = format!("`owner` of task {:?} of step {id:?}", item.id.as_str());
                    c.party(step, owner, &what);
                }
            }
            if let Some(escalate) = &tasks.escalate {
                c.party(
                    step,
                    &escalate.to,
                    &format!("escalation `to` of step {id:?}"),
                );
            }
        }
        if let Some(approval) = &step.approval {
            c.approvers(step);
            if let Some(escalate) = approval.deadline.as_ref().and_then(|d| d.escalate.as_ref()) {
                c.party(
                    step,
                    &escalate.to,
                    &format!("escalation `to` of step {id:?}"),
                );
            }
        }
        if let Some(notify) = &step.notify {
            if notify.to.is_empty() {
                c.hinted(
                    step.id.at,
                    format!("notify step {id:?} tells nobody"),
                    "list who is told under `to:`, e.g. `- role: requester`",
                );
            }
            for party in &notify.to {
                c.party(step, party, &format!("`to` of notify step {id:?}"));
            }
        }
        if let Some(by) = step.wait.as_ref().and_then(|w| w.by.as_ref()) {
            if by.is_empty() {
                c.hinted(
                    step.id.at,
                    format!(
                        "`by` of wait step {id:?} names nobody, so no one could send its signal"
                    ),
                    "list who may send it, e.g. `- role: requester`, or leave `by` out for the \
                     requester and whoever filled in a form",
                );
            }
            for party in by {
                c.party(step, party, &format!("`by` of wait step {id:?}"));
            }
        }
        if let Some(cadence) = &step.status_updates {
            c.party(
                step,
                &cadence.by,
                &format!("status updates `by` of step {id:?}"),
            );
            if let Some(escalate) = &cadence.escalate {
                let what = format!("status updates `escalate` of step {id:?}");
                c.party(step, escalate, &what);
            }
        }
    }
}

impl Checker<'_> {
    fn party(&mut self, step: &Step, party: &Party, what: &str) {
        match (&party.role, &party.person) {
            (None, None) => self.hinted(
                step.id.at,
                format!("{what} names neither a role nor a person"),
                "write `role: <role>` or `person: <person id>`",
            ),
            (Some(_), Some(person)) => self.hinted(
                person.at,
                format!("{what} names both a role and a person"),
                "keep one of `role` and `person`",
            ),
            (Some(role), None) => self.role(role.as_str(), role.at, what),
            (None, Some(person)) => {
                if person.trim().is_empty() {
                    self.hinted(
                        person.at,
                        format!("{what} names an empty person id"),
                        "write the person's id from the directory",
                    );
                }
            }
        }
    }

    /// Checks that `role` is `requester` or defined under `roles:`.
    fn role(&mut self, role: &str, at: super::Position, what: &str) {
        let roles = &self.definition.roles;
        if role == REQUESTER || roles.contains_key(role) {
            return;
        }
        let names = roles.keys().map(String::as_str).chain([REQUESTER]);
        let defined: Vec<&str> = names.clone().collect();
        let hint = match closest(role, names) {
            Some(name) => format!("did you mean `{name}`?"),
            None => format!(
                "define it under `roles:`; the roles are: {}",
                defined.join(", ")
            ),
        };
        self.hinted(
            at,
            format!("{what} names role {role:?}, which is not defined"),
            hint,
        );
    }

    fn approvers(&mut self, step: &Step) {
        let Some(approval) = &step.approval else {
            return;
        };
        let id = step.id.as_str();
        if approval.approvers.is_empty() {
            self.hinted(
                step.id.at,
                format!("approval step {id:?} has no approvers"),
                "list at least one group under `approvers:`, e.g. `- role: reviewer`",
            );
        }
        for (n, group) in approval.approvers.iter().enumerate() {
            let what = format!("approver group {} of step {id:?}", n + 1);
            if let Some(role) = &group.role {
                self.role(role.as_str(), role.at, &what);
            } else if group.people.is_empty() {
                self.hinted(
                    step.id.at,
                    format!("{what} names neither a role nor people"),
                    "write `role: <role>` or `people: [<person id>, …]`",
                );
            }
            if group.count == Count::Number(0) {
                self.hinted(
                    step.id.at,
                    format!("{what} needs 0 approvals"),
                    "a count is at least 1, or `all`",
                );
            }
        }
    }

    /// A role held by the person a form field names: the field must exist and be a person.
    fn role_field(&mut self, role: &str, spec: &RoleSpec) {
        if let Some(path) = &spec.field {
            let what = format!("role {role:?} is taken from {:?}", path.as_str());
            self.typed_field(path, &what, FieldType::Person, "declare.commander");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{expect, hint};

    #[test]
    fn every_role_of_every_party_is_defined() {
        expect(
            "
            id: t
            title: T
            roles:
              ops: {}
            steps:
              - id: ask
                form:
                  by: {role: author}
                  fields: [{id: x, type: text}]
                next: work
              - id: work
                tasks:
                  items: [{id: a, title: A, owner: {role: owner}}]
                  escalate: {after: 1d, to: {role: boss}}
                status_updates: {every: 1h, by: {role: scribe}, escalate: {role: lead}}
                next: gate
              - id: gate
                approval:
                  approvers: [{role: cab}]
                  deadline: {after: 1d, escalate: {after: 4h, to: {role: chief}}}
                next: tell
                on_reject: tell
              - id: tell
                notify: {to: [{role: ops}, {role: opz}], subject: hi}
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                (
                    "8:18",
                    r#"`by` of form step "ask" names role "author", which is not defined"#,
                ),
                (
                    "13:47",
                    r#"`owner` of task "a" of step "work" names role "owner""#,
                ),
                (
                    "14:40",
                    r#"escalation `to` of step "work" names role "boss""#,
                ),
                (
                    "15:44",
                    r#"status updates `by` of step "work" names role "scribe""#,
                ),
                (
                    "15:70",
                    r#"status updates `escalate` of step "work" names role "lead""#,
                ),
                (
                    "19:26",
                    r#"approver group 1 of step "gate" names role "cab""#,
                ),
                (
                    "20:62",
                    r#"escalation `to` of step "gate" names role "chief""#,
                ),
                ("24:39", r#"`to` of notify step "tell" names role "opz""#),
            ],
        );
    }

    #[test]
    fn who_may_send_a_signal_is_someone_defined_and_only_on_a_signal_wait() {
        expect(
            "
            id: t
            title: T
            roles:
              ops: {}
            steps:
              - id: deployed
                wait: {signal: deployed, by: [{role: ops}, {role: ci}, {person: bob}]}
                next: nobody
              - id: nobody
                wait: {signal: go, by: []}
                next: pause
              - id: pause
                wait: {for: 1h, by: [{person: bob}]}
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                (
                    "7:55",
                    r#"`by` of wait step "deployed" names role "ci", which is not defined"#,
                ),
                (
                    "9:9",
                    r#"`by` of wait step "nobody" names nobody, so no one could send its signal"#,
                ),
                ("13:35", r#"wait step "pause" has a `by` but no `signal`"#),
            ],
        );
    }

    #[test]
    fn an_undefined_role_is_answered_with_the_closest_or_the_list() {
        let yaml = |role: &str| {
            format!(
                "
                id: t
                title: T
                roles:
                  reviewer: {{}}
                steps:
                  - id: tell
                    notify: {{to: [{{role: {role}}}], subject: hi}}
                    next: done
                  - id: done
                    end: {{outcome: ok}}
                "
            )
        };
        assert_eq!(hint(&yaml("reveiwer")), "did you mean `reviewer`?");
        assert_eq!(hint(&yaml("requestor")), "did you mean `requester`?");
        assert_eq!(
            hint(&yaml("dpo")),
            "define it under `roles:`; the roles are: reviewer, requester"
        );
    }

    #[test]
    fn a_party_names_one_role_or_one_person() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: tell
                notify:
                  to: [{}, {role: requester, person: alice}, {person: ' '}]
                  subject: hi
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                (
                    "4:9",
                    r#"`to` of notify step "tell" names neither a role nor a person"#,
                ),
                (
                    "6:42",
                    r#"`to` of notify step "tell" names both a role and a person"#,
                ),
                (
                    "6:59",
                    r#"`to` of notify step "tell" names an empty person id"#,
                ),
            ],
        );
        expect(
            "
            id: t
            title: T
            steps:
              - id: tell
                notify: {to: [], subject: hi}
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[("4:9", r#"notify step "tell" tells nobody"#)],
        );
    }

    #[test]
    fn an_approver_group_names_someone_and_needs_an_approval() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: gate
                approval:
                  approvers: [{name: nobody}, {people: [alice, bob], count: all}, {role: requester, count: 0}]
                next: done
                on_reject: done
              - id: none
                approval: {approvers: []}
                next: done
                on_reject: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                ("4:9", r#"approver group 1 of step "gate" names neither a role nor people"#),
                ("4:9", r#"approver group 3 of step "gate" needs 0 approvals"#),
                ("9:9", r#"step "none" can never be reached"#),
                ("9:9", r#"approval step "none" has no approvers"#),
            ],
        );
    }

    #[test]
    fn a_role_taken_from_a_form_names_a_person_field() {
        expect(
            "
            id: t
            title: T
            roles:
              a: {field: declare.commander}
              b: {field: commander}
              c: {field: nowhere.commander}
              d: {field: tell.commander}
              e: {field: declare.comander}
              f: {field: declare.summary}
            steps:
              - id: declare
                form:
                  fields:
                    - {id: commander, type: person}
                    - {id: summary, type: text}
                next: tell
              - id: tell
                notify: {to: [{role: a}], subject: hi}
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                (
                    "5:14",
                    r#"role "b" is taken from "commander", which is not `step.field`"#,
                ),
                (
                    "6:14",
                    r#"role "c" is taken from "nowhere.commander", but there is no step "nowhere""#,
                ),
                (
                    "7:14",
                    r#"role "d" is taken from "tell.commander", but step "tell" is a notify step, not a form"#,
                ),
                (
                    "8:14",
                    r#"role "e" is taken from "declare.comander", but form "declare" has no field "comander""#,
                ),
                (
                    "9:14",
                    r#"role "f" is taken from "declare.summary", which is a text field, not a person field"#,
                ),
            ],
        );
    }
}
