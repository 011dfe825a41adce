//! Coffer's PostgreSQL storage backend: several Coffer nodes over one shared database.
//!
//! [`PostgresStore`] implements [`coffer_store::Store`] and passes the shared conformance suite. It
//! talks to the server through `tokio-postgres` with a `deadpool-postgres` connection pool; every
//! connection keeps its own prepared-statement cache.
//!
//! Selecting it: a standard URL, `postgres://user[:password]@host[:port]/dbname[?param=value&...]`
//! (libpq's key=value form works too). Each installation lives in one schema: the connection's
//! current schema, i.e. the first existing schema of its `search_path` (`public` by default; give
//! another with `options=-csearch_path%3Dcoffer`). Connections are plain TCP for now (no TLS).
//!
//! Writes (`write.rs`): each decided change is one READ COMMITTED transaction. Compare-and-swap on a
//! record's revision is a conditional UPDATE, whose row lock and re-check make it hold across nodes;
//! serialization failures and deadlocks, which PostgreSQL answers by aborting the whole transaction,
//! are retried a bounded number of times ([`MAX_ATTEMPTS`]). A write is acknowledged only after its
//! COMMIT returned, i.e. once the server made it durable (as configured there: `synchronous_commit`).
//!
//! The audit log: a change's event is chained in the change's own transaction; every append locks the
//! one chain-head row, so appends from all nodes form one chain without forks or gaps (`write.rs`).
//! Reads of the log are in `audit.rs`.
//!
//! Schema (`schema.rs`): versioned migrations embedded from `migrations/NNNN_name.sql`, applied at open
//! in one transaction under an advisory lock and recorded in `schema_version`; a schema written by a
//! newer Coffer is refused with `SchemaTooNew`, untouched.
//!
//! Change feed (`changes.rs`): each write of a secret, parameter or KMS key notifies the channel
//! `coffer_changes` in its own transaction; [`PostgresStore`]'s `change_feed` listens on a connection of
//! its own and hands the notices to the service, which drops the cached copies they name.
//!
//! Errors (`error.rs`): a server that cannot be reached is [`StoreError::Unavailable`], never a panic;
//! messages name the server (host, port, database) but never a password, and never a stored value.

use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use coffer_store::{
    AccessKeyRecord, AliasRecord, AliasWrite, AuditAppend, AuditBatch, AuditDigestAppend, AuditDigestRecord, AuditHead,
    AuditQuery, AuditRecord, ChangeNotice, EnvelopeSwap, EpochMillis, IamEntityRecord, IamWrite, KmsKeyRecord,
    KmsKeyState, KmsKeyWrite, ParameterQuery, ParameterState, ParameterWrite, SecretRecord, SecretState, SecretWrite,
    Store, StoreError, StoreResult,
};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::sync::{broadcast, watch};
use tokio_postgres::config::Host;
use tokio_postgres::{IsolationLevel, NoTls};

mod audit;
mod batch;
mod changes;
mod error;
mod leader;
mod read;
mod schema;
mod write;

pub use schema::SCHEMA_VERSION;

use batch::{BatchedOp, WriteQueue};
use error::{map_pg, map_pool, TxError};
use write::{Done, WriteOp};

/// How often a transaction aborted by a serialization failure or a deadlock is attempted in all.
pub const MAX_ATTEMPTS: u32 = 5;

/// How the connection pool behaves.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// The most connections this store opens (and so the most statements it runs at once).
    pub max_connections: usize,
    /// How long a request waits for a free connection before it fails with `Unavailable`.
    pub wait_timeout: Duration,
    /// How long opening a connection may take, when the URL does not say (`connect_timeout`).
    pub connect_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: 16,
            wait_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Parses a PostgreSQL URL (`postgres://user@host:port/db?...`) or libpq key=value string. The error
/// names what is wrong with it, never the URL itself (it may hold a password).
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, String> {
    tokio_postgres::Config::from_str(url).map_err(|e| format!("invalid PostgreSQL URL: {e}"))
}

