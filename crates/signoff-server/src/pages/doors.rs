//! The instance page's other doors: status updates, signals, evidence, revoking and delegating
//! a decision. Each form is offered only where the engine would take its command (a dry run:
//! [`signoff_runtime::Runtime::permits`]); the engine decides again when it is sent.

use axum::Form;
use axum::extract::{Multipart, Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use signoff_core::engine::state::Active;
use signoff_core::engine::{Actor, Command};
use signoff_core::workflow::Step;
use signoff_runtime::Entry;

use super::views::{Refused, act, refused_page};
use super::{CHANNEL, Viewer, failed_page};
use crate::AppState;

/// What a refusal of one of these forms is filed under, to show it next to that form.
pub fn key(door: &str, step: &str) -> String {
    format!("#{door}-{step}")
}

/// The doors of one open step that `actor` may use, with the error of the last refused use.
pub fn of_step(
    state: &AppState,
    entry: &Entry,
    actor: &Actor,
    id: &str,
    def: Option<&Step>,
    active: &Active,
    refused: &Refused,
) -> Value {
    let rt = &state.runtime;
    let error = |door: &str| (refused.step == key(door, id)).then(|| refused.message.clone());
    let status_update = def.and_then(|d| d.status_updates.as_ref()).is_some()
        && rt.permits(
            entry,
            actor,
            &Command::PostStatus {
                step: Some(id.to_owned()),
                text: String::new(),
            },
        );
    let approval = def.and_then(|d| d.approval.as_ref());
    let decided = active
        .gate
        .as_ref()
        .is_some_and(|g| g.decisions.contains_key(&actor.id));
    let revoke = approval.is_some_and(|a| a.revocable)
        && decided
        && rt.permits(
            entry,
            actor,
            &Command::Revoke {
                step: id.to_owned(),
                reason: String::new(),
            },
        );
    // Whom a delegation may go to: the other eligible holders of a role the person approves by.
    let delegates: Vec<String> = match (&active.gate, approval) {
        (Some(gate), Some(a)) if a.delegation && !decided => {
            let mut to: Vec<String> = gate
                .opened
                .groups
                .iter()
                .filter(|g| g.role.is_some() && g.eligible.contains(&actor.id))
                .flat_map(|g| g.eligible.iter().cloned())
                .filter(|p| *p != actor.id && !gate.opened.excluded.contains(p))
                .collect();
            to.sort();
            to.dedup();
            to
        }
        _ => Vec::new(),
    };
    let delegate = !delegates.is_empty()
        && rt.permits(
            entry,
            actor,
            &Command::Delegate {
                step: id.to_owned(),
                to: String::new(),
                reason: String::new(),
            },
        );
    let signal = def
        .and_then(|d| d.wait.as_ref())
        .and_then(|w| w.signal.as_ref())
        .map(|s| s.as_str().to_owned())
        .filter(|name| rt.permits(entry, actor, &Command::Signal { name: name.clone() }));
    json!({
        "status_update": status_update,
        "status_update_error": error("status"),
        "status_update_text": if error("status").is_some() { refused.comment.clone() } else { String::new() },
        "revoke": revoke,
        "revoke_error": error("revoke"),
        "delegate": delegate,
        "delegates": delegates,
        "delegate_error": error("delegate"),
        "signal": signal,
        "signal_error": error("signal"),
    })
}

/// Whether `actor` may attach evidence to the instance now.
pub fn may_attach(state: &AppState, entry: &Entry, actor: &Actor) -> bool {
    state.runtime.permits(
        entry,
        actor,
        &Command::Attach {
            name: "evidence".to_owned(),
            hash: "sha256:".to_owned(),
            media_type: "application/octet-stream".to_owned(),
            size: 0,
        },
    )
}

/// Gives `command` to the engine through `door` of `step`; a refusal comes back next to that
/// form, with what was typed (`typed`) kept.
async fn through(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    (door, step): (&str, &str),
    typed: String,
    command: Command,
) -> Response {
    let refused = Refused {
        step: key(door, step),
        comment: typed,
        ..Refused::default()
    };
    act(state, viewer, id, command, refused).await
}

/// The fields of the doors' forms (each uses its own).
#[derive(Deserialize)]
pub struct DoorForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    to: String,
}

pub async fn post_status(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, step)): Path<(String, String)>,
    Form(form): Form<DoorForm>,
) -> Response {
    let command = Command::PostStatus {
        step: Some(step.clone()),
        text: form.text.clone(),
    };
    through(&state, &viewer, &id, ("status", &step), form.text, command).await
}

pub async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, step)): Path<(String, String)>,
    Form(form): Form<DoorForm>,
) -> Response {
    let command = Command::Revoke {
        step: step.clone(),
        reason: form.reason,
    };
    through(
        &state,
        &viewer,
        &id,
        ("revoke", &step),
        String::new(),
        command,
    )
    .await
}

pub async fn delegate(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, step)): Path<(String, String)>,
    Form(form): Form<DoorForm>,
) -> Response {
    let command = Command::Delegate {
        step: step.clone(),
        to: form.to,
        reason: form.reason,
    };
    through(
        &state,
        &viewer,
        &id,
        ("delegate", &step),
        String::new(),
        command,
    )
    .await
}

pub async fn signal(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, step, name)): Path<(String, String, String)>,
) -> Response {
    let command = Command::Signal { name };
    through(
        &state,
        &viewer,
        &id,
        ("signal", &step),
        String::new(),
        command,
    )
    .await
}

/// A file from the page's evidence form (`multipart/form-data`, field `file`), attached as the
/// API attaches it: stored only once the engine would take it.
pub async fn evidence(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let refuse = |message: String| {
        let refused = Refused {
            step: "#evidence".to_owned(),
            message,
            ..Refused::default()
        };
        let (state, viewer, id) = (state.clone(), viewer.clone(), id.clone());
        async move { refused_page(&state, &viewer, &id, &refused).await }
    };
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(e) => return refuse(format!("the upload could not be read: {e}")).await,
    };
    let mut file = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => {
                let name = field.file_name().unwrap_or_default().to_owned();
                let media_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                match field.bytes().await {
                    Ok(bytes) => file = Some((name, media_type, bytes)),
                    Err(e) => return refuse(format!("the file could not be read: {e}")).await,
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return refuse(format!("the upload could not be read: {e}")).await,
        }
    }
    let Some((name, media_type, bytes)) = file.filter(|(_, _, b)| !b.is_empty()) else {
        return refuse("choose a file to attach (an empty file is not evidence)".to_owned()).await;
    };
    if let Some(problem) = crate::api::evidence_name_problem(&name) {
        return refuse(format!(
            "the file's name {name:?} cannot be used: {problem}"
        ))
        .await;
    }
    match state
        .runtime
        .attach(&id, &name, &media_type, &bytes, &viewer.actor, CHANNEL)
        .await
    {
        Ok(_) => axum::response::Redirect::to(&format!("/instances/{id}#evidence")).into_response(),
        Err(signoff_runtime::RuntimeError::Rejected(r))
            if r.kind != signoff_core::engine::RejectionKind::NotFound =>
        {
            refuse(r.message).await
        }
        Err(e) => failed_page(&viewer.actor, e),
    }
}

use axum::response::IntoResponse as _;
