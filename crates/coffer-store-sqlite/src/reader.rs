//! Reads: a small pool of read-only connections, used from `spawn_blocking`, and the row decoding.
//!
//! Why a pool beside the writer: in WAL mode readers see the last committed snapshot and never wait for
//! the writer (nor it for them), so reads keep flowing while a batch is being fsynced. The pool is
//! bounded by a semaphore — at most [`READ_POOL_SIZE`] reads run at once, each on its own connection
//! with its own prepared-statement cache — so a burst of reads queues in async land instead of
//! occupying blocking threads or opening connections without limit.
//!
//! A secret is loaded with two indexed queries (its row by primary key or by the (region, name) unique
//! index, then its versions by primary-key prefix) inside one read transaction, so both see the same
//! snapshot: a concurrent update or delete can never pair one revision's metadata with another's
//! versions.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use coffer_store::{
    AccessKeyRecord, AliasRecord, IamEntityRecord, IamKind, KeyMaterialRecord, KmsKeyRecord, KmsKeyState,
    ParameterQuery, ParameterState, ParameterVersionRecord, RotationSettings, SecretRecord, SecretState, StoreResult,
    Tag, ValueKind, VersionRecord,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use tokio::sync::Semaphore;

use crate::error::{corrupt, map_sqlite, unavailable};
use crate::schema::BUSY_TIMEOUT;

/// Read connections kept open (and reads run at once).
pub const READ_POOL_SIZE: usize = 4;

pub(crate) struct ReadPool {
    path: PathBuf,
    mode: ReadMode,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// How read connections are opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadMode {
    /// Beside the writer, serving requests: SQLite's defaults.
    Serving,
    /// [`crate::SqliteStore::open_read_only`]: offline reading (verification, export of a copy) scans
    /// the whole log, so a larger page cache. `immutable` tells SQLite nobody writes the file while it
    /// is open: it then takes no locks and creates no `-wal` or `-shm` file beside it (so reading leaves
    /// the directory untouched, and works on read-only media), and the file can be memory-mapped.
    Offline { immutable: bool },
}

/// A read-only connection in the given mode.
pub(crate) fn open_reader(path: &Path, mode: ReadMode) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let immutable = mode == ReadMode::Offline { immutable: true };
    let conn = match (immutable, path.to_str()) {
        (true, Some(path)) => Connection::open_with_flags(
            format!("file:{}?immutable=1", uri_escape(path)),
            flags | OpenFlags::SQLITE_OPEN_URI,
        ),
        // Not UTF-8: no URI can name it; an ordinary read-only open still writes nothing to the file.
        _ => Connection::open_with_flags(path, flags),
    }
    .map_err(map_sqlite)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_sqlite)?;
    if let ReadMode::Offline { immutable } = mode {
        conn.pragma_update(None, "cache_size", -32_768).map_err(map_sqlite)?; // 32 MiB
        if immutable {
            // Pages mapped instead of copied in by a read() each: about double the records per second.
            // Safe only because nobody writes an immutable file: it cannot shrink under the mapping.
            // (SQLite caps the size at its compile-time maximum, 2 GiB by default.)
            conn.pragma_update(None, "mmap_size", 1i64 << 40).map_err(map_sqlite)?;
        }
    }
    Ok(conn)
}

/// Percent-escapes a path for an SQLite `file:` URI (everything but unreserved characters and `/`).
fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ReadPool {
    pub fn new(path: &Path, mode: ReadMode) -> Arc<ReadPool> {
        Arc::new(ReadPool {
            path: path.to_path_buf(),
            mode,
            idle: Mutex::new(Vec::with_capacity(READ_POOL_SIZE)),
            permits: Arc::new(Semaphore::new(READ_POOL_SIZE)),
        })
    }

    fn connect(&self) -> StoreResult<Connection> {
        open_reader(&self.path, self.mode)
    }

    /// Runs `f` on a pooled read connection, off the async worker threads.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| unavailable("reader pool closed"))?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = pool.idle.lock().map_err(|_| unavailable("reader pool poisoned"))?.pop();
            let conn = match idle {
                Some(conn) => conn,
                None => pool.connect()?,
            };
            let result = f(&conn);
            // A connection left inside a transaction (a failed read) is not reused.
            if conn.is_autocommit() {
                if let Ok(mut idle) = pool.idle.lock() {
                    idle.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|e| unavailable(format!("a read task failed: {e}")))?
    }
}

