//! What [`SecretCache::health`](super::SecretCache::health) reports: a serializable summary an
//! application can put in its own `/healthz` (seed 002's `services.secrets`) and, per manifest item, its
//! secrets-health endpoint. Names, counts, ages, codes and times only — never a value.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde::Serialize;
use tokio::time::Instant;

use super::{Cached, Shared};
use crate::manifest::ItemKind;

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Every required item is loaded and the last refresh worked.
    Healthy,
    /// Every required item is loaded, but the last read from the source failed or a manifest item is
    /// past its TTL: values are being served stale.
    Degraded,
    /// A required item of the manifest is not loaded.
    Unhealthy,
}

/// The last failure to read from the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthError {
    /// AWS's error code, or `ServiceUnavailable`, `Timeout`, `DotenvUnreadable`.
    pub code: String,
    /// The server's or the transport's message (names and endpoints, never values).
    pub message: String,
    /// What was being read, e.g. `secret prod/db`.
    pub reading: String,
    /// When (RFC 3339).
    pub at: Option<String>,
}

/// One manifest item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemHealth {
    pub kind: ItemKind,
    pub name: String,
    pub required: bool,
    pub loaded: bool,
    pub has_default: bool,
    /// Absent from the source and answered by its default.
    pub using_default: bool,
    /// Why it is not loaded (an error code), when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absent_because: Option<String>,
    /// Seconds since it was read from the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<f64>,
    /// When it was read from the source (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The cache's state, for a health endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheHealth {
    pub status: HealthStatus,
    /// `server` or `dotenv`.
    pub source: &'static str,
    /// The server's endpoint or the dotenv file's path.
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Values held (secrets, parameters and path listings).
    pub loaded: usize,
    /// Whether every required manifest item is loaded (true without a manifest).
    pub required_ok: bool,
    /// Seconds since the oldest held value was read from the source.
    pub cache_age_seconds: Option<f64>,
    /// Values past their TTL: awaiting a refresh, or served stale while the source is unavailable.
    pub expired: usize,
    /// When a value was last read from the source (RFC 3339).
    pub last_refresh: Option<String>,
    pub last_error: Option<HealthError>,
    pub ttl_seconds: u64,
    pub max_stale_seconds: u64,
    pub hits: u64,
    pub misses: u64,
    pub stale_served: u64,
    pub background_refreshes: u64,
    /// The manifest's items by key (empty without a manifest).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub items: BTreeMap<String, ItemHealth>,
}

fn rfc3339(t: SystemTime) -> Option<String> {
    time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).ok()
}

fn seconds(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

pub(super) fn report(shared: &Shared) -> CacheHealth {
    let state = shared.lock();
    let now = Instant::now();
    let ttl = shared.settings.ttl;
    let held = || state.entries.values().filter(|e| !matches!(e.value, Cached::Absent { .. }));
    let loaded = held().count();
    let oldest = held().map(|e| e.age(now)).max();
    let expired = held().filter(|e| e.invalidated || e.age(now) >= ttl).count();

    let mut items = BTreeMap::new();
    let mut required_ok = true;
    for item in &state.manifest {
        let entry = state.entries.get(&item.cache_key);
        let loaded = entry.is_some_and(|e| !matches!(e.value, Cached::Absent { .. }));
        let absent_because = match entry.map(|e| &e.value) {
            Some(Cached::Absent { code, .. }) => Some(code.clone()),
            None => Some(state.failures.get(&item.cache_key).cloned().unwrap_or_else(|| "NotLoaded".into())),
            Some(_) => None,
        };
        if item.required && !loaded {
            required_ok = false;
        }
        items.insert(
            item.key.clone(),
            ItemHealth {
                kind: item.kind,
                name: item.name.clone(),
                required: item.required,
                loaded,
                has_default: item.default.is_some(),
                using_default: !loaded && item.default.is_some(),
                absent_because: if loaded { None } else { absent_because },
                age_seconds: entry.filter(|_| loaded).map(|e| seconds(e.age(now))),
                read_at: entry.filter(|_| loaded).and_then(|e| rfc3339(e.fetched_wall)),
                description: item.description.clone(),
            },
        );
    }
    let last_error = state.last_error.as_ref().map(|e| HealthError {
        code: e.code.clone(),
        message: e.message.clone(),
        reading: e.what.clone(),
        at: rfc3339(e.at),
    });
    // An error after the last successful read means the source is failing now.
    let failing = match (&state.last_error, state.last_refresh) {
        (Some(error), Some(refresh)) => error.at > refresh,
        (Some(_), None) => true,
        (None, _) => false,
    };
    // A value nobody reads any more may expire quietly; the manifest's items are kept fresh, so one of
    // them past its TTL means the refresh is not working.
    let manifest_expired = state
        .manifest
        .iter()
        .filter_map(|item| state.entries.get(&item.cache_key))
        .any(|e| !matches!(e.value, Cached::Absent { .. }) && (e.invalidated || e.age(now) >= ttl));
    let status = if !required_ok {
        HealthStatus::Unhealthy
    } else if failing || manifest_expired {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    };
    CacheHealth {
        status,
        source: shared.source.kind(),
        location: shared.source.location(),
        region: shared.source.region().map(str::to_string),
        loaded,
        required_ok,
        cache_age_seconds: oldest.map(seconds),
        expired,
        last_refresh: state.last_refresh.and_then(rfc3339),
        last_error,
        ttl_seconds: ttl.as_secs(),
        max_stale_seconds: shared.settings.max_stale.as_secs(),
        hits: shared.counters.hits.load(Ordering::Relaxed),
        misses: shared.counters.misses.load(Ordering::Relaxed),
        stale_served: shared.counters.stale_served.load(Ordering::Relaxed),
        background_refreshes: shared.counters.background_refreshes.load(Ordering::Relaxed),
        items,
    }
}
