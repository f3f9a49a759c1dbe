//! Link-time registration of job hook and job button receivers.
//!
//! An application makes a receiver known with one macro call next to the type, in the module that
//! defines it; there is no central list to edit and no proc macro. The registrations are collected
//! by the [`inventory`](https://docs.rs/inventory) crate when the program links, and a [`Registry`]
//! built at startup lists them, looks them up by class path and constructs their receivers.
//!
//! ```
//! use jobhooks_model::{async_trait, Action, JobContext, JobError, JobHookReceiver, Object, ObjectChange};
//! use jobhooks_register::{register_job_hook_receiver, JobMeta, Registry};
//!
//! #[derive(Default)]
//! pub struct AuditChanges;
//!
//! #[async_trait]
//! impl JobHookReceiver for AuditChanges {
//!     async fn receive_job_hook(
//!         &self, ctx: &mut JobContext, change: &ObjectChange, _: Action, _: Option<Object>,
//!     ) -> Result<(), JobError> {
//!         ctx.log_info(format!("change: {change}"));
//!         Ok(())
//!     }
//! }
//!
//! register_job_hook_receiver!(AuditChanges, JobMeta::new().name("Audit changes"));
//!
//! let registry = Registry::from_linked().unwrap();
//! let job = registry.get(&format!("{}::AuditChanges", module_path!())).unwrap();
//! assert_eq!(job.spec().name, "Audit changes");
//! assert!(job.hook_receiver().is_some());
//! ```
//!
//! The class path of a job is `module_path!()` + `::` + the type name, so it is stable across
//! builds and readable in logs and in the store.
//!
//! # The linking pitfall
//!
//! The linker drops a library crate that nothing in the final binary references, and the
//! registrations in it vanish with it, silently (dtolnay/inventory#50). If your receivers live in
//! their own crate, reference that crate from the binary (and from each integration test binary)
//! by calling a function of it, for example an empty `pub fn link() {}` that the crate exports:
//!
//! ```
//! # mod my_receivers { pub fn link() {} }
//! fn main() -> Result<(), jobhooks_register::RegistryError> {
//!     my_receivers::link(); // keeps my_receivers' registrations in the binary
//!     let registry = jobhooks_register::Registry::from_linked()?;
//!     # let _ = registry;
//!     Ok(())
//! }
//! ```
//!
//! A `use my_receivers as _;` alone may not be enough.
//!
//! Invariant: depends on `jobhooks-model` and `inventory` only: never on a storage backend or on
//! the dispatcher. Applications use the macros without depending on `inventory` themselves.

use std::collections::BTreeMap;
use std::sync::Arc;

use jobhooks_model::ports::{Catalog, SyncMode, SyncReport};
use jobhooks_model::{CatalogError, JobButtonReceiver, JobHookReceiver, JobKind, JobSpec};

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}

/// Optional metadata of a registered job, built with `const` methods so it can be written inside
/// the registration macros.
///
/// ```
/// use jobhooks_register::JobMeta;
/// const META: JobMeta = JobMeta::new().name("Validate serials").description("Reverts bad serials").hidden(false);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobMeta {
    class_path: Option<&'static str>,
    name: Option<&'static str>,
    description: &'static str,
    hidden: bool,
    approval_required: bool,
}

impl JobMeta {
    /// No display name (the type name is used), no description, hidden, no approval.
    pub const fn new() -> Self {
        Self { class_path: None, name: None, description: "", hidden: true, approval_required: false }
    }

    /// The job's class path, given explicitly: its identity in the store, which hooks and
    /// buttons name. By default it is `module_path!()::Type` ([`JobClass::CLASS_PATH`]); give one
    /// to register two instances of one type with different settings.
    pub const fn class_path(mut self, class_path: &'static str) -> Self {
        self.class_path = Some(class_path);
        self
    }

