//! Records to a file or standard output, as JSON Lines or one JSON array.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use super::PublishError;
use super::{FileFormat, Notice, Queue, Stats};

/// Opens the file (failing here when it cannot be created) and starts the writer.
pub(super) fn start(
    path: Option<&Path>,
    format: FileFormat,
    queue: Arc<Queue>,
    stats: Arc<Stats>,
    notify: Arc<dyn Fn(Notice) + Send + Sync>,
) -> Result<Vec<JoinHandle<()>>, PublishError> {
    let out: Box<dyn Write + Send> = match path {
        None => Box::new(std::io::stdout()),
        Some(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    PublishError::Io(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            Box::new(
                std::fs::File::create(p)
                    .map_err(|e| PublishError::Io(format!("cannot write {}: {e}", p.display())))?,
            )
        }
    };
    let handle = std::thread::Builder::new()
        .name("emotion-publish-file".into())
        .spawn(move || {
            if let Err(e) = write_all(out, format, &queue, &stats) {
                notify(Notice::Fatal(format!("writing the records failed: {e}")));
            }
        })
        .map_err(|e| PublishError::Thread(format!("cannot start the publishing thread: {e}")))?;
    Ok(vec![handle])
}

fn write_all(
    out: Box<dyn Write + Send>,
    format: FileFormat,
    queue: &Queue,
    stats: &Stats,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    let mut first = true;
    if format == FileFormat::Json {
        out.write_all(b"[")?;
    }
    while !queue.finished() {
        let Some(record) = queue.next(Duration::from_millis(200)) else {
            continue;
        };
        match format {
            FileFormat::JsonLines => out.write_all(record.as_bytes())?,
            FileFormat::Json => {
                out.write_all(if first { b"\n" } else { b",\n" })?;
                out.write_all(record.as_bytes())?;
            }
        }
        if format == FileFormat::JsonLines {
            out.write_all(b"\n")?;
        }
        first = false;
        stats.published.fetch_add(1, Ordering::SeqCst);
        // Readers (tail -f, a pipe) see each record as it comes.
        if queue.lock().is_empty() {
            out.flush()?;
        }
    }
    if format == FileFormat::Json {
        out.write_all(b"\n]\n")?;
    }
    out.flush()
}
