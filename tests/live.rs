//! Live input with a worker slower than real time, for 60 s of stream: windows are
//! dropped and counted, the lag of results stays bounded and does not grow, memory
//! stays flat (docs/live.md), and the latency query answers.

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;

#[test]
fn slow_worker_drops_windows_and_lag_stays_bounded() {
    init();
    // Each window takes 1.2 s to analyse while a new one is due every 0.5 s.
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true num-buffers=1800 ! video/x-raw,width=320,height=240,framerate=30/1 ! e.video \
         audiotestsrc is-live=true samplesperbuffer=320 num-buffers=3000 ! audio/x-raw,rate=16000,format=S16LE ! e.audio \
         emotionsense name=e bundle=none asr=false window-mode=sliding window-length=1 window-hop=0.5 frames=4 \
         max-pending-windows=1 ! fakesink sync=true",
    )
    .unwrap();
    let element = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("e")
        .unwrap();
    element
        .downcast_ref::<gst_emotion::element::EmotionSense>()
        .expect("an emotionsense element")
        .set_analysis_delay(Duration::from_millis(1200));
    let mut lags = Vec::new();
    // Resident memory (kB) with the stream time it was read at.
    let mut rss: Vec<(u64, u64)> = Vec::new();
    let mut qos = 0;
    let mut warned = false;
    let mut last_dropped = 0;
    let el = element.clone();
    run_to_eos(&pipeline, Duration::from_secs(120), |m| {
        if let Some(w) = window_of(m) {
            let now = el.current_running_time().unwrap().nseconds();
            lags.push(now.saturating_sub(w.span.end));
            last_dropped = w.windows_dropped;
            rss.push((now, gst_emotion::resident_set_kb()));
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

    assert!(
        dropped > 0,
        "a worker slower than real time must drop windows"
    );
    assert!(processed > 0);
    assert_eq!(qos as u64, dropped, "one QoS message per dropped window");
    assert!(warned, "a warning tells the user windows are dropped");
    assert!(last_dropped > 0, "messages report the drop count");
    // Lag = time from a window's end to its result. With one pending window and one in
    // analysis it cannot exceed about two analysis times (no ASR here: the analysis is
    // the 1.2 s delay, whatever else the machine is doing); it must not grow.
    let max_lag = *lags.iter().max().unwrap();
    assert!(max_lag < 3_000_000_000, "lag {lags:?}");
    let third = lags.len() / 3;
    let mean = |v: &[u64]| v.iter().sum::<u64>() / v.len() as u64;
    let (early, late) = (mean(&lags[..third]), mean(&lags[lags.len() - third..]));
    assert!(late <= early + 500_000_000, "lag grows: {lags:?}");
    // Memory: after the first 15 s everything is allocated; the rest of the hour-long
    // promise is that nothing accumulates.
    let settled = rss
        .iter()
        .find(|(t, _)| *t >= 15_000_000_000)
        .expect("a window after 15 s")
        .1;
    let end = rss.last().unwrap().1;
    assert!(
        end <= settled + 30 * 1024,
        "resident memory grew from {settled} kB to {end} kB: {rss:?}"
    );
}

#[test]
fn latency_query_reports_upstream_latency_when_live() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true ! video/x-raw,framerate=30/1,width=64,height=48 ! e.video \
         audiotestsrc is-live=true samplesperbuffer=800 ! audio/x-raw,rate=16000 ! e.audio \
         emotionsense name=e bundle=none ! fakesink name=sink",
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

/// `watch --shard I/N`: the k-th source of the list is shard k mod N's; a shard left
/// without a source is an error that says how many shards the list allows.
#[test]
fn watch_takes_its_shard_of_the_sources() {
    let clips: Vec<std::path::PathBuf> = (0..3)
        .map(|k| clip(&format!("shard-{k}"), ClipSpec::video_only(2, 10)))
        .collect();
    let dir = fixture_dir().join("watch-shard");
    std::fs::create_dir_all(&dir).unwrap();
    let jsonl = dir.join("windows.jsonl");
    let _ = std::fs::remove_file(&jsonl);
    let watch = |shard: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gst-emotion"));
        cmd.arg("watch")
            .args(&clips)
            .args(["--shard", shard, "--bundle", "none", "--jsonl"])
            .arg(&jsonl)
            .args(["--set", "asr=false"]);
        cmd
    };
    let out = run_ok(&mut watch("1/2"));
    let err = String::from_utf8_lossy(&out.stderr);
    // The sources watched are named once, at the start.
    let watching = err
        .lines()
        .find_map(|l| l.strip_prefix("watching "))
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        watching,
        format!("{} (Ctrl-C to stop)", clips[1].display()),
        "shard 1/2 of 3 is the second"
    );
    let windows = std::fs::read_to_string(&jsonl).unwrap();
    assert!(windows.lines().count() >= 1, "{err}");
    let out = watch("3/4").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("shard 3/4 has no source"), "{err}");
    assert!(err.contains("at most 3 shards"), "{err}");
}
