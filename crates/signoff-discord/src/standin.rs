//! A stand-in for Discord on loopback, for tests (feature `standin`): the REST endpoints the
//! bot calls, each request recorded with its body, and a gateway that says HELLO, answers
//! IDENTIFY with READY and heartbeats with ACKs, and sends the interactions a test injects.
//!
//! Point the bot at it with `api_url` = [`StandIn::url`]: serenity then sends REST calls
//! there (rate limiter off) and asks `GET /api/v10/gateway` for the gateway, which is the
//! stand-in's own `ws://…/ws`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

/// The stand-in application's id.
pub const APPLICATION: u64 = 900_000_000_000_000_001;
/// The bot user's id.
pub const BOT: u64 = 900_000_000_000_000_002;

/// One REST request the bot made.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `POST`, `PATCH`…
    pub method: String,
    /// The path, from `/api/v10/`.
    pub path: String,
    /// The JSON body (`null` without one).
    pub body: Value,
    /// What the stand-in answered (`null` for no content).
    pub answer: Value,
    /// When it arrived.
    pub at: Instant,
}

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    arrived: Notify,
    events: broadcast::Sender<Value>,
    identified: Notify,
    identifies: AtomicU64,
    next_id: AtomicU64,
    gateway: Mutex<String>,
    /// Answered 429 to this many message posts before taking them.
    limited: AtomicU64,
}

/// A running stand-in; it stops when dropped.
pub struct StandIn {
    /// Its base address, `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    /// Starts one on a free loopback port.
    ///
    /// # Panics
    /// When no port can be bound (a test's machine is broken).
    pub async fn start() -> Self {
        #[allow(clippy::expect_used)]
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the Discord stand-in");
        #[allow(clippy::expect_used)]
        let address = listener.local_addr().expect("its address");
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            events,
            identified: Notify::new(),
            identifies: AtomicU64::new(0),
            next_id: AtomicU64::new(1_000_000_000_000_000_000),
            gateway: Mutex::new(format!("ws://{address}/ws")),
            limited: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/api/v10/gateway", get(gateway))
            .route("/api/v10/gateway/bot", get(gateway))
            .route("/ws", get(websocket))
            .fallback(rest)
            .with_state(Arc::clone(&shared));
        // Frames and answers go out as they are written, as Discord's own do: without
        // TCP_NODELAY, a burst of small gateway frames waits for the client's delayed ACK
        // (40 ms) after the first.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{address}"),
            shared,
            task,
        }
    }

    /// A fresh snowflake.
    #[must_use]
    pub fn new_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Every REST request so far, in order.
    #[must_use]
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// Answers the next `n` message posts with 429 (Discord's "slow down").
    pub fn limit_next(&self, n: u64) {
        self.shared.limited.store(n, Ordering::Relaxed);
    }

    /// Waits until a request `matches` (looking at every request so far first).
    ///
    /// # Panics
    /// After `within`, listing the requests seen, naming `what`.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        matches: impl Fn(&Recorded) -> bool,
    ) -> Recorded {
        let deadline = Instant::now() + within;
        // Each request is looked at once: many waiters at once (a benchmark's) must not cost
        // the bot's machine more than the requests themselves.
        let mut seen = 0;
        loop {
            let arrived = self.shared.arrived.notified();
            {
                let requests = lock(&self.shared.requests);
                if let Some(found) = requests[seen..].iter().find(|r| matches(r)) {
                    return found.clone();
                }
                seen = requests.len();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the stand-in saw no {what} within {within:?}; it saw: {:#?}",
                self.requests()
                    .iter()
                    .map(|r| format!("{} {} {}", r.method, r.path, r.body))
                    .collect::<Vec<_>>()
            );
            let _ = tokio::time::timeout(left, arrived).await;
        }
    }

    /// Waits until a bot has identified on the gateway.
    ///
    /// # Panics
    /// After `within`.
    pub async fn identified(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.shared.identifies.load(Ordering::Acquire) == 0 {
            let woken = self.shared.identified.notified();
            if self.shared.identifies.load(Ordering::Acquire) > 0 {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no bot identified on the gateway within {within:?}"
            );
            let _ = tokio::time::timeout(left, woken).await;
        }
    }

    /// Sends an interaction to the connected bot, as Discord does when someone presses.
    pub fn inject(&self, interaction: Value) {
        let _ = self.shared.events.send(interaction);
    }

    /// A button press on `message` by `user`, in a direct message (`guild` none) or a guild.
    #[must_use]
    pub fn press(&self, user: u64, guild: Option<u64>, message: &Message, button: &str) -> Value {
        let id = self.new_id();
        let mut interaction = interaction_base(id, 3, user, guild, message.channel);
        interaction["data"] = json!({"custom_id": button, "component_type": 2});
        interaction["message"] = message.object.clone();
        interaction
    }

    /// The submit of the modal opened by `button`, with `justification` typed.
    #[must_use]
    pub fn submit(
        &self,
        user: u64,
        guild: Option<u64>,
        message: &Message,
        button: &str,
        justification: &str,
    ) -> Value {
        let id = self.new_id();
        let mut interaction = interaction_base(id, 5, user, guild, message.channel);
        interaction["data"] = json!({
            "custom_id": button,
            "components": [{
                "type": 1,
                "components": [{"type": 4, "custom_id": "justification", "value": justification}],
            }],
        });
        interaction["message"] = message.object.clone();
        interaction
    }
}

