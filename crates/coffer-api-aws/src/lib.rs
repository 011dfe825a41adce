//! Coffer's AWS protocol front-end.
//!
//! One HTTP entry point, [`handle`], serves every AWS JSON 1.1 target Coffer speaks plus the health
//! probes. A request flows: read the body (bounded) → find the target's service → authenticate with
//! SigV4 ([`auth`]) → parse the typed wire request → call the service layer → serialize. Errors become
//! AWS error bodies in exactly one place ([`error`]).
//!
//! API Boundary: this crate depends on the service, never the reverse; it holds no domain rules.

pub mod audit;
pub mod auth;
pub mod cloudtrail;
pub mod error;
pub mod events;
pub mod iam;
mod json;
pub mod kms;
pub mod query;
pub mod rotation;
pub mod scan;
pub mod secretsmanager;
pub mod ssm;
pub mod status;
pub mod sts;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use coffer_service::{RequestContext, Service};
use coffer_wire::{ErrorBody, JSON_1_1};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::auth::SigningKeyCache;
use crate::error::ApiError;

/// Requests larger than this are refused before they are read whole. A 64 KiB secret value,
/// base64-encoded and JSON-escaped, fits comfortably.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Shared state of the front-end.
pub struct ApiState {
    pub service: Arc<Service>,
    pub signing_keys: SigningKeyCache,
    pub max_body_bytes: usize,
    /// Whether requests arrive over TLS (`aws:SecureTransport` in policies).
    pub secure_transport: bool,
    request_ids: RequestIds,
}

impl ApiState {
    pub fn new(service: Arc<Service>) -> Self {
        ApiState {
            service,
            signing_keys: SigningKeyCache::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            secure_transport: false,
            request_ids: RequestIds::new(),
        }
    }
}

/// Request ids shaped like the UUIDs AWS returns, unique per process: a random base chosen at start
/// plus a counter. Drawing a fresh random UUID per request cost a system call on the hot path.
struct RequestIds {
    base: u128,
    next: std::sync::atomic::AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        RequestIds { base: uuid::Uuid::new_v4().as_u128(), next: std::sync::atomic::AtomicU64::new(0) }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u128;
        // The low 64 bits count; the version and variant bits keep the shape of a v4 UUID.
        let id = (self.base & !0xFFFF_FFFF_FFFF_FFFF) | n;
        uuid::Builder::from_random_bytes(id.to_be_bytes()).into_uuid().to_string()
    }
}

/// Which JSON 1.1 service a target belongs to.
enum Target {
    SecretsManager(secretsmanager::Operation),
    Ssm(ssm::Operation),
    Kms(kms::Operation),
    CloudTrail(cloudtrail::Operation),
    /// Coffer's `CofferScan.<Op>` (signed as Secrets Manager).
    Scan(scan::Operation),
    /// Coffer's `CofferRotation.<Op>` (signed as Secrets Manager).
    Rotation(rotation::Operation),
    /// Coffer's `CofferStatus.<Op>` (signed as Secrets Manager).
    Status(status::Operation),
    /// Coffer's `CofferEvents.<Op>` (signed as Secrets Manager).
    Events(events::Operation),
}

/// The audit log's event source of a signing service.
fn event_source(signing_service: &str) -> &'static str {
    match signing_service {
        "secretsmanager" => coffer_service::secrets::SECRETS_EVENT_SOURCE,
        "ssm" => coffer_service::parameters::ops::PARAMETERS_EVENT_SOURCE,
        "kms" => coffer_service::kms::KMS_EVENT_SOURCE,
        "cloudtrail" => cloudtrail::EVENT_SOURCE,
        "iam" => "iam.amazonaws.com",
        "sts" => "sts.amazonaws.com",
        _ => "coffer.internal",
    }
}

/// An event name from a request: the operation as the client named it, bounded (it is the caller's text).
pub(crate) fn event_name(operation: &str) -> String {
    operation.chars().filter(|c| c.is_ascii_alphanumeric()).take(64).collect()
}

