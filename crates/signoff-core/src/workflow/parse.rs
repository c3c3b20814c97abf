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
/// with its position, said for a person and with a hint.
pub fn parse(file: &str, text: &str) -> Result<Definition, Problem> {
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(Problem::new(
            file,
            Position::default(),
            format!(
                "the file is {} bytes; a definition may be at most {MAX_DEFINITION_BYTES}",
                text.len()
            ),
        )
        .hint(
            "shorten its descriptions, or split the workflow in two linked by `start_workflow`",
        ));
    }
    // The YAML reader is meant never to panic; this keeps that promise for `validate` whatever
    // the input, should it ever break it.
    let result = std::panic::catch_unwind(|| serde_saphyr::from_str::<Definition>(text));
    match result {
        Ok(Ok(definition)) => Ok(definition),
        Ok(Err(error)) => Err(yaml_problem(file, text, &error)),
        Err(_) => Err(Problem::new(
            file,
            Position::default(),
            "the YAML reader failed on this file",
        )
        .hint("this is a bug in signoff's YAML reader: please report it with the file")),
    }
}

fn yaml_problem(file: &str, text: &str, error: &serde_saphyr::Error) -> Problem {
    let mut at = error
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
    if is_about_tabs(&message) {
        at = first_tab_indent(text, at).unwrap_or(at);
    }
    let (message, hint) = explain(&message, text, at);
    Problem::new(file, at, message).hint(hint)
}

/// The reader appends " at line L column C"; the position is printed in front already.
fn strip_position_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].trim_end_matches(',').to_owned(),
        None => message.to_owned(),
    }
}

/// Whether the reader complains about a tab ("found a tab", "tabs disallowed …").
fn is_about_tabs(message: &str) -> bool {
    message.contains("a tab") || message.contains("tabs ")
}

/// The first tab in the indentation of a line, from the line the reader complained about on:
/// it may complain at the start of the value the tab's line seemed to continue.
fn first_tab_indent(text: &str, from: Position) -> Option<Position> {
    let skip = usize::try_from(from.line.saturating_sub(1)).unwrap_or(usize::MAX);
    text.lines().enumerate().skip(skip).find_map(|(i, line)| {
        let indent = &line[..line.len() - line.trim_start().len()];
        let column = indent.chars().position(|c| c == '\t')?;
        Some(Position {
            line: u32::try_from(i + 1).ok()?,
            column: u32::try_from(column + 1).ok()?,
        })
    })
}

/// The YAML reader's message as a sentence for a person, and what to do about it.
fn explain(message: &str, text: &str, at: Position) -> (String, String) {
    let said = |message: &str, hint: &str| (message.to_owned(), hint.to_owned());
    if let Some((what, hint)) = super::duration::explain(message) {
        return said(what, hint);
    }
    if let Some(known) = unknown_name(message) {
        return known;
    }
    if let Some(key) = between(message, "missing field `", "`") {
        return (
            format!("the key `{key}` is missing"),
            format!(
                "add `{key}:` to this mapping; workflows/schema.json lists what each part needs"
            ),
        );
    }
    if let Some(key) = between(message, "duplicate mapping key: ", ", set ") {
        return (
            format!("the key `{key}` is given twice in this mapping"),
            "keep one of them".to_owned(),
        );
    }
    let empty = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    let top = at.line <= 1 && at.column <= 1;
    match message {
        "unexpected end of input" if empty => said(
            "the file holds no definition",
            "a definition is a mapping with at least `id`, `title` and `steps`; the files in workflows/ are examples",
        ),
        "unexpected end of input" => said(
            "the file ends in the middle of a value",
            "look above for a bracket or a quote that is not closed",
        ),
        "expected mapping start" if top => said(
            "the file is not a mapping of keys to values",
            "a definition starts with `id:`, `title:` and `steps:`, each at the start of a line",
        ),
        "expected mapping start" => said(
            "expected keys and values here",
            "write `key: value` lines indented under the key, or `{key: value}` on one line",
        ),
        "expected sequence start" => said(
            "expected a list here",
            "write one `- item` per line indented under the key, or `[a, b]` on one line",
        ),
        "expected string scalar" => said(
            "expected a text here, not a list or a mapping",
            "write the text after the key; quote it if it starts with `[`, `{`, `*`, `&` or `!`",
        ),
        "invalid boolean" => said("expected true or false here", "write `true` or `false`"),
        "invalid floating point" => said(
            "expected a number here",
            "write a number such as `10` or `2.5`",
        ),
        "unclosed quote" => said(
            "a quoted text is not closed",
            "end it with the quote it starts with; inside single quotes, write '' for one '",
        ),
        _ => explain_syntax(message),
    }
}

