//! Key-encryption keys and the envelope operations under them.
//!
//! A [`Kek`] wraps the per-value data keys of envelopes. There are two kinds, told apart by the
//! envelope's format byte: the KEK derived from the master key (format 1, what [`crate::Keyring`] seals
//! with) and a KMS key's material version (format 2, id = the material version). Both share one layout
//! (see the crate docs), so [`Kek::rewrap`] can move an envelope from one KEK to another by re-wrapping
//! its 32-byte data key alone: the value's ciphertext is copied, never decrypted.
//!
//! A KEK also produces the ciphertext blobs of the KMS `Encrypt` API (format 3): the value encrypted
//! directly under the key material, with the key id and material version in a clear header that is
//! authenticated together with the caller's encryption context.

use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::{CryptoError, SecretBytes, KEY_LEN};

/// Envelope whose data key is wrapped by the master-key-derived KEK.
pub const FORMAT_MASTER_KEK: u8 = 0x01;
/// Envelope whose data key is wrapped by a KMS key's material; the KEK id is the material version.
pub const FORMAT_KMS_KEY: u8 = 0x02;
/// A KMS `Encrypt` ciphertext blob.
pub const FORMAT_KMS_CIPHERTEXT: u8 = 0x03;

pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;
const WRAPPED_KEY_LEN: usize = KEY_LEN + TAG_LEN;

// Field lengths of an envelope (formats 1 and 2; see the tables in the crate docs). The header is
// `format | [key id (16), format 2 only] | KEK id (4)`; everything after it has the same layout.
const MASTER_HEADER_LEN: usize = 1 + 4;
const KMS_ENVELOPE_HEADER_LEN: usize = 1 + KMS_KEY_ID_LEN + 4;
/// From the end of the header: wrap nonce, wrapped data key, data nonce, then the value's ciphertext.
const WRAPPED_KEY_OFFSET: usize = NONCE_LEN;
const DATA_NONCE_OFFSET: usize = WRAPPED_KEY_OFFSET + WRAPPED_KEY_LEN;
const CIPHERTEXT_OFFSET: usize = DATA_NONCE_OFFSET + NONCE_LEN;

/// Bytes a format-1 envelope adds to the value it seals (header, wrapped key, nonces, tag).
pub const ENVELOPE_OVERHEAD: usize = MASTER_HEADER_LEN + CIPHERTEXT_OFFSET + TAG_LEN;
/// Bytes a format-2 envelope (under a KMS key) adds to the value it seals.
pub const KMS_ENVELOPE_OVERHEAD: usize = KMS_ENVELOPE_HEADER_LEN + CIPHERTEXT_OFFSET + TAG_LEN;

fn header_len(format: u8) -> Result<usize, CryptoError> {
    match format {
        FORMAT_MASTER_KEK => Ok(MASTER_HEADER_LEN),
        FORMAT_KMS_KEY => Ok(KMS_ENVELOPE_HEADER_LEN),
        other => Err(CryptoError::UnknownFormat(other)),
    }
}

/// Length of a KMS key id in a ciphertext blob (the UUID's 16 bytes).
pub const KMS_KEY_ID_LEN: usize = 16;
// Layout of a format-3 blob: format | key id (16) | material version (4) | nonce (12) | ciphertext | tag.
const KMS_HEADER_LEN: usize = 1 + KMS_KEY_ID_LEN + 4;
/// Bytes a KMS ciphertext blob adds to its plaintext.
pub const KMS_CIPHERTEXT_OVERHEAD: usize = KMS_HEADER_LEN + NONCE_LEN + TAG_LEN;

pub(crate) fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// Which KEK an envelope names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeKek {
    /// The master-key-derived KEK (format 1).
    Master,
    /// A KMS key (its UUID bytes) and the material version that wrapped the data key (format 2).
    KmsKey { key_id: [u8; KMS_KEY_ID_LEN], version: u32 },
}

/// Reads which KEK wrapped an envelope, without opening it (the header is authenticated only when the
/// envelope is opened).
pub fn envelope_kek(blob: &[u8]) -> Result<EnvelopeKek, CryptoError> {
    let (&format, _) = blob.split_first().ok_or(CryptoError::MalformedEnvelope)?;
    let header = header_len(format)?;
    if blob.len() < header + CIPHERTEXT_OFFSET + TAG_LEN {
        return Err(CryptoError::MalformedEnvelope);
    }
    match format {
        FORMAT_KMS_KEY => {
            let mut key_id = [0u8; KMS_KEY_ID_LEN];
            key_id.copy_from_slice(&blob[1..1 + KMS_KEY_ID_LEN]);
            Ok(EnvelopeKek::KmsKey { key_id, version: read_u32(&blob[1 + KMS_KEY_ID_LEN..header]) })
        }
        _ => Ok(EnvelopeKek::Master),
    }
}

