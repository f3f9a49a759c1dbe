//! Running the real `jobhooks` binary as a user does, shared by the command line's test binaries.
//! A command runs at a [`Place`]: a store (`--db`, a directory or a PostgreSQL URL) or a running
//! server ([`Served`], `--url` and `--token`).

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The binary with `--db db`, ignoring `JOBHOOKS_*` from the environment.
pub fn jobhooks(db: impl AsRef<OsStr>) -> Command {
    let mut command = bare();
    command.arg("--db").arg(db);
    command
}

/// The binary, ignoring `JOBHOOKS_*` from the environment.
pub fn bare() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jobhooks"));
    for variable in ["JOBHOOKS_DB", "JOBHOOKS_URL", "JOBHOOKS_TOKEN", "JOBHOOKS_CONFIG"] {
        command.env_remove(variable);
    }
    command
}

/// Where a command runs.
pub trait Place {
    /// The binary with `args`, run here.
    fn command(&self, args: &[&str]) -> Command;

    /// Who a command acts as when it names no `--user`: the token's user through a server (a
    /// token is made by its own user only), no one on a store.
    fn token_user(&self) -> Option<&str> {
        None
    }
}

impl Place for Path {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = jobhooks(self);
        command.args(args);
        command
    }
}

impl Place for PathBuf {
    fn command(&self, args: &[&str]) -> Command {
        self.as_path().command(args)
    }
}

impl Place for str {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = jobhooks(self);
        command.args(args);
        command
    }
}

impl Place for String {
    fn command(&self, args: &[&str]) -> Command {
        self.as_str().command(args)
    }
}

impl<T: Place + ?Sized> Place for &T {
    fn command(&self, args: &[&str]) -> Command {
        (**self).command(args)
    }

    fn token_user(&self) -> Option<&str> {
        (**self).token_user()
    }
}

/// No store and no server: the binary with only the arguments given.
#[derive(Clone, Copy)]
pub struct Nowhere;

impl Place for Nowhere {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = bare();
        command.args(args);
        command
    }
}

/// `jobhooks serve` on a fresh store, on 127.0.0.1 with two workers, with a superuser `root`.
/// Commands run through it with `--url` and root's token; a command with `--user NAME` runs with
/// a token of NAME (issued through the server on first use), since the server acts as the
/// token's user. Stopped with SIGTERM when dropped.
pub struct Served {
    _dir: tempfile::TempDir,
    server: Child,
    url: String,
    root: String,
    tokens: RefCell<HashMap<String, String>>,
}

impl Served {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        ok(&db, &["users", "add", "root", "--superuser"]);
        let root = ok(&db, &["users", "token", "add", "root"]).trim().to_owned();
        let mut server = jobhooks(&db)
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", "2"])
            .env("RUST_LOG", "error")
            // Backups through the server land in temporary directories.
            .env("JOBHOOKS_SERVER_BACKUP_DIR", std::env::temp_dir())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let line = serving_line(&mut server);
        let url = address_in(&line);
        Self { _dir: dir, server, url, root, tokens: RefCell::default() }
    }

    /// The server's address, `http://127.0.0.1:port`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A token of `user`, or root's when `user` does not exist.
    pub fn token_of(&self, user: &str) -> String {
        if let Some(token) = self.tokens.borrow().get(user) {
            return token.clone();
        }
        // As in Nautobot, no one makes a token for someone else: root gives the user a password,
        // which stands for one (token provisioning).
        const PASSWORD: &str = "the harness's password";
        let with_stdin = |mut command: Command| {
            let mut child =
                command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        };
        if !with_stdin(self.with_token(&self.root, &["users", "passwd", user])).status.success() {
            return self.root.clone();
        }
        let mut provision = bare();
        provision.args(["--url", &self.url, "users", "token", "add", user, "--password-stdin"]);
        let output = with_stdin(provision);
        assert!(output.status.success(), "provisioning {user}'s token: {}", String::from_utf8_lossy(&output.stderr));
        let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        self.tokens.borrow_mut().insert(user.to_owned(), token.clone());
        token
    }

    /// The binary with `args`, run through the server with root's token whatever `--user` says.
    pub fn as_root(&self, args: &[&str]) -> Command {
        self.with_token(&self.root, args)
    }

    fn with_token(&self, token: &str, args: &[&str]) -> Command {
        let mut command = bare();
        command.args(["--url", &self.url, "--token", token]).args(args);
        command
    }
}

