//! A workflow's first form in Discord (pure): its short fields as a slash command's options,
//! its long texts in a modal (Discord takes at most five inputs in one); a form that does not
//! fit is filled on its web page instead.

use serde_json::{Map, Value, json};
use signoff_core::workflow::{Field, FieldType, Loaded};

use crate::payload::{self, response};

/// Inputs a modal takes.
const MODAL_INPUTS: usize = 5;
/// Options a slash command takes.
const COMMAND_OPTIONS: usize = 25;

/// How a first form is filled in Discord.
#[derive(Debug)]
pub struct Plan<'a> {
    /// Its step.
    pub step: &'a str,
    /// Fields given as the command's options.
    pub options: Vec<&'a Field>,
    /// Fields typed in the modal.
    pub texts: Vec<&'a Field>,
}

/// The short fields as options, the long texts in a modal; `None` when the form does not fit
/// (a group, a multiple choice, a date, more than five long texts).
#[must_use]
pub fn with_options(loaded: &Loaded) -> Option<Plan<'_>> {
    let (step, form) = loaded.definition.starting_form()?;
    let step = step.id.as_str();
    let mut plan = Plan {
        step,
        options: Vec::new(),
        texts: Vec::new(),
    };
    for field in form.all_fields() {
        match *field.ty {
            FieldType::LongText => plan.texts.push(field),
            FieldType::Text
            | FieldType::Number
            | FieldType::Link
            | FieldType::Boolean
            | FieldType::Person => plan.options.push(field),
            FieldType::Choice if field.options.len() <= 25 => plan.options.push(field),
            _ => return None,
        }
    }
    (plan.texts.len() <= MODAL_INPUTS && plan.options.len() <= COMMAND_OPTIONS).then_some(plan)
}

/// Every field in a modal; `None` when the form does not fit one (more than five fields, or
/// one that is not typed text).
#[must_use]
pub fn in_modal(loaded: &Loaded) -> Option<Plan<'_>> {
    let (step, form) = loaded.definition.starting_form()?;
    let step = step.id.as_str();
    let fields: Vec<&Field> = form.all_fields().collect();
    let typed = fields.iter().all(|f| {
        matches!(
            *f.ty,
            FieldType::Text | FieldType::LongText | FieldType::Number | FieldType::Link
        )
    });
    (typed && !fields.is_empty() && fields.len() <= MODAL_INPUTS).then(|| Plan {
        step,
        options: Vec::new(),
        texts: fields,
    })
}

/// The options of a command for `plan`'s option fields, required ones first (Discord's rule).
#[must_use]
pub fn options(plan: &Plan<'_>) -> Vec<Value> {
    let mut fields = plan.options.clone();
    fields.sort_by_key(|f| !f.required);
    fields
        .iter()
        .map(|field| {
            let kind = match *field.ty {
                FieldType::Number => 10,
                FieldType::Boolean => 5,
                FieldType::Person => 6,
                _ => 3,
            };
            let mut option = json!({
                "type": kind,
                "name": field.id.as_str(),
                "description": payload::cut(&label(field), 100),
                "required": field.required,
            });
            if *field.ty == FieldType::Choice {
                option["choices"] = field
                    .options
                    .iter()
                    .map(|o| {
                        let name = field.labels.get(o).map_or(o.as_str(), String::as_str);
                        json!({"name": payload::cut(name, 100), "value": o})
                    })
                    .collect();
            }
            option
        })
        .collect()
}

fn label(field: &Field) -> String {
    if field.label.trim().is_empty() {
        signoff_core::workflow::humanize(field.id.as_str())
    } else {
        field.label.trim().to_owned()
    }
}

