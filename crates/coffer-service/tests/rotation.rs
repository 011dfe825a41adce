//! Secret rotation in the service: the four steps, every failure point, retries, the scheduler with a
//! manual clock (no sleeping), a rotation interrupted by a crash and resumed by another node, overlap
//! periods, cancellation, and emergency incidents.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use coffer_crypto::{Keyring, MasterKey, SecretBytes};
use coffer_service::iam::model::UserDoc;
use coffer_service::secrets::rotation::incident::OpenIncidentInput;
use coffer_service::secrets::rotation::*;
use coffer_service::secrets::*;
use coffer_service::{
    ErrorKind, ManualClock, Principal, PrincipalKind, RequestContext, Service, ServiceConfig, ServiceError,
};
use coffer_store::{IamEntityRecord, IamKind, IamWrite, MemoryStore, Store, Tag};
use common::{root_ctx, ACCOUNT, MASTER_KEY, T0};

const DAY: i64 = 86_400_000;
const GENERATED: &str = "arn:aws:lambda:us-east-1:123456789012:function:coffer-generated";
const SIGNING: &str = "arn:aws:lambda:us-east-1:123456789012:function:coffer-signing-key";
const SCRIPTED: &str = "arn:aws:lambda:us-east-1:123456789012:function:scripted";

