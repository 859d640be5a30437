//! Results in step with the video (docs/metadata.md, "Timing"): which window's result
//! each frame carries does not depend on how fast the analysis is; live input in step
//! reports its latency and counts missed deadlines; stream-time positions survive a
//! seek; pausing and restarting work.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gst::prelude::*;
use gst_emotion::output::WindowResult;

/// Makes the element `e` of `pipeline` take `delay` longer per window.
fn slow_down(pipeline: &gst::Element, delay: Duration) {
    by_name(pipeline, "e")
        .downcast::<gst_emotion::element::EmotionSense>()
        .expect("an emotionsense element")
        .set_analysis_delay(delay);
}

/// Per buffer reaching the appsink `out`: its PTS and the window index its
/// EmotionMeta carries (`None` for an empty meta).
type Carried = Arc<Mutex<Vec<(u64, Option<u64>)>>>;

fn carried_windows(pipeline: &gst::Element) -> Carried {
    let out: Carried = Arc::default();
    let sink = appsink(pipeline, "out");
    let store = out.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().unwrap();
                let meta = gst::meta::CustomMeta::from_buffer(buf, "EmotionMeta")
                    .expect("EmotionMeta on every buffer");
                let window = WindowResult::from_structure(meta.structure())
                    .ok()
                    .map(|w| w.span.index);
                store
                    .lock()
                    .unwrap()
                    .push((buf.pts().unwrap().nseconds(), window));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    out
}

/// The 5 s clip through sliding windows of 2 s every 1 s, each analysed `delay`
/// late; what each frame carried.
fn run_file(timing: &str, delay: Duration) -> (Vec<(u64, Option<u64>)>, Vec<WindowResult>) {
    let path = clip("av5", ClipSpec::av(5));
    let desc = format!(
        "uridecodebin uri={} name=d emotionsense name=e bundle=none window-mode=sliding \
         window-length=2 window-hop=1 frames=4 result-timing={timing} \
         ! appsink name=out sync=false wait-on-eos=false \
         d. ! video/x-raw ! queue ! videoconvert ! e.video \
         d. ! audio/x-raw ! queue ! audioconvert ! audioresample ! e.audio",
        uri(&path)
    );
    let pipeline = gst::parse::launch(&desc).unwrap();
    slow_down(&pipeline, delay);
    let carried = carried_windows(&pipeline);
    let mut windows = Vec::new();
    run_to_eos(&pipeline, Duration::from_secs(90), |m| {
        windows.extend(window_of(m))
    })
    .expect("run");
    let carried = carried.lock().unwrap().clone();
    (carried, windows)
}

/// The documented rule for sliding windows: of the windows containing `t`, the one
/// whose centre is nearest (the later on a tie); `last` is the last window made.
fn expected_sliding(t_ns: u64, last: u64) -> u64 {
    let t = t_ns as f64 / 1e9;
    // Windows k cover [k, k + 2) with centre k + 1.
    let containing = (0..=last).filter(|&k| (k as f64) <= t && t < k as f64 + 2.0);
    containing
        .min_by(|a, b| {
            let da = ((*a as f64 + 1.0) - t).abs();
            let db = ((*b as f64 + 1.0) - t).abs();
            da.partial_cmp(&db).unwrap().then(b.cmp(a))
        })
        .unwrap_or(last)
}

#[test]
fn every_frame_carries_its_own_window_however_slow_the_analysis() {
    let (fast, windows) = run_file("in-step", Duration::ZERO);
    let last = windows.last().expect("windows").span.index;
    assert_eq!(fast.len(), 150, "every frame passes");
    for (pts, window) in &fast {
        assert_eq!(
            *window,
            Some(expected_sliding(*pts, last)),
            "frame at {} ms",
            ms(*pts)
        );
    }

    // A worker taking 0.4 s per window: the video would run ahead of it.
    let slow = run_file("in-step", Duration::from_millis(400)).0;
    assert_eq!(slow, fast, "same window per frame with a slow worker");

    // `latest` keeps the old behaviour: with the slow worker, frames run ahead of
    // their window (which is what in-step exists to prevent).
    let latest = run_file("latest", Duration::from_millis(400)).0;
    assert_eq!(latest.len(), 150);
    assert_ne!(latest, fast, "latest should differ with a slow worker");
    assert!(
        latest.iter().filter(|(_, w)| w.is_none()).count() > 30,
        "with a slow worker the first second's frames leave before any result"
    );
}

