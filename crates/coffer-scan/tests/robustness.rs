//! No input makes the scanner panic or crawl: random bytes, invalid UTF-8, huge lines, pathological
//! repetitions of rule keywords and key markers.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NAMES: &[&str] = &["a.py", "a.json", ".env", "a.ipynb", "secret.yaml", "-", "noext", "a.js"];

#[test]
fn random_bytes_never_panic() {
    let scanner = coffer_scan::Scanner::new().unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let alphabet: &[u8] = b"\"'`\\=:+.-_ \n\t{}[]()<>$%#/aAkKeEyYsSpP0123456789xXoObBgGhH|!@&*;,";
    let keywords: &[&str] = &[
        "key",
        "secret",
        "token",
        "password",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
        "kind: Secret\ndata:\n",
        "ghp_",
        "eyJ",
        "postgres://",
        "xoxb-",
        "sk_live_",
        "AKIA",
        ":AA",
        "twilio",
        "service_account",
        "\\n",
        "\\\"",
    ];
    for round in 0..3000 {
        let len = rng.gen_range(0..2000);
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            match rng.gen_range(0..10) {
                0 => data.extend(keywords[rng.gen_range(0..keywords.len())].as_bytes()),
                1 => data.push(rng.gen()),
                _ => data.push(alphabet[rng.gen_range(0..alphabet.len())]),
            }
        }
        let _ = scanner.scan_bytes(NAMES[round % NAMES.len()], &data);
    }
}

#[test]
fn invalid_utf8_and_huge_lines() {
    let scanner = coffer_scan::Scanner::new().unwrap();
    let mut data = b"api_key = \"".to_vec();
    data.extend([0xff, 0xfe, 0xc3, 0x28, b'a', 0xa0, 0xa1]);
    data.extend(b"\"\npassword = \"\xe2\x82\xa1\xf0\x90\x8c\xbcSecret9!\"\n");
    let _ = scanner.scan_bytes("a.py", &data);
    // A 20 MB single line of keywords and quotes.
    let line = "token=\"a\"+\"b\" key: ".repeat(1_000_000);
    let start = Instant::now();
    let _ = scanner.scan_bytes("bundle.js", line.as_bytes());
    assert!(start.elapsed() < Duration::from_secs(60), "{:?}", start.elapsed());
}

#[test]
fn pathological_repetitions_stay_linear() {
    let scanner = coffer_scan::Scanner::new().unwrap();
    for unit in [
        "-----BEGIN RSA PRIVATE KEY-----\n",
        "password = \"a\" +\n",
        "kind: Secret\ndata:\n  password: aGVsbG8=\n",
        "\"x\\\"\\n\" ",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.",
    ] {
        let data = unit.repeat(2_000_000 / unit.len());
        let start = Instant::now();
        let _ = scanner.scan_bytes("a.yaml", data.as_bytes());
        eprintln!("{unit:?}: {:?}", start.elapsed());
        assert!(start.elapsed() < Duration::from_secs(60), "{unit:?}: {:?}", start.elapsed());
    }
}

#[test]
fn binary_files_are_skipped() {
    let scanner = coffer_scan::Scanner::new().unwrap();
    let mut data = b"\x89PNG\r\n\x1a\n\0\0".to_vec();
    data.extend(b"password = \"Hunter#42xyz\"\n"); // coffer:allow (a fixture)
    assert!(scanner.scan_bytes("image.dat", &data).is_empty());
}
