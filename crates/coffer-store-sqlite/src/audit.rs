//! The audit log in SQLite: chaining on the writer thread, and the reads.
//!
//! # Appending
//!
//! The writer thread keeps the chain's head ([`ChainState`]) in memory, so an append costs one row in
//! `audit_events` and one in `audit_lookup_lists` (both at the right edge of their b-trees), and no
//! read; its `audit_lookup` rows come with a later fold (see Lookups). Each record is chained when its job runs, inside the job's savepoint
//! and after the job's change applied; the head row (`audit_head`) is written once per group commit,
//! in the same transaction. A job that fails is rolled back to its savepoint and the in-memory head
//! with it, so a failed change consumes no seq. A batch that fails as a whole reloads the head from
//! the database ([`Chain::reload`]). Before each batch, under the write lock, `PRAGMA data_version`
//! tells whether another connection (a second process on the same file) committed since: then the
//! head is reloaded too, so two writers on one file still form one chain.
//!
//! # Time bounds
//!
//! `time_ms` is set by the service before commit, so it is only roughly monotonic in seq. Each record
//! also stores `max_time`, the largest `time_ms` up to and including it: that never decreases along
//! seq, and its index answers "the lowest seq whose max_time is at least T" with one seek. Because
//! every record before that seq has `max_time < T`, hence `time_ms < T`, it is an exact lower seq bound
//! for `time_ms >= T`. An upper bound needs a bound on lag: a record committed within [`LATE_MS`] of
//! the newest time before it has `max_time <= time_ms + LATE_MS`, so every such record with
//! `time_ms <= T` lies below "the lowest seq whose max_time exceeds T + LATE_MS". The rare records
//! lagging more (a clock stepped back, a long stall) are "late" and have a partial index of their own
//! (`audit_events_late`), consulted above that bound: a one-off clock jump costs its own records, not
//! every later query. A time-bounded query therefore scans only the seqs between those bounds (the
//! out-of-order records near the edges are filtered out by their real `time_ms`), plus the late
//! records above them, with or without a lookup attribute.
//!
//! # Lookups
//!
//! `audit_lookup (attr, value, seq)` is a clustered primary key, so an exact lookup is one backwards
//! range scan joined by rowid to `audit_events`: a page costs `limit` index entries and rows, whatever
//! the log's size. Its rows are written late: an append writes only the event's compact lookup list,
//! and the writer folds the lists of the newest records (the tail) into the index in sorted batches of
//! [`FOLD_AT`] ([`fold`]); `audit_head.indexed_seq` says how far. A lookup walks the tail's lists first
//! (they are the newest records), then the index below it. A prefix may match many values whose seqs interleave; see [`prefix_seqs`].

use std::collections::BTreeSet;

use coffer_audit::chain::record_hash;
use coffer_store::audit::ChainHash;
use coffer_store::{
    AuditAppend, AuditDigestAppend, AuditDigestRecord, AuditHead, AuditQuery, AuditRecord, EpochMillis,
    LookupAttribute, StoreError, StoreResult, ValueMatch,
};
use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{corrupt, map_sqlite, unavailable};

/// A prefix matching at most this many distinct values is answered by merging each value's newest
/// seqs (one index seek per value); beyond it, by walking the events' lookup lists (see [`prefix_seqs`]).
const MERGE_VALUES: usize = 32;

/// A record whose `time_ms` is more than this behind the `max_time` before it is late (see the module
/// docs). Must match the partial index `audit_events_late` in `0005_audit.sql` (checked by a test).
const LATE_MS: i64 = 1_000;

/// The partial index's condition, as queries must spell it for SQLite to use that index.
macro_rules! late_condition {
    () => {
        "max_time - time_ms > 1000"
    };
}

/// How many lookup lists a prefix walk reads per requested record before it switches to a range scan of
/// the lookup index (a dense prefix fills a page long before; a sparse one is cheaper to scan).
const WALK_PER_RECORD: usize = 64;
const WALK_MIN: usize = 4096;

fn to_sql_int(v: u64) -> i64 {
    // Seqs and numbers never get near 2^63; a caller's "no bound" (u64::MAX) becomes the largest
    // bound SQLite can hold, which means the same.
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn seq_from_sql(v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| corrupt(format!("negative audit seq {v}")))
}

