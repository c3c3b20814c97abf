//! The Discord bot end to end: the real serenity client (REST and gateway) against the
//! stand-in for Discord ([`signoff_discord::standin`]), over the shipped workflows and a copy
//! of the shipped directory. Each case asserts the exact requests the stand-in saw.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use signoff_core::engine::{Command, InstanceEvent, Verdict};
use signoff_discord::standin::{Message, Recorded, StandIn, route};
use signoff_discord::{Bot, Settings};
use signoff_runtime::outbox::Channel;
use signoff_runtime::{Config, Runtime};
use signoff_store::{DatabaseUrl, ManualClock};

/// 2026-11-23T09:00:00Z, a Monday.
const T0: i64 = 1_795_424_400_000_000;
const BOB: u64 = 198_345_620_017_348_608;
const CAROL: u64 = 223_901_847_561_029_632;
const HANA: u64 = 301_844_726_150_283_264;
/// Frank has no Discord id in the shipped directory; the test's copy gives him this one.
const FRANK: u64 = 555_000_000_000_000_001;
/// Nobody in the directory.
const STRANGER: u64 = 777_000_000_000_000_007;
/// Incident managers.
const DAVE: u64 = 265_718_930_442_174_464;
const LAURA: u64 = 390_126_574_833_205_248;
const MINUTE: i64 = 60_000_000;

/// The board's channel.
const BOARD_CHANNEL: u64 = 555_000_000_000_000_999;
/// GRACE, of the board.
const GRACE: u64 = 356_210_984_477_319_168;

/// A change window signed off in the board's channel, by any one of two.
const WINDOW: &str = "\
id: change-window
title: Change window
discord_channel: \"555000000000000999\"
steps:
  - id: request
    title: The window
    form:
      fields:
        - id: when
          type: text
          label: When?
          required: true
    next: board
  - id: board
    title: Board sign-off
    approval:
      approvers:
        - people: [bob, grace]
    next: done
    on_reject: done
  - id: done
    end:
      outcome: done
";

/// A release whose sign-off is high-risk: decided on the web page only.
const RELEASE: &str = "\
id: production-release
title: Production release
steps:
  - id: request
    title: What is released
    form:
      fields:
        - id: what
          type: text
          label: What is released?
          required: true
    next: signoff
  - id: signoff
    title: Release manager sign-off
    approval:
      approvers:
        - people: [bob]
      chat: link
    next: done
    on_reject: done
  - id: done
    end:
      outcome: done
";
const WAIT: Duration = Duration::from_secs(20);

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Env {
    _dir: tempfile::TempDir,
    rt: Arc<Runtime>,
    clock: Arc<ManualClock>,
    standin: StandIn,
    channel: Arc<signoff_discord::DiscordChannel>,
    cards: Arc<signoff_discord::Cards>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    bot: tokio::task::JoinHandle<()>,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.bot.abort();
    }
}

