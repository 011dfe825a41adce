//! Loaded KMS keys: a key's record with its material unsealed into KEKs, cached per node.
//!
//! Why a cache: every GetSecretValue/GetParameter opens an envelope under a KMS key; unsealing the
//! key's material from storage on each request would double the hot path. Entries are refreshed when
//! older than [`FRESH_FOR`] (so a key disabled on another node stops working here within that time) and
//! dropped at once by this node's own key changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use coffer_crypto::{Kek, Keyring, KMS_KEY_ID_LEN};
use coffer_store::{KmsKeyRecord, KmsKeyState};

use crate::error::{ErrorKind, ServiceError, ServiceResult};

/// How long a loaded key is trusted before its state is read again.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(2);

pub const STATE_ENABLED: &str = "Enabled";
pub const STATE_DISABLED: &str = "Disabled";
pub const STATE_PENDING_DELETION: &str = "PendingDeletion";

/// The associated data binding a material version to its key.
pub(crate) fn material_aad(region: &str, key_id: &str, version: u32) -> Vec<u8> {
    format!("coffer kms material v1\n{region}\n{key_id}\n{version}").into_bytes()
}

/// A key's UUID as the 16 bytes envelopes carry.
pub(crate) fn key_id_bytes(key_id: &str) -> ServiceResult<[u8; KMS_KEY_ID_LEN]> {
    uuid::Uuid::parse_str(key_id)
        .map(|u| *u.as_bytes())
        .map_err(|_| ServiceError::internal(format!("stored KMS key id {key_id} is not a UUID")))
}

/// A key ready for cryptography: its record and every material version as a KEK.
pub struct LoadedKey {
    pub record: KmsKeyRecord,
    /// Its key policy, parsed once here: every use of the key is authorized against it.
    pub(crate) policy: Option<Arc<coffer_policy::Policy>>,
    /// The key id as the 16 bytes envelopes carry (the cache's key).
    id: [u8; KMS_KEY_ID_LEN],
    keks: BTreeMap<u32, Kek>,
    loaded_at: Instant,
}

impl LoadedKey {
    pub(crate) fn unseal(state: KmsKeyState, keyring: &Keyring) -> ServiceResult<Self> {
        let id = key_id_bytes(&state.key.key_id)?;
        let mut keks = BTreeMap::new();
        for m in &state.materials {
            let material = keyring
                .open(&m.sealed, &material_aad(&state.key.region, &state.key.key_id, m.version))
                .map_err(|e| {
                    tracing::error!(error = %e, key_id = %state.key.key_id, version = m.version, "KMS key material does not open");
                    ServiceError::internal("an internal error occurred")
                })?;
            let kek = Kek::from_material(&material, id, m.version)
                .map_err(|_| ServiceError::internal("stored KMS key material has the wrong length"))?;
            keks.insert(m.version, kek);
        }
        let policy = super::access::key_policy(&state.key)?.map(Arc::new);
        Ok(LoadedKey { record: state.key, policy, id, keks, loaded_at: Instant::now() })
    }

    /// The newest material: what new envelopes are sealed under.
    pub(crate) fn newest(&self) -> ServiceResult<&Kek> {
        self.keks.values().next_back().ok_or_else(|| ServiceError::internal("a KMS key has no material"))
    }

    pub(crate) fn newest_version(&self) -> u32 {
        self.keks.keys().next_back().copied().unwrap_or(0)
    }

    pub(crate) fn version(&self, version: u32) -> Option<&Kek> {
        self.keks.get(&version)
    }

    /// `Ok` when the key may be used for cryptography; KMS's errors otherwise.
    pub(crate) fn usable(&self) -> ServiceResult<()> {
        usable(&self.record)
    }
}

/// `Ok` when a key in this state may be used for cryptography; KMS's errors (and messages) otherwise.
pub(crate) fn usable(record: &KmsKeyRecord) -> ServiceResult<()> {
    match record.key_state.as_str() {
        STATE_ENABLED => Ok(()),
        STATE_DISABLED => Err(ServiceError::new(ErrorKind::KmsDisabled, format!("{} is disabled.", record.arn))),
        STATE_PENDING_DELETION => {
            Err(ServiceError::new(ErrorKind::KmsInvalidState, format!("{} is pending deletion.", record.arn)))
        }
        other => Err(ServiceError::new(
            ErrorKind::KmsInvalidState,
            format!("{} is in state {other} and cannot be used.", record.arn),
        )),
    }
}

/// region -> key id (UUID bytes) -> loaded key. Keyed by the bytes envelopes carry, so the hot path
/// (opening a value) neither formats a UUID nor allocates a key.
#[derive(Default)]
pub(crate) struct KeyCache {
    entries: RwLock<HashMap<String, RegionKeys>>,
}

/// One region's loaded keys, by UUID bytes.
type RegionKeys = HashMap<[u8; KMS_KEY_ID_LEN], Arc<LoadedKey>>;

impl KeyCache {
    /// The cached key, however old (the synchronous decryption paths use what the async ones warmed).
    pub(crate) fn get(&self, region: &str, key_id: &[u8; KMS_KEY_ID_LEN]) -> Option<Arc<LoadedKey>> {
        self.entries.read().ok()?.get(region)?.get(key_id).cloned()
    }

    /// The cached key if it is still fresh.
    pub(crate) fn get_fresh(&self, region: &str, key_id: &[u8; KMS_KEY_ID_LEN]) -> Option<Arc<LoadedKey>> {
        self.get(region, key_id).filter(|k| k.loaded_at.elapsed() < FRESH_FOR)
    }

    pub(crate) fn put(&self, key: Arc<LoadedKey>) {
        if let Ok(mut map) = self.entries.write() {
            map.entry(key.record.region.clone()).or_default().insert(key.id, key);
        }
    }

    /// Drops a key (by its text id; ids that are not UUIDs were never cached).
    pub(crate) fn invalidate(&self, region: &str, key_id: &str) {
        let Ok(id) = uuid::Uuid::parse_str(key_id) else { return };
        if let Ok(mut map) = self.entries.write() {
            if let Some(keys) = map.get_mut(region) {
                keys.remove(id.as_bytes());
            }
        }
    }
}
