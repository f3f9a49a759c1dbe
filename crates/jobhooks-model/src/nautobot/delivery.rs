//! A delivery of a Nautobot webhook (its default body), read as the change it reports, so that
//! receivers run for changes made in Nautobot.
//!
//! Nautobot's default webhook body is its webhook context as JSON (`nautobot/extras/tasks.py`,
//! `process_webhook`): `event` (`created`, `updated` or `deleted`), `timestamp`, `model` (the model
//! name, `device`), `username`, `request_id`, `data` (the object as its REST API serializes it,
//! with `id` and, in Nautobot 2.x, `object_type`) and `snapshots` (`prechange`, `postchange`,
//! `differences`).

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    Action, ChangeContext, ChangeContextKind, ContentType, Object, ObjectChange, ObjectRef, PendingChange,
    ValidationErrors,
};

/// The change context detail of changes a Nautobot delivery reported.
pub const NAUTOBOT_DETAIL: &str = "nautobot webhook";

/// One delivery of a Nautobot webhook, read: the context the change was made in (Nautobot's user
/// and request id) and the change.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NautobotDelivery {
    /// Kind `unknown` (a webhook does not say whether the change came from the web, the API or a
    /// job), detail [`NAUTOBOT_DETAIL`], Nautobot's user and request id.
    pub context: ChangeContext,
    /// The change: the object as `postchange` shows it (`prechange` for a delete), and for an
    /// update the data before it.
    pub change: PendingChange,
}

