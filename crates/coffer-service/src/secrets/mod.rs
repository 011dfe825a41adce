//! The Secrets Manager domain: secrets, their versions and staging labels, deletion windows, tags and
//! resource policies. Every operation takes the caller's [`RequestContext`] and typed input, decides the
//! whole change here, and hands the store one compare-and-swap write.

mod access;
pub mod labels;
pub mod list;
pub mod rotation;
pub mod validate;

use std::sync::Arc;

use coffer_crypto::SecretBytes;
use coffer_store::{EpochMillis, SecretRecord, SecretState, SecretWrite, StoreError, Tag, ValueKind, VersionRecord};

use crate::arn::{has_random_suffix, new_secret_arn, parse_secret_arn};
use crate::clock::{start_of_day, MILLIS_PER_DAY};
use crate::context::RequestContext;
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::iam::Access;
use crate::kms::{envelope_key_ids, must_authorize, LoadedKey, SECRETS_MANAGER_DEFAULT_ALIAS};
use crate::password::{generate_password, PasswordRules};
use crate::Service;
use labels::{LabelBoard, AWSCURRENT};
use list::{CompiledFilters, SecretFilter, SortBy};

/// How many times a write is re-decided after losing a compare-and-swap race before giving up.
const MAX_WRITE_ATTEMPTS: usize = 16;

const MARKED_FOR_DELETION: &str = "You can't perform this operation on the secret because it was marked for deletion.";
const SECRET_NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";

/// A secret value in memory: zeroized when dropped.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretValue {
    String(SecretBytes),
    Binary(SecretBytes),
}

impl SecretValue {
    pub fn bytes(&self) -> &SecretBytes {
        match self {
            SecretValue::String(b) | SecretValue::Binary(b) => b,
        }
    }
    fn kind(&self) -> ValueKind {
        match self {
            SecretValue::String(_) => ValueKind::String,
            SecretValue::Binary(_) => ValueKind::Binary,
        }
    }
}

#[derive(Debug, Default)]
pub struct CreateSecretInput {
    pub name: String,
    pub client_request_token: Option<String>,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub value: Option<SecretValue>,
    pub tags: Vec<Tag>,
}

/// ARN, name and (when a value was written) the version id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretIdentity {
    pub arn: String,
    pub name: String,
    pub version_id: Option<String>,
}

#[derive(Debug, Default)]
pub struct GetSecretValueInput {
    pub secret_id: String,
    pub version_id: Option<String>,
    pub version_stage: Option<String>,
}

#[derive(Debug)]
pub struct SecretValueOutput {
    pub arn: String,
    pub name: String,
    pub version_id: String,
    pub value: SecretValue,
    pub version_stages: Vec<String>,
    pub created: EpochMillis,
}

#[derive(Debug, Default)]
pub struct PutSecretValueInput {
    pub secret_id: String,
    pub client_request_token: Option<String>,
    pub value: Option<SecretValue>,
    pub version_stages: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct PutSecretValueOutput {
    pub arn: String,
    pub name: String,
    pub version_id: String,
    pub version_stages: Vec<String>,
}

#[derive(Debug, Default)]
pub struct UpdateSecretInput {
    pub secret_id: String,
    pub client_request_token: Option<String>,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub value: Option<SecretValue>,
}

/// DescribeSecret's view of a secret (also one ListSecrets entry).
#[derive(Debug, Clone)]
pub struct SecretDescription {
    pub record: SecretRecord,
    /// Labelled versions and their labels, oldest first.
    pub versions_to_stages: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Default)]
pub struct ListSecretsInput {
    pub include_planned_deletion: bool,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub filters: Vec<SecretFilter>,
    pub sort_order: Option<String>,
    pub sort_by: Option<String>,
}

#[derive(Debug)]
pub struct ListSecretsOutput {
    pub secrets: Vec<SecretDescription>,
    pub next_token: Option<String>,
}

#[derive(Debug, Default)]
pub struct ListVersionIdsInput {
    pub secret_id: String,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub include_deprecated: bool,
}

#[derive(Debug, Clone)]
pub struct VersionSummary {
    pub version_id: String,
    pub stages: Vec<String>,
    pub created: EpochMillis,
    pub kms_key_id: Option<String>,
}

#[derive(Debug)]
pub struct ListVersionIdsOutput {
    pub arn: String,
    pub name: String,
    pub versions: Vec<VersionSummary>,
    pub next_token: Option<String>,
}

#[derive(Debug, Default)]
pub struct UpdateVersionStageInput {
    pub secret_id: String,
    pub version_stage: String,
    pub remove_from_version_id: Option<String>,
    pub move_to_version_id: Option<String>,
}

#[derive(Debug, Default)]
pub struct DeleteSecretInput {
    pub secret_id: String,
    pub recovery_window_in_days: Option<i64>,
    pub force_delete_without_recovery: Option<bool>,
}

#[derive(Debug)]
pub struct DeleteSecretOutput {
    pub arn: String,
    pub name: String,
    pub deletion_date: EpochMillis,
}

#[derive(Debug, Default)]
pub struct BatchGetInput {
    pub secret_ids: Option<Vec<String>>,
    pub filters: Option<Vec<SecretFilter>>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// One secret BatchGetSecretValue could not return, with the reason.
#[derive(Debug)]
pub struct BatchGetError {
    pub secret_id: String,
    pub error: ServiceError,
}

#[derive(Debug)]
pub struct BatchGetOutput {
    pub values: Vec<SecretValueOutput>,
    pub errors: Vec<BatchGetError>,
    pub next_token: Option<String>,
}

#[derive(Debug)]
pub struct ResourcePolicyOutput {
    pub arn: String,
    pub name: String,
    pub policy: Option<String>,
}

#[derive(Debug)]
pub struct PolicyValidation {
    pub passed: bool,
    pub errors: Vec<(String, String)>,
}

/// Associated data that binds an envelope to its record: moving a ciphertext to another secret or
/// version makes it undecryptable.
pub(crate) fn value_aad(arn: &str, version_id: &str) -> Vec<u8> {
    format!("coffer secret value v1\n{arn}\n{version_id}").into_bytes()
}

fn not_deleted(state: &SecretState) -> ServiceResult<()> {
    if state.secret.deletion_date.is_some() {
        return Err(ServiceError::invalid_request(MARKED_FOR_DELETION));
    }
    Ok(())
}

fn validate_value(value: &SecretValue) -> ServiceResult<()> {
    validate::secret_value_size(value.bytes().len())
}

fn require_token(token: Option<&str>) -> ServiceResult<String> {
    let token = token.ok_or_else(|| {
        ServiceError::invalid_request("You must provide a ClientRequestToken value. We recommend a UUID-type value.")
    })?;
    validate::client_request_token(token)?;
    Ok(token.to_string())
}

/// A decided new version: the secret's new metadata, the sealed version, the label moves around it and
/// the versions pruned to make room.
struct NewVersion {
    secret: SecretRecord,
    version: VersionRecord,
    board: LabelBoard,
    pruned: Vec<String>,
}

/// What a write step decided: the store change and the value to answer with.
struct Decision<R> {
    write: Option<SecretWrite>,
    new_state: Option<SecretState>,
    output: R,
}

impl Service {
    // ----- lookups -------------------------------------------------------------------------

