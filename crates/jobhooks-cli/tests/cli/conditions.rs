//! `hooks add|update --conditions JSON --changed-field NAME --any-field`: saved, shown, decided
//! when a change commits; bad conditions exit 2 and write nothing.

use serde_json::{Value, json as object};

use crate::SERIAL_HOOK;
use crate::support::{Place, fails, json, run};

on_a_store_and_through_a_server!(hooks_run_only_for_the_changes_their_conditions_admit);

/// Puts device d1 with `data` and answers (whether a change was recorded, how many runs queued).
fn put_device(db: impl Place, data: &str) -> (bool, usize) {
    let receipt = json(&db, &["objects", "put", "dcim.device", "d1", data, "--repr", "edge-1", "--user", "root"]);
    (!receipt["changes"].as_array().unwrap().is_empty(), receipt["runs"].as_array().unwrap().len())
}

/// `args` as the `&str`s the helpers take.
fn with(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn hooks_run_only_for_the_changes_their_conditions_admit(db: impl Place) {
    json(&db, &["jobs", "enable", SERIAL_HOOK]);
    // A server's store has its root already.
    let _ = run(&db, &["users", "add", "root", "--superuser"]);
    put_device(&db, r#"{"status": "planned"}"#);
    let add = |conditions: &str| {
        let mut args = vec!["hooks", "add", "active", "--content-type", "dcim.device", "--job", SERIAL_HOOK];
        args.extend(["--on", "update", "--conditions", conditions, "--changed-field", "status"]);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };

    // Bad conditions exit 2 with the place and the reason, and add nothing.
    for (conditions, message) in [
        ("{not json", "--conditions: not JSON"),
        (r#"{"attr": "status", "value": 1}"#, "must start with prechange., postchange. or differences."),
        (r#"{"attr": "postchange.name", "value": "[", "op": "regex"}"#, "the pattern does not compile"),
        (r#"{"attr": "postchange.name", "value": 1, "op": "between"}"#, "unknown operator `between`"),
    ] {
        let stderr = fails(&db, &with(&add(conditions)), 2);
        assert!(stderr.contains(message), "{conditions}: {stderr}");
    }
    assert_eq!(json(&db, &["hooks", "list"]), object!([]), "nothing was added");

    let hook = json(&db, &with(&add(r#"{"attr": "postchange.status", "value": "active"}"#)));
    assert_eq!(
        hook["conditions"],
        object!({"attr": "postchange.status", "value": "active", "op": "eq", "negate": false})
    );
    assert_eq!(hook["changed_fields"], object!(["status"]));
    assert_eq!(put_device(&db, r#"{"status": "staged"}"#), (true, 0), "the condition is false");
    assert_eq!(put_device(&db, r#"{"status": "active"}"#), (true, 1), "status became active");
    assert_eq!(put_device(&db, r#"{"status": "active", "serial": "A1"}"#), (true, 0), "status did not change");
    assert_eq!(put_device(&db, r#"{"status": "active", "serial": "A1"}"#), (false, 0), "nothing changed");

    // `--conditions null` removes them; `--any-field` clears the fields; a bad update changes nothing.
    let stderr = fails(&db, &["hooks", "update", "active", "--conditions", r#"{"or": {}}"#], 2);
    assert!(stderr.contains("--conditions: or: a list of conditions is required"), "{stderr}");
    assert_eq!(json(&db, &["hooks", "show", "active"])["changed_fields"], object!(["status"]));
    let updated = json(&db, &["hooks", "update", "active", "--conditions", "null", "--any-field"]);
    assert_eq!((&updated["conditions"], &updated["changed_fields"]), (&Value::Null, &Value::Null), "neither is shown");
    assert_eq!(put_device(&db, r#"{"status": "active", "serial": "B2"}"#), (true, 1));
}
