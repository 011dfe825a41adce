//! Server configuration: a TOML file, overridden by command-line flags (the CLI builds this struct).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// Where the master key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MasterKeySource {
    /// `<data-dir>/master.key`, created (mode 0600) on first start. The default for one machine.
    #[default]
    File,
    /// `COFFER_MASTER_KEY`: base64 of 32 bytes. How several nodes share one key.
    Env,
    /// A passphrase (from `COFFER_PASSPHRASE` or a file) stretched with Argon2id; its salt and costs
    /// are kept in `<data-dir>/passphrase.json`.
    Passphrase,
    /// Sealed with Shamir key shares: the server starts sealed and gets the master key only when
    /// `coffer operator unseal` has submitted the threshold of shares (see `seal.rs`).
    Shamir,
}

/// Everything `coffer server` needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Storage URL: `sqlite://PATH`, or `postgres://user@host:port/db?...` (`postgresql://` too) for a
    /// database several nodes share. Defaults to SQLite in `<data-dir>/coffer.db`.
    pub storage: Option<String>,
    /// The region reported by the server and used by its own background actions.
    pub region: String,
    pub account_id: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub master_key_source: MasterKeySource,
    /// With `passphrase`: read it from this file instead of `COFFER_PASSPHRASE`.
    pub passphrase_file: Option<PathBuf>,
    /// How often scheduled deletions are carried out, in seconds.
    pub scheduler_interval_secs: u64,
    /// How long shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_secs: u64,
    /// Unlabelled versions beyond this count (and older than a day) are pruned.
    pub max_versions: usize,
    pub audit: AuditSettings,
    pub rotation: RotationSettings,
    /// With PostgreSQL storage: the longest a node serves a cached secret or parameter before reading
    /// it again, in milliseconds (default 5000; 0 = until a change notice names it). Notices from the
    /// other nodes normally refresh it at once; this bounds how stale it gets when one is lost. With
    /// SQLite only this node writes, and entries never expire.
    pub cache_max_age_ms: Option<u64>,
    /// With PostgreSQL storage: how reads see other nodes' writes. `strong` (the default): a cached
    /// secret or parameter is checked against the database's revision (one single-row read) before
    /// it is served, so a write acknowledged by any node is seen by the next read on every node.
    /// `cached`: served from the node's cache until a change notice names it (normally milliseconds
    /// after the write; `cache_max_age_ms` if a notice is lost) — faster, eventually consistent.
    pub read_consistency: ReadConsistency,
}

/// How reads see other nodes' writes (PostgreSQL storage).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadConsistency {
    #[default]
    Strong,
    Cached,
}

/// `cache_max_age_ms` when PostgreSQL storage does not say.
pub const DEFAULT_CACHE_MAX_AGE_MS: u64 = 5_000;

/// The built-in rotators, by the name after `coffer-` in their function ARNs.
pub const BUILTIN_ROTATORS: [&str; 4] =
    ["generated", "signing-key", "postgres-single-user", "postgres-alternating-users"];

/// The `[rotation]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotationSettings {
    /// Whether this node runs due rotations (its scheduler pass, every `scheduler_interval_secs`).
    pub scheduler: bool,
    /// How many secrets one pass (or one incident) rotates at a time.
    pub concurrency: usize,
    /// External rotators: `[[rotation.external]]` entries.
    pub external: Vec<ExternalRotatorSettings>,
}

impl Default for RotationSettings {
    fn default() -> Self {
        RotationSettings { scheduler: true, concurrency: 16, external: Vec::new() }
    }
}

/// One external rotator: the RotationLambdaARN it answers to, and a command or a webhook URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalRotatorSettings {
    /// `arn:aws:lambda:<region>:<account>:function:<name>`.
    pub arn: String,
    /// A program and its arguments; it receives each step's event on standard input.
    pub command: Option<Vec<String>>,
    /// An HTTP(S) URL each step's event is POSTed to.
    pub url: Option<String>,
    /// A built-in rotator this ARN runs: generated, signing-key, postgres-single-user,
    /// postgres-alternating-users (so the ARN a team already uses keeps working).
    pub builtin: Option<String>,
    /// A role whose temporary credentials the command gets (AWS_ACCESS_KEY_ID, ...).
    pub role_arn: Option<String>,
    /// Per step, in seconds (default 60).
    pub timeout_secs: Option<u64>,
}

