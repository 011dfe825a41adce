//! End to end: a server started with `--master-key-source shamir`, driven by `coffer operator ...`, the
//! `coffer secret` commands and raw HTTP — init, unseal (with wrong and duplicate shares), seal,
//! restart, rekey.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::TestServer;
use serde_json::Value;

const SHAMIR: &[&str] = &["--master-key-source", "shamir"];

/// Root credentials returned by init.
struct Root {
    id: String,
    secret: String,
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `coffer operator ARGS` against the server, optionally with `stdin` and the root credentials.
fn operator(server: &TestServer, args: &[&str], stdin: Option<&str>, root: Option<&Root>) -> Output {
    let mut cmd = cli(server, root);
    cmd.arg("operator").args(args);
    run(cmd, stdin)
}

fn cli(server: &TestServer, root: Option<&Root>) -> Command {
    let mut cmd = server.cli();
    if let Some(root) = root {
        cmd.env("AWS_ACCESS_KEY_ID", &root.id).env("AWS_SECRET_ACCESS_KEY", &root.secret);
    }
    cmd
}

fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn status(server: &TestServer) -> Value {
    let out = operator(server, &["status", "--format", "json"], None, None);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("status is JSON ({e}): {}", text(&out)))
}

fn init(server: &TestServer, shares: u32, threshold: u32) -> (Vec<String>, Root) {
    let out = operator(
        server,
        &["init", "--key-shares", &shares.to_string(), "--key-threshold", &threshold.to_string(), "--format", "json"],
        None,
        None,
    );
    assert!(out.status.success(), "init: {}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["SecretShares"], shares);
    assert_eq!(v["SecretThreshold"], threshold);
    let keys: Vec<String> = v["Keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    let root = Root {
        id: v["RootAccessKeyId"].as_str().unwrap().to_string(),
        secret: v["RootSecretAccessKey"].as_str().unwrap().to_string(),
    };
    (keys, root)
}

/// Submits one share on standard input (as a script would); returns the output and the JSON status.
fn unseal(server: &TestServer, share: &str) -> (Output, Option<Value>) {
    let out = operator(server, &["unseal", "--format", "json"], Some(&format!("{share}\n")), None);
    let parsed = serde_json::from_slice(&out.stdout).ok();
    (out, parsed)
}

fn unseal_ok(server: &TestServer, share: &str) -> Value {
    let (out, v) = unseal(server, share);
    assert!(out.status.success(), "unseal: {}", text(&out));
    v.unwrap()
}

fn unseal_err(server: &TestServer, share: &str, code: &str) -> String {
    let (out, _) = unseal(server, share);
    let all = text(&out);
    assert!(!out.status.success(), "the share was accepted: {all}");
    assert!(all.contains(code), "expected {code}: {all}");
    all
}

fn secret(server: &TestServer, root: &Root, args: &[&str]) -> Output {
    let mut cmd = cli(server, Some(root));
    cmd.arg("secret").args(args);
    run(cmd, None)
}

/// A raw POST (unsigned): (status, x-amzn-errortype, JSON body).
fn raw_post(server: &TestServer, target: &str, body: &str) -> (u16, String, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("{}/", server.endpoint))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let error_type =
            resp.headers().get("x-amzn-errortype").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or(Value::Null);
        (status, error_type, body)
    })
}

