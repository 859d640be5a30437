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

use crate::bundle::BundleChoice;
use crate::output::WindowResult;
use crate::pipeline::live::{LiveEnd, LiveEvent, LiveOptions, LiveSource, redact, run_live};

/// Options of `gst-emotion watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// V4L2 devices (/dev/video0), rtsp:// URLs, files or URIs: each runs in its own
    /// pipeline (reconnecting on its own) in this process, sharing the model and the
    /// Whisper model.
    #[arg(required_unless_present = "sources")]
    pub source: Vec<String>,
    /// A file listing more sources, one per line (# comments and blank lines skipped).
    #[arg(long, value_name = "FILE")]
    pub sources: Option<PathBuf>,
    /// Model bundle: a folder, "default" (the default; used when installed), or "none".
    #[arg(long)]
    pub bundle: Option<BundleChoice>,
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
    /// Watch only share I of N of the sources: the k-th source of the list (from 0,
    /// command line first, then --sources) is shard k mod N's, so N processes given
    /// the same list (a StatefulSet's pods, I = the pod's ordinal) split the cameras
    /// evenly, each camera watched once.
    #[arg(long, value_name = "I/N", value_parser = super::inputs::parse_shard)]
    pub shard: Option<(u64, u64)>,
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

/// The sources named on the command line and in `--sources`.
fn all_sources(args: &WatchArgs) -> anyhow::Result<Vec<String>> {
    let mut sources = args.source.clone();
    if let Some(file) = &args.sources {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        sources.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    if sources.is_empty() {
        anyhow::bail!("no source given");
    }
    if let Some((i, n)) = args.shard {
        let all = sources.len();
        sources = take_shard(sources, i, n);
        if sources.is_empty() {
            anyhow::bail!(
                "shard {i}/{n} has no source: the list has {all}, so use at most {all} shards"
            );
        }
    }
    if sources.len() > 1 && args.source_id.is_some() {
        anyhow::bail!("--source-id names a single source; with several, each is named by its URL");
    }
    Ok(sources)
}

/// Shard `i` of `n` of `sources`: the k-th source where k mod n = i.
fn take_shard(sources: Vec<String>, i: u64, n: u64) -> Vec<String> {
    sources
        .into_iter()
        .enumerate()
        .filter(|(k, _)| *k as u64 % n == i)
        .map(|(_, s)| s)
        .collect()
}

/// What a source's thread reports to the printing thread.
enum Report {
    Event(LiveEvent),
    End(anyhow::Result<LiveEnd>),
}

/// Runs `gst-emotion watch`; returns the exit code.
pub fn run(args: WatchArgs) -> anyhow::Result<u8> {
    gst::init()?;
    crate::register_static()?;
    let sources = all_sources(&args)?;
    crate::infer::share_cores_between_streams(sources.len());
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
    let mut out = Output::new(&args, &sources)?;
    eprintln!("watching {} (Ctrl-C to stop)", out.shown.join(", "));
    let stop = || {
        let presses = INTERRUPTS.load(Ordering::SeqCst);
        if presses > 0 && !ANNOUNCED.swap(true, Ordering::SeqCst) {
            eprintln!("stopping: sending end-of-stream (Ctrl-C again to quit at once)");
        }
        presses
    };
    let mut ends: Vec<Option<anyhow::Result<LiveEnd>>> = sources.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Report)>();
        for (i, source) in sources.iter().enumerate() {
            let tx = tx.clone();
            let mut opts = opts.clone();
            opts.name = Some(format!("watch-{i}"));
            let stop = &stop;
            scope.spawn(move || {
                let end = LiveSource::parse(source).and_then(|source| {
                    run_live(
                        &source,
                        &opts,
                        |e| {
                            let _ = tx.send((i, Report::Event(e)));
                        },
                        stop,
                    )
                });
                let _ = tx.send((i, Report::End(end)));
            });
        }
        drop(tx);
        for (i, report) in rx {
            match report {
                Report::End(end) => ends[i] = Some(end),
                Report::Event(e) => out.event(i, e),
            }
        }
    });
    out.finish(ends)
}

