//! Change events: how a cache in front of the server (the agent, the client library, `coffer exec
//! --watch`) learns within a second that a value it holds was replaced, instead of serving it until
//! its TTL ends.
//!
//! Each node keeps a [`ChangeJournal`]: a bounded in-memory ring of the value-relevant changes it
//! heard of — its own committed writes (a new version, a staging-label move, a deletion, a restore; of
//! secrets and of parameters) and the changes of other nodes sharing its store, as the store's change
//! feed names them ([`Service::apply_change_notice`]). Entries name a record and what happened to it,
//! never a value. A subscriber holds a cursor (`<epoch>:<seq>`: the journal's random epoch, chosen when
//! the service starts, and the last sequence number it has seen) and long-polls
//! [`Service::wait_for_changes`] with it; the call answers as soon as a change it subscribed to — and
//! may read — is recorded after the cursor, or when its wait ends.
//!
//! A cursor from another epoch (the server restarted, or another node answered), one older than the
//! ring holds, or a feed that lost notices (`ChangeNotice::Everything`) answers `reset`: the subscriber
//! cannot know what it missed and refetches everything it caches.
//!
//! Authorization: the call itself needs `coffer:WaitForChanges`; each change is then reported only if
//! the caller may read its record (`secretsmanager:GetSecretValue` on the secret, `ssm:GetParameter` on
//! the parameter, evaluated as those reads are); the others are left out without a word, so a
//! subscription tells nothing a caller could not learn by reading.
//!
//! Over PostgreSQL a node's own change is heard twice (recorded when it commits, and again as the
//! feed's notice, which names only the record): a subscriber may refetch twice, never miss one.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use coffer_store::{EpochMillis, ParameterWrite, SecretState, SecretWrite};
use tokio::sync::watch;

use crate::arn::{has_random_suffix, parse_secret_arn};
use crate::context::{ActorSource, RequestContext};
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::iam::Access;
use crate::parameters::names::name_from_id;
use crate::parameters::parameter_arn;
use crate::secrets::labels::AWSCURRENT;
use crate::Service;

/// How many changes a node remembers. A subscriber that falls further behind is told to start over.
pub const JOURNAL_CAPACITY: usize = 10_000;
/// The longest one call waits for a change: short enough for load balancers and proxies that cut idle
/// requests, long enough that an idle subscriber costs one request per 20 seconds.
pub const MAX_WAIT: Duration = Duration::from_secs(20);
/// The most secret ids, and the most parameter names, one subscription names.
pub const MAX_SUBSCRIBED_IDS: usize = 10_000;
/// The most path prefixes one subscription names.
pub const MAX_PATH_PREFIXES: usize = 100;
/// A secret id, parameter name or path prefix is at most this long (Secrets Manager's SecretId bound).
const MAX_ID_CHARS: usize = 2048;
/// Secrets read through Parameter Store: a subscription to such a name is one to the secret.
const SECRET_REFERENCE_PREFIX: &str = "/aws/reference/secretsmanager/";

/// What happened to a record.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A secret was created (with a value, or without one).
    CreateSecret,
    /// A new version of a secret's value (PutSecretValue).
    PutSecretValue,
    /// UpdateSecret with a new value.
    UpdateSecret,
    /// Staging labels moved between a secret's versions (UpdateSecretVersionStage, a rollback).
    UpdateSecretVersionStage,
    /// A rotation step added a version or moved labels (createSecret, finishSecret, the end of the
    /// previous value's overlap).
    Rotation,
    /// A secret was scheduled for deletion, or deleted for good.
    DeleteSecret,
    /// A secret scheduled for deletion was restored.
    RestoreSecret,
    /// A parameter was created or got a new version.
    PutParameter,
    /// A label was attached to a parameter version (or moved to it).
    LabelParameterVersion,
    /// A label was removed from a parameter version.
    UnlabelParameterVersion,
    /// A parameter was deleted (DeleteParameter(s), or its Expiration policy).
    DeleteParameter,
    /// Another node changed the record; what it changed is not known here.
    Changed,
}

