//! Running an `emotionsense` pipeline from the command line: building the file/URI
//! pipeline, starting it, and reading its bus as typed events — windows as
//! [`WindowResult`]s, errors with their text. Shared by `analyze` and `watch`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Sets `pipeline` to PLAYING; when that fails, the reason is the first error message
/// on its bus.
pub fn start(pipeline: &gst::Pipeline) -> Result<(), String> {
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
    Err(reason.unwrap_or_else(|| format!("could not start the pipeline ({e})")))
}

/// `uridecodebin uri=URI` → `emotionsense` → fakesink: every decoded video stream
/// goes to the element's `video` pad (through videoconvert), audio to `audio`
/// (through audioconvert ! audioresample), as they appear; other streams are ignored.
/// A source without audio or video posts [`Event::NoStreams`].
pub fn file_pipeline(uri: &str, sense: &gst::Element) -> anyhow::Result<gst::Pipeline> {
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("uridecodebin")
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

/// Links a decoded pad to the element's matching input; false for other streams.
fn link_stream(pipeline: &gst::Pipeline, sense: &gst::Element, pad: &gst::Pad) -> bool {
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
