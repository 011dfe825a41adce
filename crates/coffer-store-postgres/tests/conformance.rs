//! The PostgreSQL backend passes the shared conformance suite, each case in a fresh schema.

mod common;

coffer_store::conformance_suite!(async {
    let schema = common::TestSchema::create().await;
    let store = schema.open().await;
    (store, schema)
});
