-- Secrets: one row per secret; tags and rotation settings as JSON documents.
CREATE TABLE secrets (
    arn             TEXT PRIMARY KEY,
    region          TEXT NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT,
    kms_key_id      TEXT,
    tags            TEXT NOT NULL,
    created         INTEGER NOT NULL,
    last_changed    INTEGER NOT NULL,
    last_accessed   INTEGER,
    deletion_date   INTEGER,
    resource_policy TEXT,
    rotation        TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    UNIQUE (region, name)
);
CREATE INDEX secrets_by_region_created ON secrets (region, created, arn);
CREATE INDEX secrets_due_for_deletion ON secrets (deletion_date) WHERE deletion_date IS NOT NULL;

-- Versions: the sealed value and its staging labels, clustered by secret (WITHOUT ROWID) so a write
-- touches one b-tree page per secret instead of a table page plus an index page; seq keeps insertion
-- order within a secret.
CREATE TABLE secret_versions (
    arn        TEXT NOT NULL,
    version_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    stages     TEXT NOT NULL,
    created    INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    envelope   BLOB NOT NULL,
    PRIMARY KEY (arn, version_id)
) WITHOUT ROWID;

CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    sealed_secret BLOB NOT NULL,
    principal_arn TEXT NOT NULL,
    user_name     TEXT NOT NULL,
    status        TEXT NOT NULL,
    created       INTEGER NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
