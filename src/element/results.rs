//! What the analysis worker shares with the element: the latest result and every
//! window's outcome by index (one lock), the counters, the flush generation and the
//! flushing signal.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::output::WindowResult;

/// The latest result, typed (overlay, tools) and as the structure `EmotionMeta` carries.
#[derive(Debug)]
pub struct Latest {
    /// The window's result.
    pub result: WindowResult,
    /// Its `emotion` structure, made once for every buffer carrying it.
    pub structure: gst::Structure,
}

/// State shared between the element and its worker thread.
#[derive(Default)]
pub struct Shared {
    /// Windows analysed.
    pub processed: AtomicU64,
    /// Windows dropped because the worker was behind (live input).
    pub dropped: AtomicU64,
    /// Bumped by a flush: results of older windows are discarded.
    pub generation: AtomicU64,
    /// Set while flushing or stopping: blocking waits give up.
    pub flushing: super::flushing::Flushing,
    /// The latest result, and every window's outcome by index for buffers held in
    /// step: one lock for both.
    pub results: Mutex<ResultLog>,
    /// Buffers that left with the latest result because their window missed the
    /// deadline (live, in step).
    pub misses: AtomicU64,
    /// Whether buffers wait for their own window (`results` is kept only then).
    pub in_step: AtomicBool,
    /// Windows whose analysis was done before they were confirmed (live utterances
    /// analysed while their closing pause was under way).
    pub early: AtomicU64,
    /// Live input: stalls (or ends) of the video and audio inputs, by `Input` index.
    pub stalls: [AtomicU64; 2],
    /// Live input: windows neither input delivered anything for.
    pub skipped: AtomicU64,
    /// Bumped by every start and stop (ends the watchdog of the previous run).
    pub starts: AtomicU64,
    /// Buffers taken or sent by `aggregate` (with `processed`: is anything moving?).
    pub moved: AtomicU64,
    /// The worker is analysing a window.
    pub busy: AtomicBool,
}

impl Shared {
    /// Whether a flush or stop is under way.
    pub fn is_flushing(&self) -> bool {
        self.flushing.is_on()
    }

    /// A number that changes whenever buffers move or windows are analysed.
    pub fn progress(&self) -> u64 {
        self.moved.load(Ordering::SeqCst) + self.processed.load(Ordering::SeqCst)
    }

    /// The latest result, if any.
    pub fn latest(&self) -> Option<Arc<Latest>> {
        self.results().latest.clone()
    }

    /// Makes `latest` the result outgoing buffers carry (`result-timing=latest`).
    pub fn set_latest(&self, latest: Option<Arc<Latest>>) {
        self.results().latest = latest;
    }

    /// The result log.
    pub fn results(&self) -> std::sync::MutexGuard<'_, ResultLog> {
        self.results.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records window `index`'s outcome for the buffers held in step (nothing is kept
    /// otherwise: with `latest`, buffers never ask).
    pub fn record(&self, index: u64, result: Option<Arc<Latest>>) {
        if self.in_step.load(Ordering::SeqCst) {
            self.results().insert(index, result);
        }
    }

    /// Back to a fresh start: no result, counters at 0.
    pub fn reset(&self) {
        self.results().clear();
        self.processed.store(0, Ordering::SeqCst);
        self.dropped.store(0, Ordering::SeqCst);
        self.misses.store(0, Ordering::SeqCst);
        self.early.store(0, Ordering::SeqCst);
        for s in &self.stalls {
            s.store(0, Ordering::SeqCst);
        }
        self.skipped.store(0, Ordering::SeqCst);
        self.flushing.end();
        self.in_step.store(false, Ordering::SeqCst);
    }

    /// A flush: results of windows queued before it are discarded.
    pub fn flush(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.results().clear();
        self.flushing.end();
    }
}

/// Results by window index, for the frames still to leave: `None` marks a window that
/// gave no result (dropped or failed).
#[derive(Debug, Default)]
pub struct ResultLog {
    results: BTreeMap<u64, Option<Arc<Latest>>>,
    /// The latest finished window's result, attached to outgoing video buffers.
    pub latest: Option<Arc<Latest>>,
}

impl ResultLog {
    /// Records window `index`'s outcome.
    pub fn insert(&mut self, index: u64, result: Option<Arc<Latest>>) {
        self.results.insert(index, result);
    }

    /// The outcome of window `index`: `None` while unknown; `Some(None)` when it gave
    /// no result.
    pub fn get(&self, index: u64) -> Option<Option<Arc<Latest>>> {
        self.results.get(&index).cloned()
    }

    /// The newest result of a window at or before `index`.
    pub fn at_or_before(&self, index: u64) -> Option<Arc<Latest>> {
        self.results
            .range(..=index)
            .rev()
            .find_map(|(_, r)| r.clone())
    }

    /// The newest result of all.
    pub fn newest(&self) -> Option<Arc<Latest>> {
        self.results.values().rev().find_map(Clone::clone)
    }

    /// Forgets windows before `index`, keeping the newest result among them (a later
    /// frame may fall back on it).
    pub fn forget_before(&mut self, index: u64) {
        let keep = self
            .results
            .range(..index)
            .rev()
            .find(|(_, r)| r.is_some())
            .map(|(k, r)| (*k, r.clone()));
        self.results = self.results.split_off(&index);
        if let Some((k, r)) = keep {
            self.results.insert(k, r);
        }
    }

    /// Forgets everything, the latest result too (flushing seek, start).
    pub fn clear(&mut self) {
        self.results.clear();
        self.latest = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_fall_back_on_the_newest_earlier_one() {
        let mut log = ResultLog::default();
        log.insert(0, None);
        assert!(log.at_or_before(0).is_none());
        assert_eq!(log.get(0).map(|r| r.is_none()), Some(true));
        assert!(log.get(1).is_none());
        log.forget_before(0);
        assert!(log.get(0).is_some());
    }
}
