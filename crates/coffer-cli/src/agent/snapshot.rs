//! The optional encrypted on-disk copy of the agent's cache (`--snapshot PATH`), so an application can
//! start while the Coffer server is down.
//!
//! File layout: `MAGIC` (8 bytes), the key derivation (1 byte: 1 = HKDF-SHA256 of the agent's secret
//! access key, 2 = Argon2id of `COFFER_AGENT_PASSPHRASE`), a 16-byte salt, a 12-byte nonce, then the
//! AES-256-GCM ciphertext (with its tag) of the entries; the header is the associated data, so no byte
//! of it can be changed unnoticed. Plaintext: a u32 entry count, then per entry a length-prefixed key
//! (JSON), the fetch time (u64 ms since the epoch) and the length-prefixed answer body. All integers
//! big-endian. The plaintext is built and read in zeroizing buffers.
//!
//! Writes go to a temporary file (mode 0600) that is synced and renamed over the snapshot, so a reader
//! sees the old snapshot or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use anyhow::{bail, Context};
use coffer_crypto::SecretBytes;
use rand::RngCore;
use tokio::sync::Notify;
use zeroize::Zeroizing;

use super::cache::{Cache, CacheKey, SnapshotEntry};

const MAGIC: &[u8; 8] = b"CFAGSNP1";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = MAGIC.len() + 1 + SALT_LEN + NONCE_LEN;
const HKDF_INFO: &[u8] = b"coffer agent snapshot v1";
/// At most one write a second, however many fetches there are.
const WRITE_INTERVAL: Duration = Duration::from_secs(1);
/// Bounds on what a snapshot may claim, so a damaged file cannot make the reader allocate wildly.
const MAX_KEY_LEN: usize = 64 * 1024;
const MAX_BODY_LEN: usize = 1024 * 1024;

/// What the snapshot key is derived from.
pub enum KeySource {
    /// The agent's AWS secret access key (HKDF-SHA256): only an agent with the same credentials reads it.
    AccessKey(SecretBytes),
    /// `COFFER_AGENT_PASSPHRASE` (Argon2id): survives credential rotation.
    Passphrase(SecretBytes),
}

impl KeySource {
    fn tag(&self) -> u8 {
        match self {
            KeySource::AccessKey(_) => 1,
            KeySource::Passphrase(_) => 2,
        }
    }

    fn derive(&self, salt: &[u8; SALT_LEN]) -> anyhow::Result<Zeroizing<[u8; 32]>> {
        let mut key = Zeroizing::new([0u8; 32]);
        match self {
            KeySource::AccessKey(secret) => {
                hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), secret.expose())
                    .expand(HKDF_INFO, key.as_mut())
                    .map_err(|_| anyhow::anyhow!("HKDF cannot derive a 32-byte key"))?;
            }
            KeySource::Passphrase(passphrase) => {
                // Argon2id with its default (OWASP-recommended) costs: m = 19 MiB, t = 2, p = 1.
                argon2::Argon2::default()
                    .hash_password_into(passphrase.expose(), salt, key.as_mut())
                    .map_err(|e| anyhow::anyhow!("Argon2id: {e}"))?;
            }
        }
        Ok(key)
    }
}

/// A salt and the key derived with it.
type WritingKey = ([u8; SALT_LEN], Zeroizing<[u8; 32]>);

pub struct Snapshot {
    path: PathBuf,
    key_source: KeySource,
    /// The salt and key this agent writes with, derived at its first write (Argon2id is slow, so once).
    /// The lock also keeps two writes from interleaving.
    writing_key: Mutex<Option<WritingKey>>,
}

