//! The REST API: a deployment approval from request to end, refusals, rights, the past, and
//! the API's own description.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use signoff_runtime::access::Scope;

use crate::{Server, answer};

/// Asserts a problem document of `status`, naming `field` and `rule` when given.
fn assert_problem(
    (status, body): &(StatusCode, Value),
    want: StatusCode,
    field: Option<&str>,
    rule: Option<&str>,
) {
    assert_eq!(*status, want, "{body}");
    assert_eq!(body["status"], want.as_u16(), "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
    if let Some(rule) = rule {
        assert_eq!(body["rule"], rule, "{body}");
    }
}

pub async fn a_deployment_is_requested_decided_and_ended_over_http(s: &Server) {
    let id = s.low_risk_deployment("carol").await;

    let (status, inbox) = s.get("bob", "/api/v1/inbox").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(inbox[0]["instance"], id.as_str(), "{inbox}");
    assert_eq!(inbox[0]["step"], "team_review");

    // The requester may not approve her own change: refused, and recorded for the auditor.
    let decide = format!("/api/v1/instances/{id}/decide");
    let refused = s
        .post(
            "carol",
            &decide,
            &json!({"step": "team_review", "verdict": "approve", "justification": "looks fine to me"}),
        )
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, None, Some("forbidden"));
    assert!(
        refused.1["detail"]
            .as_str()
            .unwrap()
            .contains("separation of duties"),
        "{}",
        refused.1
    );
    assert_eq!(
        s.types().await.last().map(String::as_str),
        Some("signoff.security.refused")
    );

    // Approving twice with one Idempotency-Key records one decision.
    let approve = json!({"step": "team_review", "verdict": "approve",
                         "justification": "pool size is fine for this load"});
    let mut answers = Vec::new();
    for replayed in [false, true] {
        let response = s
            .request("bob", Method::POST, &decide)
            .header("Idempotency-Key", "bob-approves-1")
            .json(&approve)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers().get("idempotent-replayed").is_some(),
            replayed
        );
        let (status, body) = answer(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        answers.push(body);
    }
    assert_eq!(answers[0], answers[1], "a retry gets the first answer");
    assert!(!answers[0]["events"].as_array().unwrap().is_empty());
    let decisions = s
        .types()
        .await
        .iter()
        .filter(|t| *t == "signoff.approval.decided")
        .count();
    assert_eq!(decisions, 1);

    let (status, view) = s.get("carol", &format!("/api/v1/instances/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["state"]["status"], "ended", "{view}");
    assert_eq!(view["state"]["outcome"], "approved", "{view}");
    assert_eq!(view["title"], "Deployment approval");

    let (status, timeline) = s
        .get("carol", &format!("/api/v1/instances/{id}/timeline"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let lines = timeline.as_array().unwrap();
    let decided = lines
        .iter()
        .find(|l| l["type"] == "signoff.approval.decided")
        .expect("the decision is on the timeline");
    assert_eq!(decided["actor"], "bob");
    assert_eq!(decided["channel"], "api");
    assert_eq!(lines[0]["type"], "signoff.instance.started");

    let (status, list) = s
        .get(
            "carol",
            "/api/v1/instances?workflow=deployment-approval&status=ended",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], id.as_str(), "{list}");
    assert_eq!(list[0]["outcome"], "approved");
    let (_, running) = s.get("carol", "/api/v1/instances?status=running").await;
    assert!(
        running
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["id"] != id.as_str()),
        "{running}"
    );

    // A start retried with its key starts one instance.
    let mut ids = Vec::new();
    // A retried start is answered as the first was: 201, the same instance.
    for want in [StatusCode::CREATED, StatusCode::CREATED] {
        let (status, body) = answer(
            s.request("carol", Method::POST, "/api/v1/instances")
                .header("Idempotency-Key", "pipeline-run-77")
                .json(&json!({"workflow": "deployment-approval"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, want, "{body}");
        ids.push(body["instance"].clone());
    }
    assert_eq!(ids[0], ids[1]);
}

pub async fn bad_input_gets_the_right_problem_and_writes_nothing(s: &Server) {
    let id = s.low_risk_deployment("carol").await;
    let decide = format!("/api/v1/instances/{id}/decide");
    let before = s.tail().await;
    let send = |who: &'static str, body: &'static str, content_type: &'static str| {
        let path = decide.clone();
        async move {
            answer(
                s.request(who, Method::POST, &path)
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    assert_problem(
        &send("bob", "{\"step\": ", "application/json").await,
        StatusCode::BAD_REQUEST,
        None,
        Some("json-syntax"),
    );
    assert_problem(
        &send(
            "bob",
            r#"{"step":"team_review","verdict":"approve","colour":"red"}"#,
            "application/json",
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("colour"),
        Some("unknown-field"),
    );
    assert_problem(
        &send(
            "bob",
            r#"{"step":"team_review","verdict":"maybe"}"#,
            "application/json",
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("verdict"),
        Some("one-of"),
    );
    assert_problem(
        &send("bob", r#"{"verdict":"approve"}"#, "application/json").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("step"),
        Some("required"),
    );
    assert_problem(
        &send(
            "bob",
            "step=team_review",
            "application/x-www-form-urlencoded",
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        None,
        None,
    );
    // The engine's own refusal: a rejection needs a justification of at least 10 characters.
    assert_problem(
        &s.post(
            "bob",
            &decide,
            &json!({"step": "team_review", "verdict": "reject", "justification": "no"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        Some("invalid"),
    );
    let huge = format!(
        r#"{{"text":"{}"}}"#,
        "x".repeat(signoff_server::MAX_BODY_BYTES + 1)
    );
    let (status, body) = answer(
        s.request(
            "bob",
            Method::POST,
            &format!("/api/v1/instances/{id}/comment"),
        )
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_problem(&(status, body), StatusCode::PAYLOAD_TOO_LARGE, None, None);
    assert_problem(
        &s.get(
            "bob",
            "/api/v1/instances/01936b2e-0000-7000-8000-000000000000",
        )
        .await,
        StatusCode::NOT_FOUND,
        None,
        None,
    );
    assert_problem(
        &s.post(
            "bob",
            "/api/v1/instances/01936b2e-0000-7000-8000-000000000000/comment",
            &json!({"text": "hello"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        None,
        None,
    );
    assert_problem(
        &s.get("bob", "/api/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        None,
        None,
    );
    assert_problem(
        &s.get("bob", "/api/v1/instances?status=sleeping").await,
        StatusCode::BAD_REQUEST,
        Some("status"),
        Some("one-of"),
    );
    // A limit outside what the document allows is refused, not silently changed.
    for limit in ["0", "1001"] {
        assert_problem(
            &s.get("bob", &format!("/api/v1/instances?limit={limit}"))
                .await,
            StatusCode::BAD_REQUEST,
            Some("limit"),
            Some("range"),
        );
    }
    assert_problem(
        &s.get("bob", &format!("/api/v1/instances/{id}/state?at=yesterday"))
            .await,
        StatusCode::BAD_REQUEST,
        Some("at"),
        None,
    );

    // Tokens: missing, unknown, revoked, expired.
    let anonymous = answer(s.http.get(s.url("/api/v1/inbox")).send().await.unwrap()).await;
    assert_problem(&anonymous, StatusCode::UNAUTHORIZED, None, None);
    let forged = answer(
        s.http
            .get(s.url("/api/v1/inbox"))
            .bearer_auth("signoff_0000")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&forged, StatusCode::UNAUTHORIZED, None, None);
    assert_eq!(s.tail().await, before, "refused requests wrote nothing");

    let revoked = s
        .runtime
        .issue_token("bob", "old laptop", None, &Scope::default(), "system")
        .await
        .unwrap();
    s.runtime
        .revoke_token(&revoked.token.id, "laptop lost", "system")
        .await
        .unwrap();
    let expired = s
        .runtime
        .issue_token(
            "bob",
            "short",
            Some(signoff_core::Timestamp(s.runtime.now().0 - 1)),
            &Scope::default(),
            "system",
        )
        .await
        .unwrap();
    for (secret, word) in [
        (revoked.secret.expose(), "revoked"),
        (expired.secret.expose(), "expired"),
    ] {
        let (status, body) = answer(
            s.http
                .get(s.url("/api/v1/inbox"))
                .bearer_auth(secret)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(word), "{body}");
    }
    let (_, view) = s.get("carol", &format!("/api/v1/instances/{id}")).await;
    assert_eq!(view["state"]["status"], "running", "{view}");
}

pub async fn auditors_read_everything_and_change_nothing_others_see_their_part(s: &Server) {
    let id = s.low_risk_deployment("carol").await;
    let path = format!("/api/v1/instances/{id}");

    // Ruth audits: she reads, exports and verifies, and may not decide.
    let (status, _) = s.get("ruth", &path).await;
    assert_eq!(status, StatusCode::OK);
    let (status, me) = s.get("ruth", "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["auditor"], true);
    let (status, verified) = s.get("ruth", "/api/v1/verify").await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["intact"], true);
    let export = s
        .request("ruth", Method::GET, "/api/v1/export")
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    assert_eq!(
        export.headers()["content-type"].to_str().unwrap(),
        "application/jsonl"
    );
    let text = export.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, s.tail().await);
    assert!(lines.iter().all(|l| l["specversion"] == "1.0"));
    let refused = s
        .post(
            "ruth",
            &format!("{path}/decide"),
            &json!({"step": "team_review", "verdict": "approve", "justification": "audited and fine"}),
        )
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, None, Some("forbidden"));

    // Mia (operations) takes no part in deployments: she cannot see this one, and it is recorded.
    let before = s.tail().await;
    assert_problem(
        &s.get("mia", &path).await,
        StatusCode::FORBIDDEN,
        None,
        Some("forbidden"),
    );
    assert_problem(
        &s.get("mia", &format!("{path}/timeline")).await,
        StatusCode::FORBIDDEN,
        None,
        None,
    );
    assert_problem(
        &s.get("mia", "/api/v1/export").await,
        StatusCode::FORBIDDEN,
        None,
        None,
    );
    assert_problem(
        &s.get("mia", "/api/v1/verify").await,
        StatusCode::FORBIDDEN,
        None,
        None,
    );
    // The page answers the same, in words.
    let page = s
        .http
        .get(s.url(&path.replace("/api/v1", "")))
        .header("cookie", format!("signoff_token={}", s.tokens["mia"]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.text().await.unwrap().contains("id=\"page-error\""));
    let types = s.types().await;
    assert_eq!(s.tail().await, before + 5, "each refusal is recorded once");
    assert!(
        types[types.len() - 5..]
            .iter()
            .all(|t| t == "signoff.security.refused")
    );
    // A comment is recorded in the instance: not by someone who may not read it, nor by an
    // auditor, who changes nothing. Each refusal goes to the security stream, and only it.
    for who in ["mia", "ruth"] {
        let before = s.tail().await;
        let refused = s
            .post(who, &format!("{path}/comment"), &json!({"text": "hello"}))
            .await;
        assert_problem(&refused, StatusCode::FORBIDDEN, None, Some("forbidden"));
        assert_eq!(s.tail().await, before + 1, "only the refusal is recorded");
        let last = s
            .runtime
            .events_of_type("signoff.security.refused")
            .await
            .unwrap()
            .pop()
            .unwrap();
        let data: Value = serde_json::from_str(last.data.as_str()).unwrap();
        assert_eq!(data["command"], "comment", "{data}");
        assert_eq!(data["person"], who, "{data}");
    }
    let (status, body) = s
        .post(
            "carol",
            &format!("{path}/comment"),
            &json!({"text": "thanks"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The instance's page offers the comment form only to those the engine would let comment.
    for (who, offered) in [("ruth", false), ("carol", true)] {
        let page = s
            .http
            .get(s.url(&path.replace("/api/v1", "")))
            .header("cookie", format!("signoff_token={}", s.tokens[who]))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            page.contains(&format!("/instances/{id}/comment")),
            offered,
            "{who}"
        );
    }
    let (status, list) = s.get("mia", "/api/v1/instances").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|i| i["id"] != id.as_str()),
        "{list}"
    );
    // Bob reviews for the owning team: the instance is in his list.
    let (_, list) = s.get("bob", "/api/v1/instances").await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str()),
        "{list}"
    );
    // Exporting one instance is for whoever may see it.
    let one = s
        .request(
            "carol",
            Method::GET,
            &format!("/api/v1/export?instance={id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    let text = one.text().await.unwrap();
    assert!(text.lines().count() >= 3);
    assert!(text.lines().all(|l| l.contains(&id)));
}

pub async fn the_state_at_a_past_moment_is_what_was_live_then(s: &Server) {
    let id = s.low_risk_deployment("carol").await;
    let (_, before) = s.get("carol", &format!("/api/v1/instances/{id}")).await;
    let moment = s.runtime.now().to_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, _) = s
        .post(
            "bob",
            &format!("/api/v1/instances/{id}/decide"),
            &json!({"step": "team_review", "verdict": "reject",
                    "justification": "the rollback plan is missing the database step"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, then) = s
        .get(
            "ruth",
            &format!(
                "/api/v1/instances/{id}/state?at={}",
                moment.replace('+', "%2B")
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{then}");
    assert_eq!(then["state"], before["state"]);
    assert_eq!(then["state"]["status"], "running");
    assert_eq!(then["at"], moment.as_str());
    let (_, now) = s.get("ruth", &format!("/api/v1/instances/{id}")).await;
    assert_eq!(now["state"]["outcome"], "rejected", "{now}");
    let (status, body) = s
        .get(
            "ruth",
            &format!("/api/v1/instances/{id}/state?at=2000-01-01T00:00:00Z"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

pub async fn the_api_describes_itself_and_counts_for_operators(s: &Server) {
    let doc: Value = s
        .http
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/definitions",
        "/api/v1/definitions/validate",
        "/api/v1/instances",
        "/api/v1/instances/{id}",
        "/api/v1/instances/{id}/state",
        "/api/v1/instances/{id}/timeline",
        "/api/v1/instances/{id}/decide",
        "/api/v1/inbox",
        "/api/v1/export",
        "/api/v1/verify",
        "/api/v1/events",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let docs = s.http.get(s.url("/api/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.text()
            .await
            .unwrap()
            .contains("/api/v1/instances/{id}/decide")
    );

    let (status, list) = s.get("carol", "/api/v1/definitions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 5);
    let (status, one) = s.get("carol", "/api/v1/definitions/dpia").await;
    assert_eq!(status, StatusCode::OK);
    assert!(one["source"].as_str().unwrap().contains("id: dpia"));
    let (status, checked) = s
        .post(
            "carol",
            "/api/v1/definitions/validate",
            &json!({"file": "mine.yaml", "source": "id: x\ntitle: X\nsteps:\n  - id: a\n    nope: 1\n"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(checked["valid"], false);
    assert_eq!(checked["problems"][0]["file"], "mine.yaml");
    assert_eq!(checked["problems"][0]["line"], 5, "{checked}");
    // serde would read a struct from an array of its fields; the API takes objects only.
    let (status, refused) = s
        .post("carol", "/api/v1/definitions/validate", &json!(["id: x\n"]))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["rule"], "type", "{refused}");

    let id = s.low_risk_deployment("carol").await;
    s.post(
        "bob",
        &format!("/api/v1/instances/{id}/decide"),
        &json!({"step": "team_review", "verdict": "approve", "justification": "pool size is fine"}),
    )
    .await;
    let metrics = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("signoff_commands_total{command=\"decide\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("signoff_command_seconds_count 3"),
        "{metrics}"
    );
    assert!(metrics.contains("signoff_timers_pending "), "{metrics}");
}

pub async fn an_idempotency_key_belongs_to_its_caller_and_its_request(s: &Server) {
    let a = s.low_risk_deployment("carol").await;
    let b = s.low_risk_deployment("bob").await;
    let post = |who: &'static str, id: &str, text: &str| {
        s.request(
            who,
            Method::POST,
            &format!("/api/v1/instances/{id}/comment"),
        )
        .header("Idempotency-Key", "same-key-1")
        .json(&json!({ "text": text }))
        .send()
    };
    // Two callers, one key: both are recorded.
    let (status, first) = answer(post("carol", &a, "on A").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = answer(post("bob", &b, "on B").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["instance"], b.as_str(), "{second}");
    assert_eq!(
        second["events"][0]["type"], "signoff.comment.added",
        "{second}"
    );
    // The same caller's key on another request: refused, nothing written.
    let before = s.types().await.len();
    let reused = answer(post("carol", &a, "something else").await.unwrap()).await;
    assert_problem(
        &reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("Idempotency-Key"),
        Some("idempotency-key-reused"),
    );
    let reused = answer(post("carol", &b, "on A").await.unwrap()).await;
    assert_eq!(reused.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", reused.1);
    assert_eq!(s.types().await.len(), before);
    // A start replayed answers as the first did: 201, the same body.
    let start = json!({"workflow": "deployment-approval"});
    let mut starts = Vec::new();
    for _ in 0..2 {
        let response = s
            .request("carol", Method::POST, "/api/v1/instances")
            .header("Idempotency-Key", "start-once")
            .json(&start)
            .send()
            .await
            .unwrap();
        starts.push(answer(response).await);
    }
    assert_eq!(starts[0].0, StatusCode::CREATED);
    assert_eq!(starts[0], starts[1]);
}

pub async fn a_retry_is_for_operators_and_only_of_a_stopped_step(s: &Server) {
    let id = s.low_risk_deployment("carol").await;
    let path = format!("/api/v1/instances/{id}/retry");
    let before = s.tail().await;
    // Not an operator: refused, and recorded as a security matter.
    let (status, body) = s
        .post("carol", &path, &json!({"step": "team_review"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("operator"),
        "{body}"
    );
    let security = s
        .runtime
        .log()
        .read_stream(&signoff_core::StreamId::parse("security").unwrap(), 1, 100)
        .await
        .unwrap();
    assert!(
        security
            .iter()
            .any(|r| r.data.as_str().contains("\"command\":\"retry\"")),
        "{security:?}"
    );
    // An operator, on a step that did not stop: nothing to retry, nothing written.
    let (status, body) = s.post("mia", &path, &json!({"step": "team_review"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("nothing to retry"),
        "{body}"
    );
    assert_eq!(s.tail().await, before + 1, "only the refusal was recorded");
    let (status, _) = s.post("mia", &path, &json!({"stp": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let doc: Value = s
        .http
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/instances/{id}/retry"]["post"].is_object());
}

/// A pipeline's token (`signoff token issue --read-only`) reads and follows an instance and
/// changes nothing, through any door: each attempt is refused with 403 and recorded.
pub async fn a_read_only_token_reads_and_is_refused_every_change(s: &Server) {
    let id = s.low_risk_deployment("carol").await;
    let token = s
        .runtime
        .issue_token(
            "bob",
            "ci-pipeline",
            None,
            &Scope {
                read_only: true,
                ..Scope::default()
            },
            "system",
        )
        .await
        .unwrap();
    assert!(token.token.read_only);
    let secret = token.secret.expose();
    let get = |path: String| {
        let request = s.http.get(s.url(&path)).bearer_auth(secret);
        async move { answer(request.send().await.unwrap()).await }
    };
    let approve = |secret: &str| {
        let request = s
            .http
            .post(s.url(&format!("/api/v1/instances/{id}/decide")))
            .bearer_auth(secret)
            .json(&json!({"step": "team_review", "verdict": "approve",
                          "justification": "approved from a pipeline"}));
        async move { answer(request.send().await.unwrap()).await }
    };
    let (status, view) = get(format!("/api/v1/instances/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["state"]["status"], "running", "{view}");
    let (status, timeline) = get(format!("/api/v1/instances/{id}/timeline")).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    // Checking a definition changes nothing either.
    let (status, _) = answer(
        s.http
            .post(s.url("/api/v1/definitions/validate"))
            .bearer_auth(secret)
            .json(&json!({"source": "id: x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_ne!(status, StatusCode::FORBIDDEN);

    // bob may approve with his own full token; with this one he may not.
    let before = s.tail().await;
    let refused = approve(secret).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, None, Some("read-only"));
    // The web form is a door too.
    let page = s
        .http
        .post(s.url(&format!("/instances/{id}/decide/team_review")))
        .header("cookie", format!("signoff_token={secret}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("verdict=approve&justification=approved+from+a+pipeline")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        s.tail().await,
        before + 2,
        "only the two refusals are recorded"
    );
    let refusals = s
        .runtime
        .events_of_type("signoff.security.refused")
        .await
        .unwrap();
    let last: Vec<Value> = refusals[refusals.len() - 2..]
        .iter()
        .map(|e| serde_json::from_str(e.data.as_str()).unwrap())
        .collect();
    assert_eq!(last[0]["person"], "bob", "{last:?}");
    assert_eq!(
        last[0]["command"],
        format!("POST /api/v1/instances/{id}/decide"),
        "{last:?}"
    );
    assert_eq!(last[1]["channel"], "web", "{last:?}");
    assert!(
        last[0]["reason"]
            .as_str()
            .unwrap()
            .contains("may only read"),
        "{last:?}"
    );
    let (_, view) = get(format!("/api/v1/instances/{id}")).await;
    assert_eq!(
        view["state"]["status"], "running",
        "nothing was decided: {view}"
    );

    // Issued a moment ago by another process (`signoff token issue` next to the server): the
    // server has not read it yet, and must not take it for a token that may change things.
    let other = signoff_runtime::Runtime::new(
        s.runtime.log().clone(),
        std::sync::Arc::new(signoff_store::SystemClock),
        signoff_runtime::Definitions::default(),
        s.dir.path().join("evidence"),
    );
    other.catch_up().await.unwrap();
    let fresh = other
        .issue_token(
            "bob",
            "another pipeline",
            None,
            &Scope {
                read_only: true,
                ..Scope::default()
            },
            "system",
        )
        .await
        .unwrap();
    assert!(
        s.runtime.authenticate(fresh.secret.expose()).is_err(),
        "the server has not folded the new token yet"
    );
    let refused = approve(fresh.secret.expose()).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, None, Some("read-only"));
    let (_, view) = get(format!("/api/v1/instances/{id}")).await;
    assert_eq!(
        view["state"]["status"], "running",
        "nothing was decided: {view}"
    );
}

/// A token issued for one workflow (`signoff token issue --workflow deployment-approval`)
/// reaches that workflow only, whatever its owner's roles: the others are neither read, listed,
/// started nor changed through it, and the whole log is not exported; each refusal is recorded.
pub async fn a_token_for_one_workflow_reaches_no_other(s: &Server) {
    let deployment = s.low_risk_deployment("carol").await;
    let (status, body) = s
        .post("alice", "/api/v1/instances", &json!({"workflow": "dpia"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let dpia = body["instance"].as_str().unwrap().to_owned();
    let issue = |owner: &'static str, workflows: &[&str]| {
        let scope = Scope {
            read_only: false,
            workflows: workflows.iter().map(|w| (*w).to_owned()).collect(),
        };
        async move {
            s.runtime
                .issue_token(owner, "pipeline", None, &scope, "system")
                .await
                .unwrap()
                .secret
                .expose()
                .to_owned()
        }
    };
    // grace is a controller (DPIA) and on the change board (deployments).
    let full = issue("grace", &[]).await;
    let scoped = issue("grace", &["deployment-approval"]).await;
    let call = |secret: &str, method: Method, path: &str, body: Option<Value>| {
        let mut request = s.http.request(method, s.url(path)).bearer_auth(secret);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move { answer(request.send().await.unwrap()).await }
    };
    let read_dpia = format!("/api/v1/instances/{dpia}");
    let (status, view) = call(&full, Method::GET, &read_dpia, None).await;
    assert_eq!(status, StatusCode::OK, "her roles reach it: {view}");

    let before = s.tail().await;
    let refused = call(&scoped, Method::GET, &read_dpia, None).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, None, None);
    let view = refused.1;
    assert!(
        view["detail"]
            .as_str()
            .unwrap()
            .contains("\"deployment-approval\" only"),
        "{view}"
    );
    let comment = json!({"text": "looks fine"});
    let (status, _) = call(
        &scoped,
        Method::POST,
        &format!("/api/v1/instances/{dpia}/comment"),
        Some(comment.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &scoped,
        Method::POST,
        "/api/v1/instances",
        Some(json!({"workflow": "dpia"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let refusals = s
        .runtime
        .events_of_type("signoff.security.refused")
        .await
        .unwrap();
    let recorded: Vec<Value> = refusals
        .iter()
        .filter(|e| e.sequence > before)
        .map(|e| serde_json::from_str(e.data.as_str()).unwrap())
        .collect();
    assert_eq!(
        recorded.len(),
        3,
        "read, comment and start refused: {recorded:?}"
    );
    assert!(
        recorded
            .iter()
            .all(|r| r["person"] == "grace" && r["workflow"] == "dpia"),
        "{recorded:?}"
    );
    assert_eq!(
        s.tail().await,
        before + 3,
        "nothing but the refusals written"
    );

    // Its own workflow it reaches as her roles do.
    let (status, view) = call(
        &scoped,
        Method::GET,
        &format!("/api/v1/instances/{deployment}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let (status, view) = call(
        &scoped,
        Method::POST,
        &format!("/api/v1/instances/{deployment}/comment"),
        Some(comment),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let (status, list) = call(&scoped, Method::GET, "/api/v1/instances", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["workflow"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&"deployment-approval"), "{list}");
    assert!(!listed.contains(&"dpia"), "{list}");
    let (_, me) = call(&scoped, Method::GET, "/api/v1/me", None).await;
    assert_eq!(me["workflows"], json!(["deployment-approval"]), "{me}");

    // An auditor's token for one workflow does not export the whole log.
    let auditor = issue("ruth", &["deployment-approval"]).await;
    let (status, _) = call(&auditor, Method::GET, "/api/v1/export", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &auditor,
        Method::GET,
        &format!("/api/v1/export?instance={deployment}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A workflow signoff does not know is refused when the token is issued.
    let unknown = s
        .runtime
        .issue_token(
            "grace",
            "typo",
            None,
            &Scope {
                read_only: false,
                workflows: vec!["deployment-aproval".into()],
            },
            "system",
        )
        .await;
    assert!(unknown.is_err(), "{unknown:?}");
}

/// Evidence is uploaded by those an instance involves, and a refused upload stores nothing;
/// notifications are read by their addressee, by whoever reads the instance, and by auditors.
pub async fn evidence_and_notifications_through_the_api(s: &Server) {
    let id = s.low_risk_deployment("carol").await;
    let evidence = s.dir.path().join("evidence/sha256");
    let stored = || std::fs::read_dir(&evidence).map_or(0, Iterator::count);
    let upload = |who: &str, name: &str| {
        let request = s
            .request(
                who,
                Method::POST,
                &format!("/api/v1/instances/{id}/evidence?name={name}"),
            )
            .header("content-type", "text/plain")
            .body("Plan: 1 to change, 0 to destroy.\n");
        async move { answer(request.send().await.unwrap()).await }
    };
    // alice takes no part in this deployment.
    let refused = upload("alice", "plan.txt").await;
    assert_problem(&refused, StatusCode::FORBIDDEN, None, None);
    assert_eq!(stored(), 0, "a refused upload stores nothing");
    let bad_name = upload("carol", "..%2Fplan.txt").await;
    assert_problem(
        &bad_name,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("name"),
        None,
    );
    let (status, body) = upload("carol", "plan.txt").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let attached = &body["events"][0];
    assert_eq!(attached["type"], "signoff.evidence.attached", "{body}");
    assert_eq!(attached["data"]["media_type"], "text/plain", "{body}");
    assert_eq!(stored(), 1);

    // bob is asked to review: he is told, and reads what he was told.
    let (status, mine) = s.get("bob", "/api/v1/notifications").await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let mine = mine.as_array().unwrap().clone();
    assert!(
        mine.iter()
            .any(|n| n["instance"] == id.as_str()
                && n["to"].as_array().unwrap().contains(&json!("bob"))),
        "{mine:?}"
    );
    // Another person's are for auditors.
    let refused = s.get("alice", "/api/v1/notifications?person=bob").await;
    assert_problem(&refused, StatusCode::FORBIDDEN, None, None);
    let (status, theirs) = s.get("ruth", "/api/v1/notifications?person=bob").await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    assert_eq!(theirs.as_array().unwrap(), &mine);
    // An instance's, for whoever reads it.
    let (status, of_it) = s
        .get("carol", &format!("/api/v1/notifications?instance={id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{of_it}");
    assert!(!of_it.as_array().unwrap().is_empty(), "{of_it}");
    let refused = s
        .get("alice", &format!("/api/v1/notifications?instance={id}"))
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, None, None);
}
