//! The agent's HTTP interface, as AWS's Secrets Manager Agent and the Parameters and Secrets Lambda
//! extension define it:
//!
//! - `GET /secretsmanager/get?secretId=...[&versionId=...][&versionStage=...][&refreshNow=true]` answers
//!   the GetSecretValue JSON;
//! - `GET /systemsmanager/parameters/get?name=...[&withDecryption=true][&refreshNow=true]` answers the
//!   GetParameter JSON;
//! - `GET /ping` answers `healthy` (no token needed: it is what load balancers and probes call);
//! - `GET /health` answers the cache's state and the change subscription's as JSON (no values).
//!
//! SSRF protection: everything but `/ping` needs the `X-Aws-Parameters-Secrets-Token` header equal to
//! the agent's token (compared in constant time), and any request carrying `X-Forwarded-For` was relayed
//! by a proxy and is refused: a server-side request forgery against an application cannot set the
//! header, and a proxy must not turn the agent into a remote endpoint.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coffer_crypto::SecretBytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use super::cache::{Cache, CacheKey, FetchError, Health, Served};
use super::events::{WatchHealth, WatchStatus};
use super::TOKEN_HEADER;

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub struct AgentState {
    pub cache: Arc<Cache>,
    pub token: SecretBytes,
    /// The change subscription; `None` with `--no-watch`.
    pub watch: Option<Arc<WatchStatus>>,
}

/// `/health`: the cache's state, and the change subscription's under `change_events`.
#[derive(serde::Serialize)]
struct HealthReport {
    #[serde(flatten)]
    cache: Health,
    change_events: WatchHealth,
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, state: Arc<AgentState>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Usually out of file descriptors; back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let svc = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(&state, req).await) }
        });
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // One buffer per response (headers and the small body copied together) and so one `write`
            // instead of a two-part `writev`: the socket call is most of a cache hit's cost.
            let conn =
                hyper::server::conn::http1::Builder::new().writev(false).serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {}
    }
}

/// A response body that shares a cache entry's buffer: no copy of the value is made for a hit, and the
/// buffer is zeroized when the entry and the last response using it are gone.
struct SharedValue(Arc<SecretBytes>);

impl AsRef<[u8]> for SharedValue {
    fn as_ref(&self) -> &[u8] {
        self.0.expose()
    }
}

pub async fn handle<B>(state: &AgentState, req: Request<B>) -> Response<Full<Bytes>> {
    if req.headers().contains_key("x-forwarded-for") {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "X-Forwarded-For header detected: requests through a proxy are refused",
        );
    }
    let path = req.uri().path();
    if path == "/ping" {
        return match *req.method() {
            Method::GET => text(StatusCode::OK, "healthy"),
            _ => method_not_allowed(),
        };
    }
    // The token before anything else, so a forged request learns nothing, not even which paths exist.
    if !token_matches(state, &req) {
        return error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "missing or wrong X-Aws-Parameters-Secrets-Token header",
        );
    }
    let route = match path {
        "/secretsmanager/get" => Route::Secret,
        "/systemsmanager/parameters/get" => Route::Parameter,
        "/health" => Route::Health,
        _ => return error(StatusCode::NOT_FOUND, "NotFound", "unknown path"),
    };
    if req.method() != Method::GET {
        return method_not_allowed();
    }
    let query = Query::parse(req.uri().query().unwrap_or(""));
    match route {
        Route::Health => json(
            StatusCode::OK,
            &HealthReport { cache: state.cache.health(), change_events: WatchStatus::health(state.watch.as_deref()) },
        ),
        Route::Secret => match secret_key(&query) {
            Ok((key, refresh_now)) => answer(state.cache.get(key, refresh_now).await),
            Err(message) => error(StatusCode::BAD_REQUEST, "InvalidParameterException", &message),
        },
        Route::Parameter => match parameter_key(&query) {
            Ok((key, refresh_now)) => answer(state.cache.get(key, refresh_now).await),
            Err(message) => error(StatusCode::BAD_REQUEST, "ValidationException", &message),
        },
    }
}

enum Route {
    Secret,
    Parameter,
    Health,
}

fn token_matches<B>(state: &AgentState, req: &Request<B>) -> bool {
    match req.headers().get(TOKEN_HEADER) {
        Some(given) => bool::from(given.as_bytes().ct_eq(state.token.expose())),
        None => false,
    }
}

/// The query string's parameters, percent-decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Query {
        Query(form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// The one value of `name`; giving it twice is an error (which one would win is a guess).
    fn get(&self, name: &str) -> Result<Option<&str>, String> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(format!("{name} is given more than once"));
        }
        Ok(first)
    }

    fn required(&self, name: &str) -> Result<&str, String> {
        match self.get(name)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(format!("the {name} query parameter is required")),
        }
    }

    fn flag(&self, name: &str) -> Result<bool, String> {
        match self.get(name)? {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(format!("{name} must be true or false")),
        }
    }
}

fn secret_key(query: &Query) -> Result<(CacheKey, bool), String> {
    let id = query.required("secretId")?.to_string();
    let version_id = query.get("versionId")?.filter(|v| !v.is_empty()).map(str::to_string);
    let version_stage = query.get("versionStage")?.filter(|v| !v.is_empty()).map(str::to_string);
    Ok((CacheKey::Secret { id, version_id, version_stage }, query.flag("refreshNow")?))
}

fn parameter_key(query: &Query) -> Result<(CacheKey, bool), String> {
    let name = query.required("name")?.to_string();
    let with_decryption = query.flag("withDecryption")?;
    Ok((CacheKey::Parameter { name, with_decryption }, query.flag("refreshNow")?))
}

fn answer(result: Result<Served, FetchError>) -> Response<Full<Bytes>> {
    match result {
        Ok(served) => {
            let mut resp = Response::new(Full::new(Bytes::from_owner(SharedValue(served.body))));
            let headers = resp.headers_mut();
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert("x-coffer-cache", HeaderValue::from_static(served.freshness.as_str()));
            resp
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY);
            error(status, e.code(), e.message())
        }
    }
}

/// An AWS JSON error body, as the server (and AWS's agent) answer errors.
fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "__type": code, "message": message }))
}

fn method_not_allowed() -> Response<Full<Bytes>> {
    let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "only GET is served");
    resp.headers_mut().insert(http::header::ALLOW, HeaderValue::from_static("GET"));
    resp
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn query_parameters_are_decoded_and_checked() {
        let q = Query::parse("secretId=prod%2Fdb%20pw&versionStage=AWSPREVIOUS&refreshNow=TRUE");
        let (key, refresh) = secret_key(&q).unwrap();
        assert!(refresh);
        assert_eq!(
            key,
            CacheKey::Secret { id: "prod/db pw".into(), version_id: None, version_stage: Some("AWSPREVIOUS".into()) }
        );
        assert!(secret_key(&Query::parse("versionId=x")).unwrap_err().contains("secretId"));
        assert!(secret_key(&Query::parse("secretId=a&secretId=b")).unwrap_err().contains("more than once"));
        assert!(secret_key(&Query::parse("secretId=a&refreshNow=yes")).unwrap_err().contains("true or false"));
        let (key, refresh) = parameter_key(&Query::parse("name=/app/x&withDecryption=true")).unwrap();
        assert_eq!((key, refresh), (CacheKey::Parameter { name: "/app/x".into(), with_decryption: true }, false));
    }
}
