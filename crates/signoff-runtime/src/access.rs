//! Access from outside: API tokens (issued, revoked, checked) and what a person may read.
//!
//! The rules are the core's ([`signoff_core::access`]); this module records tokens in the log,
//! resolves a presented secret to an [`Actor`], and records refused reads in the security
//! stream, as refused commands are.

use serde::Serialize;
use sha2::{Digest, Sha256};
use signoff_core::access::{self, AccessEvent, TOKENS_STREAM, Token, TokenRefusal};
use signoff_core::engine::Actor;
use signoff_core::{EventType, RecordedEvent, Secret, StreamId, Timestamp};
use signoff_store::{AppendRequest, ExpectedVersion, ModelQuery, Page};

use crate::error::RuntimeError;
use crate::events::{corrupt, new_event};
use crate::projections::{self, InstanceRow};
use crate::runtime::{Entry, Runtime};

/// Why a read-only token is refused a request that would change something.
pub const READ_ONLY_REFUSAL: &str =
    "the token may only read (issued with --read-only): it cannot change anything";

/// Prefix of every token secret, so a leaked one is recognisable (e.g. by secret scanners).
pub const SECRET_PREFIX: &str = "signoff_";

/// Why a request is not let in.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token is unknown, expired or revoked.
    #[error(transparent)]
    Token(#[from] TokenRefusal),
    /// The token's owner left the directory.
    #[error("the token belongs to {0:?}, who is no longer in the directory")]
    OwnerGone(String),
}

/// What a token may do beyond acting as its owner: everything (the default), or less.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// It may read, and change nothing.
    pub read_only: bool,
    /// The workflows it reaches (each must be a workflow signoff knows); empty: every one.
    pub workflows: Vec<String>,
}

/// A token just issued: the secret is shown once and never stored. `Debug` shows `***` in its
/// place; serialising it (the answer to the one who asked for it) shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Issued {
    /// The token as recorded.
    pub token: Token,
    /// The secret to present as `Authorization: Bearer …`.
    #[serde(serialize_with = "expose")]
    pub secret: Secret,
}

/// The one place a secret is written out: the answer to whoever issued the token.
fn expose<S: serde::Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

/// One instance in a list.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct InstanceSummary {
    /// Its id.
    pub id: String,
    /// Its workflow.
    pub workflow: String,
    /// Who started it.
    pub requester: String,
    /// When.
    pub started_at: Timestamp,
    /// `running`, `ended` or `cancelled`.
    pub status: String,
    /// The outcome, once ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// When it ended or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Escalations so far (missed deadlines).
    pub escalations: u32,
    /// The steps it is at (while running).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub current_steps: Vec<String>,
    /// Of those, the ones a rule stopped (an operator retries them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<String>,
}

impl InstanceSummary {
    /// The list row of an instance's state (as its read model row would hold it).
    #[must_use]
    pub fn of(state: &signoff_core::engine::Instance) -> Self {
        InstanceRow::of(state, 0).into()
    }
}

impl From<InstanceRow> for InstanceSummary {
    fn from(row: InstanceRow) -> Self {
        Self {
            id: row.id,
            workflow: row.workflow,
            requester: row.requester,
            started_at: row.started_at,
            status: row.status,
            outcome: row.outcome,
            ended_at: row.ended_at,
            escalations: row.escalations,
            current_steps: row.current_steps,
            stopped: row.stopped,
        }
    }
}

