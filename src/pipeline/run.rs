//! Running an `emotionsense` pipeline on a file or URI: building the pipeline from
//! factories, starting it, and reading its bus as typed events — windows as
//! [`WindowResult`]s, errors with their text. Shared by `analyze`, `eval`, `annotate`,
//! `watch` and the server's jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::output::WindowResult;

/// Name of the application message posted when a decoder found no audio or video.
const NO_STREAMS: &str = "gst-emotion-no-streams";

/// What a bus message means to a command.
#[derive(Debug)]
pub enum Event {
    /// A window's result (an `emotion` element message).
    Window(Box<WindowResult>),
    /// End of stream.
    Eos,
    /// An error: its message and the last line of its debug text (may be empty).
    Error {
        /// The error's message.
        message: String,
        /// The last line of the debug details.
        detail: String,
    },
    /// A warning's message.
    Warning(String),
    /// An input of `emotionsense` stalled, ended, jumped or recovered (live).
    Input(crate::element::InputEvent),
    /// The pipeline reached PLAYING.
    Playing,
    /// The input has no audio or video stream.
    NoStreams,
    /// Anything else.
    Other,
}

impl Event {
    /// The meaning of `msg` for a command running `pipeline`.
    pub fn of(msg: &gst::Message, pipeline: &gst::Pipeline) -> Event {
        if let Some(e) = crate::element::InputEvent::from_message(msg) {
            return Event::Input(e);
        }
        match msg.view() {
            gst::MessageView::Element(e) => e
                .structure()
                .filter(|s| s.name() == crate::output::STRUCTURE_NAME)
                .and_then(|s| WindowResult::from_structure(s).ok())
                .map_or(Event::Other, |r| Event::Window(Box::new(r))),
            gst::MessageView::Eos(_) => Event::Eos,
            gst::MessageView::Error(e) => Event::Error {
                message: e.error().to_string(),
                detail: e
                    .debug()
                    .map(|d| d.lines().last().unwrap_or_default().to_string())
                    .unwrap_or_default(),
            },
            gst::MessageView::Warning(w) => Event::Warning(w.error().to_string()),
            gst::MessageView::StateChanged(sc)
                if msg.src() == Some(pipeline.upcast_ref())
                    && sc.current() == gst::State::Playing =>
            {
                Event::Playing
            }
            gst::MessageView::Application(a)
                if a.structure().is_some_and(|s| s.name() == NO_STREAMS) =>
            {
                Event::NoStreams
            }
            _ => Event::Other,
        }
    }
}

/// Why a pipeline run ended without its end of stream.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The pipeline could not be built.
    #[error("{0}")]
    Build(String),
    /// It would not start: the first error message on its bus, or the state change's.
    #[error("{0}")]
    Start(String),
    /// The caller stopped it.
    #[error("cancelled")]
    Cancelled,
    /// Its position did not move for this many seconds.
    #[error("no progress for {0} s: the input stalled")]
    Stalled(u64),
    /// The media has neither audio nor video.
    #[error("no audio or video stream found")]
    NoStreams,
    /// An element posted an error: its message.
    #[error("{0}")]
    Failed(String),
}

/// Sets `pipeline` to PLAYING; when that fails, the reason is the first error message
/// on its bus.
pub fn start(pipeline: &gst::Pipeline) -> Result<(), RunError> {
    let Err(e) = pipeline.set_state(gst::State::Playing) else {
        return Ok(());
    };
    let reason = pipeline.bus().and_then(|bus| {
        bus.iter_filtered(&[gst::MessageType::Error])
            .find_map(|m| match m.view() {
                gst::MessageView::Error(err) => Some(err.error().to_string()),
                _ => None,
            })
    });
    Err(RunError::Start(reason.unwrap_or_else(|| {
        format!("could not start the pipeline ({e})")
    })))
}

/// Sets `sense` up for a pipeline that only reads its results (`file_pipeline`: the
/// video goes to a fakesink): frames leave at once (`result-timing=latest`) instead of
/// waiting for their window's result, which held every decoded frame of a window —
/// hundreds of megabytes at 720p — for nothing. Windows and their results are the
/// same; on files the element still waits for the worker, so none is lost. Call it
/// before the user's own settings, which may override it.
pub fn results_only(sense: &gst::Element) {
    sense.set_property_from_str("result-timing", "latest");
}

/// `uridecodebin uri=URI` → `emotionsense` → fakesink: every decoded video stream
/// goes to the element's `video` pad (through videoconvert), audio to `audio`
/// (through audioconvert ! audioresample), as they appear; other streams are ignored.
/// A source without audio or video posts [`Event::NoStreams`].
pub fn file_pipeline(uri: &str, sense: &gst::Element) -> anyhow::Result<gst::Pipeline> {
    file_pipeline_with(uri, sense, true)
}