    /// The class path given with [`JobMeta::class_path`], else `default`.
    #[doc(hidden)]
    pub const fn class_path_or(self, default: &'static str) -> &'static str {
        match self.class_path {
            Some(class_path) => class_path,
            None => default,
        }
    }

    /// The display name (default: the type name).
    pub const fn name(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// What the job does.
    pub const fn description(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// Whether the job is left out of the job listing. Receivers are hidden by default.
    pub const fn hidden(mut self, hidden: bool) -> Self {
        self.hidden = hidden;
        self
    }

    /// Nautobot's `approval_required`. Not supported for job hook receivers: accepted, ignored,
    /// and a warning is logged when the registry is built.
    pub const fn approval_required(mut self, approval_required: bool) -> Self {
        self.approval_required = approval_required;
        self
    }
}

impl Default for JobMeta {
    fn default() -> Self {
        Self::new()
    }
}

/// How to build a registered job's receiver.
#[derive(Clone, Copy)]
pub enum Constructor {
    /// A job hook receiver.
    Hook(fn() -> Arc<dyn JobHookReceiver>),
    /// A job button receiver.
    Button(fn() -> Arc<dyn JobButtonReceiver>),
}

/// One registration, as the macros submit it. Not built by hand: use
/// [`register_job_hook_receiver!`] or [`register_job_button_receiver!`].
pub struct JobRegistration {
    class_path: &'static str,
    type_name: &'static str,
    location: &'static str,
    meta: JobMeta,
    constructor: Constructor,
}

impl JobRegistration {
    /// Used by the macros.
    #[doc(hidden)]
    pub const fn new(
        class_path: &'static str,
        type_name: &'static str,
        location: &'static str,
        meta: JobMeta,
        constructor: Constructor,
    ) -> Self {
        Self { class_path, type_name, location, meta, constructor }
    }

    fn class_path(&self) -> String {
        self.class_path.to_owned()
    }

    fn kind(&self) -> JobKind {
        match self.constructor {
            Constructor::Hook(_) => JobKind::JobHookReceiver,
            Constructor::Button(_) => JobKind::JobButtonReceiver,
        }
    }
}

inventory::collect!(JobRegistration);

/// A receiver type's job identity, fixed when the program is compiled: its class path, which the
/// store records and hooks and buttons name.
///
/// The registration macros implement it (`module_path!()::Type`, or the class path their
/// [`JobMeta`] gives); for a receiver registered as an instance or a factory, implement it with
/// [`job_class!`]. Other crates read a receiver's class path from it rather than writing the
/// string out:
///
/// ```
/// use jobhooks_model::{async_trait, Action, JobContext, JobError, JobHookReceiver, Object, ObjectChange};
/// use jobhooks_register::{job_class, JobClass};
///
/// pub struct Notify { pub channel: String }
///
/// #[async_trait]
/// impl JobHookReceiver for Notify {
///     async fn receive_job_hook(&self, ctx: &mut JobContext, _: &ObjectChange, _: Action, _: Option<Object>) -> Result<(), JobError> {
///         ctx.log_info(format!("would post to {}", self.channel));
///         Ok(())
///     }
/// }
///
/// job_class!(Notify);
///
/// assert_eq!(Notify::CLASS_PATH, concat!(module_path!(), "::Notify"));
/// ```
pub trait JobClass {
    /// `module_path!()` + `::` + the type's name as written, or a class path given explicitly.
    const CLASS_PATH: &'static str;
}

/// Implements [`JobClass`] for a receiver type: `job_class!(Type)` names it
/// `module_path!()::Type` (call it in the module that defines the type, as the registration macros
/// are); `job_class!(Type, "app::jobs::Type")` gives the class path explicitly.
#[macro_export]
macro_rules! job_class {
    ($receiver:ident) => {
        impl $crate::JobClass for $receiver {
            const CLASS_PATH: &'static str =
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!($receiver));
        }
    };
    ($receiver:ty, $class_path:expr) => {
        impl $crate::JobClass for $receiver {
            const CLASS_PATH: &'static str = $class_path;
        }
    };
}

/// Registers a job hook receiver type, which must implement `JobHookReceiver` and `Default`.
///
/// Call it in the module that defines the type: the job's class path is `module_path!()::Type`
/// (or the one its [`JobMeta::class_path`] gives), and the type implements [`JobClass`] with it.
/// Optional metadata is a [`JobMeta`] expression. See the crate docs for an example.
#[macro_export]
macro_rules! register_job_hook_receiver {
    ($receiver:ident) => {
        $crate::__register_receiver!(Hook, $receiver, $crate::JobMeta::new());
    };
    ($receiver:ident, $meta:expr) => {
        $crate::__register_receiver!(Hook, $receiver, $meta);
    };
}

/// Registers a job button receiver type, which must implement `JobButtonReceiver` and `Default`.
///
/// Call it in the module that defines the type: the job's class path is `module_path!()::Type`
/// (or the one its [`JobMeta::class_path`] gives), and the type implements [`JobClass`] with it.
/// Optional metadata is a [`JobMeta`] expression.
#[macro_export]
macro_rules! register_job_button_receiver {
    ($receiver:ident) => {
        $crate::__register_receiver!(Button, $receiver, $crate::JobMeta::new());
    };
    ($receiver:ident, $meta:expr) => {
        $crate::__register_receiver!(Button, $receiver, $meta);
    };
}

/// What both registration macros expand to; `$constructor` is a [`Constructor`] variant.
#[doc(hidden)]
#[macro_export]
macro_rules! __register_receiver {
    ($constructor:ident, $receiver:ident, $meta:expr) => {
        impl $crate::JobClass for $receiver {
            const CLASS_PATH: &'static str = $crate::JobMeta::class_path_or(
                $meta,
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!($receiver)),
            );
        }
        $crate::__private::inventory::submit! {
            $crate::JobRegistration::new(
                <$receiver as $crate::JobClass>::CLASS_PATH,
                ::core::stringify!($receiver),
                ::core::concat!(::core::file!(), ":", ::core::line!()),
                $meta,
                $crate::Constructor::$constructor(|| {
                    ::std::sync::Arc::new(<$receiver as ::core::default::Default>::default())
                }),
            )
        }
    };
}

