//! The web page a person opens most, served fast on a busy object, written as JSON to
//! `target/bench/ui.json` for `cargo xtask bench`:
//!
//! - the object page (`GET /objects/dcim.device/busy/`, as a logged-in user with a session) of a
//!   device with 10,000 changes and 20 job buttons offered on its type (each text a template,
//!   two groups);
//! - its baseline, measured in the same run: the API's `GET /api/objects/dcim.device/busy/` (a
//!   token) of the same object.
//!
//! One client on 127.0.0.1, keep-alive, the two requests alternated; latencies in HDR histograms
//! (p50, p99, max). `cargo bench -p jobhooks-tests --bench ui`; under `cargo test` (no `--bench`
//! argument) it runs at a tiny scale and writes nothing.
#![allow(missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use jobhooks_model::ports::{Catalog, ChangeStore, Logins, ObjectWrites};
use jobhooks_model::{
    ApiToken, ChangeSet, ContentType, JobButton, LoginSession, Object, ObjectRef, OffsetDateTime, Permission, User,
    json,
};
use jobhooks_store::Store;

#[derive(Clone, Copy)]
struct Scale {
    changes: u64,
    samples: u64,
    report: bool,
}

const MEASURE: Scale = Scale { changes: 10_000, samples: 5_000, report: true };
const QUICK: Scale = Scale { changes: 10_000, samples: 1_000, report: true };
const SMOKE: Scale = Scale { changes: 50, samples: 20, report: false };

fn main() {
    let scale = support::scale(MEASURE, QUICK, SMOKE);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(measure(scale));
}

async fn measure(scale: Scale) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("store")).unwrap());
    let devices = ContentType::new("dcim.device").unwrap();
    let busy = ObjectRef::new(devices.clone(), "busy").unwrap();
    let mut previous: Option<Object> = None;
    for n in 0..scale.changes {
        let data =
            json!({"name": "busy", "serial": format!("S{n}"), "status": "active", "rack": "R1", "position": n % 42});
        let object = Object::new(busy.clone(), "busy", data).unwrap();
        let mut changes = ChangeSet::default();
        changes.save(&object, previous.as_ref());
        store.commit(&support::web(), changes, ObjectWrites::Apply).await.unwrap();
        previous = Some(object);
    }
    jobhooks_examples::link();
    let registry = jobhooks_register::Registry::from_linked().unwrap();
    registry.sync_into(&*store, jobhooks_model::SyncMode::Additive).await.unwrap();
    let job = <jobhooks_examples::ExampleSimpleJobButtonReceiver as jobhooks_register::JobClass>::CLASS_PATH;
    store.set_job_enabled(job, true).await.unwrap();
    for n in 0..20 {
        let mut button =
            JobButton::new(format!("button {n:02}"), vec![devices.clone()], "Run {{ obj }} #{{ obj.serial }}", job);
        button.group_name = match n % 3 {
            0 => None,
            1 => Some("Operations".into()),
            _ => Some("Checks".into()),
        };
        button.confirmation = n % 2 == 0;
        store.create_button(button).await.unwrap();
    }
    let user = User::new("viewer")
        .unwrap()
        .with_permission(Permission::new("dcim.view_device"))
        .with_permission(Permission::new("extras.run_job"));
    store.put_user(user).await.unwrap();
    let opened = LoginSession::open("viewer", OffsetDateTime::now_utc(), "bench");
    store.add_login(opened.session).await.unwrap();
    let issued = ApiToken::issue("viewer", OffsetDateTime::now_utc(), None, "bench");
    store.add_token(issued.token).await.unwrap();

    let base = support::serve_in_background(store.clone()).await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{base}/objects/dcim.device/busy/"))
        .header("Cookie", format!("jobhooks_session={}", opened.key));
    let api = client
        .get(format!("{base}/api/objects/dcim.device/busy/"))
        .header("Authorization", format!("Token {}", issued.key));
    let first = page.try_clone().unwrap().send().await.unwrap();
    assert_eq!(first.status(), 200, "the page is served");
    let body = first.text().await.unwrap();
    assert_eq!(body.matches("data-button=").count(), 20, "every button is on the page");
    let mut histograms = [(); 2].map(|()| Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap());
    for _ in 0..scale.samples {
        for (which, request) in [&page, &api].into_iter().enumerate() {
            let begin = Instant::now();
            let answer = request.try_clone().unwrap().send().await.unwrap();
            assert_eq!(answer.status(), 200);
            answer.bytes().await.unwrap();
            histograms[which].record((begin.elapsed().as_micros() as u64).max(1)).unwrap();
        }
    }
    let ms = |histogram: &Histogram<u64>, q: f64| histogram.value_at_quantile(q) as f64 / 1_000.0;
    let [page_ms, api_ms] = &histograms;
    let result = serde_json::json!({
        "changes": scale.changes, "buttons": 20, "samples": scale.samples,
        "page_p50_ms": ms(page_ms, 0.5), "page_p99_ms": ms(page_ms, 0.99), "page_max_ms": page_ms.max() as f64 / 1_000.0,
        "api_p50_ms": ms(api_ms, 0.5), "api_p99_ms": ms(api_ms, 0.99), "api_max_ms": api_ms.max() as f64 / 1_000.0,
    });
    support::write_report(scale.report, "ui.json", &result);
}
