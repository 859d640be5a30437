//! The on-video overlay (`overlay` property): the latest window's emotion and
//! sentiment with probability bars in a panel at the top left, and a box around each
//! face. Drawn in place on packed RGB-family or GRAY8 frames with a built-in 5×7 font.

use super::{FrameProbs, HeadResult, WindowResult, argmax};
use crate::media::PixelLayout;

/// 5×7 glyphs, one byte per row (low 5 bits, bit 4 = leftmost column).
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_lowercase() {
        'a' => [0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f],
        'b' => [0x10, 0x10, 0x1e, 0x11, 0x11, 0x11, 0x1e],
        'c' => [0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e],
        'd' => [0x01, 0x01, 0x0f, 0x11, 0x11, 0x11, 0x0f],
        'e' => [0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e],
        'f' => [0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08],
        'g' => [0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x0e],
        'h' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11],
        'i' => [0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e],
        'j' => [0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0c],
        'k' => [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12],
        'l' => [0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
        'm' => [0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11],
        'n' => [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11],
        'o' => [0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e],
        'p' => [0x00, 0x00, 0x1e, 0x11, 0x1e, 0x10, 0x10],
        'q' => [0x00, 0x00, 0x0f, 0x11, 0x0f, 0x01, 0x01],
        'r' => [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10],
        's' => [0x00, 0x00, 0x0f, 0x10, 0x0e, 0x01, 0x1e],
        't' => [0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06],
        'u' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d],
        'v' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04],
        'w' => [0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a],
        'x' => [0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11],
        'y' => [0x00, 0x00, 0x11, 0x11, 0x0f, 0x01, 0x0e],
        'z' => [0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f],
        '0' => [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        '3' => [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        '4' => [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        '5' => [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        '6' => [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        '7' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        '9' => [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c],
        ':' => [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        _ => [0; 7],
    }
}

/// Colours of the emotion bars, by label.
fn colour(label: &str) -> [u8; 3] {
    match label {
        "anger" => [230, 60, 50],
        "disgust" => [120, 170, 40],
        "fear" => [150, 80, 200],
        "joy" => [250, 200, 40],
        "sadness" => [60, 110, 230],
        "surprise" => [250, 130, 40],
        "negative" => [220, 60, 60],
        "positive" => [60, 200, 90],
        _ => [180, 180, 180],
    }
}

/// A packed frame to draw on.
pub struct Canvas<'a> {
    data: &'a mut [u8],
    width: usize,
    height: usize,
    stride: usize,
    layout: PixelLayout,
}

impl<'a> Canvas<'a> {
    /// Wraps a mapped frame plane.
    pub fn new(
        data: &'a mut [u8],
        width: usize,
        height: usize,
        stride: usize,
        layout: PixelLayout,
    ) -> Self {
        Self {
            data,
            width,
            height,
            stride,
            layout,
        }
    }

    fn put(&mut self, x: usize, y: usize, rgb: [u8; 3], alpha: u16) {
        if x >= self.width || y >= self.height {
            return;
        }
        let base = y * self.stride + x * self.layout.bytes_per_pixel;
        if self.layout.bytes_per_pixel == 1 {
            let g = crate::face::gray(rgb[0], rgb[1], rgb[2]);
            let p = &mut self.data[base];
            *p = ((*p as u16 * (256 - alpha) + g as u16 * alpha) >> 8) as u8;
            return;
        }
        for (c, &off) in self.layout.rgb_offsets.iter().enumerate() {
            let p = &mut self.data[base + off];
            *p = ((*p as u16 * (256 - alpha) + rgb[c] as u16 * alpha) >> 8) as u8;
        }
    }

    fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, rgb: [u8; 3], alpha: u16) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                self.put(xx, yy, rgb, alpha);
            }
        }
    }

    fn outline(&mut self, x: usize, y: usize, w: usize, h: usize, t: usize, rgb: [u8; 3]) {
        self.rect(x, y, w, t, rgb, 256);
        self.rect(x, (y + h).saturating_sub(t), w, t, rgb, 256);
        self.rect(x, y, t, h, rgb, 256);
        self.rect((x + w).saturating_sub(t), y, t, h, rgb, 256);
    }

    /// Draws `text` with its top-left corner at (x, y), each font pixel `s`×`s`.
    fn text(&mut self, x: usize, y: usize, s: usize, text: &str, rgb: [u8; 3]) {
        for (i, c) in text.chars().enumerate() {
            let g = glyph(c);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.rect(x + (i * 6 + col) * s, y + row * s, s, s, rgb, 256);
                    }
                }
            }
        }
    }
}

/// The per-frame answer for a frame shown at running time `at`: the last sampled frame
/// at or before it (the first when it precedes them all).
fn frame_at(frames: &[FrameProbs], at: Option<u64>) -> Option<&FrameProbs> {
    let at = at?;
    frames
        .iter()
        .rev()
        .find(|f| f.pts.is_some_and(|t| t <= at))
        .or_else(|| frames.first())
}

