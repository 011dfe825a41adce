//! The writer thread and group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit costs an fsync of the
//! WAL — typically 0.1–10 ms depending on the disk. Committing each write on its own would cap durable
//! writes at one fsync each, however many requests are waiting. Instead one dedicated thread owns the
//! only writing connection and receives writes through a channel. Each round it takes whatever is
//! queued (up to [`MAX_BATCH`]), applies the whole batch in ONE transaction with a SAVEPOINT around
//! each write, commits once, and only then answers every caller. One fsync covers the batch, so
//! throughput grows with concurrency: while one commit is flushing, the next batch is queueing.
//!
//! Isolation within a batch: a write that fails — a lost compare-and-swap, a taken name — is rolled
//! back to its own savepoint and answered with its own error; the others still commit. A failure of
//! the batch as a whole (BEGIN or COMMIT failing, an I/O error that aborts the transaction) answers
//! every write in it with that error and commits none of them: no write is acknowledged before it is
//! durable, and none is half-applied.
//!
//! Audit events ride along: a job carries the events to chain after its change (`Job::events`), in
//! the same savepoint, so a change and its event commit together or not at all; the chain's head is
//! tracked in memory across the batch (see `audit.rs`).
//!
//! No write is lost on shutdown: the thread exits only when the channel is closed *and* drained.
//!
//! The checkpointer (a second, mostly idle thread) folds the WAL back into the database file with
//! PASSIVE checkpoints, which never block the writer or readers; see [`checkpoint_loop`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coffer_store::{
    AccessKeyRecord, AliasWrite, AuditAppend, AuditBatch, AuditDigestAppend, AuditHead, EnvelopeSwap, EpochMillis,
    IamWrite, KeyMaterialRecord, KmsKeyWrite, ParameterVersionRecord, ParameterWrite, SecretWrite, StoreError,
    StoreResult, VersionRecord,
};
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use crate::audit::{self, Chain, ChainState};
use crate::error::{corrupt, map_sqlite, unavailable};

/// The most writes one transaction carries. Bounds the latency a single commit adds to its writes and
/// the work lost to a failed batch.
pub const MAX_BATCH: usize = 256;

/// How many writes may wait in the channel before callers are made to wait (backpressure).
pub(crate) const QUEUE_CAPACITY: usize = 4 * MAX_BATCH;

/// A WAL longer than this (frames, i.e. pages; 64 MiB of 4 KiB pages) is restarted by the
/// checkpointer (see [`checkpoint_loop`]).
const WAL_RESTART_FRAMES: i64 = 16_384;

/// How long a RESTART checkpoint may wait for its turn (and so hold new writes back).
const WAL_RESTART_WAIT: Duration = Duration::from_millis(100);

/// How often the checkpointer runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// A write waiting for the writer thread.
pub(crate) enum WriteOp {
    Secret(Box<SecretWrite>),
    Parameter(Box<ParameterWrite>),
    TouchAccessed { arn: String, day: EpochMillis },
    InsertAccessKey(AccessKeyRecord),
    PutSettingIfAbsent { key: String, value: Vec<u8> },
    ReplaceSetting { key: String, expected: Vec<u8>, value: Vec<u8> },
    KmsKey(Box<KmsKeyWrite>),
    Alias(AliasWrite),
    RewrapSecret { arn: String, swaps: Vec<EnvelopeSwap<String>> },
    RewrapParameter { region: String, name: String, swaps: Vec<EnvelopeSwap<i64>> },
    // A whole IAM batch is ONE operation, so its savepoint makes it all-or-nothing (`apply_iam_batch`).
    Iam(Vec<IamWrite>),
    // No change: the job's events are all there is (`append_audit`).
    Events,
    AuditDigest { expected_latest: u64, digest: AuditDigestAppend },
    PruneAudit { before_seq: u64, keep_digests_from: u64, limit: usize },
}

/// What a write answers: how many rows it changed (1 for a decided change; 0 or 1 for the conditional
/// setting writes; the envelopes replaced for a re-wrap; the records pruned), or for an IAM batch the
/// new IAM generation, or for a digest its number; and the chain's head after the job's events.
pub(crate) struct Done {
    pub rows: usize,
    pub head: AuditHead,
}

pub(crate) type WriteReply = StoreResult<Done>;

