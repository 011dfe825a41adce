//! `loadgen`: a SigV4-signing HTTP/1.1 load generator for the Secrets Manager JSON 1.1 protocol (Coffer,
//! moto's server, the `fixed-server` calibration peer).
//!
//! - One keep-alive connection per worker (it reconnects only when the server closes it, and counts that).
//! - Every request is signed for real: a fresh `x-amz-date` from the clock, the day's signing key derived
//!   once with `derive_signing_key` and reused until the UTC date changes, as the AWS SDKs do.
//! - Every latency (send to last body byte) goes into an HDR histogram; throughput counts 200s that
//!   completed inside the measured window. Non-200s, transport errors, timeouts and 200s whose body is not
//!   the operation's response shape are errors; the first few bodies are printed to stderr.
//! - Loopback targets only; setup, warm-up, measurement and each request are bounded in time, so a run
//!   always stops by itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use coffer_bench::{resolve_loopback, seconds_up_to, secret_name, KeyPair, SERVICE};
use coffer_crypto::SecretBytes;
use coffer_sigv4::SigningKey;
use coffer_wire::secretsmanager::{
    CreateSecretRequest, GetSecretValueRequest, GetSecretValueResponse, PutSecretValueRequest, PutSecretValueResponse,
    SecretIdentityResponse,
};
use coffer_wire::{ErrorBody, Sensitive, JSON_1_1};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const MAX_CONCURRENCY: usize = 1024;
const MAX_SECRETS: usize = 1_000_000;
/// Histogram range: 1 µs .. 60 s, three significant digits.
const HIST_MAX_MICROS: u64 = 60_000_000;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Workload {
    /// GetSecretValue of a uniformly random secret of the key space
    GetSecretValue,
    /// PutSecretValue of a fresh value (new ClientRequestToken) into a random secret of the key space
    PutSecretValue,
    /// CreateSecret of a new, unique name (outside the key space)
    CreateSecret,
    /// GetParameter (WithDecryption) of a uniformly random SecureString parameter of the key space
    GetParameter,
    /// GetParametersByPath (Recursive, WithDecryption, MaxResults 10): the first page of a random group of
    /// the key space's hierarchy (/bench/params/gNNN/pNNNNN, 100 parameters a group)
    GetParametersByPath,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::GetSecretValue => "get-secret-value",
            Workload::PutSecretValue => "put-secret-value",
            Workload::CreateSecret => "create-secret",
            Workload::GetParameter => "get-parameter",
            Workload::GetParametersByPath => "get-parameters-by-path",
        }
    }

    fn is_parameter_store(self) -> bool {
        matches!(self, Workload::GetParameter | Workload::GetParametersByPath)
    }

    /// (SigV4 signing name, X-Amz-Target prefix).
    fn protocol(self) -> (&'static str, &'static str) {
        if self.is_parameter_store() {
            (coffer_wire::ssm::SERVICE, "AmazonSSM")
        } else {
            (SERVICE, "secretsmanager")
        }
    }
}

