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
//! * Audit: a write's event is appended only when the write succeeds, whatever the error (`Conflict`,
//!   `NotFound`, `AlreadyExists`, `InvalidWrite`); a failed write consumes no seq.
//! * Audit lookups: an event matches an (attribute, value) once however often it lists it (or lists
//!   its own event id); a prefix matches bytewise (`%`, `_`, `*` are plain characters) and the empty
//!   prefix matches every event that has the attribute (every event, for `EventId`).
//! * Audit queries with `limit` 0 return nothing; `start_ms > end_ms` matches nothing.
//! * Digest numbers are never reused: after every digest was pruned, the next one still continues
//!   from the newest number ever assigned (so the compare-and-swap expects that number).
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
use std::sync::Arc;

use coffer_audit::chain::record_hash;

use crate::audit::GENESIS;
use crate::*;
use LookupAttribute as A;

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
            iam_concurrent_batches_get_distinct_generations,
            audit_log_starts_empty,
            audit_empty_append_is_a_no_op,
            audit_records_chain_and_round_trip,
            audit_append_keeps_the_order_of_a_call,
            audit_event_commits_with_its_write_or_not_at_all,
            audit_events_ride_on_every_write_method,
            audit_concurrent_appenders_form_one_chain,
            audit_concurrent_writes_with_events_leave_no_gaps,
            audit_query_by_every_attribute,
            audit_query_pages_newest_first,
            audit_query_limit,
            audit_lookup_by_event_id_and_duplicate_entries,
            audit_prefix_is_bytewise_and_ordered_across_values,
            audit_prefix_over_many_values,
            audit_time_bounds_with_out_of_order_times,
            audit_time_bounds_around_small_clock_steps,
            audit_records_from_ascending,
            audit_seq_at_finds_the_first_record_at_or_after,
            audit_digests_compare_and_swap,
            audit_prune_removes_oldest_records_and_their_lookups,
            whole_store_listings,
            audit_log_started_at_a_head_continues_it,
            copy_into_and_out_of_the_backend_keeps_everything);
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
            metadata: vec![("field".into(), "password".into())],
            in_progress: Some(RotationRun {
                token: "EXAMPLE2-90ab-cdef-fedc-ba987EXAMPLE".into(),
                started: 1_700_000_600_000,
                lease_until: 1_700_001_200_000,
                source: "scheduler".into(),
                incident_id: Some("SEC-20231114221320".into()),
                attempts: 2,
            }),
            last_result: Some(RotationResult {
                at: 1_699_000_000_000,
                succeeded: false,
                token: "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE".into(),
                failed_step: Some("testSecret".into()),
                message: Some("connection refused".into()),
                incident_id: None,
            }),
            failures: 1,
            retry_at: Some(1_700_000_660_000),
            previous_expires: None,
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
    store.write_secret(SecretWrite::Create(st.clone()), None).await.unwrap();
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
    crate::join_in_order(futures.into_iter().map(Box::pin).collect()).await
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
        .write_secret(
            SecretWrite::Update {
                expected_revision: 1,
                secret: bumped(&st.secret),
                new_versions: vec![version("bb", &[], 1000, vec![4]), version("early", &[], 999, vec![5])],
                stage_updates: vec![],
                deleted_versions: vec![],
            },
            None,
        )
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
    assert_eq!(
        store.write_secret(SecretWrite::Create(again.clone()), None).await.unwrap_err(),
        StoreError::AlreadyExists
    );
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
    assert_eq!(store.write_secret(SecretWrite::Create(same_arn), None).await.unwrap_err(), StoreError::AlreadyExists);
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
    assert_eq!(
        store.write_secret(SecretWrite::Create(again.clone()), None).await.unwrap_err(),
        StoreError::AlreadyExists
    );

    let other = state(REGION, "scheduled-later");
    create(store, &other).await;
    let mut scheduled = bumped(&other.secret);
    scheduled.deletion_date = Some(9000);
    store
        .write_secret(
            SecretWrite::Update {
                expected_revision: 1,
                secret: scheduled,
                new_versions: vec![],
                stage_updates: vec![],
                deleted_versions: vec![],
            },
            None,
        )
        .await
        .unwrap();
    let mut again2 = state(REGION, "scheduled-later");
    again2.secret.arn.push('Z');
    assert_eq!(store.write_secret(SecretWrite::Create(again2), None).await.unwrap_err(), StoreError::AlreadyExists);

    store.write_secret(SecretWrite::Delete { arn: st.secret.arn.clone(), expected_revision: 1 }, None).await.unwrap();
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
        .write_secret(
            SecretWrite::Update {
                expected_revision: 1,
                secret: s.clone(),
                new_versions: vec![v2.clone()],
                stage_updates: vec![("v1".into(), strings(&["AWSPREVIOUS"])), ("unlabel".into(), vec![])],
                deleted_versions: vec!["v0".into()],
            },
            None,
        )
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
        .write_secret(
            SecretWrite::Update {
                expected_revision: 2,
                secret: s3.clone(),
                new_versions: vec![],
                stage_updates: vec![],
                deleted_versions: vec!["v1".into(), "keep".into(), "unlabel".into()],
            },
            None,
        )
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
            .write_secret(
                SecretWrite::Update {
                    expected_revision: 1,
                    secret: s,
                    new_versions: vec![],
                    stage_updates: vec![],
                    deleted_versions: vec![],
                },
                None,
            )
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
            .write_secret(
                SecretWrite::Update {
                    expected_revision: expected,
                    secret: s,
                    new_versions: vec![version("vX", &["AWSCURRENT"], 3000, vec![1])],
                    stage_updates: vec![("v1".into(), vec![])],
                    deleted_versions: vec!["v1".into()],
                },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::Conflict, "expected_revision {expected}");
        assert_eq!(load(store, &st.secret.arn).await.unwrap(), st);
    }
    assert!(store.secrets_due_for_deletion(i64::MAX).await.unwrap().is_empty());

    // After a successful update the old revision is stale too.
    let s2 = bumped(&st.secret);
    store
        .write_secret(
            SecretWrite::Update {
                expected_revision: 1,
                secret: s2.clone(),
                new_versions: vec![],
                stage_updates: vec![],
                deleted_versions: vec![],
            },
            None,
        )
        .await
        .unwrap();
    let err = store
        .write_secret(
            SecretWrite::Update {
                expected_revision: 1,
                secret: s2.clone(),
                new_versions: vec![version("late", &[], 1, vec![])],
                stage_updates: vec![],
                deleted_versions: vec![],
            },
            None,
        )
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
        .write_secret(
            SecretWrite::Update {
                expected_revision: 1,
                secret: s2,
                new_versions: vec![version("v3", &[], 3000, vec![6])],
                stage_updates: vec![],
                deleted_versions: vec![],
            },
            None,
        )
        .await
        .unwrap();
    store.write_secret(SecretWrite::Delete { arn: st.secret.arn.clone(), expected_revision: 2 }, None).await.unwrap();
    assert!(load(store, &st.secret.arn).await.is_none());
    assert!(store.load_secret_by_name(REGION, "gone").await.unwrap().is_none());
    assert!(store.list_secrets(REGION).await.unwrap().is_empty());
    assert!(store.secrets_due_for_deletion(i64::MAX).await.unwrap().is_empty());

    // The name is free again, under a new ARN.
    let mut renamed = state(REGION, "gone");
    renamed.secret.arn = format!("{}-new", st.secret.arn);
    create(store, &renamed).await;
    assert_eq!(store.load_secret_by_name(REGION, "gone").await.unwrap().unwrap(), renamed);
    store
        .write_secret(SecretWrite::Delete { arn: renamed.secret.arn.clone(), expected_revision: 1 }, None)
        .await
        .unwrap();

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
            .write_secret(SecretWrite::Delete { arn: st.secret.arn.clone(), expected_revision: expected }, None)
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
    store
        .write_secret(SecretWrite::Delete { arn: deleted.secret.arn.clone(), expected_revision: 1 }, None)
        .await
        .unwrap();
    for st in [&never, &deleted] {
        for expected in [0, 1, 2] {
            let mut s = st.secret.clone();
            s.revision = expected + 1;
            let err = store
                .write_secret(
                    SecretWrite::Update {
                        expected_revision: expected,
                        secret: s,
                        new_versions: vec![version("v9", &["AWSCURRENT"], 1, vec![1])],
                        stage_updates: vec![],
                        deleted_versions: vec![],
                    },
                    None,
                )
                .await
                .unwrap_err();
            assert_eq!(err, StoreError::NotFound);
            let err = store
                .write_secret(SecretWrite::Delete { arn: st.secret.arn.clone(), expected_revision: expected }, None)
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
        .write_secret(
            SecretWrite::Update {
                expected_revision: 1,
                secret: bumped(&got.secret),
                new_versions: vec![],
                stage_updates: vec![],
                deleted_versions: vec![],
            },
            None,
        )
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
    store.write_secret(write(s.clone(), 1), None).await.unwrap();
    let mut restored = state(REGION, "restored");
    restored.secret.deletion_date = Some(50);
    create(store, &restored).await;
    let mut r = bumped(&restored.secret);
    r.deletion_date = None;
    store.write_secret(write(r, 1), None).await.unwrap();

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
        .write_secret(
            SecretWrite::Update {
                expected_revision: 1,
                secret: bumped(&st.secret),
                new_versions: vec![huge.clone()],
                stage_updates: vec![],
                deleted_versions: vec!["64k-1".into()],
            },
            None,
        )
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
            match store.write_secret(write, None).await {
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
    let results = race(N, |i| async move { store.write_secret(SecretWrite::Create(make(i)), None).await }).await;
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
    let results = race(N, |i| async move { store.write_secret(SecretWrite::Create(make(i)), None).await }).await;
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
    store.write_parameter(ParameterWrite::Create(p.clone()), None).await.unwrap();
    assert_eq!(store.load_parameter(REGION, &p.name).await.unwrap(), Some(p.clone()));
    assert!(store.load_parameter("eu-west-1", &p.name).await.unwrap().is_none());
    assert_eq!(
        store.write_parameter(ParameterWrite::Create(p.clone()), None).await.unwrap_err(),
        StoreError::AlreadyExists
    );
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
    assert_eq!(store.write_parameter(update(5, 6), None).await.unwrap_err(), StoreError::Conflict);
    assert!(matches!(store.write_parameter(update(1, 3), None).await.unwrap_err(), StoreError::InvalidWrite(_)));
    assert_eq!(store.load_parameter(REGION, &p.name).await.unwrap(), Some(p.clone()));
    store.write_parameter(update(1, 2), None).await.unwrap();
    let got = store.load_parameter(REGION, &p.name).await.unwrap().unwrap();
    assert_eq!(got.revision, 2);
    assert!(got.tags.is_empty());
    assert_eq!(got.versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(got.versions[0].labels, strings(&["old"]));
    assert_eq!(got.versions[1], parameter_version(2, &["prod"], vec![9; 70_000]));
    store
        .write_parameter(
            ParameterWrite::Update {
                expected_revision: 2,
                region: REGION.into(),
                name: p.name.clone(),
                revision: 3,
                tags: vec![],
                new_version: None,
                label_updates: vec![],
                dropped_versions: vec![1],
            },
            None,
        )
        .await
        .unwrap();
    let got = store.load_parameter(REGION, &p.name).await.unwrap().unwrap();
    assert_eq!(got.versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2]);
    let delete =
        |expected| ParameterWrite::Delete { region: REGION.into(), name: p.name.clone(), expected_revision: expected };
    assert_eq!(store.write_parameter(delete(2), None).await.unwrap_err(), StoreError::Conflict);
    store.write_parameter(delete(3), None).await.unwrap();
    assert!(store.load_parameter(REGION, &p.name).await.unwrap().is_none());
    assert_eq!(store.write_parameter(delete(3), None).await.unwrap_err(), StoreError::NotFound);
    // The name can be used again, with no versions left behind.
    store.write_parameter(ParameterWrite::Create(p.clone()), None).await.unwrap();
    assert_eq!(store.load_parameter(REGION, &p.name).await.unwrap(), Some(p));
}

pub async fn parameter_listing_by_path(store: &dyn Store) {
    for name in ["/amplify/a", "/amplify/b", "/amplify/app1/dev/x", "/amplify/app1/y", "/amplify0", "/other/z", "top"] {
        store.write_parameter(ParameterWrite::Create(parameter(REGION, name)), None).await.unwrap();
    }
    store.write_parameter(ParameterWrite::Create(parameter("eu-west-1", "/amplify/c")), None).await.unwrap();
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
        .write_parameter(
            ParameterWrite::Update {
                expected_revision: 1,
                region: REGION.into(),
                name: "/amplify/a".into(),
                revision: 2,
                tags: vec![],
                new_version: Some(parameter_version(2, &["prod"], vec![7, 7])),
                label_updates: vec![],
                dropped_versions: vec![],
            },
            None,
        )
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
        .write_secret(
            SecretWrite::Update {
                expected_revision: 1,
                secret: s,
                new_versions: vec![],
                stage_updates: vec![],
                deleted_versions: vec![],
            },
            None,
        )
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
    store.write_kms_key(KmsKeyWrite::Create(k.clone()), None).await.unwrap();
    assert_eq!(store.load_kms_key(REGION, &k.key.key_id).await.unwrap(), Some(k.clone()));
    assert!(store.load_kms_key("eu-west-1", &k.key.key_id).await.unwrap().is_none());
    assert_eq!(store.write_kms_key(KmsKeyWrite::Create(k.clone()), None).await.unwrap_err(), StoreError::AlreadyExists);
    let older = kms_key(REGION, "ffff0000-12ab-34cd-56ef-1234567890ab", 5);
    store.write_kms_key(KmsKeyWrite::Create(older.clone()), None).await.unwrap();
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
    assert_eq!(store.write_kms_key(update(7, stale), None).await.unwrap_err(), StoreError::Conflict);
    let mut skipping = rotated.clone();
    skipping.revision = 3;
    assert!(matches!(store.write_kms_key(update(1, skipping), None).await.unwrap_err(), StoreError::InvalidWrite(_)));
    store.write_kms_key(update(1, rotated.clone()), None).await.unwrap();
    let got = store.load_kms_key(REGION, &k.key.key_id).await.unwrap().unwrap();
    assert_eq!(got.key, rotated);
    assert_eq!(got.materials.iter().map(|m| m.version).collect::<Vec<_>>(), [1, 2]);
    // The same material version twice is a lost race, and changes nothing.
    let mut again = rotated.clone();
    again.revision = 3;
    assert_eq!(store.write_kms_key(update(2, again), None).await.unwrap_err(), StoreError::Conflict);
    assert_eq!(store.load_kms_key(REGION, &k.key.key_id).await.unwrap().unwrap(), got);
    let mut missing = rotated.clone();
    missing.key_id = "00000000-0000-0000-0000-000000000000".into();
    missing.revision = 2;
    assert_eq!(
        store
            .write_kms_key(KmsKeyWrite::Update { expected_revision: 1, key: missing, new_material: None }, None)
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
}

/// Aliases are unique per region, retarget and delete; deleting a key removes its aliases.
pub async fn kms_aliases_and_key_deletion(store: &dyn Store) {
    let k = kms_key(REGION, "aaaa0000-12ab-34cd-56ef-1234567890ab", 1);
    let other = kms_key(REGION, "bbbb0000-12ab-34cd-56ef-1234567890ab", 2);
    store.write_kms_key(KmsKeyWrite::Create(k.clone()), None).await.unwrap();
    store.write_kms_key(KmsKeyWrite::Create(other.clone()), None).await.unwrap();
    let alias = |name: &str, target: &str| AliasRecord {
        region: REGION.into(),
        alias_name: name.into(),
        target_key_id: target.into(),
        created: 3,
        last_updated: 3,
    };
    store.write_alias(AliasWrite::Create(alias("alias/b", &k.key.key_id)), None).await.unwrap();
    store.write_alias(AliasWrite::Create(alias("alias/a", &other.key.key_id)), None).await.unwrap();
    assert_eq!(
        store.write_alias(AliasWrite::Create(alias("alias/a", &k.key.key_id)), None).await.unwrap_err(),
        StoreError::AlreadyExists
    );
    let names: Vec<String> = store.list_aliases(REGION).await.unwrap().into_iter().map(|a| a.alias_name).collect();
    assert_eq!(names, ["alias/a", "alias/b"]);
    let mut moved = alias("alias/a", &k.key.key_id);
    moved.last_updated = 9;
    store.write_alias(AliasWrite::Update(moved.clone()), None).await.unwrap();
    assert_eq!(store.load_alias(REGION, "alias/a").await.unwrap(), Some(moved));
    assert_eq!(
        store.write_alias(AliasWrite::Update(alias("alias/none", &k.key.key_id)), None).await.unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        store
            .write_alias(AliasWrite::Delete { region: REGION.into(), alias_name: "alias/none".into() }, None)
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        store
            .write_kms_key(
                KmsKeyWrite::Delete { region: REGION.into(), key_id: k.key.key_id.clone(), expected_revision: 4 },
                None
            )
            .await
            .unwrap_err(),
        StoreError::Conflict
    );
    store
        .write_kms_key(
            KmsKeyWrite::Delete { region: REGION.into(), key_id: k.key.key_id.clone(), expected_revision: 1 },
            None,
        )
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
    store.write_parameter(ParameterWrite::Create(p.clone()), None).await.unwrap();
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
    let generation = store.write_iam(entities.iter().cloned().map(IamWrite::Create).collect(), None).await.unwrap();
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
    assert_eq!(store.write_iam(vec![IamWrite::Create(more.clone())], None).await.unwrap(), 2);
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
    assert_eq!(store.write_iam(batch("a", 5), None).await.unwrap(), 1);
    assert_eq!(store.iam_generation().await.unwrap(), 1);
    assert_eq!(store.write_iam(batch("b", 1), None).await.unwrap(), 2);
    assert_eq!(store.write_iam(batch("c", 40), None).await.unwrap(), 3);
    assert_eq!(store.write_iam(vec![], None).await.unwrap(), 4, "an empty batch is still a batch");
    assert_eq!(store.iam_generation().await.unwrap(), 4);
    assert_eq!(store.write_iam(batch("a", 1), None).await.unwrap_err(), StoreError::AlreadyExists);
    assert_eq!(store.iam_generation().await.unwrap(), 4, "a failed batch must not bump the generation");
    let (generation, entities) = store.load_iam().await.unwrap();
    assert_eq!((generation, entities.len()), (4, 46));
    let keys = vec![IamWrite::InsertAccessKey(iam_access_key("AKIAGENERATION000001", "a0", 1))];
    assert_eq!(store.write_iam(keys, None).await.unwrap(), 5, "access-key writes are IAM batches too");
    assert_eq!(store.load_iam().await.unwrap().0, 5);
}

/// A `Create` of a taken (kind, name) is `AlreadyExists` and keeps the stored entity; the same name in
/// another kind is a different entity; a new entity must start at revision 1.
pub async fn iam_create_of_a_taken_name_or_bad_revision_fails(store: &dyn Store) {
    let alice = iam_entity(IamKind::User, "alice", b"original");
    assert_eq!(store.write_iam(vec![IamWrite::Create(alice.clone())], None).await.unwrap(), 1);

    let dup = iam_entity(IamKind::User, "alice", b"impostor");
    assert_eq!(store.write_iam(vec![IamWrite::Create(dup)], None).await.unwrap_err(), StoreError::AlreadyExists);
    assert_eq!(store.load_iam().await.unwrap(), (1, vec![alice.clone()]));

    // Names compare exactly.
    let upper = iam_entity(IamKind::User, "Alice", b"case matters");
    assert_eq!(store.write_iam(vec![IamWrite::Create(upper.clone())], None).await.unwrap(), 2);

    let mut others = Vec::new();
    for kind in [IamKind::Group, IamKind::Role, IamKind::Policy, IamKind::MfaDevice] {
        others.push(iam_entity(kind, "alice", kind.as_str().as_bytes()));
    }
    assert_eq!(store.write_iam(others.iter().cloned().map(IamWrite::Create).collect(), None).await.unwrap(), 3);
    let mut all = vec![alice.clone(), upper];
    all.extend(others);
    let all = iam_sorted(all);
    assert_eq!(store.load_iam().await.unwrap(), (3, all.clone()));

    for revision in [0, 2, 7] {
        let bad = IamEntityRecord { revision, ..iam_entity(IamKind::Role, "new-role", b"{}") };
        let err = store.write_iam(vec![IamWrite::Create(bad)], None).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidWrite(_)), "revision {revision}: {err:?}");
    }
    // The caller bug is reported first, even on a taken name.
    let taken_bad = IamEntityRecord { revision: 3, ..alice };
    assert!(matches!(
        store.write_iam(vec![IamWrite::Create(taken_bad)], None).await.unwrap_err(),
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
    store.write_iam(vec![IamWrite::Create(alice.clone()), IamWrite::Create(group.clone())], None).await.unwrap();
    let before = store.load_iam().await.unwrap();
    assert_eq!(before.0, 1);

    let stale = IamWrite::Update {
        expected_revision: 2,
        record: IamEntityRecord { revision: 3, ..iam_next(&alice, b"stale") },
    };
    assert_eq!(store.write_iam(vec![stale], None).await.unwrap_err(), StoreError::Conflict);

    for revision in [1, 3, 0] {
        let skipping = IamWrite::Update {
            expected_revision: 1,
            record: IamEntityRecord { revision, ..iam_next(&alice, b"skipping") },
        };
        let err = store.write_iam(vec![skipping], None).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidWrite(_)), "revision {revision}: {err:?}");
    }
    // The contract violation is reported even for an entity that does not exist.
    let missing_and_skipping = IamWrite::Update {
        expected_revision: 1,
        record: IamEntityRecord { revision: 5, ..iam_entity(IamKind::User, "nobody", b"") },
    };
    assert!(matches!(
        store.write_iam(vec![missing_and_skipping], None).await.unwrap_err(),
        StoreError::InvalidWrite(_)
    ));

    for missing in [
        iam_entity(IamKind::User, "nobody", b"x"),
        iam_entity(IamKind::User, "ALICE", b"x"),
        iam_entity(IamKind::Role, "alice", b"x"),
    ] {
        let err = store.write_iam(vec![iam_update(&missing, b"y")], None).await.unwrap_err();
        assert_eq!(err, StoreError::NotFound, "{missing:?}");
        // Whatever the expected revision says.
        let far =
            IamWrite::Update { expected_revision: 41, record: IamEntityRecord { revision: 42, ..missing.clone() } };
        assert_eq!(store.write_iam(vec![far], None).await.unwrap_err(), StoreError::NotFound, "{missing:?}");
    }
    assert_eq!(store.load_iam().await.unwrap(), before, "failed updates must change nothing");

    let v2 = iam_next(&alice, b"v2");
    assert_eq!(store.write_iam(vec![iam_update(&alice, b"v2")], None).await.unwrap(), 2);
    assert_eq!(store.load_iam().await.unwrap(), (2, vec![v2.clone(), group.clone()]));
    // The same update again is now stale.
    assert_eq!(store.write_iam(vec![iam_update(&alice, b"v2 again")], None).await.unwrap_err(), StoreError::Conflict);
    let v3 = iam_next(&v2, b"v3");
    assert_eq!(store.write_iam(vec![iam_update(&v2, b"v3")], None).await.unwrap(), 3);
    assert_eq!(store.load_iam().await.unwrap(), (3, vec![v3, group]), "the group of the same name is untouched");
}

/// Deletes are a compare-and-swap too: a stale revision is `Conflict`, a missing entity `NotFound`; a
/// deleted name can be created again.
pub async fn iam_delete_is_compare_and_swap(store: &dyn Store) {
    let alice = iam_entity(IamKind::User, "alice", b"user");
    let group = iam_entity(IamKind::Group, "alice", b"group");
    store.write_iam(vec![IamWrite::Create(alice.clone()), IamWrite::Create(group.clone())], None).await.unwrap();
    let before = store.load_iam().await.unwrap();

    let stale = IamWrite::Delete { kind: IamKind::User, name: "alice".into(), expected_revision: 2 };
    assert_eq!(store.write_iam(vec![stale], None).await.unwrap_err(), StoreError::Conflict);
    let zero = IamWrite::Delete { kind: IamKind::User, name: "alice".into(), expected_revision: 0 };
    assert_eq!(store.write_iam(vec![zero], None).await.unwrap_err(), StoreError::Conflict);
    for (kind, name, expected_revision) in
        [(IamKind::User, "bob", 1), (IamKind::Role, "alice", 1), (IamKind::User, "alice ", 1), (IamKind::User, "x", 9)]
    {
        let missing = IamWrite::Delete { kind, name: name.into(), expected_revision };
        assert_eq!(store.write_iam(vec![missing], None).await.unwrap_err(), StoreError::NotFound, "{kind:?} {name:?}");
    }
    assert_eq!(store.load_iam().await.unwrap(), before, "failed deletes must change nothing");

    assert_eq!(store.write_iam(vec![iam_delete(&alice)], None).await.unwrap(), 2);
    assert_eq!(store.load_iam().await.unwrap(), (2, vec![group.clone()]));
    assert_eq!(store.write_iam(vec![iam_delete(&alice)], None).await.unwrap_err(), StoreError::NotFound);

    let again = iam_entity(IamKind::User, "alice", b"reborn");
    assert_eq!(store.write_iam(vec![IamWrite::Create(again.clone())], None).await.unwrap(), 3);
    assert_eq!(store.load_iam().await.unwrap(), (3, vec![again, group]));
}

/// The writes of a batch apply in order and see each other.
pub async fn iam_writes_within_a_batch_apply_in_order(store: &dyn Store) {
    let user = iam_entity(IamKind::User, "u", b"one");
    let group = iam_entity(IamKind::Group, "g", b"short-lived");
    let role = iam_entity(IamKind::Role, "r", b"{}");
    let key = iam_access_key("AKIABATCHORDER000001", "u", 10);
    let generation = store
        .write_iam(
            vec![
                IamWrite::Create(user.clone()),
                iam_update(&user, b"two"),
                IamWrite::Create(group.clone()),
                iam_delete(&group),
                IamWrite::Create(role.clone()),
                IamWrite::InsertAccessKey(key.clone()),
                IamWrite::AccessKeyStatus { access_key_id: key.access_key_id.clone(), status: "Inactive".into() },
            ],
            None,
        )
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
        .write_iam(
            vec![
                IamWrite::DeleteAccessKey { access_key_id: key.access_key_id.clone() },
                IamWrite::InsertAccessKey(replacement.clone()),
            ],
            None,
        )
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
        .write_iam(
            vec![
                IamWrite::Create(alice.clone()),
                IamWrite::Create(group.clone()),
                IamWrite::InsertAccessKey(k0.clone()),
                IamWrite::InsertAccessKey(k1.clone()),
            ],
            None,
        )
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
        let err = store.write_iam(batch, None).await.unwrap_err();
        assert!(expected_error(&err), "case {i} ({last:?}): unexpected error {err:?}");
        assert_eq!(iam_snapshot(store, &users, &ids).await, before, "case {i} ({last:?}) left a trace");
    }
    // A batch failing on its first write changes nothing either.
    let mut first_fails = vec![iam_delete(&IamEntityRecord { revision: 5, ..alice.clone() })];
    first_fails.extend(prefix());
    assert_eq!(store.write_iam(first_fails, None).await.unwrap_err(), StoreError::Conflict);
    assert_eq!(iam_snapshot(store, &users, &ids).await, before);

    // The prefix on its own is fine: the failures above were the last write's alone.
    assert_eq!(store.write_iam(prefix(), None).await.unwrap(), 2);
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
            None,
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
    assert_eq!(
        store.write_iam(vec![IamWrite::InsertAccessKey(dup)], None).await.unwrap_err(),
        StoreError::AlreadyExists
    );
    assert_eq!(store.get_access_key(&k_bob.access_key_id).await.unwrap(), Some(k_bob.clone()));
    assert!(store.list_access_keys("mallory").await.unwrap().is_empty());
    assert_eq!(store.iam_generation().await.unwrap(), 1);

    // Status changes touch only the status.
    let status = |k: &AccessKeyRecord, s: &str| IamWrite::AccessKeyStatus {
        access_key_id: k.access_key_id.clone(),
        status: s.into(),
    };
    assert_eq!(store.write_iam(vec![status(&k_early, "Inactive")], None).await.unwrap(), 2);
    let early_inactive = AccessKeyRecord { status: "Inactive".into(), ..k_early.clone() };
    assert_eq!(store.get_access_key(&k_early.access_key_id).await.unwrap(), Some(early_inactive.clone()));
    assert_eq!(
        store.list_access_keys("alice").await.unwrap(),
        vec![early_inactive.clone(), k_tie.clone(), k_plain.clone(), k_late.clone()]
    );
    // A key stored outside a batch is changed the same way.
    assert_eq!(store.write_iam(vec![status(&k_plain, "Inactive")], None).await.unwrap(), 3);
    let k_plain = AccessKeyRecord { status: "Inactive".into(), ..k_plain };
    assert_eq!(store.get_access_key(&k_plain.access_key_id).await.unwrap(), Some(k_plain.clone()));
    assert_eq!(store.write_iam(vec![status(&k_early, "Active")], None).await.unwrap(), 4);
    assert_eq!(store.get_access_key(&k_early.access_key_id).await.unwrap(), Some(k_early.clone()));
    let missing = iam_access_key("AKIANOSUCHKEY0000000", "alice", 1);
    assert_eq!(store.write_iam(vec![status(&missing, "Inactive")], None).await.unwrap_err(), StoreError::NotFound);
    let lower = AccessKeyRecord { access_key_id: k_late.access_key_id.to_lowercase(), ..k_late.clone() };
    assert_eq!(store.write_iam(vec![status(&lower, "Inactive")], None).await.unwrap_err(), StoreError::NotFound);
    assert!(store.get_access_key(&missing.access_key_id).await.unwrap().is_none(), "a status change never creates");

    // Deletes remove only the named key.
    let delete = |k: &AccessKeyRecord| IamWrite::DeleteAccessKey { access_key_id: k.access_key_id.clone() };
    assert_eq!(store.write_iam(vec![delete(&k_late)], None).await.unwrap(), 5);
    assert!(store.get_access_key(&k_late.access_key_id).await.unwrap().is_none());
    assert_eq!(store.list_access_keys("alice").await.unwrap(), vec![k_early.clone(), k_tie.clone(), k_plain.clone()]);
    assert_eq!(store.write_iam(vec![delete(&k_late)], None).await.unwrap_err(), StoreError::NotFound);
    assert_eq!(store.write_iam(vec![delete(&missing)], None).await.unwrap_err(), StoreError::NotFound);
    assert_eq!(store.write_iam(vec![delete(&k_plain), delete(&k_tie)], None).await.unwrap(), 6);
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
    store.write_iam(entities.iter().cloned().map(IamWrite::Create).collect(), None).await.unwrap();
    let expected = iam_sorted(entities.clone());
    assert_eq!(store.load_iam().await.unwrap(), (1, expected.clone()));

    // Updates: small to large, large to larger, large to empty.
    let find = |name: &str| entities.iter().find(|e| e.name == name).unwrap().clone();
    let larger = bytes(150 * 1024 + 1, 6);
    let from_empty = bytes(100 * 1024, 7);
    store
        .write_iam(
            vec![
                iam_update(&find("empty"), &from_empty),
                iam_update(&find("large"), &larger),
                iam_update(&find("not-utf8"), b""),
            ],
            None,
        )
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
            .write_iam(
                vec![
                    IamWrite::Create(iam_entity(IamKind::User, &format!("user-{i:02}"), b"{}")),
                    IamWrite::InsertAccessKey(iam_access_key(&format!("AKIARACE{i:012}"), &format!("user-{i:02}"), 1)),
                ],
                None,
            )
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
    let base = store.write_iam(vec![IamWrite::Create(shared.clone())], None).await.unwrap();
    let results = race(RACERS, |i| {
        let shared = shared.clone();
        async move { store.write_iam(vec![iam_update(&shared, format!("winner {i}").as_bytes())], None).await }
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

// ---- The audit log.

/// An event with a body that names it, so a swapped or truncated body cannot pass.
fn audit_event(id: &str, time_ms: EpochMillis, lookup: &[(LookupAttribute, &str)]) -> AuditAppend {
    AuditAppend {
        event_id: id.into(),
        time_ms,
        body: format!(r#"{{"eventID":"{id}","eventTime":{time_ms}}}"#).into_bytes(),
        lookup: lookup.iter().map(|(a, v)| (*a, v.to_string())).collect(),
    }
}

fn audit_query(lookup: Option<(LookupAttribute, ValueMatch)>, limit: usize) -> AuditQuery {
    AuditQuery { lookup, start_ms: None, end_ms: None, before_seq: None, limit }
}

fn exact(attr: LookupAttribute, value: &str) -> Option<(LookupAttribute, ValueMatch)> {
    Some((attr, ValueMatch::Exact(value.into())))
}

fn prefix(attr: LookupAttribute, value: &str) -> Option<(LookupAttribute, ValueMatch)> {
    Some((attr, ValueMatch::Prefix(value.into())))
}

/// Every kept record, oldest first.
async fn audit_all(store: &dyn Store) -> Vec<AuditRecord> {
    store.audit_records_from(0, usize::MAX).await.unwrap()
}

fn audit_seqs(records: &[AuditRecord]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

fn audit_ids(records: &[AuditRecord]) -> Vec<&str> {
    records.iter().map(|r| r.event_id.as_str()).collect()
}

fn hash_of(r: &AuditRecord) -> [u8; 32] {
    record_hash(r.seq, &r.prev_hash, r.time_ms, &r.event_id, &r.body)
}

/// The kept records form one chain ending at `head`: consecutive seqs, each record's `prev_hash` the
/// recomputed hash of its predecessor (GENESIS before seq 1), the last one's hash the head's.
fn assert_chain(records: &[AuditRecord], head: AuditHead) {
    let Some(last) = records.last() else { return };
    if records[0].seq == 1 {
        assert_eq!(records[0].prev_hash, GENESIS, "seq 1 must follow GENESIS");
    }
    for pair in records.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1, "gap in the chain after seq {}", pair[0].seq);
        assert_eq!(pair[1].prev_hash, hash_of(&pair[0]), "broken link at seq {}", pair[1].seq);
    }
    assert_eq!(head, AuditHead { seq: last.seq, hash: hash_of(last) }, "the head is not the newest record");
}

/// What a query must return, from everything appended ((seq, event), oldest first): newest first.
fn audit_reference(all: &[(u64, AuditAppend)], q: &AuditQuery) -> Vec<u64> {
    all.iter()
        .rev()
        .filter(|(seq, e)| {
            let hit = |v: &str| match &q.lookup {
                Some((_, ValueMatch::Exact(x))) => v == x,
                Some((_, ValueMatch::Prefix(p))) => v.starts_with(p.as_str()),
                None => true,
            };
            q.before_seq.is_none_or(|b| *seq < b)
                && q.start_ms.is_none_or(|s| e.time_ms >= s)
                && q.end_ms.is_none_or(|x| e.time_ms <= x)
                && match &q.lookup {
                    None => true,
                    Some((attr, _)) => {
                        (*attr == A::EventId && hit(&e.event_id)) || e.lookup.iter().any(|(a, v)| a == attr && hit(v))
                    }
                }
        })
        .take(q.limit)
        .map(|(seq, _)| *seq)
        .collect()
}

/// Appends `events` in one call and returns them numbered, for [`audit_reference`].
async fn audit_append_numbered(store: &dyn Store, events: Vec<AuditAppend>) -> Vec<(u64, AuditAppend)> {
    let first = store.audit_head().await.unwrap().seq + 1;
    store.append_audit(Arc::new(events.clone())).await.unwrap();
    (first..).zip(events).collect()
}

/// The query answers what the reference says, with the right records.
async fn assert_query(store: &dyn Store, all: &[(u64, AuditAppend)], q: AuditQuery) {
    let got = store.query_audit(q.clone()).await.unwrap();
    assert_eq!(audit_seqs(&got), audit_reference(all, &q), "{q:?}");
    for r in &got {
        let (_, e) = all.iter().find(|(seq, _)| *seq == r.seq).unwrap();
        assert_eq!((&r.event_id, r.time_ms, &r.body), (&e.event_id, e.time_ms, &e.body), "{q:?}");
    }
}

/// Paging with `before_seq` (pages of `page`) visits exactly what one unlimited query returns.
async fn assert_paged(store: &dyn Store, all: &[(u64, AuditAppend)], mut q: AuditQuery, page: usize) {
    let mut everything = q.clone();
    everything.limit = usize::MAX;
    let expected = audit_reference(all, &everything);
    let mut got = Vec::new();
    q.limit = page;
    loop {
        let records = store.query_audit(q.clone()).await.unwrap();
        assert!(records.len() <= page);
        got.extend(audit_seqs(&records));
        match records.last() {
            Some(last) if records.len() == page => q.before_seq = Some(last.seq),
            _ => break,
        }
    }
    assert_eq!(got, expected, "paged {q:?}");
}

/// A log never written: head (0, GENESIS), nothing kept or found, no digest; pruning or an empty append
/// changes nothing.
pub async fn audit_log_starts_empty(store: &dyn Store) {
    let genesis = AuditHead { seq: 0, hash: GENESIS };
    assert_eq!(store.audit_head().await.unwrap(), genesis);
    assert_eq!(store.audit_oldest_seq().await.unwrap(), None);
    assert!(audit_all(store).await.is_empty());
    assert!(store.query_audit(audit_query(None, 10)).await.unwrap().is_empty());
    assert!(store.query_audit(audit_query(exact(A::EventId, "x"), 10)).await.unwrap().is_empty());
    assert!(store.query_audit(audit_query(prefix(A::ResourceName, ""), 10)).await.unwrap().is_empty());
    assert_eq!(store.audit_seq_at(EpochMillis::MIN).await.unwrap(), None);
    assert_eq!(store.latest_audit_digest().await.unwrap(), None);
    assert!(store.audit_digests(0, 10).await.unwrap().is_empty());
    assert_eq!(store.append_audit(Arc::new(vec![])).await.unwrap(), genesis);
    assert_eq!(store.prune_audit(u64::MAX, u64::MAX, 100).await.unwrap(), 0);
    assert_eq!(store.audit_head().await.unwrap(), genesis);
    // Writes without events leave the log alone.
    create(store, &state(REGION, "no-event")).await;
    assert_eq!(store.audit_head().await.unwrap(), genesis);
}

/// An empty append returns the head and appends nothing.
pub async fn audit_empty_append_is_a_no_op(store: &dyn Store) {
    let head = store.append_audit(Arc::new(vec![audit_event("only", 1, &[])])).await.unwrap();
    assert_eq!(head.seq, 1);
    assert_eq!(store.append_audit(Arc::new(vec![])).await.unwrap(), head);
    assert_eq!(store.audit_head().await.unwrap(), head);
    assert_eq!(audit_ids(&audit_all(store).await), ["only"]);
}

/// Records are numbered 1, 2, 3, … across calls, each linked to its predecessor by `record_hash`, and
/// come back exactly as appended (binary and large bodies, odd ids, times in any order); every
/// append returns the head after it.
pub async fn audit_records_chain_and_round_trip(store: &dyn Store) {
    let mut binary = audit_event("binary-body", -5, &[]);
    binary.body = vec![0, 255, 0, b'\n', 0x80];
    let mut large = audit_event("large-body", 1_700_000_000_000, &[(A::Username, "alice")]);
    large.body = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let calls = vec![
        vec![audit_event("e1", 1_000, &[(A::EventName, "CreateSecret")])],
        vec![audit_event("e2", 1_001, &[]), audit_event("e3-ünïcødé ✓", 999, &[(A::ReadOnly, "false")])],
        vec![binary, large, audit_event("", 0, &[])],
    ];
    let mut heads = Vec::new();
    for call in &calls {
        heads.push(store.append_audit(Arc::new(call.clone())).await.unwrap());
    }
    let records = audit_all(store).await;
    let appended: Vec<&AuditAppend> = calls.iter().flatten().collect();
    assert_eq!(audit_seqs(&records), (1..=6).collect::<Vec<_>>());
    for (r, e) in records.iter().zip(&appended) {
        assert_eq!((&r.event_id, r.time_ms, &r.body), (&e.event_id, e.time_ms, &e.body), "seq {}", r.seq);
    }
    let head = store.audit_head().await.unwrap();
    assert_chain(&records, head);
    assert_eq!(heads[0], AuditHead { seq: 1, hash: hash_of(&records[0]) });
    assert_eq!(heads[1], AuditHead { seq: 3, hash: hash_of(&records[2]) });
    assert_eq!(heads[2], head);
    assert_eq!(store.audit_oldest_seq().await.unwrap(), Some(1));
}

/// The events of one call are chained in the order given, whatever their times.
pub async fn audit_append_keeps_the_order_of_a_call(store: &dyn Store) {
    let events: Vec<AuditAppend> = (0..50).map(|i| audit_event(&format!("ev-{i:02}"), 1_000 - i, &[])).collect();
    let head = store.append_audit(Arc::new(events.clone())).await.unwrap();
    assert_eq!(head.seq, 50);
    let records = audit_all(store).await;
    assert_eq!(audit_ids(&records), events.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>());
    assert_chain(&records, head);
}

/// A write's event is appended with the write or not at all: every failing write (taken name, stale
/// revision, missing secret, broken contract) leaves the chain untouched and consumes no seq.
pub async fn audit_event_commits_with_its_write_or_not_at_all(store: &dyn Store) {
    let st = state(REGION, "audited");
    store.write_secret(SecretWrite::Create(st.clone()), Some(audit_event("create", 1, &[]))).await.unwrap();
    let head = store.audit_head().await.unwrap();
    assert_eq!(head.seq, 1);

    let mut taken = state(REGION, "audited");
    taken.secret.arn = format!("{}-2", taken.secret.arn);
    let stale = SecretWrite::Update {
        expected_revision: 5,
        secret: SecretRecord { revision: 6, ..st.secret.clone() },
        new_versions: vec![],
        stage_updates: vec![],
        deleted_versions: vec![],
    };
    let broken = SecretWrite::Update {
        expected_revision: 1,
        secret: SecretRecord { revision: 5, ..st.secret.clone() },
        new_versions: vec![],
        stage_updates: vec![],
        deleted_versions: vec![],
    };
    let missing = SecretWrite::Delete { arn: arn(REGION, "missing"), expected_revision: 1 };
    let failing: [(SecretWrite, ErrorCheck); 4] = [
        (SecretWrite::Create(taken), |e| *e == StoreError::AlreadyExists),
        (stale, |e| *e == StoreError::Conflict),
        (missing, |e| *e == StoreError::NotFound),
        (broken, |e| matches!(e, StoreError::InvalidWrite(_))),
    ];
    for (i, (write, expected)) in failing.into_iter().enumerate() {
        let err = store.write_secret(write, Some(audit_event(&format!("failed-{i}"), 2, &[]))).await.unwrap_err();
        assert!(expected(&err), "write {i}: {err:?}");
        assert_eq!(store.audit_head().await.unwrap(), head, "failed write {i} moved the chain");
    }
    assert_eq!(audit_ids(&audit_all(store).await), ["create"]);
    assert!(store.query_audit(audit_query(prefix(A::EventId, "failed"), 10)).await.unwrap().is_empty());

    let update = SecretWrite::Update {
        expected_revision: 1,
        secret: bumped(&st.secret),
        new_versions: vec![],
        stage_updates: vec![],
        deleted_versions: vec![],
    };
    store.write_secret(update, Some(audit_event("update", 3, &[]))).await.unwrap();
    // A write without an event appends nothing.
    let quiet = SecretWrite::Update {
        expected_revision: 2,
        secret: bumped(&bumped(&st.secret)),
        new_versions: vec![],
        stage_updates: vec![],
        deleted_versions: vec![],
    };
    store.write_secret(quiet, None).await.unwrap();
    let records = audit_all(store).await;
    assert_eq!(audit_ids(&records), ["create", "update"]);
    assert_eq!(audit_seqs(&records), [1, 2], "a failed write consumed a seq");
    assert_chain(&records, store.audit_head().await.unwrap());
    assert_eq!(load(store, &st.secret.arn).await.unwrap().secret.revision, 3);
}

/// Every write method takes its event: appended when the write succeeds, not when it fails.
pub async fn audit_events_ride_on_every_write_method(store: &dyn Store) {
    let ev = |id: &str| Some(audit_event(id, 10, &[(A::EventSource, "test")]));
    let p = parameter(REGION, "/audited/param");
    store.write_parameter(ParameterWrite::Create(p.clone()), ev("parameter")).await.unwrap();
    let err = store.write_parameter(ParameterWrite::Create(p), ev("parameter-again")).await.unwrap_err();
    assert_eq!(err, StoreError::AlreadyExists);

    let k = kms_key(REGION, "cccc0000-12ab-34cd-56ef-1234567890ab", 1);
    store.write_kms_key(KmsKeyWrite::Create(k.clone()), ev("key")).await.unwrap();
    let stale = KmsKeyWrite::Update {
        expected_revision: 7,
        key: KmsKeyRecord { revision: 8, ..k.key.clone() },
        new_material: None,
    };
    assert_eq!(store.write_kms_key(stale, ev("key-stale")).await.unwrap_err(), StoreError::Conflict);

    let alias = AliasRecord {
        region: REGION.into(),
        alias_name: "alias/audited".into(),
        target_key_id: k.key.key_id.clone(),
        created: 1,
        last_updated: 1,
    };
    store.write_alias(AliasWrite::Create(alias.clone()), ev("alias")).await.unwrap();
    let missing = AliasWrite::Update(AliasRecord { alias_name: "alias/missing".into(), ..alias });
    assert_eq!(store.write_alias(missing, ev("alias-missing")).await.unwrap_err(), StoreError::NotFound);

    let alice = iam_entity(IamKind::User, "alice", b"{}");
    assert_eq!(store.write_iam(vec![IamWrite::Create(alice.clone())], ev("iam")).await.unwrap(), 1);
    let err = store.write_iam(vec![IamWrite::Create(alice)], ev("iam-again")).await.unwrap_err();
    assert_eq!(err, StoreError::AlreadyExists);
    assert_eq!(store.iam_generation().await.unwrap(), 1);

    let st = state(REGION, "audited-secret");
    store.write_secret(SecretWrite::Create(st.clone()), ev("secret")).await.unwrap();
    let delete = SecretWrite::Delete { arn: st.secret.arn.clone(), expected_revision: 1 };
    store.write_secret(delete, ev("secret-delete")).await.unwrap();

    let records = audit_all(store).await;
    assert_eq!(audit_ids(&records), ["parameter", "key", "alias", "iam", "secret", "secret-delete"]);
    assert_chain(&records, store.audit_head().await.unwrap());
    let by_source = store.query_audit(audit_query(exact(A::EventSource, "test"), 100)).await.unwrap();
    assert_eq!(audit_seqs(&by_source), [6, 5, 4, 3, 2, 1]);
}

/// Eight callers appending 50 events each (25 calls of two) at once: one chain without gaps, every
/// event exactly once, each call's two events adjacent and each caller's events in its order.
pub async fn audit_concurrent_appenders_form_one_chain(store: &dyn Store) {
    const TASKS: usize = 8;
    const CALLS: usize = 25;
    race(TASKS, |t| async move {
        for c in 0..CALLS {
            let pair = vec![
                audit_event(&format!("t{t}-c{c:02}-a"), c as EpochMillis, &[(A::Username, &format!("task-{t}"))]),
                audit_event(&format!("t{t}-c{c:02}-b"), c as EpochMillis, &[(A::Username, &format!("task-{t}"))]),
            ];
            let head = store.append_audit(Arc::new(pair)).await.unwrap();
            assert!(head.seq >= 2);
        }
    })
    .await;
    let records = audit_all(store).await;
    assert_eq!(records.len(), TASKS * CALLS * 2);
    assert_eq!(records[0].seq, 1);
    assert_chain(&records, store.audit_head().await.unwrap());
    for (i, r) in records.iter().enumerate() {
        if r.event_id.ends_with("-a") {
            let partner = r.event_id.replace("-a", "-b");
            assert_eq!(records[i + 1].event_id, partner, "a call's events were split");
        }
    }
    for t in 0..TASKS {
        let mine: Vec<&str> = audit_ids(&records).into_iter().filter(|id| id.starts_with(&format!("t{t}-"))).collect();
        let expected: Vec<String> =
            (0..CALLS).flat_map(|c| [format!("t{t}-c{c:02}-a"), format!("t{t}-c{c:02}-b")]).collect();
        assert_eq!(mine, expected, "task {t}");
        let found = store.query_audit(audit_query(exact(A::Username, &format!("task-{t}")), 1000)).await.unwrap();
        assert_eq!(found.len(), CALLS * 2);
    }
}

/// Callers racing compare-and-swap updates of one secret, each with its event, retrying on
/// `Conflict`: only the winners' events are chained, without gaps, in the order the updates applied.
pub async fn audit_concurrent_writes_with_events_leave_no_gaps(store: &dyn Store) {
    const TASKS: usize = 8;
    const WRITES_PER_TASK: usize = 3;
    let st = state(REGION, "audited-race");
    store.write_secret(SecretWrite::Create(st.clone()), Some(audit_event("rev-1", 0, &[]))).await.unwrap();
    let arn = st.secret.arn.as_str();
    race(TASKS, |t| async move {
        let mut done = 0;
        while done < WRITES_PER_TASK {
            let cur = store.load_secret_by_arn(arn).await.unwrap().unwrap();
            let next = bumped(&cur.secret);
            let write = SecretWrite::Update {
                expected_revision: cur.secret.revision,
                secret: next.clone(),
                new_versions: vec![],
                stage_updates: vec![],
                deleted_versions: vec![],
            };
            // The event names the revision it records: the chain must list revisions in order.
            let event = audit_event(&format!("rev-{}", next.revision), t as EpochMillis, &[(A::ResourceName, arn)]);
            match store.write_secret(write, Some(event)).await {
                Ok(()) => done += 1,
                Err(StoreError::Conflict) => {}
                Err(e) => panic!("task {t}: {e:?}"),
            }
        }
    })
    .await;
    let total = 1 + TASKS * WRITES_PER_TASK;
    let records = audit_all(store).await;
    assert_chain(&records, store.audit_head().await.unwrap());
    assert_eq!(audit_ids(&records), (1..=total).map(|r| format!("rev-{r}")).collect::<Vec<_>>());
    assert_eq!(load(store, arn).await.unwrap().secret.revision, total as u64);
}

/// A small log where every attribute has a few values sharing prefixes.
fn attribute_events() -> Vec<AuditAppend> {
    const NAMES: [&str; 4] = ["GetSecretValue", "PutSecretValue", "GetParameter", "Decrypt"];
    const SOURCES: [&str; 3] = ["secretsmanager.amazonaws.com", "ssm.amazonaws.com", "kms.amazonaws.com"];
    const USERS: [&str; 3] = ["alice", "alan", "bob"];
    const KEYS: [&str; 3] = ["AKIA0000000000000001", "AKIA0000000000000002", "ASIA0000000000000009"];
    const RESOURCES: [&str; 4] = [
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-AbC123",
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/api-XyZ789",
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:dev/x-QqQ000",
        "arn:aws:kms:us-east-1:000000000000:key/1234",
    ];
    const TYPES: [&str; 2] = ["AWS::SecretsManager::Secret", "AWS::KMS::Key"];
    (0..60usize)
        .map(|i| {
            let mut lookup = vec![
                (A::EventName, NAMES[i % 4]),
                (A::EventSource, SOURCES[i % 3]),
                (A::ReadOnly, if i % 2 == 0 { "true" } else { "false" }),
                (A::Username, USERS[(i / 2) % 3]),
                (A::AccessKeyId, KEYS[(i / 3) % 3]),
                (A::ResourceName, RESOURCES[i % 4]),
                (A::ResourceType, TYPES[i % 2]),
            ];
            if i % 5 == 0 {
                // Two resources, both under the same prefix: found once by that prefix.
                lookup.push((A::ResourceName, RESOURCES[(i + 1) % 4]));
            }
            if i % 7 == 0 {
                lookup.retain(|(a, _)| *a != A::Username); // not every event has every attribute
            }
            audit_event(&format!("evt-{i:03}"), 1_000 + i as EpochMillis, &lookup)
        })
        .collect()
}

/// Every attribute can be looked up by exact value and by prefix, newest first.
pub async fn audit_query_by_every_attribute(store: &dyn Store) {
    let all = audit_append_numbered(store, attribute_events()).await;
    let mut cases: Vec<Option<(LookupAttribute, ValueMatch)>> = Vec::new();
    for attr in LookupAttribute::ALL {
        let mut values: Vec<String> =
            all.iter().flat_map(|(_, e)| e.lookup.iter().filter(|(a, _)| *a == attr).map(|(_, v)| v.clone())).collect();
        if attr == A::EventId {
            values = all.iter().map(|(_, e)| e.event_id.clone()).take(3).collect();
        }
        values.sort();
        values.dedup();
        assert!(!values.is_empty(), "{attr:?}");
        for v in &values {
            cases.push(exact(attr, v));
            cases.push(prefix(attr, &v[..v.len() / 2]));
            cases.push(prefix(attr, v));
        }
        cases.push(exact(attr, "no such value"));
        cases.push(prefix(attr, "no such"));
        cases.push(prefix(attr, ""));
    }
    for lookup in [
        prefix(A::EventName, "Get"),
        prefix(A::Username, "al"),
        prefix(A::AccessKeyId, "AKIA"),
        prefix(A::ResourceName, "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/"),
        prefix(A::ResourceName, "arn:aws:"),
        exact(A::ReadOnly, "true"),
    ] {
        cases.push(lookup);
    }
    for lookup in cases {
        assert_query(store, &all, audit_query(lookup.clone(), 1000)).await;
        assert_query(store, &all, audit_query(lookup, 3)).await;
    }
}

/// Pages follow `before_seq` newest first, with and without a lookup, through the whole log.
pub async fn audit_query_pages_newest_first(store: &dyn Store) {
    let all = audit_append_numbered(store, attribute_events()).await;
    for lookup in [
        None,
        exact(A::Username, "alice"),
        exact(A::ResourceName, "arn:aws:kms:us-east-1:000000000000:key/1234"),
        prefix(A::ResourceName, "arn:aws:secretsmanager:"),
        prefix(A::EventId, "evt-0"),
    ] {
        for page in [1, 7, 50] {
            assert_paged(store, &all, audit_query(lookup.clone(), page), page).await;
        }
    }
    // A cursor below everything, or at the very first record, ends the listing.
    let mut q = audit_query(None, 10);
    q.before_seq = Some(1);
    assert!(store.query_audit(q.clone()).await.unwrap().is_empty());
    q.before_seq = Some(0);
    assert!(store.query_audit(q).await.unwrap().is_empty());
}

/// `limit` is a maximum: 0 returns nothing; more than there is returns everything.
pub async fn audit_query_limit(store: &dyn Store) {
    let all = audit_append_numbered(store, attribute_events()).await;
    for lookup in [None, exact(A::EventName, "Decrypt"), prefix(A::EventName, "Get")] {
        assert!(store.query_audit(audit_query(lookup.clone(), 0)).await.unwrap().is_empty());
        for limit in [1, 2, 15, 59, 60, 61, usize::MAX] {
            assert_query(store, &all, audit_query(lookup.clone(), limit)).await;
        }
    }
    assert_eq!(store.query_audit(audit_query(None, usize::MAX)).await.unwrap().len(), 60);
}

/// `EventId` finds an event by its id without it being listed; listing it anyway, or listing any
/// entry twice, still finds the event once.
pub async fn audit_lookup_by_event_id_and_duplicate_entries(store: &dyn Store) {
    let events = vec![
        audit_event("6f1c0000-0000-4000-8000-000000000001", 1, &[]),
        audit_event(
            "6f1c0000-0000-4000-8000-000000000002",
            2,
            &[(A::EventId, "6f1c0000-0000-4000-8000-000000000002"), (A::Username, "bob"), (A::Username, "bob")],
        ),
        audit_event("6f1c0000-0000-4000-8000-000000000003", 3, &[(A::Username, "bob")]),
        audit_event("7a000000-0000-4000-8000-000000000004", 4, &[(A::EventId, "6f1c-listed-but-not-the-id")]),
    ];
    let all = audit_append_numbered(store, events).await;
    for lookup in [
        exact(A::EventId, "6f1c0000-0000-4000-8000-000000000001"),
        exact(A::EventId, "6f1c0000-0000-4000-8000-000000000002"),
        exact(A::EventId, "6f1c-listed-but-not-the-id"),
        exact(A::EventId, "6f1c0000"),
        prefix(A::EventId, "6f1c"),
        prefix(A::EventId, "6f1c0000-0000-4000-8000-00000000000"),
        exact(A::Username, "bob"),
        prefix(A::Username, "b"),
    ] {
        assert_query(store, &all, audit_query(lookup, 10)).await;
    }
    let one = store.query_audit(audit_query(exact(A::EventId, "6f1c0000-0000-4000-8000-000000000001"), 10)).await;
    assert_eq!(audit_seqs(&one.unwrap()), [1]);
    let bobs = store.query_audit(audit_query(exact(A::Username, "bob"), 10)).await.unwrap();
    assert_eq!(audit_seqs(&bobs), [3, 2]);
}

/// Prefixes compare bytes, with no wildcard of their own, and their matches interleave by seq across
/// values.
pub async fn audit_prefix_is_bytewise_and_ordered_across_values(store: &dyn Store) {
    let values = [
        "a/10",
        "a/1",
        "b/1",
        "a/2",
        "a%x",
        "a_x",
        "ab",
        "A/1",
        "a/1",
        "a/\u{10FFFF}",
        "a/\u{10FFFF}x",
        "a0",
        "a.",
        "",
        "ünï/1",
        "ünï/2",
        "a/*",
    ];
    let events: Vec<AuditAppend> = values
        .iter()
        .enumerate()
        .map(|(i, v)| audit_event(&format!("p-{i:02}"), i as EpochMillis, &[(A::ResourceName, v)]))
        .collect();
    let all = audit_append_numbered(store, events).await;
    for p in ["a/", "a/1", "a%", "a_", "a", "A", "ab", "a/\u{10FFFF}", "ünï/", "ü", "", "a/*", "b", "c", "\u{10FFFF}"]
    {
        assert_query(store, &all, audit_query(prefix(A::ResourceName, p), 100)).await;
        assert_paged(store, &all, audit_query(prefix(A::ResourceName, p), 2), 2).await;
    }
    let got = store.query_audit(audit_query(prefix(A::ResourceName, "a/"), 100)).await.unwrap();
    assert_eq!(audit_ids(&got), ["p-16", "p-10", "p-09", "p-08", "p-03", "p-01", "p-00"]);
}

/// A prefix matching many distinct values (more than a backend may merge one by one), densely and
/// sparsely, with events listing two matching values: still newest first, each event once.
pub async fn audit_prefix_over_many_values(store: &dyn Store) {
    let mut events = Vec::new();
    // Sparse and old: 40 values, each event with two of them.
    for i in 0..40 {
        let lookup = [(A::ResourceName, format!("sparse/{i:02}/a")), (A::ResourceName, format!("sparse/{i:02}/b"))];
        let lookup: Vec<(LookupAttribute, &str)> = lookup.iter().map(|(a, v)| (*a, v.as_str())).collect();
        events.push(audit_event(&format!("sparse-{i:02}"), i, &lookup));
    }
    // Then many filler events, every tenth with a dense value of its own.
    for i in 0..5_000 {
        let dense = format!("dense/{i:04}");
        let lookup: Vec<(LookupAttribute, &str)> =
            if i % 10 == 0 { vec![(A::ResourceName, dense.as_str())] } else { vec![(A::ResourceName, "filler")] };
        events.push(audit_event(&format!("filler-{i:04}"), 100 + i, &lookup));
    }
    let all = audit_append_numbered(store, events).await;
    for (p, limit) in [("sparse/", 10), ("sparse/", 100), ("sparse/1", 3), ("dense/", 20), ("dense/", 1000), ("", 30)] {
        assert_query(store, &all, audit_query(prefix(A::ResourceName, p), limit)).await;
    }
    assert_paged(store, &all, audit_query(prefix(A::ResourceName, "sparse/"), 7), 7).await;
    let mut bounded = audit_query(prefix(A::ResourceName, "sparse/"), 5);
    bounded.start_ms = Some(10);
    bounded.end_ms = Some(30);
    assert_query(store, &all, bounded.clone()).await;
    assert_paged(store, &all, bounded, 5).await;
    let mut dense_bounded = audit_query(prefix(A::ResourceName, "dense/"), 10);
    dense_bounded.end_ms = Some(2_000);
    assert_query(store, &all, dense_bounded).await;
}

/// Time bounds are inclusive and apply to each record's own time, even when times go back and forth
/// along the chain (clock skew, a far-future and a far-past outlier), with and without a lookup.
pub async fn audit_time_bounds_with_out_of_order_times(store: &dyn Store) {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let events: Vec<AuditAppend> = (0..300)
        .map(|i| {
            let time = match i {
                100 => 1_000_000_000, // far future
                150 => 5,             // far past
                _ => 1_000 + i * 10 + (next() % 121) as EpochMillis - 60,
            };
            let user = if next() % 3 == 0 { "alice" } else { "bob" };
            audit_event(&format!("t-{i:03}"), time, &[(A::Username, user), (A::EventName, "Op")])
        })
        .collect();
    let all = audit_append_numbered(store, events).await;
    let bounds: Vec<(Option<EpochMillis>, Option<EpochMillis>)> = vec![
        (None, None),
        (Some(1_500), None),
        (None, Some(1_500)),
        (Some(1_500), Some(2_000)),
        (Some(2_000), Some(1_500)),
        (Some(1_510), Some(1_510)),
        (Some(5), Some(5)),
        (None, Some(5)),
        (None, Some(4)),
        (Some(1_000_000_000), None),
        (Some(1_000_000_001), None),
        (Some(3_900), None),
        (None, Some(980)),
        (Some(EpochMillis::MIN), Some(EpochMillis::MAX)),
    ];
    for (start_ms, end_ms) in bounds {
        for lookup in [None, exact(A::Username, "alice"), prefix(A::Username, "b"), prefix(A::EventName, "")] {
            let q = AuditQuery { lookup, start_ms, end_ms, before_seq: None, limit: 1000 };
            assert_query(store, &all, q.clone()).await;
            assert_query(store, &all, AuditQuery { limit: 4, ..q.clone() }).await;
            assert_query(store, &all, AuditQuery { before_seq: Some(151), limit: 4, ..q.clone() }).await;
            assert_paged(store, &all, q, 9).await;
        }
    }
}

/// Time bounds stay exact when times step back by around a second (as a clock correction does), at
/// every end bound across the steps.
pub async fn audit_time_bounds_around_small_clock_steps(store: &dyn Store) {
    const STEPS: [EpochMillis; 12] = [0, 0, 999, 0, 1_000, 0, 1_001, 0, 1_100, 0, 5_000, 2];
    let events: Vec<AuditAppend> = (0..240)
        .map(|i| {
            let time = 10_000 + i * 100 - STEPS[i as usize % STEPS.len()];
            let user = if i % 3 == 0 { "carol" } else { "dave" };
            audit_event(&format!("c-{i:03}"), time, &[(A::Username, user)])
        })
        .collect();
    let all = audit_append_numbered(store, events).await;
    for end in (9_000..=35_000).step_by(350).chain([10_000, 10_100, 10_199, 10_200, 10_201, 11_000, 11_001]) {
        for start in [None, Some(end - 2_000), Some(end - 100)] {
            for lookup in [None, exact(A::Username, "carol"), prefix(A::Username, "d")] {
                let q = AuditQuery { lookup, start_ms: start, end_ms: Some(end), before_seq: None, limit: 5 };
                assert_query(store, &all, q).await;
            }
        }
    }
    let q = AuditQuery { lookup: None, start_ms: Some(12_000), end_ms: Some(20_000), before_seq: None, limit: 7 };
    assert_paged(store, &all, q, 7).await;
}

/// `audit_records_from` lists oldest first from a seq, at most `limit`.
pub async fn audit_records_from_ascending(store: &dyn Store) {
    let events: Vec<AuditAppend> = (0..30).map(|i| audit_event(&format!("r-{i}"), i, &[])).collect();
    store.append_audit(Arc::new(events)).await.unwrap();
    assert_eq!(audit_seqs(&store.audit_records_from(0, 5).await.unwrap()), [1, 2, 3, 4, 5]);
    assert_eq!(audit_seqs(&store.audit_records_from(1, 2).await.unwrap()), [1, 2]);
    assert_eq!(audit_seqs(&store.audit_records_from(28, 10).await.unwrap()), [28, 29, 30]);
    assert!(store.audit_records_from(31, 10).await.unwrap().is_empty());
    assert!(store.audit_records_from(u64::MAX, 10).await.unwrap().is_empty());
    assert!(store.audit_records_from(1, 0).await.unwrap().is_empty());
    // Paging through everything yields the whole chain.
    let (mut from, mut got) = (1, Vec::new());
    loop {
        let page = store.audit_records_from(from, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        got.extend(page);
    }
    assert_eq!(got, audit_all(store).await);
    assert_chain(&got, store.audit_head().await.unwrap());
}

/// `audit_seq_at(t)` is the lowest seq whose time is at or after `t`, times in order or not.
pub async fn audit_seq_at_finds_the_first_record_at_or_after(store: &dyn Store) {
    let times: [EpochMillis; 12] = [100, 110, 105, 120, 500, 130, 140, 140, 90, 150, 160, 155];
    let events: Vec<AuditAppend> =
        times.iter().enumerate().map(|(i, t)| audit_event(&format!("s-{i}"), *t, &[])).collect();
    store.append_audit(Arc::new(events)).await.unwrap();
    for t in [
        EpochMillis::MIN,
        0,
        90,
        99,
        100,
        101,
        105,
        106,
        110,
        111,
        121,
        130,
        140,
        141,
        155,
        156,
        160,
        161,
        499,
        500,
        501,
    ] {
        let expected = times.iter().position(|time| *time >= t).map(|i| i as u64 + 1);
        assert_eq!(store.audit_seq_at(t).await.unwrap(), expected, "time {t}");
    }
    assert_eq!(store.audit_seq_at(EpochMillis::MAX).await.unwrap(), None);
}

fn digest(last_seq: u64) -> AuditDigestAppend {
    AuditDigestAppend {
        time_ms: 1_700_000_000_000 + last_seq as EpochMillis,
        last_seq,
        body: format!(r#"{{"lastSeq":{last_seq}}}"#).into_bytes(),
        signature: vec![0, 0xff, last_seq as u8, 0x80],
    }
}

fn digest_record(number: u64, d: &AuditDigestAppend) -> AuditDigestRecord {
    AuditDigestRecord {
        number,
        time_ms: d.time_ms,
        last_seq: d.last_seq,
        body: d.body.clone(),
        signature: d.signature.clone(),
    }
}

/// Digests are numbered 1, 2, 3, … by a compare-and-swap on the newest number, and listed oldest first.
pub async fn audit_digests_compare_and_swap(store: &dyn Store) {
    assert_eq!(store.append_audit_digest(1, digest(0)).await.unwrap_err(), StoreError::Conflict);
    assert_eq!(store.append_audit_digest(0, digest(10)).await.unwrap(), 1);
    assert_eq!(store.append_audit_digest(0, digest(11)).await.unwrap_err(), StoreError::Conflict);
    assert_eq!(store.append_audit_digest(2, digest(11)).await.unwrap_err(), StoreError::Conflict);
    assert_eq!(store.append_audit_digest(1, digest(20)).await.unwrap(), 2);
    assert_eq!(store.append_audit_digest(2, digest(30)).await.unwrap(), 3);
    let expected = vec![digest_record(1, &digest(10)), digest_record(2, &digest(20)), digest_record(3, &digest(30))];
    assert_eq!(store.audit_digests(0, 10).await.unwrap(), expected);
    assert_eq!(store.audit_digests(1, 2).await.unwrap(), expected[..2]);
    assert_eq!(store.audit_digests(3, 10).await.unwrap(), expected[2..]);
    assert!(store.audit_digests(4, 10).await.unwrap().is_empty());
    assert!(store.audit_digests(1, 0).await.unwrap().is_empty());
    assert_eq!(store.latest_audit_digest().await.unwrap(), Some(expected[2].clone()));

    // Racing appenders at the same expected number: exactly one wins.
    let results = race(8, |i| async move { store.append_audit_digest(3, digest(40 + i as u64)).await }).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().all(|r| matches!(r, Ok(4) | Err(StoreError::Conflict))), "{results:?}");
    assert_eq!(store.latest_audit_digest().await.unwrap().unwrap().number, 4);
}

/// Pruning removes at most `limit` of the oldest records below `before_seq`, with their lookups, and
/// the digests below `keep_digests_from`; the head, and the numbering of records and digests, carry on.
pub async fn audit_prune_removes_oldest_records_and_their_lookups(store: &dyn Store) {
    let events: Vec<AuditAppend> = (0..20)
        .map(|i| {
            let user = if i % 2 == 0 { "even" } else { "odd" };
            audit_event(&format!("k-{i:02}"), 100 + i, &[(A::Username, user), (A::ResourceName, &format!("res/{i}"))])
        })
        .collect();
    let all = audit_append_numbered(store, events).await;
    for n in 0..3 {
        store.append_audit_digest(n, digest(n * 5)).await.unwrap();
    }
    let head = store.audit_head().await.unwrap();

    assert_eq!(store.prune_audit(8, 2, 3).await.unwrap(), 3);
    assert_eq!(store.audit_oldest_seq().await.unwrap(), Some(4));
    assert_eq!(store.prune_audit(8, 2, 100).await.unwrap(), 4);
    assert_eq!(store.prune_audit(8, 2, 100).await.unwrap(), 0, "nothing left below 8");
    assert_eq!(store.audit_oldest_seq().await.unwrap(), Some(8));
    assert_eq!(store.audit_head().await.unwrap(), head, "pruning moved the head");

    let kept: Vec<(u64, AuditAppend)> = all.iter().filter(|(seq, _)| *seq >= 8).cloned().collect();
    let records = audit_all(store).await;
    assert_eq!(audit_seqs(&records), (8..=20).collect::<Vec<_>>());
    assert_chain(&records, head);
    assert_eq!(records[0].prev_hash, store_hash_before(&all, 8), "the first kept record still links back");
    for lookup in [
        None,
        exact(A::Username, "even"),
        prefix(A::ResourceName, "res/"),
        exact(A::ResourceName, "res/0"),
        exact(A::EventId, "k-00"),
        prefix(A::EventId, "k-0"),
    ] {
        assert_query(store, &kept, audit_query(lookup, 100)).await;
    }
    assert!(store.query_audit(audit_query(exact(A::ResourceName, "res/3"), 10)).await.unwrap().is_empty());
    assert_eq!(store.audit_seq_at(100).await.unwrap(), Some(8), "pruned records are not found by time");

    let digests = store.audit_digests(0, 10).await.unwrap();
    assert_eq!(digests.iter().map(|d| d.number).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(store.latest_audit_digest().await.unwrap().unwrap().number, 3);

    // Appending carries on from the head.
    let next =
        store.append_audit(Arc::new(vec![audit_event("after-prune", 500, &[(A::Username, "even")])])).await.unwrap();
    assert_eq!(next.seq, 21);
    let records = audit_all(store).await;
    assert_chain(&records, next);

    // Everything pruned, digests included: the head and the digest numbers still carry on.
    assert_eq!(store.prune_audit(u64::MAX, u64::MAX, usize::MAX).await.unwrap(), 14);
    assert!(audit_all(store).await.is_empty());
    assert_eq!(store.audit_oldest_seq().await.unwrap(), None);
    assert_eq!(store.audit_head().await.unwrap(), next);
    assert!(store.query_audit(audit_query(exact(A::Username, "even"), 10)).await.unwrap().is_empty());
    assert_eq!(store.latest_audit_digest().await.unwrap(), None);
    assert_eq!(store.append_audit_digest(0, digest(21)).await.unwrap_err(), StoreError::Conflict);
    assert_eq!(store.append_audit_digest(3, digest(21)).await.unwrap(), 4);
    let last = store.append_audit(Arc::new(vec![audit_event("after-everything", 600, &[])])).await.unwrap();
    let records = audit_all(store).await;
    assert_eq!(audit_seqs(&records), [22]);
    assert_eq!(records[0].prev_hash, next.hash);
    assert_chain(&records, last);
}

/// The hash of the record before `seq`, recomputed from what was appended.
fn store_hash_before(all: &[(u64, AuditAppend)], seq: u64) -> [u8; 32] {
    let mut hash = GENESIS;
    for (s, e) in all.iter().take_while(|(s, _)| *s < seq) {
        hash = record_hash(*s, &hash, e.time_ms, &e.event_id, &e.body);
    }
    hash
}

// ---- Whole-store copies (`copy`).

/// An installation with a bit of everything, in two regions, with an audit log whose oldest records
/// were pruned (so a copy must keep seqs that do not start at 1).
async fn populate_everything(store: &dyn Store) {
    assert!(store.put_setting_if_absent("master-key-check", b"sealed check value").await.unwrap());
    assert!(store.put_setting_if_absent("audit/signing", &[7; 48]).await.unwrap());
    let mut full = SecretState {
        secret: full_secret(REGION, "prod/db/password"),
        versions: vec![
            version("v1", &["AWSPREVIOUS"], 1000, vec![1; 80]),
            version("v2", &["AWSCURRENT", "blue"], 2000, vec![2; 90]),
            version("v3", &[], 2000, vec![3; 70]),
        ],
    };
    full.secret.deletion_date = None;
    create(store, &full).await;
    create(store, &state("eu-west-1", "dev/api-key")).await;
    let mut p = parameter(REGION, "/prod/backend/url");
    p.versions.push(parameter_version(2, &["live"], vec![4; 40]));
    p.revision = 2;
    store.write_parameter(ParameterWrite::Create(p), None).await.unwrap();
    store.write_parameter(ParameterWrite::Create(parameter("eu-west-1", "toplevel")), None).await.unwrap();
    let mut key = kms_key(REGION, "1234abcd-12ab-34cd-56ef-1234567890ab", 10);
    key.materials.push(KeyMaterialRecord { version: 2, created: 20, sealed: vec![2; 93] });
    key.key.revision = 3;
    store.write_kms_key(KmsKeyWrite::Create(key), None).await.unwrap();
    let alias = AliasRecord {
        region: REGION.into(),
        alias_name: "alias/payments".into(),
        target_key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        created: 30,
        last_updated: 40,
    };
    store.write_alias(AliasWrite::Create(alias), None).await.unwrap();
    let user =
        IamEntityRecord { kind: IamKind::User, name: "alice".into(), document: b"{\"u\":1}".to_vec(), revision: 1 };
    let policy = IamEntityRecord { kind: IamKind::Policy, name: "read".into(), document: b"{}".to_vec(), revision: 1 };
    let access_key = |id: &str, user: &str| AccessKeyRecord {
        access_key_id: id.into(),
        sealed_secret: vec![9; 60],
        principal_arn: format!("arn:aws:iam::000000000000:user/{user}"),
        user_name: user.into(),
        status: "Active".into(),
        created: 50,
    };
    store
        .write_iam(
            vec![
                IamWrite::Create(user.clone()),
                IamWrite::Create(policy),
                IamWrite::Update {
                    expected_revision: 1,
                    record: IamEntityRecord { document: b"{\"u\":2}".to_vec(), revision: 2, ..user },
                },
                IamWrite::InsertAccessKey(access_key("AKIAALICE00000000001", "alice")),
            ],
            None,
        )
        .await
        .unwrap();
    store.insert_access_key(access_key("AKIAROOT000000000001", "root")).await.unwrap();

    let events: Vec<AuditAppend> =
        (1..=12).map(|i| audit_event(&format!("e{i}"), 100 + i, &[(A::EventName, "GetSecretValue")])).collect();
    store.append_audit(Arc::new(events[..6].to_vec())).await.unwrap();
    let digest = |n: u64, last_seq: u64| AuditDigestAppend {
        time_ms: 200 + n as i64,
        last_seq,
        body: format!("digest {n}").into_bytes(),
        signature: vec![n as u8; 64],
    };
    store.append_audit_digest(0, digest(1, 6)).await.unwrap();
    store.append_audit(Arc::new(events[6..].to_vec())).await.unwrap();
    store.append_audit_digest(1, digest(2, 12)).await.unwrap();
    store.append_audit_digest(2, digest(3, 12)).await.unwrap();
    assert_eq!(store.prune_audit(4, 2, 100).await.unwrap(), 3);
}

/// The enumerations a copy reads: settings by key, regions sorted and distinct, access keys by id.
pub async fn whole_store_listings(store: &dyn Store) {
    assert!(store.list_settings().await.unwrap().is_empty());
    assert!(store.list_regions().await.unwrap().is_empty());
    assert!(store.list_all_access_keys().await.unwrap().is_empty());
    assert!(copy::is_empty(store).await.unwrap());
    populate_everything(store).await;
    let settings = store.list_settings().await.unwrap();
    assert_eq!(settings.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), vec!["audit/signing", "master-key-check"]);
    assert_eq!(settings[1].1, b"sealed check value");
    assert_eq!(store.list_regions().await.unwrap(), vec!["eu-west-1".to_string(), REGION.to_string()]);
    let keys = store.list_all_access_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.access_key_id.as_str()).collect::<Vec<_>>(),
        vec!["AKIAALICE00000000001", "AKIAROOT000000000001"]
    );
    assert!(!copy::is_empty(store).await.unwrap());
}

/// A new log started at a head chains its next record to that head and numbers digests after it;
/// a log that ever held a record or digest refuses to be restarted.
pub async fn audit_log_started_at_a_head_continues_it(store: &dyn Store) {
    let head = AuditHead { seq: 41, hash: [5; 32] };
    store.start_audit_log_at(head, 6).await.unwrap();
    assert_eq!(store.audit_head().await.unwrap(), head);
    let after = store.append_audit(Arc::new(vec![audit_event("e42", 500, &[])])).await.unwrap();
    assert_eq!(after.seq, 42);
    let records = audit_all(store).await;
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].seq, records[0].prev_hash), (42, [5; 32]));
    assert_eq!(after.hash, record_hash(42, &[5; 32], 500, "e42", &records[0].body));
    assert_eq!(store.audit_oldest_seq().await.unwrap(), Some(42));
    let digest = AuditDigestAppend { time_ms: 501, last_seq: 42, body: b"d".to_vec(), signature: vec![1; 64] };
    assert_eq!(store.append_audit_digest(6, digest).await.unwrap(), 7);
    assert_eq!(store.start_audit_log_at(AuditHead { seq: 0, hash: GENESIS }, 0).await, Err(StoreError::Conflict));
    assert_eq!(store.audit_head().await.unwrap().seq, 42);
}

