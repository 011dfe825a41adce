//! The storage conformance suite: every backend runs exactly these cases, so no behaviour differs
//! between the embedded SQLite file, a shared PostgreSQL database and the in-memory test store.
//!
//! Why one suite: the service layer's correctness (staging-label moves, ClientRequestToken idempotency,
//! scheduled deletion) rests on a handful of storage guarantees — exact round trips, per-region unique
//! names, compare-and-swap on `revision`, durable and atomic multi-row writes. Writing them down once as
//! executable cases is what lets a new backend be trusted.
//!
//! # Using it
//!
//! A backend's test module instantiates the whole suite with [`conformance_suite!`](crate::conformance_suite):
//!
//! ```ignore
//! coffer_store::conformance_suite!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = SqliteStore::open(&dir.path().join("coffer.db")).await.unwrap();
//!     (store, dir) // the second element (a "guard") lives as long as the test
//! });
//! ```
//!
//! The factory expression is evaluated once per case and must yield a fresh, empty store. Use `()` as
//! the guard when there is nothing to keep alive. The expansion uses `#[tokio::test]` on a
//! multi-threaded runtime, so the calling crate needs `tokio` (features `macros`, `rt-multi-thread`)
//! among its (dev-)dependencies. Each case is also a plain `pub async fn(&dyn Store)`
//! that can be called directly.
//!
//! # Decisions this suite pins down (beyond the trait docs)
//!
//! * Versions come back oldest first by `created`; versions with equal `created` come back in the order
//!   they were written.
//! * `list_secrets` orders by `created`, ties by ARN (byte order).
//! * Names are compared exactly: case-sensitive, no collation, no wildcard interpretation.
//! * `Update` or `Delete` of an ARN that does not exist answers [`StoreError::NotFound`] (never
//!   `Conflict`), whatever `expected_revision` says.
//! * A `Create` whose ARN already exists answers [`StoreError::AlreadyExists`], like a taken name.
//! * `touch_secret_accessed` on a missing ARN is a successful no-op: a read may race a delete.
//! * A failed write leaves no trace: nothing of a losing `Create` or a stale `Update` is visible.
//!
//! # Concurrency cases
//!
//! The racing cases drive their callers from several OS threads at once (through the current runtime's
//! handle) so backends see truly parallel calls, not just interleaved futures. That needs a
//! multi-threaded Tokio runtime, which the macro sets up; on a current-thread runtime the callers are
//! merely interleaved on the test's own task.

// Test-support code: a failed unwrap here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::*;

/// Expands to one `#[tokio::test]` per conformance case.
///
/// `$factory` is an expression of a future (typically an `async { .. }` block) that yields
/// `(impl Store, guard)`: a fresh, empty store and anything that must stay alive as long as it (a temp
/// dir, a database container handle); use `()` when there is nothing. It is evaluated once per case.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            create_and_load_round_trip,
            versions_with_equal_timestamps_keep_write_order,
            names_are_unique_per_region,
            names_compare_exactly,
            arns_are_unique,
            scheduled_deletion_still_holds_the_name,
            update_applies_atomically_and_bumps_revision,
            stale_revision_conflicts_and_changes_nothing,
            update_must_advance_revision_by_one,
            a_stale_update_does_not_undo_a_recorded_access,
            parameters_round_trip_and_compare_and_swap,
            parameter_listing_by_path,
            delete_removes_secret_and_versions,
            stale_delete_conflicts_and_changes_nothing,
            missing_secret_writes_are_not_found,
            list_is_per_region_and_ordered,
            touch_changes_last_accessed_not_revision,
            due_for_deletion_boundary,
            access_keys_insert_get_and_duplicates,
            settings_put_if_absent,
            settings_replace_is_compare_and_swap,
            kms_keys_round_trip_and_compare_and_swap,
            kms_aliases_and_key_deletion,
            rewrap_replaces_only_the_expected_envelopes,
            large_envelopes_round_trip,
            odd_and_unicode_names_round_trip,
            concurrent_compare_and_swap_loses_nothing,
            concurrent_creates_all_land,
            concurrent_creates_of_one_name_have_one_winner);
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (store, _guard) = $factory.await;
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}

const REGION: &str = "us-east-1";

fn arn(region: &str, name: &str) -> String {
    format!("arn:aws:secretsmanager:{region}:000000000000:secret:{name}-AbC123")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A secret with every optional field empty.
fn secret(region: &str, name: &str, created: EpochMillis) -> SecretRecord {
    SecretRecord {
        arn: arn(region, name),
        region: region.into(),
        name: name.into(),
        description: None,
        kms_key_id: None,
        tags: vec![],
        created,
        last_changed: created,
        last_accessed: None,
        deletion_date: None,
        resource_policy: None,
        rotation: RotationSettings::default(),
        revision: 1,
    }
}

/// A secret with every field set to a distinct, non-default value, so a backend that swaps, drops or
/// truncates a column cannot pass.
fn full_secret(region: &str, name: &str) -> SecretRecord {
    SecretRecord {
        arn: arn(region, name),
        region: region.into(),
        name: name.into(),
        description: Some("database password — production ✓".into()),
        kms_key_id: Some("alias/custom-key".into()),
        tags: vec![
            Tag { key: "team".into(), value: "backend".into() },
            Tag { key: "Environment".into(), value: "prod".into() },
            Tag { key: "ünïcødé".into(), value: "".into() },
            Tag { key: "team".into(), value: "duplicate keys keep their order".into() },
        ],
        created: 1_700_000_000_123,
        last_changed: 1_700_000_500_456,
        last_accessed: Some(1_699_920_000_000),
        deletion_date: Some(1_702_592_000_789),
        resource_policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
        rotation: RotationSettings {
            enabled: true,
            lambda_arn: Some("arn:aws:lambda:us-east-1:000000000000:function:rotate".into()),
            automatically_after_days: Some(30),
            schedule_expression: Some("rate(30 days)".into()),
            duration: Some("2h".into()),
            last_rotated: Some(1_699_000_000_000),
            next_rotation: Some(1_701_592_000_000),
        },
        revision: 1,
    }
}

fn version(id: &str, stages: &[&str], created: EpochMillis, envelope: Vec<u8>) -> VersionRecord {
    VersionRecord { version_id: id.into(), stages: strings(stages), created, kind: ValueKind::String, envelope }
}

/// A minimal secret with one current version.
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

async fn create(store: &dyn Store, st: &SecretState) {
    store.write_secret(SecretWrite::Create(st.clone())).await.unwrap();
}

async fn load(store: &dyn Store, arn: &str) -> Option<SecretState> {
    store.load_secret_by_arn(arn).await.unwrap()
}

/// What a backend must return for `st`: versions oldest first, equal timestamps in write order.
fn as_loaded(st: &SecretState) -> SecretState {
    let mut out = st.clone();
    out.versions.sort_by_key(|v| v.created); // stable: ties keep write order
    out
}

/// Polls all futures on the current task until every one has finished; outputs in input order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

/// The most OS threads a racing case uses.
const RACE_THREADS: usize = 16;

/// Runs `make(0..n)` concurrently and returns the outputs in index order. On a multi-threaded runtime the
/// futures are spread over up to [`RACE_THREADS`] OS threads, each driving its share with the runtime's
/// handle, so the store is called in parallel; otherwise they are interleaved on this task.
async fn race<T, F, Fut>(n: usize, make: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = T>,
{
    let handle = tokio::runtime::Handle::current();
    if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
        return join_all((0..n).map(&make).collect()).await;
    }
    let threads = n.clamp(1, RACE_THREADS);
    let make = &make;
    let handle = &handle;
    let per_thread: Vec<Vec<(usize, T)>> = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        let indices: Vec<usize> = (t..n).step_by(threads).collect();
                        let outputs = handle.block_on(join_all(indices.iter().map(|&i| make(i)).collect()));
                        indices.into_iter().zip(outputs).collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        })
    });
    let mut all: Vec<(usize, T)> = per_thread.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, v)| v).collect()
}

