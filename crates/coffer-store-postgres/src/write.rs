//! Writes: each decided change is one READ COMMITTED transaction, its audit events chained in the same
//! transaction after the change applied.
//!
//! Compare-and-swap: an update is a single `UPDATE ... WHERE key = $k AND revision = $expected`. The
//! UPDATE takes the row's lock; when another transaction (on this node or any other) holds it, the
//! statement waits for that transaction to end and then re-evaluates its WHERE against the row's newest
//! committed version. So of two writers naming the same revision exactly one matches the row, and the
//! other matches nothing and answers `Conflict`: a compare-and-swap that holds across processes without
//! a serializable transaction. A change of several rows keeps the row lock until it commits.
//!
//! Lock order, so writers cannot deadlock each other: the record's own row first (its metadata row,
//! then its versions; for IAM the generation row, which serializes IAM batches), the audit chain's
//! head row always last. PostgreSQL still resolves any deadlock it detects by aborting one transaction
//! (SQLSTATE 40P01), as it does a serialization failure (40001) should the server enforce a stricter
//! isolation: the retry loop in `lib.rs` runs such a transaction again, which is safe because nothing
//! of it was applied.
//!
//! A change to a secret, parameter or KMS key also notifies the `coffer_changes` channel in its
//! transaction (`changes.rs`), so other nodes drop their cached copies once, and only if, it commits.

use std::collections::BTreeSet;

use coffer_audit::chain::record_hash;
use coffer_store::audit::ChainHash;
use coffer_store::{
    AccessKeyRecord, AliasWrite, AuditAppend, AuditDigestAppend, AuditHead, ChangeNotice, EnvelopeSwap, EpochMillis,
    IamWrite, KeyMaterialRecord, KmsKeyWrite, LookupAttribute, ParameterVersionRecord, ParameterWrite, SecretWrite,
    StoreError, StoreResult, VersionRecord,
};
use deadpool_postgres::Transaction;
use tokio_postgres::types::{Json, ToSql};

use crate::changes;
use crate::error::{corrupt, TxError};

type TxResult<T> = Result<T, TxError>;

