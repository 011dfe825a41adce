//! Change events: what the journal records for each kind of write (and what it leaves out), cursors
//! (immediate first answer, reset on another epoch, refusal of a malformed one), long polls woken by a
//! change, subscriptions by id, name, ARN and path, authorization per record like a read, changes heard
//! from other nodes, and waits ended by shutdown.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_crypto::SecretBytes;
use coffer_service::audit::AuditNotes;
use coffer_service::changes::{ChangeKind, ChangeSubjectKind, ChangesPage, WaitForChangesInput};
use coffer_service::iam::model::UserDoc;
use coffer_service::parameters::ops::PutParameterInput;
use coffer_service::secrets::*;
use coffer_service::{ErrorKind, RequestContext, Service};
use coffer_store::{ChangeNotice, IamEntityRecord, IamKind, IamWrite, MemoryStore, Store};
use common::{root_ctx, ACCOUNT};

const REGION: &str = "us-east-1";

fn root() -> RequestContext {
    root_ctx(REGION)
}

/// The root user's context for an operation the audit log names `event_name`.
fn root_doing(event_name: &'static str) -> RequestContext {
    RequestContext { audit: AuditNotes::new("secretsmanager.amazonaws.com", event_name, false), ..root() }
}

fn text(s: &str) -> SecretValue {
    SecretValue::String(SecretBytes::from(s.to_string()))
}

fn token(n: u32) -> String {
    format!("{n:08}-0000-4000-8000-000000000000")
}

struct World {
    s: Arc<Service>,
    store: Arc<MemoryStore>,
}

impl World {
    fn new() -> World {
        let (s, store, _) = common::service();
        World { s: Arc::new(s), store }
    }

    async fn secret(&self, name: &str, value: &str) -> String {
        let input = CreateSecretInput {
            name: name.into(),
            client_request_token: Some(token(0)),
            value: Some(text(value)),
            ..Default::default()
        };
        self.s.create_secret(&root(), input).await.unwrap().arn
    }

    async fn put(&self, id: &str, n: u32) -> String {
        let input = PutSecretValueInput {
            secret_id: id.into(),
            client_request_token: Some(token(n)),
            value: Some(text(&format!("value {n}"))),
            version_stages: None,
        };
        self.s.put_secret_value(&root_doing("PutSecretValue"), input).await.unwrap();
        token(n)
    }

    async fn parameter(&self, name: &str, value: &str, overwrite: bool) {
        let input = PutParameterInput {
            name: name.into(),
            value: Some(SecretBytes::from(value.to_string())),
            parameter_type: Some("SecureString".into()),
            overwrite,
            ..Default::default()
        };
        self.s.put_parameter(&root(), input).await.unwrap();
    }

    /// An IAM user with these inline policies, and its request context.
    async fn user(&self, name: &str, policies: &[String]) -> RequestContext {
        let inline: BTreeMap<String, String> =
            policies.iter().enumerate().map(|(i, p)| (format!("p{i}"), p.clone())).collect();
        let document = serde_json::to_vec(&UserDoc {
            user_id: format!("AIDA{}", name.to_ascii_uppercase()),
            path: "/".into(),
            created: common::T0,
            inline,
            ..Default::default()
        })
        .unwrap();
        let record = IamEntityRecord { kind: IamKind::User, name: name.into(), document, revision: 1 };
        self.store.write_iam(vec![IamWrite::Create(record)], None).await.unwrap();
        self.s.refresh_iam().await.unwrap();
        common::user_ctx(REGION, name)
    }

    /// A cursor from now on.
    async fn cursor(&self, ctx: &RequestContext) -> String {
        let page = self.s.wait_for_changes(ctx, WaitForChangesInput::default()).await.unwrap();
        assert!(page.changes.is_empty() && !page.reset, "{page:?}");
        page.cursor
    }

    /// What changed after `cursor` among `secret_ids`, without waiting.
    async fn changes(&self, ctx: &RequestContext, cursor: &str, secret_ids: &[&str]) -> ChangesPage {
        let input = WaitForChangesInput {
            secret_ids: secret_ids.iter().map(|s| s.to_string()).collect(),
            cursor: Some(cursor.into()),
            ..Default::default()
        };
        self.s.wait_for_changes(ctx, input).await.unwrap()
    }
}

fn allow(action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}}}"#
    )
}

fn kinds(page: &ChangesPage) -> Vec<(String, ChangeKind)> {
    page.changes.iter().map(|c| (c.name.clone(), c.kind)).collect()
}

