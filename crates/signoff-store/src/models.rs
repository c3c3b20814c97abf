//! Read models: rows kept from the log by whoever folds it (the runtime), with a checkpoint per
//! group of models, so that a process can start from them instead of from the first event.
//!
//! The store does not know what a row means. A row has a model (the projection it belongs to),
//! a key, a `tag` and a `sort` to look it up and order it by, and a JSON body. A group of models
//! moves forward together: [`ModelWrite`] carries the rows that changed up to `position`, and the
//! store takes it only if it continues what is stored (see [`ModelWritten`]).

use sqlx::PgPool;

use crate::error::StoreError;
use crate::row::{db_int, from_db_int};

/// One row of a read model.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ModelRow {
    /// The projection it belongs to.
    pub model: String,
    /// Its key within the model.
    pub key: String,
    /// What it is looked up by (a status, a person), if anything.
    pub tag: Option<String>,
    /// What it is ordered by (a time), if anything: set by the key's first write and kept
    /// after (an instance's start), so that rewriting a row leaves the index by it alone.
    pub sort: Option<i64>,
    /// JSON text.
    pub body: String,
}

/// Rows of a group of models as the log up to `position` left them.
#[derive(Clone, Debug, Default)]
pub struct ModelWrite {
    /// The group's checkpoint name.
    pub group: String,
    /// The position the writer's changes are counted from: its last write, or where it read
    /// the rows from. The rows changed in (`since`, `position`] are all in this write.
    pub since: u64,
    /// The log position the rows are as of.
    pub position: u64,
    /// Models emptied before the rows are written (for models rewritten whole).
    pub clear: Vec<String>,
    /// Rows inserted or replaced (a key appears once).
    pub upserts: Vec<ModelRow>,
}

/// What became of a [`ModelWrite`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelWritten {
    /// The rows and the checkpoint were written.
    Written,
    /// The stored rows are already at or past the write's position (another process wrote
    /// them): nothing was written, and nothing needs to be.
    Behind {
        /// The stored checkpoint.
        stored: u64,
    },
    /// The stored rows are older than the writer's `since`: they were reset, so the writer's
    /// changes alone would leave them incomplete. Nothing was written.
    Stale {
        /// The stored checkpoint.
        stored: u64,
    },
}

impl ModelWritten {
    /// Whether a write from `since` to `position` may go on over rows stored at `stored`.
    #[must_use]
    pub fn decide(stored: u64, since: u64, position: u64) -> Self {
        if stored >= position {
            Self::Behind { stored }
        } else if stored < since {
            Self::Stale { stored }
        } else {
            Self::Written
        }
    }
}

/// A page of one model's rows.
#[derive(Clone, Debug)]
pub struct ModelQuery<'a> {
    /// The model.
    pub model: &'a str,
    /// Only rows with this tag (newest first only: no index orders one tag by key).
    pub tag: Option<&'a str>,
    /// The order, and where the page starts.
    pub from: Page<'a>,
    /// At most this many rows.
    pub limit: usize,
}

