//! `jobhooks import nautobot FILE… --map NAUTOBOT_JOB=RECEIVER`: job hooks and job buttons
//! exported from Nautobot's REST API, created here with their jobs replaced by Rust receivers.

use std::path::{Path, PathBuf};

use clap::Args;
use jobhooks_model::{JobMapping, NautobotCatalog, read_nautobot_catalog};
use serde::Serialize;
use serde_json::Value;

use crate::backend::Backend;
use crate::{Failure, Outcome};

/// What `import nautobot` takes.
#[derive(Debug, Args)]
pub struct NautobotImport {
    /// Exports of Nautobot's REST API: the JSON of `GET /api/extras/job-hooks/` and
    /// `GET /api/extras/job-buttons/` (`?depth=1` names each job by its class path; a page or a
    /// bare list; `-` for stdin).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// A Nautobot job (its class path `module_name.job_class_name`, its name or its id) and the
    /// class path of the Rust receiver that replaces it; repeat for each job.
    #[arg(long = "map", value_name = "NAUTOBOT_JOB=RECEIVER")]
    map: Vec<String>,
    /// A JSON file mapping Nautobot jobs to Rust receivers, `{"nautobot.Job": "rust::Receiver"}`;
    /// `--map` adds to it.
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
}

/// What an import did, record by record.
#[derive(Debug, Default, Serialize)]
struct Report {
    /// The names of the hooks created.
    hooks: Vec<String>,
    /// The names of the buttons created.
    buttons: Vec<String>,
    /// The records not created, and why.
    skipped: Vec<Skipped>,
}

#[derive(Debug, Serialize)]
struct Skipped {
    kind: &'static str,
    name: String,
    reason: String,
}

/// Reads every file and the mapping before creating anything, so that a file that cannot be read
/// leaves the store as it was; then creates each record, reporting each one it could not map or
/// create. Exits 2 when one was skipped.
pub(crate) async fn import_from_nautobot(backend: &impl Backend, import: NautobotImport) -> Outcome {
    let mapping = mapping_of(&import)?;
    let mut catalog = NautobotCatalog::default();
    for file in &import.files {
        let export = read_json(file)?;
        let read = read_nautobot_catalog(&export, &mapping)
            .map_err(|error| Failure::bad_input(format!("{}: {error}", file.display())))?;
        catalog.hooks.extend(read.hooks);
        catalog.buttons.extend(read.buttons);
        catalog.unmapped.extend(read.unmapped);
    }
    let mut report = Report::default();
    for unmapped in catalog.unmapped {
        report.skipped.push(Skipped { kind: unmapped.kind, name: unmapped.name, reason: unmapped.reason });
    }
    for hook in catalog.hooks {
        let name = hook.name.clone();
        match backend.create_hook(hook).await {
            Ok(created) => report.hooks.push(created.name),
            Err(failure) => report.skipped.push(Skipped { kind: "job hook", name, reason: failure.reason() }),
        }
    }
    for button in catalog.buttons {
        let name = button.name.clone();
        match backend.create_button(button).await {
            Ok(created) => report.buttons.push(created.name),
            Err(failure) => report.skipped.push(Skipped { kind: "job button", name, reason: failure.reason() }),
        }
    }
    backend.print(&report, report_text);
    match report.skipped.len() {
        0 => Ok(()),
        skipped => Err(Failure::bad_input(format!(
            "{skipped} record(s) were not imported (listed above); map their jobs with --map and import them again"
        ))),
    }
}

fn report_text(report: &Report) -> String {
    let mut lines = vec![format!(
        "imported {} job hook(s) and {} job button(s) from Nautobot",
        report.hooks.len(),
        report.buttons.len()
    )];
    lines.extend(report.hooks.iter().map(|name| format!("  job hook {name}")));
    lines.extend(report.buttons.iter().map(|name| format!("  job button {name}")));
    lines.extend(
        report.skipped.iter().map(|skipped| format!("  skipped {} {}: {}", skipped.kind, skipped.name, skipped.reason)),
    );
    lines.join("\n")
}

fn mapping_of(import: &NautobotImport) -> Result<JobMapping, Failure> {
    let mut mapping = match &import.mapping {
        Some(file) => JobMapping::from_json(&read_json(file)?)
            .map_err(|error| Failure::bad_input(format!("{}: {error}", file.display())))?,
        None => JobMapping::default(),
    };
    for pair in &import.map {
        let Some((from, to)) = pair.split_once('=').filter(|(from, to)| !from.is_empty() && !to.is_empty()) else {
            return Err(Failure::bad_input(format!(
                "--map {pair}: give a Nautobot job and a Rust receiver as NAUTOBOT_JOB=RECEIVER"
            )));
        };
        mapping.add(from.trim(), to.trim());
    }
    if mapping.is_empty() {
        return Err(Failure::bad_input(
            "no job is mapped: give --map NAUTOBOT_JOB=RECEIVER (or --mapping FILE) for each Nautobot job",
        ));
    }
    Ok(mapping)
}

fn read_json(path: &Path) -> Result<Value, Failure> {
    let text =
        if path.as_os_str() == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) }
            .map_err(|error| Failure::bad_input(format!("cannot read {}: {error}", path.display())))?;
    serde_json::from_str(&text).map_err(|error| Failure::bad_input(format!("{} is not JSON: {error}", path.display())))
}
