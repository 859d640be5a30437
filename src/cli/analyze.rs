//! `gst-emotion analyze`: emotion analysis over many files, restartable and shardable.
//!
//! Every input runs through `uridecodebin → emotionsense` (registered in-process);
//! several run in parallel (`--jobs`) and share one model per device, so their windows
//! batch together. Each finished input gets `NAME.jsonl`, `NAME.csv`, `NAME.vtt`,
//! `NAME.svg` (and `NAME.reference.json` with `--format reference`), written under
//! temporary names and renamed when complete, then `NAME.done.json`; a rerun skips
//! inputs that have it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, anyhow};
use gst::prelude::*;
use serde_json::{Value, json};

use super::inputs::{Input, expand_inputs, in_shard, output_name, parse_shard};
use crate::bundle::BundleChoice;
use crate::output::store::Store;
use crate::output::{WindowResult, csv, jsonl, reference, timeline, vtt};
use crate::pipeline::percent_decode;
use crate::pipeline::run::run_file;
use crate::publish::Publisher;

/// Options of `analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Files, directories (searched recursively), glob patterns, file:// rtsp:// http(s)://
    /// URIs, or @list.txt (one input per line).
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// Output folder, or s3://BUCKET/PREFIX (the AWS_* environment; AWS_ENDPOINT_URL
    /// for S3-compatible servers).
    #[arg(long, required_unless_present = "list_inputs")]
    pub out: Option<PathBuf>,
    /// Print the inputs (after --shard), one URI per line, and analyse nothing: the
    /// list a scheduler hands out (each line is a valid input for `@list`, with the
    /// same output names).
    #[arg(long)]
    pub list_inputs: bool,
    /// The file name of this run's summary in the output (default: summary.json, or
    /// summary.shard-I-of-N.json with --shard): runs that share an output each name
    /// their own, and `gst-emotion merge` reads them all.
    #[arg(long, value_name = "NAME", value_parser = summary_name)]
    pub summary: Option<String>,
    /// Also print the run's summary (what summary.json holds) as one JSON line at the
    /// end of stdout: for a scheduler that cannot read the output store.
    #[arg(long)]
    pub print_summary: bool,
    /// Model bundle: a folder, "default" (the default bundle scripts/setup builds),
    /// "accurate" (`scripts/setup --accurate`; used when it is built, else the default
    /// bundle when it is), or "none" (windows carry measurements and transcripts only).
    #[arg(long)]
    pub bundle: Option<BundleChoice>,
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
    /// Window mode: auto (utterances where there is speech, window-length windows over
    /// the rest: the whole timeline), utterance (speech only) or sliding.
    #[arg(long, default_value = "auto", value_parser = ["auto", "utterance", "sliding"])]
    pub window_mode: String,
    /// Write, per input, what the model saw in DIR/NAME/: each window's sampled frames
    /// as PNG, its input tensors and logits/probabilities as .npy, and a summary.txt.
    #[arg(long, value_name = "DIR")]
    pub debug: Option<PathBuf>,
    /// More emotionsense properties, as name=value (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub properties: Vec<String>,
    /// Also write `NAME.frames.csv`: one row per sampled frame of each face (the robot
    /// CLI's columns: time, frame_index, face_id, label, confidence, one column per
    /// class, then window), from the bundle's per-frame head (docs/robot.md).
    #[arg(long)]
    pub per_frame: bool,
    /// Publishing each window as it finishes (docs/publish.md); records' `source` is
    /// the input.
    #[command(flatten)]
    pub publish: super::publish::PublishArgs,
}

/// A summary's file name: `summary*.json` (what `merge` reads), no folders.
fn summary_name(s: &str) -> Result<String, SummaryNameError> {
    let plain = !s.contains(['/', '\\']) && s.starts_with("summary") && s.ends_with(".json");
    plain.then(|| s.to_string()).ok_or(SummaryNameError)
}

/// A `--summary` that `merge` would not find.
#[derive(Debug, thiserror::Error)]
#[error("a file name summary*.json (merge reads those), without folders")]
pub struct SummaryNameError;

impl AnalyzeArgs {
    /// The output folder (clap requires `--out` unless only listing inputs).
    fn out_dir(&self) -> &Path {
        self.out.as_deref().unwrap_or(Path::new("."))
    }
}

