//! The JSON records of formats 3 and 4 (`jobhooks-store/3`, `jobhooks-store/4`: format 4 changed
//! no JSON record): the store's own types, one per stored model
//! type, so that a change to the model's types (a renamed field, a new variant, another serde
//! attribute) cannot change what is on disk unnoticed. Each record converts from its model type
//! and back; reading one back checks it the way the model's constructors do, and a record that
//! fails the check is corrupt.
//!
//! The field names and enum spellings below are the format: change one only together with
//! [`FORMAT_VERSION`](crate::FORMAT_VERSION), a migration from the previous format, and a fixture
//! of the new one (`tests/format.rs` reads the committed store of this one back). The partial
//! records the store decodes for speed (a change's time, its data, its object) read the same
//! fields.

use jobhooks_model::{
    Action, ApiToken, ButtonClass, ChangeContextKind, ChangeId, ContentType, JobButton, JobHook, JobInputs, JobKind,
    JobRecord, JobResult, JobStatus, LogEntry, LogLevel, LoggedObject, LoginSession, ObjectChange, ObjectRef,
    OffsetDateTime, PasswordHash, Permission, RecordKind, RunId, Suspension, User, Value, derived_id, validate_name,
};
use jobhooks_model::{Condition, HttpMethod, Webhook};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A model type stored as a record of this format.
pub(crate) trait Stored: Sized {
    /// Its record.
    type Record: Serialize + DeserializeOwned;
    /// The record of `self`.
    fn to_record(&self) -> Self::Record;
    /// The model value of `record`, or why the record is not a valid one.
    fn from_record(record: Self::Record) -> Result<Self, String>;
}

fn content_type(name: String) -> Result<ContentType, String> {
    ContentType::new(name).map_err(|e| e.to_string())
}

fn content_types(names: Vec<String>) -> Result<Vec<ContentType>, String> {
    names.into_iter().map(content_type).collect()
}

fn names(content_types: &[ContentType]) -> Vec<String> {
    content_types.iter().map(|ct| ct.as_str().to_owned()).collect()
}

/// An object reference: `{"content_type": …, "id": …}`.
#[derive(Serialize, Deserialize)]
pub(crate) struct ObjectRefRecord {
    content_type: String,
    id: String,
}

impl Stored for ObjectRef {
    type Record = ObjectRefRecord;

    fn to_record(&self) -> ObjectRefRecord {
        ObjectRefRecord { content_type: self.content_type().as_str().to_owned(), id: self.id().to_owned() }
    }

    fn from_record(record: ObjectRefRecord) -> Result<Self, String> {
        ObjectRef::new(content_type(record.content_type)?, record.id).map_err(|e| e.to_string())
    }
}

/// `job_hook_receiver` or `job_button_receiver`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JobKindRecord {
    JobHookReceiver,
    JobButtonReceiver,
}

/// A job record (`job/` values).
#[derive(Serialize, Deserialize)]
pub(crate) struct JobRecordRecord {
    /// Absent in records written before records had ids: the id derived from the class path is read instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Uuid>,
    class_path: String,
    name: String,
    description: String,
    kind: JobKindRecord,
    installed: bool,
    enabled: bool,
    hidden: bool,
    /// Absent in records written before `jobs restore` existed, and when nothing is suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    suspended: Option<SuspensionRecord>,
    /// Absent in records written before records kept times, as is `last_updated`.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    created: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    last_updated: Option<OffsetDateTime>,
}

/// What a full sync disabled when it uninstalled a job.
#[derive(Serialize, Deserialize)]
pub(crate) struct SuspensionRecord {
    enabled: bool,
    hooks: Vec<String>,
    buttons: Vec<String>,
}

impl Stored for JobRecord {
    type Record = JobRecordRecord;

    fn to_record(&self) -> JobRecordRecord {
        JobRecordRecord {
            id: Some(self.id),
            class_path: self.class_path.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            kind: match self.kind {
                JobKind::JobHookReceiver => JobKindRecord::JobHookReceiver,
                JobKind::JobButtonReceiver => JobKindRecord::JobButtonReceiver,
            },
            installed: self.installed,
            enabled: self.enabled,
            hidden: self.hidden,
            suspended: self.suspended.as_ref().map(|suspension| SuspensionRecord {
                enabled: suspension.enabled,
                hooks: suspension.hooks.clone(),
                buttons: suspension.buttons.clone(),
            }),
            created: self.created,
            last_updated: self.last_updated,
        }
    }

