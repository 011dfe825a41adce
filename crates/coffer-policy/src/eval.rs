//! Evaluation within one account: explicit deny wins, then any allow, else implicit deny.

use crate::context::RequestContext;
use crate::policy::{Effect, Policy, PolicyKind, PrincipalMatch, Statement};

/// The outcome of evaluating a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// Why a request was denied, for the AccessDenied message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// No statement allows the action.
    NoAllow,
    /// A Deny statement of an identity-based policy applies.
    ExplicitIdentityDeny,
    /// A Deny statement of the resource-based policy applies.
    ExplicitResourceDeny,
    /// The resource-based policy neither allows the caller nor delegates to its account, where it must
    /// (a KMS key policy).
    NoResourceAllow,
}

/// A statement that decided the outcome (`index` is its position in the policy's `Statement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedStatement<'p> {
    pub policy_id: &'p str,
    pub kind: PolicyKind,
    pub sid: Option<&'p str>,
    pub index: usize,
    pub effect: Effect,
}

/// A decision with the statements that produced it: the applicable Deny statements for
/// `ExplicitDeny`, the applicable Allow statements for `Allow`, none for `ImplicitDeny`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation<'p> {
    pub decision: Decision,
    pub deny_reason: Option<DenyReason>,
    pub matched: Vec<MatchedStatement<'p>>,
}

impl Evaluation<'_> {
    pub fn is_allowed(&self) -> bool {
        self.decision == Decision::Allow
    }
}

/// How a statement bears on the request.
enum Hit {
    No,
    Deny,
    /// An allow that grants on its own.
    Allow,
    /// A resource-policy allow that names only the caller's account: it delegates to the account's
    /// identity-based policies and grants nothing by itself.
    Delegated,
}

fn judge(stmt: &Statement, kind: PolicyKind, ctx: &RequestContext) -> Hit {
    let principal = match (kind, &stmt.principals) {
        (PolicyKind::Resource, Some(p)) => {
            let m = p.matches(ctx);
            if stmt.not_principal {
                if m == PrincipalMatch::None {
                    PrincipalMatch::Direct
                } else {
                    PrincipalMatch::None
                }
            } else {
                m
            }
        }
        (PolicyKind::Resource, None) => PrincipalMatch::None,
        (PolicyKind::Identity, _) => PrincipalMatch::Direct,
    };
    if principal == PrincipalMatch::None || !stmt.applies(ctx) {
        return Hit::No;
    }
    match (stmt.effect, principal) {
        (Effect::Deny, _) => Hit::Deny,
        (Effect::Allow, PrincipalMatch::Direct) => Hit::Allow,
        (Effect::Allow, _) => Hit::Delegated,
    }
}

fn policies<'p, I>(identity: I, resource: Option<&'p Policy>) -> impl Iterator<Item = (&'p Policy, PolicyKind)>
where
    I: IntoIterator<Item = &'p Policy>,
{
    identity.into_iter().map(|p| (p, PolicyKind::Identity)).chain(resource.map(|p| (p, PolicyKind::Resource)))
}

/// The decision alone: stops at the first applicable Deny and allocates nothing.
pub fn decide<'p, I>(identity: I, resource: Option<&'p Policy>, ctx: &RequestContext) -> Decision
where
    I: IntoIterator<Item = &'p Policy>,
{
    let mut allowed = false;
    for (policy, kind) in policies(identity, resource) {
        for stmt in &policy.statements {
            match judge(stmt, kind, ctx) {
                Hit::Deny => return Decision::ExplicitDeny,
                Hit::Allow => allowed = true,
                Hit::No | Hit::Delegated => {}
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// Evaluates a request against the caller's identity-based policies and the resource's policy (if
/// any), as AWS does within one account, reporting the statements that decided it.
pub fn evaluate<'p, I>(identity: I, resource: Option<&'p Policy>, ctx: &RequestContext) -> Evaluation<'p>
where
    I: IntoIterator<Item = &'p Policy>,
{
    let mut denies = Vec::new();
    let mut allows = Vec::new();
    let mut deny_reason = None;
    let mut allowed = false;
    for (policy, kind) in policies(identity, resource) {
        for (index, stmt) in policy.statements.iter().enumerate() {
            let hit = judge(stmt, kind, ctx);
            let record = MatchedStatement { policy_id: &policy.id, kind, sid: stmt.sid(), index, effect: stmt.effect };
            match hit {
                Hit::No => {}
                Hit::Deny => {
                    deny_reason.get_or_insert(match kind {
                        PolicyKind::Identity => DenyReason::ExplicitIdentityDeny,
                        PolicyKind::Resource => DenyReason::ExplicitResourceDeny,
                    });
                    denies.push(record);
                }
                Hit::Allow => {
                    allowed = true;
                    allows.push(record);
                }
                Hit::Delegated => allows.push(record),
            }
        }
    }
    if deny_reason.is_some() {
        Evaluation { decision: Decision::ExplicitDeny, deny_reason, matched: denies }
    } else if allowed {
        Evaluation { decision: Decision::Allow, deny_reason: None, matched: allows }
    } else {
        Evaluation { decision: Decision::ImplicitDeny, deny_reason: Some(DenyReason::NoAllow), matched: Vec::new() }
    }
}

/// AWS's AccessDenied message, e.g. `User: arn:aws:iam::123456789012:user/bob is not authorized to
/// perform: secretsmanager:GetSecretValue on resource: arn:... because no identity-based policy
/// allows the secretsmanager:GetSecretValue action`.
pub fn denial_message(principal_arn: &str, action: &str, resource: &str, reason: DenyReason) -> String {
    let head = format!("User: {principal_arn} is not authorized to perform: {action} on resource: {resource}");
    match reason {
        DenyReason::NoAllow => format!("{head} because no identity-based policy allows the {action} action"),
        DenyReason::ExplicitIdentityDeny => format!("{head} with an explicit deny in an identity-based policy"),
        DenyReason::ExplicitResourceDeny => format!("{head} with an explicit deny in a resource-based policy"),
        DenyReason::NoResourceAllow => format!("{head} because no resource-based policy allows the {action} action"),
    }
}

/// What a resource-based policy grants a request by itself — for the policies that must let a caller
/// in whatever its identity policies say, such as a role's trust policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceGrant {
    /// A Deny statement applies.
    Denied,
    /// No statement applies.
    Nothing,
    /// An Allow names only the caller's account: the account's identity policies must allow too.
    Account,
    /// An Allow names the caller (or everyone): allowed without any identity policy.
    Direct,
}

/// Evaluates only a resource-based policy; see [`ResourceGrant`].
pub fn resource_grant(policy: &Policy, ctx: &RequestContext) -> ResourceGrant {
    let mut grant = ResourceGrant::Nothing;
    for stmt in &policy.statements {
        match judge(stmt, PolicyKind::Resource, ctx) {
            Hit::Deny => return ResourceGrant::Denied,
            Hit::Allow => grant = ResourceGrant::Direct,
            Hit::Delegated if grant == ResourceGrant::Nothing => grant = ResourceGrant::Account,
            Hit::Delegated | Hit::No => {}
        }
    }
    grant
}
