//! Face boxes for a window's sampled frames: runs of frames from one full MTCNN
//! detection to the next, run side by side or in turn, and remembered, so that
//! overlapping (sliding) windows do not find the faces of a frame twice.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use super::{FaceBox, Mtcnn};
use crate::bundle::Between;
use crate::infer::ModelError;
use crate::media::RgbImage;

/// Runs remembered per detector: a window's runs are looked up by the next window of
/// the same stream, and up to this many windows of other streams come between.
const REMEMBERED: usize = 64;

/// The boxes found on the latest runs of frames. A frame is named by its picture's
/// allocation, held weakly: the memory of the picture itself is freed with its last
/// window, while the held allocation keeps its address from being reused by another.
#[derive(Default)]
pub(super) struct RunCache {
    runs: Mutex<VecDeque<Remembered>>,
}

/// One run's frames and the boxes found on each.
struct Remembered {
    frames: Vec<Weak<RgbImage>>,
    between: Between,
    boxes: Vec<Vec<FaceBox>>,
}

impl RunCache {
    /// The boxes of the longest start of `run` that a remembered run with the same
    /// `between` rule began with (empty when none did). The boxes of a run's frame
    /// depend only on the frames up to it.
    fn known(&self, run: &[&Arc<RgbImage>], between: Between) -> Vec<Vec<FaceBox>> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.iter()
            .filter(|r| r.between == between)
            .map(|r| {
                let same = r
                    .frames
                    .iter()
                    .zip(run)
                    .take_while(|(w, a)| Weak::as_ptr(w) == Arc::as_ptr(a))
                    .count();
                (same, r)
            })
            .max_by_key(|(same, _)| *same)
            .map(|(same, r)| r.boxes[..same].to_vec())
            .unwrap_or_default()
    }

    /// Remembers the boxes found on `run`, replacing what was remembered of a run with
    /// the same first frame and forgetting runs whose pictures are gone.
    fn remember(&self, run: &[&Arc<RgbImage>], between: Between, boxes: &[Vec<FaceBox>]) {
        let Some(first) = run.first() else {
            return;
        };
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.retain(|r| {
            let starts = r.frames.first();
            starts.is_some_and(|w| w.strong_count() > 0)
                && !(r.between == between
                    && starts.is_some_and(|w| Weak::as_ptr(w) == Arc::as_ptr(first)))
        });
        runs.push_back(Remembered {
            frames: run.iter().map(|a| Arc::downgrade(a)).collect(),
            between,
            boxes: boxes.to_vec(),
        });
        while runs.len() > REMEMBERED {
            runs.pop_front();
        }
    }
}

/// Faces in each of `images` (highest score first per image), found side by side
/// ([`side_by_side`]).
pub fn detect_many(mtcnn: &Mtcnn, images: &[&RgbImage]) -> Result<Vec<Vec<FaceBox>>, ModelError> {
    side_by_side(images.len(), |k| mtcnn.detect(images[k]))
}

/// Runs `job(0..n)` side by side: one thread per core (at most `n`), each running
/// libtorch on one thread; results in order. MTCNN is many small operations; on a
/// machine busy with decoders and other streams, one multi-threaded call at a time
/// waits on its slowest thread at every operation (3x slower per frame beside one
/// busy thread on 2 cores, docs/benchmarks.md), while single-threaded calls side by
/// side do not. `GST_EMOTION_FACE_THREADS=N` sets the number of threads (1: in the
/// calling thread, with its libtorch threads).
pub fn side_by_side<T: Send>(
    n: usize,
    job: impl Fn(usize) -> Result<T, ModelError> + Sync,
) -> Result<Vec<T>, ModelError> {
    let threads = std::env::var("GST_EMOTION_FACE_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(crate::parallel::cores)
        .clamp(1, 16);
    // With one thread: in the calling thread, with its libtorch threads.
    crate::parallel::side_by_side(n, threads, || tch::set_num_threads(1), job)
        .into_iter()
        .collect()
}

/// How [`window_boxes`] runs its jobs (one per full detection).
pub enum Runs<'a> {
    /// Side by side on threads of their own ([`side_by_side`]).
    SideBySide,
    /// One after the other on this thread, calling the function between two (the
    /// inference thread answers windows that became due meanwhile).
    InTurn(&'a mut dyn FnMut()),
}

/// Face boxes on each of a window's sampled `frames` (of which the first `real` are
/// video, the rest padding without faces): a frame's upstream ROI boxes when it has
/// them; otherwise MTCNN on every `detect_every`-th frame, and on the frames between
/// (and a frame the sampler picked twice) the boxes held or followed `near` them by
/// O-Net. Each run of frames from one full detection to the next is one job, run as
/// `order` says. A run's boxes depend only on its frames, so what a run of an earlier,
/// overlapping window found on the same frames is taken, not found again.
pub fn window_boxes(
    mtcnn: &Mtcnn,
    frames: &[std::sync::Arc<RgbImage>],
    real: usize,
    detect_every: usize,
    between: Between,
    order: Runs<'_>,
) -> Result<Vec<Vec<FaceBox>>, ModelError> {
    let every = detect_every.max(1);
    // Runs of frames: the first gets a full detection, the others follow it.
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for (k, f) in frames.iter().enumerate().take(real) {
        if f.faces.is_some() {
            continue;
        }
        match runs.last_mut() {
            Some(run) if k % every != 0 || Arc::ptr_eq(&frames[run[0]], f) => run.push(k),
            _ => runs.push(vec![k]),
        }
    }
    let job = |r: usize| {
        let run: Vec<&Arc<RgbImage>> = runs[r].iter().map(|&k| &frames[k]).collect();
        // What an earlier window found on the same frames (sliding windows overlap,
        // and the next one starts its runs where this one's later runs started).
        let mut out = mtcnn.runs.known(&run, between);
        for i in out.len()..run.len() {
            let boxes = if i == 0 {
                mtcnn.detect(run[0])?
            } else if between == Between::Near && !Arc::ptr_eq(run[i - 1], run[i]) {
                mtcnn.track(run[i], &out[i - 1])?
            } else {
                out[i - 1].clone()
            };
            out.push(boxes);
        }
        mtcnn.runs.remember(&run, between, &out);
        Ok(out)
    };
    let found = match order {
        Runs::SideBySide => side_by_side(runs.len(), job)?,
        Runs::InTurn(pause) => {
            let mut found = Vec::with_capacity(runs.len());
            for r in 0..runs.len() {
                if r > 0 {
                    pause();
                }
                found.push(job(r)?);
            }
            found
        }
    };
    let mut boxes: Vec<Vec<FaceBox>> = frames
        .iter()
        .map(|f| {
            f.faces
                .iter()
                .flatten()
                .map(|r| FaceBox {
                    x1: r.x as f32,
                    y1: r.y as f32,
                    x2: (r.x + r.width) as f32,
                    y2: (r.y + r.height) as f32,
                    score: 1.0,
                    landmarks: None,
                })
                .collect()
        })
        .collect();
    for (run, out) in runs.iter().zip(found) {
        for (&k, b) in run.iter().zip(out) {
            boxes[k] = b;
        }
    }
    Ok(boxes)
}
