//! Errors as RFC 9457 problem documents (`application/problem+json`): a status, a title, a
//! sentence for the person, and, for bad input, the field and the rule it broke.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use signoff_core::InvalidEvent;
use signoff_core::engine::RejectionKind;
use signoff_runtime::RuntimeError;
use signoff_store::StoreError;
use utoipa::ToSchema;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (relative to the server): `/problems/<slug>`.
    #[serde(rename = "type", serialize_with = "problem_uri")]
    #[schema(value_type = String)]
    pub slug: &'static str,
    /// A short summary of the kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this request, as a sentence for a person.
    pub detail: String,
    /// The field at fault, when one is (a form field, a body field, a query parameter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The rule it broke (`required`, `type`, `unknown-field`, `forbidden`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    /// Every problem, for a request with several (a workflow definition).
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    pub errors: Box<[FieldError]>,
}

/// One of several problems.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FieldError {
    /// Where (a field, or `file:line:column`).
    pub field: String,
    /// What is wrong.
    pub detail: String,
}

impl Problem {
    /// A problem of `status`, with a kind slug (`not-found`…) and a sentence.
    pub fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self {
            slug,
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            rule: None,
            errors: Box::default(),
        }
    }

    /// Names the field at fault and the rule it broke.
    #[must_use]
    pub fn at(mut self, field: Option<String>, rule: &'static str) -> Self {
        self.field = field;
        self.rule = Some(rule);
        self
    }

    /// 400: the request cannot be read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 404: nothing there.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 500, without the details (they are in the server's log).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; the error is in its log",
        )
    }
}

fn problem_uri<S: serde::Serializer>(slug: &&'static str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("/problems/{slug}"))
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"signoff\""),
            );
        }
        response
    }
}

impl From<RuntimeError> for Problem {
    fn from(e: RuntimeError) -> Self {
        match &e {
            RuntimeError::Rejected(rejection) => {
                let (status, slug, rule) = match rejection.kind {
                    RejectionKind::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "forbidden"),
                    RejectionKind::Invalid => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "invalid", "invalid")
                    }
                    RejectionKind::Closed => (StatusCode::CONFLICT, "closed", "closed"),
                    RejectionKind::NotFound => (StatusCode::NOT_FOUND, "not-found", "not-found"),
                };
                Self::new(status, slug, rejection.message.clone()).at(rejection.field.clone(), rule)
            }
            RuntimeError::UnknownWorkflow(_)
            | RuntimeError::UnknownInstance(_)
            | RuntimeError::NotYet(..)
            | RuntimeError::UnknownToken(_) => Self::not_found(e.to_string()),
            RuntimeError::UnknownPerson(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-person",
                e.to_string(),
            ),
            RuntimeError::Invalid(problems) => {
                let mut problem = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-definition",
                    format!("{} problem(s)", problems.len()),
                );
                problem.errors = problems
                    .iter()
                    .map(|p| FieldError {
                        field: format!("{}:{}:{}", p.file, p.at.line, p.at.column),
                        detail: p.message.clone(),
                    })
                    .collect();
                problem
            }
            RuntimeError::IdempotencyKeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                e.to_string(),
            )
            .at(Some("Idempotency-Key".into()), "idempotency-key-reused"),
            RuntimeError::Contended(_) => {
                Self::new(StatusCode::CONFLICT, "contended", e.to_string())
            }
            RuntimeError::Store(store) if store_refusal(store).is_some() => {
                let (status, slug) =
                    store_refusal(store).unwrap_or((StatusCode::UNPROCESSABLE_ENTITY, "invalid"));
                Self::new(status, slug, format!("{e}; nothing was recorded")).at(None, slug)
            }
            RuntimeError::Store(_) | RuntimeError::Io { .. } | RuntimeError::Corrupt { .. } => {
                tracing::error!(error = %e, "request failed");
                Self::internal()
            }
        }
    }
}

