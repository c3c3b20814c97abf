//! `workflows/dpia.yaml`: a GDPR art. 35 assessment drafted by its author, every answer evaluated
//! ("to be fixed" loops back to the author), the DPO's opinion once every answer is evaluated,
//! the data subjects' opinion, and the controller's validation; re-reviewed every year.

use serde_json::{Value, json};
use signoff_core::engine::Verdict;
use signoff_runtime::Runtime;
use signoff_runtime::schedule::Schedule;

use super::{
    active, closed, decide, forbidden, inbox, invalid, ok, outcome, path, people, security, start,
    submit, timeline, told, unknown_instance_is_refused,
};
use crate::Env;

const DAY: i64 = 86_400;

/// Every item the evaluator must evaluate, as the evaluation form lists them.
const ITEMS: [&str; 17] = [
    "context_overview",
    "context_data_processes_assets",
    "principle_purposes",
    "principle_legal_basis",
    "principle_minimisation",
    "principle_accuracy",
    "principle_retention",
    "principle_information",
    "principle_consent",
    "principle_access_portability",
    "principle_rectification_erasure",
    "principle_restriction_objection",
    "principle_processors",
    "principle_transfers",
    "risk_illegitimate_access",
    "risk_unwanted_modification",
    "risk_disappearance",
];

const VAGUE_RETENTION: &str = "As long as needed for fraud prevention.";
const FIXED_RETENTION: &str = "Scores and features 13 months (chargeback window), then deleted by \
                               the nightly purge job; declined-payment records 5 years (AML).";

fn open() -> Value {
    json!({
        "processing": "Card-fraud scoring of payment transactions (payments-risk-engine)",
        "author": "carol",
        "reason": "new_processing",
    })
}

fn risk(kind: &str, severity: &str, likelihood: &str) -> Value {
    json!({
        "kind": kind,
        "impacts": "Cardholders' spending patterns and locations exposed or wrongly altered; wrongful declines.",
        "threats": "Compromised analyst account, faulty model release, deletion of the feature store.",
        "sources": "External attackers, careless insiders, failing infrastructure.",
        "controls": "SSO with hardware keys, column encryption, release review, daily backups.",
        "severity": severity,
        "likelihood": likelihood,
    })
}

/// The three sections as Carol answers them; `retention` is the answer she is asked to fix.
fn draft(retention: &str) -> Value {
    json!({
        "overview": "Every card payment is scored for fraud by a gradient-boosted model before \
                     authorisation; high scores are declined or sent to manual review.",
        "responsibilities": "Controller: Example SAS. Processor: CloudCo (hosting), art. 28 DPA signed.",
        "data_categories": ["identification", "financial", "location", "online_identifiers"],
        "data_subjects": "Cardholders paying our merchants, including teenagers with teen cards.",
        "lifecycle": "Collected at checkout, scored in 80 ms, features kept in the feature store, purged nightly.",
        "supporting_assets": "payments-api, risk-engine, feature store (PostgreSQL), analyst console.",
        "purposes": "Preventing payment fraud, a legitimate and explicit purpose.",
        "legal_basis": "legitimate_interests",
        "legal_basis_detail": "Fraud prevention is recognised in recital 47; balancing test on file.",
        "minimisation": "No names or full card numbers in features; tokens and coarse locations only.",
        "accuracy": "Chargebacks relabel the training data weekly.",
        "retention": retention,
        "information": "Privacy notice at checkout, section 4, with the logic involved (art. 13(2)(f)).",
        "access_portability": "Through the privacy portal; scores included in access requests.",
        "rectification_erasure": "Through the privacy portal; erasure after the retention period.",
        "restriction_objection": "Objection handled by manual review instead of automated decline (art. 22(3)).",
        "processors": "CloudCo, art. 28 contract with audit rights.",
        "transfers_outside_eu": false,
        "risks": [
            risk("illegitimate_access", "significant", "limited"),
            risk("unwanted_modification", "limited", "limited"),
            risk("disappearance", "limited", "significant"),
        ],
    })
}

