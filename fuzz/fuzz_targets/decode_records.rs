//! Decoding any stored record type from arbitrary bytes: an error or a value, never a panic.
#![no_main]

use jobhooks_model::{JobButton, JobHook, JobRecord, JobResult, ObjectChange, User};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = serde_json::from_slice::<ObjectChange>(bytes);
    let _ = serde_json::from_slice::<JobResult>(bytes);
    let _ = serde_json::from_slice::<JobHook>(bytes);
    let _ = serde_json::from_slice::<JobButton>(bytes);
    let _ = serde_json::from_slice::<JobRecord>(bytes);
    let _ = serde_json::from_slice::<User>(bytes);
    if let Ok(change) = serde_json::from_slice::<ObjectChange>(bytes) {
        let _ = serde_json::to_string(&change.get_snapshots());
        let _ = change.to_string();
    }
});
