//! The command line as a client of a running server (`--url`, `--token`): each [`Backend`] call
//! is one or a few requests to the REST API, and the server's 4xx answers become the same
//! messages and exit status (2) as the local store's refusals.

use std::time::Duration;

use jobhooks_dispatch::RenderedButton;
use jobhooks_model::ports::{CommitReceipt, PruneReport, ResultFilter};
use jobhooks_model::{
    ChangeId, JobButton, JobButtonPatch, JobHook, JobHookPatch, JobRecord, JobResult, LogEntry, Object, ObjectChange,
    ObjectRef, RunId, User, ValidationErrors,
};
use jobhooks_server::shapes::{
    JobButtonView, JobHookView, JobLogView, JobResultView, JobView, ObjectChangeView, ShapeError,
};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Failure;
use crate::backend::{Backend, NewToken, SessionInfo, TokenInfo};

/// The most items the server gives in one page.
const PAGE: usize = jobhooks_server::MAX_LIMIT;

/// A running server, reached with a token.
pub(crate) struct Remote {
    base: Url,
    /// `None` only for what needs no token (provisioning one with a password).
    token: Option<String>,
    client: reqwest::Client,
    json: bool,
    /// The token's user, once asked.
    user: tokio::sync::OnceCell<String>,
}

impl Remote {
    /// A client of the server at `url` (`http://host:port`, with or without a trailing path).
    pub fn new(url: &str, token: Option<String>, json: bool) -> Result<Self, Failure> {
        // `127.0.0.1:8080` and `localhost:8080` lack the scheme: say which address was meant.
        let suggestion = if url.contains("://") { String::new() } else { format!("; did you mean http://{url}?") };
        let mut base = Url::parse(url)
            .map_err(|error| Failure::bad_input(format!("--url `{url}` is not a URL: {error}{suggestion}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Failure::bad_input(format!("--url `{url}` is not an http:// or https:// address{suggestion}")));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let token = token.filter(|token| !token.is_empty());
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("jobhooks-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| Failure::failed(format!("cannot start an HTTP client: {error}")))?;
        Ok(Self { base, token, client, json, user: tokio::sync::OnceCell::new() })
    }

    /// The address of `segments` under the server's `/api/`, each segment escaped, with a
    /// trailing slash (the API's paths end with one).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("api").extend(segments).push("");
        }
        url
    }

    /// One request; a 4xx answer is the caller's input (exit 2) with the server's message, and
    /// anything else that is not a success is a failure (exit 1).
    async fn call(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Option<Value>, Failure> {
        let text = self.raw(method, url.clone(), body).await?;
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| Failure::failed(format!("the server's answer to {url} is not JSON: {error}")))
    }

    /// One request's answer as text, refusals turned into failures as [`Remote::call`] says.
    async fn raw(&self, method: Method, url: Url, body: Option<&Value>) -> Result<String, Failure> {
        let token = self.token.as_deref().ok_or_else(|| {
            Failure::bad_input("--url needs a token: give --token or set JOBHOOKS_TOKEN (`jobhooks users token add`)")
        })?;
        let mut request = self.client.request(method, url.clone()).header("Authorization", format!("Token {token}"));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.text_of(request, url).await
    }

    /// A request's JSON answer, refusals turned into failures as [`Remote::call`] says.
    async fn answer(&self, request: reqwest::RequestBuilder, url: Url) -> Result<Value, Failure> {
        let text = self.text_of(request, url.clone()).await?;
        serde_json::from_str(&text)
            .map_err(|error| Failure::failed(format!("the server's answer to {url} is not JSON: {error}")))
    }

    /// The failure of a request that did not reach the server.
    fn unreachable(&self, error: &reqwest::Error) -> Failure {
        Failure::failed(format!("cannot reach the server at {}: {}", self.base, jobhooks_model::error_chain(error)))
    }

    /// Sends `request`; its answer's text, refusals turned into failures.
    async fn text_of(&self, request: reqwest::RequestBuilder, url: Url) -> Result<String, Failure> {
        let response = request.send().await.map_err(|error| self.unreachable(&error))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| Failure::failed(format!("the server's answer to {url} was cut off: {error}")))?;
        if status.is_success() {
            return Ok(text);
        }
        let message = message_of(status, &text);
        if status.is_client_error() { Err(Failure::bad_input(message)) } else { Err(Failure::failed(message)) }
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, Failure> {
        let body = self.call(Method::GET, self.whole(segments), None).await?;
        decode(body.unwrap_or(Value::Null))
    }

    /// The address of `segments`, asking for related records whole (`?depth=1`): the answers
    /// read back into the model's types.
    fn whole(&self, segments: &[&str]) -> Url {
        let mut url = self.url(segments);
        url.query_pairs_mut().append_pair("depth", "1");
        url
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &impl Serialize,
    ) -> Result<T, Failure> {
        let body = serde_json::to_value(body).map_err(|error| Failure::failed(error.to_string()))?;
        let answer = self.call(method, self.whole(segments), Some(&body)).await?;
        decode(answer.unwrap_or(Value::Null))
    }

    async fn delete(&self, segments: &[&str]) -> Result<(), Failure> {
        self.call(Method::DELETE, self.url(segments), None).await.map(drop)
    }

    /// Up to `limit` items of a paginated list, following `next` from page to page.
    async fn list<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        limit: usize,
    ) -> Result<Vec<T>, Failure> {
        let mut url = self.whole(segments);
        url.query_pairs_mut().extend_pairs(query).append_pair("limit", &limit.clamp(1, PAGE).to_string());
        let mut items = Vec::new();
        loop {
            let page = self.call(Method::GET, url.clone(), None).await?.unwrap_or(Value::Null);
            let results = page.get("results").cloned().unwrap_or(Value::Array(Vec::new()));
            items.extend(decode::<Vec<T>>(results)?);
            match page.get("next").and_then(Value::as_str) {
                Some(next) if items.len() < limit => {
                    url = self.base.join(next).map_err(|error| {
                        Failure::failed(format!("the server's next page `{next}` is not a path: {error}"))
                    })?;
                }
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    /// The token's user (the server says whose it is); a `--user` naming someone else is refused,
    /// since the server acts as the token's user.
    async fn check_acting(&self, acting: Option<&str>) -> Result<(), Failure> {
        let user = self
            .user
            .get_or_try_init(|| async {
                let status: Value = self.get(&["status"]).await?;
                Ok::<_, Failure>(status["user"].as_str().unwrap_or_default().to_owned())
            })
            .await?;
        match acting {
            Some(acting) if acting != user => Err(Failure::bad_input(format!(
                "--user {acting}: the server acts as the token's user, {user}; use a token of {acting}"
            ))),
            _ => Ok(()),
        }
    }

    /// Streams the server's export of its store into `out` as it comes. An answer cut off (the
    /// server failed while streaming, or the connection broke) is a failure, and `out` is left
    /// unfinished.
    pub(crate) async fn export(&self, out: &mut crate::commands::transfer::ExportOut) -> Result<(), Failure> {
        let url = self.url(&["export"]);
        let token = self.token.as_deref().ok_or_else(|| {
            Failure::bad_input("--url needs a token: give --token or set JOBHOOKS_TOKEN (`jobhooks users token add`)")
        })?;
        let request = self.client.get(url.clone()).header("Authorization", format!("Token {token}"));
        let mut response = request.send().await.map_err(|error| self.unreachable(&error))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let message = message_of(status, &text);
            return Err(if status.is_client_error() { Failure::bad_input(message) } else { Failure::failed(message) });
        }
        let cut_off =
            |error: reqwest::Error| Failure::failed(format!("the server's answer to {url} was cut off: {error}"));
        while let Some(chunk) = response.chunk().await.map_err(cut_off)? {
            out.write(&chunk)?;
        }
        Ok(())
    }

    /// Asks the server to back its store up into `path`, on the server's machine.
    pub async fn backup(&self, path: &std::path::Path) -> Result<Value, Failure> {
        // The API names the field (`path: cannot back up into …`); the message names the path.
        self.send(Method::POST, &["backup"], &json!({ "path": path.display().to_string() }))
            .await
            .map_err(|failure| failure.without_field("path"))
    }

    /// The button body of Nautobot's job run endpoint.
    fn run_on(object: &ObjectRef) -> Value {
        json!({ "object_pk": object.id(), "object_model_name": object.content_type().as_str() })
    }

    /// An object write's answer as a commit receipt.
    fn receipt(answer: &Value) -> Result<CommitReceipt, Failure> {
        Ok(CommitReceipt {
            changes: answer["change"].as_u64().map(ChangeId).into_iter().collect(),
            runs: decode::<Vec<u64>>(answer["runs"].clone())?.into_iter().map(RunId).collect(),
        })
    }
}

/// A hook or a button as the API takes it to create: its id only when it has one.
fn written(record: &impl Serialize) -> Value {
    let mut body = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Some(fields) = body.as_object_mut()
        && fields
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| id.parse::<uuid::Uuid>().is_ok_and(|id| id.is_nil()))
    {
        fields.remove("id");
    }
    body
}

/// The message of a refusal: the fields' messages of a validation error, as the local store
/// words them, or the `detail`.
fn message_of(status: StatusCode, text: &str) -> String {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if let Some(detail) = body.get("detail").and_then(Value::as_str) {
        return detail.to_owned();
    }
    if status == StatusCode::BAD_REQUEST
        && let Ok(errors) = serde_json::from_value::<ValidationErrors>(body)
        && !errors.is_empty()
    {
        return errors.to_string();
    }
    let shown = if text.is_empty() { status.canonical_reason().unwrap_or("no reason given") } else { text };
    format!("the server answered {}: {shown}", status.as_u16())
}

fn decode<T: DeserializeOwned>(value: Value) -> Result<T, Failure> {
    serde_json::from_value(value)
        .map_err(|error| Failure::failed(format!("the server's answer is not what this jobhooks expects: {error}")))
}

/// The model's record a view of the server's shows.
fn model<V, T: TryFrom<V, Error = ShapeError>>(view: V) -> Result<T, Failure> {
    T::try_from(view)
        .map_err(|error| Failure::failed(format!("the server's answer is not what this jobhooks expects: {error}")))
}

/// The model's records views of the server's show.
fn models<V, T: TryFrom<V, Error = ShapeError>>(views: Vec<V>) -> Result<Vec<T>, Failure> {
    views.into_iter().map(model).collect()
}

fn shape_failure(error: ShapeError) -> Failure {
    Failure::failed(format!("the server's answer is not what this jobhooks expects: {error}"))
}

impl Backend for Remote {
    fn json(&self) -> bool {
        self.json
    }

    async fn list_jobs(&self) -> Result<Vec<JobRecord>, Failure> {
        models(self.list::<JobView>(&["extras", "jobs"], &[], usize::MAX).await?)
    }

    async fn set_job_enabled(&self, class_path: &str, enabled: bool) -> Result<JobRecord, Failure> {
        model(
            self.send::<JobView>(Method::PATCH, &["extras", "jobs", class_path], &json!({ "enabled": enabled }))
                .await?,
        )
    }

    async fn restore_jobs(&self, class_paths: &[String]) -> Result<jobhooks_model::JobRestoreReport, Failure> {
        self.send(Method::POST, &["extras", "jobs", "restore"], &json!({ "jobs": class_paths })).await
    }

    async fn list_hooks(&self) -> Result<Vec<JobHook>, Failure> {
        models(self.list::<JobHookView>(&["extras", "job-hooks"], &[], usize::MAX).await?)
    }

    async fn get_hook(&self, name: &str) -> Result<JobHook, Failure> {
        model(self.get::<JobHookView>(&["extras", "job-hooks", name]).await?)
    }

    async fn create_hook(&self, hook: JobHook) -> Result<JobHook, Failure> {
        model(self.send::<JobHookView>(Method::POST, &["extras", "job-hooks"], &written(&hook)).await?)
    }

    async fn update_hook(&self, name: &str, patch: JobHookPatch) -> Result<JobHook, Failure> {
        model(self.send::<JobHookView>(Method::PATCH, &["extras", "job-hooks", name], &patch).await?)
    }

    async fn delete_hook(&self, name: &str) -> Result<JobHook, Failure> {
        let hook = self.get_hook(name).await?;
        self.delete(&["extras", "job-hooks", name]).await?;
        Ok(hook)
    }

    async fn list_buttons(&self) -> Result<Vec<JobButton>, Failure> {
        models(self.list::<JobButtonView>(&["extras", "job-buttons"], &[], usize::MAX).await?)
    }

    async fn create_button(&self, button: JobButton) -> Result<JobButton, Failure> {
        model(self.send::<JobButtonView>(Method::POST, &["extras", "job-buttons"], &written(&button)).await?)
    }

    async fn update_button(&self, name: &str, patch: JobButtonPatch) -> Result<JobButton, Failure> {
        model(self.send::<JobButtonView>(Method::PATCH, &["extras", "job-buttons", name], &patch).await?)
    }

    async fn delete_button(&self, name: &str) -> Result<JobButton, Failure> {
        let button = model(self.get::<JobButtonView>(&["extras", "job-buttons", name]).await?)?;
        self.delete(&["extras", "job-buttons", name]).await?;
        Ok(button)
    }

    async fn buttons_for(&self, object: &ObjectRef, acting: Option<&str>) -> Result<Vec<RenderedButton>, Failure> {
        self.check_acting(acting).await?;
        self.get(&["objects", object.content_type().as_str(), object.id(), "buttons"]).await
    }

    async fn press(&self, button: &str, object: &ObjectRef, acting: Option<&str>) -> Result<RunId, Failure> {
        self.check_acting(acting).await?;
        let answer: Value =
            self.send(Method::POST, &["extras", "job-buttons", button, "press"], &Self::run_on(object)).await?;
        let result: JobResultView = decode(answer["job_result"].clone())?;
        Ok(RunId(result.id))
    }

    /// Asks the server for the result, to answer once it has ended (`?wait=30`), until it has:
    /// the server's dispatcher runs it.
    async fn wait_for(&self, run: RunId) -> Result<JobResult, Failure> {
        loop {
            let mut url = self.whole(&["extras", "job-results", &run.0.to_string()]);
            url.query_pairs_mut().append_pair("wait", "30");
            let result: JobResultView = decode(self.call(Method::GET, url, None).await?.unwrap_or(Value::Null))?;
            let result = result.into_result(Vec::new()).map_err(shape_failure)?;
            if result.status.is_final() {
                return self.get_result(run).await;
            }
        }
    }

    async fn put_user(&self, user: User) -> Result<User, Failure> {
        self.send(Method::POST, &["users"], &user).await
    }

    async fn list_users(&self) -> Result<Vec<User>, Failure> {
        self.list(&["users"], &[], usize::MAX).await
    }

    async fn find_user(&self, username: &str) -> Result<Option<User>, Failure> {
        Ok(self.list_users().await?.into_iter().find(|user| user.username == username))
    }

    async fn issue_token(&self, username: &str, new: NewToken) -> Result<String, Failure> {
        let expires =
            new.expires.map(|at| at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default());
        let body = json!({ "expires": expires, "description": new.description, "write_enabled": new.write_enabled });
        let answer = match &new.password {
            // Nautobot's provisioning: the user's name and password stand for a token.
            Some(password) => {
                let url = self.url(&["users", "tokens", "provision"]);
                let request = self.client.post(url.clone()).basic_auth(username, Some(password)).json(&body);
                self.answer(request, url).await?
            }
            None => {
                let mut body = body;
                body["user"] = json!(username);
                self.send(Method::POST, &["users", "tokens"], &body).await?
            }
        };
        decode(answer["key"].clone())
    }

    async fn list_tokens(&self, username: Option<&str>) -> Result<Vec<TokenInfo>, Failure> {
        let query: Vec<(&str, String)> = username.map(|user| ("user", user.to_owned())).into_iter().collect();
        self.list(&["users", "tokens"], &query, usize::MAX).await
    }

    async fn revoke_token(&self, id: &str) -> Result<TokenInfo, Failure> {
        let token = self.get(&["users", "tokens", id]).await?;
        self.delete(&["users", "tokens", id]).await?;
        Ok(token)
    }

    async fn set_password(&self, username: &str, password: Option<String>) -> Result<(), Failure> {
        let _answer: Value =
            self.send(Method::PUT, &["users", username, "password"], &json!({ "password": password })).await?;
        Ok(())
    }

    async fn list_sessions(&self, username: Option<&str>) -> Result<Vec<SessionInfo>, Failure> {
        let query: Vec<(&str, String)> = username.map(|user| ("user", user.to_owned())).into_iter().collect();
        self.list(&["users", "sessions"], &query, usize::MAX).await
    }

    async fn end_session(&self, id: &str) -> Result<(), Failure> {
        self.delete(&["users", "sessions", id]).await
    }

    async fn get_object(&self, object: &ObjectRef) -> Result<Object, Failure> {
        self.get(&["objects", object.content_type().as_str(), object.id()]).await
    }

    async fn save_object(
        &self,
        reference: &ObjectRef,
        repr: Option<String>,
        data: Value,
        acting: Option<&str>,
    ) -> Result<CommitReceipt, Failure> {
        self.check_acting(acting).await?;
        let body = match repr {
            Some(repr) => json!({ "repr": repr, "data": data }),
            None => json!({ "data": data }),
        };
        let answer: Value =
            self.send(Method::PUT, &["objects", reference.content_type().as_str(), reference.id()], &body).await?;
        Self::receipt(&answer)
    }

    async fn delete_object(&self, object: &ObjectRef, acting: Option<&str>) -> Result<CommitReceipt, Failure> {
        self.check_acting(acting).await?;
        let url = self.url(&["objects", object.content_type().as_str(), object.id()]);
        let answer = self.call(Method::DELETE, url, None).await?.unwrap_or(Value::Null);
        Self::receipt(&answer)
    }

    async fn changes(&self, object: Option<&ObjectRef>, limit: usize) -> Result<Vec<ObjectChange>, Failure> {
        let query: Vec<(&str, String)> = match object {
            Some(object) => vec![
                ("changed_object_type", object.content_type().to_string()),
                ("changed_object_id", object.id().to_owned()),
            ],
            None => Vec::new(),
        };
        models(self.list::<ObjectChangeView>(&["extras", "object-changes"], &query, limit).await?)
    }

    async fn get_change(&self, id: ChangeId) -> Result<ObjectChange, Failure> {
        model(self.get::<ObjectChangeView>(&["extras", "object-changes", &id.0.to_string()]).await?)
    }

    async fn list_results(&self, filter: ResultFilter) -> Result<Vec<JobResult>, Failure> {
        let mut query = Vec::new();
        for job in filter.jobs {
            query.push(("job", job));
        }
        for status in filter.statuses {
            query.push((
                "status",
                serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            ));
        }
        for change in filter.changes {
            query.push(("object_change", change.0.to_string()));
        }
        for user in filter.users {
            query.push(("user", user));
        }
        for id in filter.ids {
            query.push(("id", id.0.to_string()));
        }
        let views: Vec<JobResultView> =
            self.list(&["extras", "job-results"], &query, filter.limit.unwrap_or(usize::MAX)).await?;
        views.into_iter().map(|view| view.into_result(Vec::new()).map_err(shape_failure)).collect()
    }

    async fn prune(&self, results_days: Option<u32>, changes_days: Option<u32>) -> Result<PruneReport, Failure> {
        let body = json!({ "results_days": results_days, "changes_days": changes_days });
        self.send(Method::POST, &["prune"], &body).await
    }

    async fn get_result(&self, run: RunId) -> Result<JobResult, Failure> {
        let id = run.0.to_string();
        let view: JobResultView = self.get(&["extras", "job-results", &id]).await?;
        let logs: Vec<JobLogView> = self.list(&["extras", "job-results", &id, "logs"], &[], usize::MAX).await?;
        view.into_result(logs.into_iter().map(JobLogView::into_entry).collect::<Vec<LogEntry>>()).map_err(shape_failure)
    }

    async fn replay(&self, run: RunId) -> Result<(), Failure> {
        let _: Value =
            self.send(Method::POST, &["extras", "job-results", &run.0.to_string(), "replay"], &json!({})).await?;
        Ok(())
    }
}
