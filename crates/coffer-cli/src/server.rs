//! `coffer server`: flags and config file into a [`ServerConfig`], then run until SIGINT/SIGTERM.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use coffer_server::{MasterKeySource, ServerConfig};

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// TOML configuration file; flags override its values
    #[arg(long, env = "COFFER_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8200]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory (database, master key file, root credentials) [default: ./coffer-data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Storage URL: sqlite://PATH, or postgres://USER@HOST:PORT/DB for several nodes over one database [default: sqlite in <data-dir>/coffer.db]
    #[arg(long)]
    storage: Option<String>,
    /// Region the server reports [default: us-east-1]
    #[arg(long)]
    region: Option<String>,
    /// 12-digit account id used in ARNs [default: 000000000000]
    #[arg(long)]
    account_id: Option<String>,
    /// PEM certificate chain; serves HTTPS together with --tls-key
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Where the master key comes from: file (default), env (COFFER_MASTER_KEY), passphrase, or shamir
    /// (start sealed; `coffer operator init` / `unseal` with key shares)
    #[arg(long, value_parser = parse_source)]
    master_key_source: Option<MasterKeySource>,
    /// File holding the passphrase (with --master-key-source passphrase; else COFFER_PASSPHRASE)
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Log as JSON lines instead of text
    #[arg(long)]
    log_json: bool,
    /// A read's audit event is durable within this many ms (group commit); 0 = before its response
    /// [default: 100]
    #[arg(long)]
    audit_flush_interval_ms: Option<u64>,
    /// Days audit records are kept [default: 2557, seven years]
    #[arg(long)]
    audit_retention_days: Option<u32>,
    /// Seconds between signed digests of the audit chain [default: 300]
    #[arg(long)]
    audit_digest_interval_secs: Option<u64>,
    /// Also write the audit log, in chain order, to this JSON-lines file (rotated by size)
    #[arg(long)]
    audit_sink: Option<PathBuf>,
    /// Record nothing: only to measure the audit log's cost, never in production
    #[arg(long)]
    no_audit: bool,
    /// With PostgreSQL: strong (every cached read checked against the database, so a write on any node
    /// is seen by the next read on all) or cached (served from cache until a change notice arrives)
    /// [default: strong]
    #[arg(long, value_parser = parse_consistency)]
    read_consistency: Option<coffer_server::config::ReadConsistency>,
    /// Seconds between scheduler passes (deletions, rotations, key rotation) [default: 60]
    #[arg(long)]
    scheduler_interval_secs: Option<u64>,
}

fn parse_consistency(s: &str) -> Result<coffer_server::config::ReadConsistency, String> {
    match s {
        "strong" => Ok(coffer_server::config::ReadConsistency::Strong),
        "cached" => Ok(coffer_server::config::ReadConsistency::Cached),
        other => Err(format!("unknown read consistency {other:?}: use strong or cached")),
    }
}

fn parse_source(s: &str) -> Result<MasterKeySource, String> {
    match s {
        "file" => Ok(MasterKeySource::File),
        "env" => Ok(MasterKeySource::Env),
        "passphrase" => Ok(MasterKeySource::Passphrase),
        "shamir" => Ok(MasterKeySource::Shamir),
        other => Err(format!("unknown master key source {other:?}: use file, env, passphrase or shamir")),
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COFFER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub async fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_json);
    let mut config = match &args.config {
        Some(path) => ServerConfig::from_file(path)?,
        None => ServerConfig::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = args.storage {
        config.storage = Some(v);
    }
    if let Some(v) = args.region {
        config.region = v;
    }
    if let Some(v) = args.account_id {
        config.account_id = v;
    }
    if let Some(v) = args.tls_cert {
        config.tls_cert = Some(v);
    }
    if let Some(v) = args.tls_key {
        config.tls_key = Some(v);
    }
    if let Some(v) = args.master_key_source {
        config.master_key_source = v;
    }
    if let Some(v) = args.passphrase_file {
        config.passphrase_file = Some(v);
    }
    if let Some(v) = args.audit_flush_interval_ms {
        config.audit.flush_interval_ms = v;
    }
    if let Some(v) = args.audit_retention_days {
        config.audit.retention_days = v;
    }
    if let Some(v) = args.audit_digest_interval_secs {
        config.audit.digest_interval_secs = v;
    }
    if let Some(v) = args.audit_sink {
        config.audit.sink_path = Some(v);
    }
    if args.no_audit {
        config.audit.enabled = false;
    }
    if let Some(v) = args.read_consistency {
        config.read_consistency = v;
    }
    if let Some(v) = args.scheduler_interval_secs {
        config.scheduler_interval_secs = v;
    }
    let data_dir = config.data_dir.clone();
    let server = coffer_server::start(config).await.context("coffer could not start")?;
    if let Some(root) = &server.root_credentials {
        let file = data_dir.join(coffer_server::ROOT_CREDENTIALS_FILE);
        // The secret is shown once, and only to a person at a terminal: when stderr goes to a log
        // collector it would outlive the moment, so then only the file's location is printed.
        if std::io::stderr().is_terminal() {
            let secret = root.secret_access_key.expose_str().unwrap_or("<not text>");
            eprintln!(
                "\nCoffer initialized a new data directory.\n\
                 Root credentials (shown only once; also saved to {}):\n\
                 \x20 aws_access_key_id     = {}\n\
                 \x20 aws_secret_access_key = {}\n\
                 Use the root credentials only to set up other principals.\n",
                file.display(),
                root.access_key_id,
                secret
            );
        } else {
            eprintln!(
                "Coffer initialized a new data directory; the root credentials ({}) are in {}",
                root.access_key_id,
                file.display()
            );
        }
    }
    // Tests and scripts wait for this line.
    println!("coffer listening on {}", server.endpoint());
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