/// An evaluation of every item, acceptable unless given otherwise.
fn evaluations(special: &[Value]) -> Value {
    let list: Vec<Value> = ITEMS
        .iter()
        .map(|item| {
            special
                .iter()
                .find(|e| e["item"] == *item)
                .cloned()
                .unwrap_or_else(|| json!({"item": item, "status": "acceptable"}))
        })
        .collect();
    json!({ "evaluations": list })
}

fn improvable_backups() -> Value {
    json!({
        "item": "risk_disappearance",
        "status": "improvable",
        "comment": "Backups exist but have never been restored.",
        "action_plan": "Quarterly restore test of the feature store.",
        "person_in_charge": "carol",
        "implementation_date": "2027-03-31",
        "residual_severity": "limited",
        "residual_likelihood": "negligible",
    })
}

fn dpo_opinion() -> Value {
    json!({
        "opinion": "favourable_with_reservations",
        "reasoning": "Residual risks are limited once restore tests run; objection path is adequate.",
        "recommendations": "Report the first restore test to the DPO.",
        "prior_consultation": false,
    })
}

fn not_sought() -> Value {
    json!({
        "reason": "Disproportionate effort: cardholders are informed under the card scheme rules.",
    })
}

/// From a submitted draft to the validation gate: every answer acceptable (the backups
/// improvable), the DPO's opinion, the data subjects' opinion not sought.
async fn evaluated_to_validation(rt: &Runtime, id: &str) {
    ok(
        rt,
        id,
        "sofia",
        submit("evaluate", evaluations(&[improvable_backups()])),
    )
    .await;
    ok(rt, id, "alice", submit("dpo_opinion", dpo_opinion())).await;
    ok(
        rt,
        id,
        "carol",
        submit("subjects_opinion", json!({"sought": "not_sought"})),
    )
    .await;
    ok(rt, id, "carol", submit("subjects_not_sought", not_sought())).await;
    assert_eq!(active(rt, id).await, ["validation"]);
}