/// Create, then load by name and by ARN: every field comes back exactly as written, tags in order,
/// versions oldest first with their labels, kinds and envelope bytes.
pub async fn create_and_load_round_trip(store: &dyn Store) {
    let name = "/prod/backend/db_password";
    let st = SecretState {
        secret: full_secret(REGION, name),
        versions: vec![
            VersionRecord {
                version_id: "3f0c2e7a-0000-4000-8000-000000000003".into(),
                stages: strings(&["AWSCURRENT", "custom-label"]),
                created: 3_000,
                kind: ValueKind::Binary,
                envelope: vec![0, 255, 0, 1, b'\n', 0],
            },
            version("3f0c2e7a-0000-4000-8000-000000000001", &["AWSPREVIOUS"], 1_000, b"{\"k\":\"v\"}".to_vec()),
            version("3f0c2e7a-0000-4000-8000-000000000002", &[], 2_000, vec![9; 40]),
        ],
    };
    create(store, &st).await;
    let expected = as_loaded(&st);
    assert_eq!(
        expected.versions.iter().map(|v| v.created).collect::<Vec<_>>(),
        [1_000, 2_000, 3_000],
        "test setup: expected versions oldest first"
    );

    let by_name = store.load_secret_by_name(REGION, name).await.unwrap().expect("load by name");
    assert_eq!(by_name, expected);
    let by_arn = load(store, &st.secret.arn).await.expect("load by arn");
    assert_eq!(by_arn, expected);
    assert_eq!(store.list_secrets(REGION).await.unwrap(), vec![st.secret.clone()]);

    // A secret with every optional field empty round-trips as well (None stays None, no versions).
    let bare = SecretState { secret: secret(REGION, "bare", 5), versions: vec![] };
    create(store, &bare).await;
    assert_eq!(load(store, &bare.secret.arn).await.unwrap(), bare);

    assert!(store.load_secret_by_name("us-west-2", name).await.unwrap().is_none());
    assert!(store.load_secret_by_name(REGION, "/prod/backend").await.unwrap().is_none());
    assert!(load(store, &arn(REGION, "missing")).await.is_none());
}

/// Versions written with the same `created` come back in write order, across creates and updates.
pub async fn versions_with_equal_timestamps_keep_write_order(store: &dyn Store) {
    let mut st = state(REGION, "ties");
    st.versions = vec![
        version("zz", &[], 1000, vec![1]),
        version("aa", &[], 1000, vec![2]),
        version("mm", &["AWSCURRENT"], 1000, vec![3]),
    ];
    create(store, &st).await;
    store
        .write_secret(SecretWrite::Update {
            expected_revision: 1,
            secret: bumped(&st.secret),
            new_versions: vec![version("bb", &[], 1000, vec![4]), version("early", &[], 999, vec![5])],
            stage_updates: vec![],
            deleted_versions: vec![],
        })
        .await
        .unwrap();
    let got = load(store, &st.secret.arn).await.unwrap();
    let ids: Vec<&str> = got.versions.iter().map(|v| v.version_id.as_str()).collect();
    assert_eq!(ids, ["early", "zz", "aa", "mm", "bb"]);
}

/// A name is unique within a region: a second create fails and leaves nothing behind; the same name in
/// another region is a different secret.
pub async fn names_are_unique_per_region(store: &dyn Store) {
    let first = state(REGION, "n");
    create(store, &first).await;
    let mut again = state(REGION, "n");
    again.secret.arn = format!("{}X", first.secret.arn);
    again.secret.description = Some("the loser".into());
    again.versions = vec![version("loser", &["AWSCURRENT"], 1, vec![4])];
    assert_eq!(store.write_secret(SecretWrite::Create(again.clone())).await.unwrap_err(), StoreError::AlreadyExists);
    assert!(load(store, &again.secret.arn).await.is_none(), "a failed create must leave nothing");
    assert_eq!(store.load_secret_by_name(REGION, "n").await.unwrap().unwrap(), first);
    assert_eq!(store.list_secrets(REGION).await.unwrap().len(), 1);

    let other = state("eu-west-1", "n");
    create(store, &other).await;
    assert_eq!(store.load_secret_by_name("eu-west-1", "n").await.unwrap().unwrap(), other);
    assert_eq!(store.load_secret_by_name(REGION, "n").await.unwrap().unwrap(), first);
}

/// Names are compared exactly: case matters, and SQL wildcard characters are plain characters.
pub async fn names_compare_exactly(store: &dyn Store) {
    let names = ["Name", "name", "NAME", "a_c", "abc", "a%c", "name "];
    for n in names {
        create(store, &state(REGION, n)).await;
    }
    for n in names {
        let got = store.load_secret_by_name(REGION, n).await.unwrap().unwrap_or_else(|| panic!("{n:?} missing"));
        assert_eq!(got.secret.name, n);
        assert_eq!(got.secret.arn, arn(REGION, n));
    }
    for n in ["nAme", "a", "a%", "ab_", "name  ", " name"] {
        assert!(store.load_secret_by_name(REGION, n).await.unwrap().is_none(), "{n:?} must not match");
    }
}

/// The ARN is the secret's identity: creating a second secret with a taken ARN fails.
pub async fn arns_are_unique(store: &dyn Store) {
    let first = state(REGION, "one");
    create(store, &first).await;
    let mut same_arn = state(REGION, "two");
    same_arn.secret.arn = first.secret.arn.clone();
    assert_eq!(store.write_secret(SecretWrite::Create(same_arn)).await.unwrap_err(), StoreError::AlreadyExists);
    assert!(store.load_secret_by_name(REGION, "two").await.unwrap().is_none());
    assert_eq!(load(store, &first.secret.arn).await.unwrap(), first);
}

/// A secret scheduled for deletion (at create or through an update) still holds its name until it is
/// deleted for good.
pub async fn scheduled_deletion_still_holds_the_name(store: &dyn Store) {
    let mut st = state(REGION, "held");
    st.secret.deletion_date = Some(5000);
    create(store, &st).await;
    let mut again = state(REGION, "held");
    again.secret.arn.push('Y');
    assert_eq!(store.write_secret(SecretWrite::Create(again.clone())).await.unwrap_err(), StoreError::AlreadyExists);

    let other = state(REGION, "scheduled-later");
    create(store, &other).await;
    let mut scheduled = bumped(&other.secret);
    scheduled.deletion_date = Some(9000);
    store
        .write_secret(SecretWrite::Update {
            expected_revision: 1,
            secret: scheduled,
            new_versions: vec![],
            stage_updates: vec![],
            deleted_versions: vec![],
        })
        .await
        .unwrap();
    let mut again2 = state(REGION, "scheduled-later");
    again2.secret.arn.push('Z');
    assert_eq!(store.write_secret(SecretWrite::Create(again2)).await.unwrap_err(), StoreError::AlreadyExists);

    store.write_secret(SecretWrite::Delete { arn: st.secret.arn.clone(), expected_revision: 1 }).await.unwrap();
    create(store, &again).await;
    assert_eq!(store.load_secret_by_name(REGION, "held").await.unwrap().unwrap(), again);
}

