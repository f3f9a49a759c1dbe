//! A page of a large change log, filtered by object, served fast: written as JSON to
//! `target/bench/change_log.json` for `cargo xtask bench`.
//!
//! - the store: 1,000,000 changes of 10,000 devices (100 each), on sled;
//! - measured: `GET /api/extras/object-changes/?changed_object_type=dcim.device&changed_object_id=…`
//!   (the newest 50 of one device's changes, its count, through the object index), for devices
//!   picked round the whole log; and, measured apart, a far offset of the whole log
//!   (`?offset=999999999`, which reads no change but counts the log's keys), and a filter no
//!   index holds (`?action=delete`, one walk of the log for its count: three samples);
//! - the baseline, measured in the same run: `GET /api/extras/object-changes/{id}/`, one change
//!   by its id.
//!
//! One client on 127.0.0.1, keep-alive, the filtered page and its baseline alternated; latencies
//! in HDR histograms.
//!
//! Then the export of the same store: `GET /api/export/` read to its end by the client (and
//! dropped as it comes), with this process's resident memory sampled meanwhile; its growth is set
//! beside the export's size and beside the growth of `transfer::export`, which holds the whole
//! export in memory (measured after, in the same process).
//! `cargo bench -p jobhooks-tests --bench change_log`; under `cargo test` (no `--bench` argument)
//! it runs at a tiny scale and writes nothing.
#![allow(missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use jobhooks_model::ports::{Catalog, ChangeStore, ObjectWrites};
use jobhooks_model::{ApiToken, ChangeSet, ContentType, Object, ObjectRef, OffsetDateTime, Permission, User, json};
use jobhooks_store::Store;

#[derive(Clone, Copy)]
struct Scale {
    devices: u64,
    changes_per_device: u64,
    samples: u64,
    report: bool,
}

const MEASURE: Scale = Scale { devices: 10_000, changes_per_device: 100, samples: 2_000, report: true };
const QUICK: Scale = Scale { devices: 10_000, changes_per_device: 100, samples: 500, report: true };
const SMOKE: Scale = Scale { devices: 20, changes_per_device: 3, samples: 10, report: false };

/// Changes committed together while the log is written (of as many devices: the changes of one
/// object in one commit would make one change).
const PER_COMMIT: u64 = 1_000;

fn main() {
    let scale = support::scale(MEASURE, QUICK, SMOKE);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(measure(scale));
}

/// Sends `request`, reads its answer, and records how long that took.
async fn timed(histogram: &mut Histogram<u64>, request: reqwest::RequestBuilder) {
    let begin = Instant::now();
    let answer = request.send().await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.bytes().await.unwrap();
    histogram.record((begin.elapsed().as_micros() as u64).max(1)).unwrap();
}

