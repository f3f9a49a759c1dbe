//! Several processes on one PostgreSQL database, and the database restarted under them.
//!
//! - Three dispatcher processes drain the changes a fourth process commits, and one dispatcher is
//!   killed with SIGKILL in the middle of its runs.
//! - Two dispatcher processes drain a committer's changes while the server is restarted
//!   (`pg_ctl restart -m fast`): they reconnect and go on; the committer retries what failed.
//!
//! Afterwards, in both: every change has had its run, each run's effect landed exactly once, the
//! runs of each object ran in the order of its changes, and no claim outlived its deadline.
//!
//! This binary is its own child: with `JOBHOOKS_PG_CHILD=dispatch|commit` and `JOBHOOKS_PG_URL` it
//! is a dispatcher or the committer; otherwise it is the test, and starts them.

use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::{Catalog, ChangeStore, JobQueue, ObjectReader, QueueReader, ResultFilter};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ContentType, JobContext, JobError, JobHook, JobHookReceiver, JobStatus,
    Object, ObjectChange, async_trait, json,
};
use jobhooks_postgres::PgStore;
use jobhooks_postgres::testing::TestServer;
use jobhooks_register::{Registry, register_job_hook_receiver};
use jobhooks_tests::object;

const CHILD_ENV: &str = "JOBHOOKS_PG_CHILD";
const URL_ENV: &str = "JOBHOOKS_PG_URL";
const STALL_ENV: &str = "JOBHOOKS_PG_STALL";
const ITEMS: usize = 12;
const CHANGES_PER_ITEM: usize = 15;
const KILL_TEST: &str = "three_dispatcher_processes_one_killed_drain_a_fourths_changes";
const RESTART_TEST: &str = "dispatchers_and_a_committer_go_on_across_a_server_restart";

/// For each change of an item, appends the change's id to the item's log object: a read, then a
/// write committed with the run's outcome. A run that happened twice would
/// append twice; runs out of order would append out of order.
#[derive(Default)]
struct Track;

