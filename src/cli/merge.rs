//! `gst-emotion merge`: combines the `summary*.json` of `analyze` runs (shards) into one;
//! folders or `s3://` prefixes, as `analyze --out` takes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use serde_json::{Value, json};

use crate::output::store::Store;

/// `gst-emotion merge`: combines `summary*.json` of `dirs` into one summary (to `out` or
/// stdout). Returns the exit code: 0 when no input failed.
pub fn run(dirs: &[PathBuf], out: Option<&Path>) -> anyhow::Result<u8> {
    let rank = |s: &str| match s {
        "ok" => 2,
        "skipped" => 1,
        _ => 0,
    };
    let mut best: BTreeMap<String, Value> = BTreeMap::new();
    let mut read = 0;
    for dir in dirs {
        let store = Store::open(dir)?;
        let mut names = store.names()?;
        names.sort();
        for name in names {
            if !(name.starts_with("summary") && name.ends_with(".json")) {
                continue;
            }
            let Some(text) = store.read(&name)? else {
                continue;
            };
            let s: Value = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not a summary", store.shown(&name)))?;
            read += 1;
            for f in s["files"].as_array().into_iter().flatten() {
                let key = f["uri"].as_str().unwrap_or_default().to_string();
                let status = f["status"].as_str().unwrap_or("");
                let keep = best
                    .get(&key)
                    .is_none_or(|old| rank(status) > rank(old["status"].as_str().unwrap_or("")));
                if keep {
                    best.insert(key, f.clone());
                }
            }
        }
    }
    if read == 0 {
        return Err(anyhow!("no summary*.json in {dirs:?}"));
    }
    let files: Vec<Value> = best.into_values().collect();
    let count = |st: &str| files.iter().filter(|f| f["status"] == st).count();
    let failed = count("error");
    let merged = json!({
        "summaries": read,
        "inputs": files.len(),
        "succeeded": count("ok"),
        "skipped": count("skipped"),
        "failed": failed,
        "files": files,
    });
    let text = serde_json::to_string_pretty(&merged)?;
    match out {
        Some(path) => {
            let (store, name) = Store::open_file(path)?;
            store.write(&name, text.as_bytes())?;
        }
        None => println!("{text}"),
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