fn hash_from_sql(bytes: Vec<u8>, what: &str) -> StoreResult<ChainHash> {
    ChainHash::try_from(bytes.as_slice()).map_err(|_| corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

// ---- An event's index entries as `audit_lookup_lists` keeps them, its event id first:
// [attribute code: u8][length: u32 LE][UTF-8 value], ...

/// Every `audit_lookup` entry of an event: its event id, then its lookup list as given.
fn index_entries(event: &AuditAppend) -> impl Iterator<Item = (LookupAttribute, &str)> {
    std::iter::once((LookupAttribute::EventId, event.event_id.as_str()))
        .chain(event.lookup.iter().map(|(attr, value)| (*attr, value.as_str())))
}

fn encode_lookup<'a>(entries: impl Iterator<Item = (LookupAttribute, &'a str)>) -> StoreResult<Vec<u8>> {
    let mut out = Vec::new();
    for (attr, value) in entries {
        let len = u32::try_from(value.len())
            .map_err(|_| StoreError::InvalidWrite(format!("a {attr:?} lookup value of {} bytes", value.len())))?;
        // Codes are 1..=8 (`LookupAttribute`): a byte holds them.
        out.push(attr.code() as u8);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    Ok(out)
}

/// The entries of an encoded lookup list, as (attribute code, value bytes); `Corrupt` if truncated.
fn decode_lookup(mut blob: &[u8]) -> StoreResult<Vec<(i64, &[u8])>> {
    let mut out = Vec::new();
    while let Some((&code, rest)) = blob.split_first() {
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("truncated audit lookup entry"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(corrupt("truncated audit lookup value"));
        }
        let (value, rest) = rest.split_at(len);
        out.push((i64::from(code), value));
        blob = rest;
    }
    Ok(out)
}

// ---- The writer side.

/// The chain's head as the writer thread tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChainState {
    seq: u64,
    hash: ChainHash,
    /// The newest record's `max_time` (None before the first record).
    max_time: Option<EpochMillis>,
}

/// The error a stale in-memory head runs into (its next seq is already taken): the whole batch is
/// failed, so the head is reloaded rather than a write being refused as if it were a duplicate.
const CHAIN_MOVED: &str = "sqlite: the audit chain moved under this writer; retry";

pub(crate) fn is_chain_moved(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(m) if m == CHAIN_MOVED)
}

impl ChainState {
    fn load(conn: &Connection) -> StoreResult<ChainState> {
        let row = conn
            .prepare_cached("SELECT seq, hash, max_time FROM audit_head WHERE id = 0")
            .and_then(|mut s| {
                s.query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Option<i64>>(2)?)))
                    .optional()
            })
            .map_err(map_sqlite)?;
        let (seq, hash, max_time) = row.ok_or_else(|| corrupt("the audit head row is missing"))?;
        Ok(ChainState { seq: seq_from_sql(seq)?, hash: hash_from_sql(hash, "the audit head hash")?, max_time })
    }

    pub fn head(&self) -> AuditHead {
        AuditHead { seq: self.seq, hash: self.hash }
    }

    /// Chains one event after the head, inside the caller's transaction.
    pub fn append(&mut self, conn: &Connection, event: &AuditAppend) -> StoreResult<()> {
        let seq = self.seq + 1;
        let seq_sql = to_sql_int(seq);
        let max_time = self.max_time.map_or(event.time_ms, |m| m.max(event.time_ms));
        let inserted = conn
            .prepare_cached(
                "INSERT INTO audit_events (seq, time_ms, max_time, event_id, prev_hash, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![seq_sql, event.time_ms, max_time, event.event_id, self.hash.as_slice(), event.body])
            })
            .map_err(map_sqlite);
        match inserted {
            Ok(_) => {}
            Err(StoreError::AlreadyExists) => return Err(unavailable(CHAIN_MOVED)),
            Err(e) => return Err(e),
        }
        // The index rows come later, folded in sorted batches (see [`fold`]); until then the list is
        // what lookups read.
        let entries = encode_lookup(index_entries(event))?;
        conn.prepare_cached("INSERT INTO audit_lookup_lists (seq, entries) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![seq_sql, entries]))
            .map_err(map_sqlite)?;
        self.hash = record_hash(seq, &self.hash, event.time_ms, &event.event_id, &event.body);
        self.seq = seq;
        self.max_time = Some(max_time);
        Ok(())
    }

    fn save(&self, conn: &Connection) -> StoreResult<()> {
        let changed = conn
            .prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2, max_time = ?3 WHERE id = 0")
            .and_then(|mut s| s.execute(params![to_sql_int(self.seq), self.hash.as_slice(), self.max_time]))
            .map_err(map_sqlite)?;
        if changed != 1 {
            return Err(corrupt("the audit head row is missing"));
        }
        Ok(())
    }
}

/// The writer thread's cached head: the committed one, and the `data_version` it was read at.
pub(crate) struct Chain {
    committed: Option<ChainState>,
    data_version: i64,
}

fn data_version(conn: &Connection) -> StoreResult<i64> {
    conn.prepare_cached("PRAGMA data_version").and_then(|mut s| s.query_row([], |r| r.get(0))).map_err(map_sqlite)
}

impl Chain {
    /// Loads the head when the writer starts. A failure is logged and retried at the first batch.
    pub fn load(conn: &Connection) -> Chain {
        let mut chain = Chain { committed: None, data_version: 0 };
        chain.reload(conn);
        chain
    }

    /// Forgets the cached head and reads it again (after a failed or rolled-back transaction).
    pub fn reload(&mut self, conn: &Connection) {
        self.committed = None;
        match data_version(conn).and_then(|v| Ok((v, ChainState::load(conn)?))) {
            Ok((version, state)) => {
                self.data_version = version;
                self.committed = Some(state);
            }
            Err(e) => tracing::error!(error = %e, "reading the audit head failed; retried at the next write"),
        }
    }

