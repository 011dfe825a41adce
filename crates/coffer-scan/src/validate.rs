//! Structural checks that tell a real credential from something shaped like one: checksums, decodable
//! headers, parsable key material. Each returns the secret as fingerprinted (normalized where one
//! secret has several spellings), or `None` when the candidate is not a secret.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::rules::Validator;

/// Base64 that accepts input with or without padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Runs `validator` on a candidate: `whole` is the regex's whole match, `secret` the secret part.
pub fn run(validator: Validator, whole: &[u8], secret: &[u8]) -> Option<Vec<u8>> {
    match validator {
        Validator::GithubChecksum => github_checksum_ok(secret).then(|| secret.to_vec()),
        Validator::Jwt => jwt_ok(secret).then(|| secret.to_vec()),
        Validator::PrivateKey => private_key_body(whole),
        Validator::AwsSecretKey => aws_secret_ok(secret).then(|| secret.to_vec()),
    }
}

/// Base62 (digits, upper, lower) of `n`, left-padded with zeros to six characters, as GitHub and npm
/// write the CRC32 of a token's random part.
pub fn base62_checksum(n: u32) -> String {
    let mut n = u64::from(n);
    let mut out = Vec::with_capacity(6);
    while n > 0 {
        out.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    while out.len() < 6 {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// `prefix_` + 30 random base62 characters + the base62 CRC32 of those 30.
pub fn github_checksum_ok(token: &[u8]) -> bool {
    let Some(sep) = token.iter().position(|&b| b == b'_') else { return false };
    let body = &token[sep + 1..];
    if body.len() != 36 {
        return false;
    }
    let (random, check) = body.split_at(30);
    base62_checksum(crc32fast::hash(random)).as_bytes() == check
}

fn decode_b64url(part: &[u8]) -> Option<Vec<u8>> {
    let trimmed: Vec<u8> = part.iter().copied().filter(|&b| b != b'=').collect();
    URL_SAFE_NO_PAD.decode(trimmed).ok()
}

/// A JWT whose header is a JSON object naming a signing algorithm, with a JSON payload; the jwt.io
/// sample token and unsigned (`alg: none`) tokens are not secrets.
pub fn jwt_ok(token: &[u8]) -> bool {
    let mut parts = token.split(|&b| b == b'.');
    let (Some(header), Some(payload), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Some(header) = decode_b64url(header).and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok()) else {
        return false;
    };
    let alg = header.get("alg").and_then(|a| a.as_str()).unwrap_or("");
    if alg.is_empty() || alg.eq_ignore_ascii_case("none") || sig.len() < 16 {
        return false;
    }
    let Some(payload) = decode_b64url(payload).and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
    else {
        return false;
    };
    if !payload.is_object() {
        return false;
    }
    let is_jwt_io_sample = payload.get("sub").and_then(|v| v.as_str()) == Some("1234567890")
        && payload.get("name").and_then(|v| v.as_str()) == Some("John Doe");
    !is_jwt_io_sample
}

fn aws_secret_ok(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_lowercase) && s.iter().any(u8::is_ascii_uppercase) && s.iter().any(u8::is_ascii_digit)
}

/// The label between `-----BEGIN ` and `-----`.
fn pem_label(text: &[u8]) -> Option<&[u8]> {
    let start = memchr::memmem::find(text, b"-----BEGIN ")? + 11;
    let len = memchr::memmem::find(&text[start..], b"-----")?;
    Some(&text[start..start + len])
}

/// The base64 body of a PEM-style private key, cleaned of the ways it gets embedded (indentation, quotes,
/// `\n` escapes, string concatenation, JSON arrays), if it decodes to key material of the labelled kind.
pub fn private_key_body(text: &[u8]) -> Option<Vec<u8>> {
    let label = pem_label(text)?.to_vec();
    let begin = memchr::memmem::find(text, b"-----BEGIN ")?;
    let body_start = begin + 11 + label.len() + 5;
    let body_end = memchr::memmem::rfind(text, b"-----END ")?;
    if body_end < body_start {
        return None;
    }
    let body = &text[body_start..body_end];
    // Escaped line breaks (`\n`, `\\n`, `\r\n`) become real ones.
    let mut unescaped = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' {
            let mut j = i;
            while j < body.len() && body[j] == b'\\' {
                j += 1;
            }
            if j < body.len() && (body[j] == b'n' || body[j] == b'r') {
                unescaped.push(b'\n');
                i = j + 1;
                continue;
            }
        }
        unescaped.push(body[i]);
        i += 1;
    }
    let mut b64 = Vec::with_capacity(unescaped.len());
    let mut encrypted_legacy = false;
    let is_pgp = label.starts_with(b"PGP");
    for line in unescaped.split(|&b| b == b'\n') {
        let line = strip_wrappers(line);
        if line.is_empty() {
            continue;
        }
        if line.contains(&b':') {
            if line.starts_with(b"Proc-Type") && memchr::memmem::find(line, b"ENCRYPTED").is_some() {
                encrypted_legacy = true;
            }
            continue;
        }
        if is_pgp && line.first() == Some(&b'=') && line.len() <= 6 {
            continue; // the armor checksum
        }
        if !line.iter().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)) {
            return None;
        }
        b64.extend(line.iter().filter(|&&b| b != b'='));
    }
    if b64.len() < 40 {
        return None;
    }
    let der = LENIENT.decode(&b64).ok()?;
    let ok = if label == b"OPENSSH PRIVATE KEY" {
        openssh_ok(&der)
    } else if is_pgp {
        pgp_ok(&der)
    } else if encrypted_legacy {
        der.len() >= 32 && der.len() % 8 == 0
    } else {
        der_key_ok(&label, &der)
    };
    ok.then_some(b64)
}

