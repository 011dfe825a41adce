//! Coffer's own configuration file: named profiles, each an endpoint, a region and credentials, so one
//! flag (`--profile staging`) or variable (`COFFER_PROFILE=staging`) switches everything at once.
//!
//! The file is `$COFFER_CONFIG`, else `$XDG_CONFIG_HOME/coffer/config.toml`, else
//! `~/.config/coffer/config.toml`:
//!
//! ```toml
//! [profile.dev]
//! description = "the server on this laptop"
//! endpoint = "http://127.0.0.1:8200"
//! region = "us-east-1"
//! credentials_file = "~/coffer-data/root-credentials"   # AWS shared-credentials format
//! # credentials_profile = "default"                     # its section (default: default)
//!
//! [profile.staging]
//! endpoint = "https://coffer.staging.example.com"
//! region = "eu-west-1"
//! access_key_id = "AKIA..."
//! secret_access_key = "..."                             # keep the file mode 0600
//! ca_bundle = "/etc/coffer/staging-ca.pem"
//! ```
//!
//! Where a profile sits among flags, environment variables and the AWS files is [`crate::config`]'s
//! business; this module only reads the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use coffer_sigv4::Credentials;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::config::{read_ini, SettingSource};
use crate::{ClientError, SecretText};

/// The variable naming the configuration file.
pub const CONFIG_ENV: &str = "COFFER_CONFIG";
/// The variable choosing a profile when no `--profile` flag does.
pub const PROFILE_ENV: &str = "COFFER_PROFILE";

/// One `[profile.NAME]` table.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// What this profile is for (shown by `coffer profile list`).
    #[serde(default)]
    pub description: Option<String>,
    /// The server URL.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// An access key, with `secret_access_key` (and `session_token` for temporary credentials).
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<SecretText>,
    #[serde(default)]
    pub session_token: Option<SecretText>,
    /// Credentials kept in a file of the AWS shared-credentials format instead (such as a data
    /// directory's `root-credentials`); relative to the configuration file's directory, `~/` allowed.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// The section of `credentials_file` to read (default: `default`).
    #[serde(default)]
    pub credentials_profile: Option<String>,
    /// Extra CA certificates (PEM) to trust for this endpoint.
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("description", &self.description)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("credentials_file", &self.credentials_file)
            .field("credentials_profile", &self.credentials_profile)
            .field("ca_bundle", &self.ca_bundle)
            .finish()
    }
}

/// The whole file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileContents {
    #[serde(default)]
    profile: BTreeMap<String, Profile>,
}

/// A configuration file that was read: where it is and its profiles.
#[derive(Debug, Clone)]
pub struct ProfileFile {
    pub path: PathBuf,
    pub profiles: BTreeMap<String, Profile>,
}

