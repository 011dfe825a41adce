//! An in-memory [`Store`] for service-layer tests: the same semantics as the durable backends (it
//! passes the conformance suite), none of the durability.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use coffer_audit::chain::record_hash;

use crate::audit::GENESIS;
use crate::{
    AccessKeyRecord, AliasRecord, AliasWrite, AuditAppend, AuditBatch, AuditDigestAppend, AuditDigestRecord, AuditHead,
    AuditQuery, AuditRecord, EnvelopeSwap, EpochMillis, IamEntityRecord, IamKind, IamWrite, KmsKeyRecord, KmsKeyState,
    KmsKeyWrite, LookupAttribute, ParameterQuery, ParameterState, ParameterWrite, SecretRecord, SecretState,
    SecretWrite, Store, StoreError, StoreResult, ValueMatch,
};

/// Versions ordered as the durable backends return them: by creation time, then insertion order.
fn oldest_first(state: &SecretState) -> SecretState {
    let mut out = state.clone();
    out.versions.sort_by_key(|v| v.created);
    out
}

#[derive(Default)]
struct Inner {
    secrets: HashMap<String, SecretState>,
    access_keys: HashMap<String, AccessKeyRecord>,
    /// (region, name) -> parameter; ordered so path listings are range scans, as in the durable backends.
    parameters: std::collections::BTreeMap<(String, String), ParameterState>,
    settings: HashMap<String, Vec<u8>>,
    /// (region, key id) -> key.
    kms_keys: HashMap<(String, String), KmsKeyState>,
    /// (region, alias name) -> alias; ordered for listings.
    aliases: std::collections::BTreeMap<(String, String), AliasRecord>,
    /// (kind, name) -> entity; ordered as listings return them.
    iam: std::collections::BTreeMap<(IamKind, String), IamEntityRecord>,
    iam_generation: u64,
    audit: AuditLog,
}

/// The audit chain, kept as the durable backends keep it: records by seq with their lookup entries, the
/// head apart from them (pruning never moves it), and the digests with their own counter.
struct AuditLog {
    records: BTreeMap<u64, (AuditRecord, Vec<(LookupAttribute, String)>)>,
    head: AuditHead,
    digests: BTreeMap<u64, AuditDigestRecord>,
    /// The newest digest number ever assigned: numbers are never reused, even after every digest was
    /// pruned, so two different signed digests can never carry the same number.
    digest_number: u64,
}

impl Default for AuditLog {
    fn default() -> Self {
        AuditLog {
            records: BTreeMap::new(),
            head: AuditHead { seq: 0, hash: GENESIS },
            digests: BTreeMap::new(),
            digest_number: 0,
        }
    }
}

impl AuditLog {
    /// Chains one event after the head. Called only once the change it records (if any) has applied,
    /// under the store's lock: the chain's order is the order changes become visible.
    fn append(&mut self, event: AuditAppend) {
        let seq = self.head.seq + 1;
        let hash = record_hash(seq, &self.head.hash, event.time_ms, &event.event_id, &event.body);
        let record = AuditRecord {
            seq,
            event_id: event.event_id,
            time_ms: event.time_ms,
            prev_hash: self.head.hash,
            body: event.body,
        };
        self.records.insert(seq, (record, event.lookup));
        self.head = AuditHead { seq, hash };
    }

    fn append_all(&mut self, events: impl IntoIterator<Item = AuditAppend>) {
        for event in events {
            self.append(event);
        }
    }

    fn matches(record: &AuditRecord, lookup: &[(LookupAttribute, String)], q: &AuditQuery) -> bool {
        let value_matches = |value: &str, m: &ValueMatch| match m {
            ValueMatch::Exact(v) => value == v,
            ValueMatch::Prefix(p) => value.starts_with(p.as_str()),
        };
        let found = match &q.lookup {
            None => true,
            Some((attr, m)) => {
                (*attr == LookupAttribute::EventId && value_matches(&record.event_id, m))
                    || lookup.iter().any(|(a, v)| a == attr && value_matches(v, m))
            }
        };
        found
            && q.start_ms.is_none_or(|start| record.time_ms >= start)
            && q.end_ms.is_none_or(|end| record.time_ms <= end)
    }
}

