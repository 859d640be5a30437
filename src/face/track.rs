//! Faces across the frames of one window: detections on some frames, boxes held on
//! the frames in between, and boxes linked into tracks (one per person) by overlap.

use super::FaceBox;

/// One person's face through a window.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    /// The box on each frame it was seen (frame index, box).
    pub boxes: Vec<(usize, FaceBox)>,
}

impl Track {
    /// The latest box.
    pub fn last(&self) -> &FaceBox {
        &self.boxes.last().expect("a track has at least one box").1
    }

    /// Mean box area.
    pub fn mean_area(&self) -> f32 {
        self.boxes.iter().map(|(_, b)| b.area()).sum::<f32>() / self.boxes.len() as f32
    }

    /// Frames seen × mean area: the dominant face has the largest value.
    pub fn prominence(&self) -> f32 {
        self.boxes.len() as f32 * self.mean_area()
    }
}

/// Links per-frame boxes into tracks: a box joins the track whose latest box overlaps
/// it most (IoU ≥ `min_iou`), each track taking at most one box per frame; otherwise
/// it starts a new track. Returns the tracks by falling prominence.
pub fn link(frames: &[Vec<FaceBox>], min_iou: f32) -> Vec<Track> {
    let mut tracks: Vec<Track> = Vec::new();
    for (f, boxes) in frames.iter().enumerate() {
        let mut taken = vec![false; tracks.len()];
        let mut order: Vec<usize> = (0..boxes.len()).collect();
        order.sort_by(|&a, &b| boxes[b].area().total_cmp(&boxes[a].area()));
        for i in order {
            let b = &boxes[i];
            let best = tracks
                .iter()
                .enumerate()
                .filter(|(t, _)| !taken[*t])
                .map(|(t, tr)| (t, tr.last().iou(b)))
                .filter(|(_, iou)| *iou >= min_iou)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((t, _)) => {
                    taken[t] = true;
                    tracks[t].boxes.push((f, b.clone()));
                }
                None => {
                    tracks.push(Track {
                        boxes: vec![(f, b.clone())],
                    });
                    taken.push(true);
                }
            }
        }
    }
    tracks.sort_by(|a, b| b.prominence().total_cmp(&a.prominence()));
    tracks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32, s: f32) -> FaceBox {
        FaceBox {
            x1: x,
            y1: y,
            x2: x + s,
            y2: y + s,
            score: 1.0,
            landmarks: None,
        }
    }

    #[test]
    fn two_people_two_tracks_dominant_first() {
        let frames = vec![
            vec![b(0.0, 0.0, 50.0), b(200.0, 0.0, 100.0)],
            vec![b(205.0, 2.0, 100.0), b(3.0, 1.0, 50.0)],
            vec![b(2.0, 2.0, 50.0)],
        ];
        let tracks = link(&frames, 0.3);
        assert_eq!(tracks.len(), 2);
        assert_eq!(tracks[0].boxes.len(), 2);
        assert_eq!(tracks[0].boxes[0].1.x1, 200.0);
        assert_eq!(tracks[1].boxes.len(), 3);
    }
}
