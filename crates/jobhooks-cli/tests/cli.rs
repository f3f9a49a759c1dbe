//! The command line as a user runs it: the real `jobhooks` binary as a subprocess on a temporary
//! store, every command, JSON output parsed, error messages and exit codes.

mod support;

#[macro_use]
mod macros {
    /// Runs each test function once on a local store and once through a server (`--url`), as the
    /// `on_a_store` and `through_a_server` tests of a module named after it.
    macro_rules! on_a_store_and_through_a_server {
        ($($name:ident),* $(,)?) => {$(
            mod $name {
                #[test]
                fn on_a_store() {
                    let (_dir, db) = crate::store();
                    super::$name(&db);
                }

                #[test]
                fn through_a_server() {
                    super::$name(&crate::support::Served::start());
                }
            }
        )*};
    }
}

#[path = "cli/conditions.rs"]
mod conditions;
#[path = "cli/nautobot.rs"]
mod nautobot;
#[path = "cli/newcomer.rs"]
mod newcomer;
#[path = "cli/pynautobot.rs"]
mod pynautobot;
#[path = "cli/web.rs"]
mod web;
#[path = "cli/webhooks.rs"]
mod webhooks;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::{Place, Served, fails, jobhooks, json, ok, run};

on_a_store_and_through_a_server!(
    jobs_are_listed_enabled_and_disabled,
    hooks_are_added_validated_updated_and_deleted,
    users_objects_changes_buttons_and_results_work_together,
    object_data_that_is_not_a_json_object_is_refused_and_nothing_is_written,
    api_tokens_are_shown_once_listed_without_keys_and_revoked,
    a_new_user_meets_clear_output_in_pipes_json_errors_hints_and_replays,
    prune_removes_what_the_retention_allows,
);

pub(crate) const SERIAL_HOOK: &str = "jobhooks_examples::ExampleJobHookReceiver";
pub(crate) const SIMPLE_BUTTON: &str = "jobhooks_examples::ExampleSimpleJobButtonReceiver";