/// An update with the right revision replaces the metadata, adds, relabels and removes versions in one
/// step, and leaves untouched versions exactly as they were.
pub async fn update_applies_atomically_and_bumps_revision(store: &dyn Store) {
    let mut st = state(REGION, "upd");
    st.secret = full_secret(REGION, "upd");
    st.versions = vec![
        version("v0", &["AWSPREVIOUS"], 500, vec![0]),
        version("v1", &["AWSCURRENT"], 1000, vec![1, 2, 3]),
        VersionRecord {
            version_id: "keep".into(),
            stages: strings(&["custom"]),
            created: 1500,
            kind: ValueKind::Binary,
            envelope: vec![7; 100],
        },
        version("unlabel", &["AWSPENDING"], 1600, vec![8]),
    ];
    create(store, &st).await;

    let mut s = bumped(&st.secret);
    s.description = None;
    s.kms_key_id = Some("alias/other".into());
    s.tags = vec![Tag { key: "k".into(), value: "v".into() }];
    s.last_changed = 2000;
    s.deletion_date = None;
    s.resource_policy = None;
    s.rotation = RotationSettings { enabled: false, automatically_after_days: Some(7), ..Default::default() };
    let v2 = VersionRecord {
        version_id: "v2".into(),
        stages: strings(&["AWSCURRENT", "x"]),
        created: 2000,
        kind: ValueKind::Binary,
        envelope: vec![2; 33],
    };
    store
        .write_secret(SecretWrite::Update {
            expected_revision: 1,
            secret: s.clone(),
            new_versions: vec![v2.clone()],
            stage_updates: vec![("v1".into(), strings(&["AWSPREVIOUS"])), ("unlabel".into(), vec![])],
            deleted_versions: vec!["v0".into()],
        })
        .await
        .unwrap();

    let got = load(store, &s.arn).await.unwrap();
    assert_eq!(got.secret, s);
    assert_eq!(got.secret.revision, 2);
    let expected_versions = vec![
        version("v1", &["AWSPREVIOUS"], 1000, vec![1, 2, 3]),
        st.versions[2].clone(),
        version("unlabel", &[], 1600, vec![8]),
        v2,
    ];
    assert_eq!(got.versions, expected_versions);
    assert_eq!(store.list_secrets(REGION).await.unwrap(), vec![s.clone()]);

    // The new revision is what the next compare-and-swap must name.
    let s3 = bumped(&s);
    store
        .write_secret(SecretWrite::Update {
            expected_revision: 2,
            secret: s3.clone(),
            new_versions: vec![],
            stage_updates: vec![],
            deleted_versions: vec!["v1".into(), "keep".into(), "unlabel".into()],
        })
        .await
        .unwrap();
    let got = load(store, &s.arn).await.unwrap();
    assert_eq!(got.secret.revision, 3);
    assert_eq!(got.versions.iter().map(|v| v.version_id.as_str()).collect::<Vec<_>>(), ["v2"]);
}

/// An update naming a revision other than the current one fails with `Conflict` and changes nothing.
pub async fn update_must_advance_revision_by_one(store: &dyn Store) {
    let st = state(REGION, "skip");
    create(store, &st).await;
    for bad in [1, 3, 0] {
        let mut s = st.secret.clone();
        s.revision = bad;
        s.description = Some("changed".into());
        let err = store
            .write_secret(SecretWrite::Update {
                expected_revision: 1,
                secret: s,
                new_versions: vec![],
                stage_updates: vec![],
                deleted_versions: vec![],
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidWrite(_)), "revision {bad}: {err:?}");
        assert_eq!(load(store, &st.secret.arn).await.unwrap(), as_loaded(&st));
    }
}

pub async fn stale_revision_conflicts_and_changes_nothing(store: &dyn Store) {
    let st = state(REGION, "stale");
    create(store, &st).await;
    for expected in [0, 7, 2] {
        let mut s = st.secret.clone();
        s.revision = expected + 1;
        s.description = Some("changed".into());
        s.deletion_date = Some(1);
        let err = store
            .write_secret(SecretWrite::Update {
                expected_revision: expected,
                secret: s,
                new_versions: vec![version("vX", &["AWSCURRENT"], 3000, vec![1])],
                stage_updates: vec![("v1".into(), vec![])],
                deleted_versions: vec!["v1".into()],
            })
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::Conflict, "expected_revision {expected}");
        assert_eq!(load(store, &st.secret.arn).await.unwrap(), st);
    }
    assert!(store.secrets_due_for_deletion(i64::MAX).await.unwrap().is_empty());

    // After a successful update the old revision is stale too.
    let s2 = bumped(&st.secret);
    store
        .write_secret(SecretWrite::Update {
            expected_revision: 1,
            secret: s2.clone(),
            new_versions: vec![],
            stage_updates: vec![],
            deleted_versions: vec![],
        })
        .await
        .unwrap();
    let err = store
        .write_secret(SecretWrite::Update {
            expected_revision: 1,
            secret: s2.clone(),
            new_versions: vec![version("late", &[], 1, vec![])],
            stage_updates: vec![],
            deleted_versions: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    assert_eq!(load(store, &st.secret.arn).await.unwrap(), SecretState { secret: s2, versions: st.versions });
}

/// Delete removes the secret and all its versions; the name, and even the ARN, can then be used again
/// with nothing of the old secret showing through.
pub async fn delete_removes_secret_and_versions(store: &dyn Store) {
    let mut st = state(REGION, "gone");
    st.secret.deletion_date = Some(10);
    st.versions.push(version("v2", &[], 2000, vec![5; 10]));
    create(store, &st).await;
    let s2 = bumped(&st.secret);
    store
        .write_secret(SecretWrite::Update {
            expected_revision: 1,
            secret: s2,
            new_versions: vec![version("v3", &[], 3000, vec![6])],
            stage_updates: vec![],
            deleted_versions: vec![],
        })
        .await
        .unwrap();
    store.write_secret(SecretWrite::Delete { arn: st.secret.arn.clone(), expected_revision: 2 }).await.unwrap();
    assert!(load(store, &st.secret.arn).await.is_none());
    assert!(store.load_secret_by_name(REGION, "gone").await.unwrap().is_none());
    assert!(store.list_secrets(REGION).await.unwrap().is_empty());
    assert!(store.secrets_due_for_deletion(i64::MAX).await.unwrap().is_empty());

    // The name is free again, under a new ARN.
    let mut renamed = state(REGION, "gone");
    renamed.secret.arn = format!("{}-new", st.secret.arn);
    create(store, &renamed).await;
    assert_eq!(store.load_secret_by_name(REGION, "gone").await.unwrap().unwrap(), renamed);
    store.write_secret(SecretWrite::Delete { arn: renamed.secret.arn.clone(), expected_revision: 1 }).await.unwrap();

    // Even the same ARN: no versions are left behind from its previous life.
    let mut again = state(REGION, "gone");
    again.versions.clear();
    create(store, &again).await;
    assert_eq!(load(store, &again.secret.arn).await.unwrap(), again);
}

/// A delete naming a stale revision fails with `Conflict` and deletes nothing.
pub async fn stale_delete_conflicts_and_changes_nothing(store: &dyn Store) {
    let st = state(REGION, "kept");
    create(store, &st).await;
    for expected in [0, 2, 3] {
        let err = store
            .write_secret(SecretWrite::Delete { arn: st.secret.arn.clone(), expected_revision: expected })
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::Conflict, "expected_revision {expected}");
        assert_eq!(load(store, &st.secret.arn).await.unwrap(), st);
    }
}

