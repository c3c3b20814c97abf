//! The checks a parsed definition must pass before it runs. Every problem is reported, each with
//! the line and column of the value at fault and, where one helps, a hint, sorted by position.
//!
//! The checks are split by concern: this file holds the entry point, identifiers, step kinds and
//! transitions; [`graph`] finds unreachable steps and loops with no way out; [`parties`] checks
//! roles and people; [`data`] compiles expressions and checks what they read; [`forms`] checks
//! form fields, checklists and message templates; [`triggers`] checks schedules and events.
//! None of them may panic, whatever the definition holds.

mod data;
mod forms;
mod graph;
mod parties;
mod triggers;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::expr::Expression;
use super::located::{Located, Position};
use super::model::{Definition, Step, StepKind};
use super::parse::Problem;

/// What checking a definition found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
    /// Every expression of the definition that compiled, by source text.
    pub expressions: HashMap<String, Arc<Expression>>,
}

/// Checks a definition.
#[must_use]
pub fn check(file: &str, definition: &Definition) -> Checked {
    let mut checker = Checker {
        file,
        definition,
        index: HashMap::new(),
        loose: HashSet::new(),
        out: Checked::default(),
    };
    checker.workflow_id();
    checker.step_ids();
    checker.discord_channels();
    for step in &definition.steps {
        checker.step(step);
    }
    graph::check(&mut checker);
    parties::check(&mut checker);
    data::check(&mut checker);
    forms::check(&mut checker);
    triggers::check(&mut checker);
    // Stable: problems at the same position keep the order they were found in.
    checker.out.problems.sort_by_key(|p| p.at);
    checker.out
}

/// The state shared by the checks.
struct Checker<'a> {
    file: &'a str,
    definition: &'a Definition,
    /// Step id to the index of the first step with that id.
    index: HashMap<&'a str, usize>,
    /// Indices of steps whose own transitions are already reported as broken: the graph checks
    /// treat them as if they could end, so one mistake is not reported again at every step
    /// before it.
    loose: HashSet<usize>,
    out: Checked,
}

impl<'a> Checker<'a> {
    fn hinted(&mut self, at: Position, message: impl Into<String>, hint: impl Into<String>) {
        self.out
            .problems
            .push(Problem::new(self.file, at, message).hint(hint));
    }