impl StandIn {
    /// A slash command by `user` in `channel` (of `guild`, or a direct message), with `data`
    /// as Discord sends it (`name`, `options`).
    #[must_use]
    pub fn command(&self, user: u64, guild: Option<u64>, channel: u64, mut data: Value) -> Value {
        let id = self.new_id();
        let mut interaction = interaction_base(id, 2, user, guild, channel);
        data["id"] = Value::String(self.new_id().to_string());
        data["type"] = json!(1);
        interaction["data"] = data;
        interaction
    }

    /// The submit of a form (a modal opened by a command, not under a message) with these
    /// text inputs.
    #[must_use]
    pub fn form(
        &self,
        user: u64,
        guild: Option<u64>,
        channel: u64,
        custom_id: &str,
        values: &[(&str, &str)],
    ) -> Value {
        let id = self.new_id();
        let mut interaction = interaction_base(id, 5, user, guild, channel);
        let rows: Vec<Value> = values
            .iter()
            .map(|(field, value)| {
                json!({"type": 1, "components": [{"type": 4, "custom_id": field, "value": value}]})
            })
            .collect();
        interaction["data"] = json!({"custom_id": custom_id, "components": rows});
        interaction
    }
}

/// A message the bot posted, as the stand-in answered it.
#[derive(Clone, Debug)]
pub struct Message {
    /// Its channel.
    pub channel: u64,
    /// Its id.
    pub id: u64,
    /// The whole object, as a press carries it.
    pub object: Value,
}

impl Message {
    /// The message a recorded post made (the stand-in answers with the id in `object`).
    ///
    /// # Panics
    /// When `posted` is not a message post the stand-in answered.
    #[must_use]
    pub fn of(posted: &Recorded) -> Self {
        #[allow(clippy::expect_used)]
        let object = posted.answer.clone();
        #[allow(clippy::expect_used)]
        let id = object["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("a posted message has an id");
        #[allow(clippy::expect_used)]
        let channel = object["channel_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("and a channel");
        Self {
            channel,
            id,
            object,
        }
    }

    /// The id of its button labelled `label`.
    #[must_use]
    pub fn button(&self, label: &str) -> Option<String> {
        self.object["components"]
            .as_array()?
            .iter()
            .flat_map(|row| row["components"].as_array().into_iter().flatten())
            .find(|b| b["label"] == label)
            .and_then(|b| b["custom_id"].as_str())
            .map(str::to_owned)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A Discord user object.
#[must_use]
pub fn user(id: u64) -> Value {
    json!({
        "id": id.to_string(),
        "username": format!("user{id}"),
        "discriminator": "0",
        "global_name": null,
        "avatar": null,
        "bot": id == BOT,
    })
}

fn interaction_base(id: u64, kind: u8, user_id: u64, guild: Option<u64>, channel: u64) -> Value {
    let mut interaction = json!({
        "id": id.to_string(),
        "application_id": APPLICATION.to_string(),
        "type": kind,
        "token": format!("token-{id}"),
        "version": 1,
        "channel_id": channel.to_string(),
        "app_permissions": "0",
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "attachment_size_limit": 26_214_400,
    });
    match guild {
        Some(guild) => {
            interaction["guild_id"] = Value::String(guild.to_string());
            interaction["member"] = json!({
                "user": user(user_id),
                "roles": [],
                "joined_at": "2026-01-01T00:00:00.000000+00:00",
                "deaf": false,
                "mute": false,
                "flags": 0,
                "permissions": "0",
            });
        }
        None => interaction["user"] = user(user_id),
    }
    interaction
}

fn message_object(id: u64, channel: u64, body: &Value) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": channel.to_string(),
        "author": user(BOT),
        "content": body.get("content").cloned().unwrap_or(json!("")),
        "timestamp": "2026-12-08T00:00:00.000000+00:00",
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": body.get("embeds").cloned().unwrap_or(json!([])),
        "components": body.get("components").cloned().unwrap_or(json!([])),
        "pinned": false,
        "type": 0,
    })
}

async fn gateway(State(shared): State<Arc<Shared>>) -> Response {
    let url = lock(&shared.gateway).clone();
    axum::Json(json!({
        "url": url,
        "shards": 1,
        "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1},
    }))
    .into_response()
}

async fn websocket(State(shared): State<Arc<Shared>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(shared, socket))
}

