//! Hostile button templates: rendering ends (the fuel limit bounds it) with text or an error.
#![no_main]

use jobhooks_model::{ContentType, Object, ObjectRef, User, json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let object = Object::new(
        ObjectRef::new(ContentType::new("dcim.location").unwrap(), "1").unwrap(),
        "HQ",
        json!({"name": "HQ", "tags": ["a", "b"], "nested": {"x": 1}}),
    ).unwrap();
    let user = User::new("fuzz").unwrap();
    let _ = jobhooks_dispatch::render_button_text(text, &object, &user);
});
