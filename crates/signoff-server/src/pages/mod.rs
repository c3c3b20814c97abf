//! The web pages: sign in, my inbox, instances, an instance (fill its form, decide, tick tasks,
//! comment, its timeline updating live), start a workflow, the auditor's view of a moment in
//! the past, and charts.
//!
//! Pages are rendered on the server (minijinja templates under `templates/`) and work without
//! JavaScript; one small script on the instance page follows the live event stream. A person
//! signs in by pasting an API token; it is kept in an `HttpOnly`, `SameSite=Strict` cookie, so
//! another site cannot post a form with it. Commands from the pages are recorded with the `web`
//! channel. A refused form is shown again with the error next to the field and what was typed.

mod charts;
mod doors;
mod forms;
mod links;
mod views;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use serde::Serialize;
use signoff_core::Timestamp;
use signoff_core::engine::Actor;

use crate::AppState;
use crate::auth::{COOKIE, presented_secret};

/// The channel commands from the pages are recorded with.
pub const CHANNEL: &str = "web";

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("signin.html", include_str!("../../templates/signin.html")),
        ("inbox.html", include_str!("../../templates/inbox.html")),
        (
            "instances.html",
            include_str!("../../templates/instances.html"),
        ),
        (
            "instance.html",
            include_str!("../../templates/instance.html"),
        ),
        ("fields.html", include_str!("../../templates/fields.html")),
        ("view.html", include_str!("../../templates/view.html")),
        (
            "timeline.html",
            include_str!("../../templates/timeline.html"),
        ),
        ("start.html", include_str!("../../templates/start.html")),
        ("audit.html", include_str!("../../templates/audit.html")),
        ("charts.html", include_str!("../../templates/charts.html")),
        ("error.html", include_str!("../../templates/error.html")),
        ("link.html", include_str!("../../templates/link.html")),
    ] {
        if let Err(e) = env.add_template(name, source) {
            // The templates are part of the binary; a broken one is caught by the tests.
            tracing::error!(template = name, error = %e, "a page template does not parse");
        }
    }
    env
});

/// The signed-in person, for pages: without a valid token, the answer is the sign-in page.
#[derive(Clone)]
pub struct Viewer {
    /// Who.
    pub actor: Actor,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(secret) = presented_secret(parts) else {
            return Err(Redirect::to("/signin").into_response());
        };
        match crate::auth::authenticate(state, &secret).await {
            Ok(actor) => Ok(Self { actor }),
            Err(e) => {
                tracing::info!(reason = %e, "page refused: bad token");
                Err(Redirect::to("/signin").into_response())
            }
        }
    }
}

/// Who is signed in, as templates see them.
#[derive(Serialize)]
struct Me<'a> {
    id: &'a str,
    auditor: bool,
}

fn me(actor: &Actor) -> Me<'_> {
    Me {
        id: &actor.id,
        auditor: signoff_core::access::may_audit(actor),
    }
}

/// Renders a template; a template failure is a 500 with the reason in the log.
fn render(name: &str, context: impl Serialize) -> Response {
    match TEMPLATES
        .get_template(name)
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&context))))
    {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

/// A page for a refusal that has no form to show it on (an instance one may not see…).
fn error_page(actor: &Actor, status: StatusCode, message: &str) -> Response {
    let mut response = render(
        "error.html",
        serde_json::json!({
            "me": me(actor),
            "title": status.canonical_reason().unwrap_or("Refused"),
            "message": message,
        }),
    );
    *response.status_mut() = status;
    response
}

/// A page's answer to a runtime error that has no form to show it on.
fn failed_page(actor: &Actor, e: signoff_runtime::RuntimeError) -> Response {
    let problem = crate::problem::Problem::from(e);
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    error_page(actor, status, &problem.detail)
}

/// A time as people read it: `2026-11-23 10:15:02 UTC`.
fn when(t: Timestamp) -> String {
    let text = t.to_rfc3339();
    // 2026-11-23T10:15:02.123456Z -> 2026-11-23 10:15:02 UTC
    match (text.get(..10), text.get(11..19)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => text,
    }
}

async fn home(viewer: Result<Viewer, Response>) -> Redirect {
    Redirect::to(if viewer.is_ok() { "/inbox" } else { "/signin" })
}

async fn signin_page() -> Response {
    render("signin.html", minijinja::context! {})
}

#[derive(serde::Deserialize)]
struct SigninForm {
    token: String,
}

async fn signin(
    State(state): State<AppState>,
    axum::Form(form): axum::Form<SigninForm>,
) -> Response {
    let token = form.token.trim();
    match crate::auth::authenticate(&state, token).await {
        Ok(actor) => {
            tracing::info!(person = %actor.id, "signed in on the web");
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
            let mut response = Redirect::to("/inbox").into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => {
            state.metrics.refused("unauthenticated");
            tracing::info!(reason = %e, "web sign-in refused");
            let mut response = render(
                "signin.html",
                minijinja::context! { error => format!("This token does not sign you in: {e}.") },
            );
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
        }
    }
}

async fn signout() -> Response {
    let mut response = Redirect::to("/signin").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("signoff_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../templates/style.css"),
    )
}

/// The pages' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route("/static/style.css", get(style))
        .route("/inbox", get(views::inbox))
        .route("/instances", get(views::instances))
        .route("/instances/{id}", get(views::instance))
        .route("/instances/{id}/live", get(views::live))
        .route("/instances/{id}/submit/{step}", post(views::submit))
        .route("/instances/{id}/decide/{step}", post(views::decide))
        .route("/instances/{id}/complete/{step}", post(views::complete))
        .route("/instances/{id}/comment", post(views::comment))
        .route(
            "/instances/{id}/post-status/{step}",
            post(doors::post_status),
        )
        .route("/instances/{id}/revoke/{step}", post(doors::revoke))
        .route("/instances/{id}/delegate/{step}", post(doors::delegate))
        .route("/instances/{id}/signal/{step}/{name}", post(doors::signal))
        .route(
            "/instances/{id}/evidence",
            post(doors::evidence).layer(axum::extract::DefaultBodyLimit::max(
                crate::api::MAX_EVIDENCE_BYTES,
            )),
        )
        .route("/start", get(views::start_list))
        .route(
            "/start/{workflow}",
            get(views::start_page).post(views::start),
        )
        .route("/audit", get(views::audit))
        .route("/charts", get(charts::page))
        .route("/links/{token}", get(links::open).post(links::use_link))
}
