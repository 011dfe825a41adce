//! `CofferEvents.<Op>` (signed as Secrets Manager): change events. `WaitForChanges` is a long poll: it
//! answers as soon as a subscribed secret or parameter the caller may read changes after the cursor
//! (a new version, a staging-label move, a deletion or restore), or when `WaitTimeSeconds` ends. A change
//! names the record and what happened, never a value: the subscriber refetches what it caches.

use serde::{Deserialize, Serialize};

/// The target prefix: `CofferEvents.WaitForChanges`.
pub const TARGET_PREFIX: &str = "CofferEvents";
/// Requests are signed for this service.
pub const SERVICE: &str = crate::secretsmanager::SERVICE;
/// The full `X-Amz-Target` of the long poll.
pub const WAIT_FOR_CHANGES_TARGET: &str = "CofferEvents.WaitForChanges";
/// The longest `WaitTimeSeconds` the server accepts.
pub const MAX_WAIT_TIME_SECONDS: i64 = 20;
/// The most `SecretIds`, and the most `ParameterNames`, one request may name.
pub const MAX_SUBSCRIBED_IDS: usize = 10_000;
/// The most `PathPrefixes` one request may name.
pub const MAX_PATH_PREFIXES: usize = 100;

/// `Change` values of secrets and parameters.
pub mod change {
    pub const CREATE_SECRET: &str = "CreateSecret";
    pub const PUT_SECRET_VALUE: &str = "PutSecretValue";
    pub const UPDATE_SECRET: &str = "UpdateSecret";
    pub const UPDATE_SECRET_VERSION_STAGE: &str = "UpdateSecretVersionStage";
    pub const ROTATION: &str = "Rotation";
    pub const DELETE_SECRET: &str = "DeleteSecret";
    pub const RESTORE_SECRET: &str = "RestoreSecret";
    pub const PUT_PARAMETER: &str = "PutParameter";
    pub const LABEL_PARAMETER_VERSION: &str = "LabelParameterVersion";
    pub const UNLABEL_PARAMETER_VERSION: &str = "UnlabelParameterVersion";
    pub const DELETE_PARAMETER: &str = "DeleteParameter";
    /// Another server node changed the record; what it changed is not known.
    pub const CHANGED: &str = "Changed";
}

/// `Type` of a change.
pub const TYPE_SECRET: &str = "Secret";
pub const TYPE_PARAMETER: &str = "Parameter";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct WaitForChangesRequest {
    /// Secrets by name, full ARN or partial ARN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_ids: Vec<String>,
    /// Parameters by name or ARN (selectors ignored); `/aws/reference/secretsmanager/<id>` names a secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter_names: Vec<String>,
    /// Every secret and parameter below these paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_prefixes: Vec<String>,
    /// The `Cursor` of the previous answer; absent, the answer is immediate and only gives a cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// How long to wait for a change, 0-20 (default 0: answer at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_time_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct WaitForChangesResponse {
    /// Oldest first; empty when the wait ended without a change.
    #[serde(default)]
    pub changes: Vec<Change>,
    /// To send with the next request.
    pub cursor: String,
    /// Changes may have been missed (the server restarted, the subscriber fell too far behind, or
    /// server nodes lost touch): refetch everything cached.
    #[serde(default)]
    pub reset: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    /// `Secret` or `Parameter`.
    #[serde(rename = "Type")]
    pub resource_type: String,
    pub name: String,
    #[serde(rename = "ARN")]
    pub arn: String,
    /// What happened (see [`change`]).
    pub change: String,
    /// The version the change added, else the one AWSCURRENT labels after it (a parameter's version
    /// number); absent for deletions and changes made on another node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// When the server recorded it, epoch seconds.
    pub time: f64,
}
