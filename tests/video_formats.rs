//! YUV video straight into the element (issue 28): decoders and cameras hand over
//! I420/NV12/…, and the element converts only the frames a window picks. The pictures
//! must be exactly those `videoconvert ! video/x-raw,format=RGB` in front of it would
//! give (the analysis, MELD parity included, sees the same bytes), checked through
//! `dump-dir`, which writes every sampled frame as PNG. The overlay draws on RGB, so
//! with it on the element asks for RGB.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// The PNG files `dump-dir` wrote into `dir`, by name.
fn dumped_frames(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Runs a moving test pattern in `format` at `width`×`height` through the element,
/// with `convert` in front of it, and returns the sampled frames it dumped.
fn sampled(
    format: &str,
    width: u32,
    height: u32,
    convert: &str,
    tag: &str,
) -> Vec<(String, Vec<u8>)> {
    let source = format!(
        "videotestsrc pattern=ball num-buffers=20 \
         ! video/x-raw,format={format},width={width},height={height},framerate=10/1 {convert}"
    );
    sampled_from(&source, "", &format!("{format}-{width}x{height}-{tag}"))
}

/// Runs `source` (a launch line ending in raw video) through the element (with `props`
/// besides 1 s windows of 3 frames) and returns the sampled frames it dumped into a
/// directory named after `tag`.
fn sampled_from(source: &str, props: &str, tag: &str) -> Vec<(String, Vec<u8>)> {
    init();
    let dir = fixture_dir().join(format!("formats-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    let desc = format!(
        "{source} \
         ! emotionsense bundle=none asr=false window-mode=sliding window-length=1 frames=3 \
           frame-width=96 frame-height=54 dump-dir={dir} {props} \
         ! fakesink",
        dir = dir.display()
    );
    run_description(&desc);
    let frames = dumped_frames(&dir);
    assert!(frames.len() >= 6, "{desc}: {} frames dumped", frames.len());
    frames
}

#[test]
fn yuv_frames_become_the_pictures_videoconvert_would_make() {
    // 4:2:0, 4:2:2 and 4:4:4, planar and packed; an SD size (BT.601) and an HD one
    // (BT.709), and a width that is not a multiple of 4.
    let cases = [
        ("I420", 322, 182),
        ("I420", 1280, 720),
        ("YV12", 322, 182),
        ("NV12", 322, 182),
        ("NV12", 1280, 720),
        ("NV21", 322, 182),
        ("YUY2", 322, 182),
        ("UYVY", 322, 182),
        ("Y42B", 322, 182),
        ("Y444", 322, 182),
        // Deeper formats, as decoders of 10-bit or 4:4:4 streams give them: taken as
        // they are, not rounded to 8-bit YUV by a videoconvert in front first.
        ("I420_10LE", 322, 182),
        ("P010_10LE", 322, 182),
        ("I422_10LE", 322, 182),
        ("Y444_10LE", 322, 182),
        ("GRAY16_LE", 322, 182),
    ];
    for (format, w, h) in cases {
        let direct = sampled(format, w, h, "", "direct");
        let converted = sampled(
            format,
            w,
            h,
            "! videoconvert ! video/x-raw,format=RGB",
            "rgb",
        );
        assert_same_pictures(&direct, &converted, &format!("{format} {w}x{h}"));
    }
}

/// Asserts that the element sampled the same frames into the same pictures both times.
fn assert_same_pictures(direct: &[(String, Vec<u8>)], converted: &[(String, Vec<u8>)], what: &str) {
    assert_eq!(
        direct.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        converted.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "{what}: the same frames sampled"
    );
    for ((name, a), (_, b)) in direct.iter().zip(converted) {
        assert!(a == b, "{what}: {name} differs from the reference's");
    }
}

#[test]
fn decoded_h264_becomes_the_pictures_videoconvert_would_make() {
    // What users write: a decoder, then videoconvert, which passes whatever the
    // decoder gives (x264enc keeps videotestsrc's 4:4:4 as 10-bit or 8-bit, depending
    // on the build) straight through to the element. The reference converts to RGB in
    // front.
    init();
    let clip = fixture_dir().join("formats-h264.mp4");
    let encode = format!(
        "videotestsrc pattern=ball num-buffers=30 ! video/x-raw,width=320,height=240,framerate=10/1 \
         ! x264enc speed-preset=ultrafast ! h264parse ! mp4mux ! filesink location={}",
        clip.display()
    );
    run_description(&encode);
    let decode = format!("uridecodebin uri={} ! videoconvert", uri(&clip));
    let direct = sampled_from(&decode, "", "h264-direct");
    let reference = format!("{decode} ! video/x-raw,format=RGB");
    let converted = sampled_from(&reference, "", "h264-rgb");
    assert_same_pictures(&direct, &converted, "decoded H.264");
}

/// The format the element's src pad negotiated for I420 input behind `videoconvert`,
/// with `props` on the element.
fn negotiated_format(props: &str) -> String {
    init();
    let desc = format!(
        "videotestsrc num-buffers=5 ! video/x-raw,format=I420,width=64,height=48,framerate=10/1 \
         ! videoconvert ! emotionsense name=e bundle=none asr=false {props} \
         ! appsink name=out sync=false"
    );
    let pipeline = gst::parse::launch(&desc).unwrap();
    let sink = appsink(&pipeline, "out");
    let caps = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = caps.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                *seen.lock().unwrap() = sample.caps().map(|c| c.to_owned());
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    run_to_eos(&pipeline, Duration::from_secs(30), |_| {}).unwrap();
    let caps = caps.lock().unwrap().clone().expect("a sample came out");
    let s = caps.structure(0).unwrap();
    s.get::<String>("format").unwrap()
}

#[test]
fn yuv_passes_through_and_the_overlay_asks_for_rgb() {
    assert_eq!(
        negotiated_format(""),
        "I420",
        "YUV goes through unconverted"
    );
    let with_overlay = negotiated_format("overlay=true");
    assert!(
        [
            "RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR", "RGBA", "BGRA", "ARGB", "ABGR"
        ]
        .contains(&with_overlay.as_str()),
        "the overlay draws on packed RGB, got {with_overlay}"
    );
}

#[test]
fn yuv_without_a_converter_and_the_overlay_on_is_refused_clearly() {
    init();
    // Refused when linking (gst-launch-1.0 says the element cannot handle the caps),
    // or, when linked regardless, in negotiation: never drawn on wrongly.
    let err = match gst::parse::launch(
        "videotestsrc num-buffers=5 ! video/x-raw,format=I420,width=64,height=48 \
         ! emotionsense bundle=none asr=false overlay=true ! fakesink",
    ) {
        Err(e) => e.to_string(),
        Ok(pipeline) => run_to_eos(&pipeline, Duration::from_secs(30), |_| {})
            .expect_err("I420 cannot be drawn on"),
    };
    assert!(
        err.contains("can't handle caps") || err.contains("negotiat"),
        "a caps refusal, got {err}"
    );
}

/// The distinct frames of each window of 3 s of live 30 fps video through the element
/// (1 s sliding windows of 30 frames each) with `props`.
fn distinct_frames_live(props: &str) -> Vec<u32> {
    init();
    let desc = format!(
        "videotestsrc is-live=true num-buffers=90 \
         ! video/x-raw,format=I420,width=64,height=48,framerate=30/1 \
         ! emotionsense name=e bundle=none asr=false window-mode=sliding window-length=1 \
           frames=30 {props} ! fakesink"
    );
    let pipeline = gst::parse::launch(&desc).unwrap();
    let mut distinct = Vec::new();
    run_to_eos(&pipeline, Duration::from_secs(30), |m| {
        if let Some(w) = window_of(m)
            && w.span.end - w.span.start == 1_000_000_000
        {
            distinct.push(w.distinct_frames.unwrap_or(0));
        }
    })
    .unwrap();
    assert!(distinct.len() >= 2, "{props}: windows {distinct:?}");
    distinct
}

#[test]
fn live_frames_are_kept_up_to_max_frame_rate() {
    // Auto with 30 frames per 1 s window: twice that is above the camera's 30 fps.
    let all = distinct_frames_live("");
    assert!(all.iter().all(|&d| d >= 27), "every frame kept: {all:?}");
    let limited = distinct_frames_live("max-frame-rate=10");
    assert!(
        limited.iter().all(|&d| (9..=11).contains(&d)),
        "10 frames a second kept: {limited:?}"
    );
}

#[test]
fn a_files_windows_pick_the_same_frames_whatever_the_result_timing() {
    // Results only (`analyze`: frames leave at once) as in step (`annotate`): every
    // frame of a file is there to pick from, so the same ones are picked (a frame
    // rate limit would move a window's samples to other frames of the moving ball).
    let source = "videotestsrc pattern=ball num-buffers=60 \
                  ! video/x-raw,format=I420,width=160,height=120,framerate=30/1";
    let in_step = sampled_from(source, "result-timing=in-step", "file-in-step");
    let latest = sampled_from(source, "result-timing=latest", "file-latest");
    assert_same_pictures(&latest, &in_step, "a file's frames, results only");
}
