//! The offline verifier behind `coffer audit verify`: given the public key, the stored digests and
//! the records in seq order, it recomputes the chain and reports whether anything was altered,
//! removed, inserted or reordered, and if so, the first place where it went wrong.
//!
//! Records are pushed one at a time (they come from the database in pages), in ascending seq; the
//! digests, a few per hour, are given up front because every record is checked against them as it
//! passes. The hot path hashes each record once and allocates nothing.
//!
//! How a problem is named, given the recomputed hash `h(i)` of each record and the predecessor hash
//! `prev(i)` each record stores:
//! - a digest: its signature, body, key fingerprint, `lastSeq` column and link to the previous
//!   digest are checked first; any failure is [`FaultKind::BadDigest`];
//! - the first record: seq 1 must store [`GENESIS`]; a later first seq means older records were
//!   pruned, and some digest must have signed `lastSeq = seq - 1` with `lastHash = prev(first)`
//!   ([`FaultKind::MissingAnchor`] when none did, [`FaultKind::Altered`] when one signed otherwise);
//! - seqs: a gap is [`FaultKind::Removed`] at the first missing seq (or [`FaultKind::Altered`] when
//!   the records on both sides of it still link, so only a seq was rewritten); a repeated seq is
//!   [`FaultKind::Inserted`]; a seq going backwards is [`FaultKind::Reordered`];
//! - a broken link (`prev(j) != h(j-1)`) is diagnosed with the two records before `j` and the one
//!   after it, trying in turn:
//!   1. `prev(j) == h(j-2)`: `j` skips `j-1`, so `j-1` was inserted ([`FaultKind::Inserted`] at j-1);
//!   2. the content at `j`, hashed as record `j-1`, gives `prev(j)`: the contents of `j-1` and `j`
//!      were exchanged ([`FaultKind::Reordered`] at j-1);
//!   3. the record after `j`, hashed at seq `j` on its own predecessor hash, gives `prev(j)`: whole
//!      rows `j` and `j+1` were exchanged ([`FaultKind::Reordered`] at j);
//!   4. `prev(j+1) == h(j-1)`: `j+1` skips `j`, so `j` was inserted ([`FaultKind::Inserted`] at j);
//!   5. `j`, hashed at seq `j+1`, gives `prev(j+1)`: `j` was written as `j+1`, so a record before it
//!      was removed and the rest renumbered ([`FaultKind::Removed`] at j);
//!   6. otherwise `j-1` does not match the hash its successor recorded ([`FaultKind::Altered`] at
//!      j-1), unless a digest signed `h(j-1)`: then `j-1` is genuine and `j` was altered.
//! - a digest whose `lastSeq` a record reaches: that record's hash must be the signed `lastHash`,
//!   else [`FaultKind::Altered`] naming the digest and that seq (the chain was rewritten somewhere
//!   after the previous signed point, consistently enough that the links alone cannot tell where);
//! - after the last record: a digest signing a later `lastSeq` means the tail was cut
//!   ([`FaultKind::Removed`] at the first missing seq).

use crate::chain::{record_hash, ChainHash, GENESIS};
use crate::digest::{decode_hash, digest_hash, AuditPublicKey, DigestBody, DIGEST_VERSION};

/// One stored record, borrowed from the caller's page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInput<'a> {
    pub seq: u64,
    pub event_id: &'a str,
    pub time_ms: i64,
    pub prev_hash: ChainHash,
    pub body: &'a [u8],
}

