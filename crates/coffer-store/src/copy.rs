//! Copying one store into another: `coffer storage migrate` between the embedded SQLite file and
//! PostgreSQL, either way.
//!
//! The copy is logical — records read through one backend's [`Store`] and written through the
//! other's — so the two schemas never need to agree. It moves records as they are: envelopes and sealed
//! keys stay ciphertext (the copy needs no master key and decrypts nothing), and the audit log keeps
//! every seq, predecessor hash, body and digest, so the copied chain verifies with the same public key
//! and ends at the same head.
//!
//! The target must be empty (never initialized): merging two installations is not a copy. Both stores
//! must be quiet while it runs — stop every node first — or the copy may miss what was written after
//! it read that part of the source; [`compare`] at the end finds such differences.

use crate::{
    AccessKeyRecord, AliasRecord, AuditAppend, AuditHead, IamEntityRecord, IamWrite, KmsKeyState, ParameterQuery,
    ParameterState, SecretState, SecretWrite, Store, StoreError, StoreResult,
};

/// How many audit records are read and appended at a time.
const AUDIT_BATCH: usize = 2_000;
/// How many parameters a listing page holds.
const PARAMETER_PAGE: usize = 500;
/// The setting an initialized installation always has (written by the service at its first start).
const INITIALIZED_SETTING: &str = "master-key-check";

/// Everything but the audit log, as read from one store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contents {
    pub settings: Vec<(String, Vec<u8>)>,
    pub secrets: Vec<SecretState>,
    pub parameters: Vec<ParameterState>,
    pub kms_keys: Vec<KmsKeyState>,
    pub aliases: Vec<AliasRecord>,
    pub access_keys: Vec<AccessKeyRecord>,
    pub iam_entities: Vec<IamEntityRecord>,
}

/// What a copy moved.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    pub settings: usize,
    pub secrets: usize,
    pub secret_versions: usize,
    pub parameters: usize,
    pub parameter_versions: usize,
    pub kms_keys: usize,
    pub aliases: usize,
    pub access_keys: usize,
    pub iam_entities: usize,
    pub audit_records: u64,
    pub audit_digests: u64,
    /// The last audit record's seq (0 for an empty log).
    pub audit_head_seq: u64,
}

/// Where a copy is, for progress displays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyStep {
    /// Copying the records of one kind.
    Records(&'static str),
    /// Audit records copied so far, of about `total`.
    Audit { copied: u64, total: u64 },
}

/// Reads every record of `store` except the audit log, in a stable order.
pub async fn read_contents(store: &dyn Store) -> StoreResult<Contents> {
    let mut contents = Contents { settings: store.list_settings().await?, ..Contents::default() };
    for region in store.list_regions().await? {
        for record in store.list_secrets(&region).await? {
            // Deleted between the listing and the load: the copy simply does not hold it.
            if let Some(state) = store.load_secret_by_arn(&record.arn).await? {
                contents.secrets.push(state);
            }
        }
        let mut after = None;
        loop {
            let page = store
                .list_parameters(ParameterQuery {
                    region: region.clone(),
                    path: "/".into(),
                    recursive: true,
                    after: after.take(),
                    limit: PARAMETER_PAGE,
                    latest_only: false,
                })
                .await?;
            let full = page.len() == PARAMETER_PAGE;
            after = page.last().map(|p| p.name.clone());
            contents.parameters.extend(page);
            if !full {
                break;
            }
        }
        for key in store.list_kms_keys(&region).await? {
            if let Some(state) = store.load_kms_key(&region, &key.key_id).await? {
                contents.kms_keys.push(state);
            }
        }
        contents.aliases.extend(store.list_aliases(&region).await?);
    }
    contents.access_keys = store.list_all_access_keys().await?;
    contents.iam_entities = store.load_iam().await?.1;
    Ok(contents)
}

/// Whether `store` holds nothing a copy could overwrite: never initialized, no records, no audit log.
pub async fn is_empty(store: &dyn Store) -> StoreResult<bool> {
    Ok(store.get_setting(INITIALIZED_SETTING).await?.is_none()
        && store.list_settings().await?.is_empty()
        && store.list_regions().await?.is_empty()
        && store.list_all_access_keys().await?.is_empty()
        && store.load_iam().await?.1.is_empty()
        && store.audit_head().await?.seq == 0
        && store.latest_audit_digest().await?.is_none())
}

