//! A SigV4-signing HTTP/1.1 load generator for AWS JSON 1.1 endpoints (Coffer, moto, the calibration
//! server). One keep-alive connection per worker; every request is signed for real, with the day's
//! signing key derived once and reused, as the SDKs do. Loopback targets only; runs are bounded in time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Workload {
    GetSecretValue,
    PutSecretValue,
    CreateSecret,
}

#[derive(Parser, Debug)]
struct Args {
    /// http://127.0.0.1:PORT (loopback only)
    #[arg(long)]
    endpoint: String,
    /// AWS shared-credentials file with a [default] profile
    #[arg(long)]
    credentials_file: Option<String>,
    #[arg(long, default_value = "AKIAIOSFODNN7EXAMPLE")]
    access_key_id: String,
    #[arg(long, default_value = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")]
    secret_access_key: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, value_enum)]
    workload: Workload,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Measured seconds (at most 300)
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Size of the key space: bench/secret-00000 ...
    #[arg(long, default_value_t = 10_000)]
    secrets: usize,
    /// Create the key space first
    #[arg(long)]
    setup: bool,
    /// Parallel connections used by --setup (moto's server fails under parallel writes)
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,
    /// Print one JSON line instead of text
    #[arg(long)]
    json: bool,
    /// A label for the output (the peer's name)
    #[arg(long, default_value = "coffer")]
    label: String,
}

struct Signer {
    host: String,
    access_key_id: String,
    key: coffer_sigv4::SigningKey,
    day: String,
    secret: String,
    region: String,
}

impl Signer {
    fn request(&mut self, op: &str, body: Vec<u8>) -> anyhow::Result<http::Request<Full<Bytes>>> {
        let now = time::OffsetDateTime::now_utc();
        let day = format!("{:04}{:02}{:02}", now.year(), u8::from(now.month()), now.day());
        if day != self.day {
            self.key = coffer_sigv4::derive_signing_key(self.secret.as_bytes(), &day, &self.region, "secretsmanager");
            self.day = day;
        }
        let headers = vec![
            ("host".to_string(), self.host.clone()),
            ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
            ("x-amz-target".to_string(), format!("secretsmanager.{op}")),
        ];
        let signable =
            coffer_sigv4::SignableRequest { method: "POST", path: "/", query: "", headers: &headers, payload: &body };
        let added = coffer_sigv4::sign_with_key(
            &signable,
            &self.access_key_id,
            None,
            &self.key,
            &self.region,
            "secretsmanager",
            now,
        );
        let mut builder = http::Request::builder().method("POST").uri("/");
        for (k, v) in headers.iter().chain(added.iter()) {
            builder = builder.header(k.as_str(), v.as_str());
        }
        Ok(builder.body(Full::new(Bytes::from(body)))?)
    }
}

fn secret_name(i: usize) -> String {
    format!("bench/secret-{i:05}")
}

fn body_for(workload: Workload, secrets: usize, rng: &mut impl Rng, seq: u64) -> (&'static str, Vec<u8>) {
    match workload {
        Workload::GetSecretValue => {
            let name = secret_name(rng.gen_range(0..secrets));
            ("GetSecretValue", serde_json::to_vec(&serde_json::json!({ "SecretId": name })).unwrap_or_default())
        }
        Workload::PutSecretValue => {
            let name = secret_name(rng.gen_range(0..secrets));
            let body = serde_json::json!({
                "SecretId": name,
                "ClientRequestToken": uuid::Uuid::new_v4().to_string(),
                "SecretString": format!("value-{seq}-{}", rng.gen::<u64>()),
            });
            ("PutSecretValue", serde_json::to_vec(&body).unwrap_or_default())
        }
        Workload::CreateSecret => {
            let body = serde_json::json!({
                "Name": format!("bench/created-{}-{seq}", uuid::Uuid::new_v4().simple()),
                "ClientRequestToken": uuid::Uuid::new_v4().to_string(),
                "SecretString": "created-value",
            });
            ("CreateSecret", serde_json::to_vec(&body).unwrap_or_default())
        }
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// A keep-alive connection that reconnects when the server closes it (moto's server closes after
/// every response; that is its cost, not an error).
struct Conn {
    addr: SocketAddr,
    sender: Option<Sender>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn { addr, sender: None }
    }

    async fn send(&mut self, req: http::Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => connect(self.addr).await?,
        };
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        self.sender = Some(sender);
        Ok((status, body))
    }
}

