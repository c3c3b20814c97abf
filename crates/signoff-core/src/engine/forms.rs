//! Checking form values against a form's fields: types, required, bounds, patterns, options.
//! Every refusal names the field (`risks[2].severity`) and says what is expected.

use serde_json::{Map, Value};

use super::command::{People, Rejection};
use crate::event::Timestamp;
use crate::workflow::{Field, FieldType, Form};

/// Checks `values` against `form`, returning them with empty optional values dropped.
///
/// # Errors
/// The first field at fault, by path, with what it expects.
pub fn check_values(
    form: &Form,
    values: &Map<String, Value>,
    people: &dyn People,
) -> Result<Map<String, Value>, Rejection> {
    let fields: Vec<&Field> = form.all_fields().collect();
    check_object(&fields, values, "", people)
}

fn check_object(
    fields: &[&Field],
    values: &Map<String, Value>,
    prefix: &str,
    people: &dyn People,
) -> Result<Map<String, Value>, Rejection> {
    if let Some(unknown) = values
        .keys()
        .find(|k| !fields.iter().any(|f| f.id.as_str() == k.as_str()))
    {
        let known: Vec<&str> = fields.iter().map(|f| f.id.as_str()).collect();
        return Err(Rejection::invalid(format!(
            "the form has no field {:?}; its fields are: {}",
            format!("{prefix}{unknown}"),
            known.join(", ")
        ))
        .at_field(format!("{prefix}{unknown}")));
    }
    let mut out = Map::new();
    for field in fields {
        let path = format!("{prefix}{}", field.id.as_str());
        match values.get(field.id.as_str()) {
            None | Some(Value::Null) => {
                if field.required {
                    return Err(fail(&path, field, "is required"));
                }
            }
            Some(Value::String(s)) if s.trim().is_empty() && field.required => {
                return Err(fail(&path, field, "is required"));
            }
            Some(Value::String(s)) if s.trim().is_empty() => {}
            Some(value) => {
                let value = check_value(field, value, &path, people)?;
                out.insert(field.id.value.clone(), value);
            }
        }
    }
    Ok(out)
}

fn fail(path: &str, field: &Field, what: &str) -> Rejection {
    let label = if field.label.is_empty() {
        String::new()
    } else {
        format!(" ({})", field.label)
    };
    Rejection::invalid(format!("field {path}{label} {what}")).at_field(path)
}

