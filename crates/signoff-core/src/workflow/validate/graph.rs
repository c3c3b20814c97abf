//! The shape of the workflow as a graph of steps: every step can be reached from the first one,
//! every reachable step can still reach an `end`, and every parallel branch reaches its join.
//!
//! Steps whose own transitions are already reported (a missing `next`, a target that does not
//! exist) are taken as if they could end, so one mistake is reported once, where it is.

use std::collections::{BTreeMap, HashSet};

use super::super::model::StepKind;
use super::{Checker, closest};

pub(super) fn check(c: &mut Checker<'_>) {
    let steps = &c.definition.steps;
    if steps.is_empty() {
        return;
    }
    let graph = Graph::new(c);
    let reachable = graph.forward(0);
    for (i, step) in steps.iter().enumerate() {
        // A second step with a used id cannot be named, so it is unreachable; that is reported.
        if !reachable.contains(&i) && c.index.get(step.id.as_str()) == Some(&i) {
            let first = steps.first().map_or("", |s| s.id.as_str());
            c.hinted(
                step.id.at,
                format!(
                    "step {:?} can never be reached from the first step {first:?}",
                    step.id.as_str()
                ),
                "make it the `next` (or a branch case, `on_reject`, …) of a step that is reached, or remove it",
            );
        }
    }
    let ends: Vec<usize> = (0..steps.len())
        .filter(|&i| steps.get(i).and_then(|s| s.kind()) == Some(StepKind::End))
        .collect();
    if ends.is_empty() {
        c.hinted(
            c.definition.id.at,
            "the workflow has no `end` step, so an instance can never finish",
            "add a step such as `- id: done` with `end: {outcome: approved}`",
        );
    } else {
        traps(c, &graph, &reachable, ends);
    }
    joins(c, &graph);
}

/// Steps as indices, with their transitions resolved.
struct Graph {
    next: Vec<Vec<usize>>,
    back: Vec<Vec<usize>>,
}

impl Graph {
    fn new(c: &Checker<'_>) -> Self {
        let n = c.definition.steps.len();
        let mut next = vec![Vec::new(); n];
        let mut back = vec![Vec::new(); n];
        for (i, step) in c.definition.steps.iter().enumerate() {
            let mut targets = step.successors();
            if let Some(parallel) = &step.parallel {
                targets.push(("join", &parallel.join));
            }
            for (_, target) in targets {
                if let Some(j) = resolve(c, target.as_str())
                    && let (Some(out), Some(into)) = (next.get_mut(i), back.get_mut(j))
                {
                    out.push(j);
                    into.push(i);
                }
            }
        }
        Self { next, back }
    }

    fn forward(&self, from: usize) -> HashSet<usize> {
        search(&self.next, [from])
    }

    fn backward(&self, from: impl IntoIterator<Item = usize>) -> HashSet<usize> {
        search(&self.back, from)
    }
}

/// The index of the step a transition names. A name that is no step but close to one (a typo,
/// already reported with that suggestion) is followed as if it were written right, so the steps
/// after it are not reported unreachable for the same mistake.
fn resolve(c: &Checker<'_>, target: &str) -> Option<usize> {
    if let Some(&j) = c.index.get(target) {
        return Some(j);
    }
    let ids = c.definition.steps.iter().map(|s| s.id.as_str());
    closest(target, ids).and_then(|id| c.index.get(id).copied())
}

/// Every node reachable from `from` along `edges` (`from` included).
fn search(edges: &[Vec<usize>], from: impl IntoIterator<Item = usize>) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut todo: Vec<usize> = from.into_iter().collect();
    while let Some(i) = todo.pop() {
        if seen.insert(i) {
            todo.extend(edges.get(i).into_iter().flatten().copied());
        }
    }
    seen
}

