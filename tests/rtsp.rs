//! `gst-emotion watch` on an RTSP camera served in this process on 127.0.0.1 (H.264 +
//! AAC, live): a normal run, then the server stops mid-stream and comes back; the
//! watcher reports the loss, reconnects with backoff and resumes; Ctrl-C (SIGINT)
//! ends it cleanly; the password in the URL never appears in its output.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::rtsp::Server;
use common::{free_port, wait_for};

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Ctrl-C (SIGINT) to `watch`; its exit status, within 20 s.
fn interrupt(child: &mut std::process::Child) -> std::process::ExitStatus {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < end, "watch did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn watch_reconnects_when_the_server_comes_back() {
    let port = free_port();
    let dir = common::fixture_dir().join("rtsp");
    std::fs::create_dir_all(&dir).unwrap();
    let jsonl = dir.join("windows.jsonl");
    let log = dir.join("stderr.txt");
    let _ = std::fs::remove_file(&jsonl);
    let server = Server::start(port);
    let url = format!("rtsp://viewer:hunter2@127.0.0.1:{port}/cam");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .args(["watch", &url, "--bundle", "none", "--jsonl"])
        .arg(&jsonl)
        .args([
            "--backoff-min",
            "0.5",
            "--backoff-max",
            "2",
            "--set",
            "window-length=1",
            "--set",
            "window-hop=1",
            "--set",
            "asr=false",
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();

    // Normal run: windows with both video and audio arrive.
    wait_for(
        "3 windows with video and audio",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(&jsonl)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|r| r["frames"].as_u64() > Some(0) && r["audio_samples"].as_u64() > Some(0))
                .count()
                >= 3
        },
    );

    // The server disappears: reported, reconnection attempts with backoff.
    server.stop();
    let before = lines(&jsonl);
    wait_for("the loss to be reported", Duration::from_secs(30), || {
        let e = stderr();
        e.contains("stream lost") && e.contains("reconnecting")
    });
    wait_for(
        "repeated attempts while the server is down",
        Duration::from_secs(30),
        || stderr().matches("reconnecting").count() >= 2,
    );

    // It comes back: analysis resumes.
    let server = Server::start(port);
    wait_for("analysis to resume", Duration::from_secs(60), || {
        stderr().contains("reconnected: analysis resumed") && lines(&jsonl) >= before + 2
    });

    // Ctrl-C: EOS, clean exit.
    let status = interrupt(&mut child);
    server.stop();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let err = stderr();
    assert!(status.success(), "exit {status:?}\n{err}");
    assert!(err.contains("stopping: sending end-of-stream"), "{err}");
    assert!(
        !out.contains("hunter2") && !err.contains("hunter2"),
        "password leaked:\n{err}"
    );
    assert!(err.contains("rtsp://***@127.0.0.1"), "{err}");
    assert!(out.lines().count() >= 5, "{out}");
}

/// JSONL records per source.
fn per_source(path: &Path, source: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["source"] == source)
        .count()
}

