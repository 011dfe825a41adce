//! Emergency rotation after a leak: an incident selects secrets by its type (seed 003's playbook),
//! waits for a second principal's approval unless an urgent bypass is justified, then rotates them
//! all at once with the incident id on every step's audit event, and keeps the timeline.
//!
//! Incidents are small documents in the store's settings (`incident/<id>`, plus the list of ids),
//! written with compare-and-swap so approvals on two nodes cannot both start the rotation.

use std::sync::Arc;

use coffer_store::{EpochMillis, SecretRecord};
use serde::{Deserialize, Serialize};

use super::{tag, RotationOutcome, CATEGORY_TAG, SENSITIVITY_TAG};
use crate::context::{ActorSource, RequestContext};
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::iam::Access;
use crate::kms::must_authorize;
use crate::Service;

const INCIDENT_LIST: &str = "incidents";
/// Rotations of one incident run this many at a time.
pub const INCIDENT_CONCURRENCY: usize = 32;

fn incident_key(id: &str) -> String {
    format!("incident/{id}")
}

/// Seed 003's incident types.
pub const INCIDENT_TYPES: [&str; 5] =
    ["confirmed-breach", "suspected-breach", "employee-departure", "vendor-compromise", "accidental-exposure"];
pub const INCIDENT_LEVELS: [&str; 4] = ["critical", "high", "medium", "low"];

#[derive(Debug, Clone, Default)]
pub struct OpenIncidentInput {
    pub incident_type: String,
    pub level: String,
    pub reason: String,
    /// Secrets named explicitly (by name or ARN); added to what the type selects.
    pub secret_ids: Vec<String>,
    /// Secrets carrying any of these tags (key, value); added to what the type selects.
    pub tags: Vec<(String, String)>,
    /// Rotate without a second approval; the justification is recorded.
    pub urgent_bypass: Option<String>,
    /// Only show the plan.
    pub dry_run: bool,
}

/// One secret an incident selected, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PlannedRotation {
    pub arn: String,
    pub name: String,
    pub reason: String,
    /// Set when the secret cannot be rotated (no rotator configured).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skip: Option<String>,
}

/// How one secret's emergency rotation went.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct IncidentRotation {
    pub arn: String,
    pub name: String,
    /// `rotated`, `failed` or `skipped`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failed_step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
}

/// An incident and its timeline (times in epoch milliseconds).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Incident {
    pub id: String,
    pub incident_type: String,
    pub level: String,
    pub reason: String,
    pub region: String,
    pub opened_by: String,
    pub opened_at: EpochMillis,
    /// `awaiting-approval`, `rotating`, `completed`, `completed-with-failures`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approved_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approved_at: Option<EpochMillis>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bypass_reason: Option<String>,
    pub plan: Vec<PlannedRotation>,
    #[serde(default)]
    pub results: Vec<IncidentRotation>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub started_at: Option<EpochMillis>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub finished_at: Option<EpochMillis>,
}

/// Why the incident type selects `secret`, if it does.
fn selected_by_type(incident_type: &str, secret: &SecretRecord) -> Option<String> {
    let sensitivity = tag(secret, SENSITIVITY_TAG);
    let category = tag(secret, CATEGORY_TAG);
    match incident_type {
        "confirmed-breach" if matches!(sensitivity, Some("critical") | Some("high")) => {
            Some(format!("sensitivity {}", sensitivity.unwrap_or_default()))
        }
        "suspected-breach" if sensitivity == Some("critical") => Some("sensitivity critical".into()),
        "employee-departure" if matches!(category, Some("authentication") | Some("access")) => {
            Some(format!("category {}", category.unwrap_or_default()))
        }
        _ => None,
    }
}

