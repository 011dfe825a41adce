//! KMS key material as KEKs: envelopes under material versions, re-wrapping, and KMS ciphertext blobs.
#![allow(clippy::unwrap_used)]

use coffer_crypto::{
    envelope_kek, kms_ciphertext_key, CryptoError, EnvelopeKek, Kek, Keyring, MasterKey, SecretBytes,
    KMS_CIPHERTEXT_OVERHEAD, KMS_ENVELOPE_OVERHEAD,
};
use rand::rngs::OsRng;

fn material(byte: u8) -> SecretBytes {
    SecretBytes::new(vec![byte; 32])
}

const KEY: [u8; 16] = [0x11; 16];
const OTHER_KEY: [u8; 16] = [0x22; 16];
const AAD: &[u8] = b"arn:aws:ssm:us-east-1:000000000000:parameter/prod/db|3";

#[test]
fn material_envelopes_name_their_version_and_open_only_under_it() {
    let v1 = Kek::from_material(&material(1), KEY, 1).unwrap();
    let v2 = Kek::from_material(&material(2), KEY, 2).unwrap();
    let blob = v1.seal(&mut OsRng, b"s3cr3t", AAD).unwrap();
    assert_eq!(blob.len(), KMS_ENVELOPE_OVERHEAD + 6);
    assert_eq!(envelope_kek(&blob).unwrap(), EnvelopeKek::KmsKey { key_id: KEY, version: 1 });
    assert_eq!(v1.open(&blob, AAD).unwrap().expose(), b"s3cr3t");
    assert_eq!(v2.open(&blob, AAD).unwrap_err(), CryptoError::UnknownKek(1));
    assert_eq!(v1.open(&blob, b"other record").unwrap_err(), CryptoError::Decrypt);
    // Same version number, other material (another key): authentication fails.
    let impostor = Kek::from_material(&material(9), KEY, 1).unwrap();
    assert_eq!(impostor.open(&blob, AAD).unwrap_err(), CryptoError::Decrypt);
    // Same material and version under another key id: the envelope names its key.
    let elsewhere = Kek::from_material(&material(1), OTHER_KEY, 1).unwrap();
    assert_eq!(elsewhere.open(&blob, AAD).unwrap_err(), CryptoError::UnknownKek(1));
}

#[test]
fn material_must_be_32_bytes() {
    assert_eq!(Kek::from_material(&SecretBytes::new(vec![0; 31]), KEY, 1).unwrap_err(), CryptoError::BadKeyLength);
    assert_eq!(Kek::generate_material(&mut OsRng).expose().len(), 32);
}

#[test]
fn rewrap_moves_an_envelope_to_new_material_without_touching_the_value() {
    let old = Kek::from_material(&material(1), KEY, 1).unwrap();
    let new = Kek::from_material(&material(2), KEY, 2).unwrap();
    let blob = old.seal(&mut OsRng, b"value", AAD).unwrap();
    let moved = new.rewrap(&old, &blob, AAD, &mut OsRng).unwrap();
    assert_eq!(envelope_kek(&moved).unwrap(), EnvelopeKek::KmsKey { key_id: KEY, version: 2 });
    // The value's nonce, ciphertext and tag are the very same bytes: only the data key moved.
    assert_eq!(moved[81..], blob[81..]);
    assert_eq!(moved.len(), blob.len());
    assert_eq!(new.open(&moved, AAD).unwrap().expose(), b"value");
    assert!(old.open(&moved, AAD).is_err());
    // Re-wrapping needs the right source KEK and the record's associated data.
    assert!(new.rewrap(&new, &blob, AAD, &mut OsRng).is_err());
    assert_eq!(new.rewrap(&old, &blob, b"elsewhere", &mut OsRng).unwrap_err(), CryptoError::Decrypt);
}

