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
//! * IAM entities come back ordered by [`IamKind`]'s `Ord` (declaration order: users, groups, roles,
//!   policies, MFA devices), not by the text of [`IamKind::as_str`], then by name in byte order.
//! * The writes of one [`Store::write_iam`] batch apply in order, each seeing the ones before it (a
//!   `Create` then an `Update` of the same entity in one batch is fine); the first failing write fails
//!   the batch with its own error and nothing of the batch is kept, the generation included.
//! * Every successful batch bumps the IAM generation by exactly one, an empty batch included.
//! * An IAM `Create` not at revision 1, or `Update` whose record does not advance the revision by one,
//!   is `InvalidWrite` even when the name is taken or the entity does not exist (the caller bug is
//!   reported first, as for [`SecretWrite::check`]).
//! * `list_access_keys` orders by `created`, ties by access key id (byte order); user names compare
//!   exactly.
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
            concurrent_creates_of_one_name_have_one_winner,
            iam_starts_empty_at_generation_zero,
            iam_create_and_load_ordered_by_kind_then_name,
            iam_generation_bumps_once_per_batch,
            iam_create_of_a_taken_name_or_bad_revision_fails,
            iam_update_is_compare_and_swap,
            iam_delete_is_compare_and_swap,
            iam_writes_within_a_batch_apply_in_order,
            iam_failed_batch_changes_nothing,
            iam_access_keys_in_batches,
            iam_documents_round_trip_exactly,
            iam_concurrent_batches_get_distinct_generations);
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

fn iam_entity(kind: IamKind, name: &str, document: &[u8]) -> IamEntityRecord {
    IamEntityRecord { kind, name: name.into(), document: document.to_vec(), revision: 1 }
}

/// `record` moved on by one revision with a new document: what an `Update` writes.
fn iam_next(record: &IamEntityRecord, document: &[u8]) -> IamEntityRecord {
    IamEntityRecord { document: document.to_vec(), revision: record.revision + 1, ..record.clone() }
}

fn iam_update(record: &IamEntityRecord, document: &[u8]) -> IamWrite {
    IamWrite::Update { expected_revision: record.revision, record: iam_next(record, document) }
}

fn iam_delete(record: &IamEntityRecord) -> IamWrite {
    IamWrite::Delete { kind: record.kind, name: record.name.clone(), expected_revision: record.revision }
}

fn iam_access_key(id: &str, user: &str, created: EpochMillis) -> AccessKeyRecord {
    AccessKeyRecord {
        access_key_id: id.into(),
        sealed_secret: vec![0, 0xff, id.len() as u8, 0x80, 0],
        principal_arn: format!("arn:aws:iam::000000000000:user/{user}"),
        user_name: user.into(),
        status: "Active".into(),
        created,
    }
}

/// What `load_iam` must return for these entities: ordered by (kind, name) with `IamKind`'s `Ord`.
fn iam_sorted(mut entities: Vec<IamEntityRecord>) -> Vec<IamEntityRecord> {
    entities.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    entities
}

/// Whether an error is the one a case expects.
type ErrorCheck = fn(&StoreError) -> bool;

/// `load_iam`, then `list_access_keys` of some users, then `get_access_key` of some ids.
type IamSnapshot = ((u64, Vec<IamEntityRecord>), Vec<Vec<AccessKeyRecord>>, Vec<Option<AccessKeyRecord>>);

/// Everything IAM-related a batch could touch, for "nothing changed" comparisons.
async fn iam_snapshot(store: &dyn Store, users: &[&str], key_ids: &[&str]) -> IamSnapshot {
    let loaded = store.load_iam().await.unwrap();
    assert_eq!(store.iam_generation().await.unwrap(), loaded.0, "iam_generation and load_iam disagree");
    let mut listed = Vec::new();
    for user in users {
        listed.push(store.list_access_keys(user).await.unwrap());
    }
    let mut keys = Vec::new();
    for id in key_ids {
        keys.push(store.get_access_key(id).await.unwrap());
    }
    (loaded, listed, keys)
}

