//! The storage boundary of Coffer.
//!
//! Every backend (the embedded SQLite file, PostgreSQL) implements [`Store`]. The trait is deliberately
//! small and record-oriented: the service layer owns all domain rules (staging labels, idempotency,
//! pruning, validation) and hands the store whole, already-decided changes.
//!
//! Architecture Invariant: the store only ever sees ciphertext. Secret values arrive as sealed envelopes
//! (see `coffer-crypto`), access-key secrets likewise; nothing in this crate can decrypt them.
//!
//! Architecture Invariant: every change to one secret is a compare-and-swap on that secret's `revision`.
//! Two writers racing on the same secret (two requests, or two Coffer nodes over one database) cannot both
//! win: the loser gets [`StoreError::Conflict`] and the service re-reads and re-decides. This is what keeps
//! staging-label moves and ClientRequestToken idempotency correct without a global lock.
//!
//! Architecture Invariant: a write is acknowledged (the future resolves `Ok`) only after it is durable.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod audit;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod copy;
pub mod join;
pub mod memory;

pub use audit::{
    AuditAppend, AuditBatch, AuditDigestAppend, AuditDigestRecord, AuditHead, AuditQuery, AuditRecord, LookupAttribute,
    ValueMatch,
};

pub use join::join_in_order;
pub use memory::MemoryStore;

/// Milliseconds since the Unix epoch, UTC. The one time representation storage knows.
pub type EpochMillis = i64;

/// A key/value tag as Secrets Manager and SSM carry them. Order is preserved as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Whether a version holds a `SecretString` or a `SecretBinary`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueKind {
    String,
    Binary,
}

impl ValueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Binary => "binary",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "string" => Some(ValueKind::String),
            "binary" => Some(ValueKind::Binary),
            _ => None,
        }
    }
}

/// Rotation settings of a secret, as RotateSecret records them, and the state of its rotations. Stored
/// as one document with the secret (every field defaults, so documents written by older releases load).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RotationSettings {
    pub enabled: bool,
    pub lambda_arn: Option<String>,
    pub automatically_after_days: Option<i64>,
    pub schedule_expression: Option<String>,
    pub duration: Option<String>,
    pub last_rotated: Option<EpochMillis>,
    pub next_rotation: Option<EpochMillis>,
    /// RotateSecret's ExternalSecretRotationMetadata: settings of the rotator (key → value).
    pub metadata: Vec<(String, String)>,
    /// The rotation under way, if any: its claim on the secret.
    pub in_progress: Option<RotationRun>,
    /// How the last finished or failed attempt ended.
    pub last_result: Option<RotationResult>,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// When a failed rotation is retried.
    pub retry_at: Option<EpochMillis>,
    /// When AWSPREVIOUS stops being readable (rotators with an overlap period, such as signing keys).
    pub previous_expires: Option<EpochMillis>,
}

/// A rotation under way: the version it creates and who holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RotationRun {
    /// The ClientRequestToken: the id of the version the rotation creates.
    pub token: String,
    pub started: EpochMillis,
    /// The claim lapses at this time (a node that died mid-rotation); another may then resume it.
    pub lease_until: EpochMillis,
    /// `api`, `scheduler`, `emergency`...
    pub source: String,
    pub incident_id: Option<String>,
    /// Attempts made with this token.
    pub attempts: u32,
}

/// The outcome of one rotation attempt (never a value: the step and an error message).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RotationResult {
    pub at: EpochMillis,
    pub succeeded: bool,
    pub token: String,
    /// The step that failed (`createSecret`, `setSecret`, `testSecret`, `finishSecret`).
    pub failed_step: Option<String>,
    pub message: Option<String>,
    pub incident_id: Option<String>,
}

/// The metadata of one secret (everything but its versions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRecord {
    /// The full ARN, including the random six-character suffix; the secret's identity.
    pub arn: String,
    pub region: String,
    pub name: String,
    pub description: Option<String>,
    /// The KMS key the caller asked for; `None` means the default key.
    pub kms_key_id: Option<String>,
    pub tags: Vec<Tag>,
    pub created: EpochMillis,
    pub last_changed: EpochMillis,
    /// Midnight UTC of the last day the value was read (AWS reports it day-granular).
    pub last_accessed: Option<EpochMillis>,
    /// When set, the secret is scheduled for deletion at this time.
    pub deletion_date: Option<EpochMillis>,
    pub resource_policy: Option<String>,
    pub rotation: RotationSettings,
    /// Bumped by one on every write; see the crate docs.
    pub revision: u64,
}

