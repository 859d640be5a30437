//! The reference service's answer (shared/REFERENCE-MODEL.md):
//! `{"utterances": [{"start_time", "end_time", "text", "emotions": [{"label",
//! "confidence"} × 3], "sentiments": [...]}]}` — what its clients parse, unchanged.

use serde_json::{Value, json};

use super::WindowResult;
use crate::window::WindowKind;

/// One utterance object of the reference answer.
pub fn utterance(r: &WindowResult) -> Value {
    let top3 = |head: &str| -> Vec<Value> {
        r.head(head)
            .map(|h| {
                h.ranked()
                    .into_iter()
                    .take(3)
                    .map(|(label, confidence)| json!({"label": label, "confidence": confidence}))
                    .collect()
            })
            .unwrap_or_default()
    };
    json!({
        "start_time": r.media_start(),
        "end_time": r.media_end(),
        "text": r.transcript_text(),
        "emotions": top3("emotion"),
        "sentiments": top3("sentiment"),
    })
}

/// The whole answer for `windows`: every window but the stretches without speech of
/// `auto` mode (the reference answered utterances only).
pub fn document(windows: &[WindowResult]) -> Value {
    let utterances: Vec<Value> = windows
        .iter()
        .filter(|w| w.kind != WindowKind::Silence)
        .map(utterance)
        .collect();
    json!({ "utterances": utterances })
}
