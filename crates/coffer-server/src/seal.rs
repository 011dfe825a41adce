//! The seal gate of the `shamir` master-key source.
//!
//! A server started with `shamir` has no master key at start: it serves through a [`Gate`] that, while
//! the seal configuration is missing (uninitialized) or the key is not in memory (sealed), answers only
//! the health probes and the unsigned `CofferOperator.SealStatus`, `.Init` and `.Unseal` targets, and
//! refuses everything else with 503 `ServiceUnavailableException`. Once the key-share threshold is
//! reached the master key is rebuilt, the service built and verified against the stored key check, and
//! the serving state swapped in; from then on requests go to `coffer_api_aws::handle` as with any other
//! key source, plus the SigV4-signed `CofferOperator.Seal` and `.Rekey` (root only).
//!
//! The seal configuration (share hashes and the sealed master key, see [`coffer_crypto::SealConfig`])
//! lives in the store's settings under [`SETTING_SEAL_CONFIG`], so nodes over one database share it:
//! written with `put_setting_if_absent` at init and with the compare-and-swap `replace_setting` at
//! rekey. Unseal progress is per node and in memory only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use coffer_api_aws::error::ApiError;
use coffer_api_aws::ApiState;
use coffer_crypto::{check_share_parameters, KeyShare, Keyring, MasterKey, SealConfig, ShamirError, ShareSet};
use coffer_service::{ErrorKind, Service};
use coffer_store::Store;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::{watch, Mutex};
use zeroize::{Zeroize, Zeroizing};

use crate::config::ServerConfig;

pub use wire::*;

/// Store setting holding the JSON [`SealConfig`].
pub const SETTING_SEAL_CONFIG: &str = "seal-config";
/// Written by `Service::initialize`: proves which master key protects the data.
pub(crate) const SETTING_KEY_CHECK: &str = "master-key-check";
/// Written by `Service::initialize`: the root access key id. Only its holder may seal or rekey until
/// IAM policies exist.
const SETTING_ROOT_ACCESS_KEY: &str = "root-access-key-id";

/// Operator requests are small (at most 255 shares of 48 characters); anything bigger is refused.
const OPERATOR_MAX_BODY_BYTES: usize = 64 * 1024;

/// The wire shapes of the `CofferOperator` JSON 1.1 targets, shared with the `coffer operator` CLI.
pub mod wire {
    use serde::{Deserialize, Serialize};
    use zeroize::{Zeroize, ZeroizeOnDrop};

    /// `X-Amz-Target: CofferOperator.<Operation>`.
    pub const TARGET_PREFIX: &str = "CofferOperator";
    /// The SigV4 scope service of the signed targets (`Seal`, `Rekey`).
    pub const SIGNING_SERVICE: &str = "coffer";

    /// The answer of `SealStatus`, `Unseal` and `Seal`.
    #[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
    #[serde(rename_all = "PascalCase")]
    pub struct SealStatusResponse {
        pub initialized: bool,
        pub sealed: bool,
        /// Shares needed to unseal; absent while uninitialized.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub threshold: Option<u32>,
        /// Shares handed out; absent while uninitialized.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub shares: Option<u32>,
        /// Valid shares submitted so far in the current unseal attempt on this node.
        #[serde(default)]
        pub progress: u32,
    }

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
    #[serde(rename_all = "PascalCase")]
    pub struct InitRequest {
        pub secret_shares: u32,
        pub secret_threshold: u32,
    }

    /// Shown once: the key shares and the root access key.
    #[derive(Serialize, Deserialize, Default, Zeroize, ZeroizeOnDrop)]
    #[serde(rename_all = "PascalCase")]
    pub struct InitResponse {
        /// The key shares, base64.
        pub keys: Vec<String>,
        pub secret_shares: u32,
        pub secret_threshold: u32,
        /// Absent only if creating the root key failed after the seal configuration was written; it
        /// is then created at the first unseal and written to `<data-dir>/root-credentials`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub root_access_key_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub root_secret_access_key: Option<String>,
    }

