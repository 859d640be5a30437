//! `gst-emotion annotate`: the annotated MP4 has the overlay on every frame from the
//! first (in step), the audio, and a subtitle track whose cues say the emotion and the
//! transcript; SRT beside it; usage errors exit 2. The clip is made here from the
//! astronaut photo and espeak-ng, through the default bundle.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// 640×360 at 30 fps, 4 s: the astronaut photo (letterboxed, black borders) and a
/// spoken sentence.
fn clip() -> PathBuf {
    init();
    let path = fixture_dir().join("annotate-in.mp4");
    let wav = speak("annotate", "I am so happy to see you today.");
    let desc = format!(
        "mp4mux name=mux ! filesink location={} \
         {} ! videoconvert ! videoscale add-borders=true \
         ! video/x-raw,width=640,height=360,pixel-aspect-ratio=1/1,framerate=30/1 \
         ! x264enc speed-preset=ultrafast ! h264parse ! queue ! mux. \
         filesrc location={} ! wavparse ! audioconvert ! audioresample \
         ! audio/x-raw,rate=48000,channels=1 ! avenc_aac ! aacparse ! queue ! mux.",
        path.display(),
        still_video(&astronaut(), 120),
        wav.display()
    );
    let p = gst::parse::launch(&desc).unwrap();
    run_to_eos(&p, Duration::from_secs(120), |_| {}).unwrap();
    path
}

/// RGB frames of `path` at 640×360 with their PTS.
fn frames(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let desc = format!(
        "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! videoconvert \
         ! video/x-raw,format=RGB,width=640,height=360 ! appsink name=out sync=false",
        path.display()
    );
    let p = gst::parse::launch(&desc).unwrap();
    let sink = appsink(&p, "out");
    p.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        let buf = sample.buffer().unwrap();
        let map = buf.map_readable().unwrap();
        // videoconvert output rows are 4-byte aligned: 640 × 3 already is.
        out.push((buf.pts().unwrap().nseconds(), map.to_vec()));
    }
    p.set_state(gst::State::Null).unwrap();
    out
}

/// Bright, near-white pixels (the panel's text) in the top-left corner, where the
/// letterboxed source is black.
fn panel_text_pixels(rgb: &[u8]) -> usize {
    let mut n = 0;
    for y in 8..120 {
        for x in 8..130 {
            let i = (y * 640 + x) * 3;
            if rgb[i] > 200 && rgb[i + 1] > 200 && rgb[i + 2] > 200 {
                n += 1;
            }
        }
    }
    n
}

/// The text samples of the MP4's subtitle track (`text/x-raw` from qtdemux).
fn subtitle_samples(path: &Path) -> Vec<(u64, String)> {
    let p = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux name=d",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    // One demuxer thread feeds every sink: none may wait for preroll.
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .async_(false)
        .build();
    p.add(&sink).unwrap();
    let demux = p.by_name("d").unwrap();
    let (pw, text_sink) = (p.downgrade(), sink.clone());
    demux.connect_pad_added(move |_, pad| {
        let Some(p) = pw.upgrade() else { return };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let is_text = caps.structure(0).is_some_and(|s| s.name() == "text/x-raw");
        let target = if is_text {
            text_sink.clone().upcast::<gst::Element>()
        } else {
            let f = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
                .unwrap();
            p.add(&f).unwrap();
            f.sync_state_with_parent().unwrap();
            f
        };
        pad.link(&target.static_pad("sink").unwrap()).unwrap();
    });
    p.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        let buf = sample.buffer().unwrap();
        let map = buf.map_readable().unwrap();
        out.push((
            buf.pts().unwrap().nseconds(),
            String::from_utf8_lossy(&map).into_owned(),
        ));
    }
    p.set_state(gst::State::Null).unwrap();
    out
}

