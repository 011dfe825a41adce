//! Tests of what only the SQLite audit log has (the shared behaviour is in the conformance suite): the
//! read-only opener, the head surviving a reopen, two writers on one file, failures inside and of a
//! group commit, damaged rows, and the query plans that keep lookups fast on a large log.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use coffer_store::{LookupAttribute, ValueMatch};

use super::*;

fn event(id: &str, time_ms: EpochMillis, user: &str) -> AuditAppend {
    AuditAppend {
        event_id: id.into(),
        time_ms,
        body: format!(r#"{{"eventID":"{id}"}}"#).into_bytes(),
        lookup: vec![(LookupAttribute::Username, user.into()), (LookupAttribute::ResourceName, format!("res/{id}"))],
    }
}

fn events(prefix: &str, n: usize) -> Vec<AuditAppend> {
    (0..n).map(|i| event(&format!("{prefix}-{i}"), i as EpochMillis, if i % 2 == 0 { "even" } else { "odd" })).collect()
}

fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

fn by_user(user: &str, limit: usize) -> AuditQuery {
    AuditQuery {
        lookup: Some((LookupAttribute::Username, ValueMatch::Exact(user.into()))),
        start_ms: None,
        end_ms: None,
        before_seq: None,
        limit,
    }
}

/// Checks links and the head, as the conformance suite does.
fn assert_chain(records: &[AuditRecord], head: AuditHead) {
    for pair in records.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        let h = coffer_audit::chain::record_hash(
            pair[0].seq,
            &pair[0].prev_hash,
            pair[0].time_ms,
            &pair[0].event_id,
            &pair[0].body,
        );
        assert_eq!(pair[1].prev_hash, h, "broken link at {}", pair[1].seq);
    }
    if let Some(last) = records.last() {
        let h = coffer_audit::chain::record_hash(last.seq, &last.prev_hash, last.time_ms, &last.event_id, &last.body);
        assert_eq!(head, AuditHead { seq: last.seq, hash: h });
    }
}

/// Every file in `dir`: its name, length and a fingerprint of its bytes.
fn snapshot(dir: &Path) -> Vec<(String, usize, u64)> {
    use std::hash::{Hash, Hasher};
    let mut files: Vec<(String, usize, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            (e.file_name().to_string_lossy().into_owned(), bytes.len(), h.finish())
        })
        .collect();
    files.sort();
    files
}

/// The database file and its WAL (if any), with their bytes: the data a reader must not change. (The
/// `-shm` file is SQLite's shared-memory index of the WAL, which readers update by design.)
fn data_files(dir: &Path) -> Vec<(String, usize, u64)> {
    snapshot(dir).into_iter().filter(|(n, ..)| !n.ends_with("-shm")).collect()
}

/// A store written, closed and reopened read-only reads the same records, digests and head, refuses
/// writes, and leaves the directory byte for byte as it was: no file changes, none appears.
#[tokio::test(flavor = "multi_thread")]
async fn the_read_only_opener_reads_what_the_writer_wrote_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    let (head, records, digests) = {
        let store = SqliteStore::open(&path).await.unwrap();
        store.write_secret(SecretWrite::Create(secret("kept")), Some(event("w", 1, "even"))).await.unwrap();
        store.append_audit(Arc::new(events("a", 300))).await.unwrap();
        store.append_audit_digest(0, digest(10)).await.unwrap();
        store.append_audit_digest(1, digest(301)).await.unwrap();
        let records = store.audit_records_from(0, usize::MAX).await.unwrap();
        (store.audit_head().await.unwrap(), records, store.audit_digests(0, 10).await.unwrap())
    };
    // Closed by a last read-write connection: the WAL folded in and removed, one plain file left.
    raw(&path).query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    let before = snapshot(dir.path());
    assert_eq!(before.iter().map(|(n, ..)| n.as_str()).collect::<Vec<_>>(), ["coffer.db"]);

    let ro = SqliteStore::open_read_only(&path).await.unwrap();
    assert_eq!(ro.audit_head().await.unwrap(), head);
    assert_eq!(ro.audit_oldest_seq().await.unwrap(), Some(1));
    let mut got = Vec::new();
    let mut from = 0;
    loop {
        let page = ro.audit_records_from(from, 64).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        got.extend(page);
    }
    assert_eq!(got, records);
    assert_chain(&got, head);
    assert_eq!(ro.audit_digests(0, 10).await.unwrap(), digests);
    assert_eq!(ro.latest_audit_digest().await.unwrap(), digests.last().cloned());
    assert_eq!(ro.query_audit(by_user("odd", 1000)).await.unwrap().len(), 150);
    assert_eq!(ro.audit_seq_at(5).await.unwrap(), Some(7));
    assert!(ro.load_secret_by_name("us-east-1", "kept").await.unwrap().is_some());
    assert_eq!(ro.append_audit(Arc::new(vec![])).await.unwrap(), head);

    let refused = |e: StoreError| assert!(matches!(&e, StoreError::Unavailable(m) if m.contains("read-only")), "{e:?}");
    refused(ro.append_audit(Arc::new(events("late", 1))).await.unwrap_err());
    refused(ro.write_secret(SecretWrite::Create(secret("late")), None).await.unwrap_err());
    refused(ro.append_audit_digest(2, digest(400)).await.unwrap_err());
    refused(ro.prune_audit(u64::MAX, u64::MAX, 10).await.unwrap_err());
    refused(ro.put_setting_if_absent("k", b"v").await.unwrap_err());
    drop(ro);
    assert_eq!(snapshot(dir.path()), before, "the read-only opener wrote to the directory");
}

