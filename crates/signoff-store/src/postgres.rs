//! The scale-out backend: PostgreSQL, shared by any number of `signoff` processes.
//!
//! # How the global order stays gap-free across processes
//!
//! Every group commit starts with `SELECT … FROM log_head … FOR UPDATE`: the single head row is
//! the sequencer. Whoever holds it reads the last sequence and hash, assigns the next numbers,
//! inserts, moves the head and commits; the row lock is released only after the commit is visible.
//! So transactions that append are strictly serialised, sequence numbers are assigned in commit
//! order, and a reader that sees sequence *n* has already been able to see every sequence before it.
//! A PostgreSQL `SEQUENCE` would not do: its numbers are handed out before commit, so a rolled back
//! or slower transaction leaves gaps or commits out of order. The lock is scoped to the schema, so
//! logs in different schemas of one database do not block each other.
//!
//! Subscribers in other processes learn of commits through `NOTIFY` on a channel named after the
//! schema; the notification is sent inside the committing transaction, so it arrives only if the
//! commit happened.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use signoff_core::{EventType, IdempotencyKey, RecordedEvent, StreamId};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::StoreError;
use crate::log::{
    AppendRequest, Appended, EventLog, FORGET_BATCH, OnCommit, Tail, forget_batch, prefix_bound,
    read_type_sql,
};
use crate::models::{ModelQuery, ModelRow, ModelWrite, ModelWritten};
use crate::open::OpenOptions;
use crate::plan::{KEY_COLUMNS, KeyRecord, KeyRow, plan_group};
use crate::row::{EventRow, db_int, db_limit, event_columns, from_db_int, into_events};
use crate::sqlite::tail_from_row;
use crate::writer::{GroupCommit, Writer};

/// The event log in a PostgreSQL database (in the schema the connection's `search_path` names).
pub struct PgLog {
    writer: Writer,
    pool: PgPool,
    committed: Arc<watch::Sender<u64>>,
    listener: JoinHandle<()>,
}

impl Drop for PgLog {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgLog {
    /// Connects with a `postgres://` URL.
    ///
    /// # Errors
    /// A malformed URL, a connection or a migration error.
    pub async fn connect(url: &str, options: OpenOptions) -> Result<Self, StoreError> {
        Self::connect_with(PgConnectOptions::from_str(url)?, options).await
    }

    /// Connects with explicit options (e.g. a `search_path` to keep a test in its own schema)
    /// and brings the schema up to date.
    ///
    /// # Errors
    /// A connection or migration error.
    pub async fn connect_with(
        connect: PgConnectOptions,
        options: OpenOptions,
    ) -> Result<Self, StoreError> {
        let connect = connect.statement_cache_capacity(64);
        let mut writer_conn = PgConnection::connect_with(&connect).await?;
        sqlx::migrate!("../../migrations/postgres")
            .run(&mut writer_conn)
            .await?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&mut writer_conn)
            .await?;
        let channel = format!("signoff_events_{schema}");
        // Named, so that an operator (and the reconnection test) can tell it in pg_stat_activity.
        let writer_connect = connect
            .clone()
            .application_name(&format!("{WRITER_APPLICATION} {schema}"));
        sqlx::query("SELECT set_config('application_name', $1, false)")
            .bind(format!("{WRITER_APPLICATION} {schema}"))
            .execute(&mut writer_conn)
            .await?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            .connect_with(connect)
            .await?;
        let head: i64 = sqlx::query_scalar("SELECT sequence FROM log_head WHERE id = 1")
            .fetch_one(&pool)
            .await?;
        let committed = Arc::new(watch::channel(from_db_int(head)).0);
        let listener = tokio::spawn(listen(pool.clone(), channel.clone(), committed.clone()));
        let writer = Writer::spawn(
            PgWriter {
                conn: Some(writer_conn),
                connect: writer_connect,
                backoff: Backoff::default(),
                channel,
            },
            Arc::new(options.types),
            options.clock,
            committed.clone(),
        );
        Ok(Self {
            writer,
            pool,
            committed,
            listener,
        })
    }