/// `SEC-YYYYMMDDHHMMSS` (UTC).
fn incident_id(now: EpochMillis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(now.div_euclid(1000)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("SEC-{:04}{:02}{:02}{:02}{:02}{:02}", t.year(), t.month() as u8, t.day(), t.hour(), t.minute(), t.second())
}

impl Service {
    async fn authorize_incident(&self, ctx: &RequestContext, action: &str) -> ServiceResult<()> {
        if must_authorize(ctx, false) {
            let arn = format!("arn:aws:coffer:{}:{}:incident/*", ctx.region, self.config.account_id);
            self.authorize(ctx, &Access::new(action, &arn)).await?;
        }
        Ok(())
    }

    /// Opens an incident: selects the secrets, records the plan, and (with an urgent bypass)
    /// rotates them now; otherwise the incident waits for `approve_incident` by another principal.
    pub async fn open_incident(
        self: &Arc<Self>,
        ctx: &RequestContext,
        input: OpenIncidentInput,
    ) -> ServiceResult<Incident> {
        if !INCIDENT_TYPES.contains(&input.incident_type.as_str()) {
            return Err(ServiceError::invalid_parameter(format!(
                "Unknown incident type {:?}: use one of {}.",
                input.incident_type,
                INCIDENT_TYPES.join(", ")
            )));
        }
        if !INCIDENT_LEVELS.contains(&input.level.as_str()) {
            return Err(ServiceError::invalid_parameter(format!(
                "Unknown incident level {:?}: use one of {}.",
                input.level,
                INCIDENT_LEVELS.join(", ")
            )));
        }
        if input.reason.trim().is_empty() || input.reason.len() > 2048 {
            return Err(ServiceError::invalid_parameter("An incident needs a reason of 1-2048 characters."));
        }
        if input.urgent_bypass.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return Err(ServiceError::invalid_parameter("An urgent bypass needs a justification."));
        }
        if input.incident_type == "vendor-compromise" && input.tags.is_empty() && input.secret_ids.is_empty() {
            return Err(ServiceError::invalid_parameter(
                "A vendor compromise selects the vendor's secrets by tag: give --tag KEY=VALUE (or --secret).",
            ));
        }
        if input.incident_type == "accidental-exposure" && input.secret_ids.is_empty() {
            return Err(ServiceError::invalid_parameter(
                "An accidental exposure names the exposed secrets: give --secret.",
            ));
        }
        self.authorize_incident(ctx, "coffer:OpenIncident").await?;
        let plan = self.incident_plan(ctx, &input).await?;
        let now = self.clock.now_millis();
        let mut incident = Incident {
            id: incident_id(now),
            incident_type: input.incident_type.clone(),
            level: input.level.clone(),
            reason: input.reason.clone(),
            region: ctx.region.clone(),
            opened_by: ctx.principal.arn.clone(),
            opened_at: now,
            status: "awaiting-approval".into(),
            approved_by: None,
            approved_at: None,
            bypass_reason: input.urgent_bypass.clone(),
            plan,
            results: Vec::new(),
            started_at: None,
            finished_at: None,
        };
        if input.dry_run {
            incident.status = "planned".into();
            return Ok(incident);
        }
        self.insert_incident(&mut incident).await?;
        ctx.audit.set_request_parameters(serde_json::json!({
            "incidentId": incident.id,
            "incidentType": incident.incident_type,
            "level": incident.level,
            "urgentBypass": incident.bypass_reason.is_some(),
        }));
        if incident.bypass_reason.is_some() {
            return self.start_incident(incident.id.clone(), None).await;
        }
        Ok(incident)
    }

    /// Approves an incident waiting for approval (by a principal other than the one who opened it)
    /// and rotates its secrets.
    pub async fn approve_incident(self: &Arc<Self>, ctx: &RequestContext, id: &str) -> ServiceResult<Incident> {
        self.authorize_incident(ctx, "coffer:ApproveIncident").await?;
        ctx.audit.set_request_parameters(serde_json::json!({ "incidentId": id }));
        let incident = self.load_incident(id).await?;
        if incident.status != "awaiting-approval" {
            return Err(ServiceError::invalid_request(format!(
                "Incident {id} is {}; only an incident awaiting approval can be approved.",
                incident.status
            )));
        }
        if incident.opened_by == ctx.principal.arn {
            return Err(ServiceError::new(
                ErrorKind::AccessDenied,
                format!("Incident {id} must be approved by a principal other than the one who opened it."),
            ));
        }
        self.start_incident(id.to_string(), Some(ctx.principal.arn.clone())).await
    }

    pub async fn get_incident(&self, ctx: &RequestContext, id: &str) -> ServiceResult<Incident> {
        self.authorize_incident(ctx, "coffer:GetIncident").await?;
        self.load_incident(id).await
    }

    /// Every incident, newest first.
    pub async fn list_incidents(&self, ctx: &RequestContext) -> ServiceResult<Vec<Incident>> {
        self.authorize_incident(ctx, "coffer:ListIncidents").await?;
        let ids = self.incident_ids().await?.0;
        let mut incidents = Vec::with_capacity(ids.len());
        for id in ids.iter().rev() {
            incidents.push(self.load_incident(id).await?);
        }
        Ok(incidents)
    }

    async fn incident_plan(
        &self,
        ctx: &RequestContext,
        input: &OpenIncidentInput,
    ) -> ServiceResult<Vec<PlannedRotation>> {
        let records = self.store.list_secrets(&ctx.region).await?;
        let mut plan: Vec<PlannedRotation> = Vec::new();
        let mut add = |record: &SecretRecord, reason: String| {
            if plan.iter().any(|p| p.arn == record.arn) {
                return;
            }
            let skip = record.rotation.lambda_arn.is_none().then(|| "no rotation function is configured".to_string());
            plan.push(PlannedRotation { arn: record.arn.clone(), name: record.name.clone(), reason, skip });
        };
        for record in records.iter().filter(|r| r.deletion_date.is_none()) {
            if let Some(reason) = selected_by_type(&input.incident_type, record) {
                add(record, reason);
            }
            for (key, value) in &input.tags {
                if tag(record, key) == Some(value.as_str()) {
                    add(record, format!("tag {key}={value}"));
                }
            }
        }
        for id in &input.secret_ids {
            let state = self.resolve(ctx, id, false).await?;
            if state.secret.deletion_date.is_none() {
                add(&state.secret, "named".into());
            }
        }
        // Each selected secret must be one the caller may rotate.
        for planned in &plan {
            self.authorized_secret(ctx, "secretsmanager:RotateSecret", &planned.arn, |a| a).await?;
        }
        Ok(plan)
    }

    /// Marks the incident as rotating (once: a compare-and-swap on its document), rotates its plan,
    /// and records the results.
    async fn start_incident(self: &Arc<Self>, id: String, approver: Option<String>) -> ServiceResult<Incident> {
        let now = self.clock.now_millis();
        let incident = self
            .update_incident(&id, |incident| {
                if incident.status != "awaiting-approval" {
                    return Err(ServiceError::invalid_request(format!(
                        "Incident {id} is {}; it was started already.",
                        incident.status
                    )));
                }
                incident.status = "rotating".into();
                incident.started_at = Some(now);
                if approver.is_some() {
                    incident.approved_by = approver.clone();
                    incident.approved_at = Some(now);
                }
                Ok(())
            })
            .await?;
        let rotatable: Vec<String> = incident.plan.iter().filter(|p| p.skip.is_none()).map(|p| p.arn.clone()).collect();
        let outcomes = self
            .rotate_many(&incident.region, rotatable, ActorSource::Emergency, Some(id.clone()), INCIDENT_CONCURRENCY)
            .await;
        let mut results = Vec::with_capacity(incident.plan.len());
        for planned in &incident.plan {
            let mut result = IncidentRotation {
                arn: planned.arn.clone(),
                name: planned.name.clone(),
                outcome: "skipped".into(),
                version_id: None,
                failed_step: None,
                message: planned.skip.clone(),
            };
            if let Some((_, outcome)) = outcomes.iter().find(|(arn, _)| *arn == planned.arn) {
                match outcome {
                    Ok(RotationOutcome::Succeeded { version_id }) => {
                        result.outcome = "rotated".into();
                        result.version_id = Some(version_id.clone());
                    }
                    Ok(RotationOutcome::Failed { version_id, step, message }) => {
                        result.outcome = "failed".into();
                        result.version_id = Some(version_id.clone());
                        result.failed_step = Some(step.clone());
                        result.message = Some(message.clone());
                    }
                    Err(e) => {
                        result.outcome = "failed".into();
                        result.message = Some(e.message.clone());
                    }
                }
            }
            results.push(result);
        }
        let finished = self.clock.now_millis();
        let failed = results.iter().any(|r| r.outcome == "failed");
        self.update_incident(&id, |incident| {
            incident.results = results.clone();
            incident.finished_at = Some(finished);
            incident.status = if failed { "completed-with-failures" } else { "completed" }.into();
            Ok(())
        })
        .await
    }

    async fn load_incident(&self, id: &str) -> ServiceResult<Incident> {
        let stored = self.store.get_setting(&incident_key(id)).await?;
        let bytes = stored.ok_or_else(|| ServiceError::not_found(format!("Incident {id} does not exist.")))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| ServiceError::new(ErrorKind::Internal, "A stored incident is unreadable."))
    }

    async fn incident_ids(&self) -> ServiceResult<(Vec<String>, Option<Vec<u8>>)> {
        let stored = self.store.get_setting(INCIDENT_LIST).await?;
        let ids = match &stored {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|_| ServiceError::new(ErrorKind::Internal, "The stored incident list is unreadable."))?,
            None => Vec::new(),
        };
        Ok((ids, stored))
    }

    /// Stores a new incident under a fresh id (a suffix when two open within one second) and adds it
    /// to the list.
    async fn insert_incident(&self, incident: &mut Incident) -> ServiceResult<()> {
        let base = incident.id.clone();
        for n in 1..100 {
            if n > 1 {
                incident.id = format!("{base}-{n}");
            }
            let body =
                serde_json::to_vec(&*incident).map_err(|e| ServiceError::new(ErrorKind::Internal, e.to_string()))?;
            if self.store.put_setting_if_absent(&incident_key(&incident.id), &body).await? {
                break;
            }
        }
        for _ in 0..64 {
            let (mut ids, stored) = self.incident_ids().await?;
            ids.push(incident.id.clone());
            let body = serde_json::to_vec(&ids).map_err(|e| ServiceError::new(ErrorKind::Internal, e.to_string()))?;
            let done = match stored {
                Some(old) => self.store.replace_setting(INCIDENT_LIST, &old, &body).await?,
                None => self.store.put_setting_if_absent(INCIDENT_LIST, &body).await?,
            };
            if done {
                return Ok(());
            }
        }
        Err(ServiceError::new(ErrorKind::Unavailable, "The incident list is being changed concurrently; retry."))
    }

    async fn update_incident(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Incident) -> ServiceResult<()>,
    ) -> ServiceResult<Incident> {
        let key = incident_key(id);
        for _ in 0..64 {
            let old = self
                .store
                .get_setting(&key)
                .await?
                .ok_or_else(|| ServiceError::not_found(format!("Incident {id} does not exist.")))?;
            let mut incident: Incident = serde_json::from_slice(&old)
                .map_err(|_| ServiceError::new(ErrorKind::Internal, "A stored incident is unreadable."))?;
            change(&mut incident)?;
            let body =
                serde_json::to_vec(&incident).map_err(|e| ServiceError::new(ErrorKind::Internal, e.to_string()))?;
            if self.store.replace_setting(&key, &old, &body).await? {
                return Ok(incident);
            }
        }
        Err(ServiceError::new(ErrorKind::Unavailable, "The incident is being changed concurrently; retry."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_ids_name_the_second_they_opened() {
        // 2026-11-23T16:05:09Z
        assert_eq!(incident_id(1_795_449_909_000), "SEC-20261123160509");
    }
}
