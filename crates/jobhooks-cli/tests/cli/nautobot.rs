//! `jobhooks import nautobot`: job hooks and job buttons exported from Nautobot's REST API, their
//! jobs mapped to Rust receivers, created on a store or through a server; what cannot be mapped is
//! reported, and a file that cannot be read writes nothing.

use serde_json::{Value, json as object};

use crate::support::{Place, fails, json, run};
use crate::{SERIAL_HOOK, SIMPLE_BUTTON};

on_a_store_and_through_a_server!(nautobots_hooks_and_buttons_are_imported_with_their_jobs_mapped);

const HOOK_ID: &str = "0d9f9b5c-1f0e-4d1a-9a39-5d0b6c1b8f21";

/// A page of `GET /api/extras/job-hooks/?depth=1` and a bare list of job buttons at `?depth=0`,
/// as Nautobot 2.4 answers them.
fn exports() -> (Value, Value) {
    let job = |module: &str, class: &str| {
        object!({"id": "11111111-2222-4333-8444-555555555555", "object_type": "extras.job", "display": class,
            "url": "https://nautobot.example/api/extras/jobs/11111111-2222-4333-8444-555555555555/",
            "name": class, "grouping": "Hooks", "module_name": module, "job_class_name": class})
    };
    let hook = |id: &str, name: &str, job: Value| {
        object!({"id": id, "object_type": "extras.jobhook", "display": name,
            "url": format!("https://nautobot.example/api/extras/job-hooks/{id}/"), "natural_slug": name,
            "content_types": ["dcim.device"], "name": name, "enabled": true,
            "type_create": false, "type_update": true, "type_delete": false, "job": job,
            "created": "2024-03-01T10:00:00.000000Z", "last_updated": "2024-03-01T10:00:00.000000Z",
            "notes_url": format!("https://nautobot.example/api/extras/job-hooks/{id}/notes/")})
    };
    let hooks = object!({"count": 2, "next": null, "previous": null, "results": [
        hook(HOOK_ID, "serials", job("my_jobs.hooks", "SerialAudit")),
        hook("1d9f9b5c-1f0e-4d1a-9a39-5d0b6c1b8f21", "legacy", job("my_jobs.hooks", "Legacy")),
    ]});
    let buttons = object!([{"id": "7a3b8c1d-2e4f-4a5b-9c6d-7e8f9a0b1c2d", "object_type": "extras.jobbutton",
        "display": "sync", "url": "https://nautobot.example/api/extras/job-buttons/7a3b8c1d-2e4f-4a5b-9c6d-7e8f9a0b1c2d/",
        "name": "sync", "content_types": ["dcim.device"], "text": "Sync", "weight": 50, "group_name": "",
        "button_class": "primary", "confirmation": false, "enabled": true,
        "job": {"id": "99999999-2222-4333-8444-555555555555", "object_type": "extras.job",
            "url": "https://nautobot.example/api/extras/jobs/99999999-2222-4333-8444-555555555555/"}}]);
    (hooks, buttons)
}

fn nautobots_hooks_and_buttons_are_imported_with_their_jobs_mapped(db: impl Place) {
    json(&db, &["jobs", "enable", SERIAL_HOOK]);
    json(&db, &["jobs", "enable", SIMPLE_BUTTON]);
    let dir = tempfile::tempdir().unwrap();
    let (hooks, buttons) = exports();
    let [hooks_file, buttons_file, broken] =
        ["hooks.json", "buttons.json", "broken.json"].map(|name| dir.path().join(name));
    std::fs::write(&hooks_file, hooks.to_string()).unwrap();
    std::fs::write(&buttons_file, buttons.to_string()).unwrap();
    std::fs::write(&broken, "{\"results\": 3}").unwrap();
    let path = |file: &std::path::Path| file.to_str().unwrap().to_owned();
    let hook_map = format!("my_jobs.hooks.SerialAudit={SERIAL_HOOK}");
    let button_map = format!("99999999-2222-4333-8444-555555555555={SIMPLE_BUTTON}");

    // What cannot be read or understood writes nothing.
    let stderr = fails(&db, &["import", "nautobot", &path(&hooks_file), &path(&broken), "--map", &hook_map], 2);
    assert!(stderr.contains("not an export of Nautobot's REST API"), "{stderr}");
    let stderr = fails(&db, &["import", "nautobot", &path(&hooks_file)], 2);
    assert!(stderr.contains("no job is mapped: give --map NAUTOBOT_JOB=RECEIVER"), "{stderr}");
    let stderr = fails(&db, &["import", "nautobot", &path(&hooks_file), "--map", "nothing-to-map"], 2);
    assert!(stderr.contains("--map nothing-to-map: give a Nautobot job and a Rust receiver"), "{stderr}");
    assert_eq!(json(&db, &["hooks", "list"]), object!([]));

    // The mapped records are created; the one whose job has no receiver is reported, and the exit
    // status says something was left out.
    let import =
        ["import", "nautobot", &path(&hooks_file), &path(&buttons_file), "--map", &hook_map, "--map", &button_map];
    let output = run(&db, &[&["--json"][..], &import[..]].concat());
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((&report["hooks"], &report["buttons"]), (&object!(["serials"]), &object!(["sync"])));
    assert_eq!(report["skipped"][0]["name"], "legacy");
    assert!(report["skipped"][0]["reason"].as_str().unwrap().contains("my_jobs.hooks.Legacy"), "{report}");
    let hook = json(&db, &["hooks", "show", "serials"]);
    assert_eq!(
        (&hook["id"], &hook["job"], &hook["type_update"]),
        (&object!(HOOK_ID), &object!(SERIAL_HOOK), &object!(true))
    );
    let button = json(&db, &["buttons", "list"]);
    assert_eq!((&button[0]["job"], &button[0]["button_class"]), (&object!(SIMPLE_BUTTON), &object!("primary")));

    // Imported again, the existing records are reported by name and nothing is doubled.
    let output = run(&db, &[&["--json"][..], &import[..]].concat());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["skipped"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(json(&db, &["hooks", "list"]).as_array().unwrap().len(), 1);
}
