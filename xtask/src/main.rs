//! `cargo xtask`: the project's chores, written in Rust so they run wherever cargo does.
//!
//! - `cargo xtask ci`: no proc-macro crate in the workspace, the crate graph as
//!   docs/ARCHITECTURE.md states it, format check, clippy with warnings denied, every test (unit, integration,
//!   property and doc tests, with nextest when it is installed), the benches compiled, the docs
//!   built with warnings denied, every crate packaged, and the downstream crates. This is
//!   the command the README gives for running the tests, and what `.ci/run` runs.
//! - `cargo xtask bench [--quick]`: every bench, then `target/bench/summary.json` and the figures
//!   table of `docs/benchmarks.md` (`xtask/src/bench.rs`).
//! - `cargo xtask demo`: the main job, `jobhooks demo`: the seed scenarios end to end.
//! - `cargo xtask downstream`: the README's example and a two-crate application built, tested and
//!   run as crates outside the workspace (`xtask/src/downstream.rs`); part of `ci`.
//! - `cargo xtask crash [--trials N] [--seed S]`: the crash harness (`tests/src/bin/crash-harness.rs`),
//!   then the PostgreSQL processes killed and the server restarted (`tests/tests/pg_processes.rs`).
//! - `cargo xtask soak [--changes N]`: the soak (`tests/src/bin/soak.rs`).
//! - `cargo xtask fuzz <target> [--seconds N]`: a cargo-fuzz target from `fuzz/`, on the stable
//!   toolchain (no sanitizer; install cargo-fuzz with `cargo install cargo-fuzz`).
//!
//! Invariant: xtask depends on no jobhooks crate; it only drives cargo.

mod bench;
/// The throwaway PostgreSQL cluster of the tests, shared with `jobhooks-postgres` by path so that
/// xtask builds no database client.
#[path = "../../crates/jobhooks-postgres/src/cluster.rs"]
#[allow(dead_code, reason = "xtask starts the cluster; only the tests restart it")]
mod cluster;
mod downstream;

use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci    no proc-macro crate, fmt check, clippy -D warnings, tests, docs with warnings denied
  demo  the seed scenarios end to end on a fresh store (`jobhooks demo`)
  downstream
        the README's example and a two-crate application (xtask/downstream/) built, tested and
        run as crates outside the workspace
  bench [--quick]
        every bench; writes target/bench/summary.json and the table in docs/benchmarks.md
  crash [--trials N] [--seed S] [--pg-trials N]
        SIGKILL a realistic workload at random moments and check that nothing is lost; then
        kill one of three PostgreSQL dispatcher processes and restart the server under two
  soak [--changes N]
        N changes (default 1,000,000) through to completed runs, with retention; memory and size
  fuzz <target> [--seconds N]
        run a cargo-fuzz target (decode_records, diff_patch, button_template, merge_changes)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("crash") => crash(&args[1..]),
        Some("downstream") => root().and_then(|root| downstream::run(&root)),
        Some("fuzz") => fuzz(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("soak") => {
            let mut soak = vec!["run", "--release", "--quiet", "--package", "jobhooks-tests", "--bin", "soak", "--"];
            soak.extend(args[1..].iter().map(String::as_str));
            cargo(&soak, &[])
        }
        Some("demo") => cargo(&["run", "--quiet", "--package", "jobhooks-cli", "--bin", "jobhooks", "--", "demo"], &[]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn ci() -> Result<(), String> {
    no_proc_macro_crates()?;
    crate_graph_holds()?;
    downstream::msrv_is_stated_once(&root()?)?;
    cargo(&["fmt", "--all", "--check"], &[])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], &[])?;
    // One PostgreSQL server for every test binary that needs one; it stops when xtask ends.
    let postgres = postgres_for_tests()?;
    let with_postgres = [("JOBHOOKS_TEST_PG", postgres.as_str())];
    // The web pages' tests drive Debian's Chromium through chromedriver.
    chromium_for_tests()?;
    // The API's test with Nautobot's client makes a Python virtual environment.
    python_venv_for_tests()?;
    // nextest runs the tests of every binary at once rather than one binary after another, which
    // on two cores is what keeps CI short. The benches are compiled (in the test profile, sharing
    // the tests' build); `cargo xtask bench` runs them.
    let targets = ["--workspace", "--lib", "--bins", "--tests"];
    if nextest_installed() {
        cargo(&[&["nextest", "run", "--no-fail-fast"][..], &targets].concat(), &with_postgres)?;
    } else {
        eprintln!("xtask: cargo-nextest is not installed; the tests run with cargo test, one binary at a time");
        cargo(&[&["test"][..], &targets].concat(), &with_postgres)?;
    }
    cargo(&["test", "--workspace", "--benches", "--no-run"], &[])?;
    cargo(&["test", "--workspace", "--doc"], &with_postgres)?;
    cargo(&["doc", "--workspace", "--no-deps"], &[("RUSTDOCFLAGS", "-D warnings")])?;
    // Every library crate can be published on its own: metadata, no dependency on an unpublished
    // crate, and each packaged crate builds from its package alone.
    forget_earlier_packages()?;
    cargo(&["publish", "--workspace", "--dry-run", "--allow-dirty"], &[])?;
    downstream::run(&root()?)
}

