//! The real server over PostgreSQL (`--storage postgres://...`), end to end through the AWS wire
//! protocols: data outlives the server that wrote it, two servers over one schema see each other's
//! writes at once, a record one server caches is refreshed when the other changes it, and a change
//! subscriber of one server hears of the other's changes.
//!
//! The server is `COFFER_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`); each test
//! gets a fresh schema. When PostgreSQL cannot be reached these tests fail, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffer_server::{RunningServer, ServerConfig};
use coffer_sigv4::{Credentials, SignableRequest};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio_postgres::NoTls;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn base_url() -> String {
    std::env::var("COFFER_TEST_POSTGRES_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| DEFAULT_URL.into())
}

async fn admin() -> tokio_postgres::Client {
    let url = base_url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is not reachable at {url} ({e:?}); the tests need it (or set COFFER_TEST_POSTGRES_URL)")
    });
    tokio::spawn(connection);
    client
}

/// A schema of its own, dropped with everything in it at the end of the test.
struct TestSchema {
    name: String,
}

impl TestSchema {
    async fn create() -> TestSchema {
        let name = format!("coffer_e2e_{}", uuid::Uuid::new_v4().simple());
        admin().await.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("create the test schema");
        TestSchema { name }
    }

    /// The storage URL a server is started with, as an operator would write it.
    fn storage_url(&self) -> String {
        let base = base_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-csearch_path%3D{}", self.name)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own, with a
        // runtime of its own, drops the schema (also when the test failed half-way).
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&base_url(), NoTls).await.ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test schema {}", self.name);
        }
    }
}

/// The configuration of a server on an ephemeral port over `schema`, with its key file in `data_dir`.
fn config(schema: &TestSchema, data_dir: &Path) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        storage: Some(schema.storage_url()),
        ..ServerConfig::default()
    }
}

/// Starts the real server over `schema`, with its key file in `data_dir`.
async fn start(schema: &TestSchema, data_dir: &Path) -> RunningServer {
    start_with(config(schema, data_dir)).await
}

async fn start_with(config: ServerConfig) -> RunningServer {
    let server = coffer_server::start(config).await.expect("the server starts over PostgreSQL");
    let service = server.current_service().expect("the file key source serves at once");
    assert_eq!(service.backend_name(), "postgres");
    server
}

/// The root access key the first start created.
fn root_credentials(server: &RunningServer) -> Credentials {
    let key = server.root_credentials.as_ref().expect("a first start creates the root key");
    Credentials {
        access_key_id: key.access_key_id.clone(),
        secret_access_key: key.secret_access_key.expose_str().expect("text").to_string(),
        session_token: None,
    }
}

/// A second node's data directory: only the shared master key in it (the data is in PostgreSQL).
fn node_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("master.key"), to.join("master.key")).unwrap();
}

/// A minimal SigV4-signing client of the JSON 1.1 protocols, as the AWS SDKs send them.
struct Api {
    http: HttpClient<HttpConnector, Full<Bytes>>,
    endpoint: String,
    host: String,
    credentials: Credentials,
}

impl Api {
    fn new(server: &RunningServer, credentials: &Credentials) -> Api {
        Api {
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
            endpoint: server.endpoint(),
            host: server.local_addr.to_string(),
            credentials: credentials.clone(),
        }
    }

    /// Calls `target` signed for `service`; panics (failing the test) unless it succeeds.
    async fn call(&self, service: &str, target: &str, request: &Value) -> Value {
        let (status, answer) = self.try_call(service, target, request).await;
        assert!(status.is_success(), "{target}: {status} {answer}");
        answer
    }