#[async_trait]
impl JobHookReceiver for Track {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        change: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        let log = object("test.log", &change.changed_object_id, "log", json!({"seen": []}));
        let mut current = ctx.load(log.reference()).await?.unwrap_or(log);
        let mut seen = current.data()["seen"].as_array().cloned().unwrap_or_default();
        seen.push(json!(change.id.0));
        current.set_field("seen", json!(seen));
        ctx.save(current).await?;
        if std::env::var_os(STALL_ENV).is_some() {
            // The dispatcher to be killed stops in the middle of its runs, after their writes and
            // before their outcomes, and says so.
            println!("in-run");
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

register_job_hook_receiver!(Track);

fn job() -> String {
    format!("{}::Track", module_path!())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        if !args.iter().any(|arg| arg == "--ignored") {
            println!("{KILL_TEST}: test\n{RESTART_TEST}: test");
        }
        return ExitCode::SUCCESS;
    }
    // A test runner may name the test to run; with no name, both run. `--trials N` runs them N
    // times (`cargo xtask crash` does), each killing or restarting at another moment of the runs.
    let trials = match args.iter().position(|arg| arg == "--trials") {
        Some(at) => match args.get(at + 1).and_then(|n| n.parse::<usize>().ok()) {
            Some(trials) => trials,
            None => {
                eprintln!("--trials needs a number");
                return ExitCode::from(2);
            }
        },
        None => 1,
    };
    let named = |name: &str| {
        let names: Vec<&String> =
            args.iter().filter(|arg| !arg.starts_with('-') && arg.parse::<usize>().is_err()).collect();
        names.is_empty() || names.iter().any(|arg| *arg == name)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    match (std::env::var(CHILD_ENV).ok().as_deref(), std::env::var(URL_ENV)) {
        (Some("dispatch"), Ok(url)) => runtime.block_on(dispatch(&url)),
        (Some("commit"), Ok(url)) => runtime.block_on(commit(&url)),
        _ => {
            let mut failed = false;
            for trial in 1..=trials {
                for (name, restart) in [(KILL_TEST, false), (RESTART_TEST, true)] {
                    if !named(name) {
                        continue;
                    }
                    match runtime.block_on(parent(restart)) {
                        Ok(summary) => println!("{name} (trial {trial} of {trials}): {summary}"),
                        Err(violation) => {
                            eprintln!("{name} (trial {trial} of {trials}) FAILED: {violation}");
                            failed = true;
                        }
                    }
                }
            }
            if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
    }
}

/// A dispatcher process with short claims, so that the runs of a killed one are taken over soon.
async fn dispatch(url: &str) -> ExitCode {
    let store = Arc::new(PgStore::connect(url).await.expect("the database opens"));
    let config = DispatcherConfig::default()
        .workers(3)
        .lease_batch(4)
        .lease(Duration::from_secs(2))
        .run_timeout(Duration::from_secs(30))
        .idle_wakeup(Duration::from_millis(200))
        .job_sync(jobhooks_model::SyncMode::Additive);
    let _dispatcher = Dispatcher::start(store, Registry::from_linked().unwrap(), config).await.unwrap();
    println!("dispatching");
    std::future::pending::<ExitCode>().await
}

/// The committer: every item is created, then updated, in many small commits. A commit that
/// fails (the server restarting) is tried again, as an application would.
async fn commit(url: &str) -> ExitCode {
    let store = PgStore::connect(url).await.expect("the database opens");
    let mut retried = 0;
    for round in 0..CHANGES_PER_ITEM {
        for item in 0..ITEMS {
            let saved = object("test.item", &item.to_string(), "item", json!({"round": round}));
            loop {
                let seen = store.work_generation();
                let mut session = store.session(ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), ""));
                let committed = match session.save(saved.clone()).await {
                    Ok(()) => session.commit().await.map(drop).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match committed {
                    Ok(()) => break,
                    Err(_) if retried < 1_000 => {
                        // While the server restarts: wait for the store's listening connection to
                        // come back (it signals when it reconnects), at most a second, then retry.
                        retried += 1;
                        store.wait_for_work(seen, Duration::from_secs(1)).await;
                    }
                    Err(e) => panic!("a commit kept failing: {e}"),
                }
            }
        }
    }
    println!("committed");
    ExitCode::SUCCESS
}

/// A child process and its output, line by line.
struct Process {
    child: Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Process {
    fn start(kind: &str, url: &str, stall: bool) -> Result<Self, String> {
        let mut command = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
        command.env(CHILD_ENV, kind).env(URL_ENV, url).stdout(Stdio::piped());
        if stall {
            command.env(STALL_ENV, "1");
        }
        let mut child = command.spawn().map_err(|e| format!("cannot start a {kind} process: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        Ok(Self { child, lines: std::io::BufRead::lines(std::io::BufReader::new(stdout)) })
    }

    /// Waits for the child's next line of output.
    fn next_line(&mut self) -> Result<String, String> {
        match self.lines.next() {
            Some(Ok(line)) => Ok(line),
            other => Err(format!("the child said nothing more: {other:?}")),
        }
    }
}

async fn parent(restart: bool) -> Result<String, String> {
    // The restart needs a server of its own; the kill shares the test server.
    let cluster = if restart { Some(jobhooks_postgres::testing::start_cluster()?) } else { None };
    let url = match &cluster {
        Some(cluster) => cluster.url.clone(),
        None => TestServer::shared().fresh_database().await,
    };
    let store = PgStore::connect(&url).await.map_err(|e| e.to_string())?;
    Registry::from_linked()
        .unwrap()
        .sync_into(&store, jobhooks_model::SyncMode::Full)
        .await
        .map_err(|e| e.to_string())?;
    store.set_job_enabled(&job(), true).await.map_err(|e| e.to_string())?;
    let items = vec![ContentType::new("test.item").unwrap()];
    let hook = JobHook::new("track", items, job().as_str()).on([Action::Create, Action::Update]);
    store.create_hook(hook).await.map_err(|e| e.to_string())?;

    // In the kill, the first dispatcher stops in the middle of its first runs and the other two run
    // normally; in the restart, two dispatchers run normally.
    let mut dispatchers = Vec::new();
    for number in 0..if restart { 2 } else { 3 } {
        let mut dispatcher = Process::start("dispatch", &url, !restart && number == 0)?;
        if dispatcher.next_line()? != "dispatching" {
            return Err("a dispatcher did not start".into());
        }
        dispatchers.push(dispatcher);
    }
    let mut committer = Process::start("commit", &url, false)?;
    if !restart && dispatchers[0].next_line()? != "in-run" {
        return Err("the first dispatcher did not reach the middle of a run".into());
    }

    // Once a quarter of the runs are done, kill the first dispatcher, its runs still in flight, or
    // restart the server.
    let total = ITEMS * CHANGES_PER_ITEM;
    let bound = Instant::now() + Duration::from_secs(120);
    let mut seen = store.work_generation();
    loop {
        let done = store.list_results(&ResultFilter::default().status(JobStatus::Success)).await;
        if done.map_err(|e| e.to_string())?.len() >= total / 4 {
            break;
        }
        if Instant::now() > bound {
            return Err("no quarter of the runs completed in time".into());
        }
        store.wait_for_work(seen, Duration::from_millis(200)).await;
        seen = store.work_generation();
    }
    let mut killed = None;
    match &cluster {
        Some(cluster) => cluster.restart()?,
        None => {
            let dispatcher = dispatchers.remove(0);
            Command::new("kill")
                .args(["-KILL", &dispatcher.child.id().to_string()])
                .status()
                .map_err(|e| e.to_string())?;
            killed = Some(dispatcher);
        }
    }
    if committer.next_line()? != "committed" {
        return Err("the committer failed".into());
    }
    committer.child.wait().map_err(|e| e.to_string())?;

    // The others finish everything, taking over the killed one's claims once they lapse. (This
    // process's own connections were closed by a restart too: a failed read is read again.)
    loop {
        let depth = store.depth().await;
        let results = store.list_results(&ResultFilter::default()).await;
        if let (Ok(depth), Ok(results)) = (depth, results)
            && results.len() >= total
            && depth == Default::default()
        {
            break;
        }
        if Instant::now() > bound {
            let depth = store.depth().await.map_err(|e| e.to_string())?;
            return Err(format!("the runs did not all finish in time: {depth:?}"));
        }
        store.wait_for_work(seen, Duration::from_millis(200)).await;
        seen = store.work_generation();
    }
    for mut dispatcher in dispatchers {
        let _ = dispatcher.child.kill();
        let _ = dispatcher.child.wait();
    }
    if let Some(mut killed) = killed {
        let _ = killed.child.wait();
    }

    // Every run succeeded once; each item's log holds its changes once each, in order.
    let results = store.list_results(&ResultFilter::default()).await.map_err(|e| e.to_string())?;
    if let Some(bad) = results.iter().find(|r| r.status != JobStatus::Success) {
        return Err(format!("run {} ended {}: {:?}", bad.id, bad.status, bad.logs));
    }
    let lapsed: usize = results.iter().filter(|r| r.attempts > 1).count();
    if !restart && lapsed == 0 {
        return Err("no run of the killed dispatcher ran again".into());
    }
    // Each change, including those a retried commit may have recorded twice, had exactly one run.
    let mut changes_total = 0;
    for item in 0..ITEMS {
        let reference = object("test.item", &item.to_string(), "", json!({})).reference().clone();
        let mut changes: Vec<u64> = store
            .changes_for_object(&reference, usize::MAX)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|change| change.id.0)
            .collect();
        changes.reverse();
        changes_total += changes.len();
        let log = object("test.log", &item.to_string(), "", json!({}));
        let log = store.get_object(log.reference()).await.map_err(|e| e.to_string())?.ok_or("an item has no log")?;
        let seen: Vec<u64> =
            log.data()["seen"].as_array().into_iter().flatten().filter_map(serde_json::Value::as_u64).collect();
        if seen != changes {
            return Err(format!("item {item}: its runs saw {seen:?}, its changes are {changes:?}"));
        }
    }
    if results.len() != changes_total {
        return Err(format!("{} runs for {changes_total} changes", results.len()));
    }
    Ok(if restart {
        format!(
            "{changes_total} changes by a committer process, drained by 2 dispatcher processes across a server \
             restart; {lapsed} run(s) ran again; each effect landed once, in order"
        )
    } else {
        format!(
            "{total} changes by a committer process, drained by 3 dispatcher processes (one killed mid-run); \
             {lapsed} run(s) ran again after the kill; each effect landed once, in order"
        )
    })
}
