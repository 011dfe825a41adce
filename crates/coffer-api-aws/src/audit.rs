//! What the front-end contributes to each request's audit event: the event source and name, whether
//! the operation only reads, the request's identifiers (never its values: only whitelisted members
//! are even parsed), and the events of requests that never reached an authenticated caller.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use coffer_service::audit::{Outcome, UnauthenticatedRequest};
use coffer_service::{ActorSource, Service};
use serde_json::value::RawValue;

use crate::error::ApiError;

/// Operations that change nothing, by CloudTrail's readOnly rule (Get/List/Describe…, and KMS's
/// cryptographic calls, which read a key).
pub fn is_read_only(event_name: &str) -> bool {
    const READ_PREFIXES: [&str; 17] = [
        "Get",
        "List",
        "Describe",
        "Lookup",
        "BatchGet",
        "Simulate",
        "Validate",
        "Search",
        "Read",
        "SeqAt",
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateRandom",
        "Verify",
        // CofferEvents.WaitForChanges: a long poll that reads the change journal.
        "Wait",
    ];
    READ_PREFIXES.iter().any(|p| event_name.starts_with(p))
}

/// The user agent of Coffer's own CLI marks its requests.
pub fn actor_source(user_agent: Option<&str>) -> ActorSource {
    match user_agent {
        Some(ua) if ua.starts_with("coffer-cli/") => ActorSource::Cli,
        _ => ActorSource::Api,
    }
}

/// The identifiers of a JSON request. The body is read without copying: members are borrowed raw and
/// only the kept ones are parsed, so a secret value in the body is never duplicated here.
pub fn json_request_parameters(body: &[u8]) -> serde_json::Value {
    let Ok(members) = serde_json::from_slice::<BTreeMap<&str, &RawValue>>(body) else {
        return serde_json::Value::Null;
    };
    let mut object = serde_json::Map::new();
    for (key, raw) in members {
        if coffer_audit::keeps_request_key(key) {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(raw.get()) {
                object.insert(key.to_string(), value);
            }
        }
    }
    coffer_audit::params::request_parameters(&serde_json::Value::Object(object))
}

/// The identifiers of a query-protocol request (`UserName=…&RoleArn=…`); list members
/// (`ActionNames.member.1`) are gathered into arrays.
pub fn form_request_parameters<'a>(fields: impl Iterator<Item = (&'a str, &'a str)>) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (key, value) in fields {
        let (name, is_member) = match key.split_once(".member.") {
            Some((name, _)) => (name, true),
            None => (key, false),
        };
        if name == "Action" || name == "Version" || !coffer_audit::keeps_request_key(name) {
            continue;
        }
        let value = serde_json::Value::String(value.to_string());
        if is_member {
            let entry = object.entry(name.to_string()).or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let serde_json::Value::Array(items) = entry {
                items.push(value);
            }
        } else {
            object.insert(name.to_string(), value);
        }
    }
    coffer_audit::params::request_parameters(&serde_json::Value::Object(object))
}

/// The outcome the event records for an answer.
pub fn outcome<T>(result: &Result<T, ApiError>) -> Outcome {
    match result {
        Ok(_) => Outcome::default(),
        Err(e) => Outcome::error(e.code, e.message.clone()),
    }
}

/// Records a request refused before authentication (what it claimed, and why it was refused).
#[allow(clippy::too_many_arguments)]
pub async fn record_unauthenticated(
    service: &Service,
    view: &coffer_sigv4::RequestView<'_>,
    event_source: &'static str,
    event_name: &str,
    request_id: &str,
    remote: SocketAddr,
    user_agent: Option<&str>,
    error: &ApiError,
) {
    let claimed = coffer_sigv4::parse(view).ok();
    let source_ip = remote.ip().to_string();
    let request = UnauthenticatedRequest {
        event_source,
        event_name,
        read_only: is_read_only(event_name),
        access_key_id: claimed.as_ref().map(|c| c.access_key_id.as_str()),
        region: claimed.as_ref().map_or("", |c| c.region.as_str()),
        request_id,
        source_ip: Some(&source_ip),
        user_agent,
        error_code: error.code,
        error_message: &error.message,
    };
    if let Err(e) = service.record_unauthenticated(&request).await {
        // The request is refused anyway; the log's failure shows in /readyz.
        tracing::warn!(%request_id, error = %e, "a refused request could not be audited");
    }
}
