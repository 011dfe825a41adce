//! The audit trail at the service level: every request's event, a change's event in the change's
//! transaction, denied and failed requests, internal actions, the hash chain, digests, retention,
//! lookups — and never a secret value in an event.

#![allow(clippy::unwrap_used)]

mod common;

use coffer_audit::{Event, LookupAttribute};
use coffer_crypto::SecretBytes;
use coffer_service::audit::{AuditNotes, AuditSearch, Outcome};
use coffer_service::secrets::{CreateSecretInput, GetSecretValueInput, PutSecretValueInput, SecretValue};
use coffer_service::{RequestContext, Service};
use coffer_store::{MemoryStore, Store};
use common::{root_ctx, service, ACCOUNT};

const CANARY: &str = "canary-7d1f0c2e-never-in-the-log";

fn op(ctx: RequestContext, source: &'static str, name: &'static str, read_only: bool) -> RequestContext {
    RequestContext { audit: AuditNotes::new(source, name, read_only), ..ctx }
}

fn sm(name: &'static str, read_only: bool) -> RequestContext {
    op(root_ctx("us-east-1"), "secretsmanager.amazonaws.com", name, read_only)
}

async fn create(service: &Service, name: &str) -> String {
    let ctx = sm("CreateSecret", false);
    let created = service
        .create_secret(
            &ctx,
            CreateSecretInput {
                name: name.into(),
                client_request_token: Some("00000000-0000-4000-8000-000000000001".into()),
                value: Some(SecretValue::String(SecretBytes::from(CANARY.to_string()))),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The change carried its event: nothing is left to record at the end of the request.
    assert!(ctx.audit.is_recorded());
    service.record_request(&ctx, &Outcome::default()).await.unwrap();
    created.arn
}

/// A GetSecretValue of `name` by root, recorded as the front-end records a request that succeeded.
async fn read_and_record(service: &Service, name: &str) {
    let ctx = sm("GetSecretValue", true);
    service.get_secret_value(&ctx, GetSecretValueInput { secret_id: name.into(), ..Default::default() }).await.unwrap();
    service.record_request(&ctx, &Outcome::default()).await.unwrap();
}

async fn all_events(store: &MemoryStore) -> Vec<(u64, Event)> {
    let records = store.audit_records_from(1, 10_000).await.unwrap();
    records.into_iter().map(|r| (r.seq, Event::from_json(&r.body).unwrap())).collect()
}

#[tokio::test]
async fn a_change_commits_its_event_and_a_read_queues_one() {
    let (service, store, _clock) = service();
    let arn = create(&service, "prod/db").await;
    let events = all_events(&store).await;
    assert_eq!(events.len(), 1, "the change's event is in the log without any flush");
    let (_, created) = &events[0];
    assert_eq!(created.event_name, "CreateSecret");
    assert_eq!(created.event_source, "secretsmanager.amazonaws.com");
    assert_eq!(created.user_identity.identity_type, "Root");
    assert_eq!(created.resources[0].arn, arn);
    assert_eq!(created.resources[0].resource_type, "AWS::SecretsManager::Secret");
    assert!(!created.read_only);

    read_and_record(&service, "prod/db").await;
    assert_eq!(all_events(&store).await.len(), 1, "a read's event waits for the flush");
    assert_eq!(service.audit_pending(), 1);
    service.flush_audit().await.unwrap();
    let events = all_events(&store).await;
    assert_eq!(events.len(), 2);
    let (_, read) = &events[1];
    assert_eq!(read.event_name, "GetSecretValue");
    assert!(read.read_only);
    assert_eq!(read.resources[0].arn, arn);
    assert_eq!(read.additional_event_data.as_ref().unwrap()["actorSource"], "api");
}

#[tokio::test]
async fn no_event_holds_a_value() {
    let (service, store, _clock) = service();
    create(&service, "app/key").await;
    let ctx = sm("PutSecretValue", false);
    service
        .put_secret_value(
            &ctx,
            PutSecretValueInput {
                secret_id: "app/key".into(),
                client_request_token: Some("00000000-0000-4000-8000-000000000002".into()),
                value: Some(SecretValue::String(SecretBytes::from(format!("{CANARY}-2")))),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let ctx = sm("GetSecretValue", true);
    service
        .get_secret_value(&ctx, GetSecretValueInput { secret_id: "app/key".into(), ..Default::default() })
        .await
        .unwrap();
    service.record_request(&ctx, &Outcome::default()).await.unwrap();
    service.flush_audit().await.unwrap();
    let records = store.audit_records_from(1, 100).await.unwrap();
    assert_eq!(records.len(), 3);
    for r in records {
        let text = String::from_utf8_lossy(&r.body);
        assert!(!text.contains(CANARY), "event {} holds the value: {text}", r.seq);
    }
}

#[tokio::test]
async fn a_denied_request_is_recorded_with_its_error() {
    let (service, store, _clock) = service();
    create(&service, "prod/api").await;
    let root = sm("CreateUser", false);
    service.create_user(&root, "mallory", None, vec![]).await.unwrap();
    let key = service.create_user_access_key(&sm("CreateAccessKey", false), Some("mallory".into())).await.unwrap();
    let principal = service.credential(&key.info.access_key_id).await.unwrap().unwrap().principal.clone();
    let ctx = RequestContext { principal, ..sm("GetSecretValue", true) };
    let denied = service
        .get_secret_value(&ctx, GetSecretValueInput { secret_id: "prod/api".into(), ..Default::default() })
        .await
        .unwrap_err();
    service.record_request(&ctx, &Outcome::error("AccessDeniedException", denied.message.clone())).await.unwrap();
    service.flush_audit().await.unwrap();
    let (_, event) = all_events(&store).await.pop().unwrap();
    assert_eq!(event.event_name, "GetSecretValue");
    assert_eq!(event.error_code.as_deref(), Some("AccessDeniedException"));
    assert_eq!(event.user_identity.identity_type, "IAMUser");
    assert_eq!(event.user_identity.user_name.as_deref(), Some("mallory"));
    assert_eq!(event.user_identity.access_key_id.as_deref(), Some(key.info.access_key_id.as_str()));
    // Authorized against the secret's ARN, so the denied event names it.
    assert!(event.resources[0].arn.contains(":secret:prod/api-"));
}

#[tokio::test]
async fn the_chain_links_every_record_to_its_predecessor() {
    let (service, store, _clock) = service();
    for i in 0..5 {
        create(&service, &format!("chain/{i}")).await;
    }
    let records = store.audit_records_from(1, 100).await.unwrap();
    let mut prev = coffer_audit::chain::GENESIS;
    for r in &records {
        assert_eq!(r.prev_hash, prev, "record {}", r.seq);
        prev = coffer_audit::chain::record_hash(r.seq, &r.prev_hash, r.time_ms, &r.event_id, &r.body);
    }
    assert_eq!(store.audit_head().await.unwrap().hash, prev);
}

#[tokio::test]
async fn digests_sign_the_head_and_verify_with_the_public_key() {
    let (service, store, _clock) = service();
    assert_eq!(service.sign_audit_digest().await.unwrap(), None, "nothing to sign on an empty log");
    create(&service, "d/1").await;
    assert_eq!(service.sign_audit_digest().await.unwrap(), Some(1));
    assert_eq!(service.sign_audit_digest().await.unwrap(), None, "the head is already covered");
    create(&service, "d/2").await;
    assert_eq!(service.sign_audit_digest().await.unwrap(), Some(2));
    let digests = store.audit_digests(1, 10).await.unwrap();
    let key = service.audit_public_key().unwrap();
    for d in &digests {
        assert!(key.verify(&d.body, &d.signature), "digest {} verifies", d.number);
    }
    assert_eq!(digests[1].last_seq, 2);
}

#[tokio::test]
async fn retention_prunes_at_a_digest_and_keeps_the_rest_verifiable() {
    let (service, store, clock) = service();
    create(&service, "old/1").await;
    create(&service, "old/2").await;
    service.sign_audit_digest().await.unwrap();
    // Past the seven-year retention.
    clock.advance_millis(2_558 * 86_400_000);
    create(&service, "new/1").await;
    service.sign_audit_digest().await.unwrap();
    let report = service.prune_audit().await.unwrap();
    assert_eq!(report.records_removed, 2);
    assert_eq!(report.kept_from_seq, Some(3));
    let records = store.audit_records_from(1, 10).await.unwrap();
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3]);
    // The digest at the cut anchors what is left.
    let digests = store.audit_digests(1, 10).await.unwrap();
    assert_eq!(digests[0].last_seq, 2);
    let anchor: serde_json::Value = serde_json::from_slice(&digests[0].body).unwrap();
    assert_eq!(anchor["lastHash"], hex::encode(records[0].prev_hash));
}

#[tokio::test]
async fn lookups_find_events_by_attribute_newest_first_and_page() {
    let (service, _store, _clock) = service();
    for i in 0..4 {
        create(&service, &format!("prod/svc{i}")).await;
    }
    let ctx = sm("LookupEvents", true);
    let page = service
        .lookup_events(
            &ctx,
            AuditSearch {
                attribute: Some((LookupAttribute::ResourceName, "prod/svc2".into())),
                max_results: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].resources[0].1, "prod/svc2");
    // Newest first, one a page, every event once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let search = AuditSearch {
            attribute: Some((LookupAttribute::EventName, "CreateSecret".into())),
            max_results: 1,
            next_token: token.clone(),
            ..Default::default()
        };
        let page = service.lookup_events(&ctx, search).await.unwrap();
        seen.extend(page.events.iter().map(|e| e.seq));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, vec![4, 3, 2, 1]);
    // Wildcards in Coffer's search.
    let wild = AuditSearch {
        attribute: Some((LookupAttribute::ResourceName, "prod/svc?".into())),
        wildcards: true,
        max_results: 50,
        ..Default::default()
    };
    assert_eq!(service.lookup_events(&ctx, wild).await.unwrap().events.len(), 4);
    let bad = AuditSearch { next_token: Some("not a token".into()), max_results: 5, ..Default::default() };
    assert_eq!(service.lookup_events(&ctx, bad).await.unwrap_err().kind, coffer_service::ErrorKind::InvalidNextToken);
}

