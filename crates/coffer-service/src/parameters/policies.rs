//! Parameter policies (Advanced tier): `Expiration` (the server deletes the parameter at that time),
//! `ExpirationNotification` and `NoChangeNotification` (stored and reported; Coffer has no event bus to
//! notify yet). Validated on write with SSM's error kinds.

use coffer_store::EpochMillis;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{ErrorKind, ServiceError, ServiceResult};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyDocument {
    #[serde(rename = "Type")]
    policy_type: String,
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
}

/// One policy as DescribeParameters and GetParameterHistory report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyReport {
    pub text: String,
    pub policy_type: String,
    pub status: &'static str,
}

fn attribute_error(m: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorKind::InvalidPolicyAttribute, m)
}

fn parse_documents(policies: &str) -> ServiceResult<Vec<(serde_json::Value, PolicyDocument)>> {
    let raw: Vec<serde_json::Value> = serde_json::from_str(policies)
        .map_err(|_| attribute_error("Policies must be a JSON array of policy documents."))?;
    raw.into_iter()
        .map(|v| {
            let doc: PolicyDocument = serde_json::from_value(v.clone())
                .map_err(|_| ServiceError::new(ErrorKind::InvalidPolicyType, "Each policy needs a Type."))?;
            Ok((v, doc))
        })
        .collect()
}

/// Checks a Policies document at write time; returns the expiration time if there is one.
pub fn validate(policies: &str, now: EpochMillis) -> ServiceResult<Option<EpochMillis>> {
    let docs = parse_documents(policies)?;
    if docs.len() > 10 {
        return Err(ServiceError::new(ErrorKind::LimitExceeded, "A parameter can have at most 10 policies."));
    }
    let mut expiration = None;
    for (_, doc) in &docs {
        match doc.policy_type.as_str() {
            "Expiration" => {
                let ts = doc
                    .attributes
                    .get("Timestamp")
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| attribute_error("An Expiration policy needs a Timestamp attribute."))?;
                let at = OffsetDateTime::parse(ts, &Rfc3339)
                    .map_err(|_| attribute_error(format!("The Timestamp {ts} is not a valid ISO 8601 time.")))?;
                let millis = (at.unix_timestamp_nanos() / 1_000_000) as EpochMillis;
                if millis <= now {
                    return Err(attribute_error("The Expiration Timestamp must be in the future."));
                }
                expiration = Some(millis);
            }
            "ExpirationNotification" | "NoChangeNotification" => {
                for key in ["Before", "After"] {
                    if let Some(v) = doc.attributes.get(key) {
                        let ok = v.as_str().is_some_and(|s| s.parse::<u32>().is_ok());
                        if !ok {
                            return Err(attribute_error(format!("The {key} attribute must be a whole number.")));
                        }
                    }
                }
            }
            other => {
                return Err(ServiceError::new(
                    ErrorKind::InvalidPolicyType,
                    format!("The policy type {other} is not supported. Supported types: Expiration, ExpirationNotification, NoChangeNotification."),
                ))
            }
        }
    }
    Ok(expiration)
}

/// When the parameter expires under these (already validated) policies.
pub fn expiration(policies: Option<&str>) -> Option<EpochMillis> {
    let docs = parse_documents(policies?).ok()?;
    docs.iter().find(|(_, d)| d.policy_type == "Expiration").and_then(|(_, d)| {
        let ts = d.attributes.get("Timestamp")?.as_str()?;
        let at = OffsetDateTime::parse(ts, &Rfc3339).ok()?;
        Some((at.unix_timestamp_nanos() / 1_000_000) as EpochMillis)
    })
}

/// The policies as the API reports them.
pub fn report(policies: Option<&str>) -> Vec<PolicyReport> {
    let Some(text) = policies else { return vec![] };
    parse_documents(text)
        .map(|docs| {
            docs.into_iter()
                .map(|(v, d)| PolicyReport { text: v.to_string(), policy_type: d.policy_type, status: "Finished" })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: EpochMillis = 1_700_000_000_000;

    #[test]
    fn expiration_is_parsed_and_must_be_in_the_future() {
        let p = r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2030-01-01T00:00:00.000Z"}}]"#;
        assert_eq!(validate(p, NOW).unwrap(), Some(1_893_456_000_000));
        assert_eq!(expiration(Some(p)), Some(1_893_456_000_000));
        let past = r#"[{"Type":"Expiration","Attributes":{"Timestamp":"2020-01-01T00:00:00Z"}}]"#;
        assert_eq!(validate(past, NOW).unwrap_err().kind, ErrorKind::InvalidPolicyAttribute);
        let garbage = r#"[{"Type":"Expiration","Attributes":{"Timestamp":"soon"}}]"#;
        assert_eq!(validate(garbage, NOW).unwrap_err().kind, ErrorKind::InvalidPolicyAttribute);
    }

    #[test]
    fn notification_policies_and_unknown_types() {
        let p = r#"[{"Type":"ExpirationNotification","Version":"1.0","Attributes":{"Before":"15","Unit":"Days"}},
                    {"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"20","Unit":"Days"}}]"#;
        assert_eq!(validate(p, NOW).unwrap(), None);
        assert_eq!(report(Some(p)).len(), 2);
        let bad = r#"[{"Type":"SelfDestruct","Attributes":{}}]"#;
        assert_eq!(validate(bad, NOW).unwrap_err().kind, ErrorKind::InvalidPolicyType);
        assert_eq!(validate("not json", NOW).unwrap_err().kind, ErrorKind::InvalidPolicyAttribute);
    }
}
