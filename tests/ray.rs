//! Batch analysis on a Ray cluster (deploy/ray): a head and two worker nodes on this
//! machine (loopback), 12 generated clips, one worker node killed while tasks run —
//! with the outputs in a folder, and on S3 (moto on loopback). Every input ends with
//! exactly one output set, each JSONL byte-identical to a single-process `analyze` of
//! the same files; the merged summary counts every input once; a second run finds
//! nothing to do and rewrites nothing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_gst-emotion");

/// One cluster at a time on this machine.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The clips, and the `.jsonl` outputs a single `analyze` makes of them, by name.
fn clips_and_reference(dir: &Path) -> (Vec<PathBuf>, BTreeMap<String, Vec<u8>>) {
    let clips: Vec<PathBuf> = (0..12)
        .map(|k| clip(&format!("ray-{k:02}"), ClipSpec::video_only(2, 10)))
        .collect();
    let single = dir.join("single");
    run_ok(
        Command::new(BIN)
            .arg("analyze")
            .args(&clips)
            .arg("--out")
            .arg(&single),
    );
    let outputs = std::fs::read_dir(&single)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read(&p).unwrap())
        })
        .collect::<BTreeMap<_, _>>();
    assert_eq!(outputs.len(), 12);
    (clips, outputs)
}

/// Runs deploy/ray/tests/cluster_check.py (the cluster, the run with a node killed,
/// the second run) writing to `out`; returns its report.
fn cluster_run(dir: &Path, clips: &[PathBuf], out: &str, env: &[(&str, String)]) -> Value {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let log = dir.join("cluster-stderr.txt");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ray/tests/cluster_check.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(BIN)
        .arg(out)
        .args(clips)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().map(|(k, v)| (k, v)))
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
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no report ({e}):\n{stdout}\n{stderr}"));
    eprintln!("cluster report: {report}");
    check_report(&report);
    report
}

/// What every cluster run must show, wherever its outputs went.
fn check_report(report: &Value) {
    // A node died while there was work left.
    assert_eq!(report["killed"], true, "{report}");
    assert!(
        report["done_before_kill"].as_u64().unwrap() < 12,
        "{report}"
    );
    let first = &report["first"];
    assert_eq!(
        (first["inputs"].as_u64(), first["failed"].as_u64()),
        (Some(12), Some(0)),
        "{report}"
    );
    let done = first["succeeded"].as_u64().unwrap() + first["skipped"].as_u64().unwrap();
    assert_eq!(done, 12, "{report}");
    assert_eq!(report["first_task_failures"], json!([]), "{report}");
    // The merged summary counts every input once.
    assert_eq!(
        report["first_folder"],
        json!({"inputs": 12, "failed": 0}),
        "{report}"
    );
    // The second run: everything skipped, nothing rewritten.
    assert_eq!(
        report["second"],
        json!({"inputs": 12, "succeeded": 0, "skipped": 12, "failed": 0}),
        "{report}"
    );
    // The folder: every input once and done (analysed, or found complete by a
    // retried task when the killed one had finished it but not its summary).
    assert_eq!(
        report["second_folder"],
        json!({"inputs": 12, "failed": 0}),
        "{report}"
    );
    assert_eq!(report["rewritten"], json!([]), "{report}");
}

/// Exactly one output per input, byte-identical to one process's.
fn check_outputs(expected: &BTreeMap<String, Vec<u8>>, got: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in expected {
        assert!(
            &got[name] == bytes,
            "{name} differs from the single-process output"
        );
    }
}

#[test]
fn a_ray_cluster_analyses_every_input_once_through_a_node_failure() {
    let dir = fixture_dir().join("ray");
    let _ = std::fs::remove_dir_all(&dir);
    let (clips, expected) = clips_and_reference(&dir);
    let cluster = dir.join("cluster");
    cluster_run(&dir, &clips, cluster.to_str().unwrap(), &[]);
    let mut got = BTreeMap::new();
    for e in std::fs::read_dir(&cluster).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        assert!(!name.contains(".tmp"), "temporary file left: {name}");
        if name.ends_with(".jsonl") {
            got.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    check_outputs(&expected, &got);
}

#[test]
fn a_ray_cluster_writes_to_s3() {
    let dir = fixture_dir().join("ray-s3");
    let _ = std::fs::remove_dir_all(&dir);
    let (clips, expected) = clips_and_reference(&dir);
    let moto = common::s3::Moto::start(&["results"]);
    moto.keep_versions("results");
    cluster_run(&dir, &clips, "s3://results/batch", &moto.env());
    let got: BTreeMap<String, Vec<u8>> = moto
        .objects("results")
        .into_keys()
        .filter(|k| k.ends_with(".jsonl"))
        .map(|k| {
            (
                k.trim_start_matches("batch/").to_string(),
                moto.get("results", &k),
            )
        })
        .collect();
    check_outputs(&expected, &got);
}