/// `host:port/dbname` of a connection configuration, for logs and errors (no user, no password).
pub fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// The PostgreSQL [`Store`]. Cheap to share behind an `Arc`; all methods take `&self`. Dropping it
/// closes its idle connections and stops its change listener.
pub struct PostgresStore {
    pool: Pool,
    /// `host:port/dbname`, for messages.
    server: Arc<str>,
    /// The connection configuration, for the change listener's own connection.
    config: tokio_postgres::Config,
    /// The change feed, once someone asked for it (the listener's connection is opened only then).
    feed: Mutex<Option<broadcast::Sender<ChangeNotice>>>,
    /// Stops the change listener when set, or when dropped with the store.
    stop_listener: watch::Sender<bool>,
    /// The scheduler lock's connection while this node leads.
    leadership: leader::Leadership,
    /// The group-commit queue of record and audit writes (`batch.rs`), started by the first of them on
    /// the runtime it runs on.
    queue: OnceLock<WriteQueue>,
}

impl PostgresStore {
    /// Connects to the database a URL names, with the default [`PoolOptions`], and applies pending
    /// migrations. See [`PostgresStore::open_with`].
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        let config = parse_url(url).map_err(StoreError::Unavailable)?;
        Self::open_with(config, PoolOptions::default()).await
    }

    /// Connects with a connection configuration and pool options, and applies pending migrations.
    ///
    /// Errors: [`StoreError::SchemaTooNew`] if the schema was written by a newer Coffer (nothing is
    /// changed); [`StoreError::Unavailable`] if the server cannot be reached, refuses the login, or the
    /// `search_path` names no existing schema.
    pub async fn open_with(config: tokio_postgres::Config, options: PoolOptions) -> StoreResult<PostgresStore> {
        Self::connect(config, options, true).await
    }

    /// Connects to an existing installation without changing it: nothing is migrated (a schema of
    /// another version than this binary's is refused), and every transaction is read-only. For the
    /// offline checks (`coffer audit verify`) and the source of a copy (`coffer storage migrate`).
    pub async fn open_read_only(url: &str) -> StoreResult<PostgresStore> {
        let mut config = parse_url(url).map_err(StoreError::Unavailable)?;
        let options = format!("{} -c default_transaction_read_only=on", config.get_options().unwrap_or_default());
        config.options(options.trim_start());
        Self::connect(config, PoolOptions::default(), false).await
    }

    async fn connect(
        mut config: tokio_postgres::Config,
        options: PoolOptions,
        migrate: bool,
    ) -> StoreResult<PostgresStore> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("coffer");
        }
        let server: Arc<str> = describe(&config).into();
        // Fast recycling: a connection the server closed is noticed by tokio-postgres and dropped
        // instead of being handed out again; a health-check query per checkout would cost a round trip.
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("postgres: building the connection pool: {e}")))?;
        let store = PostgresStore {
            pool,
            server,
            config,
            feed: Mutex::new(None),
            stop_listener: watch::channel(false).0,
            leadership: leader::Leadership::default(),
            queue: OnceLock::new(),
        };
        let mut client = store.client().await?;
        if migrate {
            schema::migrate(&mut client).await.map_err(|e| store.context(e))?;
        } else {
            schema::require_current(&client).await.map_err(|e| store.context(e))?;
        }
        drop(client);
        tracing::info!(server = %store.server, "opened PostgreSQL storage");
        Ok(store)
    }

    /// `host:port/dbname` of the server.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Closes the pool: idle connections now, the others as they are returned. Stops the change
    /// listener.
    pub fn close(&self) {
        self.stop_listener.send_replace(true);
        self.pool.close();
    }

    /// Names the server in an `Unavailable`, so an operator knows which database is down.
    fn context(&self, e: StoreError) -> StoreError {
        match e {
            // Named once, however many layers add the context.
            StoreError::Unavailable(m) if m.ends_with(&format!("[{}]", self.server)) => StoreError::Unavailable(m),
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("{m} [{}]", self.server)),
            other => other,
        }
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(|e| self.context(map_pool(e)))
    }

    /// Applies one write, and chains `events` after it, in one transaction; retries the transaction
    /// when PostgreSQL aborted it for a serialization failure or a deadlock.
    async fn write(&self, op: WriteOp<'_>, events: &[AuditAppend]) -> StoreResult<Done> {
        let mut attempt = 1;
        loop {
            match self.try_write(&op, events).await {
                Ok(done) => return Ok(done),
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, "a write lost a race in PostgreSQL; retrying it");
                    // A short, growing pause, jittered so two nodes that collided do not collide again.
                    let base = 2u64 << attempt;
                    let jitter = u64::from(rand::random::<u8>()) % base;
                    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
                    attempt += 1;
                }
                Err(e) => {
                    if e.is_retryable() {
                        tracing::warn!(attempts = attempt, "a write kept losing races in PostgreSQL; giving up");
                    }
                    return Err(self.context(e.into_store()));
                }
            }
        }
    }

    /// Applies one change and chains its events through the node's group-commit queue (`batch.rs`):
    /// it shares a transaction, and so a WAL flush and a turn on the audit chain's head, with the
    /// node's other writes of the moment. Retried like [`PostgresStore::write`].
    async fn write_batched(&self, op: BatchedOp, events: AuditBatch) -> StoreResult<Done> {
        let queue = self.queue.get_or_init(|| WriteQueue::start(self.pool.clone()));
        let mut op = op;
        let mut attempt = 1;
        loop {
            let (returned, result) = queue.submit(op, events.clone()).await;
            match (result, returned) {
                (Ok(done), _) => return Ok(done),
                (Err(e), Some(back)) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, "a batched write lost a race in PostgreSQL; retrying it");
                    let base = 2u64 << attempt;
                    let jitter = u64::from(rand::random::<u8>()) % base;
                    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
                    attempt += 1;
                    op = back;
                }
                (Err(e), _) => {
                    if e.is_retryable() {
                        tracing::warn!(attempts = attempt, "a write kept losing races in PostgreSQL; giving up");
                    }
                    return Err(self.context(e.into_store()));
                }
            }
        }
    }

    /// One attempt. A failure before COMMIT rolls the transaction back (dropping it does), so nothing
    /// of a failed attempt stays. A failure of COMMIT itself is not retried: whether it committed is
    /// unknown, and running the write again could apply it twice; it answers `Unavailable`.
    async fn try_write(&self, op: &WriteOp<'_>, events: &[AuditAppend]) -> Result<Done, TxError> {
        let mut client = self.client().await?;
        let tx = client.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start().await?;
        let done = write::apply(&tx, op, events).await?;
        tx.commit().await.map_err(|e| TxError::Store(map_pg(e)))?;
        Ok(done)
    }
}

