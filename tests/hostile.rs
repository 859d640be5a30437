//! Hostile and odd input: each case ends with a clear error or a correct result, never
//! a panic or a hang (every run has a deadline). Files go through `gst-emotion
//! analyze` with the default bundle, as users run them; settings and bundles through
//! the element.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

/// Encodes `desc` (a launch line ending in `! filesink location={out}`) once.
fn make(name: &str, desc: &str) -> PathBuf {
    init();
    let out = fixture_dir().join(name);
    if !out.exists() {
        let p = gst::parse::launch(&desc.replace("{out}", &out.display().to_string())).unwrap();
        run_to_eos(&p, Duration::from_secs(120), |_| {}).unwrap();
    }
    out
}

/// Runs `gst-emotion analyze` on `input` with `extra` arguments under a deadline;
/// returns (exit code, the input's summary record, stderr).
fn analyze(input: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let out = fixture_dir().join(format!(
        "out-{}",
        input.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&out);
    let mut child = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .arg("analyze")
        .arg(input)
        .arg("--out")
        .arg(&out)
        .args(["--window-mode", "sliding"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{}: analyze hung", input.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        !err.contains("panicked"),
        "{}: panic\n{err}",
        input.display()
    );
    let summary: serde_json::Value = std::fs::read_to_string(out.join("summary.json"))
        .map(|s| serde_json::from_str(&s).unwrap())
        .unwrap_or(serde_json::Value::Null);
    let record = summary["files"][0].clone();
    (status.code().unwrap_or(-1), record, err)
}

fn windows(input: &Path, record: &serde_json::Value) -> Vec<serde_json::Value> {
    let dir = fixture_dir().join(format!(
        "out-{}",
        input.file_name().unwrap().to_string_lossy()
    ));
    let base = dir.join(record["output"].as_str().unwrap());
    std::fs::read_to_string(format!("{}.jsonl", base.display()))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn expect_error(input: &Path, words: &[&str]) {
    let (code, rec, err) = analyze(input, &[]);
    assert_eq!(code, 1, "{rec:#} {err}");
    assert_eq!(rec["status"], "error", "{rec:#}");
    let msg = rec["error"].as_str().unwrap().to_lowercase();
    assert!(
        words.iter().any(|w| msg.contains(w)),
        "{}: unclear error {msg:?}",
        input.display()
    );
}

fn expect_ok(input: &Path) -> Vec<serde_json::Value> {
    let (code, rec, err) = analyze(input, &[]);
    assert_eq!(code, 0, "{}: {rec:#}\n{err}", input.display());
    assert_eq!(rec["status"], "ok", "{rec:#}");
    let w = windows(input, &rec);
    assert!(!w.is_empty(), "{}: no windows", input.display());
    w
}

#[test]
fn broken_files_give_clear_errors() {
    init();
    let zero = fixture_dir().join("zero.mp4");
    std::fs::write(&zero, b"").unwrap();
    expect_error(&zero, &["no data", "empty"]);

    let random = fixture_dir().join("random.mp4");
    let mut bytes = vec![0u8; 200_000];
    let mut x: u32 = 12345;
    for b in bytes.iter_mut() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    std::fs::write(&random, &bytes).unwrap();
    expect_error(&random, &["type of stream", "not a media"]);

    // mp4mux writes the index at the end: cut the file and it is gone.
    let full = make(
        "full.mp4",
        "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location={out}",
    );
    let data = std::fs::read(&full).unwrap();
    let truncated = fixture_dir().join("truncated.mp4");
    std::fs::write(&truncated, &data[..data.len() / 2]).unwrap();
    expect_error(
        &truncated,
        &["no playable streams", "truncated", "could not"],
    );

    // A fragmented MP4 cut in the middle still has its first fragments: analysed.
    let frag = make(
        "fragmented.mp4",
        "videotestsrc num-buffers=150 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc speed-preset=ultrafast key-int-max=15 ! mp4mux fragment-duration=500 \
         ! filesink location={out}",
    );
    let data = std::fs::read(&frag).unwrap();
    let cut = fixture_dir().join("fragmented-cut.mp4");
    std::fs::write(&cut, &data[..data.len() * 2 / 3]).unwrap();
    let (code, rec, err) = analyze(&cut, &[]);
    assert!(code == 0 || code == 1, "{err}");
    if rec["status"] == "ok" {
        assert!(!windows(&cut, &rec).is_empty());
    } else {
        assert!(!rec["error"].as_str().unwrap().is_empty());
    }
}

#[test]
fn odd_but_valid_media_are_analysed() {
    init();
    let still = |n: u32| format!("{} ! videoconvert", still_video(&astronaut(), n));
    // 3840x2160: the face is still found (frames are scaled before detection).
    let uhd = make(
        "uhd.mp4",
        &format!(
            "{} ! videoscale add-borders=true ! video/x-raw,width=3840,height=2160,pixel-aspect-ratio=1/1 \
             ! videorate ! video/x-raw,framerate=5/1 ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location={{out}}",
            still(60)
        ),
    );
    for w in expect_ok(&uhd) {
        assert_eq!(w["emotion"], "joy", "{w:#}");
        assert_eq!(w["faces"].as_array().unwrap().len(), 1);
    }
    // 1 frame per second.
    let slow = make(
        "one-fps.mp4",
        &format!(
            "{} ! videorate ! video/x-raw,framerate=1/1 ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location={{out}}",
            still(150)
        ),
    );
    for w in expect_ok(&slow) {
        assert!(w["frames"].as_u64().unwrap() > 0, "{w:#}");
        assert_eq!(w["emotion"], "joy", "{w:#}");
    }
    // Variable frame rate: frames at irregular times (videorate drops by a pattern).
    let vfr = make(
        "vfr.mkv",
        "videotestsrc num-buffers=120 pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! identity drop-probability=0.5 ! x264enc speed-preset=ultrafast ! matroskamux ! filesink location={out}",
    );
    let w = expect_ok(&vfr);
    assert!(w.iter().all(|w| w["frames"].as_u64().unwrap() > 0));
    // 48 kHz stereo and 8 kHz mono audio (with video).
    for (name, caps) in [
        ("stereo48k.mkv", "audio/x-raw,rate=48000,channels=2"),
        ("mono8k.mkv", "audio/x-raw,rate=8000,channels=1"),
    ] {
        let clip = make(
            name,
            &format!(
                "matroskamux name=m ! filesink location={{out}} \
                 videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 \
                 ! x264enc speed-preset=ultrafast ! queue ! m. \
                 audiotestsrc num-buffers=150 wave=pink-noise ! {caps} ! audioconvert ! vorbisenc ! queue ! m."
            ),
        );
        let w = expect_ok(&clip);
        // Every full (3 s) window holds 16 kHz mono audio.
        let full: Vec<_> = w
            .iter()
            .filter(|w| w["end"].as_f64().unwrap() - w["start"].as_f64().unwrap() > 2.99)
            .collect();
        assert!(!full.is_empty(), "{name}: {w:?}");
        assert!(
            full.iter()
                .all(|w| (w["audio_samples"].as_u64().unwrap() as i64 - 48000).abs() < 400),
            "{name}: {w:?}"
        );
    }
    // Only audio, only video.
    let audio_only = make(
        "audio-only.m4a",
        "audiotestsrc num-buffers=100 ! audio/x-raw,rate=44100 ! avenc_aac ! mp4mux ! filesink location={out}",
    );
    for w in expect_ok(&audio_only) {
        assert_eq!(w["faces"].as_array().unwrap().len(), 0);
        assert!(w["flags"].as_array().unwrap().contains(&"no-face".into()));
    }
    let video_only = make(
        "video-only.mp4",
        &format!(
            "{} ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location={{out}}",
            still(90)
        ),
    );
    for w in expect_ok(&video_only) {
        assert_eq!(w["emotion"], "joy");
        assert!(w.get("audio_samples").is_none());
    }
}

#[test]
fn bad_bundles_settings_and_models_give_clear_errors() {
    init();
    let clip = make(
        "plain.mp4",
        "videotestsrc num-buffers=60 ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location={out}",
    );
    // Missing bundle.
    let (code, rec, err) = analyze(&clip, &["--bundle", "/nonexistent/bundle"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        rec["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/bundle"),
        "{rec:#}"
    );
    // Corrupt bundle: a copy of the default bundle with a damaged model file, and one
    // whose classifier labels do not match the model's outputs.
    let default = default_bundle();
    for (name, damage) in [("corrupt", 0), ("labels", 1)] {
        let dir = fixture_dir().join(format!("bundle-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&default).unwrap().flatten() {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        if damage == 0 {
            std::fs::write(dir.join("face_emotion.ts"), b"not a model").unwrap();
        } else {
            let toml = std::fs::read_to_string(dir.join("bundle.toml")).unwrap();
            let toml = toml
                .replace(
                    "labels = [\"angry\", \"disgust\", \"fear\", \"happy\", \"sad\", \"surprise\", \"neutral\"]",
                    "labels = [\"angry\", \"happy\", \"neutral\"]",
                )
                .replace(
                    "maps_to = [\"anger\", \"disgust\", \"fear\", \"joy\", \"sadness\", \"surprise\", \"neutral\"]",
                    "maps_to = [\"anger\", \"joy\", \"neutral\"]",
                )
                .replace(
                    "valence = [-0.8, -0.7, -0.6, 0.9, -0.8, 0.2, 0.0]",
                    "valence = [-0.8, 0.9, 0.0]",
                );
            std::fs::write(dir.join("bundle.toml"), toml).unwrap();
        }
        let astronaut = make(
            "face-short.mp4",
            &format!(
                "{} ! videoconvert ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location={{out}}",
                still_video(&astronaut(), 60)
            ),
        );
        let (code, rec, err) = analyze(&astronaut, &["--bundle", dir.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {rec:#}\n{err}");
        let msg = rec["error"].as_str().unwrap();
        match damage {
            0 => assert!(msg.contains("face_emotion.ts"), "{msg}"),
            _ => assert!(
                msg.contains("output shape") || msg.contains("[1, 7]"),
                "{msg}"
            ),
        }
    }
    // Invalid property values: a usage error naming the property.
    let (code, _, err) = analyze(&clip, &["--set", "window-length=-1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("window-length"), "{err}");
    // A missing Whisper model.
    let (code, rec, err) = analyze(&clip, &["--set", "asr-model=/nonexistent/ggml.bin"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        rec["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/ggml.bin"),
        "{rec:#}"
    );
}

#[test]
fn an_element_without_inputs_errors_instead_of_waiting() {
    init();
    let p = gst::parse::launch("emotionsense ! fakesink").unwrap();
    let err = run_to_eos(&p, Duration::from_secs(20), |_| {}).unwrap_err();
    assert!(err.contains("video") && err.contains("audio"), "{err}");
    let _ = p.set_state(gst::State::Null);
}
