//! Phone videos stand upright: a face picture turned sideways (or mirrored) in its
//! pixels and tagged back with `image-orientation`, as phones store it, is analysed
//! like the upright picture — the same labels and face counts, face boxes in the
//! upright picture — and so is an untagged sideways picture with a fixed
//! `orientation`, an MP4 whose display matrix says so (through `analyze`; made with
//! ffmpeg as phones store it), and a JPEG whose EXIF says so.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use gst_emotion::output::WindowResult;

/// What a run found: per window, the face count, the top emotion, and the first
/// face's rectangle.
type Found = Vec<(usize, String, Option<[f64; 4]>)>;

fn found(windows: &[WindowResult]) -> Found {
    windows
        .iter()
        .map(|w| {
            let faces = w.fusion().map(|f| f.faces.as_slice()).unwrap_or_default();
            let top = w
                .head("emotion")
                .map(|h| h.labels[argmax(&h.probs)].clone())
                .unwrap_or_default();
            (faces.len(), top, faces.first().map(|f| f.rect))
        })
        .collect()
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len())
        .max_by(|a, b| v[*a].total_cmp(&v[*b]))
        .unwrap_or(0)
}

/// The astronaut photo as a 640×360 picture for 2 s, through `turn` (a launch
/// fragment between the picture and the element, e.g. a videoflip and a taginject),
/// analysed with the default bundle in 1 s windows (`props` on the element).
fn analyse(turn: &str, props: &str) -> Vec<WindowResult> {
    init();
    let desc = format!(
        "{} ! videoconvert ! videoscale add-borders=true \
         ! video/x-raw,width=640,height=360,pixel-aspect-ratio=1/1,framerate=30/1 \
         ! videoconvert {turn} ! videoconvert \
         ! emotionsense name=e bundle=default window-mode=sliding window-length=1 \
           window-hop=1 asr=false {props} ! fakesink",
        still_video(&astronaut(), 60)
    );
    let pipeline = gst::parse::launch(&desc).expect("pipeline");
    let mut windows = Vec::new();
    run_to_eos(&pipeline, Duration::from_secs(120), |m| {
        windows.extend(window_of(m));
    })
    .expect("runs to the end");
    windows
}

/// The upright run's findings, and a check that `other` found the same.
fn assert_same(upright: &Found, other: &Found, what: &str) {
    assert_eq!(upright.len(), other.len(), "{what}: window count");
    for (i, (a, b)) in upright.iter().zip(other).enumerate() {
        assert!(a.0 >= 1, "window {i}: no face in the upright picture");
        assert_eq!(a.0, b.0, "{what}: window {i} face count");
        assert_eq!(a.1, b.1, "{what}: window {i} emotion");
        let (ra, rb) = (a.2.unwrap(), b.2.unwrap());
        for k in 0..4 {
            assert!(
                (ra[k] - rb[k]).abs() < 0.03,
                "{what}: window {i} face box {rb:?}, upright {ra:?}"
            );
        }
    }
}

#[test]
fn tagged_sideways_and_mirrored_pictures_are_analysed_upright() {
    let upright = found(&analyse("", ""));
    // videoflip turns the upright picture as a phone stores it; the tag says how to
    // turn it back.
    for (store, tag) in [
        ("90l", "rotate-90"),
        ("180", "rotate-180"),
        ("90r", "rotate-270"),
        ("horiz", "flip-rotate-0"),
        ("ul-lr", "flip-rotate-90"),
    ] {
        let turn = format!(
            "! videoflip video-direction={store} ! taginject tags=\"image-orientation={tag}\""
        );
        assert_same(&upright, &found(&analyse(&turn, "")), tag);
    }
}

#[test]
fn a_fixed_orientation_turns_an_untagged_sideways_camera() {
    let upright = found(&analyse("", ""));
    let sideways = found(&analyse("! videoflip video-direction=90l", ""));
    // Without a tag or a setting, the sideways face is read as it lies: the boxes are
    // in the sideways picture (this failed before the element turned pictures).
    assert!(
        sideways
            .iter()
            .zip(&upright)
            .any(|(s, u)| s.2.zip(u.2).is_none_or(|(a, b)| (a[0] - b[0]).abs() > 0.03)),
        "{sideways:?}"
    );
    let fixed = found(&analyse(
        "! videoflip video-direction=90l",
        "orientation=90r",
    ));
    assert_same(&upright, &fixed, "orientation=90r");
    // A fixed setting wins over the tag.
    let overridden = found(&analyse(
        "! videoflip video-direction=90l ! taginject tags=\"image-orientation=rotate-180\"",
        "orientation=90r",
    ));
    assert_same(
        &upright,
        &overridden,
        "orientation=90r over a rotate-180 tag",
    );
}

