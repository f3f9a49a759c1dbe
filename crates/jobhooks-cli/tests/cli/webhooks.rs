//! `hooks add|update --webhook URL …`: a hook that sends a webhook instead of running a job, its
//! secret never printed, bad webhooks exit 2 and write nothing.

use serde_json::json as object;

use crate::support::{Place, fails, json};

on_a_store_and_through_a_server!(webhooks_are_added_shown_without_their_secret_and_validated);

fn webhooks_are_added_shown_without_their_secret_and_validated(db: impl Place) {
    let run_add = |extra: &[&str]| {
        let mut args = vec!["hooks", "add", "cmdb", "--content-type", "dcim.device", "--on", "update"];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };

    for (extra, said) in [
        (&["--webhook", "ftp://files.example/"][..], "is not an http:// or https:// URL"),
        (&["--webhook", "https://cmdb.example/", "--webhook-header", "no colon"][..], "give it as `Name: value`"),
        (
            &["--webhook", "https://cmdb.example/", "--webhook-method", "FETCH"][..],
            "use one of GET, POST, PUT, PATCH, DELETE",
        ),
        (&["--webhook", "https://cmdb.example/", "--webhook-body", "{% if %}"][..], "the template does not compile"),
        (&["--webhook-secret", "s"][..], "--webhook URL is required"),
        (&["--webhook", "https://cmdb.example/", "--job", "app::Job"][..], "cannot be used with"),
    ] {
        let args = run_add(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = fails(&db, &args, 2);
        assert!(stderr.contains(said), "{extra:?}: {stderr}");
    }
    assert_eq!(json(&db, &["hooks", "list"]), object!([]), "nothing was added");

    let args = run_add(&[
        "--webhook",
        "https://cmdb.example/in/{{ model }}",
        "--webhook-secret",
        "s3cret",
        "--webhook-header",
        "X-Source: jobhooks",
        "--webhook-method",
        "put",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let hook = json(&db, &args);
    assert_eq!(hook["job"], jobhooks_model::WEBHOOK_JOB);
    assert_eq!(
        hook["webhook"],
        object!({"payload_url": "https://cmdb.example/in/{{ model }}", "http_method": "PUT",
            "http_content_type": "application/json", "additional_headers": "X-Source: jobhooks",
            "body_template": "", "secret": "********", "ssl_verification": true})
    );
    // An update changes what it names and keeps the rest, the secret included.
    let updated = json(&db, &["hooks", "update", "cmdb", "--webhook-body", "{{ data.name }}", "--webhook-insecure"]);
    assert_eq!(
        (&updated["webhook"]["body_template"], &updated["webhook"]["ssl_verification"]),
        (&object!("{{ data.name }}"), &object!(false))
    );
    assert_eq!(
        (&updated["webhook"]["secret"], &updated["webhook"]["http_method"]),
        (&object!("********"), &object!("PUT"))
    );
    assert!(!json(&db, &["hooks", "list"]).to_string().contains("s3cret"), "the secret is never printed");
}
