//! Inference with tch (libtorch): devices, turning a window into model input tensors
//! exactly as the bundle says (`prepare`), and the [`Model`] shared by every user of
//! the process that batches their windows together. A bundle is either one
//! TorchScript model (`torchscript`) or a late fusion of pretrained parts (`fusion`);
//! a new model kind is a new backend in `model.rs`. Everything here runs on worker
//! threads, never on GStreamer streaming threads.

pub mod device;
pub mod fusion;
pub mod model;
pub mod outputs;
pub mod prepare;
pub mod torchscript;

pub use device::{
    DeviceChoice, LIBTORCH_LIB_DIR, Precision, enable_cuda, environment_report, resolve_device,
    share_cores_between_streams,
};
pub use fusion::FusionModel;
pub use model::{Model, ModelOptions, ModelOutput};
pub use prepare::{InputTensor, Prepared, PreparedFace, prepare};
pub use torchscript::HeadLogits;

/// Why a model could not be loaded or run. Each variant carries the message users
/// see (it names the file, model or field at fault).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A TorchScript file would not load.
    #[error("{path}: cannot load TorchScript: {reason}")]
    Load {
        /// The file.
        path: String,
        /// libtorch's reason (its first line).
        reason: String,
    },
    /// The bundle does not hold what the model needs (a named model, a video input, a
    /// classifier of the right size).
    #[error("{0}")]
    Bundle(String),
    /// A window's inputs could not be made into the tensors the manifest describes.
    #[error("{0}")]
    Input(String),
    /// A network failed, or answered in a shape other than the one expected.
    #[error("{0}")]
    Run(String),
    /// The work never ran: the thread that should have done it stopped.
    #[error("{0}")]
    NotRun(String),
    /// The work was for a guess withdrawn before it ran.
    #[error("withdrawn")]
    Withdrawn,
}

/// A libtorch failure while running `what`: `what: first line`.
pub fn run_error(what: &str, e: &tch::TchError) -> ModelError {
    ModelError::Run(format!("{what}: {}", first_line(e)))
}

/// Time spent in forward passes by every model of the process (ns), for benchmarks.
pub static FORWARD_NANOS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Batches the inference threads of this process have answered (process-wide, for
/// benchmarks: batch sizes above 1 show windows of several streams sharing a pass).
pub static BATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Windows in those batches.
pub static BATCHED_WINDOWS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The largest of those batches.
pub static LARGEST_BATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// libtorch errors carry a C++ backtrace after the first line; users need the first.
pub fn first_line(e: &tch::TchError) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    // A TorchScript interpreter failure says so first; the cause is its last
    // `RuntimeError:` line (e.g. a channel count that does not match).
    if first.contains("failed in the TorchScript interpreter")
        && let Some(cause) = text
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with("RuntimeError:"))
    {
        return cause.to_string();
    }
    first.to_string()
}

/// Loads a TorchScript file on `device` in evaluation mode; the error names the file.
pub fn load_torchscript(
    path: &std::path::Path,
    device: tch::Device,
) -> Result<tch::CModule, ModelError> {
    let mut m = tch::CModule::load_on_device(path, device).map_err(|e| ModelError::Load {
        path: path.display().to_string(),
        reason: first_line(&e),
    })?;
    m.set_eval();
    Ok(m)
}