/// A store without IAM writes is at generation 0 with no entities and no access keys.
pub async fn iam_starts_empty_at_generation_zero(store: &dyn Store) {
    assert_eq!(store.iam_generation().await.unwrap(), 0);
    assert_eq!(store.load_iam().await.unwrap(), (0, vec![]));
    assert!(store.list_access_keys("alice").await.unwrap().is_empty());
    assert!(store.list_access_keys("").await.unwrap().is_empty());
    // Other kinds of write do not touch IAM.
    create(store, &state(REGION, "not-iam")).await;
    assert!(store.put_setting_if_absent("k", b"v").await.unwrap());
    assert_eq!(store.load_iam().await.unwrap(), (0, vec![]));
}

/// Created entities load back whole, ordered by kind (`IamKind`'s order, not its text) then name (byte
/// order), with the generation of the batch that wrote them.
pub async fn iam_create_and_load_ordered_by_kind_then_name(store: &dyn Store) {
    // Written out of order; as text "user" > "role" > "policy" > "mfa" > "group", the opposite of the
    // kinds' order for most of them, so a backend sorting by the stored text cannot pass.
    let entities = vec![
        iam_entity(IamKind::MfaDevice, "alice", br#"{"seed":"sealed"}"#),
        iam_entity(IamKind::Role, "zeta", br#"{"trust":{}}"#),
        iam_entity(IamKind::User, "bob", br#"{"arn":"arn:aws:iam::000000000000:user/bob"}"#),
        iam_entity(IamKind::Policy, "ReadOnly", br#"{"versions":[]}"#),
        iam_entity(IamKind::User, "alice", b"{}"),
        iam_entity(IamKind::Group, "admins", b"[]"),
        iam_entity(IamKind::User, "Zed", b"upper case sorts first"),
        iam_entity(IamKind::Role, "alpha", b"{}"),
    ];
    let generation = store.write_iam(entities.iter().cloned().map(IamWrite::Create).collect()).await.unwrap();
    assert_eq!(generation, 1);
    let expected = iam_sorted(entities);
    let order: Vec<(IamKind, &str)> = expected.iter().map(|e| (e.kind, e.name.as_str())).collect();
    assert_eq!(
        order,
        [
            (IamKind::User, "Zed"),
            (IamKind::User, "alice"),
            (IamKind::User, "bob"),
            (IamKind::Group, "admins"),
            (IamKind::Role, "alpha"),
            (IamKind::Role, "zeta"),
            (IamKind::Policy, "ReadOnly"),
            (IamKind::MfaDevice, "alice"),
        ],
        "test setup: IamKind's order"
    );
    assert_eq!(store.load_iam().await.unwrap(), (1, expected.clone()));
    assert_eq!(store.iam_generation().await.unwrap(), 1);

    let more = iam_entity(IamKind::Group, "Devs", b"{}");
    assert_eq!(store.write_iam(vec![IamWrite::Create(more.clone())]).await.unwrap(), 2);
    let mut all = expected;
    all.push(more);
    assert_eq!(store.load_iam().await.unwrap(), (2, iam_sorted(all)));
}

/// The generation moves by exactly one per successful batch, however many writes it holds (an empty
/// batch included), and not at all for a failed one.
pub async fn iam_generation_bumps_once_per_batch(store: &dyn Store) {
    let batch = |prefix: &str, n: usize| -> Vec<IamWrite> {
        (0..n).map(|i| IamWrite::Create(iam_entity(IamKind::User, &format!("{prefix}{i}"), b"{}"))).collect()
    };
    assert_eq!(store.write_iam(batch("a", 5)).await.unwrap(), 1);
    assert_eq!(store.iam_generation().await.unwrap(), 1);
    assert_eq!(store.write_iam(batch("b", 1)).await.unwrap(), 2);
    assert_eq!(store.write_iam(batch("c", 40)).await.unwrap(), 3);
    assert_eq!(store.write_iam(vec![]).await.unwrap(), 4, "an empty batch is still a batch");
    assert_eq!(store.iam_generation().await.unwrap(), 4);
    assert_eq!(store.write_iam(batch("a", 1)).await.unwrap_err(), StoreError::AlreadyExists);
    assert_eq!(store.iam_generation().await.unwrap(), 4, "a failed batch must not bump the generation");
    let (generation, entities) = store.load_iam().await.unwrap();
    assert_eq!((generation, entities.len()), (4, 46));
    let keys = vec![IamWrite::InsertAccessKey(iam_access_key("AKIAGENERATION000001", "a0", 1))];
    assert_eq!(store.write_iam(keys).await.unwrap(), 5, "access-key writes are IAM batches too");
    assert_eq!(store.load_iam().await.unwrap().0, 5);
}

/// A `Create` of a taken (kind, name) is `AlreadyExists` and keeps the stored entity; the same name in
/// another kind is a different entity; a new entity must start at revision 1.
pub async fn iam_create_of_a_taken_name_or_bad_revision_fails(store: &dyn Store) {
    let alice = iam_entity(IamKind::User, "alice", b"original");
    assert_eq!(store.write_iam(vec![IamWrite::Create(alice.clone())]).await.unwrap(), 1);

    let dup = iam_entity(IamKind::User, "alice", b"impostor");
    assert_eq!(store.write_iam(vec![IamWrite::Create(dup)]).await.unwrap_err(), StoreError::AlreadyExists);
    assert_eq!(store.load_iam().await.unwrap(), (1, vec![alice.clone()]));

    // Names compare exactly.
    let upper = iam_entity(IamKind::User, "Alice", b"case matters");
    assert_eq!(store.write_iam(vec![IamWrite::Create(upper.clone())]).await.unwrap(), 2);

    let mut others = Vec::new();
    for kind in [IamKind::Group, IamKind::Role, IamKind::Policy, IamKind::MfaDevice] {
        others.push(iam_entity(kind, "alice", kind.as_str().as_bytes()));
    }
    assert_eq!(store.write_iam(others.iter().cloned().map(IamWrite::Create).collect()).await.unwrap(), 3);
    let mut all = vec![alice.clone(), upper];
    all.extend(others);
    let all = iam_sorted(all);
    assert_eq!(store.load_iam().await.unwrap(), (3, all.clone()));

    for revision in [0, 2, 7] {
        let bad = IamEntityRecord { revision, ..iam_entity(IamKind::Role, "new-role", b"{}") };
        let err = store.write_iam(vec![IamWrite::Create(bad)]).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidWrite(_)), "revision {revision}: {err:?}");
    }
    // The caller bug is reported first, even on a taken name.
    let taken_bad = IamEntityRecord { revision: 3, ..alice };
    assert!(matches!(
        store.write_iam(vec![IamWrite::Create(taken_bad)]).await.unwrap_err(),
        StoreError::InvalidWrite(_)
    ));
    assert_eq!(store.load_iam().await.unwrap(), (3, all), "failed creates must change nothing");
}

/// Updates are a compare-and-swap on the entity's revision: a stale expected revision is `Conflict`, a
/// record not one past it is `InvalidWrite`, a missing entity is `NotFound`; none of them changes
/// anything.
pub async fn iam_update_is_compare_and_swap(store: &dyn Store) {
    let alice = iam_entity(IamKind::User, "alice", b"v1");
    let group = iam_entity(IamKind::Group, "alice", b"group v1");
    store.write_iam(vec![IamWrite::Create(alice.clone()), IamWrite::Create(group.clone())]).await.unwrap();
    let before = store.load_iam().await.unwrap();
    assert_eq!(before.0, 1);

    let stale = IamWrite::Update {
        expected_revision: 2,
        record: IamEntityRecord { revision: 3, ..iam_next(&alice, b"stale") },
    };
    assert_eq!(store.write_iam(vec![stale]).await.unwrap_err(), StoreError::Conflict);

    for revision in [1, 3, 0] {
        let skipping = IamWrite::Update {
            expected_revision: 1,
            record: IamEntityRecord { revision, ..iam_next(&alice, b"skipping") },
        };
        let err = store.write_iam(vec![skipping]).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidWrite(_)), "revision {revision}: {err:?}");
    }
    // The contract violation is reported even for an entity that does not exist.
    let missing_and_skipping = IamWrite::Update {
        expected_revision: 1,
        record: IamEntityRecord { revision: 5, ..iam_entity(IamKind::User, "nobody", b"") },
    };
    assert!(matches!(store.write_iam(vec![missing_and_skipping]).await.unwrap_err(), StoreError::InvalidWrite(_)));

    for missing in [
        iam_entity(IamKind::User, "nobody", b"x"),
        iam_entity(IamKind::User, "ALICE", b"x"),
        iam_entity(IamKind::Role, "alice", b"x"),
    ] {
        let err = store.write_iam(vec![iam_update(&missing, b"y")]).await.unwrap_err();
        assert_eq!(err, StoreError::NotFound, "{missing:?}");
        // Whatever the expected revision says.
        let far =
            IamWrite::Update { expected_revision: 41, record: IamEntityRecord { revision: 42, ..missing.clone() } };
        assert_eq!(store.write_iam(vec![far]).await.unwrap_err(), StoreError::NotFound, "{missing:?}");
    }
    assert_eq!(store.load_iam().await.unwrap(), before, "failed updates must change nothing");

    let v2 = iam_next(&alice, b"v2");
    assert_eq!(store.write_iam(vec![iam_update(&alice, b"v2")]).await.unwrap(), 2);
    assert_eq!(store.load_iam().await.unwrap(), (2, vec![v2.clone(), group.clone()]));
    // The same update again is now stale.
    assert_eq!(store.write_iam(vec![iam_update(&alice, b"v2 again")]).await.unwrap_err(), StoreError::Conflict);
    let v3 = iam_next(&v2, b"v3");
    assert_eq!(store.write_iam(vec![iam_update(&v2, b"v3")]).await.unwrap(), 3);
    assert_eq!(store.load_iam().await.unwrap(), (3, vec![v3, group]), "the group of the same name is untouched");
}