/// One version of a secret's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionRecord {
    pub version_id: String,
    /// Staging labels currently attached (AWSCURRENT, AWSPREVIOUS, AWSPENDING, custom ones).
    pub stages: Vec<String>,
    pub created: EpochMillis,
    pub kind: ValueKind,
    /// The sealed value: a versioned `coffer-crypto` envelope bound to (ARN, version id).
    pub envelope: Vec<u8>,
}

/// A secret with all its stored versions, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretState {
    pub secret: SecretRecord,
    pub versions: Vec<VersionRecord>,
}

/// A decided change to one secret.
#[derive(Clone, Debug)]
pub enum SecretWrite {
    /// Insert a new secret. Fails with [`StoreError::AlreadyExists`] when a secret of that name exists in
    /// the region (including one scheduled for deletion).
    Create(SecretState),
    /// Replace the secret's metadata and change its versions, if its revision is still `expected_revision`.
    /// `secret.revision` must be `expected_revision + 1`.
    Update {
        expected_revision: u64,
        secret: SecretRecord,
        new_versions: Vec<VersionRecord>,
        /// Versions whose label set changes: (version id, the complete new label set).
        stage_updates: Vec<(String, Vec<String>)>,
        /// Versions removed for good (pruning).
        deleted_versions: Vec<String>,
    },
    /// Remove the secret and all its versions, if its revision is still `expected_revision`.
    Delete { arn: String, expected_revision: u64 },
}

impl SecretWrite {
    /// Checks the contract every backend relies on before applying a write: an update moves the
    /// revision forward by exactly one, so a compare-and-swap can never be undone or skipped.
    pub fn check(&self) -> StoreResult<()> {
        match self {
            SecretWrite::Update { expected_revision, secret, .. } if secret.revision != expected_revision + 1 => {
                Err(StoreError::InvalidWrite(format!(
                    "update of {} must set revision {} (expected {} + 1), not {}",
                    secret.arn,
                    expected_revision + 1,
                    expected_revision,
                    secret.revision
                )))
            }
            _ => Ok(()),
        }
    }

    /// The ARN of the secret this write touches.
    pub fn arn(&self) -> &str {
        match self {
            SecretWrite::Create(state) => &state.secret.arn,
            SecretWrite::Update { secret, .. } => &secret.arn,
            SecretWrite::Delete { arn, .. } => arn,
        }
    }
}

/// One version of a Parameter Store parameter. Everything a version's history shows is kept per version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterVersionRecord {
    /// 1, 2, 3, ... per parameter.
    pub version: i64,
    /// `String`, `StringList` or `SecureString`.
    pub parameter_type: String,
    /// The sealed value (every type is encrypted at rest; SecureString only changes what the API shows).
    #[serde(skip)]
    pub envelope: Vec<u8>,
    pub description: Option<String>,
    pub key_id: Option<String>,
    pub allowed_pattern: Option<String>,
    pub tier: String,
    pub data_type: String,
    pub policies: Option<String>,
    pub labels: Vec<String>,
    pub last_modified: EpochMillis,
    pub last_modified_user: String,
}

/// A parameter and its kept versions, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterState {
    pub region: String,
    pub name: String,
    /// The hierarchy level it lives in (`/a/b` for `/a/b/c`; `/` for top-level names), for one-level paths.
    pub parent_path: String,
    pub tags: Vec<Tag>,
    /// Bumped by one on every write, as for secrets.
    pub revision: u64,
    pub versions: Vec<ParameterVersionRecord>,
}

/// A decided change to one parameter (compare-and-swap on its revision, as for secrets).
// Built once per request and moved, never stored in bulk: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ParameterWrite {
    /// Insert a new parameter; [`StoreError::AlreadyExists`] if the name is taken in the region.
    Create(ParameterState),
    /// Replace the parameter's tags and revision, add a version, relabel and drop versions.
    Update {
        expected_revision: u64,
        region: String,
        name: String,
        revision: u64,
        tags: Vec<Tag>,
        new_version: Option<ParameterVersionRecord>,
        /// (version, the complete new label set).
        label_updates: Vec<(i64, Vec<String>)>,
        dropped_versions: Vec<i64>,
    },
    Delete {
        region: String,
        name: String,
        expected_revision: u64,
    },
}

