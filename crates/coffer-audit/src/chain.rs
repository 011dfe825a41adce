//! The hash chain: every record carries the SHA-256 of its predecessor, so altering, removing,
//! inserting or reordering a record breaks the chain at that point.

use sha2::{Digest as _, Sha256};

/// A SHA-256 value in the chain.
pub type ChainHash = [u8; 32];

/// What the first record (seq 1) carries as its predecessor's hash.
pub const GENESIS: ChainHash = [0u8; 32];

/// Domain separation: a record hash can never be confused with any other SHA-256 Coffer computes.
const RECORD_TAG: &[u8] = b"coffer-audit-record-v1\0";

/// The hash of one record: everything the store keeps of it (its place in the chain, its
/// predecessor's hash, its time, its id and its canonical body), length-prefixed so no two
/// different records hash alike.
pub fn record_hash(seq: u64, prev_hash: &ChainHash, time_ms: i64, event_id: &str, body: &[u8]) -> ChainHash {
    let mut h = Sha256::new();
    h.update(RECORD_TAG);
    h.update(seq.to_be_bytes());
    h.update(prev_hash);
    h.update(time_ms.to_be_bytes());
    h.update((event_id.len() as u64).to_be_bytes());
    h.update(event_id.as_bytes());
    h.update((body.len() as u64).to_be_bytes());
    h.update(body);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_changes_the_hash() {
        let base = record_hash(7, &GENESIS, 1_000, "id", b"{}");
        assert_ne!(base, record_hash(8, &GENESIS, 1_000, "id", b"{}"));
        assert_ne!(base, record_hash(7, &[1u8; 32], 1_000, "id", b"{}"));
        assert_ne!(base, record_hash(7, &GENESIS, 1_001, "id", b"{}"));
        assert_ne!(base, record_hash(7, &GENESIS, 1_000, "ie", b"{}"));
        assert_ne!(base, record_hash(7, &GENESIS, 1_000, "id", b"{ }"));
        // Length prefixes: moving a byte from the id into the body is a different record.
        assert_ne!(record_hash(1, &GENESIS, 0, "ab", b"c"), record_hash(1, &GENESIS, 0, "a", b"bc"));
        assert_eq!(base, record_hash(7, &GENESIS, 1_000, "id", b"{}"));
    }
}