    fn from_record(record: JobRecordRecord) -> Result<Self, String> {
        Ok(JobRecord {
            id: record.id.unwrap_or_else(|| derived_id(RecordKind::Job, &record.class_path)),
            class_path: record.class_path,
            name: record.name,
            description: record.description,
            kind: match record.kind {
                JobKindRecord::JobHookReceiver => JobKind::JobHookReceiver,
                JobKindRecord::JobButtonReceiver => JobKind::JobButtonReceiver,
            },
            installed: record.installed,
            enabled: record.enabled,
            hidden: record.hidden,
            suspended: record.suspended.map(|suspension| Suspension {
                enabled: suspension.enabled,
                hooks: suspension.hooks,
                buttons: suspension.buttons,
            }),
            created: record.created,
            last_updated: record.last_updated,
        })
    }
}

/// A job hook (`hok/` values).
#[derive(Serialize, Deserialize)]
pub(crate) struct JobHookRecord {
    /// Absent in records written before records had ids: the id derived from the name is read instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Uuid>,
    name: String,
    content_types: Vec<String>,
    job: String,
    enabled: bool,
    type_create: bool,
    type_update: bool,
    type_delete: bool,
    /// NetBox's event-rule form of the hook's conditions; absent when it has none, and in records
    /// written before hooks had conditions, as is `changed_fields`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conditions: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    changed_fields: Vec<String>,
    /// An outbound webhook's fields; absent for a hook that runs its job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook: Option<WebhookRecord>,
    /// Absent in records written before records kept times, as is `last_updated`.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    created: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    last_updated: Option<OffsetDateTime>,
}

/// A hook's outbound webhook, with Nautobot's field names.
#[derive(Serialize, Deserialize)]
pub(crate) struct WebhookRecord {
    payload_url: String,
    http_method: String,
    http_content_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    additional_headers: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    body_template: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    secret: String,
    ssl_verification: bool,
}

impl WebhookRecord {
    fn of(webhook: &Webhook) -> Self {
        Self {
            payload_url: webhook.payload_url.clone(),
            http_method: webhook.http_method.as_str().to_owned(),
            http_content_type: webhook.http_content_type.clone(),
            additional_headers: webhook.additional_headers.clone(),
            body_template: webhook.body_template.clone(),
            secret: webhook.secret.clone(),
            ssl_verification: webhook.ssl_verification,
        }
    }

    fn into_webhook(self) -> Result<Webhook, String> {
        let method = HttpMethod::from_name(&self.http_method)
            .ok_or_else(|| format!("webhook: unknown method `{}`", self.http_method))?;
        let mut webhook = Webhook::new(self.payload_url).method(method).body(self.body_template).secret(self.secret);
        webhook.http_content_type = self.http_content_type;
        webhook.additional_headers = self.additional_headers;
        webhook.ssl_verification = self.ssl_verification;
        Ok(webhook)
    }
}

impl Stored for JobHook {
    type Record = JobHookRecord;

    fn to_record(&self) -> JobHookRecord {
        JobHookRecord {
            id: Some(self.id),
            name: self.name.clone(),
            content_types: names(&self.content_types),
            job: self.job.clone(),
            enabled: self.enabled,
            type_create: self.type_create,
            type_update: self.type_update,
            type_delete: self.type_delete,
            conditions: self.conditions.as_ref().map(Condition::to_json),
            changed_fields: self.changed_fields.clone(),
            webhook: self.webhook.as_ref().map(WebhookRecord::of),
            created: self.created,
            last_updated: self.last_updated,
        }
    }

    fn from_record(record: JobHookRecord) -> Result<Self, String> {
        let mut hook = JobHook::new(record.name, content_types(record.content_types)?, record.job);
        hook.enabled = record.enabled;
        hook.type_create = record.type_create;
        hook.type_update = record.type_update;
        hook.type_delete = record.type_delete;
        hook.conditions = match record.conditions {
            Some(json) => Some(Condition::from_json(&json).map_err(|error| format!("conditions: {error}"))?),
            None => None,
        };
        hook.changed_fields = record.changed_fields;
        hook.webhook = record.webhook.map(WebhookRecord::into_webhook).transpose()?;
        hook.id = record.id.unwrap_or_else(|| derived_id(RecordKind::JobHook, &hook.name));
        hook.created = record.created;
        hook.last_updated = record.last_updated;
        Ok(hook)
    }
}

