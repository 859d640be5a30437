//! `gst-emotion watch` on an RTSP camera served in this process on 127.0.0.1 (H.264 +
//! AAC, live): a normal run, then the server stops mid-stream and comes back; the
//! watcher reports the loss, reconnects with backoff and resumes; Ctrl-C (SIGINT)
//! ends it cleanly; the password in the URL never appears in its output.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gst::glib;
use gst_rtsp_server::prelude::*;

/// An RTSP server running its own main loop on a thread.
struct Server {
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(port: u16) -> Server {
        common::init();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let ctx = glib::MainContext::new();
            let _guard = ctx.acquire().expect("own the context");
            ctx.with_thread_default(|| serve(&ctx, port, &tx))
                .expect("thread-default context");
        });
        Server {
            main_loop: rx.recv().unwrap(),
            thread: Some(thread),
        }
    }
}

/// The server: one H.264 + AAC live mount at /cam, until the main loop quits.
fn serve(ctx: &glib::MainContext, port: u16, tx: &mpsc::Sender<glib::MainLoop>) {
    let main_loop = glib::MainLoop::new(Some(ctx), false);
    let server = gst_rtsp_server::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    let factory = gst_rtsp_server::RTSPMediaFactory::new();
    factory.set_launch(
                "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 \
                 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! rtph264pay name=pay0 pt=96 \
                 audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! audio/x-raw,rate=48000,channels=1 \
                 ! avenc_aac ! rtpmp4gpay name=pay1 pt=97 )",
            );
    factory.set_shared(true);
    server
        .mount_points()
        .expect("mount points")
        .add_factory("/cam", factory);
    let source = server.attach(Some(ctx)).expect("attach the RTSP server");
    tx.send(main_loop.clone()).unwrap();
    main_loop.run();
    // Stop: no new connections, drop every client and its media.
    // (SourceId::remove only looks in the default context.)
    if let Some(src) = ctx.find_source_by_id(&source) {
        src.destroy();
    }
    server.client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
    while ctx.iteration(false) {}
}

impl Server {
    fn stop(mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn wait_for(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
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
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        stderr().matches("reconnecting").count() >= 2,
        "expected repeated attempts while the server is down:\n{}",
        stderr()
    );

    // It comes back: analysis resumes.
    let server = Server::start(port);
    wait_for("analysis to resume", Duration::from_secs(60), || {
        stderr().contains("reconnected: analysis resumed") && lines(&jsonl) >= before + 2
    });

    // Ctrl-C: EOS, clean exit.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "watch did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
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
