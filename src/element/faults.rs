//! Live input faults (docs/live.md, "When inputs fail"): an input that delivers
//! nothing for too long (a stall), ends while the other goes on, or whose timestamps
//! jump (a camera that restarts its clock). Each is noticed here, per input, from the
//! pipeline clock; the element then cuts windows from the other input, says so once,
//! and re-times a jumped input to the clock. [`InputEvent`] reads what it said back
//! from the bus.

use crate::window::Input;

/// What one input has been doing, as seen from the pipeline clock (live input only).
#[derive(Debug, Default, Clone)]
pub struct InputWatch {
    /// Clock running time (ns) when the input last delivered a buffer (or when
    /// watching began).
    last_seen: Option<u64>,
    /// The input is stalled: since the clock running time (ns) it was found so.
    stalled_since: Option<u64>,
    /// Clock running time (ns) when the input ended (EOS).
    ended_at: Option<u64>,
    /// Its end was reported (it is only once the other input went on for the
    /// input timeout: both ending together is the stream ending, not a fault).
    end_reported: bool,
    /// Added to the input's running times since its timestamps jumped (ns).
    offset: i64,
    /// Re-timed running time (ns) where the input's next buffer should start.
    expected: Option<u64>,
}

/// A change in an input's health, reported to the user after the state lock is
/// released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing for `silent_for` ns; its data ends at running time `data_end`.
    Stalled {
        input: Input,
        silent_for: u64,
        data_end: u64,
        /// The other input still delivers.
        alone: bool,
    },
    /// Delivers again at running time `at` after a stall of `after` ns.
    Recovered { input: Input, at: u64, after: u64 },
    /// Ended (EOS) at running time `data_end` while the other input goes on.
    Ended { input: Input, data_end: u64 },
    /// Timestamps jumped from running time `from` to `to` (ns, before re-timing);
    /// the input now runs at the clock's position.
    Jumped { input: Input, from: u64, to: u64 },
}

impl InputWatch {
    /// The running time a buffer of this input at running time `rt` is taken at:
    /// shifted by the offset of an earlier jump, and re-timed to `position` (where
    /// live data is now: the clock's running time less the latency) when it is more
    /// than `bound` away both from where the input should continue and from the
    /// clock. Returns the re-timed running time and, when it jumped, the new offset.
    pub fn retime(&self, rt: u64, position: Option<u64>, bound: u64) -> (u64, Option<i64>) {
        let shifted = shift(rt, self.offset);
        let (Some(expected), Some(position)) = (self.expected, position) else {
            return (shifted, None);
        };
        let far = |a: u64, b: u64| a.abs_diff(b) > bound;
        if far(shifted, expected) && far(shifted, position) {
            let offset = position as i64 - rt as i64;
            (position, Some(offset))
        } else {
            (shifted, None)
        }
    }

    /// A buffer of the input was taken at re-timed running time `rt`, `duration` long,
    /// at clock running time `now`; `offset` is the new one when it jumped. Returns
    /// the changes this makes (a recovery, a jump from `raw_rt`).
    pub fn delivered(
        &mut self,
        input: Input,
        raw_rt: u64,
        rt: u64,
        duration: u64,
        offset: Option<i64>,
        now: Option<u64>,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some(offset) = offset {
            let from = self.expected.map_or(raw_rt, |e| shift(e, -self.offset));
            self.offset = offset;
            changes.push(Change::Jumped {
                input,
                from,
                to: raw_rt,
            });
        }
        self.expected = Some(
            self.expected
                .map_or(rt + duration, |e| e.max(rt + duration)),
        );
        if offset.is_some() {
            self.expected = Some(rt + duration);
        }
        if let Some(since) = self.stalled_since.take() {
            let after = now.map_or(0, |n| n.saturating_sub(since));
            changes.push(Change::Recovered {
                input,
                at: rt,
                after,
            });
        }
        if now.is_some() {
            self.last_seen = now;
        }
        changes
    }

    /// Looks at the input at clock running time `now`: returns whether it has
    /// delivered nothing for more than `bound` ns and was not known to be stalled
    /// (it is from now on), with how long it has been silent.
    pub fn check_stall(&mut self, now: u64, bound: u64) -> Option<u64> {
        let seen = *self.last_seen.get_or_insert(now);
        let silent = now.saturating_sub(seen);
        if self.ended_at.is_some() || self.stalled_since.is_some() || silent <= bound {
            return None;
        }
        self.stalled_since = Some(now);
        Some(silent)
    }

