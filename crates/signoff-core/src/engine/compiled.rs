//! Patterns and templates of definitions, compiled once per process and reused.
//!
//! Compiling a regular expression or a template costs far more than using it, and the same few
//! from the loaded definitions are used by every command. Memoising a pure function keeps the
//! core pure: the answer for a given pattern and text never depends on the cache.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use serde_json::Value;

/// At most this many distinct patterns or templates are kept (definitions hold a few dozen);
/// past it the cache starts afresh rather than grow.
const MAX_ENTRIES: usize = 4_096;

static PATTERNS: LazyLock<Mutex<HashMap<String, Option<Arc<regex::Regex>>>>> =
    LazyLock::new(Mutex::default);

static TEMPLATES: LazyLock<Mutex<minijinja::Environment<'static>>> =
    LazyLock::new(|| Mutex::new(minijinja::Environment::new()));

/// Whether `text` matches `pattern`; a pattern that does not compile matches nothing (the
/// validator refuses such definitions before they run).
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let compiled = {
        let mut cache = PATTERNS.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_ENTRIES && !cache.contains_key(pattern) {
            cache.clear();
        }
        cache
            .entry(pattern.to_owned())
            .or_insert_with(|| regex::Regex::new(pattern).ok().map(Arc::new))
            .clone()
    };
    compiled.is_some_and(|r| r.is_match(text))
}

/// Renders a message template with `vars`.
///
/// # Errors
/// Why the template does not compile or render (an attribute of something undefined, a filter
/// on the wrong type): the step that renders it stops, rather than send the template as written
/// or a part of it left out.
pub(crate) fn render(template: &str, vars: &Value) -> Result<String, String> {
    if !template.contains("{{") && !template.contains("{%") {
        return Ok(template.to_owned());
    }
    render_in(&TEMPLATES, template, vars)
}

/// Renders `template` in `env`, compiling it there the first time.
fn render_in(
    env: &Mutex<minijinja::Environment<'static>>,
    template: &str,
    vars: &Value,
) -> Result<String, String> {
    let mut env = env.lock().unwrap_or_else(PoisonError::into_inner);
    if env.get_template(template).is_err() {
        if env.templates().count() >= MAX_ENTRIES {
            env.clear_templates();
        }
        env.add_template_owned(template.to_owned(), template.to_owned())
            .map_err(|e| describe(&e))?;
    }
    env.get_template(template)
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(vars))))
        .map_err(|e| describe(&e))
}

/// Renders a template in which every variable it reads must be defined (an instance's title
/// before its form is filled in reads fields that are not there yet: that is an error here,
/// not a title with holes).
///
/// # Errors
/// As [`render`], and a variable that is not defined.
pub(crate) fn render_strict(template: &str, vars: &Value) -> Result<String, String> {
    static STRICT: LazyLock<Mutex<minijinja::Environment<'static>>> = LazyLock::new(|| {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        Mutex::new(env)
    });
    render_in(&STRICT, template, vars)
}

/// A template error on one line, without the template's name (which is its whole text).
fn describe(error: &minijinja::Error) -> String {
    let mut text = error.kind().to_string();
    if let Some(detail) = error.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = error.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_compiled_afresh_and_bad_ones_match_nothing() {
        for _ in 0..2 {
            assert!(matches("^[A-Z]+-[0-9]+$", "CHG-12"));
            assert!(!matches("^[A-Z]+-[0-9]+$", "chg-12"));
            assert!(!matches("(unclosed", "(unclosed"));
        }
    }

    #[test]
    fn templates_render_the_same_every_time_and_broken_ones_are_errors() {
        let vars = serde_json::json!({"data": {"request": {"service": "api"}}});
        for _ in 0..2 {
            assert_eq!(
                render("Deploy {{ data.request.service }}", &vars),
                Ok("Deploy api".to_owned())
            );
            assert_eq!(render("plain", &vars), Ok("plain".to_owned()));
            let broken = render("{{ broken", &vars).unwrap_err();
            assert!(broken.contains("syntax error"), "{broken}");
            let undefined = render("{{ data.nothing.here }}", &vars).unwrap_err();
            assert!(undefined.contains("undefined"), "{undefined}");
        }
    }
}
