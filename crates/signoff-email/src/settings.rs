//! How signoff reaches its SMTP server: `SIGNOFF_SMTP_URL` (lettre's forms: `smtps://HOST`
//! for TLS on port 465, `smtp://HOST:587?tls=required` for STARTTLS, `smtp://HOST:PORT` in
//! clear, taken only for a loopback relay), `SIGNOFF_SMTP_USER`/`SIGNOFF_SMTP_PASSWORD`,
//! `SIGNOFF_EMAIL_FROM` and `SIGNOFF_PUBLIC_URL` (the base of links in emails).

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

/// The email settings. No `Debug`: the password must never be printed.
#[derive(Clone)]
pub struct Settings {
    /// The SMTP server: `smtps://HOST[:PORT]`, `smtp://HOST[:PORT]?tls=required`, or plain
    /// `smtp://HOST:PORT` to a loopback address.
    pub url: String,
    /// Who signs in to it, if it asks.
    pub user: Option<String>,
    /// Their password.
    pub password: Option<String>,
    /// Who the messages come from: `signoff <signoff@example.com>`.
    pub from: String,
    /// Where people reach signoff's pages: `https://signoff.example.com` (links in emails).
    pub public_url: String,
    /// How long one message may take to send, connection included.
    pub timeout: Duration,
    /// The key decision links are signed with; without one, emails carry no Approve and
    /// Reject links (people decide on the page).
    pub link_key: Option<signoff_core::link::LinkKey>,
    /// A folder of template overrides (`WORKFLOW.txt`, `WORKFLOW/STEP.html`…; see
    /// [`crate::Templates`]); none: the shipped templates.
    pub templates: Option<std::path::PathBuf>,
}

/// What is wrong with the settings, said for the operator who set them.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The URL cannot be used.
    #[error("SIGNOFF_SMTP_URL: {0}")]
    Url(String),
    /// The sender is not an address.
    #[error(
        "SIGNOFF_EMAIL_FROM {0:?} is not an address (e.g. \"signoff <signoff@example.com>\"): {1}"
    )]
    From(String, String),
    /// The public URL is not one.
    #[error(
        "SIGNOFF_PUBLIC_URL {0:?} must be the http(s):// address people open signoff at \
         (links in emails start with it)"
    )]
    PublicUrl(String),
    /// A template override cannot be read or does not parse.
    #[error("email templates: {0}")]
    Templates(String),
    /// A user without a password, or the reverse.
    #[error("SIGNOFF_SMTP_USER and SIGNOFF_SMTP_PASSWORD go together: set both or neither")]
    Credentials,
}

pub(crate) struct Checked {
    pub transport: AsyncSmtpTransport<Tokio1Executor>,
    pub from: Mailbox,
    pub public_url: String,
}

impl Settings {
    /// Checks the settings and makes the transport they describe.
    ///
    /// # Errors
    /// A URL lettre does not read, plain SMTP to a host that is not loopback (the password and
    /// every message would cross the network in clear), a sender that is not an address, a
    /// public URL that is not http(s), a user without a password.
    pub(crate) fn check(&self) -> Result<Checked, SettingsError> {
        let url = self.url.trim();
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            SettingsError::Url(format!(
                "{url:?} is not a URL such as smtps://mail.example.com"
            ))
        })?;
        let tls_required = rest.contains("tls=required");
        match scheme {
            "smtps" => {}
            "smtp" if tls_required => {}
            "smtp" => {
                let host = host_of(rest);
                if !is_loopback(&host) {
                    return Err(SettingsError::Url(format!(
                        "plain smtp:// to {host:?} would send passwords and messages in clear; \
                         use smtps://{host} (TLS, port 465) or smtp://{host}:587?tls=required \
                         (STARTTLS), or relay through a server on this machine"
                    )));
                }
            }
            other => {
                return Err(SettingsError::Url(format!(
                    "the scheme {other:?} is not smtp or smtps"
                )));
            }
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| SettingsError::Url(format!("{e}")))?
            .timeout(Some(self.timeout))
            // A connection per message in flight: lettre writes a message's body and its end
            // separately, so each one waits out the server's delayed ACK (about 40 ms); only
            // several connections at once make a burst go out quickly.
            .pool_config(
                lettre::transport::smtp::PoolConfig::new()
                    .max_size(u32::try_from(signoff_runtime::outbox::PARALLEL).unwrap_or(8)),
            );
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => return Err(SettingsError::Credentials),
        }
        let from: Mailbox = self
            .from
            .parse()
            .map_err(|e| SettingsError::From(self.from.clone(), format!("{e}")))?;
        let public_url = self.public_url.trim().trim_end_matches('/').to_owned();
        if !(public_url.starts_with("https://") || public_url.starts_with("http://"))
            || public_url.len() <= "https://".len()
        {
            return Err(SettingsError::PublicUrl(self.public_url.clone()));
        }
        Ok(Checked {
            transport: builder.build(),
            from,
            public_url,
        })
    }
}

/// The host of `user:password@host:port/path?query`.
fn host_of(rest: &str) -> String {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(inner) = host_port.strip_prefix('[') {
        return inner.split(']').next().unwrap_or_default().to_owned();
    }
    host_port.split(':').next().unwrap_or_default().to_owned()
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Settings {
        Settings {
            url: url.to_owned(),
            user: None,
            password: None,
            from: "signoff <signoff@example.com>".to_owned(),
            public_url: "https://signoff.example.com/".to_owned(),
            timeout: Duration::from_secs(10),
            link_key: None,
            templates: None,
        }
    }

    // The transport's pool is dropped on a Tokio runtime.
    #[tokio::test]
    async fn plain_smtp_is_taken_only_to_a_loopback_relay() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://localhost:25",
            "smtp://[::1]:2525",
        ] {
            assert!(settings(url).check().is_ok(), "{url}");
        }
        for url in [
            "smtps://mail.example.com",
            "smtp://mail.example.com:587?tls=required",
        ] {
            assert!(settings(url).check().is_ok(), "{url}");
        }
        let Err(e) = settings("smtp://user:pw@mail.example.com:25").check() else {
            panic!("plain smtp to a remote host was taken")
        };
        let said = e.to_string();
        assert!(
            said.contains("in clear") && said.contains("smtps://mail.example.com"),
            "{said}"
        );
        assert!(!said.contains("pw"), "the password is never said: {said}");
    }

    #[tokio::test]
    async fn a_bad_sender_public_url_or_half_credentials_are_refused() {
        let mut s = settings("smtps://mail.example.com");
        s.from = "not an address".to_owned();
        assert!(matches!(s.check(), Err(SettingsError::From(..))));
        let mut s = settings("smtps://mail.example.com");
        s.public_url = "signoff.example.com".to_owned();
        assert!(matches!(s.check(), Err(SettingsError::PublicUrl(..))));
        let mut s = settings("smtps://mail.example.com");
        s.user = Some("signoff".to_owned());
        assert!(matches!(s.check(), Err(SettingsError::Credentials)));
        let Ok(checked) = settings("smtps://mail.example.com").check() else {
            panic!()
        };
        assert_eq!(checked.public_url, "https://signoff.example.com");
    }
}
