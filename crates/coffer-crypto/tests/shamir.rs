//! Sealing the master key with Shamir key shares: splitting, recognising shares, rekeying.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coffer_crypto::{check_share_parameters, KeyShare, Keyring, MasterKey, SealConfig, ShamirError, ShareSet};
use rand::rngs::OsRng;

fn master() -> MasterKey {
    MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
}

fn collect(config: &SealConfig, shares: &[&KeyShare]) -> ShareSet {
    let mut set = ShareSet::new();
    for share in shares {
        set.add(config, (*share).clone()).unwrap();
    }
    set
}

#[test]
fn any_threshold_of_the_shares_opens_the_master_key() {
    let (config, shares) = SealConfig::create(&mut OsRng, &master(), 5, 3).unwrap();
    assert_eq!(shares.len(), 5);
    assert_eq!((config.shares, config.threshold, config.share_hashes.len()), (5, 3, 5));
    config.validate().unwrap();
    // Every share is distinct, its text round-trips, and the stored configuration holds no share.
    for (i, share) in shares.iter().enumerate() {
        let text = share.to_base64();
        assert_eq!(text.len(), 48);
        assert_eq!(&KeyShare::from_base64(text.expose_str().unwrap()).unwrap(), share);
        assert!(shares[i + 1..].iter().all(|other| other != share));
        assert!(!serde_json::to_string(&config).unwrap().contains(text.expose_str().unwrap()));
    }
    let expected = master().to_base64();
    for a in 0..5 {
        for b in a + 1..5 {
            for c in b + 1..5 {
                let set = collect(&config, &[&shares[a], &shares[b], &shares[c]]);
                assert_eq!(set.len(), 3);
                assert_eq!(config.open(&set).unwrap().to_base64(), expected, "shares {a},{b},{c}");
            }
        }
    }
    // More than the threshold works too.
    let all = collect(&config, &shares.iter().collect::<Vec<_>>());
    assert_eq!(config.open(&all).unwrap().to_base64(), expected);
}

#[test]
fn fewer_shares_than_the_threshold_do_not_open() {
    let (config, shares) = SealConfig::create(&mut OsRng, &master(), 5, 3).unwrap();
    let set = collect(&config, &[&shares[0], &shares[4]]);
    assert_eq!(config.open(&set).unwrap_err(), ShamirError::NotEnoughShares { have: 2, need: 3 });
    assert_eq!(config.open(&ShareSet::new()).unwrap_err(), ShamirError::NotEnoughShares { have: 0, need: 3 });
}

#[test]
fn a_single_share_of_one_works() {
    let (config, shares) = SealConfig::create(&mut OsRng, &master(), 1, 1).unwrap();
    let set = collect(&config, &[&shares[0]]);
    assert_eq!(config.open(&set).unwrap().to_base64(), master().to_base64());
}

#[test]
fn parameters_are_checked() {
    for (n, t) in [(0, 0), (5, 0), (5, 1), (3, 4), (256, 2), (1, 2), (u32::MAX, 3)] {
        assert_eq!(
            check_share_parameters(n, t).unwrap_err(),
            ShamirError::InvalidParameters { shares: n, threshold: t },
            "{n}/{t}"
        );
        assert!(SealConfig::create(&mut OsRng, &master(), n, t).is_err());
    }
    assert_eq!(check_share_parameters(1, 1).unwrap(), (1, 1));
    assert_eq!(check_share_parameters(255, 255).unwrap(), (255, 255));
    assert_eq!(check_share_parameters(255, 2).unwrap(), (255, 2));
}

