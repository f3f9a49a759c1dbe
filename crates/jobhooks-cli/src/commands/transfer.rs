//! `jobhooks export` and `jobhooks import`: a store's records as JSON lines, written a page at a
//! time (from the local store or streamed from a server), and read back into a new store.

use std::io::Write;
use std::path::{Path, PathBuf};

use jobhooks_model::OffsetDateTime;
use jobhooks_model::ports::{Restore, Storage};
use jobhooks_model::transfer::{Exporter, Record, Snapshot};

use crate::backend::{Backend, Session};
use crate::{Failure, Outcome};

/// Where an export goes: a file, written whole or not at all (into a temporary file beside it,
/// renamed by [`ExportOut::finish`]; dropped unfinished, the temporary file is removed), or
/// stdout as it comes.
pub(crate) struct ExportOut {
    target: Target,
}

enum Target {
    Stdout(std::io::Stdout),
    File { partial: PathBuf, path: PathBuf, file: std::io::BufWriter<std::fs::File> },
}

impl ExportOut {
    /// An export to `path`, or to stdout without one.
    pub(crate) fn create(path: Option<&Path>) -> Result<Self, Failure> {
        let Some(path) = path else {
            return Ok(Self { target: Target::Stdout(std::io::stdout()) });
        };
        let partial = path.with_extension("partial");
        let file = std::fs::File::create(&partial).map_err(|error| cannot_write(path, &error))?;
        let target = Target::File { partial, path: path.to_owned(), file: std::io::BufWriter::new(file) };
        Ok(Self { target })
    }

    /// Writes the next bytes of the export.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Outcome {
        match &mut self.target {
            // A closed stdout (`jobhooks export | head`) ends the export quietly.
            Target::Stdout(stdout) => {
                let _closed_or_written = stdout.lock().write_all(bytes);
                Ok(())
            }
            Target::File { path, file, .. } => file.write_all(bytes).map_err(|error| cannot_write(path, &error)),
        }
    }

    /// Ends the export: a file is flushed to disk and takes its name.
    pub(crate) fn finish(mut self) -> Outcome {
        match &mut self.target {
            Target::Stdout(stdout) => {
                let _closed_or_flushed = stdout.lock().flush();
                Ok(())
            }
            Target::File { partial, path, file } => {
                let synced = file.flush().and_then(|()| file.get_ref().sync_all());
                synced.and_then(|()| std::fs::rename(&*partial, &*path)).map_err(|error| cannot_write(path, &error))
            }
        }
    }
}

impl Drop for ExportOut {
    fn drop(&mut self) {
        if let Target::File { partial, .. } = &self.target {
            // After `finish` the temporary file was renamed and this finds nothing.
            let _removed_or_absent = std::fs::remove_file(partial);
        }
    }
}

fn cannot_write(path: &Path, error: &std::io::Error) -> Failure {
    Failure::failed(format!("cannot write the export to {}: {error}", path.display()))
}

/// Exports `store` to `path` (stdout without one), a page of records at a time.
pub(crate) async fn export_from<S: Storage + ?Sized>(store: &S, path: Option<&Path>) -> Outcome {
    let mut out = ExportOut::create(path)?;
    let mut exporter = Exporter::new(store, OffsetDateTime::now_utc()).await?;
    while let Some(records) = exporter.next_records().await? {
        let lines: String = records.iter().map(Record::json_line).collect();
        out.write(lines.as_bytes())?;
    }
    out.finish()
}

/// Imports `snapshot` into the new store of `session`.
pub(crate) async fn import_into<S: Storage + Restore + 'static>(session: Session<S>, snapshot: &Snapshot) -> Outcome {
    let report = session.store.restore(snapshot).await.map_err(|error| match error {
        jobhooks_model::ports::RestoreError::Storage(failure) => Failure::failed(jobhooks_model::error_chain(&failure)),
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

/// Reads an export from `path` (`-`: stdin) and checks it.
pub(crate) fn read_export(path: &Path) -> Result<Snapshot, Failure> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_file_is_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.jsonl");
        let mut out = ExportOut::create(Some(&path)).unwrap();
        out.write(b"{\"record\":\"header\"}\n").unwrap();
        assert!(!path.exists(), "nothing is at the export's name before it ends");
        drop(out);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "an unfinished export leaves nothing");

        let mut out = ExportOut::create(Some(&path)).unwrap();
        out.write(b"one\n").unwrap();
        out.write(b"two\n").unwrap();
        out.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "only the export itself");
    }
}
