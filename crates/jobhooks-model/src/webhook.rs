//! Outbound webhooks: a hook that, instead of running a Rust receiver of its own, sends an HTTP
//! request built from Nautobot's webhook context, signed as Nautobot signs it. Its runs go through
//! the durable queue like any other (the built-in job [`WEBHOOK_JOB`]), so a delivery is retried
//! per the retry policy and dead-lettered after the last attempt: its effect is at least once,
//! and every request carries the run's id as an idempotency key ([`IDEMPOTENCY_HEADER`]).
//!
//! The fields are Nautobot's `Webhook` model's: `payload_url`, `http_method`, `http_content_type`,
//! `additional_headers` (one `Name: value` per line), `body_template`, `secret` and
//! `ssl_verification`. The URL, the headers and the body are Jinja2 templates (minijinja) over the
//! context Nautobot gives them: `event`, `timestamp`, `model`, `username`, `request_id`, `data` and
//! `snapshots`. An empty body template sends the context itself as JSON, Nautobot's default body.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{ObjectChange, RunId, ValidationErrors};

/// The class path of the built-in job that sends webhooks. Every program that links the
/// dispatcher registers it; it starts enabled (disabling it stops every webhook).
pub const WEBHOOK_JOB: &str = "jobhooks::webhooks::Webhook";

/// The header every webhook request carries the run's id in: the same on every attempt of one
/// delivery, so that a receiver can drop repeats.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// What an API answers in place of a webhook's secret; written back unchanged, it keeps the
/// stored secret.
pub const SECRET_MASK: &str = "********";

/// The most a rendered template may compute: minijinja's fuel, so a template cannot loop forever.
const TEMPLATE_FUEL: u64 = 100_000;

/// The HTTP methods a webhook may use (Nautobot's choices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST, the default.
    #[default]
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl HttpMethod {
    /// Every method.
    pub const ALL: [HttpMethod; 5] =
        [HttpMethod::Get, HttpMethod::Post, HttpMethod::Put, HttpMethod::Patch, HttpMethod::Delete];

    /// The method's name: `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }

    /// The method named `name`, in any case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str().eq_ignore_ascii_case(name))
    }
}

fn yes() -> bool {
    true
}

fn json_content_type() -> String {
    "application/json".into()
}

/// Where and how a webhook hook sends its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Webhook {
    /// The URL, a template; its scheme is `http://` or `https://`, written out.
    pub payload_url: String,
    /// The method (default POST).
    #[serde(default)]
    pub http_method: HttpMethod,
    /// The `Content-Type` header (default `application/json`).
    #[serde(default = "json_content_type")]
    pub http_content_type: String,
    /// More headers, a template rendering to one `Name: value` per line.
    #[serde(default)]
    pub additional_headers: String,
    /// The body, a template; empty: the context as JSON (Nautobot's default body).
    #[serde(default)]
    pub body_template: String,
    /// Signs the body with HMAC-SHA512 in `X-Hook-Signature` when not empty. Never sent.
    #[serde(default)]
    pub secret: String,
    /// Whether an HTTPS server's certificate is verified (default true).
    #[serde(default = "yes")]
    pub ssl_verification: bool,
}

/// A webhook's request, rendered: what the dispatcher sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookRequest {
    /// The method.
    pub method: HttpMethod,
    /// The URL.
    pub url: String,
    /// Every header: `Content-Type`, the additional ones, `X-Hook-Signature` when the webhook has
    /// a secret, and [`IDEMPOTENCY_HEADER`].
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a webhook's request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A template did not render.
    #[error("the {field} template does not render: {reason}")]
    Template {
        /// `payload_url`, `additional_headers` or `body_template`.
        field: &'static str,
        /// minijinja's words.
        reason: String,
    },
    /// The URL, rendered, is not an http(s) URL.
    #[error("the payload URL `{url}` is not an http:// or https:// URL")]
    Url {
        /// The rendered URL.
        url: String,
    },
    /// A rendered header line is not `Name: value`.
    #[error("the header line `{line}` is not `Name: value`")]
    Header {
        /// The line.
        line: String,
    },
}