/// A copy into this backend and a copy out of it both hold exactly what their source holds: every
/// record and envelope byte, the audit chain from its pruned start with the same seqs and hashes, and
/// the digests with their numbers. A second copy into a store that holds data is refused.
pub async fn copy_into_and_out_of_the_backend_keeps_everything(store: &dyn Store) {
    let source = crate::MemoryStore::new();
    populate_everything(&source).await;
    let mut steps = Vec::new();
    let report = copy::copy_store(&source, store, &mut |step| steps.push(step)).await.unwrap();
    assert_eq!((report.secrets, report.secret_versions, report.parameters, report.parameter_versions), (2, 4, 2, 3));
    assert_eq!((report.kms_keys, report.aliases, report.iam_entities, report.access_keys), (1, 1, 2, 2));
    assert_eq!((report.settings, report.audit_records, report.audit_digests, report.audit_head_seq), (2, 9, 2, 12));
    assert!(steps.contains(&copy::CopyStep::Audit { copied: 9, total: 9 }));
    assert_eq!(copy::compare(&source, store).await.unwrap(), Vec::<String>::new());
    assert_eq!(store.audit_oldest_seq().await.unwrap(), Some(4));
    assert_eq!(store.audit_head().await.unwrap(), source.audit_head().await.unwrap());
    // The copy keeps working as the original would: the next record and digest continue both chains.
    let next = store.append_audit(Arc::new(vec![audit_event("e13", 300, &[])])).await.unwrap();
    assert_eq!(next.seq, 13);
    let digest = AuditDigestAppend { time_ms: 301, last_seq: 13, body: b"d4".to_vec(), signature: vec![4; 64] };
    assert_eq!(store.append_audit_digest(3, digest).await.unwrap(), 4);

    let back = crate::MemoryStore::new();
    copy::copy_store(store, &back, &mut |_| {}).await.unwrap();
    assert_eq!(copy::compare(store, &back).await.unwrap(), Vec::<String>::new());
    // A difference is reported by name, not hidden.
    back.write_secret(SecretWrite::Create(state(REGION, "only-in-the-copy")), None).await.unwrap();
    let differences = copy::compare(store, &back).await.unwrap();
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(differences[0].contains("only-in-the-copy"), "{differences:?}");

    let refused = copy::copy_store(&source, store, &mut |_| {}).await;
    assert!(matches!(refused, Err(StoreError::InvalidWrite(_))), "{refused:?}");
}
