//! Outbound webhooks against a server on 127.0.0.1 started by the test: the body and signature as
//! Nautobot sends them, retries on 500 with one idempotency key, a dead letter after the last
//! attempt, a 4xx failed at once, redirects not followed, nothing sent for a disabled hook or a
//! destination the allow-list refuses (before and after DNS).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobhooks_dispatch::{DispatcherConfig, RetryPolicy, WebhookConfig};
use jobhooks_model::ports::{Catalog, QueueReader};
use jobhooks_model::{
    Action, ContentType, JobHook, JobHookPatch, JobResult, JobStatus, WEBHOOK_JOB, Webhook, WebhookPolicy, json,
    sign_body,
};
use jobhooks_tests::{Harness, log_lines, object};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// One request the test server received.
#[derive(Debug)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// An HTTP/1.1 server that answers each request with the next of `answers` (status and extra
/// header lines; 200 when they run out) and reports every request it read.
async fn server(answers: Vec<(u16, &'static str)>) -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let (received, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (answers, received) = (answers.clone(), received.clone());
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                let mut buffer = [0u8; 4096];
                let head_end = loop {
                    let read = stream.read(&mut buffer).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    bytes.extend_from_slice(&buffer[..read]);
                    if let Some(end) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
                        break end;
                    }
                };
                let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let mut request_line = lines.next().unwrap_or_default().split(' ');
                let (method, path) = (request_line.next().unwrap_or_default(), request_line.next().unwrap_or_default());
                let headers: Vec<(String, String)> = lines
                    .filter_map(|line| line.split_once(':'))
                    .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                    .collect();
                let length = headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, value)| value.parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = bytes[head_end + 4..].to_vec();
                while body.len() < length {
                    let read = stream.read(&mut buffer).await.unwrap_or(0);
                    if read == 0 {
                        break;
                    }
                    body.extend_from_slice(&buffer[..read]);
                }
                let (status, extra) = answers.lock().unwrap().pop_front().unwrap_or((200, ""));
                let _ = received.send(Received { method: method.into(), path: path.into(), headers, body });
                let answer =
                    format!("HTTP/1.1 {status} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (address, requests)
}

/// A dispatcher whose webhook job tries three times, 10 ms apart, under `policy`.
async fn harness(policy: WebhookPolicy) -> Harness {
    let retry = RetryPolicy::retries(3, Duration::from_millis(10), Duration::from_millis(10)).without_jitter();
    let config = DispatcherConfig::default()
        .workers(2)
        .job_retry([(WEBHOOK_JOB.to_owned(), retry)].into())
        .webhooks(WebhookConfig::default().policy(policy).timeout(Duration::from_secs(5)));
    Harness::start(config).await
}

async fn add_webhook(h: &Harness, name: &str, content_type: &str, webhook: Webhook) -> JobHook {
    let types = vec![ContentType::new(content_type).unwrap()];
    let hook = JobHook::webhook(name, types, webhook).on([Action::Create, Action::Update]);
    h.store.create_hook(hook).await.unwrap()
}

/// The one webhook run there is, once the dispatcher has nothing left to do.
async fn the_run(h: &Harness) -> JobResult {
    h.dispatcher.drain().await.unwrap();
    let mut runs = h.results_of(WEBHOOK_JOB).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.remove(0)
}

fn drained(requests: &mut mpsc::UnboundedReceiver<Received>) -> Vec<Received> {
    std::iter::from_fn(|| requests.try_recv().ok()).collect()
}

