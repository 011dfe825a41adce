//! One read from the source behind the cache: a secret, a parameter, the values under a path, or (at
//! start) a batch of them — from the server, or from the dotenv file in dotenv mode. Every failure is
//! sorted into a refusal (the answer is no: not found, access denied) or an unavailability (no answer:
//! unreachable, timed out, failing), because the cache treats the two differently.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use coffer_crypto::SecretBytes;
use coffer_wire::secretsmanager::{
    self, BatchGetSecretValueRequest, BatchGetSecretValueResponse, GetSecretValueResponse,
};
use coffer_wire::ssm;

use super::{CachedParameter, CachedSecret, SecretValue, SecretVersion};
use crate::source::{Loaded, Origin, SecretSource, Selection, SourceError};
use crate::{dotenv, Client, ClientError};

/// BatchGetSecretValue's limit on ids per request.
const SECRET_BATCH: usize = 20;
/// GetParameters' limit on names per request.
const PARAMETER_BATCH: usize = 10;

/// Why a read gave no value. Messages are the server's or the transport's: they name secrets,
/// endpoints and principals, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// The source answered no (4xx): passed on to the caller; the cached copy is dropped.
    Rejected { code: String, message: String },
    /// No answer (unreachable, timed out, 5xx, throttled): a cached copy may stand in.
    Unavailable { code: String, message: String },
}

impl FetchError {
    pub(crate) fn code(&self) -> &str {
        match self {
            FetchError::Rejected { code, .. } | FetchError::Unavailable { code, .. } => code,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            FetchError::Rejected { message, .. } | FetchError::Unavailable { message, .. } => message,
        }
    }

    pub(crate) fn from_client(e: ClientError) -> FetchError {
        match e {
            // Throttling is the server asking for patience, not refusing: a cached value may answer meanwhile.
            ClientError::Api { status, code, message, .. }
                if status >= 500 || status == 429 || code == "ThrottlingException" =>
            {
                FetchError::Unavailable { code, message }
            }
            ClientError::Api { code, message, .. } => FetchError::Rejected { code, message },
            e @ ClientError::Transport { .. } => {
                FetchError::Unavailable { code: "ServiceUnavailable".into(), message: e.to_string() }
            }
            // A decoding error's text can quote the answer it choked on, which may hold a value: not kept.
            ClientError::Decode(_) => FetchError::Unavailable {
                code: "InternalFailure".into(),
                message: "the server's answer is not a valid response to the request".into(),
            },
            e @ ClientError::Config(_) => {
                FetchError::Unavailable { code: "ConfigurationError".into(), message: e.to_string() }
            }
        }
    }

    fn from_source(e: SourceError) -> FetchError {
        match e {
            SourceError::Server { source, .. } => FetchError::from_client(source),
            // A file being edited or briefly missing: the cached values stand in meanwhile.
            SourceError::Dotenv(e) => {
                FetchError::Unavailable { code: "DotenvUnreadable".into(), message: e.to_string() }
            }
            other => FetchError::Rejected { code: "InvalidRequest".into(), message: other.to_string() },
        }
    }

    fn not_found(code: &str, message: String) -> FetchError {
        FetchError::Rejected { code: code.into(), message }
    }
}

/// Not found, for a secret or a parameter.
pub(crate) fn is_not_found_code(code: &str) -> bool {
    code == "ResourceNotFoundException" || code == "ParameterNotFound"
}

fn secret_from_response(resp: GetSecretValueResponse) -> CachedSecret {
    let (value, binary) = match (resp.secret_string, resp.secret_binary) {
        (Some(text), _) => (text.0, false),
        (None, Some(blob)) => (blob.0, true),
        (None, None) => (SecretBytes::default(), false),
    };
    CachedSecret {
        origin: Origin::Secret { name: resp.name.clone() },
        name: resp.name,
        arn: Some(resp.arn),
        version_id: Some(resp.version_id),
        version_stages: resp.version_stages,
        created_date: Some(resp.created_date),
        value: SecretValue::new(value),
        binary,
    }
}

