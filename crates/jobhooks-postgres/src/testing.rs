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

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio_postgres::NoTls;

pub use crate::cluster::{Cluster, start as start_cluster};

/// A server tests make databases on.
#[derive(Debug)]
pub struct TestServer {
    /// A connection URL of the server's maintenance database.
    url: String,
    databases: AtomicU64,
    /// Whether this process dropped the databases earlier test processes left.
    swept: AtomicBool,
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
                _ => crate::cluster::start().map(|cluster| cluster.url).unwrap_or_else(|reason| {
                    panic!("no PostgreSQL server for the tests: {reason}; set JOBHOOKS_TEST_PG to a server's URL or install PostgreSQL (Debian: apt-get install postgresql)")
                }),
            };
            TestServer { url, databases: AtomicU64::new(0), swept: AtomicBool::new(false) }
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
        // Process ids recycle and a server outlives test runs: a random part keeps names unique.
        let name = format!(
            "jobhooks_test_{}_{}_{}",
            std::process::id(),
            self.databases.fetch_add(1, Ordering::SeqCst),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test server at {}: {}", self.url, reason(&e)));
        let driver = tokio::spawn(connection);
        if !self.swept.swap(true, Ordering::SeqCst) {
            sweep_leftovers(&client).await;
        }
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {}", reason(&e)));
        drop(client);
        let _ = driver.await;
        with_database(&self.url, &name)
    }
}

/// Drops the test databases of test processes of this machine that have ended (their names carry
/// the process id; `/proc` says which processes live), so that a long-lived server does not fill
/// its disk with them. A database still in use is not dropped (PostgreSQL refuses while it has
/// connections), and nothing is dropped where `/proc` is absent.
async fn sweep_leftovers(client: &tokio_postgres::Client) {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let leftovers = "SELECT datname::text FROM pg_database WHERE datname LIKE 'jobhooks\\_test\\_%'";
    let Ok(rows) = client.query(leftovers, &[]).await else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.strip_prefix("jobhooks_test_").and_then(|rest| rest.split('_').next());
        let ended = pid.is_some_and(|pid| {
            pid.parse::<u32>().is_ok_and(|pid| pid != std::process::id())
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        if ended {
            // Refused while another process still uses it: it is left for a later sweep.
            let _dropped_or_in_use = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\"")).await;
        }
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

/// The server's own message, when it sent one, after the client's.
fn reason(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{error}: {}", db.message()),
        None => error.to_string(),
    }
}

/// Installs the job hook receiver `job`, enabled, and a hook named `hook` on `dcim.device` that
/// fires on `actions`: what the tests that need a matching hook start from.
///
/// # Panics
///
/// When the store refuses any of it.
pub async fn install_device_hook(
    store: &crate::PgStore,
    hook: &str,
    job: &str,
    actions: impl IntoIterator<Item = jobhooks_model::Action>,
) {
    use jobhooks_model::ports::Catalog;
    use jobhooks_model::{ContentType, JobHook, JobKind, JobSpec, SyncMode};
    let spec = JobSpec {
        class_path: job.into(),
        name: job.rsplit("::").next().unwrap_or(job).into(),
        description: String::new(),
        kind: JobKind::JobHookReceiver,
        hidden: true,
        former_class_paths: vec![],
    };
    store.sync_jobs(&[spec], SyncMode::Full).await.unwrap();
    store.set_job_enabled(job, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    store.create_hook(JobHook::new(hook, devices, job).on(actions)).await.unwrap();
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
