//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL`, so every
//! acknowledged append survives a power loss.
//!
//! Appends are serialised by `BEGIN IMMEDIATE` (SQLite's one write lock), which also holds across
//! processes sharing the file; within a process they are batched by the [`Writer`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::OptionalExtension;
use signoff_core::{EventType, Hash, IdempotencyKey, RecordedEvent, StreamId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, SqliteConnection};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::log::{
    AppendRequest, Appended, EventLog, FORGET_BATCH, OnCommit, Tail, forget_batch, prefix_bound,
    read_type_sql,
};
use crate::models::{ModelQuery, ModelRow, ModelWrite, ModelWritten};
use crate::open::OpenOptions;
use crate::plan::{KEY_COLUMNS, KeyRecord, KeyRow, plan_group};
use crate::recent::Recent;
use crate::row::{EventRow, db_int, db_limit, event_columns, from_db_int, into_events};
use crate::writer::{BlockingGroupCommit, Writer};

/// How long a connection waits for a lock another one holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of the file connections map instead of reading through their page caches.
const MMAP_SIZE: i64 = 1 << 30;

/// The event log in one SQLite file.
pub struct SqliteLog {
    path: PathBuf,
    writer: Writer,
    readers: SqlitePool,
    committed: Arc<watch::Sender<u64>>,
    recent: Arc<Recent>,
    models: Models,
}

/// The read models' file beside the log (`<log>-models`): its own write lock, so that writing
/// rows never holds up the log's appends, nor waits for them.
struct Models {
    readers: SqlitePool,
    /// Taken at close, so that the file is left without its WAL.
    writer: Arc<std::sync::Mutex<Option<rusqlite::Connection>>>,
}

