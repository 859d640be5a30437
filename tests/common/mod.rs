//! Shared helpers for the integration tests: plugin registration, fixture clips made
//! with GStreamer's own encoders, and running pipelines to EOS under a deadline.

#![allow(dead_code)]

pub mod redis;
pub mod rtsp;
pub mod s3;
pub mod serve;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gst::prelude::*;

/// Initialises GStreamer and registers the `emotion` plugin in this process.
pub fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        gst::init().expect("gst::init");
        gst_emotion::register_static().expect("register emotion plugin");
    });
}

/// A directory for this test binary's generated media. Those that test binaries no
/// longer running left behind are removed first (they hold hundreds of MB each).
pub fn fixture_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = std::env::temp_dir();
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("gst-emotion-tests-")
                && pid.parse::<u32>().is_ok()
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = tmp.join(format!("gst-emotion-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create fixture dir");
        dir
    })
    .clone()
}

/// What a generated clip contains.
#[derive(Clone, Copy, Debug)]
pub struct ClipSpec {
    pub seconds: u32,
    pub video: bool,
    pub audio: bool,
    pub fps: u32,
}

impl ClipSpec {
    /// Video and audio at 30 fps.
    pub const fn av(seconds: u32) -> Self {
        Self {
            seconds,
            video: true,
            audio: true,
            fps: 30,
        }
    }

    /// Video only.
    pub const fn video_only(seconds: u32, fps: u32) -> Self {
        Self {
            seconds,
            video: true,
            audio: false,
            fps,
        }
    }

    /// Audio only.
    pub const fn audio_only(seconds: u32) -> Self {
        Self {
            seconds,
            video: false,
            audio: true,
            fps: 30,
        }
    }
}

/// Encodes a clip (H.264 video from `videotestsrc`, AAC audio from `audiotestsrc`, in
/// MP4) and returns its path. Clips are made once per test binary.
pub fn clip(name: &str, spec: ClipSpec) -> PathBuf {
    init();
    let path = fixture_dir().join(format!("{name}.mp4"));
    if path.exists() {
        return path;
    }
    let mut desc = String::from("mp4mux name=mux ! filesink location=");
    desc.push_str(&path.display().to_string());
    if spec.video {
        desc.push_str(&format!(
            " videotestsrc pattern=ball num-buffers={} ! video/x-raw,width=320,height=240,framerate={}/1 \
             ! x264enc speed-preset=ultrafast key-int-max=30 ! h264parse ! queue ! mux.",
            spec.seconds * spec.fps,
            spec.fps
        ));
    }
    if spec.audio {
        // 1024-sample buffers at 48 kHz, enough to cover the duration.
        let buffers = (spec.seconds * 48000).div_ceil(1024);
        desc.push_str(&format!(
            " audiotestsrc wave=sine freq=440 volume=0.5 samplesperbuffer=1024 num-buffers={buffers} \
             ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! queue ! mux."
        ));
    }
    let pipeline = gst::parse::launch(&desc).expect("fixture pipeline");
    run_to_eos(&pipeline, Duration::from_secs(60), |_| {}).expect("fixture encoding");
    path
}

/// Waits until `ok()` holds, checking every 100 ms; panics naming `what` when
/// `deadline` passes first. For events a test can observe but not be told of.
pub fn wait_for(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    loop {
        if ok() {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `pipeline` until EOS, calling `on_message` for every bus message; fails on an
/// error message or when `deadline` passes.
pub fn run_to_eos(
    pipeline: &gst::Element,
    deadline: Duration,
    mut on_message: impl FnMut(&gst::Message),
) -> Result<(), String> {
    let bus = pipeline.bus().expect("pipeline bus");
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        // The reason is on the bus as an error message.
        let reason = bus
            .iter_filtered(&[gst::MessageType::Error])
            .find_map(|m| match m.view() {
                gst::MessageView::Error(err) => {
                    Some(format!("{} ({:?})", err.error(), err.debug()))
                }
                _ => None,
            })
            .unwrap_or_default();
        let _ = pipeline.set_state(gst::State::Null);
        return Err(format!("set_state(Playing): {e}: {reason}"));
    }
    let end = Instant::now() + deadline;
    let result = loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(format!("no EOS within {deadline:?}"));
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(left.as_millis() as u64))
        else {
            continue;
        };
        on_message(&msg);
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!(
                    "error from {:?}: {} ({:?})",
                    e.src().map(|s| s.path_string()),
                    e.error(),
                    e.debug()
                ));
            }
            _ => {}
        }
    };
    pipeline
        .set_state(gst::State::Null)
        .expect("set_state(Null)");
    result
}

/// Runs the launch description `desc` (fixture media made by the test) to EOS within
/// a minute; fails the test otherwise.
pub fn run_description(desc: &str) {
    let pipeline = gst::parse::launch(desc).unwrap_or_else(|e| panic!("{desc}: {e}"));
    run_to_eos(&pipeline, Duration::from_secs(60), |_| {}).unwrap_or_else(|e| panic!("{e}"));
}

