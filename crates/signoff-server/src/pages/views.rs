//! The pages' handlers: each reads from or commands the runtime as the signed-in person and
//! renders a template.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use signoff_core::engine::{Actor, Command, RejectionKind, TaskStatus, Verdict};
use signoff_core::workflow::{Loaded, Step, StepKind};
use signoff_core::{RecordedEvent, Timestamp};
use signoff_runtime::access::InstanceFilter;
use signoff_runtime::timeline::Line;
use signoff_runtime::{Entry, RuntimeError};

use super::forms::{self, FieldError};
use super::{CHANNEL, Viewer, charts, error_page, failed_page, me, render, when};
use crate::AppState;

/// A timeline line as templates show it.
#[derive(Serialize)]
pub struct LineView {
    sequence: u64,
    time: String,
    /// RFC 3339, for links to the state right after the event.
    at: String,
    actor: String,
    channel: String,
    cause: Option<String>,
    summary: String,
}

impl LineView {
    fn new(line: &Line) -> Self {
        Self {
            sequence: line.sequence,
            time: when(line.time),
            at: line.time.to_rfc3339(),
            actor: line.actor.clone(),
            channel: line.channel.clone(),
            cause: line.cause.clone(),
            summary: line.summary.clone(),
        }
    }
}

fn lines_of(events: &[(RecordedEvent, signoff_core::engine::InstanceEvent)]) -> Vec<Line> {
    events.iter().map(|(r, e)| Line::new(r, e)).collect()
}

pub async fn inbox(State(state): State<AppState>, viewer: Viewer) -> Response {
    let now = state.runtime.now();
    let items: Vec<Value> = state
        .runtime
        .inbox_of(&viewer.actor)
        .into_iter()
        .map(|item| {
            json!({
                "instance": item.instance,
                "workflow": item.workflow,
                "step": item.step,
                "kind": item.kind,
                "title": if item.title.is_empty() { item.step.clone() } else { item.title.clone() },
                "instance_title": item.instance_title,
                "tasks": item.tasks,
                "since": when(item.since),
                "deadline": item.deadline.map(when),
                "overdue": item.deadline.is_some_and(|d| d <= now),
            })
        })
        .collect();
    render(
        "inbox.html",
        json!({ "me": me(&viewer.actor), "items": items }),
    )
}

#[derive(Deserialize, Default)]
pub struct ListFilter {
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    status: String,
}

pub async fn instances(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(filter): Query<ListFilter>,
) -> Response {
    let wanted = InstanceFilter {
        workflow: (!filter.workflow.is_empty()).then(|| filter.workflow.clone()),
        status: (!filter.status.is_empty()).then(|| filter.status.clone()),
        requester: None,
        limit: 200,
    };
    let list = match state.runtime.list_instances(&viewer.actor, &wanted).await {
        Ok(list) => list,
        Err(e) => return failed_page(&viewer.actor, e),
    };
    let instances: Vec<Value> = list
        .iter()
        .map(|i| {
            json!({"id": i.id, "workflow": i.workflow, "requester": i.requester,
                   "started": when(i.started_at), "status": i.status, "outcome": i.outcome})
        })
        .collect();
    render(
        "instances.html",
        json!({
            "me": me(&viewer.actor),
            "instances": instances,
            "workflows": workflows(&state),
            "filter": {"workflow": filter.workflow, "status": filter.status},
        }),
    )
}

fn workflows(state: &AppState) -> Vec<Value> {
    state
        .runtime
        .definitions()
        .iter()
        .map(|l| {
            json!({"id": l.definition.id.value, "title": l.definition.title,
                   "description": l.definition.description})
        })
        .collect()
}

/// What a refused command on the instance page brings back to it.
#[derive(Default)]
pub(super) struct Refused {
    /// The step (or `#door-step`, `#comment`, `#evidence`) whose form was refused.
    pub(super) step: String,
    pub(super) field: Option<String>,
    pub(super) message: String,
    /// The values typed into the step's form.
    pub(super) values: Map<String, Value>,
    pub(super) justification: String,
    /// The text typed (a comment, a status update).
    pub(super) comment: String,
    /// Refused for lack of rights (403, said at the top of the page: the form it came from
    /// is not one this person is offered).
    pub(super) forbidden: bool,
}

fn step_kind(kind: Option<StepKind>) -> &'static str {
    match kind {
        Some(StepKind::Form) => "form",
        Some(StepKind::Approval) => "approval",
        Some(StepKind::Tasks) => "tasks",
        Some(StepKind::Wait) => "wait",
        _ => "step",
    }
}