/// Runs `analyze`; returns the process exit code (0 all done, 1 some failed).
pub fn run(args: AnalyzeArgs) -> anyhow::Result<u8> {
    gst::init()?;
    crate::register_static()?;
    // Bad --set values are a usage error, reported before any work.
    let probe = gst::ElementFactory::make("emotionsense").build()?;
    for p in &args.properties {
        crate::pipeline::set_property_checked(&probe, p)?;
    }
    drop(probe);
    if args.per_frame {
        check_per_frame(
            &crate::pipeline::file_bundle(args.bundle.as_ref()).unwrap_or(BundleChoice::Default),
        )?;
    }
    let all = expand_inputs(&args.inputs)?;
    let inputs: Vec<Input> = match args.shard {
        Some(shard) => all.into_iter().filter(|i| in_shard(i, shard)).collect(),
        None => all,
    };
    if args.list_inputs {
        let mut stdout = std::io::stdout().lock();
        for input in &inputs {
            writeln!(stdout, "{}", input.uri)?;
        }
        return Ok(0);
    }
    let store = Store::open(args.out_dir())?;
    store.prepare()?;
    let publisher = args.publish.start()?;
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
                    let record = process(&args, &store, &input, publisher.as_ref());
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
    if let Some(p) = publisher {
        super::publish::finish(p);
    }
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
        "forward_seconds": crate::infer::FORWARD_NANOS.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9,
        "video_seconds": 0.0 + records.iter().filter_map(|r| r["duration"].as_f64()).sum::<f64>(),
        "files": records,
    });
    let name = match (&args.summary, args.shard) {
        (Some(name), _) => name.clone(),
        (None, Some((i, n))) => format!("summary.shard-{i}-of-{n}.json"),
        (None, None) => "summary.json".to_string(),
    };
    store.write(&name, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    println!("{} input(s): {} failed", summary["inputs"], failed);
    if args.print_summary {
        println!("{summary}");
    }
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

/// Analyses one input and writes its outputs; returns its summary record.
fn process(
    args: &AnalyzeArgs,
    store: &Store,
    input: &Input,
    publisher: Option<&Publisher>,
) -> Value {
    let name = output_name(input);
    let done = format!("{name}.done.json");
    let mut record = json!({
        "input": input.name,
        "uri": input.uri,
        "output": name,
    });
    if !args.force {
        match store.read(&done) {
            Ok(Some(text)) => {
                if let Ok(mut record) = serde_json::from_slice::<Value>(&text) {
                    record["status"] = json!("skipped");
                    return record;
                }
            }
            Ok(None) => {}
            Err(e) => {
                record["status"] = json!("error");
                record["error"] = json!(e.to_string());
                return record;
            }
        }
    }
    let started = Instant::now();
    let result = analyse(args, input, &name, publisher).and_then(|windows| {
        write_outputs(args, store, &name, &windows)?;
        Ok(windows)
    });
    record["seconds"] = json!(started.elapsed().as_secs_f64());
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
                    .map(WindowResult::end_seconds)
                    .fold(0.0, f64::max)
            );
            let text = serde_json::to_string_pretty(&record).unwrap_or_default();
            if let Err(e) = store.write(&done, text.as_bytes()) {
                record["status"] = json!("error");
                record["error"] = json!(format!("writing {e}"));
            }
        }
        Err(e) => {
            record["status"] = json!("error");
            record["error"] = json!(format!("{e:#}"));
        }
    }
    record
}

/// `--per-frame` needs a bundle with a per-frame head: a usage error otherwise.
fn check_per_frame(choice: &BundleChoice) -> anyhow::Result<()> {
    if *choice == BundleChoice::None {
        return Err(anyhow!("--per-frame needs a bundle with a per-frame head"));
    }
    let dir = choice.folder()?;
    let path = dir.join(crate::bundle::MANIFEST);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest = crate::bundle::Manifest::parse(&text, &path)?;
    if !manifest.heads.iter().any(|h| h.per_frame) {
        return Err(anyhow!(
            "--per-frame: bundle {} has no per-frame head (heads.*.per_frame = true)",
            dir.display()
        ));
    }
    Ok(())
}

/// Runs the pipeline on one input; returns its windows.
fn analyse(
    args: &AnalyzeArgs,
    input: &Input,
    name: &str,
    publisher: Option<&Publisher>,
) -> anyhow::Result<Vec<WindowResult>> {
    if let Some(path) = input.uri.strip_prefix("file://")
        && !Path::new(&percent_decode(path)).exists()
    {
        return Err(anyhow!("no such file"));
    }
    let sense = gst::ElementFactory::make("emotionsense").build()?;
    crate::pipeline::run::results_only(&sense);
    sense.set_property_from_str("window-mode", &args.window_mode);
    sense.set_property("device", &args.device);
    crate::pipeline::apply_bundle(
        &sense,
        crate::pipeline::file_bundle(args.bundle.as_ref()).as_ref(),
    );
    if let Some(debug) = &args.debug {
        sense.set_property("dump-dir", debug.join(name).to_string_lossy().as_ref());
    }
    for p in &args.properties {
        crate::pipeline::set_property_checked(&sense, p)?;
    }
    let mut windows = Vec::new();
    let on_window = |w: WindowResult| {
        if let Some(p) = publisher {
            super::publish::push(p, &w, &crate::pipeline::live::redact(&input.name));
        }
        windows.push(w);
    };
    run_file(&input.uri, &sense, on_window, &|| false)?;
    Ok(windows)
}

/// Writes an input's outputs (its `.done.json`, which says they are complete, comes
/// after them).
fn write_outputs(
    args: &AnalyzeArgs,
    store: &Store,
    name: &str,
    windows: &[WindowResult],
) -> anyhow::Result<()> {
    let put = |ext: &str, data: &[u8]| store.write(&format!("{name}.{ext}"), data);
    let lines: String = windows.iter().map(jsonl::line).collect();
    put("jsonl", lines.as_bytes())?;
    put("csv", csv::document(windows).as_bytes())?;
    put("vtt", vtt::document(windows).as_bytes())?;
    put("svg", timeline::svg(windows).as_bytes())?;
    if args.per_frame {
        put("frames.csv", csv::frames_document(windows).as_bytes())?;
    }
    if args.format.as_deref() == Some("reference") {
        let reference = serde_json::to_string_pretty(&reference::document(windows))?;
        put("reference.json", reference.as_bytes())?;
    }
    Ok(())
}
