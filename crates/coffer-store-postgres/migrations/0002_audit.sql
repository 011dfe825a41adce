-- The audit log: one hash chain of events, appended in commit order.

-- One row per event, keyed by its place in the chain.
CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,
    time_ms   BIGINT NOT NULL,
    event_id  TEXT COLLATE "C" NOT NULL,
    prev_hash BYTEA NOT NULL CHECK (octet_length(prev_hash) = 32),
    body      BYTEA NOT NULL
);
-- `audit_seq_at` and time-bounded listings.
CREATE INDEX audit_events_by_time ON audit_events (time_ms, seq);

-- What events are looked up by: one row per distinct (attribute code, value) of an event, its own
-- event id included (attribute 1). The primary key serves exact and prefix lookups newest first; the
-- seq index serves pruning.
CREATE TABLE audit_lookup (
    attr  SMALLINT NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    seq   BIGINT NOT NULL,
    PRIMARY KEY (attr, value, seq)
);
CREATE INDEX audit_lookup_by_seq ON audit_lookup (seq);

-- The chain's head: one row, locked (SELECT ... FOR UPDATE) by every append and updated in the same
-- transaction. That lock is what keeps appends from several nodes one chain, without forks or gaps;
-- pruning never touches it, so the head survives even an empty events table.
CREATE TABLE audit_head (
    id   SMALLINT PRIMARY KEY CHECK (id = 0),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL CHECK (octet_length(hash) = 32)
);
INSERT INTO audit_head (id, seq, hash) VALUES (0, 0, decode(repeat('00', 32), 'hex'));

-- The newest digest number ever assigned (numbers are never reused, even after old digests are
-- pruned). A row of its own, so signing a digest does not wait for the appends holding the head.
CREATE TABLE audit_digest_head (
    id     SMALLINT PRIMARY KEY CHECK (id = 0),
    number BIGINT NOT NULL
);
INSERT INTO audit_digest_head (id, number) VALUES (0, 0);

-- Signed digests of the chain, numbered 1, 2, 3, ... by the store.
CREATE TABLE audit_digests (
    number    BIGINT PRIMARY KEY,
    time_ms   BIGINT NOT NULL,
    last_seq  BIGINT NOT NULL,
    body      BYTEA NOT NULL,
    signature BYTEA NOT NULL
);
