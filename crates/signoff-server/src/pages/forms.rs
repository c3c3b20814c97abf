//! Forms of a workflow definition as HTML fields, and posted HTML fields back into form values.
//!
//! Field names follow the values' paths: `service`, `risks[0].severity`, so the engine's refusal
//! (which names the field by path) lands next to the input it is about.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use signoff_core::workflow::{Field, FieldType, Form};

/// A field as the templates render it.
#[derive(Serialize)]
pub struct FieldView {
    id: String,
    label: String,
    help: String,
    ty: String,
    required: bool,
    options: Vec<OptionView>,
    /// The value typed or recorded, as text.
    value: String,
    /// For a multi-choice: the options chosen.
    values: Vec<String>,
    error: Option<String>,
    /// For a group: its items, each a list of fields.
    items: Vec<Vec<FieldView>>,
}

/// A section of fields.
#[derive(Serialize)]
pub struct SectionView {
    title: String,
    fields: Vec<FieldView>,
}

/// A whole form.
#[derive(Serialize)]
pub struct FormView {
    sections: Vec<SectionView>,
}

/// A refusal to show next to a field (by its path), or above the form.
pub struct FieldError<'a> {
    /// The field's path (`risks[0].severity`), when the refusal names one.
    pub field: Option<&'a str>,
    /// The sentence.
    pub message: &'a str,
}

fn type_name(ty: FieldType) -> String {
    serde_json::to_value(ty)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn text_of(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn field_view(
    field: &Field,
    path: &str,
    values: &Map<String, Value>,
    error: &FieldError<'_>,
) -> FieldView {
    let value = values.get(field.id.as_str());
    let ty = field.ty.value;
    let name = format!("{path}{}", field.id.as_str());
    let items = if ty == FieldType::Group {
        let existing = value.and_then(Value::as_array).cloned().unwrap_or_default();
        // The items given so far, and one more to fill.
        (0..=existing.len())
            .map(|i| {
                let item = existing
                    .get(i)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                field
                    .fields
                    .iter()
                    .map(|sub| field_view(sub, &format!("{name}[{i}]."), &item, error))
                    .collect()
            })
            .collect()
    } else {
        Vec::new()
    };
    FieldView {
        id: field.id.as_str().to_owned(),
        label: if field.label.is_empty() {
            field.id.as_str().to_owned()
        } else {
            field.label.clone()
        },
        help: field.help.clone(),
        ty: type_name(ty),
        required: field.required,
        options: field
            .options
            .iter()
            .map(|o| OptionView {
                value: o.clone(),
                label: field.option_label(o),
            })
            .collect(),
        values: value
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| text_of(Some(v))).collect())
            .unwrap_or_default(),
        value: if ty == FieldType::Group || ty == FieldType::MultiChoice {
            String::new()
        } else {
            text_of(value)
        },
        error: (error.field == Some(name.as_str())).then(|| error.message.to_owned()),
        items,
    }
}

/// One option of a choice: what is sent, and what people read.
#[derive(Serialize)]
struct OptionView {
    value: String,
    label: String,
}

/// The view of `form` filled with `values`, with `error` next to its field.
pub fn view(form: &Form, values: &Map<String, Value>, error: &FieldError<'_>) -> FormView {
    let mut sections = Vec::new();
    if !form.fields.is_empty() {
        sections.push(SectionView {
            title: String::new(),
            fields: form
                .fields
                .iter()
                .map(|f| field_view(f, "", values, error))
                .collect(),
        });
    }
    for section in &form.sections {
        sections.push(SectionView {
            title: section.title.clone(),
            fields: section
                .fields
                .iter()
                .map(|f| field_view(f, "", values, error))
                .collect(),
        });
    }
    FormView { sections }
}

/// Whether the refusal's field is one of the form's inputs (else it is shown above the form).
pub fn names_an_input(form: &Form, field: &str) -> bool {
    let top = field.split(['[', '.']).next().unwrap_or(field);
    form.all_fields().any(|f| f.id.as_str() == top)
}

/// A text typed into a field, as the value its type holds. Text that is not of the type is
/// kept as text, so the engine refuses it naming the field, and the page shows it again.
fn typed(ty: FieldType, text: &str) -> Value {
    match ty {
        FieldType::Number => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(text.to_owned())),
        FieldType::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::String(other.to_owned()),
        },
        _ => Value::String(text.to_owned()),
    }
}

