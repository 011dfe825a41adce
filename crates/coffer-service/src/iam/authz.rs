//! Authorization of every request: the caller's identity-based policies (from the compiled
//! [`IamSnapshot`](super::snapshot::IamSnapshot)) and the resource's policy, evaluated with AWS's
//! logic — explicit deny, then any allow, else deny. The root user is allowed everything a resource
//! policy does not explicitly deny; the server's own background work is not authorized.

use std::sync::Arc;

use coffer_policy::{Decision, DenyReason, Policy};
use coffer_store::Tag;

use super::snapshot::IamSnapshot;
use crate::context::{PrincipalKind, RequestContext};
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::Service;

/// One authorization question: may the caller perform `action` on `resource`?
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// `service:Operation`, e.g. `secretsmanager:GetSecretValue`.
    pub action: &'a str,
    /// The resource's ARN (`*` for operations on no resource, such as listings).
    pub resource: &'a str,
    pub resource_policy: Option<&'a Policy>,
    /// The resource's tags: `aws:ResourceTag/KEY` and `<service>:ResourceTag/KEY`.
    pub resource_tags: &'a [Tag],
    /// Service-specific condition keys of the request (`secretsmanager:SecretId`, `aws:TagKeys`, …).
    pub keys: Vec<(String, Vec<String>)>,
    /// The resource policy must itself let the caller in, directly or by naming its account (so that
    /// identity policies count): how KMS treats key policies. Otherwise it only adds to them.
    pub resource_policy_required: bool,
}

impl<'a> Access<'a> {
    pub fn new(action: &'a str, resource: &'a str) -> Self {
        Access {
            action,
            resource,
            resource_policy: None,
            resource_tags: &[],
            keys: Vec::new(),
            resource_policy_required: false,
        }
    }

    /// A KMS key policy: it must allow the caller or delegate to its account, whatever identity
    /// policies say (see [`Access::resource_policy_required`]).
    pub fn key_policy(mut self, policy: Option<&'a Policy>) -> Self {
        self.resource_policy = policy;
        self.resource_policy_required = policy.is_some();
        self
    }

    pub fn resource_policy(mut self, policy: Option<&'a Policy>) -> Self {
        self.resource_policy = policy;
        self
    }

    pub fn resource_tags(mut self, tags: &'a [Tag]) -> Self {
        self.resource_tags = tags;
        self
    }

    /// A single-valued condition key.
    pub fn key(mut self, key: &str, value: impl Into<String>) -> Self {
        self.keys.push((key.to_string(), vec![value.into()]));
        self
    }

    /// A multivalued condition key (an empty list is present and empty).
    pub fn keys(mut self, key: &str, values: Vec<String>) -> Self {
        self.keys.push((key.to_string(), values));
        self
    }

    /// The request's tags: `aws:RequestTag/KEY` for each, and `aws:TagKeys`.
    pub fn request_tags(mut self, tags: &[Tag]) -> Self {
        for t in tags {
            self.keys.push((format!("aws:RequestTag/{}", t.key), vec![t.value.clone()]));
        }
        self.keys.push(("aws:TagKeys".into(), tags.iter().map(|t| t.key.clone()).collect()));
        self
    }
}

/// The caller as policies see it: its identity-based policies and the request's condition keys.
pub(crate) struct Caller {
    pub policies: Arc<[Arc<Policy>]>,
    pub base: coffer_policy::RequestContext,
}

/// What IAM knows of a request's principal (nothing for root).
#[derive(Default)]
struct CallerEntity<'s> {
    policies: Option<Arc<[Arc<Policy>]>>,
    /// Whether any of the policies reads a condition key.
    uses_keys: bool,
    tags: &'s [Tag],
    /// The user's or role's unique id.
    id: &'s str,
    /// For role sessions, the role's ARN (`aws:PrincipalArn`).
    role_arn: Option<&'s str>,
}

impl<'s> CallerEntity<'s> {
    /// A principal whose user or role is gone (or was re-created since its session began) has no
    /// policies: everything is denied.
    fn of(snap: &'s IamSnapshot, ctx: &RequestContext) -> CallerEntity<'s> {
        let p = &ctx.principal;
        let none = || CallerEntity { policies: Some(Arc::from(Vec::new())), ..Default::default() };
        match &p.kind {
            PrincipalKind::Root => CallerEntity::default(),
            PrincipalKind::User { name } => match snap.user(name) {
                Some(u) if p.session.as_ref().is_none_or(|s| s.entity_id == u.doc.user_id) => CallerEntity {
                    policies: Some(u.policies.clone()),
                    uses_keys: u.uses_keys,
                    tags: &u.doc.tags,
                    id: &u.doc.user_id,
                    role_arn: None,
                },
                _ => none(),
            },
            PrincipalKind::AssumedRole { role_name, .. } => match snap.role(role_name) {
                Some(r) if p.session.as_ref().is_some_and(|s| s.entity_id == r.doc.role_id) => CallerEntity {
                    policies: Some(r.policies.clone()),
                    uses_keys: r.uses_keys,
                    tags: &r.doc.tags,
                    id: &r.doc.role_id,
                    role_arn: Some(&r.arn),
                },
                _ => none(),
            },
        }
    }
}

impl Service {
    /// The caller's identity-based policies (none for root) and the request's condition keys for
    /// `action` on `resource`.
    pub(crate) fn caller_context(
        &self,
        snap: &IamSnapshot,
        ctx: &RequestContext,
        action: &str,
        resource: &str,
    ) -> Caller {
        let p = &ctx.principal;
        let entity = CallerEntity::of(snap, ctx);
        let mut policy_ctx = coffer_policy::RequestContext::new(p.arn.as_str(), action, resource)
            .with_account(p.account_id.as_str())
            .with_current_time_millis(self.clock.now_millis())
            .with_secure_transport(ctx.secure_transport);
        if let Some(ip) = &ctx.source_ip {
            policy_ctx = policy_ctx.with_source_ip(ip.as_str());
        }
        if let Some(ua) = &ctx.user_agent {
            policy_ctx = policy_ctx.with_value("aws:UserAgent", ua.as_str());
        }
        if let Some(session) = &p.session {
            policy_ctx = policy_ctx
                .with_mfa(session.mfa_authenticated)
                .with_value("aws:TokenIssueTime", super::model::iso8601(session.issued));
            if session.mfa_authenticated {
                let age = (self.clock.now_millis() - session.issued).max(0) / 1000;
                policy_ctx = policy_ctx.with_value("aws:MultiFactorAuthAge", age.to_string());
            }
        }
        match &p.kind {
            PrincipalKind::User { name } => {
                policy_ctx = policy_ctx.with_username(name.as_str());
                if !entity.id.is_empty() {
                    policy_ctx = policy_ctx.with_userid(entity.id);
                }
            }
            PrincipalKind::AssumedRole { session_name, .. } if !entity.id.is_empty() => {
                policy_ctx = policy_ctx.with_userid(format!("{}:{session_name}", entity.id));
            }
            _ => {}
        }
        if let Some(role_arn) = entity.role_arn {
            policy_ctx = policy_ctx.with_value("aws:PrincipalArn", role_arn);
        }
        for t in entity.tags {
            policy_ctx = policy_ctx.with_principal_tag(&t.key, t.value.as_str());
        }
        Caller { policies: entity.policies.unwrap_or_else(|| Arc::from(Vec::new())), base: policy_ctx }
    }

