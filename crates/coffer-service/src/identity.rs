//! Who the caller is, as STS GetCallerIdentity reports it.

use crate::{RequestContext, Service};

/// GetCallerIdentity's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub arn: String,
    /// AWS's unique id of the principal: the account id for the root user.
    pub user_id: String,
    pub account: String,
}

impl Service {
    /// The authenticated principal of a request. Needs no permission, as in AWS.
    pub fn caller_identity(&self, ctx: &RequestContext) -> CallerIdentity {
        let p = &ctx.principal;
        let user_id = if p.arn.ends_with(":root") { p.account_id.clone() } else { p.access_key_id.clone() };
        CallerIdentity { arn: p.arn.clone(), user_id, account: p.account_id.clone() }
    }
}