fn run_with_stdin(place: impl Place, args: &[&str], stdin: &str) -> Output {
    let mut child =
        place.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// `jobhooks serve` on 127.0.0.1 with `args`, once it says where it listens: the process, the rest
/// of its stderr, and the address.
fn serve(db: &Path, args: &[&str]) -> (std::process::Child, std::io::BufReader<std::process::ChildStderr>, String) {
    let mut server =
        jobhooks(db).args(["serve", "--listen", "127.0.0.1:0"]).args(args).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = std::io::BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    let address = line.split("serving http://").nth(1).and_then(|rest| rest.split('/').next()).expect(&line).to_owned();
    (server, stderr, address)
}

#[test]
fn through_a_server_the_tokens_user_acts_and_what_needs_the_store_is_refused() {
    let served = Served::start();
    ok(&served, &["users", "add", "alice", "--superuser"]);
    let output = served.as_root(&["objects", "put", "dcim.device", "d1", "{}", "--user", "alice"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--user alice: the server acts as the token's user, root; use a token of alice"),
        "{stderr}"
    );
    assert_eq!(json(&served, &["changes", "list"]), serde_json::json!([]), "nothing was written");
    // Without --user, the token's user acts.
    ok(&served, &["objects", "put", "dcim.device", "d1", "{}"]);
    assert!(ok(&served, &["changes", "list"]).contains("created by root"));

    for command in [&["run"][..], &["serve"], &["migrate"], &["import", "x"]] {
        let args = [&["--url", "http://127.0.0.1:9", "--token", "t"][..], command].concat();
        assert!(
            fails(support::Nowhere, &args, 2).contains("works on the store itself, not through a server"),
            "{command:?}"
        );
    }
    let unreachable = fails(support::Nowhere, &["jobs", "list", "--url", "http://127.0.0.1:9", "--token", "t"], 1);
    assert!(unreachable.contains("cannot reach the server at http://127.0.0.1:9/"), "{unreachable}");
    assert!(
        fails(support::Nowhere, &["jobs", "list", "--url", "http://127.0.0.1:9"], 2).contains("--url needs a token")
    );
    assert!(fails(support::Nowhere, &["jobs", "list", "--url", "nowhere", "--token", "t"], 2).contains("is not a URL"));
}

#[test]
fn backup_copies_a_store_here_and_through_the_server_that_holds_it() {
    let (dir, db) = store();
    ok(&db, &["users", "add", "alice"]);
    let copy = dir.path().join("copy");
    let report = json(&db, &["backup", copy.to_str().unwrap()]);
    assert!(report["records"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(json(&copy, &["users", "list"])[0]["username"], "alice");
    let again = fails(&db, &["backup", copy.to_str().unwrap()], 2);
    assert!(again.contains("it is not empty; give a new or empty directory"), "{again}");

    // While `serve` holds a store, the server copies it.
    let served = Served::start();
    ok(&served, &["users", "add", "bob"]);
    let remote_copy = dir.path().join("served-copy");
    assert!(ok(&served, &["backup", remote_copy.to_str().unwrap()]).contains("backed up"));
    drop(served);
    let users = json(&remote_copy, &["users", "list"]);
    let names: Vec<&str> = users.as_array().unwrap().iter().map(|user| user["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["bob", "root"]);
}

#[test]
fn an_export_imports_into_a_new_store_as_it_was_and_nowhere_else() {
    let (dir, db) = store();
    support::populated(&db);
    let file = dir.path().join("export.jsonl");
    ok(&db, &["export", file.to_str().unwrap()]);
    let exported = std::fs::read_to_string(&file).unwrap();
    let records = support::records(&exported);
    let kinds: std::collections::BTreeSet<&str> = records.iter().map(|r| r["record"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["button", "change", "hook", "job", "object", "result", "token", "user"].into());
    assert!(!exported.contains("jh_"), "no key in an export");

    let copy = dir.path().join("copy");
    let report = json(&copy, &["import", file.to_str().unwrap()]);
    assert_eq!(report["changes"], 5, "four writes and the hook run's revert");
    assert_eq!(support::records(&ok(&copy, &["export"])), records, "the copy exports the same records");
    assert_eq!(json(&copy, &["objects", "show", "dcim.device", "d1"])["data"]["serial"], "A1", "the hook's revert");
    // The copy goes on where the store left off.
    let receipt = json(&copy, &["objects", "put", "dcim.device", "d2", "{}", "--user", "alice"]);
    assert_eq!(receipt["changes"][0], 6, "after the export's changes");

    let again = fails(&copy, &["import", file.to_str().unwrap()], 2);
    assert!(
        again.contains("cannot import into this store: it already holds 6 change(s); import into a new store"),
        "{again}"
    );
    let other = dir.path().join("other");
    std::fs::write(&file, exported.lines().skip(1).collect::<Vec<_>>().join("\n")).unwrap();
    let headless = fails(&other, &["import", file.to_str().unwrap()], 2);
    assert!(headless.contains("the first line is not an export's header"), "{headless}");
    assert!(!other.exists(), "nothing was imported, and no store was left behind");

    // Through a server, the server exports the store it holds.
    let served = Served::start();
    ok(&served, &["users", "add", "bob"]);
    let through = support::records(&ok(&served, &["export"]));
    assert!(through.iter().any(|r| r["record"] == "user" && r["username"] == "bob"), "{through:?}");
}

/// A new, empty store (commands that only read refuse a path where there is none).
pub(crate) fn store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    drop(jobhooks_store::Store::open(&db).unwrap());
    (dir, db)
}

#[test]
fn the_demo_succeeds() {
    let (_dir, db) = store();
    let output = run(&db, &["demo"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("ERROR") && !stderr.contains("WARN"),
        "the demo's expected failures are not logged: {stderr}"
    );
    assert!(stdout.contains("[6/6] Running everything queued"), "{stdout}");
    assert!(stdout.contains("edge-1 serial B2 was not valid. Reverted to A1"), "{stdout}");
    assert!(stdout.contains("All 10 checks held."), "{stdout}");
    // Asked for logs, the demo still prints each run's log line once, in its report.
    let output = jobhooks(&db).args(["demo"]).env("RUST_LOG", "warn").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("jobhooks_model::context"), "a run's log line appears once: {stderr}");
}

fn jobs_are_listed_enabled_and_disabled(db: impl Place) {
    assert_eq!(json(&db, &["jobs", "list"]), serde_json::json!([]), "receivers are hidden by default");
    let jobs = json(&db, &["jobs", "list", "--all"]);
    let paths: Vec<&str> = jobs.as_array().unwrap().iter().map(|j| j["class_path"].as_str().unwrap()).collect();
    assert!(paths.contains(&SERIAL_HOOK) && paths.contains(&SIMPLE_BUTTON), "{paths:?}");
    // Linked jobs start disabled, except the built-in one that sends webhooks.
    for job in jobs.as_array().unwrap() {
        let builtin = job["class_path"] == jobhooks_model::WEBHOOK_JOB;
        assert_eq!((&job["installed"], &job["enabled"]), (&Value::Bool(true), &Value::Bool(builtin)), "{job}");
    }
    assert_eq!(json(&db, &["jobs", "enable", SERIAL_HOOK])["enabled"], true);
    assert!(ok(&db, &["jobs", "disable", SERIAL_HOOK]).contains("disabled"));
    let stderr = fails(&db, &["jobs", "enable", "no::Such"], 2);
    assert_eq!(stderr.trim(), "error: job `no::Such` does not exist");
}

fn hooks_are_added_validated_updated_and_deleted(db: impl Place) {
    let add = ["hooks", "add", "serials", "--content-type", "dcim.device", "--job", SERIAL_HOOK, "--on", "update"];
    let stderr = fails(&db, &add, 2);
    assert!(stderr.contains("enabled: The selected Job is not installed and enabled"), "{stderr}");
    ok(&db, &["jobs", "enable", SERIAL_HOOK]);
    let hook = json(&db, &add);
    assert_eq!(hook["type_update"], true);

    let twin = [
        "hooks",
        "add",
        "twin",
        "--content-type",
        "dcim.device",
        "--job",
        SERIAL_HOOK,
        "--on",
        "update",
        "--on",
        "delete",
    ];
    let stderr = fails(&db, &twin, 2);
    assert!(
        stderr.contains(&format!(
            "type_update: A job hook already exists for update on dcim.device to job {SERIAL_HOOK}"
        )),
        "{stderr}"
    );
    let none = ["hooks", "add", "none", "--content-type", "dcim.device", "--job", SERIAL_HOOK];
    assert!(fails(&db, &none, 2).contains("You must select at least one type: create, update, and/or delete."));
    let bad_type = ["hooks", "add", "bad", "--content-type", "Devices", "--job", SERIAL_HOOK, "--on", "create"];
    assert!(fails(&db, &bad_type, 2).contains("invalid content type `Devices`"));
    assert!(
        fails(&db, &["hooks", "add", "x", "--job", SERIAL_HOOK, "--on", "explode"], 2)
            .contains("invalid value 'explode' for '--on <EVENTS>'\n  [possible values: create, update, delete]")
    );

    let updated = json(&db, &["hooks", "update", "serials", "--on", "create", "--enabled", "false"]);
    assert_eq!(
        (updated["type_create"].clone(), updated["type_update"].clone(), updated["enabled"].clone()),
        (Value::Bool(true), Value::Bool(false), Value::Bool(false))
    );
    assert_eq!(json(&db, &["hooks", "show", "serials"])["job"], SERIAL_HOOK);
    assert_eq!(json(&db, &["hooks", "list"]).as_array().unwrap().len(), 1);
    assert!(ok(&db, &["hooks", "delete", "serials"]).contains("deleted serials"));
    assert_eq!(fails(&db, &["hooks", "show", "serials"], 2).trim(), "error: job hook `serials` does not exist");
}

fn users_objects_changes_buttons_and_results_work_together(db: impl Place) {
    // The permissions the server checks for alice's writes and views.
    let perms = ["dcim.add_location", "dcim.view_location", "dcim.add_device", "dcim.change_device"]
        .into_iter()
        .chain(["dcim.add_rack", "dcim.delete_rack", "extras.run_job", "extras.view_jobresult"])
        .flat_map(|perm| ["--perm", perm]);
    ok(&db, &["users", "add", "alice"].into_iter().chain(perms).collect::<Vec<_>>());
    ok(&db, &["users", "add", "eve"]);
    // A server's store has its root already: adding one is refused there.
    let added = run(&db, &["users", "add", "root", "--superuser"]);
    assert!(added.status.success() || String::from_utf8_lossy(&added.stderr).contains("user root exists"));
    let users = json(&db, &["users", "list"]);
    assert_eq!(users.as_array().unwrap().len(), 3);
    assert!(fails(&db, &["users", "add", ""], 2).contains("invalid username"));

    // Objects from an argument, a file and stdin.
    ok(&db, &["objects", "put", "dcim.location", "hq", r#"{"name": "HQ"}"#, "--repr", "HQ", "--user", "alice"]);
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("device.json");
    std::fs::write(&file, r#"{"name": "edge-1", "serial": "A1"}"#).unwrap();
    ok(
        &db,
        &[
            "objects",
            "put",
            "dcim.device",
            "d1",
            "--file",
            file.to_str().unwrap(),
            "--repr",
            "edge-1",
            "--user",
            "alice",
        ],
    );
    let output =
        run_with_stdin(&db, &["objects", "put", "dcim.rack", "r1", "-", "--user", "alice"], r#"{"name": "R1"}"#);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(json(&db, &["objects", "show", "dcim.device", "d1"])["data"]["serial"], "A1");
    let stderr = fails(&db, &["objects", "put", "dcim.rack", "r2", "{not json", "--user", "alice"], 2);
    assert!(stderr.contains("the object's data is not valid JSON"), "{stderr}");
    assert!(
        fails(&db, &["objects", "show", "dcim.rack", "nope"], 2).contains("object `dcim.rack nope` does not exist")
    );

    // A hook on device updates; the change queues a run that the dispatcher runs on a press --wait.
    ok(&db, &["jobs", "enable", SERIAL_HOOK]);
    ok(&db, &["jobs", "enable", SIMPLE_BUTTON]);
    ok(&db, &["hooks", "add", "serials", "--content-type", "dcim.device", "--job", SERIAL_HOOK, "--on", "update"]);
    let receipt = json(
        &db,
        &[
            "objects",
            "put",
            "dcim.device",
            "d1",
            r#"{"name": "edge-1", "serial": "B2"}"#,
            "--repr",
            "edge-1",
            "--user",
            "alice",
        ],
    );
    assert_eq!(receipt["runs"].as_array().unwrap().len(), 1);
    let hook_run = receipt["runs"][0].as_u64().unwrap().to_string();
    let change = receipt["changes"][0].as_u64().unwrap().to_string();
    let shown = json(&db, &["changes", "show", &change]);
    assert_eq!(shown["snapshots"]["differences"]["added"], serde_json::json!({"serial": "B2"}));
    assert_eq!(shown["change"]["action"], "update");

    ok(
        &db,
        &[
            "buttons",
            "add",
            "simple",
            "--content-type",
            "dcim.location",
            "--job",
            SIMPLE_BUTTON,
            "--text",
            "Run on {{ obj }}",
        ],
    );
    let shown = json(&db, &["buttons", "for", "dcim.location", "hq", "--user", "alice"]);
    assert_eq!(shown[0]["text"], "Run on HQ");
    assert_eq!(shown[0]["disabled"], false);
    assert_eq!(json(&db, &["buttons", "update", "simple", "--weight", "5"])["weight"], 5);
    assert_eq!(json(&db, &["buttons", "list"]).as_array().unwrap().len(), 1);
    let refused = fails(&db, &["buttons", "press", "simple", "dcim.location", "hq", "--user", "eve"], 2);
    assert_eq!(refused.trim(), "error: This user does not have permission to run jobs.");
    let result = json(&db, &["buttons", "press", "simple", "dcim.location", "hq", "--user", "alice", "--wait"]);
    assert_eq!(result["status"], "SUCCESS");
    assert_eq!(result["logs"][1]["message"], "Running Job Button Receiver.");

    // The hook run reverted the serial.
    assert!(ok(&db, &["results", "wait", &hook_run]).contains("SUCCESS"));
    assert_eq!(json(&db, &["objects", "show", "dcim.device", "d1"])["data"]["serial"], "A1");
    let changes = json(&db, &["changes", "list", "--object", "dcim.device", "d1"]);
    assert_eq!(changes[0]["change_context"], "job-hook");
    let latest = json(&db, &["changes", "list", "--limit", "2"]);
    assert_eq!(latest.as_array().unwrap().len(), 2);
    assert_eq!(latest[0], changes[0], "the whole log, newest first");
    assert!(ok(&db, &["changes", "list"]).contains("dcim.device edge-1 updated by alice  [job-hook]"));
    let results = json(&db, &["results", "list", "--job", SERIAL_HOOK]);
    assert_eq!(results[0]["status"], "SUCCESS");
    let run = results[0]["id"].as_u64().unwrap().to_string();
    assert!(ok(&db, &["results", "show", &run]).contains("Reverted to A1"));
    assert_eq!(json(&db, &["results", "list", "--status", "success"]).as_array().unwrap().len(), 2);
    assert!(
        fails(&db, &["results", "list", "--status", "bogus"], 2)
            .contains("[possible values: pending, started, success, failure, retrying, dead-lettered]")
    );
    assert!(fails(&db, &["results", "replay", &run], 2).contains("is not dead-lettered"));

    assert!(ok(&db, &["buttons", "delete", "simple"]).contains("deleted simple"));
    ok(&db, &["objects", "delete", "dcim.rack", "r1", "--user", "alice"]);
    assert!(fails(&db, &["objects", "delete", "dcim.rack", "r1", "--user", "alice"], 2).contains("does not exist"));
}

#[test]
fn commands_never_uninstall_jobs_this_binary_does_not_link() {
    let (_dir, db) = store();
    // An application's own dispatcher installed a job this binary does not link.
    {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            use jobhooks_model::ports::Catalog;
            let store = jobhooks_store::Store::open(&db).unwrap();
            let spec = jobhooks_model::JobSpec {
                class_path: "app::Theirs".into(),
                name: "Theirs".into(),
                description: String::new(),
                kind: jobhooks_model::JobKind::JobHookReceiver,
                hidden: false,
                former_class_paths: vec![],
            };
            store.sync_jobs(&[spec], jobhooks_model::SyncMode::Full).await.unwrap();
        });
    }
    ok(&db, &["jobs", "enable", "app::Theirs"]);
    ok(&db, &["hooks", "add", "theirs", "--content-type", "dcim.device", "--job", "app::Theirs", "--on", "create"]);
    let jobs = json(&db, &["jobs", "list"]);
    assert_eq!(jobs[0]["class_path"], "app::Theirs");
    assert_eq!((jobs[0]["installed"].clone(), jobs[0]["enabled"].clone()), (Value::Bool(true), Value::Bool(true)));

    // Nor does the stock dispatcher, which links only the seed examples.
    let mut dispatcher = jobhooks(&db).args(["run", "--workers", "1"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = std::io::BufReader::new(dispatcher.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.contains("dispatching from"), "{line}");
    assert!(Command::new("kill").args(["-INT", &dispatcher.id().to_string()]).status().unwrap().success());
    assert!(dispatcher.wait().unwrap().success());
    let jobs = json(&db, &["jobs", "list"]);
    assert_eq!((jobs[0]["installed"].clone(), jobs[0]["enabled"].clone()), (Value::Bool(true), Value::Bool(true)));
    assert_eq!(json(&db, &["hooks", "list"])[0]["enabled"], Value::Bool(true), "their hook stays enabled");

    // Unless it is told that it links every receiver. It warns before it says it dispatches (and
    // handles SIGINT only from then on).
    let mut dispatcher = jobhooks(&db).args(["run", "--uninstall-unlinked"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = std::io::BufReader::new(dispatcher.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("dispatching from") {
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "it stopped early: {line}");
    }
    assert!(Command::new("kill").args(["-INT", &dispatcher.id().to_string()]).status().unwrap().success());
    assert!(dispatcher.wait().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let said = format!("{line}{rest}");
    assert!(said.contains("marked not installed: app::Theirs (1 hooks and 0 buttons disabled: theirs)"), "{said}");
    assert!(said.contains("jobhooks jobs restore"), "the warning says how to recover: {said}");
    assert_eq!(json(&db, &["jobs", "list"])[0]["installed"], Value::Bool(false));
    assert_eq!(json(&db, &["hooks", "list"])[0]["enabled"], Value::Bool(false));

    // Restoring waits for the job to be linked again, then gives back what the sync disabled.
    let said = ok(&db, &["jobs", "restore"]);
    assert!(said.contains("not restored: app::Theirs is still not installed"), "{said}");
    link_theirs_again(&db);
    assert_eq!(ok(&db, &["jobs", "restore", "app::Theirs"]), "restored app::Theirs\nenabled hooks: theirs\n");
    let jobs = json(&db, &["jobs", "list"]);
    assert_eq!((jobs[0]["installed"].clone(), jobs[0]["enabled"].clone()), (Value::Bool(true), Value::Bool(true)));
    assert_eq!(json(&db, &["hooks", "list"])[0]["enabled"], Value::Bool(true));
    assert_eq!(ok(&db, &["jobs", "restore"]), "nothing to restore\n");
}

/// An application's dispatcher links `app::Theirs` (again).
fn link_theirs_again(db: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        use jobhooks_model::ports::Catalog;
        let store = jobhooks_store::Store::open(db).unwrap();
        let spec = jobhooks_model::JobSpec {
            class_path: "app::Theirs".into(),
            name: "Theirs".into(),
            description: String::new(),
            kind: jobhooks_model::JobKind::JobHookReceiver,
            hidden: false,
            former_class_paths: vec![],
        };
        store.sync_jobs(&[spec], jobhooks_model::SyncMode::Additive).await.unwrap();
    });
}

#[test]
fn usage_errors_exit_2() {
    let (_dir, db) = store();
    fails(&db, &["hooks", "frobnicate"], 2);
    fails(&db, &["buttons", "press", "only-one-arg"], 2);
}

#[test]
fn run_dispatches_until_interrupted_and_holds_the_store() {
    let (_dir, db) = store();
    ok(&db, &["users", "add", "alice"]);
    let mut dispatcher = jobhooks(&db).args(["run", "--workers", "2"]).stderr(Stdio::piped()).spawn().unwrap();
    // Wait for the dispatcher to say it is running: it then holds the store.
    let mut stderr = std::io::BufReader::new(dispatcher.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.contains("dispatching from"), "{line}");

    let locked = fails(&db, &["users", "list"], 1);
    assert!(locked.contains("is in use by another process: jobhooks run (pid "), "{locked}");

    let interrupted = Command::new("kill").args(["-INT", &dispatcher.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let status = dispatcher.wait().unwrap();
    assert!(status.success(), "a Ctrl-C shuts down gracefully: {status}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("stopped (0 run(s) given back to the queue)"), "{rest}");
    ok(&db, &["users", "list"]);
}

#[test]
fn migrate_says_which_format_the_store_is_at() {
    let (_dir, db) = store();
    assert!(ok(&db, &["migrate"]).contains("is at jobhooks-store/4"));
    assert_eq!(json(&db, &["migrate"])["version"], "jobhooks-store/4");
}

#[test]
fn a_db_path_holding_other_files_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let stderr = fails(dir.path(), &["jobs", "list"], 2);
    assert!(stderr.contains(&format!("{} is not a jobhooks store", dir.path().display())), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing was written there");
}

/// Defect found in acceptance testing: `objects put` took `[1,2,3]`, `42`, `null` or `"x"` as an
/// object's data and recorded a change with a `null` postchange.
fn object_data_that_is_not_a_json_object_is_refused_and_nothing_is_written(db: impl Place) {
    for data in ["[1,2,3]", "42", "null", r#""x""#] {
        let stderr = fails(&db, &["objects", "put", "dcim.device", "d1", data, "--user", "alice"], 2);
        assert!(stderr.contains("an object's data must be a JSON object"), "{data}: {stderr}");
    }
    let stderr = fails(&db, &["objects", "show", "dcim.device", "d1"], 2);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert_eq!(json(&db, &["changes", "list"]), serde_json::json!([]), "no change was recorded");
}

fn api_tokens_are_shown_once_listed_without_keys_and_revoked(db: impl Place) {
    // A token is made by its own user: through a server, the token's user (root) makes its own.
    let user = match db.token_user() {
        Some(user) => user.to_owned(),
        None => {
            ok(&db, &["users", "add", "alice"]);
            "alice".to_owned()
        }
    };
    let before = json(&db, &["users", "token", "list", &user]).as_array().unwrap().len();
    let key = ok(&db, &["users", "token", "add", &user, "--description", "laptop"]);
    let key = key.strip_suffix('\n').expect("the key alone on one line");
    assert!(key.starts_with("jh_") && !key.contains(char::is_whitespace), "{key}");
    let with_json = json(&db, &["users", "token", "add", &user, "--expires-in-days", "30"]);
    let second = with_json["key"].as_str().expect("--json gives the key");
    assert_ne!(second, key);

    let listed = json(&db, &["users", "token", "list", &user]);
    let listed = &listed.as_array().unwrap()[before..];
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["description"], "laptop");
    assert!(listed[0]["expires"].is_null() && listed[1]["expires"].is_string());
    let text = ok(&db, &["users", "token", "list"]);
    assert!(!text.contains(&key[20..]) && !text.contains(&second[20..]), "a key was printed: {text}");
    let id = listed[0]["id"].as_str().unwrap();
    assert!(key.contains(id));

    assert!(ok(&db, &["users", "token", "revoke", id]).contains(&format!("revoked token {id} of {user}")));
    assert_eq!(json(&db, &["users", "token", "list", &user]).as_array().unwrap().len(), before + 1);
    assert_eq!(fails(&db, &["users", "token", "revoke", id], 2).trim(), format!("error: token `{id}` does not exist"));
    let refused = fails(&db, &["users", "token", "add", "nobody"], 2);
    match db.token_user() {
        Some(_) => assert!(refused.contains("a token is made by its own user"), "{refused}"),
        None => assert!(refused.contains("user `nobody` does not exist"), "{refused}"),
    }
}

#[test]
fn serve_answers_the_api_with_a_token_the_cli_issued_and_stops_on_sigterm() {
    let (_dir, db) = store();
    ok(&db, &["users", "add", "alice", "--perm", "extras.run_job", "--perm", "extras.view_jobresult"]);
    ok(&db, &["objects", "put", "dcim.location", "hq", r#"{"name": "HQ"}"#, "--repr", "HQ", "--user", "alice"]);
    ok(&db, &["jobs", "enable", SIMPLE_BUTTON]);
    let key = ok(&db, &["users", "token", "add", "alice"]).trim().to_owned();

    let (mut server, mut stderr, address) = serve(&db, &["--workers", "1"]);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (status, run) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let unauthenticated = client.get(format!("http://{address}/api/status/")).send().await.unwrap();
        assert_eq!(unauthenticated.status(), 401);
        let response = client
            .post(format!("http://{address}/api/extras/jobs/{SIMPLE_BUTTON}/run/"))
            .header("Authorization", format!("Token {key}"))
            .json(&serde_json::json!({"object_pk": "hq", "object_model_name": "dcim.location"}))
            .send()
            .await
            .unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    });
    assert_eq!(status, 201, "{run}");
    let id = run["job_result"]["id"].as_u64().unwrap().to_string();

    assert!(Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap().success());
    let exit = server.wait().unwrap();
    assert!(exit.success(), "SIGTERM shuts down gracefully: {exit}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("stopped ("), "{rest}");
    // The press is kept whether or not the dispatcher reached it before the signal.
    let result = json(&db, &["results", "show", &id]);
    assert!(["SUCCESS", "PENDING"].contains(&result["status"].as_str().unwrap()), "{result}");
}

#[test]
fn skipped_hooks_are_logged_by_default_and_as_json_on_request() {
    let (_dir, db) = store();
    ok(&db, &["users", "add", "alice"]);
    ok(&db, &["jobs", "enable", SERIAL_HOOK]);
    ok(&db, &["hooks", "add", "serials", "--content-type", "dcim.device", "--job", SERIAL_HOOK, "--on", "create"]);
    ok(&db, &["jobs", "disable", SERIAL_HOOK]);
    let output = support::run(&db, &["objects", "put", "dcim.device", "d1", r#"{"name": "d1"}"#, "--user", "alice"]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warning =
        format!("JobHook serials is enabled, but the underlying Job {SERIAL_HOOK} is not installed and enabled");
    assert!(stderr.contains("WARN") && stderr.contains(&warning), "{stderr}");

    let output = support::run(
        &db,
        &["objects", "put", "dcim.device", "d2", r#"{"name": "d2"}"#, "--user", "alice", "--log-format", "json"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line: Value = serde_json::from_str(stderr.lines().next().expect("a log line")).expect("a JSON log line");
    assert_eq!((line["level"].as_str(), line["fields"]["message"].as_str()), (Some("WARN"), Some(warning.as_str())));

    let quiet = jobhooks(&db)
        .args(["objects", "put", "dcim.device", "d3", r#"{"name": "d3"}"#, "--user", "alice"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        quiet.status.success() && quiet.stderr.is_empty(),
        "RUST_LOG is honoured: {}",
        String::from_utf8_lossy(&quiet.stderr)
    );
}

fn a_new_user_meets_clear_output_in_pipes_json_errors_hints_and_replays(db: impl Place) {
    ok(&db, &["users", "add", "alice", "--superuser"]);
    for id in 0..4 {
        ok(&db, &["objects", "put", "dcim.device", &format!("d{id}"), r#"{"name": "d"}"#, "--user", "alice"]);
    }
    // A reader that went away before the output (here: before anything) ends it quietly.
    let mut listing = db.command(&["changes", "list"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(listing.stdout.take());
    let output = listing.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));

    assert_eq!(fails(&db, &["results", "replay", "999"], 2).trim(), "error: job result `999` does not exist");
    let error: Value = serde_json::from_str(fails(&db, &["results", "replay", "999", "--json"], 2).trim()).unwrap();
    assert_eq!(error, serde_json::json!({"error": "job result `999` does not exist", "status": 2}));

    let output = support::run(&db, &["jobs", "list"]);
    let hint = String::from_utf8_lossy(&output.stderr);
    assert!(hint.contains("hidden job(s) not shown") && hint.contains("jobs list --all"), "{hint}");
    let help = ok(&db, &["buttons", "add", "--help"]);
    assert!(help.contains("[possible values: default, primary, success, info, warning, danger, link]"), "{help}");

    // A press on an object that does not exist is refused before anything is queued, and
    // `--wait` exits non-zero when its run fails.
    ok(&db, &["jobs", "enable", SIMPLE_BUTTON]);
    ok(&db, &["buttons", "add", "simple", "--content-type", "dcim.device", "--text", "Go", "--job", SIMPLE_BUTTON]);
    let refused = fails(&db, &["buttons", "press", "simple", "dcim.device", "nope", "--user", "alice"], 2);
    assert_eq!(refused.trim(), "error: dcim.device nope does not exist");
    let pressed = ok(&db, &["buttons", "press", "simple", "dcim.device", "d0", "--user", "alice", "--wait"]);
    assert!(pressed.contains("SUCCESS"), "{pressed}");
}

#[test]
fn the_config_file_environment_and_flags_layer_and_config_show_prints_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-config");
    let file = dir.path().join("jobhooks.toml");
    std::fs::write(&file, format!("db = {db:?}\n[dispatcher]\nworkers = 8\nlease_seconds = 120\n")).unwrap();
    let config = |extra_env: &[(&str, &str)], args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_jobhooks"));
        command.env_remove("JOBHOOKS_DB").arg("--config").arg(&file).args(args);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let shown = config(&[("JOBHOOKS_DISPATCHER_WORKERS", "3")], &["config", "show"]);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.contains("workers = 3") && shown.contains("lease_seconds = 120"), "{shown}");
    assert!(shown.contains("[retention]") && shown.contains("prune_every_seconds = 60"), "every key is shown: {shown}");
    let flagged = config(&[], &["config", "show", "--json", "--db", "elsewhere"]);
    let flagged: Value = serde_json::from_slice(&flagged.stdout).unwrap();
    assert_eq!((flagged["db"].as_str(), flagged["dispatcher"]["workers"].as_u64()), (Some("elsewhere"), Some(8)));

    // A command uses the store the file names.
    assert!(config(&[], &["users", "add", "alice"]).status.success());
    assert!(db.exists(), "the store of the config file was used");

    std::fs::write(&file, "[dispatcher]\nwokers = 8\n").unwrap();
    let refused = config(&[], &["config", "show"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown field `wokers`"));
}

fn prune_removes_what_the_retention_allows(db: impl Place) {
    ok(&db, &["users", "add", "alice", "--superuser"]);
    ok(&db, &["objects", "put", "dcim.device", "d1", r#"{"name": "one"}"#, "--user", "alice"]);
    ok(&db, &["objects", "put", "dcim.device", "d1", r#"{"name": "uno"}"#, "--user", "alice"]);
    assert!(fails(&db, &["prune"], 2).contains("no retention is set"));
    let report = json(&db, &["prune", "--changes-days", "0"]);
    assert_eq!(report, serde_json::json!({"results": 0, "changes": 1}), "the object's latest change stays");
    assert_eq!(json(&db, &["changes", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn sigterm_under_load_exits_0_in_time_and_loses_no_acknowledged_change() {
    let (_dir, db) = store();
    ok(&db, &["users", "add", "alice", "--superuser"]);
    ok(&db, &["jobs", "enable", SERIAL_HOOK]);
    ok(
        &db,
        &[
            "hooks",
            "add",
            "serials",
            "--content-type",
            "dcim.device",
            "--job",
            SERIAL_HOOK,
            "--on",
            "create",
            "--on",
            "update",
        ],
    );
    let key = ok(&db, &["users", "token", "add", "alice"]).trim().to_owned();
    let (mut server, _stderr, address) = serve(&db, &["--grace", "10"]);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let acknowledged: Vec<u64> = runtime.block_on(async {
        let (loaded, load) = tokio::sync::watch::channel(0_u64);
        let clients: Vec<_> = (0..20)
            .map(|client| {
                let (address, key, loaded) = (address.clone(), key.clone(), loaded.clone());
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let mut changes = Vec::new();
                    for round in 0.. {
                        let sent = http
                            .put(format!("http://{address}/api/objects/dcim.device/{client}/"))
                            .header("Authorization", format!("Token {key}"))
                            .json(&serde_json::json!({"data": {"round": round}}))
                            .send()
                            .await;
                        // Once the server stops, connections are refused: the load is over.
                        let Ok(response) = sent else { break };
                        let status = response.status().as_u16();
                        assert!(status < 500, "no 5xx, even while stopping: {status}");
                        if let Ok(body) = response.json::<Value>().await
                            && let Some(change) = body["change"].as_u64()
                        {
                            changes.push(change);
                            loaded.send_modify(|count| *count += 1);
                        }
                    }
                    changes
                })
            })
            .collect();
        // Stop it in the middle of the load: after 200 acknowledged writes.
        let mut load = load;
        load.wait_for(|count| *count >= 200).await.unwrap();
        assert!(Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap().success());
        let mut acknowledged = Vec::new();
        for client in clients {
            acknowledged.extend(client.await.unwrap());
        }
        acknowledged
    });
    // The grace is 10 s; the process must be gone well within twice that.
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || exited.send(server.wait().unwrap()));
    let exit = exit.recv_timeout(std::time::Duration::from_secs(20)).expect("the server exits within its deadline");
    assert!(exit.success(), "SIGTERM under load exits 0: {exit}");

    // Every acknowledged change is in the store with its hook run, done or still queued.
    let changes = json(&db, &["changes", "list", "--limit", "100000"]);
    let recorded: std::collections::HashSet<u64> =
        changes.as_array().unwrap().iter().map(|change| change["id"].as_u64().unwrap()).collect();
    let results = json(&db, &["results", "list", "--limit", "100000"]);
    let with_runs: std::collections::HashSet<u64> = results
        .as_array()
        .unwrap()
        .iter()
        .filter(|result| ["SUCCESS", "PENDING"].contains(&result["status"].as_str().unwrap()))
        .filter_map(|result| result["inputs"]["object_change"].as_u64())
        .collect();
    for change in &acknowledged {
        assert!(recorded.contains(change) && with_runs.contains(change), "change {change} lost");
    }
}
