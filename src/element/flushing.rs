//! Whether the element is flushing or stopping, as a flag and as a wake-up: a
//! streaming thread blocked on the worker or the voice detector waits on a channel
//! that disconnects the moment a flush begins, instead of polling the flag.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};

/// Set by a flush start or a stop, cleared when streaming may go on.
pub struct Flushing {
    on: AtomicBool,
    /// While not flushing, the sender is kept; dropping it (a flush begins) wakes
    /// every wait on a receiver handed out by [`Flushing::waker`].
    wake: Mutex<(Option<Sender<()>>, Receiver<()>)>,
}

impl Default for Flushing {
    fn default() -> Self {
        let (tx, rx) = bounded(0);
        Self {
            on: AtomicBool::new(false),
            wake: Mutex::new((Some(tx), rx)),
        }
    }
}

impl Flushing {
    /// A flush or stop begins: blocking waits give up.
    pub fn begin(&self) {
        self.on.store(true, Ordering::SeqCst);
        lock(&self.wake).0 = None;
    }

    /// Streaming may go on (flush stop, start).
    pub fn end(&self) {
        let (tx, rx) = bounded(0);
        *lock(&self.wake) = (Some(tx), rx);
        self.on.store(false, Ordering::SeqCst);
    }

    /// Whether a flush or stop is under way.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// A receiver that never yields a value and disconnects when a flush begins (at
    /// once if one is under way): select on it next to the channel waited for.
    pub fn waker(&self) -> Receiver<()> {
        let wake = lock(&self.wake);
        if self.is_on() {
            // A receiver whose sender is gone.
            return bounded(0).1;
        }
        wake.1.clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flush_wakes_a_waiter_and_a_new_one_gives_up_at_once() {
        let f = std::sync::Arc::new(Flushing::default());
        let waker = f.waker();
        assert!(waker.recv_timeout(Duration::from_millis(10)).is_err());
        let g = f.clone();
        let t = std::thread::spawn(move || g.begin());
        // Disconnected (woken), not a value.
        assert_eq!(waker.recv(), Err(crossbeam_channel::RecvError));
        t.join().unwrap();
        assert!(f.is_on());
        assert_eq!(f.waker().recv(), Err(crossbeam_channel::RecvError));
        f.end();
        assert!(!f.is_on());
        assert!(matches!(
            f.waker().recv_timeout(Duration::from_millis(10)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout)
        ));
    }
}