    /// The step with this id (the first, if the id is used twice).
    fn step_named(&self, id: &str) -> Option<&'a Step> {
        self.index
            .get(id)
            .and_then(|&i| self.definition.steps.get(i))
    }

    /// A hint naming the closest step id to `wrong`, or listing the step ids.
    fn step_hint(&self, wrong: &str) -> String {
        let ids = self.definition.steps.iter().map(|s| s.id.as_str());
        match closest(wrong, ids.clone()) {
            Some(id) => format!("did you mean {id:?}?"),
            None => format!("the steps are: {}", list(ids)),
        }
    }

    fn workflow_id(&mut self) {
        let id = &self.definition.id;
        if !is_workflow_id(id.as_str()) {
            self.hinted(
                id.at,
                format!("workflow id {:?} is not well-formed", id.as_str()),
                "use lowercase letters, digits and hyphens, starting with a letter, e.g. `deployment-approval`",
            );
        }
        if self.definition.steps.is_empty() {
            self.hinted(
                id.at,
                "the workflow has no steps",
                "add `steps:`; the first one is where an instance starts",
            );
        }
    }

    /// Discord channel ids are snowflakes: 17 to 20 digits.
    fn discord_channels(&mut self) {
        let definition = self.definition;
        let named = std::iter::once(definition.discord_channel.as_ref())
            .chain(definition.steps.iter().map(|s| s.discord_channel.as_ref()))
            .flatten();
        for channel in named {
            let id = channel.as_str();
            let digits = id.chars().all(|c| c.is_ascii_digit());
            if !digits || !(17..=20).contains(&id.len()) {
                self.hinted(
                    channel.at,
                    format!("Discord channel id {id:?} is not a channel's id"),
                    "a channel's id is 17 to 20 digits: in Discord, turn on Developer Mode, \
                     right-click the channel, Copy Channel ID; quote it in YAML",
                );
            }
        }
    }

    fn step_ids(&mut self) {
        let definition = self.definition;
        for (i, step) in definition.steps.iter().enumerate() {
            let id = &step.id;
            if !is_step_id(id.as_str()) {
                self.hinted(
                    id.at,
                    format!("step id {:?} is not well-formed", id.as_str()),
                    "use lowercase letters, digits, `-` and `_`, starting with a letter, e.g. `review`; \
                     expressions read a form as data.<step id>, so `_` is better than `-` there",
                );
            }
            match self.index.get(id.as_str()) {
                Some(&first) => {
                    let first_at = definition.steps.get(first).map(|s| s.id.at);
                    self.hinted(
                        id.at,
                        format!("step id {:?} is used twice", id.as_str()),
                        format!(
                            "it is first used at {}; give each step its own id",
                            first_at.unwrap_or_default()
                        ),
                    );
                }
                None => {
                    self.index.insert(id.as_str(), i);
                }
            }
        }
    }

    /// The checks of one step: its kind, where it leads, and the rules of its kind.
    fn step(&mut self, step: &'a Step) {
        let kinds = step.kinds();
        let kinds_hint = format!("a step is one of: {}", StepKind::KEYS.join(", "));
        match kinds.as_slice() {
            [] => self.hinted(
                step.id.at,
                format!("step {:?} has no kind key", step.id.as_str()),
                kinds_hint,
            ),
            [_] => {}
            several => {
                let names: Vec<&str> = several.iter().map(|k| key(*k)).collect();
                self.hinted(
                    step.id.at,
                    format!(
                        "step {:?} has {} kind keys ({}); a step has exactly one",
                        step.id.as_str(),
                        several.len(),
                        names.join(", ")
                    ),
                    format!("split it into several steps linked by `next`; {kinds_hint}"),
                );
            }
        }
        let mut broken = kinds.len() != 1;
        let mut targets = step.successors();
        if let Some(parallel) = &step.parallel {
            targets.push(("join", &parallel.join));
        }
        for (key, target) in targets {
            if self.step_named(target.as_str()).is_none() {
                broken = true;
                let hint = self.step_hint(target.as_str());
                self.hinted(
                    target.at,
                    format!(
                        "step {:?} goes (`{key}`) to {:?}, which is not a step of this workflow",
                        step.id.as_str(),
                        target.as_str()
                    ),
                    hint,
                );
            }
        }
        if let Some(kind) = step.kind() {
            broken |= !self.transitions(step, kind);
            self.kind_rules(step, kind);
        }
        if broken && let Some(&i) = self.index.get(step.id.as_str()) {
            self.loose.insert(i);
        }
    }

    /// Which transition keys the kind needs or refuses. Returns false when a needed one is missing.
    fn transitions(&mut self, step: &Step, kind: StepKind) -> bool {
        let id = step.id.as_str();
        let mut complete = true;
        match (kind, &step.next) {
            (StepKind::End, Some(next)) => self.hinted(
                next.at,
                format!("end step {id:?} has a `next`; an end is the last step"),
                "remove `next`, or make this step another kind",
            ),
            (StepKind::Parallel, Some(next)) => {
                if let Some(parallel) = &step.parallel
                    && next.value != parallel.join.value
                {
                    self.hinted(
                        next.at,
                        format!(
                            "parallel step {id:?} has `next: {}` but joins at {:?}",
                            next.as_str(),
                            parallel.join.as_str()
                        ),
                        "a parallel continues at its join step: remove `next` and give the join step its `next`",
                    );
                }
            }
            (StepKind::End | StepKind::Parallel, None) => {}
            (kind, None) => {
                complete = false;
                let hint = if kind == StepKind::Branch {
                    "a branch needs `next`: the step taken when no case holds".to_owned()
                } else {
                    "add `next: <step id>`; only an `end` step has none".to_owned()
                };
                self.hinted(
                    step.id.at,
                    format!("{} step {id:?} has no `next`", key(kind)),
                    hint,
                );
            }
            (_, Some(_)) => {}
        }
        match (kind, &step.on_reject) {
            (StepKind::Approval, None) => {
                complete = false;
                self.hinted(
                    step.id.at,
                    format!("approval step {id:?} has no `on_reject`"),
                    "name the step taken when it is rejected, e.g. an `end` with `outcome: rejected`",
                );
            }
            (StepKind::Approval, Some(_)) | (_, None) => {}
            (kind, Some(r)) => self.hinted(
                r.at,
                format!(
                    "{} step {id:?} has `on_reject`, which only an approval has",
                    key(kind)
                ),
                "remove it",
            ),
        }
        // A wait expires only when it waits for a signal with a timeout (a timeout without a
        // signal is reported by the wait's own rules).
        let has_timeout = step
            .wait
            .as_ref()
            .is_some_and(|w| w.timeout.is_some() && w.signal.is_some());
        match (&step.on_expire, kind) {
            (Some(_), StepKind::Approval) => {}
            (Some(_), StepKind::Wait) if has_timeout => {}
            (Some(e), StepKind::Wait) => self.hinted(
                e.at,
                format!("wait step {id:?} has `on_expire`, but it cannot expire"),
                "a wait expires only after the `timeout` of a `signal`; add one or remove `on_expire`",
            ),
            (Some(e), kind) => self.hinted(
                e.at,
                format!(
                    "{} step {id:?} has `on_expire`, which only an approval or a wait has",
                    key(kind)
                ),
                "remove it",
            ),
            (None, StepKind::Wait) if has_timeout => {
                complete = false;
                self.hinted(
                    step.id.at,
                    format!("wait step {id:?} has a `timeout` but no `on_expire`"),
                    "name the step taken when the signal does not come in time",
                );
            }
            (None, _) => {}
        }
        complete
    }

    fn kind_rules(&mut self, step: &Step, kind: StepKind) {
        let id = step.id.as_str();
        match kind {
            StepKind::Parallel => {
                let Some(parallel) = &step.parallel else {
                    return;
                };
                if parallel.branches.is_empty() {
                    self.hinted(
                        step.id.at,
                        format!("parallel step {id:?} has no branches"),
                        "list the first step of each branch under `branches:`",
                    );
                }
                if let Some(target) = self.step_named(parallel.join.as_str())
                    && let Some(other) = target.kind()
                    && other != StepKind::Join
                {
                    self.hinted(
                        parallel.join.at,
                        format!(
                            "parallel step {id:?} joins at {:?}, which is a {} step, not a `join:` step",
                            parallel.join.as_str(),
                            key(other)
                        ),
                        "point `join` at a step with `join: all` or `join: any`",
                    );
                }
            }
            StepKind::Wait => self.wait(step),
            StepKind::StartWorkflow => {
                if let Some(start) = &step.start_workflow
                    && !is_workflow_id(start.workflow.as_str())
                {
                    self.hinted(
                        start.workflow.at,
                        format!(
                            "step {id:?} starts workflow {:?}, which is not a well-formed workflow id",
                            start.workflow.as_str()
                        ),
                        "name the `id` of another definition, e.g. `post-mortem`",
                    );
                }
            }
            _ => {}
        }
    }

    fn wait(&mut self, step: &Step) {
        let Some(wait) = &step.wait else {
            return;
        };
        let id = step.id.as_str();
        let given: Vec<Position> = [
            wait.duration.as_ref().map(|d| d.at),
            wait.until.as_ref().map(|u| u.at),
            wait.signal.as_ref().map(|s| s.at),
        ]
        .into_iter()
        .flatten()
        .collect();
        let hint = "wait `for` a duration, `until` a time, or for a `signal`";
        match given.as_slice() {
            [] => self.hinted(
                step.id.at,
                format!("wait step {id:?} says neither `for`, `until` nor `signal`"),
                hint,
            ),
            [_] => {}
            [_, second, ..] => self.hinted(
                *second,
                format!("wait step {id:?} has more than one of `for`, `until` and `signal`"),
                format!("{hint}: one of them; use several wait steps to wait twice"),
            ),
        }
        if let Some(timeout) = &wait.timeout
            && wait.signal.is_none()
        {
            self.hinted(
                timeout.at,
                format!("wait step {id:?} has a `timeout` but no `signal`"),
                "`timeout` bounds the wait for a signal; a `for` or `until` wait ends by itself",
            );
        }
        if let Some(by) = &wait.by
            && wait.signal.is_none()
        {
            let at = by
                .iter()
                .find_map(|p| p.role.as_ref().or(p.person.as_ref()).map(|l| l.at))
                .unwrap_or(step.id.at);
            self.hinted(
                at,
                format!("wait step {id:?} has a `by` but no `signal`"),
                "`by` names who may send the signal; a `for` or `until` wait ends by itself",
            );
        }
    }
}

