//! `workflows/post-mortem.yaml`: started by a resolved incident and linked to it both ways, with
//! the incident's timeline; gathered and written by an author, reviewed by someone else, sent
//! back or signed off, published, and followed until every action item is done or declined with
//! a reason. Due dates count business days.

use serde_json::{Value, json};
use signoff_core::Timestamp;
use signoff_core::engine::{TaskStatus, Verdict};

use super::incident::resolved_sev2;
use super::{
    active, closed, complete, decide, forbidden, inbox, invalid, ok, outcome, path, people,
    security, submit, timeline, told, unknown_instance_is_refused,
};
use crate::Env;

const HOUR: i64 = 3_600;

fn at(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).unwrap()
}

fn action(title: &str, owner: &str, due: &str, priority: &str) -> Value {
    json!({"title": title, "owner": owner, "due": due, "priority": priority})
}

/// Erin's write-up; `root_cause` is what the reviewer asks her to sharpen.
fn write_up(root_cause: &str) -> Value {
    json!({
        "author": "priya",
        "summary": "Gateway v5.2 leaked connections when the acquirer slowed down; EU card \
                    payments failed for an hour until we failed over and rolled back.",
        "impact_who": "EU cardholders of all merchants on the standard plan.",
        "impact_duration": "63 min (14:02-15:05 UTC)",
        "impact_how_much": "38% of checkouts failed, about 11,200 orders; 40% of the monthly SLO budget.",
        "root_cause": root_cause,
        "contributing_factors": "No load test with a slow acquirer; retries without a budget.",
        "went_well": "Paging and the failover runbook.",
        "went_badly": "Twenty minutes to suspect the release.",
        "action_items": [
            action("Alert on per-region checkout p99 latency", "erin", "2026-12-11", "p1"),
            action("Load-test the gateway against a slow acquirer", "carol", "2026-12-18", "p2"),
            action("Move the pool size to runtime config", "priya", "2027-01-15", "p3"),
        ],
    })
}

const SHALLOW_CAUSE: &str = "A bug in gateway v5.2 under load from the acquirer.";
const ROOT_CAUSE: &str = "Retries in gateway v5.2 opened a new connection each time without \
                          returning the failed one, so the pool ran dry within minutes.";

