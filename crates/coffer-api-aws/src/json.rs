//! Reading and writing JSON 1.1 bodies, the same for every service.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ApiError;

/// Parses a request body into the operation's input shape; an empty body is the empty structure.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    serde_json::from_slice(body).map_err(ApiError::serialization)
}

/// Serializes a response shape.
pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| {
        tracing::error!(error = %e, "serializing a response failed");
        ApiError::new(500, "InternalServiceError", "An internal error occurred.")
    })
}
