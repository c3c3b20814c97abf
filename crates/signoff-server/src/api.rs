//! REST API v1: definitions, instances, the commands people give them, the caller's inbox, the
//! timeline, and the auditor's export and verification.
//!
//! Every route takes the caller from their token ([`Caller`]) and asks the runtime, which checks
//! their rights. Commands are recorded with the `api` channel; an `Idempotency-Key` header makes
//! any of them safe to retry: the key is the caller's own, a retry of the same request writes
//! nothing and is answered with the first answer (same status and body, and the header
//! `Idempotent-Replayed: true`), and the same key on another request is refused with 422.

use std::time::Instant;

use axum::body::Body as HttpBody;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use signoff_core::Timestamp;
use signoff_core::engine::{Command, TaskStatus, Verdict};
use signoff_runtime::access::InstanceFilter;
use signoff_runtime::timeline::Line;
use signoff_runtime::{Applied, RuntimeError};
use tracing::Instrument;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use crate::AppState;
use crate::auth::Caller;
use crate::problem::Problem;

/// The channel API commands are recorded with.
pub const CHANNEL: &str = "api";
/// The header that makes a command safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header that marks an answer as the replay of a request's first answer.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// Most instances one list returns.
pub const MAX_LIST: usize = 1_000;

/// Text with at least one character that is not white space as the engine trims it
/// (`char::is_whitespace`), spelt out because regex dialects disagree on what `\s` is.
const SOME_TEXT_PATTERN: &str =
    r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
/// The verdicts of a decision, as [`Verdict`] reads them.
const VERDICTS: [&str; 2] = ["approve", "reject"];
/// The statuses of a task, as [`TaskStatus`] reads them.
const TASK_STATUSES: [&str; 2] = ["done", "not_doing"];
/// The statuses instances are listed by.
const LIST_STATUSES: [&str; 3] = ["running", "ended", "cancelled"];

/// The schema of a text the engine refuses when it is blank (a comment, a reason).
fn some_text() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .pattern(Some(SOME_TEXT_PATTERN))
        .build()
}

/// The schema of one of `values`.
fn one_of(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

fn verdict_schema() -> Object {
    one_of(&VERDICTS)
}

fn task_status_schema() -> Object {
    one_of(&TASK_STATUSES)
}

fn list_status_schema() -> Object {
    one_of(&LIST_STATUSES)
}

/// A JSON body; a body that is not JSON, not an object of the expected fields, or too large
/// is answered with a problem document naming what was wrong.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|e| Problem::from(axum::extract::rejection::JsonRejection::from(e)))?;
        let req = Request::from_parts(parts, HttpBody::from(bytes.clone()));
        let Json(value) = Json::<T>::from_request(req, state).await?;
        // serde reads a struct from an array of its fields too; every body here is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "the body must be a JSON object of named fields",
            )
            .at(None, "type"));
        }
        Ok(Self(value))
    }
}

/// Query parameters; unknown or malformed ones are answered with a problem document.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(e) => Err(e.into()),
        }
    }
}

/// What a command did.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CommandResult {
    /// The instance.
    pub instance: String,
    /// Its stream version after the command.
    pub version: u64,
    /// The events recorded, in order.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<signoff_core::engine::InstanceEvent>,
}

impl From<Applied> for CommandResult {
    fn from(applied: Applied) -> Self {
        // Written straight into the answer, not through `serde_json::Value` first: that
        // doubled the cost of every command's answer.
        Self {
            events: applied.events,
            instance: applied.instance,
            version: applied.version,
        }
    }
}

/// A workflow definition in a list.
#[derive(Serialize, ToSchema)]
pub struct DefinitionSummary {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// What it is for.
    pub description: String,
    /// `sha256:…` of its text: what new instances pin.
    pub hash: String,
}

/// A workflow definition, whole.
#[derive(Serialize, ToSchema)]
pub struct DefinitionDetail {
    /// Its summary.
    #[serde(flatten)]
    pub summary: DefinitionSummary,
    /// The YAML text.
    pub source: String,
    /// The definition as parsed.
    #[schema(value_type = Object)]
    pub definition: Value,
}