/// Why a registry could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two registrations share a class path.
    #[error(
        "job {class_path} is registered twice, at {first} and at {second}; remove one registration or rename one type"
    )]
    Duplicate {
        /// The shared class path.
        class_path: String,
        /// Where the first registration is.
        first: String,
        /// Where the second registration is.
        second: String,
    },
}

/// One job of the registry: registered at link time, or given to the registry as an instance or
/// a factory.
#[derive(Clone)]
pub struct RegisteredJob {
    source: Source,
}

#[derive(Clone)]
enum Source {
    /// Registered with a macro.
    Linked(&'static JobRegistration),
    /// Given to [`Registry::with_hook_receiver`] and its siblings.
    Given { spec: JobSpec, location: String, approval_required: bool, factory: Factory },
}

/// Builds the receiver of a given job for each run.
#[derive(Clone)]
enum Factory {
    Hook(Arc<dyn Fn() -> Arc<dyn JobHookReceiver> + Send + Sync>),
    Button(Arc<dyn Fn() -> Arc<dyn JobButtonReceiver> + Send + Sync>),
}

impl RegisteredJob {
    /// The job's class path.
    pub fn class_path(&self) -> String {
        match &self.source {
            Source::Linked(registration) => registration.class_path(),
            Source::Given { spec, .. } => spec.class_path.clone(),
        }
    }

    /// Hook or button receiver.
    pub fn kind(&self) -> JobKind {
        match &self.source {
            Source::Linked(registration) => registration.kind(),
            Source::Given { spec, .. } => spec.kind,
        }
    }

    /// Whether `approval_required` was set (ignored for job hook receivers).
    pub fn approval_required(&self) -> bool {
        match &self.source {
            Source::Linked(registration) => registration.meta.approval_required,
            Source::Given { approval_required, .. } => *approval_required,
        }
    }

    /// Where the registration is (`file:line`).
    pub fn location(&self) -> String {
        match &self.source {
            Source::Linked(registration) => registration.location.to_owned(),
            Source::Given { location, .. } => location.clone(),
        }
    }

    /// The job as the store records it.
    pub fn spec(&self) -> JobSpec {
        match &self.source {
            Source::Linked(r) => JobSpec {
                class_path: r.class_path(),
                name: r.meta.name.unwrap_or(r.type_name).to_owned(),
                description: r.meta.description.to_owned(),
                kind: r.kind(),
                hidden: r.meta.hidden,
                former_class_paths: vec![],
            },
            Source::Given { spec, .. } => spec.clone(),
        }
    }