    /// `{"Key": "<share>"}` submits a share; `{"Reset": true}` forgets the shares submitted so far.
    #[derive(Serialize, Deserialize, Default, Zeroize, ZeroizeOnDrop)]
    #[serde(rename_all = "PascalCase")]
    pub struct UnsealRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub key: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub reset: bool,
    }

    /// Old shares (at least the current threshold) and the new split.
    #[derive(Serialize, Deserialize, Default, Zeroize, ZeroizeOnDrop)]
    #[serde(rename_all = "PascalCase")]
    pub struct RekeyRequest {
        pub keys: Vec<String>,
        pub secret_shares: u32,
        pub secret_threshold: u32,
    }

    /// The new key shares, shown once.
    #[derive(Serialize, Deserialize, Default, Zeroize, ZeroizeOnDrop)]
    #[serde(rename_all = "PascalCase")]
    pub struct RekeyResponse {
        pub keys: Vec<String>,
        pub secret_shares: u32,
        pub secret_threshold: u32,
    }

    impl std::fmt::Debug for InitResponse {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "InitResponse(<{} redacted shares>, {}/{})",
                self.keys.len(),
                self.secret_shares,
                self.secret_threshold
            )
        }
    }

    impl std::fmt::Debug for RekeyResponse {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "RekeyResponse(<{} redacted shares>, {}/{})",
                self.keys.len(),
                self.secret_shares,
                self.secret_threshold
            )
        }
    }
}

/// The `CofferOperator` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    SealStatus,
    Init,
    Unseal,
    Seal,
    Rekey,
    Unknown,
}

impl Operation {
    /// `None` unless the request names a `CofferOperator` target.
    fn of<B>(req: &Request<B>) -> Option<Operation> {
        let target = req.headers().get("x-amz-target")?.to_str().ok()?;
        let (prefix, op) = target.split_once('.')?;
        if prefix != TARGET_PREFIX {
            return None;
        }
        Some(match op {
            "SealStatus" => Operation::SealStatus,
            "Init" => Operation::Init,
            "Unseal" => Operation::Unseal,
            "Seal" => Operation::Seal,
            "Rekey" => Operation::Rekey,
            _ => Operation::Unknown,
        })
    }
}

/// State changed only by init, unseal, seal and rekey, one at a time on this node.
#[derive(Default)]
struct Control {
    /// The shares of the unseal attempt in progress.
    shares: ShareSet,
    /// Dropping (or signalling) it stops the background scheduler of the unsealed service.
    scheduler_stop: Option<watch::Sender<bool>>,
}

/// The front door of a server whose master key is sealed with key shares.
pub struct Gate {
    store: Arc<dyn Store>,
    config: ServerConfig,
    /// The serving state while unsealed; `None` while sealed or uninitialized. Each request loads it
    /// once (a reference-count increment), so sealing waits for no lock and in-flight requests finish
    /// with the state they started with; the keyring is zeroized when the last of them drops it.
    api: ArcSwapOption<ApiState>,
    /// Set once a seal configuration has been seen; it is never removed.
    initialized: AtomicBool,
    control: Mutex<Control>,
}

impl Gate {
    pub(crate) fn new(store: Arc<dyn Store>, config: ServerConfig, initialized: bool) -> Gate {
        Gate {
            store,
            config,
            api: ArcSwapOption::empty(),
            initialized: AtomicBool::new(initialized),
            control: Mutex::new(Control::default()),
        }
    }

    /// The service while unsealed.
    pub fn current_service(&self) -> Option<Arc<Service>> {
        self.api.load_full().map(|api| api.service.clone())
    }

    pub fn is_sealed(&self) -> bool {
        self.api.load().is_none()
    }

