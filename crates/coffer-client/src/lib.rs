//! A small client for Coffer's AWS protocols, and the cache applications read their secrets through.
//!
//! - [`Client`] signs every request with the same SigV4 code the server verifies with (`coffer-sigv4`)
//!   and speaks the JSON 1.1 wire shapes from `coffer-wire`, and the query protocol (form-encoded
//!   requests, XML answers) of IAM and STS ([`query`], [`iam`], [`sts`]). A session token in the
//!   credentials is sent (and signed) as `X-Amz-Security-Token`. [`ClientConfig::resolve`] finds the
//!   endpoint, region and credentials as the AWS tools do, plus Coffer's profiles ([`config`], [`profile`]).
//! - [`SecretCache`] ([`cache`]) is what an application keeps its secrets in: TTL, size bound, background
//!   refresh, stale values while the server is down, a startup [`Manifest`] of required and optional
//!   items ([`manifest`]), and a [`CacheHealth`] for its `/healthz`. With `COFFER_SOURCE=dotenv:.env` the
//!   same code reads a local dotenv file instead of the server ([`source`], [`dotenv`]).
//!
//! An application's start, as seed 002 describes it (one-hour cache, refuse to start without the required
//! secrets, serve cached values when a refresh fails):
//!
//! ```no_run
//! use std::time::Duration;
//! use coffer_client::{CacheSettings, Manifest, SecretCache};
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! // [[secret]] name = "whatsapp-saas/mvp/admin-token" ... (see `manifest`)
//! let manifest = Manifest::load("secrets.toml")?;
//! // The server (endpoint and credentials from the environment, profiles or AWS files), or the file
//! // COFFER_SOURCE=dotenv:PATH names.
//! let cache = SecretCache::from_env(CacheSettings { ttl: Duration::from_secs(3600), ..Default::default() })?;
//! // Fails naming every missing required item; optional ones get their defaults.
//! cache.load_manifest(&manifest).await?;
//!
//! let admin_token = cache.value("ADMIN_TOKEN").await?.expect("required");
//! let model = cache.value("OPENAI_MODEL").await?; // the default while the secret does not exist
//! let db = cache.get_secret("whatsapp-saas/mvp/database-url").await?; // any secret, by id
//! let api_url = cache.get_parameter("/whatsapp-saas/mvp/api-url").await?; // decrypted
//! let backend = cache.get_path("/whatsapp-saas/mvp", false).await?; // everything under a path
//!
//! // In the application's /healthz: names, counts, ages and errors, never a value.
//! let health = serde_json::to_string(&cache.health())?;
//! # let _ = (admin_token, model, db, api_url, backend, health);
//! # Ok(()) }
//! ```

pub mod cache;
pub mod cloudtrail;
pub mod config;
pub mod dotenv;
pub mod events;
pub mod iam;
pub mod manifest;
pub mod profile;
pub mod query;
pub mod scan;
pub mod source;
pub mod sts;

use coffer_wire::{ErrorBody, JSON_1_1};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use cache::{CacheError, CacheHealth, CacheSettings, SecretCache, SecretValue, SecretVersion};
pub use config::{ClientConfig, ResolveOptions};
pub use manifest::{Manifest, ManifestItem};
pub use query::{Params, SecretText, XmlDoc, XmlNode};
use zeroize::Zeroizing;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an AWS error.
    #[error("{code}: {message}")]
    Api { status: u16, code: String, message: String, request_id: Option<String> },
    /// The server could not be reached.
    #[error("cannot reach {endpoint}: {detail}")]
    Transport { endpoint: String, detail: String },
    /// The response was not what the protocol promises.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// Endpoint, region or credentials could not be determined.
    #[error("{0}")]
    Config(String),
}

