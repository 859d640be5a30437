//! Live sources — a webcam (`/dev/videoN`), an RTSP camera, a file or any URI played
//! live — analysed until stopped: the pipeline, RTSP reconnection with exponential
//! backoff, and credentials kept out of everything reported. Shared by `watch` and the
//! HTTP server's live streams.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use gst::prelude::*;

use super::run::{Event, start};
use crate::bundle::BundleChoice;
use crate::output::WindowResult;

/// How a live source is opened and analysed.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Model bundle (a folder, "default", "none"); `None`: the element's default.
    pub bundle: Option<BundleChoice>,
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
    /// An input stalled, ended, jumped or recovered: windows are cut from the other
    /// input meanwhile (docs/live.md, "When inputs fail").
    Input(crate::element::InputEvent),
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

pub use super::redact;

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

/// Starts feeding an `appsrc` (a [`LiveSource::Feed`]): called once per pipeline
/// with its source, from a GStreamer thread, so it must return at once.
pub type Feeder = Arc<dyn Fn(gst_app::AppSrc) + Send + Sync>;

/// What a live pipeline reads. Every value is set as an element property: nothing
/// a user gave is ever parsed as part of a pipeline description.
#[derive(Clone)]
pub enum LiveSource {
    /// A V4L2 capture device (`/dev/videoN`).
    Device(String),
    /// An RTSP URL, rtspsrc's location.
    Rtsp {
        /// The URL (credentials included).
        location: String,
        /// When set (host as in the URL, port), every RTSP request must go there: a
        /// request to anywhere else (after a redirect, or for a control URL that
        /// points elsewhere) is not sent, and the stream fails.
        only: Option<(String, u16)>,
    },
    /// A URI uridecodebin plays (files, http, ...).
    Uri(String),
    /// Bytes pushed into an appsrc by `feeder` (the server's checked HTTP client).
    Feed {
        /// The URL the bytes come from (for messages; credentials included).
        url: String,
        /// Starts the feeding.
        feeder: Feeder,
    },
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveSource({})", redact(self.text()))
    }
}

impl LiveSource {
    /// The source a command-line argument names: `/dev/videoN`, `rtsp(s)://...`, a
    /// URI, or a file.
    pub fn parse(source: &str) -> anyhow::Result<Self> {
        if source.starts_with("/dev/video") {
            return Ok(Self::Device(source.to_string()));
        }
        if source.starts_with("rtsp://") || source.starts_with("rtsps://") {
            return Ok(Self::Rtsp {
                location: source.to_string(),
                only: None,
            });
        }
        if source.contains("://") {
            return Ok(Self::Uri(source.to_string()));
        }
        let path = std::path::Path::new(source);
        if !path.exists() {
            return Err(anyhow!(
                "{source}: no such file (give /dev/videoN, rtsp://..., a file or a URI)"
            ));
        }
        Self::file(path)
    }

    /// A local file, played as fast as it decodes.
    pub fn file(path: &std::path::Path) -> anyhow::Result<Self> {
        let abs = path.canonicalize()?;
        Ok(Self::Uri(
            gst::glib::filename_to_uri(&abs, None)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?
                .to_string(),
        ))
    }

    /// The source's text (credentials included: pass it through [`redact`]).
    pub fn text(&self) -> &str {
        match self {
            Self::Device(s) | Self::Uri(s) => s,
            Self::Rtsp { location, .. } => location,
            Self::Feed { url, .. } => url,
        }
    }
}

/// Makes element `factory`.
fn make(factory: &str) -> anyhow::Result<gst::Element> {
    gst::ElementFactory::make(factory)
        .build()
        .with_context(|| format!("creating {factory} (is its GStreamer plugin installed?)"))
}

/// Adds `chain` to `pipeline`, links it in order and its end to `sense`'s `input` pad.
fn link_into(
    pipeline: &gst::Pipeline,
    chain: &[gst::Element],
    sense: &gst::Element,
    input: &str,
) -> anyhow::Result<()> {
    pipeline.add_many(chain)?;
    gst::Element::link_many(chain)?;
    let sink = sense
        .request_pad_simple(input)
        .ok_or_else(|| anyhow!("emotionsense has no {input} pad"))?;
    let last = chain.last().ok_or_else(|| anyhow!("empty chain"))?;
    last.static_pad("src")
        .ok_or_else(|| anyhow!("no src pad"))?
        .link(&sink)?;
    Ok(())
}

