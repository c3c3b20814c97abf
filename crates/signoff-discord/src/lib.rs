//! The Discord bot: approval requests as messages with Approve and Reject buttons, decisions
//! with a justification typed in a modal, and every message about a gate kept true after it
//! closes, whatever channel closed it.
//!
//! - [`DiscordChannel`] is the outbox's Discord channel: each notification owed to a person
//!   with a Discord id is a direct message to them ([`payload::card`]), delivered at least once
//!   with its outcome recorded in `outbox/discord`, with the message's ids (to edit it later).
//! - [`Bot`] is the gateway client (serenity): a press of a button reads the request again from
//!   signoff ([`signoff_runtime::chat`]) and opens the justification modal, or says,
//!   ephemerally, why the person may not decide; the modal's submit decides through the engine
//!   as the person the directory maps the Discord user to, and the message is drawn again.
//! - [`payload`] and [`interaction`] are the translation both ways, pure and unit-tested.
//!
//! Start with [`Settings`]. With `api_url` other than Discord's, REST calls go to that base
//! (a proxy that rate-limits for the bot, or the stand-in of the tests) and serenity's own rate
//! limiter is off (it would not use the base); the gateway address is whatever
//! `GET /api/v10/gateway` there answers.

pub mod bot;
pub mod cards;
mod channel;
pub mod commands;
pub mod forms;
pub mod interaction;
pub mod payload;
mod slash;
#[cfg(feature = "standin")]
pub mod standin;

use std::sync::Arc;

pub use bot::Bot;
pub use cards::Cards;
pub use channel::{DiscordChannel, Threads, parse_reference, reference};

/// Discord's own API address.
pub const DISCORD: &str = "https://discord.com";

/// How the bot reaches Discord.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The bot's token (Developer Portal → the application → Bot → Reset Token).
    pub token: String,
    /// Where REST calls go: Discord ([`DISCORD`]), or a proxy or stand-in.
    pub api_url: String,
    /// Register the slash commands in this guild only (at once), instead of globally.
    pub guild: Option<u64>,
    /// The server's public address, for links to instance pages.
    pub public_url: Option<String>,
}

/// What is wrong with the settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// No token.
    #[error(
        "the Discord bot needs its token: SIGNOFF_DISCORD_TOKEN (Developer Portal → your application → Bot)"
    )]
    NoToken,
    /// The API address is not one.
    #[error("SIGNOFF_DISCORD_API_URL {0:?} is not an http(s) address (e.g. https://discord.com)")]
    ApiUrl(String),
}

impl Settings {
    /// The settings checked.
    ///
    /// # Errors
    /// What is missing or malformed.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.token.trim().is_empty() {
            return Err(SettingsError::NoToken);
        }
        let url = self.api_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SettingsError::ApiUrl(self.api_url.clone()));
        }
        Ok(())
    }

    /// The REST client: straight to Discord with serenity's rate limiter, or to the configured
    /// base without it.
    ///
    /// # Errors
    /// What is wrong with the settings.
    pub fn http(&self) -> Result<Arc<serenity::http::Http>, SettingsError> {
        self.check()?;
        let url = self.api_url.trim().trim_end_matches('/');
        let mut builder = serenity::http::HttpBuilder::new(self.token.trim());
        if url != DISCORD {
            builder = builder.proxy(url).ratelimiter_disabled(true);
        }
        Ok(Arc::new(builder.build()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_say_what_is_missing() {
        let mut settings = Settings {
            token: " ".into(),
            api_url: DISCORD.into(),
            guild: None,
            public_url: None,
        };
        assert!(
            settings
                .check()
                .unwrap_err()
                .to_string()
                .contains("SIGNOFF_DISCORD_TOKEN")
        );
        settings.token = "abc".into();
        settings.api_url = "discord.com".into();
        assert!(
            settings
                .check()
                .unwrap_err()
                .to_string()
                .contains("\"discord.com\"")
        );
        settings.api_url = "http://127.0.0.1:9".into();
        let http = settings.http().unwrap();
        assert_eq!(http.proxy.as_deref(), Some("http://127.0.0.1:9"));
        assert!(http.ratelimiter.is_none());
        settings.api_url = DISCORD.into();
        let http = settings.http().unwrap();
        assert!(http.proxy.is_none());
        assert!(
            http.ratelimiter.is_some(),
            "429s are waited for with Discord itself"
        );
    }
}