/// Update and delete of an ARN that does not exist (never did, or was deleted) answer `NotFound`,
/// whatever revision they name; touching it is a harmless no-op.
pub async fn missing_secret_writes_are_not_found(store: &dyn Store) {
    let never = state(REGION, "never");
    let deleted = state(REGION, "deleted");
    create(store, &deleted).await;
    store.write_secret(SecretWrite::Delete { arn: deleted.secret.arn.clone(), expected_revision: 1 }).await.unwrap();
    for st in [&never, &deleted] {
        for expected in [0, 1, 2] {
            let mut s = st.secret.clone();
            s.revision = expected + 1;
            let err = store
                .write_secret(SecretWrite::Update {
                    expected_revision: expected,
                    secret: s,
                    new_versions: vec![version("v9", &["AWSCURRENT"], 1, vec![1])],
                    stage_updates: vec![],
                    deleted_versions: vec![],
                })
                .await
                .unwrap_err();
            assert_eq!(err, StoreError::NotFound);
            let err = store
                .write_secret(SecretWrite::Delete { arn: st.secret.arn.clone(), expected_revision: expected })
                .await
                .unwrap_err();
            assert_eq!(err, StoreError::NotFound);
        }
        store.touch_secret_accessed(&st.secret.arn, 86_400_000).await.unwrap();
        assert!(load(store, &st.secret.arn).await.is_none(), "a failed write must not create the secret");
    }
    assert!(store.list_secrets(REGION).await.unwrap().is_empty());
}

/// `list_secrets` returns one region's secrets (scheduled ones included) as written, ordered by
/// creation time, ties by ARN.
pub async fn list_is_per_region_and_ordered(store: &dyn Store) {
    // Written out of order, with the tie ("b2" before "b") written in reverse ARN order.
    let mut written = Vec::new();
    for (name, created) in [("c", 3), ("b2", 2), ("a", 1), ("b", 2), ("z-first", -5)] {
        let mut st = state(REGION, name);
        st.secret.created = created;
        if name == "c" {
            st.secret = SecretRecord { created, ..full_secret(REGION, name) };
        }
        create(store, &st).await;
        written.push(st.secret);
    }
    create(store, &state("eu-west-1", "other")).await;
    create(store, &state("us-east-2", "a")).await;

    let listed = store.list_secrets(REGION).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["z-first", "a", "b", "b2", "c"]);
    written.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.arn.cmp(&b.arn)));
    assert_eq!(listed, written);
    assert_eq!(store.list_secrets("eu-west-1").await.unwrap(), vec![state("eu-west-1", "other").secret]);
    assert!(store.list_secrets("ap-south-1").await.unwrap().is_empty());
    assert!(store.list_secrets("").await.unwrap().is_empty());
}

/// `touch_secret_accessed` sets `last_accessed` and nothing else: the revision stays, so a writer that
/// read before the touch still wins its compare-and-swap.
pub async fn touch_changes_last_accessed_not_revision(store: &dyn Store) {
    let st = state(REGION, "touched");
    create(store, &st).await;
    store.touch_secret_accessed(&st.secret.arn, 86_400_000).await.unwrap();
    let got = load(store, &st.secret.arn).await.unwrap();
    let mut expected = st.clone();
    expected.secret.last_accessed = Some(86_400_000);
    assert_eq!(got, expected);

    // Touching again (same day, then a later day) keeps the revision too.
    store.touch_secret_accessed(&st.secret.arn, 86_400_000).await.unwrap();
    store.touch_secret_accessed(&st.secret.arn, 2 * 86_400_000).await.unwrap();
    let got = load(store, &st.secret.arn).await.unwrap();
    assert_eq!(got.secret.last_accessed, Some(2 * 86_400_000));
    assert_eq!(got.secret.revision, 1);

    store
        .write_secret(SecretWrite::Update {
            expected_revision: 1,
            secret: bumped(&got.secret),
            new_versions: vec![],
            stage_updates: vec![],
            deleted_versions: vec![],
        })
        .await
        .expect("a touch must not make a concurrent writer's revision stale");
}

/// `secrets_due_for_deletion(now)` returns exactly the secrets whose deletion date is at or before
/// `now`, in every region, with their current revision.
pub async fn due_for_deletion_boundary(store: &dyn Store) {
    for (region, name, when) in [
        (REGION, "early", Some(100)),
        (REGION, "exact", Some(200)),
        (REGION, "late", Some(201)),
        (REGION, "none", None),
        ("eu-west-1", "elsewhere", Some(-1)),
    ] {
        let mut st = state(region, name);
        st.secret.deletion_date = when;
        create(store, &st).await;
    }
    // A secret scheduled through an update reports its new revision; one restored is no longer due.
    let updated = state(REGION, "scheduled-by-update");
    create(store, &updated).await;
    let mut s = bumped(&updated.secret);
    s.deletion_date = Some(150);
    let write = |s: SecretRecord, expected| SecretWrite::Update {
        expected_revision: expected,
        secret: s,
        new_versions: vec![],
        stage_updates: vec![],
        deleted_versions: vec![],
    };
    store.write_secret(write(s.clone(), 1)).await.unwrap();
    let mut restored = state(REGION, "restored");
    restored.secret.deletion_date = Some(50);
    create(store, &restored).await;
    let mut r = bumped(&restored.secret);
    r.deletion_date = None;
    store.write_secret(write(r, 1)).await.unwrap();

    let due = |now| async move {
        let mut due = store.secrets_due_for_deletion(now).await.unwrap();
        due.sort();
        due
    };
    let mut expected = vec![
        (arn(REGION, "early"), 1),
        (arn(REGION, "exact"), 1),
        (arn(REGION, "scheduled-by-update"), 2),
        (arn("eu-west-1", "elsewhere"), 1),
    ];
    expected.sort();
    assert_eq!(due(200).await, expected);
    assert_eq!(due(199).await.len(), 3);
    assert_eq!(due(201).await.len(), 5);
    assert_eq!(due(-1).await, vec![(arn("eu-west-1", "elsewhere"), 1)]);
    assert!(due(-2).await.is_empty());
}