    /// Finds a secret by name, full ARN, or partial ARN (without the random suffix), from the cache
    /// unless `fresh` asks for the store (writers re-deciding after a conflict).
    async fn resolve(&self, ctx: &RequestContext, secret_id: &str, fresh: bool) -> ServiceResult<Arc<SecretState>> {
        if secret_id.is_empty() || secret_id.len() > 2048 {
            return Err(ServiceError::invalid_parameter("SecretId must be 1-2048 characters long."));
        }
        let found = match parse_secret_arn(secret_id) {
            Some(arn) => {
                let mut found = None;
                if has_random_suffix(arn.resource) {
                    found = self.load_by_arn(secret_id, fresh).await?;
                }
                if found.is_none() {
                    found = self.load_by_name(arn.region, arn.resource, fresh).await?;
                }
                found
            }
            None => self.load_by_name(&ctx.region, secret_id, fresh).await?,
        };
        found.ok_or_else(|| ServiceError::not_found(SECRET_NOT_FOUND))
    }

    /// Whether a cached secret may be served: always, unless cached reads are validated (several nodes
    /// over one store), when its revision must still be the stored one.
    async fn cached_secret_is_current(&self, hit: &SecretState) -> ServiceResult<bool> {
        if !self.config.validate_cached_reads {
            return Ok(true);
        }
        Ok(self.store.secret_revision(&hit.secret.arn).await? == Some(hit.secret.revision))
    }

    async fn load_by_arn(&self, arn: &str, fresh: bool) -> ServiceResult<Option<Arc<SecretState>>> {
        if !fresh {
            if let Some(hit) = self.cache.by_arn(arn) {
                if self.cached_secret_is_current(&hit).await? {
                    return Ok(Some(hit));
                }
            }
        }
        let epoch = self.cache.epoch();
        let loaded = self.store.load_secret_by_arn(arn).await?.map(Arc::new);
        if let Some(state) = &loaded {
            self.cache.store_if_newer(state.clone(), epoch);
        }
        Ok(loaded)
    }

    async fn load_by_name(&self, region: &str, name: &str, fresh: bool) -> ServiceResult<Option<Arc<SecretState>>> {
        if !fresh {
            if let Some(hit) = self.cache.by_name(region, name) {
                if self.cached_secret_is_current(&hit).await? {
                    return Ok(Some(hit));
                }
            }
        }
        let epoch = self.cache.epoch();
        let loaded = self.store.load_secret_by_name(region, name).await?.map(Arc::new);
        if let Some(state) = &loaded {
            self.cache.store_if_newer(state.clone(), epoch);
        }
        Ok(loaded)
    }

    /// Runs `decide` on the current state and commits its write; on a lost race, re-reads from the
    /// store and decides again. The decision never double-applies: each attempt starts from a fresh state.
    /// A committed change that readers can see goes to change subscribers (see [`crate::changes`]).
    async fn modify<R>(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        mut decide: impl FnMut(&SecretState) -> ServiceResult<Decision<R>>,
    ) -> ServiceResult<R> {
        let mut fresh = false;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let state = self.resolve(ctx, secret_id, fresh).await?;
            let decision = decide(&state)?;
            let Some(write) = decision.write else { return Ok(decision.output) };
            let arn = write.arn().to_string();
            let deleting = matches!(write, SecretWrite::Delete { .. });
            let change = self.secret_change(ctx, Some(&state), &write);
            let response = serde_json::json!({ "aRN": arn, "name": state.secret.name });
            match self.with_change_event(ctx, response, |event| self.store.write_secret(write, event)).await {
                Ok(()) => {
                    if deleting {
                        self.cache.invalidate(&arn);
                    } else if let Some(new_state) = decision.new_state {
                        let epoch = self.cache.epoch();
                        self.cache.store_if_newer(Arc::new(new_state), epoch);
                    }
                    // After the cache holds the new state: a subscriber that refetches at once reads it.
                    self.publish_change(change);
                    return Ok(decision.output);
                }
                Err(StoreError::Conflict) | Err(StoreError::NotFound) => {
                    // Someone else changed (or removed) the secret between our read and our write.
                    self.cache.invalidate(&arn);
                    fresh = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::new(ErrorKind::Unavailable, "The secret is being modified concurrently; retry the request."))
    }

    /// The key new versions of a secret are sealed under (its KmsKeyId, else the default key), with
    /// Secrets Manager's EncryptionFailure when it cannot be used.
    async fn secret_key(&self, region: &str, kms_key_id: Option<&str>) -> ServiceResult<Arc<LoadedKey>> {
        self.encryption_key(region, kms_key_id, SECRETS_MANAGER_DEFAULT_ALIAS).await.map_err(|e| match e.kind {
            ErrorKind::KmsNotFound | ErrorKind::KmsDisabled | ErrorKind::KmsInvalidState => ServiceError::new(
                ErrorKind::EncryptionFailure,
                format!(
                    "Secrets Manager can't encrypt the protected secret text using the provided KMS key. Check that the KMS key is available, enabled, and not in an invalid state. ({})",
                    e.message
                ),
            ),
            _ => e,
        })
    }

    /// Loads the keys the secret's versions are sealed under, so the synchronous paths can open them.
    async fn warm_secret_keys(&self, state: &SecretState) -> ServiceResult<()> {
        let ids = envelope_key_ids(state.versions.iter().map(|v| v.envelope.as_slice()));
        self.warm_keys(&state.secret.region, &ids).await
    }

    fn seal_value(&self, arn: &str, version_id: &str, value: &SecretValue, key: &LoadedKey) -> ServiceResult<Vec<u8>> {
        key.newest()?.seal(&mut rand::rngs::OsRng, value.bytes().expose(), &value_aad(arn, version_id)).map_err(|e| {
            tracing::error!(error = %e, "sealing a secret value failed");
            ServiceError::new(ErrorKind::EncryptionFailure, "Secrets Manager can't encrypt the secret value.")
        })
    }

    /// Opens a version whose key was warmed. A key that is disabled, pending deletion or gone gives
    /// Secrets Manager's DecryptionFailure naming the key's state.
    fn open_value(&self, secret: &SecretRecord, version: &VersionRecord) -> ServiceResult<SecretValue> {
        let plain = self
            .open_envelope(&secret.region, &version.envelope, &value_aad(&secret.arn, &version.version_id))
            .map_err(|e| {
                let reason = match e.kind {
                    ErrorKind::KmsNotFound | ErrorKind::KmsDisabled | ErrorKind::KmsInvalidState => {
                        format!(" ({})", e.message)
                    }
                    _ => String::new(),
                };
                ServiceError::new(
                    ErrorKind::DecryptionFailure,
                    format!(
                        "Secrets Manager can't decrypt the protected secret text using the provided KMS key.{reason}"
                    ),
                )
            })?;
        Ok(match version.kind {
            ValueKind::String => SecretValue::String(plain),
            ValueKind::Binary => SecretValue::Binary(plain),
        })
    }

    /// Whether an existing version holds exactly `value` (idempotent retries compare values).
    fn same_value(&self, secret: &SecretRecord, version: &VersionRecord, value: &SecretValue) -> ServiceResult<bool> {
        let stored = self.open_value(secret, version)?;
        Ok(stored == *value)
    }

    /// Builds the change that adds a version under `stages` (default AWSCURRENT), or recognises an
    /// idempotent retry of the same token and value.
    // The inputs of one decision, each used once; bundling them in a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn decide_new_version(
        &self,
        state: &SecretState,
        token: &str,
        value: &SecretValue,
        stages: &[String],
        now: EpochMillis,
        mut secret: SecretRecord,
        key: &LoadedKey,
    ) -> ServiceResult<(Option<NewVersion>, Vec<String>)> {
        let arn = &state.secret.arn;
        if let Some(existing) = state.versions.iter().find(|v| v.version_id == token) {
            if self.same_value(&state.secret, existing, value)? {
                return Ok((None, existing.stages.clone()));
            }
            return Err(ServiceError::already_exists(format!(
                "You can't use ClientRequestToken {token} because that value is already in use for a version of secret {arn}."
            )));
        }
        let envelope = self.seal_value(arn, token, value, key)?;
        let mut board = LabelBoard::from_versions(&state.versions);
        board.add_version(token, now);
        for stage in stages {
            board.move_label(stage, token)?;
        }
        let pruned = board.prune(now, self.config.max_versions, self.config.version_min_age_millis);
        let version = VersionRecord {
            version_id: token.to_string(),
            stages: board.final_stages(token),
            created: now,
            kind: value.kind(),
            envelope,
        };
        secret.last_changed = now;
        secret.revision = state.secret.revision + 1;
        let final_stages = version.stages.clone();
        Ok((Some(NewVersion { secret, version, board, pruned }), final_stages))
    }

