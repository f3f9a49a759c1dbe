//! Crash test: a child process commits change contexts (and completes hook runs with writes) in a
//! loop and is killed with SIGKILL at random moments. After every reopen, every change whose commit
//! returned is present with exactly its queue entries and results, no change is half present, and
//! no run's writes exist without its successful result.
//!
//! This binary is its own child: run with `JOBHOOKS_CRASH_CHILD=<dir>` it is the workload,
//! otherwise it is the test. `JOBHOOKS_CRASH_KILLS` sets the number of kills (default 24).
//!
//! Its second test (`crash/migration.rs`) kills a child while it opens, and so migrates, a store of
//! the previous format; its third (`crash/crash_loop.rs`) kills a child holding a claim, again and
//! again, and checks that the claims count as attempts.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use jobhooks_model::ports::{
    Catalog, ChangeStore, CommitReceipt, Completion, JobQueue, ObjectReader, Outcome, QueueReader, ResultFilter,
};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeId, ChangeSet, ContentType, JobHook, JobKind, JobSpec, JobStatus,
    Object, ObjectRef, OffsetDateTime, RunId, json,
};
use jobhooks_store::Store;

#[path = "crash/crash_loop.rs"]
mod crash_loop;
#[path = "crash/migration.rs"]
mod migration;
mod support;

const HOOK_JOB: &str = "crash::Audit";
const CHILD_ENV: &str = "JOBHOOKS_CRASH_CHILD";

/// The name test runners list this binary's one test under.
const TEST_NAME: &str = "commits_and_runs_survive_repeated_kills";

fn main() -> ExitCode {
    let tests = [TEST_NAME, migration::TEST_NAME, crash_loop::TEST_NAME];
    // Answer a test runner's listing (`cargo nextest`, `--list`) with the tests this is.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        if !args.iter().any(|arg| arg == "--ignored") {
            for test in tests {
                println!("{test}: test");
            }
        }
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        return runtime.block_on(child(Path::new(&dir)));
    }
    if let Some(dir) = std::env::var_os(migration::CHILD_ENV) {
        return migration::child(Path::new(&dir));
    }
    if let Some(dir) = std::env::var_os(crash_loop::CHILD_ENV) {
        return runtime.block_on(crash_loop::child(Path::new(&dir)));
    }
    // The tests named in the arguments (a runner runs one at a time), or all of them.
    let named: Vec<&str> = tests.into_iter().filter(|test| args.iter().any(|arg| arg == test)).collect();
    let to_run = if named.is_empty() { tests.to_vec() } else { named };
    let mut code = ExitCode::SUCCESS;
    for test in to_run {
        let outcome = match test {
            TEST_NAME => runtime.block_on(parent()),
            migration::TEST_NAME => runtime.block_on(migration::run()),
            _ => runtime.block_on(crash_loop::run()),
        };
        match outcome {
            Ok(summary) => println!("{test}: {summary}"),
            Err(violation) => {
                eprintln!("{test} FAILED: {violation}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

fn object(content_type: &str, id: impl Into<String>, data: serde_json::Value) -> Object {
    let reference = ObjectRef::new(ContentType::new(content_type).unwrap(), id).unwrap();
    Object::new(reference, "obj", data).unwrap()
}

/// The workload: committers and a worker, each reporting on stdout what returned.
async fn child(dir: &Path) -> ExitCode {
    let store = Store::open(dir).expect("the parent does not hold the store");
    let mut tasks = tokio::task::JoinSet::new();
    for committer in 0..4u32 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::new();
            loop {
                let mut session = store.session(ChangeContext::new(ChangeContextKind::Web, Some("u".into()), ""));
                for _ in 0..rng.usize(1..4) {
                    let content_type = if rng.bool() { "dcim.device" } else { "dcim.rack" };
                    let id = rng.u32(0..50).to_string();
                    session.save(object(content_type, id, json!({"by": committer, "v": rng.u32(..)}))).await.unwrap();
                }
                let receipt = session.commit().await.unwrap();
                let line = serde_json::to_string(&receipt).unwrap();
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}").unwrap();
                out.flush().unwrap();
            }
        });
    }
    tasks.spawn(async move {
        loop {
            let Some((lease, result)) =
                store.lease_next(OffsetDateTime::now_utc(), Duration::from_secs(60)).await.unwrap()
            else {
                tokio::task::yield_now().await;
                continue;
            };
            let context = ChangeContext::new(ChangeContextKind::JobHook, result.user.clone(), HOOK_JOB);
            let mut writes = ChangeSet::default();
            writes.save(&object("audit.entry", lease.run.to_string(), json!({"run": lease.run})), None);
            let completion =
                Completion { lease, outcome: Outcome::Succeeded { writes: Some((context, writes)) }, logs: vec![] };
            store.complete(completion).await.unwrap();
        }
    });
    // The tasks run until the parent kills the process; one that ends has failed.
    let ended = tasks.join_next().await;
    eprintln!("crash child: a workload task ended: {ended:?}");
    ExitCode::FAILURE
}

