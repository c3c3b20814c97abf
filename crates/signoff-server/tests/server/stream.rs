//! The live event stream: resuming with `Last-Event-ID` skips and repeats nothing; a participant
//! following one instance sees its events only.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::Server;

/// One server-sent event.
#[derive(Debug)]
struct Sse {
    id: u64,
    event: String,
    data: Value,
}

/// Reads `n` events from a stream response, failing after a few seconds without them.
async fn read_events(response: reqwest::Response, n: usize) -> Vec<Sse> {
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut bytes = response.bytes_stream();
    let mut buffer = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), bytes.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events arrived: {out:?}", out.len()))
            .expect("the stream stays open")
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")))
                    .map(|v| v.trim_start().to_owned())
            };
            // Keep-alive comments carry no id.
            let Some(id) = field("id") else { continue };
            out.push(Sse {
                id: id.parse().unwrap(),
                event: field("event").unwrap(),
                data: serde_json::from_str(&field("data").unwrap()).unwrap(),
            });
        }
    }
    out
}

pub async fn the_live_stream_resumes_after_last_event_id_without_gaps(s: &Server) {
    s.low_risk_deployment("carol").await;
    let first_tail = s.tail().await;
    let response = s
        .request("ruth", Method::GET, "/api/v1/events?after=0")
        .send()
        .await
        .unwrap();
    let first = read_events(response, 5).await;
    let ids: Vec<u64> = first.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5], "from the start, in order");
    assert_eq!(first[0].data["specversion"], "1.0");
    assert_eq!(first[0].event, first[0].data["type"].as_str().unwrap());

    // The client went away after event 5; more happens; it comes back with Last-Event-ID.
    let id = s.low_risk_deployment("carol").await;
    s.post(
        "bob",
        &format!("/api/v1/instances/{id}/decide"),
        &json!({"step": "team_review", "verdict": "approve", "justification": "pool size is fine"}),
    )
    .await;
    let tail = s.tail().await;
    assert!(tail > first_tail);
    let response = s
        .request("ruth", Method::GET, "/api/v1/events")
        .header("Last-Event-ID", "5")
        .send()
        .await
        .unwrap();
    let rest = read_events(response, usize::try_from(tail - 5).unwrap()).await;
    let ids: Vec<u64> = rest.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (6..=tail).collect::<Vec<_>>(),
        "nothing skipped or repeated"
    );

    // Live: an event committed while the client listens arrives.
    let response = s
        .request("ruth", Method::GET, "/api/v1/events")
        .header("Last-Event-ID", tail.to_string())
        .send()
        .await
        .unwrap();
    let listening = tokio::spawn(read_events(response, 1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.post(
        "carol",
        &format!("/api/v1/instances/{id}/comment"),
        &json!({"text": "deployed at 14:05"}),
    )
    .await;
    let live = listening.await.unwrap();
    assert_eq!(live[0].id, tail + 1);
    assert_eq!(live[0].event, "signoff.comment.added");

    assert_eq!(
        s.request("ruth", Method::GET, "/api/v1/events")
            .header("Last-Event-ID", "five")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
}

pub async fn a_participant_follows_one_instance_and_sees_nothing_else(s: &Server) {
    let mine = s.low_risk_deployment("carol").await;
    let other = s.low_risk_deployment("bob").await;
    let response = s
        .request(
            "carol",
            Method::GET,
            &format!("/api/v1/events?after=0&instance={mine}"),
        )
        .send()
        .await
        .unwrap();
    s.post(
        "bob",
        &format!("/api/v1/instances/{other}/comment"),
        &json!({"text": "not for carol"}),
    )
    .await;
    s.post(
        "carol",
        &format!("/api/v1/instances/{mine}/comment"),
        &json!({"text": "for carol"}),
    )
    .await;
    // Bob's instance's events lie between carol's in the log: a stream that let them through
    // would reach this count before carol's comment.
    let n = s.runtime.instance_events(&mine).await.unwrap().len();
    let seen = read_events(response, n).await;
    assert!(
        seen.iter()
            .all(|e| e.data["streamid"] == format!("instance/{mine}")),
        "{seen:?}"
    );
    assert_eq!(seen.last().unwrap().event, "signoff.comment.added");

    // Mia (operations) follows everything she may see: her own override, none of the
    // deployments before it, nor the directory and token events.
    let response = s
        .request("mia", Method::GET, "/api/v1/events?after=0")
        .send()
        .await
        .unwrap();
    let (status, started) = s
        .post(
            "mia",
            "/api/v1/instances",
            &json!({"workflow": "override-justification"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let hers = started["instance"].as_str().unwrap();
    let n = s.runtime.instance_events(hers).await.unwrap().len();
    let seen = read_events(response, n).await;
    assert!(
        seen.iter()
            .all(|e| e.data["streamid"] == format!("instance/{hers}")),
        "{seen:?}"
    );

    // Nor may she follow an instance she cannot see.
    let (status, _) = crate::answer(
        s.request(
            "mia",
            Method::GET,
            &format!("/api/v1/events?instance={mine}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
