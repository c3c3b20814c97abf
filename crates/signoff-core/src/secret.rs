//! Secrets (API token secrets, database passwords, later SMTP passwords) as a type that cannot be
//! printed, logged or serialised by accident: `Debug` and `Display` show `***`, and there is no
//! `Serialize`. The one place that must show a secret (a token issued, shown once) asks for it by
//! name with [`Secret::expose`].

use std::fmt;

/// A value that must never reach a log, an error message or a JSON answer unasked.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the few places that must use it (hashing it, showing a new token
    /// once to the person who asked for it). The name makes every such place easy to find.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `url` with the password of its user information replaced by `***`
/// (`postgres://app:hunter2@db/signoff` → `postgres://app:***@db/signoff`), for every place a
/// database or mail server address is printed or logged. Anything else is kept as it is.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL (a keyword DSN, `host=db password=…`, or a typo): still no password shown.
        return redact_password_parameter(url.to_owned(), &[' ', '&', '#']);
    };
    // The authority ends at the first '/', '?' or '#'; user information ends at its last '@'.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let shown = match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = match user_info.split_once(':') {
                Some((user, _password)) => format!("{user}:***"),
                None => user_info.to_owned(),
            };
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_owned(),
    };
    // A password may also come as a query parameter (`?password=…`).
    redact_password_parameter(shown, &['&', '#'])
}

/// `text` with the value of every `password=` replaced by `***`, a value ending at any of `ends`.
fn redact_password_parameter(mut text: String, ends: &[char]) -> String {
    let mut from = 0;
    while let Some(at) = text[from..].find("password=") {
        let value_start = from + at + "password=".len();
        let value_end = text[value_start..]
            .find(ends)
            .map_or(text.len(), |i| value_start + i);
        text.replace_range(value_start..value_end, "***");
        from = value_start + 3;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyword_dsn_shows_no_password() {
        assert_eq!(
            redact_url("host=db password=hunter2 user=signoff"),
            "host=db password=*** user=signoff"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?password=a&sslmode=require&password=b"),
            "postgres://u@h/db?password=***&sslmode=require&password=***"
        );
    }

    #[test]
    fn a_secret_never_shows_in_debug_or_display() {
        let secret = Secret::new("signoff_0123456789abcdef");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(***))");
        assert_eq!(secret.expose(), "signoff_0123456789abcdef");
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db.internal:5432/signoff"),
            "postgres://app:***@db.internal:5432/signoff"
        );
        assert_eq!(
            redact_url("postgres://app:p%40ss@word@db/x?sslmode=require"),
            "postgres://app:***@db/x?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db/x?user=app&password=hunter2&sslmode=require"),
            "postgres://db/x?user=app&password=***&sslmode=require"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact_url("sqlite://signoff.db"), "sqlite://signoff.db");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
