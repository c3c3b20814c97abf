//! The facts of the `directory` stream and the person they describe.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every directory event type; the log must register them (all at schema version 1).
pub const TYPES: [&str; 5] = [
    PERSON_ADDED,
    PERSON_UPDATED,
    PERSON_REMOVED,
    ROLE_GRANTED,
    ROLE_REVOKED,
];

const PERSON_ADDED: &str = "signoff.directory.person_added";
const PERSON_UPDATED: &str = "signoff.directory.person_updated";
const PERSON_REMOVED: &str = "signoff.directory.person_removed";
const ROLE_GRANTED: &str = "signoff.directory.role_granted";
const ROLE_REVOKED: &str = "signoff.directory.role_revoked";

/// A person as the directory knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Stable identifier: lowercase letters, digits, `.`, `-`, `_`.
    pub id: String,
    /// Name shown to others.
    pub name: String,
    /// Address notifications go to, and replies are matched against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Discord user id (a snowflake, digits only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<String>,
    /// Team, for routing and display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Directory roles held.
    #[serde(default)]
    pub roles: BTreeSet<String>,
}

impl Person {
    /// Everything about the person except roles: the payload of added/updated events.
    #[must_use]
    pub fn profile(&self) -> Profile {
        Profile {
            id: self.id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            discord: self.discord.clone(),
            team: self.team.clone(),
        }
    }

    pub(super) fn from_profile(profile: &Profile, roles: BTreeSet<String>) -> Self {
        Self {
            id: profile.id.clone(),
            name: profile.name.clone(),
            email: profile.email.clone(),
            discord: profile.discord.clone(),
            team: profile.team.clone(),
            roles,
        }
    }
}

/// A person without their roles. Roles travel in their own events so that the role history can be
/// read from role events alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Person id.
    pub id: String,
    /// Name shown to others.
    pub name: String,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Discord user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<String>,
    /// Team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// A fact of the `directory` stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum DirectoryEvent {
    /// A person appeared in the directory (with no roles yet).
    #[serde(rename = "signoff.directory.person_added")]
    PersonAdded(Profile),
    /// A person's name, email, Discord id or team changed.
    #[serde(rename = "signoff.directory.person_updated")]
    PersonUpdated(Profile),
    /// A person left the directory. Their roles were revoked by the events just before.
    #[serde(rename = "signoff.directory.person_removed")]
    PersonRemoved {
        /// Person id.
        id: String,
    },
    /// A person now holds a role.
    #[serde(rename = "signoff.directory.role_granted")]
    RoleGranted {
        /// Person id.
        person: String,
        /// Role name.
        role: String,
    },
    /// A person no longer holds a role.
    #[serde(rename = "signoff.directory.role_revoked")]
    RoleRevoked {
        /// Person id.
        person: String,
        /// Role name.
        role: String,
    },
}

impl DirectoryEvent {
    /// The CloudEvents `type` of the event.
    #[must_use]
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::PersonAdded(_) => PERSON_ADDED,
            Self::PersonUpdated(_) => PERSON_UPDATED,
            Self::PersonRemoved { .. } => PERSON_REMOVED,
            Self::RoleGranted { .. } => ROLE_GRANTED,
            Self::RoleRevoked { .. } => ROLE_REVOKED,
        }
    }

    /// The event's `data`.
    #[must_use]
    pub fn data(&self) -> Value {
        // Serialising plain strings and options into a `Value` cannot fail (no maps with
        // non-string keys, no custom serialisers), so the fallback is never taken.
        match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => map.remove("data").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Reads an event back from its `type` and `data` text.
    ///
    /// # Errors
    /// When `ty` is not a directory event type or `data` does not fit it.
    pub fn decode(ty: &str, data: &str) -> Result<Self, String> {
        if !TYPES.contains(&ty) {
            return Err(format!("{ty:?} is not a directory event type"));
        }
        let data: Value = serde_json::from_str(data).map_err(|e| format!("{ty}: {e}"))?;
        let mut map = serde_json::Map::new();
        map.insert("type".into(), Value::String(ty.to_owned()));
        map.insert("data".into(), data);
        serde_json::from_value(Value::Object(map)).map_err(|e| format!("{ty}: {e}"))
    }
}
