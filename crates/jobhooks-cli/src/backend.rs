//! What the catalog, object, change and result commands ask of jobhooks, answered either by a
//! store opened in this process ([`Session`]) or by a running server over its REST API
//! ([`crate::remote::Remote`], with `--url`). The commands are written once, over [`Backend`], so
//! that both answer the same questions with the same output and the same messages.

use std::sync::Arc;
use std::time::Duration;

use jobhooks_dispatch::{Dispatcher, RenderedButton};
use jobhooks_model::ports::{CommitReceipt, OpenSession, PruneReport, ResultFilter, Retention, Storage, SyncMode};
use jobhooks_model::{
    ApiToken, ChangeContext, ChangeId, JobButton, JobButtonPatch, JobHook, JobHookPatch, JobRecord, JobRestoreReport,
    JobResult, Object, ObjectChange, ObjectRef, OffsetDateTime, RunId, StoreError, User, Value,
};
use jobhooks_register::Registry;
use serde::{Deserialize, Serialize};

use crate::{Failure, config};

/// An API token as the command line shows it: never its key or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenInfo {
    pub id: String,
    pub user: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub expires: Option<OffsetDateTime>,
    #[serde(default)]
    pub description: String,
}

impl From<&ApiToken> for TokenInfo {
    fn from(token: &ApiToken) -> Self {
        Self {
            id: token.id.clone(),
            user: token.user.clone(),
            created: token.created,
            expires: token.expires,
            description: token.description.clone(),
        }
    }
}

/// A token to issue.
pub(crate) struct NewToken {
    pub expires: Option<OffsetDateTime>,
    pub description: String,
    pub write_enabled: bool,
    /// The user's password, to have a server provision the token without a token of one's own.
    pub password: Option<String>,
}

/// A web login session as the command line shows it: never its key or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionInfo {
    pub id: String,
    pub user: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    #[serde(default)]
    pub user_agent: String,
}

impl From<&jobhooks_model::LoginSession> for SessionInfo {
    fn from(session: &jobhooks_model::LoginSession) -> Self {
        Self {
            id: session.id.clone(),
            user: session.user.clone(),
            created: session.created,
            last_seen: session.last_seen,
            user_agent: session.user_agent.clone(),
        }
    }
}

/// What the commands need, from a local store or a server. `acting` is the `--user` a command
/// was given: required on a local store; on a server the token's user acts, and a `--user` that
/// names someone else is refused.
#[allow(async_fn_in_trait)]
pub(crate) trait Backend {
    /// Whether output is JSON (`--json`).
    fn json(&self) -> bool;

    /// Prints `value` as JSON with `--json`, else as `text` says. A reader that went away
    /// (`jobhooks changes list | head`) ends the output quietly: what was asked is done.
    fn print<T: Serialize>(&self, value: &T, text: impl FnOnce(&T) -> String) {
        use std::io::Write;
        let shown = if self.json() { serde_json::to_string_pretty(value).unwrap_or_default() } else { text(value) };
        // An empty listing prints nothing (`[]` with --json), not a blank line.
        if shown.is_empty() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        let _closed_or_written = writeln!(stdout, "{shown}").and_then(|()| stdout.flush());
    }

    async fn list_jobs(&self) -> Result<Vec<JobRecord>, Failure>;
    async fn set_job_enabled(&self, class_path: &str, enabled: bool) -> Result<JobRecord, Failure>;
    async fn restore_jobs(&self, class_paths: &[String]) -> Result<JobRestoreReport, Failure>;

    async fn list_hooks(&self) -> Result<Vec<JobHook>, Failure>;
    async fn get_hook(&self, name: &str) -> Result<JobHook, Failure>;
    async fn create_hook(&self, hook: JobHook) -> Result<JobHook, Failure>;
    async fn update_hook(&self, name: &str, patch: JobHookPatch) -> Result<JobHook, Failure>;
    async fn delete_hook(&self, name: &str) -> Result<JobHook, Failure>;

