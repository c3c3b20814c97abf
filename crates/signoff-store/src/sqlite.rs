//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL`, so every
//! acknowledged append survives a power loss.
//!
//! Appends are serialised by `BEGIN IMMEDIATE` (SQLite's one write lock), which also holds across
//! processes sharing the file; within a process they are batched by the [`Writer`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use signoff_core::{EventType, Hash, IdempotencyKey, RecordedEvent, StreamId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::log::{AppendRequest, Appended, EventLog, Tail};
use crate::open::OpenOptions;
use crate::plan::{KeyRecord, plan_group};
use crate::row::{
    EVENT_COLUMN_COUNT, EventRow, db_int, db_limit, event_columns, from_db_int, into_events,
};
use crate::writer::{GroupCommit, Writer};

/// Rows per multi-row INSERT statement (each distinct size is one cached prepared statement).
const ROWS_PER_INSERT: usize = 64;

/// The event log in one SQLite file.
pub struct SqliteLog {
    path: PathBuf,
    writer: Writer,
    readers: SqlitePool,
    committed: Arc<watch::Sender<u64>>,
}

impl SqliteLog {
    /// Opens (or, if allowed, creates) the log at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the file is missing and may not be created, or a database
    /// or migration error.
    pub async fn open(path: &Path, options: OpenOptions) -> Result<Self, StoreError> {
        if !options.create_if_missing && !path.exists() {
            return Err(StoreError::NotFound(path.display().to_string()));
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(options.create_if_missing)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .statement_cache_capacity(2 * ROWS_PER_INSERT + 32)
            // Readers map the file instead of copying pages through their own caches: a reader's
            // page cache is reset whenever another connection commits, and with group commit
            // that is hundreds of times a second.
            .pragma("mmap_size", "1073741824");
        // The writer keeps a large cache: the index pages it updates stay hot between commits.
        let mut writer_conn =
            SqliteConnection::connect_with(&connect.clone().pragma("cache_size", "-65536")).await?;
        sqlx::migrate!("../../migrations/sqlite")
            .run(&mut writer_conn)
            .await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .connect_with(connect)
            .await?;
        let head: i64 = sqlx::query_scalar("SELECT sequence FROM log_head WHERE id = 1")
            .fetch_one(&mut writer_conn)
            .await?;
        let committed = Arc::new(watch::channel(from_db_int(head)).0);
        let writer = Writer::spawn(
            SqliteWriter { conn: writer_conn },
            Arc::new(options.types),
            options.clock,
            committed.clone(),
        );
        Ok(Self {
            path: path.to_owned(),
            writer,
            readers,
            committed,
        })
    }

    /// The file this log lives in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A pool on the same file, for tests and tools that need raw SQL (e.g. tamper tests).
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.readers
    }
}

#[async_trait]
impl EventLog for SqliteLog {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        self.writer.append(request).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE stream = ?1 AND version >= ?2 ORDER BY version LIMIT ?3"
        ))
        .bind(stream.as_str())
        .bind(db_int(from_version))
        .bind(db_limit(limit))
        .fetch_all(&self.readers)
        .await?;
        into_events(rows)
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE sequence > ?1 ORDER BY sequence LIMIT ?2"
        ))
        .bind(db_int(after))
        .bind(db_limit(limit))
        .fetch_all(&self.readers)
        .await?;
        into_events(rows)
    }

    async fn read_type(
        &self,
        ty: &EventType,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE type = ?1 AND sequence > ?2 ORDER BY sequence LIMIT ?3"
        ))
        .bind(ty.as_str())
        .bind(db_int(after))
        .bind(db_limit(limit))
        .fetch_all(&self.readers)
        .await?;
        into_events(rows)
    }

    async fn idempotent_result(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<Appended>, StoreError> {
        let row: Option<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT key, stream, first_sequence, last_sequence, last_version FROM idempotency_keys \
             WHERE key = ?1",
        )
        .bind(key.as_str())
        .fetch_optional(&self.readers)
        .await?;
        Ok(row.map(|row| KeyRecord::from_row(row).1.appended()))
    }

    async fn tail(&self) -> Result<Tail, StoreError> {
        let (sequence, hash, time): (i64, Vec<u8>, i64) =
            sqlx::query_as("SELECT sequence, hash, recorded_at FROM log_head WHERE id = 1")
                .fetch_one(&self.readers)
                .await?;
        tail_from_row(sequence, &hash, time)
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }
}

