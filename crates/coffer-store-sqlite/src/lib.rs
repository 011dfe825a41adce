//! The embedded storage backend: one SQLite database file in the data directory.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a commit is on disk before it is acknowledged.
//!
//! Group commit: a single writer thread owns the write connection. It drains every write that is
//! queued (up to [`MAX_BATCH`]), applies them in one transaction with a SAVEPOINT each — a write that
//! fails (a lost compare-and-swap, a taken name) is rolled back alone and answered with its own error —
//! and commits once. One fsync then covers the whole batch, which is what lets durable writes scale with
//! concurrency instead of being bounded by the disk's flush latency.
//!
//! Reads run on a small pool of read-only connections through `spawn_blocking`; WAL lets them proceed
//! while the writer commits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use async_trait::async_trait;
use coffer_store::{
    AccessKeyRecord, EpochMillis, RotationSettings, SecretRecord, SecretState, SecretWrite, Store, StoreError,
    StoreResult, Tag, ValueKind, VersionRecord,
};
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

/// The most writes one transaction carries.
pub const MAX_BATCH: usize = 256;
/// Read connections kept open.
const READ_POOL_SIZE: usize = 4;

/// Migrations in order; the schema version is the number of migrations applied.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_initial.sql")];

/// A write waiting for the writer thread.
enum WriteOp {
    Secret(Box<SecretWrite>),
    TouchAccessed { arn: String, day: EpochMillis },
    InsertAccessKey(AccessKeyRecord),
    PutSettingIfAbsent { key: String, value: Vec<u8> },
}

/// What a write answers: most writes `()`, `PutSettingIfAbsent` whether it wrote.
type WriteReply = StoreResult<bool>;

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<WriteReply>,
}

/// Counters for tests and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub writes: AtomicU64,
    pub commits: AtomicU64,
}

/// The SQLite [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    stats: Arc<WriterStats>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn map_sqlite(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::AlreadyExists
        }
        rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => unavailable(e),
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Checkpoints copy WAL pages into the database file and fsync it; run inside a commit they would
    // stall every write queued behind it. The checkpointer thread does them instead.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    Ok(())
}

/// How often the checkpointer folds the WAL back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs PASSIVE checkpoints on its own connection: they never block the writer or readers. Stops when
/// the store is dropped (the writer channel closes and `alive` goes away).
fn checkpoint_loop(path: PathBuf, alive: std::sync::Weak<WriterStats>) {
    let Ok(conn) = Connection::open(&path) else { return };
    let _ = conn.busy_timeout(std::time::Duration::from_secs(1));
    while alive.upgrade().is_some() {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "wal checkpoint skipped");
        }
    }
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
}

