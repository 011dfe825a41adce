//! Coffer's embedded storage backend: one SQLite database file in the data directory.
//!
//! [`SqliteStore`] implements [`coffer_store::Store`] and passes the shared conformance suite.
//!
//! Durability: the file runs in WAL mode with `synchronous=FULL`: every commit fsyncs the WAL before the
//! write is acknowledged, so a write whose future resolved `Ok` survives a crash or power loss (the
//! storage crate's "acknowledged only after durable" invariant). `busy_timeout` is set on every
//! connection, so another process briefly holding a lock delays a request instead of failing it.
//!
//! Group commit (`writer.rs`): a single writer thread owns the only writing connection. It drains
//! every write that is queued (up to [`MAX_BATCH`]), applies them in one transaction with a SAVEPOINT
//! each — a write that fails (a lost compare-and-swap, a taken name) is rolled back alone and answered
//! with its own error — and commits once. One fsync then covers the whole batch, which is what lets
//! durable writes scale with concurrency (thousands of PutSecretValue per second) instead of being
//! bounded by the disk's flush latency. [`SqliteStore::stats`] reports writes and commits.
//!
//! Reads (`reader.rs`) run on a small pool of read-only connections through `spawn_blocking`; WAL
//! lets them proceed while the writer commits.
//!
//! The audit log (`audit.rs`): events are chained by the writer thread in commit order, each in the
//! same savepoint as the change it records; [`SqliteStore::open_read_only`] reads a copy of the file
//! for offline verification without writing to it.
//!
//! Schema (`schema.rs`): versioned migrations embedded from `migrations/NNNN_name.sql`, tracked in
//! `schema_version`; a file written by a newer Coffer is refused with `SchemaTooNew`, untouched.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use coffer_store::{
    AccessKeyRecord, AliasRecord, AliasWrite, AuditAppend, AuditBatch, AuditDigestAppend, AuditDigestRecord, AuditHead,
    AuditQuery, AuditRecord, EnvelopeSwap, EpochMillis, IamEntityRecord, IamWrite, KmsKeyRecord, KmsKeyState,
    KmsKeyWrite, ParameterQuery, ParameterState, ParameterWrite, SecretRecord, SecretState, SecretWrite, Store,
    StoreError, StoreResult,
};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

mod audit;
mod error;
mod reader;
mod schema;
mod writer;

pub use reader::READ_POOL_SIZE;
pub use schema::{AUDIT_SCHEMA_VERSION, SCHEMA_VERSION};
pub use writer::{WriterStats, MAX_BATCH};

use error::{map_sqlite, unavailable};
use reader::{Key, ReadMode, ReadPool};
use writer::{Counters, Done, Events, Job, WriteOp};

/// The SQLite [`Store`]. Cheap to share behind an `Arc`; all methods take `&self`.
///
/// Dropping it closes the write queue, waits for the writer thread to commit whatever was already
/// queued, and stops the checkpointer; when it returns, the file is closed (apart from reads still in
/// flight on the blocking pool). That wait is at most one batch, but it does block the dropping thread.
pub struct SqliteStore {
    path: PathBuf,
    writer: Option<mpsc::Sender<Job>>,
    writer_thread: Option<JoinHandle<()>>,
    checkpoint_stop: Option<std::sync::mpsc::Sender<()>>,
    checkpoint_thread: Option<JoinHandle<()>>,
    readers: Arc<ReadPool>,
    counters: Arc<Counters>,
    /// Opened with [`SqliteStore::open_read_only`]: there is no writer, and every write is refused.
    read_only: bool,
}

fn writer_stopped() -> StoreError {
    unavailable("the database writer has stopped")
}