impl Snapshot {
    pub fn new(path: PathBuf, key_source: KeySource) -> Snapshot {
        Snapshot { path, key_source, writing_key: Mutex::new(None) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entries of the snapshot file; none if there is no file yet.
    pub fn load(&self) -> anyhow::Result<Vec<SnapshotEntry>> {
        let data = match std::fs::read(&self.path) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).context("reading it"),
        };
        if data.len() < HEADER_LEN || &data[..MAGIC.len()] != MAGIC {
            bail!("not a coffer agent snapshot");
        }
        let (header, ciphertext) = data.split_at(HEADER_LEN);
        let kdf = header[MAGIC.len()];
        if kdf != self.key_source.tag() {
            bail!(match kdf {
                2 => "it was written with a passphrase: set COFFER_AGENT_PASSPHRASE",
                _ => "it was written without a passphrase, but COFFER_AGENT_PASSPHRASE is set",
            });
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&header[MAGIC.len() + 1..MAGIC.len() + 1 + SALT_LEN]);
        let nonce = &header[HEADER_LEN - NONCE_LEN..];
        let key = self.key_source.derive(&salt)?;
        let plaintext = Aes256Gcm::new(key.as_ref().into())
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: header })
            .map(Zeroizing::new)
            .map_err(|_| anyhow::anyhow!("it does not decrypt (other credentials or passphrase, or damaged)"))?;
        decode(&plaintext)
    }

    /// Encrypts `entries` and replaces the snapshot file with them.
    pub fn write(&self, entries: &[SnapshotEntry]) -> anyhow::Result<()> {
        let mut writing_key = self.writing_key.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if writing_key.is_none() {
            let mut salt = [0u8; SALT_LEN];
            rand::thread_rng().fill_bytes(&mut salt);
            let key = self.key_source.derive(&salt)?;
            *writing_key = Some((salt, key));
        }
        let Some((salt, key)) = writing_key.as_ref() else { bail!("no snapshot key") };

        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.push(self.key_source.tag());
        header.extend_from_slice(salt);
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        header.extend_from_slice(&nonce);

        let plaintext = encode(entries)?;
        let ciphertext = Aes256Gcm::new(key.as_ref().into())
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &header })
            .map_err(|_| anyhow::anyhow!("encrypting the snapshot failed"))?;

        let file_name = self.path.file_name().context("the snapshot path names no file")?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(".tmp");
        let tmp = self.path.with_file_name(tmp_name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        // A temporary file left by someone else keeps its mode on open: set it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("setting the mode of {}", tmp.display()))?;
        }
        file.write_all(&header)
            .and_then(|()| file.write_all(&ciphertext))
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).with_context(|| format!("renaming to {}", self.path.display()))?;
        Ok(())
    }
}

fn push_len(out: &mut Vec<u8>, len: usize) -> anyhow::Result<()> {
    let len = u32::try_from(len).context("an entry is too large for a snapshot")?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

fn encode(entries: &[SnapshotEntry]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let size: usize = entries.iter().map(|e| e.body.len() + 256).sum::<usize>() + 4;
    // Sized up front so the buffer holding values never grows (growth would leave unzeroized copies).
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    push_len(&mut out, entries.len())?;
    for entry in entries {
        let key = serde_json::to_vec(&entry.key).context("encoding a cache key")?;
        push_len(&mut out, key.len())?;
        out.extend_from_slice(&key);
        let millis = entry.fetched_wall.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        out.extend_from_slice(&u64::try_from(millis).unwrap_or(u64::MAX).to_be_bytes());
        push_len(&mut out, entry.body.len())?;
        out.extend_from_slice(entry.body.expose());
    }
    Ok(out)
}

/// Reads a decrypted snapshot; any inconsistency is an error (the file was authenticated, so only a
/// bug or a format change gets here).
fn decode(mut data: &[u8]) -> anyhow::Result<Vec<SnapshotEntry>> {
    fn take<'a>(data: &mut &'a [u8], n: usize) -> anyhow::Result<&'a [u8]> {
        if data.len() < n {
            bail!("the snapshot is truncated");
        }
        let (head, tail) = data.split_at(n);
        *data = tail;
        Ok(head)
    }
    fn take_u32(data: &mut &[u8]) -> anyhow::Result<usize> {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(take(data, 4)?);
        Ok(u32::from_be_bytes(bytes) as usize)
    }
    let count = take_u32(&mut data)?;
    let mut entries = Vec::with_capacity(count.min(10_000));
    for _ in 0..count {
        let key_len = take_u32(&mut data)?;
        if key_len > MAX_KEY_LEN {
            bail!("a snapshot key is too long");
        }
        let key: CacheKey = serde_json::from_slice(take(&mut data, key_len)?).context("a snapshot key")?;
        let mut millis = [0u8; 8];
        millis.copy_from_slice(take(&mut data, 8)?);
        let fetched_wall = UNIX_EPOCH + Duration::from_millis(u64::from_be_bytes(millis));
        let body_len = take_u32(&mut data)?;
        if body_len > MAX_BODY_LEN {
            bail!("a snapshot value is too long");
        }
        let body = Arc::new(SecretBytes::from(take(&mut data, body_len)?));
        entries.push(SnapshotEntry { key, fetched_wall, body });
    }
    if !data.is_empty() {
        bail!("the snapshot has trailing bytes");
    }
    Ok(entries)
}