/// A capture device and (unless `no_audio`) the default microphone.
fn webcam(
    pipeline: &gst::Pipeline,
    device: &str,
    sense: &gst::Element,
    audio: bool,
) -> anyhow::Result<()> {
    let src = gst::ElementFactory::make("v4l2src")
        .name("src")
        .property("device", device)
        .build()
        .context("creating v4l2src (install gstreamer1.0-plugins-good)")?;
    let queue = gst::ElementFactory::make("queue")
        .property("max-size-buffers", 2u32)
        .property_from_str("leaky", "downstream")
        .build()?;
    link_into(
        pipeline,
        &[src, make("videoconvert")?, queue],
        sense,
        "video",
    )?;
    if audio {
        let chain = [
            make("autoaudiosrc")?,
            make("audioconvert")?,
            make("audioresample")?,
            make("queue")?,
        ];
        link_into(pipeline, &chain, sense, "audio")?;
    }
    Ok(())
}

/// rtspsrc, each RTP stream through its own decodebin to the element (the first
/// video and, unless `no_audio`, the first audio stream).
fn rtsp(
    pipeline: &gst::Pipeline,
    location: &str,
    only: Option<&(String, u16)>,
    opts: &LiveOptions,
    sense: &gst::Element,
) -> anyhow::Result<()> {
    let src = gst::ElementFactory::make("rtspsrc")
        .name("src")
        .property("location", location)
        .property("latency", opts.latency)
        .property_from_str(
            "protocols",
            if opts.transport == "udp" {
                "udp"
            } else {
                "tcp"
            },
        )
        .build()
        .context("creating rtspsrc (install gstreamer1.0-plugins-good)")?;
    if let Some(only) = only {
        guard_rtsp_requests(&src, only.clone());
    }
    pipeline.add(&src)?;
    let audio = !opts.no_audio;
    let pipeline_weak = pipeline.downgrade();
    let sense_weak = sense.downgrade();
    src.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(sense)) = (pipeline_weak.upgrade(), sense_weak.upgrade()) else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let media = caps
            .structure(0)
            .and_then(|s| s.get::<String>("media").ok())
            .unwrap_or_default();
        if media != "video" && !(audio && media == "audio") {
            return;
        }
        let Ok(decode) = gst::ElementFactory::make("decodebin").build() else {
            return;
        };
        if pipeline.add(&decode).is_err() {
            return;
        }
        let (p, e) = (pipeline.downgrade(), sense.downgrade());
        decode.connect_pad_added(move |_, pad| {
            if let (Some(p), Some(e)) = (p.upgrade(), e.upgrade()) {
                super::run::link_stream(&p, &e, pad);
            }
        });
        let _ = decode.sync_state_with_parent();
        if let Some(sink) = decode.static_pad("sink") {
            let _ = pad.link(&sink);
        }
    });
    Ok(())
}

/// Refuses (does not send) any RTSP request whose URL is not at `only`: after a
/// redirect, or for a stream whose control URL points elsewhere. The refusal is an
/// error on the bus.
fn guard_rtsp_requests(src: &gst::Element, only: (String, u16)) {
    src.connect("before-send", false, move |args| {
        let element = args[0].get::<gst::Element>().ok()?;
        let message = args[1].get::<gst_rtsp::rtsp_message::RTSPMessage>().ok()?;
        let uri = request_uri(&message);
        let target = uri
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| Some((u.host_str()?.to_ascii_lowercase(), u.port().unwrap_or(554))));
        let allowed = uri.is_none() || target.as_ref() == Some(&only);
        if !allowed {
            element.post_error_message(gst::error_msg!(
                gst::ResourceError::OpenRead,
                [
                    "the camera sent the stream elsewhere ({}); only {}:{} was checked",
                    redact(uri.as_deref().unwrap_or("?")),
                    only.0,
                    only.1
                ]
            ));
        }
        Some(allowed.to_value())
    });
}

