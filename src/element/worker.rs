//! The analysis worker: a thread that feeds windows from the element's streaming
//! thread (a bounded crossbeam channel) to an [`Analyzer`] and posts each result.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, bounded};
use gst::glib;
use gst::prelude::*;

use super::results::{Latest, Shared};
use crate::analyzer::{Analyzer, AnalyzerConfig, Computed};
use crate::output::WindowResult;
use crate::speculation::Speculation;
use crate::window::{WindowJob, WindowKind};

enum Message {
    Window {
        job: WindowJob,
        generation: u64,
        /// When the window was handed over (its wait in the queue is reported).
        queued: Instant,
    },
    Drain(Sender<()>),
}

/// Outcome of handing a window to the worker.
#[derive(Debug, PartialEq, Eq)]
pub enum Submit {
    /// The worker has the window.
    Queued,
    /// The queue was full and the window was dropped (live input).
    Dropped,
    /// The element is flushing or stopping; the window was discarded.
    Flushing,
}

/// A window analysed ahead, on its own channel so that it never takes a real
/// window's place in the queue.
struct Early {
    job: WindowJob,
    generation: u64,
    guess: Speculation,
}

/// A running worker thread.
pub struct Worker {
    tx: Option<Sender<Message>>,
    early_tx: Option<Sender<Early>>,
    /// The early channel's other end, to replace a stale offer not yet taken.
    early_stale: Receiver<Early>,
    handle: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Worker {
    /// Starts a worker posting results for `element`; at most `queue` windows wait.
    pub fn start(
        element: &gst::Element,
        shared: Arc<Shared>,
        queue: usize,
        config: AnalyzerConfig,
        delay: Duration,
    ) -> std::io::Result<Self> {
        let (tx, rx) = bounded(queue.max(1));
        let (early_tx, early_rx) = bounded(1);
        let weak = element.downgrade();
        let thread_shared = shared.clone();
        let early_stale = early_rx.clone();
        let handle = std::thread::Builder::new()
            .name("emotionsense-worker".into())
            .spawn(move || run(rx, early_rx, weak, thread_shared, config, delay))?;
        Ok(Self {
            tx: Some(tx),
            early_tx: Some(early_tx),
            early_stale,
            handle: Some(handle),
            shared,
        })
    }

    /// Hands `job` to the worker. With `block`, waits while the queue is full (giving
    /// up when the element flushes or stops); without, drops the window when the queue
    /// is full. `stop` disconnects when a flush begins ([`super::flushing::Wake`]).
    pub fn submit(&self, job: WindowJob, block: bool, stop: &Receiver<()>) -> Submit {
        let Some(tx) = &self.tx else {
            return Submit::Flushing;
        };
        let generation = self.shared.generation.load(Ordering::SeqCst);
        let msg = Message::Window {
            job,
            generation,
            queued: Instant::now(),
        };
        if !block {
            return match tx.try_send(msg) {
                Ok(()) => Submit::Queued,
                Err(TrySendError::Full(_)) => {
                    self.shared.dropped.fetch_add(1, Ordering::SeqCst);
                    Submit::Dropped
                }
                Err(TrySendError::Disconnected(_)) => Submit::Flushing,
            };
        }
        if self.send_interruptible(msg, stop) {
            Submit::Queued
        } else {
            Submit::Flushing
        }
    }

    /// Offers `job`, a window not yet confirmed, for analysis ahead: done only when
    /// the worker is otherwise idle, kept until the window arrives through
    /// [`Worker::submit`] with the same inputs (then its result is posted at once),
    /// thrown away when another one does, stopped once `guess` is withdrawn. Never
    /// blocks, never displaces a window.
    pub fn submit_early(&self, job: WindowJob, guess: Speculation) {
        if let (Some(tx), Some(early)) = (&self.tx, &self.early_tx)
            && tx.is_empty()
        {
            let generation = self.shared.generation.load(Ordering::SeqCst);
            // A newer offer replaces one the worker has not taken yet.
            let _ = self.early_stale.try_recv();
            let _ = early.try_send(Early {
                job,
                generation,
                guess,
            });
        }
    }

    /// Waits until every window queued so far has been analysed (or `stop` says a
    /// flush began).
    pub fn drain(&self, stop: &Receiver<()>) {
        let (done_tx, done_rx) = bounded(1);
        if !self.send_interruptible(Message::Drain(done_tx), stop) {
            return;
        }
        crossbeam_channel::select! {
            recv(done_rx) -> _ => {}
            recv(stop) -> _ => {}
        }
    }

    /// Sends `msg`, waiting while the queue is full but giving up as soon as `stop`
    /// says a flush began. Returns whether the worker got the message.
    fn send_interruptible(&self, msg: Message, stop: &Receiver<()>) -> bool {
        let Some(tx) = &self.tx else { return false };
        crossbeam_channel::select! {
            send(tx, msg) -> sent => sent.is_ok(),
            recv(stop) -> _ => false,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.tx.take();
        self.early_tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What the worker takes next.
enum Next {
    /// From the queue of confirmed windows (always first).
    Queued(Message),
    /// A window offered early.
    Early(Early),
}

/// The next piece of work: confirmed windows first, then a window offered early;
/// `None` when the worker is being stopped.
fn next(rx: &Receiver<Message>, early: &Receiver<Early>) -> Option<Next> {
    match rx.try_recv() {
        Ok(m) => return Some(Next::Queued(m)),
        Err(TryRecvError::Disconnected) => return None,
        Err(TryRecvError::Empty) => {}
    }
    crossbeam_channel::select! {
        recv(rx) -> m => m.ok().map(Next::Queued),
        recv(early) -> e => match e {
            Ok(e) => Some(Next::Early(e)),
            // Only at shutdown (both senders go together): the real queue says so.
            Err(_) => rx.recv().ok().map(Next::Queued),
        },
    }
}

/// Clears the busy flag when a window's handling ends, however it ends.
struct Idle<'a>(&'a AtomicBool);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// A window analysed ahead: its job, generation and transcript and model answer.
type Ahead = Option<(WindowJob, u64, Computed)>;

fn run(
    rx: Receiver<Message>,
    early_rx: Receiver<Early>,
    element: glib::WeakRef<gst::Element>,
    shared: Arc<Shared>,
    config: AnalyzerConfig,
    delay: Duration,
) {
    let (mut analyzer, warnings) = Analyzer::new(config);
    if let Some(element) = element.upgrade() {
        for w in &warnings {
            gst::element_warning!(element, gst::LibraryError::Init, ("{w}"));
        }
    }
    let mut generation_seen = shared.generation.load(Ordering::SeqCst);
    let mut ahead: Ahead = None;
    // End of the last window taken: an early window not past it came too late.
    let mut done_until = 0u64;
    while let Some(msg) = next(&rx, &early_rx) {
        let (job, generation, queued) = match msg {
            Next::Queued(Message::Drain(done)) => {
                let _ = done.send(());
                continue;
            }
            Next::Queued(Message::Window {
                job,
                generation,
                queued,
            }) => (job, generation, queued),
            Next::Early(early) => {
                let current = shared.generation.load(Ordering::SeqCst);
                let fresh = early.generation != generation_seen || early.job.span.end > done_until;
                if early.generation == current && fresh && !early.guess.is_withdrawn() {
                    analyse_early(&mut analyzer, early, &mut ahead);
                }
                continue;
            }
        };
        shared.busy.store(true, Ordering::SeqCst);
        let _idle = Idle(&shared.busy);
        if generation != shared.generation.load(Ordering::SeqCst) {
            continue;
        }
        // The test's slow analysis: a window flushed before it starts is not analysed.
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        if generation != generation_seen {
            analyzer.reset();
            generation_seen = generation;
        }
        done_until = job.span.end;
        let dropped = shared.dropped.load(Ordering::SeqCst);
        let waited = queued.elapsed().as_secs_f64() * 1e3;
        let outcome = match take_ahead(&mut ahead, &job, generation, &shared) {
            Some(work) => analyzer.finish(&job, work),
            None => analyzer.analyse(&job),
        }
        .map(|mut r| {
            r.timings.insert(0, ("wait".into(), waited));
            r.windows_dropped = dropped;
            r
        });
        for w in analyzer.take_warnings() {
            gst::warning!(super::CAT, "{w}");
        }
        let Some(element) = element.upgrade() else {
            return;
        };
        // A flush while the window was being analysed: its result belongs to before.
        if generation == shared.generation.load(Ordering::SeqCst) {
            post(&element, &shared, &job, outcome);
        }
    }
}

/// Analyses `early`, a window not yet confirmed, into `ahead` (replacing what was
/// there).
fn analyse_early(analyzer: &mut Analyzer, early: Early, ahead: &mut Ahead) {
    let Early {
        job,
        generation,
        guess,
    } = early;
    if let Some((old, ..)) = ahead {
        gst::debug!(super::CAT, "early analysis of {:?} thrown away", old.span);
    }
    *ahead = match analyzer.compute(&job, Some(&guess)) {
        Ok(c) => Some((job, generation, c)),
        Err(e) => {
            gst::debug!(super::CAT, "early analysis of {:?}: {e}", job.span);
            None
        }
    };
    for w in analyzer.take_warnings() {
        gst::warning!(super::CAT, "{w}");
    }
}

/// The work done ahead for `job`, if that is the window it was done for; an
/// utterance that is not, or any later window, means it will not come (dropped).
fn take_ahead(
    ahead: &mut Ahead,
    job: &WindowJob,
    generation: u64,
    shared: &Shared,
) -> Option<Computed> {
    match ahead.take() {
        Some((early, g, work)) if g == generation && early.same_inputs(job) => {
            shared.early.fetch_add(1, Ordering::SeqCst);
            Some(work)
        }
        Some(kept) if job.kind != WindowKind::Utterance && job.span.end <= kept.0.span.start => {
            *ahead = Some(kept);
            None
        }
        Some((early, ..)) => {
            gst::debug!(super::CAT, "early analysis of {:?} thrown away", early.span);
            None
        }
        None => None,
    }
}

/// Records and posts a window's outcome. Like the reference service, a window that
/// fails is skipped with a warning and the stream goes on.
fn post(
    element: &gst::Element,
    shared: &Shared,
    job: &WindowJob,
    outcome: Result<WindowResult, impl std::fmt::Display>,
) {
    match outcome {
        Ok(result) => {
            let structure = result.to_structure();
            let message = gst::message::Element::builder(structure.clone())
                .src(element)
                .build();
            let index = result.span.index;
            let latest = Arc::new(Latest { result, structure });
            shared.record(index, Some(latest.clone()));
            shared.set_latest(Some(latest));
            shared.processed.fetch_add(1, Ordering::SeqCst);
            let _ = element.post_message(message);
        }
        Err(e) => {
            shared.record(job.span.index, None);
            gst::element_warning!(
                element,
                gst::StreamError::Failed,
                ("Window {} could not be analysed: {e}", job.span.index)
            )
        }
    }
}