impl NautobotDelivery {
    /// Reads a delivery's body. Every problem is a message under the field it concerns.
    ///
    /// ```
    /// use jobhooks_model::{Action, NautobotDelivery, json};
    /// let body = json!({
    ///     "event": "updated", "timestamp": "2026-12-07 09:00:00.000000+00:00", "model": "device",
    ///     "username": "alice", "request_id": "c4e3ec6e-5ba1-4a2b-8e5e-1a4e6f0b8c11",
    ///     "data": {"id": "8f5c", "object_type": "dcim.device", "display": "edge-1", "status": "active"},
    ///     "snapshots": {
    ///         "prechange": {"id": "8f5c", "status": "planned"},
    ///         "postchange": {"id": "8f5c", "status": "active"},
    ///         "differences": {"removed": {"status": "planned"}, "added": {"status": "active"}},
    ///     },
    /// });
    /// let delivery = NautobotDelivery::parse(body.to_string().as_bytes()).unwrap();
    /// assert_eq!(delivery.change.action, Action::Update);
    /// assert_eq!(delivery.context.user.as_deref(), Some("alice"));
    /// assert!(NautobotDelivery::parse(b"[]").is_err());
    /// ```
    pub fn parse(body: &[u8]) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let payload: Map<String, Value> = match serde_json::from_slice(body) {
            Ok(Value::Object(payload)) => payload,
            Ok(_) => {
                errors.add(ValidationErrors::NON_FIELD, "A Nautobot webhook body is a JSON object.");
                return Err(errors);
            }
            Err(error) => {
                errors.add(ValidationErrors::NON_FIELD, format!("The body is not JSON: {error}."));
                return Err(errors);
            }
        };
        let text = |errors: &mut ValidationErrors, field: &str| match payload.get(field) {
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                errors.add(field, "A string is required.");
                None
            }
            None => {
                errors.add(field, "This field is required.");
                None
            }
        };
        let action = text(&mut errors, "event").and_then(|event| match event.as_str() {
            "created" => Some(Action::Create),
            "updated" => Some(Action::Update),
            "deleted" => Some(Action::Delete),
            other => {
                errors.add("event", format!("“{other}” is not one of created, updated, deleted."));
                None
            }
        });
        let model = text(&mut errors, "model");
        let user = match payload.get("username") {
            Some(Value::String(name)) if !name.is_empty() => Some(name.clone()),
            Some(Value::String(_) | Value::Null) | None => None,
            Some(_) => {
                errors.add("username", "A string is required.");
                None
            }
        };
        let request_id = text(&mut errors, "request_id").and_then(|id| match Uuid::parse_str(&id) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add("request_id", format!("“{id}” is not a valid UUID."));
                None
            }
        });
        let data = match payload.get("data") {
            Some(Value::Object(data)) => Some(data),
            Some(_) => {
                errors.add("data", "The object, as Nautobot's REST API serializes it, is required.");
                None
            }
            None => {
                errors.add("data", "This field is required.");
                None
            }
        };
        let snapshot = |errors: &mut ValidationErrors, name: &str| -> Option<Map<String, Value>> {
            match payload.get("snapshots").and_then(|snapshots| snapshots.get(name)) {
                Some(Value::Object(snapshot)) => Some(snapshot.clone()),
                Some(Value::Null) | None => None,
                Some(_) => {
                    errors.add("snapshots", format!("`{name}` is an object or null."));
                    None
                }
            }
        };
        if !matches!(payload.get("snapshots"), Some(Value::Object(_))) {
            errors.add("snapshots", "The change's snapshots (prechange, postchange, differences) are required.");
        }
        let (prechange, postchange) = (snapshot(&mut errors, "prechange"), snapshot(&mut errors, "postchange"));
        let reference = data.and_then(|data| object_of(&mut errors, data, model.as_deref()));
        let (Some(action), Some(request_id), Some(data), Some(reference)) = (action, request_id, data, reference)
        else {
            return Err(errors);
        };
        // What the object is after the change (before it, for a delete); the data when the
        // snapshot is missing.
        let state = match action {
            Action::Delete => prechange.clone(),
            Action::Create | Action::Update => postchange,
        }
        .unwrap_or_else(|| data.clone());
        let repr = ["display", "name"]
            .iter()
            .find_map(|field| data.get(*field).and_then(Value::as_str))
            .unwrap_or_else(|| reference.id())
            .to_owned();
        let object = match Object::new(reference, repr, Value::Object(state)) {
            Ok(object) => object,
            Err(error) => {
                errors.add("data", error.to_string());
                return Err(errors);
            }
        };
        errors.into_result()?;
        let mut change = PendingChange::new(action, &object);
        if let (Action::Update, Some(before)) = (action, prechange) {
            change = change.with_pre_data(before);
        }
        let mut context = ChangeContext::new(ChangeContextKind::Unknown, user, NAUTOBOT_DETAIL);
        context.request_id = request_id;
        Ok(Self { context, change })
    }

    /// Whether `recorded` is this delivery's change, recorded from an earlier delivery of it (a
    /// replay): the same request, object, action and resulting data.
    pub fn is_recorded_as(&self, recorded: &ObjectChange) -> bool {
        recorded.request_id == self.context.request_id
            && recorded.action == self.change.action
            && recorded.object_ref() == self.change.object
            && recorded.object_data.as_object() == Some(&self.change.data)
    }
}

