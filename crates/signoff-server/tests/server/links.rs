//! An email's decision links, end to end: the outbox emails a high-risk deployment request to
//! the change board and legal through a real SMTP server on loopback (aiosmtpd); the links are
//! read out of the emails and used against the server as a mail scanner and people would.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use signoff_core::StreamId;
use signoff_core::engine::{InstanceEvent, Verdict};
use signoff_core::link::LinkClaims;
use signoff_email::sink::{Sink, python};
use signoff_email::{EmailChannel, Settings};

use crate::Server;

/// Each person's links, by verdict, from the plain text of the emails they received.
fn links(sink: &Sink) -> Vec<(String, Verdict, String)> {
    let mut out = Vec::new();
    for (to, _, read) in sink.received() {
        let plain = read["plain"].as_str().unwrap_or_default();
        for line in plain.lines() {
            let verdict = if line.starts_with("Approve… ") {
                Verdict::Approve
            } else if line.starts_with("Reject… ") {
                Verdict::Reject
            } else {
                continue;
            };
            let url = line.split_once(' ').unwrap().1.trim().to_owned();
            let person = to.split('@').next().unwrap().to_owned();
            out.push((person, verdict, url));
        }
    }
    out
}

fn link_of(all: &[(String, Verdict, String)], person: &str, verdict: Verdict) -> String {
    all.iter()
        .find(|(p, v, _)| p == person && *v == verdict)
        .unwrap_or_else(|| panic!("no {verdict:?} link for {person} in {all:?}"))
        .2
        .clone()
}

/// Where `url` points on this server.
fn on(s: &Server, url: &str) -> String {
    let path = url
        .split_once("/links/")
        .map(|(_, token)| format!("/links/{token}"))
        .unwrap();
    s.url(&path)
}

/// The confirmation page a link opens.
async fn page_of(s: &Server, url: &str) -> String {
    let response = s.http.get(on(s, url)).send().await.unwrap();
    response.text().await.unwrap()
}

async fn post(s: &Server, url: &str, verdict: &str, justification: &str) -> (StatusCode, String) {
    let token = url.rsplit('/').next().unwrap();
    let response = s
        .http
        .post(s.url(&format!("/links/{token}")))
        .form(&[
            ("verdict", verdict),
            ("justification", justification),
            ("shown", ""),
        ])
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The decisions recorded on `id`: who, how, through which channel, caused by what.
async fn decisions(s: &Server, id: &str) -> Vec<(String, Verdict, String, Option<String>)> {
    s.runtime
        .instance_events(id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(record, event)| match event {
            InstanceEvent::Decided { by, verdict, .. } => Some((
                by,
                verdict,
                record.metadata.channel.clone(),
                record.metadata.causation_id.clone(),
            )),
            _ => None,
        })
        .collect()
}

async fn refusals(s: &Server) -> Vec<Value> {
    s.runtime
        .log()
        .read_stream(&StreamId::parse("security").unwrap(), 1, 1_000)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(e.data.as_str()).unwrap())
        .collect()
}

