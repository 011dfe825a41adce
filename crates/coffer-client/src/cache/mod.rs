//! An application's cache of its secrets and parameters: [`SecretCache`].
//!
//! The rules are the caching agent's (`coffer agent`), so an application gets the same behaviour
//! whether it links this library or talks to the agent:
//!
//! - a value younger than the TTL (default 300 s, at most 3600) is served from memory; past 80 % of its
//!   TTL, a value in use is fetched again in the background, so it is replaced before it expires and a
//!   reader never waits on the server;
//! - an older one is fetched first; when that fails because the source is unavailable (unreachable,
//!   timed out, 5xx, throttled) the cached value is served anyway until `max_stale` past its TTL, and the
//!   error is kept for [`SecretCache::health`];
//! - when the source says no (not found, access denied), the refusal is passed on and the cached value
//!   dropped: a deleted or revoked secret must not outlive its deletion here;
//! - at most `max_entries` values are kept; the least recently used one goes first (the manifest's items
//!   are never evicted).
//!
//! An application usually starts with [`SecretCache::load_manifest`]: one batch read of everything its
//! [`Manifest`] lists, refusing to start — naming every missing required item at once — unless all
//! required ones are there, with defaults for the optional ones. After that, [`SecretCache::value`]
//! answers by the manifest's keys, and a background task keeps those values fresh.
//!
//! In dotenv mode (`COFFER_SOURCE=dotenv:.env`, [`SecretSource::Dotenv`]) the same cache reads a local
//! file instead, so development needs no server: a secret id is looked up as the file's key of that
//! name, else by its last path segment in upper snake case (`whatsapp-saas/mvp/admin-token` is
//! `ADMIN_TOKEN`), and the manifest's items by their keys.
//!
//! Values are [`SecretBytes`] (zeroized when the last reader drops them, redacted in `Debug`); nothing
//! here logs, and [`CacheHealth`] and every error hold names, codes and times, never a value.

mod fetch;
mod health;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use coffer_crypto::{CryptoError, SecretBytes};
use tokio::time::Instant;

use crate::manifest::{ItemKind, Manifest, ManifestError};
use crate::source::{bare_path, below, Loaded, Origin, SecretSource, SourceSpec};
use crate::{ClientError, ResolveOptions};
use fetch::FetchError;
pub use health::{CacheHealth, HealthError, HealthStatus, ItemHealth};

/// The TTL when none is given.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// The longest TTL: a value is read again at least hourly, so a rotation reaches every application
/// within the hour even if no change event does.
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// The longest `max_stale`: a week of an unreachable server.
pub const MAX_STALENESS_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// How the cache behaves. [`Default`]: TTL 300 s, 1,000 entries, served stale up to an hour past the
/// TTL, 10 s per fetch, background refresh on.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// How long a fetched value is served without asking the source again (1 s to [`MAX_TTL`]).
    pub ttl: Duration,
    /// How many values are kept; the least recently used is evicted beyond it (manifest items never are).
    pub max_entries: usize,
    /// How long past its TTL a value is still served while the source is unavailable (up to
    /// [`MAX_STALENESS_LIMIT`]).
    pub max_stale: Duration,
    /// How long one fetch may take before the source counts as unavailable.
    pub fetch_timeout: Duration,
    /// Refresh values in use (and the manifest's) in the background before they expire: a read past 80 %
    /// of the TTL starts one, and a task looks for due values every tenth of the TTL (1 to 30 s). Off,
    /// a value is read again only when a reader finds it expired. The task needs a Tokio runtime when
    /// the cache is built.
    pub background_refresh: bool,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            ttl: DEFAULT_TTL,
            max_entries: 1000,
            max_stale: Duration::from_secs(3600),
            fetch_timeout: Duration::from_secs(10),
            background_refresh: true,
        }
    }
}

impl CacheSettings {
    fn check(&self) -> Result<(), CacheError> {
        if self.ttl < Duration::from_secs(1) || self.ttl > MAX_TTL {
            return Err(CacheError::Settings(format!(
                "the TTL must be between 1 and {} seconds, not {:?}",
                MAX_TTL.as_secs(),
                self.ttl
            )));
        }
        if self.max_entries == 0 {
            return Err(CacheError::Settings("max_entries must be at least 1".into()));
        }
        if self.max_stale > MAX_STALENESS_LIMIT {
            return Err(CacheError::Settings(format!(
                "max_stale must be at most {} seconds, not {:?}",
                MAX_STALENESS_LIMIT.as_secs(),
                self.max_stale
            )));
        }
        if self.fetch_timeout.is_zero() {
            return Err(CacheError::Settings("fetch_timeout must be more than zero".into()));
        }
        Ok(())
    }

    /// When a value in use is fetched again in the background: at 80 % of the TTL.
    fn refresh_after(&self) -> Duration {
        self.ttl.mul_f64(0.8)
    }

