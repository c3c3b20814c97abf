//! Moving an instance through its definition: entering steps, completing them, following
//! transitions through the steps that need nobody (branch, notify, parallel, join, start, end)
//! until every path waits for a person, a timer or a signal.
//!
//! Every change goes through [`Machine::emit`], which applies the event to a working copy of the
//! state with the same `evolve` replay uses: what a command decides is what replay rebuilds.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::command::{Context, Rejection};
use super::event::{GateOpened, InstanceEvent, Rule, TaskOpened, TimerPurpose, TimerSet};
use super::gate;
use super::state::Instance;
use crate::event::Timestamp;
use crate::workflow::expr::{Approver, Variables};
use crate::workflow::{Definition, JoinRule, Loaded, Party, Step, StepKind};

/// Most steps one command may pass through before the definition is deemed to loop.
const MAX_STEPS_PER_COMMAND: u32 = 500;

/// A command being decided: the definition, the working state and the events so far.
pub(crate) struct Machine<'a> {
    pub loaded: &'a Loaded,
    pub ctx: &'a Context<'a>,
    pub state: Instance,
    pub events: Vec<InstanceEvent>,
    steps: u32,
    /// The variables for expressions, and the state version they were last found to match.
    cel_vars: RefCell<Option<(u64, Arc<Variables>)>>,
    /// Where the caller keeps them between commands, if it does.
    memo: Option<&'a Memo>,
}

/// What [`super::decide_with`] may keep between commands on one instance to spare work: the
/// variables its expressions read, as converted for them. Checked against the state before each
/// use, so a stale memo (or another instance's) costs a conversion, never a wrong answer.
#[derive(Default)]
pub struct Memo(Mutex<Option<Arc<Variables>>>);

impl Memo {
    /// What it holds now.
    pub(crate) fn get(&self) -> Option<Arc<Variables>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, vars: Arc<Variables>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(vars);
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo(..)")
    }
}

impl<'a> Machine<'a> {
    pub fn new(
        loaded: &'a Loaded,
        ctx: &'a Context<'a>,
        state: &Instance,
        memo: Option<&'a Memo>,
    ) -> Self {
        Self {
            loaded,
            ctx,
            state: state.clone(),
            events: Vec::new(),
            steps: 0,
            cel_vars: RefCell::new(None),
            memo,
        }
    }

