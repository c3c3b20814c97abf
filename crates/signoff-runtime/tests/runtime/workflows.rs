//! The five shipped workflows (`workflows/*.yaml` and the example `people.yaml` at the root of
//! the repository, exactly as shipped) driven end to end through the runtime: the main path with
//! realistic data, the main refusals (each checked to have changed nothing, and those for lack
//! of rights to be in the `security` stream), and the timeline that results.
//!
//! One module per workflow; the helpers here keep each test a readable story.

mod deployment;
mod dpia;
mod incident;
mod override_justification;
mod post_mortem;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use signoff_core::StreamId;
use signoff_core::engine::event::SecurityRefusal;
use signoff_core::engine::{
    Command, InstanceEvent, Rejection, RejectionKind, Status, TaskStatus, Verdict,
};
use signoff_runtime::{Applied, Runtime, RuntimeError};

use crate::Env;

/// The workflows the repository ships, by file name.
const SHIPPED: [&str; 5] = [
    "dpia",
    "deployment-approval",
    "override-justification",
    "incident",
    "post-mortem",
];

/// An instance id nobody started.
pub const UNKNOWN_INSTANCE: &str = "01936b2e-0000-7000-8000-000000000000";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Env {
    /// SQLite, with the shipped workflows and directory instead of the fixtures.
    pub fn shipped_sqlite() -> Self {
        Self::sqlite().with_shipped_files()
    }

    /// PostgreSQL (a schema of its own), with the shipped workflows and directory.
    pub fn shipped_postgres() -> Option<Self> {
        Self::postgres().map(Self::with_shipped_files)
    }

    fn with_shipped_files(self) -> Self {
        let workflows = self.dir.path().join("workflows");
        std::fs::remove_dir_all(&workflows).unwrap();
        std::fs::create_dir(&workflows).unwrap();
        let shipped = repository().join("workflows");
        for entry in std::fs::read_dir(&shipped).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, workflows.join(path.file_name().unwrap())).unwrap();
            }
        }
        for name in SHIPPED {
            assert!(
                workflows.join(format!("{name}.yaml")).exists(),
                "workflows/{name}.yaml is shipped"
            );
        }
        std::fs::copy(
            repository().join("people.yaml"),
            self.dir.path().join("people.yaml"),
        )
        .unwrap();
        self
    }
}

/// Runs each case on SQLite and on PostgreSQL, with the shipped files.
macro_rules! shipped_on_both_backends {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let env = crate::Env::shipped_sqlite();
                    super::$module::$case(&env).await;
                    crate::assert_projections_match_the_log(&env).await;
                    env.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(env) = crate::Env::shipped_postgres() {
                        super::$module::$case(&env).await;
                        crate::assert_projections_match_the_log(&env).await;
                        env.cleanup().await;
                    }
                }
            )*
        }
    };
}

shipped_on_both_backends!(
    deployment::a_low_risk_change_is_approved_by_one_engineer_of_the_owning_team,
    deployment::a_high_risk_change_needs_two_board_members_and_legal_then_waits_for_its_window,
    deployment::an_emergency_change_needs_a_board_member_and_the_team_lead_two_people,
    deployment::an_unanswered_deployment_is_reminded_and_expires_after_thirty_days,
    dpia::a_dpia_loops_until_every_answer_is_fixed_then_is_validated_by_the_controller,
    dpia::an_overdue_validation_reopens_and_the_dpo_cannot_sign_in_the_controllers_place,
    override_justification::an_override_is_told_to_those_it_skipped_and_upheld_in_review,
    override_justification::an_unreviewed_override_escalates_to_the_head_of_risk_then_is_recorded_missed,
    incident::a_sev1_is_paged_escalated_until_acknowledged_worked_on_a_cadence_and_resolved,
    incident::a_sev3_skips_paging_and_runs_the_minor_checklist,
    post_mortem::a_resolved_incident_starts_its_post_mortem_which_is_reviewed_and_followed_up,
);

// ----- commands -------------------------------------------------------------------------------

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("form values must be an object, not {other}"),
    }
}

/// Fill in a form.
pub fn submit(step: &str, values: Value) -> Command {
    Command::Submit {
        step: step.into(),
        values: object(values),
    }
}

/// Decide at a gate.
pub fn decide(step: &str, verdict: Verdict, justification: &str) -> Command {
    Command::Decide {
        step: step.into(),
        verdict,
        justification: justification.into(),
        shown: None,
    }
}