/// One stored digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestInput {
    pub number: u64,
    pub time_ms: i64,
    /// The store's column; must agree with the signed body.
    pub last_seq: u64,
    /// The exact signed bytes.
    pub body: Vec<u8>,
    pub signature: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// A record's content does not match the hash its successor or a digest recorded.
    Altered,
    /// Records are missing: a gap in the seqs, or the tail a digest covered.
    Removed,
    /// An extra record sits between two real ones, or a seq appears twice.
    Inserted,
    /// Records are in a different order than they were written.
    Reordered,
    /// A digest's signature, body or link to the previous digest is wrong.
    BadDigest,
    /// Records before the first one were removed and no digest vouches for where they ended.
    MissingAnchor,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Altered => "altered",
            FaultKind::Removed => "removed",
            FaultKind::Inserted => "inserted",
            FaultKind::Reordered => "reordered",
            FaultKind::BadDigest => "bad digest",
            FaultKind::MissingAnchor => "missing anchor",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The record the problem is at, when it is at one.
    pub seq: Option<u64>,
    /// The digest involved, by number.
    pub digest: Option<u64>,
    pub kind: FaultKind,
    /// One sentence for a person.
    pub detail: String,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(seq) = self.seq {
            write!(f, " at seq {seq}")?;
        }
        if let Some(digest) = self.digest {
            write!(f, " (digest {digest})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

impl Fault {
    fn at(kind: FaultKind, seq: u64, detail: String) -> Fault {
        Fault { seq: Some(seq), digest: None, kind, detail }
    }

    fn digest(number: u64, detail: String) -> Fault {
        Fault { seq: None, digest: Some(number), kind: FaultKind::BadDigest, detail }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records read.
    pub records_checked: u64,
    /// Digests whose signature, body and link verified.
    pub digests_checked: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The newest seq a valid digest signs.
    pub last_signed_seq: Option<u64>,
    /// Records after the newest digest: the chain protects them against changes but not against
    /// being cut off the end.
    pub unsigned_tail: u64,
    pub fault: Option<Fault>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.fault.is_none()
    }
}

/// Verifies the whole log in one call; see [`Verifier`] to stream records page by page.
pub fn verify<'a>(
    public_key: AuditPublicKey,
    digests: Vec<DigestInput>,
    records: impl IntoIterator<Item = RecordInput<'a>>,
) -> VerifyReport {
    let mut verifier = Verifier::new(public_key, digests);
    for record in records {
        verifier.push_record(record);
    }
    verifier.finish()
}

/// A point of the chain a valid digest signed.
#[derive(Clone, Copy, Debug)]
struct SignedPoint {
    number: u64,
    last_seq: u64,
    last_hash: ChainHash,
}

/// What the verifier remembers of a record it has passed.
#[derive(Clone, Copy, Debug)]
struct Link {
    seq: u64,
    prev_hash: ChainHash,
    /// Recomputed, not stored.
    hash: ChainHash,
}

#[derive(Debug)]
struct OwnedRecord {
    seq: u64,
    event_id: String,
    time_ms: i64,
    prev_hash: ChainHash,
    body: Vec<u8>,
}

impl OwnedRecord {
    fn of(r: &RecordInput<'_>) -> OwnedRecord {
        OwnedRecord {
            seq: r.seq,
            event_id: r.event_id.to_string(),
            time_ms: r.time_ms,
            prev_hash: r.prev_hash,
            body: r.body.to_vec(),
        }
    }

    /// The record's hash had it been written at `seq` after `prev_hash`.
    fn hash_as(&self, seq: u64, prev_hash: &ChainHash) -> ChainHash {
        record_hash(seq, prev_hash, self.time_ms, &self.event_id, &self.body)
    }
}

/// A broken link waiting for the record after it, which tells what happened.
#[derive(Debug)]
struct BrokenLink {
    before_previous: Option<Link>,
    previous: Link,
    previous_signed: bool,
    current: OwnedRecord,
    current_hash: ChainHash,
}

/// The streaming verifier: [`Verifier::new`] with every digest, [`Verifier::push_record`] for each
/// record in ascending seq, then [`Verifier::finish`].
#[derive(Debug)]
pub struct Verifier {
    /// Valid digests in number order (so in `lastSeq` order).
    signed: Vec<SignedPoint>,
    /// The first of `signed` no record has reached yet.
    next_signed: usize,
    fault: Option<Fault>,
    broken: Option<Box<BrokenLink>>,
    records_read: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    last: Option<Link>,
    before_last: Option<Link>,
    /// Whether a digest signed the hash of `last`.
    last_signed: bool,
    /// The newest seq whose hash a digest confirmed (or vouched for as the anchor).
    confirmed_seq: Option<u64>,
}

impl Verifier {
    /// Checks every digest now (signature, body, key, chain of digests); records are checked as
    /// they are pushed.
    pub fn new(public_key: AuditPublicKey, mut digests: Vec<DigestInput>) -> Verifier {
        digests.sort_by_key(|d| d.number);
        let fingerprint = public_key.fingerprint_hex();
        let mut signed = Vec::with_capacity(digests.len());
        let mut fault = None;
        let mut previous: Option<(&DigestInput, DigestBody)> = None;
        for digest in &digests {
            match check_digest(&public_key, &fingerprint, digest, previous.as_ref().map(|(d, b)| (*d, b))) {
                Ok((body, point)) => {
                    signed.push(point);
                    previous = Some((digest, body));
                }
                Err(f) => {
                    fault = Some(f);
                    break;
                }
            }
        }
        Verifier {
            signed,
            next_signed: 0,
            fault,
            broken: None,
            records_read: 0,
            first_seq: None,
            last_seq: None,
            last: None,
            before_last: None,
            last_signed: false,
            confirmed_seq: None,
        }
    }

    /// The first problem, once it is settled. A caller may stop reading records when this is
    /// `Some`; [`Verifier::finish`] still gives the report.
    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
    }

    /// The next record, in ascending seq.
    pub fn push_record(&mut self, record: RecordInput<'_>) {
        self.records_read += 1;
        self.first_seq.get_or_insert(record.seq);
        self.last_seq = Some(record.seq);
        if self.fault.is_some() {
            return;
        }
        if let Some(broken) = self.broken.take() {
            self.fault = Some(diagnose_broken_link(&broken, Some(&record)));
            return;
        }
        let hash = record_hash(record.seq, &record.prev_hash, record.time_ms, record.event_id, record.body);
        match self.last {
            None => {
                if let Err(fault) = self.check_start(&record) {
                    self.fault = Some(fault);
                    return;
                }
            }
            Some(last) => {
                if record.seq != last.seq.wrapping_add(1) {
                    self.fault = Some(seq_fault(&last, &record));
                    return;
                }
                if record.prev_hash != last.hash {
                    self.broken = Some(Box::new(BrokenLink {
                        before_previous: self.before_last,
                        previous: last,
                        previous_signed: self.last_signed,
                        current: OwnedRecord::of(&record),
                        current_hash: hash,
                    }));
                    return;
                }
            }
        }
        let mut signed_here = false;
        while let Some(point) = self.signed.get(self.next_signed) {
            if point.last_seq > record.seq {
                break;
            }
            // Digests below the first record's seq cover pruned records; only their signatures and
            // (for the anchor) `lastHash` can be checked.
            if point.last_seq == record.seq {
                if point.last_hash != hash {
                    self.fault = Some(self.digest_mismatch(point, record.seq));
                    return;
                }
                signed_here = true;
                self.confirmed_seq = Some(record.seq);
            }
            self.next_signed += 1;
        }
        self.before_last = self.last;
        self.last = Some(Link { seq: record.seq, prev_hash: record.prev_hash, hash });
        self.last_signed = signed_here;
    }

    /// The report; a link broken at the last record is diagnosed without a successor.
    pub fn finish(mut self) -> VerifyReport {
        if let Some(broken) = self.broken.take() {
            self.fault = Some(diagnose_broken_link(&broken, None));
        }
        if self.fault.is_none() {
            self.fault = self.tail_fault();
        }
        let last_signed_seq = self.signed.last().map(|p| p.last_seq);
        let unsigned_tail = match (self.first_seq, self.last_seq) {
            (Some(first), Some(last)) => {
                let covered_through = last_signed_seq.unwrap_or(0).max(first.saturating_sub(1));
                last.saturating_sub(covered_through)
            }
            _ => 0,
        };
        VerifyReport {
            records_checked: self.records_read,
            digests_checked: self.signed.len() as u64,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            last_signed_seq,
            unsigned_tail,
            fault: self.fault,
        }
    }

    fn check_start(&mut self, record: &RecordInput<'_>) -> Result<(), Fault> {
        match record.seq {
            0 => Err(Fault::at(FaultKind::Altered, 0, "seqs start at 1; a record has seq 0".into())),
            1 if record.prev_hash != GENESIS => Err(Fault::at(
                FaultKind::Altered,
                1,
                "record 1 does not start the chain: its predecessor hash is not the genesis value".into(),
            )),
            1 => Ok(()),
            seq => {
                let before = seq - 1;
                let anchors = self.signed.iter().filter(|p| p.last_seq == before);
                let mut mismatched = None;
                for anchor in anchors {
                    if anchor.last_hash == record.prev_hash {
                        self.confirmed_seq = Some(before);
                        return Ok(());
                    }
                    mismatched.get_or_insert(anchor.number);
                }
                Err(match mismatched {
                    Some(number) => Fault {
                        seq: Some(seq),
                        digest: Some(number),
                        kind: FaultKind::Altered,
                        detail: format!(
                            "record {seq} (the oldest kept) records a predecessor hash other than the one digest \
                             {number} signed for record {before}"
                        ),
                    },
                    None => Fault::at(
                        FaultKind::MissingAnchor,
                        seq,
                        format!(
                            "the oldest record is {seq} and no digest signs record {before}, so nothing shows \
                             where the removed records ended"
                        ),
                    ),
                })
            }
        }
    }

    fn digest_mismatch(&self, point: &SignedPoint, seq: u64) -> Fault {
        let from = self.confirmed_seq.map_or(self.first_seq.unwrap_or(seq), |c| c + 1);
        Fault {
            seq: Some(seq),
            digest: Some(point.number),
            kind: FaultKind::Altered,
            detail: format!(
                "record {seq} does not hash to what digest {} signed: the records link to each other, so at \
                 least one of records {from}..={seq} was altered and the chain after it recomputed",
                point.number
            ),
        }
    }

    /// A digest signing records beyond the last one read: they were cut off.
    fn tail_fault(&self) -> Option<Fault> {
        let newest = self.signed.last()?;
        match self.last {
            Some(last) if newest.last_seq > last.seq => Some(Fault {
                seq: Some(last.seq + 1),
                digest: Some(newest.number),
                kind: FaultKind::Removed,
                detail: format!(
                    "digest {} signs the chain up to record {}, but the records end at {}: records {}..={} \
                     were removed",
                    newest.number,
                    newest.last_seq,
                    last.seq,
                    last.seq + 1,
                    newest.last_seq
                ),
            }),
            None if newest.last_seq > 0 => Some(Fault {
                seq: None,
                digest: Some(newest.number),
                kind: FaultKind::Removed,
                detail: format!(
                    "there are no records, but digest {} signs the chain up to record {}",
                    newest.number, newest.last_seq
                ),
            }),
            _ => None,
        }
    }
}

