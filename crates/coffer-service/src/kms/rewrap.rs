//! Re-wrapping: after a key rotates (or for values sealed before KMS keys existed), every stored
//! envelope is moved to the newest material of its key by re-wrapping its data key alone. Values are
//! never decrypted, and old material stays, so a pass can stop at any point and run again.

use std::collections::HashMap;
use std::sync::Arc;

use coffer_crypto::{envelope_kek, EnvelopeKek};
use coffer_store::EnvelopeSwap;

use super::{must_authorize, LoadedKey, SECRETS_MANAGER_DEFAULT_ALIAS, SSM_DEFAULT_ALIAS};
use crate::context::RequestContext;
use crate::error::ServiceResult;
use crate::iam::Access;
use crate::parameters::ops::ParameterWalk;
use crate::Service;

/// What a re-wrap pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RewrapReport {
    /// Envelopes moved to their key's newest material.
    pub rewrapped: usize,
    /// Envelopes already current.
    pub current: usize,
    /// Envelopes left alone because their key is disabled, pending deletion or gone.
    pub skipped: usize,
    /// Of those, envelopes still under the master key (sealed before KMS keys existed).
    pub legacy_left: usize,
}

/// Setting (per region) recording that no value is left under the master key alone.
const LEGACY_MIGRATED_SETTING: &str = "kms-legacy-envelopes-migrated";

/// How many records a key protects.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dependents {
    pub secrets: usize,
    pub parameters: usize,
}

impl Dependents {
    pub fn total(&self) -> usize {
        self.secrets + self.parameters
    }
}

/// Keys looked up once per pass.
struct PassKeys<'a> {
    service: &'a Service,
    region: &'a str,
    by_id: HashMap<String, Option<Arc<LoadedKey>>>,
    by_ref: HashMap<String, Option<Arc<LoadedKey>>>,
}

impl<'a> PassKeys<'a> {
    async fn by_id(&mut self, key_id: &str) -> Option<Arc<LoadedKey>> {
        if let Some(k) = self.by_id.get(key_id) {
            return k.clone();
        }
        let k = self.service.loaded_key(self.region, key_id).await.ok().filter(|k| k.usable().is_ok());
        self.by_id.insert(key_id.to_string(), k.clone());
        k
    }

    async fn by_ref(&mut self, key_ref: &str) -> Option<Arc<LoadedKey>> {
        if let Some(k) = self.by_ref.get(key_ref) {
            return k.clone();
        }
        let k = self.service.key_by_ref(self.region, key_ref).await.ok().filter(|k| k.usable().is_ok());
        self.by_ref.insert(key_ref.to_string(), k.clone());
        k
    }
}

impl Service {
    /// Moves one envelope to the newest material of the key it should be under: its own key, or — for
    /// legacy master-key envelopes, and when `follow_record_key` — the record's key named by `key_ref`.
    /// `None` when it is already there or cannot move (a source or target key that is unusable).
    async fn rewrap_one(
        &self,
        keys: &mut PassKeys<'_>,
        report: &mut RewrapReport,
        blob: &[u8],
        aad: &[u8],
        key_ref: &str,
        follow_record_key: bool,
    ) -> Option<Vec<u8>> {
        let Ok(header) = envelope_kek(blob) else {
            report.skipped += 1;
            return None;
        };
        // The key the envelope is under now (none for a master-key envelope) and where it should go.
        let (source, from_version) = match header {
            EnvelopeKek::KmsKey { key_id, version } => {
                match keys.by_id(&uuid::Uuid::from_bytes(key_id).to_string()).await {
                    Some(source) => (Some(source), Some(version)),
                    None => {
                        report.skipped += 1;
                        return None;
                    }
                }
            }
            EnvelopeKek::Master => (None, None),
        };
        let target = match &source {
            Some(own) if !follow_record_key => Some(own.clone()),
            _ => keys.by_ref(key_ref).await,
        };
        let Some(target) = target else {
            report.skipped += 1;
            report.legacy_left += usize::from(source.is_none());
            return None;
        };
        let same_key = source.as_ref().is_some_and(|s| s.record.key_id == target.record.key_id);
        if same_key && from_version == Some(target.newest_version()) {
            report.current += 1;
            return None;
        }
        let from = match (&source, from_version) {
            (Some(s), Some(v)) => s.version(v)?,
            _ => self.keyring.master_kek(),
        };
        match target.newest().ok()?.rewrap(from, blob, aad, &mut rand::rngs::OsRng) {
            Ok(moved) => Some(moved),
            Err(e) => {
                tracing::warn!(error = %e, "an envelope could not be re-wrapped");
                report.skipped += 1;
                report.legacy_left += usize::from(source.is_none());
                None
            }
        }
    }

