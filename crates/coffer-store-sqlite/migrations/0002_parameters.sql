-- Parameter Store: one row per parameter, its versions clustered under it. parent_path serves one-level
-- GetParametersByPath as an index range; (region, name) serves recursive paths as a prefix range.
CREATE TABLE parameters (
    region      TEXT NOT NULL,
    name        TEXT NOT NULL,
    parent_path TEXT NOT NULL,
    tags        TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    PRIMARY KEY (region, name)
) WITHOUT ROWID;
CREATE INDEX parameters_by_parent ON parameters (region, parent_path, name);

-- Each version's metadata as a JSON document beside its sealed value.
CREATE TABLE parameter_versions (
    region   TEXT NOT NULL,
    name     TEXT NOT NULL,
    version  INTEGER NOT NULL,
    meta     TEXT NOT NULL,
    envelope BLOB NOT NULL,
    PRIMARY KEY (region, name, version)
) WITHOUT ROWID;