    async fn list_buttons(&self) -> Result<Vec<JobButton>, Failure>;
    async fn create_button(&self, button: JobButton) -> Result<JobButton, Failure>;
    async fn update_button(&self, name: &str, patch: JobButtonPatch) -> Result<JobButton, Failure>;
    async fn delete_button(&self, name: &str) -> Result<JobButton, Failure>;
    /// The buttons `object` shows the acting user.
    async fn buttons_for(&self, object: &ObjectRef, acting: Option<&str>) -> Result<Vec<RenderedButton>, Failure>;
    /// Presses `button` on `object` as the acting user; the run it queued.
    async fn press(&self, button: &str, object: &ObjectRef, acting: Option<&str>) -> Result<RunId, Failure>;
    /// Waits until `run` (queued by [`Backend::press`]) has ended, and returns its result.
    async fn wait_for(&self, run: RunId) -> Result<JobResult, Failure>;

    async fn put_user(&self, user: User) -> Result<User, Failure>;
    async fn list_users(&self) -> Result<Vec<User>, Failure>;
    /// The user `username`, if there is one.
    async fn find_user(&self, username: &str) -> Result<Option<User>, Failure>;
    /// Issues a token for `username` and returns its key, the only time it is seen.
    async fn issue_token(&self, username: &str, new: NewToken) -> Result<String, Failure>;
    async fn list_tokens(&self, username: Option<&str>) -> Result<Vec<TokenInfo>, Failure>;
    async fn revoke_token(&self, id: &str) -> Result<TokenInfo, Failure>;
    /// Sets (`Some`) or removes (`None`) the web password of `username`; the user's sessions end.
    async fn set_password(&self, username: &str, password: Option<String>) -> Result<(), Failure>;
    async fn list_sessions(&self, username: Option<&str>) -> Result<Vec<SessionInfo>, Failure>;
    async fn end_session(&self, id: &str) -> Result<(), Failure>;

    async fn get_object(&self, object: &ObjectRef) -> Result<Object, Failure>;
    /// Saves the object `reference` with `data` as the acting user, in a `web` change context, as
    /// the API's `PUT` does: without a `repr`, an existing object keeps its own (a new one reads as
    /// its id).
    async fn save_object(
        &self,
        reference: &ObjectRef,
        repr: Option<String>,
        data: Value,
        acting: Option<&str>,
    ) -> Result<CommitReceipt, Failure>;
    /// Deletes `object` as the acting user.
    async fn delete_object(&self, object: &ObjectRef, acting: Option<&str>) -> Result<CommitReceipt, Failure>;

    /// The newest `limit` changes (of `object`, if given), newest first.
    async fn changes(&self, object: Option<&ObjectRef>, limit: usize) -> Result<Vec<ObjectChange>, Failure>;
    async fn get_change(&self, id: ChangeId) -> Result<ObjectChange, Failure>;

    async fn list_results(&self, filter: ResultFilter) -> Result<Vec<JobResult>, Failure>;
    /// Removes finished results and changes older than the days given (`None`: keep).
    async fn prune(&self, results_days: Option<u32>, changes_days: Option<u32>) -> Result<PruneReport, Failure>;
    async fn get_result(&self, run: RunId) -> Result<JobResult, Failure>;
    async fn replay(&self, run: RunId) -> Result<(), Failure>;
}

/// The open store and the linked receivers, synced.
pub(crate) struct Session<S> {
    pub store: Arc<S>,
    /// Where the store is, as a person reads it (a path, or a URL without its password).
    pub location: String,
    pub registry: Registry,
    pub json: bool,
    pub config: config::Config,
}

