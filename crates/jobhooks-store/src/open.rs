//! Opening a store: what a directory must hold to be opened, and why opening can fail.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jobhooks_model::StoreError;

/// Why a store could not be opened. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process holds the store open (sled admits one process per store).
    #[error("the store at {} is in use by another process{}", path.display(), holder.as_ref().map(|holder| format!(": {holder}")).unwrap_or_default())]
    Locked {
        /// Where the store is.
        path: PathBuf,
        /// What the holder said about itself ([`Store::announce_holder`](crate::Store::announce_holder)),
        /// if it did.
        holder: Option<String>,
    },
    /// The path names something that is not a jobhooks store, and is not a new or empty directory.
    #[error(
        "{} is not a jobhooks store: {found}; give the path of an existing store, or of a new or empty directory for a new one",
        path.display()
    )]
    NotAStore {
        /// The path given.
        path: PathBuf,
        /// What is there instead.
        found: String,
    },
    /// The store was written by an incompatible version of jobhooks.
    #[error(
        "the store at {} has format version {found}, but this jobhooks reads version {expected}; open it with the version that wrote it, or start a new store",
        path.display()
    )]
    IncompatibleFormat {
        /// Where the store is.
        path: PathBuf,
        /// The version found on disk.
        found: String,
        /// The version this build reads.
        expected: String,
    },
    /// The file system or sled failed.
    #[error("cannot open the store at {}", path.display())]
    Io {
        /// Where the store is.
        path: PathBuf,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading the store's records at open, ending the claims found there or migrating it, failed.
    #[error("cannot read the store at {}", path.display())]
    Read {
        /// Where the store is.
        path: PathBuf,
        /// What failed.
        #[source]
        source: StoreError,
    },
}

/// The files sled keeps in a store's directory, besides its `blobs/` and snapshots.
const SLED_FILES: [&str; 2] = ["conf", "db"];

/// The file in a store's directory whose lock says that a process has the store open.
pub(crate) const LOCK_FILE: &str = "jobhooks.lock";

/// Takes the store's lock, creating its directory and lock file if needed, waiting up to `wait`
/// while another process (or another handle of this one) holds it. The lock is held as long as
/// the returned file is open; the flag says whether this call created the lock file.
pub(crate) fn lock_directory(path: &Path, wait: Duration) -> Result<(File, bool), OpenError> {
    let io = |source: std::io::Error| OpenError::Io { path: path.to_owned(), source: Box::new(source) };
    std::fs::create_dir_all(path).map_err(io)?;
    let created = !path.join(LOCK_FILE).exists();
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path.join(LOCK_FILE)).map_err(io)?;
    let since = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => {
                // What an earlier holder said about itself is not true of this one.
                file.set_len(0).map_err(io)?;
                return Ok((file, created));
            }
            Err(TryLockError::WouldBlock) if since.elapsed() < wait => {
                // Nobody is told when a file lock is let go: retry with a growing pause, as
                // SQLite's busy timeout does.
                std::thread::sleep(pause.min(wait.saturating_sub(since.elapsed())));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(path.join(LOCK_FILE))
                    .ok()
                    .map(|text| text.trim().to_owned())
                    .filter(|text| !text.is_empty());
                return Err(OpenError::Locked { path: path.to_owned(), holder });
            }
            Err(TryLockError::Error(error)) => return Err(io(error)),
        }
    }
}

/// Checks that `path` may be opened as a store: it does not exist yet, is an empty directory, or
/// holds sled's files. Anything else (a file, a directory of other files) is refused, so that a
/// mistyped path is never initialised as a store nor has files overwritten.
pub(crate) fn check_directory(path: &Path) -> Result<(), OpenError> {
    let io = |source: std::io::Error| OpenError::Io { path: path.to_owned(), source: Box::new(source) };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io(error)),
    };
    if !metadata.is_dir() {
        return Err(OpenError::NotAStore { path: path.to_owned(), found: "it is a file, not a directory".to_owned() });
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let name = entry.map_err(io)?.file_name().to_string_lossy().into_owned();
        // A lock file alone is what a store whose creation was cut short leaves.
        if name != LOCK_FILE {
            names.push(name);
        }
    }
    if names.is_empty() || SLED_FILES.iter().all(|file| names.iter().any(|name| name == file)) {
        return Ok(());
    }
    names.sort();
    let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
    let more = if names.len() > 3 { format!(" and {} more", names.len() - 3) } else { String::new() };
    Err(OpenError::NotAStore {
        path: path.to_owned(),
        found: format!("the directory holds other files ({}{more})", shown.join(", ")),
    })
}

/// Removes the snapshot files sled left half-written (`snap.*.generating`) in the store at `path`.
///
/// sled writes a snapshot of its page table when it opens a store (and every so many writes),
/// into `snap.{lsn}.generating`, renamed to `snap.{lsn}` once whole. A process killed while
/// writing one leaves the file behind, and sled 0.34 then refuses the store as corrupt (sled
/// #1527) though the complete snapshot and the log are intact. Such a file is garbage by
/// construction: no process has the store open (its lock is held here), so none is writing it.
pub(crate) fn remove_unfinished_snapshots(path: &Path) -> Result<usize, OpenError> {
    let io = |source: std::io::Error| OpenError::Io { path: path.to_owned(), source: Box::new(source) };
    let mut removed = 0;
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path()).map_err(io)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_and_empty_directories_may_become_stores() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_directory(&dir.path().join("new")).is_ok());
        assert!(check_directory(dir.path()).is_ok());
    }

    #[test]
    fn files_and_foreign_directories_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        std::fs::write(dir.path().join("db"), "not sled").unwrap();
        let error = check_directory(dir.path()).unwrap_err();
        assert!(matches!(error, OpenError::NotAStore { .. }), "{error}");
        assert_eq!(
            error.to_string(),
            format!(
                "{} is not a jobhooks store: the directory holds other files (db, notes.txt); give the path of an existing store, or of a new or empty directory for a new one",
                dir.path().display()
            )
        );
        let file = dir.path().join("notes.txt");
        let error = check_directory(&file).unwrap_err();
        assert!(error.to_string().contains("it is a file, not a directory"), "{error}");
    }
}
