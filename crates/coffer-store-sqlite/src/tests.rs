//! Tests of the SQLite backend: the shared conformance suite on a real temp file, plus what only a
//! durable, file-backed, group-committing store has — surviving a reopen, refusing a newer schema,
//! batching concurrent writes into few commits, isolating a failing write inside its batch, reporting
//! damaged rows as `Corrupt`, and reading while the write lock is held.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use coffer_store::{IamKind, RotationSettings, Tag, ValueKind, VersionRecord};

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
            description: Some("d".into()),
            kms_key_id: None,
            tags: vec![Tag { key: "k".into(), value: "v".into() }],
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

fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

#[test]
fn migrations_are_consecutive_and_end_at_the_schema_version() {
    for (i, m) in schema::MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version, i as i64 + 1, "migration {}", m.name);
        assert!(!m.sql.trim().is_empty());
    }
    assert_eq!(schema::MIGRATIONS.last().unwrap().version, SCHEMA_VERSION);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_file_is_migrated_in_wal_mode_and_reopening_changes_nothing() {
    let (store, dir) = fresh().await;
    assert_eq!(store.backend_name(), "sqlite");
    assert_eq!(store.stats(), WriterStats::default());
    drop(store);
    let path = dir.path().join("coffer.db");
    let versions = |conn: &Connection| -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT version FROM schema_version ORDER BY version").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(|v| v.unwrap()).collect()
    };
    {
        let conn = raw(&path);
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(versions(&conn), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
        for table in [
            "secrets",
            "secret_versions",
            "access_keys",
            "settings",
            "iam_entities",
            "iam_generation",
            "audit_events",
            "audit_lookup",
            "audit_head",
            "audit_digests",
        ] {
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(n, 1, "{table}");
        }
        let generation: i64 = conn.query_row("SELECT generation FROM iam_generation", [], |r| r.get(0)).unwrap();
        assert_eq!(generation, 0);
    }
    drop(SqliteStore::open(&path).await.unwrap());
    assert_eq!(versions(&raw(&path)), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    let key = AccessKeyRecord {
        access_key_id: "AKIA0000000000000001".into(),
        sealed_secret: vec![5; 48],
        principal_arn: "arn:aws:iam::000000000000:root".into(),
        user_name: "root".into(),
        status: "Active".into(),
        created: 7,
    };
    let mut updated = sample("durable");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store.write_secret(SecretWrite::Create(sample("durable")), None).await.unwrap();
        store.write_secret(SecretWrite::Create(sample("deleted")), None).await.unwrap();
        updated.secret.revision = 2;
        updated.secret.description = None;
        updated.versions.push(VersionRecord {
            version_id: "v2".into(),
            stages: vec!["AWSPENDING".into()],
            created: 2,
            kind: ValueKind::String,
            envelope: vec![0; 70_000],
        });
        store
            .write_secret(
                SecretWrite::Update {
                    expected_revision: 1,
                    secret: updated.secret.clone(),
                    new_versions: vec![updated.versions[1].clone()],
                    stage_updates: vec![],
                    deleted_versions: vec![],
                },
                None,
            )
            .await
            .unwrap();
        let deleted_arn = sample("deleted").secret.arn;
        store.write_secret(SecretWrite::Delete { arn: deleted_arn, expected_revision: 1 }, None).await.unwrap();
        store.touch_secret_accessed(&updated.secret.arn, 86_400_000).await.unwrap();
        store.insert_access_key(key.clone()).await.unwrap();
        store.put_setting_if_absent("k", b"v").await.unwrap();
        // Dropped without any explicit flush or close: every acknowledged write must already be durable.
    }
    updated.secret.last_accessed = Some(86_400_000);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.load_secret_by_name("us-east-1", "durable").await.unwrap(), Some(updated));
    assert!(store.load_secret_by_name("us-east-1", "deleted").await.unwrap().is_none());
    assert_eq!(store.get_access_key(&key.access_key_id).await.unwrap(), Some(key));
    assert_eq!(store.get_setting("k").await.unwrap(), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_a_newer_schema_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store.write_secret(SecretWrite::Create(sample("kept")), None).await.unwrap();
    }
    {
        let conn = raw(&path);
        conn.execute("INSERT INTO schema_version (version) VALUES (?1)", [SCHEMA_VERSION + 98]).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    for _ in 0..2 {
        let err = SqliteStore::open(&path).await.err().expect("must refuse");
        assert_eq!(err, StoreError::SchemaTooNew { found: SCHEMA_VERSION + 98, supported: SCHEMA_VERSION });
        assert!(err.to_string().contains("newer"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "the database file must not change");
        let wal = dir.path().join("coffer.db-wal");
        assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0, "nothing may be written to the WAL");
    }
    // The data is still there for the newer binary.
    let conn = raw(&path);
    let name: String = conn.query_row("SELECT name FROM secrets", [], |r| r.get(0)).unwrap();
    assert_eq!(name, "kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn opening_reports_errors_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let missing_parent = dir.path().join("no-such-dir").join("coffer.db");
    assert!(matches!(SqliteStore::open(&missing_parent).await, Err(StoreError::Unavailable(_))));

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x42; 8192]).unwrap();
    assert!(matches!(SqliteStore::open(&garbage).await, Err(StoreError::Corrupt(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_commits() {
    let (store, _dir) = fresh().await;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..500 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut st = sample(&format!("g/{i}"));
            st.secret.created = i;
            store.write_secret(SecretWrite::Create(st), None).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.writes, 500);
    assert_eq!(stats.failed_batches, 0);
    assert!(stats.commits < stats.writes, "group commit batched nothing: {stats:?}");
    assert!(stats.largest_batch > 1 && stats.largest_batch <= MAX_BATCH as u64, "{stats:?}");
    assert_eq!(store.list_secrets("us-east-1").await.unwrap().len(), 500);
    eprintln!("500 concurrent writes: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_write_does_not_sink_its_batch() {
    let (store, _dir) = fresh().await;
    let store = Arc::new(store);
    store.write_secret(SecretWrite::Create(sample("taken")), None).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        let name = if i % 5 == 0 { "taken".to_string() } else { format!("ok/{i}") };
        let mut st = sample(&name);
        st.secret.arn = format!("{}-{i}", st.secret.arn);
        tasks.push(tokio::spawn(async move { store.write_secret(SecretWrite::Create(st), None).await }));
    }
    let (mut ok, mut dup) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::AlreadyExists) => dup += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, dup), (40, 10));
    assert_eq!(store.list_secrets("us-east-1").await.unwrap().len(), 41);
    assert_eq!(store.stats().failed_batches, 0);
}

