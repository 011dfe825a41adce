//! Signed digests of the chain. Every few minutes the server states "the chain ends at record N,
//! whose hash is H", links the statement to the previous one and signs it with Ed25519. With only
//! the public key, anyone can then tell that records up to N were not changed, removed or reordered,
//! and that the records a digest covered were not cut off the end.

use ed25519_dalek::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::chain::ChainHash;
use crate::event::iso8601_seconds;
use crate::AuditError;

/// The digest format this crate writes and reads.
pub const DIGEST_VERSION: u32 = 1;

/// What a digest signs. Field order is the serialization order: do not reorder fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestBody {
    /// [`DIGEST_VERSION`].
    pub version: u32,
    /// ISO-8601, whole seconds, UTC.
    pub digest_time: String,
    /// The first record this digest newly covers: one past the previous digest's `lastSeq` (1 for
    /// the first digest). Equal to `lastSeq + 1` when no record was added since the previous one.
    pub first_seq: u64,
    /// The newest record covered; 0 when the chain was empty.
    pub last_seq: u64,
    /// Hex of `record_hash` of record `lastSeq` (of [`crate::chain::GENESIS`] when `lastSeq` is 0).
    pub last_hash: String,
    /// Hex SHA-256 of the previous digest's body bytes; `null` for the first digest.
    pub previous_digest_hash: Option<String>,
    /// Hex SHA-256 of the 32-byte public key that verifies this digest.
    pub public_key_fingerprint: String,
}

impl DigestBody {
    /// The digest that follows `previous_body` (the newest digest's exact bytes; `None` for the
    /// first digest ever), covering the chain up to `last_seq`, whose record hash is `last_hash`.
    pub fn new(
        time_ms: i64,
        previous_body: Option<&[u8]>,
        last_seq: u64,
        last_hash: &ChainHash,
        public_key: &AuditPublicKey,
    ) -> Result<DigestBody, AuditError> {
        let (first_seq, previous_digest_hash) = match previous_body {
            None => (1, None),
            Some(bytes) => {
                let previous = DigestBody::from_json(bytes)?;
                if last_seq < previous.last_seq {
                    return Err(AuditError::Digest(format!(
                        "the chain cannot end at {last_seq}: the previous digest already covers up to {}",
                        previous.last_seq
                    )));
                }
                (previous.last_seq + 1, Some(hex::encode(digest_hash(bytes))))
            }
        };
        Ok(DigestBody {
            version: DIGEST_VERSION,
            digest_time: iso8601_seconds(time_ms),
            first_seq,
            last_seq,
            last_hash: hex::encode(last_hash),
            previous_digest_hash,
            public_key_fingerprint: public_key.fingerprint_hex(),
        })
    }

    /// The bytes that are signed and stored: compact JSON in field order.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // Serializing integers, strings and an option into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<DigestBody, AuditError> {
        serde_json::from_slice(bytes).map_err(|e| AuditError::Digest(e.to_string()))
    }

    /// `lastHash` as bytes; `None` when it is not 64 hex digits.
    pub fn last_hash_bytes(&self) -> Option<ChainHash> {
        decode_hash(&self.last_hash)
    }

    /// `previousDigestHash` as bytes; `None` when absent or not 64 hex digits.
    pub fn previous_digest_hash_bytes(&self) -> Option<[u8; 32]> {
        decode_hash(self.previous_digest_hash.as_deref()?)
    }
}

pub(crate) fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// SHA-256 of a digest's body bytes (what the next digest's `previousDigestHash` holds).
pub fn digest_hash(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// The server's digest signing key. The secret half never leaves this type: no accessor returns
/// it, `Debug` shows only the public fingerprint, and it is wiped from memory when dropped.
pub struct AuditSigningKey {
    key: SigningKey,
}

// The secret half is wiped from memory when the key is dropped (ed25519-dalek's `zeroize` feature);
// this fails to compile if that ever stops being so.
const _: fn() = || {
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wiped_on_drop::<SigningKey>();
};

impl AuditSigningKey {
    /// The key whose Ed25519 seed is `seed` (derived from the master key by the caller, which wipes
    /// its own copy; this type keeps one that it wipes on drop).
    pub fn from_seed(seed: &[u8; 32]) -> AuditSigningKey {
        AuditSigningKey { key: SigningKey::from_bytes(seed) }
    }

    /// An Ed25519 signature (64 bytes) over `body`.
    pub fn sign(&self, body: &[u8]) -> Vec<u8> {
        self.key.sign(body).to_bytes().to_vec()
    }

    pub fn public_key(&self) -> AuditPublicKey {
        AuditPublicKey { key: self.key.verifying_key() }
    }
}

impl std::fmt::Debug for AuditSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigningKey").field("public_key_fingerprint", &self.public_key().fingerprint_hex()).finish()
    }
}

