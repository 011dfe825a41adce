//! Reads, and the row decoding.
//!
//! A record and its versions are read with ONE statement (the record's row joined with its versions'),
//! so they come from one snapshot: a concurrent update or delete can never pair one revision's metadata
//! with another's versions. Listings are index range scans in the order the trait promises (the key
//! columns are `COLLATE "C"`, so that order is byte order).

use coffer_store::{
    AccessKeyRecord, AliasRecord, IamEntityRecord, IamKind, KeyMaterialRecord, KmsKeyRecord, KmsKeyState,
    ParameterQuery, ParameterState, ParameterVersionRecord, RotationSettings, SecretRecord, SecretState, StoreResult,
    Tag, ValueKind, VersionRecord,
};
use deadpool_postgres::ClientWrapper as Client;
use tokio_postgres::types::{FromSql, Json, ToSql};
use tokio_postgres::Row;

use crate::error::{corrupt, map_pg};
use crate::write::limit_to_sql;

pub(crate) async fn query(client: &Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
    let stmt = client.prepare_cached(sql).await.map_err(map_pg)?;
    client.query(&stmt, params).await.map_err(map_pg)
}

pub(crate) fn get<'r, T: FromSql<'r>>(row: &'r Row, i: usize, what: &str) -> StoreResult<T> {
    row.try_get(i).map_err(|e| corrupt(format!("{what}: {e}")))
}

fn json<'r, T: serde::Deserialize<'r>>(row: &'r Row, i: usize, what: &str) -> StoreResult<T> {
    Ok(get::<Json<T>>(row, i, what)?.0)
}

pub(crate) fn revision_from_sql(v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| corrupt(format!("negative revision {v}")))
}

/// The columns [`secret_from_row`] decodes, in its order (aliased `s`).
macro_rules! secret_columns {
    () => {
        "s.arn, s.region, s.name, s.description, s.kms_key_id, s.tags, s.created, s.last_changed, s.last_accessed, \
         s.deletion_date, s.resource_policy, s.rotation, s.revision"
    };
}

/// How many columns `secret_columns!()` selects.
const SECRET_COLUMNS: usize = 13;

fn secret_from_row(r: &Row) -> StoreResult<SecretRecord> {
    Ok(SecretRecord {
        arn: get(r, 0, "secret arn")?,
        region: get(r, 1, "secret region")?,
        name: get(r, 2, "secret name")?,
        description: get(r, 3, "secret description")?,
        kms_key_id: get(r, 4, "secret kms key id")?,
        tags: json::<Vec<Tag>>(r, 5, "secret tags")?,
        created: get(r, 6, "secret created")?,
        last_changed: get(r, 7, "secret last changed")?,
        last_accessed: get(r, 8, "secret last accessed")?,
        deletion_date: get(r, 9, "secret deletion date")?,
        resource_policy: get(r, 10, "secret resource policy")?,
        rotation: json::<RotationSettings>(r, 11, "secret rotation settings")?,
        revision: revision_from_sql(get(r, 12, "secret revision")?)?,
    })
}

/// A secret with its versions, oldest first (ties in write order), from the rows of one joined query:
/// the secret's columns, then the version's (all NULL for a secret without versions).
fn secret_state_from_rows(rows: &[Row]) -> StoreResult<Option<SecretState>> {
    let Some(first) = rows.first() else { return Ok(None) };
    let secret = secret_from_row(first)?;
    let mut versions = Vec::with_capacity(rows.len());
    for r in rows {
        let c = SECRET_COLUMNS;
        let Some(version_id) = get::<Option<String>>(r, c, "version id")? else { continue };
        let kind: String = get(r, c + 3, "version kind")?;
        versions.push(VersionRecord {
            version_id,
            stages: get(r, c + 1, "version staging labels")?,
            created: get(r, c + 2, "version created")?,
            kind: ValueKind::parse(&kind)
                .ok_or_else(|| corrupt(format!("unknown value kind {kind:?} in {}", secret.arn)))?,
            envelope: get(r, c + 4, "version envelope")?,
        });
    }
    Ok(Some(SecretState { secret, versions }))
}

const SECRET_WITH_VERSIONS: &str = concat!(
    "SELECT ",
    secret_columns!(),
    ", v.version_id, v.stages, v.created, v.kind, v.envelope
     FROM secrets s LEFT JOIN secret_versions v ON v.arn = s.arn"
);

pub(crate) async fn load_secret_by_arn(client: &Client, arn: &str) -> StoreResult<Option<SecretState>> {
    let sql = format!("{SECRET_WITH_VERSIONS} WHERE s.arn = $1 ORDER BY v.created, v.seq");
    secret_state_from_rows(&query(client, &sql, &[&arn]).await?)
}

