//! The one place where domain errors become AWS error responses.

use coffer_service::{ErrorKind, ServiceError};
use coffer_sigv4::SigV4Error;

/// An error as it goes on the wire: HTTP status, AWS error code (the model's shape name) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// A body that does not parse as the operation's input shape.
    pub fn serialization(detail: impl std::fmt::Display) -> Self {
        Self::bad_request("SerializationException", format!("The request body could not be read: {detail}"))
    }

    pub fn unknown_operation() -> Self {
        Self::bad_request("UnknownOperationException", "The requested operation is not recognized by this service.")
    }

    pub fn unrecognized_client() -> Self {
        Self::bad_request("UnrecognizedClientException", "The security token included in the request is invalid.")
    }
}

impl From<SigV4Error> for ApiError {
    fn from(e: SigV4Error) -> Self {
        // AWS's JSON services answer every authentication failure with 400.
        ApiError::new(400, e.aws_code(), e.message())
    }
}

/// Secrets Manager's names for the service's error kinds.
pub fn secretsmanager_error(e: ServiceError) -> ApiError {
    let (status, code) = match e.kind {
        ErrorKind::NotFound | ErrorKind::VersionNotFound => (400, "ResourceNotFoundException"),
        ErrorKind::AlreadyExists => (400, "ResourceExistsException"),
        ErrorKind::InvalidParameter => (400, "InvalidParameterException"),
        ErrorKind::InvalidRequest => (400, "InvalidRequestException"),
        ErrorKind::Validation => (400, "ValidationException"),
        ErrorKind::LimitExceeded => (400, "LimitExceededException"),
        ErrorKind::MalformedPolicy => (400, "MalformedPolicyDocumentException"),
        ErrorKind::PublicPolicy => (400, "PublicPolicyException"),
        ErrorKind::InvalidNextToken => (400, "InvalidNextTokenException"),
        ErrorKind::DecryptionFailure => (400, "DecryptionFailure"),
        ErrorKind::EncryptionFailure => (400, "EncryptionFailure"),
        ErrorKind::AccessDenied => (400, "AccessDeniedException"),
        ErrorKind::Unavailable => (503, "ServiceUnavailable"),
        _ => (500, "InternalServiceError"),
    };
    ApiError::new(status, code, e.message)
}

/// Systems Manager's names for the service's error kinds (several without the `Exception` suffix, as in
/// the service model).
pub fn ssm_error(e: ServiceError) -> ApiError {
    let (status, code) = match e.kind {
        ErrorKind::NotFound => (400, "ParameterNotFound"),
        ErrorKind::VersionNotFound => (400, "ParameterVersionNotFound"),
        ErrorKind::AlreadyExists => (400, "ParameterAlreadyExists"),
        ErrorKind::HierarchyTooDeep => (400, "HierarchyLevelLimitExceededException"),
        ErrorKind::TooManyVersions => (400, "ParameterMaxVersionLimitExceeded"),
        ErrorKind::TooManyLabels => (400, "ParameterVersionLabelLimitExceeded"),
        ErrorKind::PatternMismatch => (400, "ParameterPatternMismatchException"),
        ErrorKind::InvalidPattern => (400, "InvalidAllowedPatternException"),
        ErrorKind::InvalidNextToken => (400, "InvalidNextToken"),
        ErrorKind::InvalidFilterKey => (400, "InvalidFilterKey"),
        ErrorKind::InvalidPolicyType => (400, "InvalidPolicyTypeException"),
        ErrorKind::InvalidPolicyAttribute => (400, "InvalidPolicyAttributeException"),
        ErrorKind::InvalidFilterOption => (400, "InvalidFilterOption"),
        ErrorKind::InvalidFilterValue => (400, "InvalidFilterValue"),
        ErrorKind::InvalidParameter | ErrorKind::InvalidRequest | ErrorKind::Validation => (400, "ValidationException"),
        ErrorKind::LimitExceeded => (400, "ParameterLimitExceeded"),
        ErrorKind::DecryptionFailure | ErrorKind::EncryptionFailure | ErrorKind::InvalidKeyId => (400, "InvalidKeyId"),
        // KMS's own errors pass through with KMS's codes, as Parameter Store reports them.
        ErrorKind::KmsDisabled => (400, "DisabledException"),
        ErrorKind::KmsInvalidState => (400, "KMSInvalidStateException"),
        ErrorKind::KmsNotFound => (400, "InvalidKeyId"),
        ErrorKind::AccessDenied => (400, "AccessDeniedException"),
        ErrorKind::Unavailable => (503, "ServiceUnavailable"),
        _ => (500, "InternalServerError"),
    };
    ApiError::new(status, code, e.message)
}