    // ----- operations ----------------------------------------------------------------------

    pub async fn create_secret(&self, ctx: &RequestContext, input: CreateSecretInput) -> ServiceResult<SecretIdentity> {
        validate::secret_name(&input.name)?;
        if let Some(d) = &input.description {
            validate::description(d)?;
        }
        validate::tags(&input.tags)?;
        validate::tag_count(input.tags.len())?;
        let token = match &input.value {
            Some(value) => {
                validate_value(value)?;
                Some(require_token(input.client_request_token.as_deref())?)
            }
            None => match input.client_request_token.as_deref() {
                Some(t) => {
                    validate::client_request_token(t)?;
                    None
                }
                None => None,
            },
        };

        let arn = new_secret_arn(&ctx.region, &self.config.account_id, &input.name, &mut rand::rngs::OsRng);
        ctx.audit.resource(&arn);
        if must_authorize(ctx, false) {
            let access = Access::new("secretsmanager:CreateSecret", &arn)
                .key("secretsmanager:Name", input.name.as_str())
                .request_tags(&input.tags);
            self.authorize(ctx, &with_kms_key_id(access, input.kms_key_id.as_deref())).await?;
        }
        let key = self.secret_key(&ctx.region, input.kms_key_id.as_deref()).await?;
        if input.value.is_some() {
            self.authorize_sealing(ctx, &key).await?;
        }
        let now = self.clock.now_millis();
        let mut tags = Vec::new();
        validate::merge_tags(&mut tags, &input.tags);
        let secret = SecretRecord {
            arn: arn.clone(),
            region: ctx.region.clone(),
            name: input.name.clone(),
            description: input.description.clone(),
            kms_key_id: input.kms_key_id.clone(),
            tags,
            created: now,
            last_changed: now,
            last_accessed: None,
            deletion_date: None,
            resource_policy: None,
            rotation: Default::default(),
            revision: 1,
        };
        let mut versions = Vec::new();
        if let (Some(value), Some(token)) = (&input.value, &token) {
            versions.push(VersionRecord {
                version_id: token.clone(),
                stages: vec![AWSCURRENT.to_string()],
                created: now,
                kind: value.kind(),
                envelope: self.seal_value(&arn, token, value, &key)?,
            });
        }
        let state = SecretState { secret, versions };
        let response = serde_json::json!({ "aRN": arn, "name": input.name, "versionId": token });
        let write = SecretWrite::Create(state.clone());
        let change = self.secret_change(ctx, None, &write);
        match self.with_change_event(ctx, response, |event| self.store.write_secret(write, event)).await {
            Ok(()) => {
                let epoch = self.cache.epoch();
                self.cache.store_if_newer(Arc::new(state), epoch);
                self.publish_change(change);
                Ok(SecretIdentity { arn, name: input.name, version_id: token })
            }
            Err(StoreError::AlreadyExists) => {
                let existing = self.store.load_secret_by_name(&ctx.region, &input.name).await?;
                match existing {
                    Some(existing) if existing.secret.deletion_date.is_some() => Err(ServiceError::invalid_request(
                        "You can't create this secret because a secret with this name is already scheduled for deletion.",
                    )),
                    // A retried CreateSecret (same token, same value) succeeds with the original version.
                    Some(existing) => {
                        if let (Some(value), Some(token)) = (&input.value, &token) {
                            if let Some(v) = existing.versions.iter().find(|v| &v.version_id == token) {
                                self.warm_secret_keys(&existing).await?;
                                if self.same_value(&existing.secret, v, value)? {
                                    return Ok(SecretIdentity {
                                        arn: existing.secret.arn.clone(),
                                        name: existing.secret.name.clone(),
                                        version_id: Some(token.clone()),
                                    });
                                }
                            }
                        }
                        Err(ServiceError::already_exists(format!(
                            "The operation failed because the secret {} already exists.",
                            input.name
                        )))
                    }
                    None => Err(ServiceError::already_exists(format!(
                        "The operation failed because the secret {} already exists.",
                        input.name
                    ))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_secret_value(
        &self,
        ctx: &RequestContext,
        input: GetSecretValueInput,
    ) -> ServiceResult<SecretValueOutput> {
        self.read_secret_value(ctx, input, true).await
    }

    /// GetSecretValue; `note_access` records LastAccessedDate (a client retrieving the value), which a
    /// read on the server's own account (fingerprints for a scan) must not.
    pub(crate) async fn read_secret_value(
        &self,
        ctx: &RequestContext,
        input: GetSecretValueInput,
        note_access: bool,
    ) -> ServiceResult<SecretValueOutput> {
        if let Some(v) = &input.version_id {
            validate::version_id(v, "VersionId")?;
        }
        if let Some(s) = &input.version_stage {
            validate::staging_label(s)?;
        }
        let state = self
            .authorized_secret(ctx, "secretsmanager:GetSecretValue", &input.secret_id, |mut a| {
                if let Some(v) = &input.version_id {
                    a = a.key("secretsmanager:VersionId", v.as_str());
                }
                if let Some(s) = &input.version_stage {
                    a = a.key("secretsmanager:VersionStage", s.as_str());
                }
                a
            })
            .await?;
        not_deleted(&state)?;
        let version = select_version(&state, input.version_id.as_deref(), input.version_stage.as_deref())?;
        let key_ids = envelope_key_ids([version.envelope.as_slice()]);
        self.warm_keys(&state.secret.region, &key_ids).await?;
        self.authorize_opening(ctx, &state.secret.region, &key_ids).await?;
        let value = self.open_value(&state.secret, version)?;
        if note_access {
            self.note_access(&state);
        }
        Ok(SecretValueOutput {
            arn: state.secret.arn.clone(),
            name: state.secret.name.clone(),
            version_id: version.version_id.clone(),
            value,
            version_stages: version.stages.clone(),
            created: version.created,
        })
    }

    /// GetParameter on `/aws/reference/secretsmanager/<secret-id>`: a secret read through Parameter
    /// Store, as AWS allows. The caller needs `ssm:GetParameter` on the reference's parameter ARN and
    /// `secretsmanager:GetSecretValue` on the secret (with `kms:Decrypt` under a customer key); the
    /// secret's description comes with the value (no `secretsmanager:DescribeSecret` needed).
    pub async fn get_secret_reference(
        &self,
        ctx: &RequestContext,
        parameter_name: &str,
        input: GetSecretValueInput,
    ) -> ServiceResult<(SecretValueOutput, SecretDescription)> {
        if must_authorize(ctx, false) {
            let arn = crate::parameters::parameter_arn(&ctx.region, &self.config.account_id, parameter_name);
            self.authorize(ctx, &Access::new("ssm:GetParameter", &arn)).await?;
        }
        let value = self.get_secret_value(ctx, input).await?;
        let state = self.resolve(ctx, &value.arn, false).await?;
        Ok((value, describe(&state)))
    }

    /// Records LastAccessedDate (day-granular, as AWS reports it) at most once per secret per day,
    /// off the request path: a read never waits for a write.
    fn note_access(&self, state: &SecretState) {
        let today = start_of_day(self.clock.now_millis());
        if state.secret.last_accessed == Some(today) {
            return;
        }
        self.cache.set_last_accessed(&state.secret.arn, state.secret.revision, today);
        let store = self.store.clone();
        let arn = state.secret.arn.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_secret_accessed(&arn, today).await {
                tracing::warn!(error = %e, %arn, "recording the last access date failed");
            }
        });
    }

    pub async fn batch_get_secret_value(
        &self,
        ctx: &RequestContext,
        input: BatchGetInput,
    ) -> ServiceResult<BatchGetOutput> {
        match (&input.secret_ids, &input.filters) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::invalid_parameter(
                    "Either 'SecretIdList' or 'Filters' must be provided, but not both.",
                ))
            }
            (None, None) => {
                return Err(ServiceError::invalid_parameter("Either 'SecretIdList' or 'Filters' must be provided."))
            }
            _ => {}
        }
        // Each secret's value also needs secretsmanager:GetSecretValue on it: a denied one is listed
        // in Errors (AccessDeniedException), as in AWS.
        self.authorize_secrets_action(ctx, "secretsmanager:BatchGetSecretValue").await?;
        if let Some(ids) = input.secret_ids {
            if ids.is_empty() || ids.len() > 20 {
                return Err(ServiceError::invalid_parameter("SecretIdList must contain between 1 and 20 secret ids."));
            }
            if input.max_results.is_some() {
                return Err(ServiceError::invalid_parameter("MaxResults can only be used with Filters."));
            }
            let mut values = Vec::new();
            let mut errors = Vec::new();
            for id in ids {
                let got = self
                    .get_secret_value(ctx, GetSecretValueInput { secret_id: id.clone(), ..Default::default() })
                    .await;
                match got {
                    Ok(v) => values.push(v),
                    Err(error) if error.kind == ErrorKind::Unavailable || error.kind == ErrorKind::Internal => {
                        return Err(error)
                    }
                    Err(error) => errors.push(BatchGetError { secret_id: id, error }),
                }
            }
            return Ok(BatchGetOutput { values, errors, next_token: None });
        }
        let filters = CompiledFilters::compile(input.filters.as_deref().unwrap_or_default())?;
        let page_size = validate::max_results(input.max_results, 20)?.unwrap_or(20);
        let offset = list::decode_token(input.next_token.as_deref())?;
        let mut records: Vec<SecretRecord> = self
            .store
            .list_secrets(&ctx.region)
            .await?
            .into_iter()
            .filter(|s| s.deletion_date.is_none() && filters.matches(s))
            .collect();
        list::sort(&mut records, SortBy::CreatedDate, false);
        let (page, next_token) = list::page(records, offset, page_size);
        let mut values = Vec::new();
        let mut errors = Vec::new();
        for record in page {
            let got = self
                .get_secret_value(ctx, GetSecretValueInput { secret_id: record.arn.clone(), ..Default::default() })
                .await;
            match got {
                Ok(v) => values.push(v),
                Err(error) => errors.push(BatchGetError { secret_id: record.arn, error }),
            }
        }
        Ok(BatchGetOutput { values, errors, next_token })
    }

