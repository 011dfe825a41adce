//! Where a program's environment comes from: the secrets and parameters under some paths on a Coffer
//! server, or — for offline development — a local dotenv file. `coffer exec` and `coffer env` load
//! through this, and so can anything else that turns secrets into environment variables, so that the
//! naming rules, JSON expansion and collision checks are the same everywhere.
//!
//! From the server, a path `/non-prod/backend` selects:
//! - the secrets named `/non-prod/backend/<name>` or `non-prod/backend/<name>` (the leading `/` of a
//!   secret name is optional), found with ListSecrets' `name` filter and read with GetSecretValue;
//! - the parameters `/non-prod/backend/<name>`, read with GetParametersByPath (decrypted).
//!
//! Only direct children, unless `recursive` (then every level below, as GetParametersByPath's
//! `Recursive`). Each becomes the variable named by its last path segment in upper snake case
//! ([`env_var_name`]: `database-password` is `DATABASE_PASSWORD`).
//!
//! From a dotenv file every key of the file is loaded as it is written there, whatever the paths.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use coffer_wire::secretsmanager::{self, Filter, GetSecretValueResponse, ListSecretsRequest, ListSecretsResponse};
use coffer_wire::ssm::{self, DescribeParametersRequest, GetParametersByPathRequest, ParameterStringFilter};
use coffer_wire::Sensitive;
use zeroize::{Zeroize, Zeroizing};

use crate::{dotenv, Client, ClientError};

/// What the `COFFER_SOURCE` variable or a `--source` flag names: `server` or `dotenv:PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SourceSpec {
    #[default]
    Server,
    Dotenv(PathBuf),
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "server" => Ok(SourceSpec::Server),
            Some(("dotenv", path)) if !path.is_empty() => Ok(SourceSpec::Dotenv(PathBuf::from(path))),
            _ => Err(format!("expected `server` or `dotenv:PATH`, got {s:?}")),
        }
    }
}

/// The variable that chooses the source: `server` (the default) or `dotenv:PATH`.
pub const SOURCE_ENV: &str = "COFFER_SOURCE";

impl SourceSpec {
    /// The source `COFFER_SOURCE` names; the server when it is unset or empty.
    pub fn from_env() -> Result<SourceSpec, String> {
        Self::from_lookup(&crate::config::process_env)
    }

    /// As [`from_env`](Self::from_env), reading variables through `var`.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<SourceSpec, String> {
        match var(SOURCE_ENV) {
            None => Ok(SourceSpec::Server),
            Some(text) => text.parse().map_err(|e| format!("{SOURCE_ENV}: {e}")),
        }
    }
}

/// Where variables come from.
// Built once per process and never moved around in bulk: boxing the clients would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum SecretSource {
    /// A Coffer server: one client for Secrets Manager and one for Parameter Store (each has its own
    /// endpoint setting, `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `AWS_ENDPOINT_URL_SSM`).
    Server { secrets: Client, parameters: Client },
    /// A local dotenv file.
    Dotenv(PathBuf),
}

/// What to load from the server.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Path prefixes such as `/non-prod/backend`, in order: with overrides allowed, later paths win.
    pub paths: Vec<String>,
    /// Every level below each path, not only its direct children.
    pub recursive: bool,
}

/// Where one variable's value came from: named in errors and reports in place of the value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    Secret {
        name: String,
    },
    Parameter {
        name: String,
    },
    Dotenv {
        file: PathBuf,
        key: String,
        line: usize,
    },
    /// One key of a JSON object held by another origin (see [`expand_json`]).
    JsonKey {
        parent: Box<Origin>,
        key: String,
    },
}

impl Origin {
    /// The secret's or parameter's name, or the dotenv key; for a JSON key, its parent's name.
    pub fn name(&self) -> &str {
        match self {
            Origin::Secret { name } | Origin::Parameter { name } => name,
            Origin::Dotenv { key, .. } => key,
            Origin::JsonKey { parent, .. } => parent.name(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Secret { name } => write!(f, "secret {name}"),
            Origin::Parameter { name } => write!(f, "parameter {name}"),
            Origin::Dotenv { file, key, line } => write!(f, "{key} ({} line {line})", file.display()),
            Origin::JsonKey { parent, key } => write!(f, "key {key:?} of {parent}"),
        }
    }
}

/// One environment variable: its name, value and origin.
#[derive(Clone)]
pub struct Variable {
    pub name: String,
    pub value: Zeroizing<String>,
    pub origin: Origin,
}

impl fmt::Debug for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Variable")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .field("origin", &self.origin)
            .finish()
    }
}

