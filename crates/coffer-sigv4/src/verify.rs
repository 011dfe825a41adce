//! The server side: [`parse`] reads the signature out of a request, the caller looks up the access key and
//! derives its [`SigningKey`], and [`verify`] checks time, scope and signature.
//! Error texts follow AWS's where they are known, so clients show familiar messages.

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use subtle::{Choice, ConstantTimeEq};
use time::{Duration, OffsetDateTime};

use crate::canonical::{self, format_amz_date, parse_amz_date, payload_sha256_hex, query_pairs, Parts};
use crate::{
    AuthForm, ParsedSignature, RequestView, SigV4Error, SigningKey, ALGORITHM, MAX_PRESIGN_SECS, MAX_SKEW, TERMINATOR,
    UNSIGNED_PAYLOAD,
};

fn incomplete(message: impl Into<String>) -> SigV4Error {
    SigV4Error::Incomplete(message.into())
}

/// Reads the signature parts out of the `Authorization` header or the presigned query parameters.
/// Nothing is checked against keys or the clock here; see [`verify`].
pub fn parse(req: &RequestView<'_>) -> Result<ParsedSignature, SigV4Error> {
    let in_query = query_pairs(req.query)
        .any(|(k, _)| matches!(k.as_slice(), b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature"));
    match req.headers.get(AUTHORIZATION) {
        // Two signatures would leave it open which one authenticates the request.
        Some(_) if in_query => Err(incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string \
             parameter or the Authorization header should be specified",
        )),
        Some(value) => parse_header_form(req.headers, value),
        None if in_query => parse_query_form(req.query),
        None => Err(SigV4Error::Missing),
    }
}

/// The parsed `Credential=`: access key id and scope.
struct Credential {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
}

fn parse_credential(credential: &str) -> Result<Credential, SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts.as_slice() else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got \
             '{credential}'"
        )));
    };
    if *terminator != TERMINATOR {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )));
    }
    if access_key_id.is_empty() || region.is_empty() || service.is_empty() {
        return Err(incomplete(format!(
            "Credential should be scoped to correct service and region, in the form \
             <access key>/<date>/<region>/<service>/{TERMINATOR}, got '{credential}'"
        )));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!("Credential should be scoped to a valid date in yyyyMMdd form, not '{date}'.")));
    }
    Ok(Credential {
        access_key_id: (*access_key_id).to_string(),
        date: (*date).to_string(),
        region: (*region).to_string(),
        service: (*service).to_string(),
    })
}

fn parse_signed_headers(list: &str) -> Result<Vec<String>, SigV4Error> {
    let names: Vec<String> = list.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
    if names.iter().any(String::is_empty) {
        return Err(incomplete(format!("SignedHeaders must be a ';'-separated list of header names, got '{list}'.")));
    }
    Ok(names)
}

fn parse_signature(hex_text: &str) -> Result<[u8; 32], SigV4Error> {
    let mut out = [0u8; 32];
    match hex::decode_to_slice(hex_text, &mut out) {
        Ok(()) => Ok(out),
        Err(_) => Err(incomplete("The request signature must be 64 hexadecimal characters.")),
    }
}

fn parse_request_time(text: &str) -> Result<OffsetDateTime, SigV4Error> {
    parse_amz_date(text).ok_or_else(|| {
        incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })
}