/// A definition to check.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The YAML text.
    pub source: String,
    /// The file name problems are reported against (default `definition.yaml`).
    #[serde(default)]
    pub file: Option<String>,
}

/// One problem of a definition.
#[derive(Serialize, ToSchema)]
pub struct DefinitionProblem {
    /// The file.
    pub file: String,
    /// Line, from 1 (0 when the whole file is at fault).
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The result of checking a definition.
#[derive(Serialize, ToSchema)]
pub struct ValidateResult {
    /// True when it has no problems.
    pub valid: bool,
    /// Every problem.
    pub problems: Vec<DefinitionProblem>,
}

/// An instance to start.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The workflow id.
    #[schema(pattern = "^[a-z][a-z0-9-]*$", example = "deployment-approval")]
    pub workflow: String,
    /// Its input, available to expressions as `input`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Map<String, Value>,
}

/// Which instances to list.
#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only `running`, `ended` or `cancelled`.
    #[param(schema_with = list_status_schema)]
    pub status: Option<String>,
    /// Only those this person started.
    pub requester: Option<String>,
    /// At most this many, newest first (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// The moment to see an instance at.
#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AtQuery {
    /// RFC 3339, e.g. `2026-11-23T10:00:00Z`.
    #[param(format = DateTime, example = "2026-11-23T10:00:00Z")]
    pub at: String,
}

/// Which events to export.
#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only this instance (the whole log otherwise, for auditors).
    #[param(pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub instance: Option<String>,
}

/// An instance as it is (or was).
#[derive(Serialize, ToSchema)]
pub struct InstanceView {
    /// Its state.
    #[schema(value_type = Object)]
    pub state: Value,
    /// What people are shown of it: the answers of the path taken under the definition's
    /// labels and sections, choices by their labels, people by their names, groups as tables,
    /// superseded answers apart, and the evidence.
    #[schema(value_type = Object)]
    pub view: Value,
    /// Hash of `view`, what a person deciding is shown; send it back as `shown` when deciding
    /// to refuse a decision on something that changed meanwhile.
    pub view_hash: String,
    /// The workflow's title.
    pub title: String,
    /// The moment asked for, for a state in the past.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Messages about it the outbox gave up on (who was not told, by which channel, and what
    /// the server answered); absent when every message went out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub undelivered: Vec<signoff_runtime::outbox::Undelivered>,
}

/// Fill in a form step.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The form step.
    #[schema(pattern = "^[a-z][a-z0-9_-]*$")]
    pub step: String,
    /// Field values.
    #[schema(value_type = Object)]
    pub values: Map<String, Value>,
}

/// Approve or reject at a gate.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    /// The gate.
    #[schema(pattern = "^[a-z][a-z0-9_-]*$")]
    pub step: String,
    /// `approve` or `reject`.
    #[schema(schema_with = verdict_schema)]
    pub verdict: Verdict,
    /// Why.
    #[serde(default)]
    pub justification: String,
    /// The `view_hash` the person was shown.
    #[serde(default)]
    pub shown: Option<String>,
}

/// Complete a task of a checklist, or mark it as not being done.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// The checklist step.
    #[schema(pattern = "^[a-z][a-z0-9_-]*$")]
    pub step: String,
    /// The task.
    pub item: String,
    /// `done` or `not_doing`.
    #[schema(schema_with = task_status_schema)]
    pub status: TaskStatus,
    /// A note; the reason, for `not_doing`.
    #[serde(default)]
    pub note: String,
}

/// Add a comment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// The text.
    #[schema(schema_with = some_text)]
    pub text: String,
}

/// Cancel an instance.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why.
    #[schema(schema_with = some_text)]
    pub reason: String,
}

