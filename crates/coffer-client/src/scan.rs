//! `CofferScan.GetKnownFingerprints`: keyed fingerprints of the stored values the caller may read.

use coffer_wire::scan::{GetKnownFingerprintsRequest, GetKnownFingerprintsResponse, SERVICE, TARGET_PREFIX};

use crate::{Client, ClientError};

impl Client {
    /// The fingerprints of every secret version (AWSCURRENT, AWSPREVIOUS) and parameter value the caller
    /// may read, under a key derived from `request.salt`.
    pub async fn get_known_fingerprints(
        &self,
        request: &GetKnownFingerprintsRequest,
    ) -> Result<GetKnownFingerprintsResponse, ClientError> {
        self.call(SERVICE, &format!("{TARGET_PREFIX}.GetKnownFingerprints"), request).await
    }
}
