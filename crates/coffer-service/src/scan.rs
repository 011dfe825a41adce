//! Keyed fingerprints of stored values, for `coffer scan --known`: the scanner recognizes the values a
//! team actually stores — whatever their format, a human-chosen password included — without them
//! leaving the server. Each value the caller may read (as GetSecretValue or GetParameter would let it)
//! is answered as HMAC-SHA256 under a per-scan key derived from a server key and the caller's salt; the
//! key goes back with them, so the scanner can fingerprint candidates the same way.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use coffer_crypto::SecretBytes;
use coffer_store::ParameterQuery;

use crate::context::RequestContext;
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::secrets::GetSecretValueInput;
use crate::Service;

const SCAN_KEY_PURPOSE: &str = "coffer scan fingerprints v1";

/// The salt's length bounds, in bytes.
pub const MIN_SALT_BYTES: usize = 16;
pub const MAX_SALT_BYTES: usize = 64;

/// The stages of a secret whose values are fingerprinted: the one in use and the one it replaced (a
/// leaked previous value still works until it is rotated out).
const STAGES: [&str; 2] = ["AWSCURRENT", "AWSPREVIOUS"];

/// Where a fingerprinted value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownKind {
    Secret,
    Parameter,
}

impl KnownKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KnownKind::Secret => "secret",
            KnownKind::Parameter => "parameter",
        }
    }
}

#[derive(Debug, Clone)]
pub struct KnownFingerprint {
    pub name: String,
    pub arn: String,
    pub kind: KnownKind,
    pub version_stage: Option<&'static str>,
    pub length: usize,
    pub fingerprint: [u8; 32],
}

#[derive(Debug)]
pub struct KnownFingerprints {
    /// The per-scan key the fingerprints are made under.
    pub key: SecretBytes,
    pub fingerprints: Vec<KnownFingerprint>,
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> ServiceResult<[u8; 32]> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|_| ServiceError::internal("the scan fingerprint key could not be used"))?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

/// What a read the caller may not make (or of a value that is gone) answers: skipped, not an error.
fn skippable(e: &ServiceError) -> bool {
    matches!(
        e.kind,
        ErrorKind::AccessDenied
            | ErrorKind::NotFound
            | ErrorKind::VersionNotFound
            | ErrorKind::InvalidRequest
            | ErrorKind::DecryptionFailure
    )
}

impl Service {
    /// The fingerprints of every secret version (AWSCURRENT, AWSPREVIOUS) and every parameter the
    /// caller may read in its region, under a key derived from `salt`. Each value is read as
    /// GetSecretValue / GetParameter (WithDecryption) would read it, with the same authorization; what the
    /// caller may not read is left out without a word (listing it would tell what exists).
    pub async fn known_fingerprints(&self, ctx: &RequestContext, salt: &[u8]) -> ServiceResult<KnownFingerprints> {
        if !(MIN_SALT_BYTES..=MAX_SALT_BYTES).contains(&salt.len()) {
            return Err(ServiceError::invalid_parameter(format!(
                "Salt must be between {MIN_SALT_BYTES} and {MAX_SALT_BYTES} bytes long."
            )));
        }
        let server_key = self.keyring.derive_subkey(SCAN_KEY_PURPOSE);
        let key = SecretBytes::new(hmac_sha256(server_key.expose(), salt)?.to_vec());
        let mut fingerprints = Vec::new();
        for secret in self.store.list_secrets(&ctx.region).await? {
            if secret.deletion_date.is_some() {
                continue;
            }
            for stage in STAGES {
                let input = GetSecretValueInput {
                    secret_id: secret.arn.clone(),
                    version_id: None,
                    version_stage: Some(stage.to_string()),
                };
                // Fingerprinting is not a retrieval: LastAccessedDate stays as clients left it.
                match self.read_secret_value(ctx, input, false).await {
                    Ok(out) => fingerprints.push(KnownFingerprint {
                        name: out.name,
                        arn: out.arn,
                        kind: KnownKind::Secret,
                        version_stage: Some(stage),
                        length: out.value.bytes().expose().len(),
                        fingerprint: hmac_sha256(key.expose(), out.value.bytes().expose())?,
                    }),
                    Err(e) if skippable(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut after: Option<String> = None;
        loop {
            let query = ParameterQuery {
                region: ctx.region.clone(),
                path: "/".into(),
                recursive: true,
                after: after.clone(),
                limit: 500,
                latest_only: true,
            };
            let names = self.store.list_parameter_names(query).await?;
            let Some(last) = names.last().cloned() else { break };
            for name in names {
                match self.get_parameter(ctx, &name, true).await {
                    Ok(p) => fingerprints.push(KnownFingerprint {
                        name: p.name,
                        arn: p.arn,
                        kind: KnownKind::Parameter,
                        version_stage: None,
                        length: p.value.expose().len(),
                        fingerprint: hmac_sha256(key.expose(), p.value.expose())?,
                    }),
                    Err(e) if skippable(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            after = Some(last);
        }
        Ok(KnownFingerprints { key, fingerprints })
    }
}
