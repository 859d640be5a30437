//! Asynchronous jobs for long videos, kept in `--state-dir/jobs/ID/`:
//!
//! - `job.json` — the record (state, source, progress, error), replaced atomically at
//!   every state change; a source URL is recorded without its credentials;
//! - `credentials` — those credentials (`user:password`, mode 0600) while the job
//!   may still run; removed when it finishes;
//! - `input` — an uploaded video; remote sources are downloaded there when the job runs;
//! - `results.partial.jsonl` — windows as they finish (events are replayed from it);
//! - `results.jsonl`, `.csv`, `.vtt`, `.svg`, `.json` (the reference answer) — written
//!   atomically when the job is done, before `job.json` says so.
//!
//! A server killed at any moment and restarted finds every accepted job: those not
//! done are queued again and run from the start, so each completes exactly once.
//! The server writes all of this with umask 077 (folders 0700, files 0600).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use super::error::ApiError;
use super::source::{MediaSpec, Policy};
use super::work::{ElementSettings, Pool, Progress, start};
use crate::output::files::write_atomic;
use crate::output::{WindowResult, csv, jsonl, reference, timeline, vtt};

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Accepted, waiting for a pipeline.
    Queued,
    /// Being analysed.
    Running,
    /// Finished; results are available.
    Done,
    /// The video could not be analysed; see `error`.
    Failed,
    /// Cancelled by `DELETE`.
    Cancelled,
}

impl JobState {
    /// The name used in records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    fn finished(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

/// The persistent record of a job (`job.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// Where it is.
    pub state: JobState,
    /// The source, checked at submission (a URL without its credentials).
    pub source: MediaSpec,
    /// The source as the client named it (credentials removed; "upload (N bytes)"
    /// for an upload), which is what answers show.
    #[serde(default)]
    pub shown: String,
    /// Seconds since the Unix epoch.
    pub created: f64,
    /// When the (last) run started.
    pub started: Option<f64>,
    /// When it finished.
    pub finished: Option<f64>,
    /// The media's duration (s), once known.
    pub duration: Option<f64>,
    /// Seconds of media analysed so far.
    pub analysed: f64,
    /// Windows analysed so far.
    pub windows: u64,
    /// Why it failed.
    pub error: Option<Value>,
}

/// A job in memory: its record, its source's credentials, a cancel flag, and the
/// live event channel.
struct Entry {
    record: JobRecord,
    secret: Option<String>,
    cancel: Arc<AtomicBool>,
    events: broadcast::Sender<String>,
}

/// All jobs, and the queue of those waiting.
pub struct Jobs {
    dir: PathBuf,
    entries: Mutex<HashMap<String, Entry>>,
    queue: Mutex<VecDeque<String>>,
    notify: Notify,
    max_jobs: usize,
    /// Set at shutdown: the runner takes no new job.
    closing: AtomicBool,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Jobs {
    /// The jobs in `state_dir/jobs`: those not finished are queued again (oldest first).
    pub fn open(state_dir: &Path, max_jobs: usize) -> std::io::Result<Arc<Self>> {
        let dir = state_dir.join("jobs");
        std::fs::create_dir_all(&dir)?;
        let mut entries = HashMap::new();
        let mut pending = Vec::new();
        for e in std::fs::read_dir(&dir)?.flatten() {
            crate::output::files::remove_stale_temporaries(&e.path());
            let Ok(text) = std::fs::read_to_string(e.path().join("job.json")) else {
                continue;
            };
            let Ok(mut record) = serde_json::from_str::<JobRecord>(&text) else {
                continue;
            };
            let secret = std::fs::read_to_string(e.path().join(CREDENTIALS))
                .ok()
                .filter(|_| !record.state.finished());
            if !record.state.finished() {
                record.state = JobState::Queued;
                record.analysed = 0.0;
                record.windows = 0;
                let _ = std::fs::remove_file(e.path().join("results.partial.jsonl"));
                pending.push((record.created, record.id.clone()));
            }
            let (events, _) = broadcast::channel(256);
            entries.insert(
                record.id.clone(),
                Entry {
                    record,
                    secret,
                    cancel: Arc::new(AtomicBool::new(false)),
                    events,
                },
            );
        }
        pending.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Arc::new(Self {
            dir,
            entries: Mutex::new(entries),
            queue: Mutex::new(pending.into_iter().map(|(_, id)| id).collect()),
            notify: Notify::new(),
            max_jobs,
            closing: AtomicBool::new(false),
        }))
    }

