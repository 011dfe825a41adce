//! The one error type of the crate: what is wrong with a policy document, and where.

/// A policy document that cannot be accepted. The service answers `MalformedPolicyDocument` with
/// [`PolicyError::to_string`], which names the fault and its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON (or not a JSON object); `line` and `column` are 1-based.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json { line: usize, column: usize, message: String },
    /// The JSON is well formed but breaks a rule of the policy grammar; `path` locates the element,
    /// e.g. `Statement[1].Effect` or `Statement[0].Condition.StringEquals.aws:username`.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// The document is longer than the limit of its kind.
    #[error("policy document has {actual} characters; the limit is {limit}")]
    TooLarge { actual: usize, limit: usize },
}

impl PolicyError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError::Invalid { path: path.into(), message: message.into() }
    }

    /// The location of the fault: `line:column` for bad JSON, the element path for a grammar fault,
    /// `None` for a size fault.
    pub fn location(&self) -> Option<String> {
        match self {
            PolicyError::Json { line, column, .. } => Some(format!("{line}:{column}")),
            PolicyError::Invalid { path, .. } => Some(path.clone()),
            PolicyError::TooLarge { .. } => None,
        }
    }
}
