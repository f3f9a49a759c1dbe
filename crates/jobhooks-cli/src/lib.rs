//! The jobhooks command line, as a library so that an application can build its own binary with
//! its own receivers linked in:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     // my_receivers::link(); // keep your receivers' registrations in the binary
//!     jobhooks_cli::main()
//! }
//! ```
//!
//! Depend on it with `default-features = false` for such a binary: the default features add the
//! `demo` command with the seed example receivers, and mimalloc for the stock binary (the library
//! never sets a global allocator).
//!
//! Every command opens the store (`--db`, default `jobhooks.db` or `$JOBHOOKS_DB`: a directory for
//! the embedded sled store, or with the `postgres` feature a `postgres://user@host:port/dbname`
//! URL for the PostgreSQL store, which many processes share), adds the
//! receivers linked into this program to its job records (never marking the jobs it does not link
//! as not installed: only `run --uninstall-unlinked` does), and does one thing. Listings print a table, or JSON with
//! `--json`. Bad input exits with status 2 and the exact validation message on stderr; other
//! failures exit with status 1.
//!
//! Invariant: the only crate that parses command lines or prints for people; it drives the other
//! layers through their public APIs and adds no behaviour of its own beyond the demo script.

mod backend;
mod config;
#[cfg(feature = "demo")]
mod demo;
mod remote;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use backend::{Backend, Session};
use clap::{Args, Parser, Subcommand};
use jobhooks_dispatch::PressError;
use jobhooks_model::ports::{Backup, BackupError, Restore, ResultFilter, Storage, SyncMode};
use jobhooks_model::{
    Action, ButtonClass, ChangeId, ContentType, JobButton, JobButtonPatch, JobHook, JobHookPatch, JobStatus, Object,
    ObjectRef, OffsetDateTime, Permission, RunId, StoreError, User, Value,
};
use jobhooks_store::Store;
use time::format_description::well_known::Rfc3339;

/// Runs the command line with the process's arguments and returns its exit status.
pub fn main() -> ExitCode {
    run(std::env::args_os())
}

/// Runs the command line with `args` (the first is the program name).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let config = match config::Config::load(cli.config.as_deref(), |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let log_format =
        cli.log_format.unwrap_or(if config.log.format == "json" { LogFormat::Json } else { LogFormat::Text });
    init_logging(log_format, &config.log.filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let json = cli.json;
    match runtime.block_on(execute(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if json {
                let message = failure.message.strip_prefix("error: ").unwrap_or(&failure.message);
                eprintln!("{}", serde_json::json!({ "error": message, "status": failure.status }));
            } else {
                eprintln!("{}", failure.message);
            }
            ExitCode::from(failure.status)
        }
    }
}

/// A command's failure: what to print and the exit status (2 for bad input, 1 otherwise).
#[derive(Debug)]
pub struct Failure {
    message: String,
    status: u8,
}

impl Failure {
    fn bad_input(message: impl Into<String>) -> Self {
        Self { message: format!("error: {}", message.into()), status: 2 }
    }

    fn failed(message: impl Into<String>) -> Self {
        Self { message: format!("error: {}", message.into()), status: 1 }
    }
}

impl From<StoreError> for Failure {
    /// The caller's input (exit status 2) or a failure (1).
    fn from(error: StoreError) -> Self {
        let message = jobhooks_model::error_chain(&error);
        let bad_input = matches!(
            error,
            StoreError::Invalid(_)
                | StoreError::Validation(_)
                | StoreError::NotFound { .. }
                | StoreError::Refused { .. }
        );
        if bad_input { Self::bad_input(message) } else { Self::failed(message) }
    }
}

/// Each port's error says what it is through [`StoreError`].
macro_rules! failure_from_port_errors {
    ($($error:ty),*) => {
        $(
            impl From<$error> for Failure {
                fn from(error: $error) -> Self {
                    StoreError::from(error).into()
                }
            }
        )*
    };
}

failure_from_port_errors!(
    jobhooks_model::CatalogError,
    jobhooks_model::ChangeError,
    jobhooks_model::QueueError,
    jobhooks_model::MaintenanceError,
    jobhooks_model::StorageFailure
);

#[cfg(feature = "postgres")]
impl From<jobhooks_postgres::OpenError> for Failure {
    fn from(error: jobhooks_postgres::OpenError) -> Self {
        let message = jobhooks_model::error_chain(&error);
        match error {
            jobhooks_postgres::OpenError::InvalidUrl { .. } => Self::bad_input(message),
            _ => Self::failed(message),
        }
    }
}

impl From<jobhooks_store::OpenError> for Failure {
    fn from(error: jobhooks_store::OpenError) -> Self {
        use jobhooks_store::OpenError;
        let message = jobhooks_model::error_chain(&error);
        match error {
            OpenError::Locked { .. } => {
                Self::failed(format!("{message} (is `jobhooks run` running?); stop it or use another --db path"))
            }
            OpenError::NotAStore { .. } => Self::bad_input(message),
            _ => Self::failed(message),
        }
    }
}

impl From<PressError> for Failure {
    fn from(error: PressError) -> Self {
        match error {
            PressError::Store(error) => error.into(),
            refusal => Self::bad_input(refusal.to_string()),
        }
    }
}

impl From<jobhooks_model::ModelError> for Failure {
    fn from(error: jobhooks_model::ModelError) -> Self {
        Self::bad_input(error.to_string())
    }
}

type Outcome = Result<(), Failure>;

