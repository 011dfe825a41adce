//! The IAM policies of the seed documents (`/work/shared/seeds/`), used verbatim as fixtures:
//! seed 000's Lambda execution role and administrative policies, seed 001's statements (bare
//! statements in the seed, wrapped in a document here). Seed 002 only describes its three policies
//! (read-only, CI/CD without production deletes, rotation-limited); they are reconstructed from that
//! description. Seeds 003 and 004 contain no policy JSON.

mod common;
use coffer_policy::{check_size, evaluate, Decision, Policy, PolicyKind, RequestContext, SizeLimit};
use common::*;

const LAMBDA: &str = include_str!("fixtures/seed000_0.json");
const ADMIN: &str = include_str!("fixtures/seed000_1.json");
const PROD_TAGGED: &str = include_str!("fixtures/seed001_0.json");
const LEAST_PRIVILEGE: &str = include_str!("fixtures/seed001_1.json");
const READ_ONLY: &str = include_str!("fixtures/seed002_reconstructed_read_only.json");
const CICD: &str = include_str!("fixtures/seed002_reconstructed_cicd.json");
const ROTATION: &str = include_str!("fixtures/seed002_reconstructed_rotation.json");

const LAMBDA_ROLE: &str = "arn:aws:sts::123456789012:assumed-role/amplify-lambda/fn";

fn parse(doc: &str) -> Policy {
    check_size(doc, SizeLimit::IDENTITY).unwrap_or_else(|e| panic!("{e}"));
    identity(doc)
}

fn wrap(statement: &str) -> Policy {
    parse(&format!("{{\"Version\": \"2012-10-17\", \"Statement\": {statement}}}"))
}

fn param(region: &str, name: &str) -> String {
    format!("arn:aws:ssm:{region}:123456789012:parameter{name}")
}

fn check(policy: &Policy, principal: &str, cases: &[(&str, String, Decision)]) {
    for (action, resource, want) in cases {
        let c = RequestContext::new(principal, *action, resource.as_str());
        assert_eq!(decision(std::slice::from_ref(policy), None, &c), *want, "{action} on {resource}");
    }
}

