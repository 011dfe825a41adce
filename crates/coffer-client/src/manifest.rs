//! What an application needs: its required and optional secrets and parameters, with defaults and
//! descriptions — seed 002's `SECRET_CONFIG` as data. [`SecretCache::load_manifest`] loads one at start
//! and refuses to start while any required item is missing (naming every one of them at once);
//! `coffer validate --manifest` checks the same file from a deployment pipeline, with the optional
//! rules `pattern`, `json_keys` and `max_age_days`.
//!
//! ```toml
//! [[secret]]
//! name = "whatsapp-saas/mvp/admin-token"      # secret id (name or ARN)
//! key = "ADMIN_TOKEN"                         # what the application asks for (default: from the name)
//! description = "Admin API authentication token"
//!
//! [[secret]]
//! name = "whatsapp-saas/mvp/openai-model"
//! required = false
//! default = "gpt-4"                           # used while the secret does not exist
//!
//! [[parameter]]
//! name = "/whatsapp-saas/mvp/api-url"
//! pattern = "^https://"                       # checked by `coffer validate`
//! ```
//!
//! Every item is required unless it says `required = false`; only an optional item may have a default.
//! A manifest holds names and non-secret defaults; a default is still treated as a value (never printed).
//!
//! [`SecretCache::load_manifest`]: crate::cache::SecretCache::load_manifest

use std::fmt;
use std::path::Path;

use coffer_crypto::SecretBytes;
use coffer_wire::Sensitive;
use serde::Deserialize;

use crate::source::env_var_name;

/// Whether an item is a Secrets Manager secret or a Parameter Store parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Secret,
    Parameter,
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ItemKind::Secret => "secret",
            ItemKind::Parameter => "parameter",
        })
    }
}

/// One secret or parameter the application needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestItem {
    /// The secret id (name or ARN) or the parameter name (`name:version` and `name:label` allowed).
    pub name: String,
    /// What the application asks for ([`ManifestItem::key`]); in dotenv mode, the file's key.
    #[serde(default, rename = "key")]
    pub explicit_key: Option<String>,
    /// Whether the application cannot start without it (default: yes).
    #[serde(default = "required_by_default")]
    pub required: bool,
    /// For an optional item: the value used while it does not exist.
    #[serde(default)]
    pub default: Option<Sensitive>,
    #[serde(default)]
    pub description: Option<String>,
    /// `coffer validate`: a regular expression the value must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// `coffer validate`: keys a JSON value must have.
    #[serde(default)]
    pub json_keys: Vec<String>,
    /// `coffer validate`: the most days since the value was last written.
    #[serde(default)]
    pub max_age_days: Option<f64>,
}

fn required_by_default() -> bool {
    true
}

impl ManifestItem {
    /// A required item.
    pub fn required(name: impl Into<String>) -> ManifestItem {
        ManifestItem {
            name: name.into(),
            explicit_key: None,
            required: true,
            default: None,
            description: None,
            pattern: None,
            json_keys: Vec::new(),
            max_age_days: None,
        }
    }

    /// An optional item (absent unless [`with_default`](Self::with_default)).
    pub fn optional(name: impl Into<String>) -> ManifestItem {
        ManifestItem { required: false, ..ManifestItem::required(name) }
    }

    pub fn with_key(mut self, key: impl Into<String>) -> ManifestItem {
        self.explicit_key = Some(key.into());
        self
    }

    /// The value used while the (optional) item does not exist.
    pub fn with_default(mut self, value: impl Into<String>) -> ManifestItem {
        self.default = Some(Sensitive(SecretBytes::from(value.into())));
        self
    }

    pub fn with_description(mut self, description: impl Into<String>) -> ManifestItem {
        self.description = Some(description.into());
        self
    }

    /// What the application asks for: the `key` given, else the name's last path segment in upper snake
    /// case, as `coffer exec` names variables (`whatsapp-saas/mvp/admin-token` is `ADMIN_TOKEN`).
    pub fn key(&self) -> String {
        self.explicit_key.clone().unwrap_or_else(|| {
            let last = self.name.trim_end_matches('/').rsplit('/').next().unwrap_or(&self.name);
            // A parameter's `:version` or `:label` selector is not part of its name.
            let last = last.split(':').next().unwrap_or(last);
            env_var_name(last).unwrap_or_else(|| self.name.clone())
        })
    }
}

/// The list of what an application needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default, rename = "secret")]
    pub secrets: Vec<ManifestItem>,
    #[serde(default, rename = "parameter")]
    pub parameters: Vec<ManifestItem>,
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read the manifest {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// The TOML is malformed or has unknown fields (reported by position, never by quoting the line).
    #[error("the manifest {origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    /// Items contradict themselves or each other; every problem is listed.
    #[error("the manifest {origin} has {} problem{}: {}", problems.len(), if problems.len() == 1 { "" } else { "s" }, problems.join("; "))]
    Invalid { origin: String, problems: Vec<String> },
}

impl Manifest {
    pub fn new() -> Manifest {
        Manifest::default()
    }

    pub fn secret(mut self, item: ManifestItem) -> Manifest {
        self.secrets.push(item);
        self
    }

    pub fn parameter(mut self, item: ManifestItem) -> Manifest {
        self.parameters.push(item);
        self
    }

