//! Isolated forward passes: replays the window inputs an `analyze --debug` run dumped
//! (`wNNNNNN_<input>.npy` and `wNNNNNN_text.txt` per window, in every folder given)
//! through the bundle's model.
//!
//!   bench_forward BUNDLE_DIR DUMP_DIR...
//!       one window at a time with nothing else running, the total forward time (what
//!       scripts/bench-batch compares `analyze`'s wall time with). Last line:
//!       `windows N forward_seconds S`.
//!   bench_forward BUNDLE_DIR DUMP_DIR... --device D [--precision P] [--batches 1,8,32]
//!       [--iterations K]
//!       ms per window at each batch size on device D (windows repeated to fill a
//!       batch), and parity: every window through D in precision P against the CPU in
//!       fp32 (scripts/gpu-check). Lines:
//!       `forward device D precision P batch B ms_per_window X`
//!       `parity device D precision P windows N max_dp X same_argmax K`

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use std::time::{Duration, Instant};

use gst_emotion::infer::{
    DeviceChoice, FORWARD_NANOS, InputTensor, Model, ModelError, ModelOptions, ModelOutput,
    Precision, Prepared,
};
use gst_emotion::output::argmax;

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

/// The value after `flag` in `args` (removing both), if present.
fn take(args: &mut Vec<String>, flag: &str) -> Result<Option<String>, String> {
    let Some(i) = args.iter().position(|a| a == flag) else {
        return Ok(None);
    };
    if i + 1 >= args.len() {
        return Err(format!("{flag} needs a value"));
    }
    let value = args.remove(i + 1);
    args.remove(i);
    Ok(Some(value))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let device = take(&mut args, "--device")?;
    let precision: Precision = take(&mut args, "--precision")?
        .unwrap_or_default()
        .parse()?;
    let batches: Vec<usize> = take(&mut args, "--batches")?
        .unwrap_or_else(|| "1,8,32".into())
        .split(',')
        .map(|b| {
            b.trim()
                .parse::<usize>()
                .map_err(|e| format!("--batches: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let iterations: usize = take(&mut args, "--iterations")?
        .unwrap_or_else(|| "3".into())
        .parse()?;
    if args.len() < 2 {
        eprintln!(
            "usage: bench_forward BUNDLE_DIR DUMP_DIR... [--device D [--precision P] \
             [--batches 1,8,32] [--iterations K]]"
        );
        std::process::exit(2);
    }
    let bundle = Path::new(&args[0]);
    let mut all = Vec::new();
    for dir in &args[1..] {
        all.extend(windows(Path::new(dir))?);
    }
    if all.is_empty() {
        return Err("no dumped window inputs found".into());
    }
    match device {
        None => one_at_a_time(bundle, all),
        Some(d) => batches_and_parity(bundle, all, d.parse()?, precision, &batches, iterations),
    }
}

/// Only the model's inputs are replayed: the heads' output dumps are not inputs.
fn keep_inputs(model: &Model, all: &mut [Prepared]) {
    let names: Vec<String> = model.bundle.manifest.inputs.keys().cloned().collect();
    for p in all {
        p.inputs.retain(|k, _| names.contains(k));
    }
}

fn one_at_a_time(bundle: &Path, mut all: Vec<Prepared>) -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::shared(bundle, ModelOptions::default())?;
    keep_inputs(&model, &mut all);
    let before = FORWARD_NANOS.load(Ordering::Relaxed);
    let started = std::time::Instant::now();
    let n = all.len();
    for p in all {
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

fn batches_and_parity(
    bundle: &Path,
    mut all: Vec<Prepared>,
    device: DeviceChoice,
    precision: Precision,
    batches: &[usize],
    iterations: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let largest = batches.iter().copied().max().unwrap_or(1).max(1);
    let options = |device, precision| ModelOptions {
        device,
        precision,
        max_batch: largest,
        max_wait: Duration::from_millis(5),
        ..ModelOptions::default()
    };
    let model = Model::shared(bundle, options(device, precision))?;
    keep_inputs(&model, &mut all);
    println!("model on {:?} in {precision}", model.device);
    let probs = |outputs: Vec<Result<ModelOutput, ModelError>>| {
        outputs
            .into_iter()
            .map(|r| r.map(|o| o.probs))
            .collect::<Result<Vec<_>, _>>()
    };
    for &batch in batches {
        let windows: Vec<Prepared> = all.iter().cycle().take(batch).cloned().collect();
        model.predict_many(windows.clone()); // warm-up: libtorch specialises per shape
        let started = Instant::now();
        for _ in 0..iterations {
            probs(model.predict_many(windows.clone()))?;
        }
        let per_window = started.elapsed().as_secs_f64() / (iterations * batch) as f64;
        println!(
            "forward device {device} precision {precision} batch {batch} ms_per_window {:.3}",
            per_window * 1e3
        );
    }
    let here = probs(model.predict_many(all.clone()))?;
    let cpu = Model::shared(bundle, options(DeviceChoice::Cpu, Precision::Fp32))?;
    let reference = probs(cpu.predict_many(all.clone()))?;
    let (mut worst, mut same) = (0.0f64, 0usize);
    for (a, b) in here.iter().zip(&reference) {
        let agree = a.iter().zip(b).all(|(x, y)| argmax(x) == argmax(y));
        same += usize::from(agree);
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            worst = worst.max((x - y).abs());
        }
    }
    println!(
        "parity device {device} precision {precision} windows {} max_dp {worst:.3e} same_argmax {same}",
        all.len()
    );
    Ok(())
}
