//! Group commit: the node's writes of records and audit events share transactions, so that one WAL
//! flush and one turn on the audit chain's head row serve a whole batch.
//!
//! Why: every write chains its audit events under the one chain-head row lock, and holds that lock
//! through its COMMIT (the WAL flush, milliseconds on a real disk), so one-transaction-per-write
//! commits from every node run one at a time: the cluster's write rate is one per flush, whatever the
//! node count. A batch pays the flush and the lock once for all its writes.
//!
//! How: writers hand a [`Job`] (an owned change and its events) to the node's queue; [`WORKERS`]
//! workers each take what is waiting (up to [`MAX_BATCH`]) and apply it in one READ COMMITTED
//! transaction, each change inside a savepoint of its own. A change that fails (a lost
//! compare-and-swap, a taken name, a deadlock) is rolled back to its savepoint and answered with its
//! own error; the others go on. Then the events of every change that applied are chained in one
//! append, in batch order, and the transaction commits. Every answer is sent only after COMMIT
//! returned, so an acknowledged write is durable, and a writer that lost a race re-reads a store that
//! already holds the winner. If anything outside a savepoint fails, or COMMIT does, the whole batch
//! answers with that error: nothing of it applied (or, for COMMIT, nobody can tell; not retried).
//!
//! Lock order across batches: changes are applied in key order (kind, then the record's key), so two
//! batches that touch the same records lock them in the same order; the chain head comes last, as for
//! single writes (`write.rs`). PostgreSQL still resolves any deadlock by aborting one statement; its
//! change is answered retryable and the writer's retry loop submits it again.

use std::sync::Arc;

use coffer_store::{
    AliasWrite, AuditAppend, AuditBatch, EpochMillis, KmsKeyWrite, ParameterWrite, SecretWrite, StoreError,
};
use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_postgres::IsolationLevel;

use crate::error::{map_pg, map_pool, TxError};
use crate::write::{self, Done, WriteOp};

/// The most changes one transaction carries: enough to amortize a flush over many writers, few enough
/// that one batch's row locks and its statements' time stay short.
pub(crate) const MAX_BATCH: usize = 128;

/// Batches in flight per node: while one flushes its COMMIT, the next runs its statements.
pub(crate) const WORKERS: usize = 2;

/// A change the queue accepts, owned so it can wait in the queue and come back for a retry.
// Moved into the queue and back once per write: boxing the large variants would add an allocation
// per write and save nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum BatchedOp {
    Secret(SecretWrite),
    Parameter(ParameterWrite),
    KmsKey(KmsKeyWrite),
    Alias(AliasWrite),
    TouchAccessed {
        arn: String,
        day: EpochMillis,
    },
    /// No change: the events are all there is.
    Events,
}

impl BatchedOp {
    fn as_write_op(&self) -> WriteOp<'_> {
        match self {
            BatchedOp::Secret(w) => WriteOp::Secret(w),
            BatchedOp::Parameter(w) => WriteOp::Parameter(w),
            BatchedOp::KmsKey(w) => WriteOp::KmsKey(w),
            BatchedOp::Alias(w) => WriteOp::Alias(w),
            BatchedOp::TouchAccessed { arn, day } => WriteOp::TouchAccessed { arn, day: *day },
            BatchedOp::Events => WriteOp::Events,
        }
    }

    /// The order a batch applies its changes in: by kind, then by the key of the row the change locks
    /// first. Event-only jobs lock nothing and go last, next to the chain append.
    fn lock_key(&self) -> (u8, &str, &str) {
        match self {
            BatchedOp::Secret(w) => (0, w.arn(), ""),
            BatchedOp::TouchAccessed { arn, .. } => (0, arn, ""),
            BatchedOp::Parameter(w) => match w {
                ParameterWrite::Create(p) => (1, &p.region, &p.name),
                ParameterWrite::Update { region, name, .. } | ParameterWrite::Delete { region, name, .. } => {
                    (1, region, name)
                }
            },
            BatchedOp::KmsKey(w) => match w {
                KmsKeyWrite::Create(s) => (2, &s.key.region, &s.key.key_id),
                KmsKeyWrite::Update { key, .. } => (2, &key.region, &key.key_id),
                KmsKeyWrite::Delete { region, key_id, .. } => (2, region, key_id),
            },
            BatchedOp::Alias(w) => match w {
                AliasWrite::Create(a) | AliasWrite::Update(a) => (3, &a.region, &a.alias_name),
                AliasWrite::Delete { region, alias_name } => (3, region, alias_name),
            },
            BatchedOp::Events => (4, "", ""),
        }
    }
}

/// One writer's change waiting for a batch. The op comes back with the answer, for a retry.
pub(crate) struct Job {
    pub op: BatchedOp,
    pub events: AuditBatch,
    pub reply: oneshot::Sender<(BatchedOp, Result<Done, TxError>)>,
}

/// The node's write queue: jobs in, batches out to [`WORKERS`] workers on the runtime that made it.
pub(crate) struct WriteQueue {
    jobs: mpsc::UnboundedSender<Job>,
}

