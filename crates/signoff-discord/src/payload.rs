//! What the bot sends Discord, as JSON bodies: pure functions of what signoff knows, each
//! tested on its own (the exact requests are what the tests of the stand-in assert).
//!
//! - [`card`]: a message about an instance (an approval request, a reminder, an outcome):
//!   an embed with who asks what by when, what is decided on, and, while the person may
//!   decide, Approve and Reject buttons whose ids say nothing but which request they are.
//!   After a decision the same card is drawn again with the decisions and, once the gate has
//!   closed, without buttons.
//! - [`modal`]: the justification form a press opens.
//! - [`ephemeral`] and [`update`]: interaction answers.
//!
//! Discord's limits are kept here (an embed's title 256 characters, its description 4,096, a
//! field 1,024, a modal's title and a text input's label 45): longer text is cut with `…`.

use serde_json::{Value, json};
use signoff_core::Timestamp;
use signoff_core::engine::Verdict;
use signoff_runtime::chat::{GateStory, Press, button_id};
use signoff_runtime::outbox::{About, Message};

/// Interaction response types (Discord's numbers).
pub mod response {
    /// A message in answer.
    pub const MESSAGE: u8 = 4;
    /// "Thinking…", the message comes later.
    pub const DEFERRED_MESSAGE: u8 = 5;
    /// The press is taken; the message it came from is edited later.
    pub const DEFERRED_UPDATE: u8 = 6;
    /// The message the press came from, edited.
    pub const UPDATE_MESSAGE: u8 = 7;
    /// A form.
    pub const MODAL: u8 = 9;
}

/// The flag of a message only its addressee sees.
pub const EPHEMERAL: u64 = 1 << 6;

/// The custom id of the justification field of the modal.
pub const JUSTIFICATION: &str = "justification";

/// Colours of a card: waiting (blurple), approved (green), rejected (red), closed otherwise
/// (grey).
const WAITING: u32 = 0x0058_65F2;
const APPROVED: u32 = 0x0057_F287;
const REJECTED: u32 = 0x00ED_4245;
const CLOSED: u32 = 0x0099_AAB5;

/// Everything a card shows.
#[derive(Clone, Debug, Default)]
pub struct Card<'a> {
    /// The instance.
    pub instance: &'a str,
    /// The headline (the notification's subject).
    pub subject: &'a str,
    /// The notification's own words.
    pub body: &'a str,
    /// Who asks what, by when.
    pub about: Option<&'a About>,
    /// The instance as people read it (`View::text`), if known.
    pub request: Option<&'a str>,
    /// The gate's round as it stands, for a message about a gate.
    pub story: Option<&'a GateStory>,
    /// The verdicts the recipient may give now, with the gate and round they are for; a
    /// message to a channel offers both to whoever holds the right.
    pub verdicts: Vec<(&'a str, u32, Verdict)>,
    /// The gate is marked `chat: link`: decided on the web page only, never by a button.
    pub link_only: bool,
    /// The instance's page, when the server's public address is known.
    pub page: Option<String>,
}

impl<'a> Card<'a> {
    /// The card of an outbox message: its words, its instance, and its buttons.
    #[must_use]
    pub fn of(message: &'a Message, request: Option<&'a str>, public_url: Option<&str>) -> Self {
        Self {
            instance: &message.instance,
            subject: &message.subject,
            body: &message.body,
            about: message.about.as_ref(),
            request,
            story: None,
            verdicts: message
                .decisions
                .iter()
                .map(|d| (d.step.as_str(), d.activation, d.verdict))
                .collect(),
            link_only: message.about.as_ref().is_some_and(|a| a.link_only),
            page: public_url.map(|url| page(url, &message.instance)),
        }
    }
}

/// The address of an instance's page.
#[must_use]
pub fn page(public_url: &str, instance: &str) -> String {
    format!("{}/instances/{instance}", public_url.trim_end_matches('/'))
}

