//! The storage conformance suite: every backend runs exactly these cases, so no behaviour differs
//! between the embedded file and a shared database.
//!
//! A backend instantiates it with [`conformance_suite!`](crate::conformance_suite), giving an async
//! expression that yields a fresh, empty store (and anything that must live as long, such as a temp dir).

// Test-support code: a failed unwrap here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::*;

/// Expands to one `#[tokio::test]` per case. `$factory` is an async block returning
/// `(impl Store, guard)`; the guard is kept alive for the test's duration.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            create_and_load_round_trip, names_are_unique_per_region, scheduled_deletion_still_holds_the_name,
            update_applies_atomically_and_bumps_revision, stale_revision_conflicts_and_changes_nothing,
            delete_removes_secret_and_versions, missing_secret_writes_are_not_found, list_is_per_region_and_ordered,
            touch_does_not_bump_revision, due_for_deletion_boundary, access_keys_and_settings,
            large_envelopes_and_odd_names, concurrent_compare_and_swap_loses_nothing, concurrent_creates_all_land);
    };
    (@cases $factory:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (store, _guard) = $factory.await;
                $crate::conformance::$case(std::sync::Arc::new(store)).await;
            }
        )*
    };
}

fn secret(region: &str, name: &str, created: EpochMillis) -> SecretRecord {
    SecretRecord {
        arn: format!("arn:aws:secretsmanager:{region}:000000000000:secret:{name}-AbC123"),
        region: region.into(),
        name: name.into(),
        description: Some("a description".into()),
        kms_key_id: None,
        tags: vec![Tag { key: "b".into(), value: "2".into() }, Tag { key: "a".into(), value: "1".into() }],
        created,
        last_changed: created,
        last_accessed: None,
        deletion_date: None,
        resource_policy: None,
        rotation: RotationSettings::default(),
        revision: 1,
    }
}

fn version(id: &str, stages: &[&str], created: EpochMillis, envelope: Vec<u8>) -> VersionRecord {
    VersionRecord {
        version_id: id.into(),
        stages: stages.iter().map(|s| s.to_string()).collect(),
        created,
        kind: ValueKind::String,
        envelope,
    }
}

fn state(region: &str, name: &str) -> SecretState {
    SecretState {
        secret: secret(region, name, 1000),
        versions: vec![version("v1", &["AWSCURRENT"], 1000, vec![1, 2, 3])],
    }
}

fn bumped(s: &SecretRecord) -> SecretRecord {
    let mut n = s.clone();
    n.revision += 1;
    n
}

pub async fn create_and_load_round_trip(store: Arc<dyn Store>) {
    let mut st = state("us-east-1", "/prod/backend/db_password");
    st.versions.push(version("v2", &[], 900, vec![9; 40]));
    st.secret.kms_key_id = Some("alias/custom".into());
    st.secret.resource_policy = Some("{}".into());
    st.secret.rotation.lambda_arn = Some("arn:aws:lambda:us-east-1:0:function:f".into());
    store.write_secret(SecretWrite::Create(st.clone())).await.unwrap();
    let mut expected = st.clone();
    expected.versions.sort_by_key(|v| v.created);
    let by_name = store.load_secret_by_name("us-east-1", "/prod/backend/db_password").await.unwrap().unwrap();
    assert_eq!(by_name, expected);
    let by_arn = store.load_secret_by_arn(&st.secret.arn).await.unwrap().unwrap();
    assert_eq!(by_arn, expected);
    assert!(store.load_secret_by_name("us-west-2", "/prod/backend/db_password").await.unwrap().is_none());
}

pub async fn names_are_unique_per_region(store: Arc<dyn Store>) {
    store.write_secret(SecretWrite::Create(state("us-east-1", "n"))).await.unwrap();
    let mut again = state("us-east-1", "n");
    again.secret.arn.push('X');
    assert_eq!(store.write_secret(SecretWrite::Create(again)).await.unwrap_err(), StoreError::AlreadyExists);
    store.write_secret(SecretWrite::Create(state("eu-west-1", "n"))).await.unwrap();
}

pub async fn scheduled_deletion_still_holds_the_name(store: Arc<dyn Store>) {
    let mut st = state("us-east-1", "held");
    st.secret.deletion_date = Some(5000);
    store.write_secret(SecretWrite::Create(st)).await.unwrap();
    let mut again = state("us-east-1", "held");
    again.secret.arn.push('Y');
    assert_eq!(store.write_secret(SecretWrite::Create(again)).await.unwrap_err(), StoreError::AlreadyExists);
}