/// The URL of an RTSP request (`None` for a response or `*`).
fn request_uri(message: &gst_rtsp::rtsp_message::RTSPMessage) -> Option<String> {
    use gst::glib::translate::ToGlibPtr;
    let mut method = 0;
    let mut uri: *const std::ffi::c_char = std::ptr::null();
    let mut version = 0;
    // SAFETY: the message is valid for the call; `uri` points into it and is copied
    // before the message is dropped.
    unsafe {
        let ptr: *const gst_rtsp::ffi::GstRTSPMessage = message.to_glib_none().0;
        if gst_rtsp::ffi::gst_rtsp_message_get_type(ptr as *mut _)
            != gst_rtsp::ffi::GST_RTSP_MESSAGE_REQUEST
        {
            return None;
        }
        if gst_rtsp::ffi::gst_rtsp_message_parse_request(
            ptr as *mut _,
            &mut method,
            &mut uri,
            &mut version,
        ) != gst_rtsp::ffi::GST_RTSP_OK
            || uri.is_null()
        {
            return None;
        }
        let text = std::ffi::CStr::from_ptr(uri).to_string_lossy().into_owned();
        (text != "*").then_some(text)
    }
}

/// uridecodebin playing `appsrc://`, whose appsrc `feeder` fills.
fn fed(feeder: &Feeder, sense: &gst::Element, audio: bool) -> anyhow::Result<gst::Pipeline> {
    let pipeline = super::run::file_pipeline_with("appsrc://", sense, audio)?;
    let src = pipeline
        .by_name("src")
        .ok_or_else(|| anyhow!("no uridecodebin"))?;
    let feeder = feeder.clone();
    src.connect("source-setup", false, move |args| {
        let appsrc = args[1].get::<gst::Element>().ok()?;
        let appsrc = appsrc.downcast::<gst_app::AppSrc>().ok()?;
        appsrc.set_format(gst::Format::Bytes);
        appsrc.set_block(true);
        appsrc.set_max_bytes(4 << 20);
        appsrc.set_stream_type(gst_app::AppStreamType::Stream);
        feeder(appsrc);
        None
    });
    Ok(pipeline)
}

fn build(source: &LiveSource, opts: &LiveOptions) -> anyhow::Result<gst::Pipeline> {
    let sense = make("emotionsense")?;
    sense.set_property("device", &opts.device);
    super::apply_bundle(&sense, opts.bundle.as_ref());
    for p in &opts.properties {
        super::set_property_checked(&sense, p)?;
    }
    let audio = !opts.no_audio;
    let pipeline = match source {
        LiveSource::Uri(uri) => super::run::file_pipeline_with(uri, &sense, audio)?,
        LiveSource::Feed { feeder, .. } => fed(feeder, &sense, audio)?,
        LiveSource::Device(device) => {
            let p = gst::Pipeline::new();
            p.add(&sense)?;
            webcam(&p, device, &sense, audio)?;
            p
        }
        LiveSource::Rtsp { location, only } => {
            let p = gst::Pipeline::new();
            p.add(&sense)?;
            rtsp(&p, location, only.as_ref(), opts, &sense)?;
            p
        }
    };
    if matches!(source, LiveSource::Device(_) | LiveSource::Rtsp { .. }) {
        let sink = fakesink()?;
        pipeline.add(&sink)?;
        sense.link(&sink)?;
    }
    if let Some(name) = &opts.name {
        pipeline.set_property("name", name);
    }
    Ok(pipeline)
}

fn fakesink() -> anyhow::Result<gst::Element> {
    Ok(gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()?)
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
    source: &LiveSource,
    opts: &LiveOptions,
    mut on_event: impl FnMut(LiveEvent),
    stop: &dyn Fn() -> u32,
) -> anyhow::Result<LiveEnd> {
    opts.validate()?;
    let rtsp = matches!(source, LiveSource::Rtsp { .. });
    let mut failures = 0u32;
    loop {
        let pipeline = build(source, opts)?;
        let started = Instant::now();
        let mut windows = 0u64;
        let resumed = failures > 0;
        let end = play(&pipeline, source.text(), rtsp, stop, &mut |event| {
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
            End::Lost(reason) => scrub(&reason, source.text()),
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
        return End::Lost(reason.to_string());
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
            Event::Input(e) => on_event(LiveEvent::Input(e)),
            Event::NoStreams => return End::Lost("no audio or video stream found".into()),
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