impl ParameterWrite {
    /// The same contract as [`SecretWrite::check`].
    pub fn check(&self) -> StoreResult<()> {
        match self {
            ParameterWrite::Update { expected_revision, revision, name, .. } if *revision != expected_revision + 1 => {
                Err(StoreError::InvalidWrite(format!(
                    "update of parameter {name} must set revision {}, not {revision}",
                    expected_revision + 1
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Which parameters a listing returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterQuery {
    pub region: String,
    /// `/a/b` (no trailing slash) or `/` for everything.
    pub path: String,
    /// Everything below `path`, or only its direct children.
    pub recursive: bool,
    /// Resume after this name (exclusive).
    pub after: Option<String>,
    pub limit: usize,
    /// Return only each parameter's newest version (what a path listing shows), not its history.
    pub latest_only: bool,
}

/// A KMS key's metadata (everything but its material).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsKeyRecord {
    pub region: String,
    /// The key's UUID; its identity within the region.
    pub key_id: String,
    pub arn: String,
    pub description: String,
    /// `CUSTOMER` for keys made with CreateKey, `AWS` for the default keys of Secrets Manager and SSM.
    pub key_manager: String,
    /// `Enabled`, `Disabled` or `PendingDeletion`.
    pub key_state: String,
    pub key_usage: String,
    pub key_spec: String,
    pub origin: String,
    pub created: EpochMillis,
    pub deletion_date: Option<EpochMillis>,
    pub rotation_enabled: bool,
    pub rotation_period_days: i64,
    pub next_rotation: Option<EpochMillis>,
    pub tags: Vec<Tag>,
    pub policy: Option<String>,
    /// Bumped by one on every write, as for secrets.
    pub revision: u64,
}

/// One version of a KMS key's material: 32 random bytes sealed under the master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMaterialRecord {
    /// 1, 2, 3, ... per key; envelopes name the version that wrapped their data key.
    pub version: u32,
    pub created: EpochMillis,
    pub sealed: Vec<u8>,
}

/// A KMS key and all its material versions, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsKeyState {
    pub key: KmsKeyRecord,
    pub materials: Vec<KeyMaterialRecord>,
}

/// A decided change to one KMS key (compare-and-swap on its revision).
#[derive(Clone, Debug)]
pub enum KmsKeyWrite {
    /// Insert a new key; [`StoreError::AlreadyExists`] if the id is taken in the region.
    Create(KmsKeyState),
    /// Replace the metadata (whose `revision` must be `expected_revision + 1`) and optionally add a
    /// material version. Material is never removed while the key exists: old envelopes need it.
    Update { expected_revision: u64, key: KmsKeyRecord, new_material: Option<KeyMaterialRecord> },
    /// Remove the key, its material and the aliases that point at it.
    Delete { region: String, key_id: String, expected_revision: u64 },
}

impl KmsKeyWrite {
    /// The same contract as [`SecretWrite::check`].
    pub fn check(&self) -> StoreResult<()> {
        match self {
            KmsKeyWrite::Update { expected_revision, key, .. } if key.revision != expected_revision + 1 => {
                Err(StoreError::InvalidWrite(format!(
                    "update of key {} must set revision {}, not {}",
                    key.key_id,
                    expected_revision + 1,
                    key.revision
                )))
            }
            _ => Ok(()),
        }
    }
}

/// A KMS alias (`alias/...`) and the key it points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasRecord {
    pub region: String,
    /// The full name, `alias/` included.
    pub alias_name: String,
    pub target_key_id: String,
    pub created: EpochMillis,
    pub last_updated: EpochMillis,
}

/// A decided change to one alias.
#[derive(Clone, Debug)]
pub enum AliasWrite {
    /// [`StoreError::AlreadyExists`] if the name is taken in the region.
    Create(AliasRecord),
    /// Points an existing alias at another key; [`StoreError::NotFound`] if it does not exist.
    Update(AliasRecord),
    /// [`StoreError::NotFound`] if it does not exist.
    Delete { region: String, alias_name: String },
}

/// One envelope replaced by its re-wrapped form, only if it is still the stored one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeSwap<V> {
    /// The version: a version id for secrets, a version number for parameters.
    pub version: V,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// An access key that SigV4 requests are signed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    /// The secret access key, sealed with the keyring (AAD = the access key id).
    pub sealed_secret: Vec<u8>,
    /// The ARN of the principal the key belongs to.
    pub principal_arn: String,
    pub user_name: String,
    /// "Active" or "Inactive".
    pub status: String,
    pub created: EpochMillis,
}

/// The kinds of IAM entity. Names are unique within a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IamKind {
    User,
    Group,
    Role,
    /// A customer-managed policy with its versions.
    Policy,
    /// A virtual MFA device (its seed sealed inside the document).
    MfaDevice,
}

impl IamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IamKind::User => "user",
            IamKind::Group => "group",
            IamKind::Role => "role",
            IamKind::Policy => "policy",
            IamKind::MfaDevice => "mfa",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => IamKind::User,
            "group" => IamKind::Group,
            "role" => IamKind::Role,
            "policy" => IamKind::Policy,
            "mfa" => IamKind::MfaDevice,
            _ => return None,
        })
    }
}

