//! WebVTT: one cue per window, `[emotion 0.91 | sentiment 0.88] transcript`, for video
//! players and subtitle tracks.

use super::WindowResult;

/// The cue text of a window.
pub fn cue_text(r: &WindowResult) -> String {
    let mut line = r
        .heads()
        .iter()
        .map(|h| {
            let (label, confidence) = h.top_label();
            format!("{label} {confidence:.2}")
        })
        .collect::<Vec<_>>()
        .join(" | ");
    let t = r.transcript_text();
    if !t.is_empty() {
        if !line.is_empty() {
            line = format!("[{line}] ");
        }
        line.push_str(t);
    }
    if line.is_empty() {
        line = "…".into();
    }
    line.replace("-->", "->")
}

/// One cue, blank line included.
pub fn cue(r: &WindowResult) -> String {
    format!(
        "{} --> {}\n{}\n\n",
        timestamp(r.media_start()),
        timestamp(r.media_end()),
        cue_text(r)
    )
}

/// The whole WebVTT document of `windows`.
pub fn document(windows: &[WindowResult]) -> String {
    let mut vtt = String::from("WEBVTT\n\n");
    for r in windows {
        vtt.push_str(&cue(r));
    }
    vtt
}

/// `HH:MM:SS.mmm`.
pub fn timestamp(s: f64) -> String {
    let ms = (s * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        assert_eq!(super::timestamp(3723.5), "01:02:03.500");
    }
}
