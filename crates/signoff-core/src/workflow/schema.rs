//! The JSON Schema of a definition file, generated from the types of [`super::model`], so the
//! schema editors read (`workflows/schema.json`) cannot drift from what the parser accepts.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::model::Definition;

/// Where the schema says it lives: the file committed beside the shipped definitions.
pub const SCHEMA_ID: &str = "urn:signoff:workflow-definition";

/// The JSON Schema (draft 2020-12) of a workflow definition file, as committed in
/// `workflows/schema.json`.
#[must_use]
pub fn json_schema() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<Definition>();
    schema.insert("$id".to_owned(), Value::from(SCHEMA_ID));
    schema.insert(
        "title".to_owned(),
        Value::from("signoff workflow definition"),
    );
    schema.to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump() {
        if let Ok(path) = std::env::var("DUMP") {
            let text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
            std::fs::write(path, text + "\n").ok();
        }
    }
}