#[derive(Parser)]
#[command(
    name = "jobhooks",
    version,
    about = "Run code when objects change (job hooks) or when a button is pressed (job buttons)."
)]
struct Cli {
    /// The store: a directory (the embedded sled store), or a PostgreSQL URL
    /// (`postgres://user@host:port/dbname`), which many processes can share.
    /// (Default: `db` of the config file, else `jobhooks.db`.)
    #[arg(long, global = true, env = "JOBHOOKS_DB")]
    db: Option<PathBuf>,
    /// A TOML config file (`jobhooks config show` prints every key); `JOBHOOKS_*` variables and
    /// flags override it.
    #[arg(long, global = true, env = "JOBHOOKS_CONFIG")]
    config: Option<PathBuf>,
    /// Talk to a running `jobhooks serve` at this address (`http://host:8080`) instead of opening
    /// the store: every command but `run`, `serve`, `migrate`, `import` and `demo` works this way
    /// (`backup` writes its copy on the server's machine).
    #[arg(long, global = true, env = "JOBHOOKS_URL")]
    url: Option<String>,
    /// The API token for --url (`jobhooks users token add`); its user acts.
    #[arg(long, global = true, env = "JOBHOOKS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print listings and records as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// How log lines look on stderr (`RUST_LOG` chooses which; warnings by default).
    #[arg(long, global = true, value_enum, env = "JOBHOOKS_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

/// The format of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

/// Sends log events to stderr: the `RUST_LOG` filter (default `warn`, so that skipped hooks and
/// refused runs are seen), in `format`. A program that set its own subscriber keeps it.
fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colours);
    let _already_set = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[derive(Subcommand)]
enum Command {
    /// Run the seed scenarios end to end on a fresh store and show what happened.
    #[cfg(feature = "demo")]
    Demo {
        /// Keep the demo's store here instead of a temporary directory.
        #[arg(long = "keep-db")]
        keep_db: Option<PathBuf>,
    },
    /// Jobs: the receivers linked into this program.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Job hooks: which changes run which job.
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Job buttons: buttons on objects that run a job.
    #[command(subcommand)]
    Buttons(ButtonsCommand),
    /// Users and their permissions.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Objects in the store's object repository.
    #[command(subcommand)]
    Objects(ObjectsCommand),
    /// The change log.
    #[command(subcommand)]
    Changes(ChangesCommand),
    /// Job results and their logs.
    #[command(subcommand)]
    Results(ResultsCommand),
    /// Bring the store's schema up to date and say which version it is at (opening a store does
    /// this too; run it ahead of a deploy to migrate once, before the processes start).
    Migrate,
    /// Copy the store, while it serves, into PATH (a new or empty directory): a store of its own,
    /// to open in place of this one. With --url the server writes the copy on its own machine.
    /// (The sled store only: back PostgreSQL up with pg_dump.)
    Backup { path: PathBuf },
    /// Write every record of the store (jobs, users, tokens, hooks, buttons, objects, changes and
    /// results) as JSON lines to PATH, or stdout without it. With --url the server exports the
    /// store it holds (superusers).
    Export { path: Option<PathBuf> },
    /// Read an export (from `jobhooks export`, of any store and version that writes format 1) from
    /// PATH, or `-` for stdin, into this store, which must be new: ids, times, states and logs are
    /// kept; runs that had not ended are queued again.
    Import { path: PathBuf },
    /// Remove finished results and old changes now, per the retention of the config
    /// (`retention.results_days`, `retention.changes_days`) or these flags.
    Prune {
        /// Days to keep finished results.
        #[arg(long)]
        results_days: Option<u32>,
        /// Days to keep changes (an object's latest change, and changes with kept results, stay).
        #[arg(long)]
        changes_days: Option<u32>,
    },
    /// Serve the REST API (and run the dispatcher beside it) until SIGTERM or Ctrl-C, then shut
    /// down gracefully.
    Serve {
        /// Address to listen on (default: `server.listen`, 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Serve the API only, without a dispatcher (for API-only processes on PostgreSQL).
        #[arg(long)]
        no_dispatcher: bool,
        /// Runs at once (default: `dispatcher.workers`).
        #[arg(long)]
        workers: Option<usize>,
        /// Seconds runs in flight may take to finish after SIGTERM or Ctrl-C (default:
        /// `dispatcher.grace_seconds`).
        #[arg(long)]
        grace: Option<u64>,
    },
    /// The configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the dispatcher until SIGTERM or Ctrl-C, then shut down gracefully.
    Run {
        /// Runs at once (default: `dispatcher.workers`).
        #[arg(long)]
        workers: Option<usize>,
        /// Seconds runs in flight may take to finish after SIGTERM or Ctrl-C (default:
        /// `dispatcher.grace_seconds`).
        #[arg(long)]
        grace: Option<u64>,
        /// This program links every receiver of the application: mark jobs it does not link as
        /// not installed, and disable their hooks and buttons.
        #[arg(long)]
        uninstall_unlinked: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults, the file, `JOBHOOKS_*`), as TOML or `--json`.
    Show,
}

#[derive(Subcommand)]
enum JobsCommand {
    /// List jobs (hidden receivers only with --all).
    List {
        /// Include hidden jobs.
        #[arg(long)]
        all: bool,
    },
    /// Enable a job.
    Enable { class_path: String },
    /// Disable a job.
    Disable { class_path: String },
    /// Enable again what a full job sync disabled when it found jobs no longer linked (the jobs
    /// themselves and their hooks and buttons), once they are linked again. Every such job, or
    /// only those named.
    Restore {
        /// Restore only these jobs.
        class_paths: Vec<String>,
    },
}

#[derive(Args)]
struct HookFields {
    /// A content type (`app_label.model`) that triggers the hook; repeat for several.
    #[arg(long = "content-type")]
    content_types: Vec<String>,
    /// The job hook receiver's class path.
    #[arg(long)]
    job: Option<String>,
    /// An event it fires on; repeat for several.
    #[arg(long = "on", value_enum, ignore_case = true)]
    events: Vec<EventArg>,
    /// Enable or disable it.
    #[arg(long)]
    enabled: Option<bool>,
}