/// One gateway session: HELLO, then READY for IDENTIFY, ACK for each heartbeat, and every
/// injected interaction as a dispatch.
async fn session(shared: Arc<Shared>, mut socket: WebSocket) {
    let mut events = shared.events.subscribe();
    let mut sequence = 0u64;
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41_250}});
    if socket.send(text(&hello)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = socket.recv() => {
                let Some(Ok(frame)) = frame else { return };
                let Frame::Text(payload) = frame else { continue };
                let Ok(payload) = serde_json::from_str::<Value>(payload.as_str()) else { continue };
                let reply = match payload["op"].as_u64() {
                    Some(1) => json!({"op": 11}),
                    Some(2) => {
                        sequence += 1;
                        let gateway = lock(&shared.gateway).clone();
                        json!({"op": 0, "t": "READY", "s": sequence, "d": {
                            "v": 10,
                            "user": user(BOT),
                            "guilds": [],
                            "session_id": "standin-session",
                            "resume_gateway_url": gateway,
                            "shard": [0, 1],
                            "application": {"id": APPLICATION.to_string(), "flags": 0},
                        }})
                    }
                    Some(6) => {
                        sequence += 1;
                        json!({"op": 0, "t": "RESUMED", "s": sequence, "d": {}})
                    }
                    _ => continue,
                };
                let identified = payload["op"].as_u64() == Some(2);
                if socket.send(text(&reply)).await.is_err() {
                    return;
                }
                if identified {
                    shared.identifies.fetch_add(1, Ordering::AcqRel);
                    shared.identified.notify_waiters();
                }
            }
            event = events.recv() => {
                let Ok(interaction) = event else { continue };
                sequence += 1;
                let dispatch = json!({"op": 0, "t": "INTERACTION_CREATE", "s": sequence, "d": interaction});
                if socket.send(text(&dispatch)).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn text(value: &Value) -> Frame {
    Frame::Text(value.to_string().into())
}

/// Every REST call: recorded, and answered as Discord would.
async fn rest(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let parts: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (status, answer) = match (method.as_str(), parts.as_slice()) {
        ("POST", ["users", "@me", "channels"]) => {
            let recipient = json_body["recipient_id"].as_str().unwrap_or("0");
            let recipient: u64 = recipient.parse().unwrap_or(0);
            // One direct-message channel per user, as Discord gives.
            let channel = 800_000_000_000_000_000 + recipient % 100_000_000_000_000_000;
            (
                StatusCode::OK,
                json!({"id": channel.to_string(), "type": 1, "recipients": [user(recipient)], "last_message_id": null}),
            )
        }
        ("POST", ["channels", channel, "messages"]) => {
            if shared
                .limited
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
            {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"message": "You are being rate limited.", "retry_after": 0.01, "global": false, "code": 0}),
                )
            } else {
                let channel: u64 = channel.parse().unwrap_or(0);
                (StatusCode::OK, message_object(id, channel, &json_body))
            }
        }
        ("POST", ["channels", parent, "threads"]) => (
            StatusCode::CREATED,
            json!({
                "id": id.to_string(),
                "type": 11,
                "guild_id": "1",
                "parent_id": parent,
                "owner_id": BOT.to_string(),
                "name": json_body["name"].clone(),
                "last_message_id": null,
                "message_count": 0,
                "member_count": 1,
                "rate_limit_per_user": 0,
                "thread_metadata": {
                    "archived": false,
                    "auto_archive_duration": 10080,
                    "archive_timestamp": "2026-12-08T00:00:00.000000+00:00",
                    "locked": false,
                },
                "total_message_sent": 0,
            }),
        ),
        ("PATCH", ["channels", channel, "messages", message]) => {
            let channel: u64 = channel.parse().unwrap_or(0);
            let message: u64 = message.parse().unwrap_or(0);
            (StatusCode::OK, message_object(message, channel, &json_body))
        }
        ("POST", ["interactions", _, _, "callback"]) => (StatusCode::NO_CONTENT, Value::Null),
        ("PATCH", ["webhooks", _, _, "messages", "@original"]) | ("POST", ["webhooks", _, _]) => {
            (StatusCode::OK, message_object(id, 0, &json_body))
        }
        ("PUT", ["applications", _, "guilds", _, "commands"] | ["applications", _, "commands"]) => {
            (StatusCode::OK, json!([]))
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({"message": "Unknown route (stand-in)", "code": 0}),
        ),
    };
    lock(&shared.requests).push(Recorded {
        method: method.to_string(),
        path: path.trim_start_matches("/api/v10").to_owned(),
        body: json_body,
        answer: answer.clone(),
        at: Instant::now(),
    });
    shared.arrived.notify_waiters();
    if answer.is_null() {
        status.into_response()
    } else {
        (status, axum::Json(answer)).into_response()
    }
}