pub async fn email_links_decide_only_when_posted_with_a_justification_and_once(s: &Server) {
    let Some(python) = python() else { return };
    let sink = Sink::start(&python);
    let channel = EmailChannel::new(&Settings {
        url: sink.url(),
        user: None,
        password: None,
        from: "signoff <signoff@example.com>".to_owned(),
        public_url: s.url(""),
        timeout: Duration::from_secs(10),
        link_key: Some(s.link_key.clone()),
        templates: None,
    })
    .unwrap();
    let id = s.deployment_of_risk("carol", "high").await;
    s.runtime.deliver(&channel).await.unwrap();
    let all = links(&sink);
    // The change board (bob, dave, grace, nina; not carol, who asks) and legal each get both.
    for person in ["bob", "dave", "grace", "nina", "frank", "hana"] {
        for verdict in [Verdict::Approve, Verdict::Reject] {
            link_of(&all, person, verdict);
        }
    }
    assert!(all.iter().all(|(p, ..)| p != "carol"), "{all:?}");
    let security_before = refusals(s).await.len();

    // A scanner fetches every link, with GET and HEAD, several times: nothing is decided and
    // nothing recorded.
    let tail = s.tail().await;
    for _ in 0..3 {
        for (_, _, url) in &all {
            for method in [Method::GET, Method::HEAD] {
                let response = s
                    .http
                    .request(method.clone(), on(s, url))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{method} {url}");
                assert_eq!(
                    response.headers()["cache-control"],
                    "no-store",
                    "{method} {url}"
                );
            }
        }
    }
    assert_eq!(s.tail().await, tail, "opening links wrote to the log");
    assert!(decisions(s, &id).await.is_empty());
    // The confirmation page shows the request and asks for a justification.
    let bob_approve = link_of(&all, "bob", Verdict::Approve);
    let page = page_of(s, &bob_approve).await;
    for shown in [
        "Approve: payments-api v1.2.3 to production",
        "Raise the connection pool size to 50",
        "name=\"justification\"",
        "Bob Nguyen",
    ] {
        assert!(page.contains(shown), "{shown:?} not in:\n{page}");
    }

    // A form submitted empty (as scanners that submit forms do) decides nothing.
    let (status, page) = post(s, &bob_approve, "approve", "  ").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("type why you decide so"), "{page}");
    assert!(decisions(s, &id).await.is_empty());

    // Posted with a justification: decided, as bob, through email, caused by the link.
    let (status, page) = post(s, &bob_approve, "approve", "Rollback plan checked").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("You approved"), "{page}");
    let bob_link_id = LinkClaims::id_for(&id, "cab_approval", 1, "bob", Verdict::Approve);
    assert_eq!(
        decisions(s, &id).await,
        vec![(
            "bob".to_owned(),
            Verdict::Approve,
            "email".to_owned(),
            Some(format!("link:{bob_link_id}"))
        )]
    );

    // His Reject link now says he decided already (the gate itself is still open), and
    // decides nothing.
    let bob_reject = link_of(&all, "bob", Verdict::Reject);
    let response = s.http.get(on(s, &bob_reject)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("you already approved") && !page.contains("no longer open"),
        "{page}"
    );

    // Each of these changes nothing, and says why.
    let tampered = {
        let mut t = bob_approve.clone().into_bytes();
        let at = t.len() - 5;
        t[at] = if t[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    // grace closes the board's gate through the API: dave's link is then for a closed gate.
    let (status, body) = s
        .post(
            "grace",
            &format!("/api/v1/instances/{id}/decide"),
            &serde_json::json!({"step": "cab_approval", "verdict": "approve", "justification": "ok"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expired = {
        let mut claims = signoff_core::link::verify(
            link_of(&all, "hana", Verdict::Approve)
                .rsplit('/')
                .next()
                .unwrap(),
            &s.link_key,
        )
        .unwrap();
        claims.expires = signoff_core::Timestamp(claims.issued.0 - 1);
        format!("{}/links/{}", s.url(""), claims.sign(&s.link_key))
    };
    let decided = decisions(s, &id).await.len();
    for (what, url, verdict, status, says) in [
        (
            "a second post",
            bob_approve.clone(),
            "approve",
            StatusCode::CONFLICT,
            "was used already",
        ),
        (
            "a tampered link",
            tampered,
            "approve",
            StatusCode::FORBIDDEN,
            "signature does not match",
        ),
        (
            "another verdict than the link's",
            link_of(&all, "nina", Verdict::Approve),
            "reject",
            StatusCode::CONFLICT,
            "is to approve, not to reject",
        ),
        (
            "a gate closed through another channel",
            link_of(&all, "dave", Verdict::Approve),
            "approve",
            StatusCode::CONFLICT,
            "approved by Grace",
        ),
        (
            "an expired link",
            expired,
            "approve",
            StatusCode::GONE,
            "expired at",
        ),
    ] {
        let (got, page) = post(s, &url, verdict, "Looks fine to me").await;
        assert_eq!(got, status, "{what}: {page}");
        assert!(page.contains(says), "{what}: {says:?} not in:\n{page}");
        assert!(page.contains("Nothing was decided"), "{what}: {page}");
    }
    assert_eq!(
        decisions(s, &id).await.len(),
        decided,
        "a refused link decided"
    );
    // Every refused use is in the security stream, with why.
    let recorded = refusals(s).await;
    let new = &recorded[security_before..];
    assert_eq!(new.len(), 5, "{new:#?}");
    for (refusal, says) in new.iter().zip([
        "used already",
        "signature does not match",
        "not to reject",
        "no longer open",
        "expired",
    ]) {
        assert_eq!(refusal["channel"], "email", "{refusal}");
        assert!(
            refusal["reason"].as_str().unwrap().contains(says),
            "{says:?}: {refusal}"
        );
    }

    // What changed since the email is shown before frank decides.
    let carol = s.runtime.actor("carol").unwrap();
    s.runtime
        .attach(
            &id,
            "load-test.txt",
            "text/plain",
            b"p99 40 ms at 2x",
            &carol,
            "api",
        )
        .await
        .unwrap();
    let frank_reject = link_of(&all, "frank", Verdict::Reject);
    let page = page_of(s, &frank_reject).await;
    assert!(page.contains("changed since the email"), "{page}");
    assert!(page.contains("load-test.txt"), "{page}");
    // The gate's own rule for a rejection holds too (at least 10 characters here).
    let (status, page) = post(s, &frank_reject, "reject", "No.").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("at least 10"), "{page}");
}
