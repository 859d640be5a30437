//! `gst-emotion analyze` on a generated folder: good clips, audio-only, video-only, a
//! corrupt and a truncated file, and a missing one.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Runs `gst-emotion analyze ARGS`; without `--bundle` in ARGS, with `--bundle none`
/// (these tests are about the command's mechanics, not a model).
fn analyze(args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gst-emotion"));
    cmd.arg("analyze").args(args);
    if !args.contains(&"--bundle") {
        cmd.args(["--bundle", "none"]);
    }
    let out = cmd.output().expect("run gst-emotion");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn summary(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn analyze_a_folder_resume_and_shard() {
    let dir = fixture_dir().join("batch");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for (name, spec) in [
        ("good", ClipSpec::av(3)),
        ("sub/good2", ClipSpec::av(2)),
        ("audio-only", ClipSpec::audio_only(2)),
        ("video-only", ClipSpec::video_only(2, 30)),
    ] {
        let src = clip(&name.replace('/', "-"), spec);
        std::fs::copy(&src, dir.join(format!("{name}.mp4"))).unwrap();
    }
    std::fs::write(
        dir.join("corrupt.mp4"),
        (0..20000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let good = std::fs::read(dir.join("good.mp4")).unwrap();
    std::fs::write(dir.join("truncated.mp4"), &good[..good.len() / 3]).unwrap();
    std::fs::write(dir.join("notes.txt"), "not media").unwrap();
    let out = fixture_dir().join("batch-out");
    let missing = fixture_dir().join("missing.mp4");
    let args = |extra: &[&str]| {
        let mut v = vec![
            dir.to_str().unwrap().to_string(),
            missing.to_str().unwrap().to_string(),
            "--out".into(),
            out.to_str().unwrap().to_string(),
            "--window-mode".into(),
            "sliding".into(),
            "--jobs".into(),
            "2".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        analyze(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let (code, log) = run(&[]);
    assert_eq!(code, 1, "some inputs fail: {log}");
    let s = summary(&out.join("summary.json"));
    let files = s["files"].as_array().unwrap();
    assert_eq!(files.len(), 7, "{s:#}");
    let status = |name: &str| {
        let f = files
            .iter()
            .find(|f| f["input"].as_str().unwrap().ends_with(name))
            .unwrap();
        (f["status"].as_str().unwrap().to_string(), f.clone())
    };
    for ok in ["good.mp4", "good2.mp4", "audio-only.mp4", "video-only.mp4"] {
        let (st, f) = status(ok);
        assert_eq!(st, "ok", "{f:#}");
        assert!(f["windows"].as_u64().unwrap() >= 1, "{f:#}");
        let base = out.join(f["output"].as_str().unwrap());
        for ext in ["jsonl", "csv", "vtt", "svg", "done.json"] {
            assert!(
                base.with_extension(ext).exists()
                    || Path::new(&format!("{}.{ext}", base.display())).exists(),
                "{ok}: {ext}"
            );
        }
    }
    for bad in ["corrupt.mp4", "truncated.mp4", "missing.mp4"] {
        let (st, f) = status(bad);
        assert_eq!(st, "error", "{f:#}");
        assert!(!f["error"].as_str().unwrap().is_empty());
    }
    assert_eq!(s["failed"], 3);

    // The outputs parse with standard tools.
    let (_, good_rec) = status("good.mp4");
    let base = out.join(good_rec["output"].as_str().unwrap());
    let check = Command::new("python3")
        .arg("-c")
        .arg(
            "import csv, json, sys\n\
             rows = list(csv.DictReader(open(sys.argv[1] + '.csv')))\n\
             recs = [json.loads(l) for l in open(sys.argv[1] + '.jsonl')]\n\
             assert len(rows) == len(recs) == 3, (len(rows), len(recs))\n\
             assert [float(r['start']) for r in rows] == [0.0, 1.0, 2.0]\n\
             assert all(r['audio_samples'] > 0 for r in recs)\n\
             assert open(sys.argv[1] + '.vtt').read().startswith('WEBVTT')\n\
             print('parsed')",
        )
        .arg(&base)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // A rerun skips what is done and redoes only the failures.
    let before = std::fs::metadata(
        base.with_extension("jsonl")
            .to_str()
            .map(|p| p.to_string())
            .unwrap_or_default(),
    )
    .or_else(|_| std::fs::metadata(format!("{}.jsonl", base.display())))
    .unwrap()
    .modified()
    .unwrap();
    let (code, log) = run(&[]);
    assert_eq!(code, 1, "{log}");
    let s = summary(&out.join("summary.json"));
    assert_eq!(s["skipped"], 4, "{s:#}");
    let after = std::fs::metadata(format!("{}.jsonl", base.display()))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "completed outputs are not rewritten");

    // Shards are disjoint and together cover every input.
    let mut seen = Vec::new();
    for shard in ["0/2", "1/2"] {
        let (_, log) = run(&["--shard", shard, "--force"]);
        let name = format!("summary.shard-{}-of-2.json", &shard[..1]);
        let s = summary(&out.join(name));
        for f in s["files"].as_array().unwrap() {
            seen.push(f["input"].as_str().unwrap().to_string());
        }
        assert!(log.contains("input(s)"));
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!(before, seen.len(), "disjoint");
    assert_eq!(seen.len(), 7, "cover: {seen:?}");

    // The shard summaries merge into one covering everything.
    let merged = fixture_dir().join("merged.json");
    let m = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .args([
            "merge",
            out.to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(m.status.code(), Some(1), "3 inputs failed");
    let s = summary(&merged);
    assert_eq!(s["inputs"], 7);
    assert_eq!(s["failed"], 3);
}

#[test]
fn usage_errors_exit_2() {
    let (code, log) = analyze(&["--shard", "3/2", "x", "--out", "y"]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("need 0 <= I < N"));
}

#[test]
fn killed_run_resumes_without_duplicates() {
    let dir = fixture_dir().join("kill");
    std::fs::create_dir_all(&dir).unwrap();
    let src = clip("kill-src", ClipSpec::av(3));
    for k in 0..6 {
        std::fs::copy(&src, dir.join(format!("clip{k}.mp4"))).unwrap();
    }
    let out = fixture_dir().join("kill-out");
    let args = [
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--window-mode",
        "sliding",
        "--bundle",
        "none",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .arg("analyze")
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as the first input is complete (or it finished already).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let done_count = || {
        std::fs::read_dir(&out)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".done.json"))
                    .count()
            })
            .unwrap_or(0)
    };
    while done_count() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let (code, log) = analyze(&args);
    assert_eq!(code, 0, "{log}");
    let s = summary(&out.join("summary.json"));
    assert_eq!(s["inputs"], 6);
    assert_eq!(s["failed"], 0);
    // Every input done exactly once: complete outputs, one record per window.
    for f in s["files"].as_array().unwrap() {
        let base = out.join(f["output"].as_str().unwrap());
        let jsonl = std::fs::read_to_string(format!("{}.jsonl", base.display())).unwrap();
        let done: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{}.done.json", base.display())).unwrap(),
        )
        .unwrap();
        assert_eq!(
            jsonl.lines().count() as u64,
            done["windows"].as_u64().unwrap()
        );
        assert_eq!(jsonl.lines().count(), 3);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn debug_dir_shows_what_the_model_saw() {
    let src = clip("debug-src", ClipSpec::av(2));
    let out = fixture_dir().join("debug-out");
    let debug = fixture_dir().join("debug-dir");
    let (code, log) = analyze(&[
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--window-mode",
        "sliding",
        "--debug",
        debug.to_str().unwrap(),
        "--set",
        "frames=4",
    ]);
    assert_eq!(code, 0, "{log}");
    let per_input = std::fs::read_dir(&debug)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let names: Vec<String> = std::fs::read_dir(&per_input)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for k in 0..4 {
        assert!(
            names.contains(&format!("w000000_frame{k:03}.png")),
            "{names:?}"
        );
    }
    let summary = std::fs::read_to_string(per_input.join("w000000_summary.txt")).unwrap();
    assert!(
        summary.contains("window 0: 0.000 s - 2.000 s") && summary.contains("audio-rms"),
        "{summary}"
    );
    let png = std::fs::read(per_input.join("w000000_frame000.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn default_bundle_records_have_emotions_and_faces() {
    init();
    let clip = fixture_dir().join("face.mp4");
    let p = gst::parse::launch(&format!(
        "{} ! videoconvert ! x264enc speed-preset=ultrafast ! mp4mux \
         ! filesink location={}",
        still_video(&astronaut(), 90),
        clip.display()
    ))
    .unwrap();
    run_to_eos(&p, std::time::Duration::from_secs(60), |_| {}).unwrap();
    let out = fixture_dir().join("default-out");
    // The default bundle, which scripts/setup installs.
    let (code, log) = analyze(&[
        clip.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--window-mode",
        "sliding",
        "--bundle",
        "default",
    ]);
    assert_eq!(code, 0, "{log}");
    let s = summary(&out.join("summary.json"));
    let base = out.join(s["files"][0]["output"].as_str().unwrap());
    let jsonl = std::fs::read_to_string(format!("{}.jsonl", base.display())).unwrap();
    let recs: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!recs.is_empty());
    for r in &recs {
        assert_eq!(r["emotion"], "joy", "{r:#}");
        assert_eq!(r["branches"], "face", "{r:#}");
        let faces = r["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 1, "{r:#}");
        assert_eq!(faces[0]["emotion"], "joy");
        assert!(faces[0]["emotion_probs"]["joy"].as_f64().unwrap() > 0.9);
    }
    let csv = std::fs::read_to_string(format!("{}.csv", base.display())).unwrap();
    // The documented columns (src/output/csv.rs): the window, then per head its
    // label, confidence and one column per label in the bundle's order.
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "index,start,end,stream_start,stream_end,transcript,\
         emotion,emotion_confidence,emotion_anger,emotion_disgust,emotion_fear,emotion_joy,\
         emotion_neutral,emotion_sadness,emotion_surprise,\
         sentiment,sentiment_confidence,sentiment_negative,sentiment_neutral,sentiment_positive"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), recs.len(), "{csv}");
    assert!(rows.iter().all(|r| r.split(',').count() == 20), "{csv}");
}

/// `--out s3://bucket/prefix` against an S3-compatible server (moto on loopback): the
/// same files as a folder run, byte for byte; a second run skips every input and
/// rewrites no object; `merge` reads and writes S3 too; a missing bucket fails at
/// once with a clear error.
#[test]
fn outputs_go_to_s3_and_a_rerun_rewrites_nothing() {
    let clips: Vec<std::path::PathBuf> = (0..2)
        .map(|k| clip(&format!("s3-{k}"), ClipSpec::video_only(2, 10)))
        .collect();
    let local = fixture_dir().join("s3-local");
    let _ = std::fs::remove_dir_all(&local);
    let moto = common::s3::Moto::start(&["results"]);
    moto.keep_versions("results");
    let run = |out: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gst-emotion"));
        cmd.arg("analyze")
            .args(&clips)
            .args(["--bundle", "none", "--out", out])
            .envs(moto.env());
        cmd
    };
    run_ok(&mut run(local.to_str().unwrap()));
    let out = run_ok(&mut run("s3://results/runs/a"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 input(s): 0 failed"));
    let objects = moto.objects("results");
    // Every output file of the folder run, under the prefix, with the same bytes.
    let mut files: Vec<String> = std::fs::read_dir(&local)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("summary"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2 * 5, "{files:?}");
    let keys: Vec<&String> = objects.keys().collect();
    let expected: Vec<String> = files
        .iter()
        .map(|f| format!("runs/a/{f}"))
        .chain(["runs/a/summary.json".to_string()])
        .collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(keys, expected_sorted.iter().collect::<Vec<_>>());
    for f in files.iter().filter(|f| !f.ends_with(".done.json")) {
        assert!(
            moto.get("results", &format!("runs/a/{f}")) == std::fs::read(local.join(f)).unwrap(),
            "{f} differs"
        );
    }
    // Again: nothing to do, no object rewritten (but the run's summary).
    let out = run_ok(&mut run("s3://results/runs/a"));
    let again = moto.objects("results");
    for (key, writes) in &objects {
        assert_eq!(*writes, 1, "{key}: written {writes} times by one run");
        if !key.ends_with("summary.json") {
            assert_eq!(again[key], 1, "{key} was rewritten");
        }
    }
    assert_eq!(again["runs/a/summary.json"], 2);
    let summary: serde_json::Value =
        serde_json::from_slice(&moto.get("results", "runs/a/summary.json")).unwrap();
    assert_eq!(summary["skipped"], 2, "{summary}\n{out:?}");
    // merge reads the prefix and writes the merged summary there.
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
            .args([
                "merge",
                "s3://results/runs/a",
                "--out",
                "s3://results/merged.json",
            ])
            .envs(moto.env()),
    );
    let merged: serde_json::Value =
        serde_json::from_slice(&moto.get("results", "merged.json")).unwrap();
    assert_eq!(
        (merged["inputs"].as_u64(), merged["failed"].as_u64()),
        (Some(2), Some(0))
    );
    // A bucket that does not exist: a usage error before any analysis.
    let out = run("s3://no-such-bucket/x").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("s3://no-such-bucket/"), "{err}");
}
