//! Schema migrations and connection settings.
//!
//! Migrations are the files in `migrations/NNNN_name.sql`, embedded in the binary with `include_str!`
//! and applied in order, each in the same transaction as the `schema_version` row that records it. The
//! database's schema version is the highest recorded version.
//!
//! Why the refusal: a database written by a newer Coffer may have columns or meanings this binary does
//! not know, and writing to it could silently lose data. Opening such a file fails with
//! [`StoreError::SchemaTooNew`] before anything is written — the version is probed on a read-only
//! connection, before even the journal mode is touched.
//!
//! Durability settings (applied to every writing connection): WAL journal, so readers never block the
//! writer and a commit is one sequential append; `synchronous=FULL`, so the WAL is fsynced at every
//! commit and an acknowledged write survives power loss; a `busy_timeout`, so another process briefly
//! holding a lock (a backup, a second node on the same file) delays rather than fails a request.

use std::path::Path;
use std::time::Duration;

use coffer_store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::{map_sqlite, unavailable};

/// One embedded migration.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Versions are consecutive from 1. Never edit a released migration; add one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/0001_initial.sql") },
    Migration { version: 2, name: "parameters", sql: include_str!("../migrations/0002_parameters.sql") },
    Migration { version: 3, name: "kms", sql: include_str!("../migrations/0003_kms.sql") },
    Migration { version: 4, name: "iam", sql: include_str!("../migrations/0004_iam.sql") },
    Migration { version: 5, name: "audit", sql: include_str!("../migrations/0005_audit.sql") },
    Migration { version: 6, name: "audit_blocks", sql: include_str!("../migrations/0006_audit_blocks.sql") },
];

/// The schema version this binary writes (the last migration's).
pub const SCHEMA_VERSION: i64 = 6;

/// The first schema version with the audit log: the oldest a read-only opener accepts.
pub const AUDIT_SCHEMA_VERSION: i64 = 5;

/// How long a connection waits for a lock held by another connection or process before giving up
/// with `Unavailable`.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Upper bound the WAL file is truncated to after a checkpoint resets it, so one burst of writes does
/// not leave a huge file behind.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The recorded schema version, 0 for a database without the `schema_version` table (new or empty).
pub(crate) fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
}

fn refuse_if_too_new(found: i64) -> StoreResult<()> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
    }
    Ok(())
}

/// Reads the schema version of an existing file without writing anything to it (no journal-mode
/// change, no checkpoint on close) and refuses a newer one.
pub(crate) fn probe_existing(path: &Path) -> StoreResult<()> {
    if !path.exists() {
        return Ok(());
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(map_sqlite)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_sqlite)?;
    refuse_if_too_new(schema_version(&conn).map_err(map_sqlite)?)
}

/// Settings every read-write connection gets (the writer and the checkpointer).
pub(crate) fn configure_writer(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_sqlite)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(map_sqlite)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(unavailable(format!("sqlite: cannot enable WAL journal mode (got {mode})")));
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(map_sqlite)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT).map_err(map_sqlite)?;
    // Checkpoints copy WAL pages into the database file and fsync it. Run automatically they happen
    // inside the commit that crosses the threshold and stall every write queued behind it; the
    // checkpointer thread runs them instead (see `writer::checkpoint_loop`).
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(map_sqlite)?;
    conn.pragma_update(None, "cache_size", -65_536).map_err(map_sqlite)?; // 64 MiB
    conn.pragma_update(None, "trusted_schema", false).map_err(map_sqlite)?;
    // The writer cycles through ~45 distinct statements; the default cache (16) would thrash.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Applies pending migrations in one IMMEDIATE transaction. The version is re-read under the write
/// lock, so two processes opening a new file at once migrate it once, and a newer schema written
/// since the probe is still refused without a change.
pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_sqlite)?;
    let current = schema_version(&tx).map_err(map_sqlite)?;
    refuse_if_too_new(current)?;
    if current == SCHEMA_VERSION {
        return Ok(()); // dropping `tx` rolls back an empty transaction
    }
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)").map_err(map_sqlite)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql).map_err(map_sqlite)?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [m.version]).map_err(map_sqlite)?;
        tracing::info!(version = m.version, name = m.name, "applied database migration");
    }
    tx.commit().map_err(map_sqlite)
}
