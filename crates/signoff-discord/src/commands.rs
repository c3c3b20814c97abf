//! Slash commands: what the bot registers, and what an invocation asks, read from Discord's
//! options (pure: the bot does the asking).
//!
//! - `/inbox`: what waits for you, only for you to see.
//! - `/incident declare SEVERITY TITLE [summary] [commander] [scribe] [comms]`: starts the
//!   incident playbook and opens a thread for it, where its prompts arrive.
//! - `/incident status TEXT`, `/incident resolve` (a form): in the incident's thread.
//! - `/start WORKFLOW`: its first form in a modal when it fits one, else a link to its start
//!   page; `/override …`: an override justification, its short fields as the command's
//!   options and its long texts in a modal.
//! - `/timeline [note]`: in the incident's thread, the timeline (only for you to see), or a
//!   note added to it.

use serde_json::{Value, json};
use serenity::model::application::{CommandDataOption, CommandDataOptionValue, CommandInteraction};

/// The workflow `/incident` runs (its `declare` form, `resolve` form and cadence).
pub const INCIDENT: &str = "incident";
/// The workflow `/override` files.
pub const OVERRIDE: &str = "override-justification";

/// What an invocation asks.
#[derive(Clone, Debug, PartialEq)]
pub enum Slash {
    /// `/inbox`.
    Inbox,
    /// `/incident declare`.
    Declare(Declare),
    /// `/incident status TEXT`.
    Status(String),
    /// `/incident resolve`.
    Resolve,
    /// `/timeline`, with a note to add, or none to read it.
    Timeline(Option<String>),
    /// `/start WORKFLOW`.
    Start(String),
    /// `/override` with its options as given.
    Override(Vec<CommandDataOption>),
    /// A command this bot does not have (registered by an older version).
    Unknown(String),
}

/// `/incident declare`'s options; people are Discord user ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Declare {
    /// `sev1`…`sev4`.
    pub severity: String,
    /// What is happening.
    pub title: String,
    /// What is known so far.
    pub summary: Option<String>,
    /// The incident commander (default: whoever declares).
    pub commander: Option<u64>,
    /// The scribe (default: the commander).
    pub scribe: Option<u64>,
    /// The communications liaison (default: the commander).
    pub comms: Option<u64>,
}

/// What `interaction` asks.
#[must_use]
pub fn parse(interaction: &CommandInteraction) -> Slash {
    read(&interaction.data.name, &interaction.data.options)
}

fn read(name: &str, options: &[CommandDataOption]) -> Slash {
    match name {
        "inbox" => Slash::Inbox,
        "timeline" => Slash::Timeline(text(options, "note").filter(|n| !n.trim().is_empty())),
        "start" => Slash::Start(text(options, "workflow").unwrap_or_default()),
        "override" => Slash::Override(options.to_vec()),
        "incident" => {
            let Some(sub) = options.first() else {
                return Slash::Unknown(name.to_owned());
            };
            let CommandDataOptionValue::SubCommand(args) = &sub.value else {
                return Slash::Unknown(name.to_owned());
            };
            match sub.name.as_str() {
                "declare" => Slash::Declare(Declare {
                    severity: text(args, "severity").unwrap_or_default(),
                    title: text(args, "title").unwrap_or_default(),
                    summary: text(args, "summary").filter(|s| !s.trim().is_empty()),
                    commander: user(args, "commander"),
                    scribe: user(args, "scribe"),
                    comms: user(args, "comms"),
                }),
                "status" => Slash::Status(text(args, "text").unwrap_or_default()),
                "resolve" => Slash::Resolve,
                other => Slash::Unknown(format!("incident {other}")),
            }
        }
        other => Slash::Unknown(other.to_owned()),
    }
}

fn text(options: &[CommandDataOption], name: &str) -> Option<String> {
    options
        .iter()
        .find(|o| o.name == name)
        .and_then(|o| match &o.value {
            CommandDataOptionValue::String(s) => Some(s.clone()),
            _ => None,
        })
}

fn user(options: &[CommandDataOption], name: &str) -> Option<u64> {
    options
        .iter()
        .find(|o| o.name == name)
        .and_then(|o| match &o.value {
            CommandDataOptionValue::User(id) => Some(id.get()),
            _ => None,
        })
}

/// The commands, as the bulk registration takes them: `/start` offers `workflows` (id,
/// title; Discord takes 25), `/override` is there when its workflow's form fits.
#[must_use]
pub fn definitions(workflows: &[(String, String)], override_options: Option<Vec<Value>>) -> Value {
    let mut all = fixed();
    let choices: Vec<Value> = workflows
        .iter()
        .take(25)
        .map(|(id, title)| json!({"name": crate::payload::cut(title, 100), "value": id}))
        .collect();
    if let Some(list) = all.as_array_mut() {
        if !choices.is_empty() {
            list.push(json!({
                "name": "start",
                "type": 1,
                "description": "Start a workflow: its first form here when it fits, else its page",
                "options": [
                    {"type": 3, "name": "workflow", "description": "Which", "required": true, "choices": choices},
                ],
            }));
        }
        if let Some(options) = override_options {
            list.push(json!({
                "name": "override",
                "type": 1,
                "description": "File the justification of an override of an automated decision",
                "options": options,
            }));
        }
    }
    all
}

