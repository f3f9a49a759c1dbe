//! `POST /api/ingest/nautobot/`: deliveries of a Nautobot webhook, checked against their
//! signature and recorded as changes, so that receivers run for changes made in Nautobot.

use axum::http::HeaderMap;
use jobhooks_model::ports::ObjectWrites;
use jobhooks_model::{ChangeFilter, ChangeSet, NautobotDelivery, SIGNATURE_HEADER, signature_matches};

use super::*;

/// What the bridge from Nautobot needs: the secret its webhooks sign with, and a lock that makes a
/// replay wait for the first delivery of its change to be recorded.
pub(crate) struct NautobotIngest {
    pub(crate) secret: String,
    pub(crate) recording: tokio::sync::Mutex<()>,
}

/// What a delivery recorded.
#[derive(Serialize, ToSchema)]
pub(crate) struct Ingested {
    /// The change recorded (by this delivery or, for a replay, by an earlier one); `null` when the
    /// delivery reports a save that changed nothing.
    change: Option<ChangeId>,
    /// The hook runs it queued (none for a replay).
    runs: Vec<RunId>,
    /// Whether an earlier delivery had recorded the change already.
    replayed: bool,
}

#[utoipa::path(
    post,
    path = "/api/ingest/nautobot/",
    tag = "ingest",
    summary = "Record a change a Nautobot webhook reports (its default body, signed in X-Hook-Signature); off without `ingest.nautobot.secret`",
    security(()),
    request_body(content = Object, description = "Nautobot's webhook context: event, timestamp, model, username, request_id, data, snapshots"),
    responses(
        (status = 201, body = Ingested, description = "Recorded"),
        (status = 200, body = Ingested, description = "Recorded by an earlier delivery (a replay), or a save that changed nothing"),
        Refusals,
    ),
)]
pub(crate) async fn ingest_nautobot<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer<(StatusCode, Json<Ingested>)> {
    let Some(ingest) = &state.nautobot_ingest else {
        return Err(ApiError::NotFound(
            "Not found: the Nautobot bridge is off (set ingest.nautobot.secret or JOBHOOKS_INGEST_NAUTOBOT_SECRET)."
                .into(),
        ));
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|value| value.to_str().ok()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "The {SIGNATURE_HEADER} header is required: give the webhook a secret in Nautobot."
        ))
    })?;
    if !signature_matches(&ingest.secret, &body, signature) {
        return Err(ApiError::BadRequest(format!(
            "The {SIGNATURE_HEADER} header does not match the body: the webhook's secret in Nautobot must equal ingest.nautobot.secret."
        )));
    }
    let delivery = NautobotDelivery::parse(&body).map_err(ApiError::Validation)?;
    let _recording = ingest.recording.lock().await;
    let mut filter = ChangeFilter::default();
    filter.request_ids = vec![delivery.context.request_id];
    filter.content_types = vec![delivery.change.object.content_type().clone()];
    filter.object_ids = vec![delivery.change.object.id().to_owned()];
    let earlier = state.store.find_changes(&filter, 0, 100).await?;
    if let Some(recorded) = earlier.iter().find(|change| delivery.is_recorded_as(change)) {
        let replay = Ingested { change: Some(recorded.id), runs: Vec::new(), replayed: true };
        return Ok((StatusCode::OK, Json(replay)));
    }
    let mut changes = ChangeSet::default();
    changes.record(delivery.change);
    let receipt = state.store.commit(&delivery.context, changes, ObjectWrites::Apply).await?;
    let change = receipt.changes.first().copied();
    let status = if change.is_some() { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(Ingested { change, runs: receipt.runs, replayed: false })))
}
