//! Behaviour of the public API, as the other crates use it.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coffer_crypto::{CryptoError, Keyring, MasterKey, PassphraseParams, SecretBytes, ENVELOPE_OVERHEAD};
use rand::rngs::OsRng;
use rand::{CryptoRng, RngCore};

/// A predictable "random" source (0, 1, 2, ... from a start byte) for golden vectors. Never use outside tests.
struct Counter(u8);

impl RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            *byte = self.0;
            self.0 = self.0.wrapping_add(1);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Counter {}

fn keyring(byte: u8) -> Keyring {
    Keyring::new(&MasterKey::from_bytes([byte; 32]))
}

fn small_params(salt: u8) -> PassphraseParams {
    PassphraseParams { v: 1, salt_b64: STANDARD.encode([salt; 16]), m_cost_kib: 1024, t_cost: 1, p_cost: 1 }
}

// ---- envelope round trips -------------------------------------------------------------------------

#[test]
fn seal_open_round_trips_empty_large_and_binary() {
    let k = keyring(1);
    let mut large = vec![0u8; 65_536];
    OsRng.fill_bytes(&mut large);
    for value in [vec![], b"s3cr3t".to_vec(), large, vec![0u8; 1000], (0..=255u8).collect()] {
        let blob = k.seal(&mut OsRng, &value, b"arn|v1").unwrap();
        assert_eq!(blob.len(), value.len() + ENVELOPE_OVERHEAD);
        let opened = k.open(&blob, b"arn|v1").unwrap();
        assert_eq!(opened.expose(), value.as_slice());
    }
}

#[test]
fn blob_layout_is_as_documented() {
    let k = keyring(1);
    let blob = k.seal(&mut OsRng, b"abc", b"aad").unwrap();
    assert_eq!(ENVELOPE_OVERHEAD, 93);
    assert_eq!(blob[0], 0x01, "format byte");
    assert_eq!(blob[1..5], 1u32.to_be_bytes(), "kek id");
    assert_eq!(blob.len(), 1 + 4 + 12 + 48 + 12 + 3 + 16);
    // The value is not stored in the clear.
    assert!(!blob.windows(3).any(|w| w == b"abc"));
}

#[test]
fn seal_works_with_empty_aad() {
    let k = keyring(1);
    let blob = k.seal(&mut OsRng, b"v", b"").unwrap();
    assert_eq!(k.open(&blob, b"").unwrap().expose(), b"v");
    assert_eq!(k.open(&blob, b"x").unwrap_err(), CryptoError::Decrypt);
}

// ---- binding, tampering, truncation -----------------------------------------------------------------

#[test]
fn aad_binds_the_blob_to_its_record() {
    let k = keyring(1);
    let blob = k.seal(&mut OsRng, b"value", b"arn-a|v1").unwrap();
    assert_eq!(k.open(&blob, b"arn-b|v1").unwrap_err(), CryptoError::Decrypt);
    assert_eq!(k.open(&blob, b"arn-a|v2").unwrap_err(), CryptoError::Decrypt);
    assert_eq!(k.open(&blob, b"").unwrap_err(), CryptoError::Decrypt);
    assert!(k.open(&blob, b"arn-a|v1").is_ok());
}

#[test]
fn aad_is_bound_to_the_wrapped_key_as_well_as_the_value() {
    // Splice record B's wrapped data key into record A's blob: even with A's aad the key does not
    // unwrap, because the wrap itself carries B's aad.
    let k = keyring(1);
    let a = k.seal(&mut OsRng, b"value a", b"record a").unwrap();
    let b = k.seal(&mut OsRng, b"value b", b"record b").unwrap();
    let mut spliced = a.clone();
    spliced[5..65].copy_from_slice(&b[5..65]);
    assert_eq!(k.open(&spliced, b"record a").unwrap_err(), CryptoError::Decrypt);
    assert_eq!(k.open(&spliced, b"record b").unwrap_err(), CryptoError::Decrypt);
}