/// A write the store applies in one transaction.
pub(crate) enum WriteOp<'a> {
    Secret(&'a SecretWrite),
    Parameter(&'a ParameterWrite),
    KmsKey(&'a KmsKeyWrite),
    Alias(&'a AliasWrite),
    /// A whole IAM batch: one transaction, so all of it or none of it.
    Iam(&'a [IamWrite]),
    TouchAccessed {
        arn: &'a str,
        day: EpochMillis,
    },
    InsertAccessKey(&'a AccessKeyRecord),
    PutSettingIfAbsent {
        key: &'a str,
        value: &'a [u8],
    },
    ReplaceSetting {
        key: &'a str,
        expected: &'a [u8],
        value: &'a [u8],
    },
    RewrapSecret {
        arn: &'a str,
        swaps: &'a [EnvelopeSwap<String>],
    },
    RewrapParameter {
        region: &'a str,
        name: &'a str,
        swaps: &'a [EnvelopeSwap<i64>],
    },
    /// No change: the events are all there is (`append_audit`).
    Events,
    AuditDigest {
        expected_latest: u64,
        digest: &'a AuditDigestAppend,
    },
    PruneAudit {
        before_seq: u64,
        keep_digests_from: u64,
        limit: usize,
    },
}

/// What a write answers: rows changed (for conditional settings writes and re-wraps), or the new IAM
/// generation, digest number or count of pruned records; and the chain's head when events were chained.
pub(crate) struct Done {
    pub count: u64,
    pub head: Option<AuditHead>,
}

/// A revision (or other counter) the caller hands over, as PostgreSQL's BIGINT.
pub(crate) fn to_sql_int(what: &str, v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::InvalidWrite(format!("{what} {v} is out of range")))
}

/// A bound the caller hands over ("below seq N", "at most N"): past BIGINT's range it means "no bound".
pub(crate) fn bound_to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Runs one statement through the connection's prepared-statement cache; returns the rows changed.
async fn exec(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> TxResult<u64> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&stmt, params).await?)
}

async fn query(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> TxResult<Vec<tokio_postgres::Row>> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query(&stmt, params).await?)
}

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(row: &'r tokio_postgres::Row, i: usize, what: &str) -> TxResult<T> {
    row.try_get(i).map_err(|e| TxError::Store(corrupt(format!("{what}: {e}"))))
}

/// Applies one write (and, once it applied, chains `events`) inside `tx`.
pub(crate) async fn apply(tx: &Transaction<'_>, op: &WriteOp<'_>, events: &[AuditAppend]) -> TxResult<Done> {
    let count = apply_change(tx, op).await?;
    // Only once the change applied: a failed change appends nothing and consumes no seq.
    let head = if events.is_empty() { None } else { Some(chain_events(tx, events).await?) };
    Ok(Done { count, head })
}

/// Applies one write inside `tx` (and queues its change notice there); returns its count.
pub(crate) async fn apply_change(tx: &Transaction<'_>, op: &WriteOp<'_>) -> TxResult<u64> {
    let count = match op {
        WriteOp::Secret(write) => apply_secret_write(tx, write).await.map(|()| 1)?,
        WriteOp::Parameter(write) => apply_parameter_write(tx, write).await.map(|()| 1)?,
        WriteOp::KmsKey(write) => apply_kms_key_write(tx, write).await.map(|()| 1)?,
        WriteOp::Alias(write) => apply_alias_write(tx, write).await.map(|()| 1)?,
        WriteOp::Iam(writes) => apply_iam_batch(tx, writes).await?,
        WriteOp::TouchAccessed { arn, day } => {
            // Skipped when unchanged: most reads of a day find it recorded already.
            exec(
                tx,
                "UPDATE secrets SET last_accessed = $2 WHERE arn = $1 AND last_accessed IS DISTINCT FROM $2",
                &[arn, day],
            )
            .await?
        }
        WriteOp::InsertAccessKey(key) => insert_access_key(tx, key).await.map(|()| 1)?,
        WriteOp::PutSettingIfAbsent { key, value } => {
            exec(tx, "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", &[key, value])
                .await?
        }
        WriteOp::ReplaceSetting { key, expected, value } => {
            // Racing replacers of one value: the first takes the row lock, the others re-check the WHERE
            // against its new value once it commits, and match nothing.
            exec(tx, "UPDATE settings SET value = $3 WHERE key = $1 AND value = $2", &[key, expected, value]).await?
        }
        WriteOp::RewrapSecret { arn, swaps } => {
            let mut done = 0;
            for swap in swaps.iter() {
                done += exec(
                    tx,
                    "UPDATE secret_versions SET envelope = $4 WHERE arn = $1 AND version_id = $2 AND envelope = $3",
                    &[arn, &swap.version, &swap.old, &swap.new],
                )
                .await?;
            }
            done
        }
        WriteOp::RewrapParameter { region, name, swaps } => {
            let mut done = 0;
            for swap in swaps.iter() {
                done += exec(
                    tx,
                    "UPDATE parameter_versions SET envelope = $5
                     WHERE region = $1 AND name = $2 AND version = $3 AND envelope = $4",
                    &[region, name, &swap.version, &swap.old, &swap.new],
                )
                .await?;
            }
            done
        }
        WriteOp::Events => 0,
        WriteOp::AuditDigest { expected_latest, digest } => append_digest(tx, *expected_latest, digest).await?,
        WriteOp::PruneAudit { before_seq, keep_digests_from, limit } => {
            prune_audit(tx, *before_seq, *keep_digests_from, *limit).await?
        }
    };
    // Inside the transaction, so the notice is delivered if and only if the change commits (a failed
    // statement above returned already, and rolls the transaction back with the notice in it).
    if let Some(notice) = change_notice(op, count) {
        exec(tx, "SELECT pg_notify($1, $2)", &[&changes::CHANNEL, &changes::payload(&notice)]).await?;
    }
    Ok(count)
}

/// What other nodes' caches must hear of a write that applied (`count`: what it answered). Only the
/// records nodes cache: secrets, parameters and KMS keys. IAM has its generation, which nodes poll;
/// a last-access day is not worth a notice (a cached copy's day catches up at its next reload).
fn change_notice(op: &WriteOp<'_>, count: u64) -> Option<ChangeNotice> {
    match op {
        WriteOp::Secret(write) => Some(ChangeNotice::Secret { arn: write.arn().to_string() }),
        WriteOp::Parameter(write) => {
            let (region, name) = match write {
                ParameterWrite::Create(p) => (&p.region, &p.name),
                ParameterWrite::Update { region, name, .. } | ParameterWrite::Delete { region, name, .. } => {
                    (region, name)
                }
            };
            Some(ChangeNotice::Parameter { region: region.clone(), name: name.clone() })
        }
        WriteOp::KmsKey(write) => {
            let (region, key_id) = match write {
                KmsKeyWrite::Create(state) => (&state.key.region, &state.key.key_id),
                KmsKeyWrite::Update { key, .. } => (&key.region, &key.key_id),
                KmsKeyWrite::Delete { region, key_id, .. } => (region, key_id),
            };
            Some(ChangeNotice::KmsKey { region: region.clone(), key_id: key_id.clone() })
        }
        // A re-wrapped envelope holds the same value, but a cached copy should not keep the envelope
        // the store no longer has; only when something was replaced.
        WriteOp::RewrapSecret { arn, .. } if count > 0 => Some(ChangeNotice::Secret { arn: arn.to_string() }),
        WriteOp::RewrapParameter { region, name, .. } if count > 0 => {
            Some(ChangeNotice::Parameter { region: region.to_string(), name: name.to_string() })
        }
        _ => None,
    }
}

/// After a compare-and-swap matched no row: was the record gone (`NotFound`) or moved on (`Conflict`)?
async fn missing_or_conflict(tx: &Transaction<'_>, exists_sql: &str, key: &[&(dyn ToSql + Sync)]) -> TxError {
    match query(tx, exists_sql, key).await {
        Ok(rows) if rows.is_empty() => TxError::Store(StoreError::NotFound),
        Ok(_) => TxError::Store(StoreError::Conflict),
        Err(e) => e,
    }
}

/// Runs a compare-and-swap statement: `run` gets the expected revision as BIGINT (no stored record has a
/// revision past BIGINT's range, so such an expectation matches nothing); when no row changed, the record
/// is gone (`NotFound`) or moved on (`Conflict`), told apart with `exists_sql` over `key`.
async fn compare_and_swap<F, Fut>(
    tx: &Transaction<'_>,
    expected_revision: u64,
    exists_sql: &str,
    key: &[&(dyn ToSql + Sync)],
    run: F,
) -> TxResult<()>
where
    F: FnOnce(i64) -> Fut,
    Fut: std::future::Future<Output = TxResult<u64>>,
{
    let changed = match i64::try_from(expected_revision) {
        Ok(expected) => run(expected).await?,
        Err(_) => 0,
    };
    if changed == 0 {
        return Err(missing_or_conflict(tx, exists_sql, key).await);
    }
    Ok(())
}

const SECRET_EXISTS: &str = "SELECT 1 FROM secrets WHERE arn = $1";

/// Inserts versions in order, numbering them from `next_seq` (write order among equal `created`).
async fn insert_versions(tx: &Transaction<'_>, arn: &str, versions: &[VersionRecord], next_seq: i64) -> TxResult<()> {
    for (seq, v) in (next_seq..).zip(versions) {
        exec(
            tx,
            "INSERT INTO secret_versions (arn, version_id, seq, stages, created, kind, envelope)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&arn, &v.version_id, &seq, &v.stages, &v.created, &v.kind.as_str(), &v.envelope],
        )
        .await?;
    }
    Ok(())
}

async fn apply_secret_write(tx: &Transaction<'_>, write: &SecretWrite) -> TxResult<()> {
    write.check()?;
    match write {
        SecretWrite::Create(state) => {
            let s = &state.secret;
            exec(
                tx,
                "INSERT INTO secrets (arn, region, name, description, kms_key_id, tags, created, last_changed,
                                      last_accessed, deletion_date, resource_policy, rotation, revision)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                &[
                    &s.arn,
                    &s.region,
                    &s.name,
                    &s.description,
                    &s.kms_key_id,
                    &Json(&s.tags),
                    &s.created,
                    &s.last_changed,
                    &s.last_accessed,
                    &s.deletion_date,
                    &s.resource_policy,
                    &Json(&s.rotation),
                    &to_sql_int("revision", s.revision)?,
                ],
            )
            .await?;
            insert_versions(tx, &s.arn, &state.versions, 1).await
        }
        // Outside a batch's savepoint handling the same statements serve: see the pipelined form.
        SecretWrite::Update { .. } => apply_secret_update_pipelined(tx, write, None).await?.map(drop),
        SecretWrite::Delete { arn, expected_revision } => {
            // The versions go with it (ON DELETE CASCADE).
            compare_and_swap(tx, *expected_revision, SECRET_EXISTS, &[arn], |expected| async move {
                exec(tx, "DELETE FROM secrets WHERE arn = $1 AND revision = $2", &[arn, &expected]).await
            })
            .await?;
            Ok(())
        }
    }
}

