//! The audit log in SQLite: chaining on the writer thread, and the reads.
//!
//! # Appending
//!
//! The writer thread keeps the chain's head ([`ChainState`]) in memory, so an append costs one row in
//! `audit_events` (at the right edge of its b-tree, its lookup list inside), and no
//! read; its `audit_lookup` entries come with a later fold (see Lookups). Each record is chained when
//! its job runs, inside the job's savepoint
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
//! `audit_lookup (attr, value, seq)` is a clustered primary key whose rows each hold a run of seqs with
//! that value (`seq` the run's first, `seqs` the rest as varint gaps). Its rows are written late: an
//! append writes only the event's compact lookup list, and the writer folds the lists of the newest
//! records (the tail) in batches of [`FOLD_AT`] ([`fold`]), one row per distinct value of the batch;
//! `audit_head.indexed_seq` says how far. Folds cover disjoint, ascending seq ranges, so one value's rows
//! in key order are its seqs in order: an exact lookup is one backwards range scan over them, joined by
//! rowid to `audit_events`, and a page costs about `limit` seqs and records whatever the log's size. A
//! lookup walks the tail's lists first (they are the newest records), then the index below it. A prefix
//! may match many values whose seqs interleave; see [`prefix_seqs`].

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

// ---- An event's index entries as its row's `lookup` list keeps them, its event id first:
// [attribute code: u8][length: u32 LE][UTF-8 value], ...

/// Every `audit_lookup` entry of an event: its event id, then its lookup list as given.
pub(crate) fn index_entries(event: &AuditAppend) -> impl Iterator<Item = (LookupAttribute, &str)> {
    std::iter::once((LookupAttribute::EventId, event.event_id.as_str()))
        .chain(event.lookup.iter().map(|(attr, value)| (*attr, value.as_str())))
}

#[cfg(test)]
pub(crate) fn encode_lookup<'a>(entries: impl Iterator<Item = (LookupAttribute, &'a str)>) -> StoreResult<Vec<u8>> {
    let mut out = Vec::new();
    encode_lookup_into(&mut out, entries)?;
    Ok(out)
}

