use std::fmt;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use rand::{CryptoRng, RngCore};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::kek::{cipher, Kek, FORMAT_MASTER_KEK, NONCE_LEN, TAG_LEN};
use crate::{CryptoError, MasterKey, SecretBytes, KEY_LEN};

const FORMAT_V1: u8 = FORMAT_MASTER_KEK;
const KEK_ID_V1: u32 = 1;

/// Domain separation for everything derived from the master key.
const HKDF_SALT: &[u8] = b"coffer master key derivation v1";
const KEK_INFO: &[u8] = b"coffer kek v1";
const KEY_CHECK_INFO: &[u8] = b"coffer key check v1";
/// Prefix of every [`Keyring::derive_subkey`] info string, so no purpose can name the KEK's info.
const SUBKEY_INFO_PREFIX: &[u8] = b"coffer subkey v1 ";
const KEY_CHECK_PLAINTEXT: &[u8] = b"coffer master key check";
const KEY_CHECK_LEN: usize = 1 + NONCE_LEN + KEY_CHECK_PLAINTEXT.len() + TAG_LEN;

/// HKDF-SHA256 of the master key under Coffer's fixed salt; `info` is given in parts so callers need
/// not allocate to prefix it.
fn derive(master: &[u8; KEY_LEN], info: &[&[u8]]) -> Zeroizing<[u8; KEY_LEN]> {
    let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), master);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    // Cannot fail: 32 bytes is far below HKDF-SHA256's 8,160-byte output limit.
    let _ = hk.expand_multi_info(info, out.as_mut());
    out
}

/// Keys derived from the master key, and the envelope operations that use them.
///
/// Built once at start-up and shared (it is `Send + Sync`): the KEK's AES key schedule and GHASH key
/// are computed here, not on every [`open`](Keyring::open).
pub struct Keyring {
    kek: Kek,
    key_check: Aes256Gcm,
    /// Kept (zeroized on drop) only to derive purpose subkeys on request.
    master: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

impl Keyring {
    pub fn new(master: &MasterKey) -> Self {
        let master = master.bytes();
        Keyring {
            kek: Kek::new(&derive(master, &[KEK_INFO]), FORMAT_V1, KEK_ID_V1),
            key_check: cipher(&derive(master, &[KEY_CHECK_INFO])),
            master: Zeroizing::new(*master),
        }
    }

    /// A 52-byte blob proving which master key protects a data set; stored beside the data at
    /// initialization and checked with [`verify_key_check`](Self::verify_key_check) at every start.
    pub fn key_check(&self, rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
        let mut out = Vec::with_capacity(KEY_CHECK_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(KEY_CHECK_PLAINTEXT);
        let body = &mut out[1 + NONCE_LEN..];
        // AES-GCM only refuses inputs of gigabytes; for a 23-byte constant this cannot fail. Should it
        // ever, return a blob that fails closed (verification reports it malformed) instead of panicking.
        match self.key_check.encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", body) {
            Ok(tag) => out.extend_from_slice(&tag),
            Err(_) => out.truncate(1 + NONCE_LEN),
        }
        out
    }

    /// `Ok(())` when `blob` came from [`key_check`](Self::key_check) under this master key;
    /// `Err(WrongMasterKey)` when it came from another master key (or was altered);
    /// `Err(MalformedEnvelope)` / `Err(UnknownFormat)` when it is not a key-check blob at all.
    pub fn verify_key_check(&self, blob: &[u8]) -> Result<(), CryptoError> {
        let (&format, rest) = blob.split_first().ok_or(CryptoError::MalformedEnvelope)?;
        if format != FORMAT_V1 {
            return Err(CryptoError::UnknownFormat(format));
        }
        if blob.len() != KEY_CHECK_LEN {
            return Err(CryptoError::MalformedEnvelope);
        }
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(KEY_CHECK_PLAINTEXT.len());
        let mut buf = [0u8; KEY_CHECK_PLAINTEXT.len()];
        buf.copy_from_slice(body);
        self.key_check
            .decrypt_in_place_detached(Nonce::from_slice(nonce), b"", &mut buf, Tag::from_slice(tag))
            .map_err(|_| CryptoError::WrongMasterKey)?;
        // The tag already authenticates the contents; comparing the constant too costs nothing.
        if bool::from(buf.as_slice().ct_eq(KEY_CHECK_PLAINTEXT)) {
            Ok(())
        } else {
            Err(CryptoError::WrongMasterKey)
        }
    }

    /// Envelope-encrypts `plaintext` bound to `aad` (the record identity) under a fresh data key and
    /// the master-key-derived KEK (format 1); see the crate docs for the layout. Fails only for values
    /// beyond AES-GCM's limits.
    pub fn seal(
        &self,
        rng: &mut (impl RngCore + CryptoRng),
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.kek.seal(rng, plaintext, aad)
    }

    /// Opens a blob made by [`seal`](Self::seal) with the same `aad`.
    ///
    /// Hot path: one allocation (the returned value); the data key stays on the stack and is zeroized.
    /// Any altered bit, truncation, other `aad` or other master key is an error, never a panic.
    pub fn open(&self, blob: &[u8], aad: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.kek.open(blob, aad)
    }

    /// The master-key-derived KEK, for re-wrapping format-1 envelopes under a KMS key.
    pub fn master_kek(&self) -> &Kek {
        &self.kek
    }

    /// An independent 32-byte key for another purpose (e.g. `"coffer audit signing v1"`,
    /// `"coffer fingerprint v1"`): HKDF-SHA256 of the master key with info
    /// `"coffer subkey v1 " ++ purpose`. Deterministic per master key and purpose.
    pub fn derive_subkey(&self, purpose: &str) -> SecretBytes {
        let key = derive(&self.master, &[SUBKEY_INFO_PREFIX, purpose.as_bytes()]);
        SecretBytes::new(key.to_vec())
    }
}
