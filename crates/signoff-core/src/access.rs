//! Who may call signoff from outside, and what they may see.
//!
//! API tokens are facts of the log like everything else: issuing one appends
//! [`AccessEvent::TokenIssued`] with the SHA-256 of the secret (never the secret), revoking one
//! appends [`AccessEvent::TokenRevoked`]. [`Tokens`] is the state folded from them, and
//! [`Tokens::check`] says whether a presented secret's hash is a live token, and whose.
//!
//! Reading is checked here too, as pure functions of the person's roles and the instance:
//! [`may_read`] for one instance, [`may_audit`] for the whole log (export, verification, the
//! security stream). Commands are checked by the engine itself ([`crate::engine::decide`]), which
//! asks [`may_annotate`] of a comment.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{Actor, Instance, SYSTEM};
use crate::event::Timestamp;
use crate::workflow::Definition;

/// The stream tokens are issued and revoked in.
pub const TOKENS_STREAM: &str = "access/tokens";
/// Type of [`AccessEvent::TokenIssued`].
pub const TOKEN_ISSUED: &str = "signoff.token.issued";
/// Type of [`AccessEvent::TokenRevoked`].
pub const TOKEN_REVOKED: &str = "signoff.token.revoked";
/// Type of [`AccessEvent::TokenUsed`] (recorded at most once per [`USE_RECORDED_EVERY`] a
/// token).
pub const TOKEN_USED: &str = "signoff.token.used";
/// Every access event type; the log must register them (all at schema version 1).
pub const TYPES: [&str; 3] = [TOKEN_ISSUED, TOKEN_REVOKED, TOKEN_USED];
/// How stale a token's recorded last use may get before a use is recorded again
/// (microseconds): an hour, so `token list` tells a token in use from a forgotten one without a
/// log event per request.
pub const USE_RECORDED_EVERY: i64 = 3_600_000_000;

/// The directory role that reads and exports everything and changes nothing.
pub const AUDITOR_ROLE: &str = "auditor";

/// A fact about API tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AccessEvent {
    /// A token was issued to a person or service of the directory.
    #[serde(rename = "signoff.token.issued")]
    TokenIssued {
        /// Its id (shown in lists, used to revoke it; not a secret).
        id: String,
        /// The directory id it acts as.
        owner: String,
        /// What it is for ("laptop", "ci-pipeline"…).
        name: String,
        /// Hex SHA-256 of the secret.
        hash: String,
        /// When it stops working, if ever.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<Timestamp>,
        /// It may read, and change nothing (a pipeline's `signoff wait`, a dashboard).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        read_only: bool,
        /// The workflows it reaches (a deployment pipeline's token: `deployment-approval`);
        /// empty: every workflow its owner's roles reach.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        workflows: Vec<String>,
    },
    /// A token was revoked; it never works again.
    #[serde(rename = "signoff.token.revoked")]
    TokenRevoked {
        /// Its id.
        id: String,
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// A token was used (at most once an hour is recorded): the event's time is its last use.
    #[serde(rename = "signoff.token.used")]
    TokenUsed {
        /// Its id.
        id: String,
    },
}

impl AccessEvent {
    /// Its type and data, as the log stores them.
    #[must_use]
    pub fn to_parts(&self) -> (&'static str, Value) {
        let ty = match self {
            Self::TokenIssued { .. } => TOKEN_ISSUED,
            Self::TokenRevoked { .. } => TOKEN_REVOKED,
            Self::TokenUsed { .. } => TOKEN_USED,
        };
        let data = serde_json::to_value(self)
            .ok()
            .and_then(|mut v| v.get_mut("data").map(Value::take))
            .unwrap_or(Value::Null);
        (ty, data)
    }

    /// Reads an access event back from its type and data.
    ///
    /// # Errors
    /// An unknown type or data that does not fit it.
    pub fn decode(ty: &str, data: &str) -> Result<Self, String> {
        if !TYPES.contains(&ty) {
            return Err(format!("{ty:?} is not an access event type"));
        }
        let data: Value = serde_json::from_str(data).map_err(|e| format!("{ty}: {e}"))?;
        serde_json::from_value(serde_json::json!({ "type": ty, "data": data }))
            .map_err(|e| format!("{ty}: {e}"))
    }
}