/// Applies one IAM change to a scratch copy; the caller keeps the copy only if the whole batch applies.
fn apply_iam(
    iam: &mut std::collections::BTreeMap<(IamKind, String), IamEntityRecord>,
    keys: &mut HashMap<String, AccessKeyRecord>,
    write: IamWrite,
) -> StoreResult<()> {
    match write {
        IamWrite::Create(record) => {
            if record.revision != 1 {
                return Err(StoreError::InvalidWrite("a new IAM entity starts at revision 1".into()));
            }
            let key = (record.kind, record.name.clone());
            if iam.contains_key(&key) {
                return Err(StoreError::AlreadyExists);
            }
            iam.insert(key, record);
        }
        IamWrite::Update { expected_revision, record } => {
            if record.revision != expected_revision + 1 {
                return Err(StoreError::InvalidWrite("an update advances the revision by one".into()));
            }
            let current = iam.get_mut(&(record.kind, record.name.clone())).ok_or(StoreError::NotFound)?;
            if current.revision != expected_revision {
                return Err(StoreError::Conflict);
            }
            *current = record;
        }
        IamWrite::Delete { kind, name, expected_revision } => {
            let current = iam.get(&(kind, name.clone())).ok_or(StoreError::NotFound)?;
            if current.revision != expected_revision {
                return Err(StoreError::Conflict);
            }
            iam.remove(&(kind, name));
        }
        IamWrite::InsertAccessKey(key) => {
            if keys.contains_key(&key.access_key_id) {
                return Err(StoreError::AlreadyExists);
            }
            keys.insert(key.access_key_id.clone(), key);
        }
        IamWrite::AccessKeyStatus { access_key_id, status } => {
            keys.get_mut(&access_key_id).ok_or(StoreError::NotFound)?.status = status;
        }
        IamWrite::DeleteAccessKey { access_key_id } => {
            keys.remove(&access_key_id).ok_or(StoreError::NotFound)?;
        }
    }
    Ok(())
}

