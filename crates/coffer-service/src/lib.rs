//! The one service layer of Coffer.
//!
//! It holds the domain — secrets, versions, staging labels, deletion windows, access keys — and knows
//! nothing of HTTP, of AWS wire names or of SQL: protocol front-ends translate requests into these typed
//! calls and map [`ServiceError`] to their own codes; storage sits behind [`coffer_store::Store`].
//!
//! Architecture Invariant: every call takes a [`RequestContext`] carrying an authenticated principal.
//! Architecture Invariant: plaintext secret values exist only as [`coffer_crypto::SecretBytes`]
//! (zeroized on drop) and are sealed before they reach the store.
//! Architecture Invariant: time comes from the injected [`Clock`].

pub mod arn;
pub mod audit;
mod cache;
pub mod changes;
pub mod clock;
pub mod context;
pub mod credentials;
pub mod error;
pub mod iam;
pub mod identity;
pub mod kms;
pub mod parameters;
pub mod password;
pub mod scan;
pub mod scheduler;
pub mod secrets;
pub mod status;

use std::sync::Arc;

use coffer_crypto::Keyring;
use coffer_store::Store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use context::{ActorSource, Principal, PrincipalKind, RequestContext, SessionInfo};
pub use error::{ErrorKind, ServiceError, ServiceResult};
pub use iam::Access;

/// Installation-wide settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub account_id: String,
    /// Unlabelled versions are pruned once a secret has more than this many versions...
    pub max_versions: usize,
    /// ...and only those older than this. AWS: 100 versions, 24 hours.
    pub version_min_age_millis: i64,
    pub audit: audit::AuditConfig,
    /// The longest a cached secret or parameter is served before it is read again: how stale a copy
    /// can get when the notice of another node's change is lost. `None` (or zero): for ever, for a
    /// store only this node writes, where every change passes through its caches.
    pub cache_max_age: Option<std::time::Duration>,
    /// Check every cached secret or parameter against the store's revision before serving it (one
    /// single-row read): a write acknowledged by any node is then seen by the next read on every
    /// node. For a store several nodes share; without it a cached copy may be served until the
    /// change notice arrives (milliseconds), or for `cache_max_age` if the notice is lost.
    pub validate_cached_reads: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            account_id: "000000000000".into(),
            max_versions: 100,
            version_min_age_millis: 86_400_000,
            audit: audit::AuditConfig::default(),
            cache_max_age: Some(std::time::Duration::from_secs(5)),
            validate_cached_reads: false,
        }
    }
}

/// The service: cheap to share behind an `Arc`, safe to call concurrently.
pub struct Service {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    /// Whether this node leads the background duties, and how its last pass went.
    scheduler: scheduler::SchedulerState,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    cache: cache::SecretCache,
    parameter_cache: parameters::cache::ParameterCache,
    credentials: credentials::CredentialCache,
    kms_keys: kms::keys::KeyCache,
    /// The compiled copy of IAM that authorizes requests.
    iam: iam::snapshot::IamCache,
    /// Opened session tokens.
    sessions: iam::sts::SessionCache,
    /// Set when key material changed on demand; the scheduler's next tick runs a re-wrap pass.
    rewrap_requested: std::sync::atomic::AtomicBool,
    /// The audit log's append pipeline.
    audit: audit::AuditLog,
    /// The rotators this node can run, by RotationLambdaARN.
    rotators: secrets::rotation::Rotators,
    /// The recent changes subscribers long-poll for.
    changes: changes::ChangeJournal,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, keyring: Arc<Keyring>, clock: Arc<dyn Clock>, config: ServiceConfig) -> Self {
        let freshness = cache::Freshness::new(clock.clone(), config.cache_max_age);
        Service {
            audit: audit::AuditLog::new(config.audit.clone(), store.clone()),
            store,
            keyring,
            scheduler: Default::default(),
            clock,
            config,
            cache: cache::SecretCache::new(freshness.clone()),
            parameter_cache: parameters::cache::ParameterCache::new(freshness),
            credentials: Default::default(),
            kms_keys: Default::default(),
            iam: Default::default(),
            sessions: Default::default(),
            rewrap_requested: Default::default(),
            rotators: secrets::rotation::Rotators::with_builtins(),
            changes: Default::default(),
        }
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The storage backend's name, for status reports.
    pub fn backend_name(&self) -> &'static str {
        self.store.backend_name()
    }

    /// Drops any cached copy of a parameter (its state changed on another node).
    pub fn invalidate_parameter(&self, region: &str, name: &str) {
        self.parameter_cache.invalidate(region, name);
    }

    /// Whether a re-wrap pass was asked for since the last call (and clears the request).
    pub fn take_rewrap_request(&self) -> bool {
        self.rewrap_requested.swap(false, std::sync::atomic::Ordering::AcqRel)
    }

    /// Drops any cached copy of a KMS key (it changed on another node).
    pub fn invalidate_kms_key(&self, region: &str, key_id: &str) {
        self.kms_keys.invalidate(region, key_id);
    }

    /// Drops any cached copy of a secret (its state changed on another node).
    pub fn invalidate_secret(&self, arn: &str) {
        self.cache.invalidate(arn);
    }

    /// Drops every cached secret and parameter: changes of other nodes may have gone unheard. (KMS
    /// keys are read again within their own short freshness window.)
    pub fn invalidate_all_caches(&self) {
        self.cache.clear();
        self.parameter_cache.clear();
    }

    /// Applies a notice of the store's change feed (a change committed by any node): drops the cached
    /// copies it names, and tells this node's change subscribers (see [`changes`]).
    pub fn apply_change_notice(&self, notice: &coffer_store::ChangeNotice) {
        use coffer_store::ChangeNotice;
        match notice {
            ChangeNotice::Secret { arn } => self.invalidate_secret(arn),
            ChangeNotice::Parameter { region, name } => self.invalidate_parameter(region, name),
            ChangeNotice::KmsKey { region, key_id } => self.invalidate_kms_key(region, key_id),
            ChangeNotice::Everything => self.invalidate_all_caches(),
        }
        self.publish_notice(notice);
    }
}

impl Service {
    /// Whether storage answers; backs `/readyz`.
    pub async fn check_ready(&self) -> ServiceResult<()> {
        self.store.get_setting("master-key-check").await.map(|_| ()).map_err(ServiceError::from)
    }
}