impl Models {
    /// The models' file of the log at `log`, created if missing, and forgotten (emptied) when
    /// its checkpoints name events the log does not hold: it was written from another log.
    async fn open(log: &Path, events: &SqlitePool) -> Result<Self, StoreError> {
        let mut path = log.as_os_str().to_owned();
        path.push("-models");
        let path = PathBuf::from(path);
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Rows can always be made again from the log: a power cut may lose the last write,
            // never leave a torn one.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let readers = SqlitePoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .connect_with(connect)
            .await?;
        sqlx::migrate!("../../migrations/sqlite-models")
            .run(&readers)
            .await?;
        let checkpoints: Vec<(String, i64, Option<String>)> =
            sqlx::query_as("SELECT name, position, event FROM read_model_checkpoints")
                .fetch_all(&readers)
                .await?;
        for (name, position, event) in checkpoints {
            let held: Option<String> =
                sqlx::query_scalar("SELECT id FROM events WHERE sequence = ?1")
                    .bind(position)
                    .fetch_optional(events)
                    .await?;
            if position > 0 && held != event {
                tracing::warn!(
                    file = %path.display(),
                    checkpoint = %name,
                    position,
                    "the read models were written from another log (the log is new, or restored \
                     from a backup); they are forgotten and made again from this one"
                );
                let mut tx = readers.begin().await?;
                sqlx::query("DELETE FROM read_models")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM read_model_checkpoints")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                break;
            }
        }
        let writer = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        writer.busy_timeout(BUSY_TIMEOUT)?;
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        // Pages read through the map rather than copied into a cache that a second of
        // approvals (thousands of rows) overflows; and the WAL copied back every 8,000 pages
        // rather than 1,000: at that rate every write ended in a checkpoint, and a row
        // rewritten twice between two of them is copied once.
        writer.pragma_update(None, "mmap_size", MMAP_SIZE)?;
        writer.pragma_update(None, "wal_autocheckpoint", 8_000)?;
        Ok(Self {
            readers,
            writer: Arc::new(std::sync::Mutex::new(Some(writer))),
        })
    }
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
            .busy_timeout(BUSY_TIMEOUT)
            .statement_cache_capacity(32)
            // Readers map the file instead of copying pages through their own caches: a reader's
            // page cache is reset whenever another connection commits, and with group commit
            // that is hundreds of times a second.
            .pragma("mmap_size", MMAP_SIZE.to_string());
        let mut migrator = SqliteConnection::connect_with(&connect).await?;
        sqlx::migrate!("../../migrations/sqlite")
            .run(&mut migrator)
            .await?;
        let head: i64 = sqlx::query_scalar("SELECT sequence FROM log_head WHERE id = 1")
            .fetch_one(&mut migrator)
            .await?;
        migrator.close().await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .connect_with(connect)
            .await?;
        let models = Models::open(path, &readers).await?;
        let committed = Arc::new(watch::channel(from_db_int(head)).0);
        let recent = Arc::new(Recent::default());
        let writer = Writer::spawn_thread(
            SqliteWriter::open(path, recent.clone())?,
            Arc::new(options.types),
            options.clock,
            committed.clone(),
        )?;
        Ok(Self {
            path: path.to_owned(),
            writer,
            readers,
            committed,
            recent,
            models,
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

    /// A pool on the read models' file, for tests and tools.
    #[must_use]
    pub fn models_pool(&self) -> &SqlitePool {
        &self.models.readers
    }
}

#[async_trait]
impl EventLog for SqliteLog {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn append(&self, request: AppendRequest) -> Result<Appended, StoreError> {
        self.writer.append(request, None).await
    }

    async fn append_then(
        &self,
        request: AppendRequest,
        on_commit: OnCommit,
    ) -> Result<Appended, StoreError> {
        self.writer.append(request, Some(on_commit)).await
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

    async fn read_recent(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match self.recent.read(after, limit) {
            Some(events) => Ok(events),
            None => self.read_all(after, limit).await,
        }
    }

    async fn read_type(
        &self,
        ty: &EventType,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // Built from constants only: the type itself is bound.
        let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(read_type_sql(ty, '?')))
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
    ) -> Result<Option<KeyRecord>, StoreError> {
        let row: Option<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE key = ?1"
        )))
        .bind(key.as_str())
        .fetch_optional(&self.readers)
        .await?;
        Ok(row.map(|row| KeyRecord::from_row(row).1))
    }

    async fn forget_idempotency_keys(
        &self,
        prefix: &str,
        recorded_before: i64,
    ) -> Result<u64, StoreError> {
        let bound = prefix_bound(prefix);
        let mut forgotten = 0;
        // In small batches, each its own short transaction, so the log's writer is never held
        // up for long by a day's worth of keys.
        loop {
            let done = sqlx::query(concat!(
                "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys \
                 WHERE key >= ?1 AND (?2 IS NULL OR key < ?2) AND recorded_at < ?3 LIMIT ",
                forget_batch!(),
                ")"
            ))
            .bind(prefix)
            .bind(bound.as_deref())
            .bind(recorded_before)
            .execute(&self.readers)
            .await?;
            forgotten += done.rows_affected();
            if done.rows_affected() < FORGET_BATCH {
                return Ok(forgotten);
            }
            tokio::task::yield_now().await;
        }
    }

    async fn write_models(&self, write: ModelWrite) -> Result<ModelWritten, StoreError> {
        // The checkpoint names the event it stands at, so that a log it was not written from
        // is told apart when the file is opened.
        let event: Option<String> = sqlx::query_scalar("SELECT id FROM events WHERE sequence = ?1")
            .bind(crate::row::db_int(write.position))
            .fetch_optional(&self.readers)
            .await?;
        let writer = self.models.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let conn = conn.as_mut().ok_or(StoreError::Closed)?;
            crate::models::sqlite_write(conn, write, event.as_deref())
        })
        .await
        .map_err(|e| StoreError::InvalidBatch(format!("the read models' writer stopped: {e}")))?
    }

    async fn model_checkpoint(&self, group: &str) -> Result<u64, StoreError> {
        crate::models::sqlite::checkpoint(&self.models.readers, group).await
    }

    async fn reset_models(&self, group: &str, models: &[&str]) -> Result<(), StoreError> {
        crate::models::sqlite::reset(&self.models.readers, group, models).await
    }

    async fn model_row(&self, model: &str, key: &str) -> Result<Option<ModelRow>, StoreError> {
        crate::models::sqlite::row(&self.models.readers, model, key).await
    }

    async fn model_rows(&self, query: ModelQuery<'_>) -> Result<Vec<ModelRow>, StoreError> {
        crate::models::sqlite::rows(&self.models.readers, query).await
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

    async fn close(&self) {
        self.writer.close().await;
        self.models.readers.close().await;
        let writer = self.models.writer.clone();
        let _ = tokio::task::spawn_blocking(move || {
            writer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        })
        .await;
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

/// The writer's own connection, used only on the writer's thread (see [`crate::writer`]).
struct SqliteWriter {
    conn: rusqlite::Connection,
    /// Events committed since the checkpointer was last woken.
    since_checkpoint: usize,
    /// Events committed since the WAL last started over.
    since_restart: usize,
    /// Wakes the checkpointer (a full channel means it is already awake).
    checkpoint: std::sync::mpsc::SyncSender<()>,
    /// Where each group's rows go once committed.
    recent: Arc<Recent>,
}

/// Events committed between two checkpoints (a few MiB of WAL, near SQLite's default of 1,000
/// pages).
const CHECKPOINT_EVERY_EVENTS: usize = 2_000;

/// Events committed between two attempts to start the WAL over from its beginning.
const RESTART_EVERY_EVENTS: usize = 8 * CHECKPOINT_EVERY_EVENTS;

/// Events committed before an attempt that found the WAL busy is made again.
const RETRY_RESTART_AFTER_EVENTS: usize = 500;

/// Opens a connection to the log's file as the writer and the checkpointer use it.
fn connect_blocking(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Pages are read through the map, as the readers read them, and the page cache stays at
    // SQLite's default size: every commit ends by walking the cache's hash table, and with a
    // 64 MiB cache that walk took 7% of the CPU of `bench workflows` (and 70 MiB of RSS).
    conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
    Ok(conn)
}

impl SqliteWriter {
    /// The writer's connection, and a thread of its own that copies the WAL back into the
    /// database file. SQLite would otherwise checkpoint inside a commit every 1,000 pages: the
    /// writer stalled 5-25 ms each time, and every appender with it (a fifth of the writer's
    /// time in `bench workflows`). A passive checkpoint runs beside the writer without blocking it.
    fn open(path: &Path, recent: Arc<Recent>) -> Result<Self, StoreError> {
        let conn = connect_blocking(path)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.set_prepared_statement_cache_capacity(16);
        let checkpointer = connect_blocking(path)?;
        let (checkpoint, wake) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("signoff-checkpoint".to_owned())
            .spawn(move || {
                // Ends when the writer, and with it the sending side, is dropped.
                for () in wake {
                    let copied = checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    });
                    match copied {
                        Ok((wal, done)) => tracing::debug!(wal, done, "checkpoint"),
                        Err(error) => tracing::warn!(%error, "checkpoint failed; the WAL grows until the next one"),
                    }
                }
            })
            .map_err(|e| StoreError::Thread(Arc::new(e)))?;
        Ok(Self {
            conn,
            since_checkpoint: 0,
            since_restart: 0,
            checkpoint,
            recent,
        })
    }

    /// Starts the WAL over from its beginning, if no reader is in it.
    ///
    /// Under steady writing the passive checkpoints copy everything, but the writer has always
    /// appended more by the time one ends, so SQLite never finds the WAL fully copied when a
    /// commit begins, and the file grows without end (250 MB for 10,000 instances of `bench
    /// workflows`, every commit writing to newly allocated blocks). Between two commits the
    /// writer copies the little left itself and resets the WAL; with a reader inside it, it does
    /// not wait but tries again later.
    ///
    /// Runs after a commit, so it never fails: the group is durable whatever happens here, and
    /// its appenders must hear so. Says whether the WAL started over.
    fn restart_wal(&mut self) -> bool {
        let restarted = self.conn.busy_timeout(Duration::ZERO).and_then(|()| {
            self.conn
                .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))
        });
        if let Err(error) = self.conn.busy_timeout(BUSY_TIMEOUT) {
            tracing::warn!(%error, "the writer's busy timeout could not be set back");
        }
        match restarted {
            Ok(0) => {
                tracing::debug!("the WAL starts over");
                return true;
            }
            Ok(_) => tracing::debug!("a reader is in the WAL; it starts over later"),
            // Busy: the checkpointer is copying; it starts over later.
            Err(error) => tracing::debug!(%error, "the WAL did not start over"),
        }
        false
    }
}

