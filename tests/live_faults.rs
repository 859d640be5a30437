//! Live inputs that fail (docs/live.md, "When inputs fail"): one input stalls, ends,
//! jumps in time, sends gaps, changes caps, arrives in bursts or drifts — and the
//! windows keep coming, cut from what is there, with one warning per stall, an INFO
//! when the input is back, and fused windows again after it. Live pipelines of test
//! sources, with `valve`s and pad probes making the faults at set running times.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use gst_emotion::element::{InputEvent, InputEventKind};
use gst_emotion::output::WindowResult;
use gst_emotion::window::{Degraded, Input};

const S: u64 = 1_000_000_000;

/// A window in assertion messages: start, end (s), degraded, frames, audio samples,
/// arrival (s of running time).
type Summary = (f64, f64, Option<Degraded>, Option<u32>, Option<u64>, f64);

/// What a live run showed.
struct Run {
    /// Each window's result and the running time its message arrived at.
    windows: Vec<(WindowResult, u64)>,
    /// The element's input events (WARNING / INFO messages), in order.
    events: Vec<InputEvent>,
    /// Other warnings' texts.
    warnings: Vec<String>,
    /// `video-stalls`, `audio-stalls`, `windows-skipped` at the end.
    counters: (u64, u64, u64),
    /// Resident memory (kB) by running time, sampled at windows.
    rss: Vec<(u64, u64)>,
}

impl Run {
    /// Each window as (start s, end s, degraded, frames, audio samples, arrival s),
    /// for assertion messages.
    fn summary(&self) -> Vec<Summary> {
        self.windows
            .iter()
            .map(|(w, t)| {
                let (s, e) = (w.start_seconds(), w.end_seconds());
                (s, e, w.degraded, w.frames, w.audio_samples, *t as f64 / 1e9)
            })
            .collect()
    }

    fn events_of(&self, input: Input, kind: InputEventKind) -> usize {
        self.events
            .iter()
            .filter(|e| e.input == input && e.kind == kind)
            .count()
    }

    /// Windows whose span lies within `[from, to)` seconds.
    fn within(&self, from: f64, to: f64) -> Vec<&(WindowResult, u64)> {
        self.windows
            .iter()
            .filter(|(w, _)| w.start_seconds() >= from && w.end_seconds() <= to)
            .collect()
    }

    /// Every window starts where the previous one ended or later (no window twice,
    /// none overlapping) — for windows that do not slide.
    fn assert_no_overlap(&self) {
        let mut spans: Vec<_> = self.windows.iter().map(|(w, _)| w.span).collect();
        spans.sort_by_key(|s| s.start);
        for pair in spans.windows(2) {
            assert!(
                pair[1].start >= pair[0].end,
                "overlapping windows {pair:?} in {spans:?}"
            );
        }
    }
}

/// The test pipeline: 10 fps RGB video and 16 kHz audio from live test sources, each
/// through a `valve` (`vv`, `av`), into `emotionsense name=e` with `props`, for
/// `secs` seconds (each source ends then). `video_caps`/`audio_caps` replace the
/// sources' caps filters (named `vcaps`, `acaps`).
fn pipeline(secs: u64, props: &str, video_caps: &str, audio_caps: &str) -> gst::Element {
    let n = secs * 10;
    let desc = format!(
        "videotestsrc is-live=true num-buffers={n} pattern=ball ! capsfilter name=vcaps \
         caps={video_caps} ! valve name=vv ! e.video \
         audiotestsrc is-live=true num-buffers={n} samplesperbuffer=1600 volume=0.3 ! \
         {audio_caps} ! valve name=av ! e.audio \
         emotionsense name=e bundle=none asr=false max-utterance-length=2 {props} \
         ! fakesink sync=true"
    );
    gst::parse::launch(&desc).unwrap_or_else(|e| panic!("{desc}: {e}"))
}