    /// How often the background task looks for values to refresh.
    fn tick(&self) -> Duration {
        (self.ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }
}

/// A secret or parameter value: shared by every reader, zeroized when the last one drops it, redacted
/// in `Debug`, readable only through [`expose`](Self::expose).
#[derive(Clone)]
pub struct SecretValue(Arc<SecretBytes>);

impl SecretValue {
    fn new(bytes: SecretBytes) -> SecretValue {
        SecretValue(Arc::new(bytes))
    }

    /// The bytes. Every read of a value goes through here (or [`expose_str`](Self::expose_str)).
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// The value as text; an error for a binary value that is not UTF-8.
    pub fn expose_str(&self) -> Result<&str, CryptoError> {
        self.0.expose_str()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<redacted {} bytes>)", self.0.len())
    }
}

/// Which version of a secret to read: AWSCURRENT unless a stage or a version id is named.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SecretVersion {
    pub version_id: Option<String>,
    pub version_stage: Option<String>,
}

impl SecretVersion {
    pub fn current() -> SecretVersion {
        SecretVersion::default()
    }

    /// The version holding a staging label, such as `AWSPREVIOUS`.
    pub fn stage(stage: impl Into<String>) -> SecretVersion {
        SecretVersion { version_id: None, version_stage: Some(stage.into()) }
    }

    pub fn id(version_id: impl Into<String>) -> SecretVersion {
        SecretVersion { version_id: Some(version_id.into()), version_stage: None }
    }

    fn is_current(&self) -> bool {
        self.version_id.is_none() && self.version_stage.as_deref().is_none_or(|s| s == "AWSCURRENT")
    }
}

/// A secret as read: its identity, version and value.
#[derive(Debug, Clone)]
pub struct CachedSecret {
    pub name: String,
    /// `None` in dotenv mode.
    pub arn: Option<String>,
    pub version_id: Option<String>,
    pub version_stages: Vec<String>,
    /// When this version was created (epoch seconds); `None` in dotenv mode.
    pub created_date: Option<f64>,
    /// The SecretString, or the SecretBinary's bytes when [`binary`](Self::binary).
    pub value: SecretValue,
    pub binary: bool,
    /// Where the value came from (a secret, or a dotenv file's key and line).
    pub origin: Origin,
}

/// A parameter as read (SecureStrings decrypted).
#[derive(Debug, Clone)]
pub struct CachedParameter {
    pub name: String,
    pub arn: Option<String>,
    /// `String`, `StringList` or `SecureString`; `None` in dotenv mode.
    pub parameter_type: Option<String>,
    pub version: Option<i64>,
    pub last_modified_date: Option<f64>,
    pub value: SecretValue,
    pub origin: Origin,
}

/// Why the cache has no value to give.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The source refused: not found, access denied, an invalid request (AWS's code and message).
    #[error("{what}: {code}: {message}")]
    Rejected { what: String, code: String, message: String },
    /// The source is unreachable or failing, and no cached value is young enough to stand in.
    #[error("{what}: {message}")]
    Unavailable { what: String, code: String, message: String },
    /// Required items of the manifest are missing (every one of them is listed).
    #[error(transparent)]
    MissingRequired(MissingRequired),
    /// The key is not an item of the loaded manifest.
    #[error("{0:?} is not a key of the loaded manifest")]
    UnknownKey(String),
    /// The manifest is invalid.
    #[error("{0}")]
    Manifest(String),
    /// The settings are out of range.
    #[error("{0}")]
    Settings(String),
    /// The source could not be set up (endpoint, credentials, `COFFER_SOURCE`).
    #[error("{0}")]
    Source(String),
}

impl CacheError {
    /// Whether the source said the secret or parameter does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CacheError::Rejected { code, .. } if fetch::is_not_found_code(code))
    }

    fn from_fetch(what: String, e: FetchError) -> CacheError {
        match e {
            FetchError::Rejected { code, message } => CacheError::Rejected { what, code, message },
            FetchError::Unavailable { code, message } => CacheError::Unavailable { what, code, message },
        }
    }
}

impl From<ManifestError> for CacheError {
    fn from(e: ManifestError) -> Self {
        CacheError::Manifest(e.to_string())
    }
}

impl From<ClientError> for CacheError {
    fn from(e: ClientError) -> Self {
        CacheError::Source(e.to_string())
    }
}

/// One required item that could not be loaded, and why (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingItem {
    pub key: String,
    pub kind: ItemKind,
    pub name: String,
    pub reason: String,
}

/// The manifest's required items that could not be loaded: the application must not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MissingRequired {
    pub items: Vec<MissingItem>,
}

impl fmt::Display for MissingRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.items.len();
        write!(f, "{n} required item{} missing: ", if n == 1 { " is" } else { "s are" })?;
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} ({} {}: {})", item.key, item.kind, item.name, item.reason)?;
        }
        Ok(())
    }
}