/// One IAM entity. Its `document` is owned by the service (JSON it defines); the store keeps it opaque
/// and only enforces names and revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IamEntityRecord {
    pub kind: IamKind,
    pub name: String,
    pub document: Vec<u8>,
    /// 1 when created, bumped by one on every update (compare-and-swap, as for secrets).
    pub revision: u64,
}

/// One decided change to IAM. A batch of them ([`Store::write_iam`]) is applied atomically and bumps
/// the IAM generation once, so every node sees a change whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IamWrite {
    /// [`StoreError::AlreadyExists`] when an entity of that kind and name exists; revision must be 1.
    Create(IamEntityRecord),
    /// [`StoreError::Conflict`] unless the stored revision is `expected_revision` and the record's is
    /// one more; [`StoreError::NotFound`] when it does not exist.
    Update { expected_revision: u64, record: IamEntityRecord },
    /// [`StoreError::Conflict`] / [`StoreError::NotFound`] as for updates.
    Delete { kind: IamKind, name: String, expected_revision: u64 },
    /// Inserts an access key; [`StoreError::AlreadyExists`] on a duplicate id.
    InsertAccessKey(AccessKeyRecord),
    /// Sets an access key's status ("Active"/"Inactive"); [`StoreError::NotFound`] when it is gone.
    AccessKeyStatus { access_key_id: String, status: String },
    /// Removes an access key; [`StoreError::NotFound`] when it is gone.
    DeleteAccessKey { access_key_id: String },
}

/// What can go wrong in a backend, in storage words. The service maps these to its own errors.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The record's revision moved since it was read; re-read and re-decide.
    #[error("concurrent modification")]
    Conflict,
    /// A unique name is already taken.
    #[error("already exists")]
    AlreadyExists,
    /// The record to change does not exist (any more).
    #[error("not found")]
    NotFound,
    /// The backend cannot be reached or cannot commit right now; the request may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not parse; never retried.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The write breaks the trait's contract (a caller bug); nothing was changed.
    #[error("invalid write: {0}")]
    InvalidWrite(String),
    /// The schema in the database is newer than this binary understands.
    #[error("database schema version {found} is newer than this coffer understands ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A committed change that may make a node's cached copy of a record stale, as a shared backend's
/// [change feed](Store::change_feed) announces it. It names the record only: never a value.
///
/// Every node hears every committed change, its own included (for those it already updated its
/// caches; the notice costs one extra reload).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChangeNotice {
    /// A secret (its metadata or its versions) changed or was deleted.
    Secret { arn: String },
    /// A parameter (its versions, labels or tags) changed or was deleted.
    Parameter { region: String, name: String },
    /// A KMS key (its state, policy or material) changed or was deleted.
    KmsKey { region: String, key_id: String },
    /// Notices may have been missed (the feed's listener was cut off and reconnected, or a receiver
    /// fell behind): every cached record must be read again.
    Everything,
}

