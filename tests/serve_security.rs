//! `gst-emotion serve` as an attacker meets it. Refusals are checked on the router
//! itself (`tower::ServiceExt::oneshot`, milliseconds a case, no pipeline): request
//! forgery in every URL form, pipeline injection, paths outside `--allow-dir`, body
//! limits. Then on a running server: slow uploads do not lock others out, an http(s)
//! live stream is fetched by the server's own checked client (a redirect into a
//! private address is refused), quoted paths are played literally, and credentials
//! never reach the disk. Everything listens on loopback (127.0.0.1 and 127.0.0.2, the
//! latter standing in for a public host via `--allow-net`) and is stopped at the end.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use clap::Parser;
use common::serve::*;
use common::*;
use serde_json::{Value, json};
use tower::ServiceExt;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: gst_emotion::serve::ServeArgs,
}

/// The router over a state prepared from `args` (models not loaded: the refusals
/// under test never reach them), marked ready.
fn app(name: &str, args: &[&str]) -> axum::Router {
    let state = state_dir(name);
    let mut argv = vec!["serve", "--state-dir", state.to_str().unwrap()];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).expect("arguments");
    let state = gst_emotion::serve::prepare(&cli.serve).expect("prepare");
    state.ready.store(true, Ordering::SeqCst);
    gst_emotion::serve::router(state)
}

/// One request through the router: status and JSON body.
fn call(app: &axum::Router, req: axum::http::Request<Body>) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = tokio::time::timeout(Duration::from_secs(10), app.clone().oneshot(req))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    })
}

fn post(path: &str, body: Value) -> axum::http::Request<Body> {
    axum::http::Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A listener that records whether anything connected to it.
struct Trap(TcpListener);

impl Trap {
    fn new(ip: &str) -> Trap {
        let l = TcpListener::bind((ip, 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        Trap(l)
    }
    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }
    fn was_reached(&self) -> bool {
        self.0.accept().is_ok()
    }
}

#[test]
fn forged_and_injected_sources_are_refused_before_any_connection() {
    let media = media_dir();
    let out = fixture_dir().join("injected-copy");
    let _ = std::fs::remove_file(&out);
    let secret = fixture_dir().join("not-to-be-copied.txt");
    std::fs::write(&secret, "private").unwrap();
    let app = app(
        "refusals",
        &[
            "--allow-remote",
            "--allow-dir",
            media.to_str().unwrap(),
            "--max-body",
            "1M",
        ],
    );
    let trap = Trap::new("127.0.0.1");
    let p = trap.port();
    // Request forgery: every form of "this machine" is refused without a connection.
    let forged = [
        (format!("http://127.0.0.1:{p}\\@1.2.3.4/x.mp4"), 400),
        (format!("http://user@evil@127.0.0.1:{p}/x.mp4"), 400),
        (format!("http://2130706433:{p}/x.mp4"), 403),
        (format!("http://0x7f.1:{p}/x.mp4"), 403),
        (format!("http://127.1:{p}/x.mp4"), 403),
        (format!("http://localhost:{p}/x.mp4"), 403),
        (format!("http://[::ffff:127.0.0.1]:{p}/x.mp4"), 403),
        (format!("http://[::127.0.0.1]:{p}/x.mp4"), 403),
        (format!("http://[64:ff9b::7f00:1]:{p}/x.mp4"), 403),
        (format!("http://[::1]:{p}/x.mp4"), 403),
        (format!("http:///127.0.0.1:{p}/x.mp4"), 400),
        (format!("rtsp://127.0.0.1:{p}\\@1.2.3.4/cam"), 400),
    ];
    for (uri, status) in &forged {
        for path in ["/invocations", "/v1/jobs"] {
            let (got, body) = call(&app, post(path, json!({"video_path": uri})));
            assert_eq!(got, *status, "{path} {uri}: {body}");
            assert!(body["error"]["message"].is_string(), "{body}");
        }
        let (got, body) = call(&app, post("/v1/streams", json!({"uri": uri})));
        assert_eq!(got, *status, "/v1/streams {uri}: {body}");
    }
    // Pipeline injection: a URL with a quote is not a URL.
    let injected = format!(
        "http://127.0.0.1:{p}/clip.mp4\" filesrc location={} ! filesink location={} name=\"y",
        secret.display(),
        out.display()
    );
    let (got, body) = call(
        &app,
        post("/v1/streams", json!({"uri": injected, "name": "inj"})),
    );
    assert_eq!(got, 400, "{body}");
    for device in ["/dev/video0/../../etc/passwd", "/dev/sda", "/dev/video"] {
        let (got, body) = call(&app, post("/v1/streams", json!({"uri": device})));
        assert_eq!(got, 400, "{device}: {body}");
    }
    assert!(!trap.was_reached(), "a refused source was connected to");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!out.exists(), "the injected pipeline ran");

    // Paths outside --allow-dir: the same answer whether or not they exist.
    let (a, body_a) = call(
        &app,
        post("/invocations", json!({"video_path": "/etc/hostname"})),
    );
    let (b, body_b) = call(
        &app,
        post("/invocations", json!({"video_path": "/etc/no-such"})),
    );
    assert_eq!((a, b), (403, 403), "{body_a} {body_b}");
    let (c, _) = call(
        &app,
        post(
            "/invocations",
            json!({"video_path": format!("{}/../no-such.mp4", media.display())}),
        ),
    );
    assert_eq!(c, 403);
    let (d, _) = call(
        &app,
        post(
            "/invocations",
            json!({"video_path": format!("file://{}/no-such.mp4", media.display())}),
        ),
    );
    assert_eq!(d, 404);

    // Body limits: the JSON limit names itself; a declared length over --max-body is
    // refused before one byte of the body is read (Expect: 100-continue).
    let big = json!({"video_path": "x".repeat(70_000)});
    let (got, body) = call(&app, post("/invocations", big));
    assert_eq!(got, 413);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("64 KiB") && !message.contains("--max-body"),
        "{message}"
    );
    for (path, kind) in [
        ("/invocations", "video/mp4"),
        ("/v1/jobs", "video/mp4"),
        ("/v1/streams", "application/json"),
    ] {
        let never = futures_util::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
        let req = axum::http::Request::post(path)
            .header("content-type", kind)
            .header("content-length", "2000000")
            .header("expect", "100-continue")
            .body(Body::from_stream(never))
            .unwrap();
        let (got, body) = call(&app, req);
        assert_eq!(got, 413, "{path}: {body}");
    }
}

