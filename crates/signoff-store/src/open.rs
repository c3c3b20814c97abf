//! Opening a log by URL: what every command's `--database` flag goes through.

use std::path::PathBuf;
use std::sync::Arc;

use signoff_core::{EventTypes, redact_url};

use crate::error::StoreError;
use crate::log::EventLog;
use crate::postgres::PgLog;
use crate::sqlite::SqliteLog;
use crate::writer::{Clock, SystemClock};

/// A parsed `--database` value. `Debug` and `Display` show it with its password replaced by
/// `***`: it is printed at startup and may reach a log or an error message.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` (or `sqlite:PATH`): a file, created on first use.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses a database URL.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] for anything but SQLite and PostgreSQL URLs.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"));
        match path {
            Some(p) if !p.is_empty() => Ok(Self::Sqlite(PathBuf::from(
                p.split('?').next().unwrap_or(p),
            ))),
            _ => Err(StoreError::UnsupportedUrl(redact_url(url))),
        }
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// How to open a log.
#[derive(Clone)]
pub struct OpenOptions {
    /// Create the database (SQLite file) when it does not exist.
    pub create_if_missing: bool,
    /// Which event types the log accepts.
    pub types: EventTypes,
    /// Where recorded time comes from.
    pub clock: Arc<dyn Clock>,
}

impl OpenOptions {
    /// Options accepting `types`, creating the database if needed, with the system clock.
    #[must_use]
    pub fn new(types: EventTypes) -> Self {
        Self {
            create_if_missing: true,
            types,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Opens the log at `url` with the backend the URL names.
///
/// # Errors
/// See [`SqliteLog::open`] and [`PgLog::connect`].
pub async fn open(
    url: &DatabaseUrl,
    options: OpenOptions,
) -> Result<Arc<dyn EventLog>, StoreError> {
    Ok(match url {
        DatabaseUrl::Sqlite(path) => Arc::new(SqliteLog::open(path, options).await?),
        DatabaseUrl::Postgres(url) => Arc::new(PgLog::connect(url, options).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://signoff.db").ok(),
            Some(DatabaseUrl::Sqlite("signoff.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:/tmp/x.db").ok(),
            Some(DatabaseUrl::Sqlite("/tmp/x.db".into()))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("mysql://x"),
            Err(StoreError::UnsupportedUrl(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("sqlite://"),
            Err(StoreError::UnsupportedUrl(_))
        ));
    }

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        let url = DatabaseUrl::parse("postgres://app:hunter2@db.internal/signoff").unwrap();
        assert_eq!(url.to_string(), "postgres://app:***@db.internal/signoff");
        assert!(!format!("{url:?}").contains("hunter2"), "{url:?}");
        let refused = DatabaseUrl::parse("mysql://app:hunter2@db/x").unwrap_err();
        assert!(!refused.to_string().contains("hunter2"), "{refused}");
    }
}
