//! `CofferScan.<Op>` (signed as Secrets Manager): `GetKnownFingerprints` → service → wire response.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use coffer_service::{RequestContext, Service};
use coffer_wire::scan::{GetKnownFingerprintsRequest, GetKnownFingerprintsResponse, KnownFingerprint};
use coffer_wire::SensitiveBlob;

use crate::error::{secretsmanager_error, ApiError};
use crate::json::{parse, to_json};

/// The scan operations Coffer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetKnownFingerprints,
}

impl Operation {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "GetKnownFingerprints" => Some(Operation::GetKnownFingerprints),
            _ => None,
        }
    }
}

pub async fn dispatch(
    service: &Service,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    match op {
        Operation::GetKnownFingerprints => {
            let r: GetKnownFingerprintsRequest = parse(body)?;
            let known = service.known_fingerprints(ctx, r.salt.0.expose()).await.map_err(secretsmanager_error)?;
            to_json(&GetKnownFingerprintsResponse {
                key: SensitiveBlob(known.key),
                fingerprints: known
                    .fingerprints
                    .into_iter()
                    .map(|f| KnownFingerprint {
                        name: f.name,
                        arn: f.arn,
                        kind: f.kind.as_str().to_string(),
                        version_stage: f.version_stage.map(str::to_string),
                        length: f.length as u64,
                        fingerprint: STANDARD.encode(f.fingerprint),
                    })
                    .collect(),
            })
        }
    }
}
