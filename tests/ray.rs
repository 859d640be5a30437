//! Batch analysis on a Ray cluster (deploy/ray): a head and two worker nodes on this
//! machine (loopback), 12 generated clips, one worker node killed while tasks run.
//! Every input ends with exactly one output set, each JSONL byte-identical to a
//! single-process `analyze` of the same files; the merged summary counts every input
//! once; a second run finds nothing to do and rewrites nothing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_gst-emotion");

/// The `.jsonl` outputs of a run folder, by file name.
fn jsonl_outputs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn a_ray_cluster_analyses_every_input_once_through_a_node_failure() {
    let clips: Vec<PathBuf> = (0..12)
        .map(|k| clip(&format!("ray-{k:02}"), ClipSpec::video_only(2, 10)))
        .collect();
    let dir = fixture_dir().join("ray");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (single, cluster) = (dir.join("single"), dir.join("cluster"));
    run_ok(
        Command::new(BIN)
            .arg("analyze")
            .args(&clips)
            .arg("--out")
            .arg(&single),
    );
    let log = dir.join("cluster-stderr.txt");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ray/tests/cluster_check.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(BIN)
        .arg(&cluster)
        .args(&clips)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(900);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the cluster run took over 900 s:\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status:?}\n{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no report ({e}):\n{stdout}\n{stderr}"));
    eprintln!("cluster report: {report}");
    // A node died while there was work left.
    assert_eq!(report["killed"], true, "{report}");
    assert!(
        report["done_before_kill"].as_u64().unwrap() < 12,
        "{report}"
    );
    assert_eq!(
        report["first"],
        serde_json::json!({"inputs": 12, "succeeded": report["first"]["succeeded"],
            "skipped": report["first"]["skipped"], "failed": 0}),
        "{report}"
    );
    let first = &report["first"];
    assert_eq!(
        first["succeeded"].as_u64().unwrap() + first["skipped"].as_u64().unwrap(),
        12,
        "{report}"
    );
    assert_eq!(
        report["first_task_failures"],
        serde_json::json!([]),
        "{report}"
    );
    // Exactly one output per input, byte-identical to one process's.
    let (expected, got) = (jsonl_outputs(&single), jsonl_outputs(&cluster));
    assert_eq!(expected.len(), 12);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &expected {
        assert!(
            &got[name] == bytes,
            "{name} differs from the single-process output"
        );
    }
    assert!(
        std::fs::read_dir(&cluster)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().contains(".tmp")),
        "temporary files left"
    );
    // The second run: everything skipped, nothing rewritten.
    assert_eq!(
        report["second"],
        serde_json::json!({"inputs": 12, "succeeded": 0, "skipped": 12, "failed": 0}),
        "{report}"
    );
    // The folder: every input once and done (analysed, or found complete by a
    // retried task when the killed one had finished it but not its summary).
    assert_eq!(report["second_folder"]["inputs"], 12, "{report}");
    assert_eq!(report["second_folder"]["failed"], 0, "{report}");
    assert_eq!(report["rewritten"], serde_json::json!([]), "{report}");
}