pub async fn update_applies_atomically_and_bumps_revision(store: Arc<dyn Store>) {
    let mut st = state("us-east-1", "upd");
    st.versions.push(version("v0", &["AWSPREVIOUS"], 500, vec![0]));
    store.write_secret(SecretWrite::Create(st.clone())).await.unwrap();
    let mut s = bumped(&st.secret);
    s.description = None;
    s.tags = vec![Tag { key: "k".into(), value: "v".into() }];
    store
        .write_secret(SecretWrite::Update {
            expected_revision: 1,
            secret: s.clone(),
            new_versions: vec![version("v2", &["AWSCURRENT"], 2000, vec![7])],
            stage_updates: vec![("v1".into(), vec!["AWSPREVIOUS".into()])],
            deleted_versions: vec!["v0".into()],
        })
        .await
        .unwrap();
    let got = store.load_secret_by_arn(&s.arn).await.unwrap().unwrap();
    assert_eq!(got.secret, s);
    assert_eq!(got.secret.revision, 2);
    let ids: Vec<(&str, &[String])> =
        got.versions.iter().map(|v| (v.version_id.as_str(), v.stages.as_slice())).collect();
    assert_eq!(ids, vec![("v1", &["AWSPREVIOUS".to_string()][..]), ("v2", &["AWSCURRENT".to_string()][..])]);
}