struct Fixture {
    service: Arc<Service>,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

fn node(store: Arc<MemoryStore>, clock: Arc<ManualClock>) -> Arc<Service> {
    Arc::new(Service::new(
        store,
        Arc::new(Keyring::new(&MasterKey::from_bytes(MASTER_KEY))),
        clock,
        ServiceConfig { account_id: ACCOUNT.into(), ..Default::default() },
    ))
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    Fixture { service: node(store.clone(), clock.clone()), store, clock }
}

fn ctx() -> RequestContext {
    root_ctx("us-east-1")
}

fn text(s: &str) -> SecretValue {
    SecretValue::String(SecretBytes::from(s.to_string()))
}

impl Fixture {
    async fn create(&self, name: &str, value: &str, tags: &[(&str, &str)]) -> String {
        self.service
            .create_secret(
                &ctx(),
                CreateSecretInput {
                    name: name.into(),
                    client_request_token: Some(uuid()),
                    value: Some(text(value)),
                    tags: tags.iter().map(|(k, v)| Tag { key: (*k).into(), value: (*v).into() }).collect(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .arn
    }

    async fn value(&self, id: &str, stage: &str) -> Result<(String, String), ServiceError> {
        let out = self
            .service
            .get_secret_value(
                &ctx(),
                GetSecretValueInput { secret_id: id.into(), version_stage: Some(stage.into()), ..Default::default() },
            )
            .await?;
        Ok((out.version_id, out.value.bytes().expose_str().unwrap().to_string()))
    }

    async fn describe(&self, id: &str) -> SecretDescription {
        self.service.describe_secret(&ctx(), id).await.unwrap()
    }

    /// Sets the rotator without rotating now (RotateImmediately=false).
    async fn configure(&self, id: &str, lambda: &str, rules: Option<RotationRulesInput>) {
        let input = RotateSecretInput {
            secret_id: id.into(),
            rotation_lambda_arn: Some(lambda.into()),
            rotation_rules: rules,
            rotate_immediately: Some(false),
            ..Default::default()
        };
        self.service.rotate_secret(&ctx(), input).await.unwrap();
    }

    async fn rotate(&self, id: &str, lambda: &str, days: Option<i64>) -> Result<SecretIdentity, ServiceError> {
        self.service
            .rotate_secret(
                &ctx(),
                RotateSecretInput {
                    secret_id: id.into(),
                    rotation_lambda_arn: Some(lambda.into()),
                    rotation_rules: days
                        .map(|d| RotationRulesInput { automatically_after_days: Some(d), ..Default::default() }),
                    ..Default::default()
                },
            )
            .await
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A rotator that writes a counter value and fails the steps it is told to, a given number of times.
struct Scripted {
    fail_step: Option<RotationStep>,
    failures_left: AtomicU32,
    calls: std::sync::Mutex<Vec<&'static str>>,
}

impl Scripted {
    fn failing(step: Option<RotationStep>, times: u32) -> Arc<Scripted> {
        Arc::new(Scripted { fail_step: step, failures_left: AtomicU32::new(times), calls: Default::default() })
    }
}

#[async_trait::async_trait]
impl Rotator for Scripted {
    async fn run_step(&self, step: RotationStep, job: &RotationJob<'_>) -> Result<(), RotatorError> {
        self.calls.lock().unwrap().push(step.as_str());
        if step == RotationStep::CreateSecret && job.read_pending().await?.is_none() {
            job.put_pending(text(&format!("scripted-{}", job.token))).await?;
        }
        if Some(step) == self.fail_step && self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(RotatorError::new(format!("{} refused by the test", step.as_str())));
        }
        if step == RotationStep::FinishSecret {
            job.move_current_to_pending().await?;
        }
        Ok(())
    }

    /// Failing at finishSecret needs a rotator that runs it, as a rotation Lambda does.
    fn service_finishes(&self) -> bool {
        self.fail_step != Some(RotationStep::FinishSecret)
    }
}

/// A rotator that never finishes setSecret (a node that dies mid-rotation).
struct Hangs;

#[async_trait::async_trait]
impl Rotator for Hangs {
    async fn run_step(&self, step: RotationStep, job: &RotationJob<'_>) -> Result<(), RotatorError> {
        if step == RotationStep::CreateSecret {
            job.put_pending(text("written-before-the-crash")).await?;
            return Ok(());
        }
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[tokio::test]
async fn generated_rotation_moves_current_and_keeps_previous() {
    let f = fixture();
    let arn = f.create("/prod/api/token", "original-token", &[]).await;
    let (old_version, _) = f.value(&arn, "AWSCURRENT").await.unwrap();
    f.clock.advance_millis(1000);
    let out = f.rotate("/prod/api/token", GENERATED, Some(30)).await.unwrap();
    let new_version = out.version_id.unwrap();

    let (current_version, current) = f.value(&arn, "AWSCURRENT").await.unwrap();
    assert_eq!(current_version, new_version);
    assert_ne!(current, "original-token");
    assert_eq!(current.len(), 32);
    assert_eq!(f.value(&arn, "AWSPREVIOUS").await.unwrap(), (old_version, "original-token".to_string()));
    // AWSPENDING is cleared when the rotation finishes.
    assert_eq!(f.value(&arn, "AWSPENDING").await.unwrap_err().kind, ErrorKind::NotFound);

    let d = f.describe(&arn).await;
    let r = &d.record.rotation;
    assert!(r.enabled);
    assert_eq!(r.lambda_arn.as_deref(), Some(GENERATED));
    assert_eq!(r.automatically_after_days, Some(30));
    assert_eq!(r.last_rotated, Some(T0 + 1000));
    assert_eq!(r.next_rotation, Some(T0 + 1000 + 30 * DAY));
    assert!(r.in_progress.is_none());
    assert!(r.last_result.as_ref().unwrap().succeeded);
}

#[tokio::test]
async fn generated_rotation_regenerates_one_json_field() {
    let f = fixture();
    let arn = f.create("db/app", r#"{"username":"app","password":"old-password","host":"db"}"#, &[]).await;
    f.rotate(&arn, GENERATED, None).await.unwrap();
    let (_, current) = f.value(&arn, "AWSCURRENT").await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&current).unwrap();
    assert_eq!(doc["username"], "app");
    assert_eq!(doc["host"], "db");
    assert_ne!(doc["password"], "old-password");
    assert_eq!(doc["password"].as_str().unwrap().len(), 32);

    // A field named in the rotator settings, with its own length.
    let arn2 = f.create("svc/key", r#"{"client_id":"x","client_secret":"s"}"#, &[]).await;
    f.service
        .rotate_secret(
            &ctx(),
            RotateSecretInput {
                secret_id: arn2.clone(),
                rotation_lambda_arn: Some(GENERATED.into()),
                metadata: Some(vec![("field".into(), "client_secret".into()), ("length".into(), "48".into())]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (_, current) = f.value(&arn2, "AWSCURRENT").await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&current).unwrap();
    assert_eq!(doc["client_secret"].as_str().unwrap().len(), 48);
    assert_eq!(doc["client_id"], "x");
}

#[tokio::test]
async fn a_failure_at_any_step_leaves_current_untouched_and_is_retried() {
    for step in
        [RotationStep::CreateSecret, RotationStep::SetSecret, RotationStep::TestSecret, RotationStep::FinishSecret]
    {
        let f = fixture();
        let rotator = Scripted::failing(Some(step), 1);
        f.service.rotators().register_arn(SCRIPTED, rotator.clone());
        let arn = f.create("payments/key", "v1", &[]).await;
        let (v1, _) = f.value(&arn, "AWSCURRENT").await.unwrap();

        let out = f.rotate(&arn, SCRIPTED, Some(7)).await.unwrap();
        let token = out.version_id.unwrap();
        // Still readable, still the old value.
        assert_eq!(f.value(&arn, "AWSCURRENT").await.unwrap(), (v1.clone(), "v1".into()), "{step:?}");
        let r = f.describe(&arn).await.record.rotation;
        let result = r.last_result.clone().unwrap();
        assert!(!result.succeeded);
        assert_eq!(result.failed_step.as_deref(), Some(step.as_str()));
        assert!(result.message.unwrap().contains("refused by the test"));
        assert_eq!(r.failures, 1);
        assert_eq!(r.retry_at, Some(T0 + 60_000));
        assert_eq!(r.in_progress.as_ref().unwrap().token, token);

        // Not retried before its time...
        let pass = f.service.rotate_due_secrets("us-east-1", 4).await.unwrap();
        assert_eq!(pass.rotated, 0);
        // ...then retried with the same token, and it succeeds.
        f.clock.advance_millis(60_000);
        let pass = f.service.rotate_due_secrets("us-east-1", 4).await.unwrap();
        assert_eq!(pass.rotated, 1, "{step:?}");
        let (current_version, current) = f.value(&arn, "AWSCURRENT").await.unwrap();
        assert_eq!(current_version, token);
        assert_eq!(current, format!("scripted-{token}"));
        assert_eq!(f.value(&arn, "AWSPREVIOUS").await.unwrap().0, v1);
        let r = f.describe(&arn).await.record.rotation;
        assert_eq!(r.failures, 0);
        assert!(r.in_progress.is_none());
        assert_eq!(r.next_rotation, Some(T0 + 60_000 + 7 * DAY));
    }
}

#[tokio::test]
async fn repeated_failures_are_abandoned_and_wait_for_the_next_schedule() {
    let f = fixture();
    f.service.rotators().register_arn(SCRIPTED, Scripted::failing(Some(RotationStep::TestSecret), 100));
    let arn = f.create("flaky", "v1", &[]).await;
    f.rotate(&arn, SCRIPTED, Some(30)).await.unwrap();
    for _ in 0..MAX_ROTATION_ATTEMPTS {
        f.clock.advance_millis(3_600_000);
        f.service.rotate_due_secrets("us-east-1", 1).await.unwrap();
    }
    let r = f.describe(&arn).await.record.rotation;
    assert!(r.in_progress.is_none(), "abandoned after {MAX_ROTATION_ATTEMPTS} attempts");
    assert_eq!(r.failures, MAX_ROTATION_ATTEMPTS);
    assert!(r.next_rotation.unwrap() > coffer_service::Clock::now_millis(f.clock.as_ref()));
    assert_eq!(f.value(&arn, "AWSPENDING").await.unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(f.value(&arn, "AWSCURRENT").await.unwrap().1, "v1");
}

#[tokio::test]
async fn the_scheduler_rotates_when_due_and_not_before() {
    let f = fixture();
    let arn = f.create("/prod/db/password", "p0", &[]).await;
    let rules = RotationRulesInput { automatically_after_days: Some(30), ..Default::default() };
    f.configure(&arn, GENERATED, Some(rules)).await;
    let r = f.describe(&arn).await.record.rotation;
    assert!(r.enabled);
    assert_eq!(r.next_rotation, Some(T0 + 30 * DAY));
    assert_eq!(f.value(&arn, "AWSCURRENT").await.unwrap().1, "p0", "RotateImmediately=false does not rotate");

    f.clock.advance_millis(30 * DAY - 1);
    assert_eq!(f.service.rotate_due_secrets("us-east-1", 4).await.unwrap().rotated, 0);
    f.clock.advance_millis(1);
    assert_eq!(f.service.rotate_due_secrets("us-east-1", 4).await.unwrap().rotated, 1);
    assert_ne!(f.value(&arn, "AWSCURRENT").await.unwrap().1, "p0");
    assert_eq!(f.describe(&arn).await.record.rotation.next_rotation, Some(T0 + 60 * DAY));
    // Done: the next pass has nothing to do.
    assert_eq!(f.service.rotate_due_secrets("us-east-1", 4).await.unwrap(), RotationPass::default());
}

#[tokio::test]
async fn a_sensitivity_implies_the_interval_when_no_rule_is_set() {
    let f = fixture();
    let arn = f.create("crit", "c0", &[("coffer:sensitivity", "critical")]).await;
    f.rotate(&arn, GENERATED, None).await.unwrap();
    let r = f.describe(&arn).await.record.rotation;
    assert_eq!(r.next_rotation, Some(T0 + 14 * DAY));
    let low = f.create("low", "l0", &[("coffer:sensitivity", "low")]).await;
    let status = f.service.rotation_status(&ctx()).await.unwrap();
    let low_status = status.iter().find(|s| s.arn == low).unwrap();
    assert!(!low_status.enabled);
    assert_eq!(low_status.due, Some(T0 + 365 * DAY), "not rotated automatically: due a year after its last change");
}

#[tokio::test]
async fn a_crash_mid_rotation_is_resumed_by_another_node_once_its_lease_lapses() {
    let f = fixture();
    let hangs: &str = "arn:aws:lambda:us-east-1:123456789012:function:hangs";
    f.service.rotators().register_arn(hangs, Arc::new(Hangs));
    let arn = f.create("resumable", "before", &[]).await;
    let service = f.service.clone();
    let id = arn.clone();
    let task = tokio::spawn(async move {
        service
            .rotate_secret(
                &root_ctx("us-east-1"),
                RotateSecretInput { secret_id: id, rotation_lambda_arn: Some(hangs.into()), ..Default::default() },
            )
            .await
    });
    // Wait until createSecret wrote the pending version, then "crash" the node.
    let token = loop {
        tokio::task::yield_now().await;
        if let Ok((version, _)) = f.value(&arn, "AWSPENDING").await {
            break version;
        }
    };
    task.abort();
    let _ = task.await;

    // Another node over the same store, whose generated rotator takes over the same function name.
    let other = node(f.store.clone(), f.clock.clone());
    other.rotators().register_arn(hangs, Arc::new(Resumes));
    // While the lease holds, a second rotation is refused and the scheduler leaves it alone.
    let err = other
        .rotate_secret(&ctx(), RotateSecretInput { secret_id: arn.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
    assert_eq!(err.message, "A previous rotation isn't complete. That rotation will be reattempted.");
    assert_eq!(other.rotate_due_secrets("us-east-1", 2).await.unwrap().rotated, 0);
    assert_eq!(f.value(&arn, "AWSCURRENT").await.unwrap().1, "before");

    f.clock.advance_millis(ROTATION_LEASE_MILLIS);
    assert_eq!(other.rotate_due_secrets("us-east-1", 2).await.unwrap().rotated, 1);
    // Resumed with the same token: the version written before the crash became current (read on the
    // node that resumed it; the crashed node's cache is gone with it).
    let f = Fixture { service: other, store: f.store.clone(), clock: f.clock.clone() };
    assert_eq!(f.value(&arn, "AWSCURRENT").await.unwrap(), (token, "written-before-the-crash".to_string()));
    assert_eq!(f.value(&arn, "AWSPREVIOUS").await.unwrap().1, "before");
}

/// The second node's rotator: steps succeed, createSecret keeps what is there.
struct Resumes;

#[async_trait::async_trait]
impl Rotator for Resumes {
    async fn run_step(&self, step: RotationStep, job: &RotationJob<'_>) -> Result<(), RotatorError> {
        if step == RotationStep::CreateSecret && job.read_pending().await?.is_none() {
            return Err(RotatorError::new("expected the pending version from before the crash"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn signing_keys_keep_the_previous_key_for_the_grace_period() {
    let f = fixture();
    let arn = f.create("jwt/signing", r#"{"kid":"k0","alg":"HS256","key":"c2VlZA=="}"#, &[]).await;
    f.service
        .rotate_secret(
            &ctx(),
            RotateSecretInput {
                secret_id: arn.clone(),
                rotation_lambda_arn: Some(SIGNING.into()),
                metadata: Some(vec![("grace_period_hours".into(), "2".into())]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (version, current) = f.value(&arn, "AWSCURRENT").await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&current).unwrap();
    assert_eq!(doc["kid"], version.as_str());
    assert_eq!(doc["alg"], "HS256");
    let key = doc["key"].as_str().unwrap();
    assert_eq!(base64_len(key), 32);
    // Both keys verify during the overlap...
    assert!(f.value(&arn, "AWSPREVIOUS").await.unwrap().1.contains("\"k0\""));
    f.clock.advance_millis(2 * 3_600_000 - 1);
    assert_eq!(f.service.rotate_due_secrets("us-east-1", 1).await.unwrap().expired_previous, 0);
    // ...and the old one stops being readable when it ends.
    f.clock.advance_millis(1);
    assert_eq!(f.service.rotate_due_secrets("us-east-1", 1).await.unwrap().expired_previous, 1);
    assert_eq!(f.value(&arn, "AWSPREVIOUS").await.unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(f.value(&arn, "AWSCURRENT").await.unwrap().0, version);
}

fn base64_len(text: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap().len()
}

#[tokio::test]
async fn rotate_secret_validates_as_secrets_manager_does() {
    let f = fixture();
    let arn = f.create("v", "x", &[]).await;
    let no_function = f
        .service
        .rotate_secret(&ctx(), RotateSecretInput { secret_id: arn.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(no_function.kind, ErrorKind::InvalidRequest);
    assert_eq!(no_function.message, "No Lambda rotation function ARN is associated with this secret.");
    let unknown = f.rotate(&arn, "arn:aws:lambda:us-east-1:123456789012:function:nobody", None).await.unwrap_err();
    assert_eq!(unknown.kind, ErrorKind::AccessDenied);
    assert_eq!(f.rotate(&arn, "not-an-arn", None).await.unwrap_err().kind, ErrorKind::InvalidParameter);
    assert_eq!(f.rotate(&arn, GENERATED, Some(0)).await.unwrap_err().kind, ErrorKind::InvalidParameter);
    assert_eq!(f.rotate("missing", GENERATED, None).await.unwrap_err().kind, ErrorKind::NotFound);
    // A pending version someone else left blocks a rotation.
    f.service
        .put_secret_value(
            &ctx(),
            PutSecretValueInput {
                secret_id: arn.clone(),
                client_request_token: Some(uuid()),
                value: Some(text("manual-pending")),
                version_stages: Some(vec!["AWSPENDING".into()]),
            },
        )
        .await
        .unwrap();
    let blocked = f.rotate(&arn, GENERATED, None).await.unwrap_err();
    assert_eq!(blocked.kind, ErrorKind::InvalidRequest);
    // Deleted secrets cannot rotate.
    let gone = f.create("gone", "x", &[]).await;
    f.service.delete_secret(&ctx(), DeleteSecretInput { secret_id: gone.clone(), ..Default::default() }).await.unwrap();
    assert_eq!(f.rotate(&gone, GENERATED, None).await.unwrap_err().kind, ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn cancel_turns_rotation_off() {
    let f = fixture();
    let arn = f.create("c", "x", &[]).await;
    f.rotate(&arn, GENERATED, Some(10)).await.unwrap();
    f.service.cancel_rotate_secret(&ctx(), &arn).await.unwrap();
    let r = f.describe(&arn).await.record.rotation;
    assert!(!r.enabled);
    assert!(r.next_rotation.is_none());
    f.clock.advance_millis(20 * DAY);
    assert_eq!(f.service.rotate_due_secrets("us-east-1", 1).await.unwrap().rotated, 0);
}

async fn responder(f: &Fixture, name: &str) -> RequestContext {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["coffer:*","secretsmanager:*"],"Resource":"*"}]}"#;
    let document = serde_json::to_vec(&UserDoc {
        user_id: format!("AIDA{}", name.to_ascii_uppercase()),
        path: "/".into(),
        created: T0,
        inline: BTreeMap::from([("responder".to_string(), policy.to_string())]),
        ..Default::default()
    })
    .unwrap();
    let record = IamEntityRecord { kind: IamKind::User, name: name.into(), document, revision: 1 };
    f.store.write_iam(vec![IamWrite::Create(record)], None).await.unwrap();
    f.service.refresh_iam().await.unwrap();
    RequestContext {
        principal: Principal {
            arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            account_id: ACCOUNT.into(),
            user_name: name.into(),
            access_key_id: format!("AKIA{}", name.to_ascii_uppercase()),
            kind: PrincipalKind::User { name: name.into() },
            session: None,
        },
        ..ctx()
    }
}

#[tokio::test]
async fn a_confirmed_breach_rotates_critical_and_high_secrets_after_a_second_approval() {
    let f = fixture();
    let critical = f.create("/prod/payments/stripe", "c", &[("coffer:sensitivity", "critical")]).await;
    let high = f.create("/prod/auth/jwt", "h", &[("coffer:sensitivity", "high")]).await;
    let medium = f.create("/prod/monitoring/dd", "m", &[("coffer:sensitivity", "medium")]).await;
    let no_rotator = f.create("/prod/legacy", "l", &[("coffer:sensitivity", "critical")]).await;
    for arn in [&critical, &high, &medium] {
        f.configure(arn, GENERATED, None).await;
    }
    let alice = responder(&f, "alice").await;
    let bob = responder(&f, "bob").await;
    f.clock.set(1_795_449_909_000);
    let input = OpenIncidentInput {
        incident_type: "confirmed-breach".into(),
        level: "critical".into(),
        reason: "credentials found in a public paste".into(),
        ..Default::default()
    };
    let opened = f.service.open_incident(&alice, input.clone()).await.unwrap();
    assert_eq!(opened.id, "SEC-20261123160509");
    assert_eq!(opened.status, "awaiting-approval");
    let planned: Vec<&str> = opened.plan.iter().map(|p| p.arn.as_str()).collect();
    assert!(planned.contains(&critical.as_str()) && planned.contains(&high.as_str()));
    assert!(!planned.contains(&medium.as_str()));
    let legacy = opened.plan.iter().find(|p| p.arn == no_rotator).unwrap();
    assert!(legacy.skip.is_some());
    // Nothing rotated yet.
    assert_eq!(f.value(&critical, "AWSCURRENT").await.unwrap().1, "c");

    // The opener cannot approve their own incident.
    let own = f.service.approve_incident(&alice, &opened.id).await.unwrap_err();
    assert_eq!(own.kind, ErrorKind::AccessDenied);
    let done = f.service.approve_incident(&bob, &opened.id).await.unwrap();
    assert_eq!(done.status, "completed");
    assert_eq!(done.approved_by.as_deref(), Some(bob.principal.arn.as_str()));
    let outcome = |arn: &str| done.results.iter().find(|r| r.arn == arn).unwrap().outcome.clone();
    assert_eq!(outcome(&critical), "rotated");
    assert_eq!(outcome(&high), "rotated");
    assert_eq!(outcome(&no_rotator), "skipped");
    assert_ne!(f.value(&critical, "AWSCURRENT").await.unwrap().1, "c");
    assert_eq!(f.value(&critical, "AWSPREVIOUS").await.unwrap().1, "c");
    assert_eq!(f.value(&medium, "AWSCURRENT").await.unwrap().1, "m");
    let r = f.describe(&critical).await.record.rotation;
    assert_eq!(r.last_result.unwrap().incident_id.as_deref(), Some("SEC-20261123160509"));
    // Approving twice does nothing more.
    assert_eq!(f.service.approve_incident(&bob, &opened.id).await.unwrap_err().kind, ErrorKind::InvalidRequest);
    let listed = f.service.list_incidents(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "completed");
}

#[tokio::test]
async fn an_urgent_bypass_rotates_at_once_and_types_select_as_the_playbook_says() {
    let f = fixture();
    let vendor = f.create("/prod/twilio", "t", &[("vendor", "twilio")]).await;
    let auth = f.create("/prod/sso", "s", &[("coffer:category", "authentication")]).await;
    let other = f.create("/prod/other", "o", &[]).await;
    for arn in [&vendor, &auth, &other] {
        f.configure(arn, GENERATED, None).await;
    }
    let departure = f
        .service
        .open_incident(
            &ctx(),
            OpenIncidentInput {
                incident_type: "employee-departure".into(),
                level: "high".into(),
                reason: "admin left".into(),
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(departure.plan.iter().map(|p| p.arn.clone()).collect::<Vec<_>>(), vec![auth.clone()]);
    assert_eq!(departure.status, "planned");
    assert!(f.service.list_incidents(&ctx()).await.unwrap().is_empty(), "a dry run records nothing");

    let vendor_incident = f
        .service
        .open_incident(
            &ctx(),
            OpenIncidentInput {
                incident_type: "vendor-compromise".into(),
                level: "critical".into(),
                reason: "vendor breach notice".into(),
                tags: vec![("vendor".into(), "twilio".into())],
                urgent_bypass: Some("active exploitation".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(vendor_incident.status, "completed");
    assert_eq!(vendor_incident.results.len(), 1);
    assert_ne!(f.value(&vendor, "AWSCURRENT").await.unwrap().1, "t");
    assert_eq!(f.value(&other, "AWSCURRENT").await.unwrap().1, "o");
    let shown = f.service.get_incident(&ctx(), &vendor_incident.id).await.unwrap();
    assert_eq!(shown.bypass_reason.as_deref(), Some("active exploitation"));

    for bad in [
        OpenIncidentInput {
            incident_type: "meteor".into(),
            level: "high".into(),
            reason: "r".into(),
            ..Default::default()
        },
        OpenIncidentInput {
            incident_type: "suspected-breach".into(),
            level: "dire".into(),
            reason: "r".into(),
            ..Default::default()
        },
        OpenIncidentInput {
            incident_type: "suspected-breach".into(),
            level: "high".into(),
            reason: " ".into(),
            ..Default::default()
        },
        OpenIncidentInput {
            incident_type: "accidental-exposure".into(),
            level: "high".into(),
            reason: "r".into(),
            ..Default::default()
        },
    ] {
        assert_eq!(f.service.open_incident(&ctx(), bad).await.unwrap_err().kind, ErrorKind::InvalidParameter);
    }
}

#[tokio::test]
async fn a_cron_rotation_runs_in_its_window_and_a_missed_window_waits_for_the_next() {
    let f = fixture();
    let arn = f.create("windowed", "w0", &[]).await;
    // T0 is 2023-11-14T22:13:20Z; daily at 23:00 UTC with a two-hour window.
    let rules = RotationRulesInput {
        schedule_expression: Some("cron(0 23 * * ? *)".into()),
        duration: Some("2h".into()),
        ..Default::default()
    };
    f.configure(&arn, GENERATED, Some(rules)).await;
    let first = f.describe(&arn).await.record.rotation.next_rotation.unwrap();
    assert_eq!(first, 1_700_002_800_000, "2023-11-14T23:00:00Z");
    // Inside the window: rotated.
    f.clock.set(first + 3_600_000);
    assert_eq!(f.service.rotate_due_secrets("us-east-1", 1).await.unwrap().rotated, 1);
    let second = f.describe(&arn).await.record.rotation.next_rotation.unwrap();
    assert_eq!(second, first + DAY);
    // The whole next window passes with the server down: no late rotation, the one after is planned.
    f.clock.set(second + 3 * 3_600_000);
    assert_eq!(f.service.rotate_due_secrets("us-east-1", 1).await.unwrap().rotated, 0);
    assert_eq!(f.describe(&arn).await.record.rotation.next_rotation, Some(second + DAY));
    let (_, value) = f.value(&arn, "AWSCURRENT").await.unwrap();
    assert_ne!(value, "w0");
}

#[tokio::test]
async fn no_value_old_or_new_reaches_the_audit_log_during_rotations() {
    let f = fixture();
    let canary = "synthetic-canary-3f9a1c77d2";
    let arn = f.create("canary/db", &format!(r#"{{"username":"app","password":"{canary}"}}"#), &[]).await;
    f.rotate(&arn, GENERATED, Some(30)).await.unwrap();
    let (_, rotated) = f.value(&arn, "AWSCURRENT").await.unwrap();
    let new_password =
        serde_json::from_str::<serde_json::Value>(&rotated).unwrap()["password"].as_str().unwrap().to_string();
    let signing =
        f.create("canary/jwt", r#"{"kid":"k0","alg":"HS256","key":"c3ludGhldGljLWNhbmFyeS1rZXk="}"#, &[]).await;
    f.rotate(&signing, SIGNING, None).await.unwrap();
    let (_, key_doc) = f.value(&signing, "AWSCURRENT").await.unwrap();
    let new_key = serde_json::from_str::<serde_json::Value>(&key_doc).unwrap()["key"].as_str().unwrap().to_string();
    f.service.rotators().register_arn(SCRIPTED, Scripted::failing(Some(RotationStep::TestSecret), 1));
    f.rotate(&arn, SCRIPTED, None).await.unwrap();
    f.service.flush_audit().await.unwrap();

    let records = f.store.audit_records_from(1, 100_000).await.unwrap();
    assert!(records.len() > 10, "rotation steps are audited");
    let log: String = records.iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect();
    assert!(log.contains("RotationSucceeded") && log.contains("RotationFailed") && log.contains("RotationStep"));
    for planted in [canary, new_password.as_str(), new_key.as_str(), "c3ludGhldGljLWNhbmFyeS1rZXk="] {
        assert!(!log.contains(planted), "a value reached the audit log");
    }
}
