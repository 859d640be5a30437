//! The timeline plot (`NAME.svg`): the first head's probabilities over the media
//! position — a line and a point per window centre (so a one-window file shows one
//! mark per class), the stretches without speech or without a face shaded — and under
//! it a lane with the number of faces and the transcript of each window.

use plotters::prelude::*;

use super::WindowResult;

/// Shade of windows without speech.
const NO_SPEECH: RGBColor = RGBColor(225, 228, 235);
/// Shade of windows without a face.
const NO_FACE: RGBColor = RGBColor(250, 222, 222);

fn has_speech(w: &WindowResult) -> bool {
    w.transcript
        .as_ref()
        .is_some_and(|t| t.text.chars().any(char::is_alphanumeric))
}

/// The plot of `windows` as an SVG document; a placeholder text when there are no
/// probabilities to plot.
pub fn svg(windows: &[WindowResult]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 420)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let Some(head) = windows.first().and_then(|w| w.heads().first()) else {
            let _ = root.draw(&Text::new(
                "no model probabilities (run with --bundle)",
                (20, 30),
                ("sans-serif", 18).into_font(),
            ));
            let _ = root.present();
            drop(root);
            return svg;
        };
        let (plot, lanes) = root.split_vertically(330);
        let name = head.name.replace('-', "_");
        let end = windows.iter().map(|w| w.media_end()).fold(1.0, f64::max);
        let start = windows
            .iter()
            .map(|w| w.media_start())
            .fold(f64::INFINITY, f64::min)
            .min(0.0);
        let chart = ChartBuilder::on(&plot)
            .caption(
                format!("{name} probabilities over time (grey: no speech, pink: no face)"),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(start..end, 0.0..1.0);
        if let Ok(mut chart) = chart {
            let _ = chart
                .configure_mesh()
                .x_desc("seconds")
                .y_desc("probability")
                .draw();
            // Shaded stretches: no speech (lower half), no face (upper half).
            let no_face = |w: &WindowResult| w.fusion().is_some_and(|f| f.faces.is_empty());
            let _ = chart.draw_series(windows.iter().filter(|w| !has_speech(w)).map(|w| {
                Rectangle::new(
                    [(w.media_start(), 0.0), (w.media_end(), 0.5)],
                    NO_SPEECH.filled(),
                )
            }));
            let _ = chart.draw_series(windows.iter().filter(|w| no_face(w)).map(|w| {
                Rectangle::new(
                    [(w.media_start(), 0.5), (w.media_end(), 1.0)],
                    NO_FACE.filled(),
                )
            }));
            for (k, label) in head.labels.iter().enumerate() {
                let color = Palette99::pick(k).to_rgba();
                let points: Vec<(f64, f64)> = windows
                    .iter()
                    .filter_map(|w| {
                        let h = w.head(&head.name)?;
                        let i = h.labels.iter().position(|l| l == label)?;
                        Some(((w.media_start() + w.media_end()) / 2.0, h.probs[i]))
                    })
                    .collect();
                let _ = chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)));
                if let Ok(series) = chart.draw_series(
                    points
                        .into_iter()
                        .map(move |p| Circle::new(p, 4, color.filled())),
                ) {
                    series
                        .label(label.as_str())
                        .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
                }
            }
            let _ = chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw();
        }
        // The lane under the plot: faces and transcript per window, aligned with the
        // plot's time axis.
        let to_x = |t: f64| {
            let (x0, x1) = (55.0, 950.0);
            (x0 + (t - start) / (end - start).max(1e-9) * (x1 - x0)) as i32
        };
        let font = ("sans-serif", 12).into_font();
        let _ = lanes.draw(&Text::new("faces", (4, 10), font.clone()));
        let _ = lanes.draw(&Text::new("words", (4, 34), font.clone()));
        for w in windows {
            let x = to_x(w.media_start()) + 2;
            if let Some(f) = w.fusion() {
                let _ = lanes.draw(&Text::new(
                    format!("{}", f.faces.len()),
                    (x, 10),
                    font.clone(),
                ));
            }
            let text = w.transcript_text();
            if !text.is_empty() {
                let width = (to_x(w.media_end()) - to_x(w.media_start())).max(10) as usize;
                let room = (width / 6).max(3);
                let shown: String = if text.chars().count() > room {
                    text.chars()
                        .take(room.saturating_sub(1))
                        .collect::<String>()
                        + "…"
                } else {
                    text.to_string()
                };
                let _ = lanes.draw(&Text::new(shown, (x, 34), font.clone()));
            }
        }
        let _ = root.present();
    }
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{HeadResult, Prediction, TranscriptInfo};

    #[test]
    fn a_single_window_shows_a_mark_per_class_and_its_words() {
        let w = WindowResult {
            span: crate::window::WindowSpan {
                index: 0,
                start: 0,
                end: 2_000_000_000,
            },
            kind: Default::default(),
            stream_span: None,
            frames: None,
            distinct_frames: None,
            audio_samples: None,
            audio_rms: None,
            windows_dropped: 0,
            degraded: None,
            transcript: Some(TranscriptInfo::text_only("hello there")),
            prediction: Some(Prediction {
                model: "m".into(),
                heads: vec![HeadResult {
                    name: "emotion".into(),
                    labels: vec!["joy".into(), "neutral".into(), "anger".into()],
                    probs: vec![0.7, 0.2, 0.1],
                    smoothed: vec![0.7, 0.2, 0.1],
                    frames: Vec::new(),
                }],
                fusion: None,
            }),
            timings: vec![],
        };
        let svg = svg(&[w]);
        // One filled circle per class, plus the three in the legend.
        assert_eq!(svg.matches("<circle").count(), 6, "{svg}");
        assert!(svg.contains("hello there"));
    }
}