/// Drives one Secrets Manager endpoint on this machine with SigV4-signed requests and reports throughput
/// and latency percentiles.
#[derive(Parser, Debug)]
#[command(name = "loadgen", version)]
struct Args {
    /// The server's URL, http://HOST:PORT; HOST must be a loopback address (or a name resolving only to one).
    /// Several URLs, comma-separated (nodes over one database): the workers take them in turn
    #[arg(long)]
    endpoint: String,
    /// An AWS shared-credentials file (e.g. Coffer's <data-dir>/root-credentials); overrides the key flags
    #[arg(long)]
    credentials_file: Option<PathBuf>,
    /// The profile to read from --credentials-file
    #[arg(long, default_value = "default")]
    profile: String,
    #[arg(long, default_value = coffer_bench::EXAMPLE_ACCESS_KEY_ID)]
    access_key_id: String,
    #[arg(long, default_value = coffer_bench::EXAMPLE_SECRET_ACCESS_KEY, hide_default_value = true)]
    secret_access_key: String,
    /// The region of the credential scope
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, value_enum, default_value = "get-secret-value")]
    workload: Workload,
    /// Concurrent workers, each with its own keep-alive connection and one request in flight
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY as u64))]
    concurrency: u64,
    /// Measured seconds (at most 600)
    #[arg(long, default_value = "10", value_parser = seconds_up_to(600.0))]
    duration: f64,
    /// Seconds of load before measuring starts (at most 120)
    #[arg(long, default_value = "2", value_parser = seconds_up_to(120.0))]
    warmup: f64,
    /// Size of the key space: bench/secret-00000 .. bench/secret-<N-1>
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=MAX_SECRETS as u64))]
    secrets: u64,
    /// Create the key space first (a secret that already exists is fine)
    #[arg(long)]
    setup: bool,
    /// Create the key space and exit without a load phase
    #[arg(long)]
    setup_only: bool,
    /// Parallel connections for --setup
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=256))]
    setup_concurrency: u64,
    /// Give up the setup after this many seconds
    #[arg(long, default_value = "900", value_parser = seconds_up_to(3600.0))]
    setup_timeout: f64,
    /// A request without a complete response after this many seconds is an error (its connection is dropped)
    #[arg(long, default_value = "10", value_parser = seconds_up_to(60.0))]
    request_timeout: f64,
    /// Tokio worker threads of the load generator [default: the number of cores]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    threads: Option<u64>,
    /// Don't check that a 200's body has the operation's response shape
    #[arg(long)]
    no_check: bool,
    /// How many error bodies to print to stderr
    #[arg(long, default_value_t = 3)]
    show_errors: usize,
    /// Print one JSON object instead of a text line
    #[arg(long)]
    json: bool,
    /// The peer's name in the output
    #[arg(long, default_value = "peer")]
    label: String,
}

/// Signs requests like an SDK: the signing key of the current UTC day is derived once and reused.
struct Signer {
    host: String,
    signing_service: &'static str,
    target_prefix: &'static str,
    access_key_id: String,
    secret: SecretBytes,
    region: String,
    key: Option<(String, SigningKey)>,
    derivations: u64,
}

impl Signer {
    fn new(host: &str, keys: &KeyPair, region: &str, workload: Workload) -> Signer {
        let (signing_service, target_prefix) = workload.protocol();
        Signer {
            host: host.to_string(),
            signing_service,
            target_prefix,
            access_key_id: keys.access_key_id.clone(),
            secret: SecretBytes::from(keys.secret_access_key.clone()),
            region: region.to_string(),
            key: None,
            derivations: 0,
        }
    }

    /// A signed `POST /` for `secretsmanager.<operation>`.
    fn request(&mut self, operation: &str, body: Vec<u8>) -> anyhow::Result<http::Request<Full<Bytes>>> {
        let now = time::OffsetDateTime::now_utc();
        let day = format!("{:04}{:02}{:02}", now.year(), u8::from(now.month()), now.day());
        if self.key.as_ref().is_none_or(|(d, _)| *d != day) {
            let key = coffer_sigv4::derive_signing_key(self.secret.expose(), &day, &self.region, self.signing_service);
            self.key = Some((day, key));
            self.derivations += 1;
        }
        let Some((_, key)) = &self.key else { bail!("no signing key") };
        let headers = [
            ("host".to_string(), self.host.clone()),
            ("content-type".to_string(), JSON_1_1.to_string()),
            ("x-amz-target".to_string(), format!("{}.{operation}", self.target_prefix)),
        ];
        let signable =
            coffer_sigv4::SignableRequest { method: "POST", path: "/", query: "", headers: &headers, payload: &body };
        let added = coffer_sigv4::sign_with_key(
            &signable,
            &self.access_key_id,
            None,
            key,
            &self.region,
            self.signing_service,
            now,
        );
        let mut builder = http::Request::builder().method("POST").uri("/");
        for (name, value) in headers.iter().chain(added.iter()) {
            builder = builder.header(name.as_str(), value.as_str());
        }
        Ok(builder.body(Full::new(Bytes::from(body)))?)
    }
}

fn sensitive(s: String) -> Option<Sensitive> {
    Some(Sensitive(SecretBytes::from(s)))
}

