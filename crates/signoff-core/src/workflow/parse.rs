//! Reading a definition file: YAML to [`Definition`], every problem with its line and column.

use std::collections::{BTreeSet, HashMap};
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
    /// The names of the input it reads, found once when loaded (see [`Loaded::input_names`]).
    pub inputs: BTreeSet<String>,
}

impl Loaded {
    /// The compiled form of an expression that appears in the definition.
    #[must_use]
    pub fn expression(&self, source: &str) -> Option<&Expression> {
        self.expressions.get(source).map(Arc::as_ref)
    }

    /// The names of the input its expressions and templates read (`input.NAME`,
    /// `input["NAME"]`): what a start may be given.
    #[must_use]
    pub fn input_names(&self) -> &BTreeSet<String> {
        &self.inputs
    }

    /// Refuses a start's input that names something the workflow never reads: it would be
    /// stored, shown and fill nothing (a form's answers are given to the form, once started).
    ///
    /// # Errors
    /// Says which names are unknown, what the workflow reads, and where answers go instead.
    pub fn check_input(
        &self,
        input: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), String> {
        let known = &self.inputs;
        let unknown: Vec<&str> = input
            .keys()
            .map(String::as_str)
            .filter(|k| !known.contains(*k))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let id = self.definition.id.as_str();
        let reads = if known.is_empty() {
            "it reads no input".to_owned()
        } else {
            format!(
                "it reads {}",
                known
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let first_form = self
            .definition
            .steps
            .iter()
            .find_map(|s| s.form.as_ref().map(|f| (s.id.as_str(), f)))
            .map(|(step, form)| {
                format!(
                    "; answers go to its forms once it is started, e.g. its first form {step:?} asks for {}",
                    form.all_fields()
                        .map(|f| f.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .unwrap_or_default();
        Err(format!(
            "the workflow {id:?} reads no input named {}: {reads}{first_form}",
            unknown
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// The names read as `input.NAME` or `input["NAME"]` in `source` (not `x.input.NAME`).
fn input_names(source: &str) -> BTreeSet<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = BTreeSet::new();
    for (at, _) in source.match_indices("input") {
        if source[..at]
            .chars()
            .next_back()
            .is_some_and(|c| word(c) || c == '.')
        {
            continue;
        }
        let rest = source[at + "input".len()..].trim_start();
        let name: String = if let Some(rest) = rest.strip_prefix('.') {
            rest.trim_start().chars().take_while(|c| word(*c)).collect()
        } else if let Some(rest) = rest.strip_prefix('[') {
            let rest = rest.trim_start();
            let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            rest[1..].chars().take_while(|c| *c != quote).collect()
        } else {
            continue;
        };
        if !name.is_empty() {
            names.insert(name);
        }
    }
    names
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
    let (at, message) = reader_error(text, error);
    let (message, hint) = explain(&message, text, at);
    Problem::new(file, at, message).hint(hint)
}

/// The YAML reader's complaint about `text` as one line, without the position it appends and
/// the advice about its own options, and where it is: at the tab or the bracket left open
/// rather than where the reader gave up, at 0:0 when the file holds nothing but comments.
/// Every YAML file signoff reads (definitions, the directory) reports through this.
pub(crate) fn reader_error(text: &str, error: &serde_saphyr::Error) -> (Position, String) {
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
    let mut message = strip_position_suffix(&message);
    // The reader's advice names its own options, which the file's author cannot set.
    if let Some(i) = message.find(", set DuplicateKeyPolicy") {
        message.truncate(i);
    }
    if is_about_tabs(&message) {
        at = first_tab_indent(text, at).unwrap_or(at);
    } else if message.contains("flow mapping") || message.contains("unclosed bracket '{'") {
        at = unclosed(text, at, '{', '}').unwrap_or(at);
    } else if message.contains("flow sequence") || message.contains("unclosed bracket '['") {
        at = unclosed(text, at, '[', ']').unwrap_or(at);
    }
    if !has_content(text) {
        // Nothing in the file is at fault more than the rest.
        at = Position::default();
    }
    (at, message)
}

/// The reader appends " at line L column C"; the position is printed in front already.
fn strip_position_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].trim_end_matches(',').to_owned(),
        None => message.to_owned(),
    }
}

/// Whether the text holds anything but blank lines and comments.
pub(crate) fn has_content(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start_matches('\u{feff}').trim();
        !l.is_empty() && !l.starts_with('#')
    })
}

/// Whether the reader complains about a tab ("found a tab", "tabs disallowed …").
fn is_about_tabs(message: &str) -> bool {
    message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| word == "tab" || word == "tabs")
}

/// Whether the reader refuses a whole number ("invalid u32", "invalid i64", …).
fn is_about_integers(message: &str) -> bool {
    message.strip_prefix("invalid ").is_some_and(|ty| {
        ty.strip_prefix(['u', 'i'])
            .is_some_and(|bits| bits == "size" || bits.parse::<u8>().is_ok())
    })
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

/// The bracket that a flow collection the reader gave up on was opened with: the last one left
/// open on the line of `at` (before it) or on one of the few lines above. The reader only notices
/// a missing `}` or `]` where the next thing starts, often the line after.
fn unclosed(text: &str, at: Position, open: char, close: char) -> Option<Position> {
    const LOOK_BACK: usize = 20;
    let last = usize::try_from(at.line).ok()?;
    let lines: Vec<&str> = text.lines().take(last).collect();
    for (i, line) in lines.iter().enumerate().rev().take(LOOK_BACK) {
        let limit = if i + 1 == last {
            usize::try_from(at.column.saturating_sub(1)).unwrap_or(usize::MAX)
        } else {
            usize::MAX
        };
        let mut open_at = Vec::new();
        let mut quote = None;
        let mut before = ' ';
        for (column, c) in line.chars().enumerate().take(limit) {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '#' && before.is_whitespace() => break,
                None if matches!(c, '\'' | '"') && " :,[{-".contains(before) => quote = Some(c),
                None if c == open => open_at.push(column),
                None if c == close => {
                    open_at.pop();
                }
                None => {}
            }
            before = c;
        }
        if let Some(&column) = open_at.last() {
            return Some(Position {
                line: u32::try_from(i + 1).ok()?,
                column: u32::try_from(column + 1).ok()?,
            });
        }
    }
    None
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
    if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
        return (
            format!("the key `{key}` is given twice in this mapping"),
            "keep one of them".to_owned(),
        );
    }
    let empty = !has_content(text);
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
    } else if has("flow mapping") || has("unclosed bracket '{'") {
        (
            "this `{` is not closed, or its entries are not separated by commas",
            "close it with `}` and separate its entries with commas; quote a text that contains `,`, `{`, `}` or `: `",
        )
    } else if has("flow sequence") || has("unclosed bracket '['") {
        (
            "this `[` is not closed, or its items are not separated by commas",
            "close it with `]` and separate its items with commas; quote a text that contains `,`, `[` or `]`",
        )
    } else if has("mapping values are not allowed") {
        (
            "a `: ` stands where a value cannot start",
            "quote a text that contains `: `, e.g. `title: \"Step: review\"`",
        )
    } else if has("trailing content after") {
        (
            "there is more on the line after a quoted text ends",
            "quote the whole value, or remove what follows the closing quote",
        )
    } else if has("misplaced bracket") {
        (
            "a `]` or `}` closes nothing",
            "remove it, or add the `[` or `{` it is meant to close",
        )
    } else if has("simple key") {
        (
            "a key is not followed by `:`",
            "write `key: value`; a text that goes on over several lines is indented further than its key, or quoted",
        )
    } else if has("block scalar") {
        (
            "a block text (`|` or `>`) is not written right",
            "after `|` or `>` write at most `-`, `+` or a digit, then the text on the next lines, indented further than its key",
        )
    } else if has("comments must be separated") || has("comment intercepting") {
        (
            "a `#` here starts a comment inside a value",
            "put a space before a comment's `#`, and quote a text that contains ` #`",
        )
    } else if has("only valid inside a block") || has("block sequence entries are not allowed") {
        (
            "a `- ` item stands where a list cannot start",
            "start a list on the line after its key, indented further; inside `[…]` separate items with commas",
        )
    } else if has("'-' must be followed") {
        (
            "a `-` item marker is not followed by a space",
            "write `- item`",
        )
    } else if has("indentation") || has("indented") {
        (
            "this line is not indented as it should be",
            "indent it like the lines beside it, and further than the key it belongs to",
        )
    } else if has("recursion limit") {
        (
            "the file nests too deeply",
            "a definition needs only a few levels of nesting",
        )
    } else if has("mismatched bracket") {
        (
            "a bracket is closed by one of the other kind",
            "close a `[` with `]` and a `{` with `}`",
        )
    } else if has("cannot start any token") || has("unexpected character") {
        (
            "a value starts with a character YAML reserves",
            "quote the value, e.g. `title: \"@team\"`",
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
    } else if is_about_integers(message) {
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
    let has = |name: &str| expected.contains(&name);
    let what = match what {
        "key" if has("steps") && has("triggers") => "top-level key",
        "key" if has("approval") && has("end") => "step key",
        "value" if has("long_text") => "field type",
        other => other,
    };
    let message = format!("unknown {what} `{wrong}`");
    if expected.is_empty() {
        let hint = "check the spelling against workflows/schema.json (editors that read the schema autocomplete keys)";
        return Some((message, hint.to_owned()));
    }
    let in_step = what == "step key";
    let kinds = || super::model::StepKind::KEYS.join(", ");
    let suggestion = super::validate::closest(wrong, expected.iter().copied()).or_else(|| {
        (what == "field type")
            .then(|| field_type_for(wrong))
            .flatten()
    });
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

/// The field type a person most likely meant by a name other form languages use.
fn field_type_for(name: &str) -> Option<&'static str> {
    let ty = match name.to_ascii_lowercase().as_str() {
        "string" | "str" | "textfield" | "line" => "text",
        "textarea" | "paragraph" | "markdown" => "long_text",
        "int" | "integer" | "float" | "double" | "decimal" | "numeric" => "number",
        "bool" | "checkbox" | "yes_no" | "toggle" => "boolean",
        "select" | "enum" | "dropdown" | "radio" | "option" => "choice",
        "multiselect" | "multi_select" | "checkboxes" | "tags" => "multi_choice",
        "day" | "calendar" => "date",
        "timestamp" | "date_time" | "time" | "moment" => "datetime",
        "user" | "people" | "email" | "member" => "person",
        "url" | "uri" | "href" => "link",
        "list" | "array" | "table" | "repeat" | "object" => "group",
        _ => return None,
    };
    Some(ty)
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
        inputs: input_names(text),
        hash: content_hash(text),
        source: text.to_owned(),
        expressions: checked.expressions,
        definition,
    })
}

#[cfg(test)]
mod tests {
    use super::super::validate::tests::{dedent, expect, hint};
    use super::*;