/// A live pipeline of `seconds`: test sources, windows of 1 s, in step.
fn live_pipeline(seconds: u32) -> gst::Element {
    gst::parse::launch(&format!(
        "videotestsrc is-live=true num-buffers={} ! video/x-raw,width=160,height=120,framerate=30/1 ! e.video \
         audiotestsrc is-live=true samplesperbuffer=320 num-buffers={} ! audio/x-raw,rate=16000,format=S16LE ! e.audio \
         emotionsense name=e bundle=none asr=false window-mode=sliding window-length=1 window-hop=1 frames=4 \
         result-timing=in-step deadline=0.5 max-pending-windows=1 \
         ! appsink name=out sync=true wait-on-eos=false",
        seconds * 30,
        seconds * 50
    ))
    .unwrap()
}

/// What a live run saw: the latency reported (queried once results flow), what each
/// frame carried, and the QoS messages.
type LiveRun = (Option<gst::ClockTime>, Vec<(u64, Option<u64>)>, usize);

/// Runs a live pipeline to EOS.
fn run_live(pipeline: &gst::Element) -> LiveRun {
    let carried = carried_windows(pipeline);
    let mut latency = None;
    let mut qos = 0;
    let p = pipeline.clone();
    run_to_eos(pipeline, Duration::from_secs(60), |m| {
        if let gst::MessageView::Qos(_) = m.view() {
            qos += 1;
        }
        if latency.is_none() && window_of(m).is_some() {
            // What the sink sees upstream (the pipeline's own answer folds in the
            // sinks' state).
            let sink = by_name(&p, "out");
            let mut q = gst::query::Latency::new();
            if sink.static_pad("sink").unwrap().peer_query(&mut q) {
                latency = Some(q.result().1);
            }
        }
    })
    .expect("live run");
    let carried = carried.lock().unwrap().clone();
    (latency, carried, qos)
}

#[test]
fn live_in_step_reports_its_latency_and_counts_misses() {
    init();
    let pipeline = live_pipeline(4);
    let (latency, carried, qos) = run_live(&pipeline);
    let latency = latency.expect("latency query answered");
    // Window length (1 s) + deadline (0.5 s), on top of the sources' own.
    assert!(
        latency >= gst::ClockTime::from_mseconds(1500),
        "reported latency {latency}"
    );
    let misses: u64 = by_name(&pipeline, "e").property("deadline-misses");
    assert_eq!(misses, 0, "a fast worker meets the deadline: {carried:?}");
    let dropped: u64 = by_name(&pipeline, "e").property("windows-dropped");
    assert_eq!(dropped, 0);
    assert_eq!(qos, 0);
    // Running time starts with the first buffer, so the frame at t carries window
    // ⌊t⌋ (the last, partial second carries the last window made).
    let in_step = carried
        .iter()
        .filter(|(pts, w)| *pts < 3_000_000_000 && *w == Some(pts / 1_000_000_000))
        .count();
    let first_three_seconds = carried
        .iter()
        .filter(|(pts, _)| *pts < 3_000_000_000)
        .count();
    assert!(first_three_seconds >= 80, "{carried:?}");
    // Allow for the base time of a live source not being exactly the first PTS.
    assert!(
        in_step * 10 >= first_three_seconds * 9,
        "{in_step} of {first_three_seconds} frames carry their own window: {carried:?}"
    );

    // A worker taking 2 s per 1 s window misses the 0.5 s deadline: frames leave with
    // the last result and the misses are counted.
    let pipeline = live_pipeline(5);
    slow_down(&pipeline, Duration::from_millis(2000));
    let (_, carried, qos) = run_live(&pipeline);
    let misses: u64 = by_name(&pipeline, "e").property("deadline-misses");
    assert!(misses > 0, "missed deadlines are counted");
    assert!(qos > 0, "and reported with QoS messages");
    assert!(qos as u64 <= misses);
    assert!(carried.len() >= 140, "frames are never held back for good");
}

/// The 10 s clip decoded into the element `e` (sliding windows with `windows`, 4
/// frames each) and on into `sink`.
fn av10(windows: &str, sink: &str) -> gst::Element {
    init();
    let path = clip("av10", ClipSpec::av(10));
    let desc = format!(
        "uridecodebin uri={} name=d emotionsense name=e bundle=none window-mode=sliding \
         {windows} frames=4 ! {sink} \
         d. ! video/x-raw ! queue ! videoconvert ! e.video \
         d. ! audio/x-raw ! queue ! audioconvert ! audioresample ! e.audio",
        uri(&path)
    );
    gst::parse::launch(&desc).unwrap()
}