#[test]
fn several_cameras_in_one_process_reconnect_on_their_own() {
    let (pa, pb) = (free_port(), free_port());
    let dir = common::fixture_dir().join("rtsp-multi");
    std::fs::create_dir_all(&dir).unwrap();
    let jsonl = dir.join("windows.jsonl");
    let log = dir.join("stderr.txt");
    let _ = std::fs::remove_file(&jsonl);
    let a = Server::start(pa);
    let b = Server::start(pb);
    let (url_a, url_b) = (
        format!("rtsp://127.0.0.1:{pa}/cam"),
        format!("rtsp://127.0.0.1:{pb}/cam"),
    );
    // One on the command line, one from a --sources file.
    let list = dir.join("sources.txt");
    std::fs::write(&list, format!("# cameras\n{url_b}\n")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .args(["watch", &url_a, "--sources"])
        .arg(&list)
        .args(["--bundle", "none", "--jsonl"])
        .arg(&jsonl)
        .args(["--backoff-min", "0.5", "--backoff-max", "1"])
        .args([
            "--set",
            "window-length=1",
            "--set",
            "window-hop=1",
            "--set",
            "asr=false",
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("windows from both cameras", Duration::from_secs(60), || {
        per_source(&jsonl, &url_a) >= 2 && per_source(&jsonl, &url_b) >= 2
    });
    // Camera A goes away: only A reports the loss; B carries on.
    a.stop();
    wait_for("A's loss", Duration::from_secs(30), || {
        stderr().contains(&format!("[{url_a}] stream lost"))
    });
    let b_before = per_source(&jsonl, &url_b);
    wait_for("B to carry on", Duration::from_secs(30), || {
        per_source(&jsonl, &url_b) >= b_before + 3
    });
    assert!(
        !stderr().contains(&format!("[{url_b}] stream lost")),
        "{}",
        stderr()
    );
    // A comes back on its own.
    let a = Server::start(pa);
    let a_before = per_source(&jsonl, &url_a);
    wait_for("A to resume", Duration::from_secs(60), || {
        stderr().contains(&format!("[{url_a}] reconnected: analysis resumed"))
            && per_source(&jsonl, &url_a) >= a_before + 2
    });
    let status = interrupt(&mut child);
    a.stop();
    b.stop();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let err = stderr();
    assert!(status.success(), "exit {status:?}\n{err}");
    assert!(err.contains(&format!("[{url_a}] stopped:")), "{err}");
    assert!(err.contains(&format!("[{url_b}] stopped:")), "{err}");
    // Every printed line says which camera it is from.
    assert!(
        out.lines()
            .all(|l| l.starts_with(&format!("[{url_a}]")) || l.starts_with(&format!("[{url_b}]"))),
        "{out}"
    );
}

/// The server's RTSP guard (`LiveSource::Rtsp { only }`): a camera whose requests
/// would go anywhere but the checked address gets none of them, and the stream fails
/// with a reason; with the checked address it plays.
#[test]
fn rtsp_requests_go_only_to_the_checked_address() {
    use gst_emotion::pipeline::live::{LiveEnd, LiveEvent, LiveOptions, LiveSource, run_live};
    use std::sync::atomic::{AtomicU32, Ordering};
    common::init();
    let port = free_port();
    let server = Server::start(port);
    let opts = LiveOptions {
        bundle: Some(gst_emotion::bundle::BundleChoice::None),
        max_reconnects: 1,
        backoff_min: 0.1,
        backoff_max: 0.1,
        properties: vec!["window-mode=sliding".into(), "asr=false".into()],
        ..LiveOptions::default()
    };
    let location = format!("rtsp://127.0.0.1:{port}/cam");
    let run = |only: &str| {
        let windows = AtomicU32::new(0);
        let source = LiveSource::Rtsp {
            location: location.clone(),
            only: Some((only.to_string(), port)),
        };
        let end = run_live(
            &source,
            &opts,
            |e| {
                if let LiveEvent::Window(_) = e {
                    windows.fetch_add(1, Ordering::SeqCst);
                }
            },
            &|| windows.load(Ordering::SeqCst).min(1),
        )
        .unwrap();
        (end, windows.load(Ordering::SeqCst))
    };
    let (end, windows) = run("127.0.0.9");
    assert_eq!(windows, 0);
    match end {
        LiveEnd::Failed(reason) => assert!(reason.contains("elsewhere"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let (end, windows) = run("127.0.0.1");
    assert!(windows >= 1);
    assert_eq!(end, LiveEnd::Stopped);
    server.stop();
}

/// A camera whose audio track stops while its video goes on (docs/live.md, "When
/// inputs fail"): the analysis says so once and goes on with video-only windows.
#[test]
fn a_camera_whose_audio_stops_keeps_being_analysed() {
    use gst_emotion::element::InputEventKind;
    use gst_emotion::pipeline::live::{LiveEvent, LiveOptions, LiveSource, run_live};
    use gst_emotion::window::{Degraded, Input};
    use std::sync::Mutex;
    common::init();
    let port = free_port();
    let server = Server::start(port);
    let opts = LiveOptions {
        bundle: Some(gst_emotion::bundle::BundleChoice::None),
        properties: vec!["asr=false".into()],
        ..LiveOptions::default()
    };
    let source = LiveSource::Rtsp {
        location: format!("rtsp://127.0.0.1:{port}/cam-mute"),
        only: None,
    };
    let stalls = Mutex::new(Vec::new());
    let degraded = Mutex::new(Vec::new());
    let started = Instant::now();
    let end = run_live(
        &source,
        &opts,
        |e| match e {
            LiveEvent::Input(ev) => stalls.lock().unwrap().push(ev),
            LiveEvent::Window(w) => degraded.lock().unwrap().push(w.degraded),
            _ => {}
        },
        // Stop after three video-only windows, or after 40 s.
        &|| {
            let d = degraded.lock().unwrap();
            let video_only = d.iter().filter(|d| **d == Some(Degraded::NoAudio)).count();
            u32::from(video_only >= 3 || started.elapsed() > Duration::from_secs(40))
        },
    )
    .unwrap();
    server.stop();
    let stalls = stalls.into_inner().unwrap();
    let degraded = degraded.into_inner().unwrap();
    assert_eq!(end, gst_emotion::pipeline::live::LiveEnd::Stopped);
    assert!(
        degraded
            .iter()
            .filter(|d| **d == Some(Degraded::NoAudio))
            .count()
            >= 3,
        "{degraded:?}"
    );
    assert!(
        degraded.first() == Some(&None),
        "fused before the stall: {degraded:?}"
    );
    assert_eq!(stalls.len(), 1, "{stalls:?}");
    assert_eq!(
        (stalls[0].input, stalls[0].kind),
        (Input::Audio, InputEventKind::Stalled)
    );
    assert!(
        stalls[0].message.contains("continuing with video only"),
        "{stalls:?}"
    );
}
