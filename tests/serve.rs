//! `gst-emotion serve` end to end, on loopback: the reference's client flow (JSON
//! path, raw bytes, streamed JSON Lines), jobs that survive SIGKILL, a mixed load,
//! hostile input, S3 through a real S3-compatible server (moto), live streams over
//! Server-Sent Events, the web page in headless Chromium, and SIGTERM. Every server
//! and helper is started here on a free port and stopped at the end.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::serve::*;
use common::*;
use serde_json::{Value, json};

fn media_arg() -> String {
    media_dir().display().to_string()
}

#[test]
fn the_reference_clients_flow_and_streamed_lines() {
    let clip = happy_clip();
    let s = Server::start(&state_dir("reference"), &["--allow-dir", &media_arg()], &[]);
    // The reference's request shape and answer shape.
    let r = post_json(&s, "/invocations", &json!({"video_path": clip}));
    assert_eq!(r.status(), 200, "{}", s.log());
    let by_path: Value = r.json().unwrap();
    let utterances = by_path["utterances"].as_array().unwrap();
    assert!(!utterances.is_empty(), "{by_path:#}");
    for u in utterances {
        let keys: Vec<&str> = u.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["emotions", "end_time", "sentiments", "start_time", "text"],
            "{u:#}"
        );
        assert_eq!(u["emotions"].as_array().unwrap().len(), 3);
        assert_eq!(u["sentiments"].as_array().unwrap().len(), 3);
        assert_eq!(u["emotions"][0]["label"], "joy", "{u:#}");
        assert_eq!(u["sentiments"][0]["label"], "positive", "{u:#}");
    }
    // The same video as raw bytes: the same answer.
    let r = client()
        .post(s.url("/invocations"))
        .header("Content-Type", "video/mp4")
        .body(std::fs::read(&clip).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap(), by_path);
    // WebVTT and CSV by Accept; no other format.
    for (accept, start) in [("text/vtt", "WEBVTT"), ("text/csv", "index,start,end")] {
        let r = client()
            .post(s.url("/invocations"))
            .header("Content-Type", "application/json")
            .header("Accept", accept)
            .body(json!({"video_path": clip}).to_string())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().unwrap().starts_with(start));
    }
    let r = client()
        .post(s.url("/invocations"))
        .header("Content-Type", "application/json")
        .header("Accept", "image/png")
        .body(json!({"video_path": clip}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 406);
    // JSON Lines arrive window by window, before the response ends.
    let long = spoken_clip(
        "three-sentences",
        "I am so happy today. ... ... This is really wonderful. ... ... I love this place.",
        300,
    );
    let started = Instant::now();
    let mut r = client()
        .post(s.url("/invocations"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/jsonlines")
        .body(json!({"video_path": long}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jsonlines");
    let mut arrivals = Vec::new();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        let chunk = String::from_utf8_lossy(&buf[..n]).to_string();
        for _ in chunk.matches('\n') {
            arrivals.push(started.elapsed());
        }
        text.push_str(&chunk);
    }
    let end = started.elapsed();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 3, "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l["index"].is_u64() && l["emotion"].is_string())
    );
    assert!(
        arrivals[0] + Duration::from_millis(300) < end,
        "the first window came at {:?}, the end at {end:?}",
        arrivals[0]
    );
    assert!(s.log().contains("POST /invocations 200"));
}

fn poll_job(s: &Server, id: &str, deadline: Duration) -> Value {
    s.wait_for(&format!("/v1/jobs/{id}"), deadline, |v| {
        v["state"] != "queued" && v["state"] != "running"
    })
}

#[test]
fn accepted_jobs_survive_a_killed_server_and_match_analyze() {
    let clips = [
        happy_clip(),
        spoken_clip("sad", "I miss her so much. I can't stop crying.", 150),
        spoken_clip("calm", "The meeting is at three o'clock on Friday.", 120),
    ];
    let state = state_dir("jobs");
    let args = ["--allow-dir", &media_arg(), "--max-concurrent", "1"];
    let mut s = Server::start(&state, &args, &[]);
    let mut ids = Vec::new();
    for (k, clip) in clips.iter().enumerate() {
        let r = if k == 1 {
            // One as an upload: it is kept with the job.
            client()
                .post(s.url("/v1/jobs"))
                .header("Content-Type", "application/octet-stream")
                .body(std::fs::read(clip).unwrap())
                .send()
                .unwrap()
        } else {
            post_json(&s, "/v1/jobs", &json!({"video_path": clip}))
        };
        assert_eq!(r.status(), 202);
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/v1/jobs/")
        );
        let v: Value = r.json().unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // Killed while the first job runs.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let v: Value = client()
            .get(s.url(&format!("/v1/jobs/{}", ids[0])))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if v["state"] == "running" {
            break;
        }
        assert!(Instant::now() < end, "the first job never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.kill();
    let s = Server::start(&state, &args, &[]);
    for id in &ids {
        let v = poll_job(&s, id, Duration::from_secs(300));
        assert_eq!(v["state"], "done", "{v:#}");
        assert_eq!(
            v["progress"].as_f64().map(|p| p > 0.99),
            Some(true),
            "{v:#}"
        );
    }
    // Each job's results equal analyze's on the same file.
    let out = fixture_dir().join("jobs-analyze");
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(env!("CARGO_BIN_EXE_gst-emotion"))
        .arg("analyze")
        .args(&clips)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    for (clip, id) in clips.iter().zip(&ids) {
        let stem = clip.file_stem().unwrap().to_string_lossy().to_string();
        let analyzed = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().unwrap().to_string_lossy().to_string();
                n.starts_with(&format!("{stem}.")) && n.ends_with(".jsonl")
            })
            .unwrap();
        let served = client()
            .get(s.url(&format!("/v1/jobs/{id}/results.jsonl")))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(served, std::fs::read_to_string(analyzed).unwrap(), "{stem}");
        // Every result format is there.
        for (file, kind) in [
            ("results.csv", "text/csv"),
            ("results.vtt", "text/vtt"),
            ("results.svg", "image/svg+xml"),
            ("results.json", "application/json"),
        ] {
            let r = client()
                .get(s.url(&format!("/v1/jobs/{id}/{file}")))
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], kind);
        }
    }
    // Events replay a finished job's windows, then its status.
    let events = client()
        .get(s.url(&format!("/v1/jobs/{}/events", ids[0])))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        events.contains("event: window") && events.contains("event: end"),
        "{events}"
    );
    // A job can be cancelled only before it is done.
    let r = client()
        .delete(s.url(&format!("/v1/jobs/{}", ids[0])))
        .send()
        .unwrap();
    assert_eq!(r.status(), 409);
}

