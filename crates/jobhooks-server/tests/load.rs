//! A bounded load test over real HTTP: 100 concurrent clients write objects through the API for
//! 20 s (`JOBHOOKS_LOAD_SECONDS` to change it) against a server with its dispatcher on a sled
//! store. No answer may be a 5xx, and every change the API acknowledged must have its hook run,
//! completed, once. It prints the request latencies' p50 and p99 and the rate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::{Catalog, QueueReader, ResultFilter};
use jobhooks_model::{
    Action, ApiToken, ContentType, JobContext, JobError, JobHook, JobHookReceiver, JobStatus, Object, ObjectChange,
    OffsetDateTime, SyncMode, User, async_trait,
};
use jobhooks_register::{Registry, register_job_hook_receiver};
use jobhooks_server::{AppState, router, serve};
use jobhooks_store::Store;

const CLIENTS: usize = 100;

/// Does nothing: the test counts runs, not work.
#[derive(Default)]
struct Noted;

#[async_trait]
impl JobHookReceiver for Noted {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        Ok(())
    }
}

register_job_hook_receiver!(Noted);

fn percentile(sorted: &[Duration], quantile: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * quantile).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_clients_for_twenty_seconds_lose_no_change_and_meet_no_5xx() {
    let seconds: u64 = std::env::var("JOBHOOKS_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("db")).unwrap());
    let registry = Registry::from_linked().unwrap();
    registry.sync_into(&*store, SyncMode::Full).await.unwrap();
    let job = format!("{}::Noted", module_path!());
    store.set_job_enabled(&job, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    store.create_hook(JobHook::new("all", devices, job.as_str()).on([Action::Create, Action::Update])).await.unwrap();
    store.put_user(User::superuser("loader").unwrap()).await.unwrap();
    let issued = ApiToken::issue("loader", OffsetDateTime::now_utc(), None, "load");
    store.add_token(issued.token).await.unwrap();
    let dispatcher = Dispatcher::start(store.clone(), registry, DispatcherConfig::default()).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(AppState::new(store.clone()).with_dispatcher(dispatcher.monitor()));
    let serving = tokio::spawn(serve(listener, app, async {
        let _ = stopped.await;
    }));

    let until = Instant::now() + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (base, key) = (base.clone(), issued.key.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let (mut latencies, mut changes, mut statuses) = (Vec::new(), Vec::new(), HashMap::new());
                let mut round = 0_u64;
                while Instant::now() < until {
                    let begin = Instant::now();
                    let response = http
                        .put(format!("{base}/api/objects/dcim.device/{client}/"))
                        .header("Authorization", format!("Token {key}"))
                        .json(&serde_json::json!({"data": {"name": format!("d{client}"), "round": round}}))
                        .send()
                        .await
                        .expect("the server answers");
                    let status = response.status().as_u16();
                    let body: serde_json::Value = response.json().await.unwrap_or_default();
                    latencies.push(begin.elapsed());
                    *statuses.entry(status).or_insert(0_u64) += 1;
                    if status == 200 {
                        changes.push(body["change"].as_u64().expect("an acknowledged write names its change"));
                    }
                    round += 1;
                }
                (latencies, changes, statuses)
            })
        })
        .collect();
    let (mut latencies, mut acknowledged, mut statuses) = (Vec::new(), Vec::new(), HashMap::new());
    for client in clients {
        let (mine, changes, counts) = client.await.unwrap();
        latencies.extend(mine);
        acknowledged.extend(changes);
        for (status, count) in counts {
            *statuses.entry(status).or_insert(0) += count;
        }
    }
    tokio::time::timeout(Duration::from_secs(300), dispatcher.drain()).await.expect("drained in time").unwrap();

    latencies.sort();
    let requests = latencies.len();
    println!(
        "{requests} requests by {CLIENTS} clients in {seconds} s ({:.0}/s); latency p50 {:?}, p99 {:?}; statuses {statuses:?}",
        requests as f64 / seconds as f64,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    assert!(statuses.keys().all(|status| *status < 500), "no 5xx: {statuses:?}");
    assert_eq!(statuses.get(&200).copied().unwrap_or(0) as usize, requests, "every write was acknowledged");

    let results = store.list_results(&ResultFilter::default()).await.unwrap();
    let mut runs_by_change: HashMap<u64, Vec<JobStatus>> = HashMap::new();
    for result in &results {
        if let Some(change) = result.change_id() {
            runs_by_change.entry(change.0).or_default().push(result.status);
        }
    }
    for change in &acknowledged {
        assert_eq!(runs_by_change.get(change).map(Vec::as_slice), Some(&[JobStatus::Success][..]), "change {change}");
    }
    assert_eq!(runs_by_change.len(), acknowledged.len(), "no run for a change that was not acknowledged");

    dispatcher.shutdown(Duration::from_secs(10)).await;
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}
