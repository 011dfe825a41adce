//! The fixture the service tests share: a service over the in-memory store with a manual clock, and a
//! request context of the account's root user.

// Each test binary uses its own subset of these.
#![allow(dead_code)]

use std::sync::Arc;

use coffer_crypto::{Keyring, MasterKey};
use coffer_service::{ActorSource, ManualClock, Principal, PrincipalKind, RequestContext, Service, ServiceConfig};
use coffer_store::MemoryStore;

pub const ACCOUNT: &str = "123456789012";
pub const T0: i64 = 1_700_000_000_000;
/// The master key every fixture service uses (tests that seal by hand need the same one).
pub const MASTER_KEY: [u8; 32] = [3u8; 32];

pub fn service() -> (Service, Arc<MemoryStore>, Arc<ManualClock>) {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let service = Service::new(
        store.clone(),
        Arc::new(Keyring::new(&MasterKey::from_bytes(MASTER_KEY))),
        clock.clone(),
        ServiceConfig { account_id: ACCOUNT.into(), ..Default::default() },
    );
    (service, store, clock)
}

/// A request of the root user in `region`.
pub fn root_ctx(region: &str) -> RequestContext {
    RequestContext {
        principal: Principal::root(ACCOUNT, "AKIATEST"),
        region: region.into(),
        request_id: "req".into(),
        source_ip: None,
        user_agent: None,
        source: ActorSource::Api,
        secure_transport: true,
        audit: Default::default(),
    }
}

/// A request of the IAM user `name` in `region` (its policies are whatever the test stored for it).
pub fn user_ctx(region: &str, name: &str) -> RequestContext {
    RequestContext {
        principal: Principal {
            arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            account_id: ACCOUNT.into(),
            user_name: name.into(),
            access_key_id: "AKIAUSERTEST".into(),
            kind: PrincipalKind::User { name: name.into() },
            session: None,
        },
        ..root_ctx(region)
    }
}
