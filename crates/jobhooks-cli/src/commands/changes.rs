//! `jobhooks changes`: the change log.

use clap::Subcommand;
use jobhooks_model::ChangeId;

use crate::backend::Backend;
use crate::{Outcome, object_ref};

#[derive(Subcommand)]
pub(crate) enum ChangesCommand {
    /// List changes, newest first (of one object with --object).
    List {
        /// `app_label.model` and id of the object.
        #[arg(long, num_args = 2, value_names = ["CONTENT_TYPE", "ID"])]
        object: Option<Vec<String>>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show a change with its snapshots.
    Show {
        /// The change's id (`jobhooks changes list` shows them).
        id: u64,
    },
}

pub(crate) async fn changes(s: &impl Backend, command: ChangesCommand) -> Outcome {
    match command {
        ChangesCommand::List { object, limit } => {
            let object = match object.as_deref() {
                Some([content_type, id]) => Some(object_ref(content_type, id)?),
                _ => None,
            };
            let changes = s.changes(object.as_ref(), limit).await?;
            s.print(&changes, |changes| {
                changes
                    .iter()
                    .map(|c| format!("{:>5}  {}  [{}]", c.id, c, c.change_context))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ChangesCommand::Show { id } => {
            let change = s.get_change(ChangeId(id)).await?;
            let snapshots = change.get_snapshots();
            let shown = serde_json::json!({"change": change, "snapshots": snapshots});
            s.print(&shown, |_| {
                format!(
                    "{}  {}\ncontext: {} {}\nsnapshots: {}",
                    change.id,
                    change,
                    change.change_context,
                    change.change_context_detail,
                    serde_json::to_string_pretty(&snapshots).unwrap_or_default()
                )
            });
        }
    }
    Ok(())
}
