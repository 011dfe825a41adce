//! Authorization of KMS operations, and of the KMS use Secrets Manager and Parameter Store make on a
//! caller's behalf (`kms:Decrypt` to read, `kms:GenerateDataKey`/`kms:Encrypt` to write a value under a
//! customer key, with `kms:ViaService`). Key policies are stored but not enforced: identity-based
//! policies decide.

use std::collections::BTreeMap;

use coffer_store::KmsKeyRecord;

use super::{alias_arn, key_arn, parse_key_ref, KeyRef};
use crate::context::RequestContext;
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::iam::Access;
use coffer_policy::Policy;

use super::keys::LoadedKey;
use crate::Service;

/// Whether a request has to be evaluated at all. The server's own work is not authorized, and root is
/// allowed everything a resource policy does not deny: for those, callers skip building the condition
/// keys (the hot paths allocate nothing for them). Mirrors the early returns of
/// [`Service::authorize`].
pub(crate) fn must_authorize(ctx: &RequestContext, has_resource_policy: bool) -> bool {
    !ctx.source.is_internal() && (has_resource_policy || !ctx.principal.is_root())
}

/// `kms:EncryptionContext:<key>` for each pair of the request's encryption context, and
/// `kms:EncryptionContextKeys`.
pub(crate) fn with_encryption_context<'a>(mut access: Access<'a>, context: &BTreeMap<String, String>) -> Access<'a> {
    for (k, v) in context {
        access = access.key(&format!("kms:EncryptionContext:{k}"), v.clone());
    }
    access.keys("kms:EncryptionContextKeys", context.keys().cloned().collect())
}

/// The service names of `kms:ViaService`.
pub(crate) const VIA_SECRETS_MANAGER: &str = "secretsmanager";
pub(crate) const VIA_SSM: &str = "ssm";

impl Service {
    /// The ARN a key reference names, to authorize a request whose key does not exist: the ARN as the
    /// caller gave it, or the key's or alias's ARN in the request's region.
    pub(crate) fn named_key_arn(&self, region: &str, key_ref: &str) -> String {
        if key_ref.starts_with("arn:") {
            return key_ref.to_string();
        }
        match parse_key_ref(key_ref) {
            Ok(KeyRef::Alias(name)) => alias_arn(region, &self.config.account_id, &name),
            _ => key_arn(region, &self.config.account_id, key_ref),
        }
    }

