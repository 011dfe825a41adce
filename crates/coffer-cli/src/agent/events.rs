//! Invalidation by change events: a task long-polls the server's `CofferEvents.WaitForChanges` for
//! the secrets and parameters the cache holds, and invalidates and refetches the entries of each
//! change it hears of, so a new value is served within about a second of its PutSecretValue instead
//! of at the end of the TTL. The TTL stays: it bounds staleness whenever the subscription is down.
//!
//! The subscription gets its cursor before the agent serves (when the server answers in time), so
//! every change after the first fetch is reported. It asks for what the cache holds at each poll. When
//! an answer for a new record is cached, the poll under way is dropped and asked again from the same
//! cursor with the record in it: a change made after that cursor — so after the record was fetched —
//! is reported either way. A `Reset` (the server restarted, the agent fell too far behind, or the
//! subscription got its first cursor only after values were cached) invalidates every entry.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use coffer_client::events::{concerns_parameter, concerns_secret, ChangeSubscription, Notification, WatchRequest};
use coffer_client::{Client, ClientError};
use coffer_wire::events::{Change, MAX_SUBSCRIBED_IDS};
use serde::Serialize;

use super::cache::{Cache, CacheKey};

/// After a new record is cached, how long to wait before asking again: a burst of first requests
/// (an application starting) then costs one new poll, not one per record.
const NEW_KEYS_PAUSE: Duration = Duration::from_millis(50);
/// The most bytes of ids one poll names: well inside the server's 1 MiB request limit.
const MAX_WATCHED_BYTES: usize = 512 * 1024;
/// How long the agent's start waits for its first cursor; a server that is down or slow does not hold
/// the agent up (the subscription keeps trying in the background, and resets the cache once it is in).
const FIRST_CURSOR_WAIT: Duration = Duration::from_secs(2);

/// The subscription's state, for `/health`: no values, no ids.
#[derive(Debug, Default)]
pub struct WatchStatus {
    inner: Mutex<WatchState>,
}

#[derive(Debug, Default)]
struct WatchState {
    /// The last poll was answered.
    subscribed: bool,
    secrets: usize,
    parameters: usize,
    changes: u64,
    resets: u64,
    last_change: Option<SystemTime>,
    last_error: Option<(String, String, SystemTime)>,
}

/// What `/health` shows under `change_events`.
#[derive(Debug, Serialize)]
pub struct WatchHealth {
    /// Whether the agent watches for changes at all (`--no-watch` turns it off).
    pub enabled: bool,
    /// Whether the last poll of the server's change events was answered.
    pub subscribed: bool,
    /// How many secrets and parameters are watched.
    pub watched_secrets: usize,
    pub watched_parameters: usize,
    /// Changes heard of cached records, and resets (every entry invalidated).
    pub changes: u64,
    pub resets: u64,
    pub last_change: Option<String>,
    pub last_error: Option<WatchError>,
}

#[derive(Debug, Serialize)]
pub struct WatchError {
    pub code: String,
    pub message: String,
    pub at: Option<String>,
}

impl WatchStatus {
    fn lock(&self) -> MutexGuard<'_, WatchState> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The health of a watching agent (`status`), or of one started with `--no-watch` (`None`).
    pub fn health(status: Option<&WatchStatus>) -> WatchHealth {
        let Some(status) = status else {
            return WatchHealth {
                enabled: false,
                subscribed: false,
                watched_secrets: 0,
                watched_parameters: 0,
                changes: 0,
                resets: 0,
                last_change: None,
                last_error: None,
            };
        };
        let state = status.lock();
        WatchHealth {
            enabled: true,
            subscribed: state.subscribed,
            watched_secrets: state.secrets,
            watched_parameters: state.parameters,
            changes: state.changes,
            resets: state.resets,
            last_change: state.last_change.and_then(super::cache::rfc3339),
            last_error: state.last_error.as_ref().map(|(code, message, at)| WatchError {
                code: code.clone(),
                message: message.clone(),
                at: super::cache::rfc3339(*at),
            }),
        }
    }
}