pub async fn a_dpia_loops_until_every_answer_is_fixed_then_is_validated_by_the_controller(
    env: &Env,
) {
    let rt = env.open().await;
    // Heidi sponsors the project for the controller and opens its DPIA; Carol drafts it.
    let id = start(&rt, "dpia", "heidi").await;
    let mut bad = open();
    bad["author"] = json!("zed");
    let err = invalid(&rt, &id, "heidi", submit("open", bad)).await;
    assert_eq!(err.field.as_deref(), Some("author"));
    ok(&rt, &id, "heidi", submit("open", open())).await;
    assert_eq!(inbox(&rt, &id, "carol"), ["draft"]);

    // The draft is the author's, section by section, risks on the 4-level scales.
    let definition = rt.definition("dpia").unwrap();
    let sections: Vec<&str> = definition
        .definition
        .step("draft")
        .unwrap()
        .form
        .as_ref()
        .unwrap()
        .sections
        .iter()
        .map(|s| s.title.as_str())
        .collect();
    assert_eq!(sections, ["Context", "Fundamental principles", "Risks"]);
    forbidden(&rt, &id, "bob", submit("draft", draft(FIXED_RETENTION))).await;
    let mut bad = draft(VAGUE_RETENTION);
    bad["risks"][1]["severity"] = json!("high");
    let err = invalid(&rt, &id, "carol", submit("draft", bad)).await;
    assert_eq!(err.field.as_deref(), Some("risks[1].severity"));
    assert!(
        err.message
            .contains("one of negligible, limited, significant, maximum"),
        "{err}"
    );
    let mut bad = draft(VAGUE_RETENTION);
    bad["risks"].as_array_mut().unwrap().pop();
    let err = invalid(&rt, &id, "carol", submit("draft", bad)).await;
    assert!(err.message.contains("at least 3 items"), "{err}");
    let mut bad = draft(VAGUE_RETENTION);
    bad["transfers_outside_eu"] = json!("not sure");
    let err = invalid(&rt, &id, "carol", submit("draft", bad)).await;
    assert_eq!(err.field.as_deref(), Some("transfers_outside_eu"));
    ok(&rt, &id, "carol", submit("draft", draft(VAGUE_RETENTION))).await;

    // First evaluation: the retention answer is to be fixed. Back to the author, not the DPO.
    forbidden(&rt, &id, "carol", submit("evaluate", evaluations(&[]))).await;
    let mut bad = evaluations(&[]);
    bad["evaluations"][0]["status"] = json!("ok");
    let err = invalid(&rt, &id, "sofia", submit("evaluate", bad)).await;
    assert_eq!(err.field.as_deref(), Some("evaluations[0].status"));
    let to_fix = json!({
        "item": "principle_retention",
        "status": "to_be_fixed",
        "comment": "No period is given for the features; say how long and how it is enforced.",
    });
    ok(
        &rt,
        &id,
        "sofia",
        submit("evaluate", evaluations(&[to_fix, improvable_backups()])),
    )
    .await;
    assert_eq!(active(&rt, &id).await, ["draft"]);
    assert!(
        inbox(&rt, &id, "alice").is_empty(),
        "the DPO is not asked yet"
    );
    let fix = told(&rt, &id, "notify").await;
    assert_eq!(fix.len(), 1);
    assert_eq!(fix[0].0, ["carol"]);
    assert!(fix[0].1.contains("answers to fix"), "{}", fix[0].1);
    ok(&rt, &id, "carol", submit("draft", draft(FIXED_RETENTION))).await;

    // An evaluation that leaves items out does not unlock the DPO opinion either.
    let partial = json!({"evaluations": [
        {"item": "principle_retention", "status": "acceptable"},
        {"item": "context_overview", "status": "acceptable"},
    ]});
    ok(&rt, &id, "frank", submit("evaluate", partial)).await;
    assert_eq!(
        active(&rt, &id).await,
        ["evaluate"],
        "every item is evaluated"
    );
    assert!(
        inbox(&rt, &id, "alice").is_empty(),
        "the DPO is not asked yet"
    );
    let incomplete = told(&rt, &id, "notify").await;
    let (to, subject, _) = incomplete.last().unwrap();
    assert_eq!(people(to), ["frank", "grace", "sofia"]);
    assert!(subject.contains("not evaluated"), "{subject}");
    // Nor does one left pending: that is the evaluators' to finish, not the author's to fix.
    let pending = json!({"item": "risk_unwanted_modification", "status": "pending"});
    ok(
        &rt,
        &id,
        "frank",
        submit("evaluate", evaluations(&[pending])),
    )
    .await;
    assert_eq!(active(&rt, &id).await, ["evaluate"]);
    assert!(
        inbox(&rt, &id, "carol").is_empty(),
        "nothing for the author to fix"
    );
    assert!(
        inbox(&rt, &id, "alice").is_empty(),
        "the DPO is not asked yet"
    );

    // Every item evaluated, none to fix: the DPO is asked.
    ok(
        &rt,
        &id,
        "sofia",
        submit("evaluate", evaluations(&[improvable_backups()])),
    )
    .await;
    assert_eq!(inbox(&rt, &id, "alice"), ["dpo_opinion"]);
    forbidden(&rt, &id, "sofia", submit("dpo_opinion", dpo_opinion())).await;
    let mut bad = dpo_opinion();
    bad["prior_consultation"] = json!("perhaps");
    invalid(&rt, &id, "alice", submit("dpo_opinion", bad)).await;
    ok(&rt, &id, "alice", submit("dpo_opinion", dpo_opinion())).await;
    // The data subjects' opinion, or why it was not sought: a reason, not a blank.
    forbidden(
        &rt,
        &id,
        "heidi",
        submit("subjects_opinion", json!({"sought": "not_sought"})),
    )
    .await;
    ok(
        &rt,
        &id,
        "carol",
        submit("subjects_opinion", json!({"sought": "not_sought"})),
    )
    .await;
    let err = invalid(&rt, &id, "carol", submit("subjects_not_sought", json!({}))).await;
    assert_eq!(err.field.as_deref(), Some("reason"));
    assert!(err.message.contains("is required"), "{err}");
    let err = invalid(
        &rt,
        &id,
        "carol",
        submit("subjects_not_sought", json!({"reason": "n/a"})),
    )
    .await;
    assert!(err.message.contains("at least 20"), "{err}");
    ok(
        &rt,
        &id,
        "carol",
        submit("subjects_not_sought", not_sought()),
    )
    .await;

    // Validation: a controller who is neither the requester nor the author.
    assert_eq!(inbox(&rt, &id, "nina"), ["validation"]);
    assert!(inbox(&rt, &id, "heidi").is_empty());
    let err = forbidden(
        &rt,
        &id,
        "heidi",
        decide("validation", Verdict::Approve, "approved"),
    )
    .await;
    assert!(err.message.contains("second person"), "{err}");
    forbidden(
        &rt,
        &id,
        "carol",
        decide("validation", Verdict::Approve, "approved"),
    )
    .await;
    let err = forbidden(
        &rt,
        &id,
        "alice",
        decide("validation", Verdict::Approve, "approved"),
    )
    .await;
    assert!(err.message.contains("controller"), "{err}");
    let err = invalid(
        &rt,
        &id,
        "nina",
        decide("validation", Verdict::Reject, "not yet"),
    )
    .await;
    assert!(err.message.contains("Which adjustments"), "{err}");
    ok(
        &rt,
        &id,
        "nina",
        decide(
            "validation",
            Verdict::Reject,
            "Add the teen-card holders' information notice before go-live.",
        ),
    )
    .await;
    // Refused: the author answers with adjustments, and it is evaluated again.
    assert_eq!(active(&rt, &id).await, ["draft"]);
    let refused = told(&rt, &id, "notify").await;
    let (to, subject, _) = refused.last().unwrap();
    assert_eq!(people(to), ["alice", "carol"]);
    assert!(subject.contains("refused by the controller"), "{subject}");
    ok(&rt, &id, "carol", submit("draft", draft(FIXED_RETENTION))).await;
    evaluated_to_validation(&rt, &id).await;
    ok(
        &rt,
        &id,
        "nina",
        decide("validation", Verdict::Approve, "Residual risks accepted."),
    )
    .await;
    assert_eq!(outcome(&rt, &id).await, Some(("validated".into(), true)));
    let validated = told(&rt, &id, "notify").await;
    let (to, subject, _) = validated.last().unwrap();
    assert!(subject.ends_with("validated"), "{subject}");
    assert_eq!(people(to), ["alice", "carol", "frank", "grace", "sofia"]);
    closed(
        &rt,
        &id,
        "heidi",
        decide("validation", Verdict::Approve, "late"),
    )
    .await;
    unknown_instance_is_refused(&rt, "carol", submit("draft", draft(FIXED_RETENTION))).await;

    // The risk map as drafted, and as re-scored after the measures.
    let state = rt.load(&id).await.unwrap().state;
    let map: Vec<(&str, &str, &str)> = state.data["draft"]["risks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["severity"].as_str().unwrap(),
                r["likelihood"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        map,
        [
            ("illegitimate_access", "significant", "limited"),
            ("unwanted_modification", "limited", "limited"),
            ("disappearance", "limited", "significant"),
        ]
    );
    assert_eq!(
        state.data["evaluate"]["evaluations"][16]["residual_likelihood"],
        "negligible"
    );

    assert_eq!(
        timeline(&rt, &id).await,
        [
            "heidi started",
            "heidi submitted open",
            "carol submitted draft",
            "sofia submitted evaluate",
            "carol submitted draft",
            "frank submitted evaluate",
            "frank submitted evaluate",
            "sofia submitted evaluate",
            "alice submitted dpo_opinion",
            "carol submitted subjects_opinion",
            "carol submitted subjects_not_sought",
            "nina rejected validation",
            "carol submitted draft",
            "sofia submitted evaluate",
            "alice submitted dpo_opinion",
            "carol submitted subjects_opinion",
            "carol submitted subjects_not_sought",
            "nina approved validation",
            "ended validated",
        ]
    );
    let refusals: Vec<(String, String)> = security(&rt, &id)
        .await
        .into_iter()
        .map(|r| (r.person, r.step.unwrap_or_default()))
        .collect();
    assert_eq!(
        refusals,
        [
            ("bob".into(), "draft".into()),
            ("carol".into(), "evaluate".into()),
            ("sofia".into(), "dpo_opinion".into()),
            ("heidi".into(), "subjects_opinion".into()),
            ("heidi".into(), "validation".into()),
            ("carol".into(), "validation".into()),
            ("alice".into(), "validation".into()),
        ]
    );

    // The yearly re-review: a schedule on the first of March, 09:00 in Paris, by the DPO.
    let triggers = &definition.definition.triggers;
    assert_eq!(triggers.len(), 1);
    let cron = &triggers[0];
    assert_eq!(cron.requester.as_ref().unwrap().as_str(), "alice");
    let schedule = Schedule::parse(
        cron.cron.as_ref().unwrap().as_str(),
        cron.timezone.as_ref().map(|t| t.as_str()),
    )
    .unwrap();
    let next = schedule
        .next_after(chrono::DateTime::from_timestamp_micros(rt.now().0).unwrap())
        .unwrap();
    assert_eq!(next.to_rfc3339(), "2027-03-01T08:00:00+00:00");
    let after = schedule.next_after(next).unwrap();
    assert_eq!(after.to_rfc3339(), "2028-03-01T08:00:00+00:00", "yearly");
    assert!(rt.directory().holds("alice", "dpo"));
}

pub async fn an_overdue_validation_reopens_and_the_dpo_cannot_sign_in_the_controllers_place(
    env: &Env,
) {
    let rt = env.open().await;
    let id = start(&rt, "dpia", "alice").await;
    ok(&rt, &id, "alice", submit("open", open())).await;
    ok(&rt, &id, "carol", submit("draft", draft(FIXED_RETENTION))).await;
    evaluated_to_validation(&rt, &id).await;
    assert_eq!(
        people(&told(&rt, &id, "approval_requested").await[0].0),
        ["heidi", "nina"]
    );

    assert_eq!(
        super::advance(env, &rt, 7 * DAY).await,
        1,
        "the first reminder"
    );
    let reminded = told(&rt, &id, "reminder").await;
    assert_eq!(people(&reminded[0].0), ["heidi", "nina"]);
    // The DPO advises; signing for the controller is not hers (GDPR art. 38(6)).
    forbidden(
        &rt,
        &id,
        "alice",
        decide(
            "validation",
            Verdict::Approve,
            "validated for the controller",
        ),
    )
    .await;
    assert_eq!(super::advance(env, &rt, 2 * DAY).await, 1, "the second");
    assert_eq!(super::advance(env, &rt, DAY).await, 1, "the deadline");
    // Overdue: the controllers and the DPO are told, and the validation is open again.
    let overdue = told(&rt, &id, "notify").await;
    let overdue = overdue.last().unwrap();
    assert!(overdue.1.contains("validation overdue"), "{}", overdue.1);
    assert_eq!(people(&overdue.0), ["alice", "heidi", "nina"]);
    assert_eq!(active(&rt, &id).await, ["validation"]);
    let state = rt.load(&id).await.unwrap().state;
    assert_eq!(state.activations["validation"], 2);
    ok(
        &rt,
        &id,
        "heidi",
        decide("validation", Verdict::Approve, "Residual risks accepted."),
    )
    .await;
    assert_eq!(outcome(&rt, &id).await, Some(("validated".into(), true)));
    let steps = path(&rt, &id).await;
    assert_eq!(
        steps[steps.len() - 5..],
        [
            "validation",
            "notify_validation_overdue",
            "validation",
            "notify_validated",
            "validated",
        ]
    );
    let lines = timeline(&rt, &id).await;
    assert_eq!(
        lines[lines.len() - 3..],
        [
            "validation expired",
            "heidi approved validation",
            "ended validated",
        ]
    );
}
