//! The command line on the PostgreSQL store (`--db postgres://…`): every kind of subcommand works,
//! and it keeps working while `jobhooks run` processes serve the same database (the sled store
//! admits one process at a time; PostgreSQL serves many).
#![cfg(feature = "postgres")]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};

use jobhooks_postgres::testing::TestServer;
use support::{fails, jobhooks, json, ok};

const SERIAL_HOOK: &str = "jobhooks_examples::ExampleJobHookReceiver";
const SIMPLE_BUTTON: &str = "jobhooks_examples::ExampleSimpleJobButtonReceiver";

/// A fresh database on the test server.
fn database() -> String {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(TestServer::shared().fresh_database())
}

/// Starts `jobhooks run` and returns it once it says it is dispatching.
fn dispatcher(db: &str) -> (Child, BufReader<ChildStderr>) {
    let mut child = jobhooks(db).args(["run", "--workers", "2"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("dispatching from postgres://"), "{line}");
    (child, stderr)
}

/// Interrupts a dispatcher as Ctrl-C would and checks that it stops gracefully.
fn interrupt(mut child: Child, mut stderr: BufReader<ChildStderr>) {
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(status.success(), "a Ctrl-C shuts down gracefully: {status}\n{rest}");
    assert!(rest.contains("stopped ("), "{rest}");
}

#[test]
fn every_kind_of_subcommand_works_while_dispatchers_serve_the_database() {
    let db = database();
    let migrated = json(&db, &["migrate"]);
    assert!(migrated["version"].as_str().unwrap().starts_with("jobhooks-postgres/"), "{migrated}");
    ok(&db, &["users", "add", "alice", "--perm", "extras.run_job"]);
    ok(&db, &["users", "add", "eve"]);
    ok(&db, &["jobs", "enable", SERIAL_HOOK]);
    ok(&db, &["jobs", "enable", SIMPLE_BUTTON]);
    let (first, first_log) = dispatcher(&db);
    let (second, second_log) = dispatcher(&db);

    // The catalog, users and objects, while two dispatchers hold the database.
    assert_eq!(json(&db, &["users", "list"]).as_array().unwrap().len(), 2);
    ok(&db, &["hooks", "add", "serials", "--content-type", "dcim.device", "--job", SERIAL_HOOK, "--on", "update"]);
    let stderr = fails(&db, &["hooks", "add", "serials", "--content-type", "dcim.device", "--job", SERIAL_HOOK], 2);
    assert!(stderr.contains("A job hook named serials already exists"), "{stderr}");
    assert_eq!(json(&db, &["hooks", "list"])[0]["name"], "serials");
    ok(
        &db,
        &[
            "objects",
            "put",
            "dcim.device",
            "d1",
            r#"{"name": "edge-1", "serial": "A1"}"#,
            "--repr",
            "edge-1",
            "--user",
            "alice",
        ],
    );
    ok(&db, &["objects", "put", "dcim.location", "hq", r#"{"name": "HQ"}"#, "--repr", "HQ", "--user", "alice"]);

    // An update queues a hook run, which a dispatcher process runs: the seed receiver reverts the
    // serial, so the device's serial comes back to A1 through a `job-hook` change.
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
    let run = receipt["runs"][0].as_u64().expect("the update queued a hook run").to_string();
    let mut result = json(&db, &["results", "show", &run]);
    for _ in 0..500 {
        if result["status"] == "SUCCESS" {
            break;
        }
        result = json(&db, &["results", "show", &run]);
    }
    assert_eq!(result["status"], "SUCCESS", "{result}");
    assert_eq!(json(&db, &["objects", "show", "dcim.device", "d1"])["data"]["serial"], "A1");
    let changes = json(&db, &["changes", "list", "--object", "dcim.device", "d1"]);
    assert_eq!(changes[0]["change_context"], "job-hook");
    let change = receipt["changes"][0].as_u64().unwrap().to_string();
    let shown = json(&db, &["changes", "show", &change]);
    assert_eq!(shown["snapshots"]["differences"]["added"], serde_json::json!({"serial": "B2"}));

    // Buttons: rendered for a user, refused for another, and pressed.
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
    assert_eq!(json(&db, &["buttons", "for", "dcim.location", "hq", "--user", "alice"])[0]["text"], "Run on HQ");
    let refused = fails(&db, &["buttons", "press", "simple", "dcim.location", "hq", "--user", "eve"], 2);
    assert_eq!(refused.trim(), "error: This user does not have permission to run jobs.");
    let pressed = json(&db, &["buttons", "press", "simple", "dcim.location", "hq", "--user", "alice", "--wait"]);
    assert_eq!(pressed["status"], "SUCCESS", "{pressed}");

    // Results, replay refusals and deletes.
    let hook_results = json(&db, &["results", "list", "--job", SERIAL_HOOK]);
    assert_eq!(hook_results[0]["status"], "SUCCESS");
    assert!(fails(&db, &["results", "replay", &run], 2).contains("is not dead-lettered"));
    ok(&db, &["objects", "delete", "dcim.location", "hq", "--user", "alice"]);
    assert!(fails(&db, &["objects", "show", "dcim.location", "hq"], 2).contains("does not exist"));
    ok(&db, &["buttons", "delete", "simple"]);
    ok(&db, &["hooks", "delete", "serials"]);

    interrupt(first, first_log);
    interrupt(second, second_log);
}

#[test]
fn a_url_that_is_not_postgres_is_refused_and_an_unreachable_server_is_a_failure() {
    let refused = fails("postgres://alice@127.0.0.1:notaport/db", &["jobs", "list"], 2);
    assert!(refused.contains("invalid PostgreSQL URL"), "{refused}");
    // A port nothing listens on (bound then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://alice:secret@127.0.0.1:{port}/db");
    let failed = fails(&url, &["jobs", "list"], 1);
    assert!(failed.contains("cannot connect to PostgreSQL"), "{failed}");
    assert!(!failed.contains("secret"), "the password is never printed: {failed}");
}

/// A team outgrows one machine: the sled store's export imports into PostgreSQL, which then exports
/// the same records.
#[test]
fn a_sled_store_moves_to_postgresql_through_an_export() {
    let dir = tempfile::tempdir().unwrap();
    let sled = dir.path().join("db");
    support::populated(&sled);
    let file = dir.path().join("export.jsonl");
    ok(&sled, &["export", file.to_str().unwrap()]);
    let db = database();
    let report = json(&db, &["import", file.to_str().unwrap()]);
    assert_eq!(report["changes"], 5, "four writes and the hook run's revert");
    let exported = support::records(&std::fs::read_to_string(&file).unwrap());
    // PostgreSQL keeps times to the microsecond; sled keeps what the clock gave.
    assert_eq!(microseconds(support::records(&ok(&db, &["export"]))), microseconds(exported));
    let receipt = json(&db, &["objects", "put", "dcim.device", "d2", "{}", "--user", "alice"]);
    assert_eq!(receipt["changes"][0], 6, "PostgreSQL numbers new changes after the export's");
}

/// `records` with every time cut to the microsecond, as PostgreSQL's `timestamptz` keeps it.
fn microseconds(records: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    fn cut(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(text)
                if text.ends_with('Z') && text.len() > 20 && text.as_bytes()[10] == b'T' =>
            {
                if let Some(dot) = text.find('.') {
                    let digits: String = text[dot + 1..text.len() - 1].chars().take(6).collect();
                    let digits = digits.trim_end_matches('0');
                    let head = &text[..dot];
                    *text = if digits.is_empty() { format!("{head}Z") } else { format!("{head}.{digits}Z") };
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(cut),
            serde_json::Value::Object(fields) => fields.values_mut().for_each(cut),
            _ => {}
        }
    }
    records
        .into_iter()
        .map(|mut record| {
            cut(&mut record);
            record
        })
        .collect()
}