#[test]
fn every_flipped_bit_is_detected() {
    let k = keyring(1);
    let blob = k.seal(&mut OsRng, b"tamper me", b"aad").unwrap();
    for i in 0..blob.len() {
        for bit in 0..8 {
            let mut t = blob.clone();
            t[i] ^= 1 << bit;
            assert!(k.open(&t, b"aad").is_err(), "flip of bit {bit} at byte {i} went unnoticed");
        }
    }
}

#[test]
fn header_errors_are_specific() {
    let k = keyring(1);
    let blob = k.seal(&mut OsRng, b"v", b"aad").unwrap();
    let mut t = blob.clone();
    t[0] = 0x09;
    assert_eq!(k.open(&t, b"aad").unwrap_err(), CryptoError::UnknownFormat(9));
    // Format 2 (a KMS key's envelope) has a longer header: this blob is too short to be one...
    t[0] = 0x02;
    assert_eq!(k.open(&t, b"aad").unwrap_err(), CryptoError::MalformedEnvelope);
    // ...and a long enough one names material the master keyring does not hold.
    let mut long = k.seal(&mut OsRng, &[7u8; 64], b"aad").unwrap();
    long[0] = 0x02;
    assert!(matches!(k.open(&long, b"aad").unwrap_err(), CryptoError::UnknownKek(_)));
    let mut t = blob.clone();
    t[1..5].copy_from_slice(&7u32.to_be_bytes());
    assert_eq!(k.open(&t, b"aad").unwrap_err(), CryptoError::UnknownKek(7));
    assert_eq!(k.open(&[], b"aad").unwrap_err(), CryptoError::MalformedEnvelope);
}

#[test]
fn truncation_at_every_length_fails_without_panicking() {
    let k = keyring(1);
    for value in [&b""[..], b"truncate me"] {
        let blob = k.seal(&mut OsRng, value, b"aad").unwrap();
        for len in 0..blob.len() {
            assert!(k.open(&blob[..len], b"aad").is_err(), "truncated to {len} opened");
        }
        // Appending is tampering too.
        let mut longer = blob.clone();
        longer.push(0);
        assert!(k.open(&longer, b"aad").is_err());
    }
}

#[test]
fn garbage_never_panics() {
    let k = keyring(1);
    let mut buf = vec![0u8; 300];
    for len in 0..300 {
        OsRng.fill_bytes(&mut buf[..len]);
        if len > 0 {
            buf[0] = 0x01;
        }
        if len > 4 {
            buf[1..5].copy_from_slice(&1u32.to_be_bytes());
        }
        assert!(k.open(&buf[..len], b"").is_err());
        assert!(k.verify_key_check(&buf[..len]).is_err());
    }
}

// ---- master key mismatch and the key check ------------------------------------------------------------

#[test]
fn wrong_master_key_fails_open_and_key_check() {
    let (a, b) = (keyring(1), keyring(2));
    let blob = a.seal(&mut OsRng, b"v", b"aad").unwrap();
    assert_eq!(b.open(&blob, b"aad").unwrap_err(), CryptoError::Decrypt);

    let check = a.key_check(&mut OsRng);
    assert_eq!(check.len(), 52);
    assert_eq!(a.verify_key_check(&check), Ok(()));
    assert_eq!(b.verify_key_check(&check).unwrap_err(), CryptoError::WrongMasterKey);
}

#[test]
fn key_check_rejects_tampering_and_junk() {
    let k = keyring(1);
    let check = k.key_check(&mut OsRng);
    for i in 1..check.len() {
        let mut t = check.clone();
        t[i] ^= 0x80;
        assert_eq!(k.verify_key_check(&t).unwrap_err(), CryptoError::WrongMasterKey, "byte {i}");
    }
    let mut t = check.clone();
    t[0] = 0x09;
    assert_eq!(k.verify_key_check(&t).unwrap_err(), CryptoError::UnknownFormat(9));
    for len in 0..check.len() {
        assert!(k.verify_key_check(&check[..len]).is_err());
    }
    assert_eq!(k.verify_key_check(&[1, 2, 3]).unwrap_err(), CryptoError::MalformedEnvelope);
    // A sealed envelope is not a key check.
    let sealed = k.seal(&mut OsRng, b"coffer master key check", b"").unwrap();
    assert!(k.verify_key_check(&sealed).is_err());
    // Two key checks differ (fresh nonce) and both verify.
    let other = k.key_check(&mut OsRng);
    assert_ne!(check, other);
    assert_eq!(k.verify_key_check(&other), Ok(()));
}