/// A job's events: a change's own event, or a batch the caller shares (and keeps for a retry).
pub(crate) enum Events {
    Own(Option<AuditAppend>),
    Shared(AuditBatch),
}

impl Events {
    pub fn as_slice(&self) -> &[AuditAppend] {
        match self {
            Events::Own(event) => event.as_slice(),
            Events::Shared(batch) => batch.as_slice(),
        }
    }
}

pub(crate) struct Job {
    pub op: WriteOp,
    /// Chained after `op` applied, in its savepoint: both commit, or neither does.
    pub events: Events,
    pub reply: oneshot::Sender<WriteReply>,
}

/// A snapshot of the writer's counters, for tests, status pages and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Writes answered (successful or not).
    pub writes: u64,
    /// Transactions committed. `writes / commits` is the average batch size.
    pub commits: u64,
    /// Batches that failed as a whole (every write in them answered with the error).
    pub failed_batches: u64,
    /// The largest batch so far.
    pub largest_batch: u64,
}

/// The live counters behind [`WriterStats`]; relaxed atomics, a few nanoseconds per batch.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    writes: AtomicU64,
    commits: AtomicU64,
    failed_batches: AtomicU64,
    largest_batch: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> WriterStats {
        WriterStats {
            writes: self.writes.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
        }
    }
}

/// The writer thread's body: runs until every sender is gone and the queue is drained.
pub(crate) fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<Job>, counters: Arc<Counters>) {
    let mut chain = Chain::load(&conn);
    // How far the audit index is folded (re-read at each fold; another process may fold too).
    let mut folded = crate::audit::indexed_seq(&conn).map_or(0, |s| u64::try_from(s).unwrap_or(0));
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        let outcome = apply_batch(&mut conn, &batch, &mut chain);
        counters.writes.fetch_add(n, Ordering::Relaxed);
        counters.largest_batch.fetch_max(n, Ordering::Relaxed);
        match outcome {
            Ok(replies) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                for (job, reply) in batch.drain(..).zip(replies) {
                    let _ = job.reply.send(reply); // the caller may have gone away; the write stands
                }
                // After the answers: folding is the writer's own work, no caller waits for it.
                if chain.head_seq().is_some_and(|head| head.saturating_sub(folded) >= crate::audit::FOLD_AT) {
                    match fold_audit_index(&conn) {
                        Ok(to) => folded = to,
                        Err(e) => {
                            tracing::warn!(error = %e, "folding the audit index failed; retried after the next batch")
                        }
                    }
                }
            }
            Err(e) => {
                counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, writes = n, "a database commit failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One fold of the audit index in its own transaction; returns how far the index now reaches.
fn fold_audit_index(conn: &Connection) -> StoreResult<u64> {
    rollback(conn);
    exec(conn, "BEGIN IMMEDIATE", [])?;
    let folded = crate::audit::fold(conn).and_then(|_| crate::audit::indexed_seq(conn));
    match folded.and_then(|to| exec(conn, "COMMIT", []).map(|_| to)) {
        Ok(to) => Ok(u64::try_from(to).unwrap_or(0)),
        Err(e) => {
            rollback(conn);
            Err(e)
        }
    }
}

/// Runs a statement through the connection's statement cache: the writer executes the same handful of
/// statements thousands of times a second, and parsing SQL each time would dominate.
fn exec<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> StoreResult<usize> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute(params)).map_err(map_sqlite)
}

/// One transaction for the whole batch; each write isolated by its own savepoint. `Ok` means committed
/// (individual writes may still have failed); `Err` means nothing in the batch was applied.
fn apply_batch(conn: &mut Connection, batch: &[Job], chain: &mut Chain) -> StoreResult<Vec<WriteReply>> {
    // A transaction left open by an earlier failure (a ROLLBACK that itself failed) would make every
    // later BEGIN fail; clear it so one bad moment does not wedge the writer for good.
    rollback(conn);
    exec(conn, "BEGIN IMMEDIATE", [])?;
    let outcome = apply_in_transaction(conn, batch, chain).and_then(|(replies, head)| {
        // The head row moves in the same transaction as the records it names.
        chain.save(conn, &head)?;
        exec(conn, "COMMIT", [])?;
        Ok((replies, head))
    });
    match outcome {
        Ok((replies, head)) => {
            chain.committed(head);
            Ok(replies)
        }
        Err(e) => {
            rollback(conn);
            // The batch's records are gone; so is any head computed from them.
            chain.reload(conn);
            Err(e)
        }
    }
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rolling back a failed batch failed");
        }
    }
}

