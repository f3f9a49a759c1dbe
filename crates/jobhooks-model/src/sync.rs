//! Job sync: making the job records match the receivers a program links, as a pure planner that
//! every store applies; and job restore, which enables again what a sync disabled.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{JobButton, JobHook, JobRecord, JobSpec, Suspension};

/// Which jobs a program may mark as not installed when it syncs the jobs it links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SyncMode {
    /// Add the linked jobs and refresh their names; leave every other job as it is. For programs
    /// that link only some of an application's receivers: the stock `jobhooks` binary, tools,
    /// API-only servers.
    Additive,
    /// The program links every receiver of the application: a job it does not link is marked
    /// not installed, and its enabled hooks and buttons are disabled (Nautobot's rule). What was
    /// disabled is remembered on the job record, so that [`plan_job_restore`] (`jobhooks jobs
    /// restore`) enables it again once the job is linked again. Only an application's own
    /// dispatcher should sync this way.
    Full,
}

/// What syncing the linked jobs into the job records changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Jobs seen for the first time (installed, disabled).
    pub added: Vec<String>,
    /// Jobs found under a former class path and renamed, with their hooks and buttons:
    /// `(former, current)`.
    #[serde(default)]
    pub renamed: Vec<(String, String)>,
    /// Jobs linked again after being absent (installed, disabled until enabled again).
    pub reinstalled: Vec<String>,
    /// Jobs no longer linked (marked not installed).
    pub uninstalled: Vec<String>,
    /// Hooks disabled because their job is no longer installed.
    pub disabled_hooks: Vec<String>,
    /// Buttons disabled because their job is no longer installed.
    pub disabled_buttons: Vec<String>,
}

/// The catalog writes of a job sync or a job restore: a store applies them in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSyncPlan<R = SyncReport> {
    /// Job records to write (new or changed), by class path.
    pub jobs: Vec<JobRecord>,
    /// Job records to delete (renamed), by class path.
    pub removed_jobs: Vec<String>,
    /// Hooks to write.
    pub hooks: Vec<JobHook>,
    /// Buttons to write.
    pub buttons: Vec<JobButton>,
    /// What the writes change, for people.
    pub report: R,
}

impl<R> JobSyncPlan<R> {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.removed_jobs.is_empty() && self.hooks.is_empty() && self.buttons.is_empty()
    }
}