/// An update that fails halfway (its secret row already rewritten, then a version insert hits a
/// duplicate id) is rolled back to its savepoint entirely.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_failing_halfway_leaves_no_trace() {
    let (store, _dir) = fresh().await;
    let st = sample("half");
    store.write_secret(SecretWrite::Create(st.clone()), None).await.unwrap();
    let mut s = st.secret.clone();
    s.revision = 2;
    s.description = Some("half-applied".into());
    let fresh_version = VersionRecord { version_id: "v2".into(), ..st.versions[0].clone() };
    let err = store
        .write_secret(
            SecretWrite::Update {
                expected_revision: 1,
                secret: s,
                new_versions: vec![fresh_version, st.versions[0].clone()],
                stage_updates: vec![("v1".into(), vec![])],
                deleted_versions: vec![],
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::AlreadyExists);
    assert_eq!(store.load_secret_by_arn(&st.secret.arn).await.unwrap(), Some(st));
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_rows_are_corrupt_not_panics() {
    let (store, dir) = fresh().await;
    for name in ["bad-tags", "bad-kind", "bad-revision", "bad-stages"] {
        store.write_secret(SecretWrite::Create(sample(name)), None).await.unwrap();
    }
    {
        let conn = raw(&dir.path().join("coffer.db"));
        conn.execute("UPDATE secrets SET tags = 'not json' WHERE name = 'bad-tags'", []).unwrap();
        conn.execute("UPDATE secrets SET revision = -1 WHERE name = 'bad-revision'", []).unwrap();
        conn.execute(
            "UPDATE secret_versions SET kind = 'hologram' WHERE arn = (SELECT arn FROM secrets WHERE name = 'bad-kind')",
            [],
        )
        .unwrap();
        conn.execute(
            "UPDATE secret_versions SET stages = '{' WHERE arn = (SELECT arn FROM secrets WHERE name = 'bad-stages')",
            [],
        )
        .unwrap();
    }
    for name in ["bad-tags", "bad-kind", "bad-revision", "bad-stages"] {
        let err = store.load_secret_by_name("us-east-1", name).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{name}: {err:?}");
    }
    assert!(matches!(store.list_secrets("us-east-1").await.unwrap_err(), StoreError::Corrupt(_)));
    // The read connections survive a failed read.
    store.write_secret(SecretWrite::Create(sample("fine")), None).await.unwrap();
    assert!(store.load_secret_by_name("us-east-1", "fine").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_writer_is_unavailable() {
    let (mut store, _dir) = fresh().await;
    drop(store.writer.take());
    let err = store.write_secret(SecretWrite::Create(sample("late")), None).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(matches!(store.put_setting_if_absent("k", b"v").await, Err(StoreError::Unavailable(_))));
    // Reads still work.
    assert!(store.list_secrets("us-east-1").await.unwrap().is_empty());
}

/// While another connection holds the write lock, reads proceed (WAL) and writes wait (busy timeout),
/// then commit once the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_proceed_while_another_connection_holds_the_write_lock() {
    let (store, dir) = fresh().await;
    store.write_secret(SecretWrite::Create(sample("before")), None).await.unwrap();
    let path = dir.path().join("coffer.db");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let conn = raw(&path);
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(3)); // well inside the writer's busy timeout
        conn.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    let store = Arc::new(store);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.write_secret(SecretWrite::Create(sample("after")), None).await })
    };
    // The lock is held until we say so: these reads must not need it.
    for _ in 0..10 {
        assert!(store.load_secret_by_name("us-east-1", "before").await.unwrap().is_some());
    }
    assert!(store.load_secret_by_name("us-east-1", "after").await.unwrap().is_none());
    assert!(!writer.is_finished(), "a write committed while another connection held the lock");
    release_tx.send(()).unwrap();
    writer.await.unwrap().unwrap();
    holder.join().unwrap();
    assert!(store.load_secret_by_name("us-east-1", "after").await.unwrap().is_some());
}

