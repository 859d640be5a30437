//! Live sources — a webcam (`/dev/videoN`), an RTSP camera, a file or any URI played
//! live — analysed until stopped: the pipeline, RTSP reconnection with exponential
//! backoff, and credentials kept out of everything reported. Shared by `watch` and the
//! HTTP server's live streams.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use gst::prelude::*;

use super::runner::{Event, start};
use crate::output::WindowResult;

/// How a live source is opened and analysed.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Model bundle (a folder, "default", "none"); `None`: the element's default.
    pub bundle: Option<String>,
    /// Device for the model.
    pub device: String,
    /// Ignore the source's audio.
    pub no_audio: bool,
    /// RTSP: reconnect at most this many times in a row (0: never give up).
    pub max_reconnects: u32,
    /// RTSP: first reconnect delay (s), doubling up to `backoff_max`.
    pub backoff_min: f64,
    /// RTSP: longest reconnect delay (s).
    pub backoff_max: f64,
    /// RTSP: jitter-buffer latency (ms).
    pub latency: u32,
    /// RTSP: lower transport, `tcp` or `udp`.
    pub transport: String,
    /// More emotionsense properties, as `name=value`.
    pub properties: Vec<String>,
    /// Name of the pipeline (it names the source in logs and published records).
    pub name: Option<String>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            bundle: None,
            device: "auto".into(),
            no_audio: false,
            max_reconnects: 0,
            backoff_min: 1.0,
            backoff_max: 30.0,
            latency: 200,
            transport: "tcp".into(),
            properties: Vec::new(),
            name: None,
        }
    }
}

impl LiveOptions {
    /// Checks the options a user gave.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.transport != "tcp" && self.transport != "udp" {
            return Err(anyhow!("--transport {}: use tcp or udp", self.transport));
        }
        if !(self.backoff_min > 0.0 && self.backoff_max >= self.backoff_min) {
            return Err(anyhow!("need 0 < --backoff-min <= --backoff-max"));
        }
        Ok(())
    }
}

/// What happens to a live source, as it happens.
#[derive(Debug)]
pub enum LiveEvent {
    /// The pipeline is playing.
    Playing,
    /// A window's result.
    Window(Box<WindowResult>),
    /// A warning (credentials removed).
    Warning(String),
    /// The first window after a reconnection.
    Resumed,
    /// The stream broke; reconnecting after `delay` seconds (attempt `attempt`).
    Lost {
        /// Why (credentials removed).
        reason: String,
        /// Reconnect attempt number, from 1.
        attempt: u32,
        /// Seconds until the attempt.
        delay: f64,
    },
}

/// How a live analysis ended.
#[derive(Debug, PartialEq, Eq)]
pub enum LiveEnd {
    /// Stopped on request, or a finite source ended.
    Stopped,
    /// The source failed for good (not RTSP, or reconnects exhausted); why.
    Failed(String),
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
pub fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact(url));
    if let Some((_, rest)) = url.split_once("://")
        && let Some((userinfo, _)) = rest.split('/').next().unwrap_or("").rsplit_once('@')
        && !userinfo.is_empty()
    {
        out = out.replace(userinfo, "***");
    }
    out
}

/// What kind of source a string names.
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

fn build(source: &str, opts: &LiveOptions, kind: &Kind) -> anyhow::Result<gst::Pipeline> {
    let audio = !opts.no_audio;
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
                opts.latency,
                if opts.transport == "udp" {
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
    if let Some(name) = &opts.name {
        pipeline.set_property("name", name);
    }
    let src = pipeline.by_name("src").expect("named in the description");
    match kind {
        Kind::Webcam => src.set_property("device", source),
        // Set after parsing so credentials need no escaping in the description.
        Kind::Rtsp => src.set_property("location", source),
        Kind::Uri(_) => {}
    }
    let e = pipeline.by_name("e").expect("named in the description");
    e.set_property("device", &opts.device);
    super::apply_bundle(&e, opts.bundle.as_deref());
    for p in &opts.properties {
        super::set_property_checked(&e, p).map_err(|e| anyhow!(e))?;
    }
    Ok(pipeline)
}

enum End {
    /// Stopped, or the end of a finite source.
    Done,
    /// The stream broke (error, or an RTSP server ending the stream).
    Lost(String),
}

/// Analyses `source` live until `stop()` asks (1: end the stream with EOS so the last
/// windows are analysed; 2 or more: at once) or it fails. RTSP sources that drop are
/// reconnected with exponential backoff. Every event goes to `on_event` as it happens.
pub fn run_live(
    source: &str,
    opts: &LiveOptions,
    mut on_event: impl FnMut(LiveEvent),
    stop: &dyn Fn() -> u32,
) -> anyhow::Result<LiveEnd> {
    opts.validate()?;
    let kind = kind(source)?;
    let rtsp = matches!(kind, Kind::Rtsp);
    let mut failures = 0u32;
    loop {
        let pipeline = build(source, opts, &kind)?;
        let started = Instant::now();
        let mut windows = 0u64;
        let resumed = failures > 0;
        let end = play(&pipeline, source, rtsp, stop, &mut |event| {
            if let LiveEvent::Window(_) = &event {
                if windows == 0 && resumed {
                    on_event(LiveEvent::Resumed);
                }
                windows += 1;
            }
            on_event(event);
        });
        let _ = pipeline.set_state(gst::State::Null);
        let reason = match end {
            End::Done => return Ok(LiveEnd::Stopped),
            End::Lost(reason) => scrub(&reason, source),
        };
        if !rtsp {
            return Ok(LiveEnd::Failed(reason));
        }
        // A session that delivered results resets the backoff.
        if windows > 0 || started.elapsed() > Duration::from_secs(30) {
            failures = 0;
        }
        failures += 1;
        if opts.max_reconnects > 0 && failures > opts.max_reconnects {
            return Ok(LiveEnd::Failed(format!(
                "{reason}; gave up after {} reconnect attempt(s)",
                opts.max_reconnects
            )));
        }
        let delay = (opts.backoff_min * 2f64.powi(failures as i32 - 1)).min(opts.backoff_max);
        on_event(LiveEvent::Lost {
            reason,
            attempt: failures,
            delay,
        });
        let until = Instant::now() + Duration::from_secs_f64(delay);
        while Instant::now() < until {
            if stop() > 0 {
                return Ok(LiveEnd::Stopped);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Plays `pipeline` until a stop request (then EOS is sent and waited for), EOS or an
/// error.
fn play(
    pipeline: &gst::Pipeline,
    source: &str,
    rtsp: bool,
    stop: &dyn Fn() -> u32,
    on_event: &mut dyn FnMut(LiveEvent),
) -> End {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    if let Err(reason) = start(pipeline) {
        return End::Lost(reason);
    }
    let mut stopping: Option<Instant> = None;
    loop {
        let requests = stop();
        if requests > 0 && stopping.is_none() {
            pipeline.send_event(gst::event::Eos::new());
            stopping = Some(Instant::now());
        }
        if requests > 1 || stopping.is_some_and(|t| t.elapsed() > Duration::from_secs(10)) {
            return End::Done;
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match Event::of(&msg, pipeline) {
            Event::Window(r) => on_event(LiveEvent::Window(r)),
            Event::Playing => on_event(LiveEvent::Playing),
            Event::Warning(w) => on_event(LiveEvent::Warning(scrub(&w, source))),
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
