//! End to end, `coffer agent` in front of a real server: the SSRF token and `X-Forwarded-For` rules, the
//! GetSecretValue and GetParameter answers (the same JSON the API gives), cache hits that never reach the
//! server, `refreshNow`, stale values while the server is down and fresh ones once it is back, the
//! encrypted snapshot that lets an agent start while the server is down, and change events that replace
//! a cached value within a second of its PutSecretValue (unless `--no-watch`).

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{coffer, text, TestServer};
use serde_json::Value;

const TOKEN: &str = "agent-test-token-5f2c";
const HEADER: &str = "X-Aws-Parameters-Secrets-Token";

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", text(&out));
    out
}

/// A running `coffer agent`; stopped with SIGTERM (so it writes its snapshot) or killed on drop.
struct Agent {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// The `coffer agent` command for `server` (its credentials, its endpoint pinned with --endpoint-url).
fn agent_command(server: &TestServer, args: &[&str]) -> Command {
    let mut cmd = server.cli();
    cmd.env_remove("AWS_TOKEN")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        .env_remove("COFFER_AGENT_PASSPHRASE")
        .env("COFFER_LOG", "warn");
    cmd.args(["agent", "--port", "0", "--endpoint-url", &server.endpoint]).args(args);
    cmd
}

impl Agent {
    fn start(server: &TestServer, args: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut cmd = agent_command(server, args);
        cmd.env("AWS_TOKEN", TOKEN);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("coffer agent runs");
        let stderr_buf = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr_buf.clone();
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("coffer agent listening on http://") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(50)) {
                assert!(addr.starts_with("127.0.0.1:"), "the agent binds to loopback only: {addr}");
                return Agent { child, addr, stderr: stderr_buf };
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!("the agent exited ({status}): {}", String::from_utf8_lossy(&stderr_buf.lock().unwrap()));
            }
            assert!(Instant::now() < deadline, "the agent did not start within 30 s");
        }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until the agent's stderr (drained by a thread of its own, which may lag behind under
    /// load) contains `needle`.
    fn wait_for_stderr(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.stderr().contains(needle) {
            assert!(Instant::now() < deadline, "{needle:?} not on the agent's stderr: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the agent with SIGTERM and waits for it to exit.
    fn stop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "the agent exits cleanly on SIGTERM: {status} {}", self.stderr());
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the agent did not stop within 20 s");
    }

    /// GET `path` with the right token.
    fn get(&self, path: &str) -> Reply {
        http_get(&self.addr, path, &[(HEADER, TOKEN)])
    }

    fn health(&self) -> Value {
        let reply = self.get("/health");
        assert_eq!(reply.status, 200, "{}", reply.body);
        serde_json::from_str(&reply.body).unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A plain HTTP/1.1 request with `Connection: close`, read to the end (the agent answers with a length).
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Reply { status, headers, body: body.to_string() }
}

fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, "GET", path, headers)
}

/// What `coffer ... --json` printed, as JSON.
fn cli_json(server: &TestServer, args: &[&str]) -> Value {
    serde_json::from_slice(&ok(coffer(server, args)).stdout).unwrap()
}

fn secret_value(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["SecretString"].as_str().unwrap().to_string()
}

