//! One fresh log per test: a temporary SQLite file, or a new PostgreSQL schema.

use std::str::FromStr;
use std::sync::Arc;

use signoff_core::{EventData, EventId, EventType, EventTypes, Metadata, NewEvent};
use signoff_store::{EventLog, OpenOptions, PgLog, SqliteLog};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

pub const TYPE: &str = "test.happened";
/// A second type, for reading by type.
pub const OTHER_TYPE: &str = "test.other";

/// A type [`signoff_store::EventLog::read_type`] finds through an index.
pub const INDEXED_TYPE: &str = signoff_store::TYPES_INDEXED[1];

pub fn types() -> EventTypes {
    EventTypes::new()
        .with(TYPE, 2)
        .with(OTHER_TYPE, 1)
        .with(INDEXED_TYPE, 1)
}

/// `n` events whose data is `{"n":<i>}`.
pub fn events(n: usize) -> Vec<NewEvent> {
    (0..n).map(|i| event(&format!("{{\"n\":{i}}}"))).collect()
}

pub fn event(data: &str) -> NewEvent {
    NewEvent {
        id: EventId(uuid::Uuid::now_v7()),
        ty: EventType::parse(TYPE).expect("valid type"),
        schema_version: 1,
        data: EventData::from_json_text(data).expect("valid JSON"),
        metadata: Metadata::new("alice", "cli"),
    }
}

enum Place {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
}

pub struct TestLog {
    pub log: Arc<dyn EventLog>,
    place: Place,
}

impl TestLog {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = SqliteLog::open(&dir.path().join("log.db"), OpenOptions::new(types()))
            .await
            .expect("open sqlite");
        Self {
            log: Arc::new(log),
            place: Place::Sqlite(dir),
        }
    }

    /// `None` (and a note on stderr) when `SIGNOFF_TEST_DATABASE_URL` is not set.
    pub async fn postgres() -> Option<Self> {
        let Ok(admin_url) = std::env::var("SIGNOFF_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set SIGNOFF_TEST_DATABASE_URL"
            );
            eprintln!("SKIPPED: SIGNOFF_TEST_DATABASE_URL is not set, PostgreSQL case not run");
            return None;
        };
        let schema = format!("signoff_test_{}", uuid::Uuid::now_v7().simple());
        let log = PgLog::connect_in_schema(&admin_url, &schema, OpenOptions::new(types()))
            .await
            .expect("connect to SIGNOFF_TEST_DATABASE_URL");
        Some(Self {
            log: Arc::new(log),
            place: Place::Postgres { admin_url, schema },
        })
    }

    /// A second, independent log on the same database: its own writer task and connections,
    /// as a second process would have.
    /// The PostgreSQL schema the log lives in (`None` for SQLite).
    pub fn schema(&self) -> Option<&str> {
        match &self.place {
            Place::Postgres { schema, .. } => Some(schema),
            Place::Sqlite(_) => None,
        }
    }

    pub async fn open_again(&self) -> Arc<dyn EventLog> {
        self.place.open_again().await
    }

    /// Runs raw SQL against the database, bypassing the log (for tamper tests).
    pub async fn raw(&self, sql: &str) -> Result<u64, String> {
        match &self.place {
            Place::Sqlite(dir) => {
                let mut conn = sqlx::SqliteConnection::connect(&format!(
                    "sqlite://{}",
                    dir.path().join("log.db").display()
                ))
                .await
                .map_err(|e| e.to_string())?;
                conn.execute(sqlx::AssertSqlSafe(sql.to_owned()))
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| e.to_string())
            }
            Place::Postgres { .. } => {
                let mut conn = self.place.pg_connection().await;
                conn.execute(sqlx::AssertSqlSafe(sql.to_owned()))
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Removes the triggers that protect the events table, as an attacker with database rights could.
    pub async fn drop_protection(&self) {
        let sql = match &self.place {
            Place::Sqlite(_) => {
                "DROP TRIGGER events_refuse_update; DROP TRIGGER events_refuse_delete;"
            }
            Place::Postgres { .. } => "DROP TRIGGER events_refuse_update_delete ON events;",
        };
        self.raw(sql).await.expect("drop triggers");
    }

    pub async fn cleanup(self) {
        drop(self.log);
        if let Place::Postgres { admin_url, schema } = &self.place {
            PgLog::drop_schema(admin_url, schema)
                .await
                .expect("drop schema");
        }
    }
}

impl Place {
    async fn pg_connection(&self) -> PgConnection {
        let Place::Postgres { admin_url, schema } = self else {
            unreachable!("postgres only")
        };
        let options = PgConnectOptions::from_str(admin_url)
            .expect("valid URL")
            .options([("search_path", schema.as_str())]);
        PgConnection::connect_with(&options).await.expect("connect")
    }

    async fn open_again(&self) -> Arc<dyn EventLog> {
        match self {
            Place::Sqlite(dir) => Arc::new(
                SqliteLog::open(&dir.path().join("log.db"), OpenOptions::new(types()))
                    .await
                    .expect("open"),
            ),
            Place::Postgres { admin_url, schema } => Arc::new(
                PgLog::connect_in_schema(admin_url, schema, OpenOptions::new(types()))
                    .await
                    .expect("connect"),
            ),
        }
    }
}
