//! IAM entities as the service stores them (JSON documents inside `IamEntityRecord`s), their ARNs and
//! unique ids, and the naming rules of the IAM API.

use std::collections::BTreeMap;

use coffer_store::Tag;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ServiceError, ServiceResult};

/// Most access keys one user may hold (AWS's quota).
pub const MAX_ACCESS_KEYS_PER_USER: usize = 2;
/// Most versions a managed policy keeps (AWS's quota).
pub const MAX_POLICY_VERSIONS: usize = 5;
/// Most managed policies attached to one user, group or role (AWS's default quota).
pub const MAX_ATTACHED_POLICIES: usize = 20;
/// Most tags on a user or role.
pub const MAX_TAGS: usize = 50;

/// An IAM user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserDoc {
    /// `AIDA…`, AWS's unique id (`aws:userid`).
    pub user_id: String,
    pub path: String,
    pub created: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Inline policies: name → document.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// Attached managed policies, by ARN, in attachment order.
    #[serde(default)]
    pub attached: Vec<String>,
    /// Names of the groups the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An IAM group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupDoc {
    pub group_id: String,
    pub path: String,
    pub created: i64,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
}

/// An IAM role.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoleDoc {
    pub role_id: String,
    pub path: String,
    pub created: i64,
    /// The trust policy (who may assume the role).
    pub trust_policy: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Longest session AssumeRole may grant, in seconds (3600–43200).
    pub max_session_duration: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
}

/// One version of a managed policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyVersionDoc {
    /// `v1`, `v2`, …
    pub version_id: String,
    pub document: String,
    pub created: i64,
}

/// A customer-managed policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicyDoc {
    pub policy_id: String,
    pub path: String,
    pub created: i64,
    pub updated: i64,
    #[serde(default)]
    pub description: Option<String>,
    pub default_version: String,
    /// The number the next version takes.
    pub next_version: u32,
    pub versions: Vec<PolicyVersionDoc>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl PolicyDoc {
    pub fn default_document(&self) -> Option<&str> {
        self.versions.iter().find(|v| v.version_id == self.default_version).map(|v| v.document.as_str())
    }
}

/// A virtual MFA device: a TOTP seed (sealed), and the user it is enabled for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MfaDoc {
    pub path: String,
    pub created: i64,
    /// The seed sealed under the master key (AAD = the serial number), base64.
    pub sealed_seed: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub enabled: Option<i64>,
    /// The last 30-second time step a code was accepted for: a code is good once.
    #[serde(default)]
    pub last_step: u64,
}

pub fn iam_arn(account: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}{path}{name}")
}

pub fn user_arn(account: &str, path: &str, name: &str) -> String {
    iam_arn(account, "user", path, name)
}

pub fn role_arn(account: &str, path: &str, name: &str) -> String {
    iam_arn(account, "role", path, name)
}

pub fn group_arn(account: &str, path: &str, name: &str) -> String {
    iam_arn(account, "group", path, name)
}

pub fn policy_arn(account: &str, path: &str, name: &str) -> String {
    iam_arn(account, "policy", path, name)
}

pub fn mfa_arn(account: &str, path: &str, name: &str) -> String {
    iam_arn(account, "mfa", path, name)
}

/// The parts of an IAM ARN: (account, resource type, path, name).
pub fn parse_iam_arn(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let (_partition, service, _region, account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if service != "iam" {
        return None;
    }
    let (kind, path_and_name) = resource.split_once('/')?;
    let slash = path_and_name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let path = &resource[kind.len()..kind.len() + 1 + slash];
    Some((account, kind, path, &path_and_name[slash..]))
}

/// AWS's unique ids: a four-letter prefix telling the kind (`AIDA` user, `AGPA` group, `AROA` role,
/// `ANPA` policy) and 17 characters of the base32 alphabet.
pub fn new_unique_id(prefix: &str, rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = (0..17).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("{prefix}{tail}")
}

/// User, group and role names: 1–64 characters of `[\w+=,.@-]` (roles and users the same).
pub fn check_entity_name(field: &str, name: &str, max: usize) -> ServiceResult<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= max
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::validation(format!(
            "1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length between 1 and {max}"
        )))
    }
}

/// Paths: `/` alone, or `/` … `/` of printable ASCII, at most 512 characters.
pub fn check_path(path: &str) -> ServiceResult<()> {
    let ok = path.len() <= 512
        && path.starts_with('/')
        && path.ends_with('/')
        && path.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::validation(format!(
            "1 validation error detected: Value '{path}' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)"
        )))
    }
}

/// IAM tags: keys 1–128, values 0–256 characters, no duplicate keys, at most 50.
pub fn check_tags(tags: &[Tag]) -> ServiceResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(ServiceError::new(
            crate::ErrorKind::LimitExceeded,
            format!("The number of tags has reached the maximum limit of {MAX_TAGS}."),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        if t.key.is_empty() || t.key.chars().count() > 128 || t.value.chars().count() > 256 {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value at 'tags' failed to satisfy constraint: tag key '{}' must be 1-128 characters and its value at most 256",
                t.key
            )));
        }
        if !seen.insert(t.key.to_ascii_lowercase()) {
            return Err(ServiceError::invalid_parameter(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
    }
    Ok(())
}

/// Merges tags by key (case-insensitively, as IAM compares tag keys), new values winning.
pub fn merge_tags(current: &mut Vec<Tag>, new: &[Tag]) {
    for t in new {
        match current.iter_mut().find(|c| c.key.eq_ignore_ascii_case(&t.key)) {
            Some(c) => *c = t.clone(),
            None => current.push(t.clone()),
        }
    }
}

/// A time as ISO 8601 in UTC, second precision (`2026-11-23T10:00:00Z`), as IAM and STS answer.
pub fn iso8601(millis: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_arns_split_into_path_and_name() {
        assert_eq!(
            parse_iam_arn("arn:aws:iam::123456789012:user/dev/alice"),
            Some(("123456789012", "user", "/dev/", "alice"))
        );
        assert_eq!(parse_iam_arn("arn:aws:iam::123456789012:role/app"), Some(("123456789012", "role", "/", "app")));
        assert_eq!(
            parse_iam_arn("arn:aws:iam::aws:policy/AdministratorAccess"),
            Some(("aws", "policy", "/", "AdministratorAccess"))
        );
        assert_eq!(parse_iam_arn("arn:aws:sts::1:assumed-role/r/s"), None);
        assert_eq!(parse_iam_arn("arn:aws:iam::1:root"), None);
    }

    #[test]
    fn names_and_paths_follow_iam_rules() {
        assert!(check_entity_name("userName", "ci-user@corp.example", 64).is_ok());
        assert!(check_entity_name("userName", "", 64).is_err());
        assert!(check_entity_name("userName", "has space", 64).is_err());
        assert!(check_entity_name("userName", &"a".repeat(65), 64).is_err());
        assert!(check_path("/").is_ok());
        assert!(check_path("/team/backend/").is_ok());
        assert!(check_path("team/").is_err());
        assert!(check_path("/team").is_err());
    }

    #[test]
    fn unique_ids_carry_their_prefix() {
        let id = new_unique_id("AIDA", &mut rand::thread_rng());
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AIDA"));
    }
}