/// Copies everything in `from` into the empty store `to`. Refuses (with [`StoreError::InvalidWrite`])
/// a target that holds anything.
pub async fn copy_store(
    from: &dyn Store,
    to: &dyn Store,
    progress: &mut (dyn FnMut(CopyStep) + Send),
) -> StoreResult<CopyReport> {
    if !is_empty(to).await? {
        return Err(StoreError::InvalidWrite(
            "the target storage is not empty: a copy goes into storage that was never initialized".into(),
        ));
    }
    let contents = read_contents(from).await?;
    let mut report = CopyReport::default();

    progress(CopyStep::Records("settings"));
    for (key, value) in &contents.settings {
        if !to.put_setting_if_absent(key, value).await? {
            return Err(StoreError::AlreadyExists);
        }
        report.settings += 1;
    }
    progress(CopyStep::Records("KMS keys"));
    for key in &contents.kms_keys {
        to.write_kms_key(crate::KmsKeyWrite::Create(key.clone()), None).await?;
        report.kms_keys += 1;
    }
    for alias in &contents.aliases {
        to.write_alias(crate::AliasWrite::Create(alias.clone()), None).await?;
        report.aliases += 1;
    }
    progress(CopyStep::Records("secrets"));
    for secret in &contents.secrets {
        report.secret_versions += secret.versions.len();
        to.write_secret(SecretWrite::Create(secret.clone()), None).await?;
        report.secrets += 1;
    }
    progress(CopyStep::Records("parameters"));
    for parameter in &contents.parameters {
        report.parameter_versions += parameter.versions.len();
        to.write_parameter(crate::ParameterWrite::Create(parameter.clone()), None).await?;
        report.parameters += 1;
    }
    progress(CopyStep::Records("IAM"));
    // A new entity starts at revision 1 in every backend; revisions are only compare-and-swap tokens,
    // so the copy's restart is harmless (nothing can hold an old token across a stopped installation).
    let entities: Vec<IamWrite> = contents
        .iam_entities
        .iter()
        .map(|e| IamWrite::Create(IamEntityRecord { revision: 1, ..e.clone() }))
        .chain(contents.access_keys.iter().cloned().map(IamWrite::InsertAccessKey))
        .collect();
    if !entities.is_empty() {
        to.write_iam(entities, None).await?;
    }
    report.iam_entities = contents.iam_entities.len();
    report.access_keys = contents.access_keys.len();

    let (records, digests) = copy_audit_log(from, to, progress).await?;
    report.audit_records = records;
    report.audit_digests = digests;
    report.audit_head_seq = to.audit_head().await?.seq;
    Ok(report)
}

/// Copies the audit chain and its digests, keeping every seq, hash and digest number.
async fn copy_audit_log(
    from: &dyn Store,
    to: &dyn Store,
    progress: &mut (dyn FnMut(CopyStep) + Send),
) -> StoreResult<(u64, u64)> {
    let source_head = from.audit_head().await?;
    let first_digest = from.audit_digests(0, 1).await?.into_iter().next();
    let mut copied = 0u64;
    if let Some(oldest) = from.audit_oldest_seq().await? {
        let first = from.audit_records_from(oldest, 1).await?;
        let first = first.first().ok_or_else(|| StoreError::Corrupt("the oldest audit record vanished".into()))?;
        // The chain before the oldest kept record (pruned, or none): the copy continues from there.
        let before = AuditHead { seq: first.seq - 1, hash: first.prev_hash };
        let last_digest_number = first_digest.as_ref().map_or(0, |d| d.number - 1);
        to.start_audit_log_at(before, last_digest_number).await?;
        let total = source_head.seq.saturating_sub(before.seq);
        let mut next = first.seq;
        loop {
            let records = from.audit_records_from(next, AUDIT_BATCH).await?;
            let Some(last) = records.last() else { break };
            next = last.seq + 1;
            let batch: Vec<AuditAppend> = records
                .into_iter()
                .map(|r| {
                    // The lookup index is derived from the body, as the service derived it at append.
                    let lookup = coffer_audit::event::Event::from_json(&r.body)
                        .map(|event| event.index_entries())
                        .unwrap_or_default();
                    AuditAppend { event_id: r.event_id, time_ms: r.time_ms, body: r.body, lookup }
                })
                .collect();
            let count = batch.len() as u64;
            to.append_audit(std::sync::Arc::new(batch)).await?;
            copied += count;
            progress(CopyStep::Audit { copied, total });
        }
    } else if let Some(first) = &first_digest {
        // Every record was pruned but digests remain.
        to.start_audit_log_at(source_head, first.number - 1).await?;
    } else if source_head.seq > 0 {
        to.start_audit_log_at(source_head, 0).await?;
    }

    let mut digests = 0u64;
    let mut next = first_digest.map_or(0, |d| d.number);
    loop {
        let page = from.audit_digests(next, AUDIT_BATCH).await?;
        let Some(last) = page.last() else { break };
        next = last.number + 1;
        for digest in page {
            to.append_audit_digest(
                digest.number - 1,
                crate::AuditDigestAppend {
                    time_ms: digest.time_ms,
                    last_seq: digest.last_seq,
                    body: digest.body,
                    signature: digest.signature,
                },
            )
            .await?;
            digests += 1;
        }
    }
    Ok((copied, digests))
}

