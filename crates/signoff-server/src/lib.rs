//! signoff's server: one process that runs the engine and serves everyone who is not in chat.
//!
//! - `/api/v1/…`: the REST API ([`api`]), described by the OpenAPI document at
//!   `/api/openapi.json` ([`openapi`]); errors are RFC 9457 problem documents ([`problem`]);
//! - `/api/v1/events`: committed events as server-sent events, resumable ([`events`]);
//! - `/metrics`: Prometheus text for operators ([`metrics`]);
//! - `/`, `/inbox`, `/instances/…`, `/start`, `/audit`, `/charts`: web pages ([`pages`]).
//!
//! It holds no business rules: every request becomes a call on the [`Runtime`], as the
//! authenticated person ([`auth`]). Start with [`router`], then [`serve`].
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod events;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod problem;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use signoff_runtime::Runtime;
use tokio::net::TcpListener;

/// Largest request body taken, in bytes (a form with long texts fits many times over).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub runtime: Arc<Runtime>,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Turns true when the server is asked to stop: live streams end, so that draining the
    /// connections does not wait for subscribers who would never leave.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// The key decision links in emails are signed with; without one, `/links/…` says links
    /// are not set up here.
    pub link_key: Option<Arc<signoff_core::link::LinkKey>>,
}

impl AppState {
    /// State over a runtime.
    #[must_use]
    pub fn new(runtime: Arc<Runtime>) -> Self {
        Self {
            runtime,
            metrics: Arc::new(metrics::Metrics::default()),
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
            link_key: None,
        }
    }

    /// The same, answering the decision links signed with `key`.
    #[must_use]
    pub fn with_link_key(mut self, key: Option<signoff_core::link::LinkKey>) -> Self {
        self.link_key = key.map(Arc::new);
        self
    }
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(events::routes())
        .merge(openapi::routes())
        .merge(metrics::routes())
        .merge(pages::routes())
        .fallback(problem::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::token_gate,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Longest wait for requests in flight once asked to stop; past it the server stops anyway (a
/// supervisor's own grace period, 30 s in Kubernetes, must not run out first).
pub const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// Serves `state` on `listener` until `shutdown` completes, with the engine's clock (timers,
/// cron runs) turning meanwhile. Then it drains: no new connection is accepted, live streams
/// end, requests in flight finish (for up to [`DRAIN_GRACE`]), the clock stops, and the log's
/// writer commits and answers what is queued before this returns.
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        state,
        signoff_runtime::reactor::built_in(),
        shutdown,
    )
    .await
}

/// Like [`serve`], running `reactors` (rather than every built-in one) beside the server.
///
/// # Errors
/// The listener fails.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    reactors: Vec<std::sync::Arc<dyn signoff_runtime::reactor::Reactor>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let runtime = state.runtime.clone();
    let runtime_log = state.runtime.log().clone();
    let clock = tokio::spawn(async move {
        let mut stop_rx = stop_rx;
        runtime
            .run_reactors(&reactors, async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            })
            .await;
    });
    let stopping = state.stopping.clone();
    let mut stopped = stopping.subscribe();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        stopping.send_replace(true);
    });
    let served = tokio::select! {
        served = std::future::IntoFuture::into_future(served) => served,
        () = async {
            let _ = stopped.wait_for(|stop| *stop).await;
            tokio::time::sleep(DRAIN_GRACE).await;
        } => {
            tracing::warn!("requests still running after {DRAIN_GRACE:?}; stopping without them");
            Ok(())
        }
    };
    let _ = stop_tx.send(true);
    let _ = clock.await;
    runtime_log.close().await;
    served
}
