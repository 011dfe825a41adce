//! The calibration peer: a server that only verifies each request's SigV4 signature (with the same
//! `coffer-sigv4` code Coffer uses) against one fixed key and answers a fixed GetSecretValue body. What it
//! reaches bounds what any real server can reach on the same machine with the same load generator.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[arg(long, default_value = "AKIAIOSFODNN7EXAMPLE")]
    access_key_id: String,
    #[arg(long, default_value = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")]
    secret_access_key: String,
}

const FIXED: &[u8] = br#"{"ARN":"arn:aws:secretsmanager:us-east-1:000000000000:secret:bench/secret-00000-AbCdEf","Name":"bench/secret-00000","VersionId":"00000000-0000-4000-8000-000000000000","SecretString":"{\"username\":\"app\",\"password\":\"bench-0\"}","VersionStages":["AWSCURRENT"],"CreatedDate":1700000000.0}"#;

async fn handle(args: Arc<Args>, req: http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(400, b"{}"),
    };
    let view = coffer_sigv4::RequestView {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        payload: &body,
    };
    let ok = coffer_sigv4::parse(&view).ok().filter(|p| p.access_key_id == args.access_key_id).is_some_and(|p| {
        let key =
            coffer_sigv4::derive_signing_key(args.secret_access_key.as_bytes(), &p.scope_date, &p.region, &p.service);
        coffer_sigv4::verify(&view, &p, &key, time::OffsetDateTime::now_utc()).is_ok()
    });
    if ok {
        reply(200, FIXED)
    } else {
        reply(400, br#"{"__type":"InvalidSignatureException","message":"bad signature"}"#)
    }
}

fn reply(status: u16, body: &'static [u8]) -> http::Response<Full<Bytes>> {
    let mut r = http::Response::new(Full::new(Bytes::from_static(body)));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    r.headers_mut().insert("content-type", http::HeaderValue::from_static("application/x-amz-json-1.1"));
    r
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("fixed-server listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let args = args.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let args = args.clone();
                async move { Ok::<_, Infallible>(handle(args, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
