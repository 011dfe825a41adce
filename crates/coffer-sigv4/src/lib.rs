//! AWS Signature Version 4, both sides: [`sign`] for clients (the `coffer` CLI, the load generator) and
//! [`parse`] + [`verify`] for the server, so the two can never disagree.
//!
//! Invariants:
//! - Pure: no I/O; the time is always a parameter.
//! - Signatures are compared in constant time.
//! - Neither the secret access key nor a derived key appears in `Debug` output or in an error.
//! - Parsing never panics, whatever the request holds.

use hmac::{Hmac, Mac};
use http::{HeaderMap, Method};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};
use zeroize::{Zeroize, Zeroizing};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
/// AWS accepts header-signed requests up to five minutes away from its clock, either way.
pub const MAX_SKEW: Duration = Duration::minutes(5);
/// The longest validity a presigned request may ask for (seven days).
pub const MAX_PRESIGN_SECS: u64 = 604_800;
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A derived signing key: `HMAC("AWS4"+secret, date) → region → service → "aws4_request"`.
#[derive(Clone)]
pub struct SigningKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

pub fn derive_signing_key(secret_access_key: &[u8], date_yyyymmdd: &str, region: &str, service: &str) -> SigningKey {
    let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret_access_key);
    let mut k_date = hmac(&seed, date_yyyymmdd.as_bytes());
    let mut k_region = hmac(&k_date, region.as_bytes());
    let mut k_service = hmac(&k_region, service.as_bytes());
    let key = hmac(&k_service, TERMINATOR.as_bytes());
    k_date.zeroize();
    k_region.zeroize();
    k_service.zeroize();
    SigningKey(Zeroizing::new(key))
}

/// Credentials a client signs with. `Debug` redacts the secret; it is zeroized on drop.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        self.secret_access_key.zeroize();
        if let Some(t) = &mut self.session_token {
            t.zeroize();
        }
    }
}

/// A request about to be sent. `path` is percent-encoded as it will be sent; `query` is the raw query
/// string without `?`; `headers` must include `host`.
pub struct SignableRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub payload: &'a [u8],
}

/// The request as the server received it.
pub struct RequestView<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub payload: &'a [u8],
}

/// Where the signature was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthForm {
    /// `Authorization: AWS4-HMAC-SHA256 ...`
    Header,
    /// `?X-Amz-Algorithm=...&X-Amz-Signature=...`
    PresignedQuery,
}

/// Everything parsed out of a signed request before any key lookup.
#[derive(Debug, Clone)]
pub struct ParsedSignature {
    pub form: AuthForm,
    pub access_key_id: String,
    pub scope_date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub amz_date: OffsetDateTime,
    pub security_token: Option<String>,
    pub expires_secs: Option<u64>,
    signature: [u8; 32],
    amz_date_text: String,
}

/// Why a request's signature was not accepted, with AWS's codes and texts.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SigV4Error {
    /// No signature at all.
    #[error("missing authentication token")]
    Missing,
    /// A signature is present but malformed or incomplete.
    #[error("incomplete signature: {0}")]
    Incomplete(String),
    /// The credential scope does not fit the request (date, terminator).
    #[error("invalid credential scope: {0}")]
    InvalidScope(String),
    /// The request time is outside the accepted window.
    #[error("signature expired")]
    Expired { message: String },
    /// The signature does not match.
    #[error("signature does not match")]
    Mismatch,
}

impl SigV4Error {
    pub fn aws_code(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::Incomplete(_) => "IncompleteSignatureException",
            SigV4Error::InvalidScope(_) | SigV4Error::Expired { .. } | SigV4Error::Mismatch => "InvalidSignatureException",
        }
    }

    pub fn message(&self) -> String {
        match self {
            SigV4Error::Missing => "Missing Authentication Token".into(),
            SigV4Error::Incomplete(m) | SigV4Error::InvalidScope(m) => m.clone(),
            SigV4Error::Expired { message } => message.clone(),
            SigV4Error::Mismatch => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        }
    }
}

// ----- canonical forms ----------------------------------------------------------------------

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// URI-encodes with AWS's unreserved set; `/` is kept when `keep_slash`.
fn uri_encode(input: &[u8], keep_slash: bool, out: &mut String) {
    for &b in input {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The canonical URI of a non-S3 request: the path normalized (`.`/`..` segments resolved, repeated
/// slashes kept out) and each segment encoded once more, as the SDKs do.
fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() || raw_path == "/" {
        return "/".to_string();
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in raw_path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(raw_path.len() + 8);
    for seg in &segments {
        out.push('/');
        uri_encode(seg.as_bytes(), false, &mut out);
    }
    if raw_path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(s).collect()
}

/// Sorted, re-encoded query parameters; `X-Amz-Signature` is left out (it signs the rest).
fn canonical_query(raw_query: &str) -> String {
    let mut params: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            if k == "X-Amz-Signature" {
                return None;
            }
            let mut ek = String::new();
            let mut ev = String::new();
            uri_encode(&percent_decode(k), false, &mut ek);
            uri_encode(&percent_decode(v), false, &mut ev);
            Some((ek, ev))
        })
        .collect();
    params.sort();
    params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Trims a header value and collapses inner runs of spaces.
fn normalize_header_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    signed: &[String],
    payload_hash: &str,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(method);
    out.push('\n');
    out.push_str(&canonical_uri(path));
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    for name in signed {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| normalize_header_value(v))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical.as_bytes()))
}