#[test]
fn unknown_ids_and_missing_tokens_get_json_errors() {
    let token = fixture_dir().join("router-token");
    std::fs::write(&token, "correct-horse-battery-staple").unwrap();
    let app = app("ids", &["--token-file", token.to_str().unwrap()]);
    let get = |path: &str, token: Option<&str>| {
        let mut r = axum::http::Request::get(path);
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        call(&app, r.body(Body::empty()).unwrap())
    };
    let good = Some("correct-horse-battery-staple");
    for (path, token, status, code) in [
        (
            "/v1/jobs/0123456789abcdef0123456789abcdef",
            None,
            401,
            "unauthorized",
        ),
        (
            "/v1/jobs/0123456789abcdef0123456789abcdef",
            Some("wrong-wrong-wrong-x"),
            401,
            "unauthorized",
        ),
        (
            "/v1/jobs/0123456789abcdef0123456789abcdef",
            good,
            404,
            "not_found",
        ),
        ("/v1/jobs/..%2f..%2fetc", good, 404, "not_found"),
        (
            "/v1/jobs/0123456789abcdef0123456789abcdef/results.jsonl",
            good,
            404,
            "not_found",
        ),
        ("/v1/streams/zz", good, 404, "not_found"),
        ("/nope", good, 404, "not_found"),
    ] {
        let (got, body) = get(path, token);
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }
    assert_eq!(get("/ping", None).0, 200);
}