impl Webhook {
    /// A webhook POSTing Nautobot's default body as JSON to `payload_url`, unsigned, verifying TLS.
    ///
    /// ```
    /// use jobhooks_model::{HttpMethod, Webhook};
    /// let webhook = Webhook::new("https://hooks.example/inventory")
    ///     .method(HttpMethod::Put)
    ///     .header("Authorization", "Bearer {{ username }}")
    ///     .secret("s3cret");
    /// assert_eq!(webhook.additional_headers, "Authorization: Bearer {{ username }}");
    /// ```
    pub fn new(payload_url: impl Into<String>) -> Self {
        Self {
            payload_url: payload_url.into(),
            http_method: HttpMethod::Post,
            http_content_type: json_content_type(),
            additional_headers: String::new(),
            body_template: String::new(),
            secret: String::new(),
            ssl_verification: true,
        }
    }

    /// With `method`.
    pub fn method(mut self, method: HttpMethod) -> Self {
        self.http_method = method;
        self
    }

    /// With one more header line, `name: value` (the value a template).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if !self.additional_headers.is_empty() {
            self.additional_headers.push('\n');
        }
        self.additional_headers.push_str(&format!("{name}: {value}"));
        self
    }

    /// With `template` as the body.
    pub fn body(mut self, template: impl Into<String>) -> Self {
        self.body_template = template.into();
        self
    }

    /// Signing with `secret`.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = secret.into();
        self
    }

    /// Without verifying the server's certificate.
    pub fn without_tls_verification(mut self) -> Self {
        self.ssl_verification = false;
        self
    }

    /// The host the URL names when its scheme and host are written out (not templated).
    pub fn literal_host(&self) -> Option<String> {
        host_of(&self.payload_url).filter(|host| !host.contains("{{") && !host.contains("{%"))
    }

    /// Adds a message under `webhook` to `errors` for each thing wrong with it: a URL that is not
    /// http(s), a template that does not compile, a header line that is not `Name: value`, a
    /// content type with a line break.
    pub fn check(&self, errors: &mut ValidationErrors) {
        let mut problem = |message: String| errors.add("webhook", message);
        let url = self.payload_url.trim();
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || host_of(url).is_none() {
            problem(format!(
                "payload_url: `{url}` is not an http:// or https:// URL (its scheme and host written out)"
            ));
        }
        let environment = environment();
        for (field, template) in [
            ("payload_url", &self.payload_url),
            ("additional_headers", &self.additional_headers),
            ("body_template", &self.body_template),
        ] {
            if let Err(error) = environment.template_from_str(template) {
                problem(format!("{field}: the template does not compile: {}", error_text(&error)));
            }
        }
        if !self.additional_headers.contains("{%") {
            for line in self.additional_headers.lines().filter(|line| !line.trim().is_empty()) {
                if header_line(line).is_none() {
                    problem(format!("additional_headers: `{line}` is not `Name: value`"));
                }
            }
        }
        if self.http_content_type.trim().is_empty() || self.http_content_type.contains(['\r', '\n']) {
            problem("http_content_type: a content type on one line is required".into());
        }
    }

    /// The request for the change `context` describes (see [`webhook_context`]), sent by run
    /// `run`.
    pub fn render(&self, context: &Value, run: RunId) -> Result<WebhookRequest, WebhookError> {
        let environment = environment();
        let render = |field: &'static str, template: &str| {
            environment
                .render_str(template, context)
                .map_err(|error| WebhookError::Template { field, reason: error_text(&error) })
        };
        let url = render("payload_url", &self.payload_url)?.trim().to_owned();
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || host_of(&url).is_none() {
            return Err(WebhookError::Url { url });
        }
        let mut headers = vec![("Content-Type".to_owned(), self.http_content_type.trim().to_owned())];
        for line in render("additional_headers", &self.additional_headers)?.lines() {
            if line.trim().is_empty() {
                continue;
            }
            let (name, value) = header_line(line).ok_or_else(|| WebhookError::Header { line: line.to_owned() })?;
            headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
            headers.push((name.to_owned(), value.to_owned()));
        }
        let body = if self.body_template.is_empty() {
            serde_json::to_vec(context).unwrap_or_default()
        } else {
            render("body_template", &self.body_template)?.into_bytes()
        };
        if !self.secret.is_empty() {
            headers.push((crate::SIGNATURE_HEADER.to_owned(), crate::sign_body(&self.secret, &body)));
        }
        headers.push((IDEMPOTENCY_HEADER.to_owned(), run.0.to_string()));
        Ok(WebhookRequest { method: self.http_method, url, headers, body })
    }
}

