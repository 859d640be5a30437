//! The HTTP API (docs/serve.md has every endpoint with curl examples): routes,
//! handlers, and the middleware every request goes through — request id, bearer
//! token, metrics, one log line.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use super::AppState;
use super::error::ApiError;
use super::net::{CheckedUrl, redact};
use super::source::{MediaRequest, MediaSpec, save_body};
use super::streams::Streams;
use super::work::{Progress, start};
use crate::output::{WindowResult, csv, jsonl, reference, vtt};
use crate::pipeline::live::LiveSource;

type Shared = State<Arc<AppState>>;

/// Paths anyone may read: the health check, the metrics and the web page.
const OPEN: &[&str] = &["/ping", "/metrics", "/", "/app.js", "/style.css"];

/// Largest JSON request body.
const JSON_LIMIT: usize = 64 * 1024;

/// Every route of the server.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/invocations", post(invocations))
        .route("/v1/jobs", post(submit_job))
        .route("/v1/jobs/{id}", get(job_status).delete(cancel_job))
        .route("/v1/jobs/{id}/events", get(job_events))
        .route("/v1/jobs/{id}/{file}", get(job_results))
        .route("/v1/streams", post(start_stream).get(list_streams))
        .route("/v1/streams/{id}", get(stream_status).delete(stop_stream))
        .route("/v1/streams/{id}/events", get(stream_events))
        .route("/metrics", get(metrics))
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", WEB_INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", WEB_JS) }),
        )
        .route("/style.css", get(|| async { asset("text/css", WEB_CSS) }))
        .fallback(|| async { ApiError::not_found("no such endpoint (see docs/serve.md)") })
        .layer(middleware::from_fn_with_state(state.clone(), around))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

const WEB_INDEX: &str = include_str!("../../web/index.html");
const WEB_JS: &str = include_str!("../../web/app.js");
const WEB_CSS: &str = include_str!("../../web/style.css");

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// The error code of an error response, for metrics.
#[derive(Clone, Copy)]
struct ErrorCode(&'static str);

/// Request id, bearer token, metrics, and one log line per request.
async fn around(State(s): Shared, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    s.metrics.in_flight.inc();
    let authorised = match &s.token {
        None => true,
        Some(_) if OPEN.contains(&path.as_str()) => true,
        Some(token) => req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes()))),
    };
    req.extensions_mut().insert(id.clone());
    let mut response = if authorised {
        next.run(req).await
    } else {
        ApiError::unauthorized().into_response()
    };
    s.metrics.in_flight.dec();
    let status = response.status();
    let seconds = started.elapsed().as_secs_f64();
    s.metrics
        .requests
        .with_label_values(&[route.as_str(), status.as_str()])
        .inc();
    s.metrics
        .latency
        .with_label_values(&[route.as_str()])
        .observe(seconds);
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        s.metrics.errors.with_label_values(&[code.0]).inc();
    } else if status.is_client_error() || status.is_server_error() {
        s.metrics.errors.with_label_values(&[status.as_str()]).inc();
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    eprintln!(
        "{} {id} {method} {path} {} {:.0} ms",
        chrono_like_now(),
        status.as_u16(),
        seconds * 1e3
    );
    response
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ` (for log lines), without a date crate.
pub fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// An error response that remembers its code for the metrics.
fn error(e: ApiError) -> Response {
    let code = e.code;
    let mut r = e.into_response();
    r.extensions_mut().insert(ErrorCode(code));
    r
}

/// `GET /ping`: 200 with an empty body once the models are loaded, 503 before.
async fn ping(State(s): Shared) -> Response {
    if s.ready.load(Ordering::SeqCst) && !s.closing.load(Ordering::SeqCst) {
        StatusCode::OK.into_response()
    } else {
        error(ApiError::busy("the models are loading", 2))
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(s): Shared) -> Response {
    // Job counts over every replica with a shared job store; kept from the last
    // scrape while the store does not answer.
    let counts = s.jobs.counts().await;
    s.metrics.job_store_up.set(i64::from(counts.is_ok()));
    if let Ok(counts) = counts {
        for (state, n) in &counts {
            s.metrics.jobs.with_label_values(&[state]).set(*n as i64);
        }
        s.metrics
            .jobs_waiting
            .set(counts.get("queued").copied().unwrap_or(0) as i64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

/// What an answer may be, by `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Reference,
    JsonLines,
    Vtt,
    Csv,
}