/// Reports the loops with no way out: among the reachable steps that cannot reach an end, the
/// groups of steps that lead only to each other (the steps before such a loop are not reported).
fn traps(c: &mut Checker<'_>, graph: &Graph, reachable: &HashSet<usize>, ends: Vec<usize>) {
    let can_end = graph.backward(ends.into_iter().chain(c.loose.iter().copied()));
    let stuck: HashSet<usize> = reachable.difference(&can_end).copied().collect();
    if stuck.is_empty() {
        return;
    }
    let component = components(graph, &stuck);
    // A component is a trap when no edge leaves it.
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut leaves = HashSet::new();
    for &i in &stuck {
        let Some(&ci) = component.get(i) else {
            continue;
        };
        members.entry(ci).or_default().push(i);
        for &j in graph.next.get(i).into_iter().flatten() {
            if component.get(j) != Some(&ci) {
                leaves.insert(ci);
            }
        }
    }
    let steps = &c.definition.steps;
    for (ci, mut group) in members {
        if leaves.contains(&ci) {
            continue;
        }
        group.sort_unstable();
        let names: Vec<String> = group
            .iter()
            .filter_map(|&i| steps.get(i))
            .map(|s| format!("{:?}", s.id.as_str()))
            .collect();
        let Some(first) = group.first().and_then(|&i| steps.get(i)) else {
            continue;
        };
        let message = if let [only] = names.as_slice() {
            format!("step {only} only leads back to itself: it can never reach an `end` step")
        } else {
            format!(
                "steps {} loop with no way out: none of them can reach an `end` step",
                names.join(", ")
            )
        };
        c.hinted(
            first.id.at,
            message,
            "give one of them a way towards an `end` step (a `next`, a branch case, `on_reject`, …)",
        );
    }
}

/// Strongly connected components of the subgraph `within` (closed under `next`), by Kosaraju's
/// algorithm with explicit stacks: the component number of each node (`usize::MAX` outside).
fn components(graph: &Graph, within: &HashSet<usize>) -> Vec<usize> {
    let n = graph.next.len();
    let mut order = Vec::with_capacity(within.len());
    let mut visited = vec![false; n];
    let mut sorted: Vec<usize> = within.iter().copied().collect();
    sorted.sort_unstable();
    for &root in &sorted {
        if visited.get(root).copied().unwrap_or(true) {
            continue;
        }
        // (node, index of the next edge to follow)
        let mut stack = vec![(root, 0usize)];
        if let Some(v) = visited.get_mut(root) {
            *v = true;
        }
        while let Some((node, edge)) = stack.pop() {
            let edges = graph.next.get(node).map_or(&[][..], Vec::as_slice);
            if let Some(&to) = edges.get(edge) {
                stack.push((node, edge + 1));
                if within.contains(&to) && visited.get(to) == Some(&false) {
                    if let Some(v) = visited.get_mut(to) {
                        *v = true;
                    }
                    stack.push((to, 0));
                }
            } else {
                order.push(node);
            }
        }
    }
    let mut component = vec![usize::MAX; n];
    let mut count = 0;
    for &root in order.iter().rev() {
        if component.get(root) != Some(&usize::MAX) {
            continue;
        }
        let mut todo = vec![root];
        while let Some(node) = todo.pop() {
            match component.get_mut(node) {
                Some(c) if *c == usize::MAX => *c = count,
                _ => continue,
            }
            for &from in graph.back.get(node).into_iter().flatten() {
                if within.contains(&from) && component.get(from) == Some(&usize::MAX) {
                    todo.push(from);
                }
            }
        }
        count += 1;
    }
    component
}

