//! Opening the storage backend a configuration selects: the embedded SQLite file (the default), or a
//! PostgreSQL database that several nodes share.

use std::sync::Arc;

use anyhow::Context;
use coffer_store::Store;

use crate::config::{redact_password, StorageBackend};
use crate::ServerConfig;

/// Opens (and migrates) the configured store.
pub async fn open_store(config: &ServerConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config.storage_backend()? {
        StorageBackend::Sqlite(path) => Arc::new(
            coffer_store_sqlite::SqliteStore::open(&path)
                .await
                .with_context(|| format!("opening the database {}", path.display()))?,
        ),
        StorageBackend::Postgres(url) => Arc::new(
            coffer_store_postgres::PostgresStore::open(&url)
                .await
                .with_context(|| format!("opening the PostgreSQL database {}", redact_password(&url)))?,
        ),
    })
}
