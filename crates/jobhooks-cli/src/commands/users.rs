//! `jobhooks users`: users, their permissions and their API tokens.

use crate::Outcome;
use crate::backend::Backend;
use clap::Subcommand;
use jobhooks_model::{OffsetDateTime, Permission, User};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;

#[derive(Subcommand)]
pub(crate) enum UsersCommand {
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
pub(crate) enum TokenCommand {
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

pub(crate) async fn tokens(s: &impl Backend, command: TokenCommand) -> Outcome {
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

pub(crate) async fn users(s: &impl Backend, command: UsersCommand) -> Outcome {
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