/// Plans the sync of the `linked` jobs into the stored `jobs`, `hooks` and `buttons`, per `mode`:
///
/// - a job linked for the first time is installed and disabled, unless a stored job is found
///   under one of its [former class paths](JobSpec::former_class_paths): that one is renamed, its
///   hooks and buttons follow it, and it keeps its flags;
/// - a linked job keeps its `enabled` flag and gets the linked name, description, kind and
///   hidden flag; one that was not installed is installed again, disabled until enabled (or
///   restored with [`plan_job_restore`]);
/// - with [`SyncMode::Full`], an installed job that is not linked is marked not installed, and the
///   enabled hooks and buttons of every job that is not linked are disabled; the job record
///   remembers what was disabled ([`JobRecord::suspended`]). With [`SyncMode::Additive`], they are
///   left alone.
///
/// ```
/// use jobhooks_model::{JobKind, JobSpec, SyncMode, plan_job_sync};
/// let linked = [JobSpec {
///     class_path: "app::Audit".into(), name: "Audit".into(), description: String::new(),
///     kind: JobKind::JobHookReceiver, hidden: true, former_class_paths: vec![],
/// }];
/// let plan = plan_job_sync([], [], [], &linked, SyncMode::Full);
/// assert_eq!(plan.report.added, ["app::Audit"]);
/// assert!(plan.jobs[0].installed && !plan.jobs[0].enabled);
/// ```
pub fn plan_job_sync<'a>(
    jobs: impl IntoIterator<Item = &'a JobRecord>,
    hooks: impl IntoIterator<Item = &'a JobHook>,
    buttons: impl IntoIterator<Item = &'a JobButton>,
    linked: &[JobSpec],
    mode: SyncMode,
) -> JobSyncPlan {
    let jobs: BTreeMap<&str, &JobRecord> = jobs.into_iter().map(|job| (job.class_path.as_str(), job)).collect();
    let mut plan = JobSyncPlan::<SyncReport>::default();
    let mut linked_paths = BTreeSet::new();
    // Former class path -> current one, for the jobs this sync renames.
    let mut renames: BTreeMap<&str, &str> = BTreeMap::new();
    for spec in linked {
        if !linked_paths.insert(spec.class_path.as_str()) {
            continue;
        }
        let mut stored = jobs.get(spec.class_path.as_str()).copied();
        if stored.is_none()
            && let Some(former) = spec
                .former_class_paths
                .iter()
                .find(|former| jobs.contains_key(former.as_str()) && !renames.contains_key(former.as_str()))
        {
            renames.insert(former, &spec.class_path);
            plan.report.renamed.push((former.clone(), spec.class_path.clone()));
            plan.removed_jobs.push(former.clone());
            stored = jobs.get(former.as_str()).copied();
        }
        let record = match stored {
            None => {
                plan.report.added.push(spec.class_path.clone());
                JobRecord {
                    description: spec.description.clone(),
                    hidden: spec.hidden,
                    // A new job waits to be enabled, except the built-in one that sends webhooks:
                    // a webhook is enabled on its own.
                    enabled: spec.class_path == crate::WEBHOOK_JOB,
                    ..JobRecord::new(spec.class_path.clone(), spec.name.clone(), spec.kind)
                }
            }
            Some(existing) => {
                let reinstalled = !existing.installed;
                if reinstalled {
                    plan.report.reinstalled.push(spec.class_path.clone());
                }
                JobRecord {
                    name: spec.name.clone(),
                    description: spec.description.clone(),
                    kind: spec.kind,
                    installed: true,
                    enabled: existing.enabled && !reinstalled,
                    hidden: spec.hidden,
                    class_path: spec.class_path.clone(),
                    ..existing.clone()
                }
            }
        };
        if stored != Some(&record) {
            plan.jobs.push(record);
        }
    }
    // Hooks and buttons follow their job's rename; the rest of the plan sees the renamed catalog.
    let follow = |job: &str| renames.get(job).map(|current| (*current).to_owned());
    let hooks: Vec<JobHook> = hooks
        .into_iter()
        .map(|hook| match follow(&hook.job) {
            Some(job) => {
                let renamed = JobHook { job, ..hook.clone() };
                plan.hooks.push(renamed.clone());
                renamed
            }
            None => hook.clone(),
        })
        .collect();
    let buttons: Vec<JobButton> = buttons
        .into_iter()
        .map(|button| match follow(&button.job) {
            Some(job) => {
                let renamed = JobButton { job, ..button.clone() };
                plan.buttons.push(renamed.clone());
                renamed
            }
            None => button.clone(),
        })
        .collect();
    if mode == SyncMode::Full {
        let gone = |job: &str| !linked_paths.contains(job);
        let mut suspensions: BTreeMap<&str, Suspension> = BTreeMap::new();
        for job in jobs.values().filter(|job| !renames.contains_key(job.class_path.as_str()) && gone(&job.class_path)) {
            let mut suspension = job.suspended.clone().unwrap_or_default();
            if job.installed {
                plan.report.uninstalled.push(job.class_path.clone());
                suspension.enabled |= job.enabled;
            }
            suspensions.insert(&job.class_path, suspension);
        }
        // Every job this program does not link is not installed: none of its hooks and buttons
        // stays enabled, whenever it was uninstalled.
        for hook in hooks.iter().filter(|hook| hook.enabled && gone(&hook.job)) {
            plan.report.disabled_hooks.push(hook.name.clone());
            if let Some(suspension) = suspensions.get_mut(hook.job.as_str()) {
                suspension.hooks.push(hook.name.clone());
            }
            upsert(&mut plan.hooks, JobHook { enabled: false, ..hook.clone() }, |h| &h.name);
        }
        for button in buttons.iter().filter(|button| button.enabled && gone(&button.job)) {
            plan.report.disabled_buttons.push(button.name.clone());
            if let Some(suspension) = suspensions.get_mut(button.job.as_str()) {
                suspension.buttons.push(button.name.clone());
            }
            upsert(&mut plan.buttons, JobButton { enabled: false, ..button.clone() }, |b| &b.name);
        }
        for (class_path, suspension) in suspensions {
            let job = jobs[class_path];
            let suspended = (suspension != Suspension::default()).then_some(suspension);
            let record = JobRecord { installed: false, suspended, ..job.clone() };
            if record != *job {
                plan.jobs.push(record);
            }
        }
    }
    plan
}