/// Close a task.
pub fn complete(step: &str, item: &str, status: TaskStatus, note: &str) -> Command {
    Command::Complete {
        step: step.into(),
        item: item.into(),
        status,
        note: note.into(),
    }
}

/// Post a status update.
pub fn post_status(text: &str) -> Command {
    Command::PostStatus {
        step: None,
        text: text.into(),
    }
}

// ----- driving --------------------------------------------------------------------------------

/// Starts an instance of a shipped workflow as `who`.
pub async fn start(rt: &Runtime, workflow: &str, who: &str) -> String {
    rt.start(workflow, serde_json::json!({}), who, "web")
        .await
        .unwrap_or_else(|e| panic!("{who} could not start {workflow}: {e}"))
        .instance
}

/// Runs a command that must be accepted.
pub async fn ok(rt: &Runtime, id: &str, who: &str, command: Command) -> Applied {
    let what = format!("{who}: {command:?}");
    rt.execute(id, command, who, "web", None)
        .await
        .unwrap_or_else(|e| panic!("{what} was refused: {e}"))
}

/// Runs a command that must be refused, checks that the refusal changed nothing on the
/// instance (no event, same state), and returns it.
pub async fn refused(rt: &Runtime, id: &str, who: &str, command: Command) -> Rejection {
    let events = rt.instance_events(id).await.unwrap().len();
    let state = rt.load(id).await.unwrap().state;
    let what = format!("{who}: {command:?}");
    let rejection = match rt.execute(id, command, who, "web", None).await {
        Ok(applied) => panic!("{what} was accepted: {:?}", applied.events),
        Err(RuntimeError::Rejected(rejection)) => rejection,
        Err(other) => panic!("{what} failed instead of being refused: {other}"),
    };
    assert_eq!(
        rt.instance_events(id).await.unwrap().len(),
        events,
        "{what} was refused but recorded something"
    );
    assert_eq!(
        rt.load(id).await.unwrap().state,
        state,
        "{what} was refused but changed the state"
    );
    rejection
}

/// Like [`refused`], for a refusal for lack of rights: checks its kind and that the security
/// stream recorded exactly this attempt.
pub async fn forbidden(rt: &Runtime, id: &str, who: &str, command: Command) -> Rejection {
    let name = command.name();
    let step = command.step().map(str::to_owned);
    let before = security(rt, id).await.len();
    let rejection = refused(rt, id, who, command).await;
    assert_eq!(rejection.kind, RejectionKind::Forbidden, "{rejection}");
    let after = security(rt, id).await;
    assert_eq!(after.len(), before + 1, "one refusal recorded: {after:?}");
    let last = after.last().unwrap();
    assert_eq!(
        (last.person.as_str(), last.command.as_str(), &last.step),
        (who, name, &step)
    );
    assert_eq!(last.reason, rejection.message);
    rejection
}

/// Like [`refused`], for a mistake in what was sent (not a security matter).
pub async fn invalid(rt: &Runtime, id: &str, who: &str, command: Command) -> Rejection {
    let before = security(rt, id).await.len();
    let rejection = refused(rt, id, who, command).await;
    assert_eq!(rejection.kind, RejectionKind::Invalid, "{rejection}");
    assert_eq!(
        security(rt, id).await.len(),
        before,
        "not a security matter"
    );
    rejection
}

/// Like [`refused`], for a step or instance that is closed.
pub async fn closed(rt: &Runtime, id: &str, who: &str, command: Command) -> Rejection {
    let rejection = refused(rt, id, who, command).await;
    assert_eq!(rejection.kind, RejectionKind::Closed, "{rejection}");
    rejection
}

/// A command on an instance that does not exist is refused as such, and records nothing.
pub async fn unknown_instance_is_refused(rt: &Runtime, who: &str, command: Command) {
    let before = rt.log().tail().await.unwrap().sequence;
    let err = rt
        .execute(UNKNOWN_INSTANCE, command, who, "web", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RuntimeError::UnknownInstance(i) if i == UNKNOWN_INSTANCE),
        "{err}"
    );
    assert!(rt.load(UNKNOWN_INSTANCE).await.is_err());
    assert_eq!(
        rt.log().tail().await.unwrap().sequence,
        before,
        "nothing recorded"
    );
}