/// A statement's future, boxed so a variable number of them can be pipelined together.
type Pending<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a>>;

/// Runs statements pipelined: each is sent when first polled, and they are all polled in order before
/// any answer is awaited, so they travel in one round trip and PostgreSQL runs them in this order.
/// Waits for every answer; returns the first error in statement order, else the rows changed.
async fn pipelined(statements: Vec<Pending<'_>>) -> Result<u64, tokio_postgres::Error> {
    let mut changed = 0;
    for answer in coffer_store::join_in_order(statements).await {
        changed += answer?;
    }
    Ok(changed)
}

/// A secret's compare-and-swap (see the module docs). The last access day only moves forward: a read
/// recorded it without bumping the revision, and a writer that loaded the secret before that read must
/// not take it back. GREATEST ignores NULLs, so either side may be unset.
const SECRET_UPDATE: &str = "UPDATE secrets SET description = $3, kms_key_id = $4, tags = $5, last_changed = $6,
                                last_accessed = GREATEST(last_accessed, $7), deletion_date = $8,
                                resource_policy = $9, rotation = $10, revision = $11
                         WHERE arn = $1 AND revision = $2";

/// A secret update in two round trips instead of one per statement, for batches (`batch.rs`): first
/// `savepoint` (the batch's savepoint statement, if it needs one now) with the compare-and-swap, then,
/// once that matched, every other statement — deleted versions, stage moves, the new version (numbered
/// in SQL: the statements of a pipeline run in order, so each insert numbers after the one before), the
/// change notice — pipelined. The outer `Err` is a failure of `savepoint` or of preparing a statement
/// (the batch's own); the inner result is the write's.
pub(crate) async fn apply_secret_update_pipelined(
    tx: &Transaction<'_>,
    write: &SecretWrite,
    savepoint: Option<&str>,
) -> TxResult<TxResult<u64>> {
    let SecretWrite::Update { expected_revision, secret: s, new_versions, stage_updates, deleted_versions } = write
    else {
        return Ok(Err(TxError::Store(StoreError::InvalidWrite("not a secret update".into()))));
    };
    let update = tx.prepare_cached(SECRET_UPDATE).await?;
    let (tags, rotation) = (Json(&s.tags), Json(&s.rotation));
    let checked: StoreResult<(Option<i64>, i64)> =
        write.check().and_then(|()| Ok((i64::try_from(*expected_revision).ok(), to_sql_int("revision", s.revision)?)));
    let (savepoint_done, changed) = {
        let savepoint_sent = async {
            match savepoint {
                Some(sql) => tx.batch_execute(sql).await,
                None => Ok(()),
            }
        };
        let compare_and_swap = async {
            match &checked {
                Ok((Some(expected), revision)) => tx
                    .execute(
                        &update,
                        &[
                            &s.arn,
                            expected,
                            &s.description,
                            &s.kms_key_id,
                            &tags,
                            &s.last_changed,
                            &s.last_accessed,
                            &s.deletion_date,
                            &s.resource_policy,
                            &rotation,
                            revision,
                        ],
                    )
                    .await
                    .map_err(TxError::from),
                // No stored revision is past BIGINT's range: such an expectation matches nothing.
                Ok((None, _)) => Ok(0),
                // Refused before anything was sent; the savepoint still is, as the batch expects.
                Err(e) => Err(TxError::Store(e.clone())),
            }
        };
        tokio::join!(savepoint_sent, compare_and_swap)
    };
    savepoint_done?;
    match changed {
        Ok(0) => return Ok(Err(missing_or_conflict(tx, SECRET_EXISTS, &[&s.arn]).await)),
        Ok(_) => {}
        Err(e) => return Ok(Err(e)),
    }

    // Prepared first (from the connection's cache after the first time), so that polling the
    // statements below sends them at once, in this order.
    let delete = tx.prepare_cached("DELETE FROM secret_versions WHERE arn = $1 AND version_id = ANY($2)").await?;
    let move_stages =
        tx.prepare_cached("UPDATE secret_versions SET stages = $3 WHERE arn = $1 AND version_id = $2").await?;
    // The secret's row is locked by the compare-and-swap: nobody else numbers its versions now.
    let insert = tx
        .prepare_cached(
            "INSERT INTO secret_versions (arn, version_id, seq, stages, created, kind, envelope)
             SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6 FROM secret_versions WHERE arn = $1",
        )
        .await?;
    let notify = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
    let notice = changes::payload(&ChangeNotice::Secret { arn: s.arn.clone() });
    let (arn, delete, move_stages, insert, notify, notice) = (&s.arn, &delete, &move_stages, &insert, &notify, &notice);
    let mut statements: Vec<Pending<'_>> = Vec::new();
    if !deleted_versions.is_empty() {
        statements.push(Box::pin(async move { tx.execute(delete, &[arn, deleted_versions]).await }));
    }
    for (id, stages) in stage_updates {
        statements.push(Box::pin(async move { tx.execute(move_stages, &[arn, id, stages]).await }));
    }
    for v in new_versions {
        statements.push(Box::pin(async move {
            let kind = v.kind.as_str();
            tx.execute(insert, &[arn, &v.version_id, &v.stages, &v.created, &kind, &v.envelope]).await
        }));
    }
    // The notice's answer is a row, not a count: `query` it, and count nothing.
    statements.push(Box::pin(async move { tx.query(notify, &[&changes::CHANNEL, notice]).await.map(|_| 0) }));
    Ok(pipelined(statements).await.map(|_| 1).map_err(TxError::from))
}

