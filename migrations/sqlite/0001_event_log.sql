-- The append-only, hash-chained event log (see crates/signoff-core/src/chain.rs for the hash).
CREATE TABLE events (
    sequence        INTEGER PRIMARY KEY,          -- global position, 1.., gap-free, commit order
    stream          TEXT    NOT NULL,
    version         INTEGER NOT NULL,             -- position in the stream, 1.., gap-free
    id              TEXT    NOT NULL,             -- CloudEvents id (UUID)
    type            TEXT    NOT NULL,             -- CloudEvents type
    schema_version  INTEGER NOT NULL,
    recorded_at     INTEGER NOT NULL,             -- microseconds since the Unix epoch, UTC
    actor           TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    correlation_id  TEXT,
    causation_id    TEXT,
    data            TEXT    NOT NULL,             -- JSON text, exactly as hashed
    prev_hash       BLOB    NOT NULL,
    hash            BLOB    NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (stream, version)
);

-- The log is append-only: the database itself refuses to change or remove an event.
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'signoff: the event log is append-only; UPDATE on events is refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'signoff: the event log is append-only; DELETE on events is refused');
END;

-- The head of the log: last sequence, its hash and time. Writers lock it (SQLite: BEGIN
-- IMMEDIATE) to serialise appends; `verify` compares it with the last event to detect truncation.
CREATE TABLE log_head (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    sequence     INTEGER NOT NULL,
    hash         BLOB    NOT NULL,
    recorded_at  INTEGER NOT NULL
);
INSERT INTO log_head (id, sequence, hash, recorded_at) VALUES (1, 0, zeroblob(32), 0);

-- Idempotency keys of appends: a repeated key returns the first result and writes nothing.
CREATE TABLE idempotency_keys (
    key            TEXT    PRIMARY KEY,
    stream         TEXT    NOT NULL,
    first_sequence INTEGER NOT NULL,
    last_sequence  INTEGER NOT NULL,
    last_version   INTEGER NOT NULL
) WITHOUT ROWID;