/// The columns [`secret_from_row`] decodes, in its order.
macro_rules! secret_columns {
    () => {
        "arn, region, name, description, kms_key_id, tags, created, last_changed, last_accessed, deletion_date, \
         resource_policy, rotation, revision"
    };
}

const SECRET_BY_ARN: &str = concat!("SELECT ", secret_columns!(), " FROM secrets WHERE arn = ?1");
const SECRET_BY_NAME: &str = concat!("SELECT ", secret_columns!(), " FROM secrets WHERE region = ?1 AND name = ?2");
const SECRETS_IN_REGION: &str =
    concat!("SELECT ", secret_columns!(), " FROM secrets WHERE region = ?1 ORDER BY created, arn");

fn get<T: rusqlite::types::FromSql>(r: &Row<'_>, i: usize) -> StoreResult<T> {
    r.get(i).map_err(map_sqlite)
}

fn json<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize, what: &str, arn: &str) -> StoreResult<T> {
    let text: String = get(r, i)?;
    serde_json::from_str(&text).map_err(|e| corrupt(format!("{what} of {arn}: {e}")))
}

pub(crate) fn revision_from_sql(v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| corrupt(format!("negative revision {v}")))
}

/// Decodes a row selected with `secret_columns!()`.
pub(crate) fn secret_from_row(r: &Row<'_>) -> StoreResult<SecretRecord> {
    let arn: String = get(r, 0)?;
    Ok(SecretRecord {
        region: get(r, 1)?,
        name: get(r, 2)?,
        description: get(r, 3)?,
        kms_key_id: get(r, 4)?,
        tags: json::<Vec<Tag>>(r, 5, "tags", &arn)?,
        created: get(r, 6)?,
        last_changed: get(r, 7)?,
        last_accessed: get(r, 8)?,
        deletion_date: get(r, 9)?,
        resource_policy: get(r, 10)?,
        rotation: json::<RotationSettings>(r, 11, "rotation settings", &arn)?,
        revision: revision_from_sql(get(r, 12)?)?,
        arn,
    })
}

fn load_versions(conn: &Connection, arn: &str) -> StoreResult<Vec<VersionRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT version_id, stages, created, kind, envelope FROM secret_versions WHERE arn = ?1
             ORDER BY created, seq",
        )
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([arn]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        let kind: String = get(r, 3)?;
        out.push(VersionRecord {
            version_id: get(r, 0)?,
            stages: json(r, 1, "staging labels", arn)?,
            created: get(r, 2)?,
            kind: ValueKind::parse(&kind).ok_or_else(|| corrupt(format!("unknown value kind {kind:?} in {arn}")))?,
            envelope: get(r, 4)?,
        });
    }
    Ok(out)
}

/// Where to find a secret.
pub(crate) enum Key {
    Arn(String),
    Name { region: String, name: String },
}

/// Loads a secret and its versions from one snapshot.
pub(crate) fn load_state(conn: &Connection, key: &Key) -> StoreResult<Option<SecretState>> {
    let tx = conn.unchecked_transaction().map_err(map_sqlite)?;
    let secret = {
        let (sql, args): (&str, Vec<&str>) = match key {
            Key::Arn(arn) => (SECRET_BY_ARN, vec![arn]),
            Key::Name { region, name } => (SECRET_BY_NAME, vec![region, name]),
        };
        let mut stmt = tx.prepare_cached(sql).map_err(map_sqlite)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args)).map_err(map_sqlite)?;
        match rows.next().map_err(map_sqlite)? {
            Some(r) => Some(secret_from_row(r)?),
            None => None,
        }
    };
    let state = match secret {
        None => None,
        Some(secret) => {
            let versions = load_versions(&tx, &secret.arn)?;
            Some(SecretState { secret, versions })
        }
    };
    tx.finish().map_err(map_sqlite)?;
    Ok(state)
}

pub(crate) fn list_secrets(conn: &Connection, region: &str) -> StoreResult<Vec<SecretRecord>> {
    let mut stmt = conn.prepare_cached(SECRETS_IN_REGION).map_err(map_sqlite)?;
    let mut rows = stmt.query([region]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        out.push(secret_from_row(r)?);
    }
    Ok(out)
}