/// The values of `fields` from posted pairs, names prefixed by `prefix`. Empty inputs give no
/// value (the engine says when one is required).
fn values_of(fields: &[&Field], pairs: &[(String, String)], prefix: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for field in fields {
        let name = format!("{prefix}{}", field.id.as_str());
        let ty = field.ty.value;
        let given = || {
            pairs
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let value = match ty {
            FieldType::MultiChoice => {
                let chosen: Vec<Value> = given().map(|v| Value::String(v.to_owned())).collect();
                (!chosen.is_empty()).then_some(Value::Array(chosen))
            }
            FieldType::Group => {
                let open = format!("{name}[");
                let indices: BTreeMap<usize, ()> = pairs
                    .iter()
                    .filter_map(|(n, _)| n.strip_prefix(&open))
                    .filter_map(|rest| rest.split(']').next()?.parse().ok())
                    .map(|i| (i, ()))
                    .collect();
                let subfields: Vec<&Field> = field.fields.iter().collect();
                let items: Vec<Value> = indices
                    .keys()
                    .map(|i| values_of(&subfields, pairs, &format!("{name}[{i}].")))
                    .filter(|item| !item.is_empty())
                    .map(Value::Object)
                    .collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }
            _ => given().next_back().map(|v| typed(ty, v)),
        };
        if let Some(value) = value {
            out.insert(field.id.as_str().to_owned(), value);
        }
    }
    out
}

/// The values of a posted form.
pub fn parse(form: &Form, pairs: &[(String, String)]) -> Map<String, Value> {
    let fields: Vec<&Field> = form.all_fields().collect();
    values_of(&fields, pairs, "")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form() -> Form {
        let yaml = "\
id: t
title: T
steps:
  - id: f
    form:
      fields:
        - { id: name, type: text, required: true }
        - { id: count, type: number }
        - { id: ok, type: boolean }
        - { id: tags, type: multi_choice, options: [a, b, c] }
        - id: risks
          type: group
          fields:
            - { id: kind, type: text }
            - { id: severity, type: number }
    next: done
  - id: done
    end: { outcome: done }
";
        let loaded = signoff_core::workflow::load("t.yaml", yaml).expect("valid");
        loaded.definition.steps[0].form.clone().expect("a form")
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn posted_fields_become_typed_values_and_empty_items_are_dropped() {
        let values = parse(
            &form(),
            &pairs(&[
                ("name", " Payments "),
                ("count", "3"),
                ("ok", "true"),
                ("tags", "a"),
                ("tags", "c"),
                ("risks[0].kind", "illegitimate access"),
                ("risks[0].severity", "2.5"),
                ("risks[1].kind", ""),
                ("risks[1].severity", ""),
            ]),
        );
        assert_eq!(
            Value::Object(values),
            json!({"name": "Payments", "count": 3, "ok": true, "tags": ["a", "c"],
                   "risks": [{"kind": "illegitimate access", "severity": 2.5}]})
        );
        let kept = parse(&form(), &pairs(&[("count", "three")]));
        assert_eq!(
            kept["count"], "three",
            "kept as typed, for the engine to refuse"
        );
    }

    #[test]
    fn an_error_lands_next_to_the_field_it_names_and_values_stay() {
        let form = form();
        let values = parse(&form, &pairs(&[("risks[0].severity", "9"), ("name", "x")]));
        let error = FieldError {
            field: Some("risks[0].severity"),
            message: "at most 4",
        };
        let view = serde_json::to_value(view(&form, &values, &error)).expect("serialisable");
        let fields = &view["sections"][0]["fields"];
        assert_eq!(fields[0]["value"], "x");
        let item = &fields[4]["items"][0];
        assert_eq!(item[1]["value"], "9");
        assert_eq!(item[1]["error"], "at most 4");
        assert_eq!(
            fields[4]["items"].as_array().map(Vec::len),
            Some(2),
            "one more to fill"
        );
        assert!(names_an_input(&form, "risks[0].severity"));
        assert!(!names_an_input(&form, "justification"));
    }
}