pub async fn stale_revision_conflicts_and_changes_nothing(store: Arc<dyn Store>) {
    let st = state("us-east-1", "stale");
    store.write_secret(SecretWrite::Create(st.clone())).await.unwrap();
    let mut s = st.secret.clone();
    s.revision = 8;
    s.description = Some("changed".into());
    let err = store
        .write_secret(SecretWrite::Update {
            expected_revision: 7,
            secret: s,
            new_versions: vec![version("vX", &[], 3000, vec![1])],
            stage_updates: vec![],
            deleted_versions: vec!["v1".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    assert_eq!(store.load_secret_by_arn(&st.secret.arn).await.unwrap().unwrap(), st);
    let err =
        store.write_secret(SecretWrite::Delete { arn: st.secret.arn.clone(), expected_revision: 3 }).await.unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    assert!(store.load_secret_by_arn(&st.secret.arn).await.unwrap().is_some());
}

pub async fn delete_removes_secret_and_versions(store: Arc<dyn Store>) {
    let st = state("us-east-1", "gone");
    store.write_secret(SecretWrite::Create(st.clone())).await.unwrap();
    store.write_secret(SecretWrite::Delete { arn: st.secret.arn.clone(), expected_revision: 1 }).await.unwrap();
    assert!(store.load_secret_by_arn(&st.secret.arn).await.unwrap().is_none());
    // The name (and even the ARN) can be used again, with no versions left behind.
    let mut again = state("us-east-1", "gone");
    again.versions.clear();
    store.write_secret(SecretWrite::Create(again.clone())).await.unwrap();
    assert!(store.load_secret_by_arn(&again.secret.arn).await.unwrap().unwrap().versions.is_empty());
}

pub async fn missing_secret_writes_are_not_found(store: Arc<dyn Store>) {
    let st = state("us-east-1", "never");
    let err = store
        .write_secret(SecretWrite::Update {
            expected_revision: 1,
            secret: bumped(&st.secret),
            new_versions: vec![],
            stage_updates: vec![],
            deleted_versions: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::NotFound);
    let err = store.write_secret(SecretWrite::Delete { arn: st.secret.arn, expected_revision: 1 }).await.unwrap_err();
    assert_eq!(err, StoreError::NotFound);
}

pub async fn list_is_per_region_and_ordered(store: Arc<dyn Store>) {
    for (name, created) in [("c", 3), ("a", 1), ("b", 2), ("b2", 2)] {
        let mut st = state("us-east-1", name);
        st.secret.created = created;
        store.write_secret(SecretWrite::Create(st)).await.unwrap();
    }
    store.write_secret(SecretWrite::Create(state("eu-west-1", "other"))).await.unwrap();
    let names: Vec<String> = store.list_secrets("us-east-1").await.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["a", "b", "b2", "c"]);
    assert_eq!(store.list_secrets("eu-west-1").await.unwrap().len(), 1);
    assert!(store.list_secrets("ap-south-1").await.unwrap().is_empty());
}

pub async fn touch_does_not_bump_revision(store: Arc<dyn Store>) {
    let st = state("us-east-1", "touched");
    store.write_secret(SecretWrite::Create(st.clone())).await.unwrap();
    store.touch_secret_accessed(&st.secret.arn, 86_400_000).await.unwrap();
    let got = store.load_secret_by_arn(&st.secret.arn).await.unwrap().unwrap();
    assert_eq!(got.secret.last_accessed, Some(86_400_000));
    assert_eq!(got.secret.revision, 1);
}

pub async fn due_for_deletion_boundary(store: Arc<dyn Store>) {
    for (name, when) in [("early", Some(100)), ("exact", Some(200)), ("late", Some(201)), ("none", None)] {
        let mut st = state("us-east-1", name);
        st.secret.deletion_date = when;
        store.write_secret(SecretWrite::Create(st)).await.unwrap();
    }
    let mut due: Vec<String> = store
        .secrets_due_for_deletion(200)
        .await
        .unwrap()
        .into_iter()
        .map(|(arn, rev)| {
            assert_eq!(rev, 1);
            arn
        })
        .collect();
    due.sort();
    assert_eq!(due.len(), 2);
    assert!(due[0].contains(":early-") && due[1].contains(":exact-"));
}

pub async fn access_keys_and_settings(store: Arc<dyn Store>) {
    let key = AccessKeyRecord {
        access_key_id: "AKIAEXAMPLE000000001".into(),
        sealed_secret: vec![1, 2, 3],
        principal_arn: "arn:aws:iam::000000000000:root".into(),
        user_name: "root".into(),
        status: "Active".into(),
        created: 42,
    };
    store.insert_access_key(key.clone()).await.unwrap();
    assert_eq!(store.get_access_key("AKIAEXAMPLE000000001").await.unwrap(), Some(key.clone()));
    assert_eq!(store.insert_access_key(key).await.unwrap_err(), StoreError::AlreadyExists);
    assert!(store.get_access_key("AKIANOPE").await.unwrap().is_none());
    assert!(store.get_setting("k").await.unwrap().is_none());
    assert!(store.put_setting_if_absent("k", b"one").await.unwrap());
    assert!(!store.put_setting_if_absent("k", b"two").await.unwrap());
    assert_eq!(store.get_setting("k").await.unwrap(), Some(b"one".to_vec()));
}

pub async fn large_envelopes_and_odd_names(store: Arc<dyn Store>) {
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    for name in ["/prod/backend/db_password", "a+b=c.d@e-f_g", &"x".repeat(512)] {
        let mut st = state("us-east-1", name);
        st.versions[0].envelope = big.clone();
        store.write_secret(SecretWrite::Create(st.clone())).await.unwrap();
        let got = store.load_secret_by_name("us-east-1", name).await.unwrap().unwrap();
        assert_eq!(got.versions[0].envelope, big);
        assert_eq!(got.secret.name, name);
    }
}

pub async fn concurrent_compare_and_swap_loses_nothing(store: Arc<dyn Store>) {
    let st = state("us-east-1", "contended");
    store.write_secret(SecretWrite::Create(st.clone())).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        let arn = st.secret.arn.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            loop {
                let cur = store.load_secret_by_arn(&arn).await.unwrap().unwrap();
                let w = SecretWrite::Update {
                    expected_revision: cur.secret.revision,
                    secret: bumped(&cur.secret),
                    new_versions: vec![version(&format!("task-{t}"), &[], 2000 + t, vec![t as u8])],
                    stage_updates: vec![],
                    deleted_versions: vec![],
                };
                match store.write_secret(w).await {
                    Ok(()) => return conflicts,
                    Err(StoreError::Conflict) => conflicts += 1,
                    Err(e) => panic!("unexpected {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = store.load_secret_by_arn(&st.secret.arn).await.unwrap().unwrap();
    assert_eq!(got.secret.revision, 17);
    assert_eq!(got.versions.len(), 17);
    let mut ids: Vec<&str> = got.versions.iter().map(|v| v.version_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 17);
}

pub async fn concurrent_creates_all_land(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.write_secret(SecretWrite::Create(state("us-east-1", &format!("bulk/{i:03}")))).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.list_secrets("us-east-1").await.unwrap().len(), 200);
}