    /// Re-wraps one secret's versions: each to its key's newest material, and the versions labelled
    /// AWSCURRENT, AWSPENDING or AWSPREVIOUS under the secret's current key (as Secrets Manager does when
    /// UpdateSecret changes the KmsKeyId). Values are never decrypted.
    async fn rewrap_secret(
        &self,
        keys: &mut PassKeys<'_>,
        report: &mut RewrapReport,
        state: &coffer_store::SecretState,
    ) -> ServiceResult<()> {
        let key_ref = state.secret.kms_key_id.clone().unwrap_or_else(|| SECRETS_MANAGER_DEFAULT_ALIAS.into());
        let mut swaps = Vec::new();
        for v in &state.versions {
            let labelled = v.stages.iter().any(|s| matches!(s.as_str(), "AWSCURRENT" | "AWSPENDING" | "AWSPREVIOUS"));
            let aad = crate::secrets::value_aad(&state.secret.arn, &v.version_id);
            if let Some(new) = self.rewrap_one(keys, report, &v.envelope, &aad, &key_ref, labelled).await {
                swaps.push(EnvelopeSwap { version: v.version_id.clone(), old: v.envelope.clone(), new });
            }
        }
        if !swaps.is_empty() {
            report.rewrapped += self.store.rewrap_secret_versions(&state.secret.arn, swaps).await?;
            self.cache.invalidate(&state.secret.arn);
        }
        Ok(())
    }

    /// Re-wraps one secret now (after UpdateSecret changed its key).
    pub(crate) async fn rewrap_secret_now(&self, region: &str, arn: &str) -> ServiceResult<RewrapReport> {
        let mut report = RewrapReport::default();
        let mut keys = PassKeys { service: self, region, by_id: HashMap::new(), by_ref: HashMap::new() };
        if let Some(state) = self.store.load_secret_by_arn(arn).await? {
            self.rewrap_secret(&mut keys, &mut report, &state).await?;
        }
        Ok(report)
    }

    /// Moves values sealed before KMS keys existed under their keys: one re-wrap pass, run by the server
    /// at start until a pass leaves no such value behind, which it records so later starts skip the scan.
    /// `None` when there was nothing to do.
    pub async fn migrate_legacy_envelopes(&self, region: &str) -> ServiceResult<Option<RewrapReport>> {
        let done_setting = format!("{LEGACY_MIGRATED_SETTING}/{region}");
        if self.store.get_setting(&done_setting).await?.is_some() {
            return Ok(None);
        }
        let report = self.rewrap_region(region).await?;
        if report.legacy_left == 0 {
            self.store.put_setting_if_absent(&done_setting, b"1").await?;
        }
        Ok(Some(report))
    }

    /// Coffer's `CofferKms.Rewrap`: a re-wrap pass over the caller's region, for callers allowed
    /// `coffer:RewrapKeys` (on `*`).
    pub async fn rewrap_keys(&self, ctx: &RequestContext) -> ServiceResult<RewrapReport> {
        if must_authorize(ctx, false) {
            self.authorize(ctx, &Access::new("coffer:RewrapKeys", "*")).await?;
        }
        self.rewrap_region(&ctx.region).await
    }

    /// One re-wrap pass over every secret and SecureString parameter of a region (the server's own
    /// work; API callers go through [`rewrap_keys`](Self::rewrap_keys)).
    pub async fn rewrap_region(&self, region: &str) -> ServiceResult<RewrapReport> {
        let mut report = RewrapReport::default();
        let mut keys = PassKeys { service: self, region, by_id: HashMap::new(), by_ref: HashMap::new() };
        for record in self.store.list_secrets(region).await? {
            let Some(state) = self.store.load_secret_by_arn(&record.arn).await? else { continue };
            self.rewrap_secret(&mut keys, &mut report, &state).await?;
        }
        let mut walk = ParameterWalk::default();
        while let Some(page) = self.next_parameter_page(region, &mut walk, false).await? {
            for p in &page {
                let mut swaps = Vec::new();
                for v in p.versions.iter().filter(|v| v.parameter_type == "SecureString") {
                    let key_ref = v.key_id.clone().unwrap_or_else(|| SSM_DEFAULT_ALIAS.into());
                    let aad = crate::parameters::ops::value_aad(&p.region, &p.name, v.version);
                    if let Some(new) = self.rewrap_one(&mut keys, &mut report, &v.envelope, &aad, &key_ref, false).await
                    {
                        swaps.push(EnvelopeSwap { version: v.version, old: v.envelope.clone(), new });
                    }
                }
                if !swaps.is_empty() {
                    report.rewrapped += self.store.rewrap_parameter_versions(&p.region, &p.name, swaps).await?;
                    self.parameter_cache.invalidate(&p.region, &p.name);
                }
            }
        }
        Ok(report)
    }

    /// Secrets and parameters with at least one version under the key.
    pub async fn key_dependents(&self, region: &str, key_id: &str) -> ServiceResult<Dependents> {
        let names_key = |blob: &[u8]| match envelope_kek(blob) {
            Ok(EnvelopeKek::KmsKey { key_id: k, .. }) => uuid::Uuid::from_bytes(k).to_string() == key_id,
            _ => false,
        };
        let mut out = Dependents::default();
        // A secret scheduled for deletion is not live: it may go with its key.
        for record in self.store.list_secrets(region).await?.into_iter().filter(|r| r.deletion_date.is_none()) {
            if let Some(state) = self.store.load_secret_by_arn(&record.arn).await? {
                if state.versions.iter().any(|v| names_key(&v.envelope)) {
                    out.secrets += 1;
                }
            }
        }
        let mut walk = ParameterWalk::default();
        while let Some(page) = self.next_parameter_page(region, &mut walk, false).await? {
            out.parameters += page.iter().filter(|p| p.versions.iter().any(|v| names_key(&v.envelope))).count();
        }
        Ok(out)
    }
}