/// The key id (UUID bytes) and material version a KMS ciphertext blob names, read from its clear
/// header. Not authenticated until [`Kek::decrypt_kms`] succeeds.
pub fn kms_ciphertext_key(blob: &[u8]) -> Result<([u8; KMS_KEY_ID_LEN], u32), CryptoError> {
    let (&format, _) = blob.split_first().ok_or(CryptoError::MalformedEnvelope)?;
    if format != FORMAT_KMS_CIPHERTEXT {
        return Err(CryptoError::UnknownFormat(format));
    }
    if blob.len() < KMS_CIPHERTEXT_OVERHEAD {
        return Err(CryptoError::MalformedEnvelope);
    }
    let mut key_id = [0u8; KMS_KEY_ID_LEN];
    key_id.copy_from_slice(&blob[1..1 + KMS_KEY_ID_LEN]);
    Ok((key_id, read_u32(&blob[1 + KMS_KEY_ID_LEN..KMS_HEADER_LEN])))
}

fn read_u32(bytes: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(b)
}

/// A key-encryption key: an AES-256-GCM key schedule plus the format byte and id it writes into the
/// envelopes it seals. Zeroized on drop (aes-gcm's `zeroize` feature).
pub struct Kek {
    cipher: Aes256Gcm,
    format: u8,
    /// The KMS key's UUID bytes (format 2); zeros and unused for the master KEK.
    key_id: [u8; KMS_KEY_ID_LEN],
    id: u32,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek(format {:#04x}, id {}, <redacted>)", self.format, self.id)
    }
}

impl Kek {
    pub(crate) fn new(key: &[u8; KEY_LEN], format: u8, id: u32) -> Self {
        Kek { cipher: cipher(key), format, key_id: [0; KMS_KEY_ID_LEN], id }
    }

    /// The header this KEK writes at the start of its envelopes.
    fn write_header(&self, out: &mut Vec<u8>) {
        out.push(self.format);
        if self.format == FORMAT_KMS_KEY {
            out.extend_from_slice(&self.key_id);
        }
        out.extend_from_slice(&self.id.to_be_bytes());
    }

    /// Appends the header, the wrap nonce and the data key wrapped under this KEK (in place, so the key
    /// is copied nowhere else) to `out`, which must be empty; returns the header's length.
    fn write_wrapped_key(
        &self,
        out: &mut Vec<u8>,
        data_key: &[u8; KEY_LEN],
        wrap_nonce: &[u8; NONCE_LEN],
        aad: &[u8],
    ) -> Result<usize, CryptoError> {
        self.write_header(out);
        let header = out.len();
        out.extend_from_slice(wrap_nonce);
        out.extend_from_slice(data_key);
        let wrap_tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(wrap_nonce), aad, &mut out[header + WRAPPED_KEY_OFFSET..])
            .map_err(|_| {
                out.zeroize();
                CryptoError::Encrypt
            })?;
        out.extend_from_slice(&wrap_tag);
        Ok(header)
    }

    /// Whether an envelope's header names this KEK; the header's length otherwise errors.
    fn check_header(&self, blob: &[u8]) -> Result<usize, CryptoError> {
        let (&format, _) = blob.split_first().ok_or(CryptoError::MalformedEnvelope)?;
        let header = header_len(format)?;
        if blob.len() < header + CIPHERTEXT_OFFSET + TAG_LEN {
            return Err(CryptoError::MalformedEnvelope);
        }
        let kek_id = read_u32(&blob[header - 4..header]);
        let same_key = format != FORMAT_KMS_KEY || blob[1..1 + KMS_KEY_ID_LEN] == self.key_id;
        if format != self.format || !same_key || kek_id != self.id {
            return Err(CryptoError::UnknownKek(kek_id));
        }
        Ok(header)
    }

    /// Fresh random key material for a KMS key (or a new material version on rotation).
    pub fn generate_material(rng: &mut (impl RngCore + CryptoRng)) -> SecretBytes {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(key.as_mut());
        SecretBytes::new(key.to_vec())
    }

    /// Version `version` of the material of the KMS key `key_id` (its UUID bytes) as a KEK: envelope
    /// format 2, which names both.
    pub fn from_material(
        material: &SecretBytes,
        key_id: [u8; KMS_KEY_ID_LEN],
        version: u32,
    ) -> Result<Self, CryptoError> {
        let key: &[u8; KEY_LEN] = material.expose().try_into().map_err(|_| CryptoError::BadKeyLength)?;
        Ok(Kek { cipher: cipher(key), format: FORMAT_KMS_KEY, key_id, id: version })
    }