fn negotiate(headers: &HeaderMap) -> Result<Format, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    for part in accept.split(',') {
        let t = part
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let f = match t.as_str() {
            "application/json" | "*/*" | "application/*" => Format::Reference,
            "application/jsonlines"
            | "application/x-ndjson"
            | "application/jsonl"
            | "application/x-jsonlines" => Format::JsonLines,
            "text/vtt" => Format::Vtt,
            "text/csv" => Format::Csv,
            _ => continue,
        };
        return Ok(f);
    }
    Err(ApiError::not_acceptable(
        "answers come as application/json (the reference's shape), application/jsonlines, \
         text/vtt or text/csv",
    ))
}

/// How a request body gives its video.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyKind {
    /// The reference's JSON shapes.
    Json,
    /// The video's bytes (`video/*`, `application/octet-stream`).
    Bytes,
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if kind == "application/json" {
        Ok(BodyKind::Json)
    } else if kind.starts_with("video/") || kind == "application/octet-stream" {
        Ok(BodyKind::Bytes)
    } else {
        Err(ApiError::unsupported_type(format!(
            "Content-Type {:?}: send application/json ({{\"video_path\": URI}}) or the \
             video's bytes as video/* or application/octet-stream",
            if kind.is_empty() { "(none)" } else { &kind }
        )))
    }
}

/// Refuses a body whose declared length is over its limit before reading any of it
/// (so a client that sent `Expect: 100-continue` gets 413 at once).
fn check_length(s: &AppState, headers: &HeaderMap, kind: BodyKind) -> Result<(), ApiError> {
    let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return Ok(());
    };
    match kind {
        BodyKind::Json if length > JSON_LIMIT as u64 => Err(ApiError::json_too_large(JSON_LIMIT)),
        BodyKind::Bytes if length > s.policy.max_body => {
            Err(ApiError::too_large(s.policy.max_body))
        }
        _ => Ok(()),
    }
}

/// A JSON body, at most [`JSON_LIMIT`] bytes.
async fn json_bytes(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, JSON_LIMIT)
        .await
        .map_err(|_| ApiError::json_too_large(JSON_LIMIT))
}

/// The source named by a JSON body, checked against the server's policy, and how
/// the client named it (for job records).
async fn json_source(s: &AppState, body: Body) -> Result<(MediaSpec, String), ApiError> {
    let bytes = json_bytes(body).await?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: give {\"video_path\": URI} or {\"bucket\": B, \"video_key\": K}",
        ));
    }
    let req: MediaRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the JSON body is not a request: {e}")))?;
    let given = match (&req.video_path, &req.bucket, &req.video_key) {
        (Some(p), _, _) => redact(p.trim()),
        (None, Some(b), Some(k)) => format!("s3://{b}/{k}"),
        _ => String::new(),
    };
    let spec = MediaSpec::from_request(req, &s.policy).await?;
    Ok((spec, given))
}

/// How a request body gives its video, refused at once when its declared length is
/// over the limit.
fn body_of(s: &AppState, headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let kind = body_kind(headers)?;
    check_length(s, headers, kind)?;
    Ok(kind)
}

/// The media of a request body of `kind` (from [`body_of`]) — the reference's JSON
/// shapes, or the video's bytes streamed into `dir` — and how the client named it.
async fn read_source(
    s: &AppState,
    kind: BodyKind,
    body: Body,
    dir: &std::path::Path,
) -> Result<(MediaSpec, String), ApiError> {
    match kind {
        BodyKind::Json => json_source(s, body).await,
        BodyKind::Bytes => {
            let path = dir.join("input");
            let bytes = save_body(body, &path, &s.policy).await?;
            Ok((MediaSpec::Upload(path), format!("upload ({bytes} bytes)")))
        }
    }
}

