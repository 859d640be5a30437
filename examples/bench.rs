//! Benchmarks of the engine, printed as a table (run by scripts/bench):
//! preprocessing throughput (frame resizes, mel windows, whole MELD windows) and the
//! model's forward latency per window at batch 1, 4 and 8.
//!
//! usage: bench BUNDLE_DIR [--iterations N]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gst_emotion::infer::{DeviceChoice, Model, ModelOptions, prepare};
use gst_emotion::media::sampler::FrameSelection;
use gst_emotion::media::{MelConfig, MelSpectrogram, PixelLayout, RgbImage, resize_linear};
use gst_emotion::window::{WindowAudio, WindowJob, WindowSpan};

fn rate(label: &str, unit: &str, n: usize, f: impl Fn()) {
    f(); // warm-up
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    let per = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "{label:<44} {:>10.1} {unit}/s   ({:.3} ms each)",
        1.0 / per,
        per * 1e3
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bundle = args
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: bench BUNDLE_DIR [--iterations N]"))?;
    let iterations: usize = match args.iter().position(|a| a == "--iterations") {
        Some(i) => args
            .get(i + 1)
            .ok_or_else(|| anyhow::anyhow!("--iterations needs a value"))?
            .parse()?,
        None => 3,
    };
    println!("threads: torch {}", tch::get_num_threads());

    // Preprocessing.
    let frame: Vec<u8> = (0..1280 * 720 * 3).map(|i| (i * 7 % 251) as u8).collect();
    rate("resize 1280x720 RGB -> 224x224", "frames", 300, || {
        std::hint::black_box(resize_linear(
            &frame,
            1280,
            720,
            1280 * 3,
            PixelLayout::RGB,
            224,
            224,
        ));
    });
    // The detector's frame: a whole factor (the shortcut) against one pixel less each
    // way (the general two-pass path), the same amount of output.
    let full_hd: Vec<u8> = (0..1920 * 1080 * 3).map(|i| (i * 7 % 251) as u8).collect();
    for (src, sw, sh, w, h, path) in [
        (&frame, 1280, 720, 640, 360, "whole factor 2"),
        (&frame, 1280, 720, 639, 359, "general path"),
        (&full_hd, 1920, 1080, 640, 360, "whole factor 3"),
        (&full_hd, 1920, 1080, 639, 359, "general path"),
    ] {
        rate(
            &format!("resize {sw}x{sh} RGB -> {w}x{h} ({path})"),
            "frames",
            300,
            || {
                std::hint::black_box(resize_linear(src, sw, sh, sw * 3, PixelLayout::RGB, w, h));
            },
        );
    }
    let audio: Vec<f32> = (0..48000)
        .map(|i| ((i as f32) * 0.05).sin() * 0.3)
        .collect();
    let mel = MelSpectrogram::new(MelConfig::torchaudio(16000, 1024, 512, 64))
        .map_err(anyhow::Error::msg)?;
    rate(
        "mel 3 s @16 kHz (64 x 94) + normalise",
        "windows",
        300,
        || {
            let mut m = mel.compute(&audio);
            m.normalize_per_clip();
            m.fit_frames(300);
            std::hint::black_box(m);
        },
    );

    let engine = Model::shared(
        std::path::Path::new(bundle),
        ModelOptions {
            device: DeviceChoice::Cpu,
            max_batch: 8,
            max_wait: Duration::from_millis(50),
            ..ModelOptions::default()
        },
    )?;
    let b = &engine.bundle;
    let v = b
        .video()
        .ok_or_else(|| anyhow::anyhow!("bundle has no video input"))?;
    let img = Arc::new(gst_emotion::media::LazyFrame::ready(resize_linear(
        &frame,
        1280,
        720,
        1280 * 3,
        PixelLayout::RGB,
        v.width,
        v.height,
    )));
    let job = WindowJob {
        span: WindowSpan {
            index: 0,
            start: 0,
            end: 3_000_000_000,
        },
        frames: Some(FrameSelection {
            frames: vec![img; v.frames],
            real: v.frames,
            distinct: 1,
            times: vec![Some(0); v.frames],
        }),
        audio: Some(WindowAudio {
            samples: audio.clone(),
            real: audio.len(),
            rate: 16000,
            live: false,
        }),
        kind: Default::default(),
        stream_span: None,
        degraded: None,
    };
    rate(
        "prepare one window (tensors for the model)",
        "windows",
        50,
        || {
            std::hint::black_box(prepare(b, &job, Some("i am so happy today")).unwrap());
        },
    );
    let _ = RgbImage::black(1, 1);

    println!(
        "\nforward pass, {} ({:?}), {iterations} iteration(s) each:",
        b.manifest.name, engine.device
    );
    let prepared = prepare(b, &job, Some("i am so happy today")).map_err(anyhow::Error::msg)?;
    for batch in [1usize, 4, 8] {
        // Warm-up at this batch size (libtorch specialises on first use).
        engine.predict_many(vec![prepared.clone(); batch]);
        let t = Instant::now();
        for _ in 0..iterations {
            for r in engine.predict_many(vec![prepared.clone(); batch]) {
                r.map_err(anyhow::Error::msg)?;
            }
        }
        let per_window = t.elapsed().as_secs_f64() / (iterations * batch) as f64;
        println!(
            "RESULT rust batch {batch}: {:.1} ms per window",
            per_window * 1e3
        );
    }
    Ok(())
}
