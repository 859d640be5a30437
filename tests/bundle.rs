//! `gst-emotion bundle pack` and `check`: the default bundle packed as the archive
//! SageMaker unpacks into /opt/ml/model, unpacked, checked, served from
//! SM_MODEL_DIR; a corrupt or truncated file is an error naming it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn unpack(archive: &Path, dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let status = Command::new("tar")
        .arg("xzf")
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_packed_bundle_is_checked_served_and_guarded() {
    let bundle = default_bundle();
    let archive = fixture_dir().join("model.tar.gz");
    let (code, out) = cli(&[
        "bundle",
        "pack",
        bundle.to_str().unwrap(),
        archive.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let packed_digest = out
        .lines()
        .find_map(|l| l.split("content digest ").nth(1))
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    // The bundle at the archive root, every file with its checksum.
    let dir = fixture_dir().join("opt-ml-model");
    unpack(&archive, &dir);
    assert!(dir.join("bundle.toml").is_file());
    let manifest = std::fs::read_to_string(dir.join("bundle.toml")).unwrap();
    assert!(manifest.contains("[sha256]") && manifest.contains("\"text_encoder.ts\" = "));
    let (code, out) = cli(&["bundle", "check", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("head emotion: anger, disgust"), "{out}");
    assert!(
        out.contains(&format!("content digest: {packed_digest}")),
        "{out}"
    );
    // Served from SM_MODEL_DIR, as the platform would.
    let mut server = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .args(["serve", "--bind", "127.0.0.1:0", "--state-dir"])
        .arg(fixture_dir().join("sm-state"))
        .env("SM_MODEL_DIR", &dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let end = Instant::now() + Duration::from_secs(60);
    let mut loaded = String::new();
    while Instant::now() < end && !loaded.contains("ready") {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            loaded = line;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(loaded.contains(&dir.display().to_string()), "{loaded}");
    // A damaged or partly copied file is named.
    let model = dir.join("face_emotion.ts");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&model, &bytes).unwrap();
    let (code, out) = cli(&["bundle", "check", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("face_emotion.ts") && out.contains("corrupt"),
        "{out}"
    );
    unpack(&archive, &dir);
    let encoder = dir.join("text_encoder.ts");
    let len = std::fs::metadata(&encoder).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&encoder)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (code, out) = cli(&["bundle", "check", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("text_encoder.ts"), "{out}");
    // The element says the same.
    init();
    let e = gst::ElementFactory::make("emotionsense")
        .property("bundle", dir.to_str().unwrap())
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    e.set_bus(Some(&bus));
    assert!(e.set_state(gst::State::Ready).is_err());
    let msg = bus.pop_filtered(&[gst::MessageType::Error]).unwrap();
    let gst::MessageView::Error(err) = msg.view() else {
        unreachable!()
    };
    assert!(
        err.error().to_string().contains("text_encoder.ts"),
        "{}",
        err.error()
    );
    let _ = e.set_state(gst::State::Null);
}
