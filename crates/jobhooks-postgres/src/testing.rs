//! A PostgreSQL server for tests: the one `JOBHOOKS_TEST_PG` names (a connection URL), or else a
//! throwaway cluster this process starts once, in a temporary directory, on a free 127.0.0.1 port,
//! and which stops and is removed when the process ends (even when it is killed). Each test takes
//! a database of its own with [`TestServer::fresh_database`].
//!
//! The throwaway cluster needs PostgreSQL's server binaries (`initdb`, `pg_ctl`): on `PATH`, in
//! `JOBHOOKS_PG_BIN`, or where Debian's `postgresql` package puts them
//! (`/usr/lib/postgresql/<major>/bin`). `initdb` refuses to run as root, so as root the cluster
//! runs as the `postgres` user. A test that needs a server and cannot get one fails, saying why;
//! it never skips.
//!
//! ```no_run
//! # async fn example() {
//! use jobhooks_postgres::{PgStore, testing::TestServer};
//!
//! let url = TestServer::shared().fresh_database().await;
//! let store = PgStore::connect(&url).await.unwrap();
//! # drop(store);
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::NoTls;

/// A server tests make databases on.
#[derive(Debug)]
pub struct TestServer {
    /// A connection URL of the server's maintenance database.
    url: String,
    databases: AtomicU64,
}

impl TestServer {
    /// The server of this test process, started on first use.
    ///
    /// # Panics
    ///
    /// When no server can be had: the message says what was missing.
    pub fn shared() -> &'static TestServer {
        static SERVER: OnceLock<TestServer> = OnceLock::new();
        SERVER.get_or_init(|| {
            let url = match std::env::var("JOBHOOKS_TEST_PG") {
                Ok(url) if !url.is_empty() => url,
                _ => start_cluster().unwrap_or_else(|reason| {
                    panic!("no PostgreSQL server for the tests: {reason}; set JOBHOOKS_TEST_PG to a server's URL or install PostgreSQL (Debian: apt-get install postgresql)")
                }),
            };
            TestServer { url, databases: AtomicU64::new(0) }
        })
    }

    /// The URL of the server's maintenance database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates an empty database for one test and returns its URL.
    ///
    /// # Panics
    ///
    /// When the server refuses.
    pub async fn fresh_database(&self) -> String {
        let name = format!("jobhooks_test_{}_{}", std::process::id(), self.databases.fetch_add(1, Ordering::SeqCst));
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test server at {}: {e}", self.url));
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        drop(client);
        let _ = driver.await;
        with_database(&self.url, &name)
    }
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// Where PostgreSQL's server binaries are.
fn binaries() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("JOBHOOKS_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let on_path =
        std::env::var_os("PATH").into_iter().flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>());
    if let Some(dir) = on_path.into_iter().find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()) {
        return Ok(dir);
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.path().join("bin")).collect())
        .unwrap_or_default();
    debian.retain(|dir| dir.join("initdb").is_file());
    debian.sort_by_key(|dir| {
        dir.parent().and_then(|major| major.file_name()?.to_str()?.parse::<u32>().ok()).unwrap_or(0)
    });
    debian.pop().ok_or_else(|| {
        "initdb was not found (not on PATH, JOBHOOKS_PG_BIN unset, no /usr/lib/postgresql/*/bin)".to_owned()
    })
}

/// Whether this process runs as root, whom `initdb` refuses.
fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A command that runs `program` as the cluster's owner.
fn as_owner(program: &Path, root: bool) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) -> Result<(), String> {
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Starts a throwaway cluster and returns its URL; a watchdog stops and removes it when this
/// process ends.
fn start_cluster() -> Result<String, String> {
    let bin = binaries()?;
    let root = is_root();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("jobhooks-pg-{}-{nanos}", std::process::id()));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if root {
        let mut chown = Command::new("chown");
        chown.arg("postgres:").arg(&dir);
        run(chown, "chown")?;
    }
    let mut initdb = as_owner(&bin.join("initdb"), root);
    initdb.arg("-D").arg(&data).args(["--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--locale=C"]);
    run(initdb, "initdb")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))?
        .port();
    let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200", dir.display());
    let mut start = as_owner(&bin.join("pg_ctl"), root);
    start.arg("-D").arg(&data).arg("-l").arg(dir.join("server.log")).args(["-w", "-o", &options, "start"]);
    run(start, "pg_ctl start")?;
    let owner = if root { "runuser -u postgres -- " } else { "" };
    let watchdog = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; {owner}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
        parent = std::process::id(),
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display(),
    );
    Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the cluster's watchdog: {e}"))?;
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_url_gets_another_database() {
        assert_eq!(with_database("postgres://u@h:5/postgres", "t1"), "postgres://u@h:5/t1");
        assert_eq!(with_database("postgres://u@h:5", "t1"), "postgres://u@h:5/t1");
        assert_eq!(with_database("postgres://u@h/db?sslmode=disable", "t1"), "postgres://u@h/t1?sslmode=disable");
    }
}