/// A copy taken while the writer runs (the database file and its WAL, no shared-memory file) is read
/// whole, the WAL's records included; neither copied file changes.
#[tokio::test(flavor = "multi_thread")]
async fn the_read_only_opener_reads_a_copy_with_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.append_audit(Arc::new(events("a", 50))).await.unwrap();
    let head = store.append_audit(Arc::new(events("b", 50))).await.unwrap();
    let copy = tempfile::tempdir().unwrap();
    let wal = dir.path().join("coffer.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the test needs records in the WAL");
    std::fs::copy(&path, copy.path().join("coffer.db")).unwrap();
    std::fs::copy(&wal, copy.path().join("coffer.db-wal")).unwrap();
    let before = data_files(copy.path());

    let ro = SqliteStore::open_read_only(&copy.path().join("coffer.db")).await.unwrap();
    assert_eq!(ro.audit_head().await.unwrap(), head);
    let records = ro.audit_records_from(0, usize::MAX).await.unwrap();
    assert_eq!(records.len(), 100);
    assert_chain(&records, head);
    drop(ro);
    assert_eq!(data_files(copy.path()), before);
}

/// Paths with characters that mean something in a URI (the immutable open goes through one).
#[tokio::test(flavor = "multi_thread")]
async fn the_read_only_opener_takes_any_path() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("we?ird #dir%20ü");
    std::fs::create_dir(&odd).unwrap();
    let path = odd.join("c offer?.db");
    let head = {
        let store = SqliteStore::open(&path).await.unwrap();
        store.append_audit(Arc::new(events("a", 5))).await.unwrap()
    };
    raw(&path).query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    let before = snapshot(&odd);
    assert_eq!(before.len(), 1);
    let ro = SqliteStore::open_read_only(&path).await.unwrap();
    assert_eq!(ro.audit_head().await.unwrap(), head);
    assert_eq!(ro.audit_records_from(0, 10).await.unwrap().len(), 5);
    drop(ro);
    assert_eq!(snapshot(&odd), before);
}

/// The read-only opener refuses, without changing anything, a missing file, a file from before the
/// audit log (with a message saying so), and a newer schema.
#[tokio::test(flavor = "multi_thread")]
async fn the_read_only_opener_refuses_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = SqliteStore::open_read_only(&dir.path().join("nope.db")).await.err().unwrap();
    assert!(matches!(&missing, StoreError::Unavailable(m) if m.contains("no database file")), "{missing:?}");
    assert!(!dir.path().join("nope.db").exists());

    let old = dir.path().join("old.db");
    {
        let conn = raw(&old);
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)").unwrap();
        for m in schema::MIGRATIONS.iter().filter(|m| m.version < AUDIT_SCHEMA_VERSION) {
            conn.execute_batch(m.sql).unwrap();
            conn.execute("INSERT INTO schema_version (version) VALUES (?1)", [m.version]).unwrap();
        }
    }
    let before = std::fs::read(&old).unwrap();
    let err = SqliteStore::open_read_only(&old).await.err().unwrap();
    assert!(matches!(&err, StoreError::Unavailable(m) if m.contains("predates the audit log")), "{err:?}");
    assert_eq!(std::fs::read(&old).unwrap(), before);

    raw(&old).execute("INSERT INTO schema_version (version) VALUES (?1)", [SCHEMA_VERSION + 1]).unwrap();
    let err = SqliteStore::open_read_only(&old).await.err().unwrap();
    assert_eq!(err, StoreError::SchemaTooNew { found: SCHEMA_VERSION + 1, supported: SCHEMA_VERSION });
}

