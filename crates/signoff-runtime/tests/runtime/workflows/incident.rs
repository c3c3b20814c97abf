//! `workflows/incident.yaml`: declared with a severity and named roles; SEV1/SEV2 page the team
//! and escalate to the incident managers until the commander acknowledges; a checklist and
//! status updates on a cadence set by the severity, with reminders; resolved by the commander.

use serde_json::{Value, json};
use signoff_core::engine::TaskStatus;
use signoff_runtime::Runtime;

use super::{
    active, closed, complete, forbidden, inbox, invalid, ok, outcome, path, people, post_status,
    security, start, submit, timeline, told, unknown_instance_is_refused,
};
use crate::Env;

const MINUTE: i64 = 60;

/// A declaration: `commander`, scribe Priya, comms Erin.
pub fn declaration(title: &str, severity: &str, commander: &str) -> Value {
    json!({
        "title": title,
        "severity": severity,
        "summary": "EU card authorisations time out at the acquirer gateway since 14:02 UTC; \
                    about 40% of checkouts fail.",
        "services": "payments-api, acquirer-gateway",
        "commander": commander,
        "scribe": "priya",
        "comms": "erin",
    })
}

pub fn resolution() -> Value {
    json!({
        "resolution": "Failed over to the secondary acquirer, then rolled back gateway v5.2 \
                       whose connection pool leaked under retries.",
        "customer_impact": "EU cardholders, 14:02-15:05 UTC: 38% of checkouts failed (about 11,200 orders).",
        "final_severity": "sev2",
        "status_page_resolved": true,
    })
}

/// Drives a SEV2 declared by `reporter` and commanded by Laura to its resolution; returns its id.
pub async fn resolved_sev2(rt: &Runtime, reporter: &str) -> String {
    let id = start(rt, "incident", reporter).await;
    ok(
        rt,
        &id,
        reporter,
        submit(
            "declare",
            declaration("Card payments failing in EU", "sev2", "laura"),
        ),
    )
    .await;
    // The commander may tell the world before she has acknowledged.
    ok(
        rt,
        &id,
        "laura",
        post_status("Investigating failed card payments in the EU."),
    )
    .await;
    ok(
        rt,
        &id,
        "laura",
        complete("acknowledge", "ack", TaskStatus::Done, ""),
    )
    .await;
    for (who, item) in [
        ("priya", "open_timeline"),
        ("erin", "status_page"),
        ("laura", "assess_impact"),
    ] {
        ok(
            rt,
            &id,
            who,
            complete("respond", item, TaskStatus::Done, ""),
        )
        .await;
    }
    ok(
        rt,
        &id,
        "laura",
        post_status("Failed over to the secondary acquirer; success rate back to 97%."),
    )
    .await;
    ok(
        rt,
        &id,
        "laura",
        complete("respond", "mitigate", TaskStatus::Done, "rolled back v5.2"),
    )
    .await;
    ok(rt, &id, "laura", submit("resolve", resolution())).await;
    assert_eq!(outcome(rt, &id).await, Some(("resolved".into(), true)));
    id
}

