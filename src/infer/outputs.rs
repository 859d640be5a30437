//! From a single model's logits to a window's answer: softmax per window, or per
//! sampled frame and then averaged (`per_frame = true` heads); and for `[faces]`
//! bundles, one answer per tracked face and the window's from the face
//! `face_select` names (docs/bundles.md).

use super::ModelOutput;
use super::prepare::{Prepared, PreparedFace};
use super::torchscript::HeadLogits;
use crate::bundle::{Bundle, FaceSelect, HeadSpec};
use crate::output::{FaceReport, FrameProbs, FusionDetails, FusionFlag, softmax};

/// One head's probabilities from its logits: the softmax of a per-window head; for a
/// per-frame head (`logits` is T × labels) each frame's softmax, with `times` as their
/// running times, and their mean as the window's.
pub fn head_probs(
    spec: &HeadSpec,
    logits: &[f32],
    times: &[Option<u64>],
) -> (Vec<f64>, Vec<FrameProbs>) {
    let n = spec.labels.len();
    if !spec.per_frame || n == 0 {
        return (softmax(logits), Vec::new());
    }
    let frames: Vec<FrameProbs> = logits
        .chunks(n)
        .enumerate()
        .map(|(k, l)| FrameProbs {
            pts: times.get(k).copied().flatten(),
            probs: softmax(l),
        })
        .collect();
    (
        mean_probs(frames.iter().map(|f| f.probs.as_slice()), n),
        frames,
    )
}

/// The element-wise mean of probability vectors of length `n` (uniform when none).
fn mean_probs<'a>(rows: impl Iterator<Item = &'a [f64]>, n: usize) -> Vec<f64> {
    let mut sum = vec![0.0; n];
    let mut count = 0usize;
    for r in rows {
        sum.iter_mut().zip(r).for_each(|(a, b)| *a += b);
        count += 1;
    }
    if count == 0 {
        return vec![1.0 / n.max(1) as f64; n];
    }
    sum.iter_mut().for_each(|v| *v /= count as f64);
    sum
}

/// A window's answer from its logits (a model without `[faces]`).
pub fn window_output(bundle: &Bundle, p: &Prepared, logits: HeadLogits) -> ModelOutput {
    let (probs, frames) = bundle
        .manifest
        .heads
        .iter()
        .zip(&logits)
        .map(|(spec, l)| head_probs(spec, l, &p.frame_times))
        .unzip();
    ModelOutput {
        probs,
        frames,
        logits: Some(logits),
        timings: p.timings.clone(),
        ..ModelOutput::default()
    }
}

/// Index of the head faces are reported for: `emotion`, else the first.
pub fn face_head(bundle: &Bundle) -> usize {
    bundle
        .manifest
        .heads
        .iter()
        .position(|h| h.name == "emotion")
        .unwrap_or(0)
}

/// Orders a window's faces so the one `select` picks comes first (`largest`: the
/// largest mean box; `center`: the mean box centre nearest the frame centre, in frame
/// fractions; `all-mean`: the tracker's order, most prominent first). Stable.
pub fn order_faces(select: FaceSelect, faces: &mut [PreparedFace]) {
    let area = |f: &PreparedFace| f.report.rect[2] * f.report.rect[3];
    let off_centre = |f: &PreparedFace| {
        let r = &f.report.rect;
        (r[0] + r[2] / 2.0 - 0.5).hypot(r[1] + r[3] / 2.0 - 0.5)
    };
    match select {
        FaceSelect::Largest => faces.sort_by(|a, b| area(b).total_cmp(&area(a))),
        FaceSelect::Center => faces.sort_by(|a, b| off_centre(a).total_cmp(&off_centre(b))),
        FaceSelect::AllMean => {}
    }
}