impl<S: Storage + 'static> Session<S> {
    pub async fn open(store: S, location: String, json: bool, config: config::Config) -> Result<Self, Failure> {
        let store = Arc::new(store);
        let registry = Registry::from_linked().map_err(|e| Failure::failed(e.to_string()))?;
        // This program may link fewer receivers than the application's own dispatcher, and must
        // not uninstall theirs (which would disable their hooks and buttons): it only adds what
        // it links, unless `run --uninstall-unlinked` says it links them all.
        registry.sync_into(&*store, SyncMode::Additive).await?;
        Ok(Self { store, location, registry, json, config })
    }

    /// The user `username`, which must exist.
    async fn user(&self, username: &str) -> Result<User, Failure> {
        self.store.get_user(username).await?.ok_or_else(|| {
            Failure::bad_input(format!("user `{username}` does not exist: add it with `jobhooks users add`"))
        })
    }

    /// The acting user: on a local store, `--user` says who.
    async fn acting(&self, acting: Option<&str>) -> Result<User, Failure> {
        let username = acting.ok_or_else(|| {
            Failure::bad_input("--user is required on a local store (with --url, the token's user acts)")
        })?;
        self.user(username).await
    }

    /// A dispatcher over the store with the config's settings and `workers` workers.
    pub async fn dispatcher(&self, workers: usize, job_sync: SyncMode) -> Result<Dispatcher<S>, Failure> {
        let config = self.config.dispatcher(workers).job_sync(job_sync);
        Dispatcher::start(self.store.clone(), self.registry.clone(), config)
            .await
            .map_err(|e| Failure::failed(e.to_string()))
    }

    /// Commits one write of the object `reference` as `username` in a `web` change context: its
    /// new `data` with `repr` (default: the stored object's, else its id), or `None` to delete it.
    async fn write(
        &self,
        reference: &ObjectRef,
        written: Option<(Option<String>, Value)>,
        username: String,
    ) -> Result<CommitReceipt, Failure> {
        let mut session = self.store.session(ChangeContext::web(username));
        match written {
            Some((repr, data)) => {
                let repr = match repr {
                    Some(repr) => repr,
                    None => session
                        .load(reference)
                        .await?
                        .map_or_else(|| reference.id().to_owned(), |stored| stored.repr().to_owned()),
                };
                session.save(Object::new(reference.clone(), repr, data)?).await?;
            }
            None => {
                session.delete(reference).await?;
            }
        }
        Ok(session.commit().await?)
    }
}