async fn setup(dir: &Path) {
    let store = Store::open(dir).unwrap();
    let spec = JobSpec {
        class_path: HOOK_JOB.into(),
        name: "Audit".into(),
        description: String::new(),
        kind: JobKind::JobHookReceiver,
        hidden: true,
        former_class_paths: vec![],
    };
    store.sync_jobs(&[spec], jobhooks_model::SyncMode::Full).await.unwrap();
    store.set_job_enabled(HOOK_JOB, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    store.create_hook(JobHook::new("devices", devices, HOOK_JOB).on([Action::Create, Action::Update])).await.unwrap();
}

async fn parent() -> Result<String, String> {
    let kills: usize = std::env::var("JOBHOOKS_CRASH_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(24);
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path()).await;
    let exe = std::env::current_exe().unwrap();
    let mut rng = fastrand::Rng::new();
    let mut committed = Committed::default();
    for _ in 0..kills {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the child: {e}"))?;
        // Kill after a random number of returned commits: a random moment in the middle of writes,
        // with no timer involved.
        let kill_after = rng.usize(1..120);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref().take(kill_after) {
            committed.add(&line.map_err(|e| e.to_string())?)?;
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("the workload died on its own ({status}) before it was killed"));
        }
        child.kill().map_err(|e| e.to_string())?;
        child.wait().map_err(|e| e.to_string())?;
        // Whole lines the child printed before dying also reported returned commits; a line cut
        // short by the kill is not a report.
        for line in lines.map_while(Result::ok) {
            let _partial_line_is_no_report = committed.add(&line);
        }
        verify(dir.path(), &committed).await?;
    }
    Ok(format!(
        "{kills} kills, {} committed changes and {} runs verified",
        committed.changes.len(),
        committed.runs.len()
    ))
}

/// What the child reported as returned.
#[derive(Default)]
struct Committed {
    changes: BTreeSet<ChangeId>,
    runs: BTreeSet<RunId>,
}

impl Committed {
    fn add(&mut self, line: &str) -> Result<(), String> {
        let receipt: CommitReceipt = serde_json::from_str(line).map_err(|e| format!("bad report `{line}`: {e}"))?;
        self.changes.extend(receipt.changes);
        self.runs.extend(receipt.runs);
        Ok(())
    }
}

async fn verify(dir: &Path, committed: &Committed) -> Result<(), String> {
    let store = Store::open(dir).map_err(|e| format!("reopen failed: {e}"))?;
    let far = OffsetDateTime::now_utc() + Duration::from_secs(86_400);
    let all = store.changes_between(OffsetDateTime::UNIX_EPOCH, far, usize::MAX).await.map_err(|e| e.to_string())?;
    let present: BTreeSet<ChangeId> = all.iter().map(|c| c.id).collect();
    if let Some(lost) = committed.changes.difference(&present).next() {
        return Err(format!("change {lost} was committed but is lost"));
    }
    // Every change in the store, reported or not, is whole: all its indexes and exactly its runs.
    for change in &all {
        let runs = store.list_results(&ResultFilter::default().change(change.id)).await.map_err(|e| e.to_string())?;
        let expected_runs = usize::from(
            change.changed_object_type.as_str() == "dcim.device" && change.change_context != ChangeContextKind::JobHook,
        );
        if runs.len() != expected_runs {
            return Err(format!("change {} has {} runs, expected {expected_runs}", change.id, runs.len()));
        }
        let history = store.changes_for_object(&change.object_ref(), usize::MAX).await.map_err(|e| e.to_string())?;
        if !history.iter().any(|c| c.id == change.id) {
            return Err(format!("change {} is missing from its object index", change.id));
        }
        let request = store.changes_for_request(change.request_id).await.map_err(|e| e.to_string())?;
        if !request.iter().any(|c| c.id == change.id) {
            return Err(format!("change {} is missing from its request index", change.id));
        }
    }
    for run in &committed.runs {
        let Some(result) = store.get_result(*run).await.map_err(|e| e.to_string())? else {
            return Err(format!("run {run} was committed but is lost"));
        };
        let audit = object("audit.entry", run.to_string(), json!({})).reference().clone();
        let written = store.get_object(&audit).await.map_err(|e| e.to_string())?.is_some();
        if written != (result.status == JobStatus::Success) {
            let state = if written { "present" } else { "absent" };
            return Err(format!("run {run} is {} but its write is {state}", result.status));
        }
    }
    Ok(())
}