/// The `[audit]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// `false` only to measure the log's cost: nothing is recorded, and the server says so loudly.
    pub enabled: bool,
    /// A read's event is durable within this many milliseconds (group commit); 0 = before its response.
    pub flush_interval_ms: u64,
    /// Records older than this many days are pruned (at a signed digest). Seven years by default.
    pub retention_days: u32,
    /// How often the server signs a digest of the chain (and always at shutdown), in seconds.
    pub digest_interval_secs: u64,
    /// A JSON-lines copy of the log, in chain order, for shipping to a SIEM.
    pub sink_path: Option<PathBuf>,
    /// The sink file is rotated (to `<path>.1`, `<path>.2`, …) when it passes this size.
    pub sink_max_bytes: u64,
    /// How many rotated sink files are kept.
    pub sink_keep: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            enabled: true,
            flush_interval_ms: 100,
            retention_days: 2_557,
            digest_interval_secs: 300,
            sink_path: None,
            sink_max_bytes: 100 * 1024 * 1024,
            sink_keep: 10,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8200)),
            data_dir: PathBuf::from("coffer-data"),
            storage: None,
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            tls_cert: None,
            tls_key: None,
            master_key_source: MasterKeySource::File,
            passphrase_file: None,
            scheduler_interval_secs: 60,
            shutdown_grace_secs: 30,
            max_versions: 100,
            audit: AuditSettings::default(),
            rotation: RotationSettings::default(),
            cache_max_age_ms: None,
            read_consistency: ReadConsistency::default(),
        }
    }
}

impl ServerConfig {
    /// Reads a TOML config file; unknown keys are errors so typos do not pass silently.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// The storage backend this configuration selects.
    pub fn storage_backend(&self) -> anyhow::Result<StorageBackend> {
        let Some(url) = self.storage.as_deref() else {
            return Ok(StorageBackend::Sqlite(self.data_dir.join("coffer.db")));
        };
        StorageBackend::parse(url)
    }

    /// How long the service trusts a cached secret or parameter (`cache_max_age_ms`): only with
    /// PostgreSQL, where other nodes change the data too.
    pub fn cache_max_age(&self) -> Option<Duration> {
        match self.storage_backend() {
            Ok(StorageBackend::Postgres(_)) => {
                Some(Duration::from_millis(self.cache_max_age_ms.unwrap_or(DEFAULT_CACHE_MAX_AGE_MS)))
                    .filter(|age| !age.is_zero())
            }
            _ => None,
        }
    }

    /// Whether the service validates cached reads against the store: with PostgreSQL under `strong`
    /// read consistency (with SQLite every write passes through this node's caches).
    pub fn validate_cached_reads(&self) -> bool {
        matches!(self.storage_backend(), Ok(StorageBackend::Postgres(_)))
            && self.read_consistency == ReadConsistency::Strong
    }

    /// The SQLite database path this configuration selects; an error when it selects PostgreSQL.
    pub fn sqlite_path(&self) -> anyhow::Result<PathBuf> {
        match self.storage_backend()? {
            StorageBackend::Sqlite(path) => Ok(path),
            StorageBackend::Postgres(_) => anyhow::bail!("the storage is PostgreSQL, not an SQLite file"),
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            anyhow::bail!("account_id must be 12 digits, got {:?}", self.account_id);
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            anyhow::bail!("TLS needs both tls_cert and tls_key");
        }
        if self.region.is_empty() {
            anyhow::bail!("region must not be empty");
        }
        if self.audit.retention_days == 0 {
            anyhow::bail!("audit.retention_days must be at least 1");
        }
        if self.audit.digest_interval_secs == 0 {
            anyhow::bail!("audit.digest_interval_secs must be at least 1");
        }
        self.storage_backend()?;
        for external in &self.rotation.external {
            let targets = [external.command.is_some(), external.url.is_some(), external.builtin.is_some()];
            if targets.iter().filter(|t| **t).count() != 1 {
                anyhow::bail!("rotation.external {} needs exactly one of command, url and builtin", external.arn);
            }
            if let Some(name) = &external.builtin {
                if !BUILTIN_ROTATORS.contains(&name.as_str()) {
                    anyhow::bail!(
                        "rotation.external {}: unknown builtin {name:?} (use one of {})",
                        external.arn,
                        BUILTIN_ROTATORS.join(", ")
                    );
                }
            }
            if external.command.as_ref().is_some_and(|c| c.is_empty()) {
                anyhow::bail!("rotation.external {}: command is empty", external.arn);
            }
            if !external.arn.starts_with("arn:aws:lambda:") {
                anyhow::bail!("rotation.external arn {:?} is not a Lambda function ARN", external.arn);
            }
        }
        Ok(())
    }
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageBackend {
    /// One SQLite file (the default).
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its URL (which may hold a password: never log it as is).
    Postgres(String),
}

impl StorageBackend {
    /// Parses a storage URL: `sqlite://PATH` or `postgres://...` (`postgresql://...`).
    pub fn parse(url: &str) -> anyhow::Result<StorageBackend> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                anyhow::bail!("the storage URL sqlite:// names no file: use sqlite://PATH");
            }
            return Ok(StorageBackend::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // Checked here so a malformed URL stops the start before anything else happens.
            coffer_store_postgres::parse_url(url).map_err(|e| anyhow::anyhow!("storage URL: {e}"))?;
            return Ok(StorageBackend::Postgres(url.to_string()));
        }
        anyhow::bail!("unsupported storage URL {:?}: use sqlite://PATH or postgres://...", redact_password(url))
    }
}

