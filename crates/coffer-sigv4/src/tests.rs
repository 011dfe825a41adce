//! The signer and the verifier against AWS's published SigV4 test suite (`tests/vectors/`, see its
//! README), the IAM documentation's key-derivation example, and the canonical-form helpers.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should fail right there

use std::path::{Path, PathBuf};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::canonical::{self, canonical_query, canonical_uri, hmac, parse_amz_date, payload_sha256_hex};
use super::sign::{Presign, Signer};
use super::*;

/// A request from a vector file: `METHOD target HTTP/1.1`, `Name:value` lines, a blank line, the body.
struct HttpRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn parse(text: &str) -> HttpRequest {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let request_line = lines.next().unwrap();
        // The target may hold a space (get-space), so cut the method and the version off the ends.
        let (method, rest) = request_line.split_once(' ').unwrap();
        let target = rest.strip_suffix(" HTTP/1.1").unwrap();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.to_string(), v.trim().to_string())
            })
            .collect();
        HttpRequest {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in &self.headers {
            map.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn check(&self, now: OffsetDateTime, key: &SigningKey) -> Result<ParsedSignature, SigV4Error> {
        let method = Method::from_bytes(self.method.as_bytes()).unwrap();
        let map = self.header_map();
        let view =
            RequestView { method: &method, path: &self.path, query: &self.query, headers: &map, payload: &self.body };
        let parsed = parse(&view)?;
        verify(&view, &parsed, key, now)?;
        Ok(parsed)
    }
}

struct Vector {
    name: String,
    dir: PathBuf,
    context: serde_json::Value,
}

impl Vector {
    fn all() -> Vec<Vector> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        let mut out: Vec<Vector> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .map(|dir| Vector {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                context: serde_json::from_str(&std::fs::read_to_string(dir.join("context.json")).unwrap()).unwrap(),
                dir,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(out.len(), 30, "every stored vector is exercised");
        out
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }

    fn str(&self, pointer: &str) -> &str {
        self.context.pointer(pointer).and_then(|v| v.as_str()).unwrap()
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::parse(self.str("/timestamp"), &Rfc3339).unwrap()
    }

    fn token(&self) -> Option<&str> {
        self.context.pointer("/credentials/token").and_then(|v| v.as_str())
    }

    /// STS-style: the token is added after signing, so it is not part of the signature.
    fn token_unsigned(&self) -> bool {
        self.context["omit_session_token"].as_bool() == Some(true)
    }

    fn key(&self) -> SigningKey {
        let date = &canonical::format_amz_date(self.now())[..8];
        derive_signing_key(
            self.str("/credentials/secret_access_key").as_bytes(),
            date,
            self.str("/region"),
            self.str("/service"),
        )
    }

    /// The request as the vector's signer saw it: with `sign_body`, it adds `x-amz-content-sha256`.
    fn request(&self) -> HttpRequest {
        let mut req = HttpRequest::parse(&self.file("request.txt"));
        if self.context["sign_body"].as_bool() == Some(true) {
            req.headers.push(("x-amz-content-sha256".into(), payload_sha256_hex(&req.body)));
        }
        req
    }
}

#[test]
fn header_form_signing_matches_every_vector() {
    for v in Vector::all() {
        let req = v.request();
        let signable = SignableRequest {
            method: &req.method,
            path: &req.path,
            query: &req.query,
            headers: &req.headers,
            payload: &req.body,
        };
        let token = if v.token_unsigned() { None } else { v.token() };
        let key = v.key();
        let signer = Signer {
            access_key_id: v.str("/credentials/access_key_id"),
            session_token: token,
            key: &key,
            region: v.str("/region"),
            service: v.str("/service"),
            now: v.now(),
        };
        let signed = signer.compute(&signable, None);
        assert_eq!(
            String::from_utf8(signed.canonical_request).unwrap(),
            v.file("header-canonical-request.txt"),
            "{}",
            v.name
        );
        assert_eq!(signed.string_to_sign, v.file("header-string-to-sign.txt"), "{}", v.name);
        assert_eq!(signed.signature, v.file("header-signature.txt"), "{}", v.name);

        // The public entry point produces the vector's Authorization header.
        let creds = Credentials {
            access_key_id: signer.access_key_id.into(),
            secret_access_key: v.str("/credentials/secret_access_key").into(),
            session_token: token.map(Into::into),
        };
        let added = sign(&signable, &creds, signer.region, signer.service, v.now());
        let expected = HttpRequest::parse(&v.file("header-signed-request.txt"));
        let expected_auth = expected.headers.iter().find(|(k, _)| k == "Authorization").unwrap();
        assert_eq!(added[0], ("x-amz-date".to_string(), "20150830T123600Z".to_string()), "{}", v.name);
        assert_eq!(added[1].1, expected_auth.1, "{}", v.name);
        assert_eq!(added.get(2).map(|(_, t)| t.as_str()), token, "{}", v.name);
    }
}

#[test]
fn presigned_form_signing_matches_every_vector() {
    for v in Vector::all().into_iter().filter(|v| !v.token_unsigned()) {
        let req = HttpRequest::parse(&v.file("request.txt"));
        let signable = SignableRequest {
            method: &req.method,
            path: &req.path,
            query: &req.query,
            headers: &req.headers,
            payload: &req.body,
        };
        let key = v.key();
        let expires = v.context["expiration_in_seconds"].as_u64().unwrap();
        let body_hash = payload_sha256_hex(&req.body);
        let signer = Signer {
            access_key_id: v.str("/credentials/access_key_id"),
            session_token: v.token(),
            key: &key,
            region: v.str("/region"),
            service: v.str("/service"),
            now: v.now(),
        };
        let signed = signer.compute(&signable, Some(Presign { expires_secs: expires, payload_hash: &body_hash }));
        assert_eq!(
            String::from_utf8(signed.canonical_request).unwrap(),
            v.file("query-canonical-request.txt"),
            "{}",
            v.name
        );
        assert_eq!(signed.string_to_sign, v.file("query-string-to-sign.txt"), "{}", v.name);
        assert_eq!(signed.signature, v.file("query-signature.txt"), "{}", v.name);

        // The public entry point yields the vector's query parameters (in another order).
        let creds = Credentials {
            access_key_id: signer.access_key_id.into(),
            secret_access_key: v.str("/credentials/secret_access_key").into(),
            session_token: v.token().map(Into::into),
        };
        let query =
            presign_with_payload_hash(&signable, &creds, signer.region, signer.service, v.now(), expires, &body_hash);
        let expected = HttpRequest::parse(&v.file("query-signed-request.txt"));
        let sorted = |q: &str| {
            let mut p: Vec<String> = q.split('&').map(str::to_string).collect();
            p.sort();
            p
        };
        assert_eq!(sorted(&query), sorted(&expected.query), "{}", v.name);
    }
}

/// Every way of changing a signed request that must break its signature.
fn tamperings(req: &HttpRequest, parsed: &ParsedSignature) -> Vec<(String, HttpRequest)> {
    let clone = || HttpRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers: req.headers.clone(),
        body: req.body.clone(),
    };
    let mut out = Vec::new();
    for name in &parsed.signed_headers {
        let mut changed = clone();
        for (k, v) in changed.headers.iter_mut().filter(|(k, _)| k.eq_ignore_ascii_case(name)) {
            // Keep the date well-formed so that the signature check, not the parser, rejects it.
            *v = if k.eq_ignore_ascii_case("x-amz-date") { "20150830T123601Z".into() } else { format!("{v}x") };
        }
        out.push((format!("header {name} changed"), changed));
        let mut removed = clone();
        removed.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name) || k.eq_ignore_ascii_case("x-amz-date"));
        if removed.headers.len() != req.headers.len() {
            out.push((format!("header {name} removed"), removed));
        }
    }
    let mut body = clone();
    body.body.extend_from_slice(b"x");
    out.push(("body".into(), body));
    let mut path = clone();
    path.path.push('x');
    out.push(("path".into(), path));
    let mut query = clone();
    query.query = format!("{}&Tampered=1", query.query).trim_start_matches('&').to_string();
    out.push(("query".into(), query));
    let mut method = clone();
    method.method = if req.method == "GET" { "POST".into() } else { "GET".into() };
    out.push(("method".into(), method));
    if parsed.form == AuthForm::PresignedQuery {
        let mut expires = clone();
        expires.query = expires.query.replace("X-Amz-Expires=3600", "X-Amz-Expires=3599");
        out.push(("X-Amz-Expires".into(), expires));
    }
    out
}