#[test]
fn seed000_lambda_execution_role() {
    let p = parse(LAMBDA);
    assert_eq!(p.statements().len(), 2);
    use Decision::{Allow, ImplicitDeny};
    check(
        &p,
        LAMBDA_ROLE,
        &[
            ("ssm:GetParameter", param("us-west-1", "/amplify/TWILIO_AUTH_TOKEN"), Allow),
            ("ssm:GetParameter", param("us-west-1", "/amplify/TWILIO_ACCOUNT_SID"), Allow),
            ("ssm:GetParameter", param("us-west-1", "/amplify/TWILIO_FROM_PHONE"), Allow),
            ("ssm:GetParameters", param("us-west-1", "/amplify/SENDGRID_API_KEY"), Allow),
            ("ssm:GetParametersByPath", param("us-west-1", "/amplify/FROM_EMAIL"), Allow),
            ("ssm:GetParameter", param("us-west-1", "/amplify/DEBUG_EMAIL"), Allow),
            ("ssm:GetParameter", param("us-west-1", "/amplify/DEBUG_NOTIFICATIONS"), Allow),
            ("ssm:getparameter", param("us-west-1", "/amplify/TWILIO_AUTH_TOKEN"), Allow),
            ("ssm:GetParameter", param("us-west-1", "/amplify/FROM_EMAIL_BACKUP"), ImplicitDeny),
            ("ssm:GetParameter", param("us-west-1", "/amplify/twilio_auth_token"), ImplicitDeny),
            ("ssm:GetParameter", param("us-east-1", "/amplify/TWILIO_AUTH_TOKEN"), ImplicitDeny),
            ("ssm:GetParameter", param("us-west-1", "/amplify/NEW_SECRET_KEY"), ImplicitDeny),
            (
                "ssm:GetParameter",
                param("us-west-1", "/amplify/resource_reference/realtecheeclone/production-sandbox-70796fa803/AMPLIFY_DATA_GRAPHQL_ENDPOINT"),
                ImplicitDeny,
            ),
            ("ssm:PutParameter", param("us-west-1", "/amplify/TWILIO_AUTH_TOKEN"), ImplicitDeny),
            ("ssm:DeleteParameter", param("us-west-1", "/amplify/TWILIO_AUTH_TOKEN"), ImplicitDeny),
            ("ssm:GetParameterHistory", param("us-west-1", "/amplify/TWILIO_AUTH_TOKEN"), ImplicitDeny),
            ("kms:Decrypt", "arn:aws:kms:us-west-1:123456789012:key/alias/aws/ssm".into(), Allow),
            ("kms:Encrypt", "arn:aws:kms:us-west-1:123456789012:key/alias/aws/ssm".into(), ImplicitDeny),
            ("kms:Decrypt", "arn:aws:kms:us-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(), ImplicitDeny),
            ("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/alias/aws/ssm".into(), ImplicitDeny),
        ],
    );
}

#[test]
fn seed000_administrative_access() {
    let p = parse(ADMIN);
    use Decision::{Allow, ImplicitDeny};
    check(
        &p,
        "arn:aws:iam::123456789012:user/devops",
        &[
            ("ssm:PutParameter", param("us-west-1", "/amplify/NEW_SECRET_KEY"), Allow),
            ("ssm:DeleteParameter", param("us-west-1", "/amplify/TWILIO_AUTH_TOKEN"), Allow),
            ("ssm:GetParameterHistory", param("us-west-1", "/amplify/TWILIO_AUTH_TOKEN"), Allow),
            ("ssm:AddTagsToResource", param("us-west-1", "/amplify/FROM_EMAIL"), Allow),
            ("ssm:RemoveTagsFromResource", param("us-west-1", "/amplify/FROM_EMAIL"), Allow),
            (
                "ssm:GetParameter",
                param(
                    "us-west-1",
                    "/amplify/resource_reference/realtecheeclone/doron-sandbox-648934873b/AMPLIFY_DATA_DEFAULT_NAME",
                ),
                Allow,
            ),
            ("ssm:DescribeParameters", param("us-west-1", "/amplify/FROM_EMAIL"), ImplicitDeny),
            ("ssm:PutParameter", param("us-west-1", "/other/KEY"), ImplicitDeny),
            ("ssm:PutParameter", param("us-west-2", "/amplify/KEY"), ImplicitDeny),
            ("kms:Encrypt", "arn:aws:kms:us-west-1:123456789012:key/alias/aws/ssm".into(), Allow),
            ("kms:ReEncryptFrom", "arn:aws:kms:us-west-1:123456789012:key/alias/aws/ssm".into(), Allow),
            ("kms:ReEncryptTo", "arn:aws:kms:us-west-1:123456789012:key/alias/aws/ssm".into(), Allow),
            (
                "kms:GenerateDataKeyWithoutPlaintext",
                "arn:aws:kms:us-west-1:123456789012:key/alias/aws/ssm".into(),
                Allow,
            ),
            ("kms:DescribeKey", "arn:aws:kms:us-west-1:123456789012:key/alias/aws/ssm".into(), Allow),
            ("kms:ScheduleKeyDeletion", "arn:aws:kms:us-west-1:123456789012:key/alias/aws/ssm".into(), ImplicitDeny),
            ("kms:CreateKey", "*".into(), ImplicitDeny),
        ],
    );
}

#[test]
fn seed000_lambda_and_admin_together() {
    let both = [parse(LAMBDA), parse(ADMIN)];
    let c = RequestContext::new(LAMBDA_ROLE, "ssm:PutParameter", param("us-west-1", "/amplify/TWILIO_AUTH_TOKEN"));
    let e = evaluate(&both, None, &c);
    assert_eq!(e.decision, Decision::Allow);
    assert_eq!(e.matched.len(), 1);
    assert_eq!(e.matched[0].index, 0);
}

#[test]
fn seed001_principal_tag_condition() {
    let p = wrap(PROD_TAGGED);
    let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:/prod/backend/database_password-a1B2c3";
    let principal = "arn:aws:iam::123456789012:user/oncall";
    let base = || RequestContext::new(principal, "secretsmanager:GetSecretValue", secret);
    let cases: Vec<(&str, RequestContext, Decision)> = vec![
        ("prod tag", base().with_principal_tag("Environment", "prod"), Decision::Allow),
        ("tag key case-insensitive", base().with_principal_tag("environment", "prod"), Decision::Allow),
        ("dev tag", base().with_principal_tag("Environment", "dev"), Decision::ImplicitDeny),
        ("value case-sensitive", base().with_principal_tag("Environment", "Prod"), Decision::ImplicitDeny),
        ("no tag", base(), Decision::ImplicitDeny),
        ("other tag only", base().with_principal_tag("Team", "prod"), Decision::ImplicitDeny),
        (
            "non-prod secret",
            RequestContext::new(
                principal,
                "secretsmanager:GetSecretValue",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:/non-prod/backend/database_password-x",
            )
            .with_principal_tag("Environment", "prod"),
            Decision::ImplicitDeny,
        ),
        (
            "other region",
            RequestContext::new(
                principal,
                "secretsmanager:GetSecretValue",
                "arn:aws:secretsmanager:us-west-2:123456789012:secret:/prod/backend/jwt_secret-x",
            )
            .with_principal_tag("Environment", "prod"),
            Decision::ImplicitDeny,
        ),
        (
            "put not allowed",
            RequestContext::new(principal, "secretsmanager:PutSecretValue", secret)
                .with_principal_tag("Environment", "prod"),
            Decision::ImplicitDeny,
        ),
    ];
    for (name, c, want) in &cases {
        assert_eq!(decision(std::slice::from_ref(&p), None, c), *want, "{name}");
    }
}

#[test]
fn seed001_least_privilege() {
    let p = wrap(LEAST_PRIVILEGE);
    use Decision::{Allow, ImplicitDeny};
    let s = |name: &str| format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}");
    check(
        &p,
        "arn:aws:sts::123456789012:assumed-role/backend/task",
        &[
            ("secretsmanager:GetSecretValue", s("/prod/backend/database_password"), Allow),
            ("secretsmanager:GetSecretValue", s("/prod/backend/jwt_secret"), Allow),
            // Exact ARNs without the random suffix: a real secret ARN with "-AbCdEf" does not match.
            ("secretsmanager:GetSecretValue", s("/prod/backend/jwt_secret-AbCdEf"), ImplicitDeny),
            ("secretsmanager:GetSecretValue", s("/prod/backend/stripe_key"), ImplicitDeny),
            ("secretsmanager:DescribeSecret", s("/prod/backend/jwt_secret"), ImplicitDeny),
        ],
    );
}