    /// The job hook receiver of a run, if this job is one: a fresh one for a linked type or a
    /// factory, the shared instance for an instance.
    pub fn hook_receiver(&self) -> Option<Arc<dyn JobHookReceiver>> {
        match &self.source {
            Source::Linked(JobRegistration { constructor: Constructor::Hook(build), .. }) => Some(build()),
            Source::Given { factory: Factory::Hook(build), .. } => Some(build()),
            _ => None,
        }
    }

    /// The job button receiver of a run, if this job is one.
    pub fn button_receiver(&self) -> Option<Arc<dyn JobButtonReceiver>> {
        match &self.source {
            Source::Linked(JobRegistration { constructor: Constructor::Button(build), .. }) => Some(build()),
            Source::Given { factory: Factory::Button(build), .. } => Some(build()),
            _ => None,
        }
    }
}

impl std::fmt::Debug for RegisteredJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredJob").field("spec", &self.spec()).field("location", &self.location()).finish()
    }
}

fn warn_if_approval_required(job: &RegisteredJob) {
    if job.kind() == JobKind::JobHookReceiver && job.approval_required() {
        tracing::warn!(
            job = %job.class_path(),
            "approval_required is not supported for job hook receivers and is ignored: {} runs without approval",
            job.class_path()
        );
    }
}

/// Every job linked into the program, by class path.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    jobs: BTreeMap<String, RegisteredJob>,
}

impl Registry {
    /// The registry of everything linked into this program. Fails if two registrations share a
    /// class path. Logs one warning per job hook receiver that sets `approval_required`.
    pub fn from_linked() -> Result<Self, RegistryError> {
        Self::from_registrations(inventory::iter::<JobRegistration>)
    }

    /// The registry of the given registrations (the linked ones in [`Registry::from_linked`]).
    pub fn from_registrations(
        registrations: impl IntoIterator<Item = &'static JobRegistration>,
    ) -> Result<Self, RegistryError> {
        let mut jobs = BTreeMap::new();
        // Sorted by location so that the error for a duplicate is the same on every run, whatever
        // order the linker put the registrations in.
        let mut registrations: Vec<_> = registrations.into_iter().collect();
        registrations.sort_by_key(|r| r.location);
        for registration in registrations {
            let job = RegisteredJob { source: Source::Linked(registration) };
            if let Some(first) = jobs.insert(job.class_path(), job.clone()) {
                return Err(RegistryError::Duplicate {
                    class_path: job.class_path(),
                    first: first.location(),
                    second: job.location(),
                });
            }
        }
        let registry = Self { jobs };
        for job in registry.jobs() {
            warn_if_approval_required(job);
        }
        Ok(registry)
    }

