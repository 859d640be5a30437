//! Writing output files so a reader never sees half of one: everything is written
//! under a temporary name (`NAME.EXT.tmp<pid>`) and renamed into place.

use std::io::Write;
use std::path::Path;

/// Writes `data` to a temporary name next to `path`, syncs it and renames it over `path`.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Removes temporary files a killed writer left in `dir` (`*.tmp<pid>`).
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some((_, tail)) = name.rsplit_once(".tmp")
            && !tail.is_empty()
            && tail.chars().all(|c| c.is_ascii_digit())
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
