//! What the slash commands do: each invocation acts as the person the directory maps the
//! Discord user to, through the engine's rights checks, on channel `discord`.

use serde_json::{Map, Value, json};
use serenity::all::{CommandInteraction, ModalInteraction};
use serenity::http::Http;
use serenity::model::application::ActionRowComponent;
use serenity::model::id::ChannelId;
use signoff_core::engine::Command;
use signoff_runtime::RuntimeError;
use signoff_runtime::chat::Presser;

use crate::bot::{Handler, UNAVAILABLE, answer_interaction};
use crate::commands::{self, Declare, INCIDENT, Slash};
use crate::interaction::{CHANNEL, origin};
use crate::payload::{self, discord_time, ephemeral, response};

/// Items `/inbox` lists.
const INBOX_ITEMS: usize = 15;
/// Lines `/timeline` shows.
const TIMELINE_LINES: usize = 15;

impl Handler {
    /// A slash command.
    pub(crate) async fn command(&self, http: &Http, command: &CommandInteraction) {
        let presser = Presser {
            channel: CHANNEL.to_owned(),
            user: command.user.id.get().to_string(),
            origin: origin(
                command.guild_id.map(|g| g.get()),
                command.channel_id.get(),
                None,
                command.user.id.get(),
            ),
            interaction: command.id.get().to_string(),
        };
        let slash = commands::parse(command);
        let Some(person) = self.runtime.chat_person(CHANNEL, &presser.user) else {
            let why = format!(
                "your Discord account ({}) is not linked to a person in signoff's directory; \
                 ask an administrator to add it to people.yaml",
                presser.user
            );
            if let Err(e) = self
                .runtime
                .refuse_in_chat(&presser, &slash_name(&slash), &why)
                .await
            {
                tracing::error!(error = %e, "a refused Discord command could not be recorded");
            }
            answer(http, command, &ephemeral(&why)).await;
            return;
        };
        let answered = match slash {
            Slash::Inbox => Ok(self.inbox(&person)),
            Slash::Declare(declare) => {
                // Starting, opening a thread and filling in the form take a few round trips:
                // taken now, answered when done.
                let thinking = json!({"type": response::DEFERRED_MESSAGE});
                answer(http, command, &thinking).await;
                let said = match self
                    .declare(http, command, &presser, &person, &declare)
                    .await
                {
                    Ok(said) => said,
                    Err(e) => {
                        tracing::error!(error = %e, "an incident could not be declared from Discord");
                        format!("The incident could not be declared: {e}")
                    }
                };
                let edit = json!({"content": payload::cut(&said, 2000), "allowed_mentions": {"parse": []}});
                if let Err(e) = http
                    .edit_original_interaction_response(&command.token, &edit, Vec::new())
                    .await
                {
                    tracing::warn!(error = %e, "the answer to /incident declare could not be sent");
                }
                return;
            }
            Slash::Status(text) => self.status(command, &presser, &person, &text).await,
            Slash::Resolve => self.resolve_form(command).await,
            Slash::Timeline(note) => {
                self.timeline(command, &presser, &person, note.as_deref())
                    .await
            }
            Slash::Unknown(name) => Ok(ephemeral(&format!(
                "signoff has no /{name} (it was registered by another version); the commands are \
                 /inbox and /incident"
            ))),
        };
        let body = answered.unwrap_or_else(|e| {
            tracing::error!(error = %e, "a Discord command failed");
            ephemeral(UNAVAILABLE)
        });
        answer(http, command, &body).await;
    }

    /// `/inbox`: what waits for the person, only for them to see.
    fn inbox(&self, person: &str) -> Value {
        let items = self.runtime.inbox(person);
        if items.is_empty() {
            return ephemeral("Nothing waits for you in signoff.");
        }
        let mut lines = vec![format!("{} item(s) wait for you:", items.len())];
        for item in items.iter().take(INBOX_ITEMS) {
            let deadline = item
                .deadline
                .map(|d| format!(", due {}", discord_time(d)))
                .unwrap_or_default();
            let link = self
                .public_url
                .as_deref()
                .map(|url| format!(" <{}>", payload::page(url, &item.instance)))
                .unwrap_or_default();
            lines.push(format!(
                "- **{}**: {} ({}){deadline}{link}",
                item.instance_title, item.title, item.kind
            ));
        }
        if items.len() > INBOX_ITEMS {
            lines.push(format!("… and {} more.", items.len() - INBOX_ITEMS));
        }
        ephemeral(&lines.join("\n"))
    }