/// Runs `gst-emotion analyze` on `input` with the default bundle; its JSONL windows.
fn analyze(input: &PathBuf, name: &str) -> Vec<serde_json::Value> {
    let out = fixture_dir().join(format!("analyze-{name}"));
    let _ = std::fs::remove_dir_all(&out);
    run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
            .arg("analyze")
            .arg(input)
            .args(["--out"])
            .arg(&out)
            .args(["--window-mode", "sliding", "--set", "asr=false"]),
    );
    let jsonl = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a JSONL output");
    std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Face count and first face rectangle of each analysed window.
fn faces_of(windows: &[serde_json::Value]) -> Vec<(usize, Vec<f64>)> {
    windows
        .iter()
        .map(|w| {
            let faces = w["faces"].as_array().cloned().unwrap_or_default();
            let rect = faces
                .first()
                .and_then(|f| f["box"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.as_f64())
                .collect();
            (faces.len(), rect)
        })
        .collect()
}

#[test]
fn analyze_reads_an_mp4_display_matrix_and_jpeg_exif() {
    init();
    // The same clip stored upright and stored sideways with a display matrix.
    let encode = |name: &str, turn: &str| -> PathBuf {
        let path = fixture_dir().join(format!("{name}.mp4"));
        let desc = format!(
            "{} ! videoconvert ! videoscale add-borders=true \
             ! video/x-raw,width=640,height=360,pixel-aspect-ratio=1/1,framerate=30/1 \
             {turn} ! videoconvert ! x264enc speed-preset=ultrafast ! h264parse \
             ! mp4mux ! filesink location={}",
            still_video(&astronaut(), 90),
            path.display()
        );
        run_description(&desc);
        path
    };
    let upright = faces_of(&analyze(&encode("upright", ""), "upright"));
    // Stored turned clockwise, with the display matrix a phone writes, set by ffmpeg
    // (`rotate=90`, which both ffmpeg and qtdemux read as "turn 90° counter-clockwise
    // to show": qtdemux posts image-orientation=rotate-270).
    let stored = encode("stored", "! videoflip video-direction=90r");
    let phone = fixture_dir().join("phone.mp4");
    run_ok(
        std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&stored)
            .args(["-c", "copy", "-metadata:s:v:0", "rotate=90"])
            .arg(&phone),
    );
    let sideways = faces_of(&analyze(&phone, "phone"));
    assert!(
        !upright.is_empty() && upright.iter().all(|w| w.0 >= 1),
        "{upright:?}"
    );
    assert_eq!(upright.len(), sideways.len());
    for (u, s) in upright.iter().zip(&sideways) {
        assert_eq!(u.0, s.0);
        for (a, b) in u.1.iter().zip(&s.1) {
            assert!((a - b).abs() < 0.03, "{u:?} vs {s:?}");
        }
    }
    // A JPEG stored sideways with EXIF orientation 6 ("turn 90° clockwise to show"),
    // written by jifmux from the image-orientation tag.
    let jpeg = fixture_dir().join("exif6.jpg");
    let desc = format!(
        "filesrc location={} ! pngdec ! videoconvert ! videoflip video-direction=90l \
         ! jpegenc ! taginject tags=\"image-orientation=rotate-90\" ! jifmux \
         ! filesink location={}",
        astronaut().display(),
        jpeg.display()
    );
    run_description(&desc);
    let png_faces = faces_of(&analyze(&astronaut(), "png"));
    let jpeg_faces = faces_of(&analyze(&jpeg, "jpeg"));
    assert_eq!(png_faces.len(), 1);
    assert_eq!(jpeg_faces.len(), 1);
    assert_eq!(png_faces[0].0, jpeg_faces[0].0);
    for (a, b) in png_faces[0].1.iter().zip(&jpeg_faces[0].1) {
        assert!((a - b).abs() < 0.03, "{png_faces:?} vs {jpeg_faces:?}");
    }
}
