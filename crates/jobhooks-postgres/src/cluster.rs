//! A throwaway PostgreSQL cluster: `initdb` into a temporary directory, started with `pg_ctl` on a
//! free 127.0.0.1 port, stopped and removed by a watchdog when the process that started it ends.
//! Standard library only, so that `cargo xtask ci` shares it without building a client.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where PostgreSQL's server binaries are.
pub fn binaries() -> Result<PathBuf, String> {
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

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    /// The URL of its maintenance database.
    pub url: String,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    root: bool,
}

impl Cluster {
    /// Restarts the server as an operator would (`pg_ctl restart -m fast`): every connection is
    /// closed, the server is back when this returns.
    pub fn restart(&self) -> Result<(), String> {
        let mut restart = as_owner(&self.bin.join("pg_ctl"), self.root);
        // The server writes to its log file, never to the pipes that `run` reads to their end.
        restart.arg("-D").arg(&self.data).arg("-l").arg(&self.log).args(["-w", "-m", "fast", "restart"]);
        run(restart, "pg_ctl restart")
    }
}

/// Starts a throwaway cluster. A watchdog stops it and removes its directory when this process
/// ends, however it ends.
pub fn start() -> Result<Cluster, String> {
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
    // The options are kept in the data directory, so that a restart keeps them.
    let settings = format!(
        "port = {port}\nunix_socket_directories = '{}'\nlisten_addresses = '127.0.0.1'\nmax_connections = 200\n",
        dir.display()
    );
    let conf = data.join("postgresql.auto.conf");
    let mut append = as_owner(Path::new("sh"), root);
    append.args(["-c", &format!("cat >> '{}' <<'EOF'\n{settings}EOF", conf.display())]);
    run(append, "writing the cluster's settings")?;
    let mut start = as_owner(&bin.join("pg_ctl"), root);
    start.arg("-D").arg(&data).arg("-l").arg(dir.join("server.log")).args(["-w", "start"]);
    run(start, "pg_ctl start")?;
    let owner = if root { "runuser -u postgres -- " } else { "" };
    let watchdog = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; {owner}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
        parent = std::process::id(),
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display(),
    );
    // In a session of its own: a signal to the test's process group (a timeout) must not take the
    // watchdog with it and leave the cluster running.
    Command::new("setsid")
        .args(["sh", "-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the cluster's watchdog: {e}"))?;
    let log = dir.join("server.log");
    Ok(Cluster { url: format!("postgres://postgres@127.0.0.1:{port}/postgres"), bin, data, log, root })
}