/// Where the configuration file is: `COFFER_CONFIG`, `XDG_CONFIG_HOME/coffer/config.toml` or
/// `~/.config/coffer/config.toml`, and whether a variable named it explicitly.
pub fn config_path(var: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Option<(PathBuf, bool)> {
    if let Some(path) = var(CONFIG_ENV) {
        return Some((expand_home(Path::new(&path), home), true));
    }
    let base = var("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| home.map(|h| h.join(".config")))?;
    Some((base.join("coffer").join("config.toml"), false))
}

/// [`config_path`] for this process's environment and home directory.
pub fn config_path_from_environment() -> Option<PathBuf> {
    config_path(&crate::config::process_env, dirs::home_dir().as_deref()).map(|(path, _)| path)
}

/// `~/x` as `<home>/x`; anything else unchanged.
pub(crate) fn expand_home(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

impl ProfileFile {
    /// Reads the configuration file. A file at the default place that does not exist is no error (no
    /// profiles); one that `COFFER_CONFIG` names must exist.
    pub fn load(var: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Result<Option<ProfileFile>, ClientError> {
        let Some((path, explicit)) = config_path(var, home) else { return Ok(None) };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
            Err(e) => {
                return Err(ClientError::Config(format!(
                    "cannot read the Coffer configuration file {} ({CONFIG_ENV}): {e}",
                    path.display()
                )))
            }
        };
        let contents = parse(&text).map_err(|problem| {
            ClientError::Config(format!("the Coffer configuration file {} is not valid: {problem}", path.display()))
        })?;
        Ok(Some(ProfileFile { path, profiles: contents.profile }))
    }

    /// [`load`](Self::load) with this process's environment and home directory.
    pub fn load_from_environment() -> Result<Option<ProfileFile>, ClientError> {
        let home = dirs::home_dir();
        Self::load(&crate::config::process_env, home.as_deref())
    }

    /// Where profile `name` reads its credentials from, when it names a `credentials_file`: the file
    /// (resolved as [`credentials`](Self::credentials) reads it) and the section.
    pub fn credentials_location(&self, name: &str) -> Option<(PathBuf, String)> {
        let profile = self.profiles.get(name)?;
        let file = self.resolve_path(profile.credentials_file.as_deref()?, dirs::home_dir().as_deref());
        Some((file, profile.credentials_profile.clone().unwrap_or_else(|| "default".into())))
    }

    /// The directory relative paths in the file are read from.
    fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// `path` as written in the file, made absolute against the file's directory (`~/` expanded).
    pub fn resolve_path(&self, path: &Path, home: Option<&Path>) -> PathBuf {
        let expanded = expand_home(path, home);
        if expanded.is_absolute() {
            expanded
        } else {
            self.base_dir().join(expanded)
        }
    }

    /// The credentials profile `name` holds (inline, or from its `credentials_file`) and where they
    /// came from; `None` when it names none.
    pub fn credentials(
        &self,
        name: &str,
        home: Option<&Path>,
    ) -> Result<Option<(Credentials, SettingSource)>, ClientError> {
        let Some(profile) = self.profiles.get(name) else { return Ok(None) };
        let from_profile = SettingSource::CofferProfile { profile: name.to_string(), file: self.path.clone() };
        match (&profile.access_key_id, &profile.secret_access_key, &profile.credentials_file) {
            (Some(id), Some(secret), None) => Ok(Some((
                Credentials {
                    access_key_id: id.clone(),
                    secret_access_key: secret.expose().to_string(),
                    session_token: profile.session_token.as_ref().map(|t| t.expose().to_string()),
                },
                from_profile,
            ))),
            (None, None, None) => Ok(None),
            (None, None, Some(file)) => {
                let file = self.resolve_path(file, home);
                let section = profile.credentials_profile.clone().unwrap_or_else(|| "default".into());
                let ini = read_ini(&file);
                let get = |key: &str| ini.get(&section).and_then(|s| s.get(key)).cloned();
                match (get("aws_access_key_id"), get("aws_secret_access_key")) {
                    (Some(id), Some(secret)) => Ok(Some((
                        Credentials {
                            access_key_id: id,
                            secret_access_key: secret,
                            session_token: get("aws_session_token"),
                        },
                        SettingSource::CredentialsFile { profile: name.to_string(), file, section },
                    ))),
                    _ => Err(ClientError::Config(format!(
                        "profile {name:?} reads its credentials from {}, which has no [{section}] section with aws_access_key_id and aws_secret_access_key",
                        file.display()
                    ))),
                }
            }
            _ => Err(ClientError::Config(format!(
                "profile {name:?} in {} must give either access_key_id with secret_access_key, or credentials_file",
                self.path.display()
            ))),
        }
    }
}

/// Parses the file; a fault is reported by its position and TOML's message only, never by quoting the
/// line (which may hold a secret key).
fn parse(text: &str) -> Result<FileContents, String> {
    toml::from_str::<FileContents>(text).map_err(|e| {
        let place = e
            .span()
            .map(|span| {
                let line = 1 + text[..span.start.min(text.len())].matches('\n').count();
                format!("line {line}: ")
            })
            .unwrap_or_default();
        format!("{place}{}", e.message())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_debug_hides_secrets() {
        let contents = parse(
            r#"
[profile.dev]
endpoint = "http://127.0.0.1:8200"
credentials_file = "data/root-credentials"

[profile.staging]
region = "eu-west-1"
access_key_id = "AKIASTAGING"
secret_access_key = "canary-secret-5d1f"
"#,
        )
        .unwrap();
        assert_eq!(contents.profile["dev"].endpoint.as_deref(), Some("http://127.0.0.1:8200"));
        let shown = format!("{:?}", contents.profile["staging"]);
        assert!(shown.contains("AKIASTAGING") && !shown.contains("canary-secret"), "{shown}");
    }

    #[test]
    fn faults_name_the_line_without_quoting_it() {
        let err = parse("[profile.x]\nsecret_access_key = \"canary-secret-5d1f\"\nbogus = 1\n").err().unwrap();
        assert!(err.starts_with("line 3: "), "{err}");
        assert!(!err.contains("canary-secret"), "{err}");
    }

    #[test]
    fn the_file_is_found_by_variable_xdg_or_home() {
        let home = Path::new("/home/u");
        let none = |_: &str| None;
        assert_eq!(config_path(&none, Some(home)), Some((PathBuf::from("/home/u/.config/coffer/config.toml"), false)));
        let xdg = |k: &str| (k == "XDG_CONFIG_HOME").then(|| "/xdg".to_string());
        assert_eq!(config_path(&xdg, Some(home)), Some((PathBuf::from("/xdg/coffer/config.toml"), false)));
        let explicit = |k: &str| (k == CONFIG_ENV).then(|| "~/c.toml".to_string());
        assert_eq!(config_path(&explicit, Some(home)), Some((PathBuf::from("/home/u/c.toml"), true)));
    }

    #[test]
    fn credentials_come_inline_or_from_a_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("root-credentials"),
            "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = s3cret\n",
        )
        .unwrap();
        let file = ProfileFile {
            path: dir.path().join("config.toml"),
            profiles: parse(
                r#"
[profile.inline]
access_key_id = "AKIAINLINE"
secret_access_key = "x"
[profile.file]
credentials_file = "root-credentials"
[profile.broken]
access_key_id = "AKIAHALF"
[profile.none]
region = "eu-west-1"
"#,
            )
            .unwrap()
            .profile,
        };
        let (creds, source) = file.credentials("inline", None).unwrap().unwrap();
        assert_eq!(creds.access_key_id, "AKIAINLINE");
        assert!(matches!(source, SettingSource::CofferProfile { .. }));
        let (creds, source) = file.credentials("file", None).unwrap().unwrap();
        assert_eq!((creds.access_key_id.as_str(), creds.secret_access_key.as_str()), ("AKIAFILE", "s3cret"));
        assert!(matches!(source, SettingSource::CredentialsFile { .. }));
        assert!(file.credentials("broken", None).is_err());
        assert!(file.credentials("none", None).unwrap().is_none());
        assert!(file.credentials("absent", None).unwrap().is_none());
    }
}
