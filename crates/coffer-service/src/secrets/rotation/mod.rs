//! Secret rotation, as Secrets Manager runs it: RotateSecret sets the rotator (named by its
//! RotationLambdaARN) and the schedule, and a rotation runs the four steps — createSecret (a new
//! version under AWSPENDING whose id is the rotation's ClientRequestToken), setSecret, testSecret,
//! finishSecret (AWSCURRENT moves to it, the old version becomes AWSPREVIOUS).
//!
//! A rotation first claims the secret: its token and a lease go into the secret's record with a
//! compare-and-swap write, so two nodes (or the scheduler and a caller) never run one secret's
//! rotation at once, and a node that dies mid-rotation leaves a lease that lapses and a token another
//! node resumes with (every step is idempotent for one token). AWSCURRENT moves only when every step
//! passed; a failure records the step and reason, keeps the secret readable as it was, and is retried
//! with backoff.

pub mod builtin;
pub mod incident;
pub mod schedule;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_crypto::SecretBytes;
use coffer_store::{EpochMillis, RotationResult, RotationRun, SecretRecord, SecretState, SecretWrite};

use super::labels::{LabelBoard, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use super::{
    apply_stage_updates, not_deleted, validate, Decision, GetSecretValueInput, PutSecretValueInput, SecretIdentity,
    SecretValue, SecretValueOutput, SECRETS_EVENT_SOURCE,
};
use crate::audit::Outcome;
use crate::clock::MILLIS_PER_DAY;
use crate::context::{ActorSource, RequestContext};
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::Service;
pub use schedule::{RotationRules, RotationRulesInput};

/// How long a claim on a secret lasts without progress before another node may resume the rotation.
pub const ROTATION_LEASE_MILLIS: i64 = 10 * 60 * 1000;
/// After this many failed attempts with one token the rotation is abandoned (AWSPENDING removed) and
/// the secret waits for its next scheduled rotation.
pub const MAX_ROTATION_ATTEMPTS: u32 = 5;
/// The tag that gives a secret its sensitivity (critical, high, medium, low).
pub const SENSITIVITY_TAG: &str = "coffer:sensitivity";
/// The tag that gives a secret its category (database, authentication, payment, ...).
pub const CATEGORY_TAG: &str = "coffer:category";

const IN_PROGRESS: &str = "A previous rotation isn't complete. That rotation will be reattempted.";
const NO_FUNCTION: &str = "No Lambda rotation function ARN is associated with this secret.";

/// The four steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    CreateSecret,
    SetSecret,
    TestSecret,
    FinishSecret,
}

impl RotationStep {
    pub const ALL: [RotationStep; 4] =
        [RotationStep::CreateSecret, RotationStep::SetSecret, RotationStep::TestSecret, RotationStep::FinishSecret];

    /// The `Step` a rotation Lambda receives.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationStep::CreateSecret => "createSecret",
            RotationStep::SetSecret => "setSecret",
            RotationStep::TestSecret => "testSecret",
            RotationStep::FinishSecret => "finishSecret",
        }
    }
}

/// Why a step failed: a message for operators. It must never carry a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatorError(pub String);

impl RotatorError {
    pub fn new(message: impl Into<String>) -> Self {
        RotatorError(message.into())
    }
}

impl From<ServiceError> for RotatorError {
    fn from(e: ServiceError) -> Self {
        RotatorError(e.message)
    }
}

/// What carries out the steps of one kind of rotation.
#[async_trait::async_trait]
pub trait Rotator: Send + Sync + 'static {
    /// Runs one step for `job`. Steps must be idempotent for one token: a rotation interrupted at any
    /// point is resumed from createSecret with the same token.
    async fn run_step(&self, step: RotationStep, job: &RotationJob<'_>) -> Result<(), RotatorError>;

    /// Whether the service itself moves AWSCURRENT at finishSecret (in the same write that records
    /// the rotation's success). External rotators, like rotation Lambdas, move it themselves.
    fn service_finishes(&self) -> bool {
        true
    }

    /// How long AWSPREVIOUS stays readable after a rotation when the secret's settings don't say
    /// (`grace_period_hours`); `None` keeps it until the next rotation, as Secrets Manager does.
    fn default_grace_hours(&self) -> Option<i64> {
        None
    }
}

/// The rotators this node can run: built-in ones by function name (`coffer-generated` in
/// `arn:aws:lambda:<region>:<account>:function:coffer-generated`), others by their exact ARN.
#[derive(Default)]
pub struct Rotators {
    builtin: RwLock<HashMap<String, Arc<dyn Rotator>>>,
    by_arn: RwLock<HashMap<String, Arc<dyn Rotator>>>,
}