#[test]
fn only_requests_with_the_token_and_without_a_proxy_are_answered() {
    let server = TestServer::start();
    ok(coffer(&server, &["secret", "create", "ssrf/db", "--value", "ssrf-canary"]));
    let agent = Agent::start(&server, &[], &[]);
    let path = "/secretsmanager/get?secretId=ssrf/db";

    let ping = http_get(&agent.addr, "/ping", &[]);
    assert_eq!((ping.status, ping.body.as_str()), (200, "healthy"), "/ping needs no token");

    let missing = http_get(&agent.addr, path, &[]);
    assert_eq!(missing.status, 403, "{}", missing.body);
    let wrong = http_get(&agent.addr, path, &[(HEADER, "agent-test-token-5f2d")]);
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    let prefix = http_get(&agent.addr, path, &[(HEADER, "agent-test-token")]);
    assert_eq!(prefix.status, 403, "a prefix of the token is not the token");
    let health = http_get(&agent.addr, "/health", &[]);
    assert_eq!(health.status, 403, "/health needs the token too");
    let unknown = http_get(&agent.addr, "/nowhere", &[]);
    assert_eq!(unknown.status, 403, "without the token not even the paths are told apart");
    for reply in [&missing, &wrong, &prefix, &health] {
        assert!(!reply.body.contains("ssrf-canary"));
    }

    let forwarded = http_get(&agent.addr, path, &[(HEADER, TOKEN), ("X-Forwarded-For", "203.0.113.9")]);
    assert_eq!(forwarded.status, 400, "{}", forwarded.body);
    assert!(!forwarded.body.contains("ssrf-canary"));

    let unknown = agent.get("/nowhere");
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let posted = request(&agent.addr, "POST", path, &[(HEADER, TOKEN), ("Content-Length", "0")]);
    assert_eq!(posted.status, 405, "{}", posted.body);
    let no_id = agent.get("/secretsmanager/get");
    assert_eq!(no_id.status, 400, "{}", no_id.body);
    assert!(no_id.body.contains("secretId"), "{}", no_id.body);

    assert_eq!(secret_value(&agent.get(path)), "ssrf-canary", "with the token the value is answered");

    // Without any token the agent refuses to start.
    let out = agent_command(&server, &[]).output().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no SSRF token"), "{}", text(&out));
}

#[test]
fn answers_are_the_apis_and_hits_stay_in_the_cache_until_refresh_now() {
    let server = TestServer::start();
    ok(coffer(&server, &["secret", "create", "/app/db_password", "--value", "v1-first"]));
    ok(coffer(&server, &["param", "put", "/app/log-level", "--value", "debug", "--type", "SecureString"]));
    // Without change events: only the TTL (or refreshNow) replaces a cached value.
    let agent = Agent::start(&server, &["--no-watch"], &[]);

    let secret = agent.get("/secretsmanager/get?secretId=%2Fapp%2Fdb_password");
    assert_eq!(secret.status, 200, "{}", secret.body);
    assert_eq!(secret.header("content-type"), Some("application/json"));
    assert_eq!(secret.header("x-coffer-cache"), Some("miss"));
    let api = cli_json(&server, &["secret", "get", "/app/db_password", "--json"]);
    assert_eq!(secret.json(), api, "the agent answers exactly what GetSecretValue answers");
    for field in ["ARN", "Name", "VersionId", "SecretString", "VersionStages", "CreatedDate"] {
        assert!(api.get(field).is_some(), "{field} in {api}");
    }

    let param = agent.get("/systemsmanager/parameters/get?name=/app/log-level&withDecryption=true");
    assert_eq!(param.status, 200, "{}", param.body);
    let api = cli_json(&server, &["param", "get", "/app/log-level", "--json"]);
    assert_eq!(param.json(), api, "the agent answers exactly what GetParameter answers");
    assert_eq!(api["Parameter"]["Value"], "debug");

    // A new value on the server is not seen through the cache...
    ok(coffer(&server, &["secret", "put", "/app/db_password", "--value", "v2-second"]));
    let cached = agent.get("/secretsmanager/get?secretId=%2Fapp%2Fdb_password");
    assert_eq!(secret_value(&cached), "v1-first");
    assert_eq!(cached.header("x-coffer-cache"), Some("hit"));
    // ...until refreshNow asks the server.
    let refreshed = agent.get("/secretsmanager/get?secretId=%2Fapp%2Fdb_password&refreshNow=true");
    assert_eq!(secret_value(&refreshed), "v2-second");
    assert_eq!(refreshed.header("x-coffer-cache"), Some("miss"));
    let cached = agent.get("/secretsmanager/get?secretId=%2Fapp%2Fdb_password");
    assert_eq!((secret_value(&cached).as_str(), cached.header("x-coffer-cache")), ("v2-second", Some("hit")));
    // Versions are separate entries.
    let previous = agent.get("/secretsmanager/get?secretId=%2Fapp%2Fdb_password&versionStage=AWSPREVIOUS");
    assert_eq!(secret_value(&previous), "v1-first");

    // Server errors are passed through with their status and AWS error body.
    let missing = agent.get("/secretsmanager/get?secretId=no/such/secret");
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert_eq!(missing.json()["__type"], "ResourceNotFoundException");
    let missing = agent.get("/systemsmanager/parameters/get?name=/no/such");
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert_eq!(missing.json()["__type"], "ParameterNotFound");

    let health = agent.health();
    assert_eq!(health["endpoint"], server.endpoint.as_str());
    assert_eq!(health["source"], "server");
    assert_eq!(health["entries"], 3, "{health}");
    assert_eq!(health["hits"], 2, "{health}");
    assert_eq!(health["misses"], 6, "{health}");
    assert_eq!(health["last_error"]["code"], "ParameterNotFound", "{health}");
    assert!(health["last_refresh"].is_string(), "{health}");
    assert_eq!(health["change_events"]["enabled"], false, "{health}");
    let health_text = health.to_string();
    for value in ["v1-first", "v2-second", "debug"] {
        assert!(!health_text.contains(value), "no value in /health: {health_text}");
    }
    assert!(!agent.stderr().contains("v1-first") && !agent.stderr().contains("v2-second"), "{}", agent.stderr());
}

