//! Identifiers: content types, object references and names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// The longest name a hook, button, job or user may have, in characters.
pub const MAX_NAME_LEN: usize = 100;

/// Checks that a name is non-empty, not only whitespace, free of control characters, and at most
/// [`MAX_NAME_LEN`] characters.
///
/// ```
/// assert!(jobhooks_model::validate_name("name", "Validate serials").is_ok());
/// assert!(jobhooks_model::validate_name("name", " ").is_err());
/// ```
pub fn validate_name(field: &'static str, value: &str) -> Result<(), ModelError> {
    let reason = if value.trim().is_empty() {
        "it must not be empty".to_owned()
    } else if value.chars().any(char::is_control) {
        "it must not contain control characters".to_owned()
    } else if value.chars().count() > MAX_NAME_LEN {
        format!("it is {} characters long; at most {MAX_NAME_LEN} are allowed", value.chars().count())
    } else {
        return Ok(());
    };
    Err(ModelError::InvalidName { field, value: value.to_owned(), reason })
}

/// The type of an application object, `app_label.model`, e.g. `dcim.device`.
///
/// Both parts are lowercase ascii letters, digits and underscores, and start with a letter.
///
/// ```
/// use jobhooks_model::ContentType;
/// let ct: ContentType = "dcim.device".parse().unwrap();
/// assert_eq!(ct.app_label(), "dcim");
/// assert_eq!(ct.model(), "device");
/// assert!("DCIM.Device".parse::<ContentType>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(
        description = "The type of an application object, `app_label.model` (lowercase letters, digits and underscores, each part starting with a letter).",
        example = "dcim.device"
    )
)]
#[serde(try_from = "String", into = "String")]
pub struct ContentType(String);

impl ContentType {
    /// Validates and wraps `app_label.model`.
    pub fn new(value: impl Into<String>) -> Result<Self, ModelError> {
        let value = value.into();
        let part_ok = |part: &str| {
            part.starts_with(|c: char| c.is_ascii_lowercase())
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        match value.split_once('.') {
            Some((app, model)) if part_ok(app) && part_ok(model) && value.len() <= MAX_NAME_LEN => Ok(Self(value)),
            _ => Err(ModelError::InvalidContentType { value }),
        }
    }

    /// The whole `app_label.model`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the dot.
    pub fn app_label(&self) -> &str {
        self.0.split_once('.').map_or("", |(app, _)| app)
    }

    /// The part after the dot.
    pub fn model(&self) -> &str {
        self.0.split_once('.').map_or("", |(_, model)| model)
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ContentType {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for ContentType {
    type Error = ModelError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ContentType> for String {
    fn from(value: ContentType) -> Self {
        value.0
    }
}

/// Names one application object: its content type and its id (the primary key, as text).
///
/// Valid by construction: [`ObjectRef::new`] and deserialization check the id, so a stored key
/// built from it never runs into another object's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "RawObjectRef")]
pub struct ObjectRef {
    content_type: ContentType,
    id: String,
}

/// An object reference as it arrives, before its id is checked.
#[derive(Deserialize)]
struct RawObjectRef {
    content_type: ContentType,
    id: String,
}

impl TryFrom<RawObjectRef> for ObjectRef {
    type Error = ModelError;
    fn try_from(raw: RawObjectRef) -> Result<Self, Self::Error> {
        Self::new(raw.content_type, raw.id)
    }
}

impl ObjectRef {
    /// Refers to the object `id` of type `content_type`. The id must be non-empty, free of control
    /// characters and at most [`MAX_NAME_LEN`] characters.
    pub fn new(content_type: ContentType, id: impl Into<String>) -> Result<Self, ModelError> {
        let id = id.into();
        validate_name("object id", &id)?;
        Ok(Self { content_type, id })
    }

    /// The reference of a change that was recorded, whose id was checked then.
    pub(crate) fn recorded(content_type: ContentType, id: String) -> Self {
        Self { content_type, id }
    }

    /// The object's type.
    pub fn content_type(&self) -> &ContentType {
        &self.content_type
    }

    /// The object's primary key, as text (a UUID, a number, a slug: whatever the application uses).
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.content_type, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_types_are_checked() {
        for good in ["dcim.device", "extras.job_hook", "a1.b_2"] {
            assert!(ContentType::new(good).is_ok(), "{good}");
        }
        for bad in ["", "dcim", "dcim.", ".device", "Dcim.device", "dcim.dev-ice", "dcim.device.x", "1dcim.device"] {
            assert_eq!(ContentType::new(bad), Err(ModelError::InvalidContentType { value: bad.into() }), "{bad}");
        }
    }

    #[test]
    fn content_type_serde_validates() {
        assert!(serde_json::from_str::<ContentType>("\"dcim.device\"").is_ok());
        let err = serde_json::from_str::<ContentType>("\"not a type\"").unwrap_err();
        assert!(err.to_string().contains("expected `app_label.model`"), "{err}");
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("name", &"x".repeat(MAX_NAME_LEN)).is_ok());
        let err = validate_name("name", &"x".repeat(MAX_NAME_LEN + 1)).unwrap_err();
        assert!(err.to_string().contains("at most 100"), "{err}");
        assert!(validate_name("name", "").unwrap_err().to_string().contains("must not be empty"));
        assert!(validate_name("name", "a\0b").unwrap_err().to_string().contains("control characters"));
    }

    proptest! {
        #[test]
        fn valid_content_types_round_trip(app in "[a-z][a-z0-9_]{0,20}", model in "[a-z][a-z0-9_]{0,20}") {
            let ct = ContentType::new(format!("{app}.{model}")).unwrap();
            prop_assert_eq!(ct.app_label(), app.as_str());
            prop_assert_eq!(ct.model(), model.as_str());
            let json = serde_json::to_string(&ct).unwrap();
            prop_assert_eq!(serde_json::from_str::<ContentType>(&json).unwrap(), ct);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".*") {
            let _verdict = ContentType::new(text);
        }
    }
}