    /// Reads and checks a TOML manifest.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ManifestError::Read { path: path.display().to_string(), source })?;
        Manifest::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks TOML text; `origin` names it in errors (a file name).
    pub fn from_toml(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            // TOML's own rendering quotes the offending line, which could be a default value: only the
            // line number and the message are kept.
            let line = e.span().map(|s| 1 + text[..s.start.min(text.len())].matches('\n').count());
            let message = match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_string(),
            };
            ManifestError::Syntax { origin: origin.to_string(), message }
        })?;
        manifest.check(origin)?;
        Ok(manifest)
    }

    /// Every item with its kind: secrets first, then parameters, each in file order.
    pub fn items(&self) -> impl Iterator<Item = (ItemKind, &ManifestItem)> {
        self.secrets
            .iter()
            .map(|i| (ItemKind::Secret, i))
            .chain(self.parameters.iter().map(|i| (ItemKind::Parameter, i)))
    }

    /// Checks each item on its own: a name, a usable key, a default only when optional. Every problem
    /// is reported, not only the first.
    pub fn check(&self, origin: &str) -> Result<(), ManifestError> {
        let mut problems = Vec::new();
        for (kind, item) in self.items() {
            if item.name.trim().is_empty() {
                problems.push(format!("a {kind} has an empty name"));
                continue;
            }
            if item.required && item.default.is_some() {
                problems.push(format!(
                    "{kind} {} is required and has a default; a default is for optional items (required = false)",
                    item.name
                ));
            }
            if item.explicit_key.as_deref().is_some_and(|k| !crate::dotenv::is_valid_key(k)) {
                problems.push(format!("{kind} {}: its key must be ASCII letters, digits, `_`, `.` or `-`", item.name));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ManifestError::Invalid { origin: origin.to_string(), problems })
        }
    }

    /// Checks that each key names one item: two items may share a key only if they are the same secret or
    /// parameter (as `coffer validate` manifests repeat an item with different rules).
    pub fn check_unique_keys(&self, origin: &str) -> Result<(), ManifestError> {
        let mut seen: std::collections::BTreeMap<String, (ItemKind, &str)> = Default::default();
        let mut problems = Vec::new();
        for (kind, item) in self.items() {
            let key = item.key();
            match seen.get(&key) {
                Some((k, name)) if (*k, *name) != (kind, item.name.as_str()) => problems.push(format!(
                    "{key} names both {k} {name} and {kind} {}; give one of them another key",
                    item.name
                )),
                Some(_) => {}
                None => {
                    seen.insert(key, (kind, &item.name));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ManifestError::Invalid { origin: origin.to_string(), problems })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_parse_with_defaults_and_derived_keys() {
        let m = Manifest::from_toml(
            r#"
[[secret]]
name = "whatsapp-saas/mvp/admin-token"
description = "Admin API authentication token"

[[secret]]
name = "whatsapp-saas/mvp/openai-model"
required = false
default = "gpt-4"

[[parameter]]
name = "/app/api-url:3"
key = "API"
pattern = "^https://"
"#,
            "test.toml",
        )
        .unwrap();
        let items: Vec<(ItemKind, String, bool)> = m.items().map(|(k, i)| (k, i.key(), i.required)).collect();
        assert_eq!(
            items,
            [
                (ItemKind::Secret, "ADMIN_TOKEN".into(), true),
                (ItemKind::Secret, "OPENAI_MODEL".into(), false),
                (ItemKind::Parameter, "API".into(), true)
            ]
        );
        assert_eq!(m.secrets[1].default.as_ref().unwrap().0.expose_str().unwrap(), "gpt-4");
        assert!(!format!("{m:?}").contains("gpt-4"), "defaults are redacted in Debug");
        assert_eq!(ManifestItem::required("/a/b/db-url:label").key(), "DB_URL");
    }

    #[test]
    fn every_problem_is_listed() {
        let err = Manifest::from_toml(
            r#"
[[secret]]
name = ""
[[secret]]
name = "a/b"
default = "canary-default-91"
[[parameter]]
name = "/c"
key = "no spaces"
"#,
            "m.toml",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("3 problems"), "{text}");
        assert!(text.contains("empty name") && text.contains("secret a/b is required and has a default"), "{text}");
        assert!(text.contains("parameter /c: its key"), "{text}");
        assert!(!text.contains("canary-default"), "{text}");
    }

    #[test]
    fn syntax_errors_do_not_quote_the_line() {
        let err =
            Manifest::from_toml("[[secret]]\nname = \"a\"\ndefault = \"canary-default-91\nx", "m.toml").unwrap_err();
        assert!(matches!(err, ManifestError::Syntax { .. }));
        assert!(!err.to_string().contains("canary-default"), "{err}");
        let err = Manifest::from_toml("[[secret]]\nname = \"a\"\nrequird = false\n", "m.toml").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn keys_must_name_one_item() {
        let m = Manifest::new()
            .secret(ManifestItem::required("/prod/a/token"))
            .secret(ManifestItem::required("/prod/a/token"))
            .secret(ManifestItem::required("/prod/b/token"));
        let err = m.check_unique_keys("code").unwrap_err().to_string();
        assert!(err.contains("TOKEN names both secret /prod/a/token and secret /prod/b/token"), "{err}");
        let fine = Manifest::new()
            .secret(ManifestItem::required("/prod/a/token"))
            .secret(ManifestItem::required("/prod/b/token").with_key("B_TOKEN"));
        fine.check_unique_keys("code").unwrap();
    }
}
