use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use rand::{CryptoRng, RngCore};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::{CryptoError, MasterKey, SecretBytes, KEY_LEN};

const FORMAT_V1: u8 = 0x01;
const KEK_ID_V1: u32 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const WRAPPED_KEY_LEN: usize = KEY_LEN + TAG_LEN;

// Field offsets of a format-1 envelope (see the table in the crate docs).
const KEK_ID_AT: usize = 1;
const WRAP_NONCE_AT: usize = KEK_ID_AT + 4;
const WRAPPED_KEY_AT: usize = WRAP_NONCE_AT + NONCE_LEN;
const DATA_NONCE_AT: usize = WRAPPED_KEY_AT + WRAPPED_KEY_LEN;
const CIPHERTEXT_AT: usize = DATA_NONCE_AT + NONCE_LEN;

/// Bytes a format-1 envelope adds to the value it seals (header, wrapped key, nonces, tag).
pub const ENVELOPE_OVERHEAD: usize = CIPHERTEXT_AT + TAG_LEN;

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

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// Keys derived from the master key, and the envelope operations that use them.
///
/// Built once at start-up and shared (it is `Send + Sync`): the KEK's AES key schedule and GHASH key
/// are computed here, not on every [`open`](Keyring::open).
pub struct Keyring {
    kek: Aes256Gcm,
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
            kek: cipher(&derive(master, &[KEK_INFO])),
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

    /// Envelope-encrypts `plaintext` bound to `aad` (the record identity) under a fresh data key;
    /// see the crate docs for the layout. Fails only for values beyond AES-GCM's limits.
    pub fn seal(
        &self,
        rng: &mut (impl RngCore + CryptoRng),
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        // Draw order (data key, wrap nonce, data nonce) is part of the golden-vector tests.
        let mut data_key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(data_key.as_mut());
        let mut wrap_nonce = [0u8; NONCE_LEN];
        let mut data_nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut wrap_nonce);
        rng.fill_bytes(&mut data_nonce);

        // Build the envelope in one allocation and encrypt both fields in place, so neither the data
        // key nor the plaintext is copied anywhere but the output buffer.
        let mut out = Vec::with_capacity(ENVELOPE_OVERHEAD + plaintext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&KEK_ID_V1.to_be_bytes());
        out.extend_from_slice(&wrap_nonce);
        out.extend_from_slice(data_key.as_ref());
        let wrap_tag = self
            .kek
            .encrypt_in_place_detached(Nonce::from_slice(&wrap_nonce), aad, &mut out[WRAPPED_KEY_AT..])
            .map_err(|_| {
                out.zeroize();
                CryptoError::Encrypt
            })?;
        out.extend_from_slice(&wrap_tag);
        out.extend_from_slice(&data_nonce);
        out.extend_from_slice(plaintext);
        let data_tag = cipher(&data_key)
            .encrypt_in_place_detached(Nonce::from_slice(&data_nonce), aad, &mut out[CIPHERTEXT_AT..])
            .map_err(|_| {
                // The buffer holds plaintext when encryption refuses it.
                out.zeroize();
                CryptoError::Encrypt
            })?;
        out.extend_from_slice(&data_tag);
        Ok(out)
    }

    /// Opens a blob made by [`seal`](Self::seal) with the same `aad`.
    ///
    /// Hot path: one allocation (the returned value); the data key stays on the stack and is zeroized.
    /// Any altered bit, truncation, other `aad` or other master key is an error, never a panic.
    pub fn open(&self, blob: &[u8], aad: &[u8]) -> Result<SecretBytes, CryptoError> {
        let (&format, _) = blob.split_first().ok_or(CryptoError::MalformedEnvelope)?;
        if format != FORMAT_V1 {
            return Err(CryptoError::UnknownFormat(format));
        }
        if blob.len() < ENVELOPE_OVERHEAD {
            return Err(CryptoError::MalformedEnvelope);
        }
        let mut kek_id = [0u8; 4];
        kek_id.copy_from_slice(&blob[KEK_ID_AT..WRAP_NONCE_AT]);
        let kek_id = u32::from_be_bytes(kek_id);
        // One KEK today; rotation will look the id up among several.
        if kek_id != KEK_ID_V1 {
            return Err(CryptoError::UnknownKek(kek_id));
        }
        let wrap_nonce = &blob[WRAP_NONCE_AT..WRAPPED_KEY_AT];
        let (wrapped_key, wrap_tag) = blob[WRAPPED_KEY_AT..DATA_NONCE_AT].split_at(KEY_LEN);
        let data_nonce = &blob[DATA_NONCE_AT..CIPHERTEXT_AT];
        let (ciphertext, data_tag) = blob[CIPHERTEXT_AT..].split_at(blob.len() - CIPHERTEXT_AT - TAG_LEN);

        let mut data_key = Zeroizing::new([0u8; KEY_LEN]);
        data_key.copy_from_slice(wrapped_key);
        self.kek
            .decrypt_in_place_detached(Nonce::from_slice(wrap_nonce), aad, data_key.as_mut(), Tag::from_slice(wrap_tag))
            .map_err(|_| CryptoError::Decrypt)?;

        // aes-gcm checks the tag before decrypting, so on failure the buffer still holds ciphertext;
        // zeroizing wrappers are for the success path.
        let mut value = SecretBytes::new(ciphertext.to_vec());
        cipher(&data_key)
            .decrypt_in_place_detached(
                Nonce::from_slice(data_nonce),
                aad,
                value.expose_mut(),
                Tag::from_slice(data_tag),
            )
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(value)
    }

    /// An independent 32-byte key for another purpose (e.g. `"coffer audit signing v1"`,
    /// `"coffer fingerprint v1"`): HKDF-SHA256 of the master key with info
    /// `"coffer subkey v1 " ++ purpose`. Deterministic per master key and purpose.
    pub fn derive_subkey(&self, purpose: &str) -> SecretBytes {
        let key = derive(&self.master, &[SUBKEY_INFO_PREFIX, purpose.as_bytes()]);
        SecretBytes::new(key.to_vec())
    }
}
