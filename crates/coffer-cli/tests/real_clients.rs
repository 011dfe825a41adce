//! The seeds' commands and snippets, run by real AWS clients no one here wrote — the aws CLI and boto3
//! from PyPI, the JS SDK v3 from npm — against the real `coffer` server.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::TestServer;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn clients_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("COFFER_CLIENTS_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
    target.join("coffer-clients")
}

/// Installs the clients once per test process (the script itself is idempotent across runs).
fn setup() -> PathBuf {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let dir = clients_dir();
            let out = Command::new("bash")
                .arg(repo_root().join("tests/clients/setup.sh"))
                .env("COFFER_CLIENTS_DIR", &dir)
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            Ok(dir)
        })
        .clone()
        .unwrap_or_else(|e| panic!("installing the AWS clients failed: {e}"))
}

/// Runs `program args` with the server's AWS environment and the clients on PATH; asserts success.
fn run_client(server: &TestServer, program: &str, args: &[PathBuf]) -> String {
    let dir = setup();
    let path = format!("{}:{}", dir.join("venv/bin").display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir.join("node"))
        .env("PATH", path)
        .env("NODE_PATH", dir.join("node/node_modules"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE");
    for (k, v) in server.aws_env() {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("client runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed\n--- stdout\n{stdout}\n--- stderr\n{}\n--- server log\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    stdout
}

fn script(name: &str) -> PathBuf {
    repo_root().join("tests/clients").join(name)
}

#[test]
fn seed001_aws_cli() {
    let server = TestServer::start();
    let out = run_client(&server, "bash", &[script("seed001_cli.sh")]);
    assert!(out.contains("seed 001: all checks passed"));
}

#[test]
fn seed002_aws_cli() {
    let server = TestServer::start();
    let out = run_client(&server, "bash", &[script("seed002_cli.sh")]);
    assert!(out.contains("seed 002: all checks passed"));
}

#[test]
fn seed001_boto3() {
    let server = TestServer::start();
    let python = setup().join("venv/bin/python").display().to_string();
    let out = run_client(&server, &python, &[script("seed001_boto3.py")]);
    assert!(out.contains("all checks passed"));
}

#[test]
fn seed001_js_sdk_v3() {
    let server = TestServer::start();
    // Node resolves packages relative to the script, so run a copy inside the npm folder.
    let copy = setup().join("node/seed001_js.mjs");
    std::fs::copy(script("seed001_js.mjs"), &copy).expect("copy script");
    let out = run_client(&server, "node", &[copy]);
    assert!(out.contains("all checks passed"));
}

#[test]
fn aws_cli_writes_survive_a_server_restart() {
    let mut server = TestServer::start();
    run_client(
        &server,
        "aws",
        &[
            "secretsmanager".into(),
            "create-secret".into(),
            "--name".into(),
            "/restart/me".into(),
            "--secret-string".into(),
            "kept-across-restarts".into(),
        ],
    );
    server.restart();
    let out = run_client(
        &server,
        "aws",
        &[
            "secretsmanager".into(),
            "get-secret-value".into(),
            "--secret-id".into(),
            "/restart/me".into(),
            "--query".into(),
            "SecretString".into(),
            "--output".into(),
            "text".into(),
        ],
    );
    assert_eq!(out.trim(), "kept-across-restarts");
}
