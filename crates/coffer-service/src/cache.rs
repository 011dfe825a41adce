//! A read-through cache of secret records (ciphertext only: envelopes stay sealed in memory and are
//! opened per request). It makes GetSecretValue a memory lookup plus one decryption.
//!
//! Coherence: every write the service makes goes through [`SecretCache::store_if_newer`] with the exact
//! state it committed; a state only replaces a cached one with a lower revision, so racing writers and
//! readers cannot put an older state back. Deletions bump an epoch so a read that started before a
//! delete cannot re-insert the deleted secret. Other nodes' writes (PostgreSQL) arrive through
//! [`SecretCache::invalidate`] (the store's change feed) and, should a notice be lost, are seen once
//! the entry is older than the [`Freshness`] maximum age: an entry past it is a miss, and reloaded.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use coffer_policy::{Policy, PolicyKind};
use coffer_store::{EpochMillis, SecretState};

use crate::clock::{Clock, SystemClock};

/// Beyond this many secrets the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 200_000;

/// How long a cached record is served without reading it again: the bound on how stale a copy can
/// be when the notice of another node's change was lost. Shared by the secret and parameter caches.
#[derive(Clone)]
pub(crate) struct Freshness {
    clock: Arc<dyn Clock>,
    /// In clock milliseconds; `None` when entries never expire (one node: every change to the data
    /// goes through this node's caches, and reading the clock on each hit would buy nothing).
    max_age_millis: Option<i64>,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness { clock: Arc::new(SystemClock), max_age_millis: None }
    }
}

impl Freshness {
    /// `max_age` of `None` or zero: entries never expire.
    pub(crate) fn new(clock: Arc<dyn Clock>, max_age: Option<Duration>) -> Self {
        let max_age_millis =
            max_age.filter(|age| !age.is_zero()).map(|age| i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        Freshness { clock, max_age_millis }
    }

    /// Reads the clock once for a lookup, or not at all when entries never expire.
    pub(crate) fn now(&self) -> Option<Now> {
        self.max_age_millis.map(|max_age| Now { at: self.clock.now_millis(), max_age })
    }

    /// The stamp of an entry cached now (0 when entries never expire: no clock read).
    pub(crate) fn stamp(&self) -> EpochMillis {
        if self.max_age_millis.is_some() {
            self.clock.now_millis()
        } else {
            0
        }
    }
}

/// The time a lookup judges entries at.
#[derive(Clone, Copy)]
pub(crate) struct Now {
    at: EpochMillis,
    max_age: i64,
}

/// Whether an entry stamped `loaded_at` may still be served (`now` of `None`: always). An entry from
/// the future (the system clock was set back) is not: its age is unknown, and trusting it could keep
/// a stale copy for as long as the clock jumped.
pub(crate) fn admits(now: Option<Now>, loaded_at: EpochMillis) -> bool {
    now.is_none_or(|now| (0..=now.max_age).contains(&now.at.saturating_sub(loaded_at)))
}

/// A cached record and when it was cached.
pub(crate) struct Stamped<T> {
    pub(crate) value: Arc<T>,
    pub(crate) loaded_at: EpochMillis,
}

impl<T> Stamped<T> {
    /// The record, if it may still be served at `now`.
    pub(crate) fn fresh(&self, now: Option<Now>) -> Option<Arc<T>> {
        admits(now, self.loaded_at).then(|| self.value.clone())
    }
}

#[derive(Default)]
struct Inner {
    by_arn: HashMap<String, Stamped<SecretState>>,
    /// region -> name -> ARN; nested so lookups borrow `&str` instead of allocating a key.
    arn_by_name: HashMap<String, HashMap<String, String>>,
    epoch: u64,
}

/// A secret's resource policy, parsed once: authorization evaluates it on every request.
struct CachedPolicy {
    /// The stored text it was parsed from; a different text (the policy changed) is parsed again.
    text: String,
    policy: Arc<Policy>,
}

#[derive(Default)]
pub struct SecretCache {
    inner: RwLock<Inner>,
    /// ARN -> parsed resource policy, next to the cached records.
    policies: RwLock<HashMap<String, CachedPolicy>>,
    freshness: Freshness,
}

impl SecretCache {
    pub(crate) fn new(freshness: Freshness) -> Self {
        SecretCache { freshness, ..Default::default() }
    }