/// Applies pending migrations; refuses a database written by a newer Coffer before changing anything.
fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let current = schema_version(conn).map_err(map_sqlite)?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::SchemaTooNew { found: current, supported });
    }
    if current == supported {
        return Ok(());
    }
    let tx = conn.transaction().map_err(map_sqlite)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)").map_err(map_sqlite)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).map_err(map_sqlite)?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [i as i64 + 1]).map_err(map_sqlite)?;
        tracing::info!(version = i + 1, "applied database migration");
    }
    tx.commit().map_err(map_sqlite)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations. The parent directory
    /// must exist.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path)).await.map_err(unavailable)?
    }

    fn open_blocking(path: &Path) -> StoreResult<SqliteStore> {
        let mut conn = Connection::open(path).map_err(map_sqlite)?;
        configure(&conn).map_err(map_sqlite)?;
        migrate(&mut conn)?;
        let stats = Arc::new(WriterStats::default());
        let (tx, rx) = mpsc::channel::<Job>();
        let writer_stats = stats.clone();
        std::thread::Builder::new()
            .name("coffer-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, writer_stats))
            .map_err(unavailable)?;
        let (checkpoint_path, alive) = (path.to_path_buf(), Arc::downgrade(&stats));
        std::thread::Builder::new()
            .name("coffer-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_path, alive))
            .map_err(unavailable)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(tx),
            readers: Arc::new(Mutex::new(Vec::new())),
            stats,
        })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    async fn write(&self, op: WriteOp) -> WriteReply {
        let (reply, rx) = oneshot::channel();
        self.writer
            .lock()
            .map_err(|_| unavailable("writer lock poisoned"))?
            .send(Job { op, reply })
            .map_err(|_| unavailable("the database writer has stopped"))?;
        rx.await.map_err(|_| unavailable("the database writer has stopped"))?
    }

    /// Runs `f` on a pooled read connection off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let pool = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.lock().map_err(|_| unavailable("reader pool poisoned"))?.pop();
            let conn = match conn {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &path,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(map_sqlite)?;
                    c.busy_timeout(std::time::Duration::from_secs(5)).map_err(map_sqlite)?;
                    c
                }
            };
            let result = f(&conn);
            if let Ok(mut pool) = pool.lock() {
                if pool.len() < READ_POOL_SIZE {
                    pool.push(conn);
                }
            }
            result
        })
        .await
        .map_err(unavailable)?
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, stats: Arc<WriterStats>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = apply_batch(&mut conn, &batch);
        stats.writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        match results {
            Ok(results) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "a database commit failed");
                for job in batch {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One transaction for the whole batch; each write isolated by its own savepoint.
fn apply_batch(conn: &mut Connection, batch: &[Job]) -> StoreResult<Vec<WriteReply>> {
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(map_sqlite)?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let mut sp = tx.savepoint().map_err(map_sqlite)?;
        let result = apply_one(&sp, &job.op);
        if result.is_ok() {
            sp.commit().map_err(map_sqlite)?;
        } else {
            sp.rollback().map_err(map_sqlite)?;
            drop(sp);
        }
        results.push(result);
    }
    tx.commit().map_err(map_sqlite)?;
    Ok(results)
}

fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

/// Runs a statement through the connection's statement cache: the writer executes the same handful of
/// statements thousands of times a second, and parsing SQL each time would dominate.
fn exec<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

fn insert_version(conn: &Connection, arn: &str, v: &VersionRecord) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO secret_versions (arn, version_id, seq, stages, created, kind, envelope)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM secret_versions WHERE arn = ?1), ?3, ?4, ?5, ?6)",
        params![arn, v.version_id, to_json(&v.stages)?, v.created, v.kind.as_str(), v.envelope],
    )
    .map_err(map_sqlite)?;
    Ok(())
}

fn current_revision(conn: &Connection, arn: &str) -> StoreResult<Option<u64>> {
    conn.prepare_cached("SELECT revision FROM secrets WHERE arn = ?1")
        .and_then(|mut stmt| stmt.query_row([arn], |r| r.get::<_, i64>(0)))
        .optional()
        .map(|r| r.map(|v| v as u64))
        .map_err(map_sqlite)
}

fn check_revision(conn: &Connection, arn: &str, expected: u64) -> StoreResult<()> {
    match current_revision(conn, arn)? {
        None => Err(StoreError::NotFound),
        Some(r) if r != expected => Err(StoreError::Conflict),
        Some(_) => Ok(()),
    }
}

fn apply_one(conn: &Connection, op: &WriteOp) -> WriteReply {
    match op {
        WriteOp::Secret(write) => apply_secret_write(conn, write),
        WriteOp::TouchAccessed { arn, day } => {
            exec(conn, "UPDATE secrets SET last_accessed = ?2 WHERE arn = ?1", params![arn, day])
                .map_err(map_sqlite)?;
            Ok(true)
        }
        WriteOp::InsertAccessKey(k) => {
            exec(
                conn,
                "INSERT INTO access_keys (access_key_id, sealed_secret, principal_arn, user_name, status, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![k.access_key_id, k.sealed_secret, k.principal_arn, k.user_name, k.status, k.created],
            )
            .map_err(map_sqlite)?;
            Ok(true)
        }
        WriteOp::PutSettingIfAbsent { key, value } => {
            let n = conn
                .execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)", params![key, value])
                .map_err(map_sqlite)?;
            Ok(n == 1)
        }
    }
}

