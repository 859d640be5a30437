//! `gst-emotion eval`: its numbers equal scikit-learn's on the same predictions; MELD-
//! format data (clips made here), spoken sentences and the side-by-side comparison.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn eval(args: &[&str]) -> (String, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .arg("eval")
        .args(args)
        .output()
        .expect("run gst-emotion eval");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "eval {args:?} failed:\n{text}");
    let dir = args[args.iter().position(|a| *a == "--out").unwrap() + 1];
    let report = std::fs::read_to_string(Path::new(dir).join("report.json")).unwrap();
    (text, serde_json::from_str(&report).unwrap())
}

fn python_check(out: &Path) -> String {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/check_metrics.py");
    let o = Command::new(python).arg(script).arg(out).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text}");
    text
}

fn dev_set() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/emotion-dev.tsv")
}

#[test]
fn typed_sentences_match_scikit_learn_and_compare_side_by_side() {
    let a = fixture_dir().join("eval-a");
    let b = fixture_dir().join("eval-b");
    let (_, report) = eval(&[dev_set().to_str().unwrap(), "--out", a.to_str().unwrap()]);
    assert_eq!(report["items"], report["evaluated"]);
    assert!(report["heads"]["emotion"]["items"].as_u64().unwrap() > 100);
    for head in ["emotion", "sentiment"] {
        let ece = report["heads"][head]["ece"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&ece), "{head}: {ece}");
    }
    assert_eq!(
        report["consistency"]["predicted"]["items"],
        report["evaluated"]
    );
    // The scikit-learn check recomputes the calibration error and the consistency.
    assert!(python_check(&a).contains("metrics ok"));
    for head in ["emotion", "sentiment"] {
        let svg = std::fs::read_to_string(a.join(format!("confusion-{head}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("predicted"));
    }
    // A second run on part of the data, compared with the first.
    let (text, _) = eval(&[
        dev_set().to_str().unwrap(),
        "--limit",
        "50",
        "--out",
        b.to_str().unwrap(),
        "--compare",
        a.join("report.json").to_str().unwrap(),
    ]);
    assert!(
        text.contains("compared with")
            && text.contains("emotion accuracy")
            && text.contains("emotion ece")
            && text.contains("sentiment disagrees"),
        "{text}"
    );
    assert!(python_check(&b).contains("metrics ok"));
}

/// A clip of `video` (a launch fragment giving raw video) with `text` spoken over it.
fn spoken_clip(path: &Path, video: &str, text: &str) {
    let wav = speak(&path.file_stem().unwrap().to_string_lossy(), text);
    let desc = format!(
        "mp4mux name=mux ! filesink location={} \
         {video} ! videoconvert ! videoscale ! video/x-raw,width=640,height=360 \
         ! x264enc speed-preset=ultrafast ! h264parse ! queue ! mux. \
         filesrc location={} ! wavparse ! audioconvert ! audioresample \
         ! audio/x-raw,rate=48000,channels=1 ! avenc_aac ! aacparse ! queue ! mux.",
        path.display(),
        wav.display()
    );
    let p = gst::parse::launch(&desc).unwrap();
    run_to_eos(&p, std::time::Duration::from_secs(60), |_| {}).unwrap();
}

#[test]
fn meld_format_clips_with_csv_or_asr_text() {
    init();
    let dir = fixture_dir().join("meld");
    std::fs::create_dir_all(&dir).unwrap();
    let rows = [
        (
            0,
            0,
            "I am so happy to see you again.",
            "joy",
            "positive",
            true,
        ),
        (
            0,
            1,
            "That is wonderful news, thank you.",
            "joy",
            "positive",
            true,
        ),
        (
            1,
            0,
            "I hate this, I am furious with you.",
            "anger",
            "negative",
            false,
        ),
    ];
    let mut csv =
        String::from("Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n");
    for (k, (d, u, text, e, s, face)) in rows.iter().enumerate() {
        let video = if *face {
            still_video(&astronaut(), 120)
        } else {
            "videotestsrc pattern=smpte num-buffers=120 ! video/x-raw,framerate=30/1".into()
        };
        spoken_clip(&dir.join(format!("dia{d}_utt{u}.mp4")), &video, text);
        csv.push_str(&format!("{},\"{text}\",Ross,{e},{s},{d},{u}\n", k + 1));
    }
    let data = dir.join("dev_sent_emo.csv");
    std::fs::write(&data, csv).unwrap();
    let out = fixture_dir().join("meld-csv");
    let (_, report) = eval(&[data.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(report["evaluated"], 3, "{report:#}");
    assert!(report["asr"].is_null(), "text from the CSV: no ASR");
    assert!(python_check(&out).contains("metrics ok"));
    let out = fixture_dir().join("meld-asr");
    let (text, report) = eval(&[
        data.to_str().unwrap(),
        "--text",
        "asr",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(report["asr"]["items"], 3, "{report:#}");
    assert!(report["asr"]["wer"].as_f64().unwrap() < 0.3, "{text}");
    assert!(text.contains("ASR word error rate"));
    // Missing clips are reported, not fatal.
    std::fs::write(
        dir.join("missing.csv"),
        "Utterance,Emotion,Sentiment,Dialogue_ID,Utterance_ID\nHello.,neutral,neutral,9,9\n",
    )
    .unwrap();
    let out = fixture_dir().join("meld-missing");
    let (_, report) = eval(&[
        dir.join("missing.csv").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(report["evaluated"], 0);
    assert!(
        report["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("dia9_utt9.mp4")
    );
}

#[test]
fn spoken_sentences_run_the_whole_pipeline() {
    let data = fixture_dir().join("spoken.tsv");
    std::fs::write(
        &data,
        "text\temotion\tsentiment\n\
         I am so happy to see you again.\tjoy\tpositive\n\
         I miss my grandmother so much.\tsadness\tnegative\n\
         The meeting is at three o'clock.\tneutral\tneutral\n",
    )
    .unwrap();
    for voice in ["festival", "espeak-ng"] {
        let out = fixture_dir().join(format!("spoken-out-{voice}"));
        let (_, report) = eval(&[
            data.to_str().unwrap(),
            "--speak",
            "--voice",
            voice,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(report["evaluated"], 3, "{report:#}");
        assert!(
            report["mode"].as_str().unwrap().contains(voice),
            "{report:#}"
        );
        assert_eq!(report["asr"]["items"], 3);
        assert!(report["asr"]["wer"].as_f64().unwrap() < 0.3, "{report:#}");
        assert!(python_check(&out).contains("metrics ok"));
    }
}

/// `eval` with `GST_EMOTION_CACHE=cache`: the bundle folder its report names.
fn bundle_evaluated(cache: &Path, data: &Path, extra: &[&str]) -> String {
    let out = fixture_dir().join("eval-which-bundle");
    let o = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .env("GST_EMOTION_CACHE", cache)
        .arg("eval")
        .arg(data)
        .args(["--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .expect("run gst-emotion eval");
    let text = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "eval {extra:?} failed:\n{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    report["bundle"].as_str().unwrap().to_string()
}

#[test]
fn file_commands_take_the_accurate_bundle_when_it_is_built() {
    // A cache of its own whose bundles are the default one, under both names.
    let cache = fixture_dir().join("cache-accurate");
    let _ = std::fs::remove_dir_all(&cache);
    std::fs::create_dir_all(cache.join("bundles")).unwrap();
    std::os::unix::fs::symlink(default_bundle(), cache.join("bundles/default-v2")).unwrap();
    let data = fixture_dir().join("two-sentences.tsv");
    std::fs::write(
        &data,
        "text\temotion\tsentiment\nI am so happy today.\tjoy\tpositive\n\
         This is awful.\tdisgust\tnegative\n",
    )
    .unwrap();
    assert!(bundle_evaluated(&cache, &data, &[]).ends_with("default-v2"));
    std::os::unix::fs::symlink(default_bundle(), cache.join("bundles/accurate-v1")).unwrap();
    assert!(bundle_evaluated(&cache, &data, &[]).ends_with("accurate-v1"));
    let chosen = bundle_evaluated(&cache, &data, &["--bundle", "default"]);
    assert!(chosen.ends_with("default-v2"), "{chosen}");
    std::fs::remove_file(cache.join("bundles/accurate-v1")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .env("GST_EMOTION_CACHE", &cache)
        .args(["eval", data.to_str().unwrap(), "--bundle", "accurate"])
        .args([
            "--out",
            fixture_dir().join("eval-no-accurate").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && text.contains("scripts/setup --accurate"),
        "an accurate bundle not built says how to build it: {text}"
    );
}