fn steps_view(state: &AppState, entry: &Entry, actor: &Actor, refused: &Refused) -> Vec<Value> {
    let definition = &entry.loaded.definition;
    entry
        .state
        .active
        .iter()
        .map(|(id, active)| {
            let def = definition.steps.iter().find(|s| s.id.as_str() == id);
            // Theirs to act on: waited for (not once they decided), or escalated to them.
            let decided = active
                .gate
                .as_ref()
                .is_some_and(|g| g.decisions.contains_key(&actor.id));
            let mine = active.waits_for(&actor.id)
                || (!decided
                    && active
                        .escalated
                        .iter()
                        .chain(active.gate.iter().flat_map(|g| &g.escalated))
                        .any(|p| *p == actor.id));
            let kind = step_kind(def.and_then(|d| d.kind()));
            let here = refused.step == *id;
            let form = def.and_then(|d| d.form.as_ref()).map(|form| {
                let values = if here {
                    refused.values.clone()
                } else {
                    entry
                        .state
                        .data
                        .get(id)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default()
                };
                let error = FieldError {
                    field: refused.field.as_deref().filter(|_| here),
                    message: &refused.message,
                };
                forms::view(form, &values, &error)
            });
            let field_error = here && refused.field.as_deref() == Some("justification");
            let step_error = here
                && !field_error
                && !refused.field.as_deref().is_some_and(|f| {
                    def.and_then(|d| d.form.as_ref())
                        .is_some_and(|form| forms::names_an_input(form, f))
                });
            // A stopped step is shown as such to everyone: nothing can be done on it but an
            // operator's retry.
            let failure = active.failure.as_ref().map(|f| json!({
                "rule": f.rule.describe(),
                "expression": f.expression,
                "error": f.error,
                "version": f.version,
                "at": when(f.at),
                "retry": format!("signoff retry {} {id}", entry.state.id),
            }));
            let kind = if failure.is_some() {
                "stopped"
            } else if mine {
                kind
            } else {
                "watch"
            };
            json!({
                "id": id,
                "title": def.map(Step::title_or_id),
                "description": def.map(|d| d.description.clone()),
                "kind": kind,
                "failure": failure,
                "assignees": active.waiting_for(),
                "deadline": active.gate.as_ref().and_then(|g| g.opened.deadline).map(when),
                "progress": active.gate.as_ref().map(signoff_core::engine::state::Gate::progress),
                "blocked": active.gate.as_ref().map(|g| g.opened.short()).filter(|s| !s.is_empty()),
                "instructions": def.and_then(|d| d.approval.as_ref()).map(|a| a.instructions.trim().to_owned()),
                // What a justification must say, shown before anyone gets it wrong.
                "asks": def.and_then(|d| d.approval.as_ref()).map(signoff_core::workflow::Approval::asks),
                "decisions": active.gate.as_ref().map(|g| g.decisions.iter().map(|(who, d)| {
                    format!("{who} {}: {}", d.verdict.past(), d.justification)
                }).collect::<Vec<_>>()),
                "tasks": active.tasks.iter().map(|t| json!({
                    "id": t.opened.id,
                    "title": t.opened.title,
                    "owner": t.opened.owners.join(", "),
                    "status": t.closed.as_ref().map(|(s, _, _)| match s { TaskStatus::Done => "done", TaskStatus::NotDoing => "not doing" }),
                    "note": t.closed.as_ref().map(|(_, note, _)| note.clone()),
                })).collect::<Vec<_>>(),
                "form": form,
                "doors": super::doors::of_step(state, entry, actor, id, def, active, refused),
                "error": step_error.then(|| refused.message.clone()),
                "field_error": field_error.then(|| refused.message.clone()),
                "justification": if here { refused.justification.clone() } else { String::new() },
            })
        })
        .collect()
}

