//! Coffer's server: turns a [`ServerConfig`] into a running process — storage opened, master key
//! found, service initialized, listener (plain or TLS) serving the AWS front-end, the deletion
//! scheduler ticking — and shuts it down gracefully, finishing in-flight requests. With the `shamir`
//! key source the server starts sealed and serves through the [`seal::Gate`] until unsealed.

mod audit;
pub mod config;
pub mod master_key;
pub mod seal;
pub mod storage;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use coffer_api_aws::ApiState;
use coffer_crypto::Keyring;
use coffer_service::audit::AuditConfig;
use coffer_service::credentials::NewAccessKey;
use coffer_service::{ErrorKind, Service, ServiceConfig, SystemClock};
use coffer_store::{ChangeNotice, Store};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use config::{MasterKeySource, ServerConfig};

pub const ROOT_CREDENTIALS_FILE: &str = "root-credentials";

/// A server that is accepting requests.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    /// Set on the very first start only: the root access key, shown once.
    pub root_credentials: Option<NewAccessKey>,
    /// The service, for the key sources that have the master key at start. `None` with `shamir`,
    /// whose service exists only while unsealed: see [`current_service`](Self::current_service).
    pub service: Option<Arc<Service>>,
    pub tls: bool,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// Stops the audit tasks once no request is in flight any more (their last flush and digest then
    /// cover every request served).
    audit_stop: Option<watch::Sender<bool>>,
    audit_task: Option<JoinHandle<()>>,
    /// The seal gate (`shamir` key source only).
    gate: Option<Arc<seal::Gate>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish (up to the grace period), and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        if let Some(stop) = &self.audit_stop {
            let _ = stop.send(true);
        }
        if let Some(task) = self.audit_task {
            let _ = task.await;
        }
        if let Some(gate) = &self.gate {
            gate.seal_for_shutdown().await;
        }
    }

    /// The service now serving: always the same one for the file, env and passphrase sources; with
    /// `shamir`, the one of the current unseal, or `None` while sealed.
    pub fn current_service(&self) -> Option<Arc<Service>> {
        match &self.gate {
            Some(gate) => gate.current_service(),
            None => self.service.clone(),
        }
    }

    /// Whether the server is sealed (only ever with the `shamir` source).
    pub fn is_sealed(&self) -> bool {
        self.gate.as_ref().is_some_and(|gate| gate.is_sealed())
    }

    /// The base URL clients use.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.local_addr)
    }
}

fn create_data_dir(path: &std::path::Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path).with_context(|| format!("creating data directory {}", path.display()))
}

/// The AWS shared-credentials file format, so `AWS_SHARED_CREDENTIALS_FILE=<file>` works at once.
fn credentials_file_text(key: &NewAccessKey) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let secret = key.secret_access_key.expose_str().context("generated secret is not text")?;
    Ok(zeroize::Zeroizing::new(format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id, secret
    )))
}

fn tls_acceptor(config: &ServerConfig) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    let (Some(cert_path), Some(key_path)) = (&config.tls_cert, &config.tls_key) else { return Ok(None) };
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert_path).with_context(|| format!("opening {}", cert_path.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("reading certificates from {}", cert_path.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key_path).with_context(|| format!("opening {}", key_path.display()))?,
    ))
    .with_context(|| format!("reading the private key from {}", key_path.display()))?
    .with_context(|| format!("no private key in {}", key_path.display()))?;
    // Name the provider explicitly: several crypto back-ends may be linked into one binary.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("configuring TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("building the TLS configuration")?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls))))
}

/// Where the data directory keeps the public key that verifies the audit digests.
pub const AUDIT_PUBLIC_KEY_FILE: &str = "audit-public-key.pem";

/// Exports the audit digests' public key beside the data (verifiers should still get it from a
/// trusted copy: someone who can change the data can change this file too).
pub(crate) fn write_audit_public_key(service: &Service, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let key =
        service.audit_public_key().map_err(|e| anyhow::anyhow!("deriving the audit signing key: {}", e.message))?;
    let path = data_dir.join(AUDIT_PUBLIC_KEY_FILE);
    let pem = key.to_pem().map_err(|e| anyhow::anyhow!("encoding the audit public key: {e}"))?;
    std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))
}