fn apply_secret_write(conn: &Connection, write: &SecretWrite) -> WriteReply {
    match write {
        SecretWrite::Create(state) => {
            let s = &state.secret;
            exec(
                conn,
                "INSERT INTO secrets (arn, region, name, description, kms_key_id, tags, created, last_changed, last_accessed, deletion_date, resource_policy, rotation, revision)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    s.arn,
                    s.region,
                    s.name,
                    s.description,
                    s.kms_key_id,
                    to_json(&s.tags)?,
                    s.created,
                    s.last_changed,
                    s.last_accessed,
                    s.deletion_date,
                    s.resource_policy,
                    to_json(&s.rotation)?,
                    s.revision as i64
                ],
            )
            .map_err(map_sqlite)?;
            for v in &state.versions {
                insert_version(conn, &s.arn, v)?;
            }
            Ok(true)
        }
        SecretWrite::Update { expected_revision, secret: s, new_versions, stage_updates, deleted_versions } => {
            check_revision(conn, &s.arn, *expected_revision)?;
            exec(
                conn,
                "UPDATE secrets SET description = ?2, kms_key_id = ?3, tags = ?4, last_changed = ?5, last_accessed = ?6,
                 deletion_date = ?7, resource_policy = ?8, rotation = ?9, revision = ?10 WHERE arn = ?1",
                params![
                    s.arn,
                    s.description,
                    s.kms_key_id,
                    to_json(&s.tags)?,
                    s.last_changed,
                    s.last_accessed,
                    s.deletion_date,
                    s.resource_policy,
                    to_json(&s.rotation)?,
                    s.revision as i64
                ],
            )
            .map_err(map_sqlite)?;
            for id in deleted_versions {
                exec(conn, "DELETE FROM secret_versions WHERE arn = ?1 AND version_id = ?2", params![s.arn, id])
                    .map_err(map_sqlite)?;
            }
            for (id, stages) in stage_updates {
                exec(
                    conn,
                    "UPDATE secret_versions SET stages = ?3 WHERE arn = ?1 AND version_id = ?2",
                    params![s.arn, id, to_json(stages)?],
                )
                .map_err(map_sqlite)?;
            }
            for v in new_versions {
                insert_version(conn, &s.arn, v)?;
            }
            Ok(true)
        }
        SecretWrite::Delete { arn, expected_revision } => {
            check_revision(conn, arn, *expected_revision)?;
            exec(conn, "DELETE FROM secret_versions WHERE arn = ?1", [arn]).map_err(map_sqlite)?;
            exec(conn, "DELETE FROM secrets WHERE arn = ?1", [arn]).map_err(map_sqlite)?;
            Ok(true)
        }
    }
}

const SECRET_COLUMNS: &str = "arn, region, name, description, kms_key_id, tags, created, last_changed, last_accessed, deletion_date, resource_policy, rotation, revision";

fn secret_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRecord> {
    Ok(SecretRecord {
        arn: r.get(0)?,
        region: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        kms_key_id: r.get(4)?,
        tags: from_json::<Vec<Tag>>(&r.get::<_, String>(5)?)?,
        created: r.get(6)?,
        last_changed: r.get(7)?,
        last_accessed: r.get(8)?,
        deletion_date: r.get(9)?,
        resource_policy: r.get(10)?,
        rotation: from_json::<RotationSettings>(&r.get::<_, String>(11)?)?,
        revision: r.get::<_, i64>(12)? as u64,
    })
}