    /// The head a batch starts from. Called inside the batch's transaction, after `BEGIN IMMEDIATE`:
    /// with the write lock held, nobody else can commit until this batch is done.
    pub fn start(&mut self, conn: &Connection) -> StoreResult<ChainState> {
        let version = data_version(conn)?;
        match self.committed {
            Some(state) if version == self.data_version => Ok(state),
            _ => {
                // Another connection committed since (or the head is unknown): its appends count.
                let state = ChainState::load(conn)?;
                self.committed = Some(state);
                self.data_version = version;
                Ok(state)
            }
        }
    }

    /// The committed head's seq, when known.
    pub fn head_seq(&self) -> Option<u64> {
        self.committed.map(|c| c.seq)
    }

    /// Writes the batch's final head into the transaction, if the batch moved it.
    pub fn save(&self, conn: &Connection, state: &ChainState) -> StoreResult<()> {
        if self.committed.as_ref() == Some(state) {
            return Ok(());
        }
        state.save(conn)
    }

    /// The batch committed: its head is the committed one.
    pub fn committed(&mut self, state: ChainState) {
        self.committed = Some(state);
    }
}

/// Appends a digest if the newest number ever assigned is still `expected_latest`; returns its number.
pub(crate) fn append_digest(conn: &Connection, expected_latest: u64, d: &AuditDigestAppend) -> StoreResult<usize> {
    let current: Option<i64> = conn
        .prepare_cached("SELECT digest_number FROM audit_head WHERE id = 0")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map_err(map_sqlite)?;
    let current = seq_from_sql(current.ok_or_else(|| corrupt("the audit head row is missing"))?)?;
    if current != expected_latest {
        return Err(StoreError::Conflict);
    }
    let number = current + 1;
    let number_sql = to_sql_int(number);
    conn.prepare_cached(
        "INSERT INTO audit_digests (number, time_ms, last_seq, body, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![number_sql, d.time_ms, to_sql_int(d.last_seq), d.body, d.signature]))
    .map_err(map_sqlite)?;
    conn.prepare_cached("UPDATE audit_head SET digest_number = ?1 WHERE id = 0")
        .and_then(|mut s| s.execute([number_sql]))
        .map_err(map_sqlite)?;
    usize::try_from(number).map_err(|_| corrupt(format!("digest number {number} out of range")))
}

/// Deletes up to `limit` of the oldest records below `before_seq` with their lookup rows (found by
/// primary key from the record's own list), and the digests below `keep_digests_from`. The head row is
/// not touched. Returns the records deleted.
/// The writer folds the tail into `audit_lookup` once it holds this many records. Each event's index
/// rows land on scattered leaves (one per resource name, say); written one group commit at a time that
/// is about a page per event, folded in sorted batches it is a page per many events. The tail is what a
/// lookup walks through the lists, so this also bounds that walk.
pub(crate) const FOLD_AT: u64 = 16_384;

/// The newest seq whose index rows are in `audit_lookup`.
pub(crate) fn indexed_seq(conn: &Connection) -> StoreResult<i64> {
    one_int(conn, "SELECT indexed_seq FROM audit_head WHERE id = 0", [])?
        .ok_or_else(|| corrupt("the audit head row is missing"))
}

/// Folds up to [`FOLD_AT`] tail records' lookup lists into `audit_lookup`, sorted by key, and moves
/// `indexed_seq`; runs inside the caller's transaction. Returns how many records were folded.
pub(crate) fn fold(conn: &Connection) -> StoreResult<usize> {
    let from = indexed_seq(conn)?;
    let lists: Vec<(i64, Vec<u8>)> = {
        let mut stmt = conn
            .prepare_cached("SELECT seq, entries FROM audit_lookup_lists WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(map_sqlite)?;
        let rows =
            stmt.query_map(params![from, to_sql_int(FOLD_AT)], |r| Ok((r.get(0)?, r.get(1)?))).map_err(map_sqlite)?;
        rows.collect::<Result<_, _>>().map_err(map_sqlite)?
    };
    let Some(&(last, _)) = lists.last() else { return Ok(0) };
    let mut rows: Vec<(i64, &str, i64)> = Vec::with_capacity(lists.len() * 5);
    for (seq, entries) in &lists {
        for (attr, value) in decode_lookup(entries)? {
            let value = std::str::from_utf8(value).map_err(|_| corrupt(format!("audit lookup of {seq}")))?;
            rows.push((attr, value, *seq));
        }
    }
    // In key order each leaf is written once per fold, not once per event.
    rows.sort_unstable();
    // A value listed twice (or the event id listed explicitly) is one index entry.
    let mut insert = conn
        .prepare_cached("INSERT INTO audit_lookup (attr, value, seq) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
        .map_err(map_sqlite)?;
    for (attr, value, seq) in rows {
        insert.execute(params![attr, value, seq]).map_err(map_sqlite)?;
    }
    conn.prepare_cached("UPDATE audit_head SET indexed_seq = ?1 WHERE id = 0")
        .and_then(|mut s| s.execute([last]))
        .map_err(map_sqlite)?;
    Ok(lists.len())
}

pub(crate) fn prune(conn: &Connection, before_seq: u64, keep_digests_from: u64, limit: usize) -> StoreResult<usize> {
    let doomed: Vec<(i64, Option<Vec<u8>>)> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT e.seq, l.entries FROM audit_events e LEFT JOIN audit_lookup_lists l ON l.seq = e.seq
                 WHERE e.seq < ?1 ORDER BY e.seq LIMIT ?2",
            )
            .map_err(map_sqlite)?;
        let rows = stmt
            .query_map(params![to_sql_int(before_seq), limit_to_sql(limit)], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(map_sqlite)?;
        rows.collect::<Result<_, _>>().map_err(map_sqlite)?
    };
    if let (Some((first, _)), Some((last, _))) = (doomed.first(), doomed.last()) {
        let mut delete = conn
            .prepare_cached("DELETE FROM audit_lookup WHERE attr = ?1 AND value = ?2 AND seq = ?3")
            .map_err(map_sqlite)?;
        for (seq, entries) in &doomed {
            // Without its list the record's index rows could not be found, and would outlive it.
            let entries =
                entries.as_deref().ok_or_else(|| corrupt(format!("audit record {seq} has no lookup list")))?;
            for (attr, value) in decode_lookup(entries)? {
                // Stored as TEXT, so bound as TEXT: a BLOB would never equal it.
                let value = std::str::from_utf8(value).map_err(|_| corrupt(format!("audit lookup of {seq}")))?;
                delete.execute(params![attr, value, seq]).map_err(map_sqlite)?;
            }
        }
        // The doomed records are exactly the seqs in [first, last]: the oldest ones, in order.
        for sql in [
            "DELETE FROM audit_events WHERE seq >= ?1 AND seq <= ?2",
            "DELETE FROM audit_lookup_lists WHERE seq >= ?1 AND seq <= ?2",
        ] {
            conn.prepare_cached(sql).and_then(|mut s| s.execute([first, last])).map_err(map_sqlite)?;
        }
    }
    conn.prepare_cached("DELETE FROM audit_digests WHERE number < ?1")
        .and_then(|mut s| s.execute([to_sql_int(keep_digests_from)]))
        .map_err(map_sqlite)?;
    Ok(doomed.len())
}

// ---- The read side. Every function runs on one read connection; those that issue several queries
// do so in one read transaction, so they see one snapshot.

/// Decodes a row selected as `seq, event_id, time_ms, prev_hash, body`.
fn record_from_row(r: &Row<'_>) -> StoreResult<AuditRecord> {
    let seq = seq_from_sql(r.get(0).map_err(map_sqlite)?)?;
    Ok(AuditRecord {
        seq,
        event_id: r.get(1).map_err(map_sqlite)?,
        time_ms: r.get(2).map_err(map_sqlite)?,
        // Borrowed, not fetched as a Vec: one allocation fewer per record on the export path.
        prev_hash: ChainHash::try_from(
            r.get_ref(3).map_err(map_sqlite)?.as_blob().map_err(|e| corrupt(format!("prev_hash of {seq}: {e}")))?,
        )
        .map_err(|_| corrupt(format!("prev_hash of {seq} is not 32 bytes")))?,
        body: r.get(4).map_err(map_sqlite)?,
    })
}

fn collect_records<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> StoreResult<Vec<AuditRecord>> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_sqlite)?;
    let mut rows = stmt.query(params).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        out.push(record_from_row(r)?);
    }
    Ok(out)
}

