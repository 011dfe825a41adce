//! Translation of SQLite failures into [`StoreError`], in storage words the service understands.
//!
//! The mapping decides what a caller may retry: a taken unique key is [`StoreError::AlreadyExists`]
//! (a domain answer), a busy, locked, full or failing disk is [`StoreError::Unavailable`] (retry later),
//! and data that does not decode — a damaged file, a malformed row — is [`StoreError::Corrupt`] (never
//! retried). Messages are kept short: they end up in logs and, through the service, in error replies.

use coffer_store::StoreError;
use rusqlite::ffi;

/// Maps any rusqlite error to the store's vocabulary.
pub(crate) fn map_sqlite(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            C::ConstraintViolation
                if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::AlreadyExists
            }
            // Any other constraint (NOT NULL, CHECK) means the row itself is malformed.
            C::ConstraintViolation | C::DatabaseCorrupt | C::NotADatabase | C::TypeMismatch => {
                StoreError::Corrupt(short(&e))
            }
            // Said in plain words: operators see this in /readyz and must know to free space, not retry.
            C::DiskFull => StoreError::Unavailable(format!("disk full: {}", short(&e))),
            _ => StoreError::Unavailable(short(&e)),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(short(&e)),
        _ => StoreError::Unavailable(short(&e)),
    }
}

/// `sqlite: <message>`, cut to a sane length.
fn short(e: &rusqlite::Error) -> String {
    const MAX: usize = 160;
    let mut s = format!("sqlite: {e}");
    if s.len() > MAX {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// An `Unavailable` from anything displayable (thread spawn failures, a stopped writer, ...).
pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A `Corrupt` naming what failed to decode.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}