    /// Serves one HTTP request.
    pub(crate) async fn handle<B>(&self, remote: SocketAddr, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
    {
        let operation = Operation::of(&req);
        let api = self.api.load_full();
        match (operation, api) {
            (None, Some(api)) => coffer_api_aws::handle(&api, remote, req).await,
            (Some(operation), api) => self.operator(operation, api, req).await,
            (None, None) => self.refuse_while_sealed(&req).await,
        }
    }

    /// Seals on shutdown so the scheduler stops and the keys are dropped.
    pub(crate) async fn seal_for_shutdown(&self) {
        self.seal().await;
    }

    async fn refuse_while_sealed<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let initialized = self.is_initialized().await;
        let status = if initialized { "{\"status\":\"sealed\"}" } else { "{\"status\":\"uninitialized\"}" };
        match (req.method(), req.uri().path()) {
            // Alive, so an orchestrator does not restart it; not ready, so it gets no traffic.
            (&Method::GET, "/healthz") => return plain(StatusCode::OK, status),
            (&Method::GET, "/readyz") => return plain(StatusCode::SERVICE_UNAVAILABLE, status),
            _ => {}
        }
        let error = if initialized {
            ApiError::new(
                503,
                "ServiceUnavailableException",
                "Coffer is sealed; unseal it with `coffer operator unseal`.",
            )
        } else {
            ApiError::new(
                503,
                "ServiceUnavailableException",
                "Coffer is not initialized; initialize it with `coffer operator init`.",
            )
        };
        coffer_api_aws::error_response(&error, &new_request_id())
    }

    async fn is_initialized(&self) -> bool {
        if self.initialized.load(Ordering::Acquire) {
            return true;
        }
        // Another node over the same database may have initialized it.
        let seen = matches!(self.store.get_setting(SETTING_SEAL_CONFIG).await, Ok(Some(_)));
        if seen {
            self.initialized.store(true, Ordering::Release);
        }
        seen
    }

    async fn operator<B>(
        &self,
        operation: Operation,
        api: Option<Arc<ApiState>>,
        req: Request<B>,
    ) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
    {
        let request_id = new_request_id();
        match self.operate(operation, api, req).await {
            Ok(body) => coffer_api_aws::response(200, body.to_vec(), &request_id),
            Err(e) => {
                if e.status >= 500 {
                    tracing::warn!(%request_id, code = e.code, ?operation, "operator request failed");
                } else {
                    tracing::debug!(%request_id, code = e.code, ?operation, "operator request rejected");
                }
                coffer_api_aws::error_response(&e, &request_id)
            }
        }
    }

    async fn operate<B>(
        &self,
        operation: Operation,
        api: Option<Arc<ApiState>>,
        req: Request<B>,
    ) -> Result<Zeroizing<Vec<u8>>, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
    {
        let (parts, body) = req.into_parts();
        if parts.method != Method::POST {
            return Err(ApiError::new(405, "UnknownOperationException", "Only POST requests are accepted."));
        }
        let body = read_body_wiped(body).await?;
        match (operation, api) {
            (Operation::Unknown, _) => Err(ApiError::unknown_operation()),
            (Operation::SealStatus, api) => {
                let control = self.control.lock().await;
                let config = self.load_seal_config().await?.map(|(_, c)| c);
                to_json(&status(config.as_ref(), api.is_none(), &control.shares))
            }
            (Operation::Init, Some(_)) => Err(already_initialized()),
            (Operation::Init, None) => self.init(&body).await,
            (Operation::Unseal, _) => self.unseal(&body).await,
            // Sealing a sealed server changes nothing, so it needs no credentials (there are none to
            // check them with).
            (Operation::Seal, None) => {
                let control = self.control.lock().await;
                let config = self.load_seal_config().await?.map(|(_, c)| c);
                to_json(&status(config.as_ref(), true, &control.shares))
            }
            (Operation::Seal, Some(api)) => {
                self.authorize_root(&api, &parts, &body).await?;
                drop(api);
                self.seal().await;
                let control = self.control.lock().await;
                let config = self.load_seal_config().await?.map(|(_, c)| c);
                to_json(&status(config.as_ref(), true, &control.shares))
            }
            (Operation::Rekey, None) => {
                Err(ApiError::new(503, "ServiceUnavailableException", "Coffer is sealed; unseal it before rekeying."))
            }
            (Operation::Rekey, Some(api)) => {
                self.authorize_root(&api, &parts, &body).await?;
                drop(api);
                self.rekey(&body).await
            }
        }
    }