async fn instance_page(
    state: &AppState,
    actor: &Actor,
    entry: &Entry,
    refused: &Refused,
) -> Response {
    let events = match state.runtime.instance_events(&entry.state.id).await {
        Ok(events) => events,
        Err(e) => return failed_page(actor, e),
    };
    let lines = lines_of(&events);
    // Messages the outbox gave up on (a mailbox that does not exist): someone was not told.
    let undelivered = match state.runtime.undelivered(&entry.state.id).await {
        Ok(list) => list,
        Err(e) => return failed_page(actor, e),
    };
    let view = state.runtime.view_of(entry);
    let mut response = render(
        "instance.html",
        json!({
            "me": me(actor),
            "title": entry.loaded.definition.title,
            "description": entry.loaded.definition.description,
            "state": entry.state,
            "started": when(entry.state.started_at),
            "view_hash": view.hash(),
            "view": view,
            "steps": steps_view(state, entry, actor, refused),
            "may_attach": super::doors::may_attach(state, entry, actor),
            "evidence_error": (refused.step == "#evidence").then(|| refused.message.clone()),
            "instance": entry.state.id,
            "timeline": lines.iter().map(LineView::new).collect::<Vec<_>>(),
            "undelivered": undelivered.iter().map(|u| json!({
                "channel": u.channel,
                "name": u.name,
                "address": u.address,
                "subject": u.subject,
                "error": u.error,
                "attempts": u.attempts,
                "at": when(u.at),
            })).collect::<Vec<_>>(),
            "chart": charts::instance_timeline(&lines),
            "event_types": signoff_core::engine::event::TYPES,
            "comment": refused.comment,
            "comment_error": (refused.step == "#comment").then(|| refused.message.clone()),
            "forbidden": refused.forbidden.then(|| refused.message.clone()),
            // The engine would refuse it (an auditor changes nothing): no form to fill in vain.
            "may_comment": signoff_core::access::may_annotate(&entry.loaded.definition, &entry.state, actor),
        }),
    );
    if refused.forbidden {
        *response.status_mut() = StatusCode::FORBIDDEN;
    } else if !refused.message.is_empty() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

pub async fn instance(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    match state.runtime.load_for(&viewer.actor, &id, CHANNEL).await {
        Ok(entry) => instance_page(&state, &viewer.actor, &entry, &Refused::default()).await,
        Err(e) => failed_page(&viewer.actor, e),
    }
}

/// The live parts of an instance page (timeline, status), for its script.
pub async fn live(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let entry = match state.runtime.load_for(&viewer.actor, &id, CHANNEL).await {
        Ok(entry) => entry,
        Err(e) => return failed_page(&viewer.actor, e),
    };
    let events = match state.runtime.instance_events(&id).await {
        Ok(events) => events,
        Err(e) => return failed_page(&viewer.actor, e),
    };
    let lines: Vec<LineView> = lines_of(&events).iter().map(LineView::new).collect();
    let timeline = super::TEMPLATES
        .get_template("timeline.html")
        .and_then(|t| {
            t.render(minijinja::Value::from(minijinja::value::Serde(
                json!({"timeline": lines, "instance": id}),
            )))
        })
        .unwrap_or_default();
    let status = serde_json::to_value(&entry.state)
        .ok()
        .map(|s| {
            let status = s["status"].as_str().unwrap_or_default().to_owned();
            match s["outcome"].as_str() {
                Some(outcome) => (format!("{status}: {outcome}"), status),
                None => (status.clone(), status),
            }
        })
        .unwrap_or_default();
    axum::Json(json!({"timeline": timeline, "status": status.0, "status_class": status.1}))
        .into_response()
}

/// Runs a command from a page; on a refusal the instance page is shown again with it.
pub(super) async fn act(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    command: Command,
    mut refused: Refused,
) -> Response {
    let step = command.step().map(str::to_owned);
    match state
        .runtime
        .execute_as(id, command, &viewer.actor, CHANNEL, None)
        .await
    {
        Ok(_) => Redirect::to(&format!(
            "/instances/{id}{}",
            step.map(|s| format!("#step-{s}")).unwrap_or_default()
        ))
        .into_response(),
        Err(RuntimeError::Rejected(rejection)) if rejection.kind != RejectionKind::NotFound => {
            tracing::info!(instance = id, person = %viewer.actor.id, reason = %rejection, "page command refused");
            refused.field = rejection.field.clone();
            refused.message = rejection.message.clone();
            refused.forbidden = rejection.kind == RejectionKind::Forbidden;
            refused_page(state, viewer, id, &refused).await
        }
        Err(e) => failed_page(&viewer.actor, e),
    }
}

/// The instance page again, with what was refused shown next to its form (422).
pub(super) async fn refused_page(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    refused: &Refused,
) -> Response {
    match state.runtime.load_for(&viewer.actor, id, CHANNEL).await {
        Ok(entry) => instance_page(state, &viewer.actor, &entry, refused).await,
        Err(e) => failed_page(&viewer.actor, e),
    }
}

pub async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, step)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let entry = match state.runtime.load_for(&viewer.actor, &id, CHANNEL).await {
        Ok(entry) => entry,
        Err(e) => return failed_page(&viewer.actor, e),
    };
    let Some(form) = entry
        .loaded
        .definition
        .steps
        .iter()
        .find(|s| s.id.as_str() == step)
        .and_then(|s| s.form.as_ref())
    else {
        return error_page(
            &viewer.actor,
            StatusCode::NOT_FOUND,
            &format!("step {step:?} of this workflow is not a form"),
        );
    };
    let values = forms::parse(form, &pairs);
    let refused = Refused {
        step: step.clone(),
        values: values.clone(),
        ..Refused::default()
    };
    act(
        &state,
        &viewer,
        &id,
        Command::Submit { step, values },
        refused,
    )
    .await
}