    pub async fn put_secret_value(
        &self,
        ctx: &RequestContext,
        input: PutSecretValueInput,
    ) -> ServiceResult<PutSecretValueOutput> {
        let value = input
            .value
            .ok_or_else(|| ServiceError::invalid_parameter("You must provide either SecretString or SecretBinary."))?;
        validate_value(&value)?;
        let token = require_token(input.client_request_token.as_deref())?;
        let stages = input.version_stages.unwrap_or_else(|| vec![AWSCURRENT.to_string()]);
        if stages.is_empty() || stages.len() > 20 {
            return Err(ServiceError::invalid_parameter("VersionStages must contain between 1 and 20 labels."));
        }
        stages.iter().try_for_each(|s| validate::staging_label(s))?;
        let now = self.clock.now_millis();
        let current = self
            .authorized_secret(ctx, "secretsmanager:PutSecretValue", &input.secret_id, |a| {
                a.keys("secretsmanager:VersionStage", stages.clone())
            })
            .await?;
        let key = self.secret_key(&current.secret.region, current.secret.kms_key_id.as_deref()).await?;
        self.authorize_sealing(ctx, &key).await?;
        self.warm_secret_keys(&current).await?;
        self.modify(ctx, &input.secret_id, |state| {
            not_deleted(state)?;
            let (change, final_stages) =
                self.decide_new_version(state, &token, &value, &stages, now, state.secret.clone(), &key)?;
            let output = PutSecretValueOutput {
                arn: state.secret.arn.clone(),
                name: state.secret.name.clone(),
                version_id: token.clone(),
                version_stages: final_stages,
            };
            Ok(version_decision(state, change, output))
        })
        .await
    }