/// Access keys round-trip exactly; a duplicate id fails with `AlreadyExists` and keeps the original.
pub async fn access_keys_insert_get_and_duplicates(store: &dyn Store) {
    let key = AccessKeyRecord {
        access_key_id: "AKIAEXAMPLE000000001".into(),
        sealed_secret: vec![0, 1, 2, 255, 0],
        principal_arn: "arn:aws:iam::000000000000:user/ädmin".into(),
        user_name: "ädmin".into(),
        status: "Active".into(),
        created: 1_700_000_000_000,
    };
    let other = AccessKeyRecord {
        access_key_id: "AKIAEXAMPLE000000002".into(),
        status: "Inactive".into(),
        sealed_secret: vec![9; 64],
        ..key.clone()
    };
    store.insert_access_key(key.clone()).await.unwrap();
    store.insert_access_key(other.clone()).await.unwrap();
    assert_eq!(store.get_access_key(&key.access_key_id).await.unwrap(), Some(key.clone()));
    assert_eq!(store.get_access_key(&other.access_key_id).await.unwrap(), Some(other));

    let dup = AccessKeyRecord { sealed_secret: vec![4, 4], user_name: "mallory".into(), ..key.clone() };
    assert_eq!(store.insert_access_key(dup).await.unwrap_err(), StoreError::AlreadyExists);
    assert_eq!(store.get_access_key(&key.access_key_id).await.unwrap(), Some(key));
    assert!(store.get_access_key("AKIANOPE").await.unwrap().is_none());
    assert!(store.get_access_key("akiaexample000000001").await.unwrap().is_none());
}

/// `replace_setting` writes only over the expected value, never creates, and one of many racers wins.
pub async fn settings_replace_is_compare_and_swap(store: &dyn Store) {
    assert!(!store.replace_setting("absent", b"", b"x").await.unwrap(), "replace must not create");
    assert!(store.get_setting("absent").await.unwrap().is_none());
    assert!(store.put_setting_if_absent("k", b"one").await.unwrap());
    assert!(!store.replace_setting("k", b"other", b"two").await.unwrap());
    assert_eq!(store.get_setting("k").await.unwrap(), Some(b"one".to_vec()));
    assert!(store.replace_setting("k", b"one", b"two").await.unwrap());
    assert_eq!(store.get_setting("k").await.unwrap(), Some(b"two".to_vec()));
    let racers = race(8, |i| async move { store.replace_setting("k", b"two", &[i as u8]).await.unwrap() }).await;
    assert_eq!(racers.iter().filter(|won| **won).count(), 1, "exactly one racer may replace a setting");
}

/// `put_setting_if_absent` writes only the first value; values are arbitrary bytes.
pub async fn settings_put_if_absent(store: &dyn Store) {
    assert!(store.get_setting("k").await.unwrap().is_none());
    assert!(store.put_setting_if_absent("k", b"one").await.unwrap());
    assert!(!store.put_setting_if_absent("k", b"two").await.unwrap());
    assert_eq!(store.get_setting("k").await.unwrap(), Some(b"one".to_vec()));

    let binary = [0u8, 159, 146, 150, 0, 255];
    assert!(store.put_setting_if_absent("binary", &binary).await.unwrap());
    assert_eq!(store.get_setting("binary").await.unwrap(), Some(binary.to_vec()));
    assert!(store.put_setting_if_absent("empty", b"").await.unwrap());
    assert_eq!(store.get_setting("empty").await.unwrap(), Some(vec![]));
    assert!(!store.put_setting_if_absent("empty", b"late").await.unwrap());
    assert!(store.get_setting("K").await.unwrap().is_none());

    let racers = race(8, |i| async move { store.put_setting_if_absent("raced", &[i as u8]).await.unwrap() }).await;
    assert_eq!(racers.iter().filter(|won| **won).count(), 1, "exactly one racer may write a setting");
    let winner = racers.iter().position(|won| *won).unwrap();
    assert_eq!(store.get_setting("raced").await.unwrap(), Some(vec![winner as u8]));
}

/// Envelopes of 64 KiB and more (AWS's maximum secret size, plus envelope overhead, and well beyond)
/// round-trip byte for byte, at create and through an update.
pub async fn large_envelopes_round_trip(store: &dyn Store) {
    let bytes = |n: usize, seed: u32| -> Vec<u8> { (0..n as u32).map(|i| (i.wrapping_mul(31) ^ seed) as u8).collect() };
    let mut st = state(REGION, "big");
    st.versions = vec![
        version("64k-1", &[], 1, bytes(65_535, 1)),
        version("64k", &[], 2, bytes(65_536, 2)),
        version("64k+1", &["AWSCURRENT"], 3, bytes(65_537, 3)),
    ];
    create(store, &st).await;
    assert_eq!(load(store, &st.secret.arn).await.unwrap(), st);

    let huge = version("1M", &["AWSPENDING"], 4, bytes((1 << 20) + 3, 4));
    store
        .write_secret(SecretWrite::Update {
            expected_revision: 1,
            secret: bumped(&st.secret),
            new_versions: vec![huge.clone()],
            stage_updates: vec![],
            deleted_versions: vec!["64k-1".into()],
        })
        .await
        .unwrap();
    let got = load(store, &st.secret.arn).await.unwrap();
    assert_eq!(got.versions.len(), 3);
    assert_eq!(got.versions[1], st.versions[2]);
    assert_eq!(got.versions[2], huge);
}

/// Paths, punctuation, 512-character and non-ASCII names round-trip by name, by ARN and in listings.
pub async fn odd_and_unicode_names_round_trip(store: &dyn Store) {
    let long = "x".repeat(512);
    let long_unicode = "秘".repeat(512);
    let names = [
        "/prod/backend/db_password",
        "a+b=c.d@e-f_g",
        "+=.@-_/",
        long.as_str(),
        "ünïcødé/секрет/秘密/🔑",
        long_unicode.as_str(),
        "name with spaces and 'quotes' \"double\"",
        "back\\slash;DROP TABLE secrets;--",
        "ends-like-a-suffix-AbC123",
    ];
    for (i, name) in names.iter().enumerate() {
        let mut st = state(REGION, name);
        st.secret.created = i as EpochMillis;
        st.secret.description = Some(format!("описание {name}"));
        st.secret.tags = vec![Tag { key: (*name).into(), value: format!("{name}✓") }];
        st.versions[0].version_id = format!("version-{name}");
        st.versions[0].stages = vec![(*name).into(), "AWSCURRENT".into()];
        create(store, &st).await;
        assert_eq!(store.load_secret_by_name(REGION, name).await.unwrap().as_ref(), Some(&st), "{name:?}");
        assert_eq!(load(store, &st.secret.arn).await.as_ref(), Some(&st), "{name:?}");
    }
    let listed: Vec<String> = store.list_secrets(REGION).await.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(listed, names);
}

