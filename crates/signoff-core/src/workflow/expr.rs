//! Expressions in definitions: CEL, through the `cel` crate.
//!
//! Every expression sees the same variables: `data` (form values by step id, then field id),
//! `input` (what the instance was started with), `requester` (a person id), `submitted_by` (who
//! submitted each form, by step id), `instance` (`id`, `workflow`), and, in an approver
//! predicate, `approver` (`id`, `roles`, `team`).

use std::collections::{BTreeSet, HashMap};

use cel::common::ast::{EntryExpr, Expr};
use std::sync::{Arc, LazyLock, OnceLock};

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, ParseErrors, Program};
use serde_json::Value;

/// The variables an expression may name.
pub const VARIABLES: [&str; 6] = [
    "data",
    "input",
    "requester",
    "submitted_by",
    "instance",
    "approver",
];

/// A compiled expression with its source.
#[derive(Debug)]
pub struct Expression {
    source: String,
    program: Program,
}

impl Expression {
    /// Compiles `source`.
    ///
    /// # Errors
    /// What the parser found first and where, on one line, e.g. "syntax error at character 19:
    /// token recognition error at: '= '".
    pub fn compile(source: &str) -> Result<Self, String> {
        // The CEL parser is generated code; a panic on odd input must not take the caller down.
        let parsed = std::panic::catch_unwind(|| Program::compile(source))
            .map_err(|_| "the CEL parser failed on it".to_owned())?;
        let program = parsed.map_err(|errors| describe(source, &errors))?;
        Ok(Self {
            source: source.to_owned(),
            program,
        })
    }

    /// The source text.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Top-level variables the expression reads.
    #[must_use]
    pub fn variables(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut bound = Vec::new();
        walk(&self.program.expression().expr, &mut bound, &mut |path| {
            if let Some(first) = path.first() {
                out.insert(first.clone());
            }
        });
        out
    }

    /// Every `data.<step>.<field>` path the expression reads, as `(step, Some(field))`, or
    /// `(step, None)` when only `data.<step>` is read.
    #[must_use]
    pub fn data_paths(&self) -> BTreeSet<(String, Option<String>)> {
        let mut out = BTreeSet::new();
        let mut bound = Vec::new();
        walk(&self.program.expression().expr, &mut bound, &mut |path| {
            if path.first().map(String::as_str) == Some("data")
                && let Some(step) = path.get(1)
            {
                out.insert((step.clone(), path.get(2).cloned()));
            }
        });
        out
    }

    /// Evaluates the expression with `vars` (a JSON object of variable name to value).
    ///
    /// # Errors
    /// The interpreter's message, e.g. a missing key or a type mismatch.
    pub fn eval(&self, vars: &Value) -> Result<Value, String> {
        self.eval_in(&Variables::new(vars.clone())?, None)
    }

    /// Evaluates the expression with variables converted once ([`Variables::new`]) and, when
    /// given, an approver on top.
    ///
    /// # Errors
    /// As [`Expression::eval`].
    pub fn eval_in(&self, vars: &Variables, approver: Option<&Approver>) -> Result<Value, String> {
        self.execute(vars, approver)?
            .json()
            .map_err(|e| format!("{e} (in {:?})", self.source))
    }

    /// [`Expression::eval_in`] as a condition.
    ///
    /// # Errors
    /// As [`Expression::eval_bool`].
    pub fn eval_bool_in(
        &self,
        vars: &Variables,
        approver: Option<&Approver>,
    ) -> Result<bool, String> {
        match self.execute(vars, approver)? {
            cel::Value::Bool(b) => Ok(b),
            other => Err(format!(
                "{:?} gives {}, not true or false",
                self.source,
                other
                    .json()
                    .map_or_else(|_| format!("{other:?}"), |v| v.to_string())
            )),
        }
    }

    /// Evaluates the expression as a condition.
    ///
    /// # Errors
    /// As [`Expression::eval`], or when the result is not a boolean.
    pub fn eval_bool(&self, vars: &Value) -> Result<bool, String> {
        self.eval_bool_in(&Variables::new(vars.clone())?, None)
    }

