//! Parameter Store operations: put, get (with selectors), get by path, history, delete, labels. Every
//! parameter value is sealed at rest like a secret's; SecureString only changes what a read without
//! decryption returns (the ciphertext, never the plaintext).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::sync::Arc;

use base64::Engine;
use coffer_crypto::SecretBytes;
use coffer_store::{
    EpochMillis, ParameterQuery, ParameterState, ParameterVersionRecord, ParameterWrite, StoreError, Tag,
};

use super::labels::{check_label, LabelCheck, MAX_LABELS_PER_VERSION};
use super::names::{name_from_id, parameter_arn, parse_selector, validate_name, validate_path, Selector};
use super::version_to_drop;
use crate::context::RequestContext;
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::kms::{envelope_key_ids, must_authorize, LoadedKey, SSM_DEFAULT_ALIAS};
use crate::Service;

/// The audit log's name for Parameter Store.
pub const PARAMETERS_EVENT_SOURCE: &str = "ssm.amazonaws.com";

const STANDARD_MAX_VALUE: usize = 4096;
const ADVANCED_MAX_VALUE: usize = 8192;
const MAX_WRITE_ATTEMPTS: usize = 16;
const TYPES: [&str; 3] = ["String", "StringList", "SecureString"];
const DATA_TYPES: [&str; 3] = ["text", "aws:ec2:image", "aws:ssm:integration"];

#[derive(Debug, Default)]
pub struct PutParameterInput {
    pub name: String,
    pub value: Option<SecretBytes>,
    pub parameter_type: Option<String>,
    pub description: Option<String>,
    pub key_id: Option<String>,
    pub overwrite: bool,
    pub allowed_pattern: Option<String>,
    pub tags: Vec<Tag>,
    pub tier: Option<String>,
    pub policies: Option<String>,
    pub data_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutParameterOutput {
    pub version: i64,
    pub tier: String,
}

/// One parameter version as a read returns it. `value` is the plaintext, or for a SecureString read
/// without decryption the base64 ciphertext.
#[derive(Debug)]
pub struct ParameterValue {
    pub name: String,
    pub arn: String,
    pub parameter_type: String,
    pub value: SecretBytes,
    pub version: i64,
    pub selector: Option<String>,
    pub last_modified: EpochMillis,
    pub data_type: String,
}

/// One entry of GetParameterHistory.
#[derive(Debug)]
pub struct ParameterHistoryEntry {
    pub name: String,
    pub record: ParameterVersionRecord,
    pub value: SecretBytes,
}

#[derive(Debug)]
pub struct ParametersPage<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// GetParametersByPath's input.
#[derive(Debug, Clone, Copy)]
pub struct ByPathInput<'a> {
    pub path: &'a str,
    pub recursive: bool,
    pub filters: &'a [ParameterFilter],
    pub decrypt: bool,
    pub max_results: Option<i64>,
    pub next_token: Option<&'a str>,
}

#[derive(Debug, Default)]
pub struct LabelOutcome {
    pub invalid_labels: Vec<String>,
    pub version: i64,
}

/// Where a walk over all parameters stands (see [`Service::next_parameter_page`]).
#[derive(Debug, Default)]
pub(crate) struct ParameterWalk {
    after: Option<String>,
    done: bool,
}

pub(crate) fn value_aad(region: &str, name: &str, version: i64) -> Vec<u8> {
    format!("coffer parameter value v1\n{region}\n{name}\n{version}").into_bytes()
}

fn not_found(name: &str) -> ServiceError {
    ServiceError::not_found(format!("Parameter {name} not found."))
}

fn parent_path(name: &str) -> String {
    match name.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => name[..i].to_string(),
    }
}

fn encode_token(after: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("coffer-v1:{after}"))
}

fn decode_token(token: Option<&str>) -> ServiceResult<Option<String>> {
    let Some(token) = token else { return Ok(None) };
    let invalid = || ServiceError::new(ErrorKind::InvalidNextToken, "The nextToken is not valid.");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    text.strip_prefix("coffer-v1:").map(|s| Some(s.to_string())).ok_or_else(invalid)
}