#[derive(Subcommand)]
enum HooksCommand {
    /// List hooks.
    List,
    /// Show one hook.
    Show { name: String },
    /// Add a hook.
    Add {
        name: String,
        #[command(flatten)]
        fields: HookFields,
    },
    /// Update a hook: options given replace the stored values (events given replace all events).
    Update {
        name: String,
        /// A new name.
        #[arg(long)]
        rename: Option<String>,
        #[command(flatten)]
        fields: HookFields,
    },
    /// Delete a hook.
    Delete { name: String },
}

#[derive(Args)]
struct ButtonFields {
    /// A content type it appears on; repeat for several.
    #[arg(long = "content-type")]
    content_types: Vec<String>,
    /// The job button receiver's class path.
    #[arg(long)]
    job: Option<String>,
    /// The label, a Jinja2 template with `obj`, `user` and `perms`.
    #[arg(long)]
    text: Option<String>,
    /// Order within its group.
    #[arg(long)]
    weight: Option<i32>,
    /// Its group.
    #[arg(long)]
    group: Option<String>,
    /// How the button looks.
    #[arg(long = "class", value_enum, ignore_case = true)]
    button_class: Option<ClassArg>,
    /// Ask before running.
    #[arg(long)]
    confirmation: Option<bool>,
    /// Enable or disable it.
    #[arg(long)]
    enabled: Option<bool>,
}

#[derive(Subcommand)]
enum ButtonsCommand {
    /// List buttons.
    List,
    /// Add a button.
    Add {
        name: String,
        #[command(flatten)]
        fields: ButtonFields,
    },
    /// Update a button.
    Update {
        name: String,
        /// A new name.
        #[arg(long)]
        rename: Option<String>,
        #[command(flatten)]
        fields: ButtonFields,
    },
    /// Delete a button.
    Delete { name: String },
    /// The buttons an object shows a user.
    For {
        content_type: String,
        id: String,
        /// Who acts: required on a local store; with --url the token's user acts.
        #[arg(long)]
        user: Option<String>,
    },
    /// Press a button on an object as a user.
    Press {
        button: String,
        content_type: String,
        id: String,
        /// Who acts: required on a local store; with --url the token's user acts.
        #[arg(long)]
        user: Option<String>,
        /// Run the dispatcher until the run (and what it triggers) finishes, and show its result.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add or replace a user.
    Add {
        username: String,
        /// Every permission.
        #[arg(long)]
        superuser: bool,
        /// A permission (`app_label.codename`); repeat for several.
        #[arg(long = "perm")]
        perms: Vec<String>,
        /// Allow running only this job (object-level `extras.run_job`); repeat for several.
        #[arg(long = "run-job")]
        run_jobs: Vec<String>,
    },
    /// List users.
    List,
    /// API tokens: the server's `Authorization: Token <key>`.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token for USERNAME and print its key, alone on stdout (`--json`: `{"key": …}`). The
    /// key is shown this once: the store keeps only its hash.
    Add {
        username: String,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List tokens (of USERNAME, or all): id, user, created, expires, description; never keys.
    List { username: Option<String> },
    /// Revoke a token by its id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum ObjectsCommand {
    /// Create or update an object with JSON data from DATA, `--file`, or stdin (`-`).
    Put {
        content_type: String,
        id: String,
        /// The object's data as JSON, or `-` for stdin.
        data: Option<String>,
        /// Read the data from this file.
        #[arg(long)]
        file: Option<PathBuf>,
        /// How the object reads to a person (default: the id).
        #[arg(long)]
        repr: Option<String>,
        /// Who makes the change.
        /// Who acts: required on a local store; with --url the token's user acts.
        #[arg(long)]
        user: Option<String>,
    },
    /// Show an object.
    Show { content_type: String, id: String },
    /// Delete an object.
    Delete {
        content_type: String,
        id: String,
        /// Who acts: required on a local store; with --url the token's user acts.
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
enum ChangesCommand {
    /// List changes, newest first (of one object with --object).
    List {
        /// `app_label.model` and id of the object.
        #[arg(long, num_args = 2, value_names = ["CONTENT_TYPE", "ID"])]
        object: Option<Vec<String>>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show a change with its snapshots.
    Show { id: u64 },
}

#[derive(Subcommand)]
enum ResultsCommand {
    /// List results, newest first.
    List {
        #[arg(long)]
        job: Option<String>,
        /// Only results in this state.
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<StatusArg>,
        #[arg(long)]
        change: Option<u64>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show a result with its log.
    Show { run: u64 },
    /// Queue a dead-lettered run again.
    Replay { run: u64 },
    /// Wait until a run has ended and show its result; exits 1 unless it succeeded. On a local
    /// store this runs a dispatcher until then; with --url the server's dispatcher runs it.
    Wait { run: u64 },
}

/// Starts listening for Ctrl-C (SIGINT) and SIGTERM (what `docker stop` and systemd send) now,
/// and returns what completes when either comes.
#[cfg(unix)]
fn interrupt_listener() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupts = signal(SignalKind::interrupt())?;
    let mut terminations = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupts.recv() => {}
            _ = terminations.recv() => {}
        }
    })
}

/// Starts listening for Ctrl-C now, and returns what completes when it comes.
#[cfg(not(unix))]
fn interrupt_listener() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn content_type(text: &str) -> Result<ContentType, Failure> {
    Ok(ContentType::new(text)?)
}

fn content_types(texts: &[String]) -> Result<Vec<ContentType>, Failure> {
    texts.iter().map(|t| content_type(t)).collect()
}

fn object_ref(content: &str, id: &str) -> Result<ObjectRef, Failure> {
    Ok(ObjectRef::new(content_type(content)?, id)?)
}

/// A hook's event, as `--on` takes it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum EventArg {
    Create,
    Update,
    Delete,
}

impl From<EventArg> for Action {
    fn from(event: EventArg) -> Self {
        match event {
            EventArg::Create => Action::Create,
            EventArg::Update => Action::Update,
            EventArg::Delete => Action::Delete,
        }
    }
}

/// A button's look, as `--class` takes it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ClassArg {
    Default,
    Primary,
    Success,
    Info,
    Warning,
    Danger,
    Link,
}

