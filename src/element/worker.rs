//! The analysis worker: a thread that owns all heavy per-window work, fed by a bounded
//! crossbeam channel from the element's streaming thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError, bounded};
use gst::glib;
use gst::prelude::*;

use crate::output::WindowResult;
use crate::window::WindowJob;

/// Extra time the worker spends per window; lets tests make the worker slower than
/// real time. Zero in normal use.
static WORKER_DELAY_MS: AtomicU64 = AtomicU64::new(0);

/// Test hook: makes every worker in the process sleep this long per window.
#[doc(hidden)]
pub fn set_worker_delay_for_tests(delay: Duration) {
    WORKER_DELAY_MS.store(delay.as_millis() as u64, Ordering::SeqCst);
}

enum Message {
    Window { job: WindowJob, generation: u64 },
    Drain(Sender<()>),
}

/// State shared between the element and its worker thread.
#[derive(Default)]
pub struct Shared {
    /// The latest finished window's result, attached to outgoing video buffers.
    pub latest: Mutex<Option<gst::Structure>>,
    /// Windows analysed.
    pub processed: AtomicU64,
    /// Windows dropped because the worker was behind (live input).
    pub dropped: AtomicU64,
    /// Bumped by a flush: results of older windows are discarded.
    pub generation: AtomicU64,
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

/// A running worker thread.
pub struct Worker {
    tx: Option<Sender<Message>>,
    handle: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Worker {
    /// Starts a worker posting results for `element`; at most `queue` windows wait.
    pub fn start(
        element: &gst::Element,
        shared: Arc<Shared>,
        queue: usize,
    ) -> std::io::Result<Self> {
        let (tx, rx) = bounded(queue.max(1));
        let weak = element.downgrade();
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("emotionsense-worker".into())
            .spawn(move || run(rx, weak, thread_shared))?;
        Ok(Self {
            tx: Some(tx),
            handle: Some(handle),
            shared,
        })
    }

    /// Hands `job` to the worker. With `block`, waits while the queue is full (checking
    /// `flushing` so a flush or state change never deadlocks); without, drops the
    /// window when the queue is full.
    pub fn submit(&self, job: WindowJob, block: bool, flushing: &dyn Fn() -> bool) -> Submit {
        let Some(tx) = &self.tx else {
            return Submit::Flushing;
        };
        let generation = self.shared.generation.load(Ordering::SeqCst);
        let msg = Message::Window { job, generation };
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
        if send_interruptible(tx, msg, flushing) {
            Submit::Queued
        } else {
            Submit::Flushing
        }
    }

    /// Waits until every window queued so far has been analysed (or `flushing` says stop).
    pub fn drain(&self, flushing: &dyn Fn() -> bool) {
        let Some(tx) = &self.tx else { return };
        let (done_tx, done_rx) = bounded(1);
        if !send_interruptible(tx, Message::Drain(done_tx), flushing) {
            return;
        }
        while !flushing() {
            if done_rx.recv_timeout(Duration::from_millis(20)).is_ok() {
                return;
            }
        }
    }
}

/// Sends `msg`, waiting while the queue is full but giving up as soon as `flushing`
/// says so. Returns whether the worker got the message.
fn send_interruptible(tx: &Sender<Message>, mut msg: Message, flushing: &dyn Fn() -> bool) -> bool {
    loop {
        if flushing() {
            return false;
        }
        match tx.send_timeout(msg, Duration::from_millis(20)) {
            Ok(()) => return true,
            Err(SendTimeoutError::Timeout(m)) => msg = m,
            Err(SendTimeoutError::Disconnected(_)) => return false,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(rx: Receiver<Message>, element: glib::WeakRef<gst::Element>, shared: Arc<Shared>) {
    for msg in rx {
        match msg {
            Message::Drain(done) => {
                let _ = done.send(());
            }
            Message::Window { job, generation } => {
                let delay = WORKER_DELAY_MS.load(Ordering::Relaxed);
                if delay > 0 {
                    std::thread::sleep(Duration::from_millis(delay));
                }
                if generation != shared.generation.load(Ordering::SeqCst) {
                    continue;
                }
                let result = WindowResult::measure(&job, shared.dropped.load(Ordering::SeqCst));
                let s = result.to_structure();
                *shared.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.clone());
                shared.processed.fetch_add(1, Ordering::SeqCst);
                if let Some(element) = element.upgrade() {
                    let _ = element
                        .post_message(gst::message::Element::builder(s).src(&element).build());
                }
            }
        }
    }
}
