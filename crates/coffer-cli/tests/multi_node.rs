//! Several Coffer nodes over one PostgreSQL database, driven by a real AWS client (aws-sdk-rust)
//! round-robin: concurrent writers on different nodes agree on versions and labels, a write on one
//! node is read on another right after, a node killed mid-load (SIGKILL) loses no acknowledged write,
//! the scheduler's leadership moves when its leader dies, and PostgreSQL restarted mid-load costs
//! fast 503s and nothing else.
//!
//! Each test runs its own private PostgreSQL instance of this machine's installation (trust
//! authentication; see `coffer-testpg`), so it can stop and restart it without disturbing the other
//! tests that share the machine's server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use coffer_testpg::{Auth, PrivatePostgres};
use common::TestServer;

/// A synthetic master key every node of a test shares (base64 of 32 bytes).
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Nodes over one private PostgreSQL instance.
struct Cluster {
    pg: PrivatePostgres,
    nodes: Vec<Option<TestServer>>,
    credentials: (String, String),
    _dirs: tempfile::TempDir,
}

fn start_node(dir: &Path, storage: &str) -> TestServer {
    TestServer::spawn(
        dir,
        &["--storage", storage, "--master-key-source", "env", "--scheduler-interval-secs", "1"],
        &[("COFFER_MASTER_KEY", MASTER_KEY), ("COFFER_LOG", "warn,coffer_store_postgres=info")],
    )
    .expect("node starts")
}

impl Cluster {
    fn start(nodes: usize) -> Cluster {
        let pg = PrivatePostgres::start(Auth::Trust);
        pg.wait_ready();
        let dirs = tempfile::tempdir().unwrap();
        let storage = pg.url("postgres");
        // The first node initializes the installation (and writes the root credentials); the others
        // join it.
        let first = start_node(&dirs.path().join("node0"), &storage);
        let credentials = first.root_keys();
        let mut all = vec![Some(first)];
        for i in 1..nodes {
            all.push(Some(start_node(&dirs.path().join(format!("node{i}")), &storage)));
        }
        Cluster { pg, nodes: all, credentials, _dirs: dirs }
    }

