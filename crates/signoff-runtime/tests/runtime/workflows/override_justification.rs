//! `workflows/override-justification.yaml`: an operator overrides a model's decision, justifies
//! it at once, the model owner and the risk officers are told, and a risk officer reviews it
//! within five days (or the head of risk, escalated to; or it is recorded as missed).

use serde_json::{Value, json};
use signoff_core::engine::{InstanceEvent, Verdict};

use super::{
    active, closed, decide, forbidden, inbox, invalid, ok, outcome, path, people, security, start,
    submit, timeline, told, unknown_instance_is_refused,
};
use crate::Env;

const DAY: i64 = 86_400;

/// Mia, in operations, lets a payment through that the fraud model would have declined.
fn record() -> Value {
    json!({
        "decision_ref": "TXN-2026-118734",
        "recommendation": "Decline the card payment of EUR 2,340 (fraud score above the 0.9 threshold).",
        "model_name": "card-fraud-gbm",
        "model_version": "4.2.1",
        "confidence": 0.93,
        "action_taken": "Approved the payment after calling the cardholder back on the number on file.",
        "reason_category": "missing_context",
        "reason": "The cardholder had told support of a trip to Lisbon; the model does not see \
                   support tickets, so the foreign location looked like card theft.",
        "ticket": "https://tracker.example.com/browse/OPS-4471",
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut v = record();
    v[field] = value;
    v
}

pub async fn an_override_is_told_to_those_it_skipped_and_upheld_in_review(env: &Env) {
    let rt = env.open().await;
    let id = start(&rt, "override-justification", "mia").await;

    // The record is what model owners and auditors read: typed, bounded, mandatory.
    for (field, value, expected) in [
        ("confidence", json!("very high"), "must be a number"),
        ("confidence", json!(1.4), "at most 1"),
        ("reason", json!("Customer called."), "at least 30"),
        (
            "reason_category",
            json!("gut_feeling"),
            "one of model_error",
        ),
        ("ticket", json!("OPS-4471"), "http(s)://"),
    ] {
        let err = invalid(&rt, &id, "mia", submit("override", with(field, value))).await;
        assert_eq!(err.field.as_deref(), Some(field));
        assert!(err.message.contains(expected), "{field}: {err}");
    }
    let mut missing = record();
    missing.as_object_mut().unwrap().remove("model_version");
    let err = invalid(&rt, &id, "mia", submit("override", missing)).await;
    assert!(err.message.contains("is required"), "{err}");
    forbidden(&rt, &id, "ivan", submit("override", record())).await;
    ok(&rt, &id, "mia", submit("override", record())).await;

    // Those the override skipped are told, with the reason and what the model said.
    let skipped = told(&rt, &id, "notify").await;
    assert_eq!(skipped.len(), 1);
    let (to, subject, body) = &skipped[0];
    assert_eq!(people(to), ["ivan", "kevin", "zoe"]);
    assert_eq!(subject, "Override of card-fraud-gbm 4.2.1: missing_context");
    for fact in [
        "mia overrode an automated decision (TXN-2026-118734)",
        "Confidence: 0.93",
        "Approved the payment after calling the cardholder",
        "trip to Lisbon",
        "https://tracker.example.com/browse/OPS-4471",
        "Incident: none",
        "within 5 days",
    ] {
        assert!(body.contains(fact), "{fact:?} in {body}");
    }

    // The retrospective review: a risk officer, within five days.
    assert_eq!(active(&rt, &id).await, ["review"]);
    let item = rt
        .inbox("zoe")
        .into_iter()
        .find(|i| i.instance == id)
        .unwrap();
    assert_eq!(item.deadline.unwrap().0 - rt.now().0, 5 * DAY * 1_000_000);
    assert!(
        inbox(&rt, &id, "judy").is_empty(),
        "not before an escalation"
    );
    let err = forbidden(
        &rt,
        &id,
        "mia",
        decide("review", Verdict::Approve, "I was right to override it."),
    )
    .await;
    // She holds no role of the review: the first reason, before separation of duties.
    assert!(err.message.contains("not an approver"), "{err}");
    forbidden(
        &rt,
        &id,
        "kevin",
        decide("review", Verdict::Reject, "The model was right to decline."),
    )
    .await;
    forbidden(
        &rt,
        &id,
        "judy",
        decide("review", Verdict::Approve, "Upheld by the head of risk."),
    )
    .await;
    let err = invalid(&rt, &id, "ivan", decide("review", Verdict::Approve, "fine")).await;
    assert!(
        err.message.contains("Why is the override justified?"),
        "{err}"
    );
    invalid(&rt, &id, "ivan", decide("review", Verdict::Approve, "")).await;
    ok(
        &rt,
        &id,
        "ivan",
        decide(
            "review",
            Verdict::Approve,
            "Travel notice was in the support ticket; the callback verified the cardholder.",
        ),
    )
    .await;
    assert_eq!(outcome(&rt, &id).await, Some(("upheld".into(), true)));
    closed(
        &rt,
        &id,
        "zoe",
        decide("review", Verdict::Reject, "I disagree with the upholding."),
    )
    .await;
    unknown_instance_is_refused(&rt, "ivan", decide("review", Verdict::Approve, "")).await;

    let upheld = told(&rt, &id, "notify").await;
    assert_eq!(upheld[1].0, ["kevin"]);
    assert_eq!(upheld[1].1, "Override upheld: TXN-2026-118734");
    assert_eq!(
        told(&rt, &id, "outcome").await[0].0,
        ["mia"],
        "the operator"
    );
    assert_eq!(
        path(&rt, &id).await,
        [
            "override",
            "notify_skipped",
            "review",
            "notify_upheld",
            "upheld"
        ]
    );
    assert_eq!(
        timeline(&rt, &id).await,
        [
            "mia started",
            "mia submitted override",
            "ivan approved review",
            "ended upheld",
        ]
    );
    let refusals: Vec<String> = security(&rt, &id)
        .await
        .into_iter()
        .map(|r| r.person)
        .collect();
    assert_eq!(refusals, ["ivan", "mia", "kevin", "judy"]);
    // The record stays queryable for override rates per operator and per model.
    let state = rt.load(&id).await.unwrap().state;
    assert_eq!(state.requester, "mia");
    assert_eq!(state.data["override"]["model_name"], "card-fraud-gbm");
    assert_eq!(state.data["override"]["confidence"], 0.93);
}

pub async fn an_unreviewed_override_escalates_to_the_head_of_risk_then_is_recorded_missed(
    env: &Env,
) {
    let rt = env.open().await;
    let escalated = start(&rt, "override-justification", "mia").await;
    ok(&rt, &escalated, "mia", submit("override", record())).await;
    let missed = start(&rt, "override-justification", "mia").await;
    ok(&rt, &missed, "mia", submit("override", record())).await;

    // Day 3: two days before the deadline, the risk officers are reminded.
    assert_eq!(super::advance(env, &rt, 3 * DAY).await, 2);
    assert_eq!(
        people(&told(&rt, &escalated, "reminder").await[0].0),
        ["ivan", "zoe"]
    );
    // Day 4: the last reminder, and the head of risk may now decide in their place.
    assert_eq!(super::advance(env, &rt, DAY).await, 4);
    let up = told(&rt, &escalated, "escalation").await;
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].0, ["judy"]);
    assert_eq!(inbox(&rt, &escalated, "judy"), ["review"]);
    let err = invalid(
        &rt,
        &escalated,
        "judy",
        decide("review", Verdict::Reject, "Wrong."),
    )
    .await;
    assert!(err.message.contains("decision have stood"), "{err}");
    ok(
        &rt,
        &escalated,
        "judy",
        decide(
            "review",
            Verdict::Reject,
            "A callback does not verify a cardholder under our policy; refund and retrain.",
        ),
    )
    .await;
    assert_eq!(
        outcome(&rt, &escalated).await,
        Some(("overturned".into(), false))
    );
    let decided = rt
        .instance_events(&escalated)
        .await
        .unwrap()
        .into_iter()
        .find_map(|(_, e)| match e {
            InstanceEvent::Decided { by, escalated, .. } => Some((by, escalated)),
            _ => None,
        });
    assert_eq!(decided, Some(("judy".into(), true)));
    let overturned = told(&rt, &escalated, "notify").await;
    assert_eq!(people(&overturned[1].0), ["judy", "kevin"]);
    assert_eq!(
        timeline(&rt, &escalated).await,
        [
            "mia started",
            "mia submitted override",
            "review escalated to judy (1)",
            "judy rejected review",
            "ended overturned",
        ]
    );

    // Day 5: nobody reviewed the other one. It stands unreviewed, a missed control.
    assert_eq!(super::advance(env, &rt, DAY).await, 1);
    assert_eq!(
        outcome(&rt, &missed).await,
        Some(("review_missed".into(), false))
    );
    let notices = told(&rt, &missed, "notify").await;
    let (to, subject, _) = notices.last().unwrap();
    assert_eq!(people(to), ["ivan", "judy", "zoe"]);
    assert_eq!(subject, "Override review missed: TXN-2026-118734");
    closed(
        &rt,
        &missed,
        "ivan",
        decide("review", Verdict::Approve, "Sorry, late: it was justified."),
    )
    .await;
    assert_eq!(
        timeline(&rt, &missed).await,
        [
            "mia started",
            "mia submitted override",
            "review escalated to judy (1)",
            "review expired",
            "ended review_missed",
        ]
    );
}