/// Applies every job in its own savepoint; returns the replies and the chain's head after the batch.
fn apply_in_transaction(
    conn: &Connection,
    batch: &[Job],
    chain: &mut Chain,
) -> StoreResult<(Vec<WriteReply>, ChainState)> {
    let mut head = chain.start(conn)?;
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        exec(conn, "SAVEPOINT w", [])?;
        let before = head;
        let reply = apply_one(conn, &job.op).and_then(|rows| {
            // Only once the change applied: a failed change must not consume a seq.
            head.append_all(conn, job.events.as_slice())?;
            Ok(Done { rows, head: head.head() })
        });
        if conn.is_autocommit() {
            // SQLite aborted the whole transaction (I/O error, disk full, ...): nothing of the batch
            // survives, so no write in it may be acknowledged.
            return Err(match reply {
                Err(e) => e,
                Ok(_) => unavailable("sqlite: the transaction was aborted"),
            });
        }
        if let Err(e) = &reply {
            if audit::is_chain_moved(e) {
                return Err(e.clone()); // the batch fails and the head is reloaded
            }
            exec(conn, "ROLLBACK TO w", [])?;
            head = before;
        }
        exec(conn, "RELEASE w", [])?;
        replies.push(reply);
    }
    Ok((replies, head))
}

fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| corrupt(format!("encoding JSON: {e}")))
}

pub(crate) fn revision_to_sql(r: u64) -> StoreResult<i64> {
    i64::try_from(r).map_err(|_| corrupt(format!("revision {r} out of range")))
}

/// Applies one job's change; answers as [`Done::rows`].
fn apply_one(conn: &Connection, op: &WriteOp) -> StoreResult<usize> {
    match op {
        WriteOp::Events => Ok(0),
        WriteOp::AuditDigest { expected_latest, digest } => audit::append_digest(conn, *expected_latest, digest),
        WriteOp::PruneAudit { before_seq, keep_digests_from, limit } => {
            audit::prune(conn, *before_seq, *keep_digests_from, *limit)
        }
        WriteOp::Secret(write) => apply_secret_write(conn, write).map(|()| 1),
        WriteOp::Parameter(write) => apply_parameter_write(conn, write).map(|()| 1),
        WriteOp::KmsKey(write) => apply_kms_key_write(conn, write).map(|()| 1),
        WriteOp::Alias(write) => apply_alias_write(conn, write).map(|()| 1),
        WriteOp::Iam(writes) => {
            let generation = apply_iam_batch(conn, writes)?;
            usize::try_from(generation).map_err(|_| corrupt(format!("IAM generation {generation} out of range")))
        }
        WriteOp::RewrapSecret { arn, swaps } => {
            let mut done = 0;
            for swap in swaps {
                done += exec(
                    conn,
                    "UPDATE secret_versions SET envelope = ?4 WHERE arn = ?1 AND version_id = ?2 AND envelope = ?3",
                    params![arn, swap.version, swap.old, swap.new],
                )?;
            }
            Ok(done)
        }
        WriteOp::RewrapParameter { region, name, swaps } => {
            let mut done = 0;
            for swap in swaps {
                done += exec(
                    conn,
                    "UPDATE parameter_versions SET envelope = ?5
                     WHERE region = ?1 AND name = ?2 AND version = ?3 AND envelope = ?4",
                    params![region, name, swap.version, swap.old, swap.new],
                )?;
            }
            Ok(done)
        }
        WriteOp::TouchAccessed { arn, day } => {
            // Skipped when unchanged: most reads on a day find it already recorded, and an unchanged row
            // costs no page write.
            exec(
                conn,
                "UPDATE secrets SET last_accessed = ?2 WHERE arn = ?1 AND last_accessed IS NOT ?2",
                params![arn, day],
            )?;
            Ok(1)
        }
        WriteOp::InsertAccessKey(k) => insert_access_key(conn, k).map(|()| 1),
        WriteOp::PutSettingIfAbsent { key, value } => {
            let n = exec(
                conn,
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, value],
            )?;
            Ok(n)
        }
        WriteOp::ReplaceSetting { key, expected, value } => {
            let n = exec(
                conn,
                "UPDATE settings SET value = ?3 WHERE key = ?1 AND value = ?2",
                params![key, expected, value],
            )?;
            Ok(n)
        }
    }
}

