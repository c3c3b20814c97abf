//! `/api/v1/events`: committed events as server-sent events, as they are committed.
//!
//! Each event's SSE id is its global sequence. A client that reconnects with `Last-Event-ID`
//! (browsers do it by themselves) resumes right after it: nothing is skipped or repeated, since
//! the log's order is gap-free. `?instance=` or `?workflow=` narrow the stream. A person sees the
//! events of the instances they may read; auditors see every event.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use signoff_core::RecordedEvent;
use signoff_core::access;
use signoff_core::engine::Actor;
use signoff_runtime::Runtime;

use crate::AppState;
use crate::api::Query;
use crate::auth::Caller;
use crate::metrics::Metrics;
use crate::problem::Problem;

/// Which events to follow.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only this instance's events.
    #[param(pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub instance: Option<String>,
    /// Only events of instances of this workflow.
    pub workflow: Option<String>,
    /// Start after this sequence (as `Last-Event-ID` does; the header wins). Default: from now.
    /// Sequences are signed 64-bit in the log, so larger numbers are refused rather than
    /// documented as valid.
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

/// One server-sent event, as the stream frames it.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "documents the stream's frames; they are written by `Event`"
)]
pub struct StreamEvent {
    /// The event's global sequence.
    id: String,
    /// Its type, e.g. `signoff.approval.decided`.
    event: String,
    /// The CloudEvent, as JSON text.
    data: String,
}

/// Decides, event by event, what one subscriber is shown.
struct Filter {
    runtime: Arc<Runtime>,
    actor: Actor,
    auditor: bool,
    instance: Option<String>,
    workflow: Option<String>,
    /// Per instance: its workflow, and whether the subscriber may see it. Once they may, they
    /// may for good (what they saw is not taken back); a "no" is looked at again only on the
    /// events that can give them a part (a form submitted, a step entered, escalated or
    /// delegated), so an instance is not read back from the log for each of its events.
    known: HashMap<String, (String, bool)>,
}

/// Events after which a person may take part in an instance they could not see before.
const MAY_GIVE_A_PART: [&str; 4] = [
    "signoff.form.submitted",
    "signoff.step.entered",
    "signoff.step.escalated",
    "signoff.approval.delegated",
];

impl Filter {
    async fn admits(&mut self, record: &RecordedEvent) -> bool {
        let Some(id) = record.stream.as_str().strip_prefix("instance/") else {
            // The directory, tokens, security refusals…: the auditor's.
            return self.auditor && self.instance.is_none() && self.workflow.is_none();
        };
        if self.instance.as_deref().is_some_and(|i| i != id) {
            return false;
        }
        let stale = match self.known.get(id) {
            None => true,
            Some((_, visible)) => !visible && MAY_GIVE_A_PART.contains(&record.ty.as_str()),
        };
        if stale {
            let Ok(entry) = self.runtime.load(id).await else {
                return false;
            };
            let visible = self.auditor
                || access::may_read(&entry.loaded.definition, &entry.state, &self.actor);
            self.known
                .insert(id.to_owned(), (entry.state.workflow.clone(), visible));
        }
        self.known.get(id).is_some_and(|(workflow, visible)| {
            *visible && self.workflow.as_ref().is_none_or(|w| w == workflow)
        })
    }
}

/// Counts a subscriber while its stream lives.
struct Subscribed(Arc<Metrics>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Committed events as server-sent events (`id` = global sequence, `event` = type, `data` =
/// the CloudEvent JSON). Resumable with `Last-Event-ID`.
#[utoipa::path(get, path = "/api/v1/events", tag = "audit", params(EventsQuery,
        ("Last-Event-ID" = Option<i64>, Header, minimum = 0, description = "Resume after this sequence")),
    responses((status = 200, content_type = "text/event-stream", body = StreamEvent),
              (status = 403, description = "The caller may not read this instance", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No instance has this id", body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(|| {
                    Problem::bad_request("Last-Event-ID must be the sequence of an event")
                        .at(Some("Last-Event-ID".into()), "integer")
                })?,
        ),
    };
    let rt = state.runtime.clone();
    if let Some(id) = &query.instance {
        rt.load_for(&caller.actor, id, crate::api::CHANNEL).await?;
    }
    let after_query = match query.after.map(u64::try_from).transpose() {
        Ok(after) => after,
        Err(_) => {
            return Err(
                Problem::bad_request("after must be the sequence of an event, 0 or more")
                    .at(Some("after".into()), "minimum"),
            );
        }
    };
    let after = match last_event_id.or(after_query) {
        Some(after) => after,
        None => {
            rt.log()
                .tail()
                .await
                .map_err(|e| Problem::from(signoff_runtime::RuntimeError::from(e)))?
                .sequence
        }
    };
    let auditor = access::may_audit(&caller.actor);
    let filter = Filter {
        runtime: rt.clone(),
        actor: caller.actor,
        auditor,
        instance: query.instance,
        workflow: query.workflow,
        known: HashMap::new(),
    };
    state.metrics.subscribers.fetch_add(1, Ordering::Relaxed);
    let subscribed = Subscribed(state.metrics.clone());
    let inner = Box::pin(signoff_store::subscribe(rt.log().clone(), after));
    let stream = futures::stream::unfold(
        (inner, filter, subscribed),
        |(mut inner, mut filter, subscribed)| async move {
            loop {
                match inner.next().await? {
                    Ok(record) if filter.admits(&record).await => {
                        let event = Event::default()
                            .id(record.sequence.to_string())
                            .event(record.ty.as_str())
                            .data(record.to_cloudevent_json());
                        return Some((Ok(event), (inner, filter, subscribed)));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // The client reconnects with Last-Event-ID and resumes where it was.
                        tracing::error!(error = %e, "the live stream stopped");
                        return None;
                    }
                }
            }
        },
    );
    // Ends when the server stops, so that draining connections does not wait for it.
    let mut stopping = state.stopping.subscribe();
    let stream = stream.take_until(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The live stream's route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/events", get(events))
}
