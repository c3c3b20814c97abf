//! What a person is shown of an instance: its answers under the definition's labels, in its
//! sections and in the order of its steps, choices by their labels, people by their names,
//! repeated groups as tables, and the answers of a path no longer taken apart. One rendering,
//! used by `status`, the pages, email and chat; a decision records the hash of it
//! ([`View::hash`]), so what `shown` proves is what the person read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::command::People;
use super::state::Instance;
use crate::workflow::{Definition, Field, FieldType, Form, humanize};

/// An instance as people read it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// What names this instance for people (the definition's `instance_title`, else the
    /// workflow's title).
    pub title: String,
    /// What it was started with (by a trigger, a parent, `--input`), if anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input: Vec<Answer>,
    /// The answers of the path taken, one part per form step, in the definition's order.
    pub parts: Vec<Part>,
    /// Answers of a path no longer taken (a branch that went elsewhere): shown apart, never
    /// as current.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<Part>,
    /// The evidence attached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Attached>,
}

/// The answers of one form step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// The step's id.
    pub step: String,
    /// The step's title.
    pub title: String,
    /// Who answered, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Its fields outside any section first, then each section.
    pub sections: Vec<Section>,
}

/// A titled group of answers (untitled for the fields outside any section).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// The section's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Its answers, in the form's order; questions left unanswered are left out.
    pub answers: Vec<Answer>,
}

/// One answer: the question and what was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The field's id (for links and tests; people read the label).
    pub field: String,
    /// The question.
    pub label: String,
    /// The answer.
    pub value: Shown,
}

/// An answer as people read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shown {
    /// Words (several paragraphs keep their line breaks).
    Text {
        /// The words.
        text: String,
    },
    /// A link.
    Link {
        /// Where it goes.
        url: String,
    },
    /// A person of the directory.
    Person {
        /// Their id.
        id: String,
        /// Their name, if the directory gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Several items (the options chosen of a multi-choice).
    List {
        /// The items.
        items: Vec<String>,
    },
    /// A repeated group: one row per item, one column per sub-field.
    Table {
        /// The sub-fields' labels.
        columns: Vec<String>,
        /// The items.
        rows: Vec<Vec<String>>,
    },
}

/// A piece of evidence as people read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attached {
    /// Its name.
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its content hash.
    pub hash: String,
}

impl Shown {
    /// The answer on one line (a table cell, a chat field).
    #[must_use]
    pub fn plain(&self) -> String {
        match self {
            Self::Text { text } => text.clone(),
            Self::Link { url } => url.clone(),
            Self::Person { id, name } => name
                .as_ref()
                .map_or_else(|| id.clone(), |name| format!("{name} ({id})")),
            Self::List { items } => items.join(", "),
            Self::Table { rows, .. } => format!(
                "{} item{}",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            ),
        }
    }
}

impl View {
    /// The view of `state` under `definition` (the one it pins), with names from `people`.
    #[must_use]
    pub fn of(definition: &Definition, state: &Instance, people: &dyn People) -> Self {
        Self {
            title: state.title(definition),
            input: loose(&state.input),
            parts: parts(definition, state, &state.data, people),
            superseded: parts(definition, state, &state.superseded, people),
            evidence: state
                .evidence
                .iter()
                .map(|e| Attached {
                    name: e.name.clone(),
                    media_type: e.media_type.clone(),
                    size: e.size,
                    hash: e.hash.clone(),
                })
                .collect(),
        }
    }

    /// `sha256:<hex>` of this view: what a decision records as `shown`, and what a person
    /// (or a link, or a button) that saw it passes back to prove it was not changed since.
    #[must_use]
    pub fn hash(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    }

    /// The view as plain text, indented under `indent` (the CLI's `status`, the text part of
    /// an email).
    #[must_use]
    pub fn text(&self, indent: &str) -> String {
        let mut out = String::new();
        if !self.input.is_empty() {
            out.push_str(&format!("{indent}Started with\n"));
            answers_text(&mut out, &format!("{indent}  "), &self.input);
        }
        parts_text(&mut out, indent, &self.parts);
        if !self.superseded.is_empty() {
            out.push_str(&format!(
                "{indent}Superseded (answers of a path no longer taken)\n"
            ));
            parts_text(&mut out, &format!("{indent}  "), &self.superseded);
        }
        if !self.evidence.is_empty() {
            out.push_str(&format!("{indent}Evidence\n"));
            for e in &self.evidence {
                out.push_str(&format!(
                    "{indent}  {} ({}, {} bytes) {}\n",
                    e.name, e.media_type, e.size, e.hash
                ));
            }
        }
        out
    }
}

