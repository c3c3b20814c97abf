//! Who is calling: an API token, presented as `Authorization: Bearer <secret>` (scripts,
//! services) or in the `signoff_token` cookie (the web pages, set by signing in with a token).
//!
//! Tokens are issued with `signoff token issue PERSON`; the log keeps only their hash. A missing,
//! unknown, expired or revoked token gets 401 and is traced; nothing is written.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use signoff_core::access::TokenRefusal;
use signoff_core::engine::Actor;
use signoff_runtime::access::AuthError;

use crate::AppState;
use crate::problem::Problem;

/// The cookie the web pages carry the token in.
pub const COOKIE: &str = "signoff_token";

/// The authenticated caller, with the roles the directory gives them now.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub actor: Actor,
}

impl Caller {
    /// Their directory id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.actor.id
    }
}

/// The secret a request presents, from its `Authorization` header or its cookie.
#[must_use]
pub fn presented_secret(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, secret) = text.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| secret.trim().to_owned());
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The actor a secret acts as. A token unknown to this process may have been issued a moment
/// ago by another (`signoff token issue`): the log is read up to now before refusing it.
///
/// # Errors
/// Unknown, expired or revoked token; its owner left the directory.
pub async fn authenticate(state: &AppState, secret: &str) -> Result<Actor, AuthError> {
    authenticate_token(state, secret)
        .await
        .map(|(actor, _)| actor)
}

/// As [`authenticate`], with whether the token may only read.
///
/// # Errors
/// As [`authenticate`].
pub async fn authenticate_token(
    state: &AppState,
    secret: &str,
) -> Result<(Actor, bool), AuthError> {
    match state.runtime.authenticate_token(secret) {
        Err(AuthError::Token(TokenRefusal::Unknown)) => {
            if let Err(e) = state.runtime.catch_up().await {
                tracing::error!(error = %e, "reading the log before refusing a token failed");
            }
            state.runtime.authenticate_token(secret)
        }
        other => other,
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        // Already authenticated by the read-only gate (requests that may change something).
        if let Some(caller) = parts.extensions.get::<Self>() {
            return Ok(caller.clone());
        }
        let Some(secret) = presented_secret(parts) else {
            state.metrics.refused("unauthenticated");
            tracing::info!(path = %parts.uri.path(), "refused: no token");
            return Err(Problem::unauthorized(
                "sign in: send `Authorization: Bearer <token>` (`signoff token issue PERSON` \
                 makes one)",
            ));
        };
        match authenticate(state, &secret).await {
            Ok(actor) => Ok(Self { actor }),
            Err(e) => {
                state.metrics.refused("unauthenticated");
                tracing::info!(path = %parts.uri.path(), reason = %e, "refused: bad token");
                Err(Problem::unauthorized(e.to_string()))
            }
        }
    }
}

/// Requests that change nothing although they are not `GET`: signing in and out (the cookie
/// only), and checking a definition.
const READS_BY_POST: [&str; 3] = ["/signin", "/signout", "/api/v1/definitions/validate"];

/// The one gate for every door of the server (API, pages), before any handler runs: refuses
/// every request that could change something when its token may only read (`signoff token
/// issue --read-only`): 403, and the attempt recorded in the security stream. Once a request
/// with a token was answered with a success, the token's use is recorded (at most hourly).
pub async fn token_gate(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let secret = presented_secret(&parts);
    let response = gate(
        &state,
        axum::extract::Request::from_parts(parts, body),
        next,
    )
    .await;
    // The token's use, for `token list`, once a request it made was answered: a refused
    // request writes nothing. A failure to record it is not the request's.
    if response.status().is_success()
        && let Some(secret) = secret
        && let Err(e) = state.runtime.record_token_use(&secret).await
    {
        tracing::warn!(error = %e, "recording a token's use failed");
    }
    response
}

async fn gate(
    state: &AppState,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    let reads = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || READS_BY_POST.contains(&request.uri().path());
    if reads {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    // Authenticated as the handler would (a token issued a moment ago by another process is
    // read from the log first): a token this process has not folded yet must not pass as one
    // that may change things. Whatever fails here is the handler's to refuse (401).
    let authenticated = match presented_secret(&parts) {
        Some(secret) => authenticate_token(state, &secret).await.ok(),
        None => None,
    };
    let person = match authenticated {
        Some((actor, true)) => actor.id,
        Some((actor, false)) => {
            // The handler's `Caller`, so it is not authenticated twice.
            parts.extensions.insert(Caller { actor });
            return next
                .run(axum::extract::Request::from_parts(parts, body))
                .await;
        }
        None => {
            return next
                .run(axum::extract::Request::from_parts(parts, body))
                .await;
        }
    };
    let what = format!("{} {}", parts.method, parts.uri.path());
    state.metrics.refused("read-only");
    tracing::info!(%person, request = %what, "refused: read-only token");
    let channel = if parts.uri.path().starts_with("/api/") {
        crate::api::CHANNEL
    } else {
        crate::pages::CHANNEL
    };
    if let Err(error) = state
        .runtime
        .refuse_read_only(&what, &person, channel)
        .await
    {
        tracing::error!(%error, "recording a refused request failed");
    }
    Problem::new(
        axum::http::StatusCode::FORBIDDEN,
        "forbidden",
        signoff_runtime::access::READ_ONLY_REFUSAL,
    )
    .at(None, "read-only")
    .into_response()
}
