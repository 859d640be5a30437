//! Isolated forward passes (run by scripts/bench-batch): replays the window inputs an
//! `analyze --debug` run dumped (`wNNNNNN_<input>.npy` and `wNNNNNN_text.txt` per
//! window, in every folder given) through the bundle's model, one window at a time
//! with nothing else running, and prints the total forward time — what `analyze`'s
//! wall time is compared with.
//!
//!   cargo run --release --example bench_forward -- BUNDLE_DIR DUMP_DIR...
//!
//! Last line: `windows N forward_seconds S`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use gst_emotion::infer::{FORWARD_NANOS, InputTensor, Model, ModelOptions, Prepared};

/// A little-endian .npy file as written by `output::npy` (f4, i8 or u1).
fn read_npy(path: &Path) -> Result<InputTensor, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = || format!("{}: not an .npy file this tool reads", path.display());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad());
    }
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header =
        std::str::from_utf8(bytes.get(10..10 + header_len).ok_or_else(bad)?).map_err(|_| bad())?;
    let data = &bytes[10 + header_len..];
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(bad)?;
    let shape: Vec<i64> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let of = |size: usize| data.chunks_exact(size);
    if header.contains("'<f4'") {
        let data = of(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok(InputTensor::F32 { shape, data })
    } else if header.contains("'<i8'") {
        let data = of(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Ok(InputTensor::I64 { shape, data })
    } else if header.contains("'|u1'") {
        Ok(InputTensor::U8 {
            shape,
            data: data.to_vec(),
        })
    } else {
        Err(bad())
    }
}

/// Every dumped window of `dir`: its inputs by name and its text.
fn windows(dir: &Path) -> Result<Vec<Prepared>, String> {
    let mut by_window: BTreeMap<String, Prepared> = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((window, rest)) = name.split_once('_') else {
            continue;
        };
        let empty = || Prepared {
            inputs: BTreeMap::new(),
            text: String::new(),
            frames: Vec::new(),
            frame_times: Vec::new(),
            faces: None,
            timings: Vec::new(),
            face_stage: None,
        };
        if rest == "text.txt" {
            let text = std::fs::read_to_string(entry.path()).map_err(|e| e.to_string())?;
            by_window.entry(window.into()).or_insert_with(empty).text = text;
        } else if let Some(input) = rest.strip_suffix(".npy") {
            let tensor = read_npy(&entry.path())?;
            by_window
                .entry(window.into())
                .or_insert_with(empty)
                .inputs
                .insert(input.into(), tensor);
        }
    }
    // Output dumps (logits, probabilities) share the prefix: only windows with inputs.
    Ok(by_window
        .into_values()
        .filter(|p| !p.inputs.is_empty())
        .collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: bench_forward BUNDLE_DIR DUMP_DIR...");
        std::process::exit(2);
    }
    let model = Model::shared(Path::new(&args[1]), ModelOptions::default())?;
    let mut all = Vec::new();
    for dir in &args[2..] {
        all.extend(windows(Path::new(dir))?);
    }
    if all.is_empty() {
        return Err("no dumped window inputs found".into());
    }
    // Only the model's inputs are replayed: the heads' output dumps are not inputs.
    let names: Vec<String> = model.bundle.manifest.inputs.keys().cloned().collect();
    let before = FORWARD_NANOS.load(Ordering::Relaxed);
    let started = std::time::Instant::now();
    let n = all.len();
    for mut p in all {
        p.inputs.retain(|k, _| names.contains(k));
        model.predict(p)?;
    }
    let wall = started.elapsed().as_secs_f64();
    let forward = (FORWARD_NANOS.load(Ordering::Relaxed) - before) as f64 / 1e9;
    println!(
        "{n} windows one at a time: forward {forward:.1} s ({:.2} s per window), wall {wall:.1} s",
        forward / n as f64
    );
    println!("windows {n} forward_seconds {forward:.3}");
    Ok(())
}
