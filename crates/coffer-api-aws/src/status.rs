//! `CofferStatus.<Op>` (signed as Secrets Manager): a node's detailed status → wire response.

use coffer_service::{RequestContext, Service};
use coffer_wire::epoch_seconds;
use coffer_wire::status as wire;

use crate::error::{secretsmanager_error, ApiError};
use crate::json::{parse, to_json};

/// The status operations Coffer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetStatus,
}

impl Operation {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "GetStatus" => Some(Operation::GetStatus),
            _ => None,
        }
    }
}

pub async fn dispatch(
    service: &Service,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    match op {
        Operation::GetStatus => {
            let _: wire::GetStatusRequest = parse(body)?;
            let s = service.node_status(ctx).await.map_err(secretsmanager_error)?;
            to_json(&wire::GetStatusResponse {
                version: s.version,
                storage: wire::StorageStatus {
                    backend: s.storage_backend,
                    reachable: s.storage_reachable,
                    error: s.storage_error,
                },
                region: s.region,
                counts: wire::Counts {
                    secrets: s.secrets,
                    secrets_pending_deletion: s.secrets_pending_deletion,
                    secrets_with_rotation: s.secrets_with_rotation,
                    parameters: s.parameters,
                    kms_keys: s.kms_keys,
                    kms_keys_enabled: s.kms_keys_enabled,
                    kms_keys_pending_deletion: s.kms_keys_pending_deletion,
                },
                audit: wire::AuditStatus {
                    head_seq: s.audit_head_seq,
                    failure: s.audit_failure,
                    pending_events: s.audit_pending_events,
                },
                scheduler: wire::SchedulerStatus {
                    leading: s.scheduler.leading,
                    last_check: s.scheduler.last_check.map(epoch_seconds),
                    last_pass: s.scheduler.last_pass.map(epoch_seconds),
                    last_error: s.scheduler.last_error,
                },
            })
        }
    }
}
