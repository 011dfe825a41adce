//! The AWS wire shapes Coffer speaks, as plain serde types named as in the AWS service models
//! (botocore `service-2.json`): PascalCase members, absent optionals omitted (never `null`), timestamps as
//! epoch seconds, blobs as base64.
//!
//! Shared by the server's front-ends and by the CLI/client, so the client never links the HTTP server.
//! Secret material is carried in [`Sensitive`], which zeroizes and never prints.

pub mod cloudtrail;
pub mod events;
pub mod kms;
pub mod rotation;
pub mod scan;
pub mod secretsmanager;
mod sensitive;
pub mod ssm;
pub mod status;

pub use sensitive::{Sensitive, SensitiveBlob};

use serde::{Deserialize, Serialize};

/// The JSON 1.1 content type.
pub const JSON_1_1: &str = "application/x-amz-json-1.1";

/// An AWS JSON error body: `{"__type": "...", "message": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    #[serde(rename = "__type")]
    pub error_type: String,
    #[serde(alias = "Message")]
    pub message: String,
}

/// Milliseconds to AWS's epoch-seconds timestamps (fractional).
pub fn epoch_seconds(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

/// A `{Key, Value}` tag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}