fn format_amz_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, fmt).ok().map(PrimitiveDateTime::assume_utc)
}

// ----- signing ------------------------------------------------------------------------------

/// Signs with a freshly derived key. See [`sign_with_key`].
pub fn sign(req: &SignableRequest<'_>, creds: &Credentials, region: &str, service: &str, now: OffsetDateTime) -> Vec<(String, String)> {
    let date = format_amz_date(now);
    let key = derive_signing_key(creds.secret_access_key.as_bytes(), &date[..8], region, service);
    sign_with_key(req, &creds.access_key_id, creds.session_token.as_deref(), &key, region, service, now)
}

/// Returns the headers to add (`x-amz-date`, `authorization`, and `x-amz-security-token` with a
/// session token). Every header of the request is signed.
pub fn sign_with_key(
    req: &SignableRequest<'_>,
    access_key_id: &str,
    session_token: Option<&str>,
    key: &SigningKey,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(now);
    let mut headers: Vec<(String, String)> =
        req.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    headers.push(("x-amz-date".into(), amz_date.clone()));
    if let Some(t) = session_token {
        headers.push(("x-amz-security-token".into(), t.to_string()));
    }
    let mut signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
    signed.sort();
    signed.dedup();
    let payload_hash = headers
        .iter()
        .find(|(k, _)| k == "x-amz-content-sha256")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| sha256_hex(req.payload));
    let canonical = canonical_request(req.method, req.path, req.query, &headers, &signed, &payload_hash);
    let scope = format!("{}/{region}/{service}/{TERMINATOR}", &amz_date[..8]);
    let signature = hex::encode(hmac(key.0.as_ref(), string_to_sign(&amz_date, &scope, &canonical).as_bytes()));
    let mut out = vec![
        ("x-amz-date".to_string(), amz_date),
        (
            "authorization".to_string(),
            format!("{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={signature}", signed.join(";")),
        ),
    ];
    if let Some(t) = session_token {
        out.push(("x-amz-security-token".into(), t.to_string()));
    }
    out
}

/// The presigned form: returns the complete query string to send (the request's own parameters plus
/// the `X-Amz-*` ones). Only `host` and the request's own headers are signed.
pub fn presign(
    req: &SignableRequest<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    now: OffsetDateTime,
    expires_secs: u64,
) -> String {
    let amz_date = format_amz_date(now);
    let scope = format!("{}/{region}/{service}/{TERMINATOR}", &amz_date[..8]);
    let headers: Vec<(String, String)> = req.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    let mut signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
    signed.sort();
    signed.dedup();
    let enc = |s: &str| {
        let mut o = String::new();
        uri_encode(s.as_bytes(), false, &mut o);
        o
    };
    let mut query = req.query.to_string();
    let mut add = |k: &str, v: &str| {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(k);
        query.push('=');
        query.push_str(v);
    };
    add("X-Amz-Algorithm", ALGORITHM);
    add("X-Amz-Credential", &enc(&format!("{}/{scope}", creds.access_key_id)));
    add("X-Amz-Date", &amz_date);
    add("X-Amz-Expires", &expires_secs.to_string());
    add("X-Amz-SignedHeaders", &enc(&signed.join(";")));
    if let Some(t) = &creds.session_token {
        add("X-Amz-Security-Token", &enc(t));
    }
    let key = derive_signing_key(creds.secret_access_key.as_bytes(), &amz_date[..8], region, service);
    let canonical = canonical_request(req.method, req.path, &query, &headers, &signed, &sha256_hex(req.payload));
    let signature = hex::encode(hmac(key.0.as_ref(), string_to_sign(&amz_date, &scope, &canonical).as_bytes()));
    query.push_str("&X-Amz-Signature=");
    query.push_str(&signature);
    query
}

// ----- verification -------------------------------------------------------------------------

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

struct Credential {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
}