fn token() -> Option<String> {
    Some(uuid::Uuid::new_v4().to_string())
}

/// The next request of a workload: (operation, JSON body).
fn next_body(
    workload: Workload,
    secrets: usize,
    rng: &mut SmallRng,
    run_id: &str,
    seq: u64,
) -> anyhow::Result<(&'static str, Vec<u8>)> {
    Ok(match workload {
        Workload::GetSecretValue => {
            let req = GetSecretValueRequest { secret_id: secret_name(rng.gen_range(0..secrets)), ..Default::default() };
            ("GetSecretValue", serde_json::to_vec(&req)?)
        }
        Workload::PutSecretValue => {
            let req = PutSecretValueRequest {
                secret_id: secret_name(rng.gen_range(0..secrets)),
                client_request_token: token(),
                secret_string: sensitive(format!(
                    "{{\"username\":\"app\",\"password\":\"{:016x}{:016x}\"}}",
                    rng.gen::<u64>(),
                    rng.gen::<u64>()
                )),
                ..Default::default()
            };
            ("PutSecretValue", serde_json::to_vec(&req)?)
        }
        Workload::CreateSecret => {
            let req = CreateSecretRequest {
                name: format!("bench/created-{run_id}-{seq:08}"),
                client_request_token: token(),
                secret_string: sensitive(format!(
                    "{{\"username\":\"app\",\"password\":\"{:016x}\"}}",
                    rng.gen::<u64>()
                )),
                ..Default::default()
            };
            ("CreateSecret", serde_json::to_vec(&req)?)
        }
        Workload::GetParameter => {
            let req = coffer_wire::ssm::GetParameterRequest {
                name: param_name(rng.gen_range(0..secrets)),
                with_decryption: Some(true),
            };
            ("GetParameter", serde_json::to_vec(&req)?)
        }
        Workload::GetParametersByPath => {
            let groups = secrets.div_ceil(PARAMS_PER_GROUP).max(1);
            let req = coffer_wire::ssm::GetParametersByPathRequest {
                path: format!("/bench/params/g{:03}", rng.gen_range(0..groups)),
                recursive: Some(true),
                with_decryption: Some(true),
                max_results: Some(10),
                ..Default::default()
            };
            ("GetParametersByPath", serde_json::to_vec(&req)?)
        }
    })
}

/// Parameters per group of the benchmark hierarchy.
const PARAMS_PER_GROUP: usize = 100;

/// `/bench/params/gNNN/pNNNNN`: a two-level hierarchy, 100 parameters a group.
fn param_name(i: usize) -> String {
    format!("/bench/params/g{:03}/p{i:05}", i / PARAMS_PER_GROUP)
}

/// Does a 200's body have the operation's response shape?
fn well_formed(workload: Workload, body: &[u8]) -> bool {
    match workload {
        Workload::GetSecretValue => serde_json::from_slice::<GetSecretValueResponse>(body)
            .is_ok_and(|r| r.secret_string.is_some() || r.secret_binary.is_some()),
        Workload::PutSecretValue => serde_json::from_slice::<PutSecretValueResponse>(body).is_ok(),
        Workload::CreateSecret => serde_json::from_slice::<SecretIdentityResponse>(body).is_ok_and(|r| r.arn.is_some()),
        Workload::GetParameter => serde_json::from_slice::<coffer_wire::ssm::GetParameterResponse>(body).is_ok(),
        Workload::GetParametersByPath => serde_json::from_slice::<coffer_wire::ssm::GetParametersByPathResponse>(body)
            .is_ok_and(|r| !r.parameters.is_empty()),
    }
}

