//! The agent's cache: answers by (kind, id, version), a TTL, a least-recently-used bound, background
//! refresh of hot entries and stale-on-error.
//!
//! What an entry holds is the upstream answer's JSON body, exactly as the agent sends it, in a
//! [`SecretBytes`] (zeroized when the last response using it is gone). A hit builds no JSON and copies
//! nothing: the response body shares the entry's buffer.
//!
//! Freshness rules:
//! - younger than the TTL: served; past 80 % of the TTL the first request also starts a background
//!   refresh, so a value in use is replaced before it expires and never waits on the server;
//! - older (or loaded from a snapshot, or `refreshNow=true`): fetched from the server first;
//! - when that fetch fails for a reason that is the server's (unreachable, timed out, 5xx), the cached
//!   value is served anyway until `max_stale` past its TTL, and the error is kept for `/health`;
//! - when the server says no (4xx: not found, access denied), the answer is passed on and the entry
//!   dropped: a deleted or revoked secret must not outlive its deletion here;
//! - when the server reports a change of the record (see `events`), the entry is invalidated — no
//!   longer a hit, still a stale stand-in while the server is unavailable — and refetched at once, so
//!   the next request is answered with the new value. A fetch that began before the change was heard
//!   may carry the old value: its answer neither clears the invalidation nor replaces a later fetch's.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use coffer_client::{Client, ClientError};
use coffer_crypto::SecretBytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

/// How long one upstream call may take before it counts as the server being unavailable: long enough
/// for a loaded server, short enough that a stale value still answers an application in time.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// What a cached answer answers.
#[derive(Debug, Clone, Hash, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum CacheKey {
    Secret { id: String, version_id: Option<String>, version_stage: Option<String> },
    Parameter { name: String, with_decryption: bool },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub ttl: Duration,
    pub max_entries: usize,
    pub max_stale: Duration,
}

/// Why the server gave no value.
#[derive(Debug, Clone)]
pub enum FetchError {
    /// The server refused (4xx): passed on to the caller; the entry is dropped.
    Rejected { status: u16, code: String, message: String },
    /// The server could not be reached, timed out or failed (5xx): a cached value may stand in.
    Unavailable { status: u16, code: String, message: String },
}

impl FetchError {
    pub fn status(&self) -> u16 {
        match self {
            FetchError::Rejected { status, .. } | FetchError::Unavailable { status, .. } => *status,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            FetchError::Rejected { code, .. } | FetchError::Unavailable { code, .. } => code,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            FetchError::Rejected { message, .. } | FetchError::Unavailable { message, .. } => message,
        }
    }

    /// Sorts a client error. Messages are the server's or the transport's: they name secrets and
    /// endpoints, never values.
    fn from_client(e: ClientError) -> FetchError {
        match e {
            ClientError::Api { status, code, message, .. } if status < 500 => {
                FetchError::Rejected { status, code, message }
            }
            ClientError::Api { status, code, message, .. } => FetchError::Unavailable { status, code, message },
            e @ ClientError::Transport { .. } => {
                FetchError::Unavailable { status: 502, code: "ServiceUnavailable".into(), message: e.to_string() }
            }
            // A decoding error's text can quote the answer it choked on, which may hold a value: not kept.
            ClientError::Decode(_) => FetchError::Unavailable {
                status: 502,
                code: "InternalFailure".into(),
                message: "the server's answer is not a valid response to the request".into(),
            },
            e @ ClientError::Config(_) => {
                FetchError::Unavailable { status: 502, code: "InternalFailure".into(), message: e.to_string() }
            }
        }
    }
}

type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<SecretBytes, FetchError>> + Send + 'a>>;

/// Where values come from: the Coffer server, or a fake in unit tests.
pub trait Upstream: Send + Sync + 'static {
    /// The JSON body to answer `key` with.
    fn fetch<'a>(&'a self, key: &'a CacheKey) -> FetchFuture<'a>;
}

/// The Coffer server, through the signing clients of both services.
pub struct CofferUpstream {
    pub secrets: Client,
    pub parameters: Client,
}