    /// Marks the input ended at clock running time `now`; true the first time.
    pub fn end(&mut self, now: u64) -> bool {
        let first = self.ended_at.is_none();
        self.ended_at.get_or_insert(now);
        first
    }

    /// Whether the end of the input is to be reported now (once): `bound` ns after
    /// it, with the other input still going on (the caller knows).
    pub fn end_due(&mut self, now: u64, bound: u64) -> bool {
        let due = self
            .ended_at
            .is_some_and(|t| !self.end_reported && now >= t + bound);
        self.end_reported |= due;
        due
    }

    /// The clock running time at which to look at the input again: when it will
    /// have been silent for `bound`, or its end is to be reported.
    pub fn stall_due(&self, bound: u64) -> Option<u64> {
        if let Some(t) = self.ended_at {
            return (!self.end_reported).then_some(t + bound);
        }
        if self.stalled_since.is_some() {
            return None;
        }
        self.last_seen.map(|s| s + bound)
    }

    /// Whether the input is stalled now.
    pub fn is_stalled(&self) -> bool {
        self.stalled_since.is_some()
    }

    /// The running time of a buffer at `rt` with the current offset (no new jump).
    pub fn shifted(&self, rt: u64) -> u64 {
        shift(rt, self.offset)
    }
}

/// `rt + offset`, clamped at 0.
fn shift(rt: u64, offset: i64) -> u64 {
    (rt as i64).saturating_add(offset).max(0) as u64
}

/// The name of the details structure of the element's input WARNING and INFO messages.
pub const INPUT_DETAILS: &str = "emotionsense-input";

/// What happened to one of the element's inputs, read back from its WARNING or INFO
/// message (its details structure `emotionsense-input` with `input` and `event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputEvent {
    /// Which input.
    pub input: Input,
    /// What happened to it.
    pub kind: InputEventKind,
    /// The message's sentence (what `describe` wrote).
    pub message: String,
}

/// The kinds of [`InputEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEventKind {
    /// Nothing for `input-timeout`: windows are cut from the other input.
    Stalled,
    /// Ended while the other input goes on.
    Ended,
    /// Timestamps jumped; re-timed to the clock.
    Jumped,
    /// Delivers again after a stall.
    Recovered,
}

impl InputEventKind {
    /// The `event` field of the details structure.
    pub fn as_str(self) -> &'static str {
        match self {
            InputEventKind::Stalled => "stalled",
            InputEventKind::Ended => "ended",
            InputEventKind::Jumped => "jumped",
            InputEventKind::Recovered => "recovered",
        }
    }

    /// The kind of a change.
    pub fn of(change: &Change) -> Self {
        match change {
            Change::Stalled { .. } => InputEventKind::Stalled,
            Change::Ended { .. } => InputEventKind::Ended,
            Change::Jumped { .. } => InputEventKind::Jumped,
            Change::Recovered { .. } => InputEventKind::Recovered,
        }
    }
}

impl InputEvent {
    /// The input event a bus message carries (an `emotionsense` WARNING or INFO with
    /// an `emotionsense-input` details structure), if any.
    pub fn from_message(msg: &gst::Message) -> Option<Self> {
        let (details, message) = match msg.view() {
            gst::MessageView::Warning(w) => (w.details()?, w.error().to_string()),
            gst::MessageView::Info(i) => (i.details()?, i.error().to_string()),
            _ => return None,
        };
        if details.name() != INPUT_DETAILS {
            return None;
        }
        let input = match details.get::<&str>("input").ok()? {
            "video" => Input::Video,
            "audio" => Input::Audio,
            _ => return None,
        };
        let event = details.get::<&str>("event").ok()?;
        let kind = [
            InputEventKind::Stalled,
            InputEventKind::Ended,
            InputEventKind::Jumped,
            InputEventKind::Recovered,
        ]
        .into_iter()
        .find(|k| k.as_str() == event)?;
        Some(Self {
            input,
            kind,
            message,
        })
    }

    /// Whether the input stopped delivering (a stall or an end).
    pub fn is_stop(&self) -> bool {
        matches!(self.kind, InputEventKind::Stalled | InputEventKind::Ended)
    }
}