/// A token as the log records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Its id.
    pub id: String,
    /// Who it acts as.
    pub owner: String,
    /// What it is for.
    pub name: String,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// It may read, and change nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// The workflows it reaches; empty: every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<String>,
    /// When it was last used, to the hour (see [`USE_RECORDED_EVERY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<Timestamp>,
}

impl Token {
    /// Limits an actor of its owner to the workflows it reaches.
    #[must_use]
    pub fn scope(&self, actor: Actor) -> Actor {
        if self.workflows.is_empty() {
            return actor;
        }
        Actor {
            workflows: Some(self.workflows.iter().cloned().collect()),
            ..actor
        }
    }

    /// Whether a use at `now` should be recorded: never recorded, or not for an hour.
    #[must_use]
    pub fn use_due(&self, now: Timestamp) -> bool {
        self.last_used
            .is_none_or(|at| now.0.saturating_sub(at.0) >= USE_RECORDED_EVERY)
    }
}

/// Why a presented token is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// No token has this secret.
    #[error("the token is not one signoff issued")]
    Unknown,
    /// It expired.
    #[error("the token {id:?} expired at {}", at.to_rfc3339())]
    Expired {
        /// The token.
        id: String,
        /// When.
        at: Timestamp,
    },
    /// It was revoked.
    #[error("the token {id:?} was revoked at {}", at.to_rfc3339())]
    Revoked {
        /// The token.
        id: String,
        /// When.
        at: Timestamp,
    },
}

/// Every token issued, folded from the tokens stream.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    by_id: HashMap<String, Token>,
    /// Secret hash to token id.
    by_hash: HashMap<String, String>,
}

impl Tokens {
    /// Folds one event, recorded at `at`.
    pub fn apply(&mut self, event: &AccessEvent, at: Timestamp) {
        match event {
            AccessEvent::TokenIssued {
                id,
                owner,
                name,
                hash,
                expires_at,
                read_only,
                workflows,
            } => {
                // An id is issued once; a second issue under it must not let its secret act
                // as the first token's owner.
                if self.by_id.contains_key(id) {
                    return;
                }
                self.by_hash.insert(hash.clone(), id.clone());
                self.by_id.insert(
                    id.clone(),
                    Token {
                        id: id.clone(),
                        owner: owner.clone(),
                        name: name.clone(),
                        issued_at: at,
                        expires_at: *expires_at,
                        revoked_at: None,
                        read_only: *read_only,
                        workflows: workflows.clone(),
                        last_used: None,
                    },
                );
            }
            AccessEvent::TokenRevoked { id, .. } => {
                if let Some(token) = self.by_id.get_mut(id) {
                    token.revoked_at.get_or_insert(at);
                }
            }
            AccessEvent::TokenUsed { id } => {
                if let Some(token) = self.by_id.get_mut(id) {
                    token.last_used = Some(token.last_used.map_or(at, |last| last.max(at)));
                }
            }
        }
    }

    /// The live token whose secret hashes to `hash`.
    ///
    /// # Errors
    /// Unknown, expired at `now`, or revoked.
    pub fn check(&self, hash: &str, now: Timestamp) -> Result<&Token, TokenRefusal> {
        let token = self
            .by_hash
            .get(hash)
            .and_then(|id| self.by_id.get(id))
            .ok_or(TokenRefusal::Unknown)?;
        if let Some(at) = token.revoked_at {
            return Err(TokenRefusal::Revoked {
                id: token.id.clone(),
                at,
            });
        }
        if let Some(at) = token.expires_at.filter(|at| *at <= now) {
            return Err(TokenRefusal::Expired {
                id: token.id.clone(),
                at,
            });
        }
        Ok(token)
    }

    /// A token by id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Token> {
        self.by_id.get(id)
    }

    /// Every token with the hash of its secret, by id.
    pub fn with_secrets(&self) -> impl Iterator<Item = (&str, &Token)> {
        self.by_hash
            .iter()
            .filter_map(|(hash, id)| Some((hash.as_str(), self.by_id.get(id)?)))
    }

    /// The tokens of exactly these (secret hash, token) pairs, as [`Tokens::with_secrets`]
    /// lists them, for a process that kept them rather than their events.
    pub fn from_secrets(tokens: impl IntoIterator<Item = (String, Token)>) -> Self {
        let mut out = Self::default();
        for (hash, token) in tokens {
            out.by_hash.insert(hash, token.id.clone());
            out.by_id.insert(token.id.clone(), token);
        }
        out
    }

    /// Every token, oldest first.
    #[must_use]
    pub fn list(&self) -> Vec<&Token> {
        let mut all: Vec<&Token> = self.by_id.values().collect();
        all.sort_by(|a, b| (a.issued_at, &a.id).cmp(&(b.issued_at, &b.id)));
        all
    }
}