    /// The folder of job `id`.
    pub fn job_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// A new job id and its (created) folder, for an upload to be stored in first.
    pub fn reserve(&self) -> Result<(String, PathBuf), ApiError> {
        let queued = self.queue.lock().unwrap_or_else(|e| e.into_inner()).len();
        if queued >= self.max_jobs {
            return Err(ApiError::busy(
                format!("{queued} jobs are waiting (--max-jobs); retry later"),
                30,
            ));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.job_dir(&id);
        std::fs::create_dir_all(&dir).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok((id, dir))
    }

    /// Accepts job `id` for `source`, which the client named `shown`: recorded on disk
    /// before this returns (the source's credentials apart, in a 0600 file).
    pub fn submit(
        &self,
        id: String,
        source: MediaSpec,
        shown: String,
    ) -> Result<JobRecord, ApiError> {
        let (source, secret) = source.split_credentials();
        if let Some(secret) = &secret {
            write_secret(&self.job_dir(&id).join(CREDENTIALS), secret)
                .map_err(|e| ApiError::internal(format!("recording the job: {e}")))?;
        }
        let record = JobRecord {
            id: id.clone(),
            state: JobState::Queued,
            shown,
            source,
            created: now(),
            started: None,
            finished: None,
            duration: None,
            analysed: 0.0,
            windows: 0,
            error: None,
        };
        self.persist(&record)
            .map_err(|e| ApiError::internal(format!("recording the job: {e}")))?;
        let (events, _) = broadcast::channel(256);
        self.lock().insert(
            id.clone(),
            Entry {
                record: record.clone(),
                secret,
                cancel: Arc::new(AtomicBool::new(false)),
                events,
            },
        );
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(id);
        self.notify.notify_one();
        Ok(record)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, record: &JobRecord) -> std::io::Result<()> {
        let dir = self.job_dir(&record.id);
        std::fs::create_dir_all(&dir)?;
        write_atomic(
            &dir.join("job.json"),
            serde_json::to_string_pretty(record)
                .unwrap_or_default()
                .as_bytes(),
        )
    }

    /// The record of job `id`.
    pub fn get(&self, id: &str) -> Option<JobRecord> {
        self.lock().get(id).map(|e| e.record.clone())
    }

    /// Counts of jobs by state.
    pub fn counts(&self) -> HashMap<JobState, u64> {
        let mut out = HashMap::new();
        for e in self.lock().values() {
            *out.entry(e.record.state).or_insert(0) += 1;
        }
        out
    }

    /// Live events of job `id` (window records as JSON) from now on.
    pub fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<String>> {
        self.lock().get(id).map(|e| e.events.subscribe())
    }

    /// Cancels job `id`: a queued job never runs, a running one stops.
    pub fn cancel(&self, id: &str) -> Result<JobRecord, ApiError> {
        let mut entries = self.lock();
        let e = entries
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
        if e.record.state.finished() {
            return Err(ApiError::conflict(format!(
                "job {id} is already {}",
                e.record.state.as_str()
            )));
        }
        e.cancel.store(true, Ordering::SeqCst);
        if e.record.state == JobState::Queued {
            e.record.state = JobState::Cancelled;
            e.record.finished = Some(now());
            let _ = self.persist(&e.record);
            e.secret = None;
            let _ = std::fs::remove_file(self.job_dir(id).join(CREDENTIALS));
            let _ = e.events.send(String::new());
        }
        Ok(e.record.clone())
    }

    /// Stops taking jobs (shutdown); running ones are asked to stop and stay queued.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    async fn next(&self) -> Option<String> {
        loop {
            if self.closing.load(Ordering::SeqCst) {
                return None;
            }
            let next = self
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            match next {
                Some(id) if self.get(&id).is_some_and(|r| r.state == JobState::Queued) => {
                    return Some(id);
                }
                Some(_) => continue,
                None => {
                    let notified = self.notify.notified();
                    if self.closing.load(Ordering::SeqCst) {
                        return None;
                    }
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), notified).await;
                }
            }
        }
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut JobRecord)) -> Option<JobRecord> {
        let mut entries = self.lock();
        let e = entries.get_mut(id)?;
        f(&mut e.record);
        Some(e.record.clone())
    }

    /// Runs queued jobs one after another as pipelines free up, until shutdown.
    pub async fn run(self: Arc<Self>, pool: Arc<Pool>, settings: ElementSettings, policy: Policy) {
        while let Some(id) = self.next().await {
            let Ok(permit) = pool.job_slot().await else {
                break;
            };
            if self.closing.load(Ordering::SeqCst) {
                break;
            }
            let jobs = self.clone();
            let (pool, settings, policy) = (pool.clone(), settings.clone(), policy.clone());
            tokio::spawn(async move {
                jobs.run_one(&id, permit, &pool, &settings, &policy).await;
            });
        }
    }

    async fn run_one(
        &self,
        id: &str,
        permit: tokio::sync::OwnedSemaphorePermit,
        pool: &Arc<Pool>,
        settings: &ElementSettings,
        policy: &Policy,
    ) {
        let Some((source, cancel, events)) = self.lock().get(id).map(|e| {
            let source = match &e.secret {
                Some(secret) => e.record.source.with_credentials(secret),
                None => e.record.source.clone(),
            };
            (source, e.cancel.clone(), e.events.clone())
        }) else {
            return;
        };
        if let Some(r) = self.update(id, |r| {
            r.state = JobState::Running;
            r.started = Some(now());
        }) {
            let _ = self.persist(&r);
        }
        let dir = self.job_dir(id);
        let outcome = match source.materialize(&dir, policy).await {
            Ok(uri) => {
                self.analyse(
                    id,
                    &dir,
                    uri,
                    permit,
                    pool,
                    settings,
                    cancel.clone(),
                    &events,
                )
                .await
            }
            Err(e) => Err(e),
        };
        // Shutting down (not a user's cancel): leave it queued for the next start.
        if pool.abort.load(Ordering::SeqCst) && !cancel.load(Ordering::SeqCst) {
            return;
        }
        let record = self.update(id, |r| {
            r.finished = Some(now());
            match &outcome {
                Ok(()) => r.state = JobState::Done,
                Err(_) if cancel.load(Ordering::SeqCst) => r.state = JobState::Cancelled,
                Err(e) => {
                    r.state = JobState::Failed;
                    r.error = Some(e.body()["error"].clone());
                }
            }
        });
        if let Some(r) = record {
            let _ = self.persist(&r);
        }
        if let Some(e) = self.lock().get_mut(id) {
            e.secret = None;
        }
        let _ = std::fs::remove_file(dir.join(CREDENTIALS));
        let _ = events.send(String::new());
    }

    #[allow(clippy::too_many_arguments)]
    async fn analyse(
        &self,
        id: &str,
        dir: &Path,
        uri: String,
        permit: tokio::sync::OwnedSemaphorePermit,
        pool: &Arc<Pool>,
        settings: &ElementSettings,
        cancel: Arc<AtomicBool>,
        events: &broadcast::Sender<String>,
    ) -> Result<(), ApiError> {
        use std::io::Write;
        let partial = dir.join("results.partial.jsonl");
        let mut file = std::fs::File::create(&partial)
            .map_err(|e| ApiError::internal(format!("{}: {e}", partial.display())))?;
        let mut rx = start(pool, uri, settings, permit, cancel);
        let mut windows: Vec<WindowResult> = Vec::new();
        while let Some(p) = rx.recv().await {
            match p {
                Progress::Duration(d) => {
                    self.update(id, |r| r.duration = Some(d));
                }
                Progress::Window(w) => {
                    let line = jsonl::line(&w);
                    let _ = file.write_all(line.as_bytes());
                    let _ = events.send(line.trim_end().to_string());
                    self.update(id, |r| {
                        r.analysed = r.analysed.max(w.end_seconds());
                        r.windows += 1;
                    });
                    windows.push(*w);
                }
                Progress::Done(result) => {
                    result?;
                    break;
                }
            }
        }
        write_results(dir, &windows)
            .map_err(|e| ApiError::internal(format!("writing the results: {e}")))?;
        let _ = std::fs::remove_file(&partial);
        Ok(())
    }

    /// The body of a job's status: the record plus its URLs.
    pub fn status(&self, r: &JobRecord) -> Value {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        let shown = if r.shown.is_empty() {
            r.source.describe()
        } else {
            r.shown.clone()
        };
        v["source"] = json!(shown);
        if let Some(o) = v.as_object_mut() {
            o.remove("shown");
        }
        v["progress"] = json!(
            r.duration
                .filter(|d| *d > 0.0)
                .map(|d| (r.analysed / d).min(1.0))
        );
        let base = format!("/v1/jobs/{}", r.id);
        v["urls"] = json!({
            "status": base,
            "events": format!("{base}/events"),
            "results": format!("{base}/results"),
            "jsonl": format!("{base}/results.jsonl"),
            "csv": format!("{base}/results.csv"),
            "vtt": format!("{base}/results.vtt"),
            "svg": format!("{base}/results.svg"),
            "json": format!("{base}/results.json"),
        });
        v
    }

    /// The windows analysed so far (the final results once done).
    pub fn windows_so_far(&self, id: &str) -> Vec<String> {
        let dir = self.job_dir(id);
        let text = std::fs::read_to_string(dir.join("results.jsonl"))
            .or_else(|_| std::fs::read_to_string(dir.join("results.partial.jsonl")))
            .unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The file in a job's folder that holds its source's credentials.
const CREDENTIALS: &str = "credentials";

/// Writes `secret` to `path`, readable by the server's user only.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(secret.as_bytes())?;
    f.sync_all()
}

/// Every result document of a finished job, each written atomically.
pub fn write_results(dir: &Path, windows: &[WindowResult]) -> std::io::Result<()> {
    let lines: String = windows.iter().map(jsonl::line).collect();
    write_atomic(&dir.join("results.csv"), csv::document(windows).as_bytes())?;
    write_atomic(&dir.join("results.vtt"), vtt::document(windows).as_bytes())?;
    write_atomic(&dir.join("results.svg"), timeline::svg(windows).as_bytes())?;
    write_atomic(
        &dir.join("results.json"),
        serde_json::to_string_pretty(&reference::document(windows))
            .unwrap_or_default()
            .as_bytes(),
    )?;
    write_atomic(&dir.join("results.jsonl"), lines.as_bytes())
}
