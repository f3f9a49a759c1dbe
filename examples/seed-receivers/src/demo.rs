//! The served demo's store: what `jobhooks serve --demo` seeds, and what the browser tests start
//! from. The seed jobs enabled; users alice, bob and eve with new passwords; a location, a rack
//! and a device; the serial hook and the Simple and Complex buttons, as `jobhooks demo` makes them.

use std::sync::Arc;

use jobhooks_model::ports::{OpenSession, Storage};
use jobhooks_model::{
    Action, ButtonClass, ChangeContext, ChangeContextKind, ContentType, JobButton, JobHook, JobKind, JobSpec, Object,
    ObjectRef, PasswordCost, PasswordHash, Permission, StoreError, SyncMode, User, json,
};
use jobhooks_register::JobClass;

use crate::{ExampleComplexJobButtonReceiver, ExampleJobHookReceiver, ExampleSimpleJobButtonReceiver};

/// Why the demo could not be seeded.
pub type SeedError = Box<dyn std::error::Error + Send + Sync>;

/// A user the demo adds, with its password.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DemoLogin {
    /// `alice`, `bob` or `eve`.
    pub username: String,
    /// A new random password (12 hex digits).
    pub password: String,
    /// What the user may do, in words.
    pub can: &'static str,
}

/// Whether `store` holds anything a person made: users, hooks, buttons or changes. The demo seeds
/// only a store that does not.
pub async fn holds_data<S: Storage + ?Sized>(store: &S) -> Result<bool, StoreError> {
    Ok(!store.list_users().await?.is_empty()
        || !store.list_hooks().await?.is_empty()
        || !store.list_buttons().await?.is_empty()
        || store.count_changes().await? > 0)
}

fn reference(content_type: &str, id: &str) -> Result<ObjectRef, StoreError> {
    Ok(ObjectRef::new(ContentType::new(content_type)?, id)?)
}

/// Seeds `store` (see the module's documentation); passwords are hashed at `cost`. The seed jobs
/// are synced into it (additively) first.
pub async fn seed<S: Storage + 'static>(store: &Arc<S>, cost: PasswordCost) -> Result<Vec<DemoLogin>, SeedError> {
    let jobs = [
        (ExampleJobHookReceiver::CLASS_PATH, JobKind::JobHookReceiver),
        (ExampleSimpleJobButtonReceiver::CLASS_PATH, JobKind::JobButtonReceiver),
        (ExampleComplexJobButtonReceiver::CLASS_PATH, JobKind::JobButtonReceiver),
    ];
    let specs: Vec<JobSpec> = jobs
        .iter()
        .map(|(class_path, kind)| JobSpec {
            class_path: (*class_path).into(),
            name: (*class_path).into(),
            description: String::new(),
            kind: *kind,
            hidden: false,
            former_class_paths: vec![],
        })
        .collect();
    let known: Vec<String> = store.list_jobs().await?.into_iter().map(|job| job.class_path).collect();
    let missing: Vec<JobSpec> = specs.into_iter().filter(|spec| !known.contains(&spec.class_path)).collect();
    if !missing.is_empty() {
        store.sync_jobs(&missing, SyncMode::Additive).await?;
    }
    for (class_path, _) in jobs {
        store.set_job_enabled(class_path, true).await?;
    }
    let view = [
        "dcim.view_location",
        "dcim.view_device",
        "dcim.view_rack",
        "extras.view_objectchange",
        "extras.view_job",
        "extras.view_jobhook",
        "extras.view_jobbutton",
    ];
    let with =
        |user: User, perms: &[&str]| perms.iter().fold(user, |user, perm| user.with_permission(Permission::new(*perm)));
    let alice = with(
        with(User::new("alice")?, &view),
        &[
            "extras.run_job",
            "dcim.add_location",
            "extras.view_jobresult",
            "extras.add_jobhook",
            "extras.change_jobhook",
            "extras.delete_jobhook",
            "extras.add_jobbutton",
            "extras.change_jobbutton",
            "extras.delete_jobbutton",
            "extras.change_job",
        ],
    );
    let bob = with(with(User::new("bob")?, &view), &["extras.run_job"]);
    let eve = with(User::new("eve")?, &view);
    let mut logins = Vec::new();
    for (user, can) in [
        (alice, "runs jobs, adds locations, edits hooks and buttons"),
        (bob, "runs jobs, may not add locations"),
        (eve, "sees, may not run jobs"),
    ] {
        let password = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let hash = PasswordHash::new(&password, cost)?;
        let username = user.username.clone();
        store.put_user(user).await?;
        store.set_password(&username, Some(hash)).await?;
        logins.push(DemoLogin { username, password, can });
    }
    let devices = vec![ContentType::new("dcim.device")?];
    let hook = JobHook::new("Validate serials", devices, ExampleJobHookReceiver::CLASS_PATH).on([Action::Update]);
    store.create_hook(hook).await?;
    let locations = vec![ContentType::new("dcim.location")?];
    let simple =
        JobButton::new("Simple", locations, "Run simple on {{ obj }}", ExampleSimpleJobButtonReceiver::CLASS_PATH);
    store.create_button(simple).await?;
    let anywhere =
        vec![ContentType::new("dcim.location")?, ContentType::new("dcim.device")?, ContentType::new("dcim.rack")?];
    let mut complex =
        JobButton::new("Complex", anywhere, "Run complex on {{ obj }}", ExampleComplexJobButtonReceiver::CLASS_PATH);
    complex.confirmation = true;
    complex.button_class = ButtonClass::Warning;
    store.create_button(complex).await?;
    let mut session = store.session(ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), ""));
    session
        .save(Object::new(reference("dcim.location", "hq")?, "HQ", json!({"name": "HQ", "status": "active"}))?)
        .await?;
    session.save(Object::new(reference("dcim.rack", "r1")?, "R1", json!({"name": "R1", "location": "HQ"}))?).await?;
    let device = json!({"name": "edge-1", "serial": "A1", "location": "HQ", "rack": "R1"});
    session.save(Object::new(reference("dcim.device", "edge-1")?, "edge-1", device)?).await?;
    session.commit().await?;
    Ok(logins)
}
