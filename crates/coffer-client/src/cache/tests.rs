//! The cache's rules on a dotenv source and paused time: hits, expiry, stale-on-error and its limit,
//! refusals, eviction, background refresh, invalidation, manifests. (Against a real server, the same
//! rules are tested in `coffer-cli/tests/client_cache.rs`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::manifest::ManifestItem;

/// A dotenv file the test rewrites, and a cache reading it.
struct Fixture {
    _dir: tempfile::TempDir,
    file: PathBuf,
    cache: SecretCache,
}

fn settings(ttl_s: u64, max_stale_s: u64) -> CacheSettings {
    CacheSettings {
        ttl: Duration::from_secs(ttl_s),
        max_stale: Duration::from_secs(max_stale_s),
        background_refresh: false,
        ..CacheSettings::default()
    }
}

fn fixture(contents: &str, settings: CacheSettings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(".env");
    std::fs::write(&file, contents).unwrap();
    let cache = SecretCache::new(SecretSource::Dotenv(file.clone()), settings).unwrap();
    Fixture { _dir: dir, file, cache }
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap();
}

async fn text(cache: &SecretCache, id: &str) -> String {
    cache.get_secret(id).await.unwrap().value.expose_str().unwrap().to_string()
}

async fn advance(seconds: u64) {
    tokio::time::advance(Duration::from_secs(seconds)).await;
}

#[tokio::test(start_paused = true)]
async fn hits_within_the_ttl_do_not_read_the_source_again() {
    let f = fixture("ADMIN_TOKEN=one\n", settings(300, 3600));
    assert_eq!(text(&f.cache, "whatsapp-saas/mvp/admin-token").await, "one");
    write(&f.file, "ADMIN_TOKEN=two\n");
    advance(299).await;
    assert_eq!(text(&f.cache, "whatsapp-saas/mvp/admin-token").await, "one", "a hit within the TTL");
    advance(2).await;
    assert_eq!(text(&f.cache, "whatsapp-saas/mvp/admin-token").await, "two", "read again past the TTL");
    let health = f.cache.health();
    assert_eq!((health.hits, health.misses), (1, 2));
    assert_eq!(health.source, "dotenv");
    assert_eq!(health.status, HealthStatus::Healthy);
    // A value nobody reads expires quietly: no failure, so still healthy.
    advance(301).await;
    let health = f.cache.health();
    assert_eq!((health.expired, health.status), (1, HealthStatus::Healthy));
}

#[tokio::test(start_paused = true)]
async fn stale_values_stand_in_for_an_unavailable_source_up_to_max_stale() {
    let f = fixture("DB_URL=postgres://canary-7d2e\n", settings(60, 120));
    assert_eq!(text(&f.cache, "DB_URL").await, "postgres://canary-7d2e");
    std::fs::remove_file(&f.file).unwrap();
    advance(61).await;
    assert_eq!(text(&f.cache, "DB_URL").await, "postgres://canary-7d2e", "stale, the source being unavailable");
    let health = f.cache.health();
    assert_eq!(health.status, HealthStatus::Degraded);
    assert_eq!((health.expired, health.stale_served), (1, 1));
    assert_eq!(health.last_error.as_ref().unwrap().code, "DotenvUnreadable");
    let json = serde_json::to_string(&health).unwrap();
    assert!(!json.contains("canary-7d2e"), "{json}");

    advance(120).await;
    let err = f.cache.get_secret("DB_URL").await.unwrap_err();
    assert!(matches!(err, CacheError::Unavailable { .. }), "{err}");
    assert_eq!(f.cache.health().loaded, 0, "past max_stale the value is gone");
}

#[tokio::test(start_paused = true)]
async fn refusals_pass_through_and_drop_the_value() {
    let f = fixture("A=1\nB=2\n", settings(60, 3600));
    text(&f.cache, "A").await;
    write(&f.file, "B=2\n");
    advance(61).await;
    let err = f.cache.get_secret("A").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(f.cache.health().loaded, 0);
}

