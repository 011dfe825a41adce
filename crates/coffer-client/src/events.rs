//! Change events: a [`ChangeSubscription`] long-polls the server's `CofferEvents.WaitForChanges` with
//! a cursor and tells its owner which subscribed secrets and parameters changed — within a second of
//! the change — so a cache refetches them instead of serving a replaced value until its TTL ends.
//!
//! ```no_run
//! # async fn run(client: std::sync::Arc<coffer_client::Client>) -> Result<(), coffer_client::ClientError> {
//! use coffer_client::events::{ChangeSubscription, Notification, WatchRequest};
//! let mut subscription = ChangeSubscription::new(client, WatchRequest::secrets(["prod/db".to_string()]));
//! subscription.start().await?; // changes from here on are reported: load the values after this
//! loop {
//!     match subscription.next().await {
//!         Ok(Notification::Changes(changes)) => { /* refetch what they name */ }
//!         Ok(Notification::Reset) => { /* changes may have been missed: refetch everything */ }
//!         Err(e) => eprintln!("change events: {e}"), // the next call waits before polling again
//!     }
//! }
//! # }
//! ```
//!
//! A change names the record and what happened to it, never a value; the server reports only changes
//! of records the caller may read. `Reset` means the subscriber cannot know what it missed (the server
//! restarted, the subscriber fell too far behind, server nodes lost touch, or the subscription had no
//! cursor yet).

use std::sync::Arc;
use std::time::Duration;

use coffer_wire::events::{
    Change, WaitForChangesRequest, WaitForChangesResponse, MAX_WAIT_TIME_SECONDS, SERVICE, TYPE_PARAMETER, TYPE_SECRET,
    WAIT_FOR_CHANGES_TARGET,
};

use crate::{Client, ClientError};

/// How long a poll may go unanswered beyond its wait before the server counts as unreachable (a
/// connection that died silently would otherwise hang the subscription).
const ANSWER_MARGIN: Duration = Duration::from_secs(15);
/// The first wait after a failed poll; it doubles with each further failure...
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// ...up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Secrets read through Parameter Store: such a parameter changes when its secret does.
const SECRET_REFERENCE_PREFIX: &str = "/aws/reference/secretsmanager/";

/// What to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRequest {
    /// Secrets by name, full ARN or partial ARN.
    pub secret_ids: Vec<String>,
    /// Parameters by name or ARN (a `:version` or `:label` selector is ignored).
    pub parameter_names: Vec<String>,
    /// Every secret and parameter below these paths.
    pub path_prefixes: Vec<String>,
    /// How long each poll waits on the server (at most 20 s).
    pub wait: Duration,
}

impl Default for WatchRequest {
    fn default() -> Self {
        WatchRequest {
            secret_ids: Vec::new(),
            parameter_names: Vec::new(),
            path_prefixes: Vec::new(),
            wait: Duration::from_secs(MAX_WAIT_TIME_SECONDS.unsigned_abs()),
        }
    }
}

impl WatchRequest {
    /// A subscription to these secrets.
    pub fn secrets(ids: impl IntoIterator<Item = String>) -> Self {
        WatchRequest { secret_ids: ids.into_iter().collect(), ..Default::default() }
    }

    /// A subscription to everything below these paths.
    pub fn paths(prefixes: impl IntoIterator<Item = String>) -> Self {
        WatchRequest { path_prefixes: prefixes.into_iter().collect(), ..Default::default() }
    }
}

/// What [`ChangeSubscription::next`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// Subscribed records changed (oldest first): refetch them.
    Changes(Vec<Change>),
    /// Changes may have been missed: refetch everything cached.
    Reset,
}

/// A subscription to change events (see the module documentation). Every method is cancel-safe: a
/// poll dropped midway leaves the cursor where it was, so the next one asks again from there.
pub struct ChangeSubscription {
    client: Arc<Client>,
    request: WatchRequest,
    cursor: Option<String>,
    /// Polls failed in a row; the next poll waits first.
    failures: u32,
}

impl ChangeSubscription {
    pub fn new(client: Arc<Client>, request: WatchRequest) -> Self {
        ChangeSubscription { client, request, cursor: None, failures: 0 }
    }

    pub fn request(&self) -> &WatchRequest {
        &self.request
    }

    /// Changes what is watched; the next poll asks with it, from the same cursor (so a record added
    /// here is reported for every change after the cursor, including ones made meanwhile).
    pub fn request_mut(&mut self) -> &mut WatchRequest {
        &mut self.request
    }

    /// The server's cursor, once the subscription has one.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Polls failed in a row (0 after a success).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Gets a cursor now if there is none yet (the server answers at once): every change from here on
    /// will be reported. Call it before loading the values to watch, so none slips between the two.
    pub async fn start(&mut self) -> Result<(), ClientError> {
        if self.cursor.is_none() {
            self.poll(Duration::ZERO).await?;
        }
        Ok(())
    }