/// A record whose seq does not follow its predecessor's.
fn seq_fault(last: &Link, record: &RecordInput<'_>) -> Fault {
    let seq = record.seq;
    if seq == last.seq {
        return Fault::at(FaultKind::Inserted, seq, format!("two records have seq {seq}"));
    }
    if seq < last.seq {
        return Fault::at(FaultKind::Reordered, seq, format!("record {seq} comes after record {}", last.seq));
    }
    let expected = last.seq + 1;
    if record.prev_hash == last.hash {
        Fault::at(
            FaultKind::Altered,
            seq,
            format!(
                "record {seq} links directly to record {}: its seq was changed (it was written as {expected})",
                last.seq
            ),
        )
    } else if seq - 1 == expected {
        Fault::at(FaultKind::Removed, expected, format!("record {expected} is missing"))
    } else {
        Fault::at(FaultKind::Removed, expected, format!("records {expected}..={} are missing", seq - 1))
    }
}

/// Names what happened at a broken link (see the module documentation for the order of the tests).
fn diagnose_broken_link(broken: &BrokenLink, next: Option<&RecordInput<'_>>) -> Fault {
    let previous = &broken.previous;
    let current = &broken.current;
    let (p, j) = (previous.seq, current.seq);

    if let Some(before) = &broken.before_previous {
        if before.hash == current.prev_hash {
            return Fault::at(
                FaultKind::Inserted,
                p,
                format!(
                    "record {j} records record {} as its predecessor: record {p} was inserted between them",
                    before.seq
                ),
            );
        }
    }
    if current.hash_as(p, &previous.prev_hash) == current.prev_hash {
        return Fault::at(
            FaultKind::Reordered,
            p,
            format!("the record stored at {j} hashes as record {p}: records {p} and {j} were exchanged"),
        );
    }
    if let Some(next) = next {
        let n = next.seq;
        if record_hash(j, &next.prev_hash, next.time_ms, next.event_id, next.body) == current.prev_hash {
            return Fault::at(
                FaultKind::Reordered,
                j,
                format!("the record stored at {n} belongs at {j}, before the one stored there: records {j} and {n} were exchanged"),
            );
        }
        if next.prev_hash == previous.hash {
            return Fault::at(
                FaultKind::Inserted,
                j,
                format!("record {n} records record {p} as its predecessor: record {j} was inserted between them"),
            );
        }
        if current.hash_as(j.wrapping_add(1), &current.prev_hash) == next.prev_hash {
            return Fault::at(
                FaultKind::Removed,
                j,
                format!("the record stored at {j} was written as record {}: a record was removed and the later ones renumbered", j.wrapping_add(1)),
            );
        }
    }
    if broken.previous_signed {
        return altered_current(p, j);
    }
    let detail = match next {
        Some(next) if next.prev_hash != broken.current_hash => format!(
            "record {p} does not hash to what record {j} recorded as its predecessor, nor record {j} to what \
             record {} recorded: record {p} was altered, and so was record {j} (or only record {j}'s predecessor \
             hash was changed)",
            next.seq
        ),
        _ => format!("record {p} does not hash to what record {j} recorded as its predecessor: record {p} was altered"),
    };
    Fault::at(FaultKind::Altered, p, detail)
}