/// A write's optional event as the batch the queue takes.
fn one_event(audit: Option<AuditAppend>) -> AuditBatch {
    Arc::new(audit.into_iter().collect())
}

fn count_to_usize(n: u64) -> StoreResult<usize> {
    usize::try_from(n).map_err(|_| error::corrupt(format!("count {n} out of range")))
}

/// Runs a read function on a pooled connection: `read!(self, module::function, args...)`.
macro_rules! read {
    ($store:ident, $f:path $(, $arg:expr)*) => {{
        let client = $store.client().await?;
        $f(&client $(, $arg)*).await.map_err(|e| $store.context(e))
    }};
}

#[async_trait]
impl Store for PostgresStore {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    /// The first call starts the listener (see `changes.rs`); it needs a Tokio runtime, and without
    /// one there is no feed.
    fn change_feed(&self) -> Option<broadcast::Receiver<ChangeNotice>> {
        // Nothing panics while the lock is held: a poisoned lock still guards a consistent value.
        let mut feed = self.feed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *self.stop_listener.borrow() {
            // Closed: a listener started now would outlive the pool it belongs with.
            return None;
        }
        if let Some(sender) = feed.as_ref() {
            return Some(sender.subscribe());
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no Tokio runtime to listen for other nodes' changes on");
            return None;
        };
        let (sender, receiver) = broadcast::channel(changes::FEED_CAPACITY);
        runtime.spawn(changes::listen(
            self.config.clone(),
            self.server.clone(),
            sender.clone(),
            self.stop_listener.subscribe(),
        ));
        *feed = Some(sender);
        Some(receiver)
    }

    async fn hold_scheduler_leadership(&self) -> StoreResult<bool> {
        self.leadership.hold(&self.config, &self.server).await.map_err(|e| self.context(e))
    }

    async fn release_scheduler_leadership(&self) {
        self.leadership.release().await
    }

    async fn load_secret_by_name(&self, region: &str, name: &str) -> StoreResult<Option<SecretState>> {
        read!(self, read::load_secret_by_name, region, name)
    }

    async fn load_secret_by_arn(&self, arn: &str) -> StoreResult<Option<SecretState>> {
        read!(self, read::load_secret_by_arn, arn)
    }