const PARAMETER_EXISTS: &str = "SELECT 1 FROM parameters WHERE region = $1 AND name = $2";

async fn insert_parameter_version(
    tx: &Transaction<'_>,
    region: &str,
    name: &str,
    v: &ParameterVersionRecord,
) -> TxResult<()> {
    exec(
        tx,
        "INSERT INTO parameter_versions (region, name, version, meta, envelope) VALUES ($1, $2, $3, $4, $5)",
        &[&region, &name, &v.version, &Json(v), &v.envelope],
    )
    .await?;
    Ok(())
}

async fn apply_parameter_write(tx: &Transaction<'_>, write: &ParameterWrite) -> TxResult<()> {
    write.check()?;
    match write {
        ParameterWrite::Create(p) => {
            exec(
                tx,
                "INSERT INTO parameters (region, name, parent_path, tags, revision) VALUES ($1, $2, $3, $4, $5)",
                &[&p.region, &p.name, &p.parent_path, &Json(&p.tags), &to_sql_int("revision", p.revision)?],
            )
            .await?;
            for v in &p.versions {
                insert_parameter_version(tx, &p.region, &p.name, v).await?;
            }
            Ok(())
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
            compare_and_swap(tx, *expected_revision, PARAMETER_EXISTS, &[region, name], |expected| async move {
                exec(
                    tx,
                    "UPDATE parameters SET tags = $4, revision = $5
                         WHERE region = $1 AND name = $2 AND revision = $3",
                    &[region, name, &expected, &Json(tags), &to_sql_int("revision", *revision)?],
                )
                .await
            })
            .await?;
            if !dropped_versions.is_empty() {
                exec(
                    tx,
                    "DELETE FROM parameter_versions WHERE region = $1 AND name = $2 AND version = ANY($3)",
                    &[region, name, dropped_versions],
                )
                .await?;
            }
            for (version, labels) in label_updates {
                exec(
                    tx,
                    "UPDATE parameter_versions SET meta = jsonb_set(meta, '{labels}', $4)
                     WHERE region = $1 AND name = $2 AND version = $3",
                    &[region, name, version, &Json(labels)],
                )
                .await?;
            }
            if let Some(v) = new_version {
                insert_parameter_version(tx, region, name, v).await?;
            }
            Ok(())
        }
        ParameterWrite::Delete { region, name, expected_revision } => {
            compare_and_swap(tx, *expected_revision, PARAMETER_EXISTS, &[region, name], |expected| async move {
                exec(
                    tx,
                    "DELETE FROM parameters WHERE region = $1 AND name = $2 AND revision = $3",
                    &[region, name, &expected],
                )
                .await
            })
            .await?;
            Ok(())
        }
    }
}