pub async fn a_resolved_incident_starts_its_post_mortem_which_is_reviewed_and_followed_up(
    env: &Env,
) {
    let rt = env.open().await;
    // Friday 14:00 UTC: Dave, on call, declares a SEV2; Laura commands and resolves it.
    env.advance(4 * 24 * HOUR + 5 * HOUR);
    assert_eq!(rt.now(), at("2026-11-27T14:00:00Z"));
    let incident = resolved_sev2(&rt, "dave").await;

    // The post-mortem started by itself, linked both ways, requested by the incident's
    // commander (not Dave, who only reported it).
    let links = rt.load(&incident).await.unwrap().state.links;
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].workflow.as_str(), links[0].relation.as_str()),
        ("post-mortem", "triggered")
    );
    let id = links[0].instance.clone();
    let pm = rt.load(&id).await.unwrap().state;
    assert_eq!(pm.workflow, "post-mortem");
    assert_eq!(pm.requester, "laura");
    // Its authors are the commander and the scribe of the incident, not every holder of the
    // author role in the directory.
    assert_eq!(pm.roles["author"], ["laura".to_owned(), "priya".to_owned()]);
    assert_eq!(
        pm.active["gather"].tasks[0].opened.owners,
        ["laura", "priya"]
    );
    assert_eq!(pm.links.len(), 1);
    assert_eq!(
        (pm.links[0].instance.as_str(), pm.links[0].relation.as_str()),
        (incident.as_str(), "triggered_by")
    );
    // Its timeline is the incident's own events, found through the link, and what the
    // incident recorded comes with it.
    assert_eq!(pm.input["source"]["instance"], json!(incident));
    assert_eq!(
        pm.input["source"]["data"]["declare"]["title"],
        "Card payments failing in EU"
    );
    assert_eq!(
        pm.input["source"]["data"]["resolve"]["final_severity"],
        "sev2"
    );
    assert_eq!(
        timeline(&rt, &pm.links[0].instance).await,
        [
            "dave started",
            "dave submitted declare",
            "laura posted a status",
            "laura did acknowledge.ack",
            "priya did respond.open_timeline",
            "erin did respond.status_page",
            "laura did respond.assess_impact",
            "laura posted a status",
            "laura did respond.mitigate",
            "laura submitted resolve",
            "ended resolved",
            "linked to post-mortem (triggered)",
        ]
    );

    // Gather: due in business days after the resolution, so over the weekend.
    assert_eq!(active(&rt, &id).await, ["gather"]);
    let due: Vec<(String, Option<Timestamp>)> = pm.active["gather"]
        .tasks
        .iter()
        .map(|t| (t.opened.id.clone(), t.opened.due))
        .collect();
    assert_eq!(
        due,
        [
            ("check_timeline".into(), Some(at("2026-12-01T14:00:00Z"))),
            ("collect_evidence".into(), Some(at("2026-12-01T14:00:00Z"))),
            ("schedule_review".into(), Some(at("2026-12-02T14:00:00Z"))),
        ]
    );
    forbidden(
        &rt,
        &id,
        "mia",
        complete("gather", "check_timeline", TaskStatus::Done, ""),
    )
    .await;
    // Erin holds the author role, but was not the incident's commander or scribe.
    forbidden(
        &rt,
        &id,
        "erin",
        complete("gather", "check_timeline", TaskStatus::Done, ""),
    )
    .await;
    // Monday 10:00.
    env.advance(2 * 24 * HOUR + 20 * HOUR);
    for item in ["check_timeline", "collect_evidence", "schedule_review"] {
        ok(
            &rt,
            &id,
            "priya",
            complete("gather", item, TaskStatus::Done, ""),
        )
        .await;
    }

    // Write: an author's; action items each with one owner and a real date.
    assert_eq!(inbox(&rt, &id, "priya"), ["write"]);
    assert!(inbox(&rt, &id, "erin").is_empty());
    forbidden(&rt, &id, "dave", submit("write", write_up(ROOT_CAUSE))).await;
    let mut bad = write_up(ROOT_CAUSE);
    bad["action_items"][0]["due"] = json!("next sprint");
    let err = invalid(&rt, &id, "priya", submit("write", bad)).await;
    assert_eq!(err.field.as_deref(), Some("action_items[0].due"));
    let mut bad = write_up(ROOT_CAUSE);
    bad["action_items"] = json!([]);
    let err = invalid(&rt, &id, "priya", submit("write", bad)).await;
    assert!(err.message.contains("at least 1 items"), "{err}");
    let mut bad = write_up(ROOT_CAUSE);
    bad["action_items"][1]["owner"] = json!("qa-team");
    invalid(&rt, &id, "priya", submit("write", bad)).await;
    ok(&rt, &id, "priya", submit("write", write_up(SHALLOW_CAUSE))).await;

    // Review: not by the lead author, nor the requester (the commander); five business days.
    let review = rt
        .inbox("grace")
        .into_iter()
        .find(|i| i.instance == id)
        .unwrap();
    assert_eq!(review.step, "review");
    assert_eq!(review.deadline, Some(at("2026-12-07T10:00:00Z")));
    assert!(inbox(&rt, &id, "priya").is_empty());
    let err = forbidden(
        &rt,
        &id,
        "priya",
        decide("review", Verdict::Approve, "looks good to me"),
    )
    .await;
    assert!(err.message.contains("not an approver"), "{err}");
    let err = forbidden(
        &rt,
        &id,
        "laura",
        decide("review", Verdict::Approve, "looks good to me"),
    )
    .await;
    assert!(err.message.contains("second person"), "{err}");
    forbidden(
        &rt,
        &id,
        "heidi",
        decide("review", Verdict::Approve, "looks good to me"),
    )
    .await;
    let err = invalid(
        &rt,
        &id,
        "grace",
        decide("review", Verdict::Reject, "too vague"),
    )
    .await;
    assert!(err.message.contains("What must the author change"), "{err}");
    ok(
        &rt,
        &id,
        "grace",
        decide(
            "review",
            Verdict::Reject,
            "The root cause names a bug, not the mechanism: why did the pool run dry?",
        ),
    )
    .await;
    assert_eq!(active(&rt, &id).await, ["write"]);
    let back = told(&rt, &id, "notify").await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].0, ["priya"], "the lead author, not every author");
    ok(&rt, &id, "priya", submit("write", write_up(ROOT_CAUSE))).await;
    ok(
        &rt,
        &id,
        "dave",
        decide("review", Verdict::Approve, "Blameless and convincing."),
    )
    .await;
    closed(
        &rt,
        &id,
        "grace",
        decide("review", Verdict::Approve, "fine now"),
    )
    .await;

    // Published to the stakeholders and the lead author.
    let published = told(&rt, &id, "notify").await;
    assert_eq!(
        published[1].1,
        "Post-mortem of Card payments failing in EU published"
    );
    assert_eq!(
        people(&published[1].0),
        ["grace", "heidi", "judy", "nina", "priya"]
    );
    assert!(
        published[1].2.contains("pool ran dry"),
        "{}",
        published[1].2
    );

    // Follow-up: each action item is its owner's, closed done or declined with a reason.
    let state = rt.load(&id).await.unwrap().state;
    let items: Vec<(String, Vec<String>, Option<Timestamp>)> = state.active["follow_up"]
        .tasks
        .iter()
        .map(|t| (t.opened.id.clone(), t.opened.owners.clone(), t.opened.due))
        .collect();
    assert_eq!(
        items,
        [
            (
                "action_items-1".into(),
                vec!["erin".into()],
                Some(at("2026-12-11T17:00:00Z"))
            ),
            (
                "action_items-2".into(),
                vec!["carol".into()],
                Some(at("2026-12-18T17:00:00Z"))
            ),
            (
                "action_items-3".into(),
                vec!["priya".into()],
                Some(at("2027-01-15T17:00:00Z"))
            ),
        ]
    );
    forbidden(
        &rt,
        &id,
        "carol",
        complete("follow_up", "action_items-1", TaskStatus::Done, "done it"),
    )
    .await;
    ok(
        &rt,
        &id,
        "erin",
        complete(
            "follow_up",
            "action_items-1",
            TaskStatus::Done,
            "Alert live.",
        ),
    )
    .await;
    ok(
        &rt,
        &id,
        "carol",
        complete("follow_up", "action_items-2", TaskStatus::Done, ""),
    )
    .await;
    let err = invalid(
        &rt,
        &id,
        "priya",
        complete("follow_up", "action_items-3", TaskStatus::NotDoing, ""),
    )
    .await;
    assert_eq!(err.field.as_deref(), Some("note"));
    assert!(outcome(&rt, &id).await.is_none(), "an item is still open");
    ok(
        &rt,
        &id,
        "priya",
        complete(
            "follow_up",
            "action_items-3",
            TaskStatus::NotDoing,
            "Superseded by the pool autoscaler (ADR-12).",
        ),
    )
    .await;
    assert_eq!(outcome(&rt, &id).await, Some(("published".into(), true)));
    closed(
        &rt,
        &id,
        "priya",
        complete("follow_up", "action_items-3", TaskStatus::Done, ""),
    )
    .await;
    unknown_instance_is_refused(&rt, "erin", submit("write", write_up(ROOT_CAUSE))).await;

    assert_eq!(
        path(&rt, &id).await,
        [
            "gather",
            "write",
            "review",
            "notify_revise",
            "write",
            "review",
            "publish",
            "follow_up",
            "published",
        ]
    );
    assert_eq!(
        timeline(&rt, &id).await,
        [
            "laura started",
            "linked to incident (triggered_by)",
            "priya did gather.check_timeline",
            "priya did gather.collect_evidence",
            "priya did gather.schedule_review",
            "priya submitted write",
            "grace rejected review",
            "priya submitted write",
            "dave approved review",
            "erin did follow_up.action_items-1",
            "carol did follow_up.action_items-2",
            "priya is not doing follow_up.action_items-3",
            "ended published",
        ]
    );
    let refusals: Vec<String> = security(&rt, &id)
        .await
        .into_iter()
        .map(|r| r.person)
        .collect();
    assert_eq!(
        refusals,
        ["mia", "erin", "dave", "priya", "laura", "heidi", "carol"]
    );
}