#[tokio::test(start_paused = true)]
async fn the_least_recently_used_value_is_evicted() {
    let f = fixture("A=1\nB=2\nC=3\n", CacheSettings { max_entries: 2, ..settings(300, 0) });
    text(&f.cache, "A").await;
    text(&f.cache, "B").await;
    text(&f.cache, "A").await;
    text(&f.cache, "C").await;
    assert_eq!(f.cache.health().loaded, 2);
    let misses = f.cache.health().misses;
    text(&f.cache, "A").await;
    assert_eq!(f.cache.health().misses, misses, "A was used recently: kept");
    text(&f.cache, "B").await;
    assert_eq!(f.cache.health().misses, misses + 1, "B was evicted");
}

/// Lets `seconds` pass a second at a time, letting the cache's background tasks run at each (paused
/// time: the test decides when time passes).
async fn pass(seconds: u64) {
    for _ in 0..seconds {
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
        advance(1).await;
    }
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn values_in_use_are_refreshed_in_the_background_before_they_expire() {
    let f = fixture("A=1\nB=1\n", CacheSettings { background_refresh: true, ..settings(100, 0) });
    pass(0).await;
    assert_eq!(text(&f.cache, "A").await, "1");
    assert_eq!(text(&f.cache, "B").await, "1");
    write(&f.file, "A=2\nB=2\n");
    // The background task (a pass every 10 s) reads both again past 80 % of the TTL.
    pass(90).await;
    assert!(f.cache.health().background_refreshes >= 2);
    pass(20).await;
    let misses = f.cache.health().misses;
    assert_eq!(text(&f.cache, "A").await, "2", "past the first read's TTL, yet a hit with the new value");
    assert_eq!(f.cache.health().misses, misses);

    // A refreshed value nobody reads is not refreshed again: B (unread since its refresh) expires and,
    // with no staleness allowed, leaves; A, read at 110 s, is refreshed once more.
    pass(100).await;
    assert_eq!(f.cache.health().loaded, 1);
    let refreshes = f.cache.health().background_refreshes;
    pass(200).await;
    assert_eq!(f.cache.health().background_refreshes, refreshes, "A was not read after its refresh");
    assert_eq!(f.cache.health().loaded, 0);
}

#[tokio::test(start_paused = true)]
async fn invalidation_makes_the_next_read_ask_the_source() {
    let f = fixture("A=1\nDB=x\n", settings(300, 3600));
    text(&f.cache, "/app/a").await;
    let listing = f.cache.get_path("/app", false).await.unwrap();
    assert_eq!(listing.variables.len(), 2, "in dotenv mode a path is the whole file");
    write(&f.file, "A=2\nDB=x\n");
    assert_eq!(text(&f.cache, "/app/a").await, "1");
    assert_eq!(f.cache.invalidate("/app/a"), 2, "the secret and the path holding it");
    assert_eq!(f.cache.invalidate("/app/a"), 0, "already marked");
    assert_eq!(text(&f.cache, "/app/a").await, "2");
    assert_eq!(f.cache.invalidate_all(), 1, "the path listing is still marked; the secret was just read");
    assert_eq!(f.cache.health().expired, 2);
}

#[tokio::test(start_paused = true)]
async fn a_manifest_fails_listing_every_missing_required_item_and_defaults_the_optional_ones() {
    let f = fixture("ADMIN_TOKEN=canary-admin-11\nOPENAI_MODEL=gpt-4o\n", settings(300, 3600));
    let manifest = Manifest::new()
        .secret(ManifestItem::required("whatsapp-saas/mvp/admin-token").with_description("admin API token"))
        .secret(ManifestItem::required("whatsapp-saas/mvp/database-url"))
        .parameter(ManifestItem::required("/whatsapp-saas/mvp/redis-url"))
        .secret(ManifestItem::optional("whatsapp-saas/mvp/openai-model").with_default("gpt-4"))
        .secret(ManifestItem::optional("whatsapp-saas/mvp/openai-max-tokens").with_default("1000"))
        .secret(ManifestItem::optional("whatsapp-saas/mvp/whatsapp-phone-number-id"));
    let err = f.cache.load_manifest(&manifest).await.unwrap_err();
    let CacheError::MissingRequired(missing) = &err else { panic!("{err}") };
    let keys: Vec<&str> = missing.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["DATABASE_URL", "REDIS_URL"]);
    assert_eq!(
        err.to_string(),
        "2 required items are missing: DATABASE_URL (secret whatsapp-saas/mvp/database-url: not found), \
         REDIS_URL (parameter /whatsapp-saas/mvp/redis-url: not found)"
    );
    assert_eq!(f.cache.health().status, HealthStatus::Unhealthy);

    write(&f.file, "ADMIN_TOKEN=canary-admin-11\nOPENAI_MODEL=gpt-4o\nDATABASE_URL=pg\nREDIS_URL=redis\n");
    let report = f.cache.load_manifest(&manifest).await.unwrap();
    assert_eq!(report.loaded, 4);
    assert_eq!(report.defaults, ["OPENAI_MAX_TOKENS"]);
    assert_eq!(report.absent, ["WHATSAPP_PHONE_NUMBER_ID"]);
    let value = |key: &'static str| {
        let cache = f.cache.clone();
        async move { cache.value(key).await.unwrap().map(|v| v.expose_str().unwrap().to_string()) }
    };
    assert_eq!(value("ADMIN_TOKEN").await.as_deref(), Some("canary-admin-11"));
    assert_eq!(value("OPENAI_MODEL").await.as_deref(), Some("gpt-4o"), "present: the default is not used");
    assert_eq!(value("OPENAI_MAX_TOKENS").await.as_deref(), Some("1000"));
    assert_eq!(value("WHATSAPP_PHONE_NUMBER_ID").await, None);
    assert!(matches!(f.cache.value("NOPE").await, Err(CacheError::UnknownKey(_))));
    let misses = f.cache.health().misses;
    value("OPENAI_MAX_TOKENS").await;
    assert_eq!(f.cache.health().misses, misses, "an absent optional item is cached as absent");

    let health = f.cache.health();
    assert_eq!(health.status, HealthStatus::Healthy);
    assert!(health.required_ok);
    assert!(health.items["OPENAI_MAX_TOKENS"].using_default);
    assert_eq!(health.items["ADMIN_TOKEN"].description.as_deref(), Some("admin API token"));
    let json = serde_json::to_string(&health).unwrap();
    assert!(!json.contains("canary-admin") && !json.contains("gpt-4o") && !json.contains("1000\""), "{json}");
}

