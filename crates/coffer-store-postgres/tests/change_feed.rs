//! The change feed between nodes: a committed change on one store is heard on another's feed, naming
//! the right record; a write that fails (conflict, duplicate) announces nothing; every committed write
//! is announced; a lost listening connection is followed by `Everything`; the feed ends with its store.
//!
//! All schemas of the test database share the one channel, so tests running beside these (the
//! conformance suite) are heard too: each test names its records uniquely and looks only at notices
//! naming them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use coffer_store::{
    ChangeNotice, KeyMaterialRecord, KmsKeyRecord, KmsKeyState, KmsKeyWrite, ParameterState, ParameterVersionRecord,
    ParameterWrite, SecretState, SecretWrite, Store, StoreError,
};
use coffer_store_postgres::PostgresStore;
use common::{secret_state, TestSchema, REGION};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

/// How long a notice may take: it is on the same machine, so this bound is generous.
const WITHIN: Duration = Duration::from_secs(1);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The next revision of `state`: its metadata with the revision bumped, nothing else changed.
fn update(state: &SecretState, expected_revision: u64) -> SecretWrite {
    let mut next = state.secret.clone();
    next.revision = expected_revision + 1;
    SecretWrite::Update {
        expected_revision,
        secret: next,
        new_versions: vec![],
        stage_updates: vec![],
        deleted_versions: vec![],
    }
}

fn parameter(name: &str) -> ParameterState {
    ParameterState {
        region: REGION.into(),
        name: name.into(),
        parent_path: "/".into(),
        tags: vec![],
        revision: 1,
        versions: vec![ParameterVersionRecord {
            version: 1,
            parameter_type: "String".into(),
            envelope: vec![9; 40],
            description: None,
            key_id: None,
            allowed_pattern: None,
            tier: "Standard".into(),
            data_type: "text".into(),
            policies: None,
            labels: vec![],
            last_modified: 1,
            last_modified_user: "arn:aws:iam::000000000000:root".into(),
        }],
    }
}

fn kms_key(key_id: &str) -> KmsKeyState {
    KmsKeyState {
        key: KmsKeyRecord {
            region: REGION.into(),
            key_id: key_id.into(),
            arn: format!("arn:aws:kms:{REGION}:000000000000:key/{key_id}"),
            description: String::new(),
            key_manager: "CUSTOMER".into(),
            key_state: "Enabled".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            origin: "AWS_KMS".into(),
            created: 1,
            deletion_date: None,
            rotation_enabled: false,
            rotation_period_days: 365,
            next_rotation: None,
            tags: vec![],
            policy: None,
            revision: 1,
        },
        materials: vec![KeyMaterialRecord { version: 1, created: 1, sealed: vec![1; 93] }],
    }
}

/// The next notice that `mine` accepts, within `within`; panics (failing the test) otherwise.
async fn next_notice(
    feed: &mut Receiver<ChangeNotice>,
    within: Duration,
    mine: impl Fn(&ChangeNotice) -> bool,
) -> ChangeNotice {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, feed.recv()).await {
            Ok(Ok(notice)) if mine(&notice) => return notice,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("the feed failed: {e:?}"),
            Err(_) => panic!("no notice within {within:?}"),
        }
    }
}

/// Subscribes to `store`'s feed and waits until its listener listens (it announces `Everything`
/// then): only changes committed after that are certain to be heard.
async fn listening_feed(store: &PostgresStore) -> Receiver<ChangeNotice> {
    let mut feed = store.change_feed().expect("PostgreSQL has a change feed");
    next_notice(&mut feed, Duration::from_secs(10), |n| *n == ChangeNotice::Everything).await;
    feed
}

