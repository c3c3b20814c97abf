//! The corpus of broken definitions: `tests/definitions/broken/*.yaml` at the repository root.
//!
//! Each file has one main mistake and starts with comment lines
//! `# expect: LINE:COLUMN: part of the message`, one per problem `signoff validate` must report.
//! Every expected problem must be reported at that position, and nothing else may be.

use signoff_core::workflow::{Problem, check_text, load};

use super::yaml_files;

/// Where the corpus lives, from the repository root.
pub const CORPUS: &str = "tests/definitions/broken";

/// One `# expect:` line.
#[derive(Debug)]
struct Expected {
    at: String,
    part: String,
}

impl Expected {
    fn matches(&self, problem: &Problem) -> bool {
        problem.at.to_string() == self.at && problem.message.contains(&self.part)
    }
}

/// The `# expect:` lines of the comment block a file starts with.
fn expectations(name: &str, text: &str) -> Vec<Expected> {
    text.lines()
        .take_while(|line| line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("# expect:"))
        .map(|rest| {
            let rest = rest.trim();
            let mut parts = rest.splitn(3, ':');
            let (Some(line), Some(column), Some(part)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("{name}: `# expect: {rest}` is not `LINE:COLUMN: message`");
            };
            Expected {
                at: format!("{}:{}", line.trim(), column.trim()),
                part: part.trim().to_owned(),
            }
        })
        .collect()
}

/// What is wrong with one corpus file's result, if anything.
fn verdict(name: &str, text: &str) -> Option<String> {
    let expected = expectations(name, text);
    if expected.is_empty() {
        return Some("has no `# expect: LINE:COLUMN: message` line".to_owned());
    }
    let found = check_text(name, text);
    let mut wrong = Vec::new();
    for e in &expected {
        if !found.iter().any(|p| e.matches(p)) {
            wrong.push(format!("missing {}: …{}…", e.at, e.part));
        }
    }
    for p in &found {
        if !expected.iter().any(|e| e.matches(p)) {
            wrong.push(format!("unexpected {}: {}", p.at, p.message));
        }
        if p.file != name {
            wrong.push(format!("{}: names file {:?}", p.at, p.file));
        }
        if p.hint.as_deref().is_none_or(|h| h.trim().is_empty()) {
            wrong.push(format!("{}: {} has no hint", p.at, p.message));
        }
    }
    if !found.is_sorted_by_key(|p| p.at) {
        wrong.push("problems are not sorted by position".to_owned());
    }
    if load(name, text).is_ok() {
        wrong.push("`load` accepts it".to_owned());
    }
    if wrong.is_empty() {
        return None;
    }
    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
    Some(format!(
        "{}\n  it reports:\n{}",
        wrong.join("\n"),
        shown.join("\n")
    ))
}

#[test]
fn every_broken_definition_reports_its_expected_problems_where_they_are() {
    let files = yaml_files(CORPUS);
    assert!(
        files.len() >= 16,
        "the corpus has {} files; it should cover every kind of mistake",
        files.len()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|(name, text)| verdict(name, text).map(|v| format!("{name}: {v}")))
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
