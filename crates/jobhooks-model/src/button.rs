//! Job buttons: a button on objects of some types that runs a job button receiver.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::hook::check_common;
use crate::{ContentType, JobKind, JobRecord, ModelError, ValidationErrors, validate_name};

/// The longest button text (a Jinja2 template), in characters.
pub const MAX_BUTTON_TEXT_LEN: usize = 500;

/// How a button looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ButtonClass {
    /// Grey.
    #[default]
    Default,
    /// Blue.
    Primary,
    /// Green.
    Success,
    /// Light blue.
    Info,
    /// Orange.
    Warning,
    /// Red.
    Danger,
    /// A link.
    Link,
}

impl ButtonClass {
    const ALL: [ButtonClass; 7] = [
        ButtonClass::Default,
        ButtonClass::Primary,
        ButtonClass::Success,
        ButtonClass::Info,
        ButtonClass::Warning,
        ButtonClass::Danger,
        ButtonClass::Link,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ButtonClass::Default => "default",
            ButtonClass::Primary => "primary",
            ButtonClass::Success => "success",
            ButtonClass::Info => "info",
            ButtonClass::Warning => "warning",
            ButtonClass::Danger => "danger",
            ButtonClass::Link => "link",
        }
    }
}

impl fmt::Display for ButtonClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ButtonClass {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| ModelError::InvalidButtonClass { value: s.into() })
    }
}

fn default_weight() -> i32 {
    100
}

fn yes() -> bool {
    true
}

/// A job button on the objects of `content_types`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobButton {
    /// Its id: given when the button is first stored (nil until then), kept through renames and
    /// by export and import.
    #[serde(default)]
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// The object types it appears on (at least one, any type).
    pub content_types: Vec<ContentType>,
    /// The label: a Jinja2 template rendered with `obj`, `user` and `perms`; at most 500 characters.
    pub text: String,
    /// The class path of the job button receiver it runs.
    pub job: String,
    /// Order within its group (lower first). Default 100.
    #[serde(default = "default_weight")]
    pub weight: i32,
    /// Buttons with the same group appear together; ungrouped ones first.
    #[serde(default)]
    pub group_name: Option<String>,
    /// How it looks.
    #[serde(default)]
    pub button_class: ButtonClass,
    /// Ask before running. Default true.
    #[serde(default = "yes")]
    pub confirmation: bool,
    /// An inactive button is not shown. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When it was first stored (`None` for a button stored before buttons kept times).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub created: Option<OffsetDateTime>,
    /// When it was last changed.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<OffsetDateTime>,
}

impl JobButton {
    /// An enabled button with the defaults (weight 100, no group, class `default`, confirmation).
    pub fn new(
        name: impl Into<String>,
        content_types: Vec<ContentType>,
        text: impl Into<String>,
        job: impl Into<String>,
    ) -> Self {
        Self {
            id: Uuid::nil(),
            name: name.into(),
            content_types,
            text: text.into(),
            job: job.into(),
            weight: default_weight(),
            group_name: None,
            button_class: ButtonClass::Default,
            confirmation: true,
            enabled: true,
            created: None,
            last_updated: None,
        }
    }

    /// The button as a store writes it at `now`: a new random id if it has none, `created` if it
    /// has none, and `last_updated` now.
    pub fn stamped(mut self, now: OffsetDateTime) -> Self {
        crate::record_id::stamp(&mut self.id, &mut self.created, &mut self.last_updated, now, Uuid::new_v4);
        self
    }

    /// The order of buttons on an object: by group (ungrouped first), weight, then name.
    pub fn display_order(&self) -> (Option<&str>, i32, &str) {
        (self.group_name.as_deref(), self.weight, &self.name)
    }

    /// The confirmation prompt for pressing this button on `object`.
    pub fn confirmation_prompt(&self, object: &impl fmt::Display) -> String {
        format!("Run Job '{}' with object '{object}'?", self.job)
    }
}