fn parse_credential(c: &str) -> Result<Credential, SigV4Error> {
    let parts: Vec<&str> = c.split('/').collect();
    if parts.len() != 5 || parts.iter().any(|p| p.is_empty()) {
        return Err(SigV4Error::Incomplete(format!(
            "Credential should be scoped to correct service and region, in the form <access key>/<date>/<region>/<service>/{TERMINATOR}."
        )));
    }
    if parts[4] != TERMINATOR {
        return Err(SigV4Error::InvalidScope(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            parts[4]
        )));
    }
    if parts[1].len() != 8 || !parts[1].bytes().all(|b| b.is_ascii_digit()) {
        return Err(SigV4Error::InvalidScope("Credential should be scoped to a valid date.".into()));
    }
    Ok(Credential {
        access_key_id: parts[0].to_string(),
        date: parts[1].to_string(),
        region: parts[2].to_string(),
        service: parts[3].to_string(),
    })
}

fn parse_signature_hex(s: &str) -> Result<[u8; 32], SigV4Error> {
    let mut out = [0u8; 32];
    if s.len() != 64 || hex::decode_to_slice(s, &mut out).is_err() {
        return Err(SigV4Error::Incomplete("The signature must be 64 hexadecimal characters.".into()));
    }
    Ok(out)
}

fn parse_signed_headers(s: &str) -> Result<Vec<String>, SigV4Error> {
    let list: Vec<String> = s.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
    if list.iter().any(String::is_empty) {
        return Err(SigV4Error::Incomplete("SignedHeaders must be a ';'-separated list of header names.".into()));
    }
    Ok(list)
}

/// Reads the signature parts out of the `Authorization` header or the presigned query.
pub fn parse(req: &RequestView<'_>) -> Result<ParsedSignature, SigV4Error> {
    if let Some(auth) = req.headers.get(http::header::AUTHORIZATION) {
        let auth = auth
            .to_str()
            .map_err(|_| SigV4Error::Incomplete("The Authorization header is not valid text.".into()))?;
        return parse_header_form(req, auth);
    }
    if req.query.contains("X-Amz-Signature=") || req.query.contains("X-Amz-Algorithm=") {
        return parse_query_form(req);
    }
    Err(SigV4Error::Missing)
}

fn parse_header_form(req: &RequestView<'_>, auth: &str) -> Result<ParsedSignature, SigV4Error> {
    let rest = auth.strip_prefix(ALGORITHM).ok_or_else(|| {
        SigV4Error::Incomplete(format!("Unsupported authorization type: only {ALGORITHM} is accepted."))
    })?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let mut missing = Vec::new();
    for (name, value) in [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed_headers)] {
        if value.is_none() {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if !missing.is_empty() {
        return Err(SigV4Error::Incomplete(missing.join(" ")));
    }
    let (credential, signed_headers, signature) =
        (credential.unwrap_or_default(), signed_headers.unwrap_or_default(), signature.unwrap_or_default());
    let cred = parse_credential(credential)?;
    let amz_date_text = header_str(req.headers, "x-amz-date")
        .or_else(|| header_str(req.headers, "date").filter(|d| parse_amz_date(d).is_some()))
        .ok_or_else(|| {
            SigV4Error::Incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into())
        })?
        .to_string();
    let amz_date = parse_amz_date(&amz_date_text)
        .ok_or_else(|| SigV4Error::Incomplete("X-Amz-Date must be in the ISO 8601 basic format yyyyMMddTHHmmssZ.".into()))?;
    Ok(ParsedSignature {
        form: AuthForm::Header,
        access_key_id: cred.access_key_id,
        scope_date: cred.date,
        region: cred.region,
        service: cred.service,
        signed_headers: parse_signed_headers(signed_headers)?,
        amz_date,
        security_token: header_str(req.headers, "x-amz-security-token").map(str::to_string),
        expires_secs: None,
        signature: parse_signature_hex(signature)?,
        amz_date_text,
    })
}

fn parse_query_form(req: &RequestView<'_>) -> Result<ParsedSignature, SigV4Error> {
    let get = |name: &str| -> Option<String> {
        req.query.split('&').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k == name).then(|| String::from_utf8_lossy(&percent_decode(v)).into_owned())
        })
    };
    let require = |v: Option<String>, name: &str| {
        v.ok_or_else(|| SigV4Error::Incomplete(format!("AWS query-string parameters must include '{name}'.")))
    };
    let algorithm = require(get("X-Amz-Algorithm"), "X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(SigV4Error::Incomplete(format!("X-Amz-Algorithm only supports '{ALGORITHM}'.")));
    }
    let credential = require(get("X-Amz-Credential"), "X-Amz-Credential")?;
    let amz_date_text = require(get("X-Amz-Date"), "X-Amz-Date")?;
    let signed_headers = require(get("X-Amz-SignedHeaders"), "X-Amz-SignedHeaders")?;
    let signature = require(get("X-Amz-Signature"), "X-Amz-Signature")?;
    let expires = require(get("X-Amz-Expires"), "X-Amz-Expires")?;
    let expires: u64 = expires
        .parse()
        .ok()
        .filter(|e| *e <= MAX_PRESIGN_SECS)
        .ok_or_else(|| SigV4Error::Incomplete("X-Amz-Expires must be a number of seconds no greater than 604800.".into()))?;
    let cred = parse_credential(&credential)?;
    let amz_date = parse_amz_date(&amz_date_text)
        .ok_or_else(|| SigV4Error::Incomplete("X-Amz-Date must be in the ISO 8601 basic format yyyyMMddTHHmmssZ.".into()))?;
    Ok(ParsedSignature {
        form: AuthForm::PresignedQuery,
        access_key_id: cred.access_key_id,
        scope_date: cred.date,
        region: cred.region,
        service: cred.service,
        signed_headers: parse_signed_headers(&signed_headers)?,
        amz_date,
        security_token: get("X-Amz-Security-Token"),
        expires_secs: Some(expires),
        signature: parse_signature_hex(&signature)?,
        amz_date_text,
    })
}