/// Which instances to list.
#[derive(Clone, Debug, Default)]
pub struct InstanceFilter {
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only `running`, `ended` or `cancelled`.
    pub status: Option<String>,
    /// Only those this person started.
    pub requester: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// The hex SHA-256 a secret is recorded as.
fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Runtime {
    /// Issues a token acting as `owner` (a person or service of the directory), recorded by
    /// `by`. The secret is in the answer only.
    ///
    /// # Errors
    /// An owner not in the directory; a store error.
    pub async fn issue_token(
        &self,
        owner: &str,
        name: &str,
        expires_at: Option<Timestamp>,
        scope: &Scope,
        by: &str,
    ) -> Result<Issued, RuntimeError> {
        self.actor(owner)?;
        if let Some(unknown) = scope
            .workflows
            .iter()
            .find(|w| self.definition(w).is_none())
        {
            return Err(RuntimeError::UnknownWorkflow(unknown.clone()));
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| corrupt(&e))?;
        let secret = format!("{SECRET_PREFIX}{}", hex::encode(bytes));
        let id = format!("tok_{}", uuid::Uuid::now_v7().simple());
        self.append_access(
            &AccessEvent::TokenIssued {
                id: id.clone(),
                owner: owner.to_owned(),
                name: name.to_owned(),
                hash: secret_hash(&secret),
                expires_at,
                read_only: scope.read_only,
                workflows: scope.workflows.clone(),
            },
            by,
        )
        .await?;
        let token = self
            .view()
            .tokens
            .get(&id)
            .cloned()
            .ok_or_else(|| corrupt(&format!("token {id} was recorded but not folded")))?;
        Ok(Issued {
            token,
            secret: Secret::new(secret),
        })
    }

    /// Revokes a token; it never works again.
    ///
    /// # Errors
    /// An unknown token id; a store error.
    pub async fn revoke_token(&self, id: &str, reason: &str, by: &str) -> Result<(), RuntimeError> {
        self.catch_up().await?;
        if self.view().tokens.get(id).is_none() {
            return Err(RuntimeError::UnknownToken(id.to_owned()));
        }
        self.append_access(
            &AccessEvent::TokenRevoked {
                id: id.to_owned(),
                reason: reason.to_owned(),
            },
            by,
        )
        .await
    }

    /// Every token issued, oldest first (no secrets: the log holds none).
    #[must_use]
    pub fn tokens(&self) -> Vec<Token> {
        self.view().tokens.list().into_iter().cloned().collect()
    }

    async fn append_access(&self, event: &AccessEvent, by: &str) -> Result<(), RuntimeError> {
        let (ty, data) = event.to_parts();
        let stream = StreamId::parse(TOKENS_STREAM).map_err(|e| corrupt(&e))?;
        let appended = self
            .log()
            .append(AppendRequest::new(
                stream,
                ExpectedVersion::Any,
                vec![new_event(ty, &data, by, "access", None)?],
            ))
            .await?;
        self.catch_up_to(appended.last_sequence).await
    }

    /// Records in the security stream that `person` was refused `what` (a request's method and
    /// path) because their token may only read.
    ///
    /// # Errors
    /// A store error.
    pub async fn refuse_read_only(
        &self,
        what: &str,
        person: &str,
        channel: &str,
    ) -> Result<(), RuntimeError> {
        self.record_global_refusal(what, person, channel, READ_ONLY_REFUSAL)
            .await
    }

    /// The actor a presented secret acts as, with the roles the directory gives them now.
    ///
    /// # Errors
    /// [`AuthError`]: unknown, expired or revoked token; its owner left the directory.
    pub fn authenticate(&self, secret: &str) -> Result<Actor, AuthError> {
        self.authenticate_token(secret).map(|(actor, _)| actor)
    }

    /// The actor a presented secret acts as, and whether its token may only read (both from
    /// one reading of the tokens).
    ///
    /// # Errors
    /// As [`Runtime::authenticate`].
    pub fn authenticate_token(&self, secret: &str) -> Result<(Actor, bool), AuthError> {
        let token = self
            .view()
            .tokens
            .check(&secret_hash(secret), self.now())?
            .clone();
        let actor = self
            .actor(&token.owner)
            .map_err(|_| AuthError::OwnerGone(token.owner.clone()))?;
        Ok((token.scope(actor), token.read_only))
    }

    /// Records that the token with this secret was used now, when its last recorded use is an
    /// hour old or there is none (`token list` shows it); otherwise does nothing. A use being
    /// recorded by a concurrent request is not recorded twice.
    ///
    /// # Errors
    /// A store error.
    pub async fn record_token_use(&self, secret: &str) -> Result<(), RuntimeError> {
        let now = self.now();
        let (id, owner) = {
            let view = self.view();
            match view.tokens.check(&secret_hash(secret), now) {
                Ok(token) if token.use_due(now) => (token.id.clone(), token.owner.clone()),
                _ => return Ok(()),
            }
        };
        let recording = || {
            self.recording_use
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if !recording().insert(id.clone()) {
            return Ok(());
        }
        let result = self
            .append_access(&AccessEvent::TokenUsed { id: id.clone() }, &owner)
            .await;
        recording().remove(&id);
        result
    }

    /// Loads an instance for `actor` to read: refused (and the refusal recorded in the
    /// security stream) when their roles do not let them see it.
    ///
    /// # Errors
    /// Unknown instance; [`RuntimeError::Rejected`] (forbidden); a store error.
    pub async fn load_for(
        &self,
        actor: &Actor,
        id: &str,
        channel: &str,
    ) -> Result<Entry, RuntimeError> {
        let entry = self.load(id).await?;
        self.check_read(actor, &entry, "read", channel).await?;
        Ok(entry)
    }

    /// Refuses (and records) a read of `entry` that `actor` may not make.
    ///
    /// # Errors
    /// [`RuntimeError::Rejected`] (forbidden); a store error.
    pub async fn check_read(
        &self,
        actor: &Actor,
        entry: &Entry,
        what: &str,
        channel: &str,
    ) -> Result<(), RuntimeError> {
        if access::may_read(&entry.loaded.definition, &entry.state, actor) {
            return Ok(());
        }
        let reason = if actor.may_touch(&entry.state.workflow) {
            format!(
                "{} holds no role of workflow {:?} and takes no part in instance {}",
                actor.id, entry.state.workflow, entry.state.id
            )
        } else {
            actor.out_of_scope(&entry.state.workflow)
        };
        self.record_refusal_of(entry, what, None, &actor.id, channel, &reason)
            .await?;
        Err(signoff_core::engine::Rejection::forbidden(reason).into())
    }

    /// Refuses (and records) a whole-log read (export, verification) by a non-auditor.
    ///
    /// # Errors
    /// [`RuntimeError::Rejected`] (forbidden); a store error.
    pub async fn check_audit(
        &self,
        actor: &Actor,
        what: &str,
        channel: &str,
    ) -> Result<(), RuntimeError> {
        if access::may_audit(actor) {
            return Ok(());
        }
        let reason = if actor.workflows.is_some() {
            format!(
                "{what} of the whole log needs a token for every workflow; the one {} acts \
                 through is not",
                actor.id
            )
        } else {
            format!(
                "{what} of the whole log is for the {:?} role, which {} does not hold",
                access::AUDITOR_ROLE,
                actor.id
            )
        };
        self.record_global_refusal(what, &actor.id, channel, &reason)
            .await?;
        Err(signoff_core::engine::Rejection::forbidden(reason).into())
    }

    /// Instances, newest first, as `filter` says, that `actor` may read: from the instances'
    /// read model (written first, so it holds what this process has folded).
    ///
    /// # Errors
    /// A store error or an unreadable row.
    pub async fn list_instances(
        &self,
        actor: &Actor,
        filter: &InstanceFilter,
    ) -> Result<Vec<InstanceSummary>, RuntimeError> {
        self.catch_up().await?;
        self.save_projections().await?;
        let limit = filter.limit.max(1);
        let mut out = Vec::new();
        let mut before: Option<(i64, String)> = None;
        loop {
            let page = self
                .log()
                .model_rows(ModelQuery {
                    model: projections::INSTANCES,
                    tag: filter.status.as_deref(),
                    from: Page::NewestBefore(before.as_ref().map(|(t, k)| (*t, k.as_str()))),
                    limit: 500,
                })
                .await?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            before = Some((last.sort.unwrap_or(0), last.key.clone()));
            let full = page.len() == 500;
            for row in page {
                let row = InstanceRow::from_row(&row)?;
                if filter.workflow.as_ref().is_some_and(|w| *w != row.workflow)
                    || filter
                        .requester
                        .as_ref()
                        .is_some_and(|r| *r != row.requester)
                {
                    continue;
                }
                if !self.may_list(actor, &row).await {
                    continue;
                }
                out.push(row.into());
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Whether `actor` may see an instance in a list: by role, as its requester, or as a part
    /// in it (which depends on its state).
    async fn may_list(&self, actor: &Actor, row: &InstanceRow) -> bool {
        if !actor.may_touch(&row.workflow) {
            return false;
        }
        let by_role = self
            .view()
            .definitions
            .by_hash(&row.definition)
            .is_some_and(|loaded| access::may_read_all(&loaded.definition, actor));
        if by_role || actor.id == row.requester {
            return true;
        }
        self.load(&row.id)
            .await
            .is_ok_and(|entry| access::may_read(&entry.loaded.definition, &entry.state, actor))
    }

    /// Every event of one type, in log order (through the store's index by type).
    ///
    /// # Errors
    /// A store error.
    pub async fn events_of_type(&self, ty: &str) -> Result<Vec<RecordedEvent>, RuntimeError> {
        let ty = EventType::parse(ty).map_err(|e| corrupt(&e))?;
        let mut out: Vec<RecordedEvent> = Vec::new();
        loop {
            let after = out.last().map_or(0, |r| r.sequence);
            let page = self.log().read_type(&ty, after, 4_096).await?;
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }
}
