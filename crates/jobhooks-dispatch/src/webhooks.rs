//! The built-in job that sends outbound webhooks ([`WEBHOOK_JOB`]): a run of it reads its hook,
//! renders the request from Nautobot's webhook context and sends it.
//!
//! - A 2xx answer ends the run in success; a 4xx or a 3xx (redirects are never followed) fails it
//!   at once; a 5xx, a timeout or a connection error is an error the job's retry policy retries,
//!   then dead-letters. Every attempt of one run sends the same `Idempotency-Key` (the run's id).
//! - A disabled or deleted hook sends nothing: the run fails, saying so.
//! - The allow-list ([`WebhookPolicy`]) is checked again before each request: an address given
//!   in the URL must lie in its networks; a name must match one of its hosts, or every address it
//!   resolves to must lie in its networks, and the request goes to those addresses.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use jobhooks_model::ports::Catalog;
use jobhooks_model::{
    Action, HookFilter, JobContext, JobError, JobHook, JobHookReceiver, Object, ObjectChange, StorageFailure,
    WEBHOOK_JOB, WebhookPolicy, async_trait, webhook_context,
};

use crate::WebhookConfig;
use jobhooks_register::{JobMeta, register_job_hook_receiver};
use uuid::Uuid;

/// Reads a hook by id: the part of the store the webhook job needs.
#[async_trait]
pub(crate) trait HookLookup: Send + Sync {
    async fn hook(&self, id: Uuid) -> Result<Option<JobHook>, StorageFailure>;
}

#[async_trait]
impl<S: Catalog + ?Sized> HookLookup for S {
    async fn hook(&self, id: Uuid) -> Result<Option<JobHook>, StorageFailure> {
        Ok(self.find_hooks(&HookFilter::id(id)).await?.into_iter().next())
    }
}

/// What the webhook job reaches through the run's shared data; the dispatcher adds it at start.
pub(crate) struct WebhookSupport {
    hooks: Arc<dyn HookLookup>,
    config: WebhookConfig,
    /// The clients, built on first use: one verifying certificates, one not.
    verifying: OnceLock<Result<reqwest::Client, String>>,
    trusting: OnceLock<Result<reqwest::Client, String>>,
}

impl WebhookSupport {
    pub(crate) fn new(hooks: Arc<dyn HookLookup>, config: WebhookConfig) -> Self {
        Self { hooks, config, verifying: OnceLock::new(), trusting: OnceLock::new() }
    }

    fn client(&self, verify: bool) -> Result<reqwest::Client, String> {
        let slot = if verify { &self.verifying } else { &self.trusting };
        slot.get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(self.config.timeout)
                .danger_accept_invalid_certs(!verify)
                .dns_resolver(Arc::new(CheckedResolver { policy: self.config.policy.clone() }))
                .build()
                .map_err(|error| format!("cannot build the HTTP client: {error}"))
        })
        .clone()
    }
}

/// Resolves a host and refuses it unless the allow-list admits it by name or every address it
/// resolves to: the request then goes to those addresses, not to a second resolution.
struct CheckedResolver {
    policy: WebhookPolicy,
}

/// A destination the allow-list refuses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
            if !policy.admits_resolved(&host, &ips) {
                let shown: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
                return Err(Box::new(Refused(format!(
                    "{host} resolves to {}, which the webhook allow-list does not admit",
                    if shown.is_empty() { "nothing".to_owned() } else { shown.join(", ") }
                ))) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The built-in job hook receiver that sends a hook's webhook.
#[derive(Default)]
pub struct WebhookSender;

/// How the webhook job is registered.
pub(crate) const WEBHOOK_META: JobMeta =
    JobMeta::new().class_path(WEBHOOK_JOB).name("Webhook").description("Sends a hook's outbound webhook (built in)");

register_job_hook_receiver!(WebhookSender, WEBHOOK_META);

#[async_trait]
impl JobHookReceiver for WebhookSender {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        change: &ObjectChange,
        _action: Action,
        _changed_object: Option<Object>,
    ) -> Result<(), JobError> {
        let Some(support) = ctx.data::<WebhookSupport>() else {
            ctx.log_failure("This dispatcher sends no webhooks: start it with Dispatcher::start");
            return Ok(());
        };
        let Some(id) = ctx.run().hook else {
            ctx.log_failure("The run names no webhook hook: nothing was sent");
            return Ok(());
        };
        let hook = match support.hooks.hook(id).await? {
            Some(hook) if hook.enabled => hook,
            Some(hook) => {
                ctx.log_failure(format!("The webhook {} is disabled: nothing was sent", hook.name));
                return Ok(());
            }
            None => {
                ctx.log_failure(format!("The webhook hook {id} no longer exists: nothing was sent"));
                return Ok(());
            }
        };
        let Some(webhook) = &hook.webhook else {
            ctx.log_failure(format!("The hook {} is no longer a webhook: nothing was sent", hook.name));
            return Ok(());
        };
        let context = webhook_context(change, ctx.now());
        let request = match webhook.render(&context, ctx.run().run_id) {
            Ok(request) => request,
            Err(error) => {
                ctx.log_failure(format!("The webhook {} was not sent: {error}", hook.name));
                return Ok(());
            }
        };
        // An address written in the URL is never resolved: check it here.
        let url = match reqwest::Url::parse(&request.url) {
            Ok(url) => url,
            Err(error) => {
                ctx.log_failure(format!(
                    "The webhook {} was not sent: `{}` is not a URL: {error}",
                    hook.name, request.url
                ));
                return Ok(());
            }
        };
        let literal =
            url.host_str().and_then(|host| host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok());
        if let Some(address) = literal
            && !support.config.policy.admits_address(address)
        {
            ctx.log_failure(format!(
                "The webhook {} was not sent: {address} is not an address the webhook allow-list admits",
                hook.name
            ));
            return Ok(());
        }
        let client = support.client(webhook.ssl_verification)?;
        let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes())?;
        let mut outgoing = client.request(method, url).body(request.body);
        for (name, value) in &request.headers {
            outgoing = outgoing.header(name.as_str(), value.as_str());
        }
        ctx.log_info(format!(
            "Sending {} {} ({} {})",
            request.method.as_str(),
            request.url,
            context["model"].as_str().unwrap_or_default(),
            change.action.past_tense()
        ));
        match outgoing.send().await {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    ctx.log_success(format!("{} answered {status}", request.url));
                    Ok(())
                } else if status.is_server_error() {
                    Err(format!("{} answered {status}", request.url).into())
                } else if status.is_redirection() {
                    ctx.log_failure(format!("{} answered {status}: redirects are not followed", request.url));
                    Ok(())
                } else {
                    ctx.log_failure(format!("{} answered {status}; not retried", request.url));
                    Ok(())
                }
            }
            Err(error) => {
                let chain = jobhooks_model::error_chain(&error);
                if refused(&error) {
                    ctx.log_failure(format!("The webhook {} was not sent: {chain}", hook.name));
                    Ok(())
                } else {
                    Err(format!("{}: {chain}", request.url).into())
                }
            }
        }
    }
}

/// Whether the allow-list refused the request's destination (somewhere in `error`'s sources).
fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.downcast_ref::<Refused>().is_some() {
            return true;
        }
        source = error.source();
    }
    false
}
