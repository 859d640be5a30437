//! Debug dumps (`dump-dir`, `analyze --debug`): per window, the sampled frames as PNG,
//! the model's input tensors and outputs as .npy, the text it saw and a summary.txt —
//! exactly what the model saw, for checking a bundle against its reference code.

use std::path::Path;

use gst::prelude::*;

use super::npy::write_npy;
use super::{FaceReport, FrameProbs, WindowResult};
use crate::infer::{InputTensor, Prepared};
use crate::window::WindowJob;

/// Writes `w{index:06}_frame{k:03}.png` for every sampled frame and
/// `w{index:06}_summary.txt` with the window's span and result fields.
pub fn window(dir: &Path, job: &WindowJob, result: &WindowResult) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let index = job.span.index;
    if let Some(sel) = &job.frames {
        for (k, f) in sel.images().iter().enumerate() {
            png(&dir.join(format!("w{index:06}_frame{k:03}.png")), f)?;
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
        tensor(&dir.join(format!("w{index:06}_{name}.npy")), t)?;
    }
    if let Some(faces) = p.faces.as_ref().filter(|f| !f.is_empty()) {
        // `[faces]` bundles: the crops fed, as PNGs and as the input tensor with a
        // leading face dimension.
        for (f, face) in faces.iter().enumerate() {
            for (k, c) in face.crops.iter().enumerate() {
                png(&dir.join(format!("w{index:06}_face{f}_crop{k:03}.png")), c)?;
            }
        }
        let tensors: Vec<&InputTensor> = faces.iter().map(|f| &f.tensor).collect();
        let stacked = InputTensor::stack(&tensors).map_err(std::io::Error::other)?;
        tensor(&dir.join(format!("w{index:06}_faces.npy")), &stacked)?;
    }
    std::fs::write(dir.join(format!("w{index:06}_text.txt")), &p.text)
}

/// Writes `t` as .npy with its shape and element type.
fn tensor(path: &Path, t: &InputTensor) -> std::io::Result<()> {
    let dims: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
    match t {
        InputTensor::F32 { data, .. } => write_npy(path, &dims, data),
        InputTensor::I64 { data, .. } => write_npy(path, &dims, data),
        InputTensor::U8 { data, .. } => write_npy(path, &dims, data),
    }
}

/// Writes `img` as an RGB PNG.
fn png(path: &Path, img: &crate::media::RgbImage) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut enc = png::Encoder::new(
        std::io::BufWriter::new(file),
        img.width as u32,
        img.height as u32,
    );
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(&img.data))
        .map_err(std::io::Error::other)
}

/// Writes one head's outputs: `w{index:06}_{head}.logits.npy` (single models) and
/// `.probs.npy`.
pub fn head(
    dir: &Path,
    index: u64,
    head: &str,
    logits: Option<&[f32]>,
    probs: &[f64],
    frames: &[FrameProbs],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let base = dir.join(format!("w{index:06}_{head}"));
    let n = probs.len();
    if let Some(l) = logits {
        // Per-frame heads: [T, labels].
        let shape = if l.len() > n && n > 0 {
            vec![l.len() / n, n]
        } else {
            vec![l.len()]
        };
        write_npy(&base.with_extension("logits.npy"), &shape, l)?;
    }
    let probs32: Vec<f32> = probs.iter().map(|&p| p as f32).collect();
    write_npy(&base.with_extension("probs.npy"), &[n], &probs32)?;
    if !frames.is_empty() {
        let data: Vec<f32> = frames
            .iter()
            .flat_map(|f| f.probs.iter().map(|&p| p as f32))
            .collect();
        write_npy(
            &base.with_extension("frame_probs.npy"),
            &[frames.len(), n],
            &data,
        )?;
    }
    Ok(())
}

/// Writes every face's probabilities for the face head, in the order the faces were
/// fed (`w{index:06}_faces.npy`): `w{index:06}_faces_{head}.probs.npy` `[F, labels]`
/// and, for a per-frame head, `.frame_probs.npy` `[F, T, labels]`.
pub fn faces(dir: &Path, index: u64, head: &str, faces: &[FaceReport]) -> std::io::Result<()> {
    let Some(first) = faces.first() else {
        return Ok(());
    };
    let base = dir.join(format!("w{index:06}_faces_{head}"));
    let n = first.probs.len();
    let probs: Vec<f32> = faces
        .iter()
        .flat_map(|f| f.probs.iter().map(|&p| p as f32))
        .collect();
    write_npy(&base.with_extension("probs.npy"), &[faces.len(), n], &probs)?;
    let t = first.frame_probs.len();
    if t > 0 {
        let data: Vec<f32> = faces
            .iter()
            .flat_map(|f| {
                f.frame_probs
                    .iter()
                    .flat_map(|p| p.probs.iter().map(|&v| v as f32))
            })
            .collect();
        write_npy(
            &base.with_extension("frame_probs.npy"),
            &[faces.len(), t, n],
            &data,
        )?;
    }
    Ok(())
}
