//! Compute devices: which libtorch device a `device` setting means, CUDA enabling,
//! and a report of the compute environment.
//!
//! CUDA: rustc links with `--as-needed`, which drops `libtorch_cuda.so`, so libtorch
//! would never find a GPU. [`enable_cuda`] loads it explicitly, before anything asks
//! libtorch about devices (libtorch caches a "no CUDA" answer at first use), from the
//! folder of the libtorch this process actually runs — `LD_LIBRARY_PATH` may point at
//! another machine's libtorch than the one the build linked (docs/building.md).

use std::path::PathBuf;
use std::sync::OnceLock;

/// Directory of the libtorch shared libraries this build links (and has an rpath to).
pub const LIBTORCH_LIB_DIR: &str = env!("GST_EMOTION_LIBTORCH_LIB");

/// The folder of the `libtorch_cpu.so` mapped into this process (from
/// `/proc/self/maps`), if any.
pub fn loaded_libtorch_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .and_then(|path| std::path::Path::new(path).parent().map(PathBuf::from))
}

/// Loads `libtorch_cuda.so` so CUDA devices become visible to tch: the one beside the
/// libtorch in use, else the build's. Returns whether it loaded; without it (CPU-only
/// libtorch, no driver) everything runs on the CPU. Safe to call many times; only the
/// first call does work.
pub fn enable_cuda() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| {
        let mut dirs = loaded_libtorch_dir()
            .into_iter()
            .chain(std::iter::once(PathBuf::from(LIBTORCH_LIB_DIR)));
        dirs.any(|mut dir| {
            dir.push("libtorch_cuda.so");
            let Ok(path) = std::ffi::CString::new(dir.into_os_string().into_encoded_bytes()) else {
                return false;
            };
            // SAFETY: a NUL-terminated path; dlopen has no other preconditions.
            let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            !handle.is_null()
        })
    })
}

/// For a process running `streams` live streams: with more than one, libtorch runs
/// each operation on one CPU thread, unless `OMP_NUM_THREADS` chooses. Its default
/// (a thread per core) splits every small operation of the face and text networks
/// across the cores, and those threads wait on each other while Whisper and the other
/// streams' decoding hold the cores. Measured with 4 cameras on 2 cores: result lag
/// max 0.38–0.43 s against 0.39–0.55 s, mean 0.25 against 0.28 s (docs/benchmarks.md).
/// Call before the first model runs (`watch` with several sources does). Returns the
/// thread count it set.
pub fn share_cores_between_streams(streams: usize) -> Option<i32> {
    if streams < 2 || std::env::var_os("OMP_NUM_THREADS").is_some() {
        return None;
    }
    tch::set_num_threads(1);
    Some(1)
}

/// A human-readable description of the compute environment: libtorch, CUDA, threads,
/// whisper.cpp's CPU features.
pub fn environment_report() -> String {
    let cuda_lib = enable_cuda();
    let cuda = tch::Cuda::is_available();
    let devices = if cuda { tch::Cuda::device_count() } else { 0 };
    let running = loaded_libtorch_dir().map_or_else(
        || "(not mapped yet)".to_string(),
        |d| d.display().to_string(),
    );
    format!(
        "libtorch: {running} (built against {LIBTORCH_LIB_DIR})\n\
         libtorch_cuda.so loaded: {cuda_lib}\n\
         CUDA available: {cuda} ({devices} device(s))\n\
         torch threads: {}\n\
         whisper.cpp: {}\n",
        tch::get_num_threads(),
        whisper_rs::print_system_info().trim(),
    )
}

/// A device setting: `auto`, `cpu`, `cuda` or `cuda:N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DeviceChoice {
    /// CUDA device 0 when available, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "auto" | "" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("{other:?} is not a device: use auto, cpu, cuda or cuda:N")),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The number format a single-model bundle's forward pass runs in: `fp32` (as
/// exported; the default, and what parity with the reference is measured on), `bf16`
/// or `fp16` (weights and float inputs converted at load; outputs read back as fp32).
/// Half precision is for GPUs: the CPU runs it, but slower than fp32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// 32-bit floats, as the bundle was exported.
    #[default]
    Fp32,
    /// bfloat16: fp32's range with 8 bits of mantissa.
    Bf16,
    /// IEEE half: 11 bits of mantissa, a narrower range.
    Fp16,
}

impl Precision {
    /// The libtorch kind float tensors are converted to.
    pub fn kind(self) -> tch::Kind {
        match self {
            Self::Fp32 => tch::Kind::Float,
            Self::Bf16 => tch::Kind::BFloat16,
            Self::Fp16 => tch::Kind::Half,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "fp32" | "float32" | "" => Ok(Self::Fp32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            "fp16" | "float16" | "half" => Ok(Self::Fp16),
            other => Err(format!(
                "{other:?} is not a precision: use fp32, bf16 or fp16"
            )),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
            Self::Fp16 => "fp16",
        })
    }
}

/// The libtorch device for `choice`, and a note when CUDA was asked for but is not
/// usable (the CPU is used instead).
pub fn resolve_device(choice: DeviceChoice) -> (tch::Device, Option<String>) {
    let cuda = enable_cuda() && tch::Cuda::is_available();
    let count = if cuda {
        tch::Cuda::device_count() as usize
    } else {
        0
    };
    match choice {
        DeviceChoice::Cpu => (tch::Device::Cpu, None),
        DeviceChoice::Auto if count > 0 => (tch::Device::Cuda(0), None),
        DeviceChoice::Auto => (tch::Device::Cpu, None),
        DeviceChoice::Cuda(n) if n < count => (tch::Device::Cuda(n), None),
        DeviceChoice::Cuda(n) => (
            tch::Device::Cpu,
            Some(format!(
                "cuda:{n} is not available ({count} CUDA device(s)): using the CPU"
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_settings() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:2".parse(), Ok(DeviceChoice::Cuda(2)));
        assert_eq!("bf16".parse(), Ok(Precision::Bf16));
        assert_eq!("half".parse(), Ok(Precision::Fp16));
        assert_eq!("".parse(), Ok(Precision::Fp32));
        assert!(
            "int8"
                .parse::<Precision>()
                .unwrap_err()
                .contains("fp32, bf16 or fp16")
        );
        assert!(
            "gpu"
                .parse::<DeviceChoice>()
                .unwrap_err()
                .contains("cuda:N")
        );
        assert_eq!(DeviceChoice::Cuda(1).to_string(), "cuda:1");
    }

    #[test]
    fn the_libtorch_in_use_is_found_in_the_process() {
        // Make libtorch run (and so be mapped), then find its folder.
        let _ = tch::Tensor::from_slice(&[1.0f32]).sum(tch::Kind::Float);
        let dir = loaded_libtorch_dir().expect("libtorch_cpu.so is mapped");
        assert!(dir.join("libtorch_cpu.so").is_file(), "{}", dir.display());
        // Here it is the one the build linked (same file, maybe another path to it).
        assert_eq!(
            dir.canonicalize().unwrap(),
            std::path::Path::new(LIBTORCH_LIB_DIR)
                .canonicalize()
                .unwrap()
        );
    }

    #[test]
    fn missing_cuda_falls_back_to_cpu() {
        // No machine here has a GPU; on one with a GPU this still holds for cuda:99.
        let (device, note) = resolve_device(DeviceChoice::Cuda(99));
        assert_eq!(device, tch::Device::Cpu);
        assert!(note.unwrap().contains("using the CPU"));
    }
}
