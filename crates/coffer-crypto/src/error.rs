/// What can go wrong. Messages are lowercase, without a trailing period, and never contain key
/// material or plaintext (only lengths, format bytes and key ids, which are not secret).
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// The data (a key-check blob) was protected by another master key.
    #[error("the master key does not match this data")]
    WrongMasterKey,
    /// Authentication failed: the blob was altered, truncated inside its ciphertext, bound to another
    /// record (other associated data), or sealed under another master key.
    #[error("decryption failed")]
    Decrypt,
    /// Encryption failed; only possible for inputs beyond AES-GCM's limits (about 64 GiB).
    #[error("encryption failed")]
    Encrypt,
    /// The blob is too short or otherwise not shaped like a sealed envelope or key check.
    #[error("malformed envelope")]
    MalformedEnvelope,
    /// The blob starts with a format byte this version does not know (written by a newer Coffer?).
    #[error("unknown envelope format {0:#04x}")]
    UnknownFormat(u8),
    /// The envelope names a key-encryption key this keyring does not hold.
    #[error("unknown key-encryption key id {0}")]
    UnknownKek(u32),
    /// A key of the wrong length was given; keys are exactly 32 bytes.
    #[error("a key must be exactly 32 bytes")]
    BadKeyLength,
    /// Key or salt text is not valid standard base64.
    #[error("key text is not valid base64")]
    BadBase64,
    /// The passphrase key derivation failed or its stored parameters are unusable.
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// Bytes expected to be UTF-8 text are not.
    #[error("value is not valid utf-8")]
    NotUtf8,
}