/// The order of a page of rows, and where it starts.
#[derive(Clone, Copy, Debug)]
pub enum Page<'a> {
    /// In key order, after this key (`""` for the first page); of a whole model only.
    KeysAfter(&'a str),
    /// Highest `sort` first (then highest key), after this (sort, key) (none for the first
    /// page): the newest first, when `sort` is a time.
    NewestBefore(Option<(i64, &'a str)>),
}

/// Keeps the last row of each key, so a batch never names a key twice (PostgreSQL refuses an
/// upsert that touches a row twice).
fn last_of_each_key(rows: Vec<ModelRow>) -> Vec<ModelRow> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<ModelRow> = rows
        .into_iter()
        .rev()
        .filter(|r| seen.insert((r.model.clone(), r.key.clone())))
        .collect();
    out.reverse();
    out
}

fn stored_position(position: Option<i64>) -> u64 {
    position.map_or(0, from_db_int)
}

/// Writes read models on the SQLite connection of their own file; the checkpoint records
/// `event`, the id of the log's event at its position.
pub(crate) fn sqlite_write(
    conn: &mut rusqlite::Connection,
    write: ModelWrite,
    event: Option<&str>,
) -> Result<ModelWritten, StoreError> {
    use rusqlite::OptionalExtension;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let stored: Option<i64> = tx
        .prepare_cached("SELECT position FROM read_model_checkpoints WHERE name = ?1")?
        .query_row([&write.group], |r| r.get(0))
        .optional()?;
    let outcome = ModelWritten::decide(stored_position(stored), write.since, write.position);
    if outcome != ModelWritten::Written {
        return Ok(outcome);
    }
    for model in &write.clear {
        tx.prepare_cached("DELETE FROM read_models WHERE model = ?1")?
            .execute([model])?;
    }
    // One prepared statement, run per row: nothing to encode or parse on the way.
    let mut upsert = tx.prepare_cached(
        "INSERT INTO read_models (model, key, tag, sort, body) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (model, key) DO UPDATE SET tag = excluded.tag, \
         body = excluded.body",
    )?;
    for row in &write.upserts {
        upsert.execute(rusqlite::params![
            row.model, row.key, row.tag, row.sort, row.body
        ])?;
    }
    drop(upsert);
    tx.prepare_cached(
        "INSERT INTO read_model_checkpoints (name, position, event) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position, event = excluded.event",
    )?
    .execute(rusqlite::params![
        write.group,
        db_int(write.position),
        event
    ])?;
    tx.commit()?;
    Ok(ModelWritten::Written)
}

pub(crate) async fn pg_write(pool: &PgPool, write: ModelWrite) -> Result<ModelWritten, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO read_model_checkpoints (name, position) VALUES ($1, 0) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&write.group)
    .execute(&mut *tx)
    .await?;
    // The row lock serialises writers of one group until commit.
    let stored: Option<i64> = sqlx::query_scalar(
        "SELECT position FROM read_model_checkpoints WHERE name = $1 FOR UPDATE",
    )
    .bind(&write.group)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = ModelWritten::decide(stored_position(stored), write.since, write.position);
    if outcome != ModelWritten::Written {
        tx.rollback().await?;
        return Ok(outcome);
    }
    if !write.clear.is_empty() {
        sqlx::query("DELETE FROM read_models WHERE model = ANY($1)")
            .bind(&write.clear)
            .execute(&mut *tx)
            .await?;
    }
    let rows = last_of_each_key(write.upserts);
    // In one statement per thousand rows rather than one round trip per row.
    for chunk in rows.chunks(1_000) {
        let mut models = Vec::with_capacity(chunk.len());
        let mut keys = Vec::with_capacity(chunk.len());
        let mut tags = Vec::with_capacity(chunk.len());
        let mut sorts = Vec::with_capacity(chunk.len());
        let mut bodies = Vec::with_capacity(chunk.len());
        for row in chunk {
            models.push(row.model.as_str());
            keys.push(row.key.as_str());
            tags.push(row.tag.as_deref());
            sorts.push(row.sort);
            bodies.push(row.body.as_str());
        }
        sqlx::query(
            "INSERT INTO read_models (model, key, tag, sort, body) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[]) \
             ON CONFLICT (model, key) DO UPDATE SET tag = excluded.tag, \
             body = excluded.body",
        )
        .bind(&models)
        .bind(&keys)
        .bind(&tags)
        .bind(&sorts)
        .bind(&bodies)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE read_model_checkpoints SET position = $2 WHERE name = $1")
        .bind(&write.group)
        .bind(db_int(write.position))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ModelWritten::Written)
}

/// The statements other than a write, in each backend's placeholder style.
pub(crate) struct Statements {
    pub checkpoint: &'static str,
    pub reset_rows: &'static str,
    pub reset_checkpoint: &'static str,
    pub row: &'static str,
    /// How it numbers placeholders: `?` or `$`.
    pub marker: char,
}

pub(crate) const SQLITE: Statements = Statements {
    checkpoint: "SELECT position FROM read_model_checkpoints WHERE name = ?1",
    reset_rows: "DELETE FROM read_models WHERE model = ?1",
    reset_checkpoint: "DELETE FROM read_model_checkpoints WHERE name = ?1",
    row: "SELECT model, key, tag, sort, body FROM read_models WHERE model = ?1 AND key = ?2",
    marker: '?',
};

pub(crate) const POSTGRES: Statements = Statements {
    checkpoint: "SELECT position FROM read_model_checkpoints WHERE name = $1",
    reset_rows: "DELETE FROM read_models WHERE model = $1",
    reset_checkpoint: "DELETE FROM read_model_checkpoints WHERE name = $1",
    row: "SELECT model, key, tag, sort, body FROM read_models WHERE model = $1 AND key = $2",
    marker: '$',
};

/// The query of a page of rows: the tag and the cursor are in the text only when given, so that
/// both databases seek the index `(model, tag, sort, key)` or `(model, sort, key)` instead of
/// reading every row of the model.
pub(crate) fn page_sql(marker: char, tagged: bool, from: Page<'_>) -> String {
    let mut n = 1;
    let mut next = || {
        n += 1;
        format!("{marker}{n}")
    };
    let mut sql =
        format!("SELECT model, key, tag, sort, body FROM read_models WHERE model = {marker}1");
    if tagged {
        sql.push_str(&format!(" AND tag = {}", next()));
    }
    match from {
        Page::KeysAfter(_) => {
            sql.push_str(&format!(" AND key > {} ORDER BY key", next()));
        }
        Page::NewestBefore(before) => {
            if before.is_some() {
                let (sort, key) = (next(), next());
                sql.push_str(&format!(" AND (sort, key) < ({sort}, {key})"));
            }
            sql.push_str(" ORDER BY sort DESC, key DESC");
        }
    }
    sql.push_str(&format!(" LIMIT {}", next()));
    sql
}