    /// Waits for the next subscribed changes, polling again whenever a poll's wait ends without one.
    /// Without a cursor yet, it gets one and answers [`Notification::Reset`] (what was loaded before
    /// may have changed unseen). After an error the next call first waits (250 ms, doubling up to
    /// 30 s), so a loop around it does not hammer a server that is down.
    pub async fn next(&mut self) -> Result<Notification, ClientError> {
        if self.failures > 0 {
            tokio::time::sleep(backoff(self.failures)).await;
        }
        if self.cursor.is_none() {
            self.poll(Duration::ZERO).await?;
            return Ok(Notification::Reset);
        }
        loop {
            let answer = self.poll(self.request.wait).await?;
            if answer.reset {
                return Ok(Notification::Reset);
            }
            if !answer.changes.is_empty() {
                return Ok(Notification::Changes(answer.changes));
            }
        }
    }

    /// One `WaitForChanges` call; the cursor moves on only once an answer arrived.
    async fn poll(&mut self, wait: Duration) -> Result<WaitForChangesResponse, ClientError> {
        let seconds = wait.as_secs().min(MAX_WAIT_TIME_SECONDS.unsigned_abs());
        let request = WaitForChangesRequest {
            secret_ids: self.request.secret_ids.clone(),
            parameter_names: self.request.parameter_names.clone(),
            path_prefixes: self.request.path_prefixes.clone(),
            cursor: self.cursor.clone(),
            wait_time_seconds: Some(i64::try_from(seconds).unwrap_or(MAX_WAIT_TIME_SECONDS)),
        };
        let limit = Duration::from_secs(seconds) + ANSWER_MARGIN;
        let call = self.client.call::<_, WaitForChangesResponse>(SERVICE, WAIT_FOR_CHANGES_TARGET, &request);
        let result = match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Transport {
                endpoint: self.client.config().endpoint.clone(),
                detail: format!("no answer to WaitForChanges within {} s", limit.as_secs()),
            }),
        };
        match result {
            Ok(answer) => {
                self.failures = 0;
                self.cursor = Some(answer.cursor.clone());
                Ok(answer)
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                Err(e)
            }
        }
    }
}

/// The wait before the next poll after `failures` failed ones.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// Whether `change` is about the secret `id` (a name, full ARN or partial ARN, as GetSecretValue takes).
pub fn concerns_secret(change: &Change, id: &str) -> bool {
    if change.resource_type != TYPE_SECRET {
        return false;
    }
    if id == change.arn || id == change.name {
        return true;
    }
    // A partial ARN is the full ARN without its `-XXXXXX` suffix.
    change.arn.len() == id.len() + 7 && change.arn.starts_with(id) && change.arn.as_bytes()[id.len()] == b'-'
}

/// Whether `change` is about the parameter `name` (a name or ARN, with or without a selector; a
/// `/aws/reference/secretsmanager/<id>` name is about that secret).
pub fn concerns_parameter(change: &Change, name: &str) -> bool {
    let name = parameter_name(name);
    if let Some(secret_id) = name.strip_prefix(SECRET_REFERENCE_PREFIX) {
        return concerns_secret(change, secret_id);
    }
    let base = name.split_once(':').map_or(name, |(base, _)| base);
    change.resource_type == TYPE_PARAMETER && change.name == base
}

/// A parameter's name from a name or ARN (`arn:...:parameter/a/b` is `/a/b`, `...:parameter/a` is `a`).
fn parameter_name(id: &str) -> &str {
    let Some(rest) = id.strip_prefix("arn:") else { return id };
    match rest.split_once(":parameter/") {
        Some((_, name)) if name.contains('/') => &id[id.len() - name.len() - 1..],
        Some((_, name)) => name,
        None => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(resource_type: &str, name: &str, arn: &str) -> Change {
        Change {
            resource_type: resource_type.into(),
            name: name.into(),
            arn: arn.into(),
            change: "PutSecretValue".into(),
            version_id: None,
            time: 0.0,
        }
    }

    #[test]
    fn secrets_are_recognised_by_name_and_by_full_or_partial_arn() {
        let arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-AbC123";
        let c = change(TYPE_SECRET, "prod/db", arn);
        assert!(concerns_secret(&c, "prod/db"));
        assert!(concerns_secret(&c, arn));
        assert!(concerns_secret(&c, "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db"));
        assert!(!concerns_secret(&c, "prod/db2"));
        assert!(!concerns_secret(&c, "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/d"));
        assert!(concerns_parameter(&c, "/aws/reference/secretsmanager/prod/db"), "read through Parameter Store");
        assert!(!concerns_parameter(&c, "prod/db"), "a parameter of the same name is another record");
    }

    #[test]
    fn parameters_are_recognised_by_name_arn_and_selector() {
        let c = change(TYPE_PARAMETER, "/app/level", "arn:aws:ssm:us-east-1:000000000000:parameter/app/level");
        assert!(concerns_parameter(&c, "/app/level"));
        assert!(concerns_parameter(&c, "/app/level:3"));
        assert!(concerns_parameter(&c, "/app/level:prod"));
        assert!(concerns_parameter(&c, "arn:aws:ssm:us-east-1:000000000000:parameter/app/level"));
        assert!(!concerns_parameter(&c, "/app/level2"));
        assert!(!concerns_secret(&c, "/app/level"));
    }

    #[test]
    fn failed_polls_back_off_up_to_a_bound() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(5), Duration::from_secs(4));
        assert_eq!(backoff(9), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
