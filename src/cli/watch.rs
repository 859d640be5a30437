//! `gst-emotion watch SOURCE`: live analysis of a webcam (`/dev/videoN`), an RTSP
//! camera (`rtsp://`) or any URI, one line per window on stdout, optionally JSONL.
//! RTSP streams that drop are reported and reconnected with exponential backoff;
//! Ctrl-C ends the stream with EOS so the last windows are analysed and the JSONL is
//! complete. Credentials in URLs never appear in what this command prints.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
use gst::prelude::*;

use super::runner::Event;
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
}

/// Ctrl-C presses seen (the handler only counts; the loop acts).
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// `url` with any user:password replaced by `***`.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if let Some((_, host)) = authority.rsplit_once('@') {
            return format!("{scheme}://***@{host}{path}");
        }
    }
    url.to_string()
}

/// Removes the credentials of `url` from `text` (error messages may quote them).
fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact(url));
    if let Some((_, rest)) = url.split_once("://")
        && let Some((userinfo, _)) = rest.split('/').next().unwrap_or("").rsplit_once('@')
        && !userinfo.is_empty()
    {
        out = out.replace(userinfo, "***");
    }
    out
}

enum Kind {
    Webcam,
    Rtsp,
    Uri(String),
}

fn kind(source: &str) -> anyhow::Result<Kind> {
    if source.starts_with("/dev/video") {
        return Ok(Kind::Webcam);
    }
    if source.starts_with("rtsp://") || source.starts_with("rtsps://") {
        return Ok(Kind::Rtsp);
    }
    if source.contains("://") {
        return Ok(Kind::Uri(source.to_string()));
    }
    let path = std::path::Path::new(source);
    if !path.exists() {
        return Err(anyhow!(
            "{source}: no such file (give /dev/videoN, rtsp://..., a file or a URI)"
        ));
    }
    let abs = path.canonicalize()?;
    Ok(Kind::Uri(
        gst::glib::filename_to_uri(&abs, None)
            .map_err(|e| anyhow!("{source}: {e}"))?
            .to_string(),
    ))
}

fn build(args: &WatchArgs, kind: &Kind) -> anyhow::Result<gst::Pipeline> {
    let audio = !args.no_audio;
    let desc = match kind {
        Kind::Webcam => {
            let mut d = String::from(
                "v4l2src name=src ! videoconvert ! queue max-size-buffers=2 leaky=downstream ! e.video",
            );
            if audio {
                d.push_str(" autoaudiosrc ! audioconvert ! audioresample ! queue ! e.audio");
            }
            d
        }
        Kind::Rtsp => {
            let mut d = format!(
                "rtspsrc name=src latency={} protocols={} \
                 src. ! application/x-rtp,media=video ! decodebin ! videoconvert ! queue ! e.video",
                args.latency,
                if args.transport == "udp" {
                    "udp"
                } else {
                    "tcp"
                }
            );
            if audio {
                d.push_str(
                    " src. ! application/x-rtp,media=audio ! decodebin ! audioconvert \
                     ! audioresample ! queue ! e.audio",
                );
            }
            d
        }
        Kind::Uri(uri) => {
            let mut d = format!(
                "uridecodebin name=src uri=\"{uri}\" src. ! video/x-raw ! queue ! videoconvert ! e.video"
            );
            if audio {
                d.push_str(" src. ! audio/x-raw ! queue ! audioconvert ! audioresample ! e.audio");
            }
            d
        }
    };
    let desc = format!("{desc} emotionsense name=e ! fakesink sync=false");
    let pipeline = gst::parse::launch(&desc)
        .context("building the pipeline")?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow!("not a pipeline"))?;
    let src = pipeline.by_name("src").expect("named in the description");
    match kind {
        Kind::Webcam => src.set_property("device", &args.source),
        // Set after parsing so credentials need no escaping in the description.
        Kind::Rtsp => src.set_property("location", &args.source),
        Kind::Uri(_) => {}
    }
    let e = pipeline.by_name("e").expect("named in the description");
    e.set_property("device", &args.device);
    super::apply_bundle(&e, args.bundle.as_deref());
    for p in &args.properties {
        super::set_property_checked(&e, p).map_err(|e| anyhow!(e))?;
    }
    Ok(pipeline)
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

enum End {
    /// Ctrl-C or the end of a finite source.
    Done,
    /// The stream broke (error, or an RTSP server ending the stream).
    Lost(String),
}