fn collect_ints<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> StoreResult<Vec<i64>> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_sqlite)?;
    let rows = stmt.query_map(params, |r| r.get(0)).map_err(map_sqlite)?;
    rows.collect::<Result<_, _>>().map_err(map_sqlite)
}

fn one_int<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> StoreResult<Option<i64>> {
    conn.prepare_cached(sql).and_then(|mut s| s.query_row(params, |r| r.get(0)).optional()).map_err(map_sqlite)
}

pub(crate) fn head(conn: &Connection) -> StoreResult<AuditHead> {
    Ok(ChainState::load(conn)?.head())
}

pub(crate) fn oldest_seq(conn: &Connection) -> StoreResult<Option<u64>> {
    one_int(conn, "SELECT seq FROM audit_events ORDER BY seq LIMIT 1", [])?.map(seq_from_sql).transpose()
}

pub(crate) fn records_from(conn: &Connection, from_seq: u64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
    collect_records(
        conn,
        "SELECT seq, event_id, time_ms, prev_hash, body FROM audit_events WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        params![to_sql_int(from_seq), limit_to_sql(limit)],
    )
}

/// The lowest seq whose `max_time >= time`: every record before it is older than `time`.
fn first_seq_with_max_time_at_least(conn: &Connection, time: EpochMillis) -> StoreResult<Option<i64>> {
    one_int(conn, "SELECT seq FROM audit_events WHERE max_time >= ?1 ORDER BY max_time, seq LIMIT 1", [time])
}

