//! `gst-emotion eval DATA`: how good is a bundle on labelled data?
//!
//! - A MELD-format CSV with its clips: each clip is one window (the reference service's
//!   semantics), its text from the CSV (`--text csv`, as MELD models were trained) or
//!   from speech recognition (`--text asr`, with the word error rate).
//! - A labelled text file: each sentence through the bundle's words (no video, no
//!   audio), or with `--speak` spoken (espeak-ng, or Festival with `--voice festival`)
//!   over a face-less picture and run through the whole pipeline (Whisper → words →
//!   fusion), with the word error rate.
//!
//! Writes `predictions.jsonl`, `report.json` (accuracy, weighted and macro F1,
//! per-class precision/recall/F1, confusion matrices, WER, cost per item) and
//! `confusion-HEAD.svg` into `--out`; prints the report, side by side with another
//! run's `report.json` given with `--compare`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, anyhow};
use gst::prelude::*;
use serde_json::{Value, json};

use crate::bundle::BundleChoice;
use crate::eval::data::{DataKind, Item, load};
use crate::eval::heatmap;
use crate::eval::metrics::{Report, calibration_error, consistency, report, word_errors, words};
use crate::eval::speech::{Voice, spoken_clip};
use crate::infer::{Model, ModelOptions};
use crate::output::WindowResult;
use crate::output::files::write_atomic;
use crate::pipeline::run::run_file;
use crate::window::{WindowJob, WindowSpan};

/// Options of `gst-emotion eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Labelled data: a MELD-format CSV (Utterance, Emotion, Sentiment, Dialogue_ID,
    /// Utterance_ID), or a CSV/TSV with a text column and emotion and/or sentiment.
    pub data: PathBuf,
    /// MELD: the folder of the dia{D}_utt{U}.mp4 clips (default: the CSV's folder).
    #[arg(long)]
    pub clips: Option<PathBuf>,
    /// MELD: the text the model reads: csv (the Utterance column) or asr (Whisper).
    #[arg(long, default_value = "csv", value_parser = ["csv", "asr"])]
    pub text: String,
    /// Text files: speak each sentence over a face-less picture and run the whole
    /// pipeline (speech recognition included) instead of the words alone.
    #[arg(long)]
    pub speak: bool,
    /// The voice `--speak` uses: festival (the CMU SLT HTS voice, made from a
    /// speaker's recordings) or espeak-ng (formant synthesis: robotic, a harder test
    /// of the speech recognition).
    #[arg(long, value_enum, default_value = "festival")]
    pub voice: Voice,
    /// Model bundle: a folder, "default" or "accurate". Without it: the accurate
    /// bundle when it is built, else the default bundle.
    #[arg(long)]
    pub bundle: Option<BundleChoice>,
    /// Device for the model: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Output folder.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    /// Only the first N items.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Clips analysed in parallel (they share one model).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Another run's report.json, printed side by side with this one.
    #[arg(long, value_name = "REPORT")]
    pub compare: Option<PathBuf>,
    /// More emotionsense properties for clips, as name=value (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub properties: Vec<String>,
}

impl EvalArgs {
    /// The bundle measured: `--bundle`, else [`BundleChoice::for_files`].
    fn bundle(&self) -> BundleChoice {
        self.bundle.clone().unwrap_or_else(BundleChoice::for_files)
    }
}

/// What the bundle said about one item.
#[derive(Debug, Default)]
struct Outcome {
    /// Top label per head.
    labels: BTreeMap<String, String>,
    /// Probabilities per head, by label.
    probs: BTreeMap<String, BTreeMap<String, f64>>,
    /// The transcript, when speech recognition ran.
    transcript: Option<String>,
}

impl Outcome {
    fn of(r: &WindowResult) -> Self {
        let mut o = Outcome {
            transcript: r.transcript.as_ref().map(|t| t.text.clone()),
            ..Outcome::default()
        };
        for h in r.heads() {
            o.labels.insert(h.name.clone(), h.top_label().0.to_string());
            o.probs.insert(
                h.name.clone(),
                h.labels
                    .iter()
                    .cloned()
                    .zip(h.probs.iter().copied())
                    .collect(),
            );
        }
        o
    }
}