    /// Calls `target` signed for `service`: the HTTP status and the JSON answer, success or error.
    async fn try_call(&self, service: &str, target: &str, request: &Value) -> (http::StatusCode, Value) {
        let body = serde_json::to_vec(request).unwrap();
        let mut headers = vec![
            ("host".to_string(), self.host.clone()),
            ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
            ("x-amz-target".to_string(), target.to_string()),
        ];
        let signable = SignableRequest { method: "POST", path: "/", query: "", headers: &headers, payload: &body };
        let now = time::OffsetDateTime::now_utc();
        headers.extend(coffer_sigv4::sign(&signable, &self.credentials, "us-east-1", service, now));
        let mut request = http::Request::post(format!("{}/", self.endpoint));
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let response = self.http.request(request.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
        let status = response.status();
        let answer = response.into_body().collect().await.unwrap().to_bytes();
        let answer: Value = serde_json::from_slice(&answer).unwrap_or_else(|e| panic!("{target}: {e}"));
        (status, answer)
    }

    async fn secrets(&self, op: &str, mut request: Value) -> Value {
        if matches!(op, "CreateSecret" | "PutSecretValue") {
            // What the AWS SDKs fill in by themselves: the id of the version the call creates.
            request["ClientRequestToken"] = json!(uuid::Uuid::new_v4().to_string());
        }
        self.call("secretsmanager", &format!("secretsmanager.{op}"), &request).await
    }

    async fn ssm(&self, op: &str, request: Value) -> Value {
        self.call("ssm", &format!("AmazonSSM.{op}"), &request).await
    }

    async fn secret_string(&self, name: &str) -> String {
        let got = self.secrets("GetSecretValue", json!({ "SecretId": name })).await;
        got["SecretString"].as_str().expect("a SecretString").to_string()
    }

    /// `CofferEvents.WaitForChanges` (signed as Secrets Manager).
    async fn wait_for_changes(&self, request: Value) -> Value {
        self.call("secretsmanager", "CofferEvents.WaitForChanges", &request).await
    }

    async fn parameter_value(&self, name: &str) -> String {
        let got = self.ssm("GetParameter", json!({ "Name": name, "WithDecryption": true })).await;
        got["Parameter"]["Value"].as_str().expect("a parameter value").to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_outlives_the_server_that_wrote_it() {
    let schema = TestSchema::create().await;
    let tmp = tempfile::tempdir().unwrap();
    let first_dir = tmp.path().join("first");

    let server = start(&schema, &first_dir).await;
    let credentials = root_credentials(&server);
    let api = Api::new(&server, &credentials);
    api.secrets("CreateSecret", json!({ "Name": "pg/e2e/db", "SecretString": "first value" })).await;
    api.secrets("PutSecretValue", json!({ "SecretId": "pg/e2e/db", "SecretString": "second value" })).await;
    assert_eq!(api.secret_string("pg/e2e/db").await, "second value");
    api.ssm("PutParameter", json!({ "Name": "/e2e/db/url", "Value": "parameter value", "Type": "SecureString" })).await;
    assert_eq!(api.parameter_value("/e2e/db/url").await, "parameter value");
    server.shutdown().await;

    // Another server, another data directory holding only the master key: everything else comes from
    // PostgreSQL, the root key included.
    let second_dir = tmp.path().join("second");
    node_dir(&first_dir, &second_dir);
    let server = start(&schema, &second_dir).await;
    assert!(server.root_credentials.is_none(), "the data was initialized already");
    let api = Api::new(&server, &credentials);
    assert_eq!(api.secret_string("pg/e2e/db").await, "second value");
    let described = api.secrets("DescribeSecret", json!({ "SecretId": "pg/e2e/db" })).await;
    assert_eq!(described["VersionIdsToStages"].as_object().map(|v| v.len()), Some(2), "{described}");
    assert_eq!(api.parameter_value("/e2e/db/url").await, "parameter value");
    server.shutdown().await;
}

/// Two servers at once over one schema: what one writes, the other reads. (Each read here is the
/// reading server's first look at that record; `a_change_on_one_server_reaches_the_others_cache`
/// covers records the reader holds in its cache.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_over_one_schema_see_each_others_writes() {
    let schema = TestSchema::create().await;
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));

