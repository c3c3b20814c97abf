-- The same index as 0003, its condition written as equalities joined by OR. SQLite evaluates a
-- partial index's condition for every row inserted, and an `IN (...)` list of constants there
-- is built into a temporary b-tree on each run of the INSERT: four-tenths of the writer's
-- instructions in `signoff bench workflows`. PostgreSQL does not need it, but both backends
-- keep one index, and one query to use it (`by_type_condition` repeats this condition). The
-- list must stay equal to `signoff_store::TYPES_INDEXED`.
DROP INDEX events_by_lifecycle_type;
CREATE INDEX events_by_lifecycle_type ON events (type, sequence)
    WHERE type = 'signoff.instance.started' OR type = 'signoff.instance.ended'
       OR type = 'signoff.instance.cancelled' OR type = 'signoff.step.escalated';
