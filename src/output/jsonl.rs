//! The JSON record of a window: one line of `NAME.jsonl` (`analyze`), of `watch
//! --jsonl`, of the HTTP endpoint's `application/jsonlines` answers. Times in seconds,
//! probabilities by label; docs/batch.md lists the fields.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{FrameProbs, WindowResult};

/// The window as one JSON object (keys sorted).
pub fn record(r: &WindowResult) -> Value {
    let mut rec = Map::new();
    rec.insert("index".into(), json!(r.span.index));
    rec.insert("start".into(), json!(r.start_seconds()));
    rec.insert("end".into(), json!(r.end_seconds()));
    rec.insert("kind".into(), json!(r.kind.as_str()));
    if let Some(d) = r.degraded {
        rec.insert("degraded".into(), json!(d.as_str()));
    }
    if let Some((s, e)) = r.stream_span {
        rec.insert("stream_start".into(), json!(s as f64 / 1e9));
        rec.insert("stream_end".into(), json!(e as f64 / 1e9));
    }
    if let Some(t) = &r.transcript {
        rec.insert("transcript".into(), json!(t.text));
    }
    if let Some(v) = r.frames {
        rec.insert("frames".into(), json!(v));
    }
    if let Some(v) = r.distinct_frames {
        rec.insert("distinct_frames".into(), json!(v));
    }
    if let Some(v) = r.audio_samples {
        rec.insert("audio_samples".into(), json!(v));
    }
    if let Some(v) = r.audio_rms {
        rec.insert("audio_rms".into(), json!(v));
    }
    for h in r.heads() {
        let key = h.name.replace('-', "_");
        let (label, confidence) = h.top_label();
        rec.insert(key.clone(), json!(label));
        rec.insert(format!("{key}_confidence"), json!(confidence));
        rec.insert(format!("{key}_smoothed"), json!(h.top_smoothed_label()));
        rec.insert(format!("{key}_labels"), json!(h.labels));
        rec.insert(format!("{key}_probs"), json!(by_label(&h.labels, &h.probs)));
        if !h.frames.is_empty() {
            rec.insert(format!("{key}_frames"), frames(&h.labels, &h.frames));
        }
    }
    if let Some(f) = r.fusion() {
        rec.insert("branches".into(), json!(f.branches()));
        rec.insert("low_confidence".into(), json!(f.low_confidence()));
        rec.insert("flags".into(), json!(f.flags));
        if let Some(v) = f.text_compound {
            rec.insert("text_sentiment_compound".into(), json!(v));
        }
        if let Some(v) = f.face_valence {
            rec.insert("face_valence".into(), json!(v));
        }
        let head = r.face_head();
        let labels = head.map(|h| h.labels.as_slice()).unwrap_or_default();
        let key = head.map_or("emotion".into(), |h| h.name.replace('-', "_"));
        let faces: Vec<Value> = f
            .faces
            .iter()
            .map(|face| {
                let top = super::result::argmax(&face.probs);
                let mut v = json!({
                    "box": face.rect,
                    "frames": face.frames,
                    "score": face.score,
                    "upstream": face.upstream,
                    "id": face.id,
                    key.as_str(): labels.get(top),
                    format!("{key}_confidence"): face.probs.get(top),
                    format!("{key}_probs"): by_label(labels, &face.probs),
                });
                if !face.frame_probs.is_empty() {
                    v[format!("{key}_frames")] = frames(labels, &face.frame_probs);
                }
                if let Some(stable) = face.stable {
                    v["stable_label"] = json!(labels.get(stable));
                    v[format!("{key}_smoothed_probs")] = json!(by_label(labels, &face.smoothed));
                }
                v
            })
            .collect();
        rec.insert("faces".into(), json!(faces));
    }
    Value::Object(rec)
}

/// The record as one line of JSON Lines, newline included.
pub fn line(r: &WindowResult) -> String {
    let mut s = record(r).to_string();
    s.push('\n');
    s
}

/// Per-frame probabilities: `[{pts, label, confidence, probs}]`, `pts` in seconds of
/// running time (null for padding).
fn frames(labels: &[String], frames: &[FrameProbs]) -> Value {
    Value::Array(
        frames
            .iter()
            .map(|f| {
                let top = super::result::argmax(&f.probs);
                json!({
                    "pts": f.pts.map(|t| t as f64 / 1e9),
                    "label": labels.get(top),
                    "confidence": f.probs.get(top),
                    "probs": by_label(labels, &f.probs),
                })
            })
            .collect(),
    )
}

fn by_label<'a>(labels: &'a [String], probs: &[f64]) -> BTreeMap<&'a str, f64> {
    labels
        .iter()
        .map(String::as_str)
        .zip(probs.iter().copied())
        .collect()
}