    pub fn definition(&self) -> &'a Definition {
        &self.loaded.definition
    }

    pub fn now(&self) -> Timestamp {
        self.ctx.now
    }

    pub fn emit(&mut self, event: InstanceEvent) {
        self.state.evolve(&event);
        self.events.push(event);
    }

    /// The variables for expressions, converted again only when they changed: a branch's cases
    /// and a gate's approver predicates all read the same ones, and so do the next commands on
    /// the instance when the caller keeps a [`Memo`].
    pub fn cel_vars(&self) -> Option<Arc<Variables>> {
        let mut cache = self.cel_vars.borrow_mut();
        if let Some((version, vars)) = cache.as_ref()
            && *version == self.state.version
        {
            return Some(vars.clone());
        }
        // Most events (a step entered, a timer, a decision) leave the variables as they were:
        // comparing them is far cheaper than converting them again.
        let known = cache.as_ref().map(|(_, vars)| vars.clone());
        let remembered = self.memo.and_then(Memo::get);
        if let Some(vars) = known
            .into_iter()
            .chain(remembered)
            .find(|v| self.reads_as(v))
        {
            *cache = Some((self.state.version, vars.clone()));
            return Some(vars);
        }
        let vars = Arc::new(Variables::new(self.vars()).ok()?);
        if let Some(memo) = self.memo {
            memo.set(vars.clone());
        }
        *cache = Some((self.state.version, vars.clone()));
        Some(vars)
    }

    /// Whether `vars` are this state's variables: [`Machine::vars`], compared part by part
    /// without building them.
    pub fn reads_as(&self, vars: &Variables) -> bool {
        let state = &self.state;
        let submitted_by = vars.get("submitted_by").and_then(Value::as_object);
        let instance = vars.get("instance");
        vars.get("data").and_then(Value::as_object) == Some(&state.data)
            && vars.get("input") == Some(&state.input)
            && vars.get("requester").and_then(Value::as_str) == Some(state.requester.as_str())
            && submitted_by.is_some_and(|by| {
                by.len() == state.submitted_by.len()
                    && state
                        .submitted_by
                        .iter()
                        .all(|(step, p)| by.get(step).and_then(Value::as_str) == Some(p))
            })
            && instance.is_some_and(|i| {
                i.get("id").and_then(Value::as_str) == Some(state.id.as_str())
                    && i.get("workflow").and_then(Value::as_str) == Some(state.workflow.as_str())
                    && i.get("title").and_then(Value::as_str)
                        == Some(self.definition().title.as_str())
            })
    }

    /// The variables every expression and template sees.
    pub fn vars(&self) -> Value {
        self.state.vars(&self.definition().title)
    }

    /// Evaluates an expression of the definition with the instance's variables (and an
    /// approver, for a predicate).
    ///
    /// # Errors
    /// Why it could not be evaluated: the caller stops the step ([`Machine::fail`]).
    pub fn eval(&self, source: &str, approver: Option<&Approver>) -> Result<Value, String> {
        let expression = self.compiled(source)?;
        let vars = self.variables()?;
        expression
            .eval_in(&vars, approver)
            .map_err(|e| without_source(e, source))
    }

    /// [`Machine::eval`] as a condition: anything but `true` or `false` is an error.
    ///
    /// # Errors
    /// As [`Machine::eval`].
    pub fn eval_bool(&self, source: &str, approver: Option<&Approver>) -> Result<bool, String> {
        let expression = self.compiled(source)?;
        let vars = self.variables()?;
        expression
            .eval_bool_in(&vars, approver)
            .map_err(|e| without_source(e, source))
    }

    fn compiled(&self, source: &str) -> Result<&'a crate::workflow::expr::Expression, String> {
        self.loaded
            .expression(source)
            .ok_or_else(|| format!("{source:?} was not compiled with the definition"))
    }

    fn variables(&self) -> Result<Arc<Variables>, String> {
        self.cel_vars()
            .ok_or_else(|| "the instance's data cannot be given to expressions".to_owned())
    }

    /// Stops `step` because a rule of it could not be evaluated: records why, at which version
    /// of the data and under which definition, and takes no path. The step then waits for an
    /// operator's retry (or the instance's cancellation); nothing opens, nobody is admitted.
    pub fn fail(&mut self, step: &Step, branch: Option<String>, broken: Broken) {
        let id = step.id.as_str();
        // Stopped where it stands when it is open (a gate an approver's predicate broke), else
        // as the activation it was being entered as.
        let (activation, branch) = match self.state.active.get(id) {
            Some(active) => (active.activation, active.branch.clone()),
            None => (self.next_activation(id), branch),
        };
        self.emit(InstanceEvent::StepFailed {
            step: step.id.value.clone(),
            activation,
            branch,
            rule: broken.rule,
            expression: broken.expression,
            error: broken.error,
            version: self.state.version,
            definition: self.loaded.hash.clone(),
            at: self.now(),
        });
    }

    /// The refusal of a command on a step a rule stopped, if `step` is one.
    pub fn stopped(&self, step: &str) -> Option<Rejection> {
        let failure = self.state.active.get(step)?.failure.as_ref()?;
        Some(Rejection::closed(format!(
            "the step {step:?} is stopped: {} `{}` could not be evaluated ({}); nothing can be \
             decided on it until an operator fixes the definition and retries it (`signoff \
             retry {} {step}`), or the instance is cancelled",
            failure.rule.describe(),
            failure.expression,
            failure.error,
            self.state.id,
        )))
    }

    pub fn step(&self, id: &str) -> Result<&'a Step, Rejection> {
        self.definition().step(id).ok_or_else(|| {
            Rejection::not_found(format!(
                "workflow {} has no step {id:?}",
                self.definition().id
            ))
        })
    }

    /// The people a party names in this instance.
    pub fn people_of(&self, party: &Party) -> Vec<String> {
        if let Some(person) = &party.person {
            return vec![person.value.clone()];
        }
        let Some(role) = &party.role else {
            return Vec::new();
        };
        self.role_holders(role.as_str())
    }

    /// Holders of a role in this instance: the requester, the person a form field names, or the
    /// directory's holders.
    pub fn role_holders(&self, role: &str) -> Vec<String> {
        if role == "requester" {
            return vec![self.state.requester.clone()];
        }
        // Handed on by the instance that started this one: these people, and no others.
        if let Some(holders) = self.state.roles.get(role) {
            return holders.clone();
        }
        match self
            .definition()
            .roles
            .get(role)
            .and_then(|r| r.field.as_ref())
        {
            Some(field) => self
                .state
                .person_in_field(field.as_str())
                .map(|p| vec![p.to_owned()])
                .unwrap_or_default(),
            None => self.ctx.people.holders(role),
        }
    }

    /// Whether the actor is one of the people a party names.
    pub fn actor_is(&self, party: &Party) -> bool {
        let actor = self.ctx.actor;
        match (&party.person, &party.role) {
            (Some(person), _) => person.as_str() == actor.id,
            (None, Some(role)) if role.as_str() != "requester" && self.is_directory_role(role) => {
                actor.roles.contains(role.as_str())
            }
            (None, Some(_)) => self.people_of(party).contains(&actor.id),
            (None, None) => false,
        }
    }

    fn is_directory_role(&self, role: &str) -> bool {
        !self.state.roles.contains_key(role)
            && self
                .definition()
                .roles
                .get(role)
                .is_none_or(|r| r.field.is_none())
    }

    /// Describes a party for a sentence: "the change-board role", "alice".
    pub fn describe(party: &Party) -> String {
        match (&party.person, &party.role) {
            (Some(p), _) => p.value.clone(),
            (None, Some(r)) => format!("the {} role", r.as_str()),
            (None, None) => "nobody".into(),
        }
    }

    fn tick(&mut self) -> Result<(), Rejection> {
        self.steps += 1;
        if self.steps > MAX_STEPS_PER_COMMAND {
            return Err(Rejection::closed(format!(
                "workflow {} went through more than {MAX_STEPS_PER_COMMAND} steps without waiting \
                 for anyone: its definition loops; nothing was recorded",
                self.definition().id
            )));
        }
        Ok(())
    }

    /// Moves to `target` from a branch (or none): a join counts the arrival, any other step is
    /// entered.
    pub fn go(&mut self, target: &str, branch: Option<String>) -> Result<(), Rejection> {
        if !self.state.is_running() {
            return Ok(());
        }
        let step = self.step(target)?;
        if let Some(rule) = step.join {
            return self.arrive(step, rule, branch);
        }
        self.enter(target, branch)
    }

    fn arrive(
        &mut self,
        join: &'a Step,
        rule: JoinRule,
        branch: Option<String>,
    ) -> Result<(), Rejection> {
        let id = join.id.value.clone();
        let Some(branch) = branch else {
            // Reached outside any parallel (a loop back, say): it simply passes on.
            return self.enter(&id, None);
        };
        let (outer, fork) = match branch.rsplit_once('/') {
            Some((outer, last)) => (Some(outer.to_owned()), last.to_owned()),
            None => (None, branch.clone()),
        };
        let parallel_step = fork.split('#').next().unwrap_or_default().to_owned();
        let expected = self
            .definition()
            .step(&parallel_step)
            .and_then(|s| s.parallel.as_ref())
            .map_or(1, |p| p.branches.len());
        self.emit(InstanceEvent::JoinArrived {
            step: id.clone(),
            branch: branch.clone(),
            at: self.now(),
        });
        let arrived = self.state.arrivals.get(&id).map_or(0, Vec::len);
        match rule {
            JoinRule::All if arrived < expected => Ok(()),
            JoinRule::All => self.enter(&id, outer),
            JoinRule::Any => {
                if arrived > 1 {
                    return Ok(());
                }
                // The first branch wins: close what the others still have open.
                let prefix = format!("{parallel_step}#");
                let open: Vec<String> = self
                    .state
                    .active
                    .iter()
                    .filter(|(_, a)| {
                        a.branch.as_deref().is_some_and(|b| {
                            b.rsplit('/')
                                .next()
                                .is_some_and(|last| last.starts_with(&prefix))
                        })
                    })
                    .map(|(s, _)| s.clone())
                    .collect();
                for step in open {
                    self.emit(InstanceEvent::StepCompleted {
                        step,
                        outcome: "closed".into(),
                        next: None,
                        at: self.now(),
                    });
                }
                self.enter(&id, outer)
            }
        }
    }

    /// Completes an active step and follows `next`.
    pub fn complete(
        &mut self,
        step: &str,
        outcome: &str,
        next: Option<&str>,
    ) -> Result<(), Rejection> {
        let branch = self.state.active.get(step).and_then(|a| a.branch.clone());
        self.emit(InstanceEvent::StepCompleted {
            step: step.to_owned(),
            outcome: outcome.to_owned(),
            next: next.map(str::to_owned),
            at: self.now(),
        });
        self.follow(next, branch)
    }

    /// The activation a step's next entry will be.
    fn next_activation(&self, step: &str) -> u32 {
        self.state.activations.get(step).copied().unwrap_or(0) + 1
    }

    /// Records entering a step (its next activation), with the gate or checklist it opens and
    /// the timers it sets.
    pub(crate) fn entered_with(
        &mut self,
        step: &Step,
        branch: Option<String>,
        assignees: Vec<String>,
        gate: Option<GateOpened>,
        tasks: Option<Vec<TaskOpened>>,
        timers: Vec<NewTimer>,
    ) -> u32 {
        let id = step.id.as_str();
        let activation = self.next_activation(id);
        let timers = timers
            .into_iter()
            .map(|t| TimerSet {
                id: timer_id(id, activation, &t.tag),
                purpose: t.purpose,
                due: t.due,
            })
            .collect();
        self.emit(InstanceEvent::StepEntered {
            step: step.id.value.clone(),
            activation,
            branch,
            at: self.now(),
            gate,
            tasks,
            assignees,
            timers,
        });
        activation
    }

    /// Records a step that waits for nobody as entered and completed at once. The caller goes
    /// on to `next`.
    pub(crate) fn passed(
        &mut self,
        step: &Step,
        branch: Option<String>,
        outcome: &str,
        next: Option<&str>,
    ) {
        self.passed_setting_aside(step, branch, outcome, next, Vec::new());
    }

    /// As [`Machine::passed`], setting aside the answers of `superseded` steps.
    fn passed_setting_aside(
        &mut self,
        step: &Step,
        branch: Option<String>,
        outcome: &str,
        next: Option<&str>,
        superseded: Vec<String>,
    ) {
        self.emit(InstanceEvent::StepPassed {
            step: step.id.value.clone(),
            activation: self.next_activation(step.id.as_str()),
            branch,
            outcome: outcome.to_owned(),
            next: next.map(str::to_owned),
            superseded,
            at: self.now(),
        });
    }

    /// Passes a step and goes on to `next` in the same branch.
    pub(crate) fn pass_on(
        &mut self,
        step: &Step,
        branch: Option<String>,
        outcome: &str,
        next: Option<&str>,
    ) -> Result<(), Rejection> {
        self.passed(step, branch.clone(), outcome, next);
        self.follow(next, branch)
    }

    /// Goes on to `next`, if there is one, in `branch`.
    fn follow(&mut self, next: Option<&str>, branch: Option<String>) -> Result<(), Rejection> {
        match next {
            Some(next) => self.go(next, branch),
            None => Ok(()),
        }
    }

    /// Enters a step and, for steps that need nobody, goes straight on.
    pub fn enter(&mut self, id: &str, branch: Option<String>) -> Result<(), Rejection> {
        self.tick()?;
        let step = self.step(id)?;
        let next = step.next.as_ref().map(|n| n.value.clone());
        match step.kind() {
            Some(StepKind::Form) => {
                let form = step.form.as_ref();
                let by = form
                    .and_then(|f| f.by.clone())
                    .unwrap_or_else(requester_party);
                let people = self.people_of(&by);
                let timers = self.cadence_timer(step).into_iter().collect();
                self.entered_with(step, branch, people.clone(), None, None, timers);
                self.ask(step, people, "form_requested", "Please fill in");
                Ok(())
            }
            Some(StepKind::Approval) => gate::open(self, step, branch),
            Some(StepKind::Tasks) => super::tasks::open(self, step, branch),
            Some(StepKind::Notify) => {
                let mut message = None;
                if let Some(notify) = &step.notify {
                    let vars = self.vars();
                    let mut rendered = Vec::new();
                    for template in [notify.subject.as_str(), notify.body.as_str()] {
                        match render(template, &vars) {
                            Ok(text) => rendered.push(text),
                            Err(error) => {
                                self.fail(
                                    step,
                                    branch,
                                    Broken::new(Rule::Template, template, error),
                                );
                                return Ok(());
                            }
                        }
                    }
                    let mut to = Vec::new();
                    for party in &notify.to {
                        for person in self.people_of(party) {
                            if !to.contains(&person) {
                                to.push(person);
                            }
                        }
                    }
                    let body = rendered.pop().unwrap_or_default();
                    let subject = rendered.pop().unwrap_or_default();
                    message = Some((to, subject, body));
                }
                self.passed(step, branch.clone(), "sent", next.as_deref());
                if let Some((to, subject, body)) = message {
                    self.notify(to, subject, body, Some(id), "notify");
                }
                self.follow(next.as_deref(), branch)
            }
            Some(StepKind::Branch) => {
                let mut taken = None;
                for (i, case) in step.branch.iter().flatten().enumerate() {
                    match self.eval_bool(case.when.as_str(), None) {
                        Ok(true) => {
                            taken = Some((format!("case {}", i + 1), case.next.value.clone()));
                            break;
                        }
                        Ok(false) => {}
                        // Not "false": a condition that cannot say takes no path, the default
                        // path least of all.
                        Err(error) => {
                            let broken =
                                Broken::new(Rule::BranchCondition, case.when.as_str(), error);
                            self.fail(step, branch, broken);
                            return Ok(());
                        }
                    }
                }
                let (outcome, target) = taken
                    .unwrap_or_else(|| ("default".to_owned(), next.clone().unwrap_or_default()));
                // The answers given on a path this branch does not take now (the instance came
                // back, and chose otherwise) are no longer current.
                let mut superseded: Vec<String> = step
                    .branch
                    .iter()
                    .flatten()
                    .map(|case| case.next.value.clone())
                    .chain(next.clone())
                    .filter(|s| *s != target && self.state.data.contains_key(s))
                    .collect();
                superseded.sort();
                superseded.dedup();
                self.passed_setting_aside(
                    step,
                    branch.clone(),
                    &outcome,
                    Some(&target),
                    superseded,
                );
                self.follow(Some(&target), branch)
            }
            Some(StepKind::Parallel) => {
                self.passed(step, branch.clone(), "forked", None);
                let branches = step
                    .parallel
                    .as_ref()
                    .map(|p| p.branches.clone())
                    .unwrap_or_default();
                for (i, first) in branches.iter().enumerate() {
                    let tag = format!("{id}#{i}");
                    let tag = match &branch {
                        Some(outer) => format!("{outer}/{tag}"),
                        None => tag,
                    };
                    self.go(first.as_str(), Some(tag))?;
                }
                Ok(())
            }
            Some(StepKind::Join) => self.pass_on(step, branch, "joined", next.as_deref()),
            Some(StepKind::Wait) => super::tasks::open_wait(self, step, branch),
            Some(StepKind::StartWorkflow) => {
                let mut requested = None;
                if let Some(start) = &step.start_workflow {
                    let mut input = serde_json::Map::new();
                    for (name, expr) in &start.input {
                        match self.eval(expr.as_str(), None) {
                            Ok(value) => {
                                input.insert(name.clone(), value);
                            }
                            // Never `null` in its place: the workflow started would decide on
                            // an input that says nothing.
                            Err(error) => {
                                let broken = Broken::new(Rule::WorkflowInput, expr.as_str(), error);
                                self.fail(step, branch, broken);
                                return Ok(());
                            }
                        }
                    }
                    requested = Some((start.workflow.value.clone(), input));
                }
                self.passed(step, branch.clone(), "started", next.as_deref());
                if let Some((workflow, input)) = requested {
                    self.emit(InstanceEvent::WorkflowRequested {
                        step: id.to_owned(),
                        workflow,
                        input: Value::Object(input),
                        at: self.now(),
                    });
                }
                self.follow(next.as_deref(), branch)
            }
            Some(StepKind::End) => {
                let (outcome, success) = step.end.as_ref().map_or(("done".to_owned(), true), |e| {
                    (e.outcome.value.clone(), e.is_success())
                });
                self.passed(step, branch, &outcome, None);
                let requester = self.state.requester.clone();
                let title = self.definition().title.clone();
                self.notify(
                    vec![requester],
                    format!("{title}: {outcome}"),
                    format!(
                        "{title} {} ended with the outcome \"{outcome}\".",
                        self.state.id
                    ),
                    Some(id),
                    "outcome",
                );
                self.emit(InstanceEvent::Ended {
                    outcome,
                    success,
                    at: self.now(),
                });
                Ok(())
            }
            None => Err(Rejection::invalid(format!(
                "step {id:?} has no single kind; the definition should not have loaded"
            ))),
        }
    }

    /// Tells the people a step waits for that it does, except the actor who caused it.
    pub fn ask(&mut self, step: &Step, people: Vec<String>, reason: &str, verb: &str) {
        let to: Vec<String> = people
            .into_iter()
            .filter(|p| p != &self.ctx.actor.id)
            .collect();
        if to.is_empty() {
            return;
        }
        let title = step.title_or_id();
        let subject = format!("{verb}: {title} ({})", self.definition().title);
        let body = format!(
            "{verb}: {title}\nInstance {} of {}, requested by {}.\n{}",
            self.state.id,
            self.definition().title,
            self.state.requester,
            step.description
        );
        self.notify(to, subject, body, Some(step.id.as_str()), reason);
    }

    /// Records a notification for the outbox.
    pub fn notify(
        &mut self,
        to: Vec<String>,
        subject: String,
        body: String,
        step: Option<&str>,
        reason: &str,
    ) {
        if to.is_empty() {
            return;
        }
        let id = format!("{}-n{}", self.state.id, self.state.notifications + 1);
        self.emit(InstanceEvent::NotificationRequested {
            id,
            to,
            subject,
            body,
            step: step.map(str::to_owned),
            reason: reason.to_owned(),
            at: self.now(),
        });
    }

    /// Schedules a timer for the current activation of `step`, after its entry.
    pub fn schedule(&mut self, step: &str, purpose: TimerPurpose, due: Timestamp, tag: &str) {
        let activation = self.state.activations.get(step).copied().unwrap_or(0);
        self.emit(InstanceEvent::TimerScheduled {
            id: timer_id(step, activation, tag),
            step: step.to_owned(),
            purpose,
            due,
        });
    }

    /// The first status update a step's cadence asks for, set as the step is entered.
    pub fn cadence_timer(&self, step: &Step) -> Option<NewTimer> {
        let cadence = step.status_updates.as_ref()?;
        Some(NewTimer {
            purpose: TimerPurpose::StatusUpdate,
            due: cadence.every.value.after(self.now()),
            // The version of the event that sets it: no later one can take the same tag.
            tag: format!("status@{}", self.state.version + 1),
        })
    }

    /// Restarts a step's status-update cadence, if it has one.
    pub fn start_cadence(&mut self, step: &Step) {
        if let Some(timer) = self.cadence_timer(step) {
            self.schedule(step.id.as_str(), timer.purpose, timer.due, &timer.tag);
        }
    }
}