#[test]
fn verifier_accepts_every_vector_signed_request_and_rejects_any_change() {
    for v in Vector::all() {
        let mut forms = vec![("header", AuthForm::Header)];
        if !v.token_unsigned() {
            forms.push(("query", AuthForm::PresignedQuery));
        }
        for (prefix, form) in forms {
            let req = HttpRequest::parse(&v.file(&format!("{prefix}-signed-request.txt")));
            let parsed = req.check(v.now(), &v.key()).unwrap_or_else(|e| panic!("{} {prefix}: {e}", v.name));
            assert_eq!(parsed.form, form);
            assert_eq!(parsed.access_key_id, "AKIDEXAMPLE");
            assert_eq!(
                (parsed.scope_date.as_str(), parsed.region.as_str(), parsed.service.as_str()),
                ("20150830", "us-east-1", "service")
            );
            assert_eq!(parsed.security_token.as_deref(), v.token(), "{}", v.name);
            assert_eq!(parsed.expires_secs, (form == AuthForm::PresignedQuery).then_some(3600));
            for (what, changed) in tamperings(&req, &parsed) {
                assert_eq!(
                    changed.check(v.now(), &v.key()).unwrap_err(),
                    SigV4Error::Mismatch,
                    "{} {prefix}: {what}",
                    v.name
                );
            }
            let other_key = derive_signing_key(b"not the secret", "20150830", "us-east-1", "service");
            assert_eq!(req.check(v.now(), &other_key).unwrap_err(), SigV4Error::Mismatch, "{}", v.name);
        }
    }
}

