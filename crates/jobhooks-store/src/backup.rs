//! A consistent copy of an open store into a new directory, while it serves.
//!
//! Every write goes through the writer lock ([`Store::transact`]), so a copy made while holding it
//! sees every write whole or not at all. The deferred writes of a commit group waiting for its
//! flush are applied first, so that the copy also holds what is about to be acknowledged. Writers
//! wait while the copy runs; readers do not.

use std::path::Path;

use jobhooks_model::ports::{Backup, BackupError, BackupReport};
use jobhooks_model::{BackendError, StorageFailure};

use crate::Store;

/// Records per batch written into the copy.
const BATCH: usize = 4_096;

impl Store {
    /// Copies the store into `to` (a new or empty directory) as of one moment; the copy opens
    /// with [`Store::open`] like any store. See [`Backup`].
    pub fn backup_blocking(&self, to: &Path) -> Result<BackupReport, BackupError> {
        check_target(self, to)?;
        let failed = |context: &str, error: sled::Error| {
            BackupError::Storage(StorageFailure::Backend(BackendError::new(
                format!("{context} {}", to.display()),
                error,
            )))
        };
        let copy = sled::Config::new().path(to).open().map_err(|e| failed("cannot create the backup at", e))?;
        let tree = copy.open_tree("jobhooks").map_err(|e| failed("cannot create the backup at", e))?;
        let mut report = BackupReport::default();
        {
            let mut writer = self.writer();
            self.apply_deferred(&mut writer)?;
            let mut batch = sled::Batch::default();
            let mut in_batch = 0;
            for entry in self.inner.tree.iter() {
                let (key, value) = entry.map_err(crate::staging::backend_error)?;
                report.records += 1;
                report.bytes += (key.len() + value.len()) as u64;
                batch.insert(key, value);
                in_batch += 1;
                if in_batch == BATCH {
                    tree.apply_batch(std::mem::take(&mut batch))
                        .map_err(|e| failed("cannot write the backup at", e))?;
                    in_batch = 0;
                }
            }
            tree.apply_batch(batch).map_err(|e| failed("cannot write the backup at", e))?;
        }
        copy.flush().map_err(|e| failed("cannot flush the backup at", e))?;
        Ok(report)
    }
}

/// Refuses a target that exists and is not an empty directory, or that is the store itself.
fn check_target(store: &Store, to: &Path) -> Result<(), BackupError> {
    let refused = |reason: &str| BackupError::Target { path: to.display().to_string(), reason: reason.to_owned() };
    match std::fs::read_dir(to) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotADirectory => Err(refused("it is a file")),
        Err(error) => Err(refused(&format!("it cannot be read ({error})"))),
        Ok(mut entries) => {
            if to.canonicalize().ok() == store.path().canonicalize().ok() {
                return Err(refused("it is the store itself"));
            }
            if entries.next().is_some() { Err(refused("it is not empty")) } else { Ok(()) }
        }
    }
}

#[async_trait::async_trait]
impl Backup for Store {
    async fn backup_to(&self, path: &Path) -> Result<BackupReport, BackupError> {
        let store = self.clone();
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || store.backup_blocking(&path)).await.map_err(|error| {
            BackupError::Storage(StorageFailure::Backend(BackendError::new("the backup task failed", error)))
        })?
    }
}

#[cfg(test)]
mod tests {
    use jobhooks_model::ports::{Catalog, ObjectReader};
    use jobhooks_model::{ChangeContext, ChangeContextKind, ContentType, Object, ObjectRef, User, json};

    use super::*;

    fn device(id: &str) -> Object {
        let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), id).unwrap();
        Object::new(reference, id, json!({"name": id})).unwrap()
    }

    #[tokio::test]
    async fn a_backup_opens_as_a_store_with_everything_committed_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        store.put_user(User::new("alice").unwrap()).await.unwrap();
        let mut session = store.session(ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), ""));
        session.save(device("d1")).await.unwrap();
        session.commit().await.unwrap();

        let report = store.backup_to(&dir.path().join("copy")).await.unwrap();
        assert!(report.records > 3 && report.bytes > 0, "{report:?}");
        // Writes after the backup are not in it.
        let mut later = store.session(ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), ""));
        later.save(device("d2")).await.unwrap();
        later.commit().await.unwrap();

        let copy = Store::open(dir.path().join("copy")).unwrap();
        assert!(copy.get_user("alice").await.unwrap().is_some());
        assert!(copy.get_object(device("d1").reference()).await.unwrap().is_some());
        assert!(copy.get_object(device("d2").reference()).await.unwrap().is_none());
    }

    /// Commits keep coming while the backup runs: the copy holds a prefix of them, each whole
    /// (its object with its change), never a half.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_taken_during_commits_holds_each_commit_whole_or_not_at_all() {
        use jobhooks_model::ports::ChangeStore;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let (started, mut begun) = tokio::sync::mpsc::channel(1);
        let committer = tokio::spawn({
            let store = store.clone();
            async move {
                for id in 0..300 {
                    let mut session =
                        store.session(ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), ""));
                    session.save(device(&id.to_string())).await.unwrap();
                    session.commit().await.unwrap();
                    if id == 50 {
                        started.send(()).await.unwrap();
                    }
                }
            }
        });
        begun.recv().await.unwrap();
        store.backup_to(&dir.path().join("copy")).await.unwrap();
        committer.await.unwrap();

        let copy = Store::open(dir.path().join("copy")).unwrap();
        let mut present = Vec::new();
        for id in 0..300 {
            let object = device(&id.to_string());
            let found = copy.get_object(object.reference()).await.unwrap().is_some();
            let changes = copy.changes_for_object(object.reference(), 10).await.unwrap().len();
            assert_eq!(changes, usize::from(found), "device {id}: its object and its change go together");
            present.push(found);
        }
        let copied = present.iter().take_while(|found| **found).count();
        assert!(copied > 50, "everything committed before the backup began is in it: {copied}");
        assert!(present[copied..].iter().all(|found| !found), "the copy is a prefix of the commits");
    }

    #[tokio::test]
    async fn a_backup_never_writes_into_a_directory_that_holds_something() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        std::fs::create_dir(dir.path().join("full")).unwrap();
        std::fs::write(dir.path().join("full").join("notes.txt"), "keep me").unwrap();
        std::fs::write(dir.path().join("file"), "keep me").unwrap();
        for (target, reason) in
            [("full", "it is not empty"), ("file", "it is a file"), ("db", "it is the store itself")]
        {
            let error = store.backup_to(&dir.path().join(target)).await.unwrap_err();
            assert!(error.to_string().contains(reason), "{target}: {error}");
        }
        assert_eq!(std::fs::read_to_string(dir.path().join("full").join("notes.txt")).unwrap(), "keep me");
    }
}
