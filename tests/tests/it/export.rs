//! An export over HTTP is streamed a page at a time: the answer starts before the store has been
//! read to its end, so the server's memory stays at a page however large the store; a failure
//! midway cuts the answer off instead of ending it as if it were whole.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jobhooks_model::ports::{Catalog, ChangeStore, ObjectWrites};
use jobhooks_model::transfer::{EXPORT_PAGE, Record, Snapshot, export};
use jobhooks_model::{ApiToken, ChangeContext, ChangeContextKind, ChangeSet, OffsetDateTime, User, json};
use jobhooks_store::Store;
use jobhooks_tests::faults::FaultyStore;
use jobhooks_tests::object;

/// Two pages and a bit of changes, one object each.
const CHANGES: usize = EXPORT_PAGE * 2 + 100;

struct Served {
    _dir: tempfile::TempDir,
    store: Arc<FaultyStore<Store>>,
    base: String,
    key: String,
}

async fn served() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(Store::open(dir.path()).unwrap()));
    store.put_user(User::superuser("admin").unwrap()).await.unwrap();
    let issued = ApiToken::issue("admin", OffsetDateTime::now_utc(), None, "export");
    store.add_token(issued.token).await.unwrap();
    let context = ChangeContext::new(ChangeContextKind::Web, Some("admin".into()), "");
    for batch in 0..CHANGES / 100 {
        let mut changes = ChangeSet::default();
        for index in 0..100 {
            let id = (batch * 100 + index).to_string();
            changes.save(&object("dcim.device", &id, &id, json!({"name": id})), None);
        }
        store.commit(&context, changes, ObjectWrites::Apply).await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = jobhooks_server::router(jobhooks_server::AppState::new(store.clone()));
    tokio::spawn(jobhooks_server::serve(listener, app, std::future::pending()));
    Served { _dir: dir, store, base, key: issued.key }
}

impl Served {
    async fn export(&self) -> reqwest::Response {
        let client = reqwest::Client::new();
        let request =
            client.get(format!("{}/api/export/", self.base)).header("Authorization", format!("Token {}", self.key));
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        response
    }
}

fn count(text: &str, kind: &str) -> usize {
    text.matches(&format!("{{\"record\":\"{kind}\"")).count()
}

#[tokio::test]
async fn an_export_is_streamed_a_page_at_a_time() {
    let served = served().await;
    // The first page of changes may be read; the second waits until the test lets it.
    let gate = Arc::new(tokio::sync::Semaphore::new(1));
    served.store.faults.change_pages_gate.set(gate.clone()).unwrap();
    let mut response = served.export().await;
    let mut text = String::new();
    let first_page = async {
        while count(&text, "change") < EXPORT_PAGE {
            let chunk = response.chunk().await.unwrap().expect("the export goes on while the store is read");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(30), first_page)
        .await
        .expect("the first page arrives before the store is read to its end");
    assert_eq!(count(&text, "object"), CHANGES, "every object came first");
    assert_eq!(count(&text, "change"), EXPORT_PAGE, "only the first page of changes was read");

    gate.add_permits(usize::MAX >> 4);
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let streamed = Snapshot::from_records(text.lines().map(serde_json::from_str::<Record>)).unwrap();
    assert_eq!(streamed, export(&*served.store, OffsetDateTime::now_utc()).await.unwrap());
    assert_eq!(streamed.changes.len(), CHANGES);
}

#[tokio::test]
async fn an_export_that_fails_midway_is_cut_off_not_ended() {
    let served = served().await;
    served.store.faults.result_pages.store(1, Ordering::SeqCst);
    let cut_off = served.export().await.text().await;
    assert!(cut_off.is_err(), "a failed export never ends as if it were whole");
    assert_eq!(served.store.faults.result_pages.load(Ordering::SeqCst), 0, "the fault was met");
    let whole = served.export().await.text().await.unwrap();
    assert_eq!(count(&whole, "change"), CHANGES);
}