impl Rotators {
    pub(crate) fn with_builtins() -> Rotators {
        let rotators = Rotators::default();
        rotators.register_builtin("coffer-generated", Arc::new(builtin::GeneratedValue));
        rotators.register_builtin("coffer-signing-key", Arc::new(builtin::SigningKey));
        rotators
    }

    /// Registers a built-in rotator under its function name (`coffer-<name>`).
    pub fn register_builtin(&self, function_name: &str, rotator: Arc<dyn Rotator>) {
        if let Ok(mut map) = self.builtin.write() {
            map.insert(function_name.to_string(), rotator);
        }
    }

    /// Registers a rotator for one RotationLambdaARN (an external rotator configured for it).
    pub fn register_arn(&self, arn: &str, rotator: Arc<dyn Rotator>) {
        if let Ok(mut map) = self.by_arn.write() {
            map.insert(arn.to_string(), rotator);
        }
    }

    /// Makes `arn` run a built-in rotator (`builtin_function` such as `coffer-postgres-single-user`), so
    /// an existing RotationLambdaARN keeps working; false when no such built-in exists.
    pub fn alias_builtin(&self, arn: &str, builtin_function: &str) -> bool {
        let found = self.builtin.read().ok().and_then(|m| m.get(builtin_function).cloned());
        match found {
            Some(rotator) => {
                self.register_arn(arn, rotator);
                true
            }
            None => false,
        }
    }

    fn find(&self, arn: &str) -> Option<Arc<dyn Rotator>> {
        if let Some(found) = self.by_arn.read().ok().and_then(|m| m.get(arn).cloned()) {
            return Some(found);
        }
        let function = lambda_function_name(arn)?;
        self.builtin.read().ok().and_then(|m| m.get(function).cloned())
    }
}

/// The function name of a Lambda ARN (`arn:aws:lambda:<region>:<account>:function:<name>[:qualifier]`).
pub fn lambda_function_name(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 7 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" || parts[6].is_empty() {
        return None;
    }
    Some(parts[6])
}

/// One rotation as a rotator sees it: the secret, the token, the rotator's settings, and the
/// operations a rotation Lambda would call (as the service's own rotation actor).
pub struct RotationJob<'a> {
    service: &'a Service,
    pub region: String,
    pub arn: String,
    pub name: String,
    /// The ClientRequestToken: the id of the version this rotation creates.
    pub token: String,
    /// The RotationToken a rotation Lambda receives.
    pub rotation_token: String,
    pub lambda_arn: String,
    pub metadata: Vec<(String, String)>,
    pub source: ActorSource,
    pub incident_id: Option<String>,
}

