//! `jobhooks objects`: the object repository, written through change sessions.

use std::io::Read;

use crate::backend::Backend;
use crate::{Failure, Outcome, object_ref};
use clap::Subcommand;
use jobhooks_model::{Object, Value};
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum ObjectsCommand {
    /// Create or update an object with JSON data from DATA, `--file`, or stdin (`-`).
    Put {
        /// The object's content type (`app_label.model`, e.g. `dcim.device`).
        content_type: String,
        /// The object's id.
        id: String,
        /// The object's data as JSON, or `-` for stdin.
        data: Option<String>,
        /// Read the data from this file.
        #[arg(long)]
        file: Option<PathBuf>,
        /// How the object reads to a person (default: what it read as, else its id).
        #[arg(long)]
        repr: Option<String>,
        /// Who makes the change: required on a local store; with --url the token's user acts.
        #[arg(long)]
        user: Option<String>,
    },
    /// Show an object.
    Show {
        /// The object's content type (`app_label.model`, e.g. `dcim.device`).
        content_type: String,
        /// The object's id.
        id: String,
    },
    /// Delete an object.
    Delete {
        /// The object's content type (`app_label.model`, e.g. `dcim.device`).
        content_type: String,
        /// The object's id.
        id: String,
        /// Who acts: required on a local store; with --url the token's user acts.
        #[arg(long)]
        user: Option<String>,
    },
}

pub(crate) fn read_data(data: Option<String>, file: Option<PathBuf>) -> Result<Value, Failure> {
    let text = match (data, file) {
        (Some(_), Some(_)) => return Err(Failure::bad_input("give the data as an argument or with --file, not both")),
        (Some(dash), None) if dash == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::failed(format!("cannot read stdin: {e}")))?;
            text
        }
        (Some(text), None) => text,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", path.display())))?,
        (None, None) => {
            return Err(Failure::bad_input("give the object's data as JSON: an argument, --file PATH, or - for stdin"));
        }
    };
    serde_json::from_str(&text).map_err(|e| Failure::bad_input(format!("the object's data is not valid JSON: {e}")))
}

pub(crate) async fn objects(s: &impl Backend, command: ObjectsCommand) -> Outcome {
    match command {
        ObjectsCommand::Put { content_type, id, data, file, repr, user } => {
            let reference = object_ref(&content_type, &id)?;
            let data = read_data(data, file)?;
            // The data's own rule first, whoever acts.
            Object::new(reference.clone(), id.as_str(), data.clone())?;
            let receipt = s.save_object(&reference, repr, data, user.as_deref()).await?;
            s.print(&receipt, |r| {
                format!(
                    "committed change(s) {:?}, queued hook run(s) {:?}",
                    r.changes.iter().map(|c| c.0).collect::<Vec<_>>(),
                    r.runs.iter().map(|r| r.0).collect::<Vec<_>>()
                )
            });
        }
        ObjectsCommand::Show { content_type, id } => {
            let reference = object_ref(&content_type, &id)?;
            let object = s.get_object(&reference).await?;
            s.print(&object, |o| {
                format!(
                    "{} {} \"{}\"\n{}",
                    o.content_type(),
                    o.id(),
                    o.repr(),
                    serde_json::to_string_pretty(&o.data()).unwrap_or_default()
                )
            });
        }
        ObjectsCommand::Delete { content_type, id, user } => {
            let reference = object_ref(&content_type, &id)?;
            let receipt = s.delete_object(&reference, user.as_deref()).await?;
            s.print(&receipt, |r| {
                format!("deleted {reference}; queued hook run(s) {:?}", r.runs.iter().map(|r| r.0).collect::<Vec<_>>())
            });
        }
    }
    Ok(())
}
