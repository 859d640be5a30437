//! Frame tensors as bundles declare them (issue 13, item 2): `layout = "THWC"` with
//! `dtype = "uint8"` (raw pixels, channels last, as the light robot CNN+LSTM takes) and
//! `TCHW` float32 with per-channel mean/std, checked through a TorchScript model made
//! here that answers with what it received: the mean of each channel of its input (and
//! a sentinel when the dtype is wrong). The frames are a solid colour, so the answer is
//! known exactly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A bundle whose model returns, per sample, the mean of each of the 3 channels of
/// its frames (divided by `div`) — the channel axis being `channel_axis` of the
/// per-sample tensor — or -100s when the frames' dtype is not `dtype`.
fn bundle(name: &str, layout: &str, dtype: &str, video_extra: &str, channel_axis: i64) -> PathBuf {
    let dir = fixture_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        r#"
import torch
class Probe(torch.nn.Module):
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dtype != torch.{dtype}:
            return torch.full((frames.shape[0], 3), -100.0)
        x = frames.float().movedim({channel_axis} + 1, 1).flatten(2)
        return x.mean(dim=2) / 16.0
torch.jit.script(Probe()).save(r"{dir}/probe.ts")
"#,
        dir = dir.display()
    );
    // TorchScript reads the class's source: it must be in a file.
    let file = dir.join("make_probe.py");
    std::fs::write(&file, script).unwrap();
    run_ok(Command::new(python()).arg(&file));
    std::fs::write(
        dir.join("bundle.toml"),
        format!(
            r#"format = 1
name = "{name}"

[[models]]
name = "probe"
file = "probe.ts"
forward = ["frames"]

[inputs.frames]
kind = "video"
frames = 4
policy = "uniform"
width = 16
height = 8
channel_order = "rgb"
layout = "{layout}"
dtype = "{dtype_name}"
{video_extra}

[[heads]]
name = "colour"
labels = ["red", "green", "blue"]
model = "probe"
"#,
            dtype_name = if dtype == "uint8" { "uint8" } else { "float32" },
        ),
    )
    .unwrap();
    dir
}

/// The `colour` probabilities of the first window of a solid-colour video
/// (R, G, B = 16, 32, 48) through `bundle`.
fn colour_probs(bundle: &Path) -> Vec<f64> {
    init();
    let desc = format!(
        "videotestsrc pattern=solid-color foreground-color=0xff102030 num-buffers=30 \
         ! video/x-raw,format=RGB,width=64,height=32,framerate=30/1 \
         ! emotionsense bundle={} window-mode=sliding window-length=1 asr=false ! fakesink",
        bundle.display()
    );
    let p = gst::parse::launch(&desc).unwrap();
    let mut windows = Vec::new();
    run_to_eos(&p, Duration::from_secs(60), |m| {
        windows.extend(window_of(m))
    })
    .expect("run");
    let w = windows.first().expect("a window");
    w.head("colour").expect("colour head").probs.clone()
}

fn softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "got {got:?}, want {want:?}");
    }
}

#[test]
fn thwc_uint8_frames_are_raw_pixels_channels_last() {
    let b = bundle("probe-thwc-u8", "THWC", "uint8", "scale = 1.0", 3);
    // Channel means 16, 32, 48 → logits 1, 2, 3.
    assert_close(&colour_probs(&b), &softmax(&[1.0, 2.0, 3.0]));
}

#[test]
fn tchw_float_frames_are_scaled_and_normalised_per_channel() {
    let b = bundle(
        "probe-tchw-f32",
        "TCHW",
        "float32",
        "scale = 1.0\nmean = [0.0, 16.0, 16.0]\nstd = [1.0, 1.0, 2.0]",
        1,
    );
    // (16 - 0) / 1, (32 - 16) / 1, (48 - 16) / 2 = 16, 16, 16 → logits 1, 1, 1.
    assert_close(&colour_probs(&b), &softmax(&[1.0, 1.0, 1.0]));
}

#[test]
fn uint8_with_normalisation_is_refused_naming_the_field() {
    init();
    let b = bundle("probe-bad-u8", "THWC", "uint8", "scale = 0.5", 3);
    let err = gst_emotion::bundle::Bundle::load(&b)
        .unwrap_err()
        .to_string();
    assert!(err.contains("inputs.frames.dtype"), "{err}");
}