impl RotationJob<'_> {
    /// A rotator setting (RotateSecret's ExternalSecretRotationMetadata).
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The event a rotation Lambda receives for `step`.
    pub fn event(&self, step: RotationStep) -> serde_json::Value {
        serde_json::json!({
            "Step": step.as_str(),
            "SecretId": self.arn,
            "ClientRequestToken": self.token,
            "RotationToken": self.rotation_token,
        })
    }

    fn context(&self, event_name: &'static str, step: RotationStep) -> RequestContext {
        let ctx = RequestContext::internal(
            &self.service.config.account_id,
            &self.region,
            self.source,
            SECRETS_EVENT_SOURCE,
            event_name,
        );
        ctx.audit.resource(&self.arn);
        ctx.audit.set_request_parameters(serde_json::json!({
            "secretId": self.arn,
            "clientRequestToken": self.token,
            "rotationStep": step.as_str(),
            "incidentId": self.incident_id,
        }));
        ctx
    }

    /// The version holding `stage`, or `None` when no version holds it.
    pub async fn read_stage(&self, stage: &str) -> ServiceResult<Option<SecretValueOutput>> {
        let ctx = self.context("GetSecretValue", RotationStep::CreateSecret);
        let input = GetSecretValueInput {
            secret_id: self.arn.clone(),
            version_stage: Some(stage.to_string()),
            ..Default::default()
        };
        match self.service.read_secret_value(&ctx, input, false).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The version this rotation creates, once createSecret has written it.
    pub async fn read_pending(&self) -> ServiceResult<Option<SecretValueOutput>> {
        let ctx = self.context("GetSecretValue", RotationStep::SetSecret);
        let input = GetSecretValueInput {
            secret_id: self.arn.clone(),
            version_id: Some(self.token.clone()),
            ..Default::default()
        };
        match self.service.read_secret_value(&ctx, input, false).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// AWSCURRENT of another secret (a master user's credentials, say).
    pub async fn read_other(&self, secret_id: &str) -> ServiceResult<SecretValueOutput> {
        let ctx = self.context("GetSecretValue", RotationStep::SetSecret);
        let input = GetSecretValueInput { secret_id: secret_id.to_string(), ..Default::default() };
        self.service.read_secret_value(&ctx, input, false).await
    }

    /// createSecret's write: the new value as this rotation's version, labelled AWSPENDING.
    pub async fn put_pending(&self, value: SecretValue) -> ServiceResult<()> {
        let ctx = self.context("PutSecretValue", RotationStep::CreateSecret);
        let input = PutSecretValueInput {
            secret_id: self.arn.clone(),
            client_request_token: Some(self.token.clone()),
            value: Some(value),
            version_stages: Some(vec![AWSPENDING.to_string()]),
        };
        self.service.put_secret_value(&ctx, input).await.map(|_| ())
    }

    /// A new random password under GetRandomPassword's rules, configured by the rotator settings
    /// `length` (default 32) and `exclude_characters` (default `default_exclude`), `exclude_punctuation`.
    pub fn generate_password(&self, default_exclude: &str) -> Result<SecretBytes, RotatorError> {
        let mut rules =
            crate::password::PasswordRules { exclude_characters: default_exclude.to_string(), ..Default::default() };
        if let Some(length) = self.setting("length") {
            rules.length =
                length.parse().map_err(|_| RotatorError::new("the rotator setting length is not a number"))?;
        }
        if let Some(exclude) = self.setting("exclude_characters") {
            rules.exclude_characters = exclude.to_string();
        }
        if let Some(flag) = self.setting("exclude_punctuation") {
            rules.exclude_punctuation = flag == "true";
        }
        let password = crate::password::generate_password(&rules, &mut rand::rngs::OsRng)?;
        Ok(SecretBytes::new(password.into_bytes()))
    }

    /// What a rotation Lambda's finishSecret does: AWSCURRENT moves to this rotation's version
    /// (AWSPREVIOUS follows the version that loses it).
    pub async fn move_current_to_pending(&self) -> ServiceResult<()> {
        let ctx = self.context("UpdateSecretVersionStage", RotationStep::FinishSecret);
        let current = self.read_stage(AWSCURRENT).await?.map(|c| c.version_id);
        if current.as_deref() == Some(self.token.as_str()) {
            return Ok(());
        }
        let input = super::UpdateVersionStageInput {
            secret_id: self.arn.clone(),
            version_stage: AWSCURRENT.to_string(),
            remove_from_version_id: current,
            move_to_version_id: Some(self.token.clone()),
        };
        self.service.update_secret_version_stage(&ctx, input).await.map(|_| ())
    }

    /// Temporary credentials of `role_arn` for an external rotator to call the service back with.
    pub async fn role_credentials(&self, role_arn: &str) -> ServiceResult<crate::iam::sts::TemporaryCredentials> {
        self.service.rotator_role_credentials(role_arn).await
    }

    /// Current time from the service's clock.
    pub fn now(&self) -> EpochMillis {
        self.service.clock.now_millis()
    }
}

/// RotateSecret's input.
#[derive(Debug, Default, Clone)]
pub struct RotateSecretInput {
    pub secret_id: String,
    pub client_request_token: Option<String>,
    pub rotation_lambda_arn: Option<String>,
    pub rotation_rules: Option<RotationRulesInput>,
    /// Default true.
    pub rotate_immediately: Option<bool>,
    pub metadata: Option<Vec<(String, String)>>,
}

/// How one rotation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationOutcome {
    Succeeded { version_id: String },
    Failed { version_id: String, step: String, message: String },
}

impl RotationOutcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, RotationOutcome::Succeeded { .. })
    }
}

/// What a scheduler pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotationPass {
    pub rotated: usize,
    pub failed: usize,
    /// AWSPREVIOUS versions whose overlap period ended and that stopped being readable.
    pub expired_previous: usize,
}

/// One secret's rotation status, for operators.
#[derive(Debug, Clone)]
pub struct RotationStatus {
    pub arn: String,
    pub name: String,
    pub enabled: bool,
    pub lambda_arn: Option<String>,
    pub sensitivity: Option<String>,
    pub category: Option<String>,
    pub last_rotated: Option<EpochMillis>,
    /// When the next rotation is due: the schedule's, or (no schedule) the last change plus the
    /// sensitivity's interval.
    pub due: Option<EpochMillis>,
    pub in_progress: bool,
    pub last_result: Option<RotationResult>,
    pub failures: u32,
}

pub(super) fn tag<'a>(secret: &'a SecretRecord, key: &str) -> Option<&'a str> {
    secret.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
}

/// The next rotation time after `from` for a secret: its rules, else its sensitivity's interval.
fn next_rotation(secret: &SecretRecord, from: EpochMillis) -> Option<EpochMillis> {
    let r = &secret.rotation;
    let input = RotationRulesInput {
        automatically_after_days: r.automatically_after_days,
        schedule_expression: r.schedule_expression.clone(),
        duration: r.duration.clone(),
    };
    if r.automatically_after_days.is_some() || r.schedule_expression.is_some() {
        return RotationRules::parse(&input).ok().and_then(|rules| rules.next_after(from));
    }
    let days = tag(secret, SENSITIVITY_TAG).and_then(schedule::default_interval_days)?;
    Some(from + days * MILLIS_PER_DAY)
}

