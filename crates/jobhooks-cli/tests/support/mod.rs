//! Running the real `jobhooks` binary as a user does, shared by the command line's test binaries:
//! `--db` is a store's directory or a PostgreSQL URL.

use std::ffi::OsStr;
use std::process::{Command, Output};

use serde_json::Value;

/// The binary with `--db db`, ignoring `JOBHOOKS_DB` from the environment.
pub fn jobhooks(db: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jobhooks"));
    command.arg("--db").arg(db).env_remove("JOBHOOKS_DB");
    command
}

pub fn run(db: impl AsRef<OsStr>, args: &[&str]) -> Output {
    jobhooks(db).args(args).output().expect("the binary runs")
}

/// Runs a command that must succeed and returns its stdout.
pub fn ok(db: impl AsRef<OsStr>, args: &[&str]) -> String {
    let output = run(db, args);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{args:?} failed: {stderr}\n{stdout}");
    stdout.into_owned()
}

/// Runs a `--json` command that must succeed and parses its output.
pub fn json(db: impl AsRef<OsStr>, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&ok(db, &args)).expect("--json prints JSON")
}

/// Runs a command that must fail with `status`, never with a panic, and returns its stderr.
pub fn fails(db: impl AsRef<OsStr>, args: &[&str], status: i32) -> String {
    let output = run(db, args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(status), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    stderr
}
