-- The audit log (see src/audit.rs for how each table is used).

-- One row per event, keyed by its place in the chain, so appending writes at the right edge of one
-- b-tree. The small columns come first and the body last: a large body spills into overflow pages
-- without pushing the others out of the row's first page.
--   max_time: the largest time_ms of this record and every record before it. Unlike time_ms it never
--             decreases along seq, so its index turns a time into a seq bound with one seek.
CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    time_ms   INTEGER NOT NULL,
    max_time  INTEGER NOT NULL,
    event_id  TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    body      BLOB NOT NULL
);
CREATE INDEX audit_events_by_max_time ON audit_events (max_time);
-- The late records: those whose time lags more than a second behind the newest time chained before
-- them (a clock stepped back, a long stall). Normally empty; it lets a time range's upper seq bound
-- assume at most a second of lag without missing them. (The condition is spelled exactly so in the
-- queries that use it; see LATE_MS in src/audit.rs.)
CREATE INDEX audit_events_late ON audit_events (time_ms) WHERE max_time - time_ms > 1000;

-- What events are looked up by: (attribute code, value) -> seq, clustered so a page of one value's
-- events, newest first, is one backwards range scan. Every event also has its event id here (attr 1).
CREATE TABLE audit_lookup (
    attr  INTEGER NOT NULL,
    value TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (attr, value, seq)
) WITHOUT ROWID;

-- Each event's audit_lookup entries (its event id first), encoded compactly, appended beside it at the
-- right edge: pruning deletes exactly the event's index rows by primary key instead of scanning the
-- index, and a broad prefix lookup can walk these short rows newest first. Kept out of audit_events
-- so reading the log (export, verification) reads no bytes it does not return.
CREATE TABLE audit_lookup_lists (
    seq     INTEGER PRIMARY KEY,
    entries BLOB NOT NULL
);

-- The chain's head, one row, updated in the same transaction as every append: pruning (or an empty
-- events table) never loses it. max_time is the newest record's max_time (NULL before the first).
-- digest_number is the newest digest number ever assigned, so numbers are never reused even when old
-- digests are pruned.
-- indexed_seq: the records up to it have their audit_lookup rows; the newer ones (the tail) are found
-- through their lookup lists until the writer folds them into audit_lookup, sorted, in one batch.
CREATE TABLE audit_head (
    id            INTEGER PRIMARY KEY CHECK (id = 0),
    seq           INTEGER NOT NULL,
    hash          BLOB NOT NULL,
    max_time      INTEGER,
    digest_number INTEGER NOT NULL,
    indexed_seq   INTEGER NOT NULL
);
INSERT INTO audit_head (id, seq, hash, max_time, digest_number, indexed_seq) VALUES (0, 0, zeroblob(32), NULL, 0, 0);

-- Signed digests of the chain, numbered 1, 2, 3, ... by the store.
CREATE TABLE audit_digests (
    number    INTEGER PRIMARY KEY,
    time_ms   INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    body      BLOB NOT NULL,
    signature BLOB NOT NULL
);