/// Take back one's decision on a gate that is still open (where the workflow allows it).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// The gate.
    #[schema(pattern = "^[a-z][a-z0-9_-]*$")]
    pub step: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// Hand one's decision on a gate to another holder of its role (where the workflow allows it).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateRequest {
    /// The gate.
    #[schema(pattern = "^[a-z][a-z0-9_-]*$")]
    pub step: String,
    /// The person it goes to (a directory id).
    pub to: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// Post a status update (incidents).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostStatusRequest {
    /// The step whose cadence it answers (default: the one open step with a cadence).
    #[serde(default)]
    #[schema(pattern = "^[a-z][a-z0-9_-]*$")]
    pub step: Option<String>,
    /// The update.
    #[schema(schema_with = some_text)]
    pub text: String,
}

/// Send a signal a wait step may be waiting for.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalRequest {
    /// The signal's name.
    pub name: String,
}

/// Retry a step a rule stopped.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// The stopped step (the instance's `failure` names it).
    pub step: String,
}

/// Who is calling.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// Directory id.
    pub id: String,
    /// Roles held now.
    pub roles: Vec<String>,
    /// Team.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Whether they read and export everything.
    pub auditor: bool,
    /// The workflows the token reaches, when it was issued for some only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflows: Option<Vec<String>>,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if !key.trim().is_empty() && key.len() <= 255 => Ok(Some(key.trim().to_owned())),
        _ => Err(Problem::bad_request(
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
        )
        .at(Some("Idempotency-Key".into()), "format")),
    }
}

/// Runs a command as the caller, counted and traced.
/// Runs one command of `caller` on instance `id` in a tracing span, and counts its outcome and
/// latency; a refusal becomes its problem document.
async fn counted(
    state: &AppState,
    caller: &Caller,
    name: &'static str,
    id: &str,
    run: impl Future<Output = Result<Applied, RuntimeError>>,
) -> Result<Applied, Problem> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "command",
        command = name,
        instance = id,
        person = caller.id()
    );
    let result = run.instrument(span).await;
    let took = started.elapsed();
    match result {
        Ok(applied) => {
            let outcome = if applied.deduplicated {
                "deduplicated"
            } else {
                "ok"
            };
            state.metrics.command(name, outcome, took);
            Ok(applied)
        }
        Err(e) => {
            let problem = Problem::from(e);
            state.metrics.command(name, problem.slug, took);
            if problem.status == StatusCode::FORBIDDEN.as_u16() {
                state.metrics.refused("forbidden");
            }
            tracing::info!(command = name, instance = id, person = caller.id(), status = problem.status, detail = %problem.detail, "command refused");
            Err(problem)
        }
    }
}

/// Runs a command as the caller, with the request's `Idempotency-Key`.
async fn command(
    state: &AppState,
    caller: &Caller,
    id: &str,
    command: Command,
    headers: &HeaderMap,
) -> Result<Response, Problem> {
    let key = idempotency_key(headers)?;
    let name = command.name();
    let run = state
        .runtime
        .execute_as(id, command, &caller.actor, CHANNEL, key.as_deref());
    let applied = counted(state, caller, name, id, run).await?;
    Ok(answer(StatusCode::OK, &[], applied))
}

/// A command's answer: its status and result, marked `Idempotent-Replayed: true` when it is
/// the first answer given again to a retry.
fn answer(
    status: StatusCode,
    headers: &[(header::HeaderName, String)],
    applied: Applied,
) -> Response {
    let replayed = applied.deduplicated;
    let mut response = (status, Json(CommandResult::from(applied))).into_response();
    for (name, value) in headers {
        if let Ok(value) = header::HeaderValue::from_str(value) {
            response.headers_mut().insert(name.clone(), value);
        }
    }
    if replayed {
        response.headers_mut().insert(
            IDEMPOTENT_REPLAYED,
            header::HeaderValue::from_static("true"),
        );
    }
    response
}

/// The workflows loaded.
#[utoipa::path(get, path = "/api/v1/definitions", tag = "definitions",
    responses((status = 200, body = Vec<DefinitionSummary>)))]
pub async fn list_definitions(
    State(state): State<AppState>,
    _caller: Caller,
) -> Json<Vec<DefinitionSummary>> {
    Json(
        state
            .runtime
            .definitions()
            .iter()
            .map(|l| summary_of(l))
            .collect(),
    )
}