impl Upstream for CofferUpstream {
    fn fetch<'a>(&'a self, key: &'a CacheKey) -> FetchFuture<'a> {
        Box::pin(async move {
            match key {
                CacheKey::Secret { id, version_id, version_stage } => {
                    use coffer_wire::secretsmanager::{GetSecretValueRequest, GetSecretValueResponse, SERVICE};
                    let req = GetSecretValueRequest {
                        secret_id: id.clone(),
                        version_id: version_id.clone(),
                        version_stage: version_stage.clone(),
                    };
                    let resp: GetSecretValueResponse = self
                        .secrets
                        .call(SERVICE, "secretsmanager.GetSecretValue", &req)
                        .await
                        .map_err(FetchError::from_client)?;
                    to_body(&resp)
                }
                CacheKey::Parameter { name, with_decryption } => {
                    use coffer_wire::ssm::{GetParameterRequest, GetParameterResponse, SERVICE};
                    let req = GetParameterRequest { name: name.clone(), with_decryption: Some(*with_decryption) };
                    let resp: GetParameterResponse = self
                        .parameters
                        .call(SERVICE, "AmazonSSM.GetParameter", &req)
                        .await
                        .map_err(FetchError::from_client)?;
                    to_body(&resp)
                }
            }
        })
    }
}

/// Serializes an answer straight into a buffer sized for it, so the value is not left behind in the
/// freed copies a growing buffer would make.
fn to_body<T: Serialize>(resp: &T) -> Result<SecretBytes, FetchError> {
    let mut buf = Vec::with_capacity(16 * 1024);
    serde_json::to_writer(&mut buf, resp).map_err(|e| FetchError::Unavailable {
        status: 502,
        code: "InternalFailure".into(),
        message: format!("encoding the answer: {e}"),
    })?;
    Ok(SecretBytes::new(buf))
}

/// How an answer was obtained (the `X-Coffer-Cache` response header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// From the cache, within its TTL.
    Hit,
    /// Just fetched from the server.
    Fetched,
    /// From the cache past its TTL (or from a snapshot) because the server is unavailable.
    Stale,
}

impl Freshness {
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Hit => "hit",
            Freshness::Fetched => "miss",
            Freshness::Stale => "stale",
        }
    }
}

pub struct Served {
    pub body: Arc<SecretBytes>,
    pub freshness: Freshness,
}

struct Entry {
    body: Arc<SecretBytes>,
    fetched_at: Instant,
    fetched_wall: SystemTime,
    /// Loaded from the snapshot and not fetched since: served only when the server is unavailable.
    from_snapshot: bool,
    /// A background refresh is under way (so a burst of requests starts one, not many).
    refreshing: bool,
    /// This entry's position in [`Inner::lru`].
    used: u64,
    /// Set (to the [`Inner::changes_heard`] count) when a change of the record was heard after this
    /// answer's fetch began: the answer may be the replaced value, so it is no longer a hit.
    invalidated_at: Option<u64>,
    /// [`Inner::changes_heard`] when this answer's fetch began.
    fetch_started: u64,
}

/// An error kept for `/health`: its code and message, never a value.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedError {
    pub code: String,
    pub message: String,
    pub status: u16,
    #[serde(skip)]
    pub at: SystemTime,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<CacheKey, Entry>,
    /// Use counter -> key; the first is the least recently used.
    lru: BTreeMap<u64, CacheKey>,
    clock: u64,
    last_refresh: Option<SystemTime>,
    last_error: Option<RecordedError>,
    /// How many change reports have invalidated entries: fetches are ordered against them.
    changes_heard: u64,
}

impl Inner {
    fn touch(&mut self, key: &CacheKey) {
        self.clock += 1;
        let now = self.clock;
        if let Some(entry) = self.entries.get_mut(key) {
            let before = std::mem::replace(&mut entry.used, now);
            let key = self.lru.remove(&before).unwrap_or_else(|| key.clone());
            self.lru.insert(now, key);
        }
    }