/// The user-facing sentence for `change` (a WARNING for stalls, ends and jumps, an
/// INFO for a recovery).
pub fn describe(change: &Change) -> String {
    let s = |ns: u64| ns as f64 / 1e9;
    match *change {
        Change::Stalled {
            input,
            silent_for,
            data_end,
            alone,
        } => format!(
            "{} input: nothing for {:.1} s at running time {:.1} s; {}",
            input.name(),
            s(silent_for),
            s(data_end),
            if alone {
                format!("continuing with {} only", input.other().name())
            } else {
                "no input is delivering".to_string()
            }
        ),
        Change::Recovered { input, at, after } => format!(
            "{} input: delivering again at running time {:.1} s after {:.1} s; windows \
             are fused again",
            input.name(),
            s(at),
            s(after)
        ),
        Change::Ended { input, data_end } => format!(
            "{} input: ended at running time {:.1} s; continuing with {} only",
            input.name(),
            s(data_end),
            input.other().name()
        ),
        Change::Jumped { input, from, to } => format!(
            "{} input: timestamps jumped from running time {:.1} s to {:.1} s; re-timed to \
             the clock",
            input.name(),
            s(from),
            s(to)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_stall_is_reported_once_and_a_delivery_ends_it() {
        let mut w = InputWatch::default();
        assert_eq!(w.check_stall(10 * S, 3 * S), None, "watching begins");
        assert_eq!(w.check_stall(12 * S, 3 * S), None);
        assert_eq!(w.check_stall(14 * S, 3 * S), Some(4 * S));
        assert_eq!(w.check_stall(20 * S, 3 * S), None, "once per stall");
        assert!(w.is_stalled());
        let changes = w.delivered(Input::Audio, 21 * S, 21 * S, S / 10, None, Some(21 * S));
        assert_eq!(
            changes,
            vec![Change::Recovered {
                input: Input::Audio,
                at: 21 * S,
                after: 7 * S
            }]
        );
        assert!(!w.is_stalled());
        assert_eq!(w.check_stall(23 * S, 3 * S), None);
        assert_eq!(w.check_stall(25 * S, 3 * S), Some(4 * S), "a second stall");
    }

    #[test]
    fn an_ended_input_is_not_a_stall_and_is_reported_once_later() {
        let mut w = InputWatch::default();
        w.check_stall(0, S);
        assert!(w.end(2 * S));
        assert!(!w.end(3 * S));
        assert_eq!(w.check_stall(10 * S, S), None);
        assert_eq!(w.stall_due(S), Some(3 * S));
        assert!(
            !w.end_due(2 * S + S / 2, S),
            "too early: the other may end too"
        );
        assert!(w.end_due(3 * S, S));
        assert!(!w.end_due(4 * S, S), "once");
        assert_eq!(w.stall_due(S), None);
    }

    #[test]
    fn jumps_far_from_the_clock_are_retimed_late_bursts_are_not() {
        let bound = 3 * S;
        let mut w = InputWatch::default();
        let (rt, off) = w.retime(100 * S, Some(100 * S), bound);
        assert_eq!((rt, off), (100 * S, None));
        w.delivered(Input::Video, 100 * S, rt, S / 10, off, Some(100 * S));
        // A burst 5 s late, continuing its own timeline: kept as it is.
        assert_eq!(
            w.retime(100 * S + S / 10, Some(105 * S), bound),
            (100 * S + S / 10, None)
        );
        // A clock restart: back to 0 while the clock is at 106 s.
        let (rt, off) = w.retime(0, Some(106 * S), bound);
        assert_eq!(rt, 106 * S);
        let changes = w.delivered(Input::Video, 0, rt, S / 10, off, Some(106 * S));
        assert!(matches!(changes[..], [Change::Jumped { to: 0, .. }]));
        // Later buffers follow with the new offset.
        assert_eq!(w.retime(S, Some(107 * S), bound), (107 * S, None));
        // A leap an hour ahead: re-timed too.
        w.delivered(Input::Video, S, 107 * S, S / 10, None, Some(107 * S));
        let (rt, off) = w.retime(3700 * S, Some(108 * S), bound);
        assert_eq!(rt, 108 * S);
        assert!(off.is_some());
        // A gap the clock agrees with (an outage): not a jump.
        let mut v = InputWatch::default();
        v.delivered(Input::Audio, 10 * S, 10 * S, S / 10, None, Some(10 * S));
        assert_eq!(v.retime(30 * S, Some(30 * S), bound), (30 * S, None));
    }

    #[test]
    fn sentences_name_the_input_and_the_times() {
        let stall = Change::Stalled {
            input: Input::Audio,
            silent_for: 4 * S,
            data_end: 6_100_000_000,
            alone: true,
        };
        assert_eq!(
            describe(&stall),
            "audio input: nothing for 4.0 s at running time 6.1 s; continuing with video only"
        );
    }
}
