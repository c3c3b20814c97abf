//! Opening a log by URL: what every command's `--database` flag goes through.

use std::path::PathBuf;
use std::sync::Arc;

use signoff_core::EventTypes;

use crate::error::StoreError;
use crate::log::EventLog;
use crate::postgres::PgLog;
use crate::sqlite::SqliteLog;
use crate::writer::{Clock, SystemClock};

/// A parsed `--database` value.
#[derive(Clone, Debug, PartialEq, Eq)]
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
            _ => Err(StoreError::UnsupportedUrl(url.to_owned())),
        }
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
}