#[tokio::test]
async fn scheduled_deletion_is_a_service_event() {
    let (service, store, clock) = service();
    let arn = create(&service, "gone/soon").await;
    let ctx = sm("DeleteSecret", false);
    service
        .delete_secret(
            &ctx,
            coffer_service::secrets::DeleteSecretInput {
                secret_id: "gone/soon".into(),
                recovery_window_in_days: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    clock.advance_millis(8 * 86_400_000);
    assert_eq!(service.purge_due_deletions().await.unwrap(), 1);
    let (_, event) = all_events(&store).await.pop().unwrap();
    assert_eq!(event.event_name, "DeleteSecret");
    assert_eq!(event.event_type, "AwsServiceEvent");
    assert_eq!(event.user_identity.identity_type, "AWSService");
    assert_eq!(event.additional_event_data.as_ref().unwrap()["actorSource"], "scheduler");
    assert_eq!(event.resources[0].arn, arn);
    assert_eq!(event.recipient_account_id.as_deref(), Some(ACCOUNT));
}

#[tokio::test]
async fn a_log_that_cannot_be_written_refuses_requests_until_it_can() {
    let (service, store, _clock) = service();
    create(&service, "fc/1").await;
    store.fail_audit_appends(Some("disk full"));

    // A change whose event cannot be written does not happen.
    let ctx = sm("CreateSecret", false);
    let refused = service
        .create_secret(
            &ctx,
            CreateSecretInput {
                name: "fc/2".into(),
                client_request_token: Some("00000000-0000-4000-8000-000000000003".into()),
                value: Some(SecretValue::String(SecretBytes::from("v".to_string()))),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.kind, coffer_service::ErrorKind::Unavailable);
    let get = GetSecretValueInput { secret_id: "fc/2".into(), ..Default::default() };
    assert!(service.get_secret_value(&sm("GetSecretValue", true), get).await.is_err(), "nothing was created");

    // A read is queued; the flush fails, and from then on requests are refused with the reason.
    let ctx = sm("GetSecretValue", true);
    service
        .get_secret_value(&ctx, GetSecretValueInput { secret_id: "fc/1".into(), ..Default::default() })
        .await
        .unwrap();
    service.record_request(&ctx, &Outcome::default()).await.unwrap();
    assert!(service.flush_audit().await.is_err());
    assert!(service.audit_failure().unwrap().contains("disk full"));
    let refused = service.record_request(&sm("GetSecretValue", true), &Outcome::default()).await.unwrap_err();
    assert_eq!(refused.kind, coffer_service::ErrorKind::Unavailable);
    assert!(refused.message.contains("disk full"), "{}", refused.message);

    // Writable again: the queued event is written (nothing lost) and requests are served.
    store.fail_audit_appends(None);
    service.flush_audit().await.unwrap();
    assert_eq!(service.audit_failure(), None);
    let events = all_events(&store).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].1.event_name, "GetSecretValue");
    service.record_request(&sm("GetSecretValue", true), &Outcome::default()).await.unwrap();
}

#[tokio::test]
async fn a_flush_writes_what_was_queued_when_it_began_and_leaves_later_events_for_the_next() {
    let (service, store, _clock) = service();
    let service = std::sync::Arc::new(service);
    create(&service, "fl/1").await;
    let read = || read_and_record(&service, "fl/1");
    for _ in 0..3 {
        read().await;
    }
    assert_eq!(service.audit_pending(), 3);

    // The flush takes the three and is held in the store while two more requests end.
    store.hold_audit_appends(true);
    let flushing = {
        let service = service.clone();
        tokio::spawn(async move { service.flush_audit().await })
    };
    while store.audit_appends_begun() == 0 {
        tokio::task::yield_now().await;
    }
    read().await;
    read().await;
    store.hold_audit_appends(false);
    flushing.await.unwrap().unwrap();

    // Written: the creation and the three it began with; the two that came during it wait, in order.
    assert_eq!(all_events(&store).await.len(), 4);
    assert_eq!(service.audit_pending(), 2);
    assert_eq!(store.audit_appends_begun(), 1, "one append: the flush did not chase the late events");
    service.flush_audit().await.unwrap();
    let events = all_events(&store).await;
    assert_eq!(events.len(), 6);
    assert!(events[1..].iter().all(|(_, e)| e.event_name == "GetSecretValue"));
    assert_eq!(service.audit_pending(), 0);
}

#[tokio::test]
async fn lookups_by_broad_attributes_and_by_arn_scan_and_filter() {
    let (service, _store, _clock) = service();
    let arn = create(&service, "scan/a").await;
    create(&service, "scan/b").await;
    let ctx = sm("GetSecretValue", true);
    service
        .get_secret_value(&ctx, GetSecretValueInput { secret_id: "scan/a".into(), ..Default::default() })
        .await
        .unwrap();
    service.record_request(&ctx, &Outcome::default()).await.unwrap();
    service.flush_audit().await.unwrap();
    let lookup = |attribute, value: &str| AuditSearch {
        attribute: Some((attribute, value.to_string())),
        max_results: 50,
        ..Default::default()
    };
    let q = sm("LookupEvents", true);
    let by_arn = service.lookup_events(&q, lookup(LookupAttribute::ResourceName, &arn)).await.unwrap();
    assert_eq!(by_arn.events.len(), 2, "CreateSecret and GetSecretValue on that ARN");
    let reads = service.lookup_events(&q, lookup(LookupAttribute::ReadOnly, "true")).await.unwrap();
    assert_eq!(reads.events.iter().map(|e| e.event_name.as_str()).collect::<Vec<_>>(), vec!["GetSecretValue"]);
    let writes = service.lookup_events(&q, lookup(LookupAttribute::ReadOnly, "false")).await.unwrap();
    assert_eq!(writes.events.len(), 2);
    let by_type =
        service.lookup_events(&q, lookup(LookupAttribute::ResourceType, "AWS::SecretsManager::Secret")).await.unwrap();
    assert_eq!(by_type.events.len(), 3);
    let by_source = service.lookup_events(&q, lookup(LookupAttribute::EventSource, "kms.amazonaws.com")).await.unwrap();
    assert!(by_source.events.is_empty());
}
