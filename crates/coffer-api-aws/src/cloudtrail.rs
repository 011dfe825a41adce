//! The audit log's read front-end: CloudTrail's `LookupEvents`
//! (`X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`) and Coffer's
//! `CofferAudit.<Op>` targets (`SearchEvents`, `ReadEvents`, `SeqAt`) → typed wire request → service
//! call → wire response. Input constraints of the model (one attribute, known keys, 1..50 results, a
//! time range in order) are checked here, with CloudTrail's exception names.

use coffer_service::audit::{AuditEventView, AuditSearch};
use coffer_service::{RequestContext, Service, ServiceError};
use coffer_store::LookupAttribute;
use coffer_wire::cloudtrail::*;
use coffer_wire::epoch_seconds;

use crate::error::{cloudtrail_error, ApiError};
use crate::json::{parse, to_json};

/// The event source of CloudTrail's own events (a lookup is itself recorded, as AWS does).
pub const EVENT_SOURCE: &str = "cloudtrail.amazonaws.com";

/// The audit operations Coffer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    LookupEvents,
    /// `CofferAudit.SearchEvents`: LookupEvents with `*`/`?` wildcards in the attribute value.
    SearchEvents,
    /// `CofferAudit.ReadEvents`: records in chain order.
    ReadEvents,
    /// `CofferAudit.SeqAt`: the first record at or after a time.
    SeqAt,
}

impl Operation {
    /// CloudTrail's operations (`com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<Op>`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "LookupEvents" => Some(Operation::LookupEvents),
            _ => None,
        }
    }

    /// Coffer's own audit operations (`CofferAudit.<Op>`).
    pub fn parse_coffer(name: &str) -> Option<Self> {
        match name {
            "SearchEvents" => Some(Operation::SearchEvents),
            "ReadEvents" => Some(Operation::ReadEvents),
            "SeqAt" => Some(Operation::SeqAt),
            _ => None,
        }
    }

    /// The operation's name (the audit event's `eventName`).
    pub fn name(self) -> &'static str {
        match self {
            Operation::LookupEvents => "LookupEvents",
            Operation::SearchEvents => "SearchEvents",
            Operation::ReadEvents => "ReadEvents",
            Operation::SeqAt => "SeqAt",
        }
    }
}

fn trail<T>(r: Result<T, ServiceError>) -> Result<T, ApiError> {
    r.map_err(cloudtrail_error)
}

fn invalid_attributes(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("InvalidLookupAttributesException", message)
}

/// The model's key names → the attribute.
fn attribute_key(key: &str) -> Option<LookupAttribute> {
    Some(match key {
        "EventId" => LookupAttribute::EventId,
        "EventName" => LookupAttribute::EventName,
        "ReadOnly" => LookupAttribute::ReadOnly,
        "Username" => LookupAttribute::Username,
        "ResourceType" => LookupAttribute::ResourceType,
        "ResourceName" => LookupAttribute::ResourceName,
        "EventSource" => LookupAttribute::EventSource,
        "AccessKeyId" => LookupAttribute::AccessKeyId,
        _ => return None,
    })
}

/// The model's `LookupAttributeValue` length bound.
const MAX_ATTRIBUTE_VALUE_CHARS: usize = 2000;

fn lookup_attribute(
    given: Option<Vec<coffer_wire::cloudtrail::LookupAttribute>>,
) -> Result<Option<(LookupAttribute, String)>, ApiError> {
    let mut given = given.unwrap_or_default();
    if given.len() > 1 {
        return Err(invalid_attributes("You cannot specify more than one lookup attribute."));
    }
    let Some(attr) = given.pop() else { return Ok(None) };
    let key = attribute_key(&attr.attribute_key).ok_or_else(|| {
        invalid_attributes(format!(
            "The lookup attribute key '{}' is not valid. Valid keys are: {}.",
            attr.attribute_key,
            ATTRIBUTE_KEYS.join(", ")
        ))
    })?;
    if attr.attribute_value.is_empty() {
        return Err(invalid_attributes(format!(
            "The value of the lookup attribute {} must not be empty.",
            attr.attribute_key
        )));
    }
    if attr.attribute_value.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS {
        return Err(invalid_attributes(format!(
            "The value of the lookup attribute {} must be at most {MAX_ATTRIBUTE_VALUE_CHARS} characters long.",
            attr.attribute_key
        )));
    }
    Ok(Some((key, attr.attribute_value)))
}

/// Epoch seconds (possibly fractional) → epoch milliseconds.
fn millis(seconds: f64) -> i64 {
    // `as` saturates out-of-range values (and maps NaN, which JSON cannot carry, to 0).
    (seconds * 1000.0).round() as i64
}

/// The checked input of a lookup, or `None` when it asks for insight events (Coffer has none).
fn search(r: LookupEventsRequest, wildcards: bool) -> Result<Option<AuditSearch>, ApiError> {
    let attribute = lookup_attribute(r.lookup_attributes)?;
    let start_ms = r.start_time.map(millis);
    let end_ms = r.end_time.map(millis);
    if let (Some(start), Some(end)) = (start_ms, end_ms) {
        if start > end {
            return Err(ApiError::bad_request(
                "InvalidTimeRangeException",
                "The start time must not be after the end time.",
            ));
        }
    }
    let max_results = match r.max_results {
        None => MAX_RESULTS as usize,
        Some(n @ 1..=MAX_RESULTS) => n as usize,
        Some(n) => {
            return Err(ApiError::bad_request(
                "InvalidMaxResultsException",
                format!("The value {n} for MaxResults is not valid: it must be between 1 and {MAX_RESULTS}."),
            ))
        }
    };
    match r.event_category.as_deref() {
        None => {}
        Some(INSIGHT) => return Ok(None),
        Some(other) => {
            return Err(ApiError::bad_request(
                "InvalidEventCategoryException",
                format!("The event category '{other}' is not valid. The only valid value is '{INSIGHT}'."),
            ))
        }
    }
    Ok(Some(AuditSearch { attribute, wildcards, start_ms, end_ms, max_results, next_token: r.next_token }))
}

