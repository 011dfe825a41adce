//! `coffer storage migrate` between the embedded SQLite file and PostgreSQL, both ways, with the real
//! server before and after: everything written through the AWS APIs on one backend is served by a
//! node on the other (values, access keys, the audit log and its lookups), the copied audit chain
//! verifies offline with the same public key, and a target that holds data is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use coffer_testpg::{Auth, PrivatePostgres};
use common::{coffer, text, TestServer};

/// A synthetic master key the installation keeps across backends (base64 of 32 bytes).
const MASTER_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

fn env_key_args() -> [&'static str; 2] {
    ["--master-key-source", "env"]
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn migrate(from: &str, to: &str) -> std::process::Output {
    std::process::Command::new(common::coffer_bin())
        .args(["storage", "migrate", "--from", from, "--to", to])
        .output()
        .unwrap()
}

fn verify(storage: &str, public_key: &std::path::Path) -> std::process::Output {
    std::process::Command::new(common::coffer_bin())
        .args(["audit", "verify", "--storage", storage, "--public-key"])
        .arg(public_key)
        .output()
        .unwrap()
}

/// What every copy must still serve: the secret's two versions, the parameter, the IAM user's key.
fn assert_serves_everything(server: &TestServer, user_key: &(String, String)) {
    let current = ok(&coffer(server, &["secret", "get", "/prod/app/db"]));
    assert_eq!(current.trim(), "second-synthetic-value");
    let previous = ok(&coffer(server, &["secret", "get", "/prod/app/db", "--version-stage", "AWSPREVIOUS"]));
    assert_eq!(previous.trim(), "first-synthetic-value");
    let param = ok(&coffer(server, &["param", "get", "/prod/app/url"]));
    assert_eq!(param.trim(), "https://synthetic.example");
    // The IAM user's access key (sealed under the master key) still signs requests.
    let who = common::coffer_as(server, Some((&user_key.0, &user_key.1, None)), &["sts", "whoami"]);
    assert!(ok(&who).contains("user/migrator"), "{}", text(&who));
}

#[test]
fn migrate_sqlite_to_postgres_and_back_keeps_data_keys_and_audit_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let source_dir = tmp.path().join("sqlite-node");
    let env = [("COFFER_MASTER_KEY", MASTER_KEY)];
    let mut server = TestServer::spawn(&source_dir, &env_key_args(), &env).unwrap();
    ok(&coffer(&server, &["secret", "create", "/prod/app/db", "--value", "first-synthetic-value"]));
    ok(&coffer(&server, &["secret", "put", "/prod/app/db", "--value", "second-synthetic-value"]));
    ok(&coffer(
        &server,
        &["param", "put", "/prod/app/url", "--value", "https://synthetic.example", "--type", "SecureString"],
    ));
    ok(&coffer(&server, &["iam", "user", "create", "migrator"]));
    let key: serde_json::Value =
        serde_json::from_str(&ok(&coffer(&server, &["iam", "access-key", "create", "--user", "migrator", "--json"])))
            .unwrap();
    let user_key = (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string(),
        key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_string(),
    );
    assert_serves_everything(&server, &user_key);
    server.stop();
    let public_key = source_dir.join("audit-public-key.pem");

    // SQLite → PostgreSQL.
    let pg = PrivatePostgres::start(Auth::Trust);
    pg.wait_ready();
    let pg_url = pg.url("postgres");
    let out = migrate(source_dir.to_str().unwrap(), &pg_url);
    let report = ok(&out);
    assert!(report.contains("copied 1 secrets (2 versions)"), "{report}");
    assert!(report.contains("verified:"), "{report}");
    let checked = verify(&pg_url, &public_key);
    assert!(ok(&checked).contains("OK: the audit log is intact"), "{}", text(&checked));

    // A node on PostgreSQL with the same master key serves everything, and finds the events recorded
    // on SQLite by resource name (the lookup index was rebuilt in the copy).
    let pg_dir = tmp.path().join("pg-node");
    let mut pg_node = TestServer::spawn(&pg_dir, &["--storage", &pg_url, "--master-key-source", "env"], &env).unwrap();
    let root = server.root_keys();
    let as_root = |args: &[&str]| common::coffer_as(&pg_node, Some((&root.0, &root.1, None)), args);
    let get = as_root(&["secret", "get", "/prod/app/db"]);
    assert_eq!(ok(&get).trim(), "second-synthetic-value");
    let events = ok(&as_root(&["audit", "search", "--resource-name", "/prod/app/db", "--output", "json"]));
    assert!(events.contains("PutSecretValue"), "{events}");
    assert!(events.contains("CreateSecret"), "{events}");
    let who = common::coffer_as(&pg_node, Some((&user_key.0, &user_key.1, None)), &["sts", "whoami"]);
    assert!(ok(&who).contains("user/migrator"), "{}", text(&who));
    pg_node.stop();

    // A target that holds an installation is refused, and left as it was.
    let refused = migrate(source_dir.to_str().unwrap(), &pg_url);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("not empty"), "{}", text(&refused));

    // PostgreSQL → a new SQLite data directory, then a node on it.
    let back_dir = tmp.path().join("back-node");
    let back_url = format!("sqlite://{}", back_dir.join("coffer.db").display());
    let report = ok(&migrate(&pg_url, &back_url));
    assert!(report.contains("verified:"), "{report}");
    let checked = verify(&back_url, &public_key);
    assert!(ok(&checked).contains("OK: the audit log is intact"), "{}", text(&checked));
    std::fs::copy(source_dir.join("root-credentials"), back_dir.join("root-credentials")).unwrap();
    let back = TestServer::spawn(&back_dir, &env_key_args(), &env).unwrap();
    assert_serves_everything(&back, &user_key);
}
