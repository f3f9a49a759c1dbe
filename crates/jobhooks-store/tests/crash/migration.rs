//! A migration killed at random moments: a child process opens a store of format 3 holding a
//! claim (opening migrates it) and is killed with SIGKILL at a random moment of its open. Each
//! time, the store then opens in this process, migrated exactly once: the claim ended and counted
//! as one attempt, its lapse noted once, the format key saying the current version.

use std::io::{BufRead, BufReader, Lines, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use jobhooks_model::ports::{QueueReader, ResultFilter};
use jobhooks_model::{JobStatus, RunId};
use jobhooks_store::Store;

use crate::support::copy_dir;

pub const TEST_NAME: &str = "a_migration_killed_at_random_moments_opens_migrated_on_the_next_try";
pub const CHILD_ENV: &str = "JOBHOOKS_MIGRATION_CHILD";

/// The child: opens (and so migrates) the store at `dir`, saying when it starts and ends.
pub fn child(dir: &Path) -> ExitCode {
    println!("opening");
    let _ = std::io::stdout().flush();
    match Store::open(dir) {
        Ok(store) => {
            drop(store);
            println!("opened");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("the child could not open the store: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The committed store of format 3, with its first ready run claimed as format 3 wrote a claim
/// into the run's queue entry (`leases u64 | attempts u32 | claimed u8 | deadline i64 | started
/// i64 | …`). Returns the claimed run.
fn format_3_store_with_a_claim(dir: &Path) -> RunId {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-3/store");
    copy_dir(&fixture, dir);
    let db = sled::open(dir).unwrap();
    let tree = db.open_tree("jobhooks").unwrap();
    assert_eq!(tree.get(b"meta/format").unwrap().unwrap().as_ref(), b"jobhooks-store/3");
    let (key, entry) = tree.scan_prefix(b"rdy/").next().expect("the fixture has a ready run").unwrap();
    let mut claimed = entry.to_vec();
    claimed[..8].copy_from_slice(&1u64.to_be_bytes());
    claimed[8..12].copy_from_slice(&1u32.to_be_bytes());
    claimed[12] = 1;
    claimed[13..21].copy_from_slice(&i64::MAX.to_be_bytes());
    claimed[21..29].copy_from_slice(&0i64.to_be_bytes());
    tree.insert(&key, claimed).unwrap();
    db.flush().unwrap();
    RunId(u64::from_be_bytes(key[4..12].try_into().unwrap()))
}

/// Checks that the store at `dir` opens migrated exactly once.
async fn verify(dir: &Path, claimed: RunId) -> Result<(), String> {
    let store = Store::open(dir).map_err(|e| {
        let files: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|entry| entry.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        format!("the store does not open after the kill: {e} ({e:?}); its files: {files:?}")
    })?;
    let depth = store.depth().await.map_err(|e| e.to_string())?;
    if depth.leased != 0 {
        return Err(format!("a claim survived the migration: {depth:?}"));
    }
    let result = store.get_result(claimed).await.map_err(|e| e.to_string())?.ok_or("the claimed run is gone")?;
    let lapses = result.logs.iter().filter(|entry| entry.message.contains("lapsed")).count();
    if (result.status, result.attempts, lapses) != (JobStatus::Pending, 1, 1) {
        return Err(format!(
            "the claimed run should be pending after one attempt, its lapse noted once: {} after {} attempts, {lapses} lapses noted",
            result.status, result.attempts
        ));
    }
    let results = store.list_results(&ResultFilter::default()).await.map_err(|e| e.to_string())?;
    if results.len() != 6 {
        return Err(format!("the fixture's 6 results read back as {}", results.len()));
    }
    drop(store);
    let reopened = Store::open(dir).map_err(|e| format!("the store does not open a second time: {e}"))?;
    if let Some(format) = reopened.migrated_from() {
        return Err(format!("the migration was not written: a second open migrated from {format}"));
    }
    Ok(())
}

/// A child opening the store at `dir`, once it says it starts to.
fn start_child(dir: &Path) -> Result<(Child, Lines<BufReader<ChildStdout>>), String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    match lines.next() {
        Some(Ok(line)) if line == "opening" => Ok((child, lines)),
        other => Err(format!("the child did not start opening: {other:?}")),
    }
}

/// The test: kills at random moments of the child's open, then opens and checks.
pub async fn run() -> Result<String, String> {
    let kills: usize = std::env::var("JOBHOOKS_CRASH_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(24);
    // How long a child's open takes here, so that the kills fall across all of it.
    let dir = tempfile::tempdir().unwrap();
    let claimed = format_3_store_with_a_claim(dir.path());
    let (mut child, mut lines) = start_child(dir.path())?;
    let since = Instant::now();
    if !lines.any(|line| line.is_ok_and(|line| line == "opened")) {
        return Err(format!("the child did not open the store: {:?}", child.wait()));
    }
    let open_takes = since.elapsed();
    child.wait().map_err(|e| e.to_string())?;
    verify(dir.path(), claimed).await?;
    let mut rng = fastrand::Rng::new();
    let mut migrated_before_the_kill = 0;
    for _ in 0..kills {
        let dir = tempfile::tempdir().unwrap();
        let claimed = format_3_store_with_a_claim(dir.path());
        let (mut child, lines) = start_child(dir.path())?;
        // The moment of the kill: anywhere in the open, or just after it. This pause waits for
        // nothing: the moment is what the test varies, and every moment is a valid trial (the
        // store must open migrated once whether the child was killed before, during or after its
        // migration), so the outcome does not depend on timing, only the coverage does.
        let max_delay = u64::try_from(open_takes.as_micros() * 5 / 4).unwrap_or(u64::MAX).max(1_000);
        std::thread::sleep(Duration::from_micros(rng.u64(0..max_delay)));
        child.kill().map_err(|e| e.to_string())?;
        child.wait().map_err(|e| e.to_string())?;
        migrated_before_the_kill += usize::from(lines.map_while(Result::ok).any(|line| line == "opened"));
        verify(dir.path(), claimed).await?;
    }
    Ok(format!(
        "{kills} kills within {} µs of the open's start, {migrated_before_the_kill} after it returned; every store migrated once",
        open_takes.as_micros() * 5 / 4
    ))
}