/// `"400 ResourceNotFoundException"`, or just the status when the body is not an AWS error.
fn error_kind(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => {
            let ty = e.error_type.rsplit('#').next().unwrap_or(&e.error_type);
            format!("{status} {ty}")
        }
        Err(_) => format!("{status}"),
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One worker's keep-alive connection; reconnects when the server closed it.
struct Conn {
    addr: SocketAddr,
    sender: Option<Sender>,
    connects: u64,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn { addr, sender: None, connects: 0 }
    }

    async fn ready_sender(&mut self) -> anyhow::Result<Sender> {
        if let Some(mut s) = self.sender.take() {
            if !s.is_closed() && s.ready().await.is_ok() {
                return Ok(s);
            }
        }
        let stream = tokio::net::TcpStream::connect(self.addr).await.context("connect")?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        sender.ready().await?;
        self.connects += 1;
        Ok(sender)
    }

    async fn send(&mut self, req: http::Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        let mut sender = self.ready_sender().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        // Keep the connection unless the server said it will close it.
        let closing = resp
            .headers()
            .get(http::header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.eq_ignore_ascii_case("close"))
            .unwrap_or(resp.version() == http::Version::HTTP_10);
        let body = resp.into_body().collect().await?.to_bytes();
        if !closing {
            self.sender = Some(sender);
        }
        Ok((status, body))
    }

    /// `send` bounded by `limit`; on timeout the connection is dropped.
    async fn send_within(&mut self, req: http::Request<Full<Bytes>>, limit: Duration) -> anyhow::Result<(u16, Bytes)> {
        match tokio::time::timeout(limit, self.send(req)).await {
            Ok(r) => r,
            Err(_) => {
                self.sender = None;
                bail!("timeout after {:.1}s", limit.as_secs_f64())
            }
        }
    }
}

/// Prints the first few error bodies, across all workers.
struct ErrorPrinter {
    shown: AtomicUsize,
    limit: usize,
}

impl ErrorPrinter {
    fn show(&self, phase: &str, what: &str) {
        if self.shown.fetch_add(1, Ordering::Relaxed) < self.limit {
            let mut text = what.replace('\n', " ");
            if text.len() > 400 {
                let mut cut = 400;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push('…');
            }
            eprintln!("loadgen: error ({phase}): {text}");
        }
    }
}