/// A button's Bootstrap class, lowercase.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ButtonClassRecord {
    Default,
    Primary,
    Success,
    Info,
    Warning,
    Danger,
    Link,
}

/// A job button (`btn/` values).
#[derive(Serialize, Deserialize)]
pub(crate) struct JobButtonRecord {
    /// Absent in records written before records had ids: the id derived from the name is read instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Uuid>,
    name: String,
    content_types: Vec<String>,
    text: String,
    job: String,
    weight: i32,
    group_name: Option<String>,
    button_class: ButtonClassRecord,
    confirmation: bool,
    enabled: bool,
    /// Absent in records written before records kept times, as is `last_updated`.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    created: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    last_updated: Option<OffsetDateTime>,
}

impl Stored for JobButton {
    type Record = JobButtonRecord;

    fn to_record(&self) -> JobButtonRecord {
        JobButtonRecord {
            id: Some(self.id),
            name: self.name.clone(),
            content_types: names(&self.content_types),
            text: self.text.clone(),
            job: self.job.clone(),
            weight: self.weight,
            group_name: self.group_name.clone(),
            button_class: match self.button_class {
                ButtonClass::Default => ButtonClassRecord::Default,
                ButtonClass::Primary => ButtonClassRecord::Primary,
                ButtonClass::Success => ButtonClassRecord::Success,
                ButtonClass::Info => ButtonClassRecord::Info,
                ButtonClass::Warning => ButtonClassRecord::Warning,
                ButtonClass::Danger => ButtonClassRecord::Danger,
                ButtonClass::Link => ButtonClassRecord::Link,
            },
            confirmation: self.confirmation,
            enabled: self.enabled,
            created: self.created,
            last_updated: self.last_updated,
        }
    }

    fn from_record(record: JobButtonRecord) -> Result<Self, String> {
        let mut button = JobButton::new(record.name, content_types(record.content_types)?, record.text, record.job);
        button.weight = record.weight;
        button.group_name = record.group_name;
        button.button_class = match record.button_class {
            ButtonClassRecord::Default => ButtonClass::Default,
            ButtonClassRecord::Primary => ButtonClass::Primary,
            ButtonClassRecord::Success => ButtonClass::Success,
            ButtonClassRecord::Info => ButtonClass::Info,
            ButtonClassRecord::Warning => ButtonClass::Warning,
            ButtonClassRecord::Danger => ButtonClass::Danger,
            ButtonClassRecord::Link => ButtonClass::Link,
        };
        button.confirmation = record.confirmation;
        button.enabled = record.enabled;
        button.id = record.id.unwrap_or_else(|| derived_id(RecordKind::JobButton, &button.name));
        button.created = record.created;
        button.last_updated = record.last_updated;
        Ok(button)
    }
}

/// A permission, optionally limited to some jobs.
#[derive(Serialize, Deserialize)]
pub(crate) struct PermissionRecord {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jobs: Option<Vec<String>>,
}

/// A user (`usr/` values).
#[derive(Serialize, Deserialize)]
pub(crate) struct UserRecord {
    username: String,
    is_superuser: bool,
    permissions: Vec<PermissionRecord>,
}

impl Stored for User {
    type Record = UserRecord;

    fn to_record(&self) -> UserRecord {
        UserRecord {
            username: self.username.clone(),
            is_superuser: self.is_superuser,
            permissions: self
                .permissions
                .iter()
                .map(|permission| PermissionRecord { name: permission.name.clone(), jobs: permission.jobs.clone() })
                .collect(),
        }
    }

    fn from_record(record: UserRecord) -> Result<Self, String> {
        let mut user = User::new(record.username).map_err(|e| e.to_string())?;
        user.is_superuser = record.is_superuser;
        user.permissions = record
            .permissions
            .into_iter()
            .map(|permission| Permission { jobs: permission.jobs, ..Permission::new(permission.name) })
            .collect();
        Ok(user)
    }
}

/// An API token (`tok/` values): its key's hash, never the key. Added within format 3: a store
/// without tokens has no `tok/` keys.
#[derive(Serialize, Deserialize)]
pub(crate) struct TokenRecord {
    id: String,
    user: String,
    key_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    expires: Option<OffsetDateTime>,
    description: String,
    /// Added within format 3: a token stored before it may write.
    #[serde(default = "may_write")]
    write_enabled: bool,
}

