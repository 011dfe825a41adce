//! `CofferStatus.GetStatus` (signed as Secrets Manager): one node's detailed status for operators —
//! version, storage backend and reachability, counts in the caller's region, KMS key states, the audit
//! log's head and health, and the scheduler's leadership. Counts and states only. Times are epoch
//! seconds, as in AWS's JSON APIs.

use serde::{Deserialize, Serialize};

pub const TARGET_PREFIX: &str = "CofferStatus";
pub const SERVICE: &str = crate::secretsmanager::SERVICE;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetStatusRequest {}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetStatusResponse {
    pub version: String,
    pub storage: StorageStatus,
    /// The region the counts are of (the request's).
    pub region: String,
    #[serde(default)]
    pub counts: Counts,
    pub audit: AuditStatus,
    pub scheduler: SchedulerStatus,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StorageStatus {
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub reachable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Absent when storage could not be read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Counts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_pending_deletion: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_with_rotation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_keys: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_keys_enabled: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_keys_pending_deletion: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuditStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_seq: Option<u64>,
    /// Why the audit log refuses events (requests are then refused too), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(default)]
    pub pending_events: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SchedulerStatus {
    /// Whether this node leads the background duties (one node at a time over a shared database).
    pub leading: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pass: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}
