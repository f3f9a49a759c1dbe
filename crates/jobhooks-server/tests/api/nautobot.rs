//! Nautobot's shapes: records by id with `url`, `display` and `object_type`; related records at
//! `?depth=0` and `?depth=1`; writes by id, nested record or name; strict filters; runs with
//! Nautobot's body; logs at `/api/extras/job-logs/`; bulk deletes.

use super::*;

#[tokio::test]
async fn records_have_ids_and_links_and_are_addressed_by_id_or_name() {
    let server = Server::start().await;
    let (status, created) = server.post("/api/extras/job-hooks/", &server.root, hook("first")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["url"], server.url(&format!("/api/extras/job-hooks/{id}/")));
    assert_eq!((&created["display"], &created["object_type"]), (&json!("first"), &json!("extras.jobhook")));
    assert!(created["created"].is_string() && created["last_updated"].is_string());
    let job_id = derived_id(RecordKind::Job, AUDIT).to_string();
    let job_url = server.url(&format!("/api/extras/jobs/{job_id}/"));
    assert_eq!(created["job"], json!({"id": job_id, "object_type": "extras.job", "url": job_url}));

    // By id and by name; the name keeps working for existing scripts.
    let (_, by_id) = server.get(&format!("/api/extras/job-hooks/{id}/"), &server.root).await;
    let (_, by_name) = server.get("/api/extras/job-hooks/first/", &server.root).await;
    assert_eq!(by_id, by_name);
    // ?depth=1 nests the job whole.
    let (_, deep) = server.get(&format!("/api/extras/job-hooks/{id}/?depth=1"), &server.root).await;
    assert_eq!((&deep["job"]["class_path"], &deep["job"]["is_job_hook_receiver"]), (&json!(AUDIT), &json!(true)));
    assert_eq!(deep["job"]["url"], job_url);
    // The job is addressed by id, class path or name.
    for key in [job_id.as_str(), AUDIT] {
        let (status, job) = server.get(&format!("/api/extras/jobs/{key}/"), &server.root).await;
        assert_eq!((status, &job["id"]), (StatusCode::OK, &json!(job_id)), "{key}");
        assert_eq!((&job["module_name"], &job["job_class_name"]), (&json!("app::jobs"), &json!("Audit")));
    }

    // Writes take the job as an id, a nested record, or a class path; PATCH by id renames.
    let by_nested =
        json!({"name": "second", "content_types": ["dcim.rack"], "job": {"id": job_id}, "type_create": true});
    let (status, second) = server.post("/api/extras/job-hooks/", &server.root, by_nested).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let patch = Some(json!({"name": "renamed", "job": job_id, "url": "ignored", "display": "ignored"}));
    let path = format!("/api/extras/job-hooks/{}/", second["id"].as_str().unwrap());
    let (status, renamed) = server.call(reqwest::Method::PATCH, &path, Some(&server.root), patch).await;
    assert_eq!(
        (status, &renamed["name"], &renamed["id"]),
        (StatusCode::OK, &json!("renamed"), &second["id"]),
        "{renamed}"
    );
    let unknown = Some(json!({"job": "00000000-0000-0000-0000-000000000001"}));
    let (status, body) = server.call(reqwest::Method::PATCH, &path, Some(&server.root), unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["job"],
        json!(["Related object not found using the provided attribute(s): id=00000000-0000-0000-0000-000000000001"])
    );
    let typo = Some(json!({"enabeld": false}));
    let (status, _) = server.call(reqwest::Method::PATCH, &path, Some(&server.root), typo).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a field that is neither writable nor read-only is refused");

    // Bulk delete, as pynautobot's `delete([...])`: all or nothing.
    let missing = json!([{"id": id}, {"id": "00000000-0000-0000-0000-000000000002"}]);
    let (status, _) =
        server.call(reqwest::Method::DELETE, "/api/extras/job-hooks/", Some(&server.root), Some(missing)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let both = json!([{"id": id}, {"id": second["id"]}]);
    let (status, _) =
        server.call(reqwest::Method::DELETE, "/api/extras/job-hooks/", Some(&server.root), Some(both)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, left) = server.get("/api/extras/job-hooks/", &server.root).await;
    assert_eq!(left["count"], 0, "{left}");
    server.stop().await;
}

#[tokio::test]
async fn filters_are_strict_and_narrow_the_list() {
    let server = Server::start().await;
    for name in ["alpha", "beta"] {
        let mut body = hook(name);
        body["content_types"] = json!([format!("dcim.{name}")]);
        assert_eq!(server.post("/api/extras/job-hooks/", &server.root, body).await.0, StatusCode::CREATED);
    }
    let (status, body) = server.get("/api/extras/job-hooks/?nmae=alpha", &server.root).await;
    assert_eq!((status, &body["nmae"]), (StatusCode::BAD_REQUEST, &json!(["Unknown filter field"])));
    let (_, alpha) = server.get("/api/extras/job-hooks/?name=alpha", &server.root).await;
    assert_eq!((&alpha["count"], &alpha["results"][0]["name"]), (&json!(1), &json!("alpha")));
    let (_, either) = server.get("/api/extras/job-hooks/?name=alpha&name=beta", &server.root).await;
    assert_eq!(either["count"], 2);
    let (_, none) = server.get("/api/extras/job-hooks/?name=gamma", &server.root).await;
    assert_eq!(
        (&none["count"], &none["results"]),
        (&json!(0), &json!([])),
        "a filter that matches nothing gives nothing"
    );
    let (_, by_type) = server.get("/api/extras/job-hooks/?content_types=dcim.beta", &server.root).await;
    assert_eq!(by_type["results"][0]["name"], "beta");
    let (_, searched) = server.get("/api/extras/job-hooks/?q=LPH", &server.root).await;
    assert_eq!(searched["count"], 1);
    let job_id = derived_id(RecordKind::Job, AUDIT);
    let (_, by_job) = server.get(&format!("/api/extras/job-hooks/?job={job_id}&type_update=false"), &server.root).await;
    assert_eq!(by_job["count"], 2, "{by_job}");
    let (status, _) = server.get("/api/extras/job-hooks/?enabled=perhaps", &server.root).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, receivers) = server.get("/api/extras/jobs/?is_job_button_receiver=true", &server.root).await;
    assert_eq!((&receivers["count"], &receivers["results"][0]["class_path"]), (&json!(1), &json!(TOUCH)));
    let (status, _) = server.get("/api/extras/object-changes/?changed_object=1", &server.root).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = server.get("/api/extras/job-hooks/?id=not-an-id", &server.root).await;
    assert_eq!((status, &body["id"]), (StatusCode::BAD_REQUEST, &json!(["“not-an-id” is not a valid UUID."])));
    let (status, body) = server.get("/api/extras/job-buttons/?weight=heavy", &server.root).await;
    assert_eq!((status, &body["weight"]), (StatusCode::BAD_REQUEST, &json!(["Enter a whole number."])));
    let alpha_id = alpha["results"][0]["id"].as_str().unwrap();
    let (_, by_id) = server.get(&format!("/api/extras/job-hooks/?id={alpha_id}"), &server.root).await;
    assert_eq!((&by_id["count"], &by_id["results"][0]["name"]), (&json!(1), &json!("alpha")));
    server.stop().await;
}