    let server_a = start(&schema, &dir_a).await;
    let credentials = root_credentials(&server_a);
    node_dir(&dir_a, &dir_b);
    let server_b = start(&schema, &dir_b).await;
    assert!(server_b.root_credentials.is_none(), "the first server initialized the data");
    let (a, b) = (Api::new(&server_a, &credentials), Api::new(&server_b, &credentials));

    a.secrets("CreateSecret", json!({ "Name": "shared/token", "SecretString": "first, by a" })).await;
    a.secrets("PutSecretValue", json!({ "SecretId": "shared/token", "SecretString": "second, by a" })).await;
    assert_eq!(b.secret_string("shared/token").await, "second, by a");

    b.secrets("CreateSecret", json!({ "Name": "shared/other", "SecretString": "by b" })).await;
    assert_eq!(a.secret_string("shared/other").await, "by b");

    b.ssm("PutParameter", json!({ "Name": "/shared/flag", "Value": "on", "Type": "String" })).await;
    b.ssm("PutParameter", json!({ "Name": "/shared/flag", "Value": "off", "Type": "String", "Overwrite": true })).await;
    assert_eq!(a.parameter_value("/shared/flag").await, "off");

    // Both servers write one secret: each write is a compare-and-swap on the shared row, so neither
    // is lost (the loser re-reads and retries), and the version history holds both.
    let versions_before = b.secrets("ListSecretVersionIds", json!({ "SecretId": "shared/other" })).await;
    let before = versions_before["Versions"].as_array().map_or(0, Vec::len);
    let (put_a, put_b) = tokio::join!(
        a.secrets("PutSecretValue", json!({ "SecretId": "shared/other", "SecretString": "race a" })),
        b.secrets("PutSecretValue", json!({ "SecretId": "shared/other", "SecretString": "race b" })),
    );
    assert_ne!(put_a["VersionId"], put_b["VersionId"]);
    let admin = admin().await;
    let stored: i64 = admin
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM {0}.secret_versions v JOIN {0}.secrets s ON s.arn = v.arn WHERE s.name = $1",
                schema.name
            ),
            &[&"shared/other"],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, before as i64 + 2, "both racing writes are stored");

    server_a.shutdown().await;
    server_b.shutdown().await;
}

