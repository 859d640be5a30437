//! Inference with tch (libtorch): device choice and the compute environment.
//!
//! CUDA: rustc links with `--as-needed`, which drops `libtorch_cuda.so`, so libtorch
//! would never find a GPU. [`enable_cuda`] loads it explicitly, before anything asks
//! libtorch about devices (libtorch caches a "no CUDA" answer at first use).

use std::sync::OnceLock;

/// Directory of the libtorch shared libraries this build links (and has an rpath to).
pub const LIBTORCH_LIB_DIR: &str = env!("GST_EMOTION_LIBTORCH_LIB");

/// Loads `libtorch_cuda.so` so CUDA devices become visible to tch. Returns whether it
/// loaded; without it (CPU-only libtorch, no driver) everything runs on the CPU. Safe
/// to call many times; only the first call does work.
pub fn enable_cuda() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| {
        let path = format!("{LIBTORCH_LIB_DIR}/libtorch_cuda.so\0");
        // SAFETY: the path is NUL-terminated; dlopen has no other preconditions.
        let handle =
            unsafe { libc::dlopen(path.as_ptr().cast(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        !handle.is_null()
    })
}

/// A human-readable description of the compute environment: libtorch, CUDA, threads,
/// whisper.cpp's CPU features.
pub fn environment_report() -> String {
    let cuda_lib = enable_cuda();
    let cuda = tch::Cuda::is_available();
    let devices = if cuda { tch::Cuda::device_count() } else { 0 };
    format!(
        "libtorch: {LIBTORCH_LIB_DIR}\n\
         libtorch_cuda.so loaded: {cuda_lib}\n\
         CUDA available: {cuda} ({devices} device(s))\n\
         torch threads: {}\n\
         whisper.cpp: {}\n",
        tch::get_num_threads(),
        whisper_rs::print_system_info().trim(),
    )
}
