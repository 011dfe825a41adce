//! Secrets Manager resource policies: validated with the policy language (faults named with their
//! position), stored and returned verbatim, and refused when BlockPublicPolicy is set and they grant
//! public access.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use coffer_crypto::SecretBytes;
use coffer_service::secrets::{CreateSecretInput, SecretValue};
use coffer_service::{ErrorKind, RequestContext, Service};

fn ctx() -> RequestContext {
    common::root_ctx("us-east-1")
}

async fn service_with_secret() -> Service {
    let (s, _, _) = common::service();
    s.create_secret(
        &ctx(),
        CreateSecretInput {
            name: "prod/db".into(),
            client_request_token: Some("a".repeat(32)),
            value: Some(SecretValue::String(SecretBytes::from("synthetic".to_string()))),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s
}

const ROLE_READ: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:role/app"},
    "Action": "secretsmanager:GetSecretValue",
    "Resource": "*"
  }]
}"#;

const EVERYONE: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*",
  "Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#;

const EVERYONE_IN_THE_ORG: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},
  "Action":"secretsmanager:GetSecretValue","Resource":"*",
  "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc123"}}}}"#;

const DENY_EVERYONE: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*",
  "Action":"secretsmanager:DeleteSecret","Resource":"*"}}"#;

#[tokio::test]
async fn valid_policies_are_stored_verbatim() {
    let s = service_with_secret().await;
    s.put_resource_policy(&ctx(), "prod/db", ROLE_READ, true).await.unwrap();
    assert_eq!(s.get_resource_policy(&ctx(), "prod/db").await.unwrap().policy.as_deref(), Some(ROLE_READ));
    let v = s.validate_resource_policy(&ctx(), Some("prod/db"), ROLE_READ).await.unwrap();
    assert!(v.passed && v.errors.is_empty());
}

#[tokio::test]
async fn malformed_policies_are_refused_with_the_fault_and_its_position() {
    let s = service_with_secret().await;
    for (doc, expected) in [
        (r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","#, "line 1"),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Permit","Principal":"*","Action":"*","Resource":"*"}]}"#,
            "Statement[0].Effect",
        ),
        (r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#, "Principal"),
    ] {
        let err = s.put_resource_policy(&ctx(), "prod/db", doc, false).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::MalformedPolicy, "{doc}");
        assert!(err.message.contains(expected), "{doc}: {}", err.message);
        let v = s.validate_resource_policy(&ctx(), None, doc).await.unwrap();
        assert!(!v.passed);
        assert_eq!(v.errors[0].0, "SYNTAX_CHECK");
        assert!(v.errors[0].1.contains(expected), "{}", v.errors[0].1);
    }
    assert!(s.get_resource_policy(&ctx(), "prod/db").await.unwrap().policy.is_none(), "nothing was stored");
    assert_eq!(
        s.put_resource_policy(&ctx(), "prod/db", "", false).await.unwrap_err().kind,
        ErrorKind::InvalidParameter
    );
}

#[tokio::test]
async fn block_public_policy_refuses_access_for_everyone() {
    let s = service_with_secret().await;
    let err = s.put_resource_policy(&ctx(), "prod/db", EVERYONE, true).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::PublicPolicy);
    // Confined by a condition, a deny, or with the block off: accepted.
    s.put_resource_policy(&ctx(), "prod/db", EVERYONE_IN_THE_ORG, true).await.unwrap();
    s.put_resource_policy(&ctx(), "prod/db", DENY_EVERYONE, true).await.unwrap();
    s.put_resource_policy(&ctx(), "prod/db", EVERYONE, false).await.unwrap();
    assert_eq!(s.get_resource_policy(&ctx(), "prod/db").await.unwrap().policy.as_deref(), Some(EVERYONE));
}
