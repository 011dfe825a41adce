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
//! Schema (`schema.rs`): versioned migrations embedded from `migrations/NNNN_name.sql`, tracked in
//! `schema_version`; a file written by a newer Coffer is refused with `SchemaTooNew`, untouched.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use coffer_store::{
    AccessKeyRecord, AliasRecord, AliasWrite, EnvelopeSwap, EpochMillis, IamEntityRecord, IamWrite, KmsKeyRecord,
    KmsKeyState, KmsKeyWrite, ParameterQuery, ParameterState, ParameterWrite, SecretRecord, SecretState, SecretWrite,
    Store, StoreError, StoreResult,
};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

mod error;
mod reader;
mod schema;
mod writer;

pub use reader::READ_POOL_SIZE;
pub use schema::SCHEMA_VERSION;
pub use writer::{WriterStats, MAX_BATCH};

use error::{map_sqlite, unavailable};
use reader::{Key, ReadPool};
use writer::{Counters, Job, WriteOp, WriteReply};

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
            readers: ReadPool::new(&path),
            path,
            writer: Some(tx),
            writer_thread: Some(writer_thread),
            checkpoint_stop: Some(stop_tx),
            checkpoint_thread: Some(checkpoint_thread),
            counters,
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

    async fn write(&self, op: WriteOp) -> WriteReply {
        let sender = self.writer.as_ref().ok_or_else(writer_stopped)?;
        let (reply, answer) = oneshot::channel();
        sender.send(Job { op, reply }).await.map_err(|_| writer_stopped())?;
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

    async fn write_secret(&self, write: SecretWrite) -> StoreResult<()> {
        self.write(WriteOp::Secret(Box::new(write))).await.map(drop)
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

    async fn write_parameter(&self, write: ParameterWrite) -> StoreResult<()> {
        self.write(WriteOp::Parameter(Box::new(write))).await.map(drop)
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

    async fn write_kms_key(&self, write: KmsKeyWrite) -> StoreResult<()> {
        self.write(WriteOp::KmsKey(Box::new(write))).await.map(drop)
    }

    async fn load_alias(&self, region: &str, alias_name: &str) -> StoreResult<Option<AliasRecord>> {
        let (region, alias_name) = (region.to_string(), alias_name.to_string());
        self.readers.read(move |c| reader::load_alias(c, &region, &alias_name)).await
    }

    async fn list_aliases(&self, region: &str) -> StoreResult<Vec<AliasRecord>> {
        let region = region.to_string();
        self.readers.read(move |c| reader::list_aliases(c, &region)).await
    }

    async fn write_alias(&self, write: AliasWrite) -> StoreResult<()> {
        self.write(WriteOp::Alias(write)).await.map(drop)
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

    async fn write_iam(&self, writes: Vec<IamWrite>) -> StoreResult<u64> {
        // The writer answers an IAM batch with the new generation.
        let generation = self.write(WriteOp::Iam(writes)).await?;
        u64::try_from(generation).map_err(|_| error::corrupt(format!("IAM generation {generation} out of range")))
    }

    async fn list_access_keys(&self, user_name: &str) -> StoreResult<Vec<AccessKeyRecord>> {
        let user_name = user_name.to_string();
        self.readers.read(move |c| reader::list_access_keys(c, &user_name)).await
    }
}

#[cfg(test)]
mod tests;
