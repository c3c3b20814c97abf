//! The instance page's doors over HTTP (status updates, signals, evidence, revoking and
//! delegating a decision): each offered only to whom the engine would let use it, each
//! decided by the engine, a refusal shown next to its form.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::Server;

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn page(s: &Server, who: &str, path: &str) -> String {
    let response = client()
        .get(s.url(path))
        .bearer_auth(&s.tokens[who])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

/// POSTs a page's form as `who`: the status and the page (empty for a redirect).
async fn send(s: &Server, who: &str, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let response = client()
        .post(s.url(path))
        .bearer_auth(&s.tokens[who])
        .form(fields)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn state(s: &Server, id: &str) -> Value {
    let (status, body) = s.get("ruth", &format!("/api/v1/instances/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["state"].clone()
}

pub async fn every_door_of_the_instance_page_goes_through_the_engine(s: &Server) {
    // A board gate allows delegation and revocation: bob, of the board, may delegate to
    // another member; carol, the requester, is offered neither.
    let id = s.deployment_of_risk("carol", "high").await;
    let path = format!("/instances/{id}");
    let bobs = page(s, "bob", &path).await;
    assert!(
        bobs.contains(&format!("{path}/delegate/cab_approval")),
        "delegate offered"
    );
    assert!(
        bobs.contains(r#"<option value="grace">"#) && !bobs.contains(r#"<option value="bob">"#)
    );
    let carols = page(s, "carol", &path).await;
    assert!(!carols.contains("/delegate/") && !carols.contains("/revoke/"));
    // A delegation to someone outside the board is refused next to its form, and nothing
    // is recorded; to grace it is.
    let version = state(s, &id).await["version"].clone();
    let (status, refused) = send(
        s,
        "bob",
        &format!("{path}/delegate/cab_approval"),
        &[("to", "carol"), ("reason", "away this week")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.contains(r#"id="delegate-cab_approval-error""#),
        "{refused}"
    );
    assert_eq!(state(s, &id).await["version"], version);
    let (status, _) = send(
        s,
        "bob",
        &format!("{path}/delegate/cab_approval"),
        &[("to", "grace"), ("reason", "away this week")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Nina approves; her page offers to revoke it (and no longer to decide), and revoking
    // takes her decision back.
    let (status, body) = s
        .post(
            "nina",
            &format!("/api/v1/instances/{id}/decide"),
            &json!({"step": "cab_approval", "verdict": "approve", "justification": "fine"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ninas = page(s, "nina", &path).await;
    assert!(ninas.contains(&format!("{path}/revoke/cab_approval")));
    let (status, _) = send(
        s,
        "nina",
        &format!("{path}/revoke/cab_approval"),
        &[("reason", "the rollback plan was not tested")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let gate = &state(s, &id).await["active"]["cab_approval"]["gate"];
    assert!(gate["decisions"].get("nina").is_none(), "{gate}");

    // Evidence from the page: the requester attaches a file; an empty one is refused.
    assert!(carols.contains(&format!(r#"action="{path}/evidence""#)));
    assert!(!page(s, "ruth", &path).await.contains("/evidence\""));
    let upload = |name: &'static str, bytes: &'static [u8]| {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(name)
            .mime_str("text/plain")
            .unwrap();
        client()
            .post(s.url(&format!("{path}/evidence")))
            .bearer_auth(&s.tokens["carol"])
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
    };
    let empty = upload("empty.txt", b"").await.unwrap();
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty
            .text()
            .await
            .unwrap()
            .contains("an empty file is not evidence")
    );
    let sent = upload("plan.txt", b"terraform plan: 1 to change")
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let evidence = &state(s, &id).await["evidence"];
    assert_eq!(evidence[0]["name"], "plan.txt", "{evidence}");

    // An incident: its commander posts a status update from the page before acknowledging;
    // the scribe is not offered the form, and one sent anyway is refused by the engine.
    let (status, body) = s
        .post(
            "carol",
            "/api/v1/instances",
            &json!({"workflow": "incident"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let incident = body["instance"].as_str().unwrap().to_owned();
    let (status, body) = s
        .post(
            "carol",
            &format!("/api/v1/instances/{incident}/submit"),
            &json!({"step": "declare", "values": {
                "title": "Card payments failing in EU", "severity": "sev2",
                "summary": "Error rate at 30% since 10:02", "commander": "bob",
                "scribe": "grace", "comms": "carol"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let path = format!("/instances/{incident}");
    let form = format!("{path}/post-status/acknowledge");
    assert!(page(s, "bob", &path).await.contains(&form));
    assert!(!page(s, "grace", &path).await.contains(&form));
    let (status, refused) = send(s, "grace", &form, &[("text", "looking")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, refused) = send(s, "bob", &form, &[("text", " ")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.contains(r#"id="status-acknowledge-error""#),
        "{refused}"
    );
    let (status, _) = send(
        s,
        "bob",
        &form,
        &[("text", "EU acquirer timing out; failing over")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // And through the API, still before the acknowledgement.
    let (status, body) = s
        .post(
            "bob",
            &format!("/api/v1/instances/{incident}/post-status"),
            &json!({"text": "failover done; error rate back under 1%"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, timeline) = s
        .get("ruth", &format!("/api/v1/instances/{incident}/timeline"))
        .await;
    let timeline = timeline.to_string();
    assert!(
        timeline.contains("failing over") && timeline.contains("back under 1%"),
        "{timeline}"
    );
    assert_eq!(
        state(s, &incident).await["active"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["acknowledge"],
        "both before the acknowledgement"
    );
}