/// A variable's name and documentation, without its value (for `.env.example` templates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableInfo {
    pub name: String,
    pub description: Option<String>,
    pub origin: Origin,
}

/// Something under the paths that cannot become a variable, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub origin: Origin,
    pub reason: String,
}

/// Everything loaded, before collisions are resolved.
#[derive(Debug, Default)]
pub struct Loaded {
    /// In path order; within a path, secrets (by name) before parameters (by name).
    pub variables: Vec<Variable>,
    pub skipped: Vec<Skipped>,
}

/// Two origins that map to the same variable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} would be set by both {first} and {second}")]
pub struct Collision {
    pub name: String,
    pub first: Origin,
    pub second: Origin,
}

/// A variable that a later origin replaced (when overrides are allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub name: String,
    pub replaced: Origin,
    pub by: Origin,
}

/// The final set: each name once.
#[derive(Debug, Default)]
pub struct Environment {
    /// Sorted by name.
    pub variables: Vec<Variable>,
    pub overrides: Vec<Override>,
    pub skipped: Vec<Skipped>,
}

/// Why variables could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A server call failed; `action` says which (never with a value).
    #[error("{action}: {source}")]
    Server { action: String, source: ClientError },
    #[error(transparent)]
    Dotenv(#[from] dotenv::ReadError),
    #[error(transparent)]
    Collision(#[from] Box<Collision>),
    #[error("no path given: say which secrets and parameters to load with at least one path")]
    NoPaths,
}

impl SourceError {
    /// The client error underneath, if a server call failed.
    pub fn client_error(&self) -> Option<&ClientError> {
        match self {
            SourceError::Server { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// How to turn loaded values into an [`Environment`].
#[derive(Debug, Clone, Default)]
pub struct EnvOptions {
    pub selection: Selection,
    /// A value that is a JSON object becomes one variable per key ([`expand_json`]).
    pub expand_json: bool,
    /// Let a later origin replace an earlier one with the same name instead of failing.
    pub allow_override: bool,
}

/// The variable name for a path segment: ASCII letters upper-cased, digits and `_` kept, anything
/// else `_`, and a leading `_` when it would start with a digit (`database-password` →
/// `DATABASE_PASSWORD`, `2fa.seed` → `_2FA_SEED`). `None` for an empty segment.
pub fn env_var_name(segment: &str) -> Option<String> {
    if segment.is_empty() {
        return None;
    }
    let mut name: String =
        segment.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    Some(name)
}

/// A path without its leading and trailing slashes (`/a/b/` → `a/b`; `/` → ``).
pub(crate) fn bare_path(path: &str) -> &str {
    path.trim().trim_matches('/')
}

/// The part of `name` below `bare` (a bare path), if `name` is under it: a direct child unless
/// `recursive`. A leading `/` of `name` is optional.
pub(crate) fn below<'a>(name: &'a str, bare: &str, recursive: bool) -> Option<&'a str> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let rest = if bare.is_empty() { name } else { name.strip_prefix(bare)?.strip_prefix('/')? };
    if rest.is_empty() || rest.ends_with('/') || (!recursive && rest.contains('/')) {
        return None;
    }
    Some(rest)
}

/// The last segment of a name under a path, as a variable name.
fn variable_for_name(name: &str) -> Option<String> {
    env_var_name(name.rsplit('/').next().unwrap_or(name))
}

impl SecretSource {
    /// Opens the source `spec` names: for the server, one client per service, each resolved from
    /// `options`, the environment and the profiles ([`ClientConfig::resolve`]); a dotenv file needs no
    /// endpoint or credentials.
    ///
    /// [`ClientConfig::resolve`]: crate::ClientConfig::resolve
    pub fn open(spec: &SourceSpec, options: &crate::ResolveOptions) -> Result<SecretSource, ClientError> {
        Ok(match spec {
            SourceSpec::Server => SecretSource::Server {
                secrets: Client::new(crate::ClientConfig::resolve(options, "SECRETS_MANAGER")?)?,
                parameters: Client::new(crate::ClientConfig::resolve(options, "SSM")?)?,
            },
            SourceSpec::Dotenv(path) => SecretSource::Dotenv(path.clone()),
        })
    }

    /// `server` or `dotenv`.
    pub fn kind(&self) -> &'static str {
        match self {
            SecretSource::Server { .. } => "server",
            SecretSource::Dotenv(_) => "dotenv",
        }
    }

    /// The server's endpoint (Secrets Manager's, when the two differ) or the dotenv file's path.
    pub fn location(&self) -> String {
        match self {
            SecretSource::Server { secrets, .. } => secrets.config().endpoint.clone(),
            SecretSource::Dotenv(path) => path.display().to_string(),
        }
    }

    /// The server's region; `None` for a dotenv file.
    pub fn region(&self) -> Option<&str> {
        match self {
            SecretSource::Server { secrets, .. } => Some(&secrets.config().region),
            SecretSource::Dotenv(_) => None,
        }
    }

    /// Every value under the selection's paths (or every key of the dotenv file), one variable each.
    pub async fn load(&self, selection: &Selection) -> Result<Loaded, SourceError> {
        match self {
            SecretSource::Dotenv(path) => load_dotenv(path),
            SecretSource::Server { secrets, parameters } => {
                if selection.paths.is_empty() {
                    return Err(SourceError::NoPaths);
                }
                let mut loaded = Loaded::default();
                let mut seen_secrets = HashSet::new();
                let mut seen_parameters = HashSet::new();
                for path in &selection.paths {
                    load_secrets(secrets, path, selection.recursive, &mut seen_secrets, &mut loaded).await?;
                    load_parameters(parameters, path, selection.recursive, &mut seen_parameters, &mut loaded).await?;
                }
                Ok(loaded)
            }
        }
    }

    /// Loads, expands JSON if asked, and resolves collisions: the environment a program should get.
    pub async fn environment(&self, options: &EnvOptions) -> Result<Environment, SourceError> {
        let loaded = self.load(&options.selection).await?;
        let variables = if options.expand_json { expand_json(loaded.variables) } else { loaded.variables };
        let (variables, overrides) = resolve(variables, options.allow_override)?;
        Ok(Environment { variables, overrides, skipped: loaded.skipped })
    }

    /// The variables' names and descriptions, without reading any value from the server (secrets'
    /// and parameters' descriptions; a dotenv file's keys have none). In load order, names repeated
    /// where origins collide.
    pub async fn describe(&self, selection: &Selection) -> Result<Vec<VariableInfo>, SourceError> {
        match self {
            SecretSource::Dotenv(path) => Ok(load_dotenv(path)?
                .variables
                .into_iter()
                .map(|v| VariableInfo { name: v.name, description: None, origin: v.origin })
                .collect()),
            SecretSource::Server { secrets, parameters } => {
                if selection.paths.is_empty() {
                    return Err(SourceError::NoPaths);
                }
                let mut out = Vec::new();
                let mut seen = HashSet::new();
                for path in &selection.paths {
                    for s in list_secrets(secrets, path, selection.recursive).await? {
                        if !seen.insert(Origin::Secret { name: s.name.clone() }) {
                            continue;
                        }
                        if let Some(name) = variable_for_name(&s.name) {
                            out.push(VariableInfo {
                                name,
                                description: s.description,
                                origin: Origin::Secret { name: s.name },
                            });
                        }
                    }
                    for p in describe_parameters(parameters, path, selection.recursive).await? {
                        if !seen.insert(Origin::Parameter { name: p.name.clone() }) {
                            continue;
                        }
                        if let Some(name) = variable_for_name(&p.name) {
                            out.push(VariableInfo {
                                name,
                                description: p.description,
                                origin: Origin::Parameter { name: p.name },
                            });
                        }
                    }
                }
                Ok(out)
            }
        }
    }
}

pub(crate) fn load_dotenv(path: &Path) -> Result<Loaded, SourceError> {
    let entries = dotenv::last_wins(dotenv::read_file(path)?);
    let variables = entries
        .into_iter()
        .map(|e| Variable {
            name: e.key.clone(),
            value: e.value,
            origin: Origin::Dotenv { file: path.to_path_buf(), key: e.key, line: e.line },
        })
        .collect();
    Ok(Loaded { variables, skipped: Vec::new() })
}

/// The secrets under `path` (not scheduled for deletion), sorted by name.
async fn list_secrets(
    client: &Client,
    path: &str,
    recursive: bool,
) -> Result<Vec<secretsmanager::SecretDescription>, SourceError> {
    let bare = bare_path(path);
    // The name filter matches prefixes; both spellings of the path, since a secret name's leading `/`
    // is optional. The exact level is checked below.
    let filters = (!bare.is_empty())
        .then(|| vec![Filter { key: "name".into(), values: vec![format!("/{bare}/"), format!("{bare}/")] }]);
    let mut all = client
        .call_all_pages(
            secretsmanager::SERVICE,
            "secretsmanager.ListSecrets",
            |next_token| ListSecretsRequest { filters: filters.clone(), next_token, ..Default::default() },
            |r: ListSecretsResponse| (r.secret_list, r.next_token),
        )
        .await
        .map_err(|source| SourceError::Server { action: format!("listing the secrets under {path}"), source })?;
    all.retain(|s| s.deleted_date.is_none() && below(&s.name, bare, recursive).is_some());
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

async fn load_secrets(
    client: &Client,
    path: &str,
    recursive: bool,
    seen: &mut HashSet<String>,
    loaded: &mut Loaded,
) -> Result<(), SourceError> {
    for secret in list_secrets(client, path, recursive).await? {
        if !seen.insert(secret.name.clone()) {
            continue;
        }
        let origin = Origin::Secret { name: secret.name.clone() };
        let Some(name) = variable_for_name(&secret.name) else {
            loaded.skipped.push(Skipped { origin, reason: "its last path segment is empty".into() });
            continue;
        };
        let request = secretsmanager::GetSecretValueRequest { secret_id: secret.arn.clone(), ..Default::default() };
        let response: GetSecretValueResponse = client
            .call(secretsmanager::SERVICE, "secretsmanager.GetSecretValue", &request)
            .await
            .map_err(|source| SourceError::Server { action: format!("reading {origin}"), source })?;
        match response.secret_string.as_ref().map(sensitive_text) {
            Some(Some(value)) => loaded.variables.push(Variable { name, value, origin }),
            Some(None) => {
                loaded.skipped.push(Skipped { origin, reason: "its value is not UTF-8 text".into() });
            }
            None => loaded.skipped.push(Skipped {
                origin,
                reason: "it holds a binary value (SecretBinary), which an environment variable cannot".into(),
            }),
        }
    }
    Ok(())
}

/// A sensitive field's text, if it is UTF-8.
fn sensitive_text(value: &Sensitive) -> Option<Zeroizing<String>> {
    value.0.expose_str().ok().map(|s| Zeroizing::new(s.to_string()))
}

/// `/bare` (or `/`) as Parameter Store spells a path.
fn parameter_path(path: &str) -> String {
    format!("/{}", bare_path(path))
}

async fn load_parameters(
    client: &Client,
    path: &str,
    recursive: bool,
    seen: &mut HashSet<String>,
    loaded: &mut Loaded,
) -> Result<(), SourceError> {
    let parameter_path = parameter_path(path);
    let mut all = client
        .call_all_pages(
            ssm::SERVICE,
            "AmazonSSM.GetParametersByPath",
            |next_token| GetParametersByPathRequest {
                path: parameter_path.clone(),
                recursive: Some(recursive),
                with_decryption: Some(true),
                next_token,
                ..Default::default()
            },
            |r: ssm::GetParametersByPathResponse| (r.parameters, r.next_token),
        )
        .await
        .map_err(|source| SourceError::Server { action: format!("reading the parameters under {path}"), source })?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    for parameter in all {
        if !seen.insert(parameter.name.clone()) {
            continue;
        }
        let origin = Origin::Parameter { name: parameter.name.clone() };
        let Some(name) = variable_for_name(&parameter.name) else {
            loaded.skipped.push(Skipped { origin, reason: "its last path segment is empty".into() });
            continue;
        };
        match sensitive_text(&parameter.value) {
            Some(value) => loaded.variables.push(Variable { name, value, origin }),
            None => loaded.skipped.push(Skipped { origin, reason: "its value is not UTF-8 text".into() }),
        }
    }
    Ok(())
}

/// The parameters' metadata under `path` (DescribeParameters with a `Path` filter: no values).
async fn describe_parameters(
    client: &Client,
    path: &str,
    recursive: bool,
) -> Result<Vec<ssm::ParameterMetadata>, SourceError> {
    let filter = ParameterStringFilter {
        key: "Path".into(),
        option: Some(if recursive { "Recursive" } else { "OneLevel" }.into()),
        values: Some(vec![parameter_path(path)]),
    };
    let mut all = client
        .call_all_pages(
            ssm::SERVICE,
            "AmazonSSM.DescribeParameters",
            |next_token| DescribeParametersRequest {
                parameter_filters: Some(vec![filter.clone()]),
                next_token,
                ..Default::default()
            },
            |r: ssm::DescribeParametersResponse| (r.parameters, r.next_token),
        )
        .await
        .map_err(|source| SourceError::Server { action: format!("describing the parameters under {path}"), source })?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

/// Replaces each variable whose value is a JSON object by one variable per key, named
/// `<NAME>_<KEY>` ([`env_var_name`] rules): string members as they are, other members as JSON text.
/// Every other value is kept as it is.
pub fn expand_json(variables: Vec<Variable>) -> Vec<Variable> {
    let mut out = Vec::with_capacity(variables.len());
    for variable in variables {
        let object = match serde_json::from_str::<serde_json::Value>(&variable.value) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(mut other) => {
                zeroize_json(&mut other);
                out.push(variable);
                continue;
            }
            Err(_) => {
                out.push(variable);
                continue;
            }
        };
        for (key, mut member) in object {
            let value = match &mut member {
                serde_json::Value::String(s) => Zeroizing::new(std::mem::take(s)),
                other => Zeroizing::new(other.to_string()),
            };
            zeroize_json(&mut member);
            let name = env_var_name(&format!("{}_{key}", variable.name)).unwrap_or_default();
            out.push(Variable {
                name,
                value,
                origin: Origin::JsonKey { parent: Box::new(variable.origin.clone()), key },
            });
        }
    }
    out
}

/// Wipes the strings of a parsed JSON value (serde_json's own buffers are not zeroized on drop).
fn zeroize_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(zeroize_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(zeroize_json),
        _ => {}
    }
}

/// Each name once, sorted by name. Two origins with one name are a [`Collision`], unless
/// `allow_override`: then the later one wins and the replacement is reported.
pub fn resolve(
    variables: Vec<Variable>,
    allow_override: bool,
) -> Result<(Vec<Variable>, Vec<Override>), Box<Collision>> {
    let mut kept: Vec<Variable> = Vec::with_capacity(variables.len());
    let mut overrides = Vec::new();
    for variable in variables {
        match kept.iter_mut().find(|k| k.name == variable.name) {
            None => kept.push(variable),
            Some(existing) if allow_override => {
                overrides.push(Override {
                    name: variable.name.clone(),
                    replaced: existing.origin.clone(),
                    by: variable.origin.clone(),
                });
                *existing = variable;
            }
            Some(existing) => {
                return Err(Box::new(Collision {
                    name: variable.name.clone(),
                    first: existing.origin.clone(),
                    second: variable.origin,
                }))
            }
        }
    }
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((kept, overrides))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, value: &str, origin: Origin) -> Variable {
        Variable { name: name.into(), value: Zeroizing::new(value.into()), origin }
    }

    fn secret(name: &str) -> Origin {
        Origin::Secret { name: name.into() }
    }

    #[test]
    fn variable_names_are_upper_snake_case() {
        assert_eq!(env_var_name("database-password").as_deref(), Some("DATABASE_PASSWORD"));
        assert_eq!(env_var_name("api.key").as_deref(), Some("API_KEY"));
        assert_eq!(env_var_name("DB_URL").as_deref(), Some("DB_URL"));
        assert_eq!(env_var_name("2fa").as_deref(), Some("_2FA"));
        assert_eq!(env_var_name("clé").as_deref(), Some("CL_"));
        assert_eq!(env_var_name(""), None);
        assert_eq!(variable_for_name("/non-prod/backend/database-password").as_deref(), Some("DATABASE_PASSWORD"));
    }

    #[test]
    fn paths_select_direct_children_unless_recursive() {
        assert_eq!(below("/a/b/c", "a/b", false), Some("c"));
        assert_eq!(below("a/b/c", "a/b", false), Some("c"));
        assert_eq!(below("/a/b/c/d", "a/b", false), None);
        assert_eq!(below("/a/b/c/d", "a/b", true), Some("c/d"));
        assert_eq!(below("/a/bc/d", "a/b", true), None);
        assert_eq!(below("/a/b", "a/b", true), None);
        assert_eq!(below("/top", "", false), Some("top"));
        assert_eq!(bare_path(" /a/b/ "), "a/b");
        assert_eq!(parameter_path("a/b/"), "/a/b");
        assert_eq!(parameter_path("/"), "/");
    }

    #[test]
    fn source_specs() {
        assert_eq!(SourceSpec::from_lookup(&|_| None), Ok(SourceSpec::Server));
        let dotenv = |k: &str| (k == SOURCE_ENV).then(|| "dotenv:.env".to_string());
        assert_eq!(SourceSpec::from_lookup(&dotenv), Ok(SourceSpec::Dotenv(".env".into())));
        let bad = |k: &str| (k == SOURCE_ENV).then(|| "aws".to_string());
        assert!(SourceSpec::from_lookup(&bad).unwrap_err().starts_with("COFFER_SOURCE: "));
        assert_eq!("server".parse::<SourceSpec>(), Ok(SourceSpec::Server));
        assert_eq!("dotenv:.env.local".parse::<SourceSpec>(), Ok(SourceSpec::Dotenv(".env.local".into())));
        assert!("dotenv:".parse::<SourceSpec>().is_err());
        assert!("aws".parse::<SourceSpec>().is_err());
    }

    #[test]
    fn collisions_fail_unless_overrides_are_allowed() {
        let vars = || {
            vec![
                var("B", "1", secret("/p/b")),
                var("A", "2", secret("/p/a")),
                var("B", "3", Origin::Parameter { name: "/q/b".into() }),
            ]
        };
        let err = resolve(vars(), false).unwrap_err();
        assert_eq!(err.name, "B");
        assert_eq!(err.to_string(), "B would be set by both secret /p/b and parameter /q/b");

        let (kept, overrides) = resolve(vars(), true).unwrap();
        let got: Vec<(&str, &str)> = kept.iter().map(|v| (v.name.as_str(), v.value.as_str())).collect();
        assert_eq!(got, [("A", "2"), ("B", "3")]);
        assert_eq!(overrides.len(), 1);
        assert_eq!(overrides[0].replaced, secret("/p/b"));
    }

    #[test]
    fn json_objects_expand_into_one_variable_per_key() {
        let expanded = expand_json(vec![
            var("DB", r#"{"user":"app","port":5432,"tls-mode":null}"#, secret("/p/db")),
            var("LIST", "[1,2]", secret("/p/list")),
            var("PLAIN", "{not json", secret("/p/plain")),
        ]);
        let mut got: Vec<(&str, &str)> = expanded.iter().map(|v| (v.name.as_str(), v.value.as_str())).collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("DB_PORT", "5432"),
                ("DB_TLS_MODE", "null"),
                ("DB_USER", "app"),
                ("LIST", "[1,2]"),
                ("PLAIN", "{not json")
            ]
        );
        let user = expanded.iter().find(|v| v.name == "DB_USER").unwrap();
        assert_eq!(user.origin.to_string(), "key \"user\" of secret /p/db");
    }

    #[test]
    fn debug_output_hides_values() {
        let v = var("A", "hunter2", secret("/p/a"));
        assert!(!format!("{v:?}").contains("hunter2"));
    }
}