fn load_versions(conn: &Connection, arn: &str) -> StoreResult<Vec<VersionRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT version_id, stages, created, kind, envelope FROM secret_versions WHERE arn = ?1 ORDER BY created, seq",
        )
        .map_err(map_sqlite)?;
    let rows = stmt
        .query_map([arn], |r| {
            let kind: String = r.get(3)?;
            Ok(VersionRecord {
                version_id: r.get(0)?,
                stages: from_json(&r.get::<_, String>(1)?)?,
                created: r.get(2)?,
                kind: ValueKind::parse(&kind).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        3,
                        rusqlite::types::Type::Text,
                        "unknown value kind".into(),
                    )
                })?,
                envelope: r.get(4)?,
            })
        })
        .map_err(map_sqlite)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_sqlite)
}

fn load_state(conn: &Connection, clause: &str, args: &[&str]) -> StoreResult<Option<SecretState>> {
    let sql = format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE {clause}");
    let mut stmt = conn.prepare_cached(&sql).map_err(map_sqlite)?;
    let secret =
        stmt.query_row(rusqlite::params_from_iter(args.iter()), secret_from_row).optional().map_err(map_sqlite)?;
    match secret {
        None => Ok(None),
        Some(secret) => {
            let versions = load_versions(conn, &secret.arn)?;
            Ok(Some(SecretState { secret, versions }))
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    async fn load_secret_by_name(&self, region: &str, name: &str) -> StoreResult<Option<SecretState>> {
        let (region, name) = (region.to_string(), name.to_string());
        self.read(move |c| load_state(c, "region = ?1 AND name = ?2", &[&region, &name])).await
    }

    async fn load_secret_by_arn(&self, arn: &str) -> StoreResult<Option<SecretState>> {
        let arn = arn.to_string();
        self.read(move |c| load_state(c, "arn = ?1", &[&arn])).await
    }

    async fn list_secrets(&self, region: &str) -> StoreResult<Vec<SecretRecord>> {
        let region = region.to_string();
        self.read(move |c| {
            let sql = format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE region = ?1 ORDER BY created, arn");
            let mut stmt = c.prepare_cached(&sql).map_err(map_sqlite)?;
            let rows = stmt.query_map([&region], secret_from_row).map_err(map_sqlite)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_sqlite)
        })
        .await
    }

    async fn write_secret(&self, write: SecretWrite) -> StoreResult<()> {
        self.write(WriteOp::Secret(Box::new(write))).await.map(|_| ())
    }

    async fn touch_secret_accessed(&self, arn: &str, day: EpochMillis) -> StoreResult<()> {
        self.write(WriteOp::TouchAccessed { arn: arn.to_string(), day }).await.map(|_| ())
    }

    async fn secrets_due_for_deletion(&self, now: EpochMillis) -> StoreResult<Vec<(String, u64)>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT arn, revision FROM secrets WHERE deletion_date IS NOT NULL AND deletion_date <= ?1",
                )
                .map_err(map_sqlite)?;
            let rows = stmt.query_map([now], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))).map_err(map_sqlite)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_sqlite)
        })
        .await
    }

    async fn insert_access_key(&self, key: AccessKeyRecord) -> StoreResult<()> {
        self.write(WriteOp::InsertAccessKey(key)).await.map(|_| ())
    }

    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let id = access_key_id.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT access_key_id, sealed_secret, principal_arn, user_name, status, created FROM access_keys WHERE access_key_id = ?1",
                [&id],
                |r| {
                    Ok(AccessKeyRecord {
                        access_key_id: r.get(0)?,
                        sealed_secret: r.get(1)?,
                        principal_arn: r.get(2)?,
                        user_name: r.get(3)?,
                        status: r.get(4)?,
                        created: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(map_sqlite)
        })
        .await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let key = key.to_string();
        self.read(move |c| {
            c.query_row("SELECT value FROM settings WHERE key = ?1", [&key], |r| r.get(0))
                .optional()
                .map_err(map_sqlite)
        })
        .await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> StoreResult<bool> {
        self.write(WriteOp::PutSettingIfAbsent { key: key.to_string(), value: value.to_vec() }).await
    }
}

#[cfg(test)]
mod tests;
