//! Application objects as jobhooks sees them.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ContentType, ObjectRef};

/// One application object: what it is, a human-readable text for it, and its data as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// Its type and id.
    #[serde(flatten)]
    pub reference: ObjectRef,
    /// How it reads to a person (Django's `str(obj)`), e.g. the device name.
    pub repr: String,
    /// Its fields.
    pub data: Value,
}

impl Object {
    /// Builds an object.
    pub fn new(reference: ObjectRef, repr: impl Into<String>, data: Value) -> Self {
        Self { reference, repr: repr.into(), data }
    }

    /// Its content type.
    pub fn content_type(&self) -> &ContentType {
        &self.reference.content_type
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.reference.id
    }

    /// The field `name` of its data, if it is an object with that field.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.data.get(name)
    }

    /// Sets the field `name` of its data, turning the data into an object if it was not one.
    pub fn set_field(&mut self, name: impl Into<String>, value: Value) {
        if !self.data.is_object() {
            self.data = Value::Object(serde_json::Map::new());
        }
        if let Value::Object(map) = &mut self.data {
            map.insert(name.into(), value);
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr)
    }
}
