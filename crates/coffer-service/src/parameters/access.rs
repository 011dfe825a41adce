//! Authorization of Parameter Store operations: `ssm:<Operation>` on the parameter's ARN
//! (`arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash>`) with its tags, and the
//! KMS use of SecureStrings under customer keys (`kms:Decrypt` to read with decryption, `kms:Encrypt`
//! or `kms:GenerateDataKey` to write, through `ssm.<region>.amazonaws.com`).

use coffer_store::ParameterState;

use super::names::parameter_arn;
use crate::context::RequestContext;
use crate::error::ServiceResult;
use crate::iam::Access;
use crate::kms::{must_authorize, LoadedKey, VIA_SSM};
use crate::Service;

impl Service {
    /// Authorizes `action` on the parameter `name` — with its tags when it exists (`p`); a parameter
    /// that does not exist is authorized by the name the caller gave, before the caller may learn so.
    pub(crate) async fn authorize_parameter(
        &self,
        ctx: &RequestContext,
        action: &str,
        name: &str,
        p: Option<&ParameterState>,
        extra: impl FnOnce(Access<'_>) -> Access<'_>,
    ) -> ServiceResult<()> {
        let arn = parameter_arn(&ctx.region, &self.config.account_id, name);
        if !must_authorize(ctx, false) {
            ctx.audit.resource(&arn);
            return Ok(());
        }
        let tags = p.map(|p| p.tags.as_slice()).unwrap_or_default();
        self.authorize(ctx, &extra(Access::new(action, &arn).resource_tags(tags))).await
    }

    /// Authorizes an action on no particular parameter (DescribeParameters): resource `*`.
    pub(crate) async fn authorize_parameters_action(&self, ctx: &RequestContext, action: &str) -> ServiceResult<()> {
        if !must_authorize(ctx, false) {
            return Ok(());
        }
        self.authorize(ctx, &Access::new(action, "*")).await
    }

    /// Reading SecureStrings with decryption under customer keys (`key_ids`, warmed) needs `kms:Decrypt`
    /// on each; the default `alias/aws/ssm` key needs nothing more.
    pub(crate) async fn authorize_parameter_opening(
        &self,
        ctx: &RequestContext,
        key_ids: &[[u8; 16]],
    ) -> ServiceResult<()> {
        self.authorize_envelope_keys(ctx, &ctx.region, key_ids, VIA_SSM).await
    }

    /// Writing a SecureString under a customer key: `kms:Encrypt` for the standard tier,
    /// `kms:GenerateDataKey` for the advanced one (envelope-encrypted in AWS).
    pub(crate) async fn authorize_parameter_sealing(
        &self,
        ctx: &RequestContext,
        key: &LoadedKey,
        tier: &str,
    ) -> ServiceResult<()> {
        let action = if tier == "Advanced" { "kms:GenerateDataKey" } else { "kms:Encrypt" };
        self.authorize_key_via(ctx, action, key, VIA_SSM).await
    }
}
