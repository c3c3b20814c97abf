-- The append-only, hash-chained event log (see crates/signoff-core/src/chain.rs for the hash).
CREATE TABLE events (
    sequence        BIGINT  PRIMARY KEY,          -- global position, 1.., gap-free, commit order
    stream          TEXT    NOT NULL,
    version         BIGINT  NOT NULL,             -- position in the stream, 1.., gap-free
    id              TEXT    NOT NULL,             -- CloudEvents id (UUID)
    type            TEXT    NOT NULL,             -- CloudEvents type
    schema_version  BIGINT  NOT NULL,
    recorded_at     BIGINT  NOT NULL,             -- microseconds since the Unix epoch, UTC
    actor           TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    correlation_id  TEXT,
    causation_id    TEXT,
    data            TEXT    NOT NULL,             -- JSON text, exactly as hashed (not jsonb: bytes matter)
    prev_hash       BYTEA   NOT NULL,
    hash            BYTEA   NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (stream, version)
);

-- The log is append-only: the database itself refuses to change or remove an event.
CREATE FUNCTION signoff_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'signoff: the event log is append-only; % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION signoff_refuse_change();
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION signoff_refuse_change();

-- The head of the log: last sequence, its hash and time. Every writer takes this row with
-- SELECT ... FOR UPDATE before it assigns sequence numbers, so appends from any number of
-- processes are serialised and sequences are assigned in commit order, without gaps.
CREATE TABLE log_head (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    sequence     BIGINT  NOT NULL,
    hash         BYTEA   NOT NULL,
    recorded_at  BIGINT  NOT NULL
);
INSERT INTO log_head (id, sequence, hash, recorded_at) VALUES (1, 0, decode(repeat('00', 32), 'hex'), 0);

-- Idempotency keys of appends: a repeated key returns the first result and writes nothing.
CREATE TABLE idempotency_keys (
    key            TEXT    PRIMARY KEY,
    stream         TEXT    NOT NULL,
    first_sequence BIGINT  NOT NULL,
    last_sequence  BIGINT  NOT NULL,
    last_version   BIGINT  NOT NULL
);