fn may_write() -> bool {
    true
}

impl Stored for ApiToken {
    type Record = TokenRecord;

    fn to_record(&self) -> TokenRecord {
        TokenRecord {
            id: self.id.clone(),
            user: self.user.clone(),
            key_hash: self.key_hash.clone(),
            created: self.created,
            expires: self.expires,
            description: self.description.clone(),
            write_enabled: self.write_enabled,
        }
    }

    fn from_record(record: TokenRecord) -> Result<Self, String> {
        ApiToken::id_of_key(&format!("jh_{}_00", record.id))
            .map_err(|_| format!("invalid token id `{}`", record.id))?;
        validate_name("username", &record.user).map_err(|e| e.to_string())?;
        if record.key_hash.len() != 64 || !record.key_hash.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err("its key hash is not a SHA-256 in hex".into());
        }
        Ok(ApiToken {
            id: record.id,
            user: record.user,
            key_hash: record.key_hash,
            created: record.created,
            expires: record.expires,
            description: record.description,
            write_enabled: record.write_enabled,
        })
    }
}

/// A user's password (`pwd/{username}` values): its Argon2id hash as a PHC string. Added within
/// format 3: a store without passwords has no `pwd/` keys.
#[derive(Serialize, Deserialize)]
pub(crate) struct PasswordRecord {
    phc: String,
}

impl Stored for PasswordHash {
    type Record = PasswordRecord;

    fn to_record(&self) -> PasswordRecord {
        PasswordRecord { phc: self.as_str().to_owned() }
    }

    fn from_record(record: PasswordRecord) -> Result<Self, String> {
        PasswordHash::from_phc(record.phc).map_err(|e| e.to_string())
    }
}

/// A login session (`lgn/{id}` values): its key's hash, never the key. Added within format 3: a
/// store without sessions has no `lgn/` keys.
#[derive(Serialize, Deserialize)]
pub(crate) struct LoginRecord {
    id: String,
    user: String,
    key_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_seen: OffsetDateTime,
    user_agent: String,
}

impl Stored for LoginSession {
    type Record = LoginRecord;

    fn to_record(&self) -> LoginRecord {
        LoginRecord {
            id: self.id.clone(),
            user: self.user.clone(),
            key_hash: self.key_hash.clone(),
            created: self.created,
            last_seen: self.last_seen,
            user_agent: self.user_agent.clone(),
        }
    }

    fn from_record(record: LoginRecord) -> Result<Self, String> {
        LoginSession::id_of_key(&format!("js_{}_00", record.id))
            .map_err(|_| format!("invalid session id `{}`", record.id))?;
        validate_name("username", &record.user).map_err(|e| e.to_string())?;
        if record.key_hash.len() != 64 || !record.key_hash.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err("its key hash is not a SHA-256 in hex".into());
        }
        Ok(LoginSession {
            id: record.id,
            user: record.user,
            key_hash: record.key_hash,
            created: record.created,
            last_seen: record.last_seen,
            user_agent: record.user_agent,
        })
    }
}

/// `create`, `update` or `delete`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ActionRecord {
    Create,
    Update,
    Delete,
}

impl From<Action> for ActionRecord {
    fn from(action: Action) -> Self {
        match action {
            Action::Create => ActionRecord::Create,
            Action::Update => ActionRecord::Update,
            Action::Delete => ActionRecord::Delete,
        }
    }
}

impl From<ActionRecord> for Action {
    fn from(action: ActionRecord) -> Self {
        match action {
            ActionRecord::Create => Action::Create,
            ActionRecord::Update => Action::Update,
            ActionRecord::Delete => Action::Delete,
        }
    }
}

/// Where a change was made, spelled as Nautobot spells it.
#[derive(Serialize, Deserialize)]
pub(crate) enum ChangeContextRecord {
    #[serde(rename = "web")]
    Web,
    #[serde(rename = "job")]
    Job,
    #[serde(rename = "job-hook")]
    JobHook,
    #[serde(rename = "orm")]
    Orm,
    #[serde(rename = "unknown")]
    Unknown,
}