#[test]
fn cached_values_outlive_a_server_outage_and_fresh_ones_return_after_it() {
    let mut server = TestServer::start();
    ok(coffer(&server, &["secret", "create", "outage/db", "--value", "before-outage"]));
    let agent = Agent::start(&server, &["--ttl-seconds", "1", "--max-stale-seconds", "600"], &[]);
    assert_eq!(secret_value(&agent.get("/secretsmanager/get?secretId=outage/db")), "before-outage");

    server.stop();
    std::thread::sleep(Duration::from_millis(1200));
    let stale = agent.get("/secretsmanager/get?secretId=outage/db");
    assert_eq!(secret_value(&stale), "before-outage", "past its TTL, the value is served while the server is down");
    assert_eq!(stale.header("x-coffer-cache"), Some("stale"));
    let forced = agent.get("/secretsmanager/get?secretId=outage/db&refreshNow=true");
    assert_eq!(secret_value(&forced), "before-outage");
    let never_cached = agent.get("/secretsmanager/get?secretId=outage/other");
    assert_eq!(never_cached.status, 502, "{}", never_cached.body);
    assert_eq!(never_cached.json()["__type"], "ServiceUnavailable");

    let health = agent.health();
    assert_eq!(health["last_error"]["code"], "ServiceUnavailable", "{health}");
    assert!(health["last_error"]["message"].as_str().unwrap().contains(&server.endpoint), "{health}");
    assert_eq!(health["stale_served"], 2, "{health}");
    assert!(!health.to_string().contains("before-outage"));

    server.restart_on_same_port();
    ok(coffer(&server, &["secret", "put", "outage/db", "--value", "after-outage"]));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = agent.get("/secretsmanager/get?secretId=outage/db");
        if secret_value(&reply) == "after-outage" {
            break;
        }
        assert!(Instant::now() < deadline, "the new value did not arrive once the server was back");
        std::thread::sleep(Duration::from_millis(200));
    }
    let health = agent.health();
    assert_eq!(health["source"], "server");
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} was not written", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_snapshot_lets_an_agent_start_while_the_server_is_down() {
    let mut server = TestServer::start();
    ok(coffer(&server, &["secret", "create", "snap/db", "--value", "snapshot-canary-91c3"]));
    ok(coffer(&server, &["param", "put", "/snap/flag", "--value", "on", "--type", "String"]));
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("agent.snapshot");
    let snapshot_arg = snapshot.to_str().unwrap();

    let mut first = Agent::start(&server, &["--snapshot", snapshot_arg], &[]);
    assert_eq!(secret_value(&first.get("/secretsmanager/get?secretId=snap/db")), "snapshot-canary-91c3");
    assert_eq!(first.get("/systemsmanager/parameters/get?name=/snap/flag").status, 200);
    wait_for_file(&snapshot);
    first.stop();

    let raw = std::fs::read(&snapshot).unwrap();
    assert!(!raw.windows(20).any(|w| w == b"snapshot-canary-91c3"), "the snapshot is encrypted");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&snapshot).unwrap().permissions().mode() & 0o777, 0o600);
    }

    server.stop();
    let second = Agent::start(&server, &["--snapshot", snapshot_arg], &[]);
    let reply = second.get("/secretsmanager/get?secretId=snap/db");
    assert_eq!(secret_value(&reply), "snapshot-canary-91c3", "served from the snapshot while the server is down");
    assert_eq!(reply.header("x-coffer-cache"), Some("stale"));
    let param = second.get("/systemsmanager/parameters/get?name=/snap/flag");
    assert_eq!(param.json()["Parameter"]["Value"], "on");
    let health = second.health();
    assert_eq!(health["source"], "snapshot", "{health}");
    assert_eq!(health["entries_from_snapshot"], 2, "{health}");
    assert_eq!(health["last_error"]["code"], "ServiceUnavailable", "{health}");

    // A snapshot the agent cannot decrypt (here: a passphrase where there was none) is ignored.
    let third = Agent::start(&server, &["--snapshot", snapshot_arg], &[("COFFER_AGENT_PASSPHRASE", "other")]);
    let reply = third.get("/secretsmanager/get?secretId=snap/db");
    assert_eq!(reply.status, 502, "{}", reply.body);
    third.wait_for_stderr("ignoring the snapshot");
    assert_eq!(third.health()["source"], "empty");
    for agent in [&second, &third] {
        assert!(!agent.stderr().contains("snapshot-canary-91c3"), "{}", agent.stderr());
    }
}