async fn measure(scale: Scale) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("store")).unwrap());
    let devices = ContentType::new("dcim.device").unwrap();
    let device = |n: u64| ObjectRef::new(devices.clone(), format!("d{n}")).unwrap();
    let total = scale.devices * scale.changes_per_device;
    let written = Instant::now();
    let mut previous: Vec<Option<Object>> = vec![None; scale.devices as usize];
    let mut changes = ChangeSet::default();
    let per_commit = PER_COMMIT.min(scale.devices);
    for n in 0..total {
        // Round the devices, so that each device's changes are spread over the whole log.
        let which = n % scale.devices;
        let data = json!({"name": format!("d{which}"), "serial": format!("S{n}"), "status": "active"});
        let object = Object::new(device(which), format!("d{which}"), data).unwrap();
        changes.save(&object, previous[which as usize].as_ref());
        previous[which as usize] = Some(object);
        if (n + 1) % per_commit == 0 || n + 1 == total {
            let batch = std::mem::take(&mut changes);
            store.commit(&support::web(), batch, ObjectWrites::Apply).await.unwrap();
        }
    }
    let write_s = written.elapsed().as_secs_f64();
    assert_eq!(store.count_changes().await.unwrap(), total);
    let user = User::new("viewer").unwrap().with_permission(Permission::new("extras.view_objectchange"));
    store.put_user(user).await.unwrap();
    let issued = ApiToken::issue("viewer", OffsetDateTime::now_utc(), None, "bench");
    store.add_token(issued.token).await.unwrap();

    let base = support::serve_in_background(store.clone()).await;
    let client = reqwest::Client::new();
    let get =
        |path: String| client.get(format!("{base}{path}")).header("Authorization", format!("Token {}", issued.key));
    let filtered = |n: u64| {
        get(format!(
            "/api/extras/object-changes/?changed_object_type=dcim.device&changed_object_id=d{}&limit=50",
            n % scale.devices
        ))
    };
    let first: serde_json::Value = filtered(0).send().await.unwrap().json().await.unwrap();
    assert_eq!(first["count"], scale.changes_per_device, "the object's whole count");
    assert_eq!(first["results"].as_array().unwrap().len(), scale.changes_per_device.min(50) as usize);
    let far = get("/api/extras/object-changes/?offset=999999999&limit=50".into());
    let by_id = |n: u64| get(format!("/api/extras/object-changes/{}/", 1 + (n * 7_919) % total));

    let mut histograms = [(); 3].map(|()| Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap());
    // The filtered page and its baseline alternated; devices picked round the whole log, apart
    // from each other.
    for sample in 0..scale.samples {
        timed(&mut histograms[0], filtered(sample * 7_919)).await;
        timed(&mut histograms[2], by_id(sample)).await;
    }
    // The far offset apart: it counts the whole log, which would evict the others' pages.
    for _ in 0..scale.samples.div_ceil(50) {
        timed(&mut histograms[1], far.try_clone().unwrap()).await;
    }
    // A filter no index holds (`action`): one walk of the whole log per answer, for its count.
    let mut unindexed = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
    for _ in 0..3 {
        timed(&mut unindexed, get("/api/extras/object-changes/?action=delete&limit=50".into())).await;
    }
    let export = measure_export(&store, &base).await;
    let ms = |histogram: &Histogram<u64>, q: f64| histogram.value_at_quantile(q) as f64 / 1_000.0;
    let [filtered_ms, far_ms, by_id_ms] = &histograms;
    let result = serde_json::json!({
        "changes": total, "devices": scale.devices, "samples": scale.samples, "write_s": write_s,
        "filtered_p50_ms": ms(filtered_ms, 0.5), "filtered_p99_ms": ms(filtered_ms, 0.99),
        "far_offset_p50_ms": ms(far_ms, 0.5), "far_offset_p99_ms": ms(far_ms, 0.99),
        "by_id_p50_ms": ms(by_id_ms, 0.5), "by_id_p99_ms": ms(by_id_ms, 0.99),
        "unindexed_filter_median_ms": ms(&unindexed, 0.5),
        "export": export,
    });
    support::write_report(scale.report, "change_log.json", &result);
}

/// The most this process's resident memory grows above where it was while `work` runs, in MB,
/// sampled every 5 ms on a thread of its own.
async fn rss_growth<T>(work: impl std::future::Future<Output = T>) -> (T, f64) {
    let before = jobhooks_tests::memory_mb("VmRSS:");
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut most = before;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(jobhooks_tests::memory_mb("VmRSS:"));
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            most.max(jobhooks_tests::memory_mb("VmRSS:"))
        })
    };
    let value = work.await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    (value, sampler.join().unwrap() - before)
}

/// The export of `store` streamed through the server at `base`, then collected in memory.
async fn measure_export(store: &Arc<Store>, base: &str) -> serde_json::Value {
    store.put_user(User::superuser("admin").unwrap()).await.unwrap();
    let issued = ApiToken::issue("admin", OffsetDateTime::now_utc(), None, "export");
    store.add_token(issued.token).await.unwrap();
    let client = reqwest::Client::new();
    let begin = Instant::now();
    let (bytes, streamed_growth) = rss_growth(async {
        let request =
            client.get(format!("{base}/api/export/")).header("Authorization", format!("Token {}", issued.key));
        let mut answer = request.send().await.unwrap();
        let mut bytes = 0;
        while let Some(chunk) = answer.chunk().await.unwrap() {
            bytes += chunk.len();
        }
        bytes
    })
    .await;
    let streamed_s = begin.elapsed().as_secs_f64();
    let (snapshot, collected_growth) =
        rss_growth(jobhooks_model::transfer::export(&**store, OffsetDateTime::now_utc())).await;
    let snapshot = snapshot.unwrap();
    assert_eq!(snapshot.changes.len() as u64, store.count_changes().await.unwrap());
    let mb = bytes as f64 / 1_048_576.0;
    serde_json::json!({
        "export_mb": mb, "streamed_s": streamed_s,
        "streamed_rss_growth_mb": streamed_growth, "collected_rss_growth_mb": collected_growth,
        "streamed_growth_per_export_mb": streamed_growth / mb,
    })
}
