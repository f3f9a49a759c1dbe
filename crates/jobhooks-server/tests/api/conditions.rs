//! Hook conditions and changed fields through the API: saved, shown, decided when a write through
//! `/api/objects/` commits; a bad condition is a 400 under `conditions` and writes nothing; a PUT
//! of the same body records nothing.

use super::*;

/// PATCHes device 1's data as alice and answers how many hook runs the write queued and whether
/// it recorded a change.
async fn patch_device(server: &Server, data: Value) -> (bool, usize) {
    let body = Some(json!({ "data": data }));
    let (status, written) =
        server.call(reqwest::Method::PATCH, "/api/objects/dcim.device/1/", Some(&server.alice), body).await;
    assert_eq!(status, StatusCode::OK, "{written}");
    (!written["change"].is_null(), written["runs"].as_array().unwrap().len())
}

#[tokio::test]
async fn a_hooks_conditions_and_changed_fields_decide_which_writes_run_it() {
    let server = Server::start().await;
    let condition = json!({"attr": "postchange.status", "value": ["active", "staged"], "op": "in"});
    let body = json!({
        "name": "activations", "content_types": ["dcim.device"], "job": AUDIT, "type_update": true,
        "conditions": condition, "changed_fields": ["status"],
    });
    let (status, created) = server.post("/api/extras/job-hooks/", &server.root, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!((&created["conditions"]["op"], &created["changed_fields"]), (&json!("in"), &json!(["status"])));
    let path = format!("/api/extras/job-hooks/{}/", created["id"].as_str().unwrap());
    let (_, shown) = server.get(&path, &server.alice).await;
    assert_eq!(shown["conditions"], created["conditions"]);

    // The condition is false: the change is recorded, nothing runs.
    assert_eq!(patch_device(&server, json!({"status": "planned"})).await, (true, 0));
    // True, and `status` changed: it runs.
    assert_eq!(patch_device(&server, json!({"status": "active"})).await, (true, 1));
    // True, but only `serial` changed: not one of its changed fields.
    assert_eq!(patch_device(&server, json!({"serial": "A1"})).await, (true, 0));
    // A write that changes nothing records nothing, as in Nautobot 3.3.
    assert_eq!(patch_device(&server, json!({"serial": "A1"})).await, (false, 0));
    let same = Some(json!({"repr": "sw1", "data": {"name": "sw1", "status": "active", "serial": "A1"}}));
    let (status, written) =
        server.call(reqwest::Method::PUT, "/api/objects/dcim.device/1/", Some(&server.alice), same).await;
    assert_eq!((status, &written["change"], &written["runs"]), (StatusCode::OK, &Value::Null, &json!([])));

    // `null` removes the conditions; an empty list of fields admits every update.
    let patch = Some(json!({"conditions": null, "changed_fields": []}));
    let (status, patched) = server.call(reqwest::Method::PATCH, &path, Some(&server.root), patch).await;
    assert_eq!(
        (status, &patched["conditions"], &patched["changed_fields"]),
        (StatusCode::OK, &Value::Null, &json!([]))
    );
    assert_eq!(patch_device(&server, json!({"serial": "B2"})).await, (true, 1));
    server.stop().await;
}

#[tokio::test]
async fn a_bad_condition_is_a_400_under_its_field_and_writes_nothing() {
    let server = Server::start().await;
    let hook_with = |conditions: Value, changed_fields: Value| {
        json!({
            "name": "guarded", "content_types": ["dcim.device"], "job": AUDIT, "type_create": true,
            "conditions": conditions, "changed_fields": changed_fields,
        })
    };
    let cases = [
        (
            json!({"attr": "status", "value": "active"}),
            "conditions",
            "must start with prechange., postchange. or differences.",
        ),
        (json!({"attr": "postchange.status", "value": 1, "op": "like"}), "conditions", "unknown operator `like`"),
        (json!({"attr": "postchange.name", "value": "(", "op": "regex"}), "conditions", "the pattern does not compile"),
        (json!({"and": {"attr": "postchange.name", "value": 1}}), "conditions", "a list of conditions is required"),
        (json!("status == active"), "conditions", "a condition is an object"),
        (Value::Null, "changed_fields", "Changed fields narrow updates: select the update type too."),
    ];
    for (conditions, field, message) in cases {
        let body = hook_with(conditions.clone(), if field == "changed_fields" { json!(["status"]) } else { json!([]) });
        let (status, refused) = server.post("/api/extras/job-hooks/", &server.root, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{conditions}: {refused}");
        let said = refused[field][0].as_str().unwrap_or_else(|| panic!("{conditions}: {refused}"));
        assert!(said.contains(message), "{conditions}: {said}");
    }
    let (_, hooks) = server.get("/api/extras/job-hooks/?name=guarded", &server.root).await;
    assert_eq!(hooks["count"], 0, "{hooks}");

    // An update with a bad condition leaves the stored hook as it was.
    let good = hook_with(json!({"attr": "postchange.name", "value": "sw1"}), json!([]));
    let (status, created) = server.post("/api/extras/job-hooks/", &server.root, good).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!("/api/extras/job-hooks/{}/", created["id"].as_str().unwrap());
    let bad = Some(json!({"conditions": {"attr": "postchange.name", "value": "x", "op": "regex", "negate": "yes"}}));
    let (status, refused) = server.call(reqwest::Method::PATCH, &path, Some(&server.root), bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["conditions"][0].as_str().unwrap().contains("true or false is required"), "{refused}");
    let (_, stored) = server.get(&path, &server.root).await;
    assert_eq!(stored["conditions"], created["conditions"]);
    server.stop().await;
}