impl<S: Storage + 'static> Backend for Session<S> {
    fn json(&self) -> bool {
        self.json
    }

    async fn list_jobs(&self) -> Result<Vec<JobRecord>, Failure> {
        Ok(self.store.list_jobs().await?)
    }

    async fn set_job_enabled(&self, class_path: &str, enabled: bool) -> Result<JobRecord, Failure> {
        Ok(self.store.set_job_enabled(class_path, enabled).await?)
    }

    async fn restore_jobs(&self, class_paths: &[String]) -> Result<JobRestoreReport, Failure> {
        Ok(self.store.restore_jobs(class_paths).await?)
    }

    async fn list_hooks(&self) -> Result<Vec<JobHook>, Failure> {
        Ok(self.store.list_hooks().await?)
    }

    async fn get_hook(&self, name: &str) -> Result<JobHook, Failure> {
        Ok(self.store.get_hook(name).await?.ok_or_else(|| StoreError::not_found("job hook", name))?)
    }

    async fn create_hook(&self, hook: JobHook) -> Result<JobHook, Failure> {
        Ok(self.store.create_hook(hook).await?)
    }

    async fn update_hook(&self, name: &str, patch: JobHookPatch) -> Result<JobHook, Failure> {
        Ok(self.store.update_hook(name, patch).await?)
    }

    async fn delete_hook(&self, name: &str) -> Result<JobHook, Failure> {
        Ok(self.store.delete_hook(name).await?)
    }

    async fn list_buttons(&self) -> Result<Vec<JobButton>, Failure> {
        Ok(self.store.list_buttons().await?)
    }

    async fn create_button(&self, button: JobButton) -> Result<JobButton, Failure> {
        Ok(self.store.create_button(button).await?)
    }

    async fn update_button(&self, name: &str, patch: JobButtonPatch) -> Result<JobButton, Failure> {
        Ok(self.store.update_button(name, patch).await?)
    }

    async fn delete_button(&self, name: &str) -> Result<JobButton, Failure> {
        Ok(self.store.delete_button(name).await?)
    }

    async fn buttons_for(&self, object: &ObjectRef, acting: Option<&str>) -> Result<Vec<RenderedButton>, Failure> {
        let found = self.get_object(object).await?;
        let user = self.acting(acting).await?;
        Ok(jobhooks_dispatch::buttons_for(&*self.store, &found, &user).await?)
    }

    async fn press(&self, button: &str, object: &ObjectRef, acting: Option<&str>) -> Result<RunId, Failure> {
        let user = self.acting(acting).await?;
        Ok(jobhooks_dispatch::press(&*self.store, &user, button, object).await?)
    }

    /// Runs a dispatcher in this process until the run has ended.
    async fn wait_for(&self, run: RunId) -> Result<JobResult, Failure> {
        let dispatcher = self.dispatcher(4, SyncMode::Additive).await?;
        let result = loop {
            let seen = self.store.work_generation();
            let result = self.get_result(run).await?;
            if result.status.is_final() {
                break result;
            }
            self.store.wait_for_work(seen, Duration::from_secs(1)).await;
        };
        dispatcher.shutdown(Duration::from_secs(30)).await;
        Ok(result)
    }

    async fn put_user(&self, user: User) -> Result<User, Failure> {
        self.store.put_user(user.clone()).await?;
        Ok(user)
    }

    async fn list_users(&self) -> Result<Vec<User>, Failure> {
        Ok(self.store.list_users().await?)
    }

    async fn find_user(&self, username: &str) -> Result<Option<User>, Failure> {
        Ok(self.store.get_user(username).await?)
    }

    async fn issue_token(&self, username: &str, new: NewToken) -> Result<String, Failure> {
        if new.password.is_some() {
            return Err(Failure::bad_input(
                "--password-stdin is for a server reached without a token (`--url` alone); on a store, a token needs no password",
            ));
        }
        let user = self.user(username).await?;
        let mut issued = ApiToken::issue(&user.username, OffsetDateTime::now_utc(), new.expires, new.description);
        issued.token.write_enabled = new.write_enabled;
        self.store.add_token(issued.token).await?;
        Ok(issued.key)
    }

    async fn list_tokens(&self, username: Option<&str>) -> Result<Vec<TokenInfo>, Failure> {
        Ok(self.store.list_tokens(username).await?.iter().map(TokenInfo::from).collect())
    }

    async fn revoke_token(&self, id: &str) -> Result<TokenInfo, Failure> {
        Ok(TokenInfo::from(&self.store.delete_token(id).await?))
    }

    async fn set_password(&self, username: &str, password: Option<String>) -> Result<(), Failure> {
        let user = self.user(username).await?;
        let hash = match password {
            None => None,
            Some(password) => {
                let hashed = tokio::task::spawn_blocking(move || {
                    jobhooks_model::PasswordHash::new(&password, jobhooks_model::PasswordCost::Recommended)
                })
                .await
                .map_err(|_| Failure::bad_input("hashing the password failed"))?;
                Some(hashed.map_err(|refused| Failure::bad_input(refused.to_string()))?)
            }
        };
        Ok(self.store.set_password(&user.username, hash).await?)
    }

    async fn list_sessions(&self, username: Option<&str>) -> Result<Vec<SessionInfo>, Failure> {
        Ok(self.store.list_logins(username).await?.iter().map(SessionInfo::from).collect())
    }

    async fn end_session(&self, id: &str) -> Result<(), Failure> {
        self.store.end_login(id).await?;
        Ok(())
    }

    async fn get_object(&self, object: &ObjectRef) -> Result<Object, Failure> {
        Ok(self.store.get_object(object).await?.ok_or_else(|| StoreError::not_found("object", object))?)
    }

    async fn save_object(
        &self,
        reference: &ObjectRef,
        repr: Option<String>,
        data: Value,
        acting: Option<&str>,
    ) -> Result<CommitReceipt, Failure> {
        let user = self.acting(acting).await?;
        self.write(reference, Some((repr, data)), user.username).await
    }

    async fn delete_object(&self, object: &ObjectRef, acting: Option<&str>) -> Result<CommitReceipt, Failure> {
        let user = self.acting(acting).await?;
        self.write(object, None, user.username).await
    }

    async fn changes(&self, object: Option<&ObjectRef>, limit: usize) -> Result<Vec<ObjectChange>, Failure> {
        Ok(match object {
            Some(object) => self.store.changes_for_object(object, limit).await?,
            None => self.store.latest_changes(limit).await?,
        })
    }

    async fn get_change(&self, id: ChangeId) -> Result<ObjectChange, Failure> {
        Ok(self.store.get_change(id).await?.ok_or_else(|| StoreError::not_found("change", id))?)
    }

    async fn list_results(&self, filter: ResultFilter) -> Result<Vec<JobResult>, Failure> {
        Ok(self.store.list_results(&filter).await?)
    }

    async fn get_result(&self, run: RunId) -> Result<JobResult, Failure> {
        Ok(self.store.get_result(run).await?.ok_or_else(|| StoreError::not_found("job result", run))?)
    }

    async fn prune(&self, results_days: Option<u32>, changes_days: Option<u32>) -> Result<PruneReport, Failure> {
        let retention = Retention::from_days(results_days, changes_days);
        Ok(self.store.prune(&retention, OffsetDateTime::now_utc()).await?)
    }

    async fn replay(&self, run: RunId) -> Result<(), Failure> {
        self.get_result(run).await?;
        Ok(self.store.replay(run).await?)
    }
}
