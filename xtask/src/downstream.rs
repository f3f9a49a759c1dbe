//! `cargo xtask downstream`: jobhooks as a team adopts it, from crates outside the workspace.
//!
//! 1. The README's example, as `src/main.rs` of a fresh crate whose `[dependencies]` are the
//!    README's block (its `jobhooks-*` entries pointed at this repository by path), built and run
//!    in a fresh directory: it must print a successful run.
//! 2. `xtask/downstream/`: receivers in a crate of their own, linked with `link()` by an
//!    application, tested on the in-memory store, run; and the memory path's dependency tree must
//!    hold no sled, axum or PostgreSQL client.
//!
//! Both build in `target/downstream/` with a copy of the workspace's `Cargo.lock`, so that they
//! use the versions the workspace is tested with.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What the memory path must not pull in.
const NOT_ON_THE_MEMORY_PATH: [&str; 4] = ["sled", "axum", "tokio-postgres", "hyper"];

pub(crate) fn run(root: &Path) -> Result<(), String> {
    let work = root.join("target/downstream");
    let target = work.join("target");
    readme_example(root, &work.join("readme-example"), &target)?;
    two_crates(root, &work.join("two-crates"), &target)
}

fn readme_example(root: &Path, dir: &Path, target: &Path) -> Result<(), String> {
    let readme = read(&root.join("README.md"))?;
    let example = fenced(&readme, "```rust,no_run\n").ok_or("README.md has no ```rust,no_run example")?;
    let dependencies =
        fenced(&readme, "```toml\n[dependencies]\n").ok_or("README.md has no ```toml [dependencies] block")?;
    let manifest = format!(
        "[package]\nname = \"readme-example\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[workspace]\n\n[dependencies]\n{}",
        to_paths(dependencies, root)
    );
    fresh_dir(dir)?;
    write(&dir.join("Cargo.toml"), &manifest)?;
    write(&dir.join("src/main.rs"), example)?;
    copy_lock(root, dir)?;
    let manifest_path = dir.join("Cargo.toml");
    let run_in = dir.join("run");
    std::fs::create_dir_all(&run_in).map_err(|e| format!("cannot create {}: {e}", run_in.display()))?;
    let output = cargo_in(&run_in, &["run", "--quiet", "--manifest-path", &path_str(&manifest_path)?], target)?;
    if !output.starts_with("SUCCESS ") || !output.contains("DIFF: ") {
        return Err(format!("the README's example ran, but did not print a successful run with its DIFF: {output}"));
    }
    eprintln!("xtask: the README's example, built as a crate of its own, printed: {}", output.trim());
    Ok(())
}

fn two_crates(root: &Path, dir: &Path, target: &Path) -> Result<(), String> {
    fresh_dir(dir)?;
    copy_tree(&root.join("xtask/downstream"), dir, root)?;
    copy_lock(root, dir)?;
    let manifest_path = path_str(&dir.join("Cargo.toml"))?;
    // The tests' own output goes to the terminal, so that a failure shows what failed.
    let tests = ["test", "--manifest-path", &manifest_path, "--workspace"];
    eprintln!("$ (cd {} && cargo {})", dir.display(), tests.join(" "));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(tests)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .status()
        .map_err(|e| format!("could not start `{cargo}`: {e}"))?;
    if !status.success() {
        return Err(format!("the two-crate application's tests failed in {} ({status})", dir.display()));
    }
    let output = cargo_in(dir, &["run", "--quiet", "--manifest-path", &manifest_path, "--package", "app"], target)?;
    eprintln!("xtask: the two-crate application printed: {}", output.trim().replace('\n', " | "));
    let tree = cargo_in(
        dir,
        &["tree", "--manifest-path", &manifest_path, "--package", "app", "--edges", "normal", "--prefix", "none"],
        target,
    )?;
    let pulled: Vec<&str> = NOT_ON_THE_MEMORY_PATH
        .into_iter()
        .filter(|name| tree.lines().any(|line| line.split(' ').next() == Some(*name)))
        .collect();
    if !pulled.is_empty() {
        return Err(format!("the memory path pulls in {}: see `cargo tree` in {}", pulled.join(", "), dir.display()));
    }
    Ok(())
}