/// A store that lives and dies with the process.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Set by tests: every audit append (alone or with a change) fails with this reason.
    audit_fault: Mutex<Option<String>>,
    /// Set by tests: appends of queued events (`append_audit`) wait while this holds `true`.
    audit_hold: tokio::sync::watch::Sender<bool>,
    /// Appends of queued events begun so far (including ones waiting on `audit_hold`).
    audit_appends: std::sync::atomic::AtomicUsize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            inner: Mutex::default(),
            audit_fault: Mutex::default(),
            audit_hold: tokio::sync::watch::Sender::new(false),
            audit_appends: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// For tests of what arrives while a flush is writing: while held, appends of queued events
    /// (`append_audit`) wait; releasing lets them finish.
    pub fn hold_audit_appends(&self, hold: bool) {
        self.audit_hold.send_replace(hold);
    }

    /// How many appends of queued events have begun (held ones included).
    pub fn audit_appends_begun(&self) -> usize {
        self.audit_appends.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Fault injection for tests of failing closed: while set, appending audit events fails (as a full
    /// disk would) — a change that carries an event fails whole.
    pub fn fail_audit_appends(&self, reason: Option<&str>) {
        *self.audit_fault.lock().unwrap_or_else(|p| p.into_inner()) = reason.map(str::to_string);
    }

    fn check_audit_fault(&self, appends: bool) -> StoreResult<()> {
        if !appends {
            return Ok(());
        }
        match self.audit_fault.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(reason) => Err(StoreError::Unavailable(reason.clone())),
            None => Ok(()),
        }
    }

    fn lock(&self) -> StoreResult<std::sync::MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    async fn load_secret_by_name(&self, region: &str, name: &str) -> StoreResult<Option<SecretState>> {
        let inner = self.lock()?;
        Ok(inner.secrets.values().find(|s| s.secret.region == region && s.secret.name == name).map(oldest_first))
    }

    async fn load_secret_by_arn(&self, arn: &str) -> StoreResult<Option<SecretState>> {
        Ok(self.lock()?.secrets.get(arn).map(oldest_first))
    }

    async fn list_secrets(&self, region: &str) -> StoreResult<Vec<SecretRecord>> {
        let inner = self.lock()?;
        let mut out: Vec<SecretRecord> =
            inner.secrets.values().filter(|s| s.secret.region == region).map(|s| s.secret.clone()).collect();
        out.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.arn.cmp(&b.arn)));
        Ok(out)
    }

    async fn write_secret(&self, write: SecretWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.check_audit_fault(audit.is_some())?;
        write.check()?;
        let mut inner = self.lock()?;
        match write {
            SecretWrite::Create(state) => {
                let taken = inner
                    .secrets
                    .values()
                    .any(|s| s.secret.region == state.secret.region && s.secret.name == state.secret.name);
                if taken || inner.secrets.contains_key(&state.secret.arn) {
                    return Err(StoreError::AlreadyExists);
                }
                inner.secrets.insert(state.secret.arn.clone(), state);
            }
            SecretWrite::Update { expected_revision, secret, new_versions, stage_updates, deleted_versions } => {
                let current = inner.secrets.get_mut(&secret.arn).ok_or(StoreError::NotFound)?;
                if current.secret.revision != expected_revision {
                    return Err(StoreError::Conflict);
                }
                // A version id is unique within its secret, as the durable backends' primary keys make it.
                if new_versions.iter().any(|n| current.versions.iter().any(|v| v.version_id == n.version_id)) {
                    return Err(StoreError::AlreadyExists);
                }
                // The last access day only moves forward (see the SQLite backend).
                let last_accessed = current.secret.last_accessed.max(secret.last_accessed);
                current.secret = secret;
                current.secret.last_accessed = last_accessed;
                current.versions.retain(|v| !deleted_versions.contains(&v.version_id));
                for (id, stages) in stage_updates {
                    if let Some(v) = current.versions.iter_mut().find(|v| v.version_id == id) {
                        v.stages = stages;
                    }
                }
                current.versions.extend(new_versions);
            }
            SecretWrite::Delete { arn, expected_revision } => {
                let current = inner.secrets.get(&arn).ok_or(StoreError::NotFound)?;
                if current.secret.revision != expected_revision {
                    return Err(StoreError::Conflict);
                }
                inner.secrets.remove(&arn);
            }
        }
        // Reached only when the change applied: a failed change appends nothing.
        inner.audit.append_all(audit);
        Ok(())
    }

    async fn touch_secret_accessed(&self, arn: &str, day: EpochMillis) -> StoreResult<()> {
        if let Some(s) = self.lock()?.secrets.get_mut(arn) {
            s.secret.last_accessed = Some(day);
        }
        Ok(())
    }

    async fn secrets_due_for_deletion(&self, now: EpochMillis) -> StoreResult<Vec<(String, u64)>> {
        let inner = self.lock()?;
        Ok(inner
            .secrets
            .values()
            .filter(|s| s.secret.deletion_date.is_some_and(|d| d <= now))
            .map(|s| (s.secret.arn.clone(), s.secret.revision))
            .collect())
    }

    async fn insert_access_key(&self, key: AccessKeyRecord) -> StoreResult<()> {
        let mut inner = self.lock()?;
        if inner.access_keys.contains_key(&key.access_key_id) {
            return Err(StoreError::AlreadyExists);
        }
        inner.access_keys.insert(key.access_key_id.clone(), key);
        Ok(())
    }

    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        Ok(self.lock()?.access_keys.get(access_key_id).cloned())
    }

    async fn load_parameter(&self, region: &str, name: &str) -> StoreResult<Option<ParameterState>> {
        Ok(self.lock()?.parameters.get(&(region.to_string(), name.to_string())).cloned())
    }

    async fn write_parameter(&self, write: ParameterWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.check_audit_fault(audit.is_some())?;
        write.check()?;
        let mut inner = self.lock()?;
        match write {
            ParameterWrite::Create(state) => {
                let key = (state.region.clone(), state.name.clone());
                if inner.parameters.contains_key(&key) {
                    return Err(StoreError::AlreadyExists);
                }
                inner.parameters.insert(key, state);
            }
            ParameterWrite::Update {
                expected_revision,
                region,
                name,
                revision,
                tags,
                new_version,
                label_updates,
                dropped_versions,
            } => {
                let current = inner.parameters.get_mut(&(region, name)).ok_or(StoreError::NotFound)?;
                if current.revision != expected_revision {
                    return Err(StoreError::Conflict);
                }
                if let Some(v) = &new_version {
                    if current.versions.iter().any(|c| c.version == v.version) {
                        return Err(StoreError::AlreadyExists);
                    }
                }
                current.revision = revision;
                current.tags = tags;
                current.versions.retain(|v| !dropped_versions.contains(&v.version));
                for (version, labels) in label_updates {
                    if let Some(v) = current.versions.iter_mut().find(|v| v.version == version) {
                        v.labels = labels;
                    }
                }
                current.versions.extend(new_version);
            }
            ParameterWrite::Delete { region, name, expected_revision } => {
                let key = (region, name);
                let current = inner.parameters.get(&key).ok_or(StoreError::NotFound)?;
                if current.revision != expected_revision {
                    return Err(StoreError::Conflict);
                }
                inner.parameters.remove(&key);
            }
        }
        // Reached only when the change applied: a failed change appends nothing.
        inner.audit.append_all(audit);
        Ok(())
    }

    async fn list_parameters(&self, query: ParameterQuery) -> StoreResult<Vec<ParameterState>> {
        let inner = self.lock()?;
        let prefix = if query.path == "/" { "/".to_string() } else { format!("{}/", query.path) };
        Ok(inner
            .parameters
            .range((query.region.clone(), query.after.clone().unwrap_or_default())..)
            .take_while(|((region, _), _)| *region == query.region)
            .filter(|((_, name), p)| {
                query.after.as_deref() != Some(name.as_str())
                    && (query.path == "/" || name.starts_with(&prefix))
                    && (query.recursive || p.parent_path == query.path)
            })
            .take(query.limit)
            .map(|(_, p)| {
                let mut p = p.clone();
                if query.latest_only && p.versions.len() > 1 {
                    p.versions.drain(..p.versions.len() - 1);
                }
                p
            })
            .collect())
    }

    async fn list_parameter_names(&self, query: ParameterQuery) -> StoreResult<Vec<String>> {
        Ok(self.list_parameters(query).await?.into_iter().map(|p| p.name).collect())
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.lock()?.settings.get(key).cloned())
    }

    async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        if inner.settings.contains_key(key) {
            return Ok(false);
        }
        inner.settings.insert(key.to_string(), value.to_vec());
        Ok(true)
    }

    async fn replace_setting(&self, key: &str, expected: &[u8], value: &[u8]) -> StoreResult<bool> {
        let mut inner = self.lock()?;
        match inner.settings.get_mut(key) {
            Some(current) if current.as_slice() == expected => {
                *current = value.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn load_kms_key(&self, region: &str, key_id: &str) -> StoreResult<Option<KmsKeyState>> {
        Ok(self.lock()?.kms_keys.get(&(region.to_string(), key_id.to_string())).cloned())
    }

    async fn list_kms_keys(&self, region: &str) -> StoreResult<Vec<KmsKeyRecord>> {
        let inner = self.lock()?;
        let mut keys: Vec<KmsKeyRecord> =
            inner.kms_keys.values().filter(|k| k.key.region == region).map(|k| k.key.clone()).collect();
        keys.sort_by(|a, b| (a.created, &a.key_id).cmp(&(b.created, &b.key_id)));
        Ok(keys)
    }

    async fn write_kms_key(&self, write: KmsKeyWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.check_audit_fault(audit.is_some())?;
        write.check()?;
        let mut inner = self.lock()?;
        match write {
            KmsKeyWrite::Create(state) => {
                let id = (state.key.region.clone(), state.key.key_id.clone());
                if inner.kms_keys.contains_key(&id) {
                    return Err(StoreError::AlreadyExists);
                }
                inner.kms_keys.insert(id, state);
            }
            KmsKeyWrite::Update { expected_revision, key, new_material } => {
                let id = (key.region.clone(), key.key_id.clone());
                let current = inner.kms_keys.get_mut(&id).ok_or(StoreError::NotFound)?;
                if current.key.revision != expected_revision {
                    return Err(StoreError::Conflict);
                }
                if let Some(m) = new_material {
                    if current.materials.iter().any(|x| x.version == m.version) {
                        return Err(StoreError::Conflict);
                    }
                    current.materials.push(m);
                }
                current.key = key;
            }
            KmsKeyWrite::Delete { region, key_id, expected_revision } => {
                let id = (region.clone(), key_id.clone());
                let current = inner.kms_keys.get(&id).ok_or(StoreError::NotFound)?;
                if current.key.revision != expected_revision {
                    return Err(StoreError::Conflict);
                }
                inner.kms_keys.remove(&id);
                inner.aliases.retain(|(r, _), a| !(r == &region && a.target_key_id == key_id));
            }
        }
        // Reached only when the change applied: a failed change appends nothing.
        inner.audit.append_all(audit);
        Ok(())
    }

    async fn load_alias(&self, region: &str, alias_name: &str) -> StoreResult<Option<AliasRecord>> {
        Ok(self.lock()?.aliases.get(&(region.to_string(), alias_name.to_string())).cloned())
    }

    async fn list_aliases(&self, region: &str) -> StoreResult<Vec<AliasRecord>> {
        Ok(self.lock()?.aliases.values().filter(|a| a.region == region).cloned().collect())
    }

    async fn write_alias(&self, write: AliasWrite, audit: Option<AuditAppend>) -> StoreResult<()> {
        self.check_audit_fault(audit.is_some())?;
        let mut inner = self.lock()?;
        match write {
            AliasWrite::Create(alias) => {
                let id = (alias.region.clone(), alias.alias_name.clone());
                if inner.aliases.contains_key(&id) {
                    return Err(StoreError::AlreadyExists);
                }
                inner.aliases.insert(id, alias);
            }
            AliasWrite::Update(alias) => {
                let id = (alias.region.clone(), alias.alias_name.clone());
                let current = inner.aliases.get_mut(&id).ok_or(StoreError::NotFound)?;
                *current = alias;
            }
            AliasWrite::Delete { region, alias_name } => {
                inner.aliases.remove(&(region, alias_name)).ok_or(StoreError::NotFound)?;
            }
        }
        // Reached only when the change applied: a failed change appends nothing.
        inner.audit.append_all(audit);
        Ok(())
    }

    async fn rewrap_secret_versions(&self, arn: &str, swaps: Vec<EnvelopeSwap<String>>) -> StoreResult<usize> {
        let mut inner = self.lock()?;
        let Some(state) = inner.secrets.get_mut(arn) else { return Ok(0) };
        let mut done = 0;
        for swap in swaps {
            if let Some(v) = state.versions.iter_mut().find(|v| v.version_id == swap.version && v.envelope == swap.old)
            {
                v.envelope = swap.new;
                done += 1;
            }
        }
        Ok(done)
    }

    async fn rewrap_parameter_versions(
        &self,
        region: &str,
        name: &str,
        swaps: Vec<EnvelopeSwap<i64>>,
    ) -> StoreResult<usize> {
        let mut inner = self.lock()?;
        let Some(state) = inner.parameters.get_mut(&(region.to_string(), name.to_string())) else { return Ok(0) };
        let mut done = 0;
        for swap in swaps {
            if let Some(v) = state.versions.iter_mut().find(|v| v.version == swap.version && v.envelope == swap.old) {
                v.envelope = swap.new;
                done += 1;
            }
        }
        Ok(done)
    }

    async fn load_iam(&self) -> StoreResult<(u64, Vec<IamEntityRecord>)> {
        let inner = self.lock()?;
        Ok((inner.iam_generation, inner.iam.values().cloned().collect()))
    }

    async fn iam_generation(&self) -> StoreResult<u64> {
        Ok(self.lock()?.iam_generation)
    }

    async fn write_iam(&self, writes: Vec<IamWrite>, audit: Option<AuditAppend>) -> StoreResult<u64> {
        self.check_audit_fault(audit.is_some())?;
        let mut inner = self.lock()?;
        let mut iam = inner.iam.clone();
        let mut keys = inner.access_keys.clone();
        for write in writes {
            apply_iam(&mut iam, &mut keys, write)?;
        }
        inner.iam = iam;
        inner.access_keys = keys;
        inner.iam_generation += 1;
        inner.audit.append_all(audit);
        Ok(inner.iam_generation)
    }

    async fn list_access_keys(&self, user_name: &str) -> StoreResult<Vec<AccessKeyRecord>> {
        let inner = self.lock()?;
        let mut keys: Vec<_> = inner.access_keys.values().filter(|k| k.user_name == user_name).cloned().collect();
        keys.sort_by(|a, b| (a.created, &a.access_key_id).cmp(&(b.created, &b.access_key_id)));
        Ok(keys)
    }

    async fn append_audit(&self, events: AuditBatch) -> StoreResult<AuditHead> {
        self.audit_appends.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // A closed channel cannot happen (the sender is this store's own); either way, go on.
        let _ = self.audit_hold.subscribe().wait_for(|held| !held).await;
        self.check_audit_fault(!events.is_empty())?;
        let mut inner = self.lock()?;
        inner.audit.append_all(Arc::unwrap_or_clone(events));
        Ok(inner.audit.head)
    }

    async fn audit_head(&self) -> StoreResult<AuditHead> {
        Ok(self.lock()?.audit.head)
    }

    async fn audit_oldest_seq(&self) -> StoreResult<Option<u64>> {
        Ok(self.lock()?.audit.records.keys().next().copied())
    }

    async fn query_audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let inner = self.lock()?;
        let below = query.before_seq.unwrap_or(u64::MAX);
        Ok(inner
            .audit
            .records
            .range(..below)
            .rev()
            .filter(|(_, (record, lookup))| AuditLog::matches(record, lookup, &query))
            .take(query.limit)
            .map(|(_, (record, _))| record.clone())
            .collect())
    }

    async fn audit_records_from(&self, from_seq: u64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        let inner = self.lock()?;
        Ok(inner.audit.records.range(from_seq..).take(limit).map(|(_, (record, _))| record.clone()).collect())
    }

    async fn audit_seq_at(&self, time_ms: EpochMillis) -> StoreResult<Option<u64>> {
        let inner = self.lock()?;
        Ok(inner.audit.records.values().find(|(record, _)| record.time_ms >= time_ms).map(|(record, _)| record.seq))
    }

    async fn append_audit_digest(&self, expected_latest: u64, digest: AuditDigestAppend) -> StoreResult<u64> {
        let mut inner = self.lock()?;
        let log = &mut inner.audit;
        if log.digest_number != expected_latest {
            return Err(StoreError::Conflict);
        }
        let number = expected_latest + 1;
        log.digests.insert(
            number,
            AuditDigestRecord {
                number,
                time_ms: digest.time_ms,
                last_seq: digest.last_seq,
                body: digest.body,
                signature: digest.signature,
            },
        );
        log.digest_number = number;
        Ok(number)
    }

    async fn audit_digests(&self, from_number: u64, limit: usize) -> StoreResult<Vec<AuditDigestRecord>> {
        let inner = self.lock()?;
        Ok(inner.audit.digests.range(from_number..).take(limit).map(|(_, d)| d.clone()).collect())
    }

    async fn latest_audit_digest(&self) -> StoreResult<Option<AuditDigestRecord>> {
        Ok(self.lock()?.audit.digests.values().next_back().cloned())
    }

    async fn prune_audit(&self, before_seq: u64, keep_digests_from: u64, limit: usize) -> StoreResult<u64> {
        let mut inner = self.lock()?;
        let log = &mut inner.audit;
        let doomed: Vec<u64> = log.records.range(..before_seq).take(limit).map(|(seq, _)| *seq).collect();
        for seq in &doomed {
            log.records.remove(seq);
        }
        log.digests.retain(|number, _| *number >= keep_digests_from);
        Ok(doomed.len() as u64)
    }

    async fn list_settings(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let inner = self.lock()?;
        let mut settings: Vec<_> = inner.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        settings.sort();
        Ok(settings)
    }

    async fn list_regions(&self) -> StoreResult<Vec<String>> {
        let inner = self.lock()?;
        let regions: std::collections::BTreeSet<String> = inner
            .secrets
            .values()
            .map(|s| s.secret.region.clone())
            .chain(inner.parameters.keys().map(|(region, _)| region.clone()))
            .chain(inner.kms_keys.keys().map(|(region, _)| region.clone()))
            .chain(inner.aliases.keys().map(|(region, _)| region.clone()))
            .collect();
        Ok(regions.into_iter().collect())
    }

    async fn list_all_access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>> {
        let inner = self.lock()?;
        let mut keys: Vec<_> = inner.access_keys.values().cloned().collect();
        keys.sort_by(|a, b| a.access_key_id.cmp(&b.access_key_id));
        Ok(keys)
    }

    async fn start_audit_log_at(&self, head: AuditHead, last_digest_number: u64) -> StoreResult<()> {
        let mut inner = self.lock()?;
        let log = &mut inner.audit;
        if log.head.seq != 0 || log.digest_number != 0 || !log.records.is_empty() || !log.digests.is_empty() {
            return Err(StoreError::Conflict);
        }
        log.head = head;
        log.digest_number = last_digest_number;
        Ok(())
    }
}
