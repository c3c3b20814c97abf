//! The outbox's Discord channel: one direct message per notification and person.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serenity::http::{Http, HttpError};
use serenity::model::id::ChannelId;
use signoff_core::directory::Person;
use signoff_runtime::outbox::{Channel, Delivery, Failure, Message};

use crate::payload::{self, Card};

/// The one post of a notification in a workflow's channel, once made: its reference.
type OnePost = Arc<tokio::sync::OnceCell<String>>;

/// Notifications whose one post in a workflow's channel is remembered.
const SHARED_POSTS: usize = 4_096;

/// Sends the outbox's notifications as Discord direct messages, or, for an instance with a
/// thread (an incident declared in Discord), in its thread, mentioning the person.
pub struct DiscordChannel {
    http: Arc<Http>,
    public_url: Option<String>,
    /// Each person's direct-message channel, opened once per process.
    dms: Mutex<HashMap<String, ChannelId>>,
    threads: Arc<Threads>,
    /// Messages posted once for a whole notification in a workflow's channel: the reference
    /// every recipient's delivery records.
    shared: Mutex<HashMap<(String, String), OnePost>>,
}

/// Which instance's messages go to which thread, both ways: shared by the bot (which opens
/// threads), its channel (which posts there) and its cards (which keep them across restarts).
#[derive(Default)]
pub struct Threads {
    both: Mutex<(HashMap<String, u64>, HashMap<u64, String>)>,
}

impl Threads {
    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<String, u64>, HashMap<u64, String>)> {
        self.both
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `instance`'s messages go to `thread` from now on.
    pub fn set(&self, instance: &str, thread: u64) {
        let mut both = self.lock();
        both.0.insert(instance.to_owned(), thread);
        both.1.insert(thread, instance.to_owned());
    }

    /// `instance`'s thread, if it has one.
    #[must_use]
    pub fn thread_of(&self, instance: &str) -> Option<u64> {
        self.lock().0.get(instance).copied()
    }

    /// The instance whose thread `thread` is.
    #[must_use]
    pub fn instance_in(&self, thread: u64) -> Option<String> {
        self.lock().1.get(&thread).cloned()
    }

    /// `instance` ended: its thread is its no more.
    pub fn forget(&self, instance: &str) {
        let mut both = self.lock();
        if let Some(thread) = both.0.remove(instance) {
            both.1.remove(&thread);
        }
    }
}

impl DiscordChannel {
    /// A channel over a REST client made already (the bot's own), posting to `threads`.
    #[must_use]
    pub fn with_http(http: Arc<Http>, public_url: Option<String>, threads: Arc<Threads>) -> Self {
        Self {
            http,
            public_url,
            dms: Mutex::new(HashMap::new()),
            threads,
            shared: Mutex::new(HashMap::new()),
        }
    }

    /// The direct-message channel with the Discord user `user`.
    async fn dm(&self, user: &str) -> Result<ChannelId, Failure> {
        if let Some(channel) = self.cached(user) {
            return Ok(channel);
        }
        let id: u64 = user
            .parse()
            .map_err(|_| Failure::permanent(format!("{user:?} is not a Discord user id")))?;
        let channel = self
            .http
            .create_private_channel(&serde_json::json!({ "recipient_id": id.to_string() }))
            .await
            .map_err(|e| failure(&e))?;
        self.dms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(user.to_owned(), channel.id);
        Ok(channel.id)
    }

    /// The one post of a notification in a workflow's channel: made by the first of its
    /// deliveries (the others, running at once, wait for it and record the same message); a
    /// failed post is tried again by the next.
    fn shared_post(&self, notification: (String, String)) -> OnePost {
        let mut shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A notification's deliveries go out together; what is older is not needed.
        if shared.len() > SHARED_POSTS {
            shared.clear();
        }
        Arc::clone(shared.entry(notification).or_default())
    }

    fn cached(&self, user: &str) -> Option<ChannelId> {
        self.dms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(user)
            .copied()
    }
}