    /// Connects to the log in `schema` of the database at `url`, creating the schema if needed.
    /// Lets several logs (tests, a benchmark's scratch log) share one database without meeting.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] for a schema name that is not a plain lowercase identifier,
    /// a connection or a migration error.
    pub async fn connect_in_schema(
        url: &str,
        schema: &str,
        options: OpenOptions,
    ) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)?;
        let mut admin = PgConnection::connect_with(&connect).await?;
        admin
            .execute(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                schema_ident(schema)?
            )))
            .await?;
        admin.close().await?;
        Self::connect_with(connect.options([("search_path", schema)]), options).await
    }

    /// Drops `schema` and every log in it. For tests and benchmarks: an audit log is never dropped.
    ///
    /// # Errors
    /// As [`PgLog::connect_in_schema`].
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        let mut admin = PgConnection::connect(url).await?;
        admin
            .execute(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                schema_ident(schema)?
            )))
            .await?;
        Ok(())
    }

    /// The connection pool, for tests and tools that need raw SQL (e.g. tamper tests).
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Accepts only plain lowercase identifiers, so the name can go into DDL unquoted and unescaped.
fn schema_ident(schema: &str) -> Result<&str, StoreError> {
    let plain = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(schema)
    } else {
        Err(StoreError::UnsupportedUrl(format!("schema {schema:?}")))
    }
}

/// Follows commits of other processes; reconnects after a pause if the connection drops.
async fn listen(pool: PgPool, channel: String, committed: Arc<watch::Sender<u64>>) {
    loop {
        let result: Result<(), sqlx::Error> = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(&channel).await?;
            loop {
                let note = listener.recv().await?;
                if let Ok(seq) = note.payload().parse::<u64>() {
                    committed.send_if_modified(|last| {
                        let newer = seq > *last;
                        if newer {
                            *last = seq;
                        }
                        newer
                    });
                }
            }
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, "lost the PostgreSQL notification connection; reconnecting");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[async_trait]
impl EventLog for PgLog {
    fn backend(&self) -> &'static str {
        "postgres"
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
            " FROM events WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3"
        ))
        .bind(stream.as_str())
        .bind(db_int(from_version))
        .bind(db_limit(limit))
        .fetch_all(&self.pool)
        .await?;
        into_events(rows)
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE sequence > $1 ORDER BY sequence LIMIT $2"
        ))
        .bind(db_int(after))
        .bind(db_limit(limit))
        .fetch_all(&self.pool)
        .await?;
        into_events(rows)
    }

    async fn read_type(
        &self,
        ty: &EventType,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // Built from constants only: the type itself is bound.
        let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(read_type_sql(ty, '$')))
            .bind(ty.as_str())
            .bind(db_int(after))
            .bind(db_limit(limit))
            .fetch_all(&self.pool)
            .await?;
        into_events(rows)
    }

    async fn idempotent_result(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let row: Option<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE key = $1"
        )))
        .bind(key.as_str())
        .fetch_optional(&self.pool)
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
                 WHERE key >= $1 AND ($2::text IS NULL OR key < $2::text) AND recorded_at < $3 LIMIT ",
                forget_batch!(),
                ")"
            ))
            .bind(prefix)
            .bind(bound.as_deref())
            .bind(recorded_before)
            .execute(&self.pool)
            .await?;
            forgotten += done.rows_affected();
            if done.rows_affected() < FORGET_BATCH {
                return Ok(forgotten);
            }
            tokio::task::yield_now().await;
        }
    }

    async fn write_models(&self, write: ModelWrite) -> Result<ModelWritten, StoreError> {
        crate::models::pg_write(&self.pool, write).await
    }

    async fn model_checkpoint(&self, group: &str) -> Result<u64, StoreError> {
        crate::models::postgres::checkpoint(&self.pool, group).await
    }

    async fn reset_models(&self, group: &str, models: &[&str]) -> Result<(), StoreError> {
        crate::models::postgres::reset(&self.pool, group, models).await
    }

    async fn model_row(&self, model: &str, key: &str) -> Result<Option<ModelRow>, StoreError> {
        crate::models::postgres::row(&self.pool, model, key).await
    }

    async fn model_rows(&self, query: ModelQuery<'_>) -> Result<Vec<ModelRow>, StoreError> {
        crate::models::postgres::rows(&self.pool, query).await
    }

    async fn tail(&self) -> Result<Tail, StoreError> {
        let (sequence, hash, time): (i64, Vec<u8>, i64) =
            sqlx::query_as("SELECT sequence, hash, recorded_at FROM log_head WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        tail_from_row(sequence, &hash, time)
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    async fn close(&self) {
        self.writer.close().await;
    }
}

/// The `application_name` of the writer's connection (followed by the schema).
pub const WRITER_APPLICATION: &str = "signoff writer";

/// The writer's one connection, made again after it is lost (a database restart, a failover,
/// an administrator's `pg_terminate_backend`): without it every commit would fail until the
/// process restarts.
struct PgWriter {
    /// `None` once lost, until a reconnection succeeds.
    conn: Option<PgConnection>,
    connect: PgConnectOptions,
    backoff: Backoff,
    channel: String,
}

/// Waits between reconnection attempts: 100 ms, doubling to at most 5 s, back to the start once
/// connected. Appends queue meanwhile; the group of a failed attempt is answered with its error.
#[derive(Default)]
struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MOST: Duration = Duration::from_secs(5);

    /// How long to wait before this attempt, and the wait before the next.
    fn step(&mut self) -> Duration {
        let wait = self.next.unwrap_or(Duration::ZERO);
        self.next = Some((wait * 2).clamp(Self::FIRST, Self::MOST));
        wait
    }
}

