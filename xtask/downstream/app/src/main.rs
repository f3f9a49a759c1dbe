//! Runs the application once on the in-memory store and prints what its receivers logged.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), app::Error> {
    for message in app::update_a_device(Arc::new(jobhooks_store_memory::MemoryStore::new())).await? {
        println!("{message}");
    }
    Ok(())
}
