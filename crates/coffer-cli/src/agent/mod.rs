//! `coffer agent`: a local caching agent that answers the HTTP interface of AWS's Secrets Manager Agent
//! (and the Parameters and Secrets Lambda extension) from a cache in front of a Coffer server.
//!
//! - [`http`]: the loopback HTTP interface, its SSRF token check and the routes.
//! - [`cache`]: TTL, LRU bound, background refresh of hot entries, stale-on-error.
//! - [`snapshot`]: the optional encrypted on-disk copy of the cache, so applications can start while the
//!   server is down.
//! - [`events`]: invalidation by the server's change events, so a new value is served within about a
//!   second instead of at the end of the TTL.

mod cache;
mod events;
mod http;
mod snapshot;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use coffer_crypto::SecretBytes;

use crate::secret::client_for;
use crate::Connection;

/// The port AWS's agent listens on by default.
pub const DEFAULT_PORT: u16 = 2773;
/// The header carrying the SSRF token, as AWS's agent names it.
pub const TOKEN_HEADER: &str = "x-aws-parameters-secrets-token";
/// Where the token is read from, first set wins (AWS's agent's order).
const TOKEN_ENV_VARS: [&str; 3] = ["AWS_TOKEN", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"];

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// Port to listen on (127.0.0.1 only; 0 picks a free port and prints it)
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// How long a fetched value is served from the cache
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    ttl_seconds: u64,
    /// How many values the cache holds; the least recently used is evicted beyond it
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_entries: u64,
    /// How long past its TTL a value is still served while the server is unreachable or failing
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(0..=7 * 24 * 3600))]
    max_stale_seconds: u64,
    /// Keep an encrypted copy of the cache in this file, served (stale) when the server is down at start
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// Read the SSRF token from this file (else AWS_TOKEN, AWS_SESSION_TOKEN or
    /// AWS_CONTAINER_AUTHORIZATION_TOKEN: a value, or file://PATH)
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Do not subscribe to the server's change events: cached values are then replaced only when their
    /// TTL ends (or on refreshNow=true). By default a changed secret or parameter is refetched within
    /// about a second (the credentials need coffer:WaitForChanges)
    #[arg(long)]
    no_watch: bool,
    /// Threads serving requests (1 for the smallest sidecar; a cache hit is a lookup, so the kernel's
    /// socket work is most of a request and more threads help only with more cores)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub threads: u64,
    #[command(flatten)]
    conn: Connection,
}

