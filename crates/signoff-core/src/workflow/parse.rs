//! Reading a definition file: YAML to [`Definition`], every problem with its line and column.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::expr::Expression;
use super::located::Position;
use super::model::Definition;

/// Largest definition file accepted, in bytes.
pub const MAX_DEFINITION_BYTES: usize = 1024 * 1024;

/// One thing wrong with a definition, where it is, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file (as the caller named it).
    pub file: String,
    /// Where in the file (0:0 when the whole file is at fault).
    pub at: Position,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is more to say.
    pub hint: Option<String>,
}

impl Problem {
    /// A problem at a position.
    #[must_use]
    pub fn new(file: &str, at: Position, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            at,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.at, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// A definition ready to run: valid, its expressions compiled, its source and hash kept.
#[derive(Debug)]
pub struct Loaded {
    /// The definition.
    pub definition: Definition,
    /// The exact text it was read from (recorded in the log once, so old instances replay).
    pub source: String,
    /// `sha256:<hex>` of `source`: what an instance pins.
    pub hash: String,
    /// Every expression of the definition, compiled, by source text.
    pub expressions: HashMap<String, Arc<Expression>>,
}

impl Loaded {
    /// The compiled form of an expression that appears in the definition.
    #[must_use]
    pub fn expression(&self, source: &str) -> Option<&Expression> {
        self.expressions.get(source).map(Arc::as_ref)
    }
}

/// The content hash of a definition's text, as instances pin it.
#[must_use]
pub fn content_hash(source: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(source.as_bytes())))
}

/// Parses YAML text into a definition, without the checks of [`super::validate`].
///
/// # Errors
/// The first problem the YAML reader met (syntax, an unknown key, a value of the wrong type),
/// with its position.
pub fn parse(file: &str, text: &str) -> Result<Definition, Problem> {
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(Problem::new(
            file,
            Position::default(),
            format!(
                "the file is {} bytes; a definition may be at most {MAX_DEFINITION_BYTES}",
                text.len()
            ),
        ));
    }
    // The YAML reader is meant never to panic; this keeps that promise for `validate` whatever
    // the input, should it ever break it.
    let result = std::panic::catch_unwind(|| serde_saphyr::from_str::<Definition>(text));
    match result {
        Ok(Ok(definition)) => Ok(definition),
        Ok(Err(error)) => Err(yaml_problem(file, &error)),
        Err(_) => Err(Problem::new(
            file,
            Position::default(),
            "the YAML reader failed on this file",
        )),
    }
}

fn yaml_problem(file: &str, error: &serde_saphyr::Error) -> Problem {
    let at = error
        .location()
        .map_or_else(Position::default, |l| Position {
            line: u32::try_from(l.line()).unwrap_or(u32::MAX),
            column: u32::try_from(l.column()).unwrap_or(u32::MAX),
        });
    let options = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
    let rendered = error.render_with_options(options);
    let message = rendered
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .trim()
        .to_owned();
    let message = strip_position_suffix(&message);
    let problem = Problem::new(file, at, message.clone());
    match hint_for(&message) {
        Some(hint) => problem.hint(hint),
        None => problem,
    }
}

/// The reader appends " at line L column C"; the position is printed in front already.
fn strip_position_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].trim_end_matches(',').to_owned(),
        None => message.to_owned(),
    }
}

/// A hint for a reader error. For an unknown key or value (serde's "unknown field `x`, expected
/// one of `a`, `b`"), the closest expected name by edit distance, and the step kinds when the
/// key was met inside a step.
fn hint_for(message: &str) -> Option<String> {
    if let Some((wrong, expected)) = unknown_name(message) {
        let in_step = expected.contains(&"approval") && expected.contains(&"end");
        let kinds = || super::model::StepKind::KEYS.join(", ");
        let suggestion = super::validate::closest(wrong, expected.iter().copied());
        return Some(match (suggestion, in_step) {
            (Some(name), true) => format!(
                "did you mean `{name}`? a step names its kind with one of: {}",
                kinds()
            ),
            (Some(name), false) => format!("did you mean `{name}`?"),
            (None, true) => format!(
                "a step names its kind with one of: {}; its other keys are in workflows/schema.json",
                kinds()
            ),
            (None, false) => format!("expected one of: {}", expected.join(", ")),
        });
    }
    if message.contains("unknown field") {
        return Some("check the spelling against workflows/schema.json (editors that read the schema autocomplete keys)".to_owned());
    }
    if message.contains("missing field") {
        return Some("add the key; workflows/schema.json lists what each part needs".to_owned());
    }
    None
}

/// From "unknown field `x`, expected one of a, b" (or "unknown variant …", or "expected `a` or
/// `b`"), the unknown name and the expected ones.
fn unknown_name(message: &str) -> Option<(&str, Vec<&str>)> {
    let (_, rest) = message
        .split_once("unknown field `")
        .or_else(|| message.split_once("unknown variant `"))?;
    let (wrong, rest) = rest.split_once('`')?;
    let (_, expected) = rest.split_once("expected ")?;
    let expected = expected.strip_prefix("one of ").unwrap_or(expected);
    let names: Vec<&str> = expected
        .split(", ")
        .flat_map(|part| part.split(" or "))
        .map(|name| name.trim().trim_matches('`'))
        .filter(|name| !name.is_empty())
        .collect();
    (!names.is_empty()).then_some((wrong, names))
}

/// Parses, validates and compiles a definition.
///
/// # Errors
/// Every problem found, each with its position and, where it helps, a hint.
pub fn load(file: &str, text: &str) -> Result<Loaded, Vec<Problem>> {
    let definition = parse(file, text).map_err(|p| vec![p])?;
    let checked = super::validate::check(file, &definition);
    if !checked.problems.is_empty() {
        return Err(checked.problems);
    }
    Ok(Loaded {
        hash: content_hash(text),
        source: text.to_owned(),
        expressions: checked.expressions,
        definition,
    })
}
