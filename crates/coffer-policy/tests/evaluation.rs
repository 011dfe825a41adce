//! Evaluation within one account: explicit deny, identity + resource policies, Principal and
//! NotPrincipal, matched statements, denial messages.

mod common;
use coffer_policy::{denial_message, evaluate, Decision, DenyReason, Effect, PolicyKind, RequestContext};
use common::*;

const SECRET: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf";
const GET: &str = "secretsmanager:GetSecretValue";
const ROLE: &str = "arn:aws:iam::111122223333:role/app";
const ROLE_WITH_PATH: &str = "arn:aws:iam::111122223333:role/service/app";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/app/i-0123";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const ROOT: &str = "arn:aws:iam::111122223333:root";
const OTHER: &str = "arn:aws:iam::444455556666:user/eve";

fn allow_get() -> coffer_policy::Policy {
    identity(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#,
    )
}

fn deny_get() -> coffer_policy::Policy {
    identity(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoRead","Effect":"Deny","Action":"secretsmanager:Get*","Resource":"*"}]}"#,
    )
}

fn rp(effect: &str, principal: &str) -> coffer_policy::Policy {
    resource(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"R","Effect":"{effect}",{principal},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}]}}"#
    ))
}

#[test]
fn identity_only() {
    let c = ctx(GET, SECRET);
    assert_eq!(decision(&[], None, &c), Decision::ImplicitDeny);
    assert_eq!(decision(&[allow_get()], None, &c), Decision::Allow);
    assert_eq!(decision(&[deny_get()], None, &c), Decision::ExplicitDeny);
    assert_eq!(decision(&[allow_get(), deny_get()], None, &c), Decision::ExplicitDeny);
    assert_eq!(decision(&[deny_get(), allow_get()], None, &c), Decision::ExplicitDeny);
    assert_eq!(decision(&[allow_get()], None, &ctx("secretsmanager:PutSecretValue", SECRET)), Decision::ImplicitDeny);
    // Deny in the same policy as the allow.
    let both = identity(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"secretsmanager:DeleteSecret","Resource":"*"}]}"#,
    );
    assert_eq!(
        decision(std::slice::from_ref(&both), None, &ctx("secretsmanager:DeleteSecret", SECRET)),
        Decision::ExplicitDeny
    );
    assert_eq!(decision(&[both], None, &ctx("secretsmanager:CreateSecret", SECRET)), Decision::Allow);
}

/// (name, identity policies, resource policy, caller, decision)
type Case = (&'static str, Vec<coffer_policy::Policy>, Option<coffer_policy::Policy>, &'static str, Decision);