pub(crate) fn due_for_deletion(conn: &Connection, now: i64) -> StoreResult<Vec<(String, u64)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT arn, revision FROM secrets WHERE deletion_date IS NOT NULL AND deletion_date <= ?1
             ORDER BY deletion_date, arn",
        )
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([now]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        out.push((get(r, 0)?, revision_from_sql(get(r, 1)?)?));
    }
    Ok(out)
}

/// The columns [`access_key_from_row`] decodes, in its order.
macro_rules! access_key_columns {
    () => {
        "access_key_id, sealed_secret, principal_arn, user_name, status, created"
    };
}

fn access_key_from_row(r: &Row<'_>) -> StoreResult<AccessKeyRecord> {
    Ok(AccessKeyRecord {
        access_key_id: get(r, 0)?,
        sealed_secret: get(r, 1)?,
        principal_arn: get(r, 2)?,
        user_name: get(r, 3)?,
        status: get(r, 4)?,
        created: get(r, 5)?,
    })
}

pub(crate) fn access_key(conn: &Connection, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
    let mut stmt = conn
        .prepare_cached(concat!("SELECT ", access_key_columns!(), " FROM access_keys WHERE access_key_id = ?1"))
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([id]).map_err(map_sqlite)?;
    match rows.next().map_err(map_sqlite)? {
        None => Ok(None),
        Some(r) => Ok(Some(access_key_from_row(r)?)),
    }
}

/// A user's access keys, oldest first, ties by id: a range scan of `access_keys_by_user`.
pub(crate) fn list_access_keys(conn: &Connection, user_name: &str) -> StoreResult<Vec<AccessKeyRecord>> {
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            access_key_columns!(),
            " FROM access_keys WHERE user_name = ?1 ORDER BY created, access_key_id"
        ))
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([user_name]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        out.push(access_key_from_row(r)?);
    }
    Ok(out)
}

/// The IAM generation (0 before any IAM write).
pub(crate) fn iam_generation(conn: &Connection) -> StoreResult<u64> {
    let generation: Option<i64> = conn
        .prepare_cached("SELECT generation FROM iam_generation WHERE id = 0")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map_err(map_sqlite)?;
    let generation = generation.ok_or_else(|| corrupt("the IAM generation row is missing"))?;
    u64::try_from(generation).map_err(|_| corrupt(format!("negative IAM generation {generation}")))
}

/// Every IAM entity and the generation, from one read transaction: a batch committed meanwhile is seen
/// whole (its entities and its generation) or not at all.
pub(crate) fn load_iam(conn: &Connection) -> StoreResult<(u64, Vec<IamEntityRecord>)> {
    let tx = conn.unchecked_transaction().map_err(map_sqlite)?;
    let generation = iam_generation(&tx)?;
    let mut out = Vec::new();
    {
        let mut stmt =
            tx.prepare_cached("SELECT kind, name, document, revision FROM iam_entities").map_err(map_sqlite)?;
        let mut rows = stmt.query([]).map_err(map_sqlite)?;
        while let Some(r) = rows.next().map_err(map_sqlite)? {
            let kind: String = get(r, 0)?;
            let name: String = get(r, 1)?;
            let kind = IamKind::parse(&kind)
                .ok_or_else(|| corrupt(format!("unknown IAM entity kind {kind:?} of {name:?}")))?;
            out.push(IamEntityRecord { kind, document: get(r, 2)?, revision: revision_from_sql(get(r, 3)?)?, name });
        }
    }
    tx.finish().map_err(map_sqlite)?;
    // The contract orders by `IamKind`'s `Ord` (declaration order), which the stored text ("user",
    // "group", ...) does not follow; names compare bytewise, as SQLite's BINARY collation does.
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok((generation, out))
}

pub(crate) fn setting(conn: &Connection, key: &str) -> StoreResult<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(map_sqlite)
}

fn parameter_versions(conn: &Connection, region: &str, name: &str) -> StoreResult<Vec<ParameterVersionRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT meta, envelope FROM parameter_versions WHERE region = ?1 AND name = ?2 ORDER BY version",
        )
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([region, name]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        let mut v: ParameterVersionRecord = json(r, 0, "parameter version", name)?;
        v.envelope = get(r, 1)?;
        out.push(v);
    }
    Ok(out)
}

fn parameter_from_row(conn: &Connection, r: &Row<'_>) -> StoreResult<ParameterState> {
    let region: String = get(r, 0)?;
    let name: String = get(r, 1)?;
    let versions = parameter_versions(conn, &region, &name)?;
    Ok(ParameterState {
        parent_path: get(r, 2)?,
        tags: json(r, 3, "tags", &name)?,
        revision: revision_from_sql(get(r, 4)?)?,
        versions,
        region,
        name,
    })
}