/// The key that verifies digests; all `coffer audit verify` needs besides the data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuditPublicKey {
    key: VerifyingKey,
}

impl AuditPublicKey {
    /// The 32-byte Ed25519 public key. Weak (small-order) keys are refused: any signature would
    /// verify under some of them.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<AuditPublicKey, AuditError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| AuditError::PublicKey("not an Ed25519 point".into()))?;
        Self::checked(key)
    }

    fn checked(key: VerifyingKey) -> Result<AuditPublicKey, AuditError> {
        if key.is_weak() {
            return Err(AuditError::PublicKey("a weak (small-order) Ed25519 key".into()));
        }
        Ok(AuditPublicKey { key })
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Standard SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), as `openssl pkey -pubin`
    /// reads it.
    pub fn to_pem(&self) -> Result<String, AuditError> {
        self.key
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| AuditError::PublicKey(e.to_string()))
    }

    /// Reads a SubjectPublicKeyInfo PEM holding an Ed25519 key.
    pub fn from_pem(pem: &str) -> Result<AuditPublicKey, AuditError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| AuditError::PublicKey(format!("not an Ed25519 public key in PEM: {e}")))?;
        Self::checked(key)
    }

    /// Hex SHA-256 of the 32-byte key: how digests and people name the key.
    pub fn fingerprint_hex(&self) -> String {
        hex::encode(Sha256::digest(self.key.as_bytes()))
    }

    /// Whether `signature` is this key's Ed25519 signature of `body`, verified strictly (no
    /// malleable or small-order encodings).
    pub fn verify(&self, body: &[u8], signature: &[u8]) -> bool {
        match Signature::from_slice(signature) {
            Ok(signature) => self.key.verify_strict(body, &signature).is_ok(),
            Err(_) => false,
        }
    }
}

