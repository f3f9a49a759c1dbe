//! Application objects as jobhooks sees them.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ContentType, ModelError, ObjectRef};

/// One application object: what it is, a human-readable text for it, and its data, a JSON object.
///
/// Valid by construction: [`Object::new`] and deserialization refuse data that is not a JSON
/// object (`[1, 2]`, `42`, `null`, `"x"`), so every change has an object for its postchange and
/// its differences.
///
/// ```
/// use jobhooks_model::{ContentType, Object, ObjectRef, json};
/// let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), "1").unwrap();
/// let device = Object::new(reference.clone(), "edge-1", json!({"serial": "A1"})).unwrap();
/// assert_eq!(device.field("serial"), Some(&json!("A1")));
/// let err = Object::new(reference, "edge-1", json!([1, 2, 3])).unwrap_err();
/// assert_eq!(err.to_string(), "invalid data of dcim.device 1: an object's data must be a JSON object, not an array");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(
        description = "One application object: its type and id, a text for people (`repr`), and its data, a JSON object."
    )
)]
#[serde(try_from = "RawObject")]
pub struct Object {
    #[serde(flatten)]
    reference: ObjectRef,
    repr: String,
    data: Map<String, Value>,
}

/// An object as it arrives, before its data is checked.
#[derive(Deserialize)]
struct RawObject {
    #[serde(flatten)]
    reference: ObjectRef,
    repr: String,
    data: Value,
}

impl TryFrom<RawObject> for Object {
    type Error = ModelError;
    fn try_from(raw: RawObject) -> Result<Self, Self::Error> {
        Self::new(raw.reference, raw.repr, raw.data)
    }
}

/// The data of `reference`, which must be a JSON object.
pub(crate) fn object_data(reference: &ObjectRef, data: Value) -> Result<Map<String, Value>, ModelError> {
    match data {
        Value::Object(fields) => Ok(fields),
        other => Err(ModelError::InvalidObjectData { object: reference.to_string(), found: json_kind(&other) }),
    }
}

/// What kind of JSON value `value` is, with its article, for messages.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Object {
    /// Builds an object; `data` must be a JSON object.
    pub fn new(reference: ObjectRef, repr: impl Into<String>, data: Value) -> Result<Self, ModelError> {
        let data = object_data(&reference, data)?;
        Ok(Self { reference, repr: repr.into(), data })
    }

    /// Builds an object from its fields.
    pub fn from_fields(reference: ObjectRef, repr: impl Into<String>, data: Map<String, Value>) -> Self {
        Self { reference, repr: repr.into(), data }
    }

    /// Its type and id.
    pub fn reference(&self) -> &ObjectRef {
        &self.reference
    }

    /// How it reads to a person (Django's `str(obj)`), e.g. the device name.
    pub fn repr(&self) -> &str {
        &self.repr
    }

    /// Its fields.
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    /// Its fields, as a JSON value (always an object).
    pub fn data_value(&self) -> Value {
        Value::Object(self.data.clone())
    }

    /// Its parts: reference, text and fields.
    pub fn into_parts(self) -> (ObjectRef, String, Map<String, Value>) {
        (self.reference, self.repr, self.data)
    }

    /// Its content type.
    pub fn content_type(&self) -> &ContentType {
        self.reference.content_type()
    }

    /// Its id.
    pub fn id(&self) -> &str {
        self.reference.id()
    }

    /// The field `name` of its data.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.data.get(name)
    }

    /// Sets the field `name` of its data.
    pub fn set_field(&mut self, name: impl Into<String>, value: Value) {
        self.data.insert(name.into(), value);
    }

    /// Replaces how it reads to a person.
    pub fn set_repr(&mut self, repr: impl Into<String>) {
        self.repr = repr.into();
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn device() -> ObjectRef {
        ObjectRef::new(ContentType::new("dcim.device").unwrap(), "1").unwrap()
    }

    /// Defect found in acceptance testing: data that is not a JSON object was accepted, and its
    /// changes had a `null` postchange and differences that were not objects.
    #[test]
    fn data_that_is_not_a_json_object_is_refused_by_the_constructor() {
        for (data, found) in [
            (json!([1, 2, 3]), "an array"),
            (json!(42), "a number"),
            (json!(null), "null"),
            (json!("x"), "a string"),
            (json!(true), "a boolean"),
        ] {
            let err = Object::new(device(), "d", data).unwrap_err();
            assert_eq!(err, ModelError::InvalidObjectData { object: "dcim.device 1".into(), found });
            assert_eq!(
                err.to_string(),
                format!("invalid data of dcim.device 1: an object's data must be a JSON object, not {found}")
            );
        }
        assert!(Object::new(device(), "d", json!({})).is_ok());
    }

    #[test]
    fn deserialization_checks_the_data_and_the_id() {
        let good = json!({"content_type": "dcim.device", "id": "1", "repr": "d", "data": {"serial": "A1"}});
        let object: Object = serde_json::from_value(good.clone()).unwrap();
        assert_eq!(serde_json::to_value(&object).unwrap(), good, "the wire shape is unchanged");
        for data in [json!([1, 2, 3]), json!(42), json!(null), json!("x")] {
            let wire = json!({"content_type": "dcim.device", "id": "1", "repr": "d", "data": data});
            let err = serde_json::from_value::<Object>(wire).unwrap_err().to_string();
            assert!(err.contains("an object's data must be a JSON object"), "{err}");
        }
        let nul = json!({"content_type": "dcim.device", "id": "a\u{0}b", "repr": "d", "data": {}});
        let err = serde_json::from_value::<Object>(nul).unwrap_err().to_string();
        assert!(err.contains("must not contain control characters"), "{err}");
        let err = serde_json::from_value::<ObjectRef>(json!({"content_type": "dcim.device", "id": ""})).unwrap_err();
        assert!(err.to_string().contains("must not be empty"), "{err}");
    }

    proptest! {
        #[test]
        fn objects_round_trip_through_json(
            id in "[a-z0-9-]{1,20}",
            repr in ".{0,20}",
            fields in prop::collection::btree_map("[a-z]{1,8}", any::<i64>(), 0..6),
        ) {
            let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), id).unwrap();
            let data = Map::from_iter(fields.into_iter().map(|(k, v)| (k, json!(v))));
            let object = Object::from_fields(reference, repr, data);
            let wire = serde_json::to_string(&object).unwrap();
            prop_assert_eq!(serde_json::from_str::<Object>(&wire).unwrap(), object);
        }

        #[test]
        fn any_json_is_an_object_or_a_clear_error(value in arb_json()) {
            match Object::new(device(), "d", value.clone()) {
                Ok(object) => prop_assert_eq!(object.data_value(), value),
                Err(err) => {
                    prop_assert!(!value.is_object());
                    let is_object_data_error = matches!(err, ModelError::InvalidObjectData { .. });
                    prop_assert!(is_object_data_error);
                }
            }
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
