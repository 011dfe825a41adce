//! Server configuration: a TOML file, overridden by command-line flags (the CLI builds this struct).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    /// Storage URL; `sqlite://PATH`. Defaults to `<data-dir>/coffer.db`.
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
        }
    }
}

impl ServerConfig {
    /// Reads a TOML config file; unknown keys are errors so typos do not pass silently.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// The SQLite database path this configuration selects.
    pub fn sqlite_path(&self) -> anyhow::Result<PathBuf> {
        match self.storage.as_deref() {
            None => Ok(self.data_dir.join("coffer.db")),
            Some(url) => match url.strip_prefix("sqlite://") {
                Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
                _ => anyhow::bail!("unsupported storage URL {url:?}: use sqlite://PATH"),
            },
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
        Ok(())
    }
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
}
