//! The JSON Schema of a definition file, generated from the types of [`super::model`], so the
//! schema editors read (`workflows/schema.json`, committed) cannot drift from what the parser
//! accepts: a test fails when the committed file differs from [`json_schema`].
//!
//! The schema follows the YAML: a [`Located`](super::Located) value is its bare value, every
//! mapping the parser closes to unknown keys has `additionalProperties: false`, and a step lists
//! every kind key and must carry exactly one. Checks that need the whole definition (where
//! transitions lead, which roles exist, whether expressions compile) are left to
//! `signoff validate`.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::model::Definition;

/// The schema's `$id`: a name, not an address; editors find the schema through the committed
/// file, e.g. `# yaml-language-server: $schema=schema.json` at the top of a definition.
pub const SCHEMA_ID: &str = "urn:signoff:workflow-definition";

/// Where the committed schema lives, from the repository root.
pub const SCHEMA_PATH: &str = "workflows/schema.json";

/// The JSON Schema (draft 2020-12) of a workflow definition file.
#[must_use]
pub fn json_schema() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<Definition>();
    schema.insert("$id".to_owned(), SCHEMA_ID.into());
    schema.insert("title".to_owned(), "signoff workflow definition".into());
    schema.insert(
        "$comment".to_owned(),
        "Generated from crates/signoff-core/src/workflow/model.rs; do not edit. \
         Regenerate with `cargo run -p signoff -- schema > workflows/schema.json`."
            .into(),
    );
    let mut value = schema.to_value();
    // Keys in one order whether or not a build enables serde_json's `preserve_order`, so the
    // committed file and the CLI's output agree byte for byte.
    value.sort_all_objects();
    value
}

/// [`json_schema`] as the committed file holds it: pretty-printed, with a final newline.
#[must_use]
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema())
        // A `Value` always serialises: its map keys are strings.
        .unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn committed_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(SCHEMA_PATH)
    }

    /// `SIGNOFF_BLESS=1 cargo test -p signoff-core --lib schema` rewrites the committed file.
    #[test]
    fn the_committed_schema_is_the_generated_one() {
        let path = committed_path();
        let generated = json_schema_text();
        if std::env::var_os("SIGNOFF_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{SCHEMA_PATH} is not the schema of the types in model.rs; regenerate it with \
             `cargo run -p signoff -- schema > {SCHEMA_PATH}` \
             (or `SIGNOFF_BLESS=1 cargo test -p signoff-core --lib schema`) and commit it"
        );
    }

    fn definition<'s>(schema: &'s Value, name: &str) -> &'s Value {
        &schema["$defs"][name]
    }

    #[test]
    fn positions_are_invisible_and_unknown_keys_refused() {
        let schema = json_schema();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["$id"], SCHEMA_ID);
        assert_eq!(schema["properties"]["id"]["type"], "string");
        assert_eq!(schema["additionalProperties"], false);
        let defs = schema["$defs"]
            .as_object()
            .map(|d| d.len())
            .unwrap_or_default();
        assert!(defs > 20, "{schema:#}");
        for (name, def) in schema["$defs"].as_object().into_iter().flatten() {
            assert!(
                !name.starts_with("Located"),
                "{name} shows the position wrapper"
            );
            if def["type"] == "object" && def.get("properties").is_some() {
                assert_eq!(
                    def["additionalProperties"], false,
                    "{name} accepts unknown keys"
                );
            }
        }
        let deadline = definition(&schema, "Deadline");
        assert_eq!(deadline["properties"]["after"]["$ref"], "#/$defs/Duration");
    }

    #[test]
    fn a_step_lists_every_kind_and_must_carry_exactly_one() {
        let schema = json_schema();
        let step = definition(&schema, "Step");
        let one_of = step["oneOf"].as_array().cloned().unwrap_or_default();
        assert_eq!(one_of.len(), super::super::StepKind::KEYS.len());
        for key in super::super::StepKind::KEYS {
            assert!(
                step["properties"].get(key).is_some(),
                "no `{key}` in {step:#}"
            );
            assert!(one_of.contains(&serde_json::json!({ "required": [key] })));
        }
    }
}
