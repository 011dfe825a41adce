//! End to end, change events against the real server: `CofferEvents.WaitForChanges` through the client
//! library's `ChangeSubscription` (a put heard within a second, validation errors as AWS errors, a
//! restarted server answering `Reset`), a long poll that does not hold up the server's shutdown, and
//! `coffer exec --watch` restarting its program with the new values.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_client::events::{concerns_secret, ChangeSubscription, Notification, WatchRequest};
use coffer_client::{Client, ClientConfig, ClientError};
use coffer_wire::events::{WaitForChangesRequest, WaitForChangesResponse, SERVICE, WAIT_FOR_CHANGES_TARGET};
use common::{coffer, text, TestServer};

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", text(&out));
    out
}

/// A client of `server` with its root credentials.
fn root_client(server: &TestServer) -> Arc<Client> {
    let (access_key_id, secret_access_key) = server.root_keys();
    Arc::new(
        Client::new(ClientConfig {
            endpoint: server.endpoint.clone(),
            region: "us-east-1".into(),
            credentials: coffer_sigv4::Credentials { access_key_id, secret_access_key, session_token: None },
            ca_bundle: None,
        })
        .unwrap(),
    )
}

/// Runs `coffer ARGS` on a blocking thread, so the test's runtime keeps polling meanwhile.
async fn coffer_async(server: &TestServer, args: &[&str]) -> Output {
    let mut cmd = server.cli();
    cmd.args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_hears_of_a_put_within_a_second() {
    let server = TestServer::start();
    ok(coffer(&server, &["secret", "create", "events/db", "--value", "first-value"]));
    ok(coffer(&server, &["secret", "create", "events/other", "--value", "other-value"]));
    let mut subscription =
        ChangeSubscription::new(root_client(&server), WatchRequest::secrets(["events/db".to_string()]));
    subscription.start().await.unwrap();
    let cursor = subscription.cursor().unwrap().to_string();
    assert!(cursor.contains(':'), "{cursor}");

    // A change of another secret wakes nothing; the subscribed one's put is heard at once.
    ok(coffer_async(&server, &["secret", "put", "events/other", "--value", "other-second"]).await);
    let waiter = tokio::spawn(async move {
        let notification = subscription.next().await;
        (notification, Instant::now(), subscription)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let put = ok(coffer_async(&server, &["secret", "put", "events/db", "--value", "second-value"]).await);
    let put_done = Instant::now();
    let put: serde_json::Value = serde_json::from_slice(&put.stdout).unwrap();
    let (notification, heard, subscription) = waiter.await.unwrap();
    let Notification::Changes(changes) = notification.unwrap() else { panic!("expected changes") };
    assert!(heard.saturating_duration_since(put_done) < Duration::from_secs(1), "heard within a second");
    assert_eq!(changes.len(), 1, "{changes:?}");
    let change = &changes[0];
    assert!(concerns_secret(change, "events/db"));
    assert_eq!((change.resource_type.as_str(), change.change.as_str()), ("Secret", "PutSecretValue"));
    assert_eq!(Some(change.arn.as_str()), put["ARN"].as_str());
    assert_eq!(change.version_id.as_deref(), put["VersionId"].as_str());
    assert_ne!(subscription.cursor(), Some(cursor.as_str()));
    let raw = serde_json::to_string(&changes).unwrap();
    assert!(!raw.contains("second-value") && !raw.contains("first-value"), "never a value: {raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_aws_errors_and_a_restarted_server_resets_subscribers() {
    let mut server = TestServer::start();
    let client = root_client(&server);
    let call = |request: WaitForChangesRequest| {
        let client = client.clone();
        async move { client.call::<_, WaitForChangesResponse>(SERVICE, WAIT_FOR_CHANGES_TARGET, &request).await }
    };
    let first = call(WaitForChangesRequest::default()).await.unwrap();
    assert!(first.changes.is_empty() && !first.reset);
    for (request, fragment) in [
        (WaitForChangesRequest { wait_time_seconds: Some(21), ..Default::default() }, "WaitTimeSeconds"),
        (WaitForChangesRequest { wait_time_seconds: Some(-1), ..Default::default() }, "WaitTimeSeconds"),
        (WaitForChangesRequest { cursor: Some("not-a-cursor".into()), ..Default::default() }, "Cursor"),
        (WaitForChangesRequest { secret_ids: vec![String::new()], ..Default::default() }, "characters long"),
    ] {
        match call(request).await {
            Err(ClientError::Api { status, code, message, .. }) => {
                assert_eq!((status, code.as_str()), (400, "InvalidParameterException"), "{message}");
                assert!(message.contains(fragment), "{message}");
            }
            other => panic!("expected InvalidParameterException, got {other:?}"),
        }
    }

    server.restart_on_same_port();
    let request = WaitForChangesRequest { cursor: Some(first.cursor.clone()), ..Default::default() };
    let after = call(request).await.unwrap();
    assert!(after.reset, "a cursor of the previous run: the subscriber must refetch everything");
    assert_ne!(after.cursor, first.cursor);
}

#[test]
fn a_waiting_long_poll_does_not_hold_up_shutdown() {
    let mut server = TestServer::start();
    let client = root_client(&server);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let poll = runtime.spawn(async move {
        let mut subscription = ChangeSubscription::new(client, WatchRequest::secrets(["idle".to_string()]));
        subscription.start().await.unwrap();
        let started = Instant::now();
        let answer = subscription.next().await;
        (answer, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    let stopping = Instant::now();
    server.stop();
    let stopped = stopping.elapsed();
    assert!(stopped < Duration::from_secs(5), "the server took {stopped:?} to stop under a 20 s long poll");
    // The poll was answered (empty) at shutdown; the next one finds no server and reports it.
    let (answer, waited) = runtime.block_on(poll).unwrap();
    assert!(matches!(answer, Err(ClientError::Transport { .. })), "{answer:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

fn wait_for(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exec_watch_restarts_the_program_with_the_new_values() {
    let server = TestServer::start();
    ok(coffer(&server, &["secret", "create", "/watch/app/db_pass", "--value", "old-pass"]));
    ok(coffer(&server, &["param", "put", "/watch/app/mode", "--value", "blue", "--type", "String"]));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("starts");
    // Each start appends the values it got; SIGTERM ends it with 0.
    let script = r#"
        trap 'exit 0' TERM
        echo "$DB_PASS $MODE" >> "$LOG"
        while :; do sleep 0.05; done
    "#;
    let mut exec = server
        .cli()
        .args(["exec", "--watch", "--restart-grace-seconds", "5", "--path", "/watch/app", "--", "sh", "-c", script])
        .env("LOG", &log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let starts = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the first start", Duration::from_secs(30), || starts() == "old-pass blue\n");

    // Below the path but not a direct child: heard, reloaded, the same environment: no restart.
    ok(coffer(&server, &["secret", "create", "/watch/app/deeper/x", "--value", "unseen"]));
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(starts(), "old-pass blue\n");

    let put = Instant::now();
    ok(coffer(&server, &["secret", "put", "/watch/app/db_pass", "--value", "new-pass"]));
    wait_for("the restart with the new secret", Duration::from_secs(10), || starts().ends_with("new-pass blue\n"));
    assert!(put.elapsed() < Duration::from_secs(3), "restarted {:?} after the put", put.elapsed());
    ok(coffer(&server, &["param", "put", "/watch/app/mode", "--value", "green", "--type", "String", "--overwrite"]));
    wait_for("the restart with the new parameter", Duration::from_secs(10), || starts().ends_with("new-pass green\n"));
    assert_eq!(starts(), "old-pass blue\nnew-pass blue\nnew-pass green\n");

    // Signals still reach the program, and its exit code is coffer exec's.
    let status = Command::new("kill").arg("-TERM").arg(exec.id().to_string()).status().unwrap();
    assert!(status.success());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = exec.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "coffer exec did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = exec.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("restarting").count(), 2, "{stderr}");
    for value in ["old-pass", "new-pass", "blue", "green"] {
        assert!(!stderr.contains(value), "no value on stderr: {stderr}");
    }
}

#[test]
fn exec_watch_needs_the_server_source() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, "A=1\n").unwrap();
    let source = format!("dotenv:{}", env_file.display());
    let out = server.cli().args(["exec", "--watch", "--source", &source, "--", "true"]).output().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dotenv"), "{}", text(&out));
}