impl SqliteStore {
    /// Opens the database file at `path`, creating it if needed (its parent directory must exist), and
    /// applies pending migrations.
    ///
    /// Async because opening does blocking file I/O (and may wait up to the busy timeout for another
    /// process's lock); it runs on Tokio's blocking pool, so it must be called within a Tokio runtime —
    /// as every method of the store must (reads use `spawn_blocking`).
    ///
    /// Errors: [`StoreError::SchemaTooNew`] if the file was written by a newer Coffer (the file is left
    /// untouched); [`StoreError::Corrupt`] if it is not a database; [`StoreError::Unavailable`] if it
    /// cannot be opened, locked or written, or WAL mode cannot be enabled.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path))
            .await
            .map_err(|e| unavailable(format!("opening the database failed: {e}")))?
    }

    fn open_blocking(path: PathBuf) -> StoreResult<SqliteStore> {
        schema::probe_existing(&path)?;
        let mut conn = Connection::open(&path).map_err(map_sqlite)?;
        schema::configure_writer(&conn)?;
        schema::migrate(&mut conn)?;
        let checkpoint_conn = Connection::open(&path).map_err(map_sqlite)?;
        schema::configure_writer(&checkpoint_conn)?;

        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel::<Job>(writer::QUEUE_CAPACITY);
        let writer_counters = counters.clone();
        let writer_thread = std::thread::Builder::new()
            .name("coffer-sqlite-writer".into())
            .spawn(move || writer::writer_loop(conn, rx, writer_counters))
            .map_err(|e| unavailable(format!("starting the database writer: {e}")))?;
        let (stop_tx, stop_rx) = std::sync::mpsc::channel();
        let checkpoint_thread = std::thread::Builder::new()
            .name("coffer-sqlite-checkpoint".into())
            .spawn(move || writer::checkpoint_loop(checkpoint_conn, stop_rx))
            .map_err(|e| unavailable(format!("starting the database checkpointer: {e}")))?;
        Ok(SqliteStore {
            readers: ReadPool::new(&path, ReadMode::Serving),
            path,
            writer: Some(tx),
            writer_thread: Some(writer_thread),
            checkpoint_stop: Some(stop_tx),
            checkpoint_thread: Some(checkpoint_thread),
            counters,
            read_only: false,
        })
    }

    /// Opens an existing database file for reading only, for offline work on a copy of the data
    /// (`coffer audit verify`): every read of the [`Store`] trait works, every write answers
    /// [`StoreError::Unavailable`].
    ///
    /// Nothing is ever written to the file: no migration, no journal-mode change, no checkpoint; every
    /// connection is opened with `SQLITE_OPEN_READ_ONLY`. A file with neither a `-wal` nor a `-shm`
    /// file beside it (a copy, or a database closed cleanly) is opened as immutable: no locks, and no
    /// file is created beside it, so it can sit on read-only media. A copy taken with its `-wal` file
    /// is read with it: SQLite then keeps its `-shm` index of the WAL beside it (creating it if
    /// needed), but neither the database nor the WAL is written.
    ///
    /// Errors: [`StoreError::Unavailable`] if the file does not exist or cannot be read, or its schema
    /// predates the audit log ([`AUDIT_SCHEMA_VERSION`]: open it once with `open` to migrate it);
    /// [`StoreError::SchemaTooNew`] if a newer Coffer wrote it; [`StoreError::Corrupt`] if it is not a
    /// database.
    pub async fn open_read_only(path: &Path) -> StoreResult<SqliteStore> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_read_only_blocking(path))
            .await
            .map_err(|e| unavailable(format!("opening the database failed: {e}")))?
    }

    fn open_read_only_blocking(path: PathBuf) -> StoreResult<SqliteStore> {
        if !path.is_file() {
            return Err(unavailable(format!("no database file at {}", path.display())));
        }
        // Nothing beside it: no writer has it open (its last connection removes both files on close),
        // so it can be read as immutable.
        let beside = |suffix: &str| {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            PathBuf::from(name).exists()
        };
        let mode = ReadMode::Offline { immutable: !beside("-wal") && !beside("-shm") };
        let conn = reader::open_reader(&path, mode)?;
        let found = schema::schema_version(&conn).map_err(map_sqlite)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
        }
        if found < AUDIT_SCHEMA_VERSION {
            return Err(unavailable(format!(
                "database schema version {found} predates the audit log (version {AUDIT_SCHEMA_VERSION}); \
                 start coffer on it once to migrate it, then copy it again"
            )));
        }
        drop(conn);
        Ok(SqliteStore {
            readers: ReadPool::new(&path, mode),
            path,
            writer: None,
            writer_thread: None,
            checkpoint_stop: None,
            checkpoint_thread: None,
            counters: Arc::new(Counters::default()),
            read_only: true,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer's counters (writes answered, transactions committed, ...). Cheap: a few atomic loads.
    pub fn stats(&self) -> WriterStats {
        self.counters.snapshot()
    }

    async fn write(&self, op: WriteOp) -> StoreResult<usize> {
        Ok(self.write_with_events(op, Events::Own(None)).await?.rows)
    }

    /// Queues a change and the events that record it; they commit together or not at all.
    async fn write_with_events(&self, op: WriteOp, events: Events) -> StoreResult<Done> {
        if self.read_only {
            return Err(unavailable("the database was opened read-only"));
        }
        let sender = self.writer.as_ref().ok_or_else(writer_stopped)?;
        let (reply, answer) = oneshot::channel();
        sender.send(Job { op, events, reply }).await.map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        drop(self.writer.take()); // the writer drains the queue, then exits
        if let Some(t) = self.writer_thread.take() {
            if t.join().is_err() {
                tracing::error!("the database writer thread panicked");
            }
        }
        drop(self.checkpoint_stop.take());
        if let Some(t) = self.checkpoint_thread.take() {
            let _ = t.join();
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    async fn load_secret_by_name(&self, region: &str, name: &str) -> StoreResult<Option<SecretState>> {
        let key = Key::Name { region: region.to_string(), name: name.to_string() };
        self.readers.read(move |c| reader::load_state(c, &key)).await
    }

    async fn load_secret_by_arn(&self, arn: &str) -> StoreResult<Option<SecretState>> {
        let key = Key::Arn(arn.to_string());
        self.readers.read(move |c| reader::load_state(c, &key)).await
    }

    async fn list_secrets(&self, region: &str) -> StoreResult<Vec<SecretRecord>> {
        let region = region.to_string();
        self.readers.read(move |c| reader::list_secrets(c, &region)).await
    }

    async fn write_secret(&self, write: SecretWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.write_with_events(WriteOp::Secret(Box::new(write)), Events::Own(audit)).await.map(drop)
    }

    async fn touch_secret_accessed(&self, arn: &str, day: EpochMillis) -> StoreResult<()> {
        self.write(WriteOp::TouchAccessed { arn: arn.to_string(), day }).await.map(drop)
    }

    async fn secrets_due_for_deletion(&self, now: EpochMillis) -> StoreResult<Vec<(String, u64)>> {
        self.readers.read(move |c| reader::due_for_deletion(c, now)).await
    }

    async fn insert_access_key(&self, key: AccessKeyRecord) -> StoreResult<()> {
        self.write(WriteOp::InsertAccessKey(key)).await.map(drop)
    }

    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let id = access_key_id.to_string();
        self.readers.read(move |c| reader::access_key(c, &id)).await
    }

    async fn load_parameter(&self, region: &str, name: &str) -> StoreResult<Option<ParameterState>> {
        let (region, name) = (region.to_string(), name.to_string());
        self.readers.read(move |c| reader::load_parameter(c, &region, &name)).await
    }

    async fn write_parameter(&self, write: ParameterWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.write_with_events(WriteOp::Parameter(Box::new(write)), Events::Own(audit)).await.map(drop)
    }

    async fn list_parameters(&self, query: ParameterQuery) -> StoreResult<Vec<ParameterState>> {
        self.readers.read(move |c| reader::list_parameters(c, &query)).await
    }

    async fn list_parameter_names(&self, query: ParameterQuery) -> StoreResult<Vec<String>> {
        self.readers.read(move |c| reader::list_parameter_names(c, &query)).await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let key = key.to_string();
        self.readers.read(move |c| reader::setting(c, &key)).await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> StoreResult<bool> {
        self.write(WriteOp::PutSettingIfAbsent { key: key.to_string(), value: value.to_vec() }).await.map(|n| n == 1)
    }

    async fn replace_setting(&self, key: &str, expected: &[u8], value: &[u8]) -> StoreResult<bool> {
        self.write(WriteOp::ReplaceSetting { key: key.to_string(), expected: expected.to_vec(), value: value.to_vec() })
            .await
            .map(|n| n == 1)
    }

    async fn load_kms_key(&self, region: &str, key_id: &str) -> StoreResult<Option<KmsKeyState>> {
        let (region, key_id) = (region.to_string(), key_id.to_string());
        self.readers.read(move |c| reader::load_kms_key(c, &region, &key_id)).await
    }

    async fn list_kms_keys(&self, region: &str) -> StoreResult<Vec<KmsKeyRecord>> {
        let region = region.to_string();
        self.readers.read(move |c| reader::list_kms_keys(c, &region)).await
    }

    async fn write_kms_key(&self, write: KmsKeyWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.write_with_events(WriteOp::KmsKey(Box::new(write)), Events::Own(audit)).await.map(drop)
    }

    async fn load_alias(&self, region: &str, alias_name: &str) -> StoreResult<Option<AliasRecord>> {
        let (region, alias_name) = (region.to_string(), alias_name.to_string());
        self.readers.read(move |c| reader::load_alias(c, &region, &alias_name)).await
    }

    async fn list_aliases(&self, region: &str) -> StoreResult<Vec<AliasRecord>> {
        let region = region.to_string();
        self.readers.read(move |c| reader::list_aliases(c, &region)).await
    }

    async fn write_alias(&self, write: AliasWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.write_with_events(WriteOp::Alias(write), Events::Own(audit)).await.map(drop)
    }

    async fn rewrap_secret_versions(&self, arn: &str, swaps: Vec<EnvelopeSwap<String>>) -> StoreResult<usize> {
        self.write(WriteOp::RewrapSecret { arn: arn.to_string(), swaps }).await
    }

    async fn rewrap_parameter_versions(
        &self,
        region: &str,
        name: &str,
        swaps: Vec<EnvelopeSwap<i64>>,
    ) -> StoreResult<usize> {
        self.write(WriteOp::RewrapParameter { region: region.to_string(), name: name.to_string(), swaps }).await
    }

    async fn load_iam(&self) -> StoreResult<(u64, Vec<IamEntityRecord>)> {
        self.readers.read(reader::load_iam).await
    }

    async fn iam_generation(&self) -> StoreResult<u64> {
        self.readers.read(reader::iam_generation).await
    }

    async fn write_iam(&self, writes: Vec<IamWrite>, audit: Option<AuditAppend>) -> StoreResult<u64> {
        // The writer answers an IAM batch with the new generation.
        let generation = self.write_with_events(WriteOp::Iam(writes), Events::Own(audit)).await?.rows;
        u64::try_from(generation).map_err(|_| error::corrupt(format!("IAM generation {generation} out of range")))
    }

    async fn list_access_keys(&self, user_name: &str) -> StoreResult<Vec<AccessKeyRecord>> {
        let user_name = user_name.to_string();
        self.readers.read(move |c| reader::list_access_keys(c, &user_name)).await
    }

    async fn append_audit(&self, events: AuditBatch) -> StoreResult<AuditHead> {
        if events.is_empty() {
            // Nothing to chain: the committed head, without a turn of the writer.
            return self.audit_head().await;
        }
        Ok(self.write_with_events(WriteOp::Events, Events::Shared(events)).await?.head)
    }

    async fn audit_head(&self) -> StoreResult<AuditHead> {
        self.readers.read(audit::head).await
    }

    async fn audit_oldest_seq(&self) -> StoreResult<Option<u64>> {
        self.readers.read(audit::oldest_seq).await
    }

    async fn query_audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        self.readers.read(move |c| audit::query(c, &query)).await
    }

    async fn audit_records_from(&self, from_seq: u64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        self.readers.read(move |c| audit::records_from(c, from_seq, limit)).await
    }

    async fn audit_seq_at(&self, time_ms: EpochMillis) -> StoreResult<Option<u64>> {
        self.readers.read(move |c| audit::seq_at(c, time_ms)).await
    }

    async fn append_audit_digest(&self, expected_latest: u64, digest: AuditDigestAppend) -> StoreResult<u64> {
        let number = self.write(WriteOp::AuditDigest { expected_latest, digest }).await?;
        u64::try_from(number).map_err(|_| error::corrupt(format!("digest number {number} out of range")))
    }

    async fn audit_digests(&self, from_number: u64, limit: usize) -> StoreResult<Vec<AuditDigestRecord>> {
        self.readers.read(move |c| audit::digests(c, from_number, limit)).await
    }

    async fn latest_audit_digest(&self) -> StoreResult<Option<AuditDigestRecord>> {
        self.readers.read(audit::latest_digest).await
    }

    async fn prune_audit(&self, before_seq: u64, keep_digests_from: u64, limit: usize) -> StoreResult<u64> {
        let pruned = self.write(WriteOp::PruneAudit { before_seq, keep_digests_from, limit }).await?;
        u64::try_from(pruned).map_err(|_| error::corrupt(format!("{pruned} pruned records out of range")))
    }

    async fn list_settings(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        self.readers.read(reader::list_settings).await
    }

    async fn list_regions(&self) -> StoreResult<Vec<String>> {
        self.readers.read(reader::list_regions).await
    }

    async fn list_all_access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>> {
        self.readers.read(reader::list_all_access_keys).await
    }

    async fn start_audit_log_at(&self, head: AuditHead, last_digest_number: u64) -> StoreResult<()> {
        if self.read_only {
            return Err(unavailable("the database is open read-only"));
        }
        // On a connection of its own, not the writer's: the writer notices another connection's commit
        // (`PRAGMA data_version`) and reloads the chain's head before its next append.
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || audit::start_log_at(&path, head, last_digest_number))
            .await
            .map_err(|e| unavailable(format!("starting the audit log failed: {e}")))?
    }
}

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod tests;
