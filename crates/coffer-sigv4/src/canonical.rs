//! The canonical request, the string to sign and their pieces, shared by the signer and the verifier.
//! Everything works on bytes: a server may receive header values that are not UTF-8, and must hash
//! exactly what was sent.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use zeroize::Zeroizing;

use crate::{ALGORITHM, TERMINATOR};

/// Everything but AWS's unreserved characters `A-Za-z0-9-_.~` is percent-encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

const SHA256_BLOCK: usize = 64;

/// HMAC-SHA256. The key is brought to the block size here, exactly as RFC 2104 says (hashed when longer,
/// zero-padded), so that the fixed-size constructor applies and no fallible call is left.
pub(crate) fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = Zeroizing::new([0u8; SHA256_BLOCK]);
    if key.len() > SHA256_BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&(*block).into());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Hex SHA-256 of a payload, the value of `x-amz-content-sha256` for a signed body.
pub fn payload_sha256_hex(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

pub(crate) fn uri_encode(bytes: &[u8], out: &mut String) {
    out.extend(percent_encoding::percent_encode(bytes, ENCODE));
}

pub(crate) fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

/// The canonical URI for every service but S3: dot and empty segments removed (as botocore's
/// `remove_dot_segments`), then each segment encoded once more. The signer gets the path as it will be
/// sent and the server the path as received, so both encode the same text.
pub(crate) fn canonical_uri(raw_path: &str, out: &mut String) {
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    for segment in &segments {
        out.push('/');
        uri_encode(segment.as_bytes(), out);
    }
    if segments.is_empty() || raw_path.ends_with('/') {
        out.push('/');
    }
}

/// The query's `(name, value)` pairs, percent-decoded; `+` stays a plus, as the SDKs encode a space `%20`.
pub(crate) fn query_pairs(raw_query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    raw_query.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (percent_decode_str(k).collect(), percent_decode_str(v).collect())
    })
}

/// Parameters decoded, re-encoded, sorted by name then value. A presigned request's own signature is
/// not part of what it signs.
pub(crate) fn canonical_query(raw_query: &str, presigned: bool, out: &mut String) {
    let mut params: Vec<(String, String)> = query_pairs(raw_query)
        .filter(|(k, _)| !(presigned && k == b"X-Amz-Signature"))
        .map(|(k, v)| {
            let (mut ek, mut ev) = (String::new(), String::new());
            uri_encode(&k, &mut ek);
            uri_encode(&v, &mut ev);
            (ek, ev)
        })
        .collect();
    params.sort_unstable();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
}

/// Appends a header value trimmed, with each inner run of whitespace collapsed to one space.
fn push_header_value(value: &[u8], out: &mut Vec<u8>) {
    let mut words = value.split(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')).filter(|w| !w.is_empty());
    if let Some(first) = words.next() {
        out.extend_from_slice(first);
        for word in words {
            out.push(b' ');
            out.extend_from_slice(word);
        }
    }
}

/// A request reduced to what the canonical form needs.
pub(crate) struct Parts<'a, N, V> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub presigned: bool,
    /// The signed headers, lower-cased, in signing order, each with its values in the order sent.
    pub headers: &'a [(N, Vec<V>)],
    pub payload_hash: &'a str,
}

impl<N: AsRef<str>, V: AsRef<[u8]>> Parts<'_, N, V> {
    pub(crate) fn canonical_request(&self) -> Vec<u8> {
        let mut head = String::with_capacity(128);
        head.push_str(self.method);
        head.push('\n');
        canonical_uri(self.path, &mut head);
        head.push('\n');
        canonical_query(self.query, self.presigned, &mut head);
        head.push('\n');
        let mut out = head.into_bytes();
        for (name, values) in self.headers {
            out.extend_from_slice(name.as_ref().as_bytes());
            out.push(b':');
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_header_value(v.as_ref(), &mut out);
            }
            out.push(b'\n');
        }
        out.push(b'\n');
        for (i, (name, _)) in self.headers.iter().enumerate() {
            if i > 0 {
                out.push(b';');
            }
            out.extend_from_slice(name.as_ref().as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(self.payload_hash.as_bytes());
        out
    }
}

/// The `yyyymmdd` date of a `yyyymmddThhmmssZ` request time.
pub(crate) fn date_of(amz_date: &str) -> &str {
    amz_date.get(..8).unwrap_or_default()
}

pub(crate) fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{TERMINATOR}")
}

pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request)))
}

/// `yyyymmddThhmmssZ` in UTC.
pub(crate) fn format_amz_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
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

/// Parses `yyyymmddThhmmssZ`, and only its canonical spelling: the string to sign uses the text as sent.
pub(crate) fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = PrimitiveDateTime::parse(s, format).ok()?.assume_utc();
    (format_amz_date(t) == s).then_some(t)
}