impl Channel for DiscordChannel {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn address(&self, person: &Person) -> Option<String> {
        person.discord.clone().filter(|d| !d.trim().is_empty())
    }

    fn follows_commits(&self) -> bool {
        true
    }

    fn deliver<'a>(&'a self, message: &'a Message) -> Delivery<'a> {
        Box::pin(async move {
            let thread = self.threads.thread_of(&message.instance);
            let named = message
                .about
                .as_ref()
                .and_then(|a| a.chat_channel.as_deref())
                .and_then(|c| c.parse::<u64>().ok());
            let channel = match (thread, named) {
                (Some(thread), _) => ChannelId::new(thread),
                (None, Some(named)) => ChannelId::new(named),
                (None, None) => self.dm(&message.address).await?,
            };
            let request = message.view.as_ref().map(|v| v.text("  "));
            let mut card = Card::of(message, request.as_deref(), self.public_url.as_deref());
            if thread.is_none() && named.is_some() {
                // In a channel, whoever holds the right may press: both verdicts are offered
                // when the gate asks anyone here, and each press is checked as its presser.
                if let Some(first) = message.decisions.first() {
                    card.verdicts = vec![
                        (
                            first.step.as_str(),
                            first.activation,
                            signoff_core::engine::Verdict::Approve,
                        ),
                        (
                            first.step.as_str(),
                            first.activation,
                            signoff_core::engine::Verdict::Reject,
                        ),
                    ];
                }
            }
            let mut body = payload::card(&card);
            if thread.is_some() {
                // In the incident's thread, the person it is for is pinged (and nobody else).
                body["content"] = serde_json::Value::String(format!("<@{}>", message.address));
                body["allowed_mentions"] = serde_json::json!({ "users": [message.address] });
            } else if named.is_some() {
                // In a workflow's channel, one message for everyone it is for, each pinged.
                let mut everyone = message.recipients.clone();
                if everyone.is_empty() {
                    everyone.push(message.address.clone());
                }
                let mentions: Vec<String> = everyone.iter().map(|a| format!("<@{a}>")).collect();
                body["content"] = serde_json::Value::String(mentions.join(" "));
                body["allowed_mentions"] = serde_json::json!({ "users": everyone });
            }
            let post = || async {
                let sent = self
                    .http
                    .send_message(channel, Vec::new(), &body)
                    .await
                    .map_err(|e| failure(&e))?;
                Ok::<_, Failure>(reference(channel.get(), sent.id.get()))
            };
            if thread.is_none() && named.is_some() {
                // Posted once for everyone the notification is for.
                let notification = (message.instance.clone(), message.notification.clone());
                let once = self.shared_post(notification);
                return once.get_or_try_init(post).await.map(|r| Some(r.clone()));
            }
            post().await.map(Some)
        })
    }
}

/// How a delivered message is recorded: `CHANNEL/MESSAGE`.
#[must_use]
pub fn reference(channel: u64, message: u64) -> String {
    format!("{channel}/{message}")
}

/// A recorded reference read back.
#[must_use]
pub fn parse_reference(reference: &str) -> Option<(u64, u64)> {
    let (channel, message) = reference.split_once('/')?;
    Some((channel.parse().ok()?, message.parse().ok()?))
}

/// What a failed REST call means for the outbox: Discord refusing the request itself (a user
/// who does not take direct messages, a channel gone, no permission) will not pass; a 429, a
/// 5xx or a network failure may.
pub(crate) fn failure(error: &serenity::Error) -> Failure {
    if let serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) = error {
        let status = response.status_code.as_u16();
        let text = format!(
            "Discord answered {status}: {} (code {})",
            response.error.message, response.error.code
        );
        return if (400..500).contains(&status) && status != 429 && status != 408 {
            Failure::permanent(text)
        } else {
            Failure::transient(text)
        };
    }
    Failure::transient(format!("Discord could not be reached: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_read_back() {
        assert_eq!(parse_reference(&reference(12, 34)), Some((12, 34)));
        assert_eq!(parse_reference("12"), None);
        assert_eq!(parse_reference("a/b"), None);
    }
}
