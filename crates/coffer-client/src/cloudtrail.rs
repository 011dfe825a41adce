//! The audit log over CloudTrail's JSON 1.1 protocol (signing name `cloudtrail`): `LookupEvents`, and
//! Coffer's `CofferAudit.<Op>` targets — `SearchEvents` (wildcards in the attribute value), `ReadEvents`
//! (records in chain order, for export and tail) and `SeqAt` (where a time falls in the chain).

use coffer_wire::cloudtrail::{
    LookupEventsRequest, LookupEventsResponse, ReadEventsRequest, ReadEventsResponse, SeqAtRequest, SeqAtResponse,
    COFFER_TARGET_PREFIX, SERVICE, TARGET_PREFIX,
};

use crate::{Client, ClientError};

/// `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<op>`.
pub fn target(op: &str) -> String {
    format!("{TARGET_PREFIX}.{op}")
}

/// `CofferAudit.<op>`.
pub fn coffer_target(op: &str) -> String {
    format!("{COFFER_TARGET_PREFIX}.{op}")
}

impl Client {
    /// One page of CloudTrail's `LookupEvents` (newest first).
    pub async fn lookup_events(&self, request: &LookupEventsRequest) -> Result<LookupEventsResponse, ClientError> {
        self.call(SERVICE, &target("LookupEvents"), request).await
    }

    /// One page of `CofferAudit.SearchEvents`: as `lookup_events`, with `*` and `?` in the attribute value
    /// matching any run of characters and any one character.
    pub async fn search_events(&self, request: &LookupEventsRequest) -> Result<LookupEventsResponse, ClientError> {
        self.call(SERVICE, &coffer_target("SearchEvents"), request).await
    }

    /// Up to `limit` records (1..1000) with `seq >= from_seq`, in chain order, with the head's seq.
    pub async fn read_events(&self, from_seq: u64, limit: Option<i64>) -> Result<ReadEventsResponse, ClientError> {
        self.call(SERVICE, &coffer_target("ReadEvents"), &ReadEventsRequest { from_seq: Some(from_seq), limit }).await
    }

    /// The first seq at or after `time_ms`, or one past the head when no record is that recent.
    pub async fn audit_seq_at(&self, time_ms: i64) -> Result<u64, ClientError> {
        let request = SeqAtRequest { time: coffer_wire::epoch_seconds(time_ms) };
        let response: SeqAtResponse = self.call(SERVICE, &coffer_target("SeqAt"), &request).await?;
        Ok(response.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_spelled_as_the_model_and_coffer_name_them() {
        assert_eq!(target("LookupEvents"), "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents");
        assert_eq!(coffer_target("ReadEvents"), "CofferAudit.ReadEvents");
    }
}
