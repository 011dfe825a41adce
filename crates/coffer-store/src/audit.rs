//! The audit log's records as storage knows them. The service renders each event (its canonical
//! CloudTrail JSON and the values it is looked up by); the store numbers it, links it to its
//! predecessor with [`coffer_audit::chain::record_hash`] in commit order, and keeps it with its
//! lookup entries. A change's event is appended in the same transaction as the change.

use crate::EpochMillis;
pub use coffer_audit::chain::{ChainHash, GENESIS};
pub use coffer_audit::LookupAttribute;

/// One event to append, rendered by the service. The store assigns its `seq` and predecessor hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditAppend {
    /// A UUID, unique across nodes.
    pub event_id: String,
    pub time_ms: EpochMillis,
    /// The canonical event (CloudTrail JSON). Opaque to the store; never holds a secret value.
    pub body: Vec<u8>,
    /// What the event can be found by; one entry per (attribute, value), e.g. several ResourceNames.
    /// `EventId` need not be listed: the store indexes `event_id` itself.
    pub lookup: Vec<(LookupAttribute, String)>,
}

/// Events to append in one transaction. Shared, so a caller can keep the batch for a retry without
/// copying it while the store writes it.
pub type AuditBatch = std::sync::Arc<Vec<AuditAppend>>;

/// One stored, chained event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// 1, 2, 3, … in commit order, without gaps.
    pub seq: u64,
    pub event_id: String,
    pub time_ms: EpochMillis,
    /// The hash of record `seq - 1` ([`GENESIS`] for seq 1).
    pub prev_hash: ChainHash,
    pub body: Vec<u8>,
}

/// The newest record of the chain: seq 0 and [`GENESIS`] when nothing was ever appended. After a prune
/// the head is unchanged (pruning removes the oldest records only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: ChainHash,
}

/// How a looked-up value is matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueMatch {
    Exact(String),
    /// Every value starting with this (an index range scan); the service filters wildcards further.
    Prefix(String),
}

/// A page of events, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    pub lookup: Option<(LookupAttribute, ValueMatch)>,
    /// Inclusive bounds on `time_ms`.
    pub start_ms: Option<EpochMillis>,
    pub end_ms: Option<EpochMillis>,
    /// Only records with `seq` below this (the cursor of the previous page).
    pub before_seq: Option<u64>,
    pub limit: usize,
}

/// A signed statement of the chain's state (the service renders and signs it; the store keeps it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditDigestRecord {
    /// 1, 2, 3, … assigned by the store in append order.
    pub number: u64,
    pub time_ms: EpochMillis,
    /// The last record the digest covers (its hash is inside `body`).
    pub last_seq: u64,
    /// The canonical digest (JSON), exactly the signed bytes.
    pub body: Vec<u8>,
    /// Ed25519 over `body`.
    pub signature: Vec<u8>,
}

/// A digest to append; the store assigns its number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditDigestAppend {
    pub time_ms: EpochMillis,
    pub last_seq: u64,
    pub body: Vec<u8>,
    pub signature: Vec<u8>,
}
