//! The client side: `Authorization` header signatures and presigned query strings.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::canonical::{self, encode_component, format_amz_date, payload_sha256_hex, Parts};
use crate::{derive_signing_key, Credentials, SignableRequest, SigningKey, ALGORITHM, UNSIGNED_PAYLOAD};

/// A computed signature with everything it was computed over (tests compare each piece with AWS's
/// published vectors).
pub(crate) struct Signed {
    pub amz_date: String,
    pub scope: String,
    /// `host;x-amz-date;...`
    pub signed_headers: String,
    /// The query string that was signed; for a presigned request it holds the `X-Amz-*` parameters.
    pub query: String,
    // Read by the vector tests only; computing them is part of signing anyway.
    #[cfg_attr(not(test), allow(dead_code))]
    pub canonical_request: Vec<u8>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub string_to_sign: String,
    pub signature: String,
}

/// Presigned-form settings.
pub(crate) struct Presign<'a> {
    pub expires_secs: u64,
    pub payload_hash: &'a str,
}

/// The request's headers grouped by lower-cased name and sorted, as the canonical form lists them, plus
/// `extra`. Headers the signer sets itself replace any the caller passed under the same name, and
/// `authorization` is never signed.
fn group_headers<'a>(req: &SignableRequest<'a>, extra: &[(&'a str, &'a str)]) -> Vec<(String, Vec<&'a [u8]>)> {
    let mut map: BTreeMap<String, Vec<&[u8]>> = BTreeMap::new();
    for (name, value) in req.headers {
        let name = name.to_ascii_lowercase();
        if name != "authorization" && !extra.iter().any(|(n, _)| *n == name) {
            map.entry(name).or_default().push(value.as_bytes());
        }
    }
    for (name, value) in extra {
        map.entry((*name).to_string()).or_default().push(value.as_bytes());
    }
    map.into_iter().collect()
}

/// Who signs, for which scope and when.
pub(crate) struct Signer<'a> {
    pub access_key_id: &'a str,
    pub session_token: Option<&'a str>,
    pub key: &'a SigningKey,
    pub region: &'a str,
    pub service: &'a str,
    pub now: OffsetDateTime,
}

impl Signer<'_> {
    /// The header form without `presign`, the query form with it.
    pub(crate) fn compute(&self, req: &SignableRequest<'_>, presign: Option<Presign<'_>>) -> Signed {
        let Signer { access_key_id, session_token, key, region, service, now } = *self;
        let amz_date = format_amz_date(now);
        let scope = canonical::scope(canonical::date_of(&amz_date), region, service);
        // The header form signs the date and token as headers; the presigned form carries them in the query.
        let mut extra = Vec::new();
        if presign.is_none() {
            extra.push(("x-amz-date", amz_date.as_str()));
            if let Some(token) = session_token {
                extra.push(("x-amz-security-token", token));
            }
        }
        let headers = group_headers(req, &extra);
        let signed_headers = headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");

        let mut query = req.query.to_string();
        let payload_hash = match &presign {
            Some(p) => {
                let mut add = |name: &str, value: &str| {
                    if !query.is_empty() {
                        query.push('&');
                    }
                    query.push_str(name);
                    query.push('=');
                    query.push_str(&encode_component(value));
                };
                add("X-Amz-Algorithm", ALGORITHM);
                add("X-Amz-Credential", &format!("{access_key_id}/{scope}"));
                add("X-Amz-Date", &amz_date);
                add("X-Amz-Expires", &p.expires_secs.to_string());
                add("X-Amz-SignedHeaders", &signed_headers);
                if let Some(token) = session_token {
                    add("X-Amz-Security-Token", token);
                }
                p.payload_hash.to_string()
            }
            None => headers
                .iter()
                .find(|(name, _)| name == "x-amz-content-sha256")
                .and_then(|(_, values)| values.first())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_else(|| payload_sha256_hex(req.payload)),
        };

        let parts = Parts {
            method: req.method,
            path: req.path,
            query: &query,
            presigned: presign.is_some(),
            headers: &headers,
            payload_hash: &payload_hash,
        };
        let canonical_request = parts.canonical_request();
        let string_to_sign = canonical::string_to_sign(&amz_date, &scope, &canonical_request);
        let signature = hex::encode(canonical::hmac(key.0.as_ref(), string_to_sign.as_bytes()));
        Signed { amz_date, scope, signed_headers, query, canonical_request, string_to_sign, signature }
    }
}

/// Signs with a key derived on the spot. See [`sign_with_key`].
pub fn sign(
    req: &SignableRequest<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    let key = key_for(creds, now, region, service);
    sign_with_key(req, &creds.access_key_id, creds.session_token.as_deref(), &key, region, service, now)
}

/// Returns the headers to add: `x-amz-date`, `authorization` and, with a session token,
/// `x-amz-security-token`. Every header of `req` is signed, plus the added date and token. The payload
/// hash is the SHA-256 of the body, or the value of an `x-amz-content-sha256` header in `req` (which may
/// be `UNSIGNED-PAYLOAD`). `key` must have been derived for `now`'s UTC date, `region` and `service`.
pub fn sign_with_key(
    req: &SignableRequest<'_>,
    access_key_id: &str,
    session_token: Option<&str>,
    key: &SigningKey,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    let s = Signer { access_key_id, session_token, key, region, service, now }.compute(req, None);
    let authorization = format!(
        "{ALGORITHM} Credential={access_key_id}/{}, SignedHeaders={}, Signature={}",
        s.scope, s.signed_headers, s.signature
    );
    let mut out = vec![("x-amz-date".to_string(), s.amz_date), ("authorization".to_string(), authorization)];
    if let Some(token) = session_token {
        out.push(("x-amz-security-token".to_string(), token.to_string()));
    }
    out
}

/// The presigned-URL form with payload hash `UNSIGNED-PAYLOAD`. See [`presign_with_payload_hash`].
pub fn presign(
    req: &SignableRequest<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    now: OffsetDateTime,
    expires_secs: u64,
) -> String {
    presign_with_payload_hash(req, creds, region, service, now, expires_secs, UNSIGNED_PAYLOAD)
}

/// Returns the complete query string to send: the request's own parameters, then `X-Amz-Algorithm`,
/// `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Security-Token` (with
/// a session token) and `X-Amz-Signature`. Only the request's headers are signed (`host` among them).
/// `payload_hash` is [`UNSIGNED_PAYLOAD`] or [`payload_sha256_hex`] of the body. Verifiers reject an
/// `expires_secs` above [`MAX_PRESIGN_SECS`](crate::MAX_PRESIGN_SECS).
pub fn presign_with_payload_hash(
    req: &SignableRequest<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    now: OffsetDateTime,
    expires_secs: u64,
    payload_hash: &str,
) -> String {
    let key = key_for(creds, now, region, service);
    let signer = Signer {
        access_key_id: &creds.access_key_id,
        session_token: creds.session_token.as_deref(),
        key: &key,
        region,
        service,
        now,
    };
    let s = signer.compute(req, Some(Presign { expires_secs, payload_hash }));
    format!("{}&X-Amz-Signature={}", s.query, s.signature)
}

fn key_for(creds: &Credentials, now: OffsetDateTime, region: &str, service: &str) -> SigningKey {
    let amz_date = format_amz_date(now);
    derive_signing_key(creds.secret_access_key.as_bytes(), canonical::date_of(&amz_date), region, service)
}
