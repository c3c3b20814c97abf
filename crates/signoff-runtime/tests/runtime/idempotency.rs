//! Idempotency keys belong to their caller and their request; the engine's own keys are out of
//! every client's reach.

use serde_json::json;
use signoff_core::IdempotencyKey;
use signoff_core::engine::{Command, InstanceEvent};
use signoff_runtime::{Runtime, RuntimeError};

use crate::Env;

fn comment(text: &str) -> Command {
    Command::Comment { text: text.into() }
}

async fn started_by(rt: &Runtime, person: &str) -> String {
    rt.start("deploy", json!({}), person, "cli")
        .await
        .unwrap()
        .instance
}

fn commented(rt_events: &[(signoff_core::RecordedEvent, InstanceEvent)]) -> usize {
    rt_events
        .iter()
        .filter(|(_, e)| matches!(e, InstanceEvent::Commented { .. }))
        .count()
}

pub async fn two_callers_with_one_key_are_both_recorded(env: &Env) {
    let rt = env.open().await;
    let a = started_by(&rt, "rita").await;
    let b = started_by(&rt, "bea").await;
    let first = rt
        .execute(&a, comment("on A"), "rita", "api", Some("same-key-1"))
        .await
        .unwrap();
    let second = rt
        .execute(&b, comment("on B"), "bea", "api", Some("same-key-1"))
        .await
        .unwrap();
    assert!(!first.deduplicated && !second.deduplicated);
    assert_eq!(second.instance, b);
    assert_eq!(commented(&rt.instance_events(&a).await.unwrap()), 1);
    assert_eq!(commented(&rt.instance_events(&b).await.unwrap()), 1);
    // The same person through another channel is another caller too.
    let third = rt
        .execute(
            &a,
            comment("from the web"),
            "rita",
            "web",
            Some("same-key-1"),
        )
        .await
        .unwrap();
    assert!(!third.deduplicated);
    assert_eq!(commented(&rt.instance_events(&a).await.unwrap()), 2);
}

pub async fn a_key_reused_for_another_request_is_refused_and_a_retry_gets_the_first_answer(
    env: &Env,
) {
    let rt = env.open().await;
    let a = started_by(&rt, "rita").await;
    let b = started_by(&rt, "rita").await;
    let first = rt
        .execute(&a, comment("looks good"), "rita", "api", Some("k-7"))
        .await
        .unwrap();
    let version = rt.load(&a).await.unwrap().state.version;
    for (id, cmd) in [
        (&a, comment("something else")),
        (&b, comment("looks good")),
        (
            &a,
            Command::Cancel {
                reason: "looks good".into(),
            },
        ),
    ] {
        let err = rt.execute(id, cmd, "rita", "api", Some("k-7")).await;
        assert!(
            matches!(err, Err(RuntimeError::IdempotencyKeyReused)),
            "{err:?}"
        );
    }
    assert_eq!(rt.load(&a).await.unwrap().state.version, version);
    assert_eq!(commented(&rt.instance_events(&b).await.unwrap()), 0);

    let again = rt
        .execute(&a, comment("looks good"), "rita", "api", Some("k-7"))
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.version, first.version);
    assert_eq!(again.events, first.events, "the first answer, again");
    assert_eq!(commented(&rt.instance_events(&a).await.unwrap()), 1);
}

pub async fn a_start_retried_with_its_key_starts_once(env: &Env) {
    let rt = env.open().await;
    let input = json!({"emergency": false});
    let first = rt
        .start_for_client("deploy", input.clone(), "rita", "api", Some("start-1"))
        .await
        .unwrap();
    let again = rt
        .start_for_client("deploy", input, "rita", "api", Some("start-1"))
        .await
        .unwrap();
    assert_eq!(again.instance, first.instance);
    assert!(again.deduplicated && !first.deduplicated);
    assert_eq!(again.events, first.events);
    let other = rt
        .start_for_client(
            "deploy",
            json!({"emergency": true}),
            "rita",
            "api",
            Some("start-1"),
        )
        .await;
    assert!(
        matches!(other, Err(RuntimeError::IdempotencyKeyReused)),
        "{other:?}"
    );
    // Another caller's start with that key is another instance.
    let theirs = rt
        .start_for_client(
            "deploy",
            json!({"emergency": false}),
            "bea",
            "api",
            Some("start-1"),
        )
        .await
        .unwrap();
    assert_ne!(theirs.instance, first.instance);
    assert!(!theirs.deduplicated);
    // Once the key is forgotten, another start under it is a start of its own.
    env.advance(25 * 3_600);
    assert!(rt.forget_expired_client_keys().await.unwrap() >= 2);
    let later = rt
        .start_for_client(
            "deploy",
            json!({"emergency": true}),
            "rita",
            "api",
            Some("start-1"),
        )
        .await
        .unwrap();
    assert_ne!(later.instance, first.instance);
    assert!(!later.deduplicated && !later.events.is_empty());
}

