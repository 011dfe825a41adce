//! `coffer secret history NAME`: every version of a secret (ListSecretVersionIds with
//! IncludeDeprecated), newest first, with its creation date and staging labels — and, when the caller
//! may read the audit log (`cloudtrail:LookupEvents`), who created it, when, and with which call.
//! Never a value: neither call returns one.

use std::collections::HashMap;
use std::process::ExitCode;

use coffer_audit::event::Event;
use coffer_client::{Client, ClientError};
use coffer_wire::cloudtrail::{LookupAttribute, LookupEventsRequest};
use coffer_wire::secretsmanager::{ListSecretVersionIdsRequest, ListSecretVersionIdsResponse, SERVICE};
use serde::{Deserialize, Serialize};

use crate::output::{self, Format};
use crate::secret::{client_for, explain, show, OutputArgs};
use crate::Connection;

/// How many pages of the secret's audit events are read at most: a secret read very often has many
/// read events between its writes, and the history must not turn into an export of the audit log.
const MAX_AUDIT_PAGES: usize = 40;

/// Who wrote a version, from the audit event of the call that created it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Creator {
    /// The caller's ARN (or, for an internal action, the identity type and the service that acted).
    principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<String>,
    event_name: String,
    event_time: String,
    #[serde(rename = "SourceIPAddress", skip_serializing_if = "Option::is_none")]
    source_ip_address: Option<String>,
}

/// One version as shown: the API's fields and, when known, its creator.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct VersionRow {
    version_id: String,
    version_stages: Vec<String>,
    created_date: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_accessed_date: Option<f64>,
    kms_key_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by: Option<Creator>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct History {
    name: String,
    #[serde(rename = "ARN")]
    arn: String,
    versions: Vec<VersionRow>,
}

/// The identifiers an event's answer or request carries for the version it wrote.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionElements {
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    client_request_token: Option<String>,
}

/// The version an event created, if it is a successful write naming one.
fn written_version(event: &Event) -> Option<String> {
    if event.read_only || event.error_code.is_some() {
        return None;
    }
    let answer: VersionElements = serde_json::from_value(event.response_elements.clone()).unwrap_or_default();
    let request: VersionElements = serde_json::from_value(event.request_parameters.clone()).unwrap_or_default();
    answer.version_id.or(request.client_request_token)
}

fn creator(event: &Event) -> Creator {
    let who = &event.user_identity;
    let principal = who.arn.clone().unwrap_or_else(|| match &who.invoked_by {
        Some(service) => format!("{} ({service})", who.identity_type),
        None => who.identity_type.clone(),
    });
    Creator {
        principal,
        access_key_id: who.access_key_id.clone(),
        event_name: event.event_name.clone(),
        event_time: event.event_time.clone(),
        source_ip_address: event.source_ip_address.clone(),
    }
}

/// Who created each of `versions`, from the secret's audit events since the oldest of them (newest
/// first, so the last match of a version is the call that created it).
async fn creators(
    trail: &Client,
    arn: &str,
    versions: &[String],
    since: f64,
) -> Result<HashMap<String, Creator>, ClientError> {
    let mut found: HashMap<String, Creator> = HashMap::new();
    let mut next_token = None;
    for _ in 0..MAX_AUDIT_PAGES {
        let request = LookupEventsRequest {
            lookup_attributes: Some(vec![LookupAttribute {
                attribute_key: "ResourceName".into(),
                attribute_value: arn.to_string(),
            }]),
            // A minute's margin: a version's creation date and its event's time are taken apart.
            start_time: Some(since - 60.0),
            next_token: next_token.take(),
            ..LookupEventsRequest::default()
        };
        let page = trail.lookup_events(&request).await?;
        for event in &page.events {
            let Ok(event) = Event::from_json(event.cloud_trail_event.as_bytes()) else { continue };
            if let Some(version) = written_version(&event) {
                if versions.contains(&version) {
                    found.insert(version, creator(&event));
                }
            }
        }
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => break,
        }
    }
    Ok(found)
}

