//! `CofferEvents.<Op>` (signed as Secrets Manager): `WaitForChanges`, the long poll of change events →
//! service → wire response. The request stays open while the service waits (at most 20 s); a server
//! shutting down ends the wait at once (`Service::close_change_waits`).

use std::time::Duration;

use coffer_service::changes::{ChangeEvent, ChangeSubjectKind, WaitForChangesInput};
use coffer_service::{RequestContext, Service};
use coffer_wire::epoch_seconds;
use coffer_wire::events as wire;

use crate::error::{secretsmanager_error, ApiError};
use crate::json::{parse, to_json};

/// The event operations Coffer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    WaitForChanges,
}

impl Operation {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "WaitForChanges" => Some(Operation::WaitForChanges),
            _ => None,
        }
    }
}

fn change_out(c: ChangeEvent) -> wire::Change {
    wire::Change {
        resource_type: match c.subject {
            ChangeSubjectKind::Secret => wire::TYPE_SECRET,
            ChangeSubjectKind::Parameter => wire::TYPE_PARAMETER,
        }
        .to_string(),
        name: c.name,
        arn: c.arn,
        change: c.kind.as_str().to_string(),
        version_id: c.version_id,
        time: epoch_seconds(c.time),
    }
}

/// WaitTimeSeconds, checked here because its type (a count of seconds that may be negative on the
/// wire) is the wire's, not the service's.
fn wait_time(seconds: Option<i64>) -> Result<Duration, ApiError> {
    match seconds.unwrap_or(0) {
        s @ 0..=wire::MAX_WAIT_TIME_SECONDS => Ok(Duration::from_secs(s.unsigned_abs())),
        _ => Err(ApiError::bad_request(
            "InvalidParameterException",
            format!("WaitTimeSeconds must be between 0 and {}.", wire::MAX_WAIT_TIME_SECONDS),
        )),
    }
}

pub async fn dispatch(
    service: &Service,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    match op {
        Operation::WaitForChanges => {
            let r: wire::WaitForChangesRequest = parse(body)?;
            let input = WaitForChangesInput {
                wait: wait_time(r.wait_time_seconds)?,
                secret_ids: r.secret_ids,
                parameter_names: r.parameter_names,
                path_prefixes: r.path_prefixes,
                cursor: r.cursor,
            };
            let page = service.wait_for_changes(ctx, input).await.map_err(secretsmanager_error)?;
            to_json(&wire::WaitForChangesResponse {
                changes: page.changes.into_iter().map(change_out).collect(),
                cursor: page.cursor,
                reset: page.reset,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_states_the_services_limits() {
        assert_eq!(wire::MAX_SUBSCRIBED_IDS, coffer_service::changes::MAX_SUBSCRIBED_IDS);
        assert_eq!(wire::MAX_PATH_PREFIXES, coffer_service::changes::MAX_PATH_PREFIXES);
        assert_eq!(Duration::from_secs(wire::MAX_WAIT_TIME_SECONDS.unsigned_abs()), coffer_service::changes::MAX_WAIT);
    }

    #[test]
    fn wait_times_are_bounded() {
        assert_eq!(wait_time(None).unwrap(), Duration::ZERO);
        assert_eq!(wait_time(Some(20)).unwrap(), Duration::from_secs(20));
        for bad in [-1, 21, i64::MAX] {
            let e = wait_time(Some(bad)).unwrap_err();
            assert_eq!((e.status, e.code), (400, "InvalidParameterException"), "{bad}");
        }
    }
}