impl From<ClassArg> for ButtonClass {
    fn from(class: ClassArg) -> Self {
        match class {
            ClassArg::Default => ButtonClass::Default,
            ClassArg::Primary => ButtonClass::Primary,
            ClassArg::Success => ButtonClass::Success,
            ClassArg::Info => ButtonClass::Info,
            ClassArg::Warning => ButtonClass::Warning,
            ClassArg::Danger => ButtonClass::Danger,
            ClassArg::Link => ButtonClass::Link,
        }
    }
}

/// A run's state, as `--status` takes it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum StatusArg {
    Pending,
    Started,
    Success,
    Failure,
    Retrying,
    #[value(alias = "dead_lettered")]
    DeadLettered,
}

impl From<StatusArg> for JobStatus {
    fn from(status: StatusArg) -> Self {
        match status {
            StatusArg::Pending => JobStatus::Pending,
            StatusArg::Started => JobStatus::Started,
            StatusArg::Success => JobStatus::Success,
            StatusArg::Failure => JobStatus::Failure,
            StatusArg::Retrying => JobStatus::Retrying,
            StatusArg::DeadLettered => JobStatus::DeadLettered,
        }
    }
}

fn actions(events: &[EventArg]) -> Vec<Action> {
    events.iter().copied().map(Action::from).collect()
}

fn table(rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn events(hook: &JobHook) -> String {
    hook.events().map(Action::as_str).collect::<Vec<_>>().join(",")
}

fn joined(types: &[ContentType]) -> String {
    types.iter().map(ContentType::as_str).collect::<Vec<_>>().join(",")
}

async fn execute(cli: Cli, mut config: config::Config) -> Outcome {
    #[cfg(feature = "demo")]
    if let Command::Demo { keep_db } = &cli.command {
        return demo::run(keep_db.as_deref()).await;
    }
    if let Some(db) = &cli.db {
        config.db = db.to_string_lossy().into_owned();
    }
    if let Command::Config(ConfigCommand::Show) = &cli.command {
        let mut shown = config.clone();
        #[cfg(feature = "postgres")]
        {
            shown.db = without_password(&shown.db);
        }
        if cli.json {
            println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
        } else {
            print!("{}", shown.to_toml());
        }
        return Ok(());
    }
    if let Some(url) = &cli.url {
        let remote = remote::Remote::new(url, cli.token.clone(), cli.json)?;
        return match cli.command {
            Command::Jobs(command) => jobs(&remote, command).await,
            Command::Hooks(command) => hooks(&remote, command).await,
            Command::Buttons(command) => buttons(&remote, command).await,
            Command::Users(command) => users(&remote, command).await,
            Command::Objects(command) => objects(&remote, command).await,
            Command::Changes(command) => changes(&remote, command).await,
            Command::Results(command) => results(&remote, command).await,
            Command::Prune { results_days, changes_days } => prune(&remote, &config, results_days, changes_days).await,
            Command::Export { path } => {
                let lines = remote.export().await?;
                write_export(path.as_deref(), lines.as_bytes())
            }
            Command::Backup { path } => {
                let report = remote.backup(&path).await?;
                remote.print(&report, |report| backed_up(&path, report));
                Ok(())
            }
            _ => Err(Failure::bad_input(
                "this command works on the store itself, not through a server: run it without --url where the \
                 store is",
            )),
        };
    }
    let db = config.db.clone();
    let migrate = matches!(cli.command, Command::Migrate);
    #[cfg(feature = "postgres")]
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let store = jobhooks_postgres::PgStore::connect(&db).await?;
        if migrate {
            let version = jobhooks_postgres::PgStore::schema_version();
            return migrated(cli.json, &without_password(&db), &format!("jobhooks-postgres/{version}"));
        }
        let session = Session::open(store, without_password(&db), cli.json, config).await?;
        return dispatch(session, cli.command, None).await;
    }
    let store = Store::open(&db)?;
    if migrate {
        return migrated(cli.json, &db, jobhooks_store::FORMAT_VERSION);
    }
    let session = Session::open(store, db, cli.json, config).await?;
    let backup: Arc<dyn Backup> = session.store.clone();
    dispatch(session, cli.command, Some(backup)).await
}

/// Writes an export to `path`, or to stdout without one. A file is written whole or not at all:
/// into a temporary file beside it, then renamed.
fn write_export(path: Option<&std::path::Path>, lines: &[u8]) -> Outcome {
    use std::io::Write;
    let Some(path) = path else {
        let mut stdout = std::io::stdout().lock();
        let _closed_or_written = stdout.write_all(lines).and_then(|()| stdout.flush());
        return Ok(());
    };
    let failed =
        |error: std::io::Error| Failure::failed(format!("cannot write the export to {}: {error}", path.display()));
    let partial = path.with_extension("partial");
    std::fs::write(&partial, lines).map_err(failed)?;
    std::fs::rename(&partial, path).map_err(failed)
}

/// Reads an export from `path` (`-`: stdin) and checks it.
fn read_export(path: &std::path::Path) -> Result<jobhooks_model::transfer::Snapshot, Failure> {
    use jobhooks_model::transfer::{Record, Snapshot};
    use std::io::BufRead;
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(path)
            .map_err(|error| Failure::bad_input(format!("cannot read {}: {error}", path.display())))?;
        Box::new(std::io::BufReader::new(file))
    };
    let records = reader.lines().filter(|line| !matches!(line, Ok(text) if text.trim().is_empty())).map(|line| {
        line.map_err(|error| error.to_string())
            .and_then(|text| serde_json::from_str::<Record>(&text).map_err(|error| error.to_string()))
    });
    Snapshot::from_records(records).map_err(|error| Failure::bad_input(format!("{}: {error}", path.display())))
}

