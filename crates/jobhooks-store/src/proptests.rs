//! Property tests of the store: the queue against its state machine, and change contexts against
//! an in-memory model of the same rules.

use std::collections::BTreeMap;
use std::time::Duration;

use jobhooks_model::ports::Catalog;
use jobhooks_model::ports::{
    ChangeStore, Completion, JobQueue, Lease, ObjectReader, ObjectWrites, Outcome, QueueMaintenance, QueueReader,
};
use jobhooks_model::{Action, JobHook, JobInputs, JobStatus, Object, ObjectRef, OffsetDateTime, RunId, Value, json};
use proptest::prelude::*;

use crate::records::QueueEntry;
use crate::tests::{BUTTON_JOB, HOOK_JOB, ct, device, ready_store, web};
use crate::{Store, keys};

const LEASE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
enum QueueOp {
    /// A button press on the object, or an update of it that a hook matches.
    Enqueue {
        object: u8,
        button: bool,
    },
    Lease,
    Complete {
        pick: prop::sample::Index,
        status: u8,
    },
    Expire,
    Replay {
        pick: prop::sample::Index,
    },
}

fn queue_op() -> impl Strategy<Value = QueueOp> {
    prop_oneof![
        3 => (0u8..3, any::<bool>()).prop_map(|(object, button)| QueueOp::Enqueue { object, button }),
        3 => Just(QueueOp::Lease),
        3 => (any::<prop::sample::Index>(), 0u8..4).prop_map(|(pick, status)| QueueOp::Complete { pick, status }),
        1 => Just(QueueOp::Expire),
        1 => any::<prop::sample::Index>().prop_map(|pick| QueueOp::Replay { pick }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Pending,
    Leased,
    Dead,
    Done,
}

fn keys_ending_with(store: &Store, prefix: &[u8], run: RunId) -> usize {
    store
        .inner
        .tree
        .scan_prefix(prefix)
        .keys()
        .filter(|k| keys::trailing_id(k.as_ref().unwrap()) == Some(run.0))
        .count()
}

/// How many attempt journals in the tree list `run`.
fn journals_listing(store: &Store, run: RunId) -> usize {
    store
        .inner
        .tree
        .scan_prefix(keys::ATTEMPTS)
        .values()
        .filter(|journal| {
            crate::records::decode_journal(&journal.as_ref().unwrap().clone())
                .unwrap()
                .iter()
                .any(|entry| entry.run == run)
        })
        .count()
}

/// Checks that `run` is in exactly the state `expected`, in its queue records and its result.
async fn check_run(store: &Store, run: RunId, expected: Expected) -> Result<(), TestCaseError> {
    let ready: Option<QueueEntry> =
        store.inner.tree.get(keys::ready(run)).unwrap().map(|b| QueueEntry::decode(&b).unwrap());
    let waiting = usize::from(store.inner.tree.contains_key(keys::waiting(run)).unwrap());
    let delayed = keys_ending_with(store, keys::DELAYED, run);
    let dead = store.inner.tree.contains_key(keys::dead(run)).unwrap();
    let status = store.get_result(run).await.unwrap().unwrap().status;
    match expected {
        Expected::Pending => {
            prop_assert!(store.claims().active(run).is_none(), "a pending run holds no claim");
            prop_assert_eq!(journals_listing(store, run), 0, "no journal lists a pending run");
            prop_assert_eq!((usize::from(ready.is_some()) + waiting + delayed, dead), (1, false));
            prop_assert!(matches!(status, JobStatus::Pending | JobStatus::Retrying));
        }
        Expected::Leased => {
            prop_assert_eq!((waiting, delayed, dead), (0, 0, false));
            prop_assert!(store.claims().active(run).is_some(), "a leased run is claimed");
            prop_assert!(ready.is_some_and(|e| e.lease.is_none()), "a claim is not written into its entry");
            prop_assert_eq!(journals_listing(store, run), 1, "one attempt journal lists a leased run");
            prop_assert_eq!(status, JobStatus::Started);
        }
        Expected::Dead => {
            prop_assert_eq!((waiting, delayed, dead, ready), (0, 0, true, None));
            prop_assert_eq!(status, JobStatus::DeadLettered);
        }
        Expected::Done => {
            prop_assert_eq!((waiting, delayed, dead, ready), (0, 0, false, None));
            prop_assert!(matches!(status, JobStatus::Success | JobStatus::Failure));
        }
    }
    Ok(())
}

/// Every object with unfinished runs has exactly one of them ready or delayed: its head.
fn check_one_head_per_object(
    store: &Store,
    objects: &BTreeMap<RunId, u8>,
    model: &BTreeMap<RunId, Expected>,
) -> Result<(), TestCaseError> {
    for object in objects.values().collect::<std::collections::BTreeSet<_>>() {
        let runs: Vec<RunId> = objects
            .iter()
            .filter(|(r, o)| *o == object && matches!(model[r], Expected::Pending | Expected::Leased))
            .map(|(r, _)| *r)
            .collect();
        let heads = runs
            .iter()
            .filter(|&&r| {
                store.inner.tree.contains_key(keys::ready(r)).unwrap() || keys_ending_with(store, keys::DELAYED, r) == 1
            })
            .count();
        prop_assert_eq!(heads, usize::from(!runs.is_empty()), "object {} has {} heads", object, heads);
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any sequence of enqueue, lease, complete, expire and replay keeps every run in exactly one
    /// state, and loses none.
    #[test]
    fn queue_keeps_every_run_in_exactly_one_state(ops in prop::collection::vec(queue_op(), 1..40)) {
        runtime().block_on(async {
            let (_dir, store) = ready_store().await;
            // The objects exist before the hook does: their creation queues nothing.
            let mut session = store.session(web("alice"));
            for object in 0..3u8 {
                session.save(device(&object.to_string(), "initial")).await.unwrap();
            }
            session.commit().await.unwrap();
            store.create_hook(JobHook::new("updates", vec![ct("dcim.device")], HOOK_JOB).on([Action::Update])).await.unwrap();
            let mut clock = OffsetDateTime::now_utc();
            let mut model: BTreeMap<RunId, Expected> = BTreeMap::new();
            let mut leases: BTreeMap<RunId, Lease> = BTreeMap::new();
            let mut objects: BTreeMap<RunId, u8> = BTreeMap::new();
            // Each run's place in its object's line: the order in which runs joined (or rejoined).
            let mut joined: BTreeMap<RunId, usize> = BTreeMap::new();
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    QueueOp::Enqueue { object, button } => {
                        let run = if button {
                            let inputs = JobInputs::Button { object_pk: object.to_string(), object_model_name: "dcim.device".into() };
                            store.enqueue(BUTTON_JOB, None, inputs).await.unwrap()
                        } else {
                            let mut session = store.session(web("alice"));
                            session.save(device(&object.to_string(), &step.to_string())).await.unwrap();
                            let receipt = session.commit().await.unwrap();
                            prop_assert_eq!(receipt.runs.len(), 1);
                            receipt.runs[0]
                        };
                        objects.insert(run, object);
                        joined.insert(run, step);
                        prop_assert!(model.insert(run, Expected::Pending).is_none());
                    }
                    QueueOp::Lease => {
                        clock = clock.max(OffsetDateTime::now_utc());
                        let claimed = store.lease_next(clock, LEASE).await.unwrap();
                        // Every pending run is due by now. Runs of one object run one at a time: one is
                        // claimable when no run of its object is leased and it joined the line first.
                        let claimable: Vec<RunId> = model
                            .iter()
                            .filter(|(_, s)| **s == Expected::Pending)
                            .map(|(r, _)| *r)
                            .filter(|r| {
                                !model.iter().any(|(other, s)| {
                                    objects[other] == objects[r]
                                        && (*s == Expected::Leased || (joined[other] < joined[r] && *s == Expected::Pending))
                                })
                            })
                            .collect();
                        prop_assert_eq!(claimed.is_some(), !claimable.is_empty());
                        if let Some((lease, _)) = &claimed {
                            prop_assert!(claimable.contains(&lease.run), "{:?} is not claimable", lease.run);
                        }
                        if let Some((lease, _)) = claimed {
                            model.insert(lease.run, Expected::Leased);
                            leases.insert(lease.run, lease);
                        }
                    }
                    QueueOp::Complete { pick, status } => {
                        let held: Vec<RunId> = leases.keys().copied().collect();
                        if held.is_empty() { continue; }
                        let run = held[pick.index(held.len())];
                        let lease = leases.remove(&run).unwrap();
                        let outcome = [
                            Outcome::Succeeded { writes: None },
                            Outcome::Failed,
                            Outcome::RetryAt(clock),
                            Outcome::DeadLettered,
                        ][status as usize].clone();
                        let status = outcome.status();
                        let completion = Completion { lease, outcome, logs: vec![] };
                        let outcome = store.complete(completion).await;
                        if model[&run] == Expected::Leased {
                            outcome.unwrap();
                            model.insert(run, match status {
                                JobStatus::Retrying => Expected::Pending,
                                JobStatus::DeadLettered => Expected::Dead,
                                _ => Expected::Done,
                            });
                        } else {
                            prop_assert!(outcome.is_err(), "a lapsed lease cannot complete");
                        }
                    }
                    QueueOp::Expire => {
                        clock += LEASE + Duration::from_secs(1);
                        let released = store.release_expired(clock).await.unwrap();
                        let expected = model.values().filter(|s| **s == Expected::Leased).count();
                        prop_assert_eq!(released, expected);
                        for state in model.values_mut().filter(|s| **s == Expected::Leased) {
                            *state = Expected::Pending;
                        }
                    }
                    QueueOp::Replay { pick } => {
                        let runs: Vec<RunId> = model.keys().copied().collect();
                        if runs.is_empty() { continue; }
                        let run = runs[pick.index(runs.len())];
                        let outcome = store.replay(run).await;
                        if model[&run] == Expected::Dead {
                            outcome.unwrap();
                            model.insert(run, Expected::Pending);
                            joined.insert(run, step);
                        } else {
                            prop_assert!(outcome.is_err());
                        }
                    }
                }
                for (run, expected) in &model {
                    check_run(&store, *run, *expected).await?;
                }
                check_one_head_per_object(&store, &objects, &model)?;
                let depth = store.depth().await.unwrap();
                let count = |state| model.values().filter(|s| **s == state).count() as u64;
                prop_assert_eq!((depth.pending, depth.leased, depth.dead), (count(Expected::Pending), count(Expected::Leased), count(Expected::Dead)));
            }
            Ok(())
        })?;
    }
}

#[derive(Debug, Clone)]
enum ObjectOp {
    Save { object: u8, data: u8 },
    Delete { object: u8 },
}

fn object_op() -> impl Strategy<Value = ObjectOp> {
    prop_oneof![
        3 => (0u8..4, any::<u8>()).prop_map(|(object, data)| ObjectOp::Save { object, data }),
        1 => (0u8..4).prop_map(|object| ObjectOp::Delete { object }),
    ]
}

/// Objects 0 and 1 are devices (hooked on create and delete), 2 and 3 racks (not hooked).
fn reference(object: u8) -> ObjectRef {
    let content_type = if object < 2 { "dcim.device" } else { "dcim.rack" };
    ObjectRef::new(ct(content_type), object.to_string()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Change contexts committed to the store agree with a model that applies the same writes
    /// directly: the same final objects; each record's action fits the object's existence before
    /// it; each prechange is the previous record's data; one run per hooked change.
    #[test]
    fn change_contexts_agree_with_an_in_memory_model(
        contexts in prop::collection::vec(prop::collection::vec(object_op(), 1..8), 1..6)
    ) {
        runtime().block_on(async {
            let (_dir, store) = ready_store().await;
            store.create_hook(JobHook::new("devices", vec![ct("dcim.device")], HOOK_JOB).on([Action::Create, Action::Delete])).await.unwrap();
            let mut objects: BTreeMap<ObjectRef, Value> = BTreeMap::new();
            let mut last_record: BTreeMap<ObjectRef, Value> = BTreeMap::new();
            for ops in contexts {
                let mut session = store.session(web("alice"));
                let mut expected = objects.clone();
                for op in ops {
                    match op {
                        ObjectOp::Save { object, data } => {
                            let r = reference(object);
                            session.save(Object::new(r.clone(), object.to_string(), json!({"v": data})).unwrap()).await.unwrap();
                            expected.insert(r, json!({"v": data}));
                        }
                        ObjectOp::Delete { object } => {
                            let r = reference(object);
                            let deleted = session.delete(&r).await;
                            prop_assert_eq!(deleted.is_ok(), expected.remove(&r).is_some());
                        }
                    }
                }
                let receipt = session.commit().await.unwrap();
                let mut hooked = 0;
                for id in &receipt.changes {
                    let change = store.get_change(*id).await.unwrap().unwrap();
                    let r = change.object_ref();
                    let existed = objects.contains_key(&r);
                    prop_assert_eq!(change.action == Action::Create, !existed, "{:?}", change.action);
                    prop_assert_eq!(change.prechange.as_ref(), last_record.get(&r));
                    if change.action == Action::Delete {
                        objects.remove(&r);
                    } else {
                        objects.insert(r.clone(), change.object_data.clone());
                    }
                    last_record.insert(r.clone(), change.object_data.clone());
                    hooked += usize::from(r.content_type().as_str() == "dcim.device" && change.action != Action::Update);
                }
                prop_assert_eq!(&objects, &expected);
                prop_assert_eq!(receipt.runs.len(), hooked);
                for object in 0..4 {
                    let r = reference(object);
                    prop_assert_eq!(store.get_object(&r).await.unwrap().map(|o| o.data_value()), expected.get(&r).cloned());
                }
            }
            Ok(())
        })?;
    }
}

/// A step of the change log's life: a commit of some objects, a prune of every change it may let
/// go, or a count.
#[derive(Debug, Clone)]
enum LogOp {
    Commit { objects: u8, serial: u8 },
    Prune,
    Count,
}

fn log_op() -> impl Strategy<Value = LogOp> {
    prop_oneof![
        4 => (1u8..4, any::<u8>()).prop_map(|(objects, serial)| LogOp::Commit { objects, serial }),
        1 => Just(LogOp::Prune),
        3 => Just(LogOp::Count),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The change log's count, kept between counts, always equals the changes the log holds,
    /// whatever commits and prunes come between.
    #[test]
    fn the_change_count_follows_commits_and_prunes(ops in prop::collection::vec(log_op(), 1..30)) {
        runtime().block_on(async {
            let (_dir, store) = ready_store().await;
            let retention = jobhooks_model::ports::Retention { results_for: None, changes_for: Some(Duration::ZERO) };
            for op in ops {
                match op {
                    LogOp::Commit { objects, serial } => {
                        let mut session = store.session(web("alice"));
                        for object in 0..objects {
                            session.save(device(&object.to_string(), &serial.to_string())).await.unwrap();
                        }
                        session.commit().await.unwrap();
                    }
                    LogOp::Prune => {
                        store.prune(&retention, OffsetDateTime::now_utc() + Duration::from_secs(60)).await.unwrap();
                    }
                    LogOp::Count => {
                        let held = store.latest_changes(usize::MAX).await.unwrap().len() as u64;
                        prop_assert_eq!(store.count_changes().await.unwrap(), held);
                    }
                }
            }
            let held = store.latest_changes(usize::MAX).await.unwrap().len() as u64;
            prop_assert_eq!(store.count_changes().await.unwrap(), held);
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Arbitrary bytes in place of any record give a clear error or a value on every read path,
    /// never a panic.
    #[test]
    fn arbitrary_bytes_in_a_record_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..160), which in 0usize..4) {
        runtime().block_on(async {
            let (_dir, store) = ready_store().await;
            store.create_hook(JobHook::new("devices", vec![ct("dcim.device")], HOOK_JOB).on([Action::Create])).await.unwrap();
            let device = Object::new(reference(0), "d", json!({"v": 1})).unwrap();
            let mut session = store.session(web("alice"));
            session.save(device.clone()).await.unwrap();
            let receipt = session.commit().await.unwrap();
            let (change, run) = (receipt.changes[0], receipt.runs[0]);
            let key = [keys::change(change), keys::result(run), keys::ready(run), keys::change_by_object(device.reference(), change)][which].clone();
            store.overwrite_for_tests(key, &bytes);

            let read = store.get_change(change).await;
            if which == 0 {
                let decodable = serde_json::from_slice::<jobhooks_model::ObjectChange>(&bytes).is_ok();
                assert_eq!(read.is_ok(), decodable, "a record that does not decode is an error: {read:?}");
                assert!(read.is_ok() || matches!(read, Err(jobhooks_model::StorageFailure::Corrupt { kind: "change", .. })));
            }
            let _ = store.get_object(device.reference()).await;
            let _ = store.get_result(run).await;
            let _ = store.list_results(&Default::default()).await;
            let _ = store.changes_for_object(device.reference(), 10).await;
            let _ = store.lease_next(OffsetDateTime::now_utc(), LEASE).await;
            let _ = store.release_expired(OffsetDateTime::now_utc() + LEASE * 2).await;
            let mut session = store.session(web("alice"));
            if session.save(Object::new(reference(0), "d", json!({"v": 2})).unwrap()).await.is_ok() {
                let _ = session.commit().await;
            }
        });
    }
}

/// A step for the change cache: a commit of some changes (applied to the objects or only
/// recorded), or a prune of every change retention lets go.
#[derive(Debug, Clone)]
enum CacheOp {
    Commit { changes: Vec<(u8, Action, u8)>, apply: bool },
    Prune,
}

fn cache_op() -> impl Strategy<Value = CacheOp> {
    let action = prop_oneof![Just(Action::Create), Just(Action::Update), Just(Action::Delete)];
    prop_oneof![
        6 => (prop::collection::vec((0u8..4, action, any::<u8>()), 1..4), prop::bool::weighted(0.8))
            .prop_map(|(changes, apply)| CacheOp::Commit { changes, apply }),
        1 => Just(CacheOp::Prune),
    ]
}

/// Two stores on one manual clock, with the hook and jobs of `ready_store`: one caching recent
/// changes in `capacity` bytes, one caching none.
async fn cached_and_plain(capacity: u64) -> (tempfile::TempDir, Store, Store, jobhooks_model::ManualClock) {
    let dir = tempfile::tempdir().unwrap();
    let clock = jobhooks_model::ManualClock::starting_now();
    let mut stores = Vec::new();
    for (name, capacity) in [("cached", capacity), ("plain", 0)] {
        let config =
            crate::StoreConfig::default().clock(std::sync::Arc::new(clock.clone())).change_cache_capacity(capacity);
        let store = Store::open_with(dir.path().join(name), config).unwrap();
        let jobs = [
            crate::tests::spec(HOOK_JOB, jobhooks_model::JobKind::JobHookReceiver),
            crate::tests::spec(BUTTON_JOB, jobhooks_model::JobKind::JobButtonReceiver),
        ];
        store.sync_jobs(&jobs, jobhooks_model::SyncMode::Full).await.unwrap();
        store.set_job_enabled(HOOK_JOB, true).await.unwrap();
        store
            .create_hook(JobHook::new("devices", vec![ct("dcim.device")], HOOK_JOB).on([Action::Update]))
            .await
            .unwrap();
        stores.push(store);
    }
    let plain = stores.pop().unwrap();
    (dir, stores.pop().unwrap(), plain, clock)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A store that serves recent changes from its cache reads exactly as one that decodes every
    /// record, whatever commits (applied or only recorded), evictions and prunes come between:
    /// every change with its prechange, every object, and a run's change with its object.
    #[test]
    fn the_change_cache_reads_as_the_records_do(
        ops in prop::collection::vec(cache_op(), 1..16),
        capacity in prop_oneof![Just(700u64), Just(2_000), Just(1 << 20)],
    ) {
        runtime().block_on(async {
            let (_dir, cached, plain, clock) = cached_and_plain(capacity).await;
            let retention = jobhooks_model::ports::Retention { results_for: None, changes_for: Some(Duration::from_secs(5)) };
            let mut last_change = 0;
            for op in ops {
                clock.advance(Duration::from_secs(2));
                match op {
                    CacheOp::Commit { changes, apply } => {
                        let context = web("alice");
                        let writes = if apply { ObjectWrites::Apply } else { ObjectWrites::RecordOnly };
                        let mut receipts = Vec::new();
                        for store in [&cached, &plain] {
                            let mut set = jobhooks_model::ChangeSet::default();
                            for &(object, action, data) in &changes {
                                let object = Object::new(reference(object), object.to_string(), json!({"v": data})).unwrap();
                                set.record(jobhooks_model::PendingChange::new(action, &object));
                            }
                            receipts.push(store.commit(&context, set, writes).await.map(|receipt| receipt.changes));
                        }
                        prop_assert_eq!(&receipts[0], &receipts[1]);
                        if let Ok(changes) = &receipts[0] {
                            last_change = changes.last().map_or(last_change, |id| id.0);
                        }
                    }
                    CacheOp::Prune => {
                        for store in [&cached, &plain] {
                            store.prune(&retention, jobhooks_model::Clock::now(&clock)).await.unwrap();
                        }
                    }
                }
                for id in 1..=last_change {
                    let id = jobhooks_model::ChangeId(id);
                    prop_assert_eq!(cached.get_change(id).await.unwrap(), plain.get_change(id).await.unwrap());
                    prop_assert_eq!(
                        cached.get_change_and_object(id).await.unwrap(),
                        plain.get_change_and_object(id).await.unwrap()
                    );
                }
                for object in 0..4 {
                    let r = reference(object);
                    prop_assert_eq!(cached.get_object(&r).await.unwrap(), plain.get_object(&r).await.unwrap());
                }
            }
            Ok(())
        })?;
    }
}