    pub async fn update_secret(&self, ctx: &RequestContext, input: UpdateSecretInput) -> ServiceResult<SecretIdentity> {
        if let Some(d) = &input.description {
            validate::description(d)?;
        }
        let token = match &input.value {
            Some(value) => {
                validate_value(value)?;
                Some(require_token(input.client_request_token.as_deref())?)
            }
            None => None,
        };
        let now = self.clock.now_millis();
        let current = self
            .authorized_secret(ctx, "secretsmanager:UpdateSecret", &input.secret_id, |a| {
                with_kms_key_id(a, input.kms_key_id.as_deref())
            })
            .await?;
        let key_ref = input.kms_key_id.as_deref().or(current.secret.kms_key_id.as_deref());
        // A new KmsKeyId must name a usable key even when no value comes with it.
        let key = self.secret_key(&current.secret.region, key_ref).await?;
        // A new value, or the labelled versions moving to a new key, are sealed under it.
        if input.value.is_some() || (input.kms_key_id.is_some() && input.kms_key_id != current.secret.kms_key_id) {
            self.authorize_sealing(ctx, &key).await?;
        }
        self.warm_secret_keys(&current).await?;
        let identity = self
            .modify(ctx, &input.secret_id, |state| {
                not_deleted(state)?;
                let mut secret = state.secret.clone();
                if let Some(d) = &input.description {
                    secret.description = Some(d.clone());
                }
                if let Some(k) = &input.kms_key_id {
                    secret.kms_key_id = Some(k.clone());
                }
                let identity = SecretIdentity {
                    arn: state.secret.arn.clone(),
                    name: state.secret.name.clone(),
                    version_id: token.clone(),
                };
                match (&input.value, &token) {
                    (Some(value), Some(token)) => {
                        let (change, _) = self.decide_new_version(
                            state,
                            token,
                            value,
                            &[AWSCURRENT.to_string()],
                            now,
                            secret.clone(),
                            &key,
                        )?;
                        match change {
                            Some(c) => Ok(version_decision(state, Some(c), identity)),
                            // Same token and value: only the metadata may still need writing.
                            None => Ok(metadata_decision(state, secret, now, identity)),
                        }
                    }
                    _ => Ok(metadata_decision(state, secret, now, identity)),
                }
            })
            .await?;
        // A new key takes over the labelled versions at once (their data keys re-wrapped, values untouched),
        // as Secrets Manager re-encrypts AWSCURRENT, AWSPENDING and AWSPREVIOUS; the scheduler's pass
        // finishes the job if this is interrupted.
        if input.kms_key_id.is_some() && input.kms_key_id != current.secret.kms_key_id {
            self.rewrap_secret_now(&current.secret.region, &identity.arn).await?;
        }
        Ok(identity)
    }

    pub async fn describe_secret(&self, ctx: &RequestContext, secret_id: &str) -> ServiceResult<SecretDescription> {
        let state = self.authorized_secret(ctx, "secretsmanager:DescribeSecret", secret_id, |a| a).await?;
        Ok(describe(&state))
    }

