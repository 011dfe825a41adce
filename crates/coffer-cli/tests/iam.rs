//! End to end: `coffer iam ...` and `coffer sts ...` against the real server, over the AWS query
//! protocol — users, access keys, managed and inline policies, attachment, the simulator, groups,
//! roles, MFA devices, and temporary credentials used for the next call.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{coffer, coffer_as, text, TestServer};
use hmac::{Hmac, Mac};
use serde_json::Value;

const READ_SECRETS: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"*"}]}"#;

/// Runs and expects success; answers stdout.
fn ok(server: &TestServer, args: &[&str]) -> String {
    let out = coffer(server, args);
    assert!(out.status.success(), "coffer {args:?} failed:\n{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn json(server: &TestServer, args: &[&str]) -> Value {
    let stdout = ok(server, args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("coffer {args:?} printed no JSON ({e}):\n{stdout}"))
}

/// Runs and expects failure; answers stderr.
fn fails(server: &TestServer, args: &[&str]) -> String {
    let out = coffer(server, args);
    assert!(!out.status.success(), "coffer {args:?} should have failed:\n{}", text(&out));
    String::from_utf8(out.stderr).unwrap()
}

/// `export NAME='value'` lines → (id, secret, token).
fn parse_exports(stdout: &str) -> (String, String, String) {
    let get = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .map(|v| v.trim_matches('\'').to_string())
            .unwrap_or_else(|| panic!("no {name} in:\n{stdout}"))
    };
    (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"), get("AWS_SESSION_TOKEN"))
}

fn base32_decode(s: &str) -> Vec<u8> {
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {s}"),
        };
        buffer = (buffer << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    out
}

/// RFC 6238 TOTP, SHA-1, six digits, 30-second steps.
fn totp(seed: &[u8], step: u64) -> String {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(seed).unwrap();
    mac.update(&step.to_be_bytes());
    let d = mac.finalize().into_bytes();
    let o = (d[19] & 0x0f) as usize;
    let v = u32::from_be_bytes([d[o] & 0x7f, d[o + 1], d[o + 2], d[o + 3]]);
    format!("{:06}", v % 1_000_000)
}

fn current_step() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 30
}