    fn execute(&self, vars: &Variables, approver: Option<&Approver>) -> Result<cel::Value, String> {
        let mut context = Context::with_env(STDLIB.clone());
        context.set_variable_resolver(vars);
        match approver {
            None => self.program.execute(&context),
            Some(approver) => {
                let mut scope = context.new_inner_scope();
                scope.add_variable_from_value("approver", approver.0.clone());
                self.program.execute(&scope)
            }
        }
        .map_err(|e| format!("{} (in {:?})", e, self.source))
    }
}

/// A person as an approver predicate sees them: `approver.id`, `approver.roles`,
/// `approver.team` (null when they have none). Built as CEL values directly: a gate checks its
/// predicate for every candidate, and going through JSON cost more than the check.
#[derive(Clone, Debug)]
pub struct Approver(cel::Value);

impl Approver {
    /// The person `id`, holding `roles`, of `team`.
    #[must_use]
    pub fn new<'a>(id: &str, roles: impl IntoIterator<Item = &'a str>, team: Option<&str>) -> Self {
        let text = |s: &str| cel::Value::String(Arc::new(s.to_owned()));
        let roles: Vec<cel::Value> = roles.into_iter().map(text).collect();
        let fields = HashMap::from([
            ("id", text(id)),
            ("roles", cel::Value::List(Arc::new(roles))),
            ("team", team.map_or(cel::Value::Null, text)),
        ]);
        Self(cel::Value::from(fields))
    }
}

/// The variables of an instance for expressions to read: kept as JSON, each converted to CEL
/// the first time an expression reads it, then lent to every later one. Converting the
/// instance's data is dearer than evaluating a condition on it, and most definitions read only
/// `data`. `Send` and `Sync`, so a runtime may keep it between commands (see
/// [`crate::engine::Memo`]).
pub struct Variables(Vec<Variable>);

/// One variable: its name, its value, and that value as CEL once an expression has read it
/// (`None` if CEL cannot hold it).
type Variable = (String, Value, OnceLock<Option<Box<dyn Val>>>);

impl Variables {
    /// The variables of `vars`, a JSON object of variable name to value.
    ///
    /// # Errors
    /// When `vars` is not an object.
    pub fn new(vars: Value) -> Result<Self, String> {
        let Value::Object(map) = vars else {
            return Err(format!("variables must be an object, not {vars}"));
        };
        Ok(Self(
            map.into_iter()
                .map(|(name, value)| (name, value, OnceLock::new()))
                .collect(),
        ))
    }

    /// A variable's value as given.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, ..)| n == name).map(|(_, v, _)| v)
    }
}

impl VariableResolver for Variables {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        let (_, json, converted) = self.0.iter().find(|(n, ..)| n == name)?;
        // A value CEL cannot hold reads as an undeclared variable, which the expression
        // reports; every JSON value converts in practice.
        let converted = converted.get_or_init(|| {
            let value = cel::to_value(json).ok()?;
            Box::<dyn Val>::try_from(value).ok()
        });
        converted.as_deref().map(CowVal::Borrowed)
    }
}

impl std::fmt::Debug for Variables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, ..)| name))
            .finish()
    }
}

/// CEL's standard functions, declared once: building them is far dearer than evaluating a
/// condition, and every evaluation needs them.
static STDLIB: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// The first of the parser's errors, for a person: what and where, without the parser's own
/// picture of the source (the caller shows the source).
fn describe(source: &str, errors: &ParseErrors) -> String {
    let Some(first) = errors.errors.first() else {
        return "the CEL parser refused it without saying why".to_owned();
    };
    let what: Vec<&str> = first.msg.split_whitespace().collect();
    let what = what.join(" ");
    let (what, syntax) = match what.strip_prefix("Syntax error: ") {
        Some(rest) => (rest.to_owned(), true),
        None => (what, false),
    };
    let (line, column) = first.pos;
    let place = match (usize::try_from(line), usize::try_from(column)) {
        (Ok(1), Ok(c)) if c > 0 && !source.contains('\n') => format!(" at character {c}"),
        (Ok(l), Ok(c)) if l > 0 && c > 0 => format!(" at line {l}, character {c}"),
        _ => String::new(),
    };
    let kind = if syntax { "syntax error" } else { "error" };
    format!("{kind}{place}: {what}")
}

