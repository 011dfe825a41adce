//! Translation of PostgreSQL failures into [`StoreError`], in storage words the service understands.
//!
//! The mapping decides what a caller may retry, as the SQLite backend's does: a taken unique key is
//! [`StoreError::AlreadyExists`] (a domain answer); a server that cannot be reached, is shutting down,
//! is out of connections or cancelled the statement is [`StoreError::Unavailable`] (the service answers
//! 503, retry later); a row that breaks a constraint or does not decode is [`StoreError::Corrupt`]
//! (never retried); a value PostgreSQL cannot store at all (a NUL character in text, a number out of
//! range) is [`StoreError::InvalidWrite`], and nothing was changed.
//!
//! Messages carry the SQLSTATE and PostgreSQL's primary message only, never its DETAIL: the detail of
//! a unique violation, for one, quotes the key's values. Parameters (sealed envelopes among them) are
//! never part of any message.

use coffer_store::StoreError;
use tokio_postgres::error::SqlState;

/// A failure inside a write transaction: either already in the store's words, or a PostgreSQL error
/// that the retry loop inspects (serialization failures and deadlocks are retried) before mapping it.
#[derive(Debug)]
pub(crate) enum TxError {
    Store(StoreError),
    Pg(tokio_postgres::Error),
    /// A batch of writes lost a race as a whole (`batch.rs`): each of its writers gets this copy of
    /// the error, and may run its write again, since nothing of the batch applied.
    Lost(StoreError),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        TxError::Pg(e)
    }
}

impl TxError {
    /// Whether the transaction lost a race PostgreSQL resolves by aborting it whole (serialization
    /// failure, deadlock): nothing of it was applied, so running it again cannot apply it twice.
    pub fn is_retryable(&self) -> bool {
        match self {
            TxError::Pg(e) => e
                .code()
                .is_some_and(|c| *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED),
            TxError::Lost(_) => true,
            TxError::Store(_) => false,
        }
    }

    pub fn into_store(self) -> StoreError {
        match self {
            TxError::Store(e) | TxError::Lost(e) => e,
            TxError::Pg(e) => map_pg(e),
        }
    }
}

/// Maps any tokio-postgres error to the store's vocabulary.
pub(crate) fn map_pg(e: tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // Not an answer from the server: the connection failed, closed, or timed out. tokio-postgres
        // says which ("error connecting to server"), its source says why ("Connection refused").
        let mut message = format!("postgres: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        return StoreError::Unavailable(short(&message));
    };
    let code = db.code();
    let text = || short(&format!("postgres: {} (SQLSTATE {})", db.message(), code.code()));
    if *code == SqlState::UNIQUE_VIOLATION {
        return StoreError::AlreadyExists;
    }
    match &code.code()[..2] {
        // Integrity constraints other than uniqueness (NOT NULL, CHECK, foreign keys): the row itself
        // is malformed.
        "23" => StoreError::Corrupt(text()),
        // Data exceptions: a value PostgreSQL cannot hold (a NUL character in text or JSON, a number
        // out of range). The statement failed, so nothing was written.
        "22" => StoreError::InvalidWrite(text()),
        // A value too large for an index entry and similar hard limits.
        "54" => StoreError::InvalidWrite(text()),
        // Internal errors, among them data corruption detected by the server.
        "XX" => StoreError::Corrupt(text()),
        // Connection exceptions (08), insufficient resources (53), operator intervention such as a
        // shutdown or a cancelled statement (57), lost races past their retries (40), a schema that is
        // missing or not migrated (42, 3F), and anything else: retry later.
        _ => StoreError::Unavailable(text()),
    }
}

/// A deadpool failure (no connection could be had) in the store's words: always `Unavailable`.
pub(crate) fn map_pool(e: deadpool_postgres::PoolError) -> StoreError {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => map_pg(e),
        PoolError::Timeout(kind) => {
            StoreError::Unavailable(format!("postgres: no database connection within the timeout ({kind:?})"))
        }
        PoolError::Closed => StoreError::Unavailable("postgres: the connection pool is closed".into()),
        other => StoreError::Unavailable(short(&format!("postgres: cannot get a connection: {other}"))),
    }
}

/// A `Corrupt` naming what failed to decode.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(short(&what.to_string()))
}

/// Cut to a sane length: these messages end up in logs and, through the service, in error replies.
fn short(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
