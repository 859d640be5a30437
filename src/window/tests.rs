//! Unit tests of the window assembler.

use super::*;

const MS: u64 = 1_000_000;

fn config() -> WindowConfig {
    WindowConfig {
        mode: WindowMode::Sliding,
        frames: 4,
        frame_width: 1,
        frame_height: 1,
        ..WindowConfig::default()
    }
}

/// The first byte of each sampled frame (the tests' frames are uniform).
fn frame_values(job: &WindowJob) -> Vec<u8> {
    let sel = job.frames.as_ref().expect("a window with video");
    sel.images().iter().map(|f| f.data[0]).collect()
}

fn frame(v: u8) -> Arc<LazyFrame> {
    Arc::new(LazyFrame::ready(RgbImage {
        width: 1,
        height: 1,
        data: vec![v; 3],
        faces: None,
    }))
}

/// Feeds `secs` seconds of 10 fps video and 16 kHz audio in 100 ms buffers.
fn feed(a: &mut WindowAssembler, from_ms: u64, to_ms: u64, jobs: &mut Vec<WindowJob>) {
    let mut t = from_ms;
    while t < to_ms {
        a.push_frame(t * MS, Some(100 * MS), frame((t / 100) as u8));
        a.push_audio(t * MS, &vec![0.5; 1600]);
        jobs.extend(a.take_complete());
        t += 100;
    }
}

#[test]
fn schedule_indices() {
    let s = SlidingSchedule {
        length: 2 * SECOND,
        hop: SECOND,
    };
    assert_eq!(s.first_ending_after(0), 0);
    assert_eq!(s.first_ending_after(2 * SECOND), 1);
    assert_eq!(s.first_ending_after(5 * SECOND + 1), 4);
    assert_eq!(
        s.span(3),
        WindowSpan {
            index: 3,
            start: 3 * SECOND,
            end: 5 * SECOND
        }
    );
}

#[test]
fn sliding_windows_over_five_and_a_half_seconds() {
    let mut a = WindowAssembler::new(config());
    a.set_input(Input::Video, true);
    a.set_input(Input::Audio, true);
    let mut jobs = Vec::new();
    feed(&mut a, 0, 5500, &mut jobs);
    a.end_input(Input::Video);
    a.end_input(Input::Audio);
    jobs.extend(a.take_complete());
    jobs.extend(a.finish());
    let spans: Vec<(u64, u64)> = jobs
        .iter()
        .map(|j| (j.span.start / MS, j.span.end / MS))
        .collect();
    // Full windows [0,2) .. [3,5); [4,5.5) is 1.5 s >= 0.5 s; [5,5.5) is 0.5 s >= 0.5 s.
    assert_eq!(
        spans,
        vec![
            (0, 2000),
            (1000, 3000),
            (2000, 4000),
            (3000, 5000),
            (4000, 5500),
            (5000, 5500)
        ]
    );
    for j in &jobs[..4] {
        let audio = j.audio.as_ref().unwrap();
        assert_eq!(audio.samples.len(), 32000);
        assert_eq!(audio.real, 32000);
        assert_eq!(j.frames.as_ref().unwrap().real, 4);
    }
    // Uniform slices of [1 s, 3 s): centres 1.25, 1.75, 2.25, 2.75 s -> frames 12, 17, 22, 27.
    let f = frame_values(&jobs[1]);
    assert_eq!(f, vec![12, 17, 22, 27]);
}

#[test]
fn short_tail_is_dropped() {
    let mut a = WindowAssembler::new(config());
    a.set_input(Input::Video, true);
    let mut jobs = Vec::new();
    let mut t = 0;
    while t < 2300 {
        a.push_frame(t * MS, Some(100 * MS), frame(1));
        jobs.extend(a.take_complete());
        t += 100;
    }
    a.end_input(Input::Video);
    jobs.extend(a.finish());
    let spans: Vec<(u64, u64)> = jobs
        .iter()
        .map(|j| (j.span.start / MS, j.span.end / MS))
        .collect();
    // [1, 2.3) is 1.3 s, [2, 2.3) only 0.3 s < 0.5 s.
    assert_eq!(spans, vec![(0, 2000), (1000, 2300)]);
    assert!(jobs.iter().all(|j| j.audio.is_none()));
}