/// Where the sources' reports go: a line per event on stderr, per window on stdout,
/// the JSONL file and the publisher.
struct Output {
    /// Each source as shown (credentials redacted).
    shown: Vec<String>,
    /// Each source's id in records.
    ids: Vec<String>,
    publisher: Option<crate::publish::Publisher>,
    jsonl: Option<std::fs::File>,
    /// Windows received per source.
    windows: Vec<u64>,
}

impl Output {
    fn new(args: &WatchArgs, sources: &[String]) -> anyhow::Result<Self> {
        let shown: Vec<String> = sources.iter().map(|s| redact(s)).collect();
        let publisher = args.publish.start()?;
        let jsonl = match &args.jsonl {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("opening {}", p.display()))?,
            ),
            None => None,
        };
        Ok(Self {
            ids: match &args.source_id {
                Some(id) => vec![id.clone()],
                None => shown.clone(),
            },
            windows: vec![0; sources.len()],
            publisher,
            jsonl,
            shown,
        })
    }

    fn multi(&self) -> bool {
        self.shown.len() > 1
    }

    /// With several sources every line says which it is from.
    fn tag(&self, i: usize) -> String {
        if self.multi() {
            format!("[{}] ", self.shown[i])
        } else {
            String::new()
        }
    }

    fn event(&mut self, i: usize, event: LiveEvent) {
        let (tag, shown) = (self.tag(i), &self.shown[i]);
        match event {
            LiveEvent::Playing => eprintln!("{tag}playing {shown}"),
            LiveEvent::Resumed => eprintln!("{tag}reconnected: analysis resumed"),
            LiveEvent::Warning(w) => eprintln!("{tag}warning: {w}"),
            LiveEvent::Input(e) => eprintln!("{tag}{}", e.message),
            LiveEvent::Lost {
                reason,
                attempt,
                delay,
            } => eprintln!(
                "{tag}stream lost: {reason}; reconnecting to {shown} in {delay:.1} s (attempt {attempt})"
            ),
            LiveEvent::Window(r) => self.window(i, &r),
        }
    }

    fn window(&mut self, i: usize, r: &WindowResult) {
        self.windows[i] += 1;
        if let Some(p) = &self.publisher {
            super::publish::push(p, r, &self.ids[i]);
        }
        println!("{}{}", self.tag(i), line(r));
        let multi = self.multi();
        if let Some(f) = self.jsonl.as_mut() {
            let text = if multi {
                let mut rec = crate::output::jsonl::record(r);
                rec["source"] = serde_json::json!(self.ids[i]);
                format!("{rec}\n")
            } else {
                crate::output::jsonl::line(r)
            };
            let _ = f.write_all(text.as_bytes());
            let _ = f.flush();
        }
    }

    /// Flushes the publisher, prints how each source ended; the exit code.
    fn finish(mut self, ends: Vec<Option<anyhow::Result<LiveEnd>>>) -> anyhow::Result<u8> {
        let multi = self.multi();
        if let Some(p) = self.publisher.take() {
            super::publish::finish(p);
        }
        let mut code = 0;
        for (i, end) in ends.into_iter().enumerate() {
            let tag = self.tag(i);
            match end {
                Some(Ok(LiveEnd::Stopped)) => {
                    eprintln!("{tag}stopped: {} window(s)", self.windows[i])
                }
                Some(Ok(LiveEnd::Failed(reason))) => {
                    if reason.contains("gave up") {
                        eprintln!("{tag}stream lost: {reason}");
                    } else {
                        eprintln!("{tag}error: {reason}");
                    }
                    code = 1;
                }
                Some(Err(e)) if !multi => return Err(e),
                Some(Err(e)) => {
                    eprintln!("{tag}error: {e:#}");
                    code = 1;
                }
                None => code = 1,
            }
        }
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::take_shard;

    #[test]
    fn shards_split_the_list_evenly_and_disjointly() {
        let sources: Vec<String> = (0..10).map(|k| format!("rtsp://cam{k}/")).collect();
        let shards: Vec<Vec<String>> = (0..4).map(|i| take_shard(sources.clone(), i, 4)).collect();
        let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 3, 2, 2]);
        let mut all: Vec<String> = shards.concat();
        all.sort();
        let mut expected = sources.clone();
        expected.sort();
        assert_eq!(all, expected, "each camera in exactly one shard");
        assert_eq!(shards[1], ["rtsp://cam1/", "rtsp://cam5/", "rtsp://cam9/"]);
    }
}
