//! The bridge from Nautobot: `POST /api/ingest/nautobot/` with the default body of a Nautobot
//! webhook, signed as Nautobot signs it, records the change (once, however often it is delivered)
//! and runs the hooks it matches; an unsigned, badly signed or malformed delivery writes nothing.

use jobhooks_model::sign_body;

use super::*;

const SECRET: &str = "the webhook's secret in Nautobot";
const REQUEST: &str = "c4e3ec6e-5ba1-4a2b-8e5e-1a4e6f0b8c11";

/// A delivery as Nautobot's `process_webhook` sends it for `event` on device 42, which only
/// Nautobot has held until now.
fn delivery(event: &str, status_before: &str, status_after: &str) -> Value {
    let before =
        json!({"id": "42", "object_type": "dcim.device", "display": "sw1", "name": "sw1", "status": status_before});
    let after =
        json!({"id": "42", "object_type": "dcim.device", "display": "sw1", "name": "sw1", "status": status_after});
    let (prechange, postchange) = match event {
        "created" => (Value::Null, after.clone()),
        "deleted" => (before.clone(), Value::Null),
        _ => (before.clone(), after.clone()),
    };
    json!({
        "event": event,
        "timestamp": "2026-12-07 09:00:00.123456+00:00",
        "model": "device",
        "username": "nautobot-alice",
        "request_id": REQUEST,
        "data": if event == "deleted" { before } else { after },
        "snapshots": {
            "prechange": prechange,
            "postchange": postchange,
            "differences": {"removed": {"status": status_before}, "added": {"status": status_after}},
        },
    })
}

/// POSTs `body` with `signature` (none when `None`).
async fn deliver(server: &Server, body: &[u8], signature: Option<String>) -> (StatusCode, Value) {
    let mut request = server
        .client
        .post(server.url("/api/ingest/nautobot/"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("X-Hook-Signature", signature);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn change_count(server: &Server) -> u64 {
    server.get("/api/extras/object-changes/?limit=1", &server.root).await.1["count"].as_u64().unwrap()
}

#[tokio::test]
async fn a_signed_delivery_is_recorded_once_and_runs_hooks() {
    let server = Server::start_configured(Default::default(), |state| state.with_nautobot_ingest(SECRET)).await;
    let hook = json!({"name": "updates", "content_types": ["dcim.device"], "job": AUDIT, "type_update": true, "type_delete": true});
    assert_eq!(server.post("/api/extras/job-hooks/", &server.root, hook).await.0, StatusCode::CREATED);
    let before = change_count(&server).await;

    let body = delivery("updated", "planned", "active").to_string();
    let (status, recorded) = deliver(&server, body.as_bytes(), Some(sign_body(SECRET, body.as_bytes()))).await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    assert_eq!((recorded["runs"].as_array().unwrap().len(), &recorded["replayed"]), (1, &json!(false)));
    let change = recorded["change"].as_u64().unwrap();
    let (_, shown) = server.get(&format!("/api/extras/object-changes/{change}/"), &server.root).await;
    assert_eq!(
        (&shown["user_name"], &shown["request_id"], &shown["change_context"]["value"], &shown["action"]["value"]),
        (&json!("nautobot-alice"), &json!(REQUEST), &json!("unknown"), &json!("update"))
    );
    assert_eq!(shown["change_context_detail"], "nautobot webhook");
    assert_eq!(shown["snapshots"]["prechange"]["status"], "planned");
    assert_eq!(shown["snapshots"]["postchange"]["status"], "active");
    let (_, object) = server.get("/api/objects/dcim.device/42/", &server.root).await;
    assert_eq!(object["data"]["status"], "active");

    // Nautobot retries a delivery it thinks failed: the replay is recorded once.
    let (status, replay) = deliver(&server, body.as_bytes(), Some(sign_body(SECRET, body.as_bytes()))).await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!((&replay["change"], &replay["runs"], &replay["replayed"]), (&json!(change), &json!([]), &json!(true)));
    assert_eq!(change_count(&server).await, before + 1);

    // A delete removes the object and runs the hook as well.
    let body = delivery("deleted", "active", "active").to_string();
    let (status, deleted) = deliver(&server, body.as_bytes(), Some(sign_body(SECRET, body.as_bytes()))).await;
    assert_eq!((status, deleted["runs"].as_array().unwrap().len()), (StatusCode::CREATED, 1), "{deleted}");
    assert_eq!(server.get("/api/objects/dcim.device/42/", &server.root).await.0, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn unsigned_badly_signed_or_malformed_deliveries_write_nothing() {
    let server = Server::start_configured(Default::default(), |state| state.with_nautobot_ingest(SECRET)).await;
    let before = change_count(&server).await;
    let body = delivery("updated", "planned", "active").to_string();

    let (status, refused) = deliver(&server, body.as_bytes(), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(refused["detail"].as_str().unwrap().contains("X-Hook-Signature header is required"), "{refused}");
    let (status, refused) = deliver(&server, body.as_bytes(), Some(sign_body("another secret", body.as_bytes()))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(refused["detail"].as_str().unwrap().contains("does not match the body"), "{refused}");
    // The signature covers the body: a changed body with the old signature is refused.
    let tampered = body.replace("active", "offline");
    let (status, _) = deliver(&server, tampered.as_bytes(), Some(sign_body(SECRET, body.as_bytes()))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let mut no_type = delivery("updated", "planned", "active");
    no_type["data"].as_object_mut().unwrap().remove("object_type");
    no_type["event"] = json!("exploded");
    let no_type = no_type.to_string();
    let (status, refused) = deliver(&server, no_type.as_bytes(), Some(sign_body(SECRET, no_type.as_bytes()))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["event"], json!(["“exploded” is not one of created, updated, deleted."]));
    assert!(refused["data"][0].as_str().unwrap().starts_with("object_type: This field is required"), "{refused}");
    let (status, refused) = deliver(&server, b"[]", Some(sign_body(SECRET, b"[]"))).await;
    assert_eq!(
        (status, &refused["non_field_errors"]),
        (StatusCode::BAD_REQUEST, &json!(["A Nautobot webhook body is a JSON object."]))
    );
    assert_eq!(change_count(&server).await, before, "nothing was recorded");
    server.stop().await;

    // Without a secret, the bridge is off.
    let server = Server::start().await;
    let (status, refused) = deliver(&server, body.as_bytes(), Some(sign_body(SECRET, body.as_bytes()))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(refused["detail"].as_str().unwrap().contains("ingest.nautobot.secret"), "{refused}");
    server.stop().await;
}
