//! Identities and their policies: IAM users (with access keys), groups, roles, managed and inline
//! policies, virtual MFA devices; STS sessions; and the authorization of every request.
//!
//! - `model.rs`: the stored documents, ARNs, unique ids and naming rules;
//! - `snapshot.rs`: the node's compiled copy of IAM (policies parsed once, effective sets resolved);
//! - `authz.rs`: [`Service::authorize`], called by every operation with its action and resource;
//! - `ops.rs`: the IAM API (create, attach, delete, …) as compare-and-swap writes;
//! - `sts.rs`: AssumeRole and GetSessionToken (stateless sealed session tokens), TOTP MFA;
//! - `simulate.rs`: SimulatePrincipalPolicy / SimulateCustomPolicy.

pub mod authz;
pub mod model;
pub mod ops;
pub mod simulate;
pub mod snapshot;
pub mod sts;

pub use authz::Access;

use crate::error::ServiceResult;
use crate::Service;

impl Service {
    /// Rebuilds this node's copy of IAM from the store now. Writes through the service do this
    /// themselves; call it after changing IAM records behind the service's back (tests, tools).
    pub async fn refresh_iam(&self) -> ServiceResult<()> {
        self.iam.reload(self.store.as_ref(), &self.config.account_id).await.map(drop)
    }
}
