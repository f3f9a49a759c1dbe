//! The contract kit on the in-memory store.

use jobhooks_store_memory::MemoryStore;

async fn fresh() -> (MemoryStore, ()) {
    (MemoryStore::new(), ())
}

jobhooks_conformance::store_contract!(fresh);