/// The storage backend. Implementations must pass [`conformance`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and status ("sqlite", "postgres").
    fn backend_name(&self) -> &'static str;

    /// The changes committed to the store by any node, for a backend that several nodes share (so a
    /// node can drop cached copies another node made stale); `None` for a backend only one node uses,
    /// where there is nothing to hear. Each call subscribes a new receiver, which hears the changes
    /// committed from then on; delivery is best effort (a lost connection loses notices, which is
    /// announced by [`ChangeNotice::Everything`]), so callers still bound how long they trust a cache.
    fn change_feed(&self) -> Option<tokio::sync::broadcast::Receiver<ChangeNotice>> {
        None
    }

    /// Whether this node leads the background duties (scheduled deletion, rotation, key rotation) that
    /// must run on one node at a time. Called before every scheduler pass: the answer holds until the
    /// next call. A backend several nodes share takes a lock that the node's death releases (PostgreSQL:
    /// a session advisory lock on a connection of its own), so leadership moves when the leader dies; a
    /// backend only one node uses always leads.
    async fn hold_scheduler_leadership(&self) -> StoreResult<bool> {
        Ok(true)
    }

    /// Gives leadership up (at shutdown), so another node takes over at its next pass.
    async fn release_scheduler_leadership(&self) {}

    /// Loads a secret and all its versions by exact name within a region.
    async fn load_secret_by_name(&self, region: &str, name: &str) -> StoreResult<Option<SecretState>>;

    /// Loads a secret and all its versions by its full ARN.
    async fn load_secret_by_arn(&self, arn: &str) -> StoreResult<Option<SecretState>>;

    /// The metadata of every secret in a region (including those scheduled for deletion), ordered by
    /// creation time, oldest first.
    async fn list_secrets(&self, region: &str) -> StoreResult<Vec<SecretRecord>>;

    /// A secret's current revision without loading it (`None` when no secret has that ARN): how a node
    /// checks that its cached copy is still current when other nodes write to the same store. Backends
    /// with a cheaper single-column read override the default, which loads the whole secret.
    async fn secret_revision(&self, arn: &str) -> StoreResult<Option<u64>> {
        Ok(self.load_secret_by_arn(arn).await?.map(|state| state.secret.revision))
    }

    /// A parameter's current revision without loading it, as [`secret_revision`](Self::secret_revision).
    async fn parameter_revision(&self, region: &str, name: &str) -> StoreResult<Option<u64>> {
        Ok(self.load_parameter(region, name).await?.map(|p| p.revision))
    }

    /// Applies one decided change atomically and durably.
    async fn write_secret(&self, write: SecretWrite, audit: Option<AuditAppend>) -> StoreResult<()>;

    /// Records the (day-granular) last access time without bumping the revision: a read must not
    /// conflict with writers.
    async fn touch_secret_accessed(&self, arn: &str, day: EpochMillis) -> StoreResult<()>;

    /// Secrets whose scheduled deletion date is at or before `now`: (ARN, revision).
    async fn secrets_due_for_deletion(&self, now: EpochMillis) -> StoreResult<Vec<(String, u64)>>;

    /// Stores a new access key. Fails with [`StoreError::AlreadyExists`] on a duplicate id.
    async fn insert_access_key(&self, key: AccessKeyRecord) -> StoreResult<()>;

    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>>;

    /// Loads a parameter and its versions by exact name within a region.
    async fn load_parameter(&self, region: &str, name: &str) -> StoreResult<Option<ParameterState>>;

    /// Applies one decided parameter change atomically and durably.
    async fn write_parameter(&self, write: ParameterWrite, audit: Option<AuditAppend>) -> StoreResult<()>;

    /// Parameters under a path, ordered by name, at most `limit`. A page costs a range scan of one
    /// index, never a scan of the whole store.
    async fn list_parameters(&self, query: ParameterQuery) -> StoreResult<Vec<ParameterState>>;

    /// The names a [`list_parameters`](Store::list_parameters) call would return, and nothing else: an
    /// index-only range scan, for callers that serve the records from a cache.
    async fn list_parameter_names(&self, query: ParameterQuery) -> StoreResult<Vec<String>>;

    /// Reads an installation-wide setting (key check, passphrase parameters, ...).
    async fn get_setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;

    /// Writes a setting only if it is not set yet. Returns whether it was written.
    async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> StoreResult<bool>;

    /// Loads a KMS key and its material versions.
    async fn load_kms_key(&self, region: &str, key_id: &str) -> StoreResult<Option<KmsKeyState>>;

    /// The metadata of every KMS key in a region, ordered by creation time, ties by key id.
    async fn list_kms_keys(&self, region: &str) -> StoreResult<Vec<KmsKeyRecord>>;

    /// Applies one decided change to a KMS key atomically and durably.
    async fn write_kms_key(&self, write: KmsKeyWrite, audit: Option<AuditAppend>) -> StoreResult<()>;

    async fn load_alias(&self, region: &str, alias_name: &str) -> StoreResult<Option<AliasRecord>>;

    /// Every alias in a region, ordered by name.
    async fn list_aliases(&self, region: &str) -> StoreResult<Vec<AliasRecord>>;

    async fn write_alias(&self, write: AliasWrite, audit: Option<AuditAppend>) -> StoreResult<()>;

    /// Replaces version envelopes of a secret by re-wrapped ones, each only if the stored envelope is
    /// still `old` (a version rewritten or removed meanwhile is skipped). Does not bump the revision:
    /// the value is unchanged. Returns how many envelopes were replaced.
    async fn rewrap_secret_versions(&self, arn: &str, swaps: Vec<EnvelopeSwap<String>>) -> StoreResult<usize>;

    /// The same for a parameter's versions.
    async fn rewrap_parameter_versions(
        &self,
        region: &str,
        name: &str,
        swaps: Vec<EnvelopeSwap<i64>>,
    ) -> StoreResult<usize>;

    /// Every IAM entity, ordered by (kind, name), with the IAM generation they were read at (one
    /// snapshot).
    async fn load_iam(&self) -> StoreResult<(u64, Vec<IamEntityRecord>)>;

    /// The IAM generation: 0 before any IAM write, bumped by every [`write_iam`](Store::write_iam)
    /// batch. Nodes poll it to know when their copy of IAM is stale.
    async fn iam_generation(&self) -> StoreResult<u64>;

    /// Applies a batch of IAM changes atomically (all or none) and durably; returns the new generation.
    async fn write_iam(&self, writes: Vec<IamWrite>, audit: Option<AuditAppend>) -> StoreResult<u64>;

    /// The access keys whose `user_name` is `user_name`, ordered by creation time.
    async fn list_access_keys(&self, user_name: &str) -> StoreResult<Vec<AccessKeyRecord>>;

    /// Replaces a setting only if it still holds `expected` (a compare-and-swap, so two nodes changing
    /// the same setting cannot both win). Returns whether it was written; a missing setting is never
    /// written.
    async fn replace_setting(&self, key: &str, expected: &[u8], value: &[u8]) -> StoreResult<bool>;

    // ---- The audit log (see `audit.rs`). Every `write_*` above takes the change's event: when given,
    // it is appended to the chain in the same transaction as the change, or not at all.

    /// Appends events to the chain in the given order, durably, in one transaction; returns the new head.
    async fn append_audit(&self, events: AuditBatch) -> StoreResult<AuditHead>;

    /// The newest record's seq and hash (seq 0 and GENESIS when the log was never written).
    async fn audit_head(&self) -> StoreResult<AuditHead>;

    /// The oldest record still kept (None when there is none).
    async fn audit_oldest_seq(&self) -> StoreResult<Option<u64>>;

    /// A page of records matching the query, newest first (by seq).
    async fn query_audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditRecord>>;

    /// Up to `limit` records with `seq >= from_seq`, oldest first: export, sinks and verification.
    async fn audit_records_from(&self, from_seq: u64, limit: usize) -> StoreResult<Vec<AuditRecord>>;

    /// The first record whose `time_ms >= time` (None when every record is older).
    async fn audit_seq_at(&self, time_ms: EpochMillis) -> StoreResult<Option<u64>>;

    /// Appends a signed digest if the newest digest's number is still `expected_latest` (0: none yet);
    /// [`StoreError::Conflict`] otherwise. Returns the new digest's number.
    async fn append_audit_digest(&self, expected_latest: u64, digest: AuditDigestAppend) -> StoreResult<u64>;

    /// Up to `limit` digests with `number >= from_number`, oldest first.
    async fn audit_digests(&self, from_number: u64, limit: usize) -> StoreResult<Vec<AuditDigestRecord>>;

    /// The newest digest.
    async fn latest_audit_digest(&self) -> StoreResult<Option<AuditDigestRecord>>;

    /// Retention: removes at most `limit` of the oldest records with `seq < before_seq` (with their
    /// lookup entries) and every digest numbered below `keep_digests_from`. Returns how many records
    /// went. The head never moves.
    async fn prune_audit(&self, before_seq: u64, keep_digests_from: u64, limit: usize) -> StoreResult<u64>;

    // Whole-store copies (`coffer storage migrate`, see [`copy`]): enumerations that the per-record
    // reads above do not offer, and the one write a copy of a pruned audit log needs.

    /// Every setting, ordered by key.
    async fn list_settings(&self) -> StoreResult<Vec<(String, Vec<u8>)>>;

    /// Every region that holds a secret, parameter, KMS key or alias, sorted.
    async fn list_regions(&self) -> StoreResult<Vec<String>>;

    /// Every access key, ordered by id.
    async fn list_all_access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>>;

    /// Makes an audit log that never held a record or a digest continue from `head` (the next record
    /// is `head.seq + 1`, chained to `head.hash`) and number its next digest `last_digest_number + 1`:
    /// how a copy of a pruned log keeps every seq, hash and digest number of the original.
    /// [`StoreError::Conflict`] if the log ever held a record or digest.
    async fn start_audit_log_at(&self, head: AuditHead, last_digest_number: u64) -> StoreResult<()>;
}
