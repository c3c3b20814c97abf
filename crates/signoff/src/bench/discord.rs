//! `signoff bench discord`: how soon a decision made in Discord shows on its card.
//!
//! A runtime over a scratch log (beside the `--database` file, or a PostgreSQL schema of its
//! own), the stand-in for Discord on loopback (REST and gateway), and the real bot (serenity)
//! connected to it. Each round starts `--presses` low-risk deployment approvals and delivers
//! their cards (a direct message to each approver), then sends that many justification submits
//! at once, Bob approving each instance from its card. The figure is the time from a submit
//! leaving the stand-in's gateway to the stand-in receiving the redrawn card (the answer to that
//! interaction): the bot reading the press again, the engine deciding, the durable commit, the
//! card drawn from the instance as it now stands, and the REST call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use signoff_core::engine::Command;
use signoff_discord::standin::{Message, StandIn};
use signoff_runtime::event_types;
use signoff_store::{DatabaseUrl, OpenOptions};

use super::workflows::{deployment_runtime, request};
use super::{per_sec, quantile_ms, scratch};

/// Bob, an engineer of the payments team, approves (his Discord id in people.yaml).
const BOB: u64 = 198_345_620_017_348_608;

#[derive(clap::Args)]
pub struct Args {
    /// Submits sent at once in each round.
    #[arg(long, default_value_t = 32)]
    presses: usize,
    /// Rounds.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

pub async fn run(url: &DatabaseUrl, args: Args) -> anyhow::Result<()> {
    if args.presses == 0 || args.rounds == 0 {
        bail!("--presses and --rounds must be at least 1");
    }
    let scratch = scratch(url, OpenOptions::new(event_types())).await?;
    let result = measure(&scratch.log, &args).await;
    scratch.remove().await?;
    outln!("{}", result?)?;
    Ok(())
}

async fn measure(log: &Arc<dyn signoff_store::EventLog>, args: &Args) -> anyhow::Result<Value> {
    let rt = deployment_runtime(log).await?;

    let standin = StandIn::start().await;
    let settings = signoff_discord::Settings {
        token: "bench".into(),
        api_url: standin.url.clone(),
        guild: None,
        public_url: Some("http://127.0.0.1:8080".into()),
    };
    let bot = signoff_discord::Bot::new(&settings, Arc::clone(&rt)).await?;
    let channel = bot.channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(bot.run(async {
        let _ = stopped.await;
    }));
    standin.identified(Duration::from_secs(30)).await;

    let mut seen = Vec::with_capacity(args.presses * args.rounds);
    let started = Instant::now();
    for _ in 0..args.rounds {
        let mut ids = Vec::with_capacity(args.presses);
        for _ in 0..args.presses {
            let id = rt
                .start("deployment-approval", json!({}), "carol", "bench")
                .await?
                .instance;
            let submit = Command::Submit {
                step: "request".into(),
                values: request(),
            };
            rt.execute(&id, submit, "carol", "bench", None).await?;
            ids.push(id);
        }
        rt.deliver(&*channel).await?;
        let cards = bobs_cards(&standin, &ids)?;
        let mut waits = Vec::with_capacity(cards.len());
        for (card, approve) in &cards {
            let submit = standin.submit(BOB, None, card, approve, "pool size is fine");
            let interaction = submit["id"].as_str().unwrap_or_default().to_owned();
            let token = submit["token"].as_str().unwrap_or_default().to_owned();
            let sent = Instant::now();
            tracing::debug!(interaction, "injected");
            standin.inject(submit);
            waits.push((sent, interaction, token));
        }
        for (sent, interaction, token) in waits {
            let path = format!("/interactions/{interaction}/{token}/callback");
            let answer = standin
                .wait_for("a redrawn card", Duration::from_secs(30), |r| {
                    r.path == path
                })
                .await;
            ensure!(
                answer.body["type"] == 7,
                "a submit was answered without its card: {}",
                answer.body
            );
            seen.push(answer.at.saturating_duration_since(sent));
        }
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    let _ = running.await;

    // Every submit decided once.
    let decided = rt
        .log()
        .read_all(0, 10_000_000)
        .await?
        .iter()
        .filter(|r| r.ty.as_str() == "signoff.approval.decided")
        .count();
    ensure!(
        decided == seen.len(),
        "{} submits, {decided} decisions",
        seen.len()
    );
    seen.sort_unstable();
    let (p50, p95, p99) = (
        quantile_ms(&seen, 0.50),
        quantile_ms(&seen, 0.95),
        quantile_ms(&seen, 0.99),
    );
    let max = quantile_ms(&seen, 1.0);
    Ok(json!({
        "bench": "discord",
        "decisions": seen.len(),
        "at_once": args.presses,
        "rounds": args.rounds,
        "submit_to_redrawn_card_ms": {"p50": p50, "p95": p95, "p99": p99, "max": max},
        "decisions_per_sec_in_rounds": per_sec(seen.len() as u64, elapsed),
        "summary": format!(
            "{} decisions in Discord, {} at once: the redrawn card reached Discord in p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
            seen.len(),
            args.presses
        ),
    }))
}

/// Bob's card of each instance, with its Approve button.
fn bobs_cards(standin: &StandIn, ids: &[String]) -> anyhow::Result<Vec<(Message, String)>> {
    let requests = standin.requests();
    let dm = requests
        .iter()
        .find(|r| {
            r.path == "/users/@me/channels"
                && r.body["recipient_id"].as_str() == Some(BOB.to_string().as_str())
        })
        .and_then(|r| r.answer["id"].as_str())
        .context("no direct-message channel was opened for Bob")?
        .to_owned();
    let path = format!("/channels/{dm}/messages");
    let posted: Vec<Message> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .map(Message::of)
        .collect();
    ids.iter()
        .map(|id| {
            posted
                .iter()
                .rev()
                .find_map(|m| {
                    m.button("Approve")
                        .filter(|b| b.starts_with(&format!("{id}.")))
                        .map(|b| (m.clone(), b))
                })
                .with_context(|| format!("no card of {id} reached Bob"))
        })
        .collect()
}