/// What a start with a manifest loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Items read from the source.
    pub loaded: usize,
    /// Optional items that are absent and have a default, by key.
    pub defaults: Vec<String>,
    /// Optional items that are absent without a default, by key.
    pub absent: Vec<String>,
}

/// What [`SecretCache::refresh`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Values read again.
    pub refreshed: usize,
    /// Values the source could not give now (kept, served stale within `max_stale`).
    pub unavailable: usize,
    /// Values the source refused (dropped).
    pub rejected: usize,
}

/// What a cached value answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Secret { id: String, version: SecretVersion },
    Parameter { name: String },
    Path { path: String, recursive: bool },
}

impl CacheKey {
    fn describe(&self) -> String {
        match self {
            CacheKey::Secret { id, version } => match (&version.version_id, &version.version_stage) {
                (Some(v), _) => format!("secret {id} (version {v})"),
                (None, Some(stage)) => format!("secret {id} ({stage})"),
                (None, None) => format!("secret {id}"),
            },
            CacheKey::Parameter { name } => format!("parameter {name}"),
            CacheKey::Path { path, .. } => format!("the values under {path}"),
        }
    }
}

/// A cached answer.
#[derive(Debug, Clone)]
enum Cached {
    Secret(Arc<CachedSecret>),
    Parameter(Arc<CachedParameter>),
    Path(Arc<Loaded>),
    /// An optional manifest item the source refused (usually: it does not exist). Kept like a value, so
    /// an application asking for it on every request does not ask the source every time.
    Absent {
        code: String,
        message: String,
    },
}

struct Entry {
    value: Cached,
    fetched_at: Instant,
    fetched_wall: SystemTime,
    /// Marked by `invalidate`: the next read asks the source; meanwhile the value may still stand in
    /// for an unavailable source.
    invalidated: bool,
    /// A background refresh is under way (so a burst of reads starts one, not many).
    refreshing: bool,
    /// Read since it was fetched: worth refreshing before it expires.
    used: bool,
    /// This entry's place in [`State::lru`]; `None` for manifest items, which are never evicted.
    lru_tick: Option<u64>,
}

impl Entry {
    fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.fetched_at)
    }
}

/// The manifest as loaded: what each key is.
#[derive(Clone)]
struct LoadedItem {
    key: String,
    kind: ItemKind,
    name: String,
    required: bool,
    default: Option<SecretValue>,
    description: Option<String>,
    cache_key: CacheKey,
}

/// An error kept for health: its code and message, never a value.
#[derive(Debug, Clone)]
struct RecordedError {
    code: String,
    message: String,
    what: String,
    at: SystemTime,
}

#[derive(Default)]
struct State {
    entries: HashMap<CacheKey, Entry>,
    /// Use tick -> key, for the entries that may be evicted; the first is the least recently used.
    lru: BTreeMap<u64, CacheKey>,
    tick: u64,
    /// Bumped by every invalidation: a fetch that started before one stores its value as invalidated,
    /// so a change announced while it was in flight is not forgotten.
    epoch: u64,
    manifest: Vec<LoadedItem>,
    /// The manifest's cache keys: never evicted, kept fresh by the background task.
    pinned: HashSet<CacheKey>,
    last_refresh: Option<SystemTime>,
    last_error: Option<RecordedError>,
    /// The error code of each manifest item's last failed read, until it is read again (health says
    /// why an item is not loaded).
    failures: HashMap<CacheKey, String>,
}

impl State {
    /// Moves an evictable entry to the most recently used end.
    fn touch(&mut self, key: &CacheKey) {
        let Some(entry) = self.entries.get_mut(key) else { return };
        let Some(before) = entry.lru_tick else { return };
        self.tick += 1;
        entry.lru_tick = Some(self.tick);
        self.lru.remove(&before);
        self.lru.insert(self.tick, key.clone());
    }

    /// Makes `keys` the never-evicted manifest items; entries that stop being one become evictable.
    fn set_pinned(&mut self, keys: HashSet<CacheKey>) {
        let unpinned: Vec<CacheKey> = self.pinned.difference(&keys).cloned().collect();
        self.pinned = keys;
        for key in unpinned {
            if let Some(entry) = self.entries.get_mut(&key) {
                self.tick += 1;
                entry.lru_tick = Some(self.tick);
                self.lru.insert(self.tick, key);
            }
        }
    }

    fn remove(&mut self, key: &CacheKey) {
        if let Some(entry) = self.entries.remove(key) {
            if let Some(tick) = entry.lru_tick {
                self.lru.remove(&tick);
            }
        }
    }