/// A signing JSON 1.1 client for one endpoint.
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    host: String,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let url = reqwest::Url::parse(&config.endpoint)
            .map_err(|e| ClientError::Config(format!("invalid endpoint URL {:?}: {e}", config.endpoint)))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return Err(ClientError::Config(format!("endpoint URL {:?} has no host", config.endpoint))),
        };
        let mut builder = reqwest::Client::builder().user_agent(concat!("coffer-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.ca_bundle {
            let pem = std::fs::read(ca).map_err(|e| ClientError::Config(format!("reading {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::Config(format!("parsing {}: {e}", ca.display())))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(Client { http, config, host })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Calls one JSON 1.1 operation: `target` is the full `X-Amz-Target` (e.g.
    /// `secretsmanager.GetSecretValue`), `signing_service` the SigV4 scope service.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        signing_service: &str,
        target: &str,
        request: &Req,
    ) -> Result<Resp, ClientError> {
        self.send(Some(signing_service), target, request).await
    }

    /// Calls one JSON 1.1 operation without signing it: for the few targets a server answers before
    /// any credentials exist (Coffer's `CofferOperator.SealStatus`, `.Init`, `.Unseal`).
    pub async fn call_unsigned<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        target: &str,
        request: &Req,
    ) -> Result<Resp, ClientError> {
        self.send(None, target, request).await
    }

    async fn send<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        signing_service: Option<&str>,
        target: &str,
        request: &Req,
    ) -> Result<Resp, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Decode(e.to_string()))?;
        let body = Zeroizing::new(body);
        let headers =
            vec![("content-type".to_string(), JSON_1_1.to_string()), ("x-amz-target".to_string(), target.to_string())];
        let answer = self.post(signing_service, headers, body).await?;
        let (status, request_id, bytes) = (answer.status, answer.request_id, answer.body);
        if status >= 300 {
            let err: ErrorBody = serde_json::from_slice(&bytes).map_err(|_| ClientError::Api {
                status,
                code: format!("HTTP{status}"),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                request_id: request_id.clone(),
            })?;
            let code = err.error_type.rsplit('#').next().unwrap_or_default().to_string();
            return Err(ClientError::Api { status, code, message: err.message, request_id });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Calls one query-protocol operation (IAM, STS): a signed, form-encoded `POST /` carrying
    /// `Action=<action>&Version=<version>` and `params` (already flattened, see [`Params`]). Answers the
    /// parsed XML; an `<ErrorResponse>` becomes [`ClientError::Api`].
    pub async fn query(
        &self,
        signing_service: &str,
        version: &str,
        action: &str,
        params: &[(String, String)],
    ) -> Result<XmlDoc, ClientError> {
        let answer =
            self.post(Some(signing_service), vec![form_content_type()], query_body(action, version, params)).await?;
        query::parse_response(answer.status, &answer.body, answer.request_id)
    }

    /// Calls a paginated query-protocol operation until its last page, following `Marker` while the
    /// answer says `IsTruncated`. `page` reads one page's result element into items and the next marker.
    pub async fn query_all_pages<T>(
        &self,
        signing_service: &str,
        version: &str,
        action: &str,
        params: &[(String, String)],
        mut page: impl FnMut(&XmlNode) -> Result<(Vec<T>, Option<String>), ClientError>,
    ) -> Result<Vec<T>, ClientError> {
        let mut all = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut request = Zeroizing::new(params.to_vec());
            if let Some(m) = &marker {
                request.push(("Marker".to_string(), m.clone()));
            }
            let doc = self.query(signing_service, version, action, &request).await?;
            let (items, next) = page(doc.result())?;
            all.extend(items);
            match next {
                Some(n) if marker.as_ref() == Some(&n) => {
                    return Err(ClientError::Decode(format!("{action} answered the same Marker twice")))
                }
                Some(n) => marker = Some(n),
                None => return Ok(all),
            }
        }
    }

    /// The headers to send with `body`: `headers`, `host`, and (when signing) the SigV4 date,
    /// `authorization` and, for temporary credentials, `x-amz-security-token`.
    fn request_headers(
        &self,
        signing_service: Option<&str>,
        mut headers: Vec<(String, String)>,
        body: &[u8],
        now: time::OffsetDateTime,
    ) -> Vec<(String, String)> {
        headers.insert(0, ("host".to_string(), self.host.clone()));
        if let Some(signing_service) = signing_service {
            let signable = coffer_sigv4::SignableRequest {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                payload: body,
            };
            let auth =
                coffer_sigv4::sign(&signable, &self.config.credentials, &self.config.region, signing_service, now);
            headers.extend(auth);
        }
        headers
    }

    /// Sends one `POST /`, signed for `signing_service` unless `None`.
    async fn post(
        &self,
        signing_service: Option<&str>,
        headers: Vec<(String, String)>,
        body: Zeroizing<Vec<u8>>,
    ) -> Result<Answer, ClientError> {
        let headers =
            Zeroizing::new(self.request_headers(signing_service, headers, &body, time::OffsetDateTime::now_utc()));
        let mut req = self.http.post(format!("{}/", self.config.endpoint));
        for (k, v) in headers.iter() {
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        let resp = req
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| ClientError::Transport { endpoint: self.config.endpoint.clone(), detail: root_cause(&e) })?;
        let status = resp.status().as_u16();
        let request_id = resp.headers().get("x-amzn-requestid").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Transport { endpoint: self.config.endpoint.clone(), detail: root_cause(&e) })?;
        Ok(Answer { status, request_id, body: Zeroizing::new(bytes.to_vec()) })
    }
}