    /// `/incident declare`: a thread, the incident started, its declaration filled in.
    async fn declare(
        &self,
        http: &Http,
        command: &CommandInteraction,
        presser: &Presser,
        person: &str,
        declare: &Declare,
    ) -> Result<String, RuntimeError> {
        if command.guild_id.is_none() {
            return Ok(
                "Declare incidents in a server's channel: the incident gets a thread there, \
                       where its prompts arrive."
                    .to_owned(),
            );
        }
        let mut people = Map::new();
        let commander = match declare.commander {
            Some(user) => match self.runtime.chat_person(CHANNEL, &user.to_string()) {
                Some(p) => p,
                None => return Ok(unmapped("commander", user)),
            },
            None => person.to_owned(),
        };
        for (field, user) in [("scribe", declare.scribe), ("comms", declare.comms)] {
            let id = match user {
                Some(user) => match self.runtime.chat_person(CHANNEL, &user.to_string()) {
                    Some(p) => p,
                    None => return Ok(unmapped(field, user)),
                },
                None => commander.clone(),
            };
            people.insert(field.to_owned(), Value::String(id));
        }
        let name = payload::cut(
            &format!("[{}] {}", declare.severity, declare.title.trim()),
            100,
        );
        let thread = http
            .create_thread(
                ChannelId::new(command.channel_id.get()),
                &json!({"name": name, "type": 11, "auto_archive_duration": 10_080}),
                None,
            )
            .await;
        let thread = match thread {
            Ok(thread) => thread.id.get(),
            Err(e) => {
                return Ok(format!(
                    "Discord did not open a thread here ({}); give the bot the Create Public \
                     Threads permission in this channel. Nothing was declared.",
                    crate::channel::failure(&e).reason
                ));
            }
        };
        let started = self
            .runtime
            .start(INCIDENT, json!({}), person, CHANNEL)
            .await?;
        let instance = started.instance;
        // Known before the declaration is submitted: its first messages go to the thread.
        self.threads.set(&instance, thread);
        self.runtime
            .record_chat_thread(CHANNEL, &instance, &thread.to_string(), person)
            .await?;
        people.insert("commander".to_owned(), Value::String(commander.clone()));
        people.insert(
            "title".to_owned(),
            Value::String(declare.title.trim().to_owned()),
        );
        people.insert(
            "severity".to_owned(),
            Value::String(declare.severity.clone()),
        );
        people.insert(
            "summary".to_owned(),
            Value::String(
                declare
                    .summary
                    .clone()
                    .unwrap_or_else(|| format!("Declared in Discord: {}", declare.title.trim())),
            ),
        );
        let submitted = self
            .runtime
            .execute(
                &instance,
                Command::Submit {
                    step: "declare".to_owned(),
                    values: people,
                },
                person,
                CHANNEL,
                Some(&format!("discord:{}", presser.interaction)),
            )
            .await;
        let link = self
            .public_url
            .as_deref()
            .map(|url| format!(" <{}>", payload::page(url, &instance)))
            .unwrap_or_default();
        match submitted {
            Ok(_) => {
                let opening = json!({
                    "content": payload::cut(&format!(
                        "**{name}** declared by {}. Commander: {}.{link}\nPost updates with \
                         `/incident status`, resolve with `/incident resolve`, here in this thread.",
                        self.runtime.name_of(person),
                        self.runtime.name_of(&commander),
                    ), 2000),
                    "allowed_mentions": {"parse": []},
                });
                if let Err(e) = http
                    .send_message(ChannelId::new(thread), Vec::new(), &opening)
                    .await
                {
                    tracing::warn!(error = %e, "the incident thread's first message failed");
                }
                Ok(format!(
                    "Incident declared: **{name}**, commander {}. Its thread: <#{thread}>.",
                    self.runtime.name_of(&commander)
                ))
            }
            Err(RuntimeError::Rejected(rejection)) => Ok(format!(
                "The incident was opened, but its declaration was refused: {}. Finish it on \
                 its page{link}.",
                rejection.message
            )),
            Err(e) => Err(e),
        }
    }

    /// `/incident status TEXT`, in an incident's thread.
    async fn status(
        &self,
        command: &CommandInteraction,
        presser: &Presser,
        person: &str,
        text: &str,
    ) -> Result<Value, RuntimeError> {
        let Some(instance) = self.threads.instance_in(command.channel_id.get()) else {
            return Ok(not_in_thread("status"));
        };
        let posted = self
            .runtime
            .execute(
                &instance,
                Command::PostStatus {
                    step: None,
                    text: text.trim().to_owned(),
                },
                person,
                CHANNEL,
                Some(&format!("discord:{}", presser.interaction)),
            )
            .await;
        match posted {
            Ok(_) => Ok(json!({
                "type": response::MESSAGE,
                "data": {
                    "content": payload::cut(&format!(
                        "**Status update** by {}: {}",
                        self.runtime.name_of(person),
                        text.trim()
                    ), 2000),
                    "allowed_mentions": {"parse": []},
                },
            })),
            Err(RuntimeError::Rejected(rejection)) => {
                Ok(ephemeral(&format!("Not posted: {}", rejection.message)))
            }
            Err(e) => Err(e),
        }
    }