#[test]
fn a_mixed_load_is_answered_correctly_and_the_server_stays_up() {
    let short = spoken_clip("short", "Hello, I am happy.", 60);
    let s = Server::start(
        &state_dir("load"),
        &[
            "--allow-dir",
            &media_arg(),
            "--max-concurrent",
            "2",
            "--queue",
            "3",
        ],
        &[],
    );
    let good = json!({"video_path": short}).to_string();
    let cases: Vec<(String, &str, u16)> = (0..40)
        .map(|k| match k % 5 {
            0 | 1 => (good.clone(), "application/json", 200),
            2 => ("{broken".to_string(), "application/json", 400),
            3 => (
                json!({"video_path": "/etc/passwd"}).to_string(),
                "application/json",
                403,
            ),
            _ => ("plain text".to_string(), "text/plain", 415),
        })
        .collect();
    let results = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                loop {
                    let k = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        *n - 1
                    };
                    let Some((body, kind, want)) = cases.get(k) else {
                        break;
                    };
                    let r = client()
                        .post(s.url("/invocations"))
                        .header("Content-Type", *kind)
                        .body(body.clone())
                        .send()
                        .unwrap();
                    let status = r.status().as_u16();
                    let retry = r.headers().get("retry-after").is_some();
                    let v: Value = r.json().unwrap();
                    results.lock().unwrap().push((*want, status, retry, v));
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    assert_eq!(results.len(), 40);
    let mut ok = 0;
    for (want, status, retry, v) in &results {
        if *status == 503 {
            // The queue was full: a deliberate, retryable refusal.
            assert_eq!(*want, 200, "{v}");
            assert!(retry);
            assert_eq!(v["error"]["code"], "busy");
            continue;
        }
        assert_eq!(status, want, "{v}");
        if *want == 200 {
            ok += 1;
            assert_eq!(v["utterances"][0]["emotions"][0]["label"], "joy", "{v}");
        } else {
            assert!(v["error"]["code"].is_string() && v["error"]["message"].is_string());
        }
    }
    assert!(ok >= 4, "{ok} good requests answered");
    assert_eq!(client().get(s.url("/ping")).send().unwrap().status(), 200);
    let rss_kb: u64 = std::fs::read_to_string(format!("/proc/{}/status", s.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(rss_kb < 3_000_000, "server RSS {rss_kb} kB");
    let metrics = s.get_text("/metrics");
    for name in [
        "gst_emotion_http_requests_total",
        "gst_emotion_http_request_duration_seconds_bucket",
        "gst_emotion_windows_analysed_total",
        "gst_emotion_queue_depth",
        "gst_emotion_errors_total",
        "gst_emotion_model_load_seconds",
        "gst_emotion_asr_seconds_total",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}");
    }
}

#[test]
fn hostile_requests_get_their_documented_errors() {
    let clip = happy_clip();
    let secret = media_dir().join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    let outside = fixture_dir().join("outside.mp4");
    std::fs::copy(&clip, &outside).unwrap();
    let link = media_dir().join("link.mp4");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let corrupt = media_dir().join("corrupt.mp4");
    std::fs::write(
        &corrupt,
        (0..50_000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let token_file = fixture_dir().join("token");
    std::fs::write(&token_file, "correct-horse-battery-staple\n").unwrap();
    let s = Server::start(
        &state_dir("hostile"),
        &[
            "--allow-dir",
            &media_arg(),
            "--allow-remote",
            "--max-body",
            "1M",
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        &[],
    );
    let send = |kind: Option<&str>, body: Vec<u8>, token: Option<&str>| {
        let mut r = client().post(s.url("/invocations")).body(body);
        if let Some(k) = kind {
            r = r.header("Content-Type", k);
        }
        if let Some(t) = token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        let r = r.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    let good = Some("correct-horse-battery-staple");
    let j = |v: Value| v.to_string().into_bytes();
    let json_kind = Some("application/json");
    let dotdot = format!("{}/../outside.mp4", media_arg());
    let cases: Vec<(&str, u16, &str, (u16, Value))> = vec![
        (
            "malformed JSON",
            400,
            "bad_request",
            send(json_kind, b"{\"video_path\":".to_vec(), good),
        ),
        (
            "unknown field",
            400,
            "bad_request",
            send(json_kind, j(json!({"video": "x"})), good),
        ),
        (
            "wrong content type",
            415,
            "unsupported_media_type",
            send(Some("text/plain"), b"x".to_vec(), good),
        ),
        (
            "no content type",
            415,
            "unsupported_media_type",
            send(None, b"x".to_vec(), good),
        ),
        (
            "empty JSON body",
            400,
            "bad_request",
            send(json_kind, Vec::new(), good),
        ),
        (
            "empty upload",
            400,
            "bad_request",
            send(Some("video/mp4"), Vec::new(), good),
        ),
        (
            "over the body limit",
            413,
            "payload_too_large",
            send(Some("video/mp4"), vec![0u8; 2 << 20], good),
        ),
        (
            "corrupt video",
            422,
            "invalid_media",
            send(json_kind, j(json!({"video_path": corrupt})), good),
        ),
        (
            "path outside --allow-dir",
            403,
            "forbidden",
            send(json_kind, j(json!({"video_path": "/etc/hostname"})), good),
        ),
        (
            "../ escape",
            403,
            "forbidden",
            send(json_kind, j(json!({"video_path": dotdot})), good),
        ),
        (
            "symlink escape",
            403,
            "forbidden",
            send(json_kind, j(json!({"video_path": link})), good),
        ),
        (
            "missing file",
            404,
            "not_found",
            send(
                json_kind,
                j(json!({"video_path": media_dir().join("none.mp4")})),
                good,
            ),
        ),
        (
            "loopback without --allow-private",
            403,
            "forbidden",
            send(
                json_kind,
                j(json!({"video_path": "http://127.0.0.1:9/x.mp4"})),
                good,
            ),
        ),
        (
            "private address",
            403,
            "forbidden",
            send(
                json_kind,
                j(json!({"video_path": "http://user:pw@10.0.0.1/x.mp4"})),
                good,
            ),
        ),
        (
            "unknown scheme",
            400,
            "bad_request",
            send(json_kind, j(json!({"video_path": "gopher://x/y"})), good),
        ),
        (
            "wrong token",
            401,
            "unauthorized",
            send(
                json_kind,
                j(json!({"video_path": clip})),
                Some("wrong-token-wrong-token"),
            ),
        ),
        (
            "no token",
            401,
            "unauthorized",
            send(json_kind, j(json!({"video_path": clip})), None),
        ),
    ];
    for (what, status, code, (got, body)) in &cases {
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(body["error"]["code"], *code, "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    // Credentials never echoed or logged.
    let private = &cases[13].3.1;
    assert!(!private.to_string().contains("pw@"), "{private}");
    assert!(!s.log().contains("user:pw"));
    assert!(!s.log().contains("correct-horse"));
    // The health check and metrics need no token; the rest does.
    assert_eq!(client().get(s.url("/ping")).send().unwrap().status(), 200);
    assert_eq!(
        client().get(s.url("/metrics")).send().unwrap().status(),
        200
    );
    assert_eq!(
        client().get(s.url("/v1/streams")).send().unwrap().status(),
        401
    );
    let r = client()
        .get(s.url("/v1/jobs/00000000000000000000000000000000"))
        .header("Authorization", "Bearer correct-horse-battery-staple")
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(client().get(s.url("/nope")).send().unwrap().status(), 401);
}

#[test]
fn s3_sources_through_an_s3_compatible_server() {
    let clip = happy_clip();
    let moto = common::s3::Moto::start(&["videos"]);
    moto.put_file(&clip, "videos", "clips/happy.mp4");
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Server::start(&state_dir("s3"), &[], &env);
    let by_fields = post_json(
        &s,
        "/invocations",
        &json!({"bucket": "videos", "video_key": "clips/happy.mp4"}),
    );
    assert_eq!(by_fields.status(), 200, "{}", s.log());
    let by_fields: Value = by_fields.json().unwrap();
    assert_eq!(by_fields["utterances"][0]["emotions"][0]["label"], "joy");
    let by_uri: Value = post_json(
        &s,
        "/invocations",
        &json!({"video_path": "s3://videos/clips/happy.mp4"}),
    )
    .json()
    .unwrap();
    assert_eq!(by_uri, by_fields);
    let missing = post_json(
        &s,
        "/invocations",
        &json!({"video_path": "s3://videos/nope.mp4"}),
    );
    assert_eq!(missing.status(), 404);
}

#[test]
fn live_streams_deliver_events_in_order() {
    let port = free_port();
    let rtsp = common::rtsp::Server::start(port);
    let mut args = vec!["--allow-remote", "--allow-private"];
    args.extend_from_slice(&FAST_WINDOWS);
    let s = Server::start(&state_dir("streams"), &args, &[]);
    let url = format!("rtsp://viewer:secret@127.0.0.1:{port}/cam");
    let r = post_json(&s, "/v1/streams", &json!({"uri": url, "name": "lobby"}));
    assert_eq!(r.status(), 201, "{}", s.log());
    let created: Value = r.json().unwrap();
    assert_eq!(created["name"], "lobby");
    assert!(!created.to_string().contains("secret"), "{created}");
    let events_url = s.url(created["urls"]["events"].as_str().unwrap());
    let mut r = client().get(events_url).send().unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + Duration::from_secs(120);
    while text.matches("event: window").count() < 5 {
        assert!(Instant::now() < end, "too few events:\n{text}\n{}", s.log());
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "the event stream ended:\n{text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let indexes: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["index"].as_u64())
        .collect();
    assert!(indexes.len() >= 5);
    assert!(indexes.windows(2).all(|w| w[1] > w[0]), "{indexes:?}");
    let id = created["id"].as_str().unwrap();
    let list: Value = client()
        .get(s.url("/v1/streams"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["streams"][0]["state"], "playing");
    let r = client()
        .delete(s.url(&format!("/v1/streams/{id}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = client()
            .get(s.url(&format!("/v1/streams/{id}")))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if v["state"] == "stopped" {
            break;
        }
        assert!(Instant::now() < end, "{v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    rtsp.stop();
}

/// A stream whose camera's audio stops (docs/live.md, "When inputs fail"): the stream
/// shows the missing input and keeps analysing; `/metrics` counts the stall.
#[test]
fn a_stream_shows_its_stalled_audio_and_metrics_count_it() {
    let port = free_port();
    let rtsp = common::rtsp::Server::start(port);
    let mut args = vec!["--allow-remote", "--allow-private"];
    args.extend_from_slice(&FAST_WINDOWS);
    let s = Server::start(&state_dir("stall"), &args, &[]);
    let url = format!("rtsp://127.0.0.1:{port}/cam-mute");
    let r = post_json(&s, "/v1/streams", &json!({"uri": url, "name": "mute"}));
    assert_eq!(r.status(), 201, "{}", s.log());
    let id = r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/streams/{id}");
    let stalled = s.wait_for(&path, Duration::from_secs(60), |v| {
        v["missing_inputs"] == json!(["audio"])
    });
    assert_eq!(stalled["input_stalls"], 1, "{stalled}");
    assert_eq!(stalled["state"], "playing", "{stalled}");
    // Windows keep coming from the video.
    let windows = stalled["windows"].as_u64().unwrap();
    s.wait_for(&path, Duration::from_secs(30), |v| {
        v["windows"].as_u64().unwrap() >= windows + 2
    });
    let metrics = s.get_text("/metrics");
    assert!(
        metrics.contains("gst_emotion_stream_input_stalls_total{input=\"audio\"} 1"),
        "{metrics}"
    );
    let r = client().delete(s.url(&path)).send().unwrap();
    assert_eq!(r.status(), 200);
    rtsp.stop();
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut s = Server::start(&state_dir("term"), &[], &[]);
    let pid = s.pid() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0), "{}", s.log());
    assert!(s.log().contains("shutting down"));
}
