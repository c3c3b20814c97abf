//! The OpenAPI 3.1 document, generated from the handlers' annotations, and a readable page of it.

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::Value;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Parameter;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::{api, events, problem};

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "signoff API",
        description = "Event-sourced workflows with approval bots: definitions, instances, \
                       commands, inbox, timeline, export and verification of the hash-chained log. \
                       Every request carries `Authorization: Bearer <token>` \
                       (`signoff token issue PERSON`). Errors are RFC 9457 problem documents."
    ),
    paths(
        api::list_definitions, api::show_definition, api::validate_definition,
        api::list_instances, api::start_instance, api::show_instance, api::state_at,
        api::timeline, api::submit, api::decide, api::revoke, api::delegate, api::complete,
        api::post_status, api::comment, api::signal, api::cancel,
        api::retry, api::attach, api::inbox, api::notifications, api::me, api::export,
        api::verify, events::events,
    ),
    components(schemas(problem::Problem, problem::FieldError, events::StreamEvent)),
    modifiers(&BearerAuth, &CommonResponses),
    security(("bearer" = [])),
    tags(
        (name = "definitions", description = "Workflow definitions"),
        (name = "instances", description = "Instances: start, list, show, state at a moment, timeline"),
        (name = "commands", description = "What people do on an instance"),
        (name = "people", description = "The caller and their inbox"),
        (name = "audit", description = "Export, verification and the live event stream"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// The answers any operation can give besides its own, added to every operation that does not
/// describe them itself, so that a new route is documented with them without repeating them:
/// 401 (every route takes a token), 500, and, by what the operation takes, 400 (a parameter,
/// header or body that cannot be read), 404 (an id in the path that names nothing) and
/// 413, 415, 422 (a body too large, not JSON, or not the fields expected). Each is a problem
/// document (`application/problem+json`, schema `Problem`).
struct CommonResponses;

/// Which operations an answer of [`CommonResponses`] applies to.
#[derive(Clone, Copy)]
enum Takes {
    /// Every operation.
    Anything,
    /// Those with parameters (path, query, header) or a body.
    Input,
    /// Those with an id in the path.
    PathId,
    /// Those with a JSON body.
    Body,
}

impl CommonResponses {
    /// Each answer: its status, what it means, and which operations can give it.
    const ANSWERS: [(&'static str, &'static str, Takes); 7] = [
        (
            "400",
            "The request cannot be read: a malformed parameter, header or JSON body",
            Takes::Input,
        ),
        (
            "401",
            "No token, or an unknown, expired or revoked one",
            Takes::Anything,
        ),
        ("404", "Nothing has this id", Takes::PathId),
        (
            "413",
            "The body is larger than the server takes (1 MiB)",
            Takes::Body,
        ),
        (
            "415",
            "The body is not sent as `application/json`",
            Takes::Body,
        ),
        (
            "422",
            "The body is not the fields expected, or the engine refused its values",
            Takes::Body,
        ),
        (
            "500",
            "The server failed; the error is in its log",
            Takes::Anything,
        ),
    ];
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let has_path_id = path.contains('{');
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let RefOr::T(parameter) = parameter {
                        not_null(parameter);
                    }
                }
                // OpenAPI requires a description on every response: a success described by
                // nothing but its body is named by its status.
                for (status, response) in &mut operation.responses.responses {
                    if let RefOr::T(response) = response
                        && response.description.is_empty()
                    {
                        response.description = status
                            .parse::<u16>()
                            .ok()
                            .and_then(|code| StatusCode::from_u16(code).ok())
                            .and_then(|code| code.canonical_reason())
                            .unwrap_or("The answer")
                            .to_owned();
                    }
                }
                let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let has_body = operation.request_body.is_some();
                for (status, description, takes) in Self::ANSWERS {
                    let applies = match takes {
                        Takes::Anything => true,
                        Takes::Input => has_parameters || has_body,
                        Takes::PathId => has_path_id,
                        Takes::Body => has_body,
                    };
                    if !applies {
                        continue;
                    }
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_response(description).into());
                }
            }
        }
    }
}