fn iam_user(name: &str, document: &[u8]) -> IamEntityRecord {
    IamEntityRecord { kind: IamKind::User, name: name.into(), document: document.to_vec(), revision: 1 }
}

fn iam_key(id: &str, user: &str, created: EpochMillis) -> AccessKeyRecord {
    AccessKeyRecord {
        access_key_id: id.into(),
        sealed_secret: vec![3; 48],
        principal_arn: format!("arn:aws:iam::000000000000:user/{user}"),
        user_name: user.into(),
        status: "Active".into(),
        created,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    let alice = iam_user("alice", &[0, 0xff, 7]);
    let key = iam_key("AKIAIAMDURABLE000001", "alice", 5);
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .write_iam(vec![IamWrite::Create(alice.clone()), IamWrite::InsertAccessKey(key.clone())], None)
            .await
            .unwrap();
        store
            .write_iam(
                vec![
                    IamWrite::Create(iam_user("bob", b"{}")),
                    IamWrite::DeleteAccessKey { access_key_id: key.access_key_id.clone() },
                ],
                None,
            )
            .await
            .unwrap();
        store
            .write_iam(
                vec![
                    IamWrite::Delete { kind: IamKind::User, name: "bob".into(), expected_revision: 1 },
                    IamWrite::InsertAccessKey(key.clone()),
                ],
                None,
            )
            .await
            .unwrap();
        // Dropped without any explicit flush or close.
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.load_iam().await.unwrap(), (3, vec![alice]));
    assert_eq!(store.iam_generation().await.unwrap(), 3);
    assert_eq!(store.list_access_keys("alice").await.unwrap(), vec![key]);
    assert_eq!(store.write_iam(vec![], None).await.unwrap(), 4, "the generation carries on where it was");
}

/// A file written by the previous schema (no IAM tables, access keys already stored) is migrated: IAM
/// starts at generation 0 and the old keys are listed per user.
#[tokio::test(flavor = "multi_thread")]
async fn a_version_3_file_is_migrated_to_iam() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    let old_key = iam_key("AKIAOLDKEY0000000001", "root", 1);
    {
        let conn = raw(&path);
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)").unwrap();
        for m in schema::MIGRATIONS.iter().filter(|m| m.version <= 3) {
            conn.execute_batch(m.sql).unwrap();
            conn.execute("INSERT INTO schema_version (version) VALUES (?1)", [m.version]).unwrap();
        }
        conn.execute(
            "INSERT INTO access_keys (access_key_id, sealed_secret, principal_arn, user_name, status, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                old_key.access_key_id,
                old_key.sealed_secret,
                old_key.principal_arn,
                old_key.user_name,
                old_key.status,
                old_key.created
            ],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.load_iam().await.unwrap(), (0, vec![]));
    assert_eq!(store.list_access_keys("root").await.unwrap(), vec![old_key]);
    assert_eq!(store.write_iam(vec![IamWrite::Create(iam_user("alice", b"{}"))], None).await.unwrap(), 1);
    let version: i64 = raw(&path).query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