/// The lowest seq whose `max_time > time`.
fn first_seq_with_max_time_above(conn: &Connection, time: EpochMillis) -> StoreResult<Option<i64>> {
    one_int(conn, "SELECT seq FROM audit_events WHERE max_time > ?1 ORDER BY max_time, seq LIMIT 1", [time])
}

pub(crate) fn seq_at(conn: &Connection, time: EpochMillis) -> StoreResult<Option<u64>> {
    let tx = conn.unchecked_transaction().map_err(map_sqlite)?;
    let found = match first_seq_with_max_time_at_least(&tx, time)? {
        None => None,
        // That record itself has `time_ms >= time` unless pruned records set its max_time; the scan
        // then steps over the few out-of-order records after it.
        Some(from) => one_int(
            &tx,
            "SELECT seq FROM audit_events WHERE seq >= ?1 AND time_ms >= ?2 ORDER BY seq LIMIT 1",
            [from, time],
        )?,
    };
    tx.finish().map_err(map_sqlite)?;
    found.map(seq_from_sql).transpose()
}

pub(crate) fn digests(conn: &Connection, from_number: u64, limit: usize) -> StoreResult<Vec<AuditDigestRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT number, time_ms, last_seq, body, signature FROM audit_digests WHERE number >= ?1
             ORDER BY number LIMIT ?2",
        )
        .map_err(map_sqlite)?;
    let mut rows = stmt.query(params![to_sql_int(from_number), limit_to_sql(limit)]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        out.push(digest_from_row(r)?);
    }
    Ok(out)
}

pub(crate) fn latest_digest(conn: &Connection) -> StoreResult<Option<AuditDigestRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT number, time_ms, last_seq, body, signature FROM audit_digests ORDER BY number DESC LIMIT 1",
        )
        .map_err(map_sqlite)?;
    let mut rows = stmt.query([]).map_err(map_sqlite)?;
    rows.next().map_err(map_sqlite)?.map(digest_from_row).transpose()
}

fn digest_from_row(r: &Row<'_>) -> StoreResult<AuditDigestRecord> {
    Ok(AuditDigestRecord {
        number: seq_from_sql(r.get(0).map_err(map_sqlite)?)?,
        time_ms: r.get(1).map_err(map_sqlite)?,
        last_seq: seq_from_sql(r.get(2).map_err(map_sqlite)?)?,
        body: r.get(3).map_err(map_sqlite)?,
        signature: r.get(4).map_err(map_sqlite)?,
    })
}

/// What a query scans: seqs in `[lo, hi)` whose `time_ms` is in `[t_min, t_max]`, and, when the end
/// bound cut the range short, the late records in `[late_from, before)`.
struct Window {
    lo: i64,
    hi: i64,
    t_min: EpochMillis,
    t_max: EpochMillis,
    /// Where the end bound cut the seq range (the late records above it are looked up apart).
    late_from: Option<i64>,
    /// The query's cursor (exclusive), or no bound.
    before: i64,
}

impl Window {
    fn has_time_bounds(&self) -> bool {
        self.t_min != EpochMillis::MIN || self.t_max != EpochMillis::MAX
    }
}

/// Turns the query's cursor and time bounds into a seq window (see the module docs); None when nothing
/// can match.
fn window(conn: &Connection, q: &AuditQuery) -> StoreResult<Option<Window>> {
    let before = q.before_seq.map_or(i64::MAX, to_sql_int);
    let mut w = Window {
        lo: 0,
        hi: before,
        t_min: q.start_ms.unwrap_or(EpochMillis::MIN),
        t_max: q.end_ms.unwrap_or(EpochMillis::MAX),
        late_from: None,
        before,
    };
    if w.t_min > w.t_max {
        return Ok(None);
    }
    if let Some(start) = q.start_ms {
        match first_seq_with_max_time_at_least(conn, start)? {
            Some(lo) => w.lo = lo,
            None => return Ok(None), // every record is older
        }
    }
    if let Some(end) = q.end_ms {
        if let Some(hi) = first_seq_with_max_time_above(conn, end.saturating_add(LATE_MS))? {
            if hi < w.hi {
                w.hi = hi;
                w.late_from = Some(hi.max(w.lo));
            }
        }
    }
    Ok(Some(w))
}

pub(crate) fn query(conn: &Connection, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let tx = conn.unchecked_transaction().map_err(map_sqlite)?;
    let out = match window(&tx, q)? {
        None => Vec::new(),
        Some(w) => {
            // Late records sit above every record of the main range: they come first.
            let mut out = Vec::new();
            for seq in late_matches(&tx, q, &w)? {
                out.extend(record_at(&tx, seq)?);
            }
            let mut limit = q.limit - out.len();
            if q.lookup.is_some() {
                // The tail (not folded into the index yet) sits above the indexed records: its matches,
                // found through the lookup lists, come first.
                let split = indexed_seq(&tx)?.saturating_add(1).max(w.lo);
                if limit > 0 && split < w.hi {
                    let tail = Window { lo: split, ..w };
                    for seq in tail_matches(&tx, q, &tail, limit)? {
                        out.extend(record_at(&tx, seq)?);
                    }
                    limit = q.limit - out.len();
                }
                let folded = Window { hi: w.hi.min(split), ..w };
                if limit > 0 && folded.lo < folded.hi {
                    out.extend(query_range(&tx, q, &folded, limit)?);
                }
            } else if limit > 0 && w.lo < w.hi {
                out.extend(query_range(&tx, q, &w, limit)?);
            }
            out
        }
    };
    tx.finish().map_err(map_sqlite)?;
    Ok(out)
}

