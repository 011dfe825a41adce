#![allow(dead_code)]

use coffer_policy::{decide, evaluate, Decision, Policy, PolicyKind, RequestContext};

pub const ACCT: &str = "111122223333";
pub const USER: &str = "arn:aws:iam::111122223333:user/alice";

pub fn identity(doc: &str) -> Policy {
    match Policy::parse("test-identity", doc, PolicyKind::Identity) {
        Ok(p) => p,
        Err(e) => panic!("identity policy failed to parse: {e}\n{doc}"),
    }
}

pub fn resource(doc: &str) -> Policy {
    match Policy::parse("test-resource", doc, PolicyKind::Resource) {
        Ok(p) => p,
        Err(e) => panic!("resource policy failed to parse: {e}\n{doc}"),
    }
}

/// A single-statement identity policy allowing everything, with the given condition block.
pub fn allow_with_condition(condition: &str) -> Policy {
    identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{condition}}}}}"#
    ))
}

pub fn ctx(action: &str, resource: &str) -> RequestContext {
    RequestContext::new(USER, action, resource)
}

/// `decide` and `evaluate` must always agree.
pub fn decision(identity: &[Policy], resource: Option<&Policy>, ctx: &RequestContext) -> Decision {
    let fast = decide(identity, resource, ctx);
    let full = evaluate(identity, resource, ctx);
    assert_eq!(fast, full.decision, "decide and evaluate disagree");
    fast
}

pub fn allowed(identity: &[Policy], resource: Option<&Policy>, ctx: &RequestContext) -> bool {
    decision(identity, resource, ctx) == Decision::Allow
}
