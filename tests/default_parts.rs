//! The default bundle's re-implemented parts against the original Python packages
//! (models/reference_parts.py): VADER's compound score against vaderSentiment 3.3.2 on
//! sentences exercising every rule, and the Rust MTCNN cascade against
//! facenet-pytorch's `detect_face` on the same TorchScript nets and images.

mod common;

use std::path::Path;

use common::{default_bundle, run_ok};
use std::process::Command;

use gst_emotion::face::{Mtcnn, MtcnnConfig};
use gst_emotion::media::RgbImage;
use gst_emotion::text::vader::Vader;

fn reference(args: &[&str]) -> serde_json::Value {
    let out = run_ok(
        Command::new(common::python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reference_parts.py"))
            .args(args),
    );
    serde_json::from_slice(&out.stdout).expect("JSON from reference_parts.py")
}

const SENTENCES: &[&str] = &[
    "The book was good.",
    "The book was very good!!",
    "The book was VERY GOOD.",
    "The book was not good.",
    "The book was not very good at all.",
    "It isn't a horrible book.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today SUX!",
    "Sentiment analysis has never been good.",
    "Sentiment analysis has never been this good!",
    "Without a doubt, an excellent idea.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "I am so happy today. This is a wonderful day and I love it.",
    "I hate this. I am furious with you and I am so angry right now.",
    "No problem, that is fine.",
    "There is no joy in this.",
    "What? Really?? Are you serious???",
    "You are the shit!",
    "He was kind of happy, sort of.",
    "I am not sad, but not happy either.",
    "The meeting is at three o'clock.",
    "",
    "Wow :) that was great :D",
];

#[test]
fn vader_matches_the_python_package() {
    let lexicon = default_bundle().join("vader_lexicon.txt");
    let vader = Vader::from_file(&lexicon).unwrap();
    let expected = reference(&[&["vader"][..], SENTENCES].concat());
    let expected = expected.as_array().unwrap();
    assert_eq!(expected.len(), SENTENCES.len());
    for (s, e) in SENTENCES.iter().zip(expected) {
        let ours = vader.polarity(s).compound;
        let theirs = e.as_f64().unwrap();
        // The package rounds to 4 decimals.
        assert!(
            (ours - theirs).abs() <= 5.1e-5,
            "{s:?}: ours {ours}, vaderSentiment {theirs}"
        );
    }
}

fn read_png(path: &Path) -> RgbImage {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let data: Vec<u8> = match info.color_type {
        png::ColorType::Rgb => buf[..w * h * 3].to_vec(),
        png::ColorType::Rgba => buf[..w * h * 4]
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Grayscale => buf[..w * h].iter().flat_map(|&v| [v, v, v]).collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    RgbImage {
        width: w,
        height: h,
        data,
        faces: None,
    }
}

#[test]
fn mtcnn_matches_facenet_pytorch() {
    let b = default_bundle();
    let media = gst_emotion::paths::cache_dir().unwrap().join("media");
    let mut compared = 0;
    for image in ["astronaut.png", "camera.png"] {
        let path = media.join(image);
        assert!(
            path.is_file(),
            "{} missing: run scripts/setup --deps-only",
            path.display()
        );
        let img = read_png(&path);
        for min_face in [20.0, 40.0] {
            let mtcnn = Mtcnn::load(
                [
                    &b.join("mtcnn_pnet.ts"),
                    &b.join("mtcnn_rnet.ts"),
                    &b.join("mtcnn_onet.ts"),
                ],
                MtcnnConfig {
                    min_face,
                    thresholds: [0.6, 0.7, 0.7],
                    factor: 0.709,
                },
                tch::Device::Cpu,
            )
            .unwrap();
            let ours = mtcnn.detect(&img).unwrap();
            let theirs = reference(&[
                "mtcnn",
                b.to_str().unwrap(),
                path.to_str().unwrap(),
                &min_face.to_string(),
            ]);
            let theirs = theirs.as_array().unwrap();
            assert_eq!(
                ours.len(),
                theirs.len(),
                "{image} min_face {min_face}: {ours:?} vs {theirs:?}"
            );
            for (o, t) in ours.iter().zip(theirs) {
                let t: Vec<f32> = t
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect();
                for (a, e) in [o.x1, o.y1, o.x2, o.y2].iter().zip(&t[..4]) {
                    assert!((a - e).abs() < 0.05, "{image}: box {o:?} vs {t:?}");
                }
                assert!(
                    (o.score - t[4]).abs() < 1e-4,
                    "{image}: score {o:?} vs {t:?}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 2, "no faces compared");
}

/// The default bundle's MTCNN (the bundle's thresholds) on the CPU.
fn default_mtcnn() -> Mtcnn {
    let b = default_bundle();
    Mtcnn::load(
        [
            &b.join("mtcnn_pnet.ts"),
            &b.join("mtcnn_rnet.ts"),
            &b.join("mtcnn_onet.ts"),
        ],
        MtcnnConfig {
            min_face: 20.0,
            thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
        },
        tch::Device::Cpu,
    )
    .unwrap()
}

#[test]
fn overlapping_windows_do_not_find_the_same_faces_twice() {
    use gst_emotion::bundle::Between;
    use gst_emotion::face::{Runs, window_boxes};
    use std::sync::Arc;
    // 15 frames: the astronaut moving right 6 px a frame (boxes differ per frame).
    let media = gst_emotion::paths::cache_dir().unwrap().join("media");
    let still = read_png(&media.join("astronaut.png"));
    let frames: Vec<Arc<RgbImage>> = (0..15)
        .map(|k| {
            let mut img = RgbImage::black(still.width, still.height);
            let shift = 6 * k;
            for y in 0..still.height {
                let row = y * still.width * 3;
                let n = (still.width - shift) * 3;
                img.data[row + shift * 3..row + shift * 3 + n]
                    .copy_from_slice(&still.data[row..row + n]);
            }
            Arc::new(img)
        })
        .collect();
    // Sliding windows of 10 sampled frames, 5 apart (length twice the hop), a full
    // detection every 5th frame: the second window's first run is the first's last.
    let windows = [&frames[0..10], &frames[5..15]];
    for between in [Between::Near, Between::Hold] {
        let shared = default_mtcnn();
        let mut found = Vec::new();
        let mut counts = Vec::new();
        for w in windows {
            found.push(window_boxes(&shared, w, 10, 5, between, Runs::SideBySide).unwrap());
            counts.push(shared.detections());
        }
        assert_eq!(counts, [2, 3], "{between:?}: the shared run is found once");
        // Each window alone, on a detector that remembers nothing else.
        for (w, boxes) in windows.iter().zip(&found) {
            let fresh = default_mtcnn();
            let alone = window_boxes(&fresh, w, 10, 5, between, Runs::SideBySide).unwrap();
            assert_eq!(&alone, boxes, "{between:?}: the same boxes as found alone");
            assert!(boxes.iter().all(|b| !b.is_empty()), "a face on every frame");
        }
        assert_ne!(
            found[1][0], found[1][5],
            "{between:?}: boxes follow the face"
        );
    }
}

#[test]
fn faces_found_ahead_of_the_words_give_the_same_answer() {
    use gst_emotion::infer::{Model, ModelOptions};
    use gst_emotion::media::sampler::FrameSelection;
    use gst_emotion::window::{WindowJob, WindowSpan};
    use std::sync::Arc;
    let media = gst_emotion::paths::cache_dir().unwrap().join("media");
    let frame = Arc::new(gst_emotion::media::LazyFrame::ready(read_png(
        &media.join("astronaut.png"),
    )));
    let model = Model::shared(&default_bundle(), ModelOptions::default()).unwrap();
    let job = WindowJob {
        span: WindowSpan {
            index: 0,
            start: 0,
            end: 3_000_000_000,
        },
        frames: Some(FrameSelection {
            frames: vec![frame; 6],
            real: 6,
            distinct: 1,
            times: (0..6).map(|i| Some(i * 500_000_000)).collect(),
        }),
        audio: None,
        kind: Default::default(),
        stream_span: None,
        degraded: None,
    };
    let text = Some("I am so happy to see you again.");
    // The element's way: the face branch starts first, the words come later.
    let pending = model
        .start_faces(&job, None)
        .expect("the default bundle has a face branch");
    let mut ahead = model.prepare(&job, text).unwrap();
    ahead.face_stage = Some(pending.wait().unwrap());
    let ahead = model.predict(ahead).unwrap();
    // All at once.
    let at_once = model.predict(model.prepare(&job, text).unwrap()).unwrap();
    assert_eq!(ahead.probs, at_once.probs);
    assert_eq!(ahead.fusion, at_once.fusion);
    let faces = &ahead.fusion.as_ref().unwrap().faces;
    assert_eq!(faces.len(), 1, "{faces:?}");
    let stages: Vec<&str> = ahead.timings.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        stages,
        ["face-detect", "face-classify", "inference-wait", "text"]
    );
    // A guess withdrawn before its turn on the inference thread is skipped, and one
    // still standing finds the same faces.
    let guess = gst_emotion::speculation::Speculation::new();
    let standing = model
        .start_faces(&job, Some(&guess))
        .unwrap()
        .wait()
        .unwrap();
    let mut input = model.prepare(&job, text).unwrap();
    input.face_stage = Some(standing);
    assert_eq!(model.predict(input).unwrap().fusion, at_once.fusion);
    guess.withdraw();
    let skipped = model.start_faces(&job, Some(&guess)).unwrap().wait();
    assert!(skipped.is_err(), "a withdrawn guess ran");
}