#[test]
fn iam_documentation_signing_key() {
    let key = derive_signing_key(b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam");
    assert_eq!(hex::encode(key.0.as_ref()), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}

#[test]
fn hmac_matches_the_hmac_crate_for_every_key_length() {
    use hmac::{Hmac, Mac};
    for len in [0, 1, 31, 32, 63, 64, 65, 100, 200] {
        let key: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
        let mut reference = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
        reference.update(b"data");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(hmac(&key, b"data"), expected, "key length {len}");
    }
}

#[test]
fn canonical_uri_normalizes_and_double_encodes() {
    let uri = |p: &str| {
        let mut out = String::new();
        canonical_uri(p, &mut out);
        out
    };
    assert_eq!(uri(""), "/");
    assert_eq!(uri("/"), "/");
    assert_eq!(uri("//"), "/");
    assert_eq!(uri("/a/./b/../c/"), "/a/c/");
    assert_eq!(uri("/a/b/.."), "/a");
    assert_eq!(uri("/../.."), "/");
    // The SDKs send `/a%20b` for the path "a b" and sign it encoded once more.
    assert_eq!(uri("/a%20b/c+d"), "/a%2520b/c%2Bd");
    assert_eq!(uri("/ሴ"), "/%E1%88%B4");
}

#[test]
fn canonical_query_decodes_sorts_and_reencodes() {
    let query = |q: &str, presigned: bool| {
        let mut out = String::new();
        canonical_query(q, presigned, &mut out);
        out
    };
    assert_eq!(query("", false), "");
    assert_eq!(query("b=2&a=1&a=0", false), "a=0&a=1&b=2");
    assert_eq!(query("k=a%20b&e&&x=%7e", false), "e=&k=a%20b&x=~");
    assert_eq!(query("k=a b/c", false), "k=a%20b%2Fc");
    assert_eq!(query("k=%zz", false), "k=%25zz", "a stray % is literal");
    assert_eq!(query("X-Amz-Signature=abc&x=1", false), "X-Amz-Signature=abc&x=1");
    assert_eq!(query("X-Amz-Signature=abc&x=1", true), "x=1");
}

#[test]
fn header_values_are_trimmed_and_collapsed() {
    let headers = [("a", vec![&b"  x   y \t z  "[..], b"", b"\tq"])];
    let parts = canonical::Parts {
        method: "GET",
        path: "/",
        query: "",
        presigned: false,
        headers: &headers,
        payload_hash: "h",
    };
    assert_eq!(String::from_utf8(parts.canonical_request()).unwrap(), "GET\n/\n\na:x y z,,q\n\na\nh");
}

#[test]
fn amz_dates_parse_strictly() {
    let t = parse_amz_date("20150830T123600Z").unwrap();
    assert_eq!(t.unix_timestamp(), 1_440_938_160);
    for bad in
        ["", "20150830T123600", "2015-08-30T12:36:00Z", "20151330T123600Z", "+20150830T123600Z", "20150830T123600Zx"]
    {
        assert!(parse_amz_date(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn parsed_signature_debug_hides_the_token() {
    let v = &Vector::all()[0];
    let req = HttpRequest::parse(&v.file("header-signed-request.txt"));
    let mut parsed = req.check(v.now(), &v.key()).unwrap();
    parsed.security_token = Some("very-secret-token".into());
    let dbg = format!("{parsed:?}");
    assert!(!dbg.contains("very-secret-token") && dbg.contains("AKIDEXAMPLE"), "{dbg}");
}