/// Polls `read` until it answers `want`, for at most 2 seconds; returns how long it took.
async fn until<F, Fut>(what: &str, want: &str, mut read: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let started = Instant::now();
    loop {
        let got = read().await;
        if got == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{what}: still {got:?} after 2 s, want {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two servers over one schema that trust their caches (`read_consistency = cached`) for far longer than
/// a test waits: only a change notice can refresh what one of them cached.
async fn two_caching_servers(schema: &TestSchema, dir: &Path) -> (RunningServer, RunningServer, Credentials) {
    let (dir_a, dir_b) = (dir.join("a"), dir.join("b"));
    let caching = |dir: &Path| ServerConfig {
        cache_max_age_ms: Some(600_000),
        read_consistency: coffer_server::config::ReadConsistency::Cached,
        ..config(schema, dir)
    };
    let server_a = start_with(caching(&dir_a)).await;
    let credentials = root_credentials(&server_a);
    node_dir(&dir_a, &dir_b);
    let server_b = start_with(caching(&dir_b)).await;
    (server_a, server_b, credentials)
}

/// A record server B holds in its cache, changed (or deleted) through server A, reads as changed on B
/// within moments: A's write notifies B through PostgreSQL and B drops its copy. The servers' maximum
/// cache age is set far beyond the 2 s this test waits, so only the notice can have refreshed B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_server_reaches_the_others_cache() {
    let schema = TestSchema::create().await;
    let tmp = tempfile::tempdir().unwrap();
    let (server_a, server_b, credentials) = two_caching_servers(&schema, tmp.path()).await;
    let (a, b) = (Api::new(&server_a, &credentials), Api::new(&server_b, &credentials));

    a.secrets("CreateSecret", json!({ "Name": "cached/token", "SecretString": "first" })).await;
    assert_eq!(b.secret_string("cached/token").await, "first");
    assert_eq!(b.secret_string("cached/token").await, "first", "b now serves it from its cache");
    a.secrets("PutSecretValue", json!({ "SecretId": "cached/token", "SecretString": "second" })).await;
    let took = until("b's secret", "second", || b.secret_string("cached/token")).await;
    eprintln!("PutSecretValue on a reached b's cache in {took:?}");

    a.ssm("PutParameter", json!({ "Name": "/cached/flag", "Value": "on", "Type": "String" })).await;
    assert_eq!(b.parameter_value("/cached/flag").await, "on");
    a.ssm("PutParameter", json!({ "Name": "/cached/flag", "Value": "off", "Type": "String", "Overwrite": true })).await;
    let took = until("b's parameter", "off", || b.parameter_value("/cached/flag")).await;
    eprintln!("PutParameter (overwrite) on a reached b's cache in {took:?}");

    a.secrets("DeleteSecret", json!({ "SecretId": "cached/token", "ForceDeleteWithoutRecovery": true })).await;
    let took = until("b's deleted secret", "ResourceNotFoundException", || async {
        let (status, answer) =
            b.try_call("secretsmanager", "secretsmanager.GetSecretValue", &json!({ "SecretId": "cached/token" })).await;
        match answer["__type"].as_str() {
            Some(code) if !status.is_success() => code.rsplit('#').next().unwrap_or(code).to_string(),
            _ => format!("{status}: still readable"),
        }
    })
    .await;
    eprintln!("DeleteSecret on a reached b's cache in {took:?}");

    server_a.shutdown().await;
    server_b.shutdown().await;
}

/// A subscriber long-polling server B (`CofferEvents.WaitForChanges`) hears of a PutSecretValue made
/// through server A within a second: A's notice reaches B's change journal as a `Changed` event, and a
/// read on B right after it answers the new value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_of_one_server_hears_of_the_others_changes() {
    let schema = TestSchema::create().await;
    let tmp = tempfile::tempdir().unwrap();
    let (server_a, server_b, credentials) = two_caching_servers(&schema, tmp.path()).await;
    let (a, b) = (Api::new(&server_a, &credentials), Api::new(&server_b, &credentials));

    a.secrets("CreateSecret", json!({ "Name": "events/token", "SecretString": "first" })).await;
    assert_eq!(b.secret_string("events/token").await, "first");
    let cursor = b.wait_for_changes(json!({})).await["Cursor"].as_str().unwrap().to_string();
    let poll = json!({ "SecretIds": ["events/token"], "Cursor": cursor, "WaitTimeSeconds": 10 });
    let (answer, put_done) = tokio::join!(b.wait_for_changes(poll), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        a.secrets("PutSecretValue", json!({ "SecretId": "events/token", "SecretString": "second" })).await;
        Instant::now()
    });
    let heard = Instant::now();
    assert!(heard.duration_since(put_done) < Duration::from_secs(1), "heard {:?} after the put", heard - put_done);
    let changes = answer["Changes"].as_array().unwrap();
    assert!(!changes.is_empty(), "{answer}");
    assert_eq!(changes[0]["Name"], "events/token", "{answer}");
    assert_eq!(changes[0]["Change"], "Changed", "B knows which record, not what A did: {answer}");
    assert_eq!(answer["Reset"], false, "{answer}");
    assert_eq!(b.secret_string("events/token").await, "second", "B's cache was dropped before the event");

    // Each node has its own journal: a cursor of A's is foreign to B.
    let a_cursor = a.wait_for_changes(json!({})).await;
    let foreign = b.wait_for_changes(json!({ "SecretIds": ["events/token"], "Cursor": a_cursor["Cursor"] })).await;
    assert_eq!(foreign["Reset"], true, "{foreign}");

    server_a.shutdown().await;
    server_b.shutdown().await;
}
