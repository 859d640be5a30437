//! Live speed benchmark of the default bundle (run by scripts/bench-live): a live
//! 1280×720 30 fps I420 source (the astronaut photo through `imagefreeze is-live`)
//! and speech played in real time go through `videoconvert ! emotionsense
//! bundle=default` at the default window settings. For every window it records when
//! the result was posted relative to the window's end (running time) and the
//! worker's per-stage times; it prints the real-time factor (worker time per window ÷
//! hop), the lag, drops, and the per-stage means and maxima. With STREAMS > 1 the
//! process runs that many such sources at once (one `emotionsense` each, sharing the
//! model and the Whisper model, as `watch SRC1 SRC2 …` does) and ends with one
//! machine-readable line: `streams N windows W dropped D lag_mean S lag_p95 S lag_max S cpu_pct P
//! rss_mb M`.
//!
//!   cargo run --release --example bench_live -- IMAGE SPEECH.wav SECONDS [STREAMS [STAGGER]]
//!
//! `{i}` in SPEECH.wav is replaced by the stream's number (0, 1, …), to give each
//! stream its own speech. With STAGGER (seconds), stream i runs SECONDS + i × STAGGER
//! (its speech file says so too: the same program started later), so that the
//! cameras do not all stop at once. `BENCH_BUNDLE` picks another bundle (default `default`) and
//! `BENCH_PROPS` adds emotionsense properties (e.g. `asr=false`).
//!
//! `BENCH_RGB=1` puts RGB caps after the `videoconvert` in front of the element (as
//! when it took packed RGB only: every frame converted there).
//!
//! The source converts the photo to I420 once, as a camera hands over frames it
//! already has in I420; `BENCH_SOURCE_CONVERT=1` converts every frame from RGB instead
//! (the harness before 2026-12-05: at 8 streams that conversion, which is the
//! simulated camera's and not the element's, took about 29 % of the process's CPU).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gst_emotion::infer::{BATCHED_WINDOWS, BATCHES, LARGEST_BATCH};

/// Per-stage milliseconds of one window.
type Timing = Vec<(String, f64)>;

