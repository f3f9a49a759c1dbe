//! The contract kit on the sled store, each case in a fresh temporary directory.

use jobhooks_store::Store;

async fn fresh() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path()).expect("a fresh store opens");
    (store, dir)
}

jobhooks_conformance::store_contract!(fresh);
