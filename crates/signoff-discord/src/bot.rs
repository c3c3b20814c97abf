//! The gateway client: presses and modal submits in, decisions and redrawn cards out.
//!
//! A press is answered within Discord's 3 seconds by the modal (its first and only answer):
//! reading the request again from signoff is a lookup in memory or one instance's stream. A
//! submit decides; when the decision is recorded in time the card is redrawn in the same
//! answer, otherwise the submit is acknowledged first and the card edited after.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use serenity::all::{
    Client, ComponentInteraction, Context, EventHandler, GatewayIntents, Interaction,
    ModalInteraction, Ready,
};
use serenity::http::Http;
use signoff_runtime::chat::ChatDecision;
use signoff_runtime::runtime::Runtime;

use crate::interaction::{self, Input};
use crate::payload::{self, Card, response};
use crate::{Cards, DiscordChannel, Settings, SettingsError, Threads};

/// How long a submit's answer waits for the decision before it acknowledges and edits later
/// (Discord takes answers within 3 s).
const ANSWER_WITHIN: Duration = Duration::from_millis(1_500);

/// The bot: a gateway connection, the outbox's Discord channel and the cards' reactor over
/// one REST client.
pub struct Bot {
    client: Client,
    channel: Arc<DiscordChannel>,
    cards: Arc<Cards>,
}

impl Bot {
    /// Connects nothing yet: builds the client for `settings`, answering with `runtime`.
    ///
    /// # Errors
    /// What is wrong with the settings, or serenity's error building the client.
    pub async fn new(settings: &Settings, runtime: Arc<Runtime>) -> Result<Self, BotError> {
        let http = Arc::into_inner(settings.http()?).ok_or(BotError::Shared)?;
        let threads = Arc::new(Threads::default());
        let handler = Handler {
            runtime,
            public_url: settings.public_url.clone(),
            guild: settings.guild,
            threads: Arc::clone(&threads),
            pending: std::sync::Mutex::default(),
        };
        // Interactions come whatever the intents; none privileged is asked for.
        let client = serenity::client::ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
            .event_handler(handler)
            .await
            .map_err(BotError::Serenity)?;
        let channel = Arc::new(DiscordChannel::with_http(
            Arc::clone(&client.http),
            settings.public_url.clone(),
            Arc::clone(&threads),
        ));
        let cards = Arc::new(Cards::new(
            Arc::clone(&client.http),
            settings.public_url.clone(),
            threads,
        ));
        Ok(Self {
            client,
            channel,
            cards,
        })
    }

    /// The outbox's channel over the bot's REST client.
    #[must_use]
    pub fn channel(&self) -> Arc<DiscordChannel> {
        Arc::clone(&self.channel)
    }

    /// The reactor that keeps its cards true.
    #[must_use]
    pub fn cards(&self) -> Arc<Cards> {
        Arc::clone(&self.cards)
    }

    /// Runs the gateway connection until `stop` resolves (serenity reconnects and resumes on
    /// its own).
    ///
    /// # Errors
    /// The connection failed for good (a token Discord refuses, intents not allowed).
    pub async fn run(
        mut self,
        stop: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), BotError> {
        let shards = Arc::clone(&self.client.shard_manager);
        tokio::select! {
            result = self.client.start() => result.map_err(BotError::Serenity),
            () = stop => {
                shards.shutdown_all().await;
                Ok(())
            }
        }
    }
}

/// Why the bot could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// Its settings.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// serenity's.
    #[error("Discord: {0}")]
    Serenity(serenity::Error),
    /// The REST client was shared before the bot took it.
    #[error("the Discord REST client is shared already")]
    Shared,
}

pub(crate) struct Handler {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) public_url: Option<String>,
    pub(crate) guild: Option<u64>,
    pub(crate) threads: Arc<Threads>,
    /// Forms between a command and its modal's submit, by the command's interaction id.
    pub(crate) pending: std::sync::Mutex<std::collections::HashMap<String, crate::slash::Pending>>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "connected to Discord");
        // Registered on every connection: the bulk overwrite replaces what an older version
        // registered. In one guild it applies at once; globally it may take a while.
        let workflows: Vec<(String, String)> = self
            .runtime
            .definitions()
            .iter()
            .map(|l| {
                (
                    l.definition.id.as_str().to_owned(),
                    l.definition.title.clone(),
                )
            })
            .collect();
        let override_options = self
            .runtime
            .definition(crate::commands::OVERRIDE)
            .and_then(|l| crate::forms::with_options(&l).map(|p| crate::forms::options(&p)));
        let definitions = crate::commands::definitions(&workflows, override_options);
        let registered = match self.guild {
            Some(guild) => ctx
                .http
                .create_guild_commands(serenity::model::id::GuildId::new(guild), &definitions)
                .await
                .map(drop),
            None => ctx
                .http
                .create_global_commands(&definitions)
                .await
                .map(drop),
        };
        if let Err(e) = registered {
            tracing::error!(error = %e, "the slash commands could not be registered");
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Component(press) => self.pressed(&ctx.http, &press).await,
            Interaction::Modal(submit) => {
                if crate::commands::resolving(&submit.data.custom_id).is_some() {
                    self.resolve_submitted(&ctx.http, &submit).await;
                } else if submit.data.custom_id.starts_with(crate::slash::FORM) {
                    self.form_submitted(&ctx.http, &submit).await;
                } else {
                    self.submitted(&ctx.http, &submit).await;
                }
            }
            Interaction::Command(command) => self.command(&ctx.http, &command).await,
            _ => {}
        }
    }
}