/// The body of a message (posted, or edited in place): an embed and its buttons. Mentions
/// are never parsed: text from a form must not ping anyone.
#[must_use]
pub fn card(card: &Card<'_>) -> Value {
    let mut fields = Vec::new();
    if let Some(about) = card.about {
        if !about.requester.is_empty() {
            fields.push(field("Requested by", &about.requester, true));
        }
        if let Some(deadline) = about.deadline
            && card.story.is_none_or(GateStory::open)
        {
            fields.push(field("Deadline", &discord_time(deadline), true));
        }
    }
    let mut description = String::new();
    if let Some(about) = card.about {
        if let Some(instructions) = &about.instructions {
            description.push_str(instructions);
            description.push_str("\n\n");
        }
    } else if !card.body.trim().is_empty() {
        description.push_str(card.body.trim());
        description.push_str("\n\n");
    }
    if let Some(request) = card.request.filter(|r| !r.trim().is_empty()) {
        description.push_str("```\n");
        description.push_str(&request.replace("```", "'''"));
        description.push_str("\n```\n");
    }
    let mut colour = WAITING;
    if let Some(story) = card.story {
        for said in &story.decisions {
            let name = format!("{} by {}", capitalised(said.verdict.past()), said.name);
            let value = format!(
                "{}\n{} · through {}",
                quote(&said.justification),
                discord_time(said.at),
                said.channel
            );
            fields.push(field(&name, &value, false));
        }
        for note in &story.notes {
            fields.push(field("Note", note, false));
        }
        if let Some(outcome) = &story.outcome {
            let when = story.closed_at.map(discord_time).unwrap_or_default();
            fields.push(field(
                "Closed",
                format!("{} {when}", capitalised(outcome)).trim(),
                false,
            ));
            colour = match outcome.as_str() {
                "approved" => APPROVED,
                "rejected" => REJECTED,
                _ => CLOSED,
            };
        }
    }
    if let Some(about) = card.about
        && !about.asks.is_empty()
        && card.story.is_none_or(GateStory::open)
        && !card.verdicts.is_empty()
    {
        fields.push(field("Your justification", &about.asks.join("\n"), false));
    }
    let mut embed = json!({
        "title": cut(card.subject, 256),
        "description": cut(description.trim_end(), 4096),
        "color": colour,
        "footer": {"text": cut(&footer(card), 2048)},
    });
    if !fields.is_empty() {
        embed["fields"] = Value::Array(fields.into_iter().take(25).collect());
    }
    if let Some(page) = &card.page {
        embed["url"] = Value::String(page.clone());
    }
    json!({
        "embeds": [embed],
        "components": components(card),
        "allowed_mentions": {"parse": []},
    })
}

/// The card's buttons: Approve and Reject while the recipient may decide (unless the gate is
/// decided on the web page only), and a link to the instance's page.
fn components(card: &Card<'_>) -> Value {
    let open = card.story.is_none_or(GateStory::open);
    let mut buttons = Vec::new();
    if open && !card.link_only {
        for (step, activation, verdict) in &card.verdicts {
            let (label, style) = match verdict {
                Verdict::Approve => ("Approve", 3),
                Verdict::Reject => ("Reject", 4),
            };
            buttons.push(json!({
                "type": 2,
                "style": style,
                "label": label,
                "custom_id": button_id(card.instance, step, *activation, *verdict),
            }));
        }
    }
    if let Some(page) = &card.page {
        let label = if open && card.link_only && !card.verdicts.is_empty() {
            "Decide in signoff"
        } else {
            "Open in signoff"
        };
        buttons.push(json!({"type": 2, "style": 5, "label": label, "url": page}));
    }
    if buttons.is_empty() {
        json!([])
    } else {
        json!([{"type": 1, "components": buttons}])
    }
}

fn footer(card: &Card<'_>) -> String {
    match card.about {
        Some(about) if !about.workflow_title.is_empty() => {
            format!("{} · {}", about.workflow_title, card.instance)
        }
        _ => card.instance.to_owned(),
    }
}