/// Walks the expression and reports each chain of field selections from an unbound identifier,
/// e.g. `data.request.risk` as `["data", "request", "risk"]`. Identifiers bound by a macro
/// (`x` in `items.exists(x, …)`) are not reported.
fn walk(expr: &Expr, bound: &mut Vec<String>, report: &mut dyn FnMut(&[String])) {
    if let Some(path) = select_path(expr) {
        if !bound.iter().any(|b| Some(b) == path.first()) {
            report(&path);
        }
        return;
    }
    match expr {
        Expr::Select(select) => walk(&select.operand.expr, bound, report),
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                walk(&target.expr, bound, report);
            }
            for arg in &call.args {
                walk(&arg.expr, bound, report);
            }
        }
        Expr::List(list) => {
            for e in &list.elements {
                walk(&e.expr, bound, report);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(e) = &entry.expr {
                    walk(&e.key.expr, bound, report);
                    walk(&e.value.expr, bound, report);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    walk(&f.value.expr, bound, report);
                }
            }
        }
        Expr::Comprehension(c) => {
            walk(&c.iter_range.expr, bound, report);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            for e in [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                walk(&e.expr, bound, report);
            }
            bound.truncate(depth);
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// `a.b.c` as `["a", "b", "c"]`, when `expr` is such a plain chain.
fn select_path(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Ident(name) => Some(vec![name.clone()]),
        Expr::Select(select) if !select.test => {
            let mut path = select_path(&select.operand.expr)?;
            path.push(select.field.clone());
            Some(path)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_read_form_data() {
        let e = Expression::compile(
            r#"data.request.risk == "high" && size(data.request.services) > 1"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let vars = json!({"data": {"request": {"risk": "high", "services": ["a", "b"]}}});
        assert_eq!(e.eval_bool(&vars), Ok(true));
        let vars = json!({"data": {"request": {"risk": "low", "services": []}}});
        assert_eq!(e.eval_bool(&vars), Ok(false));
    }

    #[test]
    fn an_approver_predicate_reads_the_person_beside_the_instance() {
        let vars = Variables::new(
            json!({"data": {"request": {"team": "payments"}}, "requester": "carol"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let check = |source: &str, approver: &Approver| {
            Expression::compile(source)
                .unwrap_or_else(|e| panic!("{e}"))
                .eval_bool_in(&vars, Some(approver))
        };
        let bob = Approver::new("bob", ["engineer", "team-lead"], Some("payments"));
        let nina = Approver::new("nina", ["change-board"], None);
        let same_team = "approver.team == data.request.team";
        assert_eq!(check(same_team, &bob), Ok(true));
        assert_eq!(check(same_team, &nina), Ok(false));
        assert_eq!(check(r#""team-lead" in approver.roles"#, &bob), Ok(true));
        assert_eq!(check(r#""team-lead" in approver.roles"#, &nina), Ok(false));
        assert_eq!(check("approver.team == null", &nina), Ok(true));
        assert_eq!(check("approver.id != requester", &bob), Ok(true));
        assert_eq!(check("size(approver.roles) == 2", &bob), Ok(true));
        let err = check("approver.roles", &bob).unwrap_err();
        assert!(
            err.contains(r#"gives ["engineer","team-lead"], not true"#),
            "{err}"
        );
    }

    #[test]
    fn paths_and_variables_are_found_but_not_macro_bindings() {
        let e = Expression::compile(
            r#"data.evaluate.items.exists(i, i.status == "to_be_fixed") || requester == approver.id"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            e.variables().into_iter().collect::<Vec<_>>(),
            ["approver", "data", "requester"]
        );
        assert_eq!(
            e.data_paths().into_iter().collect::<Vec<_>>(),
            [("evaluate".to_owned(), Some("items".to_owned()))]
        );
    }

    #[test]
    fn syntax_errors_are_one_readable_line_that_says_where() {
        let err = Expression::compile("data.request.risk ==")
            .err()
            .unwrap_or_default();
        assert!(!err.is_empty() && !err.contains('\n'), "{err:?}");
        let err = Expression::compile(r#"data.request.risk = "high""#)
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "syntax error at character 19: token recognition error at: '= '"
        );
        let err = Expression::compile("true &&\n  )")
            .err()
            .unwrap_or_default();
        assert!(
            err.starts_with("syntax error at line 2, character 3: "),
            "{err:?}"
        );
    }

    #[test]
    fn a_non_boolean_condition_is_an_error() {
        let e = Expression::compile("1 + 1").unwrap_or_else(|e| panic!("{e}"));
        assert!(e.eval_bool(&json!({})).is_err());
    }
}
