//! The CLI's everyday polish against a real server: `coffer secret history` (every version, its labels,
//! who created it from the audit log, and what a caller without audit access sees), shell completions,
//! errors that say what to do next, and the exit statuses `coffer --help` documents.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use common::{coffer, coffer_as, coffer_bin, text, TestServer};
use serde_json::Value;

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An IAM user allowed `actions` on everything, and its access key.
fn user_allowed(server: &TestServer, name: &str, actions: &[&str]) -> (String, String) {
    ok(coffer(server, &["iam", "user", "create", name]));
    if !actions.is_empty() {
        let document = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        })
        .to_string();
        ok(coffer(server, &["iam", "policy", "create", &format!("{name}-policy"), "--document", &document]));
        ok(coffer(server, &["iam", "attach", "--user", name, &format!("{name}-policy")]));
    }
    let key: Value =
        serde_json::from_str(&ok(coffer(server, &["iam", "access-key", "create", "--user", name, "--json"]))).unwrap();
    (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string(),
        key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_string(),
    )
}

#[test]
fn history_lists_every_version_with_its_labels_and_creator() {
    let server = TestServer::start();
    let canary = "canary-history-0b3e";
    ok(coffer(&server, &["secret", "create", "/prod/api/token", "--value", &format!("{canary}-1")]));
    ok(coffer(&server, &["secret", "put", "/prod/api/token", "--value", &format!("{canary}-2")]));
    ok(coffer(&server, &["secret", "put", "/prod/api/token", "--value", &format!("{canary}-3")]));

    let out = coffer(&server, &["secret", "history", "/prod/api/token", "-o", "json"]);
    let history: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(history["Name"], "/prod/api/token");
    let versions = history["Versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3, "the unlabelled first version is listed too: {history:#}");
    let stages: Vec<Vec<&str>> = versions
        .iter()
        .map(|v| v["VersionStages"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect())
        .collect();
    assert_eq!(stages, [vec!["AWSCURRENT"], vec!["AWSPREVIOUS"], vec![]], "newest first");
    let calls: Vec<&str> = versions.iter().map(|v| v["CreatedBy"]["EventName"].as_str().unwrap()).collect();
    assert_eq!(calls, ["PutSecretValue", "PutSecretValue", "CreateSecret"]);
    let (root_id, _) = server.root_keys();
    for v in versions {
        assert!(v["CreatedBy"]["Principal"].as_str().unwrap().ends_with(":root"), "{v}");
        assert_eq!(v["CreatedBy"]["AccessKeyId"], root_id.as_str());
        assert!(v["CreatedDate"].as_f64().unwrap() > 1.0e9);
    }

    let table = ok(coffer(&server, &["secret", "history", "/prod/api/token", "-o", "table"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("VERSION-ID") && lines[0].contains("CREATED-BY"), "{table}");
    assert!(lines[1].contains("AWSCURRENT") && lines[1].contains("PutSecretValue"), "{table}");
    assert!(lines[3].contains("CreateSecret"), "{table}");
    assert!(!table.contains(canary));

    // A caller who may list versions but not read the audit log gets the versions, and a note.
    let (id, secret) = user_allowed(&server, "viewer", &["secretsmanager:ListSecretVersionIds"]);
    let out = coffer_as(&server, Some((&id, &secret, None)), &["secret", "history", "/prod/api/token", "-o", "json"]);
    let note = stderr(&out);
    let history: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(history["Versions"].as_array().unwrap().len(), 3);
    assert!(history["Versions"][0].get("CreatedBy").is_none(), "{history:#}");
    assert!(note.contains("cloudtrail:LookupEvents"), "{note}");
    // --no-audit does not ask.
    let out = coffer(&server, &["secret", "history", "/prod/api/token", "--no-audit", "-o", "json"]);
    let history: Value = serde_json::from_str(&ok(out)).unwrap();
    assert!(history["Versions"][0].get("CreatedBy").is_none());
}

#[test]
fn completions_are_generated_for_every_shell_and_know_the_commands() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = Command::new(coffer_bin()).args(["completions", shell]).output().unwrap();
        let script = ok(out);
        assert!(script.len() > 1000, "{shell}: {} bytes", script.len());
        for word in ["secret", "param", "profile", "history", "completions", "endpoint-url"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let out = Command::new(coffer_bin()).args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error: {}", text(&out));
}

#[test]
fn errors_say_what_to_do_next_and_exit_statuses_are_documented() {
    let help = ok(Command::new(coffer_bin()).arg("--help").output().unwrap());
    assert!(help.contains("Exit status:") && help.contains("2  usage error"), "{help}");
    assert!(help.contains("COFFER_PROFILE"), "{help}");

    // Usage errors exit 2.
    let out = Command::new(coffer_bin()).args(["secret", "frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let server = TestServer::start();
    // Nothing listening: where, and how to start it.
    let out = coffer(&server, &["secret", "list", "--endpoint-url", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("hint: is the server running at http://127.0.0.1:1? start it with `coffer server`"),
        "{}",
        text(&out)
    );

    // No credentials anywhere: how to give some.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(coffer_bin())
        .env_clear()
        .env("HOME", home.path())
        .args(["secret", "list", "--endpoint-url", &server.endpoint])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no credentials found") && err.contains("AWS_ACCESS_KEY_ID"), "{err}");
    assert!(err.contains("coffer profile list"), "{err}");

    // Access denied: who may not do what on which resource, and how to find out why.
    ok(coffer(&server, &["secret", "create", "/prod/db", "--value", "canary-denied-71"]));
    let (id, secret) = user_allowed(&server, "nobody", &[]);
    let out = coffer_as(&server, Some((&id, &secret, None)), &["secret", "get", "/prod/db"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("hint: arn:aws:iam::"), "{err}");
    assert!(err.contains(":user/nobody may not secretsmanager:GetSecretValue on arn:aws:secretsmanager:"), "{err}");
    assert!(err.contains("coffer iam simulate --principal"), "{err}");
    assert!(!text(&out).contains("canary-denied"));

    // Not found: check the name.
    let out = coffer(&server, &["secret", "get", "/prod/nope"]);
    assert!(stderr(&out).contains("hint: check the name (coffer secret list)"), "{}", text(&out));
}