/// Sixteen callers race compare-and-swap updates on one secret, each re-reading and retrying on
/// `Conflict`, each write adding one version and moving AWSCURRENT/AWSPREVIOUS as the service does.
/// Every successful write must be there exactly once: revision and version count equal the number of
/// successes, the versions form an unbroken chain of revisions, and exactly one version holds each label.
pub async fn concurrent_compare_and_swap_loses_nothing(store: &dyn Store) {
    const TASKS: usize = 16;
    const WRITES_PER_TASK: usize = 2;
    let mut st = state(REGION, "contended");
    st.versions[0].created = 0;
    create(store, &st).await;
    let arn = st.secret.arn.clone();
    let arn = arn.as_str();

    let outcomes = race(TASKS, |t| async move {
        let (mut successes, mut conflicts) = (0usize, 0usize);
        while successes < WRITES_PER_TASK {
            let cur = store.load_secret_by_arn(arn).await.unwrap().unwrap();
            let rev = cur.secret.revision;
            let mut stage_updates = Vec::new();
            for v in &cur.versions {
                if v.stages.iter().any(|s| s == "AWSCURRENT") {
                    stage_updates.push((v.version_id.clone(), strings(&["AWSPREVIOUS"])));
                } else if v.stages.iter().any(|s| s == "AWSPREVIOUS") {
                    stage_updates.push((v.version_id.clone(), vec![]));
                }
            }
            let id = format!("task-{t}-write-{successes}");
            let write = SecretWrite::Update {
                expected_revision: rev,
                secret: bumped(&cur.secret),
                // `created` = the revision this write produces: unique among winners.
                new_versions: vec![version(&id, &["AWSCURRENT"], rev as EpochMillis, id.clone().into_bytes())],
                stage_updates,
                deleted_versions: vec![],
            };
            match store.write_secret(write).await {
                Ok(()) => successes += 1,
                Err(StoreError::Conflict) => conflicts += 1,
                Err(e) => panic!("task {t}: unexpected error {e:?}"),
            }
        }
        (successes, conflicts)
    })
    .await;

    let successes: usize = outcomes.iter().map(|(s, _)| s).sum();
    assert_eq!(successes, TASKS * WRITES_PER_TASK);
    let got = load(store, arn).await.unwrap();
    assert_eq!(got.secret.revision, 1 + successes as u64);
    assert_eq!(got.versions.len(), 1 + successes);
    let created: Vec<EpochMillis> = got.versions.iter().map(|v| v.created).collect();
    assert_eq!(created, (0..=successes as EpochMillis).collect::<Vec<_>>(), "one version per revision");
    let mut ids: Vec<&str> = got.versions.iter().map(|v| v.version_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1 + successes, "duplicate versions");
    for t in 0..TASKS {
        for w in 0..WRITES_PER_TASK {
            let id = format!("task-{t}-write-{w}");
            let v = got.versions.iter().find(|v| v.version_id == id).unwrap_or_else(|| panic!("{id} lost"));
            assert_eq!(v.envelope, id.as_bytes());
        }
    }
    let holders = |label: &str| -> Vec<EpochMillis> {
        got.versions.iter().filter(|v| v.stages.iter().any(|s| s == label)).map(|v| v.created).collect()
    };
    assert_eq!(holders("AWSCURRENT"), [successes as EpochMillis]);
    assert_eq!(holders("AWSPREVIOUS"), [successes as EpochMillis - 1]);
}

/// Two hundred concurrent creates of distinct secrets all land, each complete.
pub async fn concurrent_creates_all_land(store: &dyn Store) {
    const N: usize = 200;
    let make = |i: usize| {
        let mut st = state(REGION, &format!("bulk/{i:03}"));
        st.secret.created = i as EpochMillis;
        st.versions[0].envelope = format!("value {i}").into_bytes();
        st
    };
    let results = race(N, |i| async move { store.write_secret(SecretWrite::Create(make(i))).await }).await;
    for (i, r) in results.into_iter().enumerate() {
        r.unwrap_or_else(|e| panic!("create {i}: {e:?}"));
    }
    let listed = store.list_secrets(REGION).await.unwrap();
    assert_eq!(listed, (0..N).map(|i| make(i).secret).collect::<Vec<_>>());
    for i in [0, 1, N / 2, N - 1] {
        assert_eq!(load(store, &make(i).secret.arn).await.unwrap(), make(i));
    }
}

/// Sixteen concurrent creates of one name (distinct ARNs): exactly one wins, the rest get
/// `AlreadyExists`, and only the winner's data is stored.
pub async fn concurrent_creates_of_one_name_have_one_winner(store: &dyn Store) {
    const N: usize = 16;
    let make = |i: usize| {
        let mut st = state(REGION, "contested");
        st.secret.arn = format!("{}-{i}", st.secret.arn);
        st.versions[0].envelope = vec![i as u8];
        st
    };
    let results = race(N, |i| async move { store.write_secret(SecretWrite::Create(make(i))).await }).await;
    let winners: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_ok()).map(|(i, _)| i).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert_eq!(*e, StoreError::AlreadyExists);
        }
    }
    let got = store.load_secret_by_name(REGION, "contested").await.unwrap().unwrap();
    assert_eq!(got, make(winners[0]));
    assert_eq!(store.list_secrets(REGION).await.unwrap().len(), 1);
}

fn parameter_version(version: i64, labels: &[&str], envelope: Vec<u8>) -> ParameterVersionRecord {
    ParameterVersionRecord {
        version,
        parameter_type: "SecureString".into(),
        envelope,
        description: Some(format!("version {version}")),
        key_id: Some("alias/aws/ssm".into()),
        allowed_pattern: None,
        tier: "Standard".into(),
        data_type: "text".into(),
        policies: None,
        labels: strings(labels),
        last_modified: 1000 + version,
        last_modified_user: "arn:aws:iam::000000000000:root".into(),
    }
}

fn parameter(region: &str, name: &str) -> ParameterState {
    let parent = match name.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => name[..i].to_string(),
    };
    ParameterState {
        region: region.into(),
        name: name.into(),
        parent_path: parent,
        tags: vec![Tag { key: "team".into(), value: "web".into() }],
        revision: 1,
        versions: vec![parameter_version(1, &[], vec![1, 2, 3])],
    }
}

