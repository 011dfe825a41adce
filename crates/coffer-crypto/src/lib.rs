//! Coffer's cryptography: the master key, the keyring derived from it, envelope encryption of values,
//! and [`SecretBytes`], the one type secret material travels in.
//!
//! Invariants:
//! - No I/O and no clock; randomness always comes in as a parameter.
//! - Plaintext and key material live in zeroizing buffers and never appear in `Debug` or errors.
//! - Only well-kept RustCrypto primitives: AES-256-GCM, HKDF-SHA256, Argon2id.
//! - Every sealed blob starts with a format byte, so the format can evolve.
//!
//! Envelope layout (format 1), all lengths fixed except the last field:
//!
//! ```text
//! 0x01 | kek id (u32 BE) | wrap nonce (12) | wrapped data key (32 + 16 tag) | data nonce (12) | ciphertext + tag (16)
//! ```
//!
//! The data key is fresh for every seal. The caller's associated data (the record identity) is bound to
//! both the wrapped key and the ciphertext, so a blob moved to another record does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

const FORMAT_V1: u8 = 0x01;
const KEK_ID_V1: u32 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
const WRAPPED_KEY_LEN: usize = KEY_LEN + TAG_LEN;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN + WRAPPED_KEY_LEN + NONCE_LEN;

/// Domain separation for everything derived from the master key.
const HKDF_SALT: &[u8] = b"coffer master key derivation v1";
const KEK_INFO: &str = "coffer kek v1";
const KEY_CHECK_INFO: &str = "coffer key check v1";
const KEY_CHECK_PLAINTEXT: &[u8] = b"coffer master key check";

/// What can go wrong. Messages are lowercase and never contain key material or plaintext.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The data was protected by another master key.
    #[error("the master key does not match this data")]
    WrongMasterKey,
    /// Authentication failed: the blob was altered, truncated, or bound to another record.
    #[error("decryption failed")]
    Decrypt,
    /// Encryption failed (never expected with valid keys).
    #[error("encryption failed")]
    Encrypt,
    /// The blob is not a sealed envelope of a known format.
    #[error("malformed envelope")]
    MalformedEnvelope,
    /// A key of the wrong length was given.
    #[error("a key must be exactly 32 bytes")]
    BadKeyLength,
    /// Key text is not valid base64.
    #[error("key text is not valid base64")]
    BadBase64,
    /// The passphrase key derivation failed (bad parameters).
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// Bytes expected to be UTF-8 text are not.
    #[error("value is not valid utf-8")]
    NotUtf8,
}

/// Secret material: a value, a password, a key. Zeroized on drop, redacted in `Debug`, compared in
/// constant time, readable only through [`expose`](SecretBytes::expose).
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn expose_str(&self) -> Result<&str, CryptoError> {
        std::str::from_utf8(&self.0).map_err(|_| CryptoError::NotUtf8)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        SecretBytes::new(v)
    }
}

impl From<String> for SecretBytes {
    /// Moves the string's buffer; nothing is copied.
    fn from(s: String) -> Self {
        SecretBytes::new(s.into_bytes())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl Eq for SecretBytes {}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes(<redacted {} bytes>)", self.0.len())
    }
}

/// The 256-bit master key from which every other key is derived.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(key.as_mut());
        MasterKey(key)
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        MasterKey(Zeroizing::new(bytes))
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::BadKeyLength)?;
        Ok(MasterKey(Zeroizing::new(arr)))
    }

    /// Parses the `COFFER_MASTER_KEY` / key-file form: standard base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let raw = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| CryptoError::BadBase64)?);
        Self::from_slice(&raw)
    }

    /// The key as base64 text, for writing the key file.
    pub fn to_base64(&self) -> SecretBytes {
        SecretBytes::from(STANDARD.encode(self.0.as_ref()))
    }

    /// Stretches a passphrase with Argon2id under the stored parameters.
    pub fn from_passphrase(passphrase: &[u8], params: &PassphraseParams) -> Result<Self, CryptoError> {
        if params.v != 1 {
            return Err(CryptoError::Kdf(format!("unknown parameter version {}", params.v)));
        }
        let salt = STANDARD.decode(&params.salt_b64).map_err(|_| CryptoError::BadBase64)?;
        let argon_params = argon2::Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(KEY_LEN))
            .map_err(|e| CryptoError::Kdf(e.to_string()))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon_params);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        argon.hash_password_into(passphrase, &salt, key.as_mut()).map_err(|e| CryptoError::Kdf(e.to_string()))?;
        Ok(MasterKey(key))
    }
}

/// Argon2id salt and costs, stored beside the data so the same passphrase derives the same key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PassphraseParams {
    pub v: u8,
    pub salt_b64: String,
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl PassphraseParams {
    /// OWASP's recommended Argon2id costs (19 MiB, 2 passes, 1 lane) and a 16-byte random salt.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        PassphraseParams { v: 1, salt_b64: STANDARD.encode(salt), m_cost_kib: 19_456, t_cost: 2, p_cost: 1 }
    }
}

