//! The audit log's reads. (Appending, digests and pruning are writes: see `write.rs`.)
//!
//! Plain tables with B-tree indexes: `audit_events` by seq (its primary key) and by time,
//! `audit_lookup (attr, value, seq)` for lookups. An exact lookup walks one value's entries newest
//! first down the primary key, joined to the events; a prefix lookup ranges over every matching value
//! (`COLLATE "C"`, so the range and the match are bytewise) and keeps each event once however many of
//! its values match.

use coffer_store::audit::ChainHash;
use coffer_store::{
    AuditDigestRecord, AuditHead, AuditQuery, AuditRecord, EpochMillis, LookupAttribute, StoreResult, ValueMatch,
};
use deadpool_postgres::ClientWrapper as Client;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::corrupt;
use crate::read::{get, query};
use crate::write::{attr_to_sql, bound_to_sql, limit_to_sql};

fn seq_from_sql(v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| corrupt(format!("negative audit seq {v}")))
}

fn hash_from_sql(bytes: &[u8], what: &str) -> StoreResult<ChainHash> {
    ChainHash::try_from(bytes).map_err(|_| corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

/// The columns [`record_from_row`] decodes, in its order (aliased `e`).
const RECORD_COLUMNS: &str = "e.seq, e.event_id, e.time_ms, e.prev_hash, e.body";

fn record_from_row(r: &Row) -> StoreResult<AuditRecord> {
    let seq = seq_from_sql(get(r, 0, "audit seq")?)?;
    Ok(AuditRecord {
        seq,
        event_id: get(r, 1, "audit event id")?,
        time_ms: get(r, 2, "audit event time")?,
        prev_hash: hash_from_sql(get(r, 3, "audit prev_hash")?, &format!("prev_hash of {seq}"))?,
        body: get(r, 4, "audit event body")?,
    })
}

pub(crate) async fn head(client: &Client) -> StoreResult<AuditHead> {
    let rows = query(client, "SELECT seq, hash FROM audit_head WHERE id = 0", &[]).await?;
    let row = rows.first().ok_or_else(|| corrupt("the audit head row is missing"))?;
    Ok(AuditHead {
        seq: seq_from_sql(get(row, 0, "audit head seq")?)?,
        hash: hash_from_sql(get(row, 1, "audit head hash")?, "the audit head hash")?,
    })
}

pub(crate) async fn oldest_seq(client: &Client) -> StoreResult<Option<u64>> {
    let rows = query(client, "SELECT MIN(seq) FROM audit_events", &[]).await?;
    let row = rows.first().ok_or_else(|| corrupt("MIN(seq) returned no row"))?;
    get::<Option<i64>>(row, 0, "oldest audit seq")?.map(seq_from_sql).transpose()
}

pub(crate) async fn records_from(client: &Client, from_seq: u64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM audit_events e WHERE e.seq >= $1 ORDER BY e.seq LIMIT $2");
    query(client, &sql, &[&bound_to_sql(from_seq), &limit_to_sql(limit)]).await?.iter().map(record_from_row).collect()
}

pub(crate) async fn seq_at(client: &Client, time_ms: EpochMillis) -> StoreResult<Option<u64>> {
    let rows = query(client, "SELECT MIN(seq) FROM audit_events WHERE time_ms >= $1", &[&time_ms]).await?;
    let row = rows.first().ok_or_else(|| corrupt("MIN(seq) returned no row"))?;
    get::<Option<i64>>(row, 0, "audit seq at time")?.map(seq_from_sql).transpose()
}

/// The smallest string greater than every string starting with `prefix` (None: no such bound, the
/// prefix is empty or all U+10FFFF). UTF-8 orders like code points, so this is a byte-order bound too.
fn prefix_upper(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'), // over the surrogates, which are not chars
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A page of records matching the query, newest first.
pub(crate) async fn query_audit(client: &Client, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let before = q.before_seq.map_or(i64::MAX, bound_to_sql);
    let start = q.start_ms.unwrap_or(EpochMillis::MIN);
    let end = q.end_ms.unwrap_or(EpochMillis::MAX);
    let limit = limit_to_sql(q.limit);
    let window = "e.seq < $1 AND e.time_ms >= $2 AND e.time_ms <= $3";
    let rows = match &q.lookup {
        None => {
            let sql =
                format!("SELECT {RECORD_COLUMNS} FROM audit_events e WHERE {window} ORDER BY e.seq DESC LIMIT $4");
            query(client, &sql, &[&before, &start, &end, &limit]).await?
        }
        Some((attr, ValueMatch::Exact(value))) => {
            // One value's entries, newest first, straight down the primary key; one entry per event.
            let sql = format!(
                "SELECT {RECORD_COLUMNS} FROM audit_lookup l JOIN audit_events e ON e.seq = l.seq
                 WHERE l.attr = $5 AND l.value = $6 AND l.seq < $1 AND {window}
                 ORDER BY l.seq DESC LIMIT $4"
            );
            query(client, &sql, &[&before, &start, &end, &limit, &attr_to_sql(*attr), value]).await?
        }
        Some((attr, ValueMatch::Prefix(prefix))) => {
            prefix_query(client, *attr, prefix, [&before, &start, &end, &limit]).await?
        }
    };
    rows.iter().map(record_from_row).collect()
}

/// A prefix lookup: every value in [prefix, upper) that starts with the prefix (`starts_with` compares
/// bytes, so `%`, `_` and `*` are plain characters); an event matching through several values is found
/// once.
async fn prefix_query(
    client: &Client,
    attr: LookupAttribute,
    prefix: &str,
    window_params: [&(dyn ToSql + Sync); 4],
) -> StoreResult<Vec<Row>> {
    let attr = attr_to_sql(attr);
    let upper = prefix_upper(prefix);
    let upper_bound = if upper.is_some() { " AND l.value < $7" } else { "" };
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM audit_events e
         WHERE e.seq < $1 AND e.time_ms >= $2 AND e.time_ms <= $3 AND e.seq IN (
             SELECT l.seq FROM audit_lookup l
             WHERE l.attr = $5 AND l.value >= $6{upper_bound} AND starts_with(l.value, $6) AND l.seq < $1
         )
         ORDER BY e.seq DESC LIMIT $4"
    );
    let mut params: Vec<&(dyn ToSql + Sync)> = window_params.to_vec();
    params.push(&attr);
    params.push(&prefix);
    if let Some(upper) = &upper {
        params.push(upper);
    }
    query(client, &sql, &params).await
}

fn digest_from_row(r: &Row) -> StoreResult<AuditDigestRecord> {
    Ok(AuditDigestRecord {
        number: seq_from_sql(get(r, 0, "digest number")?)?,
        time_ms: get(r, 1, "digest time")?,
        last_seq: seq_from_sql(get(r, 2, "digest last seq")?)?,
        body: get(r, 3, "digest body")?,
        signature: get(r, 4, "digest signature")?,
    })
}

pub(crate) async fn digests(client: &Client, from_number: u64, limit: usize) -> StoreResult<Vec<AuditDigestRecord>> {
    query(
        client,
        "SELECT number, time_ms, last_seq, body, signature FROM audit_digests WHERE number >= $1
         ORDER BY number LIMIT $2",
        &[&bound_to_sql(from_number), &limit_to_sql(limit)],
    )
    .await?
    .iter()
    .map(digest_from_row)
    .collect()
}

pub(crate) async fn latest_digest(client: &Client) -> StoreResult<Option<AuditDigestRecord>> {
    query(
        client,
        "SELECT number, time_ms, last_seq, body, signature FROM audit_digests ORDER BY number DESC LIMIT 1",
        &[],
    )
    .await?
    .first()
    .map(digest_from_row)
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::prefix_upper;

    #[test]
    fn prefix_upper_bounds_every_extension() {
        assert_eq!(prefix_upper(""), None);
        assert_eq!(prefix_upper("a/"), Some("a0".into()));
        assert_eq!(prefix_upper("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_upper("\u{10FFFF}"), None);
        assert_eq!(prefix_upper("\u{D7FF}"), Some("\u{E000}".into()));
    }
}
