//! Whether the element is flushing or stopping, as a flag and as a wake-up: a
//! streaming thread blocked on the worker or the voice detector waits on a channel
//! that disconnects the moment a flush begins, instead of polling the flag.
//!
//! The flag ([`Flushing`]) is shared with the worker; the wake-up ([`Wake`]) is part
//! of the streaming state, so it needs no lock of its own: a flush start drops its
//! sender under the state's lock, and a stop drops it with the state.

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};

/// Set by a flush start or a stop, cleared when streaming may go on.
#[derive(Default)]
pub struct Flushing(AtomicBool);

impl Flushing {
    /// A flush or stop begins.
    pub fn begin(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Streaming may go on (flush stop, start).
    pub fn end(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    /// Whether a flush or stop is under way.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The wake-up of blocking waits: a channel that never carries a value; dropping
/// its sender disconnects every receiver handed out.
pub struct Wake {
    tx: Option<Sender<()>>,
    rx: Receiver<()>,
}

impl Default for Wake {
    fn default() -> Self {
        let (tx, rx) = bounded(0);
        Self { tx: Some(tx), rx }
    }
}

impl Wake {
    /// A flush begins: every wait on a receiver from [`Wake::waker`] gives up.
    pub fn fire(&mut self) {
        self.tx = None;
    }

    /// A receiver that disconnects when a flush begins (at once when `flushing` is
    /// on or the wake-up has fired): select on it next to the channel waited for.
    pub fn waker(&self, flushing: &Flushing) -> Receiver<()> {
        if flushing.is_on() || self.tx.is_none() {
            return gone();
        }
        self.rx.clone()
    }
}

/// A receiver whose sender is gone: a wait on it ends at once.
fn gone() -> Receiver<()> {
    bounded(0).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flush_wakes_a_waiter_and_a_new_one_gives_up_at_once() {
        let flushing = Flushing::default();
        let wake = std::sync::Arc::new(std::sync::Mutex::new(Wake::default()));
        let waker = wake.lock().unwrap().waker(&flushing);
        assert!(waker.recv_timeout(Duration::from_millis(10)).is_err());
        let w = wake.clone();
        let t = std::thread::spawn(move || w.lock().unwrap().fire());
        // Disconnected (woken), not a value.
        assert_eq!(waker.recv(), Err(crossbeam_channel::RecvError));
        t.join().unwrap();
        flushing.begin();
        assert_eq!(
            Wake::default().waker(&flushing).recv(),
            Err(crossbeam_channel::RecvError)
        );
        flushing.end();
        assert_eq!(
            wake.lock().unwrap().waker(&flushing).recv(),
            Err(crossbeam_channel::RecvError)
        );
        assert!(matches!(
            Wake::default()
                .waker(&flushing)
                .recv_timeout(Duration::from_millis(10)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout)
        ));
    }
}
