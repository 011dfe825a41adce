//! `CofferScan.<Op>`: what `coffer scan --known` asks the server (signed as Secrets Manager).
//! `GetKnownFingerprints` answers keyed fingerprints of the stored values the caller may read, so a
//! scanner can recognize them in text without the values leaving the server.

use serde::{Deserialize, Serialize};

use crate::sensitive::SensitiveBlob;

/// The target prefix: `CofferScan.GetKnownFingerprints`.
pub const TARGET_PREFIX: &str = "CofferScan";
/// Requests are signed for this service.
pub const SERVICE: &str = crate::secretsmanager::SERVICE;
/// The salt's length bounds, in bytes.
pub const MIN_SALT_BYTES: usize = 16;
pub const MAX_SALT_BYTES: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKnownFingerprintsRequest {
    /// A fresh random salt per scan (base64 on the wire, 16 to 64 bytes): the key the fingerprints are
    /// made under is derived from it, so two scans' fingerprints cannot be compared.
    pub salt: SensitiveBlob,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKnownFingerprintsResponse {
    /// HMAC-SHA256 key of this scan (base64): a candidate's fingerprint is HMAC(key, candidate bytes).
    pub key: SensitiveBlob,
    #[serde(default)]
    pub fingerprints: Vec<KnownFingerprint>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KnownFingerprint {
    /// The secret's or parameter's name.
    pub name: String,
    #[serde(rename = "ARN")]
    pub arn: String,
    /// `secret` or `parameter`.
    pub kind: String,
    /// `AWSCURRENT` or `AWSPREVIOUS` for a secret's versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_stage: Option<String>,
    /// The value's length in bytes: a scanner tests only candidates of the lengths it was given.
    pub length: u64,
    /// HMAC-SHA256(key, value), base64.
    pub fingerprint: String,
}