#[test]
fn tampered_garbage_and_foreign_shares_are_refused_and_not_counted() {
    let (config, shares) = SealConfig::create(&mut OsRng, &master(), 5, 3).unwrap();
    let (_, foreign) = SealConfig::create(&mut OsRng, &master(), 5, 3).unwrap();
    let mut set = ShareSet::new();
    assert_eq!(set.add(&config, shares[0].clone()).unwrap(), 1);

    // A share with one bit flipped is still well-formed, but its hash is not in the configuration.
    let mut raw = STANDARD.decode(shares[1].to_base64().expose()).unwrap();
    raw[10] ^= 0x01;
    let tampered = KeyShare::from_base64(&STANDARD.encode(&raw)).unwrap();
    assert_eq!(set.add(&config, tampered).unwrap_err(), ShamirError::UnknownShare);
    // A share of another initialization, even at the same position.
    assert_eq!(set.add(&config, foreign[1].clone()).unwrap_err(), ShamirError::UnknownShare);
    // The same share again.
    assert_eq!(set.add(&config, shares[0].clone()).unwrap_err(), ShamirError::DuplicateShare);
    assert_eq!(set.len(), 1);
    assert_eq!(set.progress(&config), 1);

    for garbage in ["", "not base64!", "AAAA", &STANDARD.encode([1u8; 33]), &STANDARD.encode([1u8; 35])] {
        assert_eq!(KeyShare::from_base64(garbage).unwrap_err(), ShamirError::MalformedShare, "{garbage:?}");
    }
    // Unknown format byte, and x = 0 (the secret's own point).
    let mut raw = STANDARD.decode(shares[2].to_base64().expose()).unwrap();
    raw[0] = 2;
    assert_eq!(KeyShare::from_base64(&STANDARD.encode(&raw)).unwrap_err(), ShamirError::MalformedShare);
    raw[0] = 1;
    raw[1] = 0;
    assert_eq!(KeyShare::from_base64(&STANDARD.encode(&raw)).unwrap_err(), ShamirError::MalformedShare);
    // Whitespace around the text is fine.
    let padded = format!("  {}\n", shares[2].to_base64().expose_str().unwrap());
    assert_eq!(set.add(&config, KeyShare::from_base64(&padded).unwrap()).unwrap(), 2);
    assert_eq!(set.add(&config, shares[3].clone()).unwrap(), 3);
    assert_eq!(config.open(&set).unwrap().to_base64(), master().to_base64());

    set.clear();
    assert!(set.is_empty());
}

#[test]
fn rekey_keeps_the_master_key_and_invalidates_old_shares() {
    let (config, old) = SealConfig::create(&mut OsRng, &master(), 5, 3).unwrap();
    let set = collect(&config, &[&old[1], &old[2], &old[3]]);
    let (rekeyed, new) = config.rekey(&mut OsRng, &set, 3, 2).unwrap();
    assert_eq!((rekeyed.shares, rekeyed.threshold, new.len()), (3, 2, 3));
    assert_ne!(rekeyed.sealed_master_key, config.sealed_master_key);

    let new_set = collect(&rekeyed, &[&new[0], &new[2]]);
    assert_eq!(rekeyed.open(&new_set).unwrap().to_base64(), master().to_base64());
    for share in &old {
        assert_eq!(rekeyed.identify(share).unwrap_err(), ShamirError::UnknownShare);
        assert_eq!(ShareSet::new().add(&rekeyed, share.clone()).unwrap_err(), ShamirError::UnknownShare);
    }
    // A set collected against the old configuration does not open the new one.
    assert!(matches!(rekeyed.open(&set), Err(ShamirError::NotEnoughShares { .. })));
    // Rekeying needs a quorum and valid parameters.
    let short = collect(&config, &[&old[0], &old[1]]);
    assert_eq!(config.rekey(&mut OsRng, &short, 3, 2).unwrap_err(), ShamirError::NotEnoughShares { have: 2, need: 3 });
    assert_eq!(
        config.rekey(&mut OsRng, &set, 2, 3).unwrap_err(),
        ShamirError::InvalidParameters { shares: 2, threshold: 3 }
    );
}

