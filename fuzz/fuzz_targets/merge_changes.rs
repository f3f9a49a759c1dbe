//! Change-context merging on arbitrary sequences: at most create-then-delete per object, and the
//! last data recorded for an object always wins.
#![no_main]

use jobhooks_model::{Action, ContentType, Object, ObjectRef, PendingChange, json, merge_changes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|ops: Vec<(u8, u8, u8)>| {
    let changes: Vec<PendingChange> = ops
        .iter()
        .map(|&(action, id, data)| {
            let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), (id % 4).to_string()).unwrap();
            PendingChange::new(Action::ALL[usize::from(action % 3)], &Object::new(reference, "d", json!({"v": data})).unwrap())
        })
        .collect();
    let merged = merge_changes(changes.clone());
    for id in 0..4u8 {
        let id = id.to_string();
        let of_object: Vec<_> = merged.iter().filter(|c| c.object.id() == id).collect();
        match of_object.as_slice() {
            [] | [_] => {}
            [first, second] => assert!(first.action == Action::Create && second.action == Action::Delete),
            more => panic!("{} records for one object", more.len()),
        }
        let last_in = changes.iter().rev().find(|c| c.object.id() == id).map(|c| &c.data);
        let last_out = merged.iter().rev().find(|c| c.object.id() == id).map(|c| &c.data);
        assert_eq!(last_in, last_out);
    }
});