/// A patch that replaces every field with `button`'s (a PUT, or an edit form).
impl From<JobButton> for JobButtonPatch {
    fn from(button: JobButton) -> Self {
        Self {
            name: Some(button.name),
            content_types: Some(button.content_types),
            text: Some(button.text),
            job: Some(button.job),
            weight: Some(button.weight),
            group_name: Some(button.group_name),
            button_class: Some(button.button_class),
            confirmation: Some(button.confirmation),
            enabled: Some(button.enabled),
        }
    }
}

/// A partial update of a [`JobButton`]: fields left `None` keep their stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobButtonPatch {
    /// New name.
    pub name: Option<String>,
    /// New content types.
    pub content_types: Option<Vec<ContentType>>,
    /// New text.
    pub text: Option<String>,
    /// New job.
    pub job: Option<String>,
    /// New weight.
    pub weight: Option<i32>,
    /// New group (`Some(None)` removes it).
    #[serde(default, with = "serde_with_double_option", skip_serializing_if = "Option::is_none")]
    pub group_name: Option<Option<String>>,
    /// New class.
    pub button_class: Option<ButtonClass>,
    /// New confirmation flag.
    pub confirmation: Option<bool>,
    /// New enabled flag.
    pub enabled: Option<bool>,
}

/// Distinguishes a missing `group_name` (keep) from an explicit `null` (remove).
mod serde_with_double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Option<String>>, serializer: S) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(deserializer).map(Some)
    }
}

impl JobButtonPatch {
    /// The stored button with this patch's values laid over it.
    pub fn apply_to(self, stored: &JobButton) -> JobButton {
        JobButton {
            id: stored.id,
            name: self.name.unwrap_or_else(|| stored.name.clone()),
            content_types: self.content_types.unwrap_or_else(|| stored.content_types.clone()),
            text: self.text.unwrap_or_else(|| stored.text.clone()),
            job: self.job.unwrap_or_else(|| stored.job.clone()),
            weight: self.weight.unwrap_or(stored.weight),
            group_name: self.group_name.unwrap_or_else(|| stored.group_name.clone()),
            button_class: self.button_class.unwrap_or(stored.button_class),
            confirmation: self.confirmation.unwrap_or(stored.confirmation),
            enabled: self.enabled.unwrap_or(stored.enabled),
            created: stored.created,
            last_updated: stored.last_updated,
        }
    }
}

