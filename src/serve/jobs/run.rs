//! Running jobs as pipelines free up: alone, from the queue in memory (records on
//! disk); with a fleet, from the shared queue, each taken job kept by a heartbeat and
//! given back (or left to be taken over) when this replica stops.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, broadcast};

use super::fleet::{Fleet, FleetError, Taken};
use super::{CREDENTIALS, Entry, JobRecord, JobState, Jobs, now, write_results};
use crate::output::{WindowResult, jsonl};
use crate::serve::error::ApiError;
use crate::serve::source::{MediaSpec, Policy};
use crate::serve::work::{ElementSettings, Pool, Progress, start};

/// What a job runs with.
struct Prepared {
    source: MediaSpec,
    cancel: Arc<AtomicBool>,
    events: broadcast::Sender<String>,
}

/// A job taken from the shared queue, kept this replica's by a heartbeat until dropped.
struct Held {
    taken: Taken,
    /// Set when another replica took the job over: this run's outcome is void.
    lost: Arc<AtomicBool>,
    beat: tokio::task::JoinHandle<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.beat.abort();
    }
}

/// How a pipeline is made for a job (cloned into each job's task).
#[derive(Clone)]
struct Runner {
    pool: Arc<Pool>,
    settings: ElementSettings,
    policy: Policy,
}

impl Jobs {
    /// Runs queued jobs as pipelines free up, until shutdown.
    pub async fn run(self: Arc<Self>, pool: Arc<Pool>, settings: ElementSettings, policy: Policy) {
        let runner = Runner {
            pool,
            settings,
            policy,
        };
        match self.fleet.clone() {
            Some(f) => self.run_shared(f, runner).await,
            None => self.run_alone(runner).await,
        }
    }

    async fn run_alone(self: Arc<Self>, runner: Runner) {
        while let Some(id) = self.next().await {
            let Ok(permit) = runner.pool.job_slot().await else {
                break;
            };
            if self.closing.load(Ordering::SeqCst) {
                break;
            }
            let (jobs, runner) = (self.clone(), runner.clone());
            tokio::spawn(async move {
                if let Some(prepared) = jobs.prepare_alone(&id) {
                    jobs.run_one(&id, prepared, None, permit, &runner).await;
                }
            });
        }
    }