fn parameter_from_wire(p: ssm::Parameter) -> CachedParameter {
    CachedParameter {
        origin: Origin::Parameter { name: p.name.clone() },
        name: p.name,
        arn: Some(p.arn),
        parameter_type: Some(p.parameter_type),
        version: Some(p.version),
        last_modified_date: Some(p.last_modified_date),
        value: SecretValue::new(p.value.0),
    }
}

/// The dotenv key an id names: the id itself if the file has that key, else its last path segment in
/// upper snake case (`whatsapp-saas/mvp/admin-token` is `ADMIN_TOKEN`), as `coffer exec` names variables.
fn dotenv_entry<'a>(entries: &'a [dotenv::Entry], id: &str) -> Option<&'a dotenv::Entry> {
    entries.iter().find(|e| e.key == id).or_else(|| {
        let last = id.trim_end_matches('/').rsplit('/').next().unwrap_or(id);
        let last = last.split(':').next().unwrap_or(last);
        let name = crate::source::env_var_name(last)?;
        entries.iter().find(|e| e.key == name)
    })
}

fn read_dotenv(path: &Path) -> Result<Vec<dotenv::Entry>, FetchError> {
    dotenv::read_file(path)
        .map(dotenv::last_wins)
        .map_err(|e| FetchError::Unavailable { code: "DotenvUnreadable".into(), message: e.to_string() })
}

fn dotenv_secret(path: &Path, entries: &[dotenv::Entry], id: &str) -> Result<CachedSecret, FetchError> {
    let entry = dotenv_entry(entries, id).ok_or_else(|| {
        FetchError::not_found("ResourceNotFoundException", format!("{} has no key for the secret {id}", path.display()))
    })?;
    Ok(CachedSecret {
        origin: Origin::Dotenv { file: path.to_path_buf(), key: entry.key.clone(), line: entry.line },
        name: id.to_string(),
        arn: None,
        version_id: None,
        version_stages: vec!["AWSCURRENT".into()],
        created_date: None,
        value: SecretValue::new(SecretBytes::from(entry.value.as_str())),
        binary: false,
    })
}

fn dotenv_parameter(path: &Path, entries: &[dotenv::Entry], name: &str) -> Result<CachedParameter, FetchError> {
    let entry = dotenv_entry(entries, name).ok_or_else(|| {
        FetchError::not_found("ParameterNotFound", format!("{} has no key for the parameter {name}", path.display()))
    })?;
    Ok(CachedParameter {
        origin: Origin::Dotenv { file: path.to_path_buf(), key: entry.key.clone(), line: entry.line },
        name: name.to_string(),
        arn: None,
        parameter_type: None,
        version: None,
        last_modified_date: None,
        value: SecretValue::new(SecretBytes::from(entry.value.as_str())),
    })
}

/// A dotenv file holds one version of each value.
fn dotenv_version_check(version: &SecretVersion) -> Result<(), FetchError> {
    if version.is_current() {
        Ok(())
    } else {
        Err(FetchError::Rejected {
            code: "InvalidRequestException".into(),
            message: "a dotenv file holds one version of each value; only the current one can be read".into(),
        })
    }
}

pub(crate) async fn secret(
    source: &SecretSource,
    id: &str,
    version: &SecretVersion,
) -> Result<CachedSecret, FetchError> {
    match source {
        SecretSource::Server { secrets, .. } => {
            let request = secretsmanager::GetSecretValueRequest {
                secret_id: id.to_string(),
                version_id: version.version_id.clone(),
                version_stage: version.version_stage.clone(),
            };
            let resp: GetSecretValueResponse = secrets
                .call(secretsmanager::SERVICE, "secretsmanager.GetSecretValue", &request)
                .await
                .map_err(FetchError::from_client)?;
            Ok(secret_from_response(resp))
        }
        SecretSource::Dotenv(path) => {
            dotenv_version_check(version)?;
            dotenv_secret(path, &read_dotenv(path)?, id)
        }
    }
}