fn ensure_open(s: &AppState) -> Result<(), ApiError> {
    if s.closing.load(Ordering::SeqCst) {
        return Err(ApiError::busy("the server is shutting down", 5));
    }
    if !s.ready.load(Ordering::SeqCst) {
        return Err(ApiError::busy("the models are loading; retry shortly", 2));
    }
    Ok(())
}

/// `POST /invocations`: analyses one video within `--timeout` and answers in the
/// format `Accept` asks for; JSON Lines are streamed as windows finish.
async fn invocations(State(s): Shared, headers: HeaderMap, body: Body) -> Response {
    match invoke(s, headers, body).await {
        Ok(r) => r,
        Err(e) => error(e),
    }
}

async fn invoke(s: Arc<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    ensure_open(&s)?;
    let format = negotiate(&headers)?;
    // The video is stored (uploaded, or downloaded) before the request takes a place
    // in the queue: a slow client holds nobody else up.
    let work = tempfile::TempDir::new_in(&s.scratch)
        .map_err(|e| ApiError::internal(format!("scratch space: {e}")))?;
    let kind = body_of(&s, &headers)?;
    let (spec, _) = read_source(&s, kind, body, work.path()).await?;
    let uri = spec.materialize(work.path(), &s.policy).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(s.timeout);
    let ticket = s.pool.enqueue()?;
    let permit = tokio::time::timeout_at(deadline, ticket.slot())
        .await
        .map_err(|_| ApiError::timeout(s.timeout))??;
    let cancel = Arc::new(AtomicBool::new(false));
    let rx = start(&s.pool, uri, &s.settings, permit, cancel.clone());
    if format == Format::JsonLines {
        return Ok(stream_lines(rx, cancel, deadline, s.timeout, work));
    }
    let windows = collect(rx, &cancel, deadline, s.timeout).await?;
    drop(work);
    Ok(match format {
        Format::Reference => Json(reference::document(&windows)).into_response(),
        Format::Vtt => (
            [(header::CONTENT_TYPE, "text/vtt")],
            vtt::document(&windows),
        )
            .into_response(),
        Format::Csv => (
            [(header::CONTENT_TYPE, "text/csv")],
            csv::document(&windows),
        )
            .into_response(),
        Format::JsonLines => unreachable!("streamed above"),
    })
}

/// Every window of a run, or the error; cancels the run at the deadline (504).
async fn collect(
    mut rx: mpsc::UnboundedReceiver<Progress>,
    cancel: &AtomicBool,
    deadline: tokio::time::Instant,
    timeout: f64,
) -> Result<Vec<WindowResult>, ApiError> {
    let mut windows = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => {
                cancel.store(true, Ordering::SeqCst);
                return Err(ApiError::timeout(timeout));
            }
            Ok(None) => return Err(ApiError::internal("the analysis stopped unexpectedly")),
            Ok(Some(Progress::Window(w))) => windows.push(*w),
            Ok(Some(Progress::Duration(_))) => {}
            Ok(Some(Progress::Done(r))) => return r.map(|_| windows),
        }
    }
}

/// A chunked `application/jsonlines` body: one line per window as it finishes; an
/// error after the first line becomes a last `{"error": ...}` line.
fn stream_lines(
    mut rx: mpsc::UnboundedReceiver<Progress>,
    cancel: Arc<AtomicBool>,
    deadline: tokio::time::Instant,
    timeout: f64,
    work: tempfile::TempDir,
) -> Response {
    let (tx, out) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let _work = work;
        loop {
            let next = tokio::time::timeout_at(deadline, rx.recv()).await;
            let line = match next {
                Err(_) => {
                    cancel.store(true, Ordering::SeqCst);
                    Some(ApiError::timeout(timeout).body().to_string() + "\n")
                }
                Ok(Some(Progress::Window(w))) => Some(jsonl::line(&w)),
                Ok(Some(Progress::Duration(_))) => continue,
                Ok(Some(Progress::Done(Ok(())))) | Ok(None) => None,
                Ok(Some(Progress::Done(Err(e)))) => Some(e.body().to_string() + "\n"),
            };
            let Some(line) = line else { break };
            let last = line.starts_with("{\"error\"");
            if tx.send(Ok(Bytes::from(line))).await.is_err() {
                // The client went away: stop the analysis.
                cancel.store(true, Ordering::SeqCst);
                break;
            }
            if last {
                break;
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "application/jsonlines")],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(out)),
    )
        .into_response()
}

