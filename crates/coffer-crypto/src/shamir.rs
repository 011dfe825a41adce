//! Sealing the master key with Shamir's secret sharing, in two layers as Vault does.
//!
//! A random 32-byte **unseal key** is split into `shares` key shares, any `threshold` of which rebuild
//! it (GF(256) arithmetic from the `blahaj` crate). The **master key** is stored sealed under the unseal
//! key. Splitting a random key rather than the master key itself is what makes a rekey cheap and safe:
//! a rekey draws a new unseal key, splits it and re-seals the same master key, so the data is untouched
//! and old shares, which rebuild the old unseal key, stop working.
//!
//! The [`SealConfig`] (stored beside the data) keeps the SHA-256 of every share. A share holds 256 bits
//! of entropy, so its hash reveals nothing, and it lets each submitted share be recognised on arrival
//! (in constant time) instead of only failing, anonymously, once the threshold is reached.
//!
//! # Share text (format 1)
//!
//! Standard base64 of 34 bytes: `0x01 | x (1..=255) | y (32)`, where `(x, y)` is the blahaj share.
//!
//! # Sealed master key (format 1)
//!
//! `0x01 | nonce (12) | AES-256-GCM(master key (32)) + tag (16)`, 61 bytes, under the unseal key with
//! associated data [`SEALED_MASTER_KEY_AAD`].

use std::fmt;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::{MasterKey, SecretBytes, KEY_LEN};

/// Format byte of a key share's bytes.
pub const SHARE_FORMAT: u8 = 1;
/// Format of a [`SealConfig`] and of the sealed master key inside it.
pub const SEAL_CONFIG_FORMAT: u8 = 1;
/// GF(256) has 255 non-zero points, so at most 255 distinct shares exist.
pub const MAX_KEY_SHARES: u32 = 255;
/// Associated data of the sealed master key: binds the blob to its purpose.
pub const SEALED_MASTER_KEY_AAD: &[u8] = b"coffer sealed master key v1";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// Format byte, x coordinate, one y byte per byte of the unseal key.
const SHARE_LEN: usize = 2 + KEY_LEN;
const SEALED_MASTER_KEY_LEN: usize = 1 + NONCE_LEN + KEY_LEN + TAG_LEN;

/// What can go wrong with shares and seal configurations. Messages never contain share or key material.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ShamirError {
    /// The requested number of shares or threshold is out of range.
    #[error(
        "invalid key shares/threshold {shares}/{threshold}: key shares must be 1 to 255 and the key threshold 2 to the number of shares (1 only with a single share)"
    )]
    InvalidParameters { shares: u32, threshold: u32 },
    /// The text is not a Coffer key share at all (bad base64, wrong length, unknown format).
    #[error("the key share is malformed: expected the base64 text printed by `coffer operator init` or `rekey`")]
    MalformedShare,
    /// A well-formed share whose hash is not in this configuration: mistyped, altered, from another
    /// installation, or from before a rekey.
    #[error("the key share does not belong to this Coffer's current seal configuration")]
    UnknownShare,
    /// The same share was submitted twice in one attempt.
    #[error("this key share was already submitted in this attempt")]
    DuplicateShare,
    /// Fewer valid shares than the threshold.
    #[error("{have} valid key shares given, {need} are needed")]
    NotEnoughShares { have: usize, need: usize },
    /// The rebuilt unseal key does not open the sealed master key (the configuration was altered).
    #[error("the unseal key does not open the sealed master key")]
    WrongUnsealKey,
    /// The stored configuration is not shaped as this version writes it.
    #[error("the seal configuration is malformed")]
    MalformedConfig,
    /// The stored configuration has a format this version does not know (written by a newer Coffer?).
    #[error("unknown seal configuration format {0}")]
    UnknownFormat(u8),
    /// Sealing failed; AES-GCM refuses only inputs of gigabytes, so this does not happen in practice.
    #[error("sealing the master key failed")]
    Encrypt,
}