/// Removes what an earlier `publish --dry-run` from this directory left in cargo's registry
/// sources: cargo extracts the packaged crates there, keyed by name and version, and takes a
/// registry package's sources as immutable, so a second dry run would verify the first one's
/// sources instead of today's. Only jobhooks crates outside crates.io's own sources are removed.
fn forget_earlier_packages() -> Result<(), String> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let Ok(registries) = std::fs::read_dir(home.join("registry/src")) else { return Ok(()) };
    for registry in registries.flatten() {
        if registry.file_name().to_string_lossy().starts_with("index.crates.io") {
            continue;
        }
        for package in std::fs::read_dir(registry.path()).into_iter().flatten().flatten() {
            if package.file_name().to_string_lossy().starts_with("jobhooks-") {
                std::fs::remove_dir_all(package.path())
                    .map_err(|e| format!("cannot remove {}: {e}", package.path().display()))?;
            }
        }
    }
    Ok(())
}

fn nextest_installed() -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    Command::new(cargo).args(["nextest", "--version"]).output().is_ok_and(|output| output.status.success())
}

/// Runs one fuzz target on the stable toolchain (no sanitizer), for `--seconds` (default 60).
fn fuzz(args: &[String]) -> Result<(), String> {
    let (target, seconds) = match args {
        [target] => (target, "60"),
        [target, flag, seconds] if flag == "--seconds" => (target, seconds.as_str()),
        _ => return Err(format!("usage: cargo xtask fuzz <target> [--seconds N]\n\n{USAGE}")),
    };
    let installed = Command::new("cargo").args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !installed {
        return Err("cargo-fuzz is not installed: run `cargo install cargo-fuzz`".to_owned());
    }
    let root = root()?;
    let max_time = format!("-max_total_time={seconds}");
    let args = ["fuzz", "run", "--sanitizer", "none", "-O", target.as_str(), "--", max_time.as_str(), "-timeout=5"];
    eprintln!("$ (cd fuzz && cargo {})", args.join(" "));
    let status = Command::new("cargo").args(args).current_dir(root.join("fuzz")).status().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("fuzz target {target} failed ({status}): see fuzz/artifacts/{target}/"))
    }
}

/// The reliability harness: the sled store killed at random moments (`crash-harness`, which takes
/// `--trials N` and `--seed S`), then the PostgreSQL store's processes, one of three dispatchers
/// killed mid-run and the server restarted under two (`tests/tests/pg_processes.rs`),
/// `--pg-trials N` times (default 3).
fn crash(args: &[String]) -> Result<(), String> {
    let mut pg_trials = "3".to_owned();
    let mut sled_args = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--pg-trials" {
            pg_trials = rest.next().ok_or("--pg-trials needs a number")?.clone();
        } else {
            sled_args.push(arg.as_str());
        }
    }
    let mut harness =
        vec!["run", "--release", "--quiet", "--package", "jobhooks-tests", "--bin", "crash-harness", "--"];
    harness.extend(sled_args);
    cargo(&harness, &[])?;
    let postgres = postgres_for_tests()?;
    let processes = ["test", "--release", "--quiet", "--package", "jobhooks-tests", "--test", "pg_processes", "--"];
    let processes: Vec<&str> = processes.into_iter().chain(["--trials", pg_trials.as_str()]).collect();
    cargo(&processes, &[("JOBHOOKS_TEST_PG", postgres.as_str())])
}

/// The PostgreSQL server the tests use: `JOBHOOKS_TEST_PG` when set, else a throwaway cluster
/// started here (installing Debian's `postgresql` package first when its binaries are missing).
pub(crate) fn postgres_for_tests() -> Result<String, String> {
    if let Ok(url) = std::env::var("JOBHOOKS_TEST_PG")
        && !url.is_empty()
    {
        return Ok(url);
    }
    if cluster::binaries().is_err() {
        install_postgres()?;
    }
    let url = cluster::start()?.url;
    eprintln!("xtask: a throwaway PostgreSQL for the tests at {url}");
    Ok(url)
}

/// Installs Debian's `postgresql` package.
fn install_postgres() -> Result<(), String> {
    eprintln!("xtask: PostgreSQL is not installed; installing Debian's postgresql package");
    apt_install(
        &["postgresql"],
        "install PostgreSQL (apt-get install postgresql) or set JOBHOOKS_TEST_PG to a server's URL",
    )
}

/// Installs Debian's `chromium` and `chromium-driver` (matching versions) when chromedriver is
/// missing: the browser tests of the web pages need both.
fn chromium_for_tests() -> Result<(), String> {
    let found = |program: &str| Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    if found("chromedriver") && std::path::Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    eprintln!("xtask: Chromium or chromedriver is not installed; installing Debian's chromium and chromium-driver");
    apt_install(&["chromium", "chromium-driver"], "install them (apt-get install chromium chromium-driver)")
}

