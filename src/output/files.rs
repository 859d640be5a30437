//! Writing output files so a reader never sees half of one: everything is written
//! under a temporary name (`NAME.EXT.tmp-HOST-PID`) and renamed into place. Several
//! writers may share a folder (shards on several machines, Ray tasks): a writer
//! cleaning up removes only temporaries whose writer is certainly gone.

use std::io::Write;
use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

/// How old another machine's temporary must be before it counts as abandoned (its
/// writer's life cannot be checked from here; a write takes seconds).
const ABANDONED_AFTER: Duration = Duration::from_secs(3600);

/// This machine's name as it goes into temporary names (letters, digits, `.`, `-`).
static HOST: LazyLock<String> = LazyLock::new(|| {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name: String = String::from_utf8_lossy(if ok { &buf[..end] } else { b"" })
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() { "host".into() } else { name }
});

/// Writes `data` to a temporary name next to `path`, syncs it and renames it over `path`.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp-{}-{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        *HOST,
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Removes temporary files that killed writers left in `dir`: this machine's whose
/// process is gone, other machines' an hour after they were last written (and the
/// `*.tmp<pid>` of earlier versions).
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let abandoned = match temporary_writer(&name) {
            Some(Writer::Old) => true,
            Some(Writer::Here(pid)) => !process_exists(pid),
            Some(Writer::Elsewhere) => entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
                SystemTime::now()
                    .duration_since(t)
                    .is_ok_and(|age| age >= ABANDONED_AFTER)
            }),
            None => false,
        };
        if abandoned {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Who wrote a temporary file.
#[derive(Debug, PartialEq, Eq)]
enum Writer {
    /// A process of this machine.
    Here(i32),
    /// Another machine.
    Elsewhere,
    /// An earlier version (`*.tmp<pid>`, no machine name).
    Old,
}

/// The writer of the temporary file `name`; `None` when it is not one.
fn temporary_writer(name: &str) -> Option<Writer> {
    if let Some((_, tail)) = name.rsplit_once(".tmp-") {
        let (host, pid) = tail.rsplit_once('-')?;
        let pid: i32 = pid.parse().ok()?;
        return Some(if host == HOST.as_str() {
            Writer::Here(pid)
        } else {
            Writer::Elsewhere
        });
    }
    let (_, tail) = name.rsplit_once(".tmp")?;
    (!tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit())).then_some(Writer::Old)
}

/// Whether process `pid` exists on this machine.
fn process_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temporaries_of_writers_that_are_gone_are_removed() {
        let dir = std::env::temp_dir().join(format!("gst-emotion-tmp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A child that has exited: its pid is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let files = [
            (
                format!("a.jsonl.tmp-{}-{}", *HOST, std::process::id()),
                true,
            ),
            (format!("b.jsonl.tmp-{}-{gone}", *HOST), false),
            ("c.jsonl.tmp-elsewhere.example-77".to_string(), true),
            ("d.jsonl.tmp123".to_string(), false),
            ("e.jsonl".to_string(), true),
        ];
        for (name, _) in &files {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        remove_stale_temporaries(&dir);
        for (name, kept) in &files {
            assert_eq!(dir.join(name).exists(), *kept, "{name}");
        }
        assert_eq!(temporary_writer("x.tmp-h-o-st-12"), Some(Writer::Elsewhere));
        assert_eq!(temporary_writer("x.json"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_written_file_replaces_the_old_one_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("gst-emotion-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.jsonl");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
