//! Inference with tch (libtorch): devices, turning a window into model input tensors
//! exactly as the bundle says, and a model shared by every element of the process
//! that batches their windows together. Everything here runs on worker threads.

pub mod device;
pub mod engine;
pub mod fusion;
pub mod prepare;

pub use device::{DeviceChoice, LIBTORCH_LIB_DIR, enable_cuda, environment_report, resolve_device};
pub use engine::{Engine, EngineOptions, HeadLogits};
pub use fusion::{FaceReport, FusionDetails, FusionModel, FusionOutput};
pub use prepare::{InputTensor, Prepared, prepare};

/// libtorch errors carry a C++ backtrace after the first line; users need the first.
pub fn first_line(e: &tch::TchError) -> String {
    e.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Loads a TorchScript file on `device` in evaluation mode; the error names the file.
pub fn load_torchscript(
    path: &std::path::Path,
    device: tch::Device,
) -> Result<tch::CModule, String> {
    let mut m = tch::CModule::load_on_device(path, device).map_err(|e| {
        format!(
            "{}: cannot load TorchScript: {}",
            path.display(),
            first_line(&e)
        )
    })?;
    m.set_eval();
    Ok(m)
}
