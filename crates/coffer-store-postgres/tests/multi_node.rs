//! What only a shared database has: several stores ("nodes", each with its own connection pool) over
//! one schema — racing compare-and-swaps, one audit chain from concurrent appenders, migrations that
//! run once and refuse a newer schema — and the failures an operator meets (server down, no schema).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use coffer_audit::chain::record_hash;
use coffer_store::audit::GENESIS;
use coffer_store::{AuditAppend, AuditHead, AuditRecord, LookupAttribute, SecretWrite, Store, StoreError};
use coffer_store_postgres::{PoolOptions, PostgresStore, SCHEMA_VERSION};
use common::{secret_state, version, TestSchema};

fn event(id: &str, lookup: &[(LookupAttribute, &str)]) -> AuditAppend {
    AuditAppend {
        event_id: id.into(),
        time_ms: 1_700_000_000_000,
        body: format!(r#"{{"eventID":"{id}"}}"#).into_bytes(),
        lookup: lookup.iter().map(|(a, v)| (*a, v.to_string())).collect(),
    }
}

/// The kept records form one chain ending at `head`: seqs 1, 2, 3, … without gaps, each record's
/// `prev_hash` the recomputed hash of its predecessor (GENESIS before seq 1).
fn assert_one_chain(records: &[AuditRecord], head: AuditHead) {
    let mut prev = GENESIS;
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1, "gap or fork in the chain before seq {}", r.seq);
        assert_eq!(r.prev_hash, prev, "broken link at seq {}", r.seq);
        prev = record_hash(r.seq, &r.prev_hash, r.time_ms, &r.event_id, &r.body);
    }
    assert_eq!(head, AuditHead { seq: records.len() as u64, hash: prev }, "the head is not the newest record");
}

/// Two nodes race compare-and-swap updates of one secret, each update carrying its audit event:
/// exactly one writer wins each revision, no winning write is lost, and the chain records the winners'
/// events in revision order, without gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_racing_compare_and_swap_lose_nothing() {
    const TASKS_PER_NODE: usize = 6;
    const WRITES_PER_TASK: usize = 4;
    let schema = TestSchema::create().await;
    let nodes = [Arc::new(schema.open().await), Arc::new(schema.open().await)];
    let st = secret_state("contended");
    let arn = st.secret.arn.clone();
    nodes[0].write_secret(SecretWrite::Create(st), Some(event("rev-1", &[]))).await.unwrap();

    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..TASKS_PER_NODE {
            let (node, arn) = (node.clone(), arn.clone());
            tasks.push(tokio::spawn(async move {
                // (revision this task's write replaced, version id it added), per success.
                let mut won = Vec::new();
                let mut conflicts = 0;
                while won.len() < WRITES_PER_TASK {
                    let current = node.load_secret_by_arn(&arn).await.unwrap().expect("the secret exists");
                    let rev = current.secret.revision;
                    let id = format!("node{n}-task{t}-write{}", won.len());
                    let mut next = current.secret.clone();
                    next.revision = rev + 1;
                    let write = SecretWrite::Update {
                        expected_revision: rev,
                        secret: next,
                        new_versions: vec![version(&id, rev as i64 + 1)],
                        stage_updates: current
                            .versions
                            .iter()
                            .filter(|v| v.stages.iter().any(|s| s == "AWSCURRENT"))
                            .map(|v| (v.version_id.clone(), vec![]))
                            .collect(),
                        deleted_versions: vec![],
                    };
                    match node.write_secret(write, Some(event(&format!("rev-{}", rev + 1), &[]))).await {
                        Ok(()) => won.push((rev, id)),
                        Err(StoreError::Conflict) => conflicts += 1,
                        Err(e) => panic!("node {n} task {t}: {e:?}"),
                    }
                }
                (won, conflicts)
            }));
        }
    }
    let mut winners: Vec<(u64, String)> = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let (won, lost) = task.await.unwrap();
        winners.extend(won);
        conflicts += lost;
    }
    let total = 2 * TASKS_PER_NODE * WRITES_PER_TASK;
    assert!(conflicts > 0, "the racers never collided: the test proves nothing");

    // Exactly one winner per revision: the replaced revisions are 1..=total, each once.
    let replaced: Vec<u64> = winners.iter().map(|(rev, _)| *rev).collect();
    assert_eq!(replaced.iter().copied().collect::<BTreeSet<_>>().len(), total, "a revision had two winners");
    assert_eq!(replaced.iter().copied().collect::<BTreeSet<_>>(), (1..=total as u64).collect());

    // Nothing lost, as seen from either node: every winner's version, one version per revision, and
    // AWSCURRENT on the newest only.
    for node in &nodes {
        let got = node.load_secret_by_arn(&arn).await.unwrap().unwrap();
        assert_eq!(got.secret.revision, 1 + total as u64);
        assert_eq!(got.versions.len(), 1 + total);
        assert_eq!(
            got.versions.iter().map(|v| v.created).collect::<Vec<_>>(),
            (1..=1 + total as i64).collect::<Vec<_>>()
        );
        for (rev, id) in &winners {
            let v = got.versions.iter().find(|v| &v.version_id == id).unwrap_or_else(|| panic!("{id} lost"));
            assert_eq!(v.created, *rev as i64 + 1);
            assert_eq!(v.envelope, id.as_bytes());
        }
        let current: Vec<i64> =
            got.versions.iter().filter(|v| v.stages.iter().any(|s| s == "AWSCURRENT")).map(|v| v.created).collect();
        assert_eq!(current, [1 + total as i64]);
    }

    // The winners' events, and only theirs, in the order the revisions were made.
    let records = nodes[1].audit_records_from(0, usize::MAX).await.unwrap();
    assert_one_chain(&records, nodes[0].audit_head().await.unwrap());
    let ids: Vec<&str> = records.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, (1..=1 + total).map(|r| format!("rev-{r}")).collect::<Vec<_>>());
}

