//! A fresh PostgreSQL schema per test, on the server CI starts before the tests.
//!
//! The server is `COFFER_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`). When it
//! cannot be reached the test fails, with a message saying so: a backend whose tests skip silently is a
//! backend nobody tested.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use coffer_store::{RotationSettings, SecretRecord, SecretState, ValueKind, VersionRecord};
use coffer_store_postgres::{PoolOptions, PostgresStore};
use tokio_postgres::NoTls;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn base_url() -> String {
    std::env::var("COFFER_TEST_POSTGRES_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| DEFAULT_URL.into())
}

/// A connection to the test database outside any store (creating and dropping schemas, inspecting).
pub async fn admin() -> tokio_postgres::Client {
    let url = base_url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is not reachable at {url} ({e:?}); the tests need it (or set COFFER_TEST_POSTGRES_URL)")
    });
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("admin connection to PostgreSQL failed: {e}");
        }
    });
    client
}

/// A schema of its own (`coffer_test_<random>`), dropped with everything in it when this is dropped.
pub struct TestSchema {
    pub name: String,
}

impl TestSchema {
    pub async fn create() -> TestSchema {
        let name = format!("coffer_test_{}", uuid::Uuid::new_v4().simple());
        admin().await.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("create the test schema");
        TestSchema { name }
    }

    /// The connection configuration of a store in this schema.
    pub fn config(&self) -> tokio_postgres::Config {
        let mut config = coffer_store_postgres::parse_url(&base_url()).expect("test database URL");
        config.options(format!("-csearch_path={}", self.name));
        config
    }

    /// The same as a URL, as an operator would write it.
    pub fn url(&self) -> String {
        let base = base_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-csearch_path%3D{}", self.name)
    }

    /// A store (one "node") in this schema, with a small pool: tests run side by side on one server.
    pub async fn open(&self) -> PostgresStore {
        PostgresStore::open_with(self.config(), pool_options()).await.expect("open the store")
    }
}

pub fn pool_options() -> PoolOptions {
    PoolOptions { max_connections: 8, ..PoolOptions::default() }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own, with a
        // runtime of its own, drops the schema.
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

pub const REGION: &str = "us-east-1";

/// A secret with one AWSCURRENT version, revision 1.
pub fn secret_state(name: &str) -> SecretState {
    SecretState {
        secret: SecretRecord {
            arn: format!("arn:aws:secretsmanager:{REGION}:000000000000:secret:{name}-AbC123"),
            region: REGION.into(),
            name: name.into(),
            description: None,
            kms_key_id: None,
            tags: vec![],
            created: 1,
            last_changed: 1,
            last_accessed: None,
            deletion_date: None,
            resource_policy: None,
            rotation: RotationSettings::default(),
            revision: 1,
        },
        versions: vec![version("initial", 1)],
    }
}

pub fn version(id: &str, created: i64) -> VersionRecord {
    VersionRecord {
        version_id: id.into(),
        stages: vec!["AWSCURRENT".into()],
        created,
        kind: ValueKind::String,
        envelope: id.as_bytes().to_vec(),
    }
}