#[test]
fn video_only_and_audio_only() {
    let mut a = WindowAssembler::new(config());
    a.set_input(Input::Audio, true);
    let mut jobs = Vec::new();
    for k in 0..30 {
        a.push_audio(k * 100 * MS, &vec![0.1; 1600]);
        jobs.extend(a.take_complete());
    }
    assert_eq!(jobs.len(), 2); // [0,2) and [1,3) complete at 3.0 s
    assert!(jobs.iter().all(|j| j.frames.is_none() && j.audio.is_some()));
}

#[test]
fn waits_for_the_slower_input_unless_live() {
    let mut a = WindowAssembler::new(config());
    a.set_input(Input::Video, true);
    a.set_input(Input::Audio, true);
    for k in 0..25 {
        a.push_frame(k * 100 * MS, None, frame(1));
    }
    assert!(a.take_complete().is_empty(), "audio pending: must wait");
    a.set_live(true);
    assert_eq!(a.take_complete().len(), 1);
    // Live timeout: audio that started but lags is treated as silence.
    a.push_audio(SECOND, &vec![0.2; 1600]);
    a.advance_to(3 * SECOND);
    let jobs = a.take_complete();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].audio.as_ref().unwrap().real, 1600);
}

#[test]
fn reset_starts_over() {
    let mut a = WindowAssembler::new(config());
    a.set_input(Input::Video, true);
    let mut jobs = Vec::new();
    feed_video(&mut a, 0, 1500, &mut jobs);
    a.reset();
    feed_video(&mut a, 0, 2100, &mut jobs);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].span.start, 0);
}

#[test]
fn utterances_get_their_frames_and_audio() {
    let mut a = WindowAssembler::new(WindowConfig {
        mode: WindowMode::Utterance,
        ..config()
    });
    a.set_input(Input::Video, true);
    a.set_input(Input::Audio, true);
    let mut jobs = Vec::new();
    feed(&mut a, 0, 3000, &mut jobs);
    assert!(jobs.is_empty(), "no sliding windows in utterance mode");
    // The segmenter reports speech from 0.55 s to 1.75 s after the fact.
    a.add_utterance(550 * MS, 1750 * MS);
    a.set_keep_from(1000 * MS);
    let jobs = a.take_complete();
    assert_eq!(jobs.len(), 1);
    let j = &jobs[0];
    assert_eq!(
        (j.span.index, j.span.start, j.span.end),
        (0, 550 * MS, 1750 * MS)
    );
    assert_eq!(j.audio.as_ref().unwrap().samples.len(), 19200);
    assert_eq!(j.audio.as_ref().unwrap().real, 19200);
    // Frame on screen at 0.55 s is the one from 0.5 s (value 5); centres of 4 slices.
    let f = frame_values(j);
    assert_eq!(f, vec![7, 10, 13, 16]);
}

#[test]
fn a_previewed_utterance_is_the_window_it_becomes() {
    for mode in [WindowMode::Utterance, WindowMode::Auto] {
        let mut a = WindowAssembler::new(WindowConfig { mode, ..config() });
        a.set_input(Input::Video, true);
        a.set_input(Input::Audio, true);
        let mut jobs = Vec::new();
        feed(&mut a, 0, 1500, &mut jobs);
        // Not yet: the data reaches 1.5 s.
        assert!(a.preview_utterance(550 * MS, 1750 * MS).is_none());
        feed(&mut a, 1500, 1800, &mut jobs);
        let preview = a
            .preview_utterance(550 * MS, 1750 * MS)
            .expect("data covers it");
        assert_eq!(frame_values(&preview), vec![7, 10, 13, 16]);
        // Confirmed later (more data meanwhile), it is the same window.
        feed(&mut a, 1800, 2100, &mut jobs);
        a.add_utterance(550 * MS, 1750 * MS);
        jobs.extend(a.take_complete());
        let made = jobs.last().expect("the utterance");
        assert_eq!(made.kind, WindowKind::Utterance);
        assert!(preview.same_inputs(made), "{mode:?}");
        // A different end is a different window.
        let other = a.preview_utterance(550 * MS, 1700 * MS);
        assert!(other.is_none_or(|o| !o.same_inputs(made)));
    }
}

fn feed_video(a: &mut WindowAssembler, from_ms: u64, to_ms: u64, jobs: &mut Vec<WindowJob>) {
    let mut t = from_ms;
    while t < to_ms {
        a.push_frame(t * MS, Some(100 * MS), frame(1));
        jobs.extend(a.take_complete());
        t += 100;
    }
}

