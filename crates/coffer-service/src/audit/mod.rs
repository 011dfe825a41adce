//! The audit trail, on the service's side: every request's event rendered from its context (who,
//! from where, what, on which resources, with what outcome — identifiers only, never a value), a
//! change's event committed in the change's own transaction, everything else through the append
//! pipeline (`log.rs`); signed digests of the chain; retention; lookups.

mod digest;
mod log;
mod notes;
mod query;
mod render;

use std::future::Future;

use coffer_store::{AuditAppend, StoreError};

pub use digest::PruneReport;
pub(crate) use log::AuditLog;
pub use log::{AuditConfig, AuditUnavailable};
pub use notes::{AuditNotes, Notes};
pub use query::{AuditEventView, AuditPage, AuditSearch, ExportPage};
pub use render::{Outcome, UnauthenticatedRequest};

use crate::context::RequestContext;
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::Service;

impl From<AuditUnavailable> for ServiceError {
    fn from(AuditUnavailable(reason): AuditUnavailable) -> Self {
        ServiceError::new(ErrorKind::Unavailable, format!("The request was not served: {reason}."))
    }
}

impl Service {
    /// Runs a store write that carries the request's event: the change and its event commit together
    /// or not at all. `response` holds the identifiers the answer will carry (CloudTrail's
    /// responseElements). A request whose event already went with an earlier write adds none.
    pub(crate) async fn with_change_event<T, F, Fut>(
        &self,
        ctx: &RequestContext,
        response: serde_json::Value,
        write: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(Option<AuditAppend>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let event = if self.audit.config().enabled && !ctx.audit.is_recorded() {
            Some(self.render_event(ctx, &ctx.audit.lock(), &Outcome::success(response)))
        } else {
            None
        };
        let carried = event.is_some();
        let result = write(event).await;
        if carried && result.is_ok() {
            ctx.audit.mark_recorded();
        }
        result
    }

    /// Records the end of a request (unless its event went with its change). Called by the front-end
    /// after the operation, with the error it answers; an `Err` means the request must be refused with
    /// 503 instead (the event could not be taken).
    pub async fn record_request(&self, ctx: &RequestContext, outcome: &Outcome) -> ServiceResult<()> {
        if !self.audit.config().enabled || ctx.audit.is_recorded() {
            return Ok(());
        }
        let event = self.render_event(ctx, &ctx.audit.take(), outcome);
        self.audit.submit(event).await.map_err(ServiceError::from)
    }

    /// Records a request that failed before it had an authenticated caller (bad signature, unknown
    /// key, expired token).
    pub async fn record_unauthenticated(&self, request: &UnauthenticatedRequest<'_>) -> ServiceResult<()> {
        if !self.audit.config().enabled {
            return Ok(());
        }
        let event = self.render_unauthenticated(request);
        self.audit.submit(event).await.map_err(ServiceError::from)
    }

    /// Writes every queued event now (tests, shutdown).
    pub async fn flush_audit(&self) -> ServiceResult<()> {
        self.audit.flush().await.map_err(ServiceError::from)
    }

    /// The flusher task: run it for the service's life; it flushes what is left when `stop` resolves.
    pub async fn run_audit_flusher(&self, stop: impl Future<Output = ()>) {
        self.audit.run(stop).await
    }

    /// Why the audit log refuses requests, if it does (`/readyz`).
    pub fn audit_failure(&self) -> Option<String> {
        self.audit.failure()
    }

    /// Events waiting for the next flush.
    pub fn audit_pending(&self) -> usize {
        self.audit.pending()
    }

    pub fn audit_config(&self) -> &AuditConfig {
        self.audit.config()
    }
}
