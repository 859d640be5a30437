//! `gst-emotion analyze`: emotion analysis over many files, restartable and shardable.
//!
//! Every input runs through `uridecodebin → emotionsense` (registered in-process);
//! several run in parallel (`--jobs`) and share one model per device, so their windows
//! batch together. Each finished input gets `NAME.jsonl`, `NAME.csv`, `NAME.vtt` (and
//! `NAME.reference.json` with `--format reference`), written under temporary names and
//! renamed when complete, then `NAME.done.json`; a rerun skips inputs that have it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, anyhow};
use gst::prelude::*;
use serde_json::{Value, json};

/// Extensions taken from directories (other files there are ignored).
const MEDIA_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "flv", "ogv", "wmv", "3gp",
    "wav", "mp3", "m4a", "aac", "flac", "ogg", "opus",
];

/// Options of `analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Files, directories (searched recursively), glob patterns, file:// rtsp:// http(s)://
    /// URIs, or @list.txt (one input per line).
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Model bundle: a folder, "default" (the default bundle scripts/setup builds; used
    /// when it is installed), or "none" (windows carry measurements and transcripts only).
    #[arg(long)]
    pub bundle: Option<String>,
    /// Device for the model: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Inputs processed in parallel (they share one model per device).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Only inputs of shard I of N (0-based), by a hash of each input that is the same
    /// on every machine.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Redo inputs that already have complete outputs.
    #[arg(long)]
    pub force: bool,
    /// Also write the reference service's JSON (`NAME.reference.json`).
    #[arg(long, value_parser = ["reference"])]
    pub format: Option<String>,
    /// Window mode: sliding or utterance.
    #[arg(long, default_value = "utterance")]
    pub window_mode: String,
    /// Write, per input, what the model saw in DIR/NAME/: each window's sampled frames
    /// as PNG, its input tensors and logits/probabilities as .npy, and a summary.txt.
    #[arg(long, value_name = "DIR")]
    pub debug: Option<PathBuf>,
    /// More emotionsense properties, as name=value (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub properties: Vec<String>,
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or("use I/N, e.g. 0/4")?;
    let (i, n): (u64, u64) = (
        i.parse().map_err(|_| format!("{i:?} is not a number"))?,
        n.parse().map_err(|_| format!("{n:?} is not a number"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= I < N"));
    }
    Ok((i, n))
}

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

fn file_input(path: &Path) -> Input {
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
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
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

/// Runs `analyze`; returns the process exit code (0 all done, 1 some failed).
pub fn run(args: AnalyzeArgs) -> anyhow::Result<u8> {
    gst::init()?;
    crate::register_static()?;
    // Bad --set values are a usage error, reported before any work.
    let probe = gst::ElementFactory::make("emotionsense").build()?;
    for p in &args.properties {
        super::set_property_checked(&probe, p).map_err(|e| anyhow!(e))?;
    }
    drop(probe);
    let all = expand_inputs(&args.inputs)?;
    let inputs: Vec<Input> = match args.shard {
        Some(shard) => all.into_iter().filter(|i| in_shard(i, shard)).collect(),
        None => all,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    remove_stale_temporaries(&args.out);
    let total = inputs.len();
    let progress = Progress::new(total);
    let queue = Mutex::new(inputs.into_iter().enumerate());
    let records = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..args.jobs.max(1) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((k, input)) = next else { break };
                    let bar = progress.start(&input.name);
                    let record = process(&args, &input);
                    let status = record["status"].as_str().unwrap_or("?").to_string();
                    progress.finish(
                        bar,
                        &format!(
                            "[{}/{total}] {status:<7} {} {}",
                            k + 1,
                            input.name,
                            record["error"].as_str().unwrap_or("")
                        ),
                    );
                    records
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(record);
                }
            });
        }
    });
    let mut records = records.into_inner().unwrap_or_else(|e| e.into_inner());
    records.sort_by(|a, b| a["input"].as_str().cmp(&b["input"].as_str()));
    let failed = records.iter().filter(|r| r["status"] == "error").count();
    let summary = json!({
        "shard": args.shard.map(|(i, n)| format!("{i}/{n}")),
        "inputs": records.len(),
        "succeeded": records.iter().filter(|r| r["status"] == "ok").count(),
        "skipped": records.iter().filter(|r| r["status"] == "skipped").count(),
        "failed": failed,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "forward_seconds": crate::infer::engine::FORWARD_NANOS.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9,
        "video_seconds": 0.0 + records.iter().filter_map(|r| r["duration"].as_f64()).sum::<f64>(),
        "files": records,
    });
    let name = match args.shard {
        Some((i, n)) => format!("summary.shard-{i}-of-{n}.json"),
        None => "summary.json".to_string(),
    };
    write_atomic(
        &args.out.join(name),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!("{} input(s): {} failed", summary["inputs"], failed);
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Progress: bars (overall, and one spinner per running input with its elapsed time)
/// on a terminal, plain log lines otherwise.
struct Progress {
    multi: Option<indicatif::MultiProgress>,
    overall: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(total: usize) -> Self {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() {
            return Self {
                multi: None,
                overall: None,
            };
        }
        let multi = indicatif::MultiProgress::new();
        let overall = multi.add(indicatif::ProgressBar::new(total as u64));
        overall.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} files  {per_sec}  ETA {eta}  elapsed {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self {
            multi: Some(multi),
            overall: Some(overall),
        }
    }

    fn start(&self, name: &str) -> Option<indicatif::ProgressBar> {
        let bar = self
            .multi
            .as_ref()?
            .add(indicatif::ProgressBar::new_spinner());
        bar.set_style(
            indicatif::ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(name.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Some(bar)
    }

    fn finish(&self, bar: Option<indicatif::ProgressBar>, line: &str) {
        match (&self.multi, &self.overall) {
            (Some(multi), Some(overall)) => {
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                let _ = multi.println(line);
                overall.inc(1);
            }
            _ => println!("{line}"),
        }
    }
}

/// `gst-emotion merge`: combines `summary*.json` of `dirs` into one summary (to `out` or
/// stdout). Returns the exit code: 0 when no input failed.
pub fn merge(dirs: &[PathBuf], out: Option<&Path>) -> anyhow::Result<u8> {
    let rank = |s: &str| match s {
        "ok" => 2,
        "skipped" => 1,
        _ => 0,
    };
    let mut best: BTreeMap<String, Value> = BTreeMap::new();
    let mut read = 0;
    for dir in dirs {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !(name.starts_with("summary") && name.ends_with(".json")) {
                continue;
            }
            let s: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
                .with_context(|| format!("{} is not a summary", path.display()))?;
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
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => println!("{text}"),
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Removes temporary files a killed run left behind (`*.tmp<pid>`).
fn remove_stale_temporaries(dir: &Path) {
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

/// Writes `data` to a temporary name and renames it over `path`.
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
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

/// Analyses one input and writes its outputs; returns its summary record.
fn process(args: &AnalyzeArgs, input: &Input) -> Value {
    let name = output_name(input);
    let done = args.out.join(format!("{name}.done.json"));
    if !args.force
        && let Ok(text) = std::fs::read_to_string(&done)
        && let Ok(mut record) = serde_json::from_str::<Value>(&text)
    {
        record["status"] = json!("skipped");
        return record;
    }
    let started = Instant::now();
    let result = analyse(args, input, &name).and_then(|windows| {
        write_outputs(args, &name, &windows)?;
        Ok(windows)
    });
    let mut record = json!({
        "input": input.name,
        "uri": input.uri,
        "output": name,
        "seconds": started.elapsed().as_secs_f64(),
    });
    match result {
        Ok(windows) => {
            record["status"] = json!("ok");
            record["windows"] = json!(windows.len());
            if windows.is_empty() && args.window_mode == "utterance" {
                record["note"] = json!(
                    "no speech found: utterance windows need speech; use --window-mode sliding for video without speech"
                );
            }
            record["duration"] = json!(
                windows
                    .iter()
                    .filter_map(|w| w["end"].as_f64())
                    .fold(0.0, f64::max)
            );
            if let Err(e) = write_atomic(
                &done,
                serde_json::to_string_pretty(&record)
                    .unwrap_or_default()
                    .as_bytes(),
            ) {
                record["status"] = json!("error");
                record["error"] = json!(format!("writing {}: {e}", done.display()));
            }
        }
        Err(e) => {
            record["status"] = json!("error");
            record["error"] = json!(format!("{e:#}"));
        }
    }
    record
}

/// Runs the pipeline on one input; returns one JSON record per window.
fn analyse(args: &AnalyzeArgs, input: &Input, name: &str) -> anyhow::Result<Vec<Value>> {
    if let Some(path) = input.uri.strip_prefix("file://")
        && !Path::new(&percent_decode(path)).exists()
    {
        return Err(anyhow!("no such file"));
    }
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("uridecodebin")
        .property("uri", &input.uri)
        .build()?;
    let sense = gst::ElementFactory::make("emotionsense").build()?;
    sense.set_property_from_str("window-mode", &args.window_mode);
    sense.set_property("device", &args.device);
    super::apply_bundle(&sense, args.bundle.as_deref());
    if let Some(debug) = &args.debug {
        sense.set_property("dump-dir", debug.join(name).to_string_lossy().as_ref());
    }
    for p in &args.properties {
        super::set_property_checked(&sense, p).map_err(|e| anyhow!(e))?;
    }
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()?;
    pipeline.add_many([&src, &sense, &sink])?;
    sense.link(&sink)?;
    // Link each decoded stream as it appears; streams of other kinds are ignored.
    let linked_streams = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = linked_streams.clone();
    let pipeline_weak = pipeline.downgrade();
    let sense_weak = sense.downgrade();
    src.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(sense)) = (pipeline_weak.upgrade(), sense_weak.upgrade()) else {
            return;
        };
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
        let Some(kind) = caps.and_then(|c| c.structure(0).map(|s| s.name().to_string())) else {
            return;
        };
        let (chain, target): (&[&str], &str) = if kind.starts_with("video/x-raw") {
            (&["queue", "videoconvert"], "video")
        } else if kind.starts_with("audio/x-raw") {
            (&["queue", "audioconvert", "audioresample"], "audio")
        } else {
            return;
        };
        let elements: Vec<gst::Element> = chain
            .iter()
            .filter_map(|f| gst::ElementFactory::make(f).build().ok())
            .collect();
        if elements.len() != chain.len() || pipeline.add_many(&elements).is_err() {
            return;
        }
        let linked = gst::Element::link_many(&elements).is_ok()
            && sense
                .request_pad_simple(target)
                .and_then(|sink_pad| elements.last()?.static_pad("src")?.link(&sink_pad).ok())
                .is_some()
            && elements[0]
                .static_pad("sink")
                .is_some_and(|s| pad.link(&s).is_ok());
        if linked {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            for e in &elements {
                let _ = e.sync_state_with_parent();
            }
        }
    });
    // A file whose demuxer finds no audio or video stream must not wait forever.
    let counter = linked_streams.clone();
    let pipeline_weak = pipeline.downgrade();
    src.connect_no_more_pads(move |_| {
        if counter.load(std::sync::atomic::Ordering::SeqCst) == 0
            && let Some(p) = pipeline_weak.upgrade()
        {
            let s = gst::Structure::new_empty("gst-emotion-no-streams");
            let _ = p.post_message(gst::message::Application::new(s));
        }
    });
    let bus = pipeline
        .bus()
        .ok_or_else(|| anyhow!("pipeline without bus"))?;
    pipeline.set_state(gst::State::Playing).map_err(|_| {
        let reason = bus
            .iter_filtered(&[gst::MessageType::Error])
            .find_map(|m| match m.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                _ => None,
            })
            .unwrap_or_else(|| "could not start the pipeline".into());
        anyhow!(reason)
    })?;
    let mut windows = Vec::new();
    let mut failure = None;
    // Stall watchdog: no message and no position change for this long is an error.
    const STALL: std::time::Duration = std::time::Duration::from_secs(60);
    let mut last_progress = Instant::now();
    let mut last_position = None;
    loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(1)) else {
            let position = pipeline.query_position::<gst::ClockTime>();
            if position != last_position {
                last_position = position;
                last_progress = Instant::now();
            } else if last_progress.elapsed() > STALL {
                failure = Some(format!(
                    "no progress for {} s: the input stalled",
                    STALL.as_secs()
                ));
                break;
            }
            continue;
        };
        last_progress = Instant::now();
        match msg.view() {
            gst::MessageView::Application(a)
                if a.structure()
                    .is_some_and(|s| s.name() == "gst-emotion-no-streams") =>
            {
                failure = Some("no audio or video stream found".to_string());
                break;
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure()
                    && s.name() == "emotion"
                {
                    windows.push(window_record(s));
                }
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                failure = Some(format!("{}", e.error()));
                break;
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    match failure {
        Some(e) => Err(anyhow!(e)),
        None => Ok(windows),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One window as a JSON object: times in seconds, labels, probabilities by label.
pub fn window_record(s: &gst::StructureRef) -> Value {
    let secs = |f: &str| s.get::<u64>(f).ok().map(|v| v as f64 / 1e9);
    let mut rec = serde_json::Map::new();
    rec.insert("index".into(), json!(s.get::<u64>("index").ok()));
    rec.insert("start".into(), json!(secs("start")));
    rec.insert("end".into(), json!(secs("end")));
    if let Ok(t) = s.get::<String>("transcript") {
        rec.insert("transcript".into(), json!(t));
    }
    for field in ["frames", "distinct-frames"] {
        if let Ok(v) = s.get::<u32>(field) {
            rec.insert(field.replace('-', "_"), json!(v));
        }
    }
    if let Ok(v) = s.get::<u64>("audio-samples") {
        rec.insert("audio_samples".into(), json!(v));
    }
    if let Ok(v) = s.get::<f64>("audio-rms") {
        rec.insert("audio_rms".into(), json!(v));
    }
    // Heads: every field H with H-labels and H-probs.
    for (field, _) in s.iter() {
        let Some(head) = field.strip_suffix("-labels") else {
            continue;
        };
        let labels: Vec<String> = s
            .get::<gst::Array>(field)
            .map(|a| a.iter().filter_map(|v| v.get::<String>().ok()).collect())
            .unwrap_or_default();
        let probs: Vec<f64> = s
            .get::<gst::Array>(format!("{head}-probs").as_str())
            .map(|a| a.iter().filter_map(|v| v.get::<f64>().ok()).collect())
            .unwrap_or_default();
        let by_label: BTreeMap<&str, f64> = labels
            .iter()
            .map(String::as_str)
            .zip(probs.iter().copied())
            .collect();
        let head_key = head.replace('-', "_");
        rec.insert(head_key.clone(), json!(s.get::<String>(head).ok()));
        rec.insert(
            format!("{head_key}_confidence"),
            json!(s.get::<f64>(format!("{head}-confidence").as_str()).ok()),
        );
        rec.insert(
            format!("{head_key}_smoothed"),
            json!(s.get::<String>(format!("{head}-smoothed").as_str()).ok()),
        );
        rec.insert(format!("{head_key}_labels"), json!(labels));
        rec.insert(format!("{head_key}_probs"), json!(by_label));
    }
    // Fusion bundles: branches, flags and every face.
    if let Ok(b) = s.get::<String>("branches") {
        rec.insert("branches".into(), json!(b));
        rec.insert(
            "low_confidence".into(),
            json!(s.get::<bool>("low-confidence").ok()),
        );
        let flags: Vec<String> = s
            .get::<gst::Array>("flags")
            .map(|a| a.iter().filter_map(|v| v.get::<String>().ok()).collect())
            .unwrap_or_default();
        rec.insert("flags".into(), json!(flags));
        for f in ["text-sentiment-compound", "face-valence"] {
            if let Ok(v) = s.get::<f64>(f) {
                rec.insert(f.replace('-', "_"), json!(v));
            }
        }
        let labels: Vec<String> = s
            .get::<gst::Array>("emotion-labels")
            .map(|a| a.iter().filter_map(|v| v.get::<String>().ok()).collect())
            .unwrap_or_default();
        let faces: Vec<Value> = s
            .get::<gst::Array>("faces")
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.get::<gst::Structure>().ok())
                    .map(|f| {
                        let probs: BTreeMap<&str, f64> = labels
                            .iter()
                            .map(String::as_str)
                            .zip(
                                f.get::<gst::Array>("emotion-probs")
                                    .map(|a| a.iter().filter_map(|v| v.get::<f64>().ok()).collect())
                                    .unwrap_or_else(|_| Vec::new()),
                            )
                            .collect();
                        json!({
                            "box": [
                                f.get::<f64>("x").ok(),
                                f.get::<f64>("y").ok(),
                                f.get::<f64>("width").ok(),
                                f.get::<f64>("height").ok()
                            ],
                            "frames": f.get::<u32>("frames").ok(),
                            "score": f.get::<f64>("score").ok(),
                            "upstream": f.get::<bool>("upstream").ok(),
                            "emotion": f.get::<String>("emotion").ok(),
                            "emotion_confidence": f.get::<f64>("emotion-confidence").ok(),
                            "emotion_probs": probs,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        rec.insert("faces".into(), json!(faces));
    }
    Value::Object(rec)
}

fn write_outputs(args: &AnalyzeArgs, name: &str, windows: &[Value]) -> anyhow::Result<()> {
    let out = |ext: &str| args.out.join(format!("{name}.{ext}"));
    // JSON Lines.
    let mut jsonl = String::new();
    for w in windows {
        jsonl.push_str(&serde_json::to_string(w)?);
        jsonl.push('\n');
    }
    write_atomic(&out("jsonl"), jsonl.as_bytes())?;
    // CSV: fixed columns, then one column per class probability.
    let heads: Vec<(String, Vec<String>)> = windows
        .first()
        .and_then(|w| w.as_object())
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| {
                    let head = k.strip_suffix("_labels")?;
                    let labels = v
                        .as_array()?
                        .iter()
                        .filter_map(|l| l.as_str().map(str::to_owned))
                        .collect();
                    Some((head.to_string(), labels))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut csv = String::from("index,start,end,transcript");
    for (head, labels) in &heads {
        csv.push_str(&format!(",{head},{head}_confidence"));
        for l in labels {
            csv.push_str(&format!(",{head}_{l}"));
        }
    }
    csv.push('\n');
    let cell = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
        other => other.to_string(),
    };
    for w in windows {
        csv.push_str(&format!(
            "{},{},{},{}",
            cell(&w["index"]),
            cell(&w["start"]),
            cell(&w["end"]),
            cell(&w["transcript"])
        ));
        for (head, labels) in &heads {
            csv.push_str(&format!(
                ",{},{}",
                cell(&w[head.as_str()]),
                cell(&w[format!("{head}_confidence")])
            ));
            for l in labels {
                csv.push_str(&format!(
                    ",{}",
                    cell(&w[format!("{head}_probs")][l.as_str()])
                ));
            }
        }
        csv.push('\n');
    }
    write_atomic(&out("csv"), csv.as_bytes())?;
    // WebVTT: one cue per window.
    let mut vtt = String::from("WEBVTT\n\n");
    for w in windows {
        let (Some(start), Some(end)) = (w["start"].as_f64(), w["end"].as_f64()) else {
            continue;
        };
        let mut line = heads
            .iter()
            .filter_map(|(h, _)| {
                Some(format!(
                    "{} {:.2}",
                    w[h.as_str()].as_str()?,
                    w[format!("{h}_confidence")].as_f64()?
                ))
            })
            .collect::<Vec<_>>()
            .join(" | ");
        if let Some(t) = w["transcript"].as_str().filter(|t| !t.is_empty()) {
            if !line.is_empty() {
                line = format!("[{line}] ");
            }
            line.push_str(t);
        }
        if line.is_empty() {
            line = "…".into();
        }
        vtt.push_str(&format!(
            "{} --> {}\n{}\n\n",
            vtt_time(start),
            vtt_time(end),
            line.replace("-->", "->")
        ));
    }
    write_atomic(&out("vtt"), vtt.as_bytes())?;
    write_atomic(&out("svg"), timeline_svg(windows, &heads).as_bytes())?;
    if args.format.as_deref() == Some("reference") {
        let utterances: Vec<Value> = windows
            .iter()
            .map(|w| {
                let top3 = |head: &str| -> Vec<Value> {
                    let mut v: Vec<(String, f64)> = w[format!("{head}_probs")]
                        .as_object()
                        .map(|o| {
                            o.iter()
                                .filter_map(|(k, p)| Some((k.clone(), p.as_f64()?)))
                                .collect()
                        })
                        .unwrap_or_default();
                    v.sort_by(|a, b| b.1.total_cmp(&a.1));
                    v.into_iter()
                        .take(3)
                        .map(
                            |(label, confidence)| json!({"label": label, "confidence": confidence}),
                        )
                        .collect()
                };
                json!({
                    "start_time": w["start"], "end_time": w["end"],
                    "text": w["transcript"].as_str().unwrap_or(""),
                    "emotions": top3("emotion"), "sentiments": top3("sentiment"),
                })
            })
            .collect();
        write_atomic(
            &out("reference.json"),
            serde_json::to_string_pretty(&json!({"utterances": utterances}))?.as_bytes(),
        )?;
    }
    Ok(())
}

/// The timeline plot: one line per emotion (the first head) over window centres; a
/// placeholder text when there are no probabilities to plot.
fn timeline_svg(windows: &[Value], heads: &[(String, Vec<String>)]) -> String {
    use plotters::prelude::*;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 360)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let Some((head, labels)) = heads.first() else {
            let _ = root.draw(&Text::new(
                "no model probabilities (run with --bundle)",
                (20, 30),
                ("sans-serif", 18).into_font(),
            ));
            let _ = root.present();
            drop(root);
            return svg;
        };
        let end = windows
            .iter()
            .filter_map(|w| w["end"].as_f64())
            .fold(1.0, f64::max);
        let chart = ChartBuilder::on(&root)
            .caption(
                format!("{head} probabilities over time"),
                ("sans-serif", 20),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .right_y_label_area_size(0)
            .build_cartesian_2d(0.0..end, 0.0..1.0);
        if let Ok(mut chart) = chart {
            let _ = chart
                .configure_mesh()
                .x_desc("seconds")
                .y_desc("probability")
                .draw();
            for (k, label) in labels.iter().enumerate() {
                let color = Palette99::pick(k).to_rgba();
                let points: Vec<(f64, f64)> = windows
                    .iter()
                    .filter_map(|w| {
                        let centre = (w["start"].as_f64()? + w["end"].as_f64()?) / 2.0;
                        Some((centre, w[format!("{head}_probs")][label.as_str()].as_f64()?))
                    })
                    .collect();
                if let Ok(series) =
                    chart.draw_series(LineSeries::new(points, color.stroke_width(2)))
                {
                    series.label(label.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                }
            }
            let _ = chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw();
        }
        let _ = root.present();
    }
    svg
}

fn vtt_time(s: f64) -> String {
    let ms = (s * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
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
    fn names_and_times() {
        let i = Input {
            name: "x".into(),
            uri: "file:///a/b/My%20clip.final.mp4".into(),
        };
        assert!(output_name(&i).starts_with("My_20clip_final."));
        assert_eq!(vtt_time(3723.5), "01:02:03.500");
        assert_eq!(parse_shard("1/4"), Ok((1, 4)));
        assert!(parse_shard("4/4").is_err());
        assert_eq!(percent_decode("/a/My%20clip.mp4"), "/a/My clip.mp4");
    }
}