/// Validates `button` given the other stored buttons (excluding the one being updated) and the
/// record of its job (`None` if no such job exists): name, content types, text length, group name,
/// the job's existence and kind, the `enabled` rule, unique name.
pub fn validate_button<'a>(
    button: &JobButton,
    others: impl IntoIterator<Item = &'a JobButton>,
    job: Option<&JobRecord>,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    check_common(
        &mut errors,
        &button.name,
        &button.content_types,
        &button.job,
        job,
        JobKind::JobButtonReceiver,
        button.enabled,
    );
    let text_len = button.text.chars().count();
    if text_len > MAX_BUTTON_TEXT_LEN {
        errors.add("text", ModelError::TextTooLong { len: text_len, max: MAX_BUTTON_TEXT_LEN }.to_string());
    }
    if let Some(Err(e)) = button.group_name.as_deref().map(|g| validate_name("group_name", g)) {
        errors.add("group_name", e.to_string());
    }
    let others: Vec<&JobButton> = others.into_iter().collect();
    if others.iter().any(|other| other.name == button.name) {
        errors.add("name", format!("A job button named {} already exists", button.name));
    }
    if !button.id.is_nil() && others.iter().any(|other| other.id == button.id) {
        errors.add("id", format!("A job button with id {} already exists", button.id));
    }
    errors.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::NOT_RUNNABLE;

    fn job(kind: JobKind, enabled: bool) -> JobRecord {
        JobRecord { enabled, ..JobRecord::new("app::Press", "Press", kind) }
    }

    fn button() -> JobButton {
        JobButton::new("b", vec![ContentType::new("dcim.location").unwrap()], "Run {{ obj }}", "app::Press")
    }

    #[test]
    fn a_valid_button_passes_and_has_defaults() {
        let b: JobButton = serde_json::from_str(
            r#"{"name": "b", "content_types": ["dcim.location"], "text": "Go", "job": "app::Press"}"#,
        )
        .unwrap();
        assert_eq!((b.weight, b.button_class, b.confirmation, b.enabled), (100, ButtonClass::Default, true, true));
        assert_eq!(validate_button(&b, [], Some(&job(JobKind::JobButtonReceiver, true))), Ok(()));
    }

    #[test]
    fn each_rule_has_its_message() {
        let runnable = job(JobKind::JobButtonReceiver, true);
        let long = JobButton { text: "x".repeat(501), ..button() };
        assert_eq!(
            validate_button(&long, [], Some(&runnable)).unwrap_err().field("text"),
            ["button text is 501 characters long; at most 500 are allowed"]
        );
        let disabled_job = job(JobKind::JobButtonReceiver, false);
        assert_eq!(validate_button(&button(), [], Some(&disabled_job)).unwrap_err().field("enabled"), [NOT_RUNNABLE]);
        let hook_job = job(JobKind::JobHookReceiver, true);
        assert_eq!(
            validate_button(&button(), [], Some(&hook_job)).unwrap_err().field("job"),
            ["Job app::Press is a job hook receiver, not a job button receiver"]
        );
        assert_eq!(
            validate_button(&button(), [&button()], Some(&runnable)).unwrap_err().field("name"),
            ["A job button named b already exists"]
        );
        let empty_group = JobButton { group_name: Some(String::new()), ..button() };
        assert!(!validate_button(&empty_group, [], Some(&runnable)).unwrap_err().field("group_name").is_empty());
    }

    #[test]
    fn button_class_parses_listed_values_only() {
        assert_eq!("danger".parse::<ButtonClass>().unwrap(), ButtonClass::Danger);
        assert!("purple".parse::<ButtonClass>().unwrap_err().to_string().contains("default, primary"));
        assert!(serde_json::from_str::<ButtonClass>("\"purple\"").is_err());
    }

    #[test]
    fn ordering_and_prompt() {
        let mut buttons = [
            JobButton { group_name: Some("g".into()), weight: 1, ..button() },
            JobButton { name: "z".into(), weight: 50, ..button() },
            JobButton { name: "a".into(), weight: 50, ..button() },
        ];
        buttons.sort_by(|a, b| a.display_order().cmp(&b.display_order()));
        let names: Vec<_> = buttons.iter().map(|b| (b.group_name.as_deref(), b.name.as_str())).collect();
        assert_eq!(names, [(None, "a"), (None, "z"), (Some("g"), "b")]);
        assert_eq!(button().confirmation_prompt(&"HQ"), "Run Job 'app::Press' with object 'HQ'?");
    }

    #[test]
    fn patch_distinguishes_missing_from_null_group() {
        let stored = JobButton { group_name: Some("g".into()), ..button() };
        let keep: JobButtonPatch = serde_json::from_str(r#"{"weight": 5}"#).unwrap();
        assert_eq!(keep.apply_to(&stored).group_name.as_deref(), Some("g"));
        let clear: JobButtonPatch = serde_json::from_str(r#"{"group_name": null}"#).unwrap();
        assert_eq!(clear.apply_to(&stored).group_name, None);
    }

    #[test]
    fn patches_keep_their_meaning_through_json() {
        for group_name in [None, Some(None), Some(Some("g".to_owned()))] {
            let patch = JobButtonPatch { group_name, weight: Some(5), ..JobButtonPatch::default() };
            let sent = serde_json::to_string(&patch).unwrap();
            assert_eq!(serde_json::from_str::<JobButtonPatch>(&sent).unwrap(), patch, "{sent}");
        }
    }
}
