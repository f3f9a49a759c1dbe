//! What tripped a newcomer following the README and docs/operations.md, each kept fixed: refusals
//! that say what to do instead, and no store created, half-written or left behind by mistake.

use std::process::{Command, Stdio};

use serde_json::Value;

use super::support::{Place, Served, address_in, bare, fails, jobhooks, json, ok, run, serving_line};
use super::{SIMPLE_BUTTON, store};

on_a_store_and_through_a_server!(
    a_disabled_button_cannot_be_pressed,
    adding_a_user_that_exists_is_refused_and_permissions_change_one_by_one,
    an_object_put_without_a_repr_keeps_its_repr,
    a_token_that_expires_in_zero_days_is_refused,
    a_result_reads_in_columns_with_times_to_the_microsecond,
    empty_listings_print_nothing,
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
    let user = match db.token_user() {
        Some(user) => user,
        None => {
            ok(&db, &["users", "add", "ops", "--superuser"]);
            "ops"
        }
    };
    let stderr = fails(&db, &["users", "token", "add", user, "--expires-in-days", "0"], 2);
    assert!(stderr.contains("--expires-in-days must be at least 1"), "{stderr}");
    assert!(!ok(&db, &["users", "token", "add", user, "--expires-in-days", "1"]).trim().is_empty());
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
    let url = address_in(&serving_line(&mut server));
    let refused = fails(&db, &["export"], 1);
    assert!(refused.contains(&format!("is held by jobhooks serve at {url}/")), "{refused}");
    assert!(refused.contains(&format!("--url {url}/ --token KEY")), "{refused}");
    assert!(Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap().success());
    assert!(server.wait().unwrap().success());
    assert!(run(&db, &["users", "list"]).status.success(), "the store is free once the server stopped");
}

fn a_result_reads_in_columns_with_times_to_the_microsecond(db: impl Place) {
    ok(&db, &["users", "add", "ops", "--superuser"]);
    ok(&db, &["jobs", "enable", SIMPLE_BUTTON]);
    ok(&db, &["objects", "put", "dcim.location", "hq", r#"{"name": "HQ"}"#, "--user", "ops"]);
    ok(&db, &["buttons", "add", "go", "--content-type", "dcim.location", "--text", "Go", "--job", SIMPLE_BUTTON]);
    let shown = ok(&db, &["buttons", "press", "go", "dcim.location", "hq", "--user", "ops", "--wait"]);
    let entries: Vec<&str> = shown.lines().skip(1).collect();
    assert!(entries.len() >= 3, "{shown}");
    let message_column = |line: &str| line.find("Running job").or_else(|| line.find("Job completed"));
    let first = message_column(entries[0]).expect("Running job");
    let last = message_column(entries[entries.len() - 1]).expect("Job completed");
    assert_eq!(first, last, "the messages start in one column:\n{shown}");
    assert!(entries[entries.len() - 1].starts_with("  success  post_run"), "{shown}");

    let result = json(&db, &["results", "show", "1"]);
    let mut times: Vec<&str> =
        ["created", "started", "completed"].iter().filter_map(|key| result[key].as_str()).collect();
    times.extend(result["logs"].as_array().unwrap().iter().filter_map(|entry| entry["time"].as_str()));
    assert!(times.len() >= 4, "{result}");
    for time in times {
        let fraction = time.split_once('.').map_or("", |(_, rest)| rest.trim_end_matches('Z'));
        assert!(fraction.len() <= 6, "{time} is more precise than a microsecond");
    }
}

fn empty_listings_print_nothing(db: impl Place) {
    for listing in [&["hooks", "list"][..], &["buttons", "list"], &["changes", "list"], &["results", "list"]] {
        assert_eq!(ok(&db, listing), "", "{listing:?}");
        assert_eq!(json(&db, listing), Value::Array(vec![]), "{listing:?}");
    }
    let output = run(&db, &["jobs", "list"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "", "the stock receivers are hidden");
    let hint = String::from_utf8_lossy(&output.stderr);
    assert!(hint.contains("hidden job(s) not shown") && hint.contains("`jobs list --all` shows them"), "{hint}");
}

/// With `--log-format json` every line on stderr is JSON, the program's own lines too, and a
/// run's lines carry its span with numbers as numbers.
#[test]
fn every_line_of_a_json_log_is_json_and_a_runs_lines_carry_its_span() {
    let (_dir, db) = store();
    ok(&db, &["users", "add", "ops", "--superuser"]);
    ok(&db, &["jobs", "enable", super::SERIAL_HOOK]);
    ok(
        &db,
        &["hooks", "add", "serials", "--content-type", "dcim.device", "--job", super::SERIAL_HOOK, "--on", "update"],
    );
    ok(&db, &["objects", "put", "dcim.device", "1", r#"{"serial": "A1"}"#, "--user", "ops"]);
    ok(&db, &["objects", "put", "dcim.device", "1", r#"{"serial": "B2"}"#, "--user", "ops"]);
    let mut dispatcher = jobhooks(&db)
        .args(["run", "--log-format", "json"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(dispatcher.stderr.take().unwrap());
    let mut lines = Vec::new();
    let mut dispatching = false;
    let mut logged_by_the_run = false;
    while !(dispatching && logged_by_the_run) {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "it stopped: {lines:?}");
        let event: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        let message = event["fields"]["message"].as_str().unwrap_or_default().to_owned();
        dispatching |= message.starts_with("dispatching from");
        if message.contains("serial has been changed from A1 to B2") {
            logged_by_the_run = true;
            assert_eq!(event["span"]["change"], 2, "{line}");
            assert_eq!(event["span"]["run"], 1, "{line}");
            assert_eq!(event["span"]["name"], "job_run", "{line}");
        }
        lines.push(line);
    }
    assert!(Command::new("kill").args(["-INT", &dispatcher.id().to_string()]).status().unwrap().success());
    assert!(dispatcher.wait().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    for line in rest.lines() {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(event["target"].as_str().is_some(), "{line}");
    }
    assert!(rest.contains("stopping; runs in flight"), "{rest}");

    // A failure, too.
    let output = jobhooks(&db).args(["--log-format", "json", "hooks", "show", "nope"]).output().unwrap();
    let failure: Value = serde_json::from_slice(&output.stderr).expect("the failure is a JSON line");
    assert_eq!((failure["level"].as_str(), failure["fields"]["status"].as_u64()), (Some("ERROR"), Some(2)));
}

/// Through a server a backup is written on the server's machine: a relative path is refused, and
/// a refusal names the path without the API's field name.
#[test]
fn a_backup_through_a_server_takes_an_absolute_path_and_says_why_not() {
    let server = Served::start();
    let stderr = fails(&server, &["backup", "copy"], 2);
    assert!(stderr.contains("give an absolute path, not `copy`"), "{stderr}");
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("mine.txt"), "mine").unwrap();
    let stderr = fails(&server, &["backup", scratch.path().to_str().unwrap()], 2);
    assert!(stderr.starts_with(&format!("error: cannot back up into {}", scratch.path().display())), "{stderr}");
}

/// Help lists a command's own options apart from the global ones, and describes its arguments.
#[test]
fn help_lists_command_options_apart_from_global_ones() {
    let help = ok(super::support::Nowhere, &["hooks", "add", "--help"]);
    let (own, global) = help.split_once("Global options:").expect("a heading for the global options");
    assert!(own.contains("--content-type") && !own.contains("--db"), "{help}");
    assert!(global.contains("--db") && global.contains("--url") && !global.contains("--content-type"), "{help}");
    assert!(help.contains("<NAME>") && help.contains("The hook's name"), "{help}");
}