const KMS_KEY_EXISTS: &str = "SELECT 1 FROM kms_keys WHERE region = $1 AND key_id = $2";

/// Adds a material version. A second writer adding the same version has lost a race: `Conflict`.
async fn insert_material(tx: &Transaction<'_>, region: &str, key_id: &str, m: &KeyMaterialRecord) -> TxResult<()> {
    let inserted = exec(
        tx,
        "INSERT INTO kms_key_materials (region, key_id, version, created, sealed) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (region, key_id, version) DO NOTHING",
        &[&region, &key_id, &i64::from(m.version), &m.created, &m.sealed],
    )
    .await?;
    if inserted == 0 {
        return Err(TxError::Store(StoreError::Conflict));
    }
    Ok(())
}

async fn apply_kms_key_write(tx: &Transaction<'_>, write: &KmsKeyWrite) -> TxResult<()> {
    write.check()?;
    match write {
        KmsKeyWrite::Create(state) => {
            let k = &state.key;
            exec(
                tx,
                "INSERT INTO kms_keys (region, key_id, created, revision, meta) VALUES ($1, $2, $3, $4, $5)",
                &[&k.region, &k.key_id, &k.created, &to_sql_int("revision", k.revision)?, &Json(k)],
            )
            .await?;
            for m in &state.materials {
                insert_material(tx, &k.region, &k.key_id, m).await?;
            }
            Ok(())
        }
        KmsKeyWrite::Update { expected_revision, key, new_material } => {
            compare_and_swap(
                tx,
                *expected_revision,
                KMS_KEY_EXISTS,
                &[&key.region, &key.key_id],
                |expected| async move {
                    exec(
                    tx,
                    "UPDATE kms_keys SET revision = $4, meta = $5 WHERE region = $1 AND key_id = $2 AND revision = $3",
                    &[&key.region, &key.key_id, &expected, &to_sql_int("revision", key.revision)?, &Json(key)],
                ).await
                },
            )
            .await?;
            if let Some(m) = new_material {
                insert_material(tx, &key.region, &key.key_id, m).await?;
            }
            Ok(())
        }
        KmsKeyWrite::Delete { region, key_id, expected_revision } => {
            // The material goes with the key (ON DELETE CASCADE); the aliases pointing at it explicitly.
            compare_and_swap(tx, *expected_revision, KMS_KEY_EXISTS, &[region, key_id], |expected| async move {
                exec(
                    tx,
                    "DELETE FROM kms_keys WHERE region = $1 AND key_id = $2 AND revision = $3",
                    &[region, key_id, &expected],
                )
                .await
            })
            .await?;
            exec(tx, "DELETE FROM kms_aliases WHERE region = $1 AND target_key_id = $2", &[region, key_id]).await?;
            Ok(())
        }
    }
}

