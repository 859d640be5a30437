//! Debug dumps (`dump-dir`, `analyze --debug`): per window, the sampled frames as PNG,
//! the model's input tensors and outputs as .npy, the text it saw and a summary.txt —
//! exactly what the model saw, for checking a bundle against its reference code.

use std::path::Path;

use gst::prelude::*;

use super::WindowResult;
use super::npy::write_npy;
use crate::infer::{InputTensor, Prepared};
use crate::window::WindowJob;

/// Writes `w{index:06}_frame{k:03}.png` for every sampled frame and
/// `w{index:06}_summary.txt` with the window's span and result fields.
pub fn window(dir: &Path, job: &WindowJob, result: &WindowResult) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let index = job.span.index;
    if let Some(sel) = &job.frames {
        for (k, f) in sel.frames.iter().enumerate() {
            let file = std::fs::File::create(dir.join(format!("w{index:06}_frame{k:03}.png")))?;
            let mut enc = png::Encoder::new(
                std::io::BufWriter::new(file),
                f.width as u32,
                f.height as u32,
            );
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.write_header()
                .and_then(|mut w| w.write_image_data(&f.data))
                .map_err(std::io::Error::other)?;
        }
    }
    let mut text = format!(
        "window {index}: {:.3} s - {:.3} s\n",
        job.span.start as f64 / 1e9,
        job.span.end as f64 / 1e9
    );
    let s = result.to_structure();
    for (name, value) in s.iter() {
        let v = value
            .serialize()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| format!("{value:?}"));
        text.push_str(&format!("{name}: {v}\n"));
    }
    std::fs::write(dir.join(format!("w{index:06}_summary.txt")), text)
}

/// Writes every input tensor as `w{index:06}_{input}.npy` and the text as
/// `w{index:06}_text.txt`.
pub fn inputs(dir: &Path, index: u64, p: &Prepared) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, t) in &p.inputs {
        let path = dir.join(format!("w{index:06}_{name}.npy"));
        let dims = |s: &[i64]| s.iter().map(|&d| d as usize).collect::<Vec<_>>();
        match t {
            InputTensor::F32 { shape, data } => write_npy(&path, &dims(shape), data)?,
            InputTensor::I64 { shape, data } => write_npy(&path, &dims(shape), data)?,
            InputTensor::U8 { shape, data } => write_npy(&path, &dims(shape), data)?,
        }
    }
    std::fs::write(dir.join(format!("w{index:06}_text.txt")), &p.text)
}

/// Writes one head's outputs: `w{index:06}_{head}.logits.npy` (single models) and
/// `.probs.npy`.
pub fn head(
    dir: &Path,
    index: u64,
    head: &str,
    logits: Option<&[f32]>,
    probs: &[f64],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let base = dir.join(format!("w{index:06}_{head}"));
    let n = probs.len();
    if let Some(l) = logits {
        write_npy(&base.with_extension("logits.npy"), &[l.len()], l)?;
    }
    let probs32: Vec<f32> = probs.iter().map(|&p| p as f32).collect();
    write_npy(&base.with_extension("probs.npy"), &[n], &probs32)
}
