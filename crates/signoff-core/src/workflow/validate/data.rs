//! Expressions: each one compiles, names only known variables, and reads only form fields that
//! exist. Compiled expressions are kept, by source text, for the engine.

use std::sync::Arc;

use super::super::expr::{Expression, VARIABLES};
use super::super::located::Located;
use super::{Checker, closest, key, list};

/// Longest expression accepted, in characters. The CEL parser and the engine walk expressions
/// recursively; a bound keeps a hostile file from exhausting the stack.
const MAX_EXPRESSION_CHARS: usize = 4096;

/// Where an expression stands, which decides the variables it may name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Anywhere but an approver group's `when`.
    Instance,
    /// An approver group's `when`: `approver` is known too.
    Approver,
}

pub(super) fn check(c: &mut Checker<'_>) {
    let definition = c.definition;
    for step in &definition.steps {
        for case in step.branch.iter().flatten() {
            c.expression(&case.when, Scope::Instance);
        }
        if let Some(approval) = &step.approval {
            for group in &approval.approvers {
                if let Some(when) = &group.when {
                    c.expression(when, Scope::Approver);
                }
            }
            if let Some(exclude) = &approval.separation.exclude {
                c.expression(exclude, Scope::Instance);
            }
        }
        if let Some(until) = step.wait.as_ref().and_then(|w| w.until.as_ref()) {
            c.expression(until, Scope::Instance);
        }
        if let Some(start) = &step.start_workflow {
            for input in start.input.values() {
                c.expression(input, Scope::Instance);
            }
        }
    }
}

