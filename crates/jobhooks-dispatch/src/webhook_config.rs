//! How outbound webhooks are sent (the sender itself is the `webhooks` feature's).

use std::time::Duration;

use jobhooks_model::WebhookPolicy;

/// How webhooks are sent: where they may go, and how long a request may take.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// Where webhooks may send (default: anywhere).
    pub policy: WebhookPolicy,
    /// How long one request may take, connecting included (default 10 s).
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self { policy: WebhookPolicy::anywhere(), timeout: Duration::from_secs(10) }
    }
}

impl WebhookConfig {
    /// With `policy`.
    #[must_use]
    pub fn policy(mut self, policy: WebhookPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// With `timeout`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}