/// Whether the actor reads and exports everything: auditors (and the engine itself), through
/// a credential not limited to some workflows.
#[must_use]
pub fn may_audit(actor: &Actor) -> bool {
    actor.workflows.is_none() && audits(actor)
}

/// Whether the actor holds the auditor's rights (whatever their credential reaches).
fn audits(actor: &Actor) -> bool {
    actor.id == SYSTEM || actor.roles.contains(AUDITOR_ROLE)
}

/// Whether the actor may see every instance of a workflow, whatever its state: an auditor, or
/// someone holding a directory role the workflow names. Lists use it to skip reading instances.
#[must_use]
pub fn may_read_all(definition: &Definition, actor: &Actor) -> bool {
    actor.may_touch(&definition.id.value) && (audits(actor) || holds_a_role_of(definition, actor))
}

/// Whether the actor may see an instance: [`may_read_all`], or [`may_annotate`] (its requester,
/// anyone who takes part in it, an operator while a step of it is stopped).
#[must_use]
pub fn may_read(definition: &Definition, state: &Instance, actor: &Actor) -> bool {
    (actor.may_touch(&definition.id.value) && audits(actor))
        || may_annotate(definition, state, actor)
}

/// Whether the actor may add to an instance what decides nothing (a comment): nobody through a
/// credential for other workflows; whoever may read it, except through the auditor role alone,
/// since an auditor reads everything and changes nothing. That is the engine itself; someone holding a directory role
/// the workflow names; its requester; anyone who submitted one of its forms, is asked to act on
/// one of its steps, or is named by the person field that gives one of its roles.
#[must_use]
pub fn may_annotate(definition: &Definition, state: &Instance, actor: &Actor) -> bool {
    let me = actor.id.as_str();
    if !actor.may_touch(&definition.id.value) {
        return false;
    }
    me == SYSTEM
        || holds_a_role_of(definition, actor)
        // A stopped step waits for an operator.
        || (actor.roles.contains(crate::engine::OPERATOR) && state.failures().next().is_some())
        || state.requester == me
        || state.submitted_by.values().any(|p| p == me)
        || state
            .active
            .values()
            .any(|a| a.assignees.iter().chain(&a.escalated).any(|p| p == me))
        || definition.roles.values().any(|spec| {
            spec.field
                .as_ref()
                .is_some_and(|field| state.person_in_field(field.as_str()) == Some(me))
        })
}

/// Whether the person may attach evidence to an instance: its requester, someone an open step
/// of it waits for, or the engine itself. (Checked by the engine; asked before a file is stored,
/// so that a refused upload leaves nothing on disk.)
#[must_use]
pub fn may_attach(state: &Instance, person: &str) -> bool {
    person == state.requester
        || person == SYSTEM
        || state
            .active
            .values()
            .any(|a| a.assignees.iter().any(|p| p == person))
}