    /// SigV4 (scope service `coffer`), and only the root access key until IAM policies exist.
    async fn authorize_root(&self, api: &ApiState, parts: &http::request::Parts, body: &[u8]) -> Result<(), ApiError> {
        let view = coffer_sigv4::RequestView {
            method: &parts.method,
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            payload: body,
        };
        let (principal, _region) =
            coffer_api_aws::auth::authenticate(&api.service, &api.signing_keys, &view, SIGNING_SERVICE).await?;
        let root = self.store.get_setting(SETTING_ROOT_ACCESS_KEY).await.map_err(storage_error)?;
        if root.as_deref() != Some(principal.access_key_id.as_bytes()) {
            tracing::info!(principal = %principal.arn, "refused a seal or rekey by a non-root principal");
            return Err(ApiError::bad_request(
                "AccessDeniedException",
                "Only the root access key may seal or rekey Coffer.",
            ));
        }
        Ok(())
    }

    /// The stored seal configuration and its raw bytes (the compare-and-swap operand of a rekey).
    async fn load_seal_config(&self) -> Result<Option<(Vec<u8>, SealConfig)>, ApiError> {
        let Some(raw) = self.store.get_setting(SETTING_SEAL_CONFIG).await.map_err(storage_error)? else {
            return Ok(None);
        };
        self.initialized.store(true, Ordering::Release);
        let config: SealConfig = serde_json::from_slice(&raw).map_err(|_| malformed_config())?;
        config.validate().map_err(|_| malformed_config())?;
        Ok(Some((raw, config)))
    }

