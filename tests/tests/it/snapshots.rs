//! Snapshots of recorded changes across the model and the diff engine, in Nautobot's exact shape.

use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeId, ChangeSet, ContentType, Object, ObjectChange, ObjectRef,
    OffsetDateTime, json,
};

fn device(serial: &str) -> Object {
    let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), "42").unwrap();
    Object::new(reference, "edge-1", json!({"name": "edge-1", "serial": serial, "last_updated": serial})).unwrap()
}

#[test]
fn an_update_recorded_in_a_context_has_nautobot_shaped_snapshots() {
    let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
    let mut set = ChangeSet::default();
    set.save(&device("B"), Some(&device("A")));
    set.save(&device("C"), Some(&device("B")));
    let [change] = <[_; 1]>::try_from(set.into_changes()).unwrap();
    let record = ObjectChange::from_pending(ChangeId(1), OffsetDateTime::UNIX_EPOCH, &context, change, None);
    assert_eq!(record.action, Action::Update);
    assert_eq!(record.to_string(), "dcim.device edge-1 updated by alice");
    assert_eq!(
        serde_json::to_value(record.get_snapshots()).unwrap(),
        json!({
            "prechange": {"name": "edge-1", "serial": "A", "last_updated": "A"},
            "postchange": {"name": "edge-1", "serial": "C", "last_updated": "C"},
            "differences": {"added": {"serial": "C"}, "removed": {"serial": "A"}},
        })
    );
}
