//! The service's closed set of errors, in domain words. Each protocol front-end maps a kind to its own
//! wire code (NotFound is `ResourceNotFoundException` in Secrets Manager, `ParameterNotFound` in SSM);
//! the message is written for the caller and never contains a secret value.

use coffer_store::StoreError;

/// What kind of failure, independent of any protocol.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named resource (or version, or label) does not exist.
    NotFound,
    /// A resource with that name, or a version with that token, already exists.
    AlreadyExists,
    /// A parameter value is out of range or malformed.
    InvalidParameter,
    /// The request is not valid in the resource's current state (e.g. marked for deletion).
    InvalidRequest,
    /// The input fails the API's declared constraints (names, lengths, enums).
    Validation,
    /// A quota would be exceeded.
    LimitExceeded,
    /// A policy document is not valid.
    MalformedPolicy,
    /// A resource policy would grant public access while that is blocked.
    PublicPolicy,
    /// A pagination token was not issued by this server or no longer applies.
    InvalidNextToken,
    /// A stored value could not be decrypted with the current keys.
    DecryptionFailure,
    /// A value could not be encrypted.
    EncryptionFailure,
    /// The caller is not allowed to do this.
    AccessDenied,
    /// Storage (or another dependency) is unreachable right now; retrying may succeed.
    Unavailable,
    /// A bug or an unexpected state; details are logged, not returned.
    Internal,
    /// A parameter hierarchy would be deeper than allowed.
    HierarchyTooDeep,
    /// A parameter's version history is full and its oldest version cannot be dropped.
    TooManyVersions,
    /// The named resource exists but the requested version of it does not.
    VersionNotFound,
    /// A version already carries the most labels it may.
    TooManyLabels,
    /// A value does not match the resource's AllowedPattern.
    PatternMismatch,
    /// An AllowedPattern is not a valid regular expression.
    InvalidPattern,
    /// A parameter policy has a type Coffer does not know.
    InvalidPolicyType,
    /// A parameter policy's attributes are missing or malformed.
    InvalidPolicyAttribute,
    /// A listing filter names a key the operation does not filter on.
    InvalidFilterKey,
    /// A listing filter uses an option its key does not support.
    InvalidFilterOption,
    /// A listing filter's values are missing or malformed.
    InvalidFilterValue,
    /// A KMS key (or alias) does not exist.
    KmsNotFound,
    /// The KMS key is disabled.
    KmsDisabled,
    /// The KMS key's state does not allow the operation (pending deletion, ...).
    KmsInvalidState,
    /// A KMS ciphertext is malformed, was altered, or its encryption context differs.
    InvalidCiphertext,
    /// The KMS key named in a decryption is not the one the ciphertext was made under.
    IncorrectKey,
    /// A KMS alias name breaks the naming rules.
    InvalidAliasName,
    /// A KMS tag breaks the tagging rules.
    KmsTag,
    /// The operation is valid in AWS but not for this resource (AWS managed keys, key specs).
    UnsupportedOperation,
    /// An SSM KeyId that names no usable KMS key.
    InvalidKeyId,
    /// An IAM entity cannot be deleted while others depend on it (keys, policies, members).
    DeleteConflict,
    /// The temporary credentials of a request have expired.
    ExpiredToken,
    /// A session token that this server did not issue, or that was altered.
    InvalidToken,
    /// An MFA code that is wrong, stale or already used.
    InvalidAuthenticationCode,
}

/// An error from the service layer: a kind and a caller-facing message.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ServiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ServiceError { kind, message: message.into() }
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, m)
    }
    pub fn already_exists(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, m)
    }
    pub fn invalid_parameter(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, m)
    }
    pub fn invalid_request(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, m)
    }
    pub fn validation(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, m)
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "storage unavailable");
                ServiceError::new(ErrorKind::Unavailable, "the storage backend is unavailable; retry later")
            }
            other => {
                tracing::error!(error = %other, "storage error");
                ServiceError::internal("an internal error occurred")
            }
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
