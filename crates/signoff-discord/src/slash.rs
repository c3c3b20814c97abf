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

/// The custom id prefix of a form opened by `/start` or `/override`.
pub(crate) const FORM: &str = "form:";
/// How long a form opened by a command waits for its submit.
const PENDING_FOR: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A form between a command and its modal's submit.
pub(crate) struct Pending {
    workflow: String,
    /// Every field is in the modal (`/start`), not only the long texts (`/override`).
    whole: bool,
    person: String,
    values: Map<String, Value>,
    opened: std::time::Instant,
}

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
            Slash::Start(workflow) => Ok(self.start(command, &person, &workflow)),
            Slash::Override(options) => {
                self.file_override(command, &presser, &person, &options)
                    .await
            }
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

    /// `/start WORKFLOW`: its first form in a modal when it fits, else its start page.
    fn start(&self, command: &CommandInteraction, person: &str, workflow: &str) -> Value {
        let Some(loaded) = self.runtime.definition(workflow) else {
            return ephemeral(&format!("signoff has no workflow {workflow:?}"));
        };
        let title = loaded.definition.title.clone();
        match crate::forms::in_modal(&loaded) {
            Some(plan) => {
                let key = self.hold(command, workflow, person, Map::new(), true);
                crate::forms::modal(&format!("{FORM}{key}"), &format!("Start: {title}"), &plan)
            }
            None => ephemeral(&self.fill_on_page(workflow, &title)),
        }
    }

    /// `/override …`: the options given, then the long texts in a modal.
    async fn file_override(
        &self,
        command: &CommandInteraction,
        presser: &Presser,
        person: &str,
        given: &[serenity::model::application::CommandDataOption],
    ) -> Result<Value, RuntimeError> {
        use serenity::model::application::CommandDataOptionValue as V;
        let workflow = commands::OVERRIDE;
        let Some(loaded) = self.runtime.definition(workflow) else {
            return Ok(ephemeral(
                "signoff has no override justification workflow loaded",
            ));
        };
        let title = loaded.definition.title.clone();
        let Some(plan) = crate::forms::with_options(&loaded) else {
            return Ok(ephemeral(&self.fill_on_page(workflow, &title)));
        };
        let mut values = Map::new();
        for option in given {
            let Some(field) = plan.options.iter().find(|f| f.id.as_str() == option.name) else {
                continue;
            };
            let value = match &option.value {
                V::String(text) => crate::forms::typed(field, text),
                V::Number(n) => serde_json::Number::from_f64(*n).map(Value::Number),
                V::Integer(n) => Some(json!(n)),
                V::Boolean(b) => Some(Value::Bool(*b)),
                V::User(user) => match self.runtime.chat_person(CHANNEL, &user.get().to_string()) {
                    Some(p) => Some(Value::String(p)),
                    None => return Ok(ephemeral(&unmapped(option.name.as_str(), user.get()))),
                },
                _ => None,
            };
            if let Some(value) = value {
                values.insert(option.name.clone(), value);
            }
        }
        if plan.texts.is_empty() {
            let said = self
                .start_with(workflow, person, values, &presser.interaction)
                .await?;
            return Ok(ephemeral(&said));
        }
        let key = self.hold(command, workflow, person, values, false);
        Ok(crate::forms::modal(&format!("{FORM}{key}"), &title, &plan))
    }

    /// Keeps a form's values until its modal is submitted; the key is the command's own id.
    fn hold(
        &self,
        command: &CommandInteraction,
        workflow: &str,
        person: &str,
        values: Map<String, Value>,
        whole: bool,
    ) -> String {
        let key = command.id.get().to_string();
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.retain(|_, p| p.opened.elapsed() < PENDING_FOR);
        pending.insert(
            key.clone(),
            Pending {
                workflow: workflow.to_owned(),
                whole,
                person: person.to_owned(),
                values,
                opened: std::time::Instant::now(),
            },
        );
        key
    }

    /// Where a form that does not fit Discord is filled.
    fn fill_on_page(&self, workflow: &str, title: &str) -> String {
        match &self.public_url {
            Some(url) => format!(
                "{title} asks more than Discord's forms hold; start it on its page: <{}/start/{workflow}>",
                url.trim_end_matches('/')
            ),
            None => format!(
                "{title} asks more than Discord's forms hold; start it with `signoff start {workflow}`"
            ),
        }
    }

    /// The submit of a form `/start` or `/override` opened: checked, then started and filled.
    pub(crate) async fn form_submitted(&self, http: &Http, submit: &ModalInteraction) {
        let key = submit.data.custom_id.trim_start_matches(FORM).to_owned();
        let taken = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key);
        let user = submit.user.id.get().to_string();
        let person = self.runtime.chat_person(CHANNEL, &user);
        let body = match (taken, person) {
            (None, _) => ephemeral(
                "This form is no longer open (15 minutes passed, or signoff restarted); run the                  command again. Nothing was started.",
            ),
            (Some(pending), Some(person)) if pending.person == person => {
                let inputs: Vec<(String, String)> = submit
                    .data
                    .components
                    .iter()
                    .flat_map(|r| &r.components)
                    .filter_map(|c| match c {
                        ActionRowComponent::InputText(input) => Some((
                            input.custom_id.clone(),
                            input.value.clone().unwrap_or_default(),
                        )),
                        _ => None,
                    })
                    .collect();
                let mut values = pending.values;
                if let Some(loaded) = self.runtime.definition(&pending.workflow) {
                    let plan = if pending.whole {
                        crate::forms::in_modal(&loaded)
                    } else {
                        crate::forms::with_options(&loaded)
                    };
                    if let Some(plan) = plan {
                        values.extend(crate::forms::from_inputs(&plan, &inputs));
                    }
                }
                match self
                    .start_with(
                        &pending.workflow,
                        &person,
                        values,
                        &submit.id.get().to_string(),
                    )
                    .await
                {
                    Ok(said) => ephemeral(&said),
                    Err(e) => {
                        tracing::error!(error = %e, "a form from Discord could not be started");
                        ephemeral(UNAVAILABLE)
                    }
                }
            }
            (Some(_), _) => ephemeral("This form was opened by someone else; nothing was started."),
        };
        answer_interaction(http, submit.id.get(), &submit.token, &body).await;
    }

    /// Starts `workflow` as `person` with its first form filled with `values`, checked first:
    /// a refused form starts nothing. What to tell the person.
    async fn start_with(
        &self,
        workflow: &str,
        person: &str,
        values: Map<String, Value>,
        interaction: &str,
    ) -> Result<String, RuntimeError> {
        let Some(loaded) = self.runtime.definition(workflow) else {
            return Ok(format!("signoff has no workflow {workflow:?}"));
        };
        let Some(step) = loaded.definition.steps.first() else {
            return Ok(format!("{workflow} has no steps"));
        };
        if let Some(form) = &step.form {
            let directory = self.runtime.directory();
            let checked = signoff_core::engine::forms::check_values(form, &values, &*directory);
            drop(directory);
            if let Err(rejection) = checked {
                return Ok(format!("Nothing was started: {}", rejection.message));
            }
        }
        let started = self
            .runtime
            .start(workflow, json!({}), person, CHANNEL)
            .await?;
        let id = started.instance;
        if step.form.is_some() {
            let submitted = self
                .runtime
                .execute(
                    &id,
                    Command::Submit {
                        step: step.id.as_str().to_owned(),
                        values,
                    },
                    person,
                    CHANNEL,
                    Some(&format!("discord:{interaction}")),
                )
                .await;
            if let Err(RuntimeError::Rejected(rejection)) = &submitted {
                return Ok(format!(
                    "Started, but its form was refused: {}; finish it on its page.",
                    rejection.message
                ));
            }
            submitted?;
        }
        let entry = self.runtime.load(&id).await?;
        let title = self.runtime.view_of(&entry).title;
        let link = self
            .public_url
            .as_deref()
            .map(|url| format!(" <{}>", payload::page(url, &id)))
            .unwrap_or_default();
        Ok(format!("Started: **{title}**{link}"))
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
        Slash::Start(_) => "start".to_owned(),
        Slash::Override(_) => "override".to_owned(),
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
