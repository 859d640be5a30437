//! Frame resize parity: `media::resize_linear` must give OpenCV's `cv2.resize`
//! (INTER_LINEAR) bytes exactly, as the reference MELD pipeline resizes with OpenCV.
//! Runs models/check_resize.py in the project's venv against the `resize_raw` example.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn resize_is_bit_exact_with_opencv() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("GST_EMOTION_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    assert!(
        python.exists(),
        "no venv python at {}: run scripts/setup --deps-only",
        python.display()
    );
    // cargo test builds examples next to the test binaries: target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("examples/resize_raw");
    assert!(
        binary.exists(),
        "missing {}: cargo build --examples",
        binary.display()
    );
    let out = Command::new(&python)
        .arg(root.join("models/check_resize.py"))
        .arg(&binary)
        .output()
        .expect("run check_resize.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "resize differs from OpenCV:\n{text}");
    assert!(text.contains("worst difference 0"), "{text}");
}
