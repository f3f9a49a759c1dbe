//! What the web pages need from the command line: passwords read from stdin, sessions listed and
//! ended, and `serve --demo`, which a newcomer runs to log in and press a button at once.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::store;
use super::support::{Place, address_in, bare, fails, jobhooks, json, ok, serving_line};

on_a_store_and_through_a_server!(passwords_come_from_stdin_and_are_checked,);

/// Runs `args` at `place` with `input` on stdin.
fn with_stdin(place: &impl Place, args: &[&str], input: &str) -> std::process::Output {
    let mut child =
        place.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn passwords_come_from_stdin_and_are_checked(db: impl Place) {
    let added = with_stdin(&db, &["users", "add", "alice", "--password-stdin"], "long enough\n");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let short = with_stdin(&db, &["users", "add", "bob", "--password-stdin"], "short\n");
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("the password has 5 characters; choose one of at least 8"));
    let users = json(&db, &["users", "list"]);
    assert!(users.as_array().unwrap().iter().all(|user| user["username"] != "bob"), "a refused password adds no user");
    let set = with_stdin(&db, &["users", "passwd", "alice", "--json"], "another good one\r\n");
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&set.stdout).unwrap()["has_password"], true);
    let empty = with_stdin(&db, &["users", "passwd", "alice"], "\n");
    assert_eq!(empty.status.code(), Some(2), "an empty line is no password");
    let removed = ok(&db, &["users", "passwd", "alice", "--remove"]);
    assert!(removed.contains("can no longer log in"), "{removed}");
    let stderr = fails(&db, &["users", "passwd", "nobody", "--remove"], 2);
    assert!(stderr.contains("user nobody does not exist"), "{stderr}");
    assert_eq!(json(&db, &["users", "sessions", "list"]), Value::Array(vec![]));
    let stderr = fails(&db, &["users", "sessions", "end", "0000000000000000"], 2);
    assert!(stderr.contains("session `0000000000000000` does not exist"), "{stderr}");
}

/// `serve --demo`, read as a newcomer reads it: the address, the logins.
struct Demo {
    server: std::process::Child,
    url: String,
    passwords: std::collections::HashMap<String, String>,
}

impl Demo {
    fn start(command: &mut Command) -> Self {
        let mut server = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdout = std::io::BufReader::new(server.stdout.take().unwrap());
        let mut passwords = std::collections::HashMap::new();
        let mut line = String::new();
        while passwords.len() < 3 {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "the demo printed its logins");
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [user, "password", password, ..] = words[..] {
                passwords.insert(user.to_owned(), password.to_owned());
            }
        }
        let url = address_in(&serving_line(&mut server));
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Demo { server, url, passwords }
    }

    fn stop(mut self) {
        assert!(Command::new("kill").args(["-TERM", &self.server.id().to_string()]).status().unwrap().success());
        assert!(self.server.wait().unwrap().success());
    }
}

/// The CSRF token in `page`.
fn token_in(page: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).expect("a form") + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// A newcomer runs `serve --demo`, logs in as alice with the password it printed, presses Simple
/// on HQ and reads SUCCESS on the result's page.
#[tokio::test]
async fn serve_demo_seeds_a_store_a_newcomer_logs_in_to_and_presses_a_button() {
    let demo = Demo::start(bare().args(["serve", "--demo", "--listen", "127.0.0.1:0"]).env("RUST_LOG", "error"));
    let mut users: Vec<&str> = demo.passwords.keys().map(String::as_str).collect();
    users.sort_unstable();
    assert_eq!(users, ["alice", "bob", "eve"]);
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let login = client.get(format!("{}/login/", demo.url)).send().await.unwrap().text().await.unwrap();
    let form = [
        ("csrf_token", token_in(&login)),
        ("username", "alice".to_owned()),
        ("password", demo.passwords["alice"].clone()),
        ("next", "/objects/dcim.location/hq/".to_owned()),
    ];
    let hq = client.post(format!("{}/login/", demo.url)).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(hq.contains("Run simple on HQ") && hq.contains("Run complex on HQ"), "{hq}");
    let press = [("csrf_token", token_in(&hq))];
    let pressed = client.post(format!("{}/objects/dcim.location/hq/buttons/Simple/", demo.url)).form(&press).send();
    let pressed = pressed.await.unwrap().text().await.unwrap();
    assert!(pressed.contains("Job enqueued."), "{pressed}");
    let result = pressed.split("href=\"&#x2f;results&#x2f;").nth(1).and_then(|rest| rest.split('&').next()).unwrap();
    let page = format!("{}/results/{result}/?fragment=true&wait=20&seen=PENDING%3A0", demo.url);
    let mut shown = client.get(&page).send().await.unwrap().text().await.unwrap();
    for _ in 0..5 {
        if shown.contains("data-final=\"true\"") {
            break;
        }
        let seen = shown.split("data-seen=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned();
        let next = format!("{}/results/{result}/?fragment=true&wait=20&seen={}", demo.url, seen.replace(':', "%3A"));
        shown = client.get(&next).send().await.unwrap().text().await.unwrap();
    }
    assert!(shown.contains("data-status=\"SUCCESS\"") && shown.contains("Job completed"), "{shown}");
    demo.stop();
}

/// A store that holds data is refused, and nothing is written to it; a new one named by `--db` is
/// seeded and kept.
#[test]
fn serve_demo_seeds_only_a_new_or_empty_store() {
    let (_dir, db) = store();
    ok(&db, &["users", "add", "ops", "--superuser"]);
    let before = json(&db, &["jobs", "list"]);
    let stderr = fails(&db, &["serve", "--demo", "--listen", "127.0.0.1:0"], 2);
    assert!(stderr.contains("holds data: `serve --demo` seeds only a new or empty store"), "{stderr}");
    assert_eq!(json(&db, &["jobs", "list"]), before, "nothing was written");

    let fresh = tempfile::tempdir().unwrap();
    let kept = fresh.path().join("demo");
    let demo =
        Demo::start(jobhooks(&kept).args(["serve", "--demo", "--listen", "127.0.0.1:0"]).env("RUST_LOG", "error"));
    demo.stop();
    let users = json(&kept, &["users", "list"]);
    assert_eq!(users.as_array().unwrap().len(), 3, "alice, bob and eve stay in the store --db named");
}

/// With `server.metrics_listen`, `/health`, `/ready` and `/metrics` answer on that address alone:
/// the public address answers 404 for them, and both stop on one SIGTERM.
#[tokio::test]
async fn metrics_may_be_served_on_an_address_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = jobhooks(dir.path().join("db"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "error")
        .env("JOBHOOKS_SERVER_METRICS_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = serving_line(&mut server);
    let main = address_in(&line);
    let metrics = line.split("/metrics at ").nth(1).and_then(|rest| rest.split('/').nth(2)).expect(&line);
    let metrics = format!("http://{metrics}");
    for path in ["/health", "/ready", "/metrics"] {
        let apart = reqwest::get(format!("{metrics}{path}")).await.unwrap();
        assert_eq!(apart.status(), reqwest::StatusCode::OK, "{path} on the metrics address");
        let beside = reqwest::get(format!("{main}{path}")).await.unwrap();
        assert_eq!(beside.status(), reqwest::StatusCode::NOT_FOUND, "{path} is not on the public address");
    }
    let text = reqwest::get(format!("{metrics}/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains("jobhooks_queue_runs"), "{text}");
    assert_eq!(reqwest::get(format!("{main}/api/")).await.unwrap().status(), reqwest::StatusCode::OK);
    assert!(Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap().success());
    assert!(server.wait().unwrap().success(), "one SIGTERM stops both");
}