impl ChangeKind {
    /// The name the wire and the logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::CreateSecret => "CreateSecret",
            ChangeKind::PutSecretValue => "PutSecretValue",
            ChangeKind::UpdateSecret => "UpdateSecret",
            ChangeKind::UpdateSecretVersionStage => "UpdateSecretVersionStage",
            ChangeKind::Rotation => "Rotation",
            ChangeKind::DeleteSecret => "DeleteSecret",
            ChangeKind::RestoreSecret => "RestoreSecret",
            ChangeKind::PutParameter => "PutParameter",
            ChangeKind::LabelParameterVersion => "LabelParameterVersion",
            ChangeKind::UnlabelParameterVersion => "UnlabelParameterVersion",
            ChangeKind::DeleteParameter => "DeleteParameter",
            ChangeKind::Changed => "Changed",
        }
    }
}

/// The record a change concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeSubjectKind {
    Secret,
    Parameter,
}

/// One change, as subscribers learn of it: which record, what happened, when. Never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// The journal's sequence number (the cursor of a subscriber that has seen this change).
    pub seq: u64,
    pub subject: ChangeSubjectKind,
    pub region: String,
    /// The secret's or parameter's name.
    pub name: String,
    /// The secret's full ARN, or the parameter's ARN.
    pub arn: String,
    pub kind: ChangeKind,
    /// The version the change added, else the one AWSCURRENT labels after it (a parameter's version
    /// number); `None` for deletions and for changes heard from another node.
    pub version_id: Option<String>,
    /// When this node recorded it.
    pub time: EpochMillis,
}

/// What one long poll asks for.
#[derive(Debug, Clone, Default)]
pub struct WaitForChangesInput {
    /// Secrets by name, full ARN or partial ARN, as GetSecretValue takes them.
    pub secret_ids: Vec<String>,
    /// Parameters by name or ARN (a `:version` or `:label` selector is ignored: every version counts).
    pub parameter_names: Vec<String>,
    /// Every secret and parameter below these paths (`/prod/app` covers `/prod/app/db` and
    /// `prod/app/db`, not `/prod/application`; `/` covers everything).
    pub path_prefixes: Vec<String>,
    /// Where the subscriber is; `None` answers at once with the current cursor.
    pub cursor: Option<String>,
    /// How long to wait for a change (at most [`MAX_WAIT`]).
    pub wait: Duration,
}

/// The answer to one long poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesPage {
    /// The subscribed changes the caller may read, oldest first.
    pub changes: Vec<ChangeEvent>,
    /// The cursor to ask with next.
    pub cursor: String,
    /// The subscriber may have missed changes and must refetch everything it caches.
    pub reset: bool,
}

/// A journal entry: a change, or the news that changes went unheard.
#[derive(Debug, Clone)]
enum Recorded {
    Change(ChangeEvent),
    Reset,
}

#[derive(Default)]
struct Ring {
    entries: VecDeque<(u64, Recorded)>,
    /// The sequence number of the newest entry (0: none yet).
    last_seq: u64,
}

/// What waiting subscribers watch: the newest sequence number, and whether waits must end now.
#[derive(Debug, Clone, Copy, Default)]
struct Head {
    seq: u64,
    closed: bool,
}

/// What a subscriber has not seen yet.
enum Unseen {
    /// Changes after the cursor, and the sequence number they go up to.
    Changes(Vec<ChangeEvent>, u64),
    /// The cursor cannot be served: start over from this sequence number.
    Reset(u64),
}

/// The node's ring of recent changes (see the module documentation).
pub(crate) struct ChangeJournal {
    /// Random per service instance: a cursor of an earlier run (or another node) is recognised as such.
    epoch: String,
    ring: Mutex<Ring>,
    head: watch::Sender<Head>,
    capacity: usize,
}

impl Default for ChangeJournal {
    fn default() -> Self {
        Self::with_capacity(JOURNAL_CAPACITY)
    }
}

