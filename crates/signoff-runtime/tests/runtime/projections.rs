//! The read models a process starts from: what a restart restores, what it folds after them,
//! and a check that finds a row the log does not make.

use serde_json::json;
use signoff_core::engine::Command;
use signoff_runtime::projections::{self, GROUP, INSTANCES, InstanceRow, MODELS};
use signoff_store::{ModelWrite, ModelWritten};

use crate::Env;
use crate::workflows::submit;

/// Starts a deployment request as rita; its id.
async fn deployment(rt: &signoff_runtime::Runtime) -> String {
    rt.start("deploy", json!({}), "rita", "cli")
        .await
        .unwrap()
        .instance
}

pub async fn a_restart_starts_from_the_read_models_and_folds_only_what_came_after(env: &Env) {
    let first = env.open().await;
    let running = deployment(&first).await;
    let cancelled = deployment(&first).await;
    // Written as the first process stops its clock (or at a turn of it).
    first.save_projections().await.unwrap();
    let log = env.log().await;
    let saved_at = log.model_checkpoint(GROUP).await.unwrap();
    assert!(saved_at > 0);
    // After the last write, before a crash: only in the log.
    first
        .execute(
            &running,
            submit(
                "request",
                json!({"service": "db", "team": "payments", "risk": "low"}),
            ),
            "rita",
            "cli",
            None,
        )
        .await
        .unwrap();
    let cancel = Command::Cancel {
        reason: "not needed".into(),
    };
    first
        .execute(&cancelled, cancel, "rita", "cli", None)
        .await
        .unwrap();
    let live = first.load(&running).await.unwrap().state;
    drop(first);

    let second = env.open().await;
    assert_eq!(second.load(&running).await.unwrap().state, live);
    assert_eq!(
        second
            .running()
            .into_iter()
            .map(|e| e.state.id)
            .collect::<Vec<_>>(),
        std::slice::from_ref(&running)
    );
    // The restart wrote what it folded after the checkpoint.
    assert!(log.model_checkpoint(GROUP).await.unwrap() > saved_at);
    let row = log
        .model_row(INSTANCES, &cancelled)
        .await
        .unwrap()
        .expect("a row");
    assert_eq!(row.tag.as_deref(), Some("cancelled"));
    let row = InstanceRow::from_row(&row).unwrap();
    assert_eq!(
        (row.workflow.as_str(), row.requester.as_str()),
        ("deploy", "rita")
    );
    // Id and status are the row's key and tag, not repeated in its body.
    assert_eq!(
        (row.id.as_str(), row.status.as_str()),
        (cancelled.as_str(), "cancelled")
    );
    let row = log
        .model_row(INSTANCES, &running)
        .await
        .unwrap()
        .expect("a row");
    let row = InstanceRow::from_row(&row).unwrap();
    assert_eq!(
        row.current_steps,
        live.active.keys().cloned().collect::<Vec<_>>()
    );
    assert_eq!(row.version, live.version);
}