    /// The cached secret, unless it is older than the maximum age.
    pub fn by_arn(&self, arn: &str) -> Option<Arc<SecretState>> {
        let now = self.freshness.now();
        self.inner.read().ok()?.by_arn.get(arn)?.fresh(now)
    }

    /// The cached secret, unless it is older than the maximum age.
    pub fn by_name(&self, region: &str, name: &str) -> Option<Arc<SecretState>> {
        let now = self.freshness.now();
        let inner = self.inner.read().ok()?;
        let arn = inner.arn_by_name.get(region)?.get(name)?;
        inner.by_arn.get(arn)?.fresh(now)
    }

    /// The epoch to pass to [`store_if_newer`](Self::store_if_newer) for a state about to be loaded.
    pub fn epoch(&self) -> u64 {
        self.inner.read().map(|i| i.epoch).unwrap_or(0)
    }

    /// Caches `state` unless a newer revision is cached or a deletion happened since `epoch`. A cached
    /// entry past the maximum age is replaced whatever its revision: it is not served any more, and
    /// keeping it would make every read of a secret re-created under the same ARN a miss.
    pub fn store_if_newer(&self, state: Arc<SecretState>, epoch: u64) {
        let now = self.freshness.now();
        let loaded_at = self.freshness.stamp();
        let Ok(mut inner) = self.inner.write() else { return };
        if inner.epoch != epoch {
            return;
        }
        if let Some(existing) = inner.by_arn.get(&state.secret.arn) {
            if existing.value.secret.revision > state.secret.revision && admits(now, existing.loaded_at) {
                return;
            }
        }
        if inner.by_arn.len() >= MAX_ENTRIES {
            inner.by_arn.clear();
            inner.arn_by_name.clear();
        }
        inner
            .arn_by_name
            .entry(state.secret.region.clone())
            .or_default()
            .insert(state.secret.name.clone(), state.secret.arn.clone());
        inner.by_arn.insert(state.secret.arn.clone(), Stamped { value: state, loaded_at });
    }

    /// Records a new last-accessed day on the cached copy (it does not change the revision).
    pub fn set_last_accessed(&self, arn: &str, revision: u64, day: EpochMillis) {
        let Ok(mut inner) = self.inner.write() else { return };
        if let Some(existing) = inner.by_arn.get_mut(arn) {
            // The stamp stays: this is this node's own change, not a fresh read of the store.
            if existing.value.secret.revision == revision {
                let mut updated = (*existing.value).clone();
                updated.secret.last_accessed = Some(day);
                existing.value = Arc::new(updated);
            }
        }
    }

    /// Forgets one secret (it was deleted, or changed elsewhere) and fences out in-flight loads.
    pub fn invalidate(&self, arn: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.epoch += 1;
            if let Some(entry) = inner.by_arn.remove(arn) {
                let secret = &entry.value.secret;
                if let Some(names) = inner.arn_by_name.get_mut(&secret.region) {
                    names.remove(&secret.name);
                }
            }
        }
        if let Ok(mut policies) = self.policies.write() {
            policies.remove(arn);
        }
    }

    /// Forgets every secret (changes may have gone unheard) and fences out in-flight loads.
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.write() {
            inner.epoch += 1;
            inner.by_arn.clear();
            inner.arn_by_name.clear();
        }
        if let Ok(mut policies) = self.policies.write() {
            policies.clear();
        }
    }

    /// The parsed resource policy of a secret (`None` when it has none). Parsed on first use and
    /// whenever its text changed; a stored policy that no longer parses (it was valid when written) is
    /// logged and treated as absent.
    pub fn resource_policy(&self, arn: &str, text: Option<&str>) -> Option<Arc<Policy>> {
        let text = text?;
        if let Ok(policies) = self.policies.read() {
            if let Some(hit) = policies.get(arn).filter(|c| c.text == text) {
                return Some(hit.policy.clone());
            }
        }
        let policy = match Policy::parse("resource-policy", text, PolicyKind::Resource) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::error!(%arn, error = %e, "a stored resource policy does not parse; it is ignored");
                return None;
            }
        };
        if let Ok(mut policies) = self.policies.write() {
            if policies.len() >= MAX_ENTRIES {
                policies.clear();
            }
            policies.insert(arn.to_string(), CachedPolicy { text: text.to_string(), policy: policy.clone() });
        }
        Some(policy)
    }
}