/// Strips what embeds a base64 line in code: indentation, quotes, commas, brackets, and concatenation
/// operators (`+`, `.`) standing apart from the base64 (whose alphabet has `+` too).
fn strip_wrappers(mut line: &[u8]) -> &[u8] {
    const WRAP: &[u8] = b"\"'`,;()[]&";
    loop {
        line = line.trim_ascii();
        let n = line.len();
        if n == 0 {
            return line;
        }
        let loose = |b: u8| b.is_ascii_whitespace() || WRAP.contains(&b);
        if WRAP.contains(&line[n - 1]) {
            line = &line[..n - 1];
        } else if WRAP.contains(&line[0]) {
            line = &line[1..];
        } else if n >= 2 && matches!(line[n - 1], b'+' | b'.') && loose(line[n - 2]) {
            line = &line[..n - 1];
        } else if n >= 2 && matches!(line[0], b'+' | b'.') && loose(line[1]) {
            line = &line[1..];
        } else {
            return line;
        }
    }
}

/// One DER element: (tag, content, rest).
fn der_element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if len > rest.len() {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn der_key_ok(label: &[u8], der: &[u8]) -> bool {
    let Some((0x30, seq, trailing)) = der_element(der) else { return false };
    if trailing.len() > 2 {
        return false;
    }
    let Some((first_tag, first, rest)) = der_element(seq) else { return false };
    let small_int = |content: &[u8], allowed: &[u8]| content.len() == 1 && allowed.contains(&content[0]);
    match label {
        b"RSA PRIVATE KEY" => {
            first_tag == 0x02
                && small_int(first, &[0, 1])
                && der_element(rest).is_some_and(|(t, modulus, _)| t == 0x02 && modulus.len() >= 32)
        }
        b"EC PRIVATE KEY" => {
            first_tag == 0x02
                && small_int(first, &[1])
                && der_element(rest).is_some_and(|(t, k, _)| t == 0x04 && (16..=66).contains(&k.len()))
        }
        b"DSA PRIVATE KEY" => {
            first_tag == 0x02 && small_int(first, &[0]) && der_element(rest).is_some_and(|(t, _, _)| t == 0x02)
        }
        b"PRIVATE KEY" => {
            first_tag == 0x02
                && small_int(first, &[0, 1])
                && der_element(rest).is_some_and(|(t, alg, after)| {
                    t == 0x30
                        && alg.first() == Some(&0x06)
                        && der_element(after).is_some_and(|(t, k, _)| t == 0x04 && k.len() >= 16)
                })
        }
        b"ENCRYPTED PRIVATE KEY" => {
            first_tag == 0x30 && der_element(rest).is_some_and(|(t, data, _)| t == 0x04 && data.len() >= 16)
        }
        _ => first_tag == 0x02 || first_tag == 0x30,
    }
}

fn ssh_string(data: &[u8]) -> Option<(&[u8], &[u8])> {
    if data.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// `openssh-key-v1\0`, cipher, KDF, KDF options, key count, public keys, private section.
fn openssh_ok(data: &[u8]) -> bool {
    let Some(rest) = data.strip_prefix(b"openssh-key-v1\0") else { return false };
    let parse = || -> Option<bool> {
        let (cipher, rest) = ssh_string(rest)?;
        let (_kdf, rest) = ssh_string(rest)?;
        let (_kdf_options, rest) = ssh_string(rest)?;
        if rest.len() < 4 {
            return None;
        }
        let count = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let mut rest = &rest[4..];
        if count == 0 || count > 16 || cipher.is_empty() {
            return None;
        }
        for _ in 0..count {
            let (public, r) = ssh_string(rest)?;
            if public.is_empty() {
                return None;
            }
            rest = r;
        }
        let (private, _) = ssh_string(rest)?;
        Some(!private.is_empty())
    };
    parse().unwrap_or(false)
}

/// An OpenPGP secret-key packet (tag 5, or 7 for a subkey) in old or new packet format.
fn pgp_ok(data: &[u8]) -> bool {
    let Some(&b) = data.first() else { return false };
    if b & 0x80 == 0 || data.len() < 32 {
        return false;
    }
    let tag = if b & 0x40 != 0 { b & 0x3f } else { (b >> 2) & 0x0f };
    tag == 5 || tag == 7
}

/// Decodes standard base64 (padding optional) if `v` is entirely base64.
pub fn decode_base64(v: &[u8]) -> Option<Vec<u8>> {
    if v.is_empty() || !v.iter().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)) {
        return None;
    }
    STANDARD.decode(v).ok().or_else(|| LENIENT.decode(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_pads_to_six() {
        assert_eq!(base62_checksum(0), "000000");
        assert_eq!(base62_checksum(61), "00000z");
        assert_eq!(base62_checksum(62), "000010");
        assert_eq!(base62_checksum(u32::MAX).len(), 6);
    }

    #[test]
    fn github_checksum_round_trip() {
        let random = "abcdefghijklmnopqrstuvwxyzABCD";
        let token = format!("ghp_{random}{}", base62_checksum(crc32fast::hash(random.as_bytes())));
        assert!(github_checksum_ok(token.as_bytes()));
        let mut bad = token.into_bytes();
        bad[5] = b'Z';
        assert!(!github_checksum_ok(&bad));
    }
}