#[test]
fn master_key_envelopes_rewrap_onto_kms_material() {
    let keyring = Keyring::new(&MasterKey::from_bytes([7; 32]));
    let blob = keyring.seal(&mut OsRng, b"legacy", AAD).unwrap();
    assert_eq!(envelope_kek(&blob).unwrap(), EnvelopeKek::Master);
    let kms = Kek::from_material(&material(3), KEY, 1).unwrap();
    let moved = kms.rewrap(keyring.master_kek(), &blob, AAD, &mut OsRng).unwrap();
    assert_eq!(moved.len(), blob.len() + 16, "the header grows by the key id");
    assert_eq!(moved[81..], blob[65..]);
    assert_eq!(kms.open(&moved, AAD).unwrap().expose(), b"legacy");
    assert!(keyring.open(&moved, AAD).is_err());
}

#[test]
fn kms_ciphertext_round_trips_with_its_context_only() {
    let key_id = KEY;
    let kek = Kek::from_material(&material(5), KEY, 4).unwrap();
    let blob = kek.encrypt_kms(&mut OsRng, b"data key bytes", b"purpose=test").unwrap();
    assert_eq!(blob.len(), KMS_CIPHERTEXT_OVERHEAD + 14);
    assert_eq!(kms_ciphertext_key(&blob).unwrap(), (key_id, 4));
    assert_eq!(kek.decrypt_kms(&blob, b"purpose=test").unwrap().expose(), b"data key bytes");
    assert_eq!(kek.decrypt_kms(&blob, b"purpose=prod").unwrap_err(), CryptoError::Decrypt);
    assert_eq!(kek.decrypt_kms(&blob, b"").unwrap_err(), CryptoError::Decrypt);
    // The header is authenticated: naming another key id fails even under the right material.
    let mut swapped = blob.clone();
    swapped[1] ^= 1;
    assert_eq!(kek.decrypt_kms(&swapped, b"purpose=test").unwrap_err(), CryptoError::UnknownKek(4));
    let impostor = Kek::from_material(&material(5), swapped[1..17].try_into().unwrap(), 4).unwrap();
    assert_eq!(impostor.decrypt_kms(&swapped, b"purpose=test").unwrap_err(), CryptoError::Decrypt);
    // Every truncation is an error, never a panic.
    for len in 0..blob.len() {
        assert!(kek.decrypt_kms(&blob[..len], b"purpose=test").is_err(), "length {len}");
    }
    let other_version = Kek::from_material(&material(5), KEY, 5).unwrap();
    assert_eq!(other_version.decrypt_kms(&blob, b"purpose=test").unwrap_err(), CryptoError::UnknownKek(4));
}

#[test]
fn envelope_readers_reject_garbage() {
    assert_eq!(envelope_kek(&[]).unwrap_err(), CryptoError::MalformedEnvelope);
    assert_eq!(envelope_kek(&[9; 200]).unwrap_err(), CryptoError::UnknownFormat(9));
    assert_eq!(envelope_kek(&[2; 10]).unwrap_err(), CryptoError::MalformedEnvelope);
    assert_eq!(kms_ciphertext_key(&[1; 100]).unwrap_err(), CryptoError::UnknownFormat(1));
    assert_eq!(kms_ciphertext_key(&[3; 20]).unwrap_err(), CryptoError::MalformedEnvelope);
}

#[test]
fn material_envelopes_truncated_or_flipped_fail_without_panicking() {
    let kek = Kek::from_material(&material(4), KEY, 1).unwrap();
    let blob = kek.seal(&mut OsRng, b"truncate me", AAD).unwrap();
    for len in 0..blob.len() {
        assert!(kek.open(&blob[..len], AAD).is_err(), "length {len}");
        // Re-wrapping checks only the wrapped key (the value is never decrypted), so a blob cut inside
        // the value's ciphertext may re-wrap; what comes out must still refuse to open.
        if let Ok(moved) = kek.rewrap(&kek, &blob[..len], AAD, &mut OsRng) {
            assert!(kek.open(&moved, AAD).is_err(), "a re-wrapped truncation of length {len} opened");
        }
        let _ = envelope_kek(&blob[..len]);
    }
    for i in 0..blob.len() {
        let mut t = blob.clone();
        t[i] ^= 0x01;
        assert!(kek.open(&t, AAD).is_err(), "flip at byte {i} went unnoticed");
    }
}