/// One parameter with its versions, from one read transaction.
pub(crate) fn load_parameter(conn: &Connection, region: &str, name: &str) -> StoreResult<Option<ParameterState>> {
    let tx = conn.unchecked_transaction().map_err(map_sqlite)?;
    let mut stmt = tx
        .prepare_cached(
            "SELECT region, name, parent_path, tags, revision FROM parameters WHERE region = ?1 AND name = ?2",
        )
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([region, name]).map_err(map_sqlite)?;
    let found = match rows.next().map_err(map_sqlite)? {
        Some(r) => Some(parameter_from_row(&tx, r)?),
        None => None,
    };
    drop(rows);
    drop(stmt);
    tx.finish().map_err(map_sqlite)?;
    Ok(found)
}

/// The range condition of a path listing (over `parameters p`) and its upper bound parameter: names
/// under `/a/b/` are exactly those in [`/a/b/`, `/a/b0`), as `0` follows `/` in ASCII.
fn path_range(q: &ParameterQuery) -> (&'static str, String) {
    if !q.recursive {
        ("p.parent_path = ?2", q.path.clone())
    } else if q.path == "/" {
        ("?2 = ?2", String::new())
    } else {
        ("p.name < ?2 AND p.name >= ?5", format!("{}0", q.path))
    }
}

/// The names of a page under a path: an index-only range scan.
pub(crate) fn list_parameter_names(conn: &Connection, q: &ParameterQuery) -> StoreResult<Vec<String>> {
    let after = q.after.clone().unwrap_or_default();
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let (range, upper) = path_range(q);
    let sql = format!(
        "SELECT p.name FROM parameters p WHERE p.region = ?1 AND {range} AND p.name > ?3 ORDER BY p.name LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(map_sqlite)?;
    let lower = format!("{}/", q.path);
    let mut rows = if q.recursive && q.path != "/" {
        stmt.query(rusqlite::params![q.region, upper, after, limit, lower])
    } else {
        stmt.query(rusqlite::params![q.region, upper, after, limit])
    }
    .map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        out.push(get(r, 0)?);
    }
    Ok(out)
}

/// A page of parameters under a path: an index range, never a scan of the table.
pub(crate) fn list_parameters(conn: &Connection, q: &ParameterQuery) -> StoreResult<Vec<ParameterState>> {
    let tx = conn.unchecked_transaction().map_err(map_sqlite)?;
    let after = q.after.clone().unwrap_or_default();
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let (range, upper) = path_range(q);
    // With `latest_only` a page is one statement: each parameter joined with its newest version.
    let sql = if q.latest_only {
        format!(
            "SELECT p.region, p.name, p.parent_path, p.tags, p.revision, v.meta, v.envelope
             FROM parameters p JOIN parameter_versions v
               ON v.region = p.region AND v.name = p.name
              AND v.version = (SELECT MAX(version) FROM parameter_versions
                               WHERE region = p.region AND name = p.name)
             WHERE p.region = ?1 AND {range} AND p.name > ?3 ORDER BY p.name LIMIT ?4"
        )
    } else {
        format!(
            "SELECT p.region, p.name, p.parent_path, p.tags, p.revision FROM parameters p
             WHERE p.region = ?1 AND {range} AND p.name > ?3 ORDER BY p.name LIMIT ?4"
        )
    };
    let mut out = Vec::new();
    {
        let mut stmt = tx.prepare_cached(&sql).map_err(map_sqlite)?;
        let lower = format!("{}/", q.path);
        let mut rows = if q.recursive && q.path != "/" {
            stmt.query(rusqlite::params![q.region, upper, after, limit, lower])
        } else {
            stmt.query(rusqlite::params![q.region, upper, after, limit])
        }
        .map_err(map_sqlite)?;
        while let Some(r) = rows.next().map_err(map_sqlite)? {
            if q.latest_only {
                let name: String = get(r, 1)?;
                let mut latest: ParameterVersionRecord = json(r, 5, "parameter version", &name)?;
                latest.envelope = get(r, 6)?;
                out.push(ParameterState {
                    region: get(r, 0)?,
                    parent_path: get(r, 2)?,
                    tags: json(r, 3, "tags", &name)?,
                    revision: revision_from_sql(get(r, 4)?)?,
                    versions: vec![latest],
                    name,
                });
            } else {
                out.push(parameter_from_row(&tx, r)?);
            }
        }
    }
    tx.finish().map_err(map_sqlite)?;
    Ok(out)
}