fn encode_lookup_into<'a>(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = (LookupAttribute, &'a str)>,
) -> StoreResult<()> {
    for (attr, value) in entries {
        let len = u32::try_from(value.len())
            .map_err(|_| StoreError::InvalidWrite(format!("a {attr:?} lookup value of {} bytes", value.len())))?;
        // Codes are 1..=8 (`LookupAttribute`): a byte holds them.
        out.push(attr.code() as u8);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    Ok(())
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

    /// Chains `events` after the head, in order, inside the caller's transaction. One prepared
    /// statement and one lookup buffer serve the whole batch (a flush brings thousands of events).
    pub fn append_all(&mut self, conn: &Connection, events: &[AuditAppend]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO audit_events (seq, time_ms, max_time, event_id, prev_hash, lookup, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(map_sqlite)?;
        let mut entries = Vec::with_capacity(256);
        for event in events {
            let seq = self.seq + 1;
            let max_time = self.max_time.map_or(event.time_ms, |m| m.max(event.time_ms));
            // The index entries come later, folded in sorted batches (see [`fold`]); until then the
            // record's own list is what lookups read.
            entries.clear();
            encode_lookup_into(&mut entries, index_entries(event))?;
            let inserted = insert
                .execute(params![
                    to_sql_int(seq),
                    event.time_ms,
                    max_time,
                    event.event_id,
                    self.hash.as_slice(),
                    entries,
                    event.body
                ])
                .map_err(map_sqlite);
            match inserted {
                Ok(_) => {}
                Err(StoreError::AlreadyExists) => return Err(unavailable(CHAIN_MOVED)),
                Err(e) => return Err(e),
            }
            self.hash = record_hash(seq, &self.hash, event.time_ms, &event.event_id, &event.body);
            self.seq = seq;
            self.max_time = Some(max_time);
        }
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

/// The writer folds the tail into `audit_lookup` once it holds this many records. A fold writes one
/// row per distinct value among them (the event ids, and a row per resource name, user, event name...
/// that recur), so the larger the batch the fewer rows per event; the tail is what a lookup walks
/// through the lists, so this also bounds that walk.
pub(crate) const FOLD_AT: u64 = 16_384;

/// The newest seq whose index rows are in `audit_lookup`.
pub(crate) fn indexed_seq(conn: &Connection) -> StoreResult<i64> {
    one_int(conn, "SELECT indexed_seq FROM audit_head WHERE id = 0", [])?
        .ok_or_else(|| corrupt("the audit head row is missing"))
}

/// An index entry being folded: (attribute code, value, seq).
type Entry<'a> = (i64, &'a [u8], i64);

/// Folds up to [`FOLD_AT`] tail records' lookup lists into `audit_lookup`, one row per distinct
/// (attribute, value) holding the seqs that have it, and moves `indexed_seq`; runs inside the caller's
/// transaction. Returns how many records were folded.
pub(crate) fn fold(conn: &Connection) -> StoreResult<usize> {
    let from = indexed_seq(conn)?;
    let lists: Vec<(i64, Vec<u8>)> = {
        let mut stmt = conn
            .prepare_cached("SELECT seq, lookup FROM audit_events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(map_sqlite)?;
        let rows =
            stmt.query_map(params![from, to_sql_int(FOLD_AT)], |r| Ok((r.get(0)?, r.get(1)?))).map_err(map_sqlite)?;
        rows.collect::<Result<_, _>>().map_err(map_sqlite)?
    };
    let Some(&(last, _)) = lists.last() else { return Ok(0) };
    let mut entries: Vec<Entry<'_>> = Vec::with_capacity(lists.len() * 5);
    for (seq, list) in &lists {
        // Values are checked as UTF-8 once per index row, below.
        for (attr, value) in decode_lookup(list)? {
            entries.push((attr, value, *seq));
        }
    }
    // Sorted by key, each value's seqs come together and ascending; a value listed twice (or the event id
    // listed explicitly) is one seq.
    entries.sort_unstable();
    entries.dedup();
    let mut insert = conn
        .prepare_cached("INSERT INTO audit_lookup (attr, value, seq, seqs) VALUES (?1, ?2, ?3, ?4)")
        .map_err(map_sqlite)?;
    let event_ids = EVENT_ID.code();
    let (ids, others): (Vec<&Entry<'_>>, Vec<_>) = entries.iter().partition(|e| e.0 == event_ids);
    for group in others.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
        let (attr, value, first) = *group[0];
        let value = std::str::from_utf8(value).map_err(|_| corrupt(format!("audit lookup of {first}")))?;
        let seqs = encode_block(group.iter().map(|e| e.2));
        insert.execute(params![attr, value, first, seqs]).map_err(map_sqlite)?;
    }
    let ids: Vec<(&str, i64)> = ids
        .iter()
        .map(|&&(_, id, seq)| std::str::from_utf8(id).map(|id| (id, seq)))
        .collect::<Result<_, _>>()
        .map_err(|_| corrupt("an audit event id is not UTF-8"))?;
    for run in id_runs(&ids) {
        insert.execute(params![event_ids, run.first_id, run.seqs[0], encode_run(&run.seqs)]).map_err(map_sqlite)?;
    }
    conn.prepare_cached("UPDATE audit_head SET indexed_seq = ?1 WHERE id = 0")
        .and_then(|mut s| s.execute([last]))
        .map_err(map_sqlite)?;
    Ok(lists.len())
}

// ---- Event ids. Each event has its own id, so one row per id would cost a row per event. The ids the
// service assigns are a per-process stem and a counter (`<24-character stem><12 hex digits>`), so a
// fold's ids sort into long runs of consecutive counters: one row per run, keyed by its first id and
// first seq, its `seqs` the seqs of the following ids (commit order may differ slightly from counter
// order, so these are signed gaps). An id of any other shape is a run of one.

const EVENT_ID: LookupAttribute = LookupAttribute::EventId;

/// The stem and counter of an id of the service's shape (lowercase hex, so ids sort like counters).
fn id_counter(id: &str) -> Option<(&str, u64)> {
    if id.len() != 36 || !id.is_char_boundary(24) {
        return None;
    }
    let (stem, tail) = id.split_at(24);
    if !tail.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u64::from_str_radix(tail, 16).ok().map(|n| (stem, n))
}

/// The id `offset` places after `first` in its run (`first` has the service's shape).
fn id_after(first: &str, offset: u64) -> Option<String> {
    let (stem, counter) = id_counter(first)?;
    let n = counter.checked_add(offset).filter(|n| *n < 1 << 48)?;
    Some(format!("{stem}{n:012x}"))
}

/// Ids with consecutive counters and their seqs, in id order.
struct IdRun<'a> {
    first_id: &'a str,
    seqs: Vec<i64>,
}

/// Splits (id, seq) pairs sorted by id into runs of consecutive ids.
fn id_runs<'a>(ids: &[(&'a str, i64)]) -> Vec<IdRun<'a>> {
    let mut runs: Vec<IdRun<'a>> = Vec::new();
    let mut last: Option<(&str, u64)> = None;
    for &(id, seq) in ids {
        let here = id_counter(id);
        let continues =
            matches!((last, here), (Some((stem, n)), Some((s, m))) if s == stem && n.checked_add(1) == Some(m));
        match runs.last_mut() {
            Some(run) if continues => run.seqs.push(seq),
            _ => runs.push(IdRun { first_id: id, seqs: vec![seq] }),
        }
        last = here;
    }
    runs
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads the LEB128 varints of `blob`; `Corrupt` (naming `what`) if one is truncated or too long.
fn varints(blob: &[u8], what: impl Fn() -> String) -> StoreResult<Vec<u64>> {
    let mut out = Vec::new();
    let (mut v, mut shift) = (0u64, 0u32);
    for &byte in blob {
        if shift > 63 {
            return Err(corrupt(format!("{}: a varint too long", what())));
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            out.push(v);
            (v, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
    if shift != 0 {
        return Err(corrupt(format!("{}: truncated", what())));
    }
    Ok(out)
}

/// The `seqs` blob of a run: the signed gap from each seq to the next, zigzag-encoded.
fn encode_run(seqs: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    for pair in seqs.windows(2) {
        let gap = pair[1].wrapping_sub(pair[0]);
        push_varint(&mut out, ((gap << 1) ^ (gap >> 63)) as u64);
    }
    out
}

/// The seqs of a run row, in id order.
fn decode_run(first: i64, blob: &[u8]) -> StoreResult<Vec<i64>> {
    let mut out = vec![first];
    let mut cur = first;
    for z in varints(blob, || format!("audit event id run at {first}"))? {
        let gap = ((z >> 1) as i64) ^ -((z & 1) as i64);
        cur = cur.checked_add(gap).ok_or_else(|| corrupt(format!("audit event id run at {first}: seq overflow")))?;
        out.push(cur);
    }
    Ok(out)
}

/// The (id, seq) pairs with an id in `[from, to)` (`to` None: no upper bound): from every run starting
/// in the range and the one run before it, which may reach into it.
fn event_ids_in(conn: &Connection, from: &str, to: Option<&str>) -> StoreResult<Vec<(String, i64)>> {
    let read = |r: &Row<'_>| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?));
    let mut rows: Vec<IdRow> = Vec::new();
    let before: Option<IdRow> = conn
        .prepare_cached(
            "SELECT value, seq, seqs FROM audit_lookup WHERE attr = ?1 AND value < ?2 ORDER BY value DESC, seq DESC LIMIT 1",
        )
        .and_then(|mut s| s.query_row(params![EVENT_ID.code(), from], read).optional())
        .map_err(map_sqlite)?;
    rows.extend(before);
    let mut stmt = match to {
        Some(_) => conn
            .prepare_cached("SELECT value, seq, seqs FROM audit_lookup WHERE attr = ?1 AND value >= ?2 AND value < ?3"),
        None => conn.prepare_cached("SELECT value, seq, seqs FROM audit_lookup WHERE attr = ?1 AND value >= ?2"),
    }
    .map_err(map_sqlite)?;
    let found = match to {
        Some(to) => stmt.query_map(params![EVENT_ID.code(), from, to], read),
        None => stmt.query_map(params![EVENT_ID.code(), from], read),
    }
    .map_err(map_sqlite)?;
    for row in found {
        rows.push(row.map_err(map_sqlite)?);
    }
    let mut out = Vec::new();
    for row in &rows {
        out.extend(
            run_entries(row)?.into_iter().filter(|(id, _)| id.as_str() >= from && to.is_none_or(|to| id.as_str() < to)),
        );
    }
    Ok(out)
}

/// An index row of event ids: its first id, its first seq, its `seqs` blob.
type IdRow = (String, i64, Vec<u8>);

/// The run rows holding this id: those starting at it (one, unless ids were reused) and the one run
/// before it, if that run reaches it.
fn runs_holding(conn: &Connection, id: &str) -> StoreResult<Vec<IdRow>> {
    let read = |r: &Row<'_>| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?));
    let mut stmt = conn
        .prepare_cached(
            "SELECT value, seq, seqs FROM audit_lookup WHERE attr = ?1 AND value <= ?2 ORDER BY value DESC, seq DESC",
        )
        .map_err(map_sqlite)?;
    let mut out = Vec::new();
    for row in stmt.query_map(params![EVENT_ID.code(), id], read).map_err(map_sqlite)? {
        let row = row.map_err(map_sqlite)?;
        if row.0 == id {
            out.push(row);
            continue;
        }
        if let (Some((stem, start)), Some((want_stem, want))) = (id_counter(&row.0), id_counter(id)) {
            let run_len = varints(&row.2, || format!("audit event id run at {}", row.1))?.len() as u64 + 1;
            if stem == want_stem && want > start && want - start < run_len {
                out.push(row);
            }
        }
        break;
    }
    Ok(out)
}

/// The (id, seq) pairs of a run row.
fn run_entries(row: &IdRow) -> StoreResult<Vec<(String, i64)>> {
    let (first_id, first_seq, blob) = row;
    decode_run(*first_seq, blob)?
        .into_iter()
        .enumerate()
        .map(|(k, seq)| {
            let id = if k == 0 { Some(first_id.clone()) } else { id_after(first_id, k as u64) };
            id.map(|id| (id, seq))
                .ok_or_else(|| corrupt(format!("audit event id run at {first_seq} has an id of the wrong shape")))
        })
        .collect()
}

/// The seqs of the events with exactly this id (one, unless ids were reused).
fn event_id_seqs(conn: &Connection, id: &str) -> StoreResult<Vec<i64>> {
    let mut seqs = Vec::new();
    for row in runs_holding(conn, id)? {
        seqs.extend(run_entries(&row)?.into_iter().filter(|(i, _)| i == id).map(|(_, seq)| seq));
    }
    Ok(seqs)
}

// ---- An index row's seqs: the first is the row's key, the rest LEB128 varint gaps in `seqs`.

/// The `seqs` blob of an ascending, distinct run of seqs (its first is the row's key).
fn encode_block(seqs: impl Iterator<Item = i64>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev: Option<i64> = None;
    for seq in seqs {
        if let Some(p) = prev {
            // Ascending and distinct: every gap is at least 1.
            push_varint(&mut out, seq.saturating_sub(p).max(1).unsigned_abs());
        }
        prev = Some(seq);
    }
    out
}

/// The seqs of an index row, ascending; `Corrupt` if its blob is malformed.
fn decode_block(first: i64, blob: &[u8]) -> StoreResult<Vec<i64>> {
    let what = || format!("audit index row at {first}");
    let mut out = vec![first];
    let mut cur = first;
    for gap in varints(blob, what)? {
        let step =
            i64::try_from(gap).ok().filter(|g| *g > 0).ok_or_else(|| corrupt(format!("{}: a bad gap", what())))?;
        cur = cur.checked_add(step).ok_or_else(|| corrupt(format!("{}: seq overflow", what())))?;
        out.push(cur);
    }
    Ok(out)
}

/// Deletes up to `limit` of the oldest records below `before_seq` with their lookup entries (the index
/// rows holding them, found from each record's own list, are cut down to their later seqs), and the
/// digests below `keep_digests_from`. The head row is not touched. Returns the records deleted.
pub(crate) fn prune(conn: &Connection, before_seq: u64, keep_digests_from: u64, limit: usize) -> StoreResult<usize> {
    let doomed: Vec<(i64, Vec<u8>)> = {
        let mut stmt = conn
            .prepare_cached("SELECT seq, lookup FROM audit_events WHERE seq < ?1 ORDER BY seq LIMIT ?2")
            .map_err(map_sqlite)?;
        let rows = stmt
            .query_map(params![to_sql_int(before_seq), limit_to_sql(limit)], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(map_sqlite)?;
        rows.collect::<Result<_, _>>().map_err(map_sqlite)?
    };
    if let (Some((first, _)), Some((last, _))) = (doomed.first(), doomed.last()) {
        // The values the doomed records are indexed by; their rows may also hold later seqs.
        let mut values: BTreeSet<(i64, String)> = BTreeSet::new();
        for (seq, entries) in &doomed {
            for (attr, value) in decode_lookup(entries)? {
                let value = std::str::from_utf8(value).map_err(|_| corrupt(format!("audit lookup of {seq}")))?;
                values.insert((attr, value.to_string()));
            }
        }
        let (ids, values): (BTreeSet<_>, BTreeSet<_>) = values.into_iter().partition(|(a, _)| *a == EVENT_ID.code());
        prune_event_ids(conn, ids.into_iter().map(|(_, id)| id), *last)?;
        for (attr, value) in &values {
            // Stored as TEXT, so bound as TEXT: a BLOB would never equal it.
            let rows: Vec<(i64, Vec<u8>)> = {
                let mut stmt = conn
                    .prepare_cached("SELECT seq, seqs FROM audit_lookup WHERE attr = ?1 AND value = ?2 AND seq <= ?3")
                    .map_err(map_sqlite)?;
                let rows =
                    stmt.query_map(params![attr, value, last], |r| Ok((r.get(0)?, r.get(1)?))).map_err(map_sqlite)?;
                rows.collect::<Result<_, _>>().map_err(map_sqlite)?
            };
            for (row_first, blob) in rows {
                conn.prepare_cached("DELETE FROM audit_lookup WHERE attr = ?1 AND value = ?2 AND seq = ?3")
                    .and_then(|mut s| s.execute(params![attr, value, row_first]))
                    .map_err(map_sqlite)?;
                // Every seq below `first` is gone already (records are pruned oldest first).
                let kept: Vec<i64> = decode_block(row_first, &blob)?.into_iter().filter(|s| s > last).collect();
                if let Some(&kept_first) = kept.first() {
                    conn.prepare_cached("INSERT INTO audit_lookup (attr, value, seq, seqs) VALUES (?1, ?2, ?3, ?4)")
                        .and_then(|mut s| s.execute(params![attr, value, kept_first, encode_block(kept.into_iter())]))
                        .map_err(map_sqlite)?;
                }
            }
        }
        // The doomed records are exactly the seqs in [first, last]: the oldest ones, in order.
        conn.prepare_cached("DELETE FROM audit_events WHERE seq >= ?1 AND seq <= ?2")
            .and_then(|mut s| s.execute([first, last]))
            .map_err(map_sqlite)?;
    }
    conn.prepare_cached("DELETE FROM audit_digests WHERE number < ?1")
        .and_then(|mut s| s.execute([to_sql_int(keep_digests_from)]))
        .map_err(map_sqlite)?;
    Ok(doomed.len())
}

/// Removes the pruned ids (every seq up to `last`) from the runs holding them; what is left of a run
/// is written back as runs again.
fn prune_event_ids(conn: &Connection, ids: impl Iterator<Item = String>, last: i64) -> StoreResult<()> {
    let mut touched: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut rows: Vec<IdRow> = Vec::new();
    for id in ids {
        for row in runs_holding(conn, &id)? {
            if touched.insert((row.0.clone(), row.1)) {
                rows.push(row);
            }
        }
    }
    for row in &rows {
        conn.prepare_cached("DELETE FROM audit_lookup WHERE attr = ?1 AND value = ?2 AND seq = ?3")
            .and_then(|mut s| s.execute(params![EVENT_ID.code(), row.0, row.1]))
            .map_err(map_sqlite)?;
        let kept: Vec<(String, i64)> = run_entries(row)?.into_iter().filter(|(_, seq)| *seq > last).collect();
        let kept: Vec<(&str, i64)> = kept.iter().map(|(id, seq)| (id.as_str(), *seq)).collect();
        for run in id_runs(&kept) {
            conn.prepare_cached("INSERT INTO audit_lookup (attr, value, seq, seqs) VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut s| s.execute(params![EVENT_ID.code(), run.first_id, run.seqs[0], encode_run(&run.seqs)]))
                .map_err(map_sqlite)?;
        }
    }
    Ok(())
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
#[derive(Clone, Copy)]
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
        Some((attr, ValueMatch::Exact(value))) => {
            let mut out = Vec::new();
            for seq in value_seqs(conn, *attr, value, w, limit)? {
                out.extend(record_at(conn, seq)?);
            }
            Ok(out)
        }
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
                    .prepare_cached("SELECT lookup FROM audit_events WHERE seq = ?1")
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
        .prepare_cached("SELECT seq, lookup FROM audit_events WHERE seq >= ?1 AND seq < ?2 ORDER BY seq DESC")
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
        if in_time(conn, w, seq)? {
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
/// 3. If the walk did not fill the page, the matches are sparse: one range scan of the index rows of
///    every matching value below where the walk stopped, their seqs sorted and the newest kept.
fn prefix_seqs(
    conn: &Connection,
    attr: LookupAttribute,
    prefix: &str,
    w: &Window,
    limit: usize,
) -> StoreResult<Vec<i64>> {
    let upper = prefix_upper(prefix);
    if attr == EVENT_ID {
        let mut seqs: Vec<i64> =
            event_ids_in(conn, prefix, upper.as_deref())?.into_iter().map(|(_, seq)| seq).collect();
        return newest_in_window(conn, w, &mut seqs, limit);
    }
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
    let Some(hi) = walked_to else { return Ok(out) };
    // Sparse below the walk: every index row of every matching value that may hold a seq in [lo, hi),
    // newest seqs kept. No more rows than matching entries.
    let mut sql =
        String::from("SELECT seq, seqs FROM audit_lookup WHERE attr = :attr AND value >= :prefix AND seq < :hi");
    let mut args: Vec<(&str, &dyn ToSql)> = vec![(":attr", &code), (":prefix", &prefix), (":hi", &hi)];
    if let Some(u) = &upper {
        sql.push_str(" AND value < :upper");
        args.push((":upper", u));
    }
    let mut found: Vec<i64> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(&sql).map_err(map_sqlite)?;
        let mut rows = stmt.query(args.as_slice()).map_err(map_sqlite)?;
        while let Some(r) = rows.next().map_err(map_sqlite)? {
            let first: i64 = r.get(0).map_err(map_sqlite)?;
            let blob =
                r.get_ref(1).map_err(map_sqlite)?.as_blob().map_err(|e| corrupt(format!("audit index row: {e}")))?;
            found.extend(decode_block(first, blob)?);
        }
    }
    out.extend(newest_in_window(conn, &Window { hi, ..*w }, &mut found, limit - out.len())?);
    Ok(out)
}

/// The newest (at most `limit`) distinct seqs of `seqs` in the window's seq range and time bounds,
/// descending.
fn newest_in_window(conn: &Connection, w: &Window, seqs: &mut [i64], limit: usize) -> StoreResult<Vec<i64>> {
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    let mut out: Vec<i64> = Vec::new();
    for &seq in seqs.iter() {
        if out.len() == limit {
            break;
        }
        // Repeats are adjacent (an event matching two values comes twice).
        if seq < w.lo || seq >= w.hi || out.last() == Some(&seq) {
            continue;
        }
        if in_time(conn, w, seq)? {
            out.push(seq);
        }
    }
    Ok(out)
}

/// Whether record `seq` lies in the window's time bounds (no read when there are none).
fn in_time(conn: &Connection, w: &Window, seq: i64) -> StoreResult<bool> {
    Ok(!w.has_time_bounds()
        || one_int(conn, "SELECT time_ms FROM audit_events WHERE seq = ?1", [seq])?
            .is_some_and(|time| time >= w.t_min && time <= w.t_max))
}

/// The newest seqs (descending, at most `limit`) in the window with exactly this value: its index rows
/// newest first (a row's seqs are all above the next row's), from the first that may hold a seq below
/// `hi` down to the first that starts below `lo`.
fn value_seqs(
    conn: &Connection,
    attr: LookupAttribute,
    value: &str,
    w: &Window,
    limit: usize,
) -> StoreResult<Vec<i64>> {
    if attr == EVENT_ID {
        let mut seqs = event_id_seqs(conn, value)?;
        return newest_in_window(conn, w, &mut seqs, limit);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, seqs FROM audit_lookup WHERE attr = ?1 AND value = ?2 AND seq < ?3 ORDER BY seq DESC",
        )
        .map_err(map_sqlite)?;
    let mut rows = stmt.query(params![attr.code(), value, w.hi]).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_sqlite)? {
        let first: i64 = r.get(0).map_err(map_sqlite)?;
        let blob = r.get_ref(1).map_err(map_sqlite)?.as_blob().map_err(|e| corrupt(format!("audit index row: {e}")))?;
        for seq in decode_block(first, blob)?.into_iter().rev() {
            if seq >= w.hi {
                continue;
            }
            if seq < w.lo {
                return Ok(out);
            }
            if in_time(conn, w, seq)? {
                out.push(seq);
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
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
        .prepare_cached("SELECT seq, lookup FROM audit_events WHERE seq >= ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3")
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
        if in_time(conn, w, seq)? {
            out.push(seq);
            if out.len() == limit {
                return Ok((out, None));
            }
        }
    }
    // Fewer rows than the budget: the window is exhausted.
    Ok((out, (read == budget).then_some(last)))
}

/// Makes a log that never held a record or digest continue from `head` (see
/// [`Store::start_audit_log_at`](coffer_store::Store::start_audit_log_at)), in an IMMEDIATE transaction
/// of a connection of its own.
pub(crate) fn start_log_at(path: &std::path::Path, head: AuditHead, last_digest_number: u64) -> StoreResult<()> {
    let mut conn = Connection::open(path).map_err(map_sqlite)?;
    conn.busy_timeout(crate::schema::BUSY_TIMEOUT).map_err(map_sqlite)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(map_sqlite)?;
    let untouched: bool = tx
        .query_row(
            "SELECT seq = 0 AND digest_number = 0 AND NOT EXISTS (SELECT 1 FROM audit_events) \
             AND NOT EXISTS (SELECT 1 FROM audit_digests) FROM audit_head WHERE id = 0",
            [],
            |r| r.get(0),
        )
        .map_err(map_sqlite)?;
    if !untouched {
        return Err(StoreError::Conflict);
    }
    let seq = to_sql_int(head.seq);
    tx.execute(
        "UPDATE audit_head SET seq = ?1, hash = ?2, max_time = NULL, digest_number = ?3, indexed_seq = ?1 WHERE id = 0",
        params![seq, head.hash.as_slice(), to_sql_int(last_digest_number)],
    )
    .map_err(map_sqlite)?;
    tx.commit().map_err(map_sqlite)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_late_index_and_its_queries_agree() {
        let migration = include_str!("../migrations/0006_audit_blocks.sql");
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
    fn index_rows_round_trip_and_damage_is_corrupt() {
        for seqs in [vec![5], vec![1, 2, 3], vec![7, 200, 201, 70_000, 1 << 40, (1 << 40) + 1]] {
            let blob = encode_block(seqs.iter().copied());
            assert_eq!(decode_block(seqs[0], &blob).unwrap(), seqs);
        }
        assert_eq!(encode_block([1, 2, 3].into_iter()), vec![1, 1], "a gap of one is one byte");
        for damaged in [&[0x80u8][..], &[0x00], &[0xff; 10]] {
            assert!(matches!(decode_block(1, damaged), Err(StoreError::Corrupt(_))), "{damaged:?}");
        }
        assert!(matches!(decode_block(i64::MAX - 1, &[5]), Err(StoreError::Corrupt(_))), "overflow");
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
