//! A unit test of the application's receivers on the in-memory store, in an integration-test
//! binary of its own (which is why `registry()` calls `receivers::link()`).

use std::sync::Arc;

use jobhooks_dispatch::prelude::*;
use jobhooks_store_memory::MemoryStore;

#[tokio::test]
async fn a_device_update_runs_the_linked_receiver_and_the_instance() {
    let messages = app::update_a_device(Arc::new(MemoryStore::new())).await.unwrap();
    assert_eq!(messages, ["changed: serial", "would post `dcim.device sw1 updated by alice` to #netops"]);
}

#[test]
fn class_paths_are_the_receivers_module_path_and_type() {
    assert_eq!(receivers::LogDiff::CLASS_PATH, "receivers::LogDiff");
    assert_eq!(receivers::Notify::CLASS_PATH, "receivers::Notify");
    let registry = app::registry().unwrap();
    let paths: Vec<String> = registry.jobs().map(|job| job.class_path()).collect();
    assert_eq!(paths, ["app::NotifyNoc", "receivers::LogDiff", "receivers::Notify"]);
}