fn new_token() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Service {
    /// The rotators this node runs; the server registers the ones that need I/O.
    pub fn rotators(&self) -> &Rotators {
        &self.rotators
    }

    /// RotateSecret: sets the rotator and schedule, and (unless RotateImmediately is false) rotates
    /// now, answering once the rotation has finished or failed (its failure is in DescribeSecret and
    /// the audit log, as Secrets Manager reports an asynchronous Lambda's failure).
    pub async fn rotate_secret(&self, ctx: &RequestContext, input: RotateSecretInput) -> ServiceResult<SecretIdentity> {
        if let Some(token) = &input.client_request_token {
            validate::client_request_token(token)?;
        }
        let rules = input.rotation_rules.as_ref().map(RotationRules::parse).transpose()?;
        if let Some(arn) = &input.rotation_lambda_arn {
            if arn.len() > 2048 || lambda_function_name(arn).is_none() {
                return Err(ServiceError::invalid_parameter(format!(
                    "The RotationLambdaARN {arn} is not a valid Lambda function ARN."
                )));
            }
        }
        if let Some(metadata) = &input.metadata {
            if metadata.len() > 50 || metadata.iter().any(|(k, v)| k.is_empty() || k.len() > 256 || v.len() > 2048) {
                return Err(ServiceError::invalid_parameter(
                    "ExternalSecretRotationMetadata must have at most 50 items, keys of 1-256 and values of up to 2048 characters.",
                ));
            }
        }
        let current = self.authorized_secret(ctx, "secretsmanager:RotateSecret", &input.secret_id, |a| a).await?;
        not_deleted(&current)?;
        let lambda_arn = input
            .rotation_lambda_arn
            .clone()
            .or_else(|| current.secret.rotation.lambda_arn.clone())
            .ok_or_else(|| ServiceError::invalid_request(NO_FUNCTION))?;
        let rotator = self.rotators.find(&lambda_arn).ok_or_else(|| {
            ServiceError::new(
                ErrorKind::AccessDenied,
                "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com.",
            )
        })?;
        let immediately = input.rotate_immediately.unwrap_or(true);
        let requested_token = input.client_request_token.clone();
        let now = self.clock.now_millis();
        let (identity, claimed) = self
            .modify(ctx, &input.secret_id, |state| {
                not_deleted(state)?;
                let mut secret = state.secret.clone();
                let rotation = &mut secret.rotation;
                rotation.enabled = true;
                rotation.lambda_arn = Some(lambda_arn.clone());
                if let Some(rules) = &input.rotation_rules {
                    rotation.automatically_after_days = rules.automatically_after_days;
                    rotation.schedule_expression = rules.schedule_expression.clone();
                    rotation.duration = rules.duration.clone();
                }
                if let Some(metadata) = &input.metadata {
                    rotation.metadata = metadata.clone();
                }
                let mut run = None;
                if immediately {
                    let claimed = claim(state, requested_token.clone(), now, ctx.source, None)?;
                    secret.rotation.in_progress = Some(claimed.clone());
                    run = Some(claimed);
                } else if rules.is_some() || secret.rotation.next_rotation.is_none() {
                    let from = secret.rotation.last_rotated.unwrap_or(now);
                    secret.rotation.next_rotation = next_rotation(&secret, from).map(|t| t.max(now));
                }
                let identity = SecretIdentity {
                    arn: state.secret.arn.clone(),
                    name: state.secret.name.clone(),
                    version_id: run.as_ref().map(|r: &RotationRun| r.token.clone()),
                };
                secret.last_changed = now;
                let claimed = run.map(|run| Claimed::of(&secret, run));
                Ok(super::metadata_only(state, secret, (identity, claimed)))
            })
            .await?;
        if let Some(claimed) = claimed {
            let source =
                if ctx.source == ActorSource::Emergency { ActorSource::Emergency } else { ActorSource::Rotation };
            self.run_claimed(claimed, rotator, source).await;
        }
        Ok(identity)
    }

    /// CancelRotateSecret: turns automatic rotation off and forgets a rotation under way (its
    /// AWSPENDING version stays, as in Secrets Manager: removing it is the caller's choice).
    pub async fn cancel_rotate_secret(&self, ctx: &RequestContext, secret_id: &str) -> ServiceResult<SecretIdentity> {
        self.authorized_secret(ctx, "secretsmanager:CancelRotateSecret", secret_id, |a| a).await?;
        let now = self.clock.now_millis();
        self.modify(ctx, secret_id, |state| {
            not_deleted(state)?;
            let mut secret = state.secret.clone();
            let pending = state.versions.iter().find(|v| v.stages.iter().any(|s| s == AWSPENDING));
            secret.rotation.enabled = false;
            secret.rotation.next_rotation = None;
            secret.rotation.in_progress = None;
            secret.rotation.retry_at = None;
            secret.last_changed = now;
            let identity = SecretIdentity {
                arn: state.secret.arn.clone(),
                name: state.secret.name.clone(),
                version_id: pending.map(|v| v.version_id.clone()),
            };
            Ok(super::metadata_only(state, secret, identity))
        })
        .await
    }

    /// Runs the steps of a claimed rotation and records how it ended.
    async fn run_claimed(&self, claimed: Claimed, rotator: Arc<dyn Rotator>, source: ActorSource) -> RotationOutcome {
        let arn = claimed.arn.as_str();
        let job = RotationJob {
            service: self,
            region: claimed.region.clone(),
            arn: claimed.arn.clone(),
            name: claimed.name,
            token: claimed.run.token,
            rotation_token: new_token(),
            lambda_arn: claimed.lambda_arn,
            metadata: claimed.metadata,
            source,
            incident_id: claimed.run.incident_id,
        };
        for step in RotationStep::ALL {
            if step == RotationStep::FinishSecret && rotator.service_finishes() {
                break;
            }
            let result = rotator.run_step(step, &job).await;
            let ctx = job.context("RotationStep", step);
            let outcome = match &result {
                Ok(()) => Outcome::success(serde_json::json!({ "step": step.as_str() })),
                Err(e) => Outcome::error("RotationStepFailed", e.0.clone()),
            };
            if let Err(e) = self.record_request(&ctx, &outcome).await {
                tracing::warn!(%arn, error = %e, "recording a rotation step failed");
            }
            if let Err(e) = result {
                return self.rotation_failed(&job, step, e).await;
            }
        }
        self.rotation_succeeded(&job, rotator.as_ref()).await
    }

    async fn rotation_succeeded(&self, job: &RotationJob<'_>, rotator: &dyn Rotator) -> RotationOutcome {
        let ctx = job.context("RotationSucceeded", RotationStep::FinishSecret);
        let now = self.clock.now_millis();
        let move_current = rotator.service_finishes();
        let grace_hours: Option<i64> = match job.setting("grace_period_hours") {
            Some(h) => h.parse().ok().filter(|h: &i64| *h > 0),
            None => rotator.default_grace_hours(),
        };
        let token = job.token.clone();
        let result = self
            .modify(&ctx, &job.arn, |state| {
                let mut board = LabelBoard::from_versions(&state.versions);
                if !board.contains(&token) {
                    return Err(ServiceError::invalid_request(
                        "createSecret did not create the version with the rotation's ClientRequestToken.",
                    ));
                }
                if move_current {
                    if board.holder_of(AWSCURRENT) != Some(token.as_str()) {
                        board.move_label(AWSCURRENT, &token)?;
                    }
                } else if board.holder_of(AWSCURRENT) != Some(token.as_str()) {
                    return Err(ServiceError::invalid_request(
                        "finishSecret did not move AWSCURRENT to the new version.",
                    ));
                }
                if board.holder_of(AWSPENDING) == Some(token.as_str()) {
                    board.remove_label(AWSPENDING, &token);
                }
                let mut secret = state.secret.clone();
                let rotation = &mut secret.rotation;
                rotation.in_progress = None;
                rotation.failures = 0;
                rotation.retry_at = None;
                rotation.last_rotated = Some(now);
                rotation.last_result = Some(RotationResult {
                    at: now,
                    succeeded: true,
                    token: token.clone(),
                    failed_step: None,
                    message: None,
                    incident_id: job.incident_id.clone(),
                });
                rotation.previous_expires = grace_hours.map(|h| now + h * 3_600_000);
                let next = if secret.rotation.enabled { next_rotation(&secret, now) } else { None };
                secret.rotation.next_rotation = next;
                secret.last_changed = now;
                Ok(label_decision(state, secret, board, ()))
            })
            .await;
        match result {
            Ok(()) => RotationOutcome::Succeeded { version_id: job.token.clone() },
            Err(e) => self.rotation_failed(job, RotationStep::FinishSecret, RotatorError(e.message)).await,
        }
    }

    /// Records a failed attempt: the claim is released (the token kept for the retry), the next
    /// attempt is scheduled with backoff, and after [`MAX_ROTATION_ATTEMPTS`] the rotation is
    /// abandoned. AWSCURRENT is never touched.
    async fn rotation_failed(&self, job: &RotationJob<'_>, step: RotationStep, error: RotatorError) -> RotationOutcome {
        tracing::warn!(arn = %job.arn, step = step.as_str(), reason = %error.0, "rotation failed");
        let now = self.clock.now_millis();
        let token = job.token.clone();
        let message = error.0.clone();
        let ctx = job.context("RotationFailed", step);
        let result = self
            .modify(&ctx, &job.arn, |state| {
                let mut secret = state.secret.clone();
                let mut board = LabelBoard::from_versions(&state.versions);
                let rotation = &mut secret.rotation;
                rotation.failures += 1;
                rotation.last_result = Some(RotationResult {
                    at: now,
                    succeeded: false,
                    token: token.clone(),
                    failed_step: Some(step.as_str().to_string()),
                    message: Some(message.clone()),
                    incident_id: job.incident_id.clone(),
                });
                let tries = match &mut rotation.in_progress {
                    Some(run) if run.token == token => {
                        run.lease_until = now;
                        run.attempts
                    }
                    _ => MAX_ROTATION_ATTEMPTS,
                };
                if tries >= MAX_ROTATION_ATTEMPTS {
                    rotation.in_progress = None;
                    rotation.retry_at = None;
                    if board.holder_of(AWSPENDING) == Some(token.as_str()) {
                        board.remove_label(AWSPENDING, &token);
                    }
                    let next = if secret.rotation.enabled { next_rotation(&secret, now) } else { None };
                    secret.rotation.next_rotation = next;
                } else {
                    // 1, 2, 4, 8 minutes...
                    let backoff = 60_000i64 << tries.saturating_sub(1).min(6);
                    rotation.retry_at = Some(now + backoff);
                }
                Ok(label_decision(state, secret, board, ()))
            })
            .await;
        if let Err(e) = result {
            tracing::error!(arn = %job.arn, error = %e, "recording a failed rotation failed");
        }
        RotationOutcome::Failed { version_id: job.token.clone(), step: step.as_str().to_string(), message: error.0 }
    }

    /// Claims `arn` for a rotation started by the service (scheduler, emergency) and runs it.
    pub(crate) async fn rotate_now_internal(
        &self,
        region: &str,
        arn: &str,
        source: ActorSource,
        incident_id: Option<String>,
    ) -> ServiceResult<RotationOutcome> {
        let event = if source == ActorSource::Emergency { "EmergencyRotationStarted" } else { "RotationStarted" };
        let ctx = RequestContext::internal(&self.config.account_id, region, source, SECRETS_EVENT_SOURCE, event);
        ctx.audit.resource(arn);
        ctx.audit.set_request_parameters(serde_json::json!({ "secretId": arn, "incidentId": incident_id }));
        let state = self.resolve(&ctx, arn, false).await?;
        not_deleted(&state)?;
        let lambda_arn =
            state.secret.rotation.lambda_arn.clone().ok_or_else(|| ServiceError::invalid_request(NO_FUNCTION))?;
        let rotator = self.rotators.find(&lambda_arn).ok_or_else(|| {
            ServiceError::new(ErrorKind::AccessDenied, format!("No rotator is configured for {lambda_arn}."))
        })?;
        let now = self.clock.now_millis();
        let claimed = self
            .modify(&ctx, arn, |state| {
                not_deleted(state)?;
                let mut secret = state.secret.clone();
                let run = claim(state, None, now, source, incident_id.clone())?;
                secret.rotation.in_progress = Some(run.clone());
                let claimed = Claimed::of(&secret, run);
                Ok(super::metadata_only(state, secret, claimed))
            })
            .await?;
        let rotation_source = if source == ActorSource::Emergency { source } else { ActorSource::Rotation };
        Ok(self.run_claimed(claimed, rotator, rotation_source).await)
    }

    /// One pass of the rotation scheduler over a region: rotations that are due (or whose retry time
    /// came, or whose claim lapsed on a node that died), `concurrency` at a time, and AWSPREVIOUS
    /// versions whose overlap period ended.
    pub async fn rotate_due_secrets(self: &Arc<Self>, region: &str, concurrency: usize) -> ServiceResult<RotationPass> {
        let now = self.clock.now_millis();
        let records = self.store.list_secrets(region).await?;
        let mut pass = RotationPass::default();
        let mut due = Vec::new();
        for record in records {
            if record.deletion_date.is_some() {
                continue;
            }
            let r = &record.rotation;
            if r.previous_expires.is_some_and(|t| t <= now) && self.expire_previous(region, &record.arn).await? {
                pass.expired_previous += 1;
            }
            if !r.enabled {
                continue;
            }
            let resumable =
                r.in_progress.as_ref().is_some_and(|run| run.lease_until <= now && r.retry_at.is_none_or(|t| t <= now));
            let scheduled = r.in_progress.is_none() && r.next_rotation.is_some_and(|t| t <= now);
            // A cron schedule's rotation starts inside its window; a window missed (the server was
            // down) moves to the next one instead of rotating at an unplanned time.
            if scheduled && window_missed(&record, now) {
                self.skip_to_next_window(region, &record.arn).await?;
                continue;
            }
            if resumable || scheduled {
                due.push(record.arn.clone());
            }
        }
        let outcomes = self.rotate_many(region, due, ActorSource::Scheduler, None, concurrency).await;
        for (_, outcome) in outcomes {
            match outcome {
                Ok(o) if o.succeeded() => pass.rotated += 1,
                Ok(_) => pass.failed += 1,
                // Claimed by another node meanwhile, or deleted: nothing to count.
                Err(e) if e.kind == ErrorKind::InvalidRequest || e.kind == ErrorKind::NotFound => {}
                Err(_) => pass.failed += 1,
            }
        }
        Ok(pass)
    }

    /// Rotates several secrets, `concurrency` at a time (concurrent writes share the store's commits).
    pub(crate) async fn rotate_many(
        self: &Arc<Self>,
        region: &str,
        arns: Vec<String>,
        source: ActorSource,
        incident_id: Option<String>,
        concurrency: usize,
    ) -> Vec<(String, ServiceResult<RotationOutcome>)> {
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, arn) in arns.into_iter().enumerate() {
            let service = self.clone();
            let limit = limit.clone();
            let region = region.to_string();
            let incident_id = incident_id.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let started = std::time::Instant::now();
                let result = service.rotate_now_internal(&region, &arn, source, incident_id).await;
                (index, arn, result, started.elapsed())
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, arn, result, _)) => results.push((index, arn, result)),
                Err(e) => tracing::error!(error = %e, "a rotation task failed"),
            }
        }
        results.sort_by_key(|(index, _, _)| *index);
        results.into_iter().map(|(_, arn, result)| (arn, result)).collect()
    }

    async fn skip_to_next_window(&self, region: &str, arn: &str) -> ServiceResult<()> {
        let ctx = RequestContext::internal(
            &self.config.account_id,
            region,
            ActorSource::Scheduler,
            SECRETS_EVENT_SOURCE,
            "RotationWindowMissed",
        );
        ctx.audit.resource(arn);
        let now = self.clock.now_millis();
        self.modify(&ctx, arn, |state| {
            if !window_missed(&state.secret, now) || state.secret.rotation.in_progress.is_some() {
                return Ok(Decision { write: None, new_state: None, output: () });
            }
            let mut secret = state.secret.clone();
            secret.rotation.next_rotation = next_rotation(&secret, now);
            Ok(super::metadata_only(state, secret, ()))
        })
        .await
    }

    /// Removes AWSPREVIOUS once its overlap period ended (signing keys); true when it did.
    async fn expire_previous(&self, region: &str, arn: &str) -> ServiceResult<bool> {
        let ctx = RequestContext::internal(
            &self.config.account_id,
            region,
            ActorSource::Rotation,
            SECRETS_EVENT_SOURCE,
            "UpdateSecretVersionStage",
        );
        ctx.audit.resource(arn);
        ctx.audit.set_request_parameters(serde_json::json!({ "secretId": arn, "versionStage": AWSPREVIOUS }));
        let now = self.clock.now_millis();
        self.modify(&ctx, arn, |state| {
            let mut secret = state.secret.clone();
            if secret.rotation.previous_expires.is_none_or(|t| t > now) {
                return Ok(Decision { write: None, new_state: None, output: false });
            }
            secret.rotation.previous_expires = None;
            let mut board = LabelBoard::from_versions(&state.versions);
            let removed = match board.holder_of(AWSPREVIOUS).map(str::to_string) {
                Some(holder) => {
                    board.remove_label(AWSPREVIOUS, &holder);
                    true
                }
                None => false,
            };
            Ok(label_decision(state, secret, board, removed))
        })
        .await
    }

    /// Every secret's rotation status in a region (the caller needs secretsmanager:ListSecrets).
    pub async fn rotation_status(&self, ctx: &RequestContext) -> ServiceResult<Vec<RotationStatus>> {
        self.authorize_secrets_action(ctx, "secretsmanager:ListSecrets").await?;
        let records = self.store.list_secrets(&ctx.region).await?;
        Ok(records.into_iter().filter(|r| r.deletion_date.is_none()).map(|r| status_of(&r)).collect())
    }
}

