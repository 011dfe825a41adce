//! Resolving endpoint, region and credentials as the AWS CLI and SDKs do, so one set of settings serves
//! `aws --endpoint-url ...` and `coffer` alike, plus Coffer's own named profiles ([`crate::profile`]).
//!
//! Precedence, highest first (each setting on its own: a profile may give the endpoint while the
//! environment gives the region):
//!
//! 1. **flags** ([`ResolveOptions`]): `--endpoint-url`, `--region`; `--profile NAME` chooses the profile;
//! 2. **environment variables**: `AWS_ENDPOINT_URL_<SERVICE>` (such as `AWS_ENDPOINT_URL_SECRETS_MANAGER`),
//!    `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_DEFAULT_REGION`, `AWS_CA_BUNDLE`, and
//!    `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` — the credential variables only when
//!    no `--profile` flag was given, as in the AWS CLI (a profile chosen on the command line is meant);
//! 3. **the Coffer profile**: `[profile.NAME]` of the Coffer configuration file (`$COFFER_CONFIG`, else
//!    `~/.config/coffer/config.toml`), NAME from `--profile`, else `COFFER_PROFILE`, else `default`
//!    when the file has such a profile;
//! 4. **the AWS profile** (`--profile`, else `AWS_PROFILE`, else `default`) in the shared credentials
//!    file (`AWS_SHARED_CREDENTIALS_FILE`, `~/.aws/credentials`) and config file (`AWS_CONFIG_FILE`,
//!    `~/.aws/config`);
//! 5. **defaults**: `http://127.0.0.1:8200`, `us-east-1`; credentials have none.
//!
//! A `--profile NAME` that is in neither the Coffer file nor the AWS files, or a `COFFER_PROFILE` that
//! is not in the Coffer file, is an error rather than a silent fall-through to other settings.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use coffer_sigv4::Credentials;

use crate::profile::{ProfileFile, PROFILE_ENV};
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
    /// Extra CA certificate (PEM) to trust, from `AWS_CA_BUNDLE` or the profile.
    pub ca_bundle: Option<PathBuf>,
}

/// Where one resolved setting came from (shown by `coffer profile show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingSource {
    /// A command-line flag, such as `--endpoint-url`.
    Flag(&'static str),
    /// An environment variable.
    Env(String),
    /// A `[profile.NAME]` of the Coffer configuration file.
    CofferProfile { profile: String, file: PathBuf },
    /// The `credentials_file` a Coffer profile names, and the section read.
    CredentialsFile { profile: String, file: PathBuf, section: String },
    /// A profile of the AWS shared credentials or config file.
    AwsProfile { profile: String, file: PathBuf },
    /// Nothing set it.
    Default,
}

impl fmt::Display for SettingSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingSource::Flag(flag) => write!(f, "flag {flag}"),
            SettingSource::Env(name) => write!(f, "environment variable {name}"),
            SettingSource::CofferProfile { profile, file } => {
                write!(f, "Coffer profile {profile} ({})", file.display())
            }
            SettingSource::CredentialsFile { profile, file, section } => {
                write!(f, "Coffer profile {profile}: [{section}] of {}", file.display())
            }
            SettingSource::AwsProfile { profile, file } => write!(f, "AWS profile {profile} ({})", file.display()),
            SettingSource::Default => f.write_str("default"),
        }
    }
}

/// A resolved configuration and where each part of it came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The configuration; its credentials are empty when `credentials_source` is `None`.
    pub config: ClientConfig,
    pub endpoint_source: SettingSource,
    pub region_source: SettingSource,
    /// `None` when no credentials were found anywhere.
    pub credentials_source: Option<SettingSource>,
    /// The Coffer profile used, if any, and its file.
    pub coffer_profile: Option<(String, PathBuf)>,
    /// The AWS profile consulted in the shared files.
    pub aws_profile: String,
}

/// A parsed INI file: section name -> key -> value.
pub(crate) type Ini = HashMap<String, HashMap<String, String>>;

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

pub(crate) fn read_ini(path: &Path) -> Ini {
    std::fs::read_to_string(path).map(|t| parse_ini(&t)).unwrap_or_default()
}