impl Checker<'_> {
    fn expression(&mut self, source: &Located<String>, scope: Scope) {
        let text = source.as_str();
        if text.chars().count() > MAX_EXPRESSION_CHARS {
            self.hinted(
                source.at,
                format!("the expression is longer than {MAX_EXPRESSION_CHARS} characters"),
                "split the decision into several branch steps",
            );
            return;
        }
        let compiled = match self.out.expressions.get(text) {
            Some(e) => Arc::clone(e),
            None => match Expression::compile(text) {
                Ok(e) => {
                    let e = Arc::new(e);
                    self.out.expressions.insert(text.to_owned(), Arc::clone(&e));
                    e
                }
                Err(e) => {
                    self.hinted(
                        source.at,
                        format!("the expression {text:?} does not compile: {e}"),
                        "expressions are CEL, e.g. data.request.risk == \"high\"",
                    );
                    return;
                }
            },
        };
        for name in compiled.variables() {
            self.variable(source, &name, scope);
        }
        for (step, field) in compiled.data_paths() {
            self.data_path(source, "the expression", &step, field.as_deref());
        }
    }

    fn variable(&mut self, source: &Located<String>, name: &str, scope: Scope) {
        let known = "the variables are data, input, requester, submitted_by, instance, and \
                     approver in an approver group's `when`";
        if name == "approver" {
            if scope != Scope::Approver {
                self.hinted(
                    source.at,
                    format!(
                        "the expression {:?} names `approver`, which is only known in an approver group's `when`",
                        source.as_str()
                    ),
                    known,
                );
            }
        } else if !VARIABLES.contains(&name) {
            let hint = match closest(name, VARIABLES) {
                Some(v) => format!("did you mean `{v}`? {known}"),
                None => known.to_owned(),
            };
            self.hinted(
                source.at,
                format!(
                    "the expression {:?} names `{name}`, which is not a variable",
                    source.as_str()
                ),
                hint,
            );
        }
    }

    /// Checks that `data.<step>.<field>`, read by `what` (an expression, a template), names a
    /// form step and one of its fields.
    pub(super) fn data_path(
        &mut self,
        source: &Located<String>,
        what: &str,
        step: &str,
        field: Option<&str>,
    ) {
        let Some(target) = self.step_named(step) else {
            let hint = self.step_hint(step);
            self.hinted(
                source.at,
                format!("{what} reads data.{step}, but there is no step {step:?}"),
                hint,
            );
            return;
        };
        let Some(form) = &target.form else {
            let kind = target.kind().map_or("kindless", key);
            self.hinted(
                source.at,
                format!("{what} reads data.{step}, but step {step:?} is a {kind} step, not a form"),
                "only form steps have data: data.<form step>.<field>",
            );
            return;
        };
        let Some(field) = field else {
            return;
        };
        if form.all_fields().any(|f| f.id.as_str() == field) {
            return;
        }
        let ids: Vec<&str> = form.all_fields().map(|f| f.id.as_str()).collect();
        let hint = match closest(field, ids.iter().copied()) {
            Some(id) => format!("did you mean data.{step}.{id}?"),
            None => format!("the fields of {step:?} are: {}", list(ids.into_iter())),
        };
        self.hinted(
            source.at,
            format!("{what} reads data.{step}.{field}, but form {step:?} has no field {field:?}"),
            hint,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{expect, hint};

    /// A definition with one form and the expression `when` in a branch after it.
    fn branch_on(when: &str) -> String {
        format!(
            r#"
            id: t
            title: T
            steps:
              - id: ask
                form: {{fields: [{{id: risk, type: text}}, {{id: size, type: number}}]}}
                next: pick
              - id: pick
                branch:
                  - when: "{when}"
                    next: done
                next: done
              - id: done
                end: {{outcome: ok}}
            "#
        )
    }

    #[test]
    fn an_expression_that_does_not_compile_is_reported_where_it_stands() {
        expect(
            &branch_on("data.ask.risk =="),
            &[(
                "9:15",
                r#"the expression "data.ask.risk ==" does not compile"#,
            )],
        );
    }

    #[test]
    fn an_expression_names_only_known_variables() {
        expect(
            &branch_on("dta.ask.risk == 'high'"),
            &[("9:15", "names `dta`, which is not a variable")],
        );
        assert!(hint(&branch_on("dta.ask.risk == 'high'")).starts_with("did you mean `data`?"));
        // Names bound by a macro are not variables of the instance.
        expect(&branch_on("[1, 2].exists(x, x > data.ask.size)"), &[]);
        expect(
            &branch_on("input.env == requester && instance.id != 'x'"),
            &[],
        );
    }

    #[test]
    fn approver_is_known_only_in_an_approver_group() {
        expect(
            &branch_on("approver.id == requester"),
            &[(
                "9:15",
                "names `approver`, which is only known in an approver group's `when`",
            )],
        );
        expect(
            r#"
            id: t
            title: T
            steps:
              - id: gate
                approval:
                  approvers: [{role: requester, when: "approver.team == 'ops'"}]
                  separation: {exclude: "[approver.id]"}
                next: done
                on_reject: done
              - id: done
                end: {outcome: ok}
            "#,
            &[(
                "7:29",
                r#"the expression "[approver.id]" names `approver`, which is only known"#,
            )],
        );
    }

    #[test]
    fn data_paths_name_form_steps_and_their_fields() {
        expect(
            &branch_on("data.ask.risky == 'x'"),
            &[(
                "9:15",
                r#"reads data.ask.risky, but form "ask" has no field "risky""#,
            )],
        );
        assert_eq!(
            hint(&branch_on("data.ask.risky == 'x'")),
            "did you mean data.ask.risk?"
        );
        expect(
            &branch_on("data.pick.x == 1"),
            &[(
                "9:15",
                r#"reads data.pick, but step "pick" is a branch step, not a form"#,
            )],
        );
        expect(
            &branch_on("has(data.nothing.x)"),
            &[(
                "9:15",
                r#"reads data.nothing, but there is no step "nothing""#,
            )],
        );
        expect(&branch_on("size(data.ask) > 0 && data.ask.size > 2"), &[]);
    }

    #[test]
    fn every_place_of_an_expression_is_checked() {
        expect(
            r#"
            id: t
            title: T
            steps:
              - id: gate
                approval:
                  approvers: [{role: requester, when: "nope1"}]
                  separation: {exclude: "nope2"}
                next: pause
                on_reject: done
              - id: pause
                wait: {until: "nope3"}
                next: spawn
              - id: spawn
                start_workflow: {workflow: other, input: {a: "nope4"}}
                next: done
              - id: done
                end: {outcome: ok}
            "#,
            &[
                ("6:43", "names `nope1`"),
                ("7:29", "names `nope2`"),
                ("11:19", "names `nope3`"),
                ("14:50", "names `nope4`"),
            ],
        );
    }

    #[test]
    fn hostile_expressions_are_refused_without_harm() {
        let deep = format!("{}1{}", "(".repeat(2_000), ")".repeat(2_000));
        let found = super::super::tests::found(&branch_on(&deep));
        assert_eq!(found.len(), 1, "{found:#?}");
        let long = format!("1{}", " + 1".repeat(1_100));
        expect(
            &branch_on(&long),
            &[("9:15", "the expression is longer than 4096 characters")],
        );
        let chain = format!("1{} == 2", "+1".repeat(2_000));
        expect(&branch_on(&chain), &[]);
        let calls = format!("{}1{}", "size(".repeat(800), ")".repeat(800));
        assert_eq!(super::super::tests::found(&branch_on(&calls)).len(), 1);
    }
}
