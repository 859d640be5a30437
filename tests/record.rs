//! Analyse and record in one pipeline (docs/metadata.md, "Recording"): the audio
//! leaves on `audio_src` in step with the video, so `e.src` and `e.audio_src` feed
//! one muxer through ordinary queues — for a file (held in step) and a live source;
//! the hand-made bypass (a `tee` around the element) is reported instead of hanging;
//! audio at any rate goes straight into `e.audio`.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

/// Each track's duration (s) in the MP4 at `path`, by kind ("video", "audio").
fn tracks(path: &Path) -> Vec<(String, f64)> {
    let p = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_str().unwrap())
        .build()
        .unwrap();
    let demux = gst::ElementFactory::make("qtdemux").build().unwrap();
    p.add_many([&src, &demux]).unwrap();
    src.link(&demux).unwrap();
    let pipeline = p.clone();
    demux.connect_pad_added(move |_, pad| {
        let sink = gst::ElementFactory::make("fakesink").build().unwrap();
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
    });
    // Without sinks yet, PAUSED is reached at once: wait for the demuxer's pads.
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    demux.connect_no_more_pads(move |_| {
        let _ = tx.lock().unwrap().send(());
    });
    p.set_state(gst::State::Paused).unwrap();
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the demuxer finds the tracks");
    let (res, _, _) = p.state(gst::ClockTime::from_seconds(10));
    res.expect("the recording prerolls");
    let out = demux
        .src_pads()
        .iter()
        .map(|pad| {
            let kind = pad.name().split('_').next().unwrap().to_string();
            let d = pad.query_duration::<gst::ClockTime>().expect("a duration");
            (kind, d.nseconds() as f64 / 1e9)
        })
        .collect();
    p.set_state(gst::State::Null).unwrap();
    out
}

/// Counts the video buffers leaving `e` and those whose EmotionMeta holds a result.
fn count_metas(pipeline: &gst::Element) -> Arc<(AtomicU64, AtomicU64)> {
    let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let c = counts.clone();
    let pad = by_name(pipeline, "e").static_pad("src").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(buf)) = &info.data {
            c.0.fetch_add(1, Ordering::SeqCst);
            let with_result = gst::meta::CustomMeta::from_buffer(buf, "EmotionMeta")
                .is_ok_and(|m| m.structure().has_field("index"));
            if with_result {
                c.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        gst::PadProbeReturn::Ok
    });
    counts
}

/// The pipeline: `input` decoded, analysed, its video (with EmotionMeta) to a
/// fakesink and an MP4 at `out`; `audio` is the audio's way into `e.audio` and the
/// muxer.
fn recording(input: &Path, out: &Path, audio: &str) -> gst::Element {
    let desc = format!(
        "uridecodebin uri={} name=d emotionsense name=e bundle=none asr=false ! tee name=t \
         t. ! queue ! fakesink sync=false \
         t. ! queue ! videoconvert ! x264enc speed-preset=ultrafast ! mp4mux name=mux \
         ! filesink location={} \
         d. ! video/x-raw ! queue ! videoconvert ! e.video \
         d. ! audio/x-raw ! {audio}",
        uri(input),
        out.display()
    );
    gst::parse::launch(&desc).unwrap()
}

