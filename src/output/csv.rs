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

/// A number as JSON writes it (shortest form that reads back exactly).
fn number(v: f64) -> String {
    Value::from(v).to_string()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
