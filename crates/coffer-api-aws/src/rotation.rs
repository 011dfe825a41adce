//! `CofferRotation.<Op>` (signed as Secrets Manager): rotation status and emergency incidents →
//! service → wire response.

use std::sync::Arc;

use coffer_service::secrets::rotation::incident::{Incident, OpenIncidentInput};
use coffer_service::{RequestContext, Service};
use coffer_wire::epoch_seconds;
use coffer_wire::rotation as wire;

use crate::error::{secretsmanager_error, ApiError};
use crate::json::{parse, to_json};

/// The rotation operations Coffer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetRotationStatus,
    OpenIncident,
    ApproveIncident,
    GetIncident,
    ListIncidents,
}

impl Operation {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "GetRotationStatus" => Operation::GetRotationStatus,
            "OpenIncident" => Operation::OpenIncident,
            "ApproveIncident" => Operation::ApproveIncident,
            "GetIncident" => Operation::GetIncident,
            "ListIncidents" => Operation::ListIncidents,
            _ => return None,
        })
    }
}

fn incident_out(i: Incident) -> wire::Incident {
    wire::Incident {
        incident_id: i.id,
        incident_type: i.incident_type,
        level: i.level,
        reason: i.reason,
        region: i.region,
        opened_by: i.opened_by,
        opened_date: epoch_seconds(i.opened_at),
        status: i.status,
        approved_by: i.approved_by,
        approved_date: i.approved_at.map(epoch_seconds),
        urgent_bypass_reason: i.bypass_reason,
        plan: i
            .plan
            .into_iter()
            .map(|p| wire::IncidentSecret {
                arn: p.arn,
                name: p.name,
                selected_because: p.reason,
                skipped_because: p.skip,
            })
            .collect(),
        results: i
            .results
            .into_iter()
            .map(|r| wire::IncidentSecretResult {
                arn: r.arn,
                name: r.name,
                outcome: r.outcome,
                version_id: r.version_id,
                failed_step: r.failed_step,
                message: r.message,
            })
            .collect(),
        started_date: i.started_at.map(epoch_seconds),
        finished_date: i.finished_at.map(epoch_seconds),
    }
}

pub async fn dispatch(
    service: &Arc<Service>,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    match op {
        Operation::GetRotationStatus => {
            let _: wire::GetRotationStatusRequest = parse(body)?;
            let statuses = service.rotation_status(ctx).await.map_err(secretsmanager_error)?;
            to_json(&wire::GetRotationStatusResponse {
                secrets: statuses
                    .into_iter()
                    .map(|s| wire::RotationStatusEntry {
                        arn: s.arn,
                        name: s.name,
                        rotation_enabled: s.enabled,
                        rotation_lambda_arn: s.lambda_arn,
                        sensitivity: s.sensitivity,
                        category: s.category,
                        last_rotated_date: s.last_rotated.map(epoch_seconds),
                        due_date: s.due.map(epoch_seconds),
                        in_progress: s.in_progress,
                        failures: s.failures,
                        last_result: s.last_result.map(|r| wire::RotationAttempt {
                            date: epoch_seconds(r.at),
                            succeeded: r.succeeded,
                            version_id: r.token,
                            failed_step: r.failed_step,
                            message: r.message,
                            incident_id: r.incident_id,
                        }),
                    })
                    .collect(),
            })
        }
        Operation::OpenIncident => {
            let r: wire::OpenIncidentRequest = parse(body)?;
            let input = OpenIncidentInput {
                incident_type: r.incident_type,
                level: r.level,
                reason: r.reason,
                secret_ids: r.secret_ids,
                tags: r.tags.into_iter().map(|t| (t.key, t.value)).collect(),
                urgent_bypass: r.urgent_bypass_reason,
                dry_run: r.dry_run,
            };
            let incident = service.open_incident(ctx, input).await.map_err(secretsmanager_error)?;
            to_json(&wire::IncidentResponse { incident: incident_out(incident) })
        }
        Operation::ApproveIncident => {
            let r: wire::IncidentIdRequest = parse(body)?;
            let incident = service.approve_incident(ctx, &r.incident_id).await.map_err(secretsmanager_error)?;
            to_json(&wire::IncidentResponse { incident: incident_out(incident) })
        }
        Operation::GetIncident => {
            let r: wire::IncidentIdRequest = parse(body)?;
            let incident = service.get_incident(ctx, &r.incident_id).await.map_err(secretsmanager_error)?;
            to_json(&wire::IncidentResponse { incident: incident_out(incident) })
        }
        Operation::ListIncidents => {
            let _: wire::ListIncidentsRequest = parse(body)?;
            let incidents = service.list_incidents(ctx).await.map_err(secretsmanager_error)?;
            to_json(&wire::ListIncidentsResponse { incidents: incidents.into_iter().map(incident_out).collect() })
        }
    }
}
