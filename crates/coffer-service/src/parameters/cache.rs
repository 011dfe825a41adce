//! A read-through cache of parameters (ciphertext only, like the secrets cache), so GetParameter is a
//! memory lookup plus one decryption.
//!
//! Coherence: every write the service makes invalidates the parameter's entry after it commits, and
//! each invalidation bumps an epoch; a load that started before an invalidation does not store its
//! (possibly older) result. Other nodes' writes arrive through [`ParameterCache::invalidate`] too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_store::ParameterState;

/// Beyond this many parameters the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
struct Inner {
    /// region -> name -> parameter; nested so lookups borrow `&str`.
    entries: HashMap<String, HashMap<String, Arc<ParameterState>>>,
    len: usize,
    epoch: u64,
}

#[derive(Default)]
pub struct ParameterCache {
    inner: RwLock<Inner>,
}

impl ParameterCache {
    pub fn get(&self, region: &str, name: &str) -> Option<Arc<ParameterState>> {
        self.inner.read().ok()?.entries.get(region)?.get(name).cloned()
    }

    /// The epoch to hand back to [`store`](Self::store) for a load about to start.
    pub fn epoch(&self) -> u64 {
        self.inner.read().map(|i| i.epoch).unwrap_or(0)
    }

    /// Caches a loaded parameter unless something was invalidated since `epoch`.
    pub fn store(&self, state: Arc<ParameterState>, epoch: u64) {
        let Ok(mut inner) = self.inner.write() else { return };
        if inner.epoch != epoch {
            return;
        }
        if inner.len >= MAX_ENTRIES {
            inner.entries.clear();
            inner.len = 0;
        }
        let previous = inner.entries.entry(state.region.clone()).or_default().insert(state.name.clone(), state);
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
}
