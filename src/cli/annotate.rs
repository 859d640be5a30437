//! `gst-emotion annotate INPUT OUTPUT.mp4`: the video with the overlay drawn in step
//! (each frame shows its own window's result), the audio passed through, and the
//! transcript + emotion as subtitles — a text track in the MP4 (mov_text), or SRT /
//! WebVTT beside it.
//!
//! One pass decodes, analyses and encodes:
//!
//! ```text
//! uridecodebin ─ video ─ queue ─ videoflip ─ videoconvert ─ emotionsense (overlay, in step) ─ videoconvert ─ x264enc ─┐
//!              └ audio ─ queue ─ emotionsense.audio                                                   mp4mux ─ file
//!                                emotionsense.audio_src (in step with the video) ─ queue ─ avenc_aac ─┘
//! ```
//!
//! The video is written upright: `videoflip` turns pictures stored sideways (a phone's
//! image-orientation tag, or the user's fixed `orientation`) before the element, and the
//! tag it passes on is rewritten to `rotate-0`, so the overlay's text reads upright and
//! players do not turn the picture a second time.
//!
//! The text track is added afterwards by remuxing (no re-encoding): a muxer fed cues
//! while the video waits for them would wait on itself. Everything is written under a
//! temporary name and renamed when complete. Memory does not grow with the length of
//! the video: the element holds at most `max-pending-windows` windows of frames.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use gst::prelude::*;

use super::inputs::file_input;
use crate::bundle::BundleChoice;
use crate::output::WindowResult;
use crate::output::files::write_atomic;
use crate::output::subtitles::{self, Cue};
use crate::pipeline::run::{Event, start};

/// Where the subtitles go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SubtitleForm {
    /// A text track (mov_text) in the MP4.
    Track,
    /// OUTPUT.srt beside the video.
    Srt,
    /// OUTPUT.vtt beside the video.
    Vtt,
    /// No subtitles.
    None,
}

/// Options of `annotate`.
#[derive(Debug, clap::Args)]
pub struct AnnotateArgs {
    /// The video to annotate: a file or a URI.
    pub input: String,
    /// The annotated video to write (MP4: H.264 video, AAC audio).
    pub output: PathBuf,
    /// Model bundle: a folder, "default", "accurate" (used when built, else the default
    /// bundle when it is) or "none".
    #[arg(long)]
    pub bundle: Option<BundleChoice>,
    /// Device for the model: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Window mode: auto (utterances and the stretches between them), utterance or
    /// sliding.
    #[arg(long, default_value = "auto", value_parser = ["auto", "utterance", "sliding"])]
    pub window_mode: String,
    /// Subtitles: a text track in the MP4, SRT or WebVTT beside it, or none
    /// (comma-separated for several).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "track")]
    pub subtitles: Vec<SubtitleForm>,
    /// Video quality: x264's constant-quality factor (lower is better and larger;
    /// 18 is visually lossless, 23 the usual default).
    #[arg(long, default_value_t = 21, value_parser = clap::value_parser!(u32).range(0..=50))]
    pub quality: u32,
    /// Overwrite OUTPUT when it exists.
    #[arg(long)]
    pub force: bool,
    /// More emotionsense properties, as name=value (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub properties: Vec<String>,
}