impl Target {
    /// Splits `X-Amz-Target` into (service prefix, operation). `Ok(None)` for a known service's unknown
    /// operation; `Err` for an unknown prefix.
    fn parse(header_value: &str) -> Result<(Option<Target>, &'static str), ApiError> {
        // CloudTrail's prefix has dots of its own.
        let cloudtrail_op =
            header_value.strip_prefix(coffer_wire::cloudtrail::TARGET_PREFIX).and_then(|t| t.strip_prefix('.'));
        if let Some(op) = cloudtrail_op {
            return Ok((cloudtrail::Operation::parse(op).map(Target::CloudTrail), coffer_wire::cloudtrail::SERVICE));
        }
        let (prefix, op) = header_value.split_once('.').ok_or_else(ApiError::unknown_operation)?;
        match prefix {
            "secretsmanager" => Ok((
                secretsmanager::Operation::parse(op).map(Target::SecretsManager),
                coffer_wire::secretsmanager::SERVICE,
            )),
            "AmazonSSM" => Ok((ssm::Operation::parse(op).map(Target::Ssm), coffer_wire::ssm::SERVICE)),
            "TrentService" => Ok((kms::Operation::parse(op).map(Target::Kms), coffer_wire::kms::SERVICE)),
            "CofferKms" => Ok((kms::Operation::parse_coffer(op).map(Target::Kms), coffer_wire::kms::SERVICE)),
            "CofferAudit" => {
                Ok((cloudtrail::Operation::parse_coffer(op).map(Target::CloudTrail), coffer_wire::cloudtrail::SERVICE))
            }
            "CofferScan" => Ok((scan::Operation::parse(op).map(Target::Scan), coffer_wire::scan::SERVICE)),
            "CofferRotation" => {
                Ok((rotation::Operation::parse(op).map(Target::Rotation), coffer_wire::rotation::SERVICE))
            }
            "CofferStatus" => Ok((status::Operation::parse(op).map(Target::Status), coffer_wire::status::SERVICE)),
            "CofferEvents" => Ok((events::Operation::parse(op).map(Target::Events), coffer_wire::events::SERVICE)),
            _ => Err(ApiError::unknown_operation()),
        }
    }
}

/// A JSON 1.1 response with AWS's request-id header.
pub fn response(status: u16, body: Vec<u8>, request_id: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
}

/// An AWS JSON 1.1 error response (`__type`, `message`, `x-amzn-errortype`).
pub fn error_response(e: &ApiError, request_id: &str) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&ErrorBody { error_type: e.code.to_string(), message: e.message.clone() })
        .unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = response(e.status, body, request_id);
    if let Ok(v) = HeaderValue::from_str(e.code) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Bodies beyond the limit are still read (and dropped) up to this size, so that a client that sent
/// too much gets its 413 answer instead of a reset connection; beyond it the connection is abandoned.
const DRAIN_LIMIT_BYTES: usize = 16 * 1024 * 1024;

/// Reads the request body, keeping at most `max` bytes.
pub async fn read_body<B>(mut body: B, max: usize) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut kept = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|_| ApiError::bad_request("SerializationException", "The request body could not be read."))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= max {
                kept.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT_BYTES {
                break;
            }
        }
    }
    if total > max {
        return Err(ApiError::new(
            413,
            "RequestEntityTooLargeException",
            format!("The request body exceeds the maximum size of {max} bytes."),
        ));
    }
    Ok(kept.freeze())
}

/// What SigV4 verification reads of a request.
fn request_view<'a>(parts: &'a http::request::Parts, body: &'a [u8]) -> coffer_sigv4::RequestView<'a> {
    coffer_sigv4::RequestView {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        payload: body,
    }
}

/// The service's view of an authenticated API request.
fn request_context(
    principal: coffer_service::Principal,
    region: String,
    request_id: &str,
    remote: SocketAddr,
    parts: &http::request::Parts,
    secure_transport: bool,
    audit: coffer_service::audit::AuditNotes,
) -> RequestContext {
    let user_agent = user_agent(parts).map(str::to_string);
    RequestContext {
        principal,
        region,
        request_id: request_id.to_string(),
        source_ip: Some(remote.ip().to_string()),
        source: audit::actor_source(user_agent.as_deref()),
        user_agent,
        secure_transport,
        audit,
    }
}