/// The head lives in its own row: it survives a reopen, and pruning every record and reopening, and
/// the chain carries on from it.
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_head_survives_reopening_and_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    let head = {
        let store = SqliteStore::open(&path).await.unwrap();
        store.append_audit(Arc::new(events("a", 10))).await.unwrap()
    };
    fold_now(&path);
    let folded: i64 = raw(&path).query_row("SELECT COUNT(*) FROM audit_lookup", [], |r| r.get(0)).unwrap();
    assert_eq!(folded, 10 + 10 + 2, "each event's id and resource, and a row per user (even, odd)");
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.audit_head().await.unwrap(), head);
    assert_eq!(store.prune_audit(u64::MAX, 0, 1000).await.unwrap(), 10);
    drop(store);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.audit_head().await.unwrap(), head);
    assert_eq!(store.audit_oldest_seq().await.unwrap(), None);
    let next = store.append_audit(Arc::new(events("b", 1))).await.unwrap();
    let records = store.audit_records_from(0, 10).await.unwrap();
    assert_eq!((records.len(), records[0].seq, records[0].prev_hash), (1, 11, head.hash));
    assert_chain(&records, next);
    let lookups: i64 = raw(&path).query_row("SELECT COUNT(*) FROM audit_lookup", [], |r| r.get(0)).unwrap();
    assert_eq!(lookups, 0, "pruned records' lookup rows must go (the new event is still in the unfolded tail)");
    fold_now(&path);
    let lookups: i64 = raw(&path).query_row("SELECT COUNT(*) FROM audit_lookup", [], |r| r.get(0)).unwrap();
    assert_eq!(lookups, 3, "only the new event's id, user and resource");
}

/// Folds the audit index's tail now, as the writer does every `FOLD_AT` records.
fn fold_now(path: &std::path::Path) {
    let conn = raw(path);
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    crate::audit::fold(&conn).unwrap();
    conn.execute_batch("COMMIT").unwrap();
}

/// Lookups answer the same before and after the tail is folded into the index, and across the seam.
#[tokio::test(flavor = "multi_thread")]
async fn lookups_agree_before_and_after_folding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.append_audit(Arc::new(events("a", 12))).await.unwrap();
    let queries = || {
        let mut qs = Vec::new();
        for lookup in [
            Some((LookupAttribute::Username, ValueMatch::Exact("even".into()))),
            Some((LookupAttribute::ResourceName, ValueMatch::Prefix("res".into()))),
            Some((LookupAttribute::EventId, ValueMatch::Exact("a-3".into()))),
            None,
        ] {
            for before_seq in [None, Some(9), Some(20)] {
                for limit in [1, 5, 50] {
                    qs.push(AuditQuery { lookup: lookup.clone(), start_ms: None, end_ms: None, before_seq, limit });
                }
            }
        }
        qs
    };
    let mut before = Vec::new();
    for q in queries() {
        before.push(store.query_audit(q).await.unwrap());
    }
    fold_now(&path);
    // And a second batch that stays in the tail: the answers now cross the seam.
    store.append_audit(Arc::new(events("b", 4))).await.unwrap();
    for (q, expected) in queries().into_iter().zip(before) {
        let got = store.query_audit(q.clone()).await.unwrap();
        let got_seqs: Vec<u64> = got.iter().map(|r| r.seq).filter(|s| *s <= 12).collect();
        let expected_seqs: Vec<u64> = expected.iter().map(|r| r.seq).collect();
        let tail_hits = got.iter().filter(|r| r.seq > 12).count();
        assert_eq!(&got_seqs[..], &expected_seqs[..expected_seqs.len().min(q.limit - tail_hits)], "{q:?}");
        assert!(got.windows(2).all(|w| w[0].seq > w[1].seq), "newest first: {q:?}");
    }
}