    #[test]
    fn syntax_errors_are_said_for_a_person_where_the_mistake_is() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: a
                end: {outcome: ok}
            \tnext: b
            ",
            &[("6:1", "a tab is used to indent")],
        );
        expect(
            "
            id: t
            title: T
            steps:
              - id: a
                end: {outcome: ok
              - id: b
            ",
            &[("5:10", "this `{` is not closed")],
        );
        expect(
            "
            id: t
            title: T
            steps:
              - id: a
                form: {fields: [{id: x, type: text}, {id: y type: text}]}
            ",
            &[(
                "5:42",
                "this `{` is not closed, or its entries are not separated",
            )],
        );
        expect(
            "
            id: t
            title: T
            steps:
              - id: a
               next: b
            ",
            &[("5:4", "this line is not indented like the list around it")],
        );
        expect(
            "
            id: t
            title: 'T
            steps: []
            ",
            &[("2:8", "a quoted text is not closed")],
        );
    }

    #[test]
    fn values_of_the_wrong_shape_are_said_for_a_person() {
        let cases = [
            ("title: T\nsteps: review", "3:8", "expected a list here"),
            ("title: [T]\nsteps: []", "2:8", "expected a text here"),
            (
                "title: T\nroles: [a]\nsteps: []",
                "3:8",
                "expected keys and values here",
            ),
            (
                "title: T\ntitle: U\nsteps: []",
                "3:1",
                "the key `title` is given twice",
            ),
            (
                "title: T\nsteps: []\n---\nid: u",
                "5:1",
                "more than one YAML document",
            ),
        ];
        for (yaml, at, message) in cases {
            expect(&format!("id: t\n{yaml}\n"), &[(at, message)]);
        }
        expect(
            "- id: t\n",
            &[("1:1", "the file is not a mapping of keys to values")],
        );
        let step = |body: &str| format!("id: t\ntitle: T\nsteps:\n  - id: a\n    {body}\n");
        expect(
            &step("form: {fields: [{id: x, type: text, required: maybe}]}"),
            &[("5:51", "expected true or false here")],
        );
        expect(
            &step("approval: {approvers: [{role: r, count: some}]}"),
            &[("5:45", "expected a number of approvals or `all`")],
        );
        expect(
            &step("approval: {approvers: [{role: r}], rejections: -1}"),
            &[("5:52", "expected a whole number here")],
        );
        expect(
            &step("notify: {to: [{role: requester}]}"),
            &[("5:14", "the key `subject` is missing")],
        );
    }