/// The key that names a kind.
fn key(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Form => "form",
        StepKind::Approval => "approval",
        StepKind::Tasks => "tasks",
        StepKind::Notify => "notify",
        StepKind::Branch => "branch",
        StepKind::Parallel => "parallel",
        StepKind::Join => "join",
        StepKind::Wait => "wait",
        StepKind::StartWorkflow => "start_workflow",
        StepKind::End => "end",
    }
}

/// Lowercase letters, digits and hyphens, starting with a letter, no trailing hyphen.
fn is_workflow_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Lowercase letters, digits, `-` and `_`, starting with a letter.
fn is_step_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `a, b, c`, or the first ten and a count when there are more.
fn list<'s>(items: impl Iterator<Item = &'s str>) -> String {
    let items: Vec<&str> = items.collect();
    let shown: Vec<String> = items.iter().take(10).map(|s| format!("{s:?}")).collect();
    let mut out = shown.join(", ");
    if items.len() > 10 {
        out.push_str(&format!(" and {} more", items.len() - 10));
    }
    out
}

/// The candidate closest to `wrong` by edit distance, when it is close enough to be a typo.
pub(crate) fn closest<'c>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    const LONGEST: usize = 64;
    let wrong_len = wrong.chars().count();
    if wrong_len == 0 || wrong_len > LONGEST {
        return None;
    }
    let allowed = (wrong_len / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| c.len() <= LONGEST && *c != wrong)
        .map(|c| (edit_distance(wrong, c), c))
        .filter(|&(d, _)| d <= allowed)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, counting an adjacent swap as one edit (`aprpoval`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i-2, i-1 and i of the table.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            let mut best = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
            if i > 0 && j > 0 && a[i - 1] == cb && ca == b[j - 1] {
                best = best.min(before[j - 1] + 1);
            }
            current[j + 1] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// `step.field` split in two, when it has that shape.
fn split_path(path: &Located<String>) -> Option<(&str, &str)> {
    let (step, field) = path.as_str().split_once('.')?;
    (!step.is_empty() && !field.is_empty() && !field.contains('.')).then_some((step, field))
}

#[cfg(test)]
pub(super) mod tests {
    //! Each check, through small definitions read by [`parse`](super::super::parse::parse).
    //! The YAML is written indented in the code; [`dedent`] takes the indentation away, so line
    //! 1 is the first line of the snippet.

    use super::*;

    /// The snippet without its leading newline and common indentation.
    pub(in super::super) fn dedent(yaml: &str) -> String {
        let yaml = yaml.strip_prefix('\n').unwrap_or(yaml);
        let indent = yaml
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        yaml.lines()
            .map(|l| l.get(indent..).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    /// Every problem of the snippet (a parse error included), as full problems.
    pub(in super::super) fn found(yaml: &str) -> Vec<Problem> {
        match super::super::parse::parse("t.yaml", &dedent(yaml)) {
            Err(p) => vec![p],
            Ok(d) => check("t.yaml", &d).problems,
        }
    }

    /// Asserts that the snippet has exactly these problems, in this order: each its
    /// `line:column` and a part of its message.
    #[track_caller]
    pub(in super::super) fn expect(yaml: &str, expected: &[(&str, &str)]) {
        let found = found(yaml);
        let shown: Vec<String> = found
            .iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect();
        assert_eq!(
            found.len(),
            expected.len(),
            "expected {expected:#?}, found {shown:#?}"
        );
        for ((at, part), problem) in expected.iter().zip(&found) {
            assert!(
                problem.at.to_string() == *at && problem.message.contains(part),
                "expected {at}: …{part}…, found {shown:#?}"
            );
        }
    }

    /// The hint of the only problem of the snippet.
    #[track_caller]
    pub(in super::super) fn hint(yaml: &str) -> String {
        let found = found(yaml);
        assert_eq!(found.len(), 1, "{found:#?}");
        found
            .into_iter()
            .next()
            .and_then(|p| p.hint)
            .unwrap_or_default()
    }

    #[test]
    fn a_sound_definition_has_no_problem_and_every_expression_is_compiled() {
        let yaml = dedent(
            r#"
            id: change-approval
            title: Change
            roles:
              cab: {description: change board}
              owner: {field: request.owner}
            triggers:
              - cron: "0 9 * * 1-5"
                timezone: Europe/Berlin
              - on: {workflow: incident, outcome: resolved}
            steps:
              - id: request
                form:
                  fields:
                    - {id: risk, type: choice, options: [low, high]}
                    - {id: owner, type: person}
                  sections:
                    - title: When
                      fields:
                        - {id: window, type: date}
                        - {id: actions, type: group, fields: [{id: title, type: text}, {id: owner, type: person}]}
                next: route
              - id: route
                branch:
                  - when: data.request.risk == "high"
                    next: board
                next: fan
              - id: board
                approval:
                  approvers:
                    - role: cab
                      when: approver.id != requester
                  separation: {exclude: "[data.request.owner]"}
                  deadline:
                    after: 2d
                    escalate: {after: 1d, to: {role: owner}}
                next: fan
                on_reject: rejected
              - id: fan
                parallel: {branches: [tell, follow], join: meet}
              - id: tell
                notify:
                  to: [{role: requester}, {person: alice}]
                  subject: "Change {{ data.request.risk }}"
                  body: |
                    {% if data.request.risk == "high" %}careful{% endif %}
                next: meet
              - id: follow
                tasks:
                  items_from: request.actions
                  items: [{id: check, title: Check, owner: {role: owner}}]
                status_updates: {every: 1h, by: {role: owner}, escalate: {role: cab}}
                next: meet
              - id: meet
                join: all
                next: pause
              - id: pause
                wait: {until: data.request.window}
                next: signal
              - id: signal
                wait: {signal: deployed, timeout: 1d}
                next: spawn
                on_expire: rejected
              - id: spawn
                start_workflow:
                  workflow: post-mortem
                  input: {owner: data.request.owner}
                next: done
              - id: done
                end: {outcome: approved}
              - id: rejected
                end: {outcome: rejected}
            "#,
        );
        let definition =
            super::super::parse::parse("t.yaml", &yaml).unwrap_or_else(|p| panic!("{p}"));
        let checked = check("t.yaml", &definition);
        assert!(checked.problems.is_empty(), "{:#?}", checked.problems);
        let mut sources: Vec<&str> = checked.expressions.keys().map(String::as_str).collect();
        sources.sort_unstable();
        assert_eq!(
            sources,
            [
                "[data.request.owner]",
                "approver.id != requester",
                "data.request.owner",
                "data.request.risk == \"high\"",
                "data.request.window",
            ]
        );
    }

    #[test]
    fn discord_channel_ids_are_snowflakes() {
        expect(
            r##"
            id: t
            title: T
            discord_channel: "#approvals"
            steps:
              - id: start
                form: {fields: [{id: x, type: text}]}
                discord_channel: "123456789012345678"
                next: done
              - id: done
                end: {outcome: ok}
                discord_channel: "12"
            "##,
            &[
                (
                    "3:18",
                    r##"Discord channel id "#approvals" is not a channel's id"##,
                ),
                ("11:22", r#"Discord channel id "12" is not a channel's id"#),
            ],
        );
    }

    #[test]
    fn ids_must_be_well_formed_and_step_ids_unique() {
        expect(
            r"
            id: Bad_ID
            title: T
            steps:
              - id: Start
                form: {fields: [{id: x, type: text}]}
                next: done
              - id: done
                end: {outcome: ok}
              - id: done
                end: {outcome: ok}
            ",
            &[
                ("1:5", r#"workflow id "Bad_ID" is not well-formed"#),
                ("4:9", r#"step id "Start" is not well-formed"#),
                ("9:9", r#"step id "done" is used twice"#),
            ],
        );
    }

    #[test]
    fn a_step_has_exactly_one_kind_key() {
        expect(
            r"
            id: t
            title: T
            steps:
              - id: a
                next: b
              - id: b
                form: {fields: [{id: x, type: text}]}
                notify: {to: [{role: requester}], subject: hi}
                next: c
              - id: c
                end: {outcome: ok}
            ",
            &[
                ("4:9", r#"step "a" has no kind key"#),
                ("6:9", r#"step "b" has 2 kind keys (form, notify)"#),
            ],
        );
        assert!(
            hint(
                "
            id: t
            title: T
            steps:
              - id: a
                next: done
              - id: done
                end: {outcome: ok}
            "
            )
            .contains(
                "form, approval, tasks, notify, branch, parallel, join, wait, start_workflow, end"
            )
        );
    }

    #[test]
    fn transitions_must_name_steps_of_the_workflow() {
        expect(
            r#"
            id: t
            title: T
            steps:
              - id: gate
                approval:
                  approvers: [{role: requester}]
                next: pick
                on_reject: gone
                on_expire: lost
              - id: pick
                branch:
                  - when: "true"
                    next: nope
                next: fan
              - id: fan
                parallel: {branches: [left, missing], join: meet}
              - id: left
                notify: {to: [{role: requester}], subject: hi}
                next: meet
              - id: meet
                join: all
                next: dnoe
              - id: done
                end: {outcome: ok}
            "#,
            &[
                (
                    "8:16",
                    r#"step "gate" goes (`on_reject`) to "gone", which is not a step"#,
                ),
                ("9:16", r#"step "gate" goes (`on_expire`) to "lost""#),
                ("13:15", r#"step "pick" goes (`branch`) to "nope""#),
                ("16:33", r#"step "fan" goes (`parallel`) to "missing""#),
                ("22:11", r#"step "meet" goes (`next`) to "dnoe""#),
            ],
        );
    }

    #[test]
    fn a_missing_step_is_named_with_the_closest_id() {
        let found = found(
            "
            id: t
            title: T
            steps:
              - id: ask
                form: {fields: [{id: x, type: text}]}
                next: dnoe
              - id: done
                end: {outcome: ok}
            ",
        );
        let hints: Vec<_> = found.iter().filter_map(|p| p.hint.as_deref()).collect();
        assert!(hints.contains(&r#"did you mean "done"?"#), "{found:#?}");
    }

    #[test]
    fn every_kind_but_end_needs_next_and_an_end_has_none() {
        expect(
            r#"
            id: t
            title: T
            steps:
              - id: pick
                branch:
                  - when: "true"
                    next: ask
              - id: ask
                form: {fields: [{id: x, type: text}]}
              - id: done
                end: {outcome: ok}
                next: pick
            "#,
            &[
                ("4:9", r#"branch step "pick" has no `next`"#),
                ("8:9", r#"form step "ask" has no `next`"#),
                ("10:9", r#"step "done" can never be reached"#),
                ("12:11", r#"end step "done" has a `next`"#),
            ],
        );
    }

    #[test]
    fn an_approval_needs_on_reject() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: gate
                approval:
                  approvers: [{role: requester}]
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[("4:9", r#"approval step "gate" has no `on_reject`"#)],
        );
    }

    #[test]
    fn on_reject_and_on_expire_belong_to_approvals_and_waits() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: ask
                form: {fields: [{id: x, type: text}]}
                on_reject: done
                on_expire: done
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                (
                    "6:16",
                    r#"form step "ask" has `on_reject`, which only an approval has"#,
                ),
                (
                    "7:16",
                    r#"form step "ask" has `on_expire`, which only an approval or a wait has"#,
                ),
            ],
        );
    }

    #[test]
    fn a_parallel_joins_at_a_join_step_that_every_branch_reaches() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: fan
                parallel: {branches: [left, right], join: meet}
                next: done
              - id: left
                notify: {to: [{role: requester}], subject: hi}
                next: meet
              - id: right
                notify: {to: [{role: requester}], subject: hi}
                next: done
              - id: meet
                notify: {to: [{role: requester}], subject: hi}
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                (
                    "5:33",
                    r#"branch "right" of parallel step "fan" never reaches its join "meet""#,
                ),
                (
                    "5:47",
                    r#"joins at "meet", which is a notify step, not a `join:` step"#,
                ),
                (
                    "6:11",
                    r#"parallel step "fan" has `next: done` but joins at "meet""#,
                ),
            ],
        );
    }

    #[test]
    fn a_wait_waits_for_one_thing_and_only_a_signal_times_out() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: none
                wait: {}
                next: both
              - id: both
                wait: {for: 1h, signal: go}
                next: stray
              - id: stray
                wait: {for: 1h, timeout: 2h}
                next: bare
              - id: bare
                wait: {signal: go, timeout: 1d}
                next: late
              - id: late
                wait: {for: 1h}
                on_expire: done
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                (
                    "4:9",
                    r#"wait step "none" says neither `for`, `until` nor `signal`"#,
                ),
                (
                    "8:29",
                    r#"wait step "both" has more than one of `for`, `until` and `signal`"#,
                ),
                (
                    "11:30",
                    r#"wait step "stray" has a `timeout` but no `signal`"#,
                ),
                (
                    "13:9",
                    r#"wait step "bare" has a `timeout` but no `on_expire`"#,
                ),
                (
                    "18:16",
                    r#"wait step "late" has `on_expire`, but it cannot expire"#,
                ),
            ],
        );
    }

    #[test]
    fn a_workflow_without_steps_and_a_badly_named_workflow_to_start() {
        expect(
            "
            id: t
            title: T
            steps: []
            ",
            &[("1:5", "the workflow has no steps")],
        );
        expect(
            "
            id: t
            title: T
            steps:
              - id: spawn
                start_workflow: {workflow: Post_Mortem}
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[(
                "5:32",
                r#"starts workflow "Post_Mortem", which is not a well-formed workflow id"#,
            )],
        );
    }

    #[test]
    fn an_unknown_key_is_answered_with_the_closest_name() {
        let yaml = "
            id: t
            title: T
            steps:
              - id: a
                aproval: {approvers: [{role: requester}]}
                next: b
            ";
        expect(yaml, &[("5:5", "unknown step key `aproval`")]);
        assert!(
            hint(yaml)
                .starts_with("did you mean `approval`? a step names its kind with one of: form,"),
            "{}",
            hint(yaml)
        );
        let typo = "
            id: t
            title: T
            stpes: []
            ";
        assert_eq!(hint(typo), "did you mean `steps`?");
        let variant = "
            id: t
            title: T
            steps:
              - id: a
                form: {fields: [{id: x, type: nubmer}]}
            ";
        assert_eq!(hint(variant), "did you mean `number`?");
        let far = "
            id: t
            title: T
            steps:
              - id: a
                questionnaire: {}
            ";
        assert!(hint(far).starts_with("a step names its kind with one of: form, approval"));
    }

    #[test]
    fn edit_distance_counts_typos_and_swaps() {
        assert_eq!(edit_distance("approval", "approval"), 0);
        assert_eq!(edit_distance("aproval", "approval"), 1);
        assert_eq!(edit_distance("aprpoval", "approval"), 1);
        assert_eq!(edit_distance("", "end"), 3);
        assert_eq!(closest("nxet", ["next", "end"]), Some("next"));
        assert_eq!(closest("zzz", ["next", "end"]), None);
        assert_eq!(closest(&"x".repeat(10_000), ["next"]), None);
    }
}
