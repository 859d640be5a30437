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
//!
//! With `--jobs-store redis://…` the records and the queue live in Redis instead
//! ([`fleet`]), shared by every replica, and `--state-dir` is a folder they all mount;
//! `job.json` is then not written. The runners are in [`run`].

pub mod fleet;
mod run;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use super::error::ApiError;
use super::source::MediaSpec;
use crate::output::files::write_atomic;
use crate::output::{WindowResult, csv, jsonl, reference, timeline, vtt};
use fleet::Fleet;

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
    /// Every state, in the order a job goes through them.
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
    ];

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

    /// Whether the job is over (done, failed or cancelled).
    pub fn finished(self) -> bool {
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
    /// With a shared job store: the replica that runs (or ran) it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
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
    /// Every job (alone) or those running here (with a fleet).
    entries: Mutex<HashMap<String, Entry>>,
    /// Jobs waiting (alone).
    queue: Mutex<VecDeque<String>>,
    notify: Notify,
    max_jobs: usize,
    /// Set at shutdown: the runner takes no new job.
    closing: AtomicBool,
    /// The job store shared with other replicas, if any.
    fleet: Option<Arc<Fleet>>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Jobs {
    /// The jobs in `state_dir/jobs`. Alone, those not finished are queued again (oldest
    /// first); with `fleet`, the records and queue are the store's.
    pub fn open(
        state_dir: &Path,
        max_jobs: usize,
        fleet: Option<Fleet>,
    ) -> std::io::Result<Arc<Self>> {
        let dir = state_dir.join("jobs");
        std::fs::create_dir_all(&dir)?;
        let (entries, pending) = match fleet {
            Some(_) => Default::default(),
            None => Self::scan(&dir)?,
        };
        Ok(Arc::new(Self {
            dir,
            entries: Mutex::new(entries),
            queue: Mutex::new(pending),
            notify: Notify::new(),
            max_jobs,
            closing: AtomicBool::new(false),
            fleet: fleet.map(Arc::new),
        }))
    }

    /// The jobs recorded in `dir`, and those not finished, oldest first.
    #[allow(clippy::type_complexity)]
    fn scan(dir: &Path) -> std::io::Result<(HashMap<String, Entry>, VecDeque<String>)> {
        let mut entries = HashMap::new();
        let mut pending = Vec::new();
        for e in std::fs::read_dir(dir)?.flatten() {
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
            entries.insert(record.id.clone(), Entry::new(record, secret));
        }
        pending.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok((entries, pending.into_iter().map(|(_, id)| id).collect()))
    }

    /// The folder of job `id`.
    pub fn job_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The store shared with other replicas, if any.
    pub fn fleet(&self) -> Option<&Fleet> {
        self.fleet.as_deref()
    }

    /// A new job id and its (created) folder, for an upload to be stored in first.
    pub async fn reserve(&self) -> Result<(String, PathBuf), ApiError> {
        let queued = match &self.fleet {
            Some(f) => f.queue_counts().await?.0 as usize,
            None => self.queue.lock().unwrap_or_else(|e| e.into_inner()).len(),
        };
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

    /// Accepts job `id` for `source`, which the client named `shown`: recorded (on
    /// disk or in the store) before this returns, the source's credentials apart in a
    /// 0600 file.
    pub async fn submit(
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
            replica: None,
        };
        if let Some(f) = &self.fleet {
            f.submit(&record).await?;
            return Ok(record);
        }
        self.persist(&record)
            .map_err(|e| ApiError::internal(format!("recording the job: {e}")))?;
        self.lock()
            .insert(id.clone(), Entry::new(record.clone(), secret));
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
    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>, ApiError> {
        match &self.fleet {
            Some(f) => Ok(f.get(id).await?),
            None => Ok(self.lock().get(id).map(|e| e.record.clone())),
        }
    }

    /// Counts of jobs by state (over every replica with a fleet: those queued and
    /// running now, those finished since the store began).
    pub async fn counts(&self) -> Result<HashMap<String, u64>, ApiError> {
        let mut out = HashMap::new();
        for s in JobState::ALL {
            out.insert(s.as_str().to_string(), 0);
        }
        match &self.fleet {
            Some(f) => {
                let (waiting, running) = f.queue_counts().await?;
                out.insert("queued".into(), waiting);
                out.insert("running".into(), running);
                out.extend(f.finished_counts().await?);
            }
            None => {
                for e in self.lock().values() {
                    *out.entry(e.record.state.as_str().to_string()).or_insert(0) += 1;
                }
            }
        }
        Ok(out)
    }

    /// Live events of job `id` (window records as JSON) from now on, while it runs
    /// here; `None` otherwise (its windows are then read from its files).
    pub fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<String>> {
        self.lock().get(id).map(|e| e.events.subscribe())
    }

    /// Cancels job `id`: a queued job never runs, a running one stops.
    pub async fn cancel(&self, id: &str) -> Result<JobRecord, ApiError> {
        if let Some(f) = &self.fleet {
            return self.cancel_in(f, id).await;
        }
        let mut entries = self.lock();
        let e = entries
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
        if e.record.state.finished() {
            return Err(already(&e.record));
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

    /// [`Jobs::cancel`] with a fleet: a queued job is marked cancelled at once (unless
    /// a replica started it meanwhile); the replica running one stops it at its next
    /// heartbeat.
    async fn cancel_in(&self, f: &Fleet, id: &str) -> Result<JobRecord, ApiError> {
        let record = f
            .get(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
        if record.state.finished() {
            return Err(already(&record));
        }
        f.request_cancel(id).await?;
        if let Some(e) = self.lock().get(id) {
            e.cancel.store(true, Ordering::SeqCst);
        }
        if record.state == JobState::Queued {
            let mut cancelled = record.clone();
            cancelled.state = JobState::Cancelled;
            cancelled.finished = Some(now());
            // Counted and taken off the queue by the next replica that reads it.
            if f.set_if(&cancelled, &[JobState::Queued]).await? {
                let _ = std::fs::remove_file(self.job_dir(id).join(CREDENTIALS));
                return Ok(cancelled);
            }
        }
        Ok(f.get(id).await?.unwrap_or(record))
    }

    /// Stops taking jobs (shutdown); running ones are asked to stop and stay queued.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
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

impl Entry {
    fn new(record: JobRecord, secret: Option<String>) -> Self {
        let (events, _) = broadcast::channel(256);
        Self {
            record,
            secret,
            cancel: Arc::new(AtomicBool::new(false)),
            events,
        }
    }
}

/// 409 for a job that is over.
fn already(r: &JobRecord) -> ApiError {
    ApiError::conflict(format!("job {} is already {}", r.id, r.state.as_str()))
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