pub async fn a_sev1_is_paged_escalated_until_acknowledged_worked_on_a_cadence_and_resolved(
    env: &Env,
) {
    let rt = env.open().await;
    // Erin sees it first and declares it; Laura, an incident manager, commands.
    let id = start(&rt, "incident", "erin").await;
    let sev1 = || declaration("Card payments failing in EU", "sev1", "laura");
    let mut bad = sev1();
    bad["severity"] = json!("critical");
    let err = invalid(&rt, &id, "erin", submit("declare", bad)).await;
    assert!(
        err.message.contains("one of sev1, sev2, sev3, sev4"),
        "{err}"
    );
    let mut bad = sev1();
    bad["commander"] = json!("the on-call");
    let err = invalid(&rt, &id, "erin", submit("declare", bad)).await;
    assert_eq!(err.field.as_deref(), Some("commander"));
    forbidden(&rt, &id, "mia", submit("declare", sev1())).await;
    ok(&rt, &id, "erin", submit("declare", sev1())).await;

    // Paged: the named roles and the incident managers.
    let page = told(&rt, &id, "notify").await;
    assert_eq!(page.len(), 1);
    assert_eq!(people(&page[0].0), ["dave", "erin", "laura", "priya"]);
    assert_eq!(page[0].1, "[sev1] Card payments failing in EU");
    assert_eq!(inbox(&rt, &id, "laura"), ["acknowledge"]);
    forbidden(
        &rt,
        &id,
        "priya",
        complete("acknowledge", "ack", TaskStatus::Done, ""),
    )
    .await;

    // Unacknowledged: after 5 minutes the task is overdue and the incident managers are paged,
    // again 5 minutes later.
    assert!(inbox(&rt, &id, "dave").is_empty());
    assert_eq!(super::advance(env, &rt, 5 * MINUTE).await, 2);
    assert_eq!(told(&rt, &id, "task_overdue").await[0].0, ["laura"]);
    // Dave may now take command: the task is in his inbox too.
    let waiting = rt.inbox("dave").into_iter().find(|i| i.instance == id);
    assert_eq!(
        waiting.map(|i| (i.step, i.tasks)),
        Some(("acknowledge".into(), vec!["ack".into()]))
    );
    assert_eq!(super::advance(env, &rt, 5 * MINUTE).await, 1);
    let escalations = told(&rt, &id, "escalation").await;
    assert_eq!(escalations.len(), 2);
    assert_eq!(people(&escalations[1].0), ["dave", "laura"]);
    assert!(escalations[1].1.contains("2 of 3"), "{}", escalations[1].1);
    env.advance(2 * MINUTE);
    ok(
        &rt,
        &id,
        "laura",
        complete("acknowledge", "ack", TaskStatus::Done, "taking command"),
    )
    .await;
    assert_eq!(active(&rt, &id).await, ["respond"]);
    assert_eq!(
        super::advance(env, &rt, 5 * MINUTE).await,
        0,
        "no third page"
    );

    // The checklist: each task is its owner's.
    ok(
        &rt,
        &id,
        "priya",
        complete("respond", "open_timeline", TaskStatus::Done, ""),
    )
    .await;
    forbidden(
        &rt,
        &id,
        "priya",
        complete("respond", "mitigate", TaskStatus::Done, "failover done"),
    )
    .await;
    forbidden(
        &rt,
        &id,
        "erin",
        complete("respond", "assess_impact", TaskStatus::Done, ""),
    )
    .await;
    ok(
        &rt,
        &id,
        "erin",
        complete("respond", "status_page", TaskStatus::Done, ""),
    )
    .await;

    // Status updates every 30 minutes, by the commander.
    forbidden(&rt, &id, "mia", post_status("Looks better now.")).await;
    invalid(&rt, &id, "laura", post_status("  ")).await;
    ok(
        &rt,
        &id,
        "laura",
        post_status("Failing over to the secondary acquirer; EU success rate 62% and rising."),
    )
    .await;
    // The open tasks are reminded every 15 minutes; the update is due 30 minutes after the last.
    super::advance(env, &rt, 29 * MINUTE).await;
    assert!(told(&rt, &id, "status_update_due").await.is_empty());
    assert!(
        told(&rt, &id, "reminder")
            .await
            .iter()
            .any(|(to, _, _)| to.contains(&"laura".to_owned()))
    );
    super::advance(env, &rt, MINUTE).await;
    let late = told(&rt, &id, "status_update_due").await;
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].0, ["laura"]);
    // A whole cadence late: the incident managers are told.
    super::advance(env, &rt, 30 * MINUTE).await;
    assert_eq!(told(&rt, &id, "status_update_due").await.len(), 2);
    let escalations = told(&rt, &id, "escalation").await;
    assert_eq!(escalations.len(), 3);
    assert!(
        escalations[2].1.contains("whole cadence late"),
        "{}",
        escalations[2].1
    );
    assert_eq!(people(&escalations[2].0), ["dave", "laura"]);
    ok(
        &rt,
        &id,
        "laura",
        post_status("Recovered on the secondary acquirer; rolling back gateway v5.2."),
    )
    .await;

    // Optional tasks are closed explicitly, with a reason.
    let err = invalid(
        &rt,
        &id,
        "erin",
        complete("respond", "notify_customers", TaskStatus::NotDoing, ""),
    )
    .await;
    assert_eq!(err.field.as_deref(), Some("note"));
    ok(
        &rt,
        &id,
        "erin",
        complete(
            "respond",
            "notify_customers",
            TaskStatus::NotDoing,
            "No contract requires direct notice; the status page covers it.",
        ),
    )
    .await;
    for item in ["assess_impact", "mitigate"] {
        ok(
            &rt,
            &id,
            "laura",
            complete("respond", item, TaskStatus::Done, ""),
        )
        .await;
    }
    assert_eq!(active(&rt, &id).await, ["resolve"]);

    // Resolved by the commander.
    forbidden(&rt, &id, "priya", submit("resolve", resolution())).await;
    let mut bad = resolution();
    bad["resolution"] = json!("fixed");
    let err = invalid(&rt, &id, "laura", submit("resolve", bad)).await;
    assert!(err.message.contains("at least 20"), "{err}");
    let mut bad = resolution();
    bad["final_severity"] = json!(1);
    invalid(&rt, &id, "laura", submit("resolve", bad)).await;
    ok(&rt, &id, "laura", submit("resolve", resolution())).await;
    assert_eq!(outcome(&rt, &id).await, Some(("resolved".into(), true)));
    let announced = told(&rt, &id, "notify").await;
    assert_eq!(
        announced[1].1,
        "Resolved [sev1] Card payments failing in EU"
    );
    closed(&rt, &id, "laura", post_status("All clear.")).await;
    unknown_instance_is_refused(&rt, "laura", post_status("All clear.")).await;

    assert_eq!(
        path(&rt, &id).await,
        [
            "declare",
            "triage",
            "page",
            "acknowledge",
            "respond",
            "resolve",
            "announce_resolved",
            "resolved",
        ]
    );
    assert_eq!(
        timeline(&rt, &id).await,
        [
            "erin started",
            "erin submitted declare",
            "acknowledge escalated to dave, laura (1)",
            "acknowledge escalated to dave, laura (2)",
            "laura did acknowledge.ack",
            "priya did respond.open_timeline",
            "erin did respond.status_page",
            "laura posted a status",
            "laura posted a status",
            "erin is not doing respond.notify_customers",
            "laura did respond.assess_impact",
            "laura did respond.mitigate",
            "laura submitted resolve",
            "ended resolved",
            "linked to post-mortem (triggered)",
        ]
    );
    let refusals: Vec<(String, String)> = security(&rt, &id)
        .await
        .into_iter()
        .map(|r| (r.person, r.command))
        .collect();
    assert_eq!(
        refusals,
        [
            ("mia".into(), "submit".into()),
            ("priya".into(), "complete".into()),
            ("priya".into(), "complete".into()),
            ("erin".into(), "complete".into()),
            ("mia".into(), "post-status".into()),
            ("priya".into(), "submit".into()),
        ]
    );
}

