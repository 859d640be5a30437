//! Subtitles for an annotated video: one cue per window in media time, without
//! overlaps (a sliding window's cue ends where the next one starts), as SRT, WebVTT or
//! the cues of an MP4 text track.

use super::{WindowResult, vtt};

/// One subtitle cue, in seconds of media time.
#[derive(Clone, Debug, PartialEq)]
pub struct Cue {
    /// Start (s).
    pub start: f64,
    /// End (s), after `start`.
    pub end: f64,
    /// `[emotion 0.91 | sentiment 0.88] transcript`, as the WebVTT writer's cues.
    pub text: String,
}

/// The cues of `windows` in time order: each window from its start to its end or the
/// next window's start, whichever comes first.
pub fn cues(windows: &[WindowResult]) -> Vec<Cue> {
    let mut sorted: Vec<&WindowResult> = windows.iter().collect();
    sorted.sort_by(|a, b| a.media_start().total_cmp(&b.media_start()));
    let mut out = Vec::with_capacity(sorted.len());
    for (i, w) in sorted.iter().enumerate() {
        let start = w.media_start();
        let next = sorted.get(i + 1).map_or(f64::INFINITY, |n| n.media_start());
        let end = w.media_end().min(next);
        if end > start {
            out.push(Cue {
                start,
                end,
                text: vtt::cue_text(w),
            });
        }
    }
    out
}

/// SubRip (`.srt`): numbered cues, `HH:MM:SS,mmm` times.
pub fn srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, c) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            vtt::timestamp(c.start).replace('.', ","),
            vtt::timestamp(c.end).replace('.', ","),
            c.text
        ));
    }
    out
}

/// WebVTT (`.vtt`).
pub fn webvtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for c in cues {
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            vtt::timestamp(c.start),
            vtt::timestamp(c.end),
            c.text
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowSpan;

    fn window(index: u64, start: f64, end: f64, text: &str) -> WindowResult {
        let ns = |s: f64| (s * 1e9) as u64;
        WindowResult {
            span: WindowSpan {
                index,
                start: ns(start),
                end: ns(end),
            },
            kind: Default::default(),
            stream_span: Some((ns(start + 5.0), ns(end + 5.0))),
            frames: None,
            distinct_frames: None,
            audio_samples: None,
            audio_rms: None,
            windows_dropped: 0,
            degraded: None,
            transcript: Some(crate::output::TranscriptInfo::text_only(text)),
            prediction: None,
            timings: Vec::new(),
        }
    }

    #[test]
    fn overlapping_windows_give_contiguous_cues_in_media_time() {
        let ws = [
            window(1, 1.0, 3.0, "second"),
            window(0, 0.0, 2.0, "first"),
            window(2, 2.0, 3.5, "third"),
        ];
        let c = cues(&ws);
        let spans: Vec<(f64, f64)> = c.iter().map(|c| (c.start, c.end)).collect();
        assert_eq!(spans, [(5.0, 6.0), (6.0, 7.0), (7.0, 8.5)]);
        assert_eq!(c[0].text, "first");
        assert_eq!(srt(&c[..1]), "1\n00:00:05,000 --> 00:00:06,000\nfirst\n\n");
        assert!(webvtt(&c).starts_with("WEBVTT\n\n00:00:05.000 --> 00:00:06.000\nfirst\n"));
    }
}
