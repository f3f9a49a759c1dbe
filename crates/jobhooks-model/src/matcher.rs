//! Hooks prepared once for matching many changes.
//!
//! [`match_hooks`](crate::match_hooks) decides which of some hooks a change runs. A store that
//! keeps its hooks in memory matches every change against the same hooks, so it keeps them as a
//! [`HookMatcher`], which works out beforehand what matching needs:
//!
//! - the hooks are grouped by content type, so a change meets only the hooks on its type;
//! - each hook's `enabled` flag and actions are one small record, read without the hook;
//! - the top-level fields the hooks' conditions and `changed_fields` read are numbered across all
//!   of the hooks: a change finds each field by name once, and every later read of it is by its
//!   number.
//!
//! Matching through a [`HookMatcher`] and through [`match_hooks`](crate::match_hooks) give the same
//! answer (a proptest checks it); preparing costs more than one change's matching.

use std::borrow::Borrow;
use std::collections::HashMap;

use crate::conditions::{FieldNumbering, FieldNumbers, NumberedFields};
use crate::{
    Action, ChangeContextKind, Condition, ConditionInput, ContentType, HookMatches, JobHook, JobRecord, ObjectChange,
};

/// Hooks prepared for matching changes; see the module's doc.
///
/// ```
/// use jobhooks_model::*;
///
/// let devices = vec![ContentType::new("dcim.device").unwrap()];
/// let active = Condition::from_json(&json!({"attr": "postchange.status", "value": "active"})).unwrap();
/// let hook = JobHook::new("audit", devices, "app::Audit").on([Action::Update]).when(active);
/// let matcher = HookMatcher::new([hook]);
///
/// let object = |status: &str| {
///     let device = ObjectRef::new(ContentType::new("dcim.device").unwrap(), "1").unwrap();
///     Object::new(device, "edge-1", json!({"status": status})).unwrap()
/// };
/// let change = |status: &str| {
///     let pending = PendingChange::new(Action::Update, &object(status)).with_pre_data(json!({"status": "planned"}).as_object().unwrap().clone());
///     let context = ChangeContext::new(ChangeContextKind::Web, Some("admin".into()), "");
///     ObjectChange::from_pending(ChangeId(1), OffsetDateTime::UNIX_EPOCH, &context, pending, None)
/// };
/// let audit = JobRecord { enabled: true, ..JobRecord::new("app::Audit", "Audit", JobKind::JobHookReceiver) };
/// let runs = |status: &str| matcher.matches(ChangeContextKind::Web, &change(status), |_| Some(&audit)).run.len();
/// assert_eq!(runs("active"), 1);
/// assert_eq!(runs("offline"), 0);
/// ```
#[derive(Debug, Clone)]
pub struct HookMatcher<H = JobHook> {
    hooks: Vec<H>,
    /// What matching reads of each hook, in the order of `hooks`.
    prepared: Vec<Prepared>,
    /// The indexes of the hooks listing each content type, in order.
    by_type: HashMap<ContentType, Vec<usize>>,
    /// The numbers of the fields the conditions and changed fields read.
    numbers: FieldNumbers,
}

/// What matching a change reads of one hook.
#[derive(Debug, Clone)]
struct Prepared {
    /// Fires on create, update and delete (as [`Action::ALL`]); all false when disabled.
    fires: [bool; 3],
    /// Its `changed_fields`, numbered; `None` when it lists none.
    changed_fields: Option<NumberedFields>,
    /// Its condition, reading numbered fields.
    condition: Option<Condition>,
}

impl<H: Borrow<JobHook>> HookMatcher<H> {
    /// Prepares `hooks` (in the order that matches keep).
    pub fn new(hooks: impl IntoIterator<Item = H>) -> Self {
        let hooks: Vec<H> = hooks.into_iter().collect();
        let mut numbering = FieldNumbering::default();
        let mut by_type: HashMap<ContentType, Vec<usize>> = HashMap::new();
        let prepared = hooks
            .iter()
            .enumerate()
            .map(|(index, hook)| {
                let hook = hook.borrow();
                for content_type in &hook.content_types {
                    let listing = by_type.entry(content_type.clone()).or_default();
                    if listing.last() != Some(&index) {
                        listing.push(index);
                    }
                }
                Prepared {
                    fires: Action::ALL.map(|action| hook.enabled && hook.fires_on(action)),
                    changed_fields: (!hook.changed_fields.is_empty()).then(|| numbering.fields(&hook.changed_fields)),
                    condition: hook.conditions.as_ref().map(|condition| numbering.condition(condition)),
                }
            })
            .collect();
        Self { hooks, prepared, by_type, numbers: numbering.into_numbers() }
    }

    /// The hooks, as given.
    pub fn hooks(&self) -> &[H] {
        &self.hooks
    }

