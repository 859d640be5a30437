//! `emotionpublish` against Debian's `mosquitto` on 127.0.0.1: each window published
//! once with its source and timestamp; a broker that goes away and comes back (records
//! queue, the oldest beyond `max-queued` are dropped and counted, the connection comes
//! back); the file method's JSON array. Every broker is started here on a free port
//! and stopped at the end.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use serde_json::Value;

/// A mosquitto broker on 127.0.0.1, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
    config: PathBuf,
}

impl Broker {
    fn start(port: Option<u16>) -> Self {
        Self::start_with(port, "allow_anonymous true\n")
    }

    /// A broker whose listener has `settings` (mosquitto.conf lines) after it.
    fn start_with(port: Option<u16>, settings: &str) -> Self {
        let port = port.unwrap_or_else(free_port);
        let config = fixture_dir().join(format!("mosquitto-{port}.conf"));
        std::fs::write(&config, format!("listener {port} 127.0.0.1\n{settings}")).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (apt install mosquitto; scripts/setup does)");
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            config,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// `mosquitto_sub` on `topic`: a channel of the JSON payloads it prints.
fn subscribe(port: u16, topic: &str) -> (Child, mpsc::Receiver<Value>) {
    subscriber(&["-p", &port.to_string(), "-t", topic])
}

/// `mosquitto_sub -h 127.0.0.1 -q 1` with `args`, returned once the broker has
/// acknowledged the subscription (so nothing published after is missed): the child
/// and a channel of the JSON payloads it prints.
fn subscriber(args: &[&str]) -> (Child, mpsc::Receiver<Value>) {
    // -d: debug lines on stdout, among them "received SUBACK" (line-buffered by
    // stdbuf: mosquitto_sub flushes only its messages).
    let mut child = Command::new("stdbuf")
        .args(["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-q", "1", "-d"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let (subscribed, acknowledged) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("received SUBACK") {
                let _ = subscribed.send(());
            } else if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    acknowledged
        .recv_timeout(Duration::from_secs(10))
        .expect("the broker acknowledges the subscription within 10 s");
    (child, rx)
}

/// Test sources of `seconds` (live or not) → emotionsense (1 s windows, no model) →
/// emotionpublish `props` → fakesink.
fn pipeline(seconds: u32, live: bool, props: &str) -> gst::Element {
    init();
    gst::parse::launch(&format!(
        "videotestsrc is-live={live} num-buffers={} ! video/x-raw,width=160,height=120,framerate=30/1 ! e.video \
         audiotestsrc is-live={live} samplesperbuffer=320 num-buffers={} ! audio/x-raw,rate=16000,format=S16LE ! e.audio \
         emotionsense name=e bundle=none asr=false window-mode=sliding window-length=1 window-hop=1 frames=4 \
         ! emotionpublish name=p {props} ! fakesink",
        seconds * 30,
        seconds * 50
    ))
    .unwrap()
}

#[test]
fn each_window_is_published_once_with_its_source() {
    let broker = Broker::start(None);
    let (mut sub, rx) = subscribe(broker.port, "cams/hall");
    let p = pipeline(
        5,
        false,
        &format!(
            "method=mqtt address=127.0.0.1:{} topic=cams/hall qos=1 source-id=hall",
            broker.port
        ),
    );
    let mut windows = 0;
    run_to_eos(&p, Duration::from_secs(60), |m| {
        windows += usize::from(window_of(m).is_some())
    })
    .expect("run");
    assert_eq!(windows, 5);
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < windows && Instant::now() < end {
        if let Ok(v) = rx.recv_timeout(Duration::from_millis(200)) {
            got.push(v);
        }
    }
    // Nothing more arrives: each window once, however many frames carried it.
    std::thread::sleep(Duration::from_millis(500));
    got.extend(rx.try_iter());
    let _ = sub.kill();
    let _ = sub.wait();
    let indices: Vec<u64> = got.iter().map(|v| v["index"].as_u64().unwrap()).collect();
    assert_eq!(indices, [0, 1, 2, 3, 4], "{got:?}");
    for v in &got {
        assert_eq!(v["source"], "hall");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(v["start"].is_number() && v["stream_start"].is_number());
    }
    let published: u64 = by_name(&p, "p").property("records-published");
    assert_eq!(published, 5);
}

#[test]
fn a_broker_that_goes_away_and_comes_back() {
    let broker = Broker::start(None);
    let port = broker.port;
    let p = pipeline(
        12,
        true,
        &format!(
            "method=mqtt address=127.0.0.1:{port} topic=cams/robot max-queued=2 \
             max-reconnect-interval=1 mqtt-client-id=robot-1"
        ),
    );
    let publisher = by_name(&p, "p");
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let started = Instant::now();
    let mut broker = Some(broker);
    let mut killed = false;
    let mut sub = None;
    let (mut lost, mut reconnected, mut dropped_warning) = (false, false, false);
    let mut after_return = Vec::new();
    loop {
        let t = started.elapsed();
        assert!(t < Duration::from_secs(60), "no EOS");
        // Away from 3 s to 7 s (4 windows of 1 s; at most 2 are kept).
        if t > Duration::from_secs(3) && !killed {
            killed = true;
            broker = None;
        }
        if t > Duration::from_secs(7) && broker.is_none() {
            broker = Some(Broker::start(Some(port)));
            sub = Some(subscribe(port, "cams/robot"));
        }
        if let Some((_, rx)) = &sub {
            after_return.extend(rx.try_iter());
        }
        let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match m.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            gst::MessageView::Warning(w) => {
                let text = w.error().to_string();
                lost |= text.contains("Connection lost");
                dropped_warning |= text.contains("dropped");
            }
            gst::MessageView::Element(e) => {
                reconnected |= e
                    .structure()
                    .is_some_and(|s| s.name() == "emotionpublish-reconnected");
            }
            _ => {}
        }
    }
    p.set_state(gst::State::Null).unwrap();
    let (mut child, rx) = sub.expect("subscriber started");
    let has = |got: &[Value], index: u64| got.iter().any(|v| v["index"] == index);
    wait_for(
        "window 10 at the subscriber",
        Duration::from_secs(10),
        || {
            after_return.extend(rx.try_iter());
            has(&after_return, 10)
        },
    );
    let _ = child.kill();
    let _ = child.wait();
    let dropped: u64 = publisher.property("records-dropped");
    let published: u64 = publisher.property("records-published");
    assert!(lost, "the loss is reported");
    assert!(reconnected, "the return is reported");
    assert!(
        dropped > 0 && dropped_warning,
        "beyond max-queued records are dropped"
    );
    assert!(
        published >= 12 - dropped - 2,
        "published {published}, dropped {dropped}"
    );
    // The last windows, after the broker came back, reached the subscriber.
    let last: Vec<u64> = after_return
        .iter()
        .map(|v| v["index"].as_u64().unwrap())
        .collect();
    assert!(last.contains(&10), "after the return: {last:?}");
}

#[test]
fn file_method_writes_a_json_array() {
    let path = fixture_dir().join("published.json");
    let p = pipeline(
        3,
        false,
        &format!(
            "file-path={} file-format=json source-id=desk",
            path.display()
        ),
    );
    run_to_eos(&p, Duration::from_secs(60), |_| {}).expect("run");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let records = v.as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r["source"] == "desk"));
}

#[test]
fn an_unreachable_broker_is_a_clear_error() {
    // Nobody listens on this port; one attempt (the default) is all there is.
    let port = free_port();
    let p = pipeline(30, true, &format!("method=mqtt address=127.0.0.1:{port}"));
    let err = run_to_eos(&p, Duration::from_secs(20), |_| {}).unwrap_err();
    assert!(err.contains("cannot connect to the MQTT broker"), "{err}");
}

#[test]
fn analyze_publishes_what_it_writes() {
    let broker = Broker::start(None);
    let (mut sub, rx) = subscribe(broker.port, "batch/out");
    let clip = clip("av4", ClipSpec::av(4));
    let out = fixture_dir().join("publish-analyze");
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
            .args([
                "analyze",
                clip.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(["--bundle", "none", "--window-mode", "sliding"])
            .args([
                "--publish",
                &format!("mqtt://127.0.0.1:{}/batch/out", broker.port),
            ])
            .env("GST_REGISTRY", fixture_dir().join("registry.bin")),
    );
    // Output names carry a hash of the input: NAME.HASH.jsonl.
    let jsonl = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a JSONL output");
    let lines = std::fs::read_to_string(jsonl).unwrap();
    let written: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < written.len() && Instant::now() < end {
        if let Ok(v) = rx.recv_timeout(Duration::from_millis(200)) {
            got.push(v);
        }
    }
    let _ = sub.kill();
    let _ = sub.wait();
    assert_eq!(got.len(), written.len());
    for (g, w) in got.iter().zip(&written) {
        assert_eq!(g["index"], w["index"]);
        assert_eq!(g["start"], w["start"]);
        assert!(g["source"].as_str().unwrap().ends_with("av4.mp4"));
    }
}

#[test]
fn gst_inspect_documents_the_element() {
    let (_, listed) = inspect_documents("emotionpublish");
    // gvametapublish's names.
    for name in [
        "method",
        "address",
        "topic",
        "mqtt-client-id",
        "file-path",
        "file-format",
        "max-connect-attempts",
        "max-reconnect-interval",
    ] {
        assert!(listed.contains_key(name), "lacks {name}");
    }
}

/// Runs a shell command in `dir`, failing the test when it fails.
fn sh(dir: &std::path::Path, command: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{command}");
}

#[test]
fn tls_and_a_password_from_a_file() {
    init();
    // A CA, a certificate for 127.0.0.1 signed by it, and a password file: all made here.
    let dir = fixture_dir().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    sh(
        &dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 \
           -subj /CN=gst-emotion-test-ca \
         && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 \
         && printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext.cnf \
         && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
              -out server.pem -days 1 -extfile ext.cnf \
         && touch passwd && chmod 600 passwd && mosquitto_passwd -b passwd robot s3cret-pw \
         && printf 's3cret-pw\\n' > password.txt && printf 'wrong\\n' > wrong.txt \
         && chmod 644 server.key passwd",
    );
    let d = dir.display();
    let broker = Broker::start_with(
        None,
        &format!(
            "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n\
             allow_anonymous false\npassword_file {d}/passwd\n"
        ),
    );
    // A subscriber over TLS with the same user.
    let port = broker.port.to_string();
    let ca = format!("{d}/ca.pem");
    let (mut sub, rx) = subscriber(&[
        "-p",
        &port,
        "-t",
        "secure/t",
        "--cafile",
        &ca,
        "-u",
        "robot",
        "-P",
        "s3cret-pw",
    ]);
    let props = |password: &str| {
        format!(
            "method=mqtt address=127.0.0.1:{} topic=secure/t qos=1 username=robot \
             password-file={d}/{password} ca-file={d}/ca.pem",
            broker.port
        )
    };
    let p = pipeline(3, false, &props("password.txt"));
    run_to_eos(&p, Duration::from_secs(60), |_| {}).expect("publish over TLS");
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < 3 && Instant::now() < end {
        if let Ok(v) = rx.recv_timeout(Duration::from_millis(200)) {
            got.push(v);
        }
    }
    let _ = sub.kill();
    let _ = sub.wait();
    assert_eq!(got.len(), 3, "{got:?}");

    // A wrong password is refused, the error says so, and no password is shown.
    let p = pipeline(30, true, &props("wrong.txt"));
    let err = run_to_eos(&p, Duration::from_secs(20), |_| {}).unwrap_err();
    assert!(err.contains("cannot connect to the MQTT broker"), "{err}");
    assert!(!err.contains("s3cret") && !err.contains("wrong"), "{err}");
}
