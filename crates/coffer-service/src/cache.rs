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

#[derive(Default)]
pub struct SecretCache {
    inner: RwLock<Inner>,
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
        let Ok(mut inner) = self.inner.write() else { return };
        inner.epoch += 1;
        if let Some(state) = inner.by_arn.remove(arn) {
            if let Some(names) = inner.arn_by_name.get_mut(&state.secret.region) {
                names.remove(&state.secret.name);
            }
        }
    }
}