/// Nautobot's webhook context for `change`, sent at `now`: `event` (`created`, `updated`,
/// `deleted`), `timestamp` (as Python prints a time), `model` (the model's name), `username`,
/// `request_id`, `data` (the object's data) and `snapshots`.
pub fn webhook_context(change: &ObjectChange, now: OffsetDateTime) -> Value {
    let content_type = change.changed_object_type.as_str();
    let model = content_type.split_once('.').map_or(content_type, |(_, model)| model);
    let timestamp = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00:00",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    );
    serde_json::json!({
        "event": change.action.past_tense(),
        "timestamp": timestamp,
        "model": model,
        "username": change.user_name,
        "request_id": change.request_id.to_string(),
        "data": change.object_data,
        "snapshots": change.get_snapshots(),
    })
}

fn environment() -> minijinja::Environment<'static> {
    let mut environment = minijinja::Environment::new();
    environment.set_fuel(Some(TEMPLATE_FUEL));
    environment
}

fn error_text(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => format!("{} ({detail})", error.kind()),
        None => error.to_string(),
    }
}

/// `Name: value`, the name an HTTP token.
fn header_line(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    (!name.is_empty() && name.chars().all(token) && !value.contains(['\r', '\n'])).then(|| (name, value.trim()))
}

/// The host of an `http(s)://` URL (without brackets, port, user or path).
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split_once(']')?.0
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(host, _)| host)
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Where webhooks may send requests: hosts (`hooks.example`, `.example` for a domain and its
/// subdomains, `*` for any) and networks (`10.0.0.0/8`, `2001:db8::/32`). Empty: anywhere. A
/// destination is admitted when its host matches a host pattern, or when every address it
/// resolves to lies in one of the networks; checked when a hook is saved (the URL's host) and
/// again before each request (the addresses it resolves to, which the request then goes to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookPolicy {
    hosts: Vec<String>,
    networks: Vec<(IpAddr, u8)>,
}

/// An allow-list entry that is neither a host pattern nor a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is not a host (`hooks.example`, `.example`, `*`) or a network (`10.0.0.0/8`)")]
pub struct PolicyError {
    /// The entry.
    pub entry: String,
}

impl WebhookPolicy {
    /// Any destination.
    pub fn anywhere() -> Self {
        Self::default()
    }

