//! Authorization of Secrets Manager operations: the caller's identity-based policies and the secret's
//! resource policy (parsed once, cached next to the record), evaluated on the secret's full ARN. A
//! secret that does not exist is authorized against the ARN the caller named, so that a caller without
//! permission learns nothing of what exists.

use std::sync::Arc;

use coffer_policy::Policy;
use coffer_store::{SecretRecord, SecretState};

use crate::arn::{parse_secret_arn, partition_for_region};
use crate::context::RequestContext;
use crate::error::{ErrorKind, ServiceResult};
use crate::iam::Access;
use crate::kms::{must_authorize, LoadedKey, VIA_SECRETS_MANAGER};
use crate::Service;

impl Service {
    /// A secret's resource policy, parsed (from the cache unless its text changed).
    pub(crate) fn secret_policy(&self, secret: &SecretRecord) -> Option<Arc<Policy>> {
        self.cache.resource_policy(&secret.arn, secret.resource_policy.as_deref())
    }

    /// The ARN a caller named for a secret that does not exist: the ARN as given, or
    /// `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-??????` (a policy naming the
    /// secret with a wildcard suffix matches it, one naming another secret's full ARN does not).
    fn named_secret_arn(&self, ctx: &RequestContext, secret_id: &str) -> String {
        if parse_secret_arn(secret_id).is_some() {
            return secret_id.to_string();
        }
        format!(
            "arn:{}:secretsmanager:{}:{}:secret:{secret_id}-??????",
            partition_for_region(&ctx.region),
            ctx.region,
            self.config.account_id
        )
    }

    /// Authorizes `action` on one secret with its resource policy and tags, and the request's
    /// condition keys (`secretsmanager:SecretId` and whatever `extra` adds).
    async fn authorize_secret(
        &self,
        ctx: &RequestContext,
        action: &str,
        secret_id: &str,
        secret: &SecretRecord,
        extra: impl FnOnce(Access<'_>) -> Access<'_>,
    ) -> ServiceResult<()> {
        let policy = self.secret_policy(secret);
        if !must_authorize(ctx, policy.is_some()) {
            ctx.audit.resource(&secret.arn);
            return Ok(());
        }
        let access = Access::new(action, &secret.arn)
            .resource_policy(policy.as_deref())
            .resource_tags(&secret.tags)
            .key("secretsmanager:SecretId", secret_id);
        self.authorize(ctx, &extra(access)).await
    }

    /// Finds the secret `secret_id` names (from the cache) and authorizes `action` on it. When it does
    /// not exist, the caller gets NotFound only if allowed `action` on what it named; AccessDenied
    /// otherwise.
    pub(crate) async fn authorized_secret(
        &self,
        ctx: &RequestContext,
        action: &str,
        secret_id: &str,
        extra: impl FnOnce(Access<'_>) -> Access<'_>,
    ) -> ServiceResult<Arc<SecretState>> {
        match self.resolve(ctx, secret_id, false).await {
            Ok(state) => {
                self.authorize_secret(ctx, action, secret_id, &state.secret, extra).await?;
                Ok(state)
            }
            Err(e) if e.kind == ErrorKind::NotFound => {
                let named = self.named_secret_arn(ctx, secret_id);
                ctx.audit.resource(&named);
                if must_authorize(ctx, false) {
                    let access = Access::new(action, &named).key("secretsmanager:SecretId", secret_id);
                    self.authorize(ctx, &extra(access)).await?;
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Authorizes an action on no particular secret (ListSecrets, GetRandomPassword, ...): resource `*`.
    pub(crate) async fn authorize_secrets_action(&self, ctx: &RequestContext, action: &str) -> ServiceResult<()> {
        if !must_authorize(ctx, false) {
            return Ok(());
        }
        self.authorize(ctx, &Access::new(action, "*")).await
    }

    /// Writing a value under a customer key needs `kms:GenerateDataKey` on it, through Secrets Manager.
    pub(crate) async fn authorize_sealing(&self, ctx: &RequestContext, key: &LoadedKey) -> ServiceResult<()> {
        self.authorize_key_via(ctx, "kms:GenerateDataKey", key, VIA_SECRETS_MANAGER).await
    }

    /// Reading a value sealed under a customer key needs `kms:Decrypt` on it, through Secrets Manager.
    pub(crate) async fn authorize_opening(
        &self,
        ctx: &RequestContext,
        region: &str,
        key_ids: &[[u8; 16]],
    ) -> ServiceResult<()> {
        self.authorize_envelope_keys(ctx, region, key_ids, VIA_SECRETS_MANAGER).await
    }
}