/// Whether a cron-scheduled rotation's window (its Duration) ended before it could start.
fn window_missed(secret: &SecretRecord, now: EpochMillis) -> bool {
    let r = &secret.rotation;
    let cron = r.schedule_expression.as_deref().is_some_and(|e| e.trim_start().starts_with("cron("));
    let window = r.duration.as_deref().and_then(|d| {
        RotationRules::parse(&RotationRulesInput {
            schedule_expression: r.schedule_expression.clone(),
            duration: Some(d.to_string()),
            ..Default::default()
        })
        .ok()
        .and_then(|rules| rules.window_millis)
    });
    match (cron, window, r.next_rotation) {
        (true, Some(window), Some(next)) => now > next + window,
        _ => false,
    }
}

fn status_of(record: &SecretRecord) -> RotationStatus {
    let r = &record.rotation;
    let sensitivity = tag(record, SENSITIVITY_TAG).map(str::to_string);
    let due = if r.enabled && r.in_progress.is_none() {
        r.next_rotation
    } else {
        // Not rotated automatically: due when the sensitivity's interval since the last change ends.
        let from = r.last_rotated.unwrap_or(record.last_changed);
        sensitivity.as_deref().and_then(schedule::default_interval_days).map(|d| from + d * MILLIS_PER_DAY)
    };
    RotationStatus {
        arn: record.arn.clone(),
        name: record.name.clone(),
        enabled: r.enabled,
        lambda_arn: r.lambda_arn.clone(),
        sensitivity,
        category: tag(record, CATEGORY_TAG).map(str::to_string),
        last_rotated: r.last_rotated,
        due,
        in_progress: r.in_progress.is_some(),
        last_result: r.last_result.clone(),
        failures: r.failures,
    }
}