/// The store's refusals of what a client sent (data over the size limit, a malformed batch):
/// the client's fault, so 413 or 422 with the store's sentence, not a 500 that sends the person
/// to the server's log.
fn store_refusal(error: &StoreError) -> Option<(StatusCode, &'static str)> {
    match error {
        StoreError::Invalid {
            source: InvalidEvent::DataTooLarge { .. },
            ..
        } => Some((StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large")),
        StoreError::Invalid { .. } | StoreError::InvalidBatch(_) => {
            Some((StatusCode::UNPROCESSABLE_ENTITY, "invalid"))
        }
        _ => None,
    }
}

impl From<JsonRejection> for Problem {
    fn from(e: JsonRejection) -> Self {
        let detail = e.body_text();
        match e {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as JSON, with `Content-Type: application/json`",
            ),
            JsonRejection::JsonDataError(_) => {
                let (field, rule) = serde_field(&detail);
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body", detail).at(field, rule)
            }
            JsonRejection::JsonSyntaxError(_) => Self::bad_request(detail).at(None, "json-syntax"),
            JsonRejection::BytesRejection(_) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!(
                    "the body is larger than the {} bytes the server takes",
                    crate::MAX_BODY_BYTES
                ),
            ),
            _ => Self::bad_request(detail),
        }
    }
}

impl From<QueryRejection> for Problem {
    fn from(e: QueryRejection) -> Self {
        let detail = e.body_text();
        let (field, rule) = serde_field(&detail);
        Self::bad_request(detail).at(field, rule)
    }
}

impl From<PathRejection> for Problem {
    fn from(e: PathRejection) -> Self {
        Self::bad_request(e.body_text())
    }
}

/// The field and rule a serde message names: "unknown field `x`", "missing field `x`",
/// "x: invalid type…".
fn serde_field(detail: &str) -> (Option<String>, &'static str) {
    let quoted = || detail.split('`').nth(1).map(str::to_owned);
    if detail.contains("unknown field") {
        (quoted(), "unknown-field")
    } else if detail.contains("missing field") {
        (quoted(), "required")
    } else if detail.contains("unknown variant") {
        // "x: unknown variant `y`, expected …": the field is before the colon.
        (path_before_colon(detail), "one-of")
    } else if detail.contains("invalid type") || detail.contains("invalid value") {
        (path_before_colon(detail), "type")
    } else {
        (None, "invalid")
    }
}

/// `a.b` from "Failed to deserialize the JSON body into the target type: a.b: invalid type…".
fn path_before_colon(detail: &str) -> Option<String> {
    let parts: Vec<&str> = detail.split(": ").collect();
    parts
        .iter()
        .rev()
        .skip(1)
        .find(|p| !p.contains(' ') && !p.is_empty())
        .map(|p| (*p).to_owned())
}

/// The answer to a path no route has.
pub async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("there is nothing at {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_the_store_refuses_is_the_client_s_fault() {
        let too_large = RuntimeError::Store(StoreError::Invalid {
            event_index: Some(0),
            source: InvalidEvent::DataTooLarge {
                size: 2_000_000,
                limit: 1_048_576,
            },
        });
        let problem = Problem::from(too_large);
        assert_eq!(problem.status, 413, "{problem:?}");
        assert!(
            problem.detail.contains("the limit is 1048576 bytes"),
            "{problem:?}"
        );
        let batch = Problem::from(RuntimeError::Store(StoreError::InvalidBatch(
            "1001 events in one append; the limit is 1000".into(),
        )));
        assert_eq!(batch.status, 422, "{batch:?}");
        let failed = Problem::from(RuntimeError::Store(StoreError::Closed));
        assert_eq!(failed.status, 500, "{failed:?}");
    }

    #[test]
    fn serde_messages_name_the_field_and_rule() {
        assert_eq!(
            serde_field("Failed to deserialize: unknown field `colour`, expected one of `a`"),
            (Some("colour".into()), "unknown-field")
        );
        assert_eq!(
            serde_field("Failed to deserialize: missing field `step` at line 1 column 2"),
            (Some("step".into()), "required")
        );
        assert_eq!(
            serde_field(
                "Failed to deserialize the JSON body into the target type: verdict: unknown \
                 variant `maybe`, expected `approve` or `reject` at line 1 column 30"
            ),
            (Some("verdict".into()), "one-of")
        );
    }
}
