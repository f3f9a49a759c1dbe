//! Object changes as Nautobot's API shows them.

use jobhooks_model::{Action, ChangeContextKind, ChangeId, ContentType, ObjectChange, ObjectRef, OffsetDateTime};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::catalog::{decoded, username_of};
use super::{Choice, Related, ShapeError, Shaper, UserView};

/// An action as Nautobot shows it: `create`, `update` or `delete`.
pub fn action_choice(action: Action) -> Choice {
    match action {
        Action::Create => Choice::new("create", "Created"),
        Action::Update => Choice::new("update", "Updated"),
        Action::Delete => Choice::new("delete", "Deleted"),
    }
}

/// A change context as Nautobot shows it: `web`, `job`, `job-hook`, `orm` or `unknown`.
pub fn context_choice(kind: ChangeContextKind) -> Choice {
    let label = match kind {
        ChangeContextKind::Web => "Web",
        ChangeContextKind::Job => "Job",
        ChangeContextKind::JobHook => "Job hook",
        ChangeContextKind::Orm => "ORM",
        ChangeContextKind::Unknown => "Unknown",
    };
    Choice::new(kind.as_str(), label)
}

/// An object change (`extras.objectchange`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectChangeView {
    /// The change's number: changes are numbered in commit order.
    pub id: u64,
    /// `extras.objectchange`.
    pub object_type: String,
    /// What changed, how.
    pub display: String,
    /// Its address.
    pub url: String,
    /// When it was committed.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Who made it (`null` without a user).
    #[schema(value_type = Object)]
    pub user: Option<Related<UserView>>,
    /// Who made it, by name, as it was then.
    pub user_name: String,
    /// The request (or session) it was made in; changes made together share it.
    pub request_id: Uuid,
    /// `create`, `update` or `delete`.
    pub action: Choice,
    /// The changed object's type, `app_label.model`.
    pub changed_object_type: String,
    /// The changed object's id.
    pub changed_object_id: String,
    /// The object's type of a related object, if the change has one.
    pub related_object_type: Option<String>,
    /// The related object's id.
    pub related_object_id: Option<String>,
    /// The changed object as text.
    pub object_repr: String,
    /// The object after the change (before it, for a delete).
    #[schema(value_type = Object)]
    pub object_data: Value,
    /// Where it was made: `web`, `job`, `job-hook`, `orm` or `unknown`.
    pub change_context: Choice,
    /// More on where it was made (the job's class path in a job).
    pub change_context_detail: String,
    /// jobhooks: the object before the change (`null` for a create).
    #[schema(value_type = Object)]
    pub prechange: Option<Value>,
}

impl ObjectChangeView {
    /// Its `object_type`.
    pub const OBJECT_TYPE: &'static str = "extras.objectchange";

    /// `change` as Nautobot shows it.
    pub fn of(change: &ObjectChange, shaper: &Shaper) -> Self {
        let action = action_choice(change.action);
        Self {
            id: change.id.0,
            object_type: Self::OBJECT_TYPE.to_owned(),
            display: format!("{} {} {}", change.changed_object_type, change.object_repr, action.label.to_lowercase()),
            url: shaper.url(&format!("/api/extras/object-changes/{}/", change.id.0)),
            time: change.time,
            user: change.user.as_deref().map(|user| shaper.related_user(user)),
            user_name: change.user_name.clone(),
            request_id: change.request_id,
            action,
            changed_object_type: change.changed_object_type.as_str().to_owned(),
            changed_object_id: change.changed_object_id.clone(),
            related_object_type: change.related_object.as_ref().map(|object| object.content_type().as_str().to_owned()),
            related_object_id: change.related_object.as_ref().map(|object| object.id().to_owned()),
            object_repr: change.object_repr.clone(),
            object_data: serde_json::to_value(&change.object_data).unwrap_or(Value::Null),
            change_context: context_choice(change.change_context),
            change_context_detail: change.change_context_detail.clone(),
            prechange: change.prechange.clone(),
        }
    }
}

impl TryFrom<ObjectChangeView> for ObjectChange {
    type Error = ShapeError;

    fn try_from(view: ObjectChangeView) -> Result<Self, ShapeError> {
        let invalid = |field: &'static str| {
            move |error: jobhooks_model::ModelError| ShapeError::Invalid { field, reason: error.to_string() }
        };
        let related_object = match (view.related_object_type, view.related_object_id) {
            (Some(content_type), Some(id)) => Some(
                ContentType::new(content_type)
                    .and_then(|content_type| ObjectRef::new(content_type, id))
                    .map_err(invalid("related_object_type"))?,
            ),
            _ => None,
        };
        Ok(ObjectChange {
            id: ChangeId(view.id),
            time: view.time,
            user: username_of(view.user)?,
            user_name: view.user_name,
            request_id: view.request_id,
            action: decoded("action", Value::String(view.action.value))?,
            changed_object_type: ContentType::new(view.changed_object_type).map_err(invalid("changed_object_type"))?,
            changed_object_id: view.changed_object_id,
            related_object,
            object_repr: view.object_repr,
            object_data: view.object_data,
            prechange: view.prechange,
            change_context: decoded("change_context", Value::String(view.change_context.value))?,
            change_context_detail: view.change_context_detail,
        })
    }
}
