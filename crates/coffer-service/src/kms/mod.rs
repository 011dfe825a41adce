//! KMS keys: customer keys and the AWS-managed-style default keys, their aliases, state, rotation and
//! deletion, the cryptographic API (Encrypt, Decrypt, GenerateDataKey, ReEncrypt), and the envelope
//! helpers secrets and parameters seal their values with.
//!
//! Key material never leaves this module in the clear: it is stored sealed under the master key and
//! unsealed into [`coffer_crypto::Kek`]s held by the [`keys::KeyCache`].

mod access;
pub mod keys;
mod rewrap;

use std::collections::BTreeMap;
use std::sync::Arc;

use coffer_crypto::{envelope_kek, kms_ciphertext_key, EnvelopeKek, Kek, SecretBytes};
use coffer_store::{
    AliasRecord, AliasWrite, EpochMillis, KeyMaterialRecord, KmsKeyRecord, KmsKeyState, KmsKeyWrite, StoreError, Tag,
};

pub(crate) use access::{must_authorize, VIA_SECRETS_MANAGER, VIA_SSM};
pub use keys::{LoadedKey, STATE_DISABLED, STATE_ENABLED, STATE_PENDING_DELETION};
pub use rewrap::{Dependents, RewrapReport};

use crate::arn::partition_for_region;
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::iam::Access;
use crate::{RequestContext, Service};
use access::with_encryption_context;

/// The default key of Secrets Manager (used when a secret names no KmsKeyId).
pub const SECRETS_MANAGER_DEFAULT_ALIAS: &str = "alias/aws/secretsmanager";
/// The default key of Parameter Store SecureStrings.
pub const SSM_DEFAULT_ALIAS: &str = "alias/aws/ssm";
/// The audit log's name for KMS.
pub const KMS_EVENT_SOURCE: &str = "kms.amazonaws.com";
const MANAGED_ALIASES: [&str; 2] = [SECRETS_MANAGER_DEFAULT_ALIAS, SSM_DEFAULT_ALIAS];
const DAY_MILLIS: i64 = 86_400_000;
const MAX_ATTEMPTS: usize = 16;
/// Plaintext limit of Encrypt (and of data keys), as in AWS.
pub const MAX_PLAINTEXT: usize = 4096;

/// What CreateKey accepts.
#[derive(Debug, Default, Clone)]
pub struct CreateKeyInput {
    pub description: Option<String>,
    pub key_usage: Option<String>,
    pub key_spec: Option<String>,
    pub origin: Option<String>,
    pub policy: Option<String>,
    pub tags: Vec<Tag>,
}

/// What ScheduleKeyDeletion answers.
#[derive(Debug, Clone)]
pub struct ScheduledDeletion {
    pub key_arn: String,
    pub deletion_date: EpochMillis,
    pub pending_window_days: i64,
    pub key_state: String,
}

/// What GetKeyRotationStatus answers.
#[derive(Debug, Clone)]
pub struct RotationStatus {
    pub key_arn: String,
    pub enabled: bool,
    pub period_days: Option<i64>,
    pub next_rotation: Option<EpochMillis>,
}

/// The result of a decryption: which key, and the plaintext (zeroized on drop, redacted in Debug).
#[derive(Debug)]
pub struct Decrypted {
    pub key_arn: String,
    pub plaintext: SecretBytes,
}

/// A data key: its plaintext (absent for GenerateDataKeyWithoutPlaintext) and its KMS ciphertext.
#[derive(Debug)]
pub struct DataKey {
    pub key_arn: String,
    pub plaintext: Option<SecretBytes>,
    pub ciphertext: Vec<u8>,
}

/// The encryption context as authenticated data: sorted pairs, each part length-prefixed, so no two
/// different contexts serialize alike.
pub fn canonical_context(context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in context {
        for part in [k, v] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    out
}

fn key_arn(region: &str, account: &str, key_id: &str) -> String {
    format!("arn:{}:kms:{region}:{account}:key/{key_id}", partition_for_region(region))
}

/// The distinct KMS keys these envelopes name (legacy master-key envelopes name none). Synchronous, so
/// callers hand an owned list to [`Service::warm_keys`] and no borrowed iterator lives across an await.
pub(crate) fn envelope_key_ids<'a>(envelopes: impl IntoIterator<Item = &'a [u8]>) -> Vec<[u8; 16]> {
    let mut ids: Vec<[u8; 16]> = Vec::new();
    for blob in envelopes {
        if let Ok(EnvelopeKek::KmsKey { key_id, .. }) = envelope_kek(blob) {
            if !ids.contains(&key_id) {
                ids.push(key_id);
            }
        }
    }
    ids
}

/// `alias/...` ARN for an alias name.
pub fn alias_arn(region: &str, account: &str, alias_name: &str) -> String {
    format!("arn:{}:kms:{region}:{account}:{alias_name}", partition_for_region(region))
}

/// How a request names a key.
enum KeyRef {
    Id(String),
    Alias(String),
}

fn parse_key_ref(key_ref: &str) -> ServiceResult<KeyRef> {
    if key_ref.is_empty() || key_ref.len() > 2048 {
        return Err(ServiceError::validation("KeyId must be between 1 and 2048 characters long."));
    }
    if let Some(rest) = key_ref.strip_prefix("arn:") {
        // arn:<partition>:kms:<region>:<account>:key/<id> | ...:alias/<name>
        let resource = rest.splitn(5, ':').nth(4).unwrap_or_default();
        if !rest.contains(":kms:") {
            return Err(ServiceError::new(ErrorKind::KmsNotFound, format!("Invalid arn {key_ref}")));
        }
        if let Some(id) = resource.strip_prefix("key/") {
            return Ok(KeyRef::Id(id.to_string()));
        }
        if resource.starts_with("alias/") {
            return Ok(KeyRef::Alias(resource.to_string()));
        }
        return Err(ServiceError::new(ErrorKind::KmsNotFound, format!("Invalid arn {key_ref}")));
    }
    if key_ref.starts_with("alias/") {
        return Ok(KeyRef::Alias(key_ref.to_string()));
    }
    Ok(KeyRef::Id(key_ref.to_string()))
}