/// A `[faces]` window's answer from each face's logits (`faces[i]` ↔ `p.faces[i]`):
/// every face reported (with its own probabilities), the window's result that of the
/// first face (the one `face_select` picks, see [`order_faces`]) or the mean of all. No face: every head
/// uniform, flagged `no-face` and `no-evidence` (low confidence); the model did not run.
pub fn faces_output(bundle: &Bundle, p: &Prepared, faces: Vec<HeadLogits>) -> ModelOutput {
    let heads = &bundle.manifest.heads;
    let select = bundle
        .manifest
        .faces
        .as_ref()
        .map(|f| f.face_select)
        .unwrap_or_default();
    let fh = face_head(bundle);
    let prepared = p.faces.as_deref().unwrap_or_default();
    if faces.is_empty() || prepared.len() != faces.len() {
        let probs: Vec<Vec<f64>> = heads
            .iter()
            .map(|h| vec![1.0 / h.labels.len() as f64; h.labels.len()])
            .collect();
        return ModelOutput {
            frames: vec![Vec::new(); probs.len()],
            probs,
            fusion: Some(FusionDetails {
                flags: [FusionFlag::NoFace, FusionFlag::NoEvidence].into(),
                ..FusionDetails::default()
            }),
            timings: p.timings.clone(),
            ..ModelOutput::default()
        };
    }
    // Per face, per head: (probabilities, per-frame probabilities).
    let answers: Vec<Vec<(Vec<f64>, Vec<FrameProbs>)>> = faces
        .iter()
        .map(|logits| {
            heads
                .iter()
                .zip(logits)
                .map(|(spec, l)| head_probs(spec, l, &p.frame_times))
                .collect()
        })
        .collect();
    let reports: Vec<FaceReport> = prepared
        .iter()
        .zip(&answers)
        .map(|(f, a)| FaceReport {
            probs: a[fh].0.clone(),
            frame_probs: a[fh].1.clone(),
            ..f.report.clone()
        })
        .collect();
    // `order_faces` put the selected face first.
    let main = (select != FaceSelect::AllMean).then_some(0);
    let (probs, frames, logits): (Vec<Vec<f64>>, Vec<Vec<FrameProbs>>, _) = match main {
        Some(m) => {
            let (probs, frames) = answers[m].iter().cloned().unzip();
            (probs, frames, Some(faces[m].clone()))
        }
        None => {
            let mut probs = Vec::new();
            let mut frames = Vec::new();
            for (h, spec) in heads.iter().enumerate() {
                let n = spec.labels.len();
                probs.push(mean_probs(answers.iter().map(|a| a[h].0.as_slice()), n));
                let t = answers[0][h].1.len();
                frames.push(
                    (0..t)
                        .map(|k| FrameProbs {
                            pts: answers[0][h].1[k].pts,
                            probs: mean_probs(
                                answers.iter().map(|a| a[h].1[k].probs.as_slice()),
                                n,
                            ),
                        })
                        .collect(),
                );
            }
            (probs, frames, None)
        }
    };
    ModelOutput {
        fusion: Some(FusionDetails {
            faces: reports,
            face_probs: Some(probs[fh].clone()),
            weights: (1.0, 0.0),
            ..FusionDetails::default()
        }),
        probs,
        frames,
        logits,
        timings: p.timings.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::InputTensor;

    fn head(per_frame: bool) -> HeadSpec {
        HeadSpec {
            name: "emotion".into(),
            labels: vec!["a".into(), "b".into()],
            model: "m".into(),
            output_key: None,
            output_index: None,
            per_frame,
        }
    }

    #[test]
    fn per_frame_heads_average_the_frames_probabilities() {
        let logits = [0.0, 0.0, 2.0, 0.0];
        let (probs, frames) = head_probs(&head(true), &logits, &[Some(5), None]);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].pts, Some(5));
        assert_eq!(frames[1].pts, None);
        assert_eq!(frames[0].probs, vec![0.5, 0.5]);
        let p = softmax(&[2.0, 0.0]);
        assert!((probs[0] - (0.5 + p[0]) / 2.0).abs() < 1e-12);
        // A per-window head: the softmax, no frames.
        let (probs, frames) = head_probs(&head(false), &[2.0, 0.0], &[]);
        assert_eq!(probs, p);
        assert!(frames.is_empty());
    }

    fn face(rect: [f64; 4]) -> PreparedFace {
        PreparedFace {
            tensor: InputTensor::U8 {
                shape: vec![1],
                data: vec![0],
            },
            crops: Vec::new(),
            report: FaceReport {
                rect,
                ..FaceReport::default()
            },
        }
    }

    #[test]
    fn the_selected_face_comes_first() {
        let big_corner = [0.0, 0.0, 0.3, 0.3];
        let small_centre = [0.45, 0.45, 0.1, 0.1];
        let mut faces = vec![face(small_centre), face(big_corner)];
        order_faces(FaceSelect::Largest, &mut faces);
        assert_eq!(faces[0].report.rect, big_corner);
        order_faces(FaceSelect::Center, &mut faces);
        assert_eq!(faces[0].report.rect, small_centre);
        let mut faces = vec![face(big_corner), face(small_centre)];
        order_faces(FaceSelect::AllMean, &mut faces);
        assert_eq!(faces[0].report.rect, big_corner);
    }
}