    fn insert(&mut self, key: CacheKey, mut entry: Entry, max_entries: usize) {
        self.remove(&key);
        if self.pinned.contains(&key) {
            entry.lru_tick = None;
        } else {
            self.tick += 1;
            entry.lru_tick = Some(self.tick);
            self.lru.insert(self.tick, key.clone());
        }
        self.entries.insert(key, entry);
        while self.entries.len() > max_entries {
            let Some((_, oldest)) = self.lru.pop_first() else { break };
            self.entries.remove(&oldest);
        }
    }

    /// Keeps a failure for health — except an optional manifest item's absence, which is expected.
    fn record_error(&mut self, key: &CacheKey, error: &FetchError) {
        // Only the manifest's items: a map of every id ever asked for in vain would only grow.
        if self.pinned.contains(key) {
            self.failures.insert(key.clone(), error.code().to_string());
        }
        if self.is_optional_item(key) && fetch::is_not_found_code(error.code()) {
            return;
        }
        self.last_error = Some(RecordedError {
            code: error.code().to_string(),
            message: error.message().to_string(),
            what: key.describe(),
            at: SystemTime::now(),
        });
    }

    fn is_optional_item(&self, key: &CacheKey) -> bool {
        self.manifest.iter().any(|item| !item.required && item.cache_key == *key)
    }
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale_served: AtomicU64,
    background_refreshes: AtomicU64,
}

struct Shared {
    source: SecretSource,
    settings: CacheSettings,
    state: Mutex<State>,
    counters: Counters,
    refresher: Mutex<Option<tokio::task::AbortHandle>>,
    /// The change-event subscriptions (`watch_changes`), ended with the cache.
    watchers: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(task) = self.refresher.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
        if let Ok(watchers) = self.watchers.get_mut() {
            watchers.drain(..).for_each(|task| task.abort());
        }
    }
}

/// The cache. Cheap to clone: clones share one cache (hand one to every request handler).
#[derive(Clone)]
pub struct SecretCache {
    shared: Arc<Shared>,
}