/// Creates the key space with bounded concurrency. Returns (created, already existing).
async fn setup(
    args: &Args,
    addr: SocketAddr,
    host: &str,
    keys: &KeyPair,
    printer: Arc<ErrorPrinter>,
) -> anyhow::Result<(u64, u64)> {
    let total = args.secrets;
    let next = Arc::new(AtomicU64::new(0));
    let created = Arc::new(AtomicU64::new(0));
    let existed = Arc::new(AtomicU64::new(0));
    let limit = Duration::from_secs_f64(args.request_timeout.max(1.0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.setup_concurrency.min(total) {
        let (next, created, existed, printer) = (next.clone(), created.clone(), existed.clone(), printer.clone());
        let mut signer = Signer::new(host, keys, &args.region, args.workload);
        let parameters = args.workload.is_parameter_store();
        tasks.spawn(async move {
            let mut conn = Conn::new(addr);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let request = if parameters {
                        let req = coffer_wire::ssm::PutParameterRequest {
                            name: param_name(i as usize),
                            value: sensitive(format!("bench-parameter-{i}")),
                            parameter_type: Some("SecureString".into()),
                            ..Default::default()
                        };
                        signer.request("PutParameter", serde_json::to_vec(&req)?)?
                    } else {
                        let req = CreateSecretRequest {
                            name: secret_name(i as usize),
                            client_request_token: token(),
                            secret_string: sensitive(format!("{{\"username\":\"app\",\"password\":\"bench-{i}\"}}")),
                            ..Default::default()
                        };
                        signer.request("CreateSecret", serde_json::to_vec(&req)?)?
                    };
                    let result = conn.send_within(request, limit).await;
                    let failure = match result {
                        Ok((200, _)) => {
                            created.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Ok((_, body))
                            if String::from_utf8_lossy(&body).contains("ResourceExistsException")
                                || String::from_utf8_lossy(&body).contains("ParameterAlreadyExists") =>
                        {
                            existed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Ok((status, body)) => format!(
                            "CreateSecret {}: {status} {}",
                            secret_name(i as usize),
                            String::from_utf8_lossy(&body)
                        ),
                        Err(e) => format!("CreateSecret {}: {e:#}", secret_name(i as usize)),
                    };
                    printer.show("setup", &failure);
                    if attempt >= 3 {
                        bail!("setup failed: {failure}");
                    }
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
            }
        });
    }
    let run = async {
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout(Duration::from_secs_f64(args.setup_timeout), run).await {
        Ok(r) => r?,
        Err(_) => bail!(
            "setup did not finish within {} s ({} of {total} secrets done)",
            args.setup_timeout,
            created.load(Ordering::Relaxed) + existed.load(Ordering::Relaxed)
        ),
    }
    Ok((created.load(Ordering::Relaxed), existed.load(Ordering::Relaxed)))
}

/// What one worker saw inside the measured window.
struct WorkerResult {
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    warmup_errors: u64,
    connects: u64,
    derivations: u64,
}

struct Window {
    measure_from: Instant,
    measure_to: Instant,
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    workload: Workload,
    secrets: usize,
    mut signer: Signer,
    addr: SocketAddr,
    window: Arc<Window>,
    limit: Duration,
    check: bool,
    printer: Arc<ErrorPrinter>,
    seq: Arc<AtomicU64>,
    run_id: Arc<str>,
) -> anyhow::Result<WorkerResult> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, HIST_MAX_MICROS, 3)?;
    let mut errors = BTreeMap::new();
    let mut warmup_errors = 0;
    let mut conn = Conn::new(addr);
    let mut rng = SmallRng::from_entropy();
    while Instant::now() < window.measure_to {
        let (operation, body) = next_body(workload, secrets, &mut rng, &run_id, seq.fetch_add(1, Ordering::Relaxed))?;
        let req = signer.request(operation, body)?;
        let t0 = Instant::now();
        let result = conn.send_within(req, limit).await;
        let t1 = Instant::now();
        let measured = t1 >= window.measure_from && t1 <= window.measure_to;
        let phase = if measured { "measured" } else { "warm-up" };
        let failure = match result {
            Ok((200, resp)) if !check || well_formed(workload, &resp) => {
                if measured {
                    let micros = u64::try_from(t1.duration_since(t0).as_micros()).unwrap_or(u64::MAX);
                    hist.saturating_record(micros.clamp(1, HIST_MAX_MICROS));
                }
                continue;
            }
            Ok((200, resp)) => {
                printer.show(phase, &format!("200 with an unexpected body: {}", String::from_utf8_lossy(&resp)));
                "200 unexpected body".to_string()
            }
            Ok((status, resp)) => {
                printer.show(phase, &format!("{status}: {}", String::from_utf8_lossy(&resp)));
                error_kind(status, &resp)
            }
            Err(e) => {
                printer.show(phase, &format!("{e:#}"));
                // Don't spin on a dead server.
                tokio::time::sleep(Duration::from_millis(10)).await;
                format!("transport: {}", e.root_cause()).chars().take(80).collect()
            }
        };
        if measured {
            *errors.entry(failure).or_insert(0) += 1;
        } else if t1 < window.measure_from {
            warmup_errors += 1;
        }
    }
    Ok(WorkerResult { hist, errors, warmup_errors, connects: conn.connects, derivations: signer.derivations })
}

fn main() -> std::process::ExitCode {
    match start(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start(args: Args) -> anyhow::Result<()> {
    let threads = match args.threads {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    // Several endpoints (nodes over one database): the workers take them in turn, as a load balancer
    // would spread connections; setup goes through the first.
    let mut targets: Vec<(String, SocketAddr)> = Vec::new();
    for endpoint in args.endpoint.split(',') {
        let url: http::Uri = endpoint.trim().parse().context("--endpoint is not a URL")?;
        if url.scheme_str() != Some("http") {
            bail!("--endpoint must be http://HOST:PORT (the load generator speaks plain HTTP/1.1)");
        }
        let authority = url.authority().context("--endpoint needs HOST:PORT")?;
        let addr = resolve_loopback(&format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80))).await?;
        targets.push((authority.as_str().to_string(), addr));
    }
    let (host, addr) = targets[0].clone();
    let keys = match &args.credentials_file {
        Some(path) => coffer_bench::read_credentials_file(path, &args.profile)?,
        None => {
            KeyPair { access_key_id: args.access_key_id.clone(), secret_access_key: args.secret_access_key.clone() }
        }
    };
    let printer = Arc::new(ErrorPrinter { shown: AtomicUsize::new(0), limit: args.show_errors });

    if args.setup || args.setup_only {
        let started = Instant::now();
        let (created, existed) = setup(&args, addr, &host, &keys, printer.clone()).await?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "loadgen: {}: setup of {} secrets: {created} created, {existed} already there, {secs:.1} s ({:.0}/s, {} connections)",
            args.label,
            args.secrets,
            (created + existed) as f64 / secs.max(1e-9),
            args.setup_concurrency.min(args.secrets),
        );
        if args.setup_only {
            return Ok(());
        }
    }

    let run_id: Arc<str> = uuid::Uuid::new_v4().simple().to_string()[..12].into();
    let start = Instant::now();
    let window = Arc::new(Window {
        measure_from: start + Duration::from_secs_f64(args.warmup),
        measure_to: start + Duration::from_secs_f64(args.warmup + args.duration),
    });
    let limit = Duration::from_secs_f64(args.request_timeout.max(0.001));
    let seq = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.concurrency as usize {
        let (host, addr) = &targets[i % targets.len()];
        tasks.spawn(worker(
            args.workload,
            args.secrets as usize,
            Signer::new(host, &keys, &args.region, args.workload),
            *addr,
            window.clone(),
            limit,
            !args.no_check,
            printer.clone(),
            seq.clone(),
            run_id.clone(),
        ));
    }
    // Workers stop at the end of the window; a request in flight then is bounded by the request timeout.
    let hard_stop = window.measure_to + limit + Duration::from_secs(5);
    let mut total = Histogram::<u64>::new_with_bounds(1, HIST_MAX_MICROS, 3)?;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let (mut warmup_errors, mut connects, mut derivations) = (0, 0, 0);
    loop {
        let next = tokio::time::timeout_at(hard_stop.into(), tasks.join_next()).await;
        match next {
            Ok(Some(joined)) => {
                let r = joined??;
                total.add(&r.hist)?;
                for (k, v) in r.errors {
                    *errors.entry(k).or_insert(0) += v;
                }
                warmup_errors += r.warmup_errors;
                connects += r.connects;
                derivations += r.derivations;
            }
            Ok(None) => break,
            Err(_) => {
                tasks.abort_all();
                bail!("workers did not stop in time");
            }
        }
    }

    let seconds = window.measure_to.duration_since(window.measure_from).as_secs_f64();
    let ok = total.len();
    let error_count: u64 = errors.values().sum();
    let rps = if seconds > 0.0 { ok as f64 / seconds } else { 0.0 };
    let q = |x: f64| if ok == 0 { 0 } else { total.value_at_quantile(x) };
    let (p50, p90, p99, p999) = (q(0.5), q(0.9), q(0.99), q(0.999));
    let (mean, max) = if ok == 0 { (0.0, 0) } else { (total.mean(), total.max()) };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "peer": args.label, "endpoint": args.endpoint, "workload": args.workload.name(),
                "concurrency": args.concurrency, "secrets": args.secrets, "duration_s": seconds,
                "warmup_s": args.warmup, "threads": args.threads, "requests": ok, "errors": error_count,
                "error_kinds": errors, "warmup_errors": warmup_errors, "rps": rps, "mean_us": mean,
                "p50_us": p50, "p90_us": p90, "p99_us": p99, "p999_us": p999, "max_us": max,
                "connections": connects, "key_derivations": derivations,
            })
        );
    } else {
        println!(
            "{:<8} {:<16} c={:<4} {:>9.0} req/s  p50 {:>7} µs  p90 {:>7} µs  p99 {:>7} µs  p99.9 {:>7} µs  max {:>8} µs  \
             errors {error_count}/{}  connections {connects}",
            args.label,
            args.workload.name(),
            args.concurrency,
            rps,
            p50,
            p90,
            p99,
            p999,
            max,
            ok + error_count,
        );
        for (kind, n) in &errors {
            println!("    {n:>8} × {kind}");
        }
    }
    Ok(())
}