/// Two nodes appending batches at once, several callers each: one chain without gaps or forks, every
/// event exactly once, each call's events adjacent, and the lookup index complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_appending_audit_events_form_one_chain() {
    const CALLERS_PER_NODE: usize = 4;
    const CALLS: usize = 25;
    let schema = TestSchema::create().await;
    let nodes = [Arc::new(schema.open().await), Arc::new(schema.open().await)];
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for c in 0..CALLERS_PER_NODE {
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
                let caller = format!("n{n}c{c}");
                for call in 0..CALLS {
                    let batch: Vec<AuditAppend> = ["a", "b", "c"]
                        .iter()
                        .map(|part| {
                            event(&format!("{caller}-{call:02}-{part}"), &[(LookupAttribute::Username, &caller)])
                        })
                        .collect();
                    let head = node.append_audit(Arc::new(batch)).await.unwrap();
                    assert!(head.seq >= 3);
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = 2 * CALLERS_PER_NODE * CALLS * 3;
    let records = nodes[0].audit_records_from(1, usize::MAX).await.unwrap();
    assert_eq!(records.len(), total);
    assert_one_chain(&records, nodes[1].audit_head().await.unwrap());
    let ids: Vec<&str> = records.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), total, "an event was chained twice");
    for (i, id) in ids.iter().enumerate() {
        if let Some(call) = id.strip_suffix("-a") {
            assert_eq!(ids[i + 1..i + 3], [format!("{call}-b"), format!("{call}-c")], "a call's events were split");
        }
    }
    for n in 0..2 {
        for c in 0..CALLERS_PER_NODE {
            let caller = format!("n{n}c{c}");
            let mine: Vec<&str> = ids.iter().copied().filter(|id| id.starts_with(&format!("{caller}-"))).collect();
            let expected: Vec<String> =
                (0..CALLS).flat_map(|call| ["a", "b", "c"].map(|part| format!("{caller}-{call:02}-{part}"))).collect();
            assert_eq!(mine, expected, "{caller}'s events out of order");
            let query = coffer_store::AuditQuery {
                lookup: Some((LookupAttribute::Username, coffer_store::ValueMatch::Exact(caller.clone()))),
                start_ms: None,
                end_ms: None,
                before_seq: None,
                limit: 1000,
            };
            assert_eq!(nodes[1 - n].query_audit(query).await.unwrap().len(), CALLS * 3);
        }
    }
}