/// Runs `gst-emotion watch`; returns the exit code.
pub fn run(args: WatchArgs) -> anyhow::Result<u8> {
    gst::init()?;
    crate::register_static()?;
    if args.transport != "tcp" && args.transport != "udp" {
        return Err(anyhow!("--transport {}: use tcp or udp", args.transport));
    }
    if !(args.backoff_min > 0.0 && args.backoff_max >= args.backoff_min) {
        return Err(anyhow!("need 0 < --backoff-min <= --backoff-max"));
    }
    // SAFETY: the handler only touches an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_sigint as *const () as libc::sighandler_t);
    }
    let kind = kind(&args.source)?;
    let rtsp = matches!(kind, Kind::Rtsp);
    let shown = redact(&args.source);
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
    let mut failures = 0u32;
    loop {
        let pipeline = build(&args, &kind)?;
        let started = Instant::now();
        let mut windows = 0u64;
        let resumed = failures > 0;
        let end = play(&pipeline, &args.source, rtsp, |s| {
            if windows == 0 && resumed {
                eprintln!("reconnected: analysis resumed");
            }
            windows += 1;
            println!("{}", line(s));
            if let Some(f) = jsonl.as_mut() {
                let _ = f.write_all(crate::output::jsonl::line(s).as_bytes());
                let _ = f.flush();
            }
        });
        let _ = pipeline.set_state(gst::State::Null);
        match end {
            End::Done => {
                eprintln!("stopped: {windows} window(s) this session");
                return Ok(0);
            }
            End::Lost(reason) => {
                let reason = scrub(&reason, &args.source);
                if !rtsp {
                    eprintln!("error: {reason}");
                    return Ok(1);
                }
                // A session that delivered results resets the backoff.
                if windows > 0 || started.elapsed() > Duration::from_secs(30) {
                    failures = 0;
                }
                failures += 1;
                if args.max_reconnects > 0 && failures > args.max_reconnects {
                    eprintln!(
                        "stream lost: {reason}; giving up after {} reconnect attempt(s)",
                        args.max_reconnects
                    );
                    return Ok(1);
                }
                let delay =
                    (args.backoff_min * 2f64.powi(failures as i32 - 1)).min(args.backoff_max);
                eprintln!(
                    "stream lost: {reason}; reconnecting to {shown} in {delay:.1} s (attempt {failures})"
                );
                let until = Instant::now() + Duration::from_secs_f64(delay);
                while Instant::now() < until {
                    if INTERRUPTS.load(Ordering::SeqCst) > 0 {
                        eprintln!("stopped while reconnecting");
                        return Ok(0);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

/// Plays `pipeline` until Ctrl-C (then EOS is sent and waited for), EOS or an error.
fn play(
    pipeline: &gst::Pipeline,
    source: &str,
    rtsp: bool,
    mut on_window: impl FnMut(&WindowResult),
) -> End {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    if let Err(reason) = super::runner::start(pipeline) {
        return End::Lost(reason);
    }
    let mut stopping: Option<Instant> = None;
    loop {
        let presses = INTERRUPTS.load(Ordering::SeqCst);
        if presses > 0 && stopping.is_none() {
            eprintln!("stopping: sending end-of-stream (Ctrl-C again to quit at once)");
            pipeline.send_event(gst::event::Eos::new());
            stopping = Some(Instant::now());
        }
        if presses > 1 || stopping.is_some_and(|t| t.elapsed() > Duration::from_secs(10)) {
            return End::Done;
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match Event::of(&msg, pipeline) {
            Event::Window(r) => on_window(&r),
            Event::Playing => eprintln!("playing {}", redact(source)),
            Event::Warning(w) => eprintln!("warning: {}", scrub(&w, source)),
            Event::Eos => {
                if stopping.is_some() || !rtsp {
                    return End::Done;
                }
                return End::Lost("the server ended the stream".into());
            }
            Event::Error { message, detail } => {
                if stopping.is_some() {
                    return End::Done;
                }
                return End::Lost(if detail.is_empty() {
                    message
                } else {
                    format!("{message} ({detail})")
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_shown() {
        let url = "rtsp://admin:s3cret@10.0.0.5:554/stream1";
        assert_eq!(redact(url), "rtsp://***@10.0.0.5:554/stream1");
        assert_eq!(redact("rtsp://cam/x"), "rtsp://cam/x");
        let msg = format!("Could not open {url}; auth admin:s3cret failed");
        let s = scrub(&msg, url);
        assert!(!s.contains("s3cret"), "{s}");
        assert!(s.contains("***@10.0.0.5"), "{s}");
    }
}
