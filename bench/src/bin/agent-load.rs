//! `agent-load`: a plain-GET HTTP/1.1 load generator for `coffer agent` (AWS Secrets Manager Agent's
//! interface): every request is `GET <path>` with the `X-Aws-Parameters-Secrets-Token` header, nothing is
//! signed. Used by `bench/agent.sh` for cache-hit throughput and latency.
//!
//! - One keep-alive connection per worker, one request in flight per worker.
//! - Every latency (send to last body byte) goes into an HDR histogram; throughput counts 200s completed
//!   inside the measured window (after the warm-up). Anything else is an error, counted.
//! - Loopback targets only; warm-up, measurement and each request are bounded in time.
//!
//! With `--propagation SECRET_ID --expect VALUE` it instead polls `GET /secretsmanager/get?secretId=...`
//! every `--poll-ms` until the answer's SecretString is VALUE, and prints how long that took (the time
//! from a PutSecretValue, made just before, to the agent serving the new value).
//!
//! With `--put-propagation SECRET_ID` it makes `--puts` PutSecretValue calls itself (to the Coffer server
//! the environment names, as the `coffer` CLI finds it: `AWS_ENDPOINT_URL`, the shared credentials file)
//! and times each from the put's answer to the agent serving the new value, polling with plain GETs
//! (never `refreshNow`) every `--poll-ms`: the latency of invalidation by change events. It prints the
//! median, p90 and maximum.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use coffer_bench::{resolve_loopback, seconds_up_to, SERVICE};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

const HEADER: &str = "x-aws-parameters-secrets-token";
/// Histogram range: 1 µs .. 60 s, three significant digits.
const HIST_MAX_MICROS: u64 = 60_000_000;

