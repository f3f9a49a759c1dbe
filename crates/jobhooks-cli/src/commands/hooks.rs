//! `jobhooks hooks`: job hooks, and the events they fire on.

use crate::backend::Backend;
use crate::{Failure, Outcome, content_types, joined};
use clap::{Args, Subcommand};
use jobhooks_model::{Action, Condition, HttpMethod, JobHook, JobHookPatch, WEBHOOK_JOB, Webhook};

#[derive(Args)]
pub(crate) struct HookFields {
    /// A content type (`app_label.model`) that triggers the hook; repeat for several.
    #[arg(long = "content-type")]
    content_types: Vec<String>,
    /// The job hook receiver's class path.
    #[arg(long, conflicts_with = "webhook")]
    job: Option<String>,
    /// An event it fires on; repeat for several.
    #[arg(long = "on", value_enum, ignore_case = true)]
    events: Vec<EventArg>,
    /// Enable or disable it.
    #[arg(long)]
    enabled: Option<bool>,
    /// Run only for changes this condition admits: NetBox's event-rule JSON, e.g.
    /// '{"attr": "postchange.status", "value": "active"}' (`null` removes the conditions).
    #[arg(long, value_name = "JSON")]
    conditions: Option<String>,
    /// For an update, run only when this field changed; repeat for several.
    #[arg(long = "changed-field", value_name = "NAME")]
    changed_fields: Vec<String>,
    /// On `update`: run for any update again (remove the changed fields).
    #[arg(long, conflicts_with = "changed_fields")]
    any_field: bool,
    #[command(flatten)]
    webhook: WebhookFields,
}

/// An outbound webhook, in place of `--job`.
#[derive(Args)]
pub(crate) struct WebhookFields {
    /// Send an HTTP request to this URL (a Jinja2 template over Nautobot's webhook context)
    /// instead of running a job.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Sign the body with HMAC-SHA512 in X-Hook-Signature, as Nautobot does (an empty value
    /// removes the secret).
    #[arg(long, value_name = "SECRET")]
    webhook_secret: Option<String>,
    /// The request's method (default POST).
    #[arg(long, value_name = "METHOD")]
    webhook_method: Option<String>,
    /// A header, `Name: value` (the value a template); repeat for several. Given on `update`,
    /// they replace the stored headers.
    #[arg(long = "webhook-header", value_name = "NAME:VALUE")]
    webhook_headers: Vec<String>,
    /// The body, a template (default: Nautobot's webhook context as JSON).
    #[arg(long, value_name = "TEMPLATE")]
    webhook_body: Option<String>,
    /// The Content-Type header (default application/json).
    #[arg(long, value_name = "TYPE")]
    webhook_content_type: Option<String>,
    /// Do not verify the server's TLS certificate (`false` verifies again).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    webhook_insecure: Option<bool>,
}

impl WebhookFields {
    fn any(&self) -> bool {
        self.webhook.is_some()
            || self.webhook_secret.is_some()
            || self.webhook_method.is_some()
            || !self.webhook_headers.is_empty()
            || self.webhook_body.is_some()
            || self.webhook_content_type.is_some()
            || self.webhook_insecure.is_some()
    }

    /// The webhook `stored` becomes with the flags given laid over it; `None` when no flag is given.
    fn over(&self, stored: Option<&Webhook>) -> Result<Option<Webhook>, Failure> {
        if !self.any() {
            return Ok(None);
        }
        let mut webhook = match (&self.webhook, stored) {
            (Some(url), Some(stored)) => {
                let mut webhook = stored.clone();
                webhook.payload_url = url.clone();
                webhook
            }
            (Some(url), None) => Webhook::new(url.clone()),
            (None, Some(stored)) => stored.clone(),
            (None, None) => {
                return Err(Failure::bad_input("--webhook URL is required with the other --webhook options"));
            }
        };
        if let Some(secret) = &self.webhook_secret {
            webhook.secret = secret.clone();
        }
        if let Some(method) = &self.webhook_method {
            webhook.http_method = HttpMethod::from_name(method).ok_or_else(|| {
                Failure::bad_input(format!("--webhook-method {method}: use one of GET, POST, PUT, PATCH, DELETE"))
            })?;
        }
        if !self.webhook_headers.is_empty() {
            for header in &self.webhook_headers {
                if header.split_once(':').is_none_or(|(name, _)| name.trim().is_empty()) {
                    return Err(Failure::bad_input(format!("--webhook-header {header}: give it as `Name: value`")));
                }
            }
            webhook.additional_headers = self.webhook_headers.join("\n");
        }
        if let Some(body) = &self.webhook_body {
            webhook.body_template = body.clone();
        }
        if let Some(content_type) = &self.webhook_content_type {
            webhook.http_content_type = content_type.clone();
        }
        if let Some(insecure) = self.webhook_insecure {
            webhook.ssl_verification = !insecure;
        }
        Ok(Some(webhook))
    }
}

impl HookFields {
    /// `--conditions`, read: `None` when not given, `Some(None)` for `null`.
    fn conditions(&self) -> Result<Option<Option<Condition>>, Failure> {
        let Some(text) = &self.conditions else { return Ok(None) };
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|error| Failure::bad_input(format!("--conditions: not JSON: {error}")))?;
        if json.is_null() {
            return Ok(Some(None));
        }
        Condition::from_json(&json)
            .map(|condition| Some(Some(condition)))
            .map_err(|error| Failure::bad_input(format!("--conditions: {error}")))
    }

    /// `--changed-field` and `--any-field`: `None` when neither is given.
    fn changed_fields(&self) -> Option<Vec<String>> {
        if self.any_field {
            return Some(Vec::new());
        }
        (!self.changed_fields.is_empty()).then(|| self.changed_fields.clone())
    }
}