/// The form a press opens: the justification, as long as the gate asks, under the button's
/// own id (the submit is resolved again like the press).
#[must_use]
pub fn modal(button: &str, press: &Press) -> Value {
    let verb = match press.verdict {
        Verdict::Approve => "Approve",
        Verdict::Reject => "Reject",
    };
    let label = match press.verdict {
        Verdict::Approve => "Why do you approve?",
        Verdict::Reject => "Why do you reject?",
    };
    let placeholder = if press.prompt.trim().is_empty() {
        format!("Recorded with your decision on {}", press.title)
    } else {
        press.prompt.trim().to_owned()
    };
    json!({
        "type": response::MODAL,
        "data": {
            "custom_id": button,
            "title": cut(&format!("{verb}: {}", press.step_title), 45),
            "components": [{
                "type": 1,
                "components": [{
                    "type": 4,
                    "custom_id": JUSTIFICATION,
                    "style": 2,
                    "label": cut(label, 45),
                    "placeholder": cut(&placeholder, 100),
                    "min_length": press.min_justification.clamp(1, 4000),
                    "max_length": 4000,
                    "required": true,
                }],
            }],
        },
    })
}

/// An answer only the person who pressed sees.
#[must_use]
pub fn ephemeral(text: &str) -> Value {
    json!({
        "type": response::MESSAGE,
        "data": {
            "content": cut(text, 2000),
            "flags": EPHEMERAL,
            "allowed_mentions": {"parse": []},
        },
    })
}

/// The message a press came from, drawn again.
#[must_use]
pub fn update(message: Value) -> Value {
    json!({"type": response::UPDATE_MESSAGE, "data": message})
}

/// A time as Discord shows it to each reader in their own zone: the date and time, and how
/// long ago or ahead.
#[must_use]
pub fn discord_time(at: Timestamp) -> String {
    let seconds = at.0.div_euclid(1_000_000);
    format!("<t:{seconds}:f> (<t:{seconds}:R>)")
}

fn field(name: &str, value: &str, inline: bool) -> Value {
    json!({"name": cut(name, 256), "value": cut(value, 1024), "inline": inline})
}