/// Every branch of a parallel must be able to reach the parallel's join.
fn joins(c: &mut Checker<'_>, graph: &Graph) {
    let steps = &c.definition.steps;
    let mut reaching: BTreeMap<usize, HashSet<usize>> = BTreeMap::new();
    for step in steps {
        let Some(parallel) = &step.parallel else {
            continue;
        };
        let Some(&join) = c.index.get(parallel.join.as_str()) else {
            continue;
        };
        let can_join = reaching.entry(join).or_insert_with(|| {
            graph.backward(std::iter::once(join).chain(c.loose.iter().copied()))
        });
        let lost: Vec<_> = parallel
            .branches
            .iter()
            .filter(|b| {
                c.index
                    .get(b.as_str())
                    .is_some_and(|i| !can_join.contains(i))
            })
            .collect();
        for branch in lost {
            c.hinted(
                branch.at,
                format!(
                    "branch {:?} of parallel step {:?} never reaches its join {:?}",
                    branch.as_str(),
                    step.id.as_str(),
                    parallel.join.as_str()
                ),
                format!("end the branch with `next: {}`", parallel.join.as_str()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{expect, hint};

    #[test]
    fn a_step_nothing_leads_to_is_unreachable() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: ask
                form: {fields: [{id: x, type: text}]}
                next: done
              - id: forgotten
                notify: {to: [{role: requester}], subject: hi}
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[(
                "7:9",
                r#"step "forgotten" can never be reached from the first step "ask""#,
            )],
        );
    }

    #[test]
    fn a_loop_with_no_way_out_is_reported_once() {
        expect(
            r#"
            id: t
            title: T
            steps:
              - id: ask
                form: {fields: [{id: x, type: text}]}
                next: check
              - id: check
                branch:
                  - when: "true"
                    next: review
                next: done
              - id: review
                form: {fields: [{id: y, type: text}]}
                next: redo
              - id: redo
                form: {fields: [{id: z, type: text}]}
                next: review
              - id: done
                end: {outcome: ok}
            "#,
            &[(
                "12:9",
                r#"steps "review", "redo" loop with no way out: none of them can reach an `end` step"#,
            )],
        );
    }

    #[test]
    fn a_loop_with_an_exit_is_fine_and_a_self_loop_is_not() {
        expect(
            r#"
            id: t
            title: T
            steps:
              - id: draft
                form: {fields: [{id: x, type: text}]}
                next: evaluate
              - id: evaluate
                branch:
                  - when: data.draft.x == "fix"
                    next: draft
                next: done
              - id: done
                end: {outcome: ok}
            "#,
            &[],
        );
        expect(
            "
            id: t
            title: T
            steps:
              - id: ask
                form: {fields: [{id: x, type: text}]}
                next: ask
              - id: done
                end: {outcome: ok}
            ",
            &[
                ("4:9", r#"step "ask" only leads back to itself"#),
                ("7:9", r#"step "done" can never be reached"#),
            ],
        );
    }

    #[test]
    fn a_workflow_needs_an_end() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: ask
                form: {fields: [{id: x, type: text}]}
                next: ask
            ",
            &[("1:5", "the workflow has no `end` step")],
        );
        assert!(
            hint(
                "
            id: t
            title: T
            steps:
              - id: ask
                form: {fields: [{id: x, type: text}]}
                next: ask
            "
            )
            .contains("end: {outcome: approved}")
        );
    }

    #[test]
    fn a_misspelt_transition_does_not_make_the_steps_after_it_unreachable() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: ask
                form: {fields: [{id: x, type: text}]}
                next: reveiw
              - id: review
                form: {fields: [{id: y, type: text}]}
                next: done
              - id: done
                end: {outcome: ok}
            ",
            &[("6:11", r#"step "ask" goes (`next`) to "reveiw""#)],
        );
    }

    #[test]
    fn a_broken_transition_is_not_reported_again_as_a_dead_end() {
        expect(
            "
            id: t
            title: T
            steps:
              - id: ask
                form: {fields: [{id: x, type: text}]}
                next: review
              - id: review
                form: {fields: [{id: y, type: text}]}
                next: nowhere
              - id: done
                end: {outcome: ok}
            ",
            &[
                ("9:11", r#"step "review" goes (`next`) to "nowhere""#),
                ("10:9", r#"step "done" can never be reached"#),
            ],
        );
    }
}