    pub async fn list_secrets(
        &self,
        ctx: &RequestContext,
        input: ListSecretsInput,
    ) -> ServiceResult<ListSecretsOutput> {
        let page_size = validate::max_results(input.max_results, 100)?.unwrap_or(100);
        let filters = CompiledFilters::compile(&input.filters)?;
        let sort_by = input.sort_by.as_deref().map(SortBy::parse).transpose()?.unwrap_or_default();
        let descending = match input.sort_order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(ServiceError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]"
                )))
            }
        };
        let offset = list::decode_token(input.next_token.as_deref())?;
        self.authorize_secrets_action(ctx, "secretsmanager:ListSecrets").await?;
        let mut records: Vec<SecretRecord> = self
            .store
            .list_secrets(&ctx.region)
            .await?
            .into_iter()
            .filter(|s| (input.include_planned_deletion || s.deletion_date.is_none()) && filters.matches(s))
            .collect();
        list::sort(&mut records, sort_by, descending);
        let (page, next_token) = list::page(records, offset, page_size);
        let mut secrets = Vec::with_capacity(page.len());
        for record in page {
            // Version labels come from the full state; the cache usually has it.
            let state = self.load_by_arn(&record.arn, false).await?;
            match state {
                Some(state) => secrets.push(describe(&state)),
                None => continue,
            }
        }
        Ok(ListSecretsOutput { secrets, next_token })
    }

    pub async fn list_secret_version_ids(
        &self,
        ctx: &RequestContext,
        input: ListVersionIdsInput,
    ) -> ServiceResult<ListVersionIdsOutput> {
        let page_size = validate::max_results(input.max_results, 100)?.unwrap_or(100);
        let offset = list::decode_token(input.next_token.as_deref())?;
        let state = self.authorized_secret(ctx, "secretsmanager:ListSecretVersionIds", &input.secret_id, |a| a).await?;
        self.warm_secret_keys(&state).await?;
        let versions: Vec<VersionSummary> = state
            .versions
            .iter()
            .rev()
            .filter(|v| input.include_deprecated || !v.stages.is_empty())
            .map(|v| VersionSummary {
                version_id: v.version_id.clone(),
                stages: v.stages.clone(),
                created: v.created,
                // The customer key that actually wraps this version (it differs from the secret's
                // KmsKeyId for versions written before a key change); none for the default key.
                kms_key_id: self.envelope_customer_key_arn(&state.secret.region, &v.envelope),
            })
            .collect();
        let (versions, next_token) = list::page(versions, offset, page_size);
        Ok(ListVersionIdsOutput {
            arn: state.secret.arn.clone(),
            name: state.secret.name.clone(),
            versions,
            next_token,
        })
    }

    pub async fn update_secret_version_stage(
        &self,
        ctx: &RequestContext,
        input: UpdateVersionStageInput,
    ) -> ServiceResult<SecretIdentity> {
        validate::staging_label(&input.version_stage)?;
        if let Some(v) = &input.move_to_version_id {
            validate::version_id(v, "MoveToVersionId")?;
        }
        if let Some(v) = &input.remove_from_version_id {
            validate::version_id(v, "RemoveFromVersionId")?;
        }
        self.authorized_secret(ctx, "secretsmanager:UpdateSecretVersionStage", &input.secret_id, |a| {
            a.key("secretsmanager:VersionStage", input.version_stage.as_str())
        })
        .await?;
        let now = self.clock.now_millis();
        self.modify(ctx, &input.secret_id, |state| {
            not_deleted(state)?;
            let stage = input.version_stage.as_str();
            let mut board = LabelBoard::from_versions(&state.versions);
            let holder = board.holder_of(stage).map(str::to_string);
            if let Some(from) = &input.remove_from_version_id {
                if !board.contains(from) {
                    return Err(ServiceError::not_found(format!(
                        "Secrets Manager can't find the specified secret value for VersionId: {from}"
                    )));
                }
                if holder.as_deref() != Some(from.as_str()) {
                    return Err(ServiceError::invalid_parameter(format!(
                        "The staging label {stage} is not attached to version {from}, so you can't remove it from that version."
                    )));
                }
            }
            match &input.move_to_version_id {
                Some(to) => {
                    if !board.contains(to) {
                        return Err(ServiceError::not_found(format!(
                            "Secrets Manager can't find the specified secret value for VersionId: {to}"
                        )));
                    }
                    if let Some(current) = &holder {
                        if current != to && input.remove_from_version_id.as_deref() != Some(current.as_str()) {
                            return Err(ServiceError::invalid_parameter(format!(
                                "The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently attached to version {current}, so you must explicitly reference that version in RemoveFromVersionId."
                            )));
                        }
                    }
                    board.move_label(stage, to)?;
                }
                None => {
                    let from = input.remove_from_version_id.as_deref().ok_or_else(|| {
                        ServiceError::invalid_parameter("You must specify MoveToVersionId, RemoveFromVersionId, or both.")
                    })?;
                    if stage == AWSCURRENT {
                        return Err(ServiceError::invalid_parameter(
                            "You can't remove the staging label AWSCURRENT from a version without moving it to another version.",
                        ));
                    }
                    board.remove_label(stage, from);
                }
            }
            let identity = SecretIdentity {
                arn: state.secret.arn.clone(),
                name: state.secret.name.clone(),
                version_id: None,
            };
            let stage_updates = board.changed_stages();
            if stage_updates.is_empty() {
                return Ok(Decision { write: None, new_state: None, output: identity });
            }
            let mut secret = state.secret.clone();
            secret.last_changed = now;
            secret.revision += 1;
            let mut new_state = SecretState { secret: secret.clone(), versions: state.versions.clone() };
            apply_stage_updates(&mut new_state.versions, &stage_updates);
            Ok(Decision {
                write: Some(SecretWrite::Update {
                    expected_revision: state.secret.revision,
                    secret,
                    new_versions: vec![],
                    stage_updates,
                    deleted_versions: vec![],
                }),
                new_state: Some(new_state),
                output: identity,
            })
        })
        .await
    }

    pub async fn delete_secret(
        &self,
        ctx: &RequestContext,
        input: DeleteSecretInput,
    ) -> ServiceResult<DeleteSecretOutput> {
        let force = input.force_delete_without_recovery.unwrap_or(false);
        if let Some(days) = input.recovery_window_in_days {
            if !(7..=30).contains(&days) {
                return Err(ServiceError::invalid_parameter(
                    "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
                ));
            }
            if force {
                return Err(ServiceError::invalid_parameter(
                    "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
                ));
            }
        }
        let now = self.clock.now_millis();
        let authorized = self
            .authorized_secret(ctx, "secretsmanager:DeleteSecret", &input.secret_id, |mut a| {
                if let Some(days) = input.recovery_window_in_days {
                    a = a.key("secretsmanager:RecoveryWindowInDays", days.to_string());
                }
                if let Some(force) = input.force_delete_without_recovery {
                    a = a.key("secretsmanager:ForceDeleteWithoutRecovery", force.to_string());
                }
                a
            })
            .await;
        match authorized {
            Ok(_) => {}
            // Forcing the deletion of a secret that does not exist is not an error in Secrets Manager.
            Err(e) if force && e.kind == ErrorKind::NotFound => {
                return Ok(DeleteSecretOutput {
                    arn: input.secret_id.clone(),
                    name: input.secret_id,
                    deletion_date: now,
                })
            }
            Err(e) => return Err(e),
        }
        let window_days = input.recovery_window_in_days.unwrap_or(30);
        let result = self
            .modify(ctx, &input.secret_id, |state| {
                let output = |date| DeleteSecretOutput {
                    arn: state.secret.arn.clone(),
                    name: state.secret.name.clone(),
                    deletion_date: date,
                };
                if force {
                    return Ok(Decision {
                        write: Some(SecretWrite::Delete {
                            arn: state.secret.arn.clone(),
                            expected_revision: state.secret.revision,
                        }),
                        new_state: None,
                        output: output(now),
                    });
                }
                if state.secret.deletion_date.is_some() {
                    return Err(ServiceError::invalid_request(MARKED_FOR_DELETION));
                }
                let date = now + window_days * MILLIS_PER_DAY;
                let mut secret = state.secret.clone();
                secret.deletion_date = Some(date);
                Ok(metadata_only(state, secret, output(date)))
            })
            .await;
        match result {
            // Forcing the deletion of a secret that does not exist is not an error in Secrets Manager.
            Err(e) if force && e.kind == ErrorKind::NotFound => {
                Ok(DeleteSecretOutput { arn: input.secret_id.clone(), name: input.secret_id, deletion_date: now })
            }
            other => other,
        }
    }

    pub async fn restore_secret(&self, ctx: &RequestContext, secret_id: &str) -> ServiceResult<SecretIdentity> {
        self.authorized_secret(ctx, "secretsmanager:RestoreSecret", secret_id, |a| a).await?;
        self.modify(ctx, secret_id, |state| {
            let identity =
                SecretIdentity { arn: state.secret.arn.clone(), name: state.secret.name.clone(), version_id: None };
            if state.secret.deletion_date.is_none() {
                return Ok(Decision { write: None, new_state: None, output: identity });
            }
            let mut secret = state.secret.clone();
            secret.deletion_date = None;
            Ok(metadata_only(state, secret, identity))
        })
        .await
    }

    pub async fn tag_resource(&self, ctx: &RequestContext, secret_id: &str, tags: Vec<Tag>) -> ServiceResult<()> {
        validate::tags(&tags)?;
        self.authorized_secret(ctx, "secretsmanager:TagResource", secret_id, |a| a.request_tags(&tags)).await?;
        self.modify(ctx, secret_id, |state| {
            not_deleted(state)?;
            let mut secret = state.secret.clone();
            validate::merge_tags(&mut secret.tags, &tags);
            validate::tag_count(secret.tags.len())?;
            Ok(metadata_only(state, secret, ()))
        })
        .await
    }

    pub async fn untag_resource(&self, ctx: &RequestContext, secret_id: &str, keys: Vec<String>) -> ServiceResult<()> {
        validate::tag_keys(&keys)?;
        self.authorized_secret(ctx, "secretsmanager:UntagResource", secret_id, |a| a.keys("aws:TagKeys", keys.clone()))
            .await?;
        self.modify(ctx, secret_id, |state| {
            not_deleted(state)?;
            let mut secret = state.secret.clone();
            secret.tags.retain(|t| !keys.contains(&t.key));
            if secret.tags == state.secret.tags {
                return Ok(Decision { write: None, new_state: None, output: () });
            }
            Ok(metadata_only(state, secret, ()))
        })
        .await
    }

    pub async fn get_random_password(&self, ctx: &RequestContext, rules: &PasswordRules) -> ServiceResult<SecretBytes> {
        self.authorize_secrets_action(ctx, "secretsmanager:GetRandomPassword").await?;
        generate_password(rules, &mut rand::rngs::OsRng).map(SecretBytes::from)
    }

    pub async fn put_resource_policy(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        policy: &str,
        block_public_policy: bool,
    ) -> ServiceResult<SecretIdentity> {
        self.authorized_secret(ctx, "secretsmanager:PutResourcePolicy", secret_id, |a| {
            a.key("secretsmanager:BlockPublicPolicy", block_public_policy.to_string())
        })
        .await?;
        let parsed = check_policy_document(policy)?;
        if block_public_policy && grants_public_access(&parsed, policy) {
            return Err(ServiceError::new(
                ErrorKind::PublicPolicy,
                "This resource policy grants public access to the secret. Remove the broad access, or set BlockPublicPolicy to false.",
            ));
        }
        self.modify(ctx, secret_id, |state| {
            not_deleted(state)?;
            let mut secret = state.secret.clone();
            secret.resource_policy = Some(policy.to_string());
            let identity =
                SecretIdentity { arn: state.secret.arn.clone(), name: state.secret.name.clone(), version_id: None };
            Ok(metadata_only(state, secret, identity))
        })
        .await
    }

    pub async fn get_resource_policy(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
    ) -> ServiceResult<ResourcePolicyOutput> {
        let state = self.authorized_secret(ctx, "secretsmanager:GetResourcePolicy", secret_id, |a| a).await?;
        Ok(ResourcePolicyOutput {
            arn: state.secret.arn.clone(),
            name: state.secret.name.clone(),
            policy: state.secret.resource_policy.clone(),
        })
    }

    pub async fn delete_resource_policy(&self, ctx: &RequestContext, secret_id: &str) -> ServiceResult<SecretIdentity> {
        self.authorized_secret(ctx, "secretsmanager:DeleteResourcePolicy", secret_id, |a| a).await?;
        self.modify(ctx, secret_id, |state| {
            let identity =
                SecretIdentity { arn: state.secret.arn.clone(), name: state.secret.name.clone(), version_id: None };
            if state.secret.resource_policy.is_none() {
                return Ok(Decision { write: None, new_state: None, output: identity });
            }
            let mut secret = state.secret.clone();
            secret.resource_policy = None;
            Ok(metadata_only(state, secret, identity))
        })
        .await
    }

    pub async fn validate_resource_policy(
        &self,
        ctx: &RequestContext,
        secret_id: Option<&str>,
        policy: &str,
    ) -> ServiceResult<PolicyValidation> {
        match secret_id {
            Some(id) => {
                self.authorized_secret(ctx, "secretsmanager:ValidateResourcePolicy", id, |a| a).await?;
            }
            None => self.authorize_secrets_action(ctx, "secretsmanager:ValidateResourcePolicy").await?,
        }
        Ok(match check_policy_document(policy) {
            Ok(_) => PolicyValidation { passed: true, errors: vec![] },
            Err(e) => PolicyValidation { passed: false, errors: vec![("SYNTAX_CHECK".to_string(), e.message)] },
        })
    }
}