    /// The policy admitting `entries`: host patterns and networks (`address/prefix`).
    ///
    /// ```
    /// use jobhooks_model::WebhookPolicy;
    /// let policy = WebhookPolicy::allowing(["hooks.example", ".corp.example", "10.0.0.0/8"]).unwrap();
    /// assert!(policy.admits_host("a.corp.example"));
    /// assert!(!policy.admits_host("evil.example"));
    /// assert!(policy.admits_address("10.1.2.3".parse().unwrap()));
    /// assert!(WebhookPolicy::allowing(["10.0.0.0/99"]).is_err());
    /// ```
    pub fn allowing(entries: impl IntoIterator<Item = impl AsRef<str>>) -> Result<Self, PolicyError> {
        let mut policy = Self::default();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            match entry.split_once('/') {
                Some((address, prefix)) => {
                    let address: IpAddr = address.parse().map_err(|_| PolicyError { entry: entry.into() })?;
                    let bits = if address.is_ipv4() { 32 } else { 128 };
                    let prefix = prefix.parse::<u8>().ok().filter(|prefix| *prefix <= bits);
                    policy.networks.push((address, prefix.ok_or_else(|| PolicyError { entry: entry.into() })?));
                }
                None if entry.parse::<IpAddr>().is_ok() => {
                    let address: IpAddr = entry.parse().map_err(|_| PolicyError { entry: entry.into() })?;
                    policy.networks.push((address, if address.is_ipv4() { 32 } else { 128 }));
                }
                None if entry == "*" || entry.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) => {
                    policy.hosts.push(entry.to_ascii_lowercase().trim_end_matches('.').to_owned());
                }
                None => return Err(PolicyError { entry: entry.into() }),
            }
        }
        Ok(policy)
    }

    /// Whether the policy admits every destination.
    pub fn is_open(&self) -> bool {
        self.hosts.is_empty() && self.networks.is_empty()
    }

    /// Whether `host` (a name or an address) is admitted by name, or, for an address, by network.
    pub fn admits_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let host = host.trim_end_matches('.');
        if self.is_open() {
            return true;
        }
        if let Ok(address) = host.parse::<IpAddr>() {
            return self.admits_address(address);
        }
        self.hosts.iter().any(|pattern| {
            pattern == "*"
                || pattern == host
                || pattern.strip_prefix('.').is_some_and(|domain| host == domain || host.ends_with(pattern.as_str()))
        })
    }

    /// Whether `address` lies in one of the networks (or the policy is open).
    pub fn admits_address(&self, address: IpAddr) -> bool {
        self.is_open() || self.networks.iter().any(|(network, prefix)| in_network(address, *network, *prefix))
    }

    /// Whether a webhook to `host` may be saved: the host is admitted ([`WebhookPolicy::admits_host`]),
    /// or it is a name that may resolve into one of the networks (checked before each request).
    pub fn may_admit_host(&self, host: &str) -> bool {
        self.admits_host(host) || (host.parse::<IpAddr>().is_err() && !self.networks.is_empty())
    }

    /// Whether a request to `host`, which resolved to `addresses`, may be sent: the host is
    /// admitted by name, or it resolved to at least one address and every one lies in a network.
    pub fn admits_resolved(&self, host: &str, addresses: &[IpAddr]) -> bool {
        let by_name = host.parse::<IpAddr>().is_err() && self.admits_host(host);
        self.is_open()
            || by_name
            || (!addresses.is_empty() && addresses.iter().all(|address| self.admits_address(*address)))
    }
}

