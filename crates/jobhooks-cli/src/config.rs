//! The configuration of a `jobhooks` process: built-in defaults, then the file given with
//! `--config` (TOML), then `JOBHOOKS_*` environment variables, then flags, each overriding the
//! one before. `jobhooks config show` prints the result.
//!
//! Every key of the file has an environment variable: `JOBHOOKS_` and the key's path in capitals,
//! dots as underscores (`dispatcher.workers` is `JOBHOOKS_DISPATCHER_WORKERS`). Retry policies per
//! job exist in the file only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use jobhooks_dispatch::{DispatcherConfig, RetryPolicy};
use jobhooks_model::ports::Retention;
use serde::{Deserialize, Serialize};

/// Why the configuration could not be built. Nothing was started.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key or value is not one this version knows.
    #[error("the config file {path} is not valid: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, where.
        reason: String,
    },
    /// An environment variable has a value its key cannot take.
    #[error("the environment variable {variable} is not valid: {reason}")]
    Env {
        /// The variable.
        variable: String,
        /// What is wrong.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The store: a directory (sled) or a PostgreSQL URL.
    pub db: String,
    /// Logging.
    pub log: LogSettings,
    /// `jobhooks serve`.
    pub server: ServerSettings,
    /// The dispatcher of `jobhooks serve` and `jobhooks run`.
    pub dispatcher: DispatcherSettings,
    /// How long results and changes are kept.
    pub retention: RetentionSettings,
    /// Changes received from other systems.
    pub ingest: IngestSettings,
    /// Outbound webhooks.
    pub webhooks: WebhookSettings,
}

/// Outbound webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where webhooks may send: hosts (`hooks.example`, `.example` for a domain and its
    /// subdomains, `*`) and networks (`10.0.0.0/8`); empty: anywhere. In the environment, a comma-
    /// separated list.
    pub allowed_destinations: Vec<String>,
    /// Seconds one webhook request may take.
    pub timeout_seconds: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self { allowed_destinations: Vec::new(), timeout_seconds: 10 }
    }
}

/// Changes received from other systems.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// The bridge from Nautobot's webhooks (`POST /api/ingest/nautobot/`).
    pub nautobot: NautobotIngestSettings,
}

/// The bridge from Nautobot's webhooks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NautobotIngestSettings {
    /// The secret Nautobot's webhooks sign their bodies with (`X-Hook-Signature`); empty: the
    /// bridge is off. `config show` prints it masked.
    pub secret: String,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// Which events, as `RUST_LOG` says them (`RUST_LOG` itself wins when set).
    pub filter: String,
}

/// `jobhooks serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Run the dispatcher beside the API.
    pub dispatcher: bool,
    /// Seconds a client has to send a request's head (new or kept-alive connection).
    pub header_read_timeout_seconds: u64,
    /// Seconds a request may run before it is answered 503.
    pub request_timeout_seconds: u64,
    /// Connections open at once; beyond, new ones wait to be accepted.
    pub max_connections: usize,
    /// Requests waiting for a run to end (`?wait=`) at once; beyond, 429.
    pub max_waiters: usize,
    /// Whether `/metrics` needs a valid token, as the API does (default: open, for Prometheus).
    pub metrics_need_a_token: bool,
    /// Where `/health`, `/ready` and `/metrics` are served instead of `listen`, `host:port` (a
    /// private address, for the monitoring system alone); empty: on `listen`, beside the API.
    pub metrics_listen: String,
    /// The directory backups through the API (`backup` with `--url`) are written under; empty:
    /// none, and such backups are refused.
    pub backup_dir: String,
    /// The URL people open the web pages at, when a proxy serves them (`https://…` marks the
    /// session cookie `Secure`); empty: the listen address, over HTTP.
    pub external_url: String,
    /// Days a web login session may stay unused before it ends (Django's default: 14).
    pub session_idle_days: u32,
}

/// The dispatcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatcherSettings {
    /// Runs at once.
    pub workers: usize,
    /// Runs claimed together.
    pub lease_batch: usize,
    /// How long a claim lasts before another process may take the run over.
    pub lease_seconds: u64,
    /// How long a receiver may run.
    pub run_timeout_seconds: u64,
    /// How long runs in flight may take to finish at shutdown.
    pub grace_seconds: u64,
    /// The longest an idle worker sleeps without a signal.
    pub idle_wakeup_ms: u64,
    /// The retry policy of every job without its own.
    pub retry: RetrySettings,
    /// Retry policies by job class path.
    pub job_retry: BTreeMap<String, RetrySettings>,
}