/// The route of a path with ids (`/channels/1/messages` → `/channels/{}/messages`), for
/// test assertions on what kind of call was made.
#[must_use]
pub fn route(path: &str) -> String {
    path.split('/')
        .map(|part| {
            if !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
                "{}"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_hide_ids() {
        assert_eq!(
            route("/channels/12/messages/34"),
            "/channels/{}/messages/{}"
        );
        assert_eq!(route("/users/@me/channels"), "/users/@me/channels");
    }

    #[test]
    fn the_stand_ins_payloads_are_what_serenity_reads() {
        let message = Message {
            channel: 5,
            id: 6,
            object: message_object(
                6,
                5,
                &json!({"embeds": [{"title": "Approve: x"}],
                "components": [{"type": 1, "components": [
                    {"type": 2, "style": 3, "label": "Approve", "custom_id": "i.abc"},
                    {"type": 2, "style": 5, "label": "Open in signoff", "url": "http://x/instances/i"}]}]}),
            ),
        };
        let id = AtomicU64::new(1);
        let press = {
            let n = id.fetch_add(1, Ordering::Relaxed);
            let mut i = interaction_base(n, 3, 42, None, 5);
            i["data"] = json!({"custom_id": "i.abc", "component_type": 2});
            i["message"] = message.object.clone();
            i
        };
        let parsed: serenity::all::Interaction = serde_json::from_value(press).unwrap();
        let serenity::all::Interaction::Component(component) = parsed else {
            panic!("a press is a component interaction");
        };
        let input = crate::interaction::pressed(&component).unwrap();
        assert_eq!(input.button, "i.abc");
        assert_eq!(input.presser.user, "42");
        assert_eq!(
            input.presser.origin,
            "discord:dm/channel/5/message/6/user/42"
        );
        assert_eq!(input.subject.as_deref(), Some("Approve: x"));
        assert!(!input.in_guild);

        let mut submit = interaction_base(9, 5, 43, Some(7), 5);
        submit["data"] = json!({"custom_id": "i.abc", "components": [{"type": 1,
            "components": [{"type": 4, "custom_id": "justification", "value": "tested"}]}]});
        submit["message"] = message.object.clone();
        let parsed: serenity::all::Interaction = serde_json::from_value(submit).unwrap();
        let serenity::all::Interaction::Modal(modal) = parsed else {
            panic!("a submit is a modal interaction");
        };
        let input = crate::interaction::submitted(&modal);
        assert_eq!(input.justification.as_deref(), Some("tested"));
        assert_eq!(input.presser.user, "43", "the member's user, not a default");
        assert_eq!(
            input.presser.origin,
            "discord:guild/7/channel/5/message/6/user/43"
        );
        assert!(input.in_guild);
        assert_eq!(input.message, Some((5, 6)));
    }
}
