//! Service-layer behaviour of Secrets Manager operations, on the in-memory store with a manual clock.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use coffer_crypto::{Keyring, MasterKey, SecretBytes};
use coffer_service::secrets::*;
use coffer_service::{ErrorKind, ManualClock, RequestContext, Service, ServiceConfig};
use coffer_store::{MemoryStore, SecretWrite, Store};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_700_000_000_000;

struct Fixture {
    service: Arc<Service>,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let keyring = Arc::new(Keyring::new(&MasterKey::from_bytes([7u8; 32])));
    let service = Arc::new(Service::new(
        store.clone(),
        keyring,
        clock.clone(),
        ServiceConfig { account_id: "123456789012".into(), ..Default::default() },
    ));
    Fixture { service, store, clock }
}

fn ctx() -> RequestContext {
    common::root_ctx("us-east-1")
}

fn token(n: u32) -> String {
    format!("{n:08}-0000-4000-8000-000000000000")
}

fn text(s: &str) -> SecretValue {
    SecretValue::String(SecretBytes::from(s.to_string()))
}

async fn create(f: &Fixture, name: &str, value: &str) -> SecretIdentity {
    f.service
        .create_secret(
            &ctx(),
            CreateSecretInput {
                name: name.into(),
                client_request_token: Some(token(0)),
                value: Some(text(value)),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

async fn put(f: &Fixture, id: &str, n: u32, value: &str) -> Result<PutSecretValueOutput, coffer_service::ServiceError> {
    f.service
        .put_secret_value(
            &ctx(),
            PutSecretValueInput {
                secret_id: id.into(),
                client_request_token: Some(token(n)),
                value: Some(text(value)),
                version_stages: None,
            },
        )
        .await
}

async fn get(f: &Fixture, id: &str) -> Result<SecretValueOutput, coffer_service::ServiceError> {
    f.service.get_secret_value(&ctx(), GetSecretValueInput { secret_id: id.into(), ..Default::default() }).await
}

fn value_str(v: &SecretValueOutput) -> String {
    match &v.value {
        SecretValue::String(s) => s.expose_str().unwrap().to_string(),
        SecretValue::Binary(_) => panic!("binary"),
    }
}

#[tokio::test]
async fn create_then_read_by_name_full_arn_and_partial_arn() {
    let f = fixture();
    let id = create(&f, "/prod/backend/database_password", "s3cr3t").await;
    assert!(id
        .arn
        .starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:/prod/backend/database_password-"));
    assert_eq!(id.version_id.as_deref(), Some(token(0).as_str()));
    for secret_id in [id.name.clone(), id.arn.clone(), id.arn[..id.arn.len() - 7].to_string()] {
        let v = get(&f, &secret_id).await.unwrap();
        assert_eq!(value_str(&v), "s3cr3t");
        assert_eq!(v.version_stages, vec!["AWSCURRENT"]);
        assert_eq!(v.created, T0);
    }
    let missing = get(&f, "/prod/backend/nope").await.unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
    assert_eq!(missing.message, "Secrets Manager can't find the specified secret.");
}

#[tokio::test]
async fn put_moves_current_and_previous() {
    let f = fixture();
    create(&f, "app/token", "one").await;
    let out = put(&f, "app/token", 1, "two").await.unwrap();
    assert_eq!(out.version_stages, vec!["AWSCURRENT"]);
    put(&f, "app/token", 2, "three").await.unwrap();
    assert_eq!(value_str(&get(&f, "app/token").await.unwrap()), "three");
    let prev = f
        .service
        .get_secret_value(
            &ctx(),
            GetSecretValueInput {
                secret_id: "app/token".into(),
                version_stage: Some("AWSPREVIOUS".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(value_str(&prev), "two");
    assert_eq!(prev.version_id, token(1));
    // The first version lost its labels: hidden unless deprecated versions are asked for.
    let listed = f
        .service
        .list_secret_version_ids(&ctx(), ListVersionIdsInput { secret_id: "app/token".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.versions.len(), 2);
    let all = f
        .service
        .list_secret_version_ids(
            &ctx(),
            ListVersionIdsInput { secret_id: "app/token".into(), include_deprecated: true, ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(all.versions.len(), 3);
    let d = f.service.describe_secret(&ctx(), "app/token").await.unwrap();
    assert_eq!(d.versions_to_stages.len(), 2);
}

#[tokio::test]
async fn pending_put_leaves_current_alone() {
    let f = fixture();
    create(&f, "rot", "v1").await;
    f.service
        .put_secret_value(
            &ctx(),
            PutSecretValueInput {
                secret_id: "rot".into(),
                client_request_token: Some(token(9)),
                value: Some(text("v2")),
                version_stages: Some(vec!["AWSPENDING".into()]),
            },
        )
        .await
        .unwrap();
    assert_eq!(value_str(&get(&f, "rot").await.unwrap()), "v1");
    let pending = f
        .service
        .get_secret_value(
            &ctx(),
            GetSecretValueInput {
                secret_id: "rot".into(),
                version_stage: Some("AWSPENDING".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(value_str(&pending), "v2");
    let none = f
        .service
        .get_secret_value(
            &ctx(),
            GetSecretValueInput {
                secret_id: "rot".into(),
                version_stage: Some("AWSPREVIOUS".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(none.message, "Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS");
}

#[tokio::test]
async fn client_request_token_is_idempotent() {
    let f = fixture();
    create(&f, "idem", "v0").await;
    let first = put(&f, "idem", 1, "same").await.unwrap();
    let again = put(&f, "idem", 1, "same").await.unwrap();
    assert_eq!(first.version_id, again.version_id);
    let state = f.store.load_secret_by_name("us-east-1", "idem").await.unwrap().unwrap();
    assert_eq!(state.versions.len(), 2, "a retried put writes nothing");
    let clash = put(&f, "idem", 1, "different").await.unwrap_err();
    assert_eq!(clash.kind, ErrorKind::AlreadyExists);
    assert!(clash.message.starts_with(&format!("You can't use ClientRequestToken {}", token(1))));
    assert!(!clash.message.contains("different"), "error messages never carry values");
    // A retried CreateSecret with the same token and value succeeds with the same ARN.
    let again = f
        .service
        .create_secret(
            &ctx(),
            CreateSecretInput {
                name: "idem".into(),
                client_request_token: Some(token(0)),
                value: Some(text("v0")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(again.version_id, Some(token(0)));
    let dup = f
        .service
        .create_secret(
            &ctx(),
            CreateSecretInput {
                name: "idem".into(),
                client_request_token: Some(token(5)),
                value: Some(text("v0")),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(dup.kind, ErrorKind::AlreadyExists);
    assert_eq!(dup.message, "The operation failed because the secret idem already exists.");
}

#[tokio::test]
async fn secret_without_value_gets_current_on_first_put() {
    let f = fixture();
    let id = f
        .service
        .create_secret(&ctx(), CreateSecretInput { name: "empty".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(id.version_id, None);
    assert_eq!(get(&f, "empty").await.unwrap_err().kind, ErrorKind::NotFound);
    put(&f, "empty", 1, "now").await.unwrap();
    let v = get(&f, "empty").await.unwrap();
    assert_eq!(v.version_stages, vec!["AWSCURRENT"]);
    assert_eq!(value_str(&v), "now");
}

#[tokio::test]
async fn version_id_and_stage_must_agree() {
    let f = fixture();
    create(&f, "agree", "v0").await;
    put(&f, "agree", 1, "v1").await.unwrap();
    let err = f
        .service
        .get_secret_value(
            &ctx(),
            GetSecretValueInput {
                secret_id: "agree".into(),
                version_id: Some(token(0)),
                version_stage: Some("AWSCURRENT".into()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
    assert_eq!(err.message, "You provided a VersionStage that is not associated to the provided VersionId.");
    let by_id = f
        .service
        .get_secret_value(
            &ctx(),
            GetSecretValueInput { secret_id: "agree".into(), version_id: Some(token(0)), version_stage: None },
        )
        .await
        .unwrap();
    assert_eq!(value_str(&by_id), "v0");
}

#[tokio::test]
async fn update_version_stage_follows_aws_rules() {
    let f = fixture();
    create(&f, "stages", "v0").await;
    put(&f, "stages", 1, "v1").await.unwrap();
    // Moving AWSCURRENT back without naming its holder is refused with AWS's message.
    let err = f
        .service
        .update_secret_version_stage(
            &ctx(),
            UpdateVersionStageInput {
                secret_id: "stages".into(),
                version_stage: "AWSCURRENT".into(),
                move_to_version_id: Some(token(0)),
                remove_from_version_id: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidParameter);
    assert!(err.message.contains(&format!("currently attached to version {}", token(1))));
    f.service
        .update_secret_version_stage(
            &ctx(),
            UpdateVersionStageInput {
                secret_id: "stages".into(),
                version_stage: "AWSCURRENT".into(),
                move_to_version_id: Some(token(0)),
                remove_from_version_id: Some(token(1)),
            },
        )
        .await
        .unwrap();
    assert_eq!(value_str(&get(&f, "stages").await.unwrap()), "v0");
    let prev = f
        .service
        .get_secret_value(
            &ctx(),
            GetSecretValueInput {
                secret_id: "stages".into(),
                version_stage: Some("AWSPREVIOUS".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(value_str(&prev), "v1", "moving AWSCURRENT moves AWSPREVIOUS to the old holder");
    // Custom labels can be attached and removed.
    f.service
        .update_secret_version_stage(
            &ctx(),
            UpdateVersionStageInput {
                secret_id: "stages".into(),
                version_stage: "blue".into(),
                move_to_version_id: Some(token(1)),
                remove_from_version_id: None,
            },
        )
        .await
        .unwrap();
    f.service
        .update_secret_version_stage(
            &ctx(),
            UpdateVersionStageInput {
                secret_id: "stages".into(),
                version_stage: "blue".into(),
                move_to_version_id: None,
                remove_from_version_id: Some(token(1)),
            },
        )
        .await
        .unwrap();
    let d = f.service.describe_secret(&ctx(), "stages").await.unwrap();
    assert!(d.versions_to_stages.iter().all(|(_, s)| !s.contains(&"blue".to_string())));
}

#[tokio::test]
async fn deletion_window_restore_force_and_scheduled_purge() {
    let f = fixture();
    let id = create(&f, "doomed", "v").await;
    let out = f
        .service
        .delete_secret(
            &ctx(),
            DeleteSecretInput { secret_id: "doomed".into(), recovery_window_in_days: Some(7), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(out.deletion_date, T0 + 7 * DAY);
    let err = get(&f, "doomed").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
    assert_eq!(err.message, "You can't perform this operation on the secret because it was marked for deletion.");
    assert_eq!(put(&f, "doomed", 1, "x").await.unwrap_err().kind, ErrorKind::InvalidRequest);
    let recreate = f
        .service
        .create_secret(&ctx(), CreateSecretInput { name: "doomed".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(recreate.kind, ErrorKind::InvalidRequest);
    assert!(recreate.message.contains("already scheduled for deletion"));
    let listed = f.service.list_secrets(&ctx(), ListSecretsInput::default()).await.unwrap();
    assert!(listed.secrets.is_empty());
    let listed = f
        .service
        .list_secrets(&ctx(), ListSecretsInput { include_planned_deletion: true, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.secrets.len(), 1);
    assert_eq!(listed.secrets[0].record.deletion_date, Some(T0 + 7 * DAY));

    f.service.restore_secret(&ctx(), "doomed").await.unwrap();
    assert_eq!(value_str(&get(&f, "doomed").await.unwrap()), "v");

    // The server carries out a deletion when the window ends, not before.
    f.service
        .delete_secret(
            &ctx(),
            DeleteSecretInput { secret_id: "doomed".into(), recovery_window_in_days: Some(7), ..Default::default() },
        )
        .await
        .unwrap();
    f.clock.advance_millis(7 * DAY - 1);
    assert_eq!(f.service.purge_due_deletions().await.unwrap(), 0);
    f.clock.advance_millis(1);
    assert_eq!(f.service.purge_due_deletions().await.unwrap(), 1);
    assert_eq!(f.service.describe_secret(&ctx(), "doomed").await.unwrap_err().kind, ErrorKind::NotFound);

    // Force delete frees the name at once; the new secret gets a new ARN.
    let again = create(&f, "doomed", "v2").await;
    assert_ne!(again.arn, id.arn);
    f.service
        .delete_secret(
            &ctx(),
            DeleteSecretInput {
                secret_id: "doomed".into(),
                force_delete_without_recovery: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(get(&f, "doomed").await.unwrap_err().kind, ErrorKind::NotFound);
    // Forcing the deletion of something absent is not an error.
    f.service
        .delete_secret(
            &ctx(),
            DeleteSecretInput {
                secret_id: "doomed".into(),
                force_delete_without_recovery: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_parameter_rules() {
    let f = fixture();
    create(&f, "d", "v").await;
    for (window, force) in [(Some(6), None), (Some(31), None), (Some(7), Some(true))] {
        let err = f
            .service
            .delete_secret(
                &ctx(),
                DeleteSecretInput {
                    secret_id: "d".into(),
                    recovery_window_in_days: window,
                    force_delete_without_recovery: force,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameter, "{window:?} {force:?}");
    }
}

#[tokio::test]
async fn unlabelled_versions_are_pruned_after_100_when_older_than_a_day() {
    let f = fixture();
    create(&f, "many", "v").await;
    for n in 1..=120 {
        put(&f, "many", n, &format!("v{n}")).await.unwrap();
    }
    // All are younger than a day: nothing may be pruned yet.
    let state = f.store.load_secret_by_name("us-east-1", "many").await.unwrap().unwrap();
    assert_eq!(state.versions.len(), 121);
    f.clock.advance_millis(DAY);
    put(&f, "many", 500, "latest").await.unwrap();
    let state = f.store.load_secret_by_name("us-east-1", "many").await.unwrap().unwrap();
    assert_eq!(state.versions.len(), 100);
    assert!(state.versions.iter().any(|v| v.stages.contains(&"AWSCURRENT".to_string())));
    assert!(state.versions.iter().any(|v| v.stages.contains(&"AWSPREVIOUS".to_string())));
    assert!(state.versions.iter().all(|v| v.version_id != token(0)), "oldest unlabelled go first");
}

#[tokio::test]
async fn concurrent_puts_on_one_secret_lose_nothing() {
    let f = fixture();
    create(&f, "race", "v0").await;
    let mut tasks = Vec::new();
    for n in 1..=32u32 {
        let service = f.service.clone();
        tasks.push(tokio::spawn(async move {
            service
                .put_secret_value(
                    &ctx(),
                    PutSecretValueInput {
                        secret_id: "race".into(),
                        client_request_token: Some(token(n)),
                        value: Some(text(&format!("v{n}"))),
                        version_stages: None,
                    },
                )
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let state = f.store.load_secret_by_name("us-east-1", "race").await.unwrap().unwrap();
    assert_eq!(state.versions.len(), 33);
    let holders = |label: &str| state.versions.iter().filter(|v| v.stages.iter().any(|s| s == label)).count();
    assert_eq!(holders("AWSCURRENT"), 1);
    assert_eq!(holders("AWSPREVIOUS"), 1);
}

#[tokio::test]
async fn ciphertext_cannot_be_moved_to_another_version() {
    let f = fixture();
    create(&f, "bound", "original").await;
    put(&f, "bound", 1, "second").await.unwrap();
    let state = f.store.load_secret_by_name("us-east-1", "bound").await.unwrap().unwrap();
    // Swap the envelopes of the two versions directly in storage.
    let mut versions = state.versions.clone();
    let (a, b) = (versions[0].envelope.clone(), versions[1].envelope.clone());
    versions[0].envelope = b;
    versions[1].envelope = a;
    let mut secret = state.secret.clone();
    secret.revision += 1;
    f.store
        .write_secret(SecretWrite::Delete { arn: secret.arn.clone(), expected_revision: state.secret.revision }, None)
        .await
        .unwrap();
    f.store.write_secret(SecretWrite::Create(coffer_store::SecretState { secret, versions }), None).await.unwrap();
    f.service.invalidate_secret(&state.secret.arn);
    let err = get(&f, "bound").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::DecryptionFailure);
}

#[tokio::test]
async fn list_filters_sorting_and_pages() {
    let f = fixture();
    for i in 0..25 {
        f.clock.advance_millis(1000);
        let env = if i % 2 == 0 { "prod" } else { "dev" };
        create(&f, &format!("/{env}/svc/s{i:02}"), "v").await;
    }
    let mut seen = Vec::new();
    let mut next = None;
    loop {
        let page = f
            .service
            .list_secrets(
                &ctx(),
                ListSecretsInput { max_results: Some(10), next_token: next.take(), ..Default::default() },
            )
            .await
            .unwrap();
        assert!(page.secrets.len() <= 10);
        seen.extend(page.secrets.into_iter().map(|s| s.record.name));
        match page.next_token {
            Some(t) => next = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), 25);
    let prod = f
        .service
        .list_secrets(
            &ctx(),
            ListSecretsInput {
                filters: vec![list::SecretFilter { key: "name".into(), values: vec!["/prod/".into()] }],
                sort_by: Some("name".into()),
                sort_order: Some("desc".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(prod.secrets.len(), 13);
    assert_eq!(prod.secrets[0].record.name, "/prod/svc/s24");
    let bad = f
        .service
        .list_secrets(&ctx(), ListSecretsInput { next_token: Some("forged".into()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(bad.kind, ErrorKind::InvalidNextToken);
}

#[tokio::test]
async fn input_rules() {
    let f = fixture();
    let bad_name = f
        .service
        .create_secret(&ctx(), CreateSecretInput { name: "bad name".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(bad_name.kind, ErrorKind::Validation);
    let big = f
        .service
        .create_secret(
            &ctx(),
            CreateSecretInput {
                name: "big".into(),
                client_request_token: Some(token(1)),
                value: Some(SecretValue::Binary(SecretBytes::new(vec![0u8; 65_537]))),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(big.kind, ErrorKind::InvalidParameter);
    let no_token = f
        .service
        .create_secret(&ctx(), CreateSecretInput { name: "t".into(), value: Some(text("v")), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(no_token.kind, ErrorKind::InvalidRequest);
    let short_token = f
        .service
        .create_secret(
            &ctx(),
            CreateSecretInput {
                name: "t".into(),
                client_request_token: Some("short".into()),
                value: Some(text("v")),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(short_token.message, "ClientRequestToken must be 32-64 characters long.");
    // Nothing was written by the failed calls.
    assert!(f.store.list_secrets("us-east-1").await.unwrap().is_empty());
}

#[tokio::test]
async fn tags_merge_and_untag() {
    let f = fixture();
    create(&f, "tagged", "v").await;
    let t = |k: &str, v: &str| coffer_store::Tag { key: k.into(), value: v.into() };
    f.service
        .tag_resource(&ctx(), "tagged", vec![t("Environment", "non-prod"), t("ManagedBy", "Manual")])
        .await
        .unwrap();
    f.service.tag_resource(&ctx(), "tagged", vec![t("Environment", "prod")]).await.unwrap();
    let d = f.service.describe_secret(&ctx(), "tagged").await.unwrap();
    assert_eq!(d.record.tags, vec![t("Environment", "prod"), t("ManagedBy", "Manual")]);
    f.service.untag_resource(&ctx(), "tagged", vec!["Environment".into(), "absent".into()]).await.unwrap();
    let d = f.service.describe_secret(&ctx(), "tagged").await.unwrap();
    assert_eq!(d.record.tags, vec![t("ManagedBy", "Manual")]);
    let reserved = f.service.tag_resource(&ctx(), "tagged", vec![t("aws:x", "y")]).await.unwrap_err();
    assert_eq!(reserved.kind, ErrorKind::InvalidParameter);
}

#[tokio::test]
async fn initialize_creates_root_once_and_refuses_another_master_key() {
    let f = fixture();
    let root = f.service.initialize().await.unwrap().expect("first start creates root");
    assert!(root.access_key_id.starts_with("AKIA") && root.access_key_id.len() == 20);
    assert_eq!(root.secret_access_key.len(), 40);
    assert!(f.service.initialize().await.unwrap().is_none());
    let cred = f.service.credential(&root.access_key_id).await.unwrap().unwrap();
    assert_eq!(cred.secret_access_key, root.secret_access_key);
    assert_eq!(cred.principal.arn, "arn:aws:iam::123456789012:root");

    let other = Service::new(
        f.store.clone(),
        Arc::new(Keyring::new(&MasterKey::from_bytes([8u8; 32]))),
        f.clock.clone(),
        ServiceConfig::default(),
    );
    let err = other.initialize().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    assert!(err.message.contains("master key does not match"));
}
