//! A read-through cache of secret records (ciphertext only: envelopes stay sealed in memory and are
//! opened per request). It makes GetSecretValue a memory lookup plus one decryption.
//!
//! Coherence: every write the service makes goes through [`SecretCache::store_if_newer`] with the exact
//! state it committed; a state only replaces a cached one with a lower revision, so racing writers and
//! readers cannot put an older state back. Deletions bump an epoch so a read that started before a
//! delete cannot re-insert the deleted secret. Other nodes' writes (PostgreSQL) arrive through
//! [`SecretCache::invalidate`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_policy::{Policy, PolicyKind};
use coffer_store::{EpochMillis, SecretState};

/// Beyond this many secrets the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
struct Inner {
    by_arn: HashMap<String, Arc<SecretState>>,
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
}

impl SecretCache {
    pub fn by_arn(&self, arn: &str) -> Option<Arc<SecretState>> {
        self.inner.read().ok()?.by_arn.get(arn).cloned()
    }

    pub fn by_name(&self, region: &str, name: &str) -> Option<Arc<SecretState>> {
        let inner = self.inner.read().ok()?;
        let arn = inner.arn_by_name.get(region)?.get(name)?;
        inner.by_arn.get(arn).cloned()
    }

    /// The epoch to pass to [`store_if_newer`](Self::store_if_newer) for a state about to be loaded.
    pub fn epoch(&self) -> u64 {
        self.inner.read().map(|i| i.epoch).unwrap_or(0)
    }

    /// Caches `state` unless a newer revision is cached or a deletion happened since `epoch`.
    pub fn store_if_newer(&self, state: Arc<SecretState>, epoch: u64) {
        let Ok(mut inner) = self.inner.write() else { return };
        if inner.epoch != epoch {
            return;
        }
        if let Some(existing) = inner.by_arn.get(&state.secret.arn) {
            if existing.secret.revision > state.secret.revision {
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
        inner.by_arn.insert(state.secret.arn.clone(), state);
    }

    /// Records a new last-accessed day on the cached copy (it does not change the revision).
    pub fn set_last_accessed(&self, arn: &str, revision: u64, day: EpochMillis) {
        let Ok(mut inner) = self.inner.write() else { return };
        if let Some(existing) = inner.by_arn.get_mut(arn) {
            if existing.secret.revision == revision {
                let mut updated = (**existing).clone();
                updated.secret.last_accessed = Some(day);
                *existing = Arc::new(updated);
            }
        }
    }

    /// Forgets one secret (it was deleted, or changed elsewhere) and fences out in-flight loads.
    pub fn invalidate(&self, arn: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.epoch += 1;
            if let Some(state) = inner.by_arn.remove(arn) {
                if let Some(names) = inner.arn_by_name.get_mut(&state.secret.region) {
                    names.remove(&state.secret.name);
                }
            }
        }
        if let Ok(mut policies) = self.policies.write() {
            policies.remove(arn);
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