async fn apply_alias_write(tx: &Transaction<'_>, write: &AliasWrite) -> TxResult<()> {
    let changed =
        match write {
            AliasWrite::Create(a) => {
                exec(
                    tx,
                    "INSERT INTO kms_aliases (region, alias_name, target_key_id, created, last_updated)
                 VALUES ($1, $2, $3, $4, $5)",
                    &[&a.region, &a.alias_name, &a.target_key_id, &a.created, &a.last_updated],
                )
                .await?
            }
            AliasWrite::Update(a) => exec(
                tx,
                "UPDATE kms_aliases SET target_key_id = $3, last_updated = $4 WHERE region = $1 AND alias_name = $2",
                &[&a.region, &a.alias_name, &a.target_key_id, &a.last_updated],
            )
            .await?,
            AliasWrite::Delete { region, alias_name } => {
                exec(tx, "DELETE FROM kms_aliases WHERE region = $1 AND alias_name = $2", &[region, alias_name]).await?
            }
        };
    if changed == 0 {
        return Err(TxError::Store(StoreError::NotFound));
    }
    Ok(())
}

/// A duplicate access key id fails on the primary key: `AlreadyExists`.
async fn insert_access_key(tx: &Transaction<'_>, k: &AccessKeyRecord) -> TxResult<()> {
    exec(
        tx,
        "INSERT INTO access_keys (access_key_id, sealed_secret, principal_arn, user_name, status, created)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&k.access_key_id, &k.sealed_secret, &k.principal_arn, &k.user_name, &k.status, &k.created],
    )
    .await?;
    Ok(())
}

/// Applies an IAM batch in order (each write sees the ones before it) and returns the new generation.
///
/// The generation row is bumped FIRST: its row lock then holds every other IAM batch, from any node,
/// until this one commits or rolls back, so batches apply one at a time and each gets its own
/// generation. Any failing write fails the transaction, and with it every earlier write of the batch
/// and the bump: all or nothing.
async fn apply_iam_batch(tx: &Transaction<'_>, writes: &[IamWrite]) -> TxResult<u64> {
    let rows =
        query(tx, "UPDATE iam_generation SET generation = generation + 1 WHERE id = 0 RETURNING generation", &[])
            .await?;
    let row = rows.first().ok_or_else(|| TxError::Store(corrupt("the IAM generation row is missing")))?;
    let generation: i64 = get(row, 0, "IAM generation")?;
    for write in writes {
        apply_iam_write(tx, write).await?;
    }
    u64::try_from(generation).map_err(|_| TxError::Store(corrupt(format!("negative IAM generation {generation}"))))
}

const IAM_ENTITY_EXISTS: &str = "SELECT 1 FROM iam_entities WHERE kind = $1 AND name = $2";

/// One IAM change; errors as `MemoryStore`'s: the contract checks (`InvalidWrite`) first, then
/// `NotFound`, then `Conflict`.
async fn apply_iam_write(tx: &Transaction<'_>, write: &IamWrite) -> TxResult<()> {
    match write {
        IamWrite::Create(r) => {
            if r.revision != 1 {
                return Err(TxError::Store(StoreError::InvalidWrite(format!(
                    "a new IAM entity starts at revision 1, not {} ({} {})",
                    r.revision,
                    r.kind.as_str(),
                    r.name
                ))));
            }
            exec(
                tx,
                "INSERT INTO iam_entities (kind, name, document, revision) VALUES ($1, $2, $3, 1)",
                &[&r.kind.as_str(), &r.name, &r.document],
            )
            .await?;
            Ok(())
        }
        IamWrite::Update { expected_revision, record: r } => {
            if expected_revision.checked_add(1) != Some(r.revision) {
                return Err(TxError::Store(StoreError::InvalidWrite(format!(
                    "update of IAM {} {} must set revision {expected_revision} + 1, not {}",
                    r.kind.as_str(),
                    r.name,
                    r.revision
                ))));
            }
            compare_and_swap(
                tx,
                *expected_revision,
                IAM_ENTITY_EXISTS,
                &[&r.kind.as_str(), &r.name],
                |expected| async move {
                    exec(
                        tx,
                        "UPDATE iam_entities SET document = $4, revision = $5
                         WHERE kind = $1 AND name = $2 AND revision = $3",
                        &[&r.kind.as_str(), &r.name, &expected, &r.document, &to_sql_int("revision", r.revision)?],
                    )
                    .await
                },
            )
            .await?;
            Ok(())
        }
        IamWrite::Delete { kind, name, expected_revision } => {
            compare_and_swap(
                tx,
                *expected_revision,
                IAM_ENTITY_EXISTS,
                &[&kind.as_str(), name],
                |expected| async move {
                    exec(
                        tx,
                        "DELETE FROM iam_entities WHERE kind = $1 AND name = $2 AND revision = $3",
                        &[&kind.as_str(), name, &expected],
                    )
                    .await
                },
            )
            .await?;
            Ok(())
        }
        IamWrite::InsertAccessKey(k) => insert_access_key(tx, k).await,
        IamWrite::AccessKeyStatus { access_key_id, status } => {
            // Counts the row even when the status is unchanged: setting it again is not "missing".
            let changed =
                exec(tx, "UPDATE access_keys SET status = $2 WHERE access_key_id = $1", &[access_key_id, status])
                    .await?;
            if changed == 0 {
                return Err(TxError::Store(StoreError::NotFound));
            }
            Ok(())
        }
        IamWrite::DeleteAccessKey { access_key_id } => {
            if exec(tx, "DELETE FROM access_keys WHERE access_key_id = $1", &[access_key_id]).await? == 0 {
                return Err(TxError::Store(StoreError::NotFound));
            }
            Ok(())
        }
    }
}

