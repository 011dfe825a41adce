//! Access keys and first-start initialization.
//!
//! The secret half of every access key is stored sealed (AAD = the key id) and kept in memory only as
//! [`SecretBytes`]. Lookups are cached because every request needs one.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_crypto::SecretBytes;
use coffer_store::{AccessKeyRecord, StoreError};
use rand::Rng;

use crate::context::{Principal, PrincipalKind};
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::Service;

const SETTING_KEY_CHECK: &str = "master-key-check";
const SETTING_ROOT_KEY: &str = "root-access-key-id";

/// An access key resolved to its principal, ready for signature verification.
#[derive(Debug)]
pub struct Credential {
    pub principal: Principal,
    pub secret_access_key: SecretBytes,
    pub active: bool,
}

/// Credentials shown once, at initialization.
#[derive(Debug)]
pub struct NewAccessKey {
    pub access_key_id: String,
    pub secret_access_key: SecretBytes,
    pub principal_arn: String,
}

/// Access keys by id, valid for one IAM generation: a key deactivated or deleted on any node bumps
/// the generation, which empties every node's cache within the IAM copy's freshness window.
#[derive(Default)]
pub(crate) struct CredentialCache(RwLock<(u64, HashMap<String, Arc<Credential>>)>);

fn access_key_aad(access_key_id: &str) -> Vec<u8> {
    format!("coffer access key v1\n{access_key_id}").into_bytes()
}

/// `AKIA` + 16 characters of the base32 alphabet, the shape AWS tools expect.
fn new_access_key_id(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = (0..16).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("AKIA{tail}")
}

/// 40 characters from the alphabet AWS secret keys use.
fn new_secret_access_key(rng: &mut impl Rng) -> SecretBytes {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = (0..40).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect();
    SecretBytes::new(bytes)
}

impl Service {
    /// Checks that the data belongs to this master key, and on the very first start creates the root
    /// access key. Returns the new root credentials once, `None` on later starts. With the wrong key
    /// it fails before changing anything.
    pub async fn initialize(&self) -> ServiceResult<Option<NewAccessKey>> {
        match self.store.get_setting(SETTING_KEY_CHECK).await? {
            Some(blob) => self.keyring.verify_key_check(&blob).map_err(|_| {
                ServiceError::new(
                    ErrorKind::AccessDenied,
                    "the master key does not match this data: start coffer with the key it was initialized with",
                )
            })?,
            None => {
                let blob = self.keyring.key_check(&mut rand::rngs::OsRng);
                if !self.store.put_setting_if_absent(SETTING_KEY_CHECK, &blob).await? {
                    // Another node initialized first; its check must hold for us too.
                    return Box::pin(self.initialize()).await;
                }
            }
        }
        if self.store.get_setting(SETTING_ROOT_KEY).await?.is_some() {
            return Ok(None);
        }
        let principal_arn = format!("arn:aws:iam::{}:root", self.config.account_id);
        let key = self.create_access_key(&principal_arn, "root").await?;
        if !self.store.put_setting_if_absent(SETTING_ROOT_KEY, key.access_key_id.as_bytes()).await? {
            return Ok(None);
        }
        Ok(Some(key))
    }

    async fn create_access_key(&self, principal_arn: &str, user_name: &str) -> ServiceResult<NewAccessKey> {
        let (record, secret) = self.new_access_key_record(principal_arn, user_name)?;
        let access_key_id = record.access_key_id.clone();
        match self.store.insert_access_key(record).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists) => {
                return Err(ServiceError::internal("access key id collision; retry"));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(NewAccessKey { access_key_id, secret_access_key: secret, principal_arn: principal_arn.to_string() })
    }

    /// A new access key for a principal, its secret sealed for storage and returned once.
    pub(crate) fn new_access_key_record(
        &self,
        principal_arn: &str,
        user_name: &str,
    ) -> ServiceResult<(AccessKeyRecord, SecretBytes)> {
        let mut rng = rand::rngs::OsRng;
        let access_key_id = new_access_key_id(&mut rng);
        let secret = new_secret_access_key(&mut rng);
        let sealed = self
            .keyring
            .seal(&mut rng, secret.expose(), &access_key_aad(&access_key_id))
            .map_err(|_| ServiceError::new(ErrorKind::EncryptionFailure, "sealing an access key failed"))?;
        let record = AccessKeyRecord {
            access_key_id,
            sealed_secret: sealed,
            principal_arn: principal_arn.to_string(),
            user_name: user_name.to_string(),
            status: "Active".to_string(),
            created: self.clock.now_millis(),
        };
        Ok((record, secret))
    }

    /// Drops a cached credential (its key was deactivated or deleted).
    pub(crate) fn forget_credential(&self, access_key_id: &str) {
        if let Ok(mut cache) = self.credentials.0.write() {
            cache.1.remove(access_key_id);
        }
    }

    /// The credential behind an access key id, or `None` if there is no such key.
    pub async fn credential(&self, access_key_id: &str) -> ServiceResult<Option<Arc<Credential>>> {
        let generation = self.iam_snapshot().await?.generation;
        let hit = self.credentials.0.read().ok().and_then(|c| {
            if c.0 == generation {
                c.1.get(access_key_id).cloned()
            } else {
                None
            }
        });
        if let Some(hit) = hit {
            return Ok(Some(hit));
        }
        let Some(record) = self.store.get_access_key(access_key_id).await? else {
            return Ok(None);
        };
        let secret = self.keyring.open(&record.sealed_secret, &access_key_aad(access_key_id)).map_err(|e| {
            tracing::error!(error = %e, %access_key_id, "an access key could not be unsealed");
            ServiceError::internal("an internal error occurred")
        })?;
        let credential = Arc::new(Credential {
            principal: Principal {
                arn: record.principal_arn.clone(),
                account_id: self.config.account_id.clone(),
                user_name: record.user_name.clone(),
                access_key_id: record.access_key_id.clone(),
                kind: if record.principal_arn.ends_with(":root") {
                    PrincipalKind::Root
                } else {
                    PrincipalKind::User { name: record.user_name.clone() }
                },
                session: None,
            },
            secret_access_key: secret,
            active: record.status == "Active",
        });
        if let Ok(mut cache) = self.credentials.0.write() {
            if cache.0 != generation {
                *cache = (generation, HashMap::new());
            }
            cache.1.insert(access_key_id.to_string(), credential.clone());
        }
        Ok(Some(credential))
    }
}
