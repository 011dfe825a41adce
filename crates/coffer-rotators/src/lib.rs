//! Rotators that reach outside the server, registered with the service by the server at start:
//! PostgreSQL users ([`postgres`]) and external rotators ([`external`]). The built-in rotators that
//! need nothing outside (generated values, signing keys) live in the service.

pub mod external;
pub mod postgres;

use std::sync::Arc;

use coffer_service::Service;

/// Registers the PostgreSQL rotators under their function names (`coffer-postgres-single-user`,
/// `coffer-postgres-alternating-users`).
pub fn register_builtin(service: &Service) {
    let rotators = service.rotators();
    rotators.register_builtin("coffer-postgres-single-user", Arc::new(postgres::PostgresSingleUser));
    rotators.register_builtin("coffer-postgres-alternating-users", Arc::new(postgres::PostgresAlternatingUsers));
}