impl fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretCache")
            .field("source", &self.shared.source.kind())
            .field("location", &self.shared.source.location())
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl SecretCache {
    /// A cache in front of `source`. With `settings.background_refresh` and a Tokio runtime at hand, a
    /// background task keeps values in use fresh; it ends when the last clone of the cache is dropped.
    pub fn new(source: SecretSource, settings: CacheSettings) -> Result<SecretCache, CacheError> {
        settings.check()?;
        let shared = Arc::new(Shared {
            source,
            settings,
            state: Mutex::new(State::default()),
            counters: Counters::default(),
            refresher: Mutex::new(None),
            watchers: Mutex::new(Vec::new()),
        });
        if shared.settings.background_refresh {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let task = runtime.spawn(run_refresher(Arc::downgrade(&shared), shared.settings.tick()));
                *lock(&shared.refresher) = Some(task.abort_handle());
            }
        }
        Ok(SecretCache { shared })
    }

    /// A cache in front of the source `spec` names (the server, resolved from `options`, the environment
    /// and the profiles; or a dotenv file).
    pub fn open(
        spec: &SourceSpec,
        options: &ResolveOptions,
        settings: CacheSettings,
    ) -> Result<SecretCache, CacheError> {
        SecretCache::new(SecretSource::open(spec, options)?, settings)
    }

    /// A cache in front of the source `COFFER_SOURCE` names (`server`, the default, or `dotenv:PATH`),
    /// with the server's endpoint and credentials found as every Coffer and AWS tool finds them.
    pub fn from_env(settings: CacheSettings) -> Result<SecretCache, CacheError> {
        let spec = SourceSpec::from_env().map_err(CacheError::Source)?;
        SecretCache::open(&spec, &ResolveOptions::default(), settings)
    }

    pub fn settings(&self) -> &CacheSettings {
        &self.shared.settings
    }

    pub fn source(&self) -> &SecretSource {
        &self.shared.source
    }

    /// A secret's current (AWSCURRENT) version.
    pub async fn get_secret(&self, id: &str) -> Result<Arc<CachedSecret>, CacheError> {
        self.get_secret_version(id, &SecretVersion::current()).await
    }

    /// A secret's version by staging label or version id.
    pub async fn get_secret_version(&self, id: &str, version: &SecretVersion) -> Result<Arc<CachedSecret>, CacheError> {
        let key = CacheKey::Secret { id: id.to_string(), version: version.clone() };
        match self.shared.get(key).await? {
            Cached::Secret(secret) => Ok(secret),
            _ => Err(kind_mismatch()),
        }
    }

    /// A parameter (SecureStrings decrypted); `name:version` and `name:label` select a version.
    pub async fn get_parameter(&self, name: &str) -> Result<Arc<CachedParameter>, CacheError> {
        match self.shared.get(CacheKey::Parameter { name: name.to_string() }).await? {
            Cached::Parameter(parameter) => Ok(parameter),
            _ => Err(kind_mismatch()),
        }
    }

    /// The secrets and parameters under `path` (direct children, or every level below when
    /// `recursive`), one variable each, named as `coffer exec` names them; in dotenv mode, every key of
    /// the file.
    pub async fn get_path(&self, path: &str, recursive: bool) -> Result<Arc<Loaded>, CacheError> {
        let key = CacheKey::Path { path: format!("/{}", bare_path(path)), recursive };
        match self.shared.get(key).await? {
            Cached::Path(values) => Ok(values),
            _ => Err(kind_mismatch()),
        }
    }

    /// The value of the loaded manifest's item `key`: from the cache, else from the source. An optional
    /// item the source cannot give (it does not exist, may not be read, or the source is unavailable and
    /// nothing is cached) answers its default, or `None` without one.
    pub async fn value(&self, key: &str) -> Result<Option<SecretValue>, CacheError> {
        let (cache_key, required, default) = {
            let state = self.shared.lock();
            let item =
                state.manifest.iter().find(|i| i.key == key).ok_or_else(|| CacheError::UnknownKey(key.into()))?;
            (item.cache_key.clone(), item.required, item.default.clone())
        };
        match self.shared.get(cache_key).await {
            Ok(Cached::Secret(secret)) => Ok(Some(secret.value.clone())),
            Ok(Cached::Parameter(parameter)) => Ok(Some(parameter.value.clone())),
            Ok(_) => Err(kind_mismatch()),
            // The application declared it can run without this item: absent, refused or unreachable with
            // nothing cached, the default answers.
            Err(_) if !required => Ok(default),
            Err(e) => Err(e),
        }
    }

    /// Loads everything `manifest` lists in one batch (BatchGetSecretValue and GetParameters where the
    /// caller may use them), remembers the manifest for [`value`](Self::value) and [`health`](Self::health),
    /// and keeps its items fresh from then on. Fails — listing every missing required item, never a value
    /// — unless every required item could be read; an optional one that cannot be read is absent, and its
    /// default (if any) answers for it.
    pub async fn load_manifest(&self, manifest: &Manifest) -> Result<LoadReport, CacheError> {
        manifest.check("given")?;
        manifest.check_unique_keys("given")?;
        let dotenv_mode = matches!(self.shared.source, SecretSource::Dotenv(_));
        let mut items: Vec<LoadedItem> = Vec::new();
        for (kind, item) in manifest.items() {
            let key = item.key();
            if items.iter().any(|i| i.key == key) {
                continue;
            }
            // In dotenv mode an item is the file's key; on the server, its name.
            let id = if dotenv_mode { key.clone() } else { item.name.clone() };
            let cache_key = match kind {
                ItemKind::Secret => CacheKey::Secret { id, version: SecretVersion::current() },
                ItemKind::Parameter => CacheKey::Parameter { name: id },
            };
            items.push(LoadedItem {
                key,
                kind,
                name: item.name.clone(),
                required: item.required,
                default: item.default.as_ref().map(|d| SecretValue::new(d.0.clone())),
                description: item.description.clone(),
                cache_key,
            });
        }
        let ids = |kind: ItemKind| -> Vec<String> {
            items
                .iter()
                .filter(|i| i.kind == kind)
                .filter_map(|i| match &i.cache_key {
                    CacheKey::Secret { id, .. } => Some(id.clone()),
                    CacheKey::Parameter { name } => Some(name.clone()),
                    CacheKey::Path { .. } => None,
                })
                .collect()
        };
        let epoch = self.shared.lock().epoch;
        let timeout = self.shared.settings.fetch_timeout;
        let source = &self.shared.source;
        let secret_ids = ids(ItemKind::Secret);
        let parameter_names = ids(ItemKind::Parameter);
        // The batch as a whole gets a few fetches' time: it is many requests when read one by one.
        let batch_timeout = timeout * 3;
        let unavailable = |what: &str| FetchError::Unavailable {
            code: "Timeout".into(),
            message: format!("{} did not answer within {} s", what, batch_timeout.as_secs()),
        };
        let mut secrets = match tokio::time::timeout(batch_timeout, fetch::secrets(source, &secret_ids)).await {
            Ok(answers) => answers,
            Err(_) => secret_ids.iter().map(|id| (id.clone(), Err(unavailable(&source.location())))).collect(),
        };
        let mut parameters =
            match tokio::time::timeout(batch_timeout, fetch::parameters(source, &parameter_names)).await {
                Ok(answers) => answers,
                Err(_) => parameter_names.iter().map(|n| (n.clone(), Err(unavailable(&source.location())))).collect(),
            };

        let mut report = LoadReport::default();
        let mut missing = Vec::new();
        let mut state = self.shared.lock();
        state.set_pinned(items.iter().map(|i| i.cache_key.clone()).collect());
        // Installed first, so the items' kinds (optional or not) apply to what is recorded below; kept
        // even when the start fails, so health shows what is missing.
        state.manifest = items.clone();
        for LoadedItem { key, kind, name, required, default, cache_key, .. } in items {
            let answer: Result<Cached, FetchError> = match &cache_key {
                CacheKey::Secret { id, .. } => secrets.remove(id).map(|r| r.map(Cached::Secret)),
                CacheKey::Parameter { name } => parameters.remove(name).map(|r| r.map(Cached::Parameter)),
                CacheKey::Path { .. } => None,
            }
            .unwrap_or_else(|| Err(FetchError::Unavailable { code: "NotRead".into(), message: "not read".into() }));
            match answer {
                Ok(value) => {
                    report.loaded += 1;
                    self.shared.store_locked(&mut state, cache_key, value, epoch, false);
                }
                Err(error) => {
                    state.record_error(&cache_key, &error);
                    if required {
                        missing.push(MissingItem { key, kind, name, reason: reason(&error) });
                    } else {
                        if default.is_some() {
                            report.defaults.push(key);
                        } else {
                            report.absent.push(key);
                        }
                        if let FetchError::Rejected { code, message } = error {
                            let absent = Cached::Absent { code, message };
                            self.shared.store_locked(&mut state, cache_key, absent, epoch, false);
                        }
                    }
                }
            }
        }
        drop(state);
        if missing.is_empty() {
            Ok(report)
        } else {
            Err(CacheError::MissingRequired(MissingRequired { items: missing }))
        }
    }

    /// Reads every cached value (and every manifest item) from the source again, now. Failures are kept
    /// for [`health`](Self::health); an unavailable source leaves the cached values standing in.
    pub async fn refresh(&self) -> RefreshReport {
        let keys: Vec<CacheKey> = {
            let state = self.shared.lock();
            let mut keys: Vec<CacheKey> = state.entries.keys().cloned().collect();
            for item in &state.manifest {
                if !state.entries.contains_key(&item.cache_key) {
                    keys.push(item.cache_key.clone());
                }
            }
            keys
        };
        let mut report = RefreshReport::default();
        for key in keys {
            match self.shared.refresh_one(key, false).await {
                Ok(()) => report.refreshed += 1,
                Err(FetchError::Unavailable { .. }) => report.unavailable += 1,
                Err(FetchError::Rejected { .. }) => report.rejected += 1,
            }
        }
        report
    }

    /// Marks what is cached for the secret or parameter `id` (a name or ARN; any version) and for the
    /// paths holding it as changed: the next read asks the source. Until then nothing is fetched, and if
    /// the source is unavailable then, the old value still stands in (within `max_stale`). For change
    /// events; answers how many cached values were marked.
    pub fn invalidate(&self, id: &str) -> usize {
        let mut state = self.shared.lock();
        state.epoch += 1;
        // The id's names: as given, and the names of the cached secrets it is the ARN of.
        let mut names: Vec<String> = vec![id.to_string()];
        for entry in state.entries.values() {
            if let Cached::Secret(secret) = &entry.value {
                if secret.arn.as_deref() == Some(id) {
                    names.push(secret.name.clone());
                }
            }
        }
        let mut marked = 0;
        for (key, entry) in state.entries.iter_mut() {
            let hit = match (key, &entry.value) {
                (CacheKey::Secret { id: cached_id, .. }, value) => {
                    names.contains(cached_id)
                        || matches!(value, Cached::Secret(s) if names.contains(&s.name) || s.arn.as_deref() == Some(id))
                }
                (CacheKey::Parameter { name }, value) => {
                    let base = name.split(':').next().unwrap_or(name);
                    names.iter().any(|n| n == name || n == base)
                        || matches!(value, Cached::Parameter(p) if names.contains(&p.name))
                }
                (CacheKey::Path { path, recursive }, _) => {
                    names.iter().any(|n| below(n, bare_path(path), *recursive).is_some())
                }
            };
            if hit && !entry.invalidated {
                entry.invalidated = true;
                marked += 1;
            }
        }
        marked
    }

    /// Subscribes to the server's change events for `request` (`CofferEvents.WaitForChanges`) and
    /// marks what a change names as changed, so the next read fetches the new value — within
    /// milliseconds of a put or a rotation on the server, instead of at the end of the TTL. A reset
    /// (changes may have been missed) marks everything. The task ends when the last clone of the cache
    /// is dropped; `None` for a dotenv source or without a Tokio runtime. Subscribe before
    /// [`load_manifest`](Self::load_manifest) so no change slips between the load and the subscription.
    pub fn watch_changes(&self, request: crate::events::WatchRequest) -> Option<tokio::task::JoinHandle<()>> {
        let SecretSource::Server { secrets, .. } = &self.shared.source else { return None };
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let client = crate::Client::new(secrets.config().clone()).ok()?;
        let mut subscription = crate::events::ChangeSubscription::new(Arc::new(client), request);
        let cache = Arc::downgrade(&self.shared);
        let task = runtime.spawn(async move {
            loop {
                // Dropping the cache aborts this task (see `Shared`'s drop), even mid-poll.
                let heard = subscription.next().await;
                let Some(shared) = cache.upgrade() else { return };
                let cache = SecretCache { shared };
                match heard {
                    Ok(crate::events::Notification::Changes(changes)) => {
                        for change in &changes {
                            cache.invalidate(&change.name);
                            cache.invalidate(&change.arn);
                        }
                    }
                    Ok(crate::events::Notification::Reset) => {
                        cache.invalidate_all();
                    }
                    // The subscription backs off before its next poll; the TTL still bounds staleness.
                    Err(_) => {}
                }
            }
        });
        lock(&self.shared.watchers).push(task.abort_handle());
        Some(task)
    }

    /// Marks every cached value as changed (see [`invalidate`](Self::invalidate)), as after a lost
    /// connection to a change feed. Answers how many were marked.
    pub fn invalidate_all(&self) -> usize {
        let mut state = self.shared.lock();
        state.epoch += 1;
        let mut marked = 0;
        for entry in state.entries.values_mut() {
            if !entry.invalidated {
                entry.invalidated = true;
                marked += 1;
            }
        }
        marked
    }

    /// The cache's state for an application's `/healthz`: where values come from, how many are loaded,
    /// whether every required item is, their ages, what expired, the last refresh and error, and each
    /// manifest item — names, counts and times only, never a value.
    pub fn health(&self) -> CacheHealth {
        health::report(&self.shared)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here panics while holding a lock in a way that leaves the state half-changed, so a
    // poisoned lock is still usable.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A key's kind decides its value's (a secret key holds a secret): a mismatch is a bug, reported
/// rather than panicked on.
fn kind_mismatch() -> CacheError {
    CacheError::Source("the cache held a different kind of value under this key".into())
}

/// Why an item could not be read, for the missing-items error: "not found", or the code and message.
fn reason(error: &FetchError) -> String {
    match error {
        FetchError::Rejected { code, .. } if fetch::is_not_found_code(code) => "not found".to_string(),
        FetchError::Rejected { code, message } => format!("{code}: {message}"),
        FetchError::Unavailable { message, .. } => format!("unavailable: {message}"),
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The value for `key`: fresh from the cache, else from the source, else (source unavailable) stale
    /// from the cache within `max_stale`.
    async fn get(self: &Arc<Self>, key: CacheKey) -> Result<Cached, CacheError> {
        let refresh_after = self.settings.refresh_after();
        {
            let mut state = self.lock();
            let now = Instant::now();
            if let Some(entry) = state.entries.get_mut(&key) {
                let age = entry.age(now);
                if !entry.invalidated && age < self.settings.ttl {
                    entry.used = true;
                    let value = entry.value.clone();
                    if self.settings.background_refresh && age >= refresh_after && !entry.refreshing {
                        entry.refreshing = true;
                        self.spawn_refresh(key.clone());
                    }
                    state.touch(&key);
                    drop(state);
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    return match value {
                        Cached::Absent { code, message } => {
                            Err(CacheError::Rejected { what: key.describe(), code, message })
                        }
                        value => Ok(value),
                    };
                }
            }
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        match self.fetch_and_store(&key).await {
            Ok(value) => match value {
                Cached::Absent { code, message } => Err(CacheError::Rejected { what: key.describe(), code, message }),
                value => Ok(value),
            },
            Err(e) => Err(CacheError::from_fetch(key.describe(), e)),
        }
    }

    async fn fetch(&self, key: &CacheKey) -> Result<Cached, FetchError> {
        let source = &self.source;
        let read = async {
            Ok(match key {
                CacheKey::Secret { id, version } => Cached::Secret(Arc::new(fetch::secret(source, id, version).await?)),
                CacheKey::Parameter { name } => Cached::Parameter(Arc::new(fetch::parameter(source, name).await?)),
                CacheKey::Path { path, recursive } => {
                    Cached::Path(Arc::new(fetch::path(source, path, *recursive).await?))
                }
            })
        };
        match tokio::time::timeout(self.settings.fetch_timeout, read).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Unavailable {
                code: "Timeout".into(),
                message: format!(
                    "{} did not answer within {} s",
                    self.source.location(),
                    self.settings.fetch_timeout.as_secs_f64()
                ),
            }),
        }
    }

    /// Fetches `key` for a reader and keeps the answer; on failure, falls back as the rules say.
    async fn fetch_and_store(&self, key: &CacheKey) -> Result<Cached, FetchError> {
        let epoch = self.lock().epoch;
        match self.fetch(key).await {
            Ok(value) => {
                let mut state = self.lock();
                self.store_locked(&mut state, key.clone(), value.clone(), epoch, true);
                Ok(value)
            }
            Err(error) => self.fall_back(key, error, epoch),
        }
    }

    /// After a failed fetch: a refusal drops the cached value (an optional manifest item becomes absent);
    /// an unavailable source is answered by the cached value while it is within `max_stale`.
    fn fall_back(&self, key: &CacheKey, error: FetchError, epoch: u64) -> Result<Cached, FetchError> {
        let mut state = self.lock();
        state.record_error(key, &error);
        match &error {
            FetchError::Rejected { code, message } => {
                if state.is_optional_item(key) {
                    let absent = Cached::Absent { code: code.clone(), message: message.clone() };
                    self.store_locked(&mut state, key.clone(), absent, epoch, false);
                } else {
                    state.remove(key);
                }
                Err(error)
            }
            FetchError::Unavailable { .. } => {
                let servable_for = self.settings.ttl + self.settings.max_stale;
                let now = Instant::now();
                let stale = match state.entries.get_mut(key) {
                    Some(entry) if entry.age(now) <= servable_for => {
                        entry.refreshing = false;
                        Some(entry.value.clone())
                    }
                    _ => None,
                };
                match stale {
                    Some(value) => {
                        state.touch(key);
                        drop(state);
                        self.counters.stale_served.fetch_add(1, Ordering::Relaxed);
                        Ok(value)
                    }
                    None => {
                        state.remove(key);
                        Err(error)
                    }
                }
            }
        }
    }

    /// Keeps a freshly fetched value. One fetched before an invalidation that happened while it was in
    /// flight is kept as invalidated (it may still stand in for an unavailable source).
    fn store_locked(&self, state: &mut State, key: CacheKey, value: Cached, epoch: u64, used: bool) {
        let now_wall = SystemTime::now();
        if !matches!(value, Cached::Absent { .. }) {
            state.last_refresh = Some(now_wall);
            state.failures.remove(&key);
        }
        let entry = Entry {
            value,
            fetched_at: Instant::now(),
            fetched_wall: now_wall,
            invalidated: state.epoch != epoch,
            refreshing: false,
            used,
            lru_tick: None,
        };
        state.insert(key, entry, self.settings.max_entries);
    }

    /// Reads `key` again for the background task or [`SecretCache::refresh`]. A background refresh
    /// (`only_if_cached`) does not bring back a value evicted or dropped while it ran (a manifest item
    /// it does). The refreshed value counts as unused until it is read, so a value nobody reads any more
    /// is refreshed once and then left to expire.
    async fn refresh_one(&self, key: CacheKey, only_if_cached: bool) -> Result<(), FetchError> {
        let epoch = self.lock().epoch;
        match self.fetch(&key).await {
            Ok(value) => {
                let mut state = self.lock();
                if only_if_cached && !state.entries.contains_key(&key) && !state.pinned.contains(&key) {
                    return Ok(());
                }
                self.store_locked(&mut state, key, value, epoch, false);
                Ok(())
            }
            Err(error) => {
                // Whether a cached value stands in matters to readers, not to the refresh: it failed.
                let _ = self.fall_back(&key, error.clone(), epoch);
                Err(error)
            }
        }
    }

    fn spawn_refresh(self: &Arc<Self>, key: CacheKey) {
        let shared = self.clone();
        tokio::spawn(async move {
            shared.counters.background_refreshes.fetch_add(1, Ordering::Relaxed);
            let _ = shared.refresh_one(key, true).await;
        });
    }

    /// One pass of the background task: drops what can no longer be served, and refreshes manifest items
    /// and values in use that are near their TTL (or marked changed, or already stale).
    async fn refresh_due(&self) {
        let due: Vec<CacheKey> = {
            let mut state = self.lock();
            let now = Instant::now();
            let servable_for = self.settings.ttl + self.settings.max_stale;
            let unservable: Vec<CacheKey> =
                state.entries.iter().filter(|(_, e)| e.age(now) > servable_for).map(|(k, _)| k.clone()).collect();
            for key in &unservable {
                state.remove(key);
            }
            let refresh_after = self.settings.refresh_after();
            let pinned = state.pinned.clone();
            let mut due: Vec<CacheKey> = Vec::new();
            for (key, entry) in state.entries.iter_mut() {
                let wanted = pinned.contains(key) || entry.used;
                if wanted && !entry.refreshing && (entry.invalidated || entry.age(now) >= refresh_after) {
                    entry.refreshing = true;
                    due.push(key.clone());
                }
            }
            // A required item dropped after a refusal is looked for again, so it comes back once it exists.
            for item in &state.manifest {
                if !state.entries.contains_key(&item.cache_key) {
                    due.push(item.cache_key.clone());
                }
            }
            due
        };
        for key in due {
            self.counters.background_refreshes.fetch_add(1, Ordering::Relaxed);
            let _ = self.refresh_one(key, true).await;
        }
    }
}

async fn run_refresher(shared: Weak<Shared>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else { return };
        shared.refresh_due().await;
    }
}

#[cfg(test)]
mod tests;