impl PgWriter {
    /// The live connection, made again (after the backoff's wait) when it was lost.
    async fn connection(&mut self) -> Result<&mut PgConnection, StoreError> {
        if self.conn.is_none() {
            tokio::time::sleep(self.backoff.step()).await;
            let conn = PgConnection::connect_with(&self.connect).await?;
            tracing::info!("the PostgreSQL writer reconnected");
            self.backoff = Backoff::default();
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or(StoreError::Closed)
    }

    /// After a failed commit: whether the connection is gone (then it is dropped, and the next
    /// use reconnects). One that still answers is kept: the failure was the group's own.
    async fn lost_connection(&mut self) -> bool {
        let alive = match self.conn.as_mut() {
            Some(conn) => conn.ping().await.is_ok(),
            None => false,
        };
        if !alive && self.conn.take().is_some() {
            tracing::warn!("lost the PostgreSQL writer's connection; reconnecting");
        }
        !alive
    }
}

#[async_trait]
impl GroupCommit for PgWriter {
    async fn commit_group(
        &mut self,
        requests: &mut [AppendRequest],
        now: i64,
    ) -> Result<(Vec<Result<Appended, StoreError>>, Tail), StoreError> {
        let result = self.commit_on_connection(requests, now).await;
        if result.is_err() && self.lost_connection().await {
            // The planner takes the events out of the requests it writes: while every request
            // still holds its events, no row was sent and nothing can have been committed, so
            // the group is tried once more on a new connection instead of failing. Otherwise the
            // commit's fate is unknown and the group is answered with the error (never
            // acknowledged, so a retry with its idempotency key is what settles it).
            if requests.iter().all(|r| !r.events.is_empty()) {
                let again = self.commit_on_connection(requests, now).await;
                if again.is_err() {
                    self.lost_connection().await;
                }
                return again;
            }
        }
        result
    }
}

impl PgWriter {
    async fn commit_on_connection(
        &mut self,
        requests: &mut [AppendRequest],
        now: i64,
    ) -> Result<(Vec<Result<Appended, StoreError>>, Tail), StoreError> {
        let channel = self.channel.clone();
        let mut tx = self.connection().await?.begin().await?;
        let (seq, hash, time): (i64, Vec<u8>, i64) = sqlx::query_as(
            "SELECT sequence, hash, recorded_at FROM log_head WHERE id = 1 FOR UPDATE",
        )
        .fetch_one(&mut *tx)
        .await?;
        let tail = tail_from_row(seq, &hash, time)?;

        let streams: Vec<String> = requests.iter().map(|r| r.stream.to_string()).collect();
        let heads: HashMap<String, u64> = sqlx::query_as::<_, (String, i64)>(
            // One index probe per stream (max of the (stream, version) index), whatever the
            // planner thinks of ANY(...) on a large table.
            "SELECT s.stream, v.version FROM unnest($1::text[]) AS s(stream) \
             CROSS JOIN LATERAL (SELECT version FROM events e WHERE e.stream = s.stream \
             ORDER BY version DESC LIMIT 1) AS v",
        )
        .bind(&streams)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(s, v)| (s, from_db_int(v)))
        .collect();

