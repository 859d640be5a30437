//! Whisper states shared by every transcriber of one model: a transcription borrows a
//! state for its whole run and gives it back. A state holds whisper.cpp's caches and
//! compute buffers (~34 MB for tiny.en), so one per stream made memory grow with the
//! number of cameras although two cores never run more than two transcriptions
//! usefully at once. The pool makes at most `limit` states (by default the process's
//! cores, `GST_EMOTION_WHISPER_RUNS` overrides it); transcriptions beyond that wait
//! their turn first come, first served, so no stream starves.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::SpeechError;
use crate::speculation::Speculation;

/// The environment variable that sets how many transcriptions of one model run at once.
const RUNS_ENV: &str = "GST_EMOTION_WHISPER_RUNS";

/// How many transcriptions of one model run at once: `GST_EMOTION_WHISPER_RUNS`, else
/// the cores this process may use.
pub fn default_limit() -> usize {
    std::env::var(RUNS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The states of one model (`S`: a whisper state) and the queue of transcriptions
/// waiting for one.
pub(super) struct StatePool<S> {
    inner: Mutex<Inner<S>>,
    turn: Condvar,
    limit: usize,
}

struct Inner<S> {
    free: Vec<S>,
    /// States made so far (free or lent).
    made: usize,
    /// Tickets of the borrowers waiting, in arrival order.
    waiting: VecDeque<u64>,
    next_ticket: u64,
}

/// A state lent to one transcription; it goes back to the pool when dropped.
pub(super) struct Lease<'a, S> {
    pool: &'a StatePool<S>,
    state: Option<S>,
}

impl<S> std::ops::Deref for Lease<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        self.state
            .as_ref()
            .expect("a lease holds its state until dropped")
    }
}

impl<S> std::ops::DerefMut for Lease<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        self.state
            .as_mut()
            .expect("a lease holds its state until dropped")
    }
}

impl<S> Drop for Lease<'_, S> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            self.pool.lock().free.push(state);
            self.pool.turn.notify_all();
        }
    }
}

impl<S> StatePool<S> {
    /// A pool that makes at most `limit` states (at least one), starting with `first`
    /// (made at load, so that a model that cannot make one fails there).
    pub fn new(first: S, limit: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                free: vec![first],
                made: 1,
                waiting: VecDeque::new(),
                next_ticket: 0,
            }),
            turn: Condvar::new(),
            limit: limit.max(1),
        }
    }

    /// The most states this pool makes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// States made so far.
    pub fn made(&self) -> usize {
        self.lock().made
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A state for one transcription: a free one, a new one (`make`) while fewer than
    /// `limit` exist, else the first to come back — in the order the borrowers asked.
    /// A borrower for a `speculation` gives up its place when it is withdrawn.
    pub fn borrow(
        &self,
        make: impl FnOnce() -> Result<S, SpeechError>,
        speculation: Option<&Speculation>,
    ) -> Result<Lease<'_, S>, SpeechError> {
        let mut inner = self.lock();
        let ticket = inner.next_ticket;
        inner.next_ticket += 1;
        inner.waiting.push_back(ticket);
        loop {
            let first = inner.waiting.front() == Some(&ticket);
            if first && (!inner.free.is_empty() || inner.made < self.limit) {
                inner.waiting.pop_front();
                let state = match inner.free.pop() {
                    Some(s) => s,
                    None => {
                        inner.made += 1;
                        drop(inner);
                        let made = make();
                        if made.is_err() {
                            self.lock().made -= 1;
                        }
                        self.turn.notify_all();
                        return made.map(|s| Lease {
                            pool: self,
                            state: Some(s),
                        });
                    }
                };
                drop(inner);
                // The next in line may find another state free.
                self.turn.notify_all();
                return Ok(Lease {
                    pool: self,
                    state: Some(state),
                });
            }
            if speculation.is_some_and(Speculation::is_withdrawn) {
                inner.waiting.retain(|&t| t != ticket);
                drop(inner);
                self.turn.notify_all();
                return Err(SpeechError::Withdrawn);
            }
            // A withdrawal sets a flag and wakes no one: look again now and then.
            let wait = if speculation.is_some() {
                Duration::from_millis(20)
            } else {
                Duration::from_secs(1)
            };
            inner = self
                .turn
                .wait_timeout(inner, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Six borrowers queued behind the lent states, one after the other; returns the
    /// order they got a state in, how many states were made and the most lent at once.
    fn six_borrowers(limit: usize) -> (Vec<usize>, usize, usize) {
        let pool = Arc::new(StatePool::new(0usize, limit));
        let made = Arc::new(AtomicUsize::new(1));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let lent: Vec<_> = (0..limit)
            .map(|_| {
                pool.borrow(|| Ok(made.fetch_add(1, Ordering::SeqCst)), None)
                    .unwrap()
            })
            .collect();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for k in 0..6 {
            let (shared, made, running, most, order) = (
                pool.clone(),
                made.clone(),
                running.clone(),
                most.clone(),
                order.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let lease = shared
                    .borrow(|| Ok(made.fetch_add(1, Ordering::SeqCst)), None)
                    .unwrap();
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                order.lock().unwrap().push(k);
                std::thread::sleep(Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
                drop(lease);
            }));
            // Each asks after the one before is in the queue.
            while pool.lock().waiting.len() < k + 1 {
                std::thread::yield_now();
            }
        }
        drop(lent);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(pool.made(), made.load(Ordering::SeqCst));
        let order = order.lock().unwrap().clone();
        (order, pool.made(), most.load(Ordering::SeqCst))
    }

    #[test]
    fn never_more_states_than_the_limit() {
        let (order, made, most) = six_borrowers(2);
        assert_eq!(order.len(), 6);
        assert_eq!(made, 2, "states made");
        assert!(most <= 2, "{most} lent at once");
    }

    #[test]
    fn first_come_first_served() {
        // One state: each borrower has it alone, so the order is the order served.
        let (order, made, most) = six_borrowers(1);
        assert_eq!(order, (0..6).collect::<Vec<_>>());
        assert_eq!((made, most), (1, 1));
    }

    #[test]
    fn a_withdrawn_guess_leaves_the_queue() {
        let pool = StatePool::new((), 1);
        let held = pool.borrow(|| Ok(()), None).unwrap();
        let guess = Speculation::new();
        std::thread::scope(|s| {
            let waiting = s.spawn(|| pool.borrow(|| Ok(()), Some(&guess)).map(|_| ()));
            while pool.lock().waiting.is_empty() {
                std::thread::yield_now();
            }
            guess.withdraw();
            assert!(matches!(
                waiting.join().unwrap(),
                Err(SpeechError::Withdrawn)
            ));
        });
        assert!(pool.lock().waiting.is_empty());
        drop(held);
        // The next borrower is not held up by the one that left.
        assert!(pool.borrow(|| Ok(()), None).is_ok());
    }
}