    /// Authorizes `action` on a key with its tags and its key policy (`policy`, parsed: see
    /// [`key_policy`]), plus the request's condition keys from `extra`.
    pub(crate) async fn authorize_key(
        &self,
        ctx: &RequestContext,
        action: &str,
        key: &KmsKeyRecord,
        policy: Option<&Policy>,
        extra: impl FnOnce(Access<'_>) -> Access<'_>,
    ) -> ServiceResult<()> {
        if !must_authorize(ctx, policy.is_some()) {
            ctx.audit.resource(&key.arn);
            return Ok(());
        }
        self.authorize(ctx, &extra(Access::new(action, &key.arn).resource_tags(&key.tags).key_policy(policy))).await
    }

    /// A key the caller named was not found (`not_found`): the caller learns that only if allowed
    /// `action` on what it named; otherwise it gets AccessDenied.
    pub(crate) async fn key_not_found(
        &self,
        ctx: &RequestContext,
        action: &str,
        key_ref: &str,
        not_found: ServiceError,
    ) -> ServiceError {
        if !must_authorize(ctx, false) {
            return not_found;
        }
        let named = self.named_key_arn(&ctx.region, key_ref);
        match self.authorize(ctx, &Access::new(action, &named)).await {
            Ok(()) => not_found,
            Err(denied) => denied,
        }
    }

    /// Resolves a key reference and loads the key's record from the store, authorizing `action` on it
    /// (or, when it names nothing, on what it names before answering NotFound).
    pub(crate) async fn authorized_key_record(
        &self,
        ctx: &RequestContext,
        action: &str,
        key_ref: &str,
        extra: impl FnOnce(Access<'_>) -> Access<'_>,
    ) -> ServiceResult<KmsKeyRecord> {
        let key_id = match self.resolve_key_id(&ctx.region, key_ref).await {
            Ok(id) => id,
            Err(e) if e.kind == ErrorKind::KmsNotFound => {
                return Err(self.key_not_found(ctx, action, key_ref, e).await)
            }
            Err(e) => return Err(e),
        };
        match self.store.load_kms_key(&ctx.region, &key_id).await? {
            Some(state) => {
                self.authorize_key(ctx, action, &state.key, key_policy(&state.key)?.as_ref(), extra).await?;
                Ok(state.key)
            }
            None => {
                let missing = self.not_found_key(&ctx.region, &key_id);
                Err(self.key_not_found(ctx, action, key_ref, missing).await)
            }
        }
    }

    /// The KMS use another service makes for the caller under a customer key: `action` on the key with
    /// `kms:ViaService` = `<service>.<region>.amazonaws.com`. The AWS-managed default keys
    /// (`aws/secretsmanager`, `aws/ssm`) need no KMS permission, as in AWS.
    pub(crate) async fn authorize_key_via(
        &self,
        ctx: &RequestContext,
        action: &str,
        key: &LoadedKey,
        via_service: &str,
    ) -> ServiceResult<()> {
        let (record, policy) = (&key.record, key.policy.as_deref());
        if record.key_manager == "AWS" || !must_authorize(ctx, policy.is_some()) {
            return Ok(());
        }
        let via = format!("{via_service}.{}.amazonaws.com", record.region);
        let access = Access::new(action, &record.arn)
            .resource_tags(&record.tags)
            .key_policy(policy)
            .key("kms:ViaService", via)
            .key("kms:CallerAccount", ctx.principal.account_id.as_str());
        self.authorize(ctx, &access).await
    }

    /// `kms:Decrypt` (through `via_service`) on the customer keys of envelopes about to be opened; their
    /// keys (`key_ids`, from `envelope_key_ids`) must have been warmed.
    pub(crate) async fn authorize_envelope_keys(
        &self,
        ctx: &RequestContext,
        region: &str,
        key_ids: &[[u8; 16]],
        via_service: &str,
    ) -> ServiceResult<()> {
        // Root too: a key policy may shut it out.
        if key_ids.is_empty() || ctx.source.is_internal() {
            return Ok(());
        }
        for key_id in key_ids {
            match self.kms_keys.get(region, key_id) {
                Some(key) => self.authorize_key_via(ctx, "kms:Decrypt", &key, via_service).await?,
                None if !must_authorize(ctx, false) => {}
                // A key that is gone: opening reports it, once the caller may know.
                None => {
                    let arn = key_arn(region, &self.config.account_id, &uuid::Uuid::from_bytes(*key_id).to_string());
                    let via = format!("{via_service}.{region}.amazonaws.com");
                    self.authorize(ctx, &Access::new("kms:Decrypt", &arn).key("kms:ViaService", via)).await?;
                }
            }
        }
        Ok(())
    }
}

/// The key's policy, parsed, when it was given one (a loaded key keeps it parsed: see `LoadedKey`). A
/// key created without a policy has AWS's default, which delegates everything to the account's IAM
/// policies: the same as no key policy at all.
pub(crate) fn key_policy(key: &KmsKeyRecord) -> ServiceResult<Option<Policy>> {
    key.policy
        .as_deref()
        .map(|doc| {
            Policy::parse("key-policy", doc, coffer_policy::PolicyKind::Resource).map_err(|e| {
                tracing::error!(error = %e, key = %key.arn, "a stored key policy does not parse");
                ServiceError::internal("an internal error occurred")
            })
        })
        .transpose()
}