fn event(v: AuditEventView) -> Event {
    Event {
        event_id: v.event_id,
        event_name: v.event_name,
        read_only: v.read_only.to_string(),
        access_key_id: v.access_key_id,
        event_time: epoch_seconds(v.time_ms),
        event_source: v.event_source,
        username: v.username,
        resources: v
            .resources
            .into_iter()
            .map(|(resource_type, name)| Resource { resource_type: Some(resource_type), resource_name: Some(name) })
            .collect(),
        cloud_trail_event: v.cloudtrail_event,
    }
}

/// Runs one audit operation and returns the JSON response body.
pub async fn dispatch(
    service: &Service,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    match op {
        Operation::LookupEvents | Operation::SearchEvents => {
            let r: LookupEventsRequest = parse(body)?;
            let Some(search) = search(r, op == Operation::SearchEvents)? else {
                return to_json(&LookupEventsResponse::default());
            };
            let page = trail(service.lookup_events(ctx, search).await)?;
            to_json(&LookupEventsResponse {
                events: page.events.into_iter().map(event).collect(),
                next_token: page.next_token,
            })
        }
        Operation::ReadEvents => {
            let r: ReadEventsRequest = parse(body)?;
            let limit = match r.limit {
                None => MAX_READ_LIMIT as usize,
                Some(n @ 1..=MAX_READ_LIMIT) => n as usize,
                Some(n) => {
                    return Err(ApiError::bad_request(
                        "InvalidMaxResultsException",
                        format!("The value {n} for Limit is not valid: it must be between 1 and {MAX_READ_LIMIT}."),
                    ))
                }
            };
            let page = trail(service.read_audit_events(ctx, r.from_seq.unwrap_or(1), limit).await)?;
            to_json(&ReadEventsResponse {
                events: page
                    .records
                    .into_iter()
                    .map(|(seq, cloud_trail_event)| ChainedEvent { seq, cloud_trail_event })
                    .collect(),
                next_seq: page.next_seq,
                head_seq: page.head_seq,
            })
        }
        Operation::SeqAt => {
            let r: SeqAtRequest = parse(body)?;
            let seq = trail(service.audit_seq_at(ctx, millis(r.time)).await)?;
            to_json(&SeqAtResponse { seq })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> LookupEventsRequest {
        serde_json::from_str(json).unwrap()
    }

    fn code(r: Result<Option<AuditSearch>, ApiError>) -> &'static str {
        r.err().map(|e| e.code).unwrap_or("ok")
    }

    #[test]
    fn targets_parse() {
        assert_eq!(Operation::parse("LookupEvents"), Some(Operation::LookupEvents));
        assert_eq!(Operation::parse("SearchEvents"), None, "Coffer's targets are under CofferAudit only");
        assert_eq!(Operation::parse_coffer("ReadEvents"), Some(Operation::ReadEvents));
        assert_eq!(Operation::parse_coffer("LookupEvents"), None);
        assert_eq!(Operation::parse(Operation::LookupEvents.name()), Some(Operation::LookupEvents));
        for op in [Operation::SearchEvents, Operation::ReadEvents, Operation::SeqAt] {
            assert_eq!(Operation::parse_coffer(op.name()), Some(op));
        }
    }

    #[test]
    fn lookups_are_checked_like_cloudtrail() {
        let ok = search(request(r#"{"LookupAttributes":[{"AttributeKey":"ResourceName","AttributeValue":"a"}],"StartTime":1,"EndTime":2.5}"#), false)
            .unwrap()
            .unwrap();
        assert_eq!(ok.attribute, Some((LookupAttribute::ResourceName, "a".to_string())));
        assert_eq!((ok.start_ms, ok.end_ms, ok.max_results), (Some(1000), Some(2500), 50));
        for key in ATTRIBUTE_KEYS {
            let body = format!(r#"{{"LookupAttributes":[{{"AttributeKey":"{key}","AttributeValue":"v"}}]}}"#);
            assert_eq!(code(search(request(&body), false)), "ok", "{key}");
        }
        let two = r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"a"},{"AttributeKey":"Username","AttributeValue":"b"}]}"#;
        let err = search(request(two), false).err().unwrap();
        assert_eq!(
            (err.code, err.message.as_str()),
            ("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
        );
        let cases = [
            (
                r#"{"LookupAttributes":[{"AttributeKey":"eventname","AttributeValue":"a"}]}"#,
                "InvalidLookupAttributesException",
            ),
            (
                r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":""}]}"#,
                "InvalidLookupAttributesException",
            ),
            (r#"{"LookupAttributes":[{"AttributeKey":"EventName"}]}"#, "InvalidLookupAttributesException"),
            (r#"{"StartTime":10,"EndTime":9.999}"#, "InvalidTimeRangeException"),
            (r#"{"MaxResults":0}"#, "InvalidMaxResultsException"),
            (r#"{"MaxResults":51}"#, "InvalidMaxResultsException"),
            (r#"{"MaxResults":-1}"#, "InvalidMaxResultsException"),
            (r#"{"EventCategory":"management"}"#, "InvalidEventCategoryException"),
            (r#"{"LookupAttributes":[],"MaxResults":1,"StartTime":5,"EndTime":5}"#, "ok"),
        ];
        for (body, want) in cases {
            assert_eq!(code(search(request(body), false)), want, "{body}");
        }
        assert!(search(request(r#"{"EventCategory":"insight"}"#), false).unwrap().is_none());
    }
}