/// Seconds of audio decoded from the MP4.
fn audio_seconds(path: &Path) -> f64 {
    let desc = format!(
        "filesrc location={} ! qtdemux name=d d.audio_0 ! aacparse ! avdec_aac ! audioconvert \
         ! audio/x-raw,format=F32LE,channels=1 ! queue ! appsink name=out sync=false \
         d.video_0 ! queue ! fakesink",
        path.display()
    );
    let p = gst::parse::launch(&desc).unwrap();
    let sink = appsink(&p, "out");
    p.set_state(gst::State::Playing).unwrap();
    let mut samples = 0usize;
    let mut rate = 0;
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        let info = gst_audio::AudioInfo::from_caps(sample.caps().unwrap()).unwrap();
        rate = info.rate();
        samples += sample.buffer().unwrap().size() / 4;
    }
    p.set_state(gst::State::Null).unwrap();
    samples as f64 / rate.max(1) as f64
}

fn annotate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .arg("annotate")
        .args(args)
        .env("GST_REGISTRY", fixture_dir().join("registry.bin"))
        .output()
        .expect("run gst-emotion")
}

#[test]
fn annotated_video_has_the_overlay_in_step_the_audio_and_subtitles() {
    let input = clip();
    let dir = fixture_dir().join("annotated");
    let out = dir.join("clip.mp4");
    let bundle = default_bundle();
    let run = annotate(&[
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        "--bundle",
        bundle.to_str().unwrap(),
        "--subtitles",
        "track,srt",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Only the outputs are left: no temporaries.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["clip.mp4", "clip.srt"]);

    // Every frame carries the panel from the very first one (in step), and the
    // source has none of it.
    let original = frames(&input);
    let annotated = frames(&out);
    assert_eq!(annotated.len(), original.len(), "every frame is kept");
    assert!(annotated.len() >= 115, "{} frames", annotated.len());
    assert!(panel_text_pixels(&original[0].1) < 5);
    for (pts, rgb) in &annotated {
        assert!(
            panel_text_pixels(rgb) > 100,
            "frame at {} ms lacks the panel",
            ms(*pts)
        );
    }
    // A green face box around the smiling face (the main face), not in the source.
    let green = |rgb: &[u8]| {
        rgb.chunks(3)
            .filter(|p| p[1] > 180 && p[0] < 110 && p[2] < 140)
            .count()
    };
    assert!(green(&annotated[60].1) > 200 + green(&original[60].1));

    // The audio is all there.
    let seconds = audio_seconds(&out);
    let source_seconds = audio_seconds(&input);
    assert!(
        (seconds - source_seconds).abs() < 0.1,
        "audio {seconds:.2} s vs {source_seconds:.2} s in the source"
    );

    // The subtitle track says what was said and felt; the SRT beside it has the same.
    let cues = subtitle_samples(&out);
    let text: String = cues.iter().map(|(_, t)| t.as_str()).collect();
    assert!(text.contains("happy"), "subtitle track: {cues:?}");
    assert!(text.contains("joy"), "subtitle track: {cues:?}");
    let srt = std::fs::read_to_string(dir.join("clip.srt")).unwrap();
    assert!(srt.starts_with("1\n00:00:00,000 --> "), "{srt}");
    assert!(srt.contains("happy"), "{srt}");

    // Without --force an existing output is refused (usage error, file untouched).
    let before = std::fs::metadata(&out).unwrap().len();
    let again = annotate(&[input.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::metadata(&out).unwrap().len(), before);
}

#[test]
fn bad_inputs_are_clear_errors() {
    init();
    let dir = fixture_dir().join("annotate-errors");
    let missing = annotate(&["/nonexistent/clip.mp4", dir.join("a.mp4").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file"));
    let not_mp4 = annotate(&["x.mp4", dir.join("a.mkv").to_str().unwrap()]);
    assert_eq!(not_mp4.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_mp4.stderr).contains(".mp4"));
    // Audio only: nothing to annotate.
    let audio = fixture_dir().join("annotate-audio.wav");
    let p = gst::parse::launch(&format!(
        "audiotestsrc num-buffers=50 ! wavenc ! filesink location={}",
        audio.display()
    ))
    .unwrap();
    run_to_eos(&p, Duration::from_secs(30), |_| {}).unwrap();
    let run = annotate(&[
        audio.to_str().unwrap(),
        dir.join("a.mp4").to_str().unwrap(),
        "--bundle",
        "none",
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("no video stream"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!dir.join("a.mp4").exists());
}