#[derive(Parser, Debug)]
#[command(about = "Plain-GET load generator for coffer agent (loopback only)")]
struct Args {
    /// The agent, e.g. http://127.0.0.1:2773
    #[arg(long)]
    endpoint: String,
    /// The SSRF token (X-Aws-Parameters-Secrets-Token)
    #[arg(long, env = "AGENT_TOKEN", hide_env_values = true)]
    token: String,
    /// Path and query to GET
    #[arg(long, default_value = "/secretsmanager/get?secretId=bench/agent-secret")]
    path: String,
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,
    /// Measured seconds
    #[arg(long, default_value = "5", value_parser = seconds_up_to(600.0))]
    duration: f64,
    /// Unmeasured seconds before
    #[arg(long, default_value = "1", value_parser = seconds_up_to(60.0))]
    warmup: f64,
    /// Poll for a new value instead of a load run: the secret id to poll
    #[arg(long, requires = "expect")]
    propagation: Option<String>,
    /// The SecretString to wait for (with --propagation)
    #[arg(long)]
    expect: Option<String>,
    /// Add refreshNow=true to the polls
    #[arg(long)]
    refresh_now: bool,
    /// Poll interval in milliseconds (with --propagation)
    #[arg(long, default_value_t = 50)]
    poll_ms: u64,
    /// Give up polling after this long
    #[arg(long, default_value = "900", value_parser = seconds_up_to(3600.0))]
    poll_limit: f64,
    /// Put new values into this secret and time how long the agent takes to serve each (see above)
    #[arg(long, conflicts_with = "propagation")]
    put_propagation: Option<String>,
    /// How many puts --put-propagation makes
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    puts: u64,
    /// A label for the output line
    #[arg(long, default_value = "agent")]
    label: String,
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

struct Conn {
    addr: SocketAddr,
    sender: Option<Sender>,
}

impl Conn {
    async fn get(&mut self, host: &str, path: &str, token: &str) -> anyhow::Result<(u16, Bytes)> {
        let mut reusable = None;
        if let Some(mut s) = self.sender.take() {
            if !s.is_closed() && s.ready().await.is_ok() {
                reusable = Some(s);
            }
        }
        let mut sender = match reusable {
            Some(s) => s,
            None => {
                let stream = tokio::net::TcpStream::connect(self.addr).await.context("connect")?;
                stream.set_nodelay(true)?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                sender
            }
        };
        let req = http::Request::get(path).header(http::header::HOST, host).header(HEADER, token).body(Empty::new())?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        self.sender = Some(sender);
        Ok((status, body))
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(anyhow::Error::from).and_then(|rt| {
            rt.block_on(async {
                match (&args.propagation, &args.put_propagation) {
                    (Some(id), _) => propagation(&args, id).await,
                    (None, Some(id)) => put_propagation(&args, id).await,
                    (None, None) => load(&args).await,
                }
            })
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-load: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn target(endpoint: &str) -> anyhow::Result<(SocketAddr, String)> {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/').to_string();
    Ok((resolve_loopback(&host).await?, host))
}

async fn load(args: &Args) -> anyhow::Result<()> {
    let (addr, host) = target(&args.endpoint).await?;
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let stop_at = measure_from + Duration::from_secs_f64(args.duration);
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (host, path, token, errors) = (host.clone(), args.path.clone(), args.token.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, HIST_MAX_MICROS, 3)?;
            let mut conn = Conn { addr, sender: None };
            loop {
                let sent = Instant::now();
                if sent >= stop_at {
                    break;
                }
                let outcome = tokio::time::timeout(Duration::from_secs(10), conn.get(&host, &path, &token)).await;
                let done = Instant::now();
                match outcome {
                    Ok(Ok((200, _))) => {
                        if sent >= measure_from && done <= stop_at {
                            hist.saturating_record((done - sent).as_micros().max(1) as u64);
                        }
                    }
                    _ => {
                        conn.sender = None;
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            anyhow::Ok(hist)
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, HIST_MAX_MICROS, 3)?;
    for task in tasks {
        all.add(task.await??)?;
    }
    let seconds = args.duration;
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{label}: concurrency {c}, {n} ok in {seconds:.1} s = {rps:.0} req/s; latency p50 {p50:.3} ms, p99 {p99:.3} ms, p99.9 {p999:.3} ms, max {max:.3} ms; errors {errors}",
        label = args.label,
        c = args.concurrency,
        n = all.len(),
        rps = all.len() as f64 / seconds,
        p50 = ms(0.5),
        p99 = ms(0.99),
        p999 = ms(0.999),
        max = all.max() as f64 / 1000.0,
        errors = errors.load(Ordering::Relaxed),
    );
    Ok(())
}

async fn propagation(args: &Args, id: &str) -> anyhow::Result<()> {
    let Some(expect) = args.expect.as_deref() else { bail!("--propagation needs --expect") };
    let (addr, host) = target(&args.endpoint).await?;
    let mut path = format!("/secretsmanager/get?secretId={}", form_urlencode(id));
    if args.refresh_now {
        path.push_str("&refreshNow=true");
    }
    let mut conn = Conn { addr, sender: None };
    let start = Instant::now();
    let mut polls = 0u64;
    loop {
        polls += 1;
        let (status, body) = conn.get(&host, &path, &args.token).await?;
        if status == 200 {
            let doc: serde_json::Value = serde_json::from_slice(&body).context("the agent's answer is not JSON")?;
            if doc.get("SecretString").and_then(|v| v.as_str()) == Some(expect) {
                println!(
                    "{label}: new value served after {s:.3} s ({polls} polls{refresh})",
                    label = args.label,
                    s = start.elapsed().as_secs_f64(),
                    refresh = if args.refresh_now { ", refreshNow=true" } else { "" },
                );
                return Ok(());
            }
        } else {
            bail!("the agent answered {status}");
        }
        if start.elapsed().as_secs_f64() > args.poll_limit {
            bail!("no new value within {:.0} s", args.poll_limit);
        }
        tokio::time::sleep(Duration::from_millis(args.poll_ms)).await;
    }
}

/// The SecretString the agent answers for `path`.
async fn served_value(conn: &mut Conn, host: &str, path: &str, token: &str) -> anyhow::Result<String> {
    let (status, body) = conn.get(host, path, token).await?;
    if status != 200 {
        bail!("the agent answered {status}");
    }
    let doc: serde_json::Value = serde_json::from_slice(&body).context("the agent's answer is not JSON")?;
    Ok(doc.get("SecretString").and_then(|v| v.as_str()).unwrap_or_default().to_string())
}

async fn put_propagation(args: &Args, id: &str) -> anyhow::Result<()> {
    use coffer_client::{Client, ClientConfig, ResolveOptions};
    use coffer_crypto::SecretBytes;
    use coffer_wire::secretsmanager::{PutSecretValueRequest, PutSecretValueResponse};
    use coffer_wire::Sensitive;

    let server = Client::new(ClientConfig::resolve(&ResolveOptions::default(), "SECRETS_MANAGER")?)?;
    let server_host = server.config().endpoint.trim_start_matches("http://").trim_end_matches('/').to_string();
    resolve_loopback(&server_host).await?;
    let (addr, host) = target(&args.endpoint).await?;
    let path = format!("/secretsmanager/get?secretId={}", form_urlencode(id));
    let mut conn = Conn { addr, sender: None };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut latencies = Vec::new();
    // Served once first, so every put replaces a cached (hit) value: the case change events are for.
    served_value(&mut conn, &host, &path, &args.token).await?;
    for i in 0..args.puts {
        let value = format!("propagation-{run}-{i}");
        let req = PutSecretValueRequest {
            secret_id: id.to_string(),
            client_request_token: Some(uuid::Uuid::new_v4().to_string()),
            secret_string: Some(Sensitive(SecretBytes::from(value.clone()))),
            ..Default::default()
        };
        let _: PutSecretValueResponse = server.call(SERVICE, "secretsmanager.PutSecretValue", &req).await?;
        let put_answered = Instant::now();
        loop {
            if served_value(&mut conn, &host, &path, &args.token).await? == value {
                latencies.push(put_answered.elapsed());
                break;
            }
            if put_answered.elapsed().as_secs_f64() > args.poll_limit {
                bail!("put {i}: no new value within {:.0} s", args.poll_limit);
            }
            tokio::time::sleep(Duration::from_millis(args.poll_ms)).await;
        }
        // Let the refreshed entry settle as a hit before the next put.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label}: {n} puts, PutSecretValue answered -> agent serves the new value: median {p50:.1} ms, p90 {p90:.1} ms, max {max:.1} ms (plain GETs every {poll} ms, no refreshNow)",
        label = args.label,
        n = latencies.len(),
        p50 = ms(at(0.5)),
        p90 = ms(at(0.9)),
        max = ms(at(1.0)),
        poll = args.poll_ms,
    );
    Ok(())
}

/// Percent-encodes a query value (only unreserved characters kept).
fn form_urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