/// The window result of an `emotion` element message, if `msg` is one.
pub fn window_of(msg: &gst::Message) -> Option<gst_emotion::output::WindowResult> {
    let gst::MessageView::Element(e) = msg.view() else {
        return None;
    };
    gst_emotion::output::WindowResult::from_structure(e.structure()?).ok()
}

/// The `file://` URI of `path`.
pub fn uri(path: &Path) -> String {
    gst::glib::filename_to_uri(path, None)
        .expect("file uri")
        .to_string()
}

/// Milliseconds of a nanosecond value, rounded, for readable assertions.
pub fn ms(ns: u64) -> u64 {
    (ns + 500_000) / 1_000_000
}

/// Speaks `text` with espeak-ng (US English, 150 words/min) into `NAME.wav` in the
/// fixture folder.
pub fn speak(name: &str, text: &str) -> PathBuf {
    let wav = fixture_dir().join(format!("{name}.wav"));
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("run espeak-ng");
    assert!(status.success(), "espeak-ng failed");
    wav
}

/// `text` said by Festival's CMU SLT voice (a speaker's recordings, less robotic than
/// espeak-ng), as a WAV file in the fixture folder.
pub fn speak_naturally(name: &str, text: &str) -> PathBuf {
    let txt = fixture_dir().join(format!("{name}.txt"));
    std::fs::write(&txt, text).unwrap();
    let wav = fixture_dir().join(format!("{name}.wav"));
    gst_emotion::eval::speech::Voice::Festival
        .say(&txt, &wav)
        .expect("Festival's voice (scripts/setup installs it)");
    wav
}

/// The default bundle scripts/setup builds (a test fails, saying so, without it).
pub fn default_bundle() -> PathBuf {
    gst_emotion::bundle::BundleChoice::Default
        .folder()
        .unwrap_or_else(|e| panic!("{e} (scripts/setup --deps-only builds it)"))
}

/// scikit-image's astronaut photo (a smiling face) that scripts/setup installs.
pub fn astronaut() -> PathBuf {
    let p = gst_emotion::paths::cache_dir()
        .expect("cache dir")
        .join("media/astronaut.png");
    assert!(
        p.is_file(),
        "{} missing: run scripts/setup --deps-only",
        p.display()
    );
    p
}

/// A launch fragment giving the PNG `image` as `frames` frames of raw video at 30 fps.
pub fn still_video(image: &Path, frames: u32) -> String {
    format!(
        "multifilesrc location={} loop=true caps=image/png,framerate=30/1 num-buffers={frames} ! pngdec",
        image.display()
    )
}

/// The element named `name` in `pipeline` (a bin made by `gst::parse::launch`).
pub fn by_name(pipeline: &gst::Element, name: &str) -> gst::Element {
    pipeline
        .downcast_ref::<gst::Bin>()
        .expect("a bin")
        .by_name(name)
        .unwrap_or_else(|| panic!("no element {name}"))
}

/// The appsink named `name` in `pipeline`.
pub fn appsink(pipeline: &gst::Element, name: &str) -> gst_app::AppSink {
    by_name(pipeline, name)
        .downcast::<gst_app::AppSink>()
        .expect("an appsink")
}

/// Runs `cmd` to completion; fails the test, showing the command and both output
/// streams, unless it exits 0.
pub fn run_ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A TCP port free on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The venv's python that scripts/setup makes (`GST_EMOTION_PYTHON` overrides).
pub fn python() -> PathBuf {
    std::env::var_os("GST_EMOTION_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

/// Runs `gst-inspect-1.0 ELEMENT` on the plugin built next to this test binary and
/// checks that every property of the element is listed by its exact name with its
/// blurb, the element's own ones with a real description; returns the text and the
/// listed properties (name → blurb).
pub fn inspect_documents(element: &str) -> (String, std::collections::BTreeMap<String, String>) {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    assert!(
        dir.join("libgstemotion.so").exists(),
        "build the plugin first: cargo build -p gstemotion (looked in {})",
        dir.display()
    );
    let out = std::process::Command::new("gst-inspect-1.0")
        .arg(element)
        .env("GST_PLUGIN_PATH", &dir)
        .env("GST_REGISTRY", fixture_dir().join("registry.bin"))
        .output()
        .expect("run gst-inspect-1.0");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "gst-inspect failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A property line is "  NAME  : BLURB".
    let listed: std::collections::BTreeMap<String, String> = text
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_once(':'))
        .map(|(name, blurb)| (name.trim().to_string(), blurb.trim().to_string()))
        .filter(|(name, _)| !name.is_empty() && !name.contains(' '))
        .collect();
    init();
    let made = gst::ElementFactory::make(element).build().unwrap();
    for pspec in made.list_properties() {
        let name = pspec.name().to_string();
        let blurb = listed
            .get(&name)
            .unwrap_or_else(|| panic!("gst-inspect does not list property {name}:\n{text}"));
        assert_eq!(
            blurb,
            pspec.blurb().unwrap_or_default(),
            "property {name}: gst-inspect shows another text"
        );
        if pspec.owner_type() == made.type_() {
            assert!(blurb.len() > 20, "property {name} has no real description");
        }
    }
    (text, listed)
}