fn parts_text(out: &mut String, indent: &str, parts: &[Part]) {
    for part in parts {
        out.push_str(&format!("{indent}{}", part.title));
        if let Some(by) = &part.by {
            out.push_str(&format!(" (by {by})"));
        }
        out.push('\n');
        for section in &part.sections {
            let inner = if let Some(title) = &section.title {
                out.push_str(&format!("{indent}  {title}\n"));
                format!("{indent}    ")
            } else {
                format!("{indent}  ")
            };
            answers_text(out, &inner, &section.answers);
        }
    }
}

fn answers_text(out: &mut String, indent: &str, answers: &[Answer]) {
    for answer in answers {
        match &answer.value {
            Shown::Table { columns, rows } => {
                out.push_str(&format!("{indent}{}:\n", answer.label));
                for (n, row) in rows.iter().enumerate() {
                    out.push_str(&format!("{indent}  {}.", n + 1));
                    for (column, cell) in columns.iter().zip(row) {
                        if !cell.is_empty() {
                            out.push_str(&format!(" {column}: {cell};"));
                        }
                    }
                    if out.ends_with(';') {
                        out.pop();
                    }
                    out.push('\n');
                }
            }
            Shown::Text { text } if text.contains('\n') => {
                out.push_str(&format!("{indent}{}:\n", answer.label));
                for line in text.lines() {
                    out.push_str(&format!("{indent}  {line}\n"));
                }
            }
            value => out.push_str(&format!("{indent}{}: {}\n", answer.label, value.plain())),
        }
    }
}

/// The parts of the form steps that have answers in `data`, in the definition's order; data
/// no step of the definition names (an older definition's) comes last, by its keys.
fn parts(
    definition: &Definition,
    state: &Instance,
    data: &Map<String, Value>,
    people: &dyn People,
) -> Vec<Part> {
    let by = |step: &str| {
        state
            .submitted_by
            .get(step)
            .map(|who| people.name(who).unwrap_or_else(|| who.clone()))
    };
    let mut parts: Vec<Part> = definition
        .steps
        .iter()
        .filter_map(|step| {
            let form = step.form.as_ref()?;
            let values = data.get(step.id.as_str())?.as_object()?;
            Some(Part {
                step: step.id.as_str().to_owned(),
                title: if step.title.is_empty() {
                    humanize(step.id.as_str())
                } else {
                    step.title.clone()
                },
                by: by(step.id.as_str()),
                sections: form_sections(form, values, people),
            })
        })
        .collect();
    for (step, values) in data {
        if definition.step(step).is_some_and(|s| s.form.is_some()) {
            continue;
        }
        parts.push(Part {
            step: step.clone(),
            title: humanize(step),
            by: by(step),
            sections: vec![Section {
                title: None,
                answers: loose(values),
            }],
        });
    }
    parts
}

