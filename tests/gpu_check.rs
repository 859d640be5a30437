//! `scripts/gpu-check`'s dry run (issue 26): the GPU machine's one command, packed and
//! run here on the CPU with `--quick`, with only the GStreamer it carries. The GPU
//! machine is lent now and then for minutes; this is what keeps its script working
//! between those days.

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn the_gpu_check_runs_every_section_from_its_carry() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .parent()
        .unwrap()
        .to_path_buf();
    for example in ["bench_forward", "bench_live"] {
        assert!(
            bin_dir.join("examples").join(example).is_file(),
            "{example} is not built: cargo build --all-targets"
        );
    }
    let out = std::env::temp_dir().join(format!("gst-emotion-gpu-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(root.join("scripts/gpu-check"))
        .args(["--device", "cpu", "--quick", "--bin-dir"])
        .arg(&bin_dir)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("scripts/gpu-check runs");
    let report = std::fs::read_to_string(out.join("gpu-check.md")).unwrap_or_default();
    assert!(status.success(), "gpu-check failed:\n{report}");
    assert!(!report.contains("FAILED"), "{report}");
    for needle in [
        "## 1. gst-emotion info",
        "CUDA available: false",
        "## 2. MELD forward",
        "| fp32 | ",
        "| bf16 | ",
        "## 3. Batch analysis",
        "gst-emotion analyze --device cpu",
        "seed flow",
        "## 4. Live capacity",
        "| default | 1 | ",
        "## 5. Face-sequence forward",
        "face-sequence-light",
        "face-sequence-large",
    ] {
        assert!(
            report.contains(needle),
            "the report lacks {needle:?}:\n{report}"
        );
    }
    // Parity on the CPU against itself: every window's labels the same, no difference.
    let fp32 = report.lines().find(|l| l.starts_with("| fp32 | ")).unwrap();
    let cells: Vec<&str> = fp32.split('|').map(str::trim).collect();
    let same = cells[cells.len() - 3];
    let (agree, windows) = same.split_once('/').unwrap();
    assert_eq!(agree, windows, "{fp32}");
    assert!(windows.parse::<usize>().unwrap() >= 2, "{fp32}");
    assert_eq!(
        cells[cells.len() - 4].parse::<f64>().unwrap(),
        0.0,
        "{fp32}"
    );
    // The live run analysed windows (whether in real time depends on the build and
    // the machine: a debug build is not).
    let live = report
        .lines()
        .find(|l| l.starts_with("| default | 1 | "))
        .unwrap();
    let cells: Vec<&str> = live.split('|').map(str::trim).collect();
    assert!(cells[3].parse::<u32>().unwrap() > 0, "{live}");
    assert!(cells[4].parse::<u32>().is_ok(), "{live}");
    let _ = std::fs::remove_dir_all(&out);
}
