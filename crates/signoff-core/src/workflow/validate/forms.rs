//! What people fill in and read: form fields (ids, options, sub-fields, patterns, bounds),
//! checklists, justification patterns and message templates (they parse, and read only the
//! variables a message has and fields that exist).

use std::collections::{BTreeSet, HashMap};

use super::super::located::{Located, Position};
use super::super::model::{Field, FieldType, Step, Tasks, TextRule};
use super::{Checker, closest, key, split_path};

pub(super) fn check(c: &mut Checker<'_>) {
    if let Some(title) = &c.definition.instance_title {
        c.template_of("the instance title", title);
    }
    let definition = c.definition;
    for step in &definition.steps {
        if let Some(form) = &step.form {
            let what = format!("form step {:?}", step.id.as_str());
            c.fields(&what, form.all_fields());
        }
        if let Some(approval) = &step.approval {
            let rules = [
                &approval.justification.approve,
                &approval.justification.reject,
            ];
            for rule in rules.into_iter().flatten() {
                c.text_rule(step, rule);
            }
        }
        if let Some(tasks) = &step.tasks {
            c.tasks(step, tasks);
        }
        if let Some(notify) = &step.notify {
            c.template(step, "subject", &notify.subject);
            c.template(step, "body", &notify.body);
        }
    }
}

/// The word a definition uses for a field type.
pub(super) fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Text => "text",
        FieldType::LongText => "long_text",
        FieldType::Number => "number",
        FieldType::Boolean => "boolean",
        FieldType::Choice => "choice",
        FieldType::MultiChoice => "multi_choice",
        FieldType::Date => "date",
        FieldType::Datetime => "datetime",
        FieldType::Person => "person",
        FieldType::Link => "link",
        FieldType::Group => "group",
    }
}

/// The regex crate's message without its picture of the pattern: the line after `error:`.
fn regex_message(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| text.lines().collect::<Vec<_>>().join(" "), str::to_owned)
}

