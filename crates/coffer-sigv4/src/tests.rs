//! SigV4 against AWS's published test-suite vectors (aws-sig-v4-test-suite: credentials AKIDEXAMPLE,
//! 20150830T123600Z, us-east-1, service "service") and the IAM documentation's key-derivation example,
//! plus the verifier's rejections.

use super::*;
use http::HeaderValue;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn suite_time() -> OffsetDateTime {
    parse_amz_date("20150830T123600Z").unwrap()
}

fn creds(token: Option<&str>) -> Credentials {
    Credentials { access_key_id: AKID.into(), secret_access_key: SECRET.into(), session_token: token.map(Into::into) }
}

fn signature_of(added: &[(String, String)]) -> String {
    let auth = &added.iter().find(|(k, _)| k == "authorization").unwrap().1;
    auth.rsplit("Signature=").next().unwrap().to_string()
}

fn sign_vector(method: &str, path: &str, query: &str, extra: &[(&str, &str)], body: &[u8]) -> Vec<(String, String)> {
    let mut headers = vec![("host".to_string(), "example.amazonaws.com".to_string())];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let req = SignableRequest { method, path, query, headers: &headers, payload: body };
    sign(&req, &creds(None), "us-east-1", "service", suite_time())
}

#[test]
fn iam_documentation_signing_key() {
    let key = derive_signing_key(SECRET.as_bytes(), "20150830", "us-east-1", "iam");
    assert_eq!(hex::encode(key.0.as_ref()), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}

#[test]
fn vector_get_vanilla() {
    let added = sign_vector("GET", "/", "", &[], b"");
    assert_eq!(
        added.iter().find(|(k, _)| k == "authorization").unwrap().1,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    assert_eq!(added[0], ("x-amz-date".to_string(), "20150830T123600Z".to_string()));
}

#[test]
fn vector_post_vanilla() {
    let added = sign_vector("POST", "/", "", &[], b"");
    assert_eq!(signature_of(&added), "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

#[test]
fn vector_get_vanilla_query_order_key_case() {
    let added = sign_vector("GET", "/", "Param2=value2&Param1=value1", &[], b"");
    assert_eq!(signature_of(&added), "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

#[test]
fn vector_post_x_www_form_urlencoded() {
    let added = sign_vector("POST", "/", "", &[("Content-Type", "application/x-www-form-urlencoded")], b"Param1=value1");
    assert_eq!(signature_of(&added), "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

#[test]
fn canonical_forms() {
    assert_eq!(canonical_query("Param2=value2&Param1=value1"), "Param1=value1&Param2=value2");
    assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
    assert_eq!(canonical_query("k=a%20b&e"), "e=&k=a%20b");
    assert_eq!(canonical_query("X-Amz-Signature=abc&x=1"), "x=1");
    assert_eq!(canonical_uri("/"), "/");
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(canonical_uri("/a/./b/../c/"), "/a/c/");
    assert_eq!(canonical_uri("/a%20b"), "/a%2520b", "non-S3 paths are encoded once more");
    assert_eq!(normalize_header_value("  \"a   b   c\"  "), "\"a b c\"");
}

/// Builds the server's view of a request the client signed.
fn view_parts(method: &str, headers: &[(String, String)]) -> (Method, HeaderMap) {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    (Method::from_bytes(method.as_bytes()).unwrap(), map)
}

fn json_request(now: OffsetDateTime, token: Option<&str>) -> (Vec<(String, String)>, Vec<u8>) {
    let body = br#"{"SecretId":"x"}"#.to_vec();
    let mut headers = vec![
        ("host".to_string(), "127.0.0.1:8200".to_string()),
        ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
        ("x-amz-target".to_string(), "secretsmanager.GetSecretValue".to_string()),
    ];
    let req = SignableRequest { method: "POST", path: "/", query: "", headers: &headers, payload: &body };
    let added = sign(&req, &creds(token), "us-east-1", "secretsmanager", now);
    headers.extend(added);
    (headers, body)
}

fn verify_with(headers: &[(String, String)], body: &[u8], now: OffsetDateTime) -> Result<ParsedSignature, SigV4Error> {
    let (method, map) = view_parts("POST", headers);
    let view = RequestView { method: &method, path: "/", query: "", headers: &map, payload: body };
    let parsed = parse(&view)?;
    let key = derive_signing_key(SECRET.as_bytes(), &parsed.scope_date, &parsed.region, &parsed.service);
    verify(&view, &parsed, &key, now)?;
    Ok(parsed)
}

#[test]
fn json_request_round_trip_and_tampering() {
    let now = suite_time();
    let (headers, body) = json_request(now, None);
    let parsed = verify_with(&headers, &body, now).unwrap();
    assert_eq!(parsed.access_key_id, AKID);
    assert_eq!((parsed.region.as_str(), parsed.service.as_str()), ("us-east-1", "secretsmanager"));
    assert_eq!(parsed.form, AuthForm::Header);

    assert_eq!(verify_with(&headers, br#"{"SecretId":"y"}"#, now).unwrap_err(), SigV4Error::Mismatch);
    for changed in ["host", "x-amz-target", "content-type"] {
        let mut h = headers.clone();
        h.iter_mut().find(|(k, _)| k == changed).unwrap().1.push('x');
        assert_eq!(verify_with(&h, &body, now).unwrap_err(), SigV4Error::Mismatch, "{changed}");
    }
    // An unsigned header may be added freely.
    let mut h = headers.clone();
    h.push(("user-agent".into(), "anything".into()));
    assert!(verify_with(&h, &body, now).is_ok());
    // A different secret does not verify.
    let (method, map) = view_parts("POST", &headers);
    let view = RequestView { method: &method, path: "/", query: "", headers: &map, payload: &body };
    let parsed = parse(&view).unwrap();
    let wrong = derive_signing_key(b"another secret", &parsed.scope_date, &parsed.region, &parsed.service);
    assert_eq!(verify(&view, &parsed, &wrong, now).unwrap_err(), SigV4Error::Mismatch);
}

#[test]
fn session_token_is_signed_and_parsed() {
    let now = suite_time();
    let (headers, body) = json_request(now, Some("session-token-value"));
    let parsed = verify_with(&headers, &body, now).unwrap();
    assert_eq!(parsed.security_token.as_deref(), Some("session-token-value"));
    assert!(parsed.signed_headers.contains(&"x-amz-security-token".to_string()));
}

#[test]
fn clock_skew_window() {
    let signed_at = suite_time();
    let (headers, body) = json_request(signed_at, None);
    assert!(verify_with(&headers, &body, signed_at + Duration::seconds(299)).is_ok());
    assert!(verify_with(&headers, &body, signed_at - Duration::seconds(299)).is_ok());
    let late = verify_with(&headers, &body, signed_at + Duration::seconds(301)).unwrap_err();
    assert_eq!(late.aws_code(), "InvalidSignatureException");
    assert_eq!(
        late.message(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)"
    );
    let early = verify_with(&headers, &body, signed_at - Duration::seconds(301)).unwrap_err();
    assert!(early.message().starts_with("Signature not yet current: 20150830T123600Z is still later than"));
}

#[test]
fn scope_date_must_match_request_date() {
    let now = suite_time();
    let (mut headers, body) = json_request(now, None);
    let auth = headers.iter_mut().find(|(k, _)| k == "authorization").unwrap();
    auth.1 = auth.1.replace("/20150830/", "/20150831/");
    let err = verify_with(&headers, &body, now).unwrap_err();
    assert!(matches!(err, SigV4Error::InvalidScope(_)));
    assert_eq!(err.aws_code(), "InvalidSignatureException");
}

#[test]
fn parse_errors() {
    let now = suite_time();
    let (headers, body) = json_request(now, None);
    let without_auth: Vec<(String, String)> = headers.iter().filter(|(k, _)| k != "authorization").cloned().collect();
    assert_eq!(verify_with(&without_auth, &body, now).unwrap_err(), SigV4Error::Missing);
    assert_eq!(SigV4Error::Missing.aws_code(), "MissingAuthenticationTokenException");
    let cases = [
        "AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=zz",
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host;;x, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "",
        "AWS4-HMAC-SHA256",
    ];
    for case in cases {
        let mut h = without_auth.clone();
        h.push(("authorization".into(), case.into()));
        let err = verify_with(&h, &body, now).unwrap_err();
        assert_eq!(err.aws_code(), "IncompleteSignatureException", "{case:?} -> {err:?}");
    }
    let mut h = without_auth.clone();
    h.push((
        "authorization".into(),
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws5_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".into(),
    ));
    assert!(matches!(verify_with(&h, &body, now).unwrap_err(), SigV4Error::InvalidScope(_)));
}

#[test]
fn garbage_authorization_never_panics() {
    let now = suite_time();
    let (headers, body) = json_request(now, None);
    let base = headers.iter().find(|(k, _)| k == "authorization").unwrap().1.clone();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut chars: Vec<char> = base.chars().collect();
        let n = chars.len();
        for j in 0..(1 + i % 5) {
            let pos = ((seed >> (j * 8)) as usize) % n;
            chars[pos] = [',', '/', '=', ' ', 'x', ';', '0', 'Z'][((seed >> (j * 3)) % 8) as usize];
        }
        let truncated: String = chars.into_iter().take(((seed >> 20) as usize) % (n + 1)).collect();
        let mut h: Vec<(String, String)> = headers.iter().filter(|(k, _)| k != "authorization").cloned().collect();
        h.push(("authorization".into(), truncated));
        let _ = verify_with(&h, &body, now);
    }
    // Non-UTF-8 header bytes.
    let mut map = HeaderMap::new();
    map.insert(http::header::AUTHORIZATION, HeaderValue::from_bytes(&[0xFF, 0xFE, b'a']).unwrap());
    let view = RequestView { method: &Method::POST, path: "/", query: "", headers: &map, payload: b"" };
    assert_eq!(parse(&view).unwrap_err().aws_code(), "IncompleteSignatureException");
}

#[test]
fn presigned_query_round_trip_and_expiry() {
    let now = suite_time();
    let headers = vec![("host".to_string(), "example.amazonaws.com".to_string())];
    let req = SignableRequest { method: "GET", path: "/", query: "Action=GetCallerIdentity", headers: &headers, payload: b"" };
    let query = presign(&req, &creds(Some("tok")), "us-east-1", "sts", now, 60);
    let (method, map) = view_parts("GET", &headers);
    let view = RequestView { method: &method, path: "/", query: &query, headers: &map, payload: b"" };
    let parsed = parse(&view).unwrap();
    assert_eq!(parsed.form, AuthForm::PresignedQuery);
    assert_eq!(parsed.expires_secs, Some(60));
    assert_eq!(parsed.security_token.as_deref(), Some("tok"));
    let key = derive_signing_key(SECRET.as_bytes(), "20150830", "us-east-1", "sts");
    verify(&view, &parsed, &key, now + Duration::seconds(59)).unwrap();
    assert!(matches!(verify(&view, &parsed, &key, now + Duration::seconds(61)).unwrap_err(), SigV4Error::Expired { .. }));
    let tampered = query.replace("Action=GetCallerIdentity", "Action=AssumeRole");
    let view = RequestView { method: &method, path: "/", query: &tampered, headers: &map, payload: b"" };
    let parsed = parse(&view).unwrap();
    assert_eq!(verify(&view, &parsed, &key, now).unwrap_err(), SigV4Error::Mismatch);
}

#[test]
fn debug_never_shows_secrets() {
    let c = creds(Some("tok-secret"));
    let k = derive_signing_key(SECRET.as_bytes(), "20150830", "us-east-1", "iam");
    let dbg = format!("{c:?} {k:?}");
    assert!(!dbg.contains(SECRET) && !dbg.contains("tok-secret") && !dbg.contains("c4afb1cc"));
}