pub(crate) async fn load_secret_by_name(client: &Client, region: &str, name: &str) -> StoreResult<Option<SecretState>> {
    let sql = format!("{SECRET_WITH_VERSIONS} WHERE s.region = $1 AND s.name = $2 ORDER BY v.created, v.seq");
    secret_state_from_rows(&query(client, &sql, &[&region, &name]).await?)
}

pub(crate) async fn list_secrets(client: &Client, region: &str) -> StoreResult<Vec<SecretRecord>> {
    let sql = concat!("SELECT ", secret_columns!(), " FROM secrets s WHERE s.region = $1 ORDER BY s.created, s.arn");
    query(client, sql, &[&region]).await?.iter().map(secret_from_row).collect()
}

pub(crate) async fn due_for_deletion(client: &Client, now: i64) -> StoreResult<Vec<(String, u64)>> {
    let rows = query(
        client,
        "SELECT arn, revision FROM secrets WHERE deletion_date IS NOT NULL AND deletion_date <= $1
         ORDER BY deletion_date, arn",
        &[&now],
    )
    .await?;
    rows.iter().map(|r| Ok((get(r, 0, "secret arn")?, revision_from_sql(get(r, 1, "secret revision")?)?))).collect()
}

/// The columns [`access_key_from_row`] decodes, in its order.
macro_rules! access_key_columns {
    () => {
        "access_key_id, sealed_secret, principal_arn, user_name, status, created"
    };
}

fn access_key_from_row(r: &Row) -> StoreResult<AccessKeyRecord> {
    Ok(AccessKeyRecord {
        access_key_id: get(r, 0, "access key id")?,
        sealed_secret: get(r, 1, "access key secret")?,
        principal_arn: get(r, 2, "access key principal")?,
        user_name: get(r, 3, "access key user")?,
        status: get(r, 4, "access key status")?,
        created: get(r, 5, "access key created")?,
    })
}

pub(crate) async fn access_key(client: &Client, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
    let sql = concat!("SELECT ", access_key_columns!(), " FROM access_keys WHERE access_key_id = $1");
    query(client, sql, &[&id]).await?.first().map(access_key_from_row).transpose()
}

/// A user's access keys, oldest first, ties by id: a range scan of `access_keys_by_user`.
pub(crate) async fn list_access_keys(client: &Client, user_name: &str) -> StoreResult<Vec<AccessKeyRecord>> {
    let sql = concat!(
        "SELECT ",
        access_key_columns!(),
        " FROM access_keys WHERE user_name = $1 ORDER BY created, access_key_id"
    );
    query(client, sql, &[&user_name]).await?.iter().map(access_key_from_row).collect()
}

fn generation_from_sql(generation: i64) -> StoreResult<u64> {
    u64::try_from(generation).map_err(|_| corrupt(format!("negative IAM generation {generation}")))
}

pub(crate) async fn iam_generation(client: &Client) -> StoreResult<u64> {
    let rows = query(client, "SELECT generation FROM iam_generation WHERE id = 0", &[]).await?;
    let row = rows.first().ok_or_else(|| corrupt("the IAM generation row is missing"))?;
    generation_from_sql(get(row, 0, "IAM generation")?)
}

/// Every IAM entity and the generation, from one statement (one snapshot): a batch committed meanwhile
/// is seen whole, its entities and its generation, or not at all.
pub(crate) async fn load_iam(client: &Client) -> StoreResult<(u64, Vec<IamEntityRecord>)> {
    let rows = query(
        client,
        "SELECT g.generation, e.kind, e.name, e.document, e.revision
         FROM iam_generation g LEFT JOIN iam_entities e ON TRUE WHERE g.id = 0",
        &[],
    )
    .await?;
    let first = rows.first().ok_or_else(|| corrupt("the IAM generation row is missing"))?;
    let generation = generation_from_sql(get(first, 0, "IAM generation")?)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(kind) = get::<Option<String>>(r, 1, "IAM entity kind")? else { continue };
        let name: String = get(r, 2, "IAM entity name")?;
        let kind =
            IamKind::parse(&kind).ok_or_else(|| corrupt(format!("unknown IAM entity kind {kind:?} of {name:?}")))?;
        out.push(IamEntityRecord {
            kind,
            document: get(r, 3, "IAM entity document")?,
            revision: revision_from_sql(get(r, 4, "IAM entity revision")?)?,
            name,
        });
    }
    // The contract orders by `IamKind`'s `Ord` (declaration order), which the stored text ("user",
    // "group", ...) does not follow; names compare bytewise, as Rust's `String` order does.
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok((generation, out))
}

