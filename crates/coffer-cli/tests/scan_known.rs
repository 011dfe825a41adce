//! `coffer scan --known` against a real server: the values a team stores — a human-chosen password no
//! pattern rule can catch, a previous secret version, a SecureString parameter — are found in any format,
//! for what the caller may read and nothing else, without a value ever reaching the output.

#![allow(clippy::unwrap_used)]

mod common;

use common::{coffer, coffer_as, text, TestServer};

fn ok(out: &std::process::Output) {
    assert!(out.status.success(), "{}", text(out));
}

/// (rule, file, description) of each finding of a `--format jsonl` run.
fn findings(out: &std::process::Output) -> Vec<(String, String, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("rule"), s("file"), s("description"))
        })
        .collect()
}

#[test]
fn known_values_are_found_for_what_the_caller_may_read() {
    let server = TestServer::start();
    // Human-chosen values: no pattern rule recognizes them.
    let old_db = "correct horse battery 42";
    let new_db = "Tr0ub4dor&3-kangaroo";
    let api_pw = "Summer2024!rocks";
    let other = "blue-meadow-lantern-77";
    ok(&coffer(&server, &["secret", "create", "app/db", "--value", old_db]));
    ok(&coffer(&server, &["secret", "put", "app/db", "--value", new_db]));
    ok(&coffer(&server, &["param", "put", "/prod/api/password", "--type", "SecureString", "--value", api_pw]));
    ok(&coffer(&server, &["secret", "create", "billing/token", "--value", other]));

    let dir = tempfile::tempdir().unwrap();
    let files = [
        (".env", format!("DB_PASSWORD={new_db}\nAPI_PASSWORD=\"{api_pw}\"\n")),
        ("config.json", format!("{{\"legacy\": {{\"password\": \"{old_db}\"}}}}\n")),
        ("deploy.yml", format!("billing:\n  token: {other}\n")),
        ("notes.md", format!("connect with postgres://app:{new_db}@db.internal:5432/app\n")),
        ("clean.txt", "nothing to see: correct horse battery 43\n".to_string()),
    ];
    for (name, content) in &files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let scan_dir = dir.path().to_str().unwrap();

    // Root may read everything: every value, each where it is.
    let out = coffer(&server, &["scan", "--known", "--format", "jsonl", scan_dir]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let mut found: Vec<(String, String)> = findings(&out)
        .into_iter()
        .filter(|(rule, _, _)| rule == "coffer-known-secret")
        .map(|(_, file, description)| (file, description))
        .collect();
    found.sort();
    let expected_names = [
        (".env", "secret app/db (AWSCURRENT)"),
        (".env", "parameter /prod/api/password"),
        ("config.json", "secret app/db (AWSPREVIOUS)"),
        ("deploy.yml", "secret billing/token (AWSCURRENT)"),
        ("notes.md", "secret app/db (AWSCURRENT)"),
    ];
    assert_eq!(found.len(), expected_names.len(), "{found:?}\n{}", text(&out));
    for (file, name) in expected_names {
        assert!(found.iter().any(|(f, d)| f == file && d.contains(name)), "{file} {name}: {found:?}");
    }
    for value in [old_db, new_db, api_pw, other] {
        assert!(!String::from_utf8_lossy(&out.stdout).contains(value), "a value reached the output");
        assert!(!String::from_utf8_lossy(&out.stderr).contains(value), "a value reached the output");
    }
    // Fingerprinting is not a retrieval: a secret no client read still has no LastAccessedDate.
    let described = coffer(&server, &["secret", "describe", "billing/token", "--output", "json"]);
    ok(&described);
    let described: serde_json::Value = serde_json::from_slice(&described.stdout).unwrap();
    assert_eq!(described["Name"], "billing/token", "{described}");
    assert!(described.get("LastAccessedDate").is_none(), "{described}");
    // Without --known nothing here looks like a secret to the pattern rules... except what they catch;
    // the known values are never reported as known.
    let plain = coffer(&server, &["scan", "--format", "jsonl", scan_dir]);
    assert!(findings(&plain).iter().all(|(rule, _, _)| rule != "coffer-known-secret"), "{}", text(&plain));

    // A user who may read app/* and /prod/* only: billing/token stays unknown to its scan.
    ok(&coffer(&server, &["iam", "user", "create", "scanner"]));
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:*:*:secret:app/*"},
        {"Effect":"Allow","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter/prod/*"}]}"#;
    ok(&coffer(&server, &["iam", "inline", "put", "--user", "scanner", "read-app", "--document", policy]));
    let key = coffer(&server, &["iam", "access-key", "create", "--user", "scanner", "--json"]);
    ok(&key);
    let key: serde_json::Value = serde_json::from_slice(&key.stdout).unwrap();
    let (id, secret) =
        (key["AccessKey"]["AccessKeyId"].as_str().unwrap(), key["AccessKey"]["SecretAccessKey"].as_str().unwrap());
    let out = coffer_as(&server, Some((id, secret, None)), &["scan", "--known", "--format", "jsonl", scan_dir]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let descriptions: Vec<String> =
        findings(&out).into_iter().filter(|(rule, _, _)| rule == "coffer-known-secret").map(|(_, _, d)| d).collect();
    assert_eq!(descriptions.len(), 4, "{descriptions:?}");
    assert!(descriptions.iter().all(|d| !d.contains("billing/token")), "{descriptions:?}");
}
