//! What the rotator tests share: a service over the in-memory store with the real clock, and a
//! request of the account's root user.

#![allow(dead_code)]

use std::sync::Arc;

use coffer_crypto::{Keyring, MasterKey};
use coffer_service::{ActorSource, Principal, RequestContext, Service, ServiceConfig, SystemClock};
use coffer_store::MemoryStore;

pub const ACCOUNT: &str = "123456789012";

/// A service with the PostgreSQL rotators registered, as the server registers them.
pub fn service() -> Arc<Service> {
    let service = Arc::new(Service::new(
        Arc::new(MemoryStore::new()),
        Arc::new(Keyring::new(&MasterKey::from_bytes([9u8; 32]))),
        Arc::new(SystemClock),
        ServiceConfig { account_id: ACCOUNT.into(), ..Default::default() },
    ));
    coffer_rotators::register_builtin(&service);
    service
}

pub fn ctx() -> RequestContext {
    RequestContext {
        principal: Principal::root(ACCOUNT, "AKIATEST"),
        region: "us-east-1".into(),
        request_id: "req".into(),
        source_ip: None,
        user_agent: None,
        source: ActorSource::Api,
        secure_transport: true,
        audit: Default::default(),
    }
}