impl ChangeJournal {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        ChangeJournal {
            epoch: format!("{:016x}", rand::random::<u64>()),
            ring: Mutex::new(Ring::default()),
            head: watch::Sender::new(Head::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // Entries are pushed and popped whole: a panic elsewhere cannot leave the ring half-changed.
        self.ring.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, entry: Recorded) {
        let seq = {
            let mut ring = self.lock();
            ring.last_seq += 1;
            let seq = ring.last_seq;
            if let Recorded::Change(change) = &entry {
                tracing::debug!(seq, name = %change.name, change = change.kind.as_str(), "change recorded");
            }
            let entry = match entry {
                Recorded::Change(mut change) => {
                    change.seq = seq;
                    Recorded::Change(change)
                }
                reset => reset,
            };
            ring.entries.push_back((seq, entry));
            while ring.entries.len() > self.capacity {
                ring.entries.pop_front();
            }
            seq
        };
        self.head.send_modify(|head| head.seq = seq);
    }

    fn cursor(&self, seq: u64) -> String {
        format!("{}:{seq}", self.epoch)
    }

    fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Everything recorded after `after`, unless the ring no longer holds all of it.
    fn since(&self, after: u64) -> Unseen {
        let ring = self.lock();
        if after > ring.last_seq {
            // Not a cursor this journal gave out.
            return Unseen::Reset(ring.last_seq);
        }
        let oldest = ring.entries.front().map_or(ring.last_seq + 1, |(seq, _)| *seq);
        if after + 1 < oldest {
            return Unseen::Reset(ring.last_seq);
        }
        let mut changes = Vec::new();
        for (_, entry) in ring.entries.iter().skip_while(|(seq, _)| *seq <= after) {
            match entry {
                Recorded::Change(change) => changes.push(change.clone()),
                Recorded::Reset => return Unseen::Reset(ring.last_seq),
            }
        }
        Unseen::Changes(changes, ring.last_seq)
    }