// ---- The audit chain.

fn hash_from_sql(bytes: &[u8], what: &str) -> TxResult<ChainHash> {
    ChainHash::try_from(bytes).map_err(|_| TxError::Store(corrupt(format!("{what} is {} bytes, not 32", bytes.len()))))
}

/// Chains `events` after the head, in the given order, inside the caller's transaction; returns the
/// new head.
///
/// `SELECT ... FOR UPDATE` on the one head row is what serializes appends across connections and
/// nodes: a second appender waits here until the first commits (or rolls back), then reads the head
/// the first left. Seqs are therefore assigned in commit order, without gaps and without forks, and a
/// transaction that rolls back leaves the head where it was. The head row is the last lock a write
/// takes, after its record's rows, so appends never take part in a deadlock cycle.
///
/// The store computes each record's hash ([`record_hash`] over seq, predecessor hash, time, event id
/// and body), as every backend does: the service hands over the rendered event only.
pub(crate) async fn chain_events(tx: &Transaction<'_>, events: &[AuditAppend]) -> TxResult<AuditHead> {
    let heads = chain_event_groups(tx, &[events]).await?;
    heads.into_iter().flatten().next().ok_or_else(|| TxError::Store(corrupt("chaining events returned no head")))
}

/// [`chain_events`] for several writers' events at once (a batch, `batch.rs`): the groups are chained
/// one after the other, with one head lock and one statement per table; returns the head after each
/// group's last event (`None` for an empty group). Nothing is locked when every group is empty.
pub(crate) async fn chain_event_groups(
    tx: &Transaction<'_>,
    groups: &[&[AuditAppend]],
) -> TxResult<Vec<Option<AuditHead>>> {
    if groups.iter().all(|g| g.is_empty()) {
        return Ok(vec![None; groups.len()]);
    }
    let rows = query(tx, "SELECT seq, hash FROM audit_head WHERE id = 0 FOR UPDATE", &[]).await?;
    let row = rows.first().ok_or_else(|| TxError::Store(corrupt("the audit head row is missing")))?;
    let head_seq: i64 = get(row, 0, "audit head seq")?;
    let mut seq =
        u64::try_from(head_seq).map_err(|_| TxError::Store(corrupt(format!("negative audit seq {head_seq}"))))?;
    let mut hash = hash_from_sql(get::<&[u8]>(row, 1, "audit head hash")?, "the audit head hash")?;

    let total: usize = groups.iter().map(|g| g.len()).sum();
    let mut seqs: Vec<i64> = Vec::with_capacity(total);
    let mut times: Vec<i64> = Vec::with_capacity(total);
    let mut ids: Vec<&str> = Vec::with_capacity(total);
    let mut prev_hashes: Vec<&[u8]> = Vec::with_capacity(total);
    let mut bodies: Vec<&[u8]> = Vec::with_capacity(total);
    let mut hashes: Vec<ChainHash> = Vec::with_capacity(total);
    let (mut attrs, mut values, mut lookup_seqs): (Vec<i16>, Vec<&str>, Vec<i64>) = (vec![], vec![], vec![]);
    let mut group_heads = Vec::with_capacity(groups.len());
    for group in groups {
        for event in group.iter() {
            seq += 1;
            let seq_sql = to_sql_int("audit seq", seq)?;
            hashes.push(hash);
            hash = record_hash(seq, &hash, event.time_ms, &event.event_id, &event.body);
            seqs.push(seq_sql);
            times.push(event.time_ms);
            ids.push(&event.event_id);
            bodies.push(&event.body);
            // An event is found once per (attribute, value) however often it lists it; its own id is
            // indexed too, so `EventId` lookups need no special case.
            let entries: BTreeSet<(i16, &str)> = std::iter::once((LookupAttribute::EventId, event.event_id.as_str()))
                .chain(event.lookup.iter().map(|(attr, value)| (*attr, value.as_str())))
                .map(|(attr, value)| (attr_to_sql(attr), value))
                .collect();
            for (attr, value) in entries {
                attrs.push(attr);
                values.push(value);
                lookup_seqs.push(seq_sql);
            }
        }
        group_heads.push(if group.is_empty() { None } else { Some(AuditHead { seq, hash }) });
    }
    for h in &hashes {
        prev_hashes.push(h.as_slice());
    }
    // One statement per table for the whole batch, however many events it holds, and the head's
    // update: pipelined (one round trip), since they wait for nothing but the head read above — every
    // round trip here is time other appenders wait on the head row.
    let insert_events = tx
        .prepare_cached(
            "INSERT INTO audit_events (seq, time_ms, event_id, prev_hash, body)
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BYTEA[], $5::BYTEA[])",
        )
        .await?;
    let insert_lookup = tx
        .prepare_cached(
            "INSERT INTO audit_lookup (attr, value, seq)
             SELECT * FROM UNNEST($1::SMALLINT[], $2::TEXT[], $3::BIGINT[])",
        )
        .await?;
    let update_head = tx.prepare_cached("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 0").await?;
    let seq_sql = to_sql_int("audit seq", seq)?;
    let head_hash = hash.as_slice();
    let (insert_events, insert_lookup, update_head) = (&insert_events, &insert_lookup, &update_head);
    let (seqs, times, ids, prev_hashes, bodies) = (&seqs, &times, &ids, &prev_hashes, &bodies);
    let (attrs, values, lookup_seqs, seq_sql) = (&attrs, &values, &lookup_seqs, &seq_sql);
    let statements: Vec<Pending<'_>> = vec![
        Box::pin(async move { tx.execute(insert_events, &[seqs, times, ids, prev_hashes, bodies]).await }),
        Box::pin(async move { tx.execute(insert_lookup, &[attrs, values, lookup_seqs]).await }),
        Box::pin(async move { tx.execute(update_head, &[seq_sql, &head_hash]).await }),
    ];
    pipelined(statements).await?;
    Ok(group_heads)
}