    fn node(&self, i: usize) -> &TestServer {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// An AWS SDK client of node `i`, without the SDK's own retries: the tests fail over themselves.
    fn sdk(&self, i: usize) -> Client {
        sdk(&self.node(i).endpoint, &self.credentials)
    }

    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|i| self.nodes[*i].is_some()).collect()
    }

    /// SIGKILL: no shutdown, no goodbye to PostgreSQL; the kernel closes its sockets.
    fn kill(&mut self, i: usize) {
        let mut node = self.nodes[i].take().expect("node is running");
        node.child.kill().unwrap();
        node.child.wait().unwrap();
    }

    /// Which live nodes say they lead the scheduler (`coffer status`).
    fn leaders(&self) -> Vec<usize> {
        self.live()
            .into_iter()
            .filter(|i| {
                let (id, secret) = &self.credentials;
                let out = self
                    .node(*i)
                    .cli()
                    .env("AWS_ACCESS_KEY_ID", id)
                    .env("AWS_SECRET_ACCESS_KEY", secret)
                    .args(["status", "--output", "json"])
                    .output()
                    .unwrap();
                let status: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|_| panic!("status is JSON: {}", common::text(&out)));
                status["Scheduler"]["Leading"] == true
            })
            .collect()
    }

    /// Waits (up to `within`) until exactly one live node leads, and names it.
    fn wait_for_one_leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let leaders = self.leaders();
            if leaders.len() == 1 {
                return leaders[0];
            }
            assert!(Instant::now() < deadline, "no single scheduler leader after {within:?}: {leaders:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn sdk(endpoint: &str, (id, secret): &(String, String)) -> Client {
    let creds = aws_credential_types::Credentials::new(id, secret, None, None, "coffer-test");
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_secretsmanager::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// Every version of a secret as one node lists it: version id → staging labels.
async fn versions(client: &Client, secret: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let page = client
            .list_secret_version_ids()
            .secret_id(secret)
            .include_deprecated(true)
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        for v in page.versions() {
            out.insert(v.version_id().unwrap().to_string(), v.version_stages().iter().cloned().collect());
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
}

/// The versions holding `label`.
fn holding(versions: &BTreeMap<String, BTreeSet<String>>, label: &str) -> Vec<String> {
    versions.iter().filter(|(_, labels)| labels.contains(label)).map(|(id, _)| id.clone()).collect()
}

/// Writes `count` values with their own ClientRequestTokens, starting at node `first` and moving to
/// the next client when one fails (a killed node, a database restart): the same token again, so a
/// write that did land before its answer was lost is not applied twice. Returns the acknowledged
/// tokens.
async fn write_with_failover(
    clients: Arc<Mutex<Vec<Option<Client>>>>,
    secret: String,
    first: usize,
    count: usize,
    deadline: Instant,
) -> Vec<String> {
    let mut acknowledged = Vec::new();
    let mut at = first;
    for n in 0..count {
        let token = uuid::Uuid::new_v4().to_string();
        loop {
            assert!(Instant::now() < deadline, "writes kept failing until the deadline");
            let client = {
                let clients = clients.lock().unwrap();
                let live: Vec<&Client> = clients.iter().flatten().collect();
                live[at % live.len()].clone()
            };
            let put = client
                .put_secret_value()
                .secret_id(&secret)
                .client_request_token(&token)
                .secret_string(format!("value {n} of writer {first}"))
                .send()
                .await;
            match put {
                Ok(out) => {
                    assert_eq!(out.version_id(), Some(token.as_str()));
                    acknowledged.push(token);
                    break;
                }
                Err(_) => {
                    at += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        at += 1;
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_agree_under_concurrent_writes_and_read_each_others_writes() {
    let cluster = Cluster::start(3);
    let clients: Vec<Client> = (0..3).map(|i| cluster.sdk(i)).collect();
    clients[0].create_secret().name("/prod/shared/token").secret_string("initial").send().await.unwrap();

    // Concurrent PutSecretValue on the same secret from every node.
    let shared = Arc::new(Mutex::new(clients.iter().cloned().map(Some).collect::<Vec<_>>()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let writers: Vec<_> = (0..9)
        .map(|w| tokio::spawn(write_with_failover(shared.clone(), "/prod/shared/token".into(), w, 8, deadline)))
        .collect();
    let mut acknowledged = BTreeSet::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert_eq!(acknowledged.len(), 72);

    // A token already used (on any node) names that write: with another value it is refused, as
    // Secrets Manager refuses to change an existing version; nothing new is stored.
    let retried = acknowledged.iter().next().unwrap().clone();
    let again = clients[2]
        .put_secret_value()
        .secret_id("/prod/shared/token")
        .client_request_token(&retried)
        .secret_string("a different value")
        .send()
        .await
        .expect_err("an existing version cannot change");
    assert_eq!(aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(&again), Some("ResourceExistsException"));

    // Every node lists the same versions and labels: all 72 writes plus the first, one AWSCURRENT,
    // one AWSPREVIOUS, and each node serves the AWSCURRENT one.
    let listed = versions(&clients[0], "/prod/shared/token").await;
    assert_eq!(listed.len(), 73);
    for token in &acknowledged {
        assert!(listed.contains_key(token), "acknowledged version {token} is missing");
    }
    let current = holding(&listed, "AWSCURRENT");
    assert_eq!(current.len(), 1, "{listed:?}");
    assert_eq!(holding(&listed, "AWSPREVIOUS").len(), 1, "{listed:?}");
    for client in &clients[1..] {
        assert_eq!(versions(client, "/prod/shared/token").await, listed);
    }
    for client in &clients {
        let got = client.get_secret_value().secret_id("/prod/shared/token").send().await.unwrap();
        assert_eq!(got.version_id(), Some(current[0].as_str()));
    }

    // Read-after-write across nodes: a write acknowledged by one node is what the next node reads,
    // even though that node has the secret cached.
    for k in 0..30 {
        let value = format!("round {k}");
        let written = clients[k % 3]
            .put_secret_value()
            .secret_id("/prod/shared/token")
            .secret_string(&value)
            .send()
            .await
            .unwrap();
        let read = clients[(k + 1) % 3].get_secret_value().secret_id("/prod/shared/token").send().await.unwrap();
        assert_eq!(read.secret_string(), Some(value.as_str()), "round {k}");
        assert_eq!(read.version_id(), written.version_id());
    }

    // Metadata changes too: a description set on one node is described by the others.
    clients[1].update_secret().secret_id("/prod/shared/token").description("changed on node 1").send().await.unwrap();
    for client in [&clients[0], &clients[2]] {
        let d = client.describe_secret().secret_id("/prod/shared/token").send().await.unwrap();
        assert_eq!(d.description(), Some("changed on node 1"));
    }
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_loses_no_acknowledged_write_and_the_scheduler_moves() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_one_leader(Duration::from_secs(20));
    cluster.sdk(0).create_secret().name("/prod/killed/token").secret_string("initial").send().await.unwrap();

    let clients = Arc::new(Mutex::new((0..3).map(|i| Some(cluster.sdk(i))).collect::<Vec<_>>()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let writers: Vec<_> = (0..6)
        .map(|w| tokio::spawn(write_with_failover(clients.clone(), "/prod/killed/token".into(), w, 40, deadline)))
        .collect();
    // Mid-load, the scheduler's leader dies without a word; the writers fail over to the others.
    tokio::time::sleep(Duration::from_millis(400)).await;
    cluster.kill(leader);
    clients.lock().unwrap()[leader] = None;
    let mut acknowledged = BTreeSet::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert_eq!(acknowledged.len(), 240);

    let survivor = cluster.live()[0];
    let listed = versions(&cluster.sdk(survivor), "/prod/killed/token").await;
    for token in &acknowledged {
        assert!(listed.contains_key(token), "acknowledged version {token} was lost");
    }
    // Writes whose answer was lost with the node were retried with their token: nothing twice.
    assert_eq!(listed.len(), 241, "every write exactly once");
    assert_eq!(holding(&listed, "AWSCURRENT").len(), 1);

    // Another node took the scheduler over.
    let new_leader = cluster.wait_for_one_leader(Duration::from_secs(20));
    assert_ne!(new_leader, leader);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_mid_load_costs_fast_503s_and_nothing_else() {
    let mut cluster = Cluster::start(2);
    let clients: Vec<Client> = (0..2).map(|i| cluster.sdk(i)).collect();
    clients[0].create_secret().name("/prod/restart/token").secret_string("initial").send().await.unwrap();
    let shared = Arc::new(Mutex::new(clients.iter().cloned().map(Some).collect::<Vec<_>>()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let writers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(write_with_failover(shared.clone(), "/prod/restart/token".into(), w, 30, deadline)))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    cluster.pg.stop();
    // While the database is down: requests fail fast with 503 ServiceUnavailable, and /readyz says so.
    let started = Instant::now();
    let read = clients[1].get_secret_value().secret_id("/prod/restart/token").send().await;
    let read = read.expect_err("a read is refused: its cached copy cannot be checked, its event not recorded");
    assert_eq!(read.raw_response().map(|r| r.status().as_u16()), Some(503), "{read:?}");
    let write =
        clients[0].put_secret_value().secret_id("/prod/restart/token").secret_string("during the outage").send().await;
    let write = write.expect_err("a write cannot succeed while the database is down");
    assert_eq!(write.raw_response().map(|r| r.status().as_u16()), Some(503), "{write:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "failed in {:?}", started.elapsed());
    let ready = reqwest::get(format!("{}/readyz", cluster.node(0).endpoint)).await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);

    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.pg.start_again();
    cluster.pg.wait_ready();

    // Both nodes recover by themselves: ready again, and the writers finish.
    for i in 0..2 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = reqwest::get(format!("{}/readyz", cluster.node(i).endpoint)).await.unwrap();
            if ready.status().is_success() {
                break;
            }
            assert!(Instant::now() < deadline, "node {i} not ready 30 s after the database returned");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut acknowledged = BTreeSet::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert_eq!(acknowledged.len(), 120);
    let listed = versions(&clients[1], "/prod/restart/token").await;
    for token in &acknowledged {
        assert!(listed.contains_key(token), "acknowledged version {token} was lost");
    }
    assert_eq!(listed.len(), 121, "every write exactly once");
    let current = holding(&listed, "AWSCURRENT");
    for client in &clients {
        let got = client.get_secret_value().secret_id("/prod/restart/token").send().await.unwrap();
        assert_eq!(got.version_id(), Some(current[0].as_str()));
    }
}
