//! `jobhooks buttons`: job buttons, shown and pressed.

use crate::backend::Backend;
use crate::commands::results::shown_when_ended;
use crate::{Failure, Outcome, content_types, joined, object_ref};
use clap::{Args, Subcommand};
use jobhooks_model::{ButtonClass, JobButton, JobButtonPatch};

#[derive(Args)]
pub(crate) struct ButtonFields {
    /// A content type it appears on; repeat for several.
    #[arg(long = "content-type")]
    content_types: Vec<String>,
    /// The job button receiver's class path.
    #[arg(long)]
    job: Option<String>,
    /// The label, a Jinja2 template with `obj`, `user` and `perms`.
    #[arg(long)]
    text: Option<String>,
    /// Order within its group.
    #[arg(long)]
    weight: Option<i32>,
    /// Its group.
    #[arg(long)]
    group: Option<String>,
    /// How the button looks.
    #[arg(long = "class", value_enum, ignore_case = true)]
    button_class: Option<ClassArg>,
    /// Ask before running.
    #[arg(long)]
    confirmation: Option<bool>,
    /// Enable or disable it.
    #[arg(long)]
    enabled: Option<bool>,
}

#[derive(Subcommand)]
pub(crate) enum ButtonsCommand {
    /// List buttons.
    List,
    /// Add a button.
    Add {
        /// The button's name.
        name: String,
        #[command(flatten)]
        fields: ButtonFields,
    },
    /// Update a button.
    Update {
        /// The button's name.
        name: String,
        /// A new name.
        #[arg(long)]
        rename: Option<String>,
        #[command(flatten)]
        fields: ButtonFields,
    },
    /// Delete a button.
    Delete {
        /// The button's name.
        name: String,
    },
    /// The buttons an object shows a user.
    For {
        /// The object's content type (`app_label.model`, e.g. `dcim.device`).
        content_type: String,
        /// The object's id.
        id: String,
        /// Who acts: required on a local store; with --url the token's user acts.
        #[arg(long)]
        user: Option<String>,
    },
    /// Press a button on an object as a user.
    Press {
        /// The button's name.
        button: String,
        /// The object's content type (`app_label.model`, e.g. `dcim.device`).
        content_type: String,
        /// The object's id.
        id: String,
        /// Who acts: required on a local store; with --url the token's user acts.
        #[arg(long)]
        user: Option<String>,
        /// Run the dispatcher until the run (and what it triggers) finishes, and show its result.
        #[arg(long)]
        wait: bool,
    },
}

/// A button's look, as `--class` takes it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum ClassArg {
    Default,
    Primary,
    Success,
    Info,
    Warning,
    Danger,
    Link,
}

impl From<ClassArg> for ButtonClass {
    fn from(class: ClassArg) -> Self {
        match class {
            ClassArg::Default => ButtonClass::Default,
            ClassArg::Primary => ButtonClass::Primary,
            ClassArg::Success => ButtonClass::Success,
            ClassArg::Info => ButtonClass::Info,
            ClassArg::Warning => ButtonClass::Warning,
            ClassArg::Danger => ButtonClass::Danger,
            ClassArg::Link => ButtonClass::Link,
        }
    }
}

pub(crate) fn button_text(b: &JobButton) -> String {
    format!(
        "{}  [{}]  \"{}\"  -> {}  weight {}{}  ({})",
        b.name,
        joined(&b.content_types),
        b.text,
        b.job,
        b.weight,
        b.group_name.as_deref().map(|g| format!(" group {g}")).unwrap_or_default(),
        if b.enabled { "enabled" } else { "disabled" }
    )
}

pub(crate) async fn buttons(s: &impl Backend, command: ButtonsCommand) -> Outcome {
    match command {
        ButtonsCommand::List => {
            let buttons = s.list_buttons().await?;
            s.print(&buttons, |buttons| buttons.iter().map(button_text).collect::<Vec<_>>().join("\n"));
        }
        ButtonsCommand::Add { name, fields } => {
            let job = fields.job.ok_or_else(|| Failure::bad_input("--job is required"))?;
            let text = fields.text.ok_or_else(|| Failure::bad_input("--text is required"))?;
            let mut button = JobButton::new(name, content_types(&fields.content_types)?, text, job);
            button.weight = fields.weight.unwrap_or(button.weight);
            button.group_name = fields.group;
            button.button_class = fields.button_class.map(ButtonClass::from).unwrap_or_default();
            button.confirmation = fields.confirmation.unwrap_or(true);
            button.enabled = fields.enabled.unwrap_or(true);
            let button = s.create_button(button).await?;
            s.print(&button, |b| format!("added {}", button_text(b)));
        }
        ButtonsCommand::Update { name, rename, fields } => {
            let patch = JobButtonPatch {
                name: rename,
                content_types: (!fields.content_types.is_empty())
                    .then(|| content_types(&fields.content_types))
                    .transpose()?,
                text: fields.text,
                job: fields.job,
                weight: fields.weight,
                group_name: fields.group.map(|g| (!g.is_empty()).then_some(g)),
                button_class: fields.button_class.map(ButtonClass::from),
                confirmation: fields.confirmation,
                enabled: fields.enabled,
            };
            let button = s.update_button(&name, patch).await?;
            s.print(&button, |b| format!("updated {}", button_text(b)));
        }
        ButtonsCommand::Delete { name } => {
            let button = s.delete_button(&name).await?;
            s.print(&button, |b| format!("deleted {}", b.name));
        }
        ButtonsCommand::For { content_type, id, user } => {
            let reference = object_ref(&content_type, &id)?;
            let shown = s.buttons_for(&reference, user.as_deref()).await?;
            s.print(&shown, |shown| {
                shown
                    .iter()
                    .map(|b| {
                        let state = match (&b.error, b.disabled) {
                            (Some(error), _) => format!("disabled: {error}"),
                            (None, true) => "disabled".to_owned(),
                            (None, false) => "enabled".to_owned(),
                        };
                        format!("{}  \"{}\"  ({state})", b.name, b.text)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ButtonsCommand::Press { button, content_type, id, user, wait } => {
            let reference = object_ref(&content_type, &id)?;
            let run = s.press(&button, &reference, user.as_deref()).await?;
            if wait {
                // Said first, so that a wait that fails never leaves the caller without the run.
                crate::say::progress(&format!(
                    "queued run {run}; waiting for it to end (reading its result needs extras.view_jobresult)"
                ));
                return shown_when_ended(s, run).await.map_err(|failure| {
                    failure.context(&format!(
                    "run {run} was queued, but waiting for it failed (`jobhooks results show {run}` shows it to a user \
                     with extras.view_jobresult)"
                ))
                });
            }
            s.print(&serde_json::json!({"run": run}), |_| format!("queued run {run}"));
        }
    }
    Ok(())
}