/// Alias names as AWS allows them: `alias/` then 1..250 of `[a-zA-Z0-9/_-]`, not `alias/aws/`.
fn validate_alias_name(name: &str) -> ServiceResult<()> {
    let rest = name.strip_prefix("alias/").ok_or_else(|| {
        ServiceError::new(ErrorKind::InvalidAliasName, "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
    })?;
    if rest.is_empty()
        || name.len() > 256
        || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'_' || b == b'-')
    {
        return Err(ServiceError::new(
            ErrorKind::InvalidAliasName,
            format!("1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"),
        ));
    }
    if rest.starts_with("aws/") {
        return Err(ServiceError::new(ErrorKind::AccessDenied, format!("{name} is reserved for AWS managed keys.")));
    }
    Ok(())
}

fn validate_tags(tags: &[Tag]) -> ServiceResult<()> {
    if tags.len() > 50 {
        return Err(ServiceError::new(ErrorKind::LimitExceeded, "A key can have at most 50 tags."));
    }
    for t in tags {
        if t.key.is_empty() || t.key.chars().count() > 128 || t.value.chars().count() > 256 {
            return Err(ServiceError::new(
                ErrorKind::KmsTag,
                "Tag keys must be 1..128 characters and values up to 256.",
            ));
        }
        if t.key.starts_with("aws:") {
            return Err(ServiceError::new(ErrorKind::KmsTag, "Tags beginning with aws: are reserved."));
        }
    }
    Ok(())
}

impl Service {
    fn key_arn(&self, region: &str, key_id: &str) -> String {
        key_arn(region, &self.config.account_id, key_id)
    }

    fn not_found_key(&self, region: &str, key_id: &str) -> ServiceError {
        ServiceError::new(ErrorKind::KmsNotFound, format!("Key '{}' does not exist", self.key_arn(region, key_id)))
    }

    /// Builds a new key with one material version.
    fn new_key_state(
        &self,
        region: &str,
        input: &CreateKeyInput,
        key_manager: &str,
        now: EpochMillis,
    ) -> ServiceResult<KmsKeyState> {
        let key_id = uuid::Uuid::new_v4().to_string();
        let material = Kek::generate_material(&mut rand::rngs::OsRng);
        let sealed = self
            .keyring
            .seal(&mut rand::rngs::OsRng, material.expose(), &keys::material_aad(region, &key_id, 1))
            .map_err(|_| ServiceError::internal("sealing new key material failed"))?;
        let managed = key_manager == "AWS";
        Ok(KmsKeyState {
            key: KmsKeyRecord {
                region: region.to_string(),
                arn: self.key_arn(region, &key_id),
                key_id,
                description: input.description.clone().unwrap_or_default(),
                key_manager: key_manager.to_string(),
                key_state: STATE_ENABLED.to_string(),
                key_usage: input.key_usage.clone().unwrap_or_else(|| "ENCRYPT_DECRYPT".into()),
                key_spec: input.key_spec.clone().unwrap_or_else(|| "SYMMETRIC_DEFAULT".into()),
                origin: input.origin.clone().unwrap_or_else(|| "AWS_KMS".into()),
                created: now,
                deletion_date: None,
                // AWS rotates its managed keys every year.
                rotation_enabled: managed,
                rotation_period_days: 365,
                next_rotation: managed.then_some(now + 365 * DAY_MILLIS),
                tags: input.tags.clone(),
                policy: input.policy.clone(),
                revision: 1,
            },
            materials: vec![KeyMaterialRecord { version: 1, created: now, sealed }],
        })
    }

    pub async fn create_key(&self, ctx: &RequestContext, input: CreateKeyInput) -> ServiceResult<KmsKeyRecord> {
        if input.description.as_ref().is_some_and(|d| d.chars().count() > 8192) {
            return Err(ServiceError::validation("Description must be at most 8192 characters long."));
        }
        if let Some(policy) = &input.policy {
            // Enforced on every use of the key (see `access::key_policy`): refused now if it cannot be.
            if policy.is_empty() || policy.chars().count() > 32_768 {
                return Err(ServiceError::validation("Policy must be 1-32768 characters long."));
            }
            coffer_policy::Policy::parse("key-policy", policy, coffer_policy::PolicyKind::Resource).map_err(|e| {
                ServiceError::new(ErrorKind::MalformedPolicy, format!("The key policy is not valid: {e}"))
            })?;
        }
        match input.key_usage.as_deref() {
            None | Some("ENCRYPT_DECRYPT") => {}
            Some(other) => {
                return Err(ServiceError::new(
                    ErrorKind::UnsupportedOperation,
                    format!("KeyUsage {other} is not supported by this server; only ENCRYPT_DECRYPT keys are."),
                ))
            }
        }
        match input.key_spec.as_deref() {
            None | Some("SYMMETRIC_DEFAULT") => {}
            Some(other) => {
                return Err(ServiceError::new(
                    ErrorKind::UnsupportedOperation,
                    format!("KeySpec {other} is not supported by this server; only SYMMETRIC_DEFAULT keys are."),
                ))
            }
        }
        match input.origin.as_deref() {
            None | Some("AWS_KMS") => {}
            Some(other) => {
                return Err(ServiceError::new(
                    ErrorKind::UnsupportedOperation,
                    format!("Origin {other} is not supported by this server."),
                ))
            }
        }
        validate_tags(&input.tags)?;
        if must_authorize(ctx, false) {
            self.authorize(ctx, &Access::new("kms:CreateKey", "*").request_tags(&input.tags)).await?;
        }
        let state = self.new_key_state(&ctx.region, &input, "CUSTOMER", self.clock.now_millis())?;
        let record = state.key.clone();
        let response = serde_json::json!({ "keyMetadata": { "keyId": record.key_id, "arn": record.arn } });
        let write = KmsKeyWrite::Create(state);
        self.with_change_event(ctx, response, |event| self.store.write_kms_key(write, event)).await?;
        Ok(record)
    }

