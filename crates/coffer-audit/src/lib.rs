//! The audit trail's pure parts, with no I/O and no clock: the CloudTrail-shaped event, the hash
//! chain that links records, signed digests of the chain, the offline verifier, and export formats.
//! The service renders events and the store chains them; `coffer audit verify` needs only this crate,
//! a copy of the data and the public key.

pub mod chain;
pub mod digest;
pub mod event;
pub mod export;
pub mod params;
pub mod verify;

pub use chain::{record_hash, ChainHash, GENESIS};
pub use digest::{digest_hash, AuditPublicKey, AuditSigningKey, DigestBody};
pub use event::{
    friendly_resource_name, index_name, iso8601_seconds, Event, EventResource, SessionAttributes, SessionContext,
    SessionIssuer, UserIdentity,
};
pub use export::{csv_row, jsonl_line, CSV_HEADER};
pub use params::{keeps_request_key, request_parameters, response_elements};
pub use verify::{verify, DigestInput, Fault, FaultKind, RecordInput, Verifier, VerifyReport};

/// Why audit data could not be read. Messages name what is wrong, never a key's secret half.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit event does not parse: {0}")]
    Event(#[source] serde_json::Error),
    #[error("the audit digest is not valid: {0}")]
    Digest(String),
    #[error("the audit public key is not valid: {0}")]
    PublicKey(String),
}

/// What an event can be looked up by (CloudTrail's LookupAttributes). The numeric codes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LookupAttribute {
    EventId = 1,
    EventName = 2,
    EventSource = 3,
    ReadOnly = 4,
    Username = 5,
    AccessKeyId = 6,
    ResourceName = 7,
    ResourceType = 8,
}

impl LookupAttribute {
    pub const ALL: [LookupAttribute; 8] = [
        LookupAttribute::EventId,
        LookupAttribute::EventName,
        LookupAttribute::EventSource,
        LookupAttribute::ReadOnly,
        LookupAttribute::Username,
        LookupAttribute::AccessKeyId,
        LookupAttribute::ResourceName,
        LookupAttribute::ResourceType,
    ];

    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn from_code(code: i64) -> Option<Self> {
        LookupAttribute::ALL.into_iter().find(|a| a.code() == code)
    }
}