    async fn init(&self, body: &[u8]) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        let req: InitRequest = parse(body, "Init")?;
        check_share_parameters(req.secret_shares, req.secret_threshold).map_err(shamir_parameter_error)?;
        let _control = self.control.lock().await;
        if self.load_seal_config().await?.is_some() {
            return Err(already_initialized());
        }
        if self.store.get_setting(SETTING_KEY_CHECK).await.map_err(storage_error)?.is_some() {
            return Err(ApiError::bad_request(
                "InvalidRequestException",
                "This database was initialized with another master key source (file, env or passphrase); it cannot be sealed with key shares.",
            ));
        }
        let mut rng = rand::rngs::OsRng;
        let master = MasterKey::generate(&mut rng);
        let (config, shares) = SealConfig::create(&mut rng, &master, req.secret_shares, req.secret_threshold)
            .map_err(shamir_parameter_error)?;
        let raw = serde_json::to_vec(&config).map_err(|_| internal("encoding the seal configuration failed"))?;
        if !self.store.put_setting_if_absent(SETTING_SEAL_CONFIG, &raw).await.map_err(storage_error)? {
            return Err(already_initialized());
        }
        self.initialized.store(true, Ordering::Release);
        // The seal configuration is durable now, so the shares are the only way in: they are returned
        // even if creating the root key fails, which the first unseal then retries.
        let service = crate::build_service(self.store.clone(), Arc::new(Keyring::new(&master)), &self.config);
        drop(master);
        let root = match service.initialize().await {
            Ok(root) => root,
            Err(e) => {
                tracing::warn!(error = %e.message, "creating the root access key at init failed; the first unseal will retry");
                None
            }
        };
        drop(service);
        tracing::info!(
            shares = req.secret_shares,
            threshold = req.secret_threshold,
            "coffer initialized; still sealed"
        );
        let mut response = InitResponse {
            keys: shares.iter().map(share_text).collect::<Result<_, _>>()?,
            secret_shares: req.secret_shares,
            secret_threshold: req.secret_threshold,
            root_access_key_id: None,
            root_secret_access_key: None,
        };
        if let Some(root) = root {
            let secret = root.secret_access_key.expose_str().map_err(|_| internal("the root secret is not text"))?;
            response.root_access_key_id = Some(root.access_key_id.clone());
            response.root_secret_access_key = Some(secret.to_string());
        }
        to_json(&response)
    }

    async fn unseal(&self, body: &[u8]) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        let req: UnsealRequest = parse(body, "Unseal")?;
        let mut control = self.control.lock().await;
        let Some((_, config)) = self.load_seal_config().await? else {
            return Err(ApiError::bad_request(
                "InvalidRequestException",
                "Coffer is not initialized; initialize it with `coffer operator init`.",
            ));
        };
        if self.api.load().is_some() {
            // Already unsealed (by this request's predecessor, perhaps): nothing to do.
            return to_json(&status(Some(&config), false, &control.shares));
        }
        if req.reset {
            control.shares.clear();
            tracing::info!("unseal progress reset");
            return to_json(&status(Some(&config), true, &control.shares));
        }
        let Some(text) = req.key.as_deref() else {
            return Err(ApiError::bad_request("ValidationException", "Give a key share in Key, or Reset: true."));
        };
        let need = config.threshold;
        let added = KeyShare::from_base64(text).and_then(|share| control.shares.add(&config, share));
        let have = match added {
            Ok(have) => have,
            Err(e) => {
                let progress = control.shares.progress(&config);
                tracing::warn!(reason = %e, progress, threshold = need, "refused an unseal key share");
                return Err(share_error(&e, Some((progress, need))));
            }
        };
        if have < need as usize {
            tracing::info!(progress = have, threshold = need, "unseal key share accepted");
            return to_json(&status(Some(&config), true, &control.shares));
        }
        // The attempt is over whatever happens next: its shares are forgotten (and zeroized).
        let opened = config.open(&control.shares);
        control.shares.clear();
        let master = opened.map_err(|e| {
            tracing::error!(reason = %e, "the key shares did not open the sealed master key");
            internal("The key shares did not open the sealed master key; the seal configuration may be damaged.")
        })?;
        self.activate(master, &mut control).await?;
        to_json(&status(Some(&config), false, &control.shares))
    }

    /// Builds the service from the unsealed master key, verifies it against the data, and serves.
    async fn activate(&self, master: MasterKey, control: &mut Control) -> Result<(), ApiError> {
        // Subscribed before the service exists, so no change committed while it starts goes unheard.
        let changes = self.store.change_feed();
        let service = crate::build_service(self.store.clone(), Arc::new(Keyring::new(&master)), &self.config);
        drop(master);
        match service.initialize().await {
            Ok(None) => {}
            Ok(Some(root)) => {
                // Init wrote the seal configuration but did not get to create the root key.
                let path = self.config.data_dir.join(crate::ROOT_CREDENTIALS_FILE);
                match crate::credentials_file_text(&root)
                    .and_then(|text| crate::master_key::write_private_file(&path, text.as_bytes()))
                {
                    Ok(()) => tracing::warn!(path = %path.display(), access_key_id = %root.access_key_id,
                        "created the root access key at the first unseal; its credentials are in the file"),
                    Err(e) => tracing::error!(error = %e, access_key_id = %root.access_key_id,
                        "created the root access key at the first unseal but could not write its credentials"),
                }
            }
            Err(e) if e.kind == ErrorKind::AccessDenied => {
                tracing::error!("the master key rebuilt from the key shares does not match this data");
                return Err(internal("The unsealed master key does not match this data; Coffer stays sealed."));
            }
            Err(e) => {
                tracing::warn!(error = %e.message, "initialization after unseal failed");
                return Err(ApiError::new(
                    503,
                    "ServiceUnavailableException",
                    "Coffer could not read its data after unsealing; it stays sealed. Try again.",
                ));
            }
        }
        let mut api = ApiState::new(service.clone());
        api.secure_transport = self.config.tls_cert.is_some() && self.config.tls_key.is_some();
        let api = Arc::new(api);
        let (stop_tx, stop_rx) = watch::channel(false);
        // Stopped with the scheduler at seal: a sealed node serves nothing, so it has no cache to keep.
        if let Some(changes) = changes {
            crate::spawn_change_forwarder(service.clone(), changes, stop_rx.clone());
        }
        if let Err(e) = crate::write_audit_public_key(&service, &self.config.data_dir) {
            tracing::warn!(error = %e, "exporting the audit public key failed");
        }
        // Stopped with the scheduler at seal: its last flush and digest run then.
        crate::audit::spawn_audit_tasks(service.clone(), self.config.audit.clone(), stop_rx.clone());
        // External rotators call back on the configured address (the gate serves it).
        let scheme = if self.config.tls_cert.is_some() { "https" } else { "http" };
        crate::register_rotators(&service, &self.config, &format!("{scheme}://{}", self.config.listen));
        crate::spawn_deletion_scheduler(
            service,
            self.config.region.clone(),
            Duration::from_secs(self.config.scheduler_interval_secs.max(1)),
            self.config.rotation.clone(),
            stop_rx,
        );
        control.scheduler_stop = Some(stop_tx);
        self.api.store(Some(api));
        tracing::info!("coffer is unsealed");
        Ok(())
    }

    /// Drops the serving state: new requests are refused at once; the keyring is zeroized when the
    /// requests still holding it finish. Also forgets any unseal progress.
    async fn seal(&self) {
        let mut control = self.control.lock().await;
        let previous = self.api.swap(None);
        if let Some(api) = &previous {
            // Long polls would otherwise keep the sealed keyring alive until their waits end.
            api.service.close_change_waits();
        }
        if let Some(stop) = control.scheduler_stop.take() {
            let _ = stop.send(true);
        }
        control.shares.clear();
        if previous.is_some() {
            tracing::info!("coffer is sealed");
        }
    }

    async fn rekey(&self, body: &[u8]) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        let req: RekeyRequest = parse(body, "Rekey")?;
        check_share_parameters(req.secret_shares, req.secret_threshold).map_err(shamir_parameter_error)?;
        let _control = self.control.lock().await;
        let Some((raw, config)) = self.load_seal_config().await? else {
            return Err(internal("The seal configuration is missing."));
        };
        let mut set = ShareSet::new();
        for (i, text) in req.keys.iter().enumerate() {
            KeyShare::from_base64(text).and_then(|share| set.add(&config, share)).map_err(|e| {
                tracing::warn!(reason = %e, position = i + 1, "refused a rekey key share");
                let mut error = share_error(&e, None);
                if error.status < 500 {
                    error.message = format!("Key share {}: {}", i + 1, error.message);
                }
                error
            })?;
        }
        let master = config.open(&set).map_err(|e| match e {
            ShamirError::NotEnoughShares { .. } => ApiError::bad_request(
                "InvalidParameterException",
                format!("{e}: give at least {} of the current key shares.", config.threshold),
            ),
            other => {
                tracing::error!(reason = %other, "the key shares did not open the sealed master key");
                internal("The key shares did not open the sealed master key; the seal configuration may be damaged.")
            }
        })?;
        // The shares must rebuild the key that protects the data, or the new shares would lock it out.
        if let Some(check) = self.store.get_setting(SETTING_KEY_CHECK).await.map_err(storage_error)? {
            Keyring::new(&master).verify_key_check(&check).map_err(|_| {
                tracing::error!("the master key rebuilt for a rekey does not match this data");
                internal("The key shares rebuild a master key that does not match this data; nothing was changed.")
            })?;
        }
        let mut rng = rand::rngs::OsRng;
        let (new_config, shares) = SealConfig::create(&mut rng, &master, req.secret_shares, req.secret_threshold)
            .map_err(shamir_parameter_error)?;
        drop(master);
        let new_raw =
            serde_json::to_vec(&new_config).map_err(|_| internal("encoding the seal configuration failed"))?;
        if !self.store.replace_setting(SETTING_SEAL_CONFIG, &raw, &new_raw).await.map_err(storage_error)? {
            return Err(ApiError::bad_request(
                "InvalidRequestException",
                "The seal configuration changed during the rekey (rekeyed on another node?); nothing was changed.",
            ));
        }
        tracing::info!(shares = req.secret_shares, threshold = req.secret_threshold, "coffer was rekeyed");
        to_json(&RekeyResponse {
            keys: shares.iter().map(share_text).collect::<Result<_, _>>()?,
            secret_shares: req.secret_shares,
            secret_threshold: req.secret_threshold,
        })
    }
}