fn record_at(conn: &Connection, seq: i64) -> StoreResult<Vec<AuditRecord>> {
    collect_records(conn, "SELECT seq, event_id, time_ms, prev_hash, body FROM audit_events WHERE seq = ?1", [seq])
}

/// The newest `limit` records of the window's main range `[lo, hi)` matching the query.
fn query_range(conn: &Connection, q: &AuditQuery, w: &Window, limit: usize) -> StoreResult<Vec<AuditRecord>> {
    match &q.lookup {
        None => collect_records(
            conn,
            // The rowid range, backwards; NOT INDEXED keeps the planner off the max_time index.
            "SELECT seq, event_id, time_ms, prev_hash, body FROM audit_events NOT INDEXED
             WHERE seq >= ?1 AND seq < ?2 AND time_ms >= ?3 AND time_ms <= ?4 ORDER BY seq DESC LIMIT ?5",
            params![w.lo, w.hi, w.t_min, w.t_max, limit_to_sql(limit)],
        ),
        Some((attr, ValueMatch::Exact(value))) => collect_records(
            conn,
            // CROSS JOIN fixes the loop order: the lookup index drives, newest first, and each entry
            // fetches its record by rowid. No sort, no scan beyond the page.
            "SELECT e.seq, e.event_id, e.time_ms, e.prev_hash, e.body
             FROM audit_lookup l CROSS JOIN audit_events e ON e.seq = l.seq
             WHERE l.attr = ?1 AND l.value = ?2 AND l.seq >= ?3 AND l.seq < ?4
               AND e.time_ms >= ?5 AND e.time_ms <= ?6
             ORDER BY l.seq DESC LIMIT ?7",
            params![attr.code(), value, w.lo, w.hi, w.t_min, w.t_max, limit_to_sql(limit)],
        ),
        Some((attr, ValueMatch::Prefix(prefix))) => {
            let mut out = Vec::new();
            for seq in prefix_seqs(conn, *attr, prefix, w, limit)? {
                out.extend(record_at(conn, seq)?);
            }
            Ok(out)
        }
    }
}

/// The late records above the main range (`[late_from, before)`) in the time bounds and matching the
/// lookup, newest first, at most the query's limit. There are normally none: the partial index holds
/// only records that lagged more than [`LATE_MS`].
fn late_matches(conn: &Connection, q: &AuditQuery, w: &Window) -> StoreResult<Vec<i64>> {
    let Some(from) = w.late_from else { return Ok(Vec::new()) };
    let candidates = collect_ints(
        conn,
        concat!(
            "SELECT seq FROM audit_events INDEXED BY audit_events_late WHERE ",
            late_condition!(),
            " AND time_ms >= ?1 AND time_ms <= ?2 AND seq >= ?3 AND seq < ?4 ORDER BY seq DESC"
        ),
        params![w.t_min, w.t_max, from, w.before],
    )?;
    let mut out = Vec::new();
    for seq in candidates {
        if out.len() == q.limit {
            break;
        }
        // The record's own lookup list answers whether it matches, folded into the index or not.
        let matched = match &q.lookup {
            None => true,
            Some((attr, value)) => {
                let entries: Option<Vec<u8>> = conn
                    .prepare_cached("SELECT entries FROM audit_lookup_lists WHERE seq = ?1")
                    .and_then(|mut s| s.query_row([seq], |r| r.get(0)).optional())
                    .map_err(map_sqlite)?;
                let entries = entries.ok_or_else(|| corrupt(format!("audit record {seq} has no lookup list")))?;
                decode_lookup(&entries)?.iter().any(|(a, v)| *a == attr.code() && value_matches(value, v))
            }
        };
        if matched {
            out.push(seq);
        }
    }
    Ok(out)
}

fn value_matches(wanted: &ValueMatch, value: &[u8]) -> bool {
    match wanted {
        ValueMatch::Exact(v) => value == v.as_bytes(),
        ValueMatch::Prefix(p) => value.starts_with(p.as_bytes()),
    }
}