/// The rotators beyond the service's own: PostgreSQL users, and the external rotators of the
/// configuration (told the server's endpoint to call back).
pub(crate) fn register_rotators(service: &Service, config: &ServerConfig, endpoint_url: &str) {
    coffer_rotators::register_builtin(service);
    for external in &config.rotation.external {
        if let Some(name) = &external.builtin {
            if !service.rotators().alias_builtin(&external.arn, &format!("coffer-{name}")) {
                tracing::error!(arn = %external.arn, builtin = %name, "no such built-in rotator");
            }
            continue;
        }
        let target = match (&external.command, &external.url) {
            (Some(command), _) => coffer_rotators::external::ExternalTarget::Command(command.clone()),
            (None, Some(url)) => coffer_rotators::external::ExternalTarget::Webhook(url.clone()),
            // Refused by `ServerConfig::validate`.
            (None, None) => continue,
        };
        let rotator = coffer_rotators::external::ExternalRotator {
            target,
            endpoint_url: endpoint_url.to_string(),
            role_arn: external.role_arn.clone(),
            timeout: Duration::from_secs(external.timeout_secs.unwrap_or(60).max(1)),
        };
        service.rotators().register_arn(&external.arn, Arc::new(rotator));
    }
}

/// The service over `store` under `keyring`, as every key source builds it.
fn build_service(store: Arc<dyn Store>, keyring: Arc<Keyring>, config: &ServerConfig) -> Arc<Service> {
    Arc::new(Service::new(
        store,
        keyring,
        Arc::new(SystemClock),
        ServiceConfig {
            account_id: config.account_id.clone(),
            max_versions: config.max_versions,
            cache_max_age: config.cache_max_age(),
            validate_cached_reads: config.validate_cached_reads(),
            audit: AuditConfig {
                enabled: config.audit.enabled,
                flush_interval: Duration::from_millis(config.audit.flush_interval_ms),
                retention_days: config.audit.retention_days,
                ..AuditConfig::default()
            },
            ..Default::default()
        },
    ))
}

/// Opens storage, finds the master key, initializes, binds and starts serving.
pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
    config.validate()?;
    create_data_dir(&config.data_dir)?;
    let store = storage::open_store(&config).await?;
    let data_exists = store.get_setting("master-key-check").await.context("reading the database")?.is_some();
    let sealed_with_shares =
        store.get_setting(seal::SETTING_SEAL_CONFIG).await.context("reading the database")?.is_some();
    if config.master_key_source == MasterKeySource::Shamir {
        return start_sealed(config, store, data_exists, sealed_with_shares).await;
    }
    if sealed_with_shares {
        bail!(
            "this data is sealed with key shares: start coffer with --master-key-source shamir (master_key_source = \"shamir\")"
        );
    }
    let master = master_key::load(&config, data_exists)?;
    let keyring = Arc::new(Keyring::new(&master));
    drop(master);

    // Subscribed before the service exists, so no change committed while it starts goes unheard.
    let changes = store.change_feed();
    let service = build_service(store, keyring, &config);
    let root_credentials = match service.initialize().await {
        Ok(created) => created,
        Err(e) if e.kind == ErrorKind::AccessDenied => bail!("refusing to start: {}", e.message),
        Err(e) => bail!("initialization failed: {}", e.message),
    };
    if let Some(key) = &root_credentials {
        let path = config.data_dir.join(ROOT_CREDENTIALS_FILE);
        master_key::write_private_file(&path, credentials_file_text(key)?.as_bytes())?;
    }

    let (tls, listener, local_addr) = bind(&config).await?;
    register_rotators(&service, &config, &format!("{}://{local_addr}", if tls.is_some() { "https" } else { "http" }));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    if let Some(changes) = changes {
        spawn_change_forwarder(service.clone(), changes, shutdown_rx.clone());
    }
    let mut api = ApiState::new(service.clone());
    api.secure_transport = tls.is_some();
    let api = Arc::new(api);

    spawn_deletion_scheduler(
        service.clone(),
        config.region.clone(),
        Duration::from_secs(config.scheduler_interval_secs.max(1)),
        config.rotation.clone(),
        shutdown_rx.clone(),
    );
    write_audit_public_key(&service, &config.data_dir)?;
    let (audit_stop, audit_rx) = watch::channel(false);
    let audit_task = audit::spawn_audit_tasks(service.clone(), config.audit.clone(), audit_rx);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let is_tls = tls.is_some();
    let task = tokio::spawn(serve(listener, Frontend::Open(api), tls, shutdown_rx, grace));
    tracing::info!(%local_addr, tls = is_tls, backend = service.backend_name(), "coffer is serving");
    Ok(RunningServer {
        local_addr,
        root_credentials,
        service: Some(service),
        tls: is_tls,
        shutdown: shutdown_tx,
        task,
        audit_stop: Some(audit_stop),
        audit_task: Some(audit_task),
        gate: None,
    })
}

