//! Running analyses for the server: at most `--max-concurrent` pipelines at once (the
//! loaded model is shared by all of them, so their windows batch together), a bounded
//! queue of requests waiting for one (full: 503 with Retry-After), and each pipeline on
//! its own thread reporting windows as they finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use gst::prelude::*;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::error::ApiError;
use super::metrics::Metrics;
use crate::output::WindowResult;
use crate::pipeline::run::{FileProgress, RunError, run_file_with};

/// How every pipeline's `emotionsense` is set up.
#[derive(Clone, Debug)]
pub struct ElementSettings {
    /// The bundle folder (resolved once at start).
    pub bundle: String,
    /// Device for the model.
    pub device: String,
    /// More properties, `name=value`.
    pub properties: Vec<String>,
}

/// The pipelines and the queue in front of them.
pub struct Pool {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    metrics: Arc<Metrics>,
    /// Set at shutdown's deadline: every running analysis stops.
    pub abort: Arc<AtomicBool>,
}

/// A place in the queue; dropping it gives the place back.
pub struct Ticket {
    pool: Arc<Pool>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pool.waiting.fetch_sub(1, Ordering::SeqCst);
        self.pool.metrics.queue_depth.dec();
    }
}

impl Ticket {
    /// Waits for a free pipeline.
    pub async fn slot(self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.pool
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::busy("the server is shutting down", 5))
    }
}

impl Pool {
    /// `max_concurrent` pipelines, at most `queue` requests waiting.
    pub fn new(max_concurrent: usize, queue: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
            metrics,
            abort: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A place in the queue, or 503 when it is full.
    pub fn enqueue(self: &Arc<Self>) -> Result<Ticket, ApiError> {
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        self.metrics.queue_depth.inc();
        let ticket = Ticket { pool: self.clone() };
        if waiting >= self.queue + self.slots.available_permits() {
            drop(ticket);
            return Err(ApiError::busy(
                "all pipelines are busy and the queue is full; retry later or submit a job",
                2,
            ));
        }
        Ok(ticket)
    }

    /// A free pipeline for a job (jobs wait in their own persistent queue).
    pub async fn job_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::busy("the server is shutting down", 5))
    }

    /// Closes the pool: nothing new starts.
    pub fn close(&self) {
        self.slots.close();
    }
}

/// What a running analysis reports.
#[derive(Debug)]
pub enum Progress {
    /// The media's duration (s).
    Duration(f64),
    /// A finished window.
    Window(Box<WindowResult>),
    /// The end: `Ok` when the media was analysed to its end.
    Done(Result<(), ApiError>),
}

/// Starts analysing `uri` on its own thread, holding `permit` until done; stops early
/// when `cancel` or the pool's abort flag is set.
pub fn start(
    pool: &Arc<Pool>,
    uri: String,
    settings: &ElementSettings,
    permit: OwnedSemaphorePermit,
    cancel: Arc<AtomicBool>,
) -> mpsc::UnboundedReceiver<Progress> {
    let (tx, rx) = mpsc::unbounded_channel();
    let settings = settings.clone();
    let abort = pool.abort.clone();
    let metrics = pool.metrics.clone();
    let spawned = std::thread::Builder::new()
        .name("serve-pipeline".into())
        .spawn({
            let tx = tx.clone();
            move || {
                metrics.pipelines.inc();
                let outcome = run(&uri, &settings, &tx, &metrics, &|| {
                    cancel.load(Ordering::SeqCst) || abort.load(Ordering::SeqCst)
                });
                metrics.pipelines.dec();
                drop(permit);
                super::release_free_memory();
                let _ = tx.send(Progress::Done(outcome));
            }
        });
    if let Err(e) = spawned {
        let _ = tx.send(Progress::Done(Err(ApiError::internal(format!(
            "cannot start a pipeline thread: {e}"
        )))));
    }
    rx
}

fn run(
    uri: &str,
    settings: &ElementSettings,
    tx: &mpsc::UnboundedSender<Progress>,
    metrics: &Metrics,
    cancel: &dyn Fn() -> bool,
) -> Result<(), ApiError> {
    let sense = gst::ElementFactory::make("emotionsense")
        .build()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    crate::pipeline::run::results_only(&sense);
    sense.set_property("bundle", &settings.bundle);
    sense.set_property("device", &settings.device);
    for p in &settings.properties {
        crate::pipeline::set_property_checked(&sense, p)
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    let result = run_file_with(
        uri,
        &sense,
        |p| {
            let _ = tx.send(match p {
                FileProgress::Duration(d) => Progress::Duration(d),
                FileProgress::Window(w) => {
                    metrics.window(&w);
                    Progress::Window(w)
                }
            });
        },
        cancel,
    );
    result.map_err(|e| match e {
        RunError::Cancelled => {
            ApiError::busy("the analysis was stopped (cancelled or shutting down)", 5)
        }
        e => ApiError::invalid_media(format!("the video could not be analysed: {e}")),
    })
}
