//! `jobhooks users`: users, their permissions and their API tokens.

use crate::backend::Backend;
use crate::{Failure, Outcome};
use clap::Subcommand;
use jobhooks_model::{OffsetDateTime, Permission, User};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;

#[derive(Subcommand)]
pub(crate) enum UsersCommand {
    /// Add a user (refused if one of that name exists: `users update` and `users perm` change one).
    Add {
        /// The user's name.
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
        /// Read the user's web password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set the password USERNAME logs in to the web pages with: typed twice without echo on a
    /// terminal, else the first line of stdin. Every session of the user ends.
    Passwd {
        /// The user's name.
        username: String,
        /// Remove the password instead: the user can no longer log in to the web pages.
        #[arg(long)]
        remove: bool,
    },
    /// Web login sessions: list them, end one.
    #[command(subcommand)]
    Sessions(SessionCommand),
    /// Change whether a user is a superuser.
    Update {
        /// The user's name.
        username: String,
        /// Every permission, or none beyond those given.
        #[arg(long)]
        superuser: bool,
        /// No longer a superuser.
        #[arg(long, conflicts_with = "superuser")]
        no_superuser: bool,
    },
    /// Add or remove permissions of a user.
    #[command(subcommand)]
    Perm(PermCommand),
    /// List users.
    List,
    /// API tokens: the server's `Authorization: Token <key>`.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
pub(crate) enum PermCommand {
    /// Give USERNAME these permissions (`app_label.codename`), and the right to run these jobs.
    Add {
        /// The user's name.
        username: String,
        /// Permissions, `app_label.codename` (e.g. `dcim.view_device`).
        perms: Vec<String>,
        /// Allow running this job (object-level `extras.run_job`); repeat for several.
        #[arg(long = "run-job")]
        run_jobs: Vec<String>,
    },
    /// Take these permissions, and the right to run these jobs, from USERNAME.
    Remove {
        /// The user's name.
        username: String,
        /// Permissions, `app_label.codename` (e.g. `dcim.view_device`).
        perms: Vec<String>,
        /// No longer allow running this job; repeat for several.
        #[arg(long = "run-job")]
        run_jobs: Vec<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum SessionCommand {
    /// List web login sessions (of USERNAME, or all): id, user, logged in, last seen, browser.
    List {
        /// The user's name.
        username: Option<String>,
    },
    /// End a session by its id: its browser must log in again.
    End {
        /// The session's id (`jobhooks users sessions list` shows it).
        id: String,
    },
}

/// A new password: typed twice without echo on a terminal, else the first line of stdin.
fn read_password() -> Result<String, Failure> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")
            .map_err(|error| Failure::bad_input(format!("cannot read the password: {error}")))?;
        let again = rpassword::prompt_password("New password (again): ")
            .map_err(|error| Failure::bad_input(format!("cannot read the password: {error}")))?;
        if first != again {
            return Err(Failure::bad_input("the two passwords differ; nothing was changed"));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| Failure::bad_input(format!("cannot read the password from stdin: {error}")))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(Failure::bad_input("no password on stdin: give it as the first line"));
    }
    Ok(password.to_owned())
}

pub(crate) async fn sessions(s: &impl Backend, command: SessionCommand) -> Outcome {
    match command {
        SessionCommand::List { username } => {
            let sessions = s.list_sessions(username.as_deref()).await?;
            s.print(&sessions, |sessions| {
                sessions
                    .iter()
                    .map(|session| {
                        format!(
                            "{}  {}  logged in {}  last seen {}  {}",
                            session.id,
                            session.user,
                            session.created.format(&Rfc3339).unwrap_or_default(),
                            session.last_seen.format(&Rfc3339).unwrap_or_default(),
                            session.user_agent
                        )
                        .trim_end()
                        .to_owned()
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        SessionCommand::End { id } => {
            s.end_session(&id).await?;
            s.print(&serde_json::json!({ "ended": id }), |_| format!("ended session {id}"));
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a token for USERNAME and print its key, alone on stdout (`--json`: `{"key": …}`). The
    /// key is shown this once: the store keeps only its hash.
    Add {
        /// The user's name.
        username: String,
        /// Days until it expires, at least 1 (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// A read-only token: refused on every write.
        #[arg(long)]
        read_only: bool,
        /// Through a server without a token of one's own (`--url` alone): USERNAME's web password,
        /// read from stdin, stands for one (Nautobot's token provisioning).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List tokens (of USERNAME, or all): id, user, created, expires, description; never keys.
    List {
        /// The user's name.
        username: Option<String>,
    },
    /// Revoke a token by its id.
    Revoke {
        /// The token's id (`jobhooks users token list` shows it).
        id: String,
    },
}

pub(crate) async fn tokens(s: &impl Backend, command: TokenCommand) -> Outcome {
    match command {
        TokenCommand::Add { username, expires_in_days, description, read_only, password_stdin } => {
            if expires_in_days == Some(0) {
                return Err(Failure::bad_input(
                    "--expires-in-days must be at least 1: a token that expires in 0 days is expired when issued",
                ));
            }
            let now = jobhooks_model::to_microseconds(OffsetDateTime::now_utc());
            let expires = expires_in_days.map(|days| now + Duration::from_secs(u64::from(days) * 86_400));
            let password = if password_stdin { Some(read_password()?) } else { None };
            let new = crate::backend::NewToken { expires, description, write_enabled: !read_only, password };
            let key = s.issue_token(&username, new).await?;
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

pub(crate) async fn users(s: &impl Backend, command: UsersCommand) -> Outcome {
    match command {
        UsersCommand::Add { username, superuser, perms, run_jobs, password_stdin } => {
            if s.find_user(&username).await?.is_some() {
                return Err(Failure::bad_input(format!(
                    "user {username} exists: `jobhooks users update {username}` changes whether it is a superuser, \
                     `jobhooks users perm add|remove {username} PERM…` its permissions"
                )));
            }
            let mut user = if superuser { User::superuser(username)? } else { User::new(username)? };
            user.permissions.extend(perms.into_iter().map(Permission::new));
            if !run_jobs.is_empty() {
                user.permissions.push(Permission::run_jobs(run_jobs));
            }
            // Read before writing anything: a refused password adds no user.
            let password = if password_stdin { Some(read_password()?) } else { None };
            if let Some(password) = &password {
                jobhooks_model::PasswordHash::new(password, jobhooks_model::PasswordCost::Cheapest)
                    .map_err(|refused| Failure::bad_input(refused.to_string()))?;
            }
            let user = s.put_user(user).await?;
            if password.is_some() {
                s.set_password(&user.username, password).await?;
            }
            s.print(&user, |u| format!("added user {}", u.username));
        }
        UsersCommand::Update { username, superuser, no_superuser } => {
            if !superuser && !no_superuser {
                return Err(Failure::bad_input("say what to change: --superuser or --no-superuser"));
            }
            let mut user = existing(s, &username).await?;
            user.is_superuser = superuser;
            let user = s.put_user(user).await?;
            s.print(&user, |u| {
                format!("updated user {}{}", u.username, if u.is_superuser { " (superuser)" } else { "" })
            });
        }
        UsersCommand::Perm(PermCommand::Add { username, perms, run_jobs }) => {
            if perms.is_empty() && run_jobs.is_empty() {
                return Err(Failure::bad_input("give a permission (`app_label.codename`) or --run-job JOB"));
            }
            let mut user = existing(s, &username).await?;
            for perm in perms {
                if !user.permissions.iter().any(|p| p.name == perm && p.jobs.is_none()) {
                    user.permissions.push(Permission::new(perm));
                }
            }
            let allowed: Vec<String> = run_jobs
                .into_iter()
                .filter(|job| !user.permissions.iter().any(|p| p.jobs.as_ref().is_some_and(|jobs| jobs.contains(job))))
                .collect();
            if !allowed.is_empty() {
                user.permissions.push(Permission::run_jobs(allowed));
            }
            let user = s.put_user(user).await?;
            s.print(&user, |u| format!("{}: {}", u.username, permissions_or_none(u)));
        }
        UsersCommand::Perm(PermCommand::Remove { username, perms, run_jobs }) => {
            if perms.is_empty() && run_jobs.is_empty() {
                return Err(Failure::bad_input("give a permission (`app_label.codename`) or --run-job JOB"));
            }
            let mut user = existing(s, &username).await?;
            let held = |name: &String| user.permissions.iter().any(|p| &p.name == name && p.jobs.is_none());
            if let Some(missing) = perms.iter().find(|perm| !held(perm)) {
                return Err(Failure::bad_input(format!("user {username} does not have {missing}")));
            }
            user.permissions.retain(|p| !(p.jobs.is_none() && perms.contains(&p.name)));
            for permission in &mut user.permissions {
                if let Some(jobs) = &mut permission.jobs {
                    jobs.retain(|job| !run_jobs.contains(job));
                }
            }
            user.permissions.retain(|p| p.jobs.as_ref().is_none_or(|jobs| !jobs.is_empty()));
            let user = s.put_user(user).await?;
            s.print(&user, |u| format!("{}: {}", u.username, permissions_or_none(u)));
        }
        UsersCommand::Token(command) => tokens(s, command).await?,
        UsersCommand::Sessions(command) => sessions(s, command).await?,
        UsersCommand::Passwd { username, remove } => {
            existing(s, &username).await?;
            let password = if remove { None } else { Some(read_password()?) };
            let set = password.is_some();
            s.set_password(&username, password).await?;
            s.print(&serde_json::json!({ "username": username, "has_password": set }), |_| {
                if set {
                    format!("set the password of {username}; their sessions ended")
                } else {
                    format!("removed the password of {username}: they can no longer log in to the web pages")
                }
            });
        }
        UsersCommand::List => {
            let users = s.list_users().await?;
            s.print(&users, |users| {
                users
                    .iter()
                    .map(|u| {
                        format!(
                            "{}{}  {}",
                            u.username,
                            if u.is_superuser { " (superuser)" } else { "" },
                            permissions_text(u)
                        )
                        .trim_end()
                        .to_owned()
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}

/// The user `username`, which must exist.
async fn existing(s: &impl Backend, username: &str) -> Result<User, Failure> {
    s.find_user(username)
        .await?
        .ok_or_else(|| Failure::bad_input(format!("user {username} does not exist: add it with `jobhooks users add`")))
}

/// A user's permissions, `extras.run_job(app::Job,…)` for object-level ones.
fn permissions_text(user: &User) -> String {
    let perms: Vec<String> = user
        .permissions
        .iter()
        .map(|p| match &p.jobs {
            Some(jobs) => format!("{}({})", p.name, jobs.join(",")),
            None => p.name.clone(),
        })
        .collect();
    perms.join(" ")
}

/// A user's permissions, or `no permissions`.
fn permissions_or_none(user: &User) -> String {
    let text = permissions_text(user);
    if text.is_empty() { "no permissions".to_owned() } else { text }
}