    /// The key an alias points at, creating the AWS-managed default keys on first use as AWS does.
    async fn key_id_for_alias(&self, region: &str, alias_name: &str) -> ServiceResult<String> {
        if let Some(alias) = self.store.load_alias(region, alias_name).await? {
            return Ok(alias.target_key_id);
        }
        if !MANAGED_ALIASES.contains(&alias_name) {
            return Err(ServiceError::new(
                ErrorKind::KmsNotFound,
                format!("Alias {} is not found.", alias_arn(region, &self.config.account_id, alias_name)),
            ));
        }
        let now = self.clock.now_millis();
        let description = match alias_name {
            SSM_DEFAULT_ALIAS => "Default key that protects my SSM parameters when no other key is defined",
            _ => "Default key that protects my Secrets Manager data when no other key is defined",
        };
        let input = CreateKeyInput { description: Some(description.into()), ..Default::default() };
        let state = self.new_key_state(region, &input, "AWS", now)?;
        let key_id = state.key.key_id.clone();
        self.store.write_kms_key(KmsKeyWrite::Create(state), None).await?;
        let alias = AliasRecord {
            region: region.to_string(),
            alias_name: alias_name.to_string(),
            target_key_id: key_id.clone(),
            created: now,
            last_updated: now,
        };
        match self.store.write_alias(AliasWrite::Create(alias), None).await {
            Ok(()) => Ok(key_id),
            // Another request (or node) created it first: use theirs, drop ours.
            Err(StoreError::AlreadyExists) => {
                let _ = self
                    .store
                    .write_kms_key(
                        KmsKeyWrite::Delete {
                            region: region.to_string(),
                            key_id: key_id.clone(),
                            expected_revision: 1,
                        },
                        None,
                    )
                    .await;
                let alias = self.store.load_alias(region, alias_name).await?;
                alias.map(|a| a.target_key_id).ok_or_else(|| ServiceError::internal("managed alias vanished"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the default keys of a region if they do not exist yet (at start-up, so that
    /// `describe-key --key-id alias/aws/ssm` answers from the first request).
    pub async fn ensure_default_keys(&self, region: &str) -> ServiceResult<()> {
        for alias in MANAGED_ALIASES {
            self.key_id_for_alias(region, alias).await?;
        }
        Ok(())
    }

    /// The key id a key reference (id, key ARN, alias name, alias ARN) names.
    pub(crate) async fn resolve_key_id(&self, region: &str, key_ref: &str) -> ServiceResult<String> {
        match parse_key_ref(key_ref)? {
            KeyRef::Id(id) => Ok(id),
            KeyRef::Alias(name) => self.key_id_for_alias(region, &name).await,
        }
    }

    /// Loads (or takes from the cache while fresh) a key with its material unsealed.
    pub(crate) async fn loaded_key(&self, region: &str, key_id: &str) -> ServiceResult<Arc<LoadedKey>> {
        if let Ok(id) = uuid::Uuid::parse_str(key_id) {
            if let Some(hit) = self.kms_keys.get_fresh(region, id.as_bytes()) {
                return Ok(hit);
            }
        }
        let Some(state) = self.store.load_kms_key(region, key_id).await? else {
            return Err(self.not_found_key(region, key_id));
        };
        let loaded = Arc::new(LoadedKey::unseal(state, &self.keyring)?);
        self.kms_keys.put(loaded.clone());
        Ok(loaded)
    }

    /// Resolves a reference to a loaded key.
    pub async fn key_by_ref(&self, region: &str, key_ref: &str) -> ServiceResult<Arc<LoadedKey>> {
        let key_id = self.resolve_key_id(region, key_ref).await?;
        if uuid::Uuid::parse_str(&key_id).is_err() {
            return Err(ServiceError::new(ErrorKind::KmsNotFound, format!("Invalid keyId '{key_id}'")));
        }
        self.loaded_key(region, &key_id).await
    }

    /// The key new values are sealed under: the named one, or the default behind `default_alias`;
    /// it must be enabled.
    pub(crate) async fn encryption_key(
        &self,
        region: &str,
        key_ref: Option<&str>,
        default_alias: &str,
    ) -> ServiceResult<Arc<LoadedKey>> {
        let key = self.key_by_ref(region, key_ref.filter(|k| !k.is_empty()).unwrap_or(default_alias)).await?;
        key.usable()?;
        Ok(key)
    }

    /// Makes sure the keys named by these envelope headers (from [`envelope_key_ids`]) are loaded and
    /// fresh, so the synchronous [`open_envelope`](Self::open_envelope) finds them.
    pub(crate) async fn warm_keys(&self, region: &str, key_ids: &[[u8; 16]]) -> ServiceResult<()> {
        for key_id in key_ids {
            if self.kms_keys.get_fresh(region, key_id).is_some() {
                continue;
            }
            let id = uuid::Uuid::from_bytes(*key_id).to_string();
            match self.loaded_key(region, &id).await {
                Ok(_) => {}
                // A deleted key: opening reports it.
                Err(e) if e.kind == ErrorKind::KmsNotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Opens a value envelope: under the master KEK (format 1) or under the KMS key it names, which must
    /// be usable and already warmed. KMS-style errors for unusable keys; `DecryptionFailure` otherwise.
    pub(crate) fn open_envelope(&self, region: &str, blob: &[u8], aad: &[u8]) -> ServiceResult<SecretBytes> {
        let failed = |e: coffer_crypto::CryptoError| {
            tracing::error!(error = %e, "opening a value envelope failed");
            ServiceError::new(ErrorKind::DecryptionFailure, "The value could not be decrypted.")
        };
        match envelope_kek(blob).map_err(failed)? {
            EnvelopeKek::Master => self.keyring.open(blob, aad).map_err(failed),
            EnvelopeKek::KmsKey { key_id, version } => {
                let key = self
                    .kms_keys
                    .get(region, &key_id)
                    .ok_or_else(|| self.not_found_key(region, &uuid::Uuid::from_bytes(key_id).to_string()))?;
                key.usable()?;
                let kek =
                    key.version(version).ok_or_else(|| failed(coffer_crypto::CryptoError::UnknownKek(version)))?;
                kek.open(blob, aad).map_err(failed)
            }
        }
    }

    /// Which customer key (ARN) protects an envelope; `None` for the AWS-managed default keys and for
    /// legacy master-key envelopes (Secrets Manager reports those as `DefaultEncryptionKey`). Reads the
    /// key cache, so warm the envelope's key first.
    pub(crate) fn envelope_customer_key_arn(&self, region: &str, blob: &[u8]) -> Option<String> {
        match envelope_kek(blob) {
            Ok(EnvelopeKek::KmsKey { key_id, .. }) => match self.kms_keys.get(region, &key_id) {
                Some(key) if key.record.key_manager == "AWS" => None,
                Some(key) => Some(key.record.arn.clone()),
                None => Some(self.key_arn(region, &uuid::Uuid::from_bytes(key_id).to_string())),
            },
            _ => None,
        }
    }

    // ----- key management ------------------------------------------------------------------

    /// Applies `change` to a key by compare-and-swap, retrying on conflicts; returns the new record.
    async fn modify_key(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        change: impl Fn(&KmsKeyState, EpochMillis) -> ServiceResult<(KmsKeyRecord, Option<KeyMaterialRecord>)>,
    ) -> ServiceResult<KmsKeyRecord> {
        let region = ctx.region.as_str();
        let key_id = self.resolve_key_id(region, key_ref).await?;
        for _ in 0..MAX_ATTEMPTS {
            let Some(state) = self.store.load_kms_key(region, &key_id).await? else {
                return Err(self.not_found_key(region, &key_id));
            };
            let now = self.clock.now_millis();
            let (mut record, material) = change(&state, now)?;
            if record == state.key && material.is_none() {
                return Ok(record);
            }
            record.revision = state.key.revision + 1;
            let write = KmsKeyWrite::Update {
                expected_revision: state.key.revision,
                key: record.clone(),
                new_material: material,
            };
            let response = serde_json::json!({ "keyId": key_id });
            match self.with_change_event(ctx, response, |event| self.store.write_kms_key(write, event)).await {
                Ok(()) => {
                    self.kms_keys.invalidate(region, &key_id);
                    return Ok(record);
                }
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(self.not_found_key(region, &key_id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::new(ErrorKind::Unavailable, "The key is being modified concurrently; retry the request."))
    }

    pub async fn describe_key(&self, ctx: &RequestContext, key_ref: &str) -> ServiceResult<KmsKeyRecord> {
        self.authorized_key_record(ctx, "kms:DescribeKey", key_ref, |a| a).await
    }

    /// ListResourceTags: the key's tags.
    pub async fn list_key_tags(&self, ctx: &RequestContext, key_ref: &str) -> ServiceResult<Vec<Tag>> {
        Ok(self.authorized_key_record(ctx, "kms:ListResourceTags", key_ref, |a| a).await?.tags)
    }

    /// A key's record, without authorization (for operations that authorized their own action).
    async fn key_record(&self, region: &str, key_ref: &str) -> ServiceResult<KmsKeyRecord> {
        let key_id = self.resolve_key_id(region, key_ref).await?;
        match self.store.load_kms_key(region, &key_id).await? {
            Some(state) => Ok(state.key),
            None => Err(self.not_found_key(region, &key_id)),
        }
    }

    pub async fn list_keys(&self, ctx: &RequestContext) -> ServiceResult<Vec<KmsKeyRecord>> {
        if must_authorize(ctx, false) {
            self.authorize(ctx, &Access::new("kms:ListKeys", "*")).await?;
        }
        Ok(self.store.list_kms_keys(&ctx.region).await?)
    }

    fn refuse_managed(record: &KmsKeyRecord, what: &str) -> ServiceResult<()> {
        if record.key_manager == "AWS" {
            return Err(ServiceError::new(
                ErrorKind::UnsupportedOperation,
                format!("{} is an AWS managed key; you cannot {what} it.", record.arn),
            ));
        }
        Ok(())
    }

    fn refuse_pending_deletion(record: &KmsKeyRecord) -> ServiceResult<()> {
        if record.key_state == STATE_PENDING_DELETION {
            return Err(ServiceError::new(ErrorKind::KmsInvalidState, format!("{} is pending deletion.", record.arn)));
        }
        Ok(())
    }

    pub async fn enable_key(&self, ctx: &RequestContext, key_ref: &str) -> ServiceResult<()> {
        let key = self.authorized_key_record(ctx, "kms:EnableKey", key_ref, |a| a).await?;
        self.modify_key(ctx, &key.key_id, |state, _| {
            Self::refuse_pending_deletion(&state.key)?;
            let mut k = state.key.clone();
            k.key_state = STATE_ENABLED.into();
            Ok((k, None))
        })
        .await
        .map(drop)
    }

    pub async fn disable_key(&self, ctx: &RequestContext, key_ref: &str) -> ServiceResult<()> {
        let key = self.authorized_key_record(ctx, "kms:DisableKey", key_ref, |a| a).await?;
        self.modify_key(ctx, &key.key_id, |state, _| {
            Self::refuse_managed(&state.key, "disable")?;
            Self::refuse_pending_deletion(&state.key)?;
            let mut k = state.key.clone();
            k.key_state = STATE_DISABLED.into();
            Ok((k, None))
        })
        .await
        .map(drop)
    }

    pub async fn enable_key_rotation(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        period_days: Option<i64>,
    ) -> ServiceResult<()> {
        let period = period_days.unwrap_or(365);
        if !(90..=2560).contains(&period) {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{period}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between 90 and 2560"
            )));
        }
        let key = self.authorized_key_record(ctx, "kms:EnableKeyRotation", key_ref, |a| a).await?;
        self.modify_key(ctx, &key.key_id, |state, now| {
            Self::refuse_managed(&state.key, "change the rotation of")?;
            Self::refuse_pending_deletion(&state.key)?;
            if state.key.key_state == STATE_DISABLED {
                return Err(ServiceError::new(ErrorKind::KmsDisabled, format!("{} is disabled.", state.key.arn)));
            }
            let mut k = state.key.clone();
            k.rotation_enabled = true;
            k.rotation_period_days = period;
            k.next_rotation = Some(now + period * DAY_MILLIS);
            Ok((k, None))
        })
        .await
        .map(drop)
    }

    pub async fn disable_key_rotation(&self, ctx: &RequestContext, key_ref: &str) -> ServiceResult<()> {
        let key = self.authorized_key_record(ctx, "kms:DisableKeyRotation", key_ref, |a| a).await?;
        self.modify_key(ctx, &key.key_id, |state, _| {
            Self::refuse_managed(&state.key, "change the rotation of")?;
            Self::refuse_pending_deletion(&state.key)?;
            if state.key.key_state == STATE_DISABLED {
                return Err(ServiceError::new(ErrorKind::KmsDisabled, format!("{} is disabled.", state.key.arn)));
            }
            let mut k = state.key.clone();
            k.rotation_enabled = false;
            k.next_rotation = None;
            Ok((k, None))
        })
        .await
        .map(drop)
    }

    pub async fn get_key_rotation_status(&self, ctx: &RequestContext, key_ref: &str) -> ServiceResult<RotationStatus> {
        let k = self.authorized_key_record(ctx, "kms:GetKeyRotationStatus", key_ref, |a| a).await?;
        Ok(RotationStatus {
            key_arn: k.arn,
            enabled: k.rotation_enabled,
            period_days: k.rotation_enabled.then_some(k.rotation_period_days),
            next_rotation: k.next_rotation,
        })
    }

    /// A new material version; `scheduled` keeps the rotation schedule's cadence.
    fn rotated(
        &self,
        state: &KmsKeyState,
        now: EpochMillis,
    ) -> ServiceResult<(KmsKeyRecord, Option<KeyMaterialRecord>)> {
        let version = state.materials.iter().map(|m| m.version).max().unwrap_or(0) + 1;
        let material = Kek::generate_material(&mut rand::rngs::OsRng);
        let sealed = self
            .keyring
            .seal(
                &mut rand::rngs::OsRng,
                material.expose(),
                &keys::material_aad(&state.key.region, &state.key.key_id, version),
            )
            .map_err(|_| ServiceError::internal("sealing new key material failed"))?;
        let mut k = state.key.clone();
        if k.rotation_enabled {
            k.next_rotation = Some(now + k.rotation_period_days * DAY_MILLIS);
        }
        Ok((k, Some(KeyMaterialRecord { version, created: now, sealed })))
    }

    /// RotateKeyOnDemand: new material at once; old material stays for decryption.
    pub async fn rotate_key_now(&self, ctx: &RequestContext, key_ref: &str) -> ServiceResult<KmsKeyRecord> {
        let key = self.authorized_key_record(ctx, "kms:RotateKeyOnDemand", key_ref, |a| a).await?;
        let record = self
            .modify_key(ctx, &key.key_id, |state, now| {
                Self::refuse_managed(&state.key, "rotate on demand")?;
                keys::usable(&state.key)?;
                self.rotated(state, now)
            })
            .await?;
        self.rewrap_requested.store(true, std::sync::atomic::Ordering::Release);
        Ok(record)
    }

    /// Keys whose scheduled rotation is due get new material; returns how many rotated.
    pub async fn rotate_due_keys(&self, region: &str) -> ServiceResult<usize> {
        let now = self.clock.now_millis();
        let mut rotated = 0;
        for k in self.store.list_kms_keys(region).await? {
            let due = k.rotation_enabled && k.key_state == STATE_ENABLED && k.next_rotation.is_some_and(|t| t <= now);
            if !due {
                continue;
            }
            let ctx = RequestContext::internal(
                &self.config.account_id,
                region,
                crate::context::ActorSource::Scheduler,
                KMS_EVENT_SOURCE,
                "RotateKey",
            );
            ctx.audit.resource(&k.arn);
            let result = self
                .modify_key(&ctx, &k.key_id, |state, now| {
                    if state.key.next_rotation.is_none_or(|t| t > now) {
                        return Ok((state.key.clone(), None)); // another node rotated it
                    }
                    self.rotated(state, now)
                })
                .await;
            match result {
                Ok(_) => rotated += 1,
                Err(e) => tracing::warn!(key_id = %k.key_id, error = %e, "scheduled key rotation failed"),
            }
        }
        Ok(rotated)
    }

    /// ScheduleKeyDeletion. Refuses while secrets or parameters still depend on the key unless `force`
    /// (a Coffer extension the CLI sends): deleting it would make them unreadable for good.
    pub async fn schedule_key_deletion(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        window_days: Option<i64>,
        force: bool,
    ) -> ServiceResult<ScheduledDeletion> {
        let days = window_days.unwrap_or(30);
        if !(7..=30).contains(&days) {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to 30 and greater than or equal to 7"
            )));
        }
        let key = self.authorized_key_record(ctx, "kms:ScheduleKeyDeletion", key_ref, |a| a).await?;
        Self::refuse_managed(&key, "delete")?;
        if !force {
            let dependents = self.key_dependents(&ctx.region, &key.key_id).await?;
            if dependents.total() > 0 {
                return Err(ServiceError::new(
                    ErrorKind::KmsInvalidState,
                    format!(
                        "{} protects {} secret(s) and {} parameter(s); re-encrypt them under another key first, or force the deletion.",
                        key.arn, dependents.secrets, dependents.parameters
                    ),
                ));
            }
        }
        let record = self
            .modify_key(ctx, &key.key_id, |state, now| {
                Self::refuse_pending_deletion(&state.key)?;
                let mut k = state.key.clone();
                k.key_state = STATE_PENDING_DELETION.into();
                k.deletion_date = Some(now + days * DAY_MILLIS);
                Ok((k, None))
            })
            .await?;
        Ok(ScheduledDeletion {
            key_arn: record.arn,
            deletion_date: record.deletion_date.unwrap_or_default(),
            pending_window_days: days,
            key_state: record.key_state,
        })
    }

    /// CancelKeyDeletion: the key comes back Disabled, as in AWS.
    pub async fn cancel_key_deletion(&self, ctx: &RequestContext, key_ref: &str) -> ServiceResult<KmsKeyRecord> {
        let key = self.authorized_key_record(ctx, "kms:CancelKeyDeletion", key_ref, |a| a).await?;
        self.modify_key(ctx, &key.key_id, |state, _| {
            if state.key.key_state != STATE_PENDING_DELETION {
                return Err(ServiceError::new(
                    ErrorKind::KmsInvalidState,
                    format!("{} is not pending deletion.", state.key.arn),
                ));
            }
            let mut k = state.key.clone();
            k.key_state = STATE_DISABLED.into();
            k.deletion_date = None;
            Ok((k, None))
        })
        .await
    }

    /// Deletes keys whose deletion window has passed; returns how many.
    pub async fn purge_due_key_deletions(&self, region: &str) -> ServiceResult<usize> {
        let now = self.clock.now_millis();
        let mut purged = 0;
        for k in self.store.list_kms_keys(region).await? {
            if k.key_state == STATE_PENDING_DELETION && k.deletion_date.is_some_and(|d| d <= now) {
                let write = KmsKeyWrite::Delete {
                    region: region.to_string(),
                    key_id: k.key_id.clone(),
                    expected_revision: k.revision,
                };
                let ctx = RequestContext::internal(
                    &self.config.account_id,
                    region,
                    crate::context::ActorSource::Scheduler,
                    KMS_EVENT_SOURCE,
                    "DeleteKey",
                );
                ctx.audit.resource(&k.arn);
                let response = serde_json::json!({ "keyId": k.key_id });
                match self.with_change_event(&ctx, response, |event| self.store.write_kms_key(write, event)).await {
                    Ok(()) => {
                        self.kms_keys.invalidate(region, &k.key_id);
                        purged += 1;
                    }
                    Err(StoreError::Conflict | StoreError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(purged)
    }

    pub async fn tag_key(&self, ctx: &RequestContext, key_ref: &str, tags: Vec<Tag>) -> ServiceResult<()> {
        validate_tags(&tags)?;
        let key = self.authorized_key_record(ctx, "kms:TagResource", key_ref, |a| a.request_tags(&tags)).await?;
        self.modify_key(ctx, &key.key_id, |state, _| {
            Self::refuse_pending_deletion(&state.key)?;
            let mut k = state.key.clone();
            for t in &tags {
                match k.tags.iter_mut().find(|x| x.key == t.key) {
                    Some(existing) => existing.value = t.value.clone(),
                    None => k.tags.push(t.clone()),
                }
            }
            validate_tags(&k.tags)?;
            Ok((k, None))
        })
        .await
        .map(drop)
    }

    pub async fn untag_key(&self, ctx: &RequestContext, key_ref: &str, tag_keys: Vec<String>) -> ServiceResult<()> {
        let key = self
            .authorized_key_record(ctx, "kms:UntagResource", key_ref, |a| a.keys("aws:TagKeys", tag_keys.clone()))
            .await?;
        self.modify_key(ctx, &key.key_id, |state, _| {
            Self::refuse_pending_deletion(&state.key)?;
            let mut k = state.key.clone();
            k.tags.retain(|t| !tag_keys.contains(&t.key));
            Ok((k, None))
        })
        .await
        .map(drop)
    }

    // ----- aliases -------------------------------------------------------------------------

    /// Authorizes an alias operation on the alias itself (CreateAlias, UpdateAlias and DeleteAlias also
    /// need it on the key, as in AWS).
    async fn authorize_alias(&self, ctx: &RequestContext, action: &str, alias_name: &str) -> ServiceResult<()> {
        if !must_authorize(ctx, false) {
            return Ok(());
        }
        let arn = alias_arn(&ctx.region, &self.config.account_id, alias_name);
        self.authorize(ctx, &Access::new(action, &arn)).await
    }

    /// Authorizes an alias operation on the key an alias points at now (which may be gone).
    async fn authorize_alias_target(&self, ctx: &RequestContext, action: &str, key_id: &str) -> ServiceResult<()> {
        // Root too: the key's policy may shut it out.
        if ctx.source.is_internal() {
            return Ok(());
        }
        match self.store.load_kms_key(&ctx.region, key_id).await? {
            Some(state) => {
                let policy = access::key_policy(&state.key)?;
                self.authorize_key(ctx, action, &state.key, policy.as_ref(), |a| a).await
            }
            None => self.authorize(ctx, &Access::new(action, &self.key_arn(&ctx.region, key_id))).await,
        }
    }

    pub async fn create_alias(&self, ctx: &RequestContext, alias_name: &str, target: &str) -> ServiceResult<()> {
        validate_alias_name(alias_name)?;
        self.authorize_alias(ctx, "kms:CreateAlias", alias_name).await?;
        let key = self.authorized_key_record(ctx, "kms:CreateAlias", target, |a| a).await?;
        if key.key_manager == "AWS" {
            return Err(ServiceError::new(
                ErrorKind::UnsupportedOperation,
                "Aliases cannot point at AWS managed keys.".to_string(),
            ));
        }
        Self::refuse_pending_deletion(&key)?;
        let now = self.clock.now_millis();
        let alias = AliasRecord {
            region: ctx.region.clone(),
            alias_name: alias_name.to_string(),
            target_key_id: key.key_id,
            created: now,
            last_updated: now,
        };
        let write = AliasWrite::Create(alias);
        match self.with_change_event(ctx, serde_json::Value::Null, |event| self.store.write_alias(write, event)).await {
            Ok(()) => Ok(()),
            Err(StoreError::AlreadyExists) => Err(ServiceError::new(
                ErrorKind::AlreadyExists,
                format!(
                    "An alias with the name {} already exists",
                    alias_arn(&ctx.region, &self.config.account_id, alias_name)
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn update_alias(&self, ctx: &RequestContext, alias_name: &str, target: &str) -> ServiceResult<()> {
        validate_alias_name(alias_name)?;
        self.authorize_alias(ctx, "kms:UpdateAlias", alias_name).await?;
        let existing = self.store.load_alias(&ctx.region, alias_name).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorKind::KmsNotFound,
                format!("Alias {} is not found.", alias_arn(&ctx.region, &self.config.account_id, alias_name)),
            )
        })?;
        self.authorize_alias_target(ctx, "kms:UpdateAlias", &existing.target_key_id).await?;
        let key = self.authorized_key_record(ctx, "kms:UpdateAlias", target, |a| a).await?;
        if key.key_manager == "AWS" {
            return Err(ServiceError::new(
                ErrorKind::UnsupportedOperation,
                "Aliases cannot point at AWS managed keys.",
            ));
        }
        Self::refuse_pending_deletion(&key)?;
        let alias = AliasRecord { target_key_id: key.key_id, last_updated: self.clock.now_millis(), ..existing };
        let write = AliasWrite::Update(alias);
        match self.with_change_event(ctx, serde_json::Value::Null, |event| self.store.write_alias(write, event)).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => {
                Err(ServiceError::new(ErrorKind::KmsNotFound, format!("Alias {alias_name} is not found.")))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_alias(&self, ctx: &RequestContext, alias_name: &str) -> ServiceResult<()> {
        validate_alias_name(alias_name)?;
        self.authorize_alias(ctx, "kms:DeleteAlias", alias_name).await?;
        if must_authorize(ctx, false) {
            let Some(existing) = self.store.load_alias(&ctx.region, alias_name).await? else {
                return Err(ServiceError::new(
                    ErrorKind::KmsNotFound,
                    format!("Alias {} is not found.", alias_arn(&ctx.region, &self.config.account_id, alias_name)),
                ));
            };
            self.authorize_alias_target(ctx, "kms:DeleteAlias", &existing.target_key_id).await?;
        }
        let write = AliasWrite::Delete { region: ctx.region.clone(), alias_name: alias_name.to_string() };
        match self.with_change_event(ctx, serde_json::Value::Null, |event| self.store.write_alias(write, event)).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(ServiceError::new(
                ErrorKind::KmsNotFound,
                format!("Alias {} is not found.", alias_arn(&ctx.region, &self.config.account_id, alias_name)),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Aliases of the region, or of one key.
    pub async fn list_aliases(&self, ctx: &RequestContext, key_ref: Option<&str>) -> ServiceResult<Vec<AliasRecord>> {
        if must_authorize(ctx, false) {
            self.authorize(ctx, &Access::new("kms:ListAliases", "*")).await?;
        }
        let aliases = self.store.list_aliases(&ctx.region).await?;
        match key_ref {
            None => Ok(aliases),
            Some(r) => {
                let key = self.key_record(&ctx.region, r).await?;
                Ok(aliases.into_iter().filter(|a| a.target_key_id == key.key_id).collect())
            }
        }
    }

    // ----- cryptography --------------------------------------------------------------------

    pub async fn kms_encrypt(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        plaintext: &SecretBytes,
        context: &BTreeMap<String, String>,
    ) -> ServiceResult<(String, Vec<u8>)> {
        self.encrypt_as(ctx, "kms:Encrypt", key_ref, plaintext, context).await
    }

    /// Encrypt, authorized as `action` (Encrypt, GenerateDataKey*, ReEncryptTo).
    async fn encrypt_as(
        &self,
        ctx: &RequestContext,
        action: &str,
        key_ref: &str,
        plaintext: &SecretBytes,
        context: &BTreeMap<String, String>,
    ) -> ServiceResult<(String, Vec<u8>)> {
        if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
            return Err(ServiceError::validation(
                "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
            ));
        }
        let key = match self.key_by_ref(&ctx.region, key_ref).await {
            Ok(key) => key,
            Err(e) if e.kind == ErrorKind::KmsNotFound => {
                return Err(self.key_not_found(ctx, action, key_ref, e).await)
            }
            Err(e) => return Err(e),
        };
        self.authorize_key(ctx, action, &key.record, key.policy.as_deref(), |a| with_encryption_context(a, context))
            .await?;
        key.usable()?;
        let blob = key
            .newest()?
            .encrypt_kms(&mut rand::rngs::OsRng, plaintext.expose(), &canonical_context(context))
            .map_err(|_| ServiceError::internal("encryption failed"))?;
        Ok((key.record.arn.clone(), blob))
    }

    pub async fn kms_decrypt(
        &self,
        ctx: &RequestContext,
        blob: &[u8],
        context: &BTreeMap<String, String>,
        key_ref: Option<&str>,
    ) -> ServiceResult<Decrypted> {
        self.decrypt_as(ctx, "kms:Decrypt", blob, context, key_ref).await
    }

    /// Decrypt, authorized as `action` (Decrypt, ReEncryptFrom) on the key the ciphertext names.
    async fn decrypt_as(
        &self,
        ctx: &RequestContext,
        action: &str,
        blob: &[u8],
        context: &BTreeMap<String, String>,
        key_ref: Option<&str>,
    ) -> ServiceResult<Decrypted> {
        let invalid = || ServiceError::new(ErrorKind::InvalidCiphertext, "");
        let (key_bytes, version) = kms_ciphertext_key(blob).map_err(|_| invalid())?;
        let key_id = uuid::Uuid::from_bytes(key_bytes).to_string();
        let key = match self.loaded_key(&ctx.region, &key_id).await {
            Ok(k) => k,
            // A blob naming a key this region never had is simply not a valid ciphertext here.
            Err(e) if e.kind == ErrorKind::KmsNotFound => {
                return Err(self.key_not_found(ctx, action, &key_id, invalid()).await)
            }
            Err(e) => return Err(e),
        };
        self.authorize_key(ctx, action, &key.record, key.policy.as_deref(), |a| with_encryption_context(a, context))
            .await?;
        if let Some(r) = key_ref {
            let wanted = self.resolve_key_id(&ctx.region, r).await?;
            if wanted != key_id {
                return Err(ServiceError::new(
                    ErrorKind::IncorrectKey,
                    "The key ID in the request does not identify a CMK that can perform this operation.",
                ));
            }
        }
        key.usable()?;
        let kek = key.version(version).ok_or_else(invalid)?;
        let plaintext = kek.decrypt_kms(blob, &canonical_context(context)).map_err(|_| invalid())?;
        Ok(Decrypted { key_arn: key.record.arn.clone(), plaintext })
    }

    /// GenerateDataKey(WithoutPlaintext): `bytes` random bytes and their ciphertext under the key.
    pub async fn generate_data_key(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        bytes: usize,
        context: &BTreeMap<String, String>,
        with_plaintext: bool,
    ) -> ServiceResult<DataKey> {
        if bytes == 0 || bytes > 1024 {
            return Err(ServiceError::validation(
                "1 validation error detected: Value at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024",
            ));
        }
        let mut raw = vec![0u8; bytes];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let plaintext = SecretBytes::new(raw);
        let action = if with_plaintext { "kms:GenerateDataKey" } else { "kms:GenerateDataKeyWithoutPlaintext" };
        let (key_arn, ciphertext) = self.encrypt_as(ctx, action, key_ref, &plaintext, context).await?;
        Ok(DataKey { key_arn, plaintext: with_plaintext.then_some(plaintext), ciphertext })
    }

    /// ReEncrypt: decrypt under the source key and context, encrypt under the destination's. The
    /// plaintext exists only inside this call, zeroized when it returns.
    pub async fn re_encrypt(
        &self,
        ctx: &RequestContext,
        blob: &[u8],
        source_context: &BTreeMap<String, String>,
        source_key: Option<&str>,
        destination_key: &str,
        destination_context: &BTreeMap<String, String>,
    ) -> ServiceResult<(String, String, Vec<u8>)> {
        let decrypted = self.decrypt_as(ctx, "kms:ReEncryptFrom", blob, source_context, source_key).await?;
        let (dest_arn, out) =
            self.encrypt_as(ctx, "kms:ReEncryptTo", destination_key, &decrypted.plaintext, destination_context).await?;
        Ok((decrypted.key_arn, dest_arn, out))
    }
}