#[test]
fn seed002_read_only() {
    let p = parse(READ_ONLY);
    use Decision::{Allow, ImplicitDeny};
    let s = |name: &str| format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:whatsapp-saas/mvp/{name}");
    check(
        &p,
        "arn:aws:sts::123456789012:assumed-role/app-secrets-read-role/ecs-task",
        &[
            ("secretsmanager:GetSecretValue", s("admin-token-AbCdEf"), Allow),
            ("secretsmanager:GetSecretValue", s("openai-api-key-AbCdEf"), Allow),
            ("secretsmanager:DescribeSecret", s("database-url-AbCdEf"), Allow),
            ("secretsmanager:PutSecretValue", s("admin-token-AbCdEf"), ImplicitDeny),
            ("secretsmanager:CreateSecret", s("new-secret-name-AbCdEf"), ImplicitDeny),
            ("secretsmanager:DeleteSecret", s("admin-token-AbCdEf"), ImplicitDeny),
            ("secretsmanager:ListSecrets", "*".into(), ImplicitDeny),
            (
                "secretsmanager:GetSecretValue",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:whatsapp-saas/prod/admin-token-AbCdEf".into(),
                ImplicitDeny,
            ),
        ],
    );
}

#[test]
fn seed002_cicd_without_production_deletes() {
    let p = parse(CICD);
    let s = |name: &str| format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:whatsapp-saas/mvp/{name}");
    let user = "arn:aws:iam::123456789012:user/github-actions-user";
    let cases: Vec<(&str, RequestContext, Decision)> = vec![
        ("create", RequestContext::new(user, "secretsmanager:CreateSecret", s("new-secret-AbCdEf")), Decision::Allow),
        ("put", RequestContext::new(user, "secretsmanager:PutSecretValue", s("admin-token-AbCdEf")), Decision::Allow),
        ("list", RequestContext::new(user, "secretsmanager:ListSecrets", "*"), Decision::Allow),
        (
            "delete production",
            RequestContext::new(user, "secretsmanager:DeleteSecret", s("admin-token-AbCdEf"))
                .with_value("secretsmanager:ResourceTag/Environment", "production"),
            Decision::ExplicitDeny,
        ),
        (
            "delete staging",
            RequestContext::new(user, "secretsmanager:DeleteSecret", s("admin-token-AbCdEf"))
                .with_value("secretsmanager:ResourceTag/Environment", "staging"),
            Decision::Allow,
        ),
        (
            "delete untagged",
            RequestContext::new(user, "secretsmanager:DeleteSecret", s("scratch-AbCdEf")),
            Decision::Allow,
        ),
        (
            "delete production outside mvp",
            RequestContext::new(
                user,
                "secretsmanager:DeleteSecret",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:other/x",
            )
            .with_value("secretsmanager:ResourceTag/Environment", "production"),
            Decision::ExplicitDeny,
        ),
        (
            "put outside mvp",
            RequestContext::new(
                user,
                "secretsmanager:PutSecretValue",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:other/x",
            ),
            Decision::ImplicitDeny,
        ),
    ];
    for (name, c, want) in &cases {
        assert_eq!(decision(std::slice::from_ref(&p), None, c), *want, "{name}");
    }
    let e = evaluate(std::slice::from_ref(&p), None, &cases[3].1);
    assert_eq!(e.matched.len(), 1);
    assert_eq!(e.matched[0].sid, Some("NoProductionDeletes"));
    assert_eq!(e.matched[0].index, 2);
    assert_eq!(
        coffer_policy::denial_message(user, "secretsmanager:DeleteSecret", &s("admin-token-AbCdEf"), e.deny_reason.unwrap_or(coffer_policy::DenyReason::NoAllow)),
        format!("User: {user} is not authorized to perform: secretsmanager:DeleteSecret on resource: {} with an explicit deny in an identity-based policy", s("admin-token-AbCdEf"))
    );
}

