//! Coffer's cryptography: the master key, the [`Keyring`] derived from it, envelope encryption of
//! stored values, and [`SecretBytes`], the one type secret material travels in.
//!
//! # Invariants
//!
//! - **No I/O, no clock.** Nothing here touches files, sockets, the environment or the time; callers
//!   (the server) read key files and environment variables and hand the text in.
//! - **Randomness is injected.** Every operation that needs randomness takes
//!   `&mut (impl RngCore + CryptoRng)`; production passes `OsRng`, tests may pass a fixed generator.
//! - **Secrets are zeroized.** Plaintext values, data keys, the master key and derived keys live in
//!   zeroizing buffers (and the AES key schedules and Argon2 memory are wiped on drop). They never appear
//!   in `Debug` output or in error messages.
//! - **Well-kept primitives only.** AES-256-GCM (`aes-gcm`), HKDF-SHA256 (`hkdf`), Argon2id (`argon2`),
//!   constant-time comparison (`subtle`). No home-made constructions beyond composing them.
//! - **Versioned formats.** Every stored blob starts with a format byte and envelopes name the
//!   key-encryption key that wrapped them, so formats and keys can evolve without guessing.
//! - **Never panics on input.** Malformed, truncated or tampered blobs are errors.
//!
//! # Key hierarchy
//!
//! ```text
//! master key (32 bytes: random, from COFFER_MASTER_KEY / key file, or Argon2id(passphrase, params))
//!   ├─ KEK          = HKDF-SHA256(salt = "coffer master key derivation v1", ikm = master, info = "coffer kek v1")
//!   ├─ key-check key = HKDF-SHA256(same salt, ikm = master, info = "coffer key check v1")
//!   └─ subkey(p)    = HKDF-SHA256(same salt, ikm = master, info = "coffer subkey v1 " ++ p)
//! ```
//!
//! Subkey purposes carry a fixed prefix so that no purpose string can ever reproduce the KEK or the
//! key-check key.
//!
//! # Envelope layout (format 1)
//!
//! Produced by [`Keyring::seal`]; every field has a fixed length except the last.
//!
//! | offset | length | field                                                        |
//! |-------:|-------:|--------------------------------------------------------------|
//! | 0      | 1      | format byte `0x01`                                           |
//! | 1      | 4      | KEK id, u32 big-endian (`1`)                                 |
//! | 5      | 12     | wrap nonce                                                   |
//! | 17     | 48     | data key (32) encrypted under the KEK with AES-256-GCM + tag (16) |
//! | 65     | 12     | data nonce                                                   |
//! | 77     | n + 16 | value (n) encrypted under the data key with AES-256-GCM + tag (16) |
//!
//! The data key is fresh for every seal. The caller's associated data (the record identity, e.g. the
//! secret ARN and version id) is the AES-GCM associated data of **both** encryptions, so a blob copied
//! to another record does not open. The total overhead is [`ENVELOPE_OVERHEAD`] (93) bytes.
//!
//! # Envelope layout (format 2): under a KMS key
//!
//! Format 1 with a longer header: `0x02 | KMS key id (16, the key's UUID) | material version (u32 BE)`,
//! then the same fields (wrap nonce, wrapped data key, data nonce, ciphertext); 109 bytes of overhead.
//! The envelope names the KMS key that protects it, as AWS ciphertexts do, so records need no extra
//! column to find their key; the header is AES-GCM associated data of neither encryption, but a wrong
//! key or version simply fails to unwrap. A KMS key's material is 32 random
//! bytes, stored sealed under the master key. Key rotation adds a material version; [`Kek::rewrap`]
//! moves an envelope to the newest version by re-wrapping only its data key.
//!
//! # KMS ciphertext blob (format 3)
//!
//! What the KMS `Encrypt`/`GenerateDataKey` APIs return: `0x03 | key id (16, the key's UUID) | material
//! version (u32 BE) | nonce (12) | ciphertext | tag (16)`, encrypted directly under the key material; the
//! AES-GCM associated data is the 21-byte header followed by the canonical encryption context, so a
//! blob decrypts only under the same key and the same context.
//!
//! # Key-check layout (format 1)
//!
//! Produced by [`Keyring::key_check`]: `0x01 | nonce (12) | AES-256-GCM("coffer master key check") + tag`,
//! 52 bytes, encrypted under the key-check key with no associated data.
//!
//! # Sealing the master key with key shares
//!
//! [`SealConfig::create`] seals the master key under a random 32-byte unseal key
//! (`0x01 | nonce (12) | AES-256-GCM(master key) + tag`, AAD [`SEALED_MASTER_KEY_AAD`]) and splits the
//! unseal key into Shamir key shares (`0x01 | x | y (32)`, base64); the configuration keeps the SHA-256
//! of each share so [`ShareSet`] can refuse unknown and duplicate shares on arrival.
//!
//! # Example
//!
//! ```
//! use coffer_crypto::{Keyring, MasterKey};
//! use rand::rngs::OsRng;
//!
//! let master = MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")?;
//! let keyring = Keyring::new(&master);
//! let aad = b"arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf|v1";
//! let blob = keyring.seal(&mut OsRng, b"hunter2", aad)?;
//! assert_eq!(keyring.open(&blob, aad)?.expose(), b"hunter2");
//! assert!(keyring.open(&blob, b"another record").is_err());
//! # Ok::<(), coffer_crypto::CryptoError>(())
//! ```

mod error;
mod kek;
mod keyring;
mod master;
mod secret;
mod shamir;

pub use error::CryptoError;
pub use kek::{
    envelope_kek, kms_ciphertext_key, EnvelopeKek, Kek, ENVELOPE_OVERHEAD, FORMAT_KMS_CIPHERTEXT, FORMAT_KMS_KEY,
    FORMAT_MASTER_KEK, KMS_CIPHERTEXT_OVERHEAD, KMS_ENVELOPE_OVERHEAD, KMS_KEY_ID_LEN,
};
pub use keyring::Keyring;
pub use master::{MasterKey, PassphraseParams};
pub use secret::SecretBytes;
pub use shamir::{
    check_share_parameters, KeyShare, SealConfig, ShamirError, ShareSet, MAX_KEY_SHARES, SEALED_MASTER_KEY_AAD,
    SEAL_CONFIG_FORMAT, SHARE_FORMAT,
};

/// Length of every symmetric key here (AES-256, HKDF outputs, the master key).
const KEY_LEN: usize = 32;