/// Inserts versions in order, numbering them after the secret's existing ones (`seq` keeps write order
/// among versions created in the same millisecond).
fn insert_versions(conn: &Connection, arn: &str, versions: &[VersionRecord], mut next_seq: i64) -> StoreResult<()> {
    for v in versions {
        exec(
            conn,
            "INSERT INTO secret_versions (arn, version_id, seq, stages, created, kind, envelope)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![arn, v.version_id, next_seq, to_json(&v.stages)?, v.created, v.kind.as_str(), v.envelope],
        )?;
        next_seq += 1;
    }
    Ok(())
}

/// After a compare-and-swap matched no row: tells a missing secret from a moved revision.
/// After a compare-and-swap matched no row: was the record gone (`NotFound`) or moved on (`Conflict`)?
/// `exists_sql` selects the record by the same key.
fn missing_or_conflict<P: rusqlite::Params>(conn: &Connection, exists_sql: &str, key: P) -> StoreError {
    let exists =
        conn.prepare_cached(exists_sql).and_then(|mut s| s.query_row(key, |_| Ok(())).optional()).map_err(map_sqlite);
    match exists {
        Ok(Some(())) => StoreError::Conflict,
        Ok(None) => StoreError::NotFound,
        Err(e) => e,
    }
}

fn apply_secret_write(conn: &Connection, write: &SecretWrite) -> StoreResult<()> {
    write.check()?;
    match write {
        SecretWrite::Create(state) => {
            let s = &state.secret;
            exec(
                conn,
                "INSERT INTO secrets (arn, region, name, description, kms_key_id, tags, created, last_changed,
                                      last_accessed, deletion_date, resource_policy, rotation, revision)
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
                    revision_to_sql(s.revision)?,
                ],
            )?;
            insert_versions(conn, &s.arn, &state.versions, 1)
        }
        SecretWrite::Update { expected_revision, secret: s, new_versions, stage_updates, deleted_versions } => {
            // The compare-and-swap itself: one statement, matched only at the expected revision. The last
            // access day only moves forward: a read recorded it without bumping the revision, and a writer
            // that loaded the secret before that read must not take it back.
            let changed = exec(
                conn,
                "UPDATE secrets SET description = ?3, kms_key_id = ?4, tags = ?5, last_changed = ?6,
                        last_accessed = MAX(COALESCE(last_accessed, ?7), COALESCE(?7, last_accessed)),
                        deletion_date = ?8, resource_policy = ?9, rotation = ?10, revision = ?11
                 WHERE arn = ?1 AND revision = ?2",
                params![
                    s.arn,
                    revision_to_sql(*expected_revision)?,
                    s.description,
                    s.kms_key_id,
                    to_json(&s.tags)?,
                    s.last_changed,
                    s.last_accessed,
                    s.deletion_date,
                    s.resource_policy,
                    to_json(&s.rotation)?,
                    revision_to_sql(s.revision)?,
                ],
            )?;
            if changed == 0 {
                return Err(missing_or_conflict(conn, "SELECT 1 FROM secrets WHERE arn = ?1", [&s.arn]));
            }
            for id in deleted_versions {
                exec(conn, "DELETE FROM secret_versions WHERE arn = ?1 AND version_id = ?2", params![s.arn, id])?;
            }
            for (id, stages) in stage_updates {
                exec(
                    conn,
                    "UPDATE secret_versions SET stages = ?3 WHERE arn = ?1 AND version_id = ?2",
                    params![s.arn, id, to_json(stages)?],
                )?;
            }
            if !new_versions.is_empty() {
                let next_seq: i64 = conn
                    .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM secret_versions WHERE arn = ?1")
                    .and_then(|mut st| st.query_row([&s.arn], |r| r.get(0)))
                    .map_err(map_sqlite)?;
                insert_versions(conn, &s.arn, new_versions, next_seq)?;
            }
            Ok(())
        }
        SecretWrite::Delete { arn, expected_revision } => {
            let changed = exec(
                conn,
                "DELETE FROM secrets WHERE arn = ?1 AND revision = ?2",
                params![arn, revision_to_sql(*expected_revision)?],
            )?;
            if changed == 0 {
                return Err(missing_or_conflict(conn, "SELECT 1 FROM secrets WHERE arn = ?1", [arn]));
            }
            exec(conn, "DELETE FROM secret_versions WHERE arn = ?1", [arn])?;
            Ok(())
        }
    }
}