fn summary_of(loaded: &signoff_core::workflow::Loaded) -> DefinitionSummary {
    DefinitionSummary {
        id: loaded.definition.id.value.clone(),
        title: loaded.definition.title.clone(),
        description: loaded.definition.description.clone(),
        hash: loaded.hash.clone(),
    }
}

/// One workflow definition: its text and its parsed form.
#[utoipa::path(get, path = "/api/v1/definitions/{id}", tag = "definitions",
    params(("id" = String, Path, pattern = "^[a-z][a-z0-9-]*$", description = "The workflow id")),
    responses((status = 200, body = DefinitionDetail),
              (status = 404, description = "No workflow has this id", body = Problem, content_type = "application/problem+json")))]
pub async fn show_definition(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DefinitionDetail>, Problem> {
    let loaded = state
        .runtime
        .definition(&id)
        .ok_or_else(|| Problem::from(RuntimeError::UnknownWorkflow(id)))?;
    Ok(Json(DefinitionDetail {
        summary: summary_of(&loaded),
        source: loaded.source.clone(),
        definition: serde_json::to_value(&loaded.definition).unwrap_or(Value::Null),
    }))
}

/// Checks a definition's text: every problem with its line, column and a hint.
#[utoipa::path(post, path = "/api/v1/definitions/validate", tag = "definitions",
    request_body = ValidateRequest,
    responses((status = 200, body = ValidateResult)))]
pub async fn validate_definition(
    _caller: Caller,
    Body(request): Body<ValidateRequest>,
) -> Json<ValidateResult> {
    let file = request.file.as_deref().unwrap_or("definition.yaml");
    let problems: Vec<DefinitionProblem> =
        signoff_core::workflow::check_text(file, &request.source)
            .into_iter()
            .map(|p| DefinitionProblem {
                file: p.file,
                line: p.at.line,
                column: p.at.column,
                message: p.message,
                hint: p.hint,
            })
            .collect();
    Json(ValidateResult {
        valid: problems.is_empty(),
        problems,
    })
}

/// Instances the caller may see, newest first.
#[utoipa::path(get, path = "/api/v1/instances", tag = "instances", params(ListQuery),
    responses((status = 200, body = Vec<Object>)))]
pub async fn list_instances(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    if let Some(status) = &query.status
        && !LIST_STATUSES.contains(&status.as_str())
    {
        return Err(Problem::bad_request(format!(
            "status {status:?} is not one of {}",
            LIST_STATUSES.join(", ")
        ))
        .at(Some("status".into()), "one-of"));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit must be from 1 to {MAX_LIST}; {limit} is not"
        ))
        .at(Some("limit".into()), "range"));
    }
    let filter = InstanceFilter {
        workflow: query.workflow,
        status: query.status,
        requester: query.requester,
        limit,
    };
    let list = state.runtime.list_instances(&caller.actor, &filter).await?;
    Ok(Json(list).into_response())
}