fn in_network(address: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (address, network) {
        (IpAddr::V4(address), IpAddr::V4(network)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            u32::from(address) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(address), IpAddr::V6(network)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            u128::from(address) & mask == u128::from(network) & mask
        }
        (IpAddr::V6(address), IpAddr::V4(_)) => {
            address.to_ipv4_mapped().is_some_and(|address| in_network(IpAddr::V4(address), network, prefix))
        }
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn context() -> Value {
        json!({"event": "updated", "timestamp": "2026-12-07 09:00:00.000000+00:00", "model": "device",
            "username": "alice", "request_id": "c4e3ec6e-5ba1-4a2b-8e5e-1a4e6f0b8c11",
            "data": {"name": "edge-1", "status": "active"},
            "snapshots": {"prechange": null, "postchange": {"name": "edge-1"}, "differences": {"added": {}, "removed": {}}}})
    }

    #[test]
    fn the_default_body_is_the_context_signed_as_nautobot_signs_it() {
        let webhook = Webhook::new("https://hooks.example/{{ model }}s").secret("s3cret");
        let request = webhook.render(&context(), RunId(12)).unwrap();
        assert_eq!((request.method, request.url.as_str()), (HttpMethod::Post, "https://hooks.example/devices"));
        assert_eq!(serde_json::from_slice::<Value>(&request.body).unwrap(), context());
        let header = |name: &str| request.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
        assert_eq!(header("Content-Type"), Some("application/json"));
        assert_eq!(header("X-Hook-Signature"), Some(crate::sign_body("s3cret", &request.body).as_str()));
        assert_eq!(header("Idempotency-Key"), Some("12"));
        assert!(!request.headers.iter().any(|(_, value)| value.contains("s3cret")), "the secret is never sent");
    }

    #[test]
    fn headers_and_body_are_templates_over_the_context() {
        let webhook = Webhook::new("http://10.0.0.5:8080/in")
            .method(HttpMethod::Patch)
            .header("X-User", "{{ username }}")
            .header("Content-Type", "text/plain")
            .body("{{ data.name }} is {{ snapshots.postchange.name }}");
        let request = webhook.render(&context(), RunId(1)).unwrap();
        assert_eq!(request.body, b"edge-1 is edge-1");
        assert!(request.headers.contains(&("X-User".into(), "alice".into())));
        assert_eq!(request.headers.iter().filter(|(name, _)| name.eq_ignore_ascii_case("content-type")).count(), 1);
        let bad = Webhook::new("{{ data.name }}").render(&context(), RunId(1)).unwrap_err();
        assert_eq!(bad, WebhookError::Url { url: "edge-1".into() });
        let looping = Webhook::new("http://x/")
            .body("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}");
        assert!(matches!(
            looping.render(&context(), RunId(1)),
            Err(WebhookError::Template { field: "body_template", .. })
        ));
    }

    #[test]
    fn a_bad_webhook_is_refused_with_a_message_per_problem() {
        let webhook = Webhook::new("ftp://files.example/").header("Bad Header", "x").body("{% if %}");
        let mut errors = ValidationErrors::default();
        webhook.check(&mut errors);
        let messages = errors.field("webhook");
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].starts_with("payload_url: `ftp://files.example/` is not an http:// or https:// URL"));
        assert!(messages[1].starts_with("body_template: the template does not compile"), "{messages:?}");
        assert_eq!(messages[2], "additional_headers: `Bad Header: x` is not `Name: value`");
        let mut errors = ValidationErrors::default();
        Webhook::new("https://hooks.example/{{ model }}").header("X-A", "{{ username }}").check(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn hosts_and_networks_are_admitted_as_the_allow_list_says() {
        let policy =
            WebhookPolicy::allowing(["hooks.example", ".corp.example", "192.168.0.0/16", "2001:db8::/32"]).unwrap();
        for host in
            ["hooks.example", "HOOKS.example.", "corp.example", "a.b.corp.example", "192.168.4.4", "[2001:db8::1]"]
        {
            assert!(policy.admits_host(host), "{host}");
        }
        for host in ["evil.example", "hooks.example.evil", "xcorp.example", "10.0.0.1", "127.0.0.1", "[::1]"] {
            assert!(!policy.admits_host(host), "{host}");
        }
        assert!(policy.admits_address("::ffff:192.168.1.1".parse().unwrap()), "IPv4-mapped addresses count as IPv4");
        assert!(policy.may_admit_host("unknown.example"), "a name may resolve into a network");
        assert!(!policy.may_admit_host("10.0.0.1"));
        let names_only = WebhookPolicy::allowing(["hooks.example"]).unwrap();
        assert!(!names_only.may_admit_host("unknown.example"));
        let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let inside: std::net::IpAddr = "192.168.1.1".parse().unwrap();
        assert!(policy.admits_resolved("hooks.example", &[local]), "admitted by name");
        assert!(policy.admits_resolved("unknown.example", &[inside]));
        assert!(!policy.admits_resolved("unknown.example", &[inside, local]), "every address must be inside");
        assert!(!policy.admits_resolved("unknown.example", &[]));
        assert!(WebhookPolicy::anywhere().admits_host("anything"));
        for entry in ["10.0.0.0/33", "not a host!", "::1/129", "1.2.3/8"] {
            assert!(WebhookPolicy::allowing([entry]).is_err(), "{entry}");
        }
        assert_eq!(host_of("https://user:pw@[::1]:8443/x?y"), Some("::1".into()));
        assert_eq!(host_of("http://Hooks.Example:80"), Some("hooks.example".into()));
        assert_eq!(host_of("http:///nohost"), None);
    }

    proptest! {
        #[test]
        fn an_address_is_in_its_own_networks(address in any::<u32>(), prefix in 0u8..=32) {
            let address = std::net::Ipv4Addr::from(address);
            let policy = WebhookPolicy::allowing([format!("{address}/{prefix}")]).unwrap();
            prop_assert!(policy.admits_address(IpAddr::V4(address)));
            if prefix > 0 {
                // One bit inside the prefix differs.
                let outside = u32::from(address) ^ (1u32 << (32 - u32::from(prefix)));
                prop_assert!(!policy.admits_address(IpAddr::V4(outside.into())));
            }
        }

        #[test]
        fn rendering_arbitrary_templates_never_panics(template in ".{0,60}") {
            let webhook = Webhook::new("http://hooks.example/").body(template.clone()).header("X-T", &template);
            let _ = webhook.render(&context(), RunId(1));
            let mut errors = ValidationErrors::default();
            webhook.check(&mut errors);
        }
    }
}
