//! Triggers: a schedule (5-field cron in a known time zone) or another workflow's event.
//!
//! The cron expression is only checked for shape here (five fields of the characters crontab
//! uses); the runtime parses it fully when it schedules it.

use std::str::FromStr;

use super::super::located::Located;
use super::super::model::Trigger;
use super::{Checker, closest, is_workflow_id};

pub(super) fn check(c: &mut Checker<'_>) {
    let definition = c.definition;
    for (n, trigger) in definition.triggers.iter().enumerate() {
        c.trigger(n + 1, trigger);
    }
}

/// The characters of a crontab field: numbers, ranges, steps, lists, names (`MON`, `JAN`) and
/// the `L`, `W`, `#` and `?` that croner understands.
fn is_cron_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '-' | '/' | '#' | '?')
}

impl Checker<'_> {
    fn trigger(&mut self, n: usize, trigger: &Trigger) {
        let what = format!("trigger {n}");
        // The trigger itself has no position; use its first value, else the workflow id.
        let at = [
            trigger.cron.as_ref().map(|l| l.at),
            trigger.on.as_ref().map(|o| o.workflow.at),
            trigger.timezone.as_ref().map(|l| l.at),
            trigger.requester.as_ref().map(|l| l.at),
        ]
        .into_iter()
        .flatten()
        .next()
        .unwrap_or(self.definition.id.at);
        match (&trigger.cron, &trigger.on) {
            (None, None) => self.hinted(
                at,
                format!("{what} has neither `cron` nor `on`"),
                "write `cron: \"0 9 * * 1\"` for a schedule, or `on: {workflow: …, outcome: …}`",
            ),
            (Some(_), Some(on)) => self.hinted(
                on.workflow.at,
                format!("{what} has both `cron` and `on`"),
                "write two triggers",
            ),
            (Some(cron), None) => self.cron(&what, cron),
            (None, Some(on)) => {
                let workflow = &on.workflow;
                if workflow.trim().is_empty() {
                    self.hinted(
                        workflow.at,
                        format!("{what} names no workflow in `on.workflow`"),
                        "name the id of the workflow whose event starts this one",
                    );
                } else if !is_workflow_id(workflow.as_str()) {
                    self.hinted(
                        workflow.at,
                        format!(
                            "{what} names workflow {:?}, which is not a well-formed workflow id",
                            workflow.as_str()
                        ),
                        "workflow ids are lowercase letters, digits and hyphens, e.g. `incident`",
                    );
                }
                match (&on.outcome, &on.step) {
                    (None, None) => self.hinted(
                        workflow.at,
                        format!("{what} says neither `outcome` nor `step` of {:?}", workflow.as_str()),
                        "start on an `outcome` the other workflow ends with, or on a `step` it enters",
                    ),
                    (Some(_), Some(step)) => self.hinted(
                        step.at,
                        format!("{what} has both `outcome` and `step`"),
                        "keep one; write two triggers to start on both",
                    ),
                    _ => {}
                }
            }
        }
        self.handed_on(&what, trigger);
        if let Some(zone) = &trigger.timezone {
            if trigger.cron.is_none() {
                self.hinted(
                    zone.at,
                    format!("{what} has a `timezone` but no `cron`"),
                    "the time zone only says how to read `cron`",
                );
            }
            self.timezone(&what, zone);
        }
    }

    /// An event trigger's `requester` and `roles`: expressions over the other workflow's
    /// instance (read there, so only their syntax is checked here), for roles this workflow
    /// has and takes from the directory.
    fn handed_on(&mut self, what: &str, trigger: &Trigger) {
        if trigger.on.is_none() {
            if let Some((role, _)) = trigger.roles.iter().next() {
                let at = trigger.roles[role]
                    .first()
                    .map_or(self.definition.id.at, |e| e.at);
                self.hinted(
                    at,
                    format!("{what} hands on roles, but only an `on` trigger has an instance to take them from"),
                    "remove `roles`, or start on another workflow's event",
                );
            }
            return;
        }
        let exprs = trigger
            .requester
            .iter()
            .chain(trigger.roles.values().flatten());
        for source in exprs {
            if let Err(e) = crate::workflow::expr::Expression::compile(source.as_str()) {
                self.hinted(
                    source.at,
                    format!(
                        "the expression {:?} of {what} does not compile: {e}",
                        source.as_str()
                    ),
                    "it is CEL over the other workflow's instance, e.g. data.declare.commander",
                );
            }
        }
        for (role, people) in &trigger.roles {
            let at = people.first().map_or(self.definition.id.at, |e| e.at);
            match self.definition.roles.get(role) {
                None => self.hinted(
                    at,
                    format!("{what} hands on the role {role:?}, which this workflow does not have"),
                    "name a role under `roles:`",
                ),
                Some(spec) if spec.field.is_some() => self.hinted(
                    at,
                    format!("{what} hands on the role {role:?}, which a form field of this workflow gives"),
                    "a role is given one way: by a field, or by the trigger",
                ),
                Some(_) if people.is_empty() => self.hinted(
                    at,
                    format!("{what} hands the role {role:?} to nobody"),
                    "list who holds it, e.g. [data.declare.commander]",
                ),
                Some(_) => {}
            }
        }
    }

    fn cron(&mut self, what: &str, cron: &Located<String>) {
        let hint = "five fields: minute hour day-of-month month day-of-week, e.g. \"30 9 * * 1-5\"";
        let fields: Vec<&str> = cron.split_whitespace().collect();
        if fields.len() != 5 {
            self.hinted(
                cron.at,
                format!(
                    "the `cron` of {what} has {} fields, not 5: {:?}",
                    fields.len(),
                    cron.as_str()
                ),
                hint,
            );
        } else if let Some(bad) = cron
            .chars()
            .find(|&c| !c.is_whitespace() && !is_cron_char(c))
        {
            self.hinted(
                cron.at,
                format!(
                    "the `cron` of {what} has the character {bad:?}, which crontab does not use"
                ),
                hint,
            );
        }
    }

    fn timezone(&mut self, what: &str, zone: &Located<String>) {
        if chrono_tz::Tz::from_str(zone.as_str()).is_ok() {
            return;
        }
        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        let hint = match closest(zone.as_str(), names) {
            Some(name) => format!("did you mean `{name}`?"),
            None => {
                "write an IANA zone such as `Europe/Berlin`, `America/New_York` or `UTC`".to_owned()
            }
        };
        self.hinted(
            zone.at,
            format!(
                "the `timezone` of {what}, {:?}, is not a known time zone",
                zone.as_str()
            ),
            hint,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{expect, hint};

    fn with_triggers(triggers: &str) -> String {
        format!(
            "
            id: t
            title: T
            triggers:
            {triggers}
            steps:
              - id: done
                end: {{outcome: ok}}
            "
        )
    }

    #[test]
    fn a_trigger_is_either_a_schedule_or_an_event() {
        expect(
            &with_triggers(
                "  - {requester: bot}
              - {cron: '0 9 * * *', on: {workflow: incident, outcome: resolved}}",
            ),
            &[
                ("4:17", "trigger 1 has neither `cron` nor `on`"),
                ("5:40", "trigger 2 has both `cron` and `on`"),
            ],
        );
    }

    #[test]
    fn an_event_trigger_hands_on_roles_this_workflow_takes_from_the_directory() {
        let yaml = "
            id: t
            title: T
            roles:
              author: {}
              lead: {field: write.lead}
            triggers:
              - on: {workflow: incident, outcome: resolved}
                requester: 'data.declare.commander +'
                roles:
                  author: []
                  lead: [data.declare.scribe]
                  reviewer: [data.declare.comms]
              - cron: '0 9 * * *'
                roles: {author: [data.x]}
            steps:
              - id: write
                form: {fields: [{id: lead, type: person}]}
                next: done
              - id: done
                end: {outcome: ok}
            ";
        expect(
            yaml,
            &[
                ("1:5", "hands the role \"author\" to nobody"),
                (
                    "8:16",
                    "\"data.declare.commander +\" of trigger 1 does not compile",
                ),
                (
                    "11:14",
                    "the role \"lead\", which a form field of this workflow gives",
                ),
                (
                    "12:18",
                    "the role \"reviewer\", which this workflow does not have",
                ),
                ("14:22", "only an `on` trigger"),
            ],
        );
    }

    #[test]
    fn a_schedule_is_five_crontab_fields_in_a_known_zone() {
        expect(
            &with_triggers(
                "  - {cron: '0 9 * *'}
              - {cron: '0 9 * * 1-5 2026'}
              - {cron: '0 9 * * MON-FRI'}
              - {cron: '0 9 * * 1%2'}
              - {cron: '30 9 * * 1', timezone: Europe/Berln}
              - {cron: '30 9 * * 1', timezone: Mars/Olympus}
              - {on: {workflow: a, outcome: b}, timezone: UTC}",
            ),
            &[
                ("4:12", "the `cron` of trigger 1 has 4 fields, not 5"),
                ("5:12", "the `cron` of trigger 2 has 6 fields, not 5"),
                (
                    "7:12",
                    "the `cron` of trigger 4 has the character '%', which crontab does not use",
                ),
                (
                    "8:36",
                    r#"the `timezone` of trigger 5, "Europe/Berln", is not a known time zone"#,
                ),
                (
                    "9:36",
                    r#"the `timezone` of trigger 6, "Mars/Olympus", is not a known time zone"#,
                ),
                ("10:47", "trigger 7 has a `timezone` but no `cron`"),
            ],
        );
        assert_eq!(
            hint(&with_triggers(
                "  - {cron: '0 9 * * *', timezone: Europe/Berln}"
            )),
            "did you mean `Europe/Berlin`?"
        );
    }

    #[test]
    fn an_event_trigger_names_a_workflow_and_one_of_outcome_or_step() {
        expect(
            &with_triggers(
                "  - {on: {workflow: '', outcome: resolved}}
              - {on: {workflow: incident}}
              - {on: {workflow: incident, outcome: resolved, step: declare}}
              - {on: {workflow: Incident, step: declare}}",
            ),
            &[
                ("4:21", "trigger 1 names no workflow in `on.workflow`"),
                (
                    "5:21",
                    r#"trigger 2 says neither `outcome` nor `step` of "incident""#,
                ),
                ("6:56", "trigger 3 has both `outcome` and `step`"),
                (
                    "7:21",
                    r#"trigger 4 names workflow "Incident", which is not a well-formed workflow id"#,
                ),
            ],
        );
    }
}