/// `url` fit for a message: the password of its `user:password@` part replaced by `***`, and its query
/// (which may carry `password=...`) cut off.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (rest, query) = match rest.split_once('?') {
        Some((before, _)) => (before, "?…"),
        None => (rest, ""),
    };
    let authority_end = rest.find(['/', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    format!("{scheme}://{authority}{path}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_master_key_source_is_spelled_in_toml() {
        for (text, source) in [
            ("file", MasterKeySource::File),
            ("env", MasterKeySource::Env),
            ("passphrase", MasterKeySource::Passphrase),
            ("shamir", MasterKeySource::Shamir),
        ] {
            let config: ServerConfig = toml::from_str(&format!("master_key_source = \"{text}\"")).expect("parses");
            assert_eq!(config.master_key_source, source, "{text}");
        }
        assert!(toml::from_str::<ServerConfig>("master_key_source = \"vault\"").is_err());
    }

    #[test]
    fn storage_urls_select_the_backend() {
        let with = |storage: Option<&str>| ServerConfig {
            storage: storage.map(str::to_string),
            data_dir: PathBuf::from("/data"),
            ..ServerConfig::default()
        };
        assert_eq!(with(None).storage_backend().unwrap(), StorageBackend::Sqlite(PathBuf::from("/data/coffer.db")));
        assert_eq!(
            with(Some("sqlite:///var/lib/coffer.db")).storage_backend().unwrap(),
            StorageBackend::Sqlite(PathBuf::from("/var/lib/coffer.db"))
        );
        for url in ["postgres://coffer@db:5432/coffer", "postgresql://coffer:pw@db/coffer?options=-csearch_path%3Dc"] {
            assert_eq!(with(Some(url)).storage_backend().unwrap(), StorageBackend::Postgres(url.to_string()));
            assert!(with(Some(url)).validate().is_ok(), "{url}");
        }
        assert!(with(Some("sqlite://")).storage_backend().is_err());
        let err = with(Some("mysql://root:hunter2@db/coffer")).validate().unwrap_err().to_string();
        assert!(err.contains("use sqlite://PATH or postgres://..."), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = with(Some("postgres://coffer:hunter2@db/coffer?no_such_option=1")).validate().unwrap_err();
        assert!(!format!("{err:#}").contains("hunter2"), "{err:#}");
    }

    #[test]
    fn caches_expire_only_over_postgres() {
        let with = |storage: &str, toml_text: &str| ServerConfig {
            storage: Some(storage.to_string()),
            ..toml::from_str::<ServerConfig>(toml_text).expect("parses")
        };
        let pg = "postgres://coffer@db/coffer";
        assert_eq!(with(pg, "").cache_max_age(), Some(Duration::from_millis(DEFAULT_CACHE_MAX_AGE_MS)));
        assert_eq!(with(pg, "cache_max_age_ms = 750").cache_max_age(), Some(Duration::from_millis(750)));
        assert_eq!(with(pg, "cache_max_age_ms = 0").cache_max_age(), None);
        assert_eq!(with("sqlite:///data/coffer.db", "cache_max_age_ms = 750").cache_max_age(), None);
        assert_eq!(ServerConfig::default().cache_max_age(), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_password("postgres://u:secret@h:5/db?x=1"), "postgres://u:***@h:5/db?…");
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_password("postgres://h/db?password=secret@y"), "postgres://h/db?…");
        assert_eq!(redact_password("no scheme"), "no scheme");
    }
}
