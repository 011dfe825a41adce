//! Coffer profiles against a real server: chosen by `--profile` or `COFFER_PROFILE`, with the documented
//! precedence (flags > environment > Coffer profile > AWS files > defaults) seen in what actually reaches
//! the server, `coffer profile list|show` never printing a secret key, unknown profiles refused.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{coffer_bin, text, TestServer};
use serde_json::Value;

/// A home directory holding a Coffer configuration file and AWS files, and nothing else from this machine.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(server: &TestServer, inline: (&str, &str)) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::create_dir_all(home.join(".config/coffer")).unwrap();
        std::fs::create_dir_all(home.join(".aws")).unwrap();
        std::fs::write(
            home.join(".config/coffer/config.toml"),
            format!(
                r#"
[profile.local]
description = "the test server, root credentials from its data directory"
endpoint = "{endpoint}"
region = "eu-west-1"
credentials_file = "{credentials}"

[profile.broken]
endpoint = "http://127.0.0.1:1"
credentials_file = "{credentials}"

[profile.inline]
endpoint = "{endpoint}"
access_key_id = "{id}"
secret_access_key = "{secret}"
"#,
                endpoint = server.endpoint,
                credentials = server.credentials_file().display(),
                id = inline.0,
                secret = inline.1,
            ),
        )
        .unwrap();
        // The AWS files point somewhere useless: a Coffer profile must win over them.
        std::fs::write(home.join(".aws/config"), "[default]\nendpoint_url = http://127.0.0.1:1\nregion = ap-south-1\n")
            .unwrap();
        std::fs::write(
            home.join(".aws/credentials"),
            "[default]\naws_access_key_id = AKIAUSELESS0000\naws_secret_access_key = useless\n",
        )
        .unwrap();
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config_file(&self) -> PathBuf {
        self.path().join(".config/coffer/config.toml")
    }

    /// `coffer ARGS` with this home and `env`, and no AWS or Coffer variables from the machine.
    fn coffer(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = Command::new(coffer_bin());
        cmd.env_clear().env("HOME", self.path()).env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("coffer runs")
    }
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn failed(out: Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    String::from_utf8(out.stderr).unwrap()
}

