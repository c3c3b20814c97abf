//! The email channel: each notification the outbox owes a person with an email address is one
//! message to them alone (a refused recipient never blocks the others), `multipart/alternative`
//! (plain text and HTML) with a `Message-ID` derived from the notification (the same on a
//! resend) and `In-Reply-To`/`References` naming the instance, so everything about one
//! instance is one thread in the recipient's mail client.
//!
//! Delivery goes through [`signoff_runtime::outbox`]: at least once, each outcome recorded in
//! `outbox/email`. An SMTP 5xx answer is permanent (recorded as failed, not retried); a 4xx,
//! a timeout (every send is bounded: lettre's own covers only connecting), a TLS failure or a
//! server away are retried with backoff.
//!
//! Start with [`Settings`], then [`EmailChannel`].

mod compose;
mod settings;
#[cfg(feature = "sink")]
pub mod sink;

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use signoff_core::directory::Person;
use signoff_core::link::LinkKey;
use signoff_runtime::outbox::{Channel, Delivery, Failure, Message};

pub use compose::{Templates, compose};
pub use settings::{Settings, SettingsError};

/// Sends the outbox's notifications by email.
pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
    timeout: Duration,
    link_key: Option<LinkKey>,
    templates: Templates,
}

impl EmailChannel {
    /// A channel for these settings (checked: see [`Settings::check`]).
    ///
    /// # Errors
    /// What is wrong with the settings.
    pub fn new(settings: &Settings) -> Result<Self, SettingsError> {
        let checked = settings.check()?;
        let templates = match &settings.templates {
            Some(dir) => Templates::with_overrides(dir).map_err(SettingsError::Templates)?,
            None => Templates::shipped(),
        };
        Ok(Self {
            transport: checked.transport,
            from: checked.from,
            public_url: checked.public_url,
            timeout: settings.timeout,
            link_key: settings.link_key.clone(),
            templates,
        })
    }
}

impl Channel for EmailChannel {
    fn name(&self) -> &'static str {
        "email"
    }

    fn address(&self, person: &Person) -> Option<String> {
        person.email.clone().filter(|e| !e.trim().is_empty())
    }

    fn deliver<'a>(&'a self, message: &'a Message) -> Delivery<'a> {
        Box::pin(async move {
            // A message that cannot be made (an address that is not one) never will be.
            let email = compose(
                &self.templates,
                message,
                &self.from,
                &self.public_url,
                self.link_key.as_ref(),
            )
            .map_err(Failure::permanent)?;
            match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
                Err(_) => Err(Failure::transient(format!(
                    "the SMTP server did not answer within {} s",
                    self.timeout.as_secs()
                ))),
                Ok(Ok(_)) => Ok(None),
                Ok(Err(e)) if e.is_permanent() => Err(Failure::permanent(smtp_error(&e))),
                Ok(Err(e)) => Err(Failure::transient(smtp_error(&e))),
            }
        })
    }
}

/// The SMTP error with its cause (lettre's own text stops at "permanent error (550)").
fn smtp_error(error: &lettre::transport::smtp::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
