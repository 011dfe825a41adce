//! `coffer validate` against a real server: present, missing, unreadable (denied), pattern, JSON keys and age
//! checks from `--require` and a manifest; exit codes; no value in the output.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{coffer, coffer_as, text, TestServer};

fn ok(out: std::process::Output) -> std::process::Output {
    assert!(out.status.success(), "{}", text(&out));
    out
}

#[test]
fn validate_reports_each_requirement_and_fails_the_pipeline_on_any_miss() {
    let server = TestServer::start();
    let canary = "synthetic-canary-7c1e55";
    ok(coffer(
        &server,
        &[
            "secret",
            "create",
            "/prod/backend/database_password",
            "--value",
            &format!(r#"{{"username":"app","password":"{canary}-db"}}"#),
        ],
    ));
    ok(coffer(
        &server,
        &["param", "put", "/prod/backend/API_URL", "--value", "https://api.example.test", "--type", "String"],
    ));

    // Everything present: exit 0, a line per item.
    let out = ok(coffer(
        &server,
        &[
            "validate",
            "--require",
            "/prod/backend/database_password",
            "--require",
            "param:/prod/backend/API_URL",
            "--require",
            "/prod/backend/API_URL",
        ],
    ));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("ok      /prod/backend/database_password (secret, readable"), "{shown}");
    assert!(shown.contains("ok      /prod/backend/API_URL (parameter, readable"), "{shown}");
    assert!(shown.contains("3 of 3 required items ok"), "{shown}");

    // A missing one fails the run and is named.
    let out = coffer(
        &server,
        &["validate", "--require", "/prod/backend/database_password", "--require", "/prod/backend/MISSING"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("FAILED  /prod/backend/MISSING: no secret or parameter of this name"), "{shown}");
    assert!(shown.contains("1 of 2 required items ok"), "{shown}");

    // A manifest: patterns, JSON keys, ages.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("secrets.toml");
    std::fs::write(
        &manifest,
        r#"
[[secret]]
name = "/prod/backend/database_password"
json_keys = ["username", "password", "host"]

[[secret]]
name = "/prod/backend/database_password"
json_keys = ["username", "password"]
max_age_days = 90

[[parameter]]
name = "/prod/backend/API_URL"
pattern = "^https://"

[[parameter]]
name = "/prod/backend/API_URL"
pattern = "^http://localhost"
"#,
    )
    .unwrap();
    let out = coffer(&server, &["validate", "--manifest", manifest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("FAILED  /prod/backend/database_password: the secret lacks the JSON keys host"), "{shown}");
    assert!(shown.contains("FAILED  /prod/backend/API_URL: the parameter does not match the pattern"), "{shown}");
    assert!(shown.contains("2 of 4 required items ok"), "{shown}");
    assert!(!text(&out).contains(canary) && !text(&out).contains("api.example.test"), "no value in the output");

    // A caller that may not read the secret: the denial is reported, not hidden.
    ok(coffer(&server, &["iam", "user", "create", "pipeline"]));
    let key = ok(coffer(&server, &["iam", "access-key", "create", "--user", "pipeline", "--json"]));
    let key: serde_json::Value = serde_json::from_slice(&key.stdout).unwrap();
    let id = key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string();
    let secret = key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_string();
    let out = coffer_as(
        &server,
        Some((&id, &secret, None)),
        &["validate", "--require", "secret:/prod/backend/database_password"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("FAILED  /prod/backend/database_password: AccessDeniedException"),
        "{}",
        text(&out)
    );

    // Nothing asked: a usage error.
    let out = coffer(&server, &["validate"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("nothing to validate"), "{}", text(&out));
}