pub async fn parameters_round_trip_and_compare_and_swap(store: &dyn Store) {
    let p = parameter(REGION, "/amplify/app1/dev/DB_PASS");
    store.write_parameter(ParameterWrite::Create(p.clone())).await.unwrap();
    assert_eq!(store.load_parameter(REGION, &p.name).await.unwrap(), Some(p.clone()));
    assert!(store.load_parameter("eu-west-1", &p.name).await.unwrap().is_none());
    assert_eq!(store.write_parameter(ParameterWrite::Create(p.clone())).await.unwrap_err(), StoreError::AlreadyExists);
    let update = |expected: u64, revision: u64| ParameterWrite::Update {
        expected_revision: expected,
        region: REGION.into(),
        name: p.name.clone(),
        revision,
        tags: vec![],
        new_version: Some(parameter_version(2, &["prod"], vec![9; 70_000])),
        label_updates: vec![(1, strings(&["old"]))],
        dropped_versions: vec![],
    };
    assert_eq!(store.write_parameter(update(5, 6)).await.unwrap_err(), StoreError::Conflict);
    assert!(matches!(store.write_parameter(update(1, 3)).await.unwrap_err(), StoreError::InvalidWrite(_)));
    assert_eq!(store.load_parameter(REGION, &p.name).await.unwrap(), Some(p.clone()));
    store.write_parameter(update(1, 2)).await.unwrap();
    let got = store.load_parameter(REGION, &p.name).await.unwrap().unwrap();
    assert_eq!(got.revision, 2);
    assert!(got.tags.is_empty());
    assert_eq!(got.versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(got.versions[0].labels, strings(&["old"]));
    assert_eq!(got.versions[1], parameter_version(2, &["prod"], vec![9; 70_000]));
    store
        .write_parameter(ParameterWrite::Update {
            expected_revision: 2,
            region: REGION.into(),
            name: p.name.clone(),
            revision: 3,
            tags: vec![],
            new_version: None,
            label_updates: vec![],
            dropped_versions: vec![1],
        })
        .await
        .unwrap();
    let got = store.load_parameter(REGION, &p.name).await.unwrap().unwrap();
    assert_eq!(got.versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2]);
    let delete =
        |expected| ParameterWrite::Delete { region: REGION.into(), name: p.name.clone(), expected_revision: expected };
    assert_eq!(store.write_parameter(delete(2)).await.unwrap_err(), StoreError::Conflict);
    store.write_parameter(delete(3)).await.unwrap();
    assert!(store.load_parameter(REGION, &p.name).await.unwrap().is_none());
    assert_eq!(store.write_parameter(delete(3)).await.unwrap_err(), StoreError::NotFound);
    // The name can be used again, with no versions left behind.
    store.write_parameter(ParameterWrite::Create(p.clone())).await.unwrap();
    assert_eq!(store.load_parameter(REGION, &p.name).await.unwrap(), Some(p));
}

pub async fn parameter_listing_by_path(store: &dyn Store) {
    for name in ["/amplify/a", "/amplify/b", "/amplify/app1/dev/x", "/amplify/app1/y", "/amplify0", "/other/z", "top"] {
        store.write_parameter(ParameterWrite::Create(parameter(REGION, name))).await.unwrap();
    }
    store.write_parameter(ParameterWrite::Create(parameter("eu-west-1", "/amplify/c"))).await.unwrap();
    let names = |ps: Vec<ParameterState>| ps.into_iter().map(|p| p.name).collect::<Vec<_>>();
    let query = |path: &str, recursive: bool, after: Option<&str>, limit: usize| ParameterQuery {
        region: REGION.into(),
        path: path.into(),
        recursive,
        after: after.map(Into::into),
        limit,
        latest_only: false,
    };
    assert_eq!(
        names(store.list_parameters(query("/amplify", false, None, 10)).await.unwrap()),
        ["/amplify/a", "/amplify/b"]
    );
    assert_eq!(
        names(store.list_parameters(query("/amplify", true, None, 10)).await.unwrap()),
        ["/amplify/a", "/amplify/app1/dev/x", "/amplify/app1/y", "/amplify/b"]
    );
    // Pages resume after the last name and never repeat or skip one.
    let first = names(store.list_parameters(query("/amplify", true, None, 2)).await.unwrap());
    assert_eq!(first, ["/amplify/a", "/amplify/app1/dev/x"]);
    let second = names(store.list_parameters(query("/amplify", true, Some(&first[1]), 2)).await.unwrap());
    assert_eq!(second, ["/amplify/app1/y", "/amplify/b"]);
    assert!(store.list_parameters(query("/amplify", true, Some("/amplify/b"), 2)).await.unwrap().is_empty());
    assert_eq!(names(store.list_parameters(query("/", false, None, 10)).await.unwrap()), ["/amplify0", "top"]);
    assert_eq!(store.list_parameters(query("/", true, None, 100)).await.unwrap().len(), 7);
    assert!(store.list_parameters(query("/nothing", true, None, 10)).await.unwrap().is_empty());
    // The names-only listing answers exactly the same names, page for page.
    for (path, recursive, after, limit) in [
        ("/amplify", false, None, 10),
        ("/amplify", true, None, 10),
        ("/amplify", true, Some("/amplify/a"), 2),
        ("/", false, None, 10),
        ("/", true, None, 3),
        ("/nothing", true, None, 10),
    ] {
        let q = query(path, recursive, after, limit);
        assert_eq!(
            store.list_parameter_names(q.clone()).await.unwrap(),
            names(store.list_parameters(q).await.unwrap()),
            "{path} recursive={recursive} after={after:?}"
        );
    }

    // `latest_only` returns the same parameters with only their newest version.
    store
        .write_parameter(ParameterWrite::Update {
            expected_revision: 1,
            region: REGION.into(),
            name: "/amplify/a".into(),
            revision: 2,
            tags: vec![],
            new_version: Some(parameter_version(2, &["prod"], vec![7, 7])),
            label_updates: vec![],
            dropped_versions: vec![],
        })
        .await
        .unwrap();
    for recursive in [false, true] {
        let full = store.list_parameters(query("/amplify", recursive, None, 10)).await.unwrap();
        let latest = store
            .list_parameters(ParameterQuery { latest_only: true, ..query("/amplify", recursive, None, 10) })
            .await
            .unwrap();
        assert_eq!(full.len(), latest.len());
        for (f, l) in full.iter().zip(&latest) {
            assert_eq!((&f.name, &f.tags, f.revision), (&l.name, &l.tags, l.revision));
            assert_eq!(l.versions.as_slice(), &f.versions[f.versions.len() - 1..]);
        }
        assert_eq!(latest[0].versions[0].version, 2);
    }
}

pub async fn a_stale_update_does_not_undo_a_recorded_access(store: &dyn Store) {
    let st = state(REGION, "accessed");
    create(store, &st).await;
    // A writer loads the secret (no access recorded), then a read records today, then the writer commits.
    store.touch_secret_accessed(&st.secret.arn, 86_400_000).await.unwrap();
    let mut s = bumped(&st.secret);
    s.description = Some("changed".into());
    store
        .write_secret(SecretWrite::Update {
            expected_revision: 1,
            secret: s,
            new_versions: vec![],
            stage_updates: vec![],
            deleted_versions: vec![],
        })
        .await
        .unwrap();
    let got = load(store, &st.secret.arn).await.unwrap();
    assert_eq!(got.secret.last_accessed, Some(86_400_000));
    assert_eq!(got.secret.description.as_deref(), Some("changed"));
}

fn kms_key(region: &str, key_id: &str, created: EpochMillis) -> KmsKeyState {
    KmsKeyState {
        key: KmsKeyRecord {
            region: region.into(),
            key_id: key_id.into(),
            arn: format!("arn:aws:kms:{region}:000000000000:key/{key_id}"),
            description: "payments ✓".into(),
            key_manager: "CUSTOMER".into(),
            key_state: "Enabled".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            origin: "AWS_KMS".into(),
            created,
            deletion_date: None,
            rotation_enabled: false,
            rotation_period_days: 365,
            next_rotation: None,
            tags: vec![Tag { key: "team".into(), value: "payments".into() }],
            policy: Some("{}".into()),
            revision: 1,
        },
        materials: vec![KeyMaterialRecord { version: 1, created, sealed: vec![1; 93] }],
    }
}