#[test]
fn a_set_restarts_when_the_configuration_changes() {
    let (config, old) = SealConfig::create(&mut OsRng, &master(), 3, 2).unwrap();
    let mut set = ShareSet::new();
    set.add(&config, old[0].clone()).unwrap();
    let (rekeyed, new) = config.rekey(&mut OsRng, &collect(&config, &[&old[0], &old[1]]), 3, 2).unwrap();
    assert_eq!(set.progress(&rekeyed), 0);
    assert_eq!(set.add(&rekeyed, new[1].clone()).unwrap(), 1);
    assert_eq!(set.add(&rekeyed, new[2].clone()).unwrap(), 2);
    assert_eq!(rekeyed.open(&set).unwrap().to_base64(), master().to_base64());
}

#[test]
fn the_sealed_master_key_round_trips_through_json_and_opens_only_under_its_unseal_key() {
    let (config, shares) = SealConfig::create(&mut OsRng, &master(), 3, 2).unwrap();
    let json = serde_json::to_vec(&config).unwrap();
    let text = String::from_utf8(json.clone()).unwrap();
    for key in ["\"format\":1", "\"shares\":3", "\"threshold\":2", "\"share_hashes\"", "\"sealed_master_key\""] {
        assert!(text.contains(key), "{text}");
    }
    let back: SealConfig = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, config);
    let master_back = back.open(&collect(&back, &[&shares[0], &shares[1]])).unwrap();
    // The opened key is the master key: it verifies a key check made with the original.
    let check = Keyring::new(&master()).key_check(&mut OsRng);
    Keyring::new(&master_back).verify_key_check(&check).unwrap();

    // A configuration whose share hashes are genuine but whose sealed key was sealed under another
    // unseal key (spliced from another initialization): the rebuilt key does not open it.
    let (other, _) = SealConfig::create(&mut OsRng, &master(), 3, 2).unwrap();
    let spliced = SealConfig { sealed_master_key: other.sealed_master_key.clone(), ..config.clone() };
    let set = collect(&spliced, &[&shares[0], &shares[2]]);
    assert_eq!(spliced.open(&set).unwrap_err(), ShamirError::WrongUnsealKey);

    // A flipped bit in the sealed key is caught by AES-GCM.
    let mut raw = STANDARD.decode(&config.sealed_master_key).unwrap();
    raw[20] ^= 0x80;
    let altered = SealConfig { sealed_master_key: STANDARD.encode(&raw), ..config.clone() };
    let set = collect(&altered, &[&shares[1], &shares[2]]);
    assert_eq!(altered.open(&set).unwrap_err(), ShamirError::WrongUnsealKey);
}

#[test]
fn malformed_configurations_are_errors_not_panics() {
    let (config, shares) = SealConfig::create(&mut OsRng, &master(), 3, 2).unwrap();
    let cases = [
        SealConfig { format: 9, ..config.clone() },
        SealConfig { shares: 4, ..config.clone() },
        SealConfig { threshold: 0, ..config.clone() },
        SealConfig { threshold: 7, ..config.clone() },
        SealConfig { share_hashes: vec!["AAAA".into(); 3], ..config.clone() },
        SealConfig { share_hashes: vec!["!!".into(); 3], ..config.clone() },
        SealConfig { sealed_master_key: "AAAA".into(), ..config.clone() },
        SealConfig { sealed_master_key: "%%%".into(), ..config.clone() },
    ];
    for bad in cases {
        assert!(bad.validate().is_err(), "{bad:?}");
        assert!(bad.identify(&shares[0]).is_err());
        assert!(ShareSet::new().add(&bad, shares[0].clone()).is_err());
    }
    assert_eq!(SealConfig { format: 9, ..config.clone() }.validate().unwrap_err(), ShamirError::UnknownFormat(9));
}

#[test]
fn shares_and_sets_are_redacted() {
    let (config, shares) = SealConfig::create(&mut OsRng, &master(), 2, 2).unwrap();
    let text = shares[0].to_base64().expose_str().unwrap().to_string();
    let set = collect(&config, &[&shares[0]]);
    let debug = format!("{:?} {:?} {:?}", shares[0], set, config);
    assert!(!debug.contains(&text));
    assert!(!debug.contains(&text[..12]));
    assert!(debug.contains("redacted"));
}