#[test]
fn users_keys_policies_attachment_simulation_and_whoami() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();

    // Root first.
    let me = json(&server, &["sts", "whoami"]);
    let account = me["Account"].as_str().unwrap().to_string();
    assert!(me["Arn"].as_str().unwrap().starts_with(&format!("arn:aws:iam::{account}:")), "{me}");

    // A user, tagged.
    let created = json(&server, &["iam", "user", "create", "alice", "--path", "/team/", "--tag", "team=backend"]);
    let alice_arn = created["User"]["Arn"].as_str().unwrap().to_string();
    assert_eq!(alice_arn, format!("arn:aws:iam::{account}:user/team/alice"));
    assert_eq!(created["User"]["UserName"], "alice");
    assert!(created["User"]["UserId"].as_str().unwrap().starts_with("AIDA"));
    assert_eq!(ok(&server, &["iam", "user", "get", "alice", "-o", "raw", "--query", "User.Arn"]).trim(), alice_arn);
    ok(&server, &["iam", "user", "tag", "alice", "env=prod", "tier=1"]);
    ok(&server, &["iam", "user", "untag", "alice", "team", "tier"]);
    let got = json(&server, &["iam", "user", "get", "alice"]);
    assert_eq!(got["User"]["Tags"], serde_json::json!([{"Key": "env", "Value": "prod"}]), "{got}");
    let table = ok(&server, &["iam", "user", "list", "-o", "table"]);
    assert!(table.lines().next().unwrap().starts_with("UserName"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("alice ") && l.contains(&alice_arn)), "{table}");
    let listed = json(&server, &["iam", "user", "list", "--path-prefix", "/team/"]);
    assert_eq!(listed["Users"].as_array().unwrap().len(), 1);

    // Not found: the AWS code and a hint.
    let err = fails(&server, &["iam", "user", "get", "nobody"]);
    assert!(err.contains("NoSuchEntity") && err.contains("hint:"), "{err}");

    // Access keys: the secret once, with a warning; JSON for scripts.
    let out = coffer(&server, &["iam", "access-key", "create", "--user", "alice"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{stdout}"))
    };
    let (key1, secret1) = (field("AccessKeyId"), field("SecretAccessKey"));
    assert!(key1.starts_with("AKIA") && secret1.len() >= 40, "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only time"), "{}", text(&out));
    let second = json(&server, &["iam", "access-key", "create", "--user", "alice", "--json"]);
    let key2 = second["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string();
    assert_eq!(second["AccessKey"]["Status"], "Active");
    assert!(second["AccessKey"]["SecretAccessKey"].as_str().unwrap().len() >= 40);
    ok(&server, &["iam", "access-key", "update", &key2, "--status", "Inactive", "--user", "alice"]);
    let keys = json(&server, &["iam", "access-key", "list", "--user", "alice"]);
    let keys = keys["AccessKeyMetadata"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let status_of = |id: &str| keys.iter().find(|k| k["AccessKeyId"] == id).unwrap()["Status"].clone();
    assert_eq!(status_of(&key1), "Active");
    assert_eq!(status_of(&key2), "Inactive");
    assert!(!serde_json::to_string(&keys).unwrap().contains("SecretAccessKey"));
    ok(&server, &["iam", "access-key", "delete", &key2, "--user", "alice"]);

    // The new key works: whoami as alice.
    let alice = Some((key1.as_str(), secret1.as_str(), None));
    let out = coffer_as(&server, alice, &["sts", "whoami"]);
    assert!(out.status.success(), "{}", text(&out));
    let who: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(who["Arn"], alice_arn.as_str());
    assert_eq!(who["Account"], account.as_str());
    // Alice may do nothing yet.
    let out = coffer_as(&server, alice, &["iam", "user", "list"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("AccessDenied"), "{}", text(&out));

    // A managed policy from a file, then a second version inline; get by name or ARN.
    let file = dir.path().join("read.json");
    std::fs::write(&file, READ_SECRETS).unwrap();
    let policy =
        json(&server, &["iam", "policy", "create", "read-secrets", "--document", &format!("@{}", file.display())]);
    let policy_arn = policy["Policy"]["Arn"].as_str().unwrap().to_string();
    assert_eq!(policy_arn, format!("arn:aws:iam::{account}:policy/read-secrets"));
    assert_eq!(policy["Policy"]["DefaultVersionId"], "v1");
    let by_name = json(&server, &["iam", "policy", "get", "read-secrets"]);
    assert_eq!(by_name["Policy"]["Arn"], policy_arn.as_str());
    let v2_doc = READ_SECRETS.replace("\"secretsmanager:DescribeSecret\"", "\"secretsmanager:ListSecrets\"");
    let v2 = json(&server, &["iam", "policy", "create-version", &policy_arn, "--document", &v2_doc, "--set-default"]);
    assert_eq!(v2["PolicyVersion"]["VersionId"], "v2");
    assert_eq!(v2["PolicyVersion"]["IsDefaultVersion"], true);
    let versions = json(&server, &["iam", "policy", "versions", &policy_arn]);
    let mut ids: Vec<&str> =
        versions["Versions"].as_array().unwrap().iter().map(|v| v["VersionId"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["v1", "v2"]);
    // Documents arrive URL-encoded and are shown as JSON objects.
    let v1 = json(&server, &["iam", "policy", "get-version", &policy_arn, "v1"]);
    assert_eq!(v1["PolicyVersion"]["Document"], serde_json::from_str::<Value>(READ_SECRETS).unwrap(), "{v1}");
    let current = json(&server, &["iam", "policy", "get-version", "read-secrets"]);
    assert_eq!(current["PolicyVersion"]["VersionId"], "v2");
    assert_eq!(current["PolicyVersion"]["Document"]["Statement"][0]["Action"][1], "secretsmanager:ListSecrets");
    ok(&server, &["iam", "policy", "set-default", &policy_arn, "v1"]);
    ok(&server, &["iam", "policy", "delete-version", &policy_arn, "v2"]);
    let local = ok(&server, &["iam", "policy", "list", "--scope", "Local", "-o", "table"]);
    assert!(local.lines().any(|l| l.starts_with("read-secrets ") && l.contains(&policy_arn)), "{local}");

    // Attach to alice; the simulator shows what it allows and which statement decides.
    ok(&server, &["iam", "attach", "--user", "alice", &policy_arn]);
    let attached = json(&server, &["iam", "attached", "--user", "alice"]);
    assert_eq!(attached["AttachedPolicies"][0]["PolicyArn"], policy_arn.as_str(), "{attached}");
    let sim = ok(
        &server,
        &[
            "iam",
            "simulate",
            "--principal",
            &alice_arn,
            "--action",
            "secretsmanager:GetSecretValue",
            "--action",
            "secretsmanager:DeleteSecret",
            "--resource",
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf",
        ],
    );
    let mut lines = sim.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ACTION", "RESOURCE", "DECISION", "MATCHED-STATEMENTS"], "{sim}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let row = |action: &str| rows.iter().find(|r| r[0] == action).unwrap_or_else(|| panic!("{action}: {sim}"));
    assert_eq!(row("secretsmanager:GetSecretValue")[2], "allowed", "{sim}");
    assert!(row("secretsmanager:GetSecretValue")[3].contains("read-secrets"), "{sim}");
    assert_eq!(row("secretsmanager:DeleteSecret")[2], "implicitDeny", "{sim}");
    assert_eq!(row("secretsmanager:DeleteSecret")[3], "-", "{sim}");
    let sim_json = json(
        &server,
        &["iam", "simulate", "--principal", &alice_arn, "--action", "secretsmanager:GetSecretValue", "--json"],
    );
    assert_eq!(sim_json["EvaluationResults"][0]["EvalDecision"], "allowed", "{sim_json}");

    // A custom policy, with a deny and a context key.
    let deny_file = dir.path().join("deny.json");
    std::fs::write(
        &deny_file,
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"},
            {"Effect":"Deny","Action":"secretsmanager:DeleteSecret","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}]}"#,
    )
    .unwrap();
    let deny = deny_file.display().to_string();
    let sim = ok(
        &server,
        &[
            "iam",
            "simulate",
            "--policy",
            &deny,
            "--action",
            "secretsmanager:DeleteSecret",
            "--action",
            "secretsmanager:PutSecretValue",
            "--context",
            "aws:MultiFactorAuthPresent=false",
        ],
    );
    let decision = |action: &str| {
        sim.lines().find(|l| l.starts_with(action)).and_then(|l| l.split_whitespace().nth(2)).unwrap_or_default()
    };
    assert_eq!(decision("secretsmanager:DeleteSecret"), "explicitDeny", "{sim}");
    assert_eq!(decision("secretsmanager:PutSecretValue"), "allowed", "{sim}");
    let sim = ok(
        &server,
        &[
            "iam",
            "simulate",
            "--policy",
            &deny,
            "--action",
            "secretsmanager:DeleteSecret",
            "--context",
            "aws:MultiFactorAuthPresent=true",
        ],
    );
    assert!(sim.lines().nth(1).unwrap().contains("allowed"), "{sim}");

    // Now alice can read a secret, and still not delete it.
    ok(&server, &["secret", "create", "app/db", "--value", "hunter2"]);
    let out = coffer_as(&server, alice, &["secret", "get", "app/db"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hunter2");
    let out = coffer_as(&server, alice, &["secret", "delete", "app/db", "--force"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("AccessDenied"), "{}", text(&out));

    // Tear down: a user with keys and policies cannot go; detach and delete first.
    let err = fails(&server, &["iam", "user", "delete", "alice"]);
    assert!(err.contains("DeleteConflict"), "{err}");
    ok(&server, &["iam", "detach", "--user", "alice", "read-secrets"]);
    assert_eq!(json(&server, &["iam", "attached", "--user", "alice"])["AttachedPolicies"], serde_json::json!([]));
    ok(&server, &["iam", "access-key", "delete", &key1, "--user", "alice"]);
    ok(&server, &["iam", "user", "delete", "alice"]);
    ok(&server, &["iam", "policy", "delete", &policy_arn]);
    assert!(fails(&server, &["iam", "policy", "get", &policy_arn]).contains("NoSuchEntity"));
    // The deleted key no longer signs.
    let out = coffer_as(&server, alice, &["sts", "whoami"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("InvalidClientTokenId"),
        "{}",
        text(&out)
    );
}

#[test]
fn groups_roles_and_inline_policies() {
    let server = TestServer::start();
    let account = json(&server, &["sts", "whoami"])["Account"].as_str().unwrap().to_string();
    ok(&server, &["iam", "user", "create", "bob"]);
    ok(&server, &["iam", "user", "create", "carol"]);

    // Groups and members.
    let group = json(&server, &["iam", "group", "create", "ops", "--path", "/teams/"]);
    assert_eq!(group["Group"]["Arn"], format!("arn:aws:iam::{account}:group/teams/ops"));
    ok(&server, &["iam", "group", "add-user", "ops", "bob"]);
    ok(&server, &["iam", "group", "add-user", "ops", "carol"]);
    let got = json(&server, &["iam", "group", "get", "ops"]);
    assert_eq!(got["Group"]["GroupName"], "ops");
    let mut members: Vec<&str> =
        got["Users"].as_array().unwrap().iter().map(|u| u["UserName"].as_str().unwrap()).collect();
    members.sort_unstable();
    assert_eq!(members, ["bob", "carol"]);
    let table = ok(&server, &["iam", "group", "get", "ops", "-o", "table"]);
    assert!(table.contains("GroupName") && table.lines().any(|l| l.starts_with("carol ")), "{table}");
    let bobs = json(&server, &["iam", "group", "list", "--user", "bob"]);
    assert_eq!(bobs["Groups"][0]["GroupName"], "ops");
    ok(&server, &["iam", "group", "remove-user", "ops", "carol"]);
    assert_eq!(json(&server, &["iam", "group", "get", "ops"])["Users"].as_array().unwrap().len(), 1);
    assert!(json(&server, &["iam", "group", "list", "--user", "carol"])["Groups"].as_array().unwrap().is_empty());

    // Inline policies on a user and a group.
    ok(&server, &["iam", "inline", "put", "--user", "bob", "read", "--document", READ_SECRETS]);
    ok(&server, &["iam", "inline", "put", "--group", "ops", "also-read", "--document", READ_SECRETS]);
    let names = json(&server, &["iam", "inline", "list", "--user", "bob"]);
    assert_eq!(names["PolicyNames"], serde_json::json!(["read"]));
    let got = json(&server, &["iam", "inline", "get", "--group", "ops", "also-read"]);
    assert_eq!(got["GroupName"], "ops");
    assert_eq!(got["PolicyName"], "also-read");
    assert_eq!(got["PolicyDocument"], serde_json::from_str::<Value>(READ_SECRETS).unwrap());
    // Bob is allowed through both his own policy and his group's.
    let bob_arn = format!("arn:aws:iam::{account}:user/bob");
    let sim = ok(&server, &["iam", "simulate", "--principal", &bob_arn, "--action", "secretsmanager:GetSecretValue"]);
    assert!(sim.lines().nth(1).unwrap().contains("allowed"), "{sim}");
    ok(&server, &["iam", "inline", "delete", "--user", "bob", "read"]);
    assert_eq!(json(&server, &["iam", "inline", "list", "--user", "bob"])["PolicyNames"], serde_json::json!([]));
    let err = fails(&server, &["iam", "group", "delete", "ops"]);
    assert!(err.contains("DeleteConflict"), "{err}");
    ok(&server, &["iam", "inline", "delete", "--group", "ops", "also-read"]);
    ok(&server, &["iam", "group", "remove-user", "ops", "bob"]);
    ok(&server, &["iam", "group", "delete", "ops"]);
    // Exactly one of --user/--group/--role.
    let err = fails(&server, &["iam", "inline", "list", "--user", "bob", "--role", "r"]);
    assert!(err.contains("cannot be used with"), "{err}");

    // Roles with a trust policy (decoded on the way back), tags.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let role = json(
        &server,
        &[
            "iam",
            "role",
            "create",
            "deployer",
            "--trust-policy",
            &trust,
            "--description",
            "CI deploys",
            "--tag",
            "team=ci",
        ],
    );
    assert_eq!(role["Role"]["Arn"], format!("arn:aws:iam::{account}:role/deployer"));
    let got = json(&server, &["iam", "role", "get", "deployer"]);
    assert_eq!(got["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Action"], "sts:AssumeRole", "{got}");
    assert_eq!(got["Role"]["Description"], "CI deploys");
    ok(&server, &["iam", "role", "tag", "deployer", "env=prod"]);
    let tags = json(&server, &["iam", "role", "get", "deployer", "--query", "Role.Tags"]);
    assert_eq!(tags.as_array().unwrap().len(), 2, "{tags}");
    let roles = ok(&server, &["iam", "role", "list", "-o", "table"]);
    assert!(roles.lines().any(|l| l.starts_with("deployer ")), "{roles}");
    ok(&server, &["iam", "role", "delete", "deployer"]);
    assert!(fails(&server, &["iam", "role", "get", "deployer"]).contains("NoSuchEntity"));
}

#[test]
fn assumed_roles_and_mfa_sessions_sign_the_next_call() {
    let server = TestServer::start();
    let account = json(&server, &["sts", "whoami"])["Account"].as_str().unwrap().to_string();

    // A user who may assume roles (roots may not, as in AWS).
    ok(&server, &["iam", "user", "create", "dave"]);
    let key = json(&server, &["iam", "access-key", "create", "--user", "dave", "--json"]);
    let (dave_id, dave_secret) = (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string(),
        key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_string(),
    );
    let dave = Some((dave_id.as_str(), dave_secret.as_str(), None));
    let may_assume = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","iam:GetRole"],"Resource":"*"}]}"#;
    ok(&server, &["iam", "inline", "put", "--user", "dave", "assume", "--document", may_assume]);
    let out = coffer_as(&server, dave, &["sts", "assume-role", "nosuchrole", "s1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && (err.contains("AccessDenied") || err.contains("NoSuchEntity")), "{}", text(&out));

    // A role the account may assume, allowed to read secrets.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    ok(&server, &["iam", "role", "create", "reader", "--trust-policy", &trust]);
    ok(&server, &["iam", "inline", "put", "--role", "reader", "read", "--document", READ_SECRETS]);
    ok(&server, &["secret", "create", "app/db", "--value", "hunter2"]);

    // Export lines by default (the role by name resolves in the caller's account).
    let out = coffer_as(&server, dave, &["sts", "assume-role", "reader", "ci-run-1", "--duration", "900"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.lines().all(|l| l.starts_with("export AWS_")), "{stdout}");
    let (id, secret, token) = parse_exports(&stdout);
    assert!(id.starts_with("ASIA"), "{id}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("assumed-role/reader/ci-run-1"), "{}", text(&out));
    let session = Some((id.as_str(), secret.as_str(), Some(token.as_str())));
    // The session token is sent (X-Amz-Security-Token) and signed: the next call is the role's.
    let out = coffer_as(&server, session, &["sts", "whoami"]);
    assert!(out.status.success(), "{}", text(&out));
    let who: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(who["Arn"], format!("arn:aws:sts::{account}:assumed-role/reader/ci-run-1"));
    let out = coffer_as(&server, session, &["secret", "get", "app/db"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hunter2");
    let out = coffer_as(&server, session, &["secret", "delete", "app/db", "--force"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("AccessDenied"), "{}", text(&out));
    // Without the token the temporary key is refused.
    let out = coffer_as(&server, Some((id.as_str(), secret.as_str(), None)), &["sts", "whoami"]);
    assert!(!out.status.success(), "{}", text(&out));

    // JSON for machines.
    let role_arn = format!("arn:aws:iam::{account}:role/reader");
    let out = coffer_as(&server, dave, &["sts", "assume-role", &role_arn, "ci-run-2", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(j["Credentials"]["SessionToken"].as_str().is_some_and(|t| !t.is_empty()), "{j}");
    assert!(j["Credentials"]["Expiration"].as_str().is_some(), "{j}");
    assert_eq!(j["AssumedRoleUser"]["Arn"], format!("arn:aws:sts::{account}:assumed-role/reader/ci-run-2"));

    // A virtual MFA device for dave, and a session proven with it.
    let out = coffer(&server, &["iam", "mfa", "create", "dave-phone"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("only time"), "{}", text(&out));
    let field = |name: &str| stdout.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap();
    let (serial, seed, uri) = (field("SerialNumber"), field("Base32StringSeed"), field("OtpauthUri"));
    assert_eq!(serial, format!("arn:aws:iam::{account}:mfa/dave-phone"));
    assert!(uri.starts_with("otpauth://totp/Coffer:dave-phone@") && uri.contains(&format!("secret={seed}")), "{uri}");
    let seed = base32_decode(&seed);
    let json_device = json(&server, &["iam", "mfa", "create", "spare", "--json"]);
    assert!(json_device["VirtualMFADevice"]["Base32StringSeed"].as_str().is_some_and(|s| s.len() >= 32));
    assert!(json_device["VirtualMFADevice"]["OtpauthUri"].as_str().unwrap().starts_with("otpauth://totp/"));

    let now = current_step();
    let (c1, c2) = (totp(&seed, now - 2), totp(&seed, now - 1));
    let err = fails(&server, &["iam", "mfa", "enable", "--user", "dave", &serial, &c2, &c1]);
    assert!(err.contains("InvalidAuthenticationCode"), "{err}");
    ok(&server, &["iam", "mfa", "enable", "--user", "dave", &serial, &c1, &c2]);
    let mine = json(&server, &["iam", "mfa", "list", "--user", "dave"]);
    assert_eq!(mine["MFADevices"][0]["SerialNumber"], serial.as_str(), "{mine}");
    assert!(mine["MFADevices"][0]["EnableDate"].as_str().is_some());
    let all = ok(&server, &["iam", "mfa", "list", "-o", "table"]);
    assert!(all.lines().any(|l| l.contains("dave-phone") && l.contains("dave")), "{all}");
    assert!(all.lines().any(|l| l.contains("mfa/spare") && l.contains(" - ")), "{all}");

    let code = totp(&seed, current_step());
    let out = coffer_as(&server, dave, &["sts", "session-token", "--mfa-serial", &serial, "--mfa-code", &code]);
    assert!(out.status.success(), "{}", text(&out));
    let (sid, ssecret, stoken) = parse_exports(&String::from_utf8(out.stdout).unwrap());
    let out = coffer_as(&server, Some((&sid, &ssecret, Some(&stoken))), &["sts", "whoami"]);
    assert!(out.status.success(), "{}", text(&out));
    let who: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(who["Arn"], format!("arn:aws:iam::{account}:user/dave"));
    // A code works once.
    let out =
        coffer_as(&server, dave, &["sts", "session-token", "--mfa-serial", &serial, "--mfa-code", &code, "--json"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("AccessDenied"), "{}", text(&out));
    // --mfa-serial needs --mfa-code.
    let err = fails(&server, &["sts", "session-token", "--mfa-serial", &serial]);
    assert!(err.contains("--mfa-code"), "{err}");
}

#[test]
fn secrets_stay_out_of_the_server_log() {
    let server = TestServer::start_with(&[], &[("COFFER_LOG", "debug")]);
    ok(&server, &["iam", "user", "create", "erin"]);
    let key = json(&server, &["iam", "access-key", "create", "--user", "erin", "--json"]);
    let secret = key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_string();
    let device = json(&server, &["iam", "mfa", "create", "erin-phone", "--json"]);
    let seed = device["VirtualMFADevice"]["Base32StringSeed"].as_str().unwrap().to_string();
    let creds = json(&server, &["sts", "session-token", "--json"]);
    let token = creds["Credentials"]["SessionToken"].as_str().unwrap().to_string();
    let logs = server.log_text();
    for s in [&secret, &seed, &token] {
        assert!(!logs.contains(s.as_str()), "a secret reached the log");
    }
}