fn parse_header_form(headers: &HeaderMap, value: &HeaderValue) -> Result<ParsedSignature, SigV4Error> {
    // AWS quotes the header it could not use; it holds no secret (the signature is not one).
    let quoted = String::from_utf8_lossy(value.as_bytes());
    let text = value
        .to_str()
        .map_err(|_| incomplete(format!("Authorization header must be ASCII text. Authorization={quoted}")))?;
    let text = text.trim();
    let (algorithm, params) = text.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((text, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'; only '{ALGORITHM}' is supported. Authorization={quoted}"
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    // Commas separate the parameters, with or without a following space.
    for part in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = part.split_once('=') else {
            return Err(incomplete(format!(
                "Invalid key=value pair (missing equal-sign) in Authorization header: '{part}'. Authorization={quoted}"
            )));
        };
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(value.trim()).is_some() {
            return Err(incomplete(format!(
                "Authorization header has a duplicate '{name}' parameter. Authorization={quoted}"
            )));
        }
    }
    // AWS falls back to `Date` when there is no `X-Amz-Date`.
    let date = ["x-amz-date", "date"].into_iter().find_map(|name| headers.get(name).map(|v| (name, v)));
    let (credential, signed_headers, signature, (date_header, date_value)) =
        match (credential, signed_headers, signature, date) {
            (Some(c), Some(h), Some(s), Some(d)) => (c, h, s, d),
            (c, h, s, d) => {
                let mut problems = String::new();
                for (name, absent) in
                    [("Credential", c.is_none()), ("Signature", s.is_none()), ("SignedHeaders", h.is_none())]
                {
                    if absent {
                        problems.push_str(&format!("Authorization header requires '{name}' parameter. "));
                    }
                }
                if d.is_none() {
                    problems.push_str(
                        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
                    );
                }
                return Err(incomplete(format!("{problems}Authorization={quoted}")));
            }
        };
    let credential = parse_credential(credential)?;
    let signed_headers = parse_signed_headers(signed_headers)?;
    let signature = parse_signature(signature)?;
    let amz_date_text = String::from_utf8_lossy(date_value.as_bytes()).into_owned();
    let amz_date = parse_request_time(&amz_date_text)?;
    let security_token = match headers.get("x-amz-security-token") {
        Some(v) => Some(v.to_str().map_err(|_| incomplete("X-Amz-Security-Token must be ASCII text."))?.to_string()),
        None => None,
    };
    Ok(ParsedSignature {
        form: AuthForm::Header,
        access_key_id: credential.access_key_id,
        scope_date: credential.date,
        region: credential.region,
        service: credential.service,
        signed_headers,
        amz_date,
        security_token,
        expires_secs: None,
        signature,
        amz_date_text,
        date_header,
    })
}

fn parse_query_form(query: &str) -> Result<ParsedSignature, SigV4Error> {
    let params: Vec<(Vec<u8>, Vec<u8>)> = query_pairs(query).collect();
    let get = |name: &str| {
        params.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let (Some(algorithm), Some(credential), Some(signature), Some(amz_date_text), Some(signed_headers), Some(expires)) = (
        get("X-Amz-Algorithm"),
        get("X-Amz-Credential"),
        get("X-Amz-Signature"),
        get("X-Amz-Date"),
        get("X-Amz-SignedHeaders"),
        get("X-Amz-Expires"),
    ) else {
        return Err(incomplete(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', \
             'X-Amz-Date', 'X-Amz-SignedHeaders', and 'X-Amz-Expires'. Re-examine the query-string parameters.",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!("X-Amz-Algorithm only supports \"{ALGORITHM}\"")));
    }
    let expires: u64 = expires.parse().map_err(|_| incomplete("X-Amz-Expires should be a number"))?;
    if expires > MAX_PRESIGN_SECS {
        return Err(incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is, the given X-Amz-Expires must be less \
             than {MAX_PRESIGN_SECS} seconds"
        )));
    }
    let credential = parse_credential(&credential)?;
    Ok(ParsedSignature {
        form: AuthForm::PresignedQuery,
        access_key_id: credential.access_key_id,
        scope_date: credential.date,
        region: credential.region,
        service: credential.service,
        signed_headers: parse_signed_headers(&signed_headers)?,
        amz_date: parse_request_time(&amz_date_text)?,
        security_token: get("X-Amz-Security-Token"),
        expires_secs: Some(expires),
        signature: parse_signature(&signature)?,
        amz_date_text,
        date_header: "x-amz-date",
    })
}

/// `5 min` or `90 sec`, as in AWS's expiry messages.
fn describe(window: Duration) -> String {
    let secs = window.whole_seconds();
    if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} sec")
    }
}