fn read_credentials(path: &str) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim().to_string()))
            .with_context(|| format!("{key} missing in {path}"))
    };
    Ok((get("aws_access_key_id")?, get("aws_secret_access_key")?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    let url: http::Uri = args.endpoint.parse().context("endpoint URL")?;
    let host = url.authority().context("endpoint needs host:port")?.to_string();
    let addr: SocketAddr = tokio::net::lookup_host(&host).await?.next().context("resolving endpoint")?;
    if !addr.ip().is_loopback() {
        bail!("refusing to load {addr}: benchmarks only target loopback addresses");
    }
    if args.duration > 300 {
        bail!("--duration is capped at 300 seconds");
    }
    if let Some(path) = &args.credentials_file {
        let (id, secret) = read_credentials(path)?;
        args.access_key_id = id;
        args.secret_access_key = secret;
    }
    let new_signer = || Signer {
        host: host.clone(),
        access_key_id: args.access_key_id.clone(),
        key: coffer_sigv4::derive_signing_key(b"", "", "", ""),
        day: String::new(),
        secret: args.secret_access_key.clone(),
        region: args.region.clone(),
    };

    if args.setup {
        let started = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..args.setup_concurrency.max(1) {
            let next = next.clone();
            let mut signer = new_signer();
            let total = args.secrets as u64;
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::new(addr);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return anyhow::Ok(());
                    }
                    let body = serde_json::json!({
                        "Name": secret_name(i as usize),
                        "ClientRequestToken": uuid::Uuid::new_v4().to_string(),
                        "SecretString": format!("{{\"username\":\"app\",\"password\":\"bench-{i}\"}}"),
                    });
                    let (status, resp) = conn.send(signer.request("CreateSecret", serde_json::to_vec(&body)?)?).await?;
                    if status != 200 && !String::from_utf8_lossy(&resp).contains("ResourceExistsException") {
                        bail!("setup failed with {status}: {}", String::from_utf8_lossy(&resp));
                    }
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        eprintln!("setup: {} secrets in {:.1}s", args.secrets, started.elapsed().as_secs_f64());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (stop, measuring, errors, seq) = (stop.clone(), measuring.clone(), errors.clone(), seq.clone());
        let mut signer = new_signer();
        let (workload, secrets) = (args.workload, args.secrets);
        tasks.push(tokio::spawn(async move {
            let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut conn = Conn::new(addr);
            let mut rng = rand::rngs::SmallRng::from_entropy();
            let mut shown = 0;
            while !stop.load(Ordering::Relaxed) {
                let (op, body) = body_for(workload, secrets, &mut rng, seq.fetch_add(1, Ordering::Relaxed));
                let req = signer.request(op, body)?;
                let t0 = Instant::now();
                let (status, resp) = match conn.send(req).await {
                    Ok(r) => r,
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                let micros = t0.elapsed().as_micros() as u64;
                if measuring.load(Ordering::Relaxed) {
                    if status == 200 {
                        hist.record(micros.max(1))?;
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if shown < 3 {
                            shown += 1;
                            eprintln!("error {status}: {}", String::from_utf8_lossy(&resp));
                        }
                    }
                }
            }
            anyhow::Ok(hist)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut total = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        total.add(t.await??)?;
    }
    let ok = total.len();
    let rps = ok as f64 / elapsed;
    let (p50, p99, p999) =
        (total.value_at_quantile(0.5), total.value_at_quantile(0.99), total.value_at_quantile(0.999));
    let errors = errors.load(Ordering::Relaxed);
    let workload = format!("{:?}", args.workload);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"peer": args.label, "workload": workload, "concurrency": args.concurrency,
                "requests": ok, "errors": errors, "seconds": elapsed, "rps": rps,
                "p50_us": p50, "p99_us": p99, "p999_us": p999})
        );
    } else {
        println!(
            "{:<14} {:<16} c={:<3} {:>9.0} req/s  p50 {:>6} us  p99 {:>6} us  p99.9 {:>6} us  errors {}",
            args.label, workload, args.concurrency, rps, p50, p99, p999, errors
        );
    }
    Ok(())
}
