//! The client library's `SecretCache` against the real `coffer` server: hits that never reach the server
//! (counted in the server's own audit log), a manifest that fails naming every missing required item
//! and fills in defaults, a server stopped mid-test (stale values served, health reporting the error,
//! fresh values after it restarts on the same data directory and port), and dotenv mode giving the same
//! answers from a file. No value ever appears in errors, health reports or the server's log.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use coffer_client::cache::{CacheError, HealthStatus};
use coffer_client::source::{SecretSource, SourceSpec};
use coffer_client::{CacheSettings, Client, ClientConfig, Manifest, ManifestItem, ResolveOptions, SecretCache};
use coffer_wire::cloudtrail::{LookupAttribute, LookupEventsRequest};
use common::{coffer, text, TestServer};

fn ok(server: &TestServer, args: &[&str]) {
    let out = coffer(server, args);
    assert!(out.status.success(), "coffer {args:?} failed:\n{}", text(&out));
}

fn client_as(server: &TestServer, id: &str, secret: &str) -> Client {
    Client::new(ClientConfig {
        endpoint: server.endpoint.clone(),
        region: "us-east-1".into(),
        credentials: coffer_sigv4::Credentials {
            access_key_id: id.into(),
            secret_access_key: secret.into(),
            session_token: None,
        },
        ca_bundle: None,
    })
    .unwrap()
}

/// The server as the source, signed with the root credentials (or `creds`).
fn server_source(server: &TestServer, creds: Option<(&str, &str)>) -> SecretSource {
    let (id, secret) = match creds {
        Some((id, secret)) => (id.to_string(), secret.to_string()),
        None => server.root_keys(),
    };
    SecretSource::Server { secrets: client_as(server, &id, &secret), parameters: client_as(server, &id, &secret) }
}

fn settings(ttl: Duration) -> CacheSettings {
    CacheSettings { ttl, background_refresh: false, ..CacheSettings::default() }
}

async fn secret_text(cache: &SecretCache, id: &str) -> String {
    cache.get_secret(id).await.unwrap().value.expose_str().unwrap().to_string()
}

async fn value_text(cache: &SecretCache, key: &str) -> Option<String> {
    cache.value(key).await.unwrap().map(|v| v.expose_str().unwrap().to_string())
}