impl<'a> Checker<'a> {
    /// Fields that share one namespace (a form with its sections, or the sub-fields of a group).
    /// Recursion follows group nesting, which the YAML reader bounds.
    fn fields<'f>(&mut self, what: &str, fields: impl Iterator<Item = &'f Field>) {
        let mut seen: HashMap<&str, Position> = HashMap::new();
        for field in fields {
            let id = field.id.as_str();
            if let Some(first) = seen.get(id) {
                self.hinted(
                    field.id.at,
                    format!("field id {id:?} is used twice in {what}"),
                    format!(
                        "it is first used at {first}; field ids are unique across a form's sections"
                    ),
                );
            } else {
                seen.insert(id, field.id.at);
            }
            self.field(what, field);
        }
    }

    fn field(&mut self, what: &str, field: &Field) {
        let id = field.id.as_str();
        let ty = field.ty.value;
        match ty {
            FieldType::Choice | FieldType::MultiChoice if field.options.is_empty() => self.hinted(
                field.ty.at,
                format!(
                    "field {id:?} of {what} is a {} with no `options`",
                    type_name(ty)
                ),
                "list what may be chosen under `options:`",
            ),
            FieldType::Group if field.fields.is_empty() => self.hinted(
                field.ty.at,
                format!("field {id:?} of {what} is a group with no `fields`"),
                "list the fields of each item under `fields:`",
            ),
            _ => {}
        }
        if let Some(stray) = field.labels.keys().find(|k| !field.options.contains(k)) {
            self.hinted(
                field.id.at,
                format!("field {id:?} of {what} has a label for {stray:?}, which is not one of its `options`"),
                format!("the options are {}; label one of them, or add it to `options:`", field.options.join(", ")),
            );
        }
        if let Some(pattern) = &field.pattern
            && let Err(e) = regex::Regex::new(pattern.as_str())
        {
            self.hinted(
                pattern.at,
                format!(
                    "the pattern of field {id:?} is not a valid regular expression: {}",
                    regex_message(&e)
                ),
                "patterns use Rust regex syntax, e.g. ^CHG[0-9]+$",
            );
        }
        if let (Some(min), Some(max)) = (field.min, field.max)
            && min > max
        {
            self.hinted(
                field.id.at,
                format!("field {id:?} of {what} has `min` {min} above `max` {max}"),
                "swap them, or remove one",
            );
        }
        if !field.fields.is_empty() {
            let inner = format!("group {id:?} of {what}");
            self.fields(&inner, field.fields.iter());
        }
    }

    fn text_rule(&mut self, step: &Step, rule: &TextRule) {
        if let Some(pattern) = &rule.pattern
            && let Err(e) = regex::Regex::new(pattern.as_str())
        {
            self.hinted(
                pattern.at,
                format!(
                    "the justification pattern of step {:?} is not a valid regular expression: {}",
                    step.id.as_str(),
                    regex_message(&e)
                ),
                "patterns use Rust regex syntax, e.g. [A-Z]+-[0-9]+",
            );
        }
    }

    fn tasks(&mut self, step: &Step, tasks: &Tasks) {
        let id = step.id.as_str();
        if tasks.items.is_empty() && tasks.items_from.is_none() {
            self.hinted(
                step.id.at,
                format!("tasks step {id:?} has no items"),
                "list them under `items:`, or take them from a group field with `items_from: <step>.<field>`",
            );
        }
        let mut seen: HashMap<&str, Position> = HashMap::new();
        for item in &tasks.items {
            let item_id = item.id.as_str();
            if let Some(first) = seen.get(item_id) {
                self.hinted(
                    item.id.at,
                    format!("task id {item_id:?} is used twice in step {id:?}"),
                    format!("it is first used at {first}; give each task its own id"),
                );
            } else {
                seen.insert(item_id, item.id.at);
            }
        }
        if let Some(path) = &tasks.items_from {
            let what = format!("step {id:?} takes its items from {:?}", path.as_str());
            self.typed_field(path, &what, FieldType::Group, "postmortem.action_items");
        }
    }

    /// Checks that `path` is `step.field` naming a field of type `wanted` of a form step.
    pub(super) fn typed_field(
        &mut self,
        path: &Located<String>,
        what: &str,
        wanted: FieldType,
        example: &str,
    ) {
        let wanted_name = type_name(wanted);
        let Some((step_id, field_id)) = split_path(path) else {
            self.hinted(
                path.at,
                format!("{what}, which is not `step.field`"),
                format!("name a {wanted_name} field of a form, e.g. `{example}`"),
            );
            return;
        };
        let Some(step) = self.step_named(step_id) else {
            let hint = self.step_hint(step_id);
            self.hinted(
                path.at,
                format!("{what}, but there is no step {step_id:?}"),
                hint,
            );
            return;
        };
        let Some(form) = &step.form else {
            let kind = step.kind().map_or("kindless", key);
            self.hinted(
                path.at,
                format!("{what}, but step {step_id:?} is a {kind} step, not a form"),
                format!("name a {wanted_name} field of a form step"),
            );
            return;
        };
        match form.all_fields().find(|f| f.id.as_str() == field_id) {
            None => {
                let ids = form.all_fields().map(|f| f.id.as_str());
                let hint = match closest(field_id, ids) {
                    Some(id) => format!("did you mean `{step_id}.{id}`?"),
                    None => format!("name a {wanted_name} field of that form"),
                };
                self.hinted(
                    path.at,
                    format!("{what}, but form {step_id:?} has no field {field_id:?}"),
                    hint,
                );
            }
            Some(field) if field.ty.value != wanted => self.hinted(
                path.at,
                format!(
                    "{what}, which is a {} field, not a {wanted_name} field",
                    type_name(field.ty.value)
                ),
                format!("name a field of `type: {wanted_name}`"),
            ),
            Some(_) => {}
        }
    }

    fn template(&mut self, step: &Step, part: &str, source: &Located<String>) {
        let what = format!("the {part} template of notify step {:?}", step.id.as_str());
        self.template_of(&what, source);
    }

    /// Checks a template: it parses, and reads only variables and fields that exist.
    pub(super) fn template_of(&mut self, what: &str, source: &Located<String>) {
        let env = minijinja::Environment::new();
        let e = match env.template_from_str(source.as_str()) {
            Ok(template) => {
                self.template_names(source, what, template.undeclared_variables(true));
                return;
            }
            Err(e) => e,
        };
        let mut reason = e.kind().to_string();
        if let Some(detail) = e.detail() {
            reason = format!("{reason}: {detail}");
        }
        let mut at = source.at;
        if let Some(line) = e.line().filter(|&l| l > 1) {
            // A template of several lines is a block scalar, whose position is its first line.
            let below = u32::try_from(line - 1).unwrap_or(0);
            if source.contains('\n') && at.line > 0 {
                at.line = at.line.saturating_add(below);
            } else {
                reason = format!("{reason} (line {line} of the template)");
            }
        }
        self.hinted(
            at,
            format!("{what} does not parse: {reason}"),
            "templates are Jinja: {{ data.request.service }}, {% if … %}…{% endif %}",
        );
    }
}

