//! Deep diff and patch round trip on arbitrary JSON documents: `apply(a, deep_diff(a, b)) == b`,
//! and the diff applied to a third document is an error or a value, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let mut documents = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let (Some(Ok(a)), Some(Ok(b))) = (documents.next(), documents.next()) else { return };
    let patch = jobhooks_diff::deep_diff(&a, &b);
    assert_eq!(jobhooks_diff::apply(&a, &patch).unwrap(), b);
    let _ = jobhooks_diff::apply(&b, &patch);
    let _ = jobhooks_diff::snapshots(Some(&a), Some(&b));
});