/// Replaces the entry of `items` with `item`'s key, or appends `item`.
fn upsert<T>(items: &mut Vec<T>, item: T, key: impl Fn(&T) -> &String) {
    match items.iter_mut().find(|existing| key(existing) == key(&item)) {
        Some(existing) => *existing = item,
        None => items.push(item),
    }
}

/// What restoring jobs enabled again, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobRestoreReport {
    /// Jobs whose suspension was lifted (enabled again if they were enabled when uninstalled).
    pub restored: Vec<String>,
    /// Hooks enabled again.
    pub enabled_hooks: Vec<String>,
    /// Buttons enabled again.
    pub enabled_buttons: Vec<String>,
    /// Jobs with something to restore that are still not installed: link them (and call
    /// `link()` on the crate that registers them), start the program, then restore again.
    pub not_installed: Vec<String>,
}

/// Plans enabling again what syncs disabled ([`JobRecord::suspended`]), for the jobs `only` names
/// (every job when `only` is empty). A job is restored only once it is installed again: its
/// `enabled` flag comes back, and so does each hook and button the sync disabled that still
/// exists, still runs this job and is still disabled. Whatever a person changed since is left as
/// it is.
///
/// ```
/// use jobhooks_model::{JobHook, JobKind, JobRecord, Suspension, ContentType, plan_job_restore};
/// let job = JobRecord {
///     suspended: Some(Suspension { enabled: true, hooks: vec!["audit".into()], buttons: vec![] }),
///     ..JobRecord::new("app::Audit", "Audit", JobKind::JobHookReceiver)
/// };
/// let hook = JobHook::new("audit", vec![ContentType::new("dcim.device").unwrap()], "app::Audit");
/// let hook = JobHook { enabled: false, ..hook };
/// let plan = plan_job_restore([&job], [&hook], [], &[]);
/// assert_eq!(plan.report.restored, ["app::Audit"]);
/// assert!(plan.jobs[0].enabled && plan.jobs[0].suspended.is_none());
/// assert!(plan.hooks[0].enabled);
/// ```
pub fn plan_job_restore<'a>(
    jobs: impl IntoIterator<Item = &'a JobRecord>,
    hooks: impl IntoIterator<Item = &'a JobHook>,
    buttons: impl IntoIterator<Item = &'a JobButton>,
    only: &[String],
) -> JobSyncPlan<JobRestoreReport> {
    let hooks: BTreeMap<&str, &JobHook> = hooks.into_iter().map(|hook| (hook.name.as_str(), hook)).collect();
    let buttons: BTreeMap<&str, &JobButton> =
        buttons.into_iter().map(|button| (button.name.as_str(), button)).collect();
    let mut plan = JobSyncPlan::<JobRestoreReport>::default();
    for job in jobs {
        let Some(suspension) = &job.suspended else { continue };
        if !only.is_empty() && !only.contains(&job.class_path) {
            continue;
        }
        if !job.installed {
            plan.report.not_installed.push(job.class_path.clone());
            continue;
        }
        plan.report.restored.push(job.class_path.clone());
        plan.jobs.push(JobRecord { enabled: job.enabled || suspension.enabled, suspended: None, ..job.clone() });
        for name in &suspension.hooks {
            if let Some(hook) = hooks.get(name.as_str()).filter(|hook| !hook.enabled && hook.job == job.class_path) {
                plan.report.enabled_hooks.push(name.clone());
                plan.hooks.push(JobHook { enabled: true, ..(*hook).clone() });
            }
        }
        for name in &suspension.buttons {
            if let Some(button) =
                buttons.get(name.as_str()).filter(|button| !button.enabled && button.job == job.class_path)
            {
                plan.report.enabled_buttons.push(name.clone());
                plan.buttons.push(JobButton { enabled: true, ..(*button).clone() });
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::{ContentType, JobKind};

    fn spec(class_path: &str) -> JobSpec {
        JobSpec {
            class_path: class_path.into(),
            name: class_path.into(),
            description: String::new(),
            kind: JobKind::JobHookReceiver,
            hidden: true,
            former_class_paths: vec![],
        }
    }

    fn hook(name: &str, job: &str, enabled: bool) -> JobHook {
        JobHook { enabled, ..JobHook::new(name, vec![ContentType::new("dcim.device").unwrap()], job) }
    }

    fn button(name: &str, job: &str, enabled: bool) -> JobButton {
        JobButton { enabled, ..JobButton::new(name, vec![ContentType::new("dcim.device").unwrap()], "go", job) }
    }

    /// The stored catalog, as a store keeps it.
    #[derive(Debug, Clone, Default)]
    struct Catalog {
        jobs: BTreeMap<String, JobRecord>,
        hooks: BTreeMap<String, JobHook>,
        buttons: BTreeMap<String, JobButton>,
    }

    impl Catalog {
        fn plan(&self, linked: &[JobSpec], mode: SyncMode) -> JobSyncPlan {
            plan_job_sync(self.jobs.values(), self.hooks.values(), self.buttons.values(), linked, mode)
        }

        fn apply<R>(&mut self, plan: &JobSyncPlan<R>) {
            for class_path in &plan.removed_jobs {
                self.jobs.remove(class_path);
            }
            for job in &plan.jobs {
                self.jobs.insert(job.class_path.clone(), job.clone());
            }
            for hook in &plan.hooks {
                self.hooks.insert(hook.name.clone(), hook.clone());
            }
            for button in &plan.buttons {
                self.buttons.insert(button.name.clone(), button.clone());
            }
        }
    }

    #[test]
    fn an_additive_sync_never_uninstalls_nor_disables() {
        let mut catalog = Catalog::default();
        catalog.apply(&catalog.plan(&[spec("app::Theirs"), spec("app::Ours")], SyncMode::Full));
        catalog.jobs.values_mut().for_each(|job| job.enabled = true);
        catalog.hooks.insert("h".into(), hook("h", "app::Theirs", true));
        catalog.buttons.insert("b".into(), button("b", "app::Theirs", true));
        let plan = catalog.plan(&[spec("app::Ours")], SyncMode::Additive);
        assert!(plan.is_empty(), "{plan:?}");
        let plan = catalog.plan(&[spec("app::Ours")], SyncMode::Full);
        assert_eq!(plan.report.uninstalled, ["app::Theirs"]);
        assert_eq!(plan.report.disabled_hooks, ["h"]);
        assert_eq!(plan.report.disabled_buttons, ["b"]);
        assert!(!plan.hooks[0].enabled && !plan.buttons[0].enabled);
    }

    #[test]
    fn a_job_linked_again_is_installed_and_disabled_until_enabled() {
        let mut catalog = Catalog::default();
        catalog.apply(&catalog.plan(&[spec("app::A")], SyncMode::Full));
        catalog.jobs.get_mut("app::A").unwrap().enabled = true;
        catalog.apply(&catalog.plan(&[], SyncMode::Full));
        assert!(!catalog.jobs["app::A"].installed);
        let plan = catalog.plan(&[spec("app::A")], SyncMode::Additive);
        assert_eq!(plan.report.reinstalled, ["app::A"]);
        catalog.apply(&plan);
        assert!(catalog.jobs["app::A"].installed && !catalog.jobs["app::A"].enabled);
    }

    #[test]
    fn a_job_found_under_a_former_class_path_is_renamed_with_its_hooks_and_buttons() {
        let mut catalog = Catalog::default();
        catalog.apply(&catalog.plan(&[spec("app::main::Notify")], SyncMode::Full));
        catalog.jobs.get_mut("app::main::Notify").unwrap().enabled = true;
        catalog.hooks.insert("h".into(), hook("h", "app::main::Notify", true));
        catalog.buttons.insert("b".into(), button("b", "app::main::Notify", false));
        let renamed = JobSpec { former_class_paths: vec!["app::main::Notify".into()], ..spec("app::Notify") };
        let plan = catalog.plan(std::slice::from_ref(&renamed), SyncMode::Full);
        assert_eq!(plan.report.renamed, [("app::main::Notify".to_owned(), "app::Notify".to_owned())]);
        assert!(plan.report.uninstalled.is_empty() && plan.report.disabled_hooks.is_empty(), "{plan:?}");
        catalog.apply(&plan);
        assert_eq!(catalog.jobs.keys().collect::<Vec<_>>(), ["app::Notify"]);
        assert!(catalog.jobs["app::Notify"].enabled, "the renamed job keeps its flags");
        assert_eq!((catalog.hooks["h"].job.as_str(), catalog.hooks["h"].enabled), ("app::Notify", true));
        assert_eq!((catalog.buttons["b"].job.as_str(), catalog.buttons["b"].enabled), ("app::Notify", false));
        assert!(catalog.plan(&[renamed], SyncMode::Full).is_empty());
    }

    #[test]
    fn a_restore_waits_for_the_job_to_be_linked_again_and_leaves_later_edits_alone() {
        let mut catalog = Catalog::default();
        catalog.apply(&catalog.plan(&[spec("app::A")], SyncMode::Full));
        catalog.jobs.get_mut("app::A").unwrap().enabled = true;
        for (name, on) in [("on", true), ("off", false), ("edited", true)] {
            catalog.hooks.insert(name.into(), hook(name, "app::A", on));
        }
        let plan = catalog.plan(&[], SyncMode::Full);
        assert_eq!(plan.report.disabled_hooks, ["edited", "on"]);
        catalog.apply(&plan);
        let suspended = catalog.jobs["app::A"].suspended.clone().unwrap();
        assert_eq!(suspended, Suspension { enabled: true, hooks: vec!["edited".into(), "on".into()], buttons: vec![] });
        let early = plan_job_restore(catalog.jobs.values(), catalog.hooks.values(), [], &[]);
        assert_eq!(early.report.not_installed, ["app::A"]);
        assert!(early.is_empty(), "nothing is enabled while the job is missing");
        catalog.apply(&catalog.plan(&[spec("app::A")], SyncMode::Full));
        catalog.hooks.get_mut("edited").unwrap().job = "app::B".into();
        let restore = plan_job_restore(catalog.jobs.values(), catalog.hooks.values(), [], &["app::A".into()]);
        catalog.apply(&restore);
        assert_eq!(restore.report.restored, ["app::A"]);
        assert_eq!(restore.report.enabled_hooks, ["on"]);
        assert!(catalog.jobs["app::A"].enabled && catalog.jobs["app::A"].suspended.is_none());
        assert!(catalog.hooks["on"].enabled && !catalog.hooks["off"].enabled && !catalog.hooks["edited"].enabled);
        assert!(plan_job_restore(catalog.jobs.values(), catalog.hooks.values(), [], &[]).is_empty());
    }

    fn arb_catalog() -> impl Strategy<Value = Catalog> {
        let jobs = prop::collection::btree_map(0u8..6, (any::<bool>(), any::<bool>()), 0..6);
        let uses = prop::collection::vec((0u8..6, any::<bool>()), 0..6);
        (jobs, uses.clone(), uses).prop_map(|(jobs, hooks, buttons)| {
            let path = |n: u8| format!("app::Job{n}");
            Catalog {
                jobs: jobs
                    .into_iter()
                    .map(|(n, (installed, enabled))| {
                        let record = JobRecord {
                            installed,
                            enabled,
                            suspended: None,
                            ..plan_job_sync([], [], [], &[spec(&path(n))], SyncMode::Full).jobs[0].clone()
                        };
                        (path(n), record)
                    })
                    .collect(),
                hooks: hooks
                    .into_iter()
                    .enumerate()
                    .map(|(i, (n, on))| (format!("h{i}"), hook(&format!("h{i}"), &path(n), on)))
                    .collect(),
                buttons: buttons
                    .into_iter()
                    .enumerate()
                    .map(|(i, (n, on))| (format!("b{i}"), button(&format!("b{i}"), &path(n), on)))
                    .collect(),
            }
        })
    }

    proptest! {
        #[test]
        fn a_sync_makes_the_catalog_match_its_mode_and_then_has_nothing_left_to_do(
            catalog in arb_catalog(),
            linked in prop::collection::btree_set(0u8..6, 0..6),
            full in any::<bool>(),
        ) {
            let mode = if full { SyncMode::Full } else { SyncMode::Additive };
            let linked: Vec<JobSpec> = linked.into_iter().map(|n| spec(&format!("app::Job{n}"))).collect();
            let before = catalog.clone();
            let mut after = catalog;
            let plan = after.plan(&linked, mode);
            after.apply(&plan);
            for spec in &linked {
                let job = &after.jobs[&spec.class_path];
                prop_assert!(job.installed);
                let was = before.jobs.get(&spec.class_path);
                prop_assert_eq!(job.enabled, was.is_some_and(|was| was.installed && was.enabled));
            }
            for (path, job) in &after.jobs {
                let is_linked = linked.iter().any(|spec| &spec.class_path == path);
                if is_linked { continue; }
                match mode {
                    SyncMode::Full => {
                        prop_assert!(!job.installed);
                        prop_assert!(!after.hooks.values().any(|h| h.enabled && &h.job == path));
                        prop_assert!(!after.buttons.values().any(|b| b.enabled && &b.job == path));
                    }
                    _ => prop_assert_eq!(Some(job), before.jobs.get(path)),
                }
            }
            if mode == SyncMode::Additive {
                prop_assert!(plan.hooks.is_empty() && plan.buttons.is_empty());
            }
            let again = after.plan(&linked, mode);
            prop_assert!(again.is_empty(), "a second sync changes nothing: {:?}", again);
        }

        #[test]
        fn linking_every_job_again_and_restoring_gives_back_what_a_sync_disabled(
            catalog in arb_catalog(),
            linked in prop::collection::btree_set(0u8..6, 0..6),
        ) {
            let everything: Vec<JobSpec> = catalog.jobs.keys().map(|path| spec(path)).collect();
            let mut after = catalog.clone();
            after.apply(&after.plan(&everything, SyncMode::Full));
            let before = after.clone();
            let linked: Vec<JobSpec> = linked.into_iter().map(|n| spec(&format!("app::Job{n}"))).collect();
            after.apply(&after.plan(&linked, SyncMode::Full));
            after.apply(&after.plan(&everything, SyncMode::Full));
            let restore = plan_job_restore(after.jobs.values(), after.hooks.values(), after.buttons.values(), &[]);
            after.apply(&restore);
            for (path, job) in &before.jobs {
                prop_assert_eq!(after.jobs[path].enabled, job.enabled, "job {}", path);
                prop_assert!(after.jobs[path].suspended.is_none());
            }
            for (name, hook) in &before.hooks {
                prop_assert_eq!(after.hooks[name].enabled, hook.enabled, "hook {}", name);
            }
            for (name, button) in &before.buttons {
                prop_assert_eq!(after.buttons[name].enabled, button.enabled, "button {}", name);
            }
        }
    }
}