/// `POST /v1/jobs`: accepts a video for analysis in the background (202).
async fn submit_job(State(s): Shared, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        if s.closing.load(Ordering::SeqCst) {
            return Err(ApiError::busy("the server is shutting down", 5));
        }
        let kind = body_of(&s, &headers)?;
        let (id, dir) = s.jobs.reserve().await?;
        let accepted = async {
            let (spec, given) = read_source(&s, kind, body, &dir).await?;
            s.jobs.submit(id, spec, given).await
        };
        let record = match accepted.await {
            Ok(record) => record,
            Err(e) => {
                // Not accepted: nothing of it is kept.
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let status = s.jobs.status(&record);
        let location = format!("/v1/jobs/{}", record.id);
        Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, location)],
            Json(status),
        )
            .into_response())
    };
    result.await.unwrap_or_else(error)
}

fn valid_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no such id {:?}", redact(id))))
    }
}

/// `GET /v1/jobs/{id}`: state, progress, errors, URLs.
async fn job_status(State(s): Shared, Path(id): Path<String>) -> Response {
    let r = async {
        valid_id(&id)?;
        s.jobs
            .get(&id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))
    };
    match r.await {
        Ok(record) => Json(s.jobs.status(&record)).into_response(),
        Err(e) => error(e),
    }
}

/// `DELETE /v1/jobs/{id}`: cancels a queued or running job.
async fn cancel_job(State(s): Shared, Path(id): Path<String>) -> Response {
    let r = async {
        valid_id(&id)?;
        s.jobs.cancel(&id).await
    };
    match r.await {
        Ok(record) => Json(s.jobs.status(&record)).into_response(),
        Err(e) => error(e),
    }
}

