//! IAM and STS in the service layer: entities and their rules, the effective policies of users, groups
//! and roles, AssumeRole's trust logic, session credentials (expiry, tampering, deleted roles), TOTP MFA,
//! and the simulator agreeing with real authorization.

#![allow(clippy::unwrap_used)]

mod common;

use coffer_service::iam::ops::PolicyTarget;
use coffer_service::iam::simulate::SimulationInput;
use coffer_service::iam::sts::{totp_code, AssumeRoleInput};
use coffer_service::{Access, Clock, ErrorKind, RequestContext, Service};
use coffer_store::Tag;
use common::{root_ctx, ACCOUNT};

const REGION: &str = "us-east-1";

fn root() -> RequestContext {
    root_ctx(REGION)
}

fn tag(k: &str, v: &str) -> Tag {
    Tag { key: k.into(), value: v.into() }
}

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":{statements}}}"#)
}

fn trust_account() -> String {
    doc(&format!(
        r#"[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]"#
    ))
}

/// A request context of an IAM user signed with its long-term key, as the front-end builds it.
async fn user_ctx(service: &Service, name: &str) -> RequestContext {
    let key = service.create_user_access_key(&root(), Some(name.into())).await.unwrap();
    let cred = service.credential(&key.info.access_key_id).await.unwrap().unwrap();
    RequestContext { principal: cred.principal.clone(), ..root() }
}

/// A request context for temporary credentials.
async fn session_ctx(
    service: &Service,
    key_id: &str,
    token: &str,
) -> Result<RequestContext, coffer_service::ServiceError> {
    let cred = service.session_credential(key_id, token).await?;
    Ok(RequestContext { principal: cred.principal.clone(), ..root() })
}

