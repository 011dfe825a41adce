//! Parameter Store behaviour of the service layer, on the in-memory store with a manual clock.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use coffer_crypto::SecretBytes;
use coffer_service::parameters::ops::{ByPathInput, PutParameterInput};
use coffer_service::{ErrorKind, ManualClock, RequestContext, Service};
use coffer_store::{MemoryStore, Store};

fn setup() -> (Service, Arc<MemoryStore>) {
    let (service, store, _) = setup_with_clock();
    (service, store)
}

fn setup_with_clock() -> (Service, Arc<MemoryStore>, Arc<ManualClock>) {
    common::service()
}

fn ctx() -> RequestContext {
    common::root_ctx("us-west-1")
}

fn put(name: &str, value: &str, kind: Option<&str>, overwrite: bool) -> PutParameterInput {
    PutParameterInput {
        name: name.into(),
        value: Some(SecretBytes::from(value.to_string())),
        parameter_type: kind.map(Into::into),
        overwrite,
        ..Default::default()
    }
}

fn text(v: &SecretBytes) -> String {
    v.expose_str().unwrap().to_string()
}

#[tokio::test]
async fn put_get_overwrite_and_versions() {
    let (s, store) = setup();
    let out = s.put_parameter(&ctx(), put("/amplify/TOKEN", "one", Some("SecureString"), false)).await.unwrap();
    assert_eq!((out.version, out.tier.as_str()), (1, "Standard"));
    let err = s.put_parameter(&ctx(), put("/amplify/TOKEN", "two", Some("SecureString"), false)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    // An overwrite without a type keeps the type; the version counts up even for the same value.
    assert_eq!(s.put_parameter(&ctx(), put("/amplify/TOKEN", "one", None, true)).await.unwrap().version, 2);
    let v = s.get_parameter(&ctx(), "/amplify/TOKEN", true).await.unwrap();
    assert_eq!((text(&v.value), v.version, v.parameter_type.as_str()), ("one".into(), 2, "SecureString"));
    assert_eq!(v.arn, "arn:aws:ssm:us-west-1:123456789012:parameter/amplify/TOKEN");
    // Without decryption a SecureString comes back as ciphertext, never the plaintext.
    let hidden = s.get_parameter(&ctx(), "/amplify/TOKEN", false).await.unwrap();
    assert_ne!(text(&hidden.value), "one");
    let v1 = s.get_parameter(&ctx(), "/amplify/TOKEN:1", true).await.unwrap();
    assert_eq!((text(&v1.value), v1.selector.as_deref()), ("one".into(), Some(":1")));
    let missing = s.get_parameter(&ctx(), "/amplify/TOKEN:7", true).await.unwrap_err();
    assert_eq!(missing.kind, ErrorKind::VersionNotFound);
    assert_eq!(
        s.get_parameter(&ctx(), "/amplify/NOPE", true).await.unwrap_err().message,
        "Parameter /amplify/NOPE not found."
    );
    // Nothing is stored in clear, String parameters included.
    s.put_parameter(&ctx(), put("/amplify/URL", "https://plain.example", Some("String"), false)).await.unwrap();
    let stored = store.load_parameter("us-west-1", "/amplify/URL").await.unwrap().unwrap();
    assert!(!stored.versions[0].envelope.windows(5).any(|w| w == b"plain"));
}

#[tokio::test]
async fn put_rules() {
    let (s, _) = setup();
    let no_type = s.put_parameter(&ctx(), put("/a", "v", None, false)).await.unwrap_err();
    assert_eq!(no_type.message, "A parameter type is required when you create a parameter.");
    let mut big = put("/big", &"x".repeat(4097), Some("String"), false);
    assert_eq!(s.put_parameter(&ctx(), big).await.unwrap_err().kind, ErrorKind::Validation);
    big = put("/big", &"x".repeat(4097), Some("String"), false);
    big.tier = Some("Advanced".into());
    assert_eq!(s.put_parameter(&ctx(), big).await.unwrap().tier, "Advanced");
    let mut patterned = put("/port", "80a", Some("String"), false);
    patterned.allowed_pattern = Some("^\\d+$".into());
    assert_eq!(s.put_parameter(&ctx(), patterned).await.unwrap_err().kind, ErrorKind::PatternMismatch);
    let mut patterned = put("/port", "8080", Some("String"), false);
    patterned.allowed_pattern = Some("^\\d+$".into());
    s.put_parameter(&ctx(), patterned).await.unwrap();
    // The pattern is kept on overwrite and still enforced.
    assert_eq!(
        s.put_parameter(&ctx(), put("/port", "abc", None, true)).await.unwrap_err().kind,
        ErrorKind::PatternMismatch
    );
    let mut tagged = put("/port", "1", None, true);
    tagged.tags = vec![coffer_store::Tag { key: "k".into(), value: "v".into() }];
    assert_eq!(s.put_parameter(&ctx(), tagged).await.unwrap_err().kind, ErrorKind::Validation);
    let deep = format!("/{}", vec!["l"; 16].join("/"));
    assert_eq!(
        s.put_parameter(&ctx(), put(&deep, "v", Some("String"), false)).await.unwrap_err().kind,
        ErrorKind::HierarchyTooDeep
    );
    assert_eq!(
        s.put_parameter(&ctx(), put("/aws/x", "v", Some("String"), false)).await.unwrap_err().kind,
        ErrorKind::Validation
    );
}

#[tokio::test]
async fn hundred_versions_and_labelled_oldest() {
    let (s, _) = setup();
    s.put_parameter(&ctx(), put("/h", "v1", Some("String"), false)).await.unwrap();
    for i in 2..=100 {
        s.put_parameter(&ctx(), put("/h", &format!("v{i}"), None, true)).await.unwrap();
    }
    // Version 101 drops version 1.
    assert_eq!(s.put_parameter(&ctx(), put("/h", "v101", None, true)).await.unwrap().version, 101);
    let history = s.get_parameter_history(&ctx(), "/h", true, Some(50), None).await.unwrap();
    assert_eq!(history.items[0].record.version, 2);
    // With a label on the oldest version, the write is refused and nothing changes.
    s.label_parameter_version(&ctx(), "/h", Some(2), &["keep".into()]).await.unwrap();
    let err = s.put_parameter(&ctx(), put("/h", "v102", None, true)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooManyVersions);
    assert_eq!(s.get_parameter(&ctx(), "/h", true).await.unwrap().version, 101);
}

#[tokio::test]
async fn labels_move_and_invalid_ones_are_reported() {
    let (s, _) = setup();
    s.put_parameter(&ctx(), put("/l", "a", Some("String"), false)).await.unwrap();
    s.put_parameter(&ctx(), put("/l", "b", None, true)).await.unwrap();
    let out = s
        .label_parameter_version(&ctx(), "/l", Some(1), &["prod".into(), "1bad".into(), "aws-x".into()])
        .await
        .unwrap();
    assert_eq!(out.invalid_labels, vec!["1bad", "aws-x"]);
    assert_eq!(text(&s.get_parameter(&ctx(), "/l:prod", true).await.unwrap().value), "a");
    s.label_parameter_version(&ctx(), "/l", None, &["prod".into()]).await.unwrap();
    assert_eq!(text(&s.get_parameter(&ctx(), "/l:prod", true).await.unwrap().value), "b");
    let labels: Vec<String> = (0..11).map(|i| format!("l{i}")).collect();
    assert_eq!(s.label_parameter_version(&ctx(), "/l", Some(1), &labels[..10]).await.unwrap().invalid_labels.len(), 0);
    let err = s.label_parameter_version(&ctx(), "/l", Some(1), &labels[10..]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooManyLabels);
}

#[tokio::test]
async fn by_path_pages_walk_the_hierarchy() {
    let (s, _) = setup();
    for i in 0..25 {
        s.put_parameter(&ctx(), put(&format!("/app/dev/p{i:02}"), "v", Some("String"), false)).await.unwrap();
    }
    s.put_parameter(&ctx(), put("/app/top", "v", Some("String"), false)).await.unwrap();
    s.put_parameter(&ctx(), put("/apple", "v", Some("String"), false)).await.unwrap();
    let one_level = s
        .get_parameters_by_path(
            &ctx(),
            ByPathInput {
                path: "/app",
                recursive: false,
                filters: &[],
                decrypt: true,
                max_results: None,
                next_token: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(one_level.items.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["/app/top"]);
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = s
            .get_parameters_by_path(
                &ctx(),
                ByPathInput {
                    path: "/app/",
                    recursive: true,
                    filters: &[],
                    decrypt: true,
                    max_results: Some(10),
                    next_token: token.as_deref(),
                },
            )
            .await
            .unwrap();
        assert!(page.items.len() <= 10);
        seen.extend(page.items.into_iter().map(|p| p.name));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), 26);
    assert!(!seen.contains(&"/apple".to_string()));
    let bad = s
        .get_parameters_by_path(
            &ctx(),
            ByPathInput {
                path: "/app",
                recursive: true,
                filters: &[],
                decrypt: true,
                max_results: Some(11),
                next_token: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad.kind, ErrorKind::Validation);
    let bad = s
        .get_parameters_by_path(
            &ctx(),
            ByPathInput {
                path: "/app",
                recursive: true,
                filters: &[],
                decrypt: true,
                max_results: None,
                next_token: Some("forged"),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad.kind, ErrorKind::InvalidNextToken);
}

#[tokio::test]
async fn get_many_and_delete_many() {
    let (s, _) = setup();
    s.put_parameter(&ctx(), put("/b", "2", Some("String"), false)).await.unwrap();
    s.put_parameter(&ctx(), put("/a", "1", Some("StringList"), false)).await.unwrap();
    s.put_parameter(&ctx(), put("/c/d", "3", Some("String"), false)).await.unwrap();
    let (found, invalid) =
        s.get_parameters(&ctx(), &["/b".into(), "/a".into(), "/b".into(), "/zz".into()], true).await.unwrap();
    assert_eq!(found.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["/a", "/b"]);
    assert_eq!(invalid, vec!["/zz"]);
    let (deleted, invalid) = s.delete_parameters(&ctx(), &["/a".into(), "/none".into()]).await.unwrap();
    assert_eq!((deleted, invalid), (vec!["/a".to_string()], vec!["/none".to_string()]));
    assert_eq!(s.delete_parameter(&ctx(), "/a").await.unwrap_err().kind, ErrorKind::NotFound);
    // Get and delete accept the ARN as well as the name.
    let by_arn = s.get_parameter(&ctx(), "arn:aws:ssm:us-west-1:123456789012:parameter/c/d", true).await.unwrap();
    assert_eq!(by_arn.name, "/c/d");
    s.delete_parameter(&ctx(), "arn:aws:ssm:us-west-1:123456789012:parameter/c/d").await.unwrap();
}

#[tokio::test]
async fn expiration_policy_is_honoured() {
    let (s, store, clock) = setup_with_clock();
    // 2023-11-14T22:13:20Z is the clock's start; expire one hour later.
    let policy = r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2023-11-14T23:13:20Z"}}]"#;
    let mut input = put("/temp/token", "short-lived", Some("SecureString"), false);
    input.policies = Some(policy.into());
    assert_eq!(s.put_parameter(&ctx(), input).await.unwrap_err().kind, ErrorKind::Validation, "policies need Advanced");
    let mut input = put("/temp/token", "short-lived", Some("SecureString"), false);
    input.policies = Some(policy.into());
    input.tier = Some("Advanced".into());
    s.put_parameter(&ctx(), input).await.unwrap();
    let mut bad = put("/temp/other", "v", Some("String"), false);
    bad.tier = Some("Advanced".into());
    bad.policies = Some(r#"[{"Type":"Expiration","Attributes":{"Timestamp":"2001-01-01T00:00:00Z"}}]"#.into());
    assert_eq!(s.put_parameter(&ctx(), bad).await.unwrap_err().kind, ErrorKind::InvalidPolicyAttribute);

    assert_eq!(s.purge_expired_parameters("us-west-1").await.unwrap(), 0);
    assert_eq!(text(&s.get_parameter(&ctx(), "/temp/token", true).await.unwrap().value), "short-lived");
    clock.advance_millis(3_600_000);
    // Past its time it reads as gone at once, and the scheduler's pass deletes it.
    assert_eq!(s.get_parameter(&ctx(), "/temp/token", true).await.unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(s.purge_expired_parameters("us-west-1").await.unwrap(), 1);
    assert!(store.load_parameter("us-west-1", "/temp/token").await.unwrap().is_none());
}