/// A rotation whose claim was committed: what its steps need, taken from the record the claim wrote.
struct Claimed {
    region: String,
    arn: String,
    name: String,
    run: RotationRun,
    lambda_arn: String,
    metadata: Vec<(String, String)>,
}

impl Claimed {
    fn of(secret: &SecretRecord, run: RotationRun) -> Claimed {
        Claimed {
            region: secret.region.clone(),
            arn: secret.arn.clone(),
            name: secret.name.clone(),
            run,
            lambda_arn: secret.rotation.lambda_arn.clone().unwrap_or_default(),
            metadata: secret.rotation.metadata.clone(),
        }
    }
}

/// Claims a secret for a rotation, or refuses when another rotation holds it. The service's own
/// actors (scheduler, emergency) take over a lapsed claim (its node died, or its attempt failed and
/// awaits a retry) with its token, so the rotation resumes instead of starting a second pending
/// version; a caller's RotateSecret is refused while any rotation is unfinished, as in Secrets Manager.
fn claim(
    state: &SecretState,
    requested_token: Option<String>,
    now: EpochMillis,
    source: ActorSource,
    incident_id: Option<String>,
) -> ServiceResult<RotationRun> {
    if let Some(run) = &state.secret.rotation.in_progress {
        if run.lease_until > now || !source.is_internal() {
            return Err(ServiceError::invalid_request(IN_PROGRESS));
        }
        let mut resumed = run.clone();
        resumed.lease_until = now + ROTATION_LEASE_MILLIS;
        resumed.attempts += 1;
        if incident_id.is_some() {
            resumed.incident_id = incident_id;
        }
        return Ok(resumed);
    }
    // An AWSPENDING version left by someone else (a manual createSecret) blocks a new rotation, as in
    // Secrets Manager.
    let pending = state.versions.iter().find(|v| v.stages.iter().any(|s| s == AWSPENDING));
    if let Some(pending) = pending {
        let also_current = pending.stages.iter().any(|s| s == AWSCURRENT);
        if !also_current && requested_token.as_deref() != Some(pending.version_id.as_str()) {
            return Err(ServiceError::invalid_request(IN_PROGRESS));
        }
    }
    let token = requested_token.unwrap_or_else(new_token);
    if state.versions.iter().any(|v| v.version_id == token && v.stages.iter().any(|s| s == AWSCURRENT)) {
        return Err(ServiceError::invalid_request(format!(
            "The ClientRequestToken {token} is already the current version of this secret."
        )));
    }
    Ok(RotationRun {
        token,
        started: now,
        lease_until: now + ROTATION_LEASE_MILLIS,
        source: source.as_str().to_string(),
        incident_id,
        attempts: 1,
    })
}

/// A write of the secret's metadata together with the label moves decided on `board`.
fn label_decision<R>(state: &SecretState, mut secret: SecretRecord, board: LabelBoard, output: R) -> Decision<R> {
    let stage_updates = board.changed_stages();
    secret.revision = state.secret.revision + 1;
    let mut versions = state.versions.clone();
    apply_stage_updates(&mut versions, &stage_updates);
    Decision {
        write: Some(SecretWrite::Update {
            expected_revision: state.secret.revision,
            secret: secret.clone(),
            new_versions: vec![],
            stage_updates,
            deleted_versions: vec![],
        }),
        new_state: Some(SecretState { secret, versions }),
        output,
    }
}