/// A runtime over a fresh SQLite log, the stand-in, and the bot connected to it.
async fn open() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(T0));
    let people = std::fs::read_to_string(repository().join("people.yaml")).unwrap();
    let people = people.replacen(
        "    email: frank@example.com\n",
        &format!("    email: frank@example.com\n    discord: \"{FRANK}\"\n"),
        1,
    );
    std::fs::write(dir.path().join("people.yaml"), people).unwrap();
    // The shipped workflows, and a small one whose gate is decided on its web page only.
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).unwrap();
    for file in std::fs::read_dir(repository().join("workflows")).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, workflows.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(workflows.join("production-release.yaml"), RELEASE).unwrap();
    std::fs::write(workflows.join("change-window.yaml"), WINDOW).unwrap();
    let config = Config {
        database: DatabaseUrl::Sqlite(dir.path().join("signoff.db")),
        workflows,
        people: dir.path().join("people.yaml"),
        evidence: dir.path().join("evidence"),
        clock: clock.clone(),
    };
    let rt = Arc::new(signoff_runtime::open(&config).await.unwrap());
    let standin = StandIn::start().await;
    let settings = Settings {
        token: "stand-in-token".into(),
        api_url: standin.url.clone(),
        guild: None,
        public_url: Some("https://signoff.example.com".into()),
    };
    let bot = Bot::new(&settings, Arc::clone(&rt)).await.unwrap();
    let channel = bot.channel();
    let cards = bot.cards();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bot = tokio::spawn(async move {
        bot.run(async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    standin.identified(WAIT).await;
    Env {
        _dir: dir,
        rt,
        clock,
        standin,
        channel,
        cards,
        stop: Some(stop),
        bot,
    }
}

/// An instance of `workflow` Carol started, its `request` form filled with `values`.
async fn requested(rt: &Runtime, workflow: &str, values: Value) -> String {
    let id = rt
        .start(workflow, json!({}), "carol", "cli")
        .await
        .unwrap()
        .instance;
    let Value::Object(values) = values else {
        panic!("a form's values are an object")
    };
    rt.execute(
        &id,
        Command::Submit {
            step: "request".into(),
            values,
        },
        "carol",
        "cli",
        None,
    )
    .await
    .unwrap();
    id
}

/// A high-risk deployment request by carol: the change board (two of them) and legal (one)
/// are asked.
async fn high_risk_request(rt: &Runtime) -> String {
    let values = json!({
        "service": "payments-api", "team": "payments", "environment": "production",
        "version": "v1.2.3", "change_type": "normal", "risk": "high",
        "description": "Raise the connection pool size to 50",
        "rollback_plan": "Redeploy v1.2.2 from the pipeline, 5 minutes",
        "ticket": "https://tracker.example.com/browse/CHG-1234",
    });
    requested(rt, "deployment-approval", values).await
}

/// The message posted to `user`'s direct messages about `step`.
fn posted_to(env: &Env, user: u64, step: &str) -> Message {
    let requests = env.standin.requests();
    let dm = requests
        .iter()
        .find(|r| {
            r.path == "/users/@me/channels"
                && r.body["recipient_id"].as_str() == Some(user.to_string().as_str())
        })
        .unwrap_or_else(|| panic!("no direct-message channel opened for {user}"));
    let dm = dm.answer["id"].as_str().unwrap().to_owned();
    let post = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == format!("/channels/{dm}/messages"))
        .map(Message::of)
        .find(|m| {
            m.button("Approve").is_some_and(|b| {
                [Verdict::Approve, Verdict::Reject].iter().any(|v| {
                    b == signoff_runtime::chat::button_id(b.split('.').next().unwrap(), step, 1, *v)
                })
            })
        });
    post.unwrap_or_else(|| panic!("no message about {step} posted to {user}"))
}

/// The callback (first answer) to the interaction `interaction`.
async fn answer_to(env: &Env, interaction: &Value) -> Recorded {
    let id = interaction["id"].as_str().unwrap().to_owned();
    let token = interaction["token"].as_str().unwrap().to_owned();
    env.standin
        .wait_for("interaction callback", WAIT, |r| {
            r.method == "POST" && r.path == format!("/interactions/{id}/{token}/callback")
        })
        .await
}

async fn decisions(rt: &Runtime, id: &str, step: &str) -> Vec<(String, String, Option<String>)> {
    rt.instance_events(id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(record, event)| match event {
            InstanceEvent::Decided { step: s, by, .. } if s == step => Some((
                by,
                record.metadata.channel.clone(),
                record.metadata.causation_id.clone(),
            )),
            _ => None,
        })
        .collect()
}

async fn refusals(rt: &Runtime) -> Vec<Value> {
    rt.log()
        .read_stream(
            &signoff_core::StreamId::parse("security").unwrap(),
            1,
            1_000,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| serde_json::from_str(r.data.as_str()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_a_direct_message_to_each_approver_with_opaque_buttons() {
    let env = open().await;
    let id = high_risk_request(&env.rt).await;
    let report = env.rt.deliver(&*env.channel).await.unwrap();
    assert_eq!(report.failed, 0);
    let bob = posted_to(&env, BOB, "cab_approval");
    let approve = bob.button("Approve").unwrap();
    assert_eq!(
        approve,
        signoff_runtime::chat::button_id(&id, "cab_approval", 1, Verdict::Approve)
    );
    let embed = &bob.object["embeds"][0];
    assert!(
        embed["description"]
            .as_str()
            .unwrap()
            .contains("Assess the risk"),
        "{embed}"
    );
    assert_eq!(
        embed["url"],
        format!("https://signoff.example.com/instances/{id}")
    );
    // Each delivery is recorded with the message's ids, for the edits to come.
    let outcomes = env
        .rt
        .log()
        .read_stream(
            &signoff_core::StreamId::parse("outbox/discord").unwrap(),
            1,
            100,
        )
        .await
        .unwrap();
    let reference = format!("{}/{}", bob.channel, bob.id);
    assert!(
        outcomes.iter().any(|o| o
            .data
            .as_str()
            .contains(&format!("\"reference\":\"{reference}\""))),
        "no outcome records {reference}"
    );
    // Every REST call went to the stand-in's routes Discord has.
    for request in env.standin.requests() {
        assert!(
            [
                "/users/@me/channels",
                "/channels/{}/messages",
                "/applications/{}/commands"
            ]
            .contains(&route(&request.path).as_str()),
            "unexpected {} {}",
            request.method,
            request.path
        );
    }
    // People without a Discord id (frank has one only in this copy; oscar none) are skipped.
    let without = signoff_core::directory::Person {
        id: "oscar".into(),
        name: "Oscar".into(),
        email: Some("oscar@example.com".into()),
        discord: None,
        team: None,
        roles: std::collections::BTreeSet::new(),
    };
    assert!(env.channel.address(&without).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_opens_the_modal_and_the_submit_decides_and_redraws_the_card() {
    let env = open().await;
    let id = high_risk_request(&env.rt).await;
    env.rt.deliver(&*env.channel).await.unwrap();
    let bob = posted_to(&env, BOB, "cab_approval");
    let approve = bob.button("Approve").unwrap();

    let press = env.standin.press(BOB, None, &bob, &approve);
    env.standin.inject(press.clone());
    let modal = answer_to(&env, &press).await;
    assert_eq!(modal.body["type"], 9, "{}", modal.body);
    assert_eq!(modal.body["data"]["custom_id"], approve.as_str());
    assert_eq!(
        modal.body["data"]["title"],
        "Approve: Change advisory board"
    );
    // A press alone decides nothing.
    assert!(decisions(&env.rt, &id, "cab_approval").await.is_empty());

    let submit = env
        .standin
        .submit(BOB, None, &bob, &approve, "Rollback plan tested on staging");
    env.standin.inject(submit.clone());
    let update = answer_to(&env, &submit).await;
    assert_eq!(update.body["type"], 7, "{}", update.body);
    let fields = update.body["data"]["embeds"][0]["fields"]
        .as_array()
        .unwrap();
    let approved = fields
        .iter()
        .find(|f| f["name"] == "Approved by Bob Nguyen")
        .unwrap_or_else(|| panic!("no decider in {fields:?}"));
    assert!(
        approved["value"]
            .as_str()
            .unwrap()
            .starts_with("> Rollback plan tested on staging"),
        "{approved}"
    );
    assert!(
        approved["value"]
            .as_str()
            .unwrap()
            .ends_with("through discord")
    );
    // Bob decided: his card keeps only the link to the request.
    let buttons = &update.body["data"]["components"][0]["components"];
    assert_eq!(buttons.as_array().unwrap().len(), 1, "{buttons}");
    assert_eq!(buttons[0]["style"], 5);

    let decided = decisions(&env.rt, &id, "cab_approval").await;
    assert_eq!(
        decided,
        vec![(
            "bob".to_owned(),
            "discord".to_owned(),
            Some(format!(
                "discord:dm/channel/{}/message/{}/user/{BOB}",
                bob.channel, bob.id
            ))
        )]
    );

    // The same submit delivered again (Discord retries) decides nothing more.
    env.standin.inject(submit.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(decisions(&env.rt, &id, "cab_approval").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_presses_are_ephemeral_say_why_and_are_recorded() {
    let env = open().await;
    let id = high_risk_request(&env.rt).await;
    env.rt.deliver(&*env.channel).await.unwrap();
    let bob = posted_to(&env, BOB, "cab_approval");
    let approve = bob.button("Approve").unwrap();
    let reject = bob.button("Reject").unwrap();

    // Someone the directory does not know.
    let press = env.standin.press(STRANGER, Some(42), &bob, &approve);
    env.standin.inject(press.clone());
    let answer = answer_to(&env, &press).await;
    assert_eq!(answer.body["type"], 4);
    assert_eq!(answer.body["data"]["flags"], 64);
    let text = answer.body["data"]["content"].as_str().unwrap();
    assert!(text.contains("not linked to a person"), "{text}");

    // Carol asked for the change: she may not approve it.
    let press = env.standin.press(CAROL, Some(42), &bob, &approve);
    env.standin.inject(press.clone());
    let answer = answer_to(&env, &press).await;
    assert_eq!(answer.body["data"]["flags"], 64);
    let text = answer.body["data"]["content"].as_str().unwrap();
    assert!(text.starts_with("you may not decide here"), "{text}");

    // A button id made up for another gate of the instance is no button.
    let forged = format!("{id}.{}", "0".repeat(32));
    let press = env.standin.press(BOB, None, &bob, &forged);
    env.standin.inject(press.clone());
    let answer = answer_to(&env, &press).await;
    let text = answer.body["data"]["content"].as_str().unwrap();
    assert!(
        text.contains("not one of signoff's open requests"),
        "{text}"
    );

    // A rejection shorter than the gate asks is not recorded; the person is told.
    let press = env.standin.press(BOB, None, &bob, &reject);
    env.standin.inject(press.clone());
    let modal = answer_to(&env, &press).await;
    assert_eq!(
        modal.body["data"]["components"][0]["components"][0]["min_length"],
        10
    );
    let submit = env.standin.submit(BOB, None, &bob, &reject, "no");
    env.standin.inject(submit.clone());
    let answer = answer_to(&env, &submit).await;
    assert_eq!(answer.body["data"]["flags"], 64);
    assert!(
        answer.body["data"]["content"]
            .as_str()
            .unwrap()
            .starts_with("Nothing was decided"),
        "{}",
        answer.body
    );
    assert!(decisions(&env.rt, &id, "cab_approval").await.is_empty());

    let recorded = refusals(&env.rt).await;
    let channels: Vec<&str> = recorded
        .iter()
        .map(|r| r["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["discord", "discord", "discord"], "{recorded:#?}");
    assert_eq!(recorded[0]["person"], format!("discord:{STRANGER}"));
    assert!(
        recorded[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("guild/42/channel/{}", bob.channel))
    );
    assert_eq!(recorded[1]["person"], "carol");
    assert_eq!(recorded[1]["instance"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_approvers_submitting_at_once_on_a_one_approver_gate_give_one_decision() {
    let env = open().await;
    let id = high_risk_request(&env.rt).await;
    env.rt.deliver(&*env.channel).await.unwrap();
    let frank = posted_to(&env, FRANK, "legal_approval");
    let hana = posted_to(&env, HANA, "legal_approval");
    let button = frank.button("Approve").unwrap();
    assert_eq!(
        hana.button("Approve").unwrap(),
        button,
        "one id per gate and verdict"
    );

    let by_frank = env
        .standin
        .submit(FRANK, None, &frank, &button, "No contractual notice needed");
    let by_hana = env
        .standin
        .submit(HANA, None, &hana, &button, "SLA unaffected by this change");
    env.standin.inject(by_frank.clone());
    env.standin.inject(by_hana.clone());
    let answers = [
        answer_to(&env, &by_frank).await,
        answer_to(&env, &by_hana).await,
    ];
    let decided = decisions(&env.rt, &id, "legal_approval").await;
    assert_eq!(decided.len(), 1, "{decided:?}");
    let kinds: Vec<u64> = answers
        .iter()
        .map(|a| a.body["type"].as_u64().unwrap())
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [4, 7], "one card redrawn, one refusal: {kinds:?}");
    let refused = answers.iter().find(|a| a.body["type"] == 4).unwrap();
    let text = refused.body["data"]["content"].as_str().unwrap();
    let winner = if decided[0].0 == "frank" {
        "Frank Moreau"
    } else {
        "Hana Kobayashi"
    };
    assert!(
        text.contains("no longer open") && text.contains(winner),
        "{text}"
    );
}

fn decide(step: &str, verdict: Verdict, why: &str) -> Command {
    Command::Decide {
        step: step.into(),
        verdict,
        justification: why.into(),
        shown: None,
    }
}

/// The last edit of `message` the stand-in saw.
fn last_edit(env: &Env, message: &Message) -> Option<Value> {
    let path = format!("/channels/{}/messages/{}", message.channel, message.id);
    env.standin
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH" && r.path == path)
        .map(|r| r.body)
}

fn field_names(body: &Value) -> Vec<String> {
    body["embeds"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

fn labels(body: &Value) -> Vec<String> {
    body["components"][0]["components"]
        .as_array()
        .map(|b| {
            b.iter()
                .map(|b| b["label"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_decided_elsewhere_redraws_every_card_about_it() {
    let env = open().await;
    let id = high_risk_request(&env.rt).await;
    env.rt.deliver(&*env.channel).await.unwrap();
    env.rt.turn(&*env.cards).await.unwrap();
    let frank = posted_to(&env, FRANK, "legal_approval");
    let hana = posted_to(&env, HANA, "legal_approval");
    let bob = posted_to(&env, BOB, "cab_approval");
    assert!(last_edit(&env, &frank).is_none(), "nothing changed yet");

    // Hana approves on the web page: both legal cards say so and lose their buttons.
    env.rt
        .execute(
            &id,
            decide("legal_approval", Verdict::Approve, "SLA unaffected"),
            "hana",
            "web",
            None,
        )
        .await
        .unwrap();
    env.rt.turn(&*env.cards).await.unwrap();
    for card in [&frank, &hana] {
        let edit = last_edit(&env, card).expect("the legal cards are edited");
        assert_eq!(
            field_names(&edit),
            ["Requested by", "Approved by Hana Kobayashi", "Closed"],
            "{edit}"
        );
        let decided = &edit["embeds"][0]["fields"][1]["value"];
        assert!(
            decided.as_str().unwrap().ends_with("through web"),
            "{decided}"
        );
        assert_eq!(labels(&edit), ["Open in signoff"]);
    }
    assert!(
        last_edit(&env, &bob).is_none(),
        "the board's gate did not change"
    );

    // Nina approves for the board through the API: one of two; Bob may still decide.
    env.rt
        .execute(
            &id,
            decide("cab_approval", Verdict::Approve, "Low blast radius"),
            "nina",
            "api",
            None,
        )
        .await
        .unwrap();
    env.rt.turn(&*env.cards).await.unwrap();
    let edit = last_edit(&env, &bob).expect("bob's card shows nina's decision");
    assert!(field_names(&edit).contains(&"Approved by Nina Rossi".to_owned()));
    assert_eq!(labels(&edit), ["Approve", "Reject", "Open in signoff"]);

    // Carol cancels while the bot is restarting: the restarted bot's cards (read back from
    // their rows) say so, without buttons.
    env.rt
        .execute(
            &id,
            Command::Cancel {
                reason: "postponed to January".into(),
            },
            "carol",
            "cli",
            None,
        )
        .await
        .unwrap();
    let settings = Settings {
        token: "stand-in-token".into(),
        api_url: env.standin.url.clone(),
        guild: None,
        public_url: Some("https://signoff.example.com".into()),
    };
    let restarted = signoff_discord::Cards::new(
        settings.http().unwrap(),
        settings.public_url,
        Arc::default(),
    );
    env.rt.turn(&restarted).await.unwrap();
    let edit = last_edit(&env, &bob).unwrap();
    let names = field_names(&edit);
    assert!(names.contains(&"Closed".to_owned()), "{names:?}");
    let note = edit["embeds"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Note")
        .unwrap();
    assert_eq!(
        note["value"],
        "Cancelled by Carol Dubois: postponed to January"
    );
    assert_eq!(labels(&edit), ["Open in signoff"]);

    // Each edit is recorded; a closed card is not edited again.
    let edits = env
        .rt
        .log()
        .read_stream(
            &signoff_core::StreamId::parse("chat/discord").unwrap(),
            1,
            1_000,
        )
        .await
        .unwrap();
    assert!(edits.len() >= 4, "{}", edits.len());
    let before = env.standin.requests().len();
    env.rt.turn(&restarted).await.unwrap();
    assert_eq!(env.standin.requests().len(), before);
}

/// Posts the stand-in saw in `channel`.
fn posts_in(env: &Env, channel: u64) -> Vec<Recorded> {
    let path = format!("/channels/{channel}/messages");
    env.standin
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_declared_in_discord_runs_in_its_thread_to_its_post_mortem() {
    let env = open().await;
    // The commands are registered as the bot connects (globally: no guild is set).
    env.standin
        .wait_for("the commands' registration", WAIT, |r| {
            r.method == "PUT" && route(&r.path) == "/applications/{}/commands"
        })
        .await;
    let (guild, channel) = (4_242, 5_151);
    let declare = env.standin.command(
        DAVE,
        Some(guild),
        channel,
        json!({"name": "incident", "options": [{"name": "declare", "type": 1, "options": [
            {"name": "severity", "type": 3, "value": "sev2"},
            {"name": "title", "type": 3, "value": "Card payments failing in EU"},
            {"name": "commander", "type": 6, "value": LAURA.to_string()},
        ]}]}),
    );
    env.standin.inject(declare.clone());
    assert_eq!(
        answer_to(&env, &declare).await.body["type"],
        5,
        "acknowledged first"
    );
    let token = declare["token"].as_str().unwrap().to_owned();
    let said = env
        .standin
        .wait_for("the declaration's answer", WAIT, |r| {
            r.method == "PATCH" && r.path.ends_with(&format!("{token}/messages/@original"))
        })
        .await;
    let opened = env
        .standin
        .requests()
        .into_iter()
        .find(|r| r.path == format!("/channels/{channel}/threads"))
        .expect("a thread is opened");
    assert_eq!(opened.body["name"], "[sev2] Card payments failing in EU");
    let thread: u64 = opened.answer["id"].as_str().unwrap().parse().unwrap();
    let text = said.body["content"].as_str().unwrap();
    assert!(
        text.contains("Incident declared") && text.contains(&format!("<#{thread}>")),
        "{text}"
    );
    assert!(text.contains("Laura"), "{text}");

    // The instance and its thread are recorded.
    let recorded = env
        .rt
        .log()
        .read_stream(
            &signoff_core::StreamId::parse("chat/discord").unwrap(),
            1,
            10,
        )
        .await
        .unwrap();
    let place: Value = serde_json::from_str(recorded[0].data.as_str()).unwrap();
    assert_eq!(place["thread"], thread.to_string());
    let id = place["instance"].as_str().unwrap().to_owned();
    let started = env.rt.load(&id).await.unwrap();
    assert_eq!(started.state.workflow, "incident");
    assert_eq!(started.state.requester, "dave");

    // The page (sev2) arrives in the thread, each person pinged there.
    env.rt.deliver(&*env.channel).await.unwrap();
    let pages = posts_in(&env, thread);
    assert!(
        pages
            .iter()
            .any(|p| p.body["content"] == format!("<@{LAURA}>")),
        "{pages:?}"
    );
    for page in pages.iter().filter(|p| {
        p.body["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("<@"))
    }) {
        let mentioned = page.body["allowed_mentions"]["users"].as_array().unwrap();
        assert_eq!(mentioned.len(), 1, "one person pinged per message");
    }

    // Thirty minutes on, the commander's status prompt arrives in the thread.
    let before = posts_in(&env, thread).len();
    env.clock.set(T0 + 31 * MINUTE);
    env.rt.fire_due_timers().await.unwrap();
    env.rt.deliver(&*env.channel).await.unwrap();
    let prompts: Vec<Recorded> = posts_in(&env, thread).into_iter().skip(before).collect();
    assert!(
        prompts.iter().any(|p| {
            p.body["content"] == format!("<@{LAURA}>")
                && p.body["embeds"][0]["title"]
                    .as_str()
                    .is_some_and(|t| t.to_lowercase().contains("status update"))
        }),
        "{:#?}",
        prompts.iter().map(|p| &p.body).collect::<Vec<_>>()
    );

    // The commander posts an update from the thread.
    let status = env.standin.command(
        LAURA,
        Some(guild),
        thread,
        json!({"name": "incident", "options": [{"name": "status", "type": 1, "options": [
            {"name": "text", "type": 3, "value": "Failover to the secondary acquirer done"},
        ]}]}),
    );
    env.standin.inject(status.clone());
    let answered = answer_to(&env, &status).await;
    assert_eq!(answered.body["type"], 4, "{}", answered.body);
    assert!(
        answered.body["data"]["content"]
            .as_str()
            .unwrap()
            .contains("Failover to the secondary acquirer done")
    );
    let posted = env.rt.instance_events(&id).await.unwrap();
    let status_posted = posted
        .iter()
        .find(|(_, e)| matches!(e, InstanceEvent::StatusPosted { .. }))
        .expect("the update is recorded");
    assert_eq!(status_posted.0.metadata.channel, "discord");

    // A note for the timeline, then the timeline itself (only for the one who asks).
    let note = env.standin.command(
        LAURA,
        Some(guild),
        thread,
        json!({"name": "timeline", "options": [
            {"name": "note", "type": 3, "value": "Acquirer confirms a bad TLS chain"},
        ]}),
    );
    env.standin.inject(note.clone());
    let added = answer_to(&env, &note).await;
    assert_eq!(added.body["type"], 4, "{}", added.body);
    let read = env.standin.command(
        DAVE,
        Some(guild),
        thread,
        json!({"name": "timeline", "options": []}),
    );
    env.standin.inject(read.clone());
    let timeline = answer_to(&env, &read).await;
    assert_eq!(timeline.body["data"]["flags"], 64);
    let text = timeline.body["data"]["content"].as_str().unwrap();
    assert!(text.starts_with("Timeline, the last"), "{text}");
    assert!(text.contains("Acquirer confirms a bad TLS chain"), "{text}");

    // The checklist is worked elsewhere (the CLI).
    let done = |step: &str, item: &str| Command::Complete {
        step: step.into(),
        item: item.into(),
        status: signoff_core::engine::TaskStatus::Done,
        note: String::new(),
    };
    env.rt
        .execute(&id, done("acknowledge", "ack"), "laura", "cli", None)
        .await
        .unwrap();

    for item in ["assess_impact", "open_timeline", "status_page", "mitigate"] {
        env.rt
            .execute(&id, done("respond", item), "laura", "cli", None)
            .await
            .unwrap();
    }
    // (The optional task is left: the checklist closes with the required ones.)

    // Resolved from the thread, through the form.
    let resolve = env.standin.command(
        LAURA,
        Some(guild),
        thread,
        json!({"name": "incident", "options": [{"name": "resolve", "type": 1, "options": []}]}),
    );
    env.standin.inject(resolve.clone());
    let form = answer_to(&env, &resolve).await;
    assert_eq!(form.body["type"], 9, "{}", form.body);
    let form_id = form.body["data"]["custom_id"].as_str().unwrap().to_owned();
    assert_eq!(form_id, format!("resolve:{id}"));
    let submit = env.standin.form(
        LAURA,
        Some(guild),
        thread,
        &form_id,
        &[
            (
                "resolution",
                "Failed over to the secondary acquirer; primary fixed its TLS chain",
            ),
            (
                "customer_impact",
                "12% of EU card payments failed for 40 minutes",
            ),
            ("final_severity", "sev2"),
        ],
    );
    env.standin.inject(submit.clone());
    let resolved = answer_to(&env, &submit).await;
    assert_eq!(resolved.body["type"], 4, "{}", resolved.body);
    assert!(
        resolved.body["data"]["content"]
            .as_str()
            .unwrap()
            .starts_with("**Resolved**")
    );
    let entry = env.rt.load(&id).await.unwrap();
    assert!(entry.state.active.is_empty(), "the incident ended");

    // The post-mortem is started by the workflow's own trigger.
    env.rt
        .turn(&signoff_runtime::reactor::Starts)
        .await
        .unwrap();
    let events = env.rt.instance_events(&id).await.unwrap();
    let triggered = events.iter().find_map(|(_, e)| match e {
        InstanceEvent::Linked { link, .. } if link.workflow == "post-mortem" => Some(link.clone()),
        _ => None,
    });
    assert!(triggered.is_some(), "no post-mortem linked: {events:#?}");

    // Commands from someone the directory does not know are refused and recorded.
    let stranger = env.standin.command(
        STRANGER,
        Some(guild),
        channel,
        json!({"name": "inbox", "options": []}),
    );
    env.standin.inject(stranger.clone());
    let refused = answer_to(&env, &stranger).await;
    assert_eq!(refused.body["data"]["flags"], 64);
    let refusals = refusals(&env.rt).await;
    assert!(
        refusals
            .iter()
            .any(|r| r["person"] == format!("discord:{STRANGER}") && r["command"] == "inbox"),
        "{refusals:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_lists_what_waits_only_for_the_person() {
    let env = open().await;
    high_risk_request(&env.rt).await;
    let inbox = env
        .standin
        .command(BOB, None, 1, json!({"name": "inbox", "options": []}));
    env.standin.inject(inbox.clone());
    let answer = answer_to(&env, &inbox).await;
    assert_eq!(answer.body["data"]["flags"], 64);
    let text = answer.body["data"]["content"].as_str().unwrap();
    assert!(text.contains("Change advisory board"), "{text}");
    assert!(
        text.contains("https://signoff.example.com/instances/"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_post_is_retried_and_each_outcome_recorded() {
    let env = open().await;
    high_risk_request(&env.rt).await;
    env.standin.limit_next(1);
    let report = env.rt.deliver(&*env.channel).await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    // Not before its backoff.
    let report = env.rt.deliver(&*env.channel).await.unwrap();
    assert_eq!((report.delivered, report.failed), (0, 0), "{report:?}");
    assert!(report.next_retry.is_some());
    // Five seconds on, the message is tried again and taken.
    env.clock.set(T0 + 6_000_000);
    let report = env.rt.deliver(&*env.channel).await.unwrap();
    assert_eq!((report.delivered, report.failed), (1, 0), "{report:?}");
    let outcomes = env
        .rt
        .log()
        .read_stream(
            &signoff_core::StreamId::parse("outbox/discord").unwrap(),
            1,
            100,
        )
        .await
        .unwrap();
    let failed: Vec<Value> = outcomes
        .iter()
        .filter(|o| o.ty.as_str() == "signoff.outbox.failed")
        .map(|o| serde_json::from_str(o.data.as_str()).unwrap())
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["error"].as_str().unwrap().contains("429"),
        "{}",
        failed[0]
    );
    assert_eq!(failed[0]["given_up"], false);
    let person = failed[0]["person"].as_str().unwrap();
    let delivered_to_them = outcomes
        .iter()
        .filter(|o| o.ty.as_str() == "signoff.outbox.delivered")
        .filter(|o| {
            o.data
                .as_str()
                .contains(&format!("\"person\":\"{person}\""))
        })
        .count();
    assert_eq!(delivered_to_them, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_marked_chat_link_is_decided_on_its_page_only() {
    let env = open().await;
    let id = requested(
        &env.rt,
        "production-release",
        json!({"what": "payments-api v2"}),
    )
    .await;
    env.rt.deliver(&*env.channel).await.unwrap();
    let posts: Vec<Message> = env
        .standin
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .map(Message::of)
        .collect();
    assert_eq!(posts.len(), 1, "bob alone is asked");
    let card = &posts[0];
    assert!(card.button("Approve").is_none(), "{}", card.object);
    let link = card.object["components"][0]["components"][0].clone();
    assert_eq!(link["label"], "Decide in signoff");
    assert_eq!(
        link["url"],
        format!("https://signoff.example.com/instances/{id}")
    );
    // A button made for the gate anyway (an old card, a forged id) decides nothing.
    let button = signoff_runtime::chat::button_id(&id, "signoff", 1, Verdict::Approve);
    let press = env.standin.press(BOB, None, card, &button);
    env.standin.inject(press.clone());
    let answer = answer_to(&env, &press).await;
    assert_eq!(answer.body["data"]["flags"], 64);
    let text = answer.body["data"]["content"].as_str().unwrap();
    assert!(text.contains("web page only"), "{text}");
    assert!(decisions(&env.rt, &id, "signoff").await.is_empty());
    assert_eq!(refusals(&env.rt).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_is_filed_from_a_command_and_its_form() {
    let env = open().await;
    let options = |reason_category: &str| {
        json!({"name": "override", "options": [
            {"name": "decision_ref", "type": 3, "value": "TX-48213"},
            {"name": "model_name", "type": 3, "value": "fraud-scorer"},
            {"name": "model_version", "type": 3, "value": "4.2.0"},
            {"name": "confidence", "type": 10, "value": 0.91},
            {"name": "reason_category", "type": 3, "value": reason_category},
            {"name": "ticket", "type": 3, "value": "https://tracker.example.com/browse/OPS-77"},
        ]})
    };
    let override_form = |env: &Env, reason: &str| {
        let command = env
            .standin
            .command(CAROL, Some(42), 7, options("customer_harm"));
        let reason = reason.to_owned();
        (command, reason)
    };

    // A reason shorter than the form asks starts nothing.
    let (command, reason) = override_form(&env, "too short");
    env.standin.inject(command.clone());
    let modal = answer_to(&env, &command).await;
    assert_eq!(modal.body["type"], 9, "{}", modal.body);
    let form_id = modal.body["data"]["custom_id"].as_str().unwrap().to_owned();
    let inputs: Vec<&str> = modal.body["data"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["components"][0]["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, ["recommendation", "action_taken", "reason"]);
    let texts = |reason: &str| {
        vec![
            ("recommendation", "Decline the payment as fraudulent"),
            (
                "action_taken",
                "Approved the payment after calling the customer",
            ),
            ("reason", reason),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect::<Vec<_>>()
    };
    let submitted = |form_id: &str, reason: &str| {
        let pairs = texts(reason);
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        env.standin.form(CAROL, Some(42), 7, form_id, &borrowed)
    };
    let submit = submitted(&form_id, &reason);
    env.standin.inject(submit.clone());
    let refused = answer_to(&env, &submit).await;
    let text = refused.body["data"]["content"].as_str().unwrap();
    assert!(text.starts_with("Nothing was started"), "{text}");
    assert!(
        env.rt.inbox("zoe").is_empty(),
        "nothing reached the risk officers"
    );

    // With a reason that holds, it is filed, and the risk officers have it to review.
    let (command, _) = override_form(&env, "");
    env.standin.inject(command.clone());
    let modal = answer_to(&env, &command).await;
    let form_id = modal.body["data"]["custom_id"].as_str().unwrap().to_owned();
    let submit = submitted(
        &form_id,
        "The customer confirmed the purchase by phone; the model flagged a new device",
    );
    env.standin.inject(submit.clone());
    let filed = answer_to(&env, &submit).await;
    let text = filed.body["data"]["content"].as_str().unwrap();
    assert!(
        text.starts_with("Started: **Override of fraud-scorer decision TX-48213**"),
        "{text}"
    );
    let review = env.rt.inbox("zoe");
    assert_eq!(review.len(), 1, "{review:?}");
    let entry = env.rt.load(&review[0].instance).await.unwrap();
    assert_eq!(entry.state.requester, "carol");
    // The same form submitted again (its id is spent) starts nothing more.
    env.standin.inject(submit.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.rt.inbox("zoe").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_opens_a_form_that_fits_and_links_to_the_page_otherwise() {
    let env = open().await;
    let start = |workflow: &str| {
        env.standin.command(
            CAROL,
            None,
            1,
            json!({"name": "start", "options": [{"name": "workflow", "type": 3, "value": workflow}]}),
        )
    };
    let big = start("deployment-approval");
    env.standin.inject(big.clone());
    let answer = answer_to(&env, &big).await;
    assert_eq!(answer.body["data"]["flags"], 64);
    let text = answer.body["data"]["content"].as_str().unwrap();
    assert!(
        text.contains("<https://signoff.example.com/start/deployment-approval>"),
        "{text}"
    );

    let small = start("production-release");
    env.standin.inject(small.clone());
    let modal = answer_to(&env, &small).await;
    assert_eq!(modal.body["type"], 9, "{}", modal.body);
    let form_id = modal.body["data"]["custom_id"].as_str().unwrap().to_owned();
    let submit = env
        .standin
        .form(CAROL, None, 1, &form_id, &[("what", "payments-api v2")]);
    env.standin.inject(submit.clone());
    let started = answer_to(&env, &submit).await;
    let text = started.body["data"]["content"].as_str().unwrap();
    assert!(text.starts_with("Started: "), "{text}");
    let waiting = env.rt.inbox("bob");
    assert!(
        waiting.iter().any(|i| i.workflow == "production-release"),
        "{waiting:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_with_a_channel_posts_there_once_for_everyone_it_asks() {
    let env = open().await;
    let id = requested(
        &env.rt,
        "change-window",
        json!({"when": "Saturday 02:00-04:00 UTC"}),
    )
    .await;
    env.rt.deliver(&*env.channel).await.unwrap();
    env.rt.turn(&*env.cards).await.unwrap();
    let posts = posts_in(&env, BOARD_CHANNEL);
    assert_eq!(posts.len(), 1, "one message for the board");
    let body = &posts[0].body;
    assert_eq!(body["content"], format!("<@{BOB}> <@{GRACE}>"));
    assert_eq!(
        body["allowed_mentions"],
        json!({"users": [BOB.to_string(), GRACE.to_string()]})
    );
    assert!(
        !env.standin
            .requests()
            .iter()
            .any(|r| r.path == "/users/@me/channels"),
        "no direct message"
    );
    let card = Message::of(&posts[0]);
    assert!(card.button("Approve").is_some() && card.button("Reject").is_some());
    // Both deliveries record the one message.
    let outcomes = env
        .rt
        .log()
        .read_stream(
            &signoff_core::StreamId::parse("outbox/discord").unwrap(),
            1,
            100,
        )
        .await
        .unwrap();
    let reference = format!("\"reference\":\"{}/{}\"", card.channel, card.id);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| o.data.as_str().contains(&reference))
            .count(),
        2
    );

    // Grace decides from the channel; the card says so, once.
    let approve = card.button("Approve").unwrap();
    let submit = env.standin.submit(
        GRACE,
        Some(42),
        &card,
        &approve,
        "Window agreed with support",
    );
    env.standin.inject(submit.clone());
    let answer = answer_to(&env, &submit).await;
    assert_eq!(answer.body["type"], 7, "{}", answer.body);
    assert_eq!(
        decisions(&env.rt, &id, "board").await[0].0,
        "grace".to_owned()
    );
    env.rt.turn(&*env.cards).await.unwrap();
    let edits = env
        .standin
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(edits, 1, "the shared card is edited once");
    let edit = last_edit(&env, &card).unwrap();
    assert_eq!(labels(&edit), ["Open in signoff"]);
}