/// The audit log's name for Secrets Manager.
pub const SECRETS_EVENT_SOURCE: &str = "secretsmanager.amazonaws.com";

impl Service {
    /// Carries out scheduled deletions whose recovery window has ended. Called by the server's
    /// scheduler; returns how many secrets were removed.
    pub async fn purge_due_deletions(&self) -> ServiceResult<usize> {
        let now = self.clock.now_millis();
        let due = self.store.secrets_due_for_deletion(now).await?;
        let mut purged = 0;
        for (arn, revision) in due {
            let region = arn.split(':').nth(3).unwrap_or_default();
            let ctx = RequestContext::internal(
                &self.config.account_id,
                region,
                crate::context::ActorSource::Scheduler,
                SECRETS_EVENT_SOURCE,
                "DeleteSecret",
            );
            ctx.audit.resource(&arn);
            let write = SecretWrite::Delete { arn: arn.clone(), expected_revision: revision };
            let change = self.secret_change(&ctx, None, &write);
            let response = serde_json::json!({ "aRN": arn });
            match self.with_change_event(&ctx, response, |event| self.store.write_secret(write, event)).await {
                Ok(()) => {
                    self.cache.invalidate(&arn);
                    self.publish_change(change);
                    purged += 1;
                    tracing::info!(%arn, "scheduled deletion carried out");
                }
                // Restored or changed meanwhile: the next pass re-evaluates it.
                Err(StoreError::Conflict) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            self.cache.invalidate(&arn);
        }
        Ok(purged)
    }
}

/// `secretsmanager:KmsKeyId` when the request names a key.
fn with_kms_key_id<'a>(access: Access<'a>, kms_key_id: Option<&str>) -> Access<'a> {
    match kms_key_id {
        Some(k) => access.key("secretsmanager:KmsKeyId", k),
        None => access,
    }
}

