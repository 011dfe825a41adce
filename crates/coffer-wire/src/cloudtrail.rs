//! CloudTrail (2013-11-01) shapes for reading the audit log: `LookupEvents`
//! (`X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`), and Coffer's own
//! `CofferAudit.<Op>` targets: `SearchEvents` (LookupEvents with `*`/`?` wildcards in the attribute value),
//! `ReadEvents` (records in chain order, for export and tail) and `SeqAt` (where a time falls in the chain).
//! Every target is signed for `cloudtrail`.

use serde::{Deserialize, Serialize};

/// The SigV4 signing name.
pub const SERVICE: &str = "cloudtrail";
/// The `X-Amz-Target` prefix of CloudTrail's operations (`<prefix>.LookupEvents`).
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101";
/// The `X-Amz-Target` prefix of Coffer's audit operations (`CofferAudit.SearchEvents`).
pub const COFFER_TARGET_PREFIX: &str = "CofferAudit";
/// The one event category LookupEvents knows besides management events (Coffer has none of them).
pub const INSIGHT: &str = "insight";
/// LookupEvents' page size limit (and default).
pub const MAX_RESULTS: i64 = 50;
/// ReadEvents' page size limit (and default).
pub const MAX_READ_LIMIT: i64 = 1000;

/// The lookup attribute keys, as the model spells them.
pub const ATTRIBUTE_KEYS: [&str; 8] =
    ["EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId"];

/// `{AttributeKey, AttributeValue}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupAttribute {
    pub attribute_key: String,
    #[serde(default)]
    pub attribute_value: String,
}

/// `LookupEvents`, and `CofferAudit.SearchEvents` (the same input; wildcards in the value).
/// Times are epoch seconds, possibly fractional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup_attributes: Option<Vec<LookupAttribute>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `{ResourceType, ResourceName}` of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

/// One event as LookupEvents shows it: the lookup fields, and the whole event as a JSON string.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    pub event_id: String,
    pub event_name: String,
    /// `"true"` or `"false"`: a string in the model.
    pub read_only: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    pub event_time: f64,
    pub event_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(rename = "CloudTrailEvent")]
    pub cloud_trail_event: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsResponse {
    #[serde(default)]
    pub events: Vec<Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `CofferAudit.ReadEvents`: records with `seq >= FromSeq` (default 1), at most `Limit` (1..1000,
/// default 1000), in chain order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReadEventsRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// One record of the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChainedEvent {
    pub seq: u64,
    #[serde(rename = "CloudTrailEvent")]
    pub cloud_trail_event: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReadEventsResponse {
    #[serde(default)]
    pub events: Vec<ChainedEvent>,
    /// The `FromSeq` of the next page (one past the last record returned, or the same when none).
    pub next_seq: u64,
    /// The newest seq in the log when the page was read (0 when the log is empty).
    pub head_seq: u64,
}

/// `CofferAudit.SeqAt`: the first seq at or after `Time` (epoch seconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SeqAtRequest {
    pub time: f64,
}

/// The first seq at or after the time, or one past the newest when nothing is that recent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SeqAtResponse {
    pub seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn botocore_requests_parse() {
        let body = r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"GetSecretValue"}],
            "StartTime":1700000000,"EndTime":1700000100.5,"MaxResults":50}"#;
        let r: LookupEventsRequest = serde_json::from_str(body).unwrap();
        let attrs = r.lookup_attributes.unwrap();
        assert_eq!(attrs[0].attribute_key, "EventName");
        assert_eq!(attrs[0].attribute_value, "GetSecretValue");
        assert_eq!(r.start_time, Some(1_700_000_000.0));
        assert_eq!(r.end_time, Some(1_700_000_100.5));
        assert_eq!(r.max_results, Some(50));
    }

    #[test]
    fn events_serialize_with_the_model_names() {
        let e = Event {
            event_id: "id".into(),
            event_name: "GetSecretValue".into(),
            read_only: "true".into(),
            access_key_id: None,
            event_time: 1.5,
            event_source: "secretsmanager.amazonaws.com".into(),
            username: Some("root".into()),
            resources: vec![Resource { resource_type: Some("T".into()), resource_name: Some("n".into()) }],
            cloud_trail_event: "{}".into(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["CloudTrailEvent"], "{}");
        assert_eq!(v["ReadOnly"], "true");
        assert_eq!(v["Resources"][0]["ResourceName"], "n");
        assert!(v.get("AccessKeyId").is_none(), "absent members are omitted: {v}");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