/// Starts an instance. With an `Idempotency-Key`, retrying starts it once.
#[utoipa::path(post, path = "/api/v1/instances", tag = "instances",
    request_body = StartRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
        pattern = "^[\\t -~]*[!-~][\\t -~]*$",
        description = "Makes the start safe to retry: 1 to 255 ASCII characters, \
            not all spaces")),
    responses((status = 201, body = CommandResult, description = "Started; also the first answer replayed to a retry with the same \
                  Idempotency-Key and the same body, marked `Idempotent-Replayed: true`"),
              (status = 403, description = "The caller may not start this workflow", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No workflow has this id", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "The body is not the fields expected, or the \
                  Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json")))]
pub async fn start_instance(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(request): Body<StartRequest>,
) -> Result<Response, Problem> {
    let key = idempotency_key(&headers)?;
    let run = state.runtime.start_as(
        &request.workflow,
        Value::Object(request.input),
        &caller.actor,
        CHANNEL,
        key.as_deref(),
    );
    let applied = counted(&state, &caller, "start", &request.workflow, run).await?;
    let location = format!("/api/v1/instances/{}", applied.instance);
    Ok(answer(
        StatusCode::CREATED,
        &[(header::LOCATION, location)],
        applied,
    ))
}

fn view_of(
    runtime: &signoff_runtime::Runtime,
    entry: &signoff_runtime::Entry,
    at: Option<String>,
) -> InstanceView {
    let view = runtime.view_of(entry);
    InstanceView {
        state: serde_json::to_value(&entry.state).unwrap_or(Value::Null),
        view_hash: view.hash(),
        view: serde_json::to_value(&view).unwrap_or(Value::Null),
        title: entry.loaded.definition.title.clone(),
        at,
        undelivered: Vec::new(),
    }
}

/// An instance as it is now.
#[utoipa::path(get, path = "/api/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path, pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", description = "The instance id (a UUID)")),
    responses((status = 200, body = InstanceView),
              (status = 403, description = "The caller may not read this instance", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No instance has this id", body = Problem, content_type = "application/problem+json")))]
pub async fn show_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InstanceView>, Problem> {
    let entry = state.runtime.load_for(&caller.actor, &id, CHANNEL).await?;
    let mut view = view_of(&state.runtime, &entry, None);
    view.undelivered = state.runtime.undelivered(&id).await?;
    Ok(Json(view))
}

/// An instance as it was at a moment in the past: its events up to then, replayed.
#[utoipa::path(get, path = "/api/v1/instances/{id}/state", tag = "instances",
    params(("id" = String, Path, pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", description = "The instance id (a UUID)"), AtQuery),
    responses((status = 200, body = InstanceView),
              (status = 403, description = "The caller may not read this instance", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No instance has this id, or it did not exist yet \
                  at that moment", body = Problem, content_type = "application/problem+json")))]
pub async fn state_at(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<AtQuery>,
) -> Result<Json<InstanceView>, Problem> {
    let at = Timestamp::parse_rfc3339(&query.at)
        .map_err(|e| Problem::bad_request(format!("at: {e}")).at(Some("at".into()), "rfc3339"))?;
    state.runtime.load_for(&caller.actor, &id, CHANNEL).await?;
    let entry = state.runtime.state_at(&id, at).await?;
    Ok(Json(view_of(&state.runtime, &entry, Some(at.to_rfc3339()))))
}

/// Who did what, when, and through which channel.
#[utoipa::path(get, path = "/api/v1/instances/{id}/timeline", tag = "instances",
    params(("id" = String, Path, pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", description = "The instance id (a UUID)")),
    responses((status = 200, body = Vec<Object>),
              (status = 403, description = "The caller may not read this instance", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No instance has this id", body = Problem, content_type = "application/problem+json")))]
pub async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    state.runtime.load_for(&caller.actor, &id, CHANNEL).await?;
    let lines: Vec<Line> = state
        .runtime
        .instance_events(&id)
        .await?
        .iter()
        .map(|(record, event)| Line::new(record, event))
        .collect();
    Ok(Json(lines).into_response())
}

macro_rules! command_route {
    ($(#[$doc:meta])* $name:ident, $path:literal, $body:ty, |$b:ident| $command:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "commands",
            request_body = $body,
            params(("id" = String, Path, pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", description = "The instance id (a UUID)"),
                   ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
                    pattern = "^[\\t -~]*[!-~][\\t -~]*$",
                    description = "Makes the command safe to retry: 1 to 255 ASCII characters, \
            not all spaces")),
            responses((status = 200, body = CommandResult),
                      (status = 403, description = "The caller may not do this here", body = Problem, content_type = "application/problem+json"),
                      (status = 404, description = "No instance, step or task has this id", body = Problem, content_type = "application/problem+json"),
                      (status = 409, description = "The step is not open (done, not reached, \
                          or the instance ended), or another command changed it meanwhile", body = Problem, content_type = "application/problem+json"),
                      (status = 422, description = "The body is not the fields expected, the \
                          workflow refuses its values (a form's fields, a justification), or the \
                          Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json")))]
        pub async fn $name(
            State(state): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            headers: HeaderMap,
            Body($b): Body<$body>,
        ) -> Result<Response, Problem> {
            command(&state, &caller, &id, $command, &headers).await
        }
    };
}

command_route!(
    /// Fills in a form step.
    submit, "/api/v1/instances/{id}/submit", SubmitRequest,
    |b| Command::Submit { step: b.step, values: b.values }
);
command_route!(
    /// Approves or rejects at a gate, with a justification.
    decide, "/api/v1/instances/{id}/decide", DecideRequest,
    |b| Command::Decide { step: b.step, verdict: b.verdict, justification: b.justification, shown: b.shown }
);
command_route!(
    /// Takes back the caller's decision on a gate that is still open (where the workflow
    /// allows it).
    revoke, "/api/v1/instances/{id}/revoke", RevokeRequest,
    |b| Command::Revoke { step: b.step, reason: b.reason }
);
command_route!(
    /// Hands the caller's decision on a gate to another holder of its role (where the workflow
    /// allows it).
    delegate, "/api/v1/instances/{id}/delegate", DelegateRequest,
    |b| Command::Delegate { step: b.step, to: b.to, reason: b.reason }
);
command_route!(
    /// Posts a status update (incidents): it answers the cadence of the step named, or of the
    /// one open step with a cadence.
    post_status, "/api/v1/instances/{id}/post-status", PostStatusRequest,
    |b| Command::PostStatus { step: b.step, text: b.text }
);
command_route!(
    /// Sends a signal a wait step may be waiting for (by those its `by:` names).
    signal, "/api/v1/instances/{id}/signal", SignalRequest,
    |b| Command::Signal { name: b.name }
);
command_route!(
    /// Completes a task, or marks it as not being done (with the reason as note).
    complete, "/api/v1/instances/{id}/complete", CompleteRequest,
    |b| Command::Complete { step: b.step, item: b.item, status: b.status, note: b.note }
);
command_route!(
    /// Adds a comment.
    comment, "/api/v1/instances/{id}/comment", CommentRequest,
    |b| Command::Comment { text: b.text }
);
command_route!(
    /// Cancels the instance (its requester; an operator too once a rule stopped one of its
    /// steps).
    cancel, "/api/v1/instances/{id}/cancel", CancelRequest,
    |b| Command::Cancel { reason: b.reason }
);
command_route!(
    /// Retries a step a rule stopped (`signoff.step.failed`), under the workflow's current
    /// definition, which the instance pins from then on (holders of the `operator` role only).
    /// If the rule fails again, another `signoff.step.failed` is recorded.
    retry, "/api/v1/instances/{id}/retry", RetryRequest,
    |b| Command::Retry { step: b.step }
);

/// What waits for the caller: forms, decisions and tasks, with deadlines.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "people",
    responses((status = 200, body = Vec<Object>)))]
pub async fn inbox(State(state): State<AppState>, caller: Caller) -> Response {
    Json(state.runtime.inbox_of(&caller.actor)).into_response()
}

/// The caller, as the directory knows them now.
#[utoipa::path(get, path = "/api/v1/me", tag = "people", responses((status = 200, body = Me)))]
pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        auditor: signoff_core::access::may_audit(&caller.actor),
        id: caller.actor.id,
        roles: caller.actor.roles.into_iter().collect(),
        team: caller.actor.team,
        workflows: caller.actor.workflows.map(|w| w.into_iter().collect()),
    })
}

/// The log as JSON Lines of CloudEvents: one instance's events (for whoever may see it), or
/// the whole log (auditors).
#[utoipa::path(get, path = "/api/v1/export", tag = "audit", params(ExportQuery),
    responses((status = 200, content_type = "application/jsonl", body = String),
              (status = 403, description = "The caller may not read this instance, or the whole \
                  log (auditors only)", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No instance has this id", body = Problem, content_type = "application/problem+json")))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ExportQuery>,
) -> Result<Response, Problem> {
    let rt = &state.runtime;
    let body = if let Some(id) = &query.instance {
        rt.load_for(&caller.actor, id, CHANNEL).await?;
        let mut text = String::new();
        for (record, _) in rt.instance_events(id).await? {
            text.push_str(&record.to_cloudevent_json());
            text.push('\n');
        }
        HttpBody::from(text)
    } else {
        rt.check_audit(&caller.actor, "export", CHANNEL).await?;
        let lines = signoff_store::read_all_stream(rt.log().clone(), 0).map(|record| {
            record.map(|r| {
                let mut line = r.to_cloudevent_json();
                line.push('\n');
                line
            })
        });
        HttpBody::from_stream(lines)
    };
    Ok(([(header::CONTENT_TYPE, "application/jsonl")], body).into_response())
}

/// Walks the hash chain: intact, or the first broken link (auditors).
#[utoipa::path(get, path = "/api/v1/verify", tag = "audit",
    responses((status = 200, body = Object),
              (status = 403, description = "Only auditors verify the log", body = Problem, content_type = "application/problem+json")))]
pub async fn verify(State(state): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    let rt = &state.runtime;
    rt.check_audit(&caller.actor, "verify", CHANNEL).await?;
    let report = signoff_store::verify(rt.log().clone(), 1)
        .await
        .map_err(|e| Problem::from(RuntimeError::from(e)))?;
    Ok(Json(json!({
        "intact": report.is_intact(),
        "report": report,
    }))
    .into_response())
}

/// Which notifications to list.
#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationsQuery {
    /// Only those to this person. Without `instance`: the caller's own by default; another
    /// person's are for auditors.
    #[param(min_length = 1, max_length = 200)]
    pub person: Option<String>,
    /// Only those of this instance (for whoever may read it).
    #[param(pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub instance: Option<String>,
}

/// The notifications recorded in the log (who was told what, when and why), oldest first:
/// one instance's, or one person's.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "people", params(NotificationsQuery),
    responses((status = 200, body = Vec<Object>),
              (status = 403, description = "The caller may not read this instance, or another \
                  person's notifications (auditors only)", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No instance has this id, or the person is not one \
                  of the directory", body = Problem, content_type = "application/problem+json")))]
pub async fn notifications(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<NotificationsQuery>,
) -> Result<Response, Problem> {
    let rt = &state.runtime;
    let mut list = if let Some(id) = &query.instance {
        rt.load_for(&caller.actor, id, CHANNEL).await?;
        rt.notifications_of(id).await?
    } else {
        let person = query.person.as_deref().unwrap_or(caller.id());
        if person != caller.id() {
            rt.check_audit(&caller.actor, "notifications of another person", CHANNEL)
                .await?;
        }
        let mut list = rt.notifications(Some(person)).await?;
        // A token for some workflows tells of those only.
        if caller.actor.workflows.is_some() {
            let mut reached = std::collections::HashMap::new();
            for n in &list {
                if !reached.contains_key(&n.instance) {
                    let workflow = rt.load(&n.instance).await?.state.workflow;
                    reached.insert(n.instance.clone(), caller.actor.may_touch(&workflow));
                }
            }
            list.retain(|n| reached.get(&n.instance).copied().unwrap_or(false));
        }
        list
    };
    if let Some(person) = &query.person {
        // Somebody the directory does not know is a typo, not somebody told nothing: the
        // parameter names nothing (404).
        rt.actor(person)
            .map_err(|e| Problem::not_found(e.to_string()))?;
        list.retain(|n| n.to.contains(person));
    }
    Ok(Json(list).into_response())
}

/// The largest evidence file taken (the rest of the API takes small JSON bodies).
pub const MAX_EVIDENCE_BYTES: usize = 64 * 1024 * 1024;

/// What is wrong with `name` as the name evidence is shown under (as [`EvidenceQuery`]'s
/// pattern says), if anything.
#[must_use]
pub fn evidence_name_problem(name: &str) -> Option<&'static str> {
    let barred = |c: char| c == '/' || c == '\\' || c <= '\u{1f}' || c == '\u{7f}';
    if name.chars().count() > 255 {
        Some("a name has at most 255 characters")
    } else if name.chars().any(barred) {
        Some("a name has no slash, backslash or control character")
    } else if name.chars().all(|c| c == ' ') {
        Some("a name is not only spaces")
    } else {
        None
    }
}

/// The name evidence is shown under.
#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EvidenceQuery {
    /// The name it is shown under (a file name: `plan.txt`): up to 255 characters, no slash,
    /// backslash or control character, not only spaces.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = "^[^/\\\\\\u0000-\\u001f\\u007f]*[^/\\\\\\u0000-\\u0020\\u007f][^/\\\\\\u0000-\\u001f\\u007f]*$"
    )]
    pub name: String,
}

/// Attaches a file as evidence (a plan output, a diff, a report): the body is the file, its
/// `Content-Type` its media type. It is stored by its SHA-256 and the hash recorded in the log
/// (by the requester or someone an open step waits for). Not idempotent by key: the same file
/// attached twice is recorded twice, under one stored copy.
#[utoipa::path(post, path = "/api/v1/instances/{id}/evidence", tag = "commands",
    params(("id" = String, Path, pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", description = "The instance id (a UUID)"),
           EvidenceQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = CommandResult),
              (status = 403, description = "The caller may not attach to this instance", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No instance has this id", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "The instance ended", body = Problem, content_type = "application/problem+json"),
              (status = 413, description = "Larger than 64 MiB", body = Problem, content_type = "application/problem+json")))]