/// `GET /v1/jobs/{id}/results[.jsonl|.csv|.vtt|.svg|.json]`: a finished job's results.
async fn job_results(State(s): Shared, Path((id, file)): Path<(String, String)>) -> Response {
    let r = async {
        valid_id(&id)?;
        let record = s
            .jobs
            .get(&id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
        let (name, kind) = match file.as_str() {
            "results" | "results.jsonl" => ("results.jsonl", "application/jsonlines"),
            "results.csv" => ("results.csv", "text/csv"),
            "results.vtt" => ("results.vtt", "text/vtt"),
            "results.svg" => ("results.svg", "image/svg+xml"),
            "results.json" => ("results.json", "application/json"),
            _ => return Err(ApiError::not_found(format!("no such result {file:?}"))),
        };
        if record.state != super::jobs::JobState::Done {
            return Err(ApiError::conflict(format!(
                "job {id} is {}: results come when it is done",
                record.state.as_str()
            )));
        }
        let bytes = tokio::fs::read(s.jobs.job_dir(&id).join(name))
            .await
            .map_err(|e| ApiError::internal(format!("{name}: {e}")))?;
        Ok(([(header::CONTENT_TYPE, kind)], bytes).into_response())
    };
    r.await.unwrap_or_else(error)
}

type EventStream = std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>>;

/// `GET /v1/jobs/{id}/events`: Server-Sent Events — `window` (a JSONL record) for
/// every window so far and as each finishes, then `end` (the job's status). A job
/// running on another replica is followed through its files (twice a second).
async fn job_events(State(s): Shared, Path(id): Path<String>) -> Response {
    if let Err(e) = valid_id(&id) {
        return error(e);
    }
    match s.jobs.get(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(ApiError::not_found(format!("no job {id}"))),
        Err(e) => return error(e),
    }
    let mut live = s.jobs.subscribe(&id);
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        let mut sent = -1i64;
        // The windows in the job's files not sent yet.
        let catch_up = |sent: &mut i64| {
            let lines: Vec<(i64, String)> = s
                .jobs
                .windows_so_far(&id)
                .into_iter()
                .map(|l| (window_index(&l), l))
                .filter(|(i, _)| *i > *sent)
                .collect();
            *sent = lines.iter().map(|(i, _)| *i).fold(*sent, i64::max);
            lines.into_iter().map(|(_, l)| l).collect::<Vec<_>>()
        };
        if !send_windows(&tx, catch_up(&mut sent)).await {
            return;
        }
        loop {
            // A store that does not answer: keep the client waiting (the stream has
            // keep-alives) rather than say the job ended.
            let finished = match s.jobs.get(&id).await {
                Ok(r) => r.is_none_or(|r| r.state.finished()),
                Err(_) => false,
            };
            if finished {
                break;
            }
            let fresh = match live.as_mut() {
                // Not running here: its files tell.
                None => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    catch_up(&mut sent)
                }
                Some(rx) => match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                    Ok(Ok(line)) if line.is_empty() => {
                        live = None;
                        continue;
                    }
                    Ok(Ok(line)) if window_index(&line) > sent => {
                        sent = window_index(&line);
                        vec![line]
                    }
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                        catch_up(&mut sent)
                    }
                    Ok(Err(_)) => {
                        live = None;
                        continue;
                    }
                    Ok(Ok(_)) | Err(_) => continue,
                },
            };
            if !send_windows(&tx, fresh).await {
                return;
            }
        }
        // Windows that finished after the last look but before the end.
        send_windows(&tx, catch_up(&mut sent)).await;
        let status = match s.jobs.get(&id).await {
            Ok(Some(r)) => s.jobs.status(&r),
            _ => serde_json::Value::Null,
        };
        let _ = tx
            .send(Ok(Event::default().event("end").data(status.to_string())))
            .await;
    });
    let stream: EventStream = Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Sends each line as a `window` event; false once the client has gone.
async fn send_windows(tx: &mpsc::Sender<Result<Event, Infallible>>, lines: Vec<String>) -> bool {
    for line in lines {
        if tx
            .send(Ok(Event::default().event("window").data(line)))
            .await
            .is_err()
        {
            return false;
        }
    }
    true
}

/// The `index` of a window's JSONL record (-1 if it has none).
fn window_index(line: &str) -> i64 {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["index"].as_i64())
        .unwrap_or(-1)
}

/// A live stream request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamRequest {
    /// `rtsp://…`, `/dev/videoN`, a file under `--allow-dir`, or an http(s) URL.
    uri: String,
    /// A name for it (default: the source).
    name: Option<String>,
}

/// `POST /v1/streams`: starts analysing a live source (201).
async fn start_stream(State(s): Shared, headers: HeaderMap, body: Body) -> Response {
    let r = async {
        ensure_open(&s)?;
        let kind = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !kind.starts_with("application/json") {
            return Err(ApiError::unsupported_type(
                "send application/json: {\"uri\": \"rtsp://...\", \"name\": \"...\"}",
            ));
        }
        check_length(&s, &headers, BodyKind::Json)?;
        let bytes = json_bytes(body).await?;
        let req: StreamRequest = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("the JSON body is not a stream request: {e}"))
        })?;
        let source = stream_source(&s, req.uri.trim()).await?;
        let shown = redact(req.uri.trim());
        let name = req
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| shown.clone());
        if name.len() > 100 || name.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "name: at most 100 printable characters",
            ));
        }
        let status = s.streams.start(source, shown, name, &s.settings)?;
        let location = format!("/v1/streams/{}", status.id);
        Ok((
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            Json(Streams::body(&status)),
        )
            .into_response())
    };
    r.await.unwrap_or_else(error)
}

