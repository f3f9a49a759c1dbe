//! The jobhooks domain vocabulary.
//!
//! Everything the other layers talk about is defined here, and nothing else:
//!
//! - what changes: [`ContentType`], [`ObjectRef`], [`Object`], [`Action`], [`ObjectChange`] with
//!   its Nautobot-shaped [`ObjectChange::get_snapshots`], and the change-merging rule of one change
//!   context ([`ChangeSet`], [`merge_changes`]);
//! - who changes it: [`User`] with [`User::has_perm`] and object-level `extras.run_job` grants;
//! - what runs: [`JobRecord`], [`JobHook`], [`JobButton`], their pure validation
//!   ([`validate_hook`], [`validate_button`]) with the exact messages users grep for, and the
//!   outcome of a run ([`JobResult`], [`LogEntry`]);
//! - how user code is called: the receiver traits [`JobHookReceiver`] and [`JobButtonReceiver`]
//!   and the [`JobContext`] they are handed;
//! - where it is kept: the storage ports in [`ports`], which the sled store implements and the
//!   dispatcher uses.
//!
//! Invariant: no IO, no sled, no tokio runtime, no inventory. This crate depends only on the diff
//! engine and on data crates (serde, time, uuid); a team with its own database implements
//! [`ports`] against it without pulling in any of jobhooks' backends.

mod button;
mod change;
mod clock;
mod conditions;
mod context;
mod error;
mod filters;
mod hook;
mod ident;
mod job;
mod lifecycle;
mod login;
mod matcher;
mod nautobot;
mod object;
pub mod ports;
mod record_id;
mod retention;
mod session;
mod short_text;
mod signature;
mod sync;
mod token;
pub mod transfer;
mod user;
mod webhook;

pub use button::{ButtonClass, JobButton, JobButtonPatch, MAX_BUTTON_TEXT_LEN, validate_button};
pub use change::{
    Action, ChangeContext, ChangeContextKind, ChangeId, ChangeSet, ObjectChange, PendingChange, merge_changes,
};
pub use clock::{Clock, ManualClock, SystemClock, system_clock, to_microseconds};
pub use conditions::{
    Condition, ConditionError, ConditionInput, ConditionLeaf, ConditionOp, MAX_CONDITION_DEPTH, MAX_CONDITION_LEAVES,
    MAX_REGEX_LEN,
};
pub use context::{JobButtonReceiver, JobContext, JobError, JobHookReceiver, RunInfo, SharedData};
pub use error::{
    BackendError, CatalogError, ChangeError, MaintenanceError, ModelError, QueueError, StorageFailure, StoreError,
    ValidationErrors, error_chain,
};
pub use filters::{ButtonFilter, ChangeFields, ChangeFilter, HookFilter, JobFilter};
pub use hook::{HookMatches, JobHook, JobHookPatch, match_hooks, validate_hook};
pub use ident::{ContentType, MAX_NAME_LEN, ObjectRef, validate_name};
pub use job::{
    JobInputs, JobKind, JobRecord, JobResult, JobSpec, JobStatus, LogEntry, LogLevel, LoggedObject, RunId, Suspension,
};
pub use lifecycle::{
    Attempts, CountChange, IllegalTransition, Outcome, QUEUED, RunEvent, Transition, lapse_entry, transition,
};
pub use login::{
    LoginRefused, LoginSession, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, OpenedLogin, PasswordCost, PasswordHash,
    PasswordRefused, validate_new_login,
};
pub use matcher::HookMatcher;
pub use nautobot::{
    JobMapping, NAUTOBOT_DETAIL, NautobotCatalog, NautobotCatalogError, NautobotDelivery, Unmapped,
    read_nautobot_catalog,
};
pub use object::Object;
pub use record_id::{ID_NAMESPACE, RecordKind, derived_id};
pub use retention::ChangeFacts;
pub use session::ChangeSession;
pub use signature::{SIGNATURE_HEADER, sign_body, signature_matches};
pub use sync::{JobRestoreReport, JobSyncPlan, SyncMode, SyncReport, plan_job_restore, plan_job_sync};
pub use token::{ApiToken, IssuedToken, MintRefused, TokenRefused, may_mint, validate_new_token};
pub use user::{Permission, RUN_JOB_PERMISSION, User};
pub use webhook::{
    HttpMethod, IDEMPOTENCY_HEADER, PolicyError, SECRET_MASK, WEBHOOK_JOB, Webhook, WebhookError, WebhookPolicy,
    WebhookRequest, webhook_context,
};

/// Re-exported: what [`ObjectChange::get_snapshots`] returns.
pub use jobhooks_diff::{Differences, Snapshots};

/// What a receiver crate or an application that commits changes needs, in one `use`:
/// `use jobhooks_model::prelude::*;`.
///
/// The receiver traits and their context, objects and changes, change contexts and sessions, the
/// storage port traits (so that their methods can be called), the errors they return, and the
/// `async_trait` and `json!` macros.
pub mod prelude {
    pub use crate::ports::{
        Catalog, ChangeStore, JobQueue, ObjectReader, OpenSession, QueueMaintenance, QueueReader, Storage,
    };
    pub use crate::{
        Action, CatalogError, ChangeContext, ChangeContextKind, ChangeError, ChangeSession, ContentType, JobButton,
        JobButtonReceiver, JobContext, JobError, JobHook, JobHookReceiver, JobKind, JobResult, JobStatus, LogLevel,
        Object, ObjectChange, ObjectRef, OffsetDateTime, Snapshots, StorageFailure, StoreError, User, Value,
        async_trait, json,
    };
}

/// Re-exported so receivers implement the traits without naming `async-trait` themselves.
pub use async_trait::async_trait;
/// Re-exported: object data, change data and snapshots are `serde_json` values.
pub use serde_json::{Value, json};
/// Re-exported: every timestamp is an [`OffsetDateTime`] in UTC.
pub use time::OffsetDateTime;