pub async fn a_client_key_shaped_like_an_engine_key_stops_no_timer(env: &Env) {
    let rt = env.open().await;
    let id = started_by(&rt, "rita").await;
    rt.execute(
        &id,
        Command::Submit {
            step: "request".into(),
            values: json!({"service": "api", "team": "payments", "risk": "low"})
                .as_object()
                .cloned()
                .unwrap(),
        },
        "rita",
        "cli",
        None,
    )
    .await
    .unwrap();
    let timers: Vec<String> = rt
        .load(&id)
        .await
        .unwrap()
        .state
        .timers
        .keys()
        .cloned()
        .collect();
    assert!(
        !timers.is_empty(),
        "the gate's reminder, escalation and deadline"
    );
    // Someone who can read the instance's state sends the engine's key for every timer.
    for timer in &timers {
        for key in [format!("timer:{id}:{timer}"), format!("link:{id}:{timer}")] {
            rt.execute(&id, comment("harmless"), "rita", "api", Some(&key))
                .await
                .unwrap();
        }
    }
    env.advance(4 * 86_400);
    let mut fired = 0;
    for _ in 0..4 {
        fired += rt.fire_due_timers().await.unwrap();
    }
    assert!(fired >= 2, "the timers fired ({fired})");
    let entry = rt.load(&id).await.unwrap();
    assert!(
        matches!(&entry.state.status, signoff_core::engine::Status::Ended { outcome, .. } if outcome == "expired"),
        "the deadline fired: {:?}",
        entry.state.status
    );
}

pub async fn client_keys_are_forgotten_after_a_day_and_the_engines_are_kept(env: &Env) {
    let rt = env.open().await;
    let id = started_by(&rt, "rita").await;
    rt.execute(&id, comment("one"), "rita", "api", Some("day-key"))
        .await
        .unwrap();
    // Within the day: still the caller's, bound to its first request.
    env.advance(23 * 3_600);
    assert_eq!(rt.forget_expired_client_keys().await.unwrap(), 0);
    let err = rt
        .execute(&id, comment("two"), "rita", "api", Some("day-key"))
        .await;
    assert!(matches!(err, Err(RuntimeError::IdempotencyKeyReused)));
    // After it, the key is free again.
    env.advance(2 * 3_600);
    assert_eq!(rt.forget_expired_client_keys().await.unwrap(), 1);
    let fresh = rt
        .execute(&id, comment("two"), "rita", "api", Some("day-key"))
        .await
        .unwrap();
    assert!(!fresh.deduplicated);
    // An engine key stored long ago is kept.
    let key = IdempotencyKey::parse("link:never:forgotten").unwrap();
    let stream = signoff_core::StreamId::parse("outbox/test").unwrap();
    let event = signoff_core::NewEvent {
        id: signoff_core::EventId(uuid::Uuid::now_v7()),
        ty: signoff_core::EventType::parse(signoff_runtime::outbox::DELIVERED).unwrap(),
        schema_version: 1,
        data: signoff_core::EventData::from_stored("{}".into()),
        metadata: signoff_core::Metadata::new("system", "runtime"),
    };
    rt.log()
        .append(
            signoff_store::AppendRequest::new(
                stream,
                signoff_store::ExpectedVersion::Any,
                vec![event],
            )
            .idempotent(key.clone()),
        )
        .await
        .unwrap();
    env.advance(30 * 86_400);
    rt.forget_expired_client_keys().await.unwrap();
    assert!(rt.log().idempotent_result(&key).await.unwrap().is_some());
}
