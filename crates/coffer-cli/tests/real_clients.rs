//! The seeds' commands and snippets, run by real AWS clients that no one here wrote — the aws CLI v1 and boto3 from
//! PyPI, the JS SDK v3 from npm — against the real `coffer` server binary.
//!
//! `tests/clients/setup.sh` installs the pinned clients once (into `<target>/coffer-clients`, or `$COFFER_CLIENTS_DIR`);
//! each test starts a fresh server and runs one script of `tests/clients/` with the server's AWS environment. If the
//! clients cannot be installed (no network), the tests fail: they never skip.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::Value;

/// How long one client script may run before it is killed and the test fails (a hung client must not hang CI).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long installing the clients may take on a fresh machine.
const SETUP_TIMEOUT: Duration = Duration::from_secs(1200);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// Where the clients live: `$COFFER_CLIENTS_DIR`, else `coffer-clients` in this build's target directory (found from
/// the `coffer` binary's path, so it is right whatever `CARGO_TARGET_DIR` or config chose).
fn clients_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("COFFER_CLIENTS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let bin = Path::new(common::coffer_bin());
    let target = bin.parent().and_then(Path::parent).expect("target directory above the coffer binary");
    target.join("coffer-clients")
}

/// Runs a command in its own process group, killing the whole group if it outlives `timeout`.
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill").arg("-KILL").arg(format!("-{}", child.id())).status();
            let _ = child.kill();
            let _ = child.wait();
            let out = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned();
            let err = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
            return Err(format!("{cmd:?} did not finish within {timeout:?}\n--- stdout\n{out}\n--- stderr\n{err}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() })
}

/// Installs the clients once per test process (parallel tests share the result; `setup.sh` itself is idempotent
/// across runs and locks against other processes). Panics — fails the test — if the install fails.
fn setup() -> PathBuf {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let dir = clients_dir();
            let mut cmd = Command::new("bash");
            cmd.arg(repo_root().join("tests/clients/setup.sh")).env("COFFER_CLIENTS_DIR", &dir);
            let out = run_with_timeout(cmd, SETUP_TIMEOUT)?;
            if !out.status.success() {
                return Err(format!(
                    "{}\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(dir)
        })
        .clone()
        .unwrap_or_else(|e| panic!("installing the real AWS clients (tests/clients/setup.sh) failed: {e}"))
}

/// A command with the server's AWS environment, the virtualenv first on PATH and node's SDK findable.
fn client_command(server: &TestServer, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let dir = setup();
    let path = std::env::join_paths(
        std::iter::once(dir.join("venv/bin"))
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("PATH");
    let mut cmd = Command::new(program);
    cmd.current_dir(dir.join("node"))
        .env("PATH", path)
        .env("NODE_PATH", dir.join("node/node_modules"))
        .env("COFFER_CLIENTS_DIR", &dir)
        .env("PYTHONUNBUFFERED", "1");
    // Nothing from the caller's own AWS setup may leak in: the server's environment only.
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "AWS_DEFAULT_OUTPUT",
        "AWS_PAGER",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in server.aws_env() {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a command built by `client_command`; on failure panics with its output and the server's log.
fn run_ok(server: &TestServer, cmd: Command) -> String {
    let what = format!("{cmd:?}");
    let out =
        run_with_timeout(cmd, SCRIPT_TIMEOUT).unwrap_or_else(|e| panic!("{e}\n--- server log\n{}", server.log_text()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({})\n--- stdout\n{stdout}\n--- stderr\n{}\n--- server log\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    stdout
}

fn script(name: &str) -> PathBuf {
    repo_root().join("tests/clients").join(name)
}

/// Runs one seed script against a fresh server and checks it reached its last line.
fn run_script(program: &str, name: &str, done: &str) {
    let server = TestServer::start();
    let mut path = script(name);
    if name.ends_with(".mjs") {
        // ES modules ignore NODE_PATH: node finds the SDK relative to the script, so run a copy beside node_modules.
        let copy = setup().join("node").join(name);
        std::fs::copy(&path, &copy).expect("copy the script next to node_modules");
        path = copy;
    }
    let mut cmd = client_command(&server, program);
    cmd.arg(&path);
    let out = run_ok(&server, cmd);
    assert!(out.contains(done), "{name} exited 0 without its final line {done:?}:\n{out}");
}

#[test]
fn seed001_aws_cli() {
    run_script("bash", "seed001_cli.sh", "seed 001: all checks passed");
}

#[test]
fn seed002_aws_cli() {
    run_script("bash", "seed002_cli.sh", "seed 002: all checks passed");
}

#[test]
fn seed001_boto3() {
    let python = setup().join("venv/bin/python");
    run_script(python.to_str().expect("utf-8 path"), "seed001_boto3.py", "seed 001 (boto3): all checks passed");
}

#[test]
fn seed000_parameter_store_aws_cli() {
    run_script("bash", "seed000_ssm_cli.sh", "seed 000 (Parameter Store): all checks passed");
}

#[test]
fn seed004_parameter_store_js_sdk_v3() {
    run_script("node", "seed004_ssm_js.mjs", "seed 004 (JS SDK v3, SSM): all checks passed");
}

#[test]
fn sts_aws_cli() {
    run_script("bash", "sts_cli.sh", "sts (aws CLI): all checks passed");
}

#[test]
fn iam_aws_cli() {
    run_script("bash", "iam_cli.sh", "iam (aws CLI): all checks passed");
}

#[test]
fn iam_seed_policies_boto3() {
    let python = setup().join("venv/bin/python");
    run_script(
        python.to_str().expect("utf-8 path"),
        "iam_policies_boto3.py",
        "iam policies (boto3): all checks passed",
    );
}

#[test]
fn kms_aws_cli() {
    run_script("bash", "kms_cli.sh", "kms (aws CLI): all checks passed");
}

#[test]
fn audit_aws_cli() {
    run_script("bash", "audit_cli.sh", "audit (aws CLI): all checks passed");
}

#[test]
fn seed000_parameter_store_and_kms_boto3() {
    let python = setup().join("venv/bin/python");
    run_script(
        python.to_str().expect("utf-8 path"),
        "seed000_ssm_boto3.py",
        "seed 000 (boto3, SSM + KMS): all checks passed",
    );
}

#[test]
fn seed003_kms_envelope_js_sdk_v3() {
    run_script("node", "seed003_kms_js.mjs", "seed 003 (JS SDK v3, KMS envelope encryption): all checks passed");
}

#[test]
fn seed001_js_sdk_v3() {
    run_script("node", "seed001_js.mjs", "seed 001 (JS SDK v3): all checks passed");
}

/// `aws secretsmanager <args> --output json`, parsed.
fn aws(server: &TestServer, args: &[&str]) -> Value {
    let mut cmd = client_command(server, "aws");
    cmd.arg("secretsmanager").args(args).args(["--output", "json"]);
    let out = run_ok(server, cmd);
    if out.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("aws {args:?} printed no JSON ({e}):\n{out}"))
}

/// Everything the aws CLI can read about the restart fixtures, minus access times (reads move those).
fn snapshot(server: &TestServer, names: &[&str]) -> Value {
    let mut all = serde_json::Map::new();
    for name in names {
        let mut describe = aws(server, &["describe-secret", "--secret-id", name]);
        describe.as_object_mut().expect("describe object").remove("LastAccessedDate");
        let mut versions = aws(server, &["list-secret-version-ids", "--secret-id", name, "--include-deprecated"]);
        let list = versions["Versions"].as_array_mut().expect("Versions");
        for v in list.iter_mut() {
            v.as_object_mut().expect("version object").remove("LastAccessedDate");
        }
        list.sort_by(|a, b| a["VersionId"].as_str().cmp(&b["VersionId"].as_str()));
        let mut values = serde_json::Map::new();
        if describe.get("DeletedDate").is_none() {
            for v in list.iter() {
                let id = v["VersionId"].as_str().expect("VersionId");
                let got = aws(server, &["get-secret-value", "--secret-id", name, "--version-id", id]);
                values.insert(id.to_string(), got);
            }
        }
        all.insert(
            name.to_string(),
            serde_json::json!({ "describe": describe, "versions": versions, "values": values }),
        );
    }
    Value::Object(all)
}

#[test]
fn aws_cli_writes_survive_a_server_restart() {
    let mut server = TestServer::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    let blob_path = tmp.path().join("blob.bin");
    let blob: Vec<u8> = (0..=255u8).rev().collect();
    std::fs::write(&blob_path, &blob).expect("write blob");
    let blob_arg = format!("fileb://{}", blob_path.display());

    // Seed 001's shapes: a rotated string secret (AWSCURRENT + AWSPREVIOUS), a JSON secret with description and tags,
    // a binary secret, and one scheduled for deletion.
    let v1 = aws(&server, &["create-secret", "--name", "/prod/backend/jwt_secret", "--secret-string", "old-jwt $ü\n2"]);
    let v2 = aws(&server, &["update-secret", "--secret-id", "/prod/backend/jwt_secret", "--secret-string", "new-jwt"]);
    let v3 =
        aws(&server, &["put-secret-value", "--secret-id", "/prod/backend/jwt_secret", "--secret-string", "newest-jwt"]);
    aws(
        &server,
        &[
            "create-secret",
            "--name",
            "/non-prod/backend/database",
            "--description",
            "PostgreSQL password for non-prod backend",
            "--secret-string",
            r#"{"username":"admin","password":"secret123"}"#,
            "--tags",
            "Key=Environment,Value=non-prod",
            "Key=ManagedBy,Value=Manual",
        ],
    );
    aws(&server, &["create-secret", "--name", "/prod/backend/tls_key", "--secret-binary", &blob_arg]);
    aws(&server, &["create-secret", "--name", "/non-prod/backend/api_key", "--secret-string", "sk_test_abc123"]);
    aws(&server, &["delete-secret", "--secret-id", "/non-prod/backend/api_key", "--recovery-window-in-days", "7"]);

    let names = [
        "/prod/backend/jwt_secret",
        "/non-prod/backend/database",
        "/prod/backend/tls_key",
        "/non-prod/backend/api_key",
    ];
    let before = snapshot(&server, &names);
    let old_endpoint = server.endpoint.clone();

    server.restart();
    assert_ne!(server.endpoint, old_endpoint, "the restarted server listens on a new port");

    // Everything reads back the same: metadata, version ids and labels, every version's value.
    let after = snapshot(&server, &names);
    assert_eq!(after, before, "state after restart differs from before");

    // And explicitly, the values and stages the seeds rely on.
    let get = |args: &[&str]| aws(&server, args);
    let current = get(&["get-secret-value", "--secret-id", "/prod/backend/jwt_secret"]);
    assert_eq!(current["SecretString"], "newest-jwt");
    assert_eq!(current["VersionId"], v3["VersionId"]);
    let previous =
        get(&["get-secret-value", "--secret-id", "/prod/backend/jwt_secret", "--version-stage", "AWSPREVIOUS"]);
    assert_eq!(previous["SecretString"], "new-jwt");
    assert_eq!(previous["VersionId"], v2["VersionId"]);
    let first = get(&[
        "get-secret-value",
        "--secret-id",
        "/prod/backend/jwt_secret",
        "--version-id",
        v1["VersionId"].as_str().expect("id"),
    ]);
    assert_eq!(first["SecretString"], "old-jwt $ü\n2");
    let versions = get(&["list-secret-version-ids", "--secret-id", "/prod/backend/jwt_secret"]);
    assert_eq!(versions["Versions"].as_array().expect("Versions").len(), 2, "two labelled versions: {versions}");
    let json = get(&["get-secret-value", "--secret-id", "/non-prod/backend/database"]);
    assert_eq!(json["SecretString"], r#"{"username":"admin","password":"secret123"}"#);
    let binary = get(&["get-secret-value", "--secret-id", "/prod/backend/tls_key"]);
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(binary["SecretBinary"].as_str().expect("SecretBinary"))
        .expect("base64");
    assert_eq!(decoded, blob);
    let deleted = get(&["describe-secret", "--secret-id", "/non-prod/backend/api_key"]);
    assert!(deleted.get("DeletedDate").is_some(), "still scheduled for deletion after restart: {deleted}");

    // A restored secret is readable again on the restarted server, and writes keep working.
    get(&["restore-secret", "--secret-id", "/non-prod/backend/api_key"]);
    assert_eq!(
        get(&["get-secret-value", "--secret-id", "/non-prod/backend/api_key"])["SecretString"],
        "sk_test_abc123"
    );
    get(&["put-secret-value", "--secret-id", "/prod/backend/jwt_secret", "--secret-string", "after-restart"]);
    let current = get(&["get-secret-value", "--secret-id", "/prod/backend/jwt_secret"]);
    assert_eq!(current["SecretString"], "after-restart");
}

/// `aws <service> <args> --output json`, parsed (any service).
fn aws_service(server: &TestServer, service: &str, args: &[&str]) -> Value {
    let mut cmd = client_command(server, "aws");
    cmd.arg(service).args(args).args(["--output", "json"]);
    let out = run_ok(server, cmd);
    if out.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("aws {service} {args:?} printed no JSON ({e}):\n{out}"))
}

/// `aws secretsmanager <args>` expected to fail: (error code line, stderr).
fn aws_fails(server: &TestServer, args: &[&str]) -> String {
    let mut cmd = client_command(server, "aws");
    cmd.arg("secretsmanager").args(args);
    let out = run_with_timeout(cmd, SCRIPT_TIMEOUT).expect("aws runs");
    assert!(!out.status.success(), "aws {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn current_and_previous(server: &TestServer, id: &str) -> (String, String, String) {
    let current = aws(server, &["get-secret-value", "--secret-id", id]);
    let previous = aws(server, &["get-secret-value", "--secret-id", id, "--version-stage", "AWSPREVIOUS"]);
    (
        current["VersionId"].as_str().expect("VersionId").to_string(),
        current["SecretString"].as_str().expect("SecretString").to_string(),
        previous["SecretString"].as_str().expect("SecretString").to_string(),
    )
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64()
}

/// Seed 001's rotation commands with the stock aws CLI (its Lambda ARN mapped to a built-in rotator in
/// the server's configuration), a rotation Lambda in AWS's template shape ported unchanged as an
/// external rotator running under an IAM role, a failing rotator, `coffer rotation status`, rollback,
/// and an emergency incident approved by a second principal.
#[test]
fn rotation_with_the_aws_cli_and_a_ported_rotation_lambda() {
    let python = setup().join("venv/bin/python");
    let lambda = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rotation_lambda.py");
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = tmp.path().join("coffer.toml");
    let role = "arn:aws:iam::000000000000:role/rotation-lambda-role";
    let command =
        |extra: &str| format!("[\"/usr/bin/env\", \"{extra}\", \"{}\", \"{}\"]", python.display(), lambda.display());
    std::fs::write(
        &config,
        format!(
            r#"
[[rotation.external]]
arn = "arn:aws:lambda:us-east-1:123456789012:function:rotation-lambda"
builtin = "generated"

[[rotation.external]]
arn = "arn:aws:lambda:us-east-1:000000000000:function:team-rotator"
command = {}
role_arn = "{role}"

[[rotation.external]]
arn = "arn:aws:lambda:us-east-1:000000000000:function:flaky-rotator"
command = {}
role_arn = "{role}"
timeout_secs = 120
"#,
            command("ROTATOR_FAILS_TEST=0"),
            command("ROTATOR_FAILS_TEST=1")
        ),
    )
    .expect("config file");
    let server = TestServer::start_with(&["--config", config.to_str().expect("utf-8 path")], &[]);

    // The role the ported Lambda runs under, least privilege.
    aws_service(
        &server,
        "iam",
        &[
            "create-role",
            "--role-name",
            "rotation-lambda-role",
            "--assume-role-policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        ],
    );
    aws_service(
        &server,
        "iam",
        &[
            "put-role-policy",
            "--role-name",
            "rotation-lambda-role",
            "--policy-name",
            "rotate",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:DescribeSecret","secretsmanager:GetSecretValue","secretsmanager:PutSecretValue","secretsmanager:UpdateSecretVersionStage"],"Resource":"*"}]}"#,
        ],
    );

    // Seed 001, "Enable rotation" then "Test rotation".
    let db = "/prod/backend/database_password";
    aws(&server, &["create-secret", "--name", db, "--secret-string", "synthetic-db-password-0"]);
    let rotated = aws(
        &server,
        &[
            "rotate-secret",
            "--secret-id",
            db,
            "--rotation-lambda-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:rotation-lambda",
            "--rotation-rules",
            "AutomaticallyAfterDays=30",
        ],
    );
    let (version, value, previous) = current_and_previous(&server, db);
    assert_eq!(rotated["VersionId"].as_str(), Some(version.as_str()));
    assert_ne!(value, "synthetic-db-password-0");
    assert_eq!(previous, "synthetic-db-password-0");
    let d = aws(&server, &["describe-secret", "--secret-id", db]);
    assert_eq!(d["RotationEnabled"], true);
    assert_eq!(d["RotationRules"]["AutomaticallyAfterDays"], 30);
    assert_eq!(d["RotationLambdaARN"], "arn:aws:lambda:us-east-1:123456789012:function:rotation-lambda");
    let next = d["NextRotationDate"].as_f64().expect("NextRotationDate");
    assert!((next - (now_seconds() + 30.0 * 86_400.0)).abs() < 600.0, "next rotation in 30 days: {d}");
    assert!(d["LastRotatedDate"].as_f64().is_some());
    let versions = d["VersionIdsToStages"].as_object().expect("stages");
    assert!(versions.values().all(|s| !s.to_string().contains("AWSPENDING")), "AWSPENDING is cleared: {d}");
    aws(&server, &["rotate-secret", "--secret-id", db]);
    let (_, again, previous) = current_and_previous(&server, db);
    assert_ne!(again, value);
    assert_eq!(previous, value);

    // A schedule expression with a window, without rotating now.
    let sched = "/prod/backend/api_key";
    aws(&server, &["create-secret", "--name", sched, "--secret-string", "synthetic-api-key"]);
    aws(
        &server,
        &[
            "rotate-secret",
            "--secret-id",
            sched,
            "--rotation-lambda-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:coffer-generated",
            "--rotation-rules",
            r#"{"ScheduleExpression":"rate(4 hours)","Duration":"2h"}"#,
            "--no-rotate-immediately",
        ],
    );
    let d = aws(&server, &["describe-secret", "--secret-id", sched]);
    assert_eq!(d["RotationRules"]["ScheduleExpression"], "rate(4 hours)");
    assert_eq!(d["RotationRules"]["Duration"], "2h");
    let next = d["NextRotationDate"].as_f64().expect("NextRotationDate");
    assert!((next - (now_seconds() + 4.0 * 3600.0)).abs() < 600.0, "{d}");
    assert_eq!(aws(&server, &["get-secret-value", "--secret-id", sched])["SecretString"], "synthetic-api-key");
    let err = aws_fails(
        &server,
        &["rotate-secret", "--secret-id", db, "--rotation-rules", r#"{"ScheduleExpression":"rate(1 hours)"}"#],
    );
    assert!(err.contains("InvalidParameterException"), "{err}");
    let plain = "/prod/backend/plain";
    aws(&server, &["create-secret", "--name", plain, "--secret-string", "x"]);
    let err = aws_fails(&server, &["rotate-secret", "--secret-id", plain]);
    assert!(err.contains("InvalidRequestException") && err.contains("No Lambda rotation function ARN"), "{err}");
    let err = aws_fails(
        &server,
        &[
            "rotate-secret",
            "--secret-id",
            plain,
            "--rotation-lambda-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:nobody",
        ],
    );
    assert!(err.contains("AccessDeniedException"), "{err}");

    // The ported Lambda: it creates the pending value and moves AWSCURRENT itself.
    let token = "team/api-token";
    aws(&server, &["create-secret", "--name", token, "--secret-string", "synthetic-token-0"]);
    let rotated = aws(
        &server,
        &[
            "rotate-secret",
            "--secret-id",
            token,
            "--rotation-lambda-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:team-rotator",
        ],
    );
    let new_version = rotated["VersionId"].as_str().expect("VersionId").to_string();
    let (version, value, previous) = current_and_previous(&server, token);
    assert_eq!(version, new_version, "server log:\n{}", server.log_text());
    assert_eq!(value, format!("rotated-by-lambda-{new_version}"));
    assert_eq!(previous, "synthetic-token-0");

    // A rotator whose testSecret fails: AWSCURRENT stays, the failure is visible and named.
    aws(
        &server,
        &[
            "rotate-secret",
            "--secret-id",
            token,
            "--rotation-lambda-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:flaky-rotator",
        ],
    );
    assert_eq!(current_and_previous(&server, token).1, value, "AWSCURRENT unchanged after a failed rotation");
    let status = common::coffer(&server, &["rotation", "status"]);
    assert_eq!(status.status.code(), Some(1), "{}", common::text(&status));
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains(token) && shown.contains("FAILING") && shown.contains("testSecret"), "{shown}");
    assert!(shown.contains("refused by the downstream service"), "{shown}");
    let err = aws_fails(&server, &["rotate-secret", "--secret-id", token]);
    assert!(err.contains("InvalidRequestException"), "a failed rotation awaiting its retry blocks a new one: {err}");
    aws(&server, &["cancel-rotate-secret", "--secret-id", token]);
    assert_eq!(aws(&server, &["describe-secret", "--secret-id", token])["RotationEnabled"], false);

    // Roll back the last good rotation.
    let out = common::coffer(&server, &["secret", "rollback", token]);
    assert!(out.status.success(), "{}", common::text(&out));
    let (_, value, previous) = current_and_previous(&server, token);
    assert_eq!(value, "synthetic-token-0");
    assert_eq!(previous, format!("rotated-by-lambda-{new_version}"));

    // An emergency: opened by root, approved by a second principal, every selected secret rotated.
    for (name, sensitivity) in [("/prod/payments/stripe_key", "critical"), ("/prod/monitoring/dd_key", "medium")] {
        aws(
            &server,
            &[
                "create-secret",
                "--name",
                name,
                "--secret-string",
                "synthetic-before-incident",
                "--tags",
                &format!("Key=coffer:sensitivity,Value={sensitivity}"),
            ],
        );
        aws(
            &server,
            &[
                "rotate-secret",
                "--secret-id",
                name,
                "--rotation-lambda-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:coffer-generated",
                "--no-rotate-immediately",
            ],
        );
    }
    let opened = common::coffer(
        &server,
        &[
            "incident",
            "open",
            "--type",
            "suspected-breach",
            "--level",
            "critical",
            "--reason",
            "key in a public paste",
            "--output",
            "json",
        ],
    );
    assert!(opened.status.success(), "{}", common::text(&opened));
    let incident: Value = serde_json::from_slice(&opened.stdout).expect("incident JSON");
    let id = incident["IncidentId"].as_str().expect("IncidentId").to_string();
    assert!(id.starts_with("SEC-") && id.len() >= 18, "{id}");
    assert_eq!(incident["Status"], "awaiting-approval");
    assert_eq!(incident["Plan"].as_array().expect("plan").len(), 1, "{incident}");
    let own = common::coffer(&server, &["incident", "approve", &id]);
    assert!(!own.status.success(), "the opener cannot approve");
    aws_service(&server, "iam", &["create-user", "--user-name", "responder"]);
    aws_service(
        &server,
        "iam",
        &[
            "put-user-policy",
            "--user-name",
            "responder",
            "--policy-name",
            "incident-response",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["coffer:*","secretsmanager:*"],"Resource":"*"}]}"#,
        ],
    );
    let key = aws_service(&server, "iam", &["create-access-key", "--user-name", "responder"]);
    let (key_id, secret) = (
        key["AccessKey"]["AccessKeyId"].as_str().expect("key id"),
        key["AccessKey"]["SecretAccessKey"].as_str().expect("secret"),
    );
    let approved = common::coffer_as(&server, Some((key_id, secret, None)), &["incident", "approve", &id]);
    assert!(approved.status.success(), "{}", common::text(&approved));
    assert_ne!(
        aws(&server, &["get-secret-value", "--secret-id", "/prod/payments/stripe_key"])["SecretString"],
        "synthetic-before-incident"
    );
    assert_eq!(
        aws(&server, &["get-secret-value", "--secret-id", "/prod/monitoring/dd_key"])["SecretString"],
        "synthetic-before-incident"
    );
    let report = common::coffer(&server, &["incident", "report", &id, "--format", "md"]);
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(report.contains(&format!("# Incident {id}")), "{report}");
    assert!(report.contains("Approved by arn:aws:iam::000000000000:user/responder"), "{report}");
    assert!(report.contains("1 selected: 1 rotated, 0 failed, 0 skipped"), "{report}");
    // Every step of the emergency rotation is in the audit log with its source.
    let events = aws_service(
        &server,
        "cloudtrail",
        &["lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=EmergencyRotationStarted"],
    );
    let found = events["Events"].as_array().expect("Events");
    assert_eq!(found.len(), 1, "{events}");
    let record: Value = serde_json::from_str(found[0]["CloudTrailEvent"].as_str().expect("event")).expect("JSON");
    assert!(record.to_string().contains(&id), "{record}");
}