/// A lookup attribute's stored code. Codes are 1..=8 (`LookupAttribute`): a SMALLINT holds them.
pub(crate) fn attr_to_sql(attr: LookupAttribute) -> i16 {
    attr.code() as i16
}

/// Appends a digest if the newest number ever assigned is still `expected_latest`; returns its number.
/// The counter row's lock makes racing appenders at one number take turns: one wins, the rest conflict.
async fn append_digest(tx: &Transaction<'_>, expected_latest: u64, d: &AuditDigestAppend) -> TxResult<u64> {
    let rows = query(tx, "SELECT number FROM audit_digest_head WHERE id = 0 FOR UPDATE", &[]).await?;
    let row = rows.first().ok_or_else(|| TxError::Store(corrupt("the audit digest counter row is missing")))?;
    let current: i64 = get(row, 0, "audit digest number")?;
    if u64::try_from(current).ok() != Some(expected_latest) {
        return Err(TxError::Store(StoreError::Conflict));
    }
    let number = current + 1;
    exec(
        tx,
        "INSERT INTO audit_digests (number, time_ms, last_seq, body, signature) VALUES ($1, $2, $3, $4, $5)",
        &[&number, &d.time_ms, &to_sql_int("digest last_seq", d.last_seq)?, &d.body, &d.signature],
    )
    .await?;
    exec(tx, "UPDATE audit_digest_head SET number = $1 WHERE id = 0", &[&number]).await?;
    u64::try_from(number).map_err(|_| TxError::Store(corrupt(format!("digest number {number} out of range"))))
}

/// Deletes up to `limit` of the oldest records below `before_seq` with their lookup entries, and the
/// digests below `keep_digests_from`. The head row is not touched. Returns the records deleted.
async fn prune_audit(tx: &Transaction<'_>, before_seq: u64, keep_digests_from: u64, limit: usize) -> TxResult<u64> {
    // The doomed records are the oldest ones, so every record up to the last of them is gone
    // afterwards: their lookup entries are exactly those with a seq up to it.
    let rows = query(
        tx,
        "WITH doomed AS (
             DELETE FROM audit_events WHERE seq IN (
                 SELECT seq FROM audit_events WHERE seq < $1 ORDER BY seq LIMIT $2
             ) RETURNING seq
         )
         SELECT COUNT(*)::BIGINT, MAX(seq) FROM doomed",
        &[&bound_to_sql(before_seq), &limit_to_sql(limit)],
    )
    .await?;
    let row = rows.first().ok_or_else(|| TxError::Store(corrupt("pruning the audit log returned no row")))?;
    let pruned: i64 = get(row, 0, "pruned audit records")?;
    let last: Option<i64> = get(row, 1, "last pruned audit seq")?;
    if let Some(last) = last {
        exec(tx, "DELETE FROM audit_lookup WHERE seq <= $1", &[&last]).await?;
    }
    exec(tx, "DELETE FROM audit_digests WHERE number < $1", &[&bound_to_sql(keep_digests_from)]).await?;
    u64::try_from(pruned).map_err(|_| TxError::Store(corrupt(format!("{pruned} pruned records"))))
}