/// The modal for `plan`'s text fields.
#[must_use]
pub fn modal(custom_id: &str, title: &str, plan: &Plan<'_>) -> Value {
    let rows: Vec<Value> = plan
        .texts
        .iter()
        .map(|field| {
            let long = *field.ty == FieldType::LongText;
            let mut input = json!({
                "type": 4,
                "custom_id": field.id.as_str(),
                "label": payload::cut(&label(field), 45),
                "style": if long { 2 } else { 1 },
                "required": field.required,
                "max_length": 4000,
            });
            if long && let Some(min) = field.min {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let min = min.clamp(0.0, 4000.0) as u32;
                input["min_length"] = json!(min);
            }
            if !field.help.trim().is_empty() {
                input["placeholder"] = json!(payload::cut(field.help.trim(), 100));
            }
            json!({"type": 1, "components": [input]})
        })
        .collect();
    json!({
        "type": response::MODAL,
        "data": {
            "custom_id": custom_id,
            "title": payload::cut(title, 45),
            "components": rows,
        },
    })
}

/// A typed value for `field` from text a person typed: a number read as one (kept as typed
/// when it is not, for the engine to refuse with the field's name); empty is no value.
#[must_use]
pub fn typed(field: &Field, text: &str) -> Option<Value> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if *field.ty == FieldType::Number
        && let Ok(n) = text.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(n)
    {
        return Some(Value::Number(n));
    }
    Some(Value::String(text.to_owned()))
}

/// The values a modal's inputs give for `plan`'s text fields.
#[must_use]
pub fn from_inputs(plan: &Plan<'_>, inputs: &[(String, String)]) -> Map<String, Value> {
    let mut values = Map::new();
    for field in &plan.texts {
        if let Some((_, text)) = inputs.iter().find(|(id, _)| id == field.id.as_str())
            && let Some(value) = typed(field, text)
        {
            values.insert(field.id.as_str().to_owned(), value);
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(yaml: &str) -> Loaded {
        signoff_core::workflow::load("t.yaml", yaml).expect("valid")
    }

    const OVERRIDE: &str = include_str!("../../../workflows/override-justification.yaml");
    const DEPLOY: &str = include_str!("../../../workflows/deployment-approval.yaml");

    #[test]
    fn the_override_form_splits_into_options_and_a_modal_of_its_long_texts() {
        let loaded = loaded(OVERRIDE);
        let plan = with_options(&loaded).expect("the override form fits");
        assert_eq!(plan.step, "override");
        let texts: Vec<&str> = plan.texts.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(texts, ["recommendation", "action_taken", "reason"]);
        let options = options(&plan);
        let required: Vec<bool> = options.iter().map(|o| o["required"] == true).collect();
        let first_optional = required.iter().position(|r| !r).unwrap_or(required.len());
        assert!(
            required[first_optional..].iter().all(|r| !r),
            "required options come first: {options:?}"
        );
        let category = options
            .iter()
            .find(|o| o["name"] == "reason_category")
            .unwrap();
        assert_eq!(category["choices"].as_array().unwrap().len(), 8);
        let confidence = options.iter().find(|o| o["name"] == "confidence").unwrap();
        assert_eq!(confidence["type"], 10);
        let modal = modal("form:1", "Override of an automated decision", &plan);
        let inputs = modal["data"]["components"].as_array().unwrap();
        assert_eq!(inputs.len(), 3);
        assert_eq!(inputs[2]["components"][0]["min_length"], 30);
        assert_eq!(inputs[2]["components"][0]["style"], 2);
    }

    #[test]
    fn a_form_that_does_not_fit_a_modal_says_so() {
        assert!(
            in_modal(&loaded(DEPLOY)).is_none(),
            "choices and nine fields"
        );
        let small = loaded(
            "id: t\ntitle: T\nsteps:\n  - id: f\n    form:\n      fields:\n        - { id: what, type: text, required: true }\n        - { id: cost, type: number }\n    next: done\n  - id: done\n    end: { outcome: done }\n",
        );
        let plan = in_modal(&small).expect("two typed fields fit");
        let values = from_inputs(
            &plan,
            &[
                ("what".into(), " a thing ".into()),
                ("cost".into(), "12.5".into()),
            ],
        );
        assert_eq!(
            Value::Object(values),
            json!({"what": "a thing", "cost": 12.5})
        );
    }
}