pub async fn attach(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<EvidenceQuery>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Problem> {
    let content =
        body.map_err(|e| Problem::new(e.status(), "invalid-body", e.body_text()).at(None, "size"))?;
    if content.is_empty() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "the body is the file to attach, and it is empty",
        )
        .at(None, "required"));
    }
    if evidence_name_problem(&query.name).is_some() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-parameter",
            "the evidence needs a name that is a file name: up to 255 characters, no slash, \
             backslash or control character, not only spaces",
        )
        .at(Some("name".to_owned()), "pattern"));
    }
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    let run = state.runtime.attach(
        &id,
        &query.name,
        media_type,
        &content,
        &caller.actor,
        CHANNEL,
    );
    let applied = counted(&state, &caller, "attach", &id, run).await?;
    Ok(answer(StatusCode::OK, &[], applied))
}

/// The API's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/definitions", get(list_definitions))
        .route("/api/v1/definitions/validate", post(validate_definition))
        .route("/api/v1/definitions/{id}", get(show_definition))
        .route(
            "/api/v1/instances",
            get(list_instances).post(start_instance),
        )
        .route("/api/v1/instances/{id}", get(show_instance))
        .route("/api/v1/instances/{id}/state", get(state_at))
        .route("/api/v1/instances/{id}/timeline", get(timeline))
        .route("/api/v1/instances/{id}/submit", post(submit))
        .route("/api/v1/instances/{id}/decide", post(decide))
        .route("/api/v1/instances/{id}/revoke", post(revoke))
        .route("/api/v1/instances/{id}/delegate", post(delegate))
        .route("/api/v1/instances/{id}/post-status", post(post_status))
        .route("/api/v1/instances/{id}/signal", post(signal))
        .route("/api/v1/instances/{id}/complete", post(complete))
        .route("/api/v1/instances/{id}/comment", post(comment))
        .route("/api/v1/instances/{id}/cancel", post(cancel))
        .route("/api/v1/instances/{id}/retry", post(retry))
        .route(
            "/api/v1/instances/{id}/evidence",
            post(attach).layer(axum::extract::DefaultBodyLimit::max(MAX_EVIDENCE_BYTES)),
        )
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/inbox", get(inbox))
        .route("/api/v1/me", get(me))
        .route("/api/v1/export", get(export))
        .route("/api/v1/verify", get(verify))
        .route("/healthz", get(|| async { "ok" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_values_are_the_ones_the_server_reads() {
        for verdict in VERDICTS {
            assert!(
                serde_json::from_value::<Verdict>(json!(verdict)).is_ok(),
                "{verdict}"
            );
        }
        for status in TASK_STATUSES {
            assert!(
                serde_json::from_value::<TaskStatus>(json!(status)).is_ok(),
                "{status}"
            );
        }
        assert!(serde_json::from_value::<Verdict>(json!("maybe")).is_err());
        assert!(serde_json::from_value::<TaskStatus>(json!("later")).is_err());
    }
}