#[test]
fn a_file_is_analysed_and_recorded_through_audio_src() {
    let input = clip("rec8", ClipSpec::av(8));
    let out = fixture_dir().join("recorded.mp4");
    // The audio taken from audio_src (and no audioresample in front of e.audio: the
    // element converts its own copy).
    let p = recording(
        &input,
        &out,
        "queue ! e.audio e.audio_src ! queue ! audioconvert ! avenc_aac ! mux.",
    );
    let metas = count_metas(&p);
    let mut windows = 0;
    run_to_eos(&p, Duration::from_secs(120), |m| {
        windows += usize::from(window_of(m).is_some())
    })
    .expect("the recording completes");
    assert!(windows >= 4, "{windows} windows of 2 s in 8 s");
    let (frames, with_result) = (
        metas.0.load(Ordering::SeqCst),
        metas.1.load(Ordering::SeqCst),
    );
    assert_eq!(frames, 240, "every frame leaves");
    assert!(
        with_result >= 200,
        "{with_result} of {frames} frames carry a result"
    );
    let t = tracks(&out);
    assert_eq!(t.len(), 2, "{t:?}");
    let input_tracks = tracks(&input);
    for kind in ["video", "audio"] {
        let got = t.iter().find(|(k, _)| k == kind).expect(kind).1;
        let want = input_tracks.iter().find(|(k, _)| k == kind).unwrap().1;
        assert!((got - want).abs() <= 0.1, "{kind}: {got} s of {want} s");
    }
}

#[test]
fn a_hand_made_bypass_is_reported_not_left_hanging() {
    let input = clip("bypass8", ClipSpec::av(8));
    let out = fixture_dir().join("bypass.mp4");
    // The audio goes around the element through a default queue (1 s): it fills while
    // the element holds the video for its analysis, and blocks the tee.
    let p = recording(
        &input,
        &out,
        "tee name=at at. ! queue ! audioconvert ! audioresample ! e.audio \
         at. ! queue ! audioconvert ! avenc_aac ! mux.",
    );
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut warning = None;
    while Instant::now() < deadline && warning.is_none() {
        let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            continue;
        };
        match m.view() {
            gst::MessageView::Warning(w) if w.error().to_string().contains("audio_src") => {
                warning = Some(w.error().to_string());
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => {}
        }
    }
    p.set_state(gst::State::Null).unwrap();
    let warning = warning.expect("a warning that says what is wrong, within 40 s");
    assert!(warning.contains("max-size-time=0"), "{warning}");
}

/// 20 s (or `GST_EMOTION_RECORD_SECONDS`) of a live camera and microphone.
#[test]
fn a_live_source_is_recorded_through_both_src_pads() {
    init();
    let secs: u32 = std::env::var("GST_EMOTION_RECORD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let out = fixture_dir().join("live.mp4");
    // A live camera and microphone, with the overlay, into one MP4.
    let desc = format!(
        "videotestsrc is-live=true num-buffers={} pattern=ball ! \
         video/x-raw,format=RGB,width=320,height=240,framerate=15/1 ! queue ! e.video \
         audiotestsrc is-live=true samplesperbuffer=960 num-buffers={} ! \
         audio/x-raw,rate=48000,channels=2 ! queue ! e.audio \
         emotionsense name=e bundle=none asr=false overlay=true ! queue ! videoconvert ! \
         x264enc tune=zerolatency speed-preset=ultrafast ! mp4mux name=mux ! \
         filesink location={} \
         e.audio_src ! queue ! audioconvert ! avenc_aac ! mux.",
        secs * 15,
        secs * 50,
        out.display()
    );
    let p = gst::parse::launch(&desc).unwrap();
    let mut qos = 0;
    run_to_eos(&p, Duration::from_secs(u64::from(secs) * 2 + 40), |m| {
        if let gst::MessageView::Qos(q) = m.view()
            && q.src().is_some_and(|s| s.name() != "e")
        {
            qos += 1;
        }
    })
    .expect("the live recording completes");
    assert_eq!(qos, 0, "no sink dropped anything");
    let t = tracks(&out);
    let (video, audio) = (
        t.iter().find(|(k, _)| k == "video").expect("video").1,
        t.iter().find(|(k, _)| k == "audio").expect("audio").1,
    );
    assert!((video - f64::from(secs)).abs() < 0.2, "{t:?}");
    println!("{secs} s live: video {video:.3} s, audio {audio:.3} s");
    assert!(
        (audio - video).abs() <= 1.0 / 15.0,
        "A/V apart by more than a frame: {t:?}"
    );
}