/// Runs `gst-emotion eval`; returns the exit code.
pub fn run(args: EvalArgs) -> anyhow::Result<u8> {
    gst::init()?;
    crate::register_static()?;
    let (kind, mut items) = load(&args.data, args.clips.as_deref()).map_err(|e| anyhow!(e))?;
    if let Some(n) = args.limit {
        items.truncate(n);
    }
    if items.is_empty() {
        return Err(anyhow!("{}: no labelled items", args.data.display()));
    }
    let choice = args.bundle();
    if choice == BundleChoice::None {
        return Err(anyhow!("--bundle none: eval needs a model"));
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let bundle = choice.folder()?;
    let options = ModelOptions {
        device: args.device.parse().map_err(|e| anyhow!("--device: {e}"))?,
        ..ModelOptions::default()
    };
    let model = Model::shared(&bundle, options)?;
    let mode = match (kind, args.speak) {
        (DataKind::Meld, _) => format!("meld, text from {}", args.text),
        (DataKind::Text, false) => "text, words only".to_string(),
        (DataKind::Text, true) => {
            format!("text, spoken ({} → whole pipeline)", args.voice.name())
        }
    };
    eprintln!(
        "eval: {} item(s), {mode}, bundle {}",
        items.len(),
        bundle.display()
    );
    let forward0 = crate::infer::FORWARD_NANOS.load(std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let outcomes: Vec<Result<Outcome, ItemError>> = match (kind, args.speak) {
        (DataKind::Text, false) => words_only(&model, &items),
        _ => through_pipeline(&args, kind, &items)?,
    };
    let wall = started.elapsed().as_secs_f64();
    let forward = (crate::infer::FORWARD_NANOS.load(std::sync::atomic::Ordering::Relaxed)
        - forward0) as f64
        / 1e9;
    let report = write_report(&args, &mode, &bundle, &items, &outcomes, wall, forward)?;
    print_report(&report);
    if let Some(other) = &args.compare {
        let text = std::fs::read_to_string(other)
            .with_context(|| format!("reading {}", other.display()))?;
        let other_report: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a report.json", other.display()))?;
        print_comparison(&report, &other_report, other);
    }
    Ok(0)
}

/// Why one item could not be evaluated: noted in report.json's `failed`; the run
/// goes on with the others.
#[derive(Debug, thiserror::Error)]
enum ItemError {
    #[error("no clip")]
    NoClip,
    #[error("{0}: no such clip")]
    MissingClip(PathBuf),
    #[error("no window")]
    NoWindow,
    #[error("not run")]
    NotRun,
    #[error("no answer")]
    NoAnswer,
    #[error(transparent)]
    Model(#[from] crate::infer::ModelError),
    #[error(transparent)]
    Run(#[from] crate::pipeline::run::RunError),
    #[error(transparent)]
    Setting(#[from] crate::pipeline::SettingError),
    #[error(transparent)]
    Element(#[from] gst::glib::BoolError),
    #[error(transparent)]
    Uri(#[from] gst::glib::Error),
    #[error(transparent)]
    Speech(#[from] crate::eval::speech::SpeechError),
}

/// The words alone: each sentence as the text of a window without video or audio.
fn words_only(model: &Model, items: &[Item]) -> Vec<Result<Outcome, ItemError>> {
    let blank = WindowJob::words_only(WindowSpan {
        index: 0,
        start: 0,
        end: 3_000_000_000,
    });
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(16) {
        let inputs: Vec<_> = chunk
            .iter()
            .map(|i| model.prepare(&blank, Some(&i.text)))
            .collect();
        let ready: Vec<_> = inputs
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        let mut answers = model.predict_many(ready).into_iter();
        for input in inputs {
            out.push(input.map_err(ItemError::from).and_then(|_| {
                let answer = answers.next().ok_or(ItemError::NoAnswer)??;
                let mut o = Outcome::default();
                for (spec, probs) in model.bundle.manifest.heads.iter().zip(&answer.probs) {
                    let top = crate::output::argmax(probs);
                    o.labels.insert(spec.name.clone(), spec.labels[top].clone());
                    o.probs.insert(
                        spec.name.clone(),
                        spec.labels
                            .iter()
                            .cloned()
                            .zip(probs.iter().copied())
                            .collect(),
                    );
                }
                Ok(o)
            }));
        }
    }
    out
}

/// Every item as one window of its clip (MELD) or of its spoken sentence.
fn through_pipeline(
    args: &EvalArgs,
    kind: DataKind,
    items: &[Item],
) -> anyhow::Result<Vec<Result<Outcome, ItemError>>> {
    // Usage errors first, on a probe element.
    let probe = gst::ElementFactory::make("emotionsense").build()?;
    for p in &args.properties {
        crate::pipeline::set_property_checked(&probe, p)?;
    }
    drop(probe);
    let clips_dir = args.out.join("clips");
    if args.speak {
        std::fs::create_dir_all(&clips_dir)?;
    }
    let results = Mutex::new((0..items.len()).map(|_| None).collect::<Vec<_>>());
    let next = Mutex::new(0usize);
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..args.jobs.max(1) {
            s.spawn(|| {
                loop {
                    let k = {
                        let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                        let k = *n;
                        *n += 1;
                        k
                    };
                    let Some(item) = items.get(k) else { break };
                    let outcome = one_clip(args, kind, item, &clips_dir);
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    if n.is_multiple_of(10) || n == items.len() {
                        eprintln!("eval: {n}/{} done", items.len());
                    }
                    results.lock().unwrap_or_else(|e| e.into_inner())[k] = Some(outcome);
                }
            });
        }
    });
    Ok(results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or(Err(ItemError::NotRun)))
        .collect())
}

fn one_clip(
    args: &EvalArgs,
    kind: DataKind,
    item: &Item,
    clips_dir: &Path,
) -> Result<Outcome, ItemError> {
    let clip = match kind {
        DataKind::Meld => item.clip.clone().ok_or(ItemError::NoClip)?,
        DataKind::Text => spoken_clip(&item.text, args.voice, clips_dir)?,
    };
    if !clip.is_file() {
        return Err(ItemError::MissingClip(clip));
    }
    let sense = gst::ElementFactory::make("emotionsense").build()?;
    crate::pipeline::run::results_only(&sense);
    sense.set_property("bundle", args.bundle().to_string());
    sense.set_property("device", &args.device);
    // One window per clip.
    sense.set_property_from_str("window-mode", "sliding");
    sense.set_property("window-length", 600.0f64);
    sense.set_property("window-hop", 600.0f64);
    sense.set_property("min-window-length", 0.0f64);
    let text_given = kind == DataKind::Meld && args.text == "csv";
    if text_given {
        sense.set_property("text", &item.text);
        sense.set_property("asr", false);
    }
    for p in &args.properties {
        crate::pipeline::set_property_checked(&sense, p)?;
    }
    let uri = gst::glib::filename_to_uri(&clip, None)?;
    let mut windows = Vec::new();
    run_file(&uri, &sense, |w| windows.push(w), &|| false)?;
    let first = windows.first().ok_or(ItemError::NoWindow)?;
    let mut outcome = Outcome::of(first);
    if text_given {
        // The text is the gold text, not a transcript: no word error rate.
        outcome.transcript = None;
    }
    Ok(outcome)
}

/// Scores the outcomes, writes predictions.jsonl, report.json and the heatmaps;
/// returns the report.
fn write_report(
    args: &EvalArgs,
    mode: &str,
    bundle: &Path,
    items: &[Item],
    outcomes: &[Result<Outcome, ItemError>],
    wall: f64,
    forward: f64,
) -> anyhow::Result<Value> {
    let mut lines = String::new();
    let mut gold: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut predicted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let (mut ref_words, mut errors, mut asr_items) = (0usize, 0usize, 0usize);
    let mut failed = Vec::new();
    for (item, outcome) in items.iter().zip(outcomes) {
        let mut rec = json!({"id": item.id, "text": item.text,
            "gold": {"emotion": item.emotion, "sentiment": item.sentiment}});
        match outcome {
            Ok(o) => {
                rec["predicted"] = json!(o.labels);
                rec["probs"] = json!(o.probs);
                for head in ["emotion", "sentiment"] {
                    if let (Some(g), Some(p)) = (item.gold(head), o.labels.get(head)) {
                        gold.entry(head).or_default().push(g.clone());
                        predicted.entry(head).or_default().push(p.clone());
                    }
                }
                if let Some(t) = &o.transcript {
                    let (r, h) = (words(&item.text), words(t));
                    let e = word_errors(&r, &h);
                    rec["transcript"] = json!(t);
                    rec["word_errors"] = json!(e);
                    ref_words += r.len();
                    errors += e;
                    asr_items += 1;
                }
            }
            Err(e) => {
                let e = e.to_string();
                rec["error"] = json!(e);
                failed.push(json!({"id": item.id, "error": e}));
            }
        }
        lines.push_str(&rec.to_string());
        lines.push('\n');
    }
    write_atomic(&args.out.join("predictions.jsonl"), lines.as_bytes())?;
    let mut heads = serde_json::Map::new();
    for (head, g) in &gold {
        let r: Report = report(g, &predicted[head]);
        write_atomic(
            &args.out.join(format!("confusion-{head}.svg")),
            heatmap::svg(&format!("{head}: {mode}"), &r).as_bytes(),
        )?;
        let mut v = serde_json::to_value(&r)?;
        v["ece"] = json!(head_calibration(head, items, outcomes));
        heads.insert(head.to_string(), v);
    }
    // Sentiment against emotion: predicted, and in the gold labels for comparison.
    let predicted_pairs = pair_consistency(items, outcomes, |_, o| {
        Some((
            o.labels.get("emotion")?.as_str(),
            o.labels.get("sentiment")?.as_str(),
        ))
    });
    let gold_pairs = pair_consistency(items, outcomes, |i, _| {
        Some((i.emotion.as_deref()?, i.sentiment.as_deref()?))
    });
    let evaluated = outcomes.iter().filter(|o| o.is_ok()).count();
    let report = json!({
        "data": args.data.display().to_string(),
        "mode": mode,
        "bundle": bundle.display().to_string(),
        "items": items.len(),
        "evaluated": evaluated,
        "failed": failed,
        "heads": heads,
        "consistency": (predicted_pairs.items > 0).then(|| json!({
            "predicted": predicted_pairs,
            "gold": (gold_pairs.items > 0).then_some(&gold_pairs),
        })),
        "asr": (asr_items > 0).then(|| json!({
            "items": asr_items,
            "reference_words": ref_words,
            "word_errors": errors,
            "wer": if ref_words == 0 { 0.0 } else { errors as f64 / ref_words as f64 },
        })),
        "cost": {
            "wall_seconds": wall,
            "forward_seconds": forward,
            "seconds_per_item": wall / items.len().max(1) as f64,
        },
    });
    write_atomic(
        &args.out.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    Ok(report)
}

/// The [`consistency`] of the (emotion, sentiment) pairs `of` finds in the items
/// evaluated.
fn pair_consistency<'a>(
    items: &'a [Item],
    outcomes: &'a [Result<Outcome, ItemError>],
    of: impl Fn(&'a Item, &'a Outcome) -> Option<(&'a str, &'a str)>,
) -> crate::eval::metrics::Consistency {
    consistency(
        items
            .iter()
            .zip(outcomes)
            .filter_map(|(i, o)| o.as_ref().ok().and_then(|o| of(i, o))),
    )
}

/// The expected calibration error of `head`'s top probability over the items with a
/// gold label for it (10 bins).
fn head_calibration(head: &str, items: &[Item], outcomes: &[Result<Outcome, ItemError>]) -> f64 {
    let (mut confidence, mut correct) = (Vec::new(), Vec::new());
    for (item, outcome) in items.iter().zip(outcomes) {
        let (Some(g), Ok(o)) = (item.gold(head), outcome) else {
            continue;
        };
        let (Some(label), Some(probs)) = (o.labels.get(head), o.probs.get(head)) else {
            continue;
        };
        confidence.push(probs.get(label).copied().unwrap_or(0.0));
        correct.push(label == g);
    }
    calibration_error(&confidence, &correct, 10)
}

fn print_report(r: &Value) {
    println!(
        "{} — {}",
        r["data"].as_str().unwrap_or(""),
        r["mode"].as_str().unwrap_or("")
    );
    println!(
        "{} item(s), {} evaluated, {} failed",
        r["items"],
        r["evaluated"],
        r["failed"].as_array().map_or(0, Vec::len)
    );
    for (head, h) in r["heads"].as_object().into_iter().flatten() {
        println!(
            "\n{head}: accuracy {:.3}  weighted F1 {:.3}  macro F1 {:.3}  calibration error {:.3}",
            h["accuracy"].as_f64().unwrap_or(0.0),
            h["weighted_f1"].as_f64().unwrap_or(0.0),
            h["macro_f1"].as_f64().unwrap_or(0.0),
            h["ece"].as_f64().unwrap_or(0.0)
        );
        println!(
            "  {:<10} {:>9} {:>7} {:>6} {:>8}",
            "class", "precision", "recall", "f1", "support"
        );
        for c in h["classes"].as_array().into_iter().flatten() {
            println!(
                "  {:<10} {:>9.3} {:>7.3} {:>6.3} {:>8}",
                c["label"].as_str().unwrap_or(""),
                c["precision"].as_f64().unwrap_or(0.0),
                c["recall"].as_f64().unwrap_or(0.0),
                c["f1"].as_f64().unwrap_or(0.0),
                c["support"].as_u64().unwrap_or(0)
            );
        }
    }
    if let Some(c) = r["consistency"].as_object() {
        let p = &c["predicted"];
        println!(
            "\nsentiment against the emotion's polarity (predicted): {:.1} % disagree, {:.1} % opposite",
            p["disagree"].as_f64().unwrap_or(0.0) * 100.0,
            p["opposite"].as_f64().unwrap_or(0.0) * 100.0
        );
        if let Some(g) = c["gold"].as_object() {
            println!(
                "  in the gold labels: {:.1} % disagree, {:.1} % opposite",
                g["disagree"].as_f64().unwrap_or(0.0) * 100.0,
                g["opposite"].as_f64().unwrap_or(0.0) * 100.0
            );
        }
    }
    if let Some(a) = r["asr"].as_object() {
        println!(
            "\nASR word error rate {:.1} % ({} errors in {} words, {} items)",
            a["wer"].as_f64().unwrap_or(0.0) * 100.0,
            a["word_errors"],
            a["reference_words"],
            a["items"]
        );
    }
    println!(
        "\ncost: {:.3} s per item (wall {:.1} s, model {:.1} s)",
        r["cost"]["seconds_per_item"].as_f64().unwrap_or(0.0),
        r["cost"]["wall_seconds"].as_f64().unwrap_or(0.0),
        r["cost"]["forward_seconds"].as_f64().unwrap_or(0.0)
    );
}

fn print_comparison(this: &Value, other: &Value, other_path: &Path) {
    println!("\ncompared with {}:", other_path.display());
    println!("  {:<28} {:>9} {:>9} {:>8}", "", "this", "other", "change");
    let row = |name: &str, a: Option<f64>, b: Option<f64>| {
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let diff = match (a, b) {
            (Some(a), Some(b)) => format!("{:+.3}", a - b),
            _ => "-".into(),
        };
        println!("  {name:<28} {:>9} {:>9} {diff:>8}", cell(a), cell(b));
    };
    for (head, h) in this["heads"].as_object().into_iter().flatten() {
        let o = &other["heads"][head];
        for m in ["accuracy", "weighted_f1", "macro_f1", "ece"] {
            row(&format!("{head} {m}"), h[m].as_f64(), o[m].as_f64());
        }
        for c in h["classes"].as_array().into_iter().flatten() {
            let label = c["label"].as_str().unwrap_or("");
            let other_f1 = o["classes"]
                .as_array()
                .and_then(|cs| cs.iter().find(|x| x["label"] == label))
                .and_then(|x| x["f1"].as_f64());
            row(&format!("{head} {label} F1"), c["f1"].as_f64(), other_f1);
        }
    }
    row(
        "sentiment disagrees",
        this["consistency"]["predicted"]["disagree"].as_f64(),
        other["consistency"]["predicted"]["disagree"].as_f64(),
    );
    row(
        "ASR WER",
        this["asr"]["wer"].as_f64(),
        other["asr"]["wer"].as_f64(),
    );
    row(
        "seconds per item",
        this["cost"]["seconds_per_item"].as_f64(),
        other["cost"]["seconds_per_item"].as_f64(),
    );
}
