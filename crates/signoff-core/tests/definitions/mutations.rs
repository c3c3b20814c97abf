//! The checker never panics: mutations of the shipped workflows and of the corpus (a line
//! deleted, duplicated, swapped or re-indented, a token replaced by random text, a value moved
//! to another key, text inserted, the file truncated), arbitrary text, and a few hostile files
//! all get an answer.

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use signoff_core::workflow::check_text;

use super::corpus::CORPUS;
use super::yaml_files;

/// The shipped workflows and the corpus, read once.
fn sources() -> &'static [(String, String)] {
    static SOURCES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    SOURCES.get_or_init(|| {
        let mut all = yaml_files("workflows");
        all.extend(yaml_files(CORPUS));
        all
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    /// Adds (or, when negative, removes) leading spaces.
    Indent(Index, i8),
    /// Replaces one whitespace-separated token of a line.
    ReplaceToken(Index, Index, String),
    /// Gives a `key: value` line the value of another (a step id where a role was, a duration
    /// where a step was): valid YAML, which the checks after parsing must answer.
    ReuseValue(Index, Index),
    /// Inserts text at a character of the file.
    Insert(Index, String),
    /// Keeps the file up to a character.
    Truncate(Index),
}

/// Text that means something to YAML, CEL or Jinja, and some that means nothing.
fn noise() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9_.{}\\[\\]:,#&*!|>'\"%@`~?= -]{0,12}",
        2 => prop::sample::select(vec![
            "", ":", "- ", "{", "}", "[", "]", "&a", "*a", "!!str", "|", ">-", "---", "...",
            "~", "null", "\"", "'", "{{", "}}", "{%", "%}", "\t", "\r", "\u{feff}", "é",
            "data.", "data.request.", "next: nowhere", "end: {outcome: x}", "0", "-1",
            "99999999999999999999", "3 days", "<<: *a",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => (any::<Index>(), -6i8..=6).prop_map(|(line, by)| Mutation::Indent(line, by)),
        2 => (any::<Index>(), any::<Index>(), noise())
            .prop_map(|(line, token, text)| Mutation::ReplaceToken(line, token, text)),
        1 => (any::<Index>(), noise()).prop_map(|(at, text)| Mutation::Insert(at, text)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        4 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::ReuseValue(a, b)),
    ]
}

/// Where the value of a `key: value` line starts, when it holds a plain one-line value.
fn value_at(line: &str) -> Option<usize> {
    let start = line.find(": ")? + 2;
    let value = line[start..].trim();
    (!value.is_empty() && !value.starts_with(['|', '>', '#'])).then_some(start)
}

/// The byte ranges of the whitespace-separated tokens of a line.
fn tokens(line: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices().chain([(line.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let n = lines.len();
    match mutation {
        Mutation::DeleteLine(i) => {
            lines.remove(i.index(n));
        }
        Mutation::DuplicateLine(i) => {
            let i = i.index(n);
            let line = lines[i].clone();
            lines.insert(i, line);
        }
        Mutation::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
        Mutation::Indent(i, by) => {
            let line = &mut lines[i.index(n)];
            let count = usize::from(by.unsigned_abs());
            if *by > 0 {
                line.insert_str(0, &" ".repeat(count));
            } else {
                let spaces = line.len() - line.trim_start_matches(' ').len();
                line.drain(..spaces.min(count));
            }
        }
        Mutation::ReplaceToken(i, t, new) => {
            let line = &mut lines[i.index(n)];
            let tokens = tokens(line);
            if !tokens.is_empty() {
                line.replace_range(tokens[t.index(tokens.len())].clone(), new);
            }
        }
        Mutation::ReuseValue(to, from) => {
            let valued: Vec<usize> = (0..n).filter(|&i| value_at(&lines[i]).is_some()).collect();
            if !valued.is_empty() {
                let to = valued[to.index(valued.len())];
                let from = valued[from.index(valued.len())];
                if let (Some(start), Some(value_from)) =
                    (value_at(&lines[to]), value_at(&lines[from]))
                {
                    let value = lines[from][value_from..].to_owned();
                    lines[to].replace_range(start.., &value);
                }
            }
        }
        Mutation::Insert(..) | Mutation::Truncate(_) => {}
    }
    let mut out = lines.join("\n");
    out.push('\n');
    let chars = out.chars().count();
    let byte_at = |i: &Index| {
        out.char_indices()
            .nth(i.index(chars + 1))
            .map_or(out.len(), |(b, _)| b)
    };
    match mutation {
        Mutation::Insert(at, new) => {
            let b = byte_at(at);
            out.insert_str(b, new);
        }
        Mutation::Truncate(at) => {
            let b = byte_at(at);
            out.truncate(b);
        }
        _ => {}
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn mutated_definitions_get_an_answer_not_a_panic(
        file in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let (name, text) = &sources()[file.index(sources().len())];
        let mut text = text.clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        let found = check_text(name, &text);
        prop_assert!(found.is_sorted_by_key(|p| p.at), "{found:#?}");
        for problem in found {
            prop_assert!(!problem.message.trim().is_empty(), "{problem:?}");
            prop_assert!(problem.hint.as_deref().is_some_and(|h| !h.trim().is_empty()), "{problem:?}");
        }
    }

    #[test]
    fn arbitrary_text_gets_an_answer_not_a_panic(text in "\\PC{0,200}|[ -~\\n\\t]{0,300}") {
        let _ = check_text("random.yaml", &text);
    }
}

#[test]
fn hostile_files_get_an_answer_not_a_panic() {
    let alias_bomb = {
        let mut text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n".to_owned();
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        text
    };
    let cases = [
        String::new(),
        "\u{feff}".to_owned(),
        "\0".to_owned(),
        "---\n...\n---\n".to_owned(),
        "[".repeat(100_000),
        "{a: ".repeat(50_000),
        format!("id: t\ntitle: T\nsteps:\n{}", "  - ".repeat(20_000)),
        "- ".repeat(100_000),
        alias_bomb,
        format!("id: {}\n", "x".repeat(2 * 1024 * 1024)),
        "id: t\ntitle: T\nsteps:\n\t- id: a\n".to_owned(),
        "id: !!binary aGk=\ntitle: !custom T\nsteps: []\n".to_owned(),
        "id: t\ntitle: T\nsteps:\n  - &s {id: a, end: {outcome: ok}}\n  - *s\n  - <<: *s\n"
            .to_owned(),
        "? [complex, key]\n: value\n".to_owned(),
    ];
    for text in &cases {
        let problems = check_text("hostile.yaml", text);
        assert!(
            !problems.is_empty(),
            "{:?}… has no problem",
            text.chars().take(40).collect::<String>()
        );
    }
}

#[test]
fn windows_line_ends_keep_lines_and_columns() {
    let text =
        "id: t\r\ntitle: T\r\nsteps:\r\n  - id: a\r\n    end: {outcome: ok}\r\n    next: b\r\n";
    let found: Vec<String> = check_text("crlf.yaml", text)
        .iter()
        .map(|p| format!("{}: {}", p.at, p.message))
        .collect();
    assert_eq!(
        found,
        [
            r#"6:11: step "a" goes (`next`) to "b", which is not a step of this workflow"#,
            r#"6:11: end step "a" has a `next`; an end is the last step"#,
        ]
    );
}
