//! `workflows/deployment-approval.yaml`: routed by change type and risk; the requester never
//! reviews their own change; a pending approval expires after 30 days; a CI pipeline waits.

use std::time::Duration;

use serde_json::{Value, json};
use signoff_core::engine::{Status, Verdict};
use signoff_runtime::Runtime;

use super::{
    active, closed, decide, forbidden, inbox, invalid, ok, outcome, path, people, security, start,
    submit, timeline, told, unknown_instance_is_refused,
};
use crate::Env;

const DAY: i64 = 86_400;

/// A change request as Carol of the payments team would file it.
fn request(change_type: &str, risk: &str) -> Value {
    json!({
        "service": "payments-api",
        "team": "payments",
        "environment": "production",
        "version": "v2.14.0 (9f3c2e1)",
        "change_type": change_type,
        "risk": risk,
        "description": "Move card tokenisation to the new vault client; removes the legacy HSM proxy.",
        "rollback_plan": "Redeploy v2.13.4 with `deploy payments-api v2.13.4` (6 min); watch the auth error rate.",
        "ticket": "https://tracker.example.com/browse/CHG-1234",
    })
}

fn with(mut base: Value, field: &str, value: Value) -> Value {
    base[field] = value;
    base
}

/// What a pipeline waiting on the instance sees (`signoff wait` exits 0 only on success).
async fn pipeline_sees(rt: &Runtime, id: &str) -> Option<(String, bool)> {
    match rt
        .wait_for_end(id, Some(Duration::from_millis(10)), false)
        .await
        .unwrap()
    {
        Status::Ended {
            outcome, success, ..
        } => Some((outcome, success)),
        _ => None,
    }
}

pub async fn a_low_risk_change_is_approved_by_one_engineer_of_the_owning_team(env: &Env) {
    let rt = env.open().await;
    let id = start(&rt, "deployment-approval", "carol").await;

    // The request form checks types, options, patterns and lengths, field by field.
    for (field, value, expected) in [
        ("risk", json!("critical"), "one of low, medium, high"),
        ("ticket", json!("CHG-1234"), "http(s)://"),
        // A pattern is explained by the field's help, not shown as a regex.
        (
            "ticket",
            json!("https://tracker.example.com/browse/1234"),
            "e.g. https://tracker.example.com/browse/CHG-1234",
        ),
        ("service", json!("Payments API"), "e.g. payments-api"),
        ("description", json!("bump"), "at least 20"),
        ("window_start", json!("next tuesday"), "RFC 3339"),
        // A date that is not in the calendar is not a window that has already opened.
        ("window_start", json!("2026-02-30"), "in the calendar"),
        (
            "window_start",
            json!("2026-02-30T22:00:00Z"),
            "in the calendar",
        ),
        ("version", json!(2), "must be text"),
    ] {
        let err = invalid(
            &rt,
            &id,
            "carol",
            submit("request", with(request("normal", "low"), field, value)),
        )
        .await;
        assert_eq!(err.field.as_deref(), Some(field), "{err}");
        assert!(err.message.contains(expected), "{field}: {err}");
    }
    let mut missing = request("normal", "low");
    missing.as_object_mut().unwrap().remove("rollback_plan");
    let err = invalid(&rt, &id, "carol", submit("request", missing)).await;
    assert!(err.message.contains("is required"), "{err}");
    // Only the requester files the request.
    forbidden(
        &rt,
        &id,
        "oscar",
        submit("request", request("normal", "low")),
    )
    .await;

    ok(
        &rt,
        &id,
        "carol",
        submit("request", request("normal", "low")),
    )
    .await;
    assert_eq!(active(&rt, &id).await, ["team_review"]);
    // Any engineer of the owning team may review, except the requester; engineers of other
    // teams are not asked (their approval would not count).
    assert_eq!(inbox(&rt, &id, "oscar"), ["team_review"]);
    assert_eq!(inbox(&rt, &id, "bob"), ["team_review"]);
    for nobody in ["carol", "erin", "priya", "dave", "mia"] {
        assert!(inbox(&rt, &id, nobody).is_empty(), "{nobody} is not asked");
    }
    let asked = told(&rt, &id, "approval_requested").await;
    assert_eq!(asked.len(), 1);
    assert_eq!(people(&asked[0].0), ["bob", "oscar"]);

    let err = forbidden(
        &rt,
        &id,
        "carol",
        decide("team_review", Verdict::Approve, "lgtm"),
    )
    .await;
    assert!(err.message.contains("second person"), "{err}");
    let err = forbidden(
        &rt,
        &id,
        "erin",
        decide("team_review", Verdict::Approve, "lgtm"),
    )
    .await;
    assert!(
        err.message
            .contains("only counts approvers for whom `approver.team == data.request.team`"),
        "{err}"
    );
    let err = forbidden(
        &rt,
        &id,
        "mia",
        decide("team_review", Verdict::Approve, "lgtm"),
    )
    .await;
    assert!(err.message.contains("not an approver"), "{err}");
    let err = invalid(
        &rt,
        &id,
        "oscar",
        decide("team_review", Verdict::Reject, "no"),
    )
    .await;
    assert_eq!(err.field.as_deref(), Some("justification"));
    assert!(err.message.contains("at least 10"), "{err}");
    assert!(
        err.message.contains("The pipeline fails with your reason"),
        "the prompt: {err}"
    );
    assert!(pipeline_sees(&rt, &id).await.is_none(), "still waiting");

    ok(
        &rt,
        &id,
        "oscar",
        decide(
            "team_review",
            Verdict::Approve,
            "Rollback plan checked; vault client already live on staging.",
        ),
    )
    .await;
    // No change window given: released at once.
    assert_eq!(
        pipeline_sees(&rt, &id).await,
        Some(("approved".into(), true))
    );
    let err = closed(
        &rt,
        &id,
        "bob",
        decide("team_review", Verdict::Reject, "too late to object"),
    )
    .await;
    assert!(err.message.contains("ended with the outcome"), "{err}");
    unknown_instance_is_refused(&rt, "oscar", decide("team_review", Verdict::Approve, "")).await;

    assert_eq!(
        path(&rt, &id).await,
        ["request", "route", "team_review", "window", "approved"]
    );
    assert_eq!(
        timeline(&rt, &id).await,
        [
            "carol started",
            "carol submitted request",
            "oscar approved team_review",
            "ended approved",
        ]
    );
    let refusals: Vec<String> = security(&rt, &id)
        .await
        .into_iter()
        .map(|r| r.person)
        .collect();
    assert_eq!(refusals, ["oscar", "carol", "erin", "mia"]);
    let outcome = told(&rt, &id, "outcome").await;
    assert_eq!(outcome.len(), 1);
    assert_eq!(outcome[0].0, ["carol"], "the requester is told the outcome");
    assert!(outcome[0].2.contains("\"approved\""), "{}", outcome[0].2);
}