/// How many `event_name` events the server's audit log holds for `resource`.
async fn audited(server: &TestServer, event_name: &str, resource: &str) -> usize {
    let (id, secret) = server.root_keys();
    let client = client_as(server, &id, &secret);
    let request = LookupEventsRequest {
        lookup_attributes: Some(vec![LookupAttribute {
            attribute_key: "ResourceName".into(),
            attribute_value: resource.into(),
        }]),
        ..LookupEventsRequest::default()
    };
    let page = client.lookup_events(&request).await.unwrap();
    assert!(page.next_token.is_none(), "one page is enough here");
    page.events.iter().filter(|e| e.event_name == event_name).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_hits_do_not_reach_the_server_within_the_ttl() {
    // Reads' audit events written before their responses, so the count below is exact.
    let server = TestServer::start_with(&["--audit-flush-interval-ms", "0"], &[]);
    ok(&server, &["secret", "create", "/app/db", "--value", "canary-db-v1-4f1a"]);
    ok(&server, &["param", "put", "/app/url", "--value", "https://canary-url", "--type", "SecureString"]);
    let cache = SecretCache::new(server_source(&server, None), settings(Duration::from_secs(300))).unwrap();

    for _ in 0..3 {
        assert_eq!(secret_text(&cache, "/app/db").await, "canary-db-v1-4f1a");
    }
    for _ in 0..2 {
        let parameter = cache.get_parameter("/app/url").await.unwrap();
        assert_eq!(parameter.value.expose_str().unwrap(), "https://canary-url", "decrypted");
        assert_eq!(parameter.parameter_type.as_deref(), Some("SecureString"));
    }
    // A new value on the server is not seen within the TTL: the cache did not ask.
    ok(&server, &["secret", "put", "/app/db", "--value", "canary-db-v2-4f1a"]);
    assert_eq!(secret_text(&cache, "/app/db").await, "canary-db-v1-4f1a");
    assert_eq!(audited(&server, "GetSecretValue", "/app/db").await, 1, "one read for four gets");
    assert_eq!(audited(&server, "GetParameter", "/app/url").await, 1, "one read for two gets");
    let health = cache.health();
    assert_eq!((health.hits, health.misses), (4, 2));

    // Until the change is announced: the next get reads again.
    assert_eq!(cache.invalidate("/app/db"), 1);
    assert_eq!(secret_text(&cache, "/app/db").await, "canary-db-v2-4f1a");
    assert_eq!(audited(&server, "GetSecretValue", "/app/db").await, 2);

    // A version by stage is its own entry; the values under a path are one entry too.
    let previous = cache.get_secret_version("/app/db", &coffer_client::SecretVersion::stage("AWSPREVIOUS")).await;
    assert_eq!(previous.unwrap().value.expose_str().unwrap(), "canary-db-v1-4f1a");
    let listing = cache.get_path("/app", false).await.unwrap();
    let names: Vec<&str> = listing.variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["DB", "URL"]);
    let misses = cache.health().misses;
    cache.get_path("/app/", false).await.unwrap();
    assert_eq!(cache.health().misses, misses, "the same path: a hit");

    let json = serde_json::to_string(&cache.health()).unwrap();
    assert!(!json.contains("canary"), "{json}");
    assert!(!server.log_text().contains("canary"), "no value in the server's log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_fails_naming_every_missing_required_item_and_defaults_the_optional_ones() {
    let server = TestServer::start();
    ok(&server, &["secret", "create", "whatsapp-saas/mvp/admin-token", "--value", "canary-admin-77"]);
    ok(&server, &["secret", "create", "whatsapp-saas/mvp/openai-model", "--value", "gpt-4o"]);
    ok(&server, &["param", "put", "/whatsapp-saas/mvp/api-url", "--value", "https://api.example", "--type", "String"]);
    let dir = tempfile::tempdir().unwrap();
    let manifest_file = dir.path().join("secrets.toml");
    std::fs::write(
        &manifest_file,
        r#"
[[secret]]
name = "whatsapp-saas/mvp/admin-token"
description = "Admin API authentication token"

[[secret]]
name = "whatsapp-saas/mvp/database-url"
description = "PostgreSQL connection string"

[[secret]]
name = "whatsapp-saas/mvp/openai-model"
required = false
default = "gpt-4"

[[secret]]
name = "whatsapp-saas/mvp/openai-max-tokens"
required = false
default = "1000"

[[secret]]
name = "whatsapp-saas/mvp/whatsapp-phone-number-id"
required = false

[[parameter]]
name = "/whatsapp-saas/mvp/api-url"
key = "API_URL"

[[parameter]]
name = "/whatsapp-saas/mvp/redis-url"
"#,
    )
    .unwrap();
    let manifest = Manifest::load(&manifest_file).unwrap();

    let cache = SecretCache::new(server_source(&server, None), settings(Duration::from_secs(300))).unwrap();
    let err = cache.load_manifest(&manifest).await.unwrap_err();
    let CacheError::MissingRequired(missing) = &err else { panic!("{err}") };
    let keys: Vec<&str> = missing.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["DATABASE_URL", "REDIS_URL"], "every missing required item, and only those");
    assert_eq!(
        err.to_string(),
        "2 required items are missing: DATABASE_URL (secret whatsapp-saas/mvp/database-url: not found), \
         REDIS_URL (parameter /whatsapp-saas/mvp/redis-url: not found)"
    );
    let health = cache.health();
    assert_eq!(health.status, HealthStatus::Unhealthy);
    assert!(!health.required_ok);
    assert_eq!(health.items["DATABASE_URL"].absent_because.as_deref(), Some("ResourceNotFoundException"));

    // Once they exist, the same manifest starts; optional items absent get their defaults.
    ok(&server, &["secret", "create", "whatsapp-saas/mvp/database-url", "--value", "postgres://canary-db"]);
    ok(&server, &["param", "put", "/whatsapp-saas/mvp/redis-url", "--value", "redis://r", "--type", "SecureString"]);
    let report = cache.load_manifest(&manifest).await.unwrap();
    assert_eq!(report.loaded, 5);
    assert_eq!(report.defaults, ["OPENAI_MAX_TOKENS"]);
    assert_eq!(report.absent, ["WHATSAPP_PHONE_NUMBER_ID"]);
    assert_eq!(value_text(&cache, "ADMIN_TOKEN").await.as_deref(), Some("canary-admin-77"));
    assert_eq!(value_text(&cache, "DATABASE_URL").await.as_deref(), Some("postgres://canary-db"));
    assert_eq!(value_text(&cache, "OPENAI_MODEL").await.as_deref(), Some("gpt-4o"), "present: not the default");
    assert_eq!(value_text(&cache, "OPENAI_MAX_TOKENS").await.as_deref(), Some("1000"));
    assert_eq!(value_text(&cache, "WHATSAPP_PHONE_NUMBER_ID").await, None);
    assert_eq!(value_text(&cache, "API_URL").await.as_deref(), Some("https://api.example"));
    assert_eq!(value_text(&cache, "REDIS_URL").await.as_deref(), Some("redis://r"));
    let health = cache.health();
    assert_eq!(health.status, HealthStatus::Healthy, "{health:#?}");
    assert_eq!(health.misses, 0, "every value came from the start's batch");
    let json = serde_json::to_string(&health).unwrap();
    assert!(!json.contains("canary") && !json.contains("gpt-4o") && !json.contains("redis://"), "{json}");

    // A caller without any permission: BatchGetSecretValue is refused as a whole, each item is read
    // on its own, and every required one is named with the denial.
    ok(&server, &["iam", "user", "create", "app"]);
    let out = coffer(&server, &["iam", "access-key", "create", "--user", "app", "--json"]);
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, secret) = (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string(),
        key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_string(),
    );
    let denied = SecretCache::new(server_source(&server, Some((&id, &secret))), settings(Duration::from_secs(300)));
    let err = denied.unwrap().load_manifest(&manifest).await.unwrap_err();
    let CacheError::MissingRequired(missing) = &err else { panic!("{err}") };
    assert_eq!(missing.items.len(), 4, "{err}");
    assert!(missing.items.iter().all(|i| i.reason.starts_with("AccessDeniedException: User: ")), "{err}");
    assert!(err.to_string().contains("secretsmanager:GetSecretValue"), "{err}");
    assert!(!err.to_string().contains("canary"));
}