/// The process's environment variable `name`, if set and not empty.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The AWS shared files, read once for a resolution.
pub struct AwsFiles {
    pub credentials_file: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    credentials: Ini,
    config: Ini,
}

impl AwsFiles {
    /// Reads `AWS_SHARED_CREDENTIALS_FILE` (or `~/.aws/credentials`) and `AWS_CONFIG_FILE` (or
    /// `~/.aws/config`); a missing file holds nothing.
    pub fn read(var: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> AwsFiles {
        let in_home = |parts: &[&str]| home.map(|h| parts.iter().fold(h.to_path_buf(), |p, part| p.join(part)));
        let credentials_file =
            var("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from).or_else(|| in_home(&[".aws", "credentials"]));
        let config_file = var("AWS_CONFIG_FILE").map(PathBuf::from).or_else(|| in_home(&[".aws", "config"]));
        AwsFiles {
            credentials: credentials_file.as_deref().map(read_ini).unwrap_or_default(),
            config: config_file.as_deref().map(read_ini).unwrap_or_default(),
            credentials_file,
            config_file,
        }
    }

    /// [`read`](Self::read) with this process's environment and home directory.
    pub fn from_environment() -> AwsFiles {
        let home = dirs::home_dir();
        Self::read(&process_env, home.as_deref())
    }

    fn config_section(profile: &str) -> String {
        if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        }
    }

    /// `key` of `profile`, from the credentials file first, then the config file, with the file it came from.
    fn get(&self, profile: &str, key: &str) -> Option<(String, SettingSource)> {
        let source = |file: &Option<PathBuf>| SettingSource::AwsProfile {
            profile: profile.to_string(),
            file: file.clone().unwrap_or_default(),
        };
        if let Some(v) = self.credentials.get(profile).and_then(|s| s.get(key)) {
            return Some((v.clone(), source(&self.credentials_file)));
        }
        self.config
            .get(&Self::config_section(profile))
            .and_then(|s| s.get(key))
            .map(|v| (v.clone(), source(&self.config_file)))
    }

    /// Whether either file has a section for `profile`.
    pub fn has_profile(&self, profile: &str) -> bool {
        self.credentials.contains_key(profile) || self.config.contains_key(&Self::config_section(profile))
    }

    /// Every profile named in either file, sorted.
    pub fn profile_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .credentials
            .keys()
            .filter(|k| !k.is_empty())
            .cloned()
            .chain(self.config.keys().filter_map(|k| {
                if k == "default" {
                    Some(k.clone())
                } else {
                    k.strip_prefix("profile ").map(|n| n.trim().to_string())
                }
            }))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// `(access key id, where)` of `profile`, if it holds a complete access key.
    pub fn access_key_id(&self, profile: &str) -> Option<(String, SettingSource)> {
        self.get(profile, "aws_secret_access_key")?;
        self.get(profile, "aws_access_key_id")
    }

    /// A profile's endpoint and region, as written.
    pub fn setting(&self, profile: &str, key: &str) -> Option<String> {
        self.get(profile, key).map(|(v, _)| v)
    }
}

/// The Coffer profile to use: `(name, chosen explicitly)`. `--profile` first, then `COFFER_PROFILE`,
/// then an implicit `default`.
fn coffer_profile_name(opts: &ResolveOptions, var: &dyn Fn(&str) -> Option<String>) -> (String, Option<&'static str>) {
    if let Some(name) = &opts.profile {
        return (name.clone(), Some("--profile"));
    }
    if let Some(name) = var(PROFILE_ENV) {
        return (name, Some(PROFILE_ENV));
    }
    ("default".to_string(), None)
}

impl ClientConfig {
    /// Resolves everything for `service` (its endpoint variable is `AWS_ENDPOINT_URL_<SERVICE>`).
    pub fn resolve(opts: &ResolveOptions, service_env_suffix: &str) -> Result<Self, ClientError> {
        let resolved = Self::resolve_explained(opts, service_env_suffix)?;
        if resolved.credentials_source.is_none() {
            return Err(no_credentials(&resolved));
        }
        Ok(resolved.config)
    }