/// The checkpointer thread's body: a PASSIVE checkpoint every [`CHECKPOINT_EVERY`] on its own
/// connection, until `stop` is signalled or dropped. PASSIVE copies what it can without waiting for
/// (or blocking) the writer or readers; the WAL is then reused from the start instead of growing.
///
/// Under sustained writes that reuse never comes: the writer restarts the WAL only when every frame in
/// it was copied back, and each passive pass ends behind the commits made meanwhile, so the WAL (and
/// with it every page lookup in it) would grow without bound. Once it holds more than
/// [`WAL_RESTART_FRAMES`], a RESTART checkpoint waits for the current commit, copies the little the
/// passive pass left and makes the next write start the WAL over (`journal_size_limit` then trims
/// the file): a short pause of the writer, instead of a log that never stops growing.
pub(crate) fn checkpoint_loop(conn: Connection, stop: std::sync::mpsc::Receiver<()>) {
    // Only a RESTART checkpoint waits (PASSIVE never does). While it waits for the writer and for
    // readers of older snapshots it holds new writes back: it gives up soon, to try again next round.
    if let Err(e) = conn.busy_timeout(WAL_RESTART_WAIT) {
        tracing::debug!(error = %e, "setting the checkpointer's busy timeout failed");
    }
    loop {
        match stop.recv_timeout(CHECKPOINT_EVERY) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // (busy, frames in the WAL, frames copied back)
                let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
                match passive {
                    Ok(frames) if frames > WAL_RESTART_FRAMES => {
                        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
                            tracing::debug!(error = %e, frames, "wal restart checkpoint skipped");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "wal checkpoint skipped"),
                }
            }
            _ => return,
        }
    }
}

fn insert_parameter_version(
    conn: &Connection,
    region: &str,
    name: &str,
    v: &ParameterVersionRecord,
) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO parameter_versions (region, name, version, meta, envelope) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![region, name, v.version, to_json(v)?, v.envelope],
    )?;
    Ok(())
}

fn apply_parameter_write(conn: &Connection, write: &ParameterWrite) -> StoreResult<()> {
    write.check()?;
    match write {
        ParameterWrite::Create(p) => {
            exec(
                conn,
                "INSERT INTO parameters (region, name, parent_path, tags, revision) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![p.region, p.name, p.parent_path, to_json(&p.tags)?, revision_to_sql(p.revision)?],
            )?;
            for v in &p.versions {
                insert_parameter_version(conn, &p.region, &p.name, v)?;
            }
            Ok(())
        }
        ParameterWrite::Update {
            expected_revision,
            region,
            name,
            revision,
            tags,
            new_version,
            label_updates,
            dropped_versions,
        } => {
            let changed = exec(
                conn,
                "UPDATE parameters SET tags = ?4, revision = ?5 WHERE region = ?1 AND name = ?2 AND revision = ?3",
                params![
                    region,
                    name,
                    revision_to_sql(*expected_revision)?,
                    to_json(tags)?,
                    revision_to_sql(*revision)?
                ],
            )?;
            if changed == 0 {
                return Err(missing_or_conflict(
                    conn,
                    "SELECT 1 FROM parameters WHERE region = ?1 AND name = ?2",
                    [region, name],
                ));
            }
            for version in dropped_versions {
                exec(
                    conn,
                    "DELETE FROM parameter_versions WHERE region = ?1 AND name = ?2 AND version = ?3",
                    params![region, name, version],
                )?;
            }
            for (version, labels) in label_updates {
                exec(
                    conn,
                    "UPDATE parameter_versions SET meta = json_set(meta, '$.labels', json(?4))
                     WHERE region = ?1 AND name = ?2 AND version = ?3",
                    params![region, name, version, to_json(labels)?],
                )?;
            }
            if let Some(v) = new_version {
                insert_parameter_version(conn, region, name, v)?;
            }
            Ok(())
        }
        ParameterWrite::Delete { region, name, expected_revision } => {
            let changed = exec(
                conn,
                "DELETE FROM parameters WHERE region = ?1 AND name = ?2 AND revision = ?3",
                params![region, name, revision_to_sql(*expected_revision)?],
            )?;
            if changed == 0 {
                return Err(missing_or_conflict(
                    conn,
                    "SELECT 1 FROM parameters WHERE region = ?1 AND name = ?2",
                    [region, name],
                ));
            }
            exec(conn, "DELETE FROM parameter_versions WHERE region = ?1 AND name = ?2", params![region, name])?;
            Ok(())
        }
    }
}