    fn remove(&mut self, key: &CacheKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.lru.remove(&entry.used);
        }
    }

    fn insert(&mut self, key: CacheKey, mut entry: Entry, max_entries: usize) {
        self.remove(&key);
        self.clock += 1;
        entry.used = self.clock;
        self.lru.insert(self.clock, key.clone());
        self.entries.insert(key, entry);
        while self.entries.len() > max_entries {
            let Some((_, oldest)) = self.lru.pop_first() else { break };
            self.entries.remove(&oldest);
        }
    }
}

/// Counters for `/health`.
#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale_served: AtomicU64,
    refreshes: AtomicU64,
}

pub struct Cache {
    settings: Settings,
    upstream: Arc<dyn Upstream>,
    endpoint: String,
    inner: Mutex<Inner>,
    counters: Counters,
    /// Woken after each successful fetch when a snapshot is kept.
    snapshot_writer: OnceLock<Arc<Notify>>,
    /// Bumped when an answer for a new key is cached: the change subscription then asks for it too.
    keys_added: watch::Sender<u64>,
}

/// One cached answer as the snapshot stores it.
#[derive(Debug)]
pub struct SnapshotEntry {
    pub key: CacheKey,
    pub fetched_wall: SystemTime,
    pub body: Arc<SecretBytes>,
}

/// What `/health` shows.
#[derive(Debug, Serialize)]
pub struct Health {
    pub endpoint: String,
    /// Where the cached values come from: `server`, `snapshot` (loaded at start, not yet fetched again),
    /// `server+snapshot`, or `empty`.
    pub source: &'static str,
    pub entries: usize,
    pub entries_from_snapshot: usize,
    pub oldest_entry_age_seconds: Option<f64>,
    pub newest_entry_age_seconds: Option<f64>,
    pub ttl_seconds: u64,
    pub max_stale_seconds: u64,
    pub last_refresh: Option<String>,
    pub last_error: Option<HealthError>,
    pub hits: u64,
    pub misses: u64,
    pub stale_served: u64,
    pub background_refreshes: u64,
}

#[derive(Debug, Serialize)]
pub struct HealthError {
    pub code: String,
    pub message: String,
    pub status: u16,
    pub at: Option<String>,
}

pub(super) fn rfc3339(t: SystemTime) -> Option<String> {
    time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).ok()
}