pub(crate) async fn parameter(source: &SecretSource, name: &str) -> Result<CachedParameter, FetchError> {
    match source {
        SecretSource::Server { parameters, .. } => {
            let request = ssm::GetParameterRequest { name: name.to_string(), with_decryption: Some(true) };
            let resp: ssm::GetParameterResponse = parameters
                .call(ssm::SERVICE, "AmazonSSM.GetParameter", &request)
                .await
                .map_err(FetchError::from_client)?;
            Ok(parameter_from_wire(resp.parameter))
        }
        SecretSource::Dotenv(path) => dotenv_parameter(path, &read_dotenv(path)?, name),
    }
}

pub(crate) async fn path(source: &SecretSource, path: &str, recursive: bool) -> Result<Loaded, FetchError> {
    source.load(&Selection { paths: vec![path.to_string()], recursive }).await.map_err(FetchError::from_source)
}

/// The current versions of many secrets: BatchGetSecretValue 20 at a time, each id answered on its own.
/// Ids a batch does not account for — or every id, when the caller may not call BatchGetSecretValue
/// (least-privilege policies often allow only GetSecretValue) — are read one by one.
pub(crate) async fn secrets(
    source: &SecretSource,
    ids: &[String],
) -> HashMap<String, Result<Arc<CachedSecret>, FetchError>> {
    let mut out = HashMap::with_capacity(ids.len());
    match source {
        SecretSource::Dotenv(path) => {
            let entries = read_dotenv(path);
            for id in ids {
                let got = entries.as_ref().map_err(Clone::clone).and_then(|e| dotenv_secret(path, e, id)).map(Arc::new);
                out.insert(id.clone(), got);
            }
        }
        SecretSource::Server { secrets: client, .. } => {
            for chunk in ids.chunks(SECRET_BATCH) {
                match batch_get_secrets(client, chunk).await {
                    Ok(answers) => out.extend(answers),
                    Err(e @ FetchError::Unavailable { .. }) => {
                        out.extend(chunk.iter().map(|id| (id.clone(), Err(e.clone()))));
                    }
                    // Refused as a whole (not allowed, or not served): the ids are read one by one below.
                    Err(FetchError::Rejected { .. }) => {}
                }
            }
            for id in ids {
                if !out.contains_key(id) {
                    let got = secret(source, id, &SecretVersion::current()).await.map(Arc::new);
                    out.insert(id.clone(), got);
                }
            }
        }
    }
    out
}

async fn batch_get_secrets(
    client: &Client,
    ids: &[String],
) -> Result<Vec<(String, Result<Arc<CachedSecret>, FetchError>)>, FetchError> {
    let request = BatchGetSecretValueRequest { secret_id_list: Some(ids.to_vec()), ..Default::default() };
    let resp: BatchGetSecretValueResponse = client
        .call(secretsmanager::SERVICE, "secretsmanager.BatchGetSecretValue", &request)
        .await
        .map_err(FetchError::from_client)?;
    let mut answers = Vec::with_capacity(ids.len());
    for error in resp.errors {
        if ids.contains(&error.secret_id) {
            let failure = FetchError::from_client(ClientError::Api {
                status: 400,
                code: error.error_code,
                message: error.message,
                request_id: None,
            });
            answers.push((error.secret_id, Err(failure)));
        }
    }
    for value in resp.secret_values {
        // An id may be the name or the full ARN; a partial ARN is left to the one-by-one read.
        let Some(id) = ids.iter().find(|id| **id == value.name || **id == value.arn).cloned() else { continue };
        answers.push((id, Ok(Arc::new(secret_from_response(value)))));
    }
    Ok(answers)
}