/// Sets a pipeline to NULL when dropped: a failing assertion on a prerolled (PAUSED)
/// pipeline then stops its streaming threads instead of leaving them blocked.
struct StopOnDrop(gst::Element);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// The 10 s clip in 1 s windows into an appsink `out`, its analysis slowed to 2 s per
/// window, prerolled: the pipeline, what its frames carry, its stop guard and its bus.
fn slow_preroll() -> (gst::Element, Carried, StopOnDrop, gst::Bus) {
    let pipeline = av10(
        "window-length=1 window-hop=1",
        "appsink name=out sync=false",
    );
    let carried = carried_windows(&pipeline);
    slow_down(&pipeline, Duration::from_secs(2));
    let stop = StopOnDrop(pipeline.clone());
    let bus = preroll(&pipeline);
    (pipeline, carried, stop, bus)
}

/// Plays `pipeline` to its end: the windows posted, and what every frame carried.
fn play_on(
    pipeline: &gst::Element,
    carried: &Carried,
) -> (Vec<WindowResult>, Vec<(u64, Option<u64>)>) {
    let mut windows = Vec::new();
    run_to_eos(pipeline, Duration::from_secs(60), |m| {
        windows.extend(window_of(m))
    })
    .expect("run");
    let carried = carried.lock().unwrap().clone();
    (windows, carried)
}

/// Prerolls `pipeline` (PAUSED); returns its bus, emptied of what prerolling posted.
fn preroll(pipeline: &gst::Element) -> gst::Bus {
    pipeline.set_state(gst::State::Paused).unwrap();
    pipeline
        .state(gst::ClockTime::from_seconds(30))
        .0
        .expect("preroll");
    let bus = pipeline.bus().unwrap();
    while bus.pop().is_some() {}
    bus
}

#[test]
fn windows_after_a_seek_report_stream_positions() {
    let pipeline = av10("window-length=2 window-hop=2", "fakesink sync=false");
    preroll(&pipeline);
    pipeline
        .seek_simple(
            gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
            gst::ClockTime::from_seconds(5),
        )
        .expect("seek");
    let mut windows = Vec::new();
    run_to_eos(&pipeline, Duration::from_secs(60), |m| {
        windows.extend(window_of(m))
    })
    .expect("run");
    assert!(windows.len() >= 2, "{windows:?}");
    // Running time restarts at 0; stream time says which part of the file it is.
    assert_eq!(windows[0].span.start, 0);
    for w in &windows {
        let (s, e) = w
            .stream_span
            .unwrap_or_else(|| panic!("stream positions: {windows:?}"));
        assert!(s >= 5_000_000_000, "stream-start {s} after a seek to 5 s");
        assert_eq!(s - 5_000_000_000, w.span.start, "offset by the seek");
        assert!(e > s && e <= 10_200_000_000);
    }
}

#[test]
fn pause_resume_and_a_second_run_give_the_same_windows() {
    init();
    // Test sources (a parsed uridecodebin links its dynamic pads only once).
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=150 ! video/x-raw,width=160,height=120,framerate=30/1 ! e.video \
         audiotestsrc samplesperbuffer=320 num-buffers=250 ! audio/x-raw,rate=16000,format=S16LE ! e.audio \
         emotionsense name=e bundle=none asr=false window-mode=sliding window-length=1 window-hop=1 \
         frames=4 ! fakesink sync=true",
    )
    .unwrap();
    let spans = |ws: &[WindowResult]| -> Vec<(u64, u64)> {
        ws.iter()
            .map(|w| (w.span.index, ms(w.span.start)))
            .collect()
    };
    // First run: pause for a second in the middle.
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut first = Vec::new();
    let start = std::time::Instant::now();
    let mut paused = false;
    loop {
        assert!(start.elapsed() < Duration::from_secs(60), "no EOS");
        if !paused && start.elapsed() > Duration::from_millis(1500) {
            pipeline.set_state(gst::State::Paused).unwrap();
            std::thread::sleep(Duration::from_secs(1));
            pipeline.set_state(gst::State::Playing).unwrap();
            paused = true;
        }
        let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        first.extend(window_of(&m));
        match m.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => {}
        }
    }
    assert!(paused);
    assert!(
        start.elapsed() >= Duration::from_secs(6),
        "the pause took effect"
    );
    pipeline.set_state(gst::State::Null).unwrap();
    // Second run of the same pipeline after NULL.
    let mut second = Vec::new();
    run_to_eos(&pipeline, Duration::from_secs(60), |m| {
        second.extend(window_of(m))
    })
    .expect("second run");
    assert_eq!(spans(&first).len(), 5, "{:?}", spans(&first));
    assert_eq!(spans(&first), spans(&second));
}