/// Listing a user's keys is a range scan of the index, not a scan of every key.
#[tokio::test(flavor = "multi_thread")]
async fn listing_access_keys_uses_the_user_index() {
    let (_store, dir) = fresh().await;
    let conn = raw(&dir.path().join("coffer.db"));
    let mut stmt = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT access_key_id, sealed_secret, principal_arn, user_name, status, created
             FROM access_keys WHERE user_name = ?1 ORDER BY created, access_key_id",
        )
        .unwrap();
    let plan: Vec<String> = stmt.query_map(["alice"], |r| r.get::<_, String>(3)).unwrap().map(|r| r.unwrap()).collect();
    let plan = plan.join("\n");
    assert!(plan.contains("access_keys_by_user"), "{plan}");
    assert!(!plan.contains("SCAN access_keys"), "{plan}");
}

/// An IAM batch, however long, is one writer operation (one savepoint): a failing one is answered
/// alone and does not sink the other writes of its group commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_iam_batch_is_one_writer_operation() {
    let (store, _dir) = fresh().await;
    let batch: Vec<IamWrite> = (0..50).map(|i| IamWrite::Create(iam_user(&format!("u{i}"), b"{}"))).collect();
    assert_eq!(store.write_iam(batch, None).await.unwrap(), 1);
    assert_eq!(store.stats().writes, 1);

    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                // Fails on its last write (u0 exists): all of it must go.
                let writes =
                    vec![IamWrite::Create(iam_user(&format!("new{i}"), b"{}")), IamWrite::Create(iam_user("u0", b""))];
                store.write_iam(writes, None).await.map(drop)
            } else {
                store.write_secret(SecretWrite::Create(sample(&format!("s{i}"))), None).await
            }
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    for (i, r) in results.iter().enumerate() {
        if i % 4 == 0 {
            assert_eq!(*r, Err(StoreError::AlreadyExists), "{i}");
        } else {
            assert_eq!(*r, Ok(()), "{i}");
        }
    }
    assert_eq!(store.stats().failed_batches, 0);
    assert_eq!(store.list_secrets("us-east-1").await.unwrap().len(), 30);
    let (generation, entities) = store.load_iam().await.unwrap();
    assert_eq!((generation, entities.len()), (1, 50));
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_iam_rows_are_corrupt_not_panics() {
    let (store, dir) = fresh().await;
    store.write_iam(vec![IamWrite::Create(iam_user("alice", b"{}"))], None).await.unwrap();
    let conn = raw(&dir.path().join("coffer.db"));
    let corrupt = |e: StoreError| assert!(matches!(e, StoreError::Corrupt(_)), "{e:?}");

    conn.execute("UPDATE iam_entities SET kind = 'wizard'", []).unwrap();
    corrupt(store.load_iam().await.unwrap_err());
    conn.execute("UPDATE iam_entities SET kind = 'user', revision = -3", []).unwrap();
    corrupt(store.load_iam().await.unwrap_err());
    conn.execute("UPDATE iam_entities SET revision = 1, document = 'text, not a blob'", []).unwrap();
    corrupt(store.load_iam().await.unwrap_err());
    conn.execute("UPDATE iam_entities SET document = X'00'", []).unwrap();
    assert_eq!(store.load_iam().await.unwrap().1.len(), 1);

    conn.execute("UPDATE iam_generation SET generation = -1", []).unwrap();
    corrupt(store.iam_generation().await.unwrap_err());
    corrupt(store.load_iam().await.unwrap_err());
    conn.execute("UPDATE iam_generation SET generation = 9223372036854775807", []).unwrap();
    corrupt(store.write_iam(vec![], None).await.unwrap_err());
    conn.execute("DELETE FROM iam_generation", []).unwrap();
    corrupt(store.iam_generation().await.unwrap_err());
    corrupt(store.load_iam().await.unwrap_err());
    // A batch that cannot bump the generation is not applied at all.
    corrupt(store.write_iam(vec![IamWrite::Create(iam_user("bob", b"{}"))], None).await.unwrap_err());
    let users: i64 = conn.query_row("SELECT COUNT(*) FROM iam_entities", [], |r| r.get(0)).unwrap();
    assert_eq!(users, 1);

    conn.execute("INSERT INTO iam_generation (id, generation) VALUES (0, 7)", []).unwrap();
    assert_eq!(store.write_iam(vec![IamWrite::Create(iam_user("bob", b"{}"))], None).await.unwrap(), 8);
    assert_eq!(store.stats().failed_batches, 0, "a damaged row fails one write, not its group commit");
}