const VIDEO: &str = "video/x-raw,format=RGB,width=160,height=120,framerate=10/1";
const AUDIO: &str = "capsfilter name=acaps caps=audio/x-raw,format=S16LE,rate=16000,channels=1";

/// Plays `pipeline` to its end, calling `control` with the element's running time
/// every 50 ms or so (to open and close valves).
fn run(pipeline: &gst::Element, mut control: impl FnMut(u64, &gst::Bin)) -> Run {
    let bin = pipeline.downcast_ref::<gst::Bin>().unwrap().clone();
    let e = bin.by_name("e").unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).expect("playing");
    let mut out = Run {
        windows: Vec::new(),
        events: Vec::new(),
        warnings: Vec::new(),
        counters: (0, 0, 0),
        rss: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "no EOS within 120 s");
        let now = e.current_running_time().map_or(0, |t| t.nseconds());
        control(now, &bin);
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) else {
            continue;
        };
        if let Some(w) = window_of(&msg) {
            out.rss.push((now, gst_emotion::resident_set_kb()));
            out.windows.push((w, now));
            continue;
        }
        if let Some(ev) = InputEvent::from_message(&msg) {
            out.events.push(ev);
            continue;
        }
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(err) => {
                pipeline.set_state(gst::State::Null).unwrap();
                panic!("error: {} ({:?})", err.error(), err.debug());
            }
            gst::MessageView::Warning(w) => out.warnings.push(w.error().to_string()),
            _ => {}
        }
    }
    out.counters = (
        e.property("video-stalls"),
        e.property("audio-stalls"),
        e.property("windows-skipped"),
    );
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

/// Keeps the valve of `input` closed while `closed(running time)`.
fn valve(input: Input, closed: impl Fn(u64) -> bool) -> impl FnMut(u64, &gst::Bin) {
    let name = if input == Input::Video { "vv" } else { "av" };
    move |now, bin| {
        let drop = closed(now);
        let valve = bin.by_name(name).unwrap();
        if valve.property::<bool>("drop") != drop {
            valve.set_property("drop", drop);
        }
    }
}

/// Closes the valve of `input` from `from` to `to` seconds of running time.
fn stall(input: Input, from: u64, to: u64) -> impl FnMut(u64, &gst::Bin) {
    valve(input, move |now| now >= from * S && now < to * S)
}

/// One input stalls from 4 s to 10 s of a 16 s run in `mode`: windows keep coming
/// during the stall from the other input, flagged; one warning, one INFO; fused
/// windows after.
fn stalled_input(input: Input, mode: &str) {
    init();
    let p = pipeline(16, &format!("window-mode={mode}"), VIDEO, AUDIO);
    let run = run(&p, stall(input, 4, 10));
    let flag = if input == Input::Audio {
        Degraded::NoAudio
    } else {
        Degraded::NoVideo
    };
    let spans = run.summary();
    // During the stall: windows from the other input, flagged, before it ends.
    let during = run.within(5.0, 10.0);
    assert!(!during.is_empty(), "no window in the stall: {spans:?}");
    for (w, arrived) in &during {
        assert_eq!(w.degraded, Some(flag), "{spans:?}");
        assert!(
            *arrived < 10 * S + S / 2,
            "window {:?} came only at {arrived} ns: {spans:?}",
            w.span
        );
        match flag {
            Degraded::NoAudio => assert!(w.audio_samples.is_none() && w.frames.is_some()),
            Degraded::NoVideo => assert!(w.frames.is_none() && w.audio_samples.is_some()),
        }
    }
    // The stall's stretch is covered: from the first window in it to its end.
    let covered: f64 = during
        .iter()
        .map(|(w, _)| w.end_seconds() - w.start_seconds())
        .sum();
    assert!(covered > 1.9, "{covered} s of the stall covered: {spans:?}");
    // After it: fused windows again (in utterance mode, where there is speech: the
    // test tone may not be).
    let after = run.within(11.0, 16.0);
    assert!(
        !after.is_empty() || mode == "utterance",
        "no window after the stall: {spans:?}"
    );
    for (w, _) in &after {
        assert_eq!(w.degraded, None, "{spans:?}");
        assert!(w.frames.is_some() && w.audio_samples.is_some_and(|n| n > 0));
    }
    // Said once, recovered once, counted once.
    assert_eq!(
        run.events_of(input, InputEventKind::Stalled),
        1,
        "{:?}",
        run.events
    );
    assert_eq!(
        run.events_of(input, InputEventKind::Recovered),
        1,
        "{:?}",
        run.events
    );
    assert_eq!(run.events.len(), 2, "{:?}", run.events);
    let stalls = if input == Input::Video {
        run.counters.0
    } else {
        run.counters.1
    };
    assert_eq!(stalls, 1);
    let first = &run.events[0].message;
    assert!(
        first.starts_with(&format!("{} input: nothing for ", input.name()))
            && first.ends_with(&format!("continuing with {} only", input.other().name())),
        "{first}"
    );
    if mode != "sliding" {
        run.assert_no_overlap();
    }
}

