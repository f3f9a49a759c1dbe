//! `cargo xtask crash [--trials N] [--seed S]`: kills a realistic workload with SIGKILL at random
//! moments, reopening the same store each time, and checks after every reopen and after a final
//! drain that nothing committed was lost, every run's effect landed once, and nothing is orphaned.
//!
//! The workload (this binary with `--child DIR`): concurrent change contexts on several content
//! types, a hook on two of them whose receiver writes an object, button presses whose receiver
//! writes the pressed object (which triggers the hook again), and a dispatcher with short leases.
//! It reports every commit and press that returned on stdout.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::{Catalog, ChangeStore, CommitReceipt, ObjectReader, QueueReader, ResultFilter};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeId, ContentType, JobButton, JobButtonReceiver, JobContext,
    JobError, JobHook, JobHookReceiver, JobStatus, Object, ObjectChange, OffsetDateTime, RunId, User, async_trait,
    json,
};
use jobhooks_register::{Registry, register_job_button_receiver, register_job_hook_receiver};
use jobhooks_store::Store;
use jobhooks_tests::object;

/// Writes `audit.entry/{run}` for every change it sees.
#[derive(Default)]
struct AuditWrite;

#[async_trait]
impl JobHookReceiver for AuditWrite {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        change: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        let run = ctx.run().run_id;
        ctx.save(object("audit.entry", &run.to_string(), "audit", json!({"change": change.id}))).await?;
        Ok(())
    }
}

register_job_hook_receiver!(AuditWrite);

/// Bumps a counter on the pressed object (a `job` change, which the hook sees).
#[derive(Default)]
struct Touch;

#[async_trait]
impl JobButtonReceiver for Touch {
    async fn receive_job_button(&self, ctx: &mut JobContext, mut obj: Object) -> Result<(), JobError> {
        let touched = obj.field("touched").and_then(|v| v.as_u64()).unwrap_or(0);
        obj.set_field("touched", json!(touched + 1));
        ctx.save(obj).await?;
        Ok(())
    }
}

register_job_button_receiver!(Touch);

const HOOKED: [&str; 2] = ["dcim.device", "dcim.location"];
const TYPES: [&str; 3] = ["dcim.device", "dcim.location", "dcim.rack"];

fn job(name: &str) -> String {
    format!("{}::{name}", module_path!())
}

struct Options {
    trials: usize,
    seed: u64,
    child: Option<PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut options = Options { trials: 200, seed: fastrand::u64(..), child: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--trials" => options.trials = value()?.parse().map_err(|e| format!("--trials: {e}"))?,
            "--seed" => options.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--child" => options.child = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}; usage: crash-harness [--trials N] [--seed S]")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("crash-harness: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    match &options.child {
        Some(dir) => runtime.block_on(child(dir, options.seed)),
        None => match runtime.block_on(parent(&options)) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(summary) => {
                println!("{summary}");
                ExitCode::FAILURE
            }
        },
    }
}

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn child(dir: &Path, seed: u64) -> ExitCode {
    let store = Arc::new(Store::open(dir).expect("the parent does not hold the store"));
    let config = DispatcherConfig::default().lease(Duration::from_millis(300)).workers(4);
    let dispatcher = Arc::new(
        Dispatcher::start(store.clone(), Registry::from_linked().expect("registry"), config).await.expect("start"),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for committer in 0..3u64 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed ^ committer);
            loop {
                let mut session = store.session(ChangeContext::new(ChangeContextKind::Web, Some("u".into()), ""));
                for _ in 0..rng.usize(1..4) {
                    let content_type = TYPES[rng.usize(..TYPES.len())];
                    let id = rng.u32(0..20).to_string();
                    session.save(object(content_type, &id, &id, json!({"v": rng.u32(..)}))).await.expect("save");
                }
                let receipt = session.commit().await.expect("commit");
                report(&serde_json::to_string(&receipt).expect("json"));
            }
        });
    }
    tasks.spawn(async move {
        let user = User::superuser("presser").expect("user");
        let mut rng = fastrand::Rng::with_seed(seed ^ 0xb7);
        loop {
            let location = object("dcim.location", &rng.u32(0..20).to_string(), "", json!({}));
            if dispatcher.store().get_object(location.reference()).await.expect("read").is_none() {
                tokio::task::yield_now().await;
                continue;
            }
            let run = dispatcher.press(&user, "touch", location.reference()).await.expect("press");
            report(&serde_json::to_string(&CommitReceipt { changes: vec![], runs: vec![run] }).expect("json"));
        }
    });
    let ended = tasks.join_next().await;
    eprintln!("crash-harness child: a workload task ended: {ended:?}");
    ExitCode::FAILURE
}