fn names_secret(arn: &str) -> impl Fn(&ChangeNotice) -> bool + '_ {
    move |n| matches!(n, ChangeNotice::Secret { arn: a } if a == arn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_is_heard_on_another_naming_its_record() {
    let schema = TestSchema::create().await;
    let (a, b) = (schema.open().await, schema.open().await);
    let mut feed = listening_feed(&b).await;

    let s = secret_state(&unique("feed/secret"));
    a.write_secret(SecretWrite::Create(s.clone()), None).await.unwrap();
    let heard = next_notice(&mut feed, WITHIN, names_secret(&s.secret.arn)).await;
    assert_eq!(heard, ChangeNotice::Secret { arn: s.secret.arn.clone() });

    a.write_secret(update(&s, 1), None).await.unwrap();
    next_notice(&mut feed, WITHIN, names_secret(&s.secret.arn)).await;
    a.write_secret(SecretWrite::Delete { arn: s.secret.arn.clone(), expected_revision: 2 }, None).await.unwrap();
    next_notice(&mut feed, WITHIN, names_secret(&s.secret.arn)).await;

    let p = parameter(&unique("/feed/parameter"));
    a.write_parameter(ParameterWrite::Create(p.clone()), None).await.unwrap();
    let expected = ChangeNotice::Parameter { region: REGION.into(), name: p.name.clone() };
    assert_eq!(next_notice(&mut feed, WITHIN, |n| *n == expected).await, expected);

    let key_id = uuid::Uuid::new_v4().to_string();
    a.write_kms_key(KmsKeyWrite::Create(kms_key(&key_id)), None).await.unwrap();
    let expected = ChangeNotice::KmsKey { region: REGION.into(), key_id };
    assert_eq!(next_notice(&mut feed, WITHIN, |n| *n == expected).await, expected);

    // A node hears its own changes too (one extra invalidation for it).
    let mut own = listening_feed(&a).await;
    let s2 = secret_state(&unique("feed/own"));
    a.write_secret(SecretWrite::Create(s2.clone()), None).await.unwrap();
    next_notice(&mut own, WITHIN, names_secret(&s2.secret.arn)).await;
}

/// A write that fails (a lost compare-and-swap, a duplicate name) rolls back and announces nothing:
/// notifications arrive in commit order, so the next notice naming the secret after the failures is
/// the one of the successful write that followed them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_writes_announce_nothing() {
    let schema = TestSchema::create().await;
    let (a, b) = (schema.open().await, schema.open().await);
    let mut feed = listening_feed(&b).await;
    let s = secret_state(&unique("feed/failing"));
    let arn = s.secret.arn.clone();
    a.write_secret(SecretWrite::Create(s.clone()), None).await.unwrap();
    next_notice(&mut feed, WITHIN, names_secret(&arn)).await;

    assert_eq!(a.write_secret(update(&s, 5), None).await.unwrap_err(), StoreError::Conflict);
    assert_eq!(a.write_secret(SecretWrite::Create(s.clone()), None).await.unwrap_err(), StoreError::AlreadyExists);
    let gone = SecretWrite::Delete { arn: format!("{arn}-gone"), expected_revision: 1 };
    assert_eq!(a.write_secret(gone, None).await.unwrap_err(), StoreError::NotFound);

    // The successful write after them: its revision shows it is the update, not a failed attempt.
    a.write_secret(update(&s, 1), None).await.unwrap();
    next_notice(&mut feed, WITHIN, names_secret(&arn)).await;
    assert_eq!(b.load_secret_by_arn(&arn).await.unwrap().unwrap().secret.revision, 2);
    let gone_arn = format!("{arn}-gone");
    let mut extra = Vec::new();
    while let Ok(Ok(notice)) = tokio::time::timeout(Duration::from_millis(300), feed.recv()).await {
        if names_secret(&arn)(&notice) || names_secret(&gone_arn)(&notice) {
            extra.push(notice);
        }
    }
    assert!(extra.is_empty(), "failed writes were announced: {extra:?}");
}

/// Two nodes racing compare-and-swaps on one secret: each committed write is announced once, and
/// none is lost (the count of notices is the count of winners).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_committed_write_is_announced() {
    const TASKS_PER_NODE: usize = 3;
    const WRITES_PER_TASK: usize = 4;
    let schema = TestSchema::create().await;
    let nodes = [Arc::new(schema.open().await), Arc::new(schema.open().await)];
    let mut feed = listening_feed(&nodes[1]).await;
    let s = secret_state(&unique("feed/raced"));
    let arn = s.secret.arn.clone();
    nodes[0].write_secret(SecretWrite::Create(s), None).await.unwrap();

    let mut tasks = Vec::new();
    for node in &nodes {
        for _ in 0..TASKS_PER_NODE {
            let (node, arn) = (node.clone(), arn.clone());
            tasks.push(tokio::spawn(async move {
                let mut won = 0;
                while won < WRITES_PER_TASK {
                    let current = node.load_secret_by_arn(&arn).await.unwrap().expect("the secret exists");
                    match node.write_secret(update(&current, current.secret.revision), None).await {
                        Ok(()) => won += 1,
                        Err(StoreError::Conflict) => {}
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let committed = 1 + 2 * TASKS_PER_NODE * WRITES_PER_TASK;
    let mut heard = 0;
    while heard < committed {
        next_notice(&mut feed, Duration::from_secs(2), names_secret(&arn)).await;
        heard += 1;
    }
    // And no more than that.
    while let Ok(Ok(notice)) = tokio::time::timeout(Duration::from_millis(300), feed.recv()).await {
        assert!(!names_secret(&arn)(&notice), "more notices than committed writes");
    }
}

/// The listening connection dies (an operator, a failover, a network cut): the listener reconnects,
/// announces `Everything` (whatever was sent meanwhile is lost), and hears changes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listening_connection_is_followed_by_everything() {
    let schema = TestSchema::create().await;
    let a = schema.open().await;
    // B's connections carry a name of their own, so this test cuts only B's listener.
    let app = unique("coffer-feed-test");
    let mut config = schema.config();
    config.application_name(&app);
    let b = PostgresStore::open_with(config, common::pool_options()).await.unwrap();
    let mut feed = listening_feed(&b).await;

    let admin = common::admin().await;
    let cut: i64 = admin
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1 AND query ILIKE 'LISTEN %'",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(cut, 1, "B's listening connection was not found");
    next_notice(&mut feed, Duration::from_secs(5), |n| *n == ChangeNotice::Everything).await;

    let s = secret_state(&unique("feed/after-reconnect"));
    a.write_secret(SecretWrite::Create(s.clone()), None).await.unwrap();
    next_notice(&mut feed, WITHIN, names_secret(&s.secret.arn)).await;
}

/// Dropping the store stops its listener: receivers see the feed close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_ends_with_its_store() {
    let schema = TestSchema::create().await;
    let b = schema.open().await;
    let mut feed = listening_feed(&b).await;
    drop(b);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, feed.recv()).await {
            Ok(Err(RecvError::Closed)) => break,
            // Other schemas' notices may still arrive before the listener notices the stop.
            Ok(_) => {}
            Err(_) => panic!("the feed did not close after its store was dropped"),
        }
    }
}
