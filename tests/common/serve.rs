//! `gst-emotion serve` run as a process for the tests: started on a free loopback port
//! with its own state folder, its log captured, killed when dropped; an HTTP client
//! with a deadline, and the spoken clips the server tests analyse.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;

/// A running `gst-emotion serve`.
pub struct Server {
    /// The server process.
    pub child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts a server with `args` on 127.0.0.1 (a free port) and waits for /ping.
    pub fn start(state: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gst-emotion"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--state-dir"])
            .arg(state)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start gst-emotion serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server did not start:\n{}", log.lock().unwrap()));
        let server = Server { child, base, log };
        server.wait_ready();
        server
    }

    pub fn wait_ready(&self) {
        let end = Instant::now() + Duration::from_secs(120);
        while Instant::now() < end {
            if client()
                .get(self.url("/ping"))
                .send()
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("/ping never answered 200:\n{}", self.log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `GET path` as JSON.
    pub fn get_json(&self, path: &str) -> Value {
        client().get(self.url(path)).send().unwrap().json().unwrap()
    }

    /// The body of `GET path` as text (`/metrics`).
    pub fn get_text(&self, path: &str) -> String {
        client().get(self.url(path)).send().unwrap().text().unwrap()
    }

    /// Polls `GET path` until `done` holds for its JSON, which it returns; panics with
    /// the last answer and the server's log after `limit`.
    pub fn wait_for(&self, path: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + limit;
        loop {
            let v = self.get_json(path);
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < end, "{path}: {v}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `--set`s for quick windows: sliding, 1 s, no speech recognition.
pub const FAST_WINDOWS: [&str; 8] = [
    "--set",
    "window-mode=sliding",
    "--set",
    "window-length=1",
    "--set",
    "window-hop=1",
    "--set",
    "asr=false",
];

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(180))
        .build()
        .unwrap()
}

/// Media the servers may read.
pub fn media_dir() -> PathBuf {
    let d = fixture_dir().join("media");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A 640×360 clip of the astronaut photo with `text` spoken over it, in the media folder.
pub fn spoken_clip(name: &str, text: &str, frames: u32) -> PathBuf {
    init();
    let path = media_dir().join(format!("{name}.mp4"));
    if path.exists() {
        return path;
    }
    let wav = speak(name, text);
    let desc = format!(
        "mp4mux name=mux ! filesink location={} \
         {} ! videoconvert ! videoscale add-borders=true \
         ! video/x-raw,width=640,height=360,pixel-aspect-ratio=1/1,framerate=30/1 \
         ! x264enc speed-preset=ultrafast ! h264parse ! queue ! mux. \
         filesrc location={} ! wavparse ! audioconvert ! audioresample \
         ! audio/x-raw,rate=48000,channels=1 ! avenc_aac ! aacparse ! queue ! mux.",
        path.display(),
        still_video(&astronaut(), frames),
        wav.display()
    );
    run_description(&desc);
    path
}

pub fn happy_clip() -> PathBuf {
    spoken_clip(
        "happy",
        "I am so happy to see you. This is wonderful news.",
        150,
    )
}

pub fn post_json(s: &Server, path: &str, body: &Value) -> reqwest::blocking::Response {
    client()
        .post(s.url(path))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap()
}

pub fn state_dir(name: &str) -> PathBuf {
    let d = fixture_dir().join(format!("state-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    d
}