/// An evaluation error without the expression's text the interpreter appends: the failure
/// records the expression beside it.
fn without_source(error: String, source: &str) -> String {
    match error.strip_suffix(&format!(" (in {source:?})")) {
        Some(short) => short.to_owned(),
        None => error,
    }
}

/// A rule that could not be evaluated: what [`Machine::fail`] records.
#[derive(Debug)]
pub(crate) struct Broken {
    pub rule: Rule,
    pub expression: String,
    pub error: String,
}

impl Broken {
    pub fn new(rule: Rule, expression: &str, error: impl Into<String>) -> Self {
        Self {
            rule,
            expression: expression.to_owned(),
            error: error.into(),
        }
    }
}

/// A timer a step's entry sets, before its activation (and so its id) is known.
pub(crate) struct NewTimer {
    pub purpose: TimerPurpose,
    pub due: Timestamp,
    /// Unique among the activation's timers: `deadline`, `reminder-1`, `wait`…
    pub tag: String,
}

impl NewTimer {
    pub fn new(purpose: TimerPurpose, due: Timestamp, tag: impl Into<String>) -> Self {
        Self {
            purpose,
            due,
            tag: tag.into(),
        }
    }
}

/// A timer's id: unique in the instance, and naming the step activation it belongs to.
fn timer_id(step: &str, activation: u32, tag: &str) -> String {
    format!("{step}#{activation}:{tag}")
}

/// The requester as a party.
pub(crate) fn requester_party() -> Party {
    Party {
        role: Some(crate::workflow::Located::new("requester".to_owned())),
        person: None,
    }
}

pub(crate) use super::compiled::render;
