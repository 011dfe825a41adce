//! `fixed-server`: the calibration peer. For every request it does what any Secrets Manager server must
//! do at the least — read the whole body, parse the SigV4 signature and verify it (with the same
//! `coffer-sigv4` code Coffer uses, the day's signing key derived once and cached, as Coffer does)
//! against one fixed key pair given on the command line — and answers a fixed GetSecretValue-shaped
//! body. No storage, no decryption, no routing. What the load generator reaches against it bounds what
//! any real server can reach on the same machine with the same load generator.
//!
//! Binds loopback only and exits by itself after `--exit-after` seconds.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use coffer_bench::{require_loopback, seconds_up_to, KeyPair};
use coffer_sigv4::{ParsedSignature, SigningKey};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// Answers every correctly signed request with a fixed GetSecretValue body.
#[derive(Parser)]
#[command(name = "fixed-server", version)]
struct Args {
    /// Loopback address to listen on (port 0: any free port, printed on stdout)
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The one access key id the server accepts
    #[arg(long, default_value = coffer_bench::EXAMPLE_ACCESS_KEY_ID)]
    access_key_id: String,
    /// Its secret access key
    #[arg(long, default_value = coffer_bench::EXAMPLE_SECRET_ACCESS_KEY, hide_default_value = true)]
    secret_access_key: String,
    /// Read the key pair from an AWS shared-credentials file ([default] profile) instead
    #[arg(long)]
    credentials_file: Option<PathBuf>,
    /// Tokio worker threads [default: the number of cores]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    threads: Option<u64>,
    /// Exit after this many seconds (a forgotten server stops by itself)
    #[arg(long, default_value = "3600", value_parser = seconds_up_to(86_400.0))]
    exit_after: f64,
}

const FIXED_BODY: &[u8] = br#"{"ARN":"arn:aws:secretsmanager:us-east-1:000000000000:secret:bench/secret-00000-AbCdEf","Name":"bench/secret-00000","VersionId":"00000000-0000-4000-8000-000000000000","SecretString":"{\"username\":\"app\",\"password\":\"bench-0\"}","VersionStages":["AWSCURRENT"],"CreatedDate":1.7E9}"#;

struct State {
    keys: KeyPair,
    /// Signing keys by (date, region, service), derived on first use.
    signing_keys: RwLock<HashMap<(String, String, String), SigningKey>>,
}

impl State {
    fn signing_key(&self, p: &ParsedSignature) -> SigningKey {
        let id = (p.scope_date.clone(), p.region.clone(), p.service.clone());
        if let Some(k) = self.signing_keys.read().ok().and_then(|m| m.get(&id).cloned()) {
            return k;
        }
        let key = coffer_sigv4::derive_signing_key(
            self.keys.secret_access_key.as_bytes(),
            &p.scope_date,
            &p.region,
            &p.service,
        );
        if let Ok(mut m) = self.signing_keys.write() {
            if m.len() > 64 {
                m.clear();
            }
            m.insert(id, key.clone());
        }
        key
    }

    fn check(&self, view: &coffer_sigv4::RequestView<'_>) -> Result<(), (&'static str, String)> {
        let parsed = coffer_sigv4::parse(view).map_err(|e| (e.aws_code(), e.message()))?;
        if parsed.access_key_id != self.keys.access_key_id {
            return Err((
                "UnrecognizedClientException",
                "The security token included in the request is invalid.".to_string(),
            ));
        }
        let key = self.signing_key(&parsed);
        coffer_sigv4::verify(view, &parsed, &key, time::OffsetDateTime::now_utc())
            .map_err(|e| (e.aws_code(), e.message()))
    }
}

async fn handle(state: Arc<State>, req: http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(400, Bytes::from_static(br#"{"__type":"SerializationException","message":"body"}"#)),
    };
    let view = coffer_sigv4::RequestView {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        payload: &body,
    };
    match state.check(&view) {
        Ok(()) => reply(200, Bytes::from_static(FIXED_BODY)),
        Err((code, message)) => {
            let body = serde_json::json!({ "__type": code, "message": message }).to_string();
            reply(400, Bytes::from(body))
        }
    }
}

fn reply(status: u16, body: Bytes) -> http::Response<Full<Bytes>> {
    let mut r = http::Response::new(Full::new(body));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    let h = r.headers_mut();
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(coffer_wire::JSON_1_1));
    h.insert("x-amzn-requestid", http::HeaderValue::from_static("00000000-0000-4000-8000-000000000000"));
    r
}

fn main() -> std::process::ExitCode {
    match start(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fixed-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start(args: Args) -> anyhow::Result<()> {
    require_loopback(&args.listen)?;
    let keys = match &args.credentials_file {
        Some(path) => coffer_bench::read_credentials_file(path, "default")?,
        None => {
            KeyPair { access_key_id: args.access_key_id.clone(), secret_access_key: args.secret_access_key.clone() }
        }
    };
    let threads = match args.threads {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    let state = Arc::new(State { keys, signing_keys: RwLock::new(HashMap::new()) });
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        println!("fixed-server listening on http://{}", listener.local_addr()?);
        let serve = async {
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
            #[allow(unreachable_code)]
            anyhow::Ok(())
        };
        match tokio::time::timeout(Duration::from_secs_f64(args.exit_after), serve).await {
            Ok(r) => r,
            Err(_) => {
                eprintln!("fixed-server: exiting after {} s", args.exit_after);
                Ok(())
            }
        }
    })
}