fn quote(text: &str) -> String {
    text.lines()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// `text` cut to at most `max` characters, with `…` where it was cut.
#[must_use]
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use signoff_runtime::chat::Said;

    fn about() -> About {
        About {
            workflow: "deployment-approval".into(),
            workflow_title: "Deployment approval".into(),
            requester: "Dana Developer".into(),
            step_title: Some("Change board".into()),
            instructions: Some("Check the rollback plan.".into()),
            deadline: Some(Timestamp(1_765_000_000_000_000)),
            asks: vec!["To reject: why (at least 10 characters)".into()],
            link_only: false,
            chat_channel: None,
        }
    }

    fn base<'a>(about: &'a About, story: Option<&'a GateStory>) -> Card<'a> {
        Card {
            instance: "inst-1",
            subject: "Approve: api 1.2 to production",
            body: "Please decide.",
            about: Some(about),
            request: Some("Request\n  Service: api"),
            story,
            verdicts: vec![
                ("approve", 1, Verdict::Approve),
                ("approve", 1, Verdict::Reject),
            ],
            link_only: false,
            page: Some(page("https://signoff.example.com/", "inst-1")),
        }
    }

    #[test]
    fn a_request_shows_who_asks_what_by_when_with_opaque_buttons() {
        let about = about();
        let body = card(&base(&about, None));
        let embed = &body["embeds"][0];
        assert_eq!(embed["title"], "Approve: api 1.2 to production");
        assert_eq!(embed["url"], "https://signoff.example.com/instances/inst-1");
        let description = embed["description"].as_str().unwrap();
        assert!(description.starts_with("Check the rollback plan."));
        assert!(description.contains("Service: api"));
        let fields = embed["fields"].as_array().unwrap();
        assert_eq!(fields[0]["value"], "Dana Developer");
        assert_eq!(fields[1]["value"], "<t:1765000000:f> (<t:1765000000:R>)");
        assert_eq!(fields[2]["name"], "Your justification");
        let buttons = body["components"][0]["components"].as_array().unwrap();
        assert_eq!(buttons.len(), 3);
        assert_eq!(buttons[0]["label"], "Approve");
        assert_eq!(buttons[0]["style"], 3);
        assert_eq!(
            buttons[0]["custom_id"],
            button_id("inst-1", "approve", 1, Verdict::Approve)
        );
        assert_eq!(buttons[1]["label"], "Reject");
        assert_eq!(
            buttons[2]["url"],
            "https://signoff.example.com/instances/inst-1"
        );
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    }

    #[test]
    fn a_closed_gate_shows_who_decided_and_loses_its_buttons() {
        let about = about();
        let story = GateStory {
            instance: "inst-1".into(),
            step: "approve".into(),
            activation: 1,
            decisions: vec![Said {
                person: "bob".into(),
                name: "Bob Approver".into(),
                verdict: Verdict::Approve,
                justification: "rollback tested".into(),
                at: Timestamp(1_765_000_100_000_000),
                channel: "web".into(),
            }],
            outcome: Some("approved".into()),
            closed_at: Some(Timestamp(1_765_000_100_000_000)),
            notes: vec![],
        };
        let body = card(&base(&about, Some(&story)));
        let embed = &body["embeds"][0];
        assert_eq!(embed["color"], APPROVED);
        let fields = embed["fields"].as_array().unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["Requested by", "Approved by Bob Approver", "Closed"]
        );
        assert!(
            fields[1]["value"]
                .as_str()
                .unwrap()
                .starts_with("> rollback tested\n<t:1765000100:f>")
        );
        assert!(
            fields[1]["value"]
                .as_str()
                .unwrap()
                .ends_with("through web")
        );
        let buttons = body["components"][0]["components"].as_array().unwrap();
        assert_eq!(buttons.len(), 1, "only the link stays: {buttons:?}");
        assert_eq!(buttons[0]["style"], 5);
    }

    #[test]
    fn a_link_only_gate_has_no_decision_buttons() {
        let about = about();
        let mut c = base(&about, None);
        c.link_only = true;
        let body = card(&c);
        let buttons = body["components"][0]["components"].as_array().unwrap();
        assert_eq!(buttons.len(), 1);
        assert_eq!(buttons[0]["label"], "Decide in signoff");
        assert!(buttons[0].get("custom_id").is_none());
    }

    #[test]
    fn the_modal_asks_for_a_justification_as_long_as_the_gate_asks() {
        let press = Press {
            instance: "inst-1".into(),
            title: "api 1.2".into(),
            step: "approve".into(),
            step_title: "A very long step title that Discord would refuse in a modal".into(),
            activation: 1,
            verdict: Verdict::Reject,
            person: "bob".into(),
            name: "Bob".into(),
            min_justification: 10,
            prompt: "What must change?".into(),
            shown: "h".into(),
        };
        let body = modal("inst-1.abc", &press);
        assert_eq!(body["type"], 9);
        assert_eq!(body["data"]["custom_id"], "inst-1.abc");
        let title = body["data"]["title"].as_str().unwrap();
        assert!(title.starts_with("Reject: A very long"));
        assert_eq!(title.chars().count(), 45);
        assert!(title.ends_with('…'));
        let input = &body["data"]["components"][0]["components"][0];
        assert_eq!(input["custom_id"], JUSTIFICATION);
        assert_eq!(input["min_length"], 10);
        assert_eq!(input["required"], true);
        assert_eq!(input["placeholder"], "What must change?");
    }

    #[test]
    fn refusals_are_ephemeral_and_mention_nobody() {
        let body = ephemeral("you may not decide here");
        assert_eq!(body["type"], 4);
        assert_eq!(body["data"]["flags"], 64);
        assert_eq!(body["data"]["allowed_mentions"], json!({"parse": []}));
    }

    #[test]
    fn long_text_is_cut_to_discords_limits() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "ab…");
        let about = about();
        let long = "x".repeat(5000);
        let mut c = base(&about, None);
        c.request = Some(&long);
        let body = card(&c);
        assert_eq!(
            body["embeds"][0]["description"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            4096
        );
    }
}