/// A change (`chg/` values, behind their header). The prechange is stored only for an object
/// without earlier changes; otherwise it is the previous change's data, found when reading.
#[derive(Serialize, Deserialize)]
pub(crate) struct ChangeRecord {
    id: u64,
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
    user: Option<String>,
    user_name: String,
    request_id: Uuid,
    action: ActionRecord,
    changed_object_type: String,
    changed_object_id: String,
    related_object: Option<ObjectRefRecord>,
    object_repr: String,
    object_data: Value,
    prechange: Option<Value>,
    change_context: ChangeContextRecord,
    change_context_detail: String,
}

/// A change's record borrowed from the change: what [`ChangeRecord`] writes, field for field and
/// byte for byte, without copying the change's data to write it.
#[derive(Serialize)]
pub(crate) struct ChangeRecordRef<'a> {
    id: u64,
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
    user: Option<&'a str>,
    user_name: &'a str,
    request_id: Uuid,
    action: ActionRecord,
    changed_object_type: &'a str,
    changed_object_id: &'a str,
    related_object: Option<ObjectRefRecord>,
    object_repr: &'a str,
    object_data: &'a Value,
    prechange: Option<&'a Value>,
    change_context: ChangeContextRecord,
    change_context_detail: &'a str,
}

impl<'a> ChangeRecordRef<'a> {
    /// The record of `change`, borrowing its data.
    pub(crate) fn of(change: &'a ObjectChange) -> Self {
        Self {
            id: change.id.0,
            time: change.time,
            user: change.user.as_deref(),
            user_name: &change.user_name,
            request_id: change.request_id,
            action: change.action.into(),
            changed_object_type: change.changed_object_type.as_str(),
            changed_object_id: &change.changed_object_id,
            related_object: change.related_object.as_ref().map(Stored::to_record),
            object_repr: &change.object_repr,
            object_data: &change.object_data,
            prechange: change.prechange.as_ref(),
            change_context: change.change_context.into(),
            change_context_detail: &change.change_context_detail,
        }
    }
}

impl From<ChangeContextKind> for ChangeContextRecord {
    fn from(kind: ChangeContextKind) -> Self {
        match kind {
            ChangeContextKind::Web => ChangeContextRecord::Web,
            ChangeContextKind::Job => ChangeContextRecord::Job,
            ChangeContextKind::JobHook => ChangeContextRecord::JobHook,
            ChangeContextKind::Orm => ChangeContextRecord::Orm,
            ChangeContextKind::Unknown => ChangeContextRecord::Unknown,
        }
    }
}

impl Stored for ObjectChange {
    type Record = ChangeRecord;

    fn to_record(&self) -> ChangeRecord {
        ChangeRecord {
            id: self.id.0,
            time: self.time,
            user: self.user.clone(),
            user_name: self.user_name.clone(),
            request_id: self.request_id,
            action: self.action.into(),
            changed_object_type: self.changed_object_type.as_str().to_owned(),
            changed_object_id: self.changed_object_id.clone(),
            related_object: self.related_object.as_ref().map(Stored::to_record),
            object_repr: self.object_repr.clone(),
            object_data: self.object_data.clone(),
            prechange: self.prechange.clone(),
            change_context: self.change_context.into(),
            change_context_detail: self.change_context_detail.clone(),
        }
    }

    fn from_record(record: ChangeRecord) -> Result<Self, String> {
        let changed_object_type = content_type(record.changed_object_type)?;
        // The id must still make a valid reference: it names the object's keys.
        ObjectRef::new(changed_object_type.clone(), record.changed_object_id.as_str()).map_err(|e| e.to_string())?;
        Ok(ObjectChange {
            id: ChangeId(record.id),
            time: record.time,
            user: record.user,
            user_name: record.user_name,
            request_id: record.request_id,
            action: record.action.into(),
            changed_object_type,
            changed_object_id: record.changed_object_id,
            related_object: record.related_object.map(ObjectRef::from_record).transpose()?,
            object_repr: record.object_repr,
            object_data: record.object_data,
            prechange: record.prechange,
            change_context: match record.change_context {
                ChangeContextRecord::Web => ChangeContextKind::Web,
                ChangeContextRecord::Job => ChangeContextKind::Job,
                ChangeContextRecord::JobHook => ChangeContextKind::JobHook,
                ChangeContextRecord::Orm => ChangeContextKind::Orm,
                ChangeContextRecord::Unknown => ChangeContextKind::Unknown,
            },
            change_context_detail: record.change_context_detail,
        })
    }
}