/// KMS keys round-trip whole, add material only forward, and update by compare-and-swap.
pub async fn kms_keys_round_trip_and_compare_and_swap(store: &dyn Store) {
    let k = kms_key(REGION, "1234abcd-12ab-34cd-56ef-1234567890ab", 10);
    store.write_kms_key(KmsKeyWrite::Create(k.clone())).await.unwrap();
    assert_eq!(store.load_kms_key(REGION, &k.key.key_id).await.unwrap(), Some(k.clone()));
    assert!(store.load_kms_key("eu-west-1", &k.key.key_id).await.unwrap().is_none());
    assert_eq!(store.write_kms_key(KmsKeyWrite::Create(k.clone())).await.unwrap_err(), StoreError::AlreadyExists);
    let older = kms_key(REGION, "ffff0000-12ab-34cd-56ef-1234567890ab", 5);
    store.write_kms_key(KmsKeyWrite::Create(older.clone())).await.unwrap();
    let listed = store.list_kms_keys(REGION).await.unwrap();
    assert_eq!(listed, vec![older.key.clone(), k.key.clone()], "oldest first");
    assert!(store.list_kms_keys("eu-west-1").await.unwrap().is_empty());

    let mut rotated = k.key.clone();
    rotated.revision = 2;
    rotated.key_state = "Disabled".into();
    let material = KeyMaterialRecord { version: 2, created: 20, sealed: vec![2; 93] };
    let update = |expected: u64, key: KmsKeyRecord| KmsKeyWrite::Update {
        expected_revision: expected,
        key,
        new_material: Some(material.clone()),
    };
    let mut stale = rotated.clone();
    stale.revision = 8;
    assert_eq!(store.write_kms_key(update(7, stale)).await.unwrap_err(), StoreError::Conflict);
    let mut skipping = rotated.clone();
    skipping.revision = 3;
    assert!(matches!(store.write_kms_key(update(1, skipping)).await.unwrap_err(), StoreError::InvalidWrite(_)));
    store.write_kms_key(update(1, rotated.clone())).await.unwrap();
    let got = store.load_kms_key(REGION, &k.key.key_id).await.unwrap().unwrap();
    assert_eq!(got.key, rotated);
    assert_eq!(got.materials.iter().map(|m| m.version).collect::<Vec<_>>(), [1, 2]);
    // The same material version twice is a lost race, and changes nothing.
    let mut again = rotated.clone();
    again.revision = 3;
    assert_eq!(store.write_kms_key(update(2, again)).await.unwrap_err(), StoreError::Conflict);
    assert_eq!(store.load_kms_key(REGION, &k.key.key_id).await.unwrap().unwrap(), got);
    let mut missing = rotated.clone();
    missing.key_id = "00000000-0000-0000-0000-000000000000".into();
    missing.revision = 2;
    assert_eq!(
        store
            .write_kms_key(KmsKeyWrite::Update { expected_revision: 1, key: missing, new_material: None })
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
}

/// Aliases are unique per region, retarget and delete; deleting a key removes its aliases.
pub async fn kms_aliases_and_key_deletion(store: &dyn Store) {
    let k = kms_key(REGION, "aaaa0000-12ab-34cd-56ef-1234567890ab", 1);
    let other = kms_key(REGION, "bbbb0000-12ab-34cd-56ef-1234567890ab", 2);
    store.write_kms_key(KmsKeyWrite::Create(k.clone())).await.unwrap();
    store.write_kms_key(KmsKeyWrite::Create(other.clone())).await.unwrap();
    let alias = |name: &str, target: &str| AliasRecord {
        region: REGION.into(),
        alias_name: name.into(),
        target_key_id: target.into(),
        created: 3,
        last_updated: 3,
    };
    store.write_alias(AliasWrite::Create(alias("alias/b", &k.key.key_id))).await.unwrap();
    store.write_alias(AliasWrite::Create(alias("alias/a", &other.key.key_id))).await.unwrap();
    assert_eq!(
        store.write_alias(AliasWrite::Create(alias("alias/a", &k.key.key_id))).await.unwrap_err(),
        StoreError::AlreadyExists
    );
    let names: Vec<String> = store.list_aliases(REGION).await.unwrap().into_iter().map(|a| a.alias_name).collect();
    assert_eq!(names, ["alias/a", "alias/b"]);
    let mut moved = alias("alias/a", &k.key.key_id);
    moved.last_updated = 9;
    store.write_alias(AliasWrite::Update(moved.clone())).await.unwrap();
    assert_eq!(store.load_alias(REGION, "alias/a").await.unwrap(), Some(moved));
    assert_eq!(
        store.write_alias(AliasWrite::Update(alias("alias/none", &k.key.key_id))).await.unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        store
            .write_alias(AliasWrite::Delete { region: REGION.into(), alias_name: "alias/none".into() })
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        store
            .write_kms_key(KmsKeyWrite::Delete {
                region: REGION.into(),
                key_id: k.key.key_id.clone(),
                expected_revision: 4
            })
            .await
            .unwrap_err(),
        StoreError::Conflict
    );
    store
        .write_kms_key(KmsKeyWrite::Delete {
            region: REGION.into(),
            key_id: k.key.key_id.clone(),
            expected_revision: 1,
        })
        .await
        .unwrap();
    assert!(store.load_kms_key(REGION, &k.key.key_id).await.unwrap().is_none());
    assert!(store.list_aliases(REGION).await.unwrap().is_empty(), "both aliases pointed at the deleted key");
    assert_eq!(store.list_kms_keys(REGION).await.unwrap(), vec![other.key]);
}

/// A re-wrap replaces an envelope only where it is still the expected one, and bumps no revision.
pub async fn rewrap_replaces_only_the_expected_envelopes(store: &dyn Store) {
    let st = state(REGION, "rewrapped");
    create(store, &st).await;
    let before = load(store, &st.secret.arn).await.unwrap();
    let first = &before.versions[0];
    let swaps = vec![
        EnvelopeSwap { version: first.version_id.clone(), old: first.envelope.clone(), new: vec![42; 100] },
        EnvelopeSwap { version: first.version_id.clone(), old: vec![0; 3], new: vec![43; 100] },
        EnvelopeSwap { version: "no-such-version".into(), old: vec![], new: vec![44; 100] },
    ];
    assert_eq!(store.rewrap_secret_versions(&st.secret.arn, swaps).await.unwrap(), 1);
    let after = load(store, &st.secret.arn).await.unwrap();
    assert_eq!(after.versions[0].envelope, vec![42; 100]);
    assert_eq!(after.secret.revision, before.secret.revision);
    assert_eq!(after.versions[1..], before.versions[1..]);
    assert_eq!(store.rewrap_secret_versions("arn:missing", vec![]).await.unwrap(), 0);

    let p = parameter(REGION, "/rewrap/me");
    store.write_parameter(ParameterWrite::Create(p.clone())).await.unwrap();
    let v = &p.versions[0];
    let swaps = vec![
        EnvelopeSwap { version: v.version, old: vec![9, 9], new: vec![7; 50] },
        EnvelopeSwap { version: v.version, old: v.envelope.clone(), new: vec![8; 50] },
    ];
    assert_eq!(store.rewrap_parameter_versions(REGION, &p.name, swaps).await.unwrap(), 1);
    let got = store.load_parameter(REGION, &p.name).await.unwrap().unwrap();
    assert_eq!(got.versions[0].envelope, vec![8; 50]);
    assert_eq!(got.revision, p.revision);
}