#[test]
fn audio_stall_in_auto_mode() {
    stalled_input(Input::Audio, "auto");
}

#[test]
fn video_stall_in_auto_mode() {
    stalled_input(Input::Video, "auto");
}

#[test]
fn audio_stall_in_utterance_mode() {
    stalled_input(Input::Audio, "utterance");
}

#[test]
fn video_stall_in_sliding_mode() {
    stalled_input(Input::Video, "sliding");
}

#[test]
fn audio_that_ends_leaves_video_windows() {
    init();
    // The audio ends (EOS) after 4 s; the video goes on to 14 s.
    let audio = "capsfilter name=acaps caps=audio/x-raw,format=S16LE,rate=16000,channels=1 ! \
                 identity name=cut eos-after=40";
    let p = pipeline(14, "", VIDEO, audio);
    let run = run(&p, |_, _| {});
    let spans = run.summary();
    let after = run.within(6.0, 12.0);
    assert!(after.len() >= 2, "{spans:?}");
    for (w, arrived) in &after {
        assert_eq!(w.degraded, Some(Degraded::NoAudio), "{spans:?}");
        // Cut as the video comes, not at the end of the stream.
        assert!(*arrived < 13 * S, "{spans:?}");
    }
    assert_eq!(
        run.events_of(Input::Audio, InputEventKind::Ended),
        1,
        "{:?}",
        run.events
    );
    assert_eq!(run.counters.1, 1);
    run.assert_no_overlap();
}

