//! Face-sequence bundles (docs/robot.md): bundles made here by
//! models/export_face_sequence.py (random weights), a clip made here with two faces
//! (scikit-image's astronaut twice; the smaller one leaves at 1.5 s), and the robot
//! CLI's pipeline in Python (models/reference_face_sequence.py) as the reference.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// 640×360 at 30 fps, 3 s, lossless RGB (so both sides decode the same pixels): a
/// 300 px astronaut from 0 to 3 s, a mirrored 200 px one from 0 to 1.5 s.
fn two_faces() -> PathBuf {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        init();
        let path = fixture_dir().join("two-faces.avi");
        let a = astronaut();
        let desc = format!(
            "compositor name=c background=black sink_0::xpos=20 sink_0::ypos=30 \
             sink_1::xpos=420 sink_1::ypos=80 \
             ! video/x-raw,width=640,height=360,framerate=30/1 ! videoconvert \
             ! video/x-raw,format=BGR ! avimux ! filesink location={out} \
             {still90} ! videoconvert ! videoscale ! video/x-raw,width=300,height=300 ! c.sink_0 \
             {still45} ! videoconvert ! videoflip method=horizontal-flip ! videoscale \
             ! video/x-raw,width=200,height=200 ! c.sink_1",
            out = path.display(),
            still90 = still_video(&a, 90),
            still45 = still_video(&a, 45),
        );
        let p = gst::parse::launch(&desc).unwrap();
        run_to_eos(&p, Duration::from_secs(60), |_| {}).unwrap();
        path
    })
    .clone()
}

/// Runs `cmd` (it must exit 0); returns its standard output.
fn ok(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_ok(cmd).stdout).into_owned()
}

/// Exports a random-weight bundle of `arch`; with `checkpoint`, also its state_dict.
fn export(arch: &str, name: &str, extra: &[&str]) -> PathBuf {
    let dir = fixture_dir().join(name);
    let mut cmd = Command::new(python());
    cmd.arg(root().join("models/export_face_sequence.py"))
        .args(["--arch", arch, "--random-init", "--seed", "3", "--out"])
        .arg(&dir)
        .args(extra);
    ok(&mut cmd);
    dir
}

fn light_bundle() -> PathBuf {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| export("light", "light", &[])).clone()
}

/// A copy of `bundle` with `from` replaced by `to` in its manifest.
fn variant(bundle: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let dir = fixture_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(bundle).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let m = std::fs::read_to_string(dir.join("bundle.toml")).unwrap();
    assert!(m.contains(from), "{from} not in the manifest");
    std::fs::write(dir.join("bundle.toml"), m.replacen(from, to, 1)).unwrap();
    dir
}

/// `gst-emotion analyze` with sliding windows; returns the output folder.
fn analyze(bundle: &Path, clip: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = fixture_dir().join(name);
    ok(Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .arg("analyze")
        .arg(clip)
        .arg("--bundle")
        .arg(bundle)
        .arg("--out")
        .arg(&out)
        .args(["--window-mode", "sliding", "--force"])
        .args(extra));
    out
}

/// The one output file of `dir` ending in `suffix`.
fn output(dir: &Path, suffix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no *{suffix} in {}", dir.display()))
}