/// Polls the agent (plain GETs, never refreshNow) until `path` answers `expected`; answers how long
/// that took. Fails after `limit`.
fn time_until_served(agent: &Agent, path: &str, expected: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let reply = agent.get(path);
        assert_eq!(reply.status, 200, "{}", reply.body);
        let json = reply.json();
        let value = json["SecretString"].as_str().or_else(|| json["Parameter"]["Value"].as_str()).unwrap();
        if value == expected {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{path} still answers the old value after {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn change_events_replace_cached_values_within_a_second() {
    let server = TestServer::start();
    ok(coffer(&server, &["secret", "create", "/events/db", "--value", "cached-one"]));
    ok(coffer(&server, &["param", "put", "/events/level", "--value", "debug", "--type", "String"]));
    let agent = Agent::start(&server, &[], &[]);
    let secret = "/secretsmanager/get?secretId=%2Fevents%2Fdb";
    let previous = "/secretsmanager/get?secretId=%2Fevents%2Fdb&versionStage=AWSPREVIOUS";
    let param = "/systemsmanager/parameters/get?name=%2Fevents%2Flevel";
    assert_eq!(secret_value(&agent.get(secret)), "cached-one");
    assert_eq!(agent.get(param).status, 200);
    assert_eq!(agent.get(secret).header("x-coffer-cache"), Some("hit"));

    // The default TTL is 300 s: only a change event can bring the new value this soon.
    ok(coffer(&server, &["secret", "put", "/events/db", "--value", "changed-two"]));
    let took = time_until_served(&agent, secret, "changed-two", Duration::from_secs(1));
    assert!(took < Duration::from_secs(1), "{took:?}");
    let after = agent.get(secret);
    assert_eq!((secret_value(&after).as_str(), after.header("x-coffer-cache")), ("changed-two", Some("hit")));
    assert_eq!(secret_value(&agent.get(previous)), "cached-one");

    // Every cached version of a changed secret is refetched, and parameters follow too.
    ok(coffer(&server, &["secret", "put", "/events/db", "--value", "changed-three"]));
    time_until_served(&agent, secret, "changed-three", Duration::from_secs(1));
    time_until_served(&agent, previous, "changed-two", Duration::from_secs(1));
    ok(coffer(&server, &["param", "put", "/events/level", "--value", "info", "--type", "String", "--overwrite"]));
    time_until_served(&agent, param, "info", Duration::from_secs(1));

    // A deleted secret stops being served (the refetch hears the server's refusal).
    ok(coffer(&server, &["secret", "delete", "/events/db", "--force"]));
    let deadline = Instant::now() + Duration::from_secs(1);
    while agent.get(secret).status == 200 {
        assert!(Instant::now() < deadline, "a deleted secret is still served");
        std::thread::sleep(Duration::from_millis(10));
    }

    let health = agent.health();
    let events = &health["change_events"];
    assert_eq!(events["enabled"], true, "{health}");
    assert_eq!(events["subscribed"], true, "{health}");
    assert!(events["changes"].as_u64().unwrap() >= 4, "{health}");
    assert!(events["last_change"].is_string(), "{health}");
    assert_eq!(events["watched_parameters"], 1, "{health}");
    for value in ["cached-one", "changed-two", "changed-three"] {
        assert!(!health.to_string().contains(value), "no value in /health: {health}");
        assert!(!agent.stderr().contains(value), "{}", agent.stderr());
    }
}
