//! `emotionsense`'s pad behaviour with `gst_check::Harness`: caps, timestamps and meta
//! on the output, end of stream with a partial window, flushing, refused caps; the
//! audio pad and its pass-through `audio_src`, at 16 kHz and at 44.1 kHz stereo. No
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
    harness_on("video", "src", props, CAPS)
}

/// A harness feeding the element's `sink` pad with `caps` and taking what leaves
/// `src`, and the element's bus.
fn harness_on(sink: &str, src: &str, props: &[(&str, &str)], caps: &str) -> (Harness, gst::Bus) {
    let e = element();
    for (k, v) in props {
        e.set_property_from_str(k, v);
    }
    let bus = gst::Bus::new();
    e.set_bus(Some(&bus));
    let mut h = Harness::with_element(&e, Some(sink), Some(src));
    not_live(&h);
    h.set_src_caps_str(caps);
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
    // A tiled format (a hardware decoder's memory layout): neither packed RGB nor one
    // the converter reads.
    h.set_src_caps_str("video/x-raw,format=NV12_64Z32,width=64,height=48,framerate=10/1");
    let buf = gst::Buffer::with_size(64 * 48 * 3).unwrap();
    assert_eq!(h.push(buf), Err(gst::FlowError::NotNegotiated));
}

/// `samples` frames of `channels`-channel S16LE audio at `pts_ms`, sample k of
/// channel c being `seed + k + c` (so every buffer's bytes differ).
fn audio(pts_ms: u64, rate: u64, samples: usize, channels: usize, seed: i16) -> gst::Buffer {
    let data: Vec<u8> = (0..samples)
        .flat_map(|k| (0..channels).map(move |c| seed.wrapping_add((k + c) as i16)))
        .flat_map(i16::to_le_bytes)
        .collect();
    let mut buf = gst::Buffer::from_mut_slice(data);
    {
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(pts_ms * MS));
        b.set_duration(gst::ClockTime::from_nseconds(
            samples as u64 * 1_000_000_000 / rate,
        ));
    }
    buf
}

/// 2.5 s of audio at `rate` with `channels` through the `audio` pad in 100 ms buffers:
/// checks that it left on `audio_src` unchanged; its caps there, and the windows.
fn audio_through(rate: u64, channels: usize) -> (gst::Caps, Vec<WindowResult>) {
    let caps = format!(
        "audio/x-raw,format=S16LE,layout=interleaved,rate={rate},channels={channels}{}",
        if channels > 1 {
            ",channel-mask=(bitmask)0x3"
        } else {
            ""
        }
    );
    let (mut h, bus) = harness_on(
        "audio",
        "audio_src",
        &[
            ("window-length", "1"),
            ("window-hop", "1"),
            ("min-window-length", "0.3"),
        ],
        &caps,
    );
    let per_buffer = rate as usize / 10;
    let mut sent = Vec::new();
    for k in 0..25 {
        let buf = audio(k * 100, rate, per_buffer, channels, k as i16 * 7);
        sent.push((k * 100 * MS, buf.map_readable().unwrap().to_vec()));
        assert_eq!(h.push(buf), Ok(gst::FlowSuccess::Ok));
    }
    h.push_event(gst::event::Eos::new());
    let w = windows(&bus, 3);
    let mut out = Vec::new();
    for _ in 0..sent.len() {
        let buf = h.pull().expect("every audio buffer leaves on audio_src");
        out.push((
            buf.pts().unwrap().nseconds(),
            buf.map_readable().unwrap().to_vec(),
        ));
    }
    assert_eq!(out, sent, "audio_src passes the audio unchanged, in order");
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    (caps, w)
}

#[test]
fn audio_passes_through_unchanged_and_windows_hold_16_khz() {
    let (caps, w) = audio_through(16000, 1);
    assert_eq!(caps.structure(0).unwrap().get::<i32>("rate"), Ok(16000));
    assert_eq!(
        spans(&w),
        vec![(0, 0, 1000), (1, 1000, 2000), (2, 2000, 2500)]
    );
    let samples: Vec<_> = w.iter().map(|w| w.audio_samples).collect();
    assert_eq!(samples, [Some(16000), Some(16000), Some(8000)]);
    assert!(w.iter().all(|w| w.frames.is_none()));
}

#[test]
fn audio_at_44_1_khz_stereo_passes_as_it_came_and_is_analysed_at_16_khz() {
    let (caps, w) = audio_through(44100, 2);
    let s = caps.structure(0).unwrap();
    assert_eq!(
        (s.get::<i32>("rate"), s.get::<i32>("channels")),
        (Ok(44100), Ok(2))
    );
    assert_eq!(
        spans(&w),
        vec![(0, 0, 1000), (1, 1000, 2000), (2, 2000, 2500)]
    );
    // The internal converter's copy: 16 kHz mono, give or take its filter's edge.
    for (w, want) in w.iter().zip([16000i64, 16000, 8000]) {
        let got = w.audio_samples.expect("audio in every window") as i64;
        assert!((got - want).abs() <= 64, "{got} samples for {want}: {w:?}");
    }
}

