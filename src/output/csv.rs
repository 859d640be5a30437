//! CSV of windows: `index,start,end,stream_start,stream_end,transcript` (running time
//! and media positions in seconds), then per head its label, confidence
//! and one probability column per label (`emotion_joy`, ...). The columns come from
//! the first window's heads, so one file has one bundle's columns.

use serde_json::Value;

use super::{HeadResult, WindowResult};

/// Writes rows for windows of one bundle.
pub struct CsvWriter {
    heads: Vec<(String, Vec<String>)>,
}

impl CsvWriter {
    /// A writer for windows with these heads (`names` and labels).
    pub fn new(heads: &[HeadResult]) -> Self {
        Self {
            heads: heads
                .iter()
                .map(|h| (h.name.replace('-', "_"), h.labels.clone()))
                .collect(),
        }
    }

    /// The header line, newline included.
    pub fn header(&self) -> String {
        let mut csv = String::from("index,start,end,stream_start,stream_end,transcript");
        for (head, labels) in &self.heads {
            csv.push_str(&format!(",{head},{head}_confidence"));
            for l in labels {
                csv.push_str(&format!(",{head}_{l}"));
            }
        }
        csv.push('\n');
        csv
    }

    /// One window's line, newline included.
    pub fn row(&self, r: &WindowResult) -> String {
        let mut line = format!(
            "{},{},{},{},{},{}",
            r.span.index,
            number(r.start_seconds()),
            number(r.end_seconds()),
            r.stream_span
                .map_or(String::new(), |(s, _)| number(s as f64 / 1e9)),
            r.stream_span
                .map_or(String::new(), |(_, e)| number(e as f64 / 1e9)),
            r.transcript
                .as_ref()
                .map_or(String::new(), |t| quote(&t.text))
        );
        for (name, labels) in &self.heads {
            let head = r.heads().iter().find(|h| h.name.replace('-', "_") == *name);
            match head {
                Some(h) => {
                    let (label, confidence) = h.top_label();
                    line.push_str(&format!(",{},{}", quote(label), number(confidence)));
                    for l in labels {
                        let p = h.labels.iter().position(|x| x == l).map(|i| h.probs[i]);
                        line.push_str(&format!(",{}", p.map(number).unwrap_or_default()));
                    }
                }
                None => line.push_str(&",".repeat(2 + labels.len())),
            }
        }
        line.push('\n');
        line
    }
}

/// The whole CSV document of `windows`.
pub fn document(windows: &[WindowResult]) -> String {
    let w = CsvWriter::new(windows.first().map_or(&[], |r| r.heads()));
    let mut out = w.header();
    for r in windows {
        out.push_str(&w.row(r));
    }
    out
}

/// The per-frame CSV (`analyze --per-frame`), in the robot CLI's columns:
/// `time,frame_index,face_id,label,confidence`, one probability column per label, and
/// `window`. One row per sampled frame of each face (faces in the result's order;
/// `face_id` is the track id) — or of the window, for a per-frame model without faces
/// (`face_id` empty). `time` is the frame's running time in seconds (empty for black
/// padding). The head is the face head when it answers per frame, else the first
/// per-frame head; windows without per-frame answers (no face) give no rows.
pub fn frames_document(windows: &[WindowResult]) -> String {
    let pick = |r: &WindowResult| -> Option<(String, Vec<String>)> {
        let face = r.face_head().filter(|h| {
            !h.frames.is_empty()
                || r.fusion()
                    .is_some_and(|f| f.faces.iter().any(|x| !x.frame_probs.is_empty()))
        });
        face.or_else(|| r.heads().iter().find(|h| !h.frames.is_empty()))
            .map(|h| (h.name.clone(), h.labels.clone()))
    };
    let Some((head, labels)) = windows.iter().find_map(pick) else {
        return "time,frame_index,face_id,label,confidence,window\n".into();
    };
    let mut out = String::from("time,frame_index,face_id,label,confidence");
    for l in &labels {
        out.push(',');
        out.push_str(&field(l));
    }
    out.push_str(",window\n");
    let mut row = |pts: Option<u64>, k: usize, face: String, probs: &[f64], window: u64| {
        let top = super::result::argmax(probs);
        out.push_str(&format!(
            "{},{k},{face},{},{}",
            pts.map_or(String::new(), |t| number(t as f64 / 1e9)),
            field(labels.get(top).map_or("", String::as_str)),
            number(probs.get(top).copied().unwrap_or(0.0)),
        ));
        for p in probs {
            out.push(',');
            out.push_str(&number(*p));
        }
        out.push_str(&format!(",{window}\n"));
    };
    let is_face_head = windows
        .iter()
        .find_map(|r| r.face_head())
        .is_some_and(|h| h.name == head);
    for r in windows {
        let faces = r.fusion().map(|f| f.faces.as_slice()).unwrap_or_default();
        if is_face_head && !faces.is_empty() {
            for (i, face) in faces.iter().enumerate() {
                let id = face.id.unwrap_or(i as u64).to_string();
                for (k, f) in face.frame_probs.iter().enumerate() {
                    row(f.pts, k, id.clone(), &f.probs, r.span.index);
                }
            }
        } else if let Some(h) = r.head(&head) {
            for (k, f) in h.frames.iter().enumerate() {
                row(f.pts, k, String::new(), &f.probs, r.span.index);
            }
        }
    }
    out
}

/// A number as JSON writes it (shortest form that reads back exactly).
fn number(v: f64) -> String {
    Value::from(v).to_string()
}

/// A CSV field, quoted only when it must be.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        quote(s)
    } else {
        s.to_string()
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