/// The read-model reads and resets, for one backend's pool and statements.
macro_rules! model_reads {
    ($module:ident, $pool:ty, $sql:expr) => {
        pub(crate) mod $module {
            use super::{ModelQuery, ModelRow, Page, stored_position};
            use crate::error::StoreError;

            pub(crate) async fn checkpoint(pool: &$pool, group: &str) -> Result<u64, StoreError> {
                let stored: Option<i64> = sqlx::query_scalar($sql.checkpoint)
                    .bind(group)
                    .fetch_optional(pool)
                    .await?;
                Ok(stored_position(stored))
            }

            pub(crate) async fn reset(
                pool: &$pool,
                group: &str,
                models: &[&str],
            ) -> Result<(), StoreError> {
                let mut tx = pool.begin().await?;
                sqlx::query($sql.reset_checkpoint)
                    .bind(group)
                    .execute(&mut *tx)
                    .await?;
                for model in models {
                    sqlx::query($sql.reset_rows)
                        .bind(*model)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn row(
                pool: &$pool,
                model: &str,
                key: &str,
            ) -> Result<Option<ModelRow>, StoreError> {
                Ok(sqlx::query_as($sql.row)
                    .bind(model)
                    .bind(key)
                    .fetch_optional(pool)
                    .await?)
            }

            pub(crate) async fn rows(
                pool: &$pool,
                query: ModelQuery<'_>,
            ) -> Result<Vec<ModelRow>, StoreError> {
                if let (Some(tag), Page::KeysAfter(_)) = (query.tag, query.from) {
                    // It would walk every row of the model, whatever its tag.
                    return Err(StoreError::InvalidBatch(format!(
                        "rows tagged {tag:?} are paged newest first, not in key order"
                    )));
                }
                let sql = super::page_sql($sql.marker, query.tag.is_some(), query.from);
                let mut select = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(query.model);
                if let Some(tag) = query.tag {
                    select = select.bind(tag);
                }
                select = match query.from {
                    Page::KeysAfter(after) => select.bind(after),
                    Page::NewestBefore(Some((sort, key))) => select.bind(sort).bind(key),
                    Page::NewestBefore(None) => select,
                };
                let rows = select
                    .bind(crate::row::db_limit(query.limit))
                    .fetch_all(pool)
                    .await?;
                Ok(rows)
            }
        }
    };
}

model_reads!(sqlite, sqlx::SqlitePool, super::SQLITE);
model_reads!(postgres, sqlx::PgPool, super::POSTGRES);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_names_only_what_it_filters_on() {
        assert_eq!(
            page_sql('?', false, Page::KeysAfter("")),
            "SELECT model, key, tag, sort, body FROM read_models WHERE model = ?1 \
             AND key > ?2 ORDER BY key LIMIT ?3"
        );
        assert_eq!(
            page_sql('?', true, Page::NewestBefore(None)),
            "SELECT model, key, tag, sort, body FROM read_models WHERE model = ?1 AND tag = ?2 \
             ORDER BY sort DESC, key DESC LIMIT ?3"
        );
        assert_eq!(
            page_sql('$', false, Page::NewestBefore(Some((1, "k")))),
            "SELECT model, key, tag, sort, body FROM read_models WHERE model = $1 \
             AND (sort, key) < ($2, $3) ORDER BY sort DESC, key DESC LIMIT $4"
        );
        assert_eq!(
            page_sql('?', false, Page::NewestBefore(None)),
            "SELECT model, key, tag, sort, body FROM read_models WHERE model = ?1 \
             ORDER BY sort DESC, key DESC LIMIT ?2"
        );
    }

    #[test]
    fn a_write_continues_the_stored_rows_or_is_told_why_not() {
        assert_eq!(ModelWritten::decide(0, 0, 10), ModelWritten::Written);
        assert_eq!(ModelWritten::decide(5, 3, 10), ModelWritten::Written);
        assert_eq!(
            ModelWritten::decide(10, 3, 10),
            ModelWritten::Behind { stored: 10 }
        );
        assert_eq!(
            ModelWritten::decide(12, 3, 10),
            ModelWritten::Behind { stored: 12 }
        );
        assert_eq!(
            ModelWritten::decide(2, 3, 10),
            ModelWritten::Stale { stored: 2 }
        );
    }

    #[test]
    fn a_batch_keeps_the_last_row_of_each_key() {
        let row = |key: &str, body: &str| ModelRow {
            model: "m".into(),
            key: key.into(),
            tag: None,
            sort: None,
            body: body.into(),
        };
        let rows = last_of_each_key(vec![row("a", "1"), row("b", "1"), row("a", "2")]);
        assert_eq!(rows, vec![row("b", "1"), row("a", "2")]);
    }
}
