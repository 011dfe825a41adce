//! SigV4 authentication of incoming requests: parse the signature, find the access key through the
//! service, derive (or reuse) the day's signing key, verify in constant time.

use std::collections::HashMap;
use std::sync::RwLock;

use coffer_service::{ErrorKind, Principal, Service};
use coffer_sigv4::{derive_signing_key, ParsedSignature, RequestView, SigningKey};
use time::OffsetDateTime;

use crate::error::ApiError;

/// Beyond this many cached signing keys the cache starts over.
const MAX_SIGNING_KEYS: usize = 10_000;

/// Derived signing keys by (access key id, date, region, service). Deriving costs four HMACs; a
/// client signs thousands of requests a day with the same one.
#[derive(Default)]
pub struct SigningKeyCache(RwLock<HashMap<(String, String, String, String), SigningKey>>);

impl SigningKeyCache {
    fn get_or_derive(&self, parsed: &ParsedSignature, secret: &[u8]) -> SigningKey {
        let key_tuple =
            (parsed.access_key_id.clone(), parsed.scope_date.clone(), parsed.region.clone(), parsed.service.clone());
        if let Ok(map) = self.0.read() {
            if let Some(k) = map.get(&key_tuple) {
                return k.clone();
            }
        }
        let key = derive_signing_key(secret, &parsed.scope_date, &parsed.region, &parsed.service);
        if let Ok(mut map) = self.0.write() {
            if map.len() >= MAX_SIGNING_KEYS {
                map.clear();
            }
            map.insert(key_tuple, key.clone());
        }
        key
    }
}

fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Authenticates a request signed for `expected_service`. Returns the principal and the region of the
/// credential scope.
pub async fn authenticate(
    service: &Service,
    keys: &SigningKeyCache,
    view: &RequestView<'_>,
    expected_service: &str,
) -> Result<(Principal, String), ApiError> {
    let parsed = coffer_sigv4::parse(view)?;
    if parsed.service != expected_service {
        return Err(ApiError::bad_request(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: '{expected_service}'. "),
        ));
    }
    if !valid_region(&parsed.region) {
        return Err(ApiError::bad_request(
            "InvalidSignatureException",
            "Credential should be scoped to a valid region.",
        ));
    }
    let credential = match &parsed.security_token {
        // Temporary credentials: the token carries the session; it must go with the key id.
        Some(token) => service.session_credential(&parsed.access_key_id, token).await.map_err(session_error)?,
        None => {
            let credential =
                service.credential(&parsed.access_key_id).await.map_err(crate::error::secretsmanager_error)?;
            let Some(credential) = credential else { return Err(ApiError::unrecognized_client()) };
            credential
        }
    };
    if !credential.active {
        return Err(ApiError::unrecognized_client());
    }
    let key = keys.get_or_derive(&parsed, credential.secret_access_key.expose());
    let now = OffsetDateTime::from_unix_timestamp_nanos(service.clock().now_millis() as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    coffer_sigv4::verify(view, &parsed, &key, now)?;
    Ok((credential.principal.clone(), parsed.region))
}

/// Why temporary credentials were refused, in the JSON protocols' words (the query protocol renames
/// them).
fn session_error(e: coffer_service::ServiceError) -> ApiError {
    match e.kind {
        ErrorKind::ExpiredToken => ApiError::bad_request("ExpiredTokenException", e.message),
        ErrorKind::InvalidToken => ApiError::unrecognized_client(),
        _ => crate::error::secretsmanager_error(e),
    }
}