/// The commands that do not depend on the definitions.
fn fixed() -> Value {
    let severity: Vec<Value> = [
        ("sev1: critical customer impact or data loss", "sev1"),
        ("sev2: major degradation of a core service", "sev2"),
        ("sev3: minor or partial impact", "sev3"),
        ("sev4: no customer impact yet", "sev4"),
    ]
    .iter()
    .map(|(name, value)| json!({"name": name, "value": value}))
    .collect();
    json!([
        {
            "name": "inbox",
            "type": 1,
            "description": "What waits for you in signoff (only you see it)",
        },
        {
            "name": "timeline",
            "type": 1,
            "description": "In an incident's thread: its timeline, or a note added to it",
            "options": [
                {"type": 3, "name": "note", "description": "Something seen, decided or done, for the timeline", "required": false, "max_length": 2000},
            ],
        },
        {
            "name": "incident",
            "type": 1,
            "description": "Run an incident from chat",
            "options": [
                {
                    "type": 1,
                    "name": "declare",
                    "description": "Declare an incident; a thread is opened for it",
                    "options": [
                        {"type": 3, "name": "severity", "description": "How bad", "required": true, "choices": severity},
                        {"type": 3, "name": "title", "description": "What is happening, in one line", "required": true, "max_length": 120},
                        {"type": 3, "name": "summary", "description": "What do we know so far?", "required": false},
                        {"type": 6, "name": "commander", "description": "Incident commander (default: you)", "required": false},
                        {"type": 6, "name": "scribe", "description": "Scribe (default: the commander)", "required": false},
                        {"type": 6, "name": "comms", "description": "Communications liaison (default: the commander)", "required": false},
                    ],
                },
                {
                    "type": 1,
                    "name": "status",
                    "description": "Post a status update (in the incident's thread)",
                    "options": [
                        {"type": 3, "name": "text", "description": "Where things stand", "required": true, "max_length": 2000},
                    ],
                },
                {
                    "type": 1,
                    "name": "resolve",
                    "description": "Resolve the incident (in its thread): a short form",
                },
            ],
        },
    ])
}

/// The custom id of the resolve form of `instance` (read back by [`resolving`]).
#[must_use]
pub fn resolve_form_id(instance: &str) -> String {
    format!("resolve:{instance}")
}

/// The instance a resolve form is for.
#[must_use]
pub fn resolving(custom_id: &str) -> Option<&str> {
    custom_id.strip_prefix("resolve:")
}

/// The resolve form: the `resolve` step's fields that fit a modal.
#[must_use]
pub fn resolve_modal(instance: &str, title: &str) -> Value {
    let input = |id: &str, label: &str, style: u8, min: u32, required: bool| {
        json!({"type": 1, "components": [{
            "type": 4, "custom_id": id, "label": label, "style": style,
            "min_length": min, "max_length": 4000, "required": required,
        }]})
    };
    json!({
        "type": crate::payload::response::MODAL,
        "data": {
            "custom_id": resolve_form_id(instance),
            "title": crate::payload::cut(&format!("Resolve: {title}"), 45),
            "components": [
                input("resolution", "How was it resolved?", 2, 20, true),
                input("customer_impact", "Customer impact", 2, 1, true),
                input("final_severity", "Severity in hindsight (sev1 to sev4)", 1, 4, true),
            ],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options as Discord sends them.
    fn options(raw: Value) -> Vec<CommandDataOption> {
        serde_json::from_value(raw).unwrap()
    }

    #[test]
    fn declare_reads_its_options_and_leaves_people_unset_when_not_given() {
        let asked = read(
            "incident",
            &options(json!([{"name": "declare", "type": 1, "options": [
                {"name": "severity", "type": 3, "value": "sev2"},
                {"name": "title", "type": 3, "value": "Card payments failing"},
                {"name": "scribe", "type": 6, "value": "42"},
            ]}])),
        );
        assert_eq!(
            asked,
            Slash::Declare(Declare {
                severity: "sev2".into(),
                title: "Card payments failing".into(),
                summary: None,
                commander: None,
                scribe: Some(42),
                comms: None,
            })
        );
    }

    #[test]
    fn status_inbox_resolve_and_strangers() {
        let status = read(
            "incident",
            &options(json!([{"name": "status", "type": 1, "options": [
                {"name": "text", "type": 3, "value": "Rolled back"},
            ]}])),
        );
        assert_eq!(status, Slash::Status("Rolled back".into()));
        assert_eq!(read("inbox", &[]), Slash::Inbox);
        assert_eq!(
            read(
                "incident",
                &options(json!([{"name": "resolve", "type": 1, "options": []}]))
            ),
            Slash::Resolve
        );
        assert_eq!(read("deploy", &[]), Slash::Unknown("deploy".into()));
        assert_eq!(read("timeline", &[]), Slash::Timeline(None));
        assert_eq!(
            read(
                "timeline",
                &options(json!([{"name": "note", "type": 3, "value": "EU acquirer paged"}]))
            ),
            Slash::Timeline(Some("EU acquirer paged".into()))
        );
    }

    #[test]
    fn definitions_stay_within_discords_rules() {
        let all = definitions(&[("dpia".into(), "DPIA".into())], Some(vec![]));
        assert_eq!(all.as_array().unwrap().len(), 5);
        for command in all.as_array().unwrap() {
            let name = command["name"].as_str().unwrap();
            assert!(name.len() <= 32 && name.chars().all(|c| c.is_ascii_lowercase()));
            assert!(command["description"].as_str().unwrap().len() <= 100);
            for sub in command["options"].as_array().into_iter().flatten() {
                assert!(sub["description"].as_str().unwrap().len() <= 100, "{sub}");
                for o in sub["options"].as_array().into_iter().flatten() {
                    assert!(o["description"].as_str().unwrap().len() <= 100, "{o}");
                }
            }
        }
        let form = resolve_modal("i-1", "[sev2] Card payments failing in the EU region");
        assert_eq!(form["data"]["custom_id"], "resolve:i-1");
        assert!(form["data"]["title"].as_str().unwrap().chars().count() <= 45);
        assert_eq!(resolving("resolve:i-1"), Some("i-1"));
    }
}