// ---- freshness ---------------------------------------------------------------------------------------------

#[test]
fn two_seals_of_the_same_plaintext_differ_everywhere_random() {
    let k = keyring(1);
    let x = k.seal(&mut OsRng, b"same", b"aad").unwrap();
    let y = k.seal(&mut OsRng, b"same", b"aad").unwrap();
    assert_eq!(x[..5], y[..5], "same header");
    assert_ne!(x[5..17], y[5..17], "wrap nonce");
    assert_ne!(x[17..65], y[17..65], "wrapped data key");
    assert_ne!(x[65..77], y[65..77], "data nonce");
    assert_ne!(x[77..], y[77..], "ciphertext");
}

// ---- master key parsing --------------------------------------------------------------------------------------

#[test]
fn base64_round_trip_and_whitespace() {
    let key = MasterKey::generate(&mut OsRng);
    let text = key.to_base64();
    assert_eq!(text.len(), 44);
    let again = MasterKey::from_base64(&format!("  {}\n", text.expose_str().unwrap())).unwrap();
    let blob = Keyring::new(&key).seal(&mut OsRng, b"v", b"a").unwrap();
    assert!(Keyring::new(&again).open(&blob, b"a").is_ok());
    assert!(Keyring::new(&key.duplicate()).open(&blob, b"a").is_ok());
}

#[test]
fn from_base64_rejects_wrong_lengths_and_garbage() {
    for len in [0usize, 1, 16, 31, 33, 64] {
        let text = STANDARD.encode(vec![7u8; len]);
        assert_eq!(MasterKey::from_base64(&text).unwrap_err(), CryptoError::BadKeyLength, "{len} bytes");
    }
    for bad in ["not base64!", "@@@@", "AAAA=AAA", "AAA", "€uro"] {
        assert_eq!(MasterKey::from_base64(bad).unwrap_err(), CryptoError::BadBase64, "{bad:?}");
    }
    // URL-safe alphabet is not the documented form.
    let urlsafe = base64::engine::general_purpose::URL_SAFE.encode([0xfbu8; 32]);
    assert_eq!(MasterKey::from_base64(&urlsafe).unwrap_err(), CryptoError::BadBase64);
    assert_eq!(MasterKey::from_slice(&[0u8; 31]).unwrap_err(), CryptoError::BadKeyLength);
    assert_eq!(MasterKey::from_slice(&[0u8; 33]).unwrap_err(), CryptoError::BadKeyLength);
    assert!(MasterKey::from_slice(&[0u8; 32]).is_ok());
}

// ---- passphrases -------------------------------------------------------------------------------------------------

fn derived_b64(pass: &[u8], params: &PassphraseParams) -> String {
    MasterKey::from_passphrase(pass, params).unwrap().to_base64().expose_str().unwrap().to_string()
}

#[test]
fn passphrase_derivation_is_deterministic_and_salted() {
    let reference = derived_b64(b"correct horse", &small_params(1));
    assert_eq!(reference, derived_b64(b"correct horse", &small_params(1)));
    assert_ne!(reference, derived_b64(b"correct horse", &small_params(2)), "other salt");
    assert_ne!(reference, derived_b64(b"battery staple", &small_params(1)), "other passphrase");
    let mut costlier = small_params(1);
    costlier.t_cost = 2;
    assert_ne!(reference, derived_b64(b"correct horse", &costlier), "other cost");
}

