//! `coffer audit verify` against a real server's data: after a clean run it passes; then each kind of
//! tampering — done directly on the SQLite file, as someone with the database would — is caught and the
//! first bad record is named.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{coffer_bin, TestServer};

/// Runs a server, makes requests (each one an event), stops it (a digest is signed at shutdown), and
/// returns the data directory (kept alive by the returned server value).
fn served_data() -> TestServer {
    let mut server = TestServer::start_with(&["--audit-flush-interval-ms", "0"], &[]);
    for i in 0..6 {
        let out = server
            .cli()
            .args(["secret", "create", &format!("verify/s{i}"), "--value", "synthetic-value"])
            .output()
            .expect("coffer runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = server.cli().args(["secret", "get", &format!("verify/s{i}")]).output().expect("coffer runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    server.stop();
    server
}

/// A copy of the data directory to tamper with.
fn copy_of(data_dir: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let copy = tmp.path().join("data");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for entry in std::fs::read_dir(data_dir).expect("data dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), copy.join(entry.file_name())).expect("copy");
        }
    }
    (tmp, copy)
}

fn verify(data_dir: &Path, public_key: &Path) -> (bool, String) {
    let out = Command::new(coffer_bin())
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .arg("--public-key")
        .arg(public_key)
        .output()
        .expect("coffer runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn tamper(data_dir: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(data_dir.join("coffer.db")).expect("open");
    conn.execute_batch(sql).expect("tamper");
}

fn count(data_dir: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(data_dir.join("coffer.db")).expect("open");
    conn.query_row(sql, [], |r| r.get(0)).expect("count")
}

#[test]
fn verify_passes_on_intact_data_and_names_each_kind_of_tampering() {
    let server = served_data();
    // The verifier's key comes from outside the data (here: a copy taken before any tampering).
    let keys = tempfile::tempdir().expect("temp dir");
    let key = keys.path().join("audit.pem");
    std::fs::copy(server.data_dir.join("audit-public-key.pem"), &key).expect("public key exported");
    let events = count(&server.data_dir, "SELECT count(*) FROM audit_events");
    assert!(events >= 12, "every request left an event ({events})");
    assert!(count(&server.data_dir, "SELECT count(*) FROM audit_digests") >= 1, "a digest was signed at shutdown");

    let (ok, text) = verify(&server.data_dir, &key);
    assert!(ok, "intact data verifies: {text}");
    assert!(text.contains("OK"), "{text}");

    // Altered: one record's body changed.
    let (_t, copy) = copy_of(&server.data_dir);
    tamper(&copy, "UPDATE audit_events SET body = CAST(replace(CAST(body AS TEXT), 'verify/s2', 'verify/sX') AS BLOB) WHERE seq = 5");
    let (ok, text) = verify(&copy, &key);
    assert!(!ok, "{text}");
    assert!(text.contains("altered") && text.contains("seq 5"), "{text}");

    // Removed: one record deleted.
    let (_t, copy) = copy_of(&server.data_dir);
    tamper(&copy, "DELETE FROM audit_events WHERE seq = 4");
    let (ok, text) = verify(&copy, &key);
    assert!(!ok, "{text}");
    assert!(text.contains("removed") && text.contains("seq 4"), "{text}");

    // Inserted: a forged record after seq 3, the later ones renumbered to make room.
    let (_t, copy) = copy_of(&server.data_dir);
    tamper(
        &copy,
        "UPDATE audit_events SET seq = seq + 1000 WHERE seq > 3;
         UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000;
         INSERT INTO audit_events (seq, time_ms, max_time, event_id, prev_hash, body)
           SELECT 4, time_ms, max_time, 'forged', randomblob(32), body FROM audit_events WHERE seq = 3;",
    );
    let (ok, text) = verify(&copy, &key);
    assert!(!ok, "{text}");
    assert!(text.contains("inserted") && text.contains("seq 4"), "{text}");

    // Reordered: two records swapped.
    let (_t, copy) = copy_of(&server.data_dir);
    tamper(
        &copy,
        "UPDATE audit_events SET seq = -1 WHERE seq = 6;
         UPDATE audit_events SET seq = 6 WHERE seq = 7;
         UPDATE audit_events SET seq = 7 WHERE seq = -1;",
    );
    let (ok, text) = verify(&copy, &key);
    assert!(!ok, "{text}");
    assert!(text.contains("reordered") && text.contains("seq 6"), "{text}");

    // The signed tail cut off.
    let (_t, copy) = copy_of(&server.data_dir);
    tamper(&copy, &format!("DELETE FROM audit_events WHERE seq > {}", events - 2));
    let (ok, text) = verify(&copy, &key);
    assert!(!ok, "{text}");
    assert!(text.contains("removed"), "{text}");

    // A digest's signature altered.
    let (_t, copy) = copy_of(&server.data_dir);
    tamper(&copy, "UPDATE audit_digests SET signature = zeroblob(64) WHERE number = 1");
    let (ok, text) = verify(&copy, &key);
    assert!(!ok, "{text}");

    // Another key does not verify this server's digests.
    let other = keys.path().join("other.pem");
    std::fs::write(
        &other,
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n",
    )
    .expect("write");
    let (ok, text) = verify(&server.data_dir, &other);
    assert!(!ok, "{text}");
}