#[tokio::test]
async fn a_webhook_is_signed_as_nautobot_signs_it_and_retried_on_500_with_one_idempotency_key() {
    let (address, mut requests) = server(vec![(500, "")]).await;
    let h = harness(WebhookPolicy::anywhere()).await;
    let url = format!("http://{address}/in/{{{{ model }}}}s");
    add_webhook(&h, "to cmdb", "dcim.device", Webhook::new(url).secret("s3cret").header("X-Event", "{{ event }}"))
        .await;
    h.save("alice", &[object("dcim.device", "d1", "edge-1", json!({"name": "edge-1", "status": "active"}))]).await;

    let run = the_run(&h).await;
    assert_eq!((run.status, run.attempts), (JobStatus::Success, 2), "{:?}", log_lines(&run));
    let sent = drained(&mut requests);
    assert_eq!(sent.len(), 2, "one 500, then the retry");
    for request in &sent {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/in/devices"));
        assert_eq!(request.header("X-Hook-Signature"), Some(sign_body("s3cret", &request.body).as_str()));
        assert_eq!(request.header("Idempotency-Key"), Some(run.id.0.to_string().as_str()));
        assert_eq!(request.header("Content-Type"), Some("application/json"));
        assert_eq!(request.header("X-Event"), Some("created"));
        assert!(!request.headers.iter().any(|(_, value)| value.contains("s3cret")), "the secret is never sent");
    }
    let body: Value = serde_json::from_slice(&sent[1].body).unwrap();
    assert_eq!(
        (&body["event"], &body["model"], &body["username"]),
        (&json!("created"), &json!("device"), &json!("alice"))
    );
    assert_eq!(body["data"], json!({"name": "edge-1", "status": "active"}));
    assert_eq!(body["snapshots"]["postchange"], body["data"]);
    assert!(body["request_id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert!(
        log_lines(&run).iter().any(|line| line.contains("answered 500 Internal Server Error")),
        "{:?}",
        log_lines(&run)
    );
}

#[tokio::test]
async fn a_webhook_failing_on_every_attempt_is_dead_lettered_and_a_4xx_or_a_redirect_fails_at_once() {
    let h = harness(WebhookPolicy::anywhere()).await;
    let (always_500, mut to_500) = server(vec![(500, ""), (502, ""), (503, "")]).await;
    add_webhook(&h, "down", "dcim.device", Webhook::new(format!("http://{always_500}/"))).await;
    h.save("alice", &[object("dcim.device", "d1", "edge-1", json!({}))]).await;
    let run = the_run(&h).await;
    assert_eq!((run.status, run.attempts), (JobStatus::DeadLettered, 3), "{:?}", log_lines(&run));
    assert_eq!(drained(&mut to_500).len(), 3);

    for (answer, said) in [
        ((404, ""), "answered 404 Not Found; not retried"),
        ((302, "Location: http://example.invalid/\r\n"), "redirects are not followed"),
    ] {
        let (address, mut requests) = server(vec![answer]).await;
        let hook = h.store.list_hooks().await.unwrap().remove(0);
        let patch =
            JobHookPatch { webhook: Some(Some(Webhook::new(format!("http://{address}/")))), ..Default::default() };
        h.store.update_hook(&hook.name, patch).await.unwrap();
        h.save("alice", &[object("dcim.device", "d1", "edge-1", json!({"answer": answer.0}))]).await;
        h.dispatcher.drain().await.unwrap();
        let run = h.results_of(WEBHOOK_JOB).await.into_iter().max_by_key(|run| run.id).unwrap();
        assert_eq!((run.status, run.attempts), (JobStatus::Failure, 1), "{:?}", log_lines(&run));
        assert!(log_lines(&run).iter().any(|line| line.contains(said)), "{:?}", log_lines(&run));
        assert_eq!(drained(&mut requests).len(), 1, "sent once, never followed");
    }
}

#[tokio::test]
async fn a_disabled_webhook_sends_nothing() {
    let (address, mut requests) = server(vec![]).await;
    let h = harness(WebhookPolicy::anywhere()).await;
    let hook = add_webhook(&h, "paused", "dcim.device", Webhook::new(format!("http://{address}/"))).await;
    let (dir, store) = h.stop().await;
    // Queued while it was enabled, disabled before the run started.
    let mut session = store.session(jobhooks_model::ChangeContext::web("alice"));
    session.save(object("dcim.device", "d1", "edge-1", json!({}))).await.unwrap();
    assert_eq!(session.commit().await.unwrap().runs.len(), 1);
    let patch = JobHookPatch { enabled: Some(false), ..Default::default() };
    store.update_hook(&hook.name, patch).await.unwrap();
    let h = Harness::start_on(dir, store, DispatcherConfig::default()).await;
    let run = the_run(&h).await;
    assert_eq!(run.status, JobStatus::Failure);
    assert_eq!(
        log_lines(&run).iter().filter(|line| line.contains("The webhook paused is disabled: nothing was sent")).count(),
        1
    );
    // Disabled, it queues nothing at all.
    h.save("alice", &[object("dcim.device", "d1", "edge-1", json!({"status": "planned"}))]).await;
    h.dispatcher.drain().await.unwrap();
    assert_eq!(h.results_of(WEBHOOK_JOB).await.len(), 1);
    assert!(drained(&mut requests).is_empty());
}

#[tokio::test]
async fn the_allow_list_is_checked_before_each_request_after_dns() {
    let (address, mut requests) = server(vec![]).await;
    let h = harness(WebhookPolicy::allowing(["10.0.0.0/8", "hooks.example"]).unwrap()).await;
    // An address outside the networks, and a name that resolves outside them.
    add_webhook(&h, "by address", "dcim.device", Webhook::new(format!("http://{address}/"))).await;
    add_webhook(&h, "by name", "dcim.rack", Webhook::new(format!("http://localhost:{}/", address.port()))).await;
    h.save("alice", &[object("dcim.device", "d1", "edge-1", json!({})), object("dcim.rack", "r1", "r1", json!({}))])
        .await;
    h.dispatcher.drain().await.unwrap();
    let runs = h.results_of(WEBHOOK_JOB).await;
    assert_eq!(runs.len(), 2);
    for run in &runs {
        assert_eq!((run.status, run.attempts), (JobStatus::Failure, 1), "{:?}", log_lines(run));
        let lines = log_lines(run);
        assert!(
            lines.iter().any(|line| line.contains("is not an address the webhook allow-list admits")
                || line.contains("which the webhook allow-list does not admit")),
            "{lines:?}"
        );
    }
    assert!(drained(&mut requests).is_empty(), "nothing reached the server");
    let _ = h.store.list_results(&Default::default()).await.unwrap();
}