impl Cache {
    pub fn new(settings: Settings, upstream: Arc<dyn Upstream>, endpoint: String) -> Arc<Cache> {
        Arc::new(Cache {
            settings,
            upstream,
            endpoint,
            inner: Mutex::new(Inner::default()),
            counters: Counters::default(),
            snapshot_writer: OnceLock::new(),
            keys_added: watch::Sender::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (no multi-step invariant spans an
        // await or a call out), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_snapshot_writer(&self, writer: Arc<Notify>) {
        let _ = self.snapshot_writer.set(writer);
    }

    /// The answer for `key`: from the cache when fresh (unless `refresh_now`), else from the server,
    /// else (server unavailable) from the cache while within `max_stale`.
    pub async fn get(self: &Arc<Self>, key: CacheKey, refresh_now: bool) -> Result<Served, FetchError> {
        if !refresh_now {
            let mut inner = self.lock();
            if let Some(entry) = inner.entries.get_mut(&key) {
                let age = entry.fetched_at.elapsed();
                if !entry.from_snapshot && entry.invalidated_at.is_none() && age < self.settings.ttl {
                    let body = entry.body.clone();
                    if age >= self.refresh_after() && !entry.refreshing {
                        entry.refreshing = true;
                        self.spawn_refresh(key.clone());
                    }
                    inner.touch(&key);
                    drop(inner);
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Served { body, freshness: Freshness::Hit });
                }
            }
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let started = self.lock().changes_heard;
        match self.fetch(&key).await {
            Ok(body) => {
                let body = Arc::new(body);
                self.store(key, body.clone(), true, started);
                Ok(Served { body, freshness: Freshness::Fetched })
            }
            Err(e) => self.fall_back(&key, e),
        }
    }

    /// When a fresh entry's first use starts a background refresh: at 80 % of the TTL.
    fn refresh_after(&self) -> Duration {
        self.settings.ttl.mul_f64(0.8)
    }

    async fn fetch(&self, key: &CacheKey) -> Result<SecretBytes, FetchError> {
        match tokio::time::timeout(UPSTREAM_TIMEOUT, self.upstream.fetch(key)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Unavailable {
                status: 504,
                code: "ServiceUnavailable".into(),
                message: format!("{} did not answer within {} s", self.endpoint, UPSTREAM_TIMEOUT.as_secs()),
            }),
        }
    }

    /// After a failed fetch: the stale value if the failure is the server's and one is still
    /// servable, else the error (and a refusal drops the entry).
    fn fall_back(&self, key: &CacheKey, error: FetchError) -> Result<Served, FetchError> {
        let mut inner = self.lock();
        inner.last_error = Some(RecordedError {
            code: error.code().to_string(),
            message: error.message().to_string(),
            status: error.status(),
            at: SystemTime::now(),
        });
        match &error {
            FetchError::Rejected { .. } => {
                inner.remove(key);
                Err(error)
            }
            FetchError::Unavailable { .. } => {
                let servable_for = self.settings.ttl + self.settings.max_stale;
                let stale = inner
                    .entries
                    .get(key)
                    .filter(|entry| entry.fetched_at.elapsed() <= servable_for)
                    .map(|entry| entry.body.clone());
                match stale {
                    Some(body) => {
                        inner.touch(key);
                        drop(inner);
                        self.counters.stale_served.fetch_add(1, Ordering::Relaxed);
                        Ok(Served { body, freshness: Freshness::Stale })
                    }
                    None => {
                        inner.remove(key);
                        Err(error)
                    }
                }
            }
        }
    }

    /// Keeps a freshly fetched answer whose fetch began when `started` changes had been heard. A
    /// background refresh (`insert_if_absent == false`) does not bring back an entry evicted or dropped
    /// while it ran; an answer whose fetch began before the cached one's does not replace it.
    fn store(&self, key: CacheKey, body: Arc<SecretBytes>, insert_if_absent: bool, started: u64) {
        let now_wall = SystemTime::now();
        let new_key = {
            let mut inner = self.lock();
            inner.last_refresh = Some(now_wall);
            let existing = inner.entries.get(&key).map(|e| (e.fetch_started, e.invalidated_at));
            if !insert_if_absent && existing.is_none() {
                return;
            }
            if existing.is_some_and(|(fetch_started, _)| fetch_started > started) {
                return;
            }
            let entry = Entry {
                body,
                fetched_at: Instant::now(),
                fetched_wall: now_wall,
                from_snapshot: false,
                refreshing: false,
                used: 0,
                invalidated_at: existing.and_then(|(_, at)| at).filter(|at| *at > started),
                fetch_started: started,
            };
            inner.insert(key, entry, self.settings.max_entries);
            existing.is_none()
        };
        if new_key {
            self.keys_added.send_modify(|n| *n = n.wrapping_add(1));
        }
        if let Some(writer) = self.snapshot_writer.get() {
            writer.notify_one();
        }
    }

    fn spawn_refresh(self: &Arc<Self>, key: CacheKey) {
        let cache = self.clone();
        tokio::spawn(async move {
            cache.counters.refreshes.fetch_add(1, Ordering::Relaxed);
            let started = cache.lock().changes_heard;
            match cache.fetch(&key).await {
                Ok(body) => cache.store(key, Arc::new(body), false, started),
                Err(error) => {
                    let mut inner = cache.lock();
                    inner.last_error = Some(RecordedError {
                        code: error.code().to_string(),
                        message: error.message().to_string(),
                        status: error.status(),
                        at: SystemTime::now(),
                    });
                    match error {
                        FetchError::Rejected { .. } => inner.remove(&key),
                        // Kept: served until its TTL, then stale while the server stays unavailable.
                        FetchError::Unavailable { .. } => {
                            if let Some(entry) = inner.entries.get_mut(&key) {
                                entry.refreshing = false;
                            }
                        }
                    }
                }
            }
        });
    }

    /// Takes in the entries of a snapshot; they are served only when the server is unavailable (and only
    /// within `max_stale` past their TTL, counted from when they were fetched). Answers how many.
    pub fn load_snapshot(&self, entries: Vec<SnapshotEntry>) -> usize {
        let servable_for = self.settings.ttl + self.settings.max_stale;
        let now_wall = SystemTime::now();
        let now = Instant::now();
        let mut inner = self.lock();
        let mut loaded = 0;
        for e in entries {
            let Ok(age) = now_wall.duration_since(e.fetched_wall) else { continue };
            if age > servable_for {
                continue;
            }
            let Some(fetched_at) = now.checked_sub(age) else { continue };
            let entry = Entry {
                body: e.body,
                fetched_at,
                fetched_wall: e.fetched_wall,
                from_snapshot: true,
                refreshing: false,
                used: 0,
                invalidated_at: None,
                fetch_started: 0,
            };
            inner.insert(e.key, entry, self.settings.max_entries);
            loaded += 1;
        }
        loaded
    }

    /// A change of the records `concerns` picks was reported: their entries stop being hits and are
    /// refetched now, so the next request gets the new value without waiting on the server. Answers
    /// how many entries were invalidated.
    pub fn invalidate(self: &Arc<Self>, concerns: impl Fn(&CacheKey) -> bool) -> usize {
        let keys: Vec<CacheKey> = {
            let mut inner = self.lock();
            inner.changes_heard += 1;
            let heard = inner.changes_heard;
            let mut keys = Vec::new();
            for (key, entry) in inner.entries.iter_mut().filter(|(key, _)| concerns(key)) {
                entry.invalidated_at = Some(heard);
                entry.refreshing = true;
                keys.push(key.clone());
            }
            keys
        };
        let count = keys.len();
        for key in keys {
            self.spawn_refresh(key);
        }
        count
    }

    /// Changes may have been missed: every entry stops being a hit (each is fetched again when next
    /// asked for; refetching all of them at once could be a burst of a million requests).
    pub fn invalidate_all(&self) {
        let mut inner = self.lock();
        inner.changes_heard += 1;
        let heard = inner.changes_heard;
        for entry in inner.entries.values_mut() {
            entry.invalidated_at = Some(heard);
        }
    }

    /// The distinct secret ids and parameter names the cache holds answers for — what to watch — the
    /// most recently used first, at most `max_ids` of each and `max_bytes` of ids in all (a request
    /// the server can take; entries beyond are left to their TTL).
    pub fn watched_ids(&self, max_ids: usize, max_bytes: usize) -> (Vec<String>, Vec<String>) {
        use std::collections::HashSet;
        let inner = self.lock();
        let (mut secrets, mut parameters) = (Vec::new(), Vec::new());
        let (mut seen_secrets, mut seen_parameters) = (HashSet::new(), HashSet::new());
        let mut bytes = 0usize;
        for key in inner.lru.values().rev() {
            let (list, seen, id) = match key {
                CacheKey::Secret { id, .. } => (&mut secrets, &mut seen_secrets, id),
                CacheKey::Parameter { name, .. } => (&mut parameters, &mut seen_parameters, name),
            };
            if list.len() >= max_ids || bytes + id.len() > max_bytes || !seen.insert(id.as_str()) {
                continue;
            }
            bytes += id.len();
            list.push(id.clone());
        }
        (secrets, parameters)
    }

    /// Changes whenever an answer for a new key is cached.
    pub fn keys_added(&self) -> watch::Receiver<u64> {
        self.keys_added.subscribe()
    }

    /// The entries worth writing to a snapshot: those still servable.
    pub fn snapshot_entries(&self) -> Vec<SnapshotEntry> {
        let servable_for = self.settings.ttl + self.settings.max_stale;
        let inner = self.lock();
        inner
            .entries
            .iter()
            .filter(|(_, e)| e.fetched_at.elapsed() <= servable_for)
            .map(|(key, e)| SnapshotEntry { key: key.clone(), fetched_wall: e.fetched_wall, body: e.body.clone() })
            .collect()
    }

    pub fn health(&self) -> Health {
        let inner = self.lock();
        let ages = inner.entries.values().map(|e| e.fetched_at.elapsed().as_secs_f64());
        let (oldest, newest) = ages.fold((None, None), |(old, new): (Option<f64>, Option<f64>), age| {
            (Some(old.map_or(age, |o| o.max(age))), Some(new.map_or(age, |n| n.min(age))))
        });
        let from_snapshot = inner.entries.values().filter(|e| e.from_snapshot).count();
        let entries = inner.entries.len();
        let source = match (entries, from_snapshot) {
            (0, _) => "empty",
            (_, 0) => "server",
            (n, s) if n == s => "snapshot",
            _ => "server+snapshot",
        };
        Health {
            endpoint: self.endpoint.clone(),
            source,
            entries,
            entries_from_snapshot: from_snapshot,
            oldest_entry_age_seconds: oldest.map(round_ms),
            newest_entry_age_seconds: newest.map(round_ms),
            ttl_seconds: self.settings.ttl.as_secs(),
            max_stale_seconds: self.settings.max_stale.as_secs(),
            last_refresh: inner.last_refresh.and_then(rfc3339),
            last_error: inner.last_error.as_ref().map(|e| HealthError {
                code: e.code.clone(),
                message: e.message.clone(),
                status: e.status,
                at: rfc3339(e.at),
            }),
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            stale_served: self.counters.stale_served.load(Ordering::Relaxed),
            background_refreshes: self.counters.refreshes.load(Ordering::Relaxed),
        }
    }
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A scripted server: answers `value-N` (N counting calls) or the error it is set to.
    #[derive(Default)]
    struct FakeUpstream {
        calls: AtomicUsize,
        failure: Mutex<Option<FetchError>>,
        /// The next call answers only after this long (a slow server).
        delay_next: Mutex<Option<Duration>>,
    }

    impl FakeUpstream {
        fn fail_with(&self, error: Option<FetchError>) {
            *self.failure.lock().unwrap() = error;
        }
    }

    impl Upstream for FakeUpstream {
        fn fetch<'a>(&'a self, _key: &'a CacheKey) -> FetchFuture<'a> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                let delay = self.delay_next.lock().unwrap().take();
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                if let Some(e) = self.failure.lock().unwrap().clone() {
                    return Err(e);
                }
                Ok(SecretBytes::from(format!("value-{n}")))
            })
        }
    }

    fn secret(id: &str) -> CacheKey {
        CacheKey::Secret { id: id.into(), version_id: None, version_stage: None }
    }

    fn cache(ttl_ms: u64, max_entries: usize, max_stale_ms: u64) -> (Arc<Cache>, Arc<FakeUpstream>) {
        let upstream = Arc::new(FakeUpstream::default());
        let settings = Settings {
            ttl: Duration::from_millis(ttl_ms),
            max_entries,
            max_stale: Duration::from_millis(max_stale_ms),
        };
        (Cache::new(settings, upstream.clone(), "http://test".into()), upstream)
    }

    fn text(served: &Served) -> String {
        String::from_utf8(served.body.expose().to_vec()).unwrap()
    }

    fn unavailable() -> FetchError {
        FetchError::Unavailable { status: 502, code: "ServiceUnavailable".into(), message: "down".into() }
    }

    #[tokio::test]
    async fn hits_do_not_reach_the_server_and_refresh_now_does() {
        let (cache, upstream) = cache(60_000, 10, 0);
        let first = cache.get(secret("a"), false).await.unwrap();
        assert_eq!((text(&first), first.freshness), ("value-1".into(), Freshness::Fetched));
        let second = cache.get(secret("a"), false).await.unwrap();
        assert_eq!((text(&second), second.freshness), ("value-1".into(), Freshness::Hit));
        assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
        let forced = cache.get(secret("a"), true).await.unwrap();
        assert_eq!(text(&forced), "value-2");
        let versioned =
            CacheKey::Secret { id: "a".into(), version_id: None, version_stage: Some("AWSPREVIOUS".into()) };
        assert_eq!(cache.get(versioned, false).await.unwrap().freshness, Freshness::Fetched, "versions are keys");
        let health = cache.health();
        assert_eq!((health.hits, health.misses, health.entries), (1, 3, 2));
    }

    #[tokio::test]
    async fn the_least_recently_used_entry_is_evicted() {
        let (cache, upstream) = cache(60_000, 2, 0);
        cache.get(secret("a"), false).await.unwrap();
        cache.get(secret("b"), false).await.unwrap();
        cache.get(secret("a"), false).await.unwrap();
        cache.get(secret("c"), false).await.unwrap();
        assert_eq!(cache.health().entries, 2);
        assert_eq!(cache.get(secret("a"), false).await.unwrap().freshness, Freshness::Hit);
        assert_eq!(cache.get(secret("b"), false).await.unwrap().freshness, Freshness::Fetched, "b was evicted");
        assert_eq!(upstream.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn stale_values_stand_in_for_an_unavailable_server_within_max_stale() {
        let (cache, upstream) = cache(50, 10, 200);
        cache.get(secret("a"), false).await.unwrap();
        upstream.fail_with(Some(unavailable()));
        tokio::time::sleep(Duration::from_millis(80)).await;
        let stale = cache.get(secret("a"), false).await.unwrap();
        assert_eq!((text(&stale), stale.freshness), ("value-1".into(), Freshness::Stale));
        let health = cache.health();
        assert_eq!(health.last_error.as_ref().unwrap().code, "ServiceUnavailable");
        assert_eq!(health.stale_served, 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(cache.get(secret("a"), false).await.is_err(), "past max_stale the error is answered");
        assert_eq!(cache.health().entries, 0);
        assert!(cache.get(secret("never-fetched"), false).await.is_err());
    }

    #[tokio::test]
    async fn refusals_pass_through_and_drop_the_entry() {
        let (cache, upstream) = cache(60_000, 10, 60_000);
        cache.get(secret("a"), false).await.unwrap();
        upstream.fail_with(Some(FetchError::Rejected {
            status: 400,
            code: "ResourceNotFoundException".into(),
            message: "gone".into(),
        }));
        let err = cache.get(secret("a"), true).await.err().unwrap();
        assert_eq!((err.status(), err.code()), (400, "ResourceNotFoundException"));
        assert_eq!(cache.health().entries, 0);
    }

    #[tokio::test]
    async fn hot_entries_are_refreshed_in_the_background_before_they_expire() {
        let (cache, upstream) = cache(200, 10, 0);
        cache.get(secret("a"), false).await.unwrap();
        tokio::time::sleep(Duration::from_millis(170)).await;
        let served = cache.get(secret("a"), false).await.unwrap();
        assert_eq!((text(&served), served.freshness), ("value-1".into(), Freshness::Hit));
        tokio::time::sleep(Duration::from_millis(60)).await;
        // Past the first fetch's TTL, yet still a hit: the refresh replaced it.
        let served = cache.get(secret("a"), false).await.unwrap();
        assert_eq!((text(&served), served.freshness), ("value-2".into(), Freshness::Hit));
        assert_eq!(upstream.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn snapshot_entries_are_served_only_when_the_server_is_unavailable() {
        let (cache, upstream) = cache(60_000, 10, 60_000);
        let loaded = cache.load_snapshot(vec![
            SnapshotEntry {
                key: secret("a"),
                fetched_wall: SystemTime::now() - Duration::from_secs(5),
                body: Arc::new(SecretBytes::from("from-snapshot")),
            },
            SnapshotEntry {
                key: secret("too-old"),
                fetched_wall: SystemTime::now() - Duration::from_secs(3600),
                body: Arc::new(SecretBytes::from("expired")),
            },
        ]);
        assert_eq!(loaded, 1);
        assert_eq!(cache.health().source, "snapshot");
        upstream.fail_with(Some(unavailable()));
        let served = cache.get(secret("a"), false).await.unwrap();
        assert_eq!((text(&served), served.freshness), ("from-snapshot".into(), Freshness::Stale));
        upstream.fail_with(None);
        let served = cache.get(secret("a"), false).await.unwrap();
        assert_eq!((text(&served), served.freshness), ("value-2".into(), Freshness::Fetched));
        assert_eq!(cache.health().source, "server");
    }

    /// Lets background refreshes run, then answers `key`'s value, which must be a hit.
    async fn hit_after_refresh(cache: &Arc<Cache>, key: &CacheKey) -> String {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let served = cache.get(key.clone(), false).await.unwrap();
        assert_eq!(served.freshness, Freshness::Hit, "{key:?}");
        text(&served)
    }

    #[tokio::test]
    async fn a_reported_change_refetches_its_entries_at_once() {
        let (cache, upstream) = cache(60_000, 10, 60_000);
        cache.get(secret("a"), false).await.unwrap();
        cache.get(secret("b"), false).await.unwrap();
        assert_eq!(cache.watched_ids(10, 1000), (vec!["b".to_string(), "a".to_string()], vec![]), "recent first");
        assert_eq!(cache.watched_ids(1, 1000).0, ["b"]);
        assert_eq!(cache.watched_ids(10, 1).0, ["b"], "ids up to a size a request can carry");
        assert_eq!(cache.invalidate(|key| *key == secret("a")), 1);
        // Refetched in the background: the old answer is never a hit again.
        assert_eq!(hit_after_refresh(&cache, &secret("a")).await, "value-3");
        assert_eq!(upstream.calls.load(Ordering::SeqCst), 3);
        assert_eq!(text(&cache.get(secret("b"), false).await.unwrap()), "value-2", "b was not touched");

        // While the server is down, an invalidated entry still stands in (stale), as an expired one does.
        upstream.fail_with(Some(unavailable()));
        cache.invalidate(|_| true);
        let served = cache.get(secret("a"), false).await.unwrap();
        assert_eq!((text(&served), served.freshness), ("value-3".into(), Freshness::Stale));
    }

    #[tokio::test]
    async fn a_fetch_begun_before_a_change_neither_clears_nor_overwrites_it() {
        let (cache, upstream) = cache(60_000, 10, 60_000);
        cache.get(secret("a"), false).await.unwrap();
        // A slow fetch (value-2) starts before the change is heard; the change's refetch (value-3)
        // starts after it and ends first.
        *upstream.delay_next.lock().unwrap() = Some(Duration::from_millis(200));
        let slow = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get(secret("a"), true).await.map(|s| text(&s)) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        cache.invalidate(|key| *key == secret("a"));
        assert_eq!(hit_after_refresh(&cache, &secret("a")).await, "value-3");
        assert_eq!(slow.await.unwrap().unwrap(), "value-2", "its own caller still gets its answer");
        assert_eq!(hit_after_refresh(&cache, &secret("a")).await, "value-3", "the older answer did not replace it");

        cache.invalidate_all();
        let served = cache.get(secret("a"), false).await.unwrap();
        assert_eq!((text(&served), served.freshness), ("value-4".into(), Freshness::Fetched));
    }

    #[tokio::test]
    async fn new_keys_are_announced_to_the_subscription() {
        let (cache, _) = cache(60_000, 10, 0);
        let mut added = cache.keys_added();
        added.borrow_and_update();
        cache.get(secret("a"), false).await.unwrap();
        assert!(added.has_changed().unwrap(), "a new key");
        added.borrow_and_update();
        cache.get(secret("a"), true).await.unwrap();
        assert!(!added.has_changed().unwrap(), "a refetch of a cached key is not new");
        let parameter = CacheKey::Parameter { name: "/p".into(), with_decryption: true };
        cache.get(parameter, false).await.unwrap();
        assert!(added.has_changed().unwrap());
        assert_eq!(cache.watched_ids(10, 1000), (vec!["a".to_string()], vec!["/p".to_string()]));
    }
}