/// Starts watching for changes of what `cache` holds, through `client` (Secrets Manager's signing):
/// gets a cursor first (waiting at most [`FIRST_CURSOR_WAIT`]), then polls in the background.
pub async fn start(cache: Arc<Cache>, client: Arc<Client>) -> Arc<WatchStatus> {
    let status = Arc::new(WatchStatus::default());
    let endpoint = client.config().endpoint.clone();
    let mut subscription = ChangeSubscription::new(client, WatchRequest::default());
    match tokio::time::timeout(FIRST_CURSOR_WAIT, subscription.start()).await {
        Ok(Ok(())) => status.lock().subscribed = true,
        Ok(Err(e)) => status.record_error(&e),
        Err(_) => status.record_error(&ClientError::Transport {
            endpoint,
            detail: format!("no cursor within {} s", FIRST_CURSOR_WAIT.as_secs()),
        }),
    }
    tokio::spawn(watch(cache, subscription, status.clone()));
    status
}

async fn watch(cache: Arc<Cache>, mut subscription: ChangeSubscription, status: Arc<WatchStatus>) {
    let mut keys_added = cache.keys_added();
    loop {
        // Seen before the set is read: a record cached after this interrupts the poll below.
        keys_added.borrow_and_update();
        let (secret_ids, parameter_names) = cache.watched_ids(MAX_SUBSCRIBED_IDS, MAX_WATCHED_BYTES);
        {
            let mut state = status.lock();
            state.secrets = secret_ids.len();
            state.parameters = parameter_names.len();
        }
        let request = subscription.request_mut();
        request.secret_ids = secret_ids;
        request.parameter_names = parameter_names;
        // Without a cursor the call answers at once: nothing to interrupt.
        let interruptible = subscription.cursor().is_some();
        tokio::select! {
            answer = subscription.next() => match answer {
                Ok(Notification::Changes(changes)) => {
                    let invalidated = cache.invalidate(|key| changes.iter().any(|change| concerns(key, change)));
                    tracing::debug!(changes = changes.len(), invalidated, "change events");
                    let mut state = status.lock();
                    state.subscribed = true;
                    state.changes += changes.len() as u64;
                    state.last_change = Some(SystemTime::now());
                }
                Ok(Notification::Reset) => {
                    cache.invalidate_all();
                    let mut state = status.lock();
                    state.subscribed = true;
                    state.resets += 1;
                }
                Err(e) => status.record_error(&e),
            },
            _ = keys_added.changed(), if interruptible => tokio::time::sleep(NEW_KEYS_PAUSE).await,
        }
    }
}

impl WatchStatus {
    fn record_error(&self, e: &ClientError) {
        let (code, message) = describe(e);
        tracing::warn!(%code, %message, "change events unavailable; cached values expire by their TTL");
        let mut state = self.lock();
        state.subscribed = false;
        state.last_error = Some((code, message, SystemTime::now()));
    }
}

/// Whether a cached answer is about the changed record.
fn concerns(key: &CacheKey, change: &Change) -> bool {
    match key {
        CacheKey::Secret { id, .. } => concerns_secret(change, id),
        CacheKey::Parameter { name, .. } => concerns_parameter(change, name),
    }
}

/// An error's code and message for `/health` and the log (the server's words, never a value).
fn describe(e: &ClientError) -> (String, String) {
    match e {
        ClientError::Api { code, message, .. } => (code.clone(), message.clone()),
        ClientError::Transport { .. } => ("ServiceUnavailable".into(), e.to_string()),
        // A decoding error's text can quote the answer it choked on.
        ClientError::Decode(_) => ("InternalFailure".into(), "the server's answer is not a valid response".into()),
        ClientError::Config(_) => ("InternalFailure".into(), e.to_string()),
    }
}