/// Deletes are a compare-and-swap too: a stale revision is `Conflict`, a missing entity `NotFound`; a
/// deleted name can be created again.
pub async fn iam_delete_is_compare_and_swap(store: &dyn Store) {
    let alice = iam_entity(IamKind::User, "alice", b"user");
    let group = iam_entity(IamKind::Group, "alice", b"group");
    store.write_iam(vec![IamWrite::Create(alice.clone()), IamWrite::Create(group.clone())]).await.unwrap();
    let before = store.load_iam().await.unwrap();

    let stale = IamWrite::Delete { kind: IamKind::User, name: "alice".into(), expected_revision: 2 };
    assert_eq!(store.write_iam(vec![stale]).await.unwrap_err(), StoreError::Conflict);
    let zero = IamWrite::Delete { kind: IamKind::User, name: "alice".into(), expected_revision: 0 };
    assert_eq!(store.write_iam(vec![zero]).await.unwrap_err(), StoreError::Conflict);
    for (kind, name, expected_revision) in
        [(IamKind::User, "bob", 1), (IamKind::Role, "alice", 1), (IamKind::User, "alice ", 1), (IamKind::User, "x", 9)]
    {
        let missing = IamWrite::Delete { kind, name: name.into(), expected_revision };
        assert_eq!(store.write_iam(vec![missing]).await.unwrap_err(), StoreError::NotFound, "{kind:?} {name:?}");
    }
    assert_eq!(store.load_iam().await.unwrap(), before, "failed deletes must change nothing");

    assert_eq!(store.write_iam(vec![iam_delete(&alice)]).await.unwrap(), 2);
    assert_eq!(store.load_iam().await.unwrap(), (2, vec![group.clone()]));
    assert_eq!(store.write_iam(vec![iam_delete(&alice)]).await.unwrap_err(), StoreError::NotFound);

    let again = iam_entity(IamKind::User, "alice", b"reborn");
    assert_eq!(store.write_iam(vec![IamWrite::Create(again.clone())]).await.unwrap(), 3);
    assert_eq!(store.load_iam().await.unwrap(), (3, vec![again, group]));
}