/// Shifts the video's timestamps by `offset(pts)` (a camera whose clock restarts),
/// marking the first shifted buffer DISCONT.
fn shift_video(p: &gst::Element, offset: impl Fn(u64) -> i64 + Send + Sync + 'static) {
    let pad = by_name(p, "vcaps").static_pad("src").unwrap();
    let last = Arc::new(AtomicU64::new(0));
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data {
            let pts = buf.pts().unwrap().nseconds();
            let off = offset(pts);
            let b = buf.make_mut();
            b.set_pts(gst::ClockTime::from_nseconds((pts as i64 + off) as u64));
            if last.swap(off as u64, Ordering::SeqCst) != off as u64 {
                b.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

#[test]
fn video_timestamps_that_jump_back_and_ahead_are_retimed() {
    init();
    let p = pipeline(16, "window-mode=sliding", VIDEO, AUDIO);
    // At 5 s the camera's clock restarts at 0; at 10 s it leaps an hour ahead.
    shift_video(&p, |pts| match pts {
        t if t < 5 * S => 0,
        t if t < 10 * S => -5 * S as i64,
        _ => 3600 * S as i64,
    });
    let run = run(&p, |_, _| {});
    let spans = run.summary();
    assert_eq!(
        run.events_of(Input::Video, InputEventKind::Jumped),
        2,
        "{:?}",
        run.events
    );
    // Windows every second throughout, each once, soon after its end.
    let mut indices: Vec<u64> = run.windows.iter().map(|(w, _)| w.span.index).collect();
    indices.dedup();
    assert_eq!(indices.len(), run.windows.len(), "{spans:?}");
    assert!(run.windows.len() >= 13, "{spans:?}");
    for (w, arrived) in &run.windows {
        assert!(*arrived < w.span.end + 4 * S, "{spans:?}");
    }
    // After each jump the video is analysed again (re-timed to the clock).
    for from in [7.0, 12.0] {
        let fused = run.within(from, from + 3.0);
        assert!(
            fused
                .iter()
                .any(|(w, _)| w.degraded.is_none() && w.frames.is_some()),
            "{spans:?}"
        );
    }
}

#[test]
fn gap_events_are_gaps_not_stalls() {
    init();
    let p = pipeline(14, "", VIDEO, AUDIO);
    by_name(&p, "av").set_property_from_str("drop-mode", "transform-to-gap");
    let run = run(&p, stall(Input::Audio, 4, 9));
    let spans = run.summary();
    assert!(
        run.events.is_empty(),
        "a gap is not a stall: {:?}",
        run.events
    );
    let during = run.within(4.5, 9.0);
    assert!(!during.is_empty(), "{spans:?}");
    for (w, arrived) in &during {
        assert_eq!(w.degraded, Some(Degraded::NoAudio), "{spans:?}");
        assert!(*arrived < w.span.end + 4 * S, "{spans:?}");
    }
    assert!(
        run.within(10.0, 14.0)
            .iter()
            .all(|(w, _)| w.degraded.is_none()),
        "{spans:?}"
    );
    run.assert_no_overlap();
}

#[test]
fn caps_changes_mid_stream_renegotiate() {
    init();
    let video = "video/x-raw,format=RGB,width=160,height=120,framerate=10/1";
    let audio = "capsfilter name=acaps caps=audio/x-raw,format=S16LE,rate=16000,channels=1 \
                 ! audioconvert";
    let p = pipeline(12, "window-mode=sliding", video, audio);
    let mut changed = false;
    let run = run(&p, |now, bin| {
        if now >= 5 * S && !changed {
            changed = true;
            let caps = |s: &str| s.parse::<gst::Caps>().unwrap();
            bin.by_name("vcaps").unwrap().set_property(
                "caps",
                caps("video/x-raw,format=RGB,width=320,height=240,framerate=10/1"),
            );
            bin.by_name("acaps").unwrap().set_property(
                "caps",
                caps("audio/x-raw,format=F32LE,rate=16000,channels=2"),
            );
        }
    });
    let spans = run.summary();
    assert!(run.events.is_empty(), "{:?}", run.events);
    let after = run.within(6.0, 12.0);
    assert!(after.len() >= 4, "{spans:?}");
    for (w, _) in after {
        assert_eq!(w.degraded, None, "{spans:?}");
        assert!(w.frames.is_some_and(|f| f > 0), "{spans:?}");
        // Two seconds of audio, all of it real.
        assert!(w.audio_samples.is_some_and(|n| n > 31_000), "{spans:?}");
    }
}

#[test]
fn late_bursts_of_frames_are_taken_without_a_stall() {
    init();
    let p = pipeline(14, "window-mode=sliding", VIDEO, AUDIO);
    // The camera's thread blocks for 1.2 s at 4 s and 8 s, then sends what it held.
    let pad = by_name(&p, "vcaps").static_pad("src").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(gst::PadProbeData::Buffer(buf)) = &info.data {
            let pts = buf.pts().unwrap().nseconds();
            if pts == 4 * S || pts == 8 * S {
                std::thread::sleep(Duration::from_millis(1200));
            }
        }
        gst::PadProbeReturn::Ok
    });
    let run = run(&p, |_, _| {});
    let spans = run.summary();
    assert!(run.events.is_empty(), "{:?}", run.events);
    assert!(run.windows.len() >= 12, "{spans:?}");
    for (w, arrived) in &run.windows {
        assert!(w.frames.is_some_and(|f| f > 0), "{spans:?}");
        assert!(*arrived < w.span.end + 4 * S, "{spans:?}");
    }
}

/// 60 s with the audio stalling for 4 s every 12 s and its clock 0.5 % fast (a
/// microphone whose crystal runs ahead of the camera): windows throughout, one
/// warning per stall, memory flat.
#[test]
fn repeated_stalls_and_drift_for_a_minute_keep_memory_flat() {
    init();
    let audio = "capsfilter name=acaps caps=audio/x-raw,format=S16LE,rate=16080,channels=1 ! \
                 capssetter caps=audio/x-raw,rate=16000";
    let p = pipeline(60, "", VIDEO, audio);
    let run = run(
        &p,
        valve(Input::Audio, |now| {
            let t = now / S;
            (4..56).contains(&t) && (4..8).contains(&(t % 12))
        }),
    );
    let spans = run.summary();
    // Stalls at 4, 16, 28, 40, 52 s (and the audio may end before the video).
    assert_eq!(
        run.events_of(Input::Audio, InputEventKind::Stalled),
        5,
        "{:?}",
        run.events
    );
    assert_eq!(
        run.events_of(Input::Audio, InputEventKind::Recovered),
        5,
        "{:?}",
        run.events
    );
    let ended = run.events_of(Input::Audio, InputEventKind::Ended) as u64;
    assert_eq!(run.counters.1, 5 + ended);
    // Windows cover the minute; the fused ones have the audio of their span (the
    // drift is absorbed, not accumulated).
    let covered: f64 = run
        .windows
        .iter()
        .map(|(w, _)| w.end_seconds() - w.start_seconds())
        .sum();
    assert!(covered > 50.0, "{covered} s covered: {spans:?}");
    for (from, to) in [(0.0, 4.0), (46.0, 52.0)] {
        let fused = run.within(from, to);
        assert!(!fused.is_empty(), "{spans:?}");
        for (w, _) in fused {
            assert_eq!(w.degraded, None, "{spans:?}");
            let expected = (w.end_seconds() - w.start_seconds()) * 16000.0;
            let got = w.audio_samples.unwrap_or(0) as f64;
            assert!(
                (got - expected).abs() < expected * 0.02,
                "{got} of {expected}: {spans:?}"
            );
        }
    }
    run.assert_no_overlap();
    let settled = run
        .rss
        .iter()
        .find(|(t, _)| *t >= 15 * S)
        .expect("a window after 15 s")
        .1;
    let end = run.rss.last().unwrap().1;
    assert!(
        end <= settled + 30 * 1024,
        "resident memory grew from {settled} kB to {end} kB"
    );
}

/// A microphone 5 % slow for 30 s (1.5 s behind the camera at the end — what 0.5 %
/// does in 5 minutes): no stall, no degraded window, and each window still has the
/// audio of its span, the missing 5 % filled with silence rather than accumulated.
#[test]
fn a_slow_audio_clock_does_not_accumulate_lag() {
    init();
    let audio = "capsfilter name=acaps caps=audio/x-raw,format=S16LE,rate=15200,channels=1 ! \
                 capssetter caps=audio/x-raw,rate=16000";
    let p = pipeline(30, "window-mode=sliding", VIDEO, audio);
    // 1600 samples every 105 ms, read as 16 kHz: 100 ms of audio per 105 ms.
    let run = run(&p, |_, _| {});
    let spans = run.summary();
    assert!(run.events.is_empty(), "{:?}", run.events);
    assert!(run.windows.len() >= 27, "{spans:?}");
    for (w, arrived) in run.within(1.0, 29.0) {
        assert_eq!(w.degraded, None, "{spans:?}");
        let real = w.audio_samples.unwrap() as f64 / 32000.0;
        assert!((0.9..=1.0).contains(&real), "{real}: {spans:?}");
        assert!(*arrived < w.span.end + 3 * S, "{spans:?}");
    }
}
