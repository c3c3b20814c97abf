//! Decision links: what an email's Approve or Reject link carries, and its signature.
//!
//! A link is bound to one person, one instance, one gate and the gate's occurrence (its
//! activation), one verdict, and the view hash the email showed; it expires. Its claims are
//! signed with HMAC-SHA256 under the deployment's [`LinkKey`], kept outside the log, so a link
//! cannot be made or altered without the key: change one letter and it is refused. The link's
//! text is opaque to its reader; the server trusts nothing in it until the signature holds, and
//! even then decides nothing on it alone (the state is read again, and the person's rights are
//! checked by the engine as for every channel).
//!
//! A token is `<claims>.<signature>`, both base64url without padding; the claims are JSON.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Timestamp;
use crate::engine::Verdict;

type HmacSha256 = hmac::Hmac<Sha256>;

/// What the signature covers besides the claims: a token of another kind or version never
/// verifies as this one.
const DOMAIN: &[u8] = b"signoff-decision-link-v1.";

/// Bytes of a link key.
pub const KEY_LEN: usize = 32;

/// The deployment's key for decision links (32 random bytes, written as 64 hex digits).
/// Never printed: `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkKey([u8; KEY_LEN]);

impl LinkKey {
    /// A key of these bytes (the caller draws them at random).
    #[must_use]
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads a key file's text: 64 hex digits, surrounding white space ignored.
    ///
    /// # Errors
    /// What is wrong with the text (never the text itself).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = hex::decode(text).map_err(|_| {
            format!(
                "a link key is {} hex digits; this one is {} characters and not all hex",
                KEY_LEN * 2,
                text.len()
            )
        })?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "a link key is {} hex digits; this one has {}",
                KEY_LEN * 2,
                b.len() * 2
            )
        })?;
        Ok(Self(bytes))
    }

    /// The key as a key file holds it.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        // HMAC takes a key of any length; 32 bytes never fails.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(DOMAIN);
        mac.update(payload.as_bytes());
        mac
    }
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(***)")
    }
}

/// What a decision link says, once its signature holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    /// The link's id: the same for every email about this person, gate occurrence and verdict
    /// (a reminder carries the same link as the request), so it is used once across them all.
    pub id: String,
    /// The person it is for.
    pub person: String,
    /// The instance.
    pub instance: String,
    /// The gate.
    pub step: String,
    /// The gate's occurrence (a gate entered again is another one).
    pub activation: u32,
    /// The verdict it gives.
    pub verdict: Verdict,
    /// The view hash of what the email showed.
    pub shown: String,
    /// When the email was made.
    pub issued: Timestamp,
    /// When the link stops working: the gate's deadline, or a longest lifetime.
    pub expires: Timestamp,
}

impl LinkClaims {
    /// The id of the link for `person`'s `verdict` on occurrence `activation` of `step`.
    #[must_use]
    pub fn id_for(
        instance: &str,
        step: &str,
        activation: u32,
        person: &str,
        verdict: Verdict,
    ) -> String {
        let mut hasher = Sha256::new();
        let activation = activation.to_string();
        for part in [instance, step, &activation, person, verdict.as_str()] {
            // Each part with its length, so that ("ab", "c") and ("a", "bc") differ.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hex::encode(&hasher.finalize()[..16])
    }

    /// The signed token for these claims.
    #[must_use]
    pub fn sign(&self, key: &LinkKey) -> String {
        // Claims are strings and numbers: they always serialise.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let signature = URL_SAFE_NO_PAD.encode(key.mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }
}

/// Why a token is not a link of this deployment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Forged {
    /// Not even the shape of one.
    #[error("this is not a decision link (it was cut short, or altered)")]
    Malformed,
    /// The signature does not hold: made without the key, altered, or signed with a key that
    /// was replaced since.
    #[error(
        "this link's signature does not match: it was altered, or made with a key this server no longer uses"
    )]
    Signature,
}

/// The claims of `token`, if its signature holds under `key` (checked in constant time, before
/// anything in it is read).
///
/// # Errors
/// [`Forged`]: why it is not a link of this deployment.
pub fn verify(token: &str, key: &LinkKey) -> Result<LinkClaims, Forged> {
    let (payload, signature) = token.trim().split_once('.').ok_or(Forged::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Forged::Malformed)?;
    key.mac(payload)
        .verify_slice(&signature)
        .map_err(|_| Forged::Signature)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Forged::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| Forged::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> LinkKey {
        LinkKey::new([byte; KEY_LEN])
    }

    fn claims() -> LinkClaims {
        LinkClaims {
            id: LinkClaims::id_for("i-1", "review", 1, "bob", Verdict::Approve),
            person: "bob".to_owned(),
            instance: "i-1".to_owned(),
            step: "review".to_owned(),
            activation: 1,
            verdict: Verdict::Approve,
            shown: "abc".to_owned(),
            issued: Timestamp(10),
            expires: Timestamp(20),
        }
    }

    #[test]
    fn a_signed_link_verifies_and_reads_back_its_claims() {
        let token = claims().sign(&key(7));
        assert_eq!(verify(&token, &key(7)), Ok(claims()));
    }

    #[test]
    fn another_key_or_any_altered_letter_is_refused() {
        let token = claims().sign(&key(7));
        assert_eq!(verify(&token, &key(8)), Err(Forged::Signature));
        // Every position of the token altered: never accepted.
        for at in 0..token.len() {
            let mut altered = token.clone().into_bytes();
            altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            if altered == token {
                continue;
            }
            assert!(verify(&altered, &key(7)).is_err(), "accepted at {at}");
        }
        assert_eq!(verify("no-dot", &key(7)), Err(Forged::Malformed));
    }

    #[test]
    fn a_reject_link_cannot_be_made_from_an_approve_link() {
        let token = claims().sign(&key(7));
        let (_, signature) = token.split_once('.').unwrap();
        let mut reject = claims();
        reject.verdict = Verdict::Reject;
        let (payload, _) = reject
            .sign(&key(9))
            .split_once('.')
            .map(|(p, s)| (p.to_owned(), s.to_owned()))
            .unwrap();
        assert_eq!(
            verify(&format!("{payload}.{signature}"), &key(7)),
            Err(Forged::Signature)
        );
    }

    #[test]
    fn ids_differ_by_every_part_and_keys_read_back() {
        let base = LinkClaims::id_for("i", "s", 1, "p", Verdict::Approve);
        assert_ne!(base, LinkClaims::id_for("i", "s", 2, "p", Verdict::Approve));
        assert_ne!(base, LinkClaims::id_for("i", "s", 1, "p", Verdict::Reject));
        assert_ne!(base, LinkClaims::id_for("i", "s", 1, "q", Verdict::Approve));
        assert_eq!(base.len(), 32);
        let k = key(3);
        assert_eq!(LinkKey::from_hex(&format!("{}\n", k.to_hex())), Ok(k));
        assert!(
            LinkKey::from_hex("abcd")
                .unwrap_err()
                .contains("64 hex digits")
        );
        assert_eq!(format!("{:?}", key(3)), "LinkKey(***)");
    }
}