/// A parameter is text on the wire and is never `null`: an optional one (`Option<T>`, which
/// utoipa documents as nullable when it is a header) is absent, as `required: false` says.
fn not_null(parameter: &mut Parameter) {
    if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut()
        && let SchemaType::Array(types) = &object.schema_type
    {
        let types: Vec<Type> = types
            .iter()
            .filter(|t| **t != Type::Null)
            .cloned()
            .collect();
        object.schema_type = match types.as_slice() {
            [one] => SchemaType::Type(one.clone()),
            _ => SchemaType::Array(types),
        };
    }
}

/// A response whose body is a problem document.
fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            problem::PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// The document as served, generated once: it only changes with the binary.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_default());

/// The readable page, rendered once from the document.
static DOCS: LazyLock<String> = LazyLock::new(render_docs);

async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

async fn docs() -> Html<&'static str> {
    Html(DOCS.as_str())
}

/// A plain page listing every operation with its parameters and answers, from the document.
fn render_docs() -> String {
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let text = |v: &Value| escape(v.as_str().unwrap_or_default());
    let mut out = String::from(
        "<!doctype html><html lang=en><meta charset=utf-8><title>signoff API</title>\
         <style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;\
         padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}\
         h2{margin-top:2rem;border-bottom:1px solid #ddd}\
         .m{display:inline-block;min-width:4em;font-weight:bold}</style>",
    );
    let _ = write!(
        out,
        "<h1>{}</h1><p>{}</p><p>The machine-readable document: \
         <a href=\"/api/openapi.json\"><code>/api/openapi.json</code></a> (OpenAPI {}).</p>",
        text(&doc["info"]["title"]),
        text(&doc["info"]["description"]),
        text(&doc["openapi"]),
    );
    let empty = serde_json::Map::new();
    for (path, item) in doc["paths"].as_object().unwrap_or(&empty) {
        for (method, op) in item.as_object().unwrap_or(&empty) {
            let _ = write!(
                out,
                "<h2><span class=m>{}</span> <code>{}</code></h2><p>{}</p>",
                method.to_uppercase(),
                escape(path),
                [text(&op["summary"]), text(&op["description"])].join(" "),
            );
            if let Some(params) = op["parameters"].as_array() {
                out.push_str("<ul>");
                for p in params {
                    let _ = write!(
                        out,
                        "<li><code>{}</code> ({}): {}</li>",
                        text(&p["name"]),
                        text(&p["in"]),
                        text(&p["description"])
                    );
                }
                out.push_str("</ul>");
            }
            if op.get("requestBody").is_some() {
                out.push_str("<p>Takes a JSON body (see the document for its schema).</p>");
            }
            let codes: Vec<&str> = op["responses"]
                .as_object()
                .map(|r| r.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let _ = write!(out, "<p>Answers: {}</p>", escape(&codes.join(", ")));
        }
    }
    out
}

/// Escapes text for HTML. Unlike `minijinja::HtmlEscape` it leaves `/` as it is, so paths read
/// the same in the page's source.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `/api/openapi.json` and `/api/docs`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(document))
        .route("/api/docs", get(docs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of the document, as `(method path, operation)`.
    fn operations(doc: &Value) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                out.push((format!("{method} {path}"), op.clone()));
            }
        }
        out
    }

    #[test]
    fn every_operation_documents_the_problems_it_can_answer() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        let all = operations(&doc);
        assert!(all.len() > 15, "{} operations", all.len());
        for (name, op) in all {
            let mut expected = vec!["401", "500"];
            if op.get("requestBody").is_some() {
                expected.extend(["400", "413", "415", "422"]);
            }
            if name.contains('{') {
                expected.push("404");
            }
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{name} describes its {status} answer"
                );
            }
            for status in expected {
                let problem = &op["responses"][status]["content"][problem::PROBLEM_JSON];
                assert_eq!(
                    problem["schema"]["$ref"], "#/components/schemas/Problem",
                    "{name} documents {status} as a problem document"
                );
            }
        }
    }
}