fn raw_get(server: &TestServer, path: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let resp = reqwest::get(format!("{}{path}", server.endpoint)).await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

/// The secrets API answers 503 with an AWS error body, both raw and through the CLI.
fn assert_refused_while_sealed(server: &TestServer, root: Option<&Root>, message: &str) {
    let (status, error_type, body) = raw_post(server, "secretsmanager.ListSecrets", "{}");
    assert_eq!(status, 503);
    assert_eq!(error_type, "ServiceUnavailableException");
    assert_eq!(body["__type"], "ServiceUnavailableException");
    assert!(body["message"].as_str().unwrap().contains(message), "{body}");
    if let Some(root) = root {
        let out = secret(server, root, &["get", "app/db"]);
        assert!(!out.status.success());
        let all = text(&out);
        assert!(all.contains("ServiceUnavailableException") && all.contains(message), "{all}");
    }
}

#[test]
fn init_unseal_seal_restart_with_key_shares() {
    let mut server = TestServer::start_with(SHAMIR, &[("COFFER_LOG", "trace")]);

    // Uninitialized: status says so (exit code 2, as sealed), the API refuses, the probes answer.
    let out = operator(&server, &["status"], None, None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let s = status(&server);
    assert_eq!((s["Initialized"].as_bool(), s["Sealed"].as_bool()), (Some(false), Some(true)));
    assert!(s.get("Threshold").is_none());
    assert_refused_while_sealed(&server, None, "not initialized");
    assert_eq!(raw_get(&server, "/healthz"), (200, "{\"status\":\"uninitialized\"}".to_string()));
    assert_eq!(raw_get(&server, "/readyz").0, 503);
    let (status_code, error_type, _) = raw_post(&server, "CofferOperator.Unseal", r#"{"Key":"AAAA"}"#);
    assert_eq!((status_code, error_type.as_str()), (400, "InvalidRequestException"));

    // Out-of-range parameters are refused and initialize nothing.
    let out = operator(&server, &["init", "--key-shares", "3", "--key-threshold", "4"], None, None);
    assert!(!out.status.success());
    assert!(text(&out).contains("InvalidParameterException"), "{}", text(&out));
    assert_eq!(status(&server)["Initialized"], false);

    let (shares, root) = init(&server, 5, 3);
    assert_eq!(shares.len(), 5);
    let mut distinct = shares.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "shares are distinct");
    assert!(shares.iter().all(|s| s.len() == 48));
    assert!(root.id.starts_with("AKIA") && root.id.len() == 20);
    assert_eq!(root.secret.len(), 40);
    // Init happens once.
    let out = operator(&server, &["init"], None, None);
    assert!(text(&out).contains("already initialized"), "{}", text(&out));

    // Initialized and still sealed: the API refuses even the root credentials.
    let s = status(&server);
    assert_eq!((s["Initialized"].as_bool(), s["Sealed"].as_bool()), (Some(true), Some(true)));
    assert_eq!((s["Threshold"].as_u64(), s["Shares"].as_u64(), s["Progress"].as_u64()), (Some(3), Some(5), Some(0)));
    assert_refused_while_sealed(&server, Some(&root), "Coffer is sealed");
    assert_eq!(raw_get(&server, "/healthz"), (200, "{\"status\":\"sealed\"}".to_string()));
    assert_eq!(raw_get(&server, "/readyz"), (503, "{\"status\":\"sealed\"}".to_string()));

    // Garbage is refused and not counted.
    let msg = unseal_err(&server, "not-a-share", "InvalidKeyShareException");
    assert!(msg.contains("malformed") && msg.contains("0/3"), "{msg}");
    assert_eq!(status(&server)["Progress"], 0);

    // A well-formed share of another installation is refused and not counted.
    let other = TestServer::start_with(SHAMIR, &[]);
    let (foreign, _) = init(&other, 3, 2);
    let msg = unseal_err(&server, &foreign[0], "InvalidKeyShareException");
    assert!(msg.contains("does not belong"), "{msg}");
    assert_eq!(status(&server)["Progress"], 0);
    drop(other);

    // The same share twice counts once.
    assert_eq!(unseal_ok(&server, &shares[3])["Progress"], 1);
    let msg = unseal_err(&server, &shares[3], "DuplicateKeyShareException");
    assert!(msg.contains("already submitted") && msg.contains("1/3"), "{msg}");
    assert_eq!(status(&server)["Progress"], 1);

    // A reset forgets the progress.
    let out = operator(&server, &["unseal", "--reset", "--format", "json"], None, None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status(&server)["Progress"], 0);

    // Three good shares unseal it (the last one as an argument).
    assert_eq!(unseal_ok(&server, &shares[0])["Progress"], 1);
    let v = unseal_ok(&server, &shares[4]);
    assert_eq!((v["Sealed"].as_bool(), v["Progress"].as_u64()), (Some(true), Some(2)));
    let out = operator(&server, &["unseal", &shares[2]], None, None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Coffer is unsealed."), "{}", text(&out));
    let s = status(&server);
    assert_eq!((s["Sealed"].as_bool(), s["Progress"].as_u64()), (Some(false), Some(0)));
    assert_eq!(operator(&server, &["status"], None, None).status.code(), Some(0));
    assert_eq!(raw_get(&server, "/readyz"), (200, "{\"status\":\"ready\"}".to_string()));
    // Unsealing an unsealed server changes nothing.
    assert_eq!(unseal_ok(&server, &shares[1])["Sealed"], false);

    // The secrets API works with the root credentials from init.
    let out = secret(&server, &root, &["create", "app/db", "--value", "canary-value-7731"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = secret(&server, &root, &["get", "app/db"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "canary-value-7731", "{}", text(&out));

    // Sealing needs a signature: an unsigned Seal is refused and changes nothing.
    let (status_code, error_type, _) = raw_post(&server, "CofferOperator.Seal", "{}");
    assert_eq!(status_code, 400, "{error_type}");
    assert_eq!(status(&server)["Sealed"], false);
    // Without credentials the CLI cannot even sign.
    let out = operator(&server, &["seal"], None, None);
    assert!(!out.status.success());
    assert_eq!(status(&server)["Sealed"], false);

    let out = operator(&server, &["seal"], None, Some(&root));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Coffer is sealed."));
    assert_eq!(status(&server)["Sealed"], true);
    assert_refused_while_sealed(&server, Some(&root), "Coffer is sealed");
    // Sealing a sealed server is a no-op.
    assert!(operator(&server, &["seal"], None, Some(&root)).status.success());

    // A restart comes up sealed; the shares unseal it and the secret is still there.
    server.restart();
    let s = status(&server);
    assert_eq!(
        (s["Initialized"].as_bool(), s["Sealed"].as_bool(), s["Progress"].as_u64()),
        (Some(true), Some(true), Some(0))
    );
    assert_refused_while_sealed(&server, Some(&root), "Coffer is sealed");
    for share in &shares[1..4] {
        unseal_ok(&server, share);
    }
    assert_eq!(status(&server)["Sealed"], false);
    let out = secret(&server, &root, &["get", "app/db"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "canary-value-7731", "{}", text(&out));

    // Neither the shares, nor the root secret, nor the value reached the (trace-level) logs.
    let logs = server.log_text();
    for planted in shares.iter().map(String::as_str).chain([root.secret.as_str(), "canary-value-7731"]) {
        assert!(!logs.contains(planted), "a secret reached the logs");
    }
}

#[test]
fn rekey_replaces_the_shares_and_keeps_the_data() {
    let mut server = TestServer::start_with(SHAMIR, &[]);
    let (old, root) = init(&server, 5, 3);
    for share in &old[..3] {
        unseal_ok(&server, share);
    }
    let out = secret(&server, &root, &["create", "kept", "--value", "still-here"]);
    assert!(out.status.success(), "{}", text(&out));

    // Too few, garbage or duplicate old shares: refused, nothing changes.
    for (input, code) in [
        (format!("{}\n{}\n", old[0], old[1]), "InvalidParameterException"),
        (format!("{}\n{}\nbogus\n", old[0], old[1]), "InvalidKeyShareException"),
        (format!("{}\n{}\n{}\n", old[0], old[1], old[0]), "DuplicateKeyShareException"),
    ] {
        let out = operator(&server, &["rekey", "--key-shares", "3", "--key-threshold", "2"], Some(&input), Some(&root));
        assert!(!out.status.success());
        assert!(text(&out).contains(code), "expected {code}: {}", text(&out));
    }
    // Rekey needs the root signature.
    let (status_code, _, _) = raw_post(&server, "CofferOperator.Rekey", "{}");
    assert_eq!(status_code, 400);
    assert_eq!(status(&server)["Threshold"], 3);

    let input = format!("{}\n\n{}\n{}\n", old[4], old[2], old[0]);
    let out = operator(
        &server,
        &["rekey", "--key-shares", "3", "--key-threshold", "2", "--format", "json"],
        Some(&input),
        Some(&root),
    );
    assert!(out.status.success(), "rekey: {}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new: Vec<String> = v["Keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    assert_eq!(new.len(), 3);
    assert!(new.iter().all(|n| !old.contains(n)));
    let s = status(&server);
    assert_eq!((s["Shares"].as_u64(), s["Threshold"].as_u64(), s["Sealed"].as_bool()), (Some(3), Some(2), Some(false)));

    // After a restart the old shares are refused and two new ones unseal.
    server.restart();
    for share in &old {
        let msg = unseal_err(&server, share, "InvalidKeyShareException");
        assert!(msg.contains("does not belong"), "{msg}");
    }
    assert_eq!(status(&server)["Progress"], 0);
    assert_eq!(unseal_ok(&server, &new[2])["Progress"], 1);
    assert_eq!(unseal_ok(&server, &new[0])["Sealed"], false);
    let out = secret(&server, &root, &["get", "kept"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "still-here", "{}", text(&out));

    // The other key sources refuse a data directory sealed with shares, and change nothing.
    server.stop();
    let err = TestServer::spawn(&server.data_dir, &[], &[]).err().expect("the file source refuses");
    assert!(err.contains("sealed with key shares"), "{err}");
    assert!(!server.data_dir.join("master.key").exists());
}

#[test]
fn a_data_directory_of_another_key_source_is_not_started_sealed() {
    let mut server = TestServer::start();
    server.stop();
    let err = TestServer::spawn(&server.data_dir, SHAMIR, &[]).err().expect("the shamir source refuses");
    assert!(err.contains("another master key source"), "{err}");
}