#[test]
fn auto_mode_covers_the_timeline_around_speech() {
    let mut a = WindowAssembler::new(WindowConfig {
        mode: WindowMode::Auto,
        ..config()
    });
    a.set_input(Input::Video, true);
    a.set_input(Input::Audio, true);
    let mut jobs = Vec::new();
    feed(&mut a, 0, 9000, &mut jobs);
    // The voice detector has seen silence up to 4.3 s: two 2 s tiles.
    a.advance_silence(4300 * MS, false);
    jobs.extend(a.take_complete());
    // Speech starts at 4.5 s: the 0.5 s before it becomes a window at once, before
    // the utterance ends.
    a.advance_silence(4500 * MS, true);
    jobs.extend(a.take_complete());
    assert_eq!(
        jobs.last().map(|j| (j.span.start / MS, j.span.end / MS)),
        Some((4000, 4500))
    );
    a.add_utterance(4500 * MS, 6200 * MS);
    a.advance_silence(9000 * MS, false);
    jobs.extend(a.take_complete());
    a.end_input(Input::Video);
    a.end_input(Input::Audio);
    jobs.extend(a.finish());
    let spans: Vec<(u64, u64, u64, WindowKind)> = jobs
        .iter()
        .map(|j| (j.span.index, j.span.start / MS, j.span.end / MS, j.kind))
        .collect();
    assert_eq!(
        spans,
        vec![
            (0, 0, 2000, WindowKind::Silence),
            (1, 2000, 4000, WindowKind::Silence),
            (2, 4000, 4500, WindowKind::Silence),
            (3, 4500, 6200, WindowKind::Utterance),
            (4, 6200, 8200, WindowKind::Silence),
            (5, 8200, 9000, WindowKind::Silence),
        ]
    );
    assert!(jobs.iter().all(|j| j.frames.as_ref().unwrap().real == 4));
}

#[test]
fn auto_mode_without_audio_tiles_the_video() {
    let mut a = WindowAssembler::new(WindowConfig {
        mode: WindowMode::Auto,
        ..config()
    });
    a.set_input(Input::Video, true);
    let mut jobs = Vec::new();
    feed_video(&mut a, 0, 5000, &mut jobs);
    assert_eq!(jobs.len(), 2, "full tiles as the video arrives");
    a.end_input(Input::Video);
    jobs.extend(a.finish());
    let spans: Vec<(u64, u64)> = jobs
        .iter()
        .map(|j| (j.span.start / MS, j.span.end / MS))
        .collect();
    assert_eq!(spans, vec![(0, 2000), (2000, 4000), (4000, 5000)]);
}

#[test]
fn a_still_image_is_one_window() {
    for mode in [WindowMode::Sliding, WindowMode::Auto] {
        let mut a = WindowAssembler::new(WindowConfig { mode, ..config() });
        a.set_input(Input::Video, true);
        a.push_frame(0, None, frame(7));
        a.end_input(Input::Video);
        let jobs = a.finish();
        assert_eq!(jobs.len(), 1, "{mode:?}");
        assert_eq!(frame_values(&jobs[0]), vec![7; 4]);
    }
}

/// Feeds video only, 10 fps, from `from_ms` to `to_ms`.
fn feed_frames(a: &mut WindowAssembler, from_ms: u64, to_ms: u64, jobs: &mut Vec<WindowJob>) {
    for t in (from_ms..to_ms).step_by(100) {
        a.push_frame(t * MS, Some(100 * MS), frame((t / 100) as u8));
        jobs.extend(a.take_complete());
    }
}

fn live(mode: WindowMode) -> WindowAssembler {
    let mut a = WindowAssembler::new(WindowConfig { mode, ..config() });
    a.set_input(Input::Video, true);
    a.set_input(Input::Audio, true);
    a.set_live(true);
    a
}

