//! Operations for superusers and monitors: the server's status, backups, exports, pruning.

use super::*;

/// What `GET /api/status/` answers.
#[derive(Serialize, ToSchema)]
pub(crate) struct ServerStatus {
    /// This server's version.
    #[serde(rename = "jobhooks-version")]
    version: &'static str,
    /// Whose token the request carried.
    user: String,
    /// The queue's runs by state.
    queue: QueueDepth,
}

#[utoipa::path(
    get,
    path = "/api/status/",
    tag = "status",
    summary = "The server's version, the caller and the queue",
    responses((status = 200, body = ServerStatus), Refusals),
)]
pub(crate) async fn status<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
) -> Answer<Json<ServerStatus>> {
    let queue = state.store.depth().await?;
    Ok(Json(ServerStatus { version: env!("CARGO_PKG_VERSION"), user: caller.0.username, queue }))
}

/// Where `POST /api/backup/` copies the store: a new or empty directory on the server's machine.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackupTarget {
    path: String,
}

/// What a backup copied, and where.
#[derive(Serialize, ToSchema)]
pub(crate) struct BackupDone {
    path: String,
    records: u64,
    bytes: u64,
}

#[utoipa::path(
    post,
    path = "/api/backup/",
    tag = "operations",
    summary = "Copy the store, while it serves, into a new directory under the server's backup directory (superusers; sled only)",
    request_body = BackupTarget,
    responses((status = 201, body = BackupDone), Refusals),
)]
pub(crate) async fn backup<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Body(target): Body<BackupTarget>,
) -> Answer<(StatusCode, Json<BackupDone>)> {
    caller.require_superuser()?;
    if target.path.is_empty() {
        return Err(field_error("path", "This field may not be blank.".into()));
    }
    let backup = state.backup.as_ref().ok_or_else(|| {
        ApiError::Conflict(
            "this store is not backed up through jobhooks: back PostgreSQL up with its own tools (pg_dump)".into(),
        )
    })?;
    let path = std::path::Path::new(&target.path);
    within_backup_dir(state.backup_dir.as_deref(), path)?;
    let report = backup.backup_to(path).await?;
    tracing::info!(path = %target.path, records = report.records, "backed the store up");
    Ok((StatusCode::CREATED, Json(BackupDone { path: target.path, records: report.records, bytes: report.bytes })))
}

/// Refuses a backup target that is not under `dir` (symbolic links and `..` resolved), or any
/// target when no directory is set.
pub(crate) fn within_backup_dir(dir: Option<&std::path::Path>, target: &std::path::Path) -> Result<(), ApiError> {
    let dir = dir.ok_or_else(|| {
        ApiError::Conflict(
            "backups through the API are written only under the server's backup directory, and none is set: \
             set server.backup_dir (JOBHOOKS_SERVER_BACKUP_DIR), or run `jobhooks backup` where the store is"
                .into(),
        )
    })?;
    let outside = || field_error("path", format!("backups are written only under {}", dir.display()));
    if !target.is_absolute() {
        return Err(field_error("path", "give an absolute path".to_owned()));
    }
    let parent = target.parent().ok_or_else(outside)?;
    let (Ok(parent), Ok(dir)) = (std::fs::canonicalize(parent), std::fs::canonicalize(dir)) else {
        return Err(outside());
    };
    if parent.starts_with(&dir) && target.file_name().is_some_and(|name| name != "..") {
        Ok(())
    } else {
        Err(outside())
    }
}

#[utoipa::path(
    get,
    path = "/api/export/",
    tag = "operations",
    summary = "Every record of the store as JSON lines, for `jobhooks import` (superusers)",
    description = "Streamed a page of records at a time, so that the server's memory stays flat however \
        large the store. A failure while streaming cuts the answer off before the chunked body's end: a \
        client that keeps only complete answers keeps no partial export.",
    responses((status = 200, content_type = "application/x-ndjson", body = String), Refusals),
)]
pub(crate) async fn export<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
) -> Answer<axum::response::Response> {
    use axum::response::IntoResponse;
    caller.require_superuser()?;
    let exporter = jobhooks_model::transfer::Exporter::new(state.store.clone(), OffsetDateTime::now_utc()).await?;
    let pages = futures_util::stream::try_unfold(exporter, |mut exporter| async move {
        let Some(records) = exporter.next_records().await.inspect_err(|failure| {
            tracing::error!(error = %jobhooks_model::error_chain(failure), "the export stopped");
        })?
        else {
            return Ok(None);
        };
        let lines: String = records.iter().map(jobhooks_model::transfer::Record::json_line).collect();
        Ok::<_, jobhooks_model::StorageFailure>(Some((lines, exporter)))
    });
    let headers = [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")];
    Ok((headers, axum::body::Body::from_stream(pages)).into_response())
}

/// How long `POST /api/prune/` keeps what it may remove.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PruneAfter {
    /// Days to keep finished results.
    results_days: Option<u32>,
    /// Days to keep changes (an object's latest change, and changes with kept results, stay).
    changes_days: Option<u32>,
}

#[utoipa::path(
    post,
    path = "/api/prune/",
    tag = "operations",
    summary = "Remove finished results and old changes now, as retention would (superusers)",
    request_body = PruneAfter,
    responses((status = 200, body = jobhooks_model::ports::PruneReport), Refusals),
)]
pub(crate) async fn prune<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Body(after): Body<PruneAfter>,
) -> Answer<Json<jobhooks_model::ports::PruneReport>> {
    caller.require_superuser()?;
    let retention = jobhooks_model::ports::Retention::from_days(after.results_days, after.changes_days);
    if retention == jobhooks_model::ports::Retention::default() {
        let mut errors = ValidationErrors::default();
        errors.add(ValidationErrors::NON_FIELD, "Give results_days, changes_days or both.");
        return Err(ApiError::Validation(errors));
    }
    Ok(Json(state.store.prune(&retention, OffsetDateTime::now_utc()).await?))
}

#[utoipa::path(
    get,
    path = "/api/",
    tag = "status",
    summary = "The API's root: its apps, as Nautobot lists them; clients read the API-Version header here",
    security(()),
    responses((status = 200, description = "The apps' addresses")),
)]
pub(crate) async fn api_root(OriginalUri(uri): OriginalUri) -> Json<Value> {
    let origin = crate::shapes::origin_of(&uri);
    Json(serde_json::json!({
        "extras": format!("{origin}/api/extras/"),
        "users": format!("{origin}/api/users/"),
        "status": format!("{origin}/api/status/"),
        "docs": format!("{origin}/api/docs/openapi.json"),
    }))
}