#[test]
fn passphrase_params_are_checked() {
    let mut p = small_params(1);
    p.v = 2;
    assert!(matches!(MasterKey::from_passphrase(b"x", &p), Err(CryptoError::Kdf(_))));
    let mut p = small_params(1);
    p.salt_b64 = "%%%".into();
    assert_eq!(MasterKey::from_passphrase(b"x", &p).unwrap_err(), CryptoError::BadBase64);
    let mut p = small_params(1);
    p.salt_b64 = STANDARD.encode([1u8; 4]); // below Argon2's 8-byte minimum
    assert!(matches!(MasterKey::from_passphrase(b"x", &p), Err(CryptoError::Kdf(_))));
    let mut p = small_params(1);
    p.m_cost_kib = u32::MAX; // would be a 4 TiB allocation: refused, not attempted
    assert!(matches!(MasterKey::from_passphrase(b"x", &p), Err(CryptoError::Kdf(_))));
    let mut p = small_params(1);
    p.t_cost = 0;
    assert!(matches!(MasterKey::from_passphrase(b"x", &p), Err(CryptoError::Kdf(_))));
    // Errors never echo the passphrase.
    let err = MasterKey::from_passphrase(b"hunter2", &p).unwrap_err().to_string();
    assert!(!err.contains("hunter2"));
}

#[test]
fn passphrase_params_generate_and_serde_round_trip() {
    let p = PassphraseParams::generate(&mut OsRng);
    assert_eq!((p.v, p.m_cost_kib, p.t_cost, p.p_cost), (1, 19_456, 2, 1));
    assert_eq!(STANDARD.decode(&p.salt_b64).unwrap().len(), 16);
    assert_ne!(p.salt_b64, PassphraseParams::generate(&mut OsRng).salt_b64);
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<PassphraseParams>(&json).unwrap(), p);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    for field in ["v", "salt_b64", "m_cost_kib", "t_cost", "p_cost"] {
        assert!(value.get(field).is_some(), "field {field} is part of the stored form");
    }
}

// ---- redaction ------------------------------------------------------------------------------------------------------

#[test]
fn debug_output_never_shows_key_material() {
    let mut raw = [0u8; 32];
    OsRng.fill_bytes(&mut raw);
    let key = MasterKey::from_bytes(raw);
    let b64 = key.to_base64();
    let keyring = Keyring::new(&key);
    let subkey = keyring.derive_subkey("coffer audit signing v1");
    let secret = SecretBytes::from("hunter2-canary".to_string());
    let dbg = format!("{key:?} {key:#?} {secret:?} {keyring:?} {subkey:?} {b64:?}");

    let forbidden = [
        hex::encode(raw),
        hex::encode_upper(raw),
        hex::encode(&raw[..8]),
        b64.expose_str().unwrap().to_string(),
        b64.expose_str().unwrap()[..12].to_string(),
        format!("{:?}", &raw[..4]),
        hex::encode(subkey.expose()),
        "hunter2".to_string(),
    ];
    for f in forbidden {
        assert!(!dbg.contains(&f), "debug output leaks {f}");
    }
    assert!(dbg.contains("SecretBytes(<redacted 14 bytes>)"));
    assert!(dbg.contains("SecretBytes(<redacted 32 bytes>)"));
}

#[test]
fn error_messages_are_lowercase_without_trailing_period() {
    let errors = [
        CryptoError::WrongMasterKey,
        CryptoError::Decrypt,
        CryptoError::Encrypt,
        CryptoError::MalformedEnvelope,
        CryptoError::UnknownFormat(2),
        CryptoError::UnknownKek(3),
        CryptoError::BadKeyLength,
        CryptoError::BadBase64,
        CryptoError::Kdf("x".into()),
        CryptoError::NotUtf8,
    ];
    for e in errors {
        let m = e.to_string();
        assert!(m.starts_with(|c: char| c.is_lowercase()), "{m}");
        assert!(!m.ends_with('.'), "{m}");
    }
}