    #[test]
    fn reader_messages_are_recognised_by_their_words() {
        assert!(is_about_tabs("while scanning a plain scalar, found a tab"));
        assert!(is_about_tabs("tab cannot be used as indentation"));
        assert!(is_about_tabs(
            "tabs disallowed within this context (block indentation)"
        ));
        assert!(!is_about_tabs(
            "data did not match any variant of untagged enum Count"
        ));
        assert!(is_about_integers("invalid u32"));
        assert!(is_about_integers("invalid isize"));
        assert!(!is_about_integers("invalid unicode escape"));
        assert!(!is_about_integers("invalid boolean"));
    }

    #[test]
    fn a_bad_duration_is_said_with_the_duration_meant() {
        let yaml = "id: t\ntitle: T\nsteps:\n  - id: a\n    wait: {for: 3 days}\n";
        expect(
            yaml,
            &[("5:17", r#"the duration "3 days" has no known unit"#)],
        );
        assert!(hint(yaml).starts_with("did you mean `3d`? write a whole number and a unit"));
    }

    #[test]
    fn an_unknown_field_type_is_answered_with_the_type_meant() {
        let field = |ty: &str| {
            format!(
                "id: t\ntitle: T\nsteps:\n  - id: a\n    form: {{fields: [{{id: x, type: {ty}}}]}}\n"
            )
        };
        expect(&field("string"), &[("5:35", "unknown field type `string`")]);
        assert_eq!(hint(&field("string")), "did you mean `text`?");
        assert_eq!(hint(&field("integer")), "did you mean `number`?");
        assert!(hint(&field("hologram")).starts_with("write one of: text, long_text, number"));
    }

    #[test]
    fn a_file_without_a_definition_is_at_fault_as_a_whole() {
        for text in ["", "\n  \n", "# just a comment\n", "\u{feff}"] {
            let found = check_text("empty.yaml", text);
            assert_eq!(found.len(), 1, "{found:#?}");
            assert_eq!(found[0].at, Position::default());
            assert_eq!(found[0].message, "the file holds no definition");
        }
    }

    #[test]
    fn check_text_gives_every_problem_in_file_order() {
        let text = dedent(
            "
            id: Bad_Id
            title: T
            steps:
              - id: ask
                form: {fields: [{id: x, type: choice}]}
                next: nowhere
              - id: done
                end: {outcome: ok}
            ",
        );
        let found: Vec<String> = check_text("t.yaml", &text)
            .iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect();
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].starts_with("1:5: workflow id"), "{found:#?}");
        assert!(found[1].starts_with("5:35: field \"x\""), "{found:#?}");
        assert!(
            found[2].starts_with("6:11: step \"ask\" goes"),
            "{found:#?}"
        );
        assert!(
            found[3].starts_with("7:9: step \"done\" can never"),
            "{found:#?}"
        );
        assert!(check_text("t.yaml", "id: [").len() == 1);
    }
}

#[cfg(test)]
mod input_tests {
    use super::input_names;

    #[test]
    fn the_input_a_definition_reads_is_found_in_its_expressions_and_templates() {
        let names = input_names(
            "when: input.risk == 'high' && input [ \"change-id\" ] != ''\n\
             subject: '{{ input.source.data.title }}'\n\
             when: data.input.other || myinput.x || input_x.y\n",
        );
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(names, ["change-id", "risk", "source"]);
    }
}
