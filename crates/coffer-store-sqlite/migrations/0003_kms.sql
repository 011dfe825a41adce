-- KMS keys: the metadata as a JSON document (it is read and written whole), with the columns lookups
-- and ordering need.
CREATE TABLE kms_keys (
    region   TEXT NOT NULL,
    key_id   TEXT NOT NULL,
    created  INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    meta     TEXT NOT NULL,
    PRIMARY KEY (region, key_id)
) WITHOUT ROWID;

-- Key material versions, sealed under the master key; never removed while the key exists.
CREATE TABLE kms_key_materials (
    region  TEXT NOT NULL,
    key_id  TEXT NOT NULL,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL,
    sealed  BLOB NOT NULL,
    PRIMARY KEY (region, key_id, version)
) WITHOUT ROWID;

CREATE TABLE kms_aliases (
    region        TEXT NOT NULL,
    alias_name    TEXT NOT NULL,
    target_key_id TEXT NOT NULL,
    created       INTEGER NOT NULL,
    last_updated  INTEGER NOT NULL,
    PRIMARY KEY (region, alias_name)
) WITHOUT ROWID;
CREATE INDEX kms_aliases_by_key ON kms_aliases (region, target_key_id);