/// Installs Debian's `python3-venv` when `python3 -m venv` cannot make an environment: the API's
/// test installs pynautobot from PyPI into one.
fn python_venv_for_tests() -> Result<(), String> {
    let probe = std::env::temp_dir().join(format!("jobhooks-venv-probe-{}", std::process::id()));
    let made = Command::new("python3").args(["-m", "venv", "--without-pip"]).arg(&probe).output();
    let _ = std::fs::remove_dir_all(&probe);
    match made {
        // No Python at all: the test says it is skipped.
        Err(_) => Ok(()),
        Ok(output) if output.status.success() && ensurepip_works() => Ok(()),
        Ok(_) => {
            eprintln!("xtask: python3 cannot make a virtual environment; installing Debian's python3-venv");
            apt_install(&["python3-venv"], "install it (apt-get install python3-venv)")
        }
    }
}

/// Whether Python's `ensurepip` (what `venv` installs pip with) is there.
fn ensurepip_works() -> bool {
    Command::new("python3").args(["-c", "import ensurepip"]).output().is_ok_and(|output| output.status.success())
}

/// `apt-get update` then `apt-get install -y --no-install-recommends PACKAGES`; `otherwise` says
/// what a person can do when that fails.
fn apt_install(packages: &[&str], otherwise: &str) -> Result<(), String> {
    let install: Vec<&str> =
        ["install", "-y", "--no-install-recommends"].into_iter().chain(packages.iter().copied()).collect();
    for args in [&["update"][..], &install[..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("could not run apt-get: {e}"))?;
        if !status.success() {
            return Err(format!("`apt-get {}` failed ({status}): {otherwise}", args.join(" ")));
        }
    }
    Ok(())
}

/// Registration is derive-free by design: no workspace member may be a proc-macro crate.
fn no_proc_macro_crates() -> Result<(), String> {
    let root = root()?;
    let mut manifests = vec![root.join("xtask/Cargo.toml"), root.join("tests/Cargo.toml")];
    for dir in ["crates", "examples"] {
        let entries = std::fs::read_dir(root.join(dir)).map_err(|e| format!("cannot list {dir}/: {e}"))?;
        manifests.extend(entries.filter_map(Result::ok).map(|e| e.path().join("Cargo.toml")).filter(|p| p.exists()));
    }
    for manifest in manifests {
        let text =
            std::fs::read_to_string(&manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
        if text.lines().any(|line| line.replace(' ', "").starts_with("proc-macro=true")) {
            return Err(format!(
                "{} is a proc-macro crate; jobhooks registers receivers without derives",
                manifest.display()
            ));
        }
    }
    Ok(())
}

/// The jobhooks crates each library crate may depend on (normal dependencies), as
/// docs/ARCHITECTURE.md states them: a lower layer never names a higher one, the dispatcher never
/// names a store, and stores and the contract kit know only the model.
const ALLOWED_DEPENDENCIES: [(&str, &[&str]); 9] = [
    ("jobhooks-diff", &[]),
    ("jobhooks-model", &["jobhooks-diff"]),
    ("jobhooks-register", &["jobhooks-model"]),
    ("jobhooks-store", &["jobhooks-model"]),
    ("jobhooks-store-memory", &["jobhooks-model"]),
    ("jobhooks-postgres", &["jobhooks-model"]),
    ("jobhooks-conformance", &["jobhooks-model"]),
    ("jobhooks-dispatch", &["jobhooks-model", "jobhooks-register"]),
    ("jobhooks-server", &["jobhooks-model", "jobhooks-dispatch"]),
];

/// Checks the crate graph from `cargo metadata` against [`ALLOWED_DEPENDENCIES`].
fn crate_graph_holds() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("could not run `cargo metadata`: {e}"))?;
    if !output.status.success() {
        return Err(format!("`cargo metadata` failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("`cargo metadata` printed no JSON: {e}"))?;
    let mut broken = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        let Some((_, allowed)) = ALLOWED_DEPENDENCIES.iter().find(|(crate_name, _)| *crate_name == name) else {
            continue;
        };
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let dependency_name = dependency["name"].as_str().unwrap_or_default();
            let normal = dependency["kind"].is_null();
            if normal && dependency_name.starts_with("jobhooks-") && !allowed.contains(&dependency_name) {
                broken.push(format!("{name} depends on {dependency_name}"));
            }
        }
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!("the crate graph breaks docs/ARCHITECTURE.md: {}", broken.join("; ")))
    }
}

/// The workspace root.
fn root() -> Result<std::path::PathBuf, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("xtask has no parent directory")?;
    Ok(root.to_path_buf())
}

/// Runs one cargo command, echoing it, and fails with the command line if it fails.
fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("$ cargo {}", args.join(" "));
    let started = std::time::Instant::now();
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("could not start `{cargo}`: {e}"))?;
    eprintln!("xtask: `cargo {}` took {:.0} s", args.join(" "), started.elapsed().as_secs_f64());
    if status.success() { Ok(()) } else { Err(format!("`cargo {}` failed ({status})", args.join(" "))) }
}
