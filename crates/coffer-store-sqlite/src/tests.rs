//! The SQLite backend: the shared conformance suite on a real file, plus durability, schema-version
//! refusal and group commit.

use std::sync::Arc;

use super::*;

async fn fresh() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("coffer.db")).await.expect("open");
    (store, dir)
}

coffer_store::conformance_suite!(fresh());

fn sample(name: &str) -> SecretState {
    SecretState {
        secret: SecretRecord {
            arn: format!("arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-AbC123"),
            region: "us-east-1".into(),
            name: name.into(),
            description: None,
            kms_key_id: None,
            tags: vec![],
            created: 1,
            last_changed: 1,
            last_accessed: None,
            deletion_date: None,
            resource_policy: None,
            rotation: RotationSettings::default(),
            revision: 1,
        },
        versions: vec![VersionRecord {
            version_id: "v1".into(),
            stages: vec!["AWSCURRENT".into()],
            created: 1,
            kind: ValueKind::Binary,
            envelope: vec![1, 2, 3],
        }],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store.write_secret(SecretWrite::Create(sample("durable"))).await.unwrap();
        store.put_setting_if_absent("k", b"v").await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let got = store.load_secret_by_name("us-east-1", "durable").await.unwrap().unwrap();
    assert_eq!(got, sample("durable"));
    assert_eq!(store.get_setting("k").await.unwrap(), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_a_newer_schema_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    drop(SqliteStore::open(&path).await.unwrap());
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute("INSERT INTO schema_version (version) VALUES (99)", []).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = SqliteStore::open(&path).await.err().expect("must refuse");
    assert_eq!(err, StoreError::SchemaTooNew { found: 99, supported: MIGRATIONS.len() as i64 });
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_commits() {
    let (store, _dir) = fresh().await;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..500 {
        let store = store.clone();
        tasks.push(tokio::spawn(
            async move { store.write_secret(SecretWrite::Create(sample(&format!("g/{i}")))).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let writes = store.stats().writes.load(Ordering::Relaxed);
    let commits = store.stats().commits.load(Ordering::Relaxed);
    assert_eq!(writes, 500);
    assert!(commits < writes, "group commit batched nothing: {commits} commits for {writes} writes");
    assert_eq!(store.list_secrets("us-east-1").await.unwrap().len(), 500);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_write_does_not_sink_its_batch() {
    let (store, _dir) = fresh().await;
    let store = Arc::new(store);
    store.write_secret(SecretWrite::Create(sample("taken"))).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        let name = if i % 5 == 0 { "taken".to_string() } else { format!("ok/{i}") };
        let mut st = sample(&name);
        st.secret.arn = format!("{}-{i}", st.secret.arn);
        tasks.push(tokio::spawn(async move { store.write_secret(SecretWrite::Create(st)).await }));
    }
    let mut ok = 0;
    let mut dup = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::AlreadyExists) => dup += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, dup), (40, 10));
    assert_eq!(store.list_secrets("us-east-1").await.unwrap().len(), 41);
}
