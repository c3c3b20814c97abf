-- Reading by type is for a few types that mark the life of an instance (started, ended,
-- cancelled, escalated); an index over every type cost each commit one more page per type
-- written (about twenty pages a group in `signoff bench workflows`) and a fifth of the
-- writer's CPU. The list must stay equal to `signoff_store::TYPES_INDEXED`.
DROP INDEX events_by_type;
CREATE INDEX events_by_lifecycle_type ON events (type, sequence)
    WHERE type IN ('signoff.instance.started', 'signoff.instance.ended',
                   'signoff.instance.cancelled', 'signoff.step.escalated');