async fn setup(dir: &Path) -> Result<(), String> {
    let store = Store::open(dir).map_err(|e| e.to_string())?;
    Registry::from_linked()
        .map_err(|e| e.to_string())?
        .sync_into(&store, jobhooks_model::SyncMode::Full)
        .await
        .map_err(|e| e.to_string())?;
    for name in ["AuditWrite", "Touch"] {
        store.set_job_enabled(&job(name), true).await.map_err(|e| e.to_string())?;
    }
    let hooked = HOOKED.iter().map(|t| ContentType::new(*t).expect("valid")).collect();
    let hook = JobHook::new("audit", hooked, job("AuditWrite").as_str()).on([Action::Create, Action::Update]);
    store.create_hook(hook).await.map_err(|e| e.to_string())?;
    let locations = vec![ContentType::new("dcim.location").expect("valid")];
    store
        .create_button(JobButton::new("touch", locations, "Touch", job("Touch").as_str()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[derive(Default)]
struct Tally {
    kills: usize,
    changes: BTreeSet<ChangeId>,
    runs: BTreeSet<RunId>,
    violations: Vec<String>,
}

impl Tally {
    fn summary(&self, trials: usize, seed: u64) -> String {
        let mut text = format!(
            "crash-harness: seed {seed}, trials {trials}, kills {}, changes {}, runs {}, violations {}",
            self.kills,
            self.changes.len(),
            self.runs.len(),
            self.violations.len()
        );
        for violation in self.violations.iter().take(20) {
            text.push_str(&format!("\n  violation: {violation}"));
        }
        text
    }
}

async fn parent(options: &Options) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    setup(dir.path()).await?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let mut tally = Tally::default();
    for trial in 0..options.trials {
        let mut child = Command::new(&exe)
            .args(["--child", &dir.path().display().to_string(), "--seed", &(options.seed ^ trial as u64).to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the workload: {e}"))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        for line in lines.by_ref().take(rng.usize(1..150)) {
            add(&mut tally, &line.map_err(|e| e.to_string())?)?;
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("the workload died on its own ({status}) before it was killed"));
        }
        child.kill().map_err(|e| e.to_string())?;
        child.wait().map_err(|e| e.to_string())?;
        tally.kills += 1;
        for line in lines.map_while(Result::ok) {
            let _cut_short_by_the_kill = add(&mut tally, &line);
        }
        let store = Store::open(dir.path()).map_err(|e| format!("reopen failed: {e}"))?;
        verify(&store, &mut tally, false).await?;
    }
    // Drain everything left, then check that every run ended and nothing is queued or leased.
    let store = Arc::new(Store::open(dir.path()).map_err(|e| e.to_string())?);
    let dispatcher = Dispatcher::start(
        store.clone(),
        Registry::from_linked().map_err(|e| e.to_string())?,
        DispatcherConfig::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    dispatcher.drain().await.map_err(|e| e.to_string())?;
    dispatcher.shutdown(Duration::from_secs(5)).await;
    verify(&store, &mut tally, true).await?;
    let summary = tally.summary(options.trials, options.seed);
    if tally.violations.is_empty() { Ok(summary) } else { Err(summary) }
}

fn add(tally: &mut Tally, line: &str) -> Result<(), String> {
    let receipt: CommitReceipt = serde_json::from_str(line).map_err(|e| format!("bad report `{line}`: {e}"))?;
    tally.changes.extend(receipt.changes);
    tally.runs.extend(receipt.runs);
    Ok(())
}

async fn verify(store: &Store, tally: &mut Tally, drained: bool) -> Result<(), String> {
    let far = OffsetDateTime::now_utc() + Duration::from_secs(86_400);
    let all = store.changes_between(OffsetDateTime::UNIX_EPOCH, far, usize::MAX).await.map_err(|e| e.to_string())?;
    let present: BTreeSet<ChangeId> = all.iter().map(|c| c.id).collect();
    for lost in tally.changes.difference(&present) {
        tally.violations.push(format!("change {lost} was committed but is lost"));
    }
    for change in &all {
        let runs = store.list_results(&ResultFilter::default().change(change.id)).await.map_err(|e| e.to_string())?;
        let hooked = HOOKED.contains(&change.changed_object_type.as_str()) && change.action != Action::Delete;
        let expected = usize::from(hooked && change.change_context != ChangeContextKind::JobHook);
        if runs.len() != expected {
            let context = change.change_context;
            tally.violations.push(format!(
                "change {} ({context}) has {} hook runs, expected {expected}",
                change.id,
                runs.len()
            ));
        }
    }
    let results = store.list_results(&ResultFilter::default()).await.map_err(|e| e.to_string())?;
    let known: BTreeSet<RunId> = results.iter().map(|r| r.id).collect();
    for lost in tally.runs.difference(&known) {
        tally.violations.push(format!("run {lost} was queued but is lost"));
    }
    for result in &results {
        if result.job == job("AuditWrite") {
            let audit = object("audit.entry", &result.id.to_string(), "", json!({})).reference().clone();
            let writes = store.changes_for_object(&audit, usize::MAX).await.map_err(|e| e.to_string())?;
            let succeeded = result.status == JobStatus::Success;
            if writes.len() != usize::from(succeeded) {
                tally.violations.push(format!("run {} is {} with {} writes", result.id, result.status, writes.len()));
            }
        }
        if drained && !result.status.is_final() {
            tally.violations.push(format!("run {} is still {} after the drain", result.id, result.status));
        }
        if drained && result.status != JobStatus::Success {
            tally.violations.push(format!("run {} ended {}: {:?}", result.id, result.status, result.logs.last()));
        }
    }
    if drained {
        let depth = store.depth().await.map_err(|e| e.to_string())?;
        if depth.pending + depth.leased > 0 {
            tally.violations.push(format!("after the drain the queue holds {depth:?}"));
        }
    }
    Ok(())
}
