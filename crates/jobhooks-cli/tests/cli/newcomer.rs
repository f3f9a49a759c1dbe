//! What tripped a newcomer following the README and docs/operations.md, each kept fixed: refusals
//! that say what to do instead, and no store created, half-written or left behind by mistake.

use std::process::{Command, Stdio};

use serde_json::Value;

use super::support::{Place, Served, bare, fails, jobhooks, json, ok, run};
use super::{SIMPLE_BUTTON, store};

on_a_store_and_through_a_server!(
    a_disabled_button_cannot_be_pressed,
    adding_a_user_that_exists_is_refused_and_permissions_change_one_by_one,
    an_object_put_without_a_repr_keeps_its_repr,
    a_token_that_expires_in_zero_days_is_refused,
);

fn a_disabled_button_cannot_be_pressed(db: impl Place) {
    ok(&db, &["users", "add", "ops", "--superuser"]);
    ok(&db, &["jobs", "enable", SIMPLE_BUTTON]);
    ok(&db, &["objects", "put", "dcim.location", "hq", r#"{"name": "HQ"}"#, "--user", "ops"]);
    ok(&db, &["buttons", "add", "broken", "--content-type", "dcim.location", "--text", "Go", "--job", SIMPLE_BUTTON]);
    ok(&db, &["buttons", "update", "broken", "--enabled", "false"]);
    let stderr = fails(&db, &["buttons", "press", "broken", "dcim.location", "hq", "--user", "ops"], 2);
    assert!(stderr.contains("Job button broken is disabled: it is not shown, so it cannot be pressed"), "{stderr}");
    assert_eq!(json(&db, &["results", "list"]), Value::Array(vec![]), "nothing was queued");
}

fn adding_a_user_that_exists_is_refused_and_permissions_change_one_by_one(db: impl Place) {
    ok(&db, &["users", "add", "alice", "--perm", "dcim.view_device", "--perm", "extras.view_jobresult"]);
    let stderr = fails(&db, &["users", "add", "alice", "--perm", "dcim.add_device"], 2);
    assert!(stderr.contains("user alice exists") && stderr.contains("users perm add|remove alice"), "{stderr}");
    let perms = |db: &dyn Place| -> Vec<Value> {
        let users = json(db, &["users", "list"]);
        let alice = users.as_array().unwrap().iter().find(|user| user["username"] == "alice").unwrap().clone();
        alice["permissions"].as_array().unwrap().iter().map(|perm| perm["name"].clone()).collect()
    };
    assert_eq!(perms(&db), ["dcim.view_device", "extras.view_jobresult"], "her permissions were kept");
    ok(&db, &["users", "perm", "add", "alice", "dcim.add_device", "--run-job", SIMPLE_BUTTON]);
    ok(&db, &["users", "perm", "remove", "alice", "dcim.view_device"]);
    assert_eq!(perms(&db), ["extras.view_jobresult", "dcim.add_device", "extras.run_job"]);
    let stderr = fails(&db, &["users", "perm", "remove", "alice", "dcim.view_device"], 2);
    assert!(stderr.contains("user alice does not have dcim.view_device"), "{stderr}");
    ok(&db, &["users", "perm", "remove", "alice", "--run-job", SIMPLE_BUTTON]);
    assert_eq!(perms(&db), ["extras.view_jobresult", "dcim.add_device"]);
    assert_eq!(ok(&db, &["users", "update", "alice", "--superuser"]), "updated user alice (superuser)\n");
    assert!(fails(&db, &["users", "update", "nobody", "--superuser"], 2).contains("user nobody does not exist"));
}

fn an_object_put_without_a_repr_keeps_its_repr(db: impl Place) {
    ok(&db, &["users", "add", "ops", "--superuser"]);
    ok(&db, &["objects", "put", "dcim.device", "1", r#"{"name": "edge-1"}"#, "--repr", "edge-1", "--user", "ops"]);
    ok(&db, &["objects", "put", "dcim.device", "1", r#"{"name": "edge-1", "serial": "B2"}"#, "--user", "ops"]);
    let device = json(&db, &["objects", "show", "dcim.device", "1"]);
    assert_eq!((&device["repr"], &device["data"]["serial"]), (&Value::from("edge-1"), &Value::from("B2")));
    ok(&db, &["objects", "put", "dcim.device", "2", r#"{"name": "edge-2"}"#, "--user", "ops"]);
    assert_eq!(json(&db, &["objects", "show", "dcim.device", "2"])["repr"], "2", "a new object reads as its id");
}

fn a_token_that_expires_in_zero_days_is_refused(db: impl Place) {
    ok(&db, &["users", "add", "ops", "--superuser"]);
    let stderr = fails(&db, &["users", "token", "add", "ops", "--expires-in-days", "0"], 2);
    assert!(stderr.contains("--expires-in-days must be at least 1"), "{stderr}");
    assert!(!ok(&db, &["users", "token", "add", "ops", "--expires-in-days", "1"]).trim().is_empty());
}

/// A user who may press but not read results learns the run's id before the wait fails.
#[test]
fn a_press_wait_without_view_jobresult_still_says_the_run() {
    let server = Served::start();
    ok(&server, &["jobs", "enable", SIMPLE_BUTTON]);
    ok(&server, &["objects", "put", "dcim.location", "hq", r#"{"name": "HQ"}"#]);
    ok(&server, &["buttons", "add", "go", "--content-type", "dcim.location", "--text", "Go", "--job", SIMPLE_BUTTON]);
    ok(&server, &["users", "add", "presser", "--perm", "extras.run_job", "--perm", "extras.view_jobbutton"]);
    let output = run(&server, &["buttons", "press", "go", "dcim.location", "hq", "--user", "presser", "--wait"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("queued run 1; waiting for it to end (reading its result needs extras.view_jobresult)"));
    assert!(stderr.contains("error: run 1 was queued, but waiting for it failed"), "{stderr}");
    assert!(stderr.contains("extras.view_jobresult"), "{stderr}");
}

/// Mistakes with the store's path, the server's address and the worker count: refused, and no
/// store is created by a command that reads or by one that fails before it writes.
#[test]
fn stores_are_created_only_by_commands_that_write_and_succeed() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("mistyped.db");
    let stderr = fails(&missing, &["hooks", "list"], 2);
    assert!(stderr.contains("there is no store at") && stderr.contains("mistyped.db"), "{stderr}");
    for args in [&["jobs", "list"][..], &["results", "list"], &["export"], &["users", "token", "list"]] {
        fails(&missing, args, 2);
    }
    assert!(!missing.exists(), "a read created no store");

    // A failed import leaves nothing behind: a missing file, a bad header, a truncated export.
    fails(&missing, &["import", scratch.path().join("nowhere.jsonl").to_str().unwrap()], 2);
    let bad = scratch.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"not\": \"an export\"}\n").unwrap();
    fails(&missing, &["import", bad.to_str().unwrap()], 2);
    let (_dir, db) = store();
    ok(&db, &["users", "add", "ops", "--superuser"]);
    let export = ok(&db, &["export"]);
    let truncated = scratch.path().join("truncated.jsonl");
    std::fs::write(&truncated, &export[..export.len() / 2]).unwrap();
    fails(&missing, &["import", truncated.to_str().unwrap()], 2);
    assert!(!missing.exists(), "a failed import left no store");

    // serve: without a dispatcher on sled, refused; on a busy port, nothing is created.
    let stderr = fails(&missing, &["serve", "--no-dispatcher"], 2);
    assert!(stderr.contains("the embedded (sled) store admits one process"), "{stderr}");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let stderr = fails(&missing, &["serve", "--listen", &address], 1);
    assert!(stderr.contains(&format!("cannot listen on {address}")), "{stderr}");
    assert!(!missing.exists(), "serve bound before it created the store");

    // Worker counts of 0, from a flag or the config file.
    assert!(fails(&db, &["run", "--workers", "0"], 2).contains("0 is not in 1.."));
    let config = scratch.path().join("jobhooks.toml");
    std::fs::write(&config, "[dispatcher]\nworkers = 0\n").unwrap();
    let stderr = fails(&db, &["--config", config.to_str().unwrap(), "run"], 2);
    assert!(stderr.contains("dispatcher.workers: 0 workers would run nothing"), "{stderr}");
    std::fs::write(&config, "[log]\nformat = \"xml\"\n").unwrap();
    let stderr = fails(&db, &["--config", config.to_str().unwrap(), "jobs", "list"], 2);
    assert!(
        stderr.contains("jobhooks.toml is not valid: log.format"),
        "the file is blamed, not the variable: {stderr}"
    );

    // Addresses: --url without a scheme, --url with --db.
    let output = bare().args(["--url", "127.0.0.1:18499", "--token", "t", "jobs", "list"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did you mean http://127.0.0.1:18499?"), "{stderr}");
    let stderr = fails(&db, &["--url", "http://127.0.0.1:18499", "--token", "t", "jobs", "list"], 2);
    assert!(stderr.contains("give --db (a store here) or --url"), "{stderr}");
}

/// `--listen` takes a host name, and a store held by `serve` says so, and how to go through it.
#[test]
fn a_store_held_by_serve_says_to_go_through_it() {
    let (_dir, db) = store();
    ok(&db, &["users", "add", "ops", "--superuser"]);
    let mut server = jobhooks(&db).args(["serve", "--listen", "localhost:0"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = std::io::BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("serving http://") {
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "it stopped: {line}");
    }
    let url = line.split("serving ").nth(1).and_then(|rest| rest.split("/api/").next()).unwrap().to_owned();
    let refused = fails(&db, &["export"], 1);
    assert!(refused.contains(&format!("is held by jobhooks serve at {url}/")), "{refused}");
    assert!(refused.contains(&format!("--url {url}/ --token KEY")), "{refused}");
    assert!(Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap().success());
    assert!(server.wait().unwrap().success());
    assert!(run(&db, &["users", "list"]).status.success(), "the store is free once the server stopped");
}