impl BlockingGroupCommit for SqliteWriter {
    fn commit_group(
        &mut self,
        requests: &mut [AppendRequest],
        now: i64,
    ) -> Result<(Vec<Result<Appended, StoreError>>, Tail), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (seq, hash, time): (i64, Vec<u8>, i64) = tx
            .prepare_cached("SELECT sequence, hash, recorded_at FROM log_head WHERE id = 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let tail = tail_from_row(seq, &hash, time)?;

        let mut heads = HashMap::new();
        let mut known = HashMap::new();
        {
            let mut head_of =
                tx.prepare_cached("SELECT MAX(version) FROM events WHERE stream = ?1")?;
            let mut key_of = tx.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE key = ?1"
            ))?;
            for request in requests.iter() {
                let stream = request.stream.as_str();
                if !heads.contains_key(stream) {
                    let version: Option<i64> = head_of.query_row([stream], |r| r.get(0))?;
                    if let Some(version) = version {
                        heads.insert(stream.to_owned(), from_db_int(version));
                    }
                }
                if let Some(key) = &request.idempotency_key {
                    let row = key_of
                        .query_row([key.as_str()], |r| {
                            Ok((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                                r.get(6)?,
                            ))
                        })
                        .optional()?;
                    known.extend(row.map(KeyRecord::from_row));
                }
            }
        }

        let plan = plan_group(tail, &heads, &known, requests, now);
        {
            let mut insert_event = tx.prepare_cached(concat!(
                "INSERT INTO events (",
                event_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            ))?;
            for e in &plan.rows {
                insert_event.execute(rusqlite::params![
                    db_int(e.sequence),
                    e.stream.as_str(),
                    db_int(e.version),
                    e.id.to_string(),
                    e.ty.as_str(),
                    i64::from(e.schema_version),
                    e.time.0,
                    e.metadata.actor.as_str(),
                    e.metadata.channel.as_str(),
                    e.metadata.correlation_id.as_deref(),
                    e.metadata.causation_id.as_deref(),
                    e.data.as_str(),
                    e.prev_hash.0.as_slice(),
                    e.hash.0.as_slice(),
                ])?;
            }
            let mut insert_key = tx.prepare_cached(
                "INSERT INTO idempotency_keys (key, stream, first_sequence, last_sequence, last_version, \
                 fingerprint, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for k in &plan.keys {
                insert_key.execute(rusqlite::params![
                    k.key.as_str(),
                    k.stream.as_str(),
                    db_int(k.first_sequence),
                    db_int(k.last_sequence),
                    db_int(k.last_version),
                    k.fingerprint.as_deref(),
                    k.recorded_at,
                ])?;
            }
            if !plan.rows.is_empty() {
                tx.prepare_cached(
                    "UPDATE log_head SET sequence = ?1, hash = ?2, recorded_at = ?3 WHERE id = 1",
                )?
                .execute(rusqlite::params![
                    db_int(plan.tail.sequence),
                    plan.tail.hash.0.as_slice(),
                    plan.tail.time,
                ])?;
            }
        }
        tx.commit()?;
        let committed = plan.rows.len();
        self.recent.push(plan.rows);
        self.since_checkpoint += committed;
        if self.since_checkpoint >= CHECKPOINT_EVERY_EVENTS {
            self.since_checkpoint = 0;
            let _ = self.checkpoint.try_send(());
        }
        self.since_restart += committed;
        if self.since_restart >= RESTART_EVERY_EVENTS {
            // When it cannot start over now (a reader in the WAL, the checkpointer at work), it
            // tries again soon rather than after another full round.
            self.since_restart = if self.restart_wal() {
                0
            } else {
                RESTART_EVERY_EVENTS - RETRY_RESTART_AFTER_EVENTS
            };
        }
        Ok((plan.outcomes, plan.tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new log in a temporary folder (removed when the folder is dropped).
    async fn scratch() -> (tempfile::TempDir, SqliteLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = SqliteLog::open(
            &dir.path().join("log.db"),
            OpenOptions::new(signoff_core::EventTypes::new()),
        )
        .await
        .unwrap();
        (dir, log)
    }

    /// What SQLite plans for a read by type of `ty`.
    async fn plan_of(log: &SqliteLog, ty: &str) -> String {
        let ty = EventType::parse(ty).unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {}", read_type_sql(&ty, '?'));
        let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(ty.as_str())
            .bind(0_i64)
            .bind(10_i64)
            .fetch_all(log.pool())
            .await
            .unwrap();
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
    }

    #[tokio::test]
    async fn lifecycle_types_are_read_through_their_index_and_others_by_a_scan() {
        let (_dir, log) = scratch().await;
        for ty in crate::TYPES_INDEXED {
            let plan = plan_of(&log, ty).await;
            assert!(plan.contains("events_by_lifecycle_type"), "{ty}: {plan}");
        }
        let plan = plan_of(&log, "signoff.step.entered").await;
        assert!(!plan.contains("events_by_lifecycle_type"), "{plan}");
    }

    #[tokio::test]
    async fn pages_of_read_models_seek_an_index_and_sort_nothing() {
        use crate::models::{Page, page_sql};
        let (_dir, log) = scratch().await;
        for (tagged, from, index) in [
            (false, Page::KeysAfter(""), "PRIMARY KEY"),
            (true, Page::NewestBefore(None), "read_models_by_tag_sort"),
            (
                true,
                Page::NewestBefore(Some((1, "k"))),
                "read_models_by_tag_sort",
            ),
            (false, Page::NewestBefore(None), "read_models_by_sort"),
            (
                false,
                Page::NewestBefore(Some((1, "k"))),
                "read_models_by_sort",
            ),
        ] {
            let sql = format!("EXPLAIN QUERY PLAN {}", page_sql('?', tagged, from));
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind("instances");
            if tagged {
                query = query.bind("running");
            }
            query = match from {
                Page::KeysAfter(after) => query.bind(after),
                Page::NewestBefore(Some((sort, key))) => query.bind(sort).bind(key),
                Page::NewestBefore(None) => query,
            };
            let rows: Vec<(i64, i64, i64, String)> = query
                .bind(10_i64)
                .fetch_all(log.models_pool())
                .await
                .unwrap();
            let plan = rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ");
            assert!(plan.contains(index), "{tagged} {from:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{tagged} {from:?}: {plan}");
        }
    }

    #[tokio::test]
    async fn appending_an_event_builds_no_temporary_table() {
        // An `IN (...)` list in the partial index's condition made every INSERT build one.
        let (_dir, log) = scratch().await;
        let sql = concat!(
            "EXPLAIN INSERT INTO events (",
            event_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        );
        let rows: Vec<(i64, String)> = sqlx::query_as(sql).fetch_all(log.pool()).await.unwrap();
        let opcodes: Vec<&str> = rows.iter().map(|(_, op)| op.as_str()).collect();
        assert!(opcodes.contains(&"Insert"), "{opcodes:?}");
        assert!(!opcodes.contains(&"OpenEphemeral"), "{opcodes:?}");
    }
}
