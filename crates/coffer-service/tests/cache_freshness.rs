//! How long a node serves its cached copy of a record another node changed: until a change notice
//! names it, and never longer than the configured maximum age (so a lost notice delays a change by at
//! most that age). Two services over one in-memory store stand for two nodes over one database:
//! "a" writes behind "b"'s back; both share one manual clock.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use coffer_crypto::{Keyring, MasterKey, SecretBytes};
use coffer_service::parameters::ops::PutParameterInput;
use coffer_service::secrets::*;
use coffer_service::{ErrorKind, ManualClock, RequestContext, Service, ServiceConfig};
use coffer_store::{ChangeNotice, MemoryStore};

const REGION: &str = "us-east-1";
const MAX_AGE_MS: i64 = 5_000;

struct Nodes {
    /// The node that writes.
    a: Service,
    /// The node whose cache is under test.
    b: Service,
    clock: Arc<ManualClock>,
}

fn nodes(cache_max_age: Option<Duration>) -> Nodes {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(common::T0));
    let node = || {
        Service::new(
            store.clone(),
            Arc::new(Keyring::new(&MasterKey::from_bytes(common::MASTER_KEY))),
            clock.clone(),
            ServiceConfig { account_id: common::ACCOUNT.into(), cache_max_age, ..Default::default() },
        )
    };
    Nodes { a: node(), b: node(), clock }
}

fn ctx() -> RequestContext {
    common::root_ctx(REGION)
}

/// The id of the version a call creates, as the AWS SDKs fill it in.
fn token() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn text(s: &str) -> SecretValue {
    SecretValue::String(SecretBytes::from(s.to_string()))
}

async fn create_secret(node: &Service, name: &str, value: &str) -> String {
    let input = CreateSecretInput {
        name: name.into(),
        client_request_token: Some(token()),
        value: Some(text(value)),
        ..Default::default()
    };
    node.create_secret(&ctx(), input).await.unwrap().arn
}

async fn put_secret(node: &Service, name: &str, value: &str) {
    let input = PutSecretValueInput {
        secret_id: name.into(),
        client_request_token: Some(token()),
        value: Some(text(value)),
        version_stages: None,
    };
    node.put_secret_value(&ctx(), input).await.unwrap();
}

async fn secret_value(node: &Service, name: &str) -> String {
    let input = GetSecretValueInput { secret_id: name.into(), ..Default::default() };
    match node.get_secret_value(&ctx(), input).await.unwrap().value {
        SecretValue::String(s) => s.expose_str().unwrap().to_string(),
        SecretValue::Binary(_) => panic!("a binary value"),
    }
}

async fn put_parameter(node: &Service, name: &str, value: &str, overwrite: bool) {
    let input = PutParameterInput {
        name: name.into(),
        value: Some(SecretBytes::from(value.to_string())),
        parameter_type: (!overwrite).then(|| "SecureString".into()),
        overwrite,
        ..Default::default()
    };
    node.put_parameter(&ctx(), input).await.unwrap();
}

async fn parameter_value(node: &Service, name: &str) -> String {
    node.get_parameter(&ctx(), name, true).await.unwrap().value.expose_str().unwrap().to_string()
}

#[tokio::test]
async fn a_cached_secret_older_than_the_maximum_age_is_read_again() {
    let n = nodes(Some(Duration::from_millis(MAX_AGE_MS as u64)));
    create_secret(&n.a, "app/db", "first").await;
    assert_eq!(secret_value(&n.b, "app/db").await, "first");

    put_secret(&n.a, "app/db", "second").await;
    // No notice reached b: it serves its copy while the copy is young enough...
    assert_eq!(secret_value(&n.b, "app/db").await, "first");
    n.clock.advance_millis(MAX_AGE_MS);
    assert_eq!(secret_value(&n.b, "app/db").await, "first", "an entry exactly the maximum age is still served");
    // ...and reads the store once it is older.
    n.clock.advance_millis(1);
    assert_eq!(secret_value(&n.b, "app/db").await, "second");

    // The reloaded copy is cached again, with a new age.
    put_secret(&n.a, "app/db", "third").await;
    assert_eq!(secret_value(&n.b, "app/db").await, "second");
    n.clock.advance_millis(MAX_AGE_MS + 1);
    assert_eq!(secret_value(&n.b, "app/db").await, "third");
}