fn status(config: Option<&SealConfig>, sealed: bool, shares: &ShareSet) -> SealStatusResponse {
    SealStatusResponse {
        initialized: config.is_some(),
        sealed,
        threshold: config.map(|c| c.threshold),
        shares: config.map(|c| c.shares),
        progress: match config {
            Some(c) if sealed => u32::try_from(shares.progress(c)).unwrap_or(u32::MAX),
            _ => 0,
        },
    }
}

fn share_text(share: &KeyShare) -> Result<String, ApiError> {
    share.to_base64().expose_str().map(str::to_string).map_err(|_| internal("a key share is not text"))
}

/// Reads the body into a zeroizing buffer and wipes the received copy when it is not shared.
async fn read_body_wiped<B>(body: B) -> Result<Zeroizing<Vec<u8>>, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let bytes = coffer_api_aws::read_body(body, OPERATOR_MAX_BODY_BYTES).await?;
    let copy = Zeroizing::new(bytes.to_vec());
    if let Ok(mut owned) = bytes.try_into_mut() {
        owned.as_mut().zeroize();
    }
    Ok(copy)
}

/// Parses a request body; the error names the position only, never the (possibly secret) input.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8], operation: &str) -> Result<T, ApiError> {
    let body: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::serialization(format!("not a valid {operation} request (line {}, column {})", e.line(), e.column()))
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    serde_json::to_vec(value).map(Zeroizing::new).map_err(|_| internal("encoding the response failed"))
}

