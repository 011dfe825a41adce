//! The detailed status operators read (`CofferStatus.GetStatus`, `coffer status`): what this node
//! runs on and how it is doing. Authenticated and authorized like any API (`coffer:GetStatus`), unlike
//! `/healthz` and `/readyz`, which say only "alive" and "ready" to anyone. Counts and states only:
//! never a value, a key or a name.

use crate::scheduler::SchedulerStatus;
use crate::{Access, RequestContext, Service, ServiceResult};

/// One node's status.
#[derive(Clone, Debug)]
pub struct NodeStatus {
    /// Coffer's version.
    pub version: String,
    /// `sqlite` or `postgres`.
    pub storage_backend: String,
    /// Whether storage answered just now, and if not why.
    pub storage_reachable: bool,
    pub storage_error: Option<String>,
    /// The caller's region, which the counts are of.
    pub region: String,
    pub secrets: Option<u64>,
    pub secrets_pending_deletion: Option<u64>,
    pub secrets_with_rotation: Option<u64>,
    pub parameters: Option<u64>,
    pub kms_keys: Option<u64>,
    pub kms_keys_enabled: Option<u64>,
    pub kms_keys_pending_deletion: Option<u64>,
    /// The newest audit record's seq; why the audit log refuses events, if it does.
    pub audit_head_seq: Option<u64>,
    pub audit_failure: Option<String>,
    pub audit_pending_events: u64,
    pub scheduler: SchedulerStatus,
}

/// Parameters are counted a page at a time.
const PARAMETER_PAGE: usize = 1_000;

impl Service {
    /// This node's status, for the caller's region.
    pub async fn node_status(&self, ctx: &RequestContext) -> ServiceResult<NodeStatus> {
        self.authorize(ctx, &Access::new("coffer:GetStatus", "*")).await?;
        let mut status = NodeStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            storage_backend: self.store.backend_name().to_string(),
            storage_reachable: true,
            storage_error: None,
            region: ctx.region.clone(),
            secrets: None,
            secrets_pending_deletion: None,
            secrets_with_rotation: None,
            parameters: None,
            kms_keys: None,
            kms_keys_enabled: None,
            kms_keys_pending_deletion: None,
            audit_head_seq: None,
            audit_failure: self.audit_failure(),
            audit_pending_events: self.audit_pending() as u64,
            scheduler: self.scheduler_status(),
        };
        if let Err(e) = self.fill_counts(&mut status).await {
            status.storage_reachable = false;
            status.storage_error = Some(e.to_string());
        }
        Ok(status)
    }

    async fn fill_counts(&self, status: &mut NodeStatus) -> coffer_store::StoreResult<()> {
        let count = |n: usize| Some(n as u64);
        let secrets = self.store.list_secrets(&status.region).await?;
        status.secrets = count(secrets.len());
        status.secrets_pending_deletion = count(secrets.iter().filter(|s| s.deletion_date.is_some()).count());
        status.secrets_with_rotation = count(secrets.iter().filter(|s| s.rotation.enabled).count());
        let keys = self.store.list_kms_keys(&status.region).await?;
        status.kms_keys = count(keys.len());
        status.kms_keys_enabled = count(keys.iter().filter(|k| k.key_state == "Enabled").count());
        status.kms_keys_pending_deletion = count(keys.iter().filter(|k| k.key_state == "PendingDeletion").count());
        let mut parameters = 0usize;
        let mut after = None;
        loop {
            let page = self
                .store
                .list_parameter_names(coffer_store::ParameterQuery {
                    region: status.region.clone(),
                    path: "/".into(),
                    recursive: true,
                    after: after.take(),
                    limit: PARAMETER_PAGE,
                    latest_only: true,
                })
                .await?;
            parameters += page.len();
            if page.len() < PARAMETER_PAGE {
                break;
            }
            after = page.last().cloned();
        }
        status.parameters = count(parameters);
        status.audit_head_seq = Some(self.store.audit_head().await?.seq);
        Ok(())
    }
}