#[test]
fn live_audio_stall_gives_flagged_video_windows_then_fused_ones() {
    let mut a = live(WindowMode::Sliding);
    let mut jobs = Vec::new();
    feed(&mut a, 0, 3000, &mut jobs);
    // The audio stops at 3 s; found stalled a little later.
    assert!(a.stall(Input::Audio));
    assert!(!a.stall(Input::Audio), "already stalled");
    feed_frames(&mut a, 3000, 8000, &mut jobs);
    feed(&mut a, 8000, 12000, &mut jobs);
    let by_start = |s: u64| jobs.iter().find(|j| j.span.start == s * SECOND).unwrap();
    assert_eq!(by_start(1).degraded, None);
    // [2, 4) straddles the stall: it has the audio there was.
    assert_eq!(by_start(2).degraded, None);
    for s in 3..=6 {
        let j = by_start(s);
        assert_eq!(j.degraded, Some(Degraded::NoAudio), "{:?}", j.span);
        assert!(j.audio.is_none() && j.frames.is_some());
    }
    // [7, 9) straddles the audio's return: fused, with the audio from 8 s.
    assert_eq!(by_start(7).degraded, None);
    assert_eq!(by_start(7).audio.as_ref().unwrap().real, 16000);
    assert_eq!(by_start(9).degraded, None);
    assert_eq!(a.take_skipped(), 0);
}

#[test]
fn live_windows_with_no_input_at_all_are_skipped_and_counted() {
    let mut a = live(WindowMode::Sliding);
    let mut jobs = Vec::new();
    feed(&mut a, 0, 2000, &mut jobs);
    a.stall(Input::Audio);
    a.stall(Input::Video);
    // The clock moves on (live timeout) with nothing from either input.
    a.advance_to(6 * SECOND);
    jobs.extend(a.take_complete());
    feed(&mut a, 6000, 9000, &mut jobs);
    let starts: Vec<u64> = jobs.iter().map(|j| j.span.start / SECOND).collect();
    // [2, 4) and [3, 5) had nothing; [4, 6) neither; [5, 7) has 1 s from 6 s.
    assert!(!starts.contains(&2) && !starts.contains(&3) && !starts.contains(&4));
    assert!(starts.contains(&5) && starts.contains(&6), "{starts:?}");
    assert_eq!(a.take_skipped(), 3);
}

#[test]
fn live_auto_mode_cuts_the_video_alone_while_the_audio_is_stalled() {
    let mut a = live(WindowMode::Auto);
    let mut jobs = Vec::new();
    feed(&mut a, 0, 1000, &mut jobs);
    a.advance_silence(SECOND, false);
    a.stall(Input::Audio);
    feed_frames(&mut a, 1000, 7000, &mut jobs);
    let spans: Vec<_> = jobs
        .iter()
        .map(|j| (j.span.start, j.span.end, j.degraded))
        .collect();
    // Silence tiles from where the windows had got to, one window length each.
    assert_eq!(spans.len(), 3, "{spans:?}");
    assert_eq!(spans[0], (0, 2 * SECOND, None));
    assert_eq!(spans[1], (2 * SECOND, 4 * SECOND, Some(Degraded::NoAudio)));
    assert_eq!(spans[2], (4 * SECOND, 6 * SECOND, Some(Degraded::NoAudio)));
}

#[test]
fn files_never_mark_windows_degraded() {
    let mut a = WindowAssembler::new(config());
    a.set_input(Input::Video, true);
    a.set_input(Input::Audio, true);
    let mut jobs = Vec::new();
    feed(&mut a, 0, 2000, &mut jobs);
    a.end_input(Input::Audio);
    feed_frames(&mut a, 2000, 6000, &mut jobs);
    a.end_input(Input::Video);
    jobs.extend(a.finish());
    assert!(jobs.len() >= 4);
    assert!(
        jobs.iter()
            .all(|j| j.degraded.is_none() && j.audio.is_some())
    );
}

#[test]
fn skipped_frames_complete_windows_and_leave_the_frame_before_on_screen() {
    let mut a = WindowAssembler::new(config());
    a.set_input(Input::Video, true);
    let mut jobs = Vec::new();
    // 10 fps, every second frame kept (a 5 fps limit): frames 0, 2, 4, ... are pictures.
    for k in 0..25u64 {
        let t = k * 100 * MS;
        if k % 2 == 0 {
            a.push_frame(t, Some(100 * MS), frame(k as u8));
        } else {
            a.skip_frame(t, Some(100 * MS));
        }
        jobs.extend(a.take_complete());
    }
    // [0, 2 s) is complete once video reached 2 s: with the skipped frame at 1.9 s,
    // not only at the next kept one.
    assert_eq!(jobs.first().map(|j| j.span.end), Some(2 * SECOND));
    // Centres 0.25, 0.75, 1.25, 1.75 s: frames 2, 7, 12, 17 were on screen; of the
    // kept ones, 2, 6, 12, 16.
    assert_eq!(frame_values(&jobs[0]), vec![2, 6, 12, 16]);
}