    /// Takes jobs from the shared queue whenever a pipeline is free: first one a dead
    /// replica left, else the oldest waiting.
    async fn run_shared(self: Arc<Self>, f: Arc<Fleet>, runner: Runner) {
        let mut conn = None;
        let mut complained = false;
        while !self.closing.load(Ordering::SeqCst) {
            let Ok(permit) = runner.pool.job_slot().await else {
                break;
            };
            if self.closing.load(Ordering::SeqCst) {
                break;
            }
            if conn.is_none() {
                match f.connect(Duration::from_secs(5)).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        complain(&mut complained, &e);
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            match f.take(c).await {
                Ok(Some(taken)) => {
                    complained = false;
                    let (jobs, f, runner) = (self.clone(), f.clone(), runner.clone());
                    tokio::spawn(async move {
                        let id = taken.job.clone();
                        if let Some((prepared, held)) = jobs.prepare_shared(&f, taken).await {
                            jobs.run_one(&id, prepared, Some(held), permit, &runner)
                                .await;
                        }
                    });
                }
                Ok(None) => complained = false,
                Err(e) => {
                    complain(&mut complained, &e);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
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
                Some(id)
                    if self
                        .lock()
                        .get(&id)
                        .is_some_and(|e| e.record.state == JobState::Queued) =>
                {
                    return Some(id);
                }
                Some(_) => continue,
                None => {
                    let notified = self.notify.notified();
                    if self.closing.load(Ordering::SeqCst) {
                        return None;
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
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

    /// Job `id` (alone) marked running.
    fn prepare_alone(&self, id: &str) -> Option<Prepared> {
        let prepared = self.lock().get(id).map(|e| Prepared {
            source: match &e.secret {
                Some(secret) => e.record.source.with_credentials(secret),
                None => e.record.source.clone(),
            },
            cancel: e.cancel.clone(),
            events: e.events.clone(),
        })?;
        if let Some(r) = self.update(id, |r| {
            r.state = JobState::Running;
            r.started = Some(now());
        }) {
            let _ = self.persist(&r);
        }
        Some(prepared)
    }

    /// The job of `taken`, marked running in the store and kept by a heartbeat; `None`
    /// when there is nothing to run (cancelled or finished: the entry is done with; or
    /// the store failed: the entry is left to be taken again).
    async fn prepare_shared(&self, f: &Arc<Fleet>, taken: Taken) -> Option<(Prepared, Held)> {
        let id = taken.job.clone();
        let record = match f.get(&id).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                let _ = f.finish(&taken, None).await;
                return None;
            }
            Err(e) => {
                eprintln!("gst-emotion serve: job {id}: {e}");
                return None;
            }
        };
        let cancelled = f.cancel_requested(&id).await.unwrap_or(false);
        if record.state.finished() || cancelled {
            // Cancelled while queued, or finished by a replica that died before it
            // took the job off the queue: counted now.
            let mut r = record;
            if !r.state.finished() {
                r.state = JobState::Cancelled;
                r.finished = Some(now());
                if !f
                    .set_if(&r, &[JobState::Queued, JobState::Running])
                    .await
                    .unwrap_or(false)
                {
                    return None;
                }
            }
            let _ = std::fs::remove_file(self.job_dir(&id).join(CREDENTIALS));
            let _ = f.finish(&taken, Some(r.state)).await;
            return None;
        }
        let mut r = record;
        r.state = JobState::Running;
        r.started = Some(now());
        r.finished = None;
        r.analysed = 0.0;
        r.windows = 0;
        r.error = None;
        r.replica = Some(f.consumer.clone());
        match f.set_if(&r, &[JobState::Queued, JobState::Running]).await {
            Ok(true) => {}
            Ok(false) => {
                // Cancelled meanwhile.
                if let Ok(Some(r)) = f.get(&id).await
                    && r.state.finished()
                {
                    let _ = f.finish(&taken, Some(r.state)).await;
                }
                return None;
            }
            Err(_) => return None,
        }
        if taken.taken_over {
            eprintln!(
                "gst-emotion serve: job {id} taken over from a replica that stopped answering"
            );
        }
        let dir = self.job_dir(&id);
        let _ = std::fs::remove_file(dir.join("results.partial.jsonl"));
        let secret = std::fs::read_to_string(dir.join(CREDENTIALS)).ok();
        let source = match &secret {
            Some(s) => r.source.with_credentials(s),
            None => r.source.clone(),
        };
        let entry = Entry::new(r, secret);
        let prepared = Prepared {
            source,
            cancel: entry.cancel.clone(),
            events: entry.events.clone(),
        };
        self.lock().insert(id, entry);
        let lost = Arc::new(AtomicBool::new(false));
        let beat = tokio::spawn(heartbeat(
            f.clone(),
            taken.clone(),
            prepared.cancel.clone(),
            lost.clone(),
        ));
        Some((prepared, Held { taken, lost, beat }))
    }

    async fn run_one(
        &self,
        id: &str,
        prepared: Prepared,
        held: Option<Held>,
        permit: OwnedSemaphorePermit,
        runner: &Runner,
    ) {
        let Prepared {
            source,
            cancel,
            events,
        } = prepared;
        let dir = self.job_dir(id);
        let outcome = match source.materialize(&dir, &runner.policy).await {
            Ok(uri) => {
                self.analyse(id, &dir, uri, permit, runner, cancel.clone(), &events)
                    .await
            }
            Err(e) => Err(e),
        };
        if held.as_ref().is_some_and(|h| h.lost.load(Ordering::SeqCst)) {
            // Another replica runs it now.
            self.lock().remove(id);
            return;
        }
        // Shutting down (not a user's cancel): left queued for the next start, or given
        // back to the other replicas.
        if runner.pool.abort.load(Ordering::SeqCst) && !cancel.load(Ordering::SeqCst) {
            if let (Some(f), Some(held)) = (&self.fleet, held) {
                self.give_back(f, id, held).await;
            }
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
        match (&self.fleet, held, record) {
            (Some(f), Some(held), Some(r)) => finish_shared(f, &r, &held).await,
            (_, _, Some(r)) => {
                let _ = self.persist(&r);
            }
            _ => {}
        }
        if self.fleet.is_some() {
            self.lock().remove(id);
        } else if let Some(e) = self.lock().get_mut(id) {
            e.secret = None;
        }
        let _ = std::fs::remove_file(dir.join(CREDENTIALS));
        let _ = events.send(String::new());
    }

    /// Puts a job this replica is stopping back in the shared queue.
    async fn give_back(&self, f: &Fleet, id: &str, held: Held) {
        let record = self.lock().remove(id).map(|e| e.record);
        if let Some(mut r) = record {
            r.state = JobState::Queued;
            r.started = None;
            r.analysed = 0.0;
            r.windows = 0;
            let _ = f.set_if(&r, &[JobState::Running]).await;
        }
        if f.requeue(&held.taken).await.is_ok() {
            eprintln!("gst-emotion serve: job {id} given back to the queue");
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn analyse(
        &self,
        id: &str,
        dir: &Path,
        uri: String,
        permit: OwnedSemaphorePermit,
        runner: &Runner,
        cancel: Arc<AtomicBool>,
        events: &broadcast::Sender<String>,
    ) -> Result<(), ApiError> {
        use std::io::Write;
        let partial = dir.join("results.partial.jsonl");
        let mut file = std::fs::File::create(&partial)
            .map_err(|e| ApiError::internal(format!("{}: {e}", partial.display())))?;
        let mut rx = start(&runner.pool, uri, &runner.settings, permit, cancel);
        let mut windows: Vec<WindowResult> = Vec::new();
        let mut shared_at: Option<Instant> = None;
        while let Some(p) = rx.recv().await {
            let record = match p {
                Progress::Duration(d) => self.update(id, |r| r.duration = Some(d)),
                Progress::Window(w) => {
                    let line = jsonl::line(&w);
                    let _ = file.write_all(line.as_bytes());
                    let _ = events.send(line.trim_end().to_string());
                    windows.push(*w);
                    let end = windows.last().map_or(0.0, WindowResult::end_seconds);
                    self.update(id, |r| {
                        r.analysed = r.analysed.max(end);
                        r.windows += 1;
                    })
                }
                Progress::Done(result) => {
                    result?;
                    break;
                }
            };
            // Other replicas see the progress twice a second.
            if let (Some(f), Some(r)) = (&self.fleet, record)
                && shared_at.is_none_or(|t| t.elapsed() >= Duration::from_millis(500))
            {
                shared_at = Some(Instant::now());
                let _ = f.set_if(&r, &[JobState::Running]).await;
            }
        }
        write_results(dir, &windows)
            .map_err(|e| ApiError::internal(format!("writing the results: {e}")))?;
        let _ = std::fs::remove_file(&partial);
        Ok(())
    }
}

/// Records a finished job in the store, then takes it off the queue, retrying while
/// the store does not answer (for up to a minute; after that, the job is run again by
/// whichever replica takes it over).
async fn finish_shared(f: &Fleet, record: &JobRecord, held: &Held) {
    let mut recorded = false;
    for attempt in 0..30 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        if !recorded {
            match f.set_if(record, &[JobState::Running]).await {
                Ok(_) => recorded = true,
                Err(_) => continue,
            }
        }
        if f.finish(&held.taken, Some(record.state)).await.is_ok() {
            return;
        }
    }
    eprintln!(
        "gst-emotion serve: job {}: the job store did not answer; it will run again",
        record.id
    );
}

/// Keeps `taken` this replica's while its job runs, and passes on a cancel; sets
/// `lost` (and `cancel`) when another replica took it over.
async fn heartbeat(f: Arc<Fleet>, taken: Taken, cancel: Arc<AtomicBool>, lost: Arc<AtomicBool>) {
    let every = (f.claim_after / 4).clamp(Duration::from_millis(200), Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        if let Ok(false) = f.heartbeat(&taken).await {
            eprintln!(
                "gst-emotion serve: job {} was taken over by another replica; stopping it here",
                taken.job
            );
            lost.store(true, Ordering::SeqCst);
            cancel.store(true, Ordering::SeqCst);
            return;
        }
        if f.cancel_requested(&taken.job).await.unwrap_or(false) {
            cancel.store(true, Ordering::SeqCst);
        }
    }
}

/// Logs a job store failure once per outage.
fn complain(complained: &mut bool, e: &FleetError) {
    if !*complained {
        eprintln!("gst-emotion serve: {e}; jobs wait until it answers");
        *complained = true;
    }
}