/// One node's concurrent writes share transactions (group commit): writes that fail inside a batch —
/// a taken name, a stale revision — answer their own error and leave nothing behind, while the others
/// in the same transactions apply with their events, chained once each in one chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_nodes_concurrent_writes_share_transactions_and_failures_stay_their_own() {
    const CREATES: usize = 48;
    let schema = TestSchema::create().await;
    let node = Arc::new(schema.open().await);
    let taken = secret_state("taken");
    let taken_arn = taken.secret.arn.clone();
    node.write_secret(SecretWrite::Create(taken.clone()), Some(event("setup", &[]))).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..CREATES {
        let creator = node.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("create-{i:02}");
            creator
                .write_secret(SecretWrite::Create(secret_state(&format!("batched-{i:02}"))), Some(event(&id, &[])))
                .await
        }));
        if i % 4 == 0 {
            // A duplicate of an existing secret, and an update naming a revision long gone.
            let (duplicator, taken) = (node.clone(), taken.clone());
            tasks.push(tokio::spawn(async move {
                duplicator.write_secret(SecretWrite::Create(taken), Some(event(&format!("dup-{i:02}"), &[]))).await
            }));
            let (updater, mut secret) = (node.clone(), secret_state("taken").secret);
            tasks.push(tokio::spawn(async move {
                secret.revision = 43;
                let stale = SecretWrite::Update {
                    expected_revision: 42,
                    secret,
                    new_versions: vec![],
                    stage_updates: vec![],
                    deleted_versions: vec![],
                };
                updater.write_secret(stale, Some(event(&format!("stale-{i:02}"), &[]))).await
            }));
        }
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), CREATES);
    assert_eq!(answers.iter().filter(|a| **a == Err(StoreError::AlreadyExists)).count(), CREATES / 4);
    assert_eq!(answers.iter().filter(|a| **a == Err(StoreError::Conflict)).count(), CREATES / 4);

    for i in 0..CREATES {
        let got = node.load_secret_by_name(common::REGION, &format!("batched-{i:02}")).await.unwrap();
        assert_eq!(got.expect("a created secret is there").versions.len(), 1);
    }
    let untouched = node.load_secret_by_arn(&taken_arn).await.unwrap().unwrap();
    assert_eq!(untouched.secret.revision, 1, "a failed write changed the secret");

    // Exactly the applied writes' events, each once, in one chain.
    let records = node.audit_records_from(0, usize::MAX).await.unwrap();
    assert_one_chain(&records, node.audit_head().await.unwrap());
    let ids: BTreeSet<&str> = records.iter().map(|r| r.event_id.as_str()).collect();
    let expected: BTreeSet<String> =
        std::iter::once("setup".to_string()).chain((0..CREATES).map(|i| format!("create-{i:02}"))).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<BTreeSet<_>>());
    assert_eq!(records.len(), 1 + CREATES);

    // A batch chains its writes' events with one INSERT, so its records share a transaction id (xmin):
    // fewer ids than writes means the writes were batched. (The secrets' rows would not tell: each
    // write applies in a savepoint, which has an id of its own.)
    let transactions: i64 = common::admin()
        .await
        .query_one(&format!("SELECT COUNT(DISTINCT xmin::text)::BIGINT FROM {}.audit_events", schema.name), &[])
        .await
        .unwrap()
        .get(0);
    assert!(transactions < CREATES as i64, "{transactions} transactions for {CREATES} concurrent creates");
}

/// A schema written by a newer Coffer is refused, and left exactly as it was.
#[tokio::test]
async fn a_newer_schema_is_refused_untouched() {
    let schema = TestSchema::create().await;
    drop(schema.open().await);
    let admin = common::admin().await;
    let newer = SCHEMA_VERSION + 1;
    admin
        .execute(
            &format!("INSERT INTO {}.schema_version (version, name) VALUES ($1, 'from the future')", schema.name),
            &[&newer],
        )
        .await
        .unwrap();
    let err = PostgresStore::open_with(schema.config(), common::pool_options()).await.err().expect("refused");
    assert_eq!(err, StoreError::SchemaTooNew { found: newer, supported: SCHEMA_VERSION });
    assert!(err.to_string().contains("newer than this coffer understands"), "{err}");
    let versions: Vec<i64> = admin
        .query(&format!("SELECT version FROM {}.schema_version ORDER BY version", schema.name), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=newer).collect::<Vec<_>>());
}