// ---- subkeys ------------------------------------------------------------------------------------------------------------

#[test]
fn subkeys_differ_per_purpose_and_master() {
    let (a, b) = (keyring(1), keyring(2));
    let audit = a.derive_subkey("coffer audit signing v1");
    assert_eq!(audit.len(), 32);
    assert_ne!(audit, a.derive_subkey("coffer fingerprint v1"));
    assert_ne!(audit, b.derive_subkey("coffer audit signing v1"));
    assert_eq!(audit, keyring(1).derive_subkey("coffer audit signing v1"));
    assert_ne!(a.derive_subkey(""), a.derive_subkey(" "));
}

// ---- golden vectors ----------------------------------------------------------------------------------------------------
// Pinned from the format-1 implementation and checked independently with pyca/cryptography (OpenSSL):
// HKDF-SHA256, AES-256-GCM and Argon2id outputs match. If these change, data already stored by Coffer
// no longer opens.

const GOLDEN_AAD: &[u8] = b"arn:coffer:secret:x|v1";
const GOLDEN_SEAL: &str = "0100000001a0a1a2a3a4a5a6a7a8a9aaab21b06b1daa0839524d5b04bc68fba31d97b784897a5c3c9b2484\
                           3907daf8ff6915ae040f87ac117be8c47b238c0d8e5aacadaeafb0b1b2b3b4b5b6b7ff331515577bb09e82\
                           0ddc9c7ea37d45537c419fa74d043a3bce0692";
const GOLDEN_CHECK: &str = "01404142434445464748494a4b86d61b0be2b0d60c4c945969134582ac4a55ec045f11c3aa2b2e0a87a9cb1bdd\
                            a1b8ea306443bf";
const GOLDEN_SUBKEY: &str = "ee89066bfd3a178ce97c22be58f0dfcdb0735115f33495ea28c5f3bc8276e030";
const GOLDEN_PASSPHRASE_KEY: &str = "1fe902ced397d0dd4644b8e1775c120f5dbd3fac48e2cb5b040985d17393eb38";

fn golden_keyring() -> Keyring {
    Keyring::new(&MasterKey::from_bytes(core::array::from_fn(|i| i as u8)))
}

#[test]
fn golden_envelope_is_stable() {
    let k = golden_keyring();
    let sealed = k.seal(&mut Counter(0x80), b"golden value", GOLDEN_AAD).unwrap();
    assert_eq!(hex::encode(&sealed), GOLDEN_SEAL);
    let stored = hex::decode(GOLDEN_SEAL).unwrap();
    assert_eq!(k.open(&stored, GOLDEN_AAD).unwrap().expose(), b"golden value");
}

#[test]
fn golden_key_check_and_subkey_are_stable() {
    let k = golden_keyring();
    assert_eq!(hex::encode(k.key_check(&mut Counter(0x40))), GOLDEN_CHECK);
    assert_eq!(k.verify_key_check(&hex::decode(GOLDEN_CHECK).unwrap()), Ok(()));
    assert_eq!(hex::encode(k.derive_subkey("coffer audit signing v1").expose()), GOLDEN_SUBKEY);
}

#[test]
fn golden_passphrase_key_is_stable() {
    let key = MasterKey::from_passphrase(b"correct horse", &small_params(7)).unwrap();
    let expected = MasterKey::from_slice(&hex::decode(GOLDEN_PASSPHRASE_KEY).unwrap()).unwrap();
    assert_eq!(key.to_base64(), expected.to_base64());
}

// ---- thread safety ----------------------------------------------------------------------------------------------------------

#[test]
fn keyring_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Keyring>();
    assert_send_sync::<SecretBytes>();
    assert_send_sync::<MasterKey>();
    let k = std::sync::Arc::new(keyring(3));
    let blob = k.seal(&mut OsRng, b"shared", b"aad").unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (k, blob) = (k.clone(), blob.clone());
            std::thread::spawn(move || k.open(&blob, b"aad").unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().expose(), b"shared");
    }
}
