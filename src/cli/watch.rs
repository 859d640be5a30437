//! `gst-emotion watch SOURCE`: live analysis of a webcam (`/dev/videoN`), an RTSP
//! camera (`rtsp://`) or any URI, one line per window on stdout, optionally JSONL.
//! RTSP streams that drop are reported and reconnected with exponential backoff;
//! Ctrl-C ends the stream with EOS so the last windows are analysed and the JSONL is
//! complete. Credentials in URLs never appear in what this command prints.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use clap::Args;

use super::live::{LiveEnd, LiveEvent, LiveOptions, redact, run_live};
use crate::output::WindowResult;

/// Options of `gst-emotion watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// A V4L2 device (/dev/video0), an rtsp:// URL, a file or any URI.
    pub source: String,
    /// Model bundle: a folder, "default" (the default; used when installed), or "none".
    #[arg(long)]
    pub bundle: Option<String>,
    /// Where the model runs: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Also append every window as one JSON line to this file.
    #[arg(long)]
    pub jsonl: Option<PathBuf>,
    /// Ignore the source's audio (or, for a webcam, do not open the microphone).
    #[arg(long)]
    pub no_audio: bool,
    /// RTSP: reconnect at most this many times in a row (0: never give up).
    #[arg(long, default_value_t = 0)]
    pub max_reconnects: u32,
    /// RTSP: first reconnect delay in seconds (doubles up to --backoff-max).
    #[arg(long, default_value_t = 1.0)]
    pub backoff_min: f64,
    /// RTSP: longest reconnect delay in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub backoff_max: f64,
    /// RTSP: jitter-buffer latency in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub latency: u32,
    /// RTSP: lower transport, tcp (interleaved, notices a dead server at once) or udp.
    #[arg(long, default_value = "tcp")]
    pub transport: String,
    /// Set an emotionsense property, e.g. --set window-length=2 (repeatable).
    #[arg(long = "set", value_name = "PROP=VALUE")]
    pub properties: Vec<String>,
    /// Publishing each window (`--publish mqtt://host:1883/topic`, docs/publish.md).
    #[command(flatten)]
    pub publish: super::publish::PublishArgs,
    /// The `source` of published records (default: the source, credentials hidden).
    #[arg(long)]
    pub source_id: Option<String>,
}

/// Ctrl-C presses seen (the handler only counts; the loop acts).
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);
/// Whether the first Ctrl-C was reported.
static ANNOUNCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// One readable line per window.
fn line(r: &WindowResult) -> String {
    let mut out = format!("{:8.2} - {:8.2} s", r.start_seconds(), r.end_seconds());
    for head in ["emotion", "sentiment"] {
        if let Some(h) = r.head(head) {
            let (l, c) = h.top_label();
            out.push_str(&format!("  {l:<8} {c:.2}"));
        }
    }
    if let Some(f) = r.fusion() {
        out.push_str(&format!("  faces {}", f.faces.len()));
    }
    if r.windows_dropped > 0 {
        out.push_str(&format!("  (dropped {})", r.windows_dropped));
    }
    let t = r.transcript_text();
    if !t.is_empty() {
        out.push_str(&format!("  \"{t}\""));
    }
    out
}

/// Runs `gst-emotion watch`; returns the exit code.
pub fn run(args: WatchArgs) -> anyhow::Result<u8> {
    gst::init()?;
    crate::register_static()?;
    let opts = LiveOptions {
        bundle: args.bundle.clone(),
        device: args.device.clone(),
        no_audio: args.no_audio,
        max_reconnects: args.max_reconnects,
        backoff_min: args.backoff_min,
        backoff_max: args.backoff_max,
        latency: args.latency,
        transport: args.transport.clone(),
        properties: args.properties.clone(),
        name: None,
    };
    opts.validate()?;
    // SAFETY: the handler only touches an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_sigint as *const () as libc::sighandler_t);
    }
    let shown = redact(&args.source);
    let publisher = args.publish.start()?;
    let source_id = args.source_id.clone().unwrap_or_else(|| shown.clone());
    let mut jsonl = match &args.jsonl {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ),
        None => None,
    };
    eprintln!("watching {shown} (Ctrl-C to stop)");
    let mut windows = 0u64;
    let end = run_live(
        &args.source,
        &opts,
        |event| match event {
            LiveEvent::Playing => eprintln!("playing {shown}"),
            LiveEvent::Resumed => eprintln!("reconnected: analysis resumed"),
            LiveEvent::Warning(w) => eprintln!("warning: {w}"),
            LiveEvent::Lost {
                reason,
                attempt,
                delay,
            } => eprintln!(
                "stream lost: {reason}; reconnecting to {shown} in {delay:.1} s (attempt {attempt})"
            ),
            LiveEvent::Window(r) => {
                windows += 1;
                if let Some(p) = &publisher {
                    super::publish::push(p, &r, &source_id);
                }
                println!("{}", line(&r));
                if let Some(f) = jsonl.as_mut() {
                    let _ = f.write_all(crate::output::jsonl::line(&r).as_bytes());
                    let _ = f.flush();
                }
            }
        },
        &|| {
            let presses = INTERRUPTS.load(Ordering::SeqCst);
            if presses > 0 && !ANNOUNCED.swap(true, Ordering::SeqCst) {
                eprintln!("stopping: sending end-of-stream (Ctrl-C again to quit at once)");
            }
            presses
        },
    )?;
    if let Some(p) = publisher {
        super::publish::finish(p);
    }
    match end {
        LiveEnd::Stopped => {
            eprintln!("stopped: {windows} window(s)");
            Ok(0)
        }
        LiveEnd::Failed(reason) => {
            if reason.contains("gave up") {
                eprintln!("stream lost: {reason}");
            } else {
                eprintln!("error: {reason}");
            }
            Ok(1)
        }
    }
}
