//! Signed digests of the chain (as CloudTrail's digest files): the server signs the chain's head at
//! intervals and at shutdown with an Ed25519 key derived from the master key; verifiers need only the
//! public half. Retention prunes at a digest, which then anchors what is left.

use coffer_audit::digest::{digest_hash, AuditPublicKey, AuditSigningKey, DigestBody};
use coffer_store::{AuditDigestAppend, AuditDigestRecord, StoreError};

use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// The purpose the signing key is derived for (HKDF info), fixed for the life of the data.
const SIGNING_KEY_PURPOSE: &str = "coffer audit signing v1";

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub records_removed: u64,
    /// The first record kept, when anything was removed.
    pub kept_from_seq: Option<u64>,
}

impl Service {
    fn audit_signing_key(&self) -> ServiceResult<AuditSigningKey> {
        let seed = self.keyring.derive_subkey(SIGNING_KEY_PURPOSE);
        let bytes: [u8; 32] = seed
            .expose()
            .try_into()
            .map_err(|_| ServiceError::internal("the audit signing key could not be derived"))?;
        let key = AuditSigningKey::from_seed(&bytes);
        let mut bytes = bytes;
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(key)
    }

    /// The public key that verifies this server's digests.
    pub fn audit_public_key(&self) -> ServiceResult<AuditPublicKey> {
        Ok(self.audit_signing_key()?.public_key())
    }

    /// Signs a digest of the chain up to its head, unless the newest digest already covers it.
    /// Returns the digest's number when one was written.
    pub async fn sign_audit_digest(&self) -> ServiceResult<Option<u64>> {
        let key = self.audit_signing_key()?;
        for _ in 0..3 {
            let head = self.store.audit_head().await?;
            let latest = self.store.latest_audit_digest().await?;
            if head.seq == 0 || latest.as_ref().is_some_and(|d| d.last_seq >= head.seq) {
                return Ok(None);
            }
            let now = self.clock.now_millis();
            let body = DigestBody {
                version: 1,
                digest_time: coffer_audit::event::iso8601_seconds(now),
                first_seq: latest.as_ref().map_or(1, |d| d.last_seq + 1),
                last_seq: head.seq,
                last_hash: hex::encode(head.hash),
                previous_digest_hash: latest.as_ref().map(|d| hex::encode(digest_hash(&d.body))),
                public_key_fingerprint: key.public_key().fingerprint_hex(),
            }
            .to_canonical_json();
            let signature = key.sign(&body);
            let digest = AuditDigestAppend { time_ms: now, last_seq: head.seq, body, signature };
            match self.store.append_audit_digest(latest.as_ref().map_or(0, |d| d.number), digest).await {
                Ok(number) => return Ok(Some(number)),
                // Another node signed meanwhile: look again.
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Removes records older than the retention period, cutting at the newest digest that lies
    /// entirely before the cut-off, so the digest there anchors the rest. Works in bounded batches.
    pub async fn prune_audit(&self) -> ServiceResult<PruneReport> {
        let retention_ms = i64::from(self.audit.config().retention_days) * 86_400_000;
        let cutoff = self.clock.now_millis().saturating_sub(retention_ms);
        let first_kept_by_time = match self.store.audit_seq_at(cutoff).await? {
            Some(seq) => seq,
            None => self.store.audit_head().await?.seq + 1,
        };
        let Some(oldest) = self.store.audit_oldest_seq().await? else {
            return Ok(PruneReport::default());
        };
        if first_kept_by_time <= oldest {
            return Ok(PruneReport::default());
        }
        // The anchor: the newest digest whose last record is older than the cut-off.
        let mut anchor: Option<AuditDigestRecord> = None;
        let mut from = 1;
        'pages: loop {
            let page = self.store.audit_digests(from, 500).await?;
            let full = page.len() == 500;
            let Some(last) = page.last() else { break };
            from = last.number + 1;
            for d in page {
                if d.last_seq >= first_kept_by_time {
                    break 'pages;
                }
                anchor = Some(d);
            }
            if !full {
                break;
            }
        }
        let Some(anchor) = anchor else { return Ok(PruneReport::default()) };
        let before_seq = anchor.last_seq + 1;
        let mut removed = 0;
        loop {
            let n = self.store.prune_audit(before_seq, anchor.number, 50_000).await?;
            removed += n;
            if n < 50_000 {
                break;
            }
        }
        if removed > 0 {
            tracing::info!(removed, kept_from_seq = before_seq, "pruned audit records past their retention");
        }
        Ok(PruneReport { records_removed: removed, kept_from_seq: (removed > 0).then_some(before_seq) })
    }
}