/// The text of the first block that opens with `opening`, without its fences.
fn fenced<'a>(text: &'a str, opening: &str) -> Option<&'a str> {
    let start = text.find(opening)? + opening.len();
    let length = text[start..].find("```")?;
    Some(&text[start..start + length])
}

/// `jobhooks-x = "0.1"` becomes `jobhooks-x = { path = "<root>/crates/jobhooks-x" }`.
fn to_paths(dependencies: &str, root: &Path) -> String {
    dependencies
        .lines()
        .map(|line| match line.split_once(" = ") {
            Some((name, _)) if name.starts_with("jobhooks-") => {
                format!("{name} = {{ path = \"{}\" }}", root.join("crates").join(name).display())
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Copies `from` into `to`, pointing `@JOBHOOKS@` at `root`.
fn copy_tree(from: &Path, to: &Path, root: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(from).map_err(|e| format!("cannot list {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", from.display()))?;
        let (source, destination) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_tree(&source, &destination, root)?;
        } else {
            write(&destination, &read(&source)?.replace("@JOBHOOKS@", &path_str(root)?))?;
        }
    }
    Ok(())
}

fn copy_lock(root: &Path, dir: &Path) -> Result<(), String> {
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))
        .map_err(|e| format!("cannot copy Cargo.lock: {e}"))?;
    Ok(())
}

/// Runs cargo in `dir` with `target` as its target directory; its stdout, or why it failed.
fn cargo_in(dir: &Path, args: &[&str], target: &Path) -> Result<String, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("$ (cd {} && cargo {})", dir.display(), args.join(" "));
    let output = Command::new(&cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("could not start `{cargo}`: {e}"))?;
    if !output.status.success() {
        return Err(format!("`cargo {}` failed in {} ({})", args.join(" "), dir.display(), output.status));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("`cargo {}` printed no text: {e}", args.join(" ")))
}

fn fresh_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("src")).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn path_str(path: &Path) -> Result<String, String> {
    path.to_str().map(str::to_owned).ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

/// The `rust-version` of the workspace, stated once in `Cargo.toml`: the README names the same
/// one, and the toolchain here is at least that.
pub(crate) fn msrv_is_stated_once(root: &Path) -> Result<(), String> {
    let manifest = read(&root.join("Cargo.toml"))?;
    let msrv = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or("Cargo.toml's [workspace.package] has no rust-version")?;
    let readme = read(&root.join("README.md"))?;
    let stated = format!("`rust-version` of `Cargo.toml` ({msrv})");
    if !readme.contains(&stated) {
        return Err(format!("README.md must state the toolchain as {stated}"));
    }
    let members: Vec<PathBuf> = ["crates", "examples"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).into_iter().flatten().flatten())
        .map(|entry| entry.path().join("Cargo.toml"))
        .filter(|manifest| manifest.exists())
        .collect();
    for member in members {
        let text = read(&member)?;
        if text.lines().any(|line| line.starts_with("rust-version") && !line.contains("workspace = true")) {
            return Err(format!("{} states its own rust-version: use rust-version.workspace = true", member.display()));
        }
    }
    let rustc = Command::new("rustc").arg("--version").output().map_err(|e| format!("cannot run rustc: {e}"))?;
    let version = String::from_utf8_lossy(&rustc.stdout);
    let here = version.split_whitespace().nth(1).unwrap_or_default();
    let numbers = |text: &str| -> Vec<u32> { text.split('.').map(|n| n.parse().unwrap_or(0)).collect() };
    if numbers(here) < numbers(msrv) {
        return Err(format!("rustc {here} is older than the workspace's rust-version {msrv}"));
    }
    Ok(())
}
