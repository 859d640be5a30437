//! Work started on a guess that may be called off: live early analysis runs a window
//! whose closing pause has begun, before the segmenter confirms it; when speech
//! resumes instead, the guess is withdrawn and the work still under way stops (the
//! Whisper run aborts, a face branch not started yet is skipped), so it does not hold
//! up other cameras' windows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A guess that work was started on; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Speculation(Arc<AtomicBool>);

impl Speculation {
    /// A guess still standing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls the guess off: work on it stops as soon as it looks.
    pub fn withdraw(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the guess was called off.
    pub fn is_withdrawn(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The flag itself, for a C callback polling it (whisper.cpp's abort callback).
    pub(crate) fn flag(&self) -> &AtomicBool {
        &self.0
    }
}