fn apply_kms_key_write(conn: &Connection, write: &KmsKeyWrite) -> StoreResult<()> {
    write.check()?;
    match write {
        KmsKeyWrite::Create(state) => {
            let k = &state.key;
            exec(
                conn,
                "INSERT INTO kms_keys (region, key_id, created, revision, meta) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![k.region, k.key_id, k.created, revision_to_sql(k.revision)?, to_json(k)?],
            )?;
            for m in &state.materials {
                insert_material(conn, &k.region, &k.key_id, m)?;
            }
            Ok(())
        }
        KmsKeyWrite::Update { expected_revision, key, new_material } => {
            let changed = exec(
                conn,
                "UPDATE kms_keys SET revision = ?4, meta = ?5 WHERE region = ?1 AND key_id = ?2 AND revision = ?3",
                params![
                    key.region,
                    key.key_id,
                    revision_to_sql(*expected_revision)?,
                    revision_to_sql(key.revision)?,
                    to_json(key)?
                ],
            )?;
            if changed == 0 {
                return Err(missing_or_conflict(
                    conn,
                    "SELECT 1 FROM kms_keys WHERE region = ?1 AND key_id = ?2",
                    [&key.region, &key.key_id],
                ));
            }
            if let Some(m) = new_material {
                insert_material(conn, &key.region, &key.key_id, m)?;
            }
            Ok(())
        }
        KmsKeyWrite::Delete { region, key_id, expected_revision } => {
            let changed = exec(
                conn,
                "DELETE FROM kms_keys WHERE region = ?1 AND key_id = ?2 AND revision = ?3",
                params![region, key_id, revision_to_sql(*expected_revision)?],
            )?;
            if changed == 0 {
                return Err(missing_or_conflict(
                    conn,
                    "SELECT 1 FROM kms_keys WHERE region = ?1 AND key_id = ?2",
                    [region, key_id],
                ));
            }
            exec(conn, "DELETE FROM kms_key_materials WHERE region = ?1 AND key_id = ?2", params![region, key_id])?;
            exec(conn, "DELETE FROM kms_aliases WHERE region = ?1 AND target_key_id = ?2", params![region, key_id])?;
            Ok(())
        }
    }
}

fn insert_material(conn: &Connection, region: &str, key_id: &str, m: &KeyMaterialRecord) -> StoreResult<()> {
    // A second writer adding the same version loses on the primary key: that is a conflict.
    match exec(
        conn,
        "INSERT INTO kms_key_materials (region, key_id, version, created, sealed) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![region, key_id, m.version, m.created, m.sealed],
    ) {
        Err(StoreError::AlreadyExists) => Err(StoreError::Conflict),
        other => other.map(|_| ()),
    }
}

