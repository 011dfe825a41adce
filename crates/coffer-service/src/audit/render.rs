//! Rendering a request's audit event: the caller (CloudTrail's userIdentity), where it came from,
//! the operation, its resources, the identifiers of its input and answer, its outcome. Identifiers
//! only: the front-end filters request parameters through `coffer_audit::params`, and response
//! elements are what the operation names explicitly (ARN, name, version id).

use coffer_audit::event::{Event, EventResource, SessionAttributes, SessionContext, SessionIssuer, UserIdentity};
use coffer_store::AuditAppend;

use super::notes::Notes;
use crate::context::{PrincipalKind, RequestContext};
use crate::Service;

/// How a request ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The wire error code and message the caller gets (never carries a value).
    pub error: Option<(String, String)>,
    pub response_elements: serde_json::Value,
}

impl Outcome {
    pub fn success(response_elements: serde_json::Value) -> Self {
        Outcome { error: None, response_elements }
    }

    pub fn error(code: impl Into<String>, message: impl Into<String>) -> Self {
        Outcome { error: Some((code.into(), message.into())), response_elements: serde_json::Value::Null }
    }
}

/// A request refused before it had a caller (its signature did not verify, its key is unknown).
#[derive(Debug, Clone)]
pub struct UnauthenticatedRequest<'a> {
    pub event_source: &'static str,
    pub event_name: &'a str,
    pub read_only: bool,
    /// The access key the request claimed, if it named one.
    pub access_key_id: Option<&'a str>,
    pub region: &'a str,
    pub request_id: &'a str,
    pub source_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub error_code: &'a str,
    pub error_message: &'a str,
}

/// Event ids shaped like UUIDs, unique across nodes and restarts: a random base drawn once per process
/// plus a counter (a fresh random UUID per event would cost a system call on the hot path).
pub(crate) struct EventIds {
    base: u128,
    next: std::sync::atomic::AtomicU64,
}

impl Default for EventIds {
    fn default() -> Self {
        EventIds { base: uuid::Uuid::new_v4().as_u128(), next: std::sync::atomic::AtomicU64::new(0) }
    }
}

impl EventIds {
    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The low 64 bits count; the version and variant bits keep the shape of a v4 UUID.
        let id = (self.base & !u128::from(u64::MAX)) | u128::from(n);
        uuid::Builder::from_random_bytes(id.to_be_bytes()).into_uuid().to_string()
    }
}

/// The resource types CloudTrail names, by ARN shape.
pub(crate) fn resource_type(arn: &str) -> &'static str {
    let mut parts = arn.splitn(6, ':');
    let service = parts.nth(2).unwrap_or_default();
    let resource = parts.nth(2).unwrap_or_default();
    let kind = resource.split(['/', ':']).next().unwrap_or_default();
    match (service, kind) {
        ("secretsmanager", _) => "AWS::SecretsManager::Secret",
        ("ssm", _) => "AWS::SSM::Parameter",
        ("kms", "alias") => "AWS::KMS::Alias",
        ("kms", _) => "AWS::KMS::Key",
        ("iam", "user") => "AWS::IAM::User",
        ("iam", "group") => "AWS::IAM::Group",
        ("iam", "role") => "AWS::IAM::Role",
        ("iam", "policy") => "AWS::IAM::Policy",
        ("iam", "mfa") => "AWS::IAM::MFADevice",
        ("iam", _) => "AWS::IAM::Resource",
        ("sts", _) => "AWS::STS::AssumedRole",
        _ => "AWS::Resource",
    }
}

