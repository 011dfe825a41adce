//! A small client for Coffer's AWS protocols. It signs every request with the same SigV4 code the
//! server verifies with (`coffer-sigv4`) and speaks the JSON 1.1 wire shapes from `coffer-wire`.

pub mod config;

use coffer_wire::{ErrorBody, JSON_1_1};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use config::{ClientConfig, ResolveOptions};

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
        let body = zeroize::Zeroizing::new(body);
        let headers = vec![
            ("host".to_string(), self.host.clone()),
            ("content-type".to_string(), JSON_1_1.to_string()),
            ("x-amz-target".to_string(), target.to_string()),
        ];
        let auth = match signing_service {
            Some(signing_service) => {
                let signable = coffer_sigv4::SignableRequest {
                    method: "POST",
                    path: "/",
                    query: "",
                    headers: &headers,
                    payload: &body,
                };
                coffer_sigv4::sign(
                    &signable,
                    &self.config.credentials,
                    &self.config.region,
                    signing_service,
                    time::OffsetDateTime::now_utc(),
                )
            }
            None => Vec::new(),
        };
        let mut req = self.http.post(format!("{}/", self.config.endpoint));
        for (k, v) in headers.iter().chain(auth.iter()) {
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
        let bytes = zeroize::Zeroizing::new(bytes.to_vec());
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