/// A player prerolling to PAUSED shows the first picture at once, without waiting for
/// its window's analysis (2 s here); played on, the frames after it carry their own
/// windows. (Going to PLAYING straight away, the first frame waits too:
/// `every_frame_carries_its_own_window_however_slow_the_analysis`.)
#[test]
fn a_preroll_to_paused_shows_the_first_frame_at_once() {
    let (pipeline, carried, _stop, bus) = slow_preroll();
    let sample = appsink(&pipeline, "out")
        .try_pull_preroll(gst::ClockTime::ZERO)
        .expect("a prerolled frame");
    let buf = sample.buffer().unwrap();
    assert_eq!(buf.pts(), Some(gst::ClockTime::ZERO));
    let meta = gst::meta::CustomMeta::from_buffer(buf, "EmotionMeta").expect("EmotionMeta");
    let window = WindowResult::from_structure(meta.structure()).ok();
    assert!(window.is_none(), "the preroll waited for {window:?}");
    // Nothing was analysed by then.
    assert!(!std::iter::from_fn(|| bus.pop()).any(|m| window_of(&m).is_some()));
    let (windows, carried) = play_on(&pipeline, &carried);
    let indices: Vec<u64> = windows.iter().map(|w| w.span.index).collect();
    assert!(carried.len() > 100, "{}", carried.len());
    for (pts, w) in &carried[1..] {
        let w = w.unwrap_or_else(|| panic!("frame at {pts} without its result"));
        // Windows of 1 s: the frame at t belongs to window floor(t).
        assert_eq!(w, pts / 1_000_000_000, "frame at {pts}: {indices:?}");
    }
}

/// Scrubbing in step: after each flushing seek the prerolled frame leaves at once,
/// without waiting for its window's analysis (slowed to 2 s per window here), so ten
/// seeks in a row each preroll before any window after them is analysed; playing on,
/// the frames carry their own windows' results again.
#[test]
fn seeks_preroll_without_waiting_for_the_analysis() {
    let (pipeline, carried, _stop, bus) = slow_preroll();
    for k in 0..10u64 {
        pipeline
            .seek_simple(
                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                gst::ClockTime::from_mseconds(500 + 800 * k),
            )
            .expect("seek");
        pipeline
            .state(gst::ClockTime::from_seconds(30))
            .0
            .expect("the seek prerolls");
        // The prerolled frame carries no result: it did not wait for one.
        let sample = appsink(&pipeline, "out")
            .try_pull_preroll(gst::ClockTime::ZERO)
            .expect("a prerolled frame");
        let buf = sample.buffer().unwrap();
        let meta = gst::meta::CustomMeta::from_buffer(buf, "EmotionMeta").expect("EmotionMeta");
        let window = WindowResult::from_structure(meta.structure()).ok();
        assert!(
            window.is_none(),
            "seek {k}: the prerolled frame at {:?} waited for its window: {window:?}",
            buf.pts()
        );
    }
    // No window after the last seek was analysed while the seeks prerolled.
    let early: Vec<WindowResult> = std::iter::from_fn(|| bus.pop())
        .filter_map(|m| window_of(&m))
        .filter(|w| w.stream_span.is_some_and(|(s, _)| s >= 7_700_000_000))
        .collect();
    assert!(early.is_empty(), "{early:?}");
    carried.lock().unwrap().clear();
    let (windows, carried) = play_on(&pipeline, &carried);
    // After the first frame, every frame carries a result of a window that exists.
    let indices: Vec<u64> = windows.iter().map(|w| w.span.index).collect();
    assert!(!indices.is_empty());
    assert!(carried.len() > 20, "{carried:?}");
    for (pts, w) in &carried[1..] {
        let w = w.unwrap_or_else(|| panic!("frame at {pts} without its result"));
        assert!(
            indices.contains(&w),
            "frame at {pts}: window {w} of {indices:?}"
        );
    }
}