/// The writes of a batch apply in order and see each other.
pub async fn iam_writes_within_a_batch_apply_in_order(store: &dyn Store) {
    let user = iam_entity(IamKind::User, "u", b"one");
    let group = iam_entity(IamKind::Group, "g", b"short-lived");
    let role = iam_entity(IamKind::Role, "r", b"{}");
    let key = iam_access_key("AKIABATCHORDER000001", "u", 10);
    let generation = store
        .write_iam(vec![
            IamWrite::Create(user.clone()),
            iam_update(&user, b"two"),
            IamWrite::Create(group.clone()),
            iam_delete(&group),
            IamWrite::Create(role.clone()),
            IamWrite::InsertAccessKey(key.clone()),
            IamWrite::AccessKeyStatus { access_key_id: key.access_key_id.clone(), status: "Inactive".into() },
        ])
        .await
        .unwrap();
    assert_eq!(generation, 1);
    assert_eq!(store.load_iam().await.unwrap(), (1, vec![iam_next(&user, b"two"), role]));
    let inactive = AccessKeyRecord { status: "Inactive".into(), ..key.clone() };
    assert_eq!(store.get_access_key(&key.access_key_id).await.unwrap(), Some(inactive.clone()));
    assert_eq!(store.list_access_keys("u").await.unwrap(), vec![inactive]);

    // A delete followed by a re-create of the same key id in one batch.
    let replacement = AccessKeyRecord { sealed_secret: vec![7; 40], created: 11, ..key.clone() };
    let generation = store
        .write_iam(vec![
            IamWrite::DeleteAccessKey { access_key_id: key.access_key_id.clone() },
            IamWrite::InsertAccessKey(replacement.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(generation, 2);
    assert_eq!(store.get_access_key(&key.access_key_id).await.unwrap(), Some(replacement));
}

/// A batch whose last write fails keeps nothing of its earlier writes (entities and access keys alike)
/// and leaves the generation where it was; the failing write's own error is returned.
pub async fn iam_failed_batch_changes_nothing(store: &dyn Store) {
    let alice = iam_entity(IamKind::User, "alice", b"alice v1");
    let group = iam_entity(IamKind::Group, "staff", b"staff v1");
    let k0 = iam_access_key("AKIAROLLBACK00000000", "alice", 1);
    let k1 = iam_access_key("AKIAROLLBACK00000001", "alice", 2);
    // One key stored outside any batch: a batch rolls back its changes to that one too.
    let k_plain = iam_access_key("AKIAROLLBACK0000000P", "alice", 3);
    store.insert_access_key(k_plain.clone()).await.unwrap();
    store
        .write_iam(vec![
            IamWrite::Create(alice.clone()),
            IamWrite::Create(group.clone()),
            IamWrite::InsertAccessKey(k0.clone()),
            IamWrite::InsertAccessKey(k1.clone()),
        ])
        .await
        .unwrap();
    let k_new = iam_access_key("AKIAROLLBACK00000002", "carol", 4);
    let users = ["alice", "carol"];
    let ids =
        [k0.access_key_id.as_str(), k1.access_key_id.as_str(), k_plain.access_key_id.as_str(), "AKIAROLLBACK00000002"];
    let before = iam_snapshot(store, &users, &ids).await;
    assert_eq!(before.0 .0, 1);
    assert_eq!(before.1[0], vec![k0.clone(), k1.clone(), k_plain.clone()]);

    // Every kind of write, all of which would succeed on their own.
    let prefix = || {
        vec![
            IamWrite::Create(iam_entity(IamKind::User, "carol", b"carol")),
            iam_update(&alice, b"alice v2"),
            iam_delete(&group),
            IamWrite::InsertAccessKey(k_new.clone()),
            IamWrite::AccessKeyStatus { access_key_id: k1.access_key_id.clone(), status: "Inactive".into() },
            IamWrite::AccessKeyStatus { access_key_id: k_plain.access_key_id.clone(), status: "Inactive".into() },
            IamWrite::DeleteAccessKey { access_key_id: k0.access_key_id.clone() },
        ]
    };
    let failing: Vec<(IamWrite, ErrorCheck)> = vec![
        (IamWrite::Create(iam_entity(IamKind::User, "alice", b"dup")), |e| *e == StoreError::AlreadyExists),
        // Created earlier in this very batch.
        (IamWrite::Create(iam_entity(IamKind::User, "carol", b"dup")), |e| *e == StoreError::AlreadyExists),
        (IamWrite::Create(IamEntityRecord { revision: 2, ..iam_entity(IamKind::Role, "r", b"") }), |e| {
            matches!(e, StoreError::InvalidWrite(_))
        }),
        // Stale only because of the update earlier in this batch.
        (iam_update(&alice, b"alice v2 again"), |e| *e == StoreError::Conflict),
        (IamWrite::Update { expected_revision: 1, record: IamEntityRecord { revision: 3, ..alice.clone() } }, |e| {
            matches!(e, StoreError::InvalidWrite(_))
        }),
        (iam_update(&iam_entity(IamKind::Role, "ghost", b""), b"x"), |e| *e == StoreError::NotFound),
        // Deleted earlier in this batch.
        (iam_delete(&group), |e| *e == StoreError::NotFound),
        (IamWrite::Delete { kind: IamKind::User, name: "alice".into(), expected_revision: 1 }, |e| {
            *e == StoreError::Conflict
        }),
        (IamWrite::InsertAccessKey(k_new.clone()), |e| *e == StoreError::AlreadyExists),
        (IamWrite::InsertAccessKey(k_plain.clone()), |e| *e == StoreError::AlreadyExists),
        (IamWrite::AccessKeyStatus { access_key_id: k0.access_key_id.clone(), status: "Active".into() }, |e| {
            *e == StoreError::NotFound
        }),
        (IamWrite::DeleteAccessKey { access_key_id: k0.access_key_id.clone() }, |e| *e == StoreError::NotFound),
        (IamWrite::DeleteAccessKey { access_key_id: "AKIANOSUCHKEY0000000".into() }, |e| *e == StoreError::NotFound),
    ];
    for (i, (last, expected_error)) in failing.into_iter().enumerate() {
        let mut batch = prefix();
        batch.push(last.clone());
        let err = store.write_iam(batch).await.unwrap_err();
        assert!(expected_error(&err), "case {i} ({last:?}): unexpected error {err:?}");
        assert_eq!(iam_snapshot(store, &users, &ids).await, before, "case {i} ({last:?}) left a trace");
    }
    // A batch failing on its first write changes nothing either.
    let mut first_fails = vec![iam_delete(&IamEntityRecord { revision: 5, ..alice.clone() })];
    first_fails.extend(prefix());
    assert_eq!(store.write_iam(first_fails).await.unwrap_err(), StoreError::Conflict);
    assert_eq!(iam_snapshot(store, &users, &ids).await, before);

    // The prefix on its own is fine: the failures above were the last write's alone.
    assert_eq!(store.write_iam(prefix()).await.unwrap(), 2);
    let (loaded, listed, keys) = iam_snapshot(store, &users, &ids).await;
    assert_eq!(loaded, (2, vec![iam_next(&alice, b"alice v2"), iam_entity(IamKind::User, "carol", b"carol")]));
    let k1_inactive = AccessKeyRecord { status: "Inactive".into(), ..k1.clone() };
    let k_plain_inactive = AccessKeyRecord { status: "Inactive".into(), ..k_plain.clone() };
    assert_eq!(listed, vec![vec![k1_inactive.clone(), k_plain_inactive.clone()], vec![k_new.clone()]]);
    assert_eq!(keys, vec![None, Some(k1_inactive), Some(k_plain_inactive), Some(k_new)]);
}

/// Access keys written through IAM batches: inserted, looked up, listed per user oldest first, their
/// status changed and removed; missing keys are `NotFound` and duplicates `AlreadyExists`.
pub async fn iam_access_keys_in_batches(store: &dyn Store) {
    let k_late = iam_access_key("AKIAKEYS000000000003", "alice", 300);
    let k_early = iam_access_key("AKIAKEYS000000000009", "alice", 100);
    let k_tie = iam_access_key("AKIAKEYS00000000000A", "alice", 100); // same time, sorts after by id
    let k_bob = iam_access_key("AKIAKEYS000000000002", "bob", 200);
    let k_upper = iam_access_key("AKIAKEYS000000000001", "Alice", 50);
    let generation = store
        .write_iam(
            [&k_late, &k_tie, &k_bob, &k_early, &k_upper].into_iter().cloned().map(IamWrite::InsertAccessKey).collect(),
        )
        .await
        .unwrap();
    assert_eq!(generation, 1);
    for k in [&k_late, &k_early, &k_tie, &k_bob, &k_upper] {
        assert_eq!(store.get_access_key(&k.access_key_id).await.unwrap().as_ref(), Some(k));
    }
    // One stored outside a batch is listed as well.
    let k_plain = iam_access_key("AKIAKEYS000000000000", "alice", 200);
    store.insert_access_key(k_plain.clone()).await.unwrap();
    assert_eq!(
        store.list_access_keys("alice").await.unwrap(),
        vec![k_early.clone(), k_tie.clone(), k_plain.clone(), k_late.clone()]
    );
    assert_eq!(store.list_access_keys("bob").await.unwrap(), vec![k_bob.clone()]);
    assert_eq!(store.list_access_keys("Alice").await.unwrap(), vec![k_upper.clone()]);
    assert!(store.list_access_keys("alic").await.unwrap().is_empty());
    assert!(store.list_access_keys("carol").await.unwrap().is_empty());
    assert!(store.load_iam().await.unwrap().1.is_empty(), "access keys are not IAM entities");

    // A duplicate id fails and keeps the original, whoever it was meant for.
    let dup = AccessKeyRecord { user_name: "mallory".into(), sealed_secret: vec![6; 8], ..k_bob.clone() };
    assert_eq!(store.write_iam(vec![IamWrite::InsertAccessKey(dup)]).await.unwrap_err(), StoreError::AlreadyExists);
    assert_eq!(store.get_access_key(&k_bob.access_key_id).await.unwrap(), Some(k_bob.clone()));
    assert!(store.list_access_keys("mallory").await.unwrap().is_empty());
    assert_eq!(store.iam_generation().await.unwrap(), 1);

    // Status changes touch only the status.
    let status = |k: &AccessKeyRecord, s: &str| IamWrite::AccessKeyStatus {
        access_key_id: k.access_key_id.clone(),
        status: s.into(),
    };
    assert_eq!(store.write_iam(vec![status(&k_early, "Inactive")]).await.unwrap(), 2);
    let early_inactive = AccessKeyRecord { status: "Inactive".into(), ..k_early.clone() };
    assert_eq!(store.get_access_key(&k_early.access_key_id).await.unwrap(), Some(early_inactive.clone()));
    assert_eq!(
        store.list_access_keys("alice").await.unwrap(),
        vec![early_inactive.clone(), k_tie.clone(), k_plain.clone(), k_late.clone()]
    );
    // A key stored outside a batch is changed the same way.
    assert_eq!(store.write_iam(vec![status(&k_plain, "Inactive")]).await.unwrap(), 3);
    let k_plain = AccessKeyRecord { status: "Inactive".into(), ..k_plain };
    assert_eq!(store.get_access_key(&k_plain.access_key_id).await.unwrap(), Some(k_plain.clone()));
    assert_eq!(store.write_iam(vec![status(&k_early, "Active")]).await.unwrap(), 4);
    assert_eq!(store.get_access_key(&k_early.access_key_id).await.unwrap(), Some(k_early.clone()));
    let missing = iam_access_key("AKIANOSUCHKEY0000000", "alice", 1);
    assert_eq!(store.write_iam(vec![status(&missing, "Inactive")]).await.unwrap_err(), StoreError::NotFound);
    let lower = AccessKeyRecord { access_key_id: k_late.access_key_id.to_lowercase(), ..k_late.clone() };
    assert_eq!(store.write_iam(vec![status(&lower, "Inactive")]).await.unwrap_err(), StoreError::NotFound);
    assert!(store.get_access_key(&missing.access_key_id).await.unwrap().is_none(), "a status change never creates");

    // Deletes remove only the named key.
    let delete = |k: &AccessKeyRecord| IamWrite::DeleteAccessKey { access_key_id: k.access_key_id.clone() };
    assert_eq!(store.write_iam(vec![delete(&k_late)]).await.unwrap(), 5);
    assert!(store.get_access_key(&k_late.access_key_id).await.unwrap().is_none());
    assert_eq!(store.list_access_keys("alice").await.unwrap(), vec![k_early.clone(), k_tie.clone(), k_plain.clone()]);
    assert_eq!(store.write_iam(vec![delete(&k_late)]).await.unwrap_err(), StoreError::NotFound);
    assert_eq!(store.write_iam(vec![delete(&missing)]).await.unwrap_err(), StoreError::NotFound);
    assert_eq!(store.write_iam(vec![delete(&k_plain), delete(&k_tie)]).await.unwrap(), 6);
    assert_eq!(store.list_access_keys("alice").await.unwrap(), vec![k_early]);
    assert_eq!(store.list_access_keys("bob").await.unwrap(), vec![k_bob]);
    assert_eq!(store.iam_generation().await.unwrap(), 6);
}

/// Documents are opaque bytes: empty, not UTF-8, with NULs, and large (~100 KB) ones round-trip
/// exactly through creates and updates.
pub async fn iam_documents_round_trip_exactly(store: &dyn Store) {
    let bytes =
        |n: usize, seed: u32| -> Vec<u8> { (0..n as u32).map(|i| (i.wrapping_mul(131) ^ seed) as u8).collect() };
    let large = bytes(100 * 1024 + 7, 5);
    assert!(std::str::from_utf8(&large).is_err(), "test setup: the large document is not UTF-8");
    let long_name = "n".repeat(128);
    let entities = vec![
        iam_entity(IamKind::User, "empty", b""),
        iam_entity(IamKind::User, "nul-only", &[0]),
        iam_entity(IamKind::User, "not-utf8", &[0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, b'\n', 0xed, 0xa0, 0x80, 0]),
        iam_entity(IamKind::User, "trailing-nuls", b"{\"a\":1}\0\0\0"),
        iam_entity(IamKind::Policy, "unicode", "{\"Description\":\"ünïcødé — 秘密 🔑\"}".as_bytes()),
        iam_entity(IamKind::Policy, "large", &large),
        iam_entity(IamKind::Role, "path/with spaces+=,.@_-", b"'; DROP TABLE iam_entities; --"),
        iam_entity(IamKind::Group, "ünïcødé-秘密", b"\xc0\xaf"),
        iam_entity(IamKind::MfaDevice, &long_name, &bytes(4096, 9)),
    ];
    store.write_iam(entities.iter().cloned().map(IamWrite::Create).collect()).await.unwrap();
    let expected = iam_sorted(entities.clone());
    assert_eq!(store.load_iam().await.unwrap(), (1, expected.clone()));

    // Updates: small to large, large to larger, large to empty.
    let find = |name: &str| entities.iter().find(|e| e.name == name).unwrap().clone();
    let larger = bytes(150 * 1024 + 1, 6);
    let from_empty = bytes(100 * 1024, 7);
    store
        .write_iam(vec![
            iam_update(&find("empty"), &from_empty),
            iam_update(&find("large"), &larger),
            iam_update(&find("not-utf8"), b""),
        ])
        .await
        .unwrap();
    let (generation, got) = store.load_iam().await.unwrap();
    assert_eq!(generation, 2);
    let doc = |name: &str| got.iter().find(|e| e.name == name).unwrap();
    assert_eq!(doc("empty").document, from_empty);
    assert_eq!(doc("empty").revision, 2);
    assert_eq!(doc("large").document, larger);
    assert_eq!(doc("not-utf8").document, Vec::<u8>::new());
    let untouched: Vec<_> =
        got.iter().filter(|e| !["empty", "large", "not-utf8"].contains(&e.name.as_str())).cloned().collect();
    let expected_untouched: Vec<_> =
        expected.into_iter().filter(|e| !["empty", "large", "not-utf8"].contains(&e.name.as_str())).collect();
    assert_eq!(untouched, expected_untouched);
}

/// Batches racing from many threads are applied one at a time: each gets its own generation, and of
/// racing compare-and-swaps on one entity exactly one wins.
pub async fn iam_concurrent_batches_get_distinct_generations(store: &dyn Store) {
    const RACERS: usize = 16;
    let generations = race(RACERS, |i| async move {
        store
            .write_iam(vec![
                IamWrite::Create(iam_entity(IamKind::User, &format!("user-{i:02}"), b"{}")),
                IamWrite::InsertAccessKey(iam_access_key(&format!("AKIARACE{i:012}"), &format!("user-{i:02}"), 1)),
            ])
            .await
            .unwrap()
    })
    .await;
    let mut sorted = generations.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=RACERS as u64).collect::<Vec<_>>(), "every batch gets its own generation");
    let (generation, entities) = store.load_iam().await.unwrap();
    assert_eq!(generation, RACERS as u64);
    assert_eq!(entities.len(), RACERS);

    let shared = iam_entity(IamKind::Policy, "shared", b"v1");
    let base = store.write_iam(vec![IamWrite::Create(shared.clone())]).await.unwrap();
    let results = race(RACERS, |i| {
        let shared = shared.clone();
        async move { store.write_iam(vec![iam_update(&shared, format!("winner {i}").as_bytes())]).await }
    })
    .await;
    let winners: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_ok()).map(|(i, _)| i).collect();
    assert_eq!(winners.len(), 1, "exactly one racing update may win: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert_eq!(*e, StoreError::Conflict);
        }
    }
    assert_eq!(results[winners[0]], Ok(base + 1));
    let (generation, entities) = store.load_iam().await.unwrap();
    assert_eq!(generation, base + 1, "lost races must not bump the generation");
    let got = entities.into_iter().find(|e| e.kind == IamKind::Policy).unwrap();
    assert_eq!(got, iam_next(&shared, format!("winner {}", winners[0]).as_bytes()));
}
