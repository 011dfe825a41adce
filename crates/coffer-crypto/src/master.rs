use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{CryptoError, SecretBytes, KEY_LEN};

/// The 256-bit master key from which every other key is derived (see the crate docs).
///
/// Zeroized on drop and redacted in `Debug`. Deliberately not `Clone`: a second copy of the root key
/// should be a visible [`duplicate`](MasterKey::duplicate) call.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Argon2 version 0x13 (the RFC 9106 one); fixed here because changing it changes every derived key.
const ARGON2_VERSION: argon2::Version = argon2::Version::V0x13;
/// Sanity ceilings far above any recommended setting. Parameters are read back from storage, and a
/// corrupted or hostile file must fail fast rather than abort the process on a huge allocation
/// (4 GiB) or spin for days.
const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 64;
const SALT_LEN: usize = 16;

impl MasterKey {
    /// A fresh random key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(key.as_mut());
        MasterKey(key)
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        MasterKey(Zeroizing::new(bytes))
    }

    /// `Err(BadKeyLength)` unless `bytes` is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::BadKeyLength)?;
        Ok(MasterKey(Zeroizing::new(arr)))
    }

    /// Parses the `COFFER_MASTER_KEY` / key-file form: standard base64 (with padding) of exactly 32
    /// bytes; surrounding whitespace, such as a trailing newline in the file, is ignored.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let raw = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| CryptoError::BadBase64)?);
        Self::from_slice(&raw)
    }

    /// The key as standard base64 text (44 characters), for writing the key file.
    pub fn to_base64(&self) -> SecretBytes {
        SecretBytes::from(STANDARD.encode(self.0.as_ref()))
    }

    /// A second, independently zeroized copy of the key.
    pub fn duplicate(&self) -> Self {
        MasterKey(Zeroizing::new(*self.0))
    }

    /// Stretches a passphrase with Argon2id under the stored parameters. Deterministic: the same
    /// passphrase and parameters always give the same key.
    pub fn from_passphrase(passphrase: &[u8], params: &PassphraseParams) -> Result<Self, CryptoError> {
        if params.v != PassphraseParams::VERSION {
            return Err(CryptoError::Kdf(format!("unsupported passphrase parameters version {}", params.v)));
        }
        if params.m_cost_kib > MAX_M_COST_KIB || params.t_cost > MAX_T_COST || params.p_cost > MAX_P_COST {
            return Err(CryptoError::Kdf("passphrase parameters exceed the supported costs".to_string()));
        }
        let salt = STANDARD.decode(&params.salt_b64).map_err(|_| CryptoError::BadBase64)?;
        let argon_params = argon2::Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(KEY_LEN))
            .map_err(|e| CryptoError::Kdf(e.to_string()))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, ARGON2_VERSION, argon_params);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        // argon2's errors describe lengths and costs only, never the passphrase.
        argon.hash_password_into(passphrase, &salt, key.as_mut()).map_err(|e| CryptoError::Kdf(e.to_string()))?;
        Ok(MasterKey(key))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Argon2id salt and costs, stored beside the data so the same passphrase derives the same key.
/// Versioned: `v` is 1; other versions are refused rather than guessed at.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PassphraseParams {
    pub v: u8,
    /// Standard base64 of the salt (16 random bytes when generated here).
    pub salt_b64: String,
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl PassphraseParams {
    pub const VERSION: u8 = 1;

    /// OWASP's recommended Argon2id costs (m = 19 MiB, t = 2, p = 1) and a 16-byte random salt.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        PassphraseParams { v: Self::VERSION, salt_b64: STANDARD.encode(salt), m_cost_kib: 19_456, t_cost: 2, p_cost: 1 }
    }
}
