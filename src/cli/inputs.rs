//! What `analyze` reads: command-line inputs expanded into a sorted list of URIs
//! (files, folders, globs, URIs, @lists), shards of that list, and output names.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};

/// Extensions taken from directories (other files there are ignored).
const MEDIA_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "flv", "ogv", "wmv", "3gp",
    "wav", "mp3", "m4a", "aac", "flac", "ogg", "opus", "jpg", "jpeg", "png", "bmp", "webp",
];

/// One input: what the user gave and the URI it plays from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Input {
    /// The input as listed (path or URI).
    pub name: String,
    /// URI for uridecodebin.
    pub uri: String,
}

/// Expands the command-line inputs into a sorted, de-duplicated list.
pub fn expand_inputs(args: &[String]) -> anyhow::Result<Vec<Input>> {
    let mut out = Vec::new();
    for arg in args {
        if let Some(list) = arg.strip_prefix('@') {
            let text = std::fs::read_to_string(list)
                .with_context(|| format!("reading input list {list}"))?;
            let lines: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect();
            out.extend(expand_inputs(&lines)?);
        } else if arg.contains("://") {
            out.push(Input {
                name: arg.clone(),
                uri: arg.clone(),
            });
        } else if Path::new(arg).is_dir() {
            let mut stack = vec![PathBuf::from(arg)];
            while let Some(dir) = stack.pop() {
                for entry in
                    std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
                {
                    let path = entry?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path
                        .extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| MEDIA_EXTENSIONS.contains(&e.to_lowercase().as_str()))
                    {
                        out.push(file_input(&path));
                    }
                }
            }
        } else if arg.contains(['*', '?', '[']) {
            let paths = glob::glob(arg).map_err(|e| anyhow!("bad pattern {arg}: {e}"))?;
            out.extend(
                paths
                    .filter_map(Result::ok)
                    .filter(|p| p.is_file())
                    .map(|p| file_input(&p)),
            );
        } else {
            // A missing file still becomes an input: it gets an error record.
            out.push(file_input(Path::new(arg)));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The input of a local file (absolute `file://` URI).
pub fn file_input(path: &Path) -> Input {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let uri = gst::glib::filename_to_uri(&abs, None)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("file://{}", abs.display()));
    Input {
        name: path.display().to_string(),
        uri,
    }
}

/// FNV-1a: a hash that is the same on every machine and Rust version.
pub fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// A `--shard I/N` that is not one.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// Not `I/N`.
    #[error("use I/N, e.g. 0/4")]
    Form,
    /// I or N is not a whole number.
    #[error("{0:?} is not a number")]
    NotANumber(String),
    /// N is 0, or I is not below N.
    #[error("shard {0}/{1}: need 0 <= I < N")]
    OutOfRange(u64, u64),
}

/// Parses `--shard I/N`.
pub fn parse_shard(s: &str) -> Result<(u64, u64), ShardError> {
    let (i, n) = s.split_once('/').ok_or(ShardError::Form)?;
    let number = |t: &str| {
        t.parse::<u64>()
            .map_err(|_| ShardError::NotANumber(t.to_string()))
    };
    let (i, n) = (number(i)?, number(n)?);
    if n == 0 || i >= n {
        return Err(ShardError::OutOfRange(i, n));
    }
    Ok((i, n))
}

/// Whether `input` belongs to shard `i` of `n` (by its URI).
pub fn in_shard(input: &Input, (i, n): (u64, u64)) -> bool {
    stable_hash(&input.uri) % n == i
}

/// Output base name: the file stem plus a short hash of the URI (so equal names in
/// different folders do not collide).
pub fn output_name(input: &Input) -> String {
    let stem = input
        .uri
        .rsplit('/')
        .next()
        .unwrap_or("input")
        .split(['?', '#'])
        .next()
        .unwrap_or("input");
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    format!(
        "{}.{:08x}",
        if clean.is_empty() { "input" } else { &clean },
        stable_hash(&input.uri) as u32
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover_everything() {
        let inputs: Vec<Input> = (0..200)
            .map(|i| Input {
                name: format!("f{i}.mp4"),
                uri: format!("file:///data/f{i}.mp4"),
            })
            .collect();
        let mut seen = vec![0; inputs.len()];
        for i in 0..4 {
            for (k, input) in inputs.iter().enumerate() {
                if in_shard(input, (i, 4)) {
                    seen[k] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&c| c == 1));
        // Stable: FNV-1a of a fixed string.
        assert_eq!(stable_hash("a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn names_and_shards() {
        let i = Input {
            name: "x".into(),
            uri: "file:///a/b/My%20clip.final.mp4".into(),
        };
        assert!(output_name(&i).starts_with("My_20clip_final."));
        assert_eq!(parse_shard("1/4").unwrap(), (1, 4));
        assert!(parse_shard("4/4").is_err());
    }
}