fn form_sections(form: &Form, values: &Map<String, Value>, people: &dyn People) -> Vec<Section> {
    let mut sections = Vec::with_capacity(form.sections.len() + 1);
    let loose_fields = fields(&form.fields, values, people);
    if !loose_fields.is_empty() {
        sections.push(Section {
            title: None,
            answers: loose_fields,
        });
    }
    for section in &form.sections {
        let answers = fields(&section.fields, values, people);
        if !answers.is_empty() {
            sections.push(Section {
                title: Some(section.title.clone()),
                answers,
            });
        }
    }
    // Answers the form does not name (kept from an older definition) are still shown.
    let named = |key: &str| form.all_fields().any(|f| f.id.as_str() == key);
    let others: Map<String, Value> = values
        .iter()
        .filter(|(key, _)| !named(key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let others = loose(&Value::Object(others));
    if !others.is_empty() {
        sections.push(Section {
            title: Some("Other answers".to_owned()),
            answers: others,
        });
    }
    sections
}

fn fields(fields: &[Field], values: &Map<String, Value>, people: &dyn People) -> Vec<Answer> {
    fields
        .iter()
        .filter_map(|field| {
            let value = values.get(field.id.as_str())?;
            let shown = shown(field, value, people)?;
            Some(Answer {
                field: field.id.as_str().to_owned(),
                label: label(field),
                value: shown,
            })
        })
        .collect()
}

fn label(field: &Field) -> String {
    if field.label.trim().is_empty() {
        humanize(field.id.as_str())
    } else {
        field.label.trim().to_owned()
    }
}

/// The answer to `field`, or nothing for an empty one.
fn shown(field: &Field, value: &Value, people: &dyn People) -> Option<Shown> {
    if value.is_null() || value.as_str().is_some_and(str::is_empty) {
        return None;
    }
    let choice = |v: &str| field.option_label(v);
    Some(match field.ty.value {
        FieldType::Boolean => Shown::Text {
            text: yes_no(value),
        },
        FieldType::Choice => Shown::Text {
            text: choice(&scalar(value)),
        },
        FieldType::MultiChoice => Shown::List {
            items: items(value).iter().map(|v| choice(v)).collect(),
        },
        FieldType::Person => {
            let id = scalar(value);
            Shown::Person {
                name: people.name(&id),
                id,
            }
        }
        FieldType::Link => Shown::Link { url: scalar(value) },
        FieldType::Group => Shown::Table {
            columns: field.fields.iter().map(label).collect(),
            rows: value
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .map(|row| {
                            field
                                .fields
                                .iter()
                                .map(|sub| {
                                    row.get(sub.id.as_str())
                                        .and_then(|v| shown(sub, v, people))
                                        .map(|s| s.plain())
                                        .unwrap_or_default()
                                })
                                .collect()
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
        FieldType::Text
        | FieldType::LongText
        | FieldType::Number
        | FieldType::Date
        | FieldType::Datetime => Shown::Text {
            text: scalar(value),
        },
    })
}

/// Values no field describes (a start's input, an older definition's answers): keys as words,
/// nested objects flattened (`change.ticket` -> "Change ticket"), lists of objects as tables.
fn loose(value: &Value) -> Vec<Answer> {
    let mut out = Vec::new();
    flatten(&mut out, "", value);
    out
}

fn flatten(out: &mut Vec<Answer>, prefix: &str, value: &Value) {
    let Value::Object(map) = value else {
        if !value.is_null() {
            out.push(Answer {
                field: prefix.to_owned(),
                label: humanize(prefix),
                value: untyped(value),
            });
        }
        return;
    };
    for (key, value) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(_) => flatten(out, &path, value),
            Value::Null => {}
            _ => out.push(Answer {
                label: humanize(&path.replace('.', " ")),
                field: path,
                value: untyped(value),
            }),
        }
    }
}

/// A value without a field to say what it is.
fn untyped(value: &Value) -> Shown {
    match value {
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            let mut columns: Vec<String> = Vec::new();
            for item in items.iter().filter_map(Value::as_object) {
                for key in item.keys() {
                    if !columns.contains(key) {
                        columns.push(key.clone());
                    }
                }
            }
            Shown::Table {
                rows: items
                    .iter()
                    .map(|item| {
                        columns
                            .iter()
                            .map(|c| item.get(c).map(cell).unwrap_or_default())
                            .collect()
                    })
                    .collect(),
                columns: columns.iter().map(|c| humanize(c)).collect(),
            }
        }
        Value::Array(_) => Shown::List {
            items: items(value),
        },
        Value::Bool(_) => Shown::Text {
            text: yes_no(value),
        },
        Value::String(s) if s.starts_with("https://") || s.starts_with("http://") => {
            Shown::Link { url: s.clone() }
        }
        _ => Shown::Text { text: cell(value) },
    }
}

/// A nested value on one line, without JSON's punctuation.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(_) => yes_no(value),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{}: {}", humanize(k), cell(v)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn scalar(value: &Value) -> String {
    cell(value)
}

fn items(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().map(cell).collect(),
        other => vec![cell(other)],
    }
}

fn yes_no(value: &Value) -> String {
    match value {
        Value::Bool(true) => "Yes".to_owned(),
        Value::Bool(false) => "No".to_owned(),
        other => cell(other),
    }
}
