//! What the store's integration tests share: copies of committed stores, and raw sled on a store
//! just closed.

use std::path::Path;
use std::time::{Duration, Instant};

/// A copy of the committed store at `from`, so that opening it never touches the fixture.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Opens the sled database of the store at `dir` with raw sled. sled's IO threads hold its file
/// lock a moment after a store is dropped, and nothing says when they let go: the open is retried
/// on that lock's error for up to ten seconds, as the store's own open does (`open_db`).
pub fn raw_sled(dir: &Path) -> sled::Db {
    let since = Instant::now();
    loop {
        match sled::open(dir) {
            Err(sled::Error::Io(io))
                if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Other)
                    && since.elapsed() < Duration::from_secs(10) =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            opened => return opened.unwrap(),
        }
    }
}

/// The format key of the store at `dir`, as stored.
pub fn stored_format(dir: &Path) -> String {
    let db = raw_sled(dir);
    let format = db.open_tree("jobhooks").unwrap().get(b"meta/format").unwrap().unwrap();
    String::from_utf8(format.to_vec()).unwrap()
}
