//! The contract kit on PostgreSQL, each case in a database of its own on the test server
//! (`JOBHOOKS_TEST_PG`, or a throwaway cluster started for this test binary).

use jobhooks_postgres::PgStore;
use jobhooks_postgres::testing::TestServer;

async fn fresh() -> (PgStore, ()) {
    let url = TestServer::shared().fresh_database().await;
    let store = PgStore::connect(&url).await.expect("a fresh database opens as a store");
    (store, ())
}

jobhooks_conformance::store_contract!(fresh);