fn max_results(n: Option<i64>, max: i64, field: &str) -> ServiceResult<usize> {
    match n {
        None => Ok(max as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(ServiceError::validation(format!(
            "1 validation error detected: Value '{n}' at '{field}' failed to satisfy constraint: Member must have value {} {}",
            if n < 1 { "greater than or equal to" } else { "less than or equal to" },
            if n < 1 { 1 } else { max }
        ))),
    }
}

impl Service {
    /// Whether the parameter's Expiration policy has passed: it then reads as deleted, and the
    /// scheduler removes it for good.
    fn expired(&self, p: &ParameterState) -> bool {
        let latest = p.versions.last();
        latest
            .and_then(|v| super::policies::expiration(v.policies.as_deref()))
            .is_some_and(|at| at <= self.clock.now_millis())
    }

    /// Loads a parameter that is there for readers (not expired).
    async fn load_live_parameter(&self, region: &str, name: &str) -> ServiceResult<Option<Arc<ParameterState>>> {
        if let Some(hit) = self.parameter_cache.get(region, name) {
            // Several nodes over one store: serve the cached copy only while it is the stored revision.
            if !self.config.validate_cached_reads
                || self.store.parameter_revision(region, name).await? == Some(hit.revision)
            {
                return Ok(Some(hit).filter(|p| !self.expired(p)));
            }
        }
        let epoch = self.parameter_cache.epoch();
        let loaded = self.store.load_parameter(region, name).await?.map(Arc::new);
        if let Some(p) = &loaded {
            self.parameter_cache.store(p.clone(), epoch);
        }
        Ok(loaded.filter(|p| !self.expired(p)))
    }

    /// Commits a parameter change and drops the cached copy, whatever the outcome (a conflict means
    /// the cached copy is stale too); a committed change goes to change subscribers.
    async fn write_parameter(
        &self,
        ctx: &RequestContext,
        write: ParameterWrite,
        response: serde_json::Value,
    ) -> Result<(), StoreError> {
        let (region, name) = match &write {
            ParameterWrite::Create(p) => (p.region.clone(), p.name.clone()),
            ParameterWrite::Update { region, name, .. } | ParameterWrite::Delete { region, name, .. } => {
                (region.clone(), name.clone())
            }
        };
        let change = self.parameter_change(ctx, &write);
        let result = self.with_change_event(ctx, response, |event| self.store.write_parameter(write, event)).await;
        self.parameter_cache.invalidate(&region, &name);
        if result.is_ok() {
            self.publish_change(change);
        }
        result
    }

    /// The next page of a walk over every parameter of a region, by name; `None` when the walk is over.
    /// `cursor` starts as [`ParameterWalk::default`] and is advanced by each call.
    pub(crate) async fn next_parameter_page(
        &self,
        region: &str,
        cursor: &mut ParameterWalk,
        latest_only: bool,
    ) -> ServiceResult<Option<Vec<ParameterState>>> {
        const PAGE: usize = 500;
        if cursor.done {
            return Ok(None);
        }
        let page = self
            .store
            .list_parameters(ParameterQuery {
                region: region.to_string(),
                path: "/".into(),
                recursive: true,
                after: cursor.after.take(),
                limit: PAGE,
                latest_only,
            })
            .await?;
        cursor.done = page.len() < PAGE;
        cursor.after = page.last().map(|p| p.name.clone());
        Ok((!page.is_empty()).then_some(page))
    }

    /// Deletes parameters whose Expiration policy has passed; called by the server's scheduler.
    /// Returns how many were removed.
    pub async fn purge_expired_parameters(&self, region: &str) -> ServiceResult<usize> {
        let mut purged = 0;
        let mut walk = ParameterWalk::default();
        // Expiration is decided by the newest version's policies.
        while let Some(page) = self.next_parameter_page(region, &mut walk, true).await? {
            for p in page.iter().filter(|p| self.expired(p)) {
                let write = ParameterWrite::Delete {
                    region: p.region.clone(),
                    name: p.name.clone(),
                    expected_revision: p.revision,
                };
                let ctx = RequestContext::internal(
                    &self.config.account_id,
                    region,
                    crate::context::ActorSource::Scheduler,
                    PARAMETERS_EVENT_SOURCE,
                    "DeleteParameter",
                );
                ctx.audit.resource(&parameter_arn(region, &self.config.account_id, &p.name));
                match self.write_parameter(&ctx, write, serde_json::Value::Null).await {
                    Ok(()) => {
                        purged += 1;
                        tracing::info!(name = %p.name, "parameter expired and was deleted");
                    }
                    // Overwritten (perhaps with a new policy) or deleted meanwhile: the next pass decides.
                    Err(StoreError::Conflict | StoreError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(purged)
    }

    fn open_parameter(
        &self,
        p: &ParameterState,
        v: &ParameterVersionRecord,
        decrypt: bool,
    ) -> ServiceResult<SecretBytes> {
        if v.parameter_type == "SecureString" && !decrypt {
            return Ok(SecretBytes::from(STANDARD.encode(&v.envelope)));
        }
        // KMS errors (a disabled key, one pending deletion) reach the caller as KMS reports them.
        self.open_envelope(&p.region, &v.envelope, &value_aad(&p.region, &p.name, v.version)).map_err(|e| {
            if e.kind == ErrorKind::DecryptionFailure {
                tracing::error!(name = %p.name, version = v.version, "opening a parameter value failed");
                ServiceError::new(ErrorKind::DecryptionFailure, "The parameter value could not be decrypted.")
            } else {
                e
            }
        })
    }

    /// The KMS keys of the versions about to be decrypted (none when they will not be).
    fn parameter_key_ids<'a>(
        versions: impl IntoIterator<Item = &'a ParameterVersionRecord>,
        decrypt: bool,
    ) -> Vec<[u8; 16]> {
        if !decrypt {
            return Vec::new();
        }
        envelope_key_ids(
            versions.into_iter().filter(|v| v.parameter_type == "SecureString").map(|v| v.envelope.as_slice()),
        )
    }

    /// The key a SecureString is sealed under; an unknown one is SSM's InvalidKeyId.
    async fn parameter_key(&self, region: &str, key_id: Option<&str>) -> ServiceResult<Arc<LoadedKey>> {
        self.encryption_key(region, key_id, SSM_DEFAULT_ALIAS).await.map_err(|e| match e.kind {
            ErrorKind::KmsNotFound => ServiceError::new(ErrorKind::InvalidKeyId, e.message),
            _ => e,
        })
    }

    pub async fn put_parameter(
        &self,
        ctx: &RequestContext,
        input: PutParameterInput,
    ) -> ServiceResult<PutParameterOutput> {
        let name = validate_name(&input.name, &ctx.region, &self.config.account_id)?;
        let name = name.as_str();
        let value = input.value.ok_or_else(|| ServiceError::validation("Parameter value must not be empty."))?;
        if value.is_empty() {
            return Err(ServiceError::validation("Parameter value must not be empty."));
        }
        if let Some(t) = &input.parameter_type {
            if !TYPES.contains(&t.as_str()) {
                return Err(ServiceError::validation(format!(
                    "1 validation error detected: Value '{t}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"
                )));
            }
        }
        if let Some(d) = &input.data_type {
            if !DATA_TYPES.contains(&d.as_str()) {
                return Err(ServiceError::validation(format!("The following data type is not supported: {d}")));
            }
        }
        if let Some(d) = &input.description {
            if d.chars().count() > 1024 {
                return Err(ServiceError::validation("Description must be at most 1024 characters long."));
            }
        }
        let pattern = match &input.allowed_pattern {
            Some(p) if p.len() > 1024 => {
                return Err(ServiceError::new(ErrorKind::InvalidPattern, "The allowed pattern is too long."))
            }
            Some(p) => Some(regex::Regex::new(p).map_err(|_| {
                ServiceError::new(
                    ErrorKind::InvalidPattern,
                    format!("The allowed pattern {p} is not a valid regular expression."),
                )
            })?),
            None => None,
        };
        crate::secrets::validate::tags(&input.tags)?;
        let now = self.clock.now_millis();
        let mut rng = rand::rngs::OsRng;

        for _ in 0..MAX_WRITE_ATTEMPTS {
            let existing = self.store.load_parameter(&ctx.region, name).await?;
            self.authorize_parameter(ctx, "ssm:PutParameter", name, existing.as_ref(), |a| {
                if input.tags.is_empty() {
                    a
                } else {
                    a.request_tags(&input.tags)
                }
            })
            .await?;
            let latest = existing.as_ref().and_then(|p| p.versions.last());
            if existing.is_some() && !input.overwrite {
                return Err(ServiceError::already_exists(
                    "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
                ));
            }
            if existing.is_some() && !input.tags.is_empty() {
                return Err(ServiceError::validation(
                    "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
                ));
            }
            let parameter_type = match (&input.parameter_type, latest) {
                (Some(t), _) => t.clone(),
                (None, Some(l)) => l.parameter_type.clone(),
                (None, None) => {
                    return Err(ServiceError::validation("A parameter type is required when you create a parameter."))
                }
            };
            // What a new version does not say, it keeps from the latest one.
            let keep =
                |new: &Option<String>, old: Option<&Option<String>>| new.clone().or_else(|| old.cloned().flatten());
            let key_id = keep(&input.key_id, latest.map(|l| &l.key_id));
            let key_id = match parameter_type.as_str() {
                "SecureString" => Some(key_id.unwrap_or_else(|| SSM_DEFAULT_ALIAS.to_string())),
                _ if input.key_id.is_some() => {
                    return Err(ServiceError::validation("KeyId is required for SecureString type parameter only."))
                }
                _ => None,
            };
            let allowed_pattern = keep(&input.allowed_pattern, latest.map(|l| &l.allowed_pattern));
            let check_against = match (&pattern, &allowed_pattern) {
                (Some(p), _) => Some(p.clone()),
                (None, Some(p)) => regex::Regex::new(p).ok(),
                (None, None) => None,
            };
            if let Some(re) = check_against {
                let text = value.expose_str().map_err(|_| ServiceError::validation("Parameter value must be text."))?;
                if !re.is_match(text) {
                    return Err(ServiceError::new(
                        ErrorKind::PatternMismatch,
                        format!(
                            "Parameter value, cannot be validated against allowedPattern: {}",
                            allowed_pattern.clone().unwrap_or_default()
                        ),
                    ));
                }
            }
            let previous_tier = latest.map(|l| l.tier.clone());
            let tier = match (input.tier.as_deref(), previous_tier.as_deref()) {
                (Some("Standard"), Some("Advanced")) => {
                    return Err(ServiceError::validation(
                        "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier.",
                    ))
                }
                (Some(t @ ("Standard" | "Advanced")), _) => t.to_string(),
                (Some("Intelligent-Tiering"), _) | (None, None) | (None, Some("Standard")) if value.len() <= STANDARD_MAX_VALUE => {
                    "Standard".to_string()
                }
                (Some("Intelligent-Tiering"), _) => "Advanced".to_string(),
                (None, Some(t)) => t.to_string(),
                (None, None) => "Standard".to_string(),
                (Some(other), _) => {
                    return Err(ServiceError::validation(format!(
                        "1 validation error detected: Value '{other}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]"
                    )))
                }
            };
            let limit = if tier == "Advanced" { ADVANCED_MAX_VALUE } else { STANDARD_MAX_VALUE };
            if value.len() > limit {
                return Err(ServiceError::validation(format!(
                    "{tier} tier parameters support a maximum parameter value of {limit} characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier."
                )));
            }
            if let Some(policies) = &input.policies {
                if tier != "Advanced" {
                    return Err(ServiceError::validation(
                        "Parameter policies are supported only for the advanced-parameter tier.",
                    ));
                }
                super::policies::validate(policies, now)?;
            }
            let version = latest.map(|l| l.version + 1).unwrap_or(1);
            let aad = value_aad(&ctx.region, name, version);
            // SecureStrings are sealed under their KMS key; String and StringList values (which AWS
            // keeps unencrypted) are still sealed at rest, under the master key.
            let sealed = if parameter_type == "SecureString" {
                let key = self.parameter_key(&ctx.region, key_id.as_deref()).await?;
                self.authorize_parameter_sealing(ctx, &key, &tier).await?;
                key.newest()?.seal(&mut rng, value.expose(), &aad)
            } else {
                self.keyring.seal(&mut rng, value.expose(), &aad)
            };
            let envelope = sealed.map_err(|_| {
                ServiceError::new(ErrorKind::EncryptionFailure, "The parameter value could not be encrypted.")
            })?;
            let record = ParameterVersionRecord {
                version,
                parameter_type,
                envelope,
                description: keep(&input.description, latest.map(|l| &l.description)),
                key_id,
                allowed_pattern,
                tier: tier.clone(),
                data_type: input
                    .data_type
                    .clone()
                    .or_else(|| latest.map(|l| l.data_type.clone()))
                    .unwrap_or_else(|| "text".into()),
                policies: keep(&input.policies, latest.map(|l| &l.policies)),
                labels: vec![],
                last_modified: now,
                last_modified_user: ctx.principal.arn.clone(),
            };
            let write = match &existing {
                None => ParameterWrite::Create(ParameterState {
                    region: ctx.region.clone(),
                    name: name.to_string(),
                    parent_path: parent_path(name),
                    tags: input.tags.clone(),
                    revision: 1,
                    versions: vec![record],
                }),
                Some(p) => {
                    let history: Vec<(i64, usize)> = p.versions.iter().map(|v| (v.version, v.labels.len())).collect();
                    ParameterWrite::Update {
                        expected_revision: p.revision,
                        region: p.region.clone(),
                        name: p.name.clone(),
                        revision: p.revision + 1,
                        tags: p.tags.clone(),
                        new_version: Some(record),
                        label_updates: vec![],
                        dropped_versions: version_to_drop(name, &history)?.into_iter().collect(),
                    }
                }
            };
            let response = serde_json::json!({ "version": version, "tier": tier });
            match self.write_parameter(ctx, write, response).await {
                Ok(()) => return Ok(PutParameterOutput { version, tier }),
                // Another writer got there first: decide again from what it wrote.
                Err(StoreError::Conflict | StoreError::AlreadyExists | StoreError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::new(
            ErrorKind::Unavailable,
            "The parameter is being modified concurrently; retry the request.",
        ))
    }

    fn select<'a>(p: &'a ParameterState, selector: &Selector, id: &str) -> ServiceResult<&'a ParameterVersionRecord> {
        match selector {
            Selector::Latest => p.versions.last().ok_or_else(|| not_found(id)),
            Selector::Version(v) => p.versions.iter().find(|r| r.version == *v).ok_or_else(|| {
                ServiceError::new(
                    ErrorKind::VersionNotFound,
                    format!(
                        "Systems Manager could not find version {v} of {}. Verify the version and try again.",
                        p.name
                    ),
                )
            }),
            Selector::Label(l) => p.versions.iter().find(|r| r.labels.contains(l)).ok_or_else(|| not_found(id)),
        }
    }

    fn parameter_value(
        &self,
        p: &ParameterState,
        v: &ParameterVersionRecord,
        selector: &Selector,
        decrypt: bool,
    ) -> ServiceResult<ParameterValue> {
        Ok(ParameterValue {
            name: p.name.clone(),
            arn: parameter_arn(&p.region, &self.config.account_id, &p.name),
            parameter_type: v.parameter_type.clone(),
            value: self.open_parameter(p, v, decrypt)?,
            version: v.version,
            selector: selector.as_response(),
            last_modified: v.last_modified,
            data_type: v.data_type.clone(),
        })
    }

    pub async fn get_parameter(&self, ctx: &RequestContext, id: &str, decrypt: bool) -> ServiceResult<ParameterValue> {
        self.get_parameter_as(ctx, "ssm:GetParameter", id, decrypt).await
    }

    /// GetParameter, authorized as `action` (GetParameter, or GetParameters for each of its names).
    async fn get_parameter_as(
        &self,
        ctx: &RequestContext,
        action: &str,
        id: &str,
        decrypt: bool,
    ) -> ServiceResult<ParameterValue> {
        let (name, selector) = parse_selector(id)?;
        let p = self.load_live_parameter(&ctx.region, &name).await?;
        self.authorize_parameter(ctx, action, &name, p.as_deref(), |a| a).await?;
        let p = p.ok_or_else(|| not_found(id))?;
        let v = Self::select(&p, &selector, id)?;
        let key_ids = Self::parameter_key_ids([v], decrypt);
        self.warm_keys(&p.region, &key_ids).await?;
        self.authorize_parameter_opening(ctx, &key_ids).await?;
        self.parameter_value(&p, v, &selector, decrypt)
    }

    /// GetParameters: found values sorted by name, and the ids that matched nothing.
    pub async fn get_parameters(
        &self,
        ctx: &RequestContext,
        ids: &[String],
        decrypt: bool,
    ) -> ServiceResult<(Vec<ParameterValue>, Vec<String>)> {
        if ids.is_empty() || ids.len() > 10 {
            return Err(ServiceError::validation("GetParameters accepts between 1 and 10 names."));
        }
        let mut unique: Vec<&String> = Vec::new();
        for id in ids {
            if !unique.contains(&id) {
                unique.push(id);
            }
        }
        let (mut found, mut invalid) = (Vec::new(), Vec::new());
        // Every name must be allowed: one that is not fails the whole call.
        for id in unique {
            match self.get_parameter_as(ctx, "ssm:GetParameters", id, decrypt).await {
                Ok(v) => found.push(v),
                Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::VersionNotFound) => {
                    invalid.push(id.clone())
                }
                Err(e) => return Err(e),
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((found, invalid))
    }

    pub async fn get_parameters_by_path(
        &self,
        ctx: &RequestContext,
        input: ByPathInput<'_>,
    ) -> ServiceResult<ParametersPage<ParameterValue>> {
        let ByPathInput { path, recursive, filters, decrypt, max_results: max, next_token } = input;
        validate_filters(filters, true)?;
        let path = validate_path(path)?;
        let limit = max_results(max, 10, "maxResults")?;
        let after = decode_token(next_token)?;
        self.authorize_parameter(ctx, "ssm:GetParametersByPath", &path, None, |a| a).await?;
        // The page's names come from an index-only range scan; the parameters themselves from the read
        // cache GetParameter uses (loading the misses), so a warm page costs one small query.
        let names = self
            .store
            .list_parameter_names(ParameterQuery {
                region: ctx.region.clone(),
                path,
                recursive,
                after,
                limit: limit + 1,
                latest_only: true,
            })
            .await?;
        let more = names.len() > limit;
        let mut page = Vec::with_capacity(limit);
        for name in names.iter().take(limit) {
            // Gone (deleted meanwhile) or expired: not listed, as if the scan had not seen it.
            if let Some(p) = self.load_live_parameter(&ctx.region, name).await? {
                page.push(p);
            }
        }
        let key_ids = Self::parameter_key_ids(
            page.iter().filter(|p| Self::parameter_passes(filters, p)).filter_map(|p| p.versions.last()),
            decrypt,
        );
        self.warm_keys(&ctx.region, &key_ids).await?;
        self.authorize_parameter_opening(ctx, &key_ids).await?;
        let mut items = Vec::with_capacity(limit);
        // As in SSM, filters apply within the page: a page may come back short with a NextToken.
        for p in page.iter().filter(|p| Self::parameter_passes(filters, p)) {
            if let Some(v) = p.versions.last() {
                items.push(self.parameter_value(p, v, &Selector::Latest, decrypt)?);
            }
        }
        let next_token = if more { names.get(limit - 1).map(|n| encode_token(n)) } else { None };
        Ok(ParametersPage { items, next_token })
    }

    pub async fn get_parameter_history(
        &self,
        ctx: &RequestContext,
        id: &str,
        decrypt: bool,
        max: Option<i64>,
        next_token: Option<&str>,
    ) -> ServiceResult<ParametersPage<ParameterHistoryEntry>> {
        let name = name_from_id(id);
        let limit = max_results(max, 50, "maxResults")?;
        let offset: usize = match decode_token(next_token)? {
            Some(n) => {
                n.parse().map_err(|_| ServiceError::new(ErrorKind::InvalidNextToken, "The nextToken is not valid."))?
            }
            None => 0,
        };
        let p = self.load_live_parameter(&ctx.region, name).await?;
        self.authorize_parameter(ctx, "ssm:GetParameterHistory", name, p.as_deref(), |a| a).await?;
        let p = p.ok_or_else(|| not_found(name))?;
        let key_ids = Self::parameter_key_ids(p.versions.iter().skip(offset).take(limit), decrypt);
        self.warm_keys(&p.region, &key_ids).await?;
        self.authorize_parameter_opening(ctx, &key_ids).await?;
        let mut items = Vec::new();
        for v in p.versions.iter().skip(offset).take(limit) {
            items.push(ParameterHistoryEntry {
                name: p.name.clone(),
                record: v.clone(),
                value: self.open_parameter(&p, v, decrypt)?,
            });
        }
        let next = offset + items.len();
        let next_token = (next < p.versions.len()).then(|| encode_token(&next.to_string()));
        Ok(ParametersPage { items, next_token })
    }

    pub async fn delete_parameter(&self, ctx: &RequestContext, id: &str) -> ServiceResult<()> {
        self.delete_parameter_as(ctx, Some("ssm:DeleteParameter"), id).await
    }

    /// DeleteParameter, authorized as `action` (`None`: the caller already was).
    async fn delete_parameter_as(&self, ctx: &RequestContext, action: Option<&str>, id: &str) -> ServiceResult<()> {
        let name = name_from_id(id);
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let p = self.store.load_parameter(&ctx.region, name).await?;
            if let Some(action) = action {
                self.authorize_parameter(ctx, action, name, p.as_ref(), |a| a).await?;
            }
            let p = p.ok_or_else(|| not_found(name))?;
            let write = ParameterWrite::Delete {
                region: p.region.clone(),
                name: p.name.clone(),
                expected_revision: p.revision,
            };
            match self.write_parameter(ctx, write, serde_json::Value::Null).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(not_found(name)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::new(
            ErrorKind::Unavailable,
            "The parameter is being modified concurrently; retry the request.",
        ))
    }

    /// DeleteParameters: (deleted, not found).
    pub async fn delete_parameters(
        &self,
        ctx: &RequestContext,
        ids: &[String],
    ) -> ServiceResult<(Vec<String>, Vec<String>)> {
        if ids.is_empty() || ids.len() > 10 {
            return Err(ServiceError::validation("DeleteParameters accepts between 1 and 10 names."));
        }
        // Every name must be allowed before any is deleted: one that is not fails the whole call.
        if must_authorize(ctx, false) {
            for id in ids {
                let name = name_from_id(id);
                let p = self.load_live_parameter(&ctx.region, name).await?;
                self.authorize_parameter(ctx, "ssm:DeleteParameters", name, p.as_deref(), |a| a).await?;
            }
        }
        let (mut deleted, mut invalid) = (Vec::new(), Vec::new());
        for id in ids {
            match self.delete_parameter_as(ctx, None, id).await {
                Ok(()) => deleted.push(id.clone()),
                Err(e) if e.kind == ErrorKind::NotFound => invalid.push(id.clone()),
                Err(e) => return Err(e),
            }
        }
        Ok((deleted, invalid))
    }

    /// LabelParameterVersion: attaches labels to a version (the latest by default), moving them from
    /// other versions; invalid labels are reported, not raised.
    pub async fn label_parameter_version(
        &self,
        ctx: &RequestContext,
        id: &str,
        version: Option<i64>,
        labels: &[String],
    ) -> ServiceResult<LabelOutcome> {
        if labels.is_empty() || labels.len() > 10 {
            return Err(ServiceError::validation("Labels must contain between 1 and 10 labels."));
        }
        let name = name_from_id(id);
        self.change_parameter_metadata(ctx, name, &[MetadataAction::Plain("ssm:LabelParameterVersion")], |p| {
            let target = match version {
                Some(v) => Self::select(p, &Selector::Version(v), name)?.version,
                None => p.versions.last().map(|v| v.version).ok_or_else(|| not_found(name))?,
            };
            let (valid, invalid): (Vec<&String>, Vec<&String>) =
                labels.iter().partition(|l| check_label(l) == LabelCheck::Valid);
            let mut updates: Vec<(i64, Vec<String>)> = Vec::new();
            for v in &p.versions {
                let mut new_labels: Vec<String> =
                    v.labels.iter().filter(|l| v.version == target || !valid.contains(l)).cloned().collect();
                if v.version == target {
                    for l in &valid {
                        if !new_labels.contains(l) {
                            new_labels.push((*l).clone());
                        }
                    }
                    if new_labels.len() > MAX_LABELS_PER_VERSION {
                        return Err(ServiceError::new(
                            ErrorKind::TooManyLabels,
                            format!("A parameter version can have maximum {MAX_LABELS_PER_VERSION} labels. Move one or more labels to another version and try again."),
                        ));
                    }
                }
                if new_labels != v.labels {
                    updates.push((v.version, new_labels));
                }
            }
            let outcome = LabelOutcome { invalid_labels: invalid.into_iter().cloned().collect(), version: target };
            let change = (!updates.is_empty()).then(|| MetadataChange { tags: p.tags.clone(), label_updates: updates });
            Ok((change, outcome))
        })
        .await
    }
}

/// DescribeParameters filters, validated.
#[derive(Debug, Clone)]
pub struct ParameterFilter {
    pub key: String,
    pub option: Option<String>,
    pub values: Vec<String>,
}

/// DescribeParameters: one parameter's latest metadata.
#[derive(Debug)]
pub struct ParameterMetadata {
    pub name: String,
    pub arn: String,
    pub tags: Vec<Tag>,
    pub latest: ParameterVersionRecord,
}

fn filter_error(kind: ErrorKind, message: String) -> ServiceError {
    ServiceError::new(kind, message)
}

fn matches_filter(f: &ParameterFilter, p: &ParameterState, v: &ParameterVersionRecord) -> bool {
    let option = f.option.as_deref().unwrap_or("Equals");
    let test = |actual: &str| {
        f.values.iter().any(|want| match option {
            "BeginsWith" => actual.starts_with(want.as_str()),
            "Contains" => actual.contains(want.as_str()),
            _ => actual == want,
        })
    };
    match f.key.as_str() {
        "Name" => {
            // Names match with or without their leading slash, as in SSM.
            let bare = p.name.trim_start_matches('/');
            f.values.iter().any(|want| {
                let want_bare = want.trim_start_matches('/');
                match option {
                    "BeginsWith" => bare.starts_with(want_bare),
                    "Contains" => p.name.contains(want.as_str()),
                    _ => bare == want_bare,
                }
            })
        }
        "Type" => test(&v.parameter_type),
        "KeyId" => v.key_id.as_deref().is_some_and(test),
        "Tier" => test(&v.tier),
        "DataType" => test(&v.data_type),
        "Label" => p.versions.iter().any(|x| x.labels.iter().any(|l| f.values.contains(l))),
        "Path" => f.values.iter().any(|path| {
            let path = path.trim_end_matches('/');
            let path = if path.is_empty() { "/" } else { path };
            match option {
                "Recursive" => path == "/" || p.name.starts_with(&format!("{path}/")),
                _ => p.parent_path == path,
            }
        }),
        key => match key.strip_prefix("tag:") {
            Some(tag_key) => p.tags.iter().any(|t| t.key == tag_key && (f.values.is_empty() || test(&t.value))),
            None => false,
        },
    }
}

/// Checks DescribeParameters / GetParametersByPath filters against the keys and options SSM allows.
pub fn validate_filters(filters: &[ParameterFilter], by_path: bool) -> ServiceResult<()> {
    for f in filters {
        let allowed_keys: &[&str] = if by_path {
            &["Type", "KeyId", "Label"]
        } else {
            &["Name", "Type", "KeyId", "Path", "Tier", "DataType", "Label"]
        };
        let is_tag = f.key.starts_with("tag:") && !by_path;
        if !is_tag && !allowed_keys.contains(&f.key.as_str()) {
            return Err(filter_error(
                ErrorKind::InvalidFilterKey,
                format!(
                    "The following filter key is not valid: {}. Valid filter keys include: [{}].",
                    f.key,
                    allowed_keys.join(", ")
                ),
            ));
        }
        let allowed_options: &[&str] = match f.key.as_str() {
            "Name" => &["Equals", "BeginsWith", "Contains"],
            "Path" => &["Recursive", "OneLevel"],
            "Label" => &["Equals"],
            _ => &["Equals", "BeginsWith"],
        };
        if let Some(o) = &f.option {
            if !allowed_options.contains(&o.as_str()) {
                return Err(filter_error(
                    ErrorKind::InvalidFilterOption,
                    format!(
                        "The following filter option is not valid: {o}. Valid options include: [{}].",
                        allowed_options.join(", ")
                    ),
                ));
            }
        }
        if f.values.is_empty() && !is_tag {
            return Err(filter_error(
                ErrorKind::InvalidFilterValue,
                format!("The following filter values are missing : null for filter key {}.", f.key),
            ));
        }
    }
    Ok(())
}

impl Service {
    /// DescribeParameters: metadata of the parameters matching every filter, by name, paged.
    pub async fn describe_parameters(
        &self,
        ctx: &RequestContext,
        filters: &[ParameterFilter],
        max: Option<i64>,
        next_token: Option<&str>,
    ) -> ServiceResult<ParametersPage<ParameterMetadata>> {
        validate_filters(filters, false)?;
        let limit = max_results(max, 50, "maxResults")?;
        let mut after = decode_token(next_token)?;
        self.authorize_parameters_action(ctx, "ssm:DescribeParameters").await?;
        let mut items = Vec::new();
        loop {
            let chunk = self
                .store
                .list_parameters(ParameterQuery {
                    region: ctx.region.clone(),
                    path: "/".into(),
                    recursive: true,
                    after: after.clone(),
                    limit: 200,
                    latest_only: !filters.iter().any(|f| f.key == "Label"),
                })
                .await?;
            let exhausted = chunk.len() < 200;
            for p in chunk {
                after = Some(p.name.clone());
                let Some(latest) = p.versions.last() else { continue };
                if self.expired(&p) {
                    continue;
                }
                if filters.iter().all(|f| matches_filter(f, &p, latest)) {
                    items.push(ParameterMetadata {
                        arn: parameter_arn(&p.region, &self.config.account_id, &p.name),
                        name: p.name.clone(),
                        tags: p.tags.clone(),
                        latest: latest.clone(),
                    });
                    if items.len() == limit {
                        return Ok(ParametersPage { items, next_token: after.as_deref().map(encode_token) });
                    }
                }
            }
            if exhausted {
                return Ok(ParametersPage { items, next_token: None });
            }
        }
    }

    /// GetParametersByPath filters (Type, KeyId, Label) applied to a page.
    pub fn parameter_passes(filters: &[ParameterFilter], p: &ParameterState) -> bool {
        p.versions.last().is_some_and(|v| filters.iter().all(|f| matches_filter(f, p, v)))
    }

    /// UnlabelParameterVersion: (removed, invalid) labels.
    pub async fn unlabel_parameter_version(
        &self,
        ctx: &RequestContext,
        id: &str,
        version: i64,
        labels: &[String],
    ) -> ServiceResult<(Vec<String>, Vec<String>)> {
        if labels.is_empty() || labels.len() > 10 {
            return Err(ServiceError::validation("Labels must contain between 1 and 10 labels."));
        }
        let name = name_from_id(id);
        self.change_parameter_metadata(ctx, name, &[MetadataAction::Plain("ssm:UnlabelParameterVersion")], |p| {
            let v = Self::select(p, &Selector::Version(version), name)?;
            let (removed, invalid): (Vec<String>, Vec<String>) =
                labels.iter().cloned().partition(|l| v.labels.contains(l));
            let kept: Vec<String> = v.labels.iter().filter(|l| !removed.contains(l)).cloned().collect();
            let change = (!removed.is_empty())
                .then(|| MetadataChange { tags: p.tags.clone(), label_updates: vec![(version, kept)] });
            Ok((change, (removed, invalid)))
        })
        .await
    }

    /// Adds or overwrites tags (`add`), or removes tag keys (`remove`); returns the resulting tags.
    pub async fn change_parameter_tags(
        &self,
        ctx: &RequestContext,
        id: &str,
        add: &[Tag],
        remove: &[String],
    ) -> ServiceResult<Vec<Tag>> {
        crate::secrets::validate::tags(add)?;
        let name = name_from_id(id);
        // AddTagsToResource, RemoveTagsFromResource, or (changing nothing) ListTagsForResource.
        let mut actions = Vec::with_capacity(2);
        if !add.is_empty() {
            actions.push(MetadataAction::AddTags(add));
        }
        if !remove.is_empty() {
            actions.push(MetadataAction::RemoveTags(remove));
        }
        if actions.is_empty() {
            actions.push(MetadataAction::Plain("ssm:ListTagsForResource"));
        }
        self.change_parameter_metadata(ctx, name, &actions, |p| {
            let mut tags = p.tags.clone();
            crate::secrets::validate::merge_tags(&mut tags, add);
            tags.retain(|t| !remove.contains(&t.key));
            if tags.len() > 50 {
                return Err(ServiceError::new(ErrorKind::LimitExceeded, "A resource can have at most 50 tags."));
            }
            let change = (tags != p.tags).then(|| MetadataChange { tags: tags.clone(), label_updates: vec![] });
            Ok((change, tags))
        })
        .await
    }
}

/// What a tag or label change is authorized as.
enum MetadataAction<'a> {
    Plain(&'static str),
    /// `ssm:AddTagsToResource`, with the request's tags.
    AddTags(&'a [Tag]),
    /// `ssm:RemoveTagsFromResource`, with `aws:TagKeys`.
    RemoveTags(&'a [String]),
}

/// A change to an existing parameter's tags or labels (no new version).
struct MetadataChange {
    tags: Vec<Tag>,
    label_updates: Vec<(i64, Vec<String>)>,
}

impl Service {
    /// Loads the parameter, lets `decide` choose a tag/label change (or none) and the answer, and commits
    /// it as a compare-and-swap; on a lost race it re-reads and decides again.
    async fn change_parameter_metadata<R>(
        &self,
        ctx: &RequestContext,
        name: &str,
        actions: &[MetadataAction<'_>],
        mut decide: impl FnMut(&ParameterState) -> ServiceResult<(Option<MetadataChange>, R)>,
    ) -> ServiceResult<R> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let p = self.store.load_parameter(&ctx.region, name).await?;
            for action in actions {
                let p = p.as_ref();
                match action {
                    MetadataAction::Plain(action) => self.authorize_parameter(ctx, action, name, p, |a| a).await?,
                    MetadataAction::AddTags(tags) => {
                        self.authorize_parameter(ctx, "ssm:AddTagsToResource", name, p, |a| a.request_tags(tags))
                            .await?
                    }
                    MetadataAction::RemoveTags(keys) => {
                        self.authorize_parameter(ctx, "ssm:RemoveTagsFromResource", name, p, |a| {
                            a.keys("aws:TagKeys", keys.to_vec())
                        })
                        .await?
                    }
                }
            }
            let p = p.ok_or_else(|| not_found(name))?;
            let (change, output) = decide(&p)?;
            let Some(change) = change else { return Ok(output) };
            let write = ParameterWrite::Update {
                expected_revision: p.revision,
                region: p.region.clone(),
                name: p.name.clone(),
                revision: p.revision + 1,
                tags: change.tags,
                new_version: None,
                label_updates: change.label_updates,
                dropped_versions: vec![],
            };
            match self.write_parameter(ctx, write, serde_json::Value::Null).await {
                Ok(()) => return Ok(output),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(not_found(name)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::new(
            ErrorKind::Unavailable,
            "The parameter is being modified concurrently; retry the request.",
        ))
    }
}
