//! The dotenv parser against a corpus of tricky files (`dotenv_corpus/NAME.env`, with what it must give
//! in `NAME.json` beside it), and the writer's round trip over random values.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use coffer_client::dotenv;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("dotenv_corpus")
}

fn pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .expect("an array of [key, value] pairs")
        .iter()
        .map(|pair| (pair[0].as_str().unwrap().to_string(), pair[1].as_str().unwrap().to_string()))
        .collect()
}

/// Checks one corpus file; answers a description of the mismatch, if any.
fn check(env_file: &Path) -> Result<(), String> {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(env_file.with_extension("json")).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let parsed = dotenv::read_file(env_file);
    match (expected.get("entries"), expected.get("error")) {
        (Some(entries), None) => {
            let got = parsed.map_err(|e| format!("expected success, got {e}"))?;
            let got_pairs: Vec<(String, String)> = got.iter().map(|e| (e.key.clone(), e.value.to_string())).collect();
            if got_pairs != pairs(entries) {
                return Err(format!("entries differ:\n got  {got_pairs:?}\n want {:?}", pairs(entries)));
            }
            if let Some(lines) = expected.get("lines") {
                let want: Vec<usize> = serde_json::from_value(lines.clone()).map_err(|e| e.to_string())?;
                let got_lines: Vec<usize> = got.iter().map(|e| e.line).collect();
                if got_lines != want {
                    return Err(format!("lines differ: got {got_lines:?}, want {want:?}"));
                }
            }
            if let Some(last) = expected.get("last_wins") {
                let deduped: Vec<(String, String)> =
                    dotenv::last_wins(got).into_iter().map(|e| (e.key, e.value.to_string())).collect();
                if deduped != pairs(last) {
                    return Err(format!("last_wins differs: got {deduped:?}"));
                }
            }
            Ok(())
        }
        (None, Some(error)) => {
            let err = match parsed {
                Ok(entries) => return Err(format!("expected an error, got {} entries", entries.len())),
                Err(dotenv::ReadError::Parse { source, .. }) => source,
                Err(other) => return Err(format!("expected a parse error, got {other}")),
            };
            let want_line = error["line"].as_u64().ok_or("error.line missing")? as usize;
            if err.line != want_line {
                return Err(format!("error on line {}, want {want_line}: {err}", err.line));
            }
            let message = err.to_string();
            let want_text = error["contains"].as_str().ok_or("error.contains missing")?;
            if !message.contains(want_text) {
                return Err(format!("message {message:?} lacks {want_text:?}"));
            }
            for secret in expected["must_not_contain"].as_array().into_iter().flatten() {
                let secret = secret.as_str().ok_or("must_not_contain holds strings")?;
                if message.contains(secret) || format!("{err:?}").contains(secret) {
                    return Err(format!("the error shows {secret:?}: {message}"));
                }
            }
            Ok(())
        }
        _ => Err("the expectation has neither `entries` nor `error`".into()),
    }
}

#[test]
fn corpus_files_parse_as_expected() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "env"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the corpus is missing (found {} files)", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| check(f).err().map(|why| format!("{}: {why}", f.file_name().unwrap().to_string_lossy())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let err = dotenv::read_file(Path::new("/nonexistent/coffer/.env")).unwrap_err();
    assert!(matches!(err, dotenv::ReadError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/coffer/.env"), "{err}");
}

/// Characters that break naive quoting, and some that are merely unusual.
const TRICKY: &[char] = &[
    ' ', ' ', '\t', '\n', '\r', '\'', '"', '`', '\\', '#', '$', '=', '{', '}', '(', ')', ';', '&', '|', '*', '!', '\0',
    'é', '秘', '🔑', '\u{feff}', 'a', 'Z', '0', '_', '-', '.', '/', ':', 'n', 't', 'r',
];

fn random_value(rng: &mut StdRng) -> String {
    let len = rng.gen_range(0..24);
    (0..len)
        .map(|_| {
            if rng.gen_bool(0.8) {
                TRICKY[rng.gen_range(0..TRICKY.len())]
            } else {
                // Any Unicode scalar value at all.
                loop {
                    if let Some(c) = char::from_u32(rng.gen_range(0..0x11_0000)) {
                        break c;
                    }
                }
            }
        })
        .collect()
}

#[test]
fn written_files_parse_back_to_the_same_values() {
    let mut rng = StdRng::seed_from_u64(0xC0FFE2);
    for round in 0..3000 {
        let count = rng.gen_range(1..6);
        let values: Vec<(String, String)> = (0..count).map(|i| (format!("KEY_{i}"), random_value(&mut rng))).collect();
        let file = dotenv::write(values.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        let parsed = dotenv::parse(&file).unwrap_or_else(|e| panic!("round {round}: {values:?} wrote {file:?}: {e}"));
        let got: Vec<(String, String)> = parsed.into_iter().map(|e| (e.key, e.value.to_string())).collect();
        assert_eq!(got, values, "round {round}: written as {:?}", file.as_str());
    }
}

#[test]
fn hand_picked_values_round_trip() {
    let values = [
        "",
        " ",
        "  leading and trailing  ",
        "#",
        " # not a comment",
        "a #b",
        "'",
        "\"",
        "`",
        "it's \"quoted\" `three` ways",
        "\\n is not a newline",
        "line1\nline2\n",
        "\r\n",
        "$HOME ${USER} $(id)",
        "export X=1",
        "=",
        "\u{feff}bom",
        "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
    ];
    for value in values {
        let file = dotenv::write([("K", value)]).unwrap();
        let parsed = dotenv::parse(&file).unwrap();
        assert_eq!(parsed.len(), 1, "{value:?} wrote {:?}", file.as_str());
        assert_eq!(parsed[0].value.as_str(), value, "written as {:?}", file.as_str());
    }
}

#[test]
fn arbitrary_input_never_panics() {
    const PIECES: &[&str] =
        &["KEY", "=", " ", "\t", "\n", "\r\n", "\r", "'", "\"", "`", "\\", "#", "export ", "é", "\u{feff}", "x", "$"];
    let mut rng = StdRng::seed_from_u64(0xD07E);
    let mut failures = 0usize;
    for _ in 0..20_000 {
        let len = rng.gen_range(0..16);
        let text: String = (0..len).map(|_| PIECES[rng.gen_range(0..PIECES.len())]).collect();
        match dotenv::parse(&text) {
            Ok(entries) => assert!(entries.iter().all(|e| dotenv::is_valid_key(&e.key)), "{text:?}"),
            Err(e) => {
                failures += 1;
                let lines = text.replace("\r\n", "\n").replace('\r', "\n").matches('\n').count() + 1;
                assert!(e.line >= 1 && e.line <= lines, "{text:?}: line {} of {lines}", e.line);
            }
        }
    }
    assert!(failures > 0, "the generator should produce some invalid files too");
    let bytes: Vec<u8> = (0..=255u8).chain(b"A=\xc3\n\xff=1".iter().copied()).collect();
    assert!(dotenv::parse_bytes(&bytes).is_err());
}