#[tokio::test]
async fn a_waiting_subscriber_hears_of_a_put_at_once() {
    let w = World::new();
    let arn = w.secret("app/db", "v0").await;
    let cursor = w.cursor(&root()).await;
    let input = WaitForChangesInput {
        secret_ids: vec!["app/db".into()],
        cursor: Some(cursor.clone()),
        wait: Duration::from_secs(10),
        ..Default::default()
    };
    let started = Instant::now();
    let ctx = root();
    let (page, version) = tokio::join!(w.s.wait_for_changes(&ctx, input), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        w.put("app/db", 1).await
    });
    let page = page.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "woken by the change, not by the end of the wait");
    assert!(!page.reset);
    assert_eq!(page.changes.len(), 1, "{page:?}");
    let change = &page.changes[0];
    assert_eq!(
        (change.subject, change.name.as_str(), change.arn.as_str(), change.kind),
        (ChangeSubjectKind::Secret, "app/db", arn.as_str(), ChangeKind::PutSecretValue)
    );
    assert_eq!(change.version_id.as_deref(), Some(version.as_str()));
    assert_eq!(change.time, common::T0, "recorded at the service clock's time");
    assert_ne!(page.cursor, cursor, "the cursor moved past the change");

    // From the new cursor nothing is left; a wait without a change ends with the same cursor.
    let started = Instant::now();
    let input = WaitForChangesInput {
        secret_ids: vec!["app/db".into()],
        cursor: Some(page.cursor.clone()),
        wait: Duration::from_millis(200),
        ..Default::default()
    };
    let quiet = w.s.wait_for_changes(&root(), input).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!((quiet.changes.len(), quiet.reset, quiet.cursor.as_str()), (0, false, page.cursor.as_str()));
}