pub async fn a_high_risk_change_needs_two_board_members_and_legal_then_waits_for_its_window(
    env: &Env,
) {
    let rt = env.open().await;
    // Bob leads payments and sits on the change advisory board.
    let id = start(&rt, "deployment-approval", "bob").await;
    // Released two days from now, 22:00 in Paris.
    let window = "2026-11-25T22:00:00+01:00";
    ok(
        &rt,
        &id,
        "bob",
        submit(
            "request",
            with(request("normal", "high"), "window_start", json!(window)),
        ),
    )
    .await;
    assert_eq!(active(&rt, &id).await, ["cab_approval", "legal_approval"]);
    assert!(
        inbox(&rt, &id, "bob").is_empty(),
        "not asked about his own change"
    );

    let err = forbidden(
        &rt,
        &id,
        "bob",
        decide("cab_approval", Verdict::Approve, "my change, fine"),
    )
    .await;
    assert!(err.message.contains("second person"), "{err}");
    forbidden(
        &rt,
        &id,
        "grace",
        decide("legal_approval", Verdict::Approve, "fine"),
    )
    .await;
    ok(
        &rt,
        &id,
        "nina",
        decide("cab_approval", Verdict::Approve, "Window is outside peak."),
    )
    .await;
    let err = closed(
        &rt,
        &id,
        "nina",
        decide("cab_approval", Verdict::Approve, "again"),
    )
    .await;
    assert!(err.message.contains("never changed"), "{err}");
    assert_eq!(active(&rt, &id).await, ["cab_approval", "legal_approval"]);
    ok(
        &rt,
        &id,
        "grace",
        decide("cab_approval", Verdict::Approve, "Vault access reviewed."),
    )
    .await;
    // The board has its two; legal is still open, nothing is released yet.
    assert_eq!(active(&rt, &id).await, ["legal_approval"]);
    closed(
        &rt,
        &id,
        "dave",
        decide("cab_approval", Verdict::Approve, "me too"),
    )
    .await;
    ok(
        &rt,
        &id,
        "hana",
        decide(
            "legal_approval",
            Verdict::Approve,
            "No customer notice needed.",
        ),
    )
    .await;
    assert_eq!(active(&rt, &id).await, ["window"], "authorised, waiting");
    assert!(outcome(&rt, &id).await.is_none());
    assert_eq!(rt.fire_due_timers().await.unwrap(), 0);

    let opens = signoff_core::Timestamp::parse_rfc3339(window).unwrap();
    env.advance((opens.0 - rt.now().0) / 1_000_000 - 60);
    assert_eq!(rt.fire_due_timers().await.unwrap(), 0, "a minute early");
    env.advance(60);
    assert_eq!(rt.fire_due_timers().await.unwrap(), 1);
    assert_eq!(
        pipeline_sees(&rt, &id).await,
        Some(("approved".into(), true))
    );
    let ended_at = match rt.load(&id).await.unwrap().state.status {
        Status::Ended { at, .. } => at,
        other => panic!("{other:?}"),
    };
    assert_eq!(ended_at, opens, "released at the start of its window");
    assert_eq!(
        path(&rt, &id).await,
        [
            "request",
            "route",
            "board_and_legal",
            "cab_approval",
            "legal_approval",
            "authorised",
            "window",
            "approved",
        ]
    );
    assert_eq!(
        timeline(&rt, &id).await,
        [
            "bob started",
            "bob submitted request",
            "nina approved cab_approval",
            "grace approved cab_approval",
            "hana approved legal_approval",
            "ended approved",
        ]
    );
    let refusals: Vec<(String, Option<String>)> = security(&rt, &id)
        .await
        .into_iter()
        .map(|r| (r.person, r.step))
        .collect();
    assert_eq!(
        refusals,
        [
            ("bob".into(), Some("cab_approval".into())),
            ("grace".into(), Some("legal_approval".into())),
        ]
    );
}