async fn allowed(service: &Service, ctx: &RequestContext, action: &str, resource: &str) -> bool {
    match service.authorize(ctx, &Access::new(action, resource)).await {
        Ok(()) => true,
        Err(e) if e.kind == ErrorKind::AccessDenied => false,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

const SECRET_PROD: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:/prod/db-AbCdEf";
const SECRET_DEV: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:/dev/db-AbCdEf";

#[tokio::test]
async fn users_get_policies_inline_attached_and_through_groups() {
    let (s, _, _) = common::service();
    let u = s.create_user(&root(), "alice", Some("/team/".into()), vec![tag("Environment", "dev")]).await.unwrap();
    assert_eq!(u.arn, format!("arn:aws:iam::{ACCOUNT}:user/team/alice"));
    assert!(u.user_id.starts_with("AIDA"));
    let alice = user_ctx(&s, "alice").await;
    assert!(!allowed(&s, &alice, "secretsmanager:GetSecretValue", SECRET_DEV).await, "deny by default");

    // Inline.
    let read_dev = doc(
        r#"{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:*:*:secret:/dev/*"}"#,
    );
    s.put_inline_policy(&root(), PolicyTarget::User("alice".into()), "read-dev", &read_dev).await.unwrap();
    assert!(allowed(&s, &alice, "secretsmanager:GetSecretValue", SECRET_DEV).await);
    assert!(!allowed(&s, &alice, "secretsmanager:GetSecretValue", SECRET_PROD).await);

    // Through a group's managed policy.
    let read_prod = doc(
        r#"{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:*:*:secret:/prod/*"}"#,
    );
    let p = s.create_policy(&root(), "read-prod", None, &read_prod, None, vec![]).await.unwrap();
    s.create_group(&root(), "oncall", None).await.unwrap();
    s.attach_policy(&root(), PolicyTarget::Group("oncall".into()), &p.arn).await.unwrap();
    assert!(!allowed(&s, &alice, "secretsmanager:GetSecretValue", SECRET_PROD).await);
    s.add_user_to_group(&root(), "oncall", "alice").await.unwrap();
    assert!(allowed(&s, &alice, "secretsmanager:GetSecretValue", SECRET_PROD).await);
    assert_eq!(s.get_policy(&root(), &p.arn).await.unwrap().attachment_count, 1);

    // A new default version changes what the attachment grants.
    let read_nothing = doc(r#"{"Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*"}"#);
    let v2 = s.create_policy_version(&root(), &p.arn, &read_nothing, true).await.unwrap();
    assert_eq!(v2.version_id, "v2");
    assert!(!allowed(&s, &alice, "secretsmanager:GetSecretValue", SECRET_PROD).await);
    s.set_default_policy_version(&root(), &p.arn, "v1").await.unwrap();
    assert!(allowed(&s, &alice, "secretsmanager:GetSecretValue", SECRET_PROD).await);

    // Explicit deny in another policy wins.
    let deny = doc(
        r#"{"Effect":"Deny","Action":"secretsmanager:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/Environment":"dev"}}}"#,
    );
    s.put_inline_policy(&root(), PolicyTarget::User("alice".into()), "no-dev", &deny).await.unwrap();
    assert!(!allowed(&s, &alice, "secretsmanager:GetSecretValue", SECRET_DEV).await);
    let err = s.authorize(&alice, &Access::new("secretsmanager:GetSecretValue", SECRET_DEV)).await.unwrap_err();
    assert!(err.message.ends_with("with an explicit deny in an identity-based policy"), "{}", err.message);
    s.untag_user(&root(), "alice", vec!["environment".into()]).await.unwrap();
    assert!(allowed(&s, &alice, "secretsmanager:GetSecretValue", SECRET_DEV).await, "the condition follows the tag");

    // Removing the user from the group takes the group's grants away.
    s.remove_user_from_group(&root(), "oncall", "alice").await.unwrap();
    assert!(!allowed(&s, &alice, "secretsmanager:GetSecretValue", SECRET_PROD).await);
}

#[tokio::test]
async fn entity_rules_match_iam() {
    let (s, _, _) = common::service();
    s.create_user(&root(), "bob", None, vec![]).await.unwrap();
    let e = s.create_user(&root(), "bob", None, vec![]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists);
    assert_eq!(e.message, "User with name bob already exists.");
    assert_eq!(s.create_user(&root(), "bad name", None, vec![]).await.unwrap_err().kind, ErrorKind::Validation);
    assert_eq!(
        s.create_user(&root(), "x", Some("nopath".into()), vec![]).await.unwrap_err().kind,
        ErrorKind::Validation
    );
    let e = s.get_user(&root(), Some("nobody".into())).await.unwrap_err();
    assert_eq!((e.kind, e.message.as_str()), (ErrorKind::NotFound, "The user with name nobody cannot be found."));

    // Two access keys at most; a user with keys, policies or groups cannot be deleted.
    let k1 = s.create_user_access_key(&root(), Some("bob".into())).await.unwrap();
    s.create_user_access_key(&root(), Some("bob".into())).await.unwrap();
    assert_eq!(s.create_user_access_key(&root(), Some("bob".into())).await.unwrap_err().kind, ErrorKind::LimitExceeded);
    assert_eq!(s.delete_user(&root(), "bob").await.unwrap_err().kind, ErrorKind::DeleteConflict);
    for k in s.list_user_access_keys(&root(), Some("bob".into())).await.unwrap() {
        s.delete_user_access_key(&root(), Some("bob".into()), &k.access_key_id).await.unwrap();
    }
    assert!(s.credential(&k1.info.access_key_id).await.unwrap().is_none(), "a deleted key is gone");
    s.put_inline_policy(
        &root(),
        PolicyTarget::User("bob".into()),
        "p",
        &doc(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#),
    )
    .await
    .unwrap();
    assert_eq!(s.delete_user(&root(), "bob").await.unwrap_err().kind, ErrorKind::DeleteConflict);
    s.delete_inline_policy(&root(), PolicyTarget::User("bob".into()), "p").await.unwrap();
    s.delete_user(&root(), "bob").await.unwrap();
    assert!(s.list_users(&root(), None).await.unwrap().is_empty());

    // Malformed documents are refused with the fault's position.
    let e = s
        .create_policy(
            &root(),
            "broken",
            None,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"x:y"}"#,
            None,
            vec![],
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MalformedPolicy);
    assert!(e.message.contains("line 1"), "{}", e.message);
    let e = s
        .create_policy(&root(), "no-resource", None, &doc(r#"[{"Effect":"Allow","Action":"x:y"}]"#), None, vec![])
        .await
        .unwrap_err();
    assert!(e.message.contains("Statement[0]"), "{}", e.message);
    // A trust policy must name principals.
    let e = s
        .create_role(&root(), "r", None, &doc(r#"{"Effect":"Allow","Action":"sts:AssumeRole"}"#), None, None, vec![])
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MalformedPolicy);

    // Policies: five versions at most, the default cannot be deleted, attached ones cannot be deleted.
    let p = s
        .create_policy(&root(), "p", None, &doc(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#), None, vec![])
        .await
        .unwrap();
    for _ in 0..4 {
        s.create_policy_version(
            &root(),
            &p.arn,
            &doc(r#"{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}"#),
            false,
        )
        .await
        .unwrap();
    }
    let e = s
        .create_policy_version(&root(), &p.arn, &doc(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#), false)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::LimitExceeded);
    assert_eq!(s.delete_policy_version(&root(), &p.arn, "v1").await.unwrap_err().kind, ErrorKind::DeleteConflict);
    s.delete_policy_version(&root(), &p.arn, "v3").await.unwrap();
    let versions: Vec<_> =
        s.list_policy_versions(&root(), &p.arn).await.unwrap().into_iter().map(|v| v.version_id).collect();
    assert_eq!(versions, ["v5", "v4", "v2", "v1"]);
    s.create_role(&root(), "app", None, &trust_account(), None, None, vec![]).await.unwrap();
    s.attach_policy(&root(), PolicyTarget::Role("app".into()), &p.arn).await.unwrap();
    assert_eq!(s.delete_policy(&root(), &p.arn).await.unwrap_err().kind, ErrorKind::DeleteConflict);
    assert_eq!(s.delete_role(&root(), "app").await.unwrap_err().kind, ErrorKind::DeleteConflict);
    s.detach_policy(&root(), PolicyTarget::Role("app".into()), &p.arn).await.unwrap();
    s.delete_policy(&root(), &p.arn).await.unwrap();
    s.delete_role(&root(), "app").await.unwrap();
    let e = s
        .attach_policy(&root(), PolicyTarget::User("ghost".into()), "arn:aws:iam::aws:policy/AdministratorAccess")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn iam_itself_is_authorized() {
    let (s, _, _) = common::service();
    s.create_user(&root(), "carol", None, vec![]).await.unwrap();
    let carol = user_ctx(&s, "carol").await;
    let e = s.create_user(&carol, "mallory", None, vec![]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    assert_eq!(
        e.message,
        format!("User: arn:aws:iam::{ACCOUNT}:user/carol is not authorized to perform: iam:CreateUser on resource: arn:aws:iam::{ACCOUNT}:user/mallory because no identity-based policy allows the iam:CreateUser action")
    );
    // Cannot grant herself anything either.
    let e = s
        .put_inline_policy(
            &carol,
            PolicyTarget::User("carol".into()),
            "all",
            &doc(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    s.attach_policy(&root(), PolicyTarget::User("carol".into()), "arn:aws:iam::aws:policy/IAMReadOnlyAccess")
        .await
        .unwrap();
    assert_eq!(s.list_users(&carol, None).await.unwrap().len(), 1);
    assert_eq!(s.create_user(&carol, "mallory", None, vec![]).await.unwrap_err().kind, ErrorKind::AccessDenied);
    // A user manages its own keys when allowed on its own ARN with ${aws:username}.
    let own_keys = doc(
        r#"{"Effect":"Allow","Action":["iam:CreateAccessKey","iam:ListAccessKeys"],"Resource":"arn:aws:iam::*:user/${aws:username}"}"#,
    );
    s.put_inline_policy(&root(), PolicyTarget::User("carol".into()), "own-keys", &own_keys).await.unwrap();
    s.create_user(&root(), "dave", None, vec![]).await.unwrap();
    assert_eq!(s.list_user_access_keys(&carol, None).await.unwrap().len(), 1);
    assert_eq!(s.create_user_access_key(&carol, Some("dave".into())).await.unwrap_err().kind, ErrorKind::AccessDenied);
    assert_eq!(s.create_user_access_key(&carol, None).await.unwrap().info.user_name, "carol");
}

#[tokio::test]
async fn assume_role_needs_trust_and_permission_and_sessions_expire() {
    let (s, _, clock) = common::service();
    let read =
        doc(&format!(r#"{{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"{SECRET_PROD}"}}"#));
    s.create_role(&root(), "reader", None, &trust_account(), None, Some(7200), vec![tag("team", "backend")])
        .await
        .unwrap();
    s.put_inline_policy(&root(), PolicyTarget::Role("reader".into()), "read", &read).await.unwrap();
    s.create_user(&root(), "ci", None, vec![]).await.unwrap();
    let ci = user_ctx(&s, "ci").await;
    let input = |duration| AssumeRoleInput {
        role_arn: format!("arn:aws:iam::{ACCOUNT}:role/reader"),
        role_session_name: "deploy".into(),
        duration_seconds: duration,
        ..Default::default()
    };

    // The trust policy names only the account: the caller's own policies must allow sts:AssumeRole.
    assert_eq!(s.assume_role(&ci, input(None)).await.unwrap_err().kind, ErrorKind::AccessDenied);
    let may_assume = doc(&format!(
        r#"{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::{ACCOUNT}:role/reader"}}"#
    ));
    s.put_inline_policy(&root(), PolicyTarget::User("ci".into()), "assume", &may_assume).await.unwrap();
    let creds = s.assume_role(&ci, input(Some(900))).await.unwrap();
    assert!(creds.access_key_id.starts_with("ASIA"));
    let assumed = creds.assumed_role.clone().unwrap();
    assert_eq!(assumed.arn, format!("arn:aws:sts::{ACCOUNT}:assumed-role/reader/deploy"));
    assert!(assumed.assumed_role_id.ends_with(":deploy") && assumed.assumed_role_id.starts_with("AROA"));
    assert_eq!(creds.expiration, common::T0 + 900_000);
    assert_eq!(s.assume_role(&ci, input(Some(7201))).await.unwrap_err().kind, ErrorKind::Validation);
    assert_eq!(
        s.assume_role(&root(), input(None)).await.unwrap_err().kind,
        ErrorKind::AccessDenied,
        "root cannot assume roles"
    );

    let session = session_ctx(&s, &creds.access_key_id, &creds.session_token).await.unwrap();
    assert_eq!(s.caller_identity(&session).arn, assumed.arn);
    assert!(allowed(&s, &session, "secretsmanager:GetSecretValue", SECRET_PROD).await);
    assert!(!allowed(&s, &session, "secretsmanager:GetSecretValue", SECRET_DEV).await);
    let e = s.authorize(&session, &Access::new("secretsmanager:GetSecretValue", SECRET_DEV)).await.unwrap_err();
    assert!(
        e.message.starts_with(&format!("User: arn:aws:sts::{ACCOUNT}:assumed-role/reader/deploy is not authorized")),
        "{}",
        e.message
    );

    // A token for another key id, or altered, is refused; at expiry it stops.
    assert_eq!(
        s.session_credential("ASIAOTHERKEY00000000", &creds.session_token).await.unwrap_err().kind,
        ErrorKind::InvalidToken
    );
    let mut altered = creds.session_token.clone();
    altered.replace_range(20..21, if &altered[20..21] == "A" { "B" } else { "A" });
    assert_eq!(s.session_credential(&creds.access_key_id, &altered).await.unwrap_err().kind, ErrorKind::InvalidToken);
    clock.advance_millis(899_000);
    assert!(s.session_credential(&creds.access_key_id, &creds.session_token).await.is_ok());
    clock.advance_millis(1_000);
    let e = s.session_credential(&creds.access_key_id, &creds.session_token).await.unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::ExpiredToken, "The security token included in the request is expired")
    );

    // A role deleted and re-created under the same name does not honour the old sessions.
    let creds = s.assume_role(&ci, input(None)).await.unwrap();
    let session = session_ctx(&s, &creds.access_key_id, &creds.session_token).await.unwrap();
    s.delete_inline_policy(&root(), PolicyTarget::Role("reader".into()), "read").await.unwrap();
    s.delete_role(&root(), "reader").await.unwrap();
    s.create_role(&root(), "reader", None, &trust_account(), None, None, vec![]).await.unwrap();
    s.put_inline_policy(&root(), PolicyTarget::Role("reader".into()), "read", &read).await.unwrap();
    assert!(!allowed(&s, &session, "secretsmanager:GetSecretValue", SECRET_PROD).await);

    // A trust policy naming the user directly needs no identity permission; one naming someone else
    // refuses even a caller whose policies allow everything.
    let trust_ci = doc(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/ci"}},"Action":"sts:AssumeRole"}}"#
    ));
    s.create_role(&root(), "ci-only", None, &trust_ci, None, None, vec![]).await.unwrap();
    s.delete_inline_policy(&root(), PolicyTarget::User("ci".into()), "assume").await.unwrap();
    let ci_only = AssumeRoleInput {
        role_arn: format!("arn:aws:iam::{ACCOUNT}:role/ci-only"),
        role_session_name: "x1".into(),
        ..Default::default()
    };
    s.assume_role(&ci, ci_only.clone()).await.unwrap();
    s.create_user(&root(), "admin", None, vec![]).await.unwrap();
    s.attach_policy(&root(), PolicyTarget::User("admin".into()), "arn:aws:iam::aws:policy/AdministratorAccess")
        .await
        .unwrap();
    let admin = user_ctx(&s, "admin").await;
    assert_eq!(s.assume_role(&admin, ci_only).await.unwrap_err().kind, ErrorKind::AccessDenied);
}

#[tokio::test]
async fn mfa_sessions_carry_multi_factor_auth_present() {
    let (s, _, clock) = common::service();
    // Whole time steps make the test independent of where in a step it starts.
    clock.set(common::T0 - common::T0.rem_euclid(30_000));
    s.create_user(&root(), "ops", None, vec![]).await.unwrap();
    let needs_mfa = doc(&format!(
        r#"{{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"{SECRET_PROD}","Condition":{{"Bool":{{"aws:MultiFactorAuthPresent":"true"}}}}}}"#
    ));
    s.put_inline_policy(&root(), PolicyTarget::User("ops".into()), "prod-mfa", &needs_mfa).await.unwrap();
    let ops = user_ctx(&s, "ops").await;
    let device = s.create_virtual_mfa_device(&root(), "ops-phone", None).await.unwrap();
    assert_eq!(device.serial, format!("arn:aws:iam::{ACCOUNT}:mfa/ops-phone"));
    let seed = base32_decode(device.base32_seed.expose_str().unwrap());
    let now = (clock.now_millis() / 1000 / 30) as u64;

    // Enabling takes two consecutive codes.
    let e = s.enable_mfa_device(&root(), "ops", &device.serial, &totp_code(&seed, now), &totp_code(&seed, now)).await;
    assert_eq!(e.unwrap_err().kind, ErrorKind::InvalidAuthenticationCode);
    s.enable_mfa_device(&root(), "ops", &device.serial, &totp_code(&seed, now - 1), &totp_code(&seed, now))
        .await
        .unwrap();
    assert_eq!(s.list_mfa_devices(&root(), Some("ops".into())).await.unwrap().len(), 1);

    assert!(!allowed(&s, &ops, "secretsmanager:GetSecretValue", SECRET_PROD).await, "long-term keys carry no MFA");
    let plain = s.get_session_token(&ops, None, None, None).await.unwrap();
    let plain = session_ctx(&s, &plain.access_key_id, &plain.session_token).await.unwrap();
    assert!(!allowed(&s, &plain, "secretsmanager:GetSecretValue", SECRET_PROD).await);

    // The code that enabled the device cannot be replayed; a fresh one can, once.
    let replay = s.get_session_token(&ops, None, Some(device.serial.clone()), Some(totp_code(&seed, now))).await;
    assert_eq!(replay.unwrap_err().kind, ErrorKind::AccessDenied);
    clock.advance_millis(30_000);
    let code = totp_code(&seed, now + 1);
    let mfa = s.get_session_token(&ops, Some(900), Some(device.serial.clone()), Some(code.clone())).await.unwrap();
    let mfa_ctx = session_ctx(&s, &mfa.access_key_id, &mfa.session_token).await.unwrap();
    assert!(allowed(&s, &mfa_ctx, "secretsmanager:GetSecretValue", SECRET_PROD).await);
    assert_eq!(
        s.get_session_token(&ops, None, Some(device.serial.clone()), Some(code)).await.unwrap_err().kind,
        ErrorKind::AccessDenied
    );
    assert_eq!(
        s.get_session_token(&mfa_ctx, None, None, None).await.unwrap_err().kind,
        ErrorKind::AccessDenied,
        "no sessions from sessions"
    );

    // A device in use cannot be deleted.
    assert_eq!(s.delete_virtual_mfa_device(&root(), &device.serial).await.unwrap_err().kind, ErrorKind::DeleteConflict);
    s.deactivate_mfa_device(&root(), "ops", &device.serial).await.unwrap();
    s.delete_virtual_mfa_device(&root(), &device.serial).await.unwrap();
}

#[tokio::test]
async fn the_simulator_agrees_with_real_authorization() {
    let (s, _, _) = common::service();
    s.create_user(&root(), "eve", None, vec![tag("Environment", "prod")]).await.unwrap();
    let policy = doc(&format!(
        r#"[{{"Sid":"ReadProd","Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:*:*:secret:/prod/*","Condition":{{"StringEquals":{{"aws:PrincipalTag/Environment":"prod"}}}}}},
            {{"Sid":"NoDelete","Effect":"Deny","Action":"secretsmanager:DeleteSecret","Resource":"*"}},
            {{"Effect":"Allow","Action":"secretsmanager:*","Resource":"{SECRET_DEV}"}}]"#
    ));
    s.put_inline_policy(&root(), PolicyTarget::User("eve".into()), "mixed", &policy).await.unwrap();
    let eve = user_ctx(&s, "eve").await;
    let actions = ["secretsmanager:GetSecretValue", "secretsmanager:DeleteSecret", "secretsmanager:PutSecretValue"];
    let resources = [SECRET_PROD, SECRET_DEV];
    let results = s
        .simulate_principal_policy(
            &root(),
            SimulationInput {
                policy_source_arn: Some(format!("arn:aws:iam::{ACCOUNT}:user/eve")),
                action_names: actions.iter().map(|a| a.to_string()).collect(),
                resource_arns: resources.iter().map(|r| r.to_string()).collect(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 6);
    for r in &results {
        let real = allowed(&s, &eve, &r.action, &r.resource).await;
        assert_eq!(real, r.decision == "allowed", "{} on {}: simulated {}", r.action, r.resource, r.decision);
    }
    let decision = |a: &str, res: &str| results.iter().find(|r| r.action == a && r.resource == res).unwrap().decision;
    assert_eq!(decision("secretsmanager:GetSecretValue", SECRET_PROD), "allowed");
    assert_eq!(decision("secretsmanager:DeleteSecret", SECRET_DEV), "explicitDeny");
    assert_eq!(decision("secretsmanager:PutSecretValue", SECRET_PROD), "implicitDeny");
    let matched = &results.iter().find(|r| r.decision == "explicitDeny").unwrap().matched;
    assert_eq!(matched[0].source_policy_id, "mixed");

    // Custom policies and context entries.
    let custom = s
        .simulate_custom_policy(
            &root(),
            SimulationInput {
                policy_input_list: vec![doc(r#"{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#)],
                action_names: vec!["ssm:GetParameter".into()],
                context_entries: vec![coffer_service::iam::simulate::ContextEntry {
                    key: "aws:SourceIp".into(),
                    values: vec!["10.1.2.3".into()],
                    value_type: "ip".into(),
                }],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(custom[0].decision, "allowed");
    assert_eq!(custom[0].matched[0].source_policy_id, "PolicyInputList.1");
    // Simulating needs permission too.
    assert_eq!(
        s.simulate_principal_policy(
            &eve,
            SimulationInput {
                policy_source_arn: Some(format!("arn:aws:iam::{ACCOUNT}:user/eve")),
                action_names: vec!["x:y".into()],
                ..Default::default()
            }
        )
        .await
        .unwrap_err()
        .kind,
        ErrorKind::AccessDenied
    );
}

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    out
}