/// A digest signed the predecessor, so it is genuine and the record after it is not.
fn altered_current(p: u64, j: u64) -> Fault {
    Fault::at(
        FaultKind::Altered,
        j,
        format!("record {j}'s predecessor hash does not match record {p}, whose hash a digest signed: record {j} was altered"),
    )
}

/// A digest's own checks, given the digest before it in number order.
fn check_digest(
    key: &AuditPublicKey,
    fingerprint: &str,
    digest: &DigestInput,
    previous: Option<(&DigestInput, &DigestBody)>,
) -> Result<(DigestBody, SignedPoint), Fault> {
    let number = digest.number;
    let bad = |detail: String| Fault::digest(number, detail);
    if let Some((previous, _)) = previous {
        if previous.number == number {
            return Err(bad(format!("two digests are numbered {number}")));
        }
    }
    if !key.verify(&digest.body, &digest.signature) {
        return Err(bad(format!("digest {number}'s signature does not verify with this public key")));
    }
    let body = DigestBody::from_json(&digest.body).map_err(|e| bad(format!("digest {number} does not parse: {e}")))?;
    if body.version != DIGEST_VERSION {
        return Err(bad(format!("digest {number} has version {}, not {DIGEST_VERSION}", body.version)));
    }
    if !body.public_key_fingerprint.eq_ignore_ascii_case(fingerprint) {
        return Err(bad(format!("digest {number} names the key {}, not this one", body.public_key_fingerprint)));
    }
    if body.last_seq != digest.last_seq {
        return Err(bad(format!(
            "digest {number} signs lastSeq {} but is stored with last_seq {}",
            body.last_seq, digest.last_seq
        )));
    }
    let last_hash = body.last_hash_bytes().ok_or_else(|| bad(format!("digest {number}'s lastHash is not a hash")))?;
    if body.last_seq == 0 && last_hash != GENESIS {
        return Err(bad(format!("digest {number} signs an empty chain with a hash other than the genesis value")));
    }
    if body.first_seq > body.last_seq.saturating_add(1) {
        return Err(bad(format!("digest {number} starts at {} after its end {}", body.first_seq, body.last_seq)));
    }
    if let Some((previous, previous_body)) = previous {
        if previous.number.checked_add(1) != Some(number) {
            return Err(bad(format!(
                "digests {}..={} are missing before digest {number}",
                previous.number + 1,
                number - 1
            )));
        }
        let linked = body
            .previous_digest_hash
            .as_deref()
            .and_then(decode_hash)
            .is_some_and(|h| h == digest_hash(&previous.body));
        if !linked {
            return Err(bad(format!("digest {number} does not link to digest {}", previous.number)));
        }
        if previous_body.last_seq.checked_add(1) != Some(body.first_seq) {
            return Err(bad(format!(
                "digest {number} starts at record {} but digest {} ended at {}",
                body.first_seq, previous.number, previous_body.last_seq
            )));
        }
    }
    let point = SignedPoint { number, last_seq: body.last_seq, last_hash };
    Ok((body, point))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::AuditSigningKey;
    use crate::event::{Event, EventResource, UserIdentity};

    #[derive(Clone, Debug)]
    struct Rec {
        seq: u64,
        event_id: String,
        time_ms: i64,
        prev_hash: ChainHash,
        body: Vec<u8>,
    }

    impl Rec {
        fn input(&self) -> RecordInput<'_> {
            RecordInput {
                seq: self.seq,
                event_id: &self.event_id,
                time_ms: self.time_ms,
                prev_hash: self.prev_hash,
                body: &self.body,
            }
        }

        fn hash(&self) -> ChainHash {
            record_hash(self.seq, &self.prev_hash, self.time_ms, &self.event_id, &self.body)
        }
    }

    const T0: i64 = 1_795_434_838_000;

    /// A realistic event body (about 700 bytes).
    fn body_of(i: u64) -> Vec<u8> {
        Event {
            user_identity: UserIdentity {
                identity_type: "IAMUser".into(),
                principal_id: Some("AIDAEXAMPLEPRINCIPAL".into()),
                arn: Some("arn:aws:iam::111122223333:user/alice".into()),
                account_id: Some("111122223333".into()),
                access_key_id: Some("AKIAEXAMPLEKEY000001".into()),
                user_name: Some("alice".into()),
                ..UserIdentity::default()
            },
            event_time: crate::event::iso8601_seconds(T0 + i as i64 * 1000),
            event_source: "secretsmanager.amazonaws.com".into(),
            event_name: "GetSecretValue".into(),
            aws_region: "us-east-1".into(),
            source_ip_address: Some("192.0.2.10".into()),
            user_agent: Some("aws-sdk-rust/1.0 os/linux lang/rust".into()),
            request_parameters: serde_json::json!({ "secretId": format!("prod/service-{i}/db") }),
            additional_event_data: Some(serde_json::json!({ "actorSource": "api" })),
            request_id: Some(format!("req-{i:08}")),
            event_id: event_id_of(i),
            read_only: true,
            resources: vec![EventResource {
                arn: format!("arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/service-{i}/db-AbCdEf"),
                account_id: Some("111122223333".into()),
                resource_type: "AWS::SecretsManager::Secret".into(),
            }],
            recipient_account_id: Some("111122223333".into()),
            ..Event::default()
        }
        .to_canonical_json()
    }

    fn event_id_of(i: u64) -> String {
        format!("00000000-0000-4000-8000-{i:012}")
    }

    /// Records 1..=n, correctly chained.
    fn chain(n: u64) -> Vec<Rec> {
        let mut records: Vec<Rec> = Vec::new();
        let mut prev = GENESIS;
        for seq in 1..=n {
            let rec = Rec {
                seq,
                event_id: event_id_of(seq),
                time_ms: T0 + seq as i64 * 1000,
                prev_hash: prev,
                body: body_of(seq),
            };
            prev = rec.hash();
            records.push(rec);
        }
        records
    }

    /// What an attacker without the signing key can do: recompute every predecessor hash from
    /// index `from` on so the links hold again.
    fn relink(records: &mut [Rec], from: usize) {
        for i in from.max(1)..records.len() {
            records[i].prev_hash = records[i - 1].hash();
        }
    }

    fn key() -> AuditSigningKey {
        AuditSigningKey::from_seed(&[42u8; 32])
    }

    fn sign(key: &AuditSigningKey, number: u64, body: &DigestBody) -> DigestInput {
        let bytes = body.to_canonical_json();
        DigestInput { number, time_ms: T0, last_seq: body.last_seq, signature: key.sign(&bytes), body: bytes }
    }

    /// Signed digests of the intact `records` at each of `points`, numbered from 1.
    fn digests_at(key: &AuditSigningKey, records: &[Rec], points: &[u64]) -> Vec<DigestInput> {
        let mut out: Vec<DigestInput> = Vec::new();
        for (i, &last_seq) in points.iter().enumerate() {
            let last_hash = match last_seq {
                0 => GENESIS,
                s => records[s as usize - 1].hash(),
            };
            let previous = out.last().map(|d| d.body.as_slice());
            let body = DigestBody::new(T0 + last_seq as i64 * 1000, previous, last_seq, &last_hash, &key.public_key())
                .unwrap();
            out.push(sign(key, i as u64 + 1, &body));
        }
        out
    }

    fn run(key: &AuditSigningKey, digests: Vec<DigestInput>, records: &[Rec]) -> VerifyReport {
        verify(key.public_key(), digests, records.iter().map(Rec::input))
    }

    fn fault_of(report: &VerifyReport) -> (FaultKind, Option<u64>, Option<u64>) {
        let fault = report.fault.as_ref().unwrap_or_else(|| panic!("no fault: {report:?}"));
        (fault.kind, fault.seq, fault.digest)
    }

    /// Twenty records, digests at 5 and 20.
    fn standard() -> (AuditSigningKey, Vec<Rec>, Vec<DigestInput>) {
        let key = key();
        let records = chain(20);
        let digests = digests_at(&key, &records, &[5, 20]);
        (key, records, digests)
    }

    #[test]
    fn an_intact_log_verifies() {
        let (key, records, digests) = standard();
        let report = run(&key, digests, &records);
        assert_eq!(
            report,
            VerifyReport {
                records_checked: 20,
                digests_checked: 2,
                first_seq: Some(1),
                last_seq: Some(20),
                last_signed_seq: Some(20),
                unsigned_tail: 0,
                fault: None,
            }
        );
        assert!(report.is_ok());
    }

    #[test]
    fn a_changed_byte_is_altered_at_its_record() {
        let (key, mut records, digests) = standard();
        records[6].body[10] ^= 1;
        assert_eq!(fault_of(&run(&key, digests, &records)), (FaultKind::Altered, Some(7), None));
    }

    #[test]
    fn a_changed_id_or_time_is_altered_too() {
        let (key, mut records, digests) = standard();
        records[6].time_ms += 1;
        assert_eq!(fault_of(&run(&key, digests.clone(), &records)), (FaultKind::Altered, Some(7), None));
        let (_, mut records, _) = standard();
        records[6].event_id.push('x');
        assert_eq!(fault_of(&run(&key, digests, &records)), (FaultKind::Altered, Some(7), None));
    }

    #[test]
    fn a_deleted_record_is_removed_at_its_seq() {
        let (key, mut records, digests) = standard();
        records.remove(6);
        assert_eq!(fault_of(&run(&key, digests.clone(), &records)), (FaultKind::Removed, Some(7), None));
        // Several in a row: the first missing one.
        let (_, mut records, _) = standard();
        records.drain(6..9);
        let report = run(&key, digests, &records);
        assert_eq!(fault_of(&report), (FaultKind::Removed, Some(7), None));
        assert!(report.fault.unwrap().detail.contains("7..=9"));
    }

    #[test]
    fn a_deleted_record_with_the_rest_renumbered_is_removed() {
        let (key, mut records, _) = standard();
        records.remove(6);
        for r in &mut records[6..] {
            r.seq -= 1;
        }
        assert_eq!(fault_of(&run(&key, Vec::new(), &records)), (FaultKind::Removed, Some(7), None));
    }

    /// Inserted: the record at 9 (the real 8) records the real 7 as its predecessor, so the record
    /// between them (the forgery at 8) is the extra one; "Altered" would name the right seq but not
    /// what happened.
    #[test]
    fn a_forged_record_with_the_rest_renumbered_is_inserted_at_its_seq() {
        let (key, records, digests) = standard();
        for forged_prev in [records[6].hash(), [0xAB; 32]] {
            let mut forged = records.clone();
            let fake =
                Rec { seq: 8, event_id: "forged".into(), time_ms: T0, prev_hash: forged_prev, body: b"{}".to_vec() };
            forged.insert(7, fake);
            for r in &mut forged[8..] {
                r.seq += 1;
            }
            assert_eq!(fault_of(&run(&key, digests.clone(), &forged)), (FaultKind::Inserted, Some(8), None));
        }
    }

    #[test]
    fn exchanged_contents_are_reordered() {
        let (key, mut records, digests) = standard();
        // Bodies, ids and times exchanged; seqs and predecessor hashes stay.
        let (a, b) = records.split_at_mut(7);
        std::mem::swap(&mut a[6].body, &mut b[0].body);
        std::mem::swap(&mut a[6].event_id, &mut b[0].event_id);
        std::mem::swap(&mut a[6].time_ms, &mut b[0].time_ms);
        assert_eq!(fault_of(&run(&key, digests, &records)), (FaultKind::Reordered, Some(7), None));
    }

    #[test]
    fn exchanged_rows_are_reordered() {
        let (key, mut records, digests) = standard();
        // Whole rows exchanged, predecessor hashes included; only the seqs stay in place.
        records.swap(6, 7);
        records[6].seq = 7;
        records[7].seq = 8;
        assert_eq!(fault_of(&run(&key, digests, &records)), (FaultKind::Reordered, Some(7), None));
    }

    #[test]
    fn a_consistently_rewritten_chain_is_caught_by_the_digest() {
        let (key, mut records, digests) = standard();
        records[9].body[20] ^= 1;
        relink(&mut records, 10);
        let report = run(&key, digests, &records);
        assert_eq!(fault_of(&report), (FaultKind::Altered, Some(20), Some(2)));
        // The detail narrows it to what follows the last signed point (record 5).
        assert!(report.fault.unwrap().detail.contains("6..=20"), "detail names the range");
    }

    #[test]
    fn a_changed_digest_signature_is_a_bad_digest() {
        let (key, records, mut digests) = standard();
        digests[1].signature[5] ^= 1;
        let report = run(&key, digests, &records);
        assert_eq!(fault_of(&report), (FaultKind::BadDigest, None, Some(2)));
        assert_eq!(report.digests_checked, 1);
    }

    #[test]
    fn pruned_records_need_an_anchor() {
        let (key, records, digests) = standard();
        let kept = &records[5..];
        let report = run(&key, digests, kept);
        assert!(report.is_ok(), "{report:?}");
        assert_eq!((report.first_seq, report.last_seq, report.records_checked), (Some(6), Some(20), 15));

        let only_the_newest = digests_at(&key, &records, &[20]);
        let report = run(&key, only_the_newest, kept);
        assert_eq!(fault_of(&report), (FaultKind::MissingAnchor, Some(6), None));

        // An anchor that signed something else: the oldest kept record's link was changed.
        let (_, mut records, digests) = standard();
        records[5].prev_hash[0] ^= 1;
        assert_eq!(fault_of(&run(&key, digests, &records[5..])), (FaultKind::Altered, Some(6), Some(1)));
    }

    #[test]
    fn a_cut_tail_that_a_digest_covered_is_removed() {
        let (key, records, digests) = standard();
        let report = run(&key, digests, &records[..17]);
        assert_eq!(fault_of(&report), (FaultKind::Removed, Some(18), Some(2)));
        assert!(report.fault.unwrap().detail.contains("18..=20"));
    }

    #[test]
    fn records_after_the_newest_digest_are_an_unsigned_tail() {
        let key = key();
        let records = chain(25);
        let report = run(&key, digests_at(&key, &records, &[5, 20]), &records);
        assert!(report.is_ok());
        assert_eq!((report.last_signed_seq, report.unsigned_tail), (Some(20), 5));
        // Cutting the unsigned tail cannot be seen: that is what `unsigned_tail` warns about.
        assert!(run(&key, digests_at(&key, &records, &[5, 20]), &records[..22]).is_ok());

        let report = run(&key, Vec::new(), &records);
        assert!(report.is_ok());
        assert_eq!((report.last_signed_seq, report.unsigned_tail), (None, 25));
        // Pruned to an anchor, then more records: only those after the newest digest count.
        let report = run(&key, digests_at(&key, &records, &[5]), &records[5..]);
        assert_eq!(report.unsigned_tail, 20);
    }

    #[test]
    fn a_changed_predecessor_hash_names_the_record_before_unless_a_digest_vouches_for_it() {
        let (key, mut records, digests) = standard();
        records[7].prev_hash[3] ^= 1;
        let report = run(&key, digests, &records);
        assert_eq!(fault_of(&report), (FaultKind::Altered, Some(7), None));
        assert!(report.fault.unwrap().detail.contains("predecessor hash was changed"));
        // With record 7 signed by a digest, record 8 is the altered one.
        let (_, mut records, _) = standard();
        let digests = digests_at(&key, &records, &[7, 20]);
        records[7].prev_hash[3] ^= 1;
        assert_eq!(fault_of(&run(&key, digests, &records)), (FaultKind::Altered, Some(8), None));
    }

    #[test]
    fn a_break_at_the_last_record_is_still_diagnosed() {
        let key = key();
        let mut records = chain(20);
        records[18].body[3] ^= 1;
        assert_eq!(fault_of(&run(&key, Vec::new(), &records)), (FaultKind::Altered, Some(19), None));
    }

    #[test]
    fn seq_anomalies() {
        let (key, records, digests) = standard();
        let mut twice = records.clone();
        twice.insert(7, records[6].clone());
        assert_eq!(fault_of(&run(&key, digests.clone(), &twice)), (FaultKind::Inserted, Some(7), None));

        let mut backwards = records[..8].to_vec();
        backwards.push(records[6].clone());
        assert_eq!(fault_of(&run(&key, digests.clone(), &backwards)), (FaultKind::Reordered, Some(7), None));

        // Only the seq of the last record was rewritten: it still links to record 19.
        let mut renumbered = records.clone();
        renumbered[19].seq = 25;
        assert_eq!(fault_of(&run(&key, digests, &renumbered)), (FaultKind::Altered, Some(25), None));

        let mut zero = chain(3);
        zero[0].seq = 0;
        assert_eq!(fault_of(&run(&key, Vec::new(), &zero)), (FaultKind::Altered, Some(0), None));
    }

    #[test]
    fn the_first_record_must_start_the_chain() {
        let key = key();
        let mut records = chain(5);
        records[0].prev_hash[0] = 1;
        assert_eq!(fault_of(&run(&key, Vec::new(), &records)), (FaultKind::Altered, Some(1), None));
    }

    #[test]
    fn digest_problems_are_bad_digests() {
        let (key, records, digests) = standard();
        let first = DigestBody::from_json(&digests[0].body).unwrap();
        let second = DigestBody::from_json(&digests[1].body).unwrap();

        // The column disagrees with the signed body.
        let mut d = digests.clone();
        d[1].last_seq = 19;
        assert_eq!(fault_of(&run(&key, d, &records)), (FaultKind::BadDigest, None, Some(2)));

        // Signed, but not a digest.
        let mut d = digests.clone();
        d[1].body = b"not json".to_vec();
        d[1].signature = key.sign(&d[1].body);
        assert_eq!(fault_of(&run(&key, d, &records)), (FaultKind::BadDigest, None, Some(2)));

        // Signed, but not linked to its predecessor.
        let unlinked = DigestBody { previous_digest_hash: Some(hex::encode([1u8; 32])), ..second.clone() };
        let d = vec![digests[0].clone(), sign(&key, 2, &unlinked)];
        assert_eq!(fault_of(&run(&key, d, &records)), (FaultKind::BadDigest, None, Some(2)));
        let unlinked = DigestBody { previous_digest_hash: None, ..second.clone() };
        let d = vec![digests[0].clone(), sign(&key, 2, &unlinked)];
        assert_eq!(fault_of(&run(&key, d, &records)), (FaultKind::BadDigest, None, Some(2)));

        // Not starting where the previous one ended.
        let skewed = DigestBody { first_seq: 4, ..second.clone() };
        let d = vec![digests[0].clone(), sign(&key, 2, &skewed)];
        assert_eq!(fault_of(&run(&key, d, &records)), (FaultKind::BadDigest, None, Some(2)));

        // Naming another key, or signed by another key.
        let other_fingerprint = DigestBody { public_key_fingerprint: hex::encode([0u8; 32]), ..first.clone() };
        assert_eq!(fault_of(&run(&key, vec![sign(&key, 1, &other_fingerprint)], &records)).0, FaultKind::BadDigest);
        let other = AuditSigningKey::from_seed(&[1u8; 32]);
        assert_eq!(fault_of(&run(&key, vec![sign(&other, 1, &first)], &records)).0, FaultKind::BadDigest);

        // A later version, an unreadable hash.
        let v2 = DigestBody { version: 2, ..first.clone() };
        assert_eq!(fault_of(&run(&key, vec![sign(&key, 1, &v2)], &records)).0, FaultKind::BadDigest);
        let no_hash = DigestBody { last_hash: "xyz".into(), ..first.clone() };
        assert_eq!(fault_of(&run(&key, vec![sign(&key, 1, &no_hash)], &records)).0, FaultKind::BadDigest);

        // Two with one number.
        let d = vec![digests[0].clone(), DigestInput { number: 1, ..digests[1].clone() }];
        assert_eq!(fault_of(&run(&key, d, &records)).0, FaultKind::BadDigest);
    }

    #[test]
    fn digests_may_be_pruned_from_the_front_but_not_the_middle() {
        let key = key();
        let records = chain(20);
        let digests = digests_at(&key, &records, &[5, 10, 20]);
        let report = run(&key, digests[1..].to_vec(), &records);
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.digests_checked, 2);
        let middle_gone = vec![digests[0].clone(), digests[2].clone()];
        assert_eq!(fault_of(&run(&key, middle_gone, &records)), (FaultKind::BadDigest, None, Some(3)));
        // Given out of order, digests are taken in number order.
        let mut shuffled = digests.clone();
        shuffled.reverse();
        assert!(run(&key, shuffled, &records).is_ok());
    }

    #[test]
    fn digests_of_an_empty_chain_and_repeated_points() {
        let key = key();
        let records = chain(10);
        // A digest before anything was written, two at the same point, one at the end.
        let digests = digests_at(&key, &records, &[0, 4, 4, 10]);
        let report = run(&key, digests.clone(), &records);
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.digests_checked, 4);
        // No records at all: fine while no digest signed any.
        assert!(run(&key, digests[..1].to_vec(), &[]).is_ok());
        let report = run(&key, digests, &[]);
        assert_eq!(fault_of(&report), (FaultKind::Removed, None, Some(4)));
        // Nothing at all is a (vacuously) intact log.
        assert_eq!(run(&key, Vec::new(), &[]), VerifyReport::default());
    }

    #[test]
    fn paging_gives_the_same_answer_and_the_fault_is_reported_early() {
        let (key, mut records, digests) = standard();
        records[11].body[0] ^= 1;
        let mut verifier = Verifier::new(key.public_key(), digests.clone());
        let mut stopped_after = None;
        for (page, chunk) in records.chunks(3).enumerate() {
            let owned: Vec<Rec> = chunk.to_vec();
            for r in &owned {
                verifier.push_record(r.input());
            }
            if verifier.fault().is_some() {
                stopped_after = Some(page);
                break;
            }
        }
        assert_eq!(stopped_after, Some(4));
        let paged = verifier.finish();
        let whole = run(&key, digests, &records);
        assert_eq!(paged.fault, whole.fault);
        assert_eq!(fault_of(&paged), (FaultKind::Altered, Some(12), None));
    }

    #[test]
    fn fault_display_names_everything() {
        let fault = Fault { seq: Some(7), digest: Some(2), kind: FaultKind::Altered, detail: "why".into() };
        assert_eq!(fault.to_string(), "altered at seq 7 (digest 2): why");
    }

    /// Not a benchmark: a long chain verifies in one streaming pass without trouble.
    #[test]
    fn a_hundred_thousand_records_verify() {
        const N: u64 = 100_000;
        let key = key();
        let template = body_of(0);
        let mut body = template.clone();
        let mut event_id = String::with_capacity(36);
        let fill = |seq: u64, body: &mut Vec<u8>, event_id: &mut String| {
            use std::fmt::Write as _;
            body.clear();
            body.extend_from_slice(&template);
            let stamp = seq.to_be_bytes();
            body[40..48].copy_from_slice(&stamp);
            event_id.clear();
            let _ = write!(event_id, "00000000-0000-4000-8000-{seq:012}");
        };
        // First pass: the hashes digests sign.
        let mut prev = GENESIS;
        let mut signed_points = Vec::new();
        for seq in 1..=N {
            fill(seq, &mut body, &mut event_id);
            prev = record_hash(seq, &prev, seq as i64, &event_id, &body);
            if seq % 25_000 == 0 {
                signed_points.push((seq, prev));
            }
        }
        let mut digests: Vec<DigestInput> = Vec::new();
        for (i, (seq, hash)) in signed_points.iter().enumerate() {
            let previous = digests.last().map(|d| d.body.as_slice());
            let body = DigestBody::new(T0, previous, *seq, hash, &key.public_key()).unwrap();
            digests.push(sign(&key, i as u64 + 1, &body));
        }
        // Second pass: stream the same records through the verifier.
        let mut verifier = Verifier::new(key.public_key(), digests);
        let mut prev = GENESIS;
        for seq in 1..=N {
            fill(seq, &mut body, &mut event_id);
            let input = RecordInput { seq, event_id: &event_id, time_ms: seq as i64, prev_hash: prev, body: &body };
            prev = record_hash(seq, &prev, seq as i64, &event_id, &body);
            verifier.push_record(input);
        }
        let report = verifier.finish();
        assert!(report.is_ok(), "{report:?}");
        assert_eq!((report.records_checked, report.digests_checked, report.last_signed_seq), (N, 4, Some(N)));
    }
}