    /// Adds a job hook receiver instance, shared by all its runs: a receiver that holds state (a
    /// database pool, an HTTP client, its configuration) need not be `Default`. Its class path is
    /// the type's [`JobClass::CLASS_PATH`] (implement it with [`job_class!`]), or the one `meta`
    /// gives ([`JobMeta::class_path`]), so that two instances of one type can be registered.
    ///
    /// ```
    /// use jobhooks_model::{async_trait, Action, JobContext, JobError, JobHookReceiver, Object, ObjectChange};
    /// use jobhooks_register::{JobMeta, Registry};
    ///
    /// struct Notify { webhook: String }
    /// jobhooks_register::job_class!(Notify);
    ///
    /// #[async_trait]
    /// impl JobHookReceiver for Notify {
    ///     async fn receive_job_hook(&self, ctx: &mut JobContext, _: &ObjectChange, _: Action, _: Option<Object>) -> Result<(), JobError> {
    ///         ctx.log_info(format!("would post to {}", self.webhook));
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let registry = Registry::default()
    ///     .with_hook_receiver(Notify { webhook: "https://chat.example/hook".into() }, JobMeta::new().name("Notify"))
    ///     .unwrap()
    ///     .with_hook_receiver(
    ///         Notify { webhook: "https://ops.example/hook".into() },
    ///         JobMeta::new().class_path("app::NotifyOps").name("Notify ops"),
    ///     )
    ///     .unwrap();
    /// let job = registry.get_class::<Notify>().unwrap();
    /// assert_eq!(job.class_path(), format!("{}::Notify", module_path!()));
    /// assert_eq!(job.spec().name, "Notify");
    /// assert_eq!(registry.get("app::NotifyOps").unwrap().spec().name, "Notify ops");
    /// ```
    #[track_caller]
    pub fn with_hook_receiver<R: JobHookReceiver + JobClass + 'static>(
        self,
        receiver: R,
        meta: JobMeta,
    ) -> Result<Self, RegistryError> {
        let receiver: Arc<dyn JobHookReceiver> = Arc::new(receiver);
        self.with_given::<R>(JobKind::JobHookReceiver, meta, Factory::Hook(Arc::new(move || receiver.clone())))
    }

    /// Adds a job hook receiver built by `factory` for each run.
    #[track_caller]
    pub fn with_hook_receiver_factory<R, F>(self, factory: F, meta: JobMeta) -> Result<Self, RegistryError>
    where
        R: JobHookReceiver + JobClass + 'static,
        F: Fn() -> R + Send + Sync + 'static,
    {
        let build = move || -> Arc<dyn JobHookReceiver> { Arc::new(factory()) };
        self.with_given::<R>(JobKind::JobHookReceiver, meta, Factory::Hook(Arc::new(build)))
    }

    /// Adds a job button receiver instance, shared by all its runs (see
    /// [`Registry::with_hook_receiver`]).
    #[track_caller]
    pub fn with_button_receiver<R: JobButtonReceiver + JobClass + 'static>(
        self,
        receiver: R,
        meta: JobMeta,
    ) -> Result<Self, RegistryError> {
        let receiver: Arc<dyn JobButtonReceiver> = Arc::new(receiver);
        self.with_given::<R>(JobKind::JobButtonReceiver, meta, Factory::Button(Arc::new(move || receiver.clone())))
    }

    /// Adds a job button receiver built by `factory` for each run.
    #[track_caller]
    pub fn with_button_receiver_factory<R, F>(self, factory: F, meta: JobMeta) -> Result<Self, RegistryError>
    where
        R: JobButtonReceiver + JobClass + 'static,
        F: Fn() -> R + Send + Sync + 'static,
    {
        let build = move || -> Arc<dyn JobButtonReceiver> { Arc::new(factory()) };
        self.with_given::<R>(JobKind::JobButtonReceiver, meta, Factory::Button(Arc::new(build)))
    }

    #[track_caller]
    fn with_given<R: JobClass + 'static>(
        mut self,
        kind: JobKind,
        meta: JobMeta,
        factory: Factory,
    ) -> Result<Self, RegistryError> {
        let caller = std::panic::Location::caller();
        let class_path = meta.class_path_or(R::CLASS_PATH).to_owned();
        let type_name = class_path.rsplit("::").next().unwrap_or(&class_path).to_owned();
        // Before `JobClass`, an instance's class path was `std::any::type_name`: a store that
        // recorded the job under that name has it renamed at the next sync.
        let former = std::any::type_name::<R>();
        let former_class_paths =
            if meta.class_path.is_none() && former != class_path { vec![former.to_owned()] } else { Vec::new() };
        let spec = JobSpec {
            name: meta.name.map_or(type_name, str::to_owned),
            description: meta.description.to_owned(),
            kind,
            hidden: meta.hidden,
            class_path: class_path.clone(),
            former_class_paths,
        };
        let location = format!("{}:{}", caller.file(), caller.line());
        let job = RegisteredJob {
            source: Source::Given { spec, location, approval_required: meta.approval_required, factory },
        };
        if let Some(first) = self.jobs.get(&class_path) {
            return Err(RegistryError::Duplicate { class_path, first: first.location(), second: job.location() });
        }
        warn_if_approval_required(&job);
        self.jobs.insert(class_path, job);
        Ok(self)
    }

    /// The class path of the receiver type `R` as its registration gives it, without writing it
    /// out: what another crate uses to create a hook or a button for it.
    ///
    /// A receiver registered with an explicit [`JobMeta::class_path`] as an instance is found by
    /// that class path instead.
    pub fn class_path_of<R: JobClass>() -> &'static str {
        R::CLASS_PATH
    }

    /// The job of the receiver type `R` (registered under [`JobClass::CLASS_PATH`]).
    pub fn get_class<R: JobClass>(&self) -> Option<&RegisteredJob> {
        self.get(R::CLASS_PATH)
    }

    /// Every job, sorted by class path.
    pub fn jobs(&self) -> impl Iterator<Item = &RegisteredJob> {
        self.jobs.values()
    }

    /// The job `class_path`.
    pub fn get(&self, class_path: &str) -> Option<&RegisteredJob> {
        self.jobs.get(class_path)
    }

    /// How many jobs.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// No job is linked.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The specs of every job, sorted by class path.
    pub fn specs(&self) -> Vec<JobSpec> {
        self.jobs().map(RegisteredJob::spec).collect()
    }

    /// Makes the store's job records match this registry, per `mode`: new jobs installed and
    /// disabled; with [`SyncMode::Full`], jobs no longer linked marked not installed (which
    /// disables their hooks and buttons). The dispatcher calls it at start.
    pub async fn sync_into(&self, catalog: &dyn Catalog, mode: SyncMode) -> Result<SyncReport, CatalogError> {
        catalog.sync_jobs(&self.specs(), mode).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobhooks_model::{Action, JobContext, JobError, Object, ObjectChange, async_trait};

    #[derive(Default)]
    struct Quiet;

    #[async_trait]
    impl JobHookReceiver for Quiet {
        async fn receive_job_hook(
            &self,
            _: &mut JobContext,
            _: &ObjectChange,
            _: Action,
            _: Option<Object>,
        ) -> Result<(), JobError> {
            Ok(())
        }
    }

    #[async_trait]
    impl JobButtonReceiver for Quiet {
        async fn receive_job_button(&self, _: &mut JobContext, _: Object) -> Result<(), JobError> {
            Ok(())
        }
    }

    fn hook() -> Arc<dyn JobHookReceiver> {
        Arc::new(Quiet)
    }

    fn button() -> Arc<dyn JobButtonReceiver> {
        Arc::new(Quiet)
    }

    static FIRST: JobRegistration =
        JobRegistration::new("app::jobs::Quiet", "Quiet", "src/a.rs:1", JobMeta::new(), Constructor::Hook(hook));
    static SECOND: JobRegistration =
        JobRegistration::new("app::jobs::Quiet", "Quiet", "src/b.rs:2", JobMeta::new(), Constructor::Button(button));
    static OTHER: JobRegistration = JobRegistration::new(
        "app::buttons::Press",
        "Press",
        "src/c.rs:3",
        JobMeta::new().name("Press it").description("d").hidden(false),
        Constructor::Button(button),
    );

    #[test]
    fn duplicates_name_both_registrations_in_a_stable_order() {
        for order in [[&SECOND, &FIRST], [&FIRST, &SECOND]] {
            let err = Registry::from_registrations(order).unwrap_err();
            assert_eq!(
                err.to_string(),
                "job app::jobs::Quiet is registered twice, at src/a.rs:1 and at src/b.rs:2; remove one registration or rename one type"
            );
        }
    }

    #[test]
    fn jobs_are_sorted_by_class_path_and_carry_their_meta() {
        let registry = Registry::from_registrations([&FIRST, &OTHER]).unwrap();
        let paths: Vec<_> = registry.jobs().map(RegisteredJob::class_path).collect();
        assert_eq!(paths, ["app::buttons::Press", "app::jobs::Quiet"]);
        let press = registry.get("app::buttons::Press").unwrap().spec();
        assert_eq!(
            press,
            JobSpec {
                class_path: "app::buttons::Press".into(),
                name: "Press it".into(),
                description: "d".into(),
                kind: JobKind::JobButtonReceiver,
                hidden: false,
                former_class_paths: vec![],
            }
        );
        let quiet = registry.get("app::jobs::Quiet").unwrap();
        assert_eq!(quiet.spec().name, "Quiet", "the type name is the default display name");
        assert!(quiet.spec().hidden, "receivers are hidden by default");
        assert!(quiet.hook_receiver().is_some() && quiet.button_receiver().is_none());
        assert!(registry.get("app::jobs::Missing").is_none());
        assert_eq!(registry.len(), 2);
    }

    /// Receivers in a nested module, registered three ways: their class paths are fixed by the
    /// source (`module_path!()` and the type's name), never by `std::any::type_name`.
    mod nested {
        pub mod deeper {
            use super::super::*;

            #[derive(Default)]
            pub struct Unit;

            #[async_trait]
            impl JobHookReceiver for Unit {
                async fn receive_job_hook(
                    &self,
                    _: &mut JobContext,
                    _: &ObjectChange,
                    _: Action,
                    _: Option<Object>,
                ) -> Result<(), JobError> {
                    Ok(())
                }
            }

            crate::register_job_hook_receiver!(Unit);

            pub struct Instance {
                pub channel: &'static str,
            }

            #[async_trait]
            impl JobButtonReceiver for Instance {
                async fn receive_job_button(&self, ctx: &mut JobContext, _: Object) -> Result<(), JobError> {
                    ctx.log_info(self.channel);
                    Ok(())
                }
            }

            crate::job_class!(Instance);

            pub struct Built;

            #[async_trait]
            impl JobHookReceiver for Built {
                async fn receive_job_hook(
                    &self,
                    _: &mut JobContext,
                    _: &ObjectChange,
                    _: Action,
                    _: Option<Object>,
                ) -> Result<(), JobError> {
                    Ok(())
                }
            }

            crate::job_class!(Built, "app::hooks::Built");
        }
    }

    #[test]
    fn class_paths_of_a_unit_receiver_an_instance_and_a_factory_are_fixed_by_the_source() {
        use nested::deeper::{Built, Instance, Unit};
        assert_eq!(Unit::CLASS_PATH, "jobhooks_register::tests::nested::deeper::Unit");
        assert_eq!(Registry::class_path_of::<Instance>(), "jobhooks_register::tests::nested::deeper::Instance");
        let registry = Registry::from_linked()
            .unwrap()
            .with_button_receiver(Instance { channel: "ops" }, JobMeta::new())
            .unwrap()
            .with_button_receiver(Instance { channel: "noc" }, JobMeta::new().class_path("app::buttons::Noc"))
            .unwrap()
            .with_hook_receiver_factory(|| Built, JobMeta::new())
            .unwrap();
        let paths: Vec<_> = registry.jobs().map(RegisteredJob::class_path).collect();
        assert_eq!(
            paths,
            [
                "app::buttons::Noc",
                "app::hooks::Built",
                "jobhooks_register::tests::nested::deeper::Instance",
                "jobhooks_register::tests::nested::deeper::Unit",
            ]
        );
        assert_eq!(registry.get_class::<Unit>().unwrap().kind(), JobKind::JobHookReceiver);
        assert_eq!(registry.get("app::buttons::Noc").unwrap().spec().name, "Noc");
        let twice = Registry::default()
            .with_button_receiver(Instance { channel: "a" }, JobMeta::new())
            .unwrap()
            .with_button_receiver(Instance { channel: "b" }, JobMeta::new());
        assert!(matches!(twice, Err(RegistryError::Duplicate { .. })), "one class path, two instances");
    }

    #[test]
    fn an_instance_keeps_the_name_type_name_gave_it_as_a_former_class_path() {
        struct Local;
        #[async_trait]
        impl JobHookReceiver for Local {
            async fn receive_job_hook(
                &self,
                _: &mut JobContext,
                _: &ObjectChange,
                _: Action,
                _: Option<Object>,
            ) -> Result<(), JobError> {
                Ok(())
            }
        }
        crate::job_class!(Local);
        let registry = Registry::default().with_hook_receiver(Local, JobMeta::new()).unwrap();
        let spec = registry.get_class::<Local>().unwrap().spec();
        assert_eq!(spec.class_path, "jobhooks_register::tests::Local");
        assert_eq!(spec.former_class_paths, [std::any::type_name::<Local>()]);
        assert_ne!(spec.former_class_paths[0], spec.class_path, "a type in a function: type_name differs");
    }
}
