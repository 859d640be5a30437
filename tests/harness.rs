//! `emotionsense`'s pad behaviour with `gst_check::Harness`: caps, timestamps and meta
//! on the output, end of stream with a partial window, flushing, refused caps. No
//! decoders, no sleeps: buffers are made here with exact timestamps.

mod common;

use std::time::Duration;

use common::init;
use gst::prelude::*;
use gst_check::Harness;
use gst_emotion::output::WindowResult;

const MS: u64 = 1_000_000;
const CAPS: &str = "video/x-raw,format=RGB,width=64,height=48,framerate=10/1";

/// A harness feeding the `video` pad of an element with `props`, and the element's bus.
fn harness(props: &[(&str, &str)]) -> (Harness, gst::Bus) {
    init();
    let e = gst::ElementFactory::make("emotionsense")
        .property("asr", false)
        .property("bundle", "none")
        .property_from_str("window-mode", "sliding")
        .build()
        .unwrap();
    for (k, v) in props {
        e.set_property_from_str(k, v);
    }
    let bus = gst::Bus::new();
    e.set_bus(Some(&bus));
    let mut h = Harness::with_element(&e, Some("video"), Some("src"));
    not_live(&h);
    h.set_src_caps_str(CAPS);
    (h, bus)
}

/// The harness says its source is live; answer the element's LATENCY query as a file
/// source does, so no window may be dropped.
fn not_live(h: &Harness) {
    let src = h.srcpad().expect("the harness feeds the element");
    src.add_probe(gst::PadProbeType::QUERY_UPSTREAM, |_, info| {
        if let Some(gst::PadProbeData::Query(q)) = &mut info.data
            && let gst::QueryViewMut::Latency(l) = q.view_mut()
        {
            l.set(false, gst::ClockTime::ZERO, gst::ClockTime::NONE);
            return gst::PadProbeReturn::Handled;
        }
        gst::PadProbeReturn::Ok
    });
}

/// A 64×48 RGB frame at `pts` lasting 100 ms, filled with `value`.
fn frame(pts_ms: u64, value: u8) -> gst::Buffer {
    let mut buf = gst::Buffer::from_mut_slice(vec![value; 64 * 48 * 3]);
    {
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(pts_ms * MS));
        b.set_duration(gst::ClockTime::from_nseconds(100 * MS));
    }
    buf
}

/// The windows posted on `bus` until `count` arrived or 20 s passed.
fn windows(bus: &gst::Bus, count: usize) -> Vec<WindowResult> {
    windows_within(bus, count, Duration::from_secs(20))
}

/// The windows posted on `bus` until `count` arrived or `wait` passed.
fn windows_within(bus: &gst::Bus, count: usize, wait: Duration) -> Vec<WindowResult> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + wait;
    while out.len() < count && std::time::Instant::now() < deadline {
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[gst::MessageType::Element],
        ) && let Some(w) = common::window_of(&msg)
        {
            out.push(w);
        }
    }
    out
}

fn spans(w: &[WindowResult]) -> Vec<(u64, u64, u64)> {
    w.iter()
        .map(|w| (w.span.index, w.span.start / MS, w.span.end / MS))
        .collect()
}

#[test]
fn video_passes_with_its_caps_timestamps_and_meta() {
    let (mut h, bus) = harness(&[("window-length", "1"), ("window-hop", "1"), ("frames", "4")]);
    for k in 0..30 {
        assert_eq!(h.push(frame(k * 100, k as u8)), Ok(gst::FlowSuccess::Ok));
    }
    h.push_event(gst::event::Eos::new());
    let mut pts = Vec::new();
    let mut with_result = Vec::new();
    for _ in 0..30 {
        let buf = h.pull().expect("a buffer per frame");
        pts.push(buf.pts().unwrap().nseconds() / MS);
        assert_eq!(buf.duration(), Some(gst::ClockTime::from_mseconds(100)));
        let meta = gst::meta::CustomMeta::from_buffer(&buf, "EmotionMeta")
            .expect("EmotionMeta on every buffer");
        with_result.push(WindowResult::from_structure(meta.structure()).is_ok());
    }
    assert_eq!(pts, (0..30).map(|k| k * 100).collect::<Vec<_>>());
    // In step, every frame carries its own window's result — the first ones too.
    assert!(with_result.iter().all(|r| *r), "{with_result:?}");
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    assert_eq!(caps, CAPS.parse::<gst::Caps>().unwrap());
    let w = windows(&bus, 3);
    assert_eq!(
        spans(&w),
        vec![(0, 0, 1000), (1, 1000, 2000), (2, 2000, 3000)]
    );
    assert!(
        w.iter()
            .all(|w| w.frames == Some(4) && w.audio_samples.is_none())
    );
}

#[test]
fn end_of_stream_analyses_the_partial_window() {
    let (mut h, bus) = harness(&[
        ("window-length", "1"),
        ("window-hop", "1"),
        ("min-window-length", "0.3"),
        ("frames", "2"),
    ]);
    // 2.5 s of frames, then EOS: [2, 2.5) is 0.5 s >= 0.3 s.
    for k in 0..25 {
        h.push(frame(k * 100, 0)).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    let w = windows(&bus, 3);
    assert_eq!(
        spans(&w),
        vec![(0, 0, 1000), (1, 1000, 2000), (2, 2000, 2500)]
    );
    assert_eq!(w[2].frames, Some(2));
    // Nothing more: every window was analysed before EOS left the element.
    while h.pull_event().expect("EOS reaches downstream").type_() != gst::EventType::Eos {}
    assert!(windows_within(&bus, 1, Duration::from_millis(300)).is_empty());
}

#[test]
fn a_flush_starts_the_windows_over() {
    let (mut h, bus) = harness(&[("window-length", "1"), ("window-hop", "1"), ("frames", "2")]);
    for k in 0..15 {
        h.push(frame(k * 100, 0)).unwrap();
    }
    assert_eq!(spans(&windows(&bus, 1)), vec![(0, 0, 1000)]);
    h.push_event(gst::event::FlushStart::new());
    h.push_event(gst::event::FlushStop::new(true));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    for k in 0..25 {
        h.push(frame(k * 100, 1)).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    // Counted from 0 again, on the new running time.
    let w = windows(&bus, 3);
    assert_eq!(
        spans(&w),
        vec![(0, 0, 1000), (1, 1000, 2000), (2, 2000, 2500)]
    );
}

#[test]
fn caps_the_element_cannot_read_are_refused() {
    init();
    let e = gst::ElementFactory::make("emotionsense")
        .property("asr", false)
        .build()
        .unwrap();
    let mut h = Harness::with_element(&e, Some("video"), Some("src"));
    h.set_src_caps_str("video/x-raw,format=I420,width=64,height=48,framerate=10/1");
    let buf = gst::Buffer::with_size(64 * 48 * 3 / 2).unwrap();
    assert_eq!(h.push(buf), Err(gst::FlowError::NotNegotiated));
}
