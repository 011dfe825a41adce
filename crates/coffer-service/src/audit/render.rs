//! Rendering a request's audit event: the caller (CloudTrail's userIdentity), where it came from,
//! the operation, its resources, the identifiers of its input and answer, its outcome. Identifiers
//! only: the front-end filters request parameters through `coffer_audit::params`, and response
//! elements are what the operation names explicitly (ARN, name, version id).

use std::borrow::Cow;

use coffer_audit::event::{
    EventRef, EventResourceRef, ExtraData, SessionAttributesRef, SessionContextRef, SessionIssuerRef, UserIdentityRef,
    EVENT_CATEGORY_MANAGEMENT, EVENT_TYPE_API_CALL, EVENT_TYPE_SERVICE_EVENT, EVENT_VERSION,
};
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
    fn user_identity<'a>(&self, ctx: &'a RequestContext) -> UserIdentityRef<'a> {
        let p = &ctx.principal;
        let account = Some(p.account_id.as_str());
        if ctx.source.is_internal() {
            return UserIdentityRef {
                invoked_by: Some("coffer.internal"),
                account_id: account,
                ..UserIdentityRef::of_type("AWSService")
            };
        }
        let session_context = p.session.as_ref().map(|s| SessionContextRef {
            attributes: SessionAttributesRef {
                creation_date: Cow::Owned(coffer_audit::event::iso8601_seconds(s.issued)),
                mfa_authenticated: if s.mfa_authenticated { "true" } else { "false" },
            },
            session_issuer: match &p.kind {
                PrincipalKind::AssumedRole { role_name, .. } => Some(SessionIssuerRef {
                    issuer_type: "Role",
                    principal_id: Some(&s.entity_id),
                    arn: Some(Cow::Owned(format!("arn:aws:iam::{}:role/{role_name}", p.account_id))),
                    account_id: account,
                    user_name: Some(role_name),
                }),
                _ => None,
            },
        });
        let (identity_type, principal_id) = match &p.kind {
            PrincipalKind::Root => ("Root", Some(Cow::Borrowed(p.account_id.as_str()))),
            PrincipalKind::User { .. } => ("IAMUser", p.session.as_ref().map(|s| Cow::Borrowed(s.entity_id.as_str()))),
            PrincipalKind::AssumedRole { session_name, .. } => {
                ("AssumedRole", p.session.as_ref().map(|s| Cow::Owned(format!("{}:{session_name}", s.entity_id))))
            }
        };
        UserIdentityRef {
            identity_type,
            principal_id,
            arn: Some(Cow::Borrowed(&p.arn)),
            account_id: account,
            access_key_id: Some(&p.access_key_id),
            user_name: Some(&p.user_name),
            session_context,
            invoked_by: None,
        }
    }

    /// The event of `ctx`'s request as `notes` describe it (a copy while a change may still retry; the
    /// notes themselves when the request is over). Rendered straight from the context: nothing is
    /// copied but into the event's bytes and its lookup entries.
    pub(crate) fn render_event(&self, ctx: &RequestContext, notes: &Notes, outcome: &Outcome) -> AuditAppend {
        let time_ms = self.clock.now_millis();
        let event_id = self.audit.event_ids().next();
        let event_time = coffer_audit::event::iso8601_seconds(time_ms);
        let account = ctx.principal.account_id.as_str();
        let internal = ctx.source.is_internal();
        let event = EventRef {
            event_version: EVENT_VERSION,
            user_identity: self.user_identity(ctx),
            event_time: &event_time,
            event_source: notes.event_source,
            event_name: &notes.event_name,
            aws_region: &ctx.region,
            source_ip_address: if internal { Some("coffer.internal") } else { ctx.source_ip.as_deref() },
            user_agent: if internal { Some("coffer.internal") } else { ctx.user_agent.as_deref() },
            error_code: outcome.error.as_ref().map(|(code, _)| code.as_str()),
            error_message: outcome.error.as_ref().map(|(_, message)| message.as_str()),
            request_parameters: &notes.request_parameters,
            response_elements: &outcome.response_elements,
            additional_event_data: Some(ExtraData::ActorSource(ctx.source.as_str())),
            request_id: Some(&ctx.request_id),
            event_id: &event_id,
            read_only: notes.read_only,
            resources: notes
                .resources
                .iter()
                .map(|arn| EventResourceRef { arn, account_id: Some(account), resource_type: resource_type(arn) })
                .collect(),
            event_type: if internal { EVENT_TYPE_SERVICE_EVENT } else { EVENT_TYPE_API_CALL },
            management_event: true,
            recipient_account_id: Some(account),
            event_category: EVENT_CATEGORY_MANAGEMENT,
        };
        let (body, lookup) = (event.to_canonical_json(), event.index_entries());
        AuditAppend { event_id, time_ms, body, lookup }
    }

    pub(crate) fn render_unauthenticated(&self, r: &UnauthenticatedRequest<'_>) -> AuditAppend {
        let time_ms = self.clock.now_millis();
        let event_id = self.audit.event_ids().next();
        let event_time = coffer_audit::event::iso8601_seconds(time_ms);
        let event = EventRef {
            event_version: EVENT_VERSION,
            user_identity: UserIdentityRef { access_key_id: r.access_key_id, ..UserIdentityRef::of_type("Unknown") },
            event_time: &event_time,
            event_source: r.event_source,
            event_name: r.event_name,
            aws_region: r.region,
            source_ip_address: r.source_ip,
            user_agent: r.user_agent,
            error_code: Some(r.error_code),
            error_message: Some(r.error_message),
            request_parameters: &serde_json::Value::Null,
            response_elements: &serde_json::Value::Null,
            additional_event_data: Some(ExtraData::ActorSource("api")),
            request_id: Some(r.request_id),
            event_id: &event_id,
            read_only: r.read_only,
            resources: Vec::new(),
            event_type: EVENT_TYPE_API_CALL,
            management_event: true,
            recipient_account_id: Some(&self.config.account_id),
            event_category: EVENT_CATEGORY_MANAGEMENT,
        };
        let (body, lookup) = (event.to_canonical_json(), event.index_entries());
        AuditAppend { event_id, time_ms, body, lookup }
    }
}
