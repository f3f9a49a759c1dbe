//! A receiver that takes its process down every time: a child process opens the store, claims the
//! one queued run, says so, and is killed with SIGKILL while it "runs" it, again and again. A claim
//! writes nothing to its run (format 4), yet every claim after the first crash must count as an
//! attempt, so that such a run reaches its dead letter instead of looping forever: after a crash
//! the runs queued before it are claimed durably (their attempt journal flushed before the claim
//! returns). The first claim, made after a clean close, may be lost with the process.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use jobhooks_model::ports::{Catalog, JobQueue, QueueReader};
use jobhooks_model::{JobInputs, JobKind, JobSpec, JobStatus, OffsetDateTime, SyncMode};
use jobhooks_store::Store;

pub const TEST_NAME: &str = "a_receiver_that_kills_its_process_every_time_counts_an_attempt_each_time";
pub const CHILD_ENV: &str = "JOBHOOKS_CRASH_LOOP_CHILD";
const JOB: &str = "crash::Fatal";
const KILLS: u32 = 4;

/// The child: claims the run and waits to be killed, as a receiver that brings its process down.
pub async fn child(dir: &Path) -> ExitCode {
    let store = Store::open(dir).expect("the store opens");
    let Some((_, result)) = store.lease_next(OffsetDateTime::now_utc(), Duration::from_secs(300)).await.unwrap() else {
        eprintln!("the child found nothing to claim");
        return ExitCode::FAILURE;
    };
    println!("claimed {}", result.attempts);
    let _ = std::io::stdout().flush();
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}

/// The test.
pub async fn run() -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let run = {
        let store = Store::open(dir.path()).unwrap();
        let spec = JobSpec {
            class_path: JOB.into(),
            name: JOB.into(),
            description: String::new(),
            kind: JobKind::JobButtonReceiver,
            hidden: true,
            former_class_paths: vec![],
        };
        store.sync_jobs(&[spec], SyncMode::Full).await.unwrap();
        store.set_job_enabled(JOB, true).await.unwrap();
        let inputs = JobInputs::Button { object_pk: "1".into(), object_model_name: "dcim.device".into() };
        store.enqueue(JOB, None, inputs).await.unwrap()
        // Closed cleanly here.
    };
    let mut seen = Vec::new();
    for _ in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the child: {e}"))?;
        let line = BufReader::new(child.stdout.take().unwrap()).lines().next();
        child.kill().map_err(|e| e.to_string())?;
        child.wait().map_err(|e| e.to_string())?;
        match line {
            Some(Ok(line)) if line.starts_with("claimed ") => seen.push(line["claimed ".len()..].to_owned()),
            other => return Err(format!("the child did not claim the run: {other:?}")),
        }
    }
    let store = Store::open(dir.path()).map_err(|e| e.to_string())?;
    let result = store.get_result(run).await.map_err(|e| e.to_string())?.ok_or("the run is gone")?;
    let lapses = result.logs.iter().filter(|entry| entry.message.contains("lapsed")).count();
    // Every claim but perhaps the first is counted, and each counted one is in the log.
    if result.status != JobStatus::Pending || result.attempts < KILLS - 1 || lapses != result.attempts as usize {
        return Err(format!(
            "after {KILLS} kills the run is {} with {} attempts and {lapses} lapses noted; the children claimed it at attempts {seen:?}",
            result.status, result.attempts
        ));
    }
    Ok(format!("{KILLS} kills, {} attempts counted (claims seen at {seen:?})", result.attempts))
}