const STEM_A: &str = "0f1e2d3c-4b5a-4978-8000-";
const STEM_B: &str = "9a8b7c6d-5e4f-4a3b-8000-";

/// Event `i`'s id, in the service's shape: two processes' stems taking turns, counters with gaps.
fn event_id(i: usize) -> String {
    let stem = if (i / 250).is_multiple_of(2) { STEM_A } else { STEM_B };
    format!("{stem}{:012x}", i + i / 97)
}

/// Lookups over many folds (each value's seqs spread over several index rows), with cursors, time
/// bounds, prefixes broad and sparse (past the walk's budget), and after a prune that cuts index rows in
/// two, answer exactly what a scan of every event would.
#[tokio::test(flavor = "multi_thread")]
async fn folded_lookups_match_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let users = ["alice", "bob", "carol"];
    // (seq, time, lookup entries) of every event, as the model.
    type Modelled = (u64, EpochMillis, Vec<(LookupAttribute, String)>);
    let mut model: Vec<Modelled> = Vec::new();
    let total = 6_000usize;
    let folds_after = [1_000usize, 2_000, 3_500, 5_300];
    for start in (0..total).step_by(500) {
        let mut batch: Vec<AuditAppend> = (start..start + 500)
            .map(|i| {
                let mut lookup = vec![(LookupAttribute::Username, users[i % 3].to_string())];
                // A sparse prefix with many values, only among the oldest events (below the walk's budget).
                let resource =
                    if i < 1_500 && i % 37 == 0 { format!("rare/{}", i / 37) } else { format!("res/{:02}", i % 50) };
                lookup.push((LookupAttribute::ResourceName, resource));
                if i % 7 == 0 {
                    lookup.push((LookupAttribute::ResourceName, "res/extra".into()));
                }
                let id = event_id(i);
                AuditAppend {
                    time_ms: 10_000 + i as EpochMillis,
                    body: format!(r#"{{"eventID":"{id}"}}"#).into_bytes(),
                    event_id: id,
                    lookup,
                }
            })
            .collect();
        // Commit order differs a little from the order ids were handed out in.
        for k in (3..500).step_by(10) {
            batch.swap(k, k + 1);
        }
        for (k, e) in batch.iter().enumerate() {
            let mut entries = e.lookup.clone();
            entries.push((LookupAttribute::EventId, e.event_id.clone()));
            model.push(((start + k + 1) as u64, e.time_ms, entries));
        }
        store.append_audit(Arc::new(batch)).await.unwrap();
        if folds_after.contains(&(start + 500)) {
            fold_now(&path);
        }
    }
    let lookups = [
        (LookupAttribute::Username, ValueMatch::Exact("bob".into())),
        (LookupAttribute::ResourceName, ValueMatch::Exact("res/extra".into())),
        (LookupAttribute::ResourceName, ValueMatch::Exact("res/07".into())),
        (LookupAttribute::ResourceName, ValueMatch::Prefix("rare/".into())),
        (LookupAttribute::ResourceName, ValueMatch::Prefix("res/".into())),
        (LookupAttribute::ResourceName, ValueMatch::Prefix("r".into())),
    ];
    let mut lookups = lookups.to_vec();
    for i in [0, 1, 96, 97, 98, 249, 250, 500, 1_234, 3_333, 5_999] {
        lookups.push((LookupAttribute::EventId, ValueMatch::Exact(event_id(i))));
    }
    lookups.push((LookupAttribute::EventId, ValueMatch::Exact(format!("{STEM_A}{:012x}", 97))));
    lookups.push((LookupAttribute::EventId, ValueMatch::Exact("not-an-id".into())));
    lookups.push((LookupAttribute::EventId, ValueMatch::Prefix(STEM_A.into())));
    lookups.push((LookupAttribute::EventId, ValueMatch::Prefix(format!("{STEM_B}0000000001"))));
    lookups.push((LookupAttribute::EventId, ValueMatch::Prefix(STEM_B[..4].into())));
    // The folded ids (5,300 of them) are kept as runs: a row per stem change, gap or swap, not per id.
    let id_rows: i64 = raw(&path)
        .query_row("SELECT COUNT(*) FROM audit_lookup WHERE attr = ?1", [LookupAttribute::EventId.code()], |r| r.get(0))
        .unwrap();
    assert!(id_rows < 700, "{id_rows} rows for 5,300 event ids");
    let lookups = &lookups;
    let check = |oldest: u64| {
        let mut queries = Vec::new();
        for lookup in lookups {
            for before_seq in [None, Some(2_500), Some(5_400)] {
                for (start_ms, end_ms) in [(None, None), (Some(12_000), Some(14_000)), (Some(10_900), None)] {
                    for limit in [1, 7, 100] {
                        queries.push(AuditQuery { lookup: Some(lookup.clone()), start_ms, end_ms, before_seq, limit });
                    }
                }
            }
        }
        let model = &model;
        queries.into_iter().map(move |q| {
            let (attr, wanted) = q.lookup.clone().unwrap();
            let expected: Vec<u64> = model
                .iter()
                .rev()
                .filter(|(seq, time, entries)| {
                    *seq >= oldest
                        && q.before_seq.is_none_or(|b| *seq < b)
                        && q.start_ms.is_none_or(|t| *time >= t)
                        && q.end_ms.is_none_or(|t| *time <= t)
                        && entries.iter().any(|(a, v)| {
                            *a == attr
                                && match &wanted {
                                    ValueMatch::Exact(x) => v == x,
                                    ValueMatch::Prefix(p) => v.starts_with(p.as_str()),
                                }
                        })
                })
                .map(|(seq, _, _)| *seq)
                .take(q.limit)
                .collect();
            (q, expected)
        })
    };
    for (q, expected) in check(1) {
        let got: Vec<u64> = store.query_audit(q.clone()).await.unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(got, expected, "{q:?}");
    }
    // A cut inside every value's fold rows: the rows are cut down, the answers follow.
    let mut pruned = 0;
    while pruned < 2_344 {
        pruned += store.prune_audit(2_345, 0, 700).await.unwrap();
    }
    assert_eq!(pruned, 2_344);
    for (q, expected) in check(2_345) {
        let got: Vec<u64> = store.query_audit(q.clone()).await.unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(got, expected, "after the prune: {q:?}");
    }
    let below: i64 =
        raw(&path).query_row("SELECT COUNT(*) FROM audit_lookup WHERE seq < 2345", [], |r| r.get(0)).unwrap();
    assert_eq!(below, 0, "no index row starts below the cut");
}