/// Opening an up-to-date schema again changes nothing and keeps the data; nodes starting together on
/// a new schema migrate it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opening_is_idempotent_and_concurrent_opens_migrate_once() {
    let schema = TestSchema::create().await;
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let config = schema.config();
            tokio::spawn(async move { PostgresStore::open_with(config, common::pool_options()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().expect("every concurrent open succeeds"));
    }
    let st = secret_state("kept");
    stores[0].write_secret(SecretWrite::Create(st.clone()), None).await.unwrap();
    drop(stores);

    let again = schema.open().await;
    assert_eq!(again.load_secret_by_arn(&st.secret.arn).await.unwrap(), Some(st));
    let admin = common::admin().await;
    let versions: Vec<i64> = admin
        .query(&format!("SELECT version FROM {}.schema_version ORDER BY version", schema.name), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>(), "each migration recorded once");
}

/// The standard URL form selects the schema through `options=-csearch_path=...`: the tables land there.
#[tokio::test]
async fn a_url_with_a_search_path_keeps_the_tables_in_that_schema() {
    let schema = TestSchema::create().await;
    let store = PostgresStore::open(&schema.url()).await.expect("open by URL");
    assert_eq!(store.backend_name(), "postgres");
    store.put_setting_if_absent("k", b"v").await.unwrap();
    let admin = common::admin().await;
    let row =
        admin.query_one(&format!("SELECT value FROM {}.settings WHERE key = 'k'", schema.name), &[]).await.unwrap();
    assert_eq!(row.get::<_, Vec<u8>>(0), b"v");
}

/// A server that cannot be reached is a clear `Unavailable` naming it, without the password, and
/// never a panic.
#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Port 1 on the loopback: nothing listens there.
    let config = coffer_store_postgres::parse_url("postgres://coffer:hunter2@127.0.0.1:1/coffer").unwrap();
    let options = PoolOptions { connect_timeout: std::time::Duration::from_secs(2), ..common::pool_options() };
    let err = PostgresStore::open_with(config, options).await.err().expect("no server there");
    let StoreError::Unavailable(message) = &err else { panic!("expected Unavailable, got {err:?}") };
    assert!(message.contains("127.0.0.1:1/coffer"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(PostgresStore::open("postgres://coffer:hunter2@127.0.0.1:1/coffer?no_such_option=1")
        .await
        .is_err_and(|e| matches!(&e, StoreError::Unavailable(m) if !m.contains("hunter2"))));
}

/// A search_path that names no existing schema is refused with a message that says what to fix.
#[tokio::test]
async fn a_search_path_without_an_existing_schema_is_refused() {
    let mut config = coffer_store_postgres::parse_url(&common::base_url()).unwrap();
    config.options("-csearch_path=coffer_test_no_such_schema");
    let err = PostgresStore::open_with(config, common::pool_options()).await.err().expect("refused");
    assert!(matches!(&err, StoreError::Unavailable(m) if m.contains("search_path")), "{err:?}");
}

/// A value PostgreSQL cannot store (a NUL character in text) fails the write as `InvalidWrite` and
/// changes nothing; the audit chain does not move either.
#[tokio::test]
async fn a_value_postgres_cannot_store_is_an_invalid_write() {
    let schema = TestSchema::create().await;
    let store = schema.open().await;
    let mut st = secret_state("nul");
    st.secret.description = Some("before\0after".into());
    let err = store.write_secret(SecretWrite::Create(st.clone()), Some(event("nul", &[]))).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidWrite(_)), "{err:?}");
    assert!(store.load_secret_by_arn(&st.secret.arn).await.unwrap().is_none());
    assert_eq!(store.audit_head().await.unwrap().seq, 0);
}

/// Connections the server drops (a restart, an operator terminating them) are replaced: once the pool
/// has noticed, requests go through again without the store being reopened.
#[tokio::test]
async fn connections_the_server_dropped_are_replaced() {
    let schema = TestSchema::create().await;
    let application = format!("coffer-test-{}", uuid::Uuid::new_v4().simple());
    let mut config = schema.config();
    config.application_name(&application);
    let store = PostgresStore::open_with(config, common::pool_options()).await.unwrap();
    store.put_setting_if_absent("k", b"v").await.unwrap();

    let admin = common::admin().await;
    let terminated: Vec<bool> = admin
        .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", &[&application])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!terminated.is_empty() && terminated.iter().all(|t| *t), "{terminated:?}");
    // The idle connection's task sees the server close it; give it a moment to.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(store.get_setting("k").await.unwrap(), Some(b"v".to_vec()));
    assert!(store.put_setting_if_absent("k2", b"v2").await.unwrap());
}
