//! Work spread over a few threads of the calling scope: jobs `0..n` taken in turn by
//! whichever thread is free, results in job order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `job(k)` for every `k` in `0..n` on `threads` scoped threads (at most `n`),
/// each calling `start` once before its first job; in the calling thread, without
/// `start`, when that leaves fewer than two. Results in order.
pub fn side_by_side<T: Send>(
    n: usize,
    threads: usize,
    start: impl Fn() + Sync,
    job: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    if threads.min(n) <= 1 {
        return (0..n).map(job).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<T>>> = (0..n).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.min(n) {
            s.spawn(|| {
                start();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= n {
                        break;
                    }
                    let r = job(k);
                    *results[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                // Every job ran: a panicking one ends the scope with the panic.
                .expect("every job ran")
        })
        .collect()
}

/// The machine's cores (1 when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |c| c.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_runs_once_and_results_keep_their_order() {
        let started = AtomicUsize::new(0);
        let out = side_by_side(
            10,
            3,
            || {
                started.fetch_add(1, Ordering::Relaxed);
            },
            |k| k * k,
        );
        assert_eq!(out, (0..10).map(|k| k * k).collect::<Vec<_>>());
        assert_eq!(started.load(Ordering::Relaxed), 3);
        // One thread: in the caller, without `start`.
        assert_eq!(side_by_side(2, 1, || panic!("not started"), |k| k), [0, 1]);
    }
}