/// Moves the clock and fires what came due; returns how many timers fired.
pub async fn advance(env: &Env, rt: &Runtime, seconds: i64) -> usize {
    env.advance(seconds);
    rt.fire_due_timers().await.unwrap()
}

// ----- reading --------------------------------------------------------------------------------

/// The refusals for lack of rights the security stream holds about an instance.
pub async fn security(rt: &Runtime, id: &str) -> Vec<SecurityRefusal> {
    let stream = StreamId::parse("security").unwrap();
    rt.log()
        .read_stream(&stream, 1, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str::<SecurityRefusal>(r.data.as_str()).unwrap())
        .filter(|r| r.instance == id)
        .collect()
}

/// The outcome of an ended instance.
pub async fn outcome(rt: &Runtime, id: &str) -> Option<(String, bool)> {
    match rt.load(id).await.unwrap().state.status {
        Status::Ended {
            outcome, success, ..
        } => Some((outcome, success)),
        _ => None,
    }
}

/// The steps active now, sorted.
pub async fn active(rt: &Runtime, id: &str) -> Vec<String> {
    rt.load(id)
        .await
        .unwrap()
        .state
        .active
        .into_keys()
        .collect()
}

/// The timeline as people read it: who did what, in order. Each line is checked against the
/// log's own record of who acted (the verified person, or the engine for timers).
pub async fn timeline(rt: &Runtime, id: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut gates = Vec::new();
    for (record, event) in rt.instance_events(id).await.unwrap() {
        let actor = record.metadata.actor.as_str();
        let (by, line) = match &event {
            InstanceEvent::StepEntered {
                step,
                gate: Some(_),
                ..
            } => {
                gates.push(step.clone());
                continue;
            }
            InstanceEvent::Started { requester, .. } => {
                (Some(requester), format!("{requester} started"))
            }
            InstanceEvent::FormSubmitted { step, by, .. } => {
                (Some(by), format!("{by} submitted {step}"))
            }
            InstanceEvent::Decided {
                step, by, verdict, ..
            } => {
                let verb = match verdict {
                    Verdict::Approve => "approved",
                    Verdict::Reject => "rejected",
                };
                (Some(by), format!("{by} {verb} {step}"))
            }
            InstanceEvent::TaskCompleted {
                step,
                item,
                status,
                by,
                ..
            } => {
                let verb = match status {
                    TaskStatus::Done => "did",
                    TaskStatus::NotDoing => "is not doing",
                };
                (Some(by), format!("{by} {verb} {step}.{item}"))
            }
            InstanceEvent::StatusPosted { by, .. } => (Some(by), format!("{by} posted a status")),
            InstanceEvent::Escalated { step, to, n, .. } => {
                (None, format!("{step} escalated to {} ({n})", to.join(", ")))
            }
            InstanceEvent::StepCompleted { step, outcome, .. }
                if outcome == "expired" && gates.contains(step) =>
            {
                (None, format!("{step} expired"))
            }
            InstanceEvent::Linked { link, .. } => (
                None,
                format!("linked to {} ({})", link.workflow, link.relation),
            ),
            InstanceEvent::Ended { outcome, .. } => (None, format!("ended {outcome}")),
            _ => continue,
        };
        if let Some(by) = by {
            assert_eq!(actor, by, "the log records who acted: {line}");
        }
        lines.push(line);
    }
    lines
}

/// The steps taken, in order: entered (to wait for someone) or passed (needing nobody).
pub async fn path(rt: &Runtime, id: &str) -> Vec<String> {
    rt.instance_events(id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(_, e)| match e {
            InstanceEvent::StepEntered { step, .. } | InstanceEvent::StepPassed { step, .. } => {
                Some(step)
            }
            _ => None,
        })
        .collect()
}

/// Notifications of an instance with this reason, as (recipients, subject, body).
pub async fn told(rt: &Runtime, id: &str, reason: &str) -> Vec<(Vec<String>, String, String)> {
    rt.notifications(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.instance == id && n.reason == reason)
        .map(|n| (n.to, n.subject, n.body))
        .collect()
}

/// The steps waiting for `person` in this instance, from their inbox.
pub fn inbox(rt: &Runtime, id: &str, person: &str) -> Vec<String> {
    rt.inbox(person)
        .into_iter()
        .filter(|i| i.instance == id)
        .map(|i| i.step)
        .collect()
}

/// Sorted person ids, for comparing recipient lists.
pub fn people(list: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = list.iter().map(String::as_str).collect();
    out.sort_unstable();
    out
}