fn apply_alias_write(conn: &Connection, write: &AliasWrite) -> StoreResult<()> {
    match write {
        AliasWrite::Create(a) => {
            exec(
                conn,
                "INSERT INTO kms_aliases (region, alias_name, target_key_id, created, last_updated)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![a.region, a.alias_name, a.target_key_id, a.created, a.last_updated],
            )?;
            Ok(())
        }
        AliasWrite::Update(a) => {
            let changed = exec(
                conn,
                "UPDATE kms_aliases SET target_key_id = ?3, last_updated = ?4 WHERE region = ?1 AND alias_name = ?2",
                params![a.region, a.alias_name, a.target_key_id, a.last_updated],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }
        AliasWrite::Delete { region, alias_name } => {
            let changed = exec(
                conn,
                "DELETE FROM kms_aliases WHERE region = ?1 AND alias_name = ?2",
                params![region, alias_name],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }
    }
}

/// A duplicate access key id fails on the primary key: `AlreadyExists`.
fn insert_access_key(conn: &Connection, k: &AccessKeyRecord) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO access_keys (access_key_id, sealed_secret, principal_arn, user_name, status, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![k.access_key_id, k.sealed_secret, k.principal_arn, k.user_name, k.status, k.created],
    )?;
    Ok(())
}

/// Applies an IAM batch in order (each write sees the ones before it) and bumps the IAM generation,
/// returning the new one. It runs as one operation inside the writer's per-operation savepoint: when any
/// write fails, `apply_in_transaction` rolls the savepoint back, and with it every earlier write of the
/// batch and the generation — all or nothing, as [`coffer_store::Store::write_iam`] requires. The
/// generation is bumped in the same savepoint, so it moves exactly when the batch commits.
fn apply_iam_batch(conn: &Connection, writes: &[IamWrite]) -> StoreResult<u64> {
    for write in writes {
        apply_iam_write(conn, write)?;
    }
    // Past i64::MAX SQLite would turn the sum into a REAL, which does not decode as an integer: `Corrupt`.
    let generation: Option<i64> = conn
        .prepare_cached("UPDATE iam_generation SET generation = generation + 1 WHERE id = 0 RETURNING generation")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map_err(map_sqlite)?;
    let generation = generation.ok_or_else(|| corrupt("the IAM generation row is missing"))?;
    u64::try_from(generation).map_err(|_| corrupt(format!("negative IAM generation {generation}")))
}

const IAM_ENTITY_EXISTS: &str = "SELECT 1 FROM iam_entities WHERE kind = ?1 AND name = ?2";

/// One IAM change; errors as `MemoryStore`'s: the contract checks (`InvalidWrite`) first, then
/// `NotFound`, then `Conflict`.
fn apply_iam_write(conn: &Connection, write: &IamWrite) -> StoreResult<()> {
    match write {
        IamWrite::Create(r) => {
            if r.revision != 1 {
                return Err(StoreError::InvalidWrite(format!(
                    "a new IAM entity starts at revision 1, not {} ({} {})",
                    r.revision,
                    r.kind.as_str(),
                    r.name
                )));
            }
            exec(
                conn,
                "INSERT INTO iam_entities (kind, name, document, revision) VALUES (?1, ?2, ?3, 1)",
                params![r.kind.as_str(), r.name, r.document],
            )?;
            Ok(())
        }
        IamWrite::Update { expected_revision, record: r } => {
            if expected_revision.checked_add(1) != Some(r.revision) {
                return Err(StoreError::InvalidWrite(format!(
                    "update of IAM {} {} must set revision {expected_revision} + 1, not {}",
                    r.kind.as_str(),
                    r.name,
                    r.revision
                )));
            }
            // A revision SQLite cannot hold is one no stored entity has: the entity is missing or moved on.
            let changed = match i64::try_from(*expected_revision) {
                Ok(expected) => exec(
                    conn,
                    "UPDATE iam_entities SET document = ?4, revision = ?5
                     WHERE kind = ?1 AND name = ?2 AND revision = ?3",
                    params![r.kind.as_str(), r.name, expected, r.document, revision_to_sql(r.revision)?],
                )?,
                Err(_) => 0,
            };
            if changed == 0 {
                return Err(missing_or_conflict(conn, IAM_ENTITY_EXISTS, params![r.kind.as_str(), r.name]));
            }
            Ok(())
        }
        IamWrite::Delete { kind, name, expected_revision } => {
            let changed = match i64::try_from(*expected_revision) {
                Ok(expected) => exec(
                    conn,
                    "DELETE FROM iam_entities WHERE kind = ?1 AND name = ?2 AND revision = ?3",
                    params![kind.as_str(), name, expected],
                )?,
                Err(_) => 0,
            };
            if changed == 0 {
                return Err(missing_or_conflict(conn, IAM_ENTITY_EXISTS, params![kind.as_str(), name]));
            }
            Ok(())
        }
        IamWrite::InsertAccessKey(k) => insert_access_key(conn, k),
        IamWrite::AccessKeyStatus { access_key_id, status } => {
            // Counts the row even when the status is unchanged: setting it again is not "missing".
            let changed = exec(
                conn,
                "UPDATE access_keys SET status = ?2 WHERE access_key_id = ?1",
                params![access_key_id, status],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }
        IamWrite::DeleteAccessKey { access_key_id } => {
            if exec(conn, "DELETE FROM access_keys WHERE access_key_id = ?1", [access_key_id])? == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }
    }
}