pub(crate) async fn setting(client: &Client, key: &str) -> StoreResult<Option<Vec<u8>>> {
    query(client, "SELECT value FROM settings WHERE key = $1", &[&key])
        .await?
        .first()
        .map(|r| get(r, 0, "setting value"))
        .transpose()
}

/// The columns [`parameters_from_rows`] decodes: the parameter's (aliased `p`), then its version's
/// (aliased `v`, all NULL for a parameter without versions).
const PARAMETER_COLUMNS: &str = "p.region, p.name, p.parent_path, p.tags, p.revision, v.meta, v.envelope";

/// Parameters with their versions from joined rows ordered by name, then version.
fn parameters_from_rows(rows: &[Row]) -> StoreResult<Vec<ParameterState>> {
    let mut out: Vec<ParameterState> = Vec::new();
    for r in rows {
        let name: String = get(r, 1, "parameter name")?;
        if out.last().is_none_or(|p| p.name != name) {
            out.push(ParameterState {
                region: get(r, 0, "parameter region")?,
                parent_path: get(r, 2, "parameter parent path")?,
                tags: json(r, 3, "parameter tags")?,
                revision: revision_from_sql(get(r, 4, "parameter revision")?)?,
                versions: Vec::new(),
                name,
            });
        }
        let Some(Json(mut version)) = get::<Option<Json<ParameterVersionRecord>>>(r, 5, "parameter version")? else {
            continue;
        };
        version.envelope = get(r, 6, "parameter version envelope")?;
        if let Some(p) = out.last_mut() {
            p.versions.push(version);
        }
    }
    Ok(out)
}

pub(crate) async fn load_parameter(client: &Client, region: &str, name: &str) -> StoreResult<Option<ParameterState>> {
    let sql = format!(
        "SELECT {PARAMETER_COLUMNS} FROM parameters p
         LEFT JOIN parameter_versions v ON v.region = p.region AND v.name = p.name
         WHERE p.region = $1 AND p.name = $2 ORDER BY v.version"
    );
    Ok(parameters_from_rows(&query(client, &sql, &[&region, &name]).await?)?.pop())
}

/// The parameters a listing selects, as a subquery over `parameters p` with `$1` region, `$2` the
/// range's operand, `$3` the name to resume after and `$4` the limit: an index range scan in name order.
///
/// One level: `parent_path = $2` (`parameters_by_parent`). Recursive below `/a/b`: names in
/// [`/a/b/`, `/a/b0`) (the primary key), as `0` follows `/` in byte order. Recursive below `/`: every
/// name of the region.
fn page_of_parameters(q: &ParameterQuery, columns: &str) -> (String, Option<(String, String)>) {
    let (range, bounds) = if !q.recursive {
        ("p.parent_path = $2", None)
    } else if q.path == "/" {
        ("$2::TEXT IS NOT NULL", None)
    } else {
        ("p.name >= $2 AND p.name < $5", Some((format!("{}/", q.path), format!("{}0", q.path))))
    };
    let sql = format!(
        "SELECT {columns} FROM parameters p WHERE p.region = $1 AND {range} AND p.name > $3 ORDER BY p.name LIMIT $4"
    );
    (sql, bounds)
}

async fn query_page(
    client: &Client,
    q: &ParameterQuery,
    sql: &str,
    bounds: Option<(String, String)>,
) -> StoreResult<Vec<Row>> {
    let after = q.after.clone().unwrap_or_default();
    let limit = limit_to_sql(q.limit);
    match bounds {
        Some((lower, upper)) => query(client, sql, &[&q.region, &lower, &after, &limit, &upper]).await,
        None => query(client, sql, &[&q.region, &q.path, &after, &limit]).await,
    }
}

/// The names of a page under a path: an index-only range scan.
pub(crate) async fn list_parameter_names(client: &Client, q: &ParameterQuery) -> StoreResult<Vec<String>> {
    let (sql, bounds) = page_of_parameters(q, "p.name");
    query_page(client, q, &sql, bounds).await?.iter().map(|r| get(r, 0, "parameter name")).collect()
}

/// A page of parameters under a path with their versions (or only the newest one), in one statement.
pub(crate) async fn list_parameters(client: &Client, q: &ParameterQuery) -> StoreResult<Vec<ParameterState>> {
    let (page, bounds) = page_of_parameters(q, "p.region, p.name, p.parent_path, p.tags, p.revision");
    let versions = if q.latest_only {
        "LEFT JOIN LATERAL (
             SELECT meta, envelope, version FROM parameter_versions
             WHERE region = p.region AND name = p.name ORDER BY version DESC LIMIT 1
         ) v ON TRUE"
    } else {
        "LEFT JOIN parameter_versions v ON v.region = p.region AND v.name = p.name"
    };
    let sql = format!("SELECT {PARAMETER_COLUMNS} FROM ({page}) p {versions} ORDER BY p.name, v.version");
    parameters_from_rows(&query_page(client, q, &sql, bounds).await?)
}

