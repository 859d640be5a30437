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
