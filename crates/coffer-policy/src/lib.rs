//! The AWS IAM policy language: parsing and validation of identity- and resource-based policy
//! documents, and their evaluation against a request within one account. Pure: no I/O, no clock
//! (the request time is part of the [`RequestContext`]).
//!
//! ```
//! use coffer_policy::{decide, Decision, Policy, PolicyKind, RequestContext};
//!
//! let policy = Policy::parse(
//!     "read-only",
//!     r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:Get*",
//!         "Resource":"arn:aws:secretsmanager:us-east-1:111122223333:secret:app/*"}}"#,
//!     PolicyKind::Identity,
//! )?;
//! let ctx = RequestContext::new(
//!     "arn:aws:iam::111122223333:user/alice",
//!     "secretsmanager:GetSecretValue",
//!     "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf",
//! );
//! assert_eq!(decide([&policy], None, &ctx), Decision::Allow);
//! # Ok::<(), coffer_policy::PolicyError>(())
//! ```

mod condition;
mod context;
mod error;
mod eval;
mod pattern;
mod policy;

pub use context::RequestContext;
pub use error::PolicyError;
pub use eval::{
    decide, denial_message, evaluate, resource_grant, Decision, DenyReason, Evaluation, MatchedStatement, ResourceGrant,
};
pub use policy::{check_size, Effect, Policy, PolicyKind, PrincipalEntry, SizeLimit, Statement, Version};

/// A `*`/`?` wildcard pattern (case sensitive, no policy variables), compiled once: the policy
/// language's wildcard matching, for other searches.
#[derive(Debug, Clone)]
pub struct Wildcard(pattern::Pattern);

impl Wildcard {
    pub fn new(pattern: &str) -> Option<Wildcard> {
        pattern::Pattern::compile(pattern, true, false).ok().map(Wildcard)
    }

    pub fn matches(&self, text: &str) -> bool {
        self.0.matches(text, false, &RequestContext::default())
    }
}
