//! Which window's result a video frame carries (docs/metadata.md, "Timing"), so an
//! annotated video is the same on every machine:
//!
//! - `sliding`: of the windows containing the frame's time `t`, the one whose centre is
//!   nearest `t` (the later one on a tie);
//! - `utterance`: the utterance containing `t`, else the last one that ended before
//!   `t`; before the first utterance, none;
//! - `auto`: the window containing `t` (the windows tile the timeline; in a gap shorter
//!   than `min-window-length` between two of them, the earlier one).
//!
//! At the end of the stream a frame whose window was cut (too short to analyse)
//! carries the last window that started at or before it.

use std::collections::{BTreeMap, VecDeque};

use crate::window::{SlidingSchedule, WindowMode, WindowSpan};

/// What a frame at a given time carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Designation {
    /// The result of the window with this index.
    Window(u64),
    /// No window covers or precedes it: an empty `EmotionMeta`.
    Empty,
    /// Not known yet: the window it needs has not been made.
    Pending,
}

/// The windows made so far, to designate frames' windows.
#[derive(Debug)]
pub struct Timing {
    mode: WindowMode,
    schedule: SlidingSchedule,
    spans: BTreeMap<u64, WindowSpan>,
}

impl Timing {
    /// Timing for windows cut in `mode` (`schedule` for sliding windows).
    pub fn new(mode: WindowMode, schedule: SlidingSchedule) -> Self {
        Self {
            mode,
            schedule,
            spans: BTreeMap::new(),
        }
    }

    /// A window was made (handed to the analysis, or dropped).
    pub fn add(&mut self, span: WindowSpan) {
        self.spans.insert(span.index, span);
    }

    /// Forgets windows before `index` (their frames have all left).
    pub fn forget_before(&mut self, index: u64) {
        self.spans = self.spans.split_off(&index);
    }

    /// Forgets everything (flushing seek).
    pub fn clear(&mut self) {
        self.spans.clear();
    }

    /// The window a frame at running time `t` carries. `settled` is the running time
    /// before which every window is already made (utterance and auto modes); `ended`
    /// says no window will be made any more.
    pub fn designate(&self, t: u64, settled: u64, ended: bool) -> Designation {
        let last_started = || {
            self.spans
                .range(..)
                .rev()
                .find(|(_, s)| s.start <= t)
                .map_or(Designation::Empty, |(k, _)| Designation::Window(*k))
        };
        match self.mode {
            WindowMode::Sliding => {
                let (len, hop) = (self.schedule.length.max(1), self.schedule.hop.max(1));
                let last = t / hop;
                // With a hop longer than the window, a frame between windows carries
                // the one before it.
                let first = (t + 1).saturating_sub(len).div_ceil(hop).min(last);
                let best = (first..=last).min_by_key(|k| {
                    let centre = k * hop + len / 2;
                    // Nearest centre; on a tie the later window (smaller key sorts first).
                    (centre.abs_diff(t), u64::MAX - k)
                });
                match best {
                    Some(k) if self.spans.contains_key(&k) => Designation::Window(k),
                    _ if ended => last_started(),
                    _ => Designation::Pending,
                }
            }
            WindowMode::Utterance | WindowMode::Auto => {
                if let Some((k, _)) = self.spans.iter().find(|(_, s)| s.start <= t && t < s.end) {
                    return Designation::Window(*k);
                }
                if t < settled || ended {
                    self.spans
                        .iter()
                        .rev()
                        .find(|(_, s)| s.end <= t)
                        .map_or(Designation::Empty, |(k, _)| Designation::Window(*k))
                } else {
                    Designation::Pending
                }
            }
        }
    }
}

/// Video buffers waiting for their window's result, in order.
pub type Held = VecDeque<(Option<u64>, gst::Buffer)>;

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn span(index: u64, start: f64, end: f64) -> WindowSpan {
        WindowSpan {
            index,
            start: (start * S as f64) as u64,
            end: (end * S as f64) as u64,
        }
    }

    fn at(s: f64) -> u64 {
        (s * S as f64) as u64
    }

    #[test]
    fn sliding_frames_carry_the_window_centred_nearest() {
        let mut t = Timing::new(
            WindowMode::Sliding,
            SlidingSchedule {
                length: 2 * S,
                hop: S,
            },
        );
        // Windows [0,2) [1,3) [2,4): centres 1, 2, 3.
        assert_eq!(t.designate(at(0.2), 0, false), Designation::Pending);
        for k in 0..3 {
            t.add(span(k, k as f64, k as f64 + 2.0));
        }
        assert_eq!(t.designate(at(0.2), 0, false), Designation::Window(0));
        assert_eq!(t.designate(at(1.4), 0, false), Designation::Window(0));
        assert_eq!(t.designate(at(1.5), 0, false), Designation::Window(1));
        assert_eq!(t.designate(at(2.6), 0, false), Designation::Window(2));
        // [3,5) is not made yet: wait; at the end, the last window started before.
        assert_eq!(t.designate(at(3.7), 0, false), Designation::Pending);
        assert_eq!(t.designate(at(3.7), 0, true), Designation::Window(2));
    }

    #[test]
    fn utterance_frames_carry_the_utterance_or_the_last_one() {
        let mut t = Timing::new(WindowMode::Utterance, SlidingSchedule { length: S, hop: S });
        assert_eq!(t.designate(at(0.5), at(1.0), false), Designation::Empty);
        t.add(span(0, 1.2, 2.5));
        assert_eq!(t.designate(at(1.5), 0, false), Designation::Window(0));
        // After it, in silence the detector has passed: the last utterance.
        assert_eq!(t.designate(at(3.0), at(4.0), false), Designation::Window(0));
        // Not passed yet: a new utterance may still cover it.
        assert_eq!(t.designate(at(4.5), at(4.0), false), Designation::Pending);
        assert_eq!(t.designate(at(4.5), at(4.0), true), Designation::Window(0));
    }
}