fn hkdf_expand(master: &[u8], info: &str) -> Zeroizing<[u8; KEY_LEN]> {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(HKDF_SALT), master);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = hk.expand(info.as_bytes(), out.as_mut());
    out
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// Keys derived from the master key, and the envelope operations that use them.
pub struct Keyring {
    kek: Aes256Gcm,
    key_check: Aes256Gcm,
    /// Kept (zeroized on drop) only to derive purpose subkeys.
    master: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

impl Keyring {
    pub fn new(master: &MasterKey) -> Self {
        Keyring {
            kek: cipher(&hkdf_expand(master.0.as_ref(), KEK_INFO)),
            key_check: cipher(&hkdf_expand(master.0.as_ref(), KEY_CHECK_INFO)),
            master: Zeroizing::new(*master.0),
        }
    }

    /// A blob proving which master key protects a data set; stored at initialization.
    pub fn key_check(&self, rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = vec![FORMAT_V1];
        out.extend_from_slice(&nonce);
        // Encrypting a constant under a fresh nonce cannot fail with a valid key.
        let sealed = self.key_check.encrypt(Nonce::from_slice(&nonce), KEY_CHECK_PLAINTEXT).unwrap_or_default();
        out.extend_from_slice(&sealed);
        out
    }

    /// `Err(WrongMasterKey)` when `blob` came from another master key.
    pub fn verify_key_check(&self, blob: &[u8]) -> Result<(), CryptoError> {
        if blob.len() < 1 + NONCE_LEN + TAG_LEN || blob[0] != FORMAT_V1 {
            return Err(CryptoError::MalformedEnvelope);
        }
        let plain = self
            .key_check
            .decrypt(Nonce::from_slice(&blob[1..1 + NONCE_LEN]), &blob[1 + NONCE_LEN..])
            .map_err(|_| CryptoError::WrongMasterKey)?;
        if bool::from(plain.as_slice().ct_eq(KEY_CHECK_PLAINTEXT)) {
            Ok(())
        } else {
            Err(CryptoError::WrongMasterKey)
        }
    }

    /// Envelope-encrypts `plaintext` bound to `aad`. See the crate docs for the layout.
    pub fn seal(
        &self,
        rng: &mut (impl RngCore + CryptoRng),
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut data_key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(data_key.as_mut());
        let mut wrap_nonce = [0u8; NONCE_LEN];
        let mut data_nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut wrap_nonce);
        rng.fill_bytes(&mut data_nonce);

        let wrapped = self
            .kek
            .encrypt(Nonce::from_slice(&wrap_nonce), Payload { msg: data_key.as_ref(), aad })
            .map_err(|_| CryptoError::Encrypt)?;
        let ciphertext = cipher(&data_key)
            .encrypt(Nonce::from_slice(&data_nonce), Payload { msg: plaintext, aad })
            .map_err(|_| CryptoError::Encrypt)?;

