//! Schema migrations.
//!
//! Migrations are the files in `migrations/NNNN_name.sql`, embedded with `include_str!` and applied in
//! order at open, all pending ones in ONE transaction together with the `schema_version` rows that
//! record them: a failure half-way leaves the schema as it was. The schema's version is the highest
//! recorded version.
//!
//! Several nodes starting at once against a new schema must migrate it once: the transaction first
//! takes a transaction-scoped advisory lock keyed by the schema's name, then reads the version. The
//! second node waits for the first to commit, then finds nothing left to do.
//!
//! Why the refusal: a schema written by a newer Coffer may have columns or meanings this binary does
//! not know, and writing to it could silently lose data. Opening it fails with
//! [`StoreError::SchemaTooNew`] before anything is written.
//!
//! Where: the tables live in the connection's current schema, the first existing schema of its
//! `search_path` (set one per installation with `options=-csearch_path=NAME` in the URL).

use coffer_store::{StoreError, StoreResult};
use tokio_postgres::Client;

use crate::error::{corrupt, map_pg};

/// One embedded migration.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Versions are consecutive from 1. Never edit a released migration; add one.
const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/0001_initial.sql") },
    Migration { version: 2, name: "audit", sql: include_str!("../migrations/0002_audit.sql") },
];

/// The schema version this binary writes (the last migration's).
pub const SCHEMA_VERSION: i64 = 2;

/// The advisory lock's first key: "Coff". The second is a hash of the schema's name, so installations
/// in different schemas of one database do not wait for each other.
const MIGRATION_LOCK_CLASS: i32 = 0x436f_6666;

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Applies pending migrations in one transaction under the advisory lock, or refuses a newer schema.
pub(crate) async fn migrate(client: &mut Client) -> StoreResult<()> {
    let tx = client.transaction().await.map_err(map_pg)?;
    let schema: Option<String> = tx
        .query_one("SELECT current_schema()", &[])
        .await
        .map_err(map_pg)?
        .try_get(0)
        .map_err(|e| corrupt(format!("postgres: reading the current schema: {e}")))?;
    let schema = schema.ok_or_else(|| {
        StoreError::Unavailable(
            "postgres: no schema to keep Coffer's tables in: the connection's search_path names no existing \
             schema (create it, or fix options=-csearch_path=... in the storage URL)"
                .into(),
        )
    })?;
    tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&MIGRATION_LOCK_CLASS, &schema])
        .await
        .map_err(map_pg)?;

    // Read under the lock: a node that migrated meanwhile has committed by now.
    let has_versions: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = 'schema_version')",
            &[&schema],
        )
        .await
        .map_err(map_pg)?
        .try_get(0)
        .map_err(|e| corrupt(format!("postgres: reading the catalog: {e}")))?;
    let versions_table = format!("{}.schema_version", quote_ident(&schema));
    let current: i64 = if has_versions {
        tx.query_one(&format!("SELECT COALESCE(MAX(version), 0)::BIGINT FROM {versions_table}"), &[])
            .await
            .map_err(map_pg)?
            .try_get(0)
            .map_err(|e| corrupt(format!("postgres: reading the schema version: {e}")))?
    } else {
        0
    };
    if current > SCHEMA_VERSION {
        // Dropping `tx` rolls back: nothing was written.
        return Err(StoreError::SchemaTooNew { found: current, supported: SCHEMA_VERSION });
    }
    if current == SCHEMA_VERSION {
        return tx.commit().await.map_err(map_pg);
    }
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {versions_table} (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )"
    ))
    .await
    .map_err(map_pg)?;
    let record = format!("INSERT INTO {versions_table} (version, name) VALUES ($1, $2)");
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql).await.map_err(map_pg)?;
        tx.execute(&record, &[&m.version, &m.name]).await.map_err(map_pg)?;
    }
    tx.commit().await.map_err(map_pg)?;
    tracing::info!(schema = %schema, from = current, to = SCHEMA_VERSION, "applied database migrations");
    Ok(())
}

/// Refuses a schema that is not exactly this binary's version (older: start a node on it once to
/// migrate it; newer: use a newer Coffer), without writing anything.
pub(crate) async fn require_current(client: &Client) -> StoreResult<()> {
    let row = client
        .query_one(
            "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 0::BIGINT \
             ELSE (SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version) END",
            &[],
        )
        .await;
    // `to_regclass` resolves through the search_path, but the subquery is planned even when the CASE
    // does not take it: a missing table fails the statement, which means version 0.
    let found: i64 = match row {
        Ok(row) => row.try_get(0).map_err(|e| corrupt(format!("postgres: reading the schema version: {e}")))?,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => 0,
        Err(e) => return Err(map_pg(e)),
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
    }
    if found < SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "postgres: the schema is at version {found}, not {SCHEMA_VERSION}: start a Coffer node on it once to \
             migrate it (an empty schema has no Coffer installation)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_consecutive_and_end_at_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
            assert!(!m.sql.trim().is_empty(), "{}", m.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("coffer"), "\"coffer\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