/// A small HTTP origin on `ip`: `/clip.mp4` answers `clip` (401 unless the request
/// carries `auth` as Basic credentials, when given), `/redirect` answers 302 to
/// `target`. Counts the requests it answers.
struct Origin {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Origin {
    fn start(ip: &str, clip: PathBuf, target: String, auth: Option<&str>) -> Origin {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let expected =
            auth.map(|a| format!("authorization: basic {}", base64_of(a)).to_ascii_lowercase());
        let (count, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let (clip, target, expected) = (clip.clone(), target.clone(), expected.clone());
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let authorised = expected.as_ref().is_none_or(|e| head.contains(e.as_str()));
                    let _ = if path == "/redirect" {
                        write!(
                            conn,
                            "HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                    } else if path == "/clip.mp4" && authorised {
                        let bytes = std::fs::read(&clip).unwrap();
                        write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            bytes.len()
                        )
                        .and_then(|_| conn.write_all(&bytes))
                    } else if path == "/clip.mp4" {
                        write!(
                            conn,
                            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                    } else {
                        write!(
                            conn,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                    };
                });
            }
        });
        Origin {
            addr,
            requests,
            stop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Starts a stream of `uri` (201) and waits until it stops or fails; its status.
fn play_to_end(s: &Server, uri: &str) -> Value {
    let r = post_json(s, "/v1/streams", &json!({"uri": uri}));
    assert_eq!(r.status(), 201, "{}", s.log());
    let id = r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.wait_for(
        &format!("/v1/streams/{id}"),
        Duration::from_secs(120),
        |v| v["state"] == "stopped" || v["state"] == "failed",
    )
}

#[test]
fn http_streams_are_fetched_by_the_checked_client_and_redirects_rechecked() {
    let clip = happy_clip();
    let trap = Trap::new("127.0.0.1");
    let inside = format!("http://127.0.0.1:{}/clip.mp4", trap.port());
    let origin = Origin::start("127.0.0.2", clip, inside, None);
    let mut args = vec!["--allow-remote", "--allow-net", "127.0.0.2/32"];
    args.extend_from_slice(&FAST_WINDOWS);
    let s = Server::start(&state_dir("redirects"), &args, &[]);
    // A stream from the "public" origin plays to its end.
    let v = play_to_end(&s, &origin.url("/clip.mp4"));
    assert_eq!(v["state"], "stopped", "{v}");
    assert!(v["windows"].as_u64().unwrap() >= 3, "{v}");
    // A redirect into this machine is refused, by the stream and by /invocations.
    let v = play_to_end(&s, &origin.url("/redirect"));
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["last_error"].as_str().unwrap().contains("private"), "{v}");
    let r = post_json(
        &s,
        "/invocations",
        &json!({"video_path": origin.url("/redirect")}),
    );
    assert_eq!(r.status(), 403);
    assert!(origin.requests.load(Ordering::SeqCst) >= 3);
    assert!(!trap.was_reached(), "a redirect reached a private address");
}

#[test]
fn credentials_never_reach_the_disk_and_state_is_private() {
    let clip = happy_clip();
    let origin = Origin::start("127.0.0.2", clip, String::new(), Some("user:secretpw"));
    let state = state_dir("credentials");
    let s = Server::start(&state, &["--allow-remote", "--allow-net", "127.0.0.2"], &[]);
    let url = origin
        .url("/clip.mp4")
        .replace("http://", "http://user:secretpw@");
    let r = post_json(&s, "/v1/jobs", &json!({"video_path": url}));
    assert_eq!(r.status(), 202, "{}", s.log());
    let job: Value = r.json().unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    assert!(!job.to_string().contains("secretpw"), "{job}");
    let dir = state.join("jobs").join(&id);
    let done = s.wait_for(&format!("/v1/jobs/{id}"), Duration::from_secs(180), |v| {
        let text = std::fs::read_to_string(dir.join("job.json")).unwrap_or_default();
        assert!(!text.contains("secretpw"), "{text}");
        v["state"] != "queued" && v["state"] != "running"
    });
    // The credentials were used (the origin answers 401 without them) and then removed.
    assert_eq!(done["state"], "done", "{done}\n{}", s.log());
    assert!(!dir.join("credentials").exists());
    assert!(!s.log().contains("secretpw"));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&dir), 0o700);
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
    }
    for e in walk(&state) {
        assert!(
            !std::fs::read(&e)
                .unwrap_or_default()
                .windows(8)
                .any(|w| w == b"secretpw"),
            "{}",
            e.display()
        );
    }
    // Uploads are shown as uploads, not as the server's own path.
    let r = client()
        .post(s.url("/v1/jobs"))
        .header("Content-Type", "video/mp4")
        .body(std::fs::read(happy_clip()).unwrap())
        .send()
        .unwrap();
    let job: Value = r.json().unwrap();
    let source = job["source"].as_str().unwrap();
    assert!(
        source.starts_with("upload") && !source.contains('/'),
        "{job}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn slow_uploads_lock_nobody_out() {
    let clip = happy_clip();
    let s = Server::start(
        &state_dir("slow"),
        &[
            "--allow-dir",
            media_dir().to_str().unwrap(),
            "--max-concurrent",
            "1",
            "--queue",
            "2",
        ],
        &[],
    );
    let addr: SocketAddr = s.url("").trim_start_matches("http://").parse().unwrap();
    // Three uploads that trickle one byte every two seconds.
    let mut slow: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut c = TcpStream::connect(addr).unwrap();
            write!(
                c,
                "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 1000\r\n\r\n"
            )
            .unwrap();
            c
        })
        .collect();
    let trickle = {
        let mut conns: Vec<TcpStream> = slow.iter().map(|c| c.try_clone().unwrap()).collect();
        std::thread::spawn(move || {
            for _ in 0..10 {
                for c in &mut conns {
                    let _ = c.write_all(b"x");
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let r = post_json(&s, "/invocations", &json!({"video_path": clip}));
    assert_eq!(r.status(), 200, "{}", s.log());
    let answered = started.elapsed();
    // The slow uploads are cut off (408) rather than held open for ever.
    for c in &mut slow {
        c.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let _ = trickle.join();
    eprintln!("the normal request was answered in {answered:?} beside three slow uploads");
}

#[test]
fn quoted_paths_are_played_literally() {
    let clip = happy_clip();
    // A launch description would read this name as a second branch writing
    // `quoted-injection` into the server's working folder (this test's).
    let out = PathBuf::from("quoted-injection");
    let _ = std::fs::remove_file(&out);
    let odd = media_dir().join("q\" ! filesink location=quoted-injection name=\"y.mp4");
    std::fs::copy(&clip, &odd).unwrap();
    let media = media_dir();
    let mut args = vec!["--allow-dir", media.to_str().unwrap()];
    args.extend_from_slice(&FAST_WINDOWS);
    let s = Server::start(&state_dir("quoted"), &args, &[]);
    let v = play_to_end(&s, odd.to_str().unwrap());
    assert_eq!(v["state"], "stopped", "{v}");
    assert!(v["windows"].as_u64().unwrap() >= 3, "{v}");
    assert!(!out.exists());
    // The same file as an invocation: analysed as itself.
    let r = post_json(&s, "/invocations", &json!({"video_path": odd}));
    assert_eq!(r.status(), 200);
}