#[derive(Subcommand)]
pub(crate) enum HooksCommand {
    /// List hooks.
    List,
    /// Show one hook.
    Show {
        /// The hook's name.
        name: String,
    },
    /// Add a hook.
    Add {
        /// The hook's name.
        name: String,
        #[command(flatten)]
        fields: HookFields,
    },
    /// Update a hook: options given replace the stored values (events given replace all events).
    Update {
        /// The hook's name.
        name: String,
        /// A new name.
        #[arg(long)]
        rename: Option<String>,
        #[command(flatten)]
        fields: HookFields,
    },
    /// Delete a hook.
    Delete {
        /// The hook's name.
        name: String,
    },
}

/// A hook's event, as `--on` takes it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum EventArg {
    Create,
    Update,
    Delete,
}

impl From<EventArg> for Action {
    fn from(event: EventArg) -> Self {
        match event {
            EventArg::Create => Action::Create,
            EventArg::Update => Action::Update,
            EventArg::Delete => Action::Delete,
        }
    }
}

pub(crate) fn actions(events: &[EventArg]) -> Vec<Action> {
    events.iter().copied().map(Action::from).collect()
}

pub(crate) fn events(hook: &JobHook) -> String {
    hook.events().map(Action::as_str).collect::<Vec<_>>().join(",")
}

/// `hook` as printed: a webhook's secret masked.
fn shown(mut hook: JobHook) -> JobHook {
    if let Some(webhook) = &mut hook.webhook
        && !webhook.secret.is_empty()
    {
        webhook.secret = jobhooks_model::SECRET_MASK.to_owned();
    }
    hook
}

pub(crate) fn hook_text(h: &JobHook) -> String {
    let mut text = format!(
        "{}  [{}]  on {}  -> {}  ({})",
        h.name,
        joined(&h.content_types),
        events(h),
        h.job,
        if h.enabled { "enabled" } else { "disabled" }
    );
    if !h.changed_fields.is_empty() {
        text.push_str(&format!("  updates of {}", h.changed_fields.join(",")));
    }
    if let Some(conditions) = &h.conditions {
        text.push_str(&format!("  when {}", conditions.to_json()));
    }
    if let Some(webhook) = &h.webhook {
        text.push_str(&format!("  sends {} {}", webhook.http_method.as_str(), webhook.payload_url));
    }
    text
}

pub(crate) async fn hooks(s: &impl Backend, command: HooksCommand) -> Outcome {
    match command {
        HooksCommand::List => {
            let hooks: Vec<JobHook> = s.list_hooks().await?.into_iter().map(shown).collect();
            s.print(&hooks, |hooks| hooks.iter().map(hook_text).collect::<Vec<_>>().join("\n"));
        }
        HooksCommand::Show { name } => {
            let hook = shown(s.get_hook(&name).await?);
            s.print(&hook, hook_text);
        }
        HooksCommand::Add { name, fields } => {
            let webhook = fields.webhook.over(None)?;
            let job = match (&fields.job, &webhook) {
                (Some(job), _) => job.clone(),
                (None, Some(_)) => WEBHOOK_JOB.to_owned(),
                (None, None) => return Err(Failure::bad_input("--job (or --webhook URL) is required")),
            };
            let mut hook = JobHook::new(name, content_types(&fields.content_types)?, job).on(actions(&fields.events));
            hook.webhook = webhook;
            hook.enabled = fields.enabled.unwrap_or(true);
            hook.conditions = fields.conditions()?.flatten();
            hook.changed_fields = fields.changed_fields().unwrap_or_default();
            let hook = shown(s.create_hook(hook).await?);
            s.print(&hook, |h| format!("added {}", hook_text(h)));
        }
        HooksCommand::Update { name, rename, fields } => {
            let events = (!fields.events.is_empty()).then(|| actions(&fields.events));
            let has = |a: Action| events.as_ref().map(|e| e.contains(&a));
            let patch = JobHookPatch {
                name: rename,
                content_types: (!fields.content_types.is_empty())
                    .then(|| content_types(&fields.content_types))
                    .transpose()?,
                // A URL given makes the hook a webhook, sent by the built-in job.
                job: fields.job.clone().or_else(|| fields.webhook.webhook.as_ref().map(|_| WEBHOOK_JOB.to_owned())),
                enabled: fields.enabled,
                type_create: has(Action::Create),
                type_update: has(Action::Update),
                type_delete: has(Action::Delete),
                conditions: fields.conditions()?,
                changed_fields: fields.changed_fields(),
                webhook: match fields.webhook.any() {
                    true => Some(fields.webhook.over(s.get_hook(&name).await?.webhook.as_ref())?),
                    false => None,
                },
            };
            let hook = shown(s.update_hook(&name, patch).await?);
            s.print(&hook, |h| format!("updated {}", hook_text(h)));
        }
        HooksCommand::Delete { name } => {
            let hook = shown(s.delete_hook(&name).await?);
            s.print(&hook, |h| format!("deleted {}", h.name));
        }
    }
    Ok(())
}