/// A log written by schema version 5 (lookup lists in their own table, one index row per entry) keeps
/// its records, chain and lookups across the migration: lists move into the records, the index is
/// folded again.
#[tokio::test(flavor = "multi_thread")]
async fn a_version_5_log_migrates_with_its_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    let head = {
        let conn = raw(&path);
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)").unwrap();
        for m in schema::MIGRATIONS.iter().filter(|m| m.version <= 5) {
            conn.execute_batch(m.sql).unwrap();
            conn.execute("INSERT INTO schema_version (version) VALUES (?1)", [m.version]).unwrap();
        }
        let mut prev = coffer_store::audit::GENESIS;
        for (i, e) in events("v5", 6).iter().enumerate() {
            let seq = i as i64 + 1;
            conn.execute(
                "INSERT INTO audit_events (seq, time_ms, max_time, event_id, prev_hash, body) VALUES (?1, ?2, ?2, ?3, ?4, ?5)",
                rusqlite::params![seq, e.time_ms, e.event_id, prev.as_slice(), e.body],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO audit_lookup_lists (seq, entries) VALUES (?1, ?2)",
                rusqlite::params![seq, crate::audit::encode_lookup(crate::audit::index_entries(e)).unwrap()],
            )
            .unwrap();
            // Version 5 indexed the first four records, one row per entry.
            if seq <= 4 {
                conn.execute(
                    "INSERT INTO audit_lookup (attr, value, seq) VALUES (1, ?1, ?2)",
                    rusqlite::params![e.event_id, seq],
                )
                .unwrap();
            }
            prev = coffer_audit::chain::record_hash(seq as u64, &prev, e.time_ms, &e.event_id, &e.body);
        }
        conn.execute(
            "UPDATE audit_head SET seq = 6, hash = ?1, max_time = 5, indexed_seq = 4 WHERE id = 0",
            [prev.as_slice()],
        )
        .unwrap();
        AuditHead { seq: 6, hash: prev }
    };
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.audit_head().await.unwrap(), head);
    let records = store.audit_records_from(0, 10).await.unwrap();
    assert_eq!(records.len(), 6);
    assert_chain(&records, head);
    let check = || async {
        let odd: Vec<u64> = store.query_audit(by_user("odd", 10)).await.unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(odd, vec![6, 4, 2]);
        let by_id = AuditQuery {
            lookup: Some((LookupAttribute::EventId, ValueMatch::Exact("v5-2".into()))),
            start_ms: None,
            end_ms: None,
            before_seq: None,
            limit: 5,
        };
        let found: Vec<u64> = store.query_audit(by_id).await.unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(found, vec![3]);
    };
    check().await;
    fold_now(&path);
    check().await;
    let next = store.append_audit(Arc::new(events("v6", 1))).await.unwrap();
    assert_eq!(store.audit_records_from(6, 10).await.unwrap()[1].prev_hash, head.hash);
    assert_eq!(next.seq, 7);
}

