//! The Discord bot in `serve`, `run` and `worker discord`: the gateway connection that takes
//! presses and submits, and the outbox's Discord channel as a reactor.

use std::future::Future;
use std::sync::Arc;

use signoff_runtime::Runtime;
use signoff_runtime::reactor::{Outbox, Reactor};

use crate::Global;

/// The bot, when a token is given, and its reactors: its outbox, and its cards.
pub async fn bot(
    g: &Global,
    runtime: &Arc<Runtime>,
) -> anyhow::Result<Option<(signoff_discord::Bot, Vec<Arc<dyn Reactor>>)>> {
    let Some(settings) = g.discord()? else {
        return Ok(None);
    };
    let bot = signoff_discord::Bot::new(&settings, Arc::clone(runtime)).await?;
    let reactors: Vec<Arc<dyn Reactor>> = vec![Arc::new(Outbox(bot.channel())), bot.cards()];
    Ok(Some((bot, reactors)))
}

/// Runs `work` and, if there is one, the bot, until `stop`: a bot that fails for good (a
/// token Discord refuses) ends the process with its error, rather than leaving it running
/// deaf to Discord.
pub async fn alongside<T>(
    bot: Option<signoff_discord::Bot>,
    stop: impl Future<Output = ()> + Send + 'static,
    work: impl Future<Output = T>,
) -> anyhow::Result<T> {
    let Some(bot) = bot else {
        return Ok(work.await);
    };
    let failed = async move {
        match bot.run(stop).await {
            Err(e) => e,
            Ok(()) => std::future::pending().await,
        }
    };
    tokio::select! {
        done = work => Ok(done),
        e = failed => Err(anyhow::anyhow!("the Discord bot stopped: {e}")),
    }
}