impl Checker<'_> {
    /// What a template reads: only variables a message is rendered with, and only fields of
    /// forms that exist (a misspelt name would render as nothing, silently).
    fn template_names(
        &mut self,
        source: &Located<String>,
        what: &str,
        names: impl IntoIterator<Item = String>,
    ) {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        let mut unknown = BTreeSet::new();
        for name in &names {
            let mut parts = name.split('.');
            match parts.next().unwrap_or_default() {
                "data" => {
                    if let Some(step) = parts.next() {
                        let at = Located {
                            value: source.value.clone(),
                            at: within(source, name),
                        };
                        self.data_path(&at, what, step, parts.next());
                    }
                }
                first if TEMPLATE_NAMES.contains(&first) => {}
                first => {
                    unknown.insert(first.to_owned());
                }
            }
        }
        for name in unknown {
            let known = "a message reads data, input, requester and instance (id, workflow, title)";
            let hint = match closest(&name, TEMPLATE_NAMES) {
                Some(v) => format!("did you mean `{v}`? {known}"),
                None => known.to_owned(),
            };
            self.hinted(
                within(source, &name),
                format!("{what} names `{name}`, which is not a variable"),
                hint,
            );
        }
    }
}

/// Where `name` is first written in a template of several lines (a block scalar, whose position
/// is that of its first line and whose lines keep its indentation); the template's own position
/// otherwise, as the quoting of a one-line value shifts its columns.
fn within(source: &Located<String>, name: &str) -> Position {
    let text = source.as_str();
    if !text.contains('\n') || source.at.line == 0 {
        return source.at;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let found = text.lines().enumerate().find_map(|(line, content)| {
        content.match_indices(name).find_map(|(i, _)| {
            let before = content[..i].chars().next_back();
            let after = content[i + name.len()..].chars().next();
            (!before.is_some_and(is_word) && !after.is_some_and(|c| is_word(c) && c != '.'))
                .then(|| (line, content[..i].chars().count()))
        })
    });
    let Some((line, column)) = found else {
        return source.at;
    };
    Position {
        line: source
            .at
            .line
            .saturating_add(u32::try_from(line).unwrap_or(u32::MAX)),
        column: source
            .at
            .column
            .saturating_add(u32::try_from(column).unwrap_or(u32::MAX)),
    }
}

/// The variables a message template is rendered with, and the globals of the template engine.
const TEMPLATE_NAMES: [&str; 9] = [
    "data",
    "input",
    "requester",
    "submitted_by",
    "instance",
    "range",
    "dict",
    "namespace",
    "debug",
];

#[cfg(test)]
mod tests {
    use super::super::tests::{expect, hint};

    #[test]
    fn field_ids_are_unique_across_a_form_and_within_a_group() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: ask
                form:
                  fields:
                    - {id: name, type: text}
                    - id: risks
                      type: group
                      fields:
                        - {id: what, type: text}
                        - {id: what, type: long_text}
                  sections:
                    - title: More
                      fields: [{id: name, type: text}]
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                (
                    "12:20",
                    r#"field id "what" is used twice in group "risks" of form step "ask""#,
                ),
                (
                    "15:25",
                    r#"field id "name" is used twice in form step "ask""#,
                ),
            ],
        );
    }

    #[test]
    fn choices_need_options_groups_need_fields_and_bounds_are_ordered() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: ask
                form:
                  fields:
                    - {id: a, type: choice}
                    - {id: b, type: multi_choice}
                    - {id: c, type: group}
                    - {id: d, type: number, min: 10, max: 1}
                    - {id: e, type: choice, options: [x, y], min: 1, max: 1}
                    - {id: f, type: choice, options: [x], labels: {x: Ex, y: Why}}
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                (
                    "7:25",
                    r#"field "a" of form step "ask" is a choice with no `options`"#,
                ),
                (
                    "8:25",
                    r#"field "b" of form step "ask" is a multi_choice with no `options`"#,
                ),
                (
                    "9:25",
                    r#"field "c" of form step "ask" is a group with no `fields`"#,
                ),
                (
                    "10:16",
                    r#"field "d" of form step "ask" has `min` 10 above `max` 1"#,
                ),
                (
                    "12:16",
                    r#"field "f" of form step "ask" has a label for "y", which is not one of its `options`"#,
                ),
            ],
        );
    }

    #[test]
    fn patterns_must_be_regular_expressions() {
        expect(
            r#"
            id: t
            title: T
            steps:
              - id: ask
                form:
                  fields:
                    - {id: change, type: text, pattern: "^CHG[0-9+$"}
                    - {id: fine, type: text, pattern: "^CHG[0-9]+$"}
                next: gate
              - id: gate
                approval:
                  approvers: [{role: requester}]
                  justification:
                    reject: {pattern: "(ticket"}
                next: done
                on_reject: done
              - id: done
                end: {outcome: ok}
            "#,
            &[
                (
                    "7:45",
                    r#"the pattern of field "change" is not a valid regular expression: unclosed character class"#,
                ),
                (
                    "14:27",
                    r#"the justification pattern of step "gate" is not a valid regular expression: unclosed group"#,
                ),
            ],
        );
    }

    #[test]
    fn a_checklist_has_items_with_unique_ids_or_takes_them_from_a_group() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: ask
                form:
                  fields:
                    - {id: actions, type: group, fields: [{id: title, type: text}]}
                    - {id: summary, type: text}
                next: empty
              - id: empty
                tasks: {}
                next: twice
              - id: twice
                tasks:
                  items: [{id: a, title: A}, {id: a, title: B}]
                next: text
              - id: text
                tasks: {items_from: ask.summary}
                next: shape
              - id: shape
                tasks: {items_from: actions}
                next: good
              - id: good
                tasks: {items_from: ask.actions}
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                ("10:9", r#"tasks step "empty" has no items"#),
                ("15:39", r#"task id "a" is used twice in step "twice""#),
                (
                    "18:25",
                    r#"step "text" takes its items from "ask.summary", which is a text field, not a group field"#,
                ),
                (
                    "21:25",
                    r#"step "shape" takes its items from "actions", which is not `step.field`"#,
                ),
            ],
        );
    }

    #[test]
    fn templates_read_only_message_variables_and_fields_that_exist() {
        expect(
            r#"
            id: t
            title: T
            steps:
              - id: ask
                form:
                  fields:
                    - {id: service, type: text}
                    - {id: items, type: group, fields: [{id: title, type: text}]}
                next: tell
              - id: tell
                notify:
                  to: [{role: requester}]
                  subject: "{{ data.ask.servce }} by {{ requester }} ({{ instance.id }})"
                  body: |
                    {% set n = 1 %}{{ request.service }} {{ n }} {{ input.env | default("x") }}
                    {% for item in data.ask.items %}{{ loop.index }}. {{ item.title }}{% endfor %}
                    {{ data.tell.x }} {{ dict(a=1) }} {% for i in range(3) %}{{ i }}{% endfor %}
                next: done
              - id: done
                end: {outcome: ok}
            "#,
            &[
                (
                    "13:16",
                    r#"the subject template of notify step "tell" reads data.ask.servce, but form "ask" has no field "servce""#,
                ),
                (
                    "15:27",
                    r#"the body template of notify step "tell" names `request`, which is not a variable"#,
                ),
                (
                    "17:12",
                    r#"the body template of notify step "tell" reads data.tell, but step "tell" is a notify step"#,
                ),
            ],
        );
    }

    #[test]
    fn templates_must_parse_and_errors_point_at_their_line() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: tell
                notify:
                  to: [{role: requester}]
                  subject: 'Change {{ data.ask.service '
                  body: |
                    Hello,
                    {% if x %}
                    no end
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[
                (
                    "7:16",
                    "the subject template of notify step \"tell\" does not parse: syntax error: unexpected end of input",
                ),
                (
                    "10:9",
                    "the body template of notify step \"tell\" does not parse: syntax error: unexpected end of input",
                ),
            ],
        );
        assert!(
            hint(
                "
            id: t
            title: T
            steps:
              - id: tell
                notify: {to: [{role: requester}], subject: '{{ }'}
                next: done
              - id: done
                end: {outcome: ok}
            "
            )
            .starts_with("templates are Jinja")
        );
    }
}