impl std::fmt::Debug for AuditPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditPublicKey").field("fingerprint", &self.fingerprint_hex()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032, section 7.1, test 1.
    const RFC_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC_SIGNATURE_OF_EMPTY: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
                                          5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    /// What `openssl pkey -pubout` prints for the RFC key.
    const RFC_PEM: &str = "-----BEGIN PUBLIC KEY-----\n\
                           MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n\
                           -----END PUBLIC KEY-----\n";

    fn rfc_key() -> AuditSigningKey {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(RFC_SEED, &mut seed).unwrap();
        AuditSigningKey::from_seed(&seed)
    }

    #[test]
    fn signs_as_rfc_8032_says() {
        let key = rfc_key();
        assert_eq!(hex::encode(key.public_key().to_bytes()), RFC_PUBLIC);
        let signature = key.sign(b"");
        assert_eq!(signature.len(), 64);
        assert_eq!(hex::encode(&signature), RFC_SIGNATURE_OF_EMPTY);
        assert!(key.public_key().verify(b"", &signature));
    }

    #[test]
    fn verification_fails_for_any_change() {
        let key = rfc_key();
        let public = key.public_key();
        let signature = key.sign(b"digest body");
        assert!(public.verify(b"digest body", &signature));
        assert!(!public.verify(b"digest bodY", &signature));
        for i in [0, 31, 32, 63] {
            let mut bad = signature.clone();
            bad[i] ^= 1;
            assert!(!public.verify(b"digest body", &bad));
        }
        assert!(!public.verify(b"digest body", &signature[..63]));
        assert!(!public.verify(b"digest body", &[]));
        let other = AuditSigningKey::from_seed(&[7u8; 32]).public_key();
        assert!(!other.verify(b"digest body", &signature));
    }

    #[test]
    fn public_key_pem_is_standard_spki() {
        let public = rfc_key().public_key();
        let pem = public.to_pem().unwrap();
        assert_eq!(pem, RFC_PEM);
        assert_eq!(AuditPublicKey::from_pem(&pem).unwrap(), public);
        // Surrounding whitespace (a file's trailing newline, CRLF) is fine.
        assert_eq!(AuditPublicKey::from_pem(&format!("\n{}\n", pem.replace('\n', "\r\n"))).unwrap(), public);
    }

    #[test]
    fn from_pem_refuses_what_is_not_an_ed25519_public_key() {
        assert!(AuditPublicKey::from_pem("").is_err());
        assert!(AuditPublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err());
        // A P-256 public key.
        let p256 = "-----BEGIN PUBLIC KEY-----\n\
                    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1nXRmJHt7GGIaY2h8BgorNuVd4Ms\n\
                    8DUn7oQAjqScjRo13cU3GNkc+DyLIc+4PojdBLd7qaVy95nUDd8uzrt35g==\n\
                    -----END PUBLIC KEY-----\n";
        assert!(AuditPublicKey::from_pem(p256).is_err());
        // The identity point is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(AuditPublicKey::from_bytes(&identity).is_err());
    }

    #[test]
    fn fingerprint_is_sha256_of_the_raw_key() {
        let public = rfc_key().public_key();
        assert_eq!(public.fingerprint_hex(), hex::encode(Sha256::digest(public.to_bytes())));
        assert_eq!(public.fingerprint_hex().len(), 64);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = rfc_key();
        let shown = format!("{key:?} {:?}", key.public_key());
        assert!(!shown.contains(RFC_SEED));
        assert!(!shown.contains(&RFC_SEED[..16]));
        assert!(shown.contains(&key.public_key().fingerprint_hex()));
    }

    #[test]
    fn digest_bodies_chain_and_render_canonically() {
        let public = rfc_key().public_key();
        let first = DigestBody::new(1_795_434_838_000, None, 0, &crate::chain::GENESIS, &public).unwrap();
        assert_eq!(first.first_seq, 1);
        assert_eq!(first.previous_digest_hash, None);
        let first_bytes = first.to_canonical_json();
        let expected = format!(
            r#"{{"version":1,"digestTime":"2026-11-23T11:53:58Z","firstSeq":1,"lastSeq":0,"lastHash":"{}","previousDigestHash":null,"publicKeyFingerprint":"{}"}}"#,
            "0".repeat(64),
            public.fingerprint_hex()
        );
        assert_eq!(String::from_utf8(first_bytes.clone()).unwrap(), expected);

        let second = DigestBody::new(1_795_435_000_000, Some(&first_bytes), 42, &[9u8; 32], &public).unwrap();
        assert_eq!(second.first_seq, 1);
        assert_eq!(second.last_seq, 42);
        assert_eq!(second.last_hash_bytes(), Some([9u8; 32]));
        assert_eq!(second.previous_digest_hash_bytes(), Some(digest_hash(&first_bytes)));
        let second_bytes = second.to_canonical_json();
        assert_eq!(DigestBody::from_json(&second_bytes).unwrap(), second);

        let third = DigestBody::new(1_795_436_000_000, Some(&second_bytes), 42, &[9u8; 32], &public).unwrap();
        assert_eq!((third.first_seq, third.last_seq), (43, 42));
        assert!(DigestBody::new(0, Some(&second_bytes), 41, &[9u8; 32], &public).is_err());
        assert!(DigestBody::new(0, Some(b"garbage"), 41, &[9u8; 32], &public).is_err());
    }

    #[test]
    fn digest_hash_is_plain_sha256() {
        assert_eq!(
            hex::encode(digest_hash(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_hashes_read_as_none() {
        let body = DigestBody {
            version: 1,
            digest_time: String::new(),
            first_seq: 1,
            last_seq: 1,
            last_hash: "zz".into(),
            previous_digest_hash: Some("00".into()),
            public_key_fingerprint: String::new(),
        };
        assert_eq!(body.last_hash_bytes(), None);
        assert_eq!(body.previous_digest_hash_bytes(), None);
    }
}