/// Two stores on one file (two processes, say) append at once: one chain, because each writer
/// re-reads the head whenever the other committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_on_one_file_form_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.db");
    let a = Arc::new(SqliteStore::open(&path).await.unwrap());
    let b = Arc::new(SqliteStore::open(&path).await.unwrap());
    let mut tasks = Vec::new();
    for (name, store) in [("a", a.clone()), ("b", b.clone())] {
        for t in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    store.append_audit(Arc::new(events(&format!("{name}{t}-{i}"), 2))).await.unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let head = a.audit_head().await.unwrap();
    assert_eq!(head, b.audit_head().await.unwrap());
    assert_eq!(head.seq, 400);
    let records = b.audit_records_from(0, usize::MAX).await.unwrap();
    assert_eq!(records.len(), 400);
    assert_chain(&records, head);
}

/// An event that cannot be stored fails its write and undoes the change (the other writes of the group
/// commit still land, numbered without a gap); a group commit that fails as a whole leaves the
/// in-memory head where the database has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_inside_and_of_a_group_commit_keep_the_chain_whole() {
    let (store, dir) = fresh().await;
    let path = dir.path().join("coffer.db");
    let conn = raw(&path);
    conn.execute_batch(
        "CREATE TRIGGER poison BEFORE INSERT ON audit_events WHEN NEW.event_id LIKE 'poison%'
         BEGIN SELECT RAISE(ABORT, 'poisoned event'); END;",
    )
    .unwrap();
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = if i % 4 == 0 { format!("poison-{i}") } else { format!("ok-{i}") };
            store.write_secret(SecretWrite::Create(secret(&id)), Some(event(&id, i, "u"))).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        assert_eq!(r.is_ok(), i % 4 != 0, "{i}: {r:?}");
    }
    assert_eq!(store.list_secrets("us-east-1").await.unwrap().len(), 30, "a failed event must undo its change");
    let records = store.audit_records_from(0, usize::MAX).await.unwrap();
    assert_eq!(records.len(), 30);
    assert!(records.iter().all(|r| r.event_id.starts_with("ok-")));
    assert_chain(&records, store.audit_head().await.unwrap());
    assert_eq!(store.stats().failed_batches, 0);

    // Now every commit fails at the end, when the head row is written.
    conn.execute_batch(
        "DROP TRIGGER poison;
         CREATE TRIGGER stuck BEFORE UPDATE ON audit_head BEGIN SELECT RAISE(ABORT, 'stuck head'); END;",
    )
    .unwrap();
    let head = store.audit_head().await.unwrap();
    assert!(store.append_audit(Arc::new(events("lost", 3))).await.is_err());
    assert!(store.write_secret(SecretWrite::Create(secret("lost")), Some(event("lost", 1, "u"))).await.is_err());
    assert!(store.stats().failed_batches >= 1);
    assert_eq!(store.audit_head().await.unwrap(), head);
    conn.execute_batch("DROP TRIGGER stuck").unwrap();
    let next = store.append_audit(Arc::new(events("after", 2))).await.unwrap();
    assert_eq!(next.seq, head.seq + 2, "the failed batches' seqs were not consumed");
    let records = store.audit_records_from(0, usize::MAX).await.unwrap();
    assert_chain(&records, next);
    assert!(store.load_secret_by_name("us-east-1", "lost").await.unwrap().is_none());
}