fn secret_names(stdout: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(stdout).unwrap();
    doc["SecretList"].as_array().unwrap().iter().map(|s| s["Name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn profiles_choose_the_server_and_follow_the_documented_precedence() {
    let server = TestServer::start();
    let (root_id, root_secret) = server.root_keys();
    let home = Home::new(&server, (&root_id, &root_secret));

    // --profile: endpoint, region and credentials from the Coffer profile (the AWS files would fail).
    ok(home.coffer(&[], &["secret", "create", "app/token", "--value", "v", "--profile", "local"]));
    // COFFER_PROFILE chooses the same.
    let listed = ok(home.coffer(&[("COFFER_PROFILE", "local")], &["secret", "list"]));
    assert_eq!(secret_names(&listed), ["app/token"]);
    // Inline keys work as well as a credentials file.
    ok(home.coffer(&[], &["secret", "describe", "app/token", "--profile", "inline", "--region", "eu-west-1"]));

    // The profile's region is the one used: the secret lives in eu-west-1, not in us-east-1.
    let elsewhere = ok(home.coffer(&[], &["secret", "list", "--profile", "local", "--region", "us-east-1"]));
    assert!(secret_names(&elsewhere).is_empty(), "a flag beats the profile's region");
    let by_env = ok(home.coffer(&[("COFFER_PROFILE", "local"), ("AWS_REGION", "us-east-1")], &["secret", "list"]));
    assert!(secret_names(&by_env).is_empty(), "the environment beats the profile's region");

    // Endpoint: a profile pointing nowhere is overridden by the flag, and by the environment.
    let err = failed(home.coffer(&[], &["secret", "list", "--profile", "broken"]));
    assert!(err.contains("hint: is the server running at http://127.0.0.1:1?"), "{err}");
    ok(home.coffer(&[], &["secret", "list", "--profile", "broken", "--endpoint-url", &server.endpoint]));
    ok(home.coffer(&[("COFFER_PROFILE", "broken"), ("AWS_ENDPOINT_URL", &server.endpoint)], &["secret", "list"]));

    // Without any profile the AWS files apply (and point nowhere here).
    let err = failed(home.coffer(&[], &["secret", "list"]));
    assert!(err.contains("cannot reach http://127.0.0.1:1"), "{err}");
    // Environment credentials beat a profile chosen by COFFER_PROFILE, not one chosen by --profile.
    let env_keys = [("AWS_ACCESS_KEY_ID", "AKIAWRONG0000000"), ("AWS_SECRET_ACCESS_KEY", "wrong")];
    let err = failed(home.coffer(&[("COFFER_PROFILE", "local"), env_keys[0], env_keys[1]], &["secret", "list"]));
    assert!(err.contains("UnrecognizedClientException") || err.contains("InvalidClientTokenId"), "{err}");
    ok(home.coffer(&env_keys, &["secret", "list", "--profile", "local"]));

    // Unknown profiles are errors, not a silent fall-through.
    let err = failed(home.coffer(&[], &["secret", "list", "--profile", "nope"]));
    assert!(err.contains("no profile \"nope\""), "{err}");
    let err = failed(home.coffer(&[("COFFER_PROFILE", "nope")], &["secret", "list"]));
    assert!(err.contains("COFFER_PROFILE names the profile \"nope\""), "{err}");
    // COFFER_CONFIG names the file instead of the default place.
    let elsewhere = home.path().join("other.toml");
    std::fs::copy(home.config_file(), &elsewhere).unwrap();
    std::fs::remove_file(home.config_file()).unwrap();
    let listed =
        ok(home.coffer(&[("COFFER_CONFIG", elsewhere.to_str().unwrap())], &["secret", "list", "--profile", "local"]));
    assert_eq!(secret_names(&listed), ["app/token"]);
}

#[test]
fn profile_list_and_show_explain_without_printing_secret_keys() {
    let server = TestServer::start();
    let (root_id, root_secret) = server.root_keys();
    let home = Home::new(&server, (&root_id, &root_secret));
    let last4 = &root_id[root_id.len() - 4..];

    let table = ok(home.coffer(&[("COFFER_PROFILE", "local")], &["profile", "list"]));
    for name in ["local", "broken", "inline", "default"] {
        assert!(table.lines().any(|l| l.split_whitespace().any(|w| w == name)), "{name} in\n{table}");
    }
    assert!(table.lines().any(|l| l.starts_with('*') && l.contains("local")), "the active profile is marked:\n{table}");
    assert!(table.contains(&format!("****{last4}")), "{table}");
    let json: Value = serde_json::from_str(&ok(home.coffer(&[], &["profile", "list", "-o", "json"]))).unwrap();
    let profiles = json["Profiles"].as_array().unwrap();
    assert_eq!(profiles.iter().filter(|p| p["From"] == "coffer").count(), 3);
    assert_eq!(profiles.iter().filter(|p| p["From"] == "aws").count(), 1);
    assert_eq!(json["ConfigFile"], home.config_file().display().to_string());

    let shown: Value = serde_json::from_str(&ok(home.coffer(
        &[("AWS_REGION", "us-west-2")],
        &["profile", "show", "broken", "--endpoint-url", &server.endpoint, "-o", "json"],
    )))
    .unwrap();
    assert_eq!(shown["Profile"], "broken");
    assert_eq!(shown["Endpoint"]["Value"], server.endpoint.as_str());
    assert_eq!(shown["Endpoint"]["Source"], "flag --endpoint-url");
    assert_eq!(shown["Region"]["Value"], "us-west-2");
    assert_eq!(shown["Region"]["Source"], "environment variable AWS_REGION");
    assert_eq!(shown["AccessKeyId"]["Value"], format!("****{last4}"));
    assert!(shown["AccessKeyId"]["Source"].as_str().unwrap().contains("root-credentials"), "{shown}");
    assert_eq!(shown["SecretAccessKey"], "set (not shown)");

    let table = ok(home.coffer(&[], &["profile", "show", "--profile", "local"]));
    assert!(table.contains("eu-west-1") && table.contains("Coffer profile local"), "{table}");

    // Nothing printed anywhere holds the secret key (from the credentials file or written inline).
    for args in [
        &["profile", "list"][..],
        &["profile", "list", "-o", "json"],
        &["profile", "show", "inline"],
        &["profile", "show", "inline", "-o", "json"],
    ] {
        let out = home.coffer(&[], args);
        assert!(!text(&out).contains(&root_secret), "coffer {args:?} printed the secret key");
    }
    // The file holds a secret key and others may read it: a warning says so.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(home.config_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = home.coffer(&[], &["profile", "list"]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"), "{}", text(&out));
        std::fs::set_permissions(home.config_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = home.coffer(&[], &["profile", "list"]);
        assert!(!String::from_utf8_lossy(&out.stderr).contains("chmod 600"), "{}", text(&out));
    }
}
