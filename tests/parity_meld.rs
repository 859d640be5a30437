//! MELD parity: on a generated clip with motion and sound, the tensors `emotionsense`
//! feeds the (random-init) MELD bundle and the probabilities it reports must match the
//! reference Python pipeline (models/reference.py) within the bounds of docs/parity.md.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use gst::prelude::*;
use gst_emotion::output::WindowResult;

const TEXT: &str = "I am SO happy today, café!";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_python(args: &[&std::ffi::OsStr]) -> String {
    let out = run_ok(Command::new(python()).args(args));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The random-init MELD bundle (seed 1), exported once into the cache and reused
/// while the export scripts are unchanged.
fn meld_bundle() -> PathBuf {
    static BUNDLE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUNDLE.get_or_init(export_meld_bundle).clone()
}

fn export_meld_bundle() -> PathBuf {
    let mut hash = 0xcbf29ce484222325u64; // FNV-1a over the scripts that make the bundle
    for f in [
        "models/export_meld.py",
        "models/meld_model.py",
        "models/ts_device.py",
    ] {
        for b in std::fs::read(root().join(f)).unwrap() {
            hash = (hash ^ b as u64).wrapping_mul(0x100000001b3);
        }
    }
    let cache = std::env::var_os("GST_EMOTION_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/gst-emotion")
        });
    let dir = cache.join(format!("test-bundles/meld-random-seed1-{hash:016x}"));
    if !dir.join("bundle.toml").exists() {
        let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
        run_python(&[
            root().join("models/export_meld.py").as_os_str(),
            "--random-init".as_ref(),
            "--seed".as_ref(),
            "1".as_ref(),
            "--half".as_ref(),
            "bf16".as_ref(),
            "--out".as_ref(),
            tmp.as_os_str(),
        ]);
        // Another test process may have finished first: keep whichever landed.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    dir
}

/// 3 s of a moving ball (H.264) with ticks at 16 kHz mono (AAC).
fn parity_clip() -> PathBuf {
    clip_with_audio("parity.mp4", "rate=16000,channels=1", 47)
}

/// The parity clip with `audio` caps (`buffers` of 1024 samples of ticks).
fn clip_with_audio(name: &str, audio: &str, buffers: u32) -> PathBuf {
    init();
    let path = fixture_dir().join(name);
    let desc = format!(
        "mp4mux name=mux ! filesink location={} \
         videotestsrc pattern=ball num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc speed-preset=ultrafast ! h264parse ! queue ! mux. \
         audiotestsrc wave=ticks samplesperbuffer=1024 num-buffers={buffers} ! audio/x-raw,{audio} \
         ! avenc_aac ! aacparse ! queue ! mux.",
        path.display()
    );
    let p = gst::parse::launch(&desc).unwrap();
    run_to_eos(&p, Duration::from_secs(60), |_| {}).unwrap();
    path
}

/// The reference chain in front of `e.audio`.
const RESAMPLED: &str = "audioconvert ! audioresample !";

fn run_element(clip: &Path, bundle: &Path, dump: &Path) -> Vec<WindowResult> {
    run_element_with(clip, bundle, dump, RESAMPLED)
}

/// Runs the MELD bundle on `clip`, its audio through `chain` into `e.audio`.
fn run_element_with(clip: &Path, bundle: &Path, dump: &Path, chain: &str) -> Vec<WindowResult> {
    let p = gst::parse::launch(&format!(
        "uridecodebin uri={} name=d \
         emotionsense name=e window-mode=sliding window-length=3 window-hop=3 ! fakesink \
         d. ! video/x-raw ! queue ! videoconvert ! e.video \
         d. ! audio/x-raw ! queue ! {chain} e.audio",
        uri(clip)
    ))
    .unwrap();
    let e = p.downcast_ref::<gst::Bin>().unwrap().by_name("e").unwrap();
    e.set_property("bundle", bundle.to_str().unwrap());
    e.set_property("text", TEXT);
    e.set_property("dump-dir", dump.to_str().unwrap());
    let mut results = Vec::new();
    run_to_eos(&p, Duration::from_secs(300), |m| {
        results.extend(window_of(m))
    })
    .unwrap();
    results
}

