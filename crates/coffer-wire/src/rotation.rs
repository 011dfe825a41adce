//! `CofferRotation.<Op>` (signed as Secrets Manager): Coffer's own rotation operations beyond AWS's
//! RotateSecret — the rotation status of every secret (what is overdue, what is due soon, how the last
//! attempt went) and emergency-rotation incidents. Times are epoch seconds, as in AWS's JSON APIs.

use serde::{Deserialize, Serialize};

use crate::Tag;

pub const TARGET_PREFIX: &str = "CofferRotation";
pub const SERVICE: &str = crate::secretsmanager::SERVICE;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRotationStatusRequest {}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRotationStatusResponse {
    #[serde(default)]
    pub secrets: Vec<RotationStatusEntry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationStatusEntry {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    pub rotation_enabled: bool,
    #[serde(rename = "RotationLambdaARN", default, skip_serializing_if = "Option::is_none")]
    pub rotation_lambda_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotated_date: Option<f64>,
    /// The next scheduled rotation, or (not rotated automatically) when the sensitivity's interval ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<f64>,
    pub in_progress: bool,
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<RotationAttempt>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationAttempt {
    pub date: f64,
    pub succeeded: bool,
    pub version_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenIncidentRequest {
    /// confirmed-breach, suspected-breach, employee-departure, vendor-compromise, accidental-exposure.
    pub incident_type: String,
    /// critical, high, medium, low.
    pub level: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Rotate without a second approval; the justification is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgent_bypass_reason: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IncidentIdRequest {
    pub incident_id: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIncidentsRequest {}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IncidentResponse {
    pub incident: Incident,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIncidentsResponse {
    #[serde(default)]
    pub incidents: Vec<Incident>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Incident {
    pub incident_id: String,
    pub incident_type: String,
    pub level: String,
    pub reason: String,
    pub region: String,
    pub opened_by: String,
    pub opened_date: f64,
    /// planned (dry run), awaiting-approval, rotating, completed, completed-with-failures.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_date: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgent_bypass_reason: Option<String>,
    #[serde(default)]
    pub plan: Vec<IncidentSecret>,
    #[serde(default)]
    pub results: Vec<IncidentSecretResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_date: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_date: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IncidentSecret {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    /// Why the incident selected it (sensitivity critical, tag vendor=x, named).
    pub selected_because: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_because: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IncidentSecretResult {
    #[serde(rename = "ARN")]
    pub arn: String,
    pub name: String,
    /// rotated, failed, skipped.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