/// The matches in the window among records not folded into the index yet, newest first, at most
/// `limit`: a walk of their lookup lists (about [`FOLD_AT`] short rows at most).
fn tail_matches(conn: &Connection, q: &AuditQuery, w: &Window, limit: usize) -> StoreResult<Vec<i64>> {
    let Some((attr, wanted)) = &q.lookup else { return Ok(Vec::new()) };
    let code = attr.code();
    let mut stmt = conn
        .prepare_cached("SELECT seq, entries FROM audit_lookup_lists WHERE seq >= ?1 AND seq < ?2 ORDER BY seq DESC")
        .map_err(map_sqlite)?;
    let mut rows = stmt.query(params![w.lo, w.hi]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        let seq: i64 = r.get(0).map_err(map_sqlite)?;
        let entries =
            r.get_ref(1).map_err(map_sqlite)?.as_blob().map_err(|e| corrupt(format!("lookup list of {seq}: {e}")))?;
        if !decode_lookup(entries)?.iter().any(|(a, v)| *a == code && value_matches(wanted, v)) {
            continue;
        }
        let in_time = !w.has_time_bounds()
            || one_int(conn, "SELECT time_ms FROM audit_events WHERE seq = ?1", [seq])?
                .is_some_and(|time| time >= w.t_min && time <= w.t_max);
        if in_time {
            out.push(seq);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
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

/// The newest seqs (descending, distinct, at most `limit`) in the window with a value of `attr`
/// starting with `prefix`.
///
/// The matching values' seqs interleave, and the index orders them by value first, so no single range
/// scan yields them newest first. Three ways, cheapest first:
/// 1. Few distinct values (at most [`MERGE_VALUES`], found by skipping through the index one seek each):
///    the newest `limit` seqs of each value, merged.
/// 2. Many values usually means a broad prefix that most events match: walk the events newest first,
///    checking each one's own lookup list, for a bounded number of rows.
/// 3. If the walk did not fill the page, the matches are sparse: one range scan of the index over every
///    matching value below where the walk stopped, keeping the newest (SQLite's sorter keeps only
///    `limit` rows), repeated while an event matching several values left the page short.
fn prefix_seqs(
    conn: &Connection,
    attr: LookupAttribute,
    prefix: &str,
    w: &Window,
    limit: usize,
) -> StoreResult<Vec<i64>> {
    let upper = prefix_upper(prefix);
    let mut values: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let code = attr.code();
    while values.len() <= MERGE_VALUES {
        let mut sql = String::from("SELECT value FROM audit_lookup WHERE attr = :attr");
        let mut args: Vec<(&str, &dyn ToSql)> = vec![(":attr", &code)];
        match &after {
            None => {
                sql.push_str(" AND value >= :from");
                args.push((":from", &prefix));
            }
            Some(v) => {
                sql.push_str(" AND value > :from");
                args.push((":from", v));
            }
        }
        if let Some(u) = &upper {
            sql.push_str(" AND value < :upper");
            args.push((":upper", u));
        }
        sql.push_str(" ORDER BY value LIMIT 1");
        let next: Option<String> = conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row(args.as_slice(), |r| r.get(0)).optional())
            .map_err(map_sqlite)?;
        match next {
            Some(v) => {
                after = Some(v.clone());
                values.push(v);
            }
            None => break,
        }
    }
    if values.len() <= MERGE_VALUES {
        let mut all = BTreeSet::new();
        for value in &values {
            all.extend(value_seqs(conn, attr, value, w, limit)?);
        }
        return Ok(all.into_iter().rev().take(limit).collect());
    }

    let (mut out, walked_to) = walk_events(conn, attr, prefix, w, limit)?;
    let mut hi = match walked_to {
        None => return Ok(out),
        Some(hi) => hi,
    };
    while out.len() < limit {
        let want = limit - out.len();
        let mut sql = String::from("SELECT l.seq FROM audit_lookup l");
        if w.has_time_bounds() {
            sql.push_str(" CROSS JOIN audit_events e ON e.seq = l.seq");
        }
        sql.push_str(" WHERE l.attr = :attr AND l.value >= :prefix AND l.seq >= :lo AND l.seq < :hi");
        let want_sql = limit_to_sql(want);
        let mut args: Vec<(&str, &dyn ToSql)> =
            vec![(":attr", &code), (":prefix", &prefix), (":lo", &w.lo), (":hi", &hi), (":limit", &want_sql)];
        if let Some(u) = &upper {
            sql.push_str(" AND l.value < :upper");
            args.push((":upper", u));
        }
        if w.has_time_bounds() {
            sql.push_str(" AND e.time_ms >= :t_min AND e.time_ms <= :t_max");
            args.push((":t_min", &w.t_min));
            args.push((":t_max", &w.t_max));
        }
        sql.push_str(" ORDER BY l.seq DESC LIMIT :limit");
        let found = collect_ints(conn, &sql, args.as_slice())?;
        let full = found.len() == want;
        let Some(&lowest) = found.last() else { break };
        // An event matching two values comes twice (adjacent: the rows are ordered by seq); below
        // `lowest` the next round finds the rest.
        for seq in found {
            if out.last().is_none_or(|&last| seq < last) {
                out.push(seq);
            }
        }
        hi = lowest;
        if !full {
            break;
        }
    }
    Ok(out)
}

/// The newest seqs (descending, at most `limit`) in the window with exactly this value.
fn value_seqs(
    conn: &Connection,
    attr: LookupAttribute,
    value: &str,
    w: &Window,
    limit: usize,
) -> StoreResult<Vec<i64>> {
    let limit = limit_to_sql(limit);
    if w.has_time_bounds() {
        collect_ints(
            conn,
            "SELECT l.seq FROM audit_lookup l CROSS JOIN audit_events e ON e.seq = l.seq
             WHERE l.attr = ?1 AND l.value = ?2 AND l.seq >= ?3 AND l.seq < ?4
               AND e.time_ms >= ?5 AND e.time_ms <= ?6
             ORDER BY l.seq DESC LIMIT ?7",
            params![attr.code(), value, w.lo, w.hi, w.t_min, w.t_max, limit],
        )
    } else {
        // Index-only: with open time bounds the records need not be read.
        collect_ints(
            conn,
            "SELECT seq FROM audit_lookup WHERE attr = ?1 AND value = ?2 AND seq >= ?3 AND seq < ?4
             ORDER BY seq DESC LIMIT ?5",
            params![attr.code(), value, w.lo, w.hi, limit],
        )
    }
}

/// Walks the window's lookup lists newest first, keeping the events with a value of `attr` starting
/// with `prefix`, until `limit` matched or the walk's budget is spent. Returns the matches and, if the
/// window was not exhausted, the seq the walk stopped above (exclusive).
fn walk_events(
    conn: &Connection,
    attr: LookupAttribute,
    prefix: &str,
    w: &Window,
    limit: usize,
) -> StoreResult<(Vec<i64>, Option<i64>)> {
    let budget = limit.saturating_mul(WALK_PER_RECORD).max(WALK_MIN);
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, entries FROM audit_lookup_lists WHERE seq >= ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
        )
        .map_err(map_sqlite)?;
    let mut rows = stmt.query(params![w.lo, w.hi, limit_to_sql(budget)]).map_err(map_sqlite)?;
    let (code, prefix) = (attr.code(), prefix.as_bytes());
    let mut out = Vec::new();
    let mut read = 0usize;
    let mut last = w.hi;
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        read += 1;
        let seq: i64 = r.get(0).map_err(map_sqlite)?;
        last = seq;
        let entries =
            r.get_ref(1).map_err(map_sqlite)?.as_blob().map_err(|e| corrupt(format!("lookup list of {seq}: {e}")))?;
        if !decode_lookup(entries)?.iter().any(|(a, v)| *a == code && v.starts_with(prefix)) {
            continue;
        }
        // Only a match's time is read: the walk scans the short lists, not the records.
        let in_time = !w.has_time_bounds()
            || one_int(conn, "SELECT time_ms FROM audit_events WHERE seq = ?1", [seq])?
                .is_some_and(|time| time >= w.t_min && time <= w.t_max);
        if in_time {
            out.push(seq);
            if out.len() == limit {
                return Ok((out, None));
            }
        }
    }
    // Fewer rows than the budget: the window is exhausted.
    Ok((out, (read == budget).then_some(last)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_late_index_and_its_queries_agree() {
        let migration = include_str!("../migrations/0005_audit.sql");
        assert!(migration.contains(concat!("ON audit_events (time_ms) WHERE ", late_condition!(), ";")));
        assert_eq!(late_condition!(), format!("max_time - time_ms > {LATE_MS}"));
    }

    #[test]
    fn prefix_upper_bounds_exactly_the_prefixed_strings() {
        assert_eq!(prefix_upper("abc").as_deref(), Some("abd"));
        assert_eq!(prefix_upper("a\u{7f}").as_deref(), Some("a\u{80}"));
        assert_eq!(prefix_upper("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_upper("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper("\u{10FFFF}"), None);
        assert_eq!(prefix_upper(""), None);
        let upper = prefix_upper("ab\u{FFFF}").unwrap();
        for s in ["ab\u{FFFF}", "ab\u{FFFF}\u{10FFFF}", "ab\u{FFFF}zzz"] {
            assert!(s < upper.as_str() && s >= "ab\u{FFFF}", "{s:?}");
        }
        assert!("ab\u{10000}" >= upper.as_str());
    }

    #[test]
    fn lookup_lists_round_trip_and_truncation_is_corrupt() {
        let event = AuditAppend {
            event_id: "id".into(),
            time_ms: 0,
            body: vec![],
            lookup: vec![
                (LookupAttribute::ResourceName, "arn:aws:secretsmanager:x".to_string()),
                (LookupAttribute::Username, String::new()),
                (LookupAttribute::EventName, "ünï".to_string()),
            ],
        };
        let blob = encode_lookup(index_entries(&event)).unwrap();
        let decoded = decode_lookup(&blob).unwrap();
        let expected: Vec<(i64, &[u8])> = index_entries(&event).map(|(a, v)| (a.code(), v.as_bytes())).collect();
        assert_eq!(decoded, expected);
        assert_eq!(decoded[0], (LookupAttribute::EventId.code(), b"id".as_slice()));
        assert!(decode_lookup(&[]).unwrap().is_empty());
        let boundaries: Vec<usize> = index_entries(&event)
            .scan(0, |at, (_, v)| {
                *at += 5 + v.len();
                Some(*at)
            })
            .collect();
        for cut in 1..blob.len() {
            // Only cuts at entry boundaries decode.
            assert_eq!(decode_lookup(&blob[..cut]).is_ok(), boundaries.contains(&cut), "{cut}");
        }
    }
}