#[test]
fn meld_bundle_matches_the_reference_pipeline() {
    let bundle = meld_bundle();
    let clip = parity_clip();
    let dump = fixture_dir().join("dump");
    let results = run_element(&clip, &bundle, &dump);
    assert_eq!(results.len(), 1, "one 3 s window");
    let w = &results[0];
    assert_eq!(w.transcript_text(), TEXT);
    let emotion = w.head("emotion").unwrap();
    assert_eq!(emotion.probs.len(), 7);
    assert_eq!(emotion.labels[3], "joy");
    assert_eq!(w.head("sentiment").unwrap().probs.len(), 3);

    let reference = fixture_dir().join("reference.npz");
    run_python(&[
        root().join("models/reference.py").as_os_str(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        "--video".as_ref(),
        clip.as_os_str(),
        "--text".as_ref(),
        TEXT.as_ref(),
        "--end".as_ref(),
        "3".as_ref(),
        "--out".as_ref(),
        reference.as_os_str(),
    ]);
    let report = run_python(&[
        root().join("models/compare_parity.py").as_os_str(),
        reference.as_os_str(),
        dump.as_os_str(),
    ]);
    println!("{report}");
    assert!(report.contains("parity ok"), "{report}");
}

/// 44.1 kHz stereo straight into `e.audio` (the element converts its own copy) gives
/// the windows and probabilities of the 16 kHz path (`audioconvert ! audioresample`
/// in front).
#[test]
fn any_rate_audio_in_gives_the_16_khz_results() {
    let bundle = meld_bundle();
    let clip = clip_with_audio("parity44.mp4", "rate=44100,channels=2", 130);
    let resampled = run_element_with(&clip, &bundle, &fixture_dir().join("d16"), RESAMPLED);
    let direct = run_element_with(&clip, &bundle, &fixture_dir().join("d44"), "");
    assert_eq!(resampled.len(), 1);
    assert_eq!(direct.len(), resampled.len());
    for (a, b) in direct.iter().zip(&resampled) {
        assert_eq!(a.span, b.span);
        assert_eq!(a.audio_samples, b.audio_samples);
        let (ra, rb) = (a.audio_rms.unwrap(), b.audio_rms.unwrap());
        assert!((ra - rb).abs() < 1e-6, "rms {ra} vs {rb}");
        for (ha, hb) in a.heads().iter().zip(b.heads()) {
            assert_eq!(ha.name, hb.name);
            for (pa, pb) in ha.probs.iter().zip(&hb.probs) {
                assert!(
                    (pa - pb).abs() < 1e-6,
                    "{}: {:?} vs {:?}",
                    ha.name,
                    ha.probs,
                    hb.probs
                );
            }
        }
    }
}

#[test]
fn bad_bundles_fail_at_ready_with_one_line_errors() {
    init();
    let bundle = meld_bundle();
    fn replace_in_manifest(d: &Path, from: &str, to: &str) {
        let t = std::fs::read_to_string(d.join("bundle.toml")).unwrap();
        assert!(t.contains(from));
        std::fs::write(d.join("bundle.toml"), t.replace(from, to)).unwrap();
    }
    /// The field the error must name, and how to break a copy of the bundle.
    type Case = (&'static str, fn(&Path));
    let cases: Vec<Case> = vec![
        ("bundle.toml", |d| {
            std::fs::write(d.join("bundle.toml"), "format = [").unwrap()
        }),
        // 5 labels where the model gives 7 logits.
        ("heads.emotion", |d| {
            replace_in_manifest(
                d,
                r#"labels = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]"#,
                r#"labels = ["anger", "disgust", "fear", "joy", "neutral"]"#,
            )
        }),
        ("model.ts", |d| {
            // The CPU variant would be loaded instead: drop it, break model.ts.
            replace_in_manifest(d, "cpu_file = \"model.cpu.ts\"\n", "");
            std::fs::write(d.join("model.ts"), b"not a model").unwrap()
        }),
        ("inputs.video_frames.policy", |d| {
            replace_in_manifest(d, r#"policy = "first""#, r#"policy = "random""#)
        }),
    ];
    for (i, (needle, corrupt)) in cases.iter().enumerate() {
        let dir = fixture_dir().join(format!("bad-bundle-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["bundle.toml", "tokenizer.json", "MODEL_CARD.md"] {
            std::fs::copy(bundle.join(f), dir.join(f)).unwrap();
        }
        for f in ["model.ts", "model.cpu.ts", "model.bf16.ts"] {
            if bundle.join(f).exists() && std::fs::symlink_metadata(dir.join(f)).is_err() {
                std::os::unix::fs::symlink(bundle.join(f), dir.join(f)).unwrap();
            }
        }
        if *needle == "model.ts" {
            std::fs::remove_file(dir.join("model.ts")).unwrap();
        }
        corrupt(&dir);
        let e = gst::ElementFactory::make("emotionsense")
            .property("bundle", dir.to_str().unwrap())
            .build()
            .unwrap();
        let bus = gst::Bus::new();
        e.set_bus(Some(&bus));
        assert!(
            e.set_state(gst::State::Ready).is_err(),
            "case {needle}: READY must fail"
        );
        let msg = bus
            .pop_filtered(&[gst::MessageType::Error])
            .expect("error message");
        let gst::MessageView::Error(err) = msg.view() else {
            unreachable!()
        };
        let text = err.error().to_string();
        assert!(text.contains(needle), "case {needle}: {text}");
        assert!(!text.contains('\n'), "one line: {text}");
        let _ = e.set_state(gst::State::Null);
    }
}

/// A 3 s window with neither frames nor audio: the model sees only its words.
fn words_only_window() -> gst_emotion::window::WindowJob {
    gst_emotion::window::WindowJob::words_only(gst_emotion::window::WindowSpan {
        index: 0,
        start: 0,
        end: 3_000_000_000,
    })
}

#[test]
fn elements_share_one_model_per_bundle_and_device() {
    use gst_emotion::infer::{DeviceChoice, Model, ModelOptions};
    init();
    let bundle = meld_bundle();
    let options = ModelOptions {
        device: DeviceChoice::Cpu,
        ..ModelOptions::default()
    };
    let loads = Model::loads();
    let a = Model::shared(&bundle, options).unwrap();
    let b = Model::shared(&bundle, options).unwrap();
    assert!(Model::loads() <= loads + 1, "loaded once");
    assert!(
        std::sync::Arc::ptr_eq(&a, &b),
        "same bundle + device: one model"
    );
    // Windows sent together are answered in order, each with one row per head.
    let job = words_only_window();
    let p1 = a.prepare(&job, Some("i am happy")).unwrap();
    let p2 = a.prepare(&job, Some("i am furious")).unwrap();
    let out = a.predict_many(vec![p1.clone(), p2, p1]);
    let out: Vec<_> = out
        .into_iter()
        .map(|r| {
            r.unwrap()
                .logits
                .expect("a TorchScript bundle gives logits")
        })
        .collect();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].len(), 2);
    assert_eq!(out[0][0].len(), 7);
    assert_eq!(out[0][1].len(), 3);
    // Batched or not, the same window gives the same logits.
    for (x, y) in out[0][0].iter().zip(&out[2][0]) {
        assert!((x - y).abs() < 1e-5);
    }
    assert_ne!(out[0][0], out[1][0], "different text, different answer");
}

#[test]
fn half_precision_runs_the_same_model_close_to_fp32() {
    use gst_emotion::infer::{DeviceChoice, Model, ModelOptions, Precision};
    init();
    let bundle = meld_bundle();
    let job = words_only_window();
    let probs = |precision| {
        let model = Model::shared(
            &bundle,
            ModelOptions {
                device: DeviceChoice::Cpu,
                precision,
                ..ModelOptions::default()
            },
        )
        .unwrap();
        let texts = ["i am so happy today", "this is a disaster"];
        let windows = texts
            .iter()
            .map(|t| model.prepare(&job, Some(t)).unwrap())
            .collect();
        model
            .predict_many(windows)
            .into_iter()
            .map(|r| r.unwrap().probs)
            .collect::<Vec<_>>()
    };
    let full = probs(Precision::Fp32);
    let half = probs(Precision::Bf16);
    assert_eq!(full.len(), half.len());
    let mut worst = 0.0f64;
    for (f, h) in full.iter().zip(&half) {
        assert_eq!(f.len(), h.len(), "one row per head");
        for (fh, hh) in f.iter().zip(h) {
            assert_eq!(fh.len(), hh.len());
            assert!((hh.iter().sum::<f64>() - 1.0).abs() < 1e-3, "{hh:?}");
            for (a, b) in fh.iter().zip(hh) {
                worst = worst.max((a - b).abs());
            }
        }
    }
    // bf16 keeps 8 bits of mantissa: close to fp32, not equal.
    assert!(worst < 0.05, "bf16 differs from fp32 by {worst}");
    assert!(worst > 0.0, "bf16 must really run in bf16");
}

#[test]
fn a_fusion_bundle_refuses_half_precision_with_a_clear_error() {
    use gst_emotion::infer::{DeviceChoice, Model, ModelOptions, Precision};
    init();
    let bundle = common::default_bundle();
    let err = Model::shared(
        &bundle,
        ModelOptions {
            device: DeviceChoice::Cpu,
            precision: Precision::Fp16,
            ..ModelOptions::default()
        },
    )
    .expect_err("a fusion bundle in fp16 must be refused");
    assert!(err.to_string().contains("precision=fp32"), "{err}");
}

#[test]
fn exported_text_encoders_make_their_masks_on_the_inputs_device() {
    // A trace on the CPU records BERT's mask as made on the CPU; on CUDA the forward
    // would then fail. The exports take the device from the input instead.
    init();
    let meld = meld_bundle();
    let default = common::default_bundle();
    let out = run_python(&[
        root().join("models/ts_device.py").as_os_str(),
        meld.join("model.ts").as_os_str(),
        meld.join("model.bf16.ts").as_os_str(),
        default.join("text_encoder.ts").as_os_str(),
    ]);
    assert_eq!(out.matches("device-independent").count(), 3, "{out}");
}