/// Whether the actor holds a directory role the workflow names (not one taken from a form).
fn holds_a_role_of(definition: &Definition, actor: &Actor) -> bool {
    definition
        .roles
        .iter()
        .any(|(role, spec)| spec.field.is_none() && actor.roles.contains(role.as_str()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::workflow::load;

    fn actor(id: &str, roles: &[&str]) -> Actor {
        Actor {
            id: id.into(),
            roles: roles
                .iter()
                .map(|r| (*r).to_owned())
                .collect::<BTreeSet<_>>(),
            team: None,
            workflows: None,
        }
    }

    fn issued(id: &str, hash: &str, expires_at: Option<i64>) -> AccessEvent {
        AccessEvent::TokenIssued {
            id: id.into(),
            owner: "alice".into(),
            name: "laptop".into(),
            hash: hash.into(),
            expires_at: expires_at.map(Timestamp),
            read_only: false,
            workflows: Vec::new(),
        }
    }

    #[test]
    fn a_token_works_until_it_expires_or_is_revoked() {
        let mut tokens = Tokens::default();
        tokens.apply(&issued("t1", "h1", Some(100)), Timestamp(10));
        tokens.apply(&issued("t2", "h2", None), Timestamp(10));
        assert_eq!(
            tokens.check("h1", Timestamp(99)).map(|t| t.owner.as_str()),
            Ok("alice")
        );
        assert_eq!(
            tokens.check("h1", Timestamp(100)),
            Err(TokenRefusal::Expired {
                id: "t1".into(),
                at: Timestamp(100)
            })
        );
        assert_eq!(
            tokens.check("nope", Timestamp(0)),
            Err(TokenRefusal::Unknown)
        );
        tokens.apply(
            &AccessEvent::TokenRevoked {
                id: "t2".into(),
                reason: "lost".into(),
            },
            Timestamp(50),
        );
        assert_eq!(
            tokens.check("h2", Timestamp(60)),
            Err(TokenRefusal::Revoked {
                id: "t2".into(),
                at: Timestamp(50)
            })
        );
        assert_eq!(tokens.list().len(), 2);
    }

    #[test]
    fn a_use_is_recorded_once_an_hour_and_the_latest_stands() {
        let mut tokens = Tokens::default();
        tokens.apply(&issued("t1", "h1", None), Timestamp(10));
        let token = |tokens: &Tokens| tokens.check("h1", Timestamp(11)).unwrap().clone();
        assert!(token(&tokens).use_due(Timestamp(11)), "never used");
        let used = AccessEvent::TokenUsed { id: "t1".into() };
        tokens.apply(&used, Timestamp(1_000));
        assert_eq!(token(&tokens).last_used, Some(Timestamp(1_000)));
        assert!(!token(&tokens).use_due(Timestamp(1_000 + USE_RECORDED_EVERY - 1)));
        assert!(token(&tokens).use_due(Timestamp(1_000 + USE_RECORDED_EVERY)));
        // Two processes recording the same hour: the later time stands, in any order.
        tokens.apply(&used, Timestamp(900));
        assert_eq!(token(&tokens).last_used, Some(Timestamp(1_000)));
        // A use of a token nobody issued changes nothing.
        tokens.apply(&AccessEvent::TokenUsed { id: "t9".into() }, Timestamp(5));
        assert_eq!(tokens.list().len(), 1);
    }

    #[test]
    fn access_events_read_back_as_written() {
        for event in [
            issued("t1", "h1", Some(5)),
            AccessEvent::TokenRevoked {
                id: "t1".into(),
                reason: String::new(),
            },
            AccessEvent::TokenUsed { id: "t1".into() },
        ] {
            let (ty, data) = event.to_parts();
            assert_eq!(AccessEvent::decode(ty, &data.to_string()), Ok(event));
        }
        assert!(AccessEvent::decode("signoff.token.nope", "{}").is_err());
    }

    const WORKFLOW: &str = "\
id: review
title: Review
roles:
  reviewer: {}
  author: { field: draft.author }
steps:
  - id: draft
    form:
      fields:
        - { id: author, type: person }
    next: done
  - id: done
    end: { outcome: approved }
";

    #[test]
    fn people_see_what_their_roles_and_part_allow() {
        let loaded = load("review.yaml", WORKFLOW).expect("valid workflow");
        let definition = &loaded.definition;
        let mut state = Instance::new("i1");
        state.requester = "carol".into();
        state.data.insert("draft".into(), json!({"author": "dave"}));
        assert!(may_read(definition, &state, &actor("carol", &[])));
        assert!(may_read(definition, &state, &actor("dave", &[])));
        assert!(may_read(definition, &state, &actor("erin", &["reviewer"])));
        assert!(may_read(definition, &state, &actor("zoe", &[AUDITOR_ROLE])));
        assert!(!may_read(definition, &state, &actor("mallory", &["legal"])));
        assert!(may_annotate(definition, &state, &actor("dave", &[])));
        assert!(
            !may_annotate(definition, &state, &actor("zoe", &[AUDITOR_ROLE])),
            "an auditor reads and changes nothing"
        );
        assert!(may_annotate(definition, &state, &Actor::system()));
        assert!(!may_audit(&actor("erin", &["reviewer"])));
        assert!(may_read_all(definition, &actor("erin", &["reviewer"])));
        assert!(
            !may_read_all(definition, &actor("dave", &[])),
            "a part is not a role"
        );
    }
}
