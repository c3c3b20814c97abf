-- Events of one type in order (instances started, instances ended…), without reading the whole log.
CREATE INDEX events_by_type ON events (type, sequence);