/// The differences between two stores, by identifiers only (never a value): empty when `b` holds
/// exactly what `a` does — every record, every envelope byte, the same audit chain and digests. IAM
/// entity revisions are not compared (a copy restarts them; see [`copy_store`]).
pub async fn compare(a: &dyn Store, b: &dyn Store) -> StoreResult<Vec<String>> {
    let mut left = read_contents(a).await?;
    let mut right = read_contents(b).await?;
    for entity in left.iam_entities.iter_mut().chain(right.iam_entities.iter_mut()) {
        entity.revision = 0;
    }
    let mut differences = Vec::new();
    if left.settings.iter().map(|(k, _)| k).ne(right.settings.iter().map(|(k, _)| k)) {
        differences.push("the settings differ in their keys".to_string());
    } else {
        for ((key, x), (_, y)) in left.settings.iter().zip(&right.settings) {
            if x != y {
                differences.push(format!("setting {key} differs"));
            }
        }
    }
    compare_lists(&mut differences, "secret", &left.secrets, &right.secrets, |s| s.secret.arn.clone());
    compare_lists(&mut differences, "parameter", &left.parameters, &right.parameters, |p| {
        format!("{}:{}", p.region, p.name)
    });
    compare_lists(&mut differences, "KMS key", &left.kms_keys, &right.kms_keys, |k| k.key.arn.clone());
    compare_lists(&mut differences, "alias", &left.aliases, &right.aliases, |a| {
        format!("{}:{}", a.region, a.alias_name)
    });
    compare_lists(&mut differences, "access key", &left.access_keys, &right.access_keys, |k| k.access_key_id.clone());
    compare_lists(&mut differences, "IAM entity", &left.iam_entities, &right.iam_entities, |e| {
        format!("{} {}", e.kind.as_str(), e.name)
    });

    let (head_a, head_b) = (a.audit_head().await?, b.audit_head().await?);
    if head_a != head_b {
        differences.push(format!("the audit heads differ (seq {} and seq {})", head_a.seq, head_b.seq));
    }
    if a.audit_oldest_seq().await? != b.audit_oldest_seq().await? {
        differences.push("the audit logs start at different records".to_string());
    }
    let mut next = a.audit_oldest_seq().await?.unwrap_or(head_a.seq + 1);
    loop {
        let (x, y) = (a.audit_records_from(next, AUDIT_BATCH).await?, b.audit_records_from(next, AUDIT_BATCH).await?);
        if let Some(at) =
            x.iter().zip(&y).position(|(r, s)| r != s).or((x.len() != y.len()).then(|| x.len().min(y.len())))
        {
            differences.push(format!("the audit logs differ from record {}", next + at as u64));
            break;
        }
        match x.last() {
            Some(last) => next = last.seq + 1,
            None => break,
        }
    }
    let (digests_a, digests_b) = (all_digests(a).await?, all_digests(b).await?);
    if digests_a != digests_b {
        differences.push(format!("the audit digests differ ({} and {})", digests_a.len(), digests_b.len()));
    }
    Ok(differences)
}

async fn all_digests(store: &dyn Store) -> StoreResult<Vec<crate::AuditDigestRecord>> {
    let mut all = Vec::new();
    let mut next = 0;
    loop {
        let page = store.audit_digests(next, AUDIT_BATCH).await?;
        let Some(last) = page.last() else { return Ok(all) };
        next = last.number + 1;
        all.extend(page);
    }
}

/// Names the records only one list has or that differ, in the lists' order.
fn compare_lists<T: PartialEq>(out: &mut Vec<String>, what: &str, a: &[T], b: &[T], id: impl Fn(&T) -> String) {
    let ids_b: std::collections::HashMap<String, &T> = b.iter().map(|r| (id(r), r)).collect();
    let ids_a: std::collections::HashSet<String> = a.iter().map(&id).collect();
    for record in a {
        let key = id(record);
        match ids_b.get(&key) {
            None => out.push(format!("{what} {key} is missing from the copy")),
            Some(other) if *other != record => out.push(format!("{what} {key} differs")),
            Some(_) => {}
        }
    }
    for record in b {
        let key = id(record);
        if !ids_a.contains(&key) {
            out.push(format!("{what} {key} is only in the copy"));
        }
    }
}