/// Writes the cache to the snapshot now.
pub async fn write_now(snapshot: &Arc<Snapshot>, cache: &Cache) -> anyhow::Result<()> {
    let entries = cache.snapshot_entries();
    let snapshot = snapshot.clone();
    tokio::task::spawn_blocking(move || snapshot.write(&entries)).await.context("the snapshot writer stopped")?
}

/// Starts the debounced writer: each notification (a successful fetch) leads to one write, at most one
/// a second; fetches during the pause are covered by the next write (the notification is kept).
pub fn spawn_writer(snapshot: Arc<Snapshot>, cache: Arc<Cache>) -> Arc<Notify> {
    let wake = Arc::new(Notify::new());
    let woken = wake.clone();
    tokio::spawn(async move {
        loop {
            woken.notified().await;
            if let Err(e) = write_now(&snapshot, &cache).await {
                tracing::warn!(error = format!("{e:#}"), path = %snapshot.path().display(), "writing the snapshot failed");
            }
            tokio::time::sleep(WRITE_INTERVAL).await;
        }
    });
    wake
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entries() -> Vec<SnapshotEntry> {
        vec![
            SnapshotEntry {
                key: CacheKey::Secret {
                    id: "prod/db".into(),
                    version_id: None,
                    version_stage: Some("AWSCURRENT".into()),
                },
                fetched_wall: UNIX_EPOCH + Duration::from_millis(1_790_000_000_123),
                body: Arc::new(SecretBytes::from("{\"SecretString\":\"canary-7d1f\"}")),
            },
            SnapshotEntry {
                key: CacheKey::Parameter { name: "/app/x".into(), with_decryption: true },
                fetched_wall: UNIX_EPOCH + Duration::from_millis(1_790_000_001_000),
                body: Arc::new(SecretBytes::from("{}")),
            },
        ]
    }

    #[test]
    fn snapshots_round_trip_encrypted_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.snap");
        let writer = Snapshot::new(path.clone(), KeySource::AccessKey(SecretBytes::from("secret-key-1")));
        writer.write(&entries()).unwrap();
        writer.write(&entries()).unwrap();
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(11).any(|w| w == b"canary-7d1f"), "the value is not in the file in clear");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let reader = Snapshot::new(path.clone(), KeySource::AccessKey(SecretBytes::from("secret-key-1")));
        let loaded = reader.load().unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].key, entries()[0].key);
        assert_eq!(loaded[0].fetched_wall, entries()[0].fetched_wall);
        assert_eq!(loaded[0].body.expose(), entries()[0].body.expose());

        let other = Snapshot::new(path.clone(), KeySource::AccessKey(SecretBytes::from("secret-key-2")));
        assert!(other.load().unwrap_err().to_string().contains("does not decrypt"));
        let passphrase = Snapshot::new(path.clone(), KeySource::Passphrase(SecretBytes::from("pass")));
        assert!(passphrase.load().unwrap_err().to_string().contains("COFFER_AGENT_PASSPHRASE"));
    }

    #[test]
    fn passphrase_snapshots_and_damaged_or_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.snap");
        let missing = Snapshot::new(path.clone(), KeySource::Passphrase(SecretBytes::from("correct horse")));
        assert!(missing.load().unwrap().is_empty(), "no file yet: nothing to load, no error");
        missing.write(&entries()).unwrap();
        assert_eq!(missing.load().unwrap().len(), 2);
        let mut raw = std::fs::read(&path).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        assert!(missing.load().is_err());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(missing.load().unwrap_err().to_string().contains("not a coffer agent snapshot"));
    }
}
