//! `jobhooks results`: job results, their logs, waiting and replays.

use crate::backend::Backend;
use crate::{Failure, Outcome};
use clap::Subcommand;
use jobhooks_model::ports::ResultFilter;
use jobhooks_model::{ChangeId, JobStatus, RunId};

#[derive(Subcommand)]
pub(crate) enum ResultsCommand {
    /// List results, newest first.
    List {
        /// Only the results of this job (its class path).
        #[arg(long)]
        job: Option<String>,
        /// Only results in this state.
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<StatusArg>,
        /// Only the results of the runs this change queued.
        #[arg(long)]
        change: Option<u64>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show a result with its log.
    Show {
        /// The run's id (`jobhooks results list` shows them).
        run: u64,
    },
    /// Queue a dead-lettered run again.
    Replay {
        /// The run's id (`jobhooks results list` shows them).
        run: u64,
    },
    /// Wait until a run has ended and show its result; exits 1 unless it succeeded. On a local
    /// store this runs a dispatcher until then; with --url the server's dispatcher runs it.
    Wait {
        /// The run's id (`jobhooks results list` shows them).
        run: u64,
    },
}

/// A run's state, as `--status` takes it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum StatusArg {
    Pending,
    Started,
    Success,
    Failure,
    Retrying,
    #[value(alias = "dead_lettered")]
    DeadLettered,
}

impl From<StatusArg> for JobStatus {
    fn from(status: StatusArg) -> Self {
        match status {
            StatusArg::Pending => JobStatus::Pending,
            StatusArg::Started => JobStatus::Started,
            StatusArg::Success => JobStatus::Success,
            StatusArg::Failure => JobStatus::Failure,
            StatusArg::Retrying => JobStatus::Retrying,
            StatusArg::DeadLettered => JobStatus::DeadLettered,
        }
    }
}

pub(crate) fn result_text(r: &jobhooks_model::JobResult) -> String {
    let mut text = format!(
        "run {}  {}  {}  as {}  attempts {}",
        r.id,
        r.status,
        r.job,
        r.user.as_deref().unwrap_or("-"),
        r.attempts
    );
    // Columns as wide as their widest cell (a level's Display ignores width flags).
    let level_width = r.logs.iter().map(|entry| entry.level.as_str().len()).max().unwrap_or(0);
    let grouping_width = r.logs.iter().map(|entry| entry.grouping.chars().count()).max().unwrap_or(0);
    for entry in &r.logs {
        text.push_str(&format!(
            "\n  {:<level_width$}  {:<grouping_width$}  {}",
            entry.level.as_str(),
            entry.grouping,
            entry.message
        ));
    }
    text
}

/// Waits until `run` has ended and shows its result; a failure unless it succeeded.
pub(crate) async fn shown_when_ended(s: &impl Backend, run: RunId) -> Outcome {
    let result = s.wait_for(run).await?;
    s.print(&result, result_text);
    if result.status != JobStatus::Success {
        return Err(Failure::failed(format!("run {run} ended {}", result.status)));
    }
    Ok(())
}

pub(crate) async fn show_result(s: &impl Backend, run: RunId) -> Outcome {
    let result = s.get_result(run).await?;
    s.print(&result, result_text);
    Ok(())
}

pub(crate) async fn results(s: &impl Backend, command: ResultsCommand) -> Outcome {
    match command {
        ResultsCommand::List { job, status, change, limit } => {
            let mut filter = ResultFilter::default().limit(limit);
            filter.jobs.extend(job);
            filter.statuses.extend(status.map(JobStatus::from));
            filter.changes.extend(change.map(ChangeId));
            let results = s.list_results(filter).await?;
            s.print(&results, |results| {
                results
                    .iter()
                    .map(|r| {
                        format!(
                            "{:>5}  {:<13} {}  as {}",
                            r.id,
                            r.status.to_string(),
                            r.job,
                            r.user.as_deref().unwrap_or("-")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ResultsCommand::Show { run } => show_result(s, RunId(run)).await?,
        ResultsCommand::Wait { run } => shown_when_ended(s, RunId(run)).await?,
        ResultsCommand::Replay { run } => {
            s.replay(RunId(run)).await?;
            s.print(&serde_json::json!({"run": run}), |_| format!("queued run {run} again"));
        }
    }
    Ok(())
}
