//! Outbound webhooks through the API: a hook with `webhook` instead of `job`, its own permission,
//! its secret never shown, bad webhooks a 400 under `webhook`, and the allow-list at save time.

use jobhooks_model::WebhookPolicy;

use super::*;

fn webhook_hook(name: &str, url: &str) -> Value {
    json!({
        "name": name, "content_types": ["dcim.device"], "type_update": true,
        "webhook": {"payload_url": url, "secret": "s3cret", "additional_headers": "X-Source: jobhooks"},
    })
}

#[tokio::test]
async fn a_webhook_needs_its_own_permission_and_its_secret_is_never_shown() {
    let server = Server::start().await;
    // alice may add job hooks, not webhooks.
    let (status, refused) =
        server.post("/api/extras/job-hooks/", &server.alice, webhook_hook("cmdb", "https://cmdb.example/in")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("extras.add_webhook"), "{refused}");

    let (status, created) =
        server.post("/api/extras/job-hooks/", &server.root, webhook_hook("cmdb", "https://cmdb.example/in")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["webhook"]["secret"], "********");
    assert_eq!(
        (&created["webhook"]["http_method"], &created["webhook"]["ssl_verification"]),
        (&json!("POST"), &json!(true))
    );
    assert_eq!(
        created["job"]["url"],
        server.url(&format!("/api/extras/jobs/{}/", derived_id(RecordKind::Job, jobhooks_model::WEBHOOK_JOB)))
    );
    let stored = server.store.get_hook("cmdb").await.unwrap().unwrap();
    assert_eq!(stored.webhook.as_ref().unwrap().secret, "s3cret");

    // Written back as read, the secret is kept; a new one replaces it.
    let path = format!("/api/extras/job-hooks/{}/", created["id"].as_str().unwrap());
    let (status, _) = server.call(reqwest::Method::PUT, &path, Some(&server.root), Some(created.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.store.get_hook("cmdb").await.unwrap().unwrap().webhook.unwrap().secret, "s3cret");
    let mut changed = created["webhook"].clone();
    changed["secret"] = json!("n3w");
    let (status, _) =
        server.call(reqwest::Method::PATCH, &path, Some(&server.root), Some(json!({"webhook": changed}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.store.get_hook("cmdb").await.unwrap().unwrap().webhook.unwrap().secret, "n3w");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_webhook_is_a_400_under_webhook_and_the_allow_list_is_checked_when_it_is_saved() {
    let policy = WebhookPolicy::allowing([".corp.example", "10.0.0.0/8"]).unwrap();
    let server = Server::start_configured(Default::default(), |state| state.with_webhook_policy(policy)).await;
    for (url, said) in [
        ("ftp://files.corp.example/", "is not an http:// or https:// URL"),
        ("https://{{ data.host }}/in", "the URL's host is written out, not a template"),
        ("https://192.168.1.1/in", "192.168.1.1 is not a destination the webhook allow-list"),
    ] {
        let (status, refused) = server.post("/api/extras/job-hooks/", &server.root, webhook_hook("w", url)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {refused}");
        assert!(refused["webhook"][0].as_str().unwrap().contains(said), "{url}: {refused}");
    }
    let mut bad = webhook_hook("w", "https://cmdb.corp.example/in");
    bad["webhook"]["additional_headers"] = json!("no colon here");
    bad["webhook"]["body_template"] = json!("{% for %}");
    let (status, refused) = server.post("/api/extras/job-hooks/", &server.root, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let messages: Vec<&str> = refused["webhook"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(messages.iter().any(|message| message.starts_with("additional_headers: `no colon here`")), "{messages:?}");
    assert!(
        messages.iter().any(|message| message.starts_with("body_template: the template does not compile")),
        "{messages:?}"
    );
    let (_, hooks) = server.get("/api/extras/job-hooks/", &server.root).await;
    assert_eq!(hooks["count"], 0, "nothing was written");

    // Admitted by name, or by a network for a name that may resolve into it.
    for url in ["https://cmdb.corp.example/in", "http://10.1.2.3:8080/in", "https://elsewhere.example/in"] {
        let (status, created) =
            server.post("/api/extras/job-hooks/", &server.root, webhook_hook(&format!("to {url}"), url)).await;
        assert_eq!(status, StatusCode::CREATED, "{url}: {created}");
    }
    server.stop().await;
}