impl Place for Served {
    fn command(&self, args: &[&str]) -> Command {
        let acting = args.iter().position(|arg| *arg == "--user").and_then(|at| args.get(at + 1));
        let token = match acting {
            Some(user) if *user != "root" => self.token_of(user),
            _ => self.root.clone(),
        };
        self.with_token(&token, args)
    }

    fn token_user(&self) -> Option<&str> {
        Some("root")
    }
}

/// The line a `jobhooks serve` child says it serves in, read from its stderr (piped); the rest of
/// its stderr is read on, so that the child never blocks on a full pipe.
pub fn serving_line(server: &mut Child) -> String {
    let mut stderr = std::io::BufReader::new(server.stderr.take().expect("the server's stderr is piped"));
    let mut line = String::new();
    while !line.contains("serving http://") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the server stopped before serving");
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    line
}

/// The API's base address (`http://host:port`) in a [`serving_line`].
pub fn address_in(line: &str) -> String {
    line.split("serving ").nth(1).and_then(|rest| rest.split("/api/").next()).expect(line).to_owned()
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.server.id().to_string()]).status();
        let _ = self.server.wait();
    }
}

pub fn run(place: impl Place, args: &[&str]) -> Output {
    place.command(args).output().expect("the binary runs")
}

/// Runs a command that must succeed and returns its stdout.
pub fn ok(place: impl Place, args: &[&str]) -> String {
    let output = run(place, args);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{args:?} failed: {stderr}\n{stdout}");
    stdout.into_owned()
}

/// Runs a `--json` command that must succeed and parses its output.
pub fn json(place: impl Place, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&ok(place, &args)).expect("--json prints JSON")
}

/// Runs a command that must fail with `status`, never with a panic, and returns its stderr.
pub fn fails(place: impl Place, args: &[&str], status: i32) -> String {
    let output = run(place, args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(status), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    stderr
}

/// A store with the demo's kinds of records: users with a token, a hook and a button on enabled
/// jobs, objects changed three times, a press, and every run ended by `demo`'s dispatcher.
pub fn populated(place: impl Place + Copy) {
    const SERIAL_HOOK: &str = "jobhooks_examples::ExampleJobHookReceiver";
    const SIMPLE_BUTTON: &str = "jobhooks_examples::ExampleSimpleJobButtonReceiver";
    ok(place, &["users", "add", "alice", "--superuser"]);
    ok(place, &["users", "token", "add", "alice", "--description", "laptop"]);
    ok(place, &["jobs", "enable", SERIAL_HOOK]);
    ok(place, &["jobs", "enable", SIMPLE_BUTTON]);
    ok(place, &["hooks", "add", "serials", "--content-type", "dcim.device", "--job", SERIAL_HOOK, "--on", "update"]);
    ok(
        place,
        &[
            "buttons",
            "add",
            "go",
            "--content-type",
            "dcim.device",
            "--text",
            "Go",
            "--job",
            SIMPLE_BUTTON,
            "--group",
            "g",
        ],
    );
    ok(place, &["objects", "put", "dcim.device", "d1", r#"{"serial": "A1"}"#, "--user", "alice"]);
    ok(place, &["objects", "put", "dcim.device", "d1", r#"{"serial": "B2"}"#, "--user", "alice"]);
    ok(place, &["objects", "put", "dcim.rack", "r1", r#"{"name": "R1"}"#, "--user", "alice"]);
    ok(place, &["objects", "delete", "dcim.rack", "r1", "--user", "alice"]);
    ok(place, &["buttons", "press", "go", "dcim.device", "d1", "--user", "alice", "--wait"]);
}

/// The lines of an export without its header (which says when it was taken).
pub fn records(export: &str) -> Vec<Value> {
    let mut lines = export.lines().map(|line| serde_json::from_str::<Value>(line).expect("JSON lines"));
    assert_eq!(lines.next().expect("a header")["record"], "header");
    lines.collect()
}