    /// Envelope-encrypts `plaintext` bound to `aad` (the record identity) under a fresh data key.
    /// Fails only for values beyond AES-GCM's limits.
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
        let mut out = Vec::with_capacity(KMS_ENVELOPE_OVERHEAD + plaintext.len());
        let header = self.write_wrapped_key(&mut out, &data_key, &wrap_nonce, aad)?;
        out.extend_from_slice(&data_nonce);
        out.extend_from_slice(plaintext);
        let data_tag = cipher(&data_key)
            .encrypt_in_place_detached(Nonce::from_slice(&data_nonce), aad, &mut out[header + CIPHERTEXT_OFFSET..])
            .map_err(|_| {
                // The buffer holds plaintext when encryption refuses it.
                out.zeroize();
                CryptoError::Encrypt
            })?;
        out.extend_from_slice(&data_tag);
        Ok(out)
    }

    /// Checks the envelope names this KEK and unwraps its data key; also returns the header length.
    fn unwrap_data_key(&self, blob: &[u8], aad: &[u8]) -> Result<(Zeroizing<[u8; KEY_LEN]>, usize), CryptoError> {
        let header = self.check_header(blob)?;
        let wrap_nonce = &blob[header..header + WRAPPED_KEY_OFFSET];
        let (wrapped_key, wrap_tag) = blob[header + WRAPPED_KEY_OFFSET..header + DATA_NONCE_OFFSET].split_at(KEY_LEN);
        let mut data_key = Zeroizing::new([0u8; KEY_LEN]);
        data_key.copy_from_slice(wrapped_key);
        self.cipher
            .decrypt_in_place_detached(Nonce::from_slice(wrap_nonce), aad, data_key.as_mut(), Tag::from_slice(wrap_tag))
            .map_err(|_| CryptoError::Decrypt)?;
        Ok((data_key, header))
    }

    /// Opens an envelope sealed by this KEK with the same `aad`.
    ///
    /// Hot path: one allocation (the returned value); the data key stays on the stack and is zeroized.
    /// Any altered bit, truncation, other `aad` or other KEK is an error, never a panic.
    pub fn open(&self, blob: &[u8], aad: &[u8]) -> Result<SecretBytes, CryptoError> {
        let (data_key, header) = self.unwrap_data_key(blob, aad)?;
        let data_nonce = &blob[header + DATA_NONCE_OFFSET..header + CIPHERTEXT_OFFSET];
        let body = &blob[header + CIPHERTEXT_OFFSET..];
        let (ciphertext, data_tag) = body.split_at(body.len() - TAG_LEN);
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

    /// Re-wraps an envelope sealed by `from` so that it names this KEK: the data key is unwrapped and
    /// wrapped again under a fresh nonce; the value's nonce, ciphertext and tag are copied unchanged, so
    /// the plaintext is never decrypted. The data part is not authenticated here (it was not touched);
    /// a later [`open`](Self::open) checks it as always.
    pub fn rewrap(
        &self,
        from: &Kek,
        blob: &[u8],
        aad: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<u8>, CryptoError> {
        let (data_key, old_header) = from.unwrap_data_key(blob, aad)?;
        let mut wrap_nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut wrap_nonce);
        let mut out = Vec::with_capacity(blob.len() + KMS_KEY_ID_LEN);
        self.write_wrapped_key(&mut out, &data_key, &wrap_nonce, aad)?;
        out.extend_from_slice(&blob[old_header + DATA_NONCE_OFFSET..]);
        Ok(out)
    }

    /// A KMS `Encrypt` ciphertext blob: `plaintext` encrypted under this material, the header
    /// (format, key id, material version) and `context` (the canonical encryption context)
    /// authenticated with it.
    pub fn encrypt_kms(
        &self,
        rng: &mut (impl RngCore + CryptoRng),
        plaintext: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(KMS_CIPHERTEXT_OVERHEAD + plaintext.len());
        out.push(FORMAT_KMS_CIPHERTEXT);
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&nonce);
        let aad = kms_aad(&out[..KMS_HEADER_LEN], context);
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut out[KMS_HEADER_LEN + NONCE_LEN..])
            .map_err(|_| {
                out.zeroize();
                CryptoError::Encrypt
            })?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a blob from [`encrypt_kms`](Self::encrypt_kms); the same encryption context is required.
    pub fn decrypt_kms(&self, blob: &[u8], context: &[u8]) -> Result<SecretBytes, CryptoError> {
        let (key_id, version) = kms_ciphertext_key(blob)?;
        if version != self.id || key_id != self.key_id {
            return Err(CryptoError::UnknownKek(version));
        }
        let aad = kms_aad(&blob[..KMS_HEADER_LEN], context);
        let nonce = &blob[KMS_HEADER_LEN..KMS_HEADER_LEN + NONCE_LEN];
        let body = &blob[KMS_HEADER_LEN + NONCE_LEN..];
        let (ciphertext, tag) = body.split_at(body.len() - TAG_LEN);
        let mut value = SecretBytes::new(ciphertext.to_vec());
        self.cipher
            .decrypt_in_place_detached(Nonce::from_slice(nonce), &aad, value.expose_mut(), Tag::from_slice(tag))
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(value)
    }
}

/// The associated data of a KMS ciphertext: its clear header, then the encryption context.
fn kms_aad(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + context.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(context);
    aad
}
