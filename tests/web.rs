//! The server's web page in a real browser: Debian's headless Chromium driven over
//! WebDriver (chromedriver, on loopback). A video is dropped in (the file input), the
//! per-window table fills as the job's events arrive, then the player gets the WebVTT
//! captions. The screenshot is kept in the target folder as a test artifact.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{Value, json};

/// WebDriver's element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A WebDriver session on a running chromedriver.
struct Browser {
    base: String,
    session: String,
}

impl Browser {
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut r = http().request(method, url);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let v: Value = r.send().unwrap().json().unwrap();
        assert!(v["value"]["error"].is_null(), "webdriver {path}: {v}");
        v["value"].clone()
    }

    fn element(&self, css: &str) -> String {
        let v = self.call(
            reqwest::Method::POST,
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn script(&self, js: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
    }
}

#[test]
fn the_web_page_analyses_a_dropped_video_and_shows_its_captions() {
    init();
    // The served page and the video it gets.
    let media = fixture_dir().join("web-media");
    std::fs::create_dir_all(&media).unwrap();
    let wav = speak("web", "I am so happy to see you. This is wonderful news.");
    let clip = media.join("web.mp4");
    let desc = format!(
        "mp4mux name=mux ! filesink location={} \
         {} ! videoconvert ! videoscale add-borders=true \
         ! video/x-raw,width=640,height=360,pixel-aspect-ratio=1/1,framerate=30/1 \
         ! x264enc speed-preset=ultrafast ! video/x-h264,profile=constrained-baseline \
         ! h264parse ! queue ! mux. \
         filesrc location={} ! wavparse ! audioconvert ! audioresample \
         ! audio/x-raw,rate=48000,channels=1 ! avenc_aac ! aacparse ! queue ! mux.",
        clip.display(),
        still_video(&astronaut(), 150),
        wav.display()
    );
    run_to_eos(
        &gst::parse::launch(&desc).unwrap(),
        Duration::from_secs(60),
        |_| {},
    )
    .unwrap();
    let state = fixture_dir().join("web-state");
    let mut server = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .args(["serve", "--bind", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let server = Killed(server);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(a) = line.split("listening on ").nth(1) {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    let end = Instant::now() + Duration::from_secs(120);
    while !http()
        .get(format!("{base}/ping"))
        .send()
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < end, "the server never got ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    // chromedriver on a free port, Chromium headless with a fresh profile.
    let port = common::free_port();
    let driver = Killed(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian chromium-driver, scripts/setup installs it)"),
    );
    let wd = format!("http://127.0.0.1:{port}");
    let end = Instant::now() + Duration::from_secs(30);
    while http().get(format!("{wd}/status")).send().is_err() {
        assert!(Instant::now() < end, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let profile = tempfile::TempDir::new().unwrap();
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                     format!("--user-data-dir={}", profile.path().display())]
        }
    }}});
    let session: Value = http()
        .post(format!("{wd}/session"))
        .json(&caps)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let browser = Browser {
        base: wd.clone(),
        session: session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_string(),
    };
    browser.call(reqwest::Method::POST, "/url", Some(json!({"url": base})));
    let file = browser.element("#file");
    browser.call(
        reqwest::Method::POST,
        &format!("/element/{file}/value"),
        Some(json!({"text": clip.display().to_string()})),
    );
    let go = browser.element("#go");
    browser.call(
        reqwest::Method::POST,
        &format!("/element/{go}/click"),
        Some(json!({})),
    );
    // The table fills, then the captions track is attached with its cues.
    let end = Instant::now() + Duration::from_secs(240);
    let page = loop {
        let v = browser.script(
            "const t = document.getElementById('captions'); \
             const p = document.getElementById('player'); \
             return { rows: document.querySelectorAll('#windows tbody tr').length, \
                      state: document.getElementById('job-state').textContent, \
                      track: t.src, cues: p.textTracks[0].cues ? p.textTracks[0].cues.length : -1, \
                      firstRow: (document.querySelector('#windows tbody tr') || {}).textContent || '', \
                      timeline: !document.getElementById('timeline').hidden };",
        );
        if v["state"].as_str().unwrap_or("").contains("done")
            && v["track"].as_str().unwrap_or("").starts_with("blob:")
            && v["cues"].as_i64().unwrap_or(0) > 0
        {
            break v;
        }
        assert!(Instant::now() < end, "the page did not finish: {v}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(page["rows"].as_u64().unwrap() >= 1, "{page}");
    assert!(page["firstRow"].as_str().unwrap().contains("joy"), "{page}");
    assert_eq!(page["timeline"], true);
    // The screenshot, kept as an artifact.
    let png = browser.call(reqwest::Method::GET, "/screenshot", None);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    let artifact = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page.png");
    std::fs::write(&artifact, &bytes).unwrap();
    println!("screenshot: {}", artifact.display());
    let _ = http()
        .delete(format!("{wd}/session/{}", browser.session))
        .send();
    drop(driver);
    drop(server);
}