/// A live input that stops after its first second, on a test clock: the window is
/// cut by the clock (its end plus the element's latency), not by more data, and
/// never before its end. The clock moves only when the test moves it.
#[test]
fn a_live_window_is_cut_by_the_clock_when_the_input_stops() {
    init();
    let e = gst::ElementFactory::make("emotionsense")
        .property("asr", false)
        .property("bundle", "none")
        .property_from_str("window-mode", "sliding")
        .property_from_str("window-length", "1")
        .property_from_str("window-hop", "1")
        .property_from_str("frames", "2")
        .property_from_str("result-timing", "latest")
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    e.set_bus(Some(&bus));
    // The harness's source is live (it answers the LATENCY query so).
    let mut h = Harness::with_element(&e, Some("video"), Some("src"));
    h.use_testclock();
    h.set_src_caps_str(CAPS);
    let clock = h.testclock().expect("a test clock");
    // Frames up to 0.9 s: the data alone does not complete the window [0, 1 s).
    for k in 0..9 {
        h.push(frame(k * 100, 0)).unwrap();
    }
    // Frames leave at once (latest), before any window.
    for k in 0..9 {
        assert_eq!(
            h.pull().expect("a frame").pts().unwrap().mseconds(),
            k * 100
        );
    }
    let latency = {
        use gst_base::prelude::AggregatorExt;
        e.downcast_ref::<gst_base::Aggregator>()
            .unwrap()
            .latency()
            .unwrap_or(gst::ClockTime::ZERO)
    };
    // Move the clock from one wait of the element to the next until the window comes.
    let mut cut_at = None;
    for _ in 0..50 {
        if let Some(w) = windows_within(&bus, 1, Duration::from_millis(100)).first() {
            assert_eq!((w.span.start, w.span.end), (0, 1000 * MS));
            cut_at = Some(clock.time());
            break;
        }
        h.wait_for_clock_id_waits(1, 5)
            .expect("the element waits on the clock");
        h.crank_single_clock_wait().expect("crank");
    }
    let cut_at = cut_at.expect("the window is cut once the clock passes its end");
    let due = gst::ClockTime::from_seconds(1) + latency;
    assert!(
        cut_at >= due && cut_at < due + gst::ClockTime::from_mseconds(500),
        "cut at {cut_at}; due at its end (1 s) + latency ({latency})"
    );
}

/// An element with sliding windows, no model and no speech recognition.
fn element() -> gst::Element {
    init();
    gst::ElementFactory::make("emotionsense")
        .property("asr", false)
        .property("bundle", "none")
        .property_from_str("window-mode", "sliding")
        .build()
        .unwrap()
}

/// The src pad's segment is the video input's, whatever the audio's: here the audio
/// starts at 23.2 ms (AAC priming) and the video at 66.7 ms, as a demuxer sets them.
#[test]
fn the_output_segment_is_the_video_inputs() {
    let e = element();
    let mut video = Harness::with_element(&e, Some("video"), Some("src"));
    let mut sound = Harness::with_element(&e, Some("audio"), None);
    not_live(&video);
    not_live(&sound);
    video.set_src_caps_str(CAPS);
    sound.set_src_caps_str("audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1");
    let segment = |start_ns: u64| {
        let mut s = gst::FormattedSegment::<gst::ClockTime>::new();
        s.set_start(gst::ClockTime::from_nseconds(start_ns));
        s.set_time(gst::ClockTime::from_nseconds(start_ns));
        s
    };
    let (video_segment, audio_segment) = (segment(66_666_667), segment(23_219_955));
    assert!(video.push_event(gst::event::Segment::new(&video_segment)));
    assert!(sound.push_event(gst::event::Segment::new(&audio_segment)));
    // One thread feeds both pads, as the aggregator takes them: video, then the audio
    // of the same time.
    for k in 0..10u64 {
        let mut f = frame(0, k as u8);
        f.make_mut()
            .set_pts(gst::ClockTime::from_nseconds(66_666_667 + k * 100 * MS));
        assert_eq!(video.push(f), Ok(gst::FlowSuccess::Ok));
        let mut a = audio(0, 16000, 1600, 1, k as i16);
        a.make_mut()
            .set_pts(gst::ClockTime::from_nseconds(23_219_955 + k * 100 * MS));
        assert_eq!(sound.push(a), Ok(gst::FlowSuccess::Ok));
    }
    video.push_event(gst::event::Eos::new());
    sound.push_event(gst::event::Eos::new());
    let mut out_segment = None;
    while let Some(event) = video.try_pull_event() {
        if let gst::EventView::Segment(s) = event.view() {
            out_segment = Some(s.segment().clone());
        }
    }
    let first = video.pull().expect("the first frame leaves");
    while let Some(event) = video.try_pull_event() {
        if let gst::EventView::Segment(s) = event.view() {
            out_segment = Some(s.segment().clone());
        }
    }
    let out = out_segment.expect("a segment before the first buffer");
    let out = out.downcast_ref::<gst::ClockTime>().unwrap();
    assert_eq!(
        (out.start(), out.time(), out.base(), out.rate()),
        (
            video_segment.start(),
            video_segment.time(),
            video_segment.base(),
            video_segment.rate()
        ),
        "src segment {out:?}, video {video_segment:?}, audio {audio_segment:?}"
    );
    assert_eq!(first.pts(), Some(gst::ClockTime::from_nseconds(66_666_667)));
}