async fn bind(config: &ServerConfig) -> anyhow::Result<(Option<tokio_rustls::TlsAcceptor>, TcpListener, SocketAddr)> {
    let tls = tls_acceptor(config)?;
    let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let local_addr = listener.local_addr()?;
    Ok((tls, listener, local_addr))
}

/// The `shamir` source: no key at start, so serve sealed through the gate until unsealed.
async fn start_sealed(
    config: ServerConfig,
    store: Arc<dyn Store>,
    data_exists: bool,
    sealed_with_shares: bool,
) -> anyhow::Result<RunningServer> {
    if std::env::var_os("COFFER_MASTER_KEY").is_some() {
        bail!("COFFER_MASTER_KEY is set but the configured master key source is shamir");
    }
    if data_exists && !sealed_with_shares {
        bail!(
            "this data was initialized with another master key source (file, env or passphrase); start coffer with that source"
        );
    }
    let (tls, listener, local_addr) = bind(&config).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let is_tls = tls.is_some();
    let gate = Arc::new(seal::Gate::new(store, config, sealed_with_shares));
    let task = tokio::spawn(serve(listener, Frontend::Gated(gate.clone()), tls, shutdown_rx, grace));
    if sealed_with_shares {
        tracing::info!(%local_addr, tls = is_tls, "coffer is serving sealed; unseal it with `coffer operator unseal`");
    } else {
        tracing::info!(%local_addr, tls = is_tls, "coffer is serving uninitialized; initialize it with `coffer operator init`");
    }
    Ok(RunningServer {
        local_addr,
        root_credentials: None,
        service: None,
        tls: is_tls,
        shutdown: shutdown_tx,
        task,
        audit_stop: None,
        audit_task: None,
        gate: Some(gate),
    })
}

/// What the accept loop hands requests to.
#[derive(Clone)]
enum Frontend {
    /// The master key was there at start: the AWS front-end directly.
    Open(Arc<ApiState>),
    /// `shamir`: the seal gate in front of it.
    Gated(Arc<seal::Gate>),
}

impl Frontend {
    async fn handle<B>(
        &self,
        remote: SocketAddr,
        req: hyper::Request<B>,
    ) -> hyper::Response<http_body_util::Full<bytes::Bytes>>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
    {
        match self {
            Frontend::Open(api) => coffer_api_aws::handle(api, remote, req).await,
            Frontend::Gated(gate) => gate.handle(remote, req).await,
        }
    }

    /// Ends the change subscribers' long polls, so they do not hold up a graceful shutdown.
    fn close_change_waits(&self) {
        let service = match self {
            Frontend::Open(api) => Some(api.service.clone()),
            Frontend::Gated(gate) => gate.current_service(),
        };
        if let Some(service) = service {
            service.close_change_waits();
        }
    }
}