pub async fn a_sev3_skips_paging_and_runs_the_minor_checklist(env: &Env) {
    let rt = env.open().await;
    let id = start(&rt, "incident", "erin").await;
    ok(
        &rt,
        &id,
        "erin",
        submit(
            "declare",
            declaration("Slow invoice PDF exports", "sev3", "dave"),
        ),
    )
    .await;
    assert_eq!(active(&rt, &id).await, ["respond_minor"]);
    assert!(told(&rt, &id, "notify").await.is_empty(), "nobody paged");
    // Status updates every 4 hours here.
    assert!(
        super::advance(env, &rt, 4 * 60 * MINUTE - MINUTE).await > 0,
        "task reminders"
    );
    assert!(told(&rt, &id, "status_update_due").await.is_empty());
    super::advance(env, &rt, MINUTE).await;
    assert_eq!(told(&rt, &id, "status_update_due").await[0].0, ["dave"]);
    ok(
        &rt,
        &id,
        "priya",
        complete("respond_minor", "open_timeline", TaskStatus::Done, ""),
    )
    .await;
    for item in ["assess_impact", "mitigate"] {
        ok(
            &rt,
            &id,
            "dave",
            complete("respond_minor", item, TaskStatus::Done, ""),
        )
        .await;
    }
    let mut done = resolution();
    done["final_severity"] = json!("sev3");
    ok(&rt, &id, "dave", submit("resolve", done)).await;
    assert_eq!(outcome(&rt, &id).await, Some(("resolved".into(), true)));
    assert_eq!(
        path(&rt, &id).await,
        [
            "declare",
            "triage",
            "respond_minor",
            "resolve",
            "announce_resolved",
            "resolved",
        ]
    );
}
