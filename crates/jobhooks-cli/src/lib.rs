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
mod commands;
mod config;
#[cfg(feature = "demo")]
mod demo;
mod remote;
mod say;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use backend::{Backend, Session};
use clap::{Parser, Subcommand};
use commands::buttons::{ButtonsCommand, buttons};
use commands::changes::{ChangesCommand, changes};
use commands::hooks::{HooksCommand, hooks};
use commands::jobs::{JobsCommand, jobs};
use commands::nautobot::{NautobotImport, import_from_nautobot};
use commands::objects::{ObjectsCommand, objects};
use commands::results::{ResultsCommand, results};
use commands::transfer::{ExportOut, export_from, import_into, read_export};
use commands::users::{UsersCommand, users};
use jobhooks_dispatch::PressError;
use jobhooks_model::ports::{Backup, BackupError, Restore, Storage, SyncMode};
use jobhooks_model::{ContentType, ObjectRef, StoreError};
use jobhooks_store::Store;
use serve::{run_dispatcher, serve_api};

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
    // The demo prints its runs' log lines in its own report, where they belong: logged as well,
    // each would appear twice, and its expected failures would read as the demo failing. So the
    // runs' lines (`jobhooks_model::context`) are never logged by the demo, whatever `RUST_LOG`
    // says, and nothing else is unless `RUST_LOG` asks.
    #[cfg(feature = "demo")]
    let (filter, silenced): (&str, &[&str]) = if matches!(cli.command, Command::Demo { .. }) {
        ("off", &["jobhooks_model::context=off"])
    } else {
        (config.log.filter.as_str(), &[])
    };
    #[cfg(not(feature = "demo"))]
    let (filter, silenced): (&str, &[&str]) = (config.log.filter.as_str(), &[]);
    init_logging(log_format, filter, silenced);
    say::use_json(log_format == LogFormat::Json);
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
                say::failure(&failure.message, failure.status);
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

    /// What went wrong, without the leading `error: `.
    fn reason(&self) -> String {
        self.message.strip_prefix("error: ").unwrap_or(&self.message).to_owned()
    }

    /// The same failure without the `field: ` a validation error of the API puts first.
    fn without_field(self, field: &str) -> Self {
        let prefix = format!("error: {field}: ");
        match self.message.strip_prefix(&prefix) {
            Some(message) => Self { message: format!("error: {message}"), status: self.status },
            None => self,
        }
    }

    /// The same failure, said after what was being done: `error: {context}: {message}`.
    fn context(self, context: &str) -> Self {
        let message = self.message.strip_prefix("error: ").unwrap_or(&self.message);
        Self { message: format!("error: {context}: {message}"), status: self.status }
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
            OpenError::Locked { path, holder: Some(holder) } if holder.starts_with("jobhooks serve at ") => {
                let url = holder["jobhooks serve at ".len()..].split(' ').next().unwrap_or_default().to_owned();
                Self::failed(format!(
                    "the store at {} is held by {holder}: do this through the server instead, with \
                     `--url {url} --token KEY` in place of --db (a key from `jobhooks users token add`)",
                    path.display()
                ))
            }
            OpenError::Locked { holder: Some(_), .. } => {
                Self::failed(format!("{message}; stop it, or use another --db path"))
            }
            OpenError::Locked { .. } => Self::failed(format!(
                "{message} (is `jobhooks run` or `jobhooks serve` running?); stop it, or use another --db path"
            )),
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
    #[arg(long, global = true, env = "JOBHOOKS_DB", help_heading = "Global options")]
    db: Option<PathBuf>,
    /// A TOML config file (`jobhooks config show` prints every key); `JOBHOOKS_*` variables and
    /// flags override it.
    #[arg(long, global = true, env = "JOBHOOKS_CONFIG", help_heading = "Global options")]
    config: Option<PathBuf>,
    /// Talk to a running `jobhooks serve` at this address (`http://host:8080`) instead of opening
    /// the store: every command but `run`, `serve`, `migrate`, `import` and `demo` works this way
    /// (`backup` writes its copy on the server's machine).
    #[arg(long, global = true, env = "JOBHOOKS_URL", help_heading = "Global options")]
    url: Option<String>,
    /// The API token for --url (`jobhooks users token add`); its user acts.
    #[arg(long, global = true, env = "JOBHOOKS_TOKEN", hide_env_values = true, help_heading = "Global options")]
    token: Option<String>,
    /// Print listings and records as JSON.
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,
    /// How log lines look on stderr (`RUST_LOG` chooses which; warnings by default).
    #[arg(long, global = true, value_enum, env = "JOBHOOKS_LOG_FORMAT", help_heading = "Global options")]
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
/// refused runs are seen), in `format`, with the `silenced` directives added whatever it says. A
/// program that set its own subscriber keeps it.
fn init_logging(format: LogFormat, default_filter: &str, silenced: &[&str]) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    for directive in silenced {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
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
    Backup {
        /// A new or empty directory for the copy (with --url, an absolute path on the server's machine).
        path: PathBuf,
    },
    /// Write every record of the store (jobs, users, tokens, hooks, buttons, objects, changes and
    /// results) as JSON lines to PATH, or stdout without it. With --url the server exports the
    /// store it holds (superusers).
    Export {
        /// The file to write (written whole or not at all); stdout without it.
        path: Option<PathBuf>,
    },
    /// Read an export (from `jobhooks export`, of any store and version that writes format 1) from
    /// PATH, or `-` for stdin, into this store, which must be new: ids, times, states and logs are
    /// kept; runs that had not ended are queued again. `import nautobot` reads Nautobot's job hooks
    /// and job buttons instead, into any store.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Import {
        /// The export to read, or `-` for stdin (a file named `nautobot`: `./nautobot`).
        #[arg(required = true)]
        path: Option<PathBuf>,
        /// Another system's records.
        #[command(subcommand)]
        from: Option<ImportFrom>,
    },
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
        /// Address to listen on, `host:port` (a name such as `localhost:8080` is resolved; default:
        /// `server.listen`, 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Serve the API only, without a dispatcher (for API-only processes on PostgreSQL).
        #[arg(long)]
        no_dispatcher: bool,
        /// Runs at once, at least 1 (default: `dispatcher.workers`).
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        workers: Option<usize>,
        /// Seconds runs in flight may take to finish after SIGTERM or Ctrl-C (default:
        /// `dispatcher.grace_seconds`).
        #[arg(long)]
        grace: Option<u64>,
        /// Seed a store like `jobhooks demo` (users alice, bob and eve with the passwords it
        /// prints, objects, the hook, the Simple and Complex buttons) and serve it: the store
        /// `--db` names when it is new or empty (one that holds data is refused), else a
        /// temporary one.
        #[cfg(feature = "demo")]
        #[arg(long)]
        demo: bool,
    },
    /// The configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the dispatcher until SIGTERM or Ctrl-C, then shut down gracefully.
    Run {
        /// Runs at once, at least 1 (default: `dispatcher.workers`).
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
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

/// What `import` reads besides a jobhooks export.
#[derive(Debug, Subcommand)]
pub enum ImportFrom {
    /// Job hooks and job buttons exported from Nautobot's REST API, each Nautobot job replaced by
    /// the Rust receiver `--map` names; reports each record it could not map or create (and then
    /// exits 2). Works on a store here or through a server (--url).
    Nautobot(NautobotImport),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults, the file, `JOBHOOKS_*`), as TOML or `--json`.
    Show,
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

/// `rows` under `header`, in aligned columns; nothing at all when there is no row.
fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    if rows.is_empty() {
        return String::new();
    }
    let header: Vec<String> = header.iter().map(|&title| title.to_owned()).collect();
    let rows: Vec<Vec<String>> = std::iter::once(header).chain(rows).collect();
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

fn joined(types: &[ContentType]) -> String {
    types.iter().map(ContentType::as_str).collect::<Vec<_>>().join(",")
}

impl Cli {
    /// `Some(--listen)` for `serve` (`Some(None)` without the flag), `None` for other commands.
    fn command_listen(&self) -> Option<Option<String>> {
        match &self.command {
            Command::Serve { listen, .. } => Some(listen.clone()),
            _ => None,
        }
    }
}

impl Command {
    /// Whether the command is `serve --demo`.
    fn is_demo_serve(&self) -> bool {
        #[cfg(feature = "demo")]
        if let Command::Serve { demo, .. } = self {
            return *demo;
        }
        false
    }

    /// Whether the command only reads the store: run on a path where there is no store, it says
    /// so rather than creating an empty one.
    fn only_reads(&self) -> bool {
        use commands::users::TokenCommand;
        matches!(
            self,
            Command::Jobs(JobsCommand::List { .. })
                | Command::Hooks(HooksCommand::List | HooksCommand::Show { .. })
                | Command::Buttons(ButtonsCommand::List | ButtonsCommand::For { .. })
                | Command::Users(UsersCommand::List | UsersCommand::Token(TokenCommand::List { .. }))
                | Command::Objects(ObjectsCommand::Show { .. })
                | Command::Changes(_)
                | Command::Results(
                    commands::results::ResultsCommand::List { .. }
                        | commands::results::ResultsCommand::Show { .. }
                        | commands::results::ResultsCommand::Wait { .. }
                )
                | Command::Export { .. }
                | Command::Backup { .. }
                | Command::Prune { .. }
        )
    }
}

async fn execute(cli: Cli, mut config: config::Config) -> Outcome {
    #[cfg(feature = "demo")]
    if let Command::Demo { keep_db } = &cli.command {
        return demo::run(keep_db.as_deref()).await;
    }
    if cli.url.is_some() && cli.db.is_some() {
        return Err(Failure::bad_input(
            "give --db (a store here) or --url (a server, which acts on the store it holds), not both \
             (JOBHOOKS_DB and JOBHOOKS_URL count as given)",
        ));
    }
    if let Some(db) = &cli.db {
        config.db = db.to_string_lossy().into_owned();
    }
    // `serve --demo` without a store named serves a temporary one, removed when the server stops.
    #[cfg(feature = "demo")]
    let _demo_store = if cli.command.is_demo_serve() && cli.db.is_none() {
        let dir = tempfile::tempdir()
            .map_err(|e| Failure::failed(format!("cannot create a temporary directory for the demo store: {e}")))?;
        config.db = dir.path().join("store").to_string_lossy().into_owned();
        Some(dir)
    } else {
        None
    };
    if let Command::Config(ConfigCommand::Show) = &cli.command {
        let mut shown = config.masked();
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
            Command::Import { from: Some(ImportFrom::Nautobot(import)), .. } => {
                import_from_nautobot(&remote, import).await
            }
            Command::Export { path } => {
                let mut out = ExportOut::create(path.as_deref())?;
                remote.export(&mut out).await?;
                out.finish()
            }
            Command::Backup { path } => {
                if path.is_relative() {
                    return Err(Failure::bad_input(format!(
                        "with --url the server writes the backup on its own machine: give an absolute path, not `{}`",
                        path.display()
                    )));
                }
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
        let listener = serve::listener_for(&cli.command_listen(), &config).await?;
        let store = jobhooks_postgres::PgStore::connect(&db).await?;
        if migrate {
            let version = jobhooks_postgres::PgStore::schema_version();
            return migrated(cli.json, &without_password(&db), &format!("jobhooks-postgres/{version}"));
        }
        refuse_demo_over_data(&cli.command, &store, &without_password(&db)).await?;
        let session = Session::open(store, without_password(&db), cli.json, config).await?;
        return dispatch(session, cli.command, None, listener).await;
    }
    if let Command::Serve { no_dispatcher, .. } = &cli.command
        && (*no_dispatcher || !config.server.dispatcher)
    {
        return Err(Failure::bad_input(
            "serving without a dispatcher needs a store that several processes share: the embedded (sled) store \
             admits one process, so no `jobhooks run` could run what the API queues. Serve with the dispatcher \
             (drop --no-dispatcher and `server.dispatcher = false`), or use a PostgreSQL store",
        ));
    }
    let path = std::path::Path::new(&db);
    if cli.command.only_reads() && !path.exists() {
        return Err(Failure::bad_input(format!(
            "there is no store at {db}: give --db the path of an existing store (a command that writes, such as \
             `jobhooks users add`, creates one there)"
        )));
    }
    // Read before the store is created, so that an import that cannot be read leaves nothing.
    let import = match &cli.command {
        Command::Import { path: Some(path), from: None } => Some(read_export(path)?),
        _ => None,
    };
    // Bound before the store is opened, so that a busy port leaves nothing behind.
    let listener = serve::listener_for(&cli.command_listen(), &config).await?;
    let existed = path.exists();
    let store = Store::open(&db)?;
    if migrate {
        return migrated(cli.json, &db, jobhooks_store::FORMAT_VERSION);
    }
    let holder = match (&cli.command, &listener) {
        (_, Some(listener)) => listener.local_addr().ok().map(|address| format!("jobhooks serve at http://{address}/")),
        (Command::Run { .. }, None) => Some("jobhooks run".to_owned()),
        _ => None,
    };
    refuse_demo_over_data(&cli.command, &store, &db).await?;
    if let Some(holder) = holder {
        let _said_or_not = store.announce_holder(&format!("{holder} (pid {})", std::process::id()));
    }
    let session = Session::open(store, db.clone(), cli.json, config).await?;
    let backup: Arc<dyn Backup> = session.store.clone();
    let importing = import.is_some();
    let outcome = match import {
        Some(snapshot) => import_into(session, &snapshot).await,
        None => dispatch(session, cli.command, Some(backup), listener).await,
    };
    if outcome.is_err() && importing && !existed {
        // A failed import into a new store leaves no store behind.
        let _removed_or_gone = std::fs::remove_dir_all(path);
    }
    outcome
}

/// `serve --demo` seeds only a new or empty store: one that holds data is refused before anything
/// is written to it.
async fn refuse_demo_over_data<S: Storage>(command: &Command, store: &S, location: &str) -> Outcome {
    #[cfg(feature = "demo")]
    if command.is_demo_serve() && jobhooks_examples::demo::holds_data(store).await? {
        return Err(Failure::bad_input(format!(
            "{location} holds data: `serve --demo` seeds only a new or empty store. Give --db a new path, or leave \
             --db out to serve the demo from a temporary store"
        )));
    }
    #[cfg(not(feature = "demo"))]
    let _ = (command, store, location);
    Ok(())
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
    listener: Option<tokio::net::TcpListener>,
) -> Outcome {
    let demo = command.is_demo_serve();
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
        Command::Serve { no_dispatcher, workers, grace, .. } => {
            let settings = &session.config;
            let listener = listener.ok_or_else(|| Failure::failed("serve has no listener"))?;
            let dispatch = !no_dispatcher && settings.server.dispatcher;
            let workers = workers.unwrap_or(settings.dispatcher.workers);
            let grace = grace.unwrap_or(settings.dispatcher.grace_seconds);
            serve_api(&session, listener, dispatch.then_some(workers), grace, backup, demo).await
        }
        Command::Run { workers, grace, uninstall_unlinked } => {
            let job_sync = if uninstall_unlinked { SyncMode::Full } else { SyncMode::Additive };
            let workers = workers.unwrap_or(session.config.dispatcher.workers);
            let grace = grace.unwrap_or(session.config.dispatcher.grace_seconds);
            run_dispatcher(&session, workers, grace, job_sync).await
        }
        Command::Config(ConfigCommand::Show) => Ok(()),
        Command::Export { path } => export_from(&*session.store, path.as_deref()).await,
        Command::Import { from: Some(ImportFrom::Nautobot(import)), .. } => {
            import_from_nautobot(&session, import).await
        }
        Command::Import { path, .. } => {
            let path = path.ok_or_else(|| Failure::bad_input("give the export to read, or `-` for stdin"))?;
            import_into(session, &read_export(&path)?).await
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every argument of every command, positional ones included, says what it is.
    #[test]
    fn every_argument_is_described() {
        fn walk(command: &clap::Command, path: &str, undescribed: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let builtin = ["help", "version"].contains(&arg.get_id().as_str());
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    undescribed.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), undescribed);
            }
        }
        let mut undescribed = Vec::new();
        walk(&Cli::command(), "jobhooks", &mut undescribed);
        assert!(undescribed.is_empty(), "arguments without help: {undescribed:#?}");
    }
}