fn rfc3339(epoch_seconds: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_seconds.floor() as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| epoch_seconds.to_string())
}

pub async fn run(secret_id: String, with_audit: bool, conn: &Connection, out: &OutputArgs) -> anyhow::Result<ExitCode> {
    let client = client_for(conn, "SECRETS_MANAGER")?;
    let mut name_arn = None;
    let entries = client
        .call_all_pages(
            SERVICE,
            "secretsmanager.ListSecretVersionIds",
            |next_token| ListSecretVersionIdsRequest {
                secret_id: secret_id.clone(),
                include_deprecated: Some(true),
                next_token,
                ..Default::default()
            },
            |r: ListSecretVersionIdsResponse| {
                name_arn = Some((r.name, r.arn));
                (r.versions, r.next_token)
            },
        )
        .await
        .map_err(explain)?;
    let (name, arn) = name_arn.unwrap_or_default();
    let mut versions: Vec<VersionRow> = entries
        .into_iter()
        .map(|v| VersionRow {
            version_id: v.version_id,
            version_stages: v.version_stages.unwrap_or_default(),
            created_date: v.created_date,
            last_accessed_date: v.last_accessed_date,
            kms_key_ids: v.kms_key_ids,
            created_by: None,
        })
        .collect();
    versions.sort_by(|a, b| b.created_date.total_cmp(&a.created_date).then_with(|| a.version_id.cmp(&b.version_id)));

    if with_audit && !versions.is_empty() {
        let ids: Vec<String> = versions.iter().map(|v| v.version_id.clone()).collect();
        let since = versions.iter().map(|v| v.created_date).fold(f64::INFINITY, f64::min);
        let trail = client_for(conn, "CLOUDTRAIL")?;
        match creators(&trail, &arn, &ids, since).await {
            Ok(mut found) => versions.iter_mut().for_each(|v| v.created_by = found.remove(&v.version_id)),
            Err(ClientError::Api { code, .. }) if code.starts_with("AccessDenied") => eprintln!(
                "note: who created each version is not shown: this caller may not read the audit log (cloudtrail:LookupEvents)"
            ),
            Err(e) => eprintln!("note: who created each version is not shown: {}", explain(e)),
        }
    }

    let history = History { name, arn, versions };
    if out.output == Format::Table && out.query.is_none() {
        let headers = ["VERSION-ID", "STAGES", "CREATED", "CREATED-BY", "CALL"];
        let rows: Vec<Vec<String>> = history
            .versions
            .iter()
            .map(|v| {
                let by = v.created_by.as_ref();
                vec![
                    v.version_id.clone(),
                    v.version_stages.join(","),
                    rfc3339(v.created_date),
                    by.map(|c| c.principal.clone()).unwrap_or_default(),
                    by.map(|c| c.event_name.clone()).unwrap_or_default(),
                ]
            })
            .collect();
        output::print_columns(&headers, &rows);
    } else {
        show(&history, out)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(read_only: bool, error: Option<&str>, response: serde_json::Value, request: serde_json::Value) -> Event {
        Event {
            read_only,
            error_code: error.map(str::to_string),
            response_elements: response,
            request_parameters: request,
            ..Event::default()
        }
    }

    #[test]
    fn a_version_is_named_by_the_answer_or_the_request_token_of_a_successful_write() {
        use serde_json::json;
        let put = event(false, None, json!({"versionId": "v1", "aRN": "arn"}), json!({"secretId": "s"}));
        assert_eq!(written_version(&put).as_deref(), Some("v1"));
        let by_token = event(false, None, serde_json::Value::Null, json!({"clientRequestToken": "v2"}));
        assert_eq!(written_version(&by_token).as_deref(), Some("v2"));
        assert_eq!(written_version(&event(true, None, json!({"versionId": "v3"}), json!({}))), None, "a read");
        let failed =
            event(false, Some("ResourceExistsException"), serde_json::Value::Null, json!({"clientRequestToken": "v4"}));
        assert_eq!(written_version(&failed), None, "a failed write created nothing");
    }

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(1_700_000_000.5), "2023-11-14T22:13:20Z");
    }
}