/// What a backup says it did.
fn backed_up(path: &std::path::Path, report: &serde_json::Value) -> String {
    format!("backed up {} record(s), {} byte(s), into {}", report["records"], report["bytes"], path.display())
}

/// Says which schema version the store at `location` is at.
fn migrated(json: bool, location: &str, version: &str) -> Outcome {
    if json {
        println!("{}", serde_json::json!({"store": location, "version": version}));
    } else {
        println!("the store at {location} is at {version}");
    }
    Ok(())
}

/// `url` with its password, if any, masked.
#[cfg(feature = "postgres")]
fn without_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else { return url.to_owned() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@').and_then(|at| rest[..at].find(':').map(|colon| (colon, at))) {
        Some((colon, at)) => format!("{}{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
        None => url.to_owned(),
    }
}

/// Runs `command` on the open store; `backup` copies it, when the store is one jobhooks backs up.
async fn dispatch<S: Storage + Restore + 'static>(
    session: Session<S>,
    command: Command,
    backup: Option<Arc<dyn Backup>>,
) -> Outcome {
    match command {
        #[cfg(feature = "demo")]
        Command::Demo { .. } => Ok(()),
        Command::Jobs(command) => jobs(&session, command).await,
        Command::Hooks(command) => hooks(&session, command).await,
        Command::Buttons(command) => buttons(&session, command).await,
        Command::Users(command) => users(&session, command).await,
        Command::Objects(command) => objects(&session, command).await,
        Command::Changes(command) => changes(&session, command).await,
        Command::Results(command) => results(&session, command).await,
        Command::Migrate => Ok(()),
        Command::Serve { listen, no_dispatcher, workers, grace } => {
            let settings = &session.config;
            let listen = listen.unwrap_or(settings.server.listen);
            let dispatch = !no_dispatcher && settings.server.dispatcher;
            let workers = workers.unwrap_or(settings.dispatcher.workers);
            let grace = grace.unwrap_or(settings.dispatcher.grace_seconds);
            serve_api(&session, listen, dispatch.then_some(workers), grace, backup).await
        }
        Command::Run { workers, grace, uninstall_unlinked } => {
            let job_sync = if uninstall_unlinked { SyncMode::Full } else { SyncMode::Additive };
            let workers = workers.unwrap_or(session.config.dispatcher.workers);
            let grace = grace.unwrap_or(session.config.dispatcher.grace_seconds);
            run_dispatcher(&session, workers, grace, job_sync).await
        }
        Command::Config(ConfigCommand::Show) => Ok(()),
        Command::Export { path } => {
            let snapshot = jobhooks_model::transfer::export(&*session.store, OffsetDateTime::now_utc()).await?;
            write_export(path.as_deref(), snapshot.json_lines(OffsetDateTime::now_utc()).as_bytes())
        }
        Command::Import { path } => {
            let snapshot = read_export(&path)?;
            let report = session.store.restore(&snapshot).await.map_err(|error| match error {
                jobhooks_model::ports::RestoreError::Storage(failure) => {
                    Failure::failed(jobhooks_model::error_chain(&failure))
                }
                refused => Failure::bad_input(refused.to_string()),
            })?;
            session.print(&report, |report| {
                format!(
                    "imported {} change(s) and {} job result(s); {} run(s) queued again",
                    report.changes, report.results, report.queued
                )
            });
            Ok(())
        }
        Command::Backup { path } => {
            let backup = backup.ok_or_else(|| {
                Failure::bad_input(
                    "jobhooks backs up only its sled store: back PostgreSQL up with its own tools (pg_dump)",
                )
            })?;
            let report = backup.backup_to(&path).await.map_err(|error| match error {
                BackupError::Target { .. } => Failure::bad_input(error.to_string()),
                other => Failure::failed(jobhooks_model::error_chain(&other)),
            })?;
            let shown = serde_json::json!({
                "path": path.display().to_string(), "records": report.records, "bytes": report.bytes,
            });
            session.print(&shown, |shown| backed_up(&path, shown));
            Ok(())
        }
        Command::Prune { results_days, changes_days } => {
            prune(&session, &session.config, results_days, changes_days).await
        }
    }
}

/// Prunes now, keeping what the flags say, else what the config's retention says.
async fn prune(
    s: &impl Backend,
    config: &config::Config,
    results_days: Option<u32>,
    changes_days: Option<u32>,
) -> Outcome {
    let results_days = results_days.or(config.retention.results_days);
    let changes_days = changes_days.or(config.retention.changes_days);
    if results_days.is_none() && changes_days.is_none() {
        return Err(Failure::bad_input(
            "no retention is set: give --results-days or --changes-days, or set them in the config",
        ));
    }
    let report = s.prune(results_days, changes_days).await?;
    s.print(&report, |report| format!("pruned {} result(s) and {} change(s)", report.results, report.changes));
    Ok(())
}

async fn jobs(s: &impl Backend, command: JobsCommand) -> Outcome {
    match command {
        JobsCommand::List { all } => {
            let every = s.list_jobs().await?;
            let hidden = every.iter().filter(|job| job.hidden).count();
            let jobs: Vec<_> = every.into_iter().filter(|j| all || !j.hidden).collect();
            if !all && hidden > 0 && !s.json() {
                eprintln!(
                    "({hidden} hidden job(s) not shown: receivers are hidden by default; `jobs list --all` shows them)"
                );
            }
            s.print(&jobs, |jobs| {
                let header = ["CLASS PATH", "NAME", "KIND", "INSTALLED", "ENABLED"].map(String::from).to_vec();
                table(std::iter::once(header).chain(jobs.iter().map(|j| {
                    vec![
                        j.class_path.clone(),
                        j.name.clone(),
                        j.kind.to_string(),
                        j.installed.to_string(),
                        j.enabled.to_string(),
                    ]
                })))
            });
        }
        JobsCommand::Enable { class_path } => {
            let job = s.set_job_enabled(&class_path, true).await?;
            s.print(&job, |j| format!("enabled {}", j.class_path));
        }
        JobsCommand::Disable { class_path } => {
            let job = s.set_job_enabled(&class_path, false).await?;
            s.print(&job, |j| format!("disabled {}", j.class_path));
        }
        JobsCommand::Restore { class_paths } => {
            let report = s.restore_jobs(&class_paths).await?;
            s.print(&report, restore_text);
        }
    }
    Ok(())
}