    /// Authorizes one request, answering AccessDenied with AWS's message when it is not allowed.
    pub async fn authorize(&self, ctx: &RequestContext, access: &Access<'_>) -> ServiceResult<()> {
        // Every resource a request is authorized against is what its audit event names.
        ctx.audit.resource(access.resource);
        if ctx.source.is_internal() {
            return Ok(());
        }
        let root = ctx.principal.is_root();
        if root && access.resource_policy.is_none() {
            return Ok(());
        }
        let snap = self.iam.get(self.store.as_ref(), &self.config.account_id).await?;
        let resource_uses_keys = access.resource_policy.is_some_and(|p| p.uses_condition_keys());
        // Most policies match on action and resource alone: then the request's condition keys are
        // not gathered (the hot path builds no key map).
        if !resource_uses_keys {
            if let CallerEntity { policies: Some(policies), uses_keys: false, .. } = CallerEntity::of(&snap, ctx) {
                let policy_ctx =
                    coffer_policy::RequestContext::new(ctx.principal.arn.as_str(), access.action, access.resource);
                return self.decide(ctx, root, &policies, access, &policy_ctx);
            }
        }
        let caller = self.caller_context(&snap, ctx, access.action, access.resource);
        let policy_ctx = with_request_keys(caller.base, access);
        self.decide(ctx, root, &caller.policies, access, &policy_ctx)
    }

    /// Evaluates and answers AccessDenied with AWS's message when not allowed.
    fn decide(
        &self,
        ctx: &RequestContext,
        root: bool,
        policies: &[Arc<Policy>],
        access: &Access<'_>,
        policy_ctx: &coffer_policy::RequestContext,
    ) -> ServiceResult<()> {
        let identity = policies.iter().map(|p| p.as_ref());
        if let Some(policy) = access.resource_policy.filter(|_| access.resource_policy_required) {
            // A key policy that neither names the caller nor its account leaves IAM out: even root is
            // refused (AWS's "unmanageable key").
            if coffer_policy::resource_grant(policy, policy_ctx) == coffer_policy::ResourceGrant::Nothing {
                return Err(ServiceError::new(
                    ErrorKind::AccessDenied,
                    coffer_policy::denial_message(
                        &ctx.principal.arn,
                        access.action,
                        access.resource,
                        DenyReason::NoResourceAllow,
                    ),
                ));
            }
        }
        let decision = coffer_policy::decide(identity.clone(), access.resource_policy, policy_ctx);
        let denied = match decision {
            Decision::Allow => return Ok(()),
            // Root answers only to a resource policy's explicit deny.
            Decision::ImplicitDeny if root => return Ok(()),
            Decision::ExplicitDeny => coffer_policy::evaluate(identity, access.resource_policy, policy_ctx)
                .deny_reason
                .unwrap_or(DenyReason::ExplicitIdentityDeny),
            Decision::ImplicitDeny => DenyReason::NoAllow,
        };
        Err(ServiceError::new(
            ErrorKind::AccessDenied,
            coffer_policy::denial_message(&ctx.principal.arn, access.action, access.resource, denied),
        ))
    }
}

/// Adds an access's resource tags and request keys to a caller's context.
pub(crate) fn with_request_keys(
    mut policy_ctx: coffer_policy::RequestContext,
    access: &Access<'_>,
) -> coffer_policy::RequestContext {
    let service = access.action.split(':').next().unwrap_or_default();
    for t in access.resource_tags {
        policy_ctx = policy_ctx.with_value(&format!("aws:ResourceTag/{}", t.key), t.value.as_str());
        if !service.is_empty() && service != "*" {
            policy_ctx = policy_ctx.with_value(&format!("{service}:ResourceTag/{}", t.key), t.value.as_str());
        }
    }
    for (key, values) in &access.keys {
        policy_ctx = policy_ctx.with_values(key, values.iter().cloned());
    }
    policy_ctx
}