    /// `/timeline`, in an incident's thread: its last lines (only for the person), or a note
    /// added to it (a comment, for everyone in the thread).
    async fn timeline(
        &self,
        command: &CommandInteraction,
        presser: &Presser,
        person: &str,
        note: Option<&str>,
    ) -> Result<Value, RuntimeError> {
        let Some(instance) = self.threads.instance_in(command.channel_id.get()) else {
            return Ok(ephemeral(
                "Use /timeline in an incident's thread (the one /incident declare opened).",
            ));
        };
        if let Some(note) = note {
            let added = self
                .runtime
                .execute(
                    &instance,
                    Command::Comment {
                        text: note.trim().to_owned(),
                    },
                    person,
                    CHANNEL,
                    Some(&format!("discord:{}", presser.interaction)),
                )
                .await;
            return match added {
                Ok(_) => Ok(json!({
                    "type": response::MESSAGE,
                    "data": {
                        "content": payload::cut(&format!(
                            "**Timeline** ({}): {}",
                            self.runtime.name_of(person),
                            note.trim()
                        ), 2000),
                        "allowed_mentions": {"parse": []},
                    },
                })),
                Err(RuntimeError::Rejected(rejection)) => {
                    Ok(ephemeral(&format!("Not added: {}", rejection.message)))
                }
                Err(e) => Err(e),
            };
        }
        let events = self.runtime.instance_events(&instance).await?;
        let lines: Vec<String> = events
            .iter()
            .rev()
            .take(TIMELINE_LINES)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(|(record, event)| {
                let line = signoff_runtime::timeline::Line::new(record, event);
                let seconds = line.time.0.div_euclid(1_000_000);
                format!(
                    "<t:{seconds}:T> {} ({}, {})",
                    line.summary,
                    self.runtime.name_of(&line.actor),
                    line.channel
                )
            })
            .collect();
        let shown = lines.len();
        let mut text = format!(
            "Timeline, the last {shown} of {} entries:\n{}",
            events.len(),
            lines.join("\n")
        );
        if let Some(url) = &self.public_url {
            text.push_str(&format!("\nAll of it: <{}>", payload::page(url, &instance)));
        }
        Ok(ephemeral(&text))
    }

    /// `/incident resolve`, in an incident's thread: the form.
    async fn resolve_form(&self, command: &CommandInteraction) -> Result<Value, RuntimeError> {
        let Some(instance) = self.threads.instance_in(command.channel_id.get()) else {
            return Ok(not_in_thread("resolve"));
        };
        let entry = self.runtime.load(&instance).await?;
        let title = self.runtime.view_of(&entry).title;
        Ok(commands::resolve_modal(&instance, &title))
    }

    /// The resolve form's submit: the `resolve` step filled in.
    pub(crate) async fn resolve_submitted(&self, http: &Http, submit: &ModalInteraction) {
        let Some(instance) = commands::resolving(&submit.data.custom_id) else {
            return;
        };
        let user = submit.user.id.get().to_string();
        let answer_body = match self.runtime.chat_person(CHANNEL, &user) {
            None => {
                ephemeral("your Discord account is not linked to a person in signoff's directory")
            }
            Some(person) => {
                let mut values = Map::new();
                for component in submit.data.components.iter().flat_map(|r| &r.components) {
                    if let ActionRowComponent::InputText(input) = component {
                        let value = input.value.clone().unwrap_or_default();
                        values.insert(
                            input.custom_id.clone(),
                            Value::String(value.trim().to_owned()),
                        );
                    }
                }
                let resolved = self
                    .runtime
                    .execute(
                        instance,
                        Command::Submit {
                            step: "resolve".to_owned(),
                            values,
                        },
                        &person,
                        CHANNEL,
                        Some(&format!("discord:{}", submit.id.get())),
                    )
                    .await;
                match resolved {
                    Ok(_) => json!({
                        "type": response::MESSAGE,
                        "data": {
                            "content": format!("**Resolved** by {}.", self.runtime.name_of(&person)),
                            "allowed_mentions": {"parse": []},
                        },
                    }),
                    Err(RuntimeError::Rejected(rejection)) => {
                        ephemeral(&format!("Not resolved: {}", rejection.message))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "an incident could not be resolved from Discord");
                        ephemeral(UNAVAILABLE)
                    }
                }
            }
        };
        answer_interaction(http, submit.id.get(), &submit.token, &answer_body).await;
    }
}

async fn answer(http: &Http, command: &CommandInteraction, body: &Value) {
    answer_interaction(http, command.id.get(), &command.token, body).await;
}

fn slash_name(slash: &Slash) -> String {
    match slash {
        Slash::Inbox => "inbox".to_owned(),
        Slash::Declare(_) => "incident declare".to_owned(),
        Slash::Status(_) => "incident status".to_owned(),
        Slash::Resolve => "incident resolve".to_owned(),
        Slash::Timeline(_) => "timeline".to_owned(),
        Slash::Unknown(name) => name.clone(),
    }
}

fn unmapped(role: &str, user: u64) -> String {
    format!(
        "<@{user}>, named {role}, is not linked to a person in signoff's directory; nothing was \
         declared"
    )
}

fn not_in_thread(what: &str) -> Value {
    ephemeral(&format!(
        "Use /incident {what} in the incident's thread (the one /incident declare opened)."
    ))
}
