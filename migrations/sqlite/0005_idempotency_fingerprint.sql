-- An idempotency key is bound to the request that first used it: a retry of the same request
-- (same fingerprint) gets the first answer, the same key on another request is refused.
-- `recorded_at` (microseconds, the first use) lets client keys be forgotten after their
-- retention; the engine's own keys are kept for ever (they guard timers and deliveries).
ALTER TABLE idempotency_keys ADD COLUMN fingerprint TEXT;
ALTER TABLE idempotency_keys ADD COLUMN recorded_at INTEGER NOT NULL DEFAULT 0;