    /// Like [`resolve`](Self::resolve), but missing credentials are no error: for clients that make
    /// only unsigned calls ([`Client::call_unsigned`](crate::Client::call_unsigned)), such as unsealing
    /// a server before any credentials exist. Without credentials, signed calls are refused by the server.
    pub fn resolve_unsigned(opts: &ResolveOptions, service_env_suffix: &str) -> Result<Self, ClientError> {
        Ok(Self::resolve_explained(opts, service_env_suffix)?.config)
    }

    /// Resolves as [`resolve_unsigned`](Self::resolve_unsigned) does and says where each setting came
    /// from, reading this process's environment and home directory.
    pub fn resolve_explained(opts: &ResolveOptions, service_env_suffix: &str) -> Result<Resolved, ClientError> {
        let home = dirs::home_dir();
        resolve_with(opts, service_env_suffix, &process_env, home.as_deref())
    }
}

/// The "no credentials" error: what was looked at, and how to give some.
fn no_credentials(resolved: &Resolved) -> ClientError {
    let profile = match &resolved.coffer_profile {
        Some((name, _)) => format!("Coffer profile {name:?}, AWS profile {:?}", resolved.aws_profile),
        None => format!("AWS profile {:?}", resolved.aws_profile),
    };
    ClientError::Config(format!(
        "no credentials found ({profile}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, point \
         AWS_SHARED_CREDENTIALS_FILE at <data-dir>/root-credentials, or choose a profile that has credentials \
         with --profile NAME or {PROFILE_ENV} (`coffer profile list` shows them)"
    ))
}

/// The resolution itself, over explicit surroundings (`var` reads an environment variable, `home` is the
/// home directory) so its precedence can be tested without touching the process.
pub fn resolve_with(
    opts: &ResolveOptions,
    service_env_suffix: &str,
    var: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<Resolved, ClientError> {
    let coffer_file = ProfileFile::load(var, home)?;
    let aws = AwsFiles::read(var, home);
    let aws_profile = opts.profile.clone().or_else(|| var("AWS_PROFILE")).unwrap_or_else(|| "default".into());

    let (wanted, chosen_by) = coffer_profile_name(opts, var);
    let coffer_profile = coffer_file.as_ref().and_then(|f| f.profiles.get(&wanted).map(|p| (f, p)));
    match (chosen_by, coffer_profile.is_some()) {
        (Some(PROFILE_ENV), false) => {
            let place = coffer_file.as_ref().map_or_else(
                || "no Coffer configuration file was found".to_string(),
                |f| format!("{}", f.path.display()),
            );
            return Err(ClientError::Config(format!(
                "{PROFILE_ENV} names the profile {wanted:?}, which is not in {place} (`coffer profile list` shows the profiles)"
            )));
        }
        (Some(_), false) if !aws.has_profile(&wanted) => {
            return Err(ClientError::Config(format!(
                "no profile {wanted:?} in the Coffer configuration file or the AWS config and credentials files (`coffer profile list` shows the profiles)"
            )));
        }
        _ => {}
    }
    let from_coffer = |pick: &dyn Fn(&crate::profile::Profile) -> Option<String>| {
        coffer_profile.and_then(|(file, profile)| {
            pick(profile)
                .map(|v| (v, SettingSource::CofferProfile { profile: wanted.clone(), file: file.path.clone() }))
        })
    };
    let from_env = |name: String| var(&name).map(|v| (v, SettingSource::Env(name)));

    let (endpoint, endpoint_source) = opts
        .endpoint_url
        .clone()
        .map(|v| (v, SettingSource::Flag("--endpoint-url")))
        .or_else(|| from_env(format!("AWS_ENDPOINT_URL_{service_env_suffix}")))
        .or_else(|| from_env("AWS_ENDPOINT_URL".into()))
        .or_else(|| from_coffer(&|p| p.endpoint.clone()))
        .or_else(|| aws.get(&aws_profile, "endpoint_url"))
        .unwrap_or_else(|| (DEFAULT_ENDPOINT.to_string(), SettingSource::Default));
    let (region, region_source) = opts
        .region
        .clone()
        .map(|v| (v, SettingSource::Flag("--region")))
        .or_else(|| from_env("AWS_REGION".into()))
        .or_else(|| from_env("AWS_DEFAULT_REGION".into()))
        .or_else(|| from_coffer(&|p| p.region.clone()))
        .or_else(|| aws.get(&aws_profile, "region"))
        .unwrap_or_else(|| (DEFAULT_REGION.to_string(), SettingSource::Default));
    let ca_bundle = from_env("AWS_CA_BUNDLE".into())
        .map(|(v, _)| PathBuf::from(v))
        .or_else(|| coffer_profile.and_then(|(file, p)| p.ca_bundle.as_deref().map(|ca| file.resolve_path(ca, home))));

    // Environment credentials win only when the profile was not chosen on the command line, as in the AWS CLI.
    let env_credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) if opts.profile.is_none() => Some((
            Credentials { access_key_id: id, secret_access_key: secret, session_token: var("AWS_SESSION_TOKEN") },
            SettingSource::Env("AWS_ACCESS_KEY_ID".into()),
        )),
        _ => None,
    };
    let coffer_credentials = match coffer_profile {
        Some((file, _)) if env_credentials.is_none() => file.credentials(&wanted, home)?,
        _ => None,
    };
    let aws_credentials =
        || match (aws.get(&aws_profile, "aws_access_key_id"), aws.get(&aws_profile, "aws_secret_access_key")) {
            (Some((id, source)), Some((secret, _))) => Some((
                Credentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: aws.get(&aws_profile, "aws_session_token").map(|(t, _)| t),
                },
                source,
            )),
            _ => None,
        };
    let credentials = env_credentials.or(coffer_credentials).or_else(aws_credentials);
    let (credentials, credentials_source) = match credentials {
        Some((c, source)) => (c, Some(source)),
        None => {
            (Credentials { access_key_id: String::new(), secret_access_key: String::new(), session_token: None }, None)
        }
    };
    Ok(Resolved {
        config: ClientConfig { endpoint: endpoint.trim_end_matches('/').to_string(), region, credentials, ca_bundle },
        endpoint_source,
        region_source,
        credentials_source,
        coffer_profile: coffer_profile.map(|(file, _)| (wanted.clone(), file.path.clone())),
        aws_profile,
    })
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

    /// A home directory with a Coffer configuration file and AWS files, and the environment to resolve in.
    struct World {
        home: tempfile::TempDir,
        env: HashMap<String, String>,
    }

    impl World {
        fn new() -> World {
            let home = tempfile::tempdir().unwrap();
            let dir = home.path();
            std::fs::create_dir_all(dir.join(".config/coffer")).unwrap();
            std::fs::create_dir_all(dir.join(".aws")).unwrap();
            std::fs::write(
                dir.join(".config/coffer/config.toml"),
                r#"
[profile.dev]
endpoint = "http://dev.coffer:8200"
region = "eu-west-1"
credentials_file = "~/dev-credentials"

[profile.bare]
description = "no credentials of its own"
"#,
            )
            .unwrap();
            std::fs::write(
                dir.join("dev-credentials"),
                "[default]\naws_access_key_id=AKIADEV\naws_secret_access_key=d\n",
            )
            .unwrap();
            std::fs::write(
                dir.join(".aws/credentials"),
                "[default]\naws_access_key_id=AKIAAWSDEFAULT\naws_secret_access_key=a\n[ops]\naws_access_key_id=AKIAOPS\naws_secret_access_key=o\n",
            )
            .unwrap();
            std::fs::write(
                dir.join(".aws/config"),
                "[default]\nregion=ap-south-1\nendpoint_url=http://aws-default:8200\n[profile ops]\nregion=us-west-2\n",
            )
            .unwrap();
            World { home, env: HashMap::new() }
        }

        fn set(mut self, k: &str, v: &str) -> World {
            self.env.insert(k.into(), v.into());
            self
        }

        fn resolve(&self, opts: &ResolveOptions) -> Result<Resolved, ClientError> {
            let var = |k: &str| self.env.get(k).cloned();
            resolve_with(opts, "SECRETS_MANAGER", &var, Some(self.home.path()))
        }
    }

    fn profile(name: &str) -> ResolveOptions {
        ResolveOptions { profile: Some(name.into()), ..Default::default() }
    }

    #[test]
    fn without_a_profile_the_aws_default_profile_applies() {
        let r = World::new().resolve(&ResolveOptions::default()).unwrap();
        assert_eq!(r.config.endpoint, "http://aws-default:8200");
        assert_eq!(r.config.region, "ap-south-1");
        assert_eq!(r.config.credentials.access_key_id, "AKIAAWSDEFAULT");
        assert!(r.coffer_profile.is_none());
    }

    #[test]
    fn a_coffer_profile_beats_the_aws_files() {
        let r = World::new().resolve(&profile("dev")).unwrap();
        assert_eq!(r.config.endpoint, "http://dev.coffer:8200");
        assert_eq!(r.config.region, "eu-west-1");
        assert_eq!(r.config.credentials.access_key_id, "AKIADEV");
        assert!(matches!(r.endpoint_source, SettingSource::CofferProfile { .. }));
        assert!(matches!(r.credentials_source, Some(SettingSource::CredentialsFile { .. })));
        // The same profile chosen by COFFER_PROFILE.
        let r = World::new().set(PROFILE_ENV, "dev").resolve(&ResolveOptions::default()).unwrap();
        assert_eq!(r.config.endpoint, "http://dev.coffer:8200");
    }

    #[test]
    fn environment_variables_beat_the_profile_and_flags_beat_both() {
        let world = World::new()
            .set(PROFILE_ENV, "dev")
            .set("AWS_ENDPOINT_URL", "http://from-env:1")
            .set("AWS_REGION", "sa-east-1")
            .set("AWS_ACCESS_KEY_ID", "AKIAENV")
            .set("AWS_SECRET_ACCESS_KEY", "e");
        let r = world.resolve(&ResolveOptions::default()).unwrap();
        assert_eq!(r.config.endpoint, "http://from-env:1");
        assert_eq!(r.config.region, "sa-east-1");
        assert_eq!(r.config.credentials.access_key_id, "AKIAENV");
        assert_eq!(r.region_source, SettingSource::Env("AWS_REGION".into()));

        let flags = ResolveOptions {
            endpoint_url: Some("http://from-flag:2/".into()),
            region: Some("me-south-1".into()),
            profile: Some("dev".into()),
        };
        let r = world.resolve(&flags).unwrap();
        assert_eq!(r.config.endpoint, "http://from-flag:2");
        assert_eq!(r.config.region, "me-south-1");
        // A profile chosen on the command line brings its own credentials, whatever the environment holds.
        assert_eq!(r.config.credentials.access_key_id, "AKIADEV");
    }

    #[test]
    fn a_coffer_profile_without_some_settings_falls_back_to_the_aws_files() {
        let r = World::new()
            .set("AWS_PROFILE", "ops")
            .set(PROFILE_ENV, "bare")
            .resolve(&ResolveOptions::default())
            .unwrap();
        assert_eq!(r.coffer_profile.as_ref().map(|(n, _)| n.as_str()), Some("bare"));
        assert_eq!(r.config.region, "us-west-2");
        assert_eq!(r.config.credentials.access_key_id, "AKIAOPS");
        assert_eq!(r.config.endpoint, DEFAULT_ENDPOINT);
    }

    #[test]
    fn an_aws_profile_still_works_with_profile() {
        let r = World::new().resolve(&profile("ops")).unwrap();
        assert_eq!(r.config.credentials.access_key_id, "AKIAOPS");
        assert!(r.coffer_profile.is_none());
    }

    #[test]
    fn unknown_profiles_are_errors() {
        let err = World::new().resolve(&profile("nope")).unwrap_err().to_string();
        assert!(err.contains("no profile \"nope\""), "{err}");
        let err = World::new().set(PROFILE_ENV, "ops").resolve(&ResolveOptions::default()).unwrap_err().to_string();
        assert!(err.contains("COFFER_PROFILE names the profile \"ops\""), "{err}");
    }

    #[test]
    fn missing_credentials_say_how_to_give_them() {
        let world = World::new().set("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent").set(PROFILE_ENV, "bare");
        let r = world.resolve(&ResolveOptions::default()).unwrap();
        assert!(r.credentials_source.is_none());
        let err = no_credentials(&r).to_string();
        assert!(err.contains("AWS_ACCESS_KEY_ID") && err.contains("coffer profile list"), "{err}");
    }
}
