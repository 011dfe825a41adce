//! What a request's audit event will say, noted while the request runs: the front-end sets the
//! operation and the request's identifiers, `Service::authorize` adds every resource, a change's write
//! marks the event as committed with it.

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard};

/// The audit notes of one request (inside its `RequestContext`).
#[derive(Debug, Default)]
pub struct AuditNotes {
    inner: Mutex<Notes>,
}

/// The notes themselves.
#[derive(Debug, Default, Clone)]
pub struct Notes {
    /// `secretsmanager.amazonaws.com`, …; empty for a context built outside a request (tests).
    pub event_source: &'static str,
    /// The operation (`GetSecretValue`).
    pub event_name: Cow<'static, str>,
    pub read_only: bool,
    /// The request's identifiers only (see `coffer_audit::params`); `Null` when none.
    pub request_parameters: serde_json::Value,
    /// The ARNs the request was authorized against, in order, without repeats.
    pub resources: Vec<String>,
    /// The event was appended with the request's change (in the same transaction): nothing is left
    /// to record when the request ends.
    pub recorded: bool,
}

impl Clone for AuditNotes {
    fn clone(&self) -> Self {
        AuditNotes { inner: Mutex::new(self.lock().clone()) }
    }
}

impl AuditNotes {
    /// Notes for an operation.
    pub fn new(event_source: &'static str, event_name: impl Into<Cow<'static, str>>, read_only: bool) -> Self {
        AuditNotes {
            inner: Mutex::new(Notes { event_source, event_name: event_name.into(), read_only, ..Notes::default() }),
        }
    }

    /// A poisoned lock only means another thread panicked mid-update of plain data; the notes stay usable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Notes> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_request_parameters(&self, parameters: serde_json::Value) {
        self.lock().request_parameters = parameters;
    }

    /// Adds a resource the request touches (`*` — no particular resource — is not one).
    pub fn resource(&self, arn: &str) {
        if arn == "*" || arn.is_empty() {
            return;
        }
        let mut notes = self.lock();
        if !notes.resources.iter().any(|r| r == arn) {
            notes.resources.push(arn.to_string());
        }
    }

    pub(crate) fn mark_recorded(&self) {
        self.lock().recorded = true;
    }

    pub fn is_recorded(&self) -> bool {
        self.lock().recorded
    }

    pub fn snapshot(&self) -> Notes {
        self.lock().clone()
    }

    /// The notes for the request's last event (moved, not copied), leaving them marked recorded so the
    /// request cannot be recorded twice.
    pub(crate) fn take(&self) -> Notes {
        std::mem::replace(&mut *self.lock(), Notes { recorded: true, ..Notes::default() })
    }
}
