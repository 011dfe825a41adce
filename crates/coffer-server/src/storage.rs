//! Opening the storage backend a configuration selects: the embedded SQLite file (the default), or a
//! PostgreSQL database that several nodes share.

use std::sync::Arc;

use anyhow::Context;
use coffer_store::Store;

use crate::config::{redact_password, StorageBackend};
use crate::ServerConfig;

/// How a store is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Created if absent and migrated to this binary's schema: how a node opens it.
    Serve,
    /// An existing installation, never written (offline checks, the source of a copy).
    ReadOnly,
}

/// Opens (and migrates) the configured store.
pub async fn open_store(config: &ServerConfig) -> anyhow::Result<Arc<dyn Store>> {
    open_backend(&config.storage_backend()?, OpenMode::Serve).await
}

/// Opens a store by its URL (`sqlite://PATH` or `postgres://...`).
pub async fn open_url(url: &str, mode: OpenMode) -> anyhow::Result<Arc<dyn Store>> {
    open_backend(&StorageBackend::parse(url)?, mode).await
}

/// Opens the store of a backend.
pub async fn open_backend(backend: &StorageBackend, mode: OpenMode) -> anyhow::Result<Arc<dyn Store>> {
    use coffer_store_postgres::PostgresStore;
    use coffer_store_sqlite::SqliteStore;
    Ok(match (backend, mode) {
        (StorageBackend::Sqlite(path), OpenMode::Serve) => {
            Arc::new(SqliteStore::open(path).await.with_context(|| format!("opening the database {}", path.display()))?)
        }
        (StorageBackend::Sqlite(path), OpenMode::ReadOnly) => Arc::new(
            SqliteStore::open_read_only(path)
                .await
                .with_context(|| format!("opening the database {} read-only", path.display()))?,
        ),
        (StorageBackend::Postgres(url), OpenMode::Serve) => Arc::new(
            PostgresStore::open(url)
                .await
                .with_context(|| format!("opening the PostgreSQL database {}", redact_password(url)))?,
        ),
        (StorageBackend::Postgres(url), OpenMode::ReadOnly) => Arc::new(
            PostgresStore::open_read_only(url)
                .await
                .with_context(|| format!("opening the PostgreSQL database {} read-only", redact_password(url)))?,
        ),
    })
}
