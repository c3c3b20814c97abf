//! Whose an idempotency key is, and what it promises.
//!
//! Two kinds of keys share the log's one table, in namespaces that cannot meet:
//! - **a client's key** (`Idempotency-Key`, `--idempotency-key`) belongs to the person and the
//!   channel that sent it: it is stored as `client:` and the SHA-256 of (person, channel, key),
//!   so two callers with the same key are two keys, and no client text can ever be stored as a
//!   key of the engine's. It is bound to the fingerprint of its first request: the same request
//!   again is answered with the first answer; another request with it is refused
//!   ([`crate::RuntimeError::IdempotencyKeyReused`]). Client keys are kept at least
//!   [`CLIENT_KEY_RETENTION_MICROS`] (24 hours), then forgotten by the clock.
//! - **the engine's keys** (timers, links, outbox deliveries, cron runs) are built from ids
//!   (`timer:<instance>:<timer>`) and kept for ever: they are what makes a timer fire once.
//!
//! This module imports nothing of the runtime: callers build keys with it.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use signoff_core::IdempotencyKey;

/// The prefix of every client key as stored.
pub const CLIENT_PREFIX: &str = "client:";

/// How long a client's key is kept at least: a retry within this time is answered with the
/// first answer; after it, the key may be forgotten and used afresh.
pub const CLIENT_KEY_RETENTION_MICROS: i64 = 24 * 3_600 * 1_000_000;

/// How often the clock forgets expired client keys.
pub const FORGET_EVERY_MICROS: i64 = 3_600 * 1_000_000;

/// An idempotency key as an append carries it, with the fingerprint of its request (clients'
/// keys) or without (the engine's own, whose text already says what they are for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyed {
    /// The key as stored.
    pub key: IdempotencyKey,
    /// What the request was.
    pub fingerprint: Option<String>,
}

impl Keyed {
    /// A client's `key`, sent by `person` through `channel`, for a request whose fingerprint is
    /// `fingerprint` (see [`fingerprint`]).
    ///
    /// # Errors
    /// Never in practice: the stored form is a fixed-length hash. The error is the key type's.
    pub fn client(
        person: &str,
        channel: &str,
        key: &str,
        fingerprint: String,
    ) -> Result<Self, signoff_core::InvalidEvent> {
        let mut hasher = Sha256::new();
        for part in [person, channel, key] {
            // Each part with its length, so that ("ab", "c") and ("a", "bc") differ.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        Ok(Self {
            key: IdempotencyKey::parse(format!(
                "{CLIENT_PREFIX}{}",
                hex::encode(hasher.finalize())
            ))?,
            fingerprint: Some(fingerprint),
        })
    }

    /// One of the engine's keys, built from ids (`timer:<instance>:<timer>`). A text too long or
    /// unusual for a key is stored as its SHA-256; none can take the client namespace.
    ///
    /// # Errors
    /// Never in practice; the error is the key type's.
    pub fn engine(text: &str) -> Result<Self, signoff_core::InvalidEvent> {
        let key = match IdempotencyKey::parse(text) {
            Ok(key) if !text.starts_with(CLIENT_PREFIX) => key,
            _ => IdempotencyKey::parse(format!(
                "sha256:{}",
                hex::encode(Sha256::digest(text.as_bytes()))
            ))?,
        };
        Ok(Self {
            key,
            fingerprint: None,
        })
    }
}

/// The fingerprint of a request: the SHA-256 of what it is (`command`), what it is about
/// (`subject`: an instance or a workflow) and its content, as canonical JSON (object keys
/// sorted), so that the same request sent again, fields in any order, has the same fingerprint.
///
/// # Errors
/// When `content` cannot be read as JSON: no fingerprint rather than one shared by every such
/// request, which would let one replay another's answer.
pub fn fingerprint(
    command: &str,
    subject: &str,
    content: &impl Serialize,
) -> Result<String, serde_json::Error> {
    let content = serde_json::to_value(content)?;
    let mut text = String::new();
    canonical(&content, &mut text);
    let mut hasher = Sha256::new();
    for part in [command, subject, text.as_str()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    Ok(hex::encode(hasher.finalize()))
}

/// `value` as JSON with object keys sorted, whatever order the map kept.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn client(person: &str, channel: &str, key: &str) -> Keyed {
        Keyed::client(person, channel, key, "f".into()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_same_client_key_of_two_callers_is_two_keys() {
        assert_ne!(
            client("bob", "api", "k1").key,
            client("carol", "api", "k1").key
        );
        assert_ne!(
            client("bob", "api", "k1").key,
            client("bob", "cli", "k1").key
        );
        assert_eq!(
            client("bob", "api", "k1").key,
            client("bob", "api", "k1").key
        );
        assert_ne!(client("ab", "c", "k").key, client("a", "bc", "k").key);
    }

    #[test]
    fn no_client_key_can_be_an_engine_key() {
        let timer = "timer:0190-abc:deadline";
        let engine = Keyed::engine(timer).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(engine.key.as_str(), timer);
        assert_ne!(client("mallory", "api", timer).key, engine.key);
        assert!(
            client("mallory", "api", timer)
                .key
                .as_str()
                .starts_with(CLIENT_PREFIX)
        );
        assert!(!engine.key.as_str().starts_with(CLIENT_PREFIX));
        // An engine text that looks like a client key is moved out of the client namespace.
        let odd = Keyed::engine("client:abc").unwrap_or_else(|e| panic!("{e}"));
        assert!(!odd.key.as_str().starts_with(CLIENT_PREFIX));
    }

    #[test]
    fn a_fingerprint_ignores_key_order_and_sees_every_value() {
        let print = |command: &str, subject: &str, content: serde_json::Value| {
            fingerprint(command, subject, &content).unwrap_or_else(|e| panic!("{e}"))
        };
        let a = print(
            "comment",
            "i1",
            json!({"text": "hi", "n": {"b": 1, "a": 2}}),
        );
        assert_eq!(
            a,
            print(
                "comment",
                "i1",
                json!({"n": {"a": 2, "b": 1}, "text": "hi"})
            )
        );
        assert_ne!(
            a,
            print(
                "comment",
                "i2",
                json!({"text": "hi", "n": {"b": 1, "a": 2}})
            )
        );
        assert_ne!(
            a,
            print("signal", "i1", json!({"text": "hi", "n": {"b": 1, "a": 2}}))
        );
        assert_ne!(
            a,
            print(
                "comment",
                "i1",
                json!({"text": "ho", "n": {"b": 1, "a": 2}})
            )
        );
    }
}