#[tokio::test(start_paused = true)]
async fn debug_output_never_shows_a_value() {
    let f = fixture("A=canary-debug-3\n", settings(300, 3600));
    let secret = f.cache.get_secret("A").await.unwrap();
    let shown = format!("{secret:?} {:?} {:?}", f.cache, f.cache.get_path("/", true).await.unwrap());
    assert!(!shown.contains("canary-debug"), "{shown}");
}

#[tokio::test(start_paused = true)]
async fn versions_other_than_the_current_one_are_refused_in_dotenv_mode() {
    let f = fixture("A=1\n", settings(300, 3600));
    let err = f.cache.get_secret_version("A", &SecretVersion::stage("AWSPREVIOUS")).await.unwrap_err();
    assert!(matches!(err, CacheError::Rejected { .. }), "{err}");
    assert_eq!(
        f.cache.get_secret_version("A", &SecretVersion::stage("AWSCURRENT")).await.unwrap().value.expose(),
        b"1"
    );
}

#[test]
fn settings_out_of_range_are_refused() {
    let source = || SecretSource::Dotenv(PathBuf::from(".env"));
    let too_long = CacheSettings { ttl: Duration::from_secs(3601), ..CacheSettings::default() };
    assert!(matches!(SecretCache::new(source(), too_long), Err(CacheError::Settings(_))));
    let none = CacheSettings { max_entries: 0, ..CacheSettings::default() };
    assert!(SecretCache::new(source(), none).is_err());
    let hour = CacheSettings { ttl: MAX_TTL, ..CacheSettings::default() };
    assert!(SecretCache::new(source(), hour).is_ok(), "seed 002's hour is the longest TTL");
}