fn records(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(output(dir, ".jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn parity(bundle: &Path, extra: &[&str]) {
    let work = fixture_dir().join(format!(
        "parity-{}",
        bundle.file_name().unwrap().to_string_lossy()
    ));
    let report = ok(Command::new(root().join("scripts/parity"))
        .arg(two_faces())
        .arg(bundle)
        .args(extra)
        .arg("--work")
        .arg(&work)
        .env("GST_EMOTION_BIN", env!("CARGO_BIN_EXE_gst-emotion"))
        .env("GST_EMOTION_PYTHON", python()));
    println!("{report}");
    assert!(report.contains("parity: ok (3 windows)"), "{report}");
    let lines: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(work.join("parity.json")).unwrap()).unwrap();
    let faces: Vec<u64> = lines.iter().map(|l| l["faces"].as_u64().unwrap()).collect();
    assert_eq!(faces, [2, 2, 1], "faces per window");
    for l in &lines {
        assert!(l["crop_mean"].as_f64().unwrap() <= 1.0, "{l}");
        assert!(l["crop_max"].as_u64().unwrap() <= 4, "{l}");
        assert!(l["prob_max"].as_f64().unwrap() <= 1e-4, "{l}");
        assert_eq!(l["argmax_same"], true, "{l}");
    }
}

#[test]
fn light_model_matches_the_robot_cli_pipeline() {
    parity(&light_bundle(), &[]);
}

#[test]
fn large_model_checkpoint_matches_the_element() {
    let checkpoint = fixture_dir().join("large.pth");
    let bundle = export(
        "large",
        "large",
        &["--save-checkpoint", checkpoint.to_str().unwrap()],
    );
    parity(
        &bundle,
        &[
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--arch",
            "large",
        ],
    );
}

#[test]
fn two_faces_keep_their_ids_and_the_leaver_is_filled() {
    let out = analyze(
        &light_bundle(),
        &two_faces(),
        "two-faces-repeat",
        &["--per-frame"],
    );
    let recs = records(&out);
    assert_eq!(recs.len(), 3, "{recs:?}");
    let ids = |r: &Value| -> Vec<u64> {
        r["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_u64().unwrap())
            .collect()
    };
    // The larger face is first (face_select = largest) and keeps id 0 throughout.
    assert_eq!(ids(&recs[0]), [0, 1]);
    assert_eq!(ids(&recs[1]), [0, 1]);
    assert_eq!(ids(&recs[2]), [0]);
    // The leaver is on 5 of window 1's 10 sampled frames, repeated to 10 answers.
    let leaver = &recs[1]["faces"][1];
    assert_eq!(leaver["frames"], 5);
    assert_eq!(leaver["emotion_frames"].as_array().unwrap().len(), 10);
    // The window's answer is the main face's: its per-frame list, with frame times.
    let frames = recs[0]["emotion_frames"].as_array().unwrap();
    assert_eq!(frames.len(), 10);
    let pts: Vec<f64> = frames.iter().map(|f| f["pts"].as_f64().unwrap()).collect();
    assert!(
        pts.windows(2).all(|w| w[0] < w[1]) && pts[9] < 1.0,
        "{pts:?}"
    );
    let mean: f64 = frames
        .iter()
        .map(|f| f["probs"]["happy"].as_f64().unwrap())
        .sum::<f64>()
        / 10.0;
    let window = recs[0]["emotion_probs"]["happy"].as_f64().unwrap();
    assert!((mean - window).abs() < 1e-9, "{mean} vs {window}");

    // The per-frame CSV: T rows per face per window, read by Python's csv.
    let csv = output(&out, ".frames.csv");
    let check = ok(Command::new(python()).arg("-c").arg(
        "import csv, sys, collections\n\
         rows = list(csv.DictReader(open(sys.argv[1])))\n\
         per = collections.Counter((r['window'], r['face_id']) for r in rows)\n\
         assert set(per.values()) == {10}, per\n\
         assert len(per) == 5, per\n\
         assert all(r['label'] in ('angry','fear','happy','neutral','sad','surprise') for r in rows)\n\
         assert all(abs(sum(float(r[l]) for l in ('angry','fear','happy','neutral','sad','surprise')) - 1) < 1e-6 for r in rows)\n\
         print(len(rows), 'rows')",
    ).arg(&csv));
    assert!(check.contains("50 rows"), "{check}");
}

#[test]
fn debug_dump_holds_the_crops_fed_and_fill_rules_apply() {
    let dump = fixture_dir().join("dump-black");
    let black = variant(
        &light_bundle(),
        "light-black",
        "fill = \"repeat\"",
        "fill = \"black\"",
    );
    analyze(
        &black,
        &two_faces(),
        "two-faces-black",
        &["--debug", dump.to_str().unwrap()],
    );
    // The tensor fed (THWC, x / 255) is the dumped crops, and the leaver's missing
    // frames (the second half of window 1) are black.
    let check = ok(Command::new(python())
        .arg("-c")
        .arg(
            "import sys, glob, numpy as np, cv2\n\
             d = glob.glob(sys.argv[1] + '/*/')[0]\n\
             x = np.load(d + 'w000001_faces.npy')\n\
             assert x.shape == (2, 10, 48, 48, 3), x.shape\n\
             for f in range(2):\n\
             \x20   for t in range(10):\n\
             \x20       png = cv2.imread(d + f'w000001_face{f}_crop{t:03}.png')[..., ::-1]\n\
             \x20       assert np.abs(png / 255.0 - x[f, t]).max() < 1e-6, (f, t)\n\
             assert (x[1, 5:] == 0).all() and (x[1, :5] > 0).any()\n\
             print('crops ok')",
        )
        .arg(&dump));
    assert!(check.contains("crops ok"), "{check}");

    // skip: a face missing from some frames is not analysed.
    let skip = variant(
        &light_bundle(),
        "light-skip",
        "fill = \"repeat\"",
        "fill = \"skip\"",
    );
    let recs = records(&analyze(&skip, &two_faces(), "two-faces-skip", &[]));
    let counts: Vec<usize> = recs
        .iter()
        .map(|r| r["faces"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, [2, 1, 1]);
}

#[test]
fn no_face_is_a_flagged_result_not_an_error() {
    init();
    let clip = fixture_dir().join("no-face.avi");
    let p = gst::parse::launch(&format!(
        "videotestsrc pattern=solid-color foreground-color=0xff808080 num-buffers=60 \
         ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert \
         ! video/x-raw,format=BGR ! avimux ! filesink location={}",
        clip.display()
    ))
    .unwrap();
    run_to_eos(&p, Duration::from_secs(60), |_| {}).unwrap();
    let recs = records(&analyze(
        &light_bundle(),
        &clip,
        "no-face",
        &["--per-frame"],
    ));
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(r["faces"].as_array().unwrap().len(), 0, "{r}");
        assert_eq!(r["low_confidence"], true, "{r}");
        assert!(
            r["flags"].as_array().unwrap().contains(&"no-face".into()),
            "{r}"
        );
        let p = r["emotion_probs"].as_object().unwrap();
        assert!(
            p.values()
                .all(|v| (v.as_f64().unwrap() - 1.0 / 6.0).abs() < 1e-12)
        );
    }
}

/// The load error of `bundle`, which must fail.
fn load_error(bundle: &Path) -> String {
    let e = gst_emotion::infer::Model::shared(bundle, Default::default())
        .expect_err("the bundle must not load");
    e.to_string()
}

#[test]
fn bad_face_bundles_fail_at_load_naming_the_field() {
    let light = light_bundle();
    // Layout in the manifest not the model's.
    let e = load_error(&variant(
        &light,
        "bad-layout",
        "layout = \"THWC\"",
        "layout = \"TCHW\"",
    ));
    assert!(e.contains("inputs.frames"), "{e}");
    // No frames.
    let e = load_error(&variant(&light, "bad-frames", "frames = 10", "frames = 0"));
    assert!(e.contains("inputs.frames.frames"), "{e}");
    // A per-frame head whose model answers per window.
    let per_window = variant(
        &light,
        "bad-per-frame",
        "name = \"model\"",
        "name = \"model\"",
    );
    ok(Command::new(python())
        .arg("-c")
        .arg(
            "import sys, torch\n\
             class M(torch.nn.Module):\n\
             \x20   def forward(self, x):\n\
             \x20       return x.flatten(1)[:, :6]\n\
             torch.jit.trace(M(), torch.rand(1, 10, 48, 48, 3)).save(sys.argv[1])",
        )
        .arg(per_window.join("model.ts")));
    let e = load_error(&per_window);
    assert!(e.contains("heads.emotion.per_frame"), "{e}");
    // Faces without a detector section.
    let e = load_error(&variant(&light, "bad-faces", "[faces]", "[unused]"));
    assert!(e.contains("unused"), "{e}");
}

#[test]
fn upstream_face_boxes_feed_the_sequences() {
    let desc = format!(
        "filesrc location={} ! avidemux ! videoconvert ! facedetect display=false \
         ! videoconvert ! emotionsense bundle={} window-mode=sliding asr=false ! fakesink",
        two_faces().display(),
        light_bundle().display()
    );
    let p = gst::parse::launch(&desc).unwrap();
    let mut windows = Vec::new();
    run_to_eos(&p, Duration::from_secs(120), |m| {
        windows.extend(window_of(m))
    })
    .unwrap();
    assert_eq!(windows.len(), 3);
    for w in &windows {
        let faces = &w.fusion().expect("face details").faces;
        assert!(!faces.is_empty(), "{w:?}");
        assert!(faces.iter().all(|f| f.upstream), "{w:?}");
        // The per-frame answers of the selected face, one per sampled frame.
        assert_eq!(w.head("emotion").unwrap().frames.len(), 10);
        assert_eq!(faces[0].frame_probs.len(), 10);
    }
}