fn restore_text(report: &jobhooks_model::JobRestoreReport) -> String {
    let mut lines = Vec::new();
    if report.restored.is_empty() {
        lines.push("nothing to restore".to_owned());
    }
    for job in &report.restored {
        lines.push(format!("restored {job}"));
    }
    if !report.enabled_hooks.is_empty() {
        lines.push(format!("enabled hooks: {}", report.enabled_hooks.join(", ")));
    }
    if !report.enabled_buttons.is_empty() {
        lines.push(format!("enabled buttons: {}", report.enabled_buttons.join(", ")));
    }
    for job in &report.not_installed {
        lines.push(format!(
            "not restored: {job} is still not installed (link it, start the program that registers it, then restore again)"
        ));
    }
    lines.join("\n")
}

fn hook_text(h: &JobHook) -> String {
    format!(
        "{}  [{}]  on {}  -> {}  ({})",
        h.name,
        joined(&h.content_types),
        events(h),
        h.job,
        if h.enabled { "enabled" } else { "disabled" }
    )
}

async fn hooks(s: &impl Backend, command: HooksCommand) -> Outcome {
    match command {
        HooksCommand::List => {
            let hooks = s.list_hooks().await?;
            s.print(&hooks, |hooks| hooks.iter().map(hook_text).collect::<Vec<_>>().join("\n"));
        }
        HooksCommand::Show { name } => {
            let hook = s.get_hook(&name).await?;
            s.print(&hook, hook_text);
        }
        HooksCommand::Add { name, fields } => {
            let job = fields.job.ok_or_else(|| Failure::bad_input("--job is required"))?;
            let mut hook = JobHook::new(name, content_types(&fields.content_types)?, job).on(actions(&fields.events));
            hook.enabled = fields.enabled.unwrap_or(true);
            let hook = s.create_hook(hook).await?;
            s.print(&hook, |h| format!("added {}", hook_text(h)));
        }
        HooksCommand::Update { name, rename, fields } => {
            let events = (!fields.events.is_empty()).then(|| actions(&fields.events));
            let has = |a: Action| events.as_ref().map(|e| e.contains(&a));
            let patch = JobHookPatch {
                name: rename,
                content_types: (!fields.content_types.is_empty())
                    .then(|| content_types(&fields.content_types))
                    .transpose()?,
                job: fields.job,
                enabled: fields.enabled,
                type_create: has(Action::Create),
                type_update: has(Action::Update),
                type_delete: has(Action::Delete),
            };
            let hook = s.update_hook(&name, patch).await?;
            s.print(&hook, |h| format!("updated {}", hook_text(h)));
        }
        HooksCommand::Delete { name } => {
            let hook = s.delete_hook(&name).await?;
            s.print(&hook, |h| format!("deleted {}", h.name));
        }
    }
    Ok(())
}

fn button_text(b: &JobButton) -> String {
    format!(
        "{}  [{}]  \"{}\"  -> {}  weight {}{}  ({})",
        b.name,
        joined(&b.content_types),
        b.text,
        b.job,
        b.weight,
        b.group_name.as_deref().map(|g| format!(" group {g}")).unwrap_or_default(),
        if b.enabled { "enabled" } else { "disabled" }
    )
}