    async fn list_secrets(&self, region: &str) -> StoreResult<Vec<SecretRecord>> {
        read!(self, read::list_secrets, region)
    }

    async fn secret_revision(&self, arn: &str) -> StoreResult<Option<u64>> {
        read!(self, read::secret_revision, arn)
    }

    async fn parameter_revision(&self, region: &str, name: &str) -> StoreResult<Option<u64>> {
        read!(self, read::parameter_revision, region, name)
    }

    async fn write_secret(&self, write: SecretWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.write_batched(BatchedOp::Secret(write), one_event(audit)).await.map(drop)
    }

    async fn touch_secret_accessed(&self, arn: &str, day: EpochMillis) -> StoreResult<()> {
        self.write_batched(BatchedOp::TouchAccessed { arn: arn.to_string(), day }, AuditBatch::default())
            .await
            .map(drop)
    }

    async fn secrets_due_for_deletion(&self, now: EpochMillis) -> StoreResult<Vec<(String, u64)>> {
        read!(self, read::due_for_deletion, now)
    }

    async fn insert_access_key(&self, key: AccessKeyRecord) -> StoreResult<()> {
        self.write(WriteOp::InsertAccessKey(&key), &[]).await.map(drop)
    }

    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        read!(self, read::access_key, access_key_id)
    }

    async fn load_parameter(&self, region: &str, name: &str) -> StoreResult<Option<ParameterState>> {
        read!(self, read::load_parameter, region, name)
    }

    async fn write_parameter(&self, write: ParameterWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.write_batched(BatchedOp::Parameter(write), one_event(audit)).await.map(drop)
    }

    async fn list_parameters(&self, query: ParameterQuery) -> StoreResult<Vec<ParameterState>> {
        read!(self, read::list_parameters, &query)
    }

    async fn list_parameter_names(&self, query: ParameterQuery) -> StoreResult<Vec<String>> {
        read!(self, read::list_parameter_names, &query)
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        read!(self, read::setting, key)
    }

    async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> StoreResult<bool> {
        Ok(self.write(WriteOp::PutSettingIfAbsent { key, value }, &[]).await?.count == 1)
    }

    async fn load_kms_key(&self, region: &str, key_id: &str) -> StoreResult<Option<KmsKeyState>> {
        read!(self, read::load_kms_key, region, key_id)
    }

    async fn list_kms_keys(&self, region: &str) -> StoreResult<Vec<KmsKeyRecord>> {
        read!(self, read::list_kms_keys, region)
    }

    async fn write_kms_key(&self, write: KmsKeyWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.write_batched(BatchedOp::KmsKey(write), one_event(audit)).await.map(drop)
    }

    async fn load_alias(&self, region: &str, alias_name: &str) -> StoreResult<Option<AliasRecord>> {
        read!(self, read::load_alias, region, alias_name)
    }

    async fn list_aliases(&self, region: &str) -> StoreResult<Vec<AliasRecord>> {
        read!(self, read::list_aliases, region)
    }

    async fn write_alias(&self, write: AliasWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.write_batched(BatchedOp::Alias(write), one_event(audit)).await.map(drop)
    }

    async fn rewrap_secret_versions(&self, arn: &str, swaps: Vec<EnvelopeSwap<String>>) -> StoreResult<usize> {
        count_to_usize(self.write(WriteOp::RewrapSecret { arn, swaps: &swaps }, &[]).await?.count)
    }

    async fn rewrap_parameter_versions(
        &self,
        region: &str,
        name: &str,
        swaps: Vec<EnvelopeSwap<i64>>,
    ) -> StoreResult<usize> {
        count_to_usize(self.write(WriteOp::RewrapParameter { region, name, swaps: &swaps }, &[]).await?.count)
    }

    async fn load_iam(&self) -> StoreResult<(u64, Vec<IamEntityRecord>)> {
        read!(self, read::load_iam)
    }

    async fn iam_generation(&self) -> StoreResult<u64> {
        read!(self, read::iam_generation)
    }

    async fn write_iam(&self, writes: Vec<IamWrite>, audit: Option<AuditAppend>) -> StoreResult<u64> {
        // The batch answers with the new generation.
        Ok(self.write(WriteOp::Iam(&writes), audit.as_slice()).await?.count)
    }

    async fn list_access_keys(&self, user_name: &str) -> StoreResult<Vec<AccessKeyRecord>> {
        read!(self, read::list_access_keys, user_name)
    }

    async fn replace_setting(&self, key: &str, expected: &[u8], value: &[u8]) -> StoreResult<bool> {
        Ok(self.write(WriteOp::ReplaceSetting { key, expected, value }, &[]).await?.count == 1)
    }

    async fn append_audit(&self, events: AuditBatch) -> StoreResult<AuditHead> {
        if events.is_empty() {
            // Nothing to chain: the committed head, without a transaction.
            return self.audit_head().await;
        }
        let done = self.write_batched(BatchedOp::Events, events).await?;
        done.head.ok_or_else(|| error::corrupt("appending audit events returned no head"))
    }

    async fn audit_head(&self) -> StoreResult<AuditHead> {
        read!(self, audit::head)
    }

    async fn audit_oldest_seq(&self) -> StoreResult<Option<u64>> {
        read!(self, audit::oldest_seq)
    }

    async fn query_audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        read!(self, audit::query_audit, &query)
    }

    async fn audit_records_from(&self, from_seq: u64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        read!(self, audit::records_from, from_seq, limit)
    }

    async fn audit_seq_at(&self, time_ms: EpochMillis) -> StoreResult<Option<u64>> {
        read!(self, audit::seq_at, time_ms)
    }

    async fn append_audit_digest(&self, expected_latest: u64, digest: AuditDigestAppend) -> StoreResult<u64> {
        Ok(self.write(WriteOp::AuditDigest { expected_latest, digest: &digest }, &[]).await?.count)
    }

    async fn audit_digests(&self, from_number: u64, limit: usize) -> StoreResult<Vec<AuditDigestRecord>> {
        read!(self, audit::digests, from_number, limit)
    }

    async fn latest_audit_digest(&self) -> StoreResult<Option<AuditDigestRecord>> {
        read!(self, audit::latest_digest)
    }

    async fn prune_audit(&self, before_seq: u64, keep_digests_from: u64, limit: usize) -> StoreResult<u64> {
        Ok(self.write(WriteOp::PruneAudit { before_seq, keep_digests_from, limit }, &[]).await?.count)
    }

    async fn list_settings(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        read!(self, read::list_settings)
    }

    async fn list_regions(&self) -> StoreResult<Vec<String>> {
        read!(self, read::list_regions)
    }

    async fn list_all_access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>> {
        read!(self, read::list_all_access_keys)
    }

    async fn start_audit_log_at(&self, head: AuditHead, last_digest_number: u64) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_pg)?;
        let seq = i64::try_from(head.seq)
            .map_err(|_| StoreError::InvalidWrite(format!("audit seq {} out of range", head.seq)))?;
        let number = i64::try_from(last_digest_number)
            .map_err(|_| StoreError::InvalidWrite(format!("digest number {last_digest_number} out of range")))?;
        // Both head rows locked, then the emptiness checked under the locks: an append racing this
        // either committed first (and this refuses) or waits for it.
        let untouched: bool = tx
            .query_one(
                "SELECT h.seq = 0 AND d.number = 0 AND NOT EXISTS (SELECT 1 FROM audit_events) \
                 AND NOT EXISTS (SELECT 1 FROM audit_digests) \
                 FROM audit_head h, audit_digest_head d WHERE h.id = 0 AND d.id = 0 FOR UPDATE",
                &[],
            )
            .await
            .map_err(map_pg)?
            .try_get(0)
            .map_err(|e| error::corrupt(format!("postgres: reading the audit head: {e}")))?;
        if !untouched {
            return Err(StoreError::Conflict);
        }
        tx.execute("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 0", &[&seq, &head.hash.as_slice()])
            .await
            .map_err(map_pg)?;
        tx.execute("UPDATE audit_digest_head SET number = $1 WHERE id = 0", &[&number]).await.map_err(map_pg)?;
        tx.commit().await.map_err(|e| self.context(map_pg(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_describe_without_credentials() {
        let config =
            parse_url("postgres://coffer:s3cret@db.example:6543/vault?options=-csearch_path%3Dcoffer").unwrap();
        assert_eq!(describe(&config), "db.example:6543/vault");
        assert_eq!(config.get_options(), Some("-csearch_path=coffer"));
        let err = parse_url("postgres://coffer:s3cret@db.example/vault?bogus_option=1").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
