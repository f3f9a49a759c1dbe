//! Restart after a crash in the middle of a run: a child process runs the dispatcher, its receiver
//! has made its write and is killed with SIGKILL before the run completes. After a restart the run
//! happens again from scratch: its effect lands exactly once, neither lost nor doubled.
//!
//! This binary is its own child: with `JOBHOOKS_MID_RUN_CHILD=<dir>` it runs the dispatcher whose
//! receiver stops mid-run; otherwise it is the test.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::{Catalog, ChangeStore, ObjectReader, QueueReader, ResultFilter};
use jobhooks_model::{
    Action, ChangeContextKind, ContentType, JobContext, JobError, JobHook, JobHookReceiver, JobStatus, Object,
    ObjectChange, async_trait, json,
};
use jobhooks_register::{Registry, register_job_hook_receiver};
use jobhooks_store::Store;
use jobhooks_tests::{Harness, object};

const CHILD_ENV: &str = "JOBHOOKS_MID_RUN_CHILD";
const TRIALS: usize = 3;

fn counter() -> Object {
    object("app.counter", "c", "counter", json!({"n": 0}))
}

/// Adds one to the counter for every device created. In the child, it stops after its write and
/// before the run completes, and waits to be killed.
#[derive(Default)]
struct CountDevices;

#[async_trait]
impl JobHookReceiver for CountDevices {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        let mut count = ctx.load(counter().reference()).await?.ok_or("the counter is missing")?;
        let n = count.data()["n"].as_u64().unwrap_or(0);
        count.set_field("n", json!(n + 1));
        ctx.save(count).await?;
        if std::env::var_os(CHILD_ENV).is_some() {
            println!("in-run");
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

register_job_hook_receiver!(CountDevices);

/// The name test runners list this binary's one test under.
const TEST_NAME: &str = "a_run_killed_mid_run_lands_its_effect_once";

fn main() -> ExitCode {
    // Answer a test runner's listing (`cargo nextest`, `--list`) with the one test this is.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        if !args.iter().any(|arg| arg == "--ignored") {
            println!("{TEST_NAME}: test");
        }
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    match std::env::var_os(CHILD_ENV) {
        Some(dir) => runtime.block_on(child(Path::new(&dir))),
        None => match runtime.block_on(parent()) {
            Ok(summary) => {
                println!("crash mid-run: {summary}");
                ExitCode::SUCCESS
            }
            Err(violation) => {
                eprintln!("crash mid-run FAILED: {violation}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn child(dir: &Path) -> ExitCode {
    let store = Arc::new(Store::open(dir).expect("the parent does not hold the store"));
    let config = DispatcherConfig::default().lease(Duration::from_millis(500));
    let _dispatcher = Dispatcher::start(store, Registry::from_linked().unwrap(), config).await.unwrap();
    std::future::pending::<ExitCode>().await
}

async fn parent() -> Result<String, String> {
    let job = format!("{}::CountDevices", module_path!());
    let h = Harness::start(DispatcherConfig::default()).await;
    h.save("alice", &[counter()]).await;
    let hook = JobHook::new("count", vec![ContentType::new("dcim.device").unwrap()], job.as_str()).on([Action::Create]);
    h.store.create_hook(hook).await.map_err(|e| e.to_string())?;
    let (dir, store) = h.stop().await;
    drop(store);

    for trial in 1..=TRIALS {
        // Queue one run, with no dispatcher running.
        {
            let store = Store::open(dir.path()).map_err(|e| e.to_string())?;
            let mut session =
                store.session(jobhooks_model::ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), ""));
            session
                .save(object("dcim.device", &trial.to_string(), "dev", json!({})))
                .await
                .map_err(|e| e.to_string())?;
            session.commit().await.map_err(|e| e.to_string())?;
        }
        // The child runs it and is killed after the receiver's write, before the run completes.
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the child: {e}"))?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        match lines.next() {
            Some(Ok(line)) if line == "in-run" => {}
            other => return Err(format!("the child did not reach the middle of the run: {other:?}")),
        }
        child.kill().map_err(|e| e.to_string())?;
        child.wait().map_err(|e| e.to_string())?;

        // A restarted dispatcher runs it again, from scratch.
        let store = Arc::new(Store::open(dir.path()).map_err(|e| e.to_string())?);
        let dispatcher =
            Dispatcher::start(store.clone(), Registry::from_linked().unwrap(), DispatcherConfig::default())
                .await
                .map_err(|e| e.to_string())?;
        dispatcher.drain().await.map_err(|e| e.to_string())?;
        dispatcher.shutdown(Duration::from_secs(1)).await;

        let count = store.get_object(counter().reference()).await.map_err(|e| e.to_string())?.ok_or("no counter")?;
        if count.data()["n"] != json!(trial) {
            return Err(format!(
                "after {trial} runs the counter is {}: an effect was lost or doubled",
                count.data()["n"]
            ));
        }
        let results = store.list_results(&ResultFilter::default().job(job.clone())).await.map_err(|e| e.to_string())?;
        if results.len() != trial || results.iter().any(|r| r.status != JobStatus::Success) {
            return Err(format!("expected {trial} successful runs, found {results:?}"));
        }
        let writes = store.changes_for_object(counter().reference(), usize::MAX).await.map_err(|e| e.to_string())?;
        if writes.iter().filter(|c| c.change_context == ChangeContextKind::JobHook).count() != trial {
            return Err(format!("expected {trial} counter writes by the hook, found {}", writes.len() - 1));
        }
        if store.depth().await.map_err(|e| e.to_string())? != Default::default() {
            return Err("the queue is not empty".into());
        }
    }
    drop(dir);
    Ok(format!("{TRIALS} runs killed mid-run and rerun after restart; each effect landed once"))
}
