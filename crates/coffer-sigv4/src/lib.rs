//! AWS Signature Version 4, both sides: [`sign`] / [`presign`] for clients (the `coffer` CLI, the load
//! generator) and [`parse`] + [`verify`] for the server. Both sides build the canonical request with the
//! same code, so they cannot drift apart; AWS's published test suite pins that code to what the AWS SDKs do.
//!
//! Invariants:
//! - Pure: no I/O, no clock, no randomness. The current time is always a parameter.
//! - Signatures are compared in constant time ([`subtle`]).
//! - Neither the secret access key, a derived [`SigningKey`] nor a session token ever appears in `Debug`
//!   output or in an error message; key material is zeroized on drop.
//! - [`parse`] and [`verify`] never panic, whatever bytes the request holds.
//!
//! The canonical URI follows the rules for every service but S3: the path is normalized (`.`, `..` and
//! empty segments removed) and each segment is percent-encoded once more, which double-encodes a path that
//! was already encoded for the wire, as the SDKs do.
//!
//! The server must present `host` in the [`RequestView`] headers (for HTTP/2, copy `:authority` there).

mod canonical;
mod sign;
mod verify;

use std::fmt;

use http::{HeaderMap, Method};
use time::{Duration, OffsetDateTime};
use zeroize::{Zeroize, Zeroizing};

pub use canonical::payload_sha256_hex;
pub use sign::{presign, presign_with_payload_hash, sign, sign_with_key};
pub use verify::{parse, verify};

/// The only algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash a signer uses when it does not hash the body (the default for presigned URLs).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// AWS accepts header-signed requests up to five minutes away from its clock, either way.
pub const MAX_SKEW: Duration = Duration::minutes(5);
/// The longest validity a presigned request may ask for (seven days, as AWS).
pub const MAX_PRESIGN_SECS: u64 = 604_800;
const TERMINATOR: &str = "aws4_request";
const MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// A derived signing key: `HMAC("AWS4"+secret, date) → region → service → "aws4_request"`.
/// It is valid for one day, region and service; zeroized on drop and never printed.
#[derive(Clone)]
pub struct SigningKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// Derives the key that signs every request of one day (`yyyymmdd`), region and service.
pub fn derive_signing_key(secret_access_key: &[u8], date_yyyymmdd: &str, region: &str, service: &str) -> SigningKey {
    let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret_access_key);
    // Each intermediate key is as sensitive as the result for its scope: wipe them too.
    let k_date = Zeroizing::new(canonical::hmac(&seed, date_yyyymmdd.as_bytes()));
    let k_region = Zeroizing::new(canonical::hmac(k_date.as_ref(), region.as_bytes()));
    let k_service = Zeroizing::new(canonical::hmac(k_region.as_ref(), service.as_bytes()));
    SigningKey(Zeroizing::new(canonical::hmac(k_service.as_ref(), TERMINATOR.as_bytes())))
}

/// Credentials a client signs with. `Debug` redacts the secret and the session token; both are zeroized
/// on drop.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        self.session_token.zeroize();
    }
}

/// A request a client is about to send.
pub struct SignableRequest<'a> {
    pub method: &'a str,
    /// The URI path exactly as it will be sent (already percent-encoded).
    pub path: &'a str,
    /// The raw query string without `?`, possibly empty.
    pub query: &'a str,
    /// Every header that will be sent and signed; must include `host`. The signer adds `x-amz-date`
    /// (and `x-amz-security-token`), so the caller must not pass those nor `authorization`.
    pub headers: &'a [(String, String)],
    pub payload: &'a [u8],
}

/// A request as the server received it.
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// The raw path as received, still percent-encoded.
    pub path: &'a str,
    /// The raw query string without `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub payload: &'a [u8],
}

/// Where the signature was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthForm {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
    Header,
    /// `?X-Amz-Algorithm=...&X-Amz-Credential=...&X-Amz-Signature=...` (a presigned URL).
    PresignedQuery,
}

/// Everything parsed out of a signed request, before any key lookup.
#[derive(Clone)]
pub struct ParsedSignature {
    pub form: AuthForm,
    pub access_key_id: String,
    /// The credential scope's date, `yyyymmdd`.
    pub scope_date: String,
    pub region: String,
    pub service: String,
    /// Lower-cased, in the order the signer listed them.
    pub signed_headers: Vec<String>,
    pub amz_date: OffsetDateTime,
    pub security_token: Option<String>,
    /// `X-Amz-Expires`, presigned form only.
    pub expires_secs: Option<u64>,
    signature: [u8; 32],
    /// The request time exactly as sent: the string to sign uses this text.
    amz_date_text: String,
    /// Which header carried the time (header form): it must be among the signed headers.
    date_header: &'static str,
}

impl fmt::Debug for ParsedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The session token is a credential: never log it.
        f.debug_struct("ParsedSignature")
            .field("form", &self.form)
            .field("access_key_id", &self.access_key_id)
            .field("scope", &format_args!("{}/{}/{}", self.scope_date, self.region, self.service))
            .field("signed_headers", &self.signed_headers)
            .field("amz_date", &self.amz_date_text)
            .field("security_token", &self.security_token.as_ref().map(|_| "<redacted>"))
            .field("expires_secs", &self.expires_secs)
            .finish_non_exhaustive()
    }
}

/// Why a request's signature was not accepted. [`aws_code`](Self::aws_code) and
/// [`message`](Self::message) give the code and text AWS answers with.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SigV4Error {
    /// The request carries no signature at all (no `Authorization` header, no `X-Amz-*` query parameters).
    #[error("MissingAuthenticationTokenException: Missing Authentication Token")]
    Missing,
    /// A signature is present but malformed or incomplete; the text says what is wrong, as AWS words it.
    #[error("IncompleteSignatureException: {0}")]
    Incomplete(String),
    /// The credential scope's date is not the date of the request time.
    #[error("InvalidSignatureException: {0}")]
    ScopeMismatch(String),
    /// The request time is outside the accepted window (clock skew, or a presigned URL past its expiry).
    #[error("InvalidSignatureException: {message}")]
    Expired { message: String },
    /// The signature is well-formed but does not match the request.
    #[error("InvalidSignatureException: {MISMATCH_MESSAGE}")]
    Mismatch,
}

impl SigV4Error {
    /// AWS's error code (the `__type` of a JSON error).
    pub fn aws_code(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::Incomplete(_) => "IncompleteSignatureException",
            SigV4Error::ScopeMismatch(_) | SigV4Error::Expired { .. } | SigV4Error::Mismatch => {
                "InvalidSignatureException"
            }
        }
    }

    /// AWS's message text.
    pub fn message(&self) -> String {
        match self {
            SigV4Error::Missing => "Missing Authentication Token".into(),
            SigV4Error::Incomplete(m) | SigV4Error::ScopeMismatch(m) => m.clone(),
            SigV4Error::Expired { message } => message.clone(),
            SigV4Error::Mismatch => MISMATCH_MESSAGE.into(),
        }
    }
}

#[cfg(test)]
mod tests;
