-- The audit lookup index keeps one row per (attribute, value) per fold instead of one per event: a fold
-- of FOLD_AT records writes a row for each distinct value among them, holding all of that fold's seqs
-- with the value. Folds cover disjoint, ascending seq ranges, so one value's rows, ordered by their
-- first seq, list its seqs in order. (One row per event cost a b-tree descent per entry, four or five
-- an event; the writer spent more on that than on the events themselves.)
--   seq:  the row's lowest seq.
--   seqs: the others, ascending, as LEB128 varint gaps from the one before (empty for a single seq).
DROP TABLE audit_lookup;
CREATE TABLE audit_lookup (
    attr  INTEGER NOT NULL,
    value TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    seqs  BLOB NOT NULL,
    PRIMARY KEY (attr, value, seq)
) WITHOUT ROWID;
-- Every record is folded again, from its lookup list, into the new rows.
UPDATE audit_head SET indexed_seq = 0;

-- An event's lookup list moves into its own row: appending writes one row, not two. It sits before
-- the body, so a large body spilling into overflow pages does not push it out of the first page.
-- A row inserted without a list has none (no entries to fold or remove).
CREATE TABLE audit_events_with_lookup (
    seq       INTEGER PRIMARY KEY,
    time_ms   INTEGER NOT NULL,
    max_time  INTEGER NOT NULL,
    event_id  TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    lookup    BLOB NOT NULL DEFAULT x'',
    body      BLOB NOT NULL
);
INSERT INTO audit_events_with_lookup (seq, time_ms, max_time, event_id, prev_hash, lookup, body)
    SELECT e.seq, e.time_ms, e.max_time, e.event_id, e.prev_hash, coalesce(l.entries, x''), e.body
    FROM audit_events e LEFT JOIN audit_lookup_lists l ON l.seq = e.seq;
DROP TABLE audit_lookup_lists;
DROP TABLE audit_events;
ALTER TABLE audit_events_with_lookup RENAME TO audit_events;
CREATE INDEX audit_events_by_max_time ON audit_events (max_time);
CREATE INDEX audit_events_late ON audit_events (time_ms) WHERE max_time - time_ms > 1000;