#[test]
fn seed002_rotation_limited() {
    let p = parse(ROTATION);
    use Decision::{Allow, ExplicitDeny, ImplicitDeny};
    let s = |name: &str| format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:whatsapp-saas/mvp/{name}");
    check(
        &p,
        "arn:aws:sts::123456789012:assumed-role/rotation-lambda-role/rotate",
        &[
            ("secretsmanager:RotateSecret", s("admin-token-AbCdEf"), Allow),
            ("secretsmanager:RotateSecret", s("meta-app-secret-AbCdEf"), Allow),
            ("secretsmanager:RotateSecret", s("meta-verify-token-AbCdEf"), Allow),
            ("secretsmanager:PutSecretValue", s("meta-app-secret-AbCdEf"), Allow),
            ("secretsmanager:UpdateSecretVersionStage", s("admin-token-AbCdEf"), Allow),
            ("secretsmanager:RotateSecret", s("database-url-AbCdEf"), ExplicitDeny),
            ("secretsmanager:RotateSecret", s("redis-url-AbCdEf"), ExplicitDeny),
            ("secretsmanager:GetSecretValue", s("database-url-AbCdEf"), ImplicitDeny),
            ("secretsmanager:RotateSecret", s("openai-api-key-AbCdEf"), ImplicitDeny),
            ("secretsmanager:DeleteSecret", s("admin-token-AbCdEf"), ImplicitDeny),
            (
                "lambda:InvokeFunction",
                "arn:aws:lambda:us-east-1:123456789012:function:whatsapp-saas-admin-rotation".into(),
                Allow,
            ),
            ("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:123456789012:function:other".into(), ImplicitDeny),
        ],
    );
}

#[test]
fn seed_policies_also_parse_as_resource_kind_errors() {
    // Identity policies carry no Principal: as resource policies they are rejected, with a location.
    for doc in [LAMBDA, ADMIN, READ_ONLY, CICD, ROTATION] {
        match Policy::parse("x", doc, PolicyKind::Resource) {
            Err(e) => assert_eq!(e.to_string(), "Statement[0]: must contain Principal or NotPrincipal"),
            Ok(_) => panic!("accepted as a resource policy"),
        }
    }
}