/// A run's inputs: a hook's change, or the object a button was pressed on.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum InputsRecord {
    Hook {
        object_change: u64,
        /// A webhook's run only: the hook that says where to send.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hook: Option<Uuid>,
    },
    Button {
        object_pk: String,
        object_model_name: String,
    },
}

/// A run's status, in capitals.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum StatusRecord {
    Pending,
    Started,
    Success,
    Failure,
    Retrying,
    DeadLettered,
}

/// A log entry's level, lowercase.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LevelRecord {
    Debug,
    Info,
    Success,
    Warning,
    Failure,
    Error,
    Critical,
}

/// The object a log entry is about.
#[derive(Serialize, Deserialize)]
pub(crate) struct LoggedObjectRecord {
    repr: String,
    reference: ObjectRefRecord,
}

/// One log entry of a result.
#[derive(Serialize, Deserialize)]
pub(crate) struct LogEntryRecord {
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
    level: LevelRecord,
    grouping: String,
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object: Option<LoggedObjectRecord>,
}

/// A job result (`res/` values, behind their header).
#[derive(Serialize, Deserialize)]
pub(crate) struct ResultRecord {
    id: u64,
    job: String,
    user: Option<String>,
    inputs: InputsRecord,
    status: StatusRecord,
    attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    started: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    completed: Option<OffsetDateTime>,
    logs: Vec<LogEntryRecord>,
}

fn level_record(level: LogLevel) -> LevelRecord {
    match level {
        LogLevel::Debug => LevelRecord::Debug,
        LogLevel::Info => LevelRecord::Info,
        LogLevel::Success => LevelRecord::Success,
        LogLevel::Warning => LevelRecord::Warning,
        LogLevel::Failure => LevelRecord::Failure,
        LogLevel::Error => LevelRecord::Error,
        LogLevel::Critical => LevelRecord::Critical,
    }
}

fn level(record: LevelRecord) -> LogLevel {
    match record {
        LevelRecord::Debug => LogLevel::Debug,
        LevelRecord::Info => LogLevel::Info,
        LevelRecord::Success => LogLevel::Success,
        LevelRecord::Warning => LogLevel::Warning,
        LevelRecord::Failure => LogLevel::Failure,
        LevelRecord::Error => LogLevel::Error,
        LevelRecord::Critical => LogLevel::Critical,
    }
}

impl Stored for JobResult {
    type Record = ResultRecord;

    fn to_record(&self) -> ResultRecord {
        ResultRecord {
            id: self.id.0,
            job: self.job.clone(),
            user: self.user.clone(),
            inputs: match &self.inputs {
                JobInputs::Hook { object_change, hook } => {
                    InputsRecord::Hook { object_change: object_change.0, hook: *hook }
                }
                JobInputs::Button { object_pk, object_model_name } => {
                    InputsRecord::Button { object_pk: object_pk.clone(), object_model_name: object_model_name.clone() }
                }
            },
            status: match self.status {
                JobStatus::Pending => StatusRecord::Pending,
                JobStatus::Started => StatusRecord::Started,
                JobStatus::Success => StatusRecord::Success,
                JobStatus::Failure => StatusRecord::Failure,
                JobStatus::Retrying => StatusRecord::Retrying,
                JobStatus::DeadLettered => StatusRecord::DeadLettered,
            },
            attempts: self.attempts,
            created: self.created,
            started: self.started,
            completed: self.completed,
            logs: self
                .logs
                .iter()
                .map(|entry| LogEntryRecord {
                    time: entry.time,
                    level: level_record(entry.level),
                    grouping: entry.grouping.clone(),
                    message: entry.message.clone(),
                    object: entry.object.as_ref().map(|object| LoggedObjectRecord {
                        repr: object.repr.clone(),
                        reference: object.reference.to_record(),
                    }),
                })
                .collect(),
        }
    }