        let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&KEK_ID_V1.to_be_bytes());
        out.extend_from_slice(&wrap_nonce);
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&data_nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens a blob made by [`seal`](Self::seal) with the same `aad`.
    pub fn open(&self, blob: &[u8], aad: &[u8]) -> Result<SecretBytes, CryptoError> {
        if blob.len() < HEADER_LEN + TAG_LEN || blob[0] != FORMAT_V1 {
            return Err(CryptoError::MalformedEnvelope);
        }
        let kek_id = u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]);
        if kek_id != KEK_ID_V1 {
            return Err(CryptoError::MalformedEnvelope);
        }
        let (wrap_nonce, rest) = blob[5..].split_at(NONCE_LEN);
        let (wrapped, rest) = rest.split_at(WRAPPED_KEY_LEN);
        let (data_nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let data_key = Zeroizing::new(
            self.kek
                .decrypt(Nonce::from_slice(wrap_nonce), Payload { msg: wrapped, aad })
                .map_err(|_| CryptoError::Decrypt)?,
        );
        let key: &[u8; KEY_LEN] = data_key.as_slice().try_into().map_err(|_| CryptoError::Decrypt)?;
        let plain = cipher(key)
            .decrypt(Nonce::from_slice(data_nonce), Payload { msg: ciphertext, aad })
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(SecretBytes::new(plain))
    }

    /// An independent 32-byte key for another purpose (audit signing, fingerprints...).
    pub fn derive_subkey(&self, purpose: &str) -> SecretBytes {
        let mut k = hkdf_expand(self.master.as_ref(), &format!("coffer subkey v1 {purpose}"));
        let out = SecretBytes::new(k.to_vec());
        k.zeroize();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn keyring(byte: u8) -> Keyring {
        Keyring::new(&MasterKey::from_bytes([byte; 32]))
    }

    #[test]
    fn seal_open_round_trips_empty_large_and_binary() {
        let k = keyring(1);
        for value in [vec![], b"s3cr3t".to_vec(), vec![0xFFu8; 65_536], (0..=255u8).collect()] {
            let blob = k.seal(&mut OsRng, &value, b"arn|v1").unwrap();
            assert_eq!(k.open(&blob, b"arn|v1").unwrap().expose(), value.as_slice());
        }
    }

    #[test]
    fn aad_binds_the_blob_to_its_record() {
        let k = keyring(1);
        let blob = k.seal(&mut OsRng, b"value", b"arn-a|v1").unwrap();
        assert_eq!(k.open(&blob, b"arn-b|v1").unwrap_err(), CryptoError::Decrypt);
        assert_eq!(k.open(&blob, b"").unwrap_err(), CryptoError::Decrypt);
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let k = keyring(1);
        let blob = k.seal(&mut OsRng, b"tamper me", b"aad").unwrap();
        for i in 0..blob.len() {
            let mut t = blob.clone();
            t[i] ^= 0x01;
            assert!(k.open(&t, b"aad").is_err(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn truncation_fails_without_panicking() {
        let k = keyring(1);
        let blob = k.seal(&mut OsRng, b"truncate me", b"aad").unwrap();
        for len in 0..blob.len() {
            assert!(k.open(&blob[..len], b"aad").is_err());
        }
    }

    #[test]
    fn wrong_master_key_fails_open_and_key_check() {
        let (a, b) = (keyring(1), keyring(2));
        let blob = a.seal(&mut OsRng, b"v", b"aad").unwrap();
        assert_eq!(b.open(&blob, b"aad").unwrap_err(), CryptoError::Decrypt);
        let check = a.key_check(&mut OsRng);
        assert!(a.verify_key_check(&check).is_ok());
        assert_eq!(b.verify_key_check(&check).unwrap_err(), CryptoError::WrongMasterKey);
        assert_eq!(a.verify_key_check(&[1, 2, 3]).unwrap_err(), CryptoError::MalformedEnvelope);
    }

    #[test]
    fn each_seal_uses_fresh_keys_and_nonces() {
        let k = keyring(1);
        let x = k.seal(&mut OsRng, b"same", b"aad").unwrap();
        let y = k.seal(&mut OsRng, b"same", b"aad").unwrap();
        assert_ne!(x, y);
        assert_ne!(x[5..17], y[5..17]);
    }

    #[test]
    fn base64_key_parsing() {
        let key = MasterKey::generate(&mut OsRng);
        let text = key.to_base64();
        let again = MasterKey::from_base64(text.expose_str().unwrap()).unwrap();
        let (k1, k2) = (Keyring::new(&key), Keyring::new(&again));
        let blob = k1.seal(&mut OsRng, b"v", b"a").unwrap();
        assert!(k2.open(&blob, b"a").is_ok());
        assert_eq!(MasterKey::from_base64("AAAA").unwrap_err(), CryptoError::BadKeyLength);
        assert_eq!(MasterKey::from_base64("not base64!").unwrap_err(), CryptoError::BadBase64);
        assert_eq!(MasterKey::from_slice(&[0u8; 31]).unwrap_err(), CryptoError::BadKeyLength);
    }

    fn small_params(salt: u8) -> PassphraseParams {
        PassphraseParams { v: 1, salt_b64: STANDARD.encode([salt; 16]), m_cost_kib: 1024, t_cost: 1, p_cost: 1 }
    }

    #[test]
    fn passphrase_derivation_is_deterministic_and_salted() {
        let seal_with = |pass: &[u8], salt: u8| {
            let k = Keyring::new(&MasterKey::from_passphrase(pass, &small_params(salt)).unwrap());
            k.key_check(&mut OsRng)
        };
        let reference = Keyring::new(&MasterKey::from_passphrase(b"horse", &small_params(1)).unwrap());
        assert!(reference.verify_key_check(&seal_with(b"horse", 1)).is_ok());
        assert!(reference.verify_key_check(&seal_with(b"horse", 2)).is_err());
        assert!(reference.verify_key_check(&seal_with(b"battery", 1)).is_err());
        let p = PassphraseParams::generate(&mut OsRng);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<PassphraseParams>(&json).unwrap(), p);
        assert_eq!((p.m_cost_kib, p.t_cost, p.p_cost), (19_456, 2, 1));
    }

    #[test]
    fn debug_output_never_shows_key_material() {
        let key = MasterKey::from_bytes([0xAB; 32]);
        let b64 = key.to_base64();
        let secret = SecretBytes::from("hunter2-canary".to_string());
        let dbg = format!("{key:?} {secret:?} {:?}", Keyring::new(&key));
        assert!(!dbg.contains("abab") && !dbg.contains("ABAB") && !dbg.contains(b64.expose_str().unwrap()));
        assert!(!dbg.contains("hunter2"));
    }

    #[test]
    fn secret_bytes_equality() {
        assert_eq!(SecretBytes::from("a".to_string()), SecretBytes::new(b"a".to_vec()));
        assert_ne!(SecretBytes::from("a".to_string()), SecretBytes::from("ab".to_string()));
    }

    #[test]
    fn subkeys_differ_per_purpose_and_master() {
        let (a, b) = (keyring(1), keyring(2));
        assert_ne!(a.derive_subkey("audit"), a.derive_subkey("fingerprint"));
        assert_ne!(a.derive_subkey("audit"), b.derive_subkey("audit"));
        assert_eq!(a.derive_subkey("audit"), keyring(1).derive_subkey("audit"));
        assert_eq!(a.derive_subkey("audit").len(), 32);
    }
}
