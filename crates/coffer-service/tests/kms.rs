//! KMS keys in the service layer: the default keys, the cryptographic API, keys protecting secrets and
//! parameters (disabled keys, deletion), rotation and re-wrapping. In-memory store, manual clock.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

mod common;

use coffer_crypto::{envelope_kek, EnvelopeKek, Keyring, MasterKey, SecretBytes};
use coffer_service::kms::CreateKeyInput;
use coffer_service::parameters::ops::PutParameterInput;
use coffer_service::secrets::{CreateSecretInput, GetSecretValueInput, PutSecretValueInput, SecretValue};
use coffer_service::{ErrorKind, ManualClock, RequestContext, Service};
use coffer_store::{MemoryStore, SecretRecord, SecretState, SecretWrite, Store, ValueKind, VersionRecord};

const REGION: &str = "us-west-1";
const DAY: i64 = 86_400_000;

fn setup() -> (Service, Arc<MemoryStore>, Arc<ManualClock>) {
    common::service()
}

fn ctx() -> RequestContext {
    common::root_ctx(REGION)
}

fn context(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn secret_string(v: &str) -> Option<SecretValue> {
    Some(SecretValue::String(SecretBytes::from(v.to_string())))
}

async fn read_secret(s: &Service, id: &str) -> Result<String, coffer_service::ServiceError> {
    let out = s.get_secret_value(&ctx(), GetSecretValueInput { secret_id: id.into(), ..Default::default() }).await?;
    match out.value {
        SecretValue::String(b) => Ok(b.expose_str().unwrap().to_string()),
        SecretValue::Binary(_) => panic!("expected a string"),
    }
}

async fn customer_key(s: &Service) -> String {
    s.create_key(&ctx(), CreateKeyInput { description: Some("payments".into()), ..Default::default() })
        .await
        .unwrap()
        .key_id
}

#[tokio::test]
async fn default_keys_appear_on_first_use_and_are_aws_managed() {
    let (s, store, _) = setup();
    assert!(s.list_keys(&ctx()).await.unwrap().is_empty());
    let ssm = s.describe_key(&ctx(), "alias/aws/ssm").await.unwrap();
    assert_eq!((ssm.key_manager.as_str(), ssm.key_state.as_str()), ("AWS", "Enabled"));
    assert!(ssm.arn.starts_with("arn:aws:kms:us-west-1:123456789012:key/"));
    assert!(ssm.rotation_enabled, "AWS managed keys rotate yearly");
    // The same key every time, by alias, alias ARN, key id or key ARN.
    for r in [
        "alias/aws/ssm".to_string(),
        "arn:aws:kms:us-west-1:123456789012:alias/aws/ssm".to_string(),
        ssm.key_id.clone(),
        ssm.arn.clone(),
    ] {
        assert_eq!(s.describe_key(&ctx(), &r).await.unwrap().key_id, ssm.key_id, "{r}");
    }
    s.ensure_default_keys(REGION).await.unwrap();
    assert_eq!(s.list_keys(&ctx()).await.unwrap().len(), 2);
    assert_eq!(store.list_aliases(REGION).await.unwrap().len(), 2);
    // Managed keys cannot be disabled or deleted; other aliases are not invented.
    assert_eq!(s.disable_key(&ctx(), "alias/aws/ssm").await.unwrap_err().kind, ErrorKind::UnsupportedOperation);
    assert_eq!(
        s.schedule_key_deletion(&ctx(), "alias/aws/ssm", None, true).await.unwrap_err().kind,
        ErrorKind::UnsupportedOperation
    );
    assert_eq!(s.describe_key(&ctx(), "alias/nope").await.unwrap_err().kind, ErrorKind::KmsNotFound);
    assert_eq!(s.describe_key(&ctx(), "not-a-key").await.unwrap_err().kind, ErrorKind::KmsNotFound);
}

#[tokio::test]
async fn encrypt_decrypt_with_encryption_context() {
    let (s, _, _) = setup();
    let key = customer_key(&s).await;
    let plaintext = SecretBytes::from("synthetic data key".to_string());
    let ctx_a = context(&[("purpose", "test"), ("tenant", "a")]);
    let (arn, blob) = s.kms_encrypt(&ctx(), &key, &plaintext, &ctx_a).await.unwrap();
    assert!(arn.ends_with(&key));
    let out = s.kms_decrypt(&ctx(), &blob, &ctx_a, None).await.unwrap();
    assert_eq!((out.plaintext.expose(), out.key_arn.as_str()), (plaintext.expose(), arn.as_str()));
    // The context must match exactly; any altered byte is an invalid ciphertext.
    let wrong = context(&[("purpose", "test")]);
    assert_eq!(s.kms_decrypt(&ctx(), &blob, &wrong, None).await.unwrap_err().kind, ErrorKind::InvalidCiphertext);
    let mut tampered = blob.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(s.kms_decrypt(&ctx(), &tampered, &ctx_a, None).await.unwrap_err().kind, ErrorKind::InvalidCiphertext);
    assert_eq!(s.kms_decrypt(&ctx(), b"garbage", &ctx_a, None).await.unwrap_err().kind, ErrorKind::InvalidCiphertext);
    // Naming another key than the ciphertext's is IncorrectKey.
    let other = customer_key(&s).await;
    assert_eq!(s.kms_decrypt(&ctx(), &blob, &ctx_a, Some(&other)).await.unwrap_err().kind, ErrorKind::IncorrectKey);
    // ReEncrypt moves it under another key and context without the caller seeing the plaintext.
    let ctx_b = context(&[("tenant", "b")]);
    let (source, dest, moved) = s.re_encrypt(&ctx(), &blob, &ctx_a, None, &other, &ctx_b).await.unwrap();
    assert!(source.ends_with(&key) && dest.ends_with(&other));
    assert_eq!(s.kms_decrypt(&ctx(), &moved, &ctx_b, None).await.unwrap().plaintext.expose(), plaintext.expose());
    // Data keys: the plaintext decrypts from the ciphertext; the variant without plaintext has none.
    let dk = s.generate_data_key(&ctx(), &key, 32, &ctx_a, true).await.unwrap();
    let opened = s.kms_decrypt(&ctx(), &dk.ciphertext, &ctx_a, None).await.unwrap();
    assert_eq!(opened.plaintext.expose(), dk.plaintext.as_ref().unwrap().expose());
    assert_eq!(opened.plaintext.len(), 32);
    assert!(s.generate_data_key(&ctx(), &key, 16, &ctx_a, false).await.unwrap().plaintext.is_none());
    assert_eq!(s.generate_data_key(&ctx(), &key, 0, &ctx_a, true).await.unwrap_err().kind, ErrorKind::Validation);
    let big = SecretBytes::new(vec![1; 4097]);
    assert_eq!(s.kms_encrypt(&ctx(), &key, &big, &ctx_a).await.unwrap_err().kind, ErrorKind::Validation);
}

#[tokio::test]
async fn a_disabled_key_stops_its_secrets_and_parameters_until_enabled() {
    let (s, _, _) = setup();
    let key = customer_key(&s).await;
    let created = s
        .create_secret(
            &ctx(),
            CreateSecretInput {
                name: "prod/db".into(),
                client_request_token: Some("a".repeat(32)),
                kms_key_id: Some(key.clone()),
                value: secret_string("synthetic-pw"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let param = PutParameterInput {
        name: "/prod/api/token".into(),
        value: Some(SecretBytes::from("synthetic-token".to_string())),
        parameter_type: Some("SecureString".into()),
        key_id: Some(key.clone()),
        ..Default::default()
    };
    s.put_parameter(&ctx(), param).await.unwrap();
    assert_eq!(read_secret(&s, "prod/db").await.unwrap(), "synthetic-pw");

    s.disable_key(&ctx(), &key).await.unwrap();
    let err = read_secret(&s, "prod/db").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::DecryptionFailure);
    assert!(err.message.contains("is disabled"), "{}", err.message);
    assert!(!err.message.contains("synthetic"), "no value in errors");
    let put = PutSecretValueInput {
        secret_id: created.arn.clone(),
        client_request_token: Some("b".repeat(32)),
        value: secret_string("next"),
        version_stages: None,
    };
    assert_eq!(s.put_secret_value(&ctx(), put).await.unwrap_err().kind, ErrorKind::EncryptionFailure);
    assert_eq!(s.get_parameter(&ctx(), "/prod/api/token", true).await.unwrap_err().kind, ErrorKind::KmsDisabled);
    // Without decryption the ciphertext is still listed: no key is used.
    let cipher = s.get_parameter(&ctx(), "/prod/api/token", false).await.unwrap();
    assert!(!cipher.value.expose_str().unwrap().contains("synthetic"));
    let mut kms_ctx = BTreeMap::new();
    kms_ctx.insert("k".to_string(), "v".to_string());
    let plain = SecretBytes::from("x".to_string());
    assert_eq!(s.kms_encrypt(&ctx(), &key, &plain, &kms_ctx).await.unwrap_err().kind, ErrorKind::KmsDisabled);

    s.enable_key(&ctx(), &key).await.unwrap();
    assert_eq!(read_secret(&s, "prod/db").await.unwrap(), "synthetic-pw");
    let v = s.get_parameter(&ctx(), "/prod/api/token", true).await.unwrap();
    assert_eq!(v.value.expose_str().unwrap(), "synthetic-token");
    // An unknown key is SSM's InvalidKeyId and Secrets Manager's EncryptionFailure.
    let bad = PutParameterInput {
        name: "/prod/api/other".into(),
        value: Some(SecretBytes::from("v".to_string())),
        parameter_type: Some("SecureString".into()),
        key_id: Some("alias/does-not-exist".into()),
        ..Default::default()
    };
    assert_eq!(s.put_parameter(&ctx(), bad).await.unwrap_err().kind, ErrorKind::InvalidKeyId);
    let bad = CreateSecretInput {
        name: "other".into(),
        client_request_token: Some("c".repeat(32)),
        kms_key_id: Some("alias/does-not-exist".into()),
        value: secret_string("v"),
        ..Default::default()
    };
    assert_eq!(s.create_secret(&ctx(), bad).await.unwrap_err().kind, ErrorKind::EncryptionFailure);
}

fn kms_version(envelope: &[u8]) -> u32 {
    match envelope_kek(envelope).unwrap() {
        EnvelopeKek::KmsKey { version, .. } => version,
        EnvelopeKek::Master => 0,
    }
}

#[tokio::test]
async fn rotation_adds_material_and_rewrap_moves_envelopes_without_changing_values() {
    let (s, store, _) = setup();
    let key = customer_key(&s).await;
    let created = s
        .create_secret(
            &ctx(),
            CreateSecretInput {
                name: "rotating".into(),
                client_request_token: Some("a".repeat(32)),
                kms_key_id: Some(key.clone()),
                value: secret_string("value-one"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let before = store.load_secret_by_arn(&created.arn).await.unwrap().unwrap();
    assert_eq!(kms_version(&before.versions[0].envelope), 1);

    s.rotate_key_now(&ctx(), &key).await.unwrap();
    assert!(s.take_rewrap_request(), "an on-demand rotation asks for a re-wrap pass");
    // Old material still decrypts; new values use the new material.
    assert_eq!(read_secret(&s, "rotating").await.unwrap(), "value-one");
    let report = s.rewrap_region(REGION).await.unwrap();
    assert_eq!(report.rewrapped, 1);
    let after = store.load_secret_by_arn(&created.arn).await.unwrap().unwrap();
    assert_eq!(kms_version(&after.versions[0].envelope), 2);
    // Only the wrapped data key changed: the value's nonce, ciphertext and tag are the same bytes.
    let tail = |e: &[u8]| e[81..].to_vec();
    assert_eq!(tail(&after.versions[0].envelope), tail(&before.versions[0].envelope));
    assert_eq!(after.secret.revision, before.secret.revision);
    assert_eq!(read_secret(&s, "rotating").await.unwrap(), "value-one");
    // A second pass has nothing to do.
    let again = s.rewrap_region(REGION).await.unwrap();
    assert_eq!((again.rewrapped, again.current), (0, 1));
}

#[tokio::test]
async fn values_sealed_before_kms_keys_move_under_their_key() {
    let (s, store, _) = setup();
    // A secret as an earlier Coffer stored it: sealed directly under the master key.
    let keyring = Keyring::new(&MasterKey::from_bytes(common::MASTER_KEY));
    let arn = "arn:aws:secretsmanager:us-west-1:123456789012:secret:legacy-AbCdEf".to_string();
    let version_id = "v".repeat(32);
    let aad = format!("coffer secret value v1\n{arn}\n{version_id}");
    let envelope = keyring.seal(&mut rand::rngs::OsRng, b"legacy-value", aad.as_bytes()).unwrap();
    let state = SecretState {
        secret: SecretRecord {
            arn: arn.clone(),
            region: REGION.into(),
            name: "legacy".into(),
            description: None,
            kms_key_id: None,
            tags: vec![],
            created: 1,
            last_changed: 1,
            last_accessed: None,
            deletion_date: None,
            resource_policy: None,
            rotation: Default::default(),
            revision: 1,
        },
        versions: vec![VersionRecord {
            version_id,
            stages: vec!["AWSCURRENT".into()],
            created: 1,
            kind: ValueKind::String,
            envelope,
        }],
    };
    store.write_secret(SecretWrite::Create(state), None).await.unwrap();
    assert_eq!(read_secret(&s, "legacy").await.unwrap(), "legacy-value");
    let report = s.migrate_legacy_envelopes(REGION).await.unwrap().unwrap();
    assert_eq!((report.rewrapped, report.legacy_left), (1, 0));
    assert!(
        s.migrate_legacy_envelopes(REGION).await.unwrap().is_none(),
        "recorded as done: later starts skip the scan"
    );
    let moved = store.load_secret_by_arn(&arn).await.unwrap().unwrap();
    let default_key = s.describe_key(&ctx(), "alias/aws/secretsmanager").await.unwrap();
    match envelope_kek(&moved.versions[0].envelope).unwrap() {
        EnvelopeKek::KmsKey { key_id, version } => {
            assert_eq!(uuid::Uuid::from_bytes(key_id).to_string(), default_key.key_id);
            assert_eq!(version, 1);
        }
        EnvelopeKek::Master => panic!("still under the master key"),
    }
    assert_eq!(read_secret(&s, "legacy").await.unwrap(), "legacy-value");
}

#[tokio::test]
async fn deletion_waits_for_dependents_can_be_cancelled_and_purges_after_the_window() {
    let (s, store, clock) = setup();
    let key = customer_key(&s).await;
    s.create_alias(&ctx(), "alias/payments", &key).await.unwrap();
    s.create_secret(
        &ctx(),
        CreateSecretInput {
            name: "depends".into(),
            client_request_token: Some("a".repeat(32)),
            kms_key_id: Some("alias/payments".into()),
            value: secret_string("v"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let err = s.schedule_key_deletion(&ctx(), &key, Some(7), false).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::KmsInvalidState);
    assert!(err.message.contains("1 secret(s)"), "{}", err.message);
    assert_eq!(s.schedule_key_deletion(&ctx(), &key, Some(6), true).await.unwrap_err().kind, ErrorKind::Validation);
    let scheduled = s.schedule_key_deletion(&ctx(), &key, Some(7), true).await.unwrap();
    assert_eq!((scheduled.key_state.as_str(), scheduled.pending_window_days), ("PendingDeletion", 7));
    assert_eq!(read_secret(&s, "depends").await.unwrap_err().kind, ErrorKind::DecryptionFailure);
    // Cancelled: back, but disabled, as in AWS.
    assert_eq!(s.cancel_key_deletion(&ctx(), &key).await.unwrap().key_state, "Disabled");
    assert_eq!(s.cancel_key_deletion(&ctx(), &key).await.unwrap_err().kind, ErrorKind::KmsInvalidState);
    s.enable_key(&ctx(), &key).await.unwrap();
    assert_eq!(read_secret(&s, "depends").await.unwrap(), "v");

    s.schedule_key_deletion(&ctx(), &key, Some(7), true).await.unwrap();
    clock.advance_millis(6 * DAY);
    assert_eq!(s.purge_due_key_deletions(REGION).await.unwrap(), 0);
    clock.advance_millis(DAY);
    assert_eq!(s.purge_due_key_deletions(REGION).await.unwrap(), 1);
    assert_eq!(s.describe_key(&ctx(), &key).await.unwrap_err().kind, ErrorKind::KmsNotFound);
    assert!(store.load_alias(REGION, "alias/payments").await.unwrap().is_none(), "its alias went with it");
}

#[tokio::test]
async fn aliases_follow_the_naming_rules() {
    let (s, _, _) = setup();
    let a = customer_key(&s).await;
    let b = customer_key(&s).await;
    s.create_alias(&ctx(), "alias/app/db-key_1", &a).await.unwrap();
    assert_eq!(s.create_alias(&ctx(), "alias/app/db-key_1", &b).await.unwrap_err().kind, ErrorKind::AlreadyExists);
    assert_eq!(s.create_alias(&ctx(), "no-prefix", &a).await.unwrap_err().kind, ErrorKind::InvalidAliasName);
    assert_eq!(s.create_alias(&ctx(), "alias/with space", &a).await.unwrap_err().kind, ErrorKind::InvalidAliasName);
    assert_eq!(s.create_alias(&ctx(), "alias/aws/mine", &a).await.unwrap_err().kind, ErrorKind::AccessDenied);
    assert_eq!(
        s.create_alias(&ctx(), "alias/x", "alias/aws/ssm").await.unwrap_err().kind,
        ErrorKind::UnsupportedOperation
    );
    s.update_alias(&ctx(), "alias/app/db-key_1", &b).await.unwrap();
    assert_eq!(s.describe_key(&ctx(), "alias/app/db-key_1").await.unwrap().key_id, b);
    assert_eq!(s.list_aliases(&ctx(), Some(&b)).await.unwrap().len(), 1);
    assert!(s.list_aliases(&ctx(), Some(&a)).await.unwrap().is_empty());
    s.delete_alias(&ctx(), "alias/app/db-key_1").await.unwrap();
    assert_eq!(s.delete_alias(&ctx(), "alias/app/db-key_1").await.unwrap_err().kind, ErrorKind::KmsNotFound);
    // Rotation settings and tags.
    s.enable_key_rotation(&ctx(), &a, Some(90)).await.unwrap();
    let status = s.get_key_rotation_status(&ctx(), &a).await.unwrap();
    assert_eq!((status.enabled, status.period_days), (true, Some(90)));
    assert_eq!(s.enable_key_rotation(&ctx(), &a, Some(89)).await.unwrap_err().kind, ErrorKind::Validation);
    s.tag_key(&ctx(), &a, vec![coffer_store::Tag { key: "team".into(), value: "pay".into() }]).await.unwrap();
    assert_eq!(s.describe_key(&ctx(), &a).await.unwrap().tags.len(), 1);
    s.untag_key(&ctx(), &a, vec!["team".into()]).await.unwrap();
    assert!(s.describe_key(&ctx(), &a).await.unwrap().tags.is_empty());
}

#[tokio::test]
async fn scheduled_rotation_runs_when_due() {
    let (s, store, clock) = setup();
    let key = customer_key(&s).await;
    s.enable_key_rotation(&ctx(), &key, Some(90)).await.unwrap();
    assert_eq!(s.rotate_due_keys(REGION).await.unwrap(), 0);
    clock.advance_millis(90 * DAY);
    assert_eq!(s.rotate_due_keys(REGION).await.unwrap(), 1);
    assert_eq!(store.load_kms_key(REGION, &key).await.unwrap().unwrap().materials.len(), 2);
    assert_eq!(s.rotate_due_keys(REGION).await.unwrap(), 0, "the next rotation is 90 days on");
}

#[tokio::test]
async fn update_secret_with_a_new_key_moves_its_labelled_versions_under_it() {
    let (s, store, _) = setup();
    let old_key = customer_key(&s).await;
    let new_key = customer_key(&s).await;
    let created = s
        .create_secret(
            &ctx(),
            CreateSecretInput {
                name: "moving".into(),
                client_request_token: Some("a".repeat(32)),
                kms_key_id: Some(old_key.clone()),
                value: secret_string("synthetic-moving"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let update = coffer_service::secrets::UpdateSecretInput {
        secret_id: created.arn.clone(),
        kms_key_id: Some(new_key.clone()),
        ..Default::default()
    };
    s.update_secret(&ctx(), update).await.unwrap();
    let state = store.load_secret_by_arn(&created.arn).await.unwrap().unwrap();
    match envelope_kek(&state.versions[0].envelope).unwrap() {
        EnvelopeKek::KmsKey { key_id, .. } => assert_eq!(uuid::Uuid::from_bytes(key_id).to_string(), new_key),
        EnvelopeKek::Master => panic!("not under a KMS key"),
    }
    // The old key no longer protects anything: it may go without force, and the value still reads.
    s.schedule_key_deletion(&ctx(), &old_key, Some(7), false).await.unwrap();
    assert_eq!(read_secret(&s, "moving").await.unwrap(), "synthetic-moving");
}

#[tokio::test]
async fn version_listings_name_the_customer_key_that_wraps_each_version() {
    let (s, _, _) = setup();
    let key = customer_key(&s).await;
    for (name, kms) in [("default-key", None), ("customer-key", Some(key.clone()))] {
        s.create_secret(
            &ctx(),
            CreateSecretInput {
                name: name.into(),
                client_request_token: Some("a".repeat(32)),
                kms_key_id: kms,
                value: secret_string("v"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let list = |id: &str| coffer_service::secrets::ListVersionIdsInput { secret_id: id.into(), ..Default::default() };
    let default = s.list_secret_version_ids(&ctx(), list("default-key")).await.unwrap();
    assert_eq!(default.versions[0].kms_key_id, None, "the default key is reported as DefaultEncryptionKey");
    let custom = s.list_secret_version_ids(&ctx(), list("customer-key")).await.unwrap();
    assert!(custom.versions[0].kms_key_id.as_deref().unwrap().ends_with(&key));
}