    fn from_record(record: ResultRecord) -> Result<Self, String> {
        let logs = record
            .logs
            .into_iter()
            .map(|entry| {
                let object = entry
                    .object
                    .map(|object| {
                        ObjectRef::from_record(object.reference)
                            .map(|reference| LoggedObject { repr: object.repr, reference })
                    })
                    .transpose()?;
                Ok(LogEntry {
                    time: entry.time,
                    level: level(entry.level),
                    grouping: entry.grouping,
                    message: entry.message,
                    object,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(JobResult {
            id: RunId(record.id),
            job: record.job,
            user: record.user,
            inputs: match record.inputs {
                InputsRecord::Hook { object_change, hook } => {
                    JobInputs::Hook { object_change: ChangeId(object_change), hook }
                }
                InputsRecord::Button { object_pk, object_model_name } => {
                    JobInputs::Button { object_pk, object_model_name }
                }
            },
            status: match record.status {
                StatusRecord::Pending => JobStatus::Pending,
                StatusRecord::Started => JobStatus::Started,
                StatusRecord::Success => JobStatus::Success,
                StatusRecord::Failure => JobStatus::Failure,
                StatusRecord::Retrying => JobStatus::Retrying,
                StatusRecord::DeadLettered => JobStatus::DeadLettered,
            },
            attempts: record.attempts,
            created: record.created,
            started: record.started,
            completed: record.completed,
            logs,
        })
    }
}

#[cfg(test)]
mod tests {
    use jobhooks_model::json;
    use proptest::prelude::*;

    use super::*;

    fn round_trip<T: Stored + PartialEq + std::fmt::Debug>(value: &T) {
        let bytes = serde_json::to_vec(&value.to_record()).unwrap();
        let record: T::Record = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(&T::from_record(record).unwrap(), value);
    }

    #[test]
    fn a_hook_record_with_a_condition_that_does_not_parse_is_refused() {
        let bytes = br#"{"name":"h","content_types":["dcim.device"],"job":"a::B","enabled":true,"type_create":true,"type_update":false,"type_delete":false,"conditions":{"attr":"status","value":1}}"#;
        let record: JobHookRecord = serde_json::from_slice(bytes).unwrap();
        let reason = JobHook::from_record(record).unwrap_err();
        assert!(reason.starts_with("conditions: attr: `status` must start with"), "{reason}");
    }

    #[test]
    fn a_record_with_an_invalid_content_type_is_refused() {
        let bytes = br#"{"name":"h","content_types":["Not A Type"],"job":"a::B","enabled":true,"type_create":true,"type_update":false,"type_delete":false}"#;
        let record: JobHookRecord = serde_json::from_slice(bytes).unwrap();
        let reason = JobHook::from_record(record).unwrap_err();
        assert!(reason.contains("invalid content type `Not A Type`"), "{reason}");
    }

    #[test]
    fn a_change_whose_id_names_no_valid_object_is_refused() {
        let change = ObjectChange::from_pending(
            ChangeId(1),
            OffsetDateTime::UNIX_EPOCH,
            &jobhooks_model::ChangeContext::new(ChangeContextKind::Web, None, ""),
            jobhooks_model::PendingChange::new(
                Action::Create,
                &jobhooks_model::Object::new(
                    ObjectRef::new(ContentType::new("dcim.device").unwrap(), "1").unwrap(),
                    "d",
                    json!({}),
                )
                .unwrap(),
            ),
            None,
        );
        let mut record = change.to_record();
        record.changed_object_id = "a\0b".into();
        assert!(ObjectChange::from_record(record).is_err());
        round_trip(&change);
    }

    proptest! {
        /// The record a commit writes by reference is the stored change record, byte for byte,
        /// and reads back as the change.
        #[test]
        fn a_change_written_by_reference_is_its_record_byte_for_byte(
            id in any::<u64>(),
            user in proptest::option::of("[a-z]{0,8}"),
            action in 0..3usize,
            context in 0..5usize,
            detail in ".{0,12}",
            related in any::<bool>(),
            fields in proptest::collection::btree_map("[a-z_]{1,6}", any::<i32>(), 0..6),
            prechange in proptest::option::of(proptest::collection::btree_map("[a-z_]{1,6}", ".{0,6}", 0..4)),
        ) {
            let action = Action::ALL[action];
            let kind = [
                ChangeContextKind::Web, ChangeContextKind::Job, ChangeContextKind::JobHook,
                ChangeContextKind::Orm, ChangeContextKind::Unknown,
            ][context];
            let device = ObjectRef::new(ContentType::new("dcim.device").unwrap(), "7").unwrap();
            let object = jobhooks_model::Object::new(device, "dev-7", json!(fields)).unwrap();
            let mut pending = jobhooks_model::PendingChange::new(action, &object);
            if let Some(prechange) = prechange {
                pending = pending.with_pre_data(json!(prechange).as_object().unwrap().clone());
            }
            if related {
                pending.related_object = Some(ObjectRef::new(ContentType::new("dcim.site").unwrap(), "s").unwrap());
            }
            let context = jobhooks_model::ChangeContext::new(kind, user, detail);
            let change = ObjectChange::from_pending(ChangeId(id), OffsetDateTime::UNIX_EPOCH, &context, pending, None);
            let borrowed = serde_json::to_vec(&ChangeRecordRef::of(&change)).unwrap();
            prop_assert_eq!(&borrowed, &serde_json::to_vec(&change.to_record()).unwrap());
            let record: ChangeRecord = serde_json::from_slice(&borrowed).unwrap();
            prop_assert_eq!(ObjectChange::from_record(record).unwrap(), change);
        }

        #[test]
        fn results_round_trip(
            id in any::<u64>(),
            attempts in any::<u32>(),
            hook in any::<bool>(),
            status in 0..6usize,
            levels in proptest::collection::vec(0..7usize, 0..8),
            message in ".{0,20}",
        ) {
            let statuses = [
                JobStatus::Pending, JobStatus::Started, JobStatus::Success,
                JobStatus::Failure, JobStatus::Retrying, JobStatus::DeadLettered,
            ];
            let all_levels = [
                LogLevel::Debug, LogLevel::Info, LogLevel::Success, LogLevel::Warning,
                LogLevel::Failure, LogLevel::Error, LogLevel::Critical,
            ];
            let inputs = if hook {
                JobInputs::Hook { object_change: ChangeId(id), hook: None }
            } else {
                JobInputs::Button { object_pk: message.clone(), object_model_name: "dcim.device".into() }
            };
            let mut result = JobResult::pending(RunId(id), "a::B", Some("alice".into()), inputs, OffsetDateTime::UNIX_EPOCH);
            result.status = statuses[status];
            result.attempts = attempts;
            let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), "7").unwrap();
            for (n, level) in levels.into_iter().enumerate() {
                let object = (n % 2 == 0).then(|| LoggedObject { repr: message.clone(), reference: reference.clone() });
                result.logs.push(LogEntry {
                    time: OffsetDateTime::UNIX_EPOCH,
                    level: all_levels[level],
                    grouping: "main".into(),
                    message: message.clone(),
                    object,
                });
            }
            round_trip(&result);
        }

        #[test]
        fn catalog_records_round_trip(enabled in any::<bool>(), weight in any::<i32>(), class in 0..7usize) {
            let classes = [
                ButtonClass::Default, ButtonClass::Primary, ButtonClass::Success, ButtonClass::Info,
                ButtonClass::Warning, ButtonClass::Danger, ButtonClass::Link,
            ];
            let devices = vec![ContentType::new("dcim.device").unwrap()];
            let mut button = JobButton::new("b", devices.clone(), "Press {{ obj }}", "a::B");
            button.enabled = enabled;
            button.weight = weight;
            button.button_class = classes[class];
            round_trip(&button);
            let mut hook = JobHook::new("h", devices, "a::B").on([Action::Update]);
            hook.enabled = enabled;
            round_trip(&hook);
            let condition = json!({"or": [{"attr": "postchange.status", "value": weight}, {"attr": "differences.added.name", "value": "^e", "op": "regex", "negate": enabled}]});
            let mut hook = hook.when(jobhooks_model::Condition::from_json(&condition).unwrap()).on_changes_of(["status", "name"]);
            round_trip(&hook);
            let webhook = Webhook::new("https://cmdb.example/{{ model }}").header("X-A", "b").body("{{ data }}").secret("s");
            hook.webhook = Some(if enabled { webhook.without_tls_verification() } else { webhook });
            round_trip(&hook);
            let user = User { is_superuser: enabled, ..User::new("alice").unwrap() }
                .with_permission(Permission::run_jobs(["a::B"]));
            round_trip(&user);
            let kind = if enabled { JobKind::JobHookReceiver } else { JobKind::JobButtonReceiver };
            let job = JobRecord {
                enabled,
                hidden: !enabled,
                suspended: (!enabled).then(|| Suspension {
                    enabled: true,
                    hooks: vec!["h".into()],
                    buttons: vec!["b".into()],
                }),
                created: enabled.then_some(OffsetDateTime::UNIX_EPOCH),
                last_updated: enabled.then_some(OffsetDateTime::UNIX_EPOCH),
                ..JobRecord::new("a::B", "B", kind)
            };
            round_trip(&job);
        }
    }
}
