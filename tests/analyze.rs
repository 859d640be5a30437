//! `gst-emotion analyze` on a generated folder: good clips, audio-only, video-only, a
//! corrupt and a truncated file, and a missing one.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn analyze(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .arg("analyze")
        .args(args)
        .output()
        .expect("run gst-emotion");
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