async fn buttons(s: &impl Backend, command: ButtonsCommand) -> Outcome {
    match command {
        ButtonsCommand::List => {
            let buttons = s.list_buttons().await?;
            s.print(&buttons, |buttons| buttons.iter().map(button_text).collect::<Vec<_>>().join("\n"));
        }
        ButtonsCommand::Add { name, fields } => {
            let job = fields.job.ok_or_else(|| Failure::bad_input("--job is required"))?;
            let text = fields.text.ok_or_else(|| Failure::bad_input("--text is required"))?;
            let mut button = JobButton::new(name, content_types(&fields.content_types)?, text, job);
            button.weight = fields.weight.unwrap_or(button.weight);
            button.group_name = fields.group;
            button.button_class = fields.button_class.map(ButtonClass::from).unwrap_or_default();
            button.confirmation = fields.confirmation.unwrap_or(true);
            button.enabled = fields.enabled.unwrap_or(true);
            let button = s.create_button(button).await?;
            s.print(&button, |b| format!("added {}", button_text(b)));
        }
        ButtonsCommand::Update { name, rename, fields } => {
            let patch = JobButtonPatch {
                name: rename,
                content_types: (!fields.content_types.is_empty())
                    .then(|| content_types(&fields.content_types))
                    .transpose()?,
                text: fields.text,
                job: fields.job,
                weight: fields.weight,
                group_name: fields.group.map(|g| (!g.is_empty()).then_some(g)),
                button_class: fields.button_class.map(ButtonClass::from),
                confirmation: fields.confirmation,
                enabled: fields.enabled,
            };
            let button = s.update_button(&name, patch).await?;
            s.print(&button, |b| format!("updated {}", button_text(b)));
        }
        ButtonsCommand::Delete { name } => {
            let button = s.delete_button(&name).await?;
            s.print(&button, |b| format!("deleted {}", b.name));
        }
        ButtonsCommand::For { content_type, id, user } => {
            let reference = object_ref(&content_type, &id)?;
            let shown = s.buttons_for(&reference, user.as_deref()).await?;
            s.print(&shown, |shown| {
                shown
                    .iter()
                    .map(|b| {
                        let state = match (&b.error, b.disabled) {
                            (Some(error), _) => format!("disabled: {error}"),
                            (None, true) => "disabled".to_owned(),
                            (None, false) => "enabled".to_owned(),
                        };
                        format!("{}  \"{}\"  ({state})", b.name, b.text)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ButtonsCommand::Press { button, content_type, id, user, wait } => {
            let reference = object_ref(&content_type, &id)?;
            let run = s.press(&button, &reference, user.as_deref()).await?;
            if wait {
                return shown_when_ended(s, run).await;
            }
            s.print(&serde_json::json!({"run": run}), |_| format!("queued run {run}"));
        }
    }
    Ok(())
}

async fn tokens(s: &impl Backend, command: TokenCommand) -> Outcome {
    match command {
        TokenCommand::Add { username, expires_in_days, description } => {
            let now = OffsetDateTime::now_utc();
            let expires = expires_in_days.map(|days| now + Duration::from_secs(u64::from(days) * 86_400));
            let key = s.issue_token(&username, expires, description).await?;
            s.print(&serde_json::json!({ "key": key }), |_| key.clone());
        }
        TokenCommand::List { username } => {
            let tokens = s.list_tokens(username.as_deref()).await?;
            let shown: Vec<serde_json::Value> = tokens
                .iter()
                .map(|token| {
                    serde_json::json!({
                        "id": token.id, "user": token.user, "created": token.created.format(&Rfc3339).unwrap_or_default(),
                        "expires": token.expires.and_then(|at| at.format(&Rfc3339).ok()), "description": token.description,
                    })
                })
                .collect();
            s.print(&shown, |_| {
                tokens
                    .iter()
                    .map(|token| {
                        let expires = token.expires.and_then(|at| at.format(&Rfc3339).ok());
                        format!(
                            "{}  {}  created {}  expires {}  {}",
                            token.id,
                            token.user,
                            token.created.format(&Rfc3339).unwrap_or_default(),
                            expires.as_deref().unwrap_or("never"),
                            token.description
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        TokenCommand::Revoke { id } => {
            let token = s.revoke_token(&id).await?;
            s.print(&serde_json::json!({ "revoked": token.id, "user": token.user }), |_| {
                format!("revoked token {} of {}", token.id, token.user)
            });
        }
    }
    Ok(())
}

async fn users(s: &impl Backend, command: UsersCommand) -> Outcome {
    match command {
        UsersCommand::Add { username, superuser, perms, run_jobs } => {
            let mut user = if superuser { User::superuser(username)? } else { User::new(username)? };
            user.permissions.extend(perms.into_iter().map(Permission::new));
            if !run_jobs.is_empty() {
                user.permissions.push(Permission::run_jobs(run_jobs));
            }
            let user = s.put_user(user).await?;
            s.print(&user, |u| format!("added user {}", u.username));
        }
        UsersCommand::Token(command) => tokens(s, command).await?,
        UsersCommand::List => {
            let users = s.list_users().await?;
            s.print(&users, |users| {
                users
                    .iter()
                    .map(|u| {
                        let perms: Vec<String> = u
                            .permissions
                            .iter()
                            .map(|p| match &p.jobs {
                                Some(jobs) => format!("{}({})", p.name, jobs.join(",")),
                                None => p.name.clone(),
                            })
                            .collect();
                        format!(
                            "{}{}  {}",
                            u.username,
                            if u.is_superuser { " (superuser)" } else { "" },
                            perms.join(" ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}

fn read_data(data: Option<String>, file: Option<PathBuf>) -> Result<Value, Failure> {
    let text = match (data, file) {
        (Some(_), Some(_)) => return Err(Failure::bad_input("give the data as an argument or with --file, not both")),
        (Some(dash), None) if dash == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::failed(format!("cannot read stdin: {e}")))?;
            text
        }
        (Some(text), None) => text,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", path.display())))?,
        (None, None) => {
            return Err(Failure::bad_input("give the object's data as JSON: an argument, --file PATH, or - for stdin"));
        }
    };
    serde_json::from_str(&text).map_err(|e| Failure::bad_input(format!("the object's data is not valid JSON: {e}")))
}

async fn objects(s: &impl Backend, command: ObjectsCommand) -> Outcome {
    match command {
        ObjectsCommand::Put { content_type, id, data, file, repr, user } => {
            let reference = object_ref(&content_type, &id)?;
            let data = read_data(data, file)?;
            let object = Object::new(reference.clone(), repr.unwrap_or_else(|| id.clone()), data)?;
            let receipt = s.save_object(object, user.as_deref()).await?;
            s.print(&receipt, |r| {
                format!(
                    "committed change(s) {:?}, queued hook run(s) {:?}",
                    r.changes.iter().map(|c| c.0).collect::<Vec<_>>(),
                    r.runs.iter().map(|r| r.0).collect::<Vec<_>>()
                )
            });
        }
        ObjectsCommand::Show { content_type, id } => {
            let reference = object_ref(&content_type, &id)?;
            let object = s.get_object(&reference).await?;
            s.print(&object, |o| {
                format!(
                    "{} {} \"{}\"\n{}",
                    o.content_type(),
                    o.id(),
                    o.repr(),
                    serde_json::to_string_pretty(&o.data()).unwrap_or_default()
                )
            });
        }
        ObjectsCommand::Delete { content_type, id, user } => {
            let reference = object_ref(&content_type, &id)?;
            let receipt = s.delete_object(&reference, user.as_deref()).await?;
            s.print(&receipt, |r| {
                format!("deleted {reference}; queued hook run(s) {:?}", r.runs.iter().map(|r| r.0).collect::<Vec<_>>())
            });
        }
    }
    Ok(())
}

async fn changes(s: &impl Backend, command: ChangesCommand) -> Outcome {
    match command {
        ChangesCommand::List { object, limit } => {
            let object = match object.as_deref() {
                Some([content_type, id]) => Some(object_ref(content_type, id)?),
                _ => None,
            };
            let changes = s.changes(object.as_ref(), limit).await?;
            s.print(&changes, |changes| {
                changes
                    .iter()
                    .map(|c| format!("{:>5}  {}  [{}]", c.id, c, c.change_context))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ChangesCommand::Show { id } => {
            let change = s.get_change(ChangeId(id)).await?;
            let snapshots = change.get_snapshots();
            let shown = serde_json::json!({"change": change, "snapshots": snapshots});
            s.print(&shown, |_| {
                format!(
                    "{}  {}\ncontext: {} {}\nsnapshots: {}",
                    change.id,
                    change,
                    change.change_context,
                    change.change_context_detail,
                    serde_json::to_string_pretty(&snapshots).unwrap_or_default()
                )
            });
        }
    }
    Ok(())
}

fn result_text(r: &jobhooks_model::JobResult) -> String {
    let mut text = format!(
        "run {}  {}  {}  as {}  attempts {}",
        r.id,
        r.status,
        r.job,
        r.user.as_deref().unwrap_or("-"),
        r.attempts
    );
    for entry in &r.logs {
        text.push_str(&format!("\n  {:<8} {:<14} {}", entry.level, entry.grouping, entry.message));
    }
    text
}

/// Waits until `run` has ended and shows its result; a failure unless it succeeded.
async fn shown_when_ended(s: &impl Backend, run: RunId) -> Outcome {
    let result = s.wait_for(run).await?;
    s.print(&result, result_text);
    if result.status != JobStatus::Success {
        return Err(Failure::failed(format!("run {run} ended {}", result.status)));
    }
    Ok(())
}

async fn show_result(s: &impl Backend, run: RunId) -> Outcome {
    let result = s.get_result(run).await?;
    s.print(&result, result_text);
    Ok(())
}

async fn results(s: &impl Backend, command: ResultsCommand) -> Outcome {
    match command {
        ResultsCommand::List { job, status, change, limit } => {
            let filter = ResultFilter {
                job,
                status: status.map(JobStatus::from),
                change: change.map(ChangeId),
                limit: Some(limit),
            };
            let results = s.list_results(filter).await?;
            s.print(&results, |results| {
                results
                    .iter()
                    .map(|r| {
                        format!(
                            "{:>5}  {:<13} {}  as {}",
                            r.id,
                            r.status.to_string(),
                            r.job,
                            r.user.as_deref().unwrap_or("-")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ResultsCommand::Show { run } => show_result(s, RunId(run)).await?,
        ResultsCommand::Wait { run } => shown_when_ended(s, RunId(run)).await?,
        ResultsCommand::Replay { run } => {
            s.replay(RunId(run)).await?;
            s.print(&serde_json::json!({"run": run}), |_| format!("queued run {run} again"));
        }
    }
    Ok(())
}

/// Serves the API on `listen`, with a dispatcher of `workers` unless `None`, until SIGTERM or
/// Ctrl-C: then the server stops taking requests and finishes those in flight, and the dispatcher
/// has `grace` seconds for its runs.
async fn serve_api<S: Storage + 'static>(
    s: &Session<S>,
    listen: std::net::SocketAddr,
    workers: Option<usize>,
    grace: u64,
    backup: Option<Arc<dyn Backup>>,
) -> Outcome {
    let dispatcher = match workers {
        Some(workers) => Some(s.dispatcher(workers, SyncMode::Additive).await?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::failed(format!("cannot listen on {listen}: {e}")))?;
    let address = listener.local_addr().map_err(|e| Failure::failed(format!("cannot listen on {listen}: {e}")))?;
    let stopped = interrupt_listener().map_err(|e| Failure::failed(format!("cannot wait for signals: {e}")))?;
    eprintln!("jobhooks: serving http://{address}/api/ from {}; SIGTERM or Ctrl-C to stop", s.location);
    let mut state = jobhooks_server::AppState::new(s.store.clone());
    if let Some(dispatcher) = &dispatcher {
        state = state.with_dispatcher(dispatcher.monitor());
    }
    if let Some(backup) = backup {
        state = state.with_backup(backup);
    }
    let router = jobhooks_server::router(state);
    jobhooks_server::serve(listener, router, stopped)
        .await
        .map_err(|e| Failure::failed(format!("the server failed: {e}")))?;
    if let Some(dispatcher) = dispatcher {
        eprintln!("jobhooks: stopping; runs in flight have {grace}s to finish");
        let report = dispatcher.shutdown(Duration::from_secs(grace)).await;
        eprintln!("jobhooks: stopped ({} run(s) given back to the queue)", report.abandoned);
    } else {
        eprintln!("jobhooks: stopped");
    }
    Ok(())
}

async fn run_dispatcher<S: Storage + 'static>(
    s: &Session<S>,
    workers: usize,
    grace: u64,
    job_sync: SyncMode,
) -> Outcome {
    let dispatcher = s.dispatcher(workers, job_sync).await?;
    // Listen before saying so: a Ctrl-C right after the message must stop the dispatcher
    // gracefully, not kill the process.
    let interrupted = interrupt_listener().map_err(|e| Failure::failed(format!("cannot wait for Ctrl-C: {e}")))?;
    eprintln!("jobhooks: dispatching from {} with {workers} workers; SIGTERM or Ctrl-C to stop", s.location);
    interrupted.await;
    eprintln!("jobhooks: stopping; runs in flight have {grace}s to finish");
    let report = dispatcher.shutdown(Duration::from_secs(grace)).await;
    eprintln!("jobhooks: stopped ({} run(s) given back to the queue)", report.abandoned);
    Ok(())
}