pub async fn an_emergency_change_needs_a_board_member_and_the_team_lead_two_people(env: &Env) {
    let rt = env.open().await;
    let id = start(&rt, "deployment-approval", "oscar").await;
    ok(
        &rt,
        &id,
        "oscar",
        submit("request", request("emergency", "high")),
    )
    .await;
    assert_eq!(active(&rt, &id).await, ["emergency_approval"]);
    let err = forbidden(
        &rt,
        &id,
        "oscar",
        decide("emergency_approval", Verdict::Approve, "urgent"),
    )
    .await;
    // The requester holds no role of the gate: that is the reason he is given first.
    assert!(err.message.contains("not an approver"), "{err}");
    let err = forbidden(
        &rt,
        &id,
        "laura",
        decide("emergency_approval", Verdict::Approve, "urgent"),
    )
    .await;
    assert!(
        err.message
            .contains("1 from the change-board role and 1 from the team-lead role"),
        "{err}"
    );
    // Bob is both on the board and the payments lead: one person counts once.
    ok(
        &rt,
        &id,
        "bob",
        decide(
            "emergency_approval",
            Verdict::Approve,
            "Restores card auth.",
        ),
    )
    .await;
    assert_eq!(active(&rt, &id).await, ["emergency_approval"]);
    // Dave leads another team, so he counts only as a board member: that completes the gate.
    ok(
        &rt,
        &id,
        "dave",
        decide("emergency_approval", Verdict::Approve, "Incident INC-88."),
    )
    .await;
    assert_eq!(outcome(&rt, &id).await, Some(("approved".into(), true)));
    assert_eq!(
        path(&rt, &id).await,
        [
            "request",
            "route",
            "emergency_approval",
            "window",
            "approved"
        ]
    );
    assert_eq!(
        timeline(&rt, &id).await,
        [
            "oscar started",
            "oscar submitted request",
            "bob approved emergency_approval",
            "dave approved emergency_approval",
            "ended approved",
        ]
    );
}

pub async fn an_unanswered_deployment_is_reminded_and_expires_after_thirty_days(env: &Env) {
    let rt = env.open().await;
    let id = start(&rt, "deployment-approval", "carol").await;
    ok(
        &rt,
        &id,
        "carol",
        submit("request", request("normal", "low")),
    )
    .await;
    let deadline = rt.inbox("oscar")[0].deadline.unwrap();
    assert_eq!(deadline.0 - rt.now().0, 30 * DAY * 1_000_000);

    assert_eq!(super::advance(env, &rt, 23 * DAY - 60).await, 0);
    assert_eq!(super::advance(env, &rt, 60).await, 1, "a week before");
    assert_eq!(super::advance(env, &rt, 6 * DAY).await, 1, "the day before");
    let reminders = told(&rt, &id, "reminder").await;
    assert_eq!(reminders.len(), 2);
    for (to, _, _) in &reminders {
        assert_eq!(people(to), ["bob", "oscar"]);
    }
    assert!(pipeline_sees(&rt, &id).await.is_none());
    assert_eq!(super::advance(env, &rt, DAY).await, 1, "the deadline");
    assert_eq!(
        pipeline_sees(&rt, &id).await,
        Some(("expired".into(), false)),
        "the pipeline fails"
    );
    assert_eq!(super::advance(env, &rt, DAY).await, 0, "nothing left");
    let err = closed(
        &rt,
        &id,
        "oscar",
        decide("team_review", Verdict::Approve, "sorry, on leave"),
    )
    .await;
    assert!(err.message.contains("\"expired\""), "{err}");
    assert_eq!(
        timeline(&rt, &id).await,
        [
            "carol started",
            "carol submitted request",
            "team_review expired",
            "ended expired",
        ]
    );
    let outcome = told(&rt, &id, "outcome").await;
    assert_eq!(outcome[0].0, ["carol"]);
}