/// Checks the request time, the scope and the signature (in constant time).
pub fn verify(req: &RequestView<'_>, parsed: &ParsedSignature, key: &SigningKey, now: OffsetDateTime) -> Result<(), SigV4Error> {
    if !parsed.amz_date_text.starts_with(&parsed.scope_date) {
        return Err(SigV4Error::InvalidScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            parsed.scope_date,
            &parsed.amz_date_text[..parsed.amz_date_text.len().min(8)],
            "X-Amz-Date"
        )));
    }
    if !parsed.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Incomplete("The host header must be signed.".into()));
    }
    match parsed.form {
        AuthForm::Header => {
            if !parsed.signed_headers.iter().any(|h| h == "x-amz-date" || h == "date") {
                return Err(SigV4Error::Incomplete("The x-amz-date header must be signed.".into()));
            }
            if parsed.amz_date < now - MAX_SKEW {
                return Err(SigV4Error::Expired {
                    message: format!(
                        "Signature expired: {} is now earlier than {} ({} - 5 min.)",
                        parsed.amz_date_text,
                        format_amz_date(now - MAX_SKEW),
                        format_amz_date(now)
                    ),
                });
            }
            if parsed.amz_date > now + MAX_SKEW {
                return Err(SigV4Error::Expired {
                    message: format!(
                        "Signature not yet current: {} is still later than {} ({} + 5 min.)",
                        parsed.amz_date_text,
                        format_amz_date(now + MAX_SKEW),
                        format_amz_date(now)
                    ),
                });
            }
        }
        AuthForm::PresignedQuery => {
            let expires = Duration::seconds(parsed.expires_secs.unwrap_or(0) as i64);
            if now > parsed.amz_date + expires {
                return Err(SigV4Error::Expired {
                    message: format!(
                        "Signature expired: {} is now earlier than {} ({} - {} sec.)",
                        format_amz_date(parsed.amz_date + expires),
                        format_amz_date(now),
                        format_amz_date(now),
                        expires.whole_seconds()
                    ),
                });
            }
            if parsed.amz_date > now + MAX_SKEW {
                return Err(SigV4Error::Expired {
                    message: format!("Signature not yet current: {} is still later than {}", parsed.amz_date_text, format_amz_date(now + MAX_SKEW)),
                });
            }
        }
    }
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(name, _)| parsed.signed_headers.iter().any(|s| s == name.as_str()))
        .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let scope = format!("{}/{}/{}/{TERMINATOR}", parsed.scope_date, parsed.region, parsed.service);
    let declared_hash = req
        .headers
        .get("x-amz-content-sha256")
        .filter(|_| parsed.signed_headers.iter().any(|h| h == "x-amz-content-sha256"))
        .and_then(|v| v.to_str().ok());
    let mut candidates: Vec<String> = match declared_hash {
        Some(h) if h == UNSIGNED_PAYLOAD => vec![h.to_string()],
        Some(h) => {
            // A declared hash must be the body's: otherwise the body was swapped after signing.
            if !h.eq_ignore_ascii_case(&sha256_hex(req.payload)) {
                return Err(SigV4Error::Mismatch);
            }
            vec![h.to_string()]
        }
        None => vec![sha256_hex(req.payload)],
    };
    if parsed.form == AuthForm::PresignedQuery && declared_hash.is_none() {
        candidates.push(UNSIGNED_PAYLOAD.to_string());
    }
    for payload_hash in candidates {
        let canonical =
            canonical_request(req.method.as_str(), req.path, req.query, &headers, &parsed.signed_headers, &payload_hash);
        let expected = hmac(key.0.as_ref(), string_to_sign(&parsed.amz_date_text, &scope, &canonical).as_bytes());
        if bool::from(expected.ct_eq(&parsed.signature)) {
            return Ok(());
        }
    }
    Err(SigV4Error::Mismatch)
}

#[cfg(test)]
mod tests;