#[derive(Deserialize)]
pub struct DecideForm {
    verdict: Verdict,
    #[serde(default)]
    justification: String,
    #[serde(default)]
    shown: Option<String>,
}

pub async fn decide(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, step)): Path<(String, String)>,
    Form(form): Form<DecideForm>,
) -> Response {
    let refused = Refused {
        step: step.clone(),
        justification: form.justification.clone(),
        ..Refused::default()
    };
    let command = Command::Decide {
        step,
        verdict: form.verdict,
        justification: form.justification,
        shown: form.shown.filter(|s| !s.is_empty()),
    };
    act(&state, &viewer, &id, command, refused).await
}

#[derive(Deserialize)]
pub struct CompleteForm {
    item: String,
    status: TaskStatus,
    #[serde(default)]
    note: String,
}

pub async fn complete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, step)): Path<(String, String)>,
    Form(form): Form<CompleteForm>,
) -> Response {
    let refused = Refused {
        step: step.clone(),
        ..Refused::default()
    };
    let command = Command::Complete {
        step,
        item: form.item,
        status: form.status,
        note: form.note,
    };
    act(&state, &viewer, &id, command, refused).await
}

#[derive(Deserialize)]
pub struct CommentForm {
    text: String,
}

pub async fn comment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Response {
    let refused = Refused {
        step: "#comment".into(),
        comment: form.text.clone(),
        ..Refused::default()
    };
    act(
        &state,
        &viewer,
        &id,
        Command::Comment { text: form.text },
        refused,
    )
    .await
}

pub async fn start_list(State(state): State<AppState>, viewer: Viewer) -> Response {
    render(
        "start.html",
        json!({"me": me(&viewer.actor), "workflows": workflows(&state)}),
    )
}

/// The form of a workflow's first step, when the person starting it fills it in.
fn first_form(loaded: &Loaded) -> Option<(&str, &str, &signoff_core::workflow::Form)> {
    let (step, form) = loaded.definition.starting_form()?;
    Some((step.id.as_str(), step.title_or_id(), form))
}

fn start_view(
    actor: &Actor,
    loaded: &Loaded,
    values: &Map<String, Value>,
    error: &FieldError<'_>,
    key: &str,
) -> Response {
    let first = first_form(loaded);
    let above = error
        .field
        .is_none_or(|f| !first.is_some_and(|(_, _, form)| forms::names_an_input(form, f)));
    render(
        "start.html",
        json!({
            "me": me(actor),
            "workflow": {"id": loaded.definition.id.value, "title": loaded.definition.title,
                         "description": loaded.definition.description},
            "form": first.map(|(_, _, form)| forms::view(form, values, error)),
            "form_title": first.map(|(_, title, _)| title),
            "error": (above && !error.message.is_empty()).then_some(error.message),
            "key": key,
        }),
    )
}

pub async fn start_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(workflow): Path<String>,
) -> Response {
    let Some(loaded) = state.runtime.definition(&workflow) else {
        return failed_page(&viewer.actor, RuntimeError::UnknownWorkflow(workflow));
    };
    let no_error = FieldError {
        field: None,
        message: "",
    };
    start_view(
        &viewer.actor,
        &loaded,
        &Map::new(),
        &no_error,
        &signoff_runtime::runtime::new_instance_id(),
    )
}