/// One KMS key with its material versions, in one statement.
pub(crate) async fn load_kms_key(client: &Client, region: &str, key_id: &str) -> StoreResult<Option<KmsKeyState>> {
    let rows = query(
        client,
        "SELECT k.meta, m.version, m.created, m.sealed FROM kms_keys k
         LEFT JOIN kms_key_materials m ON m.region = k.region AND m.key_id = k.key_id
         WHERE k.region = $1 AND k.key_id = $2 ORDER BY m.version",
        &[&region, &key_id],
    )
    .await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let key: KmsKeyRecord = json(first, 0, "KMS key")?;
    let mut materials = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(version) = get::<Option<i64>>(r, 1, "key material version")? else { continue };
        materials.push(KeyMaterialRecord {
            version: u32::try_from(version).map_err(|_| corrupt(format!("key material version {version}")))?,
            created: get(r, 2, "key material created")?,
            sealed: get(r, 3, "key material")?,
        });
    }
    Ok(Some(KmsKeyState { key, materials }))
}

pub(crate) async fn list_kms_keys(client: &Client, region: &str) -> StoreResult<Vec<KmsKeyRecord>> {
    query(client, "SELECT meta FROM kms_keys WHERE region = $1 ORDER BY created, key_id", &[&region])
        .await?
        .iter()
        .map(|r| json(r, 0, "KMS key"))
        .collect()
}

fn alias_from_row(r: &Row) -> StoreResult<AliasRecord> {
    Ok(AliasRecord {
        region: get(r, 0, "alias region")?,
        alias_name: get(r, 1, "alias name")?,
        target_key_id: get(r, 2, "alias target")?,
        created: get(r, 3, "alias created")?,
        last_updated: get(r, 4, "alias last updated")?,
    })
}

pub(crate) async fn load_alias(client: &Client, region: &str, alias_name: &str) -> StoreResult<Option<AliasRecord>> {
    query(
        client,
        "SELECT region, alias_name, target_key_id, created, last_updated FROM kms_aliases
         WHERE region = $1 AND alias_name = $2",
        &[&region, &alias_name],
    )
    .await?
    .first()
    .map(alias_from_row)
    .transpose()
}

pub(crate) async fn list_aliases(client: &Client, region: &str) -> StoreResult<Vec<AliasRecord>> {
    query(
        client,
        "SELECT region, alias_name, target_key_id, created, last_updated FROM kms_aliases
         WHERE region = $1 ORDER BY alias_name",
        &[&region],
    )
    .await?
    .iter()
    .map(alias_from_row)
    .collect()
}

pub(crate) async fn list_settings(client: &Client) -> StoreResult<Vec<(String, Vec<u8>)>> {
    query(client, "SELECT key, value FROM settings ORDER BY key", &[])
        .await?
        .iter()
        .map(|r| Ok((get(r, 0, "setting key")?, get(r, 1, "setting value")?)))
        .collect()
}

pub(crate) async fn list_regions(client: &Client) -> StoreResult<Vec<String>> {
    let sql = "SELECT region FROM secrets UNION SELECT region FROM parameters UNION SELECT region FROM kms_keys \
               UNION SELECT region FROM kms_aliases ORDER BY 1";
    query(client, sql, &[]).await?.iter().map(|r| get(r, 0, "region")).collect()
}

pub(crate) async fn list_all_access_keys(client: &Client) -> StoreResult<Vec<AccessKeyRecord>> {
    let sql = concat!("SELECT ", access_key_columns!(), " FROM access_keys ORDER BY access_key_id");
    query(client, sql, &[]).await?.iter().map(access_key_from_row).collect()
}

/// One column of one row by primary key: the per-read check of a cached copy.
pub(crate) async fn secret_revision(client: &Client, arn: &str) -> StoreResult<Option<u64>> {
    query(client, "SELECT revision FROM secrets WHERE arn = $1", &[&arn])
        .await?
        .first()
        .map(|r| revision_from_sql(get(r, 0, "secret revision")?))
        .transpose()
}

pub(crate) async fn parameter_revision(client: &Client, region: &str, name: &str) -> StoreResult<Option<u64>> {
    query(client, "SELECT revision FROM parameters WHERE region = $1 AND name = $2", &[&region, &name])
        .await?
        .first()
        .map(|r| revision_from_sql(get(r, 0, "parameter revision")?))
        .transpose()
}