#[tokio::test]
async fn each_kind_of_value_change_is_recorded_and_metadata_changes_are_not() {
    let w = World::new();
    let arn = w.secret("app/db", "v0").await;
    let cursor = w.cursor(&root()).await;

    let v1 = w.put("app/db", 1).await;
    let update = UpdateSecretInput {
        secret_id: "app/db".into(),
        client_request_token: Some(token(2)),
        value: Some(text("v2")),
        ..Default::default()
    };
    w.s.update_secret(&root_doing("UpdateSecret"), update).await.unwrap();
    let rollback = UpdateVersionStageInput {
        secret_id: "app/db".into(),
        version_stage: "AWSCURRENT".into(),
        remove_from_version_id: Some(token(2)),
        move_to_version_id: Some(v1.clone()),
    };
    w.s.update_secret_version_stage(&root_doing("UpdateSecretVersionStage"), rollback).await.unwrap();
    // Tags and descriptions change no value: nothing to refetch.
    w.s.tag_resource(&root(), "app/db", vec![coffer_store::Tag { key: "team".into(), value: "a".into() }])
        .await
        .unwrap();
    let describe =
        UpdateSecretInput { secret_id: "app/db".into(), description: Some("the db".into()), ..Default::default() };
    w.s.update_secret(&root_doing("UpdateSecret"), describe).await.unwrap();
    let delete = DeleteSecretInput { secret_id: "app/db".into(), ..Default::default() };
    w.s.delete_secret(&root(), delete).await.unwrap();
    w.s.restore_secret(&root(), "app/db").await.unwrap();
    let force = DeleteSecretInput {
        secret_id: "app/db".into(),
        force_delete_without_recovery: Some(true),
        ..Default::default()
    };
    w.s.delete_secret(&root(), force).await.unwrap();
    let created = w.secret("app/db", "again").await;

    let page = w.changes(&root(), &cursor, &["app/db"]).await;
    let expected = [
        ChangeKind::PutSecretValue,
        ChangeKind::UpdateSecret,
        ChangeKind::UpdateSecretVersionStage,
        ChangeKind::DeleteSecret,
        ChangeKind::RestoreSecret,
        ChangeKind::DeleteSecret,
        ChangeKind::CreateSecret,
    ];
    assert_eq!(page.changes.iter().map(|c| c.kind).collect::<Vec<_>>(), expected, "{page:?}");
    let versions: Vec<Option<&str>> = page.changes.iter().map(|c| c.version_id.as_deref()).collect();
    assert_eq!(
        versions,
        [
            Some(v1.as_str()),
            Some(token(2).as_str()),
            Some(v1.as_str()),
            None,
            Some(v1.as_str()),
            None,
            Some(token(0).as_str())
        ],
        "the version a change added, or the one AWSCURRENT labels after it"
    );
    assert!(page.changes[..6].iter().all(|c| c.arn == arn));
    assert_eq!(page.changes[6].arn, created, "a secret re-created under its name is followed by name");
    let seqs: Vec<u64> = page.changes.iter().map(|c| c.seq).collect();
    assert!(seqs.windows(2).all(|p| p[0] < p[1]), "oldest first: {seqs:?}");

    // Parameters: new versions, label moves and deletions; not tags.
    let cursor = page.cursor;
    w.parameter("/app/level", "debug", false).await;
    w.parameter("/app/level", "info", true).await;
    w.s.label_parameter_version(&root(), "/app/level", Some(1), &["stable".to_string()]).await.unwrap();
    let tag = coffer_store::Tag { key: "k".into(), value: "v".into() };
    w.s.change_parameter_tags(&root(), "/app/level", &[tag], &[]).await.unwrap();
    w.s.delete_parameter(&root(), "/app/level").await.unwrap();
    let input = WaitForChangesInput {
        parameter_names: vec!["/app/level:stable".into()],
        cursor: Some(cursor),
        ..Default::default()
    };
    let page = w.s.wait_for_changes(&root(), input).await.unwrap();
    assert_eq!(
        page.changes.iter().map(|c| (c.subject, c.kind, c.version_id.clone())).collect::<Vec<_>>(),
        [
            (ChangeSubjectKind::Parameter, ChangeKind::PutParameter, Some("1".to_string())),
            (ChangeSubjectKind::Parameter, ChangeKind::PutParameter, Some("2".to_string())),
            (ChangeSubjectKind::Parameter, ChangeKind::LabelParameterVersion, Some("1".to_string())),
            (ChangeSubjectKind::Parameter, ChangeKind::DeleteParameter, None),
        ],
        "a selector in the subscription still follows every version"
    );
    assert_eq!(page.changes[0].arn, format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/level"));
}

#[tokio::test]
async fn subscriptions_follow_names_arns_and_paths_and_nothing_else() {
    let w = World::new();
    let a = w.secret("/prod/app/db", "a").await;
    w.secret("prod/app/api", "b").await;
    w.secret("/prod/application/db", "c").await;
    w.secret("/other", "d").await;
    let cursor = w.cursor(&root()).await;
    for (n, name) in ["/prod/app/db", "prod/app/api", "/prod/application/db", "/other"].iter().enumerate() {
        w.put(name, n as u32 + 1).await;
    }
    w.parameter("/prod/app/flag", "on", false).await;
    w.parameter("/prod/other/flag", "on", false).await;

    let names = |page: &ChangesPage| page.changes.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let by_path = WaitForChangesInput {
        path_prefixes: vec!["/prod/app/".into()],
        cursor: Some(cursor.clone()),
        ..Default::default()
    };
    let page = w.s.wait_for_changes(&root(), by_path).await.unwrap();
    assert_eq!(names(&page), ["/prod/app/db", "prod/app/api", "/prod/app/flag"], "{page:?}");

    let partial = a.trim_end_matches(|c: char| c != '-').trim_end_matches('-').to_string();
    for id in [a.as_str(), partial.as_str(), "/prod/app/db"] {
        assert_eq!(names(&w.changes(&root(), &cursor, &[id]).await), ["/prod/app/db"], "subscribed as {id}");
    }
    let everything =
        WaitForChangesInput { path_prefixes: vec!["/".into()], cursor: Some(cursor.clone()), ..Default::default() };
    assert_eq!(w.s.wait_for_changes(&root(), everything).await.unwrap().changes.len(), 6);
    let nothing = w.changes(&root(), &cursor, &[]).await;
    assert!(nothing.changes.is_empty() && !nothing.reset);
    assert_ne!(nothing.cursor, cursor, "an empty subscription still moves on");
}

#[tokio::test]
async fn changes_are_reported_only_for_records_the_caller_may_read() {
    let w = World::new();
    let readable = w.secret("team/a", "a").await;
    w.secret("team/b", "b").await;
    w.parameter("/team/a", "x", false).await;
    w.parameter("/team/b", "y", false).await;
    let alice = w
        .user(
            "alice",
            &[
                allow("coffer:WaitForChanges", "*"),
                allow("secretsmanager:GetSecretValue", &readable),
                allow("ssm:GetParameter", &format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/team/a")),
            ],
        )
        .await;
    let start = w.cursor(&alice).await;
    w.put("team/b", 1).await;
    w.put("team/a", 2).await;
    w.parameter("/team/b", "y2", true).await;
    w.parameter("/team/a", "x2", true).await;

    let input = WaitForChangesInput {
        secret_ids: vec!["team/a".into(), "team/b".into()],
        parameter_names: vec!["/team/a".into(), "/team/b".into()],
        cursor: Some(start.clone()),
        ..Default::default()
    };
    let page = w.s.wait_for_changes(&alice, input.clone()).await.unwrap();
    assert_eq!(
        kinds(&page),
        [("team/a".to_string(), ChangeKind::PutSecretValue), ("/team/a".to_string(), ChangeKind::PutParameter)],
        "team/b's changes are left out without a word"
    );
    assert!(alice.audit.snapshot().resources.is_empty(), "the records judged stay out of the request's audit event");

    // Only B changed: alice's long poll waits on (and ends empty) rather than answering B's change.
    let only_b = WaitForChangesInput { cursor: Some(page.cursor), wait: Duration::from_millis(300), ..input };
    let (page, _) = tokio::join!(w.s.wait_for_changes(&alice, only_b), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        w.put("team/b", 3).await
    });
    assert!(page.unwrap().changes.is_empty());

    // Root sees every change; a user without coffer:WaitForChanges may not subscribe at all.
    let everything = w.changes(&root(), &start, &["team/a", "team/b"]).await;
    assert_eq!(everything.changes.len(), 3, "{everything:?}");
    let bob = w.user("bob", &[allow("secretsmanager:GetSecretValue", "*")]).await;
    let err = w.s.wait_for_changes(&bob, WaitForChangesInput::default()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    assert!(err.message.contains("coffer:WaitForChanges"), "{}", err.message);
}

#[tokio::test]
async fn foreign_malformed_and_missing_cursors() {
    let w = World::new();
    w.secret("app/db", "v0").await;
    let (other, _, _) = common::service();
    let foreign = other.wait_for_changes(&root(), WaitForChangesInput::default()).await.unwrap().cursor;
    let page = w.changes(&root(), &foreign, &["app/db"]).await;
    assert!(page.reset, "a cursor of another run or node: the subscriber may have missed anything");
    let fresh = page.cursor;
    assert!(!w.changes(&root(), &fresh, &["app/db"]).await.reset, "the cursor a reset answers is good");

    for bad in ["", "garbage", "abc:notanumber"] {
        let input = WaitForChangesInput { cursor: Some(bad.into()), ..Default::default() };
        let err = w.s.wait_for_changes(&root(), input).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameter, "{bad:?}");
    }
    let too_long = WaitForChangesInput { wait: Duration::from_secs(21), ..Default::default() };
    assert_eq!(w.s.wait_for_changes(&root(), too_long).await.unwrap_err().kind, ErrorKind::InvalidParameter);
    let empty_id = WaitForChangesInput { secret_ids: vec![String::new()], ..Default::default() };
    assert_eq!(w.s.wait_for_changes(&root(), empty_id).await.unwrap_err().kind, ErrorKind::InvalidParameter);

    // No cursor: answered at once, whatever the wait, with the cursor to start from.
    let started = Instant::now();
    let input = WaitForChangesInput { wait: Duration::from_secs(20), ..Default::default() };
    let page = w.s.wait_for_changes(&root(), input).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(page.cursor, fresh);
}

#[tokio::test]
async fn changes_heard_from_other_nodes_are_passed_on_and_lost_ones_reset() {
    let w = World::new();
    let arn = w.secret("app/db", "v0").await;
    let cursor = w.cursor(&root()).await;
    w.s.apply_change_notice(&ChangeNotice::Secret { arn: arn.clone() });
    w.s.apply_change_notice(&ChangeNotice::Parameter { region: REGION.into(), name: "/app/level".into() });
    w.s.apply_change_notice(&ChangeNotice::KmsKey { region: REGION.into(), key_id: "k".into() });
    let input = WaitForChangesInput {
        secret_ids: vec!["app/db".into()],
        parameter_names: vec!["/app/level".into()],
        cursor: Some(cursor),
        ..Default::default()
    };
    let page = w.s.wait_for_changes(&root(), input.clone()).await.unwrap();
    assert_eq!(
        kinds(&page),
        [("app/db".to_string(), ChangeKind::Changed), ("/app/level".to_string(), ChangeKind::Changed)],
        "{page:?}"
    );
    assert_eq!(page.changes[0].arn, arn);

    w.s.apply_change_notice(&ChangeNotice::Everything);
    let after = WaitForChangesInput { cursor: Some(page.cursor), ..input };
    assert!(w.s.wait_for_changes(&root(), after).await.unwrap().reset, "notices were lost: start over");
}

#[tokio::test]
async fn closing_ends_waits_now_and_later() {
    let w = World::new();
    w.secret("app/db", "v0").await;
    let cursor = w.cursor(&root()).await;
    let input = WaitForChangesInput {
        secret_ids: vec!["app/db".into()],
        cursor: Some(cursor),
        wait: Duration::from_secs(20),
        ..Default::default()
    };
    let started = Instant::now();
    let ctx = root();
    let (page, ()) = tokio::join!(w.s.wait_for_changes(&ctx, input.clone()), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        w.s.close_change_waits();
    });
    assert!(page.unwrap().changes.is_empty());
    assert!(started.elapsed() < Duration::from_secs(2), "the wait ended with the close");
    let started = Instant::now();
    w.s.wait_for_changes(&root(), input).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "a wait after the close answers at once");
}