/// Many parameters (decrypted): GetParameters 10 at a time; names it does not account for are read one by one.
pub(crate) async fn parameters(
    source: &SecretSource,
    names: &[String],
) -> HashMap<String, Result<Arc<CachedParameter>, FetchError>> {
    let mut out = HashMap::with_capacity(names.len());
    match source {
        SecretSource::Dotenv(path) => {
            let entries = read_dotenv(path);
            for name in names {
                let got =
                    entries.as_ref().map_err(Clone::clone).and_then(|e| dotenv_parameter(path, e, name)).map(Arc::new);
                out.insert(name.clone(), got);
            }
        }
        SecretSource::Server { parameters: client, .. } => {
            for chunk in names.chunks(PARAMETER_BATCH) {
                let request = ssm::GetParametersRequest { names: chunk.to_vec(), with_decryption: Some(true) };
                let answer: Result<ssm::GetParametersResponse, FetchError> = client
                    .call(ssm::SERVICE, "AmazonSSM.GetParameters", &request)
                    .await
                    .map_err(FetchError::from_client);
                match answer {
                    Ok(resp) => {
                        for invalid in resp.invalid_parameters {
                            let message = format!("parameter {invalid} not found");
                            out.insert(invalid, Err(FetchError::not_found("ParameterNotFound", message)));
                        }
                        for p in resp.parameters {
                            let asked = format!("{}{}", p.name, p.selector.as_deref().unwrap_or(""));
                            let Some(name) = chunk.iter().find(|n| **n == asked || **n == p.name).cloned() else {
                                continue;
                            };
                            out.insert(name, Ok(Arc::new(parameter_from_wire(p))));
                        }
                    }
                    Err(e @ FetchError::Unavailable { .. }) => {
                        out.extend(chunk.iter().map(|name| (name.clone(), Err(e.clone()))));
                    }
                    Err(FetchError::Rejected { .. }) => {}
                }
            }
            for name in names {
                if !out.contains_key(name) {
                    out.insert(name.clone(), parameter(source, name).await.map(Arc::new));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str) -> dotenv::Entry {
        dotenv::Entry { key: key.into(), value: zeroize::Zeroizing::new(value.into()), line: 1 }
    }

    #[test]
    fn dotenv_keys_are_the_id_or_its_variable_name() {
        let entries = [entry("ADMIN_TOKEN", "a"), entry("whatsapp/db", "b")];
        assert_eq!(dotenv_entry(&entries, "whatsapp-saas/mvp/admin-token").unwrap().key, "ADMIN_TOKEN");
        assert_eq!(dotenv_entry(&entries, "ADMIN_TOKEN").unwrap().key, "ADMIN_TOKEN");
        assert_eq!(dotenv_entry(&entries, "whatsapp/db").unwrap().key, "whatsapp/db");
        assert_eq!(dotenv_entry(&entries, "/app/admin-token:3").unwrap().key, "ADMIN_TOKEN");
        assert!(dotenv_entry(&entries, "other").is_none());
    }

    #[test]
    fn failures_are_sorted_into_refusals_and_unavailability() {
        let api =
            |status, code: &str| ClientError::Api { status, code: code.into(), message: "m".into(), request_id: None };
        assert!(matches!(FetchError::from_client(api(400, "ResourceNotFoundException")), FetchError::Rejected { .. }));
        assert!(matches!(FetchError::from_client(api(400, "AccessDeniedException")), FetchError::Rejected { .. }));
        assert!(matches!(FetchError::from_client(api(400, "ThrottlingException")), FetchError::Unavailable { .. }));
        assert!(matches!(
            FetchError::from_client(api(503, "ServiceUnavailableException")),
            FetchError::Unavailable { .. }
        ));
        let transport = ClientError::Transport { endpoint: "http://x".into(), detail: "refused".into() };
        assert!(matches!(FetchError::from_client(transport), FetchError::Unavailable { .. }));
        let decode = FetchError::from_client(ClientError::Decode("{\"SecretString\":\"canary\"".into()));
        assert!(!decode.message().contains("canary"));
    }
}