/// The header form may be [`MAX_SKEW`] old or early; a presigned request is good from [`MAX_SKEW`]
/// before its date until `X-Amz-Expires` after it.
fn check_time(parsed: &ParsedSignature, now: OffsetDateTime) -> Result<(), SigV4Error> {
    let window = match parsed.form {
        AuthForm::Header => MAX_SKEW,
        AuthForm::PresignedQuery => {
            Duration::seconds(parsed.expires_secs.unwrap_or(0).min(MAX_PRESIGN_SECS).try_into().unwrap_or(0))
        }
    };
    // A difference of two dates cannot overflow, unlike adding a window to a date near the end of time.
    let age = now - parsed.amz_date;
    if age > window {
        return Err(SigV4Error::Expired {
            message: format!(
                "Signature expired: {} is now earlier than {} ({} - {}.)",
                parsed.amz_date_text,
                format_amz_date(now.saturating_sub(window)),
                format_amz_date(now),
                describe(window)
            ),
        });
    }
    if age < -MAX_SKEW {
        return Err(SigV4Error::Expired {
            message: format!(
                "Signature not yet current: {} is still later than {} ({} + {}.)",
                parsed.amz_date_text,
                format_amz_date(now.saturating_add(MAX_SKEW)),
                format_amz_date(now),
                describe(MAX_SKEW)
            ),
        });
    }
    Ok(())
}

/// Checks the request time, the credential scope against the request date, that `host` (and for the
/// header form the date header) is signed, then recomputes the signature over exactly the signed headers
/// and compares it in constant time.
pub fn verify(
    req: &RequestView<'_>,
    parsed: &ParsedSignature,
    key: &SigningKey,
    now: OffsetDateTime,
) -> Result<(), SigV4Error> {
    let request_date = canonical::date_of(&parsed.amz_date_text);
    if parsed.scope_date != request_date {
        let source = if parsed.date_header == "date" { "Date" } else { "X-Amz-Date" };
        return Err(SigV4Error::ScopeMismatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != \
             '{request_date}', from '{source}'.",
            parsed.scope_date
        )));
    }
    let is_signed = |name: &str| parsed.signed_headers.iter().any(|h| h == name);
    if !is_signed("host") {
        return Err(incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."));
    }
    if parsed.form == AuthForm::Header && !is_signed(parsed.date_header) {
        return Err(incomplete(format!("'{}' must be a 'SignedHeader' in the AWS Authorization.", parsed.date_header)));
    }
    check_time(parsed, now)?;

    let presigned = parsed.form == AuthForm::PresignedQuery;
    let declared = if is_signed("x-amz-content-sha256") { req.headers.get("x-amz-content-sha256") } else { None };
    let candidates: Vec<String> = match declared {
        Some(value) => {
            let value = value.to_str().map_err(|_| SigV4Error::Mismatch)?;
            // A signed hash must be the body's, or the body could be swapped under a valid signature.
            if value != UNSIGNED_PAYLOAD && !value.eq_ignore_ascii_case(&payload_sha256_hex(req.payload)) {
                return Err(SigV4Error::Mismatch);
            }
            vec![value.to_string()]
        }
        // A presigned URL's signer may have hashed the (usually empty) body or left it unsigned.
        None if presigned => vec![payload_sha256_hex(req.payload), UNSIGNED_PAYLOAD.to_string()],
        None => vec![payload_sha256_hex(req.payload)],
    };

    let headers: Vec<(&str, Vec<&[u8]>)> = parsed
        .signed_headers
        .iter()
        .map(|name| (name.as_str(), req.headers.get_all(name.as_str()).iter().map(HeaderValue::as_bytes).collect()))
        .collect();
    let scope = canonical::scope(&parsed.scope_date, &parsed.region, &parsed.service);
    let mut matched = Choice::from(0);
    for payload_hash in &candidates {
        let parts = Parts {
            method: req.method.as_str(),
            path: req.path,
            query: req.query,
            presigned,
            headers: &headers,
            payload_hash,
        };
        let string_to_sign = canonical::string_to_sign(&parsed.amz_date_text, &scope, &parts.canonical_request());
        let expected = canonical::hmac(key.0.as_ref(), string_to_sign.as_bytes());
        matched |= expected.ct_eq(&parsed.signature);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch)
    }
}
