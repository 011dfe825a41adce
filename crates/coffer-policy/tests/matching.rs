//! Action and resource matching: wildcards, case rules, NotAction/NotResource, policy variables.

mod common;
use coffer_policy::RequestContext;
use common::*;

fn stmt_policy(action_elem: &str, resource_elem: &str) -> coffer_policy::Policy {
    identity(&format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",{action_elem},{resource_elem}}}]}}"#))
}

#[test]
fn action_wildcards() {
    // (policy action, request action, allowed)
    let cases: &[(&str, &str, bool)] = &[
        ("secretsmanager:GetSecretValue", "secretsmanager:GetSecretValue", true),
        ("secretsmanager:GetSecretValue", "secretsmanager:getsecretvalue", true),
        ("SecretsManager:GETSECRETVALUE", "secretsmanager:GetSecretValue", true),
        ("secretsmanager:Get*", "secretsmanager:GetSecretValue", true),
        ("secretsmanager:Get*", "secretsmanager:GetRandomPassword", true),
        ("secretsmanager:Get*", "secretsmanager:PutSecretValue", false),
        ("secretsmanager:Get*", "ssm:GetParameter", false),
        ("secretsmanager:*", "secretsmanager:DeleteSecret", true),
        ("*", "kms:Decrypt", true),
        ("ssm:GetParameter?", "ssm:GetParameters", true),
        ("ssm:GetParameter?", "ssm:GetParameter", false),
        ("ssm:GetParameter?", "ssm:GetParametersByPath", false),
        ("ssm:GetParameter", "ssm:GetParameters", false),
        ("ssm:*Parameter*", "ssm:DescribeParameters", true),
        ("ssm:*Parameter*", "ssm:PutParameter", true),
        ("kms:*crypt", "kms:Decrypt", true),
        ("kms:*crypt", "kms:Encrypt", true),
        ("kms:*crypt", "kms:ReEncrypt", true),
        ("kms:ReEncrypt*", "kms:ReEncryptFrom", true),
        ("kms:GenerateDataKey*", "kms:GenerateDataKeyWithoutPlaintext", true),
        ("kms:GenerateDataKey*", "kms:GenerateRandom", false),
        ("kms:Decrypt", "kms:Decrypt2", false),
        ("kms:Decrypt", "kms:Decryp", false),
    ];
    for (pat, action, want) in cases {
        let p = stmt_policy(&format!(r#""Action":"{pat}""#), r#""Resource":"*""#);
        let c = ctx(action, "arn:aws:kms:us-east-1:111122223333:key/k");
        assert_eq!(allowed(&[p], None, &c), *want, "{pat} vs {action}");
    }
}

#[test]
fn resource_wildcards() {
    let arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/password-AbCdEf";
    // (policy resource, request resource, allowed)
    let cases: &[(&str, &str, bool)] = &[
        ("*", arn, true),
        (arn, arn, true),
        (
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/password-AbCdEf",
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/PASSWORD-AbCdEf",
            false,
        ),
        ("arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/*", arn, true),
        ("arn:aws:secretsmanager:us-east-1:111122223333:secret:Prod/*", arn, false),
        ("arn:aws:secretsmanager:us-east-1:111122223333:secret:dev/*", arn, false),
        ("arn:aws:secretsmanager:us-east-1:*:secret:prod/*", arn, true),
        ("arn:aws:secretsmanager:*:*:secret:prod/*", arn, true),
        ("arn:aws:secretsmanager:*", arn, true),
        ("arn:aws:secretsmanager:us-west-2:*", arn, false),
        ("arn:aws:secretsmanager:us-east-1:111122223333:*", arn, true),
        ("arn:*:prod/db/*", arn, true),
        ("arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/password-??????", arn, true),
        ("arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/password-?????", arn, false),
        ("arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/password", arn, false),
        ("arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/password*", arn, true),
        (
            "arn:aws:ssm:us-east-1:111122223333:parameter/app/*",
            "arn:aws:ssm:us-east-1:111122223333:parameter/app/a/b/c",
            true,
        ),
        (
            "arn:aws:ssm:us-east-1:111122223333:parameter/app/*",
            "arn:aws:ssm:us-east-1:111122223333:parameter/application",
            false,
        ),
        (
            "arn:aws:ssm:us-east-1:111122223333:parameter/*/key",
            "arn:aws:ssm:us-east-1:111122223333:parameter/a/b/key",
            true,
        ),
        (
            "arn:aws:ssm:us-east-1:111122223333:parameter/*/key",
            "arn:aws:ssm:us-east-1:111122223333:parameter/a/b/keys",
            false,
        ),
        (
            "arn:aws:ssm:us-east-1:111122223333:parameter/*a*a*a",
            "arn:aws:ssm:us-east-1:111122223333:parameter/xaxaxaxa",
            true,
        ),
        (
            "arn:aws:ssm:us-east-1:111122223333:parameter/*a*a*a",
            "arn:aws:ssm:us-east-1:111122223333:parameter/xaxaxb",
            false,
        ),
        (
            "arn:aws:ssm:us-east-1:111122223333:parameter/ünï*",
            "arn:aws:ssm:us-east-1:111122223333:parameter/ünïcode",
            true,
        ),
    ];
    for (pat, res, want) in cases {
        let p = stmt_policy(r#""Action":"*""#, &format!(r#""Resource":"{pat}""#));
        assert_eq!(allowed(&[p], None, &ctx("secretsmanager:GetSecretValue", res)), *want, "{pat} vs {res}");
    }
}

#[test]
fn not_action_and_not_resource() {
    let res = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/x";
    // (action element, resource element, request action, request resource, allowed)
    let cases: &[(&str, &str, &str, &str, bool)] = &[
        (r#""NotAction":"secretsmanager:Delete*""#, r#""Resource":"*""#, "secretsmanager:GetSecretValue", res, true),
        (r#""NotAction":"secretsmanager:Delete*""#, r#""Resource":"*""#, "secretsmanager:DeleteSecret", res, false),
        (r#""NotAction":["iam:*","kms:*"]"#, r#""Resource":"*""#, "kms:Decrypt", res, false),
        (r#""NotAction":["iam:*","kms:*"]"#, r#""Resource":"*""#, "ssm:GetParameter", res, true),
        (
            r#""Action":"*""#,
            r#""NotResource":"arn:aws:secretsmanager:*:*:secret:prod/*""#,
            "secretsmanager:GetSecretValue",
            res,
            true,
        ),
        (
            r#""Action":"*""#,
            r#""NotResource":"arn:aws:secretsmanager:*:*:secret:app/*""#,
            "secretsmanager:GetSecretValue",
            res,
            false,
        ),
        (
            r#""Action":"*""#,
            r#""NotResource":["arn:aws:s3:::a","arn:aws:s3:::b"]"#,
            "s3:GetObject",
            "arn:aws:s3:::c",
            true,
        ),
        (
            r#""Action":"*""#,
            r#""NotResource":["arn:aws:s3:::a","arn:aws:s3:::b"]"#,
            "s3:GetObject",
            "arn:aws:s3:::b",
            false,
        ),
        (r#""NotAction":"s3:*""#, r#""NotResource":"arn:aws:s3:::*""#, "ssm:GetParameter", res, true),
        (r#""NotAction":"s3:*""#, r#""NotResource":"arn:aws:s3:::*""#, "s3:GetObject", res, false),
    ];
    for (a, r, action, resource, want) in cases {
        let p = stmt_policy(a, r);
        assert_eq!(allowed(&[p], None, &ctx(action, resource)), *want, "{a} {r} / {action} {resource}");
    }
}

#[test]
fn deny_with_not_action_and_not_resource() {
    // Deny everything except reads: reads stay allowed, writes are explicitly denied.
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"},
            {"Effect":"Deny","NotAction":["secretsmanager:Get*","secretsmanager:Describe*"],"Resource":"*"},
            {"Effect":"Deny","Action":"*","NotResource":"arn:aws:secretsmanager:*:*:secret:app/*"}]}"#,
    );
    let app = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db";
    let other = "arn:aws:secretsmanager:us-east-1:111122223333:secret:other/db";
    let cases: &[(&str, &str, bool)] = &[
        ("secretsmanager:GetSecretValue", app, true),
        ("secretsmanager:DescribeSecret", app, true),
        ("secretsmanager:PutSecretValue", app, false),
        ("secretsmanager:GetSecretValue", other, false),
    ];
    for (action, res, want) in cases {
        assert_eq!(allowed(std::slice::from_ref(&p), None, &ctx(action, res)), *want, "{action} {res}");
    }
}

#[test]
fn policy_variables() {
    let base = || {
        RequestContext::new(USER, "s3:GetObject", "")
            .with_username("alice")
            .with_userid("AIDAEXAMPLE")
            .with_principal_tag("Team", "blue")
            .with_source_ip("10.1.2.3")
    };
    let r = |res: &str| base().without("x").clone_with_resource(res);
    // (policy resource, request resource, context, allowed)
    let cases: Vec<(&str, &str, RequestContext, bool)> = vec![
        ("arn:aws:s3:::home/${aws:username}/*", "arn:aws:s3:::home/alice/file", r(""), true),
        ("arn:aws:s3:::home/${aws:username}/*", "arn:aws:s3:::home/bob/file", r(""), false),
        ("arn:aws:s3:::home/${aws:username}/*", "arn:aws:s3:::home/ALICE/file", r(""), false),
        ("arn:aws:s3:::home/${AWS:UserName}/*", "arn:aws:s3:::home/alice/file", r(""), true),
        ("arn:aws:s3:::home/${aws:userid}", "arn:aws:s3:::home/AIDAEXAMPLE", r(""), true),
        ("arn:aws:s3:::team/${aws:PrincipalTag/Team}/*", "arn:aws:s3:::team/blue/x", r(""), true),
        ("arn:aws:s3:::team/${aws:PrincipalTag/team}/*", "arn:aws:s3:::team/blue/x", r(""), true),
        ("arn:aws:s3:::team/${aws:PrincipalTag/Team}/*", "arn:aws:s3:::team/red/x", r(""), false),
        ("arn:aws:s3:::ip/${aws:SourceIp}", "arn:aws:s3:::ip/10.1.2.3", r(""), true),
        ("arn:aws:s3:::missing/${aws:PrincipalTag/Dept}/*", "arn:aws:s3:::missing//x", r(""), false),
        ("arn:aws:s3:::missing/${aws:PrincipalTag/Dept}*", "arn:aws:s3:::missing/anything", r(""), false),
        ("arn:aws:s3:::default/${aws:PrincipalTag/Dept, 'none'}/*", "arn:aws:s3:::default/none/x", r(""), true),
        ("arn:aws:s3:::default/${aws:username, 'none'}/*", "arn:aws:s3:::default/alice/x", r(""), true),
        ("arn:aws:s3:::lit/${*}", "arn:aws:s3:::lit/*", r(""), true),
        ("arn:aws:s3:::lit/${*}", "arn:aws:s3:::lit/anything", r(""), false),
        ("arn:aws:s3:::lit/${?}", "arn:aws:s3:::lit/?", r(""), true),
        ("arn:aws:s3:::lit/${?}", "arn:aws:s3:::lit/x", r(""), false),
        ("arn:aws:s3:::lit/${$}x", "arn:aws:s3:::lit/$x", r(""), true),
        (
            "arn:aws:s3:::multi/${aws:TagKeys}",
            "arn:aws:s3:::multi/a",
            r("").with_values("aws:TagKeys", ["a", "b"]),
            false,
        ),
    ];
    for (pat, res, c, want) in cases {
        let p = stmt_policy(r#""Action":"*""#, &format!(r#""Resource":"{pat}""#));
        let c = c.clone_with_resource(res);
        assert_eq!(allowed(&[p], None, &c), want, "{pat} vs {res}");
    }
}

#[test]
fn variables_are_literal_under_2008_version() {
    let p = identity(
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::home/${aws:username}"}]}"#,
    );
    let literal = ctx("s3:GetObject", "arn:aws:s3:::home/${aws:username}").with_username("alice");
    let substituted = ctx("s3:GetObject", "arn:aws:s3:::home/alice").with_username("alice");
    assert!(allowed(std::slice::from_ref(&p), None, &literal));
    assert!(!allowed(&[p], None, &substituted));
}

trait WithResource {
    fn clone_with_resource(self, res: &str) -> RequestContext;
}

impl WithResource for RequestContext {
    fn clone_with_resource(self, res: &str) -> RequestContext {
        let mut c = RequestContext::new(self.principal_arn(), self.action(), res);
        for key in ["aws:username", "aws:userid", "aws:principaltag/team", "aws:sourceip", "aws:tagkeys"] {
            if let Some(v) = self.get(key) {
                c = c.with_values(key, v.iter().cloned());
            }
        }
        c
    }
}