impl Service {
    fn user_identity(&self, ctx: &RequestContext) -> UserIdentity {
        let p = &ctx.principal;
        let account = Some(p.account_id.clone());
        if ctx.source.is_internal() {
            return UserIdentity {
                identity_type: "AWSService".into(),
                invoked_by: Some("coffer.internal".into()),
                account_id: account,
                ..UserIdentity::default()
            };
        }
        let session_context = p.session.as_ref().map(|s| SessionContext {
            attributes: SessionAttributes {
                creation_date: coffer_audit::event::iso8601_seconds(s.issued),
                mfa_authenticated: s.mfa_authenticated.to_string(),
            },
            session_issuer: match &p.kind {
                PrincipalKind::AssumedRole { role_name, .. } => Some(SessionIssuer {
                    issuer_type: "Role".into(),
                    principal_id: Some(s.entity_id.clone()),
                    arn: Some(format!("arn:aws:iam::{}:role/{role_name}", p.account_id)),
                    account_id: account.clone(),
                    user_name: Some(role_name.clone()),
                }),
                _ => None,
            },
        });
        let (identity_type, principal_id) = match &p.kind {
            PrincipalKind::Root => ("Root", Some(p.account_id.clone())),
            PrincipalKind::User { .. } => ("IAMUser", p.session.as_ref().map(|s| s.entity_id.clone())),
            PrincipalKind::AssumedRole { session_name, .. } => {
                ("AssumedRole", p.session.as_ref().map(|s| format!("{}:{session_name}", s.entity_id)))
            }
        };
        UserIdentity {
            identity_type: identity_type.into(),
            principal_id,
            arn: Some(p.arn.clone()),
            account_id: account,
            access_key_id: Some(p.access_key_id.clone()),
            user_name: Some(p.user_name.clone()),
            session_context,
            invoked_by: None,
        }
    }

    /// The event of `ctx`'s request as `notes` describe it (a copy while a change may still retry; the
    /// notes themselves when the request is over).
    pub(crate) fn render_event(&self, ctx: &RequestContext, notes: Notes, outcome: &Outcome) -> AuditAppend {
        let time_ms = self.clock.now_millis();
        let event_id = self.audit.event_ids().next();
        let account = &ctx.principal.account_id;
        let internal = ctx.source.is_internal();
        let event = Event {
            user_identity: self.user_identity(ctx),
            event_time: coffer_audit::event::iso8601_seconds(time_ms),
            event_source: notes.event_source.to_string(),
            event_name: notes.event_name.to_string(),
            aws_region: ctx.region.clone(),
            source_ip_address: if internal { Some("coffer.internal".into()) } else { ctx.source_ip.clone() },
            user_agent: if internal { Some("coffer.internal".into()) } else { ctx.user_agent.clone() },
            error_code: outcome.error.as_ref().map(|(code, _)| code.clone()),
            error_message: outcome.error.as_ref().map(|(_, message)| message.clone()),
            request_parameters: notes.request_parameters,
            response_elements: outcome.response_elements.clone(),
            additional_event_data: Some(serde_json::json!({ "actorSource": ctx.source.as_str() })),
            request_id: Some(ctx.request_id.clone()),
            event_id: event_id.clone(),
            read_only: notes.read_only,
            resources: notes
                .resources
                .iter()
                .map(|arn| EventResource {
                    arn: arn.clone(),
                    account_id: Some(account.clone()),
                    resource_type: resource_type(arn).to_string(),
                })
                .collect(),
            event_type: if internal { "AwsServiceEvent" } else { "AwsApiCall" }.into(),
            recipient_account_id: Some(account.clone()),
            ..Event::default()
        };
        append_of(event, event_id, time_ms)
    }

    pub(crate) fn render_unauthenticated(&self, r: &UnauthenticatedRequest<'_>) -> AuditAppend {
        let time_ms = self.clock.now_millis();
        let event_id = self.audit.event_ids().next();
        let event = Event {
            user_identity: UserIdentity {
                identity_type: "Unknown".into(),
                access_key_id: r.access_key_id.map(str::to_string),
                ..UserIdentity::default()
            },
            event_time: coffer_audit::event::iso8601_seconds(time_ms),
            event_source: r.event_source.to_string(),
            event_name: r.event_name.to_string(),
            aws_region: r.region.to_string(),
            source_ip_address: r.source_ip.map(str::to_string),
            user_agent: r.user_agent.map(str::to_string),
            error_code: Some(r.error_code.to_string()),
            error_message: Some(r.error_message.to_string()),
            additional_event_data: Some(serde_json::json!({ "actorSource": "api" })),
            request_id: Some(r.request_id.to_string()),
            event_id: event_id.clone(),
            read_only: r.read_only,
            event_type: "AwsApiCall".into(),
            recipient_account_id: Some(self.config.account_id.clone()),
            ..Event::default()
        };
        append_of(event, event_id, time_ms)
    }
}

fn append_of(event: Event, event_id: String, time_ms: i64) -> AuditAppend {
    let lookup = event.index_entries();
    AuditAppend { event_id, time_ms, body: event.to_canonical_json(), lookup }
}