    /// Which hooks `change`, made in a `context` context, runs: as
    /// [`match_hooks`](crate::match_hooks) decides.
    pub fn matches<'a>(
        &'a self,
        context: ChangeContextKind,
        change: &ObjectChange,
        job: impl Fn(&str) -> Option<&'a JobRecord>,
    ) -> HookMatches<'a> {
        let mut matches = HookMatches::default();
        self.each_match(context, change, |index| matches.sort(self.hooks[index].borrow(), &job));
        matches
    }

    /// Calls `found` with the index of each hook `change` matches, in order.
    fn each_match(&self, context: ChangeContextKind, change: &ObjectChange, mut found: impl FnMut(usize)) {
        if context == ChangeContextKind::JobHook {
            return;
        }
        let Some(listing) = self.by_type.get(&change.changed_object_type) else { return };
        let action = Action::ALL.iter().position(|action| *action == change.action).expect("every action is in ALL");
        let input = ConditionInput::numbered(change.prechange_data(), change.postchange_data(), &self.numbers);
        for &index in listing {
            let prepared = &self.prepared[index];
            let fields_changed = change.action != Action::Update
                || prepared.changed_fields.as_ref().is_none_or(|fields| {
                    input.changed_any_numbered(fields, &self.hooks[index].borrow().changed_fields)
                });
            let wanted = prepared.fires[action]
                && fields_changed
                && prepared.condition.as_ref().is_none_or(|condition| condition.holds(&input));
            if wanted {
                found(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChangeContext, ChangeId, JobKind, Object, ObjectRef, OffsetDateTime, PendingChange};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const TYPES: [&str; 2] = ["dcim.device", "dcim.site"];

    fn change(
        content_type: &str,
        action: Action,
        before: Value,
        after: Value,
        context: ChangeContextKind,
    ) -> ObjectChange {
        let object = ObjectRef::new(ContentType::new(content_type).unwrap(), "1").unwrap();
        let object = Object::new(object, "one", after).unwrap();
        let pending = PendingChange::new(action, &object);
        let pending = if action == Action::Create {
            pending
        } else {
            pending.with_pre_data(before.as_object().expect("an object").clone())
        };
        let context = ChangeContext::new(context, Some("admin".into()), "");
        ObjectChange::from_pending(ChangeId(1), OffsetDateTime::UNIX_EPOCH, &context, pending, None)
    }

    fn field() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "c", "last_updated"]).prop_map(str::to_owned)
    }

    fn data() -> impl Strategy<Value = Value> {
        prop::collection::btree_map(field(), prop::sample::select(vec![json!(1), json!("x"), json!([1, 2])]), 0..4)
            .prop_map(|fields| json!(fields))
    }

    fn condition() -> impl Strategy<Value = Option<Condition>> {
        let leaf = (
            prop::sample::select(vec!["prechange", "postchange", "differences.added", "differences.removed"]),
            field(),
            prop::sample::select(vec![json!(1), json!("x"), json!(null)]),
            any::<bool>(),
        )
            .prop_map(|(root, field, value, negate)| json!({"attr": format!("{root}.{field}"), "value": value, "negate": negate}));
        let tree = leaf.prop_recursive(2, 6, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(|all| json!({"and": all})),
                prop::collection::vec(inner, 0..3).prop_map(|any| json!({"or": any})),
            ]
        });
        prop::option::of(tree.prop_map(|json| Condition::from_json(&json).unwrap()))
    }

    fn hook() -> impl Strategy<Value = JobHook> {
        (
            prop::sample::subsequence(TYPES.to_vec(), 1..=2),
            prop::sample::subsequence(Action::ALL.to_vec(), 0..=3),
            any::<bool>(),
            prop::collection::vec(field(), 0..3),
            condition(),
        )
            .prop_map(|(types, actions, enabled, changed_fields, conditions)| {
                let types = types.into_iter().map(|name| ContentType::new(name).unwrap()).collect();
                let mut hook = JobHook::new("hook", types, "app::Audit").on(actions);
                hook.enabled = enabled;
                hook.changed_fields = changed_fields;
                hook.conditions = conditions;
                hook
            })
    }

    proptest! {
        /// A matcher finds what `match_hooks`, reading the hooks one by one, finds.
        #[test]
        fn a_matcher_matches_as_match_hooks(
            hooks in prop::collection::vec(hook(), 0..8),
            content_type in prop::sample::select(TYPES.to_vec()),
            action in prop::sample::select(Action::ALL.to_vec()),
            context in prop::sample::select(ChangeContextKind::ALL.to_vec()),
            before in data(),
            after in data(),
        ) {
            let change = change(content_type, action, before, after, context);
            let matcher = HookMatcher::new(hooks.iter());
            let job = JobRecord { enabled: true, ..JobRecord::new("app::Audit", "Audit", JobKind::JobHookReceiver) };
            let jobs = |name: &str| (name == "app::Audit").then_some(&job);
            let index = |found: HookMatches<'_>| -> Vec<usize> {
                found.run.iter().map(|hook| hooks.iter().position(|each| std::ptr::eq(each, *hook)).unwrap()).collect()
            };
            prop_assert_eq!(
                index(matcher.matches(context, &change, jobs)),
                index(crate::match_hooks(context, &change, &hooks, jobs))
            );
        }
    }

    #[test]
    fn a_hook_whose_job_cannot_run_is_skipped() {
        let devices = vec![ContentType::new("dcim.device").unwrap()];
        let hooks = [
            JobHook::new("runs", devices.clone(), "app::Runs").on([Action::Create]),
            JobHook::new("skipped", devices, "app::Off").on([Action::Create]),
        ];
        let runs = JobRecord { enabled: true, ..JobRecord::new("app::Runs", "Runs", JobKind::JobHookReceiver) };
        let matcher = HookMatcher::new(hooks);
        let created = change("dcim.device", Action::Create, json!({}), json!({"a": 1}), ChangeContextKind::Web);
        let matches = matcher.matches(ChangeContextKind::Web, &created, |job| (job == "app::Runs").then_some(&runs));
        assert_eq!(matches.run, [&matcher.hooks()[0]]);
        assert_eq!(matches.skipped, [&matcher.hooks()[1]]);
    }
}
