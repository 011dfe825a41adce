//! The public API as the client and the server use it: round trips, the time windows, the error codes and
//! texts, and parsing that never panics.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should fail right there

use coffer_sigv4::{
    derive_signing_key, parse, payload_sha256_hex, presign, presign_with_payload_hash, sign, sign_with_key, verify,
    AuthForm, Credentials, ParsedSignature, RequestView, SigV4Error, SignableRequest, UNSIGNED_PAYLOAD,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SIGNED_AT: OffsetDateTime = datetime!(2015-08-30 12:36:00 UTC);

fn creds(token: Option<&str>) -> Credentials {
    Credentials { access_key_id: AKID.into(), secret_access_key: SECRET.into(), session_token: token.map(Into::into) }
}

/// A request on the wire.
#[derive(Clone)]
struct Req {
    method: &'static str,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn json(target: &str, body: &str) -> Req {
        Req {
            method: "POST",
            path: "/".into(),
            query: String::new(),
            headers: vec![
                ("host".into(), "127.0.0.1:8200".into()),
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                ("x-amz-target".into(), target.into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    fn signable(&self) -> SignableRequest<'_> {
        SignableRequest {
            method: self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            payload: &self.body,
        }
    }

    /// Signs in the header form and adds the returned headers.
    fn signed(mut self, creds: &Credentials, service: &str, now: OffsetDateTime) -> Req {
        let added = sign(&self.signable(), creds, "us-east-1", service, now);
        self.headers.extend(added);
        self
    }

    fn header_mut(&mut self, name: &str) -> &mut String {
        &mut self.headers.iter_mut().find(|(k, _)| k == name).unwrap().1
    }

    fn without(mut self, name: &str) -> Req {
        self.headers.retain(|(k, _)| k != name);
        self
    }

    fn with(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in &self.headers {
            map.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn parse(&self) -> Result<ParsedSignature, SigV4Error> {
        let (method, map) = (Method::from_bytes(self.method.as_bytes()).unwrap(), self.map());
        parse(&RequestView {
            method: &method,
            path: &self.path,
            query: &self.query,
            headers: &map,
            payload: &self.body,
        })
    }

    /// What the server does: parse, derive the key for the parsed scope, verify.
    fn check_with(&self, secret: &str, now: OffsetDateTime) -> Result<ParsedSignature, SigV4Error> {
        let (method, map) = (Method::from_bytes(self.method.as_bytes()).unwrap(), self.map());
        let view =
            RequestView { method: &method, path: &self.path, query: &self.query, headers: &map, payload: &self.body };
        let parsed = parse(&view)?;
        let key = derive_signing_key(secret.as_bytes(), &parsed.scope_date, &parsed.region, &parsed.service);
        verify(&view, &parsed, &key, now)?;
        Ok(parsed)
    }

    fn check(&self, now: OffsetDateTime) -> Result<ParsedSignature, SigV4Error> {
        self.check_with(SECRET, now)
    }
}

fn get_secret_value() -> Req {
    Req::json("secretsmanager.GetSecretValue", r#"{"SecretId":"x"}"#).signed(&creds(None), "secretsmanager", SIGNED_AT)
}

#[test]
fn json_1_1_post_round_trip() {
    let req = get_secret_value();
    let parsed = req.check(SIGNED_AT).unwrap();
    assert_eq!(parsed.form, AuthForm::Header);
    assert_eq!(parsed.access_key_id, AKID);
    assert_eq!(
        (parsed.scope_date.as_str(), parsed.region.as_str(), parsed.service.as_str()),
        ("20150830", "us-east-1", "secretsmanager")
    );
    assert_eq!(parsed.signed_headers, ["content-type", "host", "x-amz-date", "x-amz-target"]);
    assert_eq!(parsed.amz_date, SIGNED_AT);
    assert_eq!((parsed.security_token, parsed.expires_secs), (None, None));

    // A cached key signs exactly as a freshly derived one.
    let key = derive_signing_key(SECRET.as_bytes(), "20150830", "us-east-1", "secretsmanager");
    let unsigned = Req::json("secretsmanager.GetSecretValue", r#"{"SecretId":"x"}"#);
    let with_key = sign_with_key(&unsigned.signable(), AKID, None, &key, "us-east-1", "secretsmanager", SIGNED_AT);
    assert_eq!(with_key, req.headers[3..]);

    // Headers nobody signed may come and go.
    assert!(req.clone().with("user-agent", "aws-cli/2").check(SIGNED_AT).is_ok());
}

#[test]
fn json_1_1_post_rejects_every_change() {
    let req = get_secret_value();
    let mut changes: Vec<(&str, Req)> = Vec::new();
    for name in ["host", "content-type", "x-amz-target"] {
        let mut r = req.clone();
        r.header_mut(name).push('x');
        changes.push((name, r));
        changes.push((name, req.clone().without(name)));
    }
    let mut r = req.clone();
    *r.header_mut("x-amz-date") = "20150830T123601Z".into();
    changes.push(("x-amz-date", r));
    let mut r = req.clone();
    r.body = br#"{"SecretId":"y"}"#.to_vec();
    changes.push(("body", r));
    let mut r = req.clone();
    r.path = "/other".into();
    changes.push(("path", r));
    let mut r = req.clone();
    r.query = "a=b".into();
    changes.push(("query", r));
    changes.push(("duplicated signed header", req.clone().with("x-amz-target", "secretsmanager.DeleteSecret")));
    for (what, r) in changes {
        assert_eq!(r.check(SIGNED_AT).unwrap_err(), SigV4Error::Mismatch, "{what}");
    }
    assert_eq!(req.check_with("another secret", SIGNED_AT).unwrap_err(), SigV4Error::Mismatch);
}

#[test]
fn session_token_round_trip() {
    let req = Req::json("secretsmanager.GetSecretValue", r#"{"SecretId":"x"}"#).signed(
        &creds(Some("FQoGZXIvYXdzEBYaDEXAMPLETOKEN+/=")),
        "secretsmanager",
        SIGNED_AT,
    );
    let token = req.headers.iter().find(|(k, _)| k == "x-amz-security-token").unwrap();
    assert_eq!(token.1, "FQoGZXIvYXdzEBYaDEXAMPLETOKEN+/=");
    let parsed = req.check(SIGNED_AT).unwrap();
    assert_eq!(parsed.security_token.as_deref(), Some("FQoGZXIvYXdzEBYaDEXAMPLETOKEN+/="));
    assert!(parsed.signed_headers.iter().any(|h| h == "x-amz-security-token"));
    // The token is signed: it cannot be swapped or dropped.
    let mut swapped = req.clone();
    swapped.header_mut("x-amz-security-token").push('x');
    assert_eq!(swapped.check(SIGNED_AT).unwrap_err(), SigV4Error::Mismatch);
    assert_eq!(req.without("x-amz-security-token").check(SIGNED_AT).unwrap_err(), SigV4Error::Mismatch);
}

#[test]
fn clock_skew_window_is_five_minutes_either_way() {
    let req = get_secret_value();
    for offset in [0, 299, -299, 300, -300] {
        assert!(req.check(SIGNED_AT + Duration::seconds(offset)).is_ok(), "{offset}");
    }
    let late = req.check(SIGNED_AT + Duration::seconds(301)).unwrap_err();
    assert!(matches!(late, SigV4Error::Expired { .. }));
    assert_eq!(late.aws_code(), "InvalidSignatureException");
    assert_eq!(
        late.message(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)"
    );
    let early = req.check(SIGNED_AT - Duration::seconds(301)).unwrap_err();
    assert_eq!(early.aws_code(), "InvalidSignatureException");
    assert_eq!(
        early.message(),
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T123059Z + 5 min.)"
    );
    // Far from the window in either direction, at the ends of the representable range.
    for now in [OffsetDateTime::UNIX_EPOCH, datetime!(9999-12-31 23:59:59 UTC), datetime!(-9999-01-01 0:00 UTC)] {
        assert!(matches!(req.check(now).unwrap_err(), SigV4Error::Expired { .. }));
    }
}

#[test]
fn scope_date_must_be_the_request_date() {
    let mut req = get_secret_value();
    let auth = req.header_mut("authorization");
    *auth = auth.replace("/20150830/", "/20150831/");
    let err = req.check(SIGNED_AT).unwrap_err();
    assert!(matches!(err, SigV4Error::ScopeMismatch(_)));
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150831' != \
         '20150830', from 'X-Amz-Date'."
    );
    // Signed just before midnight, the request date's day is the scope's.
    let late = Req::json("t", "{}").signed(&creds(None), "kms", datetime!(2015-08-30 23:59:59 UTC));
    assert!(late.check(datetime!(2015-08-31 00:03:00 UTC)).is_ok());
    let mut r = late.clone();
    *r.header_mut("x-amz-date") = "20150831T000001Z".into();
    assert!(matches!(r.check(datetime!(2015-08-31 00:00:00 UTC)).unwrap_err(), SigV4Error::ScopeMismatch(_)));
}

#[test]
fn host_and_date_must_be_signed() {
    // Signed without a host header, then given one.
    let mut req = Req::json("t", "{}").without("host");
    req = req.signed(&creds(None), "kms", SIGNED_AT).with("host", "127.0.0.1");
    let err = req.check(SIGNED_AT).unwrap_err();
    assert_eq!(err.aws_code(), "IncompleteSignatureException");
    assert_eq!(err.message(), "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");

    let mut req = get_secret_value();
    let auth = req.header_mut("authorization");
    *auth = auth.replace(
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target",
        "SignedHeaders=content-type;host;x-amz-target",
    );
    assert_eq!(req.check(SIGNED_AT).unwrap_err().aws_code(), "IncompleteSignatureException");
}

#[test]
fn date_header_is_the_fallback_for_x_amz_date() {
    let mut req = get_secret_value();
    let date = req.header_mut("x-amz-date").clone();
    req = req.without("x-amz-date").with("date", &date);
    let parsed = req.parse().unwrap();
    assert_eq!(parsed.amz_date, SIGNED_AT);
    // The signature listed x-amz-date, not date: the date that was used is not signed.
    let err = req.check(SIGNED_AT).unwrap_err();
    assert_eq!(err.message(), "'date' must be a 'SignedHeader' in the AWS Authorization.");
    let rfc1123 = get_secret_value().without("x-amz-date").with("date", "Sun, 30 Aug 2015 12:36:00 GMT");
    assert_eq!(
        rfc1123.parse().unwrap_err().message(),
        "Date must be in ISO-8601 'basic format'. Got 'Sun, 30 Aug 2015 12:36:00 GMT'. See http://en.wikipedia.org/wiki/ISO_8601"
    );
}

#[test]
fn declared_payload_hash_is_used_when_signed() {
    let body_hash = payload_sha256_hex(br#"{"SecretId":"x"}"#);
    let signed = Req::json("t", r#"{"SecretId":"x"}"#).with("x-amz-content-sha256", &body_hash).signed(
        &creds(None),
        "kms",
        SIGNED_AT,
    );
    assert!(signed.check(SIGNED_AT).is_ok());
    let mut swapped = signed.clone();
    swapped.body = b"{}".to_vec();
    assert_eq!(swapped.check(SIGNED_AT).unwrap_err(), SigV4Error::Mismatch);

    // UNSIGNED-PAYLOAD: the signature covers everything but the body.
    let unsigned = Req::json("t", r#"{"SecretId":"x"}"#).with("x-amz-content-sha256", UNSIGNED_PAYLOAD).signed(
        &creds(None),
        "kms",
        SIGNED_AT,
    );
    let mut other_body = unsigned.clone();
    other_body.body = b"{}".to_vec();
    assert!(other_body.check(SIGNED_AT).is_ok());
    let mut r = unsigned.clone();
    r.header_mut("x-amz-target").push('x');
    assert_eq!(r.check(SIGNED_AT).unwrap_err(), SigV4Error::Mismatch);
}

fn presigned(token: Option<&str>, expires: u64) -> Req {
    let mut req = Req {
        method: "GET",
        path: "/".into(),
        query: "Action=GetCallerIdentity&Version=2011-06-15".into(),
        headers: vec![("host".into(), "sts.amazonaws.com".into())],
        body: Vec::new(),
    };
    req.query = presign(&req.signable(), &creds(token), "us-east-1", "sts", SIGNED_AT, expires);
    req
}

#[test]
fn presigned_round_trip_and_expiry() {
    let req = presigned(Some("tok/en+"), 60);
    assert!(req.query.starts_with("Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&"));
    for param in [
        "X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fsts%2Faws4_request",
        "X-Amz-Date=20150830T123600Z",
        "X-Amz-Expires=60",
        "X-Amz-SignedHeaders=host",
        "X-Amz-Security-Token=tok%2Fen%2B",
    ] {
        assert!(req.query.contains(param), "{param} in {}", req.query);
    }
    let parsed = req.check(SIGNED_AT).unwrap();
    assert_eq!(parsed.form, AuthForm::PresignedQuery);
    assert_eq!(parsed.expires_secs, Some(60));
    assert_eq!(parsed.security_token.as_deref(), Some("tok/en+"));
    assert_eq!(parsed.service, "sts");

    assert!(req.check(SIGNED_AT + Duration::seconds(60)).is_ok());
    assert!(req.check(SIGNED_AT - Duration::seconds(299)).is_ok(), "clock skew before the date");
    let expired = req.check(SIGNED_AT + Duration::seconds(61)).unwrap_err();
    assert_eq!(expired.aws_code(), "InvalidSignatureException");
    assert_eq!(
        expired.message(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T123701Z - 1 min.)"
    );
    let odd = presigned(None, 90).check(SIGNED_AT + Duration::seconds(91)).unwrap_err();
    assert!(odd.message().ends_with("(20150830T123731Z - 90 sec.)"), "{}", odd.message());
    assert!(matches!(req.check(SIGNED_AT - Duration::seconds(301)).unwrap_err(), SigV4Error::Expired { .. }));

    // Unsigned payload (the default): the body is not covered; everything else is.
    let mut with_body = req.clone();
    with_body.body = b"anything".to_vec();
    assert!(with_body.check(SIGNED_AT).is_ok());
    for (from, to) in [
        ("Action=GetCallerIdentity", "Action=AssumeRole"),
        ("X-Amz-Expires=60", "X-Amz-Expires=600"),
        ("tok%2Fen%2B", "tok%2Fen"),
        ("Version=2011-06-15&", ""),
    ] {
        let mut r = req.clone();
        r.query = r.query.replace(from, to);
        assert_eq!(r.check(SIGNED_AT).unwrap_err(), SigV4Error::Mismatch, "{from}");
    }
    let mut r = req.clone();
    *r.header_mut("host") = "evil.example".into();
    assert_eq!(r.check(SIGNED_AT).unwrap_err(), SigV4Error::Mismatch);
}

#[test]
fn presigned_with_a_hashed_payload_covers_the_body() {
    let mut req = Req::json("t", r#"{"a":1}"#);
    req.query = presign_with_payload_hash(
        &req.signable(),
        &creds(None),
        "us-east-1",
        "kms",
        SIGNED_AT,
        300,
        &payload_sha256_hex(&req.body),
    );
    assert!(req.check(SIGNED_AT).is_ok());
    req.body = b"{}".to_vec();
    assert_eq!(req.check(SIGNED_AT).unwrap_err(), SigV4Error::Mismatch);
}

#[test]
fn presigned_parse_errors() {
    let good = presigned(None, 60);
    let mut cases = vec![
        good.query.replace("X-Amz-Expires=60", "X-Amz-Expires=604801"),
        good.query.replace("X-Amz-Expires=60", "X-Amz-Expires=-1"),
        good.query.replace("X-Amz-Expires=60", "X-Amz-Expires=soon"),
        good.query.replace("&X-Amz-Expires=60", ""),
        good.query.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
        good.query.replace("X-Amz-Date=20150830T123600Z", "X-Amz-Date=yesterday"),
        good.query.replace("%2Faws4_request", ""),
        "X-Amz-Signature=00".into(),
    ];
    let (without_sig, _) = good.query.split_once("&X-Amz-Signature=").unwrap();
    cases.push(format!("{without_sig}&X-Amz-Signature=abc"));
    for query in cases {
        let mut r = good.clone();
        r.query = query;
        let err = r.check(SIGNED_AT).unwrap_err();
        assert_eq!(err.aws_code(), "IncompleteSignatureException", "{} -> {err:?}", r.query);
    }
    assert_eq!(
        {
            let mut r = good.clone();
            r.query = r.query.replace("X-Amz-Expires=60", "X-Amz-Expires=604801");
            r.parse().unwrap_err().message()
        },
        "X-Amz-Expires must be less than a week (in seconds) that is, the given X-Amz-Expires must be less than 604800 seconds"
    );
    // Both a header and a query signature: ambiguous, refused.
    let both = get_secret_value();
    let mut both = both.clone();
    both.query = good.query.clone();
    assert_eq!(both.parse().unwrap_err().aws_code(), "IncompleteSignatureException");
}

#[test]
fn missing_signature() {
    let req = get_secret_value().without("authorization");
    let err = req.parse().unwrap_err();
    assert_eq!(err, SigV4Error::Missing);
    assert_eq!(
        (err.aws_code(), err.message().as_str()),
        ("MissingAuthenticationTokenException", "Missing Authentication Token")
    );
    let mut r = req.clone();
    r.query = "Action=ListKeys&X-Amz-Foo=1".into();
    assert_eq!(r.parse().unwrap_err(), SigV4Error::Missing, "other parameters are not a signature");
}

const SIG: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

#[test]
fn malformed_authorization_headers_are_incomplete() {
    let cred = "Credential=AKID/20150830/us-east-1/kms/aws4_request";
    let cases = [
        format!("AWS4-HMAC-SHA1 {cred}, SignedHeaders=host;x-amz-date, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256X {cred}, SignedHeaders=host;x-amz-date, Signature={SIG}"),
        format!("Bearer {SIG}"),
        String::new(),
        "AWS4-HMAC-SHA256".into(),
        format!("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 {cred}, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date"),
        format!("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kms/aws5_request, SignedHeaders=host;x-amz-date, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 Credential=AKID/2015083/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kms/aws4_request/x, SignedHeaders=host;x-amz-date, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;;x-amz-date, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date, Signature={}", &SIG[..62]),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date, Signature={SIG}00"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date, Signature={}zz", &SIG[..62]),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date, Signature={SIG}, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date, {SIG}"),
    ];
    let base = get_secret_value().without("authorization");
    for case in cases {
        let err = base.clone().with("authorization", &case).parse().unwrap_err();
        assert!(matches!(err, SigV4Error::Incomplete(_)), "{case:?} -> {err:?}");
        assert_eq!(err.aws_code(), "IncompleteSignatureException");
    }

    // AWS's wording, quoting the header.
    let header = format!("AWS4-HMAC-SHA256 {cred},SignedHeaders=host;x-amz-date");
    let err = base.clone().with("authorization", &header).parse().unwrap_err();
    assert_eq!(err.message(), format!("Authorization header requires 'Signature' parameter. Authorization={header}"));
    let err = base.clone().without("x-amz-date").with("authorization", "AWS4-HMAC-SHA256 ").parse().unwrap_err();
    assert_eq!(
        err.message(),
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either \
         a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 "
    );
    let five =
        format!("AWS4-HMAC-SHA256 Credential=AKID/us-east-1/kms/aws4_request, SignedHeaders=host, Signature={SIG}");
    assert_eq!(
        base.clone().with("authorization", &five).parse().unwrap_err().message(),
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got \
         'AKID/us-east-1/kms/aws4_request'"
    );

    // Missing spaces after the commas are fine.
    let mut tight = get_secret_value();
    let auth = tight.header_mut("authorization");
    *auth = auth.replace(", ", ",");
    assert!(tight.check(SIGNED_AT).is_ok());
}

#[test]
fn non_utf8_headers_never_panic() {
    let mut map = HeaderMap::new();
    map.insert(http::header::AUTHORIZATION, HeaderValue::from_bytes(&[0xFF, 0xFE, b'a']).unwrap());
    let view = RequestView { method: &Method::POST, path: "/", query: "", headers: &map, payload: b"" };
    assert_eq!(parse(&view).unwrap_err().aws_code(), "IncompleteSignatureException");

    // A valid signature whose signed header holds bytes that are not UTF-8: hashed as sent.
    let req = get_secret_value();
    let mut map = req.map();
    map.insert("x-amz-date", HeaderValue::from_bytes(b"2015\xff0830T123600Z").unwrap());
    let method = Method::POST;
    let view = RequestView { method: &method, path: "/", query: "", headers: &map, payload: &req.body };
    assert_eq!(parse(&view).unwrap_err().aws_code(), "IncompleteSignatureException");
    let mut map = req.map();
    map.insert("x-amz-target", HeaderValue::from_bytes(b"secretsmanager.\xe9").unwrap());
    let view = RequestView { method: &method, path: "/", query: "", headers: &map, payload: &req.body };
    let parsed = parse(&view).unwrap();
    let key = derive_signing_key(SECRET.as_bytes(), "20150830", "us-east-1", "secretsmanager");
    assert_eq!(verify(&view, &parsed, &key, SIGNED_AT).unwrap_err(), SigV4Error::Mismatch);
}

/// xorshift64*: a reproducible stream of garbage without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn garbled_requests_never_panic() {
    let good = get_secret_value();
    let auth = good.headers.iter().find(|(k, _)| k == "authorization").unwrap().1.clone();
    let query = presigned(Some("t"), 60).query;
    let alphabet = b",;/= \t0aZ%-_.~\xff\x80AWS4-HMAC-SHA256Credential=SignedHeaders=Signature=X-Amz-&";
    let key = derive_signing_key(SECRET.as_bytes(), "20150830", "us-east-1", "secretsmanager");
    let other_key = derive_signing_key(b"another secret", "20150830", "us-east-1", "secretsmanager");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let garble = |text: &str, rng: &mut Rng| -> Vec<u8> {
        let mut bytes = text.as_bytes().to_vec();
        for _ in 0..1 + rng.below(6) {
            let pos = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if pos < bytes.len() => {
                    bytes.remove(pos);
                }
                1 => bytes.truncate(pos),
                _ => bytes.insert(pos, alphabet[rng.below(alphabet.len())]),
            }
        }
        bytes
    };
    let squash = |b: &[u8]| b.iter().copied().filter(|c| !c.is_ascii_whitespace()).collect::<Vec<u8>>();
    let mut parsed_ok = 0;
    for round in 0..6000 {
        // One thing garbled at a time, so that the rest still parses and verification is reached.
        let mut map = good.map();
        let (mut path, mut raw_query) = ("/".to_string(), String::new());
        match round % 3 {
            // A garbled Authorization header: any bytes a HeaderValue can hold.
            0 => match HeaderValue::from_bytes(&garble(&auth, &mut rng)) {
                Ok(value) => drop(map.insert(http::header::AUTHORIZATION, value)),
                Err(_) => drop(map.remove(http::header::AUTHORIZATION)),
            },
            // A garbled presigned query string (signed for another request altogether).
            1 => {
                map.remove(http::header::AUTHORIZATION);
                raw_query = String::from_utf8_lossy(&garble(&query, &mut rng)).into_owned();
            }
            // A garbled path under a valid header signature.
            _ => path = String::from_utf8_lossy(&garble("/a/./b/../%2E%2e//c", &mut rng)).into_owned(),
        }
        let view =
            RequestView { method: &Method::POST, path: &path, query: &raw_query, headers: &map, payload: &good.body };
        let Ok(parsed) = parse(&view) else { continue };
        parsed_ok += 1;
        let _ = format!("{parsed:?}");
        for now in [SIGNED_AT, OffsetDateTime::UNIX_EPOCH, datetime!(9999-12-31 23:59:59 UTC)] {
            // As the server does: the access key id selects the secret.
            let key = if parsed.access_key_id == AKID { &key } else { &other_key };
            if verify(&view, &parsed, key, now).is_ok() {
                assert_eq!(now, SIGNED_AT);
                match round % 3 {
                    // Only whitespace around the parameters may differ.
                    0 => assert_eq!(squash(map[http::header::AUTHORIZATION].as_bytes()), squash(auth.as_bytes())),
                    1 => panic!("a signature for another request verified: {raw_query}"),
                    // A path whose segments all cancel out is the signed "/".
                    _ => {
                        let mut depth = 0usize;
                        for segment in path.split('/') {
                            match segment {
                                "" | "." => {}
                                ".." => depth = depth.saturating_sub(1),
                                _ => depth += 1,
                            }
                        }
                        assert_eq!(depth, 0, "{path}");
                    }
                }
            }
        }
    }
    assert!(parsed_ok > 2000, "the garbling leaves enough parseable input to reach verify: {parsed_ok}");
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let c = creds(Some("session-token-secret"));
    let k = derive_signing_key(SECRET.as_bytes(), "20150830", "us-east-1", "iam");
    let dbg = format!("{c:?} {k:?}");
    assert!(dbg.contains(AKID));
    for secret in [SECRET, "session-token-secret", "c4afb1cc", "wJalr"] {
        assert!(!dbg.contains(secret), "{dbg}");
    }
    let req = get_secret_value();
    for now in [SIGNED_AT + Duration::hours(1), SIGNED_AT] {
        let err = req.check_with("wrong", now).unwrap_err();
        assert!(!err.to_string().contains(SECRET) && !err.message().contains("wrong"));
    }
    assert_eq!(
        SigV4Error::Mismatch.to_string(),
        "InvalidSignatureException: The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
}
