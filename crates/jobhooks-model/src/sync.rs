//! Job sync: making the job records match the receivers a program links, as a pure planner that
//! every store applies.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{JobButton, JobHook, JobRecord, JobSpec};

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
    /// not installed, and its enabled hooks and buttons are disabled (Nautobot's rule). Only an
    /// application's own dispatcher should sync this way.
    Full,
}

/// What syncing the linked jobs into the job records changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Jobs seen for the first time (installed, disabled).
    pub added: Vec<String>,
    /// Jobs linked again after being absent (installed, disabled until enabled again).
    pub reinstalled: Vec<String>,
    /// Jobs no longer linked (marked not installed).
    pub uninstalled: Vec<String>,
    /// Hooks disabled because their job is no longer installed.
    pub disabled_hooks: Vec<String>,
    /// Buttons disabled because their job is no longer installed.
    pub disabled_buttons: Vec<String>,
}

/// The writes a job sync makes: a store applies them in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSyncPlan {
    /// Job records to write (new or changed), by class path.
    pub jobs: Vec<JobRecord>,
    /// Hooks to write, each now disabled.
    pub hooks: Vec<JobHook>,
    /// Buttons to write, each now disabled.
    pub buttons: Vec<JobButton>,
    /// What the writes change, for people.
    pub report: SyncReport,
}

impl JobSyncPlan {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.hooks.is_empty() && self.buttons.is_empty()
    }
}

/// Plans the sync of the `linked` jobs into the stored `jobs`, `hooks` and `buttons`, per `mode`:
///
/// - a job linked for the first time is installed and disabled;
/// - a linked job keeps its `enabled` flag and gets the linked name, description, kind and
///   hidden flag; one that was not installed is installed again, disabled until enabled;
/// - with [`SyncMode::Full`], an installed job that is not linked is marked not installed, and the
///   enabled hooks and buttons of every job that is not linked are disabled; with
///   [`SyncMode::Additive`], they are left alone.
///
/// ```
/// use jobhooks_model::{JobKind, JobSpec, SyncMode, plan_job_sync};
/// let linked = [JobSpec {
///     class_path: "app::Audit".into(), name: "Audit".into(), description: String::new(),
///     kind: JobKind::JobHookReceiver, hidden: true,
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
    let jobs: Vec<&JobRecord> = jobs.into_iter().collect();
    let stored = |class_path: &str| jobs.iter().copied().find(|job| job.class_path == class_path);
    let mut plan = JobSyncPlan::default();
    let mut linked_paths = BTreeSet::new();
    for spec in linked {
        if !linked_paths.insert(spec.class_path.as_str()) {
            continue;
        }
        let record = match stored(&spec.class_path) {
            None => {
                plan.report.added.push(spec.class_path.clone());
                JobRecord {
                    class_path: spec.class_path.clone(),
                    name: spec.name.clone(),
                    description: spec.description.clone(),
                    kind: spec.kind,
                    installed: true,
                    enabled: false,
                    hidden: spec.hidden,
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
                    class_path: existing.class_path.clone(),
                }
            }
        };
        if stored(&spec.class_path) != Some(&record) {
            plan.jobs.push(record);
        }
    }
    if mode == SyncMode::Full {
        for job in jobs.iter().filter(|job| job.installed && !linked_paths.contains(job.class_path.as_str())) {
            plan.report.uninstalled.push(job.class_path.clone());
            plan.jobs.push(JobRecord { installed: false, ..(*job).clone() });
        }
        // Every job this program does not link is not installed: none of its hooks and buttons
        // stays enabled, whenever it was uninstalled.
        let gone = |job: &str| !linked_paths.contains(job);
        for hook in hooks.into_iter().filter(|hook| hook.enabled && gone(&hook.job)) {
            plan.report.disabled_hooks.push(hook.name.clone());
            plan.hooks.push(JobHook { enabled: false, ..hook.clone() });
        }
        for button in buttons.into_iter().filter(|button| button.enabled && gone(&button.job)) {
            plan.report.disabled_buttons.push(button.name.clone());
            plan.buttons.push(JobButton { enabled: false, ..button.clone() });
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

        fn apply(&mut self, plan: &JobSyncPlan) {
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
    }
}
