//! The engine's processes without HTTP: `signoff run` (every reactor: timers, cron runs,
//! starts, keys, read models) and `signoff worker NAME` (one reactor alone).

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;
use signoff_runtime::reactor::{self, Reactor};

use crate::Global;

#[derive(clap::Args)]
pub struct RunArgs {
    /// Fire what is due now and exit (for a system cron job), instead of running until stopped.
    #[arg(long)]
    once: bool,
}

pub async fn run(g: &Global, args: RunArgs) -> anyhow::Result<ExitCode> {
    let rt = g.open().await?;
    if args.once {
        let tick = rt.tick().await?;
        if g.json {
            outln!(
                "{}",
                json!({"timers_fired": tick.timers, "schedules_started": tick.runs})
            )?;
        } else {
            outln!(
                "fired {} timer(s), started {} scheduled run(s)",
                tick.timers,
                tick.runs
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Listening for SIGTERM before the banner says it stops on it: a supervisor that stops
    // the process as soon as it has started must not kill it.
    let stop = futures::FutureExt::shared(Box::pin(crate::serve::stop_signal()?));
    let mut reactors = g.reactors()?;
    let rt = std::sync::Arc::new(rt);
    let bot = crate::discord::bot(g, &rt).await?.map(|(bot, own)| {
        reactors.extend(own);
        bot
    });
    eprintln!(
        "signoff run: {} workflow(s) from {}, {} people from {}, log {}; running {} until \
         Ctrl-C or SIGTERM",
        rt.definitions().len(),
        g.workflows.display(),
        rt.directory().people().count(),
        g.people.display(),
        g.url()?,
        reactors
            .iter()
            .map(|r| r.name().to_owned())
            .collect::<Vec<_>>()
            .join(", "),
    );
    let ran = crate::discord::alongside(bot, stop.clone(), rt.run_reactors(&reactors, stop)).await;
    // What the last turns appended is answered; close the writer.
    rt.log().close().await;
    ran?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The reactor to run: timers, schedules, starts, keys, projections, email (with an SMTP
    /// server named), or discord (with the bot's token: its gateway connection and its
    /// outbox).
    #[arg(value_name = "NAME")]
    name: String,
    /// Run one turn and exit, printing what it did.
    #[arg(long)]
    once: bool,
}

/// The reactor `name`, or an error that lists the ones there are.
pub fn reactor_named(g: &Global, name: &str) -> anyhow::Result<Arc<dyn Reactor>> {
    if name == "email" {
        let email = g.email()?.ok_or_else(|| {
            anyhow::anyhow!(
                "the email worker needs an SMTP server: --smtp-url or SIGNOFF_SMTP_URL \
                 (e.g. smtp://smtp.example.com:587?tls=required)"
            )
        })?;
        return Ok(Arc::new(reactor::Outbox(email)));
    }
    reactor::named(name).ok_or_else(|| {
        anyhow::anyhow!(
            "no reactor is named {name:?}; there are: {}, email, discord",
            reactor::names().join(", ")
        )
    })
}

pub async fn worker(g: &Global, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    if args.name == "discord" {
        return discord(g, args).await;
    }
    let reactor = reactor_named(g, &args.name)?;
    let rt = g.open().await?;
    let group = reactor::checkpoint_name(reactor.name());
    let from = rt.log().model_checkpoint(&group).await?;
    if args.once {
        let turned = rt.turn(&*reactor).await?;
        let at = rt.log().model_checkpoint(&group).await?;
        if g.json {
            outln!(
                "{}",
                json!({"reactor": reactor.name(), "done": turned.done, "from": from, "checkpoint": at})
            )?;
        } else {
            outln!(
                "{}: {} done; checkpoint {from} -> {at}",
                reactor.name(),
                turned.done
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let stop = crate::serve::stop_signal()?;
    eprintln!(
        "signoff worker {}: log {}, from checkpoint {from}; until Ctrl-C or SIGTERM",
        reactor.name(),
        g.url()?,
    );
    rt.run_reactors(&[reactor], stop).await;
    rt.log().close().await;
    Ok(ExitCode::SUCCESS)
}

/// `signoff worker discord`: the bot's gateway connection and its outbox, alone.
async fn discord(g: &Global, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    if g.discord()?.is_none() {
        anyhow::bail!(
            "the discord worker needs the bot's token: --discord-token or SIGNOFF_DISCORD_TOKEN \
             (Developer Portal → your application → Bot)"
        );
    }
    let rt = Arc::new(g.open().await?);
    let Some((bot, reactors)) = crate::discord::bot(g, &rt).await? else {
        anyhow::bail!("the discord worker needs the bot's token");
    };
    let group = reactor::checkpoint_name("discord");
    let from = rt.log().model_checkpoint(&group).await?;
    if args.once {
        // Delivers what is owed, draws the cards that changed, and exits; presses need the
        // gateway, which `--once` does not connect.
        let mut done = 0;
        for reactor in &reactors {
            done += rt.turn(&**reactor).await?.done;
        }
        if g.json {
            outln!("{}", json!({"reactor": "discord", "done": done}))?;
        } else {
            outln!("discord: {done} delivered or drawn again")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let stop = futures::FutureExt::shared(Box::pin(crate::serve::stop_signal()?));
    eprintln!(
        "signoff worker discord: log {}, outbox from checkpoint {from}, gateway through {}; \
         until Ctrl-C or SIGTERM",
        g.url()?,
        g.discord_api_url,
    );
    let ran =
        crate::discord::alongside(Some(bot), stop.clone(), rt.run_reactors(&reactors, stop)).await;
    rt.log().close().await;
    ran?;
    Ok(ExitCode::SUCCESS)
}