pub async fn a_row_the_log_does_not_make_is_found_and_a_rebuild_makes_it_right(env: &Env) {
    let rt = env.open().await;
    let id = deployment(&rt).await;
    rt.save_projections().await.unwrap();
    let log = env.log().await;
    let stored = log.model_checkpoint(GROUP).await.unwrap();
    let mut row = log.model_row(INSTANCES, &id).await.unwrap().expect("a row");
    row.tag = Some("ended".into());
    let tampered = ModelWrite {
        group: GROUP.into(),
        since: stored,
        position: stored + 1,
        clear: Vec::new(),
        upserts: vec![row],
    };
    assert_eq!(
        log.write_models(tampered).await.unwrap(),
        ModelWritten::Written
    );
    let check = projections::check(&env.fresh().await).await.unwrap();
    assert_eq!(check.count, 1, "{:?}", check.differences);
    assert!(
        check.differences[0].contains(&id),
        "{:?}",
        check.differences
    );

    // Without the runtime's own row the rows cannot be started from: a start refuses, and
    // says what builds them again, rather than starting without pending reactions.
    let stored = log.model_checkpoint(GROUP).await.unwrap();
    let emptied = ModelWrite {
        group: GROUP.into(),
        since: stored,
        position: stored + 1,
        clear: vec!["runtime".into()],
        upserts: Vec::new(),
    };
    assert_eq!(
        log.write_models(emptied).await.unwrap(),
        ModelWritten::Written
    );
    let config = env.config();
    let definitions = signoff_runtime::Definitions::load_dir(&config.workflows).unwrap();
    let Err(refused) = signoff_runtime::open_on(env.log().await, &config, definitions).await else {
        panic!("started from read models without their runtime row");
    };
    assert!(
        refused.to_string().contains("projections rebuild"),
        "{refused}"
    );

    // `signoff projections rebuild`: forget them, fold the log again.
    log.reset_models(GROUP, &MODELS).await.unwrap();
    let rebuilt = env.open().await;
    assert_eq!(rebuilt.running().len(), 1);
    let check = projections::check(&env.fresh().await).await.unwrap();
    assert_eq!(check.count, 0, "{:?}", check.differences);
    assert!(check.rows > 0);
}

pub async fn a_process_whose_read_models_were_reset_under_it_stops_writing_them(env: &Env) {
    let rt = env.open().await;
    let log = env.log().await;
    deployment(&rt).await;
    rt.save_projections().await.unwrap();
    // A rebuild run while this process is up: its changes alone would leave holes.
    log.reset_models(GROUP, &MODELS).await.unwrap();
    let id = deployment(&rt).await;
    rt.save_projections().await.unwrap();
    rt.save_projections().await.unwrap();
    assert_eq!(log.model_checkpoint(GROUP).await.unwrap(), 0);
    assert!(log.model_row(INSTANCES, &id).await.unwrap().is_none());
    // The next process folds the log from the start and writes them whole.
    drop(rt);
    let next = env.open().await;
    assert_eq!(next.running().len(), 2);
    let check = projections::check(&env.fresh().await).await.unwrap();
    assert_eq!(check.count, 0, "{:?}", check.differences);
}

pub async fn read_models_of_an_older_shape_are_made_again_at_start(env: &Env) {
    let rt = env.open().await;
    let id = deployment(&rt).await;
    rt.save_projections().await.unwrap();
    drop(rt);
    // As an older signoff wrote them: no format in the runtime's row, the id and status in
    // each instance row's body.
    let log = env.log().await;
    let stored = log.model_checkpoint(GROUP).await.unwrap();
    let mut state = log
        .model_row("runtime", "view")
        .await
        .unwrap()
        .expect("the state row");
    let mut body: serde_json::Value = serde_json::from_str(&state.body).unwrap();
    body.as_object_mut().unwrap().remove("format");
    state.body = body.to_string();
    let mut row = log.model_row(INSTANCES, &id).await.unwrap().expect("a row");
    let mut body: serde_json::Value = serde_json::from_str(&row.body).unwrap();
    body["id"] = id.clone().into();
    body["status"] = "running".into();
    row.body = body.to_string();
    let older = ModelWrite {
        group: GROUP.into(),
        since: stored,
        position: stored + 1,
        clear: Vec::new(),
        upserts: vec![state, row],
    };
    assert_eq!(
        log.write_models(older).await.unwrap(),
        ModelWritten::Written
    );
    let check = projections::check(&env.fresh().await).await.unwrap();
    assert!(
        check.differences.iter().any(|d| d.contains(&id)),
        "the older row differs from what this code writes: {:?}",
        check.differences
    );

    let next = env.open().await;
    assert_eq!(next.running().len(), 1);
    let check = projections::check(&env.fresh().await).await.unwrap();
    assert_eq!(check.count, 0, "{:?}", check.differences);
    let row = log.model_row(INSTANCES, &id).await.unwrap().expect("a row");
    assert!(!row.body.contains("\"status\""), "{}", row.body);
}