        let keys: Vec<String> = requests
            .iter()
            .filter_map(|r| r.idempotency_key.as_ref().map(ToString::to_string))
            .collect();
        let mut known = HashMap::new();
        if !keys.is_empty() {
            let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE key = ANY($1)"
            )))
            .bind(&keys)
            .fetch_all(&mut *tx)
            .await?;
            known.extend(rows.into_iter().map(KeyRecord::from_row));
        }

        let plan = plan_group(tail, &heads, &known, requests, now);
        if !plan.rows.is_empty() {
            let r = &plan.rows;
            sqlx::query(concat!(
                "INSERT INTO events (",
                event_columns!(),
                ") SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
                 $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
                 $13::bytea[], $14::bytea[])"
            ))
            .bind(r.iter().map(|e| db_int(e.sequence)).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.stream.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|e| db_int(e.version)).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.id.to_string()).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.ty.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|e| i64::from(e.schema_version)).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.time.0).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.metadata.actor.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.metadata.channel.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.metadata.correlation_id.as_deref()).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.metadata.causation_id.as_deref()).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.data.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.prev_hash.0.to_vec()).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.hash.0.to_vec()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        if !plan.keys.is_empty() {
            let k = &plan.keys;
            sqlx::query(
                "INSERT INTO idempotency_keys (key, stream, first_sequence, last_sequence, last_version, \
                 fingerprint, recorded_at) SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], \
                 $4::bigint[], $5::bigint[], $6::text[], $7::bigint[])",
            )
            .bind(k.iter().map(|k| k.key.as_str()).collect::<Vec<_>>())
            .bind(k.iter().map(|k| k.stream.as_str()).collect::<Vec<_>>())
            .bind(k.iter().map(|k| db_int(k.first_sequence)).collect::<Vec<_>>())
            .bind(k.iter().map(|k| db_int(k.last_sequence)).collect::<Vec<_>>())
            .bind(k.iter().map(|k| db_int(k.last_version)).collect::<Vec<_>>())
            .bind(k.iter().map(|k| k.fingerprint.as_deref()).collect::<Vec<_>>())
            .bind(k.iter().map(|k| k.recorded_at).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        if !plan.rows.is_empty() {
            sqlx::query(
                "UPDATE log_head SET sequence = $1, hash = $2, recorded_at = $3 WHERE id = 1",
            )
            .bind(db_int(plan.tail.sequence))
            .bind(plan.tail.hash.0.as_slice())
            .bind(plan.tail.time)
            .execute(&mut *tx)
            .await?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&channel)
                .bind(plan.tail.sequence.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((plan.outcomes, plan.tail))
    }
}