/// A retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each further one.
    pub initial_backoff_ms: u64,
    /// The longest wait.
    pub max_backoff_ms: u64,
    /// Randomize each wait within its upper half.
    pub jitter: bool,
}

/// Retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Days to keep finished results, or `"forever"` (the default).
    #[serde(with = "days")]
    pub results_days: Option<u32>,
    /// Days to keep changes, or `"forever"` (the default).
    #[serde(with = "days")]
    pub changes_days: Option<u32>,
    /// How often to prune.
    pub prune_every_seconds: u64,
}

/// A number of days or `"forever"` (`None`), in the file as in `JOBHOOKS_RETENTION_*_DAYS`: so
/// that `config show` prints the key even when it is not set.
mod days {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(days: &Option<u32>, serializer: S) -> Result<S::Ok, S::Error> {
        match days {
            Some(days) => serializer.serialize_u32(*days),
            None => serializer.serialize_str("forever"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Days {
            Number(u32),
            Word(String),
        }
        match Days::deserialize(deserializer)? {
            Days::Number(days) => Ok(Some(days)),
            Days::Word(word) if word == "forever" => Ok(None),
            Days::Word(word) => {
                Err(serde::de::Error::custom(format!("`{word}` is not a number of days; expected one, or \"forever\"")))
            }
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            db: "jobhooks.db".into(),
            log: LogSettings::default(),
            server: ServerSettings::default(),
            dispatcher: DispatcherSettings::default(),
            retention: RetentionSettings::default(),
            ingest: IngestSettings::default(),
            webhooks: WebhookSettings::default(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: "text".into(), filter: "warn".into() }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        let limits = jobhooks_server::HttpLimits::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            dispatcher: true,
            header_read_timeout_seconds: limits.header_read_timeout.as_secs(),
            request_timeout_seconds: limits.request_timeout.as_secs(),
            max_connections: limits.max_connections,
            max_waiters: limits.max_waiters,
            metrics_need_a_token: limits.metrics_need_a_token,
            metrics_listen: String::new(),
            backup_dir: String::new(),
            external_url: String::new(),
            session_idle_days: 14,
        }
    }
}

impl Default for DispatcherSettings {
    fn default() -> Self {
        let defaults = DispatcherConfig::default();
        Self {
            workers: defaults.workers,
            lease_batch: defaults.lease_batch,
            lease_seconds: defaults.lease.as_secs(),
            run_timeout_seconds: defaults.run_timeout.as_secs(),
            grace_seconds: 30,
            idle_wakeup_ms: u64::try_from(defaults.idle_wakeup.as_millis()).unwrap_or(u64::MAX),
            retry: RetrySettings::from(defaults.retry),
            job_retry: BTreeMap::new(),
        }
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetryPolicy::default().into()
    }
}

impl From<RetryPolicy> for RetrySettings {
    fn from(policy: RetryPolicy) -> Self {
        Self {
            max_attempts: policy.max_attempts,
            initial_backoff_ms: u64::try_from(policy.initial_backoff.as_millis()).unwrap_or(u64::MAX),
            max_backoff_ms: u64::try_from(policy.max_backoff.as_millis()).unwrap_or(u64::MAX),
            jitter: policy.jitter,
        }
    }
}

impl From<RetrySettings> for RetryPolicy {
    fn from(settings: RetrySettings) -> Self {
        RetryPolicy {
            max_attempts: settings.max_attempts.max(1),
            initial_backoff: Duration::from_millis(settings.initial_backoff_ms),
            max_backoff: Duration::from_millis(settings.max_backoff_ms),
            jitter: settings.jitter,
        }
    }
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self { results_days: None, changes_days: None, prune_every_seconds: 60 }
    }
}

impl Config {
    /// Defaults, then the file at `path` (if any), then the environment as `env` reads it.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
                let config: Config = toml::from_str(&text)
                    .map_err(|error| ConfigError::Parse { path: shown.clone(), reason: error.to_string() })?;
                if let Err((key, reason)) = config.check() {
                    return Err(ConfigError::Parse { path: shown, reason: format!("{key}: {reason}") });
                }
                config
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    /// Values no source may give: the key and what is wrong.
    fn check(&self) -> Result<(), (&'static str, String)> {
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(("log.format", format!("`{}` is not a log format; expected text or json", self.log.format)));
        }
        if self.server.max_connections == 0 {
            return Err(("server.max_connections", "0 connections would serve no one; give at least 1".to_owned()));
        }
        if self.server.header_read_timeout_seconds == 0 || self.server.request_timeout_seconds == 0 {
            let key = if self.server.header_read_timeout_seconds == 0 {
                "server.header_read_timeout_seconds"
            } else {
                "server.request_timeout_seconds"
            };
            return Err((key, "a timeout of 0 seconds would refuse every request; give at least 1".to_owned()));
        }
        if self.dispatcher.workers == 0 {
            return Err(("dispatcher.workers", "0 workers would run nothing; give at least 1".to_owned()));
        }
        if self.server.session_idle_days == 0 {
            return Err((
                "server.session_idle_days",
                "0 days would end every session at once; give at least 1".to_owned(),
            ));
        }
        if let Err(error) = jobhooks_model::WebhookPolicy::allowing(&self.webhooks.allowed_destinations) {
            return Err(("webhooks.allowed_destinations", error.to_string()));
        }
        if self.webhooks.timeout_seconds == 0 {
            return Err((
                "webhooks.timeout_seconds",
                "a timeout of 0 seconds would fail every webhook; give at least 1".to_owned(),
            ));
        }
        let url = &self.server.external_url;
        if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(("server.external_url", format!("`{url}` is not an http:// or https:// URL")));
        }
        Ok(())
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn set<T: std::str::FromStr>(
            env: &impl Fn(&str) -> Option<String>,
            variable: &str,
            target: &mut T,
        ) -> Result<(), ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            if let Some(value) = env(variable) {
                *target = value
                    .parse()
                    .map_err(|e: T::Err| ConfigError::Env { variable: variable.to_owned(), reason: e.to_string() })?;
            }
            Ok(())
        }
        fn set_days(
            env: &impl Fn(&str) -> Option<String>,
            variable: &str,
            target: &mut Option<u32>,
        ) -> Result<(), ConfigError> {
            if let Some(value) = env(variable) {
                *target = match value.as_str() {
                    "" | "forever" => None,
                    days => Some(days.parse().map_err(|e: std::num::ParseIntError| ConfigError::Env {
                        variable: variable.to_owned(),
                        reason: format!("{e}; expected a number of days or `forever`"),
                    })?),
                };
            }
            Ok(())
        }
        let env = &env;
        set(env, "JOBHOOKS_DB", &mut self.db)?;
        set(env, "JOBHOOKS_LOG_FORMAT", &mut self.log.format)?;
        set(env, "JOBHOOKS_LOG_FILTER", &mut self.log.filter)?;
        set(env, "JOBHOOKS_SERVER_LISTEN", &mut self.server.listen)?;
        set(env, "JOBHOOKS_SERVER_DISPATCHER", &mut self.server.dispatcher)?;
        set(env, "JOBHOOKS_SERVER_HEADER_READ_TIMEOUT_SECONDS", &mut self.server.header_read_timeout_seconds)?;
        set(env, "JOBHOOKS_SERVER_REQUEST_TIMEOUT_SECONDS", &mut self.server.request_timeout_seconds)?;
        set(env, "JOBHOOKS_SERVER_MAX_CONNECTIONS", &mut self.server.max_connections)?;
        set(env, "JOBHOOKS_SERVER_MAX_WAITERS", &mut self.server.max_waiters)?;
        set(env, "JOBHOOKS_SERVER_METRICS_NEED_A_TOKEN", &mut self.server.metrics_need_a_token)?;
        set(env, "JOBHOOKS_SERVER_METRICS_LISTEN", &mut self.server.metrics_listen)?;
        set(env, "JOBHOOKS_SERVER_BACKUP_DIR", &mut self.server.backup_dir)?;
        set(env, "JOBHOOKS_SERVER_EXTERNAL_URL", &mut self.server.external_url)?;
        set(env, "JOBHOOKS_SERVER_SESSION_IDLE_DAYS", &mut self.server.session_idle_days)?;
        let dispatcher = &mut self.dispatcher;
        set(env, "JOBHOOKS_DISPATCHER_WORKERS", &mut dispatcher.workers)?;
        set(env, "JOBHOOKS_DISPATCHER_LEASE_BATCH", &mut dispatcher.lease_batch)?;
        set(env, "JOBHOOKS_DISPATCHER_LEASE_SECONDS", &mut dispatcher.lease_seconds)?;
        set(env, "JOBHOOKS_DISPATCHER_RUN_TIMEOUT_SECONDS", &mut dispatcher.run_timeout_seconds)?;
        set(env, "JOBHOOKS_DISPATCHER_GRACE_SECONDS", &mut dispatcher.grace_seconds)?;
        set(env, "JOBHOOKS_DISPATCHER_IDLE_WAKEUP_MS", &mut dispatcher.idle_wakeup_ms)?;
        set(env, "JOBHOOKS_DISPATCHER_RETRY_MAX_ATTEMPTS", &mut dispatcher.retry.max_attempts)?;
        set(env, "JOBHOOKS_DISPATCHER_RETRY_INITIAL_BACKOFF_MS", &mut dispatcher.retry.initial_backoff_ms)?;
        set(env, "JOBHOOKS_DISPATCHER_RETRY_MAX_BACKOFF_MS", &mut dispatcher.retry.max_backoff_ms)?;
        set(env, "JOBHOOKS_DISPATCHER_RETRY_JITTER", &mut dispatcher.retry.jitter)?;
        set_days(env, "JOBHOOKS_RETENTION_RESULTS_DAYS", &mut self.retention.results_days)?;
        set_days(env, "JOBHOOKS_RETENTION_CHANGES_DAYS", &mut self.retention.changes_days)?;
        set(env, "JOBHOOKS_RETENTION_PRUNE_EVERY_SECONDS", &mut self.retention.prune_every_seconds)?;
        set(env, "JOBHOOKS_INGEST_NAUTOBOT_SECRET", &mut self.ingest.nautobot.secret)?;
        if let Some(list) = env("JOBHOOKS_WEBHOOKS_ALLOWED_DESTINATIONS") {
            self.webhooks.allowed_destinations =
                list.split(',').map(str::trim).filter(|entry| !entry.is_empty()).map(str::to_owned).collect();
        }
        set(env, "JOBHOOKS_WEBHOOKS_TIMEOUT_SECONDS", &mut self.webhooks.timeout_seconds)?;
        // The file was checked: what breaks a rule now came from the environment.
        self.check().map_err(|(key, reason)| ConfigError::Env {
            variable: format!("JOBHOOKS_{}", key.to_uppercase().replace('.', "_")),
            reason,
        })
    }

    /// How long results and changes are kept.
    pub fn retention(&self) -> Retention {
        Retention::from_days(self.retention.results_days, self.retention.changes_days)
    }

    /// The server's limits on callers; requests in flight have `grace` to finish at shutdown.
    pub fn http_limits(&self, grace: Duration) -> jobhooks_server::HttpLimits {
        let server = &self.server;
        jobhooks_server::HttpLimits::default()
            .header_read_timeout(Duration::from_secs(server.header_read_timeout_seconds))
            .request_timeout(Duration::from_secs(server.request_timeout_seconds))
            .max_connections(server.max_connections)
            .max_waiters(server.max_waiters)
            .metrics_need_a_token(server.metrics_need_a_token)
            .shutdown_grace(grace)
    }

    /// How the web pages treat logins.
    pub fn ui(&self) -> jobhooks_server::UiConfig {
        let external = Some(self.server.external_url.as_str()).filter(|url| !url.is_empty());
        jobhooks_server::UiConfig::for_external_url(external)
            .session_idle(Duration::from_secs(u64::from(self.server.session_idle_days.max(1)) * 86_400))
    }

    /// Where webhooks may send (the configuration was checked when loaded).
    pub fn webhook_policy(&self) -> jobhooks_model::WebhookPolicy {
        jobhooks_model::WebhookPolicy::allowing(&self.webhooks.allowed_destinations).unwrap_or_default()
    }

    /// The dispatcher's configuration, `workers` as given.
    pub fn dispatcher(&self, workers: usize) -> DispatcherConfig {
        let settings = &self.dispatcher;
        DispatcherConfig::default()
            .workers(workers)
            .lease_batch(settings.lease_batch.max(1))
            .lease(Duration::from_secs(settings.lease_seconds.max(1)))
            .run_timeout(Duration::from_secs(settings.run_timeout_seconds.max(1)))
            .idle_wakeup(Duration::from_millis(settings.idle_wakeup_ms.max(1)))
            .retry(settings.retry.into())
            .job_retry(settings.job_retry.iter().map(|(job, retry)| (job.clone(), (*retry).into())).collect())
            .retention(self.retention())
            .prune_every(Duration::from_secs(self.retention.prune_every_seconds.max(1)))
            .webhooks(
                jobhooks_dispatch::WebhookConfig::default()
                    .policy(self.webhook_policy())
                    .timeout(Duration::from_secs(self.webhooks.timeout_seconds.max(1))),
            )
    }

    /// The configuration with its secrets masked, to be shown.
    pub fn masked(&self) -> Self {
        let mut shown = self.clone();
        if !shown.ingest.nautobot.secret.is_empty() {
            shown.ingest.nautobot.secret = "********".into();
        }
        shown
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| pairs.get(name).cloned()
    }

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobhooks.toml");
        std::fs::write(
            &path,
            r#"
            db = "postgres://jobhooks@db/jobhooks"
            [dispatcher]
            workers = 8
            [dispatcher.job_retry."app::Flaky"]
            max_attempts = 5
            [retention]
            results_days = 30
            "#,
        )
        .unwrap();
        let config = Config::load(Some(&path), env(&[("JOBHOOKS_DISPATCHER_WORKERS", "2")])).unwrap();
        assert_eq!(config.db, "postgres://jobhooks@db/jobhooks");
        assert_eq!(config.dispatcher.workers, 2, "the environment wins over the file");
        assert_eq!(config.dispatcher.lease_batch, DispatcherConfig::default().lease_batch, "defaults fill the rest");
        let dispatcher = config.dispatcher(config.dispatcher.workers);
        assert_eq!(dispatcher.retry_policy("app::Flaky").max_attempts, 5);
        assert_eq!(dispatcher.retention.results_for, Some(Duration::from_secs(30 * 86_400)));
        let shown: Config = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(shown, config, "what `config show` prints reads back the same");
    }

    #[test]
    fn mistakes_are_refused_saying_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[dispatcher]\nwokers = 8\n").unwrap();
        let error = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(error.contains("bad.toml is not valid") && error.contains("unknown field `wokers`"), "{error}");
        let error = Config::load(None, env(&[("JOBHOOKS_DISPATCHER_WORKERS", "many")])).unwrap_err().to_string();
        assert!(error.starts_with("the environment variable JOBHOOKS_DISPATCHER_WORKERS is not valid"), "{error}");
        let error = Config::load(None, env(&[("JOBHOOKS_LOG_FORMAT", "xml")])).unwrap_err().to_string();
        assert!(error.contains("`xml` is not a log format"), "{error}");
        let missing = Config::load(Some(Path::new("/nonexistent/jobhooks.toml")), env(&[])).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read the config file /nonexistent/jobhooks.toml"));
        let forever = Config::load(None, env(&[("JOBHOOKS_RETENTION_RESULTS_DAYS", "forever")])).unwrap();
        assert_eq!(forever.retention().results_for, None);
        let error = Config::load(None, env(&[("JOBHOOKS_DISPATCHER_WORKERS", "0")])).unwrap_err().to_string();
        assert_eq!(
            error,
            "the environment variable JOBHOOKS_DISPATCHER_WORKERS is not valid: 0 workers would run nothing; give at least 1"
        );
        std::fs::write(&path, "[log]\nformat = \"xml\"\n").unwrap();
        let error = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(error.contains("bad.toml is not valid: log.format: `xml` is not a log format"), "{error}");
        std::fs::write(&path, "[dispatcher]\nworkers = 0\n").unwrap();
        let error = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(error.contains("bad.toml is not valid: dispatcher.workers: 0 workers would run nothing"), "{error}");
    }

    #[test]
    fn retention_is_a_number_of_days_or_forever_in_the_file_too_and_shown_when_unset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobhooks.toml");
        std::fs::write(&path, "[retention]\nresults_days = \"forever\"\nchanges_days = 7\n").unwrap();
        let config = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!((config.retention.results_days, config.retention.changes_days), (None, Some(7)));
        let shown = Config::default().to_toml();
        assert!(
            shown.contains("results_days = \"forever\"") && shown.contains("changes_days = \"forever\""),
            "{shown}"
        );
        std::fs::write(&path, "[retention]\nresults_days = \"soon\"\n").unwrap();
        let error = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(error.contains("`soon` is not a number of days"), "{error}");
    }
}