fn share_error(e: &ShamirError, progress: Option<(usize, u32)>) -> ApiError {
    let counted = match progress {
        Some((have, need)) => format!("; it was not counted (unseal progress {have}/{need})"),
        None => String::new(),
    };
    match e {
        ShamirError::DuplicateShare => ApiError::bad_request("DuplicateKeyShareException", format!("{e}{counted}.")),
        ShamirError::MalformedShare | ShamirError::UnknownShare => {
            ApiError::bad_request("InvalidKeyShareException", format!("{e}{counted}."))
        }
        _ => {
            tracing::error!(reason = %e, "checking a key share failed");
            internal("The stored seal configuration could not be used.")
        }
    }
}

fn shamir_parameter_error(e: ShamirError) -> ApiError {
    match e {
        ShamirError::InvalidParameters { .. } => ApiError::bad_request("InvalidParameterException", format!("{e}.")),
        other => {
            tracing::error!(reason = %other, "sealing the master key failed");
            internal("Sealing the master key failed.")
        }
    }
}

fn already_initialized() -> ApiError {
    ApiError::bad_request("InvalidRequestException", "Coffer is already initialized.")
}

fn malformed_config() -> ApiError {
    tracing::error!("the stored seal configuration is malformed");
    internal("The stored seal configuration is malformed.")
}

fn storage_error(e: coffer_store::StoreError) -> ApiError {
    tracing::warn!(error = %e, "storage failed during a seal operation");
    ApiError::new(503, "ServiceUnavailableException", "Storage is unavailable; try again.")
}

fn internal(message: &str) -> ApiError {
    ApiError::new(500, "InternalFailure", message)
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