/// The source a live stream may open, by the server's policy. Remote URLs are parsed
/// and checked here once, and the pipeline connects only where the check looked:
/// `rtsp://` to the checked address (with every RTSP request checked before it is
/// sent), `http(s)://` through the server's own client (redirects re-checked).
async fn stream_source(s: &AppState, uri: &str) -> Result<LiveSource, ApiError> {
    if uri.starts_with("/dev/") {
        let number = uri.strip_prefix("/dev/video").unwrap_or("");
        if number.is_empty() || number.len() > 3 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::bad_request(format!(
                "{uri:?}: a capture device is /dev/videoN"
            )));
        }
        if !s.policy.allow_devices {
            return Err(ApiError::forbidden(
                "capture devices are not allowed: the server was started without --allow-devices",
            ));
        }
        return Ok(LiveSource::Device(uri.to_string()));
    }
    // A remote URL is parsed and checked once, here.
    let scheme = uri.split_once("://").map(|(p, _)| p.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https") => {
            let checked = CheckedUrl::parse(uri, &s.policy).await?;
            return Ok(LiveSource::Feed {
                url: uri.to_string(),
                feeder: super::net::http_feeder(checked, s.policy.clone()),
            });
        }
        Some("rtsp" | "rtsps") => {
            let checked = CheckedUrl::parse(uri, &s.policy).await?;
            // rtsps:// keeps its host name, which its certificate is checked against.
            let location = if checked.url.scheme() == "rtsps" {
                checked.url.clone()
            } else {
                checked.pinned()
            };
            let only = location
                .host_str()
                .map(|h| (h.to_ascii_lowercase(), super::net::port(&location)));
            return Ok(LiveSource::Rtsp {
                location: location.to_string(),
                only,
            });
        }
        _ => {}
    }
    match MediaSpec::from_uri(uri, &s.policy).await? {
        MediaSpec::File(p) => {
            LiveSource::file(&p).map_err(|e| ApiError::internal(format!("{}: {e}", p.display())))
        }
        MediaSpec::Http(_) | MediaSpec::Rtsp(_) | MediaSpec::S3 { .. } | MediaSpec::Upload(_) => {
            Err(ApiError::bad_request(
                "a live stream needs rtsp://, http(s)://, a capture device or a local file",
            ))
        }
    }
}

async fn list_streams(State(s): Shared) -> Response {
    Json(json!({"streams": s.streams.list().iter().map(Streams::body).collect::<Vec<_>>()}))
        .into_response()
}

async fn stream_status(State(s): Shared, Path(id): Path<String>) -> Response {
    match valid_id(&id).and_then(|_| {
        s.streams
            .get(&id)
            .ok_or_else(|| ApiError::not_found(format!("no stream {id}")))
    }) {
        Ok(st) => Json(Streams::body(&st)).into_response(),
        Err(e) => error(e),
    }
}

async fn stop_stream(State(s): Shared, Path(id): Path<String>) -> Response {
    match valid_id(&id).and_then(|_| s.streams.stop(&id)) {
        Ok(st) => Json(Streams::body(&st)).into_response(),
        Err(e) => error(e),
    }
}

/// `GET /v1/streams/{id}/events`: Server-Sent Events — `window` for every window from
/// now on, `end` when the stream stops.
async fn stream_events(State(s): Shared, Path(id): Path<String>) -> Response {
    if let Err(e) = valid_id(&id) {
        return error(e);
    }
    let Some(mut live) = s.streams.subscribe(&id) else {
        return error(ApiError::not_found(format!("no stream {id}")));
    };
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        loop {
            let event = match live.recv().await {
                Ok(line) if line.is_empty() => break,
                Ok(line) => Event::default().event("window").data(line),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    Event::default().event("lagged").data(n.to_string())
                }
                Err(_) => break,
            };
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
        }
        let status = s
            .streams
            .get(&id)
            .map(|st| Streams::body(&st))
            .unwrap_or_default();
        let _ = tx
            .send(Ok(Event::default().event("end").data(status.to_string())))
            .await;
    });
    let stream: EventStream = Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