pub async fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COFFER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let token = resolve_token(args.token_file.as_deref(), |name| std::env::var(name).ok())?;
    let secrets = client_for(&args.conn, "SECRETS_MANAGER").map_err(|e| e.context("the Secrets Manager client"))?;
    let parameters = client_for(&args.conn, "SSM").map_err(|e| e.context("the Parameter Store client"))?;
    let endpoint = secrets.config().endpoint.clone();
    let watch_client = if args.no_watch {
        None
    } else {
        let client = client_for(&args.conn, "SECRETS_MANAGER").map_err(|e| e.context("the change events client"))?;
        Some(Arc::new(client))
    };

    let snapshot = match &args.snapshot {
        None => None,
        Some(path) => {
            let key_source = match std::env::var("COFFER_AGENT_PASSPHRASE").ok().filter(|p| !p.is_empty()) {
                Some(passphrase) => snapshot::KeySource::Passphrase(SecretBytes::from(passphrase)),
                None => snapshot::KeySource::AccessKey(SecretBytes::from(
                    secrets.config().credentials.secret_access_key.as_str(),
                )),
            };
            Some(snapshot::Snapshot::new(path.clone(), key_source))
        }
    };

    let settings = cache::Settings {
        ttl: Duration::from_secs(args.ttl_seconds),
        max_entries: usize::try_from(args.max_entries).unwrap_or(usize::MAX),
        max_stale: Duration::from_secs(args.max_stale_seconds),
    };
    let upstream = cache::CofferUpstream { secrets, parameters };
    let cache = cache::Cache::new(settings, Arc::new(upstream), endpoint);

    let snapshot = snapshot.map(Arc::new);
    if let Some(snapshot) = &snapshot {
        let loaded = {
            let snapshot = snapshot.clone();
            tokio::task::spawn_blocking(move || snapshot.load()).await.context("reading the snapshot")?
        };
        match loaded {
            Ok(entries) => {
                let count = cache.load_snapshot(entries);
                if count > 0 {
                    tracing::info!(
                        entries = count,
                        "loaded the snapshot; its entries are served only if the server cannot be reached"
                    );
                }
            }
            Err(e) => {
                // A snapshot from other credentials or passphrase, or a damaged one: start empty.
                eprintln!("warning: ignoring the snapshot {}: {e:#}", snapshot.path().display());
            }
        }
        cache.set_snapshot_writer(snapshot::spawn_writer(snapshot.clone(), cache.clone()));
    }

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("reading the listening address")?;
    println!("coffer agent listening on http://{local}");

    let watch = match watch_client {
        Some(client) => Some(events::start(cache.clone(), client).await),
        None => None,
    };
    let state = Arc::new(http::AgentState { cache: cache.clone(), token, watch });
    http::serve(listener, state, shutdown_signal()).await;

    // A last write so the snapshot holds what the agent held, whatever the debounce left pending.
    if let Some(snapshot) = snapshot {
        if let Err(e) = snapshot::write_now(&snapshot, &cache).await {
            eprintln!("warning: writing the snapshot at exit: {e:#}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The SSRF token: `--token-file`, else the first set of [`TOKEN_ENV_VARS`] (a value, or `file://PATH`).
/// The agent refuses to start without one, as AWS's does: a token-less agent would answer any local
/// process tricked into making a request (SSRF).
fn resolve_token(token_file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<SecretBytes> {
    let (raw, origin) = match token_file {
        Some(path) => (read_token_file(path)?, format!("--token-file {}", path.display())),
        None => {
            let Some((name, value)) =
                TOKEN_ENV_VARS.iter().find_map(|name| env(name).filter(|v| !v.is_empty()).map(|v| (*name, v)))
            else {
                bail!(
                    "no SSRF token: set AWS_TOKEN (a value or file://PATH) or pass --token-file; clients send it in the X-Aws-Parameters-Secrets-Token header"
                );
            };
            match value.strip_prefix("file://") {
                Some(path) => (read_token_file(Path::new(path))?, name.to_string()),
                None => (SecretBytes::from(value), name.to_string()),
            }
        }
    };
    if raw.is_empty() {
        bail!("the SSRF token from {origin} is empty");
    }
    Ok(raw)
}

fn read_token_file(path: &Path) -> anyhow::Result<SecretBytes> {
    let mut text =
        std::fs::read_to_string(path).with_context(|| format!("reading the token file {}", path.display()))?;
    let trimmed = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(trimmed);
    Ok(SecretBytes::from(text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn token_comes_from_the_first_set_variable() {
        let token = resolve_token(None, env_of(&[("AWS_SESSION_TOKEN", "second"), ("AWS_TOKEN", "first")])).unwrap();
        assert_eq!(token.expose(), b"first");
        let token =
            resolve_token(None, env_of(&[("AWS_TOKEN", ""), ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "third")])).unwrap();
        assert_eq!(token.expose(), b"third");
    }

    #[test]
    fn token_files_are_read_without_their_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-a-file\n").unwrap();
        assert_eq!(resolve_token(Some(&path), env_of(&[("AWS_TOKEN", "ignored")])).unwrap().expose(), b"from-a-file");
        let leaked: &'static str = Box::leak(format!("file://{}", path.display()).into_boxed_str());
        let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([("AWS_TOKEN", leaked)]));
        assert_eq!(resolve_token(None, env_of(pairs)).unwrap().expose(), b"from-a-file");
    }

    #[test]
    fn no_token_no_agent() {
        let err = resolve_token(None, env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("no SSRF token"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(resolve_token(Some(&empty), env_of(&[])).is_err());
        assert!(resolve_token(Some(&dir.path().join("missing")), env_of(&[])).is_err());
    }
}
