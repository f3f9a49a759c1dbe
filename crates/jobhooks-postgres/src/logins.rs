//! Passwords and login sessions (`jobhooks_passwords`, `jobhooks_logins`): every process serving
//! the web pages reads the same sessions.

use jobhooks_model::ports::Logins;
use jobhooks_model::{
    CatalogError, LoginSession, OffsetDateTime, PasswordHash, StorageFailure, to_microseconds, validate_new_login,
};
use tokio_postgres::Row;

use crate::records::corrupt;
use crate::{PgStore, db_error};

const LOGIN_COLUMNS: &str = "id, username, key_hash, created, last_seen, user_agent";

fn login_of(row: &Row) -> LoginSession {
    LoginSession {
        id: row.get(0),
        user: row.get(1),
        key_hash: row.get(2),
        created: row.get(3),
        last_seen: row.get(4),
        user_agent: row.get(5),
    }
}

#[async_trait::async_trait]
impl Logins for PgStore {
    async fn set_password(&self, username: &str, password: Option<PasswordHash>) -> Result<(), CatalogError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error("cannot begin a transaction"))?;
        let exists: bool = transaction
            .query_one("SELECT EXISTS (SELECT 1 FROM jobhooks_users WHERE username = $1 FOR SHARE)", &[&username])
            .await
            .map_err(db_error("cannot read the password's user"))?
            .get(0);
        if !exists {
            return Err(CatalogError::not_found("user", username));
        }
        match &password {
            Some(hash) => transaction
                .execute(
                    "INSERT INTO jobhooks_passwords (username, phc) VALUES ($1, $2)
                     ON CONFLICT (username) DO UPDATE SET phc = excluded.phc",
                    &[&username, &hash.as_str()],
                )
                .await
                .map_err(db_error("cannot write a password"))?,
            None => transaction
                .execute("DELETE FROM jobhooks_passwords WHERE username = $1", &[&username])
                .await
                .map_err(db_error("cannot remove a password"))?,
        };
        transaction
            .execute("DELETE FROM jobhooks_logins WHERE username = $1", &[&username])
            .await
            .map_err(db_error("cannot end the user's sessions"))?;
        transaction.commit().await.map_err(db_error("cannot write a password"))?;
        Ok(())
    }

    async fn get_password(&self, username: &str) -> Result<Option<PasswordHash>, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT phc FROM jobhooks_passwords WHERE username = $1", &[&username])
            .await
            .map_err(db_error("cannot read a password"))?;
        row.map(|row| {
            PasswordHash::from_phc(row.get::<_, String>(0)).map_err(|error| corrupt("password", username, error))
        })
        .transpose()
    }

    async fn add_login(&self, session: LoginSession) -> Result<(), CatalogError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error("cannot begin a transaction"))?;
        let row = transaction
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM jobhooks_users WHERE username = $1 FOR SHARE),
                        EXISTS (SELECT 1 FROM jobhooks_logins WHERE id = $2)",
                &[&session.user, &session.id],
            )
            .await
            .map_err(db_error("cannot read the session's user"))?;
        validate_new_login(&session, row.get(0), row.get(1))?;
        transaction
            .execute(
                &format!("INSERT INTO jobhooks_logins ({LOGIN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"),
                &[
                    &session.id,
                    &session.user,
                    &session.key_hash,
                    &session.created,
                    &session.last_seen,
                    &session.user_agent,
                ],
            )
            .await
            .map_err(db_error("cannot write a session"))?;
        transaction.commit().await.map_err(db_error("cannot write a session"))?;
        Ok(())
    }

    async fn get_login(&self, id: &str) -> Result<Option<LoginSession>, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {LOGIN_COLUMNS} FROM jobhooks_logins WHERE id = $1"), &[&id])
            .await
            .map_err(db_error("cannot read a session"))?;
        Ok(row.as_ref().map(login_of))
    }

    async fn touch_login(&self, id: &str, at: OffsetDateTime) -> Result<(), StorageFailure> {
        let at = to_microseconds(at);
        let client = self.client().await?;
        client
            .execute("UPDATE jobhooks_logins SET last_seen = $2 WHERE id = $1 AND last_seen < $2", &[&id, &at])
            .await
            .map_err(db_error("cannot write a session"))?;
        Ok(())
    }

    async fn list_logins(&self, user: Option<&str>) -> Result<Vec<LoginSession>, StorageFailure> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {LOGIN_COLUMNS} FROM jobhooks_logins WHERE ($1::text IS NULL OR username = $1)
                     ORDER BY created, id"
                ),
                &[&user],
            )
            .await
            .map_err(db_error("cannot read the sessions"))?;
        Ok(rows.iter().map(login_of).collect())
    }

    async fn end_login(&self, id: &str) -> Result<LoginSession, CatalogError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("DELETE FROM jobhooks_logins WHERE id = $1 RETURNING {LOGIN_COLUMNS}"), &[&id])
            .await
            .map_err(db_error("cannot end a session"))?;
        row.as_ref().map(login_of).ok_or_else(|| CatalogError::not_found("session", id))
    }

    async fn end_idle_logins(&self, idle_since: OffsetDateTime) -> Result<usize, StorageFailure> {
        let client = self.client().await?;
        let ended = client
            .execute("DELETE FROM jobhooks_logins WHERE last_seen < $1", &[&idle_since])
            .await
            .map_err(db_error("cannot end idle sessions"))?;
        Ok(usize::try_from(ended).unwrap_or(usize::MAX))
    }
}