#[derive(Default)]
struct Seen {
    /// (window end, posted at) in running time (ns), and the timing fields (ms).
    windows: Vec<(u64, u64, Timing)>,
    dropped: u64,
    /// Resident memory (kB) when each window arrived.
    rss: Vec<u64>,
    /// The latest drop count of each element.
    dropped_by: std::collections::HashMap<String, u64>,
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process from /proc/self/stat (clock ticks).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if !(4..=6).contains(&args.len()) {
        eprintln!("usage: bench_live IMAGE SPEECH.wav SECONDS [STREAMS [STAGGER]]");
        std::process::exit(2);
    }
    let (image, speech, seconds): (&str, &str, u64) = (&args[1], &args[2], args[3].parse()?);
    let streams: usize = args.get(4).map_or(Ok(1), |s| s.parse())?;
    let stagger: f64 = args.get(5).map_or(Ok(0.0), |s| s.parse())?;
    let bundle = std::env::var("BENCH_BUNDLE").unwrap_or_else(|_| "default".into());
    let props = std::env::var("BENCH_PROPS").unwrap_or_default();
    gst::init()?;
    gst_emotion::register_static()?;
    // As `watch SRC1 SRC2 …` does.
    gst_emotion::infer::share_cores_between_streams(streams);
    // As before 2026-12-05: the element took packed RGB only.
    let before = std::env::var_os("BENCH_RGB").is_some();
    let (convert_once, convert_each) = if std::env::var_os("BENCH_SOURCE_CONVERT").is_some() {
        ("", "! videoconvert")
    } else {
        ("! videoconvert ! video/x-raw,format=I420", "")
    };
    let desc: String = (0..streams)
        .map(|i| {
            format!(
                "multifilesrc location={image} num-buffers=1 caps=image/png ! pngdec ! videoconvert \
                 ! videoscale add-borders=true ! video/x-raw,width=1280,height=720,pixel-aspect-ratio=1/1 \
                 {convert_once} ! imagefreeze is-live=true num-buffers={frames} {convert_each} \
                 ! video/x-raw,format=I420,framerate=30/1 ! queue ! videoconvert {rgb} ! e{i}.video \
                 filesrc location={speech_i} ! wavparse ! audioconvert ! audioresample \
                 ! audio/x-raw,rate=16000,channels=1 ! identity sync=true ! queue ! e{i}.audio \
                 emotionsense name=e{i} bundle={bundle} {props} ! fakesink sync=true ",
                frames = ((seconds as f64 + i as f64 * stagger) * 30.0).round() as u64,
                rgb = if before { "! video/x-raw,format=RGB" } else { "" },
                speech_i = speech.replace("{i}", &i.to_string())
            )
        })
        .collect();
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let bus = pipeline.bus().ok_or("no bus")?;
    {
        let seen = seen.clone();
        let weak = pipeline.downgrade();
        bus.set_sync_handler(move |_, msg| {
            if let gst::MessageView::Element(e) = msg.view()
                && let Some(r) = e
                    .structure()
                    .and_then(|s| gst_emotion::output::WindowResult::from_structure(s).ok())
                && let Some(p) = weak.upgrade()
            {
                let now = p.current_running_time().map(|t| t.nseconds()).unwrap_or(0);
                if std::env::var_os("BENCH_VERBOSE").is_some() {
                    eprintln!(
                        "{:?} {:?} {:.2}-{:.2} s, result at {:.2} s, {}",
                        msg.src().map(|s| s.name()),
                        r.kind,
                        r.span.start as f64 / 1e9,
                        r.span.end as f64 / 1e9,
                        now as f64 / 1e9,
                        r.timings
                            .iter()
                            .map(|(k, v)| format!("{k} {v:.0}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                let mut seen = seen.lock().unwrap();
                seen.dropped += r.windows_dropped.saturating_sub(
                    seen.dropped_by
                        .insert(
                            msg.src().map(|s| s.name().to_string()).unwrap_or_default(),
                            r.windows_dropped,
                        )
                        .unwrap_or(0),
                );
                seen.windows.push((r.span.end, now, r.timings));
                seen.rss.push(gst_emotion::resident_set_kb());
            }
            gst::BusSyncReply::Pass
        });
    }
    let cpu0 = cpu_seconds();
    let wall0 = std::time::Instant::now();
    pipeline.set_state(gst::State::Playing)?;
    let mut error = None;
    let longest = seconds + (stagger * streams as f64).ceil() as u64;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(longest + 120)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                error = Some(format!("{} ({:?})", e.error(), e.debug()));
                break;
            }
            _ => {}
        }
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let dropped_prop: u64 = (0..streams)
        .filter_map(|i| pipeline.by_name(&format!("e{i}")))
        .map(|e| e.property::<u64>("windows-dropped"))
        .sum();
    let early: u64 = (0..streams)
        .filter_map(|i| pipeline.by_name(&format!("e{i}")))
        .map(|e| e.property::<u64>("windows-analysed-early"))
        .sum();
    // Per stage, from the threads' CPU times (the streaming threads still exist).
    let split = cpu_by_stage();
    pipeline.set_state(gst::State::Null)?;
    if let Some(e) = error {
        return Err(e.into());
    }
    let seen = seen.lock().unwrap();
    // The bundle's window length and hop (the element's properties are not set here).
    let (length, hop) = gst_emotion::bundle::BundleChoice::parse(&bundle)
        .folder()
        .ok()
        .and_then(|dir| {
            let path = dir.join(gst_emotion::bundle::MANIFEST);
            let text = std::fs::read_to_string(&path).ok()?;
            gst_emotion::bundle::Manifest::parse(&text, &path).ok()
        })
        .map_or((3.0, 1.5), |m| (m.window.length, m.window.hop));
    let n = seen.windows.len();
    if n == 0 {
        return Err("no windows".into());
    }
    let lags: Vec<f64> = seen
        .windows
        .iter()
        .map(|(end, at, _)| (*at as f64 - *end as f64) / 1e9)
        .collect();
    let mut stages: Vec<(String, Vec<f64>)> = Vec::new();
    for ((_, _, t), lag) in seen.windows.iter().zip(&lags) {
        // What the lag holds besides the queue and the worker: the time from the
        // window's end until it was cut (voice detector hangover, audio buffering).
        let get = |name: &str| t.iter().find(|(k, _)| k == name).map_or(0.0, |(_, v)| *v);
        let cut = lag * 1e3 - get("wait") - get("total");
        for (k, v) in t.iter().chain([&("cut".to_string(), cut)]) {
            match stages.iter_mut().find(|(s, _)| s == k) {
                Some((_, vals)) => vals.push(*v),
                None => stages.push((k.clone(), vec![*v])),
            }
        }
    }
    let total: Vec<f64> = stages
        .iter()
        .find(|(k, _)| k == "total")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let max = |v: &[f64]| v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let late = lags.iter().filter(|l| **l > hop).count();
    let p95 = {
        let mut sorted = lags.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[((sorted.len() as f64 * 0.95).ceil() as usize).clamp(1, sorted.len()) - 1]
    };
    println!(
        "live 1280x720 30 fps + speech, bundle {bundle}, {streams} stream(s), {seconds} s of stream, window {length} s / hop {hop} s"
    );
    println!("  windows analysed        {n}");
    println!(
        "  windows dropped         {} (element property {dropped_prop})",
        seen.dropped
    );
    println!(
        "  result lag after window end: mean {:.3} s, 95th percentile {p95:.3} s, max {:.3} s (next window due after {hop} s; {late} late)",
        mean(&lags),
        max(&lags)
    );
    println!("  utterances analysed early (early-analysis): {early}");
    println!(
        "  worker time per window: mean {:.0} ms, max {:.0} ms -> real-time factor {:.2} (worker time / hop; < 1 is real time)",
        mean(&total),
        max(&total),
        mean(&total) / 1e3 / hop
    );
    println!(
        "  per stage (ms, mean / max; cut: from the window's end until it was handed to the worker, wait: queued for the worker):"
    );
    for (k, v) in &stages {
        println!("    {k:<14} {:8.1} / {:8.1}", mean(v), max(v));
    }
    println!(
        "  process CPU {:.1} s over {:.1} s wall = {:.0}% of one core (2 cores here)",
        cpu,
        wall,
        cpu / wall * 100.0
    );
    let threads_total: f64 = split.iter().map(|(_, v)| v).sum();
    println!("  CPU by stage (thread CPU time; % of the process's, and % of a core per stream):");
    for (stage, secs) in &split {
        println!(
            "    {stage:<46} {:5.1} %  {:5.1} %/stream",
            secs / threads_total.max(1e-9) * 100.0,
            secs / wall * 100.0 / streams as f64
        );
    }
    let settled = seen.rss.get(10).or(seen.rss.first()).copied().unwrap_or(0);
    println!(
        "  resident memory: {} MB after 10 windows, {} MB at the end, max {} MB",
        settled / 1024,
        seen.rss.last().copied().unwrap_or(0) / 1024,
        seen.rss.iter().max().copied().unwrap_or(0) / 1024
    );
    let verdict = if seen.dropped == 0 && dropped_prop == 0 && late == 0 {
        "REAL TIME: every window finished before the next was due, none dropped"
    } else {
        "NOT real time"
    };
    println!("  {verdict}");
    let batches = BATCHES.load(Ordering::Relaxed);
    let batch_mean = BATCHED_WINDOWS.load(Ordering::Relaxed) as f64 / batches.max(1) as f64;
    let batch_max = LARGEST_BATCH.load(Ordering::Relaxed);
    println!("  model passes: {batches}, windows per pass mean {batch_mean:.2}, max {batch_max}");
    println!(
        "streams {streams} windows {n} dropped {} lag_mean {:.3} lag_p95 {p95:.3} lag_max {:.3} cpu_pct {:.0} rss_mb {} batch_mean {batch_mean:.2} batch_max {batch_max}",
        seen.dropped.max(dropped_prop),
        mean(&lags),
        max(&lags),
        cpu / wall * 100.0,
        seen.rss.iter().max().copied().unwrap_or(0) / 1024
    );
    Ok(())
}

/// CPU seconds of this process's live threads, grouped by what their names say they
/// do (GStreamer names streaming threads after their pad's element; the element's
/// worker, voice-activity and inference threads are named too).
fn cpu_by_stage() -> Vec<(&'static str, f64)> {
    let tick = 100.0; // USER_HZ on Linux
    let mut stages: Vec<(&'static str, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return stages;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the ")" that ends the name: state is the 3rd field, utime the
        // 14th and stime the 15th.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i - 3)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let secs = (ticks(14) + ticks(15)) / tick;
        let comm = comm.trim();
        let queue = comm
            .strip_prefix("queue")
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse::<u32>().ok());
        let stage = if comm.starts_with("imagefreeze") || comm.starts_with("multifilesrc") {
            "simulated camera (source)"
        } else if let Some(n) = queue {
            // Each stream's video queue comes first, then its audio queue.
            if n % 2 == 0 {
                "colour conversion to RGB (videoconvert)"
            } else {
                "audio conversion and resampling"
            }
        } else if comm.starts_with('e') && comm.ends_with(":src") {
            "element: taking frames and audio, resizing, in step"
        } else if comm.starts_with("emotionsense-wo") {
            "element worker: transcription (Whisper), windows"
        } else if comm.starts_with("emotionsense-va") {
            "voice activity"
        } else if comm.starts_with("emotion-inferen") {
            "inference: face detection and classification, text"
        } else if comm.starts_with("wavparse") {
            "audio source"
        } else {
            "other (main, torch/OpenMP helpers, GLib)"
        };
        match stages.iter_mut().find(|(s, _)| *s == stage) {
            Some((_, v)) => *v += secs,
            None => stages.push((stage, secs)),
        }
    }
    stages.sort_by(|a, b| b.1.total_cmp(&a.1));
    stages
}
