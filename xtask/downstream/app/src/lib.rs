//! The application: its registry (the linked receivers plus configured instances) and one
//! device update that its hooks see.

use std::sync::Arc;

use jobhooks_dispatch::prelude::*;
use jobhooks_store_memory::MemoryStore;
use receivers::{LogDiff, Notify};

pub use jobhooks_dispatch::Error;

/// The linked receivers, and `Notify` twice with different channels.
pub fn registry() -> Result<Registry, Error> {
    receivers::link();
    let registry = Registry::from_linked()?
        .with_hook_receiver(Notify { channel: "#netops".into() }, JobMeta::new())?
        .with_hook_receiver(Notify { channel: "#noc".into() }, JobMeta::new().class_path("app::NotifyNoc"))?;
    Ok(registry)
}

/// Starts a dispatcher on `store`, hooks `LogDiff` and `Notify` to device updates, updates a
/// device, waits for the runs and returns their log messages, sorted.
pub async fn update_a_device(store: Arc<MemoryStore>) -> Result<Vec<String>, Error> {
    let dispatcher = Dispatcher::start(store.clone(), registry()?, DispatcherConfig::default()).await?;
    let devices = vec![ContentType::new("dcim.device")?];
    for (name, job) in [("diff", LogDiff::CLASS_PATH), ("notify", Notify::CLASS_PATH)] {
        store.set_job_enabled(job, true).await?;
        store.create_hook(JobHook::new(name, devices.clone(), job).on([Action::Update])).await?;
    }
    let device = ObjectRef::new(ContentType::new("dcim.device")?, "1")?;
    for serial in ["A1", "B2"] {
        let mut session = store.session(ChangeContext::web("alice"));
        session.save(Object::new(device.clone(), "sw1", json!({"name": "sw1", "serial": serial}))?).await?;
        session.commit().await?;
    }
    dispatcher.drain().await?;
    let results = store.list_results(&Default::default()).await?;
    let mut messages: Vec<String> = results
        .iter()
        .flat_map(|result| &result.logs)
        .filter(|entry| entry.grouping == JobContext::MAIN_GROUPING)
        .map(|entry| entry.message.clone())
        .collect();
    messages.sort();
    dispatcher.shutdown(std::time::Duration::from_secs(5)).await;
    Ok(messages)
}