fn user_agent(parts: &http::request::Parts) -> Option<&str> {
    parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok())
}

/// Serves one HTTP request.
pub async fn handle<B>(state: &ApiState, remote: SocketAddr, req: Request<B>) -> Response<Full<Bytes>>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => return plain(StatusCode::OK, "{\"status\":\"ok\"}"),
        (&Method::GET, "/readyz") => {
            if let Some(reason) = state.service.audit_failure() {
                let body = serde_json::json!({ "status": "unavailable", "reason": reason }).to_string();
                let mut resp = Response::new(Full::new(Bytes::from(body)));
                *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                return resp;
            }
            return match state.service.check_ready().await {
                Ok(()) => plain(StatusCode::OK, "{\"status\":\"ready\"}"),
                Err(_) => plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{\"status\":\"unavailable\",\"reason\":\"storage unreachable\"}",
                ),
            };
        }
        _ => {}
    }
    let request_id = state.request_ids.next();
    if query::is_query_request(&req) {
        return query::handle(state, remote, req, &request_id).await;
    }
    match handle_aws(state, remote, req, &request_id).await {
        Ok(body) => response(200, body, &request_id),
        Err(e) => {
            if e.status >= 500 {
                tracing::warn!(%request_id, code = e.code, "request failed");
            } else {
                tracing::debug!(%request_id, code = e.code, "request rejected");
            }
            error_response(&e, &request_id)
        }
    }
}

async fn handle_aws<B>(
    state: &ApiState,
    remote: SocketAddr,
    req: Request<B>,
    request_id: &str,
) -> Result<Vec<u8>, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let (parts, body) = req.into_parts();
    if parts.method != Method::POST {
        return Err(ApiError::new(405, "UnknownOperationException", "Only POST requests are accepted."));
    }
    let target =
        parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).ok_or_else(ApiError::unknown_operation)?;
    let (operation, signing_service) = Target::parse(target)?;

    let body = read_body(body, state.max_body_bytes).await?;

    let view = request_view(&parts, &body);
    let source = event_source(signing_service);
    let name = event_name(target.rsplit_once('.').map_or("", |(_, op)| op));
    let (principal, region) =
        match auth::authenticate(&state.service, &state.signing_keys, &view, signing_service).await {
            Ok(caller) => caller,
            Err(e) => {
                let ua = user_agent(&parts);
                audit::record_unauthenticated(&state.service, &view, source, &name, request_id, remote, ua, &e).await;
                return Err(e);
            }
        };
    let notes = coffer_service::audit::AuditNotes::new(source, name.clone(), audit::is_read_only(&name));
    notes.set_request_parameters(audit::json_request_parameters(&body));
    let ctx = request_context(principal, region, request_id, remote, &parts, state.secure_transport, notes);
    let answer = match operation {
        None => Err(ApiError::unknown_operation()),
        Some(Target::SecretsManager(op)) => secretsmanager::dispatch(&state.service, &ctx, op, &body).await,
        Some(Target::Ssm(op)) => ssm::dispatch(&state.service, &ctx, op, &body).await,
        Some(Target::Kms(op)) => kms::dispatch(&state.service, &ctx, op, &body).await,
        Some(Target::CloudTrail(op)) => cloudtrail::dispatch(&state.service, &ctx, op, &body).await,
        Some(Target::Scan(op)) => scan::dispatch(&state.service, &ctx, op, &body).await,
        Some(Target::Rotation(op)) => rotation::dispatch(&state.service, &ctx, op, &body).await,
        Some(Target::Status(op)) => status::dispatch(&state.service, &ctx, op, &body).await,
        Some(Target::Events(op)) => events::dispatch(&state.service, &ctx, op, &body).await,
    };
    // Fail closed: an answer whose event cannot be taken is not given.
    state.service.record_request(&ctx, &audit::outcome(&answer)).await.map_err(error::audit_error)?;
    answer
}