#[test]
fn identity_and_resource_policies() {
    // (name, identity policies, resource policy, caller, decision)
    let cases: Vec<Case> = vec![
        (
            "resource allows the user directly",
            vec![],
            Some(rp("Allow", &format!(r#""Principal":{{"AWS":"{USER}"}}"#))),
            USER,
            Decision::Allow,
        ),
        (
            "resource allows another user",
            vec![],
            Some(rp("Allow", &format!(r#""Principal":{{"AWS":"{BOB}"}}"#))),
            USER,
            Decision::ImplicitDeny,
        ),
        ("resource allows everyone", vec![], Some(rp("Allow", r#""Principal":"*""#)), USER, Decision::Allow),
        ("resource allows AWS star", vec![], Some(rp("Allow", r#""Principal":{"AWS":"*"}"#)), USER, Decision::Allow),
        (
            "resource allows list including user",
            vec![],
            Some(rp("Allow", &format!(r#""Principal":{{"AWS":["{BOB}","{USER}"]}}"#))),
            USER,
            Decision::Allow,
        ),
        (
            "identity allows, resource silent",
            vec![allow_get()],
            Some(rp("Allow", &format!(r#""Principal":{{"AWS":"{BOB}"}}"#))),
            USER,
            Decision::Allow,
        ),
        (
            "identity allows, resource denies",
            vec![allow_get()],
            Some(rp("Deny", &format!(r#""Principal":{{"AWS":"{USER}"}}"#))),
            USER,
            Decision::ExplicitDeny,
        ),
        (
            "resource allows, identity denies",
            vec![deny_get()],
            Some(rp("Allow", r#""Principal":"*""#)),
            USER,
            Decision::ExplicitDeny,
        ),
        (
            "resource denies everyone",
            vec![allow_get()],
            Some(rp("Deny", r#""Principal":"*""#)),
            USER,
            Decision::ExplicitDeny,
        ),
        (
            "resource denies other user only",
            vec![allow_get()],
            Some(rp("Deny", &format!(r#""Principal":{{"AWS":"{BOB}"}}"#))),
            USER,
            Decision::Allow,
        ),
        (
            "account root alone does not grant",
            vec![],
            Some(rp("Allow", &format!(r#""Principal":{{"AWS":"{ROOT}"}}"#))),
            USER,
            Decision::ImplicitDeny,
        ),
        (
            "account id alone does not grant",
            vec![],
            Some(rp("Allow", r#""Principal":{"AWS":"111122223333"}"#)),
            USER,
            Decision::ImplicitDeny,
        ),
        (
            "account root + identity allow",
            vec![allow_get()],
            Some(rp("Allow", &format!(r#""Principal":{{"AWS":"{ROOT}"}}"#))),
            USER,
            Decision::Allow,
        ),
        (
            "account root deny covers every user",
            vec![allow_get()],
            Some(rp("Deny", &format!(r#""Principal":{{"AWS":"{ROOT}"}}"#))),
            USER,
            Decision::ExplicitDeny,
        ),
        (
            "account id deny covers every user",
            vec![allow_get()],
            Some(rp("Deny", r#""Principal":{"AWS":"111122223333"}"#)),
            USER,
            Decision::ExplicitDeny,
        ),
        (
            "other account deny does not apply",
            vec![allow_get()],
            Some(rp("Deny", r#""Principal":{"AWS":"444455556666"}"#)),
            USER,
            Decision::Allow,
        ),
        (
            "root user is the account",
            vec![],
            Some(rp("Allow", &format!(r#""Principal":{{"AWS":"{ROOT}"}}"#))),
            ROOT,
            Decision::Allow,
        ),
        (
            "role ARN matches its session",
            vec![],
            Some(rp("Allow", &format!(r#""Principal":{{"AWS":"{ROLE}"}}"#))),
            SESSION,
            Decision::Allow,
        ),
        (
            "role with path matches its session",
            vec![],
            Some(rp("Allow", &format!(r#""Principal":{{"AWS":"{ROLE_WITH_PATH}"}}"#))),
            SESSION,
            Decision::Allow,
        ),
        (
            "session ARN matches itself",
            vec![],
            Some(rp("Allow", &format!(r#""Principal":{{"AWS":"{SESSION}"}}"#))),
            SESSION,
            Decision::Allow,
        ),
        (
            "other role does not match session",
            vec![],
            Some(rp("Allow", r#""Principal":{"AWS":"arn:aws:iam::111122223333:role/other"}"#)),
            SESSION,
            Decision::ImplicitDeny,
        ),
        (
            "role in other account does not match",
            vec![],
            Some(rp("Allow", r#""Principal":{"AWS":"arn:aws:iam::444455556666:role/app"}"#)),
            SESSION,
            Decision::ImplicitDeny,
        ),
        (
            "role ARN does not match a user",
            vec![],
            Some(rp("Allow", &format!(r#""Principal":{{"AWS":"{ROLE}"}}"#))),
            USER,
            Decision::ImplicitDeny,
        ),
        (
            "NotPrincipal deny spares the named user",
            vec![allow_get()],
            Some(rp("Deny", &format!(r#""NotPrincipal":{{"AWS":"{USER}"}}"#))),
            USER,
            Decision::Allow,
        ),
        (
            "NotPrincipal deny hits others",
            vec![allow_get()],
            Some(rp("Deny", &format!(r#""NotPrincipal":{{"AWS":"{USER}"}}"#))),
            BOB,
            Decision::ExplicitDeny,
        ),
        (
            "NotPrincipal allow grants others",
            vec![],
            Some(rp("Allow", &format!(r#""NotPrincipal":{{"AWS":"{BOB}"}}"#))),
            USER,
            Decision::Allow,
        ),
        (
            "NotPrincipal allow excludes the named",
            vec![],
            Some(rp("Allow", &format!(r#""NotPrincipal":{{"AWS":"{USER}"}}"#))),
            USER,
            Decision::ImplicitDeny,
        ),
        (
            "NotPrincipal with role spares session",
            vec![allow_get()],
            Some(rp("Deny", &format!(r#""NotPrincipal":{{"AWS":"{ROLE}"}}"#))),
            SESSION,
            Decision::Allow,
        ),
        (
            "service principal does not match a user",
            vec![],
            Some(rp("Allow", r#""Principal":{"Service":"lambda.amazonaws.com"}"#)),
            USER,
            Decision::ImplicitDeny,
        ),
        (
            "other account user, resource allows account",
            vec![],
            Some(rp("Allow", r#""Principal":{"AWS":"111122223333"}"#)),
            OTHER,
            Decision::ImplicitDeny,
        ),
    ];
    for (name, ids, res, caller, want) in &cases {
        let c = RequestContext::new(*caller, GET, SECRET);
        assert_eq!(decision(ids, res.as_ref(), &c), *want, "{name}");
    }
}

#[test]
fn service_principal() {
    let p = rp("Allow", r#""Principal":{"Service":["lambda.amazonaws.com","ssm.amazonaws.com"]}"#);
    let c = RequestContext::new("arn:aws:sts::111122223333:assumed-role/x/y", GET, SECRET)
        .with_service_principal("ssm.amazonaws.com");
    assert_eq!(decision(&[], Some(&p), &c), Decision::Allow);
    let c = c.with_service_principal("ec2.amazonaws.com");
    assert_eq!(decision(&[], Some(&p), &c), Decision::ImplicitDeny);
}

#[test]
fn resource_statement_conditions_and_resources() {
    let p = resource(
        r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"Tls","Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}},
            {"Sid":"App","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"StringEquals":{"secretsmanager:VersionStage":"AWSCURRENT"}}}]}"#,
    );
    let base = RequestContext::new(SESSION, GET, SECRET);
    let cases: Vec<(&str, RequestContext, Decision)> = vec![
        (
            "tls + current",
            base.clone().with_secure_transport(true).with_value("secretsmanager:VersionStage", "AWSCURRENT"),
            Decision::Allow,
        ),
        (
            "no tls",
            base.clone().with_secure_transport(false).with_value("secretsmanager:VersionStage", "AWSCURRENT"),
            Decision::ExplicitDeny,
        ),
        (
            "previous stage",
            base.clone().with_secure_transport(true).with_value("secretsmanager:VersionStage", "AWSPREVIOUS"),
            Decision::ImplicitDeny,
        ),
        ("stage missing", base.clone().with_secure_transport(true), Decision::ImplicitDeny),
    ];
    for (name, c, want) in &cases {
        assert_eq!(decision(&[], Some(&p), c), *want, "{name}");
    }
}

#[test]
fn matched_statements() {
    let ids = [
        allow_get(),
        identity(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"},{"Sid":"Other","Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
        ),
    ];
    let c = ctx(GET, SECRET);
    let e = evaluate(&ids, None, &c);
    assert!(e.is_allowed());
    assert_eq!(e.deny_reason, None);
    assert_eq!(e.matched.len(), 2);
    assert_eq!((e.matched[0].sid, e.matched[0].index, e.matched[0].effect), (Some("Read"), 0, Effect::Allow));
    assert_eq!((e.matched[1].sid, e.matched[1].index), (None, 0));
    assert_eq!(e.matched[0].policy_id, "test-identity");
    assert_eq!(e.matched[0].kind, PolicyKind::Identity);

    let res = rp("Deny", r#""Principal":"*""#);
    let e = evaluate(&ids, Some(&res), &c);
    assert_eq!(e.decision, Decision::ExplicitDeny);
    assert_eq!(e.deny_reason, Some(DenyReason::ExplicitResourceDeny));
    assert_eq!(e.matched.len(), 1);
    assert_eq!(
        (e.matched[0].policy_id, e.matched[0].kind, e.matched[0].sid),
        ("test-resource", PolicyKind::Resource, Some("R"))
    );

    let both = [allow_get(), deny_get()];
    let e = evaluate(&both, Some(&res), &c);
    assert_eq!(e.deny_reason, Some(DenyReason::ExplicitIdentityDeny));
    assert_eq!(e.matched.len(), 2);
    assert!(e.matched.iter().all(|m| m.effect == Effect::Deny));

    let e = evaluate(&ids, None, &ctx("ssm:GetParameter", SECRET));
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.deny_reason, Some(DenyReason::NoAllow));
    assert!(e.matched.is_empty());
}

#[test]
fn denial_messages() {
    let cases: &[(DenyReason, &str)] = &[
        (
            DenyReason::NoAllow,
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf because no identity-based policy allows the secretsmanager:GetSecretValue action",
        ),
        (
            DenyReason::ExplicitIdentityDeny,
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf with an explicit deny in an identity-based policy",
        ),
        (
            DenyReason::ExplicitResourceDeny,
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf with an explicit deny in a resource-based policy",
        ),
    ];
    for (reason, want) in cases {
        assert_eq!(denial_message(USER, GET, SECRET, *reason), *want);
    }
}

#[test]
fn compiled_policy_is_reusable_across_requests() {
    // One compiled 20-statement policy, many contexts.
    let mut stmts = Vec::new();
    for i in 0..20 {
        stmts.push(format!(
            r#"{{"Sid":"S{i}","Effect":"Allow","Action":"secretsmanager:Get*","Resource":"arn:aws:secretsmanager:*:*:secret:app{i}/*"}}"#
        ));
    }
    let p = identity(&format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, stmts.join(",")));
    for i in 0..40 {
        let c = ctx(GET, &format!("arn:aws:secretsmanager:us-east-1:111122223333:secret:app{i}/x"));
        let want = if i < 20 { Decision::Allow } else { Decision::ImplicitDeny };
        assert_eq!(decision(std::slice::from_ref(&p), None, &c), want, "app{i}");
        if i < 20 {
            let e = evaluate(std::slice::from_ref(&p), None, &c);
            let expected_sid = format!("S{i}");
            assert!(e.matched.iter().any(|m| m.sid == Some(expected_sid.as_str())), "app{i}");
        }
    }
}

#[test]
fn resource_grant_tells_direct_from_account_delegation() {
    use coffer_policy::{resource_grant, ResourceGrant};
    let trust = |principal: &str, effect: &str| {
        resource(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}]}}"#
        ))
    };
    let assume = |caller: &str| RequestContext::new(caller, "sts:AssumeRole", ROLE);
    let cases = [
        (trust(BOB, "Allow"), BOB, ResourceGrant::Direct),
        (trust(ROOT, "Allow"), BOB, ResourceGrant::Account),
        (trust("111122223333", "Allow"), SESSION, ResourceGrant::Account),
        (trust(ROOT, "Allow"), OTHER, ResourceGrant::Nothing),
        (trust(BOB, "Allow"), OTHER, ResourceGrant::Nothing),
        (trust("*", "Allow"), OTHER, ResourceGrant::Direct),
        (trust(BOB, "Deny"), BOB, ResourceGrant::Denied),
        (trust(ROLE, "Allow"), SESSION, ResourceGrant::Direct),
    ];
    for (i, (policy, caller, expected)) in cases.iter().enumerate() {
        assert_eq!(resource_grant(policy, &assume(caller)), *expected, "case {i}: {caller}");
    }
    // A statement for another action grants nothing.
    let ctx = RequestContext::new(BOB, "sts:TagSession", ROLE);
    assert_eq!(resource_grant(&trust(BOB, "Allow"), &ctx), ResourceGrant::Nothing);
}

#[test]
fn policies_say_whether_they_read_condition_keys() {
    let plain = identity(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:Get*","Resource":"*"}]}"#,
    );
    let conditioned = identity(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#,
    );
    let variable = identity(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*AccessKey*","Resource":"arn:aws:iam::*:user/${aws:username}"}]}"#,
    );
    // Version 2008-10-17 has no policy variables: `${...}` is literal text there.
    let old = identity(
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"arn:aws:iam::*:user/${aws:username}"}]}"#,
    );
    assert!(!plain.uses_condition_keys());
    assert!(conditioned.uses_condition_keys());
    assert!(variable.uses_condition_keys());
    assert!(!old.uses_condition_keys());
}