/// Checks a (shares, threshold) request and narrows it to the field's range.
pub fn check_share_parameters(shares: u32, threshold: u32) -> Result<(u8, u8), ShamirError> {
    let invalid = ShamirError::InvalidParameters { shares, threshold };
    if shares == 0 || shares > MAX_KEY_SHARES || threshold == 0 || threshold > shares {
        return Err(invalid);
    }
    // A threshold of 1 hands the whole unseal key to every holder: splitting would only make copies.
    if threshold == 1 && shares != 1 {
        return Err(invalid);
    }
    let shares = u8::try_from(shares).map_err(|_| invalid.clone())?;
    let threshold = u8::try_from(threshold).map_err(|_| invalid)?;
    Ok((shares, threshold))
}

/// One key share: zeroized on drop, redacted in `Debug`, handed out and read back as base64 text.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShare(SecretBytes);

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyShare(<redacted>)")
    }
}

impl KeyShare {
    /// Parses share text; surrounding whitespace (a trailing newline) is ignored.
    pub fn from_base64(text: &str) -> Result<Self, ShamirError> {
        let raw = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| ShamirError::MalformedShare)?);
        Self::from_bytes(&raw)
    }

    fn from_bytes(raw: &[u8]) -> Result<Self, ShamirError> {
        // x = 0 would be the secret itself; no dealer ever hands it out.
        if raw.len() != SHARE_LEN || raw[0] != SHARE_FORMAT || raw[1] == 0 {
            return Err(ShamirError::MalformedShare);
        }
        Ok(KeyShare(SecretBytes::from(raw)))
    }

    /// The share as standard base64 text (48 characters).
    pub fn to_base64(&self) -> SecretBytes {
        SecretBytes::from(STANDARD.encode(self.0.expose()))
    }

    fn hash(&self) -> [u8; HASH_LEN] {
        Sha256::digest(self.0.expose()).into()
    }

    fn to_blahaj(&self) -> Result<blahaj::Share, ShamirError> {
        blahaj::Share::try_from(&self.0.expose()[1..]).map_err(|_| ShamirError::MalformedShare)
    }
}

/// How the master key is sealed, as stored in the `seal-config` setting.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SealConfig {
    /// [`SEAL_CONFIG_FORMAT`]; other values are refused rather than guessed at.
    pub format: u8,
    pub shares: u32,
    pub threshold: u32,
    /// Standard base64 of the SHA-256 of each share's bytes, in share order.
    pub share_hashes: Vec<String>,
    /// Standard base64 of the sealed master key.
    pub sealed_master_key: String,
}

