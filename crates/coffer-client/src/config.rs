//! Resolving endpoint, region and credentials as the AWS CLI and SDKs do, so one set of settings serves
//! `aws --endpoint-url ...` and `coffer` alike.
//!
//! Precedence: explicit options, then environment variables (`AWS_ENDPOINT_URL_SECRETS_MANAGER`,
//! `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`...), then the profile
//! (`--profile`, `AWS_PROFILE`, else `default`) in the shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, `~/.aws/credentials`) and config file (`AWS_CONFIG_FILE`,
//! `~/.aws/config`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use coffer_sigv4::Credentials;

use crate::ClientError;

/// The default endpoint: a local server on its default port.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8200";
pub const DEFAULT_REGION: &str = "us-east-1";

/// What the caller pinned explicitly (command-line flags).
#[derive(Debug, Default, Clone)]
pub struct ResolveOptions {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// Where to send requests and how to sign them.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoint: String,
    pub region: String,
    pub credentials: Credentials,
    /// Extra CA certificate (PEM) to trust, from `AWS_CA_BUNDLE`.
    pub ca_bundle: Option<PathBuf>,
}

/// A parsed INI file: section name -> key -> value.
type Ini = HashMap<String, HashMap<String, String>>;

fn parse_ini(text: &str) -> Ini {
    let mut out: Ini = HashMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone()).or_default().insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

fn read_ini(path: &Path) -> Ini {
    std::fs::read_to_string(path).map(|t| parse_ini(&t)).unwrap_or_default()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home_file(parts: &[&str]) -> Option<PathBuf> {
    let mut p = dirs::home_dir()?;
    for part in parts {
        p.push(part);
    }
    Some(p)
}

impl ClientConfig {
    /// Resolves everything for `service` (its endpoint variable is `AWS_ENDPOINT_URL_<SERVICE>`).
    pub fn resolve(opts: &ResolveOptions, service_env_suffix: &str) -> Result<Self, ClientError> {
        Self::resolve_inner(opts, service_env_suffix, true)
    }

    /// Like [`resolve`](Self::resolve), but missing credentials are no error: for clients that make
    /// only unsigned calls ([`Client::call_unsigned`](crate::Client::call_unsigned)), such as unsealing
    /// a server before any credentials exist. Without credentials, signed calls are refused by the server.
    pub fn resolve_unsigned(opts: &ResolveOptions, service_env_suffix: &str) -> Result<Self, ClientError> {
        Self::resolve_inner(opts, service_env_suffix, false)
    }

    fn resolve_inner(
        opts: &ResolveOptions,
        service_env_suffix: &str,
        credentials_required: bool,
    ) -> Result<Self, ClientError> {
        let profile = opts.profile.clone().or_else(|| env("AWS_PROFILE")).unwrap_or_else(|| "default".into());
        let credentials_file =
            env("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from).or_else(|| home_file(&[".aws", "credentials"]));
        let config_file = env("AWS_CONFIG_FILE").map(PathBuf::from).or_else(|| home_file(&[".aws", "config"]));
        let creds_ini = credentials_file.as_deref().map(read_ini).unwrap_or_default();
        let config_ini = config_file.as_deref().map(read_ini).unwrap_or_default();
        let config_section = if profile == "default" { "default".to_string() } else { format!("profile {profile}") };
        let from_profile = |key: &str| -> Option<String> {
            creds_ini
                .get(&profile)
                .and_then(|s| s.get(key))
                .or_else(|| config_ini.get(&config_section).and_then(|s| s.get(key)))
                .cloned()
        };

        let endpoint = opts
            .endpoint_url
            .clone()
            .or_else(|| env(&format!("AWS_ENDPOINT_URL_{service_env_suffix}")))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| from_profile("endpoint_url"))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let region = opts
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| from_profile("region"))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());

        // Environment credentials win only when the profile was not chosen explicitly, as in the AWS CLI.
        let env_creds = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) if opts.profile.is_none() => Some(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env("AWS_SESSION_TOKEN"),
            }),
            _ => None,
        };
        let credentials = match env_creds {
            Some(c) => c,
            None => match (from_profile("aws_access_key_id"), from_profile("aws_secret_access_key")) {
                (Some(id), Some(secret)) => Credentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: from_profile("aws_session_token"),
                },
                _ if !credentials_required => Credentials {
                    access_key_id: String::new(),
                    secret_access_key: String::new(),
                    session_token: None,
                },
                _ => {
                    return Err(ClientError::Config(format!(
                        "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or point AWS_SHARED_CREDENTIALS_FILE at <data-dir>/root-credentials (profile {profile:?})"
                    )))
                }
            },
        };
        Ok(ClientConfig {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region,
            credentials,
            ca_bundle: env("AWS_CA_BUNDLE").map(PathBuf::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections_and_comments() {
        let ini = parse_ini("# c\n[default]\naws_access_key_id = AKIA1\n\n[profile dev]\nregion=eu-west-1\n");
        assert_eq!(ini["default"]["aws_access_key_id"], "AKIA1");
        assert_eq!(ini["profile dev"]["region"], "eu-west-1");
    }
}
