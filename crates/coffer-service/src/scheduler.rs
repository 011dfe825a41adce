//! Which node runs the background duties, and how their last pass went — for the scheduler loop in
//! the server and for the detailed status operators read.
//!
//! With several nodes over one database the duties (scheduled deletion, parameter expiry, key and
//! secret rotation, re-wrap) run on one node at a time: the store elects it
//! ([`coffer_store::Store::hold_scheduler_leadership`]); this node asks before every pass.

use std::sync::Mutex;

use crate::Service;

/// The scheduler's state on this node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedulerStatus {
    /// Whether this node led at its last pass.
    pub leading: bool,
    /// When this node last asked (epoch milliseconds).
    pub last_check: Option<i64>,
    /// When this node last ran a pass as the leader.
    pub last_pass: Option<i64>,
    /// Why the last leadership check or pass failed, if it did (storage errors; never a value).
    pub last_error: Option<String>,
}

#[derive(Default)]
pub(crate) struct SchedulerState {
    status: Mutex<SchedulerStatus>,
}

impl SchedulerState {
    fn update(&self, f: impl FnOnce(&mut SchedulerStatus)) {
        // Nothing panics while the lock is held: a poisoned lock still guards a consistent value.
        f(&mut self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl Service {
    /// Whether this node should run the scheduler's duties now. A node that cannot reach storage does
    /// not lead: it could not do the work, and another node may be doing it.
    pub async fn hold_scheduler_leadership(&self) -> bool {
        let now = self.clock.now_millis();
        let answer = self.store.hold_scheduler_leadership().await;
        self.scheduler.update(|s| {
            if s.leading != matches!(answer, Ok(true)) {
                tracing::info!(leading = matches!(answer, Ok(true)), "scheduler leadership changed");
            }
            s.last_check = Some(now);
            match &answer {
                Ok(leading) => {
                    s.leading = *leading;
                    s.last_error = None;
                }
                Err(e) => {
                    s.leading = false;
                    s.last_error = Some(e.to_string());
                }
            }
        });
        matches!(answer, Ok(true))
    }

    /// Gives the leadership up (at shutdown), so another node takes over at its next pass.
    pub async fn release_scheduler_leadership(&self) {
        self.store.release_scheduler_leadership().await;
        self.scheduler.update(|s| s.leading = false);
    }

    /// Records a pass this node ran as the leader; `error` names a duty that failed.
    pub fn record_scheduler_pass(&self, error: Option<String>) {
        let now = self.clock.now_millis();
        self.scheduler.update(|s| {
            s.last_pass = Some(now);
            if error.is_some() {
                s.last_error = error;
            }
        });
    }

    /// The scheduler's state on this node.
    pub fn scheduler_status(&self) -> SchedulerStatus {
        self.scheduler.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}
