//! A read-through cache of parameters (ciphertext only, like the secrets cache), so GetParameter is a
//! memory lookup plus one decryption.
//!
//! Coherence: every write the service makes invalidates the parameter's entry after it commits, and
//! each invalidation bumps an epoch; a load that started before an invalidation does not store its
//! (possibly older) result. Other nodes' writes arrive through [`ParameterCache::invalidate`] too (the
//! store's change feed), and an entry older than the [`Freshness`] maximum age is a miss, so a lost
//! notice delays a change by at most that age.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_store::ParameterState;

use crate::cache::{Freshness, Stamped};

/// Beyond this many parameters the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
struct Inner {
    /// region -> name -> parameter; nested so lookups borrow `&str`.
    entries: HashMap<String, HashMap<String, Stamped<ParameterState>>>,
    len: usize,
    epoch: u64,
}

#[derive(Default)]
pub struct ParameterCache {
    inner: RwLock<Inner>,
    freshness: Freshness,
}

impl ParameterCache {
    pub(crate) fn new(freshness: Freshness) -> Self {
        ParameterCache { freshness, ..Default::default() }
    }

    /// The cached parameter, unless it is older than the maximum age.
    pub fn get(&self, region: &str, name: &str) -> Option<Arc<ParameterState>> {
        let now = self.freshness.now();
        self.inner.read().ok()?.entries.get(region)?.get(name)?.fresh(now)
    }

    /// The epoch to hand back to [`store`](Self::store) for a load about to start.
    pub fn epoch(&self) -> u64 {
        self.inner.read().map(|i| i.epoch).unwrap_or(0)
    }

    /// Caches a loaded parameter unless something was invalidated since `epoch`.
    pub fn store(&self, state: Arc<ParameterState>, epoch: u64) {
        let loaded_at = self.freshness.stamp();
        let Ok(mut inner) = self.inner.write() else { return };
        if inner.epoch != epoch {
            return;
        }
        if inner.len >= MAX_ENTRIES {
            inner.entries.clear();
            inner.len = 0;
        }
        let entry = Stamped { value: state, loaded_at };
        let previous =
            inner.entries.entry(entry.value.region.clone()).or_default().insert(entry.value.name.clone(), entry);
        if previous.is_none() {
            inner.len += 1;
        }
    }

    /// Forgets one parameter (it changed) and fences out loads in flight.
    pub fn invalidate(&self, region: &str, name: &str) {
        let Ok(mut inner) = self.inner.write() else { return };
        inner.epoch += 1;
        let removed = inner.entries.get_mut(region).and_then(|names| names.remove(name)).is_some();
        if removed {
            inner.len -= 1;
        }
    }

    /// Forgets every parameter (changes may have gone unheard) and fences out loads in flight.
    pub fn clear(&self) {
        let Ok(mut inner) = self.inner.write() else { return };
        inner.epoch += 1;
        inner.entries.clear();
        inner.len = 0;
    }
}