/// Runs `annotate`; returns the process exit code (0 written, 1 the input failed).
pub fn run(args: AnnotateArgs) -> anyhow::Result<u8> {
    gst::init()?;
    crate::register_static()?;
    if args.output.exists() && !args.force {
        bail!(
            "{} exists (use --force to overwrite it)",
            args.output.display()
        );
    }
    if args.output.extension().and_then(|e| e.to_str()) != Some("mp4") {
        bail!("OUTPUT must end in .mp4: {}", args.output.display());
    }
    let uri = if args.input.contains("://") {
        args.input.clone()
    } else {
        let path = Path::new(&args.input);
        if !path.is_file() {
            bail!("no such file: {}", args.input);
        }
        file_input(path).uri
    };
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let sense = sense_element(&args)?;
    let encoded = temporary(&args.output, "encoding");
    let outcome = encode(&args, &uri, &sense, &encoded).and_then(|encoded_run| {
        finish(&args, &encoded, &encoded_run)?;
        Ok(encoded_run.windows)
    });
    let _ = std::fs::remove_file(&encoded);
    match outcome {
        Ok(windows) => {
            println!(
                "{}: {} window(s), subtitles {}",
                args.output.display(),
                windows.len(),
                args.subtitles
                    .iter()
                    .map(|s| format!("{s:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("gst-emotion annotate: {}: {e:#}", args.input);
            Ok(1)
        }
    }
}

/// The `emotionsense` of the run: overlay on, in step, the user's settings.
fn sense_element(args: &AnnotateArgs) -> anyhow::Result<gst::Element> {
    let sense = gst::ElementFactory::make("emotionsense").build()?;
    sense.set_property_from_str("window-mode", &args.window_mode);
    sense.set_property("device", &args.device);
    sense.set_property("overlay", true);
    sense.set_property_from_str("result-timing", "in-step");
    crate::pipeline::apply_bundle(
        &sense,
        crate::pipeline::file_bundle(args.bundle.as_ref()).as_ref(),
    );
    for p in &args.properties {
        crate::pipeline::set_property_checked(&sense, p)?;
    }
    Ok(sense)
}

/// A `videoflip` that turns the video upright as `sense` would have turned it for
/// analysis (its `orientation`: the tag, or the user's fixed setting), and tells
/// everything after it that the picture is upright (`image-orientation=rotate-0`);
/// `sense` then takes the picture as it comes.
fn upright(sense: &gst::Element) -> anyhow::Result<gst::Element> {
    let method = sense.property_value("orientation");
    sense.set_property_from_str("orientation", "identity");
    let flip = make("videoflip")?;
    flip.set_property_from_value("video-direction", &method);
    let pad = flip
        .static_pad("src")
        .ok_or_else(|| anyhow!("videoflip without src"))?;
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        if let Some(gst::PadProbeData::Event(event)) = &mut info.data
            && let gst::EventView::Tag(tag) = event.view()
            && tag.tag().get::<gst::tags::ImageOrientation>().is_some()
        {
            let mut tags = tag.tag_owned();
            tags.make_mut()
                .add::<gst::tags::ImageOrientation>(&"rotate-0", gst::TagMergeMode::Replace);
            *event = gst::event::Tag::new(tags);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(flip)
}

/// A new element of `factory`, or an error naming the missing element.
fn make(factory: &str) -> anyhow::Result<gst::Element> {
    gst::ElementFactory::make(factory)
        .build()
        .with_context(|| format!("GStreamer element {factory} is missing"))
}

/// A temporary file beside `output`, removed or renamed by the run.
fn temporary(output: &Path, what: &str) -> PathBuf {
    output.with_extension(format!("{what}.tmp{}.mp4", std::process::id()))
}

/// Decodes, analyses and encodes `uri` into `out`; returns the windows and whether
/// there is audio.
fn encode(
    args: &AnnotateArgs,
    uri: &str,
    sense: &gst::Element,
    out: &Path,
) -> anyhow::Result<Encoded> {
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("uridecodebin")
        .property("uri", uri)
        .build()?;
    let post = make("videoconvert")?;
    let i420 = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .build(),
        )
        .build()?;
    let x264 = make("x264enc")?;
    x264.set_property_from_str("pass", "qual");
    x264.set_property("quantizer", args.quality);
    x264.set_property_from_str("speed-preset", "veryfast");
    let parse = make("h264parse")?;
    let mux = make("mp4mux")?;
    let sink = gst::ElementFactory::make("filesink")
        .property("location", out.to_string_lossy().as_ref())
        .build()?;
    pipeline.add_many([&src, sense, &post, &i420, &x264, &parse, &mux, &sink])?;
    gst::Element::link_many([sense, &post, &i420, &x264, &parse, &mux, &sink])?;

    let found: Arc<Mutex<Streams>> = Arc::default();
    let (p, s, m, f) = (
        pipeline.downgrade(),
        sense.downgrade(),
        mux.downgrade(),
        found.clone(),
    );
    src.connect_pad_added(move |_, pad| {
        let (Some(p), Some(s), Some(m)) = (p.upgrade(), s.upgrade(), m.upgrade()) else {
            return;
        };
        let linked = link_decoded(&p, &s, &m, pad);
        let mut found = f.lock().unwrap_or_else(|e| e.into_inner());
        match linked {
            Ok(Some(Kind::Video)) => found.video = true,
            Ok(Some(Kind::Audio)) => found.audio = true,
            Ok(None) => {}
            Err(e) => found.error = Some(e.to_string()),
        }
    });
    let f = found.clone();
    src.connect_no_more_pads(move |_| {
        let mut found = f.lock().unwrap_or_else(|e| e.into_inner());
        if !found.video && found.error.is_none() {
            found.error = Some("the input has no video stream to annotate".into());
        }
    });

    let bar = progress_bar();
    let bus = pipeline
        .bus()
        .ok_or_else(|| anyhow!("pipeline without bus"))?;
    let outcome = (|| -> anyhow::Result<Vec<WindowResult>> {
        start(&pipeline)?;
        let mut windows = Vec::new();
        let mut last_move = (Instant::now(), None);
        loop {
            if let Some(e) = found.lock().unwrap_or_else(|e| e.into_inner()).error.take() {
                bail!(e);
            }
            let position = pipeline.query_position::<gst::ClockTime>();
            if let Some(bar) = &bar {
                if let Some(d) = pipeline.query_duration::<gst::ClockTime>() {
                    bar.set_length(d.mseconds());
                }
                bar.set_position(position.map_or(0, |p| p.mseconds()));
            }
            if position != last_move.1 {
                last_move = (Instant::now(), position);
            } else if last_move.0.elapsed() > Duration::from_secs(120) {
                bail!("no progress for 120 s: the input stalled");
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
                continue;
            };
            match Event::of(&msg, &pipeline) {
                Event::Window(w) => {
                    if let Some(bar) = &bar {
                        bar.set_message(format!("{} window(s)", windows.len() + 1));
                    }
                    windows.push(*w);
                }
                Event::Eos => break,
                Event::Error { message, detail } => bail!("{message} ({detail})"),
                Event::NoStreams => bail!("no audio or video stream found"),
                _ => {}
            }
        }
        Ok(windows)
    })();
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let audio = found.lock().unwrap_or_else(|e| e.into_inner()).audio;
    outcome.map(|windows| Encoded { windows, audio })
}

/// What the decoder found.
#[derive(Debug, Default)]
struct Streams {
    video: bool,
    audio: bool,
    /// Why a stream could not be linked, or the input is unusable.
    error: Option<String>,
}

/// A stream kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Video,
    Audio,
}

/// The first pass's outcome.
struct Encoded {
    windows: Vec<WindowResult>,
    /// Whether the encoded file has an audio track.
    audio: bool,
}

/// Links a decoded stream: video into the element, audio into the element and (through
/// a deep queue, encoded) into the muxer; other streams are left alone.
fn link_decoded(
    pipeline: &gst::Pipeline,
    sense: &gst::Element,
    mux: &gst::Element,
    pad: &gst::Pad,
) -> anyhow::Result<Option<Kind>> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let kind = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let chain = |elements: &[&gst::Element], into: &gst::Pad| -> anyhow::Result<()> {
        pipeline.add_many(elements.iter().copied())?;
        gst::Element::link_many(elements.iter().copied())?;
        elements
            .last()
            .and_then(|e| e.static_pad("src"))
            .ok_or_else(|| anyhow!("element without src pad"))?
            .link(into)?;
        for e in elements {
            e.sync_state_with_parent()?;
        }
        Ok(())
    };
    let request = |element: &gst::Element, name: &str| {
        element
            .request_pad_simple(name)
            .ok_or_else(|| anyhow!("{} has no {name} pad", element.name()))
    };
    if kind.starts_with("video/x-raw") {
        let (queue, convert) = (make("queue")?, make("videoconvert")?);
        let flip = upright(sense)?;
        chain(&[&queue, &flip, &convert], &request(sense, "video")?)?;
        pad.link(&queue.static_pad("sink").expect("queue sink"))?;
        Ok(Some(Kind::Video))
    } else if kind.starts_with("audio/x-raw") {
        // The audio goes into the element as it is (it converts its own copy for the
        // analysis) and leaves on audio_src in step with the video, for the muxer.
        let queue = make("queue")?;
        chain(&[&queue], &request(sense, "audio")?)?;
        let passed = sense
            .static_pad("audio_src")
            .ok_or_else(|| anyhow!("emotionsense has no audio_src pad"))?;
        // The encoder holds some frames before it outputs any (lookahead, frame
        // threads): the audio queue holds as much, bounded in time.
        let q2 = gst::ElementFactory::make("queue")
            .property("max-size-time", 10 * gst::ClockTime::SECOND.nseconds())
            .property("max-size-bytes", 0u32)
            .property("max-size-buffers", 0u32)
            .build()?;
        let (convert, resample, aac) = (
            make("audioconvert")?,
            make("audioresample")?,
            make("avenc_aac")?,
        );
        chain(
            &[&q2, &convert, &resample, &aac],
            &request(mux, "audio_%u")?,
        )?;
        passed.link(&q2.static_pad("sink").expect("queue sink"))?;
        pad.link(&queue.static_pad("sink").expect("queue sink"))?;
        Ok(Some(Kind::Audio))
    } else {
        Ok(None)
    }
}

/// Adds the subtitles the user asked for and moves the video into place.
fn finish(args: &AnnotateArgs, encoded: &Path, run: &Encoded) -> anyhow::Result<()> {
    let cues = subtitles::cues(&run.windows);
    let beside = |ext: &str| args.output.with_extension(ext);
    if args.subtitles.contains(&SubtitleForm::Srt) {
        write_atomic(&beside("srt"), subtitles::srt(&cues).as_bytes())?;
    }
    if args.subtitles.contains(&SubtitleForm::Vtt) {
        write_atomic(&beside("vtt"), subtitles::webvtt(&cues).as_bytes())?;
    }
    if args.subtitles.contains(&SubtitleForm::Track) && !cues.is_empty() {
        let remuxed = temporary(&args.output, "subtitles");
        let result = add_text_track(encoded, run.audio, &cues, &remuxed)
            .and_then(|_| Ok(std::fs::rename(&remuxed, &args.output)?));
        let _ = std::fs::remove_file(&remuxed);
        return result;
    }
    std::fs::rename(encoded, &args.output)
        .with_context(|| format!("moving the video to {}", args.output.display()))
}

/// Copies the streams of `input` (no re-encoding) into `out` with a text track made of
/// `cues` (gaps between cues are empty samples).
fn add_text_track(input: &Path, audio: bool, cues: &[Cue], out: &Path) -> anyhow::Result<()> {
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", input.to_string_lossy().as_ref())
        .build()?;
    let demux = gst::ElementFactory::make("qtdemux").build()?;
    let mux = gst::ElementFactory::make("mp4mux").build()?;
    let sink = gst::ElementFactory::make("filesink")
        .property("location", out.to_string_lossy().as_ref())
        .build()?;
    let text = gst_app::AppSrc::builder()
        .caps(
            &gst::Caps::builder("text/x-raw")
                .field("format", "utf8")
                .build(),
        )
        .format(gst::Format::Time)
        .build();
    pipeline.add_many([&src, &demux, &mux, &sink, text.upcast_ref()])?;
    src.link(&demux)?;
    mux.link(&sink)?;
    // Streams present in the encoded file; their muxer pads are requested now, before
    // data flows, so the muxer waits for each.
    let streams: &[&str] = if audio {
        &["video", "audio"]
    } else {
        &["video"]
    };
    // A multiqueue, as decodebin uses: when one stream ends early (audio shorter than
    // the video), the other's queue grows instead of blocking the demuxer for good.
    let queues = gst::ElementFactory::make("multiqueue").build()?;
    pipeline.add(&queues)?;
    let mut pads = Vec::new();
    for kind in streams {
        let sink = queues
            .request_pad_simple("sink_%u")
            .ok_or_else(|| anyhow!("multiqueue has no sink pad"))?;
        let index = sink.name().trim_start_matches("sink_").to_string();
        let src = queues
            .static_pad(&format!("src_{index}"))
            .ok_or_else(|| anyhow!("multiqueue has no src_{index}"))?;
        let template = if *kind == "video" {
            "video_%u"
        } else {
            "audio_%u"
        };
        let mux_pad = mux
            .request_pad_simple(template)
            .ok_or_else(|| anyhow!("mp4mux has no {template} pad"))?;
        src.link(&mux_pad)?;
        pads.push((kind.to_string(), sink));
    }
    let text_pad = mux
        .request_pad_simple("subtitle_%u")
        .ok_or_else(|| anyhow!("mp4mux has no subtitle pad"))?;
    text.static_pad("src")
        .expect("appsrc src")
        .link(&text_pad)?;
    let pads = Arc::new(Mutex::new(pads));
    demux.connect_pad_added(move |_, pad| {
        let name = pad.name();
        let kind = if name.starts_with("video") {
            "video"
        } else {
            "audio"
        };
        let mut pads = pads.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = pads.iter().position(|(k, _)| k == kind) {
            let (_, sink) = pads.remove(i);
            let _ = pad.link(&sink);
        }
    });
    // Every cue is known: push them all (with empty samples over the gaps), then EOS.
    let mut at = 0.0;
    for cue in cues {
        if cue.start > at {
            push_text(&text, at, cue.start, "")?;
        }
        push_text(&text, cue.start, cue.end, &cue.text)?;
        at = cue.end;
    }
    let _ = text.end_of_stream();
    let bus = pipeline
        .bus()
        .ok_or_else(|| anyhow!("pipeline without bus"))?;
    start(&pipeline)?;
    let outcome = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(120)) else {
            break Err(anyhow!("adding the subtitle track stalled"));
        };
        match Event::of(&msg, &pipeline) {
            Event::Eos => break Ok(()),
            Event::Error { message, detail } => {
                break Err(anyhow!("adding the subtitle track: {message} ({detail})"));
            }
            _ => {}
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    outcome
}

/// One text sample from `start` to `end` seconds.
fn push_text(src: &gst_app::AppSrc, start: f64, end: f64, text: &str) -> anyhow::Result<()> {
    let mut buf = gst::Buffer::from_slice(text.as_bytes().to_vec());
    {
        let b = buf.get_mut().expect("new buffer");
        b.set_pts(gst::ClockTime::from_nseconds((start * 1e9) as u64));
        b.set_duration(gst::ClockTime::from_nseconds(((end - start) * 1e9) as u64));
    }
    src.push_buffer(buf)
        .map_err(|e| anyhow!("queueing a subtitle: {e:?}"))?;
    Ok(())
}

/// A progress bar over the media's duration, on a terminal.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {percent:>3}%  {msg}  elapsed {elapsed}  ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}
