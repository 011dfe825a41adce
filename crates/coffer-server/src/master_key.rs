//! Finding the master key: the key file, the environment, or a passphrase. File handling lives here so
//! the crypto crate stays free of I/O.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use coffer_crypto::{MasterKey, PassphraseParams};
use zeroize::Zeroizing;

use crate::config::{MasterKeySource, ServerConfig};

pub const KEY_FILE: &str = "master.key";
pub const PASSPHRASE_PARAMS_FILE: &str = "passphrase.json";

/// Writes `contents` to a new file readable only by its owner. Fails if the file exists.
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// Loads (or, on first start with the file source, creates) the master key. `data_exists` says whether
/// the store already holds data: then a missing key file is an error, never a reason to make a new key.
pub fn load(config: &ServerConfig, data_exists: bool) -> anyhow::Result<MasterKey> {
    if let Ok(value) = std::env::var("COFFER_MASTER_KEY") {
        let value = Zeroizing::new(value);
        if config.master_key_source != MasterKeySource::Env && config.master_key_source != MasterKeySource::File {
            bail!("COFFER_MASTER_KEY is set but the configured master key source is {:?}", config.master_key_source);
        }
        return MasterKey::from_base64(&value).context("COFFER_MASTER_KEY must be the base64 encoding of 32 bytes");
    }
    match config.master_key_source {
        MasterKeySource::Env => bail!("the master key source is env but COFFER_MASTER_KEY is not set"),
        MasterKeySource::File => load_or_create_key_file(&config.data_dir.join(KEY_FILE), data_exists),
        MasterKeySource::Passphrase => from_passphrase(config, data_exists),
        // There is no key to load at start: the seal gate rebuilds it from key shares.
        MasterKeySource::Shamir => bail!("the shamir master key source is unsealed with key shares, not loaded"),
    }
}

fn load_or_create_key_file(path: &Path, data_exists: bool) -> anyhow::Result<MasterKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            MasterKey::from_base64(text.trim())
                .with_context(|| format!("{} does not hold a valid master key", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if data_exists {
                bail!(
                    "{} is missing but the data directory already holds encrypted data; restore the key file (or set COFFER_MASTER_KEY) instead of starting over",
                    path.display()
                );
            }
            let key = MasterKey::generate(&mut rand::rngs::OsRng);
            write_private_file(path, key.to_base64().expose())?;
            tracing::info!(path = %path.display(), "created a new master key file");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn from_passphrase(config: &ServerConfig, data_exists: bool) -> anyhow::Result<MasterKey> {
    let passphrase = Zeroizing::new(match &config.passphrase_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("reading passphrase file {}", file.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        None => std::env::var("COFFER_PASSPHRASE").context(
            "the master key source is passphrase but COFFER_PASSPHRASE is not set (or give passphrase_file)",
        )?,
    });
    if passphrase.is_empty() {
        bail!("the passphrase is empty");
    }
    let params_path = config.data_dir.join(PASSPHRASE_PARAMS_FILE);
    let params: PassphraseParams = match std::fs::read(&params_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", params_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if data_exists {
                bail!("{} is missing but the data directory already holds encrypted data", params_path.display());
            }
            let params = PassphraseParams::generate(&mut rand::rngs::OsRng);
            write_private_file(&params_path, &serde_json::to_vec_pretty(&params)?)?;
            params
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", params_path.display())),
    };
    MasterKey::from_passphrase(passphrase.as_bytes(), &params).context("deriving the master key from the passphrase")
}