/// The object `data` describes: its type from `object_type` (checked against `model`), its id
/// from `id`.
fn object_of(errors: &mut ValidationErrors, data: &Map<String, Value>, model: Option<&str>) -> Option<ObjectRef> {
    let content_type = match data.get("object_type") {
        Some(Value::String(name)) => match ContentType::new(name.as_str()) {
            Ok(content_type) => Some(content_type),
            Err(error) => {
                errors.add("data", format!("object_type: {error}"));
                None
            }
        },
        _ => {
            errors
                .add("data", "object_type: This field is required (Nautobot 2.x serializes it, as `app_label.model`).");
            None
        }
    }?;
    if let Some(model) = model
        && content_type.as_str().split_once('.').map(|(_, name)| name) != Some(model)
    {
        errors.add("model", format!("“{model}” is not the model of the data's object_type {content_type}."));
        return None;
    }
    let id = match data.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => {
            errors.add("data", "id: This field is required (a string or a number).");
            return None;
        }
    };
    match ObjectRef::new(content_type, id) {
        Ok(reference) => Some(reference),
        Err(error) => {
            errors.add("data", format!("id: {error}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn body(event: &str) -> Value {
        json!({
            "event": event, "timestamp": "2026-12-07 09:00:00.000000+00:00", "model": "device",
            "username": "alice", "request_id": "c4e3ec6e-5ba1-4a2b-8e5e-1a4e6f0b8c11",
            "data": {"id": "8f5c", "object_type": "dcim.device", "display": "edge-1", "status": "active"},
            "snapshots": {
                "prechange": {"id": "8f5c", "status": "planned"},
                "postchange": {"id": "8f5c", "status": "active"},
                "differences": {"removed": {"status": "planned"}, "added": {"status": "active"}},
            },
        })
    }

    fn parse(body: &Value) -> Result<NautobotDelivery, ValidationErrors> {
        NautobotDelivery::parse(body.to_string().as_bytes())
    }

    #[test]
    fn each_event_is_read_with_its_snapshots() {
        let update = parse(&body("updated")).unwrap();
        assert_eq!(update.change.object.to_string(), "dcim.device 8f5c");
        assert_eq!((update.change.repr.as_str(), &update.change.data["status"]), ("edge-1", &json!("active")));
        assert_eq!(update.change.pre_data.as_ref().unwrap()["status"], json!("planned"));
        assert_eq!(
            (update.context.kind, update.context.detail.as_str(), update.context.request_id.to_string().as_str()),
            (ChangeContextKind::Unknown, NAUTOBOT_DETAIL, "c4e3ec6e-5ba1-4a2b-8e5e-1a4e6f0b8c11")
        );
        let delete = parse(&body("deleted")).unwrap();
        assert_eq!((delete.change.action, &delete.change.data["status"]), (Action::Delete, &json!("planned")));
        let create = parse(&body("created")).unwrap();
        assert_eq!((create.change.action, create.change.pre_data.is_none()), (Action::Create, true));
    }

    #[test]
    fn bad_payloads_say_what_is_wrong_under_each_field() {
        let field = |body: Value, field: &str| parse(&body).unwrap_err().field(field).to_vec();
        let mut wrong_event = body("exploded");
        assert_eq!(field(wrong_event.clone(), "event"), ["“exploded” is not one of created, updated, deleted."]);
        wrong_event["request_id"] = json!("nope");
        assert_eq!(field(wrong_event, "request_id"), ["“nope” is not a valid UUID."]);
        let mut no_type = body("updated");
        no_type["data"].as_object_mut().unwrap().remove("object_type");
        assert!(field(no_type, "data")[0].starts_with("object_type: This field is required"));
        let mut other_model = body("updated");
        other_model["model"] = json!("rack");
        assert_eq!(field(other_model, "model"), ["“rack” is not the model of the data's object_type dcim.device."]);
        let mut missing = body("updated");
        missing.as_object_mut().unwrap().remove("snapshots");
        assert!(field(missing, "snapshots")[0].contains("are required"));
        for text in [&b"not json"[..], b"[1]", b"\"x\"", b""] {
            assert!(!NautobotDelivery::parse(text).unwrap_err().field(ValidationErrors::NON_FIELD).is_empty());
        }
    }

    #[test]
    fn a_replay_is_recognised_by_request_object_action_and_data() {
        let delivery = parse(&body("updated")).unwrap();
        let recorded = ObjectChange::from_pending(
            crate::ChangeId(7),
            time::OffsetDateTime::UNIX_EPOCH,
            &delivery.context,
            delivery.change.clone(),
            None,
        );
        assert!(delivery.is_recorded_as(&recorded));
        let mut later = body("updated");
        later["snapshots"]["postchange"]["status"] = json!("offline");
        assert!(!parse(&later).unwrap().is_recorded_as(&recorded), "another change in the same request");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_are_an_error_or_a_delivery_never_a_panic(bytes in any::<Vec<u8>>()) {
            let _ = NautobotDelivery::parse(&bytes);
        }

        #[test]
        fn arbitrary_json_fields_are_an_error_or_a_delivery(event in ".{0,8}", id in ".{0,40}", object_type in ".{0,20}") {
            let mut payload = body("updated");
            payload["event"] = json!(event);
            payload["data"]["id"] = json!(id);
            payload["data"]["object_type"] = json!(object_type);
            if let Err(errors) = parse(&payload) {
                prop_assert!(!errors.is_empty());
            }
        }
    }
}
