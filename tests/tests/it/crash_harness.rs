//! The short version of `cargo xtask crash` that CI runs: 25 kills of the realistic workload.

use std::process::Command;

#[test]
fn twenty_five_kills_find_no_violation() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_crash-harness")).args(["--trials", "25"]).output().expect("the harness runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let summary = stdout.lines().find(|l| l.starts_with("crash-harness:")).expect("a summary line");
    assert!(summary.contains("kills 25") && summary.ends_with("violations 0"), "{summary}");
}