/// [`file_pipeline`], with the audio ignored unless `audio`. The decoder is named
/// `src`.
pub fn file_pipeline_with(
    uri: &str,
    sense: &gst::Element,
    audio: bool,
) -> anyhow::Result<gst::Pipeline> {
    prefer_jpeg_parser();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("uridecodebin")
        .name("src")
        .property("uri", uri)
        .build()?;
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()?;
    pipeline.add_many([&src, sense, &sink])?;
    sense.link(&sink)?;
    let linked = Arc::new(AtomicUsize::new(0));
    let counter = linked.clone();
    let pipeline_weak = pipeline.downgrade();
    let sense_weak = sense.downgrade();
    src.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(sense)) = (pipeline_weak.upgrade(), sense_weak.upgrade()) else {
            return;
        };
        if !audio && is_audio(pad) {
            return;
        }
        if link_stream(&pipeline, &sense, pad) {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    // A file whose demuxer finds no audio or video stream must not wait forever.
    let pipeline_weak = pipeline.downgrade();
    src.connect_no_more_pads(move |_| {
        if linked.load(Ordering::SeqCst) == 0
            && let Some(p) = pipeline_weak.upgrade()
        {
            let s = gst::Structure::new_empty(NO_STREAMS);
            let _ = p.post_message(gst::message::Application::new(s));
        }
    });
    Ok(pipeline)
}

/// Lets decodebin put `jpegparse` before `jpegdec` (its rank is none), so a JPEG's
/// EXIF orientation reaches the element as an image-orientation tag: phone photos are
/// analysed upright. Once per process.
fn prefer_jpeg_parser() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Some(f) = gst::ElementFactory::find("jpegparse")
            && f.rank() < gst::Rank::MARGINAL
        {
            f.set_rank(gst::Rank::MARGINAL);
        }
    });
}

fn is_audio(pad: &gst::Pad) -> bool {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    caps.structure(0)
        .is_some_and(|s| s.name().starts_with("audio/"))
}

/// Links a decoded pad to the element's matching input; false for other streams.
pub(crate) fn link_stream(pipeline: &gst::Pipeline, sense: &gst::Element, pad: &gst::Pad) -> bool {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let Some(kind) = caps.structure(0).map(|s| s.name().to_string()) else {
        return false;
    };
    let (chain, target): (&[&str], &str) = if kind.starts_with("video/x-raw") {
        (&["queue", "videoconvert"], "video")
    } else if kind.starts_with("audio/x-raw") {
        (&["queue", "audioconvert", "audioresample"], "audio")
    } else {
        return false;
    };
    let elements: Vec<gst::Element> = chain
        .iter()
        .filter_map(|f| gst::ElementFactory::make(f).build().ok())
        .collect();
    if elements.len() != chain.len() || pipeline.add_many(&elements).is_err() {
        return false;
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
        for e in &elements {
            let _ = e.sync_state_with_parent();
        }
    }
    linked
}

/// No message and no position change for this long is an error: a bad file never
/// holds up a batch.
const STALL: Duration = Duration::from_secs(60);

/// What a file run reports as it goes.
#[derive(Debug)]
pub enum FileProgress {
    /// The media's duration in seconds, once known.
    Duration(f64),
    /// A window's result.
    Window(Box<WindowResult>),
}

/// Runs `sense` over the media at `uri` (a [`file_pipeline`]) to the end, calling
/// `on_window` with each window's result as it finishes; stops early with an error
/// when `cancel` says so. The error is the pipeline's own message.
pub fn run_file(
    uri: &str,
    sense: &gst::Element,
    mut on_window: impl FnMut(WindowResult),
    cancel: &dyn Fn() -> bool,
) -> Result<(), RunError> {
    run_file_with(
        uri,
        sense,
        |p| {
            if let FileProgress::Window(w) = p {
                on_window(*w)
            }
        },
        cancel,
    )
}

/// [`run_file`], also reporting the media's duration.
pub fn run_file_with(
    uri: &str,
    sense: &gst::Element,
    mut on_progress: impl FnMut(FileProgress),
    cancel: &dyn Fn() -> bool,
) -> Result<(), RunError> {
    let pipeline = file_pipeline(uri, sense).map_err(|e| RunError::Build(e.to_string()))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| RunError::Build("pipeline without bus".into()))?;
    let outcome = (|| {
        start(&pipeline)?;
        let mut last_progress = Instant::now();
        let mut last_position = None;
        let mut duration_known = false;
        loop {
            if cancel() {
                return Err(RunError::Cancelled);
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
                let position = pipeline.query_position::<gst::ClockTime>();
                if position != last_position {
                    last_position = position;
                    last_progress = Instant::now();
                } else if last_progress.elapsed() > STALL {
                    return Err(RunError::Stalled(STALL.as_secs()));
                }
                continue;
            };
            last_progress = Instant::now();
            if !duration_known && let Some(d) = pipeline.query_duration::<gst::ClockTime>() {
                duration_known = true;
                on_progress(FileProgress::Duration(d.nseconds() as f64 / 1e9));
            }
            match Event::of(&msg, &pipeline) {
                Event::NoStreams => return Err(RunError::NoStreams),
                Event::Window(w) => on_progress(FileProgress::Window(w)),
                Event::Eos => return Ok(()),
                Event::Error { message, .. } => return Err(RunError::Failed(message)),
                _ => {}
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    outcome
}