#[allow(clippy::too_many_lines)] // one arm per field type reads best as one match
fn check_value(
    field: &Field,
    value: &Value,
    path: &str,
    people: &dyn People,
) -> Result<Value, Rejection> {
    let ty = field.ty.value;
    match ty {
        FieldType::Text | FieldType::LongText | FieldType::Link => {
            let Some(text) = value.as_str() else {
                return Err(fail(path, field, &format!("must be text, not {value}")));
            };
            let chars = text.chars().count();
            #[allow(clippy::cast_precision_loss)]
            let n = chars as f64;
            if let Some(min) = field.min
                && n < min
            {
                return Err(fail(
                    path,
                    field,
                    &format!("must be at least {min} characters (it has {chars})"),
                ));
            }
            if let Some(max) = field.max
                && n > max
            {
                return Err(fail(
                    path,
                    field,
                    &format!("must be at most {max} characters (it has {chars})"),
                ));
            }
            if ty == FieldType::Link
                && !(text.starts_with("https://") || text.starts_with("http://"))
            {
                return Err(fail(
                    path,
                    field,
                    &format!("must be an http(s):// link, not {text:?}"),
                ));
            }
            if let Some(pattern) = &field.pattern {
                let matches = super::compiled::matches(pattern.as_str(), text);
                if !matches {
                    // The field's help says in words what the pattern says in a regex.
                    let expected = if field.help.trim().is_empty() {
                        format!("must match the pattern {}", pattern.as_str())
                    } else {
                        format!("is not in the form expected: {}", field.help.trim())
                    };
                    return Err(fail(path, field, &expected));
                }
            }
            Ok(Value::String(text.to_owned()))
        }
        FieldType::Number => {
            let number = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            let Some(n) = number.filter(|n| n.is_finite()) else {
                return Err(fail(path, field, &format!("must be a number, not {value}")));
            };
            if let Some(min) = field.min
                && n < min
            {
                return Err(fail(path, field, &format!("must be at least {min}")));
            }
            if let Some(max) = field.max
                && n > max
            {
                return Err(fail(path, field, &format!("must be at most {max}")));
            }
            Ok(serde_json::Number::from_f64(n).map_or(Value::Null, |num| {
                // Keep whole numbers as integers so expressions compare them naturally.
                #[allow(clippy::cast_possible_truncation, clippy::float_cmp)]
                if n.fract() == 0.0 && n.abs() < 9.0e15 {
                    Value::from(n as i64)
                } else {
                    Value::Number(num)
                }
            }))
        }
        FieldType::Boolean => match value {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) if matches!(s.as_str(), "true" | "yes") => Ok(Value::Bool(true)),
            Value::String(s) if matches!(s.as_str(), "false" | "no") => Ok(Value::Bool(false)),
            _ => Err(fail(
                path,
                field,
                &format!("must be true or false, not {value}"),
            )),
        },
        FieldType::Choice => {
            let choice = value.as_str().unwrap_or_default();
            if field.options.iter().any(|o| o == choice) {
                Ok(Value::String(choice.to_owned()))
            } else {
                Err(fail(
                    path,
                    field,
                    &format!("must be one of {}, not {value}", field.options.join(", ")),
                ))
            }
        }
        FieldType::MultiChoice => {
            let items: Vec<&str> = match value {
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                Value::String(s) => s
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(bad) = items
                .iter()
                .find(|i| !field.options.iter().any(|o| o == *i))
            {
                return Err(fail(
                    path,
                    field,
                    &format!("may hold only {}, not {bad:?}", field.options.join(", ")),
                ));
            }
            count_bounds(field, path, items.len())?;
            Ok(Value::Array(
                items
                    .into_iter()
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ))
        }
        FieldType::Date => {
            let text = value.as_str().unwrap_or_default();
            if chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() {
                Ok(Value::String(text.to_owned()))
            } else {
                Err(fail(
                    path,
                    field,
                    &format!("must be a date YYYY-MM-DD, not {value}"),
                ))
            }
        }
        FieldType::Datetime => {
            let text = value.as_str().unwrap_or_default();
            if Timestamp::parse_moment(text).is_some() {
                Ok(Value::String(text.to_owned()))
            } else {
                Err(fail(
                    path,
                    field,
                    &format!(
                        "must be an RFC 3339 time (2026-03-02T22:00:00+01:00) or a date \
                         YYYY-MM-DD that is in the calendar, not {value}"
                    ),
                ))
            }
        }
        FieldType::Person => {
            let id = value.as_str().unwrap_or_default();
            if people.exists(id) {
                Ok(Value::String(id.to_owned()))
            } else {
                Err(fail(
                    path,
                    field,
                    &format!("must name a person of the directory; {value} is not one"),
                ))
            }
        }
        FieldType::Group => {
            let Value::Array(items) = value else {
                return Err(fail(path, field, "must be a list of items"));
            };
            count_bounds(field, path, items.len())?;
            let sub: Vec<&Field> = field.fields.iter().collect();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let Value::Object(item) = item else {
                    return Err(fail(&format!("{path}[{i}]"), field, "must be an object"));
                };
                out.push(Value::Object(check_object(
                    &sub,
                    item,
                    &format!("{path}[{i}]."),
                    people,
                )?));
            }
            Ok(Value::Array(out))
        }
    }
}

fn count_bounds(field: &Field, path: &str, n: usize) -> Result<(), Rejection> {
    #[allow(clippy::cast_precision_loss)]
    let count = n as f64;
    if let Some(min) = field.min
        && count < min
    {
        return Err(fail(
            path,
            field,
            &format!("needs at least {min} items (it has {n})"),
        ));
    }
    if let Some(max) = field.max
        && count > max
    {
        return Err(fail(
            path,
            field,
            &format!("may have at most {max} items (it has {n})"),
        ));
    }
    Ok(())
}