/// A raw answer: status, `x-amzn-requestid`, body (zeroized on drop: it may hold secrets).
struct Answer {
    status: u16,
    request_id: Option<String>,
    body: Zeroizing<Vec<u8>>,
}

fn form_content_type() -> (String, String) {
    ("content-type".to_string(), query::FORM_CONTENT_TYPE.to_string())
}

/// `Action=…&Version=…&<params>`, form-encoded.
fn query_body(action: &str, version: &str, params: &[(String, String)]) -> Zeroizing<Vec<u8>> {
    let mut all = Vec::with_capacity(params.len() + 2);
    all.push(("Action".to_string(), action.to_string()));
    all.push(("Version".to_string(), version.to_string()));
    all.extend(params.iter().cloned());
    let body = Zeroizing::new(query::encode_form(&all));
    for (_, v) in &mut all {
        zeroize::Zeroize::zeroize(v);
    }
    Zeroizing::new(body.as_bytes().to_vec())
}

impl Client {
    /// Calls a paginated operation until its last page: `request` builds the request for a page token
    /// (`None` for the first), `page` splits a response into its items and the next token.
    pub async fn call_all_pages<Req: Serialize, Resp: DeserializeOwned, T>(
        &self,
        signing_service: &str,
        target: &str,
        mut request: impl FnMut(Option<String>) -> Req,
        mut page: impl FnMut(Resp) -> (Vec<T>, Option<String>),
    ) -> Result<Vec<T>, ClientError> {
        let mut all = Vec::new();
        let mut token = None;
        loop {
            let resp: Resp = self.call(signing_service, target, &request(token.take())).await?;
            let (items, next) = page(resp);
            all.extend(items);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_sigv4::Credentials;

    fn client(session_token: Option<&str>) -> Client {
        Client::new(ClientConfig {
            endpoint: "http://127.0.0.1:8200".into(),
            region: "us-east-1".into(),
            credentials: Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                session_token: session_token.map(str::to_string),
            },
            ca_bundle: None,
        })
        .unwrap()
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn query_bodies_lead_with_action_and_version() {
        let body = query_body("ListUsers", iam::VERSION, &Params::new().add("PathPrefix", "/a b/").into_vec());
        assert_eq!(std::str::from_utf8(&body).unwrap(), "Action=ListUsers&Version=2010-05-08&PathPrefix=%2Fa%20b%2F");
    }

    #[test]
    fn session_tokens_are_sent_and_signed() {
        let now = time::macros::datetime!(2026-11-23 10:00:00 UTC);
        let body = query_body("GetCallerIdentity", sts::VERSION, &[]);
        let with = client(Some("FwoGZXIvYXdzEXAMPLETOKEN")).request_headers(
            Some("sts"),
            vec![form_content_type()],
            &body,
            now,
        );
        assert_eq!(header(&with, "x-amz-security-token"), Some("FwoGZXIvYXdzEXAMPLETOKEN"));
        assert_eq!(header(&with, "host"), Some("127.0.0.1:8200"));
        let auth = header(&with, "authorization").unwrap();
        assert!(auth.contains("Credential=AKIDEXAMPLE/20261123/us-east-1/sts/aws4_request"), "{auth}");
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"), "{auth}");

        let without = client(None).request_headers(Some("iam"), vec![form_content_type()], &body, now);
        assert_eq!(header(&without, "x-amz-security-token"), None);
        assert!(header(&without, "authorization").unwrap().contains("SignedHeaders=content-type;host;x-amz-date,"));

        let unsigned = client(Some("t")).request_headers(None, vec![], &body, now);
        assert_eq!(unsigned.len(), 1, "only host");
    }

    #[test]
    fn signed_query_requests_verify_with_the_server_code() {
        let now = time::OffsetDateTime::now_utc();
        let c = client(Some("token-1"));
        let body = query_body("GetCallerIdentity", sts::VERSION, &[]);
        let headers = c.request_headers(Some("sts"), vec![form_content_type()], &body, now);
        let mut map = http::HeaderMap::new();
        for (k, v) in &headers {
            map.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), http::HeaderValue::from_str(v).unwrap());
        }
        let method = http::Method::POST;
        let view = coffer_sigv4::RequestView { method: &method, path: "/", query: "", headers: &map, payload: &body };
        let parsed = coffer_sigv4::parse(&view).unwrap();
        assert_eq!(parsed.service, "sts");
        assert_eq!(parsed.security_token.as_deref(), Some("token-1"));
        let key = coffer_sigv4::derive_signing_key(
            c.config().credentials.secret_access_key.as_bytes(),
            &parsed.scope_date,
            "us-east-1",
            "sts",
        );
        coffer_sigv4::verify(&view, &parsed, &key, now).unwrap();
    }
}