pub(crate) fn tail_from_row(sequence: i64, hash: &[u8], time: i64) -> Result<Tail, StoreError> {
    let hash = Hash::from_slice(hash).map_err(|reason| StoreError::Corrupt { sequence, reason })?;
    Ok(Tail {
        sequence: from_db_int(sequence),
        hash,
        time,
    })
}

struct SqliteWriter {
    conn: SqliteConnection,
}

/// `INSERT INTO <table> (<columns>) VALUES (?, …), …` for 1..=`ROWS_PER_INSERT` rows, built once.
fn insert_sql(
    cache: &'static OnceLock<Vec<String>>,
    head: &str,
    columns: usize,
    rows: usize,
) -> &'static str {
    let all = cache.get_or_init(|| {
        let row = format!("({})", vec!["?"; columns].join(", "));
        (0..=ROWS_PER_INSERT)
            .map(|n| format!("{head} VALUES {}", vec![row.as_str(); n].join(", ")))
            .collect()
    });
    all[rows].as_str()
}

static INSERT_EVENTS: OnceLock<Vec<String>> = OnceLock::new();
static INSERT_KEYS: OnceLock<Vec<String>> = OnceLock::new();

#[async_trait]
impl GroupCommit for SqliteWriter {
    async fn commit_group(
        &mut self,
        requests: &mut [AppendRequest],
        now: i64,
    ) -> Result<(Vec<Result<Appended, StoreError>>, Tail), StoreError> {
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;
        let (seq, hash, time): (i64, Vec<u8>, i64) =
            sqlx::query_as("SELECT sequence, hash, recorded_at FROM log_head WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let tail = tail_from_row(seq, &hash, time)?;

        let streams: Vec<&str> = requests.iter().map(|r| r.stream.as_str()).collect();
        let heads: HashMap<String, u64> = sqlx::query_as::<_, (String, i64)>(
            "SELECT stream, MAX(version) FROM events WHERE stream IN (SELECT value FROM json_each(?1)) GROUP BY stream",
        )
        .bind(serde_json::to_string(&streams).unwrap_or_default())
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(s, v)| (s, from_db_int(v)))
        .collect();

        let keys: Vec<&str> = requests
            .iter()
            .filter_map(|r| r.idempotency_key.as_ref().map(|k| k.as_str()))
            .collect();
        let mut known = HashMap::new();
        if !keys.is_empty() {
            let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
                "SELECT key, stream, first_sequence, last_sequence, last_version FROM idempotency_keys \
                 WHERE key IN (SELECT value FROM json_each(?1))",
            )
            .bind(serde_json::to_string(&keys).unwrap_or_default())
            .fetch_all(&mut *tx)
            .await?;
            known.extend(rows.into_iter().map(KeyRecord::from_row));
        }

        let plan = plan_group(tail, &heads, &known, requests, now);
        for chunk in plan.rows.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(
                &INSERT_EVENTS,
                concat!("INSERT INTO events (", event_columns!(), ")"),
                EVENT_COLUMN_COUNT,
                chunk.len(),
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                query = query
                    .bind(db_int(e.sequence))
                    .bind(e.stream.as_str())
                    .bind(db_int(e.version))
                    .bind(e.id.to_string())
                    .bind(e.ty.as_str())
                    .bind(i64::from(e.schema_version))
                    .bind(e.time.0)
                    .bind(e.metadata.actor.as_str())
                    .bind(e.metadata.channel.as_str())
                    .bind(e.metadata.correlation_id.as_deref())
                    .bind(e.metadata.causation_id.as_deref())
                    .bind(e.data.as_str())
                    .bind(e.prev_hash.0.as_slice())
                    .bind(e.hash.0.as_slice());
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in plan.keys.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(
                &INSERT_KEYS,
                "INSERT INTO idempotency_keys (key, stream, first_sequence, last_sequence, last_version)",
                5,
                chunk.len(),
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for k in chunk {
                query = query
                    .bind(k.key.as_str())
                    .bind(k.stream.as_str())
                    .bind(db_int(k.first_sequence))
                    .bind(db_int(k.last_sequence))
                    .bind(db_int(k.last_version));
            }
            query.execute(&mut *tx).await?;
        }
        if !plan.rows.is_empty() {
            sqlx::query(
                "UPDATE log_head SET sequence = ?1, hash = ?2, recorded_at = ?3 WHERE id = 1",
            )
            .bind(db_int(plan.tail.sequence))
            .bind(plan.tail.hash.0.as_slice())
            .bind(plan.tail.time)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((plan.outcomes, plan.tail))
    }
}