/// Messages of the YAML scanner and parser, and of values the types refuse, matched by the words
/// they contain.
fn explain_syntax(message: &str) -> (String, String) {
    let has = |part: &str| message.contains(part);
    let (what, hint) = if is_about_tabs(message) {
        (
            "a tab is used to indent",
            "indent with spaces; YAML does not allow tabs there",
        )
    } else if has("did not find expected key") {
        (
            "this line is not indented like the keys around it",
            "the keys of one mapping start in the same column, and a value on the next lines is indented further than its key",
        )
    } else if has("did not find expected '-' indicator") {
        (
            "this line is not indented like the list around it",
            "the items of a list each start with `- ` in the same column, and an item's other keys line up under its first key",
        )
    } else if has("flow mapping") {
        (
            "a `{` is not closed where it should be",
            "close it with `}` and separate its entries with commas; quote a text that contains `,`, `{`, `}` or `: `",
        )
    } else if has("flow sequence") {
        (
            "a `[` is not closed where it should be",
            "close it with `]` and separate its items with commas; quote a text that contains `,`, `[` or `]`",
        )
    } else if has("mapping values are not allowed") {
        (
            "a `: ` stands where a value cannot start",
            "quote a text that contains `: `, e.g. `title: \"Step: review\"`",
        )
    } else if has("cannot start any token") {
        (
            "a value starts with a character YAML reserves",
            "quote the value, e.g. `\"@team\"` or `\"`cmd`\"`",
        )
    } else if has("unknown escape") {
        (
            "a double-quoted text has an unknown escape",
            "write `\\\\` for a backslash, or use single quotes, where a backslash is plain text",
        )
    } else if has("anchor") || has("alias") {
        (
            "an alias (`*name`) or anchor (`&name`) is not right here",
            "quote a text that starts with `*` or `&`",
        )
    } else if has("multiple YAML documents") {
        (
            "the file holds more than one YAML document",
            "a file holds one workflow: remove the `---` line, or put each workflow in a file of its own",
        )
    } else if has("untagged enum Count") {
        (
            "expected a number of approvals or `all`",
            "write `count: 2`, or `count: all` for every member",
        )
    } else if has("invalid u") || has("invalid i") {
        (
            "expected a whole number here",
            "write a whole number, zero or more, such as `2`",
        )
    } else {
        return (
            message.to_owned(),
            "the YAML reader stopped here; check the indentation, quotes and brackets of this line and the one before".to_owned(),
        );
    };
    (what.to_owned(), hint.to_owned())
}

/// The text of `message` between `start` and the next `end`.
fn between<'m>(message: &'m str, start: &str, end: &str) -> Option<&'m str> {
    let (_, rest) = message.split_once(start)?;
    Some(rest.split_once(end)?.0)
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (or "unknown variant …", or
/// "expected `a` or `b`"): the message, and as hint the closest expected name by edit distance,
/// or the names, and the step kinds when the key was met inside a step.
fn unknown_name(message: &str) -> Option<(String, String)> {
    let (what, rest) = if let Some((_, rest)) = message.split_once("unknown field `") {
        ("key", rest)
    } else {
        ("value", message.split_once("unknown variant `")?.1)
    };
    let (wrong, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = match rest.split_once("expected ") {
        Some((_, expected)) => expected
            .strip_prefix("one of ")
            .unwrap_or(expected)
            .split(", ")
            .flat_map(|part| part.split(" or "))
            .map(|name| name.trim().trim_matches('`'))
            .filter(|name| !name.is_empty())
            .collect(),
        None => Vec::new(),
    };
    let message = format!("unknown {what} `{wrong}`");
    if expected.is_empty() {
        let hint = "check the spelling against workflows/schema.json (editors that read the schema autocomplete keys)";
        return Some((message, hint.to_owned()));
    }
    let in_step = expected.contains(&"approval") && expected.contains(&"end");
    let kinds = || super::model::StepKind::KEYS.join(", ");
    let suggestion = super::validate::closest(wrong, expected.iter().copied());
    let hint = match (suggestion, in_step) {
        (Some(name), true) => format!(
            "did you mean `{name}`? a step names its kind with one of: {}",
            kinds()
        ),
        (Some(name), false) => format!("did you mean `{name}`?"),
        (None, true) => format!(
            "a step names its kind with one of: {}; its other keys are in workflows/schema.json",
            kinds()
        ),
        (None, false) => format!("write one of: {}", expected.join(", ")),
    };
    Some((message, hint))
}

/// Every problem of one definition file's text, sorted by position: what `signoff validate`
/// prints. A file the YAML reader cannot read (bad syntax, an unknown key, a value of the wrong
/// type) gives that one problem, since nothing after it can be trusted; a file that reads gives
/// every problem the checks of [`super::validate`] find. Never panics, whatever the text.
#[must_use]
pub fn check_text(file: &str, text: &str) -> Vec<Problem> {
    match parse(file, text) {
        Err(problem) => vec![problem],
        Ok(definition) => super::validate::check(file, &definition).problems,
    }
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