/// Damaged audit rows are reported as `Corrupt`, not panics.
#[tokio::test(flavor = "multi_thread")]
async fn damaged_audit_rows_are_corrupt_not_panics() {
    let (store, dir) = fresh().await;
    store.append_audit(Arc::new(events("a", 3))).await.unwrap();
    let conn = raw(&dir.path().join("coffer.db"));
    let corrupt = |e: StoreError| assert!(matches!(e, StoreError::Corrupt(_)), "{e:?}");
    conn.execute("UPDATE audit_events SET prev_hash = X'0102' WHERE seq = 2", []).unwrap();
    corrupt(store.audit_records_from(0, 10).await.unwrap_err());
    conn.execute("UPDATE audit_events SET prev_hash = zeroblob(32) WHERE seq = 2", []).unwrap();
    assert_eq!(store.audit_records_from(0, 10).await.unwrap().len(), 3);
    conn.execute("UPDATE audit_events SET lookup = X'07FFFF' WHERE seq = 2", []).unwrap();
    corrupt(store.prune_audit(3, 0, 10).await.unwrap_err());
    assert_eq!(store.audit_oldest_seq().await.unwrap(), Some(1), "a failed prune deletes nothing");
    conn.execute("UPDATE audit_head SET hash = X'00'", []).unwrap();
    corrupt(store.audit_head().await.unwrap_err());
}

/// A full disk says so in words (the server shows this message in /readyz).
#[test]
fn a_full_disk_is_named() {
    let e = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None);
    let mapped = error::map_sqlite(e);
    assert!(matches!(&mapped, StoreError::Unavailable(m) if m.contains("disk full")), "{mapped:?}");
}

/// The plans that keep the log fast at millions of events: a lookup page is a backwards range of the
/// lookup index, its records fetched by rowid, with no sort; a time bound is one seek of the max_time index; an
/// unfiltered page walks the rowid range.
#[tokio::test(flavor = "multi_thread")]
async fn audit_queries_use_their_indexes() {
    let (_store, dir) = fresh().await;
    let conn = raw(&dir.path().join("coffer.db"));
    let plan = |sql: &str| -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = stmt.parameter_count();
        let args: Vec<i64> = vec![0; n];
        let rows: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        rows.join("\n")
    };
    let exact =
        plan("SELECT seq, seqs FROM audit_lookup WHERE attr = ?1 AND value = ?2 AND seq < ?3 ORDER BY seq DESC");
    assert!(exact.contains("SEARCH audit_lookup USING PRIMARY KEY (attr=? AND value=? AND seq<?)"), "{exact}");
    assert!(!exact.contains("TEMP B-TREE"), "{exact}");
    let record = plan("SELECT seq, event_id, time_ms, prev_hash, body FROM audit_events WHERE seq = ?1");
    assert!(record.contains("SEARCH audit_events USING INTEGER PRIMARY KEY (rowid=?)"), "{record}");
    let bound = plan("SELECT seq FROM audit_events WHERE max_time >= ?1 ORDER BY max_time, seq LIMIT 1");
    assert!(
        bound.contains("SEARCH audit_events USING COVERING INDEX audit_events_by_max_time (max_time>?)"),
        "{bound}"
    );
    assert!(!bound.contains("TEMP B-TREE"), "{bound}");
    let page = plan(
        "SELECT seq, event_id, time_ms, prev_hash, body FROM audit_events NOT INDEXED
         WHERE seq >= ?1 AND seq < ?2 AND time_ms >= ?3 AND time_ms <= ?4 ORDER BY seq DESC LIMIT ?5",
    );
    assert!(page.contains("SEARCH audit_events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "{page}");
    assert!(!page.contains("TEMP B-TREE"), "{page}");
}

fn secret(name: &str) -> SecretState {
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
            rotation: Default::default(),
            revision: 1,
        },
        versions: vec![],
    }
}

fn digest(last_seq: u64) -> AuditDigestAppend {
    AuditDigestAppend { time_ms: 7, last_seq, body: b"{}".to_vec(), signature: vec![1; 64] }
}

async fn fresh() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("coffer.db")).await.unwrap();
    (store, dir)
}