/// KMS's names for the service's error kinds.
pub fn kms_error(e: ServiceError) -> ApiError {
    let (status, code) = match e.kind {
        ErrorKind::NotFound | ErrorKind::KmsNotFound => (400, "NotFoundException"),
        ErrorKind::AlreadyExists => (400, "AlreadyExistsException"),
        ErrorKind::KmsDisabled => (400, "DisabledException"),
        ErrorKind::KmsInvalidState => (400, "KMSInvalidStateException"),
        ErrorKind::InvalidCiphertext => (400, "InvalidCiphertextException"),
        ErrorKind::IncorrectKey => (400, "IncorrectKeyException"),
        ErrorKind::InvalidAliasName => (400, "InvalidAliasNameException"),
        ErrorKind::KmsTag => (400, "TagException"),
        ErrorKind::UnsupportedOperation => (400, "UnsupportedOperationException"),
        ErrorKind::LimitExceeded => (400, "LimitExceededException"),
        ErrorKind::InvalidNextToken => (400, "InvalidMarkerException"),
        ErrorKind::MalformedPolicy => (400, "MalformedPolicyDocumentException"),
        ErrorKind::InvalidParameter | ErrorKind::InvalidRequest | ErrorKind::Validation => (400, "ValidationException"),
        ErrorKind::AccessDenied => (400, "AccessDeniedException"),
        ErrorKind::Unavailable => (503, "DependencyTimeoutException"),
        _ => (500, "KMSInternalException"),
    };
    ApiError::new(status, code, e.message)
}

/// IAM's names for the service's error kinds (the query protocol's codes, with IAM's statuses).
pub fn iam_error(e: ServiceError) -> ApiError {
    let (status, code) = match e.kind {
        ErrorKind::NotFound | ErrorKind::VersionNotFound => (404, "NoSuchEntity"),
        ErrorKind::AlreadyExists => (409, "EntityAlreadyExists"),
        ErrorKind::DeleteConflict => (409, "DeleteConflict"),
        ErrorKind::LimitExceeded => (409, "LimitExceeded"),
        ErrorKind::MalformedPolicy => (400, "MalformedPolicyDocument"),
        ErrorKind::Validation => (400, "ValidationError"),
        ErrorKind::InvalidParameter | ErrorKind::InvalidRequest | ErrorKind::InvalidNextToken => (400, "InvalidInput"),
        ErrorKind::AccessDenied => (403, "AccessDenied"),
        ErrorKind::InvalidAuthenticationCode => (403, "InvalidAuthenticationCode"),
        ErrorKind::ExpiredToken => (400, "ExpiredToken"),
        ErrorKind::InvalidToken => (403, "InvalidClientTokenId"),
        ErrorKind::Unavailable => (503, "ServiceFailure"),
        _ => (500, "ServiceFailure"),
    };
    ApiError::new(status, code, e.message)
}

/// STS's names for the service's error kinds. STS has no not-found or MFA error of its own: a role that
/// cannot be assumed and a wrong MFA code are both `AccessDenied`, as AWS answers them.
pub fn sts_error(e: ServiceError) -> ApiError {
    let (status, code) = match e.kind {
        ErrorKind::AccessDenied | ErrorKind::NotFound | ErrorKind::InvalidAuthenticationCode => (403, "AccessDenied"),
        ErrorKind::ExpiredToken => (400, "ExpiredTokenException"),
        ErrorKind::MalformedPolicy => (400, "MalformedPolicyDocument"),
        ErrorKind::InvalidToken => (403, "InvalidClientTokenId"),
        ErrorKind::Validation | ErrorKind::InvalidParameter | ErrorKind::InvalidRequest => (400, "ValidationError"),
        ErrorKind::Unavailable => (503, "ServiceUnavailable"),
        _ => (500, "InternalFailure"),
    };
    ApiError::new(status, code, e.message)
}

/// A request refused because its audit event could not be taken: 503 on every protocol, with the
/// reason (which names the log's failure, never the request's content).
pub fn audit_error(e: ServiceError) -> ApiError {
    ApiError::new(503, "ServiceUnavailable", e.message)
}

/// CloudTrail's names for the service's error kinds (LookupEvents and Coffer's `CofferAudit.<Op>`).
pub fn cloudtrail_error(e: ServiceError) -> ApiError {
    let (status, code) = match e.kind {
        ErrorKind::InvalidNextToken => (400, "InvalidNextTokenException"),
        ErrorKind::InvalidParameter | ErrorKind::InvalidRequest | ErrorKind::Validation => {
            (400, "InvalidParameterException")
        }
        ErrorKind::AccessDenied => (400, "AccessDeniedException"),
        ErrorKind::Unavailable => (503, "ServiceUnavailableException"),
        _ => (500, "InternalFailure"),
    };
    ApiError::new(status, code, e.message)
}