    /// Ends every wait now and from now on (the server is shutting down or sealing).
    fn close(&self) {
        self.head.send_modify(|head| head.closed = true);
    }
}

/// A cursor's parts.
fn parse_cursor(cursor: &str) -> ServiceResult<(&str, u64)> {
    let invalid = || ServiceError::invalid_parameter("Cursor is not a cursor this server gave out.");
    let (epoch, seq) = cursor.split_once(':').ok_or_else(invalid)?;
    if epoch.is_empty() || epoch.len() > 64 || !epoch.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    Ok((epoch, seq.parse().map_err(|_| invalid())?))
}

/// `/a/b/` → `a/b`: paths compared without their outer slashes (a secret name's leading `/` is optional).
fn trim_path(path: &str) -> &str {
    path.trim_matches('/')
}

/// Whether `name` lies below the trimmed path `prefix` (everything lies below the empty one).
fn under(prefix: &str, name: &str) -> bool {
    prefix.is_empty() || trim_path(name).strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// A subscription, compiled for matching against journal entries.
struct Subscription {
    /// Secrets named by full ARN.
    secret_arns: HashSet<String>,
    /// Secrets by (region, name): names in the caller's region, the names of partial ARNs, and (as
    /// GetSecretValue falls back to them) the resources of full ARNs.
    secret_names: HashSet<(String, String)>,
    /// Parameters in the caller's region, without selectors.
    parameter_names: HashSet<String>,
    /// Trimmed paths, in the caller's region.
    prefixes: Vec<String>,
    region: String,
}

impl Subscription {
    fn compile(ctx: &RequestContext, input: &WaitForChangesInput) -> ServiceResult<Subscription> {
        if input.secret_ids.len() > MAX_SUBSCRIBED_IDS || input.parameter_names.len() > MAX_SUBSCRIBED_IDS {
            return Err(ServiceError::invalid_parameter(format!(
                "A subscription names at most {MAX_SUBSCRIBED_IDS} secret ids and {MAX_SUBSCRIBED_IDS} parameter names."
            )));
        }
        if input.path_prefixes.len() > MAX_PATH_PREFIXES {
            return Err(ServiceError::invalid_parameter(format!(
                "A subscription names at most {MAX_PATH_PREFIXES} path prefixes."
            )));
        }
        let all = input.secret_ids.iter().chain(&input.parameter_names).chain(&input.path_prefixes);
        if all.clone().any(|id| id.is_empty() || id.chars().count() > MAX_ID_CHARS) {
            return Err(ServiceError::invalid_parameter(format!(
                "Secret ids, parameter names and path prefixes must be 1-{MAX_ID_CHARS} characters long."
            )));
        }
        let mut sub = Subscription {
            secret_arns: HashSet::new(),
            secret_names: HashSet::new(),
            parameter_names: HashSet::new(),
            prefixes: input.path_prefixes.iter().map(|p| trim_path(p).to_string()).collect(),
            region: ctx.region.clone(),
        };
        for id in &input.secret_ids {
            sub.add_secret_id(id);
        }
        for id in &input.parameter_names {
            let name = name_from_id(id);
            match name.strip_prefix(SECRET_REFERENCE_PREFIX) {
                Some(secret_id) if !secret_id.is_empty() => sub.add_secret_id(secret_id),
                _ => {
                    // A selector (`name:3`, `name:prod`) picks a version; every version's change counts.
                    let base = name.split_once(':').map_or(name, |(base, _)| base);
                    sub.parameter_names.insert(base.to_string());
                }
            }
        }
        Ok(sub)
    }

    fn add_secret_id(&mut self, id: &str) {
        match parse_secret_arn(id) {
            Some(arn) => {
                if has_random_suffix(arn.resource) {
                    self.secret_arns.insert(id.to_string());
                }
                self.secret_names.insert((arn.region.to_string(), arn.resource.to_string()));
            }
            None => {
                self.secret_names.insert((self.region.clone(), id.to_string()));
            }
        }
    }

    fn matches(&self, change: &ChangeEvent) -> bool {
        let in_region = change.region == self.region;
        match change.subject {
            ChangeSubjectKind::Secret => {
                self.secret_arns.contains(&change.arn)
                    || self.secret_names.contains(&(change.region.clone(), change.name.clone()))
                    || (in_region && self.prefixes.iter().any(|p| under(p, &change.name)))
            }
            ChangeSubjectKind::Parameter => {
                in_region
                    && (self.parameter_names.contains(&change.name)
                        || self.prefixes.iter().any(|p| under(p, &change.name)))
            }
        }
    }
}

/// The name inside a secret ARN: its resource without the random suffix.
fn secret_name_of_arn(arn: &str) -> Option<(String, String)> {
    let parsed = parse_secret_arn(arn)?;
    let name = if has_random_suffix(parsed.resource) {
        &parsed.resource[..parsed.resource.len() - 7]
    } else {
        parsed.resource
    };
    Some((parsed.region.to_string(), name.to_string()))
}

/// The version AWSCURRENT labels once `stage_updates` (complete new label sets) apply to `before`.
fn current_after(before: &SecretState, stage_updates: &[(String, Vec<String>)]) -> Option<String> {
    if let Some((id, _)) = stage_updates.iter().find(|(_, stages)| stages.iter().any(|s| s == AWSCURRENT)) {
        return Some(id.clone());
    }
    before
        .versions
        .iter()
        .find(|v| v.stages.iter().any(|s| s == AWSCURRENT) && !stage_updates.iter().any(|(id, _)| *id == v.version_id))
        .map(|v| v.version_id.clone())
}

impl Service {
    /// What a secret write about to be committed changes for readers: `None` when it touches only
    /// metadata (tags, description, policy, rotation settings), which no cached value depends on.
    pub(crate) fn secret_change(
        &self,
        ctx: &RequestContext,
        before: Option<&SecretState>,
        write: &SecretWrite,
    ) -> Option<ChangeEvent> {
        let event_name = ctx.audit.lock().event_name.clone();
        let by_rotation = matches!(ctx.source, ActorSource::Rotation | ActorSource::Emergency)
            || matches!(event_name.as_ref(), "RotateSecret" | "CancelRotateSecret");
        let (kind, version_id, secret) = match write {
            SecretWrite::Create(state) => (
                ChangeKind::CreateSecret,
                current_after(state, &[]).or_else(|| state.versions.last().map(|v| v.version_id.clone())),
                &state.secret,
            ),
            SecretWrite::Delete { arn, .. } => {
                let (region, name) = secret_name_of_arn(arn)?;
                return Some(self.change_event(
                    ChangeSubjectKind::Secret,
                    region,
                    name,
                    arn.clone(),
                    ChangeKind::DeleteSecret,
                    None,
                ));
            }
            SecretWrite::Update { secret, new_versions, stage_updates, .. } => {
                let before = before?;
                let kind = match (before.secret.deletion_date, secret.deletion_date) {
                    (None, Some(_)) => ChangeKind::DeleteSecret,
                    (Some(_), None) => ChangeKind::RestoreSecret,
                    _ if new_versions.is_empty() && stage_updates.is_empty() => return None,
                    _ if by_rotation => ChangeKind::Rotation,
                    _ if !new_versions.is_empty() && event_name == "UpdateSecret" => ChangeKind::UpdateSecret,
                    _ if !new_versions.is_empty() => ChangeKind::PutSecretValue,
                    _ => ChangeKind::UpdateSecretVersionStage,
                };
                let version_id = match kind {
                    ChangeKind::DeleteSecret => None,
                    _ => new_versions
                        .first()
                        .map(|v| v.version_id.clone())
                        .or_else(|| current_after(before, stage_updates)),
                };
                (kind, version_id, secret)
            }
        };
        Some(self.change_event(
            ChangeSubjectKind::Secret,
            secret.region.clone(),
            secret.name.clone(),
            secret.arn.clone(),
            kind,
            version_id,
        ))
    }

    /// What a parameter write about to be committed changes for readers: `None` for tags alone.
    pub(crate) fn parameter_change(&self, ctx: &RequestContext, write: &ParameterWrite) -> Option<ChangeEvent> {
        let (region, name, kind, version) = match write {
            ParameterWrite::Create(p) => {
                (&p.region, &p.name, ChangeKind::PutParameter, p.versions.last().map(|v| v.version))
            }
            ParameterWrite::Delete { region, name, .. } => (region, name, ChangeKind::DeleteParameter, None),
            ParameterWrite::Update { region, name, new_version: Some(v), .. } => {
                (region, name, ChangeKind::PutParameter, Some(v.version))
            }
            ParameterWrite::Update { region, name, label_updates, .. } if !label_updates.is_empty() => {
                let kind = if ctx.audit.lock().event_name == "UnlabelParameterVersion" {
                    ChangeKind::UnlabelParameterVersion
                } else {
                    ChangeKind::LabelParameterVersion
                };
                (region, name, kind, label_updates.first().map(|(v, _)| *v))
            }
            ParameterWrite::Update { .. } => return None,
        };
        let arn = parameter_arn(region, &self.config.account_id, name);
        Some(self.change_event(
            ChangeSubjectKind::Parameter,
            region.clone(),
            name.clone(),
            arn,
            kind,
            version.map(|v| v.to_string()),
        ))
    }

    fn change_event(
        &self,
        subject: ChangeSubjectKind,
        region: String,
        name: String,
        arn: String,
        kind: ChangeKind,
        version_id: Option<String>,
    ) -> ChangeEvent {
        ChangeEvent { seq: 0, subject, region, name, arn, kind, version_id, time: self.clock.now_millis() }
    }

    /// Records a committed change in the journal and wakes the subscribers waiting for one.
    pub(crate) fn publish_change(&self, change: Option<ChangeEvent>) {
        if let Some(change) = change {
            self.changes.record(Recorded::Change(change));
        }
    }

    /// Records what the store's change feed says another node changed (see
    /// [`Service::apply_change_notice`]).
    pub(crate) fn publish_notice(&self, notice: &coffer_store::ChangeNotice) {
        use coffer_store::ChangeNotice;
        let change = match notice {
            ChangeNotice::Secret { arn } => secret_name_of_arn(arn).map(|(region, name)| {
                self.change_event(ChangeSubjectKind::Secret, region, name, arn.clone(), ChangeKind::Changed, None)
            }),
            ChangeNotice::Parameter { region, name } => Some(self.change_event(
                ChangeSubjectKind::Parameter,
                region.clone(),
                name.clone(),
                parameter_arn(region, &self.config.account_id, name),
                ChangeKind::Changed,
                None,
            )),
            ChangeNotice::KmsKey { .. } => None,
            ChangeNotice::Everything => {
                self.changes.record(Recorded::Reset);
                None
            }
        };
        self.publish_change(change);
    }

    /// Ends every change wait now and answers later ones at once, so a shutting-down (or sealing)
    /// server is not held up by subscribers.
    pub fn close_change_waits(&self) {
        self.changes.close();
    }

    /// Waits up to `input.wait` for a change the caller subscribed to and may read, and answers the
    /// changes recorded after `input.cursor` (see the module documentation).
    pub async fn wait_for_changes(
        &self,
        ctx: &RequestContext,
        input: WaitForChangesInput,
    ) -> ServiceResult<ChangesPage> {
        self.authorize(ctx, &Access::new("coffer:WaitForChanges", "*")).await?;
        if input.wait > MAX_WAIT {
            return Err(ServiceError::invalid_parameter(format!(
                "WaitTimeSeconds must be between 0 and {}.",
                MAX_WAIT.as_secs()
            )));
        }
        let subscription = Subscription::compile(ctx, &input)?;
        let Some(cursor) = input.cursor.as_deref() else {
            return Ok(ChangesPage {
                changes: Vec::new(),
                cursor: self.changes.cursor(self.changes.last_seq()),
                reset: false,
            });
        };
        let (epoch, mut after) = parse_cursor(cursor)?;
        if epoch != self.changes.epoch {
            let head = self.changes.last_seq();
            return Ok(ChangesPage { changes: Vec::new(), cursor: self.changes.cursor(head), reset: true });
        }
        let deadline = tokio::time::Instant::now() + input.wait;
        let mut head = self.changes.head.subscribe();
        // Decisions per record within this call: a record changed many times is authorized once.
        let mut readable: HashMap<(ChangeSubjectKind, String), bool> = HashMap::new();
        loop {
            // Marked seen before the ring is read: a change recorded after this wakes the wait below.
            let closed = head.borrow_and_update().closed;
            match self.changes.since(after) {
                Unseen::Reset(last) => {
                    return Ok(ChangesPage { changes: Vec::new(), cursor: self.changes.cursor(last), reset: true });
                }
                Unseen::Changes(changes, last) => {
                    let mut visible = Vec::new();
                    for change in changes.into_iter().filter(|c| subscription.matches(c)) {
                        let key = (change.subject, change.arn.clone());
                        let allowed = match readable.get(&key) {
                            Some(allowed) => *allowed,
                            None => {
                                let allowed = self.may_read_change(ctx, &change).await?;
                                readable.insert(key, allowed);
                                allowed
                            }
                        };
                        if allowed {
                            visible.push(change);
                        }
                    }
                    after = last;
                    if !visible.is_empty() {
                        return Ok(ChangesPage { changes: visible, cursor: self.changes.cursor(after), reset: false });
                    }
                }
            }
            if closed {
                break;
            }
            match tokio::time::timeout_at(deadline, head.changed()).await {
                Ok(Ok(())) => {}
                // The journal is gone (cannot happen while `self` lives) or the wait is over.
                Ok(Err(_)) | Err(_) => break,
            }
        }
        Ok(ChangesPage { changes: Vec::new(), cursor: self.changes.cursor(after), reset: false })
    }

    /// Whether the caller may read the record a change names, as GetSecretValue or GetParameter would
    /// decide (a record gone since is judged by its ARN alone). Evaluated with a context of its own, so
    /// the records a subscriber was not told of stay out of its request's audit event too.
    async fn may_read_change(&self, ctx: &RequestContext, change: &ChangeEvent) -> ServiceResult<bool> {
        let probe = RequestContext { audit: Default::default(), ..ctx.clone() };
        let decision = match change.subject {
            ChangeSubjectKind::Secret => {
                self.authorized_secret(&probe, "secretsmanager:GetSecretValue", &change.arn, |a| a).await.map(|_| ())
            }
            ChangeSubjectKind::Parameter => {
                let current = self.store.load_parameter(&change.region, &change.name).await?;
                self.authorize_parameter(&probe, "ssm:GetParameter", &change.name, current.as_ref(), |a| a).await
            }
        };
        match decision {
            Ok(()) => Ok(true),
            // Authorized against the ARN before the record turned out to be gone.
            Err(e) if e.kind == ErrorKind::NotFound => Ok(true),
            Err(e) if e.kind == ErrorKind::AccessDenied => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(name: &str) -> Recorded {
        Recorded::Change(ChangeEvent {
            seq: 0,
            subject: ChangeSubjectKind::Parameter,
            region: "us-east-1".into(),
            name: name.into(),
            arn: format!("arn:aws:ssm:us-east-1:1:parameter/{name}"),
            kind: ChangeKind::PutParameter,
            version_id: Some("1".into()),
            time: 0,
        })
    }

    fn names(unseen: Unseen) -> Vec<String> {
        match unseen {
            Unseen::Changes(changes, _) => changes.into_iter().map(|c| c.name).collect(),
            Unseen::Reset(_) => panic!("reset"),
        }
    }

    #[test]
    fn the_ring_answers_what_follows_a_cursor_until_it_forgot_it() {
        let journal = ChangeJournal::with_capacity(3);
        assert!(names(journal.since(0)).is_empty());
        for name in ["a", "b", "c", "d"] {
            journal.record(change(name));
        }
        assert_eq!(names(journal.since(1)), ["b", "c", "d"]);
        assert_eq!(names(journal.since(3)), ["d"]);
        assert!(names(journal.since(4)).is_empty());
        assert!(matches!(journal.since(0), Unseen::Reset(4)), "a's change was forgotten");
        assert!(matches!(journal.since(5), Unseen::Reset(4)), "a cursor from the future is not this journal's");
        journal.record(Recorded::Reset);
        assert!(matches!(journal.since(4), Unseen::Reset(5)), "lost notices reset every subscriber behind them");
        assert!(names(journal.since(5)).is_empty());
    }

    #[test]
    fn cursors_are_checked() {
        assert_eq!(parse_cursor("00ff:12").unwrap(), ("00ff", 12));
        for bad in ["", "12", "zz:1", ":1", "00ff:", "00ff:-1", "00ff:x"] {
            assert_eq!(parse_cursor(bad).unwrap_err().kind, ErrorKind::InvalidParameter, "{bad}");
        }
    }

    #[test]
    fn paths_cover_what_lies_below_them() {
        assert!(under("prod/app", "/prod/app/db"));
        assert!(under("prod/app", "prod/app/db"));
        assert!(under("prod/app", "/prod/app/deep/er"));
        assert!(!under("prod/app", "/prod/application/db"));
        assert!(!under("prod/app", "/prod/app"));
        assert!(under("", "anything"));
    }

    #[test]
    fn arns_name_their_secret() {
        assert_eq!(
            secret_name_of_arn("arn:aws:secretsmanager:eu-west-1:1:secret:/a/b-AbC123"),
            Some(("eu-west-1".into(), "/a/b".into()))
        );
        assert_eq!(secret_name_of_arn("arn:aws:ssm:eu-west-1:1:parameter/a"), None);
    }
}
