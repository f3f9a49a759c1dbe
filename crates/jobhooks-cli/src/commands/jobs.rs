//! `jobhooks jobs`: list, enable, disable and restore jobs.

use crate::backend::Backend;
use crate::{Outcome, table};
use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum JobsCommand {
    /// List jobs (hidden receivers only with --all).
    List {
        /// Include hidden jobs.
        #[arg(long)]
        all: bool,
    },
    /// Enable a job.
    Enable {
        /// The job's class path (`jobhooks jobs list --all` shows them).
        class_path: String,
    },
    /// Disable a job.
    Disable {
        /// The job's class path (`jobhooks jobs list --all` shows them).
        class_path: String,
    },
    /// Enable again what a full job sync disabled when it found jobs no longer linked (the jobs
    /// themselves and their hooks and buttons), once they are linked again. Every such job, or
    /// only those named.
    Restore {
        /// Restore only these jobs.
        class_paths: Vec<String>,
    },
}

pub(crate) async fn jobs(s: &impl Backend, command: JobsCommand) -> Outcome {
    match command {
        JobsCommand::List { all } => {
            let every = s.list_jobs().await?;
            let hidden = every.iter().filter(|job| job.hidden).count();
            let jobs: Vec<_> = every.into_iter().filter(|j| all || !j.hidden).collect();
            if !all && hidden > 0 && !s.json() {
                crate::say::hint(&format!(
                    "{hidden} hidden job(s) not shown: receivers are hidden by default; `jobs list --all` shows them"
                ));
            }
            s.print(&jobs, |jobs| {
                let header = ["CLASS PATH", "NAME", "KIND", "INSTALLED", "ENABLED"];
                table(
                    &header,
                    jobs.iter().map(|j| {
                        vec![
                            j.class_path.clone(),
                            j.name.clone(),
                            j.kind.to_string(),
                            j.installed.to_string(),
                            j.enabled.to_string(),
                        ]
                    }),
                )
            });
        }
        JobsCommand::Enable { class_path } => {
            let job = s.set_job_enabled(&class_path, true).await?;
            s.print(&job, |j| format!("enabled {}", j.class_path));
        }
        JobsCommand::Disable { class_path } => {
            let job = s.set_job_enabled(&class_path, false).await?;
            s.print(&job, |j| format!("disabled {}", j.class_path));
        }
        JobsCommand::Restore { class_paths } => {
            let report = s.restore_jobs(&class_paths).await?;
            s.print(&report, restore_text);
        }
    }
    Ok(())
}

pub(crate) fn restore_text(report: &jobhooks_model::JobRestoreReport) -> String {
    let mut lines = Vec::new();
    if report.restored.is_empty() {
        lines.push("nothing to restore".to_owned());
    }
    for job in &report.restored {
        lines.push(format!("restored {job}"));
    }
    if !report.enabled_hooks.is_empty() {
        lines.push(format!("enabled hooks: {}", report.enabled_hooks.join(", ")));
    }
    if !report.enabled_buttons.is_empty() {
        lines.push(format!("enabled buttons: {}", report.enabled_buttons.join(", ")));
    }
    for job in &report.not_installed {
        lines.push(format!(
            "not restored: {job} is still not installed (link it, start the program that registers it, then restore again)"
        ));
    }
    lines.join("\n")
}