/// Draws the overlay for `result` on the frame shown at running time `at`: a box
/// labelled with its emotion around each face (the dominant face green) and a panel
/// with the smoothed label of every head and its probability bars. Per-frame heads
/// label the faces and the panel title with the answer for this frame (the sampled
/// frame at or before `at`). Face rectangles are turned by `faces_to_canvas` (from the
/// upright picture they were found in to the canvas, when that is stored sideways).
pub fn draw(
    canvas: &mut Canvas,
    result: &WindowResult,
    at: Option<u64>,
    faces_to_canvas: crate::media::Orientation,
) {
    // Panel, font and lines scale with the frame: 1 at 360p, 2 at 720p, 6 at 4K.
    let s = (canvas.width.min(canvas.height) / 360).max(1);
    let emotion_labels = result
        .face_head()
        .map(|h| h.labels.as_slice())
        .unwrap_or_default();
    if let Some(fusion) = result.fusion() {
        for (i, f) in fusion.faces.iter().enumerate() {
            let (w, h) = (canvas.width as f64, canvas.height as f64);
            let colour = if i == 0 {
                [60, 220, 90]
            } else {
                [200, 200, 200]
            };
            let [fx, fy, fw, fh] = faces_to_canvas.rect(f.rect);
            canvas.outline(
                (fx * w) as usize,
                (fy * h) as usize,
                (fw * w).max(1.0) as usize,
                (fh * h).max(1.0) as usize,
                2 * s,
                colour,
            );
            let probs = frame_at(&f.frame_probs, at).map_or(&f.probs, |p| &p.probs);
            if let Some(label) = emotion_labels.get(argmax(probs)) {
                let y = ((fy * h) as usize).saturating_sub(9 * s);
                canvas.text((fx * w) as usize, y, s, label, colour);
            }
        }
    }
    let mut heads: Vec<&HeadResult> = ["emotion", "sentiment"]
        .iter()
        .filter_map(|h| result.head(h))
        .collect();
    if heads.is_empty() {
        // A bundle with other head names: its first head.
        heads.extend(result.heads().first());
    }
    if heads.is_empty() {
        return;
    }
    let line = 10 * s;
    let rows: usize = heads.iter().map(|h| h.labels.len()).sum::<usize>() + heads.len() + 1;
    let (px, py) = (8 * s, 8 * s);
    let panel_w = 150 * s;
    canvas.rect(px, py, panel_w, rows * line + 4 * s, [0, 0, 0], 160);
    let mut y = py + 3 * s;
    let title: Vec<&str> = heads
        .iter()
        .map(|h| match frame_at(&h.frames, at) {
            Some(f) => h.labels.get(argmax(&f.probs)).map_or("", String::as_str),
            None => h.top_smoothed_label(),
        })
        .collect();
    canvas.text(px + 3 * s, y, s, &title.join("  "), [255, 255, 255]);
    y += line;
    let bar_x = px + 3 * s + 9 * 6 * s;
    let bar_w = panel_w - (bar_x - px) - 4 * s;
    for h in &heads {
        y += line / 2;
        for (l, p) in h.labels.iter().zip(&h.smoothed) {
            canvas.text(px + 3 * s, y, s, l, [230, 230, 230]);
            let len = ((bar_w as f64) * p.clamp(0.0, 1.0)).round() as usize;
            canvas.rect(bar_x, y, len.max(1), 7 * s, colour(l), 256);
            y += line;
        }
        y -= line / 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Orientation;
    use crate::output::{FaceReport, FusionDetails, Prediction};

    /// A joy result with one face in the bottom-right quarter.
    fn joyful() -> WindowResult {
        WindowResult {
            span: crate::window::WindowSpan {
                index: 0,
                start: 0,
                end: 1,
            },
            kind: Default::default(),
            stream_span: None,
            frames: None,
            distinct_frames: None,
            audio_samples: None,
            audio_rms: None,
            windows_dropped: 0,
            degraded: None,
            transcript: None,
            prediction: Some(Prediction {
                model: "m".into(),
                heads: vec![HeadResult {
                    name: "emotion".into(),
                    labels: vec!["joy".into(), "neutral".into()],
                    probs: vec![1.0, 0.0],
                    smoothed: vec![1.0, 0.0],
                    frames: Vec::new(),
                }],
                fusion: Some(FusionDetails {
                    faces: vec![FaceReport {
                        rect: [0.5, 0.5, 0.25, 0.25],
                        frames: 1,
                        score: 1.0,
                        probs: vec![1.0, 0.0],
                        upstream: false,
                        id: None,
                        frame_probs: Vec::new(),
                        smoothed: Vec::new(),
                        stable: None,
                    }],
                    ..FusionDetails::default()
                }),
            }),
            timings: vec![],
        }
    }

    #[test]
    fn draws_panel_bars_and_face_box() {
        let (w, h) = (320, 240);
        let mut data = vec![0u8; w * h * 3];
        let result = joyful();
        draw(
            &mut Canvas::new(&mut data, w, h, w * 3, PixelLayout::RGB),
            &result,
            None,
            Orientation::Identity,
        );
        let px = |x: usize, y: usize| {
            [
                data[(y * w + x) * 3],
                data[(y * w + x) * 3 + 1],
                data[(y * w + x) * 3 + 2],
            ]
        };
        // The face box's top-left corner is green.
        assert_eq!(px(160, 120), [60, 220, 90]);
        // The joy bar (full length) is yellow at its right end; the neutral bar is short.
        let row = (0..h).find(|&y| px(140, y) == [250, 200, 40]);
        assert!(row.is_some(), "no full joy bar");
        // Untouched far corner.
        assert_eq!(px(w - 1, h - 1), [0, 0, 0]);
    }

    #[test]
    fn face_boxes_follow_a_sideways_canvas() {
        // A canvas stored on its side (turned upright by rotating it 90° clockwise):
        // the face found in the upright picture is drawn where the canvas has it.
        let (w, h) = (240, 320);
        let mut data = vec![0u8; w * h * 3];
        draw(
            &mut Canvas::new(&mut data, w, h, w * 3, PixelLayout::RGB),
            &joyful(),
            None,
            Orientation::Rotate90R.inverse(),
        );
        let px = |x: usize, y: usize| data[(y * w + x) * 3..(y * w + x) * 3 + 3].to_vec();
        // Upright rect [0.5, 0.5, 0.25, 0.25] → stored [0.5, 0.25, 0.25, 0.25].
        assert_eq!(px(120, 80), vec![60, 220, 90]);
        assert_eq!(px(w - 1, h - 1), vec![0, 0, 0]);
    }

    #[test]
    fn per_frame_answers_label_the_frame_shown() {
        let mut r = joyful();
        let frames = vec![
            FrameProbs {
                pts: Some(0),
                probs: vec![1.0, 0.0],
            },
            FrameProbs {
                pts: Some(500_000_000),
                probs: vec![0.0, 1.0],
            },
        ];
        let p = r.prediction.as_mut().unwrap();
        p.heads[0].frames = frames.clone();
        p.fusion.as_mut().unwrap().faces[0].frame_probs = frames;
        let (w, h) = (320, 240);
        let render = |at: Option<u64>| {
            let mut data = vec![0u8; w * h * 3];
            draw(
                &mut Canvas::new(&mut data, w, h, w * 3, PixelLayout::RGB),
                &r,
                at,
                Orientation::Identity,
            );
            data
        };
        // Frames shown before the second sampled frame carry the first's label, as the
        // window's; from it on, the second's ("neutral").
        assert_eq!(render(Some(100_000_000)), render(None));
        assert_eq!(render(Some(200_000_000)), render(Some(0)));
        assert_ne!(render(Some(600_000_000)), render(Some(100_000_000)));
        let r2 = {
            let mut r2 = joyful();
            let p = r2.prediction.as_mut().unwrap();
            p.heads[0].smoothed = vec![0.0, 1.0];
            p.heads[0].probs = vec![0.0, 1.0];
            p.fusion.as_mut().unwrap().faces[0].probs = vec![0.0, 1.0];
            r2
        };
        // At 0.6 s the labels are those of an all-neutral window (the bars stay the
        // window's, so compare the face label row only).
        let mut neutral = vec![0u8; w * h * 3];
        draw(
            &mut Canvas::new(&mut neutral, w, h, w * 3, PixelLayout::RGB),
            &r2,
            None,
            Orientation::Identity,
        );
        let label_rows = |d: &[u8]| d[(120 - 12) * w * 3..120 * w * 3].to_vec();
        assert_eq!(label_rows(&render(Some(600_000_000))), label_rows(&neutral));
    }

    /// The rightmost column of the dark panel on row `y` of a white RGB frame.
    fn panel_right_edge(w: usize, h: usize) -> (usize, usize) {
        let mut data = vec![255u8; w * h * 3];
        draw(
            &mut Canvas::new(&mut data, w, h, w * 3, PixelLayout::RGB),
            &joyful(),
            None,
            Orientation::Identity,
        );
        let dark = |x: usize, y: usize| data[(y * w + x) * 3 + 2] < 128;
        let y = (0..h).find(|&y| dark(w / 100 + 10, y)).expect("a panel");
        let right = (0..w / 2)
            .rev()
            .find(|&x| dark(x, y + 1))
            .expect("panel edge");
        (right, y)
    }

    #[test]
    fn the_panel_scales_with_the_frame() {
        // 360p: scale 1; 4K: scale 6 (panel 150 px wide at 8 px from the corner).
        let (r360, top360) = panel_right_edge(640, 360);
        let (r4k, top4k) = panel_right_edge(3840, 2160);
        assert_eq!((r360, top360), (8 + 150 - 1, 8));
        assert_eq!((r4k, top4k), (6 * (8 + 150) - 1, 6 * 8));
        // A portrait frame scales by its width.
        let (rp, _) = panel_right_edge(720, 1280);
        assert_eq!(rp, 2 * (8 + 150) - 1);
    }
}