fn select_version<'a>(
    state: &'a SecretState,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> ServiceResult<&'a VersionRecord> {
    match (version_id, stage) {
        (Some(id), stage) => {
            let v = state.versions.iter().find(|v| v.version_id == id).ok_or_else(|| {
                ServiceError::not_found(format!(
                    "Secrets Manager can't find the specified secret value for VersionId: {id}"
                ))
            })?;
            if let Some(stage) = stage {
                if !v.stages.iter().any(|s| s == stage) {
                    return Err(ServiceError::invalid_request(
                        "You provided a VersionStage that is not associated to the provided VersionId.",
                    ));
                }
            }
            Ok(v)
        }
        (None, stage) => {
            let stage = stage.unwrap_or(AWSCURRENT);
            state.versions.iter().find(|v| v.stages.iter().any(|s| s == stage)).ok_or_else(|| {
                ServiceError::not_found(format!(
                    "Secrets Manager can't find the specified secret value for staging label: {stage}"
                ))
            })
        }
    }
}

fn describe(state: &SecretState) -> SecretDescription {
    let mut versions_to_stages: Vec<(String, Vec<String>)> = state
        .versions
        .iter()
        .filter(|v| !v.stages.is_empty())
        .map(|v| (v.version_id.clone(), v.stages.clone()))
        .collect();
    // While a rotation runs, Secrets Manager lists its token under AWSPENDING before createSecret has
    // stored a value, and rotation functions check for it: show it the same way.
    if let Some(run) = &state.secret.rotation.in_progress {
        if !state.versions.iter().any(|v| v.version_id == run.token) {
            versions_to_stages.push((run.token.clone(), vec![labels::AWSPENDING.to_string()]));
        }
    }
    SecretDescription { record: state.secret.clone(), versions_to_stages }
}

fn apply_stage_updates(versions: &mut [VersionRecord], updates: &[(String, Vec<String>)]) {
    for (id, stages) in updates {
        if let Some(v) = versions.iter_mut().find(|v| &v.version_id == id) {
            v.stages = stages.clone();
        }
    }
}

/// A write that changes only the secret's metadata.
fn metadata_only<R>(state: &SecretState, mut secret: SecretRecord, output: R) -> Decision<R> {
    secret.revision = state.secret.revision + 1;
    let new_state = SecretState { secret: secret.clone(), versions: state.versions.clone() };
    Decision {
        write: Some(SecretWrite::Update {
            expected_revision: state.secret.revision,
            secret,
            new_versions: vec![],
            stage_updates: vec![],
            deleted_versions: vec![],
        }),
        new_state: Some(new_state),
        output,
    }
}

/// Like [`metadata_only`], but skips the write when nothing changed and stamps LastChangedDate.
fn metadata_decision<R>(state: &SecretState, mut secret: SecretRecord, now: EpochMillis, output: R) -> Decision<R> {
    if secret == state.secret {
        return Decision { write: None, new_state: None, output };
    }
    secret.last_changed = now;
    metadata_only(state, secret, output)
}

/// Turns a decided new version (or an idempotent no-op) into the store write and the cached state.
fn version_decision<R>(state: &SecretState, change: Option<NewVersion>, output: R) -> Decision<R> {
    let Some(NewVersion { secret, version, board, pruned }) = change else {
        return Decision { write: None, new_state: None, output };
    };
    let stage_updates: Vec<(String, Vec<String>)> =
        board.changed_stages().into_iter().filter(|(id, _)| !pruned.contains(id)).collect();
    let mut versions: Vec<VersionRecord> =
        state.versions.iter().filter(|v| !pruned.contains(&v.version_id)).cloned().collect();
    apply_stage_updates(&mut versions, &stage_updates);
    versions.push(version.clone());
    Decision {
        write: Some(SecretWrite::Update {
            expected_revision: state.secret.revision,
            secret: secret.clone(),
            new_versions: vec![version],
            stage_updates,
            deleted_versions: pruned,
        }),
        new_state: Some(SecretState { secret, versions }),
        output,
    }
}

/// Structural check of a resource policy until the policy engine lands: JSON, an object with
/// `Version` and `Statement`, within the size limit.
fn check_policy_document(policy: &str) -> ServiceResult<coffer_policy::Policy> {
    if policy.is_empty() || policy.chars().count() > validate::MAX_RESOURCE_POLICY_CHARS {
        return Err(ServiceError::invalid_parameter(format!(
            "ResourcePolicy must be 1-{} characters long.",
            validate::MAX_RESOURCE_POLICY_CHARS
        )));
    }
    coffer_policy::Policy::parse("resource-policy", policy, coffer_policy::PolicyKind::Resource).map_err(|e| {
        ServiceError::new(ErrorKind::MalformedPolicy, format!("This resource policy contains a syntax error: {e}"))
    })
}

/// Condition keys that confine an `Allow` for everyone to known callers, so the statement is not
/// public (the keys AWS's public-access analysis treats as restricting).
const CONFINING_CONDITION_KEYS: &[&str] = &[
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceip",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:userid",
    "aws:username",
];

/// Whether a (valid) resource policy grants access to anyone: an `Allow` statement whose principal is
/// everyone (or a `NotPrincipal`) with no condition on a key that confines the caller.
fn grants_public_access(policy: &coffer_policy::Policy, document: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(document) else { return false };
    let raw: Vec<&serde_json::Value> = match doc.get("Statement") {
        Some(serde_json::Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => vec![],
    };
    policy.statements().iter().zip(raw).any(|(statement, raw)| {
        if statement.effect() != coffer_policy::Effect::Allow {
            return false;
        }
        let (principals, negated) = statement.principals();
        let everyone = negated || principals.iter().any(|p| matches!(p, coffer_policy::PrincipalEntry::Any));
        let confined = raw.get("Condition").and_then(|c| c.as_object()).is_some_and(|operators| {
            operators
                .values()
                .filter_map(|keys| keys.as_object())
                .any(|keys| keys.keys().any(|k| CONFINING_CONDITION_KEYS.contains(&k.to_ascii_lowercase().as_str())))
        });
        everyone && !confined
    })
}
