//! The pages behind an email's decision links (`/links/<token>`). Opening one (GET or HEAD, as
//! every mail scanner does) shows what it would decide and changes nothing; only posting its
//! form, with a justification the person typed, decides (see [`signoff_runtime::links`]).
//! The token is the credential: no sign-in, and nothing in it is trusted until its signature
//! holds.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use signoff_core::engine::Verdict;
use signoff_runtime::links::{LinkRefusal, LinkUse, OpenLink, Used};

use super::{render, when};
use crate::AppState;

/// A refusal's page: which refusal, and that nothing was decided.
fn refused(refusal: &LinkRefusal, instance: Option<&str>) -> Response {
    let status = match refusal {
        LinkRefusal::Forged(_) | LinkRefusal::NotAllowed(_) => StatusCode::FORBIDDEN,
        LinkRefusal::Expired { .. } => StatusCode::GONE,
        _ => StatusCode::CONFLICT,
    };
    let mut response = render(
        "link.html",
        json!({
            "refusal": refusal.to_string(),
            "refusal_kind": refusal.kind(),
            "instance": instance,
        }),
    );
    *response.status_mut() = status;
    private(response)
}

/// Links are personal: never cached, never sent on as a referrer.
fn private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    response
}

fn not_set_up() -> Response {
    refused(
        &LinkRefusal::NotAllowed(
            "decision links are not set up on this server (it has no link key)".to_owned(),
        ),
        None,
    )
}

fn verb(verdict: Verdict) -> &'static str {
    verdict.as_str()
}

/// The confirmation page, the justification typed so far and an error next to it.
fn confirmation(
    token: &str,
    open: &OpenLink,
    justification: &str,
    error: Option<&str>,
) -> Response {
    let claims = &open.claims;
    let mut response = render(
        "link.html",
        json!({
            "token": token,
            "verb": verb(claims.verdict),
            "verdict": claims.verdict.as_str(),
            "title": open.view.title,
            "name": open.name,
            "person": claims.person,
            "instance": claims.instance,
            "view": open.view,
            "view_hash": open.view.hash(),
            "changes": open.changes,
            "min_justification": open.min_justification,
            "prompt": open.prompt,
            "justification": justification,
            "error": error,
            "expires": when(claims.expires),
            "about": open.about,
            "deadline": open.about.deadline.map(when),
        }),
    );
    if error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    private(response)
}

fn failed(e: &signoff_runtime::RuntimeError) -> Response {
    tracing::error!(error = %e, "a decision link failed");
    let mut response = render(
        "link.html",
        json!({ "refusal": "signoff could not read this request just now; try the link again in a moment", "refusal_kind": "error" }),
    );
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    private(response)
}

/// GET and HEAD: what the link would do. Reads only.
pub async fn open(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(key) = &state.link_key else {
        return not_set_up();
    };
    match state.runtime.open_link(key, &token).await {
        Ok(Ok(open)) => confirmation(&token, &open, "", None),
        Ok(Err(refusal)) => refused(&refusal, None),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    verdict: Option<Verdict>,
    #[serde(default)]
    justification: String,
    #[serde(default)]
    shown: Option<String>,
}

/// POST: decides, with the justification typed, if the link may still be used.
pub async fn use_link(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<LinkForm>,
) -> Response {
    let Some(key) = &state.link_key else {
        return not_set_up();
    };
    let justification = form.justification.clone();
    let used = LinkUse {
        verdict: form.verdict,
        justification: form.justification,
        shown: form.shown.filter(|s| !s.is_empty()),
    };
    match state.runtime.use_link(key, &token, &used).await {
        Ok(Used::Decided(applied, claims)) => {
            let title = match state.runtime.load(&applied.instance).await {
                Ok(entry) => state.runtime.view_of(&entry).title,
                Err(_) => applied.instance.clone(),
            };
            private(render(
                "link.html",
                json!({
                    "decided": true,
                    "past": claims.verdict.past(),
                    "title": title,
                    "justification": justification.trim(),
                    "link_id": claims.id,
                    "instance": applied.instance,
                }),
            ))
        }
        Ok(Used::Again(error)) => match state.runtime.open_link(key, &token).await {
            Ok(Ok(open)) => confirmation(&token, &open, &justification, Some(&error)),
            Ok(Err(refusal)) => refused(&refusal, None),
            Err(e) => failed(&e),
        },
        Ok(Used::Refused(refusal)) => {
            state.metrics.refused("decision link");
            let instance = signoff_core::link::verify(&token, key)
                .ok()
                .map(|c| c.instance);
            refused(&refusal, instance.as_deref())
        }
        Err(e) => failed(&e),
    }
}
