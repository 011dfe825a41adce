//! The append pipeline of the audit log. A change's event rides in the change's own transaction (see
//! `Service::with_change_event`); every other event goes through here: appended to an in-memory queue
//! before the response leaves and made durable by the flusher within `flush_interval` (group commit),
//! or written before the response when the interval is zero. A log that cannot be written refuses
//! requests (fail closed) until a flush succeeds again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_store::{AuditAppend, Store, StoreError};

/// How the audit log behaves.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Off only for measurements: nothing is recorded. Never in production.
    pub enabled: bool,
    /// The longest a read's event waits before it is durable; zero = before the response leaves.
    pub flush_interval: Duration,
    /// Events waiting for a flush beyond this: requests are refused until the log catches up.
    pub max_pending: usize,
    /// Records older than this are pruned (at a signed digest).
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            flush_interval: Duration::from_millis(100),
            max_pending: 100_000,
            retention_days: 2_557,
        }
    }
}

/// Why the log cannot take an event; the request is answered 503 with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditUnavailable(pub String);

pub(crate) struct AuditLog {
    config: AuditConfig,
    store: Arc<dyn Store>,
    queue: Mutex<VecDeque<AuditAppend>>,
    /// Set while the log cannot be written; checked on every request without taking a lock.
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// Serializes flushes so queued events reach the chain in the order they were queued.
    flushing: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
    event_ids: super::render::EventIds,
}

/// A flush takes at most this many events in one transaction.
const FLUSH_BATCH: usize = 5_000;

impl AuditLog {
    pub(crate) fn new(config: AuditConfig, store: Arc<dyn Store>) -> Self {
        AuditLog {
            config,
            store,
            queue: Mutex::new(VecDeque::new()),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            flushing: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            event_ids: Default::default(),
        }
    }

    pub(crate) fn event_ids(&self) -> &super::render::EventIds {
        &self.event_ids
    }

    pub(crate) fn config(&self) -> &AuditConfig {
        &self.config
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<AuditAppend>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why the log is failing, if it is.
    pub(crate) fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn fail(&self, reason: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.as_deref() != Some(reason.as_str()) {
            tracing::error!(%reason, "the audit log cannot be written: requests are refused until it can");
        }
        *failure = Some(reason);
        self.failed.store(true, Ordering::Release);
    }

    fn recover(&self) {
        if self.failed.swap(false, Ordering::AcqRel) {
            *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
            tracing::info!("the audit log is writable again");
        }
    }

    /// Refuses when the log is failing.
    pub(crate) fn check(&self) -> Result<(), AuditUnavailable> {
        match self.failure() {
            Some(reason) => Err(AuditUnavailable(reason)),
            None => Ok(()),
        }
    }

    /// Takes a (read's or failed request's) event.
    pub(crate) async fn submit(&self, event: AuditAppend) -> Result<(), AuditUnavailable> {
        if self.config.flush_interval.is_zero() {
            // Every event durable before its response: the store's group commit batches concurrent
            // ones. Each request tries, so the first write that succeeds again ends the failure.
            return match self.store.append_audit(Arc::new(vec![event])).await {
                Ok(_) => {
                    self.recover();
                    Ok(())
                }
                Err(e) => {
                    let reason = failure_reason(&e);
                    self.fail(reason.clone());
                    Err(AuditUnavailable(reason))
                }
            };
        }
        self.check()?;
        let pending = {
            let mut queue = self.queue();
            if queue.len() >= self.config.max_pending {
                drop(queue);
                let reason = format!("{} audit events are waiting to be written", self.config.max_pending);
                self.fail(reason.clone());
                return Err(AuditUnavailable(reason));
            }
            queue.push_back(event);
            queue.len()
        };
        if pending >= FLUSH_BATCH {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Writes every event queued when the flush began (in queue order). On failure the events stay
    /// queued, in order, and the log refuses requests until a later flush succeeds.
    pub(crate) async fn flush(&self) -> Result<(), AuditUnavailable> {
        let _one_at_a_time = self.flushing.lock().await;
        // Only what is queued now: events that arrive while this flush writes wait for the next tick.
        // Chasing them instead keeps the writer committing a few dozen events at a time back to back,
        // every commit a wake-up, an fsync and a rewritten last page, for as long as requests come.
        let mut left = self.queue().len();
        while left > 0 {
            let batch: Vec<AuditAppend> = {
                let mut queue = self.queue();
                let n = queue.len().min(FLUSH_BATCH).min(left);
                queue.drain(..n).collect()
            };
            if batch.is_empty() {
                return Ok(());
            }
            left -= batch.len();
            // Shared with the store, not copied: kept here for the retry should the write fail.
            let batch = Arc::new(batch);
            match self.store.append_audit(batch.clone()).await {
                Ok(_) => self.recover(),
                Err(e) => {
                    let reason = failure_reason(&e);
                    let batch = Arc::unwrap_or_clone(batch);
                    let mut queue = self.queue();
                    for event in batch.into_iter().rev() {
                        queue.push_front(event);
                    }
                    drop(queue);
                    self.fail(reason.clone());
                    return Err(AuditUnavailable(reason));
                }
            }
        }
        Ok(())
    }

    /// The flusher: runs until `stop` resolves, then flushes what is left.
    pub(crate) async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        let interval = self.config.flush_interval.max(Duration::from_millis(1));
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(interval) => {}
                _ = self.wake.notified() => {}
            }
            // A failed flush keeps its events queued and is retried at the next tick; meanwhile
            // requests are refused.
            let _ = self.flush().await;
        }
        if let Err(AuditUnavailable(reason)) = self.flush().await {
            tracing::error!(%reason, "audit events could not be written at shutdown");
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.queue().len()
    }
}

/// What `/readyz` and the logs say when a write fails (the store's words; never an event's content).
pub(crate) fn failure_reason(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable(detail) => format!("audit log storage unavailable: {detail}"),
        other => format!("audit log write failed: {other}"),
    }
}