async fn serve(
    listener: TcpListener,
    frontend: Frontend,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually out of file descriptors; back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let frontend = frontend.clone();
        let svc = service_fn(move |req| {
            let frontend = frontend.clone();
            async move { Ok::<_, Infallible>(frontend.handle(remote, req).await) }
        });
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let builder = hyper::server::conn::http1::Builder::new();
            let result = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls_stream) => watcher.watch(builder.serve_connection(TokioIo::new(tls_stream), svc)).await,
                    Err(e) => {
                        tracing::debug!(error = %e, %remote, "TLS handshake failed");
                        return;
                    }
                },
                None => watcher.watch(builder.serve_connection(TokioIo::new(stream), svc)).await,
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %remote, "connection ended with an error");
            }
        });
    }
    drop(listener);
    frontend.close_change_waits();
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}

/// Hands the store's change notices (changes committed by any node sharing the database) to the
/// service, which drops the cached copies they name, until `stop` is signalled or dropped.
pub(crate) fn spawn_change_forwarder(
    service: Arc<Service>,
    mut changes: broadcast::Receiver<ChangeNotice>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                received = changes.recv() => match received {
                    Ok(notice) => service.apply_change_notice(&notice),
                    // Notices were dropped before this task read them: which records they named is
                    // unknown, so every cached record goes.
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "fell behind the change notices; dropping every cached record");
                        service.apply_change_notice(&ChangeNotice::Everything);
                    }
                    // The store's listener ended (the store is closing); the caches' maximum age remains.
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = stop.changed() => break,
            }
        }
    });
}

fn spawn_deletion_scheduler(
    service: Arc<Service>,
    region: String,
    every: Duration,
    rotation: config::RotationSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        if let Err(e) = service.ensure_default_keys(&region).await {
            tracing::warn!(error = %e, "creating the default KMS keys failed");
        }
        match service.migrate_legacy_envelopes(&region).await {
            Ok(Some(report)) if report.rewrapped > 0 => {
                tracing::info!(rewrapped = report.rewrapped, "moved values sealed before KMS keys under their keys")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "moving legacy values under KMS keys failed"),
        }
        let mut rewrap_due = false;
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    // With several nodes over one database, one of them runs the duties.
                    if !service.hold_scheduler_leadership().await {
                        continue;
                    }
                    let mut failed: Vec<&str> = Vec::new();
                    if let Err(e) = service.purge_due_deletions().await {
                        tracing::warn!(error = %e, "scheduled deletion pass failed");
                        failed.push("scheduled deletion");
                    }
                    if let Err(e) = service.purge_expired_parameters(&region).await {
                        tracing::warn!(error = %e, "parameter expiration pass failed");
                        failed.push("parameter expiration");
                    }
                    match service.rotate_due_keys(&region).await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(keys = n, "rotated KMS keys on schedule");
                            rewrap_due = true;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "key rotation pass failed");
                            failed.push("key rotation");
                        }
                    }
                    if rotation.scheduler {
                        match service.rotate_due_secrets(&region, rotation.concurrency).await {
                            Ok(pass) if pass.rotated + pass.failed + pass.expired_previous > 0 => tracing::info!(
                                rotated = pass.rotated,
                                failed = pass.failed,
                                expired_previous = pass.expired_previous,
                                "rotation pass"
                            ),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "rotation pass failed");
                                failed.push("secret rotation");
                            }
                        }
                    }
                    if let Err(e) = service.purge_due_key_deletions(&region).await {
                        tracing::warn!(error = %e, "key deletion pass failed");
                        failed.push("key deletion");
                    }
                    if rewrap_due || service.take_rewrap_request() {
                        match service.rewrap_region(&region).await {
                            Ok(report) => {
                                rewrap_due = false;
                                if report.rewrapped > 0 {
                                    tracing::info!(rewrapped = report.rewrapped, skipped = report.skipped, "re-wrapped data keys under the newest key material");
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "re-wrap pass failed");
                                failed.push("re-wrap");
                            }
                        }
                    }
                    service.record_scheduler_pass(
                        (!failed.is_empty()).then(|| format!("failed: {}", failed.join(", "))),
                    );
                }
                _ = shutdown.changed() => break,
            }
        }
        service.release_scheduler_leadership().await;
    });
}
