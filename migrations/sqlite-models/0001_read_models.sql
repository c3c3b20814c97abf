-- Read models: rows kept from the log by the runtime, so that opening the log and answering a
-- query cost what is running, not what happened. They hold nothing the log does not: any of
-- them can be dropped and rebuilt from the events (`signoff projections rebuild`).
--
-- With SQLite they live in a file of their own beside the log (`<log>-models`), written by a
-- connection of their own: SQLite has one write lock per file, and rows written under the
-- log's lock held its appends up (a second of approvals is thousands of rows).
--
-- The store does not know what a row means: `model` names the projection (instances,
-- directory, tokens, ...), `tag` and `sort` are what it is looked up and ordered by (an
-- instance's status and start time, for example), `body` is JSON text. Rows live in the
-- primary key's tree (WITHOUT ROWID): one tree fewer to write.
CREATE TABLE read_models (
    model  TEXT    NOT NULL,
    key    TEXT    NOT NULL,
    tag    TEXT,
    sort   INTEGER,
    body   TEXT    NOT NULL,
    PRIMARY KEY (model, key)
) WITHOUT ROWID;
-- A page of one model in key order (the primary key), of one tag newest first, of all newest
-- first: each seeks its index and sorts nothing. Every index is paid for on each write of a
-- row (twice an instance: running, then ended), so there is no other.
CREATE INDEX read_models_by_tag_sort ON read_models (model, tag, sort, key);
CREATE INDEX read_models_by_sort ON read_models (model, sort, key);

-- How far into the log each group of read models has been brought: every row of the group is
-- as the events up to `position` left it. Writes move it forward only.
-- `event` is the id of the log's event at `position`: a log this file was not written from (a
-- new one, one restored from a backup) is told apart, and the rows are forgotten.
CREATE TABLE read_model_checkpoints (
    name      TEXT    PRIMARY KEY,
    position  INTEGER    NOT NULL,
    event     TEXT
);
