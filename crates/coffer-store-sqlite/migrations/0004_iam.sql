-- IAM: users, groups, roles, policies and MFA devices, each one opaque document (owned by the service)
-- with the compare-and-swap revision. A plain rowid table, not WITHOUT ROWID: documents can be tens of
-- kilobytes (a policy with its versions), and large rows belong in rowid tables' overflow pages.
CREATE TABLE iam_entities (
    kind     TEXT NOT NULL,
    name     TEXT NOT NULL,
    document BLOB NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);

-- The IAM generation: one row, bumped in the same transaction as every IAM batch, so nodes can poll
-- one integer to learn that their copy of IAM is stale.
CREATE TABLE iam_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 0),
    generation INTEGER NOT NULL
);
INSERT INTO iam_generation (id, generation) VALUES (0, 0);

-- A user's access keys, oldest first (ListAccessKeys).
CREATE INDEX access_keys_by_user ON access_keys (user_name, created);