/// Polls `check` until it holds or `within` passes.
async fn eventually(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within {within:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_values_outlive_a_stopped_server_and_fresh_ones_return_after_it_restarts() {
    let mut server = TestServer::start();
    ok(&server, &["secret", "create", "/prod/app/token", "--value", "canary-token-v1-9c"]);
    ok(&server, &["param", "put", "/prod/app/mode", "--value", "blue", "--type", "String"]);
    let settings = CacheSettings {
        ttl: Duration::from_secs(2),
        max_stale: Duration::from_secs(600),
        fetch_timeout: Duration::from_secs(2),
        background_refresh: true,
        ..CacheSettings::default()
    };
    let cache = SecretCache::new(server_source(&server, None), settings).unwrap();
    let manifest = Manifest::new()
        .secret(ManifestItem::required("/prod/app/token"))
        .parameter(ManifestItem::required("/prod/app/mode"));
    cache.load_manifest(&manifest).await.unwrap();
    assert_eq!(cache.health().status, HealthStatus::Healthy);

    server.stop();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Past the TTL with the server down: the cached values stand in.
    assert_eq!(value_text(&cache, "TOKEN").await.as_deref(), Some("canary-token-v1-9c"));
    assert_eq!(secret_text(&cache, "/prod/app/token").await, "canary-token-v1-9c");
    assert_eq!(cache.get_parameter("/prod/app/mode").await.unwrap().value.expose(), b"blue");
    let health = cache.health();
    assert_eq!(health.status, HealthStatus::Degraded, "{health:#?}");
    assert!(health.required_ok);
    assert!(health.expired >= 1 && health.stale_served >= 1, "{health:#?}");
    let error = health.last_error.as_ref().expect("the failure is reported");
    assert_eq!(error.code, "ServiceUnavailable");
    assert!(error.message.contains(&server.endpoint), "{error:?}");
    let json = serde_json::to_string(&health).unwrap();
    assert!(!json.contains("canary"), "{json}");
    // A secret never read before has nothing to stand in for it.
    let err = cache.get_secret("/prod/app/other").await.unwrap_err();
    assert!(matches!(err, CacheError::Unavailable { .. }), "{err}");

    // The server comes back on the same data directory and port, with a new value: the background
    // refresh brings it in without anyone asking.
    server.restart_on_same_port();
    ok(&server, &["secret", "put", "/prod/app/token", "--value", "canary-token-v2-9c"]);
    eventually("the new value replacing the stale one", Duration::from_secs(20), async || {
        value_text(&cache, "TOKEN").await.as_deref() == Some("canary-token-v2-9c")
    })
    .await;
    eventually("health recovering", Duration::from_secs(20), async || cache.health().status == HealthStatus::Healthy)
        .await;
    assert!(!server.log_text().contains("canary"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotenv_mode_gives_the_same_answers_from_a_file() {
    let server = TestServer::start();
    ok(&server, &["secret", "create", "shop/prod/admin-token", "--value", "canary-admin-5e"]);
    ok(&server, &["secret", "create", "shop/prod/stripe-key", "--value", "canary-stripe-5e"]);
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, "ADMIN_TOKEN=canary-admin-5e\nSTRIPE_KEY=\"canary-stripe-5e\"\nEXTRA=1\n").unwrap();
    let manifest = Manifest::new()
        .secret(ManifestItem::required("shop/prod/admin-token"))
        .secret(ManifestItem::required("shop/prod/stripe-key"))
        .secret(ManifestItem::optional("shop/prod/feature-flags").with_default("{}"));

    let spec: SourceSpec = format!("dotenv:{}", env_file.display()).parse().unwrap();
    let from_file = SecretCache::open(&spec, &ResolveOptions::default(), settings(Duration::from_secs(300))).unwrap();
    let from_server = SecretCache::new(server_source(&server, None), settings(Duration::from_secs(300))).unwrap();
    for cache in [&from_file, &from_server] {
        cache.load_manifest(&manifest).await.unwrap();
        assert_eq!(value_text(cache, "ADMIN_TOKEN").await.as_deref(), Some("canary-admin-5e"));
        assert_eq!(value_text(cache, "STRIPE_KEY").await.as_deref(), Some("canary-stripe-5e"));
        assert_eq!(value_text(cache, "FEATURE_FLAGS").await.as_deref(), Some("{}"));
        // A secret id finds the file's key by its last segment, as `coffer exec` names variables.
        assert_eq!(secret_text(cache, "shop/prod/admin-token").await, "canary-admin-5e");
    }
    let health = from_file.health();
    assert_eq!((health.source, health.status), ("dotenv", HealthStatus::Healthy));
    assert_eq!(health.location, env_file.display().to_string());
    assert_eq!(from_server.health().source, "server");
    // A path in dotenv mode is the whole file, as for `coffer exec`.
    let all = from_file.get_path("/shop/prod", false).await.unwrap();
    assert_eq!(all.variables.len(), 3);
    // A missing required key fails the same way as a missing secret.
    std::fs::write(&env_file, "ADMIN_TOKEN=canary-admin-5e\n").unwrap();
    let fresh = SecretCache::open(&spec, &ResolveOptions::default(), settings(Duration::from_secs(300))).unwrap();
    let err = fresh.load_manifest(&manifest).await.unwrap_err();
    assert_eq!(err.to_string(), "1 required item is missing: STRIPE_KEY (secret shop/prod/stripe-key: not found)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_events_bring_a_new_value_within_a_second_of_the_put() {
    let server = TestServer::start();
    ok(&server, &["secret", "create", "/events/db", "--value", "events-v1"]);
    ok(&server, &["param", "put", "/events/flag", "--value", "off", "--type", "String"]);
    let cache = SecretCache::new(server_source(&server, None), settings(Duration::from_secs(3600))).unwrap();
    let watch = cache
        .watch_changes(coffer_client::events::WatchRequest {
            wait: Duration::from_secs(2),
            ..coffer_client::events::WatchRequest::paths(["/events".to_string()])
        })
        .expect("a server source can watch");
    assert_eq!(secret_text(&cache, "/events/db").await, "events-v1");
    assert_eq!(cache.get_parameter("/events/flag").await.unwrap().value.expose_str().unwrap(), "off");

    // With an hour's TTL only the change event can bring the new values.
    ok(&server, &["secret", "put", "/events/db", "--value", "events-v2"]);
    ok(&server, &["param", "put", "/events/flag", "--value", "on", "--type", "String", "--overwrite"]);
    let started = Instant::now();
    eventually("the new secret value", Duration::from_secs(1), async || {
        secret_text(&cache, "/events/db").await == "events-v2"
    })
    .await;
    eventually("the new parameter value", Duration::from_secs(1), async || {
        cache.get_parameter("/events/flag").await.unwrap().value.expose_str().unwrap() == "on"
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    // Dropping the last clone of the cache ends the subscription.
    drop(cache);
    let ended = tokio::time::timeout(Duration::from_secs(10), watch).await.expect("the watch ends");
    assert!(ended.is_err_and(|e| e.is_cancelled()), "aborted with the cache");
}
