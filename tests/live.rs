//! Live input with a worker slower than real time: windows are dropped and counted,
//! the lag of results stays bounded, and the latency query answers. (Own test binary:
//! the slow-worker hook is process-wide.)

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;

#[test]
fn slow_worker_drops_windows_and_lag_stays_bounded() {
    init();
    // Each window takes 1.2 s to analyse while a new one is due every 0.5 s.
    gst_emotion::element::set_worker_delay_for_tests(Duration::from_millis(1200));
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true num-buffers=240 ! video/x-raw,width=160,height=120,framerate=30/1 ! e.video \
         audiotestsrc is-live=true samplesperbuffer=320 num-buffers=400 ! audio/x-raw,rate=16000,format=S16LE ! e.audio \
         emotionsense name=e window-length=1 window-hop=0.5 frames=4 max-pending-windows=1 ! fakesink sync=true",
    )
    .unwrap();
    let element = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("e")
        .unwrap();
    let mut lags = Vec::new();
    let mut qos = 0;
    let mut warned = false;
    let mut last_dropped = 0;
    let el = element.clone();
    run_to_eos(&pipeline, Duration::from_secs(60), |m| {
        if let Some(w) = window_of(m) {
            let now = el.current_running_time().unwrap().nseconds();
            lags.push(now.saturating_sub(w.end));
            last_dropped = w.dropped;
        }
        match m.view() {
            gst::MessageView::Qos(_) => qos += 1,
            gst::MessageView::Warning(w) => warned |= w.error().to_string().contains("dropped"),
            _ => {}
        }
    })
    .expect("live run");
    let dropped: u64 = element.property("windows-dropped");
    let processed: u64 = element.property("windows-processed");
    gst_emotion::element::set_worker_delay_for_tests(Duration::ZERO);

    assert!(
        dropped > 0,
        "a worker slower than real time must drop windows"
    );
    assert!(processed > 0);
    assert_eq!(qos as u64, dropped, "one QoS message per dropped window");
    assert!(warned, "a warning tells the user windows are dropped");
    assert!(last_dropped > 0, "messages report the drop count");
    // Lag = time from a window's end to its result. With one pending window and one in
    // analysis it cannot exceed about two analysis times; it must not grow over the run.
    let max_lag = *lags.iter().max().unwrap();
    assert!(max_lag < 3_000_000_000, "lag {lags:?}");
    let (first, last) = (lags[0], *lags.last().unwrap());
    assert!(last <= first + 1_500_000_000, "lag grows: {lags:?}");
}

#[test]
fn latency_query_reports_upstream_latency_when_live() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true ! video/x-raw,framerate=30/1,width=64,height=48 ! e.video \
         audiotestsrc is-live=true samplesperbuffer=800 ! audio/x-raw,rate=16000 ! e.audio \
         emotionsense name=e ! fakesink name=sink",
    )
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (res, _, _) = pipeline.state(gst::ClockTime::from_seconds(10));
    res.expect("playing");
    let e = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("e")
        .unwrap();
    let mut q = gst::query::Latency::new();
    assert!(e.static_pad("src").unwrap().query(&mut q));
    let (live, min, _max) = q.result();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(live);
    // Upstream: one video frame (33 ms) and one 800-sample audio buffer (50 ms).
    assert!(
        min >= gst::ClockTime::from_mseconds(50),
        "min latency {min}"
    );
    assert!(
        min < gst::ClockTime::from_mseconds(200),
        "min latency {min}"
    );
}