impl SealConfig {
    /// Splits a fresh unseal key into `shares` shares (any `threshold` rebuild it) and seals `master`
    /// under it. The shares are returned once; only their hashes are kept in the configuration.
    pub fn create(
        rng: &mut (impl RngCore + CryptoRng),
        master: &MasterKey,
        shares: u32,
        threshold: u32,
    ) -> Result<(SealConfig, Vec<KeyShare>), ShamirError> {
        let (share_count, threshold_u8) = check_share_parameters(shares, threshold)?;
        let mut unseal_key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(unseal_key.as_mut());
        let sealed = seal_master_key(rng, &unseal_key, master)?;
        let key_shares = blahaj::Sharks(threshold_u8)
            .dealer_rng(unseal_key.as_ref(), rng)
            .take(usize::from(share_count))
            .map(|share| {
                let mut raw = Zeroizing::new(Vec::with_capacity(SHARE_LEN));
                raw.push(SHARE_FORMAT);
                raw.extend_from_slice(&Zeroizing::new(Vec::from(&share)));
                KeyShare::from_bytes(&raw)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The dealer yields 255 points, so this holds; checked because a short list would lose shares.
        if key_shares.len() != usize::from(share_count) {
            return Err(ShamirError::Encrypt);
        }
        let config = SealConfig {
            format: SEAL_CONFIG_FORMAT,
            shares,
            threshold,
            share_hashes: key_shares.iter().map(|s| STANDARD.encode(s.hash())).collect(),
            sealed_master_key: STANDARD.encode(sealed),
        };
        Ok((config, key_shares))
    }

    /// Checks the shape of a configuration read back from storage.
    pub fn validate(&self) -> Result<(), ShamirError> {
        self.parsed().map(|_| ())
    }

    fn parsed(&self) -> Result<(Vec<[u8; HASH_LEN]>, Vec<u8>), ShamirError> {
        if self.format != SEAL_CONFIG_FORMAT {
            return Err(ShamirError::UnknownFormat(self.format));
        }
        check_share_parameters(self.shares, self.threshold).map_err(|_| ShamirError::MalformedConfig)?;
        if self.share_hashes.len() != self.shares as usize {
            return Err(ShamirError::MalformedConfig);
        }
        let hashes = self
            .share_hashes
            .iter()
            .map(|h| STANDARD.decode(h).ok().and_then(|raw| <[u8; HASH_LEN]>::try_from(raw).ok()))
            .collect::<Option<Vec<_>>>()
            .ok_or(ShamirError::MalformedConfig)?;
        let sealed = STANDARD.decode(&self.sealed_master_key).map_err(|_| ShamirError::MalformedConfig)?;
        if sealed.len() != SEALED_MASTER_KEY_LEN {
            return Err(ShamirError::MalformedConfig);
        }
        if sealed[0] != SEAL_CONFIG_FORMAT {
            return Err(ShamirError::UnknownFormat(sealed[0]));
        }
        Ok((hashes, sealed))
    }

    /// The position of `share` in this configuration, or `UnknownShare`. The submitted share's hash is
    /// compared with every stored hash in constant time, so timing tells nothing about near misses.
    pub fn identify(&self, share: &KeyShare) -> Result<usize, ShamirError> {
        let (hashes, _) = self.parsed()?;
        let digest = share.hash();
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, stored) in hashes.iter().enumerate() {
            let hit = digest.ct_eq(stored);
            // At most 255 hashes (checked by `parsed`), so the index fits.
            index.conditional_assign(&(i as u32), hit);
            found |= hit;
        }
        if bool::from(found) {
            Ok(index as usize)
        } else {
            Err(ShamirError::UnknownShare)
        }
    }

    /// Rebuilds the unseal key from the shares collected in `set` and opens the master key.
    pub fn open(&self, set: &ShareSet) -> Result<MasterKey, ShamirError> {
        let (_, sealed) = self.parsed()?;
        if !set.belongs_to(self) {
            // Shares collected against another configuration were never checked against this one.
            return Err(ShamirError::NotEnoughShares { have: 0, need: self.threshold as usize });
        }
        let need = self.threshold as usize;
        if set.accepted.len() < need {
            return Err(ShamirError::NotEnoughShares { have: set.accepted.len(), need });
        }
        let shares = set.accepted.iter().take(need).map(|(_, s)| s.to_blahaj()).collect::<Result<Vec<_>, _>>()?;
        let threshold = u8::try_from(self.threshold).map_err(|_| ShamirError::MalformedConfig)?;
        let unseal_key =
            Zeroizing::new(blahaj::Sharks(threshold).recover(&shares).map_err(|_| ShamirError::WrongUnsealKey)?);
        let unseal_key: Zeroizing<[u8; KEY_LEN]> =
            Zeroizing::new(unseal_key.as_slice().try_into().map_err(|_| ShamirError::WrongUnsealKey)?);
        open_master_key(&unseal_key, &sealed)
    }

    /// New shares for the same master key: opens it with the old shares in `set`, then seals it under a
    /// fresh unseal key split `shares`/`threshold`. The old shares do not open the new configuration.
    pub fn rekey(
        &self,
        rng: &mut (impl RngCore + CryptoRng),
        set: &ShareSet,
        shares: u32,
        threshold: u32,
    ) -> Result<(SealConfig, Vec<KeyShare>), ShamirError> {
        check_share_parameters(shares, threshold)?;
        let master = self.open(set)?;
        SealConfig::create(rng, &master, shares, threshold)
    }

    /// Identifies the configuration: a set of shares collected against it is valid only for it.
    fn fingerprint(&self) -> [u8; HASH_LEN] {
        let mut h = Sha256::new();
        h.update([self.format]);
        h.update(self.shares.to_be_bytes());
        h.update(self.threshold.to_be_bytes());
        for hash in &self.share_hashes {
            h.update((hash.len() as u64).to_be_bytes());
            h.update(hash.as_bytes());
        }
        h.update(self.sealed_master_key.as_bytes());
        h.finalize().into()
    }
}

/// The shares submitted so far in one unseal (or rekey) attempt, each checked on arrival.
#[derive(Default)]
pub struct ShareSet {
    /// Fingerprint of the configuration the shares were checked against.
    config: Option<[u8; HASH_LEN]>,
    /// (position in the configuration, share).
    accepted: Vec<(usize, KeyShare)>,
}

impl fmt::Debug for ShareSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareSet(<{} redacted shares>)", self.accepted.len())
    }
}

