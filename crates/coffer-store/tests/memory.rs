//! The in-memory store passes the same conformance suite as the durable backends.

coffer_store::conformance_suite!(async { (coffer_store::MemoryStore::new(), ()) });
