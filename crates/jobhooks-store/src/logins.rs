//! Passwords and login sessions: catalog records (`pwd/{username}`, `lgn/{id}`), cached in memory
//! with the users they belong to and written durably.

use jobhooks_model::ports::Logins;
use jobhooks_model::{
    CatalogError, LoginSession, OffsetDateTime, PasswordHash, StorageFailure, to_microseconds, validate_new_login,
};

use crate::Store;

#[async_trait::async_trait]
impl Logins for Store {
    async fn set_password(&self, username: &str, password: Option<PasswordHash>) -> Result<(), CatalogError> {
        self.write_durably(|txn| {
            let (staging, catalog) = txn.edit_catalog();
            if !catalog.has_user(username) {
                return Err(CatalogError::not_found("user", username));
            }
            match password {
                Some(hash) => catalog.put_password(staging, username, hash)?,
                None => catalog.remove_password(staging, username),
            }
            let ended: Vec<String> =
                catalog.logins.values().filter(|session| session.user == username).map(|s| s.id.clone()).collect();
            for id in ended {
                catalog.remove_login(staging, &id);
            }
            Ok(())
        })
        .await
    }

    async fn get_password(&self, username: &str) -> Result<Option<PasswordHash>, StorageFailure> {
        Ok(self.catalog().passwords.get(username).cloned())
    }

    async fn add_login(&self, session: LoginSession) -> Result<(), CatalogError> {
        self.write_durably(|txn| {
            let (staging, catalog) = txn.edit_catalog();
            validate_new_login(&session, catalog.has_user(&session.user), catalog.logins.contains_key(&session.id))?;
            Ok(catalog.put_login(staging, session)?)
        })
        .await
    }

    async fn get_login(&self, id: &str) -> Result<Option<LoginSession>, StorageFailure> {
        Ok(self.catalog().logins.get(id).cloned())
    }

    async fn touch_login(&self, id: &str, at: OffsetDateTime) -> Result<(), StorageFailure> {
        let at = to_microseconds(at);
        self.write_durably(|txn| {
            let (staging, catalog) = txn.edit_catalog();
            match catalog.logins.get(id) {
                Some(session) if session.last_seen < at => {
                    let touched = LoginSession { last_seen: at, ..session.clone() };
                    catalog.put_login(staging, touched)
                }
                _ => Ok(()),
            }
        })
        .await
    }

    async fn list_logins(&self, user: Option<&str>) -> Result<Vec<LoginSession>, StorageFailure> {
        let catalog = self.catalog();
        let mut sessions: Vec<LoginSession> =
            catalog.logins.values().filter(|session| user.is_none_or(|user| session.user == user)).cloned().collect();
        sessions.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(sessions)
    }

    async fn end_login(&self, id: &str) -> Result<LoginSession, CatalogError> {
        self.write_durably(|txn| {
            let (staging, catalog) = txn.edit_catalog();
            catalog.remove_login(staging, id).ok_or_else(|| CatalogError::not_found("session", id))
        })
        .await
    }

    async fn end_idle_logins(&self, idle_since: OffsetDateTime) -> Result<usize, StorageFailure> {
        if self.catalog().logins.values().all(|session| session.last_seen >= idle_since) {
            return Ok(0);
        }
        self.write_durably(|txn| {
            let (staging, catalog) = txn.edit_catalog();
            let idle: Vec<String> = catalog
                .logins
                .values()
                .filter(|session| session.last_seen < idle_since)
                .map(|session| session.id.clone())
                .collect();
            for id in &idle {
                catalog.remove_login(staging, id);
            }
            Ok(idle.len())
        })
        .await
    }
}