#[tokio::test]
async fn a_run_takes_nautobots_body_and_its_result_and_logs_read_as_nautobots() {
    let server = Server::start().await;
    let touch_id = derived_id(RecordKind::Job, TOUCH).to_string();
    let run = format!("/api/extras/jobs/{touch_id}/run/");
    let body = json!({"data": {"object_pk": "1", "object_model_name": "dcim.device"}, "task_queue": "default"});
    let (status, answer) = server.post(&run, &server.alice, body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["scheduled_job"], Value::Null);
    let result = &answer["job_result"];
    assert_eq!(result["status"], json!({"value": "PENDING", "label": "PENDING"}));
    assert_eq!((&result["task_name"], &result["job_model"]["id"]), (&json!(TOUCH), &json!(touch_id)));
    assert_eq!(result["task_kwargs"], json!({"object_pk": "1", "object_model_name": "dcim.device"}));
    assert_eq!(result["user"]["url"], server.url(&alice_path()));
    let id = result["id"].as_u64().unwrap();
    assert_eq!(result["url"], server.url(&format!("/api/extras/job-results/{id}/")));

    for (body, field) in [
        (json!({"data": {"object_pk": "1", "object_model_name": "dcim.device"}, "task_queue": "fast"}), "task_queue"),
        (
            json!({"data": {"object_pk": "1", "object_model_name": "dcim.device"}, "schedule": {"interval": "daily"}}),
            "schedule",
        ),
        (json!({}), "data"),
    ] {
        let (status, errors) = server.post(&run, &server.alice, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{errors}");
        assert!(errors[field].is_array(), "{field}: {errors}");
    }

    // A dead-lettered run is final to Celery's eyes: FAILURE, labelled so.
    dead_letter(&server.store, id).await;
    let (_, dead) = server.get(&format!("/api/extras/job-results/{id}/?depth=1"), &server.root).await;
    assert_eq!(dead["status"], json!({"value": "FAILURE", "label": "FAILURE (dead-lettered)"}));
    assert_eq!((&dead["user"]["username"], &dead["job_model"]["class_path"]), (&json!("alice"), &json!(TOUCH)));
    assert!(dead["user"].get("permissions").is_none(), "a related user does not show what they may do");
    let (_, failures) = server.get("/api/extras/job-results/?status=FAILURE", &server.root).await;
    assert_eq!(failures["count"], 1, "FAILURE takes dead-lettered runs");
    let (_, by_user) =
        server.get(&format!("/api/extras/job-results/?user=alice&job_model={touch_id}"), &server.root).await;
    assert_eq!(by_user["count"], 1);

    let (status, logs) = server.get(&format!("/api/extras/job-logs/?job_result={id}"), &server.root).await;
    assert_eq!(status, StatusCode::OK);
    let first = &logs["results"][0];
    assert_eq!((&first["id"], &first["object_type"]), (&json!(format!("{id}-0")), &json!("extras.joblogentry")));
    assert_eq!(first["job_result"]["url"], result["url"]);
    let (_, same) = server.get(&format!("/api/extras/job-results/{id}/logs/"), &server.root).await;
    assert_eq!(same["results"], logs["results"]);
    let (_, one) = server.get(&format!("/api/extras/job-logs/{id}-0/"), &server.root).await;
    assert_eq!(&one, first);
    let (status, body) = server.get("/api/extras/job-logs/", &server.root).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn a_far_offset_gives_an_empty_page_with_the_whole_count() {
    let server = Server::start().await;
    let on_device = json!({"object_pk": "1", "object_model_name": "dcim.device"});
    for _ in 0..3 {
        let (status, _) =
            server.post(&format!("/api/extras/jobs/{TOUCH}/run/"), &server.alice, on_device.clone()).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    for (path, count) in [
        ("/api/extras/job-results/?offset=999999999", 3),
        ("/api/extras/job-results/?user=alice&offset=999999999", 3),
        ("/api/extras/object-changes/?offset=999999999", 1),
        ("/api/extras/object-changes/?changed_object_type=dcim.device&changed_object_id=1&offset=999999999", 1),
    ] {
        let (status, page) = server.get(path, &server.root).await;
        assert_eq!((status, &page["count"], &page["results"]), (StatusCode::OK, &json!(count), &json!([])), "{path}");
        assert!(page["next"].is_null() && page["previous"].is_string(), "{path}: {page}");
    }
    let (_, second) = server.get("/api/extras/job-results/?user=alice&limit=1&offset=1", &server.root).await;
    let (_, all) = server.get("/api/extras/job-results/?user=alice", &server.root).await;
    assert_eq!(second["results"][0]["id"], all["results"][1]["id"], "the store skips the offset's results");
    server.stop().await;
}
