//! Nautobot's own Python client, pynautobot 3.x from PyPI, drives a running `jobhooks serve`: the
//! script `pynautobot_drive.py` beside this file lists, gets, filters, creates, changes and deletes
//! job hooks and job buttons by id, runs a job button receiver on an object and waits for its
//! result to succeed, reads its logs, counts, and pages.
//!
//! The client is installed once into a virtual environment under Cargo's target directory
//! (`pynautobot-venv`), with `python3 -m venv` (Debian's `python3-venv`, which `cargo xtask ci`
//! installs) and pip. The test is skipped, saying so, only when there is no `python3` at all.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Served, ok};
use crate::{SERIAL_HOOK, SIMPLE_BUTTON};

/// The pynautobot versions the API is tested against.
const PYNAUTOBOT: &str = "pynautobot>=3.2,<4";

/// The virtual environment's Python, with pynautobot installed; `None` when there is no Python.
fn python_with_pynautobot() -> Option<PathBuf> {
    if Command::new("python3").arg("--version").output().is_err() {
        return None;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pynautobot-venv");
    let python = venv.join("bin/python");
    let installed = python.exists()
        && Command::new(&python).args(["-c", "import pynautobot"]).status().is_ok_and(|status| status.success());
    if !installed {
        let made = Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv).output().unwrap();
        assert!(
            made.status.success(),
            "python3 cannot make a virtual environment (install Debian's python3-venv; `cargo xtask ci` does): {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let pip = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", PYNAUTOBOT])
            .output()
            .unwrap();
        assert!(pip.status.success(), "pip cannot install {PYNAUTOBOT}: {}", String::from_utf8_lossy(&pip.stderr));
    }
    Some(python)
}

#[test]
fn pynautobot_drives_hooks_buttons_runs_and_logs() {
    let Some(python) = python_with_pynautobot() else {
        eprintln!("SKIPPED: pynautobot_drives_hooks_buttons_runs_and_logs needs python3, which is not installed");
        return;
    };
    let served = Served::start();
    let perms = [
        "extras.view_job",
        "extras.view_jobhook",
        "extras.add_jobhook",
        "extras.change_jobhook",
        "extras.delete_jobhook",
        "extras.view_jobbutton",
        "extras.add_jobbutton",
        "extras.change_jobbutton",
        "extras.delete_jobbutton",
        "extras.view_jobresult",
        "extras.run_job",
        "dcim.add_location",
    ];
    let args: Vec<&str> =
        ["users", "add", "alice"].into_iter().chain(perms.iter().flat_map(|perm| ["--perm", *perm])).collect();
    ok(&served, &args);
    ok(&served, &["jobs", "enable", SIMPLE_BUTTON]);
    ok(&served, &["jobs", "enable", SERIAL_HOOK]);
    ok(&served, &["objects", "put", "dcim.location", "hq", r#"{"name": "HQ"}"#, "--repr", "HQ", "--user", "alice"]);
    let token = served.token_of("alice");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/pynautobot_drive.py");
    let output = Command::new(&python)
        .arg(&script)
        .env("JOBHOOKS_URL", served.url())
        .env("JOBHOOKS_TOKEN", token)
        .env("BUTTON_JOB", SIMPLE_BUTTON)
        .env("HOOK_JOB", SERIAL_HOOK)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "pynautobot's script failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("pynautobot: every call worked"), "{stdout}");
}