impl WriteQueue {
    /// Starts the workers on the current Tokio runtime. They end once the queue is dropped.
    pub(crate) fn start(pool: Pool) -> WriteQueue {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WORKERS {
            tokio::spawn(worker(pool.clone(), receiver.clone()));
        }
        WriteQueue { jobs }
    }

    /// Queues a change and waits for its batch to commit (or fail). The op comes back, for a retry,
    /// unless the queue's workers stopped with it (their runtime shut down): then the answer is
    /// `Unavailable`, and whether it applied is unknown only if a worker had taken it.
    pub(crate) async fn submit(&self, op: BatchedOp, events: AuditBatch) -> (Option<BatchedOp>, Result<Done, TxError>) {
        let stopped = || {
            Err(TxError::Store(StoreError::Unavailable("postgres: the write queue stopped before answering".into())))
        };
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(Job { op, events, reply }) {
            return (Some(job.op), stopped());
        }
        match answer.await {
            Ok((op, result)) => (Some(op), result),
            Err(_) => (None, stopped()),
        }
    }
}

async fn worker(pool: Pool, receiver: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let mut jobs = Vec::new();
        {
            let mut queue = receiver.lock().await;
            let Some(first) = queue.recv().await else { return };
            jobs.push(first);
            while jobs.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        run_batch(&pool, jobs).await;
    }
}

/// The savepoint `job` before the next change: none yet, holding the previous change (released with
/// the next one's, so the nesting stays flat), or empty after a rollback to it (reused as it is).
#[derive(Clone, Copy)]
enum Savepoint {
    None,
    Applied,
    Clean,
}

/// What became of one job inside the transaction, before COMMIT.
enum Outcome {
    /// Applied: its `count` and, once chained, its events' head.
    Applied(Done),
    /// Rolled back to its savepoint: this is its answer, whatever COMMIT does.
    Failed(TxError),
}

async fn run_batch(pool: &Pool, mut jobs: Vec<Job>) {
    jobs.sort_by(|a, b| a.op.lock_key().cmp(&b.op.lock_key()));
    match apply_batch(pool, &jobs).await {
        Ok(outcomes) => {
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let answer = match outcome {
                    Outcome::Applied(done) => Ok(done),
                    Outcome::Failed(e) => Err(e),
                };
                let _ = job.reply.send((job.op, answer));
            }
        }
        Err(batch_error) => {
            // Nothing of the batch applied (or, after a failed COMMIT, nobody can tell): every job
            // hears the batch's error, retryable for all alike when PostgreSQL aborted it for a race.
            let retryable = batch_error.is_retryable();
            let error = batch_error.into_store();
            for job in jobs {
                let e = if retryable { TxError::Lost(error.clone()) } else { TxError::Store(error.clone()) };
                let _ = job.reply.send((job.op, Err(e)));
            }
        }
    }
}

/// Applies the jobs in one transaction (each in a savepoint), chains the applied ones' events, and
/// commits. `Err` only for a failure of the whole batch.
async fn apply_batch(pool: &Pool, jobs: &[Job]) -> Result<Vec<Outcome>, TxError> {
    let mut client = pool.get().await.map_err(|e| TxError::Store(map_pool(e)))?;
    let tx = client.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start().await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut savepoint = Savepoint::None;
    for job in jobs {
        if matches!(job.op, BatchedOp::Events) {
            // Nothing to apply, nothing that can fail: no savepoint needed.
            outcomes.push(Outcome::Applied(Done { count: 0, head: None }));
            continue;
        }
        // Releasing the previous job's savepoint in the same round trip keeps the nesting flat.
        let savepoint_sql = match savepoint {
            Savepoint::Clean => None,
            Savepoint::Applied => Some("RELEASE SAVEPOINT job; SAVEPOINT job"),
            Savepoint::None => Some("SAVEPOINT job"),
        };
        let applied = match &job.op {
            // The hot path: the savepoint travels with the compare-and-swap, the rest in one flight.
            BatchedOp::Secret(w @ SecretWrite::Update { .. }) => {
                write::apply_secret_update_pipelined(&tx, w, savepoint_sql).await?
            }
            op => {
                if let Some(sql) = savepoint_sql {
                    tx.batch_execute(sql).await?;
                }
                write::apply_change(&tx, &op.as_write_op()).await
            }
        };
        match applied {
            Ok(count) => {
                outcomes.push(Outcome::Applied(Done { count, head: None }));
                savepoint = Savepoint::Applied;
            }
            Err(e) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT job").await?;
                outcomes.push(Outcome::Failed(e));
                savepoint = Savepoint::Clean;
            }
        }
    }
    let groups: Vec<&[AuditAppend]> = jobs
        .iter()
        .zip(&outcomes)
        .map(|(job, outcome)| match outcome {
            Outcome::Applied(_) => job.events.as_slice(),
            Outcome::Failed(_) => &[],
        })
        .collect();
    let heads = write::chain_event_groups(&tx, &groups).await?;
    for (outcome, head) in outcomes.iter_mut().zip(heads) {
        if let Outcome::Applied(done) = outcome {
            done.head = head;
        }
    }
    tx.commit().await.map_err(|e| TxError::Store(map_pg(e)))?;
    Ok(outcomes)
}
