-- Coffer's schema for PostgreSQL: secrets, Parameter Store, KMS, IAM and settings.
--
-- Every identifier a listing orders by or a path listing ranges over is TEXT COLLATE "C": names compare
-- and sort bytewise, as the conformance suite pins down, whatever the database's default collation.
-- Times are milliseconds since the Unix epoch (BIGINT), revisions BIGINT, sealed values BYTEA; the
-- documents the service hands over whole (tags, rotation settings, KMS key metadata, parameter version
-- metadata) are JSONB.

-- Secrets: one row per secret. `revision` is the compare-and-swap counter every write names.
CREATE TABLE secrets (
    arn             TEXT COLLATE "C" PRIMARY KEY,
    region          TEXT COLLATE "C" NOT NULL,
    name            TEXT COLLATE "C" NOT NULL,
    description     TEXT,
    kms_key_id      TEXT,
    tags            JSONB NOT NULL,
    created         BIGINT NOT NULL,
    last_changed    BIGINT NOT NULL,
    last_accessed   BIGINT,
    deletion_date   BIGINT,
    resource_policy TEXT,
    rotation        JSONB NOT NULL,
    revision        BIGINT NOT NULL,
    CONSTRAINT secrets_name_unique_per_region UNIQUE (region, name)
);
CREATE INDEX secrets_by_region_created ON secrets (region, created, arn);
CREATE INDEX secrets_due_for_deletion ON secrets (deletion_date) WHERE deletion_date IS NOT NULL;

-- A secret's versions. `seq` numbers them in write order within the secret, so versions created in the
-- same millisecond come back in the order they were written.
CREATE TABLE secret_versions (
    arn        TEXT COLLATE "C" NOT NULL REFERENCES secrets (arn) ON DELETE CASCADE,
    version_id TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL,
    stages     TEXT[] NOT NULL,
    created    BIGINT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('string', 'binary')),
    envelope   BYTEA NOT NULL,
    PRIMARY KEY (arn, version_id)
);
CREATE INDEX secret_versions_in_order ON secret_versions (arn, created, seq);

CREATE TABLE access_keys (
    access_key_id TEXT COLLATE "C" PRIMARY KEY,
    sealed_secret BYTEA NOT NULL,
    principal_arn TEXT NOT NULL,
    user_name     TEXT COLLATE "C" NOT NULL,
    status        TEXT NOT NULL,
    created       BIGINT NOT NULL
);
-- ListAccessKeys: a user's keys, oldest first.
CREATE INDEX access_keys_by_user ON access_keys (user_name, created, access_key_id);

CREATE TABLE settings (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);

-- Parameter Store. (region, name) serves recursive path listings as a range; parent_path serves
-- one-level listings.
CREATE TABLE parameters (
    region      TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    parent_path TEXT COLLATE "C" NOT NULL,
    tags        JSONB NOT NULL,
    revision    BIGINT NOT NULL,
    PRIMARY KEY (region, name)
);
CREATE INDEX parameters_by_parent ON parameters (region, parent_path, name);

CREATE TABLE parameter_versions (
    region   TEXT COLLATE "C" NOT NULL,
    name     TEXT COLLATE "C" NOT NULL,
    version  BIGINT NOT NULL,
    meta     JSONB NOT NULL,
    envelope BYTEA NOT NULL,
    PRIMARY KEY (region, name, version),
    FOREIGN KEY (region, name) REFERENCES parameters (region, name) ON DELETE CASCADE
);

-- KMS keys: the metadata as one document, with the columns lookups and ordering need beside it.
CREATE TABLE kms_keys (
    region   TEXT COLLATE "C" NOT NULL,
    key_id   TEXT COLLATE "C" NOT NULL,
    created  BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    meta     JSONB NOT NULL,
    PRIMARY KEY (region, key_id)
);
CREATE INDEX kms_keys_by_created ON kms_keys (region, created, key_id);

-- Key material versions, sealed under the master key; never removed while the key exists.
CREATE TABLE kms_key_materials (
    region  TEXT COLLATE "C" NOT NULL,
    key_id  TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created BIGINT NOT NULL,
    sealed  BYTEA NOT NULL,
    PRIMARY KEY (region, key_id, version),
    FOREIGN KEY (region, key_id) REFERENCES kms_keys (region, key_id) ON DELETE CASCADE
);

CREATE TABLE kms_aliases (
    region        TEXT COLLATE "C" NOT NULL,
    alias_name    TEXT COLLATE "C" NOT NULL,
    target_key_id TEXT COLLATE "C" NOT NULL,
    created       BIGINT NOT NULL,
    last_updated  BIGINT NOT NULL,
    PRIMARY KEY (region, alias_name)
);
CREATE INDEX kms_aliases_by_key ON kms_aliases (region, target_key_id);

-- IAM entities: opaque documents owned by the service, with their compare-and-swap revision.
CREATE TABLE iam_entities (
    kind     TEXT NOT NULL CHECK (kind IN ('user', 'group', 'role', 'policy', 'mfa')),
    name     TEXT COLLATE "C" NOT NULL,
    document BYTEA NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

-- The IAM generation: one row, bumped by every IAM batch in the batch's own transaction. Its row lock
-- is what applies concurrent batches one at a time, whichever node sends them.
CREATE TABLE iam_generation (
    id         SMALLINT PRIMARY KEY CHECK (id = 0),
    generation BIGINT NOT NULL
);
INSERT INTO iam_generation (id, generation) VALUES (0, 0);
