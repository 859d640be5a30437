//! Where the project keeps what setup installs and what it learns at run time: one
//! cache folder (`$GST_EMOTION_CACHE`, else `~/.cache/gst-emotion`) with `bundles/`,
//! `whisper/`, `vad/`, `media/` and `validated/` inside.

use std::path::PathBuf;

/// The project's cache folder: `$GST_EMOTION_CACHE`, else `~/.cache/gst-emotion`.
pub fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("GST_EMOTION_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/gst-emotion")))
}