#[tokio::test]
async fn a_cached_parameter_older_than_the_maximum_age_is_read_again() {
    let n = nodes(Some(Duration::from_millis(MAX_AGE_MS as u64)));
    put_parameter(&n.a, "/app/url", "first", false).await;
    assert_eq!(parameter_value(&n.b, "/app/url").await, "first");

    put_parameter(&n.a, "/app/url", "second", true).await;
    assert_eq!(parameter_value(&n.b, "/app/url").await, "first");
    n.clock.advance_millis(MAX_AGE_MS);
    assert_eq!(parameter_value(&n.b, "/app/url").await, "first");
    n.clock.advance_millis(1);
    assert_eq!(parameter_value(&n.b, "/app/url").await, "second");
}

/// A clock set back makes cached entries look younger than they are: they are read again instead of
/// being trusted for as long as the clock jumped.
#[tokio::test]
async fn entries_from_the_future_are_read_again() {
    let n = nodes(Some(Duration::from_millis(MAX_AGE_MS as u64)));
    create_secret(&n.a, "app/clock", "first").await;
    assert_eq!(secret_value(&n.b, "app/clock").await, "first");
    put_secret(&n.a, "app/clock", "second").await;
    n.clock.advance_millis(-3_600_000);
    assert_eq!(secret_value(&n.b, "app/clock").await, "second");
}

/// Without a maximum age (one node over SQLite) a cached copy is served until a notice names it.
#[tokio::test]
async fn without_a_maximum_age_only_notices_refresh() {
    let n = nodes(None);
    let arn = create_secret(&n.a, "app/forever", "first").await;
    put_parameter(&n.a, "/app/forever", "first", false).await;
    assert_eq!(secret_value(&n.b, "app/forever").await, "first");
    assert_eq!(parameter_value(&n.b, "/app/forever").await, "first");

    put_secret(&n.a, "app/forever", "second").await;
    put_parameter(&n.a, "/app/forever", "second", true).await;
    n.clock.advance_millis(86_400_000);
    assert_eq!(secret_value(&n.b, "app/forever").await, "first");
    assert_eq!(parameter_value(&n.b, "/app/forever").await, "first");

    n.b.apply_change_notice(&ChangeNotice::Secret { arn });
    assert_eq!(secret_value(&n.b, "app/forever").await, "second");
    assert_eq!(parameter_value(&n.b, "/app/forever").await, "first", "the notice named the secret only");
    n.b.apply_change_notice(&ChangeNotice::Parameter { region: REGION.into(), name: "/app/forever".into() });
    assert_eq!(parameter_value(&n.b, "/app/forever").await, "second");
}

/// A notice applies at once, well within the maximum age: a change, a deletion, and `Everything`.
#[tokio::test]
async fn notices_drop_cached_copies_at_once() {
    let n = nodes(Some(Duration::from_millis(MAX_AGE_MS as u64)));
    let arn = create_secret(&n.a, "app/notice", "first").await;
    put_parameter(&n.a, "/app/notice", "first", false).await;
    assert_eq!(secret_value(&n.b, "app/notice").await, "first");
    assert_eq!(parameter_value(&n.b, "/app/notice").await, "first");

    put_secret(&n.a, "app/notice", "second").await;
    put_parameter(&n.a, "/app/notice", "second", true).await;
    n.b.apply_change_notice(&ChangeNotice::Everything);
    assert_eq!(secret_value(&n.b, "app/notice").await, "second");
    assert_eq!(parameter_value(&n.b, "/app/notice").await, "second");

    let delete = DeleteSecretInput {
        secret_id: "app/notice".into(),
        recovery_window_in_days: None,
        force_delete_without_recovery: Some(true),
    };
    n.a.delete_secret(&ctx(), delete).await.unwrap();
    n.b.apply_change_notice(&ChangeNotice::Secret { arn });
    let input = GetSecretValueInput { secret_id: "app/notice".into(), ..Default::default() };
    assert_eq!(n.b.get_secret_value(&ctx(), input).await.unwrap_err().kind, ErrorKind::NotFound);
}