impl ShareSet {
    pub fn new() -> Self {
        ShareSet::default()
    }

    /// Adds a share after checking it against `config`. A share not in the configuration, or one
    /// already in the set, is refused and not counted. A set belongs to one configuration: adding
    /// against another one (the seal was rekeyed meanwhile) starts the set over. Returns the number of
    /// shares now collected.
    pub fn add(&mut self, config: &SealConfig, share: KeyShare) -> Result<usize, ShamirError> {
        let fingerprint = config.fingerprint();
        if self.config != Some(fingerprint) {
            self.accepted.clear();
            self.config = Some(fingerprint);
        }
        let index = config.identify(&share)?;
        if self.accepted.iter().any(|(i, _)| *i == index) {
            return Err(ShamirError::DuplicateShare);
        }
        self.accepted.push((index, share));
        Ok(self.accepted.len())
    }

    /// How many valid shares have been collected (for the configuration last added against).
    pub fn len(&self) -> usize {
        self.accepted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty()
    }

    /// The number of shares collected against `config`: 0 if the set was filled against another one.
    pub fn progress(&self, config: &SealConfig) -> usize {
        if self.belongs_to(config) {
            self.accepted.len()
        } else {
            0
        }
    }

    /// Forgets every share (they are zeroized).
    pub fn clear(&mut self) {
        self.accepted.clear();
        self.config = None;
    }

    fn belongs_to(&self, config: &SealConfig) -> bool {
        self.config == Some(config.fingerprint())
    }
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

fn seal_master_key(
    rng: &mut (impl RngCore + CryptoRng),
    unseal_key: &[u8; KEY_LEN],
    master: &MasterKey,
) -> Result<Vec<u8>, ShamirError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut body = Zeroizing::new(*master.bytes());
    let tag = cipher(unseal_key)
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), SEALED_MASTER_KEY_AAD, body.as_mut())
        .map_err(|_| ShamirError::Encrypt)?;
    let mut out = Vec::with_capacity(SEALED_MASTER_KEY_LEN);
    out.push(SEAL_CONFIG_FORMAT);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(body.as_ref());
    out.extend_from_slice(&tag);
    Ok(out)
}

fn open_master_key(unseal_key: &[u8; KEY_LEN], sealed: &[u8]) -> Result<MasterKey, ShamirError> {
    if sealed.len() != SEALED_MASTER_KEY_LEN {
        return Err(ShamirError::MalformedConfig);
    }
    if sealed[0] != SEAL_CONFIG_FORMAT {
        return Err(ShamirError::UnknownFormat(sealed[0]));
    }
    let nonce = &sealed[1..1 + NONCE_LEN];
    let body_end = 1 + NONCE_LEN + KEY_LEN;
    let mut body = Zeroizing::new([0u8; KEY_LEN]);
    body.copy_from_slice(&sealed[1 + NONCE_LEN..body_end]);
    let tag = Tag::from_slice(&sealed[body_end..]);
    cipher(unseal_key)
        .decrypt_in_place_detached(Nonce::from_slice(nonce), SEALED_MASTER_KEY_AAD, body.as_mut(), tag)
        .map_err(|_| ShamirError::WrongUnsealKey)?;
    MasterKey::from_slice(body.as_ref()).map_err(|_| ShamirError::WrongUnsealKey)
}
