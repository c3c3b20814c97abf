//! What follows from a commit never undoes it: a reaction that fails is recorded and retried,
//! and the command that caused it stands.

use serde_json::json;
use signoff_core::EventType;
use signoff_core::engine::{Command, Status};

use crate::Env;

const BULKY: &str = "id: bulky
title: Bulky
steps:
  - id: a
    form:
      fields:
        - id: text
          type: long_text
          required: true
    next: b
  - id: b
    form:
      fields:
        - id: text
          type: long_text
          required: true
    next: done
  - id: done
    end: { outcome: done }
";

const DIGEST: &str = "id: digest
title: Digest
triggers:
  - on: { workflow: bulky, outcome: done }
steps:
  - id: read
    form:
      fields:
        - id: note
          type: text
    next: finished
  - id: finished
    end: { outcome: read }
";

fn submit(step: &str, text: &str) -> Command {
    Command::Submit {
        step: step.into(),
        values: json!({ "text": text }).as_object().cloned().unwrap(),
    }
}

pub async fn a_triggered_start_that_fails_is_recorded_and_retried_and_its_cause_stands(env: &Env) {
    let workflows = env.dir.path().join("workflows");
    std::fs::write(workflows.join("bulky.yaml"), BULKY).unwrap();
    std::fs::write(workflows.join("digest.yaml"), DIGEST).unwrap();
    let rt = env.open().await;
    let id = rt
        .start("bulky", json!({}), "rita", "cli")
        .await
        .unwrap()
        .instance;
    // Each half fits in one event (1 MiB at most); the triggered start's input carries both.
    let half = "x".repeat(600_000);
    rt.execute(&id, submit("a", &half), "rita", "cli", None)
        .await
        .unwrap();
    let ended = rt
        .execute(&id, submit("b", &half), "rita", "cli", None)
        .await
        .expect("the command stands whatever its reactions do");
    assert!(!ended.events.is_empty());
    let state = rt.load(&id).await.unwrap().state;
    assert!(
        matches!(&state.status, Status::Ended { outcome, .. } if outcome == "done"),
        "{:?}",
        state.status
    );

    let failed = EventType::parse("signoff.reaction.failed").unwrap();
    let log = rt.log().clone();
    let failures = || async {
        log.read_type(&failed, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| serde_json::from_str::<serde_json::Value>(e.data.as_str()).unwrap())
            .collect::<Vec<_>>()
    };
    let first = failures().await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["workflow"], "digest");
    assert_eq!(first[0]["source"]["instance"], id.as_str());
    assert_eq!(first[0]["attempt"], 1);
    assert!(first[0]["retry_at"].is_i64(), "{}", first[0]);
    assert!(
        first[0]["error"].as_str().unwrap().contains("bytes"),
        "{}",
        first[0]
    );

    // The clock tries it again once its pause is over, and records that attempt too.
    rt.tick().await.unwrap();
    assert_eq!(failures().await.len(), 1, "not before its pause");
    assert_eq!(rt.gauges().reactions_retrying, 1);
    env.advance(2);
    rt.tick().await.unwrap();
    let second = failures().await;
    assert_eq!(second.len(), 2, "{second:?}");
    assert_eq!(second[1]["attempt"], 2);

    // When it is tried again is read from the log: a restarted process (or a worker) waits
    // for that time too, then makes the next attempt.
    rt.save_projections().await.unwrap();
    drop(rt);
    let restarted = env.open().await;
    restarted.tick().await.unwrap();
    assert_eq!(
        failures().await.len(),
        2,
        "not before its pause, after a restart"
    );
    assert_eq!(restarted.gauges().reactions_retrying, 1);
    assert!(restarted.next_reaction_retry().is_some());
    env.advance(3);
    restarted.tick().await.unwrap();
    let third = failures().await;
    assert_eq!(third.len(), 3, "{third:?}");
    assert_eq!(third[2]["attempt"], 3);
}

/// A process that leaves its reactions to a `starts` worker commits and answers at once; the
/// worker, another runtime over the same log, starts what the commit triggered, once, and
/// records how far it came.
pub async fn a_worker_carries_out_the_starts_another_process_left_to_it(env: &Env) {
    use signoff_runtime::reactor::{self, Starts};

    let workflows = env.dir.path().join("workflows");
    std::fs::write(workflows.join("bulky.yaml"), BULKY).unwrap();
    std::fs::write(workflows.join("digest.yaml"), DIGEST).unwrap();
    let server = env.open().await;
    server.leave_reactions_to_starts();
    let worker = env.open().await;
    let digests = |rt: &signoff_runtime::Runtime| {
        rt.running()
            .into_iter()
            .filter(|e| e.state.workflow == "digest")
            .count()
    };

    let id = server
        .start("bulky", json!({}), "rita", "cli")
        .await
        .unwrap()
        .instance;
    for step in ["a", "b"] {
        server
            .execute(&id, submit(step, "short"), "rita", "cli", None)
            .await
            .unwrap();
    }
    server.catch_up().await.unwrap();
    assert_eq!(digests(&server), 0, "left to the worker");

    let turned = worker.turn(&Starts).await.unwrap();
    assert_eq!(turned.done, 1, "{turned:?}");
    assert_eq!(digests(&worker), 1);
    let checkpoint = worker
        .log()
        .model_checkpoint(&reactor::checkpoint_name("starts"))
        .await
        .unwrap();
    assert!(checkpoint > 0 && checkpoint <= worker.gauges().position);
    // Nothing is left for a second turn, in this worker or in another.
    assert_eq!(worker.turn(&Starts).await.unwrap().done, 0);
    let second = env.open().await;
    second.leave_reactions_to_starts();
    second.turn(&Starts).await.unwrap();
    server.catch_up().await.unwrap();
    assert_eq!(digests(&server), 1, "started once");
    assert_eq!(digests(&second), 1);
}