/// Starts an instance and submits its first form, checked before anything is recorded.
pub async fn start(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(workflow): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let Some(loaded) = state.runtime.definition(&workflow) else {
        return failed_page(&viewer.actor, RuntimeError::UnknownWorkflow(workflow));
    };
    let key = pairs
        .iter()
        .find(|(n, _)| n == "_key")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(signoff_runtime::runtime::new_instance_id);
    let first = first_form(&loaded);
    let values = first
        .map(|(_, _, form)| forms::parse(form, &pairs))
        .unwrap_or_default();
    let refusal = |values: &Map<String, Value>, field: Option<&str>, message: &str| {
        let mut response = start_view(
            &viewer.actor,
            &loaded,
            values,
            &FieldError { field, message },
            &key,
        );
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        response
    };
    if let Some((_, _, form)) = first {
        let directory = state.runtime.directory();
        if let Err(rejection) =
            signoff_core::engine::forms::check_values(form, &values, &*directory)
        {
            return refusal(&values, rejection.field.as_deref(), &rejection.message);
        }
    }
    let rt = &state.runtime;
    // The page's key makes a double submission one start (the key is the viewer's own).
    let id = match rt
        .start_as(&workflow, json!({}), &viewer.actor, CHANNEL, Some(&key))
        .await
    {
        Ok(applied) => applied.instance,
        Err(RuntimeError::Rejected(r)) => return refusal(&values, r.field.as_deref(), &r.message),
        Err(e) => return failed_page(&viewer.actor, e),
    };
    if let Some((step, _, _)) = first {
        let command = Command::Submit {
            step: step.to_owned(),
            values: values.clone(),
        };
        match rt
            .execute_as(
                &id,
                command,
                &viewer.actor,
                CHANNEL,
                Some(&format!("{id}:first-form")),
            )
            .await
        {
            // A second submission of the page with other values: the first one stands.
            Ok(_) | Err(RuntimeError::IdempotencyKeyReused) => {}
            Err(RuntimeError::Rejected(r)) => {
                // Started; the form stays to fill on the instance page.
                tracing::info!(instance = %id, reason = %r, "first form refused after start");
            }
            Err(e) => return failed_page(&viewer.actor, e),
        }
    }
    Redirect::to(&format!("/instances/{id}")).into_response()
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    instance: String,
    #[serde(default)]
    at: String,
}

/// A moment typed by a person: RFC 3339, or without its zone (read as UTC).
fn parse_moment(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    Timestamp::parse_rfc3339(text)
        .or_else(|_| Timestamp::parse_rfc3339(&format!("{text}Z")))
        .or_else(|_| Timestamp::parse_rfc3339(&format!("{text}:00Z")))
        .map_err(|_| format!("{text:?} is not a moment; write it like 2026-11-23T10:15:00Z (UTC)"))
}

pub async fn audit(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<AuditQuery>,
) -> Response {
    let rt = &state.runtime;
    let actor = &viewer.actor;
    let verify = if signoff_core::access::may_audit(actor) {
        match signoff_store::verify(rt.log().clone(), 1).await {
            Ok(report) => Some(json!({
                "intact": report.is_intact(),
                "checked": report.checked,
                "head": report.last_hash.map(|h| h.to_string()),
                "broken_at": report.broken.as_ref().map(|b| b.sequence),
                "reason": report.broken.as_ref().map(ToString::to_string),
            })),
            Err(e) => return failed_page(actor, e.into()),
        }
    } else {
        None
    };
    let filter = InstanceFilter {
        limit: 200,
        ..InstanceFilter::default()
    };
    let instances = match rt.list_instances(actor, &filter).await {
        Ok(list) => list,
        Err(e) => return failed_page(actor, e),
    };
    let mut context = json!({
        "me": me(actor),
        "verify": verify,
        "instances": instances,
        "instance": query.instance,
        "at": query.at,
    });
    if !query.instance.is_empty() {
        if let Err(e) = rt.load_for(actor, &query.instance, CHANNEL).await {
            return failed_page(actor, e);
        }
        let at = if query.at.trim().is_empty() {
            Ok(rt.now())
        } else {
            parse_moment(&query.at)
        };
        match at {
            Err(message) => context["error"] = json!(message),
            Ok(at) => {
                context["at"] = json!(at.to_rfc3339());
                match rt.state_at(&query.instance, at).await {
                    Ok(then) => {
                        let events = match rt.instance_events(&query.instance).await {
                            Ok(events) => events,
                            Err(e) => return failed_page(actor, e),
                        };
                        let since: Vec<LineView> = lines_of(&events)
                            .iter()
                            .filter(|l| l.time > at)
                            .map(LineView::new)
                            .collect();
                        let json_state = serde_json::to_value(&then.state).unwrap_or_default();
                        context["then"] = json!({
                            "status": json_state["status"],
                            "outcome": json_state["outcome"],
                            "version": then.state.version,
                            "active": then.state.active.keys().collect::<Vec<_>>(),
                            "json": serde_json::to_string_pretty(&json_state).unwrap_or_default(),
                        });
                        context["timeline"] = json!(since);
                    }
                    Err(e @ RuntimeError::NotYet(..)) => {
                        context["error"] = json!(e.to_string());
                    }
                    Err(e) => return failed_page(actor, e),
                }
            }
        }
    }
    render("audit.html", context)
}