impl Handler {
    /// A button: the modal, or why not.
    async fn pressed(&self, http: &Http, press: &ComponentInteraction) {
        let Some(input) = interaction::pressed(press) else {
            return;
        };
        let answer = match self.runtime.press(&input.button, &input.presser).await {
            Ok(Ok(found)) => payload::modal(&input.button, &found),
            Ok(Err(refusal)) => payload::ephemeral(&refusal.to_string()),
            Err(e) => {
                tracing::error!(error = %e, "a Discord press could not be read");
                payload::ephemeral(UNAVAILABLE)
            }
        };
        answer_interaction(http, press.id.get(), &press.token, &answer).await;
    }

    /// The modal's submit: the decision, and the card drawn again.
    async fn submitted(&self, http: &Http, submit: &ModalInteraction) {
        tracing::debug!(interaction = submit.id.get(), "a submit arrived");
        let input = interaction::submitted(submit);
        let justification = input.justification.clone().unwrap_or_default();
        let deciding = self.decide(&input, &justification);
        tokio::pin!(deciding);
        let answer = match tokio::time::timeout(ANSWER_WITHIN, &mut deciding).await {
            Ok(answer) => answer,
            Err(_) => {
                // Taken now; the card is edited when the decision is in.
                let ack = serde_json::json!({ "type": response::DEFERRED_UPDATE });
                answer_interaction(http, submit.id.get(), &submit.token, &ack).await;
                let late = deciding.await;
                let result = match late.get("type").and_then(Value::as_u64) {
                    Some(t) if t == u64::from(response::UPDATE_MESSAGE) => http
                        .edit_original_interaction_response(
                            &submit.token,
                            &late["data"],
                            Vec::new(),
                        )
                        .await
                        .map(drop),
                    _ => http
                        .create_followup_message(&submit.token, &late["data"], Vec::new())
                        .await
                        .map(drop),
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "a late answer to a Discord submit failed");
                }
                return;
            }
        };
        tracing::debug!(interaction = submit.id.get(), "answering a submit");
        answer_interaction(http, submit.id.get(), &submit.token, &answer).await;
        tracing::debug!(interaction = submit.id.get(), "a submit answered");
    }

    /// Decides, and the answer to give: the card redrawn, or an ephemeral message.
    async fn decide(&self, input: &Input, justification: &str) -> Value {
        let began = std::time::Instant::now();
        let decided = self
            .runtime
            .decide_in_chat(&input.button, &input.presser, justification)
            .await;
        let deciding = began.elapsed();
        match decided {
            Ok(ChatDecision::Decided(decided)) => {
                let (_, press) = *decided;
                let redrawn = self
                    .redraw(input, &press.instance, &press.step, press.activation)
                    .await;
                tracing::debug!(
                    deciding_ms = deciding.as_secs_f64() * 1e3,
                    redrawing_ms = (began.elapsed() - deciding).as_secs_f64() * 1e3,
                    "a Discord decision"
                );
                match redrawn {
                    Ok(card) => payload::update(card),
                    Err(e) => {
                        tracing::warn!(error = %e, "a decided card could not be drawn again");
                        payload::ephemeral(&format!(
                            "Recorded: you {} {}.",
                            press.verdict.past(),
                            press.title
                        ))
                    }
                }
            }
            Ok(ChatDecision::Again(why)) => payload::ephemeral(&format!(
                "Nothing was decided: {why}. Press the button again."
            )),
            Ok(ChatDecision::Refused(refusal)) => payload::ephemeral(&refusal.to_string()),
            Err(e) => {
                tracing::error!(error = %e, "a Discord decision failed");
                payload::ephemeral(UNAVAILABLE)
            }
        }
    }

    /// The card of the message `input` came from, as the gate stands now.
    async fn redraw(
        &self,
        input: &Input,
        instance: &str,
        step: &str,
        activation: u32,
    ) -> Result<Value, signoff_runtime::RuntimeError> {
        let (entry, stories) = self
            .runtime
            .gate_cards(instance, step, &[activation])
            .await?;
        let story = stories.into_iter().next().unwrap_or_default();
        let view = self.runtime.view_of(&entry);
        let about = signoff_runtime::outbox::About::of(
            &entry,
            Some(step),
            self.runtime.name_of(&entry.state.requester),
        );
        let request = view.text("  ");
        let subject = input.subject.clone().unwrap_or_else(|| view.title.clone());
        // In a guild's channel whoever holds the right may still press while the gate is open;
        // in a direct message the person pressed already.
        let verdicts = if input.in_guild && story.open() {
            both(step, activation)
        } else {
            Vec::new()
        };
        Ok(payload::card(&Card {
            instance,
            subject: &subject,
            body: "",
            about: Some(&about),
            request: Some(&request),
            story: Some(&story),
            verdicts,
            link_only: about.link_only,
            page: self
                .public_url
                .as_deref()
                .map(|url| payload::page(url, instance)),
        }))
    }
}

fn both(step: &str, activation: u32) -> Vec<(&str, u32, signoff_core::engine::Verdict)> {
    use signoff_core::engine::Verdict;
    vec![
        (step, activation, Verdict::Approve),
        (step, activation, Verdict::Reject),
    ]
}

/// What the person reads when signoff itself failed.
pub(crate) const UNAVAILABLE: &str = "signoff could not take this now; nothing was decided. Try again in a moment, or use the link to the request.";

/// Answers an interaction (its first and only answer).
pub(crate) async fn answer_interaction(http: &Http, id: u64, token: &str, answer: &Value) {
    let id = serenity::model::id::InteractionId::new(id);
    if let Err(e) = http
        .create_interaction_response(id, token, answer, Vec::new())
        .await
    {
        tracing::warn!(error = %e, "an answer to a Discord interaction failed");
    }
}