/// One KMS key with its material versions, from one read transaction.
pub(crate) fn load_kms_key(conn: &Connection, region: &str, key_id: &str) -> StoreResult<Option<KmsKeyState>> {
    let tx = conn.unchecked_transaction().map_err(map_sqlite)?;
    let meta: Option<String> = tx
        .prepare_cached("SELECT meta FROM kms_keys WHERE region = ?1 AND key_id = ?2")
        .and_then(|mut s| s.query_row([region, key_id], |r| r.get(0)).optional())
        .map_err(map_sqlite)?;
    let Some(meta) = meta else { return Ok(None) };
    let key: KmsKeyRecord = serde_json::from_str(&meta).map_err(|e| corrupt(format!("KMS key {key_id}: {e}")))?;
    let mut materials = Vec::new();
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT version, created, sealed FROM kms_key_materials
                 WHERE region = ?1 AND key_id = ?2 ORDER BY version",
            )
            .map_err(map_sqlite)?;
        let mut rows = stmt.query([region, key_id]).map_err(map_sqlite)?;
        while let Some(r) = rows.next().map_err(map_sqlite)? {
            materials.push(KeyMaterialRecord { version: get(r, 0)?, created: get(r, 1)?, sealed: get(r, 2)? });
        }
    }
    tx.finish().map_err(map_sqlite)?;
    Ok(Some(KmsKeyState { key, materials }))
}

pub(crate) fn list_kms_keys(conn: &Connection, region: &str) -> StoreResult<Vec<KmsKeyRecord>> {
    let mut stmt = conn
        .prepare_cached("SELECT key_id, meta FROM kms_keys WHERE region = ?1 ORDER BY created, key_id")
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([region]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        let key_id: String = get(r, 0)?;
        out.push(json(r, 1, "KMS key", &key_id)?);
    }
    Ok(out)
}

fn alias_from_row(r: &Row<'_>) -> StoreResult<AliasRecord> {
    Ok(AliasRecord {
        region: get(r, 0)?,
        alias_name: get(r, 1)?,
        target_key_id: get(r, 2)?,
        created: get(r, 3)?,
        last_updated: get(r, 4)?,
    })
}

pub(crate) fn load_alias(conn: &Connection, region: &str, alias_name: &str) -> StoreResult<Option<AliasRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT region, alias_name, target_key_id, created, last_updated FROM kms_aliases
             WHERE region = ?1 AND alias_name = ?2",
        )
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([region, alias_name]).map_err(map_sqlite)?;
    match rows.next().map_err(map_sqlite)? {
        Some(r) => Ok(Some(alias_from_row(r)?)),
        None => Ok(None),
    }
}

pub(crate) fn list_aliases(conn: &Connection, region: &str) -> StoreResult<Vec<AliasRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT region, alias_name, target_key_id, created, last_updated FROM kms_aliases
             WHERE region = ?1 ORDER BY alias_name",
        )
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([region]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        out.push(alias_from_row(r)?);
    }
    Ok(out)
}

/// Every setting, by key.
pub(crate) fn list_settings(conn: &Connection) -> StoreResult<Vec<(String, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached("SELECT key, value FROM settings ORDER BY key").map_err(map_sqlite)?;
    let mut rows = stmt.query([]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        out.push((get(r, 0)?, get(r, 1)?));
    }
    Ok(out)
}

/// Every region holding a secret, parameter, KMS key or alias.
pub(crate) fn list_regions(conn: &Connection) -> StoreResult<Vec<String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT region FROM secrets UNION SELECT region FROM parameters UNION SELECT region FROM kms_keys \
             UNION SELECT region FROM kms_aliases ORDER BY 1",
        )
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        out.push(get(r, 0)?);
    }
    Ok(out)
}

/// Every access key, by id.
pub(crate) fn list_all_access_keys(conn: &Connection) -> StoreResult<Vec<AccessKeyRecord>> {
    let mut stmt = conn
        .prepare_cached(concat!("SELECT ", access_key_columns!(), " FROM access_keys ORDER BY access_key_id"))
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        out.push(access_key_from_row(r)?);
    }
    Ok(out)
}
